//! On a real node (containerd, runc, the kubelet, kube-proxy, kube-scheduler, inside namespaces
//! of the test's own): eso-recovery installed with its Helm chart, its image built from the
//! Dockerfile, and the CronJob ticking by itself; OpenBao as a pod behind its Service, found
//! through cluster DNS at the design's URL. The harness never starts the binary here; it
//! watches the Jobs, their pods and their logs, as an operator would.

use std::{
    ops::Range,
    time::{Duration, Instant},
};

use harness::{
    node::Node,
    node::eso_pods,
    node::recovery_pods::{self, Strategy, name, next_run, runs, summary, the_one_that_acted},
    node::stack::NodeStack,
    process::openbao::OpenBao,
    process::seed::Seed,
    tools::eso_version::EsoVersion,
    tools::image::built,
    tools::outage::Outage,
    tools::procs::wait_until,
};
use serde_json::Value;

/// ESO retries a failed ExternalSecret 1, 3, 7, 15, 31, 63 and 127 s after its first failure
/// (1 s doubling), and an attempt in flight when Vault returns (Vault's client retries a 503 for
/// a few seconds) recovers the Secret by itself, leaving nothing stuck to restart: Vault returns
/// in the quiet stretch between the last two, as in a longer outage.
const QUIET_AFTER_FIRST_FAILURE: Range<Duration> =
    Duration::from_secs(70)..Duration::from_secs(120);

/// A run awaits Vault for the chart's 75 s; Vault returns at least 3 s into that and 10 s before
/// its end.
const AWAITING: Range<Duration> = Duration::from_secs(3)..Duration::from_secs(65);

/// Waits for [`QUIET_AFTER_FIRST_FAILURE`] after `failed` and a run of the CronJob (not in
/// `seen`) inside [`AWAITING`] in it, and returns that run.
fn run_awaiting_in_quiet_stretch(node: &Node, seen: &[String], failed: Instant) -> Value {
    std::thread::sleep(
        QUIET_AFTER_FIRST_FAILURE
            .start
            .saturating_sub(failed.elapsed()),
    );
    let mut seen = seen.to_vec();
    loop {
        let run = next_run(node, &seen, &["Running"], Duration::from_secs(90));
        let started: jiff::Timestamp = run["status"]["startTime"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("a running pod with a startTime: {run}"));
        let age =
            Duration::try_from(jiff::Timestamp::now().duration_since(started)).unwrap_or_default();
        if age < AWAITING.end {
            std::thread::sleep(AWAITING.start.saturating_sub(age));
            assert!(
                failed.elapsed() < QUIET_AFTER_FIRST_FAILURE.end,
                "no run of the CronJob awaited Vault within {QUIET_AFTER_FIRST_FAILURE:?} of the first failure"
            );
            return run;
        }
        seen.push(name(&run));
    }
}

