//! The command line: every flag has an environment twin (for the CronJob) and a default; `--help`
//! is the reference. Parsing ends in a validated [`Config`], or a usage error (exit 2).

use std::{
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};
use url::Url;

use crate::{
    config::{Config, Strategy},
    decision::Policy,
    vault::VaultTls,
};

const ABOUT: &str = "Restart the External Secrets Operator when Vault is ready again but ESO is \
still stuck in its backoff (a degraded ClusterSecretStore, or ExternalSecrets failing since the \
outage).";

const LONG_ABOUT: &str = "\
Restart the External Secrets Operator when Vault is ready again but ESO is still stuck in its \
backoff.

When Vault restarts it comes back sealed. ESO's reconciles fail and back off, per object, up to 7 \
minutes, in the controller's memory: after the unseal the secrets stay stale until each object's \
next slot. Restarting ESO clears every backoff at once. eso-recovery checks Vault's \
/v1/sys/health and the stores' Ready condition, and restarts ESO's Deployments exactly as \
`kubectl rollout restart` does when Vault is ready AND either a store is degraded (Ready=False), \
or the stores are Ready but ExternalSecrets on them have been failing since before the last \
outage ended: when Vault last became active (its /v1/sys/leader active_time), or when a run saw \
it ready again after seeing it not ready (its record, the Lease eso-recovery; this catches a \
network or DNS outage that Vault's clock does not show). They are checked only for 14 minutes \
after that. It is meant to run every minute from a CronJob; in normal operation it makes four \
requests and exits. With --await-vault a run that finds Vault not ready waits for it, and \
restarts the moment it is ready.

It restarts nothing while Vault is not ready, while the last restart is younger than --cooldown, \
while a rollout is still in progress, or when ESO was already restarted after the last outage \
ended (once per outage). An ExternalSecret that fails for its own reasons (a missing key, failing \
since Vault came back) never causes a restart. It never reads Secrets. Runs at once (the \
CronJob's and one by hand) act once: each claims the outage in its record first, and only the \
run whose claim lands acts; the others exit 0 (already_claimed).

With --strategy resync it restarts nothing when it can help it: under the same rules it annotates \
each degraded store, waits for it to be Ready, then annotates the stuck ExternalSecrets \
(eso-recovery/resynced-at), which makes ESO reconcile each at once; no pod is replaced and in HA \
ESO's leader stays. It falls back to the restart, in the same run, when the admission policy that \
limits it to that annotation is not in force (resync_unguarded), a patch fails (resync_failed), \
or what it woke does not come back within 5 s (resync_not_back).";

const AFTER_HELP: &str = "\
Exit codes:
  0  nothing needed, or the restart or resync (or dry run) succeeded, or a resync whose objects
     did not come back fell back to a restart that succeeded
  1  a Kubernetes API error, a failed restart, --wait not satisfied, --timeout reached, or a
     resync that fell back because its admission policy is missing or a patch was refused
  2  invalid usage or configuration (unknown flag, bad duration, bad URL, empty list)

Examples:
  eso-recovery --dry-run            # what would happen now; patches sent with dryRun=All
  eso-recovery --force --wait --timeout 5m
                                    # restart now and wait for ESO to recover
  eso-recovery --await-vault 10m    # run it, then unseal: restarts the moment Vault is ready";

/// The file name kubectl looks for on PATH: `kubectl eso-recovery` runs `kubectl-eso_recovery`
/// (a symlink to, or a copy of, this binary).
pub const PLUGIN_FILE_NAME: &str = "kubectl-eso_recovery";

const PLUGIN_HELP: &str = "\
Running as a kubectl plugin (kubectl eso-recovery), for a person at a terminal: logs are text \
unless --log-format says otherwise, and Kubernetes is reached through your kubeconfig's current \
context (or --context), never a pod's service account.";

/// Whether this process was started as a kubectl plugin (its file name starts with `kubectl-`).
pub fn is_kubectl_plugin(argv0: &OsStr) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("kubectl-"))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// What `--version` prints: Cargo's version, the commit and the target of this build (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ESO_RECOVERY_COMMIT"),
    ", target ",
    env!("ESO_RECOVERY_TARGET"),
    ")"
);

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(name = "eso-recovery", version = VERSION, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Vault's address, as for the Vault CLI.
    #[arg(long, env = "VAULT_ADDR", value_name = "URL",
          default_value = "http://vault.security.svc.cluster.local:8200",
          value_parser = parse_vault_addr, help_heading = "Vault")]
    pub vault_addr: Url,

    /// A PEM file of CA certificates that sign Vault's certificate. Without it (or
    /// --vault-capath) only public CAs are trusted: the system's, on macOS a bundle compiled in.
    /// A private CA always needs this.
    #[arg(
        long,
        env = "VAULT_CACERT",
        value_name = "FILE",
        help_heading = "Vault"
    )]
    pub vault_cacert: Option<PathBuf>,

    /// A folder of PEM files of CA certificates that sign Vault's certificate.
    #[arg(long, env = "VAULT_CAPATH", value_name = "DIR", help_heading = "Vault")]
    pub vault_capath: Option<PathBuf>,

    /// Do not verify Vault's certificate. For a lab only.
    #[arg(long, env = "VAULT_SKIP_VERIFY", action = ArgAction::SetTrue, help_heading = "Vault")]
    pub vault_skip_verify: bool,

    /// The name to verify Vault's certificate against, when it differs from the address's host.
    #[arg(
        long,
        env = "VAULT_TLS_SERVER_NAME",
        value_name = "NAME",
        help_heading = "Vault"
    )]
    pub vault_tls_server_name: Option<String>,

    /// The whole health request's time limit, body included ("5s", "500ms"; a bare number is seconds).
    #[arg(long, env = "VAULT_CLIENT_TIMEOUT", value_name = "DURATION", default_value = "5s",
          value_parser = parse_positive_duration, help_heading = "Vault")]
    pub vault_timeout: Duration,

    /// Count a Vault standby (429) or performance standby (473) as ready. Off by default: a standby
    /// does not prove there is an active node, and ESO's Kubernetes-auth login is a write.
    #[arg(long, env = "ESO_RECOVERY_STANDBY_OK", action = ArgAction::SetTrue, help_heading = "Vault")]
    pub standby_ok: bool,

    /// The ClusterSecretStores to watch, comma-separated; a restart is due if any is degraded.
    #[arg(
        long = "store",
        env = "ESO_RECOVERY_STORE",
        value_name = "NAMES",
        default_value = "k8s-secrets",
        value_delimiter = ',',
        help_heading = "Kubernetes"
    )]
    pub stores: Vec<String>,

    /// The namespaces whose ExternalSecrets are checked, comma-separated [default: all]. Each
    /// needs `list` on externalsecrets there (manifests/ grants it cluster-wide).
    #[arg(
        long,
        env = "ESO_RECOVERY_EXTERNALSECRET_NAMESPACES",
        value_name = "NAMESPACES",
        value_delimiter = ',',
        help_heading = "Kubernetes"
    )]
    pub externalsecret_namespaces: Vec<String>,

    /// ESO's Deployments to restart, comma-separated.
    #[arg(
        long,
        env = "ESO_RECOVERY_DEPLOYMENTS",
        value_name = "NAMES",
        default_value = "external-secrets,external-secrets-webhook,external-secrets-cert-controller",
        value_delimiter = ',',
        help_heading = "Kubernetes"
    )]
    pub deployments: Vec<String>,

    /// The namespace of ESO's Deployments.
    #[arg(
        long,
        env = "ESO_RECOVERY_NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "security",
        help_heading = "Kubernetes"
    )]
    pub namespace: String,

    /// The Lease in --namespace that holds the run's record (outages seen, claims, resyncs); the
    /// chart names it after its release, so two releases in one namespace keep their own.
    #[arg(
        long,
        env = "ESO_RECOVERY_RECORD",
        value_name = "LEASE",
        default_value = crate::record::DEFAULT_LEASE_NAME,
        help_heading = "Kubernetes"
    )]
    pub record: String,

    /// The kubeconfig context to use (for manual runs; in a pod the in-cluster config is used).
    #[arg(
        long,
        env = "ESO_RECOVERY_CONTEXT",
        value_name = "NAME",
        help_heading = "Kubernetes"
    )]
    pub context: Option<String>,

    /// No restart within this long of the newest restartedAt annotation on the Deployments.
    #[arg(long, env = "ESO_RECOVERY_COOLDOWN", value_name = "DURATION", default_value = "5m",
          value_parser = parse_duration, help_heading = "Behaviour")]
    pub cooldown: Duration,

    /// When Vault is not ready, keep asking its health (a new request every 0.5 s, each bounded by
    /// --vault-timeout) for up to this long, and go on the moment it answers ready: "run it, then
    /// unseal". Still not ready at the end: outcome vault_not_ready, exit 0. 0s exits at once.
    #[arg(long, env = "ESO_RECOVERY_AWAIT_VAULT", value_name = "DURATION", default_value = "0s",
          value_parser = parse_duration, help_heading = "Behaviour")]
    pub await_vault: Duration,

    /// The whole run's time limit, whatever hangs; --await-vault's wait comes on top.
    #[arg(long, env = "ESO_RECOVERY_TIMEOUT", value_name = "DURATION", default_value = "30s",
          value_parser = parse_positive_duration, help_heading = "Behaviour")]
    pub timeout: Duration,

    /// How ESO is woken once it is found stuck. restart: ESO's three Deployments, as `kubectl
    /// rollout restart` (every backoff cleared, every pod replaced). resync: the annotation
    /// eso-recovery/resynced-at on each degraded store, then on each stuck ExternalSecret, ESO's
    /// own lever (nothing replaced, the leader stays); it needs `patch` on those kinds and the
    /// ValidatingAdmissionPolicy the manifests ship, and it restarts instead when the policy is
    /// missing, a patch fails, or what it woke is not back within 5 s.
    #[arg(long, env = "ESO_RECOVERY_STRATEGY", value_name = "STRATEGY", value_enum,
          default_value_t = Strategy::Restart, help_heading = "Behaviour")]
    pub strategy: Strategy,

    /// Run every check and send the patches with dryRun=All (proving RBAC and admission would
    /// accept them); change nothing, write no Events.
    #[arg(long, env = "ESO_RECOVERY_DRY_RUN", action = ArgAction::SetTrue, help_heading = "Behaviour")]
    pub dry_run: bool,

    /// Restart regardless of Vault, the stores, the ExternalSecrets, the cooldown and rollout state
    /// (paused Deployments are still refused), whatever --strategy says. For incidents; it has no
    /// environment twin, so a CronJob cannot be left forcing.
    #[arg(long, action = ArgAction::SetTrue, help_heading = "Behaviour")]
    pub force: bool,

    /// After restarting or resyncing, wait until every rollout completes, every store is Ready and
    /// every ExternalSecret found stuck has synced, within --timeout.
    #[arg(long, env = "ESO_RECOVERY_WAIT", action = ArgAction::SetTrue, help_heading = "Behaviour")]
    pub wait: bool,

    /// Log format [default: text on a terminal, json otherwise].
    #[arg(
        long,
        env = "ESO_RECOVERY_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        help_heading = "Output"
    )]
    pub log_format: Option<LogFormat>,

    /// Log level (error, warn, info, debug, trace), or target=level pairs ("info,kube=debug").
    #[arg(
        long,
        env = "ESO_RECOVERY_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info",
        help_heading = "Output"
    )]
    pub log_level: String,
}

