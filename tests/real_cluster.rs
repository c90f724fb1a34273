//! The built binary against a real kube-apiserver (RBAC and PodSecurity admission on, ESO's real
//! CRDs) and a real OpenBao. One control plane serves the whole file; tests that need the design's
//! exact names (`security`, `k8s-secrets`) take turns, the others use their own namespace.

use std::{path::Path, sync::Mutex, time::Duration};

use harness::{
    process::controlplane::ControlPlane, process::openbao::OpenBao, process::seed::Seed, run::eso,
    run::expect, run::expect_error, tools::repo::repo,
};

/// Serialises the tests that use the design's own names.
static DESIGN: Mutex<()> = Mutex::new(());

fn design_lock() -> std::sync::MutexGuard<'static, ()> {
    DESIGN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The design's objects and manifests/ on the shared control plane, never restarted yet, with no
/// Event of eso-recovery's and claimed by no run; the guard keeps other design tests out until it
/// drops.
fn design() -> (
    std::sync::MutexGuard<'static, ()>,
    &'static ControlPlane,
    Seed,
) {
    let guard = design_lock();
    let cp = ControlPlane::shared();
    let seed = Seed::design();
    seed.apply(cp);
    apply_manifests(cp);
    seed.set_restarted_at(cp, None);
    // No Event left by an earlier test's restarts: a test asserts on the Events its runs write.
    cp.kubectl(&[
        "delete",
        "events.v1.events.k8s.io",
        "-n",
        "security",
        "--all",
    ]);
    // No claim left by an earlier test: it could hold off this one's runs for its bound.
    forget(
        cp,
        &[
            "eso-recovery/claimed-for",
            "eso-recovery/claimed-by",
            "eso-recovery/claimed-at",
        ],
    );
    (guard, cp, seed)
}

/// The record's outage: when a run saw Vault not ready, and ready again.
const OUTAGE_SEEN: [&str; 2] = [
    "eso-recovery/vault-not-ready-since",
    "eso-recovery/vault-ready-again-at",
];

/// Removes these annotations from the record (the Lease `eso-recovery` in `security`).
fn forget(cp: &ControlPlane, keys: &[&str]) {
    let mut args = vec!["annotate", "lease", "eso-recovery", "-n", "security"];
    let removals: Vec<String> = keys.iter().map(|k| format!("{k}-")).collect();
    args.extend(removals.iter().map(String::as_str));
    cp.kubectl(&args);
}

/// A store eso-recovery does not watch.
const OTHER_STORE: &str = "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata:\n  name: other-store\nspec:\n  provider:\n    fake:\n      data: []\n";

/// A Deployment in ESO's namespace that is not ESO's.
const OTHER_APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other-app\n  namespace: security\nspec:\n  replicas: 0\n  selector:\n    matchLabels: {app: other}\n  template:\n    metadata:\n      labels: {app: other}\n    spec:\n      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n      containers:\n      - name: c\n        image: busybox\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";

fn admin(cp: &ControlPlane) -> Option<&Path> {
    Some(cp.admin_kubeconfig.as_path())
}

/// Runs eso-recovery as the admin against a seed and a Vault.
fn run(cp: &ControlPlane, seed: &Seed, bao: &OpenBao, extra: &[&str]) -> harness::run::Run {
    // A flag given in `extra` replaces the seed's (clap appends repeated list flags).
    let overridden = |a: &String| {
        extra
            .iter()
            .any(|e| e.split('=').next() == a.split('=').next())
    };
    let mut args: Vec<String> = seed.args().into_iter().filter(|a| !overridden(a)).collect();
    args.push(format!("--vault-addr={}", bao.addr));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    eso(admin(cp), &args, &[])
}

fn apply_manifests(cp: &ControlPlane) {
    cp.apply_kustomize(&repo().join("manifests"));
}

