//! The outage record: what runs of eso-recovery saw of Vault between them, kept in one Lease.
//!
//! Vault's own clock (`sys/leader`'s `active_time`) moves only when Vault restarts, unseals or
//! changes leader. When Vault stays up but cannot be reached (a network cut, cluster DNS down,
//! a Service without endpoints) its clock shows nothing, yet ESO's ExternalSecrets fail and back
//! off all the same. So a run that sees Vault not ready writes it down, and the first run (or the
//! same awaiting run) that sees it ready again writes that moment: an outage end, used like
//! Vault's activation time.
//!
//! The Lease (`--record`, by default `eso-recovery`; the chart names it after its release) is
//! shipped with the manifests and the chart (RBAC cannot limit `create` by name); eso-recovery
//! may only `get` and `patch` it. The record is two annotations.
//! Every write names the `resourceVersion` it read, so two runs at once (a manual run beside the
//! CronJob's) never lose each other's writes: a conflict is re-read and re-applied. A record that
//! is missing, unreadable, forbidden or garbled costs only the speed-up: it never causes a
//! restart by itself.

use std::{collections::BTreeMap, fmt};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client, api::Patch};
use serde_json::{Value, json};

use crate::{errors::describe_api_error, kube_client::write_params, resync::RESYNCED_AT};

/// The Lease's name (in `--namespace`) unless `--record` names another: two releases of the
/// chart in one namespace each keep their own.
pub const DEFAULT_LEASE_NAME: &str = "eso-recovery";

/// The Lease that holds the record, by name, where every read and write of it goes.
pub struct RecordLease {
    api: Api<Lease>,
    name: String,
}

impl RecordLease {
    /// The Lease `name` in `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str) -> RecordLease {
        RecordLease {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    /// What a request to it was doing, for its error: "`doing` (Lease NAMESPACE/NAME)".
    fn doing(&self, doing: &str) -> String {
        format!(
            "{doing} (Lease {}/{})",
            self.api.namespace().unwrap_or_default(),
            self.name
        )
    }

    async fn get(&self) -> kube::Result<Lease> {
        self.api.get(&self.name).await
    }

    async fn patch(&self, dry_run: bool, patch: &Patch<Value>) -> kube::Result<Lease> {
        self.api
            .patch(&self.name, &write_params(dry_run), patch)
            .await
    }
}

/// The first time a run saw Vault not ready, in the last outage seen.
pub const NOT_READY_SINCE: &str = "eso-recovery/vault-not-ready-since";

/// The first time a run saw Vault ready again after that.
pub const READY_AGAIN_AT: &str = "eso-recovery/vault-ready-again-at";

/// What a run claims before it acts, and who: two runs that see the same outage end at the same
/// moment (the CronJob's and a manual one) both decide to act, and each Deployment's
/// `restartedAt` is read before it is patched; the claim is one conditional write, so exactly
/// one of them lands.
pub const CLAIMED_FOR: &str = "eso-recovery/claimed-for";
/// Who claimed (the pod's name, and the process).
pub const CLAIMED_BY: &str = "eso-recovery/claimed-by";
/// When.
pub const CLAIMED_AT: &str = "eso-recovery/claimed-at";

/// How long a claim holds off other runs. The claimant acts within seconds (a restart is three
/// patches; a resync ends by its run's `--timeout`), and once it has acted its `restartedAt` or
/// resync holds the outage; a claimant that died before acting blocks no one past this.
pub const CLAIM_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// A claim as read from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// What was claimed: the outage, in words the decision gave it.
    pub outage: String,
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// How a claim ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This run's claim landed: it acts.
    Won,
    /// Another run holds a fresh claim on the same outage: it acts, this one does not.
    Lost(Claim),
    /// No claim could be made (the Lease missing, forbidden, unreachable): the run acts as it
    /// did before claims existed, and says so.
    Unavailable(String),
}

/// How far in the future a recorded time may be (clock skew between nodes) before it is garbled.
const MAX_SKEW: SignedDuration = SignedDuration::from_secs(60);

/// How many times a write is re-read and re-applied after a conflict.
const CONFLICT_RETRIES: usize = 3;

/// An outage seen by eso-recovery, ended: its end is the decision's other outage clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenOutage {
    /// The first time a run saw Vault not ready.
    pub not_ready_since: Timestamp,
    /// The first time a run saw it ready again.
    pub ready_again_at: Timestamp,
}

