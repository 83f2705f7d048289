-- Entries a [[rule]] dropped (docs/CONFIG.md "Rules"), one row per source
-- and entry key: an entry whose text (fingerprint) and whose source's rules
-- (rules, a hash of them) are unchanged is not judged again; either
-- changing judges it again. `explain` reads the rule and why from here.
-- Forgotten after tombstone_retention (prune).
CREATE TABLE dropped_entries (
    source_id BIGINT NOT NULL,
    entry_key TEXT NOT NULL,
    rules TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    canonical_url TEXT,
    link TEXT,
    title TEXT NOT NULL,
    rule TEXT NOT NULL,
    why TEXT NOT NULL,
    dropped_at BIGINT NOT NULL,
    PRIMARY KEY (source_id, entry_key)
);

CREATE INDEX dropped_entries_url ON dropped_entries (canonical_url);
CREATE INDEX dropped_entries_at ON dropped_entries (dropped_at);
