//! End to end with ESO's real controller: OpenBao on raft storage with Kubernetes auth, the
//! design's objects verbatim, kube-controller-manager, and the kubelet stand-in that replaces
//! ESO's process on each new ReplicaSet. Every test asserts on the Secret `db/postgres-secret`
//! itself, not only on conditions. Each has its own control plane (the design's names are
//! cluster-wide), so they run side by side.
//!
//! Every test runs ESO v2.9.0, what users install today. The four scenarios that prove the core
//! behaviour (a degraded store, a stuck ExternalSecret behind a Ready store, an ExternalSecret's
//! own failure, a sealed Vault) run on v0.16.2 too, the oldest supported release: the module
//! `on_eso_0_16` beside `on_eso_2_9`: each test's name says the release it ran.

use std::time::{Duration, Instant};

use harness::{
    process::many::{Many, create_external_secrets},
    process::seed::Seed,
    process::stack::{FIRST_PASSWORD, Parts, Stack},
    run::Run,
    run::expect,
    run::expect_error,
    tools::eso_version::EsoVersion,
    tools::procs::wait_until,
};
use serde_json::Value;

/// When the unseal comes, counted from the ExternalSecret's first failure: in ESO's quiet stretch
/// between its retries. ESO retries 1, 3, 7, 15, 31 and 63 s after that failure (1 s doubling),
/// later by the time each failed attempt took (ESO 2.9's Vault client retries a refused request
/// for a few seconds), so by 52 s the attempt near 31 s has ended and the next is at least 11 s
/// away: an attempt in flight at the unseal would recover the Secret by itself, and ESO alone does
/// not recover in the seconds in which eso-recovery runs.
const UNSEAL_AFTER_FIRST_FAILURE: Duration = Duration::from_secs(52);

/// The ExternalSecrets refresh this often (the design's `1h` would not notice a seal in a test).
const ES_REFRESH: &str = "5s";

/// Waits for the ExternalSecret's first failure, holds the outage until the gap in ESO's
/// backoff, then unseals (for a restarted Vault, that is the operator's unseal).
fn end_outage(stack: &Stack) {
    end_outage_with(stack, || stack.bao.unseal());
}

/// As [`end_outage`], ending it with `end` (an unseal, the path restored); returns the moment
/// it ended (for an unseal: Vault's health answering 200).
fn end_outage_with(stack: &Stack, end: impl FnOnce()) -> Instant {
    stack.wait_for_external_secret_failing("db", "postgres-secret", Duration::from_secs(30));
    let first_failure = Instant::now();
    std::thread::sleep(UNSEAL_AFTER_FIRST_FAILURE.saturating_sub(first_failure.elapsed()));
    end();
    Instant::now()
}

/// The most an awaiting run may take, from the outage's end to the Secret holding Vault's value:
/// it asks Vault every 0.5 s, restarts at once, and ESO's new process syncs in 1–3 s.
const AWAITED_RECOVERY: Duration = Duration::from_secs(5);

/// Waits for the Secret to hold `password` and asserts it came within [`AWAITED_RECOVERY`] of
/// `ended`: ESO alone would wait for its backoff slot (at least 11 s away then, see
/// [`UNSEAL_AFTER_FIRST_FAILURE`]).
fn assert_synced_soon_after(stack: &Stack, password: &str, ended: Instant, outage: &str) {
    stack.wait_for_password(password, Duration::from_secs(30));
    let took = ended.elapsed();
    eprintln!(
        "{outage}: the Secret held Vault's value {:.1}s after the outage ended",
        took.as_secs_f64()
    );
    assert!(
        took <= AWAITED_RECOVERY,
        "{outage}: the Secret was synced {took:?} after the outage ended, over {AWAITED_RECOVERY:?}"
    );
    assert_eq!(stack.eso.starts(), 2, "one restart");
}

/// Right after the unseal ESO alone has not recovered yet: the test would prove nothing if it had.
fn assert_still_stale(stack: &Stack) {
    let ready = stack.external_secret_ready("db", "postgres-secret");
    assert_eq!(
        ready["status"], "False",
        "ESO recovered on its own before eso-recovery ran; the outage was too short: {ready}"
    );
}

