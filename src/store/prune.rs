//! Retention (docs/CONFIG.md "Retention"): articles older than `retention`, counted from
//! when they were first stored, are deleted; each leaves a tombstone of its
//! keys so that an entry still in a source's feed is not republished as new.
//! Tombstones expire once no feed carried their entry for
//! `tombstone_retention`.

use super::exec::{Exec, Value};
use super::sql::Params;
use super::{from_micros, micros, Backend, Store, StoreError};
use crate::model::NewArticle;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;

/// A tombstone hit refreshes its `seen_at` at most this often: one write a
/// day per old entry is enough for expiry, and fewer writes mean fewer row
/// locks between instances ingesting the same story.
const TOUCH_EVERY: TimeDelta = TimeDelta::days(1);

/// The meta key holding when the last prune ran, for instances sharing a
/// database to agree on who prunes.
pub(super) const LAST_PRUNE: &str = "last_prune";

/// The meta key holding when `rules apply` last deleted articles
/// (`dropped.rs`): SQLite's in-memory band index reloads when it changes,
/// as after a prune.
pub(super) const LAST_REMOVAL: &str = "last_removal";

/// What one prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Articles deleted.
    pub articles: u64,
    /// Tombstones written for them.
    pub tombstones_added: u64,
    /// Tombstones forgotten.
    pub tombstones_expired: u64,
}

impl Store {
    /// Deletes the articles first stored before `now - retention`, writing
    /// their tombstones in the same transaction (a crash leaves both or
    /// neither), and forgets tombstones not seen since
    /// `now - tombstone_retention`; and the fetch history and health events
    /// older than kept (store/history.rs).
    pub async fn prune(
        &self,
        now: DateTime<Utc>,
        retention: std::time::Duration,
        tombstone_retention: std::time::Duration,
    ) -> Result<PruneStats, StoreError> {
        let cutoff = before(now, retention);
        let tombstone_cutoff = before(now, tombstone_retention);
        let now_us = micros(now);
        let _guard = self.write_guard().await;
        let mut tx = self.writer.begin().await?;
        let mut stats = PruneStats::default();
        // The WHERE clauses also keep SQLite's parser from reading ON
        // CONFLICT as a join constraint of the SELECT.
        for insert in [
            "INSERT INTO tombstones (kind, source_id, key, pruned_at, seen_at)
             SELECT 'entry', s.source_id, s.entry_key, $2, $2
             FROM article_sources s JOIN articles a ON a.id = s.article_id
             WHERE a.first_seen < $1
             ON CONFLICT (kind, source_id, key) DO NOTHING",
            "INSERT INTO tombstones (kind, source_id, key, pruned_at, seen_at)
             SELECT 'url', 0, canonical_url, $2, $2 FROM articles
             WHERE first_seen < $1 AND canonical_url IS NOT NULL
             ON CONFLICT (kind, source_id, key) DO NOTHING",
            "INSERT INTO tombstones (kind, source_id, key, pruned_at, seen_at)
             SELECT 'content', 0, content_key, $2, $2 FROM articles
             WHERE first_seen < $1 AND content_key IS NOT NULL
             ON CONFLICT (kind, source_id, key) DO NOTHING",
        ] {
            let done = sqlx::query(insert)
                .bind(cutoff)
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
            stats.tombstones_added += done.rows_affected();
        }
        // Children first: correct whether or not the backend enforces the
        // ON DELETE CASCADE of the schema (SQLite needs a pragma for it).
        for delete in [
            "DELETE FROM article_tags WHERE article_id IN
             (SELECT id FROM articles WHERE first_seen < $1)",
            "DELETE FROM article_sources WHERE article_id IN
             (SELECT id FROM articles WHERE first_seen < $1)",
            // No foreign key cascades these (migrations' article_bands_unchecked).
            "DELETE FROM article_bands WHERE article_id IN
             (SELECT id FROM articles WHERE first_seen < $1)",
        ] {
            sqlx::query(delete).bind(cutoff).execute(&mut *tx).await?;
        }
        stats.articles = sqlx::query("DELETE FROM articles WHERE first_seen < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // A tag no article carries any more would show with no articles.
        sqlx::query(
            "DELETE FROM tags WHERE NOT EXISTS
             (SELECT 1 FROM article_tags t WHERE t.term = tags.term)",
        )
        .execute(&mut *tx)
        .await?;
        // Remembered drops go with the tombstones: an entry still in its
        // feed after that long is judged (and counted) once more.
        sqlx::query("DELETE FROM dropped_entries WHERE dropped_at < $1")
            .bind(tombstone_cutoff)
            .execute(&mut *tx)
            .await?;
        // So do article pages (full text): their articles, stored when the
        // page was read, were pruned by `retention` before.
        sqlx::query("DELETE FROM article_pages WHERE fetched_at < $1")
            .bind(tombstone_cutoff)
            .execute(&mut *tx)
            .await?;
        stats.tombstones_expired = sqlx::query("DELETE FROM tombstones WHERE seen_at < $1")
            .bind(tombstone_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        super::history::prune_in(&mut tx, now).await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(LAST_PRUNE)
        .bind(now_us.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if stats.articles > 0 {
            self.bump_version().await?;
        }
        Ok(stats)
    }

    /// When a prune last ran on this database, by any instance.
    pub async fn last_prune(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.last_prune_raw().await?.map(from_micros))
    }

    /// Claims the scheduled prune due at `due` for this instance: true for
    /// exactly one of the instances sharing the database (compare-and-swap
    /// on the last run's time), false when another one already ran it.
    pub async fn claim_prune(&self, due: DateTime<Utc>) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let last = self.last_prune_raw().await?;
        if last.is_some_and(|last| last >= micros(due)) {
            return Ok(false);
        }
        let claimed = match last {
            None => sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(LAST_PRUNE)
            .bind(micros(due).to_string())
            .execute(&self.writer)
            .await?
            .rows_affected(),
            Some(last) => sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
                .bind(micros(due).to_string())
                .bind(LAST_PRUNE)
                .bind(last.to_string())
                .execute(&self.writer)
                .await?
                .rows_affected(),
        };
        Ok(claimed == 1)
    }

    /// How many tombstones are kept.
    pub async fn tombstone_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tombstones")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn last_prune_raw(&self) -> Result<Option<i64>, StoreError> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(LAST_PRUNE)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value.and_then(|v| v.parse().ok()))
    }
}

