//! SQLite: the LSH band keys of recent stories, kept in memory by the writer
//! thread (sqlite/writer_thread.rs) instead of in the `article_bands` table
//! (near_dup.rs).
//!
//! Each new article has 16 band keys spread at random over the key space. As
//! B-tree rows they dirtied most of that table's pages at every commit: 40%
//! of a bulk ingest's wall time (BENCHMARKS.md), more since the rest got
//! faster (docs/ARCHITECTURE.md, "The store"). Here they cost about 600
//! bytes per story published since `horizon`, read back from the articles'
//! stored signatures when the writer first needs them and after a prune.
//! The horizon starts two dedup windows back and moves back on demand (an
//! entry dated earlier) while memory holds at most `MAX_STORIES`; an entry
//! whose window reaches back further is compared with the stories the
//! `articles` table holds for that window instead.
//! PostgreSQL, shared by several instances, keeps the table; the ingest
//! reaches either through `near_dup::BandKeys`.

use super::exec::{Exec, Value};
use super::prune::{LAST_PRUNE, LAST_REMOVAL};
use super::StoreError;
use crate::cluster::Signature;
use foldhash::{HashMap, HashMapExt};

/// End of a chain of links.
const END: u32 = u32::MAX;

/// Rows per statement while reading signatures back.
const PAGE: i64 = 2_000;

/// Stories kept in memory before the oldest are left to the table: about
/// 60 MB (16 keys of a hash map entry and a link each, ~600 bytes a story).
/// A store gaining 15,000 articles a day holds about 90,000 within two
/// default (3-day) windows; a busier one keeps the newest 100,000, still
/// more than one window's worth for up to ~30,000 a day.
const MAX_STORIES: usize = 100_000;

/// The band keys, or nothing until the writer needs them.
pub(super) struct BandIndex {
    loaded: Option<Loaded>,
    max_stories: usize,
}

impl BandIndex {
    #[cfg(test)]
    pub(super) fn with_budget(max_stories: usize) -> BandIndex {
        BandIndex {
            loaded: None,
            max_stories,
        }
    }
}

impl Default for BandIndex {
    fn default() -> Self {
        BandIndex {
            loaded: None,
            max_stories: MAX_STORIES,
        }
    }
}

pub(super) struct Loaded {
    /// Every stored story published at or after this (µs) is here.
    horizon: i64,
    /// The highest article id read or written: higher ones were stored by
    /// another process since (SQLite's rowids grow under the write lock;
    /// only a prune can make them go back, and a prune reloads).
    high_water: i64,
    /// `meta.last_prune` when read: a prune by any process deleted stories.
    last_prune: Option<String>,
    /// Band key -> its newest link.
    heads: HashMap<i64, u32>,
    /// (story, the next older link of the same key).
    links: Vec<(u32, u32)>,
    /// (article id, published).
    stories: Vec<(i64, i64)>,
    /// `MAX_STORIES` (smaller in tests).
    max_stories: usize,
    /// The latest `cover` start refused for the budget: any earlier one
    /// would be too (until a reload), so it is refused without a count.
    refused: Option<i64>,
}

impl BandIndex {
    /// After a rollback or a panic: what memory holds may not be stored.
    pub(super) fn forget(&mut self) {
        self.loaded = None;
    }

    /// The index, current with the database as the caller's transaction
    /// (holding SQLite's write lock) sees it.
    pub(super) async fn current<E: Exec>(
        &mut self,
        tx: &mut E,
        now_us: i64,
        window_us: i64,
    ) -> Result<&mut Loaded, StoreError> {
        let last_prune = read_last_prune(tx).await?;
        let stale = self.loaded.as_ref().is_none_or(|loaded| {
            loaded.last_prune != last_prune || loaded.stories.len() > self.max_stories
        });
        if stale {
            self.loaded = None;
            let horizon = horizon(now_us, window_us);
            let loaded = Loaded::load(tx, horizon, last_prune, self.max_stories).await?;
            return Ok(self.loaded.insert(loaded));
        }
        let loaded = self.loaded.as_mut().expect("checked above");
        loaded.catch_up(tx).await?;
        Ok(loaded)
    }
}

/// Calls `visit` with (id, published, signature) of every article
/// published within `from..=to`, newest first, until it answers false; in
/// pages: the signatures of a large store are never all in memory at once.
pub(super) async fn for_each_story<E: Exec>(
    tx: &mut E,
    from: i64,
    to: i64,
    mut visit: impl FnMut(i64, i64, Option<&[u8]>) -> bool,
) -> Result<(), StoreError> {
    // Keyset paging on articles_published (published DESC, id DESC).
    let mut after = (to, i64::MAX);
    loop {
        let rows: Vec<(i64, i64, Option<Vec<u8>>)> = tx
            .fetch_all(
                "SELECT id, published, signature FROM articles
                 WHERE published >= $1 AND (published < $2 OR (published = $2 AND id < $3))
                 ORDER BY published DESC, id DESC LIMIT $4",
                &[
                    Value::Int(from),
                    Value::Int(after.0),
                    Value::Int(after.1),
                    Value::Int(PAGE),
                ],
            )
            .await?;
        let full = rows.len() as i64 == PAGE;
        for (id, published, signature) in &rows {
            if !visit(*id, *published, signature.as_deref()) {
                return Ok(());
            }
        }
        match rows.last() {
            Some((id, published, _)) if full => after = (*published, *id),
            _ => return Ok(()),
        }
    }
}

