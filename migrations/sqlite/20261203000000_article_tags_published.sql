-- Filtered views (`any`, `all`) walk a tag's articles newest first from this
-- index instead of probing every article of `articles_published`: a page
-- then costs the same whatever the store size and the tag's rarity.
-- `published` is copied from the article (it never changes after insert).
-- SQLite cannot add a NOT NULL column without a default, so the table is
-- rebuilt: an insert that forgets `published` fails instead of sorting last.
CREATE TABLE article_tags_new (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    term TEXT NOT NULL REFERENCES tags (term),
    position INTEGER NOT NULL,
    origin TEXT,
    published INTEGER NOT NULL,
    PRIMARY KEY (article_id, term)
);

INSERT INTO article_tags_new (article_id, term, position, origin, published)
SELECT t.article_id, t.term, t.position, t.origin, a.published
FROM article_tags t JOIN articles a ON a.id = t.article_id;

DROP TABLE article_tags;

ALTER TABLE article_tags_new RENAME TO article_tags;

-- Replaces article_tags_term (term, article_id): every lookup by term alone
-- is served by this one.
CREATE INDEX article_tags_term_published ON article_tags (term, published DESC, article_id DESC);
