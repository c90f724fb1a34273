//! The decision table, row by row, and the rules around it.

use super::*;
use crate::{
    deployment::DeploymentState,
    fixtures::{degraded, now, ready_store, state},
    store::StoreCondition,
};

fn policy() -> Policy {
    Policy {
        cooldown: Duration::from_secs(300),
        standby_ok: false,
        force: false,
        stores: vec!["k8s-secrets".into()],
    }
}

fn no_clock() -> ActiveSince {
    ActiveSince::Unknown("Vault's storage is not HA".into())
}

fn stores(conditions: Vec<Result<StoreCondition, String>>) -> Vec<StoreObservation> {
    conditions
        .into_iter()
        .enumerate()
        .map(|(i, condition)| StoreObservation {
            name: format!("store-{i}"),
            condition,
        })
        .collect()
}

fn observed(states: Vec<DeploymentState>) -> Option<Vec<DeploymentObservation>> {
    Some(
        states
            .into_iter()
            .map(|s| DeploymentObservation {
                name: s.name.clone(),
                state: Ok(s),
            })
            .collect(),
    )
}

fn three() -> Vec<DeploymentState> {
    [
        "external-secrets",
        "external-secrets-webhook",
        "external-secrets-cert-controller",
    ]
    .into_iter()
    .map(state)
    .collect()
}

fn restarted(minutes_ago: i64) -> Vec<DeploymentState> {
    let mut d = three();
    d[1].restarted_at = RestartedAt::At(now() - jiff::SignedDuration::from_mins(minutes_ago));
    d
}

fn target_names(action: &Action) -> Vec<String> {
    match action {
        Action::Restart(plan) => plan.targets.iter().map(|t| t.name.clone()).collect(),
        other => panic!("expected a restart, got {other:?}"),
    }
}

fn unknown() -> StoreCondition {
    StoreCondition::Unknown {
        why: "no status yet".into(),
    }
}

/// The README's decision table, row by row.
#[test]
fn decision_table() {
    let in_progress = {
        let mut d = three();
        d[2].rollout = Rollout::InProgress("0 of 1 updated replicas are available".into());
        d
    };
    /// name, Vault, stores, Deployments (None: not read yet), expected action.
    type Row = (
        &'static str,
        VaultStatus,
        Vec<Result<StoreCondition, String>>,
        Option<Vec<DeploymentObservation>>,
        Action,
    );
    let rows: Vec<Row> = vec![
        (
            "sealed",
            VaultStatus::Sealed,
            vec![Ok(degraded())],
            observed(three()),
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "uninitialized",
            VaultStatus::Uninitialized,
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "standby",
            VaultStatus::Standby,
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "perf standby",
            VaultStatus::PerformanceStandby,
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "dr secondary",
            VaultStatus::DrSecondary,
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "standby no active",
            VaultStatus::StandbyWithoutActive,
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "removed",
            VaultStatus::Removed,
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "unreachable",
            VaultStatus::Unreachable("connection refused".into()),
            vec![Ok(degraded())],
            None,
            Action::Hold(Hold::VaultNotReady),
        ),
        (
            "store healthy",
            VaultStatus::Active,
            vec![Ok(ready_store())],
            None,
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "store unknown",
            VaultStatus::Active,
            vec![Ok(unknown())],
            None,
            Action::Hold(Hold::StoreStateUnknown),
        ),
        (
            "store unknown beside healthy",
            VaultStatus::Active,
            vec![Ok(ready_store()), Ok(unknown())],
            None,
            Action::Hold(Hold::StoreStateUnknown),
        ),
        (
            "store read failed",
            VaultStatus::Active,
            vec![Err("HTTP 404".into())],
            None,
            Action::Hold(Hold::StoreReadFailed),
        ),
        (
            "degraded: read deployments first",
            VaultStatus::Active,
            vec![Ok(degraded())],
            None,
            Action::ReadDeployments,
        ),
        (
            "cooldown",
            VaultStatus::Active,
            vec![Ok(degraded())],
            observed(restarted(2)),
            Action::Hold(Hold::Cooldown {
                next: now() + jiff::SignedDuration::from_mins(3),
            }),
        ),
        (
            "rollout in progress",
            VaultStatus::Active,
            vec![Ok(degraded())],
            observed(in_progress),
            Action::Hold(Hold::RolloutInProgress),
        ),
    ];
    for (name, vault, store_conditions, deployments, want) in rows {
        let obs = Observation {
            vault,
            active_since: no_clock(),
            seen_outage: None,
            last_resync: None,
            external_secrets: None,
            stores: stores(store_conditions),
            deployments,
        };
        let got = decide(&obs, now(), &policy());
        assert_eq!(got.action, want, "row {name:?}: reasons {:?}", got.reasons);
    }
}

