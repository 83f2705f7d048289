//! Phase 8, serving from PostgreSQL: the same articles in a PostgreSQL
//! database and a SQLite file, at 10,000 and then 100,000 articles, each
//! served by a daemon (`tributary run`'s code, as the serving phase) under
//! the same load of uncached filtered views; SQLite is the baseline.
//!
//! The stores are filled through `Store::ingest_owned` from feeds parsed
//! and prepared in this process (as the ingest phase's "store alone"), not
//! fetched: the phase measures reads, and a fetch of 100,000 entries would
//! cost minutes. Every request is a view of its own (random tags, sources,
//! cursors), so the daemon's page cache (256 views) rarely answers.

use anyhow::{bail, Context};
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

use crate::ingest::{config_toml, ConcurrentIngest};
use crate::load::{self, LoadResult, Workload};
use crate::procs::Daemon;
use crate::report::{ms, row, Row};
use crate::synth::{self, Rng};
use crate::{roles, Run};

/// Store sizes measured, in articles (`--quick`: a tenth).
const SIZES: [usize; 2] = [10_000, 100_000];
/// Distinct request paths drawn per kind of view.
const PATHS_PER_KIND: usize = 20_000;
const DATABASE: &str = "tributary_serving";

/// The kinds of filtered view measured, by what their query has to do.
#[derive(Clone, Copy)]
enum Kind {
    /// `any=a,b&none=c`: two tag ranges, an anti-join probe.
    Any,
    /// `all=a,b`: one tag range, a semi-join probe for the other.
    All,
    /// `none=a,b`: the newest articles, two anti-join probes.
    None,
    /// `source=x,y`: two sources' articles.
    Source,
    /// Any of the above from a random `before=` cursor (any depth).
    Before,
}

const KINDS: [Kind; 5] = [Kind::Any, Kind::All, Kind::None, Kind::Source, Kind::Before];

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Any => "`any=a,b&none=c`",
            Kind::All => "`all=a,b`",
            Kind::None => "`none=a,b`",
            Kind::Source => "`source=x,y`",
            Kind::Before => "one of those `&before=` a random cursor",
        }
    }
}

pub async fn measure(run: &Run, server: &str, rows: &mut Vec<Row>) {
    if let Err(e) = serve_both(run, server, rows).await {
        rows.push(row(
            "PostgreSQL serving",
            String::new(),
            format!("skipped: {e:#}"),
            String::new(),
            "",
        ));
    }
}

async fn serve_both(run: &Run, server: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let sizes = match run.args.quick {
        true => SIZES.map(|n| n / 10),
        false => SIZES,
    };
    let entries = run.args.entries.max(1);
    roles::recreate_database(server, DATABASE).await?;
    let database = format!("{}/{DATABASE}", server.trim_end_matches('/'));
    let sqlite_path = run.dir.join("pgserving.db");
    let _ = std::fs::remove_file(&sqlite_path);
    let backends = [
        ("SQLite", format!("sqlite://{}", sqlite_path.display())),
        ("PostgreSQL", database.clone()),
    ]
    .map(|(name, url)| (name, url, run.dir.join(format!("pgserving-{name}.toml"))));
    let mut filled = 0;
    for size in sizes {
        let sources = size / entries;
        for (name, url, config) in &backends {
            // Only the stored sources: the daemon would fetch the others.
            std::fs::write(config, config_toml(url, run.feed_server, sources))?;
            let stored = fill(config, filled..sources, entries).await?;
            eprintln!("pgserving: {name} holds {stored} articles");
            if stored as usize != sources * entries {
                bail!("{name} holds {stored} articles, not {}", sources * entries);
            }
        }
        filled = sources;
        let span = published_span(&database).await?;
        let mut measured = Vec::new();
        for (i, kind) in KINDS.into_iter().enumerate() {
            let paths = Arc::new(views(kind, sources, span, i as u64));
            let mut results = Vec::new();
            for (name, _, config) in &backends {
                let result = serve(run, config, paths.clone()).await?;
                eprintln!(
                    "pgserving {size} articles, {}, {name}: {}",
                    kind.describe(),
                    result.summary()
                );
                if result.errors > 0 {
                    bail!("{name} answered errors: {:?}", result.statuses);
                }
                results.push(result);
            }
            measured.push((kind, results));
        }
        for (kind, results) in &measured {
            let [sqlite, postgres] = &results[..] else {
                unreachable!("two backends")
            };
            rows.push(row(
                &format!(
                    "uncached filtered page from PostgreSQL over {size} articles: {}, {} connections",
                    kind.describe(),
                    run.args.connections
                ),
                cell(postgres),
                format!("SQLite: {}", cell(sqlite)),
                format!(
                    "{:.2}x p99, {:.2}x req/s",
                    postgres.p(0.99).as_secs_f64() / sqlite.p(0.99).as_secs_f64(),
                    postgres.rate() / sqlite.rate()
                ),
                "p99 <= 20 ms and <= 2x SQLite's",
            ));
        }
    }
    if !run.args.keep {
        drop_database(server).await?;
    }
    Ok(())
}

