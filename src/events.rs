//! `events.k8s.io/v1` Events on the restarted Deployments, so `kubectl describe` and `kubectl
//! events` tell the on-call person why ESO restarted. An Event that cannot be written is logged
//! and never fails the run.

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, api::PostParams};

use crate::{errors::describe_api_error, kube_client::FIELD_MANAGER};

/// The controller name on every Event.
pub const REPORTING_CONTROLLER: &str = "eso-recovery";
/// The API server's limit on `note`.
const MAX_NOTE: usize = 1024;

/// Normal or Warning, as `kubectl events --types` filters them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The restart was sent.
    Restarted,
    /// The restart failed or was refused.
    RestartFailed,
    /// The stuck objects were annotated instead (`--strategy resync`).
    Resynced,
    /// The resync gave way to a restart.
    ResyncFellBack,
}

/// Builds the Event for one Deployment. Named like client-go's (`<name>.<hex nanoseconds>`) so
/// two runs never collide.
pub fn event(
    namespace: &str,
    deployment: &str,
    uid: Option<&str>,
    kind: Kind,
    note: &str,
    now: Timestamp,
    instance: &str,
) -> Event {
    let (type_, reason, action) = match kind {
        Kind::Restarted => ("Normal", "Restarted", "Restart"),
        Kind::RestartFailed => ("Warning", "RestartFailed", "Restart"),
        Kind::Resynced => ("Normal", "Resynced", "Resync"),
        Kind::ResyncFellBack => ("Warning", "ResyncFellBack", "Resync"),
    };
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{deployment}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        action: Some(action.into()),
        note: Some(truncate(note, MAX_NOTE)),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.to_string()),
        regarding: Some(ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some(deployment.to_string()),
            namespace: Some(namespace.to_string()),
            uid: uid.map(str::to_string),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes the Events at once; failures are only logged.
pub async fn publish(api: &Api<Event>, events: Vec<Event>) {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let results = join_all(events.iter().map(|e| api.create(&params, e))).await;
    for (e, result) in events.iter().zip(results) {
        let about = e
            .regarding
            .as_ref()
            .and_then(|r| r.name.as_deref())
            .unwrap_or_default();
        if let Err(err) = result {
            let err = describe_api_error(err, &format!("writing an Event on Deployment {about}"));
            tracing::warn!("{err} (the run goes on)");
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let e = event(
            "security",
            "external-secrets",
            Some("u-1"),
            Kind::Restarted,
            "why",
            now,
            "pod-1",
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v["metadata"]["name"],
            format!("external-secrets.{:x}", now.as_nanosecond())
        );
        assert_eq!(v["type"], "Normal");
        assert_eq!(v["reason"], "Restarted");
        assert_eq!(v["reportingController"], "eso-recovery");
        assert_eq!(v["reportingInstance"], "pod-1");
        assert_eq!(v["regarding"]["kind"], "Deployment");
        assert_eq!(v["regarding"]["uid"], "u-1");
        assert_eq!(v["eventTime"], "2026-12-01T12:00:00.000000Z");
        let w = event("security", "d", None, Kind::RestartFailed, "x", now, "i");
        assert_eq!(w.type_.as_deref(), Some("Warning"));
    }

    #[tokio::test]
    async fn publish_posts_events_k8s_io_v1_and_survives_a_refusal() {
        let (client, mut server) = crate::fixtures::mock_client();
        let api: Api<Event> = Api::namespaced(client, "security");
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let e = event(
            "security",
            "external-secrets",
            None,
            Kind::Restarted,
            "why",
            now,
            "pod-1",
        );
        let sent = serde_json::to_value(&e).unwrap();
        let task = tokio::spawn(async move { publish(&api, vec![e]).await });
        let got = server
            .answer(
                403,
                crate::fixtures::status_error(
                    403,
                    "Forbidden",
                    "events.events.k8s.io is forbidden",
                ),
            )
            .await;
        assert_eq!(got.method, "POST");
        assert_eq!(
            got.path,
            "/apis/events.k8s.io/v1/namespaces/security/events"
        );
        assert_eq!(got.query_pairs(), ["fieldManager=eso-recovery"]);
        assert_eq!(got.content_type, "application/json");
        assert_eq!(got.body, sent);
        // A refused Event is only logged.
        task.await.unwrap();
    }

    #[test]
    fn notes_are_cut_to_the_api_limit_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cut = truncate(&long, MAX_NOTE);
        assert!(cut.len() <= MAX_NOTE);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", MAX_NOTE), "short");
    }
}
