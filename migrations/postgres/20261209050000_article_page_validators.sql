-- A page read for full text is read again, conditionally, when its entry
-- says it was updated since (docs/CONFIG.md "Full text"): the validators
-- the page came with, and the entry's `updated` it was read for.
ALTER TABLE article_pages ADD COLUMN etag TEXT;
ALTER TABLE article_pages ADD COLUMN last_modified TEXT;
ALTER TABLE article_pages ADD COLUMN entry_updated BIGINT;