fn cell(r: &LoadResult) -> String {
    format!(
        "{:.0} req/s, p50 {}, p99 {}",
        r.rate(),
        ms(r.p(0.5)),
        ms(r.p(0.99))
    )
}

/// One load run of `paths` against a daemon on `config`.
async fn serve(run: &Run, config: &Path, paths: Arc<Vec<String>>) -> anyhow::Result<LoadResult> {
    let mut daemon = Daemon::start("__serve", config, None).await?;
    let duration = Duration::from_secs_f64(run.args.duration);
    let result = load::run(
        daemon.addr,
        run.args.connections,
        duration,
        Workload::Paths(paths),
    )
    .await;
    daemon.stop().await;
    result
}

/// Stores sources `range` (each `entries` entries of the synthetic corpus)
/// as a refresh stores them; the store's article count after.
async fn fill(config: &Path, range: std::ops::Range<usize>, entries: usize) -> anyhow::Result<i64> {
    let config = tributary::config::Config::load(config)?;
    let store = tributary::app::open_store(&config).await?;
    let pipeline = tributary::pipeline::Pipeline::new(&config, store.clone())?;
    let now = chrono::Utc::now();
    let record = tributary::store::FetchRecord {
        at: now,
        status: Some(200),
        // Not due while measured: the daemon must serve, not fetch.
        next_fetch_at: now + chrono::TimeDelta::days(30),
        ..Default::default()
    };
    let mut storing = ConcurrentIngest::begin(&store, &config, record).await?;
    for i in range {
        let name = synth::source_name(i);
        let source = config
            .sources
            .iter()
            .find(|s| s.name == name)
            .context("a configured synthetic source")?;
        let bytes = Bytes::from(synth::rss_feed(&crate::outlet(i), i, entries));
        let url = Url::parse(&format!("http://127.0.0.1{}", synth::feed_path(i)))?;
        let feed = tributary::parse::parse_feed(&bytes, None, &url, now)?;
        let articles = pipeline.prepare(source, feed.entries);
        let source_id = store.source_id(&name).await?;
        storing.push(source_id, articles).await?;
    }
    storing.finish().await?;
    let count = store.article_count().await?;
    store.close().await;
    Ok(count)
}

/// The oldest and newest `published` (µs) in the store: where cursors go.
async fn published_span(database: &str) -> anyhow::Result<(i64, i64)> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(database).await?;
    let span = sqlx::query_as("SELECT MIN(published), MAX(published) FROM articles")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(span)
}

/// `PATHS_PER_KIND` views of `kind` over the first `sources` sources.
fn views(kind: Kind, sources: usize, span: (i64, i64), seed: u64) -> Vec<String> {
    let mut rng = Rng::new(0x7067_7365_7276_0000 + seed);
    (0..PATHS_PER_KIND)
        .map(|_| view(kind, sources, span, &mut rng))
        .collect()
}

fn view(kind: Kind, sources: usize, span: (i64, i64), rng: &mut Rng) -> String {
    let mut tag = || synth::tag_term(rng.below(synth::TAG_VOCABULARY));
    match kind {
        Kind::Any => format!("/feed.atom?any={},{}&none={}", tag(), tag(), tag()),
        Kind::All => format!("/feed.atom?all={},{}", tag(), tag()),
        Kind::None => format!("/feed.atom?none={},{}", tag(), tag()),
        Kind::Source => format!(
            "/feed.atom?source={},{}",
            synth::source_name(rng.below(sources)),
            synth::source_name(rng.below(sources))
        ),
        Kind::Before => {
            let of = [Kind::Any, Kind::All, Kind::None, Kind::Source][rng.below(4)];
            let base = view(of, sources, span, rng);
            let (oldest, newest) = span;
            let at = oldest + (rng.next_u64() % (newest - oldest).max(1) as u64) as i64;
            let cursor = tributary::model::Cursor {
                published: chrono::DateTime::from_timestamp_micros(at).unwrap_or_default(),
                // Every article published at `at` is on the page: the same
                // page on both backends, whose ids differ.
                id: i64::MAX,
                coverage: None,
            };
            format!(
                "{base}&before={}",
                tributary::publish::encode_cursor(cursor)
            )
        }
    }
}

async fn drop_database(server: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let admin = format!("{}/postgres", server.trim_end_matches('/'));
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
