//! Vault: is it ready for ESO again (`/v1/sys/health`, classified strictly), and since when
//! (`/v1/sys/leader`'s `active_time`)?

mod health;
mod leader;
mod probe;
mod tls;
mod until_ready;

pub use health::{VaultStatus, classify};
pub use leader::{ActiveSince, parse_leader};
pub use probe::VaultProbe;
pub use tls::VaultTls;
pub use until_ready::{ASK_EVERY, Awaited, LOG_EVERY, until_ready};