/// `outage` on the node, with `eso` installed with `eso_values` and the design's objects but for
/// the ExternalSecret's 15 s refresh (and `store_refresh`): ESO's pods synced the Secret; the
/// new value is written to Vault right after one of its refreshes, and the outage begins at
/// once; it holds until the ExternalSecret fails (and, with `store_refresh`, the store is
/// degraded); a run of the CronJob awaits Vault, sees it back and restarts ESO's pods (or, with
/// `Strategy::Resync`, annotates the stuck objects: no pod replaced, the leader kept). Returns the
/// seconds from Vault's return to the Secret holding the new value.
fn outage_on_node(
    eso: EsoVersion,
    outage: Outage,
    store_refresh: Option<u32>,
    eso_values: &[&str],
    strategy: Strategy,
) -> f64 {
    let seed = Seed {
        es_refresh: "15s".into(),
        store_refresh,
        ..Seed::design()
    };
    let stack = NodeStack::start(Node::start(eso), seed, eso_values, Some(strategy.values()));
    let node = &stack.node;
    if strategy == Strategy::Resync {
        stack.wait_for_resync_guard();
    }
    let before = eso_pods::Seen::now(node, &stack.seed.namespace);
    stack.rotate_then_begin("after", outage);
    node.wait_until(
        "the ExternalSecret failing",
        Duration::from_secs(120),
        || stack.external_secret_failing(),
    );
    let failed = Instant::now();
    if store_refresh.is_some() {
        node.wait_until("the store degraded", Duration::from_secs(120), || {
            stack.store_degraded()
        });
    } else {
        assert!(
            !stack.store_degraded(),
            "the store degraded in a short outage"
        );
    }
    // Back between two of ESO's own retries, while a run of the CronJob awaits it.
    let seen: Vec<String> = runs(node)
        .iter()
        .filter(|p| p["status"]["phase"] != "Running")
        .map(name)
        .collect();
    let running = run_awaiting_in_quiet_stretch(node, &seen, failed);
    assert_ne!(
        stack.password().as_deref(),
        Some("after"),
        "synced before Vault was back"
    );
    let ended: Vec<String> = runs(node)
        .iter()
        .filter(|p| {
            ["Succeeded", "Failed"]
                .iter()
                .any(|ph| p["status"]["phase"] == *ph)
        })
        .map(name)
        .collect();
    assert!(
        !ended.contains(&name(&running)),
        "{} ended before Vault came back",
        name(&running)
    );
    stack.end(outage);
    let synced = wait_until(
        "the Secret holding Vault's value",
        Duration::from_secs(90),
        || stack.password().as_deref() == Some("after"),
    );
    // The runs that may have seen Vault come back: every one that had not ended before, the one
    // found awaiting among them, and any the CronJob started since (Vault can come back at a tick).
    let watching: Vec<Value> = runs(node)
        .into_iter()
        .filter(|p| !ended.contains(&name(p)))
        .collect();
    let acted = match strategy {
        Strategy::Restart => "restarted",
        Strategy::Resync => "resynced",
    };
    let (logs, s) = the_one_that_acted(node, &watching, acted);
    let restarted = stack.seed.restarted_at(&node.cp);
    match strategy {
        Strategy::Restart => {
            // ESO's pods were replaced by the rollout eso-recovery started.
            for (d, at) in stack.seed.deployments.iter().zip(restarted) {
                assert!(at.is_some(), "{d} was not restarted: {logs}");
            }
        }
        Strategy::Resync => {
            assert_eq!(s["resync"]["first"][0], "db/postgres-secret", "{logs}");
            assert!(
                restarted.iter().all(Option::is_none),
                "{restarted:?}: {logs}"
            );
            assert_eq!(
                eso_pods::Seen::now(node, &stack.seed.namespace),
                before,
                "ESO's pods or its leader changed"
            );
        }
    }
    synced.as_secs_f64()
}

/// ESO as users install it today, from its own 2.9.0 chart: each test's name says so.
mod on_eso_2_9 {
    use super::*;

    const ESO: EsoVersion = EsoVersion::V2_9;

