//! The HTTP requests to Vault (health and leader), each bounded in time and size.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use url::Url;

use super::{ActiveSince, VaultStatus, VaultTls, classify, parse_leader};
use crate::https;

/// The most of an answer's body that is read; a real one is under 1 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// A ready-to-send health probe for one Vault address.
#[derive(Debug, Clone)]
pub struct VaultProbe {
    client: Client<https::Connector, Empty<Bytes>>,
    timeout: Duration,
    url: Url,
    leader_url: Url,
}

impl VaultProbe {
    /// Prepares the client. `timeout` bounds each whole request, body included: a SIGSTOPped
    /// Vault still accepts TCP connections, so a connect timeout alone would wait forever.
    pub fn new(addr: &Url, tls: &VaultTls, timeout: Duration, standby_ok: bool) -> Result<Self> {
        let mut url = sys_url(addr, "health")?;
        let leader_url = sys_url(addr, "leader")?;
        if standby_ok {
            url.query_pairs_mut()
                .append_pair("standbyok", "true")
                .append_pair("perfstandbyok", "true");
        }
        let (tls_config, server_name) = if url.scheme() == "https" {
            (tls.client_config()?, tls.server_name()?)
        } else {
            // Plain HTTP: an empty trust store, so the system's is not read for nothing.
            let config = https::config(https::Trust::Roots(rustls::RootCertStore::empty()))
                .context("setting up the HTTP client for Vault")?
                .with_no_client_auth();
            (config, None)
        };
        let client = Client::builder(TokioExecutor::new()).build(https::connector(
            tls_config,
            server_name,
            timeout,
        ));
        Ok(Self {
            client,
            timeout,
            url,
            leader_url,
        })
    }

    /// The URL probed, for the report.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Asks Vault once. Never fails: every problem is a not-ready [`VaultStatus`].
    ///
    /// No `X-Vault-Namespace` header is ever sent: sys/health is root-only and answers 400/404
    /// inside a namespace, so a `VAULT_NAMESPACE` in the environment must not leak into it.
    pub async fn probe(&self) -> VaultStatus {
        match self.get(&self.url).await {
            Ok((code, body)) => classify(code, &body),
            Err(why) => VaultStatus::Unreachable(why),
        }
    }

    /// Asks when the node became active (`sys/leader`, unauthenticated). Never fails: every
    /// problem is an unknown clock, which only turns off the ExternalSecret rule.
    pub async fn active_since(&self) -> ActiveSince {
        match self.get(&self.leader_url).await {
            Ok((code, body)) => parse_leader(code, &body),
            Err(why) => ActiveSince::Unknown(format!("sys/leader: {why}")),
        }
    }

    /// One GET: the status code and at most [`MAX_BODY`] bytes of body, or why not.
    async fn get(&self, url: &Url) -> Result<(u16, Vec<u8>), String> {
        let request = http::Request::get(url.as_str())
            .header(http::header::USER_AGENT, crate::kube_client::USER_AGENT)
            .body(Empty::new())
            .map_err(|e| format!("building the request: {e}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let kind = if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                match std::error::Error::source(&e) {
                    Some(cause) => format!("{kind}: {}", crate::errors::chain(cause)),
                    None => format!("{kind}: {e}"),
                }
            })?;
            let code = response.status().as_u16();
            match Limited::new(response.into_body(), MAX_BODY).collect().await {
                Ok(body) => Ok((code, body.to_bytes().to_vec())),
                Err(e) if e.is::<LengthLimitError>() => Err(format!(
                    "HTTP {code} with a body over {} KiB; not Vault's answer",
                    MAX_BODY / 1024
                )),
                Err(e) => Err(format!(
                    "HTTP {code}, then reading the body failed: {}",
                    crate::errors::chain(e.as_ref())
                )),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {:?}", self.timeout)))
    }
}

/// `ADDR/v1/sys/<endpoint>`, keeping any path prefix of VAULT_ADDR (a Vault behind a
/// path-routing proxy).
fn sys_url(addr: &Url, endpoint: &str) -> Result<Url> {
    let mut url = addr.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("--vault-addr {addr} cannot be a base URL"))?
        .pop_if_empty()
        .extend(["v1", "sys", endpoint]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_url_keeps_a_path_prefix_and_adds_standby_parameters() {
        let tls = VaultTls::default();
        let t = Duration::from_secs(1);
        let plain =
            VaultProbe::new(&"http://127.0.0.1:8200".parse().unwrap(), &tls, t, false).unwrap();
        assert_eq!(plain.url().as_str(), "http://127.0.0.1:8200/v1/sys/health");
        let prefixed =
            VaultProbe::new(&"http://proxy:8080/vault/".parse().unwrap(), &tls, t, true).unwrap();
        assert_eq!(
            prefixed.url().as_str(),
            "http://proxy:8080/vault/v1/sys/health?standbyok=true&perfstandbyok=true"
        );
    }
}
