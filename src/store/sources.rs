//! Sources: synced from the config, claimed when due (a lease, so that one
//! fetch is done once), and their fetch outcomes recorded.

use super::exec::{Exec, Value};
use super::sql::Params;
use super::{from_micros, micros, retry_after_conflict, Backend, Store, StoreError};
use crate::model::SourceState;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A source as the config declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSync {
    pub name: String,
    pub url: String,
    pub enabled: bool,
    /// The outlet its copies count for (docs/TAGS-AND-DEDUP.md "Outlets");
    /// `None`: an outlet of its own.
    pub outlet: Option<String>,
}

/// A source claimed for one fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub consecutive_failures: i64,
    /// The polling floor the last full response set: a 304 carries no
    /// `<ttl>`, and may carry no cache headers, yet the floor still holds.
    pub poll_floor: PollFloor,
}

/// What a response asked of our polling interval, as stored between fetches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollFloor {
    /// RSS `<ttl>` of the last parsed body.
    pub ttl: Option<Duration>,
    /// `Cache-Control: max-age` (or `Expires`, as an interval) of the last
    /// response that had either.
    pub max_age: Option<Duration>,
}

/// The outcome of one fetch, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchRecord {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    /// `None` on success.
    pub error: Option<String>,
    pub next_fetch_at: DateTime<Utc>,
    /// Validators to echo next time; `None` leaves the stored ones alone.
    pub validators: Option<(Option<String>, Option<String>)>,
    pub retry_after_until: Option<DateTime<Utc>>,
    pub backoff_until: Option<DateTime<Utc>>,
    /// Counts toward backoff (a 429 does not).
    pub failed: bool,
    /// Set when the source must stop being fetched (410 Gone).
    pub disabled_reason: Option<String>,
    pub moved_to: Option<String>,
    /// Feed-level facts from a parsed body.
    pub feed: Option<crate::model::FeedMeta>,
    /// The polling floor to remember; `None` leaves the stored one alone.
    pub poll_floor: Option<PollFloor>,
    /// The failure count to store instead of counting on from the stored
    /// one: set when failures were counted in memory (`StoreFailure`).
    pub consecutive_failures: Option<i64>,
    /// How long the fetch took, and the body's bytes (the history).
    pub elapsed: Duration,
    pub bytes: u64,
    /// Not a fetch: entries a WebSub hub pushed. Only the articles, the
    /// source's `last_new_at` and the push count are written; the fetch
    /// state (times, validators, failures) is the polls'.
    pub pushed: bool,
}

/// A refresh whose outcome the store could not write (a full disk, a lost
/// connection). Kept in memory, so that the source's state, `/metrics` and
/// `/healthz` show it even when the failure itself cannot be stored, until
/// a later refresh of the source is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFailure {
    /// The first failed refresh of this run of them.
    pub since: DateTime<Utc>,
    /// The latest.
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub error: String,
    /// Counting this refresh.
    pub consecutive_failures: i64,
    /// The error is the store's (space, I/O, the connection), which other
    /// writes meet too, rather than this refresh's data's.
    pub store_wide: bool,
}

impl StoreError {
    /// Whether the error concerns what this write stored (a constraint, a
    /// value the database refuses) rather than the store itself: other
    /// writes do not meet it, so it is not the store failing.
    pub fn is_about_the_data(&self) -> bool {
        match self {
            StoreError::Group(inner) => inner.is_about_the_data(),
            StoreError::UnknownSource(_) => true,
            StoreError::Database { about_the_data, .. } => *about_the_data,
            StoreError::Db(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|code| data_error_code(&code))
            }
            _ => false,
        }
    }
}

/// PostgreSQL's SQLSTATE classes 22 (data exception) and 23 (integrity
/// constraint violation); SQLite's (extended) codes whose primary code is
/// TOOBIG, CONSTRAINT, MISMATCH or RANGE.
fn data_error_code(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("22") || code.starts_with("23");
    }
    code.parse::<i32>()
        .is_ok_and(|n| matches!(n & 0xff, 18 | 19 | 20 | 25))
}

