//! The loops that run refreshes: the daemon's, which claims due sources
//! (with a lease, so that several instances never fetch one twice) and fans
//! them out under the fetcher's bounds; `tributary fetch`'s one cycle; and
//! the retention loop. When a source is due is `polling`'s rule.

use crate::clock::Clock;
use crate::config::Schedule;
use crate::notify::Heartbeat;
use crate::pipeline::{Pipeline, RefreshReport};
use crate::store::{Claimed, Store, StoreError};
use crate::supervise;
use chrono::TimeDelta;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, RwLock, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Longest the loop sleeps before looking for due sources again (new
/// sources, other instances' releases).
const MAX_IDLE: Duration = Duration::from_secs(1);

/// How long a claimed source stays ours if we die mid-fetch: past this,
/// another instance takes it over. A fetch ends within `timeout`; the
/// margin covers parsing and the store's transaction.
pub fn lease_for(timeout: Duration) -> TimeDelta {
    TimeDelta::from_std(timeout).unwrap_or(TimeDelta::minutes(5)) + TimeDelta::seconds(30)
}

/// The pipeline in force, replaced on reload. A claim holds it read-locked,
/// and a reload write-locks it to sync the sources table and swap the
/// pipeline together: every claimed source is one its pipeline knows.
pub type LivePipeline = Arc<RwLock<Arc<Pipeline>>>;

/// Names this process in leases: `host:pid:random`.
pub fn instance_id() -> String {
    format!(
        "{}:{}:{:08x}",
        hostname(),
        std::process::id(),
        rand::random::<u32>()
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Releases leases left by processes of this host that no longer run (a
/// `kill -9`, a crash), so that their sources are fetched now rather than
/// when the leases expire. Other hosts' leases are left to expire.
pub async fn reclaim_stale_local_leases(store: &Store) -> Result<(), StoreError> {
    let host = hostname();
    for owner in store.lease_owners().await? {
        let mut parts = owner.rsplitn(3, ':');
        let (_random, pid, owner_host) = (parts.next(), parts.next(), parts.next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if owner_host == Some(host.as_str()) && !alive {
            tracing::info!(owner = %owner, "releasing leases of a process that is gone");
            store.release_leases(&owner).await?;
        }
    }
    Ok(())
}

/// The daemon's loop as seen from outside: the turns it completed, and
/// whether the last found nothing to do (nothing due it could claim,
/// nothing running). A program running the daemon (and its tests) waits on
/// these rather than on time (`Application::scheduler_turns`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turns {
    pub completed: u64,
    pub idle: bool,
}

/// What the loop tells of its progress: `heartbeat` beats after every turn
/// in which the database answered (the systemd watchdog pings only while it
/// does); `turns` counts every turn.
pub struct Progress {
    pub heartbeat: Heartbeat,
    pub turns: watch::Sender<Turns>,
}

/// The daemon's loop: claims due sources and refreshes them until
/// `shutdown`; in-flight fetches are abandoned then (their leases released).
/// A refresh that panics is recorded as its source's failure
/// ([`Pipeline::record_crash`]) and the loop goes on.
/// Each claim takes the pipeline in force then, so a reloaded config applies
/// from the next claim while running refreshes finish with theirs.
pub async fn run(
    pipelines: LivePipeline,
    owner: String,
    concurrency: usize,
    lease: TimeDelta,
    shutdown: CancellationToken,
    progress: Progress,
    clock: Clock,
) -> Result<(), StoreError> {
    let store = pipelines.read().await.store().clone();
    // At most `concurrency` refreshes, fetch to ingest commit (claims only
    // fill free capacity): memory is bounded by it, not by the sources due.
    let mut in_flight: JoinSet<()> = JoinSet::new();
    // What each refresh task works on, for when it panics.
    let mut running: HashMap<tokio::task::Id, (Arc<Pipeline>, Claimed)> = HashMap::new();
    let mut bulk_load = begin_bulk_load(&store).await;
    loop {
        let now = clock.now();
        let capacity = concurrency.saturating_sub(in_flight.len());
        let mut claimed_any = false;
        let mut store_answered = true;
        if capacity > 0 {
            let pipeline = pipelines.read().await;
            match store
                .claim_due(&owner, now, now + lease, capacity as i64, None)
                .await
            {
                Ok(claimed) => {
                    store.note_claim(Ok(()), now);
                    claimed_any = !claimed.is_empty();
                    for source in claimed {
                        fault_point!("claim", &source.name);
                        let task =
                            in_flight.spawn(refresh_logged(pipeline.clone(), source.clone()));
                        running.insert(task.id(), (pipeline.clone(), source));
                    }
                }
                Err(e) => {
                    store_answered = false;
                    tracing::error!(error = %e, "claiming due sources failed");
                    store.note_claim(Err(&e), now);
                }
            }
        }
        let idle = match store.next_due().await {
            Ok(Some(due)) if due > now => (due - now).to_std().unwrap_or(MAX_IDLE).min(MAX_IDLE),
            Ok(Some(_)) if claimed_any => Duration::ZERO,
            // Due but not claimable (in flight, leased elsewhere, at capacity).
            Ok(Some(_)) => Duration::from_millis(100),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                store_answered = false;
                tracing::error!(error = %e, "reading the schedule failed");
                MAX_IDLE
            }
        };
        if store_answered {
            progress.heartbeat.beat();
        }
        let nothing_to_do = !claimed_any && in_flight.is_empty() && store_answered;
        // The first pass over an empty store is done when nothing is due
        // and nothing runs.
        if nothing_to_do && bulk_load.is_some() {
            // The build holds the write lock (~0.5 s per 50,000 articles,
            // minutes for millions): progress, so the watchdog keeps
            // pinging. A lock it cannot get fails after busy_timeout.
            progress
                .heartbeat
                .beating_while(Duration::from_secs(1), finish_bulk_load(bulk_load.take()))
                .await;
        }
        progress.turns.send_modify(|turns| {
            turns.completed += 1;
            turns.idle = nothing_to_do;
        });
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(idle) => {}
            Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let id = match &joined {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                let refresh = running.remove(&id);
                if let (Err(e), Some((pipeline, source))) = (joined, refresh) {
                    if e.is_panic() {
                        let panic = supervise::panic_message(e);
                        // Recorded in its own task, off this loop's path.
                        in_flight.spawn(async move {
                            pipeline.record_crash(&source, &panic).await;
                        });
                    }
                }
            }
        }
    }
    // Abandon in-flight fetches: their transactions roll back, their leases
    // are released so that the next start fetches them at once.
    in_flight.shutdown().await;
    finish_bulk_load(bulk_load).await;
    store.release_leases(&owner).await
}

async fn finish_bulk_load(bulk_load: Option<crate::store::BulkLoad>) {
    if let Some(bulk_load) = bulk_load {
        if let Err(e) = bulk_load.finish().await {
            tracing::error!(error = %e, "building the tag index failed; it is built at the next start");
        }
    }
}

async fn refresh_logged(pipeline: Arc<Pipeline>, source: Claimed) {
    if let Err(e) = pipeline.refresh_source(&source).await {
        tracing::error!(source = %source.name, error = %e, "refresh failed");
    }
}

/// How many refreshes `run_once` lets run at once, from fetch start to
/// ingest commit: four times the fetch concurrency, so that fetching and
/// parsing go on while refreshes queue for the store's writer (one, on
/// SQLite), yet at most that many bodies and parsed feeds wait in memory:
/// the fetcher's own permits are released once a body is read, and without
/// this bound a cycle over N sources would hold all N. Four rather than two:
/// SQLite's group commits are then about twice as large, and each writes
/// the index pages it dirtied once (the harness's steady-state cycle 0.89x,
/// for ~10 MB more peak RSS).
// Public only so that bench/ (a crate of its own) stores as `run_once`
// does; no caller of the library needs it, hence hidden from its docs.
#[doc(hidden)]
pub fn in_progress_bound(concurrency: usize) -> usize {
    4 * concurrency.max(1)
}

/// One cycle now (`tributary fetch`): the named sources, or all configured
/// ones, due or not (but not those under a server's `Retry-After`). Reports
/// come back in source-name order as they complete.
pub async fn run_once(
    pipeline: Arc<Pipeline>,
    owner: &str,
    names: &[String],
    lease: TimeDelta,
    shutdown: CancellationToken,
    mut on_report: impl FnMut(&RefreshReport),
) -> Result<Vec<RefreshReport>, StoreError> {
    let now = pipeline.clock().now();
    let claimed = pipeline
        .store()
        .claim_due(owner, now, now + lease, i64::MAX / 2, Some(names))
        .await?;
    let bulk_load = match claimed.is_empty() {
        true => None,
        false => begin_bulk_load(pipeline.store()).await,
    };
    // A source gets its task once one of `in_progress_bound` permits is
    // free (see there), not before: a task waiting for its permit already
    // holds its refresh's whole future, and every source of the cycle had
    // one.
    let in_progress = Arc::new(Semaphore::new(in_progress_bound(pipeline.concurrency())));
    let mut waiting = claimed.into_iter();
    let mut tasks = JoinSet::new();
    let mut running = HashMap::new();
    let mut reports = Vec::new();
    while !tasks.is_empty() || waiting.len() > 0 {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                tasks.shutdown().await;
                break;
            }
            next = tasks.join_next_with_id(), if !tasks.is_empty() => match next {
                None => {}
                Some(Ok((id, (_, Ok(report))))) => {
                    running.remove(&id);
                    on_report(&report);
                    reports.push(report);
                }
                // One source's refresh could not run: that source failed,
                // the others go on (a failing source is not a failed run).
                Some(Ok((id, (source, Err(e))))) => {
                    running.remove(&id);
                    tracing::error!(source = %source, error = %e, "refresh failed");
                    let report = RefreshReport {
                        source,
                        status: None,
                        outcome: crate::pipeline::Outcome::Failed(format!("store: {e}")),
                        next_fetch_at: pipeline.clock().now(),
                    };
                    on_report(&report);
                    reports.push(report);
                }
                Some(Err(join_error)) => {
                    let Some(source) = running.remove(&join_error.id()) else {
                        continue;
                    };
                    let panic = supervise::panic_message(join_error);
                    let report = pipeline.record_crash(&source, &panic).await;
                    on_report(&report);
                    reports.push(report);
                }
            },
            permit = in_progress.clone().acquire_owned(), if waiting.len() > 0 => {
                // The semaphore is never closed.
                let (Ok(permit), Some(source)) = (permit, waiting.next()) else {
                    break;
                };
                let pipeline = pipeline.clone();
                let claimed = source.clone();
                let task = tasks.spawn(async move {
                    // Held from before the fetch until the ingest committed.
                    let _permit = permit;
                    let result = pipeline.refresh_source(&source).await;
                    (source.name, result)
                });
                running.insert(task.id(), claimed);
            }
        }
    }
    // Abandoned refreshes, and any that stopped before recording their
    // fetch, left their leases.
    finish_bulk_load(bulk_load).await;
    pipeline.store().release_leases(owner).await?;
    reports.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(reports)
}

