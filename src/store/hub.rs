//! The WebSub hub's subscriptions (docs/CONFIG.md "WebSub"): verified
//! subscribers of this instance's feeds, their leases, and the routes the
//! ingest queues their distributions by. A distribution is a row of the
//! webhook outbox (`outbox.rs`) whose recipient is `websub:{id}`: the same
//! transaction as the article, leases, backoff and give-up as a webhook's.

use super::{from_micros, micros, Store, StoreError};
use crate::store::{WebhookRoute, WebhookState};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::sync::{Arc, PoisonError};

/// The outbox recipient of subscription `id`'s distributions.
pub fn subscription_recipient(id: i64) -> String {
    format!("{SUBSCRIPTION_PREFIX}{id}")
}

/// The subscription an outbox recipient names, if it is one.
pub fn recipient_subscription(recipient: &str) -> Option<i64> {
    recipient.strip_prefix(SUBSCRIPTION_PREFIX)?.parse().ok()
}

/// Outbox recipients of the hub: `websub:{id}` for subscriptions,
/// [`PING_RECIPIENT`] for an external hub's pings. `[[webhook]]` names
/// cannot hold a `:`, so they never collide.
pub const SUBSCRIPTION_PREFIX: &str = "websub:";
pub const PING_RECIPIENT: &str = "websub-ping:";

/// One verified subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSubscription {
    pub id: i64,
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
    pub lease_seconds: i64,
    pub expires_at: DateTime<Utc>,
    pub verified_at: DateTime<Utc>,
}

/// The hub's distributions in the outbox, all subscriptions together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HubState {
    pub subscriptions: i64,
    pub pending: i64,
    /// Of `pending`: tried at least once and failed.
    pub failing: i64,
    pub delivered: i64,
    pub given_up: i64,
    pub last_error: Option<String>,
    /// An external hub's publish pings (one row per new article).
    pub pings: WebhookState,
}

impl Store {
    /// From now on the ingest also queues new articles to these hub
    /// routes (subscriptions, pings), on every clone of this store.
    pub fn set_hub_routes(&self, routes: Vec<WebhookRoute>) {
        *self
            .hub_routes
            .write()
            .unwrap_or_else(PoisonError::into_inner) = routes.into();
    }

    pub(super) fn hub_routes(&self) -> Arc<[WebhookRoute]> {
        self.hub_routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a verified subscription (a renewal replaces the secret and
    /// the lease of the same topic and callback); its id.
    pub async fn upsert_subscription(
        &self,
        topic: &str,
        callback: &str,
        secret: Option<&str>,
        lease_seconds: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let _guard = self.write_guard().await;
        let expires = now + chrono::TimeDelta::seconds(lease_seconds);
        let id = sqlx::query_scalar(
            "INSERT INTO hub_subscriptions
                 (topic, callback, secret, lease_seconds, expires_at, created_at, verified_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (topic, callback) DO UPDATE SET secret = excluded.secret,
                 lease_seconds = excluded.lease_seconds, expires_at = excluded.expires_at,
                 verified_at = excluded.verified_at
             RETURNING id",
        )
        .bind(topic)
        .bind(callback)
        .bind(secret)
        .bind(lease_seconds)
        .bind(micros(expires))
        .bind(micros(now))
        .fetch_one(&self.writer)
        .await?;
        Ok(id)
    }

    /// Removes the subscription of `callback` to `topic` and its
    /// undelivered distributions; whether there was one.
    pub async fn remove_subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let ids: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM hub_subscriptions WHERE topic = $1 AND callback = $2 RETURNING id",
        )
        .bind(topic)
        .bind(callback)
        .fetch_all(&self.writer)
        .await?;
        for id in &ids {
            self.delete_distributions(*id).await?;
        }
        Ok(!ids.is_empty())
    }

    /// Deletes the subscriptions whose lease ended before `now`, with
    /// their undelivered distributions; how many.
    pub async fn prune_subscriptions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let _guard = self.write_guard().await;
        let ids: Vec<i64> =
            sqlx::query_scalar("DELETE FROM hub_subscriptions WHERE expires_at <= $1 RETURNING id")
                .bind(micros(now))
                .fetch_all(&self.writer)
                .await?;
        for id in &ids {
            self.delete_distributions(*id).await?;
        }
        Ok(ids.len() as u64)
    }

    /// The caller holds the write guard.
    async fn delete_distributions(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM webhook_outbox WHERE webhook = $1
                 AND delivered_at IS NULL AND given_up_at IS NULL",
        )
        .bind(subscription_recipient(id))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The subscriptions whose lease runs past `now`, oldest first.
    pub async fn active_subscriptions(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<HubSubscription>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, topic, callback, secret, lease_seconds, expires_at, verified_at
             FROM hub_subscriptions WHERE expires_at > $1 ORDER BY id",
        )
        .bind(micros(now))
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|row| -> Result<HubSubscription, sqlx::Error> {
                Ok(HubSubscription {
                    id: row.try_get(0)?,
                    topic: row.try_get(1)?,
                    callback: row.try_get(2)?,
                    secret: row.try_get(3)?,
                    lease_seconds: row.try_get(4)?,
                    expires_at: from_micros(row.try_get(5)?),
                    verified_at: from_micros(row.try_get(6)?),
                })
            })
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Whether `callback` holds a subscription to `topic` now, and how
    /// many subscriptions are active.
    pub async fn subscription_count(
        &self,
        topic: &str,
        callback: &str,
        now: DateTime<Utc>,
    ) -> Result<(bool, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(CASE WHEN topic = $1 AND callback = $2 THEN 1 END), COUNT(*)
             FROM hub_subscriptions WHERE expires_at > $3",
        )
        .bind(topic)
        .bind(callback)
        .bind(micros(now))
        .fetch_one(&self.writer)
        .await?;
        Ok((row.try_get::<i64, _>(0)? > 0, row.try_get(1)?))
    }

    /// The hub's subscriptions and distributions, for `/metrics` and
    /// `tributary hooks`.
    pub async fn hub_state(&self, now: DateTime<Utc>) -> Result<HubState, StoreError> {
        let subscriptions: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM hub_subscriptions WHERE expires_at > $1")
                .bind(micros(now))
                .fetch_one(&self.pool)
                .await?;
        let outbox = self
            .outbox_states(&format!("o.webhook LIKE '{SUBSCRIPTION_PREFIX}%'"))
            .await?;
        let mut state = HubState {
            subscriptions,
            ..HubState::default()
        };
        let mut latest: Option<DateTime<Utc>> = None;
        for (s, last_attempt) in outbox {
            state.pending += s.pending;
            state.failing += s.failing;
            state.delivered += s.delivered;
            state.given_up += s.given_up;
            if s.last_error.is_some() && last_attempt > latest {
                latest = last_attempt;
                state.last_error = s.last_error;
            }
        }
        state.pings = self
            .outbox_states(&format!("o.webhook = '{PING_RECIPIENT}'"))
            .await?
            .into_iter()
            .next()
            .map(|(pings, _)| pings)
            .unwrap_or_default();
        Ok(state)
    }
}
