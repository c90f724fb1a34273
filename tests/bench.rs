//! The benchmark: eso-recovery against `bench/peer.sh` (curl + kubectl), on the same real
//! control plane (over TLS, audit log on, kube-controller-manager finishing the rollouts of
//! 0-replica Deployments) and the same real OpenBao, in the same run. Not part of the suite:
//! `make bench` runs it and prints the tables for docs/benchmarks.md. Figures, no thresholds.

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::{
    process::controlplane::{ControlPlane, Options, bins},
    process::many::{Many, create_external_secrets},
    process::openbao::OpenBao,
    process::seed::Seed,
    standin::relay::Relay,
    tools::bench_docs,
    tools::repo::repo,
};
use serde_json::json;

/// Timed runs per side and path in the main table.
const RUNS: usize = 15;
/// Runs per cell under GNU time for the peak RSS (the largest of them is reported).
const RSS_RUNS: usize = 3;
/// Timed runs per side in the scaling table (kubectl restarting 100 Deployments takes ~40 s a run:
/// its client-side rate limit is 5 requests a second, burst 10).
const SCALING_RUNS: usize = 3;

/// One measured process: wall time and CPU time (user + system, descendants included).
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// A command line and its environment.
struct Side {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Side {
    /// The same side with its kubeconfig pointing at `relay` in front of `cp`'s API server.
    fn through(&self, relay: &Relay, cp: &ControlPlane) -> Side {
        let relayed = relay.addr.replace("http://", "https://");
        let kubeconfig = std::fs::read_to_string(&cp.admin_kubeconfig)
            .expect("reading the admin kubeconfig")
            .replace(&cp.server, &relayed);
        let path = cp.admin_kubeconfig.with_extension("relayed");
        std::fs::write(&path, kubeconfig).expect("writing the relayed kubeconfig");
        let mut side = Side {
            name: self.name,
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
        };
        for (k, v) in &mut side.env {
            if k == "KUBECONFIG" {
                *v = path.display().to_string();
            }
        }
        side
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs once and returns the summary line (JSON).
    fn summary(&self) -> serde_json::Value {
        let out = self
            .command()
            .stdout(Stdio::piped())
            .output()
            .expect("running the benchmarked command");
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_default()
    }

    /// Runs once, measuring with wait4 (rusage of the process and its reaped descendants).
    #[allow(clippy::zombie_processes, reason = "wait4 reaps the child")]
    fn measure(&self) -> Sample {
        let start = Instant::now();
        let child = self
            .command()
            .spawn()
            .expect("starting the benchmarked command");
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 on our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        let wall = start.elapsed();
        assert_eq!(pid, child.id() as i32, "wait4 failed");
        let code = std::process::ExitStatus::from_raw(status).code();
        assert!(matches!(code, Some(0 | 1)), "{} exited {code:?}", self.name);
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Sample {
            wall,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        }
    }

    /// Peak RSS in KiB of one run, from GNU time's `%M` (the largest of the process and its
    /// descendants). Not from our own wait4: a child forked from this large test process starts
    /// with its resident pages counted, and exec keeps that high-water mark, so any program
    /// spawned from here reports at least the harness's RSS. GNU time forks from its own small
    /// image, so the figure is the program's.
    fn peak_rss_kib(&self) -> u64 {
        let out = tempfile::NamedTempFile::new().expect("a file for GNU time's report");
        let c = self.command();
        let status = Command::new(GNU_TIME)
            .args(["--format=%M", "--output"])
            .arg(out.path())
            .arg(c.get_program())
            .args(c.get_args())
            .env_clear()
            .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running the benchmarked command under GNU time (Debian package time)");
        let code = status.code();
        assert!(matches!(code, Some(0 | 1)), "{} exited {code:?}", self.name);
        let report = std::fs::read_to_string(out.path()).expect("GNU time's report");
        report
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("GNU time's report is not a number: {report:?}"))
    }
}

/// GNU time (`bench/run.sh` installs Debian's package `time`).
const GNU_TIME: &str = "/usr/bin/time";

/// Median and range of the samples.
struct Stats {
    wall: (Duration, Duration, Duration),
    cpu: Duration,
    rss_mib: f64,
    requests: usize,
    /// The TCP (TLS) connections the run opened to the API server.
    connections: usize,
}

fn stats(mut samples: Vec<Sample>, rss_kib: u64, requests: usize, connections: usize) -> Stats {
    samples.sort_by_key(|s| s.wall);
    let wall = (
        samples[0].wall,
        samples[samples.len() / 2].wall,
        samples[samples.len() - 1].wall,
    );
    let mut cpu: Vec<Duration> = samples.iter().map(|s| s.cpu).collect();
    cpu.sort();
    Stats {
        wall,
        cpu: cpu[cpu.len() / 2],
        rss_mib: rss_kib as f64 / 1024.0,
        requests,
        connections,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The API requests `side` made since audit line `from`, told apart by User-Agent
/// (`eso-recovery/…` or `kubectl/…`) from the API server's and the controller manager's own.
fn requests_since(cp: &ControlPlane, from: usize, side: &Side) -> usize {
    std::thread::sleep(Duration::from_secs(1));
    let prefix = if side.name == "peer" {
        "kubectl/"
    } else {
        "eso-recovery/"
    };
    cp.audit_lines()[from..]
        .iter()
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .unwrap_or_default()
                .starts_with(prefix)
        })
        .count()
}

/// Measures one path on one side: a warm-up, then `runs` timed runs, each after `prepare`; the
/// API requests are counted for the last one; then `RSS_RUNS` runs under GNU time, each after
/// `prepare`, for the peak RSS; then one more through `relay` (untimed: the relay's copying
/// would add to the time) for the connections a run opens to the API server.
fn bench(cp: &ControlPlane, relay: &Relay, side: &Side, runs: usize, prepare: &dyn Fn()) -> Stats {
    prepare();
    let _ = side.command().status();
    let mut samples = Vec::new();
    let mut before = 0;
    for _ in 0..runs {
        prepare();
        before = cp.audit_lines().len();
        samples.push(side.measure());
    }
    let requests = requests_since(cp, before, side);
    if std::env::var_os("ESO_BENCH_TRACE").is_some() {
        print_server_times(cp, before, side.name);
    }
    let rss_kib = (0..RSS_RUNS)
        .map(|_| {
            prepare();
            side.peak_rss_kib()
        })
        .max()
        .unwrap_or(0);
    prepare();
    let before = relay.connections();
    let _ = side.through(relay, cp).command().status();
    stats(samples, rss_kib, requests, relay.connections() - before)
}

/// The API server's own time for each request of the last run (from the audit log), to tell the
/// server's share of a run from the client's.
fn print_server_times(cp: &ControlPlane, from: usize, name: &str) {
    for e in &cp.audit_lines()[from..] {
        if !e["userAgent"]
            .as_str()
            .unwrap_or_default()
            .starts_with("eso-recovery/")
        {
            continue;
        }
        let t = |k: &str| {
            e[k].as_str()
                .and_then(|v| v.parse::<jiff::Timestamp>().ok())
        };
        if let (Some(a), Some(b)) = (t("requestReceivedTimestamp"), t("stageTimestamp")) {
            let ms = (b - a).total(jiff::Unit::Millisecond).unwrap_or(0.0);
            println!(
                "{name}: {} {} {ms:.1} ms at the server, received {a}",
                e["verb"], e["requestURI"]
            );
        }
    }
}

struct Setup<'a> {
    cp: &'a ControlPlane,
    scratch: &'a Path,
    relay: &'a Relay,
}