/// What the record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutageRecord {
    /// No outage seen (or nothing usable recorded).
    #[default]
    Empty,
    /// Vault was seen not ready since then, and not seen ready since.
    Open {
        /// The first time a run saw Vault not ready.
        since: Timestamp,
    },
    /// The last outage seen, and when it was seen to end.
    Ended(SeenOutage),
}

/// One look at Vault, as the record takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Vault was not ready at this time.
    NotReady(Timestamp),
    /// Vault was ready at this time.
    Ready(Timestamp),
}

impl OutageRecord {
    /// Reads the Lease's annotations. Garbled (unparsable, out of order, or in the future beyond
    /// clock skew) is an error naming the annotation: such a record is ignored, never trusted.
    pub fn parse(
        annotations: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<OutageRecord, String> {
        let time = |key: &str| parse_time(annotations, key, now);
        match (time(NOT_READY_SINCE)?, time(READY_AGAIN_AT)?) {
            (None, None) => Ok(OutageRecord::Empty),
            (Some(since), None) => Ok(OutageRecord::Open { since }),
            (Some(since), Some(again)) if again >= since => Ok(OutageRecord::Ended(SeenOutage {
                not_ready_since: since,
                ready_again_at: again,
            })),
            (Some(_), Some(_)) => Err(format!(
                "annotation {READY_AGAIN_AT} is before {NOT_READY_SINCE}"
            )),
            (None, Some(_)) => Err(format!(
                "annotation {READY_AGAIN_AT} is set without {NOT_READY_SINCE}"
            )),
        }
    }

    /// The record after one more look at Vault, or `None` when it does not change. A sighting
    /// older than what is recorded (another run saw later) changes nothing.
    pub fn after(self, sighting: Sighting) -> Option<OutageRecord> {
        match (self, sighting) {
            (OutageRecord::Open { .. }, Sighting::NotReady(_)) => None,
            (OutageRecord::Ended(seen), Sighting::NotReady(t)) if seen.ready_again_at >= t => None,
            (_, Sighting::NotReady(t)) => Some(OutageRecord::Open { since: t }),
            (OutageRecord::Open { since }, Sighting::Ready(t)) if since <= t => {
                Some(OutageRecord::Ended(SeenOutage {
                    not_ready_since: since,
                    ready_again_at: t,
                }))
            }
            (_, Sighting::Ready(_)) => None,
        }
    }

    /// The ended outage, if the record holds one.
    pub fn seen_outage(self) -> Option<SeenOutage> {
        match self {
            OutageRecord::Ended(seen) => Some(seen),
            _ => None,
        }
    }

    /// The JSON merge patch that writes this record over the one read at `resource_version`
    /// (the API server refuses it with 409 if the Lease changed since).
    pub fn patch(self, resource_version: &str) -> Value {
        let (since, again) = match self {
            OutageRecord::Empty => (None, None),
            OutageRecord::Open { since } => (Some(since), None),
            OutageRecord::Ended(s) => (Some(s.not_ready_since), Some(s.ready_again_at)),
        };
        let text = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::String(t.to_string()));
        json!({"metadata": {"resourceVersion": resource_version, "annotations": {
            NOT_READY_SINCE: text(since),
            READY_AGAIN_AT: text(again),
        }}})
    }
}

/// One recorded time: absent, or a time no later than `now` plus clock skew.
fn parse_time(
    annotations: &BTreeMap<String, String>,
    key: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, String> {
    let Some(text) = annotations.get(key) else {
        return Ok(None);
    };
    let t: Timestamp = text
        .parse()
        .map_err(|e| format!("annotation {key}={text:?} is not a time ({e})"))?;
    if t > now.saturating_add(MAX_SKEW).unwrap_or(now) {
        return Err(format!("annotation {key}={text:?} is in the future"));
    }
    Ok(Some(t))
}

/// Whether a claim made at `at` still holds off other runs at `now` (one from the future, a
/// skewed clock, holds no longer than the bound from now).
fn claim_is_fresh(at: Timestamp, now: Timestamp) -> bool {
    let age = now.duration_since(at);
    age < SignedDuration::try_from(CLAIM_BOUND).unwrap_or(SignedDuration::ZERO)
        && age > -SignedDuration::try_from(CLAIM_BOUND).unwrap_or(SignedDuration::ZERO)
}

impl fmt::Display for OutageRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutageRecord::Empty => f.write_str("no outage seen"),
            OutageRecord::Open { since } => write!(f, "Vault seen not ready since {since}"),
            OutageRecord::Ended(s) => write!(
                f,
                "Vault seen not ready since {}, ready again at {}",
                s.not_ready_since, s.ready_again_at
            ),
        }
    }
}

