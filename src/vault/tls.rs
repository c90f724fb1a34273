//! The TLS settings for talking to Vault, following the Vault client's own conventions
//! (`VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_SKIP_VERIFY`, `VAULT_TLS_SERVER_NAME`).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result, bail};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

/// How Vault's server certificate is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultTls {
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_cert: Option<PathBuf>,
    /// A folder of PEM files of CA certificates to trust instead of the system's.
    pub ca_path: Option<PathBuf>,
    /// Accept any certificate: for a lab, never for production.
    pub skip_verify: bool,
    /// The name to verify the certificate against, when it differs from the URL's host.
    pub server_name: Option<String>,
}

/// The process-wide crypto provider: ring, the one kube uses too.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl VaultTls {
    /// Builds the rustls configuration. The system trust store is read only when no CA is given,
    /// since reading it costs a few milliseconds on every run.
    pub fn client_config(&self) -> Result<ClientConfig> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("setting up TLS for Vault")?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.skip_verify {
            Arc::new(AcceptAny(provider))
        } else {
            let roots = Arc::new(self.roots()?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .context("setting up Vault certificate verification")?;
            match &self.server_name {
                Some(name) => Arc::new(FixedName {
                    name: ServerName::try_from(name.clone()).with_context(|| {
                        format!(
                            "--vault-tls-server-name {name:?} is not a valid DNS name or IP address"
                        )
                    })?,
                    inner: webpki,
                }),
                None => webpki,
            }
        };
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut store = RootCertStore::empty();
        if self.ca_cert.is_none() && self.ca_path.is_none() {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                bail!(
                    "no system CA certificates found to verify Vault ({} errors); set --vault-cacert",
                    found.errors.len()
                );
            }
            return Ok(store);
        }
        if let Some(file) = &self.ca_cert {
            add_pem_file(&mut store, file, "--vault-cacert")?;
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir)
                .with_context(|| format!("reading --vault-capath folder {}", dir.display()))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("--vault-capath folder {} holds no files", dir.display());
            }
            for file in files {
                add_pem_file(&mut store, &file, "--vault-capath")?;
            }
        }
        Ok(store)
    }
}

fn add_pem_file(store: &mut RootCertStore, file: &Path, flag: &str) -> Result<()> {
    let certs = CertificateDer::pem_file_iter(file)
        .with_context(|| format!("reading {flag} file {}", file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {flag} file {} as PEM", file.display()))?;
    if certs.is_empty() {
        bail!("{flag} file {} holds no PEM certificate", file.display());
    }
    for cert in certs {
        store.add(cert).with_context(|| {
            format!(
                "{flag} file {} holds an invalid CA certificate",
                file.display()
            )
        })?;
    }
    Ok(())
}

/// Verifies against a fixed name (`VAULT_TLS_SERVER_NAME`) instead of the URL's host.
#[derive(Debug)]
struct FixedName {
    name: ServerName<'static>,
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for FixedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `VAULT_SKIP_VERIFY`: accepts any certificate but still checks the handshake signatures.
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
    fn missing_ca_file_is_named() {
        let tls = VaultTls {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = format!("{:#}", tls.client_config().unwrap_err());
        assert!(
            err.contains("--vault-cacert file /nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let tls = VaultTls {
            ca_cert: Some(file.clone()),
            ..Default::default()
        };
        let err = format!("{:#}", tls.client_config().unwrap_err());
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
    }

    #[test]
    fn an_empty_capath_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tls = VaultTls {
            ca_path: Some(dir.path().into()),
            ..Default::default()
        };
        let err = format!("{:#}", tls.client_config().unwrap_err());
        assert!(err.contains("--vault-capath folder"), "{err}");
    }

    #[test]
    fn ca_file_and_capath_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["vault.test".into()]).unwrap();
        std::fs::write(dir.path().join("a.pem"), ca.cert.pem()).unwrap();
        let with_file = VaultTls {
            ca_cert: Some(dir.path().join("a.pem")),
            server_name: Some("vault.test".into()),
            ..Default::default()
        };
        assert!(with_file.client_config().is_ok());
        let with_path = VaultTls {
            ca_path: Some(dir.path().into()),
            ..Default::default()
        };
        assert!(with_path.client_config().is_ok());
    }
}
