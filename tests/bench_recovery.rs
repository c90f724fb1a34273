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
//! (`bench/peer.sh`): the tools tick from the harness as a per-minute CronJob does, one at a
//! time (`concurrencyPolicy: Forbid`), eso-recovery with the CronJob's own environment, Vault
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

mod support;

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
use support::{
    Run, bench_docs,
    controlplane::{bins, repo},
    eso_pods,
    eso_version::EsoVersion,
    kube_api::KubeApi,
    many::{Many, create_external_secrets},
    node::Node,
    node_stack::NodeStack,
    openbao::OpenBao,
    outage::Outage,
    recovery_pods::{self, Strategy},
    seed::Seed,
    stack::{Parts, Stack, ready_condition},
};

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

/// The CronJob's Events since `since` that say a tick was skipped (a Job still active under
/// `Forbid`) or missed (not started within `startingDeadlineSeconds`).
fn skipped_ticks(node: &Node, since: jiff::Timestamp) -> usize {
    let events = node.cp.get_json(&[
        "events",
        "-n",
        "security",
        "--field-selector=involvedObject.kind=CronJob",
    ]);
    events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            ["JobAlreadyActive", "MissSchedule", "TooManyMissedTimes"]
                .iter()
                .any(|r| e["reason"] == *r)
        })
        .filter(|e| {
            ["lastTimestamp", "eventTime"]
                .iter()
                .find_map(|k| e[*k].as_str()?.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t >= since)
        })
        .map(|e| e["count"].as_u64().unwrap_or(1) as usize)
        .sum()
}

/// A client applying an ExternalSecret every 100 ms, as a deploy pipeline does, through ESO's
/// validating webhook (`failurePolicy: Fail`). Server-side dry runs: admission runs in full,
/// nothing is stored, so ESO gets no extra reconcile (each would count against its 10/s queue).
struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, usize)>,
}

impl Writer {
    fn start(kubeconfig: &Path) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let api = KubeApi::new(kubeconfig);
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "external-secrets.io",
            "v1",
            "ExternalSecret",
        ));
        let es: Api<DynamicObject> = Api::namespaced_with(api.client.clone(), "db", &resource);
        let object = json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "a-deploy-pipelines-write", "namespace": "db"},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "k8s-secrets"},
                "target": {"name": "a-deploy-pipelines-write"},
                "data": [{"secretKey": "user",
                          "remoteRef": {"key": "postgres-secret", "property": "POSTGRES_USER"}}],
            },
        });
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let params = PatchParams::apply("a-deploy-pipeline").dry_run();
            let (mut writes, mut refused) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                let next = Instant::now() + Duration::from_millis(100);
                writes += 1;
                let sent = api.block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(10),
                        es.patch("a-deploy-pipelines-write", &params, &Patch::Apply(&object)),
                    )
                    .await
                });
                let failed = match sent {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("no answer within 10 s".to_string()),
                };
                if let Some(e) = failed {
                    refused += 1;
                    if refused <= 3 {
                        eprintln!("the writer's apply failed: {e}");
                    }
                }
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            (writes, refused)
        });
        Writer { stop, handle }
    }

    /// Stops it; its applies and how many failed.
    fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the writer's thread")
    }
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

/// Reads the store, the ExternalSecret and the Secrets as the admin, cheaply (no kubectl).
struct Observer {
    api: KubeApi,
    stores: Api<DynamicObject>,
    external_secrets: Api<DynamicObject>,
    secrets: Api<Secret>,
    extra_secrets: Api<Secret>,
    /// ESO's controller Deployment and eso-recovery's pods, in `security`.
    deployments: Api<Deployment>,
    pods: Api<Pod>,
    /// eso-recovery's record.
    leases: Api<Lease>,
}

