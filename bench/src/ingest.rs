//! Phase 4, the ingest: `tributary fetch` into a fresh SQLite store, the
//! store's share of it alone, the all-304 cycle, and a steady-state cycle
//! of new entries into the filled store.

use anyhow::{bail, Context};
use bytes::Bytes;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

use crate::procs::{fetch_cycle, Cycle};
use crate::report::{row, Row};
use crate::{synth, Run};

/// The cycles of this phase, with their rows pushed. Returns the first
/// cycle, whose store (`tributary.db`, `tributary.toml`) the serving phase
/// measures.
pub async fn measure(
    run: &Run,
    floor: Duration,
    feedparser: Result<f64, String>,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Cycle> {
    let cycles = cycles(run).await?;
    push_rows(run, floor, feedparser, &cycles, rows);
    Ok(cycles.first)
}

/// The measurements of this phase.
struct Cycles {
    /// Every source into a fresh SQLite store.
    first: Cycle,
    /// The store's share of `first`, alone.
    store_only: Duration,
    /// The same again, every answer a 304.
    second: Cycle,
    /// New entries into a copy of `first`'s store.
    steady: Cycle,
    /// `first` again with `[entities]` on, into another fresh store.
    with_entities: Cycle,
}

async fn cycles(run: &Run) -> anyhow::Result<Cycles> {
    let (dir, sources) = (&run.dir, run.args.sources);
    let config = run.config_path();
    let database = format!("sqlite://{}", dir.join("tributary.db").display());
    std::fs::write(&config, config_toml(&database, run.feed_server, sources))?;
    let first = fetch_cycle(&config).await?;
    eprintln!("fetch cycle: {first:?}");
    if first.entries != run.total_entries() || first.failed > 0 {
        bail!("the fetch cycle did not ingest the corpus: {first:?}");
    }
    // The store's part of that cycle, alone, into another fresh file.
    let store_only_config = dir.join("store-alone.toml");
    let store_only_database = format!("sqlite://{}", dir.join("store-alone.db").display());
    std::fs::write(
        &store_only_config,
        config_toml(&store_only_database, run.feed_server, sources),
    )?;
    let store_only = store_alone(&run.feeds, &store_only_config).await?;
    eprintln!("store alone {store_only:.2?}");
    let second = fetch_cycle(&config).await?;
    eprintln!("all-304 cycle: {second:?}");
    // Entity tags' price: the same cycle with `[entities]` on.
    let entities_config = dir.join("entities.toml");
    let entities_database = format!("sqlite://{}", dir.join("entities.db").display());
    let with_entities_toml = format!(
        "{}\n[entities]\nenabled = true\n",
        config_toml(&entities_database, run.feed_server, sources)
    );
    std::fs::write(&entities_config, with_entities_toml)?;
    let with_entities = fetch_cycle(&entities_config).await?;
    eprintln!("fetch cycle with entity tags: {with_entities:?}");
    if with_entities.entries != run.total_entries() || with_entities.failed > 0 {
        bail!("the entity-tag cycle did not ingest the corpus: {with_entities:?}");
    }
    let steady = steady_state(run).await?;
    Ok(Cycles {
        first,
        store_only,
        second,
        steady,
        with_entities,
    })
}

/// Steady state: every source then carries as many new entries, dated the
/// last hour, into the store the first cycle filled. New entries land at
/// the newest end of each tag's range, where the cold start's backlog
/// landed all over it.
async fn steady_state(run: &Run) -> anyhow::Result<Cycle> {
    let (dir, sources, entries) = (&run.dir, run.args.sources, run.args.entries);
    let now = chrono::Utc::now().timestamp();
    let news: Vec<Bytes> = (0..sources)
        .map(|i| {
            let newest = now - (i as i64 % 600);
            Bytes::from(synth::rss_feed_of(
                &crate::outlet(i),
                i,
                entries,
                1,
                newest,
                60,
            ))
        })
        .collect();
    run.corpus.replace(Arc::new(news));
    // Into a copy: the serving phase measures the first cycle's store.
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
        config_toml(&steady_database, run.feed_server, sources),
    )?;
    let steady = fetch_cycle(&steady_config).await?;
    eprintln!("steady-state cycle: {steady:?}");
    if steady.inserted != run.total_entries() || steady.failed > 0 {
        bail!("the steady-state cycle did not ingest the new entries: {steady:?}");
    }
    // The serving and PostgreSQL phases use the first corpus.
    run.corpus.replace(run.feeds.clone());
    Ok(steady)
}

