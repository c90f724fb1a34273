//! The three kinds of Vault outage the benchmark and the node's tests play, as a cluster has
//! them: Vault sealed, Vault's process restarted (back sealed), and the network path to a Vault
//! that runs on cut.

use std::time::Duration;

/// One kind of outage, with the length the benchmark gives it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outage {
    /// `sys/seal` for 3 minutes: the store is validated every 5 minutes, so it stays Ready.
    ShortSeal,
    /// The Vault process restarted (raft: back sealed), unsealed after 6 minutes: the store's
    /// periodic validation falls inside and it degrades.
    RestartedSealed,
    /// The path to Vault cut for 3 minutes; Vault's process runs on and its clock does not move.
    CutPath,
}

impl Outage {
    /// How long the benchmark holds it.
    pub fn length(self) -> Duration {
        match self {
            Outage::ShortSeal | Outage::CutPath => Duration::from_secs(180),
            Outage::RestartedSealed => Duration::from_secs(360),
        }
    }

    /// Its name in a table.
    pub fn title(self) -> &'static str {
        match self {
            Outage::ShortSeal => "3-min seal (store stays Ready)",
            Outage::RestartedSealed => "Vault restarted, unsealed after 6 min (store degrades)",
            Outage::CutPath => "path to a running Vault cut for 3 min (Vault's clock unchanged)",
        }
    }

    /// Its name in a picture.
    pub fn short(self) -> &'static str {
        match self {
            Outage::ShortSeal => "3-min seal",
            Outage::RestartedSealed => "6-min outage",
            Outage::CutPath => "3-min cut path",
        }
    }
}
