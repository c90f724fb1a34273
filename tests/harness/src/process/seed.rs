//! The design's objects (namespace `security`, ServiceAccount `eso-vault-auth`, ClusterSecretStore
//! `k8s-secrets`, ExternalSecret `postgres-secret` in `db`) and three Deployments shaped like the
//! ESO Helm chart's. A test that must not share them gets the same shapes under its own names.

use serde_json::{Value, json};

use crate::process::controlplane::ControlPlane;

/// ESO's three Deployments, as the Helm chart names them.
pub const DEPLOYMENTS: [&str; 3] = [
    "external-secrets",
    "external-secrets-webhook",
    "external-secrets-cert-controller",
];

/// Where a test's objects live.
#[derive(Clone, Debug)]
pub struct Seed {
    /// ESO's namespace.
    pub namespace: String,
    /// The ClusterSecretStore.
    pub store: String,
    /// ESO's Deployments.
    pub deployments: Vec<String>,
    /// Replicas of each (0 lets kube-controller-manager finish rollouts with no kubelet).
    pub replicas: i32,
    /// The store's `spec.refreshInterval` in seconds (how often ESO validates it); the design's
    /// store has none (ESO's default, every 5 minutes).
    pub store_refresh: Option<u32>,
    /// The ExternalSecret's `spec.refreshInterval` (the design's: `1h`).
    pub es_refresh: String,
    /// The namespace of the ExternalSecret `postgres-secret`: the design's `db`; a test's own,
    /// `db-<test>`, so two tests seeding at once never create one object (a client-side apply
    /// race: AlreadyExists) nor point it at each other's store.
    pub apps: String,
}

impl Seed {
    /// Exactly the design's names.
    pub fn design() -> Seed {
        Seed {
            namespace: "security".into(),
            store: "k8s-secrets".into(),
            deployments: DEPLOYMENTS.iter().map(|s| s.to_string()).collect(),
            replicas: 1,
            store_refresh: None,
            es_refresh: "1h".into(),
            apps: "db".into(),
        }
    }

    /// The design's names for a cluster where ESO's real controller runs: kube-controller-manager
    /// owns the Deployments' status (0 replicas, so rollouts complete with no kubelet) and the
    /// ExternalSecret refreshes every `es_refresh`, so a seal shows within a test.
    pub fn with_real_eso(store_refresh: Option<u32>, es_refresh: &str) -> Seed {
        Seed {
            replicas: 0,
            store_refresh,
            es_refresh: es_refresh.into(),
            ..Seed::design()
        }
    }

    /// The same shapes under a test's own namespace and store name.
    pub fn own(test: &str) -> Seed {
        Seed {
            namespace: format!("t-{test}"),
            store: format!("store-{test}"),
            apps: format!("db-{test}"),
            ..Seed::design()
        }
    }

