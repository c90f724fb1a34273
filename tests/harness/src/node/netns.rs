//! The node's own namespaces: network, mount and PID, made by the harness for one test and gone
//! with it. Every address a node test uses (the node's, pods', Services') exists only in this
//! network namespace; every mount the kubelet and containerd make lives in this mount namespace,
//! so the kernel drops them when its last process exits; the node's daemons and every process
//! containerd starts (shims, containers) live in this PID namespace (with its own /proc), whose
//! init is killed last and takes them all along.
//!
//! The holder is `unshare --fork --pid --mount-proc --kill-child --net --mount` running a reaping
//! init (Kubernetes' pause): its PID is kept, and if the test process dies the kernel's
//! parent-death signal ends it and with it the namespaces. The harness reaches in by PID only: the
//! control plane enters the network namespace alone with setns(2); the node's daemons enter all
//! three through nsenter (a multi-threaded program cannot be moved into a PID namespace by
//! setns); sockets the harness needs there are made by a thread that entered the network
//! namespace (a socket stays in the namespace it was made in).

use std::{
    fs::File,
    net::{SocketAddr, TcpStream},
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::tools::procs::{Proc, wait_until};

/// The node's address on its only link (`eth0`, a veth whose peer is also inside: nothing leaves
/// the namespace). The API server advertises it; the kubelet registers it.
pub const NODE_IP: &str = "10.77.0.2";

/// A set of namespaces, removed (every process in them killed) when dropped.
pub struct Netns {
    /// `unshare`, parent of the namespaces' init: when it ends, so does the init.
    holder: Mutex<Option<Proc>>,
    /// The namespaces' init, as the host sees it.
    init: i32,
    net: Arc<File>,
}

impl Netns {
    /// Makes the namespaces, with `init` (a static reaping init) as PID 1, and brings up
    /// loopback and the node's link.
    pub fn new(init: &Path, log: &Path) -> Netns {
        let holder = Proc::spawn(
            "netns",
            Command::new("unshare")
                .args([
                    "--fork",
                    "--pid",
                    "--mount-proc",
                    "--kill-child",
                    "--net",
                    "--mount",
                    "--propagation=private",
                    "--",
                ])
                .arg(init),
            log,
        );
        let parent = holder.pid();
        let mut init_pid = 0;
        wait_until("the namespaces' init", Duration::from_secs(10), || {
            let children =
                std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                    .unwrap_or_default();
            init_pid = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            init_pid != 0
                && std::fs::read_link(format!("/proc/{init_pid}/ns/pid")).ok()
                    != std::fs::read_link("/proc/self/ns/pid").ok()
                && std::fs::read_link(format!("/proc/{init_pid}/exe")).is_ok_and(|exe| exe == init)
        });
        let open = |ns: &str| {
            File::open(format!("/proc/{init_pid}/ns/{ns}"))
                .unwrap_or_else(|e| panic!("opening the namespaces' {ns}: {e}"))
        };
        let netns = Netns {
            holder: Mutex::new(Some(holder)),
            init: init_pid,
            net: Arc::new(open("net")),
        };
        netns.sh(&format!(
            "ip link set lo up
             ip link add eth0 type veth peer name eth0p
             ip addr add {NODE_IP}/24 dev eth0
             ip link set eth0 up
             ip link set eth0p up
             ip route add default via 10.77.0.1 dev eth0 onlink
             echo 1 > /proc/sys/net/ipv4/ip_forward"
        ));
        netns
    }

    /// A command that runs in the network namespace alone (the control plane: its PID stays the
    /// host's, so the harness can signal it, and it sees the host's files and /proc).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let net = self.net.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the fd outlives the spawn (self does).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(net, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// A command that runs inside all three namespaces, for the node's daemons (containerd, the
    /// kubelet, kube-proxy) and what they start. Through `nsenter`, which forks into the PID
    /// namespace; killing the returned process leaves the daemon to [`Netns::kill_all`].
    pub fn node_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.init))
            .args(["--pid", "--net", "--mount", "--"])
            .arg(program);
        cmd
    }

    /// Runs a shell script inside the namespaces; panics with its output on failure.
    pub fn sh(&self, script: &str) -> String {
        let out = self
            .node_command("/bin/sh")
            .args(["-ec", script])
            .output()
            .expect("running sh in the namespaces");
        assert!(
            out.status.success(),
            "in the namespaces: {script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The namespaces' init's PID on the host: unique while they exist.
    pub fn id(&self) -> i32 {
        self.init
    }

    /// The network namespace alone, for threads that make sockets in it.
    pub fn handle(&self) -> NetHandle {
        NetHandle {
            net: Arc::clone(&self.net),
        }
    }

    /// Kills every process in the PID namespace (shims, containers) by killing its init; the
    /// namespaces themselves go when the last process inside them has exited.
    pub fn kill_all(&self) {
        let holder = self.holder.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut holder) = holder {
            holder.stop(Duration::from_secs(5));
        }
    }
}

/// The network namespace, shareable across threads; valid while its [`Netns`] lives.
#[derive(Clone)]
pub struct NetHandle {
    net: Arc<File>,
}

impl NetHandle {
    /// A TCP connection to `addr` inside the namespace, made by a thread that entered it (the
    /// socket stays there).
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let net = Arc::clone(&self.net);
        std::thread::spawn(move || {
            // SAFETY: a fresh thread entering a network namespace affects only itself.
            if unsafe { libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .join()
        .expect("the thread inside the namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
    }
}
