//! SQLite feed pages read in one blocking call. Through sqlx every
//! statement and every row crosses to the connection's worker thread and
//! back, and each value is converted twice (SQLite, sqlx `Any`, ours): a
//! 50-entry page with its tags, sources and related links was ~300 thread
//! hand-offs, which cost more than the queries. Here one thread of the
//! blocking pool runs the page's four statements on a connection of its
//! own, in one read transaction, so they also see one snapshot.

use super::exec::bind_all;
use crate::model::{Article, SourceRef, Tag};
use crate::store::exec::Value;
use crate::store::memo::ArticleMemo;
use crate::store::read::{
    article_from_row, Bind, PagePlan, PageQuery, ARTICLE_SELECT, PAGE_ATTACHMENTS,
};
use crate::store::{from_micros, StoreError};
use rusqlite::OptionalExtension;
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Read-only connections to the store's SQLite file, opened on demand.
pub(in crate::store) struct PageReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Pages read at once: one per core. More threads only contend for
    /// SQLite's locks and split the page caches, and connections stay few
    /// enough to be reused, never opened per page (that reads the schema
    /// again).
    permits: tokio::sync::Semaphore,
    busy_timeout: Duration,
    /// What pages read at one content version, forgotten whenever the
    /// version moves (every write that changes feeds, prunes included)...
    memo: Mutex<Memo>,
    /// ...except across versions this process's ingests made, whose
    /// changed articles are known: then only those are forgotten. Version
    /// -> articles changed by the write that made it; the latest few.
    changes: Mutex<std::collections::BTreeMap<i64, Vec<i64>>>,
}

/// Versions whose changed articles are kept (group commits a few seconds
/// apart at most: a reader idle longer starts afresh).
const CHANGES_KEPT: usize = 256;

/// What pages read at one content version.
struct Memo {
    /// Tag term -> label. A label never changes while its tag is stored
    /// (the first spelling is kept), so pages need not join every tag row
    /// with `tags`. A prune may delete a tag and a later ingest store it
    /// with another spelling: hence per version.
    labels: HashMap<String, String>,
    /// Articles of tag-driven pages, and the version they were read at.
    articles: ArticleMemo,
}

impl Memo {
    fn new(version: i64) -> Memo {
        Memo {
            labels: HashMap::new(),
            articles: ArticleMemo::new(version),
        }
    }
}

/// How much of the database file readers map: far beyond any store here.
const MMAP_BYTES: i64 = 1 << 32;

/// Distinct page statements kept prepared per connection (filter shapes
/// times page sizes in use).
const STATEMENT_CACHE: usize = 64;

impl PageReader {
    pub(in crate::store) fn new(path: PathBuf, busy_timeout: Duration) -> PageReader {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PageReader {
            path,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(cores),
            busy_timeout,
            memo: Mutex::new(Memo::new(0)),
            changes: Mutex::new(Default::default()),
        }
    }

    /// Records that `version` was made by a write that changed `touched`.
    pub(in crate::store) fn changed(&self, version: i64, touched: Vec<i64>) {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        changes.insert(version, touched);
        while changes.len() > CHANGES_KEPT {
            changes.pop_first();
        }
    }

    /// Moves `memo` to `version` forgetting only the articles changed in
    /// between, when every version in between is known (another process's
    /// write is not); false when it cannot.
    fn forget_changed(&self, memo: &mut Memo, version: i64) -> bool {
        let span = version - memo.articles.version;
        if !(1..=CHANGES_KEPT as i64).contains(&span) {
            return false;
        }
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(touched) = (memo.articles.version + 1..=version)
            .map(|v| changes.get(&v))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        for id in touched.into_iter().flatten() {
            memo.articles.forget(*id);
        }
        memo.articles.version = version;
        true
    }

