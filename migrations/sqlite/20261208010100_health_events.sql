-- Changes of a source's state, served as /health.atom. The key is the
-- event itself, so instances sharing a database write each one once.
CREATE TABLE health_events (
    source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    -- failing, recovered, gone, moved, quiet, flood.
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (source_id, kind, at)
) WITHOUT ROWID;

CREATE INDEX health_events_at ON health_events (at);
