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
//! load generator from outside.

mod load;
mod roles;
mod synth;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

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

/// One row of the final table.
struct Row {
    what: String,
    tributary: String,
    baseline: String,
    ratio: String,
    target: String,
}

fn row(what: &str, tributary: String, baseline: String, ratio: String, target: &str) -> Row {
    Row {
        what: what.into(),
        tributary,
        baseline,
        ratio,
        target: target.into(),
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = std::env::temp_dir().join(format!("tributary-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    eprintln!("work directory: {}", dir.display());
    let mut rows = Vec::new();
    let total_entries = args.sources * args.entries;

    // 1. The corpus, served from memory.
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
        corpus_bytes / total_entries.max(1),
        started.elapsed()
    );
    let feeds = Arc::new(feeds);
    let (feed_server, corpus) = roles::serve_corpus(feeds.clone()).await?;

    // 2. The parse floor: feed-rs alone on all cores; then tributary's
    // parse (normalize, sanitize) and parse + tag + dedup, same way. Each
    // the best of three: one pass takes well under a second, where a noisy
    // host's hiccup moved the floor (and every ratio over it) by half.
    let best_of_3 = |stage: Stage| {
        (0..3)
            .map(|_| parse_all(&feeds, cores, stage))
            .min()
            .expect("three runs")
    };
    let floor = best_of_3(Stage::FeedRs);
    let normalize = best_of_3(Stage::Parse);
    let prepare = best_of_3(Stage::Prepare);
    let rate = |d: Duration| total_entries as f64 / d.as_secs_f64();
    // An ingest cycle as the tributary column shows it.
    let cycle_cell = |cycle: &Cycle| {
        format!(
            "{:.2} s, {:.0} entries/s (CPU {:.2} s)",
            cycle.wall.as_secs_f64(),
            rate(cycle.wall),
            cycle.cpu.as_secs_f64()
        )
    };
    // A row of a wall time `d`, against the floor's.
    let floor_row = |what: &str, tributary: String, d: Duration, target: &str| {
        row(
            what,
            tributary,
            format!("parse floor {:.2} s", floor.as_secs_f64()),
            format!("{:.2}x time", d.as_secs_f64() / floor.as_secs_f64()),
            target,
        )
    };
    eprintln!(
        "parse floor {floor:.2?}, tributary parse {normalize:.2?}, parse+tag+dedup {prepare:.2?}"
    );

    // 3. Python feedparser on the first files of the same corpus.
    let feedparser = feedparser_rate(&dir, &feeds, args.feedparser_sources, cores).await;

    // 4. `tributary fetch` into a fresh SQLite store, then the all-304 cycle.
    let config = dir.join("tributary.toml");
    let database = format!("sqlite://{}", dir.join("tributary.db").display());
    std::fs::write(&config, config_toml(&database, feed_server, args.sources))?;
    let first = fetch_cycle(&config).await?;
    eprintln!("fetch cycle: {first:?}");
    if first.entries != total_entries || first.failed > 0 {
        bail!("the fetch cycle did not ingest the corpus: {first:?}");
    }
    // The store's part of that cycle, alone, into another fresh file.
    let store_only_config = dir.join("store-alone.toml");
    let store_only_database = format!("sqlite://{}", dir.join("store-alone.db").display());
    std::fs::write(
        &store_only_config,
        config_toml(&store_only_database, feed_server, args.sources),
    )?;
    let store_only = store_alone(&feeds, &store_only_config).await?;
    eprintln!("store alone {store_only:.2?}");
    let second = fetch_cycle(&config).await?;
    eprintln!("all-304 cycle: {second:?}");
    // Steady state: every source then carries as many new entries, dated
    // the last hour, into the store the first cycle filled. New entries
    // land at the newest end of each tag's range, where the cold start's
    // backlog landed all over it.
    let now = chrono::Utc::now().timestamp();
    let news: Vec<Bytes> = (0..args.sources)
        .map(|i| {
            let newest = now - (i as i64 % 600);
            Bytes::from(synth::rss_feed_of(
                &outlet(i),
                i,
                args.entries,
                1,
                newest,
                60,
            ))
        })
        .collect();
    corpus.replace(Arc::new(news));
    // Into a copy: the serving steps below measure the first cycle's store.
    let steady_config = dir.join("steady.toml");
    for suffix in ["", "-wal"] {
        let from = dir.join(format!("tributary.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.join(format!("steady.db{suffix}")))?;
        }
    }
    let steady_database = format!("sqlite://{}", dir.join("steady.db").display());
    std::fs::write(
        &steady_config,
        config_toml(&steady_database, feed_server, args.sources),
    )?;
    let steady = fetch_cycle(&steady_config).await?;
    eprintln!("steady-state cycle: {steady:?}");
    if steady.inserted != total_entries || steady.failed > 0 {
        bail!("the steady-state cycle did not ingest the new entries: {steady:?}");
    }
    // The serving and PostgreSQL steps below use the first corpus.
    corpus.replace(feeds.clone());

    rows.push(row(
        "parse floor: feed-rs alone, all cores",
        String::new(),
        format!(
            "{:.0} entries/s ({:.2} s)",
            rate(floor),
            floor.as_secs_f64()
        ),
        String::new(),
        "",
    ));
    rows.push(row(
        "tributary parse (normalize, sanitize), all cores",
        format!("{:.0} entries/s", rate(normalize)),
        "parse floor".into(),
        format!("{:.2}x time", normalize.as_secs_f64() / floor.as_secs_f64()),
        "",
    ));
    rows.push(row(
        "tributary parse + tag + dedup, all cores",
        format!("{:.0} entries/s", rate(prepare)),
        "parse floor".into(),
        format!("{:.2}x time", prepare.as_secs_f64() / floor.as_secs_f64()),
        "",
    ));
    rows.push(floor_row(
        &format!(
            "`tributary fetch` {} x {} into fresh SQLite (wall)",
            args.sources, args.entries
        ),
        cycle_cell(&first),
        first.wall,
        "<= 4x",
    ));
    rows.push(floor_row(
        "of which the store alone: the same articles parsed beforehand, then stored (fresh SQLite, same refreshes in flight)",
        format!(
            "{:.2} s, {:.0} entries/s",
            store_only.as_secs_f64(),
            rate(store_only)
        ),
        store_only,
        "",
    ));
    rows.push(floor_row(
        &format!(
            "steady state: {} new entries per source, dated the last hour, into a copy of that store (wall)",
            args.entries
        ),
        cycle_cell(&steady),
        steady.wall,
        "",
    ));
    match feedparser {
        // 20x feedparser's rate, as a multiple of the floor's time: what
        // that target asks of the whole ingest in this run's terms.
        Ok(fp) => rows.push(row(
            "ingest rate vs Python feedparser parse rate (all cores)",
            format!("{:.0} entries/s", rate(first.wall)),
            format!(
                "{fp:.0} entries/s (20x of it: ingest within {:.2}x the floor's time)",
                rate(floor) / (20.0 * fp)
            ),
            format!("{:.1}x", rate(first.wall) / fp),
            ">= 20x",
        )),
        Err(note) => rows.push(row(
            "Python feedparser",
            String::new(),
            format!("skipped: {note}"),
            String::new(),
            ">= 20x",
        )),
    }
    rows.push(row(
        "peak RSS of the fetch cycle (VmHWM)",
        format!("{:.0} MB", first.hwm_kb as f64 / 1024.0),
        String::new(),
        String::new(),
        "<= 150 MB",
    ));
    rows.push(row(
        &format!("all-304 refetch of {} sources (wall)", args.sources),
        format!(
            "{:.2} s, {:.0} sources/s (CPU {:.2} s)",
            second.wall.as_secs_f64(),
            args.sources as f64 / second.wall.as_secs_f64(),
            second.cpu.as_secs_f64()
        ),
        "Miniflux: 88 feeds/s".into(),
        String::new(),
        "< 2 s",
    ));

    // 5. Serving: the daemon against a static server of the same bytes.
    let mut app = Daemon::start("__serve", &config, None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_kb = proc_status_kb(app.pid, "VmRSS").unwrap_or(0);
    let feed_path = "/feeds/bench.atom";
    let (body, etag) = load::get_once(app.addr, feed_path).await?;
    eprintln!("{feed_path}: {} bytes, ETag {etag}", body.len());
    let body_file = dir.join("bench.atom");
    std::fs::write(&body_file, &body)?;
    let mut ceiling = Daemon::start("__static", &body_file, Some(&etag)).await?;
    let duration = Duration::from_secs_f64(args.duration);
    let c = args.connections;
    let fixed = |etag: Option<&str>| load::Workload::Fixed {
        path: feed_path.to_string(),
        if_none_match: etag.map(String::from),
    };
    let static_200 = load::run(ceiling.addr, c, duration, fixed(None)).await?;
    let app_200 = load::run(app.addr, c, duration, fixed(None)).await?;
    let static_304 = load::run(ceiling.addr, c, duration, fixed(Some(&etag))).await?;
    let app_304 = load::run(app.addr, c, duration, fixed(Some(&etag))).await?;
    let filtered = load::run(
        app.addr,
        c,
        duration,
        load::Workload::Filtered {
            vocabulary: synth::TAG_VOCABULARY,
        },
    )
    .await?;
    let served_hwm_kb = proc_status_kb(app.pid, "VmHWM").unwrap_or(0);
    for (name, r) in [
        ("static 200", &static_200),
        ("app 200", &app_200),
        ("static 304", &static_304),
        ("app 304", &app_304),
        ("filtered", &filtered),
    ] {
        eprintln!("{name}: {}", r.summary());
    }
    rows.push(row(
        &format!(
            "cached 50-entry feed ({} KB), {c} connections",
            body.len() / 1024
        ),
        format!("{:.0} req/s, p99 {}", app_200.rate(), ms(app_200.p(0.99))),
        format!(
            "static {:.0} req/s, p99 {}",
            static_200.rate(),
            ms(static_200.p(0.99))
        ),
        format!("{:.2}x", app_200.rate() / static_200.rate()),
        ">= 0.5x",
    ));
    rows.push(row(
        "its 304 (If-None-Match)",
        format!("{:.0} req/s, p99 {}", app_304.rate(), ms(app_304.p(0.99))),
        format!(
            "static {:.0} req/s, p99 {}",
            static_304.rate(),
            ms(static_304.p(0.99))
        ),
        format!("{:.2}x", app_304.rate() / static_304.rate()),
        ">= 0.7x",
    ));
    rows.push(row(
        &format!(
            "uncached filtered page (`any`/`none`, random tags) over {} articles, {c} connections",
            first.inserted
        ),
        format!(
            "{:.0} req/s, p50 {}, p99 {}",
            filtered.rate(),
            ms(filtered.p(0.5)),
            ms(filtered.p(0.99))
        ),
        String::new(),
        String::new(),
        "p99 <= 20 ms",
    ));
    rows.push(row(
        "RSS of the daemon: idle after start / peak under load",
        format!(
            "{:.0} MB / {:.0} MB",
            idle_kb as f64 / 1024.0,
            served_hwm_kb as f64 / 1024.0
        ),
        String::new(),
        String::new(),
        "idle <= 40 MB",
    ));
    app.stop().await;
    ceiling.stop().await;

    // 6. Scale-out: the daemon on PostgreSQL, one instance then two.
    if !args.postgres.is_empty() {
        match postgres_scale(
            &args.postgres,
            &dir,
            feed_server,
            args.sources,
            total_entries,
        )
        .await
        {
            Ok((one, two)) => {
                rows.push(row(
                    "PostgreSQL, 1 daemon: first fetch of every source (wall)",
                    format!("{:.2} s, {:.0} entries/s", one, total_entries as f64 / one),
                    "Miniflux: ~285 entries/s".into(),
                    String::new(),
                    "",
                ));
                rows.push(row(
                    "PostgreSQL, 2 daemons on one database (wall)",
                    format!("{:.2} s, {:.0} entries/s", two, total_entries as f64 / two),
                    "1 daemon".into(),
                    format!("{:.2}x throughput", one / two),
                    "",
                ));
            }
            Err(e) => rows.push(row(
                "PostgreSQL scale-out",
                String::new(),
                format!("skipped: {e:#}"),
                String::new(),
                "",
            )),
        }
    }

    println!("{}", table(&args, cores, corpus_bytes, &rows));
    if args.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// The site an article of source `i` links to: one host per outlet, as in
/// the wild (the canonical-URL step sees distinct hosts).
fn outlet(i: usize) -> String {
    format!("https://www.outlet{i}.example")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn table(args: &Args, cores: usize, corpus_bytes: usize, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} sources x {} entries ({:.1} MB), {} cores, {} connections, {} s per load run\n",
        args.sources,
        args.entries,
        corpus_bytes as f64 / 1e6,
        cores,
        args.connections,
        args.duration
    );
    let _ = writeln!(
        out,
        "| measurement | tributary | baseline (same run) | ratio | target |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.what, r.tributary, r.baseline, r.ratio, r.target
        );
    }
    out
}

#[derive(Clone, Copy)]
enum Stage {
    FeedRs,
    Parse,
    Prepare,
}

/// Wall time of one stage over the whole corpus on `threads` threads,
/// sources dealt round-robin.
fn parse_all(feeds: &[Bytes], threads: usize, stage: Stage) -> Duration {
    let rules = tributary::tag::TagRules::new(&synth_rules());
    let now = chrono::Utc::now();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let rules = &rules;
            scope.spawn(move || {
                for (i, bytes) in feeds.iter().enumerate().skip(t).step_by(threads) {
                    let url = Url::parse(&format!("http://127.0.0.1{}", synth::feed_path(i)))
                        .expect("valid URL");
                    match stage {
                        Stage::FeedRs => {
                            let feed = feed_rs::parser::parse(&bytes[..]).expect("parses");
                            std::hint::black_box(feed);
                        }
                        Stage::Parse => {
                            let feed = tributary::parse::parse_feed(bytes, None, &url, now)
                                .expect("parses");
                            std::hint::black_box(feed);
                        }
                        Stage::Prepare => {
                            let feed = tributary::parse::parse_feed(bytes, None, &url, now)
                                .expect("parses");
                            let name = synth::source_name(i);
                            let tags = ["bench".to_string()];
                            let articles: Vec<_> = feed
                                .entries
                                .into_iter()
                                .map(|e| {
                                    let t = tributary::tag::tags_for(&e, &tags, rules);
                                    tributary::dedup::prepare(&name, e, t)
                                })
                                .collect();
                            std::hint::black_box(articles);
                        }
                    }
                }
            });
        }
    });
    started.elapsed()
}

