//! The Kubernetes client: in-cluster config in a pod, else the kubeconfig; always with timeouts
//! (kube-rs has no default read timeout, and a hung API server must not hang the CronJob).

use std::time::Duration;

use anyhow::{Context, Result};
use kube::{
    Client,
    config::{Config, KubeConfigOptions},
};

/// The longest a TCP connect to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the client. `--context` always means the kubeconfig; otherwise a pod's service account
/// wins, as for every in-cluster controller.
pub async fn connect(context: Option<&str>, timeout: Duration) -> Result<Client> {
    let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let mut config = match context {
        None if in_pod => {
            Config::incluster().context("loading the in-cluster Kubernetes config")?
        }
        _ => {
            let options = KubeConfigOptions {
                context: context.map(str::to_string),
                ..Default::default()
            };
            Config::from_kubeconfig(&options).await.with_context(|| match context {
                Some(c) => format!("loading context {c:?} from the kubeconfig (KUBECONFIG or ~/.kube/config)"),
                None => "loading the kubeconfig (KUBECONFIG or ~/.kube/config); none found, and not running in a pod".into(),
            })?
        }
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT.min(timeout));
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // Count the read timeout from each request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    Client::try_from(config).context("building the Kubernetes client")
}
