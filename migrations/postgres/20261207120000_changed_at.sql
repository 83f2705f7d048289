-- When each article last changed as readers see it, so that a view's
-- Last-Modified is the time its content last changed (README, HTTP), not
-- its newest entry's date: an old-dated story that arrives today changes
-- the view today. NULL means "unchanged since first_seen". The database
-- keeps it (on its own clock), so every write path and every instance
-- agrees.
ALTER TABLE articles ADD COLUMN changed_at BIGINT;

-- Microseconds since the epoch, like every other time column.
CREATE FUNCTION tributary_now_micros() RETURNS BIGINT LANGUAGE sql AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT $$;

CREATE FUNCTION tributary_article_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE articles SET changed_at = tributary_now_micros() WHERE id = NEW.article_id;
    RETURN NULL;
END $$;

CREATE FUNCTION tributary_article_edited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := tributary_now_micros();
    RETURN NEW;
END $$;

CREATE TRIGGER articles_changed BEFORE UPDATE OF link, title, summary, content, author, published, updated ON articles
FOR EACH ROW
WHEN (OLD.link IS DISTINCT FROM NEW.link OR OLD.title IS DISTINCT FROM NEW.title
  OR OLD.summary IS DISTINCT FROM NEW.summary OR OLD.content IS DISTINCT FROM NEW.content
  OR OLD.author IS DISTINCT FROM NEW.author OR OLD.published IS DISTINCT FROM NEW.published
  OR OLD.updated IS DISTINCT FROM NEW.updated)
EXECUTE FUNCTION tributary_article_edited();

-- Another source carrying the article shows in its `seen_in`.
CREATE FUNCTION tributary_article_seen_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE articles SET changed_at = tributary_now_micros()
     WHERE id = NEW.article_id AND source_id IS DISTINCT FROM NEW.source_id;
    RETURN NULL;
END $$;
CREATE TRIGGER article_sources_changed AFTER INSERT ON article_sources
FOR EACH ROW EXECUTE FUNCTION tributary_article_seen_again();

-- Another outlet's copy shows as a rel="related" link.
CREATE TRIGGER article_links_changed AFTER INSERT ON article_links
FOR EACH ROW EXECUTE FUNCTION tributary_article_changed();

-- An article leaving the store (retention, a removed source) changes every
-- view that held it: views take this as a lower bound.
INSERT INTO meta (key, value) VALUES ('removed_at', '0') ON CONFLICT (key) DO NOTHING;
CREATE FUNCTION tributary_articles_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE meta SET value = tributary_now_micros()::TEXT WHERE key = 'removed_at';
    RETURN NULL;
END $$;
CREATE TRIGGER articles_removed AFTER DELETE ON articles
FOR EACH STATEMENT EXECUTE FUNCTION tributary_articles_removed();

-- The polling floor (seconds) the last full response set from RSS <ttl>
-- and from Cache-Control max-age / Expires: a 304 has no body to carry
-- <ttl> again, and may carry no cache headers, yet the floor still holds.
ALTER TABLE sources ADD COLUMN floor_ttl BIGINT;
ALTER TABLE sources ADD COLUMN floor_max_age BIGINT;
