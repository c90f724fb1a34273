//! `--strategy resync`: ESO's own lever instead of a restart. ESO reconciles a store or an
//! ExternalSecret at once when one of its annotations changes, and that clears nothing but that
//! object's wait: so the degraded stores are annotated first (an ExternalSecret woken behind a
//! store that is not Ready fails again at ESO's flood gate), then, once they are Ready, the
//! stuck ExternalSecrets. No pod is replaced and ESO's leader stays.
//!
//! `patch` on ExternalSecrets could point one at any Vault path ESO can read, so the manifests
//! ship a ValidatingAdmissionPolicy that lets the CronJob's ServiceAccount change nothing but
//! [`RESYNCED_AT`]. Before its first patch a run proves the policy is there: a dry-run patch of
//! another annotation must be refused. Whatever goes wrong ends in a restart ([`Fallback`]), so
//! resync is never worse than restart.

use std::{collections::BTreeSet, time::Duration};

use futures::{StreamExt, TryStreamExt, stream};
use kube::{
    Api, Client,
    api::{Patch, WatchEvent, WatchParams},
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    errors::describe_api_error,
    externalsecret::{self, ExternalSecrets},
    kube_client::write_params,
    store::{self, StoreCondition},
};

/// The annotation a resync writes (the run's time, RFC 3339), on the stores and ExternalSecrets
/// it wakes and on its record: the one key the admission policy lets eso-recovery change.
pub const RESYNCED_AT: &str = "eso-recovery/resynced-at";

/// The annotation the guard check tries to write in a dry run; the policy must refuse it.
pub const GUARD_PROBE: &str = "eso-recovery/guard-probe";

/// How long a woken store may take to be Ready, and how long the woken ExternalSecrets may go
/// without one of them coming back, before the run restarts instead. ESO re-validates an
/// annotated store in about 2 s and syncs an annotated ExternalSecret within a second.
pub const COMEBACK: Duration = Duration::from_secs(5);

/// Time kept back from the run's deadline for the fallback's restart.
const RESERVE: Duration = Duration::from_secs(2);

/// ExternalSecret patches in flight at once: 1,000 take a few seconds, without a burst that
/// would trip the API server's priority and fairness.
const CONCURRENCY: usize = 16;

/// How often the woken ExternalSecrets are listed again while they come back.
const POLL: Duration = Duration::from_millis(500);

/// One object a resync annotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A ClusterSecretStore, by name.
    Store(String),
    /// An ExternalSecret, as `namespace/name`.
    ExternalSecret(String),
}

impl Target {
    fn api(&self, client: &Client) -> (Api<DynamicObject>, String) {
        let gvk = |kind| GroupVersionKind::gvk(store::GROUP, store::VERSION, kind);
        match self {
            Target::Store(name) => (
                Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk(store::KIND))),
                name.clone(),
            ),
            Target::ExternalSecret(key) => {
                let (namespace, name) = key.split_once('/').unwrap_or(("", key));
                (
                    Api::namespaced_with(
                        client.clone(),
                        namespace,
                        &ApiResource::from_gvk(&gvk(externalsecret::KIND)),
                    ),
                    name.to_string(),
                )
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Store(name) => write!(f, "{} {name}", store::KIND),
            Target::ExternalSecret(key) => write!(f, "{} {key}", externalsecret::KIND),
        }
    }
}

/// The merge patch that wakes one object.
pub fn resync_patch(at: &str) -> Value {
    json!({"metadata": {"annotations": {RESYNCED_AT: at}}})
}

/// Why a resync gave way to a restart; each is the summary's `fallback` and a Warning Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Admission let another annotation through: the policy is missing (or the cluster is older
    /// than 1.30). `resync_unguarded`.
    Unguarded(String),
    /// A resync patch (or the guard check) failed: RBAC, ESO's webhook, the API server.
    /// `resync_failed`.
    PatchFailed(String),
    /// What was woken did not come back within [`COMEBACK`]. `resync_not_back`.
    NotBack(String),
}

impl Fallback {
    /// The summary's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Fallback::Unguarded(_) => "resync_unguarded",
            Fallback::PatchFailed(_) => "resync_failed",
            Fallback::NotBack(_) => "resync_not_back",
        }
    }

    /// Whether a person must act (the configuration), beyond the restart that follows.
    pub fn needs_a_person(&self) -> bool {
        !matches!(self, Fallback::NotBack(_))
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::Unguarded(why) | Fallback::PatchFailed(why) | Fallback::NotBack(why) => {
                f.write_str(why)
            }
        }
    }
}

