//! `--wait`: after a restart, poll until every rollout completes and every store is Ready.
//! It returns only on success; the run's `--timeout` ends it otherwise, and the summary then
//! shows what was still pending.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

use crate::{
    config::Config,
    deployment::{Rollout, rollout},
    errors::describe_api_error,
    report::{DeploymentLine, StoreLine},
    run::{Report, update},
    store::{self, StoreCondition},
};

/// How often the Deployments and stores are read again.
const POLL: Duration = Duration::from_secs(1);

/// Polls until recovered, recording what is still pending in the summary after each round.
pub async fn until_recovered(client: &Client, config: &Config, report: &Report) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &config.namespace);
    loop {
        let (deployments, stores) = tokio::join!(
            join_all(config.deployments.iter().map(|name| deployment_line(
                &api,
                &config.namespace,
                name
            ))),
            join_all(config.stores.iter().map(|name| store_line(client, name))),
        );
        let done = deployments.iter().all(|(ok, _)| *ok) && stores.iter().all(|(ok, _)| *ok);
        update(report, |s| {
            s.deployments = deployments.into_iter().map(|(_, l)| l).collect();
            s.stores = stores.into_iter().map(|(_, l)| l).collect();
        });
        if done {
            tracing::info!("recovered: every rollout completed and every store is Ready");
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn deployment_line(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
) -> (bool, DeploymentLine) {
    let (ok, result) = match api.get(name).await {
        Ok(d) => match rollout(&d) {
            Rollout::Complete => (true, "rolled out".to_string()),
            Rollout::InProgress(why) => (false, format!("pending: {why}")),
        },
        Err(e) => (
            false,
            format!(
                "pending: {}",
                describe_api_error(e, &format!("reading Deployment {namespace}/{name}"))
            ),
        ),
    };
    (
        ok,
        DeploymentLine {
            name: name.to_string(),
            result,
        },
    )
}

async fn store_line(client: &Client, name: &str) -> (bool, StoreLine) {
    let (ok, state) = match store::read(client, name).await {
        Ok(c @ StoreCondition::Ready(_)) => (true, c.to_string()),
        Ok(c) => (false, format!("pending: {c}")),
        Err(e) => (false, format!("pending: {e}")),
    };
    (
        ok,
        StoreLine {
            name: name.to_string(),
            state,
        },
    )
}
