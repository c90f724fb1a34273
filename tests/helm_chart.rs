//! The Helm chart (`charts/eso-recovery`) with a real Helm (built from the Go module proxy by
//! `tests/helm/build.sh`): lint, the same objects as `manifests/` by default, each value changing
//! exactly what it should, bad values refused by the schema naming the key, and an install into a
//! real kube-apiserver under Pod Security "restricted" whose identity is as least-privileged as
//! the kustomize one.

use std::{collections::BTreeMap, path::Path};

use harness::{
    process::controlplane::ControlPlane,
    process::openbao::OpenBao,
    process::seed::Seed,
    run::eso,
    run::expect,
    tools::helm::{chart, helm, install},
    tools::repo::repo,
};
use serde_json::{Value, json};

/// YAML (one or more documents) to JSON objects, through kubectl's own decoder.
fn objects(cp: &ControlPlane, yaml: &str) -> Vec<Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let path = file.path().display().to_string();
    let out = cp.kubectl(&["create", "--dry-run=client", "-o", "json", "-f", &path]);
    // One JSON object per document, one after the other.
    serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .map(|v| v.expect("kubectl's JSON"))
        .collect()
}

/// `helm template` as release `eso-recovery` in `security`, with extra arguments.
fn render(cp: &ControlPlane, extra: &[&str]) -> BTreeMap<String, Value> {
    render_as(cp, "eso-recovery", extra)
}

/// `helm template` as `release` in `security`, with extra arguments.
fn render_as(cp: &ControlPlane, release: &str, extra: &[&str]) -> BTreeMap<String, Value> {
    let chart = chart();
    let mut args = vec!["template", release, &chart, "-n", "security"];
    args.extend_from_slice(extra);
    let out = helm(&args);
    assert!(
        out.status.success(),
        "helm template {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    keyed(objects(cp, &String::from_utf8_lossy(&out.stdout)))
}

/// `helm template` with `values` written to `file` (what `-f` reads).
fn template_with(file: &Path, values: &str) -> std::process::Output {
    std::fs::write(file, values).unwrap();
    helm(&[
        "template",
        "eso-recovery",
        &chart(),
        "-f",
        &file.display().to_string(),
    ])
}

/// Objects by `Kind/namespace/name`, with the labels only Helm adds taken out and each
/// container's env as a name → value map (so a new variable is one change, not a shift).
fn keyed(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut o| {
            for at in [
                "/metadata/labels",
                "/spec/jobTemplate/spec/template/metadata/labels",
            ] {
                if let Some(labels) = o.pointer_mut(at).and_then(Value::as_object_mut) {
                    for helm_only in [
                        "helm.sh/chart",
                        "app.kubernetes.io/instance",
                        "app.kubernetes.io/version",
                        "app.kubernetes.io/managed-by",
                    ] {
                        labels.remove(helm_only);
                    }
                }
            }
            if let Some(containers) = o
                .pointer_mut("/spec/jobTemplate/spec/template/spec/containers")
                .and_then(Value::as_array_mut)
            {
                for c in containers {
                    let env: serde_json::Map<String, Value> = c["env"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| {
                            (
                                e["name"].as_str().unwrap_or_default().to_string(),
                                e["value"].clone(),
                            )
                        })
                        .collect();
                    c["env"] = Value::Object(env);
                }
            }
            let key = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (key, o)
        })
        .collect()
}

/// Every JSON pointer at which `a` and `b` differ (a missing object, or a list of another
/// length, is one difference).
fn differences(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    fn walk(path: String, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    walk(
                        format!("{path}/{k}"),
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (x, y)) in x.iter().zip(y).enumerate() {
                    walk(format!("{path}/{i}"), x, y, out);
                }
            }
            _ if a != b => out.push(path),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => walk(k.clone(), x, y, &mut out),
            _ => out.push(k.clone()),
        }
    }
    out
}