/// The store's share of the fetch cycle: every source's feed parsed, tagged
/// and keyed beforehand (as the pipeline does, not timed), then stored into
/// a fresh SQLite file the way the pipeline stores it (`ingest_owned`, as
/// many refreshes in flight as `run_once` lets through, the tag index
/// built at the end as `run_once` does), nothing else running. Wall time of
/// the storing.
async fn store_alone(feeds: &[Bytes], config_path: &Path) -> anyhow::Result<Duration> {
    let config = tributary::config::Config::load(config_path)?;
    let store = tributary::app::open_store(&config).await?;
    let pipeline = tributary::pipeline::Pipeline::new(&config, store.clone())?;
    let now = chrono::Utc::now();
    let mut refreshes = Vec::with_capacity(feeds.len());
    for (i, bytes) in feeds.iter().enumerate() {
        let name = synth::source_name(i);
        let source = config
            .sources
            .iter()
            .find(|s| s.name == name)
            .context("a configured synthetic source")?;
        let url = Url::parse(&format!("http://127.0.0.1{}", synth::feed_path(i)))?;
        let feed = tributary::parse::parse_feed(bytes, None, &url, now)?;
        let articles = pipeline.prepare(source, feed.entries);
        refreshes.push((store.source_id(&name).await?, articles));
    }
    let record = tributary::store::FetchRecord {
        at: now,
        status: Some(200),
        next_fetch_at: now + chrono::TimeDelta::hours(1),
        ..Default::default()
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        tributary::scheduler::in_progress_bound(config.daemon.concurrency),
    ));
    let started = Instant::now();
    // As `run_once` does into an empty store (store/bulk_load.rs).
    let bulk_load = store.begin_bulk_load().await?;
    let mut storing = tokio::task::JoinSet::new();
    for (source_id, articles) in refreshes {
        let permit = in_flight.clone().acquire_owned().await?;
        let (store, record) = (store.clone(), record.clone());
        storing.spawn(async move {
            let stored = store.ingest_owned(source_id, articles, &record).await;
            drop(permit);
            stored
        });
    }
    while let Some(stored) = storing.join_next().await {
        stored??;
    }
    if let Some(bulk_load) = bulk_load {
        bulk_load.finish().await?;
    }
    let elapsed = started.elapsed();
    store.close().await;
    Ok(elapsed)
}

