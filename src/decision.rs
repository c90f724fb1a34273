//! The whole judgement, as a pure function: what was observed in, an action and its reasons out.
//!
//! Everything that talks to Vault or Kubernetes lives elsewhere; this is where the table of the
//! README is implemented and unit-tested row by row.
//!
//! Two things make a restart due once Vault is ready: a watched store that is `Ready=False`, or
//! (the stores all Ready) an ExternalSecret on a watched store that has been failing since before
//! Vault last became active and so waits in ESO's backoff. Both wait for the cooldown and for
//! any rollout; and once ESO was restarted after Vault last became active, nothing more is
//! restarted until Vault goes away and comes back: a restart clears every backoff at once, so a
//! second one cannot help whatever still fails.

use std::time::Duration;

use jiff::Timestamp;

use crate::{
    deployment::{DeploymentObservation, DeploymentState, RestartedAt, Rollout},
    externalsecret::{ExternalSecrets, FailingExternalSecret, SYNC_ERROR},
    record::SeenOutage,
    store::StoreCondition,
    vault::{ActiveSince, VaultStatus},
};

/// ESO's per-item backoff cap (1 s doubling, at most 7 minutes, in every controller; no flag).
pub const ESO_BACKOFF_CAP: Duration = Duration::from_secs(7 * 60);

/// How long after Vault became active the ExternalSecrets are checked: twice ESO's backoff cap.
/// By then ESO alone has retried the store (within one cap) and then every ExternalSecret
/// (within one more), so whatever still fails does so for its own reasons.
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(2 * 7 * 60);

/// The settings the decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// No restart within this long of the newest `restartedAt`.
    pub cooldown: Duration,
    /// Vault standbys count as ready.
    pub standby_ok: bool,
    /// Restart regardless of Vault, store, cooldown and rollout state.
    pub force: bool,
    /// The ClusterSecretStores watched (an ExternalSecret counts only if it uses one of them).
    pub stores: Vec<String>,
}

/// One store as observed: its condition, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreObservation {
    /// The ClusterSecretStore's name.
    pub name: String,
    /// Its condition, or the read error's message.
    pub condition: Result<StoreCondition, String>,
}

/// Everything the decision looks at. The later fields are read only when the decision asks
/// for them, so the every-minute healthy path costs two Vault requests and one API GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Vault's health.
    pub vault: VaultStatus,
    /// When Vault's node became active (`sys/leader`), the end of the last outage.
    pub active_since: ActiveSince,
    /// The last outage eso-recovery itself saw end (its record, or this run's `--await-vault`):
    /// the end of an outage that Vault's clock does not show (a network cut, DNS down).
    pub seen_outage: Option<SeenOutage>,
    /// The last resync recorded (`--strategy resync` leaves no `restartedAt`).
    pub last_resync: Option<Timestamp>,
    /// Each configured store.
    pub stores: Vec<StoreObservation>,
    /// The Deployments, once the decision asked for them.
    pub deployments: Option<Vec<DeploymentObservation>>,
    /// The ExternalSecrets, once the decision asked for them, or why they could not be listed.
    pub external_secrets: Option<Result<ExternalSecrets, String>>,
}