#[test]
fn manifests_apply_cleanly_with_no_pod_security_warning() {
    let _g = design_lock();
    let cp = ControlPlane::shared();
    Seed::design().apply(cp);
    let dir = repo().join("manifests").display().to_string();
    for extra in [&["--dry-run=server"][..], &[][..]] {
        let mut args = vec!["apply", "-k", &dir];
        args.extend_from_slice(extra);
        let out = cp.kubectl_output(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubectl {args:?}: {stderr}");
        assert!(
            !stderr.contains("Warning"),
            "kubectl {args:?} warned: {stderr}"
        );
    }
    let cronjob = cp.get_json(&["cronjob", "eso-recovery", "-n", "security"]);
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        format!(
            "{}:{}",
            harness::tools::release::published_image(),
            env!("CARGO_PKG_VERSION")
        )
        .as_str()
    );

    // The check can fail: the same namespace warns about a pod template that is not restricted.
    let bad = r#"{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"not-restricted","namespace":"security"},
      "spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never",
      "containers":[{"name":"c","image":"busybox"}]}}}}}}"#;
    let path = std::env::temp_dir().join(format!("bad-cronjob-{}.json", std::process::id()));
    std::fs::write(&path, bad).unwrap();
    let out = cp.kubectl_output(&[
        "apply",
        "--dry-run=server",
        "-f",
        &path.display().to_string(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would violate PodSecurity \"restricted"),
        "no PodSecurity warning for an unrestricted pod: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn least_privilege_identity_runs_and_is_refused_everything_else() {
    let (_g, cp, seed) = design();
    cp.apply(OTHER_STORE);
    cp.apply(OTHER_APP);
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    cp.assert_least_privilege(&sa);

    let bao = OpenBao::dev();
    // Healthy, as the ServiceAccount.
    let healthy = eso(Some(&sa), &[&format!("--vault-addr={}", bao.addr)], &[]);
    expect(&healthy, 0, "store_healthy");

    // Degraded: a dry run as the ServiceAccount proves RBAC and admission accept the patches.
    seed.set_store(cp, false);
    let dry = eso(
        Some(&sa),
        &[&format!("--vault-addr={}", bao.addr), "--dry-run"],
        &[],
    );
    expect(&dry, 0, "would_restart");
    assert_eq!(
        seed.restarted_at(cp),
        vec![None, None, None],
        "a dry run changed the Deployments"
    );
    assert!(seed.events(cp).is_empty(), "a dry run wrote Events");

    // Another Deployment in the list is refused by RBAC: exit 1 naming it, the others restarted.
    let other = eso(
        Some(&sa),
        &[
            &format!("--vault-addr={}", bao.addr),
            "--deployments=external-secrets,other-app",
        ],
        &[],
    );
    expect_error(&other, 1, "restart_failed", "security/other-app: HTTP 403");
    assert!(seed.restarted_at(cp)[0].is_some());
    seed.set_store(cp, true);
    seed.set_restarted_at(cp, None);

    // Another store is refused to this identity: exit 1 naming the store.
    let store = eso(
        Some(&sa),
        &[&format!("--vault-addr={}", bao.addr), "--store=other-store"],
        &[],
    );
    expect_error(
        &store,
        1,
        "store_read_failed",
        "reading ClusterSecretStore other-store: HTTP 403",
    );
}

#[test]
fn the_resync_identity_may_change_only_its_annotation() {
    // Its own control plane: manifests/resync's policy and RBAC would change the shared one's.
    let cp = ControlPlane::start(false);
    let seed = Seed::design();
    seed.apply(&cp);
    cp.apply(OTHER_STORE);
    cp.apply_kustomize(&repo().join("manifests").join("resync"));
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    cp.wait_for_resync_guard(&sa, "k8s-secrets", true);
    cp.assert_resync_least_privilege(&sa);
    // What the restart identity may not do, this one may not either.
    cp.apply(OTHER_APP);
    cp.assert_least_privilege(&sa);
}

#[test]
fn recovery_after_a_vault_restart_with_raft_storage() {
    let (_g, cp, seed) = design();
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    let mut bao = OpenBao::raft();
    let addr = format!("--vault-addr={}", bao.addr);
    let as_sa = |extra: &[&str]| {
        let mut args = vec![addr.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        eso(Some(&sa), &args, &[])
    };

    // Unsealed and Ready: nothing.
    expect(&as_sa(&[]), 0, "store_healthy");

    // Sealed and degraded: nothing while Vault is sealed.
    bao.seal();
    seed.set_store(cp, false);
    let sealed = as_sa(&[]);
    expect(&sealed, 0, "vault_not_ready");
    assert_eq!(sealed.summary["vault"], "sealed");

    // The process restarts and comes back sealed (503): still nothing.
    bao.restart();
    bao.wait_code(503);
    expect(&as_sa(&[]), 0, "vault_not_ready");
    assert_eq!(seed.restarted_at(cp), vec![None, None, None]);

    // Unsealed: restart all three, with Events saying why.
    bao.unseal();
    let before = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap();
    let restart = as_sa(&[]);
    expect(&restart, 0, "restarted");
    for (name, at) in seed.deployments.iter().zip(seed.restarted_at(cp)) {
        let at: jiff::Timestamp = at
            .unwrap_or_else(|| panic!("{name} has no restartedAt"))
            .parse()
            .unwrap();
        assert!(
            at >= before - jiff::SignedDuration::from_secs(1),
            "{name}: restartedAt {at} is not fresh"
        );
    }
    let events = seed.events(cp);
    for name in &seed.deployments {
        let e = events
            .iter()
            .find(|e| e["regarding"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no Event on {name}: {events:?}"));
        assert_eq!(e["type"], "Normal");
        assert_eq!(e["reason"], "Restarted");
        let note = e["note"].as_str().unwrap();
        assert!(
            note.contains("ClusterSecretStore k8s-secrets is degraded (InvalidProviderConfig"),
            "{note}"
        );
        assert!(note.contains("Vault is active"), "{note}");
    }

    // The next run, a minute later in real life, is inside the cooldown.
    seed.complete_rollouts(cp);
    let again = as_sa(&[]);
    expect(&again, 0, "cooldown");
    assert!(
        again.summary["reasons"]
            .to_string()
            .contains("next restart or resync possible at"),
        "{}",
        again.dump()
    );
    seed.set_store(cp, true);
    seed.set_restarted_at(cp, None);
}

#[test]
fn decision_table_against_the_real_api_server() {
    let cp = ControlPlane::shared();
    let seed = Seed::own("table");
    seed.apply(cp);
    let bao = OpenBao::dev();

    expect(&run(cp, &seed, &bao, &[]), 0, "store_healthy");

    seed.set_store(cp, false);
    let restart = run(cp, &seed, &bao, &[]);
    expect(&restart, 0, "restarted");
    assert!(seed.restarted_at(cp).iter().all(Option::is_some));

    // Right after: the rollout has not been observed yet, and the cooldown runs.
    expect(&run(cp, &seed, &bao, &[]), 0, "cooldown");
    let rolling = run(cp, &seed, &bao, &["--cooldown=0s"]);
    expect(&rolling, 0, "rollout_in_progress");
    assert!(
        rolling.summary["reasons"]
            .to_string()
            .contains("waiting for the rollout to be observed"),
        "{}",
        rolling.dump()
    );

    // --force ignores the cooldown and the rollout.
    expect(&run(cp, &seed, &bao, &["--force"]), 0, "restarted");

    // An old restart is outside the cooldown.
    seed.set_restarted_at(cp, Some("2020-01-01T00:00:00Z"));
    expect(&run(cp, &seed, &bao, &["--dry-run"]), 0, "would_restart");
    assert!(
        seed.restarted_at(cp)
            .iter()
            .all(|a| a.as_deref() == Some("2020-01-01T00:00:00Z"))
    );

    // Unparsable and future annotations.
    seed.set_restarted_at(cp, Some("not-a-time"));
    let unparsable = run(cp, &seed, &bao, &["--dry-run"]);
    expect(&unparsable, 0, "would_restart");
    assert!(
        unparsable
            .stderr
            .contains("unparsable restartedAt annotation"),
        "{}",
        unparsable.dump()
    );
    seed.set_restarted_at(cp, Some("2099-01-01T00:00:00Z"));
    expect(&run(cp, &seed, &bao, &["--dry-run"]), 0, "cooldown");

    // A paused Deployment is refused like kubectl does; the others are restarted.
    seed.set_restarted_at(cp, None);
    cp.kubectl(&[
        "patch",
        "deployment",
        "external-secrets-webhook",
        "-n",
        &seed.namespace,
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    seed.complete_rollouts(cp);
    let paused = run(cp, &seed, &bao, &[]);
    expect_error(&paused, 1, "restart_failed", "paused");
    let at = seed.restarted_at(cp);
    assert!(
        at[0].is_some() && at[1].is_none() && at[2].is_some(),
        "{at:?}"
    );
    let warnings: Vec<_> = seed
        .events(cp)
        .into_iter()
        .filter(|e| e["type"] == "Warning")
        .collect();
    assert!(
        warnings
            .iter()
            .any(|e| e["regarding"]["name"] == "external-secrets-webhook"),
        "{warnings:?}"
    );
    cp.kubectl(&[
        "patch",
        "deployment",
        "external-secrets-webhook",
        "-n",
        &seed.namespace,
        "-p",
        r#"{"spec":{"paused":false}}"#,
    ]);

    // One Deployment missing: the others restarted, exit 1 naming it.
    seed.set_restarted_at(cp, None);
    let missing = run(
        cp,
        &seed,
        &bao,
        &["--deployments=external-secrets,does-not-exist"],
    );
    expect_error(
        &missing,
        1,
        "restart_failed",
        &format!(
            "reading Deployment {}/does-not-exist: HTTP 404",
            seed.namespace
        ),
    );
    assert!(seed.restarted_at(cp)[0].is_some());

    // A missing store is an error naming it.
    let no_store = run(cp, &seed, &bao, &["--store=no-such-store"]);
    expect_error(
        &no_store,
        1,
        "store_read_failed",
        "reading ClusterSecretStore no-such-store: HTTP 404",
    );

    // A store ESO has not reconciled yet (no status): a warning, nothing restarted.
    cp.apply("apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata:\n  name: store-table-new\nspec:\n  provider:\n    fake:\n      data: []\n");
    let fresh = run(cp, &seed, &bao, &["--store=store-table-new"]);
    expect(&fresh, 0, "store_unknown");
    assert!(fresh.stderr.contains("no status yet"), "{}", fresh.dump());

    // A bad token: 401, exit 1.
    let bad = eso(
        Some(&cp.kubeconfig_with_bad_token()),
        &[&format!("--vault-addr={}", bao.addr)],
        &[],
    );
    expect_error(&bad, 1, "store_read_failed", "HTTP 401");
}

#[test]
fn a_kubeconfig_with_a_client_certificate_authenticates_and_a_stranger_is_refused() {
    // kubeadm's, kind's and minikube's kubeconfigs name a client certificate and key: the
    // on-call's laptop run presents it (eso-recovery's own TLS, src/kube_client/tls.rs).
    let cp = ControlPlane::shared();
    let seed = Seed::own("client-cert");
    seed.apply(cp);
    let bao = OpenBao::dev();
    let mut args = seed.args();
    args.push(format!("--vault-addr={}", bao.addr));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let on_call = cp.kubeconfig_with_client_cert("on-call", "system:masters", true);
    expect(&eso(Some(&on_call), &args, &[]), 0, "store_healthy");

    // Signed by a CA the API server does not trust: 401, exit 1, nothing done.
    let stranger = cp.kubeconfig_with_client_cert("stranger", "system:masters", false);
    expect_error(
        &eso(Some(&stranger), &args, &[]),
        1,
        "store_read_failed",
        "HTTP 401",
    );
}

#[test]
fn wait_returns_when_recovered_and_fails_at_its_deadline() {
    let cp = ControlPlane::shared();
    let seed = Seed::own("wait");
    seed.apply(cp);
    let bao = OpenBao::dev();
    seed.set_store(cp, false);

    // Left pending: exit 1 at the deadline, naming what was pending.
    let pending = run(cp, &seed, &bao, &["--wait", "--timeout=4s"]);
    expect(&pending, 1, "wait_timed_out");
    assert!(
        pending.elapsed < Duration::from_secs(8),
        "{:?}",
        pending.elapsed
    );
    assert!(
        pending.stdout.contains("still pending"),
        "{}",
        pending.dump()
    );

    // Recovered while waiting: the store flips to Ready and the rollouts complete.
    let helper = {
        let seed = seed.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            seed.set_store(cp, true);
            seed.complete_rollouts(cp);
        })
    };
    let done = run(cp, &seed, &bao, &["--wait", "--force", "--timeout=30s"]);
    helper.join().unwrap();
    expect(&done, 0, "recovered");
    assert!(done.elapsed >= Duration::from_secs(3));
    for d in done.summary["deployments"].as_array().unwrap() {
        assert_eq!(d["result"], "rolled out", "{}", done.dump());
    }
}

#[test]
fn a_restart_makes_a_real_rollout_with_the_controller_manager() {
    if !harness::process::controlplane::bins()
        .join("kube-controller-manager")
        .exists()
    {
        // Only with KUBEBUILDER_ASSETS from setup-envtest; CI builds it and must run this.
        assert!(
            std::env::var("CI").is_err(),
            "CI: no kube-controller-manager in the control plane"
        );
        eprintln!("skipped: KUBEBUILDER_ASSETS has no kube-controller-manager");
        return;
    }
    let cp = ControlPlane::start(true);
    let seed = Seed::own("rollout");
    seed.apply(&cp);
    let replica_sets = |cp: &ControlPlane| -> usize {
        let list = cp.get_json(&["replicasets", "-n", &seed.namespace]);
        list["items"].as_array().map_or(0, Vec::len)
    };
    harness::tools::procs::wait_until("the first ReplicaSets", Duration::from_secs(60), || {
        replica_sets(&cp) == 3
    });
    // The deployment controller now owns the status; pods stay Pending (no kubelet), so the
    // rollout never completes: --force restarts anyway.
    let bao = OpenBao::dev();
    seed.set_store(&cp, false);
    let restart = run(&cp, &seed, &bao, &["--force"]);
    expect(&restart, 0, "restarted");
    harness::tools::procs::wait_until(
        "a second ReplicaSet per Deployment",
        Duration::from_secs(60),
        || replica_sets(&cp) == 6,
    );
    let list = cp.get_json(&["replicasets", "-n", &seed.namespace]);
    for d in &seed.deployments {
        let newest = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rs| rs["metadata"]["ownerReferences"][0]["name"] == d.as_str())
            .filter(|rs| !rs["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_null())
            .count();
        assert_eq!(newest, 1, "{d} has no ReplicaSet from the restart");
    }
    // Without --force the unfinished rollout holds any further restart.
    let held = run(&cp, &seed, &bao, &["--cooldown=0s"]);
    expect(&held, 0, "rollout_in_progress");
}

#[test]
fn revoked_rbac_and_a_deleted_store_are_errors_that_restart_nothing() {
    let (_g, cp, seed) = design();
    seed.set_store(cp, false);
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    let bao = OpenBao::dev();
    let vault = format!("--vault-addr={}", bao.addr);

    // The Role's binding revoked: the Deployments cannot be read, nothing is patched.
    cp.kubectl(&["delete", "rolebinding", "eso-recovery", "-n", "security"]);
    let r = eso(Some(&sa), &[&vault], &[]);
    expect_error(
        &r,
        1,
        "restart_failed",
        "reading Deployment security/external-secrets: HTTP 403",
    );
    assert_eq!(seed.restarted_at(cp), vec![None, None, None]);

    // The ClusterRole's binding revoked: the store cannot be read.
    cp.kubectl(&["delete", "clusterrolebinding", "eso-recovery"]);
    let r = eso(Some(&sa), &[&vault], &[]);
    expect_error(
        &r,
        1,
        "store_read_failed",
        "reading ClusterSecretStore k8s-secrets: HTTP 403",
    );
    apply_manifests(cp);

    // The store deleted: 404, named.
    cp.kubectl(&["delete", "clustersecretstore", "k8s-secrets"]);
    let r = eso(Some(&sa), &[&vault], &[]);
    expect_error(
        &r,
        1,
        "store_read_failed",
        "reading ClusterSecretStore k8s-secrets: HTTP 404",
    );
    assert_eq!(seed.restarted_at(cp), vec![None, None, None]);
    seed.apply(cp);
}

#[test]
fn two_runs_at_the_same_moment_neither_fails_and_the_next_is_in_cooldown() {
    let cp = ControlPlane::shared();
    let seed = Seed::own("twins");
    seed.apply(cp);
    seed.set_store(cp, false);
    let bao = OpenBao::dev();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(cp, &seed, &bao, &[]));
        let b = s.spawn(|| run(cp, &seed, &bao, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    for r in [&a, &b] {
        assert_eq!(r.code, 0, "{}", r.dump());
        assert!(
            ["restarted", "cooldown", "rollout_in_progress"].contains(&r.outcome()),
            "{}",
            r.dump()
        );
    }
    assert!(
        a.outcome() == "restarted" || b.outcome() == "restarted",
        "{}\n{}",
        a.dump(),
        b.dump()
    );
    seed.complete_rollouts(cp);
    expect(&run(cp, &seed, &bao, &[]), 0, "cooldown");
}

#[test]
fn api_server_stopped_mid_run_and_then_gone() {
    let cp = ControlPlane::start(false);
    let seed = Seed::own("stopped");
    seed.apply(&cp);
    seed.set_store(&cp, false);
    let bao = OpenBao::dev();
    // Stopped while --wait polls: the run still ends at --timeout, naming what it waited for.
    let stopper = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            cp.signal_apiserver(libc::SIGSTOP);
        });
        let r = run(&cp, &seed, &bao, &["--wait", "--timeout=5s"]);
        handle.join().unwrap();
        r
    });
    cp.signal_apiserver(libc::SIGCONT);
    expect(&stopper, 1, "wait_timed_out");
    assert!(
        stopper.elapsed < Duration::from_secs(8),
        "{:?}",
        stopper.elapsed
    );

    // Stopped before the run: the store read hangs; the run ends at --timeout.
    seed.set_restarted_at(&cp, None);
    cp.signal_apiserver(libc::SIGSTOP);
    let hung = run(&cp, &seed, &bao, &["--timeout=3s"]);
    cp.signal_apiserver(libc::SIGCONT);
    // Either the connect timeout (TLS handshake never answered) or the run's own deadline ends it.
    assert!(
        hung.code == 1 && ["timed_out", "store_read_failed"].contains(&hung.outcome()),
        "{}",
        hung.dump()
    );
    assert!(
        hung.stdout.contains("did not finish within --timeout 3s")
            || hung.stdout.contains("timed out waiting for the API server"),
        "{}",
        hung.dump()
    );
    assert_eq!(seed.restarted_at(&cp), vec![None, None, None]);
    assert!(hung.elapsed < Duration::from_secs(6), "{:?}", hung.elapsed);

    // Gone: connection refused, exit 1 at once.
    cp.kill_apiserver();
    let gone = run(&cp, &seed, &bao, &[]);
    expect(&gone, 1, "store_read_failed");
    assert!(
        gone.stdout.contains("Connection refused") || gone.stdout.contains("connection refused"),
        "{}",
        gone.dump()
    );
    assert!(gone.elapsed < Duration::from_secs(3), "{:?}", gone.elapsed);
}

#[test]
fn kubectl_finds_the_plugin_and_it_prints_the_text_summary() {
    let cp = ControlPlane::shared();
    let seed = Seed::own("plugin");
    seed.apply(cp);
    seed.set_store(cp, false);
    let bao = OpenBao::dev();
    let mut args = vec![
        "eso-recovery".to_string(),
        "--dry-run".into(),
        format!("--vault-addr={}", bao.addr),
    ];
    args.extend(seed.args());
    let (out, dir) = harness::run::kubectl_plugin(&cp.admin_kubeconfig, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Not a terminal, yet text: the plugin's default is a person's.
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("summary: outcome=would_restart exit=0")
            && summary.contains("dry_run=true"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("INFO restarting"), "{stderr}");
    assert_eq!(seed.restarted_at(cp), vec![None, None, None]);

    let help = std::process::Command::new(harness::process::controlplane::bins().join("kubectl"))
        .args(["eso-recovery", "--help"])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .expect("running kubectl");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Running as a kubectl plugin"), "{help}");
    assert!(help.contains("Usage: kubectl eso-recovery"), "{help}");
}

#[test]
fn concurrent_runs_keep_one_outage_record_and_a_forbidden_record_only_warns() {
    let (_g, cp, _seed) = design();
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    // A dev server keeps no activation time: the record is the only outage clock here.
    let bao = OpenBao::dev();
    let vault = format!("--vault-addr={}", bao.addr);
    let [since_key, again_key] = OUTAGE_SEEN;
    let record = || {
        cp.get_json(&["lease", "eso-recovery", "-n", "security"])["metadata"]["annotations"].clone()
    };
    forget(cp, &OUTAGE_SEEN);
    let four_at_once = || {
        std::thread::scope(|s| {
            let runs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| eso(Some(&sa), &[&vault], &[])))
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        })
    };

    // Four runs see Vault sealed at once: each writes against the resourceVersion it read, so
    // one opens the outage and the others, refused with 409, read it again and leave it.
    bao.seal();
    for r in four_at_once() {
        expect(&r, 0, "vault_not_ready");
    }
    let opened = record();
    assert!(opened[since_key].is_string(), "{opened}");
    assert!(opened.get(again_key).is_none(), "{opened}");

    // Four see it ready again: one ends the outage; the beginning is not lost.
    bao.unseal();
    for r in four_at_once() {
        expect(&r, 0, "store_healthy");
    }
    let ended = record();
    assert_eq!(ended[since_key], opened[since_key], "{ended}");
    assert!(ended[again_key].is_string(), "{ended}");
    let run = eso(Some(&sa), &[&vault], &[]);
    assert!(
        run.summary["outage_record"]
            .as_str()
            .is_some_and(|r| r.contains("ready again at")),
        "{}",
        run.dump()
    );

    // The record forbidden (the Role's rule for it removed): a warning, exit 0, and the run
    // goes on as before the record existed.
    cp.kubectl(&[
        "patch",
        "role",
        "eso-recovery",
        "-n",
        "security",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/rules/2"}]"#,
    ]);
    bao.seal();
    let forbidden = eso(Some(&sa), &[&vault], &[]);
    expect(&forbidden, 0, "vault_not_ready");
    assert!(
        forbidden
            .stderr
            .contains("Lease security/eso-recovery): HTTP 403"),
        "{}",
        forbidden.dump()
    );
    assert_eq!(record(), ended, "a forbidden record was written");
    apply_manifests(cp);
}

#[test]
fn eight_runs_at_the_moment_vault_turns_ready_restart_exactly_once() {
    let (_g, cp, seed) = design();
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    let bao = OpenBao::raft();
    let vault = format!("--vault-addr={}", bao.addr);
    seed.set_store(cp, false);
    let mut counts = Vec::new();
    for outage in 1..=20 {
        // A fresh outage each time: sealed, eight runs awaiting it (the CronJob's and people's),
        // then the unseal releases them together.
        bao.seal();
        let runs = std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        eso(
                            Some(&sa),
                            &[&vault, "--await-vault=30s", "--cooldown=0s"],
                            &[],
                        )
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(1500));
            bao.unseal();
            runs.into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        });
        let restarted = runs.iter().filter(|r| r.outcome() == "restarted").count();
        for r in &runs {
            assert_eq!(r.code, 0, "{}", r.dump());
            assert!(
                [
                    "restarted",
                    "already_claimed",
                    "already_restarted",
                    "rollout_in_progress"
                ]
                .contains(&r.outcome()),
                "outage {outage}: {}",
                r.dump()
            );
        }
        let all: Vec<&str> = runs.iter().map(|r| r.outcome()).collect();
        assert_eq!(restarted, 1, "outage {outage}: {all:?}");
        counts.push(all.iter().filter(|o| **o == "already_claimed").count());
        seed.complete_rollouts(cp);
    }
    eprintln!(
        "20 outages, 8 runs each: exactly one restart every time; runs that lost the claim: {counts:?}"
    );
}

