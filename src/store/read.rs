//! Merged views: filtered, newest first, keyset-paged on the
//! `articles_published` index, so a page costs the same at any depth; or
//! ranked by coverage within a window (docs/HTTP.md "Top stories").

use super::sql::Params;
use super::{from_micros, micros, Backend, Engine, Store, StoreError};
use crate::model::{Article, Cursor, Filter, NewArticle, Sort, SourceRef, Tag};
use chrono::{DateTime, Utc};
use sqlx::any::AnyArguments;
use sqlx::any::AnyRow;
use sqlx::{Any, Row};
use std::collections::HashMap;
use std::sync::Arc;

/// A tag and how many articles carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    pub tag: Tag,
    pub articles: i64,
}

impl Store {
    /// [`Store::page`]'s articles read through the pool (PostgreSQL), and
    /// whether there were more. A page but a coverage view reads its
    /// articles' ids, then only the articles not remembered (postgres.rs
    /// `PageMemo`).
    pub(super) async fn page_through_pool(
        &self,
        filter: &Filter,
        before: Option<Cursor>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Arc<Article>>, bool), StoreError> {
        let plan = page_plan(filter, before, limit, now);
        let rows = limit as i64 + 1;
        let ids_sql = match &plan.query {
            PageQuery::Legs(legs) => Some(union_of_legs(legs, rows)),
            PageQuery::Newest { ids, .. } => Some(ids.clone()),
            PageQuery::Scan(_) => None,
        };
        let (Some(sql), Engine::Postgres(postgres)) = (ids_sql, &self.engine) else {
            let sql = page_sql_of(plan.query, rows);
            let rows = bound(&sql, &plan.binds).fetch_all(&self.pool).await?;
            let mut articles = rows.iter().map(article).collect::<Result<Vec<_>, _>>()?;
            let more = articles.len() > limit as usize;
            articles.truncate(limit as usize);
            self.attach_tags_and_sources(&mut articles).await?;
            return Ok((articles.into_iter().map(Arc::new).collect(), more));
        };
        let version = self.content_version().await?;
        let mut ids = Vec::with_capacity(rows as usize);
        for row in bound(&sql, &plan.binds).fetch_all(&self.pool).await? {
            ids.push(row.try_get::<i64, _>(1)?);
        }
        let more = ids.len() > limit as usize;
        ids.truncate(limit as usize);
        let remembered = postgres.pages.remembered(version, &ids);
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !remembered.contains_key(id))
            .collect();
        let read: Vec<Arc<Article>> = self
            .articles_by_id(&missing)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        postgres.pages.remember(version, &read);
        let read: HashMap<i64, &Arc<Article>> = read.iter().map(|a| (a.id, a)).collect();
        // A candidate deleted since its id was read is left out.
        let articles = ids
            .iter()
            .filter_map(|id| {
                read.get(id)
                    .copied()
                    .or_else(|| remembered.get(id))
                    .cloned()
            })
            .collect();
        Ok((articles, more))
    }

    /// The database's plan for a page query (SQLite `EXPLAIN QUERY PLAN`
    /// details, PostgreSQL `EXPLAIN` lines): for diagnosing slow feeds.
    pub async fn explain_page(&self, filter: &Filter) -> Result<Vec<String>, StoreError> {
        let (sql, binds) = page_sql(filter, None, 50, Utc::now());
        self.query_plan(&sql, &binds).await
    }

    /// The plan of the lookup an ingest of `entries` starts with (the
    /// stored articles they may be), as [`Store::explain_page`] gives it.
    pub async fn explain_identity_lookup(
        &self,
        entries: &[NewArticle],
    ) -> Result<Vec<String>, StoreError> {
        let entries: Vec<&NewArticle> = entries.iter().collect();
        let (sql, keys) = super::write::identity_lookup(self.backend(), &entries);
        let binds: Vec<Bind> = keys.iter().map(|k| Bind::Text(k.to_string())).collect();
        self.query_plan(&sql, &binds).await
    }

    async fn query_plan(&self, sql: &str, binds: &[Bind]) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            Backend::Postgres => format!("EXPLAIN {sql}"),
        };
        let rows = bound(&sql, binds).fetch_all(&self.pool).await?;
        let column = match self.backend() {
            Backend::Sqlite => 3,
            Backend::Postgres => 0,
        };
        Ok(rows
            .iter()
            .map(|row| row.try_get::<String, _>(column))
            .collect::<Result<_, _>>()?)
    }

    /// Tags with their article counts, most used first.
    pub async fn tag_counts(&self) -> Result<Vec<TagCount>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT t.term, t.label, COUNT(*) AS n FROM article_tags a JOIN tags t ON t.term = a.term
             GROUP BY t.term, t.label ORDER BY n DESC, t.term",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(term, label, articles)| TagCount {
                tag: Tag { term, label },
                articles,
            })
            .collect())
    }

    /// Total number of stored articles.
    pub async fn article_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM articles")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The stored articles among `ids`, with their tags and sources, as a
    /// feed page shows them (a pruned one is missing).
    pub async fn articles_by_id(&self, ids: &[i64]) -> Result<Vec<Article>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{ARTICLE_SELECT} WHERE a.id IN ({}) ORDER BY a.id",
            Params::numbered_from(1).list(ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let mut articles = query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(article)
            .collect::<Result<Vec<_>, _>>()?;
        self.attach_tags_and_sources(&mut articles).await?;
        Ok(articles)
    }

    pub(super) async fn attach_tags_and_sources(
        &self,
        articles: &mut [Article],
    ) -> Result<(), StoreError> {
        if articles.is_empty() {
            return Ok(());
        }
        let ids = Params::numbered_from(1).list(articles.len());
        let index: HashMap<i64, usize> = articles
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i))
            .collect();

        let [tags_sql, sources_sql, links_sql] =
            PAGE_ATTACHMENTS.map(|sql| sql.replace("{ids}", &ids));
        let query = bind_ids(
            sqlx::query_as::<_, (i64, String, String)>(&tags_sql),
            articles,
        );
        for (id, term, label) in query.fetch_all(&self.pool).await? {
            articles[index[&id]].tags.push(Tag { term, label });
        }

        let query = bind_ids(sqlx::query_as::<_, (i64, String)>(&sources_sql), articles);
        for (id, name) in query.fetch_all(&self.pool).await? {
            let seen_in = &mut articles[index[&id]].seen_in;
            if !seen_in.contains(&name) {
                seen_in.push(name);
            }
        }

        let query = bind_ids(sqlx::query_as::<_, (i64, String)>(&links_sql), articles);
        for (id, url) in query.fetch_all(&self.pool).await? {
            articles[index[&id]].related.push(url);
        }
        Ok(())
    }
}

