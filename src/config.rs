//! The validated settings of one run.

use std::time::Duration;

use url::Url;

use crate::{decision::Policy, vault::VaultTls};

/// What a run does once the decision says ESO is stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Strategy {
    /// Restart ESO's Deployments as `kubectl rollout restart` does: every backoff cleared at
    /// once, every pod replaced (in HA the new leader first waits out the old one's lease).
    #[default]
    Restart,
    /// Annotate just the stuck objects (the degraded stores, then the stuck ExternalSecrets), ESO's
    /// own lever: nothing is replaced. Falls back to a restart when that does not bring them back.
    Resync,
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::Restart => "restart",
            Strategy::Resync => "resync",
        })
    }
}

/// Everything a run needs to know, already checked (see [`crate::cli::Cli::into_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Vault's base address.
    pub vault_addr: Url,
    /// How Vault's certificate is verified.
    pub vault_tls: VaultTls,
    /// The health request's limit.
    pub vault_timeout: Duration,
    /// The namespace of ESO's Deployments.
    pub namespace: String,
    /// The Lease in `namespace` that holds the record.
    pub record: String,
    /// The namespaces whose ExternalSecrets are listed; empty means all.
    pub externalsecret_namespaces: Vec<String>,
    /// ESO's Deployments.
    pub deployments: Vec<String>,
    /// A kubeconfig context, for manual runs.
    pub context: Option<String>,
    /// Use the kubeconfig even inside a pod (the kubectl plugin: a person's own access).
    pub kubeconfig_only: bool,
    /// What the decision depends on (the stores watched among it).
    pub policy: Policy,
    /// How ESO is woken.
    pub strategy: Strategy,
    /// Send patches with `dryRun=All` and write no Events.
    pub dry_run: bool,
    /// Wait for the rollouts and the stores after restarting.
    pub wait: bool,
    /// How long a run that finds Vault not ready keeps asking (`--await-vault`; zero: not at all).
    pub await_vault: Duration,
    /// The whole run's limit, on top of the await.
    pub timeout: Duration,
}
