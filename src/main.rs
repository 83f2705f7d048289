//! The `tributary` binary: parse the command line and hand over to the library.

use clap::Parser;
use std::process::ExitCode;

// Entries are allocated on tokio's workers and freed on the SQLite writer
// thread: glibc's malloc spent a sixth of a fetch cycle's CPU on that
// (consolidating, unlinking chunks); jemalloc's per-thread caches do not.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tributary::cli::run(tributary::cli::Cli::parse()).await
}