    /// The articles of a page query (read.rs) with their tags, sources and
    /// related links: at most `limit`, and whether there were more.
    /// `version`: the store's content version as the caller knows it.
    pub(in crate::store) async fn page(
        self: &Arc<Self>,
        plan: PagePlan,
        limit: usize,
        version: i64,
    ) -> Result<(Vec<Arc<Article>>, bool), StoreError> {
        {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            // A caller with an older version (it read the version just
            // before another request moved it) leaves the memo alone: it
            // reads newer articles from it, and remembers none (by_legs).
            if version > memo.articles.version {
                if !self.forget_changed(&mut memo, version) {
                    *memo = Memo::new(version);
                }
            } else {
                memo.articles.expire();
            }
        }
        // Never closed.
        let _permit = self.permits.acquire().await;
        let reader = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = reader.connection()?;
            let page = read_page(&mut conn, &plan, limit, &reader.memo, version)?;
            reader.give_back(conn);
            Ok(page)
        })
        .await
        .map_err(|e| StoreError::ReadTask(e.to_string()))?
    }

    fn connection(&self) -> Result<Connection, rusqlite::Error> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        // Read-write flags with `query_only`: a read-only open fails when
        // the WAL index (-shm) has to be created.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
        // Pages are read all over the file (random filters): mapped, they
        // are read in place from the OS's cache, with no copy into a page
        // cache per connection (whose misses also take SQLite's global
        // allocator lock). Pages still in the WAL are read as before.
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }
}

/// `version`: the content version `memo` was checked against. The read
/// snapshot is at least as new (the version is bumped after the writes it
/// counts), so what it reads may be remembered under that version.
fn read_page(
    conn: &mut Connection,
    plan: &PagePlan,
    limit: usize,
    memo: &Mutex<Memo>,
    version: i64,
) -> Result<(Vec<Arc<Article>>, bool), rusqlite::Error> {
    let tx = conn.transaction()?;
    let page = match &plan.query {
        PageQuery::Scan(sql) | PageQuery::Newest { articles: sql, .. } => {
            let mut statement = bound(&tx, sql, &plan.binds)?;
            let mut rows = statement.raw_query();
            let mut articles = Vec::with_capacity(limit + 1);
            while let Some(row) = rows.next()? {
                articles.push(article(row)?);
            }
            drop(rows);
            let more = articles.len() > limit;
            articles.truncate(limit);
            if !articles.is_empty() {
                attach(&tx, &mut articles, memo)?;
            }
            (articles.into_iter().map(Arc::new).collect(), more)
        }
        PageQuery::Legs(legs) => by_legs(&tx, legs, &plan.binds, limit, memo, version)?,
    };
    tx.commit()?;
    Ok(page)
}

/// A tag-driven page: each leg read alone (in index order, no sort), their
/// union's newest `limit + 1` kept here, then those articles: from `memo`,
/// else by primary key (and remembered). In one statement SQLite sorted
/// every leg and the union again in temporary B-trees.
fn by_legs(
    conn: &Connection,
    legs: &[String],
    binds: &[Bind],
    limit: usize,
    memo: &Mutex<Memo>,
    version: i64,
) -> Result<(Vec<Arc<Article>>, bool), rusqlite::Error> {
    let mut candidates: Vec<(i64, i64)> = Vec::new();
    for leg in legs {
        let mut statement = bound(conn, leg, binds)?;
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next()? {
            candidates.push((row.get(0)?, row.get(1)?));
        }
    }
    // Newest first, as the page query orders: (published, id) descending.
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    candidates.dedup();
    let more = candidates.len() > limit;
    candidates.truncate(limit);
    if candidates.is_empty() {
        return Ok((Vec::new(), more));
    }
    let remembered = memo
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .articles
        .remembered(candidates.iter().map(|(_, id)| *id));
    let missing: Vec<i64> = candidates
        .iter()
        .map(|(_, id)| *id)
        .filter(|id| !remembered.contains_key(id))
        .collect();
    let mut read = Vec::with_capacity(missing.len());
    if !missing.is_empty() {
        let list = vec!["?"; missing.len()].join(", ");
        let sql = format!("{ARTICLE_SELECT} WHERE a.id IN ({list})");
        let mut statement = conn.prepare_cached(&sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(&missing))?;
        while let Some(row) = rows.next()? {
            read.push(article(row)?);
        }
        drop(rows);
        attach(conn, &mut read, memo)?;
    }
    let read: HashMap<i64, Arc<Article>> = read.into_iter().map(|a| (a.id, Arc::new(a))).collect();
    memo.lock()
        .unwrap_or_else(|e| e.into_inner())
        .articles
        .remember(version, read.values());
    let articles = candidates
        .iter()
        .filter_map(|(_, id)| read.get(id).or_else(|| remembered.get(id)).cloned())
        .collect();
    Ok((articles, more))
}

