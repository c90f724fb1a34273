//! Test fixtures: API objects shaped like the real ones, and the kube-rs `tower-test` mock
//! (`ApiServerVerifier`) that asserts each request a client sends and answers it.

use http::{Request, Response};
use jiff::Timestamp;
use k8s_openapi::{
    api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Client, client::Body};
use serde_json::Value;

use crate::{
    deployment::DeploymentState,
    store::{ConditionDetail, StoreCondition},
};

/// The fixed "now" of the unit tests.
pub fn now() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// A Deployment whose rollout is complete, one replica, never restarted.
pub fn deployment(name: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("security".into()),
            uid: Some(format!("uid-{name}")),
            generation: Some(2),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            ..Default::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(1),
            updated_replicas: Some(1),
            ready_replicas: Some(1),
            available_replicas: Some(1),
            ..Default::default()
        }),
    }
}

/// The decision's view of [`deployment`].
pub fn state(name: &str) -> DeploymentState {
    DeploymentState::from_deployment(&deployment(name))
}

/// What ESO writes when Vault is sealed.
pub fn degraded() -> StoreCondition {
    StoreCondition::Degraded(ConditionDetail {
        reason: "InvalidProviderConfig".into(),
        message: "unable to create client".into(),
        since: Some("2026-12-01T11:00:00Z".into()),
    })
}

/// The ESO releases whose objects are kept in `src/fixtures/eso/`, oldest first.
pub const ESO_RELEASES: [&str; 2] = ["0.16.2", "2.9.0"];

/// `(release, name, JSON)` for each file under `src/fixtures/eso/RELEASE/NAME.json`.
macro_rules! real_eso_objects {
    ($($release:literal: $($name:literal),+;)+) => {
        &[$($(
            ($release, $name, include_str!(concat!("fixtures/eso/", $release, "/", $name, ".json"))),
        )+)+]
    };
}

/// The objects each release wrote, read back from a real kube-apiserver during
/// `tests/real_eso.rs` (a sealed Vault, Kubernetes auth), kept verbatim but for `managedFields`.
const REAL_ESO_OBJECTS: &[(&str, &str, &str)] = real_eso_objects! {
    "0.16.2": "clustersecretstore-ready", "clustersecretstore-degraded", "externalsecret-synced", "externalsecret-failing";
    "2.9.0": "clustersecretstore-ready", "clustersecretstore-degraded", "externalsecret-synced", "externalsecret-failing";
};

/// One object as that real ESO release wrote it: `name` is `clustersecretstore-{ready,degraded}`
/// or `externalsecret-{synced,failing}`.
pub fn real_eso_object(release: &str, name: &str) -> Value {
    let (_, _, text) = REAL_ESO_OBJECTS
        .iter()
        .find(|(r, n, _)| *r == release && *n == name)
        .unwrap_or_else(|| panic!("no fixture {release}/{name}"));
    serde_json::from_str(text).unwrap()
}

/// What ESO writes when the store validates.
pub fn ready_store() -> StoreCondition {
    StoreCondition::Ready(ConditionDetail {
        reason: "Valid".into(),
        message: "store validated".into(),
        since: Some("2026-12-01T10:00:00Z".into()),
    })
}

/// A ClusterSecretStore object as the API server returns it.
pub fn store_object(name: &str, status: &str, reason: &str, message: &str) -> Value {
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": name, "uid": "s-1", "resourceVersion": "7", "generation": 1},
        "spec": {"provider": {"vault": {"server": "http://vault.security.svc.cluster.local:8200",
            "path": "secret", "version": "v2", "auth": {"kubernetes": {"mountPath": "kubernetes",
            "role": "eso-reader", "serviceAccountRef": {"name": "eso-vault-auth", "namespace": "security"}}}}}},
        "status": {"capabilities": "ReadWrite", "conditions": [{"type": "Ready", "status": status,
            "reason": reason, "message": message, "lastTransitionTime": "2026-12-01T11:00:00Z"}]}
    })
}

/// The design's ExternalSecret as the API server returns it, with ESO's Ready condition.
pub fn external_secret(
    namespace: &str,
    name: &str,
    status: &str,
    reason: &str,
    since: &str,
) -> Value {
    let message = if status == "True" {
        "secret synced"
    } else {
        "could not get secret data from provider"
    };
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("es-{name}"),
            "resourceVersion": "11", "generation": 1},
        "spec": {"refreshInterval": "1h",
            "secretStoreRef": {"name": "k8s-secrets", "kind": "ClusterSecretStore"},
            "target": {"name": name, "creationPolicy": "Owner"},
            "data": [{"secretKey": "POSTGRES_USER", "remoteRef": {"key": "postgres-secret", "property": "POSTGRES_USER"}}]},
        "status": {"binding": {"name": name}, "refreshTime": "2026-12-01T10:00:00Z",
            "syncedResourceVersion": "1-abc", "conditions": [{"type": "Ready", "status": status,
            "reason": reason, "message": message, "lastTransitionTime": since}]}
    })
}

/// One request as the mock API server received it.
pub struct Received {
    /// GET, PATCH, POST.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, or "".
    pub query: String,
    /// The Content-Type header, or "".
    pub content_type: String,
    /// The body, parsed as JSON (Null when empty).
    pub body: Value,
}

impl Received {
    /// The query's `key=value` pairs, sorted (kube writes `?&a=b`, which servers accept).
    pub fn query_pairs(&self) -> Vec<&str> {
        let mut pairs: Vec<&str> = self.query.split('&').filter(|p| !p.is_empty()).collect();
        pairs.sort_unstable();
        pairs
    }
}

/// The API-server side of a `tower-test` mock client.
pub struct ApiServerVerifier(pub tower_test::mock::Handle<Request<Body>, Response<Body>>);

/// A client whose every request goes to the returned verifier.
pub fn mock_client() -> (Client, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServerVerifier(handle))
}

impl ApiServerVerifier {
    /// Waits for the next request and answers it with `status` and `body`.
    pub async fn answer(&mut self, status: u16, body: Value) -> Received {
        let (request, send) = self
            .0
            .next_request()
            .await
            .expect("the client sent no request");
        let (parts, body_in) = request.into_parts();
        let bytes = body_in.collect_bytes().await.unwrap();
        let received = Received {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            },
        };
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        send.send_response(response);
        received
    }
}

/// A Kubernetes `Status` error body.
pub fn status_error(code: u16, reason: &str, message: &str) -> Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": reason, "code": code})
}
