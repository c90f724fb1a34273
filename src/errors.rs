//! Errors turned into one line a person can act on.

use anyhow::anyhow;

/// An error and all its causes on one line, without the repeats some libraries produce
/// ("error sending request: client error (Connect): tcp connect error: Connection refused").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// Wraps a kube error with what was being done and, for the usual codes, what to check.
pub fn describe_api_error(e: kube::Error, what: &str) -> anyhow::Error {
    match &e {
        kube::Error::Api(status) => {
            let hint = match status.code {
                401 => "; the credentials are invalid or expired",
                403 => "; the identity lacks RBAC for this (see manifests/base/rbac.yaml)",
                404 => "; check the name and namespace",
                429 => "; the API server kept throttling until retries ran out",
                _ => "",
            };
            let reason = if status.reason.is_empty() {
                ""
            } else {
                &status.reason
            };
            anyhow!(
                "{what}: HTTP {} {reason}: {}{hint}",
                status.code,
                status.message.trim()
            )
        }
        other => {
            let text = chain(other);
            if text.contains("deadline has elapsed") {
                anyhow!("{what}: timed out waiting for the API server ({text})")
            } else {
                anyhow!("{what}: {text}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_name_the_action_the_code_and_a_hint() {
        let status = kube::core::Status {
            code: 403,
            reason: "Forbidden".into(),
            message: "clustersecretstores.external-secrets.io \"k8s-secrets\" is forbidden".into(),
            ..Default::default()
        };
        let e = describe_api_error(
            kube::Error::Api(Box::new(status)),
            "reading ClusterSecretStore k8s-secrets",
        );
        let text = e.to_string();
        assert!(
            text.starts_with("reading ClusterSecretStore k8s-secrets: HTTP 403 Forbidden: "),
            "{text}"
        );
        assert!(text.ends_with("(see manifests/base/rbac.yaml)"), "{text}");
    }

    #[test]
    fn chain_drops_repeated_causes() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = anyhow::Error::new(inner).context("tcp connect error: Connection refused");
        let dyn_err: &dyn std::error::Error = outer.as_ref();
        assert_eq!(chain(dyn_err), "tcp connect error: Connection refused");
    }
}
