//! The headline figure: seconds from Vault's unseal until the Secret holds Vault's value again,
//! for ESO alone, the shell CronJob peer (`bench/peer.sh`) and eso-recovery, after a short seal
//! (the store stays Ready) and a long outage (Vault restarted, back sealed; the store degrades).
//!
//! Each of the six cells has its own real stack (control plane, OpenBao on raft, ESO's real
//! controller, the design's objects) and all run at once. A tool runs as a per-minute CronJob
//! would: a tick every 60 s, one of them 30 s after the unseal, the same for both tools. The
//! password is changed in Vault right after the unseal, so "synced" means ESO read Vault again.
//! Not part of the suite: `make bench-recovery` runs it, prints the table and writes the
//! timeline picture the README shows. Figures, no thresholds.

mod support;

use std::{
    fmt::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::Value;
use support::{
    controlplane::{bins, repo},
    kube_api::KubeApi,
    seed::Seed,
    stack::{Stack, ready_condition},
};

/// The ExternalSecret's refreshInterval: short enough that a 3-minute seal is noticed (the
/// design's `1h` would notice only the seals its refresh happens to fall in).
const ES_REFRESH: &str = "15s";
/// When the tool's first tick after the unseal comes (a per-minute CronJob's mean delay).
const TICK_OFFSET: Duration = Duration::from_secs(30);
const TICK_EVERY: Duration = Duration::from_secs(60);
/// Give up on a cell this long after the unseal (ESO's backoff cap is 7 minutes).
const GIVE_UP: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(250);
const NEW_PASSWORD: &str = "after-the-unseal";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// `sys/seal` for 3 minutes: the store is validated every 5 minutes, so it stays Ready.
    ShortSeal,
    /// The Vault process restarted (raft: back sealed), unsealed after 8 minutes.
    LongOutage,
}

impl Scenario {
    fn outage(self) -> Duration {
        match self {
            Scenario::ShortSeal => Duration::from_secs(180),
            Scenario::LongOutage => Duration::from_secs(480),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::ShortSeal => "short seal (3 min, store stays Ready)",
            Scenario::LongOutage => "Vault restarted, unsealed after 8 min (store degrades)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arm {
    EsoAlone,
    Peer,
    EsoRecovery,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::EsoAlone => "ESO alone",
            Arm::Peer => "shell peer (bench/peer.sh)",
            Arm::EsoRecovery => "eso-recovery",
        }
    }
}

/// One observation of the stack, in seconds from the outage's start.
#[derive(Clone, Debug)]
struct Sample {
    t: f64,
    vault_ready: bool,
    store_ready: bool,
    es_ready: bool,
    synced: bool,
}

/// What one cell saw.
struct Cell {
    scenario: Scenario,
    arm: Arm,
    /// The unseal, seconds from the outage's start.
    unseal: f64,
    samples: Vec<Sample>,
    /// Each tick of the tool: when, and its outcome.
    ticks: Vec<(f64, String)>,
}

impl Cell {
    /// The first time after the unseal at which `f` held (and kept holding to the end).
    fn recovered(&self, f: impl Fn(&Sample) -> bool) -> Option<f64> {
        let mut since = None;
        for s in self.samples.iter().filter(|s| s.t >= self.unseal) {
            match (f(s), since) {
                (true, None) => since = Some(s.t),
                (false, _) => since = None,
                _ => {}
            }
        }
        since.map(|t| t - self.unseal)
    }

    fn ever_false(&self, f: impl Fn(&Sample) -> bool) -> bool {
        self.samples.iter().any(|s| !f(s))
    }

    fn restart_tick(&self) -> Option<f64> {
        self.ticks
            .iter()
            .find(|(_, outcome)| outcome == "restarted")
            .map(|(t, _)| t - self.unseal)
    }
}

