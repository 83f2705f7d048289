-- Why each of a source's entries is its article (first seen there, same
-- canonical link as another source's entry, near-duplicate text, or an
-- article of its own although its link or id names another entry), for
-- `tributary explain`. NULL on rows stored before it was recorded.
ALTER TABLE article_sources ADD COLUMN matched_by TEXT;
