//! On a real node (containerd, runc, the kubelet, kube-proxy, kube-scheduler, inside namespaces
//! of the test's own): eso-recovery installed with its Helm chart, its image built from the
//! Dockerfile, and the CronJob ticking by itself; OpenBao as a pod behind its Service, found
//! through cluster DNS at the design's URL. The harness never starts the binary here; it
//! watches the Jobs, their pods and their logs, as an operator would.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    eso_pods,
    helm::{self, chart},
    image::built,
    node::Node,
    openbao::OpenBao,
    procs::wait_until,
    seed::{Seed, secret_data},
};

/// The chart installed as a user installs it, with the image imported into the node.
fn install_chart(node: &Node) {
    let image = built();
    node.import(image);
    let (repository, tag) = image.reference.rsplit_once(':').expect("a tagged image");
    let (registry, repository) = repository.split_once('/').expect("a registry");
    let sets = [
        format!("image.registry={registry}"),
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
    ];
    let out = helm::install(
        &node.cp.admin_kubeconfig,
        "eso-recovery",
        &chart(),
        "security",
        &sets
            .iter()
            .flat_map(|s| ["--set".to_string(), s.clone()])
            .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The CronJob's pods, oldest first.
fn runs(node: &Node) -> Vec<Value> {
    let pods = node.cp.get_json(&[
        "pods",
        "-n",
        "security",
        "-l",
        "app.kubernetes.io/name=eso-recovery",
        "--sort-by=.metadata.creationTimestamp",
    ]);
    pods["items"].as_array().cloned().unwrap_or_default()
}

/// The first of the CronJob's pods that is not in `seen` and reaches one of `phases`.
fn next_run(node: &Node, seen: &[String], phases: &[&str], limit: Duration) -> Value {
    let mut found = Value::Null;
    node.wait_until(
        &format!("a new run of the CronJob {phases:?}"),
        limit,
        || {
            found = runs(node)
                .into_iter()
                .filter(|p| {
                    !seen
                        .iter()
                        .any(|s| p["metadata"]["name"].as_str() == Some(s))
                })
                .find(|p| phases.iter().any(|ph| p["status"]["phase"] == *ph))
                .unwrap_or(Value::Null);
            !found.is_null()
        },
    );
    found
}

fn name(pod: &Value) -> String {
    pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The pod's log (the kubelet's file, through the API server) and its summary line.
fn summary(node: &Node, pod: &Value) -> (String, Value) {
    let logs = node.cp.kubectl(&["logs", "-n", "security", &name(pod)]);
    let summary = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "summary")
        .unwrap_or(Value::Null);
    (logs, summary)
}

#[test]
fn a_sealed_vault_pod_is_awaited_by_the_cronjob_and_the_run_that_sees_the_unseal_restarts() {
    let node = Node::start();
    // The design's objects, ESO's Deployments with no replicas and its store degraded; OpenBao as
    // a pod behind the Service `vault`, sealed: the design's URL resolves through cluster DNS.
    let seed = Seed {
        replicas: 0,
        ..Seed::design()
    };
    seed.apply_objects(&node.cp);
    seed.set_store(&node.cp, false);
    let bao = OpenBao::on_node(&node, "security");
    bao.seal();
    install_chart(&node);

    // A run the CronJob started by itself: it awaits Vault for the chart's 45 s and leaves ESO.
    let pod = next_run(
        &node,
        &[],
        &["Succeeded", "Failed"],
        Duration::from_secs(150),
    );
    let (logs, s) = summary(&node, &pod);
    assert_eq!(
        pod["status"]["phase"], "Succeeded",
        "{}\n{logs}",
        pod["status"]
    );
    let job = pod["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap_or_default();
    let job = node.cp.get_json(&["job", job, "-n", "security"]);
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["kind"], "CronJob",
        "{job}"
    );
    // Admitted under Pod Security "restricted", as the image's user, with a read-only root.
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true,
        "{pod}"
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532, "{pod}");
    let image_id = pod["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap_or_default();
    assert!(image_id.ends_with(&built().id), "{image_id}");
    assert_eq!(s["outcome"], "vault_not_ready", "{logs}");
    assert_eq!(s["vault"], "sealed", "{logs}");
    let awaited = s["awaited"].as_str().unwrap_or_default();
    assert!(
        awaited.starts_with("45s") && awaited.ends_with("Vault still not ready"),
        "{logs}"
    );
    for at in seed.restarted_at(&node.cp) {
        assert!(
            at.is_none(),
            "a Deployment was restarted while Vault was sealed: {logs}"
        );
    }

    // The next run, while it awaits: the unseal. It restarts ESO at once.
    let running = next_run(&node, &[name(&pod)], &["Running"], Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(5));
    bao.unseal();
    let unsealed = jiff::Timestamp::now();
    let after = next_run(
        &node,
        &[name(&pod)],
        &["Succeeded", "Failed"],
        Duration::from_secs(90),
    );
    assert_eq!(name(&after), name(&running));
    let (logs, s) = summary(&node, &after);
    assert_eq!(s["outcome"], "restarted", "{logs}");
    // From outside, as an operator runs it: the plugin with their kubeconfig and a port-forward
    // to Vault (the relay). ESO was just restarted: it would do nothing.
    let (out, _path) = support::kubectl_plugin(
        &node.cp.admin_kubeconfig,
        &[
            "eso-recovery".into(),
            "--dry-run".into(),
            format!("--vault-addr={}", bao.addr),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("summary: outcome=") && l.contains("dry_run=true")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for at in seed.restarted_at(&node.cp) {
        let at: jiff::Timestamp = at
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("a Deployment was not restarted: {logs}"));
        // restartedAt has whole seconds.
        let lag = (at - unsealed)
            .total(jiff::Unit::Second)
            .unwrap_or(f64::MAX);
        assert!(lag < 5.0, "restarted {lag:.1} s after the unseal: {logs}");
    }
}

/// The short seal on the node, with ESO installed with `eso_values`: ESO's pods synced the
/// Secret; Vault is sealed just after one of the ExternalSecret's 15 s refreshes (so ESO cannot
/// have read the new value before it); the store stays Ready; the CronJob's awaiting run sees the
/// unseal and restarts ESO's pods. Returns the seconds from the unseal to the Secret holding the
/// value written before the seal.
fn short_seal_on_node(eso_values: &[&str]) -> f64 {
    let node = Node::start();
    let seed = Seed {
        es_refresh: "15s".into(),
        ..Seed::design()
    };
    let mut objects = seed.clone();
    objects.deployments.clear();
    objects.apply_objects(&node.cp);
    let bao = OpenBao::on_node(&node, "security");
    bao.configure_for_eso(&node.cp, "security");
    let secret =
        |password: &str| serde_json::json!({"POSTGRES_USER": "app", "POSTGRES_PASSWORD": password});
    bao.kv_put("postgres-secret", &secret("before"));
    eso_pods::install(&node, "security", eso_values);
    let password = || secret_data(&node.cp).get("POSTGRES_PASSWORD").cloned();
    node.wait_until(
        "the Secret synced by ESO's pods",
        Duration::from_secs(120),
        || password().as_deref() == Some("before"),
    );
    install_chart(&node);

    // Right after a refresh: the new value, then the seal.
    let refreshed = || {
        node.cp
            .get_json(&["externalsecret", "postgres-secret", "-n", "db"])["status"]["refreshTime"]
            .clone()
    };
    let last = refreshed();
    wait_until(
        "a refresh of the ExternalSecret",
        Duration::from_secs(30),
        || refreshed() != last,
    );
    bao.kv_put("postgres-secret", &secret("after"));
    bao.seal();
    node.wait_until(
        "the ExternalSecret failing",
        Duration::from_secs(60),
        || {
            let es = node
                .cp
                .get_json(&["externalsecret", "postgres-secret", "-n", "db"]);
            es["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "False")
        },
    );
    // Back while a run of the CronJob awaits it.
    let seen: Vec<String> = runs(&node).iter().map(name).collect();
    let running = next_run(&node, &seen, &["Running"], Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        password().as_deref(),
        Some("before"),
        "synced before the unseal"
    );
    bao.unseal();
    let synced = wait_until(
        "the Secret holding Vault's value",
        Duration::from_secs(90),
        || password().as_deref() == Some("after"),
    );
    let run = next_run(
        &node,
        &seen,
        &["Succeeded", "Failed"],
        Duration::from_secs(90),
    );
    assert_eq!(name(&run), name(&running));
    let (logs, s) = summary(&node, &run);
    assert_eq!(s["outcome"], "restarted", "{logs}");
    // ESO's pods were replaced by the rollout eso-recovery started.
    for d in eso_pods::DEPLOYMENTS {
        let deployment = node.cp.get_json(&["deployment", d, "-n", "security"]);
        assert!(
            deployment["spec"]["template"]["metadata"]["annotations"]
                ["kubectl.kubernetes.io/restartedAt"]
                .is_string(),
            "{d} was not restarted: {logs}"
        );
    }
    synced.as_secs_f64()
}

#[test]
fn after_a_short_seal_the_cronjob_restarts_eso_pods_and_the_secret_holds_vaults_value() {
    let secs = short_seal_on_node(&[]);
    println!("ESO, one replica each: the Secret held Vault's value {secs:.1} s after the unseal");
}

#[test]
fn eso_in_ha_recovers_too_after_its_new_leader_waits_out_the_old_lease() {
    // ESO's controller as its chart allows for HA: 2 replicas with leader election. The old
    // leader does not release its lease on shutdown (controller-runtime's default, and ESO sets
    // no other), so a new one waits it out (15 s) before it reconciles.
    let secs = short_seal_on_node(&["replicaCount=2", "leaderElect=true"]);
    println!(
        "ESO in HA (2 replicas, leader election): the Secret held Vault's value {secs:.1} s after the unseal"
    );
}
