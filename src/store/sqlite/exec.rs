//! The SQLite writer's connection behind [`Exec`] (store/exec.rs): rusqlite,
//! which runs each statement in the calling thread, so every await of an
//! ingest on it is already done when it is reached (`run_to_completion`).

use crate::store::exec::{Exec, FromRow, RowAccess, RowInsert, Value};
use crate::store::sql::Params;
use crate::store::{Backend, StoreError};
use std::future::Future;
use std::task::{Context, Poll, Waker};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let about_the_data = matches!(
            &e,
            rusqlite::Error::SqliteFailure(failure, _) if matches!(
                failure.code,
                rusqlite::ErrorCode::ConstraintViolation
                    | rusqlite::ErrorCode::TypeMismatch
                    | rusqlite::ErrorCode::TooBig
                    | rusqlite::ErrorCode::ParameterOutOfRange
            )
        );
        StoreError::Database {
            source: Box::new(e),
            about_the_data,
        }
    }
}

impl RowAccess for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, index: usize) -> Result<i64, rusqlite::Error> {
        self.get(index)
    }
    fn text(&self, index: usize) -> Result<String, rusqlite::Error> {
        self.get(index)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, rusqlite::Error> {
        self.get(index)
    }
    fn optional_int(&self, index: usize) -> Result<Option<i64>, rusqlite::Error> {
        self.get(index)
    }
    fn optional_blob(&self, index: usize) -> Result<Option<Vec<u8>>, rusqlite::Error> {
        self.get(index)
    }
}

/// Binds `args` by the statement's own parameter names: SQLite numbers
/// `$N` parameters in order of first appearance, not by N, so `$N` takes
/// `args[N - 1]` wherever it stands; `?` takes the next in order.
pub(super) fn bind_all(
    statement: &mut rusqlite::CachedStatement<'_>,
    args: &[Value<'_>],
) -> Result<(), rusqlite::Error> {
    for index in 1..=statement.parameter_count() {
        let position = match statement.parameter_name(index) {
            Some(name) if name.starts_with('$') => name[1..]
                .parse::<usize>()
                .map_err(|_| rusqlite::Error::InvalidParameterName(name.into()))?,
            _ => index,
        };
        let value = position
            .checked_sub(1)
            .and_then(|i| args.get(i))
            .ok_or(rusqlite::Error::InvalidParameterCount(position, args.len()))?;
        match *value {
            Value::Null(_) => statement.raw_bind_parameter(index, rusqlite::types::Null)?,
            Value::Int(v) => statement.raw_bind_parameter(index, v)?,
            Value::Real(v) => statement.raw_bind_parameter(index, v)?,
            Value::Text(v) => statement.raw_bind_parameter(index, v)?,
            Value::Blob(v) => statement.raw_bind_parameter(index, v)?,
        }
    }
    Ok(())
}

impl Exec for rusqlite::Connection {
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, StoreError> {
        let mut statement = self.prepare_cached(sql)?;
        bind_all(&mut statement, args)?;
        Ok(statement.raw_execute()? as u64)
    }

    async fn fetch_all<R: FromRow + Send>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Vec<R>, StoreError> {
        let mut statement = self.prepare_cached(sql)?;
        bind_all(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(R::read(row)?);
        }
        Ok(out)
    }

    /// One row per statement: cheaper in-thread than multi-row ones (no
    /// statement journal, one prepared program reused).
    async fn insert_rows(
        &mut self,
        insert: &RowInsert,
        values: &[Value<'_>],
    ) -> Result<(), StoreError> {
        if values.is_empty() {
            return Ok(());
        }
        let sql = insert.sql(&mut Params::new(Backend::Sqlite), 1);
        let mut statement = self.prepare_cached(&sql)?;
        for row in values.chunks(insert.width) {
            bind_all(&mut statement, row)?;
            statement.raw_execute()?;
        }
        Ok(())
    }

    async fn insert_returning_id(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Option<i64>, StoreError> {
        // RETURNING makes SQLite treat the insert as a multi-row write: each
        // page it touches is first copied to a statement journal, in case
        // a NOT NULL check aborts it halfway (a third of an article
        // insert's instructions). One row needs no such journal; the rowid
        // comes from the connection instead.
        let inserted = self.execute(sql, args).await?;
        Ok((inserted == 1).then(|| self.last_insert_rowid()))
    }
}

/// Runs `work` to its end in this thread. For futures that never wait (the
/// ingest on the in-thread connection); one that would is a bug, reported
/// as an error rather than a hang.
pub(in crate::store) fn run_to_completion<T>(
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::WriterWaited),
    }
}

/// An in-memory database with `schema`, for the store's unit tests.
#[cfg(test)]
pub(in crate::store) fn in_memory(schema: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(schema).unwrap();
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_skipped_by_a_conflict_returns_no_id_in_thread() {
        let mut conn = in_memory("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE)");
        let sql = "INSERT INTO t (k) VALUES ($1) ON CONFLICT DO NOTHING";
        let mut insert = |k: &'static str| {
            run_to_completion(conn.insert_returning_id(sql, &[Value::Text(k)])).unwrap()
        };
        let first = insert("a");
        let second = insert("b");
        assert!(first.is_some() && second.is_some() && first != second);
        // Not the rowid of the last insert that did happen.
        assert_eq!(insert("a"), None);
        assert_eq!(insert("c"), second.map(|id| id + 1));
    }

    /// Real SQLite errors: a refused row is the data's, a full database
    /// (`max_page_count` reached) the store's.
    #[test]
    fn data_errors_are_told_from_store_errors() {
        let conn = in_memory("CREATE TABLE t (x TEXT UNIQUE); INSERT INTO t VALUES ('a');");
        let duplicate = conn.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        let duplicate = StoreError::from(duplicate);
        assert_eq!(
            duplicate.to_string(),
            "database: UNIQUE constraint failed: t.x"
        );
        assert!(duplicate.is_about_the_data());
        conn.query_row("PRAGMA max_page_count = 3", [], |_| Ok(()))
            .unwrap();
        let full = conn
            .execute("INSERT INTO t VALUES (?1)", [&"x".repeat(100_000)])
            .unwrap_err();
        let full = StoreError::from(full);
        assert!(full.to_string().contains("full"), "{full}");
        assert!(!full.is_about_the_data());
        assert!(!StoreError::Group(std::sync::Arc::new(full)).is_about_the_data());
    }
}
