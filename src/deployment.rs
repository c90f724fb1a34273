//! ESO's Deployments as the decision sees them: paused or not, when last restarted, and whether a
//! rollout is still going on (kubectl's own `rollout status` rule); and their reads.

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde::Serialize;

use crate::errors::describe_api_error;

/// The pod-template annotation `kubectl rollout restart` writes; its value is the restart time.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// One Deployment as observed: its state, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentObservation {
    /// The Deployment's name.
    pub name: String,
    /// Its state, or the read error's message.
    pub state: Result<DeploymentState, String>,
}

/// When a Deployment was last restarted, read back from its pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartedAt {
    /// Never restarted this way.
    Never,
    /// Restarted at this time.
    At(Timestamp),
    /// An annotation that is not an RFC 3339 time; ignored, with a warning.
    Unparsable(String),
}

/// Whether a rollout is going on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum Rollout {
    /// Every replica runs the current template and is available.
    Complete,
    /// Still rolling out, with kubectl's wording of why.
    InProgress(String),
}

/// What the decision needs of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentState {
    /// The Deployment's name.
    pub name: String,
    /// Its uid, for Events that point at it.
    pub uid: Option<String>,
    /// `spec.paused`: `kubectl rollout restart` refuses these, and so does this program.
    pub paused: bool,
    /// The last `restartedAt` annotation.
    pub restarted_at: RestartedAt,
    /// Its rollout.
    pub rollout: Rollout,
}

impl DeploymentState {
    /// Reads the state out of the API object.
    pub fn from_deployment(d: &Deployment) -> Self {
        let spec = d.spec.as_ref();
        let restarted_at = spec
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(RESTARTED_AT))
            .map_or(RestartedAt::Never, |v| parse_restarted_at(v));
        Self {
            name: d.metadata.name.clone().unwrap_or_default(),
            uid: d.metadata.uid.clone(),
            paused: spec.and_then(|s| s.paused).unwrap_or(false),
            restarted_at,
            rollout: rollout(d),
        }
    }
}

/// Parses a `restartedAt` value. kubectl writes RFC 3339 seconds in local time with an offset;
/// any RFC 3339 time is accepted.
pub fn parse_restarted_at(value: &str) -> RestartedAt {
    match value.trim().parse::<Timestamp>() {
        Ok(t) => RestartedAt::At(t),
        Err(_) => RestartedAt::Unparsable(value.to_string()),
    }
}

/// Formats a restart time as `kubectl rollout restart` does (RFC 3339, whole seconds, truncated),
/// in UTC: `2026-12-01T12:00:00Z`.
pub fn format_restarted_at(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// kubectl's `rollout status` rule, so "in progress" means what an operator's kubectl says.
pub fn rollout(d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = d.status.as_ref() else {
        return Rollout::InProgress("no status yet".into());
    };
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Rollout::InProgress(format!(
            "waiting for the rollout to be observed (generation {generation}, observed {observed})"
        ));
    }
    let stuck = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    let suffix = if stuck {
        " (it has exceeded its progress deadline)"
    } else {
        ""
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return Rollout::InProgress(format!(
            "{updated} of {want} updated replicas are available{suffix}"
        ));
    }
    if total > updated {
        return Rollout::InProgress(format!(
            "{} old replicas are pending termination{suffix}",
            total - updated
        ));
    }
    if available < updated {
        return Rollout::InProgress(format!(
            "{available} of {updated} updated replicas are available{suffix}"
        ));
    }
    Rollout::Complete
}

/// Reads one Deployment's state, or why it could not be read (naming it).
pub async fn read(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
) -> Result<DeploymentState, String> {
    api.get(name)
        .await
        .map(|d| DeploymentState::from_deployment(&d))
        .map_err(|e| {
            describe_api_error(e, &format!("reading Deployment {namespace}/{name}")).to_string()
        })
}

