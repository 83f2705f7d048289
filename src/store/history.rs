//! Each source's fetch history and the changes of its state (docs/HTTP.md
//! "Source health"): a row per fetch and a rollup per UTC day, and health
//! events, all written in the refresh's own transaction (on PostgreSQL a
//! fetch that stores nothing is one statement, its events a second:
//! write.rs `record_in_one_statement`); pruned with retention. Quiet
//! sources have no fetch that marks the moment: they are found when read,
//! and stored once the quiet ends.

use super::exec::Exec;
use super::{from_micros, micros, FetchRecord, Store, StoreError};
use crate::model::{DayStats, FetchLogEntry, HealthEvent, HealthKind};
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

/// Fetch rows are kept this long; the days' rollups `DAYS_KEPT` days, and
/// health events `EVENTS_KEPT`.
pub const LOG_KEPT: TimeDelta = TimeDelta::days(7);
pub const DAYS_KEPT: i64 = 35;
pub const EVENTS_KEPT: TimeDelta = TimeDelta::days(35);

/// A fetch row keeps this much of its error (errors are single lines, but
/// a server's text may be long).
const ERROR_CHARS: usize = 300;

const DAY_US: i64 = 86_400_000_000;

/// The UTC day of a time, as days since the epoch.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    micros(t).div_euclid(DAY_US)
}

/// When a source's state changes enough to be an event (`[health]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub failing_after: i64,
    pub quiet_after: TimeDelta,
    pub flood: i64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            failing_after: 3,
            quiet_after: TimeDelta::days(7),
            flood: 200,
        }
    }
}

impl HealthPolicy {
    pub fn from_config(health: &crate::config::HealthConfig) -> HealthPolicy {
        HealthPolicy {
            failing_after: health.failing_after,
            quiet_after: TimeDelta::from_std(health.quiet_after).unwrap_or(TimeDelta::MAX),
            flood: health.flood,
        }
    }
}

/// The source's state before a refresh's record, read in its transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Before {
    failures: i64,
    disabled: bool,
    moved_to: Option<String>,
    last_new_at: Option<i64>,
}

/// `sources` columns of [`Before`], as read.
pub(super) type BeforeRow = (i64, Option<String>, Option<String>, Option<i64>);

/// The columns of a [`BeforeRow`].
pub(super) const BEFORE_COLUMNS: &str =
    "consecutive_failures, disabled_reason, moved_to, last_new_at";

pub(super) async fn read_before<E: Exec>(tx: &mut E, source_id: i64) -> Result<Before, StoreError> {
    let sql = format!("SELECT {BEFORE_COLUMNS} FROM sources WHERE id = $1");
    let row: Option<BeforeRow> = tx.fetch_optional(&sql, &[source_id.into()]).await?;
    Ok(Before::of(row))
}

impl Before {
    /// The state as read (a source gone meanwhile: the defaults).
    pub(super) fn of(row: Option<BeforeRow>) -> Before {
        row.map(|(failures, disabled, moved_to, last_new_at)| Before {
            failures,
            disabled: disabled.is_some(),
            moved_to,
            last_new_at,
        })
        .unwrap_or_default()
    }
}

/// How a fetch ended, as the history names it.
fn outcome(r: &FetchRecord) -> &'static str {
    match (r.status, &r.error) {
        (Some(304), _) => "not_modified",
        (_, None) => "ok",
        _ if r.disabled_reason.is_some() => "gone",
        _ if r.feed.is_some() => "partial",
        _ if !r.failed => "throttled",
        _ => "failed",
    }
}