/// The record as read from the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// What it says; `Empty` when it is garbled.
    pub record: OutageRecord,
    /// Why it was ignored, if it was garbled.
    pub garbled: Option<String>,
    /// The Lease's `resourceVersion`, for the next write.
    pub resource_version: String,
    /// The claim recorded, if any (a garbled one is ignored: it claims nothing).
    pub claim: Option<Claim>,
    /// The last resync recorded ([`RESYNCED_AT`] on the Lease: with the Deployments'
    /// `restartedAt`, what the cooldown and the once-per-outage bound count); `None` when none was, or it is garbled (then in `garbled` too).
    pub resynced_at: Option<Timestamp>,
}

/// Why the record could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// 404: the Lease was not applied (or was deleted).
    Missing(String),
    /// 403: the identity may not read or write it.
    Forbidden(String),
    /// Anything else (a timeout, a 500, a conflict that kept coming).
    Failed(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Missing(e) => write!(
                f,
                "{e}; apply manifests/ (or the chart) to create the Lease, outages Vault's clock \
                 does not show are not remembered across runs until then"
            ),
            RecordError::Forbidden(e) | RecordError::Failed(e) => f.write_str(e),
        }
    }
}

fn record_error(e: kube::Error, what: &str) -> RecordError {
    let code = match &e {
        kube::Error::Api(status) => status.code,
        _ => 0,
    };
    let text = describe_api_error(e, what).to_string();
    match code {
        404 => RecordError::Missing(text),
        403 => RecordError::Forbidden(text),
        _ => RecordError::Failed(text),
    }
}

/// Reads the record.
pub async fn read(lease: &RecordLease, now: Timestamp) -> Result<Stored, RecordError> {
    let what = lease.doing("reading the outage record");
    let lease = lease.get().await.map_err(|e| record_error(e, &what))?;
    let annotations = lease.metadata.annotations.unwrap_or_default();
    let (record, mut garbled) = match OutageRecord::parse(&annotations, now) {
        Ok(r) => (r, None),
        Err(why) => (OutageRecord::Empty, Some(format!("{what}: ignored: {why}"))),
    };
    let resynced_at = match parse_time(&annotations, RESYNCED_AT, now) {
        Ok(t) => t,
        Err(why) => {
            garbled.get_or_insert(format!("{what}: ignored: {why}"));
            None
        }
    };
    let claim = Memory::parse_claim(&annotations, now);
    Ok(Stored {
        record,
        garbled,
        resource_version: lease.metadata.resource_version.unwrap_or_default(),
        claim,
        resynced_at,
    })
}

/// Writes one sighting into the record read as `stored`, if it changes it. On a conflict (another
/// run wrote in between) it reads the record again and applies the sighting to that, so neither
/// write is lost. Returns the record as stored afterwards (with `dry_run`, as it would be).
pub async fn note(
    lease: &RecordLease,
    mut stored: Stored,
    sighting: Sighting,
    now: Timestamp,
    dry_run: bool,
) -> Result<Stored, RecordError> {
    let what = lease.doing("writing the outage record");
    for _ in 0..=CONFLICT_RETRIES {
        let Some(next) = stored.record.after(sighting) else {
            return Ok(stored);
        };
        let patch = Patch::Merge(next.patch(&stored.resource_version));
        match lease.patch(dry_run, &patch).await {
            Ok(written) => {
                return Ok(Stored {
                    record: next,
                    garbled: None,
                    resource_version: written.metadata.resource_version.unwrap_or_default(),
                    claim: stored.claim,
                    resynced_at: stored.resynced_at,
                });
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!("the outage record changed since it was read; reading it again");
                stored = read(lease, now).await?;
            }
            Err(e) => return Err(record_error(e, &what)),
        }
    }
    Err(RecordError::Failed(format!(
        "{what}: it kept changing under {CONFLICT_RETRIES} retries"
    )))
}

