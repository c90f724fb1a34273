//! The one summary line each run ends with: outcome, Vault, each store, each Deployment. It is what
//! an alert or a person reads first, so it is built up as the run goes and survives a timeout.

use std::fmt::Write as _;

use serde::Serialize;

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
    /// Restarted every Deployment.
    Restarted,
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

/// One store in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreLine {
    /// The store's name.
    pub name: String,
    /// Its state in words, or the read error.
    pub state: String,
}

/// One Deployment in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentLine {
    /// The Deployment's name.
    pub name: String,
    /// `restarted at T`, `would restart`, `failed: …`, `rolled out`, `pending: …`.
    pub result: String,
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
    /// Each store.
    pub stores: Vec<StoreLine>,
    /// Each Deployment acted on.
    pub deployments: Vec<DeploymentLine>,
    /// Why, in order.
    pub reasons: Vec<String>,
    /// What went wrong; any entry makes the exit code 1.
    pub errors: Vec<String>,
    /// What the run was doing, for the message when `--timeout` cuts it.
    #[serde(skip)]
    pub phase: &'static str,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            outcome: Outcome::Running,
            exit_code: 1,
            dry_run: false,
            vault: "not checked".into(),
            stores: Vec::new(),
            deployments: Vec::new(),
            reasons: Vec::new(),
            errors: Vec::new(),
            phase: "starting",
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
            "summary: outcome={} exit={} vault={:?}",
            serde_json::to_value(self.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.exit_code,
            self.vault
        );
        if self.dry_run {
            s.push_str(" dry_run=true");
        }
        for st in &self.stores {
            let _ = write!(s, " store[{}]={:?}", st.name, st.state);
        }
        for d in &self.deployments {
            let _ = write!(s, " deployment[{}]={:?}", d.name, d.result);
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
            stores: vec![StoreLine {
                name: "k8s-secrets".into(),
                state: "degraded (InvalidProviderConfig)".into(),
            }],
            deployments: vec![DeploymentLine {
                name: "external-secrets".into(),
                result: "restarted at 2026-12-01T12:00:00Z".into(),
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
            "summary: outcome=restarted exit=0 vault=\"active\" store[k8s-secrets]=\"degraded (InvalidProviderConfig)\" deployment[external-secrets]=\"restarted at 2026-12-01T12:00:00Z\""
        );
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
            v["deployments"][0]["result"],
            "restarted at 2026-12-01T12:00:00Z"
        );
    }
}