/// What a resync did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resynced {
    /// The stores annotated.
    pub stores: Vec<String>,
    /// The ExternalSecrets annotated (`namespace/name`).
    pub external_secrets: Vec<String>,
    /// Woken ExternalSecrets ESO reconciled and that failed again (their own reasons: the
    /// annotation cleared their wait as a restart would have), or that ESO had not reached when
    /// the run had to end.
    pub still_failing: Vec<String>,
    /// Whether the run ended while ESO was still bringing them back.
    pub cut_short: bool,
}

/// A resync in one run: where to write, and until when.
pub struct Resync<'a> {
    /// The client.
    pub client: &'a Client,
    /// Patches are sent with `dryRun=All`, and nothing is waited for.
    pub dry_run: bool,
    /// The run's time, written as the annotation.
    pub at: String,
    /// When the run must end.
    pub deadline: Instant,
}

impl Resync<'_> {
    /// Checks the guard on `first` (the first object to annotate), then wakes `stores`, waits
    /// for them, and wakes the ExternalSecrets `stuck` gives once they are Ready (called with the
    /// time they were all seen Ready). Any `Err` means: restart instead.
    pub async fn run<F, Fut>(&self, stores: &[String], stuck: F) -> Result<Resynced, Fallback>
    where
        F: FnOnce(jiff::Timestamp) -> Fut,
        Fut: Future<Output = Result<Vec<String>, String>>,
    {
        let mut done = Resynced::default();
        for name in stores {
            self.guard_then_patch(&Target::Store(name.clone()), done.is_empty())
                .await?;
            done.stores.push(name.clone());
        }
        if !self.dry_run {
            for name in stores {
                self.until_store_ready(name).await?;
            }
        }
        let keys = stuck(jiff::Timestamp::now())
            .await
            .map_err(Fallback::PatchFailed)?;
        if let Some(first) = keys.first().filter(|_| done.is_empty()) {
            self.guard_then_patch(&Target::ExternalSecret(first.clone()), true)
                .await?;
            done.external_secrets.push(first.clone());
        }
        let rest: Vec<String> = keys
            .iter()
            .filter(|k| !done.external_secrets.contains(k))
            .cloned()
            .collect();
        let patch = resync_patch(&self.at);
        let failed: Vec<String> = stream::iter(rest)
            .map(|key| {
                let patch = &patch;
                async move { self.patch(&Target::ExternalSecret(key), patch).await.err() }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<Option<String>>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        if let Some(first) = failed.first() {
            return Err(Fallback::PatchFailed(format!(
                "{} of {} ExternalSecret resync patches failed, the first: {first}",
                failed.len(),
                keys.len()
            )));
        }
        done.external_secrets = keys;
        Ok(done)
    }

    /// Waits until the woken ExternalSecrets are back: `Ok` when they all are, when ESO made
    /// progress and then stopped (the rest fail for their own reasons), or when the deadline
    /// nears while they still come back; `Err` when none came back within [`COMEBACK`].
    pub async fn until_back<F, Fut>(&self, woken: &mut Resynced, list: F) -> Result<(), Fallback>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<ExternalSecrets, String>>,
    {
        if self.dry_run || woken.external_secrets.is_empty() {
            return Ok(());
        }
        let mut pending: BTreeSet<String> = woken.external_secrets.iter().cloned().collect();
        let total = pending.len();
        let mut last_progress = Instant::now();
        loop {
            match list().await {
                Ok(found) => {
                    let failing: BTreeSet<String> = found.failing.iter().map(|f| f.key()).collect();
                    let before = pending.len();
                    pending.retain(|k| failing.contains(k));
                    if pending.len() < before {
                        last_progress = Instant::now();
                    }
                }
                Err(e) => tracing::warn!("{e}; listing again"),
            }
            woken.still_failing = pending.iter().cloned().collect();
            if pending.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now + RESERVE >= self.deadline {
                woken.cut_short = true;
                return Ok(());
            }
            if now.duration_since(last_progress) >= COMEBACK {
                if pending.len() < total {
                    return Ok(());
                }
                return Err(Fallback::NotBack(format!(
                    "none of the {total} ExternalSecret(s) resynced came back within {}",
                    humantime::format_duration(COMEBACK)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The guard check before the run's first patch, then the patch.
    async fn guard_then_patch(&self, target: &Target, first: bool) -> Result<(), Fallback> {
        if first {
            self.check_guard(target).await?;
        }
        self.patch(target, &resync_patch(&self.at))
            .await
            .map_err(Fallback::PatchFailed)
    }

    /// Proves the admission policy is in place: a dry-run change of another annotation on
    /// `target` must be refused, by a message that names [`RESYNCED_AT`].
    async fn check_guard(&self, target: &Target) -> Result<(), Fallback> {
        let (api, name) = target.api(self.client);
        let params = write_params(true);
        let probe = Patch::Merge(json!({"metadata": {"annotations": {GUARD_PROBE: self.at}}}));
        match api.patch(&name, &params, &probe).await {
            Ok(_) => Err(Fallback::Unguarded(format!(
                "admission let eso-recovery change the annotation {GUARD_PROBE} on {target} (a \
                 dry run): the ValidatingAdmissionPolicy that limits it to {RESYNCED_AT} is not \
                 in place (apply the manifests' policy; Kubernetes 1.30+), so nothing is \
                 resynced"
            ))),
            Err(kube::Error::Api(s))
                if matches!(s.code, 403 | 422) && s.message.contains(RESYNCED_AT) =>
            {
                Ok(())
            }
            Err(e) => Err(Fallback::PatchFailed(
                describe_api_error(e, &format!("checking the resync guard on {target}"))
                    .to_string(),
            )),
        }
    }

    async fn patch(&self, target: &Target, patch: &Value) -> Result<(), String> {
        let (api, name) = target.api(self.client);
        api.patch(&name, &write_params(self.dry_run), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| describe_api_error(e, &format!("resyncing {target}")).to_string())
    }

    /// Watches one store until it is Ready, within [`COMEBACK`] (and the deadline's reserve).
    async fn until_store_ready(&self, name: &str) -> Result<(), Fallback> {
        let target = Target::Store(name.to_string());
        let (api, _) = target.api(self.client);
        let bound = COMEBACK.min(
            self.deadline
                .saturating_duration_since(Instant::now())
                .saturating_sub(RESERVE),
        );
        let watched = async {
            let object = api
                .get(name)
                .await
                .map_err(|e| describe_api_error(e, &format!("reading {target}")).to_string())?;
            if is_ready(&object) {
                return Ok(());
            }
            let version = object.metadata.resource_version.unwrap_or_default();
            let params = WatchParams::default().fields(&format!("metadata.name={name}"));
            let mut events = api
                .watch(&params, &version)
                .await
                .map_err(|e| describe_api_error(e, &format!("watching {target}")).to_string())?
                .boxed();
            while let Some(event) = events
                .try_next()
                .await
                .map_err(|e| describe_api_error(e, &format!("watching {target}")).to_string())?
            {
                match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) if is_ready(&o) => {
                        return Ok(());
                    }
                    WatchEvent::Error(e) => return Err(format!("watching {target}: {e}")),
                    _ => {}
                }
            }
            Err(format!("watching {target}: the watch ended"))
        };
        match tokio::time::timeout(bound, watched).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Fallback::NotBack(format!(
                "{target} was resynced, but could not be watched until Ready: {e}"
            ))),
            Err(_) => Err(Fallback::NotBack(format!(
                "{target} was resynced, but was not Ready within {}",
                humantime::format_duration(bound)
            ))),
        }
    }
}

impl Resynced {
    fn is_empty(&self) -> bool {
        self.stores.is_empty() && self.external_secrets.is_empty()
    }
}

fn is_ready(object: &DynamicObject) -> bool {
    matches!(
        store::parse_status(object.data.get("status")),
        StoreCondition::Ready(_)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{ApiServerVerifier, mock_client, status_error, store_object};

    const AT: &str = "2026-12-01T12:00:00Z";

    fn resync(client: &Client, dry_run: bool) -> Resync<'_> {
        Resync {
            client,
            dry_run,
            at: AT.into(),
            deadline: Instant::now() + Duration::from_secs(30),
        }
    }

    /// What the admission policy answers a change it does not allow.
    fn refused_by_the_policy() -> Value {
        status_error(
            403,
            "Forbidden",
            "clustersecretstores.external-secrets.io \"k8s-secrets\" is forbidden: \
             ValidatingAdmissionPolicy 'eso-recovery-resync-only' with binding \
             'eso-recovery-resync-only' denied request: eso-recovery may change only the \
             annotation eso-recovery/resynced-at on ExternalSecrets and ClusterSecretStores",
        )
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn the_guard_is_proven_then_the_store_then_the_external_secrets_get_the_annotation_alone()
    {
        for dry_run in [false, true] {
            let (client, mut server) = mock_client();
            let task = tokio::spawn(async move {
                resync(&client, dry_run)
                    .run(&keys(&["k8s-secrets"]), |_| async {
                        Ok(keys(&["db/postgres-secret", "web/app"]))
                    })
                    .await
            });
            let store_path = "/apis/external-secrets.io/v1/clustersecretstores/k8s-secrets";
            let guard = server.answer(403, refused_by_the_policy()).await;
            assert_eq!(
                (guard.method.as_str(), guard.path.as_str()),
                ("PATCH", store_path)
            );
            assert!(
                guard.query_pairs().contains(&"dryRun=All"),
                "the guard is a dry run"
            );
            assert_eq!(
                guard.body,
                json!({"metadata": {"annotations": {GUARD_PROBE: AT}}})
            );
            let ready = store_object("k8s-secrets", "True", "Valid", "store validated");
            let patch = server.answer(200, ready.clone()).await;
            assert_eq!(patch.path, store_path);
            assert_eq!(patch.content_type, "application/merge-patch+json");
            assert_eq!(patch.body, resync_patch(AT));
            assert!(patch.query_pairs().contains(&"fieldManager=eso-recovery"));
            assert_eq!(patch.query_pairs().contains(&"dryRun=All"), dry_run);
            if !dry_run {
                // Ready already when read: no watch needed.
                let get = server.answer(200, ready).await;
                assert_eq!(
                    (get.method.as_str(), get.path.as_str()),
                    ("GET", store_path)
                );
            }
            let mut paths = Vec::new();
            for _ in 0..2 {
                let p = server.answer(200, json!({})).await;
                assert_eq!(p.body, resync_patch(AT));
                assert_eq!(p.query_pairs().contains(&"dryRun=All"), dry_run);
                paths.push(p.path);
            }
            paths.sort();
            assert_eq!(
                paths,
                vec![
                    "/apis/external-secrets.io/v1/namespaces/db/externalsecrets/postgres-secret",
                    "/apis/external-secrets.io/v1/namespaces/web/externalsecrets/app",
                ]
            );
            let done = task.await.unwrap().unwrap();
            assert_eq!(done.stores, keys(&["k8s-secrets"]));
            assert_eq!(
                done.external_secrets,
                keys(&["db/postgres-secret", "web/app"])
            );
        }
    }

    #[tokio::test]
    async fn a_store_not_ready_yet_is_watched_by_name_until_it_is() {
        let (client, mut server) = mock_client();
        let task = tokio::spawn(async move {
            resync(&client, false)
                .run(&keys(&["k8s-secrets"]), |_| async { Ok(Vec::new()) })
                .await
        });
        server.answer(403, refused_by_the_policy()).await;
        let degraded = store_object(
            "k8s-secrets",
            "False",
            "InvalidProviderConfig",
            "unable to create client",
        );
        server.answer(200, degraded.clone()).await;
        server.answer(200, degraded).await;
        let ready = store_object("k8s-secrets", "True", "Valid", "store validated");
        let watch = server
            .answer(200, json!({"type": "MODIFIED", "object": ready}))
            .await;
        assert_eq!(watch.method, "GET");
        assert_eq!(
            watch.path,
            "/apis/external-secrets.io/v1/clustersecretstores"
        );
        let query = watch.query_pairs();
        assert!(query.contains(&"watch=true"), "{query:?}");
        assert!(
            query.contains(&"fieldSelector=metadata.name%3Dk8s-secrets"),
            "watched by name, as RBAC's resourceNames allow: {query:?}"
        );
        assert!(query.contains(&"resourceVersion=7"), "{query:?}");
        let done = task.await.unwrap().unwrap();
        assert_eq!(done.stores, keys(&["k8s-secrets"]));
    }

    async fn guard_answered(status: u16, body: Value) -> Result<Resynced, Fallback> {
        let (client, mut server) = mock_client();
        let task = tokio::spawn(async move {
            resync(&client, false)
                .run(&[], |_| async { Ok(keys(&["db/postgres-secret"])) })
                .await
        });
        let guard = server.answer(status, body).await;
        assert!(
            guard
                .path
                .ends_with("/namespaces/db/externalsecrets/postgres-secret"),
            "with no store to wake, the guard is proven on the first ExternalSecret"
        );
        let ApiServerVerifier(mut handle) = server;
        let result = task.await.unwrap();
        assert!(
            futures::FutureExt::now_or_never(handle.next_request())
                .flatten()
                .is_none(),
            "nothing was sent after the guard failed"
        );
        result
    }

    #[tokio::test]
    async fn a_change_admission_lets_through_means_the_policy_is_missing() {
        let got = guard_answered(200, json!({})).await;
        let Err(fallback @ Fallback::Unguarded(_)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(fallback.name(), "resync_unguarded");
        assert!(fallback.needs_a_person());
        assert!(
            fallback.to_string().contains("ValidatingAdmissionPolicy"),
            "{fallback}"
        );
    }

    #[tokio::test]
    async fn a_refusal_that_is_not_the_policys_is_a_failed_resync() {
        let rbac = status_error(
            403,
            "Forbidden",
            "externalsecrets.external-secrets.io \"postgres-secret\" is forbidden: User \
             \"system:serviceaccount:security:eso-recovery\" cannot patch resource",
        );
        let got = guard_answered(403, rbac).await;
        let Err(fallback @ Fallback::PatchFailed(_)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(fallback.name(), "resync_failed");
        assert!(fallback.to_string().contains("HTTP 403"), "{fallback}");
    }

    #[tokio::test]
    async fn a_refused_external_secret_patch_falls_back_naming_how_many() {
        let (client, mut server) = mock_client();
        let task = tokio::spawn(async move {
            resync(&client, false)
                .run(&[], |_| async { Ok(keys(&["db/a", "db/b", "db/c"])) })
                .await
        });
        server.answer(403, refused_by_the_policy()).await;
        server.answer(200, json!({})).await;
        server.answer(200, json!({})).await;
        let webhook = status_error(500, "InternalError", "failed calling webhook");
        server.answer(500, webhook).await;
        let got = task.await.unwrap();
        let Err(Fallback::PatchFailed(why)) = got else {
            panic!("{got:?}")
        };
        assert!(
            why.starts_with("1 of 3 ExternalSecret resync patches failed"),
            "{why}"
        );
    }

    fn failing(names: &[&str]) -> ExternalSecrets {
        ExternalSecrets {
            listed: 10,
            failing: names
                .iter()
                .map(|key| {
                    let (namespace, name) = key.split_once('/').unwrap();
                    externalsecret::FailingExternalSecret {
                        namespace: namespace.into(),
                        name: name.into(),
                        cluster_stores: ["k8s-secrets".to_string()].into(),
                        reason: externalsecret::SYNC_ERROR.into(),
                        message: "could not get secret data from provider".into(),
                        since: None,
                    }
                })
                .collect(),
        }
    }

    /// Waits with `lists` as the successive answers (the last one repeated).
    async fn until_back(lists: Vec<ExternalSecrets>) -> (Result<(), Fallback>, Resynced) {
        let (client, _server) = mock_client();
        let r = resync(&client, false);
        let mut woken = Resynced {
            external_secrets: keys(&["db/a", "db/b", "db/c"]),
            ..Resynced::default()
        };
        let answers = std::sync::Mutex::new(lists.into_iter());
        let last = std::sync::Mutex::new(ExternalSecrets::default());
        let result = r
            .until_back(&mut woken, || {
                let mut answers = answers.lock().unwrap();
                let mut last = last.lock().unwrap();
                if let Some(next) = answers.next() {
                    *last = next;
                }
                let answer = last.clone();
                async move { Ok(answer) }
            })
            .await;
        (result, woken)
    }

    #[tokio::test(start_paused = true)]
    async fn all_back_ends_the_wait() {
        let (result, woken) = until_back(vec![
            failing(&["db/a", "db/b", "db/c"]),
            failing(&["db/c"]),
            failing(&[]),
        ])
        .await;
        assert_eq!(result, Ok(()));
        assert!(woken.still_failing.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn none_back_within_the_bound_falls_back() {
        let (result, woken) = until_back(vec![failing(&["db/a", "db/b", "db/c"])]).await;
        let Err(Fallback::NotBack(why)) = result else {
            panic!("{result:?}")
        };
        assert!(why.contains("none of the 3"), "{why}");
        assert_eq!(woken.still_failing.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn some_back_then_none_more_leaves_the_rest_to_their_own_reasons() {
        let (result, woken) =
            until_back(vec![failing(&["db/a", "db/b", "db/c"]), failing(&["db/c"])]).await;
        assert_eq!(
            result,
            Ok(()),
            "ESO reached them: a restart would not do more"
        );
        assert_eq!(woken.still_failing, keys(&["db/c"]));
        assert!(!woken.cut_short);
    }
}
