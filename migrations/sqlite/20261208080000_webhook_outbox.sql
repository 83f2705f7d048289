-- Webhooks (docs/CONFIG.md "Webhooks"): one row per new article and
-- webhook whose feed holds it, written in the article's own transaction,
-- so that a crash or restart loses no delivery. No foreign key to
-- articles: a row whose article was pruned before delivery gives up.
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    webhook TEXT NOT NULL,
    article_id INTEGER NOT NULL,
    -- The Standard Webhooks `webhook-id`: stable across retries and
    -- restarts, the receiver's idempotency key.
    message_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- Which instance is delivering it, until when (several instances on
    -- one PostgreSQL deliver each row once).
    lease_owner TEXT,
    lease_until INTEGER,
    last_attempt_at INTEGER,
    last_error TEXT,
    delivered_at INTEGER,
    given_up_at INTEGER,
    UNIQUE (webhook, article_id)
);

-- The deliveries still due, oldest first.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;
