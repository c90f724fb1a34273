//! On a real node (containerd, runc, the kubelet, kube-proxy, kube-scheduler, inside namespaces
//! of the test's own): eso-recovery installed with its Helm chart, its image built from the
//! Dockerfile, and the CronJob ticking by itself. The harness never starts the binary here; it
//! watches the Jobs, their pods and their logs, as an operator would.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    helm::{chart, helm},
    image::built,
    node::Node,
    seed::Seed,
};

/// The chart installed as a user installs it, with the image imported into the node.
fn install_chart(node: &Node) {
    let image = built();
    node.import(image);
    let (repository, tag) = image.reference.rsplit_once(':').expect("a tagged image");
    let (registry, repository) = repository.split_once('/').expect("a registry");
    let out = helm(&[
        "install",
        "eso-recovery",
        &chart(),
        "-n",
        "security",
        "--kubeconfig",
        &node.cp.admin_kubeconfig.display().to_string(),
        "--set",
        &format!("image.registry={registry}"),
        "--set",
        &format!("image.repository={repository}"),
        "--set",
        &format!("image.tag={tag}"),
    ]);
    assert!(
        out.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first pod of a Job the CronJob made, once it has finished.
fn first_finished_run(node: &Node, limit: Duration) -> Value {
    let mut pod = Value::Null;
    node.wait_until("a pod of the CronJob finished", limit, || {
        let pods = node.cp.get_json(&[
            "pods",
            "-n",
            "security",
            "-l",
            "app.kubernetes.io/name=eso-recovery",
        ]);
        pod = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .cloned()
            .unwrap_or(Value::Null);
        !pod.is_null()
    });
    pod
}

#[test]
fn the_cronjob_ticks_by_itself_and_its_pod_runs_the_image_under_restricted() {
    let node = Node::start();
    // The design's objects; ESO's Deployments with no replicas yet, its store degraded; Vault is
    // not there at all (its Service does not exist yet): every run finds it not ready.
    let seed = Seed {
        replicas: 0,
        ..Seed::design()
    };
    seed.apply_objects(&node.cp);
    seed.set_store(&node.cp, false);
    install_chart(&node);

    let pod = first_finished_run(&node, Duration::from_secs(150));
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    // What it logged (the kubelet's log of the container, through the API server).
    let logs = node.cp.kubectl(&["logs", "-n", "security", name]);
    assert_eq!(
        pod["status"]["phase"], "Succeeded",
        "{}\n{logs}",
        pod["status"]
    );
    // Made by a Job the CronJob made.
    let job = pod["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap_or_default();
    let job = node.cp.get_json(&["job", job, "-n", "security"]);
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["kind"], "CronJob",
        "{job}"
    );
    // Admitted under Pod Security "restricted", as the image's user, with a read-only root.
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"], true,
        "{container}"
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532, "{pod}");
    let image_id = pod["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap_or_default();
    assert!(image_id.ends_with(&built().id), "{image_id}");
    // Vault awaited for the chart's 45 s, then ESO left alone.
    let summary: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "summary")
        .unwrap_or(Value::Null);
    assert_eq!(summary["outcome"], "vault_not_ready", "{logs}");
    let awaited = summary["awaited"].as_str().unwrap_or_default();
    assert!(
        awaited.starts_with("45s") && awaited.ends_with("Vault still not ready"),
        "{logs}"
    );
    for at in seed.restarted_at(&node.cp) {
        assert!(at.is_none(), "a Deployment was restarted: {logs}");
    }
}
