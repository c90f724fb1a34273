//! ESO as its own Helm chart installs it on the node: the controller, the webhook and the cert
//! controller, one replica each (the chart's defaults), from an image of the node's
//! [`EsoVersion`](crate::tools::eso_version::EsoVersion) built here. The chart is that release's own
//! (`tests/eso/build.sh` drops its optional bitwarden-sdk-server dependency, off by default, which
//! lives in a registry this machine cannot reach). The CRDs are the control plane's (the same
//! release's), so `installCRDs=false`; the image is the one thing set beyond that.

use std::time::Duration;

use crate::{node::Node, tools::helm, tools::image::scratch};

/// ESO's three Deployments, as the chart names them for release `external-secrets`.
pub const DEPLOYMENTS: [&str; 3] = [
    "external-secrets",
    "external-secrets-webhook",
    "external-secrets-cert-controller",
];

/// ESO's pods and its controller's leader, as a rollout or a resync leaves them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The uids of every pod of the three Deployments, sorted.
    pub pods: Vec<String>,
    /// The controller's leader Lease (`external-secrets-controller`), when it elects one: its
    /// holder and its `leaseTransitions`.
    pub leader: Option<(String, i64)>,
}

impl Seen {
    /// ESO's pods and leader in `namespace` now.
    pub fn now(node: &Node, namespace: &str) -> Seen {
        let pods = node.cp.get_json(&[
            "pods",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/instance=external-secrets",
        ]);
        let mut uids: Vec<String> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        uids.sort();
        let lease = node.cp.kubectl_output(&[
            "get",
            "lease",
            "external-secrets-controller",
            "-n",
            namespace,
            "-o",
            "json",
        ]);
        let leader = serde_json::from_slice::<serde_json::Value>(&lease.stdout)
            .ok()
            .map(|l| {
                (
                    l["spec"]["holderIdentity"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    l["spec"]["leaseTransitions"].as_i64().unwrap_or(0),
                )
            });
        Seen { pods: uids, leader }
    }

    /// The pods here that were not there `before`: what a rollout made.
    pub fn new_since(&self, before: &Seen) -> usize {
        self.pods
            .iter()
            .filter(|p| !before.pods.contains(p))
            .count()
    }

    /// The leader's changes since `before`, when it elects one.
    pub fn leader_changes_since(&self, before: &Seen) -> Option<i64> {
        Some(self.leader.as_ref()?.1 - before.leader.as_ref()?.1)
    }
}

/// Installs ESO into `namespace` with `values` (`key=value`, as `--set` takes them) and waits
/// until its three Deployments are rolled out.
pub fn install(node: &Node, namespace: &str, values: &[&str]) {
    let eso = node.cp.eso;
    eprintln!("{eso}: installing its chart on the node with {values:?}");
    let image = scratch(
        "external-secrets",
        &[(&eso.bin(), "/bin/external-secrets")],
        "1000:1000",
        &["/bin/external-secrets"],
    );
    node.import(&image);
    let (repository, tag) = image.reference.rsplit_once(':').expect("a tagged image");

    let mut sets = vec![
        "installCRDs=false".to_string(),
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
        format!("webhook.image.repository={repository}"),
        format!("webhook.image.tag={tag}"),
        format!("certController.image.repository={repository}"),
        format!("certController.image.tag={tag}"),
    ];
    sets.extend(values.iter().map(|v| v.to_string()));
    let args = helm::set_args(sets);
    let out = helm::install(
        &node.cp.admin_kubeconfig,
        "external-secrets",
        &eso.chart().display().to_string(),
        namespace,
        &args,
    );
    assert!(
        out.status.success(),
        "helm install ESO: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rolled_out(node, namespace);
}

/// Waits until ESO's three Deployments are available with no rollout in progress.
pub fn rolled_out(node: &Node, namespace: &str) {
    for d in DEPLOYMENTS {
        node.wait_until(
            &format!("ESO's {d} rolled out"),
            Duration::from_secs(180),
            || {
                node.cp
                    .kubectl_output(&[
                        "rollout",
                        "status",
                        "deployment",
                        d,
                        "-n",
                        namespace,
                        "--timeout=5s",
                    ])
                    .status
                    .success()
            },
        );
    }
}
