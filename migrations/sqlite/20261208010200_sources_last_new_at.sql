-- When a source last brought a new article: a source is quiet once this
-- is older than [health] quiet_after. Existing sources start from the
-- newest entry they brought.
ALTER TABLE sources ADD COLUMN last_new_at INTEGER;

UPDATE sources SET last_new_at = (
    SELECT MAX(x.first_seen) FROM article_sources x WHERE x.source_id = sources.id
);
