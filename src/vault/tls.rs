//! The TLS settings for talking to Vault, following the Vault client's own conventions
//! (`VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_SKIP_VERIFY`, `VAULT_TLS_SERVER_NAME`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};

use crate::https::{self, Trust};

/// How Vault's server certificate is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultTls {
    /// A PEM file of CA certificates to trust instead of the public ones.
    pub ca_cert: Option<PathBuf>,
    /// A folder of PEM files of CA certificates to trust instead of the public ones.
    pub ca_path: Option<PathBuf>,
    /// Accept any certificate: for a lab, never for production.
    pub skip_verify: bool,
    /// The name to verify the certificate against, when it differs from the URL's host.
    pub server_name: Option<String>,
}

impl VaultTls {
    /// Builds the rustls configuration. The system trust store is read only when no CA is given,
    /// since reading it costs a few milliseconds on every run.
    pub fn client_config(&self) -> Result<ClientConfig> {
        let trust = if self.skip_verify {
            Trust::AnyCertificate
        } else {
            Trust::Roots(self.roots()?)
        };
        Ok(https::config(trust)
            .context("setting up TLS for Vault")?
            .with_no_client_auth())
    }

    /// `VAULT_TLS_SERVER_NAME`: the name sent and verified instead of the URL's host.
    pub fn server_name(&self) -> Result<Option<ServerName<'static>>> {
        self.server_name
            .as_ref()
            .map(|name| {
                ServerName::try_from(name.clone()).with_context(|| {
                    format!(
                        "--vault-tls-server-name {name:?} is not a valid DNS name or IP address"
                    )
                })
            })
            .transpose()
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut store = RootCertStore::empty();
        if self.ca_cert.is_none() && self.ca_path.is_none() {
            return crate::https::system_roots("Vault", "--vault-cacert");
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
    fn a_server_name_that_is_no_name_is_named() {
        let tls = VaultTls {
            server_name: Some("not a name".into()),
            ..Default::default()
        };
        let err = format!("{:#}", tls.server_name().unwrap_err());
        assert!(
            err.contains("--vault-tls-server-name \"not a name\""),
            "{err}"
        );
        let fine = VaultTls {
            server_name: Some("vault.security.svc".into()),
            ..Default::default()
        };
        assert!(fine.server_name().unwrap().is_some());
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
