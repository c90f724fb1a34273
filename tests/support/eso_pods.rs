//! ESO as its own Helm chart installs it on the node: the controller, the webhook and the cert
//! controller, one replica each (the chart's defaults), from an image of the node's
//! [`EsoVersion`](super::eso_version::EsoVersion) built here. The chart is that release's own
//! (`tests/eso/build.sh` drops its optional bitwarden-sdk-server dependency, off by default, which
//! lives in a registry this machine cannot reach). The CRDs are the control plane's (the same
//! release's), so `installCRDs=false`; the image is the one thing set beyond that.

use std::time::Duration;

use super::{helm, image::scratch, node::Node};

/// ESO's three Deployments, as the chart names them for release `external-secrets`.
pub const DEPLOYMENTS: [&str; 3] = [
    "external-secrets",
    "external-secrets-webhook",
    "external-secrets-cert-controller",
];

/// Installs ESO into `namespace` with `values` (`key=value`, as `--set` takes them) and waits
/// until its three Deployments are available and its webhook answers.
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
    let args: Vec<String> = sets
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect();
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
    for d in DEPLOYMENTS {
        node.wait_until(
            &format!("ESO's {d} available"),
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