/// The tombstones matching an ingest's entries, read in one statement per
/// chunk of entries: (kind, key) -> `seen_at`, keys of kind `entry` being
/// the ingesting source's own. A hit refreshes `seen_at` ([`touch`]).
#[derive(Default)]
pub(super) struct Tombstones(HashMap<(&'static str, String), i64>);

/// Tombstone kinds, each with the entry's key it holds: the ingesting
/// source's own entry key (`source_id` = that source), or the canonical URL
/// or content key, which identify a story across sources (`source_id` 0).
type KeyOf = fn(&NewArticle) -> Option<&str>;
const KINDS: [(&str, bool, KeyOf); 3] = [
    ("entry", true, |a| Some(a.entry_key.as_str())),
    ("url", false, |a| a.canonical_url.as_deref()),
    ("content", false, |a| a.content_key.as_deref()),
];

/// `(kind = … AND source_id = … AND key IN (…)) OR …` for the keys of
/// `entries`; the values to bind, in order: a key, or `None` for the
/// ingesting source's id.
fn match_clause<'a>(
    params: &mut Params,
    entries: &[&'a NewArticle],
) -> (String, Vec<Option<&'a str>>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    for (kind, own, key_of) in KINDS {
        let mut keys: Vec<&str> = entries.iter().filter_map(|a| key_of(a)).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            continue;
        }
        let scope = if own {
            values.push(None);
            params.one()
        } else {
            "0".into()
        };
        let list = params.list(keys.len());
        clauses.push(format!(
            "(kind = '{kind}' AND source_id = {scope} AND key IN ({list}))"
        ));
        values.extend(keys.into_iter().map(Some));
    }
    (clauses.join(" OR "), values)
}

impl Tombstones {
    /// Adds the tombstones matching `entries` of `source_id`.
    pub(super) async fn load<E: Exec>(
        &mut self,
        tx: &mut E,
        backend: Backend,
        source_id: i64,
        entries: &[&NewArticle],
    ) -> Result<(), StoreError> {
        let (clause, values) = match_clause(&mut Params::new(backend), entries);
        if values.is_empty() {
            return Ok(());
        }
        let sql = format!("SELECT kind, key, seen_at FROM tombstones WHERE {clause}");
        let args: Vec<Value> = values
            .into_iter()
            .map(|value| value.map_or(Value::Int(source_id), Value::Text))
            .collect();
        let rows: Vec<(String, String, i64)> = tx.fetch_all(&sql, &args).await?;
        for (kind, key, seen_at) in rows {
            if let Some(&(kind, ..)) = KINDS.iter().find(|(k, ..)| *k == kind) {
                self.0.insert((kind, key), seen_at);
            }
        }
        Ok(())
    }

    /// When one of `article`'s keys belongs to a pruned article: the oldest
    /// `seen_at` among its tombstones.
    pub(super) fn matching(&self, article: &NewArticle) -> Option<i64> {
        if self.0.is_empty() {
            return None;
        }
        KINDS
            .iter()
            .filter_map(|(kind, _, key_of)| self.0.get(&(*kind, key_of(article)?.to_string())))
            .min()
            .copied()
    }
}

/// The tombstones that stopped `hits` (with the oldest `seen_at` each
/// matched) move their `seen_at` to now, at most once per [`TOUCH_EVERY`],
/// as their entries are evidently still in a feed.
pub(super) async fn touch<E: Exec>(
    tx: &mut E,
    backend: Backend,
    source_id: i64,
    hits: &[(&NewArticle, i64)],
    now_us: i64,
) -> Result<(), StoreError> {
    let stale = now_us - micros_of(TOUCH_EVERY);
    let due: Vec<&NewArticle> = hits
        .iter()
        .filter(|(_, seen)| *seen < stale)
        .map(|(article, _)| *article)
        .collect();
    for chunk in due.chunks(1_000) {
        let mut params = Params::new(backend);
        let [now, before] = params.array();
        let (clause, values) = match_clause(&mut params, chunk);
        let sql = format!(
            "UPDATE tombstones SET seen_at = {now} WHERE seen_at < {before} AND ({clause})"
        );
        let mut args = vec![Value::Int(now_us), Value::Int(stale)];
        args.extend(
            values
                .into_iter()
                .map(|value| value.map_or(Value::Int(source_id), Value::Text)),
        );
        tx.execute(&sql, &args).await?;
    }
    Ok(())
}

/// `now - d` in microseconds; a bound too large for dates keeps everything.
fn before(now: DateTime<Utc>, d: std::time::Duration) -> i64 {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .map(micros)
        .unwrap_or(i64::MIN)
}

fn micros_of(d: TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}
