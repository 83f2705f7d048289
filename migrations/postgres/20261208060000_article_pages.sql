-- Article pages fetched for full text (docs/CONFIG.md "Full text"), one row
-- per source and page URL: fetched once per article; the extracted body is
-- kept so later refreshes of the same entry reuse it without a request. A
-- failure that may pass (timeout, 5xx) is tried again from next_attempt_at
-- with backoff; NULL there means the outcome is final.
CREATE TABLE article_pages (
    source_id BIGINT NOT NULL,
    url TEXT NOT NULL,
    -- extracted | kept_feed | not_html | too_large | disallowed | failed
    outcome TEXT NOT NULL,
    status BIGINT,
    error TEXT,
    -- Sanitized HTML, only when outcome = 'extracted'.
    content TEXT,
    attempts BIGINT NOT NULL,
    fetched_at BIGINT NOT NULL,
    next_attempt_at BIGINT,
    PRIMARY KEY (source_id, url)
);