/// After a restart by eso-recovery: the stand-in started a new ESO process and the Secret holds
/// the password written after the unseal.
fn assert_synced_by_the_restart(stack: &Stack, password: &str, run_at: Instant) {
    stack.eso.wait_for_starts(2, Duration::from_secs(30));
    stack.wait_for_password(password, Duration::from_secs(30));
    eprintln!(
        "the Secret held Vault's new value {:.1}s after eso-recovery's run began",
        run_at.elapsed().as_secs_f64()
    );
    assert_eq!(
        stack.secret_data().get("POSTGRES_USER").map(String::as_str),
        Some("app")
    );
}

/// The core scenarios as tests of the module it stands in, on its `ESO`.
macro_rules! core_scenarios {
    () => {
        #[test]
        fn a_vault_restart_that_degrades_the_store_is_recovered() {
            super::a_vault_restart_that_degrades_the_store_is_recovered(ESO);
        }

        #[test]
        fn a_short_seal_that_leaves_the_store_ready_is_recovered() {
            super::a_short_seal_that_leaves_the_store_ready_is_recovered(ESO);
        }

        #[test]
        fn an_external_secret_failing_for_its_own_reasons_restarts_at_most_once_per_outage() {
            super::an_external_secret_failing_for_its_own_reasons_restarts_at_most_once_per_outage(
                ESO,
            );
        }

        #[test]
        fn while_vault_is_sealed_eso_is_left_alone() {
            super::while_vault_is_sealed_eso_is_left_alone(ESO);
        }
    };
}

/// The oldest supported release: the core scenarios.
mod on_eso_0_16 {
    use super::*;

    const ESO: EsoVersion = EsoVersion::V0_16;

    core_scenarios!();
}

fn a_vault_restart_that_degrades_the_store_is_recovered(eso: EsoVersion) {
    // (a) The seed's incident. The store validates every 5 s, so ESO notices the seal at once.
    let mut stack = Stack::start(eso, Seed::with_real_eso(Some(5), ES_REFRESH));
    expect(&stack.recover(&[]), 0, "store_healthy");

    stack.restart_vault_sealed();
    wait_until("the store Ready=False", Duration::from_secs(30), || {
        stack.store_ready()["status"] == "False"
    });
    let sealed = stack.recover(&[]);
    expect(&sealed, 0, "vault_not_ready");
    assert_eq!(stack.restarted_at(), vec![None, None, None]);

    end_outage(&stack);
    stack.rotate("after-the-restart");
    assert_still_stale(&stack);
    assert_eq!(stack.password().as_deref(), Some(FIRST_PASSWORD));
    let run_at = Instant::now();
    let run = stack.recover(&[]);
    expect(&run, 0, "restarted");
    assert!(
        run.stdout
            .contains("ClusterSecretStore k8s-secrets is degraded")
            || run.stdout.contains("store k8s-secrets degraded"),
        "{}",
        run.dump()
    );
    assert_synced_by_the_restart(&stack, "after-the-restart", run_at);
}

fn a_short_seal_that_leaves_the_store_ready_is_recovered(eso: EsoVersion) {
    // (b) The design's store verbatim (no refreshInterval: validated every 5 minutes), so it
    // stays Ready through the seal while the ExternalSecret fails and backs off.
    let stack = Stack::start(eso, Seed::with_real_eso(None, ES_REFRESH));
    stack.bao.seal();
    expect(&stack.recover(&[]), 0, "vault_not_ready");

    end_outage(&stack);
    assert_eq!(
        stack.store_ready()["status"],
        "True",
        "the store noticed the seal"
    );
    stack.rotate("after-the-short-seal");
    assert_still_stale(&stack);
    let run_at = Instant::now();
    let run = stack.recover(&[]);
    expect(&run, 0, "restarted");
    assert_eq!(
        run.summary["external_secrets"]["stuck"][0],
        "db/postgres-secret"
    );
    assert_synced_by_the_restart(&stack, "after-the-short-seal", run_at);

    // Once per outage: with the cooldown over, nothing more is restarted.
    let again = stack.recover(&["--cooldown=0s"]);
    expect(&again, 0, "already_restarted");
    assert_eq!(stack.eso.starts(), 2);
}

