-- The content version (store.rs, ContentVersion) as a sequence instead of
-- a row of `meta`: every bump of the row was a transaction of its own that
-- waited for the previous bump's commit (one row locked by all instances'
-- refreshes) and flushed WAL at commit. `nextval` takes no row lock and
-- writes WAL once per 32 values; `last_value` shows every instance's bumps
-- at once. SQLite keeps the row: its one writer bumps it in the ingest's
-- transaction (store/sqlite/group_commit.rs).
CREATE SEQUENCE content_version MINVALUE 0;

SELECT setval(
    'content_version',
    COALESCE((SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'content_version'), 0)
);

DELETE FROM meta WHERE key = 'content_version';
