//! The image built from the Dockerfile by a real engine (buildah, offline), checked as a registry
//! and a node see it (its config, its files, its size), then its entrypoint run from its unpacked
//! root filesystem as the image's user, the root read-only, in a private mount and user namespace
//! (`unshare`): the node tests run it under containerd, this one stays quick. As in a pod: the in-cluster service-account
//! files at /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT, and
//! /etc/hosts giving the names of the API server and Vault (what cluster DNS does). It must find
//! the in-cluster config, resolve the names, verify both certificates and restart ESO.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use harness::{
    process::controlplane::ControlPlane,
    process::openbao::OpenBao,
    process::seed::Seed,
    tools::image::{Image, built, size},
    tools::procs::free_port,
    tools::repo::repo,
};
use serde_json::Value;

const VAULT_NAME: &str = "vault.security.svc.cluster.local";
const API_NAME: &str = "kubernetes.default.svc";

/// Runs the entrypoint in `root` with `env`, as the image's user, returning (exit code, stdout,
/// stderr). `mounts` are (host folder or file, path in the image), bound read-only.
fn run_in_image(
    image: &Image,
    root: &Path,
    mounts: &[(&Path, &str)],
    env: &[(&str, String)],
) -> (i32, String, String) {
    let (uid, gid) = image.user();
    // As the namespace's root: bind the mounts, make them and the root read-only; then a nested
    // user namespace maps the image's UID and chroots into the root, and execs the entrypoint.
    let mut script = String::from("set -e\nmount --bind \"$ROOT\" \"$ROOT\"\n");
    for (i, (_, at)) in mounts.iter().enumerate() {
        script.push_str(&format!(
            "mount --bind \"$M{i}\" \"$ROOT{at}\"\nmount -o remount,bind,ro \"$ROOT{at}\"\n"
        ));
    }
    script.push_str("mount -o remount,bind,ro \"$ROOT\"\n");
    let mut exec = format!(
        "exec /usr/bin/env -i {} /usr/bin/unshare --user --map-user={} --map-group={} --root=\"$ROOT\" --wd=/ --",
        env.iter()
            .map(|(k, v)| format!("{k}='{v}'"))
            .collect::<Vec<_>>()
            .join(" "),
        uid,
        gid
    );
    for arg in &image.entrypoint() {
        exec.push_str(&format!(" '{arg}'"));
    }
    script.push_str(&exec);
    script.push('\n');
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args([
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation=private",
    ])
    .args(["/bin/sh", "-c", &script])
    .env_clear()
    .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
    .env("ROOT", root)
    .stdin(Stdio::null());
    for (i, (from, _)) in mounts.iter().enumerate() {
        cmd.env(format!("M{i}"), from);
    }
    let out = cmd.output().expect("running unshare");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_image_is_static_nonroot_and_holds_nothing_but_the_binary_and_its_files() {
    let image = built();
    let config = &image.config["config"];
    assert_eq!(image.config["os"], "linux");
    assert_eq!(
        image.config["architecture"],
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")
    );
    assert_eq!(image.user(), (65532, 65532), "{config}");
    assert_eq!(
        image.entrypoint(),
        ["/usr/local/bin/eso-recovery"],
        "{config}"
    );
    let label = |k: &str| config["Labels"][format!("org.opencontainers.image.{k}")].clone();
    assert_eq!(label("version"), env!("CARGO_PKG_VERSION"), "{config}");
    assert_eq!(label("licenses"), env!("CARGO_PKG_LICENSE"), "{config}");
    assert!(
        label("revision").as_str().is_some_and(|r| r.len() == 40),
        "{config}"
    );

    // No shell, no libc, no package manager: the binary and distroless/static's files it uses.
    assert_eq!(
        image.files(),
        [
            "/etc/group",
            "/etc/nsswitch.conf",
            "/etc/passwd",
            "/etc/ssl/certs/ca-certificates.crt",
            "/usr/local/bin/eso-recovery",
        ]
    );
    let passwd = std::fs::read_to_string(image.rootfs().join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    // Static: no program interpreter to look for.
    let binary = image.rootfs().join("usr/local/bin/eso-recovery");
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    let ldd =
        String::from_utf8_lossy(&ldd.stdout).to_string() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "{ldd}"
    );
    // As small as distroless/static plus the binary (about 2 MiB plus 7): the binary and the CA
    // bundle are nearly all of it.
    let unpacked = size(image.rootfs());
    let binary_bytes = std::fs::metadata(&binary).unwrap().len();
    println!(
        "image {}: {:.2} MiB pushed, {:.2} MiB unpacked, of which the binary {:.2} MiB",
        image.digest,
        image.compressed as f64 / 1048576.0,
        unpacked as f64 / 1048576.0,
        binary_bytes as f64 / 1048576.0
    );
    assert!(
        unpacked - binary_bytes < 1024 * 1024,
        "{unpacked} bytes unpacked"
    );
    assert!(
        image.compressed < unpacked,
        "{} bytes pushed",
        image.compressed
    );
}

#[test]
fn the_image_finds_the_cluster_resolves_names_verifies_tls_and_restarts() {
    let image = built();
    // The image's root, with the pod's mount points (the kubelet's /etc/hosts, the token, Vault's
    // CA as the chart mounts it), as a runtime makes them.
    let root = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", image.rootfs().display()))
        .arg(root.path())
        .status()
        .unwrap();
    assert!(copied.success());
    for dir in [
        "var/run/secrets/kubernetes.io/serviceaccount",
        "etc/eso-recovery/vault-ca",
    ] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    std::fs::write(root.path().join("etc/hosts"), "").unwrap();

    let cp = ControlPlane::start(false);
    let seed = Seed::design();
    seed.apply(&cp);
    cp.apply_kustomize(&repo().join("manifests"));
    let tls_port = free_port();
    let bao = OpenBao::raft_with_tls(tls_port, &[VAULT_NAME]);

    let pod = tempfile::tempdir().unwrap();
    let sa = pod.path().join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    let token = cp.kubectl(&[
        "create",
        "token",
        "eso-recovery",
        "-n",
        "security",
        "--duration=1h",
    ]);
    std::fs::write(sa.join("token"), token.trim()).unwrap();
    std::fs::copy(&cp.ca, sa.join("ca.crt")).unwrap();
    std::fs::write(sa.join("namespace"), "security").unwrap();
    let ca = pod.path().join("vault-ca");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::copy(bao.ca_cert(), ca.join("ca.crt")).unwrap();
    let hosts = pod.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1\tlocalhost\n127.0.0.1\t{API_NAME}\n127.0.0.1\t{VAULT_NAME}\n"),
    )
    .unwrap();
    let api_port = cp.server.rsplit(':').next().unwrap().to_string();
    let mounts = [
        (
            sa.as_path(),
            "/var/run/secrets/kubernetes.io/serviceaccount",
        ),
        (ca.as_path(), "/etc/eso-recovery/vault-ca"),
        (hosts.as_path(), "/etc/hosts"),
    ];
    let env = |cacert: bool| {
        let mut env = vec![
            ("KUBERNETES_SERVICE_HOST", API_NAME.to_string()),
            ("KUBERNETES_SERVICE_PORT", api_port.clone()),
            ("VAULT_ADDR", format!("https://{VAULT_NAME}:{tls_port}")),
            ("ESO_RECOVERY_LOG_FORMAT", "json".to_string()),
            ("HOSTNAME", "eso-recovery-29410000-abcde".to_string()),
        ];
        if cacert {
            env.push((
                "VAULT_CACERT",
                "/etc/eso-recovery/vault-ca/ca.crt".to_string(),
            ));
        }
        env
    };
    let summary = |stdout: &str| -> Value {
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or(Value::Null)
    };

    // Healthy: the in-cluster config, both names resolved, both certificates verified.
    let (code, out, err) = run_in_image(image, root.path(), &mounts, &env(true));
    let s = summary(&out);
    assert!(
        code == 0 && s["outcome"] == "store_healthy" && s["vault"] == "active",
        "exit {code}\n{out}\n{err}"
    );

    // Without Vault's CA the system bundle does not trust it: never "ready".
    let (code, out, err) = run_in_image(image, root.path(), &mounts, &env(false));
    let s = summary(&out);
    assert!(
        code == 0
            && s["outcome"] == "vault_not_ready"
            && s["vault"]
                .as_str()
                .unwrap_or_default()
                .contains("UnknownIssuer"),
        "exit {code}\n{out}\n{err}"
    );

    // Degraded: it restarts, as the image's user, with the root read-only.
    seed.set_store(&cp, false);
    let (code, out, err) = run_in_image(image, root.path(), &mounts, &env(true));
    let s = summary(&out);
    assert!(
        code == 0 && s["outcome"] == "restarted",
        "exit {code}\n{out}\n{err}"
    );
    for at in seed.restarted_at(&cp) {
        assert!(at.is_some(), "a Deployment was not restarted: {out}");
    }
    // The Events name the pod, as the kubelet's HOSTNAME tells it.
    let events = seed.events(&cp);
    assert!(
        events
            .iter()
            .all(|e| e["reportingInstance"] == "eso-recovery-29410000-abcde"),
        "{events:?}"
    );
}
