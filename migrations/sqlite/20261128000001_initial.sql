-- Times are Unix microseconds (INTEGER), the same on both backends.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    -- 0 once the source left the config: kept for its articles, not fetched.
    configured INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    title TEXT,
    site_url TEXT,
    feed_id TEXT,
    feed_updated INTEGER,
    etag TEXT,
    last_modified TEXT,
    last_fetch_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_fetch_at INTEGER,
    retry_after_until INTEGER,
    backoff_until INTEGER,
    disabled_reason TEXT,
    moved_to TEXT,
    lease_owner TEXT,
    lease_until INTEGER
);

CREATE INDEX sources_due ON sources (next_fetch_at);

CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    canonical_url TEXT UNIQUE,
    content_key TEXT UNIQUE,
    link TEXT,
    title TEXT NOT NULL,
    summary TEXT,
    content TEXT,
    author TEXT,
    published INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    -- The source it was first seen in: its atom:source, and the only one
    -- whose edits update the article.
    source_id INTEGER NOT NULL REFERENCES sources (id)
);

-- Newest first, keyset paging: every merged view walks this index.
CREATE INDEX articles_published ON articles (published DESC, id DESC);

-- Identity within one source (guid, else link, else hash).
CREATE TABLE article_sources (
    source_id INTEGER NOT NULL REFERENCES sources (id),
    entry_key TEXT NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (source_id, entry_key)
);

CREATE INDEX article_sources_article ON article_sources (article_id, source_id);

CREATE TABLE tags (
    term TEXT PRIMARY KEY,
    -- The first spelling seen.
    label TEXT NOT NULL
);

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    term TEXT NOT NULL REFERENCES tags (term),
    position INTEGER NOT NULL,
    PRIMARY KEY (article_id, term)
);

CREATE INDEX article_tags_term ON article_tags (term, article_id);
