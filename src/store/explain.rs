//! `tributary explain`: everything the store knows about one article and
//! why: the entries that carry it, its other outlets' copies, its tags'
//! origins.

use super::read::{article, ARTICLE_SELECT};
use super::{from_micros, Store, StoreError};
use crate::model::{Article, Tag};
use chrono::{DateTime, Utc};

/// One article as `explain` shows it.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub article: Article,
    pub first_seen: DateTime<Utc>,
    /// Every entry (per source) identified as this article.
    pub entries: Vec<ExplainedEntry>,
    /// Copies recognized by their text (near-duplicates).
    pub copies: Vec<OutletCopy>,
    /// Each tag with why it is there (`None` for articles stored before
    /// origins were recorded).
    pub tags: Vec<(Tag, Option<String>)>,
    /// Entries of this article's sources under the same link or the same
    /// id that are other articles, and why.
    pub kept_apart: Vec<KeptApart>,
    /// The distinct outlets that carried it (docs/TAGS-AND-DEDUP.md
    /// "Outlets"), the first first.
    pub outlets: Vec<OutletSeen>,
}

/// One outlet of an article: its name (a source's `outlet`; `#id` for a
/// source the config sync has not named), when its first copy was seen,
/// and its sources that carried the article.
#[derive(Debug, Clone)]
pub struct OutletSeen {
    pub outlet: String,
    pub first_seen: DateTime<Utc>,
    pub sources: Vec<String>,
}

/// An entry that was not merged into the explained article.
#[derive(Debug, Clone)]
pub struct KeptApart {
    pub source: String,
    pub entry_key: String,
    /// Its article's id (`urn:uuid:…`) and title.
    pub uid: String,
    pub title: String,
    /// Why it is an article of its own (`None` if stored before reasons
    /// were recorded).
    pub why: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExplainedEntry {
    pub source: String,
    /// `guid:…`, `link:…` or `hash:…`, with ` + link:…` or ` + text:…`
    /// when other entries of the source share that key.
    pub entry_key: String,
    pub first_seen: DateTime<Utc>,
    /// Why this entry is this article (`None` if stored before reasons
    /// were recorded).
    pub why: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OutletCopy {
    pub source: String,
    pub url: String,
    pub similarity: f64,
}

impl Store {
    /// The article whose id (`urn:uuid:…`), link or any copy's link is
    /// `key`.
    pub async fn explain(&self, key: &str) -> Result<Option<Explanation>, StoreError> {
        let canonical = crate::dedup::canonical_url(key);
        let sql = format!(
            "{ARTICLE_SELECT} WHERE a.uid = $1 OR a.link = $1 OR a.canonical_url = $2
                OR a.id IN (SELECT article_id FROM article_links WHERE canonical_url = $2)
             ORDER BY a.id LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(key)
            .bind(&canonical)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = [article(&row)?];
        self.attach_tags_and_sources(&mut found).await?;
        let [article] = found;
        let id = article.id;

        let first_seen: i64 = sqlx::query_scalar("SELECT first_seen FROM articles WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        let entries: Vec<ExplainedEntry> =
            sqlx::query_as::<_, (String, String, i64, Option<String>)>(
                "SELECT s.name, x.entry_key, x.first_seen, x.matched_by FROM article_sources x
                 JOIN sources s ON s.id = x.source_id WHERE x.article_id = $1
                 ORDER BY x.first_seen, s.name",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(source, entry_key, at, why)| ExplainedEntry {
                source,
                entry_key,
                first_seen: from_micros(at),
                why,
            })
            .collect();
        let kept_apart = self.kept_apart(id, article.link.as_deref()).await?;
        let copies = sqlx::query_as::<_, (String, String, f64)>(
            "SELECT s.name, l.url, l.similarity FROM article_links l
             JOIN sources s ON s.id = l.source_id WHERE l.article_id = $1
             ORDER BY l.first_seen, l.url",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(source, url, similarity)| OutletCopy {
            source,
            url,
            similarity,
        })
        .collect();
        let tags = sqlx::query_as::<_, (String, String, Option<String>)>(
            "SELECT t.term, t.label, a.origin FROM article_tags a JOIN tags t ON t.term = a.term
             WHERE a.article_id = $1 ORDER BY a.position, t.term",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(term, label, origin)| (Tag { term, label }, origin))
        .collect();
        // The grouping the outlet count triggers use (migrations' outlets).
        let mut outlets: Vec<OutletSeen> = Vec::new();
        let rows = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT COALESCE(s.outlet, '#' || s.id), s.name, MIN(c.first_seen) FROM (
                 SELECT source_id, first_seen FROM article_sources WHERE article_id = $1
                 UNION ALL SELECT source_id, first_seen FROM article_links WHERE article_id = $1
             ) c JOIN sources s ON s.id = c.source_id
             GROUP BY COALESCE(s.outlet, '#' || s.id), s.name ORDER BY 3, 2",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for (outlet, source, at) in rows {
            match outlets.iter_mut().find(|o| o.outlet == outlet) {
                Some(seen) => seen.sources.push(source),
                None => outlets.push(OutletSeen {
                    outlet,
                    first_seen: from_micros(at),
                    sources: vec![source],
                }),
            }
        }
        Ok(Some(Explanation {
            article,
            first_seen: from_micros(first_seen),
            entries,
            copies,
            tags,
            kept_apart,
            outlets,
        }))
    }

    /// The other articles of article `id`'s sources that have its link, or
    /// one of its entries' keys with another variant.
    async fn kept_apart(&self, id: i64, link: Option<&str>) -> Result<Vec<KeptApart>, StoreError> {
        let keys = sqlx::query_as::<_, (i64, String)>(
            "SELECT source_id, entry_key FROM article_sources WHERE article_id = $1",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut apart = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (source_id, key) in keys {
            let base = crate::dedup::base_key(&key);
            let rows = sqlx::query_as::<_, (String, String, String, String, Option<String>)>(
                "SELECT s.name, x.entry_key, a.uid, a.title, x.matched_by
                 FROM article_sources x JOIN articles a ON a.id = x.article_id
                 JOIN sources s ON s.id = x.source_id
                 WHERE x.source_id = $1 AND x.article_id <> $2
                   AND (x.entry_key = $3 OR substr(x.entry_key, 1, length($4)) = $4
                        OR a.link = $5)
                 ORDER BY x.first_seen, x.entry_key LIMIT 50",
            )
            .bind(source_id)
            .bind(id)
            .bind(base)
            .bind(format!("{base} + "))
            .bind(link)
            .fetch_all(&self.pool)
            .await?;
            for (source, entry_key, uid, title, why) in rows {
                if seen.insert((source.clone(), entry_key.clone())) {
                    apart.push(KeptApart {
                        source,
                        entry_key,
                        uid,
                        title,
                        why,
                    });
                }
            }
        }
        Ok(apart)
    }
}
