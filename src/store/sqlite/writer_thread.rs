//! SQLite's writer connection lives on a thread of its own, and ingests are
//! sent there to run (exec.rs explains why in-thread). One long-lived
//! thread rather than the blocking pool: the connection's page cache is
//! then allocated and freed by one thread (one malloc arena, not a new one
//! per pool thread that happened to run a group), and parsing on the pool
//! never waits behind a write. The thread also keeps the near-duplicate
//! band keys (band_index.rs), which only its transactions read and change.

use crate::store::band_index::BandIndex;
use crate::store::StoreError;
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Work = Box<dyn FnOnce(&mut Writer) + Send>;

/// What the writer thread owns.
pub(in crate::store) struct Writer {
    pub(in crate::store) conn: Connection,
    pub(in crate::store) bands: BandIndex,
}

/// The thread's mailbox; the thread ends when the last handle is dropped.
pub(in crate::store) struct WriterThread {
    mailbox: mpsc::Sender<Work>,
}

impl WriterThread {
    pub(in crate::store) fn start(conn: Connection) -> Result<WriterThread, StoreError> {
        let (mailbox, inbox) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut writer = Writer {
                    conn,
                    bands: BandIndex::default(),
                };
                for work in inbox {
                    // A panic fails that work only (its caller gets an
                    // error); the thread and its connection carry on.
                    let panicked =
                        std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut writer))).is_err();
                    if panicked {
                        writer.bands.forget();
                        if !writer.conn.is_autocommit() {
                            let _ = writer.conn.execute_batch("ROLLBACK");
                        }
                    }
                }
            })
            .map_err(|e| StoreError::WriteTask(format!("starting the SQLite writer: {e}")))?;
        Ok(WriterThread { mailbox })
    }

    /// Runs `work` on the writer thread and waits for its result.
    pub(in crate::store) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Writer) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |writer| {
            let _ = reply.send(work(writer));
        });
        self.mailbox
            .send(work)
            .map_err(|_| StoreError::WriteTask("the SQLite writer thread is gone".into()))?;
        answer
            .await
            .map_err(|_| StoreError::WriteTask("the write panicked".into()))
    }
}
