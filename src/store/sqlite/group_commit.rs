//! SQLite's single writer commits the refreshes waiting for it together.
//!
//! A refresh dirties pages all over the indexes (LSH band keys, tag terms,
//! URL and uid keys are spread at random), and SQLite writes every dirty
//! page to the WAL at each commit: one commit per source wrote most of the
//! index pages again for every source. Whoever holds the write lock instead
//! takes every queued refresh into one transaction. Every refresh stays
//! all or nothing; they only become durable together. When one of them
//! fails, the group is rolled back and its refreshes are committed one by
//! one, so only the broken one is lost. (Savepoints per refresh would do
//! the same at a price on every write: SQLite journals each page a
//! savepoint changes.) Fetches that store nothing (304s, failures) are
//! recorded in the same groups, as refreshes without articles.

use super::exec::run_to_completion;
use super::writer_thread::Writer;
use super::Sqlite;
use crate::cluster::Signature;
use crate::model::NewArticle;
use crate::store::band_index::BandIndex;
use crate::store::exec::Exec;
use crate::store::write::{signature_of, Ingested, Near};
use crate::store::{FetchRecord, HealthPolicy, IngestStats, NearDuplicates, Store, StoreError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Refreshes waiting for the writer.
#[derive(Default)]
pub(in crate::store) struct Pending {
    jobs: Mutex<Vec<Job>>,
}

struct Job {
    refresh: Refresh,
    reply: oneshot::Sender<Result<IngestStats, StoreError>>,
}

/// One source refresh to write.
struct Refresh {
    source_id: i64,
    articles: Vec<NewArticle>,
    /// Near-duplicate signatures of `articles`, computed before the writer
    /// (empty when near-duplicates are off).
    signatures: Vec<Option<Signature>>,
    /// `[dedup]` as it was when the refresh was queued: a reload does not
    /// change it for refreshes already waiting.
    near_duplicates: Option<NearDuplicates>,
    /// `[health]`, likewise.
    health: HealthPolicy,
    record: FetchRecord,
}

/// Most refreshes in one transaction: bounds how long the write lock is held
/// (and how long the first of them waits for its answer).
const MAX_GROUP: usize = 64;

impl Pending {
    fn push(&self, job: Job) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job);
    }

    /// The oldest waiting refreshes, at most `MAX_GROUP`.
    fn take_group(&self) -> Vec<Job> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let taken = jobs.len().min(MAX_GROUP);
        let rest = jobs.split_off(taken);
        std::mem::replace(&mut *jobs, rest)
    }
}

impl Store {
    /// Queues the refresh, then, once holding the write lock, commits
    /// whatever is queued (unless another writer already took this one).
    pub(in crate::store) async fn ingest_grouped(
        &self,
        sqlite: &Sqlite,
        source_id: i64,
        articles: Vec<NewArticle>,
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        let mut refresh = Refresh {
            source_id,
            articles,
            signatures: Vec::new(),
            near_duplicates: self.near_duplicates,
            health: self.health,
            record: record.clone(),
        };
        if refresh.near_duplicates.is_some() && !refresh.articles.is_empty() {
            // CPU work (MinHash over every entry's text) that would
            // otherwise run in the writer's serial section; on the blocking
            // pool, off the async workers. Entries a key identifies do not
            // need theirs: the few microseconds each are cheaper here than
            // in the writer.
            refresh = tokio::task::spawn_blocking(move || {
                refresh.signatures = refresh.articles.iter().map(signature_of).collect();
                refresh
            })
            .await
            .map_err(|e| StoreError::WriteTask(e.to_string()))?;
        }
        let (reply, mut answer) = oneshot::channel();
        sqlite.pending.push(Job { refresh, reply });
        tokio::select! {
            // Another writer committed it while this one queued for the
            // lock: waiting on for the lock would hold up the refreshes
            // queued behind this one.
            done = &mut answer => return done.unwrap_or(Err(StoreError::Interrupted)),
            _guard = sqlite.write_lock.lock() => {
                let group = sqlite.pending.take_group();
                if !group.is_empty() {
                    self.commit_group(sqlite, group).await;
                }
            }
        }
        // Answered by now: by this writer, or by one that took the job
        // before this one got the lock (answers are sent under the lock).
        // Only a writer interrupted mid-group (shutdown) drops a job
        // unanswered.
        answer.await.unwrap_or(Err(StoreError::Interrupted))
    }

    /// Commits `group` and answers each job.
    async fn commit_group(&self, sqlite: &Sqlite, group: Vec<Job>) {
        let (refreshes, replies): (Vec<Refresh>, Vec<_>) = group
            .into_iter()
            .map(|job| (job.refresh, job.reply))
            .unzip();
        let (store, count) = (self.clone(), refreshes.len());
        let written = sqlite
            .writer
            .run(move |writer| store.write_in_thread(writer, &refreshes))
            .await;
        let (written, version) =
            written.unwrap_or_else(|stopped| (all_failed(count, stopped), None));
        let mut touched = Vec::new();
        let results: Vec<_> = written
            .into_iter()
            .map(|r| {
                r.map(|ingested| {
                    touched.extend(ingested.touched);
                    ingested.stats
                })
            })
            .collect();
        if let Some(version) = version {
            self.note_version(version, Some(touched));
        }
        for (reply, result) in replies.into_iter().zip(results) {
            // The owner may have given up (shutdown): nothing to tell.
            let _ = reply.send(result);
        }
    }

