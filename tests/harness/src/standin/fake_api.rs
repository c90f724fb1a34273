//! An in-process stand-in for the Kubernetes API, on 127.0.0.1, for the faults a real API server
//! cannot be made to produce on demand: a 500 (or 409, 422) on one PATCH, 429 throttling, a
//! response that never comes, a store status of a shape the CRD schema would refuse. Everything
//! else is tested against the real kube-apiserver.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// What the stand-in answers, changed by the tests as they go.
#[derive(Default)]
pub struct FakeState {
    /// Stores by name: (HTTP code, body).
    pub stores: HashMap<String, (u16, Value)>,
    /// Deployments by name (namespace `security`); a missing one is a 404.
    pub deployments: HashMap<String, Value>,
    /// PATCH of these Deployments answers this code.
    pub patch_faults: HashMap<String, u16>,
    /// Answer this many requests with 429 first.
    pub throttle: u32,
    /// Paths (prefix match) whose requests never get an answer.
    pub hang: HashSet<String>,
    /// Every request seen: "METHOD /path?query".
    pub requests: Vec<String>,
    /// The Events posted.
    pub events: Vec<Value>,
}

/// A running stand-in; stops when dropped.
pub struct FakeApi {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its state.
    pub state: Arc<Mutex<FakeState>>,
    _dir: tempfile::TempDir,
    /// A kubeconfig pointing at it.
    pub kubeconfig: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeApi {
    /// Starts on a free port, with the store degraded and three complete Deployments.
    pub fn start() -> FakeApi {
        let state = Arc::new(Mutex::new(FakeState::default()));
        {
            let mut s = state.lock().unwrap();
            s.stores
                .insert("k8s-secrets".into(), (200, store("k8s-secrets", "False")));
            for d in crate::process::seed::DEPLOYMENTS {
                s.deployments.insert(d.to_string(), deployment(d));
            }
        }
        let (tx_addr, rx_addr) = std::sync::mpsc::channel::<SocketAddr>();
        let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx_addr.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().fallback(handle).with_state(shared);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = rx_stop => {}
                }
            });
        });
        let addr = rx_addr.recv().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        write_plain_kubeconfig(&kubeconfig, &format!("http://{addr}"));
        FakeApi {
            url: format!("http://{addr}"),
            state,
            _dir: dir,
            kubeconfig,
            shutdown: Some(tx_stop),
        }
    }

    /// Changes the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn write_plain_kubeconfig(path: &Path, server: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user:\n    token: fake\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\ncurrent-context: fake\n"
    );
    std::fs::write(path, text).unwrap();
}

/// A ClusterSecretStore with a Ready condition of `status`.
pub fn store(name: &str, status: &str) -> Value {
    let reason = if status == "True" {
        "Valid"
    } else {
        "InvalidProviderConfig"
    };
    json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
        "metadata": {"name": name, "uid": "u-store"},
        "spec": {"provider": {"vault": {"server": "http://vault:8200"}}},
        "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason,
            "message": "unable to create client", "lastTransitionTime": "2026-12-01T10:00:00Z"}]}})
}

/// A Deployment whose rollout is complete.
pub fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "security", "uid": format!("uid-{name}"), "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let hang = {
        let mut s = state.lock().unwrap();
        s.requests.push(format!(
            "{method} {}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
        ));
        if s.throttle > 0 {
            s.throttle -= 1;
            return status(
                429,
                "TooManyRequests",
                "the server has received too many requests",
            );
        }
        s.hang.iter().any(|h| path.starts_with(h.as_str()))
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let mut s = state.lock().unwrap();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        (
            "GET",
            [
                "apis",
                "external-secrets.io",
                "v1",
                "clustersecretstores",
                name,
            ],
        ) => match s.stores.get(*name) {
            Some((200, v)) => axum::Json(v.clone()).into_response(),
            Some((code, _)) => status(
                *code,
                "Failure",
                &format!("injected {code} for store {name}"),
            ),
            None => status(
                404,
                "NotFound",
                &format!("clustersecretstores.external-secrets.io \"{name}\" not found"),
            ),
        },
        ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
            match s.deployments.get(*name) {
                Some(d) => axum::Json(d.clone()).into_response(),
                None => status(
                    404,
                    "NotFound",
                    &format!("deployments.apps \"{name}\" not found"),
                ),
            }
        }
        ("PATCH", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
            let name = name.to_string();
            if let Some(code) = s.patch_faults.get(&name) {
                return status(
                    *code,
                    "InternalError",
                    &format!("injected {code} on PATCH of {name}"),
                );
            }
            let Some(d) = s.deployments.get_mut(&name) else {
                return status(
                    404,
                    "NotFound",
                    &format!("deployments.apps \"{name}\" not found"),
                );
            };
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let dry_run = uri.query().unwrap_or_default().contains("dryRun=All");
            let mut patched = d.clone();
            if let Some(ann) = patch["spec"]["template"]["metadata"]["annotations"].as_object() {
                let target = &mut patched["spec"]["template"]["metadata"]["annotations"];
                if !target.is_object() {
                    *target = json!({});
                }
                for (k, v) in ann {
                    target[k] = v.clone();
                }
                let generation = patched["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                patched["metadata"]["generation"] = json!(generation);
            }
            if !dry_run {
                *d = patched.clone();
            }
            axum::Json(patched).into_response()
        }
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", _, "events"]) => {
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            s.events.push(event.clone());
            (StatusCode::CREATED, axum::Json(event)).into_response()
        }
        _ => status(
            404,
            "NotFound",
            &format!("the stand-in does not serve {method} {path}"),
        ),
    }
}