impl Setup<'_> {
    /// One path on both sides, eso-recovery first: each timed run after `prepare`, the peer's
    /// with its kubectl cache wiped too (a fresh Job pod has none).
    fn both(
        &self,
        vault: &str,
        seed: &Seed,
        stores: &[String],
        runs: usize,
        prepare: &dyn Fn(),
    ) -> (Stats, Stats) {
        let eso = self.eso(vault, seed, stores);
        let e = bench(self.cp, self.relay, &eso, runs, prepare);
        let peer = self.peer(vault, seed, stores);
        let p = bench(self.cp, self.relay, &peer, runs, &|| {
            prepare();
            self.wipe_cache();
        });
        (e, p)
    }

    fn eso(&self, vault: &str, seed: &Seed, stores: &[String]) -> Side {
        Side {
            name: "eso-recovery",
            program: PathBuf::from(env!("CARGO_BIN_EXE_eso-recovery")),
            args: vec![
                format!("--vault-addr={vault}"),
                format!("--namespace={}", seed.namespace),
                format!("--store={}", stores.join(",")),
                format!("--deployments={}", seed.deployments.join(",")),
                "--cooldown=0s".into(),
                "--log-format=json".into(),
            ],
            env: vec![(
                "KUBECONFIG".into(),
                self.cp.admin_kubeconfig.display().to_string(),
            )],
        }
    }

    fn peer(&self, vault: &str, seed: &Seed, stores: &[String]) -> Side {
        let path = format!("{}:/usr/bin:/bin", bins().display());
        Side {
            name: "peer",
            program: PathBuf::from("/bin/sh"),
            args: vec![repo().join("bench/peer.sh").display().to_string()],
            env: vec![
                ("PATH".into(), path),
                (
                    "HOME".into(),
                    self.scratch.join("peer-home").display().to_string(),
                ),
                (
                    "KUBECONFIG".into(),
                    self.cp.admin_kubeconfig.display().to_string(),
                ),
                ("VAULT_ADDR".into(), vault.into()),
                ("NAMESPACE".into(), seed.namespace.clone()),
                ("STORES".into(), stores.join(" ")),
                ("DEPLOYMENTS".into(), seed.deployments.join(" ")),
            ],
        }
    }

    /// A fresh pod has no kubectl discovery cache: wipe it before every peer run.
    fn wipe_cache(&self) {
        let _ = std::fs::remove_dir_all(self.scratch.join("peer-home/.kube/cache"));
    }

    /// Waits until the controller manager has observed every Deployment's latest generation.
    fn settle(&self, seed: &Seed) {
        let template = "{{range .items}}{{if lt .status.observedGeneration .metadata.generation}}x{{end}}{{end}}";
        harness::tools::procs::wait_until("rollouts observed", Duration::from_secs(60), || {
            let out = self.cp.kubectl(&[
                "get",
                "deployments",
                "-n",
                &seed.namespace,
                "-o",
                &format!("go-template={template}"),
            ]);
            out.trim().is_empty()
        });
    }
}