fn clock(minutes_ago: i64) -> ActiveSince {
    ActiveSince::At(now() - jiff::SignedDuration::from_mins(minutes_ago))
}

fn es(name: &str, reason: &str, since: Option<Timestamp>, store: &str) -> FailingExternalSecret {
    FailingExternalSecret {
        namespace: "db".into(),
        name: name.into(),
        cluster_stores: [store.to_string()].into(),
        reason: reason.into(),
        message: "could not get secret data from provider".into(),
        since,
    }
}

fn secs_ago(s: i64) -> Option<Timestamp> {
    Some(now() - jiff::SignedDuration::from_secs(s))
}

fn found(failing: Vec<FailingExternalSecret>) -> Option<Result<ExternalSecrets, String>> {
    Some(Ok(ExternalSecrets {
        listed: 1000,
        failing,
    }))
}

/// The README's ExternalSecret rows: the stores are Ready; Vault's clock, the Deployments
/// and the ExternalSecrets decide.
#[test]
fn external_secret_table() {
    let sync = SYNC_ERROR;
    let in_progress = {
        let mut d = three();
        d[0].rollout = Rollout::InProgress("0 of 1 updated replicas are available".into());
        d
    };
    let at_activation = clock(2)
        .time()
        .map(|t| Timestamp::from_second(t.as_second()).unwrap());
    /// name, Vault's clock, Deployments, ExternalSecrets, expected action.
    type Row = (
        &'static str,
        ActiveSince,
        Option<Vec<DeploymentObservation>>,
        Option<Result<ExternalSecrets, String>>,
        Action,
    );
    let rows: Vec<Row> = vec![
        (
            "no clock (non-HA storage): not checked, nothing read",
            no_clock(),
            None,
            None,
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "active for longer than the window: ESO has retried everything",
            clock(15),
            None,
            None,
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "just active: the Deployments first (three GETs, before any list)",
            clock(1),
            None,
            None,
            Action::ReadDeployments,
        ),
        (
            "restarted after Vault became active: never twice per outage",
            clock(10),
            observed(restarted(6)),
            None,
            Action::Hold(Hold::AlreadyRestarted {
                at: now() - jiff::SignedDuration::from_mins(6),
                outage_ended: clock(10).time().unwrap(),
            }),
        ),
        (
            "restarted during the outage, inside the cooldown",
            clock(1),
            observed(restarted(2)),
            None,
            Action::Hold(Hold::Cooldown {
                next: now() + jiff::SignedDuration::from_mins(3),
            }),
        ),
        (
            "then the ExternalSecrets are listed",
            clock(1),
            observed(restarted(30)),
            None,
            Action::ReadExternalSecrets,
        ),
        (
            "none failing",
            clock(1),
            observed(three()),
            found(vec![]),
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "failing since after Vault became active: its own reasons",
            clock(2),
            observed(three()),
            found(vec![es("broken", sync, secs_ago(60), "k8s-secrets")]),
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "failing since the very second Vault became active: not before it",
            clock(2),
            observed(three()),
            found(vec![es("edge", sync, at_activation, "k8s-secrets")]),
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "failing on a store not watched",
            clock(2),
            observed(three()),
            found(vec![es("other", sync, secs_ago(600), "team-store")]),
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "failing for a reason that is never Vault's",
            clock(2),
            observed(three()),
            found(vec![es(
                "owned",
                "SecretDeleted",
                secs_ago(600),
                "k8s-secrets",
            )]),
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "failing with no readable time: nothing on doubt",
            clock(2),
            observed(three()),
            found(vec![es("timeless", sync, None, "k8s-secrets")]),
            Action::Hold(Hold::StoresHealthy),
        ),
        (
            "the list failed: an error, nothing restarted",
            clock(2),
            observed(three()),
            Some(Err(
                "listing ExternalSecrets in all namespaces: HTTP 403".into()
            )),
            Action::Hold(Hold::ExternalSecretsReadFailed),
        ),
        (
            "stuck, but a rollout is in progress",
            clock(2),
            observed(in_progress),
            found(vec![es(
                "postgres-secret",
                sync,
                secs_ago(300),
                "k8s-secrets",
            )]),
            Action::Hold(Hold::RolloutInProgress),
        ),
    ];
    for (name, active_since, deployments, external_secrets, want) in rows {
        let obs = Observation {
            vault: VaultStatus::Active,
            active_since,
            seen_outage: None,
            last_resync: None,
            stores: stores(vec![Ok(ready_store())]),
            deployments,
            external_secrets,
        };
        let got = decide(&obs, now(), &policy());
        assert_eq!(got.action, want, "row {name:?}: reasons {:?}", got.reasons);
    }
}

