//! The whole system of the design, for end-to-end tests and the recovery benchmark: a control
//! plane with kube-controller-manager, OpenBao on raft storage with Kubernetes auth, the design's
//! objects, eso-recovery's manifests, and ESO's real controller with the kubelet stand-in. The
//! Secret `db/postgres-secret` is synced from Vault before [`Stack::start`] returns.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde_json::{Value, json};

use crate::{
    process::controlplane::{ControlPlane, Options},
    process::eso_controller::Eso,
    process::openbao::OpenBao,
    process::seed::Seed,
    run::Run,
    standin::relay::Relay,
    tools::eso_version::EsoVersion,
    tools::procs::wait_until,
    tools::repo::repo,
};

/// The password Vault holds when a stack starts.
pub const FIRST_PASSWORD: &str = "first-password";

/// The optional parts of a [`Stack`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Parts {
    /// ESO and eso-recovery reach Vault through a [`Relay`] the test can cut.
    pub relay: bool,
    /// OpenBao writes an audit log ([`OpenBao::logins`]).
    pub vault_audit: bool,
    /// More flags for ESO's controller (its Vault token cache, for one).
    pub eso_flags: &'static [&'static str],
    /// The API server writes an audit log ([`ControlPlane::audit_lines`]).
    pub audit: bool,
    /// eso-recovery's objects from `manifests/resync/` (its RBAC for `--strategy resync` and the
    /// admission policy, in force before the stack is handed over) instead of `manifests/`.
    pub resync: bool,
}

/// Everything running; dropped in this order (ESO first, the control plane last).
pub struct Stack {
    /// ESO's controller and the kubelet stand-in.
    pub eso: Eso,
    /// OpenBao on raft storage: a restart brings it back sealed.
    pub bao: OpenBao,
    /// The network path to Vault, when the stack has one to cut ([`Stack::start_behind_relay`]).
    pub relay: Option<Relay>,
    /// The design's objects.
    pub seed: Seed,
    /// etcd, kube-apiserver, kube-controller-manager.
    pub cp: ControlPlane,
    /// A kubeconfig for eso-recovery's own ServiceAccount (from manifests/).
    pub recovery_kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Starts everything for `seed` with ESO release `eso` and waits until ESO has synced the
    /// Secret.
    pub fn start(eso: EsoVersion, seed: Seed) -> Stack {
        Self::start_with(eso, seed, Parts::default())
    }

    /// As [`Stack::start`], with ESO and eso-recovery reaching Vault through a [`Relay`] the
    /// test can cut: Vault runs on, unreachable.
    pub fn start_behind_relay(eso: EsoVersion, seed: Seed) -> Stack {
        Self::start_with(
            eso,
            seed,
            Parts {
                relay: true,
                ..Parts::default()
            },
        )
    }

    /// As [`Stack::start`], with the optional parts.
    pub fn start_with(eso: EsoVersion, seed: Seed, parts: Parts) -> Stack {
        let behind_relay = parts.relay;
        let dir = tempfile::Builder::new()
            .prefix("eso-recovery-stack-")
            .tempdir()
            .expect("a temporary folder");
        let cp = ControlPlane::start_with(Options {
            controller_manager: true,
            all_eso_crds: true,
            eso,
            audit: parts.audit,
            ..Options::default()
        });
        let bao = if parts.vault_audit {
            OpenBao::raft_audited()
        } else {
            OpenBao::raft()
        };
        seed.apply_objects(&cp);
        let manifests = repo().join("manifests");
        cp.apply_kustomize(&if parts.resync {
            manifests.join("resync")
        } else {
            manifests
        });
        bao.configure_for_eso(&cp, &seed.namespace);
        bao.kv_put(
            "postgres-secret",
            &json!({"POSTGRES_USER": "app", "POSTGRES_PASSWORD": FIRST_PASSWORD}),
        );
        let recovery_kubeconfig = cp.kubeconfig_for(&seed.namespace, "eso-recovery");
        if parts.resync {
            cp.wait_for_resync_guard(&recovery_kubeconfig, &seed.store, true);
        }
        let relay = behind_relay.then(|| Relay::start(bao.port()));
        let vault = relay.as_ref().map_or(&bao.addr, |r| &r.addr);
        let eso = Eso::start(&cp, &seed.namespace, vault, parts.eso_flags, dir.path());
        let stack = Stack {
            eso,
            bao,
            relay,
            seed,
            cp,
            recovery_kubeconfig,
            _dir: dir,
        };
        stack.wait_for_password(FIRST_PASSWORD, Duration::from_secs(60));
        stack
    }

    /// The Secret `db/postgres-secret`'s data, decoded; empty while it does not exist.
    pub fn secret_data(&self) -> BTreeMap<String, String> {
        crate::process::seed::secret_data(&self.cp)
    }