/// A configuration problem found after parsing; reported like clap's own errors (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Cli {
    /// The command line definition; as a kubectl plugin it is named and documented as one.
    pub fn command_for(plugin: bool) -> clap::Command {
        let cmd = Cli::command();
        if plugin {
            cmd.name("kubectl eso-recovery")
                .bin_name("kubectl eso-recovery")
                .before_help(PLUGIN_HELP)
                .before_long_help(PLUGIN_HELP)
        } else {
            cmd
        }
    }

    /// Parses `argv` (program name first), telling whether it is the kubectl plugin.
    pub fn parse_invocation(argv: Vec<OsString>) -> Result<(Cli, bool), clap::Error> {
        let plugin = argv.first().is_some_and(|a| is_kubectl_plugin(a));
        let mut matches = Cli::command_for(plugin).try_get_matches_from(argv)?;
        Ok((Cli::from_arg_matches_mut(&mut matches)?, plugin))
    }

    /// Validates what clap cannot check on its own and builds the run's configuration.
    pub fn into_config(self) -> Result<Config, UsageError> {
        let stores = names(
            self.stores,
            "--store (ESO_RECOVERY_STORE)",
            "ClusterSecretStore",
            253,
        )?;
        let deployments = names(
            self.deployments,
            "--deployments (ESO_RECOVERY_DEPLOYMENTS)",
            "Deployment",
            253,
        )?;
        check_name(
            &self.namespace,
            "--namespace (ESO_RECOVERY_NAMESPACE)",
            "namespace",
            63,
        )?;
        check_name(&self.record, "--record (ESO_RECOVERY_RECORD)", "Lease", 253)?;
        let es_flag = "--externalsecret-namespaces (ESO_RECOVERY_EXTERNALSECRET_NAMESPACES)";
        let externalsecret_namespaces = if self
            .externalsecret_namespaces
            .iter()
            .all(|n| n.trim().is_empty())
        {
            Vec::new()
        } else {
            names(self.externalsecret_namespaces, es_flag, "namespace", 63)?
        };
        if self.vault_cacert.is_some() && self.vault_skip_verify {
            tracing::warn!("--vault-skip-verify is set: --vault-cacert is not used");
        }
        Ok(Config {
            vault_addr: self.vault_addr,
            vault_tls: VaultTls {
                ca_cert: self.vault_cacert,
                ca_path: self.vault_capath,
                skip_verify: self.vault_skip_verify,
                server_name: self.vault_tls_server_name.filter(|s| !s.is_empty()),
            },
            vault_timeout: self.vault_timeout,
            namespace: self.namespace,
            record: self.record,
            externalsecret_namespaces,
            deployments,
            context: self.context.filter(|c| !c.is_empty()),
            kubeconfig_only: false,
            policy: Policy {
                cooldown: self.cooldown,
                standby_ok: self.standby_ok,
                force: self.force,
                stores,
            },
            strategy: self.strategy,
            dry_run: self.dry_run,
            wait: self.wait,
            await_vault: self.await_vault,
            timeout: self.timeout,
        })
    }
}

