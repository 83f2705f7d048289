//! Near-duplicate stories at ingest (docs/TAGS-AND-DEDUP.md "How deduplication works"): a new entry that no key
//! identifies is compared with stored stories sharing one of its LSH band
//! keys and published within the window; a match makes it one more
//! outlet's copy of that article.

use super::band_index;
use super::exec::{Exec, Value};
use super::sql::Params;
use super::{Backend, NearDuplicates, StoreError};
use crate::cluster::Signature;
use crate::model::NewArticle;
use foldhash::{HashMap, HashSet, HashSetExt};

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

/// A [`StoryRow`] and the published time its band row holds.
type BandStoryRow = (i64, String, i64, i64, Option<Vec<u8>>, i64);

/// Stories per lookup statement, well below both backends' parameter limits.
const CHUNK: usize = 2_000;

/// Where an ingest finds the band keys of stored stories, and files those
/// of its new articles; the batch (write.rs) does not tell them apart.
pub(super) enum BandKeys<'a> {
    /// The `article_bands` table (PostgreSQL), and the new articles'
    /// (band key, article, published), written at the end of the ingest.
    Table(Vec<(i64, i64, i64)>),
    /// SQLite's writer keeps them in memory (band_index.rs says why).
    Memory(&'a mut band_index::Loaded),
}

impl BandKeys<'_> {
    /// The stored stories that entries with `wanted` (signature,
    /// published) may be copies of.
    pub(super) async fn candidates<E: Exec>(
        &mut self,
        tx: &mut E,
        backend: Backend,
        source_id: i64,
        wanted: &[(&Signature, i64)],
        policy: &NearDuplicates,
    ) -> Result<Candidates, StoreError> {
        let memory = match self {
            BandKeys::Memory(loaded) => Some(&mut **loaded),
            BandKeys::Table(_) => None,
        };
        Candidates::load(tx, backend, source_id, wanted, policy, memory).await
    }

    /// Makes the new article `id` findable by later copies, by the band
    /// keys of its `signature` (an article without one only counts as
    /// stored).
    pub(super) fn add(&mut self, id: i64, published: i64, signature: Option<&Signature>) {
        match (self, signature) {
            (BandKeys::Memory(memory), Some(sig)) => memory.add(id, published, &sig.band_keys()),
            (BandKeys::Memory(memory), None) => memory.stored(id),
            (BandKeys::Table(rows), Some(sig)) => {
                rows.extend(sig.band_keys().into_iter().map(|key| (key, id, published)));
            }
            (BandKeys::Table(_), None) => {}
        }
    }

    /// Writes the new articles' rows into the table, one per article
    /// with its keys as an array (memory holds its own already).
    pub(super) async fn write<E: Exec>(self, tx: &mut E) -> Result<(), StoreError> {
        let BandKeys::Table(rows) = self else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        // Three array literals, as `exec::unnest_insert` binds them (the
        // `Any` driver binds no arrays), grouped back into one row each.
        let column = |pick: fn(&(i64, i64, i64)) -> i64| {
            let items: Vec<String> = rows.iter().map(|row| pick(row).to_string()).collect();
            format!("{{{}}}", items.join(","))
        };
        let (keys, ids, published) = (
            column(|row| row.0),
            column(|row| row.1),
            column(|row| row.2),
        );
        tx.execute(
            "INSERT INTO article_bands (article_id, published, band_keys)
             SELECT article_id, MIN(published), array_agg(band_key)
             FROM UNNEST(CAST($1 AS TEXT)::int8[], CAST($2 AS TEXT)::int8[],
                         CAST($3 AS TEXT)::int8[]) AS r (band_key, article_id, published)
             GROUP BY article_id
             ON CONFLICT (article_id) DO NOTHING",
            &[
                Value::Text(&keys),
                Value::Text(&ids),
                Value::Text(&published),
            ],
        )
        .await?;
        Ok(())
    }
}