fn synth_rules() -> Vec<tributary::config::TagRuleConfig> {
    let toml = format!(
        "[daemon]\ndatabase = \"sqlite://unused.db\"\n{}",
        synth::TAG_RULES_TOML
    );
    tributary::config::Config::from_toml(&toml, Path::new("rules.toml"))
        .expect("the synthetic rules are valid")
        .tag_rules
}

/// The config `tributary fetch` and `tributary run` read: every synthetic
/// source, the tag rules, and the feed the serving measurement asks for.
fn config_toml(database: &str, feed_server: SocketAddr, sources: usize) -> String {
    let mut out = format!(
        "[daemon]\ndatabase = \"{database}\"\nlisten = \"127.0.0.1:0\"\n\
         base_url = \"http://127.0.0.1:8080\"\n\
         # Never due during the run: cycles are started by the harness.\n\
         schedule = \"0 0 1 1 *\"\n\
         concurrency = 16\n\
         # All synthetic sources live on one host; real ones are spread out.\n\
         per_host = 16\n\
         log_level = \"warn\"\n\
         {}\n\
         [[feed]]\nname = \"bench\"\ntitle = \"Benchmark\"\nany = [\"{}\", \"{}\"]\nnone = [\"{}\"]\nlimit = 50\n",
        synth::TAG_RULES_TOML,
        synth::tag_term(0),
        synth::tag_term(1),
        synth::tag_term(2),
    );
    for i in 0..sources {
        let _ = write!(
            out,
            "\n[[source]]\nname = \"{}\"\nurl = \"http://{feed_server}{}\"\ntags = [\"bench\"]\n",
            synth::source_name(i),
            synth::feed_path(i)
        );
    }
    out
}