/// Trims, drops empty entries, refuses an empty list, duplicates and invalid names.
fn names(raw: Vec<String>, flag: &str, what: &str, max: usize) -> Result<Vec<String>, UsageError> {
    let mut out: Vec<String> = Vec::new();
    for name in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        check_name(name, flag, what, max)?;
        if out.iter().any(|n| n == name) {
            return Err(UsageError(format!(
                "{flag}: {what} {name:?} is listed twice"
            )));
        }
        out.push(name.to_string());
    }
    if out.is_empty() {
        return Err(UsageError(format!(
            "{flag}: the list is empty; name at least one {what}"
        )));
    }
    Ok(out)
}

/// Kubernetes object names: lowercase RFC 1123 (a typo caught here, not as a 404 every minute).
fn check_name(name: &str, flag: &str, what: &str, max: usize) -> Result<(), UsageError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = name.len() <= max
        && if max == 63 {
            label_ok(name)
        } else {
            name.split('.').all(label_ok)
        };
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{flag}: {what} name {name:?} is not a valid Kubernetes name (lowercase letters, digits, '-'{}, at most {max} characters)",
            if max == 63 { "" } else { " and '.'" }
        )))
    }
}

fn parse_vault_addr(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim())
        .map_err(|e| format!("{e} (expected e.g. https://vault.security.svc:8200)"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the address must not have a query or fragment".into());
    }
    Ok(url)
}

