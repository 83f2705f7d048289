//! The statements of an ingest, run on either kind of connection: sqlx's
//! (PostgreSQL), implemented here, or the SQLite writer's own in-thread
//! connection (sqlite/exec.rs).
//!
//! Through sqlx every statement is a round trip to the connection's worker
//! thread; an ingest runs hundreds, and the hand-offs cost more than SQLite's
//! own work. SQLite's writer runs them in the calling thread, so a group of
//! refreshes is written by one call on the writer thread
//! (sqlite/writer_thread.rs) with cached prepared statements. The ingest
//! logic is written once, as async code over [`Exec`].

use super::sql::{statement_chunks, Params, INSERT_ROWS};
use super::{Backend, StoreError};
use sqlx::{AnyConnection, Row as _};
use std::future::Future;

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

/// A row of either driver, read by column index.
pub(super) trait RowAccess {
    type Error;
    fn int(&self, index: usize) -> Result<i64, Self::Error>;
    fn text(&self, index: usize) -> Result<String, Self::Error>;
    fn optional_text(&self, index: usize) -> Result<Option<String>, Self::Error>;
    fn optional_int(&self, index: usize) -> Result<Option<i64>, Self::Error>;
    fn optional_blob(&self, index: usize) -> Result<Option<Vec<u8>>, Self::Error>;
}

impl RowAccess for sqlx::any::AnyRow {
    type Error = sqlx::Error;
    fn int(&self, index: usize) -> Result<i64, sqlx::Error> {
        self.try_get(index)
    }
    fn text(&self, index: usize) -> Result<String, sqlx::Error> {
        self.try_get(index)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(index)
    }
    fn optional_int(&self, index: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(index)
    }
    fn optional_blob(&self, index: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(index)
    }
}

/// A column read back.
pub(super) trait Column: Sized {
    fn read<R: RowAccess>(row: &R, index: usize) -> Result<Self, R::Error>;
}

macro_rules! column {
    ($($t:ty => $get:ident),*) => {$(
        impl Column for $t {
            fn read<R: RowAccess>(row: &R, index: usize) -> Result<Self, R::Error> {
                row.$get(index)
            }
        }
    )*};
}

column!(
    i64 => int,
    String => text,
    Option<String> => optional_text,
    Option<i64> => optional_int,
    Option<Vec<u8>> => optional_blob
);

/// A row read back: a tuple of columns.
pub(super) trait FromRow: Sized {
    fn read<R: RowAccess>(row: &R) -> Result<Self, R::Error>;
}

macro_rules! from_row {
    ($($t:ident $i:tt),*) => {
        impl<$($t: Column),*> FromRow for ($($t,)*) {
            fn read<R: RowAccess>(row: &R) -> Result<Self, R::Error> {
                Ok(($($t::read(row, $i)?,)*))
            }
        }
    };
}

from_row!(A 0);
from_row!(A 0, B 1);
from_row!(A 0, B 1, C 2);
from_row!(A 0, B 1, C 2, D 3);
from_row!(A 0, B 1, C 2, D 3, E 4);
from_row!(A 0, B 1, C 2, D 3, E 4, F 5);
from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);

/// `INSERT INTO {into} VALUES (…), … {tail}`: rows of `width` values.
pub(super) struct RowInsert {
    /// The table and its columns.
    pub(super) into: &'static str,
    pub(super) width: usize,
    /// What follows the rows: the `ON CONFLICT` clause.
    pub(super) tail: &'static str,
}