/// Reads the store, the ExternalSecret and the Secret as the admin, cheaply (no kubectl).
struct Observer {
    api: KubeApi,
    stores: Api<DynamicObject>,
    external_secrets: Api<DynamicObject>,
    secrets: Api<Secret>,
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
            api,
        }
    }

    fn sample(&self, t: f64, stack: &Stack) -> Sample {
        let ready = |o: Option<DynamicObject>| {
            o.map(|o| {
                ready_condition(&serde_json::to_value(o).unwrap_or(Value::Null))["status"] == "True"
            })
            .unwrap_or(false)
        };
        let (store, es, secret) = self.api.block_on(async {
            tokio::join!(
                self.stores.get_opt("k8s-secrets"),
                self.external_secrets.get_opt("postgres-secret"),
                self.secrets.get_opt("postgres-secret")
            )
        });
        let synced = secret
            .ok()
            .flatten()
            .and_then(|s| s.data?.get("POSTGRES_PASSWORD").cloned())
            .is_some_and(|v| v.0 == NEW_PASSWORD.as_bytes());
        Sample {
            t,
            vault_ready: stack.bao.health_code() == 200,
            store_ready: ready(store.ok().flatten()),
            es_ready: ready(es.ok().flatten()),
            synced,
        }
    }
}

/// One tick of the tool; its outcome in a word.
fn tick(arm: Arm, stack: &Stack) -> String {
    match arm {
        Arm::EsoAlone => unreachable!("ESO alone has no ticks"),
        Arm::EsoRecovery => stack.recover(&[]).outcome().to_string(),
        Arm::Peer => {
            let out = Command::new("/bin/sh")
                .arg(repo().join("bench/peer.sh"))
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", bins().display()))
                .env("HOME", std::env::temp_dir())
                .env("KUBECONFIG", &stack.cp.admin_kubeconfig)
                .env("VAULT_ADDR", &stack.bao.addr)
                .stdin(Stdio::null())
                .output()
                .expect("running bench/peer.sh");
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("restarting") && out.status.success() {
                "restarted".into()
            } else {
                text.lines().next().unwrap_or("no output").to_string()
            }
        }
    }
}

fn run_cell(scenario: Scenario, arm: Arm) -> Cell {
    let mut stack = Stack::start(Seed::with_real_eso(None, ES_REFRESH));
    let observer = Observer::new(&stack.cp.admin_kubeconfig);
    let start = Instant::now();
    let secs = |i: Instant| i.duration_since(start).as_secs_f64();
    match scenario {
        Scenario::ShortSeal => stack.bao.seal(),
        Scenario::LongOutage => stack.restart_vault_sealed(),
    }
    let unseal_at = start + scenario.outage();
    // Ticks on the per-minute grid through the outage too (they see Vault sealed).
    let mut next_tick = unseal_at + TICK_OFFSET;
    while next_tick > start + TICK_EVERY {
        next_tick -= TICK_EVERY;
    }
    let mut cell = Cell {
        scenario,
        arm,
        unseal: scenario.outage().as_secs_f64(),
        samples: Vec::new(),
        ticks: Vec::new(),
    };
    let mut unsealed = false;
    loop {
        let now = Instant::now();
        if !unsealed && now >= unseal_at {
            stack.bao.unseal();
            stack.rotate(NEW_PASSWORD);
            unsealed = true;
        }
        if arm != Arm::EsoAlone && now >= next_tick {
            let outcome = tick(arm, &stack);
            cell.ticks.push((secs(now), outcome));
            next_tick += TICK_EVERY;
        }
        let sample = observer.sample(secs(Instant::now()), &stack);
        let done = unsealed && sample.synced && sample.store_ready && sample.es_ready;
        cell.samples.push(sample);
        if done || now > unseal_at + GIVE_UP {
            // A little more, so the picture shows the end.
            std::thread::sleep(Duration::from_secs(2));
            cell.samples
                .push(observer.sample(secs(Instant::now()), &stack));
            return cell;
        }
        std::thread::sleep(POLL);
    }
}

fn fmt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| format!("> {}", GIVE_UP.as_secs()), |s| format!("{s:.1}"))
}