/// The record as one run knows it: what it read, plus what it saw itself. What the run saw
/// counts even when the Lease cannot be read or written (a run that awaited Vault through the
/// outage saw it end); what the Lease says counts only when it could be read and parsed.
#[derive(Debug)]
pub struct Memory {
    stored: Result<Stored, RecordError>,
    known: OutageRecord,
}

impl Memory {
    /// Starts from what was read, logging why a record cannot be used.
    pub fn new(read: Result<Stored, RecordError>) -> Memory {
        let known = match &read {
            Ok(stored) => {
                if let Some(why) = &stored.garbled {
                    tracing::warn!("{why}");
                }
                stored.record
            }
            Err(e) => {
                tracing::warn!("{e}");
                OutageRecord::Empty
            }
        };
        Memory {
            stored: read,
            known,
        }
    }

    /// Takes one look at Vault into account and writes it, if it changes the record. A failed
    /// write is logged and kept out of the Lease, never out of this run's own view.
    pub async fn note(&mut self, lease: &RecordLease, sighting: Sighting, dry_run: bool) {
        if let Some(next) = self.known.after(sighting) {
            self.known = next;
        }
        let Ok(stored) = &self.stored else {
            return;
        };
        match note(lease, stored.clone(), sighting, Timestamp::now(), dry_run).await {
            Ok(written) => {
                if written.record != stored.record {
                    tracing::info!("outage record: {}", written.record);
                }
                // The Lease holds other runs' sightings too: it wins over this run's own view,
                // unless the write was a dry run.
                if !dry_run {
                    self.known = written.record;
                }
                self.stored = Ok(written);
            }
            Err(e) => {
                tracing::warn!("{e}");
                self.stored = Err(e);
            }
        }
    }

    /// Writes down a resync at `at`: one annotation of its own, so it needs no `resourceVersion`
    /// (no other write touches it). A failed write is logged: the resync stands, only the
    /// cooldown of later runs cannot see it.
    pub async fn note_resync(&mut self, lease: &RecordLease, at: Timestamp, dry_run: bool) {
        if self.stored.is_err() {
            return;
        }
        let patch =
            Patch::Merge(json!({"metadata": {"annotations": {RESYNCED_AT: at.to_string()}}}));
        if let Err(e) = lease.patch(dry_run, &patch).await {
            let what = lease.doing("recording the resync");
            tracing::warn!("{}", record_error(e, &what));
        }
    }

    /// The claim the annotations hold; none when any part is missing or garbled.
    fn parse_claim(annotations: &BTreeMap<String, String>, now: Timestamp) -> Option<Claim> {
        match (
            annotations.get(CLAIMED_FOR),
            annotations.get(CLAIMED_BY),
            parse_time(annotations, CLAIMED_AT, now),
        ) {
            (Some(outage), Some(by), Ok(Some(at))) => Some(Claim {
                outage: outage.clone(),
                by: by.clone(),
                at,
            }),
            _ => None,
        }
    }

    /// Claims `outage` for this run (`by`) before it acts: one write conditional on the
    /// `resourceVersion` read, so of runs claiming at once exactly one lands. A fresh claim of
    /// the same outage by another run (within [`CLAIM_BOUND`]) is lost to; an older one, or one of
    /// another outage, is claimed over. A conflict is read again and judged again.
    pub async fn claim(&mut self, lease: &RecordLease, outage: &str, by: &str) -> Claimed {
        let mut stored = match &self.stored {
            Ok(stored) => stored.clone(),
            Err(e) => return Claimed::Unavailable(e.to_string()),
        };
        let what = lease.doing("claiming the outage");
        for _ in 0..=CONFLICT_RETRIES {
            let now = Timestamp::now();
            if let Some(claim) = stored
                .claim
                .as_ref()
                .filter(|c| c.outage == outage && claim_is_fresh(c.at, now))
            {
                return Claimed::Lost(claim.clone());
            }
            let patch = Patch::Merge(json!({"metadata": {
                "resourceVersion": stored.resource_version,
                "annotations": {CLAIMED_FOR: outage, CLAIMED_BY: by, CLAIMED_AT: now.to_string()},
            }}));
            match lease.patch(false, &patch).await {
                Ok(written) => {
                    stored.resource_version = written.metadata.resource_version.unwrap_or_default();
                    self.stored = Ok(stored);
                    return Claimed::Won;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    match read(lease, Timestamp::now()).await {
                        Ok(again) => stored = again,
                        Err(e) => return Claimed::Unavailable(e.to_string()),
                    }
                }
                Err(e) => return Claimed::Unavailable(record_error(e, &what).to_string()),
            }
        }
        Claimed::Unavailable(format!(
            "{what}: it kept changing under {CONFLICT_RETRIES} retries"
        ))
    }

