//! PostgreSQL's planner statistics and visibility map, kept current while
//! a first import grows the tables from nothing.
//!
//! The planner picks index or sequential scans from table statistics, which
//! autovacuum refreshes about once a minute, and only once a tenth of a
//! table changed. A first import outruns it: with an empty table's
//! statistics, each near-duplicate band lookup read all of `article_bands`
//! (215 ms at 43,000 articles instead of 9 ms after `ANALYZE`). So each
//! instance analyzes the ingest's tables itself whenever the articles it
//! stored since the last time outnumber those there were then: six times
//! over an import of 50,000 (at 1,000, 2,000, 4,000…), then only as the
//! store doubles.
//!
//! `article_tags` is vacuumed as well: filtered pages read it by index
//! alone, which only pays while the visibility map marks its pages
//! all-visible; until then the planner costs every index-only scan as a
//! heap read and an `all=a,b` page at 100,000 articles read both tags' rows
//! from the heap (21 ms instead of 1.6 ms, BENCHMARKS.md "Serving from
//! PostgreSQL"). Past the import, autovacuum keeps it so (its thresholds
//! for the table are lowered by migration 20261210020000).

use super::memo::ArticleMemo;
use super::{Engine, Store, StoreError};
use crate::model::Article;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// What a PostgreSQL store keeps beside its pool.
#[derive(Default)]
pub(super) struct Postgres {
    stats: PlannerStats,
    pub(super) pages: PageMemo,
}

/// Articles of tag-driven pages remembered at one content version, as
/// SQLite's page reader does (memo.rs). Forgotten whenever the version
/// moves: other instances' writes are seen with it, within `VERSION_POLL`,
/// as the rendered pages' cache sees them.
pub(super) struct PageMemo {
    memo: Mutex<ArticleMemo>,
}

impl Default for PageMemo {
    fn default() -> Self {
        PageMemo {
            memo: Mutex::new(ArticleMemo::new(0)),
        }
    }
}

impl PageMemo {
    /// The remembered ones among `ids`, as of `version` (the caller's
    /// reading of the store's content version).
    pub(super) fn remembered(&self, version: i64, ids: &[i64]) -> HashMap<i64, Arc<Article>> {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        // A caller with an older version (it read the version just before
        // another request moved it) leaves the memo alone, and remembers
        // nothing (`remember`).
        if version > memo.version {
            *memo = ArticleMemo::new(version);
        } else {
            memo.expire();
        }
        memo.remembered(ids.iter().copied())
    }

    /// Remembers `articles`, read at `version`, unless the version moved.
    pub(super) fn remember(&self, version: i64, articles: &[Arc<Article>]) {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.remember(version, articles);
    }
}

/// Articles stored before the first `ANALYZE`: below this every plan is
/// cheap.
const FIRST_ANALYZE: i64 = 1_000;

/// The tables an ingest reads by key, but for `article_tags`.
const TABLES: &str = "articles, article_sources, article_bands, article_links, tags, tombstones";
/// Read by index alone (filtered pages): analyzed and vacuumed. Insert-only
/// pages cost a vacuum little (~100 ms for 35,000 new articles' rows).
const INDEX_ONLY_TABLES: &str = "article_tags";

struct PlannerStats {
    /// Articles this process stored since its last `ANALYZE`.
    stored_since: AtomicI64,
    /// Articles in the store at the last `ANALYZE` (`FIRST_ANALYZE` before
    /// it); `i64::MAX` once `ANALYZE` failed (not the tables' owner).
    analyzed_at: AtomicI64,
    running: AtomicBool,
}

impl Default for PlannerStats {
    fn default() -> Self {
        PlannerStats {
            stored_since: AtomicI64::new(0),
            analyzed_at: AtomicI64::new(FIRST_ANALYZE),
            running: AtomicBool::new(false),
        }
    }
}

impl Store {
    /// Counts `inserted` new articles, and analyzes the tables in the
    /// background when they have grown enough since the last time.
    pub(super) fn note_inserted(&self, inserted: usize) {
        let Engine::Postgres(postgres) = &self.engine else {
            return;
        };
        let stats = &postgres.stats;
        let stored = stats
            .stored_since
            .fetch_add(inserted as i64, Ordering::Relaxed)
            + inserted as i64;
        if stored < stats.analyzed_at.load(Ordering::Relaxed)
            || stats.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let Engine::Postgres(postgres) = &store.engine else {
                return;
            };
            let stats = &postgres.stats;
            match store.analyze().await {
                Ok(articles) => {
                    // Those stored while it ran count towards the next.
                    stats.stored_since.fetch_sub(stored, Ordering::Relaxed);
                    stats
                        .analyzed_at
                        .store(articles.max(FIRST_ANALYZE), Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ANALYZE failed; autovacuum keeps the planner's statistics");
                    stats.analyzed_at.store(i64::MAX, Ordering::Relaxed);
                }
            }
            stats.running.store(false, Ordering::Release);
        });
    }

    /// Analyzes the ingest's tables, vacuuming those read by index alone;
    /// the number of articles.
    async fn analyze(&self) -> Result<i64, StoreError> {
        sqlx::query(&format!("ANALYZE {TABLES}"))
            .execute(&self.pool)
            .await?;
        // Not in a transaction block: the simple protocol, alone.
        sqlx::raw_sql(&format!("VACUUM (ANALYZE) {INDEX_ONLY_TABLES}"))
            .execute(&self.pool)
            .await?;
        // The count ANALYZE just estimated, without counting again; the
        // table the session's search_path names, as ANALYZE took it.
        Ok(sqlx::query_scalar(
            "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE oid = 'articles'::regclass",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
