//! Many ExternalSecrets at once, for the benchmarks' scale rows: created through the API
//! concurrently (kubectl's client-side rate limit would take minutes for thousands).

use futures::{StreamExt, stream};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::json;

use crate::{process::controlplane::ControlPlane, process::kube_api::KubeApi};

/// The names [`create_external_secrets`] gives: `app-0000`, `app-0001`, …
pub fn name(i: usize) -> String {
    format!("app-{i:04}")
}

/// How the ExternalSecrets are made.
pub struct Many<'a> {
    /// The ClusterSecretStore they read from.
    pub store: &'a str,
    /// Their namespace (created).
    pub namespace: &'a str,
    /// `spec.refreshInterval`.
    pub refresh: &'a str,
    /// The Vault key each reads (`None`: its own name).
    pub key: Option<&'a str>,
    /// Write the status ESO writes once synced (for a cluster with no ESO running).
    pub synced_status: bool,
}

impl Many<'static> {
    /// The benchmarks' and tests' scale rows: ExternalSecrets like the design's (`refreshInterval:
    /// 1h`) in `apps`, on the store `k8s-secrets`, all reading the design's Vault key, left for ESO
    /// to sync.
    pub fn like_the_design() -> Many<'static> {
        Many {
            store: "k8s-secrets",
            namespace: "apps",
            refresh: "1h",
            key: Some("postgres-secret"),
            synced_status: false,
        }
    }
}

/// Creates `n` ExternalSecrets shaped like the design's, each with its own target Secret.
pub fn create_external_secrets(cp: &ControlPlane, many: &Many<'_>, n: usize) {
    let namespace = many.namespace;
    cp.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
    ));
    let api = KubeApi::new(&cp.admin_kubeconfig);
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "external-secrets.io",
        "v1",
        "ExternalSecret",
    ));
    let es: Api<DynamicObject> = Api::namespaced_with(api.client.clone(), namespace, &resource);
    api.block_on(
        stream::iter(0..n)
            .for_each_concurrent(32, |i| {
                let es = es.clone();
                async move {
                    let name = name(i);
                    let key = many.key.map_or_else(|| name.clone(), str::to_string);
                    let object: DynamicObject = serde_json::from_value(json!({
                        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                        "metadata": {"name": name, "namespace": namespace,
                            "labels": {"app.kubernetes.io/name": name, "team": "bench"}},
                        "spec": {"refreshInterval": many.refresh,
                            "secretStoreRef": {"name": many.store, "kind": "ClusterSecretStore"},
                            "target": {"name": name, "creationPolicy": "Owner"},
                            "data": [
                                {"secretKey": "POSTGRES_USER", "remoteRef": {"key": key, "property": "POSTGRES_USER"}},
                                {"secretKey": "POSTGRES_PASSWORD", "remoteRef": {"key": key, "property": "POSTGRES_PASSWORD"}}
                            ]}
                    }))
                    .expect("an ExternalSecret");
                    es.create(&PostParams::default(), &object)
                        .await
                        .unwrap_or_else(|e| panic!("creating ExternalSecret {name}: {e}"));
                    if many.synced_status {
                        let status = json!({"status": {"binding": {"name": name}, "refreshTime": "2026-12-01T10:00:00Z",
                            "syncedResourceVersion": "1-0123456789abcdef0123456789abcdef",
                            "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
                                "message": "secret synced", "lastTransitionTime": "2026-12-01T10:00:00Z"}]}});
                        es.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                            .await
                            .unwrap_or_else(|e| panic!("writing the status of {name}: {e}"));
                    }
                }
            }),
    );
}