    /// The last resync recorded, for the decision's cooldown and once-per-outage bound.
    pub fn resynced_at(&self) -> Option<Timestamp> {
        self.stored.as_ref().ok().and_then(|s| s.resynced_at)
    }

    /// The last outage seen to end, for the decision.
    pub fn seen_outage(&self) -> Option<SeenOutage> {
        self.known.seen_outage()
    }

    /// The record in words, for the summary: what is known, and why the Lease could not help.
    pub fn describe(&self) -> String {
        match &self.stored {
            Ok(Stored {
                garbled: Some(why), ..
            }) => format!("{} (the Lease was ignored: {why})", self.known),
            Ok(_) => self.known.to_string(),
            Err(e) => format!("{} (the Lease could not be used: {e})", self.known),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{mock_client, now, status_error};

    fn at(s: i64) -> Timestamp {
        now() + SignedDuration::from_secs(s)
    }

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ended(since: i64, again: i64) -> OutageRecord {
        OutageRecord::Ended(SeenOutage {
            not_ready_since: at(since),
            ready_again_at: at(again),
        })
    }

    #[test]
    fn sightings_open_and_end_an_outage_once() {
        use Sighting::*;
        let empty = OutageRecord::Empty;
        let open = OutageRecord::Open { since: at(-60) };
        let rows: Vec<(&str, OutageRecord, Sighting, Option<OutageRecord>)> = vec![
            ("nothing seen, ready: no write", empty, Ready(at(0)), None),
            (
                "nothing seen, not ready: opens",
                empty,
                NotReady(at(0)),
                Some(OutageRecord::Open { since: at(0) }),
            ),
            (
                "open, not ready again: no write",
                open,
                NotReady(at(0)),
                None,
            ),
            (
                "open, ready: ends it",
                open,
                Ready(at(0)),
                Some(ended(-60, 0)),
            ),
            (
                "open since later than a stale ready: no write",
                open,
                Ready(at(-61)),
                None,
            ),
            (
                "ended, ready: no write",
                ended(-60, -30),
                Ready(at(0)),
                None,
            ),
            (
                "ended, not ready later: a new outage",
                ended(-60, -30),
                NotReady(at(0)),
                Some(OutageRecord::Open { since: at(0) }),
            ),
            (
                "ended after a stale not-ready: no write",
                ended(-60, -30),
                NotReady(at(-40)),
                None,
            ),
        ];
        for (name, record, sighting, want) in rows {
            assert_eq!(record.after(sighting), want, "{name}");
        }
    }

    #[test]
    fn parses_what_it_writes_and_refuses_garbled_records() {
        for record in [
            OutageRecord::Empty,
            OutageRecord::Open { since: at(-5) },
            ended(-100, -5),
        ] {
            let patch = record.patch("42");
            assert_eq!(patch["metadata"]["resourceVersion"], "42");
            let written: BTreeMap<String, String> = patch["metadata"]["annotations"]
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            assert_eq!(OutageRecord::parse(&written, now()), Ok(record));
        }
        let future = at(3600).to_string();
        let cases: Vec<(BTreeMap<String, String>, &str)> = vec![
            (
                annotations(&[(NOT_READY_SINCE, "yesterday")]),
                "is not a time",
            ),
            (annotations(&[(NOT_READY_SINCE, &future)]), "in the future"),
            (
                annotations(&[(READY_AGAIN_AT, "2026-12-01T11:00:00Z")]),
                "without",
            ),
            (
                annotations(&[
                    (NOT_READY_SINCE, "2026-12-01T11:00:00Z"),
                    (READY_AGAIN_AT, "2026-12-01T10:00:00Z"),
                ]),
                "is before",
            ),
        ];
        for (a, want) in cases {
            let err = OutageRecord::parse(&a, now()).unwrap_err();
            assert!(err.contains(want), "{a:?}: {err}");
        }
        // Another annotation on the Lease (a label tool, kubectl) is not ours to judge.
        assert_eq!(
            OutageRecord::parse(&annotations(&[("owner", "platform")]), now()),
            Ok(OutageRecord::Empty)
        );
    }

    fn lease(rv: &str, pairs: &[(&str, &str)]) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": DEFAULT_LEASE_NAME, "namespace": "security", "resourceVersion": rv,
                "annotations": annotations(pairs)},
            "spec": {}})
    }

    #[tokio::test]
    async fn a_conflicting_write_is_read_again_and_applied_to_the_newer_record() {
        let (client, mut server) = mock_client();
        let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
        let stored = Stored {
            record: OutageRecord::Empty,
            garbled: None,
            resource_version: "10".into(),
            claim: None,
            resynced_at: None,
        };
        let task = tokio::spawn(async move {
            note(&api, stored, Sighting::NotReady(at(0)), now(), false).await
        });
        // This run saw Vault not ready; meanwhile another run wrote the end of an earlier outage.
        let first = server
            .answer(
                409,
                status_error(409, "Conflict", "the object has been modified"),
            )
            .await;
        assert_eq!(first.method, "PATCH");
        assert_eq!(
            first.path,
            "/apis/coordination.k8s.io/v1/namespaces/security/leases/eso-recovery"
        );
        assert_eq!(first.content_type, "application/merge-patch+json");
        assert!(first.query_pairs().contains(&"fieldManager=eso-recovery"));
        assert_eq!(first.body["metadata"]["resourceVersion"], "10");
        let (since, again) = (at(-60).to_string(), at(-30).to_string());
        let reread = server
            .answer(
                200,
                lease("11", &[(NOT_READY_SINCE, &since), (READY_AGAIN_AT, &again)]),
            )
            .await;
        assert_eq!(reread.method, "GET");
        // A new outage, after the other run's: written over the record it wrote, not over the
        // stale one.
        let second = server.answer(200, lease("12", &[])).await;
        assert_eq!(second.body["metadata"]["resourceVersion"], "11");
        let written = &second.body["metadata"]["annotations"];
        assert_eq!(written[NOT_READY_SINCE], at(0).to_string());
        assert_eq!(written[READY_AGAIN_AT], Value::Null);
        let done = task.await.unwrap().unwrap();
        assert_eq!(done.record, OutageRecord::Open { since: at(0) });
        assert_eq!(done.resource_version, "12");
    }

    #[tokio::test]
    async fn a_sighting_older_than_another_runs_write_writes_nothing() {
        let (client, mut server) = mock_client();
        let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
        let stored = Stored {
            record: OutageRecord::Open { since: at(-30) },
            garbled: None,
            resource_version: "10".into(),
            claim: None,
            resynced_at: None,
        };
        let task =
            tokio::spawn(
                async move { note(&api, stored, Sighting::Ready(at(0)), now(), false).await },
            );
        server
            .answer(
                409,
                status_error(409, "Conflict", "the object has been modified"),
            )
            .await;
        // The other run saw it ready first: its end stands.
        let (since, again) = (at(-30).to_string(), at(-2).to_string());
        server
            .answer(
                200,
                lease("11", &[(NOT_READY_SINCE, &since), (READY_AGAIN_AT, &again)]),
            )
            .await;
        let done = task.await.unwrap().unwrap();
        assert_eq!(done.record, ended(-30, -2));
        assert_eq!(done.resource_version, "11");
    }

    /// A Memory read from a Lease at resourceVersion 10 with `pairs`.
    fn memory_with(pairs: &[(&str, &str)]) -> Memory {
        Memory::new(Ok(Stored {
            record: OutageRecord::Empty,
            garbled: None,
            resource_version: "10".into(),
            claim: Memory::parse_claim(&annotations(pairs), Timestamp::now()),
            resynced_at: None,
        }))
    }

    const OUTAGE: &str = "the outage that ended at 2026-12-01T11:59:00Z";

    fn claimed(outage: &str, seconds_ago: i64) -> Vec<(&'static str, String)> {
        vec![
            (CLAIMED_FOR, outage.to_string()),
            (CLAIMED_BY, "eso-recovery-29418-abcde (pid 1)".to_string()),
            (
                CLAIMED_AT,
                (Timestamp::now() - SignedDuration::from_secs(seconds_ago)).to_string(),
            ),
        ]
    }

    fn pairs<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        owned.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[tokio::test]
    async fn a_claim_is_one_write_conditional_on_the_version_read() {
        // Nothing claimed; a stale claim of this outage (its run died before acting); a fresh
        // claim of another outage: each is claimed over with one conditional write.
        let stale = claimed(OUTAGE, 45);
        let other = claimed("the outage that ended at 2026-12-01T10:00:00Z", 1);
        for before in [Vec::new(), pairs(&stale), pairs(&other)] {
            let (client, mut server) = mock_client();
            let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
            let mut memory = memory_with(&before);
            let task =
                tokio::spawn(async move { memory.claim(&api, OUTAGE, "this-run (pid 2)").await });
            let write = server.answer(200, lease("11", &[])).await;
            assert_eq!(write.method, "PATCH");
            assert_eq!(write.body["metadata"]["resourceVersion"], "10");
            let written = &write.body["metadata"]["annotations"];
            assert_eq!(written[CLAIMED_FOR], OUTAGE);
            assert_eq!(written[CLAIMED_BY], "this-run (pid 2)");
            assert!(
                written[CLAIMED_AT]
                    .as_str()
                    .unwrap()
                    .parse::<Timestamp>()
                    .is_ok()
            );
            assert_eq!(task.await.unwrap(), Claimed::Won, "{before:?}");
        }
    }

    #[tokio::test]
    async fn of_runs_claiming_at_once_the_one_whose_write_conflicts_reads_the_winner_and_yields() {
        let (client, mut server) = mock_client();
        let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
        let mut memory = memory_with(&[]);
        let task = tokio::spawn(async move { memory.claim(&api, OUTAGE, "loser (pid 3)").await });
        server
            .answer(
                409,
                status_error(409, "Conflict", "the object has been modified"),
            )
            .await;
        let winner = claimed(OUTAGE, 0);
        let reread = server.answer(200, lease("11", &pairs(&winner))).await;
        assert_eq!(reread.method, "GET");
        let Claimed::Lost(claim) = task.await.unwrap() else {
            panic!("the loser acted too")
        };
        assert_eq!(claim.outage, OUTAGE);
        assert_eq!(claim.by, "eso-recovery-29418-abcde (pid 1)");
    }

    #[tokio::test]
    async fn a_fresh_claim_of_the_same_outage_is_yielded_to_without_a_write() {
        let (client, _server) = mock_client();
        let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
        let fresh = claimed(OUTAGE, 5);
        let mut memory = memory_with(&pairs(&fresh));
        assert!(matches!(
            memory.claim(&api, OUTAGE, "late (pid 4)").await,
            Claimed::Lost(_)
        ));
        let mut missing = Memory::new(Err(RecordError::Missing("404".into())));
        assert!(matches!(
            missing.claim(&api, OUTAGE, "late (pid 4)").await,
            Claimed::Unavailable(_)
        ));
    }

    #[tokio::test]
    async fn a_missing_or_forbidden_lease_is_said_so() {
        let (client, mut server) = mock_client();
        let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
        let task = tokio::spawn(async move { (read(&api, now()).await, read(&api, now()).await) });
        server
            .answer(
                404,
                status_error(
                    404,
                    "NotFound",
                    "leases.coordination.k8s.io \"eso-recovery\" not found",
                ),
            )
            .await;
        server
            .answer(
                403,
                status_error(403, "Forbidden", "cannot get resource \"leases\""),
            )
            .await;
        let (missing, forbidden) = task.await.unwrap();
        let missing = missing.unwrap_err();
        assert!(matches!(missing, RecordError::Missing(_)), "{missing:?}");
        assert!(
            missing.to_string().contains("apply manifests/"),
            "{missing}"
        );
        assert!(
            matches!(forbidden, Err(RecordError::Forbidden(_))),
            "{forbidden:?}"
        );
    }

    #[tokio::test]
    async fn a_garbled_record_is_read_as_empty_with_why() {
        let (client, mut server) = mock_client();
        let api = RecordLease::new(client, "security", DEFAULT_LEASE_NAME);
        let task = tokio::spawn(async move { read(&api, now()).await });
        server
            .answer(200, lease("5", &[(NOT_READY_SINCE, "garbage")]))
            .await;
        let stored = task.await.unwrap().unwrap();
        assert_eq!(stored.record, OutageRecord::Empty);
        assert!(stored.garbled.unwrap().contains("is not a time"));
        assert_eq!(stored.resource_version, "5");
    }
}
