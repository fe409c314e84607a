//! What the cloud and the agent binaries do alike around their work:
//! structured logs and a graceful stop.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Structured logs through `tracing`, on stderr, coloured only on a terminal.
/// `RUST_LOG` wins over the configured filter when it is set.
pub fn init_logs(filter: &str) {
    init_logs_quieting(filter, &[]);
}

/// [`init_logs`], with each target of `quiet` turned off unless the filter
/// in force (`RUST_LOG` or `filter`) names that target itself: for a
/// dependency whose routine lines would read as errors to an operator.
pub fn init_logs_quieting(filter: &str, quiet: &[&str]) {
    let configured = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| filter.to_owned());
    let effective = quieted(&configured, quiet);
    // Lenient, as before: directives that do not parse are skipped.
    let filter = EnvFilter::new(effective);
    // A second init (tests start many servers, a load tool many agents, in one
    // process) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `filter` plus `,{target}=off` for each quiet target it does not mention.
fn quieted(filter: &str, quiet: &[&str]) -> String {
    let mut effective = filter.to_owned();
    for target in quiet {
        if !filter.contains(target) {
            if !effective.trim().is_empty() {
                effective.push(',');
            }
            effective.push_str(target);
            effective.push_str("=off");
        }
    }
    effective
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_targets_are_off_unless_the_filter_names_them() {
        assert_eq!(quieted("info", &["rumqttd"]), "info,rumqttd=off");
        assert_eq!(quieted("", &["rumqttd"]), "rumqttd=off");
        assert_eq!(
            quieted("info,rumqttd=debug", &["rumqttd"]),
            "info,rumqttd=debug"
        );
        assert_eq!(quieted("warn", &[]), "warn");
    }
}
