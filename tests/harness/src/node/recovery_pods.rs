//! eso-recovery as its Helm chart installs it on a [`Node`], with the image built from the
//! repository's Dockerfile, and the CronJob's pods as an operator watches them: their phases,
//! their logs and the summary line each run ends with.

use std::time::Duration;

use serde_json::Value;

use crate::{
    node::Node,
    tools::helm::{self, chart},
    tools::image::built,
};

/// The chart installed into `security` as a user installs it (plus `sets`, as `--set` takes
/// them), its image pushed to the node's registry for the kubelet to pull. Returns the image's
/// repository there (`HOST/NAME`), which a pulled image's `imageID` names.
pub fn install(node: &Node, sets: &[&str]) -> String {
    let reference = node.publish(built());
    let (pulled_from, tag) = reference.rsplit_once(':').expect("a tagged image");
    let (registry, repository) = pulled_from.split_once('/').expect("a registry");
    let mut all = vec![
        format!("image.registry={registry}"),
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
    ];
    all.extend(sets.iter().map(|s| s.to_string()));
    let args = helm::set_args(all);
    let out = helm::install(
        &node.cp.admin_kubeconfig,
        "eso-recovery",
        &chart(),
        "security",
        &args,
    );
    assert!(
        out.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pulled_from.to_string()
}

/// How the CronJob's run wakes ESO: the chart's `config.strategy`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Strategy {
    /// ESO's Deployments restarted (the chart's default).
    Restart,
    /// The stuck objects annotated; the chart adds the admission policy that guards it.
    Resync,
}

impl Strategy {
    /// The chart's values (as `--set` takes them) that pick it.
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Strategy::Restart => &[],
            Strategy::Resync => &["config.strategy=resync"],
        }
    }
}

/// The CronJob's pods, oldest first.
pub fn runs(node: &Node) -> Vec<Value> {
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
pub fn next_run(node: &Node, seen: &[String], phases: &[&str], limit: Duration) -> Value {
    let mut found = Value::Null;
    node.wait_until(
        &format!("a new run of the CronJob {phases:?}"),
        limit,
        || {
            found = runs(node)
                .into_iter()
                .filter(|p| !seen.iter().any(|s| *s == name(p)))
                .find(|p| phases.iter().any(|ph| p["status"]["phase"] == *ph))
                .unwrap_or(Value::Null);
            !found.is_null()
        },
    );
    found
}

/// Waits for the run `pod` to end (Succeeded or Failed) and returns it as it ended.
pub fn finished(node: &Node, pod: &Value, limit: Duration) -> Value {
    let mut now = Value::Null;
    node.wait_until(&format!("the run {} ending", name(pod)), limit, || {
        let out =
            node.cp
                .kubectl_output(&["get", "-o", "json", "pod", &name(pod), "-n", "security"]);
        assert!(
            out.status.success(),
            "the run {} is gone before it was seen ending (did the CronJob's history limit \
             delete its Job?): {}",
            name(pod),
            String::from_utf8_lossy(&out.stderr)
        );
        now = serde_json::from_slice(&out.stdout).expect("kubectl get pod -o json");
        ["Succeeded", "Failed"]
            .iter()
            .any(|ph| now["status"]["phase"] == *ph)
    });
    now
}

/// A pod's name.
pub fn name(pod: &Value) -> String {
    pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The pod's log (the kubelet's file, through the API server) and its summary line (Null if it
/// has none yet).
pub fn summary(node: &Node, pod: &Value) -> (String, Value) {
    let out = node
        .cp
        .kubectl_output(&["logs", "-n", "security", &name(pod)]);
    let logs = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "summary")
        .unwrap_or(Value::Null);
    (logs, summary)
}

/// The outcomes that change ESO.
const ACTIONS: [&str; 4] = [
    "restarted",
    "resynced",
    "fell_back_to_restart",
    "restart_failed",
];

/// Waits for each of `pods` (the runs watching when Vault came back) to end, and returns the log
/// and summary of the one whose outcome is `acted`: exactly one of them acts, and each other
/// ends with exit 0 and no action (it lost the claim, or saw the action already taken).
pub fn the_one_that_acted(node: &Node, pods: &[Value], acted: &str) -> (String, Value) {
    let mut ended: Vec<(String, Value)> = pods
        .iter()
        .map(|p| summary(node, &finished(node, p, Duration::from_secs(120))))
        .collect();
    let outcomes: Vec<String> = ended
        .iter()
        .map(|(_, s)| format!("{} (exit {})", s["outcome"], s["exit_code"]))
        .collect();
    let logs: Vec<&str> = ended.iter().map(|(l, _)| l.as_str()).collect();
    let acting: Vec<usize> = (0..ended.len())
        .filter(|i| ended[*i].1["outcome"] == acted)
        .collect();
    assert_eq!(
        acting.len(),
        1,
        "the runs watching when Vault came back: {outcomes:?}\n{}",
        logs.join("\n")
    );
    for (i, (_, s)) in ended.iter().enumerate().filter(|(i, _)| *i != acting[0]) {
        assert!(
            s["exit_code"] == 0 && !ACTIONS.iter().any(|a| s["outcome"] == *a),
            "run {i} of {outcomes:?} acted too or failed:\n{}",
            logs.join("\n")
        );
    }
    ended.swap_remove(acting[0])
}
