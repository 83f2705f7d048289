//! The systemd notify protocol (sd_notify(3)): `READY=1` once serving,
//! `STATUS=` lines, `RELOADING=1`/`READY=1` around a reload, `STOPPING=1`,
//! and a watchdog that pings only while the scheduler makes progress.
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use sd_notify::NotifyState;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// True when a service manager listens (systemd sets `NOTIFY_SOCKET` for
/// `Type=notify` units): lets callers skip work whose only reader it is.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// The daemon serves: migrations ran and the listener is bound.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload started; `ready` ends it. `MONOTONIC_USEC` lets systemd match
/// the notice to the reload it asked for (required by `Type=notify-reload`).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// Shutdown began: systemd shows "deactivating" instead of a crash.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// A one-line state for `systemctl status`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// When the scheduler loop last completed a turn with the database
/// answering. Cheap to clone; the clones share one clock, tokio's (so a
/// test can pause it).
#[derive(Clone)]
pub struct Heartbeat {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        let now = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Time since the last beat (since creation before the first one).
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }

    /// Runs `work`, beating every `every` until it ends: for long work that
    /// is progress, not a stall (building an index over millions of rows
    /// would otherwise outlast the watchdog's period and get the daemon
    /// restarted halfway).
    pub async fn beating_while<T>(&self, every: Duration, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        let mut beats = tokio::time::interval(every);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = beats.tick() => self.beat(),
            }
        }
    }
}

/// With `WatchdogSec=` set (systemd passes `WATCHDOG_USEC`), pings
/// `WATCHDOG=1` four times per period, but only while the heartbeat is
/// younger than half the period. A scheduler stuck on a hung database or a
/// deadlock thus stops the pings, and systemd restarts a process that is
/// alive but no longer does its job. Returns at once without a watchdog.
pub async fn watchdog(heartbeat: Heartbeat, shutdown: CancellationToken) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let fresh = period / 2;
    let mut ticks = tokio::time::interval((period / 4).max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stalled = false;
    tracing::debug!(period_ms = period.as_millis() as u64, "watchdog enabled");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let age = heartbeat.age();
        if age <= fresh {
            send(&[NotifyState::Watchdog]);
            if stalled {
                tracing::info!("scheduler progressing again; watchdog pings resumed");
                stalled = false;
            }
        } else if !stalled {
            tracing::warn!(
                stalled_ms = age.as_millis() as u64,
                "scheduler made no progress; withholding the watchdog ping"
            );
            stalled = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn long_work_keeps_the_heartbeat_fresh() {
        let heartbeat = Heartbeat::default();
        let work = tokio::time::sleep(Duration::from_millis(800));
        let age_midway = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            heartbeat.age()
        };
        let (age, ()) = tokio::join!(
            age_midway,
            heartbeat.beating_while(Duration::from_millis(50), work)
        );
        // Unbeaten, it would be 500 ms old by then.
        assert!(age < Duration::from_millis(300), "{age:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_age_restarts_at_each_beat() {
        let heartbeat = Heartbeat::default();
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!(heartbeat.age(), Duration::from_millis(300));
        heartbeat.clone().beat();
        assert_eq!(heartbeat.age(), Duration::ZERO);
    }
}
