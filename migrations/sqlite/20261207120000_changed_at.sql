-- When each article last changed as readers see it, so that a view's
-- Last-Modified is the time its content last changed (README, HTTP), not
-- its newest entry's date: an old-dated story that arrives today changes
-- the view today. NULL means "unchanged since first_seen". The database
-- keeps it, so every write path (and every instance) agrees.
ALTER TABLE articles ADD COLUMN changed_at INTEGER;

-- Microseconds since the epoch, like every other time column.
CREATE TRIGGER articles_changed AFTER UPDATE OF link, title, summary, content, author, published, updated ON articles
WHEN OLD.link IS NOT NEW.link OR OLD.title IS NOT NEW.title OR OLD.summary IS NOT NEW.summary
  OR OLD.content IS NOT NEW.content OR OLD.author IS NOT NEW.author
  OR OLD.published IS NOT NEW.published OR OLD.updated IS NOT NEW.updated
BEGIN
    UPDATE articles SET changed_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE id = NEW.id;
END;

-- Another source carrying the article shows in its `seen_in`.
CREATE TRIGGER article_sources_changed AFTER INSERT ON article_sources
WHEN NEW.source_id IS NOT (SELECT source_id FROM articles WHERE id = NEW.article_id)
BEGIN
    UPDATE articles SET changed_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE id = NEW.article_id;
END;

-- Another outlet's copy shows as a rel="related" link.
CREATE TRIGGER article_links_changed AFTER INSERT ON article_links
BEGIN
    UPDATE articles SET changed_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE id = NEW.article_id;
END;

-- An article leaving the store (retention, a removed source) changes every
-- view that held it: views take this as a lower bound.
INSERT INTO meta (key, value) VALUES ('removed_at', '0') ON CONFLICT (key) DO NOTHING;
CREATE TRIGGER articles_removed AFTER DELETE ON articles
BEGIN
    UPDATE meta SET value = CAST(CAST(unixepoch('subsec') * 1000000 AS INTEGER) AS TEXT) WHERE key = 'removed_at';
END;

-- The polling floor (seconds) the last full response set from RSS <ttl>
-- and from Cache-Control max-age / Expires: a 304 has no body to carry
-- <ttl> again, and may carry no cache headers, yet the floor still holds.
ALTER TABLE sources ADD COLUMN floor_ttl INTEGER;
ALTER TABLE sources ADD COLUMN floor_max_age INTEGER;
