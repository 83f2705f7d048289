//! Ingest: one transaction per source refresh, identity enforced by the
//! database's unique keys (docs/TAGS-AND-DEDUP.md "How deduplication works").

use super::band_index::BandIndex;
use super::exec::{Exec, RowInsert, Value};
use super::history::{self, HealthPolicy};
use super::near_dup::{BandKeys, Existing};
use super::sources::{record_fetch_in, source_update};
use super::sql::{distinct, Params};
use super::{
    micros, near_dup, retry_after_conflict, Backend, FetchRecord, NearDuplicates, Store, StoreError,
};
use crate::cluster::Signature;
use crate::dedup::{self, Variant};
use crate::model::{NewArticle, Tag};
use std::collections::hash_map::Entry;
// The writer thread hashes every article's keys several times: SipHash
// (std's default) was ~8% of its time. foldhash is seeded per process, so
// keys chosen by a feed still cannot be aimed at one bucket.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// One refresh's ingest: what it did, and the stored articles it changed
/// (edited, or given a source, tags or a related link), which readers that
/// remember articles must read again. Each entry's write reports its own
/// (`Batch::ingest_one`). Only SQLite's page reader uses them: the articles
/// filtered pages remember outlive a group commit that changed others
/// (sqlite/page_reader.rs), where forgetting them all would make every
/// page after each commit a cold read.
pub(super) struct Ingested {
    pub(super) stats: IngestStats,
    pub(super) touched: Vec<i64>,
}

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

impl Store {
    /// One refresh in a transaction of its own, tried again when
    /// PostgreSQL aborts it to break a conflict with another instance.
    pub(super) async fn ingest_by_itself(
        &self,
        source_id: i64,
        articles: &[NewArticle],
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        if articles.is_empty() && record_is_one_statement(record) {
            self.record_in_one_statement(source_id, record).await?;
            return Ok(IngestStats::default());
        }
        let mut tries = 1;
        let stats = loop {
            match self.ingest_alone(source_id, articles, record).await {
                Err(e) if retry_after_conflict(&e, tries).await => tries += 1,
                done => break done?,
            }
        };
        if stats.changed_articles() {
            self.bump_version().await?;
        }
        self.note_inserted(stats.inserted);
        Ok(stats)
    }

    pub(super) async fn ingest_alone(
        &self,
        source_id: i64,
        articles: &[NewArticle],
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        let mut tx = self.writer.begin().await?;
        let ingested = self
            .ingest_in(
                &mut *tx,
                source_id,
                articles,
                self.near_duplicates(&[]),
                record,
                &self.health,
            )
            .await?;
        tx.commit().await?;
        Ok(ingested.stats)
    }

    /// A fetch that stored nothing (a 304, a failure), on PostgreSQL: the
    /// source's state read before and its `UPDATE`, the history row and the
    /// day's rollup in one statement, committed by itself (no `BEGIN`, no
    /// `COMMIT`: each round trip costs the server more than these small
    /// writes do). A change of the source's health is stored by a second,
    /// rare statement just after; a crash between the two loses that event
    /// (the state it describes is kept).
    async fn record_in_one_statement(
        &self,
        source_id: i64,
        record: &FetchRecord,
    ) -> Result<(), StoreError> {
        let (update, mut args) = source_update(source_id, record);
        let row = history::FetchRow::of(record);
        let mut params = Params::numbered_from(args.len() + 1);
        let [outcome, duration_ms, bytes, error, day, ok, not_modified, failed] = params.array();
        args.extend::<[Value; 8]>([
            row.outcome.into(),
            row.duration_ms.into(),
            row.bytes.into(),
            (&row.error).into(),
            row.day.into(),
            row.ok.into(),
            row.not_modified.into(),
            row.failed.into(),
        ]);
        // Every part sees the snapshot from before the statement: `before`
        // reads the state the `UPDATE` replaces.
        let sql = format!(
            "WITH before AS (SELECT {columns} FROM sources WHERE id = $1),
             updated AS ({update}),
             logged AS (
                 INSERT INTO fetch_log (source_id, at, outcome, status, duration_ms, bytes, new_entries, error)
                 VALUES ($1, $2, {outcome}, $3, {duration_ms}, {bytes}, 0, {error})
                 ON CONFLICT (source_id, at) DO NOTHING),
             rolled_up AS (
                 INSERT INTO fetch_days (source_id, day, fetches, ok, not_modified, failed, new_entries, bytes)
                 VALUES ($1, {day}, 1, {ok}, {not_modified}, {failed}, 0, {bytes}) {rollup})
             SELECT {columns} FROM before",
            columns = history::BEFORE_COLUMNS,
            rollup = history::DAY_ROLLUP,
        );
        let mut pooled = self.writer.acquire().await?;
        let conn: &mut sqlx::AnyConnection = &mut pooled;
        // A conflict aborts the statement whole: tried again as a
        // transaction is. Not so the events after it (the fetch would
        // count twice).
        let mut tries = 1;
        let before: Option<history::BeforeRow> = loop {
            match conn.fetch_optional(&sql, &args).await {
                Err(e) if retry_after_conflict(&e, tries).await => tries += 1,
                done => break done?,
            }
        };
        let before = history::Before::of(before);
        let events = history::events(&before, record, 0, &self.health);
        if !events.is_empty() {
            history::insert_events(conn, source_id, &events).await?;
        }
        Ok(())
    }

    /// The near-duplicate policy in force now, with `signatures`, the
    /// band keys in the `article_bands` table.
    pub(super) fn near_duplicates<'s>(&self, signatures: &'s [Option<Signature>]) -> Near<'s> {
        Near {
            policy: self.near_duplicates,
            signatures,
            memory: None,
        }
    }

    /// One refresh's writes, inside the caller's transaction (its own, or
    /// a group commit's).
    pub(super) async fn ingest_in<E: Exec>(
        &self,
        tx: &mut E,
        source_id: i64,
        articles: &[NewArticle],
        near: Near<'_>,
        record: &FetchRecord,
        health: &HealthPolicy,
    ) -> Result<Ingested, StoreError> {
        let Near {
            policy,
            signatures,
            memory,
        } = near;
        // The state the record changes, for the health events it makes.
        // (SQLite's writer opens its transactions with BEGIN IMMEDIATE, so
        // this read does not take a read lock to upgrade later, which fails
        // with SQLITE_BUSY under contention.)
        let before = history::read_before(tx, source_id).await?;
        record_fetch_in(tx, source_id, record).await?;
        if articles.is_empty() {
            // A 304, a failure or an empty feed: the record is all.
            history::record_in(tx, source_id, record, 0, &before, health).await?;
            return Ok(Ingested {
                stats: IngestStats::default(),
                touched: Vec::new(),
            });
        }
        // Tags in one sorted pass: concurrent ingests on several instances
        // then take their locks in one order, which keeps PostgreSQL
        // deadlocks (and retries) rare.
        insert_tags(tx, self.backend(), articles).await?;
        let now_us = micros(record.at);
        let policy = policy.as_ref();
        let bands = match (policy, memory) {
            (Some(policy), Some(memory)) => {
                BandKeys::Memory(memory.current(tx, now_us, policy.window_us()).await?)
            }
            _ => BandKeys::Table(Vec::new()),
        };
        let mut batch = Batch::load(tx, self.backend(), source_id, articles, now_us, bands).await?;
        if let Some(policy) = policy {
            batch
                .load_candidates(tx, articles, signatures, policy)
                .await?;
        }
        let mut stats = IngestStats::default();
        let mut touched = Vec::new();
        for (index, article) in articles.iter().enumerate() {
            let changed = batch
                .ingest_one(tx, index, article, policy, &mut stats)
                .await?;
            touched.extend(changed);
        }
        if !batch.new_articles.is_empty() {
            let routes = self.webhook_routes();
            if !routes.is_empty() {
                let source = batch.source_name(tx).await?;
                let new = std::mem::take(&mut batch.new_articles);
                super::outbox::enqueue_in(tx, &routes, &source, &new, now_us).await?;
            }
        }
        batch.flush(tx).await?;
        let new_entries = (stats.inserted + stats.merged) as i64;
        history::record_in(tx, source_id, record, new_entries, &before, health).await?;
        Ok(Ingested { stats, touched })
    }
}