    /// The flags that point eso-recovery at these objects.
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--namespace={}", self.namespace),
            format!("--store={}", self.store),
            format!("--deployments={}", self.deployments.join(",")),
        ]
    }

    /// Creates everything, with the store Ready and every rollout complete (written by hand, as
    /// ESO and the deployment controller would).
    pub fn apply(&self, cp: &ControlPlane) {
        self.apply_objects(cp);
        self.set_store(cp, true);
        self.complete_rollouts(cp);
    }

    /// Creates the objects only; their status is left to whatever controllers run.
    pub fn apply_objects(&self, cp: &ControlPlane) {
        let (ns, apps) = (&self.namespace, &self.apps);
        let mut yaml = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {apps}\n---\n"
        );
        yaml.push_str(&format!(
            r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: eso-vault-auth
  namespace: {ns}
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: {store}
spec:
{store_refresh}  provider:
    vault:
      server: http://vault.security.svc.cluster.local:8200
      path: secret # KV v2 mount name
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: eso-reader
          serviceAccountRef:
            name: eso-vault-auth
            namespace: {ns}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: postgres-secret
  namespace: {apps}
spec:
  refreshInterval: {es_refresh}
  secretStoreRef:
    name: {store}
    kind: ClusterSecretStore
  target:
    name: postgres-secret # the Kubernetes Secret to create
    creationPolicy: Owner
  data:
  - secretKey: POSTGRES_USER
    remoteRef:
      key: postgres-secret # Vault path: secret/postgres-secret
      property: POSTGRES_USER # key within that KV entry
  - secretKey: POSTGRES_PASSWORD
    remoteRef:
      key: postgres-secret
      property: POSTGRES_PASSWORD
"#,
            store = self.store,
            store_refresh = self
                .store_refresh
                .map(|s| format!("  refreshInterval: {s}\n"))
                .unwrap_or_default(),
            es_refresh = self.es_refresh,
        ));
        for d in &self.deployments {
            yaml.push_str("---\n");
            yaml.push_str(
                &serde_json::to_string(&helm_like_deployment(ns, d, self.replicas)).unwrap(),
            );
            yaml.push('\n');
        }
        cp.apply(&yaml);
    }

    /// Writes the store's status through the status subresource, as ESO does.
    pub fn set_store(&self, cp: &ControlPlane, ready: bool) {
        let (status, reason, message) = if ready {
            ("True", "Valid", "store validated")
        } else {
            ("False", "InvalidProviderConfig", "unable to create client")
        };
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let patch = json!({"status": {"capabilities": "ReadWrite", "conditions": [{
            "type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": now}]}});
        cp.kubectl(&[
            "patch",
            "clustersecretstore",
            &self.store,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
    }

    /// Writes a finished rollout into each Deployment's status, as the deployment controller would
    /// once the pods are available (there is no kubelet here).
    pub fn complete_rollouts(&self, cp: &ControlPlane) {
        for d in &self.deployments {
            let generation = self.deployment(cp, d)["metadata"]["generation"]
                .as_i64()
                .unwrap_or(1);
            let n = self.replicas;
            let patch = json!({"status": {"observedGeneration": generation, "replicas": n,
                "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n}});
            cp.kubectl(&[
                "patch",
                "deployment",
                d,
                "-n",
                &self.namespace,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch.to_string(),
            ]);
        }
    }

    /// One Deployment as JSON.
    pub fn deployment(&self, cp: &ControlPlane, name: &str) -> Value {
        cp.get_json(&["deployment", name, "-n", &self.namespace])
    }

    /// Each Deployment's `restartedAt` annotation.
    pub fn restarted_at(&self, cp: &ControlPlane) -> Vec<Option<String>> {
        self.deployments
            .iter()
            .map(|d| {
                self.deployment(cp, d)["spec"]["template"]["metadata"]["annotations"]
                    ["kubectl.kubernetes.io/restartedAt"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }

    /// Sets every `restartedAt` annotation to `value` (or removes it), as a past restart would.
    pub fn set_restarted_at(&self, cp: &ControlPlane, value: Option<&str>) {
        for d in &self.deployments {
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": value}}}}});
            cp.kubectl(&[
                "patch",
                "deployment",
                d,
                "-n",
                &self.namespace,
                "-p",
                &patch.to_string(),
            ]);
        }
        self.complete_rollouts(cp);
    }

    /// The `events.k8s.io/v1` Events in the namespace written by eso-recovery.
    pub fn events(&self, cp: &ControlPlane) -> Vec<Value> {
        let list = cp.get_json(&["events.v1.events.k8s.io", "-n", &self.namespace]);
        list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["reportingController"] == "eso-recovery")
            .collect()
    }
}

/// A Deployment shaped like the ESO Helm chart's, restricted-compliant.
fn helm_like_deployment(namespace: &str, name: &str, replicas: i32) -> Value {
    let component = name
        .strip_prefix("external-secrets-")
        .unwrap_or("controller");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {
            "app.kubernetes.io/name": name, "app.kubernetes.io/instance": "external-secrets",
            "app.kubernetes.io/component": component}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": "external-secrets"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": "external-secrets"}},
                "spec": {
                    "serviceAccountName": "external-secrets",
                    "automountServiceAccountToken": true,
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": component,
                        "image": "oci.external-secrets.io/external-secrets/external-secrets:v1.3.2",
                        "args": if component == "controller" { json!(["--concurrent=1", "--metrics-addr=:8080"]) } else { json!([component]) },
                        "ports": [{"containerPort": 8080, "name": "metrics", "protocol": "TCP"}],
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true, "runAsUser": 1000, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}}
                    }]
                }
            }
        }
    })
}

/// The design's Secret `db/postgres-secret`, decoded; empty while it does not exist.
pub fn secret_data(cp: &ControlPlane) -> std::collections::BTreeMap<String, String> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let out = cp.kubectl_output(&["get", "secret", "postgres-secret", "-n", "db", "-o", "json"]);
    if !out.status.success() {
        return Default::default();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["data"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, b64)| {
            let bytes = STANDARD.decode(b64.as_str()?).ok()?;
            Some((k.clone(), String::from_utf8(bytes).ok()?))
        })
        .collect()
}
