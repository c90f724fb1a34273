//! The whole judgement, as a pure function: what was observed in, an action and its reasons out.
//!
//! Everything that talks to Vault or Kubernetes lives elsewhere; this is where the table of the
//! README is implemented and unit-tested row by row.

use std::time::Duration;

use jiff::Timestamp;

use crate::{
    deployment::{DeploymentState, RestartedAt, Rollout},
    store::StoreCondition,
    vault::VaultStatus,
};

/// The settings the decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// No restart within this long of the newest `restartedAt`.
    pub cooldown: Duration,
    /// Vault standbys count as ready.
    pub standby_ok: bool,
    /// Restart regardless of Vault, store, cooldown and rollout state.
    pub force: bool,
}

/// One store as observed: its condition, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreObservation {
    /// The ClusterSecretStore's name.
    pub name: String,
    /// Its condition, or the read error's message.
    pub condition: Result<StoreCondition, String>,
}

/// One Deployment as observed: its state, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentObservation {
    /// The Deployment's name.
    pub name: String,
    /// Its state, or the read error's message.
    pub state: Result<DeploymentState, String>,
}

/// Everything the decision looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Vault's health.
    pub vault: VaultStatus,
    /// Each configured store.
    pub stores: Vec<StoreObservation>,
    /// The Deployments, read only once Vault and the stores say a restart may be due
    /// (so the every-minute healthy path costs two requests).
    pub deployments: Option<Vec<DeploymentObservation>>,
}

/// Why nothing is restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Vault is not ready; ESO would fail again.
    VaultNotReady,
    /// Every store is Ready.
    StoresHealthy,
    /// No store is degraded, but at least one has no usable Ready condition.
    StoreStateUnknown,
    /// The last restart is too recent.
    Cooldown {
        /// When a restart becomes possible again.
        next: Timestamp,
    },
    /// A Deployment is still rolling out (perhaps from the last restart).
    RolloutInProgress,
    /// A store could not be read and none is degraded: an error, never a reason to restart.
    StoreReadFailed,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing, for this reason.
    Hold(Hold),
    /// A restart may be due: read the Deployments and decide again.
    ReadDeployments,
    /// Restart these; the refused ones count as failed restarts.
    Restart {
        /// Deployments to patch.
        targets: Vec<DeploymentState>,
        /// Deployments not restarted, with why (paused, unreadable).
        refused: Vec<(String, String)>,
    },
}

/// An action with the reasons a person reads in the log and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why, in order; each is one sentence.
    pub reasons: Vec<String>,
    /// Things worth a warning that do not change the action.
    pub warnings: Vec<String>,
}

