//! The headline figure: seconds from "Vault ready" until the Secret holds Vault's value again,
//! after three kinds of outage: a short seal (the store stays Ready), a long one (Vault
//! restarted, back sealed; the store degrades), and a cut path to a Vault that runs on (its
//! clock does not move).
//!
//! On the node (the default): real nodes as a cluster runs them ([`NodeStack`]): OpenBao's pod,
//! ESO's pods from its chart, eso-recovery's chart with its CronJob ticking by itself. One node
//! per group, all at once, each playing its cells one after another: ESO alone; eso-recovery;
//! and eso-recovery with ESO's controller in HA (2 replicas, leader election), with the default
//! 15 s lease and, on its own node, the 5 s lease ESO 2.8+ lets a user set. Vault comes back 10
//! and 50 s after a tick (inside the 45 s a run awaits it, and just after). The outage is Vault's
//! container killed (the kubelet starts it again, sealed), a seal, or the node's packet filter
//! dropping what pods send to Vault's pod. The new password is written right after one of the
//! ExternalSecret's refreshes, just before the outage, so "synced" means ESO read Vault after it.
//! The figure includes all a cluster adds: the tick, the Job's pod start, the rollout's pod
//! replacement and, in HA, the new leader's wait for the old lease. Restart and resync side by
//! side (`--strategy`, the chart's `config.strategy`), ESO single and in HA, each on its own
//! node; for each cell also what the recovery cost: ESO's pods replaced, its leader's changes
//! and the writes its webhook refused to a client applying an ExternalSecret every 100 ms
//! (server-side dry runs: admitted in full, never stored), counted from the outage's start until
//! any rollout is complete.
//!
//! On process stacks (`ESO_BENCH_ONLY=processes`): each cell its own stack (control plane,
//! OpenBao on raft, ESO's real controller with the kubelet stand-in), up to
//! `ESO_BENCH_PARALLEL` (default 8) at once, for the comparison with the shell CronJob peer
//! (`bench/peer.sh`): the tools tick from the harness as the chart's per-minute CronJob does
//! (`concurrencyPolicy: Allow`: a tick starts a run even while the last one awaits Vault),
//! eso-recovery with the CronJob's own environment, Vault
//! back at six phases of the minute; ESO's process is stopped while the password is written.
//! A scale row: 1,000 ExternalSecrets on the store, all failed during a seal (a force-sync each,
//! the seal on), for ESO alone and eso-recovery: the time until the last is synced, and the
//! Kubernetes-auth logins OpenBao's audit log counts in the first 5 minutes; on ESO 2.9 also with
//! its Vault token cache on (`--enable-vault-token-cache`).
//!
//! ESO is v2.9.0, what users run; `ESO_BENCH_ESO=0.16.2` plays every cell on the oldest supported.
//!
//! Not part of the suite: `make bench-recovery` runs it, prints the tables and writes the
//! timeline picture docs/benchmarks.md shows. Figures, no thresholds.

mod measure;
mod picture;
mod tables;

