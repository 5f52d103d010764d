//! Logging set-up: `tracing` to stderr, filtered by `EC2D_LOG` (or `RUST_LOG` when set).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (tests) is a harmless no-op.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a terminal: logs redirected to a file stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