/// What one `__fetch` child reported.
#[derive(Debug, Default)]
struct Cycle {
    /// Wall time as the parent saw it: process start to exit.
    wall: Duration,
    entries: usize,
    inserted: usize,
    not_modified: usize,
    failed: usize,
    hwm_kb: u64,
    /// User + system CPU time of the child.
    cpu: Duration,
}

async fn fetch_cycle(config: &Path) -> anyhow::Result<Cycle> {
    let started = Instant::now();
    let output = Command::new(std::env::current_exe()?)
        .args(["--role", "__fetch", "--config"])
        .arg(config)
        .stderr(Stdio::inherit())
        .output()
        .await?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("fetch child failed: {}\n{stdout}", output.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("no RESULT from the fetch child")?;
    let mut cycle = Cycle {
        wall,
        ..Cycle::default()
    };
    for pair in line.split_whitespace() {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "0"));
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "entries" => cycle.entries = v as usize,
            "inserted" => cycle.inserted = v as usize,
            "not_modified" => cycle.not_modified = v as usize,
            "failed" => cycle.failed = v as usize,
            "hwm_kb" => cycle.hwm_kb = v,
            "cpu_ms" => cycle.cpu = Duration::from_millis(v),
            _ => {}
        }
    }
    Ok(cycle)
}