impl RowInsert {
    /// The statement of `rows` rows, its placeholders from `params`.
    pub(super) fn sql(&self, params: &mut Params, rows: usize) -> String {
        format!(
            "INSERT INTO {} VALUES {} {}",
            self.into,
            params.rows(rows, self.width),
            self.tail
        )
    }
}

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

    /// Inserts rows of `insert.width` values each (`values`, row after
    /// row). How many rows go in one statement is the connection's choice:
    /// many where each statement is a round trip (sqlx), one in-thread
    /// (sqlite/exec.rs).
    fn insert_rows(
        &mut self,
        insert: &RowInsert,
        values: &[Value<'_>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

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
            .map(R::read)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn insert_rows(
        &mut self,
        insert: &RowInsert,
        values: &[Value<'_>],
    ) -> Result<(), StoreError> {
        // sqlx binds `$N` by name on SQLite (see `Params`).
        let backend = match self.backend_name() {
            "PostgreSQL" => Backend::Postgres,
            _ => Backend::Sqlite,
        };
        if backend == Backend::Postgres && !values.is_empty() {
            if let Some((sql, columns)) = unnest_insert(insert, values) {
                let args: Vec<Value> = columns.iter().map(|c| Value::Text(c)).collect();
                self.execute(&sql, &args).await?;
                return Ok(());
            }
        }
        let rows: Vec<&[Value]> = values.chunks(insert.width).collect();
        for chunk in statement_chunks(&rows, INSERT_ROWS) {
            let sql = insert.sql(&mut Params::new(backend), chunk.len());
            self.execute(&sql, &chunk.concat()).await?;
        }
        Ok(())
    }
}

/// PostgreSQL: every row of an insert in one statement, whatever their
/// number: one array per column (`UNNEST`), each bound as the text of an
/// array literal (sqlx's `Any` driver binds no arrays). A statement per 64
/// rows cost its parse, bind and executor start for each chunk: the band
/// keys alone were 13 statements per refresh of 50 entries. `None` when a
/// column holds bytes (no such insert yet): rows then go as `VALUES`.
fn unnest_insert(insert: &RowInsert, values: &[Value<'_>]) -> Option<(String, Vec<String>)> {
    let width = insert.width;
    let mut columns = vec![String::from("{"); width];
    let mut kinds: Vec<Option<&'static str>> = vec![None; width];
    for (i, value) in values.iter().enumerate() {
        let column = &mut columns[i % width];
        if column.len() > 1 {
            column.push(',');
        }
        let kind = match *value {
            Value::Null(kind) => {
                column.push_str("NULL");
                match kind {
                    Kind::Int => "int8",
                    Kind::Real => "float8",
                    Kind::Text => "text",
                    Kind::Blob => return None,
                }
            }
            Value::Int(v) => {
                column.push_str(&v.to_string());
                "int8"
            }
            Value::Real(v) => {
                column.push_str(&format!("\"{v}\""));
                "float8"
            }
            Value::Text(v) => {
                // Quoted, `"` and `\` escaped: any text, NULL or `{` too.
                column.push('"');
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        column.push('\\');
                    }
                    column.push(c);
                }
                column.push('"');
                "text"
            }
            Value::Blob(_) => return None,
        };
        kinds[i % width] = Some(kind);
    }
    for column in &mut columns {
        column.push('}');
    }
    let arrays: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| format!("CAST(${} AS TEXT)::{}[]", i + 1, kind.unwrap_or("text")))
        .collect();
    let sql = format!(
        "INSERT INTO {} SELECT * FROM UNNEST({}) {}",
        insert.into,
        arrays.join(", "),
        insert.tail
    );
    Some((sql, columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnest_columns_quote_text_and_keep_nulls_typed() {
        let insert = RowInsert {
            into: "t (a, b, c)",
            width: 3,
            tail: "ON CONFLICT DO NOTHING",
        };
        let values = [
            Value::Int(1),
            Value::Text(r#"say "hi" \ {x}, NULL"#),
            Value::Null(Kind::Real),
            Value::Int(-2),
            Value::Null(Kind::Text),
            Value::Real(0.5),
        ];
        let (sql, columns) = unnest_insert(&insert, &values).unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c) SELECT * FROM UNNEST(CAST($1 AS TEXT)::int8[], \
             CAST($2 AS TEXT)::text[], CAST($3 AS TEXT)::float8[]) ON CONFLICT DO NOTHING"
        );
        assert_eq!(columns[0], "{1,-2}");
        assert_eq!(columns[1], r#"{"say \"hi\" \\ {x}, NULL",NULL}"#);
        assert_eq!(columns[2], r#"{NULL,"0.5"}"#);
        assert!(
            unnest_insert(&insert, &[Value::Blob(b"x"), Value::Int(1), Value::Int(2)]).is_none()
        );
    }
}
