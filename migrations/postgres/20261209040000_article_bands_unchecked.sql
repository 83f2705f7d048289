-- Each new article writes 16 band rows, and each row's foreign key check
-- locked its article (a SELECT ... FOR KEY SHARE per row): two thirds of
-- the ingest's foreign key checks. The rows are derived from the
-- article's signature, written with it, and read only to find candidates
-- whose article is then read by id (a row whose article is gone finds
-- none), so the key goes; retention and `rules apply` delete the rows of
-- the articles they remove (store/prune.rs, store/dropped.rs).
ALTER TABLE article_bands DROP CONSTRAINT IF EXISTS article_bands_article_id_fkey;
