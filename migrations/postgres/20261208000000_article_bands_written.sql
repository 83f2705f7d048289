-- Near-duplicate band keys are a table on both backends (store/near_dup.rs).
-- PostgreSQL always wrote them; SQLite's writer kept them in memory and
-- fills its table at the next start. Here the same fill finds every
-- article's rows already stored.
INSERT INTO meta (key, value) VALUES ('bands_to_fill', '1') ON CONFLICT (key) DO NOTHING;