fn an_external_secret_failing_for_its_own_reasons_restarts_at_most_once_per_outage(
    eso: EsoVersion,
) {
    // (d) An ExternalSecret on a key Vault does not have fails whatever ESO does.
    let stack = Stack::start(eso, Seed::with_real_eso(None, ES_REFRESH));
    stack.cp.apply(&broken_external_secret());
    stack.wait_for_external_secret_failing("db", "broken", Duration::from_secs(30));

    // Vault never went away: it fails since after Vault became active, its own reason.
    for _ in 0..3 {
        let r = stack.recover(&["--cooldown=1s"]);
        expect(&r, 0, "store_healthy");
        assert!(r.stdout.contains("their own reasons"), "{}", r.dump());
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert_eq!(stack.restarted_at(), vec![None, None, None]);
    assert_eq!(stack.eso.starts(), 1);

    // An outage: now it failed since before Vault came back, like the real one: one restart.
    stack.bao.seal();
    end_outage(&stack);
    stack.rotate("after-the-outage");
    let run_at = Instant::now();
    expect(&stack.recover(&["--cooldown=1s"]), 0, "restarted");
    assert_synced_by_the_restart(&stack, "after-the-outage", run_at);
    let first = stack.restarted_at();

    // Several runs past the cooldown: the broken one still fails, nothing more is restarted.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(1500));
        let r = stack.recover(&["--cooldown=1s"]);
        expect(&r, 0, "already_restarted");
    }
    assert_eq!(
        stack.external_secret_ready("db", "broken")["status"],
        "False"
    );
    assert_eq!(stack.restarted_at(), first);
    assert_eq!(stack.eso.starts(), 2);
}

