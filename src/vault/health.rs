//! What Vault's `/v1/sys/health` answer means for ESO, decided from the status code *and* the body.
//!
//! The code alone is not enough: a proxy in front of Vault answers 503 with an HTML page when the
//! pod is gone, and a 200 whose body says `sealed: true` is a contradiction, not a ready Vault.

use std::fmt;

use serde::Deserialize;

/// The state of the Vault node, as far as ESO's login and reads are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultStatus {
    /// Initialized, unsealed, active: ESO can log in and read.
    Active,
    /// A standby node (429, or 200 with `standby: true` when `standbyok` was sent).
    Standby,
    /// A performance standby (473, or 200 with `performance_standby: true`).
    PerformanceStandby,
    /// 501: `vault operator init` has never run.
    Uninitialized,
    /// 503: the node restarted and waits for its unseal keys.
    Sealed,
    /// 472: a disaster-recovery secondary, which serves no secrets.
    DrSecondary,
    /// 474: a standby that has lost its active node.
    StandbyWithoutActive,
    /// 530: the node was removed from its raft cluster.
    Removed,
    /// No trustworthy answer: a transport error, an unknown code, or a body that is not (or
    /// contradicts) Vault's health JSON.
    Unreachable(String),
}

impl VaultStatus {
    /// Whether ESO can work against this node. Standbys count only with `--standby-ok`: a standby
    /// does not prove there is an active node, and ESO's Kubernetes-auth login is a write.
    pub fn is_ready(&self, standby_ok: bool) -> bool {
        match self {
            VaultStatus::Active => true,
            VaultStatus::Standby | VaultStatus::PerformanceStandby => standby_ok,
            _ => false,
        }
    }
}

impl fmt::Display for VaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultStatus::Active => f.write_str("active"),
            VaultStatus::Standby => f.write_str("standby"),
            VaultStatus::PerformanceStandby => f.write_str("performance standby"),
            VaultStatus::Uninitialized => f.write_str("uninitialized"),
            VaultStatus::Sealed => f.write_str("sealed"),
            VaultStatus::DrSecondary => f.write_str("DR secondary"),
            VaultStatus::StandbyWithoutActive => f.write_str("standby without an active node"),
            VaultStatus::Removed => f.write_str("removed from its cluster"),
            VaultStatus::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// The fields of the health body this program relies on; others are ignored.
#[derive(Debug, Deserialize)]
struct HealthBody {
    initialized: bool,
    sealed: bool,
    standby: bool,
    #[serde(default)]
    performance_standby: bool,
}

/// Classifies one `/v1/sys/health` answer.
///
/// Every known code must come with a body that agrees with it; anything else is `Unreachable`,
/// which is never ready. `sealed` is checked before `standby`: sealed bodies say `standby: true`.
pub fn classify(code: u16, body: &[u8]) -> VaultStatus {
    if !matches!(code, 200 | 429 | 472 | 473 | 474 | 501 | 503 | 530) {
        return VaultStatus::Unreachable(format!(
            "unexpected HTTP {code} from sys/health (body starts with {:?})",
            preview(body)
        ));
    }
    let parsed: HealthBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return VaultStatus::Unreachable(format!(
                "HTTP {code} with a body that is not Vault's health JSON ({e}; starts with {:?})",
                preview(body)
            ));
        }
    };
    let contradiction = |what: &str| {
        VaultStatus::Unreachable(format!(
            "HTTP {code} but the body says {what}; not trusting either"
        ))
    };
    match code {
        200 => {
            if !parsed.initialized {
                contradiction("initialized=false")
            } else if parsed.sealed {
                contradiction("sealed=true")
            } else if parsed.performance_standby {
                VaultStatus::PerformanceStandby
            } else if parsed.standby {
                VaultStatus::Standby
            } else {
                VaultStatus::Active
            }
        }
        429 | 473 | 474 if parsed.sealed => contradiction("sealed=true"),
        429 | 473 | 474 if !parsed.initialized => contradiction("initialized=false"),
        429 | 473 if !parsed.standby => contradiction("standby=false"),
        429 => VaultStatus::Standby,
        473 => VaultStatus::PerformanceStandby,
        474 => VaultStatus::StandbyWithoutActive,
        501 if parsed.initialized => contradiction("initialized=true"),
        501 => VaultStatus::Uninitialized,
        503 if !parsed.sealed => contradiction("sealed=false"),
        503 => VaultStatus::Sealed,
        472 => VaultStatus::DrSecondary,
        530 => VaultStatus::Removed,
        _ => contradiction("an unknown state"),
    }
}