    #[test]
    fn a_sealed_vault_pod_is_awaited_by_the_cronjob_and_the_run_that_sees_the_unseal_restarts() {
        let node = Node::start(ESO);
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
        let pulled_from = recovery_pods::install(&node, &[]);

        // The CronJob's runs while Vault stays sealed, looked at every second: the first awaits
        // Vault for the chart's 75 s and leaves ESO; the next starts at the next tick, before
        // the first stops. So from the first run's start one is always watching, and never more
        // than two are there at once.
        let (mut most, mut unwatched, mut watched_since) = (0, 0, None::<Instant>);
        let installed = Instant::now();
        let pod = loop {
            let all = runs(&node);
            let phase =
                |p: &Value, phases: &[&str]| phases.iter().any(|ph| p["status"]["phase"] == *ph);
            most = most.max(
                all.iter()
                    .filter(|p| phase(p, &["Pending", "Running"]))
                    .count(),
            );
            let watching = all.iter().any(|p| phase(p, &["Running"]));
            match (watched_since, watching) {
                (None, true) => watched_since = Some(Instant::now()),
                (Some(_), false) => unwatched += 1,
                _ => {}
            }
            if let Some(done) = all.iter().find(|p| phase(p, &["Succeeded", "Failed"])) {
                assert!(watching, "no run watching as the first ended: {all:?}");
                break done.clone();
            }
            assert!(
                installed.elapsed() < Duration::from_secs(240),
                "the first run did not end within 240 s of the install: {all:?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_eq!(unwatched, 0, "seconds with no run watching Vault");
        assert!(most <= 2, "{most} runs at once");
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
        // Pulled by the kubelet from the node's registry, the manifest the Dockerfile's build made.
        assert_eq!(
            pod["status"]["containerStatuses"][0]["imageID"],
            format!("{pulled_from}@{}", built().digest),
            "{pod}"
        );
        assert_eq!(s["outcome"], "vault_not_ready", "{logs}");
        assert_eq!(s["vault"], "sealed", "{logs}");
        let awaited = s["awaited"].as_str().unwrap_or_default();
        assert!(
            awaited.starts_with("1m 15s") && awaited.ends_with("Vault still not ready"),
            "{logs}"
        );
        for at in seed.restarted_at(&node.cp) {
            assert!(
                at.is_none(),
                "a Deployment was restarted while Vault was sealed: {logs}"
            );
        }

        // The unseal, while the next run awaits (and a third, if it started): one restarts ESO
        // at once.
        let watching: Vec<Value> = runs(&node)
            .into_iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .collect();
        bao.unseal();
        let unsealed = jiff::Timestamp::now();
        let (logs, _) = the_one_that_acted(&node, &watching, "restarted");
        // From outside, as an operator runs it: the plugin with their kubeconfig and a port-forward
        // to Vault (the relay). ESO was just restarted: it would do nothing.
        let (out, _path) = harness::run::kubectl_plugin(
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
                && text.lines().last().is_some_and(
                    |l| l.starts_with("summary: outcome=") && l.contains("dry_run=true")
                ),
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

    #[test]
    fn after_a_short_seal_the_cronjob_restarts_eso_pods_and_the_secret_holds_vaults_value() {
        let secs = outage_on_node(ESO, Outage::ShortSeal, None, &[], Strategy::Restart);
        println!(
            "{ESO}, one replica each: the Secret held Vault's value {secs:.1} s after the unseal"
        );
    }

    #[test]
    fn after_vault_restarts_sealed_and_the_store_degrades_the_restart_recovers_the_secret() {
        // Vault's container killed: the kubelet starts it again, sealed. The store is validated
        // every 20 s here (the design's: 5 min), so it degrades within the test, as in a long
        // outage; the ExternalSecret is deep in its backoff when Vault is back.
        let secs = outage_on_node(
            ESO,
            Outage::RestartedSealed,
            Some(20),
            &[],
            Strategy::Restart,
        );
        println!(
            "{ESO}, Vault restarted, store degraded: the Secret held Vault's value {secs:.1} s after the unseal"
        );
    }

    #[test]
    fn eso_in_ha_recovers_too_after_its_new_leader_waits_out_the_old_lease() {
        // ESO's controller as its chart allows for HA: 2 replicas with leader election. The old
        // leader does not release its lease on shutdown (controller-runtime's default, and ESO sets
        // no other), so a new one waits it out (15 s) before it reconciles.
        let secs = outage_on_node(
            ESO,
            Outage::ShortSeal,
            None,
            &["replicaCount=2", "leaderElect=true"],
            Strategy::Restart,
        );
        println!(
            "{ESO} in HA (2 replicas, leader election): the Secret held Vault's value {secs:.1} s after the unseal"
        );
    }

    #[test]
    fn eso_in_ha_is_resynced_by_the_cronjob_with_no_pod_replaced_and_its_leader_kept() {
        // (h) The chart with config.strategy=resync: the run annotates the stuck ExternalSecret,
        // so nothing waits for a lease.
        let secs = outage_on_node(
            ESO,
            Outage::ShortSeal,
            None,
            &["replicaCount=2", "leaderElect=true"],
            Strategy::Resync,
        );
        println!(
            "{ESO} in HA, --strategy resync: the Secret held Vault's value {secs:.1} s after the unseal"
        );
    }
}
