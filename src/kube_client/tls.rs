//! The TLS settings for the API server, read from kube's config as client-go reads them: the
//! cluster's CA (else the public roots of [`crate::https::system_roots`]), the user's client
//! certificate (kubeconfig data or files, or an exec plugin's), `insecure-skip-tls-verify` and
//! `tls-server-name`.

use std::process::Command;

use anyhow::{Context, Result, bail};
use base64::Engine;
use kube::config::{AuthInfo, Config, ExecConfig};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use secrecy::ExposeSecret;

use crate::https;

/// The rustls configuration and the name to verify instead of the URL's host. `exec_cert` says
/// the kubeconfig's exec plugin answers with a client certificate rather than a token (kube's
/// auth layer is empty for it), so the plugin is run here for the certificate.
pub fn settings(
    config: &Config,
    exec_cert: bool,
) -> Result<(ClientConfig, Option<ServerName<'static>>)> {
    let builder = https::config(if config.accept_invalid_certs {
        https::Trust::AnyCertificate
    } else {
        https::Trust::Roots(roots(config)?)
    })?;
    let identity = match (&config.auth_info.exec, exec_cert) {
        (Some(exec), true) => Some(exec_identity(exec)?),
        _ => file_identity(&config.auth_info)?,
    };
    let tls = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .context("the kubeconfig's client certificate and key do not make a pair")?,
        None => builder.with_no_client_auth(),
    };
    let server_name = config
        .tls_server_name
        .as_ref()
        .map(|name| {
            ServerName::try_from(name.clone()).with_context(|| {
                format!("the kubeconfig's tls-server-name {name:?} is not a DNS name or IP address")
            })
        })
        .transpose()?;
    Ok((tls, server_name))
}

fn roots(config: &Config) -> Result<RootCertStore> {
    let Some(ders) = &config.root_cert else {
        return https::system_roots(
            "the Kubernetes API server",
            "the cluster's certificate-authority in the kubeconfig",
        );
    };
    let mut store = RootCertStore::empty();
    for der in ders {
        store
            .add(CertificateDer::from(der.clone()))
            .context("the cluster's certificate-authority holds an invalid CA certificate")?;
    }
    Ok(store)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The user's `client-certificate(-data)` and `client-key(-data)`, if it has them (kube has
/// already made the file paths absolute).
fn file_identity(user: &AuthInfo) -> Result<Option<Identity>> {
    let cert = pem_of(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
        "client-certificate",
    )?;
    let key_data = user.client_key_data.as_ref().map(|k| k.expose_secret());
    let key = pem_of(key_data, user.client_key.as_deref(), "client-key")?;
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => {
            bail!("the kubeconfig's user has a client-certificate but no client-key")
        }
        (None, Some(_)) => {
            bail!("the kubeconfig's user has a client-key but no client-certificate")
        }
        (Some(cert), Some(key)) => parse_identity(&cert, &key, "the kubeconfig's user").map(Some),
    }
}

/// The PEM in `<field>-data` (base64) or else in the file `<field>` names.
fn pem_of(data: Option<&str>, file: Option<&str>, field: &str) -> Result<Option<Vec<u8>>> {
    if let Some(data) = data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .with_context(|| format!("the kubeconfig's {field}-data is not base64"))?;
        return Ok(Some(pem));
    }
    file.map(|file| {
        std::fs::read(file).with_context(|| format!("reading the kubeconfig's {field} {file}"))
    })
    .transpose()
}

fn parse_identity(cert: &[u8], key: &[u8], whose: &str) -> Result<Identity> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{whose}'s client certificate is not PEM"))?;
    if chain.is_empty() {
        bail!("{whose}'s client certificate holds no PEM certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(key).with_context(|| {
        format!("{whose}'s client key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)")
    })?;
    Ok((chain, key))
}