/// True when a record that stores no article is written by
/// `Store::record_in_one_statement`: on PostgreSQL, a poll that found no
/// hub to subscribe to (a push, or a discovery, takes statements of its
/// own: they keep the transaction).
fn record_is_one_statement(record: &FetchRecord) -> bool {
    let discovers_hub = record
        .feed
        .as_ref()
        .is_some_and(|feed| !feed.hubs.is_empty() && feed.self_url.is_some());
    !record.pushed && !discovers_hub
}

/// How an ingest merges near-duplicates: the policy in force when its
/// refresh was queued (a reload may change it before a group commits), the
/// articles' signatures when computed beforehand (else empty), so that the
/// writer's serial section need not, and where the band keys of stored
/// stories are: SQLite's writer's memory, else the `article_bands` table.
pub(super) struct Near<'s> {
    pub(super) policy: Option<NearDuplicates>,
    pub(super) signatures: &'s [Option<Signature>],
    pub(super) memory: Option<&'s mut BandIndex>,
}

impl IngestStats {
    /// True when a feed may show something new.
    pub fn changed_articles(&self) -> bool {
        self.inserted + self.updated + self.merged > 0
    }
}

/// Entries per lookup statement: each puts up to three keys per entry in
/// `IN` lists, far below SQLite's 32,766 and PostgreSQL's 65,535 bound
/// parameters.
const LOOKUP_CHUNK: usize = 500;

