//! ESO's ClusterSecretStore: is it degraded? Read with one GET, parsed leniently but decided strictly.
//!
//! "Degraded" means exactly a condition of type `Ready` with status `"False"`: that is what ESO
//! writes when validation fails and what Argo CD shows as Degraded. Every other shape is reported,
//! never acted on.

use std::fmt;

use anyhow::Result;
use kube::{
    Api, Client,
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde::Serialize;
use serde_json::Value;

use crate::errors::describe_api_error;

/// The API group, version and kind this program reads.
pub const GROUP: &str = "external-secrets.io";
/// ESO's storage version since v0.17.
pub const VERSION: &str = "v1";
/// ClusterSecretStore's kind.
pub const KIND: &str = "ClusterSecretStore";

/// What the store's `Ready` condition says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StoreCondition {
    /// `Ready=True`: ESO validated the store (reason `Valid`, or `ValidationUnknown`).
    Ready(ConditionDetail),
    /// `Ready=False`: ESO cannot use Vault (reason `InvalidProviderConfig`, `ValidationFailed`).
    Degraded(ConditionDetail),
    /// No usable Ready condition: no status yet, status `Unknown`, or a shape ESO never writes.
    Unknown {
        /// Why the state is unknown, for the warning.
        why: String,
    },
}

/// The parts of a condition a person needs to see.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ConditionDetail {
    /// ESO's reason, e.g. `InvalidProviderConfig`.
    pub reason: String,
    /// ESO's message, e.g. `unable to create client`.
    pub message: String,
    /// When the condition last changed, as ESO wrote it.
    pub since: Option<String>,
}

