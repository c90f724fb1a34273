//! The process: parse the command line, set up logging, run once within `--timeout`, print the
//! summary, and turn it into the exit code.

use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::{
    cli::{Cli, LogFormat},
    config::Config,
    kube_client, logging,
    report::{DeploymentResult, Outcome, Phase, Report, Summary, update},
    run::run,
    vault::VaultProbe,
};

/// Exit code for invalid usage or configuration.
const USAGE: u8 = 2;

/// The whole program, for `main`.
pub fn main() -> ExitCode {
    let (cli, plugin) = match Cli::parse_invocation(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            let format = logging::default_format();
            match format {
                LogFormat::Text => {
                    let _ = e.print();
                }
                LogFormat::Json => logging::print_error(format, e.render().to_string().trim()),
            }
            return ExitCode::from(USAGE);
        }
    };
    // As a kubectl plugin a person reads the logs: text, unless asked otherwise.
    let format = cli.log_format.unwrap_or_else(|| {
        if plugin && std::env::var_os("ESO_RECOVERY_LOG_FORMAT").is_none() {
            LogFormat::Text
        } else {
            logging::default_format()
        }
    });
    let filter = match logging::filter(&cli.log_level) {
        Ok(f) => f,
        Err(e) => {
            logging::print_error(format, &format!("error: {e:#}"));
            return ExitCode::from(USAGE);
        }
    };
    logging::init(format, filter);

    let config = match cli.into_config() {
        Ok(c) => Config {
            kubeconfig_only: plugin,
            ..c
        },
        Err(e) => {
            tracing::error!("error: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&config)) {
        Ok(summary) => {
            match format {
                LogFormat::Json => println!("{}", summary.to_json(jiff::Timestamp::now())),
                LogFormat::Text => println!("{}", summary.to_text()),
            }
            ExitCode::from(summary.exit_code)
        }
        Err(e) => {
            tracing::error!("error: {e:#}");
            ExitCode::from(USAGE)
        }
    }
}

/// Sets up the clients and runs once, bounded by `--timeout`. An `Err` is a configuration
/// problem (exit 2); everything else ends in the summary.
pub async fn execute(config: &Config) -> anyhow::Result<Summary> {
    let vault = VaultProbe::new(
        &config.vault_addr,
        &config.vault_tls,
        config.vault_timeout,
        config.policy.standby_ok,
    )?;
    let client = kube_client::connect(
        config.context.as_deref(),
        config.kubeconfig_only,
        config.timeout,
    )
    .await?;
    let report = Report::default();
    let limit = config.timeout.saturating_add(config.await_vault);
    let deadline = tokio::time::Instant::now() + limit;
    if tokio::time::timeout(limit, run(config, &client, &vault, &report, deadline))
        .await
        .is_err()
    {
        update(&report, |s| {
            let limit = if config.await_vault.is_zero() {
                humantime::format_duration(config.timeout).to_string()
            } else {
                format!(
                    "{} (after --await-vault {})",
                    humantime::format_duration(config.timeout),
                    humantime::format_duration(config.await_vault)
                )
            };
            if s.phase == Phase::Waiting {
                let pending: Vec<String> = s
                    .deployments
                    .iter()
                    .filter(|d| matches!(d.result, DeploymentResult::Pending(_)))
                    .map(|d| format!("Deployment {}: {}", d.name, d.result))
                    .chain(
                        s.stores
                            .iter()
                            .filter(|st| !st.state.is_ready())
                            .map(|st| format!("store {}: {}", st.name, st.state)),
                    )
                    .chain(
                        s.external_secrets
                            .iter()
                            .flat_map(|es| &es.still_failing)
                            .map(|k| format!("ExternalSecret {k}: still failing")),
                    )
                    .collect();
                s.errors.push(format!(
                    "--wait: not recovered within --timeout {limit}; still pending: {}",
                    if pending.is_empty() {
                        "the first check".to_string()
                    } else {
                        pending.join("; ")
                    }
                ));
                s.finish(Outcome::WaitTimedOut);
            } else {
                s.errors.push(format!(
                    "the run did not finish within --timeout {limit} (it was {})",
                    s.phase
                ));
                s.finish(Outcome::TimedOut);
            }
        });
    }
    Ok(report
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}
