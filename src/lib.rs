//! eso-recovery: restarts the External Secrets Operator when Vault is ready again but ESO is still
//! stuck in its backoff (a degraded ClusterSecretStore, or ExternalSecrets failing since the
//! outage): ESO's controller keeps each object's backoff in memory after an unseal.
//!
//! The judgement is the pure [`decision::decide`]; the I/O sits at the edges: [`vault`] (health
//! and activation time, `--await-vault`), [`store`] and [`externalsecret`] (the reads),
//! [`record`] (what runs saw of Vault, kept in a Lease), [`restarter`] and [`events`] (the
//! writes); [`run`] is the one place that orders them.

pub mod app;
pub mod cli;
pub mod config;
pub mod decision;
pub mod deployment;
pub mod errors;
pub mod events;
pub mod externalsecret;
pub mod https;
pub mod kube_client;
pub mod logging;
pub mod record;
pub mod recovered;
pub mod report;
pub mod restarter;
pub mod resync;
pub mod run;
pub mod store;
pub mod vault;

#[cfg(test)]
mod fixtures;
