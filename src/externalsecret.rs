//! ESO's ExternalSecrets: which are failing, since when, and through which ClusterSecretStores.
//!
//! Read only when a restart may be due (Vault became active recently), with a paginated `list`
//! that keeps a few fields of each object and only the failing ones, so a cluster with thousands
//! of ExternalSecrets costs a few pages once per outage, never every minute.

use std::collections::BTreeSet;

use anyhow::Result;
use futures::future::try_join_all;
use jiff::Timestamp;
use kube::{
    Api, Client,
    api::ListParams,
    core::{ApiResource, GroupVersionKind, Object},
};
use serde::Deserialize;

use crate::{errors::describe_api_error, store};

/// ExternalSecret's kind (same group and version as the store).
pub const KIND: &str = "ExternalSecret";

/// Objects per list page: a few hundred KiB of JSON, whatever the cluster's size.
pub const PAGE_SIZE: u32 = 500;

/// The reason ESO writes on `Ready=False` when it could not get the data from the provider: a
/// sealed Vault, its flood gate while the store is not Ready, but also a missing key or a denied
/// path. Other reasons (a Secret that cannot be written, an immutable Secret) are never Vault's.
pub const SYNC_ERROR: &str = "SecretSyncedError";

/// One ExternalSecret that is `Ready=False`, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingExternalSecret {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The ClusterSecretStores it reads from (`secretStoreRef` and any `sourceRef.storeRef`).
    pub cluster_stores: BTreeSet<String>,
    /// ESO's reason, e.g. `SecretSyncedError`.
    pub reason: String,
    /// ESO's message, e.g. `could not get secret data from provider`.
    pub message: String,
    /// When it went `Ready=False` (ESO keeps this while it keeps failing); None if unreadable.
    pub since: Option<Timestamp>,
}

impl FailingExternalSecret {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What one read of the ExternalSecrets found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalSecrets {
    /// How many were listed.
    pub listed: usize,
    /// The `Ready=False` ones.
    pub failing: Vec<FailingExternalSecret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoreRef {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceRef {
    #[serde(default)]
    store_ref: Option<StoreRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataItem {
    #[serde(default)]
    source_ref: Option<SourceRef>,
}

/// The fields of `spec` this program reads; everything else is skipped while parsing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    secret_store_ref: Option<StoreRef>,
    #[serde(default)]
    data: Vec<DataItem>,
    #[serde(default)]
    data_from: Vec<DataItem>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    last_transition_time: Option<String>,
}

/// The fields of `status` this program reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    conditions: Vec<Condition>,
}

/// An ExternalSecret, parsed down to what the decision needs.
pub type PartialExternalSecret = Object<Spec, Status>;

/// The failing view of one object, or None when it is not `Ready=False`.
pub fn failing(es: &PartialExternalSecret) -> Option<FailingExternalSecret> {
    let ready = es
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if ready.status != "False" {
        return None;
    }
    let spec = &es.spec;
    let refs = spec.secret_store_ref.iter().chain(
        spec.data
            .iter()
            .chain(&spec.data_from)
            .filter_map(|d| d.source_ref.as_ref()?.store_ref.as_ref()),
    );
    Some(FailingExternalSecret {
        namespace: es.metadata.namespace.clone().unwrap_or_default(),
        name: es.metadata.name.clone().unwrap_or_default(),
        cluster_stores: refs
            .filter(|r| r.kind.as_deref() == Some(store::KIND))
            .map(|r| r.name.clone())
            .collect(),
        reason: ready.reason.clone(),
        message: ready.message.clone(),
        since: ready
            .last_transition_time
            .as_deref()
            .and_then(|t| t.parse().ok()),
    })
}

/// Lists the ExternalSecrets of every namespace (`namespaces` empty) or of the ones given,
/// page by page, keeping only the failing ones.
pub async fn list(client: &Client, namespaces: &[String]) -> Result<ExternalSecrets> {
    let resource =
        ApiResource::from_gvk(&GroupVersionKind::gvk(store::GROUP, store::VERSION, KIND));
    let apis: Vec<(Api<PartialExternalSecret>, String)> = if namespaces.is_empty() {
        vec![(
            Api::all_with(client.clone(), &resource),
            "in all namespaces".to_string(),
        )]
    } else {
        namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced_with(client.clone(), ns, &resource),
                    format!("in namespace {ns}"),
                )
            })
            .collect()
    };
    let parts = try_join_all(apis.iter().map(|(api, scope)| list_one(api, scope))).await?;
    Ok(parts
        .into_iter()
        .fold(ExternalSecrets::default(), |mut all, part| {
            all.listed += part.listed;
            all.failing.extend(part.failing);
            all
        }))
}

