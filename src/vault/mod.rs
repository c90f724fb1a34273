//! Vault: is it ready for ESO again? One GET of `/v1/sys/health`, classified strictly.

mod health;
mod probe;
mod tls;

pub use health::{VaultStatus, classify};
pub use probe::VaultProbe;
pub use tls::{VaultTls, provider};
