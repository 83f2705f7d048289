-- Filtered pages read `article_tags` by index alone (index-only scans on
-- article_tags_term_published and the primary key), which pays only for
-- pages the visibility map marks all-visible, and the planner costs those
-- scans by the marked share. Autovacuum's default for insert-only growth
-- waits for a fifth of the table to be new (20,000 articles' rows at
-- 100,000): then `all=a,b` pages read both tags' rows from the heap, 13x
-- the time (BENCHMARKS.md "Serving from PostgreSQL"). At 2% a vacuum finds
-- few new pages each time, so each costs little; statistics follow at 5%.
ALTER TABLE article_tags SET (
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05
);
