//! Article pages fetched for full text (docs/CONFIG.md "Full text"): which
//! of a refresh's entries are new to the store, each page's last outcome
//! (with the extracted body, reused without a request), and per-source
//! counts for `tributary sources`.

use super::sql::{statement_chunks, Params};
use super::{from_micros, micros, Store, StoreError};
use crate::model::{PageOutcome, PageRecord};
use std::collections::HashMap;

/// A source's article pages by outcome, for `tributary sources`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageCounts {
    pub extracted: i64,
    /// Every other final outcome (kept the feed's text, not HTML, too
    /// large, disallowed, failed for good).
    pub kept: i64,
    /// Failures that will be tried again.
    pub retrying: i64,
    /// The latest failure's error.
    pub last_error: Option<String>,
}

type Row = (
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const PAGE_SELECT: &str = "SELECT url, outcome, status, error, content, attempts, fetched_at,
        next_attempt_at, etag, last_modified, entry_updated FROM article_pages";

fn record(row: Row) -> PageRecord {
    let (
        url,
        outcome,
        status,
        error,
        content,
        attempts,
        fetched_at,
        next,
        etag,
        last_modified,
        read_for,
    ) = row;
    PageRecord {
        url,
        outcome: PageOutcome::from_name(&outcome),
        status: status.and_then(|s| u16::try_from(s).ok()),
        error,
        content,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        fetched_at: from_micros(fetched_at),
        next_attempt_at: next.map(from_micros),
        etag,
        last_modified,
        entry_updated: read_for.map(from_micros),
    }
}

impl Store {
    /// Which of `keys` (entry keys of `source_id`) the store already has,
    /// with the language stored for each: one lookup per refresh, so only
    /// new entries fetch a page or have their language detected.
    pub async fn known_entries(
        &self,
        source_id: i64,
        keys: &[&str],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        let mut known = HashMap::new();
        for chunk in statement_chunks(keys, 256) {
            let list = Params::numbered_from(2).list(chunk.len());
            let sql = format!(
                "SELECT s.entry_key, a.language FROM article_sources s
                 JOIN articles a ON a.id = s.article_id
                 WHERE s.source_id = $1 AND s.entry_key IN ({list})"
            );
            let query = chunk
                .iter()
                .fold(sqlx::query_as(&sql).bind(source_id), |q, key| q.bind(*key));
            let rows: Vec<(String, Option<String>)> = query.fetch_all(&self.pool).await?;
            known.extend(rows);
        }
        Ok(known)
    }

    /// The stored state of `urls`' pages for `source_id`, by URL.
    pub async fn article_pages(
        &self,
        source_id: i64,
        urls: &[&str],
    ) -> Result<HashMap<String, PageRecord>, StoreError> {
        let mut pages = HashMap::new();
        for chunk in statement_chunks(urls, 256) {
            let list = Params::numbered_from(2).list(chunk.len());
            let sql = format!("{PAGE_SELECT} WHERE source_id = $1 AND url IN ({list})");
            let query = chunk
                .iter()
                .fold(sqlx::query_as(&sql).bind(source_id), |q, url| q.bind(*url));
            let rows: Vec<Row> = query.fetch_all(&self.pool).await?;
            pages.extend(rows.into_iter().map(|row| (row.0.clone(), record(row))));
        }
        Ok(pages)
    }

    /// Records what fetching `pages` of `source_id` came to, replacing what
    /// was recorded of the same URLs.
    pub async fn record_pages(
        &self,
        source_id: i64,
        pages: &[PageRecord],
    ) -> Result<(), StoreError> {
        if pages.is_empty() {
            return Ok(());
        }
        let _guard = self.write_guard().await;
        let mut tx = self.writer.begin().await?;
        for page in pages {
            sqlx::query(
                "INSERT INTO article_pages (source_id, url, outcome, status, error, content,
                     attempts, fetched_at, next_attempt_at, etag, last_modified, entry_updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (source_id, url) DO UPDATE SET outcome = excluded.outcome,
                     status = excluded.status, error = excluded.error,
                     content = excluded.content, attempts = excluded.attempts,
                     fetched_at = excluded.fetched_at,
                     next_attempt_at = excluded.next_attempt_at, etag = excluded.etag,
                     last_modified = excluded.last_modified,
                     entry_updated = excluded.entry_updated",
            )
            .bind(source_id)
            .bind(&page.url)
            .bind(page.outcome.as_str())
            .bind(page.status.map(i64::from))
            .bind(&page.error)
            .bind(&page.content)
            .bind(i64::from(page.attempts))
            .bind(micros(page.fetched_at))
            .bind(page.next_attempt_at.map(micros))
            .bind(&page.etag)
            .bind(&page.last_modified)
            .bind(page.entry_updated.map(micros))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest page fetched at `url` by any source, for `explain`.
    pub async fn article_page(&self, url: &str) -> Result<Option<PageRecord>, StoreError> {
        let sql = format!("{PAGE_SELECT} WHERE url = $1 ORDER BY fetched_at DESC LIMIT 1");
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(url)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(record))
    }

    /// Every source's article pages by outcome (sources without any are
    /// absent), by source name.
    pub async fn page_counts(&self) -> Result<HashMap<String, PageCounts>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT s.name, p.outcome,
                    CASE WHEN p.next_attempt_at IS NULL THEN 0 ELSE 1 END AS retrying,
                    COUNT(*)
             FROM article_pages p JOIN sources s ON s.id = p.source_id
             GROUP BY s.name, p.outcome, retrying",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts: HashMap<String, PageCounts> = HashMap::new();
        for (source, outcome, retrying, n) in rows {
            let c = counts.entry(source).or_default();
            match (outcome.as_str(), retrying) {
                ("extracted", _) => c.extracted += n,
                (_, 1) => c.retrying += n,
                _ => c.kept += n,
            }
        }
        let errors: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.name, p.error FROM article_pages p JOIN sources s ON s.id = p.source_id
             WHERE p.error IS NOT NULL AND p.fetched_at = (SELECT MAX(q.fetched_at)
                 FROM article_pages q WHERE q.source_id = p.source_id AND q.error IS NOT NULL)",
        )
        .fetch_all(&self.pool)
        .await?;
        for (source, error) in errors {
            if let Some(c) = counts.get_mut(&source) {
                c.last_error = Some(error);
            }
        }
        Ok(counts)
    }
}