/// One refresh's view of the stored articles its entries may be. Statements
/// cost a round trip each (through sqlx-sqlite's worker thread, or the
/// network), so the store is read with a few set-based lookups for the whole
/// batch, then kept up to date with the batch's own writes: every entry is
/// resolved in memory, in feed order, exactly as if it had been looked up
/// alone. Links, tags and band keys are written at the end in multi-row
/// statements; only new or changed articles cost a statement of their own.
struct Batch<'a> {
    backend: Backend,
    source_id: i64,
    now_us: i64,
    /// Every article read or written so far, as it stands now.
    articles: HashMap<i64, Existing>,
    /// This source's entries (stored or linked in this batch) -> article.
    here: HashMap<String, i64>,
    /// Each entry's key in this source (by index): its `entry_key`, or a
    /// variant when another entry of the batch shares it.
    keys: Vec<String>,
    /// The texts (fingerprints) of the batch's entries under each legacy key.
    legacy: HashMap<String, HashSet<&'a str>>,
    /// Articles this source carries (stored or in this batch): another
    /// entry of the source is never merged into one of them.
    carried: HashSet<i64>,
    /// Articles an entry of this batch resolved to, and its key.
    claimed: HashMap<i64, String>,
    /// The texts of the batch's entries whose own key points to each
    /// article: several only where an earlier version merged entries.
    texts_here: HashMap<i64, HashSet<&'a str>>,
    /// Title and link of the articles this source's keys point to.
    own: HashMap<i64, (String, Option<String>)>,
    source_name: Option<String>,
    /// The entries (by index) whose identity keys were read.
    looked_up: HashSet<usize>,
    /// Identity keys (docs/TAGS-AND-DEDUP.md "How deduplication works") -> article.
    by_uid: HashMap<String, i64>,
    by_url: HashMap<String, i64>,
    by_content: HashMap<String, i64>,
    /// Other outlets' canonical URLs (`article_links`) -> article.
    by_link: HashMap<String, i64>,
    tombstones: super::prune::Tombstones,
    /// Signatures of the entries (by index) that no key identified when the
    /// batch was read, and the stored stories they may be copies of.
    signatures: HashMap<usize, Option<Signature>>,
    candidates: near_dup::Candidates,
    /// Entries a tombstone stopped, with the oldest `seen_at` that matched.
    tombstoned: Vec<(&'a NewArticle, i64)>,
    tag_state: HashMap<i64, TagState>,
    /// Rows for the final multi-row inserts: this source's entry keys, with
    /// why each is its article (`explain`).
    new_links: Vec<(String, i64, &'static str)>,
    /// The articles of `new_links`.
    linked: HashSet<i64>,
    /// (article, term, position, origin, the article's `published`).
    new_tags: Vec<(i64, &'a str, i64, Option<&'a str>, i64)>,
    /// Where the band keys of stored stories are found and new ones go.
    bands: BandKeys<'a>,
    /// The articles this batch stored (id, uid, entry): for the webhook
    /// outbox.
    new_articles: Vec<(i64, String, &'a NewArticle)>,
}

/// The tags an article carries, to number and deduplicate the tags a later
/// copy adds without asking the database again.
struct TagState {
    count: i64,
    terms: HashSet<String>,
    /// The article's `published`, which its tag rows copy.
    published: i64,
}

/// How an entry was told to be its article, as `tributary explain` shows
/// it (`article_sources.matched_by`).
const WHY_NEW: &str = "first seen here";
const WHY_SAME_KEY: &str = "same entry (id or link) as before";
const WHY_SAME_LINK: &str = "same canonical link or text as another source's entry";
const WHY_NEAR: &str = "near-duplicate text";
const WHY_LINK_TAKEN: &str = "own article: its link is shared with another entry of this source";
const WHY_REUSED_GUID: &str =
    "own article: its id was reused for another story (link and title differ)";
const WHY_OTHER_TITLE: &str = "own article: another entry without id had its link (titles differ)";
const WHY_SPLIT: &str =
    "own article: an earlier version had merged it into another entry of this source";

/// How an entry's other key tells it is this entry (`Batch::alternates`).
#[derive(Clone, Copy)]
enum Alternate {
    /// Its base key while it has a variant: the same text, or not another
    /// story (`dedup::is_other_story`).
    Base,
    /// A variant of its key while it has none: same link, title or text.
    Variant,
    /// The key of an earlier version: the same text, or the first entry of
    /// the batch with that key when none has the stored text.
    Legacy,
}

/// Each entry's key in its source: its `entry_key`, unless entries of the
/// batch share it with different text. Those are distinct entries (in one
/// feed, neither can be an edit of the other): each gets a variant key, by
/// its link (a guid) or its title (a link) when that tells them apart, else
/// by its text.
fn assign_keys(articles: &[NewArticle]) -> Vec<String> {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, article) in articles.iter().enumerate() {
        groups.entry(&article.entry_key).or_default().push(index);
    }
    let mut keys: Vec<String> = articles.iter().map(|a| a.entry_key.clone()).collect();
    for members in groups.values().filter(|members| members.len() > 1) {
        let texts: HashSet<&str> = members
            .iter()
            .map(|&i| articles[i].fingerprint.as_str())
            .collect();
        if texts.len() < 2 {
            continue;
        }
        // The story variant when it tells every member apart, else the text.
        let variant = dedup::story_variant(&articles[members[0]])
            .filter(|&variant| {
                let distinct: HashSet<String> = members
                    .iter()
                    .map(|&i| dedup::variant_key(&articles[i], variant))
                    .collect();
                distinct.len() == members.len()
            })
            .unwrap_or(Variant::Text);
        for &i in members {
            keys[i] = dedup::variant_key(&articles[i], variant);
        }
    }
    keys
}

/// The columns of an [`ArticleRow`].
const IDENTITY_COLUMNS: &str =
    "id, fingerprint, updated, source_id, uid, canonical_url, content_key";

/// A stored article with its identity keys.
type ArticleRow = (
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
);

/// How one entry is stored (`Batch::decide`), then written (`Batch::join`,
/// `Batch::insert`).
enum Decision {
    /// A story pruned while still in the feed (store/prune.rs): not stored
    /// again. `seen`: its tombstone's oldest `seen_at`.
    Tombstoned {
        seen: i64,
    },
    Existing(Join),
    New(Insert),
}

/// The entry joins a stored article: this source's own
/// (`seen_here_before`), another source's with the same link or text, or a
/// near-duplicate (`near`, the similarity).
struct Join {
    id: i64,
    why: &'static str,
    seen_here_before: bool,
    near: Option<f64>,
}

/// The entry becomes a new article. `local`: under a source-local id, its
/// link being another entry of this source's. `apart`: why it is kept from
/// an article it would otherwise join.
struct Insert {
    local: bool,
    why: &'static str,
    apart: Option<&'static str>,
    signature: Option<Signature>,
}

impl<'a> Batch<'a> {
    async fn load<E: Exec>(
        tx: &mut E,
        backend: Backend,
        source_id: i64,
        articles: &'a [NewArticle],
        now_us: i64,
        bands: BandKeys<'a>,
    ) -> Result<Batch<'a>, StoreError> {
        let mut batch = Batch {
            backend,
            source_id,
            now_us,
            articles: HashMap::new(),
            here: HashMap::new(),
            keys: assign_keys(articles),
            legacy: HashMap::new(),
            carried: HashSet::new(),
            claimed: HashMap::new(),
            texts_here: HashMap::new(),
            own: HashMap::new(),
            source_name: None,
            looked_up: HashSet::new(),
            by_uid: HashMap::new(),
            by_url: HashMap::new(),
            by_content: HashMap::new(),
            by_link: HashMap::new(),
            tombstones: Default::default(),
            signatures: HashMap::new(),
            candidates: Default::default(),
            tombstoned: Vec::new(),
            tag_state: HashMap::new(),
            new_links: Vec::new(),
            linked: HashSet::new(),
            new_tags: Vec::new(),
            bands,
            new_articles: Vec::new(),
        };
        for article in articles {
            if let Some(key) = dedup::legacy_entry_key(article) {
                let texts = batch.legacy.entry(key).or_default();
                texts.insert(&article.fingerprint);
            }
        }
        let keys = batch.keys.clone();
        let keys = distinct(keys.iter().map(|key| Some(key.as_str())));
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            batch.load_here(tx, chunk).await?;
        }
        for (index, article) in articles.iter().enumerate() {
            if let Some(&id) = batch.here.get(&batch.keys[index]) {
                let texts = batch.texts_here.entry(id).or_default();
                texts.insert(&article.fingerprint);
            }
        }
        // Refetched entries stop here: only the others are looked up further,
        // first under their other keys (variants, a key of earlier versions).
        let rest: Vec<(usize, &NewArticle)> = articles
            .iter()
            .enumerate()
            .filter(|(index, _)| !batch.here.contains_key(&batch.keys[*index]))
            .collect();
        let other_keys: Vec<String> = rest
            .iter()
            .flat_map(|(index, article)| batch.alternates(*index, article))
            .map(|(key, _)| key)
            .collect();
        let other_keys = distinct(other_keys.iter().map(|key| Some(key.as_str())));
        for chunk in other_keys.chunks(LOOKUP_CHUNK) {
            batch.load_here(tx, chunk).await?;
        }
        batch.looked_up.extend(rest.iter().map(|(index, _)| *index));
        let rest: Vec<&NewArticle> = rest.into_iter().map(|(_, article)| article).collect();
        for chunk in rest.chunks(LOOKUP_CHUNK) {
            batch.load_identities(tx, chunk).await?;
            batch.tombstones.load(tx, backend, source_id, chunk).await?;
        }
        Ok(batch)
    }

    /// Signatures of the entries no key identifies (nor a tombstone stops),
    /// and their near-duplicate candidates.
    async fn load_candidates<E: Exec>(
        &mut self,
        tx: &mut E,
        articles: &'a [NewArticle],
        signatures: &[Option<Signature>],
        policy: &NearDuplicates,
    ) -> Result<(), StoreError> {
        for (index, article) in articles.iter().enumerate() {
            let identified = self.here.contains_key(&self.keys[index])
                || self
                    .find_by_identity(article)
                    .is_some_and(|id| !self.carried.contains(&id))
                || self.tombstones.matching(article).is_some();
            if !identified {
                let signature = match signatures.get(index) {
                    Some(computed) => computed.clone(),
                    None => signature_of(article),
                };
                self.signatures.insert(index, signature);
            }
        }
        let wanted: Vec<(&Signature, i64)> = self
            .signatures
            .iter()
            .filter_map(|(index, sig)| {
                Some((sig.as_ref()?, published_of(&articles[*index], self.now_us)))
            })
            .collect();
        let (backend, source_id) = (self.backend, self.source_id);
        self.candidates = self
            .bands
            .candidates(tx, backend, source_id, &wanted, policy)
            .await?;
        Ok(())
    }

    /// The articles this source's `entry_keys` already point to.
    async fn load_here<E: Exec>(
        &mut self,
        tx: &mut E,
        entry_keys: &[&str],
    ) -> Result<(), StoreError> {
        let mut params = Params::new(self.backend);
        let sql = format!(
            "SELECT s.entry_key, a.id, a.fingerprint, a.updated, a.source_id, a.title, a.link
             FROM article_sources s JOIN articles a ON a.id = s.article_id
             WHERE s.source_id = {} AND s.entry_key IN ({})",
            params.one(),
            params.list(entry_keys.len())
        );
        let mut args = vec![Value::Int(self.source_id)];
        args.extend(entry_keys.iter().map(|&key| Value::Text(key)));
        type HereRow = (String, i64, String, i64, i64, String, Option<String>);
        let rows: Vec<HereRow> = tx.fetch_all(&sql, &args).await?;
        for (key, id, fingerprint, updated, source_id, title, link) in rows {
            self.here.insert(key, id);
            self.carried.insert(id);
            self.own.insert(id, (title, link));
            self.articles.entry(id).or_insert(Existing {
                id,
                fingerprint,
                updated,
                source_id,
            });
        }
        Ok(())
    }

    /// The articles sharing a uid, canonical URL or content key with one of
    /// `entries`, and the outlet links of their canonical URLs.
    async fn load_identities<E: Exec>(
        &mut self,
        tx: &mut E,
        entries: &[&NewArticle],
    ) -> Result<(), StoreError> {
        let (sql, keys) = identity_lookup(self.backend, entries);
        let args: Vec<Value> = keys.iter().map(|&key| Value::Text(key)).collect();
        let mut found = Vec::new();
        for row in tx.fetch_all::<ArticleRow>(&sql, &args).await? {
            found.push(self.remember(row));
        }
        self.load_carried(tx, &found).await?;
        let urls = distinct(entries.iter().map(|a| a.canonical_url.as_deref()));
        if urls.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT canonical_url, article_id FROM article_links WHERE canonical_url IN ({})",
            Params::new(self.backend).list(urls.len())
        );
        let args: Vec<Value> = urls.iter().map(|&url| Value::Text(url)).collect();
        let mut found = Vec::new();
        for (url, id) in tx.fetch_all::<(String, i64)>(&sql, &args).await? {
            self.by_link.insert(url, id);
            found.push(id);
        }
        self.load_carried(tx, &found).await
    }

    /// Which of `ids` this source carries already (under another key).
    async fn load_carried<E: Exec>(&mut self, tx: &mut E, ids: &[i64]) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !self.carried.contains(id) && seen.insert(*id))
            .collect();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let mut params = Params::new(self.backend);
            let sql = format!(
                "SELECT DISTINCT article_id FROM article_sources
                 WHERE source_id = {} AND article_id IN ({})",
                params.one(),
                params.list(chunk.len())
            );
            let mut args = vec![Value::Int(self.source_id)];
            args.extend(chunk.iter().map(|&id| Value::Int(id)));
            for (id,) in tx.fetch_all::<(i64,)>(&sql, &args).await? {
                self.carried.insert(id);
            }
        }
        Ok(())
    }

    /// The other keys entry `index` may be stored under, with how each is
    /// told to be this entry: its base key while it has a variant, its
    /// variants while it has none, the key earlier versions gave it.
    fn alternates(&self, index: usize, article: &NewArticle) -> Vec<(String, Alternate)> {
        let key = &self.keys[index];
        let mut keys = Vec::with_capacity(4);
        if *key != article.entry_key {
            keys.push((article.entry_key.clone(), Alternate::Base));
        }
        if let Some(variant) = dedup::story_variant(article) {
            keys.push((dedup::variant_key(article, variant), Alternate::Variant));
        }
        keys.push((
            dedup::variant_key(article, Variant::Text),
            Alternate::Variant,
        ));
        if let Some(legacy) = dedup::legacy_entry_key(article) {
            keys.push((legacy, Alternate::Legacy));
        }
        keys.retain(|(other, _)| other != key);
        keys
    }

    /// Whether `id` is the article of another entry of this batch.
    fn claimed_by_other(&self, id: i64, key: &str) -> bool {
        self.claimed.get(&id).is_some_and(|claimer| claimer != key)
    }

    /// The stored article entry `index` is by this source's own keys.
    /// `(None, Some(why))`: a new article of its own, though a key of
    /// the source points to one; `why` is for `explain`.
    async fn resolve_here<E: Exec>(
        &mut self,
        tx: &mut E,
        index: usize,
        article: &NewArticle,
    ) -> Result<(Option<i64>, Option<&'static str>), StoreError> {
        let key = self.keys[index].clone();
        if let Some(&id) = self.here.get(&key) {
            if self.claimed_by_other(id, &key) || self.yields(id, article) {
                // Two of the source's entries on one article: merged by an
                // earlier version. The one with its text keeps it, else
                // the first.
                return Ok((None, Some(WHY_SPLIT)));
            }
            let variant = dedup::story_variant(article);
            if let Some(variant) = variant.filter(|_| key == article.entry_key) {
                if !self.other_story(id, article) {
                    return Ok((Some(id), None));
                }
                let variant = dedup::variant_key(article, variant);
                self.keys[index].clone_from(&variant);
                let stored = match self.here.get(&variant) {
                    Some(&id) => Some(id),
                    None => self.lookup_here(tx, &variant).await?,
                };
                let why = match article.entry_key.starts_with("guid:") {
                    true => WHY_REUSED_GUID,
                    false => WHY_OTHER_TITLE,
                };
                return Ok(match stored {
                    Some(id) if !self.claimed_by_other(id, &variant) => (Some(id), None),
                    _ => (None, Some(why)),
                });
            }
            return Ok((Some(id), None));
        }
        for (other, how) in self.alternates(index, article) {
            let Some(&id) = self.here.get(&other) else {
                continue;
            };
            if self.claimed.contains_key(&id) {
                continue;
            }
            let stored_text = self.articles.get(&id).map(|stored| &stored.fingerprint);
            let same_text = stored_text == Some(&article.fingerprint);
            let is_it = match how {
                Alternate::Variant => true,
                Alternate::Base => same_text || !self.other_story(id, article),
                // Entries an earlier version merged under one key: the one
                // with the stored text keeps it, else the first.
                Alternate::Legacy => {
                    same_text
                        || stored_text.is_some_and(|text| {
                            self.legacy
                                .get(&other)
                                .is_some_and(|texts| !texts.contains(text.as_str()))
                        })
                }
            };
            if is_it {
                return Ok((Some(id), None));
            }
        }
        Ok((None, None))
    }

    /// Whether another entry of the batch that points to article `id` has
    /// its stored text, and `article` does not.
    fn yields(&self, id: i64, article: &NewArticle) -> bool {
        let Some(stored) = self.articles.get(&id) else {
            return false;
        };
        stored.fingerprint != article.fingerprint
            && self
                .texts_here
                .get(&id)
                .is_some_and(|texts| texts.contains(stored.fingerprint.as_str()))
    }

    /// Whether the source's article `id`, stored under the key of
    /// `article`, is another story (see [`dedup::is_other_story`]).
    fn other_story(&self, id: i64, article: &NewArticle) -> bool {
        let Some(stored) = self.articles.get(&id) else {
            return false;
        };
        // Only against the source's own article: another source's (joined
        // by link or as a near-duplicate) has that source's title and link.
        if stored.source_id != self.source_id || stored.fingerprint == article.fingerprint {
            return false;
        }
        self.own
            .get(&id)
            .is_some_and(|(title, link)| dedup::is_other_story(title, link.as_deref(), article))
    }

    /// The article this source's `key` points to, read from the database.
    async fn lookup_here<E: Exec>(
        &mut self,
        tx: &mut E,
        key: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.load_here(tx, &[key]).await?;
        Ok(self.here.get(key).copied())
    }

    /// The source's name, for the ids of its articles known only to it.
    async fn source_name<E: Exec>(&mut self, tx: &mut E) -> Result<String, StoreError> {
        if let Some(name) = &self.source_name {
            return Ok(name.clone());
        }
        let (name,): (String,) = tx
            .fetch_optional(
                "SELECT name FROM sources WHERE id = $1",
                &[Value::Int(self.source_id)],
            )
            .await?
            .ok_or(StoreError::Invariant("the ingesting source has no row"))?;
        self.source_name = Some(name.clone());
        Ok(name)
    }

    fn remember(&mut self, row: ArticleRow) -> i64 {
        let (id, fingerprint, updated, source_id, uid, canonical_url, content_key) = row;
        self.articles.entry(id).or_insert(Existing {
            id,
            fingerprint,
            updated,
            source_id,
        });
        self.by_uid.insert(uid, id);
        if let Some(url) = canonical_url {
            self.by_url.insert(url, id);
        }
        if let Some(key) = content_key {
            self.by_content.insert(key, id);
        }
        id
    }

    /// The article with the same canonical URL, uid or (for entries with
    /// neither id nor link) the same text; the oldest when several are.
    fn find_by_identity(&self, article: &NewArticle) -> Option<i64> {
        let url = article.canonical_url.as_ref();
        [
            self.by_uid.get(&article.uid),
            url.and_then(|u| self.by_url.get(u)),
            article
                .content_key
                .as_ref()
                .and_then(|k| self.by_content.get(k)),
            url.and_then(|u| self.by_link.get(u)),
        ]
        .into_iter()
        .flatten()
        .min()
        .copied()
    }

    /// How entry `index` is stored, decided before anything is written,
    /// from what the batch read (an entry it did not prepare for, found
    /// under its key but not its article after all, is looked up alone).
    /// The decision is final unless another writer stores one of its keys
    /// meanwhile (`Batch::stored_meanwhile`).
    async fn decide<E: Exec>(
        &mut self,
        tx: &mut E,
        index: usize,
        article: &'a NewArticle,
        near_duplicates: Option<&NearDuplicates>,
    ) -> Result<Decision, StoreError> {
        let published = published_of(article, self.now_us);
        let (known_here, apart) = self.resolve_here(tx, index, article).await?;
        if let Some(id) = known_here {
            return Ok(Decision::Existing(Join {
                id,
                why: WHY_SAME_KEY,
                seen_here_before: true,
                near: None,
            }));
        }
        // Retention (store/prune.rs): a story pruned while still in a
        // source's feed has a tombstone of its keys and must not come back
        // as new.
        if apart.is_none() {
            if let Some(seen) = self.tombstones.matching(article) {
                return Ok(Decision::Tombstoned { seen });
            }
        }
        if self.looked_up.insert(index) {
            // Found under its own key when the batch was read, yet not its
            // article after all (`apart`): its identity keys are read now,
            // so that the decision stands when it is written.
            self.load_identities(tx, &[article]).await?;
        }
        // Another source's article with the same link or text: this entry
        // joins it, unless this source carries it already under another
        // key: then the link names several of the source's entries, and
        // this one gets an article of its own.
        if let Some(id) = self.find_by_identity(article) {
            if self.carried.contains(&id) {
                return Ok(Decision::New(Insert {
                    local: true,
                    why: apart.unwrap_or(WHY_LINK_TAKEN),
                    apart,
                    signature: None,
                }));
            }
            return Ok(Decision::Existing(Join {
                id,
                why: WHY_SAME_LINK,
                seen_here_before: false,
                near: None,
            }));
        }
        let why = apart.unwrap_or(WHY_NEW);
        let Some(policy) = near_duplicates else {
            return Ok(Decision::New(Insert {
                local: false,
                why,
                apart,
                signature: None,
            }));
        };
        // Computed only for entries no key identifies: refetches skip it.
        let (signature, found) = match self.signatures.remove(&index) {
            Some(sig) => {
                let found = sig
                    .as_ref()
                    .and_then(|sig| self.candidates.find(sig, published, policy, &self.linked));
                (sig, found)
            }
            // Identified when the batch was read, no longer now: looked up
            // alone.
            None => {
                let signature = signature_of(article);
                let (backend, source_id) = (self.backend, self.source_id);
                let found = match &signature {
                    Some(sig) => self
                        .bands
                        .candidates(tx, backend, source_id, &[(sig, published)], policy)
                        .await?
                        .find(sig, published, policy, &self.linked),
                    None => None,
                };
                (signature, found)
            }
        };
        Ok(match found {
            Some((existing, similarity)) => {
                let id = existing.id;
                // What this batch already changed of it wins.
                self.articles.entry(id).or_insert(existing);
                Decision::Existing(Join {
                    id,
                    why: WHY_NEAR,
                    seen_here_before: false,
                    near: Some(similarity),
                })
            }
            None => Decision::New(Insert {
                local: false,
                why,
                apart,
                signature,
            }),
        })
    }

    /// Decides how entry `index` is stored, then writes that: the stored
    /// article it changed, if any (edited, or given a source, tags or a
    /// related link), which readers that remember articles read again
    /// (`Ingested::touched`).
    async fn ingest_one<E: Exec>(
        &mut self,
        tx: &mut E,
        index: usize,
        article: &'a NewArticle,
        near_duplicates: Option<&NearDuplicates>,
        stats: &mut IngestStats,
    ) -> Result<Option<i64>, StoreError> {
        let decision = self.decide(tx, index, article, near_duplicates).await?;
        let key = self.keys[index].clone();
        match decision {
            Decision::Tombstoned { seen } => {
                self.tombstoned.push((article, seen));
                stats.tombstoned += 1;
                Ok(None)
            }
            Decision::Existing(join) => self.join(tx, key, article, join, stats).await,
            Decision::New(insert) => self.insert(tx, key, article, insert, stats).await,
        }
    }

    /// Entry `key` joins a stored article, rewriting it when it is this
    /// source's own and was edited; the article, unless nothing changed.
    async fn join<E: Exec>(
        &mut self,
        tx: &mut E,
        key: String,
        article: &'a NewArticle,
        Join {
            id,
            why,
            seen_here_before,
            near,
        }: Join,
        stats: &mut IngestStats,
    ) -> Result<Option<i64>, StoreError> {
        let (source_id, now_us) = (self.source_id, self.now_us);
        let existing = self
            .articles
            .get_mut(&id)
            .ok_or(StoreError::Invariant("a resolved article was not loaded"))?;
        let edited = existing.fingerprint != article.fingerprint;
        let unlinked = self.here.get(&key) != Some(&id);
        // Only the first source's copy may rewrite the article:
        // another outlet's variant of the same link must not flip it
        // back and forth.
        if edited && existing.source_id == source_id {
            existing.updated = update_article(tx, existing, article, now_us).await?;
            existing.fingerprint.clone_from(&article.fingerprint);
            self.own
                .insert(id, (article.title.clone(), article.link.clone()));
            stats.updated += 1;
        } else if seen_here_before {
            stats.unchanged += 1;
            if !unlinked {
                // Nothing new to link or tag: refetches stay cheap.
                self.claimed.insert(id, key);
                return Ok(None);
            }
        } else {
            stats.merged += 1;
        }
        if let Some(similarity) = near {
            near_dup::link(tx, id, source_id, article, similarity, now_us).await?;
            if let (Some(url), Some(_)) = (&article.canonical_url, &article.link) {
                self.by_link.entry(url.clone()).or_insert(id);
            }
            stats.clustered += 1;
        }
        self.finish(tx, key, id, why, article, false).await?;
        Ok(Some(id))
    }

    /// Entry `key` as a new article, under a source-local id when `local`.
    /// Its keys were free when the batch read the store; when one is taken
    /// after all, [`Batch::stored_meanwhile`] decides again.
    async fn insert<E: Exec>(
        &mut self,
        tx: &mut E,
        key: String,
        article: &'a NewArticle,
        insert: Insert,
        stats: &mut IngestStats,
    ) -> Result<Option<i64>, StoreError> {
        let local_uid = match insert.local {
            true => Some(dedup::local_uid(&self.source_name(tx).await?, &key)),
            false => None,
        };
        let (source_id, now_us) = (self.source_id, self.now_us);
        let signature = insert.signature.as_ref();
        match insert_article(
            tx,
            source_id,
            article,
            local_uid.as_deref(),
            now_us,
            signature,
        )
        .await?
        {
            Some(id) => self.inserted(tx, id, key, article, insert, stats).await,
            None => self.stored_meanwhile(tx, key, article, insert, stats).await,
        }
    }

    /// The entry's insert was refused by a unique key the batch saw free:
    /// another writer stored an article under it since (another instance
    /// on PostgreSQL; SQLite's writer holds the write lock from the batch's
    /// first read to its commit), or an earlier version gave this very
    /// entry that source-local id. The stored article decides, as `decide`
    /// would have with it: the entry joins it as another source's copy, or,
    /// when this source carries it already, becomes an article of its own
    /// (or joins the one stored under its source-local id).
    async fn stored_meanwhile<E: Exec>(
        &mut self,
        tx: &mut E,
        key: String,
        article: &'a NewArticle,
        insert: Insert,
        stats: &mut IngestStats,
    ) -> Result<Option<i64>, StoreError> {
        let uid = dedup::local_uid(&self.source_name(tx).await?, &key);
        if !insert.local {
            let row = find_by_identity(tx, article)
                .await?
                .ok_or(StoreError::Invariant(
                    "an insert conflicted with no article",
                ))?;
            let id = self.remember(row);
            self.load_carried(tx, &[id]).await?;
            if !self.carried.contains(&id) {
                stats.merged += 1;
                self.finish(tx, key, id, WHY_SAME_LINK, article, false)
                    .await?;
                return Ok(Some(id));
            }
            let own = Insert {
                local: true,
                why: insert.apart.unwrap_or(WHY_LINK_TAKEN),
                ..insert
            };
            let (source_id, now_us) = (self.source_id, self.now_us);
            let signature = own.signature.as_ref();
            if let Some(id) =
                insert_article(tx, source_id, article, Some(&uid), now_us, signature).await?
            {
                return self.inserted(tx, id, key, article, own, stats).await;
            }
        }
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM articles WHERE uid = $1");
        let row: ArticleRow =
            tx.fetch_optional(&sql, &[Value::Text(&uid)])
                .await?
                .ok_or(StoreError::Invariant(
                    "a source-local id conflicted with no article",
                ))?;
        let id = self.remember(row);
        stats.merged += 1;
        self.finish(tx, key, id, WHY_SAME_KEY, article, false)
            .await?;
        Ok(Some(id))
    }

    /// Records the new article `id` as the batch's: findable by later
    /// entries and copies, linked and tagged.
    async fn inserted<E: Exec>(
        &mut self,
        tx: &mut E,
        id: i64,
        key: String,
        article: &'a NewArticle,
        insert: Insert,
        stats: &mut IngestStats,
    ) -> Result<Option<i64>, StoreError> {
        stats.inserted += 1;
        let uid = match insert.local {
            true => dedup::local_uid(&self.source_name(tx).await?, &key),
            false => article.uid.clone(),
        };
        let published = published_of(article, self.now_us);
        let updated = article.updated.map(micros).unwrap_or(published);
        self.new_articles.push((id, uid.clone(), article));
        self.remember((
            id,
            article.fingerprint.clone(),
            updated,
            self.source_id,
            uid,
            article.canonical_url.clone().filter(|_| !insert.local),
            article.content_key.clone(),
        ));
        self.own
            .insert(id, (article.title.clone(), article.link.clone()));
        self.bands.add(id, published, insert.signature.as_ref());
        self.finish(tx, key, id, insert.why, article, true).await?;
        Ok(None)
    }

    /// Links entry `key` of this source to `article_id` and merges its tags.
    async fn finish<E: Exec>(
        &mut self,
        tx: &mut E,
        key: String,
        article_id: i64,
        why: &'static str,
        article: &'a NewArticle,
        new_article: bool,
    ) -> Result<(), StoreError> {
        self.carried.insert(article_id);
        self.claimed.insert(article_id, key.clone());
        if self.here.get(&key) != Some(&article_id) {
            self.here.insert(key.clone(), article_id);
            self.new_links.push((key, article_id, why));
            self.linked.insert(article_id);
        }
        self.merge_tags(tx, article_id, article, new_article).await
    }

    /// Tags are a union: a later copy adds tags, never removes them.
    async fn merge_tags<E: Exec>(
        &mut self,
        tx: &mut E,
        article_id: i64,
        article: &'a NewArticle,
        new_article: bool,
    ) -> Result<(), StoreError> {
        let state = match self.tag_state.entry(article_id) {
            Entry::Occupied(state) => state.into_mut(),
            Entry::Vacant(slot) => slot.insert(if new_article {
                TagState {
                    count: 0,
                    terms: HashSet::new(),
                    published: published_of(article, self.now_us),
                }
            } else {
                TagState::load(tx, article_id).await?
            }),
        };
        // Tags from a later copy come after the first copy's, in their order.
        let first_position = state.count;
        for (index, tag) in article.tags.iter().enumerate() {
            if state.terms.insert(tag.term.clone()) {
                state.count += 1;
                let origin = article.tag_origins.get(index).map(String::as_str);
                let position = first_position + index as i64;
                self.new_tags
                    .push((article_id, &tag.term, position, origin, state.published));
            }
        }
        Ok(())
    }

    /// Writes what the entries collected: their links, tags and band keys,
    /// a few statements each.
    async fn flush<E: Exec>(self, tx: &mut E) -> Result<(), StoreError> {
        let (source_id, now_us) = (self.source_id, self.now_us);
        let mut links = Vec::with_capacity(self.new_links.len() * SOURCE_ROWS.width);
        // One row per key, the last link of each: rows go in one statement
        // on PostgreSQL, where `DO UPDATE` may not meet a key twice.
        let mut last = HashMap::with_capacity(self.new_links.len());
        for (index, (entry_key, _, _)) in self.new_links.iter().enumerate() {
            last.insert(entry_key.as_str(), index);
        }
        for (index, (entry_key, article_id, why)) in self.new_links.iter().enumerate() {
            if last.get(entry_key.as_str()) != Some(&index) {
                continue;
            }
            links.extend([
                Value::Int(source_id),
                Value::Text(entry_key),
                Value::Int(*article_id),
                Value::Int(now_us),
                Value::Text(why),
            ]);
        }
        tx.insert_rows(&SOURCE_ROWS, &links).await?;
        let mut tags = Vec::with_capacity(self.new_tags.len() * TAG_ROWS.width);
        for &(article_id, term, position, origin, published) in &self.new_tags {
            tags.extend([
                Value::Int(article_id),
                Value::Text(term),
                Value::Int(position),
                origin.into(),
                Value::Int(published),
            ]);
        }
        tx.insert_rows(&TAG_ROWS, &tags).await?;
        self.bands.write(tx).await?;
        super::prune::touch(tx, self.backend, source_id, &self.tombstoned, now_us).await
    }
}

