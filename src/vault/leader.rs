//! When the Vault node became active: `GET /v1/sys/leader`'s `active_time`.
//!
//! On raft or other HA storage it moves on every unseal (and on every leadership change), so it
//! marks the end of the last outage without any state of our own. It is the clock that tells an
//! ExternalSecret stuck from the outage (failing since before it) from one failing for its own
//! reasons (failing since after it).

use std::fmt;

use jiff::Timestamp;
use serde::Deserialize;

/// Vault's own clock for "the outage ended", or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveSince {
    /// The node has been active since this time.
    At(Timestamp),
    /// No usable activation time: non-HA storage, not the active node, sealed, or no answer.
    Unknown(String),
}

impl ActiveSince {
    /// The time, if known.
    pub fn time(&self) -> Option<Timestamp> {
        match self {
            ActiveSince::At(t) => Some(*t),
            ActiveSince::Unknown(_) => None,
        }
    }
}

impl fmt::Display for ActiveSince {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActiveSince::At(t) => write!(f, "active since {t}"),
            ActiveSince::Unknown(why) => write!(f, "activation time unknown ({why})"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct LeaderBody {
    ha_enabled: bool,
    #[serde(default)]
    is_self: bool,
    #[serde(default)]
    active_time: Option<String>,
}

/// Reads one `/v1/sys/leader` answer.
pub fn parse_leader(code: u16, body: &[u8]) -> ActiveSince {
    let unknown = |why: String| ActiveSince::Unknown(why);
    if code != 200 {
        return unknown(format!("sys/leader answered HTTP {code}"));
    }
    let parsed: LeaderBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return unknown(format!(
                "sys/leader's body is not Vault's leader JSON ({e})"
            ));
        }
    };
    if !parsed.ha_enabled {
        return unknown("Vault's storage is not HA, so it keeps no activation time".into());
    }
    if !parsed.is_self {
        return unknown("this node is not the active node".into());
    }
    let Some(text) = parsed.active_time.filter(|t| !t.is_empty()) else {
        return unknown("sys/leader has no active_time".into());
    };
    match text.parse::<Timestamp>() {
        // Vault writes the zero time (year 1) when it has none.
        Ok(t) if t.as_second() > 0 => ActiveSince::At(t),
        Ok(_) => unknown("sys/leader's active_time is the zero time".into()),
        Err(e) => unknown(format!(
            "sys/leader's active_time {text:?} is not a time ({e})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_active_node() {
        let body = br#"{"ha_enabled":true,"is_self":true,"active_time":"2026-12-01T11:58:30.123456789Z","leader_address":"http://127.0.0.1:8200","leader_cluster_address":"https://127.0.0.1:8201","performance_standby":false,"raft_committed_index":40,"raft_applied_index":40}"#;
        assert_eq!(
            parse_leader(200, body),
            ActiveSince::At("2026-12-01T11:58:30.123456789Z".parse().unwrap())
        );
    }

    #[test]
    fn no_clock_cases_say_why() {
        let cases: [(u16, &[u8], &str); 7] = [
            (
                200,
                br#"{"ha_enabled":false,"is_self":false,"active_time":"0001-01-01T00:00:00Z"}"#,
                "not HA",
            ),
            (
                200,
                br#"{"ha_enabled":true,"is_self":false,"active_time":"0001-01-01T00:00:00Z"}"#,
                "not the active node",
            ),
            (
                200,
                br#"{"ha_enabled":true,"is_self":true,"active_time":"0001-01-01T00:00:00Z"}"#,
                "zero time",
            ),
            (
                200,
                br#"{"ha_enabled":true,"is_self":true}"#,
                "no active_time",
            ),
            (
                200,
                br#"{"ha_enabled":true,"is_self":true,"active_time":"soon"}"#,
                "is not a time",
            ),
            (503, br#"{"errors":["Vault is sealed"]}"#, "HTTP 503"),
            (200, b"<html>", "not Vault's leader JSON"),
        ];
        for (code, body, want) in cases {
            match parse_leader(code, body) {
                ActiveSince::Unknown(why) => assert!(why.contains(want), "{want}: {why}"),
                other => panic!("{want}: got {other:?}"),
            }
        }
    }
}