/// Decides. Pure: the same observation, time and policy always give the same decision.
pub fn decide(obs: &Observation, now: Timestamp, policy: &Policy) -> Decision {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    let read_errors: Vec<&StoreObservation> =
        obs.stores.iter().filter(|s| s.condition.is_err()).collect();
    let degraded: Vec<&StoreObservation> = obs
        .stores
        .iter()
        .filter(|s| matches!(s.condition, Ok(StoreCondition::Degraded(_))))
        .collect();
    for s in &obs.stores {
        if let Ok(StoreCondition::Unknown { why }) = &s.condition {
            warnings.push(format!("store {} state is unknown: {why}", s.name));
        }
    }
    let hold = |h: Hold, reasons: Vec<String>, warnings: Vec<String>| Decision {
        action: Action::Hold(h),
        reasons,
        warnings,
    };

    if policy.force {
        reasons.push(
            "--force: restarting regardless of Vault, store, cooldown and rollout state".into(),
        );
    } else {
        if !obs.vault.is_ready(policy.standby_ok) {
            reasons.push(format!("vault not ready ({})", obs.vault));
            return hold(Hold::VaultNotReady, reasons, warnings);
        }
        reasons.push(format!("vault ready ({})", obs.vault));
        if degraded.is_empty() {
            if !read_errors.is_empty() {
                reasons.push("a store could not be read; nothing restarted on doubt".into());
                return hold(Hold::StoreReadFailed, reasons, warnings);
            }
            if !warnings.is_empty() {
                reasons.push("no store is degraded, but a store state is unknown".into());
                return hold(Hold::StoreStateUnknown, reasons, warnings);
            }
            reasons.push("store healthy".into());
            return hold(Hold::StoresHealthy, reasons, warnings);
        }
        for s in &degraded {
            if let Ok(c) = &s.condition {
                reasons.push(format!("store {} {c}", s.name));
            }
        }
    }

    let Some(deployments) = &obs.deployments else {
        return Decision {
            action: Action::ReadDeployments,
            reasons,
            warnings,
        };
    };

    let mut targets = Vec::new();
    let mut refused = Vec::new();
    for d in deployments {
        match &d.state {
            Err(e) => refused.push((d.name.clone(), e.clone())),
            Ok(s) if s.paused => refused.push((
                d.name.clone(),
                "deployment is paused; kubectl rollout restart refuses paused Deployments too \
                 (run `kubectl rollout resume` first)"
                    .into(),
            )),
            Ok(s) => targets.push(s.clone()),
        }
        if let Ok(DeploymentState {
            restarted_at: RestartedAt::Unparsable(v),
            ..
        }) = &d.state
        {
            warnings.push(format!(
                "deployment {} has an unparsable restartedAt annotation {v:?}; ignored for the cooldown",
                d.name
            ));
        }
    }

    if !policy.force {
        if let Some(newest) = newest_restart(deployments, now) {
            let next = newest.saturating_add(policy.cooldown).unwrap_or(newest);
            if next > now {
                reasons.push(format!(
                    "cooldown, next restart possible at {next} (last restart {newest}, cooldown {})",
                    humantime::format_duration(policy.cooldown)
                ));
                return hold(Hold::Cooldown { next }, reasons, warnings);
            }
        }
        let rolling: Vec<String> = deployments
            .iter()
            .filter_map(|d| match &d.state {
                Ok(DeploymentState {
                    rollout: Rollout::InProgress(why),
                    ..
                }) => Some(format!("{}: {why}", d.name)),
                _ => None,
            })
            .collect();
        if !rolling.is_empty() {
            reasons.push(format!("rollout in progress ({})", rolling.join("; ")));
            return hold(Hold::RolloutInProgress, reasons, warnings);
        }
    }

    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    reasons.push(if names.is_empty() {
        "no Deployment can be restarted".into()
    } else {
        format!("restarting {}", names.join(", "))
    });
    Decision {
        action: Action::Restart { targets, refused },
        reasons,
        warnings,
    }
}

/// The newest restart among the Deployments; one in the future counts as now (a clock skew or a
/// hand-written value must not block restarts for longer than the cooldown).
fn newest_restart(deployments: &[DeploymentObservation], now: Timestamp) -> Option<Timestamp> {
    deployments
        .iter()
        .filter_map(|d| match &d.state {
            Ok(DeploymentState {
                restarted_at: RestartedAt::At(t),
                ..
            }) => Some((*t).min(now)),
            _ => None,
        })
        .max()
}

#[cfg(test)]
mod tests {
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
        }
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
            Action::Restart { targets, .. } => targets.iter().map(|t| t.name.clone()).collect(),
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
                stores: stores(store_conditions),
                deployments,
            };
            let got = decide(&obs, now(), &policy());
            assert_eq!(got.action, want, "row {name:?}: reasons {:?}", got.reasons);
        }
    }

    #[test]
    fn degraded_and_ready_restarts_all_three() {
        let obs = Observation {
            vault: VaultStatus::Active,
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
                stores: stores(vec![Ok(degraded())]),
                deployments: observed(d),
            };
            decide(&obs, now(), &policy()).action
        };
        // Exactly at the end of the cooldown a restart is possible again; one second before it is not.
        assert!(matches!(decide_at(5, 0), Action::Restart { .. }));
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
            stores: stores(vec![Ok(degraded())]),
            deployments: observed(restarted(0)),
        };
        let p = Policy {
            cooldown: Duration::ZERO,
            ..policy()
        };
        assert!(matches!(
            decide(&obs, now(), &p).action,
            Action::Restart { .. }
        ));
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
            stores: stores(vec![Ok(degraded())]),
            deployments: Some(deployments),
        };
        let got = decide(&obs, now(), &policy());
        let Action::Restart { targets, refused } = got.action else {
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
}
