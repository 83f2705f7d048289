-- Retention (CONTRACT §4): pruned articles leave their keys here, so an old
-- entry still in a source's feed is not stored again as new.
-- kind: 'entry' (the source's own entry_key, with its source_id),
--       'url' (canonical_url) or 'content' (content_key), source_id 0:
--       those identify a story across sources.
CREATE TABLE tombstones (
    kind TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    pruned_at INTEGER NOT NULL,
    -- Last time a feed still carried it: expiry counts from here.
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (kind, source_id, key)
);

CREATE INDEX tombstones_seen ON tombstones (seen_at);

-- Retention counts from first stored.
CREATE INDEX articles_first_seen ON articles (first_seen);
