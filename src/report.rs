//! The one summary line each run ends with: outcome, Vault, each store, each Deployment. It is what
//! an alert or a person reads first, so it is built up as the run goes and survives a timeout.

use std::{
    fmt::{self, Write as _},
    sync::{Mutex, PoisonError},
};

use serde::{Serialize, Serializer};

use crate::store::StoreCondition;

/// What a run is doing: the summary's last word when `--timeout` cuts it, and `--wait`'s own
/// timeout (not recovered) told apart from a run that hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    Starting,
    /// Reading Vault, its clock, the stores and the record.
    Checking,
    /// `--await-vault`.
    AwaitingVault,
    /// Reading the Deployments.
    ReadingDeployments,
    /// Listing the ExternalSecrets.
    ListingExternalSecrets,
    /// Patching the Deployments.
    Restarting,
    /// Annotating the stuck objects.
    Resyncing,
    /// Listing the ExternalSecrets behind the stores a resync woke.
    ListingBehindStores,
    /// Waiting for what a resync woke.
    AwaitingResynced,
    /// `--wait`.
    Waiting,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Starting => "starting",
            Phase::Checking => "checking Vault and the stores",
            Phase::AwaitingVault => "awaiting Vault",
            Phase::ReadingDeployments => "reading the Deployments",
            Phase::ListingExternalSecrets => "listing the ExternalSecrets",
            Phase::Restarting => "restarting the Deployments",
            Phase::Resyncing => "resyncing",
            Phase::ListingBehindStores => "listing the ExternalSecrets behind the stores",
            Phase::AwaitingResynced => "waiting for what was resynced",
            Phase::Waiting => "waiting",
        })
    }
}

/// The run's summary, shared between the run and the process, so that a `--timeout` still
/// reports what was seen.
pub type Report = Mutex<Summary>;

/// Applies a change to the shared summary.
pub fn update(report: &Report, f: impl FnOnce(&mut Summary)) {
    f(&mut report.lock().unwrap_or_else(PoisonError::into_inner));
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running (seen only when a timeout cut the run).
    Running,
    /// Vault is not ready: nothing done.
    VaultNotReady,
    /// Every store is Ready: nothing done.
    StoreHealthy,
    /// No store degraded, one with no usable Ready condition: nothing done.
    StoreUnknown,
    /// A store could not be read: nothing done, exit 1.
    StoreReadFailed,
    /// The last restart is too recent.
    Cooldown,
    /// A rollout is still going on.
    RolloutInProgress,
    /// ESO was already restarted after Vault last became active.
    AlreadyRestarted,
    /// The ExternalSecrets could not be listed: nothing done, exit 1.
    ExternalSecretsReadFailed,
    /// Restarted every Deployment.
    Restarted,
    /// `--strategy resync`: the stuck objects were annotated (and came back, or ESO was still
    /// bringing them back when the run ended).
    Resynced,
    /// Dry run: the resync patches were accepted, nothing changed.
    WouldResync,
    /// `--strategy resync` gave way to a restart, which succeeded (the reason in `resync`).
    FellBackToRestart,
    /// The last resync is after the last outage ended.
    AlreadyResynced,
    /// Another run claimed this outage a moment ago and acts for it.
    AlreadyClaimed,
    /// Dry run: the patches were accepted, nothing changed.
    WouldRestart,
    /// At least one Deployment was not restarted.
    RestartFailed,
    /// `--wait`: every rollout completed and every store is Ready.
    Recovered,
    /// `--wait`: the deadline passed first.
    WaitTimedOut,
    /// `--timeout` cut the run.
    TimedOut,
    /// Could not start: no Kubernetes client.
    Error,
}

/// A store's state in the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    /// Its Ready condition as read.
    Observed(StoreCondition),
    /// It could not be read.
    Unreadable(String),
}

impl StoreState {
    /// Whether `--wait` is done with it.
    pub fn is_ready(&self) -> bool {
        matches!(self, StoreState::Observed(StoreCondition::Ready(_)))
    }
}

impl fmt::Display for StoreState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreState::Observed(c) => write!(f, "{c}"),
            StoreState::Unreadable(e) => write!(f, "error: {e}"),
        }
    }
}

/// One store in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreLine {
    /// The store's name.
    pub name: String,
    /// Its state, written in words.
    #[serde(serialize_with = "as_text")]
    pub state: StoreState,
}

/// What happened to one Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentResult {
    /// Patched; the `restartedAt` value written.
    Restarted(String),
    /// Dry run: the patch was accepted.
    WouldRestart,
    /// Not restarted, and why.
    Failed(String),
    /// `--wait`: its rollout completed.
    RolledOut,
    /// `--wait`: its rollout is still going on, and why.
    Pending(String),
}