fn seen(not_ready_mins_ago: i64, ready_mins_ago: i64) -> Option<SeenOutage> {
    Some(SeenOutage {
        not_ready_since: now() - jiff::SignedDuration::from_mins(not_ready_mins_ago),
        ready_again_at: now() - jiff::SignedDuration::from_mins(ready_mins_ago),
    })
}

/// An outage eso-recovery saw (a network cut, DNS down) while Vault's clock stayed put: its
/// end counts as Vault's activation would, and the later of the two wins.
#[test]
fn an_outage_seen_by_eso_recovery_ends_like_an_activation() {
    let sync = SYNC_ERROR;
    let failing_for = |mins: i64| {
        found(vec![es(
            "postgres-secret",
            sync,
            secs_ago(mins * 60),
            "k8s-secrets",
        )])
    };
    /// name, Vault's clock, the seen outage, Deployments, ExternalSecrets, the stores, expected action.
    type Row = (
        &'static str,
        ActiveSince,
        Option<SeenOutage>,
        Option<Vec<DeploymentObservation>>,
        Option<Result<ExternalSecrets, String>>,
        StoreCondition,
        Want,
    );
    /// A hold (or read), or a restart for the stuck ExternalSecret whose reason names this.
    enum Want {
        Action(Action),
        RestartBecause(&'static str),
    }
    let rows: Vec<Row> = vec![
        (
            "active for hours, no outage seen: nothing read",
            clock(300),
            None,
            None,
            None,
            ready_store(),
            Want::Action(Action::Hold(Hold::StoresHealthy)),
        ),
        (
            "active for hours, an outage seen ending 1 min ago: the Deployments first",
            clock(300),
            seen(4, 1),
            None,
            None,
            ready_store(),
            Want::Action(Action::ReadDeployments),
        ),
        (
            "failing since before the seen end: stuck, restarted",
            clock(300),
            seen(4, 1),
            observed(restarted(60)),
            failing_for(3),
            ready_store(),
            Want::RestartBecause("Vault was seen ready again at 2026-12-01T11:59:00Z"),
        ),
        (
            "failing only since the seen end: its own reasons",
            clock(300),
            seen(4, 1),
            observed(three()),
            found(vec![es(
                "postgres-secret",
                sync,
                secs_ago(30),
                "k8s-secrets",
            )]),
            ready_store(),
            Want::Action(Action::Hold(Hold::StoresHealthy)),
        ),
        (
            "restarted after the seen end: once per outage",
            clock(300),
            seen(10, 8),
            observed(restarted(7)),
            None,
            ready_store(),
            Want::Action(Action::Hold(Hold::AlreadyRestarted {
                at: now() - jiff::SignedDuration::from_mins(7),
                outage_ended: now() - jiff::SignedDuration::from_mins(8),
            })),
        ),
        (
            "a degraded store restarted after the seen end: once per outage too",
            no_clock(),
            seen(10, 8),
            observed(restarted(7)),
            None,
            degraded(),
            Want::Action(Action::Hold(Hold::AlreadyRestarted {
                at: now() - jiff::SignedDuration::from_mins(7),
                outage_ended: now() - jiff::SignedDuration::from_mins(8),
            })),
        ),
        (
            "the seen end over the window ago: ESO has retried everything",
            no_clock(),
            seen(30, 20),
            None,
            None,
            ready_store(),
            Want::Action(Action::Hold(Hold::StoresHealthy)),
        ),
        (
            "Vault's clock later than the seen end wins: failing since between them is stuck",
            clock(1),
            seen(6, 5),
            observed(three()),
            failing_for(3),
            ready_store(),
            Want::RestartBecause("since before Vault became active at 2026-12-01T11:59:00Z"),
        ),
        (
            "the seen end later than Vault's clock wins: failing since between them is stuck",
            clock(6),
            seen(2, 1),
            observed(three()),
            failing_for(3),
            ready_store(),
            Want::RestartBecause("Vault was seen ready again at 2026-12-01T11:59:00Z"),
        ),
    ];
    for (name, active_since, seen_outage, deployments, external_secrets, store, want) in rows {
        let obs = Observation {
            vault: VaultStatus::Active,
            active_since,
            seen_outage,
            last_resync: None,
            stores: stores(vec![Ok(store)]),
            deployments,
            external_secrets,
        };
        let got = decide(&obs, now(), &policy());
        match want {
            Want::RestartBecause(text) => {
                let Action::Restart(plan) = &got.action else {
                    panic!("row {name:?}: {got:?}")
                };
                assert_eq!(plan.stuck, ["db/postgres-secret"], "row {name:?}");
                assert!(
                    plan.because.contains(text),
                    "row {name:?}: {}",
                    plan.because
                );
            }
            Want::Action(want) => {
                assert_eq!(got.action, want, "row {name:?}: reasons {:?}", got.reasons)
            }
        }
    }
}

#[test]
fn stuck_external_secrets_restart_all_three_and_are_named() {
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: clock(2),
        seen_outage: None,
        last_resync: None,
        stores: stores(vec![Ok(ready_store())]),
        deployments: observed(restarted(60)),
        external_secrets: found(vec![
            es("postgres-secret", SYNC_ERROR, secs_ago(300), "k8s-secrets"),
            es("broken", SYNC_ERROR, secs_ago(30), "k8s-secrets"),
        ]),
    };
    let got = decide(&obs, now(), &policy());
    let Action::Restart(plan) = &got.action else {
        panic!("{got:?}")
    };
    assert_eq!(plan.targets.len(), 3);
    assert_eq!(plan.stuck, ["db/postgres-secret"]);
    assert!(
        plan.because.starts_with("Vault is active; 1 ExternalSecret(s) failing since before Vault became active at 2026-12-01T11:58:00Z"),
        "{}",
        plan.because
    );
    assert!(
        got.reasons
            .iter()
            .any(|r| r.contains("their own reasons") && r.contains("db/broken")),
        "{:?}",
        got.reasons
    );
}

