//! One run: observe (Vault and the stores at once), decide, act, report. The I/O is here; the
//! judgement is [`decide`].

use std::sync::{Mutex, PoisonError};

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::Deployment, events::v1::Event};
use kube::{Api, Client};

use crate::{
    config::Config,
    decision::{Action, Hold, Observation, StoreObservation, decide},
    deployment::{DeploymentState, format_restarted_at},
    events::{self, Kind},
    report::{DeploymentLine, Outcome, StoreLine, Summary},
    restarter, store,
    vault::VaultProbe,
    wait,
};

/// The run's summary, shared with the caller so that a `--timeout` still reports what was seen.
pub type Report = Mutex<Summary>;

/// Applies a change to the shared summary.
pub fn update(report: &Report, f: impl FnOnce(&mut Summary)) {
    f(&mut report.lock().unwrap_or_else(PoisonError::into_inner));
}

/// Runs once. Never returns an error: every outcome, failures included, ends in the summary.
pub async fn run(config: &Config, client: &Client, vault: &VaultProbe, report: &Report) {
    update(report, |s| {
        s.dry_run = config.dry_run;
        s.phase = "checking Vault and the stores";
    });
    // Concurrently; Vault's answer is recorded at once, so a hung store read still reports it.
    let probe = async {
        let status = vault.probe().await;
        update(report, |s| s.vault = status.to_string());
        status
    };
    let (vault_status, stores) = tokio::join!(probe, read_stores(client, &config.stores));
    for e in stores.iter().filter_map(|o| o.condition.as_ref().err()) {
        tracing::error!("{e}");
    }
    update(report, |s| {
        s.stores = stores
            .iter()
            .map(|o| StoreLine {
                name: o.name.clone(),
                state: match &o.condition {
                    Ok(c) => c.to_string(),
                    Err(e) => format!("error: {e}"),
                },
            })
            .collect();
        s.errors
            .extend(stores.iter().filter_map(|o| o.condition.clone().err()));
    });

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &config.namespace);
    let mut observation = Observation {
        vault: vault_status,
        stores,
        deployments: None,
    };
    let mut decision = decide(&observation, Timestamp::now(), &config.policy);
    if decision.action == Action::ReadDeployments {
        update(report, |s| s.phase = "reading the Deployments");
        observation.deployments =
            Some(restarter::read_all(&deployments, &config.deployments).await);
        decision = decide(&observation, Timestamp::now(), &config.policy);
    }
    for w in &decision.warnings {
        tracing::warn!("{w}");
    }
    for r in &decision.reasons {
        tracing::info!("{r}");
    }
    update(report, |s| s.reasons = decision.reasons.clone());

    match decision.action {
        Action::Hold(hold) => update(report, |s| s.finish(hold_outcome(&hold))),
        Action::ReadDeployments => update(report, |s| {
            s.errors
                .push("the Deployments were read but the decision still asked for them".into());
            s.finish(Outcome::Error);
        }),
        Action::Restart { targets, refused } => {
            let restarted = restart(
                config,
                client,
                &deployments,
                &observation,
                targets,
                refused,
                report,
            )
            .await;
            if config.wait && restarted {
                if config.dry_run {
                    tracing::info!("--wait has nothing to wait for in a dry run");
                } else {
                    update(report, |s| s.phase = "waiting");
                    wait::until_recovered(client, config, report).await;
                    update(report, |s| s.finish(Outcome::Recovered));
                }
            }
        }
    }
}