/// Writes the fetch's history row, its day's rollup, the source's last new
/// entry and the events its outcome makes, inside the refresh's
/// transaction. `new_entries`: entries this source had not carried before.
pub(super) async fn record_in<E: Exec>(
    tx: &mut E,
    source_id: i64,
    r: &FetchRecord,
    new_entries: i64,
    before: &Before,
    policy: &HealthPolicy,
) -> Result<(), StoreError> {
    if r.pushed {
        // A push is no fetch: the history counts polls; only news is news.
        if new_entries > 0 {
            tx.execute(
                "UPDATE sources SET last_new_at = $2 WHERE id = $1",
                &[source_id.into(), micros(r.at).into()],
            )
            .await?;
        }
        return Ok(());
    }
    let row = FetchRow::of(r);
    // Two fetches of one source in one microsecond (a manual clock) keep
    // the first row; the day counts both.
    tx.execute(
        "INSERT INTO fetch_log (source_id, at, outcome, status, duration_ms, bytes, new_entries, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (source_id, at) DO NOTHING",
        &[
            source_id.into(),
            micros(r.at).into(),
            row.outcome.into(),
            r.status.map(i64::from).into(),
            row.duration_ms.into(),
            row.bytes.into(),
            new_entries.into(),
            (&row.error).into(),
        ],
    )
    .await?;
    let sql = format!(
        "INSERT INTO fetch_days (source_id, day, fetches, ok, not_modified, failed, new_entries, bytes)
         VALUES ($1, $2, 1, $3, $4, $5, $6, $7) {DAY_ROLLUP}"
    );
    tx.execute(
        &sql,
        &[
            source_id.into(),
            row.day.into(),
            row.ok.into(),
            row.not_modified.into(),
            row.failed.into(),
            new_entries.into(),
            row.bytes.into(),
        ],
    )
    .await?;
    if new_entries > 0 {
        tx.execute(
            "UPDATE sources SET last_new_at = $2 WHERE id = $1",
            &[source_id.into(), micros(r.at).into()],
        )
        .await?;
    }
    insert_events(tx, source_id, &events(before, r, new_entries, policy)).await
}