/// Why nothing is restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Vault is not ready; ESO would fail again.
    VaultNotReady,
    /// Every store is Ready and no ExternalSecret is stuck (or none can be, see the reasons).
    StoresHealthy,
    /// No store is degraded, but at least one has no usable Ready condition.
    StoreStateUnknown,
    /// The last restart is too recent.
    Cooldown {
        /// When a restart becomes possible again.
        next: Timestamp,
    },
    /// ESO was restarted after the last outage ended: every backoff was cleared then.
    AlreadyRestarted {
        /// The newest restart.
        at: Timestamp,
        /// When the outage ended (Vault became active, or was seen ready again).
        outage_ended: Timestamp,
    },
    /// The stuck objects were resynced after the last outage ended (and what did not come back
    /// then was restarted for in the same run).
    AlreadyResynced {
        /// The last resync.
        at: Timestamp,
        /// When the outage ended.
        outage_ended: Timestamp,
    },
    /// A Deployment is still rolling out (perhaps from the last restart).
    RolloutInProgress,
    /// A store could not be read and none is degraded: an error, never a reason to restart.
    StoreReadFailed,
    /// The ExternalSecrets could not be listed: an error, never a reason to restart.
    ExternalSecretsReadFailed,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing, for this reason.
    Hold(Hold),
    /// A restart may be due: read the Deployments and decide again.
    ReadDeployments,
    /// A restart may be due for stuck ExternalSecrets: list them and decide again.
    ReadExternalSecrets,
    /// Wake ESO as planned: restart it, or (`--strategy resync`) annotate the stuck objects.
    Restart(RestartPlan),
}

/// Waking ESO: the Deployments to restart, what is refused (counted as failed restarts), why,
/// and the stuck objects a resync annotates instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPlan {
    /// Deployments to patch.
    pub targets: Vec<DeploymentState>,
    /// Deployments not restarted, with why (paused, unreadable).
    pub refused: Vec<(String, String)>,
    /// Why the restart is due, in one sentence for the Events.
    pub because: String,
    /// The outage acted for, in words that are the same for every run that sees it (its end,
    /// or the degraded stores' since): what a run claims before it acts.
    pub outage: String,
    /// The degraded stores, which a resync annotates first.
    pub degraded_stores: Vec<String>,
    /// The stuck ExternalSecrets (`namespace/name`), which `--wait` waits for and a resync
    /// annotates. Behind a degraded store they are found once the store is Ready again
    /// ([`stuck_behind_stores`]).
    pub stuck: Vec<String>,
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

/// What makes a restart due, once Vault is ready.
enum Trigger {
    /// `--force`.
    Forced,
    /// These stores (names, and each in words) are `Ready=False`.
    DegradedStores(Vec<String>, Vec<String>),
    /// The stores are Ready, the last outage ended recently: ExternalSecrets may be stuck.
    MaybeStuck(OutageEnd),
}

/// The end of the last outage: the later of Vault's activation time and the moment eso-recovery
/// saw Vault ready again after seeing it not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutageEnd {
    /// Vault's `sys/leader` `active_time`.
    Activated(Timestamp),
    /// eso-recovery saw it: not ready since `.0.not_ready_since`, ready at `.0.ready_again_at`.
    Seen(SeenOutage),
}

impl OutageEnd {
    fn of(obs: &Observation) -> Option<OutageEnd> {
        let activated = obs.active_since.time().map(OutageEnd::Activated);
        let seen = obs.seen_outage.map(OutageEnd::Seen);
        match (activated, seen) {
            (Some(a), Some(s)) => Some(if s.at() > a.at() { s } else { a }),
            (a, s) => a.or(s),
        }
    }

    fn at(self) -> Timestamp {
        match self {
            OutageEnd::Activated(t) => t,
            OutageEnd::Seen(s) => s.ready_again_at,
        }
    }
}

impl std::fmt::Display for OutageEnd {
    /// Completes "since before …" and "after …".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutageEnd::Activated(t) => write!(f, "Vault became active at {t}"),
            OutageEnd::Seen(s) => write!(
                f,
                "Vault was seen ready again at {} (seen not ready since {})",
                s.ready_again_at, s.not_ready_since
            ),
        }
    }
}