#[test]
fn a_claim_whose_run_died_before_acting_holds_off_others_only_for_its_bound() {
    let (_g, cp, seed) = design();
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    // A dev server keeps no activation time, and the record is cleared: the outage is named by
    // the degraded store's since, as a run names it.
    let bao = OpenBao::dev();
    let vault = format!("--vault-addr={}", bao.addr);
    forget(cp, &OUTAGE_SEEN);
    seed.set_store(cp, false);
    let since = cp.get_json(&["clustersecretstore", "k8s-secrets"])["status"]["conditions"][0]
        ["lastTransitionTime"]
        .as_str()
        .unwrap()
        .to_string();
    // The stand-in for a run killed between its claim and its patch: its claim, written now.
    let claimed_at = std::time::Instant::now();
    cp.kubectl(&[
        "annotate",
        "--overwrite",
        "lease",
        "eso-recovery",
        "-n",
        "security",
        &format!("eso-recovery/claimed-for=k8s-secrets degraded since {since}"),
        "eso-recovery/claimed-by=killed-pod (pid 7)",
        &format!("eso-recovery/claimed-at={}", jiff::Timestamp::now()),
    ]);
    let held = eso(Some(&sa), &[&vault], &[]);
    expect(&held, 0, "already_claimed");
    assert!(
        held.stderr
            .contains("killed-pod (pid 7) claimed k8s-secrets degraded since"),
        "{}",
        held.dump()
    );
    assert_eq!(seed.restarted_at(cp), vec![None, None, None]);
    // Past the bound (30 s), the next run claims over it and acts.
    std::thread::sleep(Duration::from_secs(31).saturating_sub(claimed_at.elapsed()));
    let acted = eso(Some(&sa), &[&vault], &[]);
    expect(&acted, 0, "restarted");
    let record =
        cp.get_json(&["lease", "eso-recovery", "-n", "security"])["metadata"]["annotations"]
            .clone();
    assert_ne!(
        record["eso-recovery/claimed-by"], "killed-pod (pid 7)",
        "{record}"
    );
    seed.set_store(cp, true);
}
