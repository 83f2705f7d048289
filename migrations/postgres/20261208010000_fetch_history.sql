-- Each source's fetch history (docs/HTTP.md "Source health"): one row per
-- fetch, kept for a week, and one row per source and UTC day, kept for 35
-- days; both written in the refresh's own transaction, pruned with
-- retention. Microseconds since the epoch; days since the epoch.
CREATE TABLE fetch_log (
    source_id BIGINT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    -- ok, not_modified, partial, throttled, gone, failed.
    outcome TEXT NOT NULL,
    status BIGINT,
    duration_ms BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    new_entries BIGINT NOT NULL,
    error TEXT,
    PRIMARY KEY (source_id, at)
);

CREATE INDEX fetch_log_at ON fetch_log (at);

CREATE TABLE fetch_days (
    source_id BIGINT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    fetches BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    not_modified BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    new_entries BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (source_id, day)
);

CREATE INDEX fetch_days_day ON fetch_days (day);