/// What a page's articles carry, each by `article_id IN ({ids})`: tags,
/// the sources that carried it (first first), other outlets' copies.
pub(super) const PAGE_ATTACHMENTS: [&str; 3] = [
    "SELECT a.article_id, t.term, t.label FROM article_tags a JOIN tags t ON t.term = a.term
     WHERE a.article_id IN ({ids}) ORDER BY a.article_id, a.position, t.term",
    "SELECT x.article_id, s.name FROM article_sources x JOIN sources s ON s.id = x.source_id
     WHERE x.article_id IN ({ids}) ORDER BY x.article_id, x.first_seen, s.id",
    "SELECT article_id, url FROM article_links WHERE article_id IN ({ids})
     ORDER BY article_id, first_seen, url",
];

/// What [`article`] reads, from `articles a` joined with its first source.
macro_rules! article_columns {
    () => {
        "a.id, a.uid, a.link, a.title, a.summary, a.content, a.author, a.published,
         a.updated, s.name, s.url, s.title, s.site_url, s.feed_id, s.feed_updated,
         COALESCE(a.changed_at, a.first_seen), a.language"
    };
}
/// The last column, the outlet count, is `a.outlets` but for coverage
/// walks (see `coverage_as_of`).
const ARTICLE_COLUMNS: &str = concat!(article_columns!(), ", a.outlets");
pub(super) const ARTICLE_SELECT: &str = concat!(
    "SELECT ",
    article_columns!(),
    ", a.outlets FROM articles a JOIN sources s ON s.id = a.source_id"
);