fn horizon(now_us: i64, window_us: i64) -> i64 {
    now_us.saturating_sub(window_us.saturating_mul(2))
}

/// `meta.last_prune` and `meta.last_removal` (`tributary rules apply`) as
/// one marker: either changing means stories were deleted.
async fn read_last_prune<E: Exec>(tx: &mut E) -> Result<Option<String>, StoreError> {
    let rows: Vec<(String, String)> = tx
        .fetch_all(
            "SELECT key, value FROM meta WHERE key IN ($1, $2) ORDER BY key",
            &[Value::Text(LAST_PRUNE), Value::Text(LAST_REMOVAL)],
        )
        .await?;
    Ok((!rows.is_empty()).then(|| {
        rows.iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(" ")
    }))
}

impl Loaded {
    async fn load<E: Exec>(
        tx: &mut E,
        horizon: i64,
        last_prune: Option<String>,
        max_stories: usize,
    ) -> Result<Loaded, StoreError> {
        let (high_water,): (i64,) = tx
            .fetch_optional("SELECT COALESCE(MAX(id), 0) FROM articles", &[])
            .await?
            .unwrap_or((0,));
        let mut loaded = Loaded {
            horizon,
            high_water,
            last_prune,
            heads: HashMap::new(),
            links: Vec::new(),
            stories: Vec::new(),
            max_stories,
            refused: None,
        };
        // Newest first: when the budget runs out, the horizon stops after
        // the last story read.
        let mut last = None;
        for_each_story(tx, horizon, i64::MAX, |id, published, signature| {
            if loaded.stories.len() >= max_stories && last != Some(published) {
                loaded.horizon = published.saturating_add(1);
                return false;
            }
            last = Some(published);
            loaded.add_stored(id, published, signature);
            true
        })
        .await?;
        Ok(loaded)
    }

