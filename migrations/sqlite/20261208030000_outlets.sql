-- Top stories by coverage (docs/TAGS-AND-DEDUP.md "Outlets"): how many
-- distinct outlets carried each article, kept on write so that views read
-- a column instead of counting copies per request.

-- A source's outlet: the `outlet` of its config, else its URL's host
-- without `www.`; written by the config sync. NULL (a row the sync has not
-- seen yet) counts the source as an outlet of its own.
ALTER TABLE sources ADD COLUMN outlet TEXT;

-- Distinct outlets among the article's copies (its sources' entries and
-- other outlets' near-duplicates), and when the last of them first carried
-- it: the first_seen of each outlet's earliest copy, the latest of those.
ALTER TABLE articles ADD COLUMN outlets INTEGER NOT NULL DEFAULT 1;
ALTER TABLE articles ADD COLUMN last_outlet_at INTEGER NOT NULL DEFAULT 0;

UPDATE articles SET (outlets, last_outlet_at) = (
    SELECT COUNT(*), COALESCE(MAX(earliest), 0) FROM (
        SELECT MIN(c.first_seen) AS earliest FROM (
            SELECT source_id, first_seen FROM article_sources WHERE article_id = articles.id
            UNION ALL
            SELECT source_id, first_seen FROM article_links WHERE article_id = articles.id
        ) c JOIN sources s ON s.id = c.source_id
        GROUP BY COALESCE(s.outlet, '#' || s.id)
    )
);

-- An article is stored with its first source's outlet counted (outlets 1,
-- last_outlet_at its first_seen): that source's entries add no outlet, and
-- skipping them keeps the count off the ingest of every new article.
CREATE TRIGGER article_sources_outlets AFTER INSERT ON article_sources
WHEN NEW.source_id IS NOT (SELECT source_id FROM articles WHERE id = NEW.article_id)
BEGIN
    UPDATE articles SET (outlets, last_outlet_at) = (
        SELECT COUNT(*), COALESCE(MAX(earliest), 0) FROM (
            SELECT MIN(c.first_seen) AS earliest FROM (
                SELECT source_id, first_seen FROM article_sources WHERE article_id = NEW.article_id
                UNION ALL
                SELECT source_id, first_seen FROM article_links WHERE article_id = NEW.article_id
            ) c JOIN sources s ON s.id = c.source_id
            GROUP BY COALESCE(s.outlet, '#' || s.id)
        )
    ) WHERE id = NEW.article_id;
END;

CREATE TRIGGER article_links_outlets AFTER INSERT ON article_links
BEGIN
    UPDATE articles SET (outlets, last_outlet_at) = (
        SELECT COUNT(*), COALESCE(MAX(earliest), 0) FROM (
            SELECT MIN(c.first_seen) AS earliest FROM (
                SELECT source_id, first_seen FROM article_sources WHERE article_id = NEW.article_id
                UNION ALL
                SELECT source_id, first_seen FROM article_links WHERE article_id = NEW.article_id
            ) c JOIN sources s ON s.id = c.source_id
            GROUP BY COALESCE(s.outlet, '#' || s.id)
        )
    ) WHERE id = NEW.article_id;
END;

-- A source moved to another outlet (config): its articles are counted again,
-- and those whose count changed changed as coverage views show them.
CREATE TRIGGER sources_outlet AFTER UPDATE OF outlet ON sources
WHEN OLD.outlet IS NOT NEW.outlet
BEGIN
    UPDATE articles SET (outlets, last_outlet_at, changed_at) = (
        SELECT n, last,
               CASE WHEN n <> articles.outlets
                    THEN CAST(unixepoch('subsec') * 1000000 AS INTEGER)
                    ELSE articles.changed_at END
        FROM (SELECT COUNT(*) AS n, COALESCE(MAX(earliest), 0) AS last FROM (
            SELECT MIN(c.first_seen) AS earliest FROM (
                SELECT source_id, first_seen FROM article_sources WHERE article_id = articles.id
                UNION ALL
                SELECT source_id, first_seen FROM article_links WHERE article_id = articles.id
            ) c JOIN sources s ON s.id = c.source_id
            GROUP BY COALESCE(s.outlet, '#' || s.id)
        ))
    ) WHERE id IN (SELECT article_id FROM article_sources WHERE source_id = NEW.id
                   UNION SELECT article_id FROM article_links WHERE source_id = NEW.id);
END;

-- Coverage views (`window`, `min_outlets`) read their window's range from
-- here, skipping stories with too few outlets without reading them: a
-- page's work grows with the window, not with the store.
CREATE INDEX articles_outlets ON articles (published, outlets);
