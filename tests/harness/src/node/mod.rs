//! A one-node cluster, as a user's cluster runs pods: the control plane (etcd, kube-apiserver,
//! kube-controller-manager with all its controllers), kube-scheduler, containerd with runc
//! (Debian's packages) and its own config, the CNI bridge and host-local plugins, the kubelet
//! (cgroupfs on this machine's cgroup v1), kube-proxy (iptables) and cluster DNS (CoreDNS, as a
//! pod: [`dns`]), all inside the namespaces of one [`Netns`]. eso-recovery's image is
//! pulled, as a user's node pulls it: from a real registry ([`crate::process::registry`]) in the node's
//! namespace, over plain HTTP as containerd's `hosts.toml` allows it. The harness's own parts'
//! images (the sandbox's pause, built from the same module, CoreDNS, OpenBao, ESO) are imported
//! from the OCI archives built here.
//!
//! Made for tests, in three ways a production node is not: the kubelet, kube-proxy and the
//! scheduler use the admin's token (no node authorizer or certificates to bootstrap), the kubelet
//! lets anonymous requests in (only the API server, inside the namespace, can reach it), and the
//! node's link leads nowhere: nothing outside the namespace is ever addressed.

pub mod dns;
pub mod eso_pods;
pub mod netns;
pub mod recovery_pods;
pub mod stack;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, OnceLock},
    time::Duration,
};

use crate::{
    node::netns::{NODE_IP, Netns},
    process::controlplane::{ControlPlane, Options, bins},
    process::registry::{self, Registry},
    tools::eso_version::EsoVersion,
    tools::image::{Image, scratch},
    tools::procs::{Proc, wait_until},
    tools::repo::script,
};

/// The node's name.
pub const NODE_NAME: &str = "node";
/// Pods' addresses (the CNI bridge's host-local range).
pub const POD_CIDR: &str = "10.88.0.0/16";
/// Cluster DNS's ClusterIP (the kubelet's `clusterDNS`).
pub const DNS_SERVICE_IP: &str = "10.0.0.10";

/// A running node, stopped when dropped: its daemons and every container with the PID
/// namespace (its init killed by PID), then the pods' cgroups; the mounts go with the namespace.
pub struct Node {
    /// The API server and controller manager, inside the node's namespaces.
    pub cp: ControlPlane,
    netns: Arc<Netns>,
    dir: tempfile::TempDir,
    /// The `nsenter` of each daemon (their logs' writers); the daemons end with the namespace.
    daemons: Vec<Proc>,
    /// The pods' cgroup parent under every cgroup v1 hierarchy.
    cgroup_root: String,
    /// The registry its pods pull eso-recovery's image from, started at the first push.
    registry: OnceLock<Registry>,
    /// Held while a test's node runs: one at a time per test process (a node's control plane,
    /// daemons and pods fill this machine's two cores).
    _one_at_a_time: Option<std::sync::MutexGuard<'static, ()>>,
}

impl Node {
    /// Starts the node, its control plane serving `eso`'s CRDs, and waits until it is Ready,
    /// with the pause image imported; another test's node in this process first ends.
    pub fn start(eso: EsoVersion) -> Node {
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let one_at_a_time = ONE.lock().unwrap_or_else(|e| e.into_inner());
        Self::start_with(eso, Some(one_at_a_time))
    }

    /// As [`Node::start`], beside other nodes: for the benchmark, whose cells are long and
    /// mostly idle. Each node has its own namespaces, cgroups and control plane.
    pub fn start_beside_others(eso: EsoVersion) -> Node {
        Self::start_with(eso, None)
    }

