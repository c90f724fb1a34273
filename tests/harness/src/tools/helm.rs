//! Helm, built from its Go module by `tests/helm/build.sh`, run with a home of its own.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use crate::tools::repo::{repo, script};

/// The helm binary, built once.
pub fn helm_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| script("tests/helm/build.sh")).clone()
}

/// The chart's folder.
pub fn chart() -> String {
    repo().join("charts/eso-recovery").display().to_string()
}

/// helm with `args`, in an empty environment and a fresh home (no user's repositories or cache).
pub fn helm(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(helm_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .expect("running helm")
}

/// `helm install RELEASE CHART -n NAMESPACE` against the cluster of `kubeconfig`, with `extra`
/// `--set KEY=VALUE` for each of `values`, as arguments for [`install`].
pub fn set_args(values: impl IntoIterator<Item = String>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

/// arguments (`--set k=v`, `--wait=false`).
pub fn install(
    kubeconfig: &Path,
    release: &str,
    chart: &str,
    namespace: &str,
    extra: &[String],
) -> Output {
    let kubeconfig = kubeconfig.display().to_string();
    let mut args = vec![
        "install",
        release,
        chart,
        "-n",
        namespace,
        "--kubeconfig",
        &kubeconfig,
    ];
    args.extend(extra.iter().map(String::as_str));
    helm(&args)
}