impl Observer {
    fn new(kubeconfig: &std::path::Path) -> Observer {
        let api = KubeApi::new(kubeconfig);
        let gvk =
            |kind| ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind));
        Observer {
            stores: Api::all_with(api.client.clone(), &gvk("ClusterSecretStore")),
            external_secrets: Api::namespaced_with(
                api.client.clone(),
                "db",
                &gvk("ExternalSecret"),
            ),
            secrets: Api::namespaced(api.client.clone(), "db"),
            extra_secrets: Api::namespaced(api.client.clone(), "apps"),
            deployments: Api::namespaced(api.client.clone(), "security"),
            pods: Api::namespaced(api.client.clone(), "security"),
            leases: Api::namespaced(api.client.clone(), "security"),
            api,
        }
    }

    /// The `restartedAt` on ESO's controller's pod template.
    fn restarted_at(&self) -> Option<String> {
        let d = self
            .api
            .block_on(self.deployments.get_opt(eso_pods::DEPLOYMENTS[0]))
            .ok()
            .flatten()?;
        d.spec?
            .template
            .metadata?
            .annotations?
            .remove("kubectl.kubernetes.io/restartedAt")
    }

    /// eso-recovery's last restart or resync, whichever is newer: what its cooldown counts from.
    fn last_action(&self) -> Option<jiff::Timestamp> {
        let resynced = self
            .api
            .block_on(self.leases.get_opt("eso-recovery"))
            .ok()
            .flatten()
            .and_then(|l| l.metadata.annotations)
            .and_then(|mut a| a.remove("eso-recovery/resynced-at"));
        [self.restarted_at(), resynced]
            .into_iter()
            .flatten()
            .filter_map(|a| a.parse::<jiff::Timestamp>().ok())
            .max()
    }

    /// eso-recovery's CronJob's pods, as JSON.
    fn runs(&self) -> Vec<Value> {
        let lp = ListParams::default().labels("app.kubernetes.io/name=eso-recovery");
        self.api
            .block_on(self.pods.list(&lp))
            .map(|l| {
                l.items
                    .iter()
                    .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn sample(&self, t: f64, bao: &OpenBao, password: &str, extra: usize) -> Sample {
        let ready = |o: Option<DynamicObject>| {
            o.map(|o| {
                ready_condition(&serde_json::to_value(o).unwrap_or(Value::Null))["status"] == "True"
            })
            .unwrap_or(false)
        };
        let new_password = |s: &Secret| {
            s.data
                .as_ref()
                .and_then(|d| d.get("POSTGRES_PASSWORD"))
                .is_some_and(|v| v.0 == password.as_bytes())
        };
        let (store, es, secret, extra_secrets) = self.api.block_on(async {
            tokio::join!(
                self.stores.get_opt("k8s-secrets"),
                self.external_secrets.get_opt("postgres-secret"),
                self.secrets.get_opt("postgres-secret"),
                async {
                    if extra == 0 {
                        return 0;
                    }
                    self.extra_secrets
                        .list(&ListParams::default())
                        .await
                        .map(|l| l.items.iter().filter(|s| new_password(s)).count())
                        .unwrap_or(0)
                }
            )
        });
        Sample {
            t,
            vault_ready: bao.health_code() == 200,
            store_ready: ready(store.ok().flatten()),
            es_ready: ready(es.ok().flatten()),
            synced: secret.ok().flatten().is_some_and(|s| new_password(&s)),
            extra_synced: extra_secrets,
        }
    }
}

/// The environment the CronJob gives eso-recovery (from the applied `manifests/`, which a test
/// keeps equal to the chart's defaults), with Vault's address as this stack reaches it.
fn cronjob_env(stack: &Stack) -> Vec<(String, String)> {
    let cronjob = stack
        .cp
        .get_json(&["cronjob", "eso-recovery", "-n", &stack.seed.namespace]);
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .map(|(k, v)| {
            if k == "VAULT_ADDR" {
                (k, stack.vault_addr().to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

/// Starts one tick of the tool in the background; its outcome in a word.
fn tick(arm: Arm, stack: &Stack, env: &[(String, String)]) -> JoinHandle<String> {
    match arm {
        Arm::EsoAlone => unreachable!("ESO alone has no ticks"),
        Arm::EsoRecovery => {
            let kubeconfig = stack.recovery_kubeconfig.clone();
            let env = env.to_vec();
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let run: Run = support::eso(Some(&kubeconfig), &[], &env);
                run.outcome().to_string()
            })
        }
        Arm::Peer => {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg(repo().join("bench/peer.sh"))
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", bins().display()))
                .env("HOME", std::env::temp_dir())
                .env("KUBECONFIG", &stack.cp.admin_kubeconfig)
                .env("VAULT_ADDR", stack.vault_addr())
                .stdin(Stdio::null());
            std::thread::spawn(move || {
                let out = cmd.output().expect("running bench/peer.sh");
                let text = String::from_utf8_lossy(&out.stdout);
                if text.contains("restarting") && out.status.success() {
                    "restarted".into()
                } else {
                    text.lines().next().unwrap_or("no output").to_string()
                }
            })
        }
    }
}

/// Force-syncs every extra ExternalSecret (as `kubectl annotate … force-sync=…` does), so each
/// fails against the sealed Vault and enters ESO's backoff.
fn force_sync_all(stack: &Stack, n: usize) {
    let api = KubeApi::new(&stack.cp.admin_kubeconfig);
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "external-secrets.io",
        "v1",
        "ExternalSecret",
    ));
    let es: Api<DynamicObject> = Api::namespaced_with(api.client.clone(), "apps", &resource);
    let value = jiff::Timestamp::now().as_second().to_string();
    let patch = json!({"metadata": {"annotations": {"force-sync": value}}});
    api.block_on(stream::iter(0..n).for_each_concurrent(32, |i| {
        let (es, patch) = (es.clone(), patch.clone());
        async move {
            let name = support::many::name(i);
            es.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap_or_else(|e| panic!("force-syncing {name}: {e}"));
        }
    }));
}

fn run_cell(spec: Spec) -> Cell {
    let parts = Parts {
        relay: spec.outage == Outage::CutPath,
        vault_audit: spec.extra > 0,
        eso_flags: if spec.token_cache {
            &["--enable-vault-token-cache=true"]
        } else {
            &[]
        },
        resync: false,
        audit: false,
    };
    assert_eq!(
        spec.strategy,
        Strategy::Restart,
        "process stacks play the restart"
    );
    let mut stack = Stack::start_with(bench_eso(), Seed::with_real_eso(None, ES_REFRESH), parts);
    if spec.extra > 0 {
        create_external_secrets(&stack.cp, &Many::like_the_design(), spec.extra);
        support::procs::wait_until(
            "ESO's first sync of the scale row's ExternalSecrets",
            Duration::from_secs(600),
            || {
                std::thread::sleep(Duration::from_secs(1)); // a list of 1,000 Secrets a second
                let out = stack
                    .cp
                    .kubectl(&["get", "secrets", "-n", "apps", "-o", "name"]);
                out.lines().count() >= spec.extra
            },
        );
    }
    let env = cronjob_env(&stack);
    let observer = Observer::new(&stack.cp.admin_kubeconfig);
    let start = Instant::now();
    let secs = |i: Instant| i.duration_since(start).as_secs_f64();
    // The new password, then the outage, with ESO's process stopped in between.
    stack.eso.pause();
    stack.rotate(NEW_PASSWORD);
    match spec.outage {
        Outage::ShortSeal => stack.bao.seal(),
        Outage::RestartedSealed => stack.restart_vault_sealed(),
        Outage::CutPath => stack.cut_vault_path(),
    }
    stack.eso.resume();
    if spec.extra > 0 {
        force_sync_all(&stack, spec.extra);
    }
    let back_at = start + spec.outage.length();
    // The per-minute grid, placed so that Vault comes back `phase` seconds after a tick.
    let mut next_tick = spec.phase.map(|p| {
        let mut t = back_at - Duration::from_secs(p);
        while t > start + TICK_EVERY {
            t -= TICK_EVERY;
        }
        t
    });
    let mut cell = Cell {
        spec,
        ready: spec.outage.length().as_secs_f64(),
        samples: Vec::new(),
        ticks: Vec::new(),
        eso_restarted: None,
        logins: None,
        cost: None,
    };
    // The tick whose run is still going on, as the CronJob's one active Job.
    let mut running: Option<(f64, JoinHandle<String>)> = None;
    let mut ready_at: Option<Instant> = None;
    let poll = if spec.extra > 0 {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(250)
    };
    loop {
        let now = Instant::now();
        if ready_at.is_none() && now >= back_at {
            match spec.outage {
                Outage::ShortSeal | Outage::RestartedSealed => stack.bao.unseal(),
                Outage::CutPath => stack.restore_vault_path(),
            }
            let at = Instant::now();
            cell.ready = secs(at);
            ready_at = Some(at);
        }
        if running.as_ref().is_some_and(|(_, h)| h.is_finished())
            && let Some((t, h)) = running.take()
        {
            cell.ticks
                .push((t, h.join().unwrap_or_else(|_| "panicked".into())));
        }
        if let Some(t) = next_tick.filter(|t| now >= *t) {
            // concurrencyPolicy: Forbid — a tick while the last run goes on is skipped.
            if running.is_none() {
                running = Some((secs(now), tick(spec.arm, &stack, &env)));
            } else {
                cell.ticks.push((secs(now), "skipped (Forbid)".into()));
            }
            next_tick = Some(t + TICK_EVERY);
        }
        if cell.eso_restarted.is_none() && stack.eso.starts() > 1 {
            cell.eso_restarted = Some(secs(Instant::now()));
        }
        let sample = observer.sample(secs(Instant::now()), &stack.bao, NEW_PASSWORD, spec.extra);
        let all_synced = sample.synced && (spec.extra == 0 || sample.extra_synced == spec.extra);
        let done = ready_at.is_some() && all_synced && sample.store_ready && sample.es_ready;
        cell.samples.push(sample);
        let gave_up = ready_at.is_some_and(|r| now > r + GIVE_UP);
        let counted = spec.extra == 0 || ready_at.is_some_and(|r| now > r + LOGIN_WINDOW);
        if (done && counted) || gave_up {
            if let Some((t, h)) = running.take() {
                cell.ticks
                    .push((t, h.join().unwrap_or_else(|_| "panicked".into())));
            }
            if spec.extra > 0 {
                let ready = jiff::Timestamp::now()
                    - jiff::SignedDuration::try_from(
                        ready_at.map_or(Duration::ZERO, |r| r.elapsed()),
                    )
                    .unwrap_or_default();
                let logins = stack.bao.logins();
                let window = jiff::SignedDuration::try_from(LOGIN_WINDOW).unwrap_or_default();
                let early = logins
                    .iter()
                    .filter(|t| **t >= ready && **t < ready + window)
                    .count();
                let after = logins.iter().filter(|t| **t >= ready).count();
                cell.logins = Some((early, after));
            }
            // A little more, so the picture shows the end.
            std::thread::sleep(Duration::from_secs(2));
            cell.samples.push(observer.sample(
                secs(Instant::now()),
                &stack.bao,
                NEW_PASSWORD,
                spec.extra,
            ));
            eprintln!(
                "cell done: {} / {:?} / phase {:?} / {} more ExternalSecrets: synced {:?} s after Vault was ready",
                spec.tool(),
                spec.outage,
                spec.phase,
                spec.extra,
                cell.synced()
            );
            return cell;
        }
        std::thread::sleep(poll);
    }
}

/// eso-recovery's `--cooldown` as the chart sets it by default.
const COOLDOWN: Duration = Duration::from_secs(300);

/// One node for `group` (ESO installed for its place; eso-recovery's chart unless it is ESO
/// alone), its cells played one after another.
fn run_node_group(group: Vec<Spec>) -> Vec<Cell> {
    let (place, strategy) = (group[0].place, group[0].strategy);
    let with_recovery = group.iter().any(|s| s.arm == Arm::EsoRecovery);
    let seed = Seed {
        es_refresh: ES_REFRESH.into(),
        ..Seed::design()
    };
    let cooldown = format!("config.cooldown={}s", place.cooldown().as_secs());
    let mut values = strategy.values().to_vec();
    values.push(&cooldown);
    let stack = NodeStack::start(
        Node::start_beside_others(bench_eso()),
        seed,
        place.eso_values(),
        with_recovery.then_some(&values[..]),
    );
    if with_recovery && strategy == Strategy::Resync {
        stack.wait_for_resync_guard();
    }
    let observer = Observer::new(&stack.node.cp.admin_kubeconfig);
    group
        .into_iter()
        .enumerate()
        .map(|(i, spec)| run_node_cell(&stack, &observer, spec, &format!("{NEW_PASSWORD}-{i}")))
        .collect()
}

/// Seconds to add to a return at `at` so it falls `phase` seconds into a minute, where the
/// CronJob's `* * * * *` ticks.
fn to_phase(at: jiff::Timestamp, phase: Option<u64>) -> Duration {
    let Some(phase) = phase else {
        return Duration::ZERO;
    };
    let into_minute = at.as_millisecond().rem_euclid(60_000) as u64;
    Duration::from_millis((phase * 1000 + 60_000 - into_minute) % 60_000)
}

/// One cell on the node: the new password, then the outage, held for its length and until
/// `phase` seconds after a tick of the CronJob; then Vault back, and the wait for the Secret.
fn run_node_cell(stack: &NodeStack, observer: &Observer, spec: Spec, password: &str) -> Cell {
    let node = &stack.node;
    let length = spec.outage.length();
    if spec.arm == Arm::EsoRecovery
        && let Some(last) = observer.last_action()
    {
        let earliest = last
            + jiff::SignedDuration::try_from(spec.place.cooldown() + Duration::from_secs(15))
                .unwrap_or_default();
        let end_if_now =
            jiff::Timestamp::now() + jiff::SignedDuration::try_from(length).unwrap_or_default();
        if let Ok(wait) = Duration::try_from(earliest - end_if_now) {
            std::thread::sleep(wait);
        }
    }
    let before = eso_pods::Seen::now(node, &stack.seed.namespace);
    stack.rotate_then_begin(password, spec.outage);
    let writer = Writer::start(&node.cp.admin_kubeconfig);
    let start = Instant::now();
    let start_wall = jiff::Timestamp::now();
    let secs = |i: Instant| i.duration_since(start).as_secs_f64();
    let back_at = start
        + length
        + to_phase(
            start_wall + jiff::SignedDuration::try_from(length).unwrap_or_default(),
            spec.phase,
        );
    let since_start = |at: &str| {
        at.parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| (t - start_wall).total(jiff::Unit::Second).ok())
    };
    let restarted_before = observer.restarted_at();
    let mut cell = Cell {
        spec,
        ready: length.as_secs_f64(),
        samples: Vec::new(),
        ticks: Vec::new(),
        eso_restarted: None,
        logins: None,
        cost: None,
    };
    // The CronJob's pods seen so far: when each was made, and its outcome once it ended.
    let mut runs: Vec<(String, f64, Option<String>)> = Vec::new();
    let mut most_runs = 0;
    let mut poll = |cell: &mut Cell| {
        let pods = observer.runs();
        most_runs = most_runs.max(
            pods.iter()
                .filter(|p| p["status"]["phase"] == "Pending" || p["status"]["phase"] == "Running")
                .count(),
        );
        for pod in pods {
            let name = recovery_pods::name(&pod);
            if !runs.iter().any(|(n, _, _)| *n == name) {
                let made = since_start(
                    pod["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or_default(),
                );
                runs.push((name.clone(), made.unwrap_or_default(), None));
            }
            let ended = ["Succeeded", "Failed"]
                .iter()
                .any(|p| pod["status"]["phase"] == *p);
            if let Some(run) = runs.iter_mut().find(|(n, _, o)| *n == name && o.is_none())
                && ended
            {
                let (_, summary) = recovery_pods::summary(node, &pod);
                run.2 = Some(
                    summary["outcome"]
                        .as_str()
                        .unwrap_or("no summary")
                        .to_string(),
                );
            }
        }
        let restarted = observer.restarted_at();
        if cell.eso_restarted.is_none() && restarted != restarted_before {
            cell.eso_restarted = restarted.as_deref().and_then(since_start);
        }
    };
    let mut ready_at: Option<Instant> = None;
    let mut polled = 0;
    loop {
        let now = Instant::now();
        if ready_at.is_none() && now >= back_at {
            stack.end(spec.outage);
            let at = Instant::now();
            cell.ready = secs(at);
            ready_at = Some(at);
        }
        if polled % 8 == 0 {
            poll(&mut cell);
        }
        polled += 1;
        let sample = observer.sample(secs(Instant::now()), &stack.bao, password, 0);
        let done = ready_at.is_some() && sample.synced && sample.store_ready && sample.es_ready;
        cell.samples.push(sample);
        if done || ready_at.is_some_and(|r| now > r + GIVE_UP) {
            std::thread::sleep(Duration::from_secs(2));
            poll(&mut cell);
            cell.samples
                .push(observer.sample(secs(Instant::now()), &stack.bao, password, 0));
            // The rest of any rollout (the webhook's and the cert controller's pods may be
            // replaced after the Secret synced), with the writer still writing.
            eso_pods::rolled_out(node, &stack.seed.namespace);
            let (writes, refused) = writer.stop();
            let after = eso_pods::Seen::now(node, &stack.seed.namespace);
            cell.cost = Some(Cost {
                replaced: after.new_since(&before),
                leader_changes: after.leader_changes_since(&before),
                writes,
                refused,
                most_runs,
                skipped: skipped_ticks(node, start_wall),
            });
            cell.ticks = runs
                .iter()
                .filter(|(_, t, _)| *t >= 0.0)
                .map(|(_, t, o)| (*t, o.clone().unwrap_or_else(|| "running".into())))
                .collect();
            eprintln!(
                "cell done: {} / {:?} / phase {:?}: synced {:?} s after Vault was ready",
                spec.tool(),
                spec.outage,
                spec.phase,
                cell.synced()
            );
            return cell;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn fmt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| format!("> {}", GIVE_UP.as_secs()), |s| format!("{s:.1}"))
}

/// The median and the worst of the cells' times (a give-up counts as the worst).
fn median_and_worst(cells: &[&Cell]) -> (Option<f64>, Option<f64>) {
    let mut times: Vec<Option<f64>> = cells.iter().map(|c| c.synced()).collect();
    times.sort_by(|a, b| match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(y),
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, None) => std::cmp::Ordering::Equal,
    });
    if times.is_empty() {
        return (None, None);
    }
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        match (times[n / 2 - 1], times[n / 2]) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            _ => None,
        }
    };
    (median, times[n - 1])
}

