-- Each source's fetch history (docs/HTTP.md "Source health"): one row per
-- fetch, kept for a week, and one row per source and UTC day, kept for 35
-- days; both written in the refresh's own transaction, pruned with
-- retention. Microseconds since the epoch; days since the epoch.
CREATE TABLE fetch_log (
    source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    -- ok, not_modified, partial, throttled, gone, failed.
    outcome TEXT NOT NULL,
    status INTEGER,
    duration_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    new_entries INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (source_id, at)
) WITHOUT ROWID;

CREATE INDEX fetch_log_at ON fetch_log (at);

CREATE TABLE fetch_days (
    source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    fetches INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    not_modified INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    new_entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (source_id, day)
) WITHOUT ROWID;

CREATE INDEX fetch_days_day ON fetch_days (day);