async fn list_one(api: &Api<PartialExternalSecret>, scope: &str) -> Result<ExternalSecrets> {
    let mut found = ExternalSecrets::default();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| describe_api_error(e, &format!("listing {KIND}s {scope}")))?;
        found.listed += page.items.len();
        found.failing.extend(page.items.iter().filter_map(failing));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{ESO_RELEASES, external_secret, mock_client, real_eso_object};

    fn parse(v: serde_json::Value) -> PartialExternalSecret {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_external_secrets_each_real_eso_release_wrote() {
        // 2.x adds a finalizer and spec defaults (`target.deletionPolicy`); the fields read are
        // the same in both.
        for release in ESO_RELEASES {
            let object = real_eso_object(release, "externalsecret-failing");
            let finalized = object["metadata"]["finalizers"].is_array();
            assert_eq!(finalized, release.starts_with("2."), "{release}");
            let f = failing(&parse(object)).expect(release);
            assert_eq!(
                (f.namespace.as_str(), f.name.as_str()),
                ("db", "postgres-secret")
            );
            assert_eq!(
                f.cluster_stores,
                BTreeSet::from(["k8s-secrets".to_string()])
            );
            assert_eq!(f.reason, SYNC_ERROR, "{release}");
            assert_eq!(f.message, "could not get secret data from provider");
            assert!(f.since.is_some(), "{release}");
            let synced = parse(real_eso_object(release, "externalsecret-synced"));
            assert_eq!(failing(&synced), None, "{release}");
        }
    }

    #[test]
    fn what_eso_writes_when_vault_is_sealed() {
        let es = parse(external_secret(
            "db",
            "postgres-secret",
            "False",
            "SecretSyncedError",
            "2026-12-01T11:50:00Z",
        ));
        let f = failing(&es).unwrap();
        assert_eq!(f.key(), "db/postgres-secret");
        assert_eq!(f.reason, "SecretSyncedError");
        assert_eq!(f.message, "could not get secret data from provider");
        assert_eq!(f.since, Some("2026-12-01T11:50:00Z".parse().unwrap()));
        assert_eq!(
            f.cluster_stores.into_iter().collect::<Vec<_>>(),
            ["k8s-secrets"]
        );
    }

    #[test]
    fn ready_and_unreconciled_ones_are_not_failing() {
        let ready = external_secret("db", "a", "True", "SecretSynced", "2026-12-01T11:00:00Z");
        assert_eq!(failing(&parse(ready)), None);
        let mut fresh = external_secret("db", "b", "False", "x", "2026-12-01T11:00:00Z");
        fresh.as_object_mut().unwrap().remove("status");
        assert_eq!(failing(&parse(fresh)), None);
    }

    #[test]
    fn store_refs_of_every_kind_are_collected_and_namespaced_stores_ignored() {
        let mut v = external_secret("db", "mixed", "False", "SecretSyncedError", "bad time");
        v["spec"]["secretStoreRef"] = json!({"name": "team-store"});
        v["spec"]["dataFrom"] = json!([
            {"sourceRef": {"storeRef": {"name": "other-cluster-store", "kind": "ClusterSecretStore"}}},
            {"extract": {"key": "x"}}
        ]);
        v["spec"]["data"] = json!([
            {"secretKey": "a", "remoteRef": {"key": "a"}, "sourceRef": {"storeRef": {"name": "k8s-secrets", "kind": "ClusterSecretStore"}}}
        ]);
        let f = failing(&parse(v)).unwrap();
        assert_eq!(
            f.cluster_stores.into_iter().collect::<Vec<_>>(),
            ["k8s-secrets", "other-cluster-store"]
        );
        assert_eq!(f.since, None, "an unparsable time is no time");
    }

    #[tokio::test]
    async fn list_pages_through_every_namespace_with_a_limit() {
        let (client, mut server) = mock_client();
        let task = tokio::spawn(async move { list(&client, &[]).await });
        let page = |items: Vec<serde_json::Value>, next: &str| {
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecretList",
                "metadata": {"resourceVersion": "9", "continue": next}, "items": items})
        };
        let first = server
            .answer(
                200,
                page(
                    vec![
                        external_secret("db", "a", "True", "SecretSynced", "2026-12-01T11:00:00Z"),
                        external_secret(
                            "db",
                            "b",
                            "False",
                            "SecretSyncedError",
                            "2026-12-01T11:00:00Z",
                        ),
                    ],
                    "token-2",
                ),
            )
            .await;
        assert_eq!(first.method, "GET");
        assert_eq!(first.path, "/apis/external-secrets.io/v1/externalsecrets");
        assert_eq!(first.query_pairs(), ["limit=500"]);
        let second = server
            .answer(
                200,
                page(
                    vec![external_secret(
                        "web",
                        "c",
                        "False",
                        "SecretSyncedError",
                        "2026-12-01T11:00:00Z",
                    )],
                    "",
                ),
            )
            .await;
        assert_eq!(second.query_pairs(), ["continue=token-2", "limit=500"]);
        let found = task.await.unwrap().unwrap();
        assert_eq!(found.listed, 3);
        let keys: Vec<String> = found
            .failing
            .iter()
            .map(FailingExternalSecret::key)
            .collect();
        assert_eq!(keys, ["db/b", "web/c"]);
    }

    #[tokio::test]
    async fn given_namespaces_are_listed_each_and_errors_name_the_scope() {
        let (client, mut server) = mock_client();
        let task = tokio::spawn(async move { list(&client, &["db".to_string()]).await });
        let got = server
            .answer(
                403,
                crate::fixtures::status_error(403, "Forbidden", "cannot list externalsecrets"),
            )
            .await;
        assert_eq!(
            got.path,
            "/apis/external-secrets.io/v1/namespaces/db/externalsecrets"
        );
        let err = task.await.unwrap().unwrap_err().to_string();
        assert!(
            err.starts_with("listing ExternalSecrets in namespace db: HTTP 403 Forbidden"),
            "{err}"
        );
    }
}
