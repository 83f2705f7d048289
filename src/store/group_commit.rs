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
//! savepoint changes.)

use super::{FetchRecord, IngestStats, Store, StoreError};
use crate::model::NewArticle;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Refreshes waiting for the writer.
#[derive(Default)]
pub(super) struct Pending {
    jobs: Mutex<Vec<Job>>,
}

struct Job {
    source_id: i64,
    articles: Vec<NewArticle>,
    record: FetchRecord,
    reply: oneshot::Sender<Result<IngestStats, StoreError>>,
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
    pub(super) async fn ingest_grouped(
        &self,
        pending: &Pending,
        source_id: i64,
        articles: &[NewArticle],
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        pending.push(Job {
            source_id,
            articles: articles.to_vec(),
            record: record.clone(),
            reply,
        });
        tokio::select! {
            // Another writer committed it while this one queued for the
            // lock: waiting on for the lock would hold up the refreshes
            // queued behind this one.
            done = &mut answer => return done.unwrap_or(Err(StoreError::Interrupted)),
            _guard = self.write_guard() => {
                let group = pending.take_group();
                if !group.is_empty() {
                    self.commit_group(group).await;
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
    async fn commit_group(&self, group: Vec<Job>) {
        let mut results = match self.ingest_all(&group).await {
            Ok(stats) => stats.into_iter().map(Ok).collect(),
            // One refresh broke (a constraint its entries violate, say):
            // the group was rolled back whole, so each is done again alone
            // and only the broken one fails.
            Err(e) if group.len() > 1 => {
                tracing::debug!(error = %e, refreshes = group.len(), "group commit failed; one by one");
                let mut results = Vec::with_capacity(group.len());
                for job in &group {
                    let result = self
                        .ingest_alone(job.source_id, &job.articles, &job.record)
                        .await;
                    results.push(result);
                }
                results
            }
            Err(e) => vec![Err(e)],
        };
        if results
            .iter()
            .any(|r| r.as_ref().is_ok_and(IngestStats::changed_articles))
        {
            if let Err(e) = self.bump_version().await {
                // Committed, but feeds would not show it until the next
                // write: report it like the write failing.
                let shared = Arc::new(e);
                results = group
                    .iter()
                    .map(|_| Err(StoreError::Group(shared.clone())))
                    .collect();
            }
        }
        for (job, result) in group.into_iter().zip(results) {
            // The owner may have given up (shutdown): nothing to tell.
            let _ = job.reply.send(result);
        }
    }

    /// Every refresh of `group` in one transaction.
    async fn ingest_all(&self, group: &[Job]) -> Result<Vec<IngestStats>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut results = Vec::with_capacity(group.len());
        for job in group {
            let stats = self
                .ingest_in(&mut tx, job.source_id, &job.articles, &job.record)
                .await?;
            results.push(stats);
        }
        tx.commit().await?;
        Ok(results)
    }
}