#[test]
fn a_degraded_store_restarts_once_per_outage_when_vault_has_a_clock() {
    let degraded_obs = |active_since: ActiveSince, minutes_ago: i64| Observation {
        vault: VaultStatus::Active,
        active_since,
        seen_outage: None,
        last_resync: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: observed(restarted(minutes_ago)),
        external_secrets: None,
    };
    // Restarted 6 minutes ago, after Vault became active 10 minutes ago: held.
    assert!(matches!(
        decide(&degraded_obs(clock(10), 6), now(), &policy()).action,
        Action::Hold(Hold::AlreadyRestarted { .. })
    ));
    // Restarted before Vault became active (during the outage): restart again.
    assert!(matches!(
        decide(&degraded_obs(clock(3), 6), now(), &policy()).action,
        Action::Restart(_)
    ));
    // No clock: the cooldown alone, as before.
    assert!(matches!(
        decide(&degraded_obs(no_clock(), 6), now(), &policy()).action,
        Action::Restart(_)
    ));
}

#[test]
fn a_resync_counts_for_the_cooldown_and_once_per_outage_as_a_restart_does() {
    let obs = |active_since: ActiveSince, resynced_minutes_ago: i64| Observation {
        vault: VaultStatus::Active,
        active_since,
        seen_outage: None,
        last_resync: Some(now() - jiff::SignedDuration::from_mins(resynced_minutes_ago)),
        stores: stores(vec![Ok(degraded())]),
        deployments: observed(three()),
        external_secrets: None,
    };
    // Resynced 2 minutes ago: inside the 5-minute cooldown, though no restartedAt says so.
    let cooling = decide(&obs(clock(10), 2), now(), &policy());
    assert!(
        matches!(cooling.action, Action::Hold(Hold::Cooldown { .. })),
        "{cooling:?}"
    );
    assert!(cooling.reasons.iter().any(|r| r.contains("last resync")));
    // Resynced 6 minutes ago, after Vault became active 10 minutes ago: once per outage.
    assert!(matches!(
        decide(&obs(clock(10), 6), now(), &policy()).action,
        Action::Hold(Hold::AlreadyResynced { .. })
    ));
    // Resynced during an earlier outage: wake it again, naming the degraded store.
    match decide(&obs(clock(3), 6), now(), &policy()).action {
        Action::Restart(plan) => {
            assert_eq!(plan.degraded_stores, vec!["store-0".to_string()]);
            assert!(plan.stuck.is_empty(), "found once the store is Ready");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn behind_a_store_that_is_ready_again_every_failed_external_secret_on_it_is_woken() {
    let ready_at = now();
    let found = ExternalSecrets {
        listed: 5,
        failing: vec![
            es(
                "flood-gated",
                SYNC_ERROR,
                Some(ready_at - jiff::SignedDuration::from_mins(3)),
                "k8s-secrets",
            ),
            es(
                "sealed",
                SYNC_ERROR,
                Some(ready_at - jiff::SignedDuration::from_mins(9)),
                "k8s-secrets",
            ),
            es(
                "after",
                SYNC_ERROR,
                Some(ready_at + jiff::SignedDuration::from_secs(2)),
                "k8s-secrets",
            ),
            es(
                "other-store",
                SYNC_ERROR,
                Some(ready_at - jiff::SignedDuration::from_mins(3)),
                "team",
            ),
            es(
                "write",
                "SecretSyncedError-not",
                Some(ready_at - jiff::SignedDuration::from_mins(3)),
                "k8s-secrets",
            ),
        ],
    };
    assert_eq!(
        stuck_behind_stores(&found, &policy(), ready_at),
        vec!["db/flood-gated".to_string(), "db/sealed".to_string()]
    );
}

#[test]
fn first_few_names_ten_then_counts_the_rest() {
    let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
    assert_eq!(first_few(&names[..2]), "n0, n1");
    assert!(first_few(&names).ends_with("n9, and 2 more"));
}

#[test]
fn many_stuck_ones_are_listed_ten_and_counted() {
    let many: Vec<FailingExternalSecret> = (0..25)
        .map(|i| {
            es(
                &format!("es-{i:02}"),
                SYNC_ERROR,
                secs_ago(600),
                "k8s-secrets",
            )
        })
        .collect();
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: clock(2),
        seen_outage: None,
        last_resync: None,
        stores: stores(vec![Ok(ready_store())]),
        deployments: observed(three()),
        external_secrets: found(many),
    };
    let got = decide(&obs, now(), &policy());
    let Action::Restart(plan) = &got.action else {
        panic!("{got:?}")
    };
    assert_eq!(plan.stuck.len(), 25);
    assert!(
        plan.because.contains("db/es-09, and 15 more"),
        "{}",
        plan.because
    );
}

#[test]
fn degraded_and_ready_restarts_all_three() {
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: observed(restarted(6)),
    };
    let got = decide(&obs, now(), &policy());
    assert_eq!(
        target_names(&got.action),
        [
            "external-secrets",
            "external-secrets-webhook",
            "external-secrets-cert-controller"
        ]
    );
    assert_eq!(
        got.reasons.last().unwrap(),
        "restarting external-secrets, external-secrets-webhook, external-secrets-cert-controller"
    );
    assert!(
        got.reasons
            .iter()
            .any(|r| r.contains("store store-0 degraded (InvalidProviderConfig")),
        "{:?}",
        got.reasons
    );
}

#[test]
fn any_degraded_store_of_several_is_enough() {
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![
            Ok(ready_store()),
            Ok(degraded()),
            Err("HTTP 403".into()),
        ]),
        deployments: observed(three()),
    };
    assert_eq!(
        target_names(&decide(&obs, now(), &policy()).action).len(),
        3
    );
}

