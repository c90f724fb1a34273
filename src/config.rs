//! The validated settings of one run.

use std::time::Duration;

use url::Url;

use crate::{decision::Policy, vault::VaultTls};

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
    /// Send patches with `dryRun=All` and write no Events.
    pub dry_run: bool,
    /// Wait for the rollouts and the stores after restarting.
    pub wait: bool,
    /// How long a run that finds Vault not ready keeps asking (`--await-vault`; zero: not at all).
    pub await_vault: Duration,
    /// The whole run's limit, on top of the await.
    pub timeout: Duration,
}
