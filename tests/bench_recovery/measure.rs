//! Playing the cells and watching them: the outage on a node or a process stack, Vault back at
//! its phase, the Secret, the store, the ExternalSecret and the runs observed until it synced,
//! and what the recovery cost (pods replaced, leader changes, writes refused, runs at once).

use super::*;

/// The CronJob's Events since `since` that say a tick was skipped (a Job still active under
/// `Forbid`) or missed (not started within `startingDeadlineSeconds`).
pub(super) fn skipped_ticks(node: &Node, since: jiff::Timestamp) -> usize {
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
pub(super) struct Writer {
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

/// Reads the store, the ExternalSecret and the Secrets as the admin, cheaply (no kubectl).
pub(super) struct Observer {
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
pub(super) fn cronjob_env(stack: &Stack) -> Vec<(String, String)> {
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
pub(super) fn tick(arm: Arm, stack: &Stack, env: &[(String, String)]) -> JoinHandle<String> {
    match arm {
        Arm::EsoAlone => unreachable!("ESO alone has no ticks"),
        Arm::EsoRecovery => {
            let kubeconfig = stack.recovery_kubeconfig.clone();
            let env = env.to_vec();
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let run: Run = harness::run::eso(Some(&kubeconfig), &[], &env);
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
pub(super) fn force_sync_all(stack: &Stack, n: usize) {
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
            let name = harness::process::many::name(i);
            es.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap_or_else(|e| panic!("force-syncing {name}: {e}"));
        }
    }));
}

pub(super) fn run_cell(spec: Spec) -> Cell {
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
        harness::tools::procs::wait_until(
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
    // The ticks whose runs are still going on: as the chart's CronJob (`concurrencyPolicy:
    // Allow`), a tick starts a run even while the last one awaits Vault.
    let mut running: Vec<(f64, JoinHandle<String>)> = Vec::new();
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
        let (ended, going): (Vec<_>, Vec<_>) =
            running.drain(..).partition(|(_, h)| h.is_finished());
        running = going;
        for (t, h) in ended {
            cell.ticks
                .push((t, h.join().unwrap_or_else(|_| "panicked".into())));
        }
        if let Some(t) = next_tick.filter(|t| now >= *t) {
            running.push((secs(now), tick(spec.arm, &stack, &env)));
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
            for (t, h) in running.drain(..) {
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

/// One node for `group` (ESO installed for its place; eso-recovery's chart unless it is ESO
/// alone), its cells played one after another.
pub(super) fn run_node_group(group: Vec<Spec>) -> Vec<Cell> {
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
pub(super) fn to_phase(at: jiff::Timestamp, phase: Option<u64>) -> Duration {
    let Some(phase) = phase else {
        return Duration::ZERO;
    };
    let into_minute = at.as_millisecond().rem_euclid(60_000) as u64;
    Duration::from_millis((phase * 1000 + 60_000 - into_minute) % 60_000)
}

/// One cell on the node: the new password, then the outage, held for its length and until
/// `phase` seconds after a tick of the CronJob; then Vault back, and the wait for the Secret.
pub(super) fn run_node_cell(
    stack: &NodeStack,
    observer: &Observer,
    spec: Spec,
    password: &str,
) -> Cell {
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
