//! The design's system as a user's cluster runs it, on a [`Node`]: OpenBao as a pod behind the
//! Service `vault`, ESO from its own chart, the design's objects applied verbatim (the store's
//! URL resolved by cluster DNS), and eso-recovery from its chart with the CronJob ticking by
//! itself. The harness never starts eso-recovery here: it plays the outage as a cluster has it
//! and watches, as an operator would.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    node::Node,
    node::eso_pods,
    node::recovery_pods,
    process::openbao::OpenBao,
    process::seed::{Seed, secret_data},
    process::stack::{FIRST_PASSWORD, ready_condition},
    tools::outage::Outage,
    tools::procs::wait_until,
};

/// OpenBao's pod, as its Deployment labels it.
const VAULT_POD: &str = "app=vault";

/// Everything running on one node; the node (and with it every pod) goes last.
pub struct NodeStack {
    /// OpenBao's pod, reached by the harness through a relay (an operator's port-forward).
    pub bao: OpenBao,
    /// The design's names.
    pub seed: Seed,
    /// The node and its control plane.
    pub node: Node,
}

impl NodeStack {
    /// Installs everything on `node`: OpenBao initialised and configured for ESO's Kubernetes
    /// auth, holding [`FIRST_PASSWORD`]; ESO with `eso_values` (`key=value`); the objects of
    /// `seed` but ESO's Deployments (its chart makes those); and eso-recovery's chart with
    /// `recovery_values`, unless `None`. Returns once ESO's pods have synced the Secret.
    pub fn start(
        node: Node,
        seed: Seed,
        eso_values: &[&str],
        recovery_values: Option<&[&str]>,
    ) -> NodeStack {
        let objects = Seed {
            deployments: Vec::new(),
            ..seed.clone()
        };
        objects.apply_objects(&node.cp);
        let bao = OpenBao::on_node(&node, &seed.namespace);
        bao.configure_for_eso(&node.cp, &seed.namespace);
        let stack = NodeStack { bao, seed, node };
        stack.rotate(FIRST_PASSWORD);
        eso_pods::install(&stack.node, &stack.seed.namespace, eso_values);
        stack.node.wait_until(
            "the Secret synced by ESO's pods",
            Duration::from_secs(120),
            || stack.password().as_deref() == Some(FIRST_PASSWORD),
        );
        if let Some(values) = recovery_values {
            recovery_pods::install(&stack.node, values);
        }
        stack
    }

    /// Waits until the chart's admission policy refuses the CronJob's identity everything but
    /// the resync annotation (policies take a moment to reach admission), as a resync needs.
    pub fn wait_for_resync_guard(&self) {
        let sa = self
            .node
            .cp
            .kubeconfig_for(&self.seed.namespace, "eso-recovery");
        self.node
            .cp
            .wait_for_resync_guard(&sa, &self.seed.store, true);
    }

    /// The Secret's password now.
    pub fn password(&self) -> Option<String> {
        secret_data(&self.node.cp).get("POSTGRES_PASSWORD").cloned()
    }

    /// Writes a new password to Vault (the user stays).
    pub fn rotate(&self, password: &str) {
        self.bao.kv_put(
            "postgres-secret",
            &json!({"POSTGRES_USER": "app", "POSTGRES_PASSWORD": password}),
        );
    }

    /// Waits for one of the ExternalSecret's refreshes, then writes `password` and begins
    /// `outage` at once: ESO read Vault just before, and its next refresh finds Vault out, so
    /// the Secret holding `password` later proves ESO read Vault after the outage ended.
    pub fn rotate_then_begin(&self, password: &str, outage: Outage) {
        let refreshed = || self.external_secret()["status"]["refreshTime"].clone();
        let last = refreshed();
        wait_until(
            "a refresh of the ExternalSecret",
            Duration::from_secs(60),
            || refreshed() != last,
        );
        let before = self.password();
        self.rotate(password);
        self.begin(outage);
        assert_eq!(
            self.password(),
            before,
            "ESO read the new password before the outage"
        );
    }

    /// Begins `outage`: a seal; Vault's container killed (the kubelet starts it again, sealed:
    /// raft on the emptyDir); or the node dropping what pods send to Vault's pod.
    pub fn begin(&self, outage: Outage) {
        match outage {
            Outage::ShortSeal => self.bao.seal(),
            Outage::RestartedSealed => {
                self.node.kill_container(&self.seed.namespace, VAULT_POD);
                self.node.wait_until(
                    "OpenBao's new container answering sealed",
                    Duration::from_secs(60),
                    || self.bao.health_code() == 503,
                );
            }
            Outage::CutPath => self.node.cut_path(&self.seed.namespace, VAULT_POD, 8200),
        }
    }

    /// Ends `outage`: the unseal, or the path restored.
    pub fn end(&self, outage: Outage) {
        match outage {
            Outage::ShortSeal | Outage::RestartedSealed => self.bao.unseal(),
            Outage::CutPath => self
                .node
                .restore_path(&self.seed.namespace, VAULT_POD, 8200),
        }
    }

    /// The design's ExternalSecret.
    pub fn external_secret(&self) -> Value {
        self.node
            .cp
            .get_json(&["externalsecret", "postgres-secret", "-n", "db"])
    }

    /// Whether the ExternalSecret's Ready condition is False (ESO tried Vault and failed).
    pub fn external_secret_failing(&self) -> bool {
        ready_condition(&self.external_secret())["status"] == "False"
    }

    /// Whether the store's Ready condition is False.
    pub fn store_degraded(&self) -> bool {
        ready_condition(
            &self
                .node
                .cp
                .get_json(&["clustersecretstore", &self.seed.store]),
        )["status"]
            == "False"
    }
}