use measure::{run_cell, run_node_group};
use picture::svg;
use tables::{scale_table, table};

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use harness::{
    node::Node,
    node::eso_pods,
    node::recovery_pods::{self, Strategy},
    node::stack::NodeStack,
    process::controlplane::bins,
    process::kube_api::KubeApi,
    process::many::{Many, create_external_secrets},
    process::openbao::OpenBao,
    process::seed::Seed,
    process::stack::{Parts, Stack, ready_condition},
    run::Run,
    tools::bench_docs,
    tools::eso_version::EsoVersion,
    tools::outage::Outage,
    tools::repo::repo,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{Pod, Secret},
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::{Value, json};

/// The ExternalSecret's refreshInterval: short enough that a 3-minute seal is noticed (the
/// design's `1h` would notice only the seals its refresh happens to fall in).
const ES_REFRESH: &str = "15s";
const TICK_EVERY: Duration = Duration::from_secs(60);
/// Where in the minute Vault comes back: seconds after a tick.
const PHASES: [u64; 6] = [0, 10, 20, 30, 40, 50];
/// On the node: early in the minute, and late (where runs that awaited 45 s under `Forbid` left
/// Vault unwatched).
const NODE_PHASES: [u64; 2] = [10, 50];
/// The sweep: Vault back every 5 s through the minute, on this many nodes at once.
const SWEEP_PHASES: std::ops::RangeInclusive<u64> = 0..=11;
const SWEEP_NODES: u8 = 3;
const SWEEP_COOLDOWN: Duration = Duration::from_secs(60);
/// eso-recovery's `--cooldown` as the chart sets it by default.
const COOLDOWN: Duration = Duration::from_secs(300);
/// Give up on a cell this long after Vault is ready (ESO's backoff cap is 7 minutes).
const GIVE_UP: Duration = Duration::from_secs(600);
const NEW_PASSWORD: &str = "after-the-outage";
/// The scale row's ExternalSecrets, and the window its logins are counted in.
const SCALE: usize = 1000;
const LOGIN_WINDOW: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arm {
    EsoAlone,
    Peer,
    EsoRecovery,
}

/// Where a cell runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Place {
    /// On the node, as a cluster runs it: ESO's pods (one replica each), OpenBao's pod,
    /// eso-recovery's CronJob ticking by itself. One node per place, its cells one after another.
    Node,
    /// As [`Place::Node`], ESO's controller in HA: 2 replicas with leader election, the default
    /// 15 s lease.
    NodeHa,
    /// As [`Place::NodeHa`] with a 5 s lease (renew deadline 4 s, the 2 s retry period kept):
    /// what ESO 2.8+ lets an HA user set (`leaderElectionLeaseDuration` and its twins).
    NodeHaShortLease,
    /// As [`Place::Node`], for the sweep of Vault's return through the minute (every 5 s), its
    /// cells spread over [`SWEEP_NODES`] nodes (this one's number), with a 1-minute cooldown so
    /// that cells follow each other without waiting one out (it is not what they measure).
    NodeSweep(u8),
    /// Its own stack of processes ([`Stack`]): ESO's controller with the kubelet stand-in, the
    /// tool ticking from the harness; many at once.
    Processes,
}

impl Place {
    fn eso_values(self) -> &'static [&'static str] {
        match self {
            Place::NodeHa => &["replicaCount=2", "leaderElect=true"],
            Place::NodeHaShortLease => &[
                "replicaCount=2",
                "leaderElect=true",
                "leaderElectionLeaseDuration=5s",
                "leaderElectionRenewDeadline=4s",
                "leaderElectionRetryPeriod=2s",
            ],
            Place::Node | Place::NodeSweep(_) | Place::Processes => &[],
        }
    }

    /// eso-recovery's `--cooldown` as the chart sets it here: a cell's outage ends no sooner
    /// after the node's last action.
    fn cooldown(self) -> Duration {
        match self {
            Place::NodeSweep(_) => SWEEP_COOLDOWN,
            _ => COOLDOWN,
        }
    }
}

/// One cell to run.
#[derive(Clone, Copy, Debug)]
struct Spec {
    outage: Outage,
    arm: Arm,
    place: Place,
    /// Seconds after a tick at which Vault comes back (none for ESO alone: it has no ticks).
    phase: Option<u64>,
    /// ExternalSecrets beside the design's one (the scale row), or 0.
    extra: usize,
    /// ESO's Vault token cache on (the scale row on ESO 2.9).
    token_cache: bool,
    /// How eso-recovery wakes ESO (process stacks: restart).
    strategy: Strategy,
}

/// One observation of the stack, in seconds from the outage's start.
#[derive(Clone, Debug)]
struct Sample {
    t: f64,
    vault_ready: bool,
    store_ready: bool,
    es_ready: bool,
    synced: bool,
    /// The scale row: how many of the extra ExternalSecrets' Secrets hold the new password.
    extra_synced: usize,
}

