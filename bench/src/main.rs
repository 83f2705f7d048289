//! `tributary-bench`: the load harness of BENCHMARKS.md, one command on
//! 127.0.0.1. It generates a synthetic corpus, serves it, and measures
//! tributary's real code paths (the `tributary fetch` cycle, the daemon's
//! HTTP server) against baselines measured in the same run: feed-rs alone
//! (the parse floor), Python feedparser, and a minimal axum server returning
//! the same bytes from memory (the serving ceiling).
//!
//! The measured tributary parts and the static server run as child
//! processes of this binary (hidden `__fetch`, `__serve`, `__static`
//! roles), so that their RSS is their own and both servers face the same
//! load generator from outside. One module per phase of a run, in order:
//! `synth` (the corpus), `parsing`, `feedparser`, `ingest`, `serving`,
//! `websub` (push latency through tributary-as-hub), `postgres`,
//! `pgserving` (filtered views from PostgreSQL beside SQLite); `report`
//! prints the table.

mod feedparser;
mod ingest;
mod load;
mod model;
mod parsing;
mod peak;
mod pgcpu;
mod pgserving;
mod postgres;
mod procs;
mod report;
mod roles;
mod serving;
mod synth;
mod websub;

use bytes::Bytes;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The allocator of `tributary` itself (src/main.rs): the measured roles
// run in this binary, and the baselines run on the same allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// And its options (src/main.rs).
#[export_name = "_rjem_malloc_conf"]
#[allow(non_upper_case_globals)]
pub static malloc_conf: &[u8; 20] = b"dirty_decay_ms:1000\0";

#[derive(Parser, Debug)]
#[command(
    name = "tributary-bench",
    about = "Benchmark tributary against same-run baselines on 127.0.0.1"
)]
struct Args {
    /// Synthetic sources.
    #[arg(long, default_value_t = 1000)]
    sources: usize,
    /// Entries per source.
    #[arg(long, default_value_t = 50)]
    entries: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds of load per serving measurement.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// A small smoke run: 100 sources, 1 s of load per measurement.
    #[arg(long)]
    quick: bool,
    /// Sources parsed by Python feedparser (it is slow); 0 skips it.
    #[arg(long, default_value_t = 100)]
    feedparser_sources: usize,
    /// PostgreSQL server for the scale-out measurement (a database
    /// `tributary_bench` is dropped and created there); empty skips it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Only the WebSub push-latency phase (no corpus, no other phase).
    #[arg(long)]
    websub_only: bool,
    /// Only the PostgreSQL phases, ingest and serving (the corpus is still
    /// generated and served).
    #[arg(long)]
    postgres_only: bool,
    /// Only PostgreSQL's serving phase beside SQLite's (`pgserving`).
    #[arg(long)]
    postgres_serving_only: bool,
    /// Keep the work directory (corpus, config, database) for inspection.
    #[arg(long)]
    keep: bool,
    /// Internal: a child role (`__fetch`, `__serve`, `__static`, `__daemon`).
    #[arg(long, hide = true)]
    role: Option<String>,
    #[arg(long, hide = true)]
    config: Option<PathBuf>,
    #[arg(long, hide = true)]
    body: Option<PathBuf>,
    #[arg(long, hide = true)]
    etag: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    // Every role gets the runtime `tributary` itself gets (#[tokio::main]).
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(role) = args.role.clone() {
        return runtime.block_on(roles::run(&role, &args.config, &args.body, &args.etag));
    }
    if args.quick {
        args.sources = args.sources.min(100);
        args.duration = args.duration.min(1.0);
        args.feedparser_sources = args.feedparser_sources.min(20);
    }
    runtime.block_on(bench(args))
}

/// What every phase reads: the options, the work directory, the corpus.
pub struct Run {
    args: Args,
    cores: usize,
    dir: PathBuf,
    /// The first corpus: one RSS document per source.
    feeds: Arc<Vec<Bytes>>,
    corpus_bytes: usize,
    /// Where the harness serves the corpus, replaceable between cycles.
    feed_server: SocketAddr,
    corpus: Arc<roles::Corpus>,
}

impl Run {
    fn total_entries(&self) -> usize {
        self.args.sources * self.args.entries
    }

    /// Entries/s of a pass over the whole corpus taking `d`.
    fn rate(&self, d: Duration) -> f64 {
        self.total_entries() as f64 / d.as_secs_f64()
    }

    /// The config of the first cycle's SQLite store, which the serving
    /// phase serves.
    fn config_path(&self) -> PathBuf {
        self.dir.join("tributary.toml")
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let websub_only = args.websub_only;
    let mut args = args;
    if websub_only {
        (args.sources, args.entries) = (1, 1);
    }
    let run = corpus(args).await?;
    let mut rows = Vec::new();
    if websub_only {
        websub::measure(&run, &mut rows).await?;
        println!("{}", report::table(&run, &rows));
        let _ = std::fs::remove_dir_all(&run.dir);
        return Ok(());
    }
    if !run.args.postgres_only && !run.args.postgres_serving_only {
        let floor = parsing::measure(&run, &mut rows);
        let feedparser = feedparser::rate(&run).await;
        let first = ingest::measure(&run, floor, feedparser, &mut rows).await?;
        serving::measure(&run, &first, &mut rows).await?;
        if let Err(e) = websub::measure(&run, &mut rows).await {
            eprintln!("websub latency not measured: {e:#}");
        }
    }
    if !run.args.postgres.is_empty() {
        if !run.args.postgres_serving_only {
            postgres::measure(&run, &run.args.postgres, &mut rows).await;
        }
        pgserving::measure(&run, &run.args.postgres, &mut rows).await;
    }
    println!("{}", report::table(&run, &rows));
    if run.args.keep {
        eprintln!("kept {}", run.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&run.dir);
    }
    Ok(())
}

/// Phase 1: the corpus, generated and served from memory.
async fn corpus(args: Args) -> anyhow::Result<Run> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = std::env::temp_dir().join(format!("tributary-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    eprintln!("work directory: {}", dir.display());
    let started = Instant::now();
    let feeds: Vec<Bytes> = (0..args.sources)
        .map(|i| Bytes::from(synth::rss_feed(&outlet(i), i, args.entries)))
        .collect();
    let corpus_bytes: usize = feeds.iter().map(Bytes::len).sum();
    eprintln!(
        "corpus: {} sources x {} entries, {:.1} MB ({} B/entry), generated in {:.1?}",
        args.sources,
        args.entries,
        corpus_bytes as f64 / 1e6,
        corpus_bytes / (args.sources * args.entries).max(1),
        started.elapsed()
    );
    let feeds = Arc::new(feeds);
    let (feed_server, corpus) = roles::serve_corpus(feeds.clone()).await?;
    Ok(Run {
        args,
        cores,
        dir,
        feeds,
        corpus_bytes,
        feed_server,
        corpus,
    })
}

/// The site an article of source `i` links to: one host per outlet, as in
/// the wild (the canonical-URL step sees distinct hosts).
fn outlet(i: usize) -> String {
    format!("https://www.outlet{i}.example")
}