fn seed_with(cp: &ControlPlane, namespace: &str, deployments: usize) -> Seed {
    let mut names: Vec<String> = harness::process::seed::DEPLOYMENTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend((names.len()..deployments).map(|i| format!("app-{i:03}")));
    names.truncate(deployments);
    let seed = Seed {
        namespace: namespace.into(),
        store: format!("store-{namespace}"),
        deployments: names,
        replicas: 0,
        ..Seed::own(namespace)
    };
    seed.apply(cp);
    seed
}

fn ready_stores(cp: &ControlPlane, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:02}")).collect();
    let yaml: Vec<String> = names
        .iter()
        .map(|name| {
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
                "metadata": {"name": name}, "spec": {"provider": {"fake": {"data": []}}}})
            .to_string()
        })
        .collect();
    cp.apply(&yaml.join("\n---\n"));
    for name in &names {
        let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Valid",
            "message": "store validated", "lastTransitionTime": "2026-12-01T10:00:00Z"}]}});
        cp.kubectl(&[
            "patch",
            "clustersecretstore",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ]);
    }
    names
}

fn row(path: &str, eso: &Stats, peer: &Stats) -> String {
    format!(
        "| {path} | {} ({}–{}) | {} ({}–{}) | {:.3} | {} / {} | {:.1} / {:.1} | {} / {} | {} / {} |",
        ms(eso.wall.1),
        ms(eso.wall.0),
        ms(eso.wall.2),
        ms(peer.wall.1),
        ms(peer.wall.0),
        ms(peer.wall.2),
        eso.wall.1.as_secs_f64() / peer.wall.1.as_secs_f64(),
        ms(eso.cpu),
        ms(peer.cpu),
        eso.rss_mib,
        peer.rss_mib,
        eso.requests,
        peer.requests,
        eso.connections,
        peer.connections,
    )
}