/// `sql` prepared (cached) with those of `binds` it names bound (a leg
/// uses only some of the plan's `$N`).
fn bound<'c>(
    conn: &'c Connection,
    sql: &str,
    binds: &[Bind],
) -> Result<rusqlite::CachedStatement<'c>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(sql)?;
    let values: Vec<Value> = binds.iter().map(Value::from).collect();
    bind_all(&mut statement, &values)?;
    Ok(statement)
}

/// Tags, sources and related links, in the order read.rs gives them.
fn attach(
    conn: &Connection,
    articles: &mut [Article],
    memo: &Mutex<Memo>,
) -> Result<(), rusqlite::Error> {
    let index: HashMap<i64, usize> = articles
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id, i))
        .collect();
    let ids: Vec<i64> = articles.iter().map(|a| a.id).collect();
    let list = vec!["?"; ids.len()].join(", ");
    // Tags are read below without PAGE_ATTACHMENTS' join.
    let [_, sources_sql, links_sql] = PAGE_ATTACHMENTS;
    let (sources_sql, links_sql) = (
        sources_sql.replace("{ids}", &list),
        links_sql.replace("{ids}", &list),
    );

    // The article_tags primary key alone (article_id, term): no join with
    // `tags`, no sort by position in SQL.
    let tags_sql =
        format!("SELECT article_id, term, position FROM article_tags WHERE article_id IN ({list})");
    let mut statement = conn.prepare_cached(&tags_sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(&ids))?;
    let mut tags: Vec<(usize, i64, String)> = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        tags.push((index[&id], row.get(2)?, row.get(1)?));
    }
    drop(rows);
    tags.sort_unstable_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let mut guard = memo.lock().unwrap_or_else(|e| e.into_inner());
    let labels = &mut guard.labels;
    for (article, _, term) in tags {
        let label = match labels.get(&term) {
            Some(label) => label.clone(),
            None => {
                let stored: Option<String> = conn
                    .prepare_cached("SELECT label FROM tags WHERE term = ?1")?
                    .query_row([&term], |row| row.get(0))
                    .optional()?;
                match stored {
                    Some(label) => {
                        labels.insert(term.clone(), label.clone());
                        label
                    }
                    // Not expected (a foreign key): the term stands in.
                    None => term.clone(),
                }
            }
        };
        articles[article].tags.push(Tag { term, label });
    }
    drop(guard);

    let mut statement = conn.prepare_cached(&sources_sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(&ids))?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let name: String = row.get(1)?;
        let seen_in = &mut articles[index[&id]].seen_in;
        if !seen_in.contains(&name) {
            seen_in.push(name);
        }
    }
    drop(rows);

    let mut statement = conn.prepare_cached(&links_sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(&ids))?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        articles[index[&id]].related.push(row.get(1)?);
    }
    Ok(())
}

/// The columns of `read::ARTICLE_COLUMNS`, in order.
fn article(row: &rusqlite::Row<'_>) -> Result<Article, rusqlite::Error> {
    Ok(article_from_row!(row.get))
}
