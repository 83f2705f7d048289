//! The `tributary` binary: parse the command line and hand over to the library.

use clap::Parser;
use std::process::ExitCode;

// Entries are allocated on tokio's workers and freed on the SQLite writer
// thread: glibc's malloc spent a sixth of a fetch cycle's CPU on that
// (consolidating, unlinking chunks); jemalloc's per-thread caches do not.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`_RJEM_MALLOC_CONF` in the
/// environment still overrides them): freed pages go back to the OS after
/// 1 s instead of 10, so a fetch cycle's peak memory is not held on to
/// (7-15 MB less peak RSS in the benchmark, no measured slowdown).
#[export_name = "_rjem_malloc_conf"]
#[allow(non_upper_case_globals)]
pub static malloc_conf: &[u8; 20] = b"dirty_decay_ms:1000\0";

#[tokio::main]
async fn main() -> ExitCode {
    tributary::cli::run(tributary::cli::Cli::parse()).await
}