fn table(cells: &[Cell]) -> String {
    let mut out = String::new();
    for scenario in [Scenario::ShortSeal, Scenario::LongOutage] {
        let _ = writeln!(out, "\n{}:\n", scenario.title());
        out.push_str("| | store Ready, s after unseal | Secret synced, s after unseal | restart by the tool at | Secret synced, s after that run |\n|---|---|---|---|---|\n");
        for c in cells.iter().filter(|c| c.scenario == scenario) {
            let store = if c.ever_false(|s| s.store_ready) {
                fmt_secs(c.recovered(|s| s.store_ready))
            } else {
                "stayed Ready".into()
            };
            let synced = c.recovered(|s| s.synced);
            let restart = c.restart_tick();
            let _ = writeln!(
                out,
                "| {} | {store} | **{}** | {} | {} |",
                c.arm.name(),
                fmt_secs(synced),
                restart.map_or("—".into(), |t| format!("{t:.1} s")),
                match (restart, synced) {
                    (Some(r), Some(s)) => format!("{:.1}", s - r),
                    _ => "—".into(),
                }
            );
        }
    }
    out
}

/// The timeline picture: for each cell, when Vault, the store and the ExternalSecret were ready
/// (green) or not (red), the unseal, and the tool's ticks (a restart is a black diamond).
fn svg(cells: &[Cell]) -> String {
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
<text x="10" y="20" font-size="14" font-weight="bold">From the outage to the Secret synced again (green: ready, red: not; dashed: unseal; ◆ restart, | tick)</text>
"#,
        w = left + width + 20.0
    );
    let mut y = 40.0;
    for c in cells {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{}</text><text x="10" y="{}">{}</text>"#,
            y + 12.0,
            c.arm.name(),
            y + 28.0,
            match c.scenario {
                Scenario::ShortSeal => "3-min seal",
                Scenario::LongOutage => "8-min outage",
            }
        );
        // The ExternalSecret is "ready" while it is Ready=True before the unseal, and once the
        // Secret holds the password written at the unseal after it.
        let ready_in_lane = |i: usize, smp: &Sample| match i {
            0 => smp.vault_ready,
            1 => smp.store_ready,
            _ if smp.t < c.unseal => smp.es_ready,
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
            // One rectangle per stretch of the same state.
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
            x(c.unseal),
            y - 3.0,
            bottom
        );
        for (t, outcome) in &c.ticks {
            if outcome == "restarted" {
                let _ = writeln!(
                    s,
                    r#"<path d="M{0:.1},{1} l5,5 l-5,5 l-5,-5 z" fill="black"/>"#,
                    x(*t),
                    bottom - 2.0
                );
            } else {
                let _ = writeln!(
                    s,
                    r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#555"/>"##,
                    x(*t),
                    bottom,
                    bottom + 6.0
                );
            }
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

#[test]
#[ignore = "the recovery benchmark: make bench-recovery"]
fn time_from_unseal_to_the_secret_synced() {
    let mut handles = Vec::new();
    for scenario in [Scenario::ShortSeal, Scenario::LongOutage] {
        for arm in [Arm::EsoAlone, Arm::Peer, Arm::EsoRecovery] {
            handles.push(std::thread::spawn(move || run_cell(scenario, arm)));
            // Stagger the start-ups a little: six control planes at once on two cores.
            std::thread::sleep(Duration::from_secs(5));
        }
    }
    let cells: Vec<Cell> = handles
        .into_iter()
        .map(|h| h.join().expect("a benchmark cell failed"))
        .collect();
    println!(
        "\nTime from the unseal until the store is Ready and the Secret holds Vault's value \
         (ESO v0.16.2, OpenBao on raft, ExternalSecret refreshInterval {ES_REFRESH}, the design's store \
         with no refreshInterval; a tool tick every {}s, the first {}s after the unseal):",
        TICK_EVERY.as_secs(),
        TICK_OFFSET.as_secs()
    );
    println!("{}", table(&cells));
    for c in &cells {
        println!(
            "{} / {:?}: ticks {:?}",
            c.arm.name(),
            c.scenario,
            c.ticks
                .iter()
                .map(|(t, o)| format!("{:+.0}s {o}", t - c.unseal))
                .collect::<Vec<_>>()
        );
    }
    let picture = std::env::var_os("ESO_BENCH_TIMELINE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("docs/recovery-timeline.svg"));
    std::fs::write(&picture, svg(&cells)).expect("writing the timeline picture");
    println!("timeline written to {}", picture.display());
}