/// This source's entry keys. An existing row is one an earlier version
/// pointed to an article another entry of the source keeps: it moves.
const SOURCE_ROWS: RowInsert = RowInsert {
    into: "article_sources (source_id, entry_key, article_id, first_seen, matched_by)",
    width: 5,
    tail: "ON CONFLICT (source_id, entry_key) DO UPDATE
           SET article_id = excluded.article_id, matched_by = excluded.matched_by",
};

/// An article's tags; `published` is copied for the filtered views' tag
/// index (read.rs).
const TAG_ROWS: RowInsert = RowInsert {
    into: "article_tags (article_id, term, position, origin, published)",
    width: 5,
    tail: "ON CONFLICT (article_id, term) DO NOTHING",
};

impl TagState {
    async fn load<E: Exec>(tx: &mut E, article_id: i64) -> Result<TagState, StoreError> {
        // One row per tag, or one with no term for an article without tags.
        let rows: Vec<(i64, Option<String>)> = tx
            .fetch_all(
                "SELECT a.published, t.term FROM articles a
                 LEFT JOIN article_tags t ON t.article_id = a.id
                 WHERE a.id = $1",
                &[Value::Int(article_id)],
            )
            .await?;
        let published = rows
            .first()
            .map(|&(published, _)| published)
            .ok_or(StoreError::Invariant("an article to tag has no row"))?;
        let terms: HashSet<String> = rows.into_iter().filter_map(|(_, term)| term).collect();
        Ok(TagState {
            count: terms.len() as i64,
            terms,
            published,
        })
    }
}

