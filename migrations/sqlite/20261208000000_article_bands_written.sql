-- Near-duplicate band keys are a table on both backends (store/near_dup.rs);
-- SQLite's writer used to keep them in memory, so the rows here are missing
-- or stale. The table is rebuilt keyed by article: new articles' rows are
-- appended (ids grow) and leave with their article. Lookups by key go
-- through `article_bands_key` (the article id is part of every entry).
DROP TABLE article_bands;

CREATE TABLE article_bands (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    band_key INTEGER NOT NULL,
    published INTEGER NOT NULL,
    PRIMARY KEY (article_id, band_key)
) WITHOUT ROWID;

CREATE INDEX article_bands_key ON article_bands (band_key, published);

-- Band keys are computed from the stored signatures in Rust: the next start
-- fills the table and deletes this row (store/near_dup.rs, `fill_bands`).
INSERT INTO meta (key, value) VALUES ('bands_to_fill', '1') ON CONFLICT (key) DO NOTHING;