impl Spec {
    /// The tool, and where it ran, in a table's words.
    fn tool(&self) -> String {
        let arm = match self.arm {
            Arm::EsoAlone => "ESO alone",
            Arm::Peer => "shell peer (bench/peer.sh)",
            Arm::EsoRecovery => match self.strategy {
                Strategy::Restart => "eso-recovery, restart",
                Strategy::Resync => "eso-recovery, resync",
            },
        };
        match self.place {
            Place::Node => format!("{arm}, node"),
            Place::NodeSweep(_) => format!("{arm}, node, Vault back every 5 s of the minute"),
            Place::NodeHa => format!("{arm}, node, ESO in HA (15 s lease)"),
            Place::NodeHaShortLease => format!("{arm}, node, ESO in HA (5 s lease)"),
            Place::Processes if self.token_cache => format!("{arm}, processes, Vault token cache"),
            Place::Processes => format!("{arm}, processes"),
        }
    }
}

/// What one cell saw.
struct Cell {
    spec: Spec,
    /// When Vault was ready again, seconds from the outage's start.
    ready: f64,
    samples: Vec<Sample>,
    /// Each tick of the tool: when it started, and its outcome.
    ticks: Vec<(f64, String)>,
    /// When ESO was restarted (the kubelet stand-in started its new process; on the node, the
    /// `restartedAt` eso-recovery wrote), if it was.
    eso_restarted: Option<f64>,
    /// The scale row: logins in the first 5 minutes after Vault was ready, and in all.
    logins: Option<(usize, usize)>,
    /// On the node, from the outage's start until ESO's rollouts (if any) were complete: what
    /// the recovery cost besides its time.
    cost: Option<Cost>,
}

/// What a recovery on the node cost besides its time.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    /// ESO's pods made anew (a rollout replaces each).
    replaced: usize,
    /// Changes of ESO's controller's leader (`None` with one replica: it elects none).
    leader_changes: Option<i64>,
    /// The writer's ExternalSecret applies, and how many of them failed.
    writes: usize,
    refused: usize,
    /// eso-recovery's pods there at once, at most (looked at every 2 s).
    most_runs: usize,
    /// The CronJob's ticks its controller skipped or missed (its Events say so).
    skipped: usize,
}

impl Cell {
    /// The first time after Vault was ready at which `f` held (and kept holding to the end).
    fn recovered(&self, f: impl Fn(&Sample) -> bool) -> Option<f64> {
        let mut since = None;
        for s in self.samples.iter().filter(|s| s.t >= self.ready) {
            match (f(s), since) {
                (true, None) => since = Some(s.t),
                (false, _) => since = None,
                _ => {}
            }
        }
        since.map(|t| t - self.ready)
    }

    fn synced(&self) -> Option<f64> {
        if self.spec.extra > 0 {
            self.recovered(|s| s.synced && s.extra_synced == self.spec.extra)
        } else {
            self.recovered(|s| s.synced)
        }
    }
}

/// The ESO every cell runs: `ESO_BENCH_ESO` (2.9.0 or 0.16.2), by default 2.9.0.
fn bench_eso() -> EsoVersion {
    match std::env::var("ESO_BENCH_ESO").as_deref() {
        Err(_) | Ok("2.9.0") => EsoVersion::V2_9,
        Ok("0.16.2") => EsoVersion::V0_16,
        Ok(other) => panic!("ESO_BENCH_ESO={other}: use 2.9.0 or 0.16.2"),
    }
}