pub(super) fn signature_of(article: &NewArticle) -> Option<Signature> {
    Signature::of(
        &article.title,
        article.summary.as_deref(),
        article.content.as_deref(),
    )
}

/// A missing date becomes first-seen time (docs/TAGS-AND-DEDUP.md "How deduplication works" (dates)).
fn published_of(article: &NewArticle, now_us: i64) -> i64 {
    article.published.map(micros).unwrap_or(now_us)
}

/// The lookup of the stored articles sharing a uid, canonical URL or
/// content key with one of `entries` (or linked from one of those URLs),
/// and its parameters.
pub(super) fn identity_lookup<'e>(
    backend: Backend,
    entries: &[&'e NewArticle],
) -> (String, Vec<&'e str>) {
    let uids = distinct(entries.iter().map(|a| Some(a.uid.as_str())));
    let urls = distinct(entries.iter().map(|a| a.canonical_url.as_deref()));
    let contents = distinct(entries.iter().map(|a| a.content_key.as_deref()));
    let mut params = Params::new(backend);
    let uid_list = params.list(uids.len());
    let url_list = params.list(urls.len());
    let content_list = params.list(contents.len());
    let link_list = params.list(urls.len());
    // One branch per unique key: an OR across them (with a subquery) is a
    // sequential scan of `articles` on PostgreSQL, whatever its statistics.
    // An article several branches find comes back once per branch.
    let sql = format!(
        "SELECT {IDENTITY_COLUMNS} FROM articles WHERE uid IN ({uid_list})
         UNION ALL SELECT {IDENTITY_COLUMNS} FROM articles WHERE canonical_url IN ({url_list})
         UNION ALL SELECT {IDENTITY_COLUMNS} FROM articles WHERE content_key IN ({content_list})
         UNION ALL SELECT {IDENTITY_COLUMNS} FROM articles
            WHERE id IN (SELECT article_id FROM article_links WHERE canonical_url IN ({link_list}))"
    );
    let keys = uids.iter().chain(&urls).chain(&contents).chain(&urls);
    (sql, keys.copied().collect())
}