    /// The Secret's password now.
    pub fn password(&self) -> Option<String> {
        self.secret_data().get("POSTGRES_PASSWORD").cloned()
    }

    /// Waits until the Secret holds `password`; how long it took.
    pub fn wait_for_password(&self, password: &str, limit: Duration) -> Duration {
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(
                &format!("Secret db/postgres-secret holding {password:?}"),
                limit,
                || self.password().as_deref() == Some(password),
            )
        }));
        waited.unwrap_or_else(|_| {
            panic!(
                "the Secret never held {password:?} within {limit:?} (it holds {:?}); the ExternalSecret: {}\n{}",
                self.password(),
                self.external_secret_ready("db", "postgres-secret"),
                self.eso.log_tail()
            )
        })
    }

    /// Writes a new password to Vault (as `bao kv patch` would; the user stays).
    pub fn rotate(&self, password: &str) {
        self.bao.kv_put(
            "postgres-secret",
            &json!({"POSTGRES_USER": "app", "POSTGRES_PASSWORD": password}),
        );
    }

    /// The Ready condition of an ExternalSecret (Null when it has none).
    pub fn external_secret_ready(&self, namespace: &str, name: &str) -> Value {
        let es = self.cp.get_json(&["externalsecret", name, "-n", namespace]);
        ready_condition(&es)
    }

    /// The store's Ready condition (Null when it has none).
    pub fn store_ready(&self) -> Value {
        ready_condition(&self.cp.get_json(&["clustersecretstore", &self.seed.store]))
    }

    /// Waits until ESO marks the ExternalSecret Ready=False (it tried Vault and failed).
    pub fn wait_for_external_secret_failing(&self, namespace: &str, name: &str, limit: Duration) {
        wait_until(
            &format!("ExternalSecret {namespace}/{name} Ready=False"),
            limit,
            || self.external_secret_ready(namespace, name)["status"] == "False",
        );
    }

    /// Runs eso-recovery as its own ServiceAccount against this stack's Vault.
    pub fn recover(&self, extra: &[&str]) -> Run {
        self.recover_with_env(extra, &[])
    }

    /// As [`Stack::recover`], with environment variables.
    pub fn recover_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let args = self.recovery_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::run::eso(Some(&self.recovery_kubeconfig), &args, env)
    }

    /// Starts a run as [`Stack::recover`] does and returns at once (an awaiting run that the
    /// test plays the outage's end against); join the handle for its result.
    pub fn recover_in_background(&self, extra: &[&str]) -> std::thread::JoinHandle<Run> {
        let args = self.recovery_args(extra);
        let kubeconfig = self.recovery_kubeconfig.clone();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::run::eso(Some(&kubeconfig), &args, &[])
        })
    }

    /// Vault's address as ESO and eso-recovery reach it: the relay's, or OpenBao's own.
    pub fn vault_addr(&self) -> &str {
        self.relay.as_ref().map_or(&self.bao.addr, |r| &r.addr)
    }

    fn recovery_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![format!("--vault-addr={}", self.vault_addr())];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Cuts the relay's path to Vault.
    pub fn cut_vault_path(&self) {
        self.relay.as_ref().expect("a stack behind a relay").cut();
    }

    /// Restores the relay's path to Vault.
    pub fn restore_vault_path(&self) {
        self.relay
            .as_ref()
            .expect("a stack behind a relay")
            .restore();
    }

    /// Writes a new password to Vault while ESO's process is stopped, then runs `outage` (a seal,
    /// a cut) before ESO goes on: the Secret cannot have picked up the new value before the
    /// outage, so holding it later proves ESO read Vault again after the outage ended.
    pub fn rotate_then(&self, password: &str, outage: impl FnOnce()) {
        self.eso.pause();
        self.rotate(password);
        outage();
        self.eso.resume();
        assert_eq!(self.password().as_deref(), Some(FIRST_PASSWORD));
    }

    /// The outage record eso-recovery keeps (the Lease's annotations).
    pub fn outage_record(&self) -> Value {
        self.cp.get_json(&["lease", "eso-recovery", "-n", &self.seed.namespace])["metadata"]
            ["annotations"]
            .clone()
    }

    /// Each Deployment's `restartedAt` annotation.
    pub fn restarted_at(&self) -> Vec<Option<String>> {
        self.seed.restarted_at(&self.cp)
    }

    /// Restarts Vault's process: on raft storage it comes back sealed (503).
    pub fn restart_vault_sealed(&mut self) {
        self.bao.restart();
        self.bao.wait_code(503);
    }
}

/// The `Ready` condition among an object's `status.conditions`.
pub fn ready_condition(object: &Value) -> Value {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap_or(Value::Null)
}
