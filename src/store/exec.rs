//! The statements of an ingest, run on either kind of connection: sqlx's
//! (PostgreSQL) or the SQLite writer's own rusqlite connection.
//!
//! Through sqlx every statement is a round trip to the connection's worker
//! thread; an ingest runs hundreds, and the hand-offs cost more than SQLite's
//! own work. rusqlite runs them in the calling thread, so a group of
//! refreshes is written by one call on the writer thread (sqlite/writer_thread.rs)
//! with cached prepared statements. The ingest logic is written once, as
//! async code over [`Exec`]: on the rusqlite side every await is already
//! done when it is reached (`run_to_completion`).

use super::StoreError;
use sqlx::{AnyConnection, Row as _};
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// One bound value. A NULL keeps its type: PostgreSQL infers a
/// parameter's type from it (an untyped one in `COALESCE($2, title)` fails).
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Null(Kind),
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Blob(v)
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

/// The kind of a NULL of this type.
pub(super) trait Typed {
    const KIND: Kind;
}

impl Typed for i64 {
    const KIND: Kind = Kind::Int;
}
impl Typed for f64 {
    const KIND: Kind = Kind::Real;
}
impl Typed for &str {
    const KIND: Kind = Kind::Text;
}
impl Typed for &String {
    const KIND: Kind = Kind::Text;
}
impl Typed for &[u8] {
    const KIND: Kind = Kind::Blob;
}

impl<'a, T: Into<Value<'a>> + Typed> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null(T::KIND), Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().into()
    }
}

/// A column read back, from either kind of row.
pub(super) trait Column: Sized {
    fn from_sqlx(row: &sqlx::any::AnyRow, index: usize) -> Result<Self, sqlx::Error>;
    fn from_rusqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self, rusqlite::Error>;
}

macro_rules! column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlx(row: &sqlx::any::AnyRow, index: usize) -> Result<Self, sqlx::Error> {
                row.try_get(index)
            }
            fn from_rusqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self, rusqlite::Error> {
                row.get(index)
            }
        }
    )*};
}

column!(i64, String, Option<String>, Option<Vec<u8>>);

/// A row read back: a tuple of columns.
pub(super) trait FromRow: Sized {
    fn from_sqlx(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error>;
    fn from_rusqlite(row: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error>;
}

macro_rules! from_row {
    ($($t:ident $i:tt),*) => {
        impl<$($t: Column),*> FromRow for ($($t,)*) {
            fn from_sqlx(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
                Ok(($($t::from_sqlx(row, $i)?,)*))
            }
            fn from_rusqlite(row: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error> {
                Ok(($(<$t as Column>::from_rusqlite(row, $i)?,)*))
            }
        }
    };
}

from_row!(A 0);
from_row!(A 0, B 1);
from_row!(A 0, B 1, C 2);
from_row!(A 0, B 1, C 2, D 3);
from_row!(A 0, B 1, C 2, D 3, E 4);
from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);

/// Runs statements whose placeholders are `$N` (numbered, repeatable) or
/// `?` (anonymous, in order; never both in one statement).
pub(super) trait Exec: Send {
    /// Rows changed.
    fn execute(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn fetch_all<R: FromRow + Send>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> impl Future<Output = Result<Vec<R>, StoreError>> + Send;

    /// Whether statements of many rows pay off: they save round trips on a
    /// sqlx connection; in-thread, single-row statements are cheaper (no
    /// statement journal, one prepared program reused).
    fn batches_rows(&self) -> bool;

    fn fetch_optional<R: FromRow + Send>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> impl Future<Output = Result<Option<R>, StoreError>> + Send {
        async move { Ok(self.fetch_all(sql, args).await?.into_iter().next()) }
    }

    /// Runs a one-row `INSERT .. ON CONFLICT DO NOTHING` (`sql`, without a
    /// RETURNING clause): the new row's `id`, or `None` when it was skipped.
    fn insert_returning_id(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send {
        async move {
            let returning = format!("{sql} RETURNING id");
            let id: Option<(i64,)> = self.fetch_optional(&returning, args).await?;
            Ok(id.map(|(id,)| id))
        }
    }
}

fn sqlx_query<'q>(
    sql: &'q str,
    args: &[Value<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match *arg {
            Value::Null(Kind::Int) => query.bind(None::<i64>),
            Value::Null(Kind::Real) => query.bind(None::<f64>),
            Value::Null(Kind::Text) => query.bind(None::<&str>),
            Value::Null(Kind::Blob) => query.bind(None::<&[u8]>),
            Value::Int(v) => query.bind(v),
            Value::Real(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Blob(v) => query.bind(v),
        };
    }
    query
}

impl Exec for AnyConnection {
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, StoreError> {
        Ok(sqlx_query(sql, args)
            .execute(&mut *self)
            .await?
            .rows_affected())
    }

    async fn fetch_all<R: FromRow + Send>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Vec<R>, StoreError> {
        let rows = sqlx_query(sql, args).fetch_all(&mut *self).await?;
        Ok(rows
            .iter()
            .map(R::from_sqlx)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    fn batches_rows(&self) -> bool {
        true
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
            out.push(R::from_rusqlite(row)?);
        }
        Ok(out)
    }

    fn batches_rows(&self) -> bool {
        false
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
/// ingest on the rusqlite connection); one that would is a bug, reported as
/// an error rather than a hang.
pub(super) fn run_to_completion<T>(
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::WriterWaited),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_skipped_by_a_conflict_returns_no_id_in_thread() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE)")
            .unwrap();
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
}