/// The first bytes of a body, for an error message a person can recognise ("<html>…").
fn preview(body: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut s: String = text.chars().filter(|c| !c.is_control()).collect();
    if body.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: &str = r#"{"initialized":true,"sealed":false,"standby":false,"performance_standby":false,"replication_performance_mode":"disabled","replication_dr_mode":"disabled","server_time_utc":1764590000,"version":"2.7.2","cluster_name":"vault-cluster-1","cluster_id":"abc"}"#;
    const SEALED: &str = r#"{"initialized":true,"sealed":true,"standby":true,"performance_standby":false,"replication_performance_mode":"disabled","replication_dr_mode":"disabled","server_time_utc":1764590000,"version":"2.7.2"}"#;
    const UNINIT: &str = r#"{"initialized":false,"sealed":true,"standby":true,"performance_standby":false,"server_time_utc":1764590000,"version":"2.7.2"}"#;
    const STANDBY: &str = r#"{"initialized":true,"sealed":false,"standby":true,"performance_standby":false,"server_time_utc":1764590000,"version":"1.17.0"}"#;
    const PERF_STANDBY: &str = r#"{"initialized":true,"sealed":false,"standby":true,"performance_standby":true,"server_time_utc":1764590000,"version":"1.17.0+ent"}"#;
    const DR: &str = r#"{"initialized":true,"sealed":false,"standby":false,"replication_dr_mode":"secondary","server_time_utc":1764590000}"#;

    fn unreachable(s: &VaultStatus) -> &str {
        match s {
            VaultStatus::Unreachable(why) => why,
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn every_code_with_its_real_body() {
        let cases: &[(u16, &str, VaultStatus)] = &[
            (200, ACTIVE, VaultStatus::Active),
            (200, STANDBY, VaultStatus::Standby),
            (200, PERF_STANDBY, VaultStatus::PerformanceStandby),
            (429, STANDBY, VaultStatus::Standby),
            (473, PERF_STANDBY, VaultStatus::PerformanceStandby),
            (474, STANDBY, VaultStatus::StandbyWithoutActive),
            (472, DR, VaultStatus::DrSecondary),
            (501, UNINIT, VaultStatus::Uninitialized),
            (503, SEALED, VaultStatus::Sealed),
            (530, ACTIVE, VaultStatus::Removed),
        ];
        for (code, body, want) in cases {
            assert_eq!(&classify(*code, body.as_bytes()), want, "code {code}");
        }
    }

    #[test]
    fn readiness_depends_on_standby_ok_only_for_standbys() {
        let table = [
            (VaultStatus::Active, true, true),
            (VaultStatus::Standby, false, true),
            (VaultStatus::PerformanceStandby, false, true),
            (VaultStatus::Sealed, false, false),
            (VaultStatus::Uninitialized, false, false),
            (VaultStatus::DrSecondary, false, false),
            (VaultStatus::StandbyWithoutActive, false, false),
            (VaultStatus::Removed, false, false),
            (VaultStatus::Unreachable("x".into()), false, false),
        ];
        for (status, without, with) in table {
            assert_eq!(
                status.is_ready(false),
                without,
                "{status} without --standby-ok"
            );
            assert_eq!(status.is_ready(true), with, "{status} with --standby-ok");
        }
    }

    #[test]
    fn contradicting_bodies_are_not_trusted() {
        for (code, body) in [
            (200, SEALED),
            (200, UNINIT),
            (429, ACTIVE),
            (429, SEALED),
            (473, UNINIT),
            (473, ACTIVE),
            (474, UNINIT),
            (503, ACTIVE),
            (501, ACTIVE),
        ] {
            let s = classify(code, body.as_bytes());
            assert!(unreachable(&s).contains("but the body says"), "{code}: {s}");
            assert!(!s.is_ready(true));
        }
    }

    #[test]
    fn bodies_that_are_not_health_json() {
        for (code, body) in [
            (200, "<html><body>Welcome to nginx!</body></html>"),
            (503, "<html>503 Service Temporarily Unavailable</html>"),
            (200, ""),
            (200, "{}"),
            (
                200,
                r#"{"initialized":"yes","sealed":false,"standby":false}"#,
            ),
            (200, "[true]"),
            (200, "null"),
        ] {
            let s = classify(code, body.as_bytes());
            let why = unreachable(&s);
            assert!(
                why.contains("not Vault's health JSON"),
                "{code} {body:?}: {why}"
            );
            assert!(why.contains(&format!("HTTP {code}")), "{why}");
        }
    }

    #[test]
    fn html_body_is_named_in_the_message() {
        let s = classify(200, b"<html><head><title>Login</title></head></html>");
        assert!(unreachable(&s).contains("<html><head>"), "{s}");
    }

    #[test]
    fn unknown_codes_are_unreachable() {
        for code in [201, 204, 301, 400, 404, 500, 502, 504] {
            let s = classify(code, ACTIVE.as_bytes());
            let why = unreachable(&s);
            assert!(
                why.starts_with(&format!(
                    "unexpected HTTP {code} from sys/health (body starts with"
                )),
                "{why}"
            );
        }
    }

    #[test]
    fn display_names_the_state() {
        assert_eq!(VaultStatus::Sealed.to_string(), "sealed");
        assert_eq!(
            VaultStatus::Unreachable("connection refused".into()).to_string(),
            "unreachable: connection refused"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn health_json() -> impl Strategy<Value = String> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), "[a-z0-9.]{0,8}").prop_map(
            |(initialized, sealed, standby, perf, version)| {
                format!(
                    r#"{{"initialized":{initialized},"sealed":{sealed},"standby":{standby},"performance_standby":{perf},"version":"{version}"}}"#
                )
            },
        )
    }

    proptest! {
        /// No input panics, and only a 200 whose body says initialized, unsealed, active is Active.
        #[test]
        fn arbitrary_bytes_never_panic_and_are_rarely_ready(code in 0u16..1000, body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = classify(code, &body);
            if s == VaultStatus::Active {
                prop_assert_eq!(code, 200);
            }
        }

        #[test]
        fn active_only_for_a_consistent_200(code in prop_oneof![Just(200u16), Just(429), Just(472), Just(473), Just(474), Just(501), Just(503), Just(530), 0u16..1000], body in health_json()) {
            let s = classify(code, body.as_bytes());
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if s.is_ready(false) {
                prop_assert_eq!(code, 200);
                prop_assert_eq!(&v["initialized"], true);
                prop_assert_eq!(&v["sealed"], false);
                prop_assert_eq!(&v["standby"], false);
            }
            if s.is_ready(true) {
                prop_assert_eq!(&v["sealed"], false);
                prop_assert_eq!(&v["initialized"], true);
            }
        }
    }
}
