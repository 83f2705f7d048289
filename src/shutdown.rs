//! Signals: SIGINT and SIGTERM cancel the shutdown token (every loop
//! selects on it and stops at a safe point); SIGHUP re-validates the config.

use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Listens for signals until the token is cancelled.
pub fn spawn_signal_handler(
    shutdown: CancellationToken,
    config_path: PathBuf,
) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = hangup.recv() => on_hangup(&config_path),
                _ = shutdown.cancelled() => return,
            }
        }
        tracing::info!("signal received, shutting down");
        shutdown.cancel();
    });
    Ok(())
}

/// A bad config on SIGHUP never replaces the running one (CONTRACT §2).
fn on_hangup(path: &std::path::Path) {
    match crate::config::Config::load(path) {
        Ok(_) => tracing::warn!(
            config = %path.display(),
            "SIGHUP: the new config is valid, but live reload is not implemented yet; restart to apply it"
        ),
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: invalid config rejected; the running config stays")
        }
    }
}
