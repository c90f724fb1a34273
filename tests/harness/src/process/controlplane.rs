//! A real control plane: etcd and kube-apiserver (RBAC, PodSecurity admission, TLS, service
//! account tokens), optionally kube-controller-manager, built from the Go modules by
//! `tests/controlplane/build.sh`, with ESO's real CRDs installed.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    node::netns::{NODE_IP, Netns},
    standin::relay::Relay,
    tools::eso_version::EsoVersion,
    tools::pki::Ca,
    tools::procs::{Proc, free_port, wait_until},
    tools::repo::script,
};

/// The folder with etcd, kube-apiserver, kubectl (and kube-controller-manager).
pub fn bins() -> PathBuf {
    static BINS: OnceLock<PathBuf> = OnceLock::new();
    BINS.get_or_init(|| script("tests/controlplane/build.sh"))
        .clone()
}

/// What a control plane runs and holds beyond etcd, kube-apiserver and the two CRDs eso-recovery
/// reads.
#[derive(Clone, Default)]
pub struct Options {
    /// kube-controller-manager's deployment and replicaset controllers.
    pub controller_manager: bool,
    /// An audit log of every request (for counting a run's requests).
    pub audit: bool,
    /// Every CRD of ESO's, as its controller needs (it watches them all).
    pub all_eso_crds: bool,
    /// The ESO release whose CRDs are installed.
    pub eso: EsoVersion,
    /// Run inside a node's namespaces: the API server on every address there, advertising the
    /// node's, reachable from the host through a relay on the same port of 127.0.0.1; with the
    /// controller manager, all of its default controllers (Jobs, CronJobs, EndpointSlices,
    /// ServiceAccounts, the root CA ConfigMap, garbage collection), as a cluster runs them.
    pub node: Option<Arc<Netns>>,
}

/// ESO's CRD files to install: ClusterSecretStore and ExternalSecret, or all of them.
fn crd_files(dir: &Path, all: bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".yaml")
                && name != "kustomization.yaml"
                && (all
                    || name == "external-secrets.io_clustersecretstores.yaml"
                    || name == "external-secrets.io_externalsecrets.yaml")
        })
        .collect();
    files.sort();
    files
}

/// Services' ClusterIPs; the first is the `kubernetes` Service's.
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The `kubernetes` Service's ClusterIP.
pub const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";

/// The admin's bearer token (group system:masters).
const ADMIN_TOKEN: &str = "eso-recovery-test-admin";

/// A running control plane. Its processes die with it, or with the test process.
pub struct ControlPlane {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The CA that signed the API server's certificate.
    pub ca: PathBuf,
    /// A kubeconfig for the admin.
    pub admin_kubeconfig: PathBuf,
    /// The CA the API server trusts for client certificates (the one that signed its own).
    client_ca: Ca,
    etcd: Mutex<Option<Proc>>,
    apiserver: Mutex<Option<Proc>>,
    controller_manager: Mutex<Option<Proc>>,
    node: Option<Arc<Netns>>,
    _relay: Option<Relay>,
    /// How long etcd + kube-apiserver took to be ready.
    pub startup: Duration,
    /// The ESO release whose CRDs it serves.
    pub eso: EsoVersion,
}