/// The article with the same canonical URL, uid or (for entries with
/// neither id nor link) the same text, as the database has it now.
async fn find_by_identity<E: Exec>(
    tx: &mut E,
    article: &NewArticle,
) -> Result<Option<ArticleRow>, StoreError> {
    // One branch per key, as in `load_identities`.
    let sql = format!(
        "SELECT * FROM (
            SELECT {IDENTITY_COLUMNS} FROM articles WHERE uid = $1
            UNION ALL SELECT {IDENTITY_COLUMNS} FROM articles WHERE canonical_url = $2
            UNION ALL SELECT {IDENTITY_COLUMNS} FROM articles WHERE content_key = $3
            UNION ALL SELECT {IDENTITY_COLUMNS} FROM articles
               WHERE id IN (SELECT article_id FROM article_links WHERE canonical_url = $2)
         ) AS found ORDER BY id LIMIT 1"
    );
    tx.fetch_optional(
        &sql,
        &[
            (&article.uid).into(),
            (&article.canonical_url).into(),
            (&article.content_key).into(),
        ],
    )
    .await
}

/// `local_uid`: the article's id when its link names several entries of its
/// source: it then has no canonical link (no identity across sources).
async fn insert_article<E: Exec>(
    tx: &mut E,
    source_id: i64,
    article: &NewArticle,
    local_uid: Option<&str>,
    now_us: i64,
    signature: Option<&Signature>,
) -> Result<Option<i64>, StoreError> {
    let (uid, canonical_url) = match local_uid {
        Some(uid) => (uid, None),
        None => (article.uid.as_str(), article.canonical_url.as_deref()),
    };
    // A missing date becomes first-seen time (docs/TAGS-AND-DEDUP.md "How deduplication works" (dates)).
    let published = article.published.map(micros).unwrap_or(now_us);
    let updated = article.updated.map(micros).unwrap_or(published);
    // Near-duplicate matching reads it (store/near_dup.rs).
    let signature = signature.map(Signature::to_bytes);
    tx.insert_returning_id(
        // One outlet, its own, from the start: the triggers that count
        // outlets skip the first source's entry (migrations' outlets).
        "INSERT INTO articles (uid, canonical_url, content_key, link, title, summary,
                                   content, author, published, updated, first_seen,
                                   fingerprint, source_id, signature, language, outlets,
                                   last_outlet_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $11)
             ON CONFLICT DO NOTHING",
        &[
            uid.into(),
            canonical_url.into(),
            (&article.content_key).into(),
            (&article.link).into(),
            (&article.title).into(),
            (&article.summary).into(),
            (&article.content).into(),
            (&article.author).into(),
            published.into(),
            updated.into(),
            now_us.into(),
            (&article.fingerprint).into(),
            source_id.into(),
            signature.as_deref().into(),
            (&article.language).into(),
        ],
    )
    .await
}

