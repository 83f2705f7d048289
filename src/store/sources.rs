//! Sources: synced from the config, claimed when due (a lease, so that one
//! fetch is done once), and their fetch outcomes recorded.

use super::exec::Exec;
use super::{from_micros, micros, retry_after_conflict, Backend, Store, StoreError};
use crate::model::SourceState;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// A source as the config declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSync {
    pub name: String,
    pub url: String,
    pub enabled: bool,
}

/// A source claimed for one fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub consecutive_failures: i64,
}

/// The outcome of one fetch, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchRecord {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    /// `None` on success.
    pub error: Option<String>,
    pub next_fetch_at: DateTime<Utc>,
    /// Validators to echo next time; `None` leaves the stored ones alone.
    pub validators: Option<(Option<String>, Option<String>)>,
    pub retry_after_until: Option<DateTime<Utc>>,
    pub backoff_until: Option<DateTime<Utc>>,
    /// Counts toward backoff (a 429 does not).
    pub failed: bool,
    /// Set when the source must stop being fetched (410 Gone).
    pub disabled_reason: Option<String>,
    pub moved_to: Option<String>,
    /// Feed-level facts from a parsed body.
    pub feed: Option<crate::model::FeedMeta>,
}

const STATE_COLUMNS: &str = "s.name, s.url, s.enabled, s.title, s.last_fetch_at, s.last_status,
    s.last_error, s.consecutive_failures, s.next_fetch_at, s.retry_after_until, s.backoff_until,
    s.disabled_reason, s.moved_to, s.etag, s.last_modified,
    (SELECT COUNT(*) FROM article_sources x WHERE x.source_id = s.id) AS articles";

