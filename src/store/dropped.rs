//! Entries `[[rule]]`s dropped (docs/CONFIG.md "Rules"): remembered per
//! source and entry key with the source's rules' hash and the entry's text
//! hash, so an unchanged entry under unchanged rules is not judged (nor
//! counted) again on every fetch; and stored articles that `tributary rules
//! apply` removes. Rows expire with the tombstones (`prune.rs`).

use super::prune::LAST_REMOVAL;
use super::read::{article, ARTICLE_SELECT};
use super::sql::{statement_chunks, Params};
use super::{from_micros, micros, Store, StoreError};
use crate::model::{Article, DroppedEntry};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One remembered drop, as `explain` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedRecord {
    pub source: String,
    pub entry: DroppedEntry,
    pub dropped_at: DateTime<Utc>,
}

/// A stored article with each entry that carries it, for `rules apply`.
#[derive(Debug, Clone)]
pub struct StoredArticle {
    pub article: Article,
    /// The article's text hash and canonical link, as its entries'.
    pub fingerprint: String,
    pub canonical_url: Option<String>,
    /// (source id, source name, entry key), first seen first.
    pub entries: Vec<(i64, String, String)>,
}

/// An article `rules apply` removes, with the drops each of its entries
/// is remembered as: (source id, the source's rules' hash, the drop).
#[derive(Debug, Clone)]
pub struct Removal {
    pub article_id: i64,
    pub drops: Vec<(i64, String, DroppedEntry)>,
}

impl Store {
    /// Which of `keys` (entries of `source_id`) were dropped under rules
    /// hashed `rules`: entry key -> the text hash it was dropped with. Read
    /// for one refresh's keys only, so a source with many remembered drops
    /// costs no more than its feed.
    pub async fn remembered_drops(
        &self,
        source_id: i64,
        rules: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut remembered = HashMap::new();
        for chunk in statement_chunks(keys, 256) {
            let list = Params::numbered_from(3).list(chunk.len());
            let sql = format!(
                "SELECT entry_key, fingerprint FROM dropped_entries
                 WHERE source_id = $1 AND rules = $2 AND entry_key IN ({list})"
            );
            let query = chunk.iter().fold(
                sqlx::query_as(&sql).bind(source_id).bind(rules),
                |q, key| q.bind(*key),
            );
            let rows: Vec<(String, String)> = query.fetch_all(&self.pool).await?;
            remembered.extend(rows);
        }
        Ok(remembered)
    }