impl fmt::Display for DeploymentResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeploymentResult::Restarted(at) => write!(f, "restarted at {at}"),
            DeploymentResult::WouldRestart => f.write_str("would restart (dry-run patch accepted)"),
            DeploymentResult::Failed(e) => write!(f, "failed: {e}"),
            DeploymentResult::RolledOut => f.write_str("rolled out"),
            DeploymentResult::Pending(why) => write!(f, "pending: {why}"),
        }
    }
}

/// One Deployment in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentLine {
    /// The Deployment's name.
    pub name: String,
    /// What happened to it, written in words.
    #[serde(serialize_with = "as_text")]
    pub result: DeploymentResult,
}

/// The ExternalSecrets, when they were read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExternalSecretsLine {
    /// How many were listed.
    pub listed: usize,
    /// How many were `Ready=False`.
    pub failing: usize,
    /// The ones stuck from the outage (`namespace/name`); `--wait` waits for these.
    pub stuck: Vec<String>,
    /// `--wait`: the stuck ones still failing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub still_failing: Vec<String>,
}

/// What a resync annotated, in the summary: counts and the first few names, whatever their number.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ResyncLine {
    /// The stores annotated.
    pub stores: Vec<String>,
    /// How many ExternalSecrets were annotated.
    pub external_secrets: usize,
    /// The first of them (`namespace/name`).
    pub first: Vec<String>,
    /// How many of them still failed when the run ended.
    pub still_failing: usize,
    /// Why the run restarted instead (`resync_unguarded`, `resync_failed`, `resync_not_back`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

fn as_text<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// The summary of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// The exit code it implies.
    pub exit_code: u8,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Vault's state in words.
    pub vault: String,
    /// Since when Vault's node has been active, or why that is unknown.
    pub vault_active: String,
    /// `--await-vault`: how the wait went, if the run waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaited: Option<String>,
    /// What eso-recovery's outage record says (and why the Lease could not help, if so).
    pub outage_record: String,
    /// Each store.
    pub stores: Vec<StoreLine>,
    /// The ExternalSecrets, if they were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_secrets: Option<ExternalSecretsLine>,
    /// What a resync annotated, if the run resynced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<ResyncLine>,
    /// Each Deployment acted on.
    pub deployments: Vec<DeploymentLine>,
    /// Why, in order.
    pub reasons: Vec<String>,
    /// What went wrong; any entry makes the exit code 1.
    pub errors: Vec<String>,
    /// What the run was doing, for the message when `--timeout` cuts it.
    #[serde(skip)]
    pub phase: Phase,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            outcome: Outcome::Running,
            exit_code: 1,
            dry_run: false,
            vault: "not checked".into(),
            vault_active: "not checked".into(),
            awaited: None,
            outage_record: "not checked".into(),
            stores: Vec::new(),
            external_secrets: None,
            resync: None,
            deployments: Vec::new(),
            reasons: Vec::new(),
            errors: Vec::new(),
            phase: Phase::Starting,
        }
    }
}

impl Summary {
    /// Sets the outcome and the exit code that follows from it and from the errors.
    pub fn finish(&mut self, outcome: Outcome) {
        self.outcome = outcome;
        let failed = matches!(
            outcome,
            Outcome::Running
                | Outcome::StoreReadFailed
                | Outcome::ExternalSecretsReadFailed
                | Outcome::RestartFailed
                | Outcome::WaitTimedOut
                | Outcome::TimedOut
                | Outcome::Error
        );
        self.exit_code = u8::from(failed || !self.errors.is_empty());
    }

