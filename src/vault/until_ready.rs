//! `--await-vault`: keep asking Vault's health until it is ready or the time is spent.
//!
//! A run that finds Vault not ready usually exits and leaves the next minute's run to notice the
//! unseal: up to a minute of stale Secrets. Awaiting, the run is there the moment Vault answers
//! ready. Asks start at most [`ASK_EVERY`] apart and each is bounded by `--vault-timeout`; a hung
//! ask does not hold up the next one (a new connection may well get through).

use std::time::Duration;

use futures::{StreamExt, stream::FuturesUnordered};
use jiff::Timestamp;
use tokio::time::{Instant, MissedTickBehavior};

use super::{VaultProbe, VaultStatus};

/// How often a new health request starts while awaiting.
pub const ASK_EVERY: Duration = Duration::from_millis(500);

/// How often the log says the run is still waiting.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// At most this many asks in flight at once (each ends within `--vault-timeout`).
const MAX_IN_FLIGHT: usize = 4;

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaited {
    /// Vault's last answer: ready, or the last not-ready one.
    pub status: VaultStatus,
    /// When that answer came.
    pub at: Timestamp,
    /// How long the run waited.
    pub waited: Duration,
}

/// Asks until Vault is ready (by `standby_ok`'s rule) or `budget` is spent. `last` is the answer
/// that started the wait.
pub async fn until_ready(
    vault: &VaultProbe,
    budget: Duration,
    standby_ok: bool,
    last: VaultStatus,
) -> Awaited {
    let start = Instant::now();
    let deadline = start + budget;
    tracing::info!(
        "vault not ready ({last}): awaiting it for up to {} (--await-vault)",
        humantime::format_duration(budget)
    );
    let mut last = Awaited {
        status: last,
        at: Timestamp::now(),
        waited: Duration::ZERO,
    };
    let mut asks = tokio::time::interval(ASK_EVERY);
    asks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    asks.tick().await; // the first tick is immediate: the answer that started the wait was it
    let mut logs = tokio::time::interval_at(start + LOG_EVERY, LOG_EVERY);
    let mut in_flight = FuturesUnordered::new();
    let give_up = tokio::time::sleep_until(deadline);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            () = &mut give_up => break,
            _ = asks.tick(), if in_flight.len() < MAX_IN_FLIGHT => {
                in_flight.push(async {
                    let status = vault.probe().await;
                    (status, Timestamp::now())
                });
            }
            Some((status, at)) = in_flight.next() => {
                let ready = status.is_ready(standby_ok);
                last = Awaited { status, at, waited: start.elapsed() };
                if ready {
                    tracing::info!(
                        "vault ready ({}) after awaiting it for {}",
                        last.status,
                        humantime::format_duration(whole_ms(last.waited))
                    );
                    return last;
                }
            }
            _ = logs.tick() => {
                tracing::info!(
                    "still awaiting vault ({}); waited {} of {}",
                    last.status,
                    humantime::format_duration(whole_secs(start.elapsed())),
                    humantime::format_duration(budget)
                );
            }
        }
    }
    last.waited = start.elapsed();
    tracing::info!(
        "vault still not ready ({}) after awaiting it for {}: giving up until the next run",
        last.status,
        humantime::format_duration(whole_secs(last.waited))
    );
    last
}

fn whole_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}