    /// Remembers `drops` of `source_id` under rules hashed `rules`, replacing
    /// what was remembered of the same entries.
    pub async fn remember_drops(
        &self,
        source_id: i64,
        rules: &str,
        drops: &[DroppedEntry],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if drops.is_empty() {
            return Ok(());
        }
        let _guard = self.write_guard().await;
        let mut tx = self.writer.begin().await?;
        for drop in drops {
            remember(&mut tx, source_id, rules, drop, micros(now)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The remembered drop whose link, canonical link or entry key (with or
    /// without its `guid:`/`link:` prefix) is `key`, latest first.
    pub async fn dropped_entry(&self, key: &str) -> Result<Option<DroppedRecord>, StoreError> {
        let canonical = crate::dedup::canonical_url(key);
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            i64,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.name, d.entry_key, d.fingerprint, d.canonical_url, d.link, d.title,
                    d.rule, d.why, d.dropped_at
             FROM dropped_entries d JOIN sources s ON s.id = d.source_id
             WHERE d.link = $1 OR d.canonical_url = $2 OR d.entry_key = $1
                OR d.entry_key = $3 OR d.entry_key = $4
             ORDER BY d.dropped_at DESC LIMIT 1",
        )
        .bind(key)
        .bind(canonical)
        .bind(format!("guid:{key}"))
        .bind(format!("link:{key}"))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(source, entry_key, fingerprint, canonical_url, link, title, rule, why, at)| {
                DroppedRecord {
                    source,
                    entry: DroppedEntry {
                        entry_key,
                        fingerprint,
                        canonical_url,
                        link,
                        title,
                        rule,
                        why,
                    },
                    dropped_at: from_micros(at),
                }
            },
        ))
    }

    /// Up to `limit` stored articles with ids above `after`, in id order,
    /// each with its tags and entries: `rules apply` walks the store with
    /// this, one bounded page at a time.
    pub async fn stored_articles(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let sql = format!("{ARTICLE_SELECT} WHERE a.id > $1 ORDER BY a.id LIMIT {limit}");
        let rows = sqlx::query(&sql).bind(after).fetch_all(&self.pool).await?;
        let mut articles = rows.iter().map(article).collect::<Result<Vec<_>, _>>()?;
        self.attach_tags_and_sources(&mut articles).await?;
        let (Some(first), Some(last)) = (articles.first(), articles.last()) else {
            return Ok(Vec::new());
        };
        let (first, last) = (first.id, last.id);
        let mut keys: HashMap<i64, (String, Option<String>)> =
            sqlx::query_as::<_, (i64, String, Option<String>)>(
                "SELECT id, fingerprint, canonical_url FROM articles WHERE id BETWEEN $1 AND $2",
            )
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(id, fingerprint, url)| (id, (fingerprint, url)))
            .collect();
        let mut entries: HashMap<i64, Vec<(i64, String, String)>> = HashMap::new();
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT x.article_id, x.source_id, s.name, x.entry_key FROM article_sources x
             JOIN sources s ON s.id = x.source_id
             WHERE x.article_id BETWEEN $1 AND $2 ORDER BY x.article_id, x.first_seen, s.id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        for (article_id, source_id, name, key) in rows {
            entries
                .entry(article_id)
                .or_default()
                .push((source_id, name, key));
        }
        Ok(articles
            .into_iter()
            .map(|article| {
                let (fingerprint, canonical_url) = keys.remove(&article.id).unwrap_or_default();
                StoredArticle {
                    entries: entries.remove(&article.id).unwrap_or_default(),
                    fingerprint,
                    canonical_url,
                    article,
                }
            })
            .collect())
    }

    /// Deletes the articles of `removals` and remembers their entries as
    /// dropped, in one transaction; then served feeds change. Returns how
    /// many articles were deleted.
    pub async fn remove_dropped(
        &self,
        removals: &[Removal],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if removals.is_empty() {
            return Ok(0);
        }
        let now_us = micros(now);
        let deleted = {
            let _guard = self.write_guard().await;
            let mut tx = self.writer.begin().await?;
            let mut deleted = 0;
            for removal in removals {
                for (source_id, rules, drop) in &removal.drops {
                    remember(&mut tx, *source_id, rules, drop, now_us).await?;
                }
                // Children first, as prune does: whether or not the backend
                // enforces the schema's ON DELETE CASCADE.
                for delete in [
                    "DELETE FROM article_tags WHERE article_id = $1",
                    "DELETE FROM article_sources WHERE article_id = $1",
                    "DELETE FROM article_links WHERE article_id = $1",
                    "DELETE FROM article_bands WHERE article_id = $1",
                ] {
                    sqlx::query(delete)
                        .bind(removal.article_id)
                        .execute(&mut *tx)
                        .await?;
                }
                deleted += sqlx::query("DELETE FROM articles WHERE id = $1")
                    .bind(removal.article_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            sqlx::query(
                "DELETE FROM tags WHERE NOT EXISTS
                 (SELECT 1 FROM article_tags t WHERE t.term = tags.term)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(LAST_REMOVAL)
            .bind(now_us.to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if deleted > 0 {
                self.bump_version().await?;
            }
            deleted
        };
        Ok(deleted)
    }
}

async fn remember(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    source_id: i64,
    rules: &str,
    drop: &DroppedEntry,
    now_us: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dropped_entries (source_id, entry_key, rules, fingerprint, canonical_url,
             link, title, rule, why, dropped_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (source_id, entry_key) DO UPDATE SET rules = excluded.rules,
             fingerprint = excluded.fingerprint, canonical_url = excluded.canonical_url,
             link = excluded.link, title = excluded.title, rule = excluded.rule,
             why = excluded.why, dropped_at = excluded.dropped_at",
    )
    .bind(source_id)
    .bind(&drop.entry_key)
    .bind(rules)
    .bind(&drop.fingerprint)
    .bind(&drop.canonical_url)
    .bind(&drop.link)
    .bind(&drop.title)
    .bind(&drop.rule)
    .bind(&drop.why)
    .bind(now_us)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