impl Candidates {
    /// The candidates of `wanted`: (signature, published) of the entries.
    /// `index`: SQLite's band keys in memory (band_index.rs); without it,
    /// the `article_bands` table.
    async fn load<E: Exec>(
        tx: &mut E,
        backend: Backend,
        source_id: i64,
        wanted: &[(&Signature, i64)],
        policy: &NearDuplicates,
        index: Option<&mut band_index::Loaded>,
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
        let Some(index) = index else {
            stories_in_table(tx, source_id, &keys, (from, to), &mut candidates).await?;
            return Ok(candidates);
        };
        let rows = rows_in_memory(tx, index, wanted, &keys, window, (from, to)).await?;
        for (key, article_id, published) in rows {
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
            let mut params = Params::new(backend);
            let list = params.list(chunk.len());
            let mut args: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
            // Memory holds the ingesting source's stories too.
            args.push(Value::Int(source_id));
            let sql = format!(
                "SELECT id, fingerprint, updated, source_id, signature FROM articles
                 WHERE id IN ({list})
                   AND NOT EXISTS (SELECT 1 FROM article_sources x
                                   WHERE x.article_id = articles.id AND x.source_id = {})",
                params.one()
            );
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

/// The stored stories sharing one of `keys`, published within `range`,
/// not carried by `source_id`, with the keys they share, in one statement.
/// Which keys a story shares comes from its stored signature, from which
/// its row's keys were made.
async fn stories_in_table<E: Exec>(
    tx: &mut E,
    source_id: i64,
    keys: &[i64],
    (from, to): (i64, i64),
    candidates: &mut Candidates,
) -> Result<(), StoreError> {
    // The keys as one array, read by a subquery: a planner that sees a
    // refresh's 800 keys estimates that most rows overlap them and scans
    // the table, comparing each row's 16 keys with all 800 (~100 µs a
    // row); not seeing them, it takes the GIN index.
    let literal: Vec<String> = keys.iter().map(i64::to_string).collect();
    let literal = format!("{{{}}}", literal.join(","));
    let rows: Vec<BandStoryRow> = tx
        .fetch_all(
            "SELECT a.id, a.fingerprint, a.updated, a.source_id, a.signature, b.published
             FROM article_bands b JOIN articles a ON a.id = b.article_id
             WHERE b.band_keys && (SELECT CAST($1 AS TEXT)::int8[])
               AND b.published BETWEEN $2 AND $3
               AND NOT EXISTS (SELECT 1 FROM article_sources x
                               WHERE x.article_id = b.article_id AND x.source_id = $4)",
            &[
                Value::Text(&literal),
                Value::Int(from),
                Value::Int(to),
                Value::Int(source_id),
            ],
        )
        .await?;
    let wanted: HashSet<i64> = keys.iter().copied().collect();
    for (id, fingerprint, updated, story_source, stored, published) in rows {
        let signature = stored.as_deref().and_then(Signature::from_bytes);
        for key in signature.iter().flat_map(Signature::band_keys) {
            if wanted.contains(&key) {
                candidates
                    .bands
                    .entry(key)
                    .or_default()
                    .push((id, published));
            }
        }
        let existing = Existing {
            id,
            fingerprint,
            updated,
            source_id: story_source,
        };
        candidates.stories.insert(id, (existing, signature));
    }
    Ok(())
}

/// The same from memory, any source's (the story query leaves out the
/// ingesting source's). Memory first reads back the stories it lacks for
/// entries dated before its horizon; past its budget, those entries'
/// windows are read from the articles' signatures instead.
async fn rows_in_memory<E: Exec>(
    tx: &mut E,
    index: &mut band_index::Loaded,
    wanted: &[(&Signature, i64)],
    keys: &[i64],
    window: i64,
    (from, to): (i64, i64),
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let earliest = wanted.iter().map(|(_, p)| p.saturating_sub(window)).min();
    if let Some(earliest) = earliest {
        index.cover(tx, earliest).await?;
    }
    let mut rows: Vec<(i64, i64, i64)> = keys
        .iter()
        .flat_map(|&key| {
            index
                .stories_under(key, from, to)
                .map(move |(id, published)| (key, id, published))
        })
        .collect();
    let mut older: Vec<(i64, i64)> = wanted
        .iter()
        .map(|(_, p)| (p.saturating_sub(window), p.saturating_add(window)))
        .filter(|(start, _)| !index.covers(*start))
        .collect();
    if older.is_empty() {
        return Ok(rows);
    }
    older.sort_unstable();
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for (start, end) in older {
        match spans.last_mut() {
            Some(span) if start <= span.1 => span.1 = span.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    let wanted_keys: HashSet<i64> = keys.iter().copied().collect();
    let mut seen = HashSet::new();
    for (start, end) in spans {
        band_index::for_each_story(tx, start, end, |id, published, signature| {
            let Some(signature) = signature.and_then(Signature::from_bytes) else {
                return true;
            };
            for key in signature.band_keys() {
                if wanted_keys.contains(&key) && seen.insert((key, id)) {
                    rows.push((key, id, published));
                }
            }
            true
        })
        .await?;
    }
    Ok(rows)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::band_index::tests::{database, signature, store};
    use crate::store::band_index::BandIndex;
    use crate::store::sqlite::exec::run_to_completion;

    #[test]
    fn entries_older_than_memory_holds_are_compared_with_the_table() {
        let mut conn = database();
        let (a, b) = (signature("alpha"), signature("beta"));
        store(&mut conn, 1, 9_000, &a);
        store(&mut conn, 2, 3_000, &a);
        store(&mut conn, 3, 2_000, &a);
        store(&mut conn, 4, 2_500, &b);
        // Room for one story: memory holds the newest only.
        let mut index = BandIndex::with_budget(1);
        let loaded = run_to_completion(index.current(&mut conn, 10_000, 1_000)).unwrap();
        let mut keys = a.band_keys();
        keys.sort_unstable();
        keys.dedup();
        let rows = run_to_completion(rows_in_memory(
            &mut conn,
            loaded,
            &[(&a, 2_500)],
            &keys,
            1_000,
            (1_500, 3_500),
        ))
        .unwrap();
        let mut ids: Vec<i64> = rows.iter().map(|(_, id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids,
            [2, 3],
            "the window's stories sharing a key, read from the table"
        );
        assert!(!loaded.covers(1_500), "memory kept to its budget");
    }
}