/// Decides. Pure: the same observation, time and policy always give the same decision.
pub fn decide(obs: &Observation, now: Timestamp, policy: &Policy) -> Decision {
    let mut d = Decision {
        action: Action::ReadDeployments,
        reasons: Vec::new(),
        warnings: Vec::new(),
    };
    for s in &obs.stores {
        if let Ok(StoreCondition::Unknown { why }) = &s.condition {
            d.warnings
                .push(format!("store {} state is unknown: {why}", s.name));
        }
    }
    let trigger = match trigger(obs, now, policy, &mut d.reasons) {
        Ok(t) => t,
        Err(hold) => return d.hold(hold),
    };

    let Some(deployments) = &obs.deployments else {
        return d; // ReadDeployments
    };
    let mut targets = Vec::new();
    let mut refused = Vec::new();
    for dep in deployments {
        match &dep.state {
            Err(e) => refused.push((dep.name.clone(), e.clone())),
            Ok(s) if s.paused => refused.push((
                dep.name.clone(),
                "deployment is paused; kubectl rollout restart refuses paused Deployments too \
                 (run `kubectl rollout resume` first)"
                    .into(),
            )),
            Ok(s) => targets.push(s.clone()),
        }
        if let Ok(DeploymentState {
            restarted_at: RestartedAt::Unparsable(v),
            ..
        }) = &dep.state
        {
            d.warnings.push(format!(
                "deployment {} has an unparsable restartedAt annotation {v:?}; ignored for the cooldown",
                dep.name
            ));
        }
    }

    let forced = matches!(trigger, Trigger::Forced);
    if !forced && let Err(hold) = hold_for_restarts(deployments, now, policy, obs, &mut d.reasons) {
        return d.hold(hold);
    }
    let mut stuck = Vec::new();
    let mut degraded_stores = Vec::new();
    let because = match &trigger {
        Trigger::Forced => format!("Vault is {}; --force", obs.vault),
        Trigger::DegradedStores(names, texts) => {
            degraded_stores.clone_from(names);
            format!("Vault is {}; {}", obs.vault, texts.join("; "))
        }
        Trigger::MaybeStuck(end) => {
            let found = match &obs.external_secrets {
                None => {
                    d.action = Action::ReadExternalSecrets;
                    return d;
                }
                Some(Err(e)) => {
                    d.reasons.push(format!(
                        "the ExternalSecrets could not be listed ({e}); nothing restarted on doubt"
                    ));
                    return d.hold(Hold::ExternalSecretsReadFailed);
                }
                Some(Ok(found)) => found,
            };
            let (outage, own) = split_by_start(found, policy, end.at());
            if !own.is_empty() {
                d.reasons.push(format!(
                    "{} ExternalSecret(s) failing, but not since before the outage ended: their \
                     own reasons, not restarted for: {}",
                    own.len(),
                    list_keys(&own)
                ));
            }
            if outage.is_empty() {
                d.reasons.push(format!(
                    "no ExternalSecret stuck from the outage ({} listed, {} failing)",
                    found.listed,
                    found.failing.len()
                ));
                return d.hold(Hold::StoresHealthy);
            }
            stuck = outage.iter().map(|f| f.key()).collect();
            let text = format!(
                "{} ExternalSecret(s) failing since before {end}, waiting in ESO's backoff: {}",
                outage.len(),
                list_keys(&outage)
            );
            d.reasons.push(text.clone());
            format!("Vault is {}; {text}", obs.vault)
        }
    };

    if !forced {
        let rolling: Vec<String> = deployments
            .iter()
            .filter_map(|dep| match &dep.state {
                Ok(DeploymentState {
                    rollout: Rollout::InProgress(why),
                    ..
                }) => Some(format!("{}: {why}", dep.name)),
                _ => None,
            })
            .collect();
        if !rolling.is_empty() {
            d.reasons
                .push(format!("rollout in progress ({})", rolling.join("; ")));
            return d.hold(Hold::RolloutInProgress);
        }
    }

    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    d.reasons.push(if names.is_empty() {
        "no Deployment can be restarted".into()
    } else {
        format!("restarting {}", names.join(", "))
    });
    d.action = Action::Restart(RestartPlan {
        targets,
        refused,
        because,
        outage: outage_name(obs),
        degraded_stores,
        stuck,
    });
    d
}

