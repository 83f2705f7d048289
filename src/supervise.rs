//! Tasks that must not die silently: what a panicked task said, and the
//! loop that restarts a background task after a panic.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

/// How long a panicked background task waits before it runs again, so
/// that one that panics at once does not spin.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// The message of a task that panicked, or why else it ended.
pub fn panic_message(e: JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs the task `make` builds until it returns (at `shutdown`); when it
/// panics, logs and counts the panic and starts it again.
pub async fn restarting<F, Fut>(task: &'static str, shutdown: CancellationToken, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match tokio::spawn(make()).await {
            Ok(()) => return,
            Err(e) => {
                crate::metrics::record_panic(task);
                tracing::error!(task, error = %panic_message(e), "task panicked; restarting it");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RESTART_AFTER) => {}
        }
    }
}