fn table(cells: &[Cell]) -> String {
    let mut out = String::from(
        "| outage | tool | Secret synced, s after Vault ready: median | worst | by phase (Vault back so many s after a tick) | ESO pods replaced | leader changes | writes refused by ESO's webhook | eso-recovery's pods at once, at most | ticks skipped |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut tools: Vec<(Place, u8, String)> = cells
        .iter()
        .filter(|c| c.spec.extra == 0)
        .map(|c| (c.spec.place, c.spec.arm as u8, c.spec.tool()))
        .collect();
    tools.sort();
    tools.dedup();
    for outage in [Outage::ShortSeal, Outage::RestartedSealed, Outage::CutPath] {
        for (_, _, tool) in &tools {
            let mut these: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.spec.outage == outage && c.spec.tool() == *tool && c.spec.extra == 0)
                .collect();
            if these.is_empty() {
                continue;
            }
            these.sort_by_key(|c| c.spec.phase);
            let (median, worst) = median_and_worst(&these);
            let phases: Vec<String> = these
                .iter()
                .map(|c| match c.spec.phase {
                    Some(p) => format!("{p} s: {}", fmt_secs(c.synced())),
                    None => format!("{} (no ticks)", fmt_secs(c.synced())),
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {tool} | **{}** | **{}** | {} | {} |",
                outage.title(),
                fmt_secs(median),
                fmt_secs(worst),
                phases.join(", "),
                costs(&these)
            );
        }
    }
    out
}

/// The cells' costs summed (the most pods at once: the most), as the table's last five columns
/// (`–` where not measured).
fn costs(cells: &[&Cell]) -> String {
    let measured: Vec<Cost> = cells.iter().filter_map(|c| c.cost).collect();
    if measured.len() < cells.len() {
        return "– | – | – | – | –".into();
    }
    let leader = measured
        .iter()
        .map(|c| c.leader_changes)
        .sum::<Option<i64>>()
        .map_or("– (one replica)".into(), |n| n.to_string());
    format!(
        "{} | {leader} | {} of {} | {} | {}",
        measured.iter().map(|c| c.replaced).sum::<usize>(),
        measured.iter().map(|c| c.refused).sum::<usize>(),
        measured.iter().map(|c| c.writes).sum::<usize>(),
        measured.iter().map(|c| c.most_runs).max().unwrap_or(0),
        measured.iter().map(|c| c.skipped).sum::<usize>()
    )
}

fn scale_table(cells: &[Cell]) -> String {
    let mut out = format!(
        "| {SCALE} ExternalSecrets (+1), all failed during a 3-min seal | last Secret synced, s after Vault ready | the design's Secret synced, s | Vault logins in the first 5 min | logins until the end |\n|---|---|---|---|---|\n"
    );
    for c in cells.iter().filter(|c| c.spec.extra > 0) {
        let (early, all) = c.logins.unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | **{}** | {} | {early} | {all} |",
            c.spec.tool(),
            fmt_secs(c.synced()),
            fmt_secs(c.recovered(|s| s.synced)),
        );
    }
    out
}

