-- As on PostgreSQL (migrations/postgres, same name): one row per article
-- with its band keys. SQLite writes no band rows (its writer keeps them in
-- memory, store/band_index.rs), so this only keeps the two schemas alike;
-- the keys would be a blob of little-endian 64-bit integers.
DROP TABLE article_bands;

CREATE TABLE article_bands (
    article_id INTEGER PRIMARY KEY,
    published INTEGER NOT NULL,
    band_keys BLOB NOT NULL
);
