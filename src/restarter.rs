//! The Deployments' I/O: reading their state and restarting them as `kubectl rollout restart` does.

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use crate::{
    decision::DeploymentObservation,
    deployment::{DeploymentState, RESTARTED_AT},
    errors::describe_api_error,
};

/// The field manager on every write, so `managedFields` say who restarted ESO.
pub const FIELD_MANAGER: &str = "eso-recovery";

/// The strategic merge patch `kubectl rollout restart` sends, byte for byte.
pub fn restart_patch(restarted_at: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}})
}

/// Reads every Deployment at once; a failed read is kept as that Deployment's error.
pub async fn read_all(api: &Api<Deployment>, names: &[String]) -> Vec<DeploymentObservation> {
    let namespace = api.namespace().unwrap_or_default();
    join_all(names.iter().map(|name| async move {
        let state = api
            .get(name)
            .await
            .map(|d| DeploymentState::from_deployment(&d))
            .map_err(|e| {
                describe_api_error(e, &format!("reading Deployment {namespace}/{name}")).to_string()
            });
        DeploymentObservation {
            name: name.clone(),
            state,
        }
    }))
    .await
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
    let mut params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    if dry_run {
        params = params.dry_run();
    }
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

    #[test]
    fn the_patch_is_kubectls() {
        assert_eq!(
            restart_patch("2026-12-01T12:00:00Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-12-01T12:00:00Z"}}}}}"#
        );
    }
}
