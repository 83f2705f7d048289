//! Near-duplicate stories at ingest (CONTRACT §4): a new entry that no key
//! identifies is compared with stored stories sharing one of its LSH band
//! keys and published within the window; a match makes it one more
//! outlet's copy of that article.

use super::write::Existing;
use super::{NearDuplicates, StoreError};
use crate::cluster::Signature;
use crate::model::NewArticle;
use sqlx::{Any, Transaction};

/// The stored story `signature` is a copy of, with the similarity, if any.
/// Articles this source already carries are never candidates: one feed's
/// own entries are distinct stories, however alike.
pub(super) async fn find(
    tx: &mut Transaction<'static, Any>,
    source_id: i64,
    signature: &Signature,
    published: i64,
    policy: &NearDuplicates,
) -> Result<Option<(Existing, f64)>, StoreError> {
    let keys = signature.band_keys();
    let window = policy.window.num_microseconds().unwrap_or(i64::MAX / 4);
    let placeholders = super::sources::placeholders(4, keys.len());
    let sql = format!(
        "SELECT a.id, a.fingerprint, a.updated, a.source_id, a.signature FROM articles a
         WHERE a.id IN (SELECT DISTINCT b.article_id FROM article_bands b
                        WHERE b.band_key IN ({placeholders}) AND b.published BETWEEN $2 AND $3)
           AND NOT EXISTS (SELECT 1 FROM article_sources x WHERE x.article_id = a.id AND x.source_id = $1)
         ORDER BY a.id"
    );
    let mut query = sqlx::query_as::<_, (i64, String, i64, i64, Option<Vec<u8>>)>(&sql)
        .bind(source_id)
        .bind(published.saturating_sub(window))
        .bind(published.saturating_add(window));
    for key in &keys {
        query = query.bind(*key);
    }
    let mut best: Option<(Existing, f64)> = None;
    for (id, fingerprint, updated, first_source, stored) in query.fetch_all(&mut **tx).await? {
        let Some(other) = stored.as_deref().and_then(Signature::from_bytes) else {
            continue;
        };
        let similarity = signature.similarity(&other);
        if signature.same_story(&other, policy.threshold)
            && best.as_ref().is_none_or(|(_, s)| similarity > *s)
        {
            let existing = Existing {
                id,
                fingerprint,
                updated,
                source_id: first_source,
            };
            best = Some((existing, similarity));
        }
    }
    Ok(best)
}

/// Makes a new article findable by later copies.
pub(super) async fn index(
    tx: &mut Transaction<'static, Any>,
    article_id: i64,
    signature: &Signature,
    published: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE articles SET signature = $1 WHERE id = $2")
        .bind(signature.to_bytes())
        .bind(article_id)
        .execute(&mut **tx)
        .await?;
    for key in signature.band_keys() {
        sqlx::query(
            "INSERT INTO article_bands (band_key, article_id, published) VALUES ($1, $2, $3)
             ON CONFLICT (band_key, article_id) DO NOTHING",
        )
        .bind(key)
        .bind(article_id)
        .bind(published)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Records another outlet's copy: its link is served as `rel="related"`
/// and its canonical URL resolves to the article from now on.
pub(super) async fn link(
    tx: &mut Transaction<'static, Any>,
    article_id: i64,
    source_id: i64,
    article: &NewArticle,
    similarity: f64,
    now_us: i64,
) -> Result<(), StoreError> {
    let (Some(canonical), Some(url)) = (&article.canonical_url, &article.link) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO article_links (canonical_url, article_id, source_id, url, similarity, first_seen)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (canonical_url) DO NOTHING",
    )
    .bind(canonical)
    .bind(article_id)
    .bind(source_id)
    .bind(url)
    .bind(similarity)
    .bind(now_us)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