/// Durations as people write them: "30s", "5m", "1m30s", "500ms"; a bare number is seconds
/// (as `VAULT_CLIENT_TIMEOUT` allows).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 30s, 5m, 1m30s)"))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than zero".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["eso-recovery"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .into_config()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
        Cli::command_for(true).debug_assert();
    }

    #[test]
    fn the_plugin_is_told_by_its_file_name_and_documents_itself() {
        let args = |name: &str| vec![OsString::from(name), "--dry-run".into()];
        let (cli, plugin) =
            Cli::parse_invocation(args("/usr/local/bin/kubectl-eso_recovery")).unwrap();
        assert!(plugin && cli.dry_run);
        let (_, plugin) = Cli::parse_invocation(args("/usr/local/bin/eso-recovery")).unwrap();
        assert!(!plugin);
        let help = Cli::command_for(true).render_long_help().to_string();
        assert!(help.contains("Running as a kubectl plugin"), "{help}");
        assert!(help.contains("kubectl eso-recovery [OPTIONS]"), "{help}");
        let err = Cli::parse_invocation(vec!["kubectl-eso_recovery".into(), "--nope".into()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("kubectl eso-recovery"), "{err}");
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.vault_addr.as_str(),
            "http://vault.security.svc.cluster.local:8200/"
        );
        assert_eq!(c.policy.stores, ["k8s-secrets"]);
        assert!(c.externalsecret_namespaces.is_empty(), "all namespaces");
        assert_eq!(
            c.deployments,
            [
                "external-secrets",
                "external-secrets-webhook",
                "external-secrets-cert-controller"
            ]
        );
        assert_eq!(c.namespace, "security");
        assert_eq!(c.record, "eso-recovery");
        assert_eq!(c.policy.cooldown, Duration::from_secs(300));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.vault_timeout, Duration::from_secs(5));
        assert_eq!(
            c.await_vault,
            Duration::ZERO,
            "today's behaviour: exit at once"
        );
        assert!(!c.dry_run && !c.policy.force && !c.wait && !c.policy.standby_ok);
        assert_eq!(c.strategy, Strategy::Restart, "the design's action");
        assert_eq!(
            parse(&["--strategy", "resync"]).unwrap().strategy,
            Strategy::Resync
        );
        let awaiting = parse(&["--await-vault", "10m"]).unwrap();
        assert_eq!(awaiting.await_vault, Duration::from_secs(600));
        let err = parse(&["--await-vault", "soon"]).unwrap_err();
        assert!(err.contains("--await-vault"), "{err}");
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("30s", 30.0),
            ("5m", 300.0),
            ("1m30s", 90.0),
            ("1m 30s", 90.0),
            ("500ms", 0.5),
            ("7", 7.0),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn lists_are_trimmed_and_checked() {
        let c = parse(&[
            "--store",
            " a , b ,",
            "--deployments",
            "x",
            "--externalsecret-namespaces",
            "db, web",
        ])
        .unwrap();
        assert_eq!(c.policy.stores, ["a", "b"]);
        assert_eq!(c.deployments, ["x"]);
        assert_eq!(c.externalsecret_namespaces, ["db", "web"]);
    }

    #[test]
    fn bad_inputs_name_the_input() {
        let cases: &[(&[&str], &str)] = &[
            (&["--cooldown", "5x"], "--cooldown"),
            (&["--timeout", "0s"], "more than zero"),
            (&["--vault-timeout", "soon"], "--vault-timeout"),
            (&["--vault-addr", "vault:8200"], "--vault-addr"),
            (&["--vault-addr", "ftp://vault"], "not http or https"),
            (&["--vault-addr", "not a url"], "--vault-addr"),
            (
                &["--store", ""],
                "--store (ESO_RECOVERY_STORE): the list is empty",
            ),
            (&["--store", ",,"], "the list is empty"),
            (&["--deployments", "a,a"], "listed twice"),
            (
                &["--deployments", "Bad_Name"],
                "\"Bad_Name\" is not a valid Kubernetes name",
            ),
            (&["--namespace", "a.b"], "--namespace"),
            (
                &["--record", "Our_Lease"],
                "--record (ESO_RECOVERY_RECORD): Lease name \"Our_Lease\" is not a valid Kubernetes name",
            ),
            (
                &["--externalsecret-namespaces", "db,Web"],
                "--externalsecret-namespaces (ESO_RECOVERY_EXTERNALSECRET_NAMESPACES): namespace name \"Web\"",
            ),
            (
                &["--externalsecret-namespaces", "a.b"],
                "--externalsecret-namespaces",
            ),
            (&["--log-format", "xml"], "--log-format"),
            (&["--strategy", "annotate"], "--strategy"),
            (&["--frobnicate"], "--frobnicate"),
        ];
        for (args, want) in cases {
            let err = parse(args).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_documents_env_twins_and_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            "[env: VAULT_ADDR=",
            "[env: VAULT_CACERT=",
            "[env: VAULT_CAPATH=",
            "[env: VAULT_SKIP_VERIFY=",
            "[env: VAULT_TLS_SERVER_NAME=",
            "[env: VAULT_CLIENT_TIMEOUT=",
            "[env: ESO_RECOVERY_STORE=",
            "[env: ESO_RECOVERY_EXTERNALSECRET_NAMESPACES=",
            "[env: ESO_RECOVERY_COOLDOWN=",
            "[env: ESO_RECOVERY_TIMEOUT=",
            "[env: ESO_RECOVERY_STRATEGY=",
            "resync_unguarded",
            "[default: 5m]",
            "Exit codes:",
            "kubectl rollout restart",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}");
        }
    }
}