#[test]
#[ignore = "the benchmark: make bench"]
fn eso_recovery_against_the_shell_peer() {
    let scratch = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start_with(Options {
        controller_manager: true,
        audit: true,
        ..Options::default()
    });
    // In front of the API server for one untimed run of each cell: the connections a run opens.
    let api_port = cp
        .server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the API server's port");
    let relay = Relay::start(api_port);
    let setup = Setup {
        cp: &cp,
        scratch: scratch.path(),
        relay: &relay,
    };
    let bao = OpenBao::dev();
    let sealed = OpenBao::dev();
    sealed.seal();

    let seed = seed_with(&cp, "bench", 3);
    setup.settle(&seed);
    let stores = vec![seed.store.clone()];
    let mut table = vec![
        "| path | eso-recovery wall ms, median (min–max) | peer wall ms, median (min–max) | ratio | CPU ms eso / peer | peak RSS MiB eso / peer | API requests eso / peer | API connections (TLS) eso / peer |".to_string(),
        "|---|---|---|---|---|---|---|---|".to_string(),
    ];

    // 1. Vault sealed, store degraded: both exit after the health check.
    seed.set_store(&cp, false);
    let (e, p) = setup.both(&sealed.addr, &seed, &stores, RUNS, &|| {});
    table.push(row("Vault sealed", &e, &p));

    // 2. Healthy: the every-minute path.
    seed.set_store(&cp, true);
    let (e, p) = setup.both(&bao.addr, &seed, &stores, RUNS, &|| {});
    table.push(row("healthy", &e, &p));

    // 3. Degraded: every run restarts the three Deployments.
    seed.set_store(&cp, false);
    let (e, p) = setup.both(&bao.addr, &seed, &stores, RUNS, &|| setup.settle(&seed));
    table.push(row("restart (3 Deployments)", &e, &p));
    println!("\n{}", table.join("\n"));
    bench_docs::publish(
        "bench:main",
        "make bench",
        &format!("{RUNS} runs per cell:\n\n{}", table.join("\n")),
    );
    // ESO_BENCH_ONLY=main: this table alone (minutes, where the rest takes most of an hour).
    if std::env::var("ESO_BENCH_ONLY").is_ok_and(|v| v == "main") {
        return;
    }

    // Scaling: the restart path with more Deployments, the healthy path with more stores.
    let mut scaling = vec![
        "| path | eso-recovery wall ms, median | peer wall ms, median | ratio | API requests eso / peer |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    // ESO_BENCH_SCALING=0 skips the scaling table (a quick look at the main one).
    let scale = std::env::var("ESO_BENCH_SCALING").map_or(true, |v| v != "0");
    let (deployment_counts, store_counts): (&[usize], &[usize]) = if scale {
        (&[3, 30, 100], &[1, 10, 50])
    } else {
        (&[], &[])
    };
    for &n in deployment_counts {
        let seed = seed_with(&cp, &format!("scale-{n}"), n);
        seed.set_store(&cp, false);
        setup.settle(&seed);
        let stores = vec![seed.store.clone()];
        let (e, p) = setup.both(&bao.addr, &seed, &stores, SCALING_RUNS, &|| {
            setup.settle(&seed)
        });
        scaling.push(format!(
            "| restart, {n} Deployments | {} | {} | {:.3} | {} / {} |",
            ms(e.wall.1),
            ms(p.wall.1),
            e.wall.1.as_secs_f64() / p.wall.1.as_secs_f64(),
            e.requests,
            p.requests
        ));
    }
    for &n in store_counts {
        let stores = ready_stores(&cp, &format!("many-{n}"), n);
        let (e, p) = setup.both(&bao.addr, &seed, &stores, SCALING_RUNS, &|| {});
        scaling.push(format!(
            "| healthy, {n} stores | {} | {} | {:.3} | {} / {} |",
            ms(e.wall.1),
            ms(p.wall.1),
            e.wall.1.as_secs_f64() / p.wall.1.as_secs_f64(),
            e.requests,
            p.requests
        ));
    }

    // The run that lists the ExternalSecrets: Vault on raft became active just now, the store is
    // Ready, ESO not restarted since; none of them is stuck, so every run lists them all.
    let raft = OpenBao::raft();
    // 10,000 shows the list staying a page at a time (peak RSS).
    let es_counts: &[usize] = if scale {
        &[100, 1000, 10_000]
    } else {
        &[1000, 10_000]
    };
    let mut listing = vec![
        "| path | eso-recovery wall ms, median (min–max) | CPU ms | peak RSS MiB | API requests |"
            .to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    for &n in es_counts {
        let seed = seed_with(&cp, &format!("es-{n}"), 3);
        setup.settle(&seed);
        create_external_secrets(
            &cp,
            &Many {
                store: &seed.store,
                namespace: &format!("{}-apps", seed.namespace),
                refresh: "1h",
                key: None,
                synced_status: true,
            },
            n,
        );
        let side = setup.eso(&raft.addr, &seed, std::slice::from_ref(&seed.store));
        // All namespaces: these and the seed's own postgres-secret.
        let listed = side.summary();
        assert_eq!(
            listed["external_secrets"]["listed"].as_u64(),
            Some(n as u64 + 1),
            "the run did not list the ExternalSecrets: {listed}"
        );
        let e = bench(&cp, &relay, &side, RUNS, &|| {});
        listing.push(format!(
            "| Vault active < 14 min, store Ready: {n} ExternalSecrets (+1) listed, none stuck | {} ({}–{}) | {} | {:.1} | {} |",
            ms(e.wall.1),
            ms(e.wall.0),
            ms(e.wall.2),
            ms(e.cpu),
            e.rss_mib,
            e.requests
        ));
        // One DELETE of the collection: `kubectl delete --all` sends one request per object at
        // kubectl's 5 a second (half an hour for 10,000).
        cp.kubectl(&[
            "delete",
            "--raw",
            &format!(
                "/apis/external-secrets.io/v1/namespaces/{}-apps/externalsecrets",
                seed.namespace
            ),
        ]);
    }

    let binary = PathBuf::from(env!("CARGO_BIN_EXE_eso-recovery"));
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let ldd = Command::new("ldd")
        .arg(&binary)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let libs: Vec<&str> = ldd
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();

    println!(
        "\n## Benchmark ({} runs per cell, {})\n",
        RUNS,
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    );
    println!("{}", table.join("\n"));
    println!("\n{}", scaling.join("\n"));
    println!("\n{}", listing.join("\n"));
    if scale {
        bench_docs::publish("bench:scaling", "make bench", &scaling.join("\n"));
    }
    bench_docs::publish("bench:listing", "make bench", &listing.join("\n"));
    println!(
        "\nbinary: {:.2} MiB stripped ({} bytes); dynamic libraries: {}",
        size as f64 / 1048576.0,
        size,
        libs.join(", ")
    );
    // The image, built from the Dockerfile by buildah.
    let image = harness::tools::image::built();
    println!(
        "image (the Dockerfile, built by buildah: the static binary and {}): {:.2} MiB pushed, {:.2} MiB unpacked",
        image.files().join(", "),
        image.compressed as f64 / 1048576.0,
        harness::tools::image::size(image.rootfs()) as f64 / 1048576.0
    );
}
