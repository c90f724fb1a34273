//! The HTTPS parts the Kubernetes client and the Vault probe share: one crypto provider, the
//! public trust roots each platform offers without its SDK, and one connector (TCP_NODELAY and
//! timeouts).
//!
//! Both clients build their rustls configuration here rather than through kube's `rustls-tls`
//! or reqwest's rustls, which always bring `rustls-platform-verifier` and with it, on macOS,
//! Security.framework: the laptop builds are linked without Apple's SDK (issue 27).

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::WantsClientCert,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

/// The process's crypto provider: ring, the only one compiled in.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a client verifies a server's certificate against.
pub enum Trust {
    /// These CAs.
    Roots(RootCertStore),
    /// Any certificate (`VAULT_SKIP_VERIFY`, a kubeconfig's `insecure-skip-tls-verify`); the
    /// handshake's signatures are still checked.
    AnyCertificate,
}

/// A client configuration with the process's provider and rustls' safe TLS versions, verifying
/// by `trust`; what is left is the client's own certificate, or none.
pub fn config(trust: Trust) -> Result<ConfigBuilder<ClientConfig, WantsClientCert>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?;
    Ok(match trust {
        Trust::Roots(roots) => builder.with_root_certificates(roots),
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
    })
}

/// The public CAs, for a server whose CA was not given: the system's store on Linux (its CA
/// files) and on Windows (its certificate store). `what` names the server in the error.
#[cfg(not(target_os = "macos"))]
pub fn system_roots(what: &str, flag: &str) -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        anyhow::bail!(
            "no system CA certificates found to verify {what} ({} errors); set {flag}",
            found.errors.len()
        );
    }
    Ok(store)
}

/// The public CAs, for a server whose CA was not given: on macOS the Mozilla bundle compiled in
/// (the keychain is reached only through Security.framework). A private CA is never in it.
#[cfg(target_os = "macos")]
pub fn system_roots(_what: &str, _flag: &str) -> Result<RootCertStore> {
    Ok(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

/// The connector both clients use: plain HTTP or HTTPS with `tls`, HTTP/1.1.
pub type Connector = TimeoutConnector<HttpsConnector<HttpConnector>>;

/// The longest a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connector with `TCP_NODELAY` (without it a small request whose headers and body leave in
/// two segments waits for the server's delayed ACK, about 40 ms) and `timeout` on connect, each
/// read and each write; `server_name` replaces the URL's host in the TLS handshake.
pub fn connector(
    tls: ClientConfig,
    server_name: Option<ServerName<'static>>,
    timeout: Duration,
) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT.min(timeout)));
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match server_name {
        Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
        None => builder,
    };
    let mut connector = TimeoutConnector::new(builder.enable_http1().wrap_connector(http));
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT.min(timeout)));
    connector.set_read_timeout(Some(timeout));
    connector.set_write_timeout(Some(timeout));
    // Count the read timeout from each request, not from when a pooled connection went idle.
    connector.set_reset_reader_on_write(true);
    connector
}

/// [`Trust::AnyCertificate`]'s verifier.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_are_found_here() {
        let roots = system_roots("Vault", "--vault-cacert").unwrap();
        assert!(!roots.is_empty());
    }
}
