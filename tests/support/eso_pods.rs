//! ESO as its own Helm chart installs it on the node: the controller, the webhook and the cert
//! controller, one replica each (the chart's defaults), from an image of the pinned controller
//! (`tests/eso/build.sh`) built here. The chart is ESO's own, from the same module as the
//! controller and its CRDs, less one thing: its optional bitwarden-sdk-server dependency (off by
//! default) lives in a registry this machine cannot reach, so it is dropped from `Chart.yaml`.
//! The CRDs are the control plane's (installed from the same module), so `installCRDs=false`.

use std::time::Duration;

use super::{
    controlplane::{crds, script},
    helm,
    image::scratch,
    node::Node,
};

/// ESO's three Deployments, as the chart names them for release `external-secrets`.
pub const DEPLOYMENTS: [&str; 3] = [
    "external-secrets",
    "external-secrets-webhook",
    "external-secrets-cert-controller",
];

/// Installs ESO into `namespace` with `values` (`key=value`, as `--set` takes them) and waits
/// until its three Deployments are available and its webhook answers.
pub fn install(node: &Node, namespace: &str, values: &[&str]) {
    let binary = script("tests/eso/build.sh");
    let image = scratch(
        "external-secrets",
        &[(&binary, "/bin/external-secrets")],
        "1000:1000",
        &["/bin/external-secrets"],
    );
    node.import(&image);
    let (repository, tag) = image.reference.rsplit_once(':').expect("a tagged image");

    // ESO's chart, from the module's source, without the dependency no registry here serves.
    let source = crds()
        .ancestors()
        .nth(3)
        .expect("the module's root")
        .join("deploy/charts/external-secrets");
    let chart = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", source.display()))
        .arg(chart.path())
        .status()
        .expect("copying ESO's chart");
    assert!(copied.success());
    let meta = chart.path().join("Chart.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let text = text
        .split_once("\ndependencies:")
        .map(|(head, _)| format!("{head}\n"))
        .unwrap_or(text);
    std::fs::write(&meta, text).unwrap();
    let _ = std::fs::remove_file(chart.path().join("Chart.lock"));

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
        &chart.path().display().to_string(),
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