/// Sends the patches, records each result, and writes the Events. Returns whether every
/// Deployment was restarted.
async fn restart(
    config: &Config,
    client: &Client,
    api: &Api<Deployment>,
    observation: &Observation,
    targets: Vec<DeploymentState>,
    refused: Vec<(String, String)>,
    report: &Report,
) -> bool {
    update(report, |s| s.phase = "restarting the Deployments");
    let now = Timestamp::now();
    let at = format_restarted_at(now);
    let results = restarter::restart_all(api, &targets, &at, config.dry_run).await;

    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for r in &results {
        match &r.outcome {
            Ok(()) if config.dry_run => {
                tracing::info!(deployment = %r.name, "dry run: the restart patch was accepted");
                lines.push(line(
                    &r.name,
                    "would restart (dry-run patch accepted)".into(),
                ));
            }
            Ok(()) => {
                tracing::info!(deployment = %r.name, restarted_at = %at, "restarted");
                lines.push(line(&r.name, format!("restarted at {at}")));
            }
            Err(e) => {
                tracing::error!(deployment = %r.name, "{e}");
                lines.push(line(&r.name, format!("failed: {e}")));
                failures.push((r.name.clone(), e.clone()));
            }
        }
    }
    for (name, why) in &refused {
        tracing::error!(deployment = %name, "not restarted: {why}");
        lines.push(line(name, format!("failed: {why}")));
        failures.push((name.clone(), why.clone()));
    }
    let all_ok = failures.is_empty() && !results.is_empty();

    if !config.dry_run {
        let why = observation_note(observation);
        let instance =
            std::env::var("HOSTNAME").unwrap_or_else(|_| events::REPORTING_CONTROLLER.into());
        let uid_of = |name: &str| {
            observation
                .deployments
                .iter()
                .flatten()
                .find(|d| d.name == name)
                .and_then(|d| d.state.as_ref().ok())
                .map(|s| s.uid.clone())
        };
        let mut list = Vec::new();
        for r in results.iter().filter(|r| r.outcome.is_ok()) {
            let note = format!("Restarted by eso-recovery (restartedAt {at}): {why}");
            let uid = uid_of(&r.name).flatten();
            list.push(events::event(
                &config.namespace,
                &r.name,
                uid.as_deref(),
                Kind::Restarted,
                &note,
                now,
                &instance,
            ));
        }
        for (name, e) in &failures {
            // An Event needs an object to point at: skip Deployments that could not be read.
            if let Some(uid) = uid_of(name) {
                let note = format!(
                    "eso-recovery could not restart this Deployment: {e}. Why a restart was due: {why}"
                );
                list.push(events::event(
                    &config.namespace,
                    name,
                    uid.as_deref(),
                    Kind::RestartFailed,
                    &note,
                    now,
                    &instance,
                ));
            }
        }
        let api: Api<Event> = Api::namespaced(client.clone(), &config.namespace);
        events::publish(&api, list).await;
    }

    update(report, |s| {
        s.deployments = lines;
        s.errors.extend(failures.iter().map(|(_, e)| e.clone()));
        s.finish(if !all_ok {
            Outcome::RestartFailed
        } else if config.dry_run {
            Outcome::WouldRestart
        } else {
            Outcome::Restarted
        });
    });
    all_ok
}

/// Reads every store at once.
async fn read_stores(client: &Client, names: &[String]) -> Vec<StoreObservation> {
    join_all(names.iter().map(|name| async {
        StoreObservation {
            name: name.clone(),
            condition: store::read(client, name).await.map_err(|e| e.to_string()),
        }
    }))
    .await
}

fn hold_outcome(hold: &Hold) -> Outcome {
    match hold {
        Hold::VaultNotReady => Outcome::VaultNotReady,
        Hold::StoresHealthy => Outcome::StoreHealthy,
        Hold::StoreStateUnknown => Outcome::StoreUnknown,
        Hold::StoreReadFailed => Outcome::StoreReadFailed,
        Hold::Cooldown { .. } => Outcome::Cooldown,
        Hold::RolloutInProgress => Outcome::RolloutInProgress,
    }
}

fn line(name: &str, result: String) -> DeploymentLine {
    DeploymentLine {
        name: name.to_string(),
        result,
    }
}

/// Why the restart was due, in one sentence for the Events: Vault's state and each degraded store.
fn observation_note(obs: &Observation) -> String {
    let stores: Vec<String> = obs
        .stores
        .iter()
        .filter_map(|s| match &s.condition {
            Ok(c @ store::StoreCondition::Degraded(_)) => {
                Some(format!("ClusterSecretStore {} is {c}", s.name))
            }
            _ => None,
        })
        .collect();
    let stores = if stores.is_empty() {
        "no store is degraded (--force)".to_string()
    } else {
        stores.join("; ")
    };
    format!("Vault is {}; {stores}", obs.vault)
}
