//! Near-duplicate stories at ingest (CONTRACT §4): a new entry that no key
//! identifies is compared with stored stories sharing one of its LSH band
//! keys and published within the window; a match makes it one more
//! outlet's copy of that article.

use super::exec::{Exec, Value};
use super::write::{insert_rows, statement_chunks, Existing, Params};
use super::{Backend, NearDuplicates, StoreError};
use crate::cluster::Signature;
use crate::model::NewArticle;
use std::collections::{HashMap, HashSet};

/// The stored stories that an ingest's new entries may be copies of: those
/// sharing one of their LSH band keys, published within the window of one
/// of them, and not carried by the ingesting source, read in a few
/// statements for the whole batch.
#[derive(Default)]
pub(super) struct Candidates {
    /// Band key -> (article, published).
    bands: HashMap<i64, Vec<(i64, i64)>>,
    /// Article -> what the ingest needs of it, and its signature.
    stories: HashMap<i64, (Existing, Option<Signature>)>,
}

/// id, fingerprint, updated, source_id, signature.
type StoryRow = (i64, String, i64, i64, Option<Vec<u8>>);

/// Keys per lookup statement, well below both backends' parameter limits.
const CHUNK: usize = 2_000;

impl Candidates {
    /// The candidates of `wanted`: (signature, published) of the entries.
    pub(super) async fn load<E: Exec>(
        tx: &mut E,
        backend: Backend,
        source_id: i64,
        wanted: &[(&Signature, i64)],
        policy: &NearDuplicates,
    ) -> Result<Candidates, StoreError> {
        let mut candidates = Candidates::default();
        let window = policy.window.num_microseconds().unwrap_or(i64::MAX / 4);
        let (Some(first), Some(last)) = (
            wanted.iter().map(|(_, p)| *p).min(),
            wanted.iter().map(|(_, p)| *p).max(),
        ) else {
            return Ok(candidates);
        };
        let mut keys: Vec<i64> = wanted.iter().flat_map(|(s, _)| s.band_keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(CHUNK) {
            let mut params = Params::new(backend);
            let list = params.list(chunk.len());
            let [from, to, source] = params.array();
            let sql = format!(
                "SELECT b.band_key, b.article_id, b.published FROM article_bands b
                 WHERE b.band_key IN ({list}) AND b.published BETWEEN {from} AND {to}
                   AND NOT EXISTS (SELECT 1 FROM article_sources x
                                   WHERE x.article_id = b.article_id AND x.source_id = {source})"
            );
            let mut args: Vec<Value> = chunk.iter().map(|&key| Value::Int(key)).collect();
            args.extend([
                Value::Int(first.saturating_sub(window)),
                Value::Int(last.saturating_add(window)),
                Value::Int(source_id),
            ]);
            let rows: Vec<(i64, i64, i64)> = tx.fetch_all(&sql, &args).await?;
            for (key, article_id, published) in rows {
                candidates
                    .bands
                    .entry(key)
                    .or_default()
                    .push((article_id, published));
            }
        }
        let mut ids: Vec<i64> = candidates
            .bands
            .values()
            .flatten()
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, fingerprint, updated, source_id, signature FROM articles WHERE id IN ({})",
                Params::new(backend).list(chunk.len())
            );
            let args: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
            let rows: Vec<StoryRow> = tx.fetch_all(&sql, &args).await?;
            for (id, fingerprint, updated, source_id, stored) in rows {
                let existing = Existing {
                    id,
                    fingerprint,
                    updated,
                    source_id,
                };
                let signature = stored.as_deref().and_then(Signature::from_bytes);
                candidates.stories.insert(id, (existing, signature));
            }
        }
        Ok(candidates)
    }

    /// The stored story `signature` is a copy of, with the similarity, if
    /// any; the first best by id. Articles this source carries are never
    /// candidates: one feed's own entries are distinct stories, however
    /// alike (`linked_in_batch`: those this ingest links to the source, not
    /// yet written).
    pub(super) fn find(
        &self,
        signature: &Signature,
        published: i64,
        policy: &NearDuplicates,
        linked_in_batch: &HashSet<i64>,
    ) -> Option<(Existing, f64)> {
        let window = policy.window.num_microseconds().unwrap_or(i64::MAX / 4);
        let (from, to) = (
            published.saturating_sub(window),
            published.saturating_add(window),
        );
        let mut ids: Vec<i64> = signature
            .band_keys()
            .iter()
            .filter_map(|key| self.bands.get(key))
            .flatten()
            .filter(|(id, published)| {
                (from..=to).contains(published) && !linked_in_batch.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut best: Option<(&Existing, f64)> = None;
        for id in ids {
            let Some((existing, Some(other))) = self.stories.get(&id) else {
                continue;
            };
            let similarity = signature.similarity(other);
            if signature.same_story(other, policy.threshold)
                && best.as_ref().is_none_or(|(_, s)| similarity > *s)
            {
                best = Some((existing, similarity));
            }
        }
        best.map(|(existing, similarity)| (existing.clone(), similarity))
    }
}

/// Makes new articles findable by later copies: their LSH band keys, as
/// (band key, article, published) rows, in multi-row inserts (the
/// signatures themselves go into the articles' INSERT).
pub(super) async fn index<E: Exec>(
    tx: &mut E,
    backend: Backend,
    bands: &[(i64, i64, i64)],
) -> Result<(), StoreError> {
    for chunk in statement_chunks(bands, insert_rows(tx)) {
        let sql = format!(
            "INSERT INTO article_bands (band_key, article_id, published) VALUES {}
             ON CONFLICT (band_key, article_id) DO NOTHING",
            Params::new(backend).rows(chunk.len(), 3)
        );
        let args: Vec<Value> = chunk
            .iter()
            .flat_map(|&(key, article_id, published)| [key, article_id, published].map(Value::Int))
            .collect();
        tx.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Records another outlet's copy: its link is served as `rel="related"`
/// and its canonical URL resolves to the article from now on.
pub(super) async fn link<E: Exec>(
    tx: &mut E,
    article_id: i64,
    source_id: i64,
    article: &NewArticle,
    similarity: f64,
    now_us: i64,
) -> Result<(), StoreError> {
    let (Some(canonical), Some(url)) = (&article.canonical_url, &article.link) else {
        return Ok(());
    };
    tx.execute(
        "INSERT INTO article_links (canonical_url, article_id, source_id, url, similarity, first_seen)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (canonical_url) DO NOTHING",
        &[
            canonical.into(),
            article_id.into(),
            source_id.into(),
            url.into(),
            similarity.into(),
            now_us.into(),
        ],
    )
    .await?;
    Ok(())
}
