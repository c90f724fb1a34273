//! The HTTP requests to Vault (health and leader), each bounded in time and size.

use std::time::Duration;

use anyhow::{Context, Result};
use url::Url;

use super::{ActiveSince, VaultStatus, VaultTls, classify, parse_leader};

/// The most of an answer's body that is read; a real one is under 1 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// A ready-to-send health probe for one Vault address.
#[derive(Debug, Clone)]
pub struct VaultProbe {
    client: reqwest::Client,
    url: Url,
    leader_url: Url,
}

impl VaultProbe {
    /// Prepares the client. `timeout` bounds the whole request, body included: a SIGSTOPped Vault
    /// still accepts TCP connections, so a connect timeout alone would wait forever.
    pub fn new(addr: &Url, tls: &VaultTls, timeout: Duration, standby_ok: bool) -> Result<Self> {
        let mut url = sys_url(addr, "health")?;
        let leader_url = sys_url(addr, "leader")?;
        if standby_ok {
            url.query_pairs_mut()
                .append_pair("standbyok", "true")
                .append_pair("perfstandbyok", "true");
        }
        let tls_config = if url.scheme() == "https" {
            tls.client_config()?
        } else {
            // Plain HTTP: an empty trust store, so the system's is not read for nothing.
            rustls::ClientConfig::builder_with_provider(super::provider())
                .with_safe_default_protocol_versions()
                .context("setting up the HTTP client for Vault")?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config)
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .user_agent(crate::kube_client::USER_AGENT)
            .build()
            .context("building the HTTP client for Vault")?;
        Ok(Self {
            client,
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
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let code = response.status().as_u16();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(format!(
                            "HTTP {code} with a body over {} KiB; not Vault's answer",
                            MAX_BODY / 1024
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok((code, body)),
                Err(e) => {
                    return Err(format!(
                        "HTTP {code}, then reading the body failed: {}",
                        describe(&e)
                    ));
                }
            }
        }
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

/// A one-line cause for a transport error, with the root cause a person can act on
/// ("connection refused", "invalid peer certificate: UnknownIssuer", "dns error …").
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(cause) => format!("{kind}: {}", crate::errors::chain(cause)),
        None => kind.to_string(),
    }
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
