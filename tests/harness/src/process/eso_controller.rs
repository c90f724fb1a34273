//! ESO's real controller (of the control plane's [`EsoVersion`], built by `tests/eso/build.sh`),
//! run out of cluster against the harness's kube-apiserver, and the one stand-in around it: the kubelet. There are no nodes, so
//! when kube-controller-manager gives the `external-secrets` Deployment a new ReplicaSet (a
//! restart by eso-recovery or `kubectl rollout restart`), [`Eso`] stops the running controller
//! with SIGTERM and starts a new one, as the kubelet would replace the pod.
//!
//! Vault's Service (`vault.security.svc.cluster.local:8200`, the address in the design's store) is
//! played by Vault's own client setting `VAULT_PROXY_ADDR`: ESO's Vault traffic goes to OpenBao's
//! loopback port unchanged, so the store's `server` stays the design's.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    process::controlplane::{ControlPlane, bins},
    tools::eso_version::EsoVersion,
    tools::procs::{Proc, wait_until},
};

/// What is needed to start one controller process.
#[derive(Clone)]
struct Launch {
    eso: EsoVersion,
    kubeconfig: PathBuf,
    vault: String,
    flags: &'static [&'static str],
    dir: PathBuf,
}

impl Launch {
    fn spawn(&self, n: usize) -> Proc {
        let mut cmd = Command::new(self.eso.bin());
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("VAULT_PROXY_ADDR", &self.vault)
            .args([
                "--enable-leader-election=false",
                "--concurrent=1",
                "--loglevel=debug",
                "--zap-time-encoding=iso8601",
            ])
            .args(self.eso.loopback_listen_flags())
            .args(self.flags);
        Proc::spawn(
            "external-secrets",
            &mut cmd,
            &self.dir.join(format!("external-secrets-{n}.log")),
        )
    }
}

/// The running controller and the kubelet stand-in that replaces it on each new ReplicaSet.
pub struct Eso {
    state: Arc<Mutex<State>>,
    watch: Option<Proc>,
}

struct State {
    launch: Launch,
    current: Option<Proc>,
    /// How many controller processes were started; the first is the initial one.
    starts: usize,
    /// The Deployment revision the running process belongs to.
    revision: u64,
}

impl Eso {
    /// Starts the controller against `cp` (as its admin) with `flags` beside the harness's own,
    /// with Vault's traffic sent to `vault_addr`, and the kubelet stand-in for Deployment `external-secrets` in `namespace`
    /// (which must exist and have been rolled out by kube-controller-manager once).
    pub fn start(
        cp: &ControlPlane,
        namespace: &str,
        vault_addr: &str,
        flags: &'static [&'static str],
        dir: &Path,
    ) -> Eso {
        let launch = Launch {
            eso: cp.eso,
            kubeconfig: cp.admin_kubeconfig.clone(),
            vault: vault_addr.to_string(),
            flags,
            dir: dir.to_path_buf(),
        };
        let revision = current_revision(cp, namespace);
        eprintln!("{}: the controller runs out of cluster", cp.eso);
        let first = launch.spawn(0);
        let state = Arc::new(Mutex::new(State {
            launch,
            current: Some(first),
            starts: 1,
            revision,
        }));
        // One line per ReplicaSet event: its name and its Deployment revision.
        let mut watch = Command::new(bins().join("kubectl"));
        watch
            .arg(format!("--kubeconfig={}", cp.admin_kubeconfig.display()))
            .args(["get", "replicasets", "-n", namespace, "--watch"])
            .args(["-l", "app.kubernetes.io/name=external-secrets"])
            .arg(
                r#"-o=jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}{"\n"}"#,
            );
        let (watch, stdout) = Proc::spawn_piped("kubelet stand-in (kubectl watch)", &mut watch);
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(revision) = line.trim().parse::<u64>() else {
                    continue;
                };
                let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                if revision <= s.revision {
                    continue;
                }
                // The new ReplicaSet's pod replaces the old one: the old process ends first.
                s.revision = revision;
                if let Some(mut old) = s.current.take() {
                    old.stop(Duration::from_secs(15));
                }
                let n = s.starts;
                s.current = Some(s.launch.spawn(n));
                s.starts += 1;
            }
        });
        Eso {
            state,
            watch: Some(watch),
        }
    }

    /// How many controller processes have been started (1 until the first restart).
    pub fn starts(&self) -> usize {
        self.lock().starts
    }

    /// Waits until the stand-in has started the `n`th process.
    pub fn wait_for_starts(&self, n: usize, limit: Duration) -> Duration {
        wait_until(
            &format!("the kubelet stand-in starting ESO process #{n}"),
            limit,
            || self.starts() >= n,
        )
    }

    /// The current process's PID.
    pub fn pid(&self) -> i32 {
        self.lock().current.as_ref().map_or(0, Proc::pid)
    }

    /// Stops the current process in place (SIGSTOP): it reads nothing until [`Eso::resume`].
    pub fn pause(&self) {
        if let Some(p) = self.lock().current.as_ref() {
            p.signal(libc::SIGSTOP);
        }
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        if let Some(p) = self.lock().current.as_ref() {
            p.signal(libc::SIGCONT);
        }
    }

    /// The last lines of the current process's log, for a failure message.
    pub fn log_tail(&self) -> String {
        self.lock()
            .current
            .as_ref()
            .map(Proc::log_tail)
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Eso {
    fn drop(&mut self) {
        // The watch first, so no new process is started while the current one stops.
        self.watch = None;
        if let Some(mut p) = self.lock().current.take() {
            p.stop(Duration::from_secs(5));
        }
    }
}

/// The Deployment's current revision, once kube-controller-manager has made its first ReplicaSet.
fn current_revision(cp: &ControlPlane, namespace: &str) -> u64 {
    let mut revision = 0;
    wait_until(
        "kube-controller-manager's first ReplicaSet of external-secrets",
        Duration::from_secs(60),
        || {
            let d = cp.get_json(&["deployment", "external-secrets", "-n", namespace]);
            revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            revision > 0
        },
    );
    revision
}