#[test]
fn standby_ok_makes_standbys_ready() {
    let obs = Observation {
        vault: VaultStatus::Standby,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: None,
    };
    let p = Policy {
        standby_ok: true,
        ..policy()
    };
    assert_eq!(decide(&obs, now(), &p).action, Action::ReadDeployments);
}

#[test]
fn vault_reason_is_named() {
    let obs = Observation {
        vault: VaultStatus::Sealed,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: None,
    };
    assert_eq!(
        decide(&obs, now(), &policy()).reasons,
        ["vault not ready (sealed)"]
    );
}

#[test]
fn cooldown_edges() {
    let decide_at = |minutes_ago: i64, seconds_extra: i64| {
        let mut d = three();
        d[0].restarted_at = RestartedAt::At(
            now()
                - jiff::SignedDuration::from_mins(minutes_ago)
                - jiff::SignedDuration::from_secs(seconds_extra),
        );
        let obs = Observation {
            vault: VaultStatus::Active,
            active_since: no_clock(),
            seen_outage: None,
            last_resync: None,
            external_secrets: None,
            stores: stores(vec![Ok(degraded())]),
            deployments: observed(d),
        };
        decide(&obs, now(), &policy()).action
    };
    // Exactly at the end of the cooldown a restart is possible again; one second before it is not.
    assert!(matches!(decide_at(5, 0), Action::Restart(_)));
    assert!(matches!(
        decide_at(4, 59),
        Action::Hold(Hold::Cooldown { .. })
    ));
    assert!(matches!(
        decide_at(0, 0),
        Action::Hold(Hold::Cooldown { .. })
    ));
    // In the future: counts as just now.
    assert_eq!(
        decide_at(-60, 0),
        Action::Hold(Hold::Cooldown {
            next: now() + jiff::SignedDuration::from_mins(5)
        })
    );
}

