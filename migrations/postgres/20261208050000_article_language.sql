-- Each article's language (BCP 47: `en`, `fr-FR`), as its feed states it or
-- as detected from its text (docs/CONFIG.md "Languages"). NULL when
-- neither told, and on rows stored before it was recorded.
ALTER TABLE articles ADD COLUMN language TEXT;
