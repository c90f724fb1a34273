//! One run: observe (Vault, its clock, the stores and the outage record at once), await Vault if
//! asked, note what was seen in the record, decide, read more if the decision asks (the
//! Deployments, then the ExternalSecrets), act, report. The I/O and its order are here; the
//! judgement is [`decide`].

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::Deployment, events::v1::Event};
use kube::{Api, Client};

use tokio::time::Instant;

use crate::{
    config::{Config, Strategy},
    decision::{
        self, Action, Hold, Observation, RestartPlan, SHOWN, StoreObservation, decide, first_few,
    },
    deployment::{self, format_restarted_at},
    events::{self, Kind},
    externalsecret,
    record::{self, Claimed, Memory, RecordLease, Sighting},
    recovered,
    report::{
        DeploymentLine, DeploymentResult, ExternalSecretsLine, Outcome, Phase, Report, ResyncLine,
        StoreLine, StoreState, update,
    },
    restarter,
    resync::{Fallback, RESYNCED_AT, Resync, Resynced},
    store,
    vault::{self, ActiveSince, VaultProbe, VaultStatus},
};

/// Runs once, to end by `deadline` (a resync keeps time back for its fallback). Never returns an
/// error: every outcome, failures included, ends in the summary.
pub async fn run(
    config: &Config,
    client: &Client,
    vault: &VaultProbe,
    report: &Report,
    deadline: Instant,
) {
    update(report, |s| {
        s.dry_run = config.dry_run;
        s.phase = Phase::Checking;
    });
    let leases = RecordLease::new(client.clone(), &config.namespace, &config.record);
    // Vault and the API server at once; Vault's answers are recorded as they come, so a hung
    // store read still reports them. The API server's reads one after the other: on HTTP/1.1
    // each request in flight at once opens its own TLS connection, and the handshake costs more
    // than waiting for the last answer, so the every-minute run uses one.
    let api_reads = async {
        let stored = record::read(&leases, Timestamp::now()).await;
        (read_stores(client, &config.policy.stores).await, stored)
    };
    let (probed, active_since, (stores, stored)) =
        tokio::join!(probe(vault, report), clock(vault, report), api_reads);
    let (mut vault_status, seen_at) = probed;
    let (mut active_since, mut stores) = (active_since, stores);
    let mut memory = Memory::new(stored);

    let ready = |status: &VaultStatus| status.is_ready(config.policy.standby_ok);
    if ready(&vault_status) || config.policy.force {
        if ready(&vault_status) {
            memory
                .note(&leases, Sighting::Ready(seen_at), config.dry_run)
                .await;
        }
    } else {
        memory
            .note(&leases, Sighting::NotReady(seen_at), config.dry_run)
            .await;
        if !config.await_vault.is_zero() {
            update(report, |s| s.phase = Phase::AwaitingVault);
            let awaited = vault::until_ready(
                vault,
                config.await_vault,
                config.policy.standby_ok,
                vault_status.clone(),
            )
            .await;
            let waited = humantime::format_duration(Duration::from_millis(
                awaited.waited.as_millis().try_into().unwrap_or(u64::MAX),
            ));
            vault_status = awaited.status;
            update(report, |s| {
                s.vault = vault_status.to_string();
                s.awaited = Some(if ready(&vault_status) {
                    format!("{waited} until Vault was ready")
                } else {
                    format!("{waited}, Vault still not ready")
                });
            });
            if ready(&vault_status) {
                // Go on as a run started at this moment would: Vault's clock and the stores now.
                update(report, |s| s.phase = Phase::Checking);
                (active_since, stores, ()) = tokio::join!(
                    clock(vault, report),
                    read_stores(client, &config.policy.stores),
                    memory.note(&leases, Sighting::Ready(awaited.at), config.dry_run),
                );
            }
        }
    }
    update(report, |s| s.outage_record = memory.describe());
    for e in stores.iter().filter_map(|o| o.condition.as_ref().err()) {
        tracing::error!("{e}");
    }
    update(report, |s| {
        s.stores = stores
            .iter()
            .map(|o| StoreLine {
                name: o.name.clone(),
                state: match &o.condition {
                    Ok(c) => StoreState::Observed(c.clone()),
                    Err(e) => StoreState::Unreadable(e.clone()),
                },
            })
            .collect();
        s.errors
            .extend(stores.iter().filter_map(|o| o.condition.clone().err()));
    });

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &config.namespace);
    let mut observation = Observation {
        vault: vault_status,
        active_since,
        seen_outage: memory.seen_outage(),
        last_resync: memory.resynced_at(),
        stores,
        deployments: None,
        external_secrets: None,
    };
    let decision = loop {
        let decision = decide(&observation, Timestamp::now(), &config.policy);
        match decision.action {
            Action::ReadDeployments if observation.deployments.is_none() => {
                update(report, |s| s.phase = Phase::ReadingDeployments);
                observation.deployments =
                    Some(deployment::read_all(&deployments, &config.deployments).await);
            }
            Action::ReadExternalSecrets if observation.external_secrets.is_none() => {
                update(report, |s| s.phase = Phase::ListingExternalSecrets);
                let listed = externalsecret::list(client, &config.externalsecret_namespaces)
                    .await
                    .map_err(|e| e.to_string());
                update(report, |s| match &listed {
                    Ok(found) => {
                        s.external_secrets = Some(ExternalSecretsLine {
                            listed: found.listed,
                            failing: found.failing.len(),
                            ..Default::default()
                        })
                    }
                    Err(e) => s.errors.push(e.clone()),
                });
                observation.external_secrets = Some(listed);
            }
            _ => break decision,
        }
    };
    for w in &decision.warnings {
        tracing::warn!("{w}");
    }
    for r in &decision.reasons {
        tracing::info!("{r}");
    }
    update(report, |s| s.reasons = decision.reasons.clone());

    match decision.action {
        Action::Hold(hold) => update(report, |s| s.finish(hold_outcome(&hold))),
        Action::ReadDeployments | Action::ReadExternalSecrets => update(report, |s| {
            s.errors
                .push("the decision asked again for what was already read".into());
            s.finish(Outcome::Error);
        }),
        Action::Restart(plan) => {
            update(report, |s| {
                if let Some(line) = s.external_secrets.as_mut() {
                    line.stuck.clone_from(&plan.stuck);
                }
            });
            if !claim(config, &mut memory, &leases, &plan, report).await {
                return;
            }
            let mut plan = plan;
            if config.strategy == Strategy::Resync && !config.policy.force {
                let resynced = resync(
                    config,
                    client,
                    &observation,
                    &mut plan,
                    &mut memory,
                    &leases,
                    deadline,
                    report,
                )
                .await;
                match resynced {
                    Ok(()) => {
                        if config.wait && !config.dry_run {
                            update(report, |s| s.phase = Phase::Waiting);
                            recovered::until_recovered(client, config, &plan.stuck, report).await;
                            update(report, |s| s.finish(Outcome::Recovered));
                        }
                        return;
                    }
                    Err(fallback) => {
                        fall_back(config, client, &observation, &fallback, report).await;
                    }
                }
            }
            let restarted =
                restart(config, client, &deployments, &observation, &plan, report).await;
            if config.wait && restarted {
                if config.dry_run {
                    tracing::info!("--wait has nothing to wait for in a dry run");
                } else {
                    update(report, |s| s.phase = Phase::Waiting);
                    recovered::until_recovered(client, config, &plan.stuck, report).await;
                    update(report, |s| s.finish(Outcome::Recovered));
                }
            }
        }
    }
}

