//! A real OCI registry, the CNCF distribution one built from its Go module by
//! `tests/release/build.sh`: the stand-in for ghcr.io that a release is published to and pulled
//! from here, on 127.0.0.1 over plain HTTP, its storage in a folder of its own. A node has one in
//! its network namespace, which its containerd pulls images from as a cluster's nodes do.

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use tempfile::TempDir;

use crate::{
    node::netns::Netns,
    tools::image::Image,
    tools::procs::offline,
    tools::procs::{Proc, free_port, wait_until},
    tools::repo::script_with,
};

/// Where a node's registry listens, inside the node's network namespace (whose ports are all the
/// test's own): the host part of the references its pods pull.
pub const ON_NODE: &str = "127.0.0.1:5000";

/// A tool from tests/release (`registry`, `cosign`), built once (both at the first ask).
pub fn release_tool(name: &'static str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<&'static str, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(name)
        .or_insert_with(|| script_with("tests/release/build.sh", &[name]))
        .clone()
}

/// A running registry; stopped (and its storage removed) when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`: the host part of every reference pushed to it.
    pub host: String,
    /// The network namespace it listens in, when not the host's.
    netns: Option<Arc<Netns>>,
    proc: Proc,
    _dir: TempDir,
}

impl Registry {
    /// Starts an empty registry on the host's 127.0.0.1 and waits until it answers.
    pub fn start() -> Registry {
        Self::start_at(format!("127.0.0.1:{}", free_port()), None)
    }

    /// Starts an empty registry at [`ON_NODE`] in a node's network namespace (alone: its PID is
    /// the host's, so dropping it stops it), reached only from inside.
    pub fn on_node(netns: Arc<Netns>) -> Registry {
        Self::start_at(ON_NODE.to_string(), Some(netns))
    }

    fn start_at(host: String, netns: Option<Arc<Netns>>) -> Registry {
        let dir = tempfile::tempdir().expect("a folder for the registry");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut cmd = command(netns.as_deref(), release_tool("registry"));
        cmd.arg("serve")
            .arg(&config)
            .env_clear()
            // No traces exported anywhere.
            .env("OTEL_TRACES_EXPORTER", "none");
        let mut proc = Proc::spawn("registry", &mut cmd, &dir.path().join("registry.log"));
        let addr: SocketAddr = host.parse().expect("a registry address");
        wait_until("the registry listens", Duration::from_secs(20), || {
            assert!(!proc.exited(), "the registry exited\n{}", proc.log_tail());
            match &netns {
                Some(netns) => netns.handle().connect(addr).is_ok(),
                None => TcpStream::connect(addr).is_ok(),
            }
        });
        Registry {
            host,
            netns,
            proc,
            _dir: dir,
        }
    }

    /// Pushes `image` (its archive, as built) as `NAME:TAG` of its reference and returns the
    /// reference it is pulled by here: `HOST/NAME:TAG`, served by the same manifest digest.
    pub fn push(&self, image: &Image) -> String {
        let (_, name) = image
            .reference
            .split_once('/')
            .expect("a reference with a registry");
        self.copy(&format!("oci-archive:{}", image.archive.display()), name)
    }

    /// `skopeo copy` of `source` (with its transport: `oci-archive:`, `oci:`) as `name`
    /// (`NAME:TAG`), every platform and digest as they are, with no network beyond the
    /// registry; returns `HOST/NAME:TAG`.
    pub fn copy(&self, source: &str, name: &str) -> String {
        let reference = format!("{}/{name}", self.host);
        let home = tempfile::tempdir().expect("a home for skopeo");
        let mut cmd = command(self.netns.as_deref(), "skopeo");
        let out = offline(&mut cmd, home.path())
            .args([
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                source,
            ])
            .arg(format!("docker://{reference}"))
            .output()
            .expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {source} {reference}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.proc.log_tail()
        );
        reference
    }

    /// The last lines of its log, for a failure message.
    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }
}

/// `program`, in `netns`'s network namespace when there is one.
fn command(netns: Option<&Netns>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        Some(netns) => netns.command(program),
        None => Command::new(program),
    }
}
