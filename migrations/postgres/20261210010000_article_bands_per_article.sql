-- One row per article with its 16 LSH band keys in an array under a GIN
-- index, instead of one row per key. As 16 rows, each new article wrote 16
-- heap tuples and 32 index entries landing at random pages of the
-- (band_key, article_id) key: 4.4 KB of WAL per entry, the ingest's largest
-- writer (BENCHMARKS.md, "PostgreSQL: where the database time goes"). As an
-- array under GIN: 40% less WAL and size, ~20% less time for inserts and
-- lookups together. Lookups (store/near_dup.rs) ask for rows whose keys
-- overlap a refresh's 800 (`&&`). Without `fastupdate`: every lookup reads
-- GIN's whole pending list, which made them 50-100x slower.
CREATE TABLE article_bands_new (
    article_id BIGINT PRIMARY KEY,
    published BIGINT NOT NULL,
    band_keys BIGINT[] NOT NULL
);

INSERT INTO article_bands_new (article_id, published, band_keys)
SELECT article_id, MIN(published), array_agg(band_key ORDER BY band_key)
FROM article_bands GROUP BY article_id;

DROP TABLE article_bands;

ALTER TABLE article_bands_new RENAME TO article_bands;

ALTER INDEX article_bands_new_pkey RENAME TO article_bands_pkey;

CREATE INDEX article_bands_keys ON article_bands USING gin (band_keys) WITH (fastupdate = off);
