//! Where a child's peak RSS goes: a thread that reads `/proc/self/status`
//! every few milliseconds and, at each new high of `VmRSS`, takes what the
//! process's allocators say they hold then. SQLite, being C, allocates
//! with glibc's malloc, and counts its own (page caches, statements,
//! sorters); Rust's allocations go to jemalloc (src/main.rs), built
//! without statistics, so its share is the anonymous memory glibc's
//! arenas do not hold (thread stacks included); file pages mapped in (the
//! binary, SQLite's `-shm`) are `RssFile`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often `VmRSS` is read: a peak between two readings is missed, so
/// `VmHWM` (the kernel's own) stays the figure; this says what it is made of.
const EVERY: Duration = Duration::from_millis(2);

/// The process's memory at its highest `VmRSS` seen, in bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Breakdown {
    pub rss: u64,
    /// Anonymous memory: every heap, thread stack and tokio task.
    pub rss_anon: u64,
    /// Mapped files (the binary, libraries, SQLite's `-shm`).
    pub rss_file: u64,
    /// SQLite's own count of what it allocated (page caches, prepared
    /// statements, sorters, the WAL index copy).
    pub sqlite_used: u64,
    /// glibc malloc: bytes in use (SQLite's and anything else in C) ...
    pub glibc_used: u64,
    /// ... and held by its arenas beside them, free but not given back.
    pub glibc_free: u64,
    pub threads: u64,
    /// When, in ms since the sampler started.
    pub at_ms: u64,
}

impl Breakdown {
    /// `RESULT` pairs (kB), read back by procs.rs.
    /// Anonymous memory outside glibc's arenas: jemalloc's (Rust's
    /// allocations, and freed pages it has not given back yet) and the
    /// threads' stacks.
    pub fn rust_heap_and_stacks(&self) -> u64 {
        self.rss_anon
            .saturating_sub(self.glibc_used + self.glibc_free)
    }

    pub fn result_pairs(&self) -> String {
        let kb = |b: u64| b / 1024;
        format!(
            "peak_rss_kb={} peak_anon_kb={} peak_file_kb={} peak_sqlite_kb={} \
             peak_glibc_used_kb={} peak_glibc_free_kb={} peak_threads={} peak_at_ms={}",
            kb(self.rss),
            kb(self.rss_anon),
            kb(self.rss_file),
            kb(self.sqlite_used),
            kb(self.glibc_used),
            kb(self.glibc_free),
            self.threads,
            self.at_ms
        )
    }
}

impl fmt::Display for Breakdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "at the highest RSS seen ({:.0} MB, {:.1} s in): mapped files {:.0} MB; \
             glibc malloc {:.0} MB in use (SQLite's count: {:.0} MB) + {:.0} MB free; \
             jemalloc and {} threads' stacks {:.0} MB",
            mb(self.rss),
            self.at_ms as f64 / 1000.0,
            mb(self.rss_file),
            mb(self.glibc_used),
            mb(self.sqlite_used),
            mb(self.glibc_free),
            self.threads,
            mb(self.rust_heap_and_stacks())
        )
    }
}

/// The sampling thread; [`Sampler::stop`] ends it and gives the breakdown.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<Mutex<Breakdown>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new(Breakdown::default()));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::Builder::new()
                .name("peak-sampler".into())
                .spawn(move || {
                    let started = std::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let status =
                            std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                        let rss = status_kb(&status, "VmRSS") * 1024;
                        let mut peak = peak.lock().unwrap_or_else(|e| e.into_inner());
                        if rss > peak.rss {
                            *peak = Breakdown {
                                at_ms: started.elapsed().as_millis() as u64,
                                ..breakdown(&status)
                            };
                        }
                        drop(peak);
                        std::thread::sleep(EVERY);
                    }
                })
                .ok()
        };
        Sampler { stop, peak, thread }
    }

    pub fn stop(mut self) -> Breakdown {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        *self.peak.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn breakdown(status: &str) -> Breakdown {
    // SAFETY: plain reads of the allocators' statistics.
    let glibc = unsafe { libc::mallinfo2() };
    let sqlite_used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
    Breakdown {
        rss: status_kb(status, "VmRSS") * 1024,
        rss_anon: status_kb(status, "RssAnon") * 1024,
        rss_file: status_kb(status, "RssFile") * 1024,
        sqlite_used: sqlite_used.max(0) as u64,
        // `arena`: the main heap and other arenas; `hblkhd`: chunks mapped
        // on their own.
        glibc_used: (glibc.uordblks + glibc.hblkhd) as u64,
        glibc_free: glibc.fordblks as u64,
        threads: status_kb(status, "Threads"),
        at_ms: 0,
    }
}