impl Store {
    /// Makes the sources table match the config: new ones added, changed
    /// URLs reset (validators belong to the old URL), removed ones kept for
    /// their articles but no longer fetched. Idempotent, so every instance
    /// may run it.
    pub async fn sync_sources(&self, sources: &[SourceSync]) -> Result<(), StoreError> {
        // Compare first, write only what differs: with the same config on
        // every instance, a start or reload then writes nothing. Every write
        // below is conditional too, so one racing with another instance's
        // identical sync is a no-op rather than a flip-flop.
        let stored: Vec<(String, String, i64, i64)> =
            sqlx::query_as("SELECT name, url, configured, enabled FROM sources")
                .fetch_all(&self.pool)
                .await?;
        let stored: HashMap<String, (String, bool, bool)> = stored
            .into_iter()
            .map(|(name, url, configured, enabled)| (name, (url, configured != 0, enabled != 0)))
            .collect();
        let mut writes = Vec::new();
        for source in sources {
            match stored.get(&source.name) {
                None => writes.push(SyncWrite::Insert(source)),
                Some((url, configured, enabled)) => {
                    if *url != source.url {
                        writes.push(SyncWrite::NewUrl(source));
                    }
                    if !configured || *enabled != source.enabled {
                        writes.push(SyncWrite::Flags(source));
                    }
                }
            }
        }
        let configured: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        for (name, (_, was_configured, _)) in &stored {
            if *was_configured && !configured.contains(name.as_str()) {
                writes.push(SyncWrite::Remove(name));
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let _guard = self.write_guard().await;
        let mut tries = 1;
        loop {
            match self.sync_writes(&writes).await {
                Err(e) if retry_after_conflict(&e, tries).await => tries += 1,
                done => return done,
            }
        }
    }

    async fn sync_writes(&self, writes: &[SyncWrite<'_>]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for write in writes {
            write.run(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` sources due at `now` (or the named ones, due or
    /// not, when `only` is given) with a lease until `lease_until`; a source
    /// whose lease is held elsewhere is skipped.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        only: Option<&[String]>,
    ) -> Result<Vec<Claimed>, StoreError> {
        if only.is_some_and(|names| names.is_empty()) {
            return Ok(Vec::new());
        }
        let _guard = self.write_guard().await;
        let due = match only {
            // Asked for by name: due or not, but a server's Retry-After
            // is honoured even then.
            Some(_) => "(retry_after_until IS NULL OR retry_after_until <= $2)",
            None => "(next_fetch_at IS NULL OR next_fetch_at <= $2)",
        };
        let names = match only {
            Some(names) => format!(" AND name IN ({})", placeholders(4, names.len())),
            None => String::new(),
        };
        // PostgreSQL: SKIP LOCKED lets several instances claim at once without
        // waiting on each other's rows; SQLite has one writer anyway. Never
        // fetched (NULL) first on both: the dialects sort NULL differently.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE sources SET lease_owner = $1, lease_until = $3
             WHERE id IN (
                 SELECT id FROM sources
                 WHERE configured = 1 AND enabled = 1 AND disabled_reason IS NULL
                   AND {due} AND (lease_until IS NULL OR lease_until <= $2){names}
                 ORDER BY COALESCE(next_fetch_at, 0), id LIMIT {limit}{lock})
             RETURNING id, name, url, etag, last_modified, consecutive_failures"
        );
        let mut query = sqlx::query(&sql)
            .bind(owner)
            .bind(micros(now))
            .bind(micros(lease_until));
        for name in only.unwrap_or_default() {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.writer).await?;
        let mut claimed: Vec<Claimed> = rows
            .iter()
            .map(|row| -> Result<Claimed, sqlx::Error> {
                Ok(Claimed {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    url: row.try_get(2)?,
                    etag: row.try_get(3)?,
                    last_modified: row.try_get(4)?,
                    consecutive_failures: row.try_get(5)?,
                })
            })
            .collect::<Result<_, _>>()?;
        claimed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(claimed)
    }

    /// Gives up the leases `owner` holds (on shutdown), so that another
    /// instance or the next start can fetch those sources at once.
    pub async fn release_leases(&self, owner: &str) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Everyone currently holding a lease.
    pub async fn lease_owners(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM sources WHERE lease_owner IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the next source falls due, if any is scheduled.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(next_fetch_at, 0)) FROM sources
             WHERE configured = 1 AND enabled = 1 AND disabled_reason IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(from_micros))
    }

    /// Records a fetch that stored nothing (304, or a failure).
    pub async fn record_fetch(
        &self,
        source_id: i64,
        record: &FetchRecord,
    ) -> Result<(), StoreError> {
        if let Some(pending) = &self.pending {
            // On SQLite, in the ingests' group commit: one commit for many
            // 304s instead of one each, and no second connection writing
            // between groups (which would empty the ingest writer's page
            // cache).
            return self
                .ingest_grouped(pending, source_id, Vec::new(), record)
                .await
                .map(|_| ());
        }
        let _guard = self.write_guard().await;
        let mut tx = self.writer.begin().await?;
        record_fetch_in(&mut *tx, source_id, record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every configured source with its health, by name.
    pub async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        let sql =
            format!("SELECT {STATE_COLUMNS} FROM sources s WHERE s.configured = 1 ORDER BY s.name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(source_state).collect::<Result<_, _>>()?)
    }

    /// A source's id by name (configured or not).
    pub async fn source_id(&self, name: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT id FROM sources WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownSource(name.to_string()))
    }

    /// Whether any article from this source is stored: before its first
    /// successful fetch (or after everything it had was pruned), none is.
    pub async fn source_has_articles(&self, source_id: i64) -> Result<bool, StoreError> {
        // The column itself, not a literal: BIGINT on PostgreSQL, as `i64` wants.
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT source_id FROM article_sources WHERE source_id = $1 LIMIT 1",
        )
        .bind(source_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}

/// One change `sync_sources` makes.
enum SyncWrite<'a> {
    Insert(&'a SourceSync),
    /// Validators and schedule belong to the old URL: start afresh.
    NewUrl(&'a SourceSync),
    Flags(&'a SourceSync),
    /// Gone from the config: kept for its articles, no longer fetched.
    Remove(&'a str),
}

impl SyncWrite<'_> {
    async fn run(&self, tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        let query = match self {
            SyncWrite::Insert(s) => sqlx::query(
                "INSERT INTO sources (name, url, configured, enabled) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(&s.name)
            .bind(&s.url)
            .bind(s.enabled as i64),
            SyncWrite::NewUrl(s) => sqlx::query(
                "UPDATE sources SET url = $2, etag = NULL, last_modified = NULL,
                        next_fetch_at = NULL, disabled_reason = NULL, moved_to = NULL,
                        consecutive_failures = 0, backoff_until = NULL, retry_after_until = NULL
                 WHERE name = $1 AND url <> $2",
            )
            .bind(&s.name)
            .bind(&s.url),
            SyncWrite::Flags(s) => sqlx::query(
                "UPDATE sources SET configured = 1, enabled = $2
                 WHERE name = $1 AND (configured <> 1 OR enabled <> $2)",
            )
            .bind(&s.name)
            .bind(s.enabled as i64),
            SyncWrite::Remove(name) => {
                sqlx::query("UPDATE sources SET configured = 0 WHERE name = $1 AND configured = 1")
                    .bind(*name)
            }
        };
        query.execute(&mut *tx).await?;
        Ok(())
    }
}

/// Writes a fetch outcome inside a transaction (the ingest's own, so that
/// validators never get ahead of the articles they vouch for).
pub(super) async fn record_fetch_in<E: Exec>(
    tx: &mut E,
    source_id: i64,
    r: &FetchRecord,
) -> Result<(), StoreError> {
    let failures = if r.failed {
        "consecutive_failures + 1"
    } else if r.error.is_none() {
        "0"
    } else {
        "consecutive_failures"
    };
    let sql = format!(
        "UPDATE sources SET last_fetch_at = $2, last_status = $3, last_error = $4,
                next_fetch_at = $5, retry_after_until = $6, backoff_until = $7,
                consecutive_failures = {failures},
                disabled_reason = COALESCE($8, disabled_reason), moved_to = $9,
                lease_owner = NULL, lease_until = NULL
         WHERE id = $1"
    );
    tx.execute(
        &sql,
        &[
            source_id.into(),
            micros(r.at).into(),
            r.status.map(i64::from).into(),
            (&r.error).into(),
            micros(r.next_fetch_at).into(),
            r.retry_after_until.map(micros).into(),
            r.backoff_until.map(micros).into(),
            (&r.disabled_reason).into(),
            (&r.moved_to).into(),
        ],
    )
    .await?;
    if let Some((etag, last_modified)) = &r.validators {
        tx.execute(
            "UPDATE sources SET etag = $2, last_modified = $3 WHERE id = $1",
            &[source_id.into(), etag.into(), last_modified.into()],
        )
        .await?;
    }
    if let Some(feed) = &r.feed {
        tx.execute(
            "UPDATE sources SET title = COALESCE($2, title), site_url = COALESCE($3, site_url),
                    feed_id = COALESCE($4, feed_id), feed_updated = COALESCE($5, feed_updated)
             WHERE id = $1",
            &[
                source_id.into(),
                (&feed.title).into(),
                (&feed.site_url).into(),
                (&feed.feed_id).into(),
                feed.updated.map(micros).into(),
            ],
        )
        .await?;
    }
    Ok(())
}

fn source_state(row: &AnyRow) -> Result<SourceState, sqlx::Error> {
    let time = |i: usize| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(i)?.map(from_micros))
    };
    Ok(SourceState {
        name: row.try_get(0)?,
        url: row.try_get(1)?,
        enabled: row.try_get::<i64, _>(2)? != 0,
        title: row.try_get(3)?,
        last_fetch_at: time(4)?,
        last_status: row.try_get::<Option<i64>, _>(5)?.map(|s| s as u16),
        last_error: row.try_get(6)?,
        consecutive_failures: row.try_get(7)?,
        next_fetch_at: time(8)?,
        retry_after_until: time(9)?,
        backoff_until: time(10)?,
        disabled_reason: row.try_get(11)?,
        moved_to: row.try_get(12)?,
        etag: row.try_get(13)?,
        last_modified: row.try_get(14)?,
        articles: row.try_get(15)?,
    })
}

/// `$first, $first+1, …` for `count` values.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
