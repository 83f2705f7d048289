//! A first import into an empty SQLite store, with the tag index built once
//! at the end instead of row by row.
//!
//! Filtered views walk `article_tags_term_published`, keyed by (term,
//! published): a first import (feeds reaching weeks back, sources in any
//! order) inserts its rows all over that index, and every group commit
//! writes each page it dirtied to the WAL again. In the harness's 1,000 x 50
//! import that was ~40% of the store's time; sorting the 660,000 rows once
//! afterwards takes ~0.5 s. Meanwhile filtered views scan `article_tags`
//! (correct, slower), on a store that was empty a moment ago. A crash in
//! between leaves the index missing: `Store::connect` builds it again.

use super::{Backend, Store, StoreError};

/// The index as its migration (20261204000000_without_rowid) creates it.
pub(super) const TAG_INDEX: &str = "CREATE INDEX IF NOT EXISTS article_tags_term_published \
     ON article_tags (term, published DESC, article_id DESC)";

/// An import in progress without the tag index; [`BulkLoad::finish`]
/// builds it (and so does dropping it unfinished, on a tokio runtime).
pub struct BulkLoad {
    store: Option<Store>,
}

impl Store {
    /// Starts a bulk load when this is an empty SQLite store; `None`
    /// otherwise (a store with articles, or PostgreSQL, which other
    /// instances may be serving from), and the import goes row by row.
    pub async fn begin_bulk_load(&self) -> Result<Option<BulkLoad>, StoreError> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        let _guard = self.write_guard().await;
        let empty: i64 = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM articles)")
            .fetch_one(&self.writer)
            .await?;
        if empty == 0 {
            return Ok(None);
        }
        sqlx::query("DROP INDEX IF EXISTS article_tags_term_published")
            .execute(&self.writer)
            .await?;
        tracing::info!("empty store: the tag index is built once the first import is done");
        Ok(Some(BulkLoad {
            store: Some(self.clone()),
        }))
    }

    /// Builds the tag index if it is missing (a bulk load that did not
    /// finish). SQLite only.
    pub(super) async fn ensure_tag_index(&self) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut conn = self.writer.acquire().await?;
        // The sort spills to a temporary file rather than to memory (the
        // session's `temp_store`): ~40 MB less peak RSS at 50,000 articles,
        // and no slower. Where no temporary file can be made, in memory.
        sqlx::query("PRAGMA temp_store = FILE")
            .execute(&mut *conn)
            .await?;
        let on_file = sqlx::query(TAG_INDEX).execute(&mut *conn).await;
        sqlx::query("PRAGMA temp_store = MEMORY")
            .execute(&mut *conn)
            .await?;
        if let Err(e) = on_file {
            tracing::warn!(error = %e, "building the tag index in memory");
            sqlx::query(TAG_INDEX).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

impl BulkLoad {
    /// Builds the tag index: filtered views are fast again.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        match self.store.take() {
            Some(store) => store.ensure_tag_index().await,
            None => Ok(()),
        }
    }
}

impl Drop for BulkLoad {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        // An import abandoned by an error or a panic: build the index now
        // rather than at the next start.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = store.ensure_tag_index().await {
                        tracing::error!(error = %e, "building the tag index failed; it is built at the next start");
                    }
                });
            }
            Err(_) => tracing::warn!("the tag index is built at the next start"),
        }
    }
}