/// Rewrites `existing` with the edited entry, every field from it (its
/// date too, when it has one); returns its new `updated`.
async fn update_article<E: Exec>(
    tx: &mut E,
    existing: &Existing,
    article: &NewArticle,
    now_us: i64,
) -> Result<i64, StoreError> {
    // `updated` moves forward only: to the source's own date when it says the
    // entry changed after what we stored, else to when we saw the change.
    let updated = article
        .updated
        .map(micros)
        .filter(|&u| u > existing.updated && u <= now_us)
        .unwrap_or(now_us)
        .max(existing.updated);
    let published = article.published.map(micros);
    tx.execute(
        "UPDATE articles SET title = $1, summary = $2, content = $3, author = $4, link = $5,
                fingerprint = $6, updated = $7, published = COALESCE($8, published),
                language = COALESCE($10, language)
         WHERE id = $9",
        &[
            (&article.title).into(),
            (&article.summary).into(),
            (&article.content).into(),
            (&article.author).into(),
            (&article.link).into(),
            (&article.fingerprint).into(),
            updated.into(),
            published.into(),
            existing.id.into(),
            (&article.language).into(),
        ],
    )
    .await?;
    if let Some(published) = published {
        // The tag index's copy (read.rs).
        tx.execute(
            "UPDATE article_tags SET published = $1 WHERE article_id = $2 AND published <> $1",
            &[published.into(), existing.id.into()],
        )
        .await?;
    }
    Ok(updated)
}