/// An empty store's first import builds its tag index at the end
/// (store/bulk_load.rs); if that cannot start, the import goes row by row.
async fn begin_bulk_load(store: &Store) -> Option<crate::store::BulkLoad> {
    store.begin_bulk_load().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "importing row by row");
        None
    })
}

/// The daemon's retention loop (docs/CONFIG.md "Retention"): prunes at every tick of
/// `prune_schedule` until `shutdown`. Instances sharing a database claim each
/// tick first, so exactly one of them prunes; a prune cut short by shutdown
/// rolls back whole.
pub async fn run_prune(
    store: crate::store::Store,
    schedule: Schedule,
    retention: Duration,
    tombstone_retention: Duration,
    shutdown: CancellationToken,
    clock: Clock,
) {
    let mut last_due = clock.now();
    loop {
        // From the last tick handled, so an early timer wake-up cannot
        // handle the same tick twice.
        let Some(due) = schedule.next_after(clock.now().max(last_due)) else {
            return;
        };
        last_due = due;
        let wait = (due - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match store.claim_prune(due).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(%due, "prune already done by another instance");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming the scheduled prune failed");
                continue;
            }
        }
        fault_point!("prune", "");
        let pruned = tokio::select! {
            _ = shutdown.cancelled() => return,
            pruned = store.prune(clock.now(), retention, tombstone_retention) => pruned,
        };
        match pruned {
            Ok(stats) => {
                crate::metrics::record_prune(stats.articles, stats.tombstones_expired);
                tracing::info!(
                    articles = stats.articles,
                    tombstones_added = stats.tombstones_added,
                    tombstones_expired = stats.tombstones_expired,
                    "pruned"
                );
            }
            Err(e) => tracing::error!(error = %e, "prune failed"),
        }
    }
}
