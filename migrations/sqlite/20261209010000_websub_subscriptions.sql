-- WebSub subscriber (docs/CONFIG.md "WebSub"): per source, the hub and
-- topic its last fetch announced, and our subscription there. The state
-- lives here rather than in memory so that several instances on one
-- PostgreSQL share it: any instance answers the hub's verification and
-- takes its pushes, one (the claim) renews or unsubscribes.
CREATE TABLE websub_subscriptions (
    source_id INTEGER PRIMARY KEY REFERENCES sources (id) ON DELETE CASCADE,
    hub TEXT NOT NULL,
    topic TEXT NOT NULL,
    -- discovered, subscribing, active, unsubscribing, unsubscribed, denied
    state TEXT NOT NULL DEFAULT 'discovered',
    -- The unguessable last segment of the callback URL, and the secret the
    -- hub signs pushes with; both per subscription.
    callback TEXT UNIQUE,
    secret TEXT,
    lease_until INTEGER,
    -- When the loop acts on this row next: subscribe, retry, renew.
    next_attempt_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_push_at INTEGER,
    pushes INTEGER NOT NULL DEFAULT 0,
    claim_owner TEXT,
    claim_until INTEGER
);

CREATE INDEX websub_subscriptions_due ON websub_subscriptions (next_attempt_at);