/// Claims the outage before acting (never in a dry run; `--force` does not ask). Returns whether
/// this run acts: false when another run's fresh claim holds it (outcome `already_claimed`).
async fn claim(
    config: &Config,
    memory: &mut Memory,
    leases: &RecordLease,
    plan: &RestartPlan,
    report: &Report,
) -> bool {
    if config.dry_run {
        return true;
    }
    if config.policy.force {
        tracing::warn!(
            "--force: acting without claiming {}; a run acting at this moment is not held off",
            plan.outage
        );
        return true;
    }
    let by = format!("{} (pid {})", instance(), std::process::id());
    match memory.claim(leases, &plan.outage, &by).await {
        Claimed::Won => {
            tracing::info!("claimed {} for this run", plan.outage);
            true
        }
        Claimed::Lost(claim) => {
            let text = format!(
                "{} claimed {} at {}: it acts, this run does not",
                claim.by, claim.outage, claim.at
            );
            tracing::info!("{text}");
            update(report, |s| {
                s.reasons.push(text);
                s.finish(Outcome::AlreadyClaimed);
            });
            false
        }
        Claimed::Unavailable(why) => {
            tracing::warn!(
                "acting without a claim ({why}): a run acting at this very moment is not held off"
            );
            true
        }
    }
}

/// `--strategy resync`: wakes the degraded stores, then the stuck ExternalSecrets, waits for them,
/// records the resync and writes one Event. `Err`: restart instead (the plan's `stuck` then holds
/// the ExternalSecrets found behind the stores, for `--wait`).
#[allow(clippy::too_many_arguments)]
async fn resync(
    config: &Config,
    client: &Client,
    observation: &Observation,
    plan: &mut RestartPlan,
    memory: &mut Memory,
    leases: &RecordLease,
    deadline: Instant,
    report: &Report,
) -> Result<(), Fallback> {
    update(report, |s| s.phase = Phase::Resyncing);
    let now = Timestamp::now();
    let resync = Resync {
        client,
        dry_run: config.dry_run,
        at: now.to_string(),
        deadline,
    };
    let known = plan.stuck.clone();
    let behind_stores = !plan.degraded_stores.is_empty();
    let stuck = |ready_at: Timestamp| async move {
        if !behind_stores {
            return Ok(known);
        }
        update(report, |s| s.phase = Phase::ListingBehindStores);
        let found = externalsecret::list(client, &config.externalsecret_namespaces)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let stuck = decision::stuck_behind_stores(&found, &config.policy, ready_at);
        update(report, |s| {
            s.external_secrets = Some(ExternalSecretsLine {
                listed: found.listed,
                failing: found.failing.len(),
                stuck: stuck.clone(),
                ..Default::default()
            });
        });
        Ok(stuck)
    };
    let mut done = resync.run(&plan.degraded_stores, stuck).await?;
    plan.stuck.clone_from(&done.external_secrets);
    let line = |done: &Resynced| ResyncLine {
        stores: done.stores.clone(),
        external_secrets: done.external_secrets.len(),
        first: done.external_secrets.iter().take(SHOWN).cloned().collect(),
        still_failing: done.still_failing.len(),
        fallback: None,
    };
    update(report, |s| s.resync = Some(line(&done)));
    if !config.dry_run {
        memory.note_resync(leases, now, false).await;
        update(report, |s| s.phase = Phase::AwaitingResynced);
        let back = resync
            .until_back(&mut done, || async {
                externalsecret::list(client, &config.externalsecret_namespaces)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        update(report, |s| s.resync = Some(line(&done)));
        back?;
    }
    let what = format!(
        "{} store(s){} and {} ExternalSecret(s){}",
        done.stores.len(),
        if done.stores.is_empty() {
            String::new()
        } else {
            format!(" ({})", done.stores.join(", "))
        },
        done.external_secrets.len(),
        if done.external_secrets.is_empty() {
            String::new()
        } else {
            format!(" ({})", first_few(&done.external_secrets))
        },
    );
    if config.dry_run {
        tracing::info!("dry run: the resync patches were accepted for {what}");
        update(report, |s| s.finish(Outcome::WouldResync));
        return Ok(());
    }
    let mut note = format!(
        "Resynced by eso-recovery ({} at {now}) instead of a restart: {what}. Why: {}",
        RESYNCED_AT, plan.because
    );
    if !done.still_failing.is_empty() {
        let how = if done.cut_short {
            "not back yet when the run ended"
        } else {
            "reconciled by ESO and failing again: their own reasons"
        };
        let text = format!(
            "{} resynced ExternalSecret(s) {how}: {}",
            done.still_failing.len(),
            first_few(&done.still_failing)
        );
        tracing::warn!("{text}");
        note.push_str(&format!(". {text}"));
    }
    tracing::info!("{note}");
    publish_on_controller(config, client, observation, Kind::Resynced, &note, now).await;
    update(report, |s| s.finish(Outcome::Resynced));
    Ok(())
}

/// A resync that gave way: the warning, the summary's reason and a Warning Event, before the
/// restart. A missing guard or a refused patch is the configuration's fault: an error (exit 1).
async fn fall_back(
    config: &Config,
    client: &Client,
    observation: &Observation,
    fallback: &Fallback,
    report: &Report,
) {
    let text = format!(
        "resync gave way to a restart ({}): {fallback}",
        fallback.name()
    );
    tracing::warn!("{text}");
    update(report, |s| {
        s.resync.get_or_insert_with(ResyncLine::default).fallback = Some(fallback.name().into());
        s.reasons.push(text.clone());
        if fallback.needs_a_person() {
            s.errors.push(text.clone());
        }
    });
    if !config.dry_run {
        publish_on_controller(
            config,
            client,
            observation,
            Kind::ResyncFellBack,
            &text,
            Timestamp::now(),
        )
        .await;
    }
}

/// One Event on ESO's controller (the first Deployment): a resync concerns ESO as a whole, and
/// one Event carries the counts and the first names, never one per ExternalSecret.
async fn publish_on_controller(
    config: &Config,
    client: &Client,
    observation: &Observation,
    kind: Kind,
    note: &str,
    now: Timestamp,
) {
    let Some(controller) = config.deployments.first() else {
        return;
    };
    let event = events::event(
        &config.namespace,
        controller,
        uid_of(observation, controller).flatten().as_deref(),
        kind,
        note,
        now,
        &instance(),
    );
    let api: Api<Event> = Api::namespaced(client.clone(), &config.namespace);
    events::publish(&api, vec![event]).await;
}

/// The Deployment's uid as read, if it was (`Some(None)`: read, without one).
fn uid_of(observation: &Observation, name: &str) -> Option<Option<String>> {
    observation
        .deployments
        .iter()
        .flatten()
        .find(|d| d.name == name)
        .and_then(|d| d.state.as_ref().ok())
        .map(|s| s.uid.clone())
}

/// This run's name on its Events and its claim: the pod's.
fn instance() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| events::REPORTING_CONTROLLER.into())
}