#[test]
fn the_newest_of_several_restarts_counts() {
    let mut d = three();
    d[0].restarted_at = RestartedAt::At(now() - jiff::SignedDuration::from_mins(60));
    d[2].restarted_at = RestartedAt::At(now() - jiff::SignedDuration::from_mins(1));
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: observed(d),
    };
    assert_eq!(
        decide(&obs, now(), &policy()).action,
        Action::Hold(Hold::Cooldown {
            next: now() + jiff::SignedDuration::from_mins(4)
        })
    );
}

#[test]
fn unparsable_annotation_is_ignored_with_a_warning() {
    let mut d = three();
    d[0].restarted_at = RestartedAt::Unparsable("yesterday".into());
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: observed(d),
    };
    let got = decide(&obs, now(), &policy());
    assert_eq!(target_names(&got.action).len(), 3);
    assert!(
        got.warnings
            .iter()
            .any(|w| w.contains("unparsable restartedAt annotation \"yesterday\""))
    );
}

#[test]
fn zero_cooldown_allows_an_immediate_restart() {
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: observed(restarted(0)),
    };
    let p = Policy {
        cooldown: Duration::ZERO,
        ..policy()
    };
    assert!(matches!(decide(&obs, now(), &p).action, Action::Restart(_)));
}

#[test]
fn paused_and_unreadable_are_refused_and_the_rest_restarted() {
    let mut d = three();
    d[1].paused = true;
    let mut deployments = observed(d).unwrap();
    deployments[2].state =
        Err("reading Deployment security/external-secrets-cert-controller: HTTP 404".into());
    let obs = Observation {
        vault: VaultStatus::Active,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Ok(degraded())]),
        deployments: Some(deployments),
    };
    let got = decide(&obs, now(), &policy());
    let Action::Restart(RestartPlan {
        targets, refused, ..
    }) = got.action
    else {
        panic!("{got:?}")
    };
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].name, "external-secrets");
    assert_eq!(refused[0].0, "external-secrets-webhook");
    assert!(refused[0].1.contains("paused"));
    assert!(refused[1].1.contains("HTTP 404"));
}

#[test]
fn force_ignores_vault_store_cooldown_and_rollout_but_not_pause() {
    let mut d = restarted(1);
    d[0].rollout = Rollout::InProgress("x".into());
    d[2].paused = true;
    let obs = Observation {
        vault: VaultStatus::Sealed,
        active_since: no_clock(),
        seen_outage: None,
        last_resync: None,
        external_secrets: None,
        stores: stores(vec![Err("HTTP 404".into())]),
        deployments: None,
    };
    let p = Policy {
        force: true,
        ..policy()
    };
    assert_eq!(decide(&obs, now(), &p).action, Action::ReadDeployments);
    let obs = Observation {
        deployments: observed(d),
        ..obs
    };
    let got = decide(&obs, now(), &p);
    assert_eq!(
        target_names(&got.action),
        ["external-secrets", "external-secrets-webhook"]
    );
    assert!(got.reasons[0].starts_with("--force"));
}
