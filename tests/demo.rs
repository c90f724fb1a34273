//! The incident, played for a newcomer on a real one-node cluster: the control plane, containerd,
//! the kubelet, kube-proxy and CoreDNS; OpenBao as a pod on raft storage with Kubernetes auth;
//! ESO's real controller from its own chart; eso-recovery from its chart, its CronJob ticking
//! every minute by itself. The demo never runs eso-recovery: it plays the outage (Vault's
//! container killed, back sealed), unseals, and shows what an operator would see with kubectl.
//! Not part of the suite (it narrates rather than asserts much): `make demo`.

use std::time::{Duration, Instant};

use harness::{
    node::Node,
    node::recovery_pods::{name, next_run, runs, the_one_that_acted},
    node::stack::NodeStack,
    process::controlplane::ControlPlane,
    process::seed::Seed,
    process::stack::FIRST_PASSWORD,
    tools::eso_version::EsoVersion,
    tools::outage::Outage,
    tools::procs::wait_until,
};
use serde_json::Value;

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
fn state(stack: &NodeStack) {
    show(
        &stack.node.cp,
        &["get", "clustersecretstore,externalsecret", "-A"],
    );
    println!(
        "$ kubectl get secret postgres-secret -n db -o jsonpath='{{.data.POSTGRES_PASSWORD}}' | base64 -d\n{}",
        stack.password().unwrap_or_else(|| "(no Secret)".into())
    );
}

/// The log of one of the CronJob's runs, as `kubectl logs` shows it.
fn run_log(stack: &NodeStack, pod: &Value) {
    show(&stack.node.cp, &["logs", "-n", "security", &name(pod)]);
}

fn seen(stack: &NodeStack) -> Vec<String> {
    runs(&stack.node).iter().map(name).collect()
}

#[test]
#[ignore = "the demo: make demo"]
fn incident() {
    say(
        "Starting a one-node cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd with runc, the kubelet, kube-proxy and CoreDNS, all inside namespaces of the demo's own",
    );
    let eso = EsoVersion::V2_9;
    let node = Node::start(eso);
    say(&format!(
        "Installing OpenBao (a pod on raft storage behind the Service `vault`), {eso} from its own chart, the design's objects, and eso-recovery from its chart",
    ));
    println!(
        "(the store validates every 5 s and the ExternalSecret refreshes every 5 s, so the demo takes a few minutes)"
    );
    let seed = Seed {
        store_refresh: Some(5),
        es_refresh: "5s".into(),
        ..Seed::design()
    };
    let stack = NodeStack::start(node, seed, &[], Some(&["config.logFormat=text"]));
    let cp = &stack.node.cp;

    say(
        "1. Normal operation: ESO synced the Secret from Vault; each minute the CronJob's run exits at once",
    );
    show(cp, &["get", "pods", "-n", "security"]);
    state(&stack);
    let first = next_run(
        &stack.node,
        &[],
        &["Succeeded", "Failed"],
        Duration::from_secs(120),
    );
    run_log(&stack, &first);

    say(
        "2. Vault's container dies (here: SIGKILL through containerd); the kubelet starts it again and it comes back sealed. A new password was written just before",
    );
    stack.rotate_then_begin("rotated-before-the-outage", Outage::RestartedSealed);
    println!("sys/health now answers {}", stack.bao.health_code());
    show(cp, &["get", "pods", "-n", "security", "-l", "app=vault"]);
    wait_until("the store Ready=False", Duration::from_secs(60), || {
        stack.store_degraded() && stack.external_secret_failing()
    });
    println!(
        "ESO's store goes Ready=False (Argo CD: Degraded); the ExternalSecret fails and backs off"
    );
    state(&stack);

    say(
        "3. The CronJob's next run finds Vault sealed and waits for it (75 s, so the next run starts before it stops): restarting ESO now would only start the backoff again",
    );
    let before = seen(&stack);
    let running = next_run(&stack.node, &before, &["Running"], Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(12));
    run_log(&stack, &running);

    say("4. An operator unseals Vault (`bao operator unseal`)");
    let watching: Vec<Value> = runs(&stack.node)
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .collect();
    stack.end(Outage::RestartedSealed);
    let unsealed = Instant::now();
    println!("sys/health now answers {}", stack.bao.health_code());

    say(
        "5. The waiting run sees Vault ready and ESO stuck: it claims the outage and restarts ESO's three Deployments (a run beside it sees the claim and leaves ESO)",
    );
    let (logs, _) = the_one_that_acted(&stack.node, &watching, "restarted");
    print!("{logs}");
    show(
        cp,
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
        cp,
        &[
            "events",
            "-n",
            "security",
            "--for",
            "deployment/external-secrets",
        ],
    );
    wait_until("the Secret synced", Duration::from_secs(60), || {
        stack.password().as_deref() == Some("rotated-before-the-outage")
    });
    println!(
        "the Secret holds Vault's new value {:.1} s after the unseal (it held {FIRST_PASSWORD:?}); the kubelet replaced ESO's pods:",
        unsealed.elapsed().as_secs_f64()
    );
    show(cp, &["get", "pods", "-n", "security"]);
    state(&stack);

    say(
        "6. A minute later the CronJob runs again: ESO was restarted after Vault came back, nothing to do",
    );
    let after = next_run(
        &stack.node,
        &seen(&stack),
        &["Succeeded", "Failed"],
        Duration::from_secs(90),
    );
    run_log(&stack, &after);

    say(
        "Done: everything started here (the pods, the node's daemons, its namespaces) is stopped as the demo exits",
    );
}