/// The timeline picture: for each cell, when Vault, the store and the ExternalSecret were ready
/// (green) or not (red), the moment Vault was ready (dashed), the tool's ticks (|) and ESO's
/// restart (◆).
fn svg(cells: &[&Cell]) -> String {
    let end = cells
        .iter()
        .flat_map(|c| c.samples.last())
        .map(|s| s.t)
        .fold(0.0_f64, f64::max)
        .ceil();
    let (left, width, lane, gap) = (230.0, 900.0, 14.0, 30.0);
    let x = |t: f64| left + t / end * width;
    let height = 40.0 + cells.len() as f64 * (3.0 * lane + gap) + 30.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14" font-weight="bold">From the outage to the Secret synced again (green: ready, red: not; dashed: Vault ready; | tick, ◆ ESO restarted)</text>
"#,
        w = left + width + 20.0
    );
    let mut y = 40.0;
    for c in cells {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{}</text><text x="10" y="{}">{}{}</text>"#,
            y + 12.0,
            c.spec.tool(),
            y + 28.0,
            c.spec.outage.short(),
            c.spec
                .phase
                .map_or(String::new(), |p| format!(", back {p} s after a tick"))
        );
        // The ExternalSecret is "ready" while it is Ready=True before Vault is back, and once
        // the Secret holds the password written before the outage after it.
        let ready_in_lane = |i: usize, smp: &Sample| match i {
            0 => smp.vault_ready,
            1 => smp.store_ready,
            _ if smp.t < c.ready => smp.es_ready,
            _ => smp.synced,
        };
        for (i, label) in ["Vault", "store", "ExternalSecret"].iter().enumerate() {
            let ly = y + i as f64 * lane;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end" font-size="10">{label}</text>"#,
                left - 4.0,
                ly + 10.0
            );
            let mut from = 0;
            for k in 1..c.samples.len() {
                let state = ready_in_lane(i, &c.samples[from]);
                let last = k == c.samples.len() - 1;
                if ready_in_lane(i, &c.samples[k]) == state && !last {
                    continue;
                }
                let colour = if state { "#3a3" } else { "#d33" };
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{ly}" width="{:.1}" height="{}" fill="{colour}"/>"#,
                    x(c.samples[from].t),
                    (x(c.samples[k].t) - x(c.samples[from].t)).max(0.5),
                    lane - 3.0
                );
                from = k;
            }
        }
        let bottom = y + 3.0 * lane;
        let _ = writeln!(
            s,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="black" stroke-dasharray="3,2"/>"#,
            x(c.ready),
            y - 3.0,
            bottom
        );
        for (t, _) in &c.ticks {
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#555"/>"##,
                x(*t),
                bottom,
                bottom + 6.0
            );
        }
        if let Some(t) = c.eso_restarted {
            let _ = writeln!(
                s,
                r#"<path d="M{0:.1},{1} l5,5 l-5,5 l-5,-5 z" fill="black"/>"#,
                x(t),
                bottom - 2.0
            );
        }
        y += 3.0 * lane + gap;
    }
    let minutes = (end / 60.0).floor() as u64;
    for m in 0..=minutes {
        let t = m as f64 * 60.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#999"/><text x="{0:.1}" y="{3}" text-anchor="middle" font-size="10">{m} min</text>"##,
            x(t),
            y - 8.0,
            y - 2.0,
            y + 10.0
        );
    }
    s.push_str("</svg>\n");
    s
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
