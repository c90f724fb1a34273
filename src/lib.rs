//! eso-recovery: restarts the External Secrets Operator when Vault is ready again but ESO's
//! ClusterSecretStore is still degraded (ESO's controller stays in backoff after an unseal).
//!
//! The judgement is the pure [`decision::decide`]; the I/O sits at the edges: [`vault`] (the health
//! probe), [`store`] (the store read), [`restarter`] and [`events`] (the writes).

pub mod app;
pub mod cli;
pub mod config;
pub mod decision;
pub mod deployment;
pub mod errors;
pub mod events;
pub mod kube_client;
pub mod logging;
pub mod report;
pub mod restarter;
pub mod run;
pub mod store;
pub mod vault;
pub mod wait;

#[cfg(test)]
mod fixtures;