/// Every tag of the batch, first spelling kept (docs/TAGS-AND-DEDUP.md "How tags work").
/// Only those not stored yet are inserted: on PostgreSQL an insert of a
/// term another refresh inserted and has not committed waits for that
/// refresh's end (`ON CONFLICT` must know whether it conflicts), and
/// concurrent refreshes share most tags: in a first import of 200 x 50
/// entries those waits were half the statements' time.
async fn insert_tags<E: Exec>(
    tx: &mut E,
    backend: Backend,
    articles: &[NewArticle],
) -> Result<(), StoreError> {
    let mut tags: Vec<&Tag> = articles.iter().flat_map(|a| &a.tags).collect();
    tags.sort_by(|a, b| a.term.cmp(&b.term));
    tags.dedup_by(|a, b| a.term == b.term);
    let mut stored = HashSet::new();
    for chunk in tags.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT term FROM tags WHERE term IN ({})",
            Params::new(backend).list(chunk.len())
        );
        let args: Vec<Value> = chunk.iter().map(|tag| Value::Text(&tag.term)).collect();
        let rows = tx.fetch_all::<(String,)>(&sql, &args).await?;
        stored.extend(rows.into_iter().map(|(term,)| term));
    }
    tags.retain(|tag| !stored.contains(&tag.term));
    let values: Vec<Value> = tags
        .iter()
        .flat_map(|tag| [Value::Text(&tag.term), Value::Text(&tag.label)])
        .collect();
    tx.insert_rows(
        &RowInsert {
            into: "tags (term, label)",
            width: 2,
            tail: "ON CONFLICT (term) DO NOTHING",
        },
        &values,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Entry;

    fn entry(guid: Option<&str>, link: &str, title: &str) -> NewArticle {
        let entry = Entry {
            guid: guid.map(String::from),
            link: Some(link.into()),
            title: Some(title.into()),
            ..Entry::default()
        };
        dedup::prepare("s", entry, vec![])
    }

    #[test]
    fn entries_sharing_a_key_with_other_text_get_variants() {
        let articles = [
            // A guid reused on two links.
            entry(Some("g"), "https://e.test/1", "One"),
            entry(Some("g"), "https://e.test/2", "Two"),
            // Guid-less items of one page, told apart by title.
            entry(None, "https://e.test/news", "News 1"),
            entry(None, "https://e.test/news", "News 2"),
            // The same entry twice, and a lone one: their own keys.
            entry(Some("h"), "https://e.test/h", "H"),
            entry(Some("h"), "https://e.test/h", "H"),
            entry(None, "https://e.test/alone", "Alone"),
        ];
        let keys = assign_keys(&articles);
        assert_eq!(keys[0], "guid:g + link:https://e.test/1");
        assert_eq!(keys[1], "guid:g + link:https://e.test/2");
        assert!(keys[2].starts_with("link:https://e.test/news + title:"));
        assert!(keys[3].starts_with("link:https://e.test/news + title:"));
        assert_ne!(keys[2], keys[3]);
        assert_eq!(keys[4], "guid:h");
        assert_eq!(keys[5], "guid:h");
        assert_eq!(keys[6], "link:https://e.test/alone");
    }
}