    /// Reads the stories other processes stored since.
    async fn catch_up<E: Exec>(&mut self, tx: &mut E) -> Result<(), StoreError> {
        loop {
            let rows: Vec<(i64, i64, Option<Vec<u8>>)> = tx
                .fetch_all(
                    "SELECT id, published, signature FROM articles
                     WHERE id > $1 ORDER BY id LIMIT $2",
                    &[Value::Int(self.high_water), Value::Int(PAGE)],
                )
                .await?;
            let full = rows.len() as i64 == PAGE;
            for (id, published, signature) in rows {
                self.add_stored(id, published, signature.as_deref());
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn add_stored(&mut self, id: i64, published: i64, signature: Option<&[u8]>) {
        self.stored(id);
        if let Some(signature) = signature.and_then(Signature::from_bytes) {
            self.add(id, published, &signature.band_keys());
        }
    }

    /// An article id the writer stored (with or without band keys).
    pub(super) fn stored(&mut self, id: i64) {
        self.high_water = self.high_water.max(id);
    }

    /// Makes a story findable by its band keys.
    pub(super) fn add(&mut self, id: i64, published: i64, keys: &[i64]) {
        self.stored(id);
        if published < self.horizon {
            return;
        }
        let story = self.stories.len() as u32;
        self.stories.push((id, published));
        for &key in keys {
            let link = self.links.len() as u32;
            let next = self.heads.insert(key, link).unwrap_or(END);
            self.links.push((story, next));
        }
    }

    /// Makes memory hold every story published at or after `from`, if the
    /// budget allows: false when it does not (nothing changed then).
    pub(super) async fn cover<E: Exec>(
        &mut self,
        tx: &mut E,
        from: i64,
    ) -> Result<bool, StoreError> {
        if from >= self.horizon {
            return Ok(true);
        }
        if self.refused.is_some_and(|refused| from <= refused) {
            return Ok(false);
        }
        let (count,): (i64,) = tx
            .fetch_optional(
                "SELECT COUNT(*) FROM articles WHERE published >= $1 AND published < $2",
                &[Value::Int(from), Value::Int(self.horizon)],
            )
            .await?
            .unwrap_or((0,));
        if self.stories.len() + count as usize > self.max_stories {
            self.refused = Some(from);
            return Ok(false);
        }
        let older = self.horizon - 1;
        self.horizon = from;
        for_each_story(tx, from, older, |id, published, signature| {
            self.add_stored(id, published, signature);
            true
        })
        .await?;
        Ok(true)
    }

    /// True when every story published at or after `from` is here.
    pub(super) fn covers(&self, from: i64) -> bool {
        from >= self.horizon
    }

    /// The stories under `key` published within `from..=to`, as
    /// (article, published).
    pub(super) fn stories_under(
        &self,
        key: i64,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (i64, i64)> + '_ {
        let mut link = self.heads.get(&key).copied().unwrap_or(END);
        std::iter::from_fn(move || {
            while link != END {
                let (story, next) = self.links[link as usize];
                link = next;
                let (id, published) = self.stories[story as usize];
                if (from..=to).contains(&published) {
                    return Some((id, published));
                }
            }
            None
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::sqlite::exec::{in_memory, run_to_completion};

    /// The columns the index reads, in a database of its own.
    pub(in crate::store) fn database() -> impl Exec {
        in_memory(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE articles (id INTEGER PRIMARY KEY, published INTEGER NOT NULL,
                                    signature BLOB);
             CREATE INDEX articles_published ON articles (published DESC, id DESC);
             CREATE TABLE article_sources (article_id INTEGER, source_id INTEGER);",
        )
    }

    fn run(conn: &mut impl Exec, sql: &str, args: &[Value<'_>]) {
        run_to_completion(conn.execute(sql, args)).unwrap();
    }

    pub(in crate::store) fn signature(story: &str) -> Signature {
        let text: String = (0..40).map(|i| format!("{story} word{i} ")).collect();
        Signature::of(story, None, Some(&text)).unwrap()
    }

    pub(in crate::store) fn store(conn: &mut impl Exec, id: i64, published: i64, sig: &Signature) {
        let bytes = sig.to_bytes();
        run(
            conn,
            "INSERT INTO articles (id, published, signature) VALUES ($1, $2, $3)",
            &[id.into(), published.into(), bytes.as_slice().into()],
        );
    }

    fn under(index: &mut BandIndex, conn: &mut impl Exec, sig: &Signature) -> Vec<i64> {
        let loaded = run_to_completion(index.current(conn, 10_000, 1_000)).unwrap();
        let mut ids: Vec<i64> = sig
            .band_keys()
            .iter()
            .flat_map(|&key| loaded.stories_under(key, 0, i64::MAX))
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn memory_follows_other_writers_and_a_prune() {
        let mut conn = database();
        let (a, b) = (signature("alpha"), signature("beta"));
        store(&mut conn, 1, 9_000, &a);
        // Before the horizon (now 10,000 - two windows): left to the table.
        store(&mut conn, 2, 7_000, &a);
        let mut index = BandIndex::default();
        assert_eq!(under(&mut index, &mut conn, &a), [1]);
        assert_eq!(under(&mut index, &mut conn, &b), Vec::<i64>::new());

        // Another process stores a story: read at the next transaction.
        store(&mut conn, 3, 9_500, &b);
        assert_eq!(under(&mut index, &mut conn, &b), [3]);

        // A prune deletes the newest article; its id comes back for another
        // story, which memory must not miss.
        run(&mut conn, "DELETE FROM articles WHERE id = 3", &[]);
        run(
            &mut conn,
            "INSERT INTO meta (key, value) VALUES ('last_prune', '1')",
            &[],
        );
        store(&mut conn, 3, 9_600, &a);
        assert_eq!(under(&mut index, &mut conn, &b), Vec::<i64>::new());
        assert_eq!(under(&mut index, &mut conn, &a), [1, 3]);
    }

    #[test]
    fn memory_reaches_back_for_older_entries_within_its_budget() {
        let mut conn = database();
        let a = signature("alpha");
        store(&mut conn, 1, 9_000, &a);
        store(&mut conn, 2, 5_000, &a);
        store(&mut conn, 3, 4_000, &a);
        let mut index = BandIndex::with_budget(2);
        let loaded = run_to_completion(index.current(&mut conn, 10_000, 1_000)).unwrap();
        assert!(!loaded.covers(4_500));
        assert!(run_to_completion(loaded.cover(&mut conn, 4_500)).unwrap());
        assert!(loaded.covers(4_500));
        let keys = a.band_keys();
        let found: Vec<i64> = loaded
            .stories_under(keys[0], 0, i64::MAX)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(found, [2, 1], "newest link first");
        // A third story would pass the budget: nothing changes.
        assert!(!run_to_completion(loaded.cover(&mut conn, 3_000)).unwrap());
        assert!(!run_to_completion(loaded.cover(&mut conn, 2_000)).unwrap());
        assert!(!loaded.covers(3_000));
        assert_eq!(loaded.stories.len(), 2);
    }

    #[test]
    fn a_load_past_the_budget_keeps_the_newest_stories() {
        let mut conn = database();
        let a = signature("alpha");
        for (id, published) in [(1, 9_100), (2, 9_300), (3, 9_200)] {
            store(&mut conn, id, published, &a);
        }
        let mut index = BandIndex::with_budget(2);
        let loaded = run_to_completion(index.current(&mut conn, 10_000, 1_000)).unwrap();
        assert_eq!(loaded.stories, [(2, 9_300), (3, 9_200)]);
        assert!(loaded.covers(9_101) && !loaded.covers(9_100));
        assert_eq!(loaded.high_water, 3);
    }
}