    /// The group in one transaction on SQLite's writer thread
    /// (writer_thread.rs), in that thread; one by one if that fails (one
    /// refresh broke, say a constraint its entries violate: the group was
    /// rolled back whole, so each is done again alone and only the broken
    /// one fails). The content version is bumped in the transaction that
    /// changed articles, and comes back with the results: no second
    /// commit, and no other connection writing between two groups (which
    /// would make this connection drop its page cache).
    fn write_in_thread(
        &self,
        writer: &mut Writer,
        group: &[Refresh],
    ) -> (Vec<Result<Ingested, StoreError>>, Option<i64>) {
        let all = self.transaction_in_thread(writer, |store, writer| {
            let ingested = group
                .iter()
                .map(|r| {
                    let bands = Some(&mut writer.bands);
                    run_to_completion(store.ingest_refresh(&mut writer.conn, r, bands))
                })
                .collect::<Result<Vec<Ingested>, _>>()?;
            let version = match changes_a_feed(&ingested) {
                true => Some(bump_version_in(&writer.conn)?),
                false => None,
            };
            Ok((ingested, version))
        });
        match all {
            Ok((ingested, version)) => (ingested.into_iter().map(Ok).collect(), version),
            Err(e) if group.len() > 1 => {
                tracing::debug!(error = %e, refreshes = group.len(), "group commit failed; one by one");
                let results: Vec<_> = group
                    .iter()
                    .map(|r| {
                        self.transaction_in_thread(writer, |store, writer| {
                            let bands = Some(&mut writer.bands);
                            run_to_completion(store.ingest_refresh(&mut writer.conn, r, bands))
                        })
                    })
                    .collect();
                // One version for the group, as when it commits whole (and
                // no transaction at all when nothing changed).
                let committed = results.iter().filter_map(|r| r.as_ref().ok());
                let bumped = match changes_a_feed(committed) {
                    true => self
                        .transaction_in_thread(writer, |_, writer| bump_version_in(&writer.conn))
                        .map(Some),
                    false => Ok(None),
                };
                match bumped {
                    Ok(version) => (results, version),
                    // Committed, but feeds would not show it until the next
                    // write: report it like the write failing.
                    Err(e) => (all_failed(group.len(), e), None),
                }
            }
            Err(e) => (vec![Err(e)], None),
        }
    }

    async fn ingest_refresh<E: Exec>(
        &self,
        tx: &mut E,
        r: &Refresh,
        bands: Option<&mut BandIndex>,
    ) -> Result<Ingested, StoreError> {
        self.ingest_in(
            tx,
            r.source_id,
            &r.articles,
            Near {
                policy: r.near_duplicates,
                signatures: &r.signatures,
                memory: bands,
            },
            &r.record,
            &r.health,
        )
        .await
    }

    /// `work` in one transaction, rolled back if it fails.
    fn transaction_in_thread<T>(
        &self,
        writer: &mut Writer,
        work: impl FnOnce(&Store, &mut Writer) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // IMMEDIATE: the write lock at once (busy_timeout waits out another
        // process), not a read lock that may fail to upgrade later.
        writer.conn.execute_batch("BEGIN IMMEDIATE")?;
        let done = work(self, writer).and_then(|value| {
            writer.conn.execute_batch("COMMIT")?;
            Ok(value)
        });
        if done.is_err() {
            // Band keys of articles the rollback takes back.
            writer.bands.forget();
            if !writer.conn.is_autocommit() {
                // The error that matters is the one that stopped the work.
                let _ = writer.conn.execute_batch("ROLLBACK");
            }
        }
        done
    }
}

/// Bumps the content version (see `Store::bump_version`) inside the writer
/// thread's transaction; the new version.
fn bump_version_in(conn: &rusqlite::Connection) -> Result<i64, StoreError> {
    let version = conn
        .prepare_cached(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
             WHERE key = 'content_version' RETURNING CAST(value AS INTEGER)",
        )?
        .query_row([], |row| row.get(0))?;
    Ok(version)
}

fn changes_a_feed<'a>(ingested: impl IntoIterator<Item = &'a Ingested>) -> bool {
    ingested.into_iter().any(|i| i.stats.changed_articles())
}

/// Every refresh of a group of `count` failed with `error`.
fn all_failed<T>(count: usize, error: StoreError) -> Vec<Result<T, StoreError>> {
    let shared = Arc::new(error);
    (0..count)
        .map(|_| Err(StoreError::Group(shared.clone())))
        .collect()
}