#[test]
fn lint_is_clean_in_strict_mode() {
    let out = helm(&["lint", "--strict", &chart()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_defaults_render_what_manifests_apply() {
    let cp = ControlPlane::shared();
    for (values, dir) in [
        (&[][..], repo().join("manifests")),
        (
            &["--set=config.strategy=resync"][..],
            repo().join("manifests").join("resync"),
        ),
    ] {
        let chart = render(cp, values);
        let out = cp.kubectl(&["kustomize", &dir.display().to_string()]);
        let kustomize = keyed(objects(cp, &out));
        assert_eq!(
            differences(&chart, &kustomize),
            Vec::<String>::new(),
            "{values:?} against {}: chart: {chart:#?}",
            dir.display()
        );
    }
}

#[test]
fn each_value_changes_exactly_what_it_should() {
    let cp = ControlPlane::shared();
    let defaults = render(cp, &[]);
    let cron = "CronJob/security/eso-recovery";
    let spec = format!("{cron}/spec/jobTemplate/spec/template/spec");
    let env = format!("{spec}/containers/0/env");
    let container = format!("{spec}/containers/0");
    let digest = format!("sha256:{}", "a".repeat(64));
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["--set=config.stores={k8s-secrets,team-store}".into()],
            vec![
                "ClusterRole/-/eso-recovery/rules/0/resourceNames".into(),
                format!("{env}/ESO_RECOVERY_STORE"),
            ],
        ),
        (
            vec!["--set=config.awaitVault=80s".into()],
            vec![format!("{env}/ESO_RECOVERY_AWAIT_VAULT")],
        ),
        (
            vec!["--set=config.deployments={external-secrets}".into()],
            vec![
                "Role/security/eso-recovery/rules/0/resourceNames".into(),
                format!("{env}/ESO_RECOVERY_DEPLOYMENTS"),
            ],
        ),
        (
            vec!["--set=config.namespace=eso".into()],
            vec![
                // The record lives beside the Deployments, where --namespace points.
                "Lease/eso/eso-recovery".into(),
                "Lease/security/eso-recovery".into(),
                "Role/eso/eso-recovery".into(),
                "Role/security/eso-recovery".into(),
                "RoleBinding/eso/eso-recovery".into(),
                "RoleBinding/security/eso-recovery".into(),
                format!("{env}/ESO_RECOVERY_NAMESPACE"),
            ],
        ),
        (
            vec!["--set=config.externalsecretNamespaces={db,web}".into()],
            vec![
                "ClusterRole/-/eso-recovery/rules".into(),
                format!("{env}/ESO_RECOVERY_EXTERNALSECRET_NAMESPACES"),
                "Role/db/eso-recovery-externalsecrets".into(),
                "Role/web/eso-recovery-externalsecrets".into(),
                "RoleBinding/db/eso-recovery-externalsecrets".into(),
                "RoleBinding/web/eso-recovery-externalsecrets".into(),
            ],
        ),
        (
            vec![
                "--set=config.vaultTimeout=2s".into(),
                "--set=config.standbyOk=true".into(),
                "--set=config.logLevel=debug".into(),
            ],
            vec![
                format!("{env}/ESO_RECOVERY_LOG_LEVEL"),
                format!("{env}/ESO_RECOVERY_STANDBY_OK"),
                format!("{env}/VAULT_CLIENT_TIMEOUT"),
            ],
        ),
        (
            vec![
                // Every 5 minutes: a run awaits Vault for 5 min 10 s, the period and the next
                // run's start.
                "--set=schedule=*/5 * * * *".into(),
                "--set=config.awaitVault=5m10s".into(),
                "--set=activeDeadlineSeconds=330".into(),
                "--set=suspend=true".into(),
                "--set=timeZone=Europe/Berlin".into(),
            ],
            vec![
                format!("{cron}/spec/jobTemplate/spec/activeDeadlineSeconds"),
                format!("{cron}/spec/schedule"),
                format!("{cron}/spec/suspend"),
                format!("{cron}/spec/timeZone"),
                format!("{env}/ESO_RECOVERY_AWAIT_VAULT"),
            ],
        ),
        (
            vec![format!("--set=image.digest={digest}")],
            vec![format!("{container}/image")],
        ),
        (
            vec![
                "--set=vaultCA.secret.name=vault-tls".into(),
                "--set=vaultCA.secret.key=ca.crt".into(),
            ],
            vec![
                format!("{env}/VAULT_CACERT"),
                format!("{container}/volumeMounts"),
                format!("{spec}/volumes"),
            ],
        ),
        (
            vec![
                "--set=serviceAccount.create=false".into(),
                "--set=serviceAccount.name=platform-sa".into(),
            ],
            vec![
                "ClusterRoleBinding/-/eso-recovery/subjects/0/name".into(),
                format!("{spec}/serviceAccountName"),
                "RoleBinding/security/eso-recovery/subjects/0/name".into(),
                "ServiceAccount/security/eso-recovery".into(),
            ],
        ),
        (
            vec!["--set=rbac.create=false".into()],
            vec![
                "ClusterRole/-/eso-recovery".into(),
                "ClusterRoleBinding/-/eso-recovery".into(),
                "Role/security/eso-recovery".into(),
                "RoleBinding/security/eso-recovery".into(),
            ],
        ),
        (
            vec![
                "--set=nodeSelector.pool=system".into(),
                "--set=priorityClassName=system-cluster-critical".into(),
                "--set=podAnnotations.team=platform".into(),
                "--set=activeDeadlineSeconds=98".into(),
            ],
            vec![
                format!("{cron}/spec/jobTemplate/spec/activeDeadlineSeconds"),
                format!("{cron}/spec/jobTemplate/spec/template/metadata/annotations"),
                format!("{spec}/nodeSelector"),
                format!("{spec}/priorityClassName"),
            ],
        ),
    ];
    for (args, mut want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut got = differences(&render(cp, &args), &defaults);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{args:?}");
    }
    // The values themselves, for a few of them.
    let set = render(cp, &["--set=config.stores={k8s-secrets,team-store}"]);
    assert_eq!(
        set["ClusterRole/-/eso-recovery"]["rules"][0]["resourceNames"],
        json!(["k8s-secrets", "team-store"])
    );
    assert_eq!(
        set[cron]
            .pointer("/spec/jobTemplate/spec/template/spec/containers/0/env/ESO_RECOVERY_STORE")
            .unwrap(),
        "k8s-secrets,team-store"
    );
    let pinned = render(cp, &[&format!("--set=image.digest={digest}")]);
    assert_eq!(
        pinned[cron]
            .pointer("/spec/jobTemplate/spec/template/spec/containers/0/image")
            .unwrap(),
        &json!(format!(
            "{}@{digest}",
            harness::tools::release::published_image()
        ))
    );
}

/// The value under ``# -- `--FLAG` (`` in values.yaml (helm-docs' description of the key: a list
/// joined with commas), or `None` when no key there names the flag.
fn chart_value(values: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = values.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("# -- `{flag}` (")))?;
    let key_line = lines[at..]
        .iter()
        .position(|l| !l.trim_start().starts_with('#'))?
        + at;
    let (_, value) = lines[key_line].split_once(':')?;
    let value = value.split(" #").next().unwrap_or_default().trim();
    let items: Vec<String> = if value.is_empty() {
        lines[key_line + 1..]
            .iter()
            .map_while(|l| l.trim_start().strip_prefix("- "))
            .map(str::to_string)
            .collect()
    } else {
        value
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_string())
            .collect()
    };
    Some(items.join(","))
}