/// The outage a restart or resync is for: when it ended, or (no end known) since when each
/// degraded store is degraded. Runs that see the same outage name it the same.
fn outage_name(obs: &Observation) -> String {
    if let Some(end) = OutageEnd::of(obs) {
        return format!("the outage that ended at {}", end.at());
    }
    let degraded: Vec<String> = obs
        .stores
        .iter()
        .filter_map(|s| match &s.condition {
            Ok(StoreCondition::Degraded(d)) => Some(format!(
                "{} degraded since {}",
                s.name,
                d.since.as_deref().unwrap_or("an unknown time")
            )),
            _ => None,
        })
        .collect();
    if degraded.is_empty() {
        "an outage with no known end".into()
    } else {
        degraded.join(", ")
    }
}

/// The failing ExternalSecrets on a watched store, split into those failing since before `end`
/// (stuck in ESO's backoff) and those failing since (their own reasons).
fn split_by_start<'a>(
    found: &'a ExternalSecrets,
    policy: &Policy,
    end: Timestamp,
) -> (
    Vec<&'a FailingExternalSecret>,
    Vec<&'a FailingExternalSecret>,
) {
    found
        .failing
        .iter()
        .filter(|f| uses_watched_store(f, policy))
        .partition(|f| failing_since_before(f, end))
}

/// The ExternalSecrets a resync wakes once the degraded stores are Ready again (`ready_at`):
/// every one on a watched store that failed to sync before that, the flood gate's included
/// (ESO failed them while the store was not Ready, and backs them off like any other).
pub fn stuck_behind_stores(
    found: &ExternalSecrets,
    policy: &Policy,
    ready_at: Timestamp,
) -> Vec<String> {
    split_by_start(found, policy, ready_at)
        .0
        .iter()
        .map(|f| f.key())
        .collect()
}

impl Decision {
    fn hold(mut self, hold: Hold) -> Decision {
        self.action = Action::Hold(hold);
        self
    }
}

/// What makes a restart due, or why nothing is (with the reasons pushed).
fn trigger(
    obs: &Observation,
    now: Timestamp,
    policy: &Policy,
    reasons: &mut Vec<String>,
) -> Result<Trigger, Hold> {
    if policy.force {
        reasons.push(
            "--force: restarting regardless of Vault, store, cooldown and rollout state".into(),
        );
        return Ok(Trigger::Forced);
    }
    if !obs.vault.is_ready(policy.standby_ok) {
        reasons.push(format!("vault not ready ({})", obs.vault));
        return Err(Hold::VaultNotReady);
    }
    reasons.push(format!("vault ready ({}, {})", obs.vault, obs.active_since));
    let degraded: Vec<(&str, &StoreCondition)> = obs
        .stores
        .iter()
        .filter_map(|s| match &s.condition {
            Ok(c @ StoreCondition::Degraded(_)) => Some((s.name.as_str(), c)),
            _ => None,
        })
        .collect();
    if !degraded.is_empty() {
        reasons.extend(degraded.iter().map(|(name, c)| format!("store {name} {c}")));
        return Ok(Trigger::DegradedStores(
            degraded.iter().map(|(name, _)| name.to_string()).collect(),
            degraded
                .iter()
                .map(|(name, c)| format!("ClusterSecretStore {name} is {c}"))
                .collect(),
        ));
    }
    if obs.stores.iter().any(|s| s.condition.is_err()) {
        reasons.push("a store could not be read; nothing restarted on doubt".into());
        return Err(Hold::StoreReadFailed);
    }
    if obs
        .stores
        .iter()
        .any(|s| matches!(s.condition, Ok(StoreCondition::Unknown { .. })))
    {
        reasons.push("no store is degraded, but a store state is unknown".into());
        return Err(Hold::StoreStateUnknown);
    }
    match OutageEnd::of(obs) {
        None => {
            reasons.push(
                "store healthy; ExternalSecrets not checked: Vault gives no activation time and \
                 no outage was seen"
                    .into(),
            );
            Err(Hold::StoresHealthy)
        }
        Some(end) if age(end.at(), now) >= RECOVERY_WINDOW => {
            reasons.push(format!(
                "store healthy; the last outage ended over {} ago ({end}): ESO has retried \
                 every ExternalSecret since",
                humantime::format_duration(RECOVERY_WINDOW)
            ));
            Err(Hold::StoresHealthy)
        }
        Some(end) => {
            reasons.push(format!(
                "store healthy, but the last outage ended {} ago ({end}): checking for \
                 ExternalSecrets stuck in ESO's backoff",
                humantime::format_duration(Duration::from_secs(age(end.at(), now).as_secs()))
            ));
            Ok(Trigger::MaybeStuck(end))
        }
    }
}

