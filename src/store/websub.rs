//! WebSub subscriptions (docs/CONFIG.md "WebSub"): per source, the hub and
//! topic its fetches announce (written with the fetch record), our
//! subscription's state, callback, secret and lease, and its pushes. Rows
//! are claimed with a lease by the subscriber loop (`websub.rs`), so that
//! several instances on one PostgreSQL send each request once; any
//! instance answers a hub's verification and takes its pushes.

use super::exec::Exec;
use super::{from_micros, micros, Backend, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    /// A hub was announced; nothing asked yet.
    Discovered,
    /// Asked; the hub's verification has not come.
    Subscribing,
    /// Verified: the hub pushes until `lease_until`.
    Active,
    /// Unsubscribe asked (the source left the config).
    Unsubscribing,
    Unsubscribed,
    /// The hub refused (`hub.mode=denied`).
    Denied,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::Discovered => "discovered",
            SubscriptionState::Subscribing => "subscribing",
            SubscriptionState::Active => "active",
            SubscriptionState::Unsubscribing => "unsubscribing",
            SubscriptionState::Unsubscribed => "unsubscribed",
            SubscriptionState::Denied => "denied",
        }
    }

    fn parse(text: &str) -> SubscriptionState {
        match text {
            "subscribing" => SubscriptionState::Subscribing,
            "active" => SubscriptionState::Active,
            "unsubscribing" => SubscriptionState::Unsubscribing,
            "unsubscribed" => SubscriptionState::Unsubscribed,
            "denied" => SubscriptionState::Denied,
            _ => SubscriptionState::Discovered,
        }
    }
}

/// One source's subscription, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub source_id: i64,
    pub source: String,
    /// The source is in the config and enabled: wanted.
    pub wanted: bool,
    pub hub: String,
    pub topic: String,
    pub state: SubscriptionState,
    /// The callback URL's last segment.
    pub callback: Option<String>,
    pub secret: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    /// Failed requests since the last success.
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_push_at: Option<DateTime<Utc>>,
    pub pushes: i64,
}

impl Subscription {
    /// What `tributary sources` and the index page say of it, e.g.
    /// `pushed until 2026-12-10 08:00 UTC, last push 2026-12-08 09:12 UTC`.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let mut text = match (self.state, self.lease_until) {
            (_, Some(until)) if self.is_pushed(now) => format!("pushed until {}", time(until)),
            (SubscriptionState::Active, _) => "push lease ended".to_string(),
            (state, _) => format!("hub {}", state.as_str()),
        };
        if let Some(at) = self.last_push_at {
            text.push_str(&format!(", last push {}", time(at)));
        }
        if let Some(error) = &self.last_error {
            text.push_str(&format!(" (hub: {error})"));
        }
        text
    }

    /// The hub pushes to us now: verified, and the lease has not ended.
    pub fn is_pushed(&self, now: DateTime<Utc>) -> bool {
        self.state == SubscriptionState::Active && self.lease_until.is_some_and(|l| l > now)
    }
}

/// A subscription the loop must act on at `$1`: due, or wanted no more
/// while subscribed, or wanted again (a source back in the config) with
/// no failed request to wait out.
const DUE: &str = "(w.next_attempt_at <= $1
    OR (w.state IN ('active', 'subscribing') AND NOT (s.configured = 1 AND s.enabled = 1))
    OR (w.state IN ('unsubscribed', 'discovered') AND w.attempts = 0
        AND s.configured = 1 AND s.enabled = 1))";

const COLUMNS: &str = "w.source_id, s.name, s.configured, s.enabled, w.hub, w.topic, w.state,
    w.callback, w.secret, w.lease_until, w.next_attempt_at, w.attempts, w.last_error,
    w.last_push_at, w.pushes";

fn subscription(row: &AnyRow) -> Result<Subscription, sqlx::Error> {
    let time = |i: usize| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(i)?.map(from_micros))
    };
    Ok(Subscription {
        source_id: row.try_get(0)?,
        source: row.try_get(1)?,
        wanted: row.try_get::<i64, _>(2)? != 0 && row.try_get::<i64, _>(3)? != 0,
        hub: row.try_get(4)?,
        topic: row.try_get(5)?,
        state: SubscriptionState::parse(&row.try_get::<String, _>(6)?),
        callback: row.try_get(7)?,
        secret: row.try_get(8)?,
        lease_until: time(9)?,
        next_attempt_at: from_micros(row.try_get(10)?),
        attempts: row.try_get(11)?,
        last_error: row.try_get(12)?,
        last_push_at: time(13)?,
        pushes: row.try_get(14)?,
    })
}