/// Sends the patches, records each result, and writes the Events. Returns whether every
/// Deployment was restarted.
async fn restart(
    config: &Config,
    client: &Client,
    api: &Api<Deployment>,
    observation: &Observation,
    plan: &RestartPlan,
    report: &Report,
) -> bool {
    update(report, |s| s.phase = Phase::Restarting);
    let now = Timestamp::now();
    let at = format_restarted_at(now);
    let results = restarter::restart_all(api, &plan.targets, &at, config.dry_run).await;

    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for r in &results {
        match &r.outcome {
            Ok(()) if config.dry_run => {
                tracing::info!(deployment = %r.name, "dry run: the restart patch was accepted");
                lines.push(line(&r.name, DeploymentResult::WouldRestart));
            }
            Ok(()) => {
                tracing::info!(deployment = %r.name, restarted_at = %at, "restarted");
                lines.push(line(&r.name, DeploymentResult::Restarted(at.clone())));
            }
            Err(e) => {
                tracing::error!(deployment = %r.name, "{e}");
                lines.push(line(&r.name, DeploymentResult::Failed(e.clone())));
                failures.push((r.name.clone(), e.clone()));
            }
        }
    }
    for (name, why) in &plan.refused {
        tracing::error!(deployment = %name, "not restarted: {why}");
        lines.push(line(name, DeploymentResult::Failed(why.clone())));
        failures.push((name.clone(), why.clone()));
    }
    let all_ok = failures.is_empty() && !results.is_empty();

    if !config.dry_run {
        let why = &plan.because;
        let instance = instance();
        let uid_of = |name: &str| uid_of(observation, name);
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
        } else if s.resync.as_ref().is_some_and(|r| r.fallback.is_some()) {
            Outcome::FellBackToRestart
        } else {
            Outcome::Restarted
        });
    });
    all_ok
}

