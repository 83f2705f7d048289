-- Filtered views (`any`, `all`) walk a tag's articles newest first from this
-- index instead of probing every article of `articles_published`: a page
-- then costs the same whatever the store size and the tag's rarity.
-- `published` is copied from the article (it never changes after insert).
ALTER TABLE article_tags ADD COLUMN published BIGINT;

UPDATE article_tags t SET published = a.published FROM articles a WHERE a.id = t.article_id;

ALTER TABLE article_tags ALTER COLUMN published SET NOT NULL;

-- Replaces article_tags_term (term, article_id): every lookup by term alone
-- is served by this one.
DROP INDEX article_tags_term;

CREATE INDEX article_tags_term_published ON article_tags (term, published DESC, article_id DESC);