    /// The text form: one line, `key=value` pairs.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "summary: outcome={} exit={} vault={:?} vault_active={:?}",
            serde_json::to_value(self.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.exit_code,
            self.vault,
            self.vault_active
        );
        if let Some(awaited) = &self.awaited {
            let _ = write!(s, " awaited={awaited:?}");
        }
        let _ = write!(s, " outage_record={:?}", self.outage_record);
        if self.dry_run {
            s.push_str(" dry_run=true");
        }
        for st in &self.stores {
            let _ = write!(s, " store[{}]={:?}", st.name, st.state.to_string());
        }
        if let Some(es) = &self.external_secrets {
            let _ = write!(
                s,
                " externalsecrets=\"{} listed, {} failing, {} stuck\"",
                es.listed,
                es.failing,
                es.stuck.len()
            );
            for key in &es.stuck {
                let _ = write!(s, " stuck[{key}]");
            }
        }
        if let Some(r) = &self.resync {
            let _ = write!(
                s,
                " resync=\"{} store(s), {} ExternalSecret(s), {} still failing\"",
                r.stores.len(),
                r.external_secrets,
                r.still_failing
            );
            for name in &r.stores {
                let _ = write!(s, " resynced_store[{name}]");
            }
            for key in &r.first {
                let _ = write!(s, " resynced[{key}]");
            }
            if let Some(f) = &r.fallback {
                let _ = write!(s, " fallback={f}");
            }
        }
        for d in &self.deployments {
            let _ = write!(s, " deployment[{}]={:?}", d.name, d.result.to_string());
        }
        for e in &self.errors {
            let _ = write!(s, " error={e:?}");
        }
        s
    }

    /// The JSON form: one object on one line, shaped like the JSON log lines.
    pub fn to_json(&self, timestamp: jiff::Timestamp) -> String {
        let mut v = serde_json::json!({
            "timestamp": timestamp.to_string(),
            "level": if self.exit_code == 0 { "INFO" } else { "ERROR" },
            "target": "eso_recovery::summary",
            "message": "summary",
        });
        if let (Some(obj), Ok(serde_json::Value::Object(fields))) =
            (v.as_object_mut(), serde_json::to_value(self))
        {
            obj.extend(fields);
        }
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        let mut s = Summary {
            vault: "active".into(),
            vault_active: "active since 2026-12-01T11:58:30Z".into(),
            stores: vec![StoreLine {
                name: "k8s-secrets".into(),
                state: StoreState::Observed(crate::fixtures::degraded()),
            }],
            deployments: vec![DeploymentLine {
                name: "external-secrets".into(),
                result: DeploymentResult::Restarted("2026-12-01T12:00:00Z".into()),
            }],
            ..Default::default()
        };
        s.finish(Outcome::Restarted);
        s
    }

    #[test]
    fn exit_code_follows_outcome_and_errors() {
        let mut s = sample();
        assert_eq!(s.exit_code, 0);
        s.errors
            .push("reading ClusterSecretStore other: HTTP 404".into());
        s.finish(Outcome::Restarted);
        assert_eq!(s.exit_code, 1);
        for (outcome, code) in [
            (Outcome::VaultNotReady, 0),
            (Outcome::StoreHealthy, 0),
            (Outcome::Cooldown, 0),
            (Outcome::WouldRestart, 0),
            (Outcome::RestartFailed, 1),
            (Outcome::WaitTimedOut, 1),
            (Outcome::TimedOut, 1),
        ] {
            let mut s = Summary::default();
            s.finish(outcome);
            assert_eq!(s.exit_code, code, "{outcome:?}");
        }
    }

    #[test]
    fn text_is_one_line() {
        let t = sample().to_text();
        assert_eq!(
            t,
            "summary: outcome=restarted exit=0 vault=\"active\" vault_active=\"active since 2026-12-01T11:58:30Z\" outage_record=\"not checked\" store[k8s-secrets]=\"degraded (InvalidProviderConfig, \\\"unable to create client\\\", since 2026-12-01T11:00:00Z)\" deployment[external-secrets]=\"restarted at 2026-12-01T12:00:00Z\""
        );
    }

    #[test]
    fn text_names_the_stuck_external_secrets() {
        let mut s = sample();
        s.external_secrets = Some(ExternalSecretsLine {
            listed: 1000,
            failing: 3,
            stuck: vec!["db/postgres-secret".into()],
            still_failing: Vec::new(),
        });
        let t = s.to_text();
        assert!(
            t.contains(" externalsecrets=\"1000 listed, 3 failing, 1 stuck\" stuck[db/postgres-secret] deployment["),
            "{t}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&s.to_json("2026-12-01T12:00:00Z".parse().unwrap())).unwrap();
        assert_eq!(v["external_secrets"]["stuck"][0], "db/postgres-secret");
        assert!(v["external_secrets"].get("still_failing").is_none());
    }

    #[test]
    fn json_is_one_object() {
        let line = sample().to_json("2026-12-01T12:00:00Z".parse().unwrap());
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["message"], "summary");
        assert_eq!(v["outcome"], "restarted");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["stores"][0]["name"], "k8s-secrets");
        assert_eq!(
            v["stores"][0]["state"],
            "degraded (InvalidProviderConfig, \"unable to create client\", since 2026-12-01T11:00:00Z)"
        );
        assert!(v.get("external_secrets").is_none(), "not read, not shown");
        assert_eq!(
            v["deployments"][0]["result"],
            "restarted at 2026-12-01T12:00:00Z"
        );
    }

    #[test]
    fn a_resync_is_counted_and_its_first_names_listed() {
        let mut s = sample();
        s.deployments.clear();
        s.resync = Some(ResyncLine {
            stores: vec!["k8s-secrets".into()],
            external_secrets: 250,
            first: vec!["db/postgres-secret".into()],
            still_failing: 3,
            fallback: None,
        });
        s.finish(Outcome::Resynced);
        let text = s.to_text();
        assert!(
            text.starts_with("summary: outcome=resynced exit=0"),
            "{text}"
        );
        assert!(
            text.contains(
                "resync=\"1 store(s), 250 ExternalSecret(s), 3 still failing\" \
                 resynced_store[k8s-secrets] resynced[db/postgres-secret]"
            ),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&s.to_json("2026-12-01T12:00:00Z".parse().unwrap())).unwrap();
        assert_eq!(json["resync"]["external_secrets"], 250);
        assert!(json["resync"].get("fallback").is_none());
    }
}