/// Reads every Deployment at once; a failed read is kept as that Deployment's error.
pub async fn read_all(api: &Api<Deployment>, names: &[String]) -> Vec<DeploymentObservation> {
    let namespace = api.namespace().unwrap_or_default();
    join_all(names.iter().map(|name| async move {
        DeploymentObservation {
            name: name.clone(),
            state: read(api, namespace, name).await,
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{deployment, mock_client, status_error};

    #[test]
    fn restarted_at_values() {
        assert_eq!(
            parse_restarted_at("2026-12-01T12:00:00Z"),
            RestartedAt::At("2026-12-01T12:00:00Z".parse().unwrap())
        );
        // kubectl writes local time with an offset.
        assert_eq!(
            parse_restarted_at("2026-12-01T13:00:00+01:00"),
            RestartedAt::At("2026-12-01T12:00:00Z".parse().unwrap())
        );
        for bad in [
            "",
            "yesterday",
            "2026-12-01",
            "1764590000",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_restarted_at(bad),
                RestartedAt::Unparsable(bad.into()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn formats_like_kubectl_in_utc_seconds() {
        let t: Timestamp = "2026-12-01T12:34:56.789Z".parse().unwrap();
        assert_eq!(format_restarted_at(t), "2026-12-01T12:34:56Z");
        let t: Timestamp = "2026-12-01T12:34:56Z".parse().unwrap();
        assert_eq!(format_restarted_at(t), "2026-12-01T12:34:56Z");
    }

    #[test]
    fn state_reads_pause_and_annotation() {
        let mut d = deployment("external-secrets");
        d.spec.as_mut().unwrap().paused = Some(true);
        d.spec.as_mut().unwrap().template.metadata = Some(Default::default());
        d.spec
            .as_mut()
            .unwrap()
            .template
            .metadata
            .as_mut()
            .unwrap()
            .annotations =
            Some([(RESTARTED_AT.to_string(), "2026-12-01T12:00:00Z".to_string())].into());
        let s = DeploymentState::from_deployment(&d);
        assert!(s.paused);
        assert_eq!(s.name, "external-secrets");
        assert!(matches!(s.restarted_at, RestartedAt::At(_)));
        assert_eq!(s.rollout, Rollout::Complete);
    }

    #[test]
    fn kubectl_rollout_status_rule() {
        let complete = deployment("d");
        assert_eq!(rollout(&complete), Rollout::Complete);

        type Edit = (&'static str, fn(&mut Deployment));
        let edits: [Edit; 5] = [
            ("observed", |d| d.metadata.generation = Some(3)),
            ("updated replicas", |d| {
                d.status.as_mut().unwrap().updated_replicas = Some(0)
            }),
            ("pending termination", |d| {
                d.status.as_mut().unwrap().replicas = Some(2)
            }),
            ("available", |d| {
                d.status.as_mut().unwrap().available_replicas = Some(0)
            }),
            ("no status", |d| d.status = None),
        ];
        for (want, edit) in edits {
            let mut d = deployment("d");
            edit(&mut d);
            match rollout(&d) {
                Rollout::InProgress(why) => assert!(why.contains(want), "{want}: {why}"),
                Rollout::Complete => panic!("{want}: reported complete"),
            }
        }
    }

    #[test]
    fn stuck_rollout_says_so() {
        let mut d = deployment("d");
        let status = d.status.as_mut().unwrap();
        status.updated_replicas = Some(0);
        status.conditions = Some(vec![k8s_openapi::api::apps::v1::DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..Default::default()
        }]);
        assert!(matches!(rollout(&d), Rollout::InProgress(w) if w.contains("progress deadline")));
    }

    #[tokio::test]
    async fn read_all_keeps_each_error_with_its_deployment() {
        let (client, mut server) = mock_client();
        let api: Api<Deployment> = Api::namespaced(client, "security");
        let names = vec!["a".to_string(), "gone".to_string()];
        let task = tokio::spawn(async move { read_all(&api, &names).await });
        for _ in 0..2 {
            let (request, send) = server.0.next_request().await.unwrap();
            assert_eq!(request.method(), "GET");
            let gone = request.uri().path().ends_with("/gone");
            let (code, body) = if gone {
                (
                    404,
                    status_error(404, "NotFound", "deployments.apps \"gone\" not found"),
                )
            } else {
                (200, serde_json::to_value(deployment("a")).unwrap())
            };
            send.send_response(
                http::Response::builder()
                    .status(code)
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
        let got = task.await.unwrap();
        assert_eq!(got[0].state.as_ref().unwrap().name, "a");
        assert!(
            got[1]
                .state
                .as_ref()
                .unwrap_err()
                .contains("reading Deployment security/gone: HTTP 404 NotFound")
        );
    }
}
