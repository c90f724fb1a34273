//! The incident, played for a newcomer on a local control plane and a real OpenBao. Not part of
//! the suite (it narrates rather than asserts much): `make demo` runs it.

mod support;

use support::{
    Run,
    controlplane::{ControlPlane, repo},
    eso,
    openbao::OpenBao,
    seed::Seed,
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

fn recover(kubeconfig: &std::path::Path, bao: &OpenBao) -> Run {
    println!("$ eso-recovery --vault-addr={}", bao.addr);
    let r = eso(
        Some(kubeconfig),
        &[&format!("--vault-addr={}", bao.addr)],
        &[("ESO_RECOVERY_LOG_FORMAT", "text")],
    );
    print!("{}{}", r.stderr, r.stdout);
    println!("(exit {} after {:?})", r.code, r.elapsed);
    r
}

#[test]
#[ignore = "the demo: make demo"]
fn incident() {
    say(
        "Starting a local control plane (etcd + kube-apiserver with RBAC and Pod Security) and OpenBao on raft storage",
    );
    let cp = ControlPlane::start(false);
    let mut bao = OpenBao::raft();
    println!("OpenBao initialized and unsealed at {}", bao.addr);

    say(
        "Applying the design's objects (ESO's real CRDs, ClusterSecretStore k8s-secrets, ESO's Deployments) and manifests/",
    );
    let seed = Seed::design();
    seed.apply(&cp);
    show(
        &cp,
        &[
            "apply",
            "-k",
            &repo().join("manifests").display().to_string(),
        ],
    );
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    show(&cp, &["get", "clustersecretstore", "k8s-secrets"]);

    say(
        "1. Normal operation: Vault is unsealed, the store is Ready. The CronJob's run exits at once (running as its ServiceAccount)",
    );
    recover(&sa, &bao);

    say(
        "2. Vault restarts and comes back sealed; ESO's validation fails and the store goes Ready=False (Argo CD: Degraded)",
    );
    bao.restart();
    bao.wait_code(503);
    println!("sys/health now answers {}", bao.health_code());
    seed.set_store(&cp, false);
    show(&cp, &["get", "clustersecretstore", "k8s-secrets"]);

    say(
        "3. eso-recovery waits: restarting ESO while Vault is sealed would only start the backoff again",
    );
    recover(&sa, &bao);

    say(
        "4. An operator unseals Vault. ESO is still in backoff, so eso-recovery restarts its three Deployments",
    );
    bao.unseal();
    recover(&sa, &bao);
    show(
        &cp,
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
        &cp,
        &[
            "events",
            "-n",
            "security",
            "--for",
            "deployment/external-secrets",
        ],
    );

    say("5. A minute later the CronJob runs again: inside the cooldown, nothing is restarted");
    println!(
        "(there is no kubelet here: the rollouts are marked complete, as the deployment controller would)"
    );
    seed.complete_rollouts(&cp);
    recover(&sa, &bao);

    say(
        "6. ESO's fresh controller validates the store again: back to normal, the run exits at once",
    );
    seed.set_store(&cp, true);
    recover(&sa, &bao);

    say("Done: everything started here is stopped as the demo exits");
}
