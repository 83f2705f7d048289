-- Ingest writes 16 LSH band rows and a few tag rows per article. In a rowid
-- table each row goes into two B-trees (the table, and its primary key's
-- index); a WITHOUT ROWID table is its primary key, one B-tree, which also
-- holds every column: a band lookup reads `published` without a second
-- seek. Same rows, same indexes otherwise.

CREATE TABLE article_bands_new (
    band_key INTEGER NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    published INTEGER NOT NULL,
    PRIMARY KEY (band_key, article_id)
) WITHOUT ROWID;

INSERT INTO article_bands_new (band_key, article_id, published)
SELECT band_key, article_id, published FROM article_bands;

DROP TABLE article_bands;

ALTER TABLE article_bands_new RENAME TO article_bands;

CREATE INDEX article_bands_article ON article_bands (article_id);

CREATE TABLE article_tags_new (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    term TEXT NOT NULL REFERENCES tags (term),
    position INTEGER NOT NULL,
    origin TEXT,
    published INTEGER NOT NULL,
    PRIMARY KEY (article_id, term)
) WITHOUT ROWID;

INSERT INTO article_tags_new (article_id, term, position, origin, published)
SELECT article_id, term, position, origin, published FROM article_tags;

DROP TABLE article_tags;

ALTER TABLE article_tags_new RENAME TO article_tags;

CREATE INDEX article_tags_term_published ON article_tags (term, published DESC, article_id DESC);