/// Every cell of `ESO_BENCH_ONLY`'s part: `node` (the default: the node's, one node for each
/// group: ESO alone; eso-recovery restarting ESO single, in HA and in HA with the short lease;
/// eso-recovery resyncing ESO single and in HA), `strategies` (of those, restart and resync side
/// by side: ESO single and in HA with the default lease), `phases` (Vault back every 5 s of the
/// minute after a short seal and a cut path, ESO single, on three nodes), `processes` (the
/// process stacks': the peer beside ESO alone and eso-recovery, and the scale row), `outages`
/// or `scale` (a part of those), or `all`; several joined by commas. The longest first (the scale row, then the long
/// outage), so the pool ends together.
fn specs() -> Vec<Spec> {
    let only = std::env::var("ESO_BENCH_ONLY").unwrap_or_else(|_| "node".into());
    let mut specs = Vec::new();
    let token_cache: &[bool] = match bench_eso() {
        EsoVersion::V2_9 => &[false, true],
        EsoVersion::V0_16 => &[false],
    };
    for &token_cache in token_cache {
        for arm in [Arm::EsoAlone, Arm::EsoRecovery] {
            specs.push(Spec {
                outage: Outage::ShortSeal,
                arm,
                place: Place::Processes,
                phase: (arm == Arm::EsoRecovery).then_some(30),
                extra: SCALE,
                token_cache,
                strategy: Strategy::Restart,
            });
        }
    }
    for outage in [Outage::RestartedSealed, Outage::ShortSeal, Outage::CutPath] {
        for place in [Place::Node, Place::Processes] {
            specs.push(Spec {
                outage,
                arm: Arm::EsoAlone,
                place,
                phase: None,
                extra: 0,
                token_cache: false,
                strategy: Strategy::Restart,
            });
        }
        for arm in [Arm::Peer, Arm::EsoRecovery] {
            for phase in PHASES {
                specs.push(Spec {
                    outage,
                    arm,
                    place: Place::Processes,
                    phase: Some(phase),
                    extra: 0,
                    token_cache: false,
                    strategy: Strategy::Restart,
                });
            }
        }
        for (place, strategy) in [
            (Place::Node, Strategy::Restart),
            (Place::NodeHa, Strategy::Restart),
            (Place::NodeHaShortLease, Strategy::Restart),
            (Place::Node, Strategy::Resync),
            (Place::NodeHa, Strategy::Resync),
        ] {
            for phase in NODE_PHASES {
                specs.push(Spec {
                    outage,
                    arm: Arm::EsoRecovery,
                    place,
                    phase: Some(phase),
                    extra: 0,
                    token_cache: false,
                    strategy,
                });
            }
        }
    }
    for outage in [Outage::ShortSeal, Outage::CutPath] {
        for phase in SWEEP_PHASES {
            specs.push(Spec {
                outage,
                arm: Arm::EsoRecovery,
                place: Place::NodeSweep((phase % u64::from(SWEEP_NODES)) as u8),
                phase: Some(phase * 5),
                extra: 0,
                token_cache: false,
                strategy: Strategy::Restart,
            });
        }
    }
    let parts: Vec<&str> = only.split(',').collect();
    for part in &parts {
        assert!(
            [
                "all",
                "node",
                "strategies",
                "phases",
                "processes",
                "outages",
                "scale"
            ]
            .contains(part),
            "ESO_BENCH_ONLY={only}: use node, strategies, phases, processes, outages, scale or all, or several joined by commas"
        );
    }
    specs.retain(|s| {
        parts.iter().any(|part| match *part {
            "all" => true,
            "node" => !matches!(s.place, Place::Processes | Place::NodeSweep(_)),
            "strategies" => {
                s.arm == Arm::EsoRecovery && matches!(s.place, Place::Node | Place::NodeHa)
            }
            "phases" => matches!(s.place, Place::NodeSweep(_)),
            "processes" => s.place == Place::Processes,
            "scale" => s.extra > 0,
            _ => s.place == Place::Processes && s.extra == 0, // outages
        })
    });
    specs
}

/// The node's cells, one node per group: eso-recovery's cells by place, ESO alone on its own.
fn node_groups(specs: &[Spec]) -> Vec<Vec<Spec>> {
    let mut groups: Vec<Vec<Spec>> = Vec::new();
    for spec in specs.iter().filter(|s| s.place != Place::Processes) {
        let key = |s: &Spec| (s.place, s.arm, s.strategy);
        match groups.iter_mut().find(|g| key(&g[0]) == key(spec)) {
            Some(g) => g.push(*spec),
            None => groups.push(vec![*spec]),
        }
    }
    groups
}

