//! Ingest: one transaction per source refresh, identity enforced by the
//! database's unique keys (CONTRACT §4).

use super::sources::record_fetch_in;
use super::{
    micros, near_dup, retry_after_conflict, FetchRecord, NearDuplicates, Store, StoreError,
};
use crate::cluster::Signature;
use crate::model::{NewArticle, Tag};
use chrono::{DateTime, Utc};
use sqlx::{Any, Transaction};

/// What one ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// New articles.
    pub inserted: usize,
    /// Articles whose title or content changed.
    pub updated: usize,
    /// Entries already stored by another source (or with the same text):
    /// linked to the existing article, tags merged.
    pub merged: usize,
    /// Entries seen before, unchanged.
    pub unchanged: usize,
    /// Entries whose article was pruned before (a tombstone matched): not
    /// stored again.
    pub tombstoned: usize,
    /// Of `merged`: another outlet's copy under another URL, recognized by
    /// its text (near-duplicate).
    pub clustered: usize,
}

pub(super) struct Existing {
    pub(super) id: i64,
    pub(super) fingerprint: String,
    pub(super) updated: i64,
    pub(super) source_id: i64,
}

impl Store {
    /// Stores the entries of one refresh of `source_id` and its fetch record
    /// in one transaction: a crash leaves either all of it or none.
    pub async fn ingest(
        &self,
        source_id: i64,
        articles: &[NewArticle],
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        let _guard = self.write_guard().await;
        let mut tries = 1;
        loop {
            match self.ingest_once(source_id, articles, record).await {
                Err(e) if retry_after_conflict(&e, tries).await => tries += 1,
                done => return done,
            }
        }
    }

    async fn ingest_once(
        &self,
        source_id: i64,
        articles: &[NewArticle],
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes SQLite's write lock at once (waiting out
        // another process via busy_timeout) instead of upgrading a read lock
        // later, which fails with SQLITE_BUSY under contention.
        record_fetch_in(&mut tx, source_id, record).await?;
        // Tags in one sorted pass: concurrent ingests on several instances
        // then take their locks in one order, which keeps PostgreSQL
        // deadlocks (and retries) rare.
        insert_tags(&mut tx, articles).await?;
        let mut stats = IngestStats::default();
        for article in articles {
            let policy = self.near_duplicates.as_ref();
            ingest_one(&mut tx, source_id, article, record.at, policy, &mut stats).await?;
        }
        tx.commit().await?;
        Ok(stats)
    }
}

async fn ingest_one(
    tx: &mut Transaction<'static, Any>,
    source_id: i64,
    article: &NewArticle,
    now: DateTime<Utc>,
    near_duplicates: Option<&NearDuplicates>,
    stats: &mut IngestStats,
) -> Result<(), StoreError> {
    let now_us = micros(now);
    let published = article.published.map(micros).unwrap_or(now_us);
    // Computed only for entries no key identifies: refetches skip it.
    let mut signature = None;
    let mut near = None;
    let (unchanged_before, inserted_before) = (stats.unchanged, stats.inserted);
    let known_here = find_by_entry_key(tx, source_id, &article.entry_key).await?;
    let seen_here_before = known_here.is_some();
    // Retention (store/prune.rs): a story pruned while still in a source's
    // feed has a tombstone of its keys and must not come back as new.
    if !seen_here_before && super::prune::tombstoned(tx, source_id, article, now_us).await? {
        stats.tombstoned += 1;
        return Ok(());
    }
    let existing = match known_here {
        Some(existing) => Some(existing),
        None => match (find_by_identity(tx, article).await?, near_duplicates) {
            (Some(existing), _) => Some(existing),
            (None, Some(policy)) => {
                signature = Signature::of(
                    &article.title,
                    article.summary.as_deref(),
                    article.content.as_deref(),
                );
                match &signature {
                    Some(sig) => near_dup::find(tx, source_id, sig, published, policy).await?,
                    None => None,
                }
                .map(|(existing, similarity)| {
                    near = Some(similarity);
                    existing
                })
            }
            (None, None) => None,
        },
    };
    let article_id = match existing {
        Some(existing) => {
            let edited = existing.fingerprint != article.fingerprint;
            // Only the first source's copy may rewrite the article: another
            // outlet's variant of the same link must not flip it back and forth.
            if edited && existing.source_id == source_id {
                update_article(tx, &existing, article, now_us).await?;
                stats.updated += 1;
            } else if seen_here_before {
                stats.unchanged += 1;
            } else {
                stats.merged += 1;
            }
            if let Some(similarity) = near {
                near_dup::link(tx, existing.id, source_id, article, similarity, now_us).await?;
                stats.clustered += 1;
            }
            existing.id
        }
        None => match insert_article(tx, source_id, article, now_us).await? {
            Some(id) => {
                stats.inserted += 1;
                if let Some(sig) = &signature {
                    near_dup::index(tx, id, sig, published).await?;
                }
                id
            }
            // Another writer stored the same identity since we looked.
            None => {
                stats.merged += 1;
                find_by_identity(tx, article)
                    .await?
                    .map(|e| e.id)
                    .ok_or(sqlx::Error::RowNotFound)?
            }
        },
    };
    // An entry this source already gave, unchanged, has nothing new to
    // link or tag: refetches stay cheap.
    if seen_here_before && stats.unchanged > unchanged_before {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO article_sources (source_id, entry_key, article_id, first_seen)
         VALUES ($1, $2, $3, $4) ON CONFLICT (source_id, entry_key) DO NOTHING",
    )
    .bind(source_id)
    .bind(&article.entry_key)
    .bind(article_id)
    .bind(now_us)
    .execute(&mut **tx)
    .await?;
    merge_tags(tx, article_id, article, stats.inserted > inserted_before).await
}

