//! Faults, run with the built binary: a real OpenBao for everything it can do (stopped, killed,
//! TLS with the right and wrong CA), a Vault stand-in for the answers OpenBao never gives, and the
//! in-process Kubernetes stand-in for the API faults a real server cannot produce on demand.
//! In every test the store is degraded, so a wrong "ready" would show as a restart.

use std::time::Duration;

use harness::{
    process::openbao::OpenBao,
    run::Run,
    run::eso,
    run::expect,
    standin::fake_api::{FakeApi, store},
    standin::fake_vault::{ACTIVE, Answer, FakeVault},
};

/// Runs against the stand-in API under `--timeout 10s` (unless `extra` sets another), and prints
/// the wall time so the longest run of the matrix can be read off `--nocapture`.
fn run(api: &FakeApi, vault: &str, extra: &[&str]) -> Run {
    let mut args = vec![format!("--vault-addr={vault}")];
    if !extra.iter().any(|a| a.starts_with("--timeout")) {
        args.push("--timeout=10s".into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = eso(Some(&api.kubeconfig), &args, &[]);
    eprintln!(
        "fault run: {:?} {:?} -> exit {} {}",
        r.elapsed,
        extra,
        r.code,
        r.outcome()
    );
    r
}

fn patches(api: &FakeApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.starts_with("PATCH"))
        .count()
}

#[track_caller]
fn not_ready(run: &Run, api: &FakeApi, vault_says: &str) {
    expect(run, 0, "vault_not_ready");
    let vault = run.summary["vault"].as_str().unwrap_or_default();
    assert!(
        vault.contains(vault_says),
        "vault={vault:?}, wanted {vault_says:?}\n{}",
        run.dump()
    );
    assert_eq!(patches(api), 0, "patched while Vault was not ready");
}

#[test]
fn real_openbao_ready_restarts_and_no_namespace_header_leaks() {
    let api = FakeApi::start();
    let bao = OpenBao::dev();
    // VAULT_NAMESPACE must not reach sys/health (OpenBao answers 400 inside a namespace).
    let mut args = vec![format!("--vault-addr={}", bao.addr)];
    args.push("--log-level=debug".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = eso(
        Some(&api.kubeconfig),
        &args,
        &[("VAULT_NAMESPACE", "team-a")],
    );
    expect(&r, 0, "restarted");
    assert_eq!(patches(&api), 3);
    let events = api.with(|s| s.events.clone());
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "Normal" && e["reason"] == "Restarted")
    );
    // Every line is one JSON object, the summary too.
    for line in r.stderr.lines().chain(r.stdout.lines()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}

#[test]
fn vault_namespace_header_is_not_sent() {
    let api = FakeApi::start();
    let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
    let r = eso(
        Some(&api.kubeconfig),
        &[&format!("--vault-addr={}", vault.addr), "--dry-run"],
        &[("VAULT_NAMESPACE", "team-a")],
    );
    expect(&r, 0, "would_restart");
    let requests: Vec<String> = vault
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.to_ascii_lowercase())
        .collect();
    // The health probe and the leader read go out concurrently: their order is not fixed.
    let mut first_lines: Vec<&str> = requests.iter().filter_map(|r| r.lines().next()).collect();
    first_lines.sort_unstable();
    assert_eq!(
        first_lines,
        ["get /v1/sys/health http/1.1", "get /v1/sys/leader http/1.1"],
        "{requests:#?}"
    );
    assert!(
        requests.iter().all(|r| !r.contains("x-vault-namespace")),
        "{requests:#?}"
    );
}

#[test]
fn sealed_openbao_and_restarted_sealed_openbao_hold() {
    let api = FakeApi::start();
    let bao = OpenBao::dev();
    bao.seal();
    not_ready(&run(&api, &bao.addr, &[]), &api, "sealed");
}

#[test]
fn stopped_vault_ends_within_the_vault_timeout() {
    let api = FakeApi::start();
    let bao = OpenBao::dev();
    bao.signal(libc::SIGSTOP);
    let r = run(&api, &bao.addr, &["--vault-timeout=2s", "--timeout=10s"]);
    bao.signal(libc::SIGCONT);
    not_ready(&r, &api, "timed out");
    assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
}

#[test]
fn an_awaiting_run_ends_within_its_duration_whatever_hangs() {
    let api = FakeApi::start();
    let bao = OpenBao::dev();
    bao.signal(libc::SIGSTOP);
    let r = run(
        &api,
        &bao.addr,
        &["--await-vault=3s", "--vault-timeout=2s", "--timeout=5s"],
    );
    bao.signal(libc::SIGCONT);
    not_ready(&r, &api, "timed out");
    assert!(
        r.elapsed >= Duration::from_secs(3) && r.elapsed < Duration::from_secs(3 + 5),
        "took {:?}",
        r.elapsed
    );
    assert!(
        r.summary["awaited"]
            .as_str()
            .is_some_and(|a| a.contains("still not ready")),
        "{}",
        r.dump()
    );
}

