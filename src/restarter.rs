//! The restart: ESO's Deployments patched as `kubectl rollout restart` does. Their reads live in
//! [`crate::deployment`].

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, api::Patch};
use serde_json::{Value, json};

use crate::{
    deployment::{DeploymentState, RESTARTED_AT},
    errors::describe_api_error,
    kube_client::write_params,
};

/// The strategic merge patch `kubectl rollout restart` sends, byte for byte.
pub fn restart_patch(restarted_at: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}})
}

/// The result of one restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartResult {
    /// The Deployment's name.
    pub name: String,
    /// Done, or why not.
    pub outcome: Result<(), String>,
}

/// Restarts every target at once; one failing does not stop the others. With `dry_run` the
/// patches go out with `dryRun=All`: admission and RBAC are exercised, nothing is stored.
pub async fn restart_all(
    api: &Api<Deployment>,
    targets: &[DeploymentState],
    restarted_at: &str,
    dry_run: bool,
) -> Vec<RestartResult> {
    let namespace = api.namespace().unwrap_or_default().to_string();
    let params = write_params(dry_run);
    let patch = Patch::Strategic(restart_patch(restarted_at));
    join_all(targets.iter().map(|t| async {
        let outcome = api
            .patch(&t.name, &params, &patch)
            .await
            .map(|_| ())
            .map_err(|e| {
                describe_api_error(e, &format!("restarting Deployment {namespace}/{}", t.name))
                    .to_string()
            });
        RestartResult {
            name: t.name.clone(),
            outcome,
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{deployment, mock_client, state, status_error};

    #[tokio::test]
    async fn restart_sends_kubectls_patch_with_the_field_manager() {
        for dry_run in [false, true] {
            let (client, mut server) = mock_client();
            let api: Api<Deployment> = Api::namespaced(client, "security");
            let task = tokio::spawn(async move {
                restart_all(
                    &api,
                    &[state("external-secrets")],
                    "2026-12-01T12:00:00Z",
                    dry_run,
                )
                .await
            });
            let got = server
                .answer(
                    200,
                    serde_json::to_value(deployment("external-secrets")).unwrap(),
                )
                .await;
            assert_eq!(got.method, "PATCH");
            assert_eq!(
                got.path,
                "/apis/apps/v1/namespaces/security/deployments/external-secrets"
            );
            let want_query: &[&str] = if dry_run {
                &["dryRun=All", "fieldManager=eso-recovery"]
            } else {
                &["fieldManager=eso-recovery"]
            };
            assert_eq!(got.query_pairs(), want_query, "dry_run={dry_run}");
            assert_eq!(got.content_type, "application/strategic-merge-patch+json");
            assert_eq!(got.body, restart_patch("2026-12-01T12:00:00Z"));
            let results = task.await.unwrap();
            assert_eq!(
                results,
                [RestartResult {
                    name: "external-secrets".into(),
                    outcome: Ok(())
                }]
            );
        }
    }

    #[tokio::test]
    async fn one_failing_patch_does_not_stop_the_others() {
        let (client, mut server) = mock_client();
        let api: Api<Deployment> = Api::namespaced(client, "security");
        let targets = vec![state("a"), state("b"), state("c")];
        let task = tokio::spawn(async move {
            restart_all(&api, &targets, "2026-12-01T12:00:00Z", false).await
        });
        for _ in 0..3 {
            // The patches are concurrent: answer each by the name it asks for.
            let (request, send) = server.0.next_request().await.unwrap();
            let path = request.uri().path().to_string();
            let response = if path.ends_with("/b") {
                http::Response::builder()
                    .status(500)
                    .body(kube::client::Body::from(
                        serde_json::to_vec(&status_error(500, "InternalError", "etcd timeout"))
                            .unwrap(),
                    ))
            } else {
                http::Response::builder()
                    .status(200)
                    .body(kube::client::Body::from(
                        serde_json::to_vec(&deployment("x")).unwrap(),
                    ))
            };
            send.send_response(response.unwrap());
        }
        let results = task.await.unwrap();
        assert!(results[0].outcome.is_ok());
        let err = results[1].outcome.as_ref().unwrap_err();
        assert!(
            err.starts_with(
                "restarting Deployment security/b: HTTP 500 InternalError: etcd timeout"
            ),
            "{err}"
        );
        assert!(results[2].outcome.is_ok());
    }

    #[test]
    fn the_patch_is_kubectls() {
        assert_eq!(
            restart_patch("2026-12-01T12:00:00Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-12-01T12:00:00Z"}}}}}"#
        );
    }
}