/// Asks Vault's health, recording the answer and when it came.
async fn probe(vault: &VaultProbe, report: &Report) -> (VaultStatus, Timestamp) {
    let status = vault.probe().await;
    update(report, |s| s.vault = status.to_string());
    (status, Timestamp::now())
}

/// Asks Vault when it became active, recording the answer.
async fn clock(vault: &VaultProbe, report: &Report) -> ActiveSince {
    let active = vault.active_since().await;
    update(report, |s| s.vault_active = active.to_string());
    active
}

/// Reads every store at once.
/// The stores, one after the other on the run's one API connection.
async fn read_stores(client: &Client, names: &[String]) -> Vec<StoreObservation> {
    let mut read = Vec::with_capacity(names.len());
    for name in names {
        read.push(StoreObservation {
            name: name.clone(),
            condition: store::read(client, name).await.map_err(|e| e.to_string()),
        });
    }
    read
}

fn hold_outcome(hold: &Hold) -> Outcome {
    match hold {
        Hold::VaultNotReady => Outcome::VaultNotReady,
        Hold::StoresHealthy => Outcome::StoreHealthy,
        Hold::StoreStateUnknown => Outcome::StoreUnknown,
        Hold::StoreReadFailed => Outcome::StoreReadFailed,
        Hold::Cooldown { .. } => Outcome::Cooldown,
        Hold::RolloutInProgress => Outcome::RolloutInProgress,
        Hold::AlreadyRestarted { .. } => Outcome::AlreadyRestarted,
        Hold::AlreadyResynced { .. } => Outcome::AlreadyResynced,
        Hold::ExternalSecretsReadFailed => Outcome::ExternalSecretsReadFailed,
    }
}

fn line(name: &str, result: DeploymentResult) -> DeploymentLine {
    DeploymentLine {
        name: name.to_string(),
        result,
    }
}