impl Store {
    /// Claims up to `limit` subscriptions the loop must act on at `now`:
    /// due (`next_attempt_at`), or wanted no more while subscribed, or
    /// wanted again after an unsubscribe; until `claim_until`.
    pub async fn claim_websub(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Subscription>, StoreError> {
        // A read first: most passes find nothing, and need no write.
        let due: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT w.source_id FROM websub_subscriptions w JOIN sources s ON s.id = w.source_id
             WHERE (w.claim_until IS NULL OR w.claim_until <= $1) AND {DUE} LIMIT 1"
        ))
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = {
            let _guard = self.write_guard().await;
            let lock = match self.backend() {
                Backend::Postgres => " FOR UPDATE OF w SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let due = DUE.replace("$1", "$2");
            let sql = format!(
                "UPDATE websub_subscriptions SET claim_owner = $1, claim_until = $3
                 WHERE source_id IN (
                     SELECT w.source_id FROM websub_subscriptions w
                     JOIN sources s ON s.id = w.source_id
                     WHERE (w.claim_until IS NULL OR w.claim_until <= $2) AND {due}
                     ORDER BY w.next_attempt_at, w.source_id LIMIT {limit}{lock})
                 RETURNING source_id"
            );
            sqlx::query_scalar(&sql)
                .bind(owner)
                .bind(micros(now))
                .bind(micros(claim_until))
                .fetch_all(&self.writer)
                .await?
        };
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.websub_subscription(id).await? {
                claimed.push(s);
            }
        }
        Ok(claimed)
    }

    /// One source's subscription.
    pub async fn websub_subscription(
        &self,
        source_id: i64,
    ) -> Result<Option<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM websub_subscriptions w JOIN sources s ON s.id = w.source_id
             WHERE w.source_id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(source_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(subscription).transpose()?)
    }

    /// The subscription whose callback segment is `callback`.
    pub async fn websub_by_callback(
        &self,
        callback: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM websub_subscriptions w JOIN sources s ON s.id = w.source_id
             WHERE w.callback = $1"
        );
        let row = sqlx::query(&sql)
            .bind(callback)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(subscription).transpose()?)
    }

    /// Every subscription, by source name (`tributary sources`, the index
    /// page, `/metrics`).
    pub async fn websub_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM websub_subscriptions w JOIN sources s ON s.id = w.source_id
             ORDER BY s.name"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(subscription).collect::<Result<_, _>>()?)
    }

    /// Before a request to the hub: the state, callback and secret it
    /// asks for are stored first, since a hub may verify before it answers;
    /// `next_attempt_at` is when to ask again if no verification comes.
    pub async fn websub_prepare(
        &self,
        source_id: i64,
        state: SubscriptionState,
        callback: Option<&str>,
        secret: Option<&str>,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "UPDATE websub_subscriptions SET state = $2, callback = $3, secret = $4,
                 next_attempt_at = $5
             WHERE source_id = $1",
        )
        .bind(source_id)
        .bind(state.as_str())
        .bind(callback.map(str::to_string))
        .bind(secret.map(str::to_string))
        .bind(micros(next_attempt_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The hub's answer to our request (`error`: why it failed; then the
    /// next try is at `retry_at`), and the claim given back.
    pub async fn websub_answered(
        &self,
        source_id: i64,
        error: Option<&str>,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let query = match error {
            None => sqlx::query(
                "UPDATE websub_subscriptions SET attempts = 0, last_error = NULL,
                     claim_owner = NULL, claim_until = NULL
                 WHERE source_id = $1",
            )
            .bind(source_id),
            Some(error) => sqlx::query(
                "UPDATE websub_subscriptions SET attempts = attempts + 1, last_error = $2,
                     next_attempt_at = $3, claim_owner = NULL, claim_until = NULL
                 WHERE source_id = $1",
            )
            .bind(source_id)
            .bind(error.to_string())
            .bind(micros(retry_at)),
        };
        query.execute(&self.writer).await?;
        Ok(())
    }

    /// The hub verified our intent (`hub.mode` subscribe or unsubscribe),
    /// or denied the subscription: the state it is in now, the lease, when
    /// to act next (renew before the lease ends). Only from `expected`:
    /// a verification for a request we no longer stand by changes nothing.
    pub async fn websub_verified(
        &self,
        source_id: i64,
        expected: &[SubscriptionState],
        state: SubscriptionState,
        lease_until: Option<DateTime<Utc>>,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let states: Vec<String> = expected
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "UPDATE websub_subscriptions SET state = $2, lease_until = $3, next_attempt_at = $4,
                 last_error = $5
             WHERE source_id = $1 AND state IN ({})",
            states.join(", ")
        );
        let done = sqlx::query(&sql)
            .bind(source_id)
            .bind(state.as_str())
            .bind(lease_until.map(micros))
            .bind(micros(next_attempt_at))
            .bind(error.map(str::to_string))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `source_id` is pushed to us at `now`: a fetch then sets the
    /// next one no sooner than `[websub] fallback_interval`.
    pub async fn websub_pushed(
        &self,
        source_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let pushed: Option<i64> = sqlx::query_scalar(
            "SELECT source_id FROM websub_subscriptions
             WHERE source_id = $1 AND state = 'active' AND lease_until > $2",
        )
        .bind(source_id)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(pushed.is_some())
    }

    /// Gives up the subscription claims `owner` holds (at shutdown).
    pub async fn release_websub(&self, owner: &str) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "UPDATE websub_subscriptions SET claim_owner = NULL, claim_until = NULL
             WHERE claim_owner = $1",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// Records the hub and topic a fetch of `source_id` announced, in the
/// fetch's transaction. A new hub or topic starts over (subscribe there);
/// the same ones write nothing.
pub(super) async fn discovered_in<E: Exec>(
    tx: &mut E,
    source_id: i64,
    hub: &str,
    topic: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO websub_subscriptions (source_id, hub, topic, state, next_attempt_at)
         VALUES ($1, $2, $3, 'discovered', $4)
         ON CONFLICT (source_id) DO UPDATE SET hub = excluded.hub, topic = excluded.topic,
             state = 'discovered', next_attempt_at = excluded.next_attempt_at, attempts = 0,
             last_error = NULL, lease_until = NULL
         WHERE websub_subscriptions.hub <> excluded.hub
            OR websub_subscriptions.topic <> excluded.topic",
        &[
            source_id.into(),
            hub.into(),
            topic.into(),
            micros(at).into(),
        ],
    )
    .await?;
    Ok(())
}

/// Counts a push of `source_id` at `at`, in its ingest's transaction.
pub(super) async fn pushed_in<E: Exec>(
    tx: &mut E,
    source_id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE websub_subscriptions SET last_push_at = $2, pushes = pushes + 1
         WHERE source_id = $1",
        &[source_id.into(), micros(at).into()],
    )
    .await?;
    Ok(())
}
