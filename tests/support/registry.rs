//! A real OCI registry, the CNCF distribution one built from its Go module by
//! `tests/release/build.sh`: the stand-in for ghcr.io that a release is published to and pulled
//! from here, on 127.0.0.1 over plain HTTP, its storage in a folder of its own.

use std::{
    collections::HashMap,
    net::TcpStream,
    path::PathBuf,
    process::Command,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use tempfile::TempDir;

use super::{
    controlplane::script_with,
    procs::{Proc, free_port, wait_until},
};

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
    proc: Proc,
    _dir: TempDir,
}

impl Registry {
    /// Starts an empty registry and waits until it answers.
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().expect("a folder for the registry");
        let host = format!("127.0.0.1:{}", free_port());
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
        let mut cmd = Command::new(release_tool("registry"));
        cmd.arg("serve")
            .arg(&config)
            .env_clear()
            // No traces exported anywhere.
            .env("OTEL_TRACES_EXPORTER", "none");
        let mut proc = Proc::spawn("registry", &mut cmd, &dir.path().join("registry.log"));
        wait_until("the registry listens", Duration::from_secs(20), || {
            assert!(!proc.exited(), "the registry exited\n{}", proc.log_tail());
            TcpStream::connect(&host).is_ok()
        });
        Registry {
            host,
            proc,
            _dir: dir,
        }
    }

    /// The last lines of its log, for a failure message.
    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }
}
