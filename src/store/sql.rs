//! Builders of generated SQL, shared by the store's statements: the
//! placeholders of one statement, and multi-row statements cut into a few
//! lengths whose text repeats (so connections' statement caches serve them
//! prepared).

use super::Backend;
use foldhash::{HashSet, HashSetExt};

/// The placeholders of one generated statement, in bind order: `$N` on
/// PostgreSQL, anonymous `?` on SQLite. sqlx-sqlite binds `?` by position
/// but looks each `$N` up by name (a linear search in SQLite), which makes
/// binding a multi-row statement quadratic in its parameters.
pub(crate) struct Params {
    numbered: bool,
    next: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Params {
        Params {
            numbered: backend == Backend::Postgres,
            next: 1,
        }
    }

    /// `$first, $first+1, …` on either backend: for statements whose other
    /// placeholders are numbered by hand.
    pub(crate) fn numbered_from(first: usize) -> Params {
        Params {
            numbered: true,
            next: first,
        }
    }

    pub(crate) fn one(&mut self) -> String {
        if !self.numbered {
            return "?".into();
        }
        self.next += 1;
        format!("${}", self.next - 1)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> [String; N] {
        std::array::from_fn(|_| self.one())
    }

    /// `count` placeholders for an `IN` list; `NULL` (matching nothing) for
    /// none, as `IN ()` is not SQL.
    pub(crate) fn list(&mut self, count: usize) -> String {
        if count == 0 {
            return "NULL".into();
        }
        (0..count)
            .map(|_| self.one())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `count` rows of `width` values for a multi-row VALUES.
    pub(crate) fn rows(&mut self, count: usize, width: usize) -> String {
        (0..count)
            .map(|_| format!("({})", self.list(width)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Rows per multi-row INSERT (at most five values each: far below both
/// backends' limits on bound parameters).
pub(crate) const INSERT_ROWS: usize = 64;

/// `items` in slices of `max` then of decreasing powers of two: multi-row
/// statements of a few sizes only, whose SQL text repeats, so that the
/// connection's statement cache serves them prepared. (A statement per
/// batch size would be compiled anew each time and fill the cache with
/// large programs.)
pub(crate) fn statement_chunks<T>(mut items: &[T], max: usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    while !items.is_empty() {
        let size = if items.len() >= max {
            max
        } else {
            1 << items.len().ilog2()
        };
        let (chunk, rest) = items.split_at(size);
        chunks.push(chunk);
        items = rest;
    }
    chunks
}

/// The distinct present values, in first-seen order.
pub(crate) fn distinct<'s>(values: impl Iterator<Item = Option<&'s str>>) -> Vec<&'s str> {
    let mut seen = HashSet::new();
    values.flatten().filter(|v| seen.insert(*v)).collect()
}
