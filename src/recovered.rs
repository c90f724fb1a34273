//! `--wait`: after a restart, poll until every rollout completes, every store is Ready and every
//! ExternalSecret the restart was for has synced. It returns only on success; the run's
//! `--timeout` ends it otherwise, and the summary then shows what was still pending.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

use crate::{
    config::Config,
    deployment::{self, Rollout},
    externalsecret,
    report::{DeploymentLine, DeploymentResult, Report, StoreLine, StoreState, update},
    store,
};

/// How often the Deployments, stores and ExternalSecrets are read again.
const POLL: Duration = Duration::from_secs(1);

/// Polls until recovered, recording what is still pending in the summary after each round.
/// `stuck` are the ExternalSecrets (`namespace/name`) the restart was for.
pub async fn until_recovered(client: &Client, config: &Config, stuck: &[String], report: &Report) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &config.namespace);
    loop {
        let (deployments, stores, still_failing) = tokio::join!(
            join_all(config.deployments.iter().map(|name| deployment_line(
                &api,
                &config.namespace,
                name
            ))),
            join_all(
                config
                    .policy
                    .stores
                    .iter()
                    .map(|name| store_line(client, name))
            ),
            still_failing(client, config, stuck),
        );
        let done = deployments
            .iter()
            .all(|d| d.result == DeploymentResult::RolledOut)
            && stores.iter().all(|s| s.state.is_ready())
            && still_failing.is_empty();
        update(report, |s| {
            s.deployments = deployments;
            s.stores = stores;
            if let Some(es) = s.external_secrets.as_mut() {
                es.still_failing = still_failing;
            }
        });
        if done {
            tracing::info!(
                "recovered: every rollout completed, every store is Ready and no ExternalSecret the restart was for still fails"
            );
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Which of `stuck` still fail (all of them, with the error, when the list fails).
async fn still_failing(client: &Client, config: &Config, stuck: &[String]) -> Vec<String> {
    if stuck.is_empty() {
        return Vec::new();
    }
    match externalsecret::list(client, &config.externalsecret_namespaces).await {
        Ok(found) => found
            .failing
            .iter()
            .map(externalsecret::FailingExternalSecret::key)
            .filter(|k| stuck.contains(k))
            .collect(),
        Err(e) => stuck.iter().map(|k| format!("{k} ({e})")).collect(),
    }
}

async fn deployment_line(api: &Api<Deployment>, namespace: &str, name: &str) -> DeploymentLine {
    DeploymentLine {
        name: name.to_string(),
        result: match deployment::read(api, namespace, name).await {
            Ok(state) => match state.rollout {
                Rollout::Complete => DeploymentResult::RolledOut,
                Rollout::InProgress(why) => DeploymentResult::Pending(why),
            },
            Err(e) => DeploymentResult::Pending(e),
        },
    }
}

async fn store_line(client: &Client, name: &str) -> StoreLine {
    StoreLine {
        name: name.to_string(),
        state: match store::read(client, name).await {
            Ok(c) => StoreState::Observed(c),
            Err(e) => StoreState::Unreadable(e.to_string()),
        },
    }
}
