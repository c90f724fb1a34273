//! Log setup: text for a person at a terminal, JSON (one object a line) for a log pipeline.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::filter::Targets;

use crate::cli::LogFormat;

/// The format when none is asked for: text on a terminal, JSON otherwise (a pod's log).
pub fn default_format() -> LogFormat {
    match std::env::var("ESO_RECOVERY_LOG_FORMAT").ok().as_deref() {
        Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        _ if std::io::stderr().is_terminal() => LogFormat::Text,
        _ => LogFormat::Json,
    }
}

/// The filter for `--log-level`: a bare level applies to this program (libraries stay at
/// `warn`); anything else is taken as a list of `target=level` directives.
pub fn filter(level: &str) -> Result<Targets> {
    let level = level.trim();
    let directive = match level.to_ascii_lowercase().as_str() {
        l @ ("error" | "warn" | "info" | "debug" | "trace" | "off") => {
            format!("warn,eso_recovery={l}")
        }
        _ => level.to_string(),
    };
    directive
        .parse::<Targets>()
        .with_context(|| format!("--log-level {level:?} is neither a level nor a tracing filter"))
}

/// Installs the subscriber; logs go to stderr, the summary to stdout.
pub fn init(format: LogFormat, filter: Targets) {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            )
            .init(),
        LogFormat::Text => registry
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .init(),
    }
}

/// Prints an error as a log line of the chosen format, for errors before logging is set up.
pub fn print_error(format: LogFormat, message: &str) {
    match format {
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": jiff::Timestamp::now().to_string(),
                "level": "ERROR",
                "message": message,
            })
        ),
        LogFormat::Text => eprintln!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives() {
        assert_eq!(
            filter("debug").unwrap().to_string(),
            "eso_recovery=debug,warn"
        );
        assert_eq!(
            filter("INFO").unwrap().to_string(),
            "eso_recovery=info,warn"
        );
        assert!(filter("info,kube=debug").is_ok());
        let err = filter("loud=[[").unwrap_err().to_string();
        assert!(err.contains("--log-level \"loud=[[\""), "{err}");
    }
}