/// Runs the exec plugin (the client-go credential protocol, non-interactive) for the client
/// certificate it gives.
fn exec_identity(exec: &ExecConfig) -> Result<Identity> {
    let command = exec
        .command
        .as_deref()
        .context("the kubeconfig's exec plugin names no command")?;
    let mut cmd = Command::new(command);
    cmd.args(exec.args.iter().flatten());
    for name in exec.drop_env.iter().flatten() {
        cmd.env_remove(name);
    }
    for var in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (var.get("name"), var.get("value")) {
            cmd.env(name, value);
        }
    }
    let info = serde_json::json!({
        "apiVersion": exec.api_version.as_deref().unwrap_or("client.authentication.k8s.io/v1"),
        "kind": "ExecCredential",
        "spec": {"interactive": false},
    });
    cmd.env("KUBERNETES_EXEC_INFO", info.to_string());
    let out = cmd
        .output()
        .with_context(|| format!("running the kubeconfig's exec plugin {command}"))?;
    if !out.status.success() {
        bail!(
            "the kubeconfig's exec plugin {command} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let credential: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the kubeconfig's exec plugin {command} printed no JSON"))?;
    let field = |name: &str| {
        credential["status"][name].as_str().with_context(|| {
            format!("the kubeconfig's exec plugin {command} gave neither a token nor status.{name}")
        })
    };
    let whose = format!("the exec plugin {command}");
    parse_identity(
        field("clientCertificateData")?.as_bytes(),
        field("clientKeyData")?.as_bytes(),
        &whose,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["me".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn user(cert: Option<&str>, key: Option<&str>) -> AuthInfo {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        AuthInfo {
            client_certificate_data: cert.map(b64),
            client_key_data: key.map(|k| b64(k).into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_kubeconfig_client_certificate_is_presented() {
        let (cert, key) = pair();
        let (chain, _) = file_identity(&user(Some(&cert), Some(&key)))
            .unwrap()
            .unwrap();
        assert_eq!(chain.len(), 1);
        assert!(file_identity(&user(None, None)).unwrap().is_none());
    }

    #[test]
    fn half_an_identity_or_a_bad_pem_is_named() {
        let (cert, key) = pair();
        let err = format!("{:#}", file_identity(&user(Some(&cert), None)).unwrap_err());
        assert!(
            err.contains("client-certificate but no client-key"),
            "{err}"
        );
        let err = format!("{:#}", file_identity(&user(None, Some(&key))).unwrap_err());
        assert!(
            err.contains("client-key but no client-certificate"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            file_identity(&user(Some(&cert), Some("junk"))).unwrap_err()
        );
        assert!(err.contains("client key is not a PEM private key"), "{err}");
        let file_user = AuthInfo {
            client_certificate: Some("/nonexistent/me.crt".into()),
            ..Default::default()
        };
        let err = format!("{:#}", file_identity(&file_user).unwrap_err());
        assert!(
            err.contains("reading the kubeconfig's client-certificate /nonexistent/me.crt"),
            "{err}"
        );
    }

    #[test]
    fn an_exec_plugin_certificate_is_read_from_its_credential() {
        let (cert, key) = pair();
        let credential = serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"clientCertificateData": cert, "clientKeyData": key},
        });
        let exec = ExecConfig {
            command: Some("sh".into()),
            args: Some(vec![
                "-c".into(),
                format!(
                    "test -n \"$KUBERNETES_EXEC_INFO\" && printf %s '{}'",
                    credential
                ),
            ]),
            ..serde_json::from_value(serde_json::json!({})).unwrap()
        };
        let (chain, _) = exec_identity(&exec).unwrap();
        assert_eq!(chain.len(), 1);
        let failing = ExecConfig {
            args: Some(vec!["-c".into(), "echo expired >&2; exit 3".into()]),
            ..exec
        };
        let err = format!("{:#}", exec_identity(&failing).unwrap_err());
        assert!(
            err.contains("exec plugin sh failed") && err.contains("expired"),
            "{err}"
        );
    }
}