    fn start_with(
        eso: EsoVersion,
        one_at_a_time: Option<std::sync::MutexGuard<'static, ()>>,
    ) -> Node {
        install_packages();
        let bins = bins();
        for b in ["kubelet", "kube-scheduler", "kube-proxy", "pause"] {
            assert!(
                bins.join(b).exists(),
                "{} has no {b}: tests/controlplane/build.sh builds it",
                bins.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("eso-recovery-node-")
            .tempdir()
            .unwrap();
        let netns = Arc::new(Netns::new(
            &bins.join("pause"),
            &dir.path().join("netns.log"),
        ));
        // The node's own /run: containerd's shim sockets and runc's state, the pods' network
        // namespaces; gone with the mount namespace.
        netns.sh("mount -t tmpfs -o mode=0755 tmpfs /run");
        let cp = ControlPlane::start_with(Options {
            controller_manager: true,
            all_eso_crds: true,
            node: Some(Arc::clone(&netns)),
            eso,
            ..Options::default()
        });
        let cgroup_root = format!("/eso-recovery-node-{}", netns.id());
        let mut node = Node {
            cp,
            netns,
            dir,
            daemons: Vec::new(),
            cgroup_root,
            registry: OnceLock::new(),
            _one_at_a_time: one_at_a_time,
        };
        let pause = pause_image();
        node.start_containerd(&pause.reference);
        node.import(&pause);
        node.start_kubelet();
        node.start_daemon(
            "kube-scheduler",
            &[
                &format!("--kubeconfig={}", node.cp.admin_kubeconfig.display()),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ],
        );
        node.start_kube_proxy();
        node.wait_until("the node Ready", Duration::from_secs(120), || {
            node.cp
                .kubectl_output(&[
                    "get",
                    "node",
                    NODE_NAME,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .stdout
                == b"True"
        });
        crate::node::dns::deploy(&node);
        node
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("containerd/containerd.sock")
    }

    fn start_daemon(&mut self, name: &str, args: &[&str]) {
        let proc = Proc::spawn(
            name,
            self.netns.node_command(bins().join(name)).args(args),
            &self.path(&format!("{name}.log")),
        );
        self.daemons.push(proc);
    }

    fn start_containerd(&mut self, sandbox_image: &str) {
        let root = self.path("containerd");
        let cni = self.path("cni");
        std::fs::create_dir_all(cni.join("net.d")).unwrap();
        std::fs::write(
            cni.join("net.d/10-bridge.conflist"),
            serde_json::json!({
                "cniVersion": "1.0.0",
                "name": "node",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": "cni0",
                        "isGateway": true,
                        "ipMasq": false,
                        "hairpinMode": true,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": POD_CIDR}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                            "dataDir": cni.join("ipam").display().to_string(),
                        },
                    },
                    {"type": "loopback"},
                ],
            })
            .to_string(),
        )
        .unwrap();
        // The node's registry, over plain HTTP (as a cluster with an in-cluster registry or a
        // local mirror is set up).
        let hosts = root.join("certs.d").join(registry::ON_NODE);
        std::fs::create_dir_all(&hosts).unwrap();
        std::fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{r}\"\n[host.\"http://{r}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                r = registry::ON_NODE
            ),
        )
        .unwrap();
        // restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and runc fails to lower the
        // sandbox's oom_score_adj without it ("can't get final child's PID from pipe").
        let config = format!(
            r#"version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{sock}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{root}/certs.d"
"#,
            root = root.display(),
            sock = self.socket().display(),
            pause = sandbox_image,
            cni = cni.display(),
        );
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("config.toml"), config).unwrap();
        let proc = Proc::spawn(
            "containerd",
            self.netns
                .node_command("/usr/bin/containerd")
                .arg(format!("--config={}", root.join("config.toml").display())),
            &self.path("containerd.log"),
        );
        self.daemons.push(proc);
        wait_until("containerd's socket", Duration::from_secs(30), || {
            self.ctr(&["version"]).status.success()
        });
    }

    fn start_kubelet(&mut self) {
        // The kubelet wants its cgroup root in every hierarchy before it starts.
        for dir in self.cgroup_dirs() {
            let _ = std::fs::create_dir_all(dir);
        }
        let config = serde_json::json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "failSwapOn": false,
            "containerRuntimeEndpoint": format!("unix://{}", self.socket().display()),
            "readOnlyPort": 0,
            "healthzPort": 0,
            "authentication": {"anonymous": {"enabled": true}, "webhook": {"enabled": false}},
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": "cluster.local",
            // Pods with dnsPolicy Default get no resolver of the host's: nothing outside is asked.
            "resolvConf": "",
            "podLogsDir": self.path("pod-logs").display().to_string(),
            // A test machine's disk and memory are not the node's to defend.
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": false,
            "syncFrequency": "10s",
        });
        let path = self.path("kubelet.json");
        std::fs::write(&path, config.to_string()).unwrap();
        self.start_daemon(
            "kubelet",
            &[
                &format!("--config={}", path.display()),
                &format!("--kubeconfig={}", self.cp.admin_kubeconfig.display()),
                &format!("--root-dir={}", self.path("kubelet").display()),
                &format!("--hostname-override={NODE_NAME}"),
                &format!("--node-ip={NODE_IP}"),
                "--v=1",
            ],
        );
    }

    fn start_kube_proxy(&mut self) {
        let config = serde_json::json!({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": self.cp.admin_kubeconfig.display().to_string()},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            // Leave the kernel's conntrack table as it is (its sysctls are the host's).
            "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "metricsBindAddress": "127.0.0.1:10249",
            "healthzBindAddress": "127.0.0.1:10256",
        });
        let path = self.path("kube-proxy.json");
        std::fs::write(&path, config.to_string()).unwrap();
        self.start_daemon(
            "kube-proxy",
            &[&format!("--config={}", path.display()), "--v=1"],
        );
    }

    /// Kills the container of the one pod matching `selector` in `namespace` (SIGKILL, through
    /// containerd, as an OOM kill or a crash ends it) and waits until the kubelet has started it
    /// again.
    pub fn kill_container(&self, namespace: &str, selector: &str) {
        let pod =
            || self.cp.get_json(&["pods", "-n", namespace, "-l", selector])["items"][0].clone();
        let status = pod()["status"]["containerStatuses"][0].clone();
        let restarts = status["restartCount"].as_i64().unwrap_or_default();
        let id = status["containerID"]
            .as_str()
            .and_then(|c| c.strip_prefix("containerd://"))
            .unwrap_or_else(|| panic!("no running container for {selector}: {status}"))
            .to_string();
        let out = self.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id]);
        assert!(
            out.status.success(),
            "killing {selector}'s container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_until(
            &format!("{selector}'s container started again"),
            Duration::from_secs(60),
            || {
                let status = pod()["status"]["containerStatuses"][0].clone();
                status["restartCount"].as_i64().unwrap_or_default() > restarts
                    && status["state"]["running"].is_object()
            },
        );
    }

    /// Drops every packet the node forwards to the pod matching `selector` on `port` (what a
    /// NetworkPolicy or a firewall change does): pods reach it no longer, through its Service
    /// or not, and connections already open hang. The harness's relay, which starts on the
    /// node, still does. [`Node::restore_path`] lifts it.
    pub fn cut_path(&self, namespace: &str, selector: &str, port: u16) {
        self.netns.sh(&format!(
            "iptables -I FORWARD 1 {}",
            self.drop_rule(namespace, selector, port)
        ));
    }

    /// Lifts what [`Node::cut_path`] set.
    pub fn restore_path(&self, namespace: &str, selector: &str, port: u16) {
        self.netns.sh(&format!(
            "iptables -D FORWARD {}",
            self.drop_rule(namespace, selector, port)
        ));
    }

    fn drop_rule(&self, namespace: &str, selector: &str, port: u16) -> String {
        let ip = self.cp.kubectl(&[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            selector,
            "-o",
            "jsonpath={.items[0].status.podIP}",
        ]);
        let ip: std::net::IpAddr = ip
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pod IP for {selector}: {ip:?}"));
        format!("-d {ip} -p tcp --dport {port} -j DROP")
    }

    /// The node's namespaces.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// `ctr` against the node's containerd, in the Kubernetes namespace.
    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg(format!("--address={}", self.socket().display()))
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .expect("running ctr")
    }

    /// Pushes an image to the node's registry (started at the first push) and returns the
    /// reference its pods pull it by; nothing is imported, so the kubelet pulls it.
    pub fn publish(&self, image: &Image) -> String {
        self.registry
            .get_or_init(|| Registry::on_node(Arc::clone(&self.netns)))
            .push(image)
    }

    /// Imports an image of the harness's own into the node (what a pull would do), for pods to
    /// run with `imagePullPolicy: IfNotPresent`.
    pub fn import(&self, image: &Image) {
        let out = self.ctr(&[
            "images",
            "import",
            "--no-unpack=false",
            &image.archive.display().to_string(),
        ]);
        assert!(
            out.status.success(),
            "importing {}: {}",
            image.reference,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits as [`wait_until`] does; if `check` never holds, fails with what the node shows: its
    /// pods, the recent Events and the tails of the kubelet's and containerd's logs.
    pub fn wait_until(&self, what: &str, limit: Duration, check: impl FnMut() -> bool) -> Duration {
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, limit, check)
        }));
        waited.unwrap_or_else(|_| {
            let pods = self.cp.kubectl_output(&["get", "pods", "-A", "-o", "wide"]);
            let events = self.cp.kubectl_output(&["get", "events", "-A", "--sort-by=.lastTimestamp"]);
            panic!(
                "{what}: not within {limit:?}\n--- pods ---\n{}\n--- events ---\n{}\n--- kubelet ---\n{}\n--- containerd ---\n{}",
                String::from_utf8_lossy(&pods.stdout),
                String::from_utf8_lossy(&events.stdout),
                self.log("kubelet"),
                self.log("containerd")
            )
        })
    }

    /// The tail of one of the node's daemons' logs (for a failing test's message).
    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The pods' cgroup root in each cgroup v1 hierarchy.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path().join(self.cgroup_root.trim_start_matches('/')))
            .collect()
    }
}

fn remove_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Node {
    fn drop(&mut self) {
        // The daemons, their shims and containers all live in the PID namespace: one kill.
        self.netns.kill_all();
        // Containers' processes take a moment to leave their cgroups; empty ones go deepest
        // first.
        for _ in 0..50 {
            let dirs = self.cgroup_dirs();
            dirs.iter().for_each(|d| remove_tree(d));
            if !dirs.iter().any(|d| d.exists()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The pod sandbox's image: Kubernetes' pause, built from the module's source.
pub fn pause_image() -> Image {
    scratch(
        "pause",
        &[(&bins().join("pause"), "/pause")],
        "65535:65535",
        &["/pause"],
    )
}

/// containerd, runc, the CNI plugins, iptables and conntrack (Debian's), installed by the test
/// command through `tests/node/packages.sh`; run here too, so one test runs on its own.
fn install_packages() {
    script("tests/node/packages.sh");
}
