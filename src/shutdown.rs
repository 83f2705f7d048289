//! Signals: SIGINT and SIGTERM cancel the shutdown token (every loop
//! selects on it and stops at a safe point); SIGHUP asks for a config
//! reload, which the running daemon performs (`app::Live::reload`).

use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Listens for signals until the token is cancelled. `reload` is notified on
/// SIGHUP; several SIGHUPs during one reload fold into one more reload.
/// Without it (one-shot commands) SIGHUP is logged and ignored.
pub fn spawn_signal_handler(
    shutdown: CancellationToken,
    reload: Option<Arc<Notify>>,
) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let name = loop {
            tokio::select! {
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
                _ = hangup.recv() => match &reload {
                    Some(reload) => {
                        tracing::info!(signal = %"SIGHUP", "reload requested");
                        reload.notify_one();
                    }
                    None => tracing::info!(signal = %"SIGHUP", "nothing to reload; ignored"),
                },
                _ = shutdown.cancelled() => return,
            }
        };
        tracing::info!(signal = %name, "shutting down");
        shutdown.cancel();
    });
    Ok(())
}