#[test]
#[ignore = "the recovery benchmark: make bench-recovery"]
fn time_from_vault_ready_to_the_secret_synced() {
    let parallel: usize = std::env::var("ESO_BENCH_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let specs = specs();
    let cells = Arc::new(Mutex::new(Vec::new()));
    // Each node group in its own thread, its cells one after another on its node.
    let mut workers: Vec<JoinHandle<()>> = node_groups(&specs)
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let cells = Arc::clone(&cells);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(30 * i as u64));
                let done = run_node_group(group);
                cells.lock().unwrap().extend(done);
            })
        })
        .collect();
    let mut pool: Vec<Spec> = specs
        .into_iter()
        .filter(|s| s.place == Place::Processes)
        .collect();
    pool.reverse(); // popped from the end
    let queue = Arc::new(Mutex::new(pool));
    workers.extend((0..parallel).map(|i| {
        let (queue, cells) = (Arc::clone(&queue), Arc::clone(&cells));
        std::thread::spawn(move || {
            // Stagger the start-ups: several control planes at once on two cores.
            std::thread::sleep(Duration::from_secs(10 * i as u64));
            loop {
                let Some(spec) = queue.lock().unwrap().pop() else {
                    break;
                };
                let cell = run_cell(spec);
                cells.lock().unwrap().push(cell);
            }
        })
    }));
    for w in workers {
        w.join().expect("a benchmark cell failed");
    }
    let cells = std::mem::take(&mut *cells.lock().unwrap());
    let setup = format!(
        "Time from Vault ready (unsealed, or the path restored) until the Secret holds Vault's \
         value ({}, OpenBao on raft, ExternalSecret refreshInterval {ES_REFRESH}, the \
         design's store with no refreshInterval; eso-recovery with the chart's defaults, ticking \
         every {} s: on the node its CronJob, on process stacks the harness)",
        bench_eso(),
        TICK_EVERY.as_secs()
    );
    println!("\n{setup}:\n\n{}", table(&cells));
    let only = std::env::var("ESO_BENCH_ONLY").unwrap_or_else(|_| "node".into());
    let command = format!("ESO_BENCH_ONLY={only} make bench-recovery");
    if cells.iter().any(|c| c.spec.extra == 0) {
        bench_docs::publish(
            &format!("bench-recovery:{only}"),
            &command,
            &format!("{setup}:\n\n{}", table(&cells)),
        );
    }
    if cells.iter().any(|c| c.spec.extra > 0) {
        println!("{}", scale_table(&cells));
        bench_docs::publish(
            "bench-recovery:1000-external-secrets",
            &command,
            &scale_table(&cells),
        );
    }
    for c in &cells {
        println!(
            "{} / {:?} / phase {:?}: ticks {:?}; ESO restarted {}; {:?}",
            c.spec.tool(),
            c.spec.outage,
            c.spec.phase,
            c.ticks
                .iter()
                .map(|(t, o)| format!("{:+.0}s {o}", t - c.ready))
                .collect::<Vec<_>>(),
            c.eso_restarted
                .map_or("never".into(), |t| format!("{:+.1}s", t - c.ready)),
            c.cost
        );
    }
    // The picture: one lane set per tool and outage, from the node when it ran (Vault back
    // 10 s after a tick), else from the process stacks (30 s after).
    let on_node = cells.iter().any(|c| c.spec.place != Place::Processes);
    let mut shown: Vec<&Cell> = cells
        .iter()
        // The sweep's cells are in their own table: the picture is of the fixed phases.
        .filter(|c| !matches!(c.spec.place, Place::NodeSweep(_)))
        .filter(|c| c.spec.extra == 0 && (c.spec.place != Place::Processes) == on_node)
        .filter(|c| {
            c.spec
                .phase
                .is_none_or(|p| p == if on_node { 10 } else { 30 })
        })
        .collect();
    shown.sort_by_key(|c| (c.spec.outage as u8, c.spec.place, c.spec.arm as u8));
    if !shown.is_empty() {
        let picture = std::env::var_os("ESO_BENCH_TIMELINE")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("docs/recovery-timeline.svg"));
        std::fs::write(&picture, svg(&shown)).expect("writing the timeline picture");
        println!("timeline written to {}", picture.display());
    }
}