/// What went unstored, by source; and a failed claim of due sources (which
/// is a write too: when it fails, no refresh runs to notice).
#[derive(Debug, Default)]
pub(super) struct Unstored {
    sources: std::sync::Mutex<HashMap<String, StoreFailure>>,
    claim: std::sync::Mutex<Option<StoreFailure>>,
}

/// Whether this process's writes reach the database (`/healthz`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteHealth {
    /// Sources whose latest refresh could not be stored, by name.
    pub sources: Vec<(String, StoreFailure)>,
    /// Claiming due sources failed, and has not worked since.
    pub claim: Option<StoreFailure>,
}

impl WriteHealth {
    /// False while the store fails this process's writes: a source's
    /// refresh failed for a store-wide reason, or claiming did. (A refresh
    /// whose data the database refused shows in its source's state only.)
    pub fn is_ok(&self) -> bool {
        self.store_wide().next().is_none() && self.claim.is_none()
    }

    fn store_wide(&self) -> impl Iterator<Item = &(String, StoreFailure)> {
        self.sources.iter().filter(|(_, f)| f.store_wide)
    }

    /// Why writes are failing, in one line; `None` when they are not.
    pub fn reason(&self) -> Option<String> {
        let latest = self
            .store_wide()
            .map(|(_, f)| f)
            .chain(self.claim.as_ref())
            .max_by_key(|f| f.at)?;
        let since = self
            .store_wide()
            .map(|(_, f)| f.since)
            .chain(self.claim.as_ref().map(|f| f.since))
            .min()
            .unwrap_or(latest.since);
        let mut reason = format!(
            "store writes failing since {}: {}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            latest.error
        );
        let names: Vec<&str> = self.store_wide().map(|(n, _)| n.as_str()).collect();
        if !names.is_empty() {
            reason.push_str(&format!(
                " ({} not stored: {})",
                plural(names.len(), "refresh", "refreshes"),
                names.join(", ")
            ));
        }
        if self.claim.is_some() {
            reason.push_str(" (claiming due sources fails)");
        }
        Some(reason)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Unstored {
    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoreFailure>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn claim(&self) -> std::sync::MutexGuard<'_, Option<StoreFailure>> {
        self.claim.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const STATE_COLUMNS: &str = "s.name, s.url, s.enabled, s.title, s.last_fetch_at, s.last_status,
    s.last_error, s.consecutive_failures, s.next_fetch_at, s.retry_after_until, s.backoff_until,
    s.disabled_reason, s.moved_to, s.etag, s.last_modified,
    (SELECT COUNT(*) FROM article_sources x WHERE x.source_id = s.id) AS articles, s.last_new_at";

impl Store {
    /// Makes the sources table match the config: new ones added, changed
    /// URLs reset (validators belong to the old URL), removed ones kept for
    /// their articles but no longer fetched. Idempotent, so every instance
    /// may run it.
    pub async fn sync_sources(&self, sources: &[SourceSync]) -> Result<(), StoreError> {
        // Compare first, write only what differs: with the same config on
        // every instance, a start or reload then writes nothing. Every write
        // below is conditional too, so one racing with another instance's
        // identical sync is a no-op rather than a flip-flop.
        let stored: Vec<(String, String, i64, i64, Option<String>)> =
            sqlx::query_as("SELECT name, url, configured, enabled, outlet FROM sources")
                .fetch_all(&self.pool)
                .await?;
        let stored: HashMap<String, (String, bool, bool, Option<String>)> = stored
            .into_iter()
            .map(|(name, url, configured, enabled, outlet)| {
                (name, (url, configured != 0, enabled != 0, outlet))
            })
            .collect();
        let mut writes = Vec::new();
        for source in sources {
            match stored.get(&source.name) {
                None => writes.push(SyncWrite::Insert(source)),
                Some((url, configured, enabled, outlet)) => {
                    if *url != source.url {
                        writes.push(SyncWrite::NewUrl(source));
                    }
                    if *outlet != source.outlet {
                        writes.push(SyncWrite::Outlet(source));
                    }
                    if !configured || *enabled != source.enabled {
                        writes.push(SyncWrite::Flags(source));
                    }
                }
            }
        }
        let configured: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        // A source gone from the config no longer makes the store unhealthy.
        self.unstored
            .sources()
            .retain(|name, _| configured.contains(name.as_str()));
        for (name, (_, was_configured, _, _)) in &stored {
            if *was_configured && !configured.contains(name.as_str()) {
                writes.push(SyncWrite::Remove(name));
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let _guard = self.write_guard().await;
        let mut tries = 1;
        loop {
            match self.sync_writes(&writes).await {
                Err(e) if retry_after_conflict(&e, tries).await => tries += 1,
                Err(e) => return Err(e),
                Ok(()) => break,
            }
        }
        // Another outlet changes the articles' counts (a trigger counts
        // them again), so views cached at the old version are stale.
        if writes.iter().any(|w| matches!(w, SyncWrite::Outlet(_))) {
            self.bump_version().await?;
        }
        Ok(())
    }

    async fn sync_writes(&self, writes: &[SyncWrite<'_>]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for write in writes {
            write.run(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` sources due at `now` (or the named ones, due or
    /// not, when `only` is given) with a lease until `lease_until`; a source
    /// whose lease is held elsewhere is skipped.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        only: Option<&[String]>,
    ) -> Result<Vec<Claimed>, StoreError> {
        if only.is_some_and(|names| names.is_empty()) {
            return Ok(Vec::new());
        }
        let _guard = self.write_guard().await;
        let due = match only {
            // Asked for by name: due or not, but a server's Retry-After
            // is honoured even then.
            Some(_) => "(retry_after_until IS NULL OR retry_after_until <= $2)",
            None => "(next_fetch_at IS NULL OR next_fetch_at <= $2)",
        };
        let names = match only {
            Some(names) => format!(
                " AND name IN ({})",
                Params::numbered_from(4).list(names.len())
            ),
            None => String::new(),
        };
        // PostgreSQL: SKIP LOCKED lets several instances claim at once without
        // waiting on each other's rows; SQLite has one writer anyway. Never
        // fetched (NULL) first on both: the dialects sort NULL differently.
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE sources SET lease_owner = $1, lease_until = $3
             WHERE id IN (
                 SELECT id FROM sources
                 WHERE configured = 1 AND enabled = 1 AND disabled_reason IS NULL
                   AND {due} AND (lease_until IS NULL OR lease_until <= $2){names}
                 ORDER BY COALESCE(next_fetch_at, 0), id LIMIT {limit}{lock})
             RETURNING id, name, url, etag, last_modified, consecutive_failures,
                       floor_ttl, floor_max_age"
        );
        let mut query = sqlx::query(&sql)
            .bind(owner)
            .bind(micros(now))
            .bind(micros(lease_until));
        for name in only.unwrap_or_default() {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.writer).await?;
        let mut claimed: Vec<Claimed> = rows
            .iter()
            .map(|row| -> Result<Claimed, sqlx::Error> {
                Ok(Claimed {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    url: row.try_get(2)?,
                    etag: row.try_get(3)?,
                    last_modified: row.try_get(4)?,
                    consecutive_failures: row.try_get(5)?,
                    poll_floor: PollFloor {
                        ttl: seconds(row.try_get(6)?),
                        max_age: seconds(row.try_get(7)?),
                    },
                })
            })
            .collect::<Result<_, _>>()?;
        claimed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(claimed)
    }

    /// Gives up the leases `owner` holds (on shutdown, or for a process
    /// that is gone), so that another instance or the next start can fetch
    /// those sources, and send those webhook messages, at once.
    pub async fn release_leases(&self, owner: &str) -> Result<(), StoreError> {
        {
            let _guard = self.write_guard().await;
            sqlx::query(
                "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            )
            .bind(owner)
            .execute(&self.writer)
            .await?;
        }
        self.release_deliveries(owner).await
    }

    /// Everyone currently holding a lease on a source or a webhook message.
    pub async fn lease_owners(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT lease_owner FROM sources WHERE lease_owner IS NOT NULL
             UNION SELECT lease_owner FROM webhook_outbox
                 WHERE lease_owner IS NOT NULL AND delivered_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the next source falls due, if any is scheduled.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(next_fetch_at, 0)) FROM sources
             WHERE configured = 1 AND enabled = 1 AND disabled_reason IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(from_micros))
    }

    /// Records a fetch that stored nothing (304, or a failure): an ingest
    /// of no articles. On SQLite it so joins the ingests' group commit: one
    /// commit for many 304s instead of one each, and no second connection
    /// writing between groups (which would empty the ingest writer's page
    /// cache).
    pub async fn record_fetch(
        &self,
        source_id: i64,
        record: &FetchRecord,
    ) -> Result<(), StoreError> {
        self.ingest(source_id, &[], record).await.map(|_| ())
    }

    /// Every configured source with its health, by name: as stored, or as
    /// this process's latest refresh left it when that could not be stored.
    pub async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        let sql =
            format!("SELECT {STATE_COLUMNS} FROM sources s WHERE s.configured = 1 ORDER BY s.name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut states: Vec<SourceState> =
            rows.iter().map(source_state).collect::<Result<_, _>>()?;
        let mut unstored = self.unstored.sources();
        for state in &mut states {
            let Some(failure) = unstored.get(&state.name) else {
                continue;
            };
            if state.last_fetch_at.is_some_and(|t| t > failure.at) {
                // A later refresh was stored (by another instance).
                unstored.remove(&state.name);
                continue;
            }
            state.last_fetch_at = Some(failure.at);
            state.last_status = failure.status;
            state.last_error = Some(failure.error.clone());
            state.consecutive_failures = failure.consecutive_failures;
        }
        Ok(states)
    }

    /// One configured source's state (as [`Store::source_states`]), if
    /// there is such a source.
    pub async fn source_state(&self, name: &str) -> Result<Option<SourceState>, StoreError> {
        let sql =
            format!("SELECT {STATE_COLUMNS} FROM sources s WHERE s.configured = 1 AND s.name = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut state = source_state(&row)?;
        if let Some(failure) = self.unstored.sources().get(name) {
            if state.last_fetch_at.is_none_or(|t| t <= failure.at) {
                state.last_fetch_at = Some(failure.at);
                state.last_status = failure.status;
                state.last_error = Some(failure.error.clone());
                state.consecutive_failures = failure.consecutive_failures;
            }
        }
        Ok(Some(state))
    }

    /// Remembers that the refresh of `source` at `at` could not be stored.
    pub fn note_unstored(
        &self,
        source: &str,
        at: DateTime<Utc>,
        status: Option<u16>,
        error: String,
        consecutive_failures: i64,
        store_wide: bool,
    ) {
        let mut unstored = self.unstored.sources();
        let since = unstored.get(source).map_or(at, |f| f.since);
        unstored.insert(
            source.to_string(),
            StoreFailure {
                since,
                at,
                status,
                error,
                consecutive_failures,
                store_wide,
            },
        );
    }

    /// A refresh of `source` was stored: its state is the stored one again.
    pub fn note_stored(&self, source: &str) {
        self.unstored.sources().remove(source);
    }

    /// The refresh of `source` this process could not store, if its latest.
    pub fn unstored(&self, source: &str) -> Option<StoreFailure> {
        self.unstored.sources().get(source).cloned()
    }

    /// Records whether claiming due sources at `at` worked.
    pub fn note_claim(&self, result: Result<(), &StoreError>, at: DateTime<Utc>) {
        let mut claim = self.unstored.claim();
        match result {
            Ok(()) => *claim = None,
            Err(e) => {
                *claim = Some(StoreFailure {
                    since: claim.as_ref().map_or(at, |f| f.since),
                    at,
                    status: None,
                    error: format!("store: {e}"),
                    consecutive_failures: 0,
                    store_wide: true,
                });
            }
        }
    }

    /// Whether this process's writes are failing: from memory, but a source
    /// refreshed and stored since (by another instance) is dropped, so this
    /// reads the database only while something failed.
    pub async fn write_health(&self) -> WriteHealth {
        let claim = self.unstored.claim().clone();
        if self.unstored.sources().is_empty() {
            return WriteHealth {
                sources: Vec::new(),
                claim,
            };
        }
        // Dropping superseded failures is best effort: if the database
        // cannot be read, every failure remembered stands.
        if let Err(e) = self.drop_superseded().await {
            tracing::debug!(error = %e, "reading the sources' last fetches for /healthz");
        }
        let mut sources: Vec<(String, StoreFailure)> = self
            .unstored
            .sources()
            .iter()
            .map(|(name, failure)| (name.clone(), failure.clone()))
            .collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        WriteHealth { sources, claim }
    }

    /// Forgets the unstored failures of sources refreshed and stored since
    /// (by another instance), or no longer configured.
    async fn drop_superseded(&self) -> Result<(), StoreError> {
        let names: Vec<String> = self.unstored.sources().keys().cloned().collect();
        for chunk in names.chunks(500) {
            let sql = format!(
                "SELECT name, last_fetch_at, configured FROM sources WHERE name IN ({})",
                Params::numbered_from(1).list(chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, Option<i64>, i64)>(&sql);
            for name in chunk {
                query = query.bind(name);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut unstored = self.unstored.sources();
            for (name, last_fetch_at, configured) in rows {
                let superseded = unstored.get(&name).is_some_and(|f| {
                    configured == 0 || last_fetch_at.is_some_and(|t| from_micros(t) > f.at)
                });
                if superseded {
                    unstored.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// A source's id by name (configured or not).
    pub async fn source_id(&self, name: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT id FROM sources WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownSource(name.to_string()))
    }

    /// Whether any article from this source is stored: before its first
    /// successful fetch (or after everything it had was pruned), none is.
    pub async fn source_has_articles(&self, source_id: i64) -> Result<bool, StoreError> {
        // The column itself, not a literal: BIGINT on PostgreSQL, as `i64` wants.
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT source_id FROM article_sources WHERE source_id = $1 LIMIT 1",
        )
        .bind(source_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}

/// One change `sync_sources` makes.
enum SyncWrite<'a> {
    Insert(&'a SourceSync),
    /// Validators and schedule belong to the old URL: start afresh.
    NewUrl(&'a SourceSync),
    Flags(&'a SourceSync),
    /// Counted as another outlet: its articles are counted again.
    Outlet(&'a SourceSync),
    /// Gone from the config: kept for its articles, no longer fetched.
    Remove(&'a str),
}

impl SyncWrite<'_> {
    async fn run(&self, tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        let query = match self {
            SyncWrite::Insert(s) => sqlx::query(
                "INSERT INTO sources (name, url, configured, enabled, outlet) VALUES ($1, $2, 1, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(&s.name)
            .bind(&s.url)
            .bind(s.enabled as i64)
            .bind(s.outlet.as_deref()),
            SyncWrite::Outlet(s) => sqlx::query(
                "UPDATE sources SET outlet = $2
                 WHERE name = $1 AND (outlet IS NULL OR outlet <> $2 OR $2 IS NULL)",
            )
            .bind(&s.name)
            .bind(s.outlet.as_deref()),
            SyncWrite::NewUrl(s) => sqlx::query(
                "UPDATE sources SET url = $2, etag = NULL, last_modified = NULL,
                        next_fetch_at = NULL, disabled_reason = NULL, moved_to = NULL,
                        consecutive_failures = 0, backoff_until = NULL, retry_after_until = NULL
                 WHERE name = $1 AND url <> $2",
            )
            .bind(&s.name)
            .bind(&s.url),
            SyncWrite::Flags(s) => sqlx::query(
                "UPDATE sources SET configured = 1, enabled = $2
                 WHERE name = $1 AND (configured <> 1 OR enabled <> $2)",
            )
            .bind(&s.name)
            .bind(s.enabled as i64),
            SyncWrite::Remove(name) => {
                sqlx::query("UPDATE sources SET configured = 0 WHERE name = $1 AND configured = 1")
                    .bind(*name)
            }
        };
        query.execute(&mut *tx).await?;
        Ok(())
    }
}

/// Writes a fetch outcome inside a transaction (the ingest's own, so that
/// validators never get ahead of the articles they vouch for).
pub(super) async fn record_fetch_in<E: Exec>(
    tx: &mut E,
    source_id: i64,
    r: &FetchRecord,
) -> Result<(), StoreError> {
    if r.pushed {
        return super::websub::pushed_in(tx, source_id, r.at).await;
    }
    let (sql, args) = source_update(source_id, r);
    tx.execute(&sql, &args).await?;
    if let Some(feed) = &r.feed {
        if let (Some(hub), Some(topic)) = (feed.hubs.first(), &feed.self_url) {
            super::websub::discovered_in(tx, source_id, hub, topic, r.at).await?;
        }
    }
    Ok(())
}

/// The source's `UPDATE` a fetch's record makes (`$1` the source, `$2` its
/// time, `$3` its status): one statement whatever the record carries, as
/// each costs the server its own round.
pub(super) fn source_update(source_id: i64, r: &FetchRecord) -> (String, Vec<Value<'_>>) {
    let counted = r.consecutive_failures.map(|n| n.to_string());
    let failures = if let Some(counted) = &counted {
        counted.as_str()
    } else if r.failed {
        "consecutive_failures + 1"
    } else if r.error.is_none() {
        "0"
    } else {
        "consecutive_failures"
    };
    let mut args: Vec<Value> = vec![
        source_id.into(),
        micros(r.at).into(),
        r.status.map(i64::from).into(),
        (&r.error).into(),
        micros(r.next_fetch_at).into(),
        r.retry_after_until.map(micros).into(),
        r.backoff_until.map(micros).into(),
        (&r.disabled_reason).into(),
        (&r.moved_to).into(),
    ];
    let mut sets = String::new();
    if let Some((etag, last_modified)) = &r.validators {
        sets.push_str(", etag = $10, last_modified = $11");
        args.extend::<[Value; 2]>([etag.into(), last_modified.into()]);
    }
    let secs = |d: Option<Duration>| d.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Some(floor) = &r.poll_floor {
        let n = args.len();
        sets.push_str(&format!(
            ", floor_ttl = ${}, floor_max_age = ${}",
            n + 1,
            n + 2
        ));
        args.extend::<[Value; 2]>([secs(floor.ttl).into(), secs(floor.max_age).into()]);
    }
    if let Some(feed) = &r.feed {
        let n = args.len();
        sets.push_str(&format!(
            ", title = COALESCE(${}, title), site_url = COALESCE(${}, site_url),
               feed_id = COALESCE(${}, feed_id), feed_updated = COALESCE(${}, feed_updated)",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ));
        args.extend::<[Value; 4]>([
            (&feed.title).into(),
            (&feed.site_url).into(),
            (&feed.feed_id).into(),
            feed.updated.map(micros).into(),
        ]);
    }
    let sql = format!(
        "UPDATE sources SET last_fetch_at = $2, last_status = $3, last_error = $4,
                next_fetch_at = $5, retry_after_until = $6, backoff_until = $7,
                consecutive_failures = {failures},
                disabled_reason = COALESCE($8, disabled_reason), moved_to = $9,
                lease_owner = NULL, lease_until = NULL{sets}
         WHERE id = $1"
    );
    (sql, args)
}

fn source_state(row: &AnyRow) -> Result<SourceState, sqlx::Error> {
    let time = |i: usize| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(i)?.map(from_micros))
    };
    Ok(SourceState {
        name: row.try_get(0)?,
        url: row.try_get(1)?,
        enabled: row.try_get::<i64, _>(2)? != 0,
        title: row.try_get(3)?,
        last_fetch_at: time(4)?,
        last_status: row.try_get::<Option<i64>, _>(5)?.map(|s| s as u16),
        last_error: row.try_get(6)?,
        consecutive_failures: row.try_get(7)?,
        next_fetch_at: time(8)?,
        retry_after_until: time(9)?,
        backoff_until: time(10)?,
        disabled_reason: row.try_get(11)?,
        moved_to: row.try_get(12)?,
        etag: row.try_get(13)?,
        last_modified: row.try_get(14)?,
        articles: row.try_get(15)?,
        last_new_at: time(16)?,
    })
}

fn seconds(value: Option<i64>) -> Option<Duration> {
    value
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(at: i64, error: &str) -> StoreFailure {
        StoreFailure {
            since: from_micros(at * 1_000_000),
            at: from_micros(at * 1_000_000),
            status: Some(200),
            error: error.into(),
            consecutive_failures: 1,
            store_wide: true,
        }
    }

    #[test]
    fn write_health_ignores_a_refresh_whose_data_was_refused() {
        let refused = StoreFailure {
            store_wide: false,
            ..failure(10, "store: database: UNIQUE constraint failed")
        };
        let health = WriteHealth {
            sources: vec![("a".into(), refused)],
            claim: None,
        };
        assert!(health.is_ok());
        assert_eq!(health.reason(), None);
    }

    /// SQLite's in-thread errors are classified in sqlite/exec.rs.
    #[test]
    fn data_error_codes_are_told_from_store_error_codes() {
        assert!(data_error_code("23505"));
        assert!(data_error_code("2067"));
        assert!(!data_error_code("53100"));
        assert!(!data_error_code("57P01"));
        assert!(!data_error_code("13"));
    }

    #[tokio::test]
    async fn sqlx_data_errors_are_told_from_store_errors() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x TEXT UNIQUE)")
            .execute(&mut conn)
            .await
            .unwrap();
        let insert = || sqlx::query("INSERT INTO t VALUES ('a')");
        insert().execute(&mut conn).await.unwrap();
        let duplicate = insert().execute(&mut conn).await.unwrap_err();
        assert!(StoreError::Db(duplicate).is_about_the_data());
    }

    #[test]
    fn write_health_names_the_oldest_failure_the_latest_error_and_the_sources() {
        assert_eq!(WriteHealth::default().reason(), None);
        let health = WriteHealth {
            sources: vec![
                ("a".into(), failure(10, "store: old")),
                ("b".into(), failure(20, "store: database or disk is full")),
            ],
            claim: None,
        };
        assert!(!health.is_ok());
        assert_eq!(
            health.reason().unwrap(),
            "store writes failing since 1970-01-01T00:00:10Z: store: database or disk is full \
             (2 refreshes not stored: a, b)"
        );
        let claim_only = WriteHealth {
            sources: Vec::new(),
            claim: Some(failure(5, "store: disk I/O error")),
        };
        assert_eq!(
            claim_only.reason().unwrap(),
            "store writes failing since 1970-01-01T00:00:05Z: store: disk I/O error \
             (claiming due sources fails)"
        );
    }
}