/// An article's outlet count counting only copies first seen at or before
/// `as_of` (a bound parameter). Coverage only grows, so `a.outlets` is that
/// count for every article whose last outlet came by then: the subquery
/// runs only for the few that gained one since the walk began.
fn coverage_as_of(as_of: &str) -> String {
    format!(
        "(CASE WHEN a.last_outlet_at <= {as_of} THEN a.outlets ELSE
            (SELECT COUNT(DISTINCT COALESCE(cs.outlet, '#' || cs.id)) FROM sources cs
             WHERE cs.id IN (SELECT source_id FROM article_sources
                             WHERE article_id = a.id AND first_seen <= {as_of}
                             UNION SELECT source_id FROM article_links
                             WHERE article_id = a.id AND first_seen <= {as_of})) END)"
    )
}

pub(super) enum Bind {
    Int(i64),
    Text(String),
}

impl<'a> From<&'a Bind> for super::exec::Value<'a> {
    fn from(bind: &'a Bind) -> Self {
        match bind {
            Bind::Int(v) => super::exec::Value::Int(*v),
            Bind::Text(v) => super::exec::Value::Text(v),
        }
    }
}

/// `sql` with its numbered parameters bound in order.
fn bound<'q>(sql: &'q str, binds: &'q [Bind]) -> sqlx::query::Query<'q, Any, AnyArguments<'q>> {
    binds
        .iter()
        .fold(sqlx::query(sql), |query, bind| match bind {
            Bind::Int(v) => query.bind(*v),
            Bind::Text(v) => query.bind(v.as_str()),
        })
}

/// Binds the articles' ids to an `IN ($1, …)` list.
fn bind_ids<'q, O>(
    query: sqlx::query::QueryAs<'q, Any, O, AnyArguments<'q>>,
    articles: &[Article],
) -> sqlx::query::QueryAs<'q, Any, O, AnyArguments<'q>> {
    articles.iter().fold(query, |query, a| query.bind(a.id))
}

/// Builds the page query.
///
/// Unfiltered and source-only views walk `articles_published` newest first.
/// A tag filter instead drives from `article_tags_term_published`: each
/// `any` term (or the first `all` term) is one index range read newest
/// first, with the other filters as probes on its candidates, so a page
/// reads about `limit` rows per term whatever the tag's share of the store.
/// Each leg stops at `limit + 1` matches; the union of the legs' tops holds
/// the top of the union.
fn page_sql(
    filter: &Filter,
    before: Option<Cursor>,
    limit: u32,
    now: DateTime<Utc>,
) -> (String, Vec<Bind>) {
    let plan = page_plan(filter, before, limit, now);
    (page_sql_of(plan.query, limit as i64 + 1), plan.binds)
}

/// A plan's query as one statement of `rows` articles.
fn page_sql_of(query: PageQuery, rows: i64) -> String {
    match query {
        PageQuery::Scan(sql) | PageQuery::Newest { articles: sql, .. } => sql,
        PageQuery::Legs(legs) => {
            let candidates = union_of_legs(&legs, rows);
            // CROSS JOIN: SQLite joins in the written order (the few
            // candidates first, then articles by primary key); PostgreSQL
            // plans it freely.
            format!(
                "SELECT {ARTICLE_COLUMNS} FROM ({candidates}) AS c
                 CROSS JOIN articles a JOIN sources s ON s.id = a.source_id
                 WHERE a.id = c.article_id ORDER BY c.published DESC, c.article_id DESC LIMIT {rows}"
            )
        }
    }
}