#[test]
fn a_vault_that_resumes_during_the_await_is_restarted_for_at_once() {
    // The first ask times out on the stopped process (--vault-timeout) and starts the await;
    // the asks in flight when it resumes answer: the run goes on as a run started then would.
    let api = FakeApi::start();
    let bao = OpenBao::dev();
    bao.signal(libc::SIGSTOP);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(4));
            bao.signal(libc::SIGCONT);
        });
        run(
            &api,
            &bao.addr,
            &["--await-vault=30s", "--vault-timeout=2s", "--timeout=10s"],
        )
    });
    expect(&r, 0, "restarted");
    assert_eq!(patches(&api), 3);
    assert!(r.elapsed < Duration::from_secs(6), "took {:?}", r.elapsed);
    assert!(
        r.stderr.contains("awaiting it for up to 30s"),
        "{}",
        r.dump()
    );
    assert!(
        r.summary["awaited"]
            .as_str()
            .is_some_and(|a| a.contains("until Vault was ready")),
        "{}",
        r.dump()
    );
}

#[test]
fn closed_port_and_unresolvable_name() {
    let api = FakeApi::start();
    let mut bao = OpenBao::dev();
    let addr = bao.addr.clone();
    bao.kill();
    not_ready(&run(&api, &addr, &[]), &api, "cannot connect");
    let r = run(
        &api,
        "http://vault.does-not-exist.invalid:8200",
        &["--vault-timeout=3s"],
    );
    not_ready(&r, &api, "unreachable");
}