/// Stores health events.
pub(super) async fn insert_events<E: Exec>(
    tx: &mut E,
    source_id: i64,
    events: &[(HealthKind, i64, String)],
) -> Result<(), StoreError> {
    for (kind, at, detail) in events {
        // The key is the event: a second instance recording it is a no-op.
        tx.execute(
            "INSERT INTO health_events (source_id, kind, at, detail) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source_id, kind, at) DO NOTHING",
            &[
                source_id.into(),
                kind.as_str().into(),
                (*at).into(),
                detail.as_str().into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// A day's rollup taking in one more fetch (`excluded`).
pub(super) const DAY_ROLLUP: &str = "ON CONFLICT (source_id, day) DO UPDATE SET
             fetches = fetch_days.fetches + 1, ok = fetch_days.ok + excluded.ok,
             not_modified = fetch_days.not_modified + excluded.not_modified,
             failed = fetch_days.failed + excluded.failed,
             new_entries = fetch_days.new_entries + excluded.new_entries,
             bytes = fetch_days.bytes + excluded.bytes";

/// The values of a fetch's history row and of its day's rollup.
pub(super) struct FetchRow {
    pub(super) outcome: &'static str,
    /// Cut to `ERROR_CHARS`.
    pub(super) error: Option<String>,
    pub(super) duration_ms: i64,
    pub(super) bytes: i64,
    pub(super) day: i64,
    /// 1 in the column of the outcome's kind, 0 in the others.
    pub(super) ok: i64,
    pub(super) not_modified: i64,
    pub(super) failed: i64,
}

impl FetchRow {
    pub(super) fn of(r: &FetchRecord) -> FetchRow {
        let outcome = outcome(r);
        let (ok, not_modified, failed) = match outcome {
            "ok" => (1, 0, 0),
            "not_modified" => (0, 1, 0),
            _ => (0, 0, 1),
        };
        FetchRow {
            outcome,
            error: r
                .error
                .as_ref()
                .map(|e| e.chars().take(ERROR_CHARS).collect()),
            duration_ms: i64::try_from(r.elapsed.as_millis()).unwrap_or(i64::MAX),
            bytes: i64::try_from(r.bytes).unwrap_or(i64::MAX),
            day: day_of(r.at),
            ok,
            not_modified,
            failed,
        }
    }
}

/// The events a fetch's record makes of the state before it: (kind, time
/// in microseconds, detail).
pub(super) fn events(
    before: &Before,
    r: &FetchRecord,
    new_entries: i64,
    policy: &HealthPolicy,
) -> Vec<(HealthKind, i64, String)> {
    let at = micros(r.at);
    // As record_fetch_in counts them.
    let failures = r.consecutive_failures.unwrap_or(if r.failed {
        before.failures + 1
    } else if r.error.is_none() {
        0
    } else {
        before.failures
    });
    let error = r.error.as_deref().unwrap_or("");
    let mut events = Vec::new();
    let n = policy.failing_after;
    if before.failures < n && failures >= n {
        events.push((
            HealthKind::Failing,
            at,
            format!("{failures} consecutive failures; the last: {error}"),
        ));
    }
    if before.failures >= n && failures == 0 {
        events.push((
            HealthKind::Recovered,
            at,
            format!("fetched again after {} failures", before.failures),
        ));
    }
    if let (false, Some(reason)) = (before.disabled, &r.disabled_reason) {
        events.push((HealthKind::Gone, at, reason.clone()));
    }
    if let Some(to) = r
        .moved_to
        .as_ref()
        .filter(|to| before.moved_to.as_ref() != Some(*to))
    {
        events.push((
            HealthKind::Moved,
            at,
            format!(
                "permanent redirect to {}: update the source's url",
                crate::redact::public_url(to)
            ),
        ));
    }
    // A first fetch brings the feed's backlog: not a flood.
    if new_entries > policy.flood && before.last_new_at.is_some() {
        events.push((
            HealthKind::Flood,
            at,
            format!(
                "{new_entries} new entries in one fetch (more than {})",
                policy.flood
            ),
        ));
    }
    let quiet_us = policy.quiet_after.num_microseconds().unwrap_or(i64::MAX);
    if let Some(last) = before.last_new_at.filter(|_| new_entries > 0) {
        let went_quiet = last.saturating_add(quiet_us);
        if went_quiet <= at {
            // Stored now that it ended: while it lasted, it was found when
            // read (`Store::health_events`), under the same key.
            events.push((HealthKind::Quiet, went_quiet, quiet_detail(last, Some(at))));
        }
    }
    events
}

fn quiet_detail(last_new_us: i64, ended_us: Option<i64>) -> String {
    let time = |us| from_micros(us).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match ended_us {
        Some(end) => format!(
            "no new entry from {} until {}",
            time(last_new_us),
            time(end)
        ),
        None => format!("no new entry since {}", time(last_new_us)),
    }
}

impl Store {
    /// The configured sources' latest `limit` health events, newest
    /// first, with the sources quiet at `now` (not stored until their quiet
    /// ends).
    pub async fn health_events(
        &self,
        now: DateTime<Utc>,
        policy: &HealthPolicy,
        limit: u32,
    ) -> Result<Vec<HealthEvent>, StoreError> {
        self.events_where("", &[], now, policy, limit).await
    }

    /// One source's latest `limit` health events, newest first.
    pub async fn source_health_events(
        &self,
        name: &str,
        now: DateTime<Utc>,
        policy: &HealthPolicy,
        limit: u32,
    ) -> Result<Vec<HealthEvent>, StoreError> {
        self.events_where(" AND s.name = $2", &[name], now, policy, limit)
            .await
    }

    async fn events_where(
        &self,
        and: &str,
        names: &[&str],
        now: DateTime<Utc>,
        policy: &HealthPolicy,
        limit: u32,
    ) -> Result<Vec<HealthEvent>, StoreError> {
        let sql = format!(
            "SELECT s.name, e.kind, e.at, e.detail FROM health_events e
             JOIN sources s ON s.id = e.source_id
             WHERE s.configured = 1{} ORDER BY e.at DESC, s.name, e.kind LIMIT {limit}",
            and.replace("$2", "$1")
        );
        let mut query = sqlx::query(&sql);
        for name in names {
            query = query.bind(*name);
        }
        let mut events = Vec::new();
        for row in query.fetch_all(&self.pool).await? {
            let kind: String = row.try_get(1)?;
            let Some(kind) = HealthKind::parse(&kind) else {
                continue;
            };
            events.push(HealthEvent {
                source: row.try_get(0)?,
                kind,
                at: from_micros(row.try_get(2)?),
                detail: row.try_get(3)?,
            });
        }
        // Quiet now: the configured sources fetched normally whose last new
        // entry is older than quiet_after.
        let quiet_us = policy.quiet_after.num_microseconds().unwrap_or(i64::MAX);
        let since = micros(now).saturating_sub(quiet_us);
        let sql = format!(
            "SELECT s.name, s.last_new_at FROM sources s
             WHERE s.configured = 1 AND s.enabled = 1 AND s.disabled_reason IS NULL
               AND s.last_new_at <= $1{} ORDER BY s.last_new_at DESC LIMIT {limit}",
            and
        );
        let mut query = sqlx::query(&sql).bind(since);
        for name in names {
            query = query.bind(*name);
        }
        for row in query.fetch_all(&self.pool).await? {
            let last: i64 = row.try_get(1)?;
            events.push(HealthEvent {
                source: row.try_get(0)?,
                kind: HealthKind::Quiet,
                at: from_micros(last.saturating_add(quiet_us)),
                detail: quiet_detail(last, None),
            });
        }
        events.sort_by(|a, b| {
            b.at.cmp(&a.at)
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| a.kind.cmp(&b.kind))
        });
        events.dedup_by(|a, b| a.source == b.source && a.kind == b.kind && a.at == b.at);
        events.truncate(limit as usize);
        Ok(events)
    }

    /// The configured sources' days from `from_day` on (days since the
    /// epoch), by source name: at most `DAYS_KEPT` rows per source.
    pub async fn source_days(
        &self,
        from_day: i64,
        only: Option<&str>,
    ) -> Result<Vec<(String, DayStats)>, StoreError> {
        let (and, name) = match only {
            Some(name) => (" AND s.name = $2", Some(name)),
            None => ("", None),
        };
        let sql = format!(
            "SELECT s.name, d.day, d.fetches, d.ok, d.not_modified, d.failed, d.new_entries, d.bytes
             FROM fetch_days d JOIN sources s ON s.id = d.source_id
             WHERE s.configured = 1 AND d.day >= $1{and} ORDER BY s.name, d.day"
        );
        let mut query = sqlx::query(&sql).bind(from_day);
        if let Some(name) = name {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    DayStats {
                        day: row.try_get(1)?,
                        fetches: row.try_get(2)?,
                        ok: row.try_get(3)?,
                        not_modified: row.try_get(4)?,
                        failed: row.try_get(5)?,
                        new_entries: row.try_get(6)?,
                        bytes: row.try_get(7)?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// How many articles of a view (`filter`) were published on each UTC
    /// day from `from_day` on (days since the epoch): (day, articles), by
    /// day. Reads the articles of those days only (`articles_published`).
    pub async fn articles_per_day(
        &self,
        filter: &crate::model::Filter,
        from_day: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut binds: Vec<String> = Vec::new();
        let mut list = |values: &[String]| -> String {
            values
                .iter()
                .map(|v| {
                    binds.push(v.clone());
                    format!("${}", binds.len() + 1)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut probes = String::new();
        if !filter.any.is_empty() {
            let terms = list(&filter.any);
            probes += &format!(
                " AND EXISTS (SELECT 1 FROM article_tags t WHERE t.article_id = a.id AND t.term IN ({terms}))"
            );
        }
        let mut all = filter.all.clone();
        all.sort();
        all.dedup();
        if !all.is_empty() {
            let count = all.len();
            let terms = list(&all);
            probes += &format!(
                " AND (SELECT COUNT(*) FROM article_tags t WHERE t.article_id = a.id AND t.term IN ({terms})) = {count}"
            );
        }
        if !filter.none.is_empty() {
            let terms = list(&filter.none);
            probes += &format!(
                " AND NOT EXISTS (SELECT 1 FROM article_tags t WHERE t.article_id = a.id AND t.term IN ({terms}))"
            );
        }
        if !filter.sources.is_empty() {
            let names = list(&filter.sources);
            probes += &format!(
                " AND EXISTS (SELECT 1 FROM article_sources x JOIN sources s ON s.id = x.source_id
                              WHERE x.article_id = a.id AND s.name IN ({names}))"
            );
        }
        let sql = format!(
            "SELECT a.published / {DAY_US} AS day, COUNT(*) FROM articles a
             WHERE a.published >= $1{probes} GROUP BY a.published / {DAY_US} ORDER BY 1"
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql).bind(from_day.saturating_mul(DAY_US));
        for value in binds {
            query = query.bind(value);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// One source's latest `limit` fetches, newest first.
    pub async fn fetch_log(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<FetchLogEntry>, StoreError> {
        let sql = format!(
            "SELECT l.at, l.outcome, l.status, l.duration_ms, l.bytes, l.new_entries, l.error
             FROM fetch_log l JOIN sources s ON s.id = l.source_id
             WHERE s.name = $1 ORDER BY l.at DESC LIMIT {limit}"
        );
        let rows = sqlx::query(&sql).bind(name).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(FetchLogEntry {
                    at: from_micros(row.try_get(0)?),
                    outcome: row.try_get(1)?,
                    status: row.try_get::<Option<i64>, _>(2)?.map(|s| s as u16),
                    duration_ms: row.try_get(3)?,
                    bytes: row.try_get(4)?,
                    new_entries: row.try_get(5)?,
                    error: row.try_get(6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// Forgets history older than what is kept, in the prune's transaction.
pub(super) async fn prune_in(
    tx: &mut sqlx::AnyConnection,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (sql, bound) in [
        (
            "DELETE FROM fetch_log WHERE at < $1",
            micros(now - LOG_KEPT),
        ),
        (
            "DELETE FROM fetch_days WHERE day < $1",
            day_of(now) - DAYS_KEPT,
        ),
        (
            "DELETE FROM health_events WHERE at < $1",
            micros(now - EVENTS_KEPT),
        ),
    ] {
        sqlx::query(sql).bind(bound).execute(&mut *tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        from_micros(secs * 1_000_000)
    }

    fn kinds(before: &Before, r: &FetchRecord, new: i64) -> Vec<HealthKind> {
        events(before, r, new, &HealthPolicy::default())
            .into_iter()
            .map(|(k, _, _)| k)
            .collect()
    }

    #[test]
    fn a_source_fails_at_the_threshold_once_and_recovers_once() {
        let failure = FetchRecord {
            at: at(100),
            error: Some("HTTP 500".into()),
            failed: true,
            ..FetchRecord::default()
        };
        let after = |failures| Before {
            failures,
            ..Before::default()
        };
        assert_eq!(kinds(&after(0), &failure, 0), vec![]);
        assert_eq!(kinds(&after(2), &failure, 0), vec![HealthKind::Failing]);
        assert_eq!(kinds(&after(3), &failure, 0), vec![]);
        let ok = FetchRecord {
            at: at(200),
            status: Some(200),
            ..FetchRecord::default()
        };
        assert_eq!(kinds(&after(5), &ok, 0), vec![HealthKind::Recovered]);
        assert_eq!(kinds(&after(2), &ok, 0), vec![]);
        let not_modified = FetchRecord {
            status: Some(304),
            ..ok.clone()
        };
        assert_eq!(
            kinds(&after(3), &not_modified, 0),
            vec![HealthKind::Recovered]
        );
        // A 429 is not the source failing: no count, no event.
        let throttled = FetchRecord {
            error: Some("HTTP 429".into()),
            failed: false,
            ..failure.clone()
        };
        assert_eq!(kinds(&after(2), &throttled, 0), vec![]);
    }

    #[test]
    fn gone_moved_flood_and_an_ended_quiet_are_events() {
        let gone = FetchRecord {
            at: at(100),
            status: Some(410),
            error: Some("410 Gone".into()),
            failed: true,
            disabled_reason: Some("410 Gone".into()),
            ..FetchRecord::default()
        };
        assert_eq!(kinds(&Before::default(), &gone, 0), vec![HealthKind::Gone]);
        let moved = FetchRecord {
            at: at(100),
            status: Some(200),
            moved_to: Some("https://user:pw@example.org/new".into()),
            ..FetchRecord::default()
        };
        let made = events(&Before::default(), &moved, 0, &HealthPolicy::default());
        assert_eq!(made.len(), 1);
        assert!(
            !made[0].2.contains("pw"),
            "credentials are not shown: {}",
            made[0].2
        );
        // The same target again is no news.
        let still = Before {
            moved_to: moved.moved_to.clone(),
            ..Before::default()
        };
        assert_eq!(kinds(&still, &moved, 0), vec![]);
        let ok = FetchRecord {
            at: at(10 * 86_400),
            status: Some(200),
            ..FetchRecord::default()
        };
        let seen = Before {
            last_new_at: Some(micros(ok.at) - 1),
            ..Before::default()
        };
        assert_eq!(kinds(&seen, &ok, 201), vec![HealthKind::Flood]);
        assert_eq!(kinds(&seen, &ok, 200), vec![]);
        assert_eq!(
            kinds(&Before::default(), &ok, 201),
            vec![],
            "a first fetch's backlog is no flood"
        );
        let quiet = Before {
            last_new_at: Some(0),
            ..Before::default()
        };
        let made = events(&quiet, &ok, 1, &HealthPolicy::default());
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].0, HealthKind::Quiet);
        // Its time is when the source went quiet: the same key as while
        // it was found on reading.
        assert_eq!(made[0].1, micros(at(7 * 86_400)));
        assert_eq!(kinds(&quiet, &ok, 0), vec![]);
    }
}
