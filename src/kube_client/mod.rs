//! The Kubernetes client: in-cluster config in a pod, else the kubeconfig; always with timeouts
//! (kube-rs has no default read timeout, and a hung API server must not hang the CronJob).
//!
//! The HTTP stack is kube's own (base URI, 429/503 retries, auth, headers) on the connector of
//! [`crate::https`], with the TLS settings [`tls`] reads from the config.

mod tls;

use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::{client::legacy::Client as HyperClient, rt::TokioExecutor};
use kube::{
    Client,
    client::{ConfigExt, retry::RetryPolicy},
    config::{Config, KubeConfigOptions},
};
use tower::{BoxError, ServiceBuilder, retry::RetryLayer};

/// The field manager on every write, so `managedFields` say what eso-recovery changed.
pub const FIELD_MANAGER: &str = "eso-recovery";

/// Every write's parameters: the field manager, and with `dry_run` `dryRun=All` (admission and
/// RBAC are exercised, nothing is stored).
pub fn write_params(dry_run: bool) -> kube::api::PatchParams {
    let params = kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    if dry_run { params.dry_run() } else { params }
}

/// Builds the client. `--context` (or `kubeconfig_only`, the kubectl plugin) always means the
/// kubeconfig; otherwise a pod's service account wins, as for every in-cluster controller.
pub async fn connect(
    context: Option<&str>,
    kubeconfig_only: bool,
    timeout: Duration,
) -> Result<Client> {
    let in_pod = !kubeconfig_only && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let config = match context {
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
    client(&config, timeout)
}

/// The User-Agent on every API request, so audit logs name this program.
pub const USER_AGENT: &str = concat!("eso-recovery/", env!("CARGO_PKG_VERSION"));

/// The client for a loaded config.
pub fn client(config: &Config, timeout: Duration) -> Result<Client> {
    let mut config = config.clone();
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let auth = config
        .auth_layer()
        .context("setting up Kubernetes authentication")?;
    // An exec plugin with no auth layer gave a client certificate instead of a token.
    let exec_cert = config.auth_info.exec.is_some() && auth.is_none();
    let (tls_config, server_name) =
        tls::settings(&config, exec_cert).context("setting up TLS for the Kubernetes API")?;
    let connector = crate::https::connector(tls_config, server_name, timeout);
    let hyper = HyperClient::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .layer(RetryLayer::new(RetryPolicy::server_retry()))
        .option_layer(auth)
        .layer(
            config
                .extra_headers_layer()
                .context("setting up the Kubernetes request headers")?,
        )
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace.clone()))
}