impl ControlPlane {
    /// One control plane for the whole test binary, started by the first test that asks. Started
    /// from a thread that lives as long as the process, so PR_SET_PDEATHSIG fires only at exit.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let started = std::panic::catch_unwind(|| ControlPlane::start(false));
                let failed = started.is_err();
                let _ = tx.send(started);
                if !failed {
                    loop {
                        std::thread::park();
                    }
                }
            });
            match rx.recv() {
                Ok(Ok(cp)) => {
                    // A static is never dropped: remove its folder when the process exits (its
                    // processes die then too, by their parent-death signal).
                    static DIR: OnceLock<PathBuf> = OnceLock::new();
                    extern "C" fn remove_dir() {
                        if let Some(dir) = DIR.get() {
                            let _ = std::fs::remove_dir_all(dir);
                        }
                    }
                    let _ = DIR.set(cp.dir.clone());
                    // SAFETY: registers a plain function that touches only a static.
                    unsafe { libc::atexit(remove_dir) };
                    cp
                }
                _ => panic!("the shared control plane did not start"),
            }
        })
    }

    /// Starts etcd and kube-apiserver (and kube-controller-manager's deployment and replicaset
    /// controllers if asked), installs ESO's CRDs, and waits until all is ready.
    pub fn start(with_controller_manager: bool) -> ControlPlane {
        Self::start_with(Options {
            controller_manager: with_controller_manager,
            ..Options::default()
        })
    }

    /// As [`ControlPlane::start`], with the [`Options`] given.
    pub fn start_with(options: Options) -> ControlPlane {
        let bins = bins();
        let crds = options.eso.crds();
        let tmp = tempfile::Builder::new()
            .prefix("eso-recovery-cp-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let client_ca = write_pki(&dir, options.node.is_some());
        let t0 = Instant::now();
        let command = |program: PathBuf| match &options.node {
            Some(netns) => netns.command(program),
            None => Command::new(program),
        };

        let (client_port, peer_port) = (free_port(), free_port());
        let etcd = Proc::spawn(
            "etcd",
            command(bins.join("etcd"))
                .arg(format!("--data-dir={}", dir.join("etcd").display()))
                .arg(format!(
                    "--listen-client-urls=http://127.0.0.1:{client_port}"
                ))
                .arg(format!(
                    "--advertise-client-urls=http://127.0.0.1:{client_port}"
                ))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
                ))
                .arg(format!(
                    "--initial-cluster=default=http://127.0.0.1:{peer_port}"
                ))
                .arg("--unsafe-no-fsync")
                .arg("--log-level=warn"),
            &dir.join("etcd.log"),
        );

        let port = free_port();
        let server = format!("https://127.0.0.1:{port}");
        let mut audit_args = Vec::new();
        if options.audit {
            let policy = dir.join("audit-policy.yaml");
            std::fs::write(
                &policy,
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
            )
            .unwrap();
            audit_args.push(format!("--audit-policy-file={}", policy.display()));
            audit_args.push(format!(
                "--audit-log-path={}",
                dir.join("audit.log").display()
            ));
            audit_args.push("--audit-log-format=json".into());
        }
        let apiserver = Proc::spawn(
            "kube-apiserver",
            command(bins.join("kube-apiserver"))
                .args(&audit_args)
                .arg(format!("--etcd-servers=http://127.0.0.1:{client_port}"))
                .arg(format!("--secure-port={port}"))
                .args(match options.node {
                    // The kubelet by its address, never by a name to look up.
                    Some(_) => vec![
                        "--bind-address=0.0.0.0".to_string(),
                        format!("--advertise-address={NODE_IP}"),
                        "--kubelet-preferred-address-types=InternalIP".to_string(),
                    ],
                    None => vec![
                        "--bind-address=127.0.0.1".to_string(),
                        "--advertise-address=127.0.0.1".to_string(),
                    ],
                })
                .arg(format!("--cert-dir={}", dir.join("certs").display()))
                .arg(format!(
                    "--tls-cert-file={}",
                    dir.join("server.pem").display()
                ))
                .arg(format!(
                    "--tls-private-key-file={}",
                    dir.join("server-key.pem").display()
                ))
                .arg(format!("--client-ca-file={}", dir.join("ca.pem").display()))
                .arg(format!(
                    "--token-auth-file={}",
                    dir.join("tokens.csv").display()
                ))
                .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
                .arg(format!(
                    "--service-account-key-file={}",
                    dir.join("sa.pub").display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    dir.join("sa-key.pem").display()
                ))
                .arg("--authorization-mode=RBAC")
                .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
                .args(["--allow-privileged=false", "--profiling=false", "--v=1"]),
            &dir.join("kube-apiserver.log"),
        );

        let admin_kubeconfig = dir.join("admin.kubeconfig");
        write_kubeconfig(
            &admin_kubeconfig,
            &server,
            &dir.join("ca.pem"),
            &format!("token: {ADMIN_TOKEN}"),
        );
        let relay = options
            .node
            .as_ref()
            .map(|netns| Relay::into_netns(netns, port, SocketAddr::from(([127, 0, 0, 1], port))));
        let mut cp = ControlPlane {
            _dir: tmp,
            dir: dir.clone(),
            server,
            ca: dir.join("ca.pem"),
            admin_kubeconfig,
            client_ca,
            etcd: Mutex::new(Some(etcd)),
            apiserver: Mutex::new(Some(apiserver)),
            controller_manager: Mutex::new(None),
            node: options.node.clone(),
            _relay: relay,
            startup: Duration::ZERO,
            eso: options.eso,
        };
        let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("kube-apiserver /readyz", Duration::from_secs(90), || {
                cp.kubectl_output(&["get", "--raw", "/readyz"])
                    .status
                    .success()
            })
        }));
        if ready.is_err() {
            panic!("{}\n{}", cp.log("apiserver"), cp.log("etcd"));
        }
        cp.startup = t0.elapsed();
        eprintln!("control plane ready in {:?} at {}", cp.startup, cp.server);

        // Server-side: the CRDs are larger than client-side apply's annotation limit. Retried:
        // right after /readyz the first writes can still be refused.
        let files = crd_files(&crds, options.all_eso_crds);
        let mut args = vec!["apply".to_string(), "--server-side".into()];
        for f in &files {
            args.push("-f".into());
            args.push(f.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut last = String::new();
        let ok = (0..20).any(|_| {
            let out = cp.kubectl_output(&args);
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            out.status.success() || {
                std::thread::sleep(Duration::from_millis(250));
                false
            }
        });
        assert!(ok, "installing ESO's CRDs: {last}");
        // Right after the create a CRD may have no status yet, which `kubectl wait` takes for an
        // error rather than "not yet": ask again.
        wait_until("ESO's CRDs Established", Duration::from_secs(60), || {
            cp.kubectl_output(&[
                "wait",
                "--for=condition=Established",
                "--timeout=10s",
                "crd/clustersecretstores.external-secrets.io",
                "crd/externalsecrets.external-secrets.io",
            ])
            .status
            .success()
        });
        if options.controller_manager {
            cp.start_controller_manager();
        }
        cp
    }

    fn start_controller_manager(&self) {
        let program = bins().join("kube-controller-manager");
        let mut cmd = match &self.node {
            Some(netns) => {
                let mut cmd = netns.command(program);
                cmd.arg("--controllers=*")
                    .arg(format!("--root-ca-file={}", self.ca.display()))
                    .arg(format!(
                        "--service-account-private-key-file={}",
                        self.dir.join("sa-key.pem").display()
                    ));
                cmd
            }
            None => {
                let mut cmd = Command::new(program);
                cmd.arg("--controllers=deployment,replicaset");
                cmd
            }
        };
        let proc = Proc::spawn(
            "kube-controller-manager",
            cmd.arg(format!("--kubeconfig={}", self.admin_kubeconfig.display()))
                .arg("--leader-elect=false")
                .args(["--bind-address=127.0.0.1", "--secure-port=0", "--v=1"]),
            &self.dir.join("kube-controller-manager.log"),
        );
        *self.controller_manager.lock().unwrap() = Some(proc);
    }

    fn log(&self, which: &str) -> String {
        let guard = match which {
            "etcd" => self.etcd.lock(),
            "apiserver" => self.apiserver.lock(),
            _ => self.controller_manager.lock(),
        };
        guard
            .unwrap()
            .as_ref()
            .map(Proc::log_tail)
            .unwrap_or_default()
    }

    /// The API server's address as a client reaches it: from a pod on the node (`in_pod`), the
    /// `kubernetes` Service's name; from the host, [`ControlPlane::server`].
    pub fn server_for(&self, in_pod: bool) -> String {
        if in_pod && self.node.is_some() {
            "https://kubernetes.default.svc".to_string()
        } else {
            self.server.clone()
        }
    }

    /// The audit log's lines so far (one JSON object per completed request).
    pub fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Sends a signal to kube-apiserver (SIGSTOP to make it hang, SIGCONT to resume).
    pub fn signal_apiserver(&self, sig: i32) {
        if let Some(p) = self.apiserver.lock().unwrap().as_ref() {
            p.signal(sig);
        }
    }

    /// Kills kube-apiserver for good: its port then refuses connections.
    pub fn kill_apiserver(&self) {
        *self.apiserver.lock().unwrap() = None;
    }

    /// kubectl as the admin; its output whatever the exit code.
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.admin_kubeconfig, args)
    }

    /// kubectl with another kubeconfig.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(bins().join("kubectl"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("running kubectl")
    }

    /// kubectl as the admin; panics with its stderr on failure, returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` with `yaml`.
    pub fn apply(&self, yaml: &str) -> String {
        let path = self.dir.join(format!("apply-{}.yaml", free_port()));
        std::fs::write(&path, yaml).unwrap();
        self.kubectl(&["apply", "-f", &path.display().to_string()])
    }

    /// `kubectl apply` of objects written as JSON.
    pub fn apply_objects(&self, objects: &[Value]) -> String {
        let docs: Vec<String> = objects.iter().map(Value::to_string).collect();
        self.apply(&docs.join("\n---\n"))
    }

    /// `kubectl apply -k DIR`, which must succeed with nothing on stderr (no Pod Security or
    /// deprecation warning).
    pub fn apply_kustomize(&self, dir: &Path) {
        let out = self.kubectl_output(&["apply", "-k", &dir.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "kubectl apply -k {}: {stderr}",
            dir.display()
        );
    }

    /// Waits until the resync guard (manifests/resync's ValidatingAdmissionPolicy) is in force
    /// for `kubeconfig`'s identity (a dry-run change of another annotation on `store` is refused
    /// by it), or with `in_force` false until it is not. Policies load and unload asynchronously,
    /// a few seconds after they change.
    pub fn wait_for_resync_guard(&self, kubeconfig: &Path, store: &str, in_force: bool) {
        let mut last = String::new();
        let probe = |last: &mut String| {
            let out = self.kubectl_as(
                kubeconfig,
                &[
                    "annotate",
                    "--dry-run=server",
                    "--overwrite",
                    "clustersecretstore",
                    store,
                    "eso-recovery/guard-probe=1",
                ],
            );
            *last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let refused = !out.status.success() && last.contains("eso-recovery/resynced-at");
            refused == in_force
        };
        let start = Instant::now();
        while !probe(&mut last) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the resync guard was {}in force after 30 s; the last probe said: {last}",
                if in_force { "not " } else { "still " }
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Asserts what `--strategy resync`'s identity (manifests/resync or the chart with
    /// `config.strategy=resync`, for the design's names, with `other-store` beside) may change:
    /// the annotation `eso-recovery/resynced-at` on ExternalSecrets and the watched store, and
    /// nothing else; refusals by the admission policy name that key. Prints the table.
    pub fn assert_resync_least_privilege(&self, kubeconfig: &Path) {
        // PATCH requests as eso-recovery sends them (kubectl's `patch`, `annotate` and `label`
        // read the object first, which this identity may not do for an ExternalSecret).
        use kube::{
            Api,
            api::{Patch, PatchParams},
            core::{ApiResource, DynamicObject, GroupVersionKind},
        };
        let api = crate::process::kube_api::KubeApi::new(kubeconfig);
        let resource =
            |kind| ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind));
        let es: Api<DynamicObject> =
            Api::namespaced_with(api.client.clone(), "db", &resource("ExternalSecret"));
        let stores: Api<DynamicObject> =
            Api::all_with(api.client.clone(), &resource("ClusterSecretStore"));
        let key = "eso-recovery/resynced-at";
        let at = "2026-12-05T12:00:00Z";
        let annotations = |pairs: Value| serde_json::json!({"metadata": {"annotations": pairs}});
        let rows: Vec<(&str, &Api<DynamicObject>, &str, Value, bool)> = vec![
            (
                "the annotation on an ExternalSecret",
                &es,
                "postgres-secret",
                annotations(serde_json::json!({key: at})),
                true,
            ),
            (
                "the annotation on the watched store",
                &stores,
                "k8s-secrets",
                annotations(serde_json::json!({key: at})),
                true,
            ),
            (
                "an ExternalSecret's spec",
                &es,
                "postgres-secret",
                serde_json::json!({"spec": {"refreshInterval": "1m"}}),
                false,
            ),
            (
                "another annotation",
                &es,
                "postgres-secret",
                annotations(serde_json::json!({"force-sync": "1"})),
                false,
            ),
            (
                "a label",
                &es,
                "postgres-secret",
                serde_json::json!({"metadata": {"labels": {"team": "other"}}}),
                false,
            ),
            (
                "the key together with another annotation",
                &es,
                "postgres-secret",
                annotations(serde_json::json!({key: "2026-12-05T12:00:01Z", "force-sync": "2"})),
                false,
            ),
            (
                "an annotation removed",
                &es,
                "postgres-secret",
                annotations(
                    serde_json::json!({"kubectl.kubernetes.io/last-applied-configuration": null}),
                ),
                false,
            ),
            (
                "a finalizer",
                &es,
                "postgres-secret",
                serde_json::json!({"metadata": {"finalizers": ["example.com/hold"]}}),
                false,
            ),
            (
                "a store's spec",
                &stores,
                "k8s-secrets",
                serde_json::json!({"spec": {"refreshInterval": 7}}),
                false,
            ),
            (
                "a store not in resourceNames",
                &stores,
                "other-store",
                annotations(serde_json::json!({key: at})),
                false,
            ),
        ];
        eprintln!("| as eso-recovery's ServiceAccount (--strategy resync) | result |\n|---|---|");
        let mut wrong = Vec::new();
        let mut row = |what: &str, got: &str, allowed: bool, detail: String| {
            eprintln!("| {what} | {got} |");
            let policy_names_key = !got.contains("policy") || detail.contains(key);
            if (got == "allowed") != allowed || !policy_names_key {
                wrong.push(format!("{what}: {got}: {detail}"));
            }
        };
        for (what, api_of, name, body, allowed) in rows {
            let result =
                api.block_on(api_of.patch(name, &PatchParams::default(), &Patch::Merge(&body)));
            let (got, detail) = match result {
                Ok(_) => ("allowed", String::new()),
                Err(kube::Error::Api(s)) if s.message.contains("ValidatingAdmissionPolicy") => {
                    ("refused by the admission policy", s.message.clone())
                }
                Err(kube::Error::Api(s)) if s.code == 403 => ("refused by RBAC", s.message.clone()),
                Err(e) => ("failed otherwise", e.to_string()),
            };
            row(what, got, allowed, detail);
        }
        for (what, store, allowed) in [
            ("watching the watched store by name", "k8s-secrets", true),
            (
                "watching a store not in resourceNames",
                "other-store",
                false,
            ),
        ] {
            let params = kube::api::WatchParams::default()
                .fields(&format!("metadata.name={store}"))
                .timeout(1);
            let (got, detail) = match api.block_on(stores.watch(&params, "0")) {
                Ok(_) => ("allowed", String::new()),
                Err(kube::Error::Api(s)) if s.code == 403 => ("refused by RBAC", s.message),
                Err(e) => ("failed otherwise", e.to_string()),
            };
            row(what, got, allowed, detail);
        }
        for (what, args) in [
            (
                "a Secret read",
                &["get", "secret", "anything", "-n", "security"][..],
            ),
            (
                "an ExternalSecret deleted",
                &["delete", "externalsecret", "postgres-secret", "-n", "db"],
            ),
        ] {
            let out = self.kubectl_as(kubeconfig, args);
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            let got = if out.status.success() {
                "allowed"
            } else if stderr.contains("Forbidden") {
                "refused by RBAC"
            } else {
                "failed otherwise"
            };
            row(what, got, false, stderr);
        }
        assert!(wrong.is_empty(), "not as least privilege wants: {wrong:#?}");
    }

    /// Asserts that `kubeconfig`'s identity (eso-recovery's, from manifests/ or the chart, for
    /// the design's names) is refused everything it does not need, and may list ExternalSecrets.
    pub fn assert_least_privilege(&self, kubeconfig: &Path) {
        let refused = |args: &[&str]| {
            let out = self.kubectl_as(kubeconfig, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains("Forbidden"),
                "{args:?} was not refused: {stderr}"
            );
        };
        refused(&["get", "secrets", "-n", "security"]);
        refused(&["get", "secret", "anything", "-n", "security"]);
        refused(&[
            "patch",
            "deployment",
            "other-app",
            "-n",
            "security",
            "-p",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        ]);
        refused(&["get", "clustersecretstore", "other-store"]);
        refused(&["get", "deployments", "-n", "security"]);
        // ExternalSecrets: listed, never read one by one, annotated (force-sync), changed or deleted.
        refused(&["get", "externalsecret", "postgres-secret", "-n", "db"]);
        refused(&[
            "annotate",
            "externalsecret",
            "postgres-secret",
            "-n",
            "db",
            "force-sync=1",
        ]);
        refused(&["delete", "externalsecret", "postgres-secret", "-n", "db"]);
        let listed = self.kubectl_as(kubeconfig, &["get", "externalsecrets", "-A", "-o", "name"]);
        assert!(
            listed.status.success(),
            "listing ExternalSecrets: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        // Its own record: that one Lease, read and patched by name; no other, and no create,
        // list or delete.
        let record = r#"{"metadata":{"annotations":{"checked":"yes"}}}"#;
        for allowed in [
            &["get", "lease", "eso-recovery", "-n", "security"][..],
            &[
                "patch",
                "lease",
                "eso-recovery",
                "-n",
                "security",
                "--type=merge",
                "-p",
                record,
            ],
        ] {
            let out = self.kubectl_as(kubeconfig, allowed);
            assert!(
                out.status.success(),
                "{allowed:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.kubectl(&[
            "annotate",
            "lease",
            "eso-recovery",
            "-n",
            "security",
            "checked-",
        ]);
        refused(&["get", "leases", "-n", "security"]);
        refused(&[
            "get",
            "lease",
            "kube-controller-manager",
            "-n",
            "kube-system",
        ]);
        refused(&[
            "patch",
            "lease",
            "other",
            "-n",
            "security",
            "--type=merge",
            "-p",
            record,
        ]);
        let other = std::env::temp_dir().join(format!("other-lease-{}.json", std::process::id()));
        std::fs::write(
            &other,
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"other","namespace":"security"},"spec":{}}"#,
        )
        .expect("writing a Lease manifest");
        refused(&["create", "-f", &other.display().to_string()]);
        let _ = std::fs::remove_file(&other);
        refused(&["delete", "lease", "eso-recovery", "-n", "security"]);
    }

    /// An object as JSON.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get", "-o", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl get -o json")
    }

    /// A kubeconfig for a ServiceAccount, from a TokenRequest (`kubectl create token`).
    pub fn kubeconfig_for(&self, namespace: &str, service_account: &str) -> PathBuf {
        let token = self.kubectl(&[
            "create",
            "token",
            service_account,
            "-n",
            namespace,
            "--duration=1h",
        ]);
        let path = self
            .dir
            .join(format!("{namespace}-{service_account}.kubeconfig"));
        write_kubeconfig(
            &path,
            &self.server,
            &self.ca,
            &format!("token: {}", token.trim()),
        );
        path
    }

    /// A kubeconfig whose user is a client certificate for `user` in `group`, by file paths
    /// (`client-certificate`, `client-key`), as kubeadm's, kind's and minikube's are; with
    /// `trusted` false, one the API server's CA did not sign (401).
    pub fn kubeconfig_with_client_cert(&self, user: &str, group: &str, trusted: bool) -> PathBuf {
        let stem = format!("client-{user}");
        let (untrusted, ca) = (
            Ca::new("a CA the API server does not know"),
            &self.client_ca,
        );
        (if trusted { ca } else { &untrusted }).write_client(&self.dir, &stem, user, group);
        let path = self.dir.join(format!("{stem}.kubeconfig"));
        let (cert, key) = (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}-key.pem")),
        );
        let credential = format!(
            "client-certificate: {}\n    client-key: {}",
            cert.display(),
            key.display()
        );
        write_kubeconfig(&path, &self.server, &self.ca, &credential);
        path
    }

    /// A kubeconfig with a token the API server does not know (401).
    pub fn kubeconfig_with_bad_token(&self) -> PathBuf {
        let path = self.dir.join("bad-token.kubeconfig");
        write_kubeconfig(&path, &self.server, &self.ca, "token: not-a-valid-token");
        path
    }
}