fn while_vault_is_sealed_eso_is_left_alone(eso: EsoVersion) {
    // (e) Restarting ESO against a sealed Vault would only start its backoff again.
    let stack = Stack::start(eso, Seed::with_real_eso(Some(5), ES_REFRESH));
    let pid = stack.eso.pid();
    stack.bao.seal();
    stack.wait_for_external_secret_failing("db", "postgres-secret", Duration::from_secs(30));
    wait_until("the store Ready=False", Duration::from_secs(30), || {
        stack.store_ready()["status"] == "False"
    });
    for _ in 0..3 {
        let r = stack.recover(&["--cooldown=0s"]);
        expect(&r, 0, "vault_not_ready");
        assert_eq!(r.summary["vault"], "sealed");
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(stack.restarted_at(), vec![None, None, None]);
    assert_eq!(stack.eso.starts(), 1);
    assert_eq!(stack.eso.pid(), pid);
    // ESO keeps the Secret it had: the old value, still there.
    assert_eq!(stack.password().as_deref(), Some(FIRST_PASSWORD));
}

/// What users run: the core scenarios, and the rest.
mod on_eso_2_9 {
    use super::*;

    const ESO: EsoVersion = EsoVersion::V2_9;

    core_scenarios!();

    #[test]
    fn a_rotation_after_the_recovery_reaches_the_secret_at_its_next_refresh() {
        // (c) The restarted ESO runs its normal cycle again: no force-sync, only refreshInterval.
        let stack = Stack::start(ESO, Seed::with_real_eso(None, ES_REFRESH));
        stack.bao.seal();
        end_outage(&stack);
        stack.rotate("during-recovery");
        let run_at = Instant::now();
        // --wait returns once the rollouts are done, the store is Ready and the stuck one synced.
        let waited = stack.recover(&["--wait", "--timeout=60s"]);
        expect(&waited, 0, "recovered");
        assert_eq!(
            waited.summary["external_secrets"]["stuck"][0],
            "db/postgres-secret"
        );
        assert!(
            waited.summary["external_secrets"]
                .get("still_failing")
                .is_none(),
            "{}",
            waited.dump()
        );
        assert_synced_by_the_restart(&stack, "during-recovery", run_at);

        stack.rotate("rotated-later");
        let waited = stack.wait_for_password("rotated-later", Duration::from_secs(30));
        eprintln!(
            "the rotation reached the Secret after {waited:?} (refreshInterval {ES_REFRESH})"
        );
        assert_eq!(stack.eso.starts(), 2, "no restart was needed for it");
        expect(&stack.recover(&["--cooldown=0s"]), 0, "already_restarted");
    }

    #[test]
    fn an_awaiting_run_started_during_a_seal_restarts_the_moment_vault_is_ready() {
        // (e) A healthy Vault with --await-vault set: no wait, the same requests as without it.
        let stack = Stack::start(ESO, Seed::with_real_eso(None, ES_REFRESH));
        let healthy = stack.recover(&["--await-vault=10m"]);
        expect(&healthy, 0, "store_healthy");
        assert!(
            healthy.summary.get("awaited").is_none(),
            "{}",
            healthy.dump()
        );
        assert!(
            healthy.elapsed < Duration::from_secs(5),
            "{}",
            healthy.dump()
        );
        assert_eq!(stack.password().as_deref(), Some(FIRST_PASSWORD));

        // (d) Sealed throughout: the run gives up after the duration, exit 0, nothing restarted.
        stack.rotate_then("written-before-the-unseal", || stack.bao.seal());
        let gave_up = stack.recover(&["--await-vault=3s"]);
        expect(&gave_up, 0, "vault_not_ready");
        assert!(
            gave_up.elapsed >= Duration::from_secs(3)
                && gave_up.elapsed < Duration::from_secs(3 + 30),
            "{}",
            gave_up.dump()
        );
        assert!(
            gave_up.stderr.contains("awaiting it for up to 3s"),
            "{}",
            gave_up.dump()
        );
        assert!(
            gave_up.stderr.contains("still not ready"),
            "{}",
            gave_up.dump()
        );
        assert_eq!(stack.restarted_at(), vec![None, None, None]);
        assert_eq!(stack.eso.starts(), 1);
        assert_eq!(stack.password().as_deref(), Some(FIRST_PASSWORD));

        // (a) An awaiting run started during the seal (the runbook's "run it, then unseal").
        let awaiting = stack.recover_in_background(&["--await-vault=2m"]);
        let unsealed = end_outage_with(&stack, || stack.bao.unseal());
        assert_synced_soon_after(&stack, "written-before-the-unseal", unsealed, "seal");
        let run = awaiting.join().unwrap();
        expect(&run, 0, "restarted");
        assert!(
            run.summary["awaited"]
                .as_str()
                .is_some_and(|a| a.contains("until Vault was ready")),
            "{}",
            run.dump()
        );
        assert_eq!(
            run.summary["external_secrets"]["stuck"][0],
            "db/postgres-secret"
        );
        expect(&stack.recover(&["--cooldown=0s"]), 0, "already_restarted");
    }

    #[test]
    fn a_cut_path_to_a_running_vault_is_an_outage_too() {
        // (b) Vault's process runs on, so its clock (sys/leader's active_time) does not move; ESO
        // and eso-recovery cannot reach it (the relay stands in for a network or DNS outage).
        let stack = Stack::start_behind_relay(ESO, Seed::with_real_eso(None, ES_REFRESH));
        let active_before = stack.bao.leader()["active_time"].clone();
        stack.rotate_then("written-during-the-cut", || stack.cut_vault_path());
        let awaiting = stack.recover_in_background(&["--await-vault=2m"]);
        let restored = end_outage_with(&stack, || stack.restore_vault_path());
        assert_synced_soon_after(&stack, "written-during-the-cut", restored, "cut path");
        let run = awaiting.join().unwrap();
        expect(&run, 0, "restarted");
        assert!(
            run.stdout.contains("Vault was seen ready again at"),
            "the restart was not for the outage eso-recovery saw: {}",
            run.dump()
        );
        assert_eq!(
            stack.bao.leader()["active_time"],
            active_before,
            "Vault's clock moved"
        );
        let record = stack.outage_record();
        assert!(
            record["eso-recovery/vault-ready-again-at"].is_string(),
            "{record}"
        );
    }

    #[test]
    fn an_outage_that_ends_between_two_runs_restarts_once_and_a_bad_record_restarts_nothing() {
        // (c) Plain runs, as the CronJob without --await-vault: one sees the cut, the next the
        // path back. Only the record joins them: Vault's clock says nothing happened.
        let stack = Stack::start_behind_relay(ESO, Seed::with_real_eso(None, ES_REFRESH));
        stack.rotate_then("written-during-the-cut", || stack.cut_vault_path());
        expect(&stack.recover(&[]), 0, "vault_not_ready");
        let record = stack.outage_record();
        assert!(
            record["eso-recovery/vault-not-ready-since"].is_string(),
            "{record}"
        );
        end_outage_with(&stack, || stack.restore_vault_path());
        assert_still_stale(&stack);
        let run_at = Instant::now();
        let second = stack.recover(&[]);
        expect(&second, 0, "restarted");
        assert_eq!(
            second.summary["external_secrets"]["stuck"][0],
            "db/postgres-secret"
        );
        assert_synced_by_the_restart(&stack, "written-during-the-cut", run_at);

        // (f) Once per outage, across the record: past the cooldown nothing more is restarted.
        expect(&stack.recover(&["--cooldown=0s"]), 0, "already_restarted");

        // A record garbled mid-outage is ignored with a warning: no restart comes of it.
        let first_restart = stack.restarted_at();
        stack.cut_vault_path();
        stack.wait_for_external_secret_failing("db", "postgres-secret", Duration::from_secs(30));
        expect(&stack.recover(&[]), 0, "vault_not_ready");
        stack.cp.kubectl(&[
            "annotate",
            "lease",
            "eso-recovery",
            "-n",
            "security",
            "--overwrite",
            "eso-recovery/vault-not-ready-since=garbage",
        ]);
        stack.restore_vault_path();
        let garbled = stack.recover(&["--cooldown=0s"]);
        assert_eq!(garbled.code, 0, "{}", garbled.dump());
        assert_ne!(garbled.outcome(), "restarted", "{}", garbled.dump());
        assert!(
            garbled.stderr.contains("is not a time"),
            "{}",
            garbled.dump()
        );

        // Deleted mid-outage: a warning naming the fix, exit 0, no restart.
        stack.cut_vault_path();
        expect(&stack.recover(&[]), 0, "vault_not_ready");
        stack
            .cp
            .kubectl(&["delete", "lease", "eso-recovery", "-n", "security"]);
        stack.restore_vault_path();
        let missing = stack.recover(&["--cooldown=0s"]);
        assert_eq!(missing.code, 0, "{}", missing.dump());
        assert_ne!(missing.outcome(), "restarted", "{}", missing.dump());
        assert!(
            missing.stderr.contains("apply manifests/"),
            "{}",
            missing.dump()
        );
        assert_eq!(stack.restarted_at(), first_restart);
        assert_eq!(stack.eso.starts(), 2);
    }

    /// `--strategy resync`, with `manifests/resync/` applied: ESO's own lever, nothing replaced.
    mod resync {
        use super::*;

        /// A stack with eso-recovery's resync RBAC and admission policy in force.
        fn stack(store_refresh: Option<u32>, audit: bool) -> Stack {
            Stack::start_with(
                ESO,
                Seed::with_real_eso(store_refresh, ES_REFRESH),
                Parts {
                    resync: true,
                    audit,
                    ..Parts::default()
                },
            )
        }

        fn resync(stack: &Stack, extra: &[&str]) -> Run {
            let mut args = vec!["--strategy=resync"];
            args.extend_from_slice(extra);
            stack.recover(&args)
        }

        /// The Secret holds `password` soon after the outage ended, with ESO's process the same
        /// one and no `restartedAt` written.
        fn assert_synced_by_the_resync(stack: &Stack, password: &str, ended: Instant) {
            stack.wait_for_password(password, Duration::from_secs(30));
            let took = ended.elapsed();
            eprintln!(
                "resync: the Secret held Vault's value {:.1}s after the outage ended",
                took.as_secs_f64()
            );
            assert!(
                took <= AWAITED_RECOVERY,
                "synced {took:?} after the outage ended"
            );
            assert_eq!(stack.eso.starts(), 1, "ESO's process was replaced");
            assert_eq!(stack.restarted_at(), vec![None, None, None]);
        }

        fn resynced_at(stack: &Stack, args: &[&str]) -> Option<String> {
            let mut all = args.to_vec();
            all.extend([
                "-o",
                r#"jsonpath={.metadata.annotations.eso-recovery/resynced-at}"#,
            ]);
            let mut get = vec!["get"];
            get.extend(all);
            Some(stack.cp.kubectl(&get)).filter(|v| !v.is_empty())
        }

        #[test]
        fn a_stuck_external_secret_behind_a_ready_store_is_resynced_not_restarted() {
            // (a) A short seal: the store stays Ready, the ExternalSecret waits in ESO's backoff.
            let stack = stack(None, false);
            stack.bao.seal();
            // (d) Sealed: nothing is annotated, nothing restarted.
            let sealed = resync(&stack, &[]);
            expect(&sealed, 0, "vault_not_ready");
            assert_eq!(
                resynced_at(&stack, &["externalsecret", "postgres-secret", "-n", "db"]),
                None
            );

            let ended = end_outage_with(&stack, || stack.bao.unseal());
            stack.rotate("after-the-resync");
            assert_still_stale(&stack);
            let run = resync(&stack, &[]);
            expect(&run, 0, "resynced");
            assert_eq!(
                run.summary["resync"]["external_secrets"],
                1,
                "{}",
                run.dump()
            );
            assert_eq!(run.summary["resync"]["first"][0], "db/postgres-secret");
            assert_eq!(run.summary["resync"]["stores"], serde_json::json!([]));
            assert!(
                resynced_at(&stack, &["externalsecret", "postgres-secret", "-n", "db"]).is_some()
            );
            assert_eq!(
                resynced_at(&stack, &["clustersecretstore", "k8s-secrets"]),
                None
            );
            assert_synced_by_the_resync(&stack, "after-the-resync", ended);
            let events = stack.seed.events(&stack.cp);
            assert_eq!(events.len(), 1, "{events:#?}");
            assert_eq!(events[0]["reason"], "Resynced");

            // Once per outage, across runs: the record holds the resync.
            assert!(stack.outage_record()["eso-recovery/resynced-at"].is_string());
            expect(&resync(&stack, &["--cooldown=0s"]), 0, "already_resynced");
        }

        #[test]
        fn a_degraded_store_is_resynced_first_then_its_external_secrets() {
            // (b) Vault restarted, back sealed: the store degrades, the ExternalSecret fails at
            // ESO's flood gate behind it.
            let mut stack = stack(Some(5), false);
            stack.restart_vault_sealed();
            wait_until("the store Ready=False", Duration::from_secs(30), || {
                stack.store_ready()["status"] == "False"
            });
            let ended = end_outage_with(&stack, || stack.bao.unseal());
            stack.rotate("after-the-store-resync");
            assert_still_stale(&stack);
            let run = resync(&stack, &[]);
            expect(&run, 0, "resynced");
            assert_eq!(
                run.summary["resync"]["stores"][0],
                "k8s-secrets",
                "{}",
                run.dump()
            );
            assert_eq!(run.summary["resync"]["first"][0], "db/postgres-secret");
            assert!(resynced_at(&stack, &["clustersecretstore", "k8s-secrets"]).is_some());
            assert_synced_by_the_resync(&stack, "after-the-store-resync", ended);
        }

        #[test]
        fn an_external_secret_failing_for_its_own_reasons_is_never_resynced() {
            // (c) No outage: the broken one fails since after Vault became active.
            let stack = stack(None, false);
            stack.cp.apply(&broken_external_secret());
            stack.wait_for_external_secret_failing("db", "broken", Duration::from_secs(30));
            for _ in 0..3 {
                let r = resync(&stack, &["--cooldown=1s"]);
                expect(&r, 0, "store_healthy");
                assert!(r.summary.get("resync").is_none(), "{}", r.dump());
                std::thread::sleep(Duration::from_millis(1500));
            }
            assert_eq!(
                resynced_at(&stack, &["externalsecret", "broken", "-n", "db"]),
                None
            );
            assert_eq!(stack.eso.starts(), 1);
        }

        #[test]
        fn a_resynced_external_secret_that_does_not_come_back_falls_back_to_a_restart() {
            // (e) ESO's controller hung (its process stopped): the annotation reaches no one.
            let stack = stack(None, false);
            stack.bao.seal();
            end_outage(&stack);
            stack.rotate("after-the-fallback");
            stack.eso.pause();
            let run_at = Instant::now();
            let run = resync(&stack, &[]);
            expect(&run, 0, "fell_back_to_restart");
            assert_eq!(
                run.summary["resync"]["fallback"],
                "resync_not_back",
                "{}",
                run.dump()
            );
            assert!(run.stderr.contains("came back within 5s"), "{}", run.dump());
            assert!(stack.restarted_at().iter().all(Option::is_some));
            assert_synced_by_the_restart(&stack, "after-the-fallback", run_at);
            let reasons: Vec<Value> = stack
                .seed
                .events(&stack.cp)
                .iter()
                .map(|e| e["reason"].clone())
                .collect();
            assert!(reasons.contains(&"ResyncFellBack".into()), "{reasons:?}");
        }

        #[test]
        fn without_the_admission_policy_it_restarts_and_fails_naming_the_policy() {
            // (f) The guard deleted: nothing is annotated, the restart recovers, exit 1.
            let stack = stack(None, false);
            stack.cp.kubectl(&[
                "delete",
                "validatingadmissionpolicybinding",
                "eso-recovery-resync-only",
            ]);
            stack
                .cp
                .wait_for_resync_guard(&stack.recovery_kubeconfig, &stack.seed.store, false);
            stack.bao.seal();
            end_outage(&stack);
            stack.rotate("after-the-unguarded-run");
            let run_at = Instant::now();
            let run = resync(&stack, &[]);
            assert_eq!(
                run.summary["resync"]["fallback"],
                "resync_unguarded",
                "{}",
                run.dump()
            );
            expect_error(&run, 1, "fell_back_to_restart", "ValidatingAdmissionPolicy");
            assert_eq!(
                resynced_at(&stack, &["externalsecret", "postgres-secret", "-n", "db"]),
                None
            );
            assert_synced_by_the_restart(&stack, "after-the-unguarded-run", run_at);
        }

        #[test]
        fn a_thousand_stuck_external_secrets_are_all_resynced_and_synced() {
            // (g) Vault restarted, back sealed, the store degraded; 1,000 ExternalSecrets beside
            // the design's, created then: each failed at ESO's flood gate and waits in its
            // backoff.
            let mut stack = stack(Some(5), true);
            stack.restart_vault_sealed();
            wait_until("the store Ready=False", Duration::from_secs(30), || {
                stack.store_ready()["status"] == "False"
            });
            create_external_secrets(&stack.cp, &Many::like_the_design(), THOUSAND);
            wait_until("ESO failing all 1,000", Duration::from_secs(300), || {
                std::thread::sleep(Duration::from_secs(1));
                failing_in(&stack, "apps") == THOUSAND
            });
            stack.bao.unseal();
            stack.rotate("after-the-thousand");
            let before = stack.cp.audit_lines().len();
            let run_at = Instant::now();
            // The CronJob's limit: the run annotates them all, then ends while ESO (one object
            // at a time, its chart's default) still brings them back.
            let run = resync(&stack, &["--timeout=10s"]);
            expect(&run, 0, "resynced");
            let resynced = run.summary["resync"]["external_secrets"]
                .as_u64()
                .unwrap_or(0);
            assert!(resynced > THOUSAND as u64, "{}", run.dump());
            let requests = stack.cp.audit_lines()[before..]
                .iter()
                .filter(|l| l["user"]["username"] == "system:serviceaccount:security:eso-recovery")
                .count();
            wait_until("ESO syncing all 1,000", Duration::from_secs(600), || {
                std::thread::sleep(Duration::from_secs(1));
                failing_in(&stack, "apps") == 0
            });
            eprintln!(
                "resync of {resynced} stuck ExternalSecrets: the run took {:.1}s and {requests} API \
                 requests; all synced {:.1}s after it began",
                run.elapsed.as_secs_f64(),
                run_at.elapsed().as_secs_f64()
            );
            assert_eq!(failing_in(&stack, "apps"), 0);
            assert_eq!(stack.eso.starts(), 1);
            assert_eq!(stack.restarted_at(), vec![None, None, None]);
        }

        const THOUSAND: usize = 1000;

        /// How many ExternalSecrets in `namespace` are Ready=False.
        fn failing_in(stack: &Stack, namespace: &str) -> usize {
            let out = stack.cp.kubectl(&[
                "get",
                "externalsecrets",
                "-n",
                namespace,
                "-o",
                r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
            ]);
            out.lines().filter(|l| l.trim() == "False").count()
        }
    }
}

/// An ExternalSecret in `db` reading a key Vault does not have.
fn broken_external_secret() -> String {
    format!(
        r#"apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: broken
  namespace: db
spec:
  refreshInterval: {ES_REFRESH}
  secretStoreRef:
    name: k8s-secrets
    kind: ClusterSecretStore
  target:
    name: broken
  data:
  - secretKey: PASSWORD
    remoteRef:
      key: does-not-exist
      property: PASSWORD
"#
    )
}
