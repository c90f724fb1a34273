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
mod tests;
