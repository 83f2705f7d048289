//! Logs: `tracing` to stderr. Under systemd (journald sets
//! `JOURNAL_STREAM`) no colors and no timestamps, since the journal adds its own.

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` wins over the config's `log_level`; the default is `info`.
pub fn init(log_level: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(log_level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if under_journald {
        builder.with_ansi(false).without_time().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    // Already initialized (tests start several applications): keep the first.
    let _ = result;
}