/// The newest `rows` (published, article_id) of the legs' union.
fn union_of_legs(legs: &[String], rows: i64) -> String {
    let legs = legs
        .iter()
        .enumerate()
        .map(|(i, leg)| format!("SELECT * FROM ({leg}) AS leg{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    format!("{legs} ORDER BY published DESC, article_id DESC LIMIT {rows}")
}

/// A page query in parts, for a reader that runs the legs itself.
pub(super) struct PagePlan {
    pub(super) query: PageQuery,
    /// Every `$N` of the query (a leg uses some of them).
    pub(super) binds: Vec<Bind>,
}

pub(super) enum PageQuery {
    /// Coverage views: the whole query.
    Scan(String),
    /// Other views without a tag to drive from (unfiltered, `none`,
    /// sources): `articles_published` newest first. `articles`: the whole
    /// query; `ids`: only (published, id) of the same rows, for a reader
    /// that remembers articles.
    Newest { articles: String, ids: String },
    /// Tag-driven views: one statement per driving term, each giving at
    /// most `limit + 1` (published, article_id) rows newest first; the page
    /// is the newest `limit + 1` of their union.
    Legs(Vec<String>),
}

/// Builds the page query's parts (see `page_sql`).
///
/// Coverage views (`min_outlets`, `window`, `sort = coverage`) are scans
/// too, with every tag filter a probe: `window` bounds them to its
/// articles, a range of `articles_outlets` (published, outlets) that skips
/// those with too few outlets in the index. A coverage-sorted page ranks the window's candidates
/// (a bounded set) by their outlets as of the walk's first page (`now`, or
/// the cursor's `as_of`), keyset on (outlets, published, id).
pub(super) fn page_plan(
    filter: &Filter,
    before: Option<Cursor>,
    limit: u32,
    now: DateTime<Utc>,
) -> PagePlan {
    let mut binds = Vec::new();
    let next = |binds: &mut Vec<Bind>, bind: Bind| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    let list = |binds: &mut Vec<Bind>, values: &[String]| {
        values
            .iter()
            .map(|v| next(binds, Bind::Text(v.clone())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = limit as i64 + 1;
    let coverage = filter.sort == Sort::Coverage;
    let as_of = match before.and_then(|c| c.coverage) {
        Some(mark) if coverage => mark.as_of,
        _ => now,
    };
    let as_of_bind = coverage.then(|| next(&mut binds, Bind::Int(micros(as_of))));
    let window = filter.effective_window();
    let scan_only = coverage || window.is_some() || filter.min_outlets.is_some();
    // Keyset: `published <= p` first, so the index range starts at the
    // cursor instead of filtering every newer row out.
    let cursor = before.filter(|_| !coverage).map(|cursor| {
        let p = next(&mut binds, Bind::Int(micros(cursor.published)));
        let id = next(&mut binds, Bind::Int(cursor.id));
        (p, id)
    });
    let keyset = |published: &str, id: &str| match &cursor {
        Some((p, c)) => format!(" AND {published} <= {p} AND ({published} < {p} OR {id} < {c})"),
        None => String::new(),
    };
    let (driver, all): (&[String], &[String]) = match (&filter.any[..], &filter.all[..]) {
        (_, all) if scan_only => (&[], all),
        ([], [first, rest @ ..]) => (std::slice::from_ref(first), rest),
        (any, all) => (any, all),
    };
    let driver: Vec<String> = driver
        .iter()
        .map(|term| next(&mut binds, Bind::Text(term.clone())))
        .collect();
    let mut probes = String::new();
    if scan_only && !filter.any.is_empty() {
        let terms = list(&mut binds, &filter.any);
        probes += &format!(
            " AND EXISTS (SELECT 1 FROM article_tags py WHERE py.article_id = {{id}} AND py.term IN ({terms}))"
        );
    }
    let mut all = all.to_vec();
    all.sort();
    all.dedup();
    match &all[..] {
        [] => {}
        [term] => {
            let term = list(&mut binds, std::slice::from_ref(term));
            probes += &format!(
                " AND EXISTS (SELECT 1 FROM article_tags pa WHERE pa.article_id = {{id}} AND pa.term = {term})"
            );
        }
        // One probe for several terms: a chain of EXISTS nests one level
        // per term (SQLite refuses ~1000) and PostgreSQL plans each as a
        // semi-join, its planning time growing past seconds by a few dozen.
        // (article_id, term) is the primary key: one row per term present.
        terms => {
            let count = terms.len();
            let terms = list(&mut binds, terms);
            probes += &format!(
                " AND (SELECT COUNT(*) FROM article_tags pa WHERE pa.article_id = {{id}} AND pa.term IN ({terms})) = {count}"
            );
        }
    }
    if !filter.none.is_empty() {
        let terms = list(&mut binds, &filter.none);
        probes += &format!(
            " AND NOT EXISTS (SELECT 1 FROM article_tags pn WHERE pn.article_id = {{id}} AND pn.term IN ({terms}))"
        );
    }
    if !filter.sources.is_empty() {
        let names = list(&mut binds, &filter.sources);
        probes += &format!(
            " AND EXISTS (SELECT 1 FROM article_sources px JOIN sources ps ON ps.id = px.source_id
                          WHERE px.article_id = {{id}} AND ps.name IN ({names}))"
        );
    }
    if !filter.languages.is_empty() {
        // `fr` holds `fr` and its regional variants (`fr-CA`).
        let languages = filter
            .languages
            .iter()
            .map(|lang| {
                let exact = next(&mut binds, Bind::Text(lang.clone()));
                let variant = next(&mut binds, Bind::Text(format!("{lang}-%")));
                format!("lower(pl.language) = {exact} OR lower(pl.language) LIKE {variant}")
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        probes += &format!(
            " AND EXISTS (SELECT 1 FROM articles pl WHERE pl.id = {{id}} AND ({languages}))"
        );
    }
    if let Some(min) = filter.min_outlets.filter(|m| *m > 1) {
        let min = next(&mut binds, Bind::Int(min.into()));
        probes += &format!(" AND a.outlets >= {min}");
        if let Some(as_of) = &as_of_bind {
            probes += &format!(" AND {} >= {min}", coverage_as_of(as_of));
        }
    }
    if let Some(window) = window {
        let since = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| as_of.checked_sub_signed(w))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let since = next(&mut binds, Bind::Int(micros(since)));
        probes += &format!(" AND a.published >= {since}");
    }
    let query = if let Some(as_of) = &as_of_bind {
        // Articles stored after the walk began wait for the next walk.
        let outlets = coverage_as_of(as_of);
        let keyset = match before.zip(before.and_then(|c| c.coverage)) {
            Some((cursor, mark)) => {
                let n = next(&mut binds, Bind::Int(mark.outlets));
                let p = next(&mut binds, Bind::Int(micros(cursor.published)));
                let id = next(&mut binds, Bind::Int(cursor.id));
                format!(
                    " AND ({outlets} < {n} OR ({outlets} = {n} AND (a.published < {p}
                          OR (a.published = {p} AND a.id < {id}))))"
                )
            }
            None => String::new(),
        };
        PageQuery::Scan(format!(
            "SELECT {}, {outlets} AS coverage FROM articles a JOIN sources s ON s.id = a.source_id
             WHERE a.first_seen <= {as_of}{}{keyset}
             ORDER BY coverage DESC, a.published DESC, a.id DESC LIMIT {rows}",
            article_columns!(),
            probes.replace("{id}", "a.id"),
        ))
    } else if driver.is_empty() {
        let conditions = format!(
            "WHERE 1 = 1{}{} ORDER BY a.published DESC, a.id DESC LIMIT {rows}",
            keyset("a.published", "a.id"),
            probes.replace("{id}", "a.id"),
        );
        PageQuery::Newest {
            articles: format!(
                "SELECT {ARTICLE_COLUMNS} FROM articles a JOIN sources s ON s.id = a.source_id
                 {conditions}"
            ),
            ids: format!("SELECT a.published, a.id FROM articles a {conditions}"),
        }
    } else {
        PageQuery::Legs(
            driver
                .iter()
                .map(|term| {
                    format!(
                        "SELECT t.published, t.article_id FROM article_tags t
                         WHERE t.term = {term}{}{}
                         ORDER BY t.published DESC, t.article_id DESC LIMIT {rows}",
                        keyset("t.published", "t.article_id"),
                        probes.replace("{id}", "t.article_id"),
                    )
                })
                .collect(),
        )
    };
    PagePlan { query, binds }
}

/// An [`Article`] from a row of `ARTICLE_COLUMNS`, each column read with
/// `$row.$get(index)?`: sqlx's rows and SQLite's page reader (sqlite/page_reader.rs) share the mapping.
macro_rules! article_from_row {
    ($row:ident . $get:ident) => {{
        let source_updated: Option<i64> = $row.$get(14)?;
        Article {
            id: $row.$get(0)?,
            uid: $row.$get(1)?,
            link: $row.$get(2)?,
            title: $row.$get(3)?,
            summary: $row.$get(4)?,
            content: $row.$get(5)?,
            author: $row.$get(6)?,
            language: $row.$get(16)?,
            published: from_micros($row.$get(7)?),
            updated: from_micros($row.$get(8)?),
            changed: from_micros($row.$get(15)?),
            tags: Vec::new(),
            source: SourceRef {
                name: $row.$get(9)?,
                feed_url: $row.$get(10)?,
                title: $row.$get(11)?,
                site_url: $row.$get(12)?,
                feed_id: $row.$get(13)?,
                updated: source_updated.map(from_micros),
            },
            seen_in: Vec::new(),
            related: Vec::new(),
            outlets: $row.$get(17)?,
        }
    }};
}
pub(super) use article_from_row;

pub(super) fn article(row: &AnyRow) -> Result<Article, sqlx::Error> {
    Ok(article_from_row!(row.try_get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sql_numbers_every_placeholder_in_order() {
        let filter = Filter {
            any: vec!["china".into(), "russia".into()],
            all: vec!["world".into()],
            none: vec!["sport".into()],
            sources: vec!["rfi-en".into()],
            languages: vec!["fr".into()],
            ..Filter::default()
        };
        let cursor = Cursor {
            published: chrono::DateTime::UNIX_EPOCH,
            id: 7,
            coverage: None,
        };
        let (sql, binds) = page_sql(&filter, Some(cursor), 50, Utc::now());
        assert_eq!(binds.len(), 9);
        for i in 1..=9 {
            assert!(sql.contains(&format!("${i}")), "missing ${i} in {sql}");
        }
        assert!(!sql.contains("$10"));
        assert!(sql.ends_with("LIMIT 51"));
    }

    #[test]
    fn coverage_walks_bind_their_time_once_and_number_every_placeholder() {
        let filter = Filter {
            any: vec!["china".into()],
            none: vec!["sport".into()],
            min_outlets: Some(3),
            sort: Sort::Coverage,
            ..Filter::default()
        };
        let as_of = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let cursor = Cursor {
            published: DateTime::UNIX_EPOCH,
            id: 7,
            coverage: Some(crate::model::CoverageMark { outlets: 4, as_of }),
        };
        // A later `now` than the walk's: the cursor's time wins.
        let (sql, binds) = page_sql(&filter, Some(cursor), 50, Utc::now());
        // as_of, any, none, min, since, outlets, published, id.
        assert_eq!(binds.len(), 8);
        for i in 1..=8 {
            assert!(sql.contains(&format!("${i}")), "missing ${i} in {sql}");
        }
        assert!(!sql.contains("$9"));
        assert!(matches!(binds[0], Bind::Int(t) if t == micros(as_of)));
        let since = micros(as_of - Filter::COVERAGE_WINDOW);
        assert!(binds
            .iter()
            .any(|b| matches!(b, Bind::Int(t) if *t == since)));
        assert!(sql.contains("ORDER BY coverage DESC, a.published DESC, a.id DESC LIMIT 51"));
        assert!(
            !sql.contains("article_tags t"),
            "a scan, tags as probes: {sql}"
        );
    }
}
