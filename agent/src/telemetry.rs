//! Structured logs through `tracing`, on stderr; coloured only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` wins over the configured filter when it is set.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    // A second init (a load tool runs many agents in one process) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