#[test]
fn every_flag_is_in_the_readme_and_the_chart_with_the_same_default() {
    use clap::CommandFactory;
    let read = |path: &str| std::fs::read_to_string(repo().join(path)).unwrap();
    let (readme, values) = (read("README.md"), read("charts/eso-recovery/values.yaml"));
    let cronjob = read("charts/eso-recovery/templates/cronjob.yaml");
    let mut problems = Vec::new();
    for arg in eso_recovery::cli::Cli::command().get_arguments() {
        let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) else {
            continue;
        };
        let flag = format!("--{long}");
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = default.join(",");
        // The README's configuration table: the flag, its twin, and its default first.
        let Some(row) = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{flag}` |")))
        else {
            problems.push(format!(
                "{flag}: no row in the README's configuration table"
            ));
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let twin = env.as_deref().map_or("—".to_string(), |e| format!("`{e}`"));
        if cells.get(1) != Some(&twin.as_str()) {
            problems.push(format!(
                "{flag}: the README says {:?}, not {twin}",
                cells.get(1)
            ));
        }
        let said = cells.get(2).copied().unwrap_or_default();
        if !default.is_empty() && !said.starts_with(&format!("`{default}`")) {
            problems.push(format!(
                "{flag}: the README's default {said:?}, not `{default}`"
            ));
        }
        // The chart: every twin the CronJob can set, from the key whose comment names the flag,
        // with the binary's default, null (the binary's default), or the CronJob's own value
        // the README gives.
        let Some(env) = env.filter(|_| long != "context") else {
            continue;
        };
        if !cronjob.contains(&format!("\"{env}\"")) && !cronjob.contains(&format!("name: {env}")) {
            problems.push(format!("{flag}: the chart's CronJob never sets {env}"));
        }
        if ["record", "vault-cacert"].contains(&long) {
            continue; // set from the release's name, and from vaultCA
        }
        let cron_value = said
            .split_once("(the CronJob: `")
            .and_then(|(_, v)| v.split_once('`'))
            .map(|(v, _)| v.to_string());
        match chart_value(&values, &flag) {
            None => problems.push(format!("{flag}: no key in values.yaml names it")),
            Some(v) if v == "null" || v == default || Some(&v) == cron_value.as_ref() => {}
            Some(v) => problems.push(format!(
                "{flag}: values.yaml has {v:?}; the binary's default is {default:?} and the README gives the CronJob {cron_value:?}"
            )),
        }
    }
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn a_second_release_in_the_namespace_keeps_its_own_record() {
    let cp = ControlPlane::shared();
    let objects = render_as(cp, "team-b", &[]);
    let name = "team-b-eso-recovery";
    assert!(
        objects.contains_key(&format!("Lease/security/{name}")),
        "{:?}",
        objects.keys()
    );
    let rules = &objects[&format!("Role/security/{name}")]["rules"];
    let lease_rule = rules
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["resources"] == json!(["leases"]))
        .unwrap_or_else(|| panic!("no rule on leases: {rules}"));
    assert_eq!(lease_rule["resourceNames"], json!([name]));
    assert_eq!(
        objects[&format!("CronJob/security/{name}")]
            .pointer("/spec/jobTemplate/spec/template/spec/containers/0/env/ESO_RECOVERY_RECORD")
            .unwrap(),
        name
    );
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("config:\n  cooldwn: 5m\n", "cooldwn"),
        ("config:\n  stores: k8s-secrets\n", "stores"),
        ("suspend: \"yes\"\n", "suspend"),
        ("config:\n  cooldown: soon\n", "cooldown"),
        ("config:\n  awaitVault: a-while\n", "awaitVault"),
        // The binary refuses a zero limit: every run would exit 2.
        ("config:\n  timeout: 0s\n", "timeout"),
        ("config:\n  vaultTimeout: 0ms\n", "vaultTimeout"),
        ("config:\n  strategy: annotate\n", "strategy"),
        ("image:\n  pullPolicy: Sometimes\n", "pullPolicy"),
        ("replicas: 2\n", "replicas"),
        ("vaultCA:\n  secret: {name: vault-tls}\n", "key"),
    ];
    for (i, (values, key)) in cases.iter().enumerate() {
        let out = template_with(&dir.path().join(format!("bad-{i}.yaml")), values);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{values:?} was accepted");
        assert!(
            stderr.contains("values don't meet the specifications of the schema")
                && stderr.contains(key),
            "{values:?}: {stderr}"
        );
    }
}

