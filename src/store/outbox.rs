//! The webhook outbox (docs/CONFIG.md "Webhooks"): a row per new article
//! and webhook whose feed holds it, written by the ingest in the article's
//! own transaction (so a crash or restart delivers every one at least
//! once), then claimed with leases by the delivery loop (`webhook.rs`), so
//! that several instances on one PostgreSQL deliver each row once.

use super::exec::{Exec, RowInsert, Value};
use super::sql::Params;
use super::{from_micros, micros, Backend, Store, StoreError};
use crate::model::{Filter, NewArticle};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::Arc;

/// A webhook as the ingest matches new articles against it.
#[derive(Debug, Clone)]
pub struct WebhookRoute {
    pub name: String,
    pub filter: Filter,
}

/// One message to deliver, as claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub webhook: String,
    pub article_id: i64,
    /// `webhook-id`: the same on every attempt.
    pub message_id: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

/// One webhook's outbox, for `tributary hooks` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookState {
    pub webhook: String,
    /// Not delivered yet, not given up.
    pub pending: i64,
    /// Of `pending`: tried at least once and failed.
    pub failing: i64,
    pub delivered: i64,
    pub given_up: i64,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// The earliest next attempt of a pending message.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The `webhook-id` of `article_uid`'s message to `webhook`: derived, not
