//! Near-duplicate stories at ingest (docs/TAGS-AND-DEDUP.md "How deduplication works"): a new entry that no key
//! identifies is compared with stored stories sharing one of its LSH band
//! keys and published within the window; a match makes it one more
//! outlet's copy of that article.

use super::exec::{Exec, Value};
use super::sql::{insert_rows, statement_chunks, Params, SqlPerLength};
use super::{Backend, NearDuplicates, Store, StoreError};
use crate::cluster::Signature;
use crate::model::NewArticle;
use foldhash::{HashMap, HashSet};

/// A stored article, as an ingest compares an entry with it.
#[derive(Clone)]
pub(super) struct Existing {
    pub(super) id: i64,
    pub(super) fingerprint: String,
    pub(super) updated: i64,
    pub(super) source_id: i64,
}

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
        let window = policy.window_us();
        let (Some(first), Some(last)) = (
            wanted.iter().map(|(_, p)| *p).min(),
            wanted.iter().map(|(_, p)| *p).max(),
        ) else {
            return Ok(candidates);
        };
        let (from, to) = (first.saturating_sub(window), last.saturating_add(window));
        let mut keys: Vec<i64> = wanted.iter().flat_map(|(s, _)| s.band_keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        for (key, article_id, published) in
            sharing_a_key(tx, backend, source_id, &keys, (from, to)).await?
        {
            candidates
                .bands
                .entry(key)
                .or_default()
                .push((article_id, published));
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
                "SELECT id, fingerprint, updated, source_id, signature FROM articles
                 WHERE id IN ({})",
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
        let window = policy.window_us();
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

/// (band key, article, published) of the stored stories sharing one of
/// `keys`, published within `range`, not carried by `source_id`.
async fn sharing_a_key<E: Exec>(
    tx: &mut E,
    backend: Backend,
    source_id: i64,
    keys: &[i64],
    (from, to): (i64, i64),
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        let mut params = Params::new(backend);
        let list = params.list(chunk.len());
        let [first, last, source] = params.array();
        let sql = format!(
            "SELECT b.band_key, b.article_id, b.published FROM article_bands b
             WHERE b.band_key IN ({list}) AND b.published BETWEEN {first} AND {last}
               AND NOT EXISTS (SELECT 1 FROM article_sources x
                               WHERE x.article_id = b.article_id AND x.source_id = {source})"
        );
        let mut args: Vec<Value> = chunk.iter().map(|&key| Value::Int(key)).collect();
        args.extend([Value::Int(from), Value::Int(to), Value::Int(source_id)]);
        rows.extend(tx.fetch_all::<(i64, i64, i64)>(&sql, &args).await?);
    }
    Ok(rows)
}

/// Makes new articles findable by later copies: their LSH band keys, as
/// (band key, article, published) rows, in multi-row inserts (the
/// signatures themselves go into the articles' INSERT).
pub(super) async fn index<E: Exec>(
    tx: &mut E,
    backend: Backend,
    bands: &[(i64, i64, i64)],
) -> Result<(), StoreError> {
    let mut sql = SqlPerLength::default();
    for chunk in statement_chunks(bands, insert_rows(tx)) {
        let sql = sql.get(chunk.len(), |len| {
            format!(
                "INSERT INTO article_bands (band_key, article_id, published) VALUES {}
                 ON CONFLICT (band_key, article_id) DO NOTHING",
                Params::new(backend).rows(len, 3)
            )
        });
        let args: Vec<Value> = chunk
            .iter()
            .flat_map(|&(key, article_id, published)| [key, article_id, published].map(Value::Int))
            .collect();
        tx.execute(sql, &args).await?;
    }
    Ok(())
}

/// The `meta` row a migration leaves when stored signatures may lack their
/// band keys (SQLite kept them in memory before they were a table there).
const BANDS_TO_FILL: &str = "bands_to_fill";

/// Articles read per statement while filling the band keys.
const FILL_PAGE: i64 = 2_000;

/// The band-key index, as its migration (20261208000000) creates it.
const BAND_INDEX: &str = "CREATE INDEX IF NOT EXISTS article_bands_key \
     ON article_bands (band_key, published)";

impl Store {
    /// Writes the band keys of every stored signature that has none, once
    /// after the migration asking for it, in one transaction (the row that
    /// asks goes with it). On SQLite the key index is built after the rows,
    /// by one sort, rather than row by row.
    pub(super) async fn fill_bands(&self) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.writer.begin().await?;
        let conn: &mut sqlx::AnyConnection = &mut tx;
        // Deleted first: a second instance starting at the same time waits
        // for this one's commit, then finds nothing to do.
        let asked = sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(BANDS_TO_FILL)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if asked == 0 {
            return Ok(());
        }
        let backend = self.backend();
        if backend == Backend::Sqlite {
            sqlx::query("DROP INDEX IF EXISTS article_bands_key")
                .execute(&mut *conn)
                .await?;
        }
        let mut after = 0;
        let mut filled = 0;
        loop {
            let stories: Vec<(i64, i64, Option<Vec<u8>>)> = conn
                .fetch_all(
                    "SELECT id, published, signature FROM articles
                     WHERE id > $1 AND signature IS NOT NULL AND NOT EXISTS
                       (SELECT 1 FROM article_bands b WHERE b.article_id = articles.id)
                     ORDER BY id LIMIT $2",
                    &[Value::Int(after), Value::Int(FILL_PAGE)],
                )
                .await?;
            let Some(&(last, _, _)) = stories.last() else {
                break;
            };
            after = last;
            let rows: Vec<(i64, i64, i64)> = stories
                .iter()
                .filter_map(|(id, published, bytes)| {
                    let signature = Signature::from_bytes(bytes.as_deref()?)?;
                    Some(
                        signature
                            .band_keys()
                            .into_iter()
                            .map(|key| (key, *id, *published)),
                    )
                })
                .flatten()
                .collect();
            filled += rows.len();
            index(conn, backend, &rows).await?;
        }
        if backend == Backend::Sqlite {
            sqlx::query(BAND_INDEX).execute(&mut *conn).await?;
        }
        tx.commit().await?;
        if filled > 0 {
            tracing::info!(
                rows = filled,
                "near-duplicate band keys filled from the stored signatures"
            );
        }
        Ok(())
    }
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
