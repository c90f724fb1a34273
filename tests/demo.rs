//! The incident, played for a newcomer with ESO's real controller: a local control plane,
//! OpenBao on raft storage, ESO syncing the design's ExternalSecret, and eso-recovery running as
//! its CronJob would. Not part of the suite (it narrates rather than asserts much): `make demo`.

mod support;

use std::time::{Duration, Instant};

use support::{
    Run,
    controlplane::ControlPlane,
    seed::Seed,
    stack::{FIRST_PASSWORD, Stack},
};

fn say(text: &str) {
    println!("\n\x1b[1m▶ {text}\x1b[0m");
}

fn show(cp: &ControlPlane, args: &[&str]) {
    println!("$ kubectl {}", args.join(" "));
    let out = cp.kubectl_output(args);
    print!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The store and the ExternalSecret as `kubectl get` shows them, and the Secret's value.
fn state(stack: &Stack) {
    show(
        &stack.cp,
        &["get", "clustersecretstore,externalsecret", "-A"],
    );
    println!(
        "$ kubectl get secret postgres-secret -n db -o jsonpath='{{.data.POSTGRES_PASSWORD}}' | base64 -d\n{}",
        stack.password().unwrap_or_else(|| "(no Secret)".into())
    );
}

fn recover(stack: &Stack, extra: &[&str]) -> Run {
    println!(
        "$ eso-recovery --vault-addr={} {}",
        stack.bao.addr,
        extra.join(" ")
    );
    let r = stack.recover_with_env(extra, &[("ESO_RECOVERY_LOG_FORMAT", "text")]);
    print!("{}{}", r.stderr, r.stdout);
    println!("(exit {} after {:?})", r.code, r.elapsed);
    r
}

#[test]
#[ignore = "the demo: make demo"]
fn incident() {
    say(
        "Starting a control plane (etcd, kube-apiserver, kube-controller-manager), OpenBao on raft storage with Kubernetes auth, and ESO's real controller (v0.16.2)",
    );
    println!(
        "(the design's objects verbatim; the store validates every 5 s and the ExternalSecret refreshes every 5 s, so the demo takes about two minutes)"
    );
    let mut stack = Stack::start(Seed::with_real_eso(Some(5), "5s"));
    say("1. Normal operation: ESO synced the Secret from Vault; the CronJob's run exits at once");
    state(&stack);
    recover(&stack, &[]);

    say(
        "2. Vault restarts and comes back sealed: ESO's store goes Ready=False (Argo CD: Degraded), the ExternalSecret fails and backs off",
    );
    stack.restart_vault_sealed();
    println!("sys/health now answers {}", stack.bao.health_code());
    stack.wait_for_external_secret_failing("db", "postgres-secret", Duration::from_secs(30));
    let failing_since = Instant::now();
    support::procs::wait_until("the store Ready=False", Duration::from_secs(30), || {
        stack.store_ready()["status"] == "False"
    });
    state(&stack);

    say(
        "3. eso-recovery waits: restarting ESO while Vault is sealed would only start the backoff again",
    );
    recover(&stack, &[]);

    say("(the outage goes on for a while: ESO's backoff doubles, 1, 2, 4 … 32 s)");
    std::thread::sleep(Duration::from_secs(45).saturating_sub(failing_since.elapsed()));

    say(
        "4. An operator unseals Vault and rotates the password (`bao kv patch secret/postgres-secret POSTGRES_PASSWORD=…`)",
    );
    stack.bao.unseal();
    stack.rotate("rotated-after-the-unseal");
    println!("sys/health now answers {}", stack.bao.health_code());
    println!("ESO is still in its backoff: the Secret still holds the old value");
    state(&stack);

    say(
        "5. The CronJob's next run: Vault is ready, ESO is stuck, so it restarts ESO's Deployments",
    );
    let run_at = Instant::now();
    recover(&stack, &[]);
    show(
        &stack.cp,
        &[
            "get",
            "deployments",
            "-n",
            "security",
            "-o",
            "custom-columns=NAME:.metadata.name,RESTARTED-AT:.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt",
        ],
    );
    show(
        &stack.cp,
        &[
            "events",
            "-n",
            "security",
            "--for",
            "deployment/external-secrets",
        ],
    );
    stack.eso.wait_for_starts(2, Duration::from_secs(30));
    println!(
        "(no kubelet here: the harness replaced the ESO process when kube-controller-manager made the new ReplicaSet)"
    );
    stack.wait_for_password("rotated-after-the-unseal", Duration::from_secs(30));
    println!(
        "the Secret holds Vault's new value {:.1} s after eso-recovery's run began (it held {FIRST_PASSWORD:?})",
        run_at.elapsed().as_secs_f64()
    );
    state(&stack);

    say("6. A minute later the CronJob runs again: inside the cooldown, nothing to do");
    recover(&stack, &[]);
    say(
        "7. Even past the cooldown it restarts at most once per outage: ESO was restarted after Vault came back",
    );
    recover(&stack, &["--cooldown=0s"]);

    say("Done: everything started here is stopped as the demo exits");
}