/// A child process serving HTTP until its stdin closes.
struct Daemon {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl Daemon {
    async fn start(role: &str, file: &Path, etag: Option<&str>) -> anyhow::Result<Daemon> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--role", role]);
        if role == "__static" {
            command.arg("--body").arg(file);
        } else {
            command.arg("--config").arg(file);
        }
        if let Some(etag) = etag {
            command.args(["--etag", etag]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            // sqlx's slow-statement warnings would drown the report.
            command.env("RUST_LOG", "warn,sqlx=error");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("child pid")?;
        let mut lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        let port: u16 = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .context("child did not start in time")??
                .context("child exited before listening")?;
            if let Some(port) = line.strip_prefix("PORT ") {
                break port.trim().parse()?;
            }
        };
        Ok(Daemon {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// Closes stdin (the child's signal to stop cleanly) and waits.
    async fn stop(&mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
    }
}

/// User + system CPU time of a process so far, from `/proc/PID/stat`.
pub fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

/// A `/proc/PID/status` field in kB (`VmRSS`, `VmHWM`).
pub fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

const FEEDPARSER_SCRIPT: &str = r#"
import glob, multiprocessing, sys, time
import feedparser

def parse(path):
    with open(path, "rb") as f:
        return len(feedparser.parse(f.read()).entries)

if __name__ == "__main__":
    files = sorted(glob.glob(sys.argv[1] + "/*.xml"))
    started = time.perf_counter()
    with multiprocessing.Pool(int(sys.argv[2])) as pool:
        entries = sum(pool.map(parse, files, chunksize=1))
    print(entries, time.perf_counter() - started)
"#;

/// Entries/s of Python feedparser over the first `n` feeds on all cores,
/// or why it was skipped.
async fn feedparser_rate(
    dir: &Path,
    feeds: &[Bytes],
    n: usize,
    cores: usize,
) -> Result<f64, String> {
    if n == 0 {
        return Err("disabled (--feedparser-sources 0)".into());
    }
    let probe = Command::new("python3")
        .args(["-c", "import feedparser"])
        .output()
        .await;
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err("python3 with feedparser not found (pip install feedparser)".into());
    }
    let files = dir.join("feedparser");
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    for (i, bytes) in feeds.iter().take(n).enumerate() {
        std::fs::write(files.join(format!("s{i:05}.xml")), bytes).map_err(|e| e.to_string())?;
    }
    let script = dir.join("feedparser_bench.py");
    std::fs::write(&script, FEEDPARSER_SCRIPT).map_err(|e| e.to_string())?;
    let output = Command::new("python3")
        .arg(&script)
        .arg(&files)
        .arg(cores.to_string())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut parts = stdout.split_whitespace();
    let (Some(entries), Some(secs)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "feedparser run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    let entries: f64 = entries.parse().map_err(|_| "bad output".to_string())?;
    let secs: f64 = secs.parse().map_err(|_| "bad output".to_string())?;
    eprintln!("feedparser: {entries} entries in {secs:.2} s on {cores} processes");
    Ok(entries / secs)
}

/// First fetch of every source by the daemon's scheduler on PostgreSQL,
/// with one instance and then two on one database: wall seconds each.
async fn postgres_scale(
    server: &str,
    dir: &Path,
    feed_server: SocketAddr,
    sources: usize,
    total_entries: usize,
) -> anyhow::Result<(f64, f64)> {
    let database = format!("{}/tributary_bench", server.trim_end_matches('/'));
    let config = dir.join("postgres.toml");
    std::fs::write(&config, config_toml(&database, feed_server, sources))?;
    let mut seconds = Vec::new();
    for instances in [1, 2] {
        roles::recreate_database(server, "tributary_bench").await?;
        // The schema and sources exist before the clock starts.
        tributary::app::open_store(&tributary::config::Config::load(&config)?)
            .await?
            .close()
            .await;
        let store = tributary::store::Store::connect(&database, &Default::default()).await?;
        let watch = sqlx::PgPool::connect(&database).await?;
        let started = Instant::now();
        let mut daemons = Vec::new();
        for _ in 0..instances {
            daemons.push(Daemon::start("__daemon", &config, None).await?);
        }
        // A refresh records its fetch in the transaction that stores its
        // articles: done when every source has one. (Counting the articles
        // this often was a tenth of the server's work.)
        loop {
            let waiting: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM sources WHERE last_fetch_at IS NULL")
                    .fetch_one(&watch)
                    .await?;
            if waiting == 0 {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("PostgreSQL run stuck with {waiting} sources not fetched");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seconds.push(started.elapsed().as_secs_f64());
        for mut d in daemons {
            d.stop().await;
        }
        let count = store.article_count().await? as usize;
        if count != total_entries {
            bail!("PostgreSQL run stored {count} of {total_entries} articles");
        }
        watch.close().await;
        store.close().await;
        eprintln!(
            "PostgreSQL, {instances} instance(s): {:.2} s",
            seconds.last().unwrap()
        );
    }
    Ok((seconds[0], seconds[1]))
}
