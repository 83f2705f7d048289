//! What only SQLite has: one writer. Writes queue for it in-process
//! (`write_lock`) instead of racing for the file lock; refreshes waiting
//! for it are committed together (group_commit.rs) on a thread holding a
//! rusqlite connection of its own (writer_thread.rs, exec.rs), which also
//! keeps the near-duplicate band keys in memory (store/band_index.rs); feed
//! pages are read on rusqlite connections in one blocking call
//! (page_reader.rs). Everything else goes through the sqlx pools that
//! `Store` holds on both backends; rusqlite stays inside this module.

pub(super) mod exec;
pub(super) mod group_commit;
pub(super) mod page_reader;
mod writer_thread;

use super::{StoreError, StoreOptions};
use std::path::Path;

/// SQLite's single-writer machinery, one per store.
pub(super) struct Sqlite {
    /// Taken before each write transaction: writers queue in-process
    /// instead of racing for the file lock (which can fail with
    /// SQLITE_BUSY when a reader upgrades).
    pub(super) write_lock: tokio::sync::Mutex<()>,
    /// The thread holding the connection ingests run on.
    writer: writer_thread::WriterThread,
    /// Refreshes waiting for the writer, committed together.
    pending: group_commit::Pending,
    /// Feed pages read without sqlx.
    pub(super) page_reader: std::sync::Arc<page_reader::PageReader>,
}

impl Sqlite {
    /// The machinery of the SQLite file at `path`, which the pools opened
    /// and migrated.
    pub(super) fn open(path: &Path, options: &StoreOptions) -> Result<Sqlite, StoreError> {
        Ok(Sqlite {
            write_lock: tokio::sync::Mutex::new(()),
            writer: writer_thread::WriterThread::start(open_sync_writer(path, options)?)?,
            pending: Default::default(),
            page_reader: std::sync::Arc::new(page_reader::PageReader::new(
                path.to_path_buf(),
                options.statement_timeout,
            )),
        })
    }
}

/// What a SQLite connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SqliteRole {
    Reader,
    /// Writes other than ingests.
    Writer,
    /// The connection ingests run on.
    IngestWriter,
}

/// The settings of a SQLite session.
pub(super) fn sqlite_session(timeout_ms: u128, role: SqliteRole) -> Vec<String> {
    let mut pragmas = vec![
        // WAL lets readers (the HTTP server) run beside the writer;
        // busy_timeout rides out another process's write (`tributary
        // fetch` beside the daemon).
        "PRAGMA journal_mode = WAL".to_string(),
        "PRAGMA synchronous = NORMAL".into(),
        format!("PRAGMA busy_timeout = {timeout_ms}"),
        "PRAGMA foreign_keys = ON".into(),
        // Statement journals of multi-row statements stay in memory
        // instead of temp files.
        "PRAGMA temp_store = MEMORY".into(),
    ];
    if role != SqliteRole::Reader {
        // Checkpoints copy each page once however often it changed since
        // the last: rarer ones (a WAL of up to ~40 MB) copy less. On every
        // writer: the connection whose commit crosses the bound runs it.
        pragmas.push("PRAGMA wal_autocheckpoint = 10000".into());
    }
    if role == SqliteRole::IngestWriter {
        // The ingest's index inserts land on pages all over the file: the
        // default 2 MB cache sent most of them back to disk and read them
        // again. The cache now lasts from one group commit to the next (no
        // other connection writes in between), so it stays resident: 16 MB
        // wrote as fast as 48 MB in the harness for ~25 MB less peak RSS.
        pragmas.push("PRAGMA cache_size = -16384".into());
    }
    pragmas
}

/// The writer thread's connection (exec.rs explains why), on the database
/// file the pools opened and migrated.
fn open_sync_writer(
    path: &std::path::Path,
    options: &StoreOptions,
) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    for pragma in sqlite_session(options.timeout_ms(), SqliteRole::IngestWriter) {
        // journal_mode answers with a row: run as a query.
        conn.query_row(&pragma, [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })?;
    }
    // Lookups come in a few IN-list lengths per refresh: room for them
    // beside the single-row statements.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// `sqlite://PATH` (or `sqlite:PATH`) with the file created if missing.
pub(super) fn sqlite_url(rest: &str) -> String {
    let path = rest.trim_start_matches("//");
    if path.contains("mode=") {
        format!("sqlite://{path}")
    } else if path.contains('?') {
        format!("sqlite://{path}&mode=rwc")
    } else {
        format!("sqlite://{path}?mode=rwc")
    }
}

/// The file of a `sqlite://PATH?…` URL; `None` for an in-memory database
/// (a second connection would see another, empty one).
pub(super) fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}
