-- Near-duplicate stories (CONTRACT §4): one article for the same story
-- carried by several outlets under different URLs.

-- MinHash signature, numbers, title anchors and word filter (cluster.rs).
ALTER TABLE articles ADD COLUMN signature BYTEA;

-- LSH band keys: stories sharing a key are the only ones compared.
CREATE TABLE article_bands (
    band_key BIGINT NOT NULL,
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    published BIGINT NOT NULL,
    PRIMARY KEY (band_key, article_id)
);

CREATE INDEX article_bands_article ON article_bands (article_id);

-- Other outlets' copies of an article: served as rel="related" links, and
-- their canonical URLs resolve to the article like its own.
CREATE TABLE article_links (
    canonical_url TEXT PRIMARY KEY,
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    source_id BIGINT NOT NULL REFERENCES sources (id),
    url TEXT NOT NULL,
    similarity DOUBLE PRECISION NOT NULL,
    first_seen BIGINT NOT NULL
);

CREATE INDEX article_links_article ON article_links (article_id);

-- Why an article carries a tag, for `tributary explain`.
ALTER TABLE article_tags ADD COLUMN origin TEXT;
