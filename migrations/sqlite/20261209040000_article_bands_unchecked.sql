-- As on PostgreSQL (migrations/postgres, same name): no foreign key on
-- band rows; retention deletes them with their articles. SQLite writes no
-- band rows (its writer keeps them in memory, store/band_index.rs), so this
-- only keeps the two schemas alike.
CREATE TABLE article_bands_new (
    band_key INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    published INTEGER NOT NULL,
    PRIMARY KEY (band_key, article_id)
) WITHOUT ROWID;

INSERT INTO article_bands_new (band_key, article_id, published)
SELECT band_key, article_id, published FROM article_bands;

DROP TABLE article_bands;

ALTER TABLE article_bands_new RENAME TO article_bands;

CREATE INDEX article_bands_article ON article_bands (article_id);