/// The cooldown, then the one-restart-per-outage bound (when Vault's clock is known).
fn hold_for_restarts(
    deployments: &[DeploymentObservation],
    now: Timestamp,
    policy: &Policy,
    obs: &Observation,
    reasons: &mut Vec<String>,
) -> Result<(), Hold> {
    let restart = newest_restart(deployments, now).map(|t| (t, "restart"));
    let resync = obs.last_resync.map(|t| (t.min(now), "resync"));
    let Some((newest, what)) = restart.into_iter().chain(resync).max() else {
        return Ok(());
    };
    let next = newest.saturating_add(policy.cooldown).unwrap_or(newest);
    if next > now {
        reasons.push(format!(
            "cooldown, next restart or resync possible at {next} (last {what} {newest}, \
             cooldown {})",
            humantime::format_duration(policy.cooldown)
        ));
        return Err(Hold::Cooldown { next });
    }
    if let Some(end) = OutageEnd::of(obs)
        && newest >= whole_second(end.at())
    {
        let outage_ended = end.at();
        if what == "resync" {
            reasons.push(format!(
                "already resynced at {newest}, after the outage ended ({end}): what that woke \
                 came back, or was restarted for in the same run, so nothing more is done until \
                 Vault goes away again"
            ));
            return Err(Hold::AlreadyResynced {
                at: newest,
                outage_ended,
            });
        }
        reasons.push(format!(
            "already restarted at {newest}, after the outage ended ({end}): every backoff was \
             cleared then, so another restart would not help until Vault goes away again"
        ));
        return Err(Hold::AlreadyRestarted {
            at: newest,
            outage_ended,
        });
    }
    Ok(())
}

fn uses_watched_store(f: &FailingExternalSecret, policy: &Policy) -> bool {
    f.reason == SYNC_ERROR && policy.stores.iter().any(|s| f.cluster_stores.contains(s))
}

/// Failing since before the outage ended (compared in whole seconds, the precision ESO and
/// kubectl write): such an ExternalSecret failed during the outage and, with no restart since,
/// waits for its backoff slot. One with no readable time is not counted (nothing on doubt).
fn failing_since_before(f: &FailingExternalSecret, end: Timestamp) -> bool {
    f.since.is_some_and(|t| t < whole_second(end))
}

fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn age(t: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO)
}

/// How many names a reason, a summary or an Event lists before "and N more".
pub const SHOWN: usize = 10;

/// At most the first [`SHOWN`] names, then how many more: readable whatever their number.
pub fn first_few(names: &[String]) -> String {
    let mut text: Vec<String> = names.iter().take(SHOWN).cloned().collect();
    if names.len() > SHOWN {
        text.push(format!("and {} more", names.len() - SHOWN));
    }
    text.join(", ")
}

fn list_keys(items: &[&FailingExternalSecret]) -> String {
    first_few(&items.iter().map(|f| f.key()).collect::<Vec<_>>())
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

    fn es(
        name: &str,
        reason: &str,
        since: Option<Timestamp>,
        store: &str,
    ) -> FailingExternalSecret {
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
}