impl fmt::Display for StoreCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, d) = match self {
            StoreCondition::Ready(d) => ("ready", d),
            StoreCondition::Degraded(d) => ("degraded", d),
            StoreCondition::Unknown { why } => return write!(f, "unknown ({why})"),
        };
        write!(f, "{word}")?;
        let mut parts = Vec::new();
        if !d.reason.is_empty() {
            parts.push(d.reason.clone());
        }
        if !d.message.is_empty() {
            parts.push(format!("{:?}", d.message));
        }
        if let Some(since) = &d.since {
            parts.push(format!("since {since}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Reads a store's `status` (the whole object's `status` field, absent or not).
pub fn parse_status(status: Option<&Value>) -> StoreCondition {
    let unknown = |why: &str| StoreCondition::Unknown {
        why: why.to_string(),
    };
    let status = match status {
        None | Some(Value::Null) => {
            return unknown("no status yet; ESO has not reconciled the store");
        }
        Some(Value::Object(map)) => map,
        Some(_) => return unknown("status is not an object"),
    };
    let conditions = match status.get("conditions") {
        None | Some(Value::Null) => return unknown("status has no conditions"),
        Some(Value::Array(list)) => list,
        Some(_) => return unknown("status.conditions is not a list"),
    };
    let mut ready = conditions
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
    let Some(first) = ready.next() else {
        return unknown("no condition of type Ready");
    };
    if ready.any(|other| other.get("status") != first.get("status")) {
        return unknown("several Ready conditions that disagree");
    }
    let text = |key: &str| first.get(key).and_then(Value::as_str).map(str::to_string);
    let detail = ConditionDetail {
        reason: text("reason").unwrap_or_default(),
        message: text("message").unwrap_or_default(),
        since: text("lastTransitionTime"),
    };
    match first.get("status") {
        Some(Value::String(s)) if s == "True" => StoreCondition::Ready(detail),
        Some(Value::String(s)) if s == "False" => StoreCondition::Degraded(detail),
        Some(Value::String(s)) => unknown(&format!("Ready condition has status {s:?}")),
        Some(other) => unknown(&format!("Ready condition has a non-string status {other}")),
        None => unknown("Ready condition has no status"),
    }
}

/// Reads one ClusterSecretStore's condition with a single GET (no discovery).
pub async fn read(client: &Client, name: &str) -> Result<StoreCondition> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, KIND));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let object = api
        .get(name)
        .await
        .map_err(|e| describe_api_error(e, &format!("reading {KIND} {name}")))?;
    Ok(parse_status(object.data.get("status")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{ESO_RELEASES, real_eso_object};

    fn parse(v: Value) -> StoreCondition {
        parse_status(Some(&v))
    }

    #[tokio::test]
    async fn read_is_one_get_of_the_cluster_scoped_store() {
        let (client, mut server) = crate::fixtures::mock_client();
        let read = tokio::spawn(async move { read(&client, "k8s-secrets").await });
        let got = server
            .answer(
                200,
                crate::fixtures::store_object(
                    "k8s-secrets",
                    "False",
                    "InvalidProviderConfig",
                    "unable to create client",
                ),
            )
            .await;
        assert_eq!(got.method, "GET");
        assert_eq!(
            got.path,
            "/apis/external-secrets.io/v1/clustersecretstores/k8s-secrets"
        );
        assert_eq!(got.query, "");
        assert!(matches!(
            read.await.unwrap().unwrap(),
            StoreCondition::Degraded(_)
        ));
    }

    #[tokio::test]
    async fn read_errors_name_the_store_and_the_cause() {
        for (code, reason, hint) in [
            (404, "NotFound", "check the name"),
            (403, "Forbidden", "RBAC"),
            (500, "InternalError", ""),
        ] {
            let (client, mut server) = crate::fixtures::mock_client();
            let read = tokio::spawn(async move { read(&client, "k8s-secrets").await });
            server
                .answer(code, crate::fixtures::status_error(code, reason, "boom"))
                .await;
            let err = read.await.unwrap().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "reading ClusterSecretStore k8s-secrets: HTTP {code} {reason}: boom"
                )),
                "{err}"
            );
            assert!(err.contains(hint), "{err}");
        }
    }

    #[test]
    fn esos_degraded_status() {
        let got = parse(json!({"conditions": [{
            "type": "Ready", "status": "False", "reason": "InvalidProviderConfig",
            "message": "unable to create client", "lastTransitionTime": "2026-12-01T10:00:00Z"
        }]}));
        assert_eq!(
            got,
            StoreCondition::Degraded(ConditionDetail {
                reason: "InvalidProviderConfig".into(),
                message: "unable to create client".into(),
                since: Some("2026-12-01T10:00:00Z".into()),
            })
        );
        assert_eq!(
            got.to_string(),
            "degraded (InvalidProviderConfig, \"unable to create client\", since 2026-12-01T10:00:00Z)"
        );
    }

    #[test]
    fn esos_ready_and_validation_unknown_statuses() {
        let valid = parse(json!({"capabilities": "ReadWrite", "conditions": [{
            "type": "Ready", "status": "True", "reason": "Valid", "message": "store validated",
            "lastTransitionTime": "2026-12-01T10:00:00Z"}]}));
        assert!(matches!(valid, StoreCondition::Ready(ref d) if d.reason == "Valid"));
        let unknown_validation = parse(json!({"conditions": [{
            "type": "Ready", "status": "True", "reason": "ValidationUnknown",
            "message": "unable to validate store"}]}));
        assert!(matches!(unknown_validation, StoreCondition::Ready(_)));
        let old_eso = parse(json!({"conditions": [{
            "type": "Ready", "status": "False", "reason": "ValidationFailed",
            "message": "unable to validate store"}]}));
        assert!(
            matches!(old_eso, StoreCondition::Degraded(ref d) if d.reason == "ValidationFailed")
        );
    }

    #[test]
    fn the_stores_each_real_eso_release_wrote() {
        // Both releases wrote InvalidProviderConfig "unable to create client" for a sealed Vault
        // behind Kubernetes auth; 0.16 writes ValidationFailed where validation itself fails,
        // 2.x ValidationUnknown (Ready=True) where it cannot tell: both covered above.
        for release in ESO_RELEASES {
            let object = real_eso_object(release, "clustersecretstore-degraded");
            assert_eq!(object["apiVersion"], "external-secrets.io/v1", "{release}");
            assert!(
                matches!(parse(object["status"].clone()), StoreCondition::Degraded(ref d)
                    if d.reason == "InvalidProviderConfig" && d.message == "unable to create client"),
                "{release}"
            );
            let object = real_eso_object(release, "clustersecretstore-ready");
            assert!(
                matches!(parse(object["status"].clone()), StoreCondition::Ready(ref d) if d.reason == "Valid"),
                "{release}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_other_condition_types_are_tolerated() {
        let got = parse(json!({"futureField": {"x": 1}, "conditions": [
            {"type": "Synced", "status": "False"},
            {"type": "Ready", "status": "False", "reason": "InvalidProviderConfig", "extra": 3}
        ]}));
        assert!(matches!(got, StoreCondition::Degraded(_)));
    }

    #[test]
    fn shapes_that_are_never_degraded() {
        let cases = [
            (None, "no status yet"),
            (Some(Value::Null), "no status yet"),
            (Some(json!("Ready")), "status is not an object"),
            (Some(json!({})), "status has no conditions"),
            (Some(json!({"conditions": {"type": "Ready"}})), "not a list"),
            (
                Some(json!({"conditions": []})),
                "no condition of type Ready",
            ),
            (
                Some(json!({"conditions": [{"type": "Synced", "status": "False"}]})),
                "no condition of type Ready",
            ),
            (
                Some(json!({"conditions": [{"type": "Ready", "status": "Unknown"}]})),
                "status \"Unknown\"",
            ),
            (
                Some(json!({"conditions": [{"type": "Ready", "status": "false"}]})),
                "status \"false\"",
            ),
            (
                Some(json!({"conditions": [{"type": "Ready", "status": false}]})),
                "non-string status false",
            ),
            (
                Some(json!({"conditions": [{"type": "Ready"}]})),
                "has no status",
            ),
            (
                Some(json!({"conditions": ["Ready"]})),
                "no condition of type Ready",
            ),
            (
                Some(
                    json!({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}]}),
                ),
                "disagree",
            ),
        ];
        for (status, want) in cases {
            match parse_status(status.as_ref()) {
                StoreCondition::Unknown { why } => assert!(why.contains(want), "{status:?}: {why}"),
                other => panic!("{status:?} gave {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Arbitrary JSON, nested a few levels.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop_oneof![
                Just("Ready".to_string()),
                Just("True".into()),
                Just("False".into()),
                ".{0,6}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::hash_map(
                    prop_oneof![
                        Just("type".to_string()),
                        Just("status".into()),
                        Just("conditions".into()),
                        Just("reason".into()),
                        "[a-z]{1,5}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// No shape panics; "degraded" only when a Ready condition has status exactly "False".
        #[test]
        fn degraded_only_for_ready_false(status in any_json()) {
            let got = parse_status(Some(&status));
            if let StoreCondition::Degraded(_) = got {
                let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
                let ready: Vec<&Value> = conditions.iter().filter(|c| c["type"] == "Ready").collect();
                prop_assert!(!ready.is_empty());
                prop_assert!(ready.iter().all(|c| c["status"] == "False"));
            }
        }

        #[test]
        fn ready_condition_status_decides(status in prop_oneof![Just("True".to_string()), Just("False".to_string()), Just("Unknown".to_string()), Just("false".to_string()), ".{0,5}"], extra in any_json()) {
            let v = json!({"conditions": [{"type": "Other", "status": "False", "x": extra}, {"type": "Ready", "status": status}]});
            let got = parse_status(Some(&v));
            let want = match status.as_str() {
                "True" => "ready",
                "False" => "degraded",
                _ => "unknown",
            };
            prop_assert!(got.to_string().starts_with(want), "{} gave {}", status, got);
        }
    }
}
