-- WebSub hub (docs/CONFIG.md "WebSub"): the verified subscriptions to
-- this instance's feeds. Their distributions are webhook_outbox rows
-- whose recipient is `websub:{id}`, deleted with the subscription.
CREATE TABLE hub_subscriptions (
    id INTEGER PRIMARY KEY,
    -- One of our feed URLs, as the subscriber wrote it.
    topic TEXT NOT NULL,
    callback TEXT NOT NULL,
    -- The subscriber's hub.secret: distributions are signed with it, so
    -- it is kept as given (never shown).
    secret TEXT,
    lease_seconds INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    verified_at INTEGER NOT NULL,
    UNIQUE (topic, callback)
);

CREATE INDEX hub_subscriptions_expiry ON hub_subscriptions (expires_at);