/// A kubeconfig for `server` whose user's fields are `credential` (YAML at the user's indent).
fn write_kubeconfig(path: &Path, server: &str, ca: &Path, credential: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: user\n  user:\n    {credential}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: user\ncurrent-context: local\n",
        ca = ca.display()
    );
    std::fs::write(path, text).unwrap();
}

/// A CA, the API server's certificate for 127.0.0.1/localhost, the service-account signing key
/// and the static admin token. Returns the CA, which also signs users' client certificates.
fn write_pki(dir: &Path, node: bool) -> Ca {
    use rcgen::KeyPair;
    let mut names = vec!["127.0.0.1", "localhost", "kubernetes.default.svc"];
    if node {
        // As a pod reaches it: the `kubernetes` Service's ClusterIP and names, the node's address.
        names.extend([
            NODE_IP,
            KUBERNETES_SERVICE_IP,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc.cluster.local",
        ]);
    }
    let ca = Ca::new("eso-recovery test CA");
    ca.write_server(dir, "server", &names);
    let sa_key = KeyPair::generate().unwrap();
    std::fs::write(dir.join("sa-key.pem"), sa_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("sa.pub"), sa_key.public_key_pem()).unwrap();
    std::fs::write(
        dir.join("tokens.csv"),
        format!("{ADMIN_TOKEN},admin,uid-admin,\"system:masters\"\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    ca
}