fn push_rows(
    run: &Run,
    floor: Duration,
    feedparser: Result<f64, String>,
    cycles: &Cycles,
    rows: &mut Vec<Row>,
) {
    let Cycles {
        first,
        store_only,
        second,
        steady,
        with_entities,
    } = cycles;
    let store_only = *store_only;
    let (sources, entries) = (run.args.sources, run.args.entries);
    // An ingest cycle as the tributary column shows it.
    let cycle_cell = |cycle: &Cycle| {
        format!(
            "{:.2} s, {:.0} entries/s (CPU {:.2} s)",
            cycle.wall.as_secs_f64(),
            run.rate(cycle.wall),
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
    rows.push(floor_row(
        &format!("`tributary fetch` {sources} x {entries} into fresh SQLite (wall)"),
        cycle_cell(first),
        first.wall,
        "<= 4x",
    ));
    rows.push(floor_row(
        "of which the store alone: the same articles parsed beforehand, then stored (fresh SQLite, same refreshes in flight)",
        format!(
            "{:.2} s, {:.0} entries/s",
            store_only.as_secs_f64(),
            run.rate(store_only)
        ),
        store_only,
        "",
    ));
    rows.push(row(
        "the same with `[entities] enabled = true` (fresh SQLite, wall)",
        cycle_cell(with_entities),
        format!(
            "without: {:.2} s (CPU {:.2} s)",
            first.wall.as_secs_f64(),
            first.cpu.as_secs_f64()
        ),
        format!(
            "{:.2}x time, {:.2}x CPU",
            with_entities.wall.as_secs_f64() / first.wall.as_secs_f64(),
            with_entities.cpu.as_secs_f64() / first.cpu.as_secs_f64()
        ),
        "<= 1.3x",
    ));
    rows.push(floor_row(
        &format!(
            "steady state: {entries} new entries per source, dated the last hour, into a copy of that store (wall)"
        ),
        cycle_cell(steady),
        steady.wall,
        "",
    ));
    match feedparser {
        // 20x feedparser's rate, as a multiple of the floor's time: what
        // that target asks of the whole ingest in this run's terms.
        Ok(fp) => rows.push(row(
            "ingest rate vs Python feedparser parse rate (all cores)",
            format!("{:.0} entries/s", run.rate(first.wall)),
            format!(
                "{fp:.0} entries/s (20x of it: ingest within {:.2}x the floor's time)",
                run.rate(floor) / (20.0 * fp)
            ),
            format!("{:.1}x", run.rate(first.wall) / fp),
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
        first.peak.to_string(),
        String::new(),
        peak_target(sources),
    ));
    rows.push(row(
        &format!("all-304 refetch of {sources} sources (wall)"),
        format!(
            "{:.2} s, {:.0} sources/s (CPU {:.2} s)",
            second.wall.as_secs_f64(),
            sources as f64 / second.wall.as_secs_f64(),
            second.cpu.as_secs_f64()
        ),
        "Miniflux: 88 feeds/s".into(),
        String::new(),
        "< 2 s",
    ));
}

/// Issue #24's bounds on a SQLite ingest's peak RSS: 60 MB for 200 x 50,
/// 100 MB for 1,000 x 50.
fn peak_target(sources: usize) -> &'static str {
    if sources <= 200 {
        "<= 60 MB"
    } else {
        "<= 100 MB"
    }
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
    let started = Instant::now();
    let mut storing = ConcurrentIngest::begin(&store, &config, record).await?;
    for (source_id, articles) in refreshes {
        storing.push(source_id, articles).await?;
    }
    storing.finish().await?;
    let elapsed = started.elapsed();
    store.close().await;
    Ok(elapsed)
}

/// The config `tributary fetch` and `tributary run` read: every synthetic
/// source, the tag rules, and the feed the serving measurement asks for.
pub fn config_toml(database: &str, feed_server: SocketAddr, sources: usize) -> String {
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

/// Refreshes stored as `run_once` stores them into an empty store: as many
/// in flight as it lets through (`ingest_owned`), the tag index built at
/// the end (store/bulk_load.rs).
pub struct ConcurrentIngest {
    store: tributary::store::Store,
    record: tributary::store::FetchRecord,
    in_flight: Arc<tokio::sync::Semaphore>,
    bulk_load: Option<tributary::store::BulkLoad>,
    storing: tokio::task::JoinSet<anyhow::Result<()>>,
}

impl ConcurrentIngest {
    pub async fn begin(
        store: &tributary::store::Store,
        config: &tributary::config::Config,
        record: tributary::store::FetchRecord,
    ) -> anyhow::Result<ConcurrentIngest> {
        Ok(ConcurrentIngest {
            store: store.clone(),
            record,
            in_flight: Arc::new(tokio::sync::Semaphore::new(
                tributary::scheduler::in_progress_bound(config.daemon.concurrency),
            )),
            bulk_load: store.begin_bulk_load().await?,
            storing: tokio::task::JoinSet::new(),
        })
    }

    /// Starts storing one refresh's articles once a slot is free.
    pub async fn push(
        &mut self,
        source_id: i64,
        articles: Vec<tributary::model::NewArticle>,
    ) -> anyhow::Result<()> {
        let permit = self.in_flight.clone().acquire_owned().await?;
        let (store, record) = (self.store.clone(), self.record.clone());
        self.storing.spawn(async move {
            store.ingest_owned(source_id, articles, &record).await?;
            drop(permit);
            Ok(())
        });
        Ok(())
    }

    /// Waits for every refresh, then builds the tag index.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        while let Some(stored) = self.storing.join_next().await {
            stored??;
        }
        if let Some(bulk_load) = self.bulk_load {
            bulk_load.finish().await?;
        }
        Ok(())
    }
}