#[test]
fn every_duration_the_schema_accepts_the_binary_accepts_and_the_reverse() {
    let corpus = [
        "45s",
        "1m15s",
        "1m 15s",
        "1.5m",
        "75 sec",
        "2 minutes",
        "1h",
        "1hr 30mins",
        "500ms",
        "250 millis",
        "90",
        " 30s ",
        "1d",
        "2 weeks",
        "1M",
        "1y",
        "5 m",
        "0s",
        "0.5s",
        "10us",
        "7µs",
        "3ns", // accepted
        "",
        " ",
        "m",
        "1m30",
        "1.5",
        "s5",
        "-5s",
        "1,5m",
        "1.m",
        "1e3s",
        "5 mn",
        "5hs",
        "1 sec.",
        "75S",
        "1m15s!", // refused
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut disagree = Vec::new();
    for (i, d) in corpus.iter().enumerate() {
        let binary = eso_recovery::cli::parse_duration(d).is_ok();
        let values = format!("config:\n  cooldown: {}\n", json!(d));
        let chart = template_with(&dir.path().join(format!("d-{i}.yaml")), &values)
            .status
            .success();
        if chart != binary {
            disagree.push(format!("{d:?}: the chart {chart}, the binary {binary}"));
        }
    }
    assert_eq!(disagree, Vec::<String>::new());
    // The chart reads them as the binary does: an await of 70 s is the least it allows.
    for (await_vault, allowed) in [
        ("70 sec", true),
        ("1 minute 10 seconds", true),
        ("1.25 min", true),
        ("69.5s", false),
        ("1 min 9 s 999 ms", false),
    ] {
        let out = helm(&[
            "template",
            "eso-recovery",
            &chart(),
            &format!("--set-string=config.awaitVault={await_vault}"),
        ]);
        assert_eq!(
            out.status.success(),
            allowed,
            "{await_vault}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn values_that_would_leave_vault_unwatched_or_pile_up_runs_are_refused_saying_what_to_set() {
    let cases: [(&[&str], &str); 7] = [
        // The next run starts after this one stopped awaiting: a blind stretch each minute.
        (
            &["--set=config.awaitVault=60s"],
            "config.awaitVault 60s leaves Vault unwatched near the end of each period: a run must await at least the schedule's period (60s) plus 10s for the next run's pod to start; set it to 70s or more",
        ),
        (
            &["--set=config.awaitVault=null"],
            "config.awaitVault, activeDeadlineSeconds and startingDeadlineSeconds must all be set",
        ),
        (
            &["--set=schedule=*/2 * * * *"],
            "a run must await at least the schedule's period (120s) plus 10s for the next run's pod to start; set it to 130s or more",
        ),
        // The deadline would cut the await short.
        (
            &["--set=config.awaitVault=1m25s"],
            "activeDeadlineSeconds 100 would stop a run before its await (config.awaitVault 1m25s) and the rest of it (config.timeout 10s) are over, with 10s for its start; set it to 105 or more",
        ),
        // A third run could start while two still run.
        (
            &["--set=startingDeadlineSeconds=30"],
            "startingDeadlineSeconds 30 + activeDeadlineSeconds 100 must stay within two periods of the schedule (120s) less 5s, so a run has always ended before the one two ticks later starts (never three at once); set startingDeadlineSeconds to 15 or less",
        ),
        (&["--set=activeDeadlineSeconds=null"], "must all be set"),
        // A schedule whose period the chart cannot derive.
        (
            &["--set=schedule=0 * * * *"],
            "schedule \"0 * * * *\": use \"* * * * *\" (the default) or \"*/N * * * *\"",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["template", "eso-recovery"];
        let chart = chart();
        all.push(&chart);
        all.extend_from_slice(args);
        let out = helm(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn helm_install_under_pod_security_restricted_runs_with_least_privilege() {
    // Its own control plane: the shared one holds manifests/' objects under the same names.
    let cp = ControlPlane::start(false);
    let seed = Seed::design();
    seed.apply(&cp);
    let out = install(
        &cp.admin_kubeconfig,
        "eso-recovery",
        &chart(),
        "security",
        &["--wait=false".into()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm install: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "helm install warned (Pod Security or otherwise): {stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("create job --from=cronjob/eso-recovery"),
        "NOTES.txt does not say how to run it once"
    );
    let sa = cp.kubeconfig_for("security", "eso-recovery");
    cp.assert_least_privilege(&sa);
    let bao = OpenBao::dev();
    let vault = format!("--vault-addr={}", bao.addr);
    expect(&eso(Some(&sa), &[&vault], &[]), 0, "store_healthy");
    seed.set_store(&cp, false);
    expect(
        &eso(Some(&sa), &[&vault, "--dry-run"], &[]),
        0,
        "would_restart",
    );
    expect(&eso(Some(&sa), &[&vault], &[]), 0, "restarted");
}