#[test]
fn tls_with_the_right_ca_a_wrong_ca_a_wrong_name_and_skip_verify() {
    let bao = OpenBao::dev_tls();
    let api = FakeApi::start();
    let ca = bao.ca_cert().display().to_string();
    let ok = run(
        &api,
        &bao.addr,
        &[&format!("--vault-cacert={ca}"), "--dry-run"],
    );
    expect(&ok, 0, "would_restart");

    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("other-ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&wrong, params.self_signed(&key).unwrap().pem()).unwrap();
    let api = FakeApi::start();
    let r = run(
        &api,
        &bao.addr,
        &[&format!("--vault-cacert={}", wrong.display())],
    );
    not_ready(&r, &api, "UnknownIssuer");

    let r = run(
        &api,
        &bao.addr,
        &[
            &format!("--vault-cacert={ca}"),
            "--vault-tls-server-name=vault.example.com",
        ],
    );
    not_ready(
        &r,
        &api,
        "certificate not valid for name \"vault.example.com\"",
    );
    let r = run(
        &api,
        &bao.addr,
        &[&format!("--vault-capath={}", other.path().display())],
    );
    not_ready(&r, &api, "UnknownIssuer");

    let api = FakeApi::start();
    let skip = eso(
        Some(&api.kubeconfig),
        &[&format!("--vault-addr={}", bao.addr), "--dry-run"],
        &[("VAULT_SKIP_VERIFY", "true")],
    );
    expect(&skip, 0, "would_restart");

    // Plain HTTP to the TLS port: OpenBao answers 400.
    let api = FakeApi::start();
    let plain = bao.addr.replace("https://", "http://");
    not_ready(&run(&api, &plain, &[]), &api, "unexpected HTTP 400");
}

#[test]
fn an_expired_vault_certificate_is_not_trusted() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let vault = FakeVault::start_tls(
        Answer::Fixed(200, ACTIVE.into()),
        &cert.pem(),
        &key.serialize_pem(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let api = FakeApi::start();
    let r = run(
        &api,
        &vault.addr,
        &[&format!("--vault-cacert={}", ca_file.display())],
    );
    not_ready(&r, &api, "expired");

    // The same server with a valid certificate from the same CA is trusted: the check can pass.
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let vault = FakeVault::start_tls(
        Answer::Fixed(200, ACTIVE.into()),
        &cert.pem(),
        &key.serialize_pem(),
    );
    let api = FakeApi::start();
    let r = run(
        &api,
        &vault.addr,
        &[
            &format!("--vault-cacert={}", ca_file.display()),
            "--dry-run",
        ],
    );
    expect(&r, 0, "would_restart");
}

#[test]
fn answers_openbao_never_gives() {
    let sealed_body = r#"{"initialized":true,"sealed":true,"standby":true}"#;
    let standby_body = r#"{"initialized":true,"sealed":false,"standby":true}"#;
    let perf_body =
        r#"{"initialized":true,"sealed":false,"standby":true,"performance_standby":true}"#;
    let cases: Vec<(Answer, &str)> = vec![
        (
            Answer::Fixed(200, "<html><body>Sign in</body></html>".into()),
            "not Vault's health JSON",
        ),
        (
            Answer::Fixed(200, sealed_body.into()),
            "but the body says sealed=true",
        ),
        (Answer::Huge(4 * 1024 * 1024), "over 64 KiB"),
        (Answer::Fixed(472, ACTIVE.into()), "DR secondary"),
        (
            Answer::Fixed(474, standby_body.into()),
            "standby without an active node",
        ),
        (
            Answer::Fixed(
                501,
                r#"{"initialized":false,"sealed":true,"standby":true}"#.into(),
            ),
            "uninitialized",
        ),
        (Answer::Fixed(503, sealed_body.into()), "sealed"),
        (Answer::Fixed(530, ACTIVE.into()), "removed"),
        (Answer::Fixed(429, standby_body.into()), "standby"),
        (Answer::Fixed(473, perf_body.into()), "performance standby"),
        (
            Answer::Fixed(502, "bad gateway".into()),
            "unexpected HTTP 502",
        ),
        (
            Answer::Trickle(200, ACTIVE.into(), Duration::from_millis(200)),
            "timed out",
        ),
    ];
    for (answer, says) in cases {
        let api = FakeApi::start();
        let vault = FakeVault::start(answer.clone());
        let r = run(&api, &vault.addr, &["--vault-timeout=2s"]);
        not_ready(&r, &api, says);
    }
    // With --standby-ok the standbys count as ready, and the parameters are sent.
    for (code, body) in [(429, standby_body), (473, perf_body)] {
        let api = FakeApi::start();
        let vault = FakeVault::start(Answer::Fixed(code, body.into()));
        let r = run(&api, &vault.addr, &["--standby-ok", "--dry-run"]);
        expect(&r, 0, "would_restart");
        let seen = vault.requests.lock().unwrap().join("\n");
        assert!(
            seen.contains("/v1/sys/health?standbyok=true&perfstandbyok=true"),
            "{seen}"
        );
    }
    // Without --standby-ok the rest stay not ready even so.
    for code in [472, 474, 501, 503, 530] {
        let api = FakeApi::start();
        let vault = FakeVault::start(Answer::Fixed(code, sealed_body.into()));
        let r = run(&api, &vault.addr, &["--standby-ok"]);
        assert_eq!(
            patches(&api),
            0,
            "code {code} with --standby-ok patched\n{}",
            r.dump()
        );
    }
}

#[test]
fn one_patch_failing_does_not_stop_the_others() {
    for code in [500, 409, 422, 403] {
        let api = FakeApi::start();
        api.with(|s| {
            s.patch_faults
                .insert("external-secrets-webhook".into(), code)
        });
        let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
        let r = run(&api, &vault.addr, &[]);
        expect(&r, 1, "restart_failed");
        assert!(
            r.stdout.contains(&format!(
                "restarting Deployment security/external-secrets-webhook: HTTP {code}"
            )),
            "{}",
            r.dump()
        );
        let restarted = api.with(|s| {
            s.deployments
                .values()
                .filter(|d| !d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_null())
                .count()
        });
        assert_eq!(restarted, 2, "{}", r.dump());
        let kinds: Vec<String> = api.with(|s| {
            s.events
                .iter()
                .map(|e| e["type"].as_str().unwrap_or_default().to_string())
                .collect()
        });
        assert_eq!(kinds.iter().filter(|k| *k == "Normal").count(), 2);
        assert_eq!(kinds.iter().filter(|k| *k == "Warning").count(), 1);
    }
}

#[test]
fn a_hung_api_server_ends_at_the_timeout() {
    let api = FakeApi::start();
    api.with(|s| s.hang.insert("/apis/external-secrets.io".into()));
    let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
    let r = run(&api, &vault.addr, &["--timeout=3s"]);
    expect(&r, 1, "timed_out");
    assert!(r.elapsed < Duration::from_secs(6), "{:?}", r.elapsed);
    assert!(
        r.stdout.contains("did not finish within --timeout 3s"),
        "{}",
        r.dump()
    );
    assert_eq!(patches(&api), 0);
}

#[test]
fn throttling_is_retried_within_the_deadline() {
    let api = FakeApi::start();
    api.with(|s| s.throttle = 3);
    let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
    let r = run(&api, &vault.addr, &[]);
    expect(&r, 0, "restarted");
    assert!(
        api.requests().len() >= 3 + 1 + 3 + 3,
        "{:?}",
        api.requests()
    );
}

#[test]
fn endless_throttling_gives_up_within_the_deadline() {
    let api = FakeApi::start();
    api.with(|s| s.throttle = u32::MAX);
    let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
    let r = run(&api, &vault.addr, &["--timeout=4s"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(
        ["store_read_failed", "timed_out"].contains(&r.outcome()),
        "{}",
        r.dump()
    );
    assert!(r.elapsed < Duration::from_secs(7), "{:?}", r.elapsed);
    assert_eq!(patches(&api), 0);
}

#[test]
fn a_store_status_of_the_wrong_shape_is_never_degraded() {
    for status in [
        serde_json::json!("Ready"),
        serde_json::json!({"conditions": {"type": "Ready", "status": "False"}}),
        serde_json::json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
        serde_json::json!({"conditions": [{"type": "Ready", "status": false}]}),
    ] {
        let api = FakeApi::start();
        let mut object = store("k8s-secrets", "False");
        object["status"] = status.clone();
        api.with(|s| s.stores.insert("k8s-secrets".into(), (200, object)));
        let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
        let r = run(&api, &vault.addr, &[]);
        expect(&r, 0, "store_unknown");
        assert_eq!(patches(&api), 0, "{status}");
    }
}

#[test]
fn api_server_down_is_an_error() {
    let api = FakeApi::start();
    let kubeconfig = api.kubeconfig.clone();
    let copy = tempfile::tempdir().unwrap();
    let path = copy.path().join("kubeconfig");
    std::fs::copy(&kubeconfig, &path).unwrap();
    drop(api);
    std::thread::sleep(Duration::from_millis(100));
    let vault = FakeVault::start(Answer::Fixed(200, ACTIVE.into()));
    let r = eso(Some(&path), &[&format!("--vault-addr={}", vault.addr)], &[]);
    expect(&r, 1, "store_read_failed");
    assert!(
        r.stdout.contains("reading ClusterSecretStore k8s-secrets"),
        "{}",
        r.dump()
    );
}

#[test]
fn bad_configuration_exits_2_naming_the_input() {
    let api = FakeApi::start();
    /// Arguments, environment, what stderr must name.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--cooldown=5x"], &[], "--cooldown"),
        (&[], &[("ESO_RECOVERY_TIMEOUT", "soon")], "--timeout"),
        (&["--vault-addr=vault:8200"], &[], "--vault-addr"),
        (&["--store="], &[], "the list is empty"),
        (
            &[],
            &[("ESO_RECOVERY_DEPLOYMENTS", ",")],
            "the list is empty",
        ),
        (&["--unknown-flag"], &[], "--unknown-flag"),
        (
            &[
                "--vault-cacert=/nonexistent/ca.pem",
                "--vault-addr=https://127.0.0.1:1",
            ],
            &[],
            "/nonexistent/ca.pem",
        ),
        (&["--log-level=loud=[["], &[], "--log-level"),
    ];
    for (args, env, want) in cases {
        let r = eso(Some(&api.kubeconfig), args, env);
        assert_eq!(r.code, 2, "{args:?} {env:?}\n{}", r.dump());
        assert!(
            r.stderr.contains(want),
            "{args:?}: wanted {want:?}\n{}",
            r.dump()
        );
        assert!(
            api.requests().is_empty(),
            "a bad configuration reached the API"
        );
    }
    let no_kubeconfig = eso(None, &[], &[]);
    assert_eq!(no_kubeconfig.code, 2, "{}", no_kubeconfig.dump());
    assert!(
        no_kubeconfig.stderr.contains("kubeconfig"),
        "{}",
        no_kubeconfig.dump()
    );
}

#[test]
fn help_documents_the_flags() {
    let r = eso(None, &["--help"], &[]);
    assert_eq!(r.code, 0);
    for needle in [
        "--vault-addr",
        "VAULT_ADDR",
        "--cooldown",
        "Exit codes:",
        "--dry-run",
        "--force",
        "--wait",
    ] {
        assert!(r.stdout.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn version_names_the_version_the_commit_and_the_target() {
    let r = eso(None, &["--version"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = std::env::var("ESO_RECOVERY_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or(head)
        .unwrap_or_else(|| "unknown".into());
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let host = host
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("unknown");
    assert_eq!(
        r.stdout.trim(),
        format!(
            "eso-recovery {} (commit {commit}, target {host})",
            env!("CARGO_PKG_VERSION")
        )
    );
}