async fn find_by_entry_key(
    tx: &mut Transaction<'static, Any>,
    source_id: i64,
    entry_key: &str,
) -> Result<Option<Existing>, StoreError> {
    let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT a.id, a.fingerprint, a.updated, a.source_id
         FROM article_sources s JOIN articles a ON a.id = s.article_id
         WHERE s.source_id = $1 AND s.entry_key = $2",
    )
    .bind(source_id)
    .bind(entry_key)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(existing))
}

/// The article with the same canonical URL, uid or (for entries with
/// neither id nor link) the same text.
async fn find_by_identity(
    tx: &mut Transaction<'static, Any>,
    article: &NewArticle,
) -> Result<Option<Existing>, StoreError> {
    let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT id, fingerprint, updated, source_id FROM articles
         WHERE uid = $1 OR canonical_url = $2 OR content_key = $3
            OR id IN (SELECT article_id FROM article_links WHERE canonical_url = $2)
         ORDER BY id LIMIT 1",
    )
    .bind(&article.uid)
    .bind(&article.canonical_url)
    .bind(&article.content_key)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(existing))
}

fn existing((id, fingerprint, updated, source_id): (i64, String, i64, i64)) -> Existing {
    Existing {
        id,
        fingerprint,
        updated,
        source_id,
    }
}

async fn insert_article(
    tx: &mut Transaction<'static, Any>,
    source_id: i64,
    article: &NewArticle,
    now_us: i64,
) -> Result<Option<i64>, StoreError> {
    // A missing date becomes first-seen time (CONTRACT §6).
    let published = article.published.map(micros).unwrap_or(now_us);
    let updated = article.updated.map(micros).unwrap_or(published);
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO articles (uid, canonical_url, content_key, link, title, summary, content,
                               author, published, updated, first_seen, fingerprint, source_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT DO NOTHING
         RETURNING id",
    )
    .bind(&article.uid)
    .bind(&article.canonical_url)
    .bind(&article.content_key)
    .bind(&article.link)
    .bind(&article.title)
    .bind(&article.summary)
    .bind(&article.content)
    .bind(&article.author)
    .bind(published)
    .bind(updated)
    .bind(now_us)
    .bind(&article.fingerprint)
    .bind(source_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

async fn update_article(
    tx: &mut Transaction<'static, Any>,
    existing: &Existing,
    article: &NewArticle,
    now_us: i64,
) -> Result<(), StoreError> {
    // `updated` moves forward only: to the source's own date when it says the
    // entry changed after what we stored, else to when we saw the change.
    let updated = article
        .updated
        .map(micros)
        .filter(|&u| u > existing.updated && u <= now_us)
        .unwrap_or(now_us)
        .max(existing.updated);
    sqlx::query(
        "UPDATE articles SET title = $1, summary = $2, content = $3, author = $4, link = $5,
                fingerprint = $6, updated = $7
         WHERE id = $8",
    )
    .bind(&article.title)
    .bind(&article.summary)
    .bind(&article.content)
    .bind(&article.author)
    .bind(&article.link)
    .bind(&article.fingerprint)
    .bind(updated)
    .bind(existing.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every tag of the batch, first spelling kept (CONTRACT §3).
async fn insert_tags(
    tx: &mut Transaction<'static, Any>,
    articles: &[NewArticle],
) -> Result<(), StoreError> {
    let mut tags: Vec<&Tag> = articles.iter().flat_map(|a| &a.tags).collect();
    tags.sort_by(|a, b| a.term.cmp(&b.term));
    tags.dedup_by(|a, b| a.term == b.term);
    for tag in tags {
        sqlx::query("INSERT INTO tags (term, label) VALUES ($1, $2) ON CONFLICT (term) DO NOTHING")
            .bind(&tag.term)
            .bind(&tag.label)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Tags are a union: a later copy adds tags, never removes them.
async fn merge_tags(
    tx: &mut Transaction<'static, Any>,
    article_id: i64,
    article: &NewArticle,
    new_article: bool,
) -> Result<(), StoreError> {
    // Tags from a later copy come after the first copy's, in their order.
    let first_position: i64 = if new_article {
        0
    } else {
        sqlx::query_scalar("SELECT COUNT(*) FROM article_tags WHERE article_id = $1")
            .bind(article_id)
            .fetch_one(&mut **tx)
            .await?
    };
    for (index, tag) in article.tags.iter().enumerate() {
        let position = first_position + index as i64;
        sqlx::query(
            "INSERT INTO article_tags (article_id, term, position, origin) VALUES ($1, $2, $3, $4)
             ON CONFLICT (article_id, term) DO NOTHING",
        )
        .bind(article_id)
        .bind(&tag.term)
        .bind(position)
        .bind(article.tag_origins.get(index))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