/// drawn, so the same message keeps it across attempts, restarts and
/// instances, and a receiver can drop repeats.
pub fn message_id(webhook: &str, article_uid: &str) -> String {
    let digest = Sha256::new()
        .chain_update(webhook.as_bytes())
        .chain_update([0])
        .chain_update(article_uid.as_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// Queues a message to every webhook in `routes` whose filter holds each
/// new article (`uid`, the entry), first seen in `source`: inside the
/// ingest's transaction. A row already there (same webhook and article)
/// stays as it is.
pub(super) async fn enqueue_in<E: Exec>(
    tx: &mut E,
    routes: &[WebhookRoute],
    source: &str,
    new: &[(i64, String, &NewArticle)],
    now_us: i64,
) -> Result<(), StoreError> {
    let mut rows: Vec<(&str, i64, String)> = Vec::new();
    for (id, uid, entry) in new {
        let terms: Vec<&str> = entry.tags.iter().map(|t| t.term.as_str()).collect();
        for route in routes {
            if route
                .filter
                .holds(&terms, &[source], entry.language.as_deref())
            {
                rows.push((&route.name, *id, message_id(&route.name, uid)));
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<Value<'_>> = rows
        .iter()
        .flat_map(|(name, id, message)| {
            [
                Value::Text(name),
                Value::Int(*id),
                Value::Text(message),
                Value::Int(now_us),
                Value::Int(now_us),
            ]
        })
        .collect();
    tx.insert_rows(&OUTBOX_INSERT, &values).await
}

const OUTBOX_INSERT: RowInsert = RowInsert {
    into: "webhook_outbox (webhook, article_id, message_id, created_at, next_attempt_at)",
    width: 5,
    tail: "ON CONFLICT (webhook, article_id) DO NOTHING",
};

impl Store {
    /// New articles are queued to these webhooks from now on.
    pub fn with_webhooks(mut self, routes: Vec<WebhookRoute>) -> Store {
        self.webhooks = routes.into();
        self
    }

    /// The configured webhooks' routes, then the hub's (`hub.rs`).
    pub(super) fn webhook_routes(&self) -> Arc<[WebhookRoute]> {
        let hub = self.hub_routes();
        if hub.is_empty() {
            return self.webhooks.clone();
        }
        self.webhooks.iter().chain(hub.iter()).cloned().collect()
    }

    /// Leases up to `limit` messages of `webhooks` due at `now` to `owner`
    /// until `lease_until`, counting the attempt. A lease that ran out
    /// (an instance that died mid-delivery) is claimed again.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        webhooks: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        if webhooks.is_empty() {
            return Ok(Vec::new());
        }
        let _guard = self.write_guard().await;
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let names = Params::numbered_from(4).list(webhooks.len());
        let sql = format!(
            "UPDATE webhook_outbox SET lease_owner = $1, lease_until = $3,
                 attempts = attempts + 1, last_attempt_at = $2
             WHERE id IN (
                 SELECT id FROM webhook_outbox
                 WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= $2
                   AND (lease_until IS NULL OR lease_until <= $2) AND webhook IN ({names})
                 ORDER BY next_attempt_at, id LIMIT {limit}{lock})
             RETURNING id, webhook, article_id, message_id, attempts, created_at"
        );
        let mut query = sqlx::query(&sql)
            .bind(owner)
            .bind(micros(now))
            .bind(micros(lease_until));
        for name in webhooks {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.writer).await?;
        let mut claimed = rows
            .iter()
            .map(|row| -> Result<Delivery, sqlx::Error> {
                Ok(Delivery {
                    id: row.try_get(0)?,
                    webhook: row.try_get(1)?,
                    article_id: row.try_get(2)?,
                    message_id: row.try_get(3)?,
                    attempts: row.try_get::<i64, _>(4)?,
                    created_at: from_micros(row.try_get(5)?),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    /// The receiver took message `id`.
    pub async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "UPDATE webhook_outbox SET delivered_at = $2, last_error = NULL,
                 lease_owner = NULL, lease_until = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(micros(at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Message `id` failed with `error`: tried again at `retry_at`, or
    /// given up at `at` when `None`.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        at: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let (next, given_up) = match retry_at {
            Some(next) => (micros(next), None),
            None => (micros(at), Some(micros(at))),
        };
        sqlx::query(
            "UPDATE webhook_outbox SET last_error = $2, next_attempt_at = $3, given_up_at = $4,
                 lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(error)
        .bind(next)
        .bind(given_up)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Gives up `owner`'s leases (at shutdown): the next start or another
    /// instance delivers those messages at once.
    pub async fn release_deliveries(&self, owner: &str) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "UPDATE webhook_outbox SET lease_owner = NULL, lease_until = NULL
             WHERE lease_owner = $1 AND delivered_at IS NULL",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Deletes messages delivered or given up before `before`: the
    /// outbox keeps what is pending plus a bounded history.
    pub async fn purge_outbox(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let _guard = self.write_guard().await;
        let done = sqlx::query(
            "DELETE FROM webhook_outbox WHERE COALESCE(delivered_at, given_up_at) < $1",
        )
        .bind(micros(before))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Every webhook's outbox, by name (the hub's recipients hold a `:`,
    /// which webhook names cannot: `store/hub.rs`).
    pub async fn webhook_states(&self) -> Result<Vec<WebhookState>, StoreError> {
        let states = self.outbox_states("o.webhook NOT LIKE '%:%'").await?;
        Ok(states.into_iter().map(|(state, _)| state).collect())
    }

    /// The outbox of each recipient `condition` (SQL on `o`) selects, with
    /// its latest attempt.
    pub(super) async fn outbox_states(
        &self,
        condition: &str,
    ) -> Result<Vec<(WebhookState, Option<DateTime<Utc>>)>, StoreError> {
        let sql = format!(
            "SELECT o.webhook,
                 COUNT(CASE WHEN o.delivered_at IS NULL AND o.given_up_at IS NULL THEN 1 END),
                 COUNT(CASE WHEN o.delivered_at IS NULL AND o.given_up_at IS NULL
                            AND o.last_error IS NOT NULL THEN 1 END),
                 COUNT(o.delivered_at), COUNT(o.given_up_at), MAX(o.delivered_at),
                 MIN(CASE WHEN o.delivered_at IS NULL AND o.given_up_at IS NULL
                          THEN o.next_attempt_at END),
                 (SELECT e.last_error FROM webhook_outbox e
                  WHERE e.webhook = o.webhook AND e.last_error IS NOT NULL
                  ORDER BY e.last_attempt_at DESC, e.id DESC LIMIT 1),
                 MAX(o.last_attempt_at)
             FROM webhook_outbox o WHERE {condition} GROUP BY o.webhook ORDER BY o.webhook"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(
                |row| -> Result<(WebhookState, Option<DateTime<Utc>>), sqlx::Error> {
                    let state = WebhookState {
                        webhook: row.try_get(0)?,
                        pending: row.try_get(1)?,
                        failing: row.try_get(2)?,
                        delivered: row.try_get(3)?,
                        given_up: row.try_get(4)?,
                        last_delivered_at: row.try_get::<Option<i64>, _>(5)?.map(from_micros),
                        next_attempt_at: row.try_get::<Option<i64>, _>(6)?.map(from_micros),
                        last_error: row.try_get(7)?,
                    };
                    let last_attempt = row.try_get::<Option<i64>, _>(8)?.map(from_micros);
                    Ok((state, last_attempt))
                },
            )
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_differ_per_webhook_and_article() {
        let id = message_id("china-russia", "urn:uuid:1");
        assert_eq!(id, message_id("china-russia", "urn:uuid:1"));
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        assert_ne!(id, message_id("china-russi", "aurn:uuid:1"));
        assert_ne!(id, message_id("other", "urn:uuid:1"));
    }
}
