//! Phase 6, PostgreSQL: `tributary fetch` of every source into a fresh
//! database and its all-304 refetch, with the server's CPU time per entry
//! and per 304; then the daemon's scheduler fetching every source with 1,
//! 2 and 4 instances on one database, each run's per-entry costs (the
//! server's CPU, the daemons' CPU and peak RSS, WAL bytes) beside its
//! throughput: the inputs of docs/SCALING.md's model.

use anyhow::bail;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ingest::config_toml;
use crate::pgcpu::{BackendCpu, ServerCpu, Statements};
use crate::procs::{cpu_ms, fetch_cycle, proc_status_kb, Cycle, Daemon};
use crate::report::{row, Row};
use crate::{model, roles, Run};

/// Statements shown in the per-statement breakdowns (stderr).
const TOP_STATEMENTS: usize = 14;

pub async fn measure(run: &Run, server: &str, rows: &mut Vec<Row>) {
    let database = format!("{}/tributary_bench", server.trim_end_matches('/'));
    let config = run.dir.join("postgres.toml");
    if let Err(e) = std::fs::write(
        &config,
        config_toml(&database, run.feed_server, run.args.sources),
    ) {
        rows.push(skipped("PostgreSQL", &e.into()));
        return;
    }
    let cycles = match fetch_cycles(run, server, &database, &config).await {
        Ok(cycles) => {
            push_fetch_rows(run, &cycles, rows);
            Some(cycles)
        }
        Err(e) => {
            rows.push(skipped("PostgreSQL `tributary fetch`", &e));
            None
        }
    };
    let runs = match scale(run, server, &database, &config).await {
        Ok(runs) => {
            push_scale_rows(run, &runs, rows);
            runs
        }
        Err(e) => {
            rows.push(skipped("PostgreSQL scale-out", &e));
            Vec::new()
        }
    };
    if let Some(costs) = cycles
        .as_ref()
        .and_then(|c| model_costs(run, c, runs.first()?))
    {
        model::rows(&costs, rows);
    }
}

/// The scale-out model's inputs: per entry from one daemon's first fetch of
/// every source, per 304 from the all-304 `tributary fetch` (its child's
/// start and store open included: an overstatement).
fn model_costs(run: &Run, cycles: &FetchCycles, one: &ScaleRun) -> Option<model::Costs> {
    let entries = run.total_entries().max(1) as f64;
    let sources = run.args.sources.max(1) as f64;
    let (refetch, measured) = &cycles.refetch;
    let db_304 = measured
        .server_cpu?
        .saturating_sub(cycles.open.unwrap_or_default());
    Some(model::Costs {
        node_us_per_entry: one.daemon_cpu.as_secs_f64() * 1e6 / entries,
        node_us_per_304: refetch.cpu.as_secs_f64() * 1e6 / sources,
        db_us_per_entry: one.measured.server_cpu?.as_secs_f64() * 1e6 / entries,
        db_us_per_304: db_304.as_secs_f64() * 1e6 / sources,
        wal_bytes_per_entry: one.wal_bytes? as f64 / entries,
        node_peak_mb: one.daemon_hwm_kb as f64 / 1024.0,
    })
}

fn skipped(what: &str, e: &anyhow::Error) -> Row {
    row(
        what,
        String::new(),
        format!("skipped: {e:#}"),
        String::new(),
        "",
    )
}

/// One measured stretch: wall time, and the server's CPU time when its
/// processes can be read here.
struct Measured {
    wall: Duration,
    server_cpu: Option<Duration>,
    /// Of which the backends of the bench's database (a fetch child's).
    backend_cpu: Option<Duration>,
}

impl Measured {
    /// Server CPU µs per `count` things.
    fn per(&self, count: usize) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() * 1e6 / count.max(1) as f64)
    }

    fn cpu_cell(&self, count: usize, unit: &str) -> String {
        match self.per(count) {
            Some(us) => {
                let backends = match self.backend_cpu {
                    Some(cpu) => format!(
                        ", its backends {:.0} µs",
                        cpu.as_secs_f64() * 1e6 / count.max(1) as f64
                    ),
                    None => String::new(),
                };
                format!(
                    "{us:.0} µs of PostgreSQL CPU per {unit}{backends} ({:.2} s)",
                    self.server_cpu.unwrap_or_default().as_secs_f64()
                )
            }
            None => "PostgreSQL CPU: the server's processes are not readable here".into(),
        }
    }
}

struct FetchCycles {
    first: (Cycle, Measured),
    refetch: (Cycle, Measured),
    /// A store open (schema check, source sync) alone: each cycle's child
    /// does one before fetching; subtracted from the 304s' figure.
    open: Option<Duration>,
}

/// `tributary fetch` into a fresh database, then again (every answer a
/// 304), the server's CPU measured around each child.
async fn fetch_cycles(
    run: &Run,
    server: &str,
    database: &str,
    config: &Path,
) -> anyhow::Result<FetchCycles> {
    roles::recreate_database(server, "tributary_bench").await?;
    let cpu = ServerCpu::find(database).await;
    // The schema and sources exist before the first cycle, as for the
    // daemons below; a second open alone measures what each child's open
    // costs the server.
    open_store(config).await?;
    let before = cpu.as_ref().and_then(ServerCpu::total);
    open_store(config).await?;
    let open = cpu
        .as_ref()
        .and_then(ServerCpu::total)
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before));
    let mut statements = Statements::open(database).await;
    let first = measured_fetch(config, cpu.as_ref()).await?;
    eprintln!("PostgreSQL fetch cycle: {:?}", first.0);
    if first.0.entries != run.total_entries() || first.0.failed > 0 {
        bail!(
            "the PostgreSQL fetch cycle did not ingest the corpus: {:?}",
            first.0
        );
    }
    if let Some(statements) = &mut statements {
        let per = ("entry", run.total_entries() as f64);
        eprintln!(
            "\nPostgreSQL statements of the fetch cycle:\n\n{}",
            statements.table(TOP_STATEMENTS, Some(per)).await
        );
        statements.reset().await;
    }
    let refetch = measured_fetch(config, cpu.as_ref()).await?;
    eprintln!("PostgreSQL all-304 cycle: {:?}", refetch.0);
    if refetch.0.not_modified != run.args.sources {
        bail!("the PostgreSQL refetch was not all 304s: {:?}", refetch.0);
    }
    if let Some(statements) = &mut statements {
        let per = ("304", run.args.sources as f64);
        eprintln!(
            "\nPostgreSQL statements of the all-304 cycle (store open included):\n\n{}",
            statements.table(TOP_STATEMENTS, Some(per)).await
        );
    }
    Ok(FetchCycles {
        first,
        refetch,
        open,
    })
}

async fn open_store(config: &Path) -> anyhow::Result<()> {
    tributary::app::open_store(&tributary::config::Config::load(config)?)
        .await?
        .close()
        .await;
    Ok(())
}

async fn measured_fetch(
    config: &Path,
    cpu: Option<&ServerCpu>,
) -> anyhow::Result<(Cycle, Measured)> {
    let before = cpu.and_then(ServerCpu::total);
    let backends = cpu.map(|cpu| BackendCpu::start(cpu, "tributary_bench"));
    let cycle = fetch_cycle(config).await?;
    let backend_cpu = backends.and_then(BackendCpu::stop);
    let server_cpu = cpu
        .and_then(ServerCpu::total)
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before));
    let wall = cycle.wall;
    let measured = Measured {
        wall,
        server_cpu,
        backend_cpu,
    };
    Ok((cycle, measured))
}

fn push_fetch_rows(run: &Run, cycles: &FetchCycles, rows: &mut Vec<Row>) {
    let (first, measured) = &cycles.first;
    let entries = run.total_entries();
    rows.push(row(
        "PostgreSQL `tributary fetch` into a fresh database (wall)",
        format!(
            "{:.2} s, {:.0} entries/s (CPU {:.2} s); {}",
            measured.wall.as_secs_f64(),
            run.rate(measured.wall),
            first.cpu.as_secs_f64(),
            measured.cpu_cell(entries, "entry")
        ),
        String::new(),
        String::new(),
        "<= 150 µs per entry",
    ));
    let (refetch, measured) = &cycles.refetch;
    let sources = run.args.sources;
    // The child's store open is not the 304s' work.
    let net = Measured {
        wall: measured.wall,
        backend_cpu: measured.backend_cpu,
        server_cpu: measured
            .server_cpu
            .zip(cycles.open)
            .map(|(cycle, open)| cycle.saturating_sub(open)),
    };
    rows.push(row(
        "PostgreSQL all-304 refetch (wall)",
        format!(
            "{:.2} s (CPU {:.2} s); {}",
            refetch.wall.as_secs_f64(),
            refetch.cpu.as_secs_f64(),
            net.cpu_cell(sources, "304")
        ),
        match cycles.open {
            Some(open) => format!(
                "store open alone: {:.2} s of PostgreSQL CPU (subtracted)",
                open.as_secs_f64()
            ),
            None => String::new(),
        },
        String::new(),
        "<= 300 µs per 304",
    ));
}

/// How many daemons share one database in the scale-out runs.
const INSTANCES: [usize; 3] = [1, 2, 4];

/// One scale-out run: its wall time and server CPU, and what the daemons
/// themselves cost.
struct ScaleRun {
    instances: usize,
    measured: Measured,
    /// User + system CPU of all the daemons, their start included.
    daemon_cpu: Duration,
    /// The largest of the daemons' peak RSS (VmHWM), kB.
    daemon_hwm_kb: u64,
    /// WAL the server wrote during the run, when it says.
    wal_bytes: Option<u64>,
}

fn push_scale_rows(run: &Run, runs: &[ScaleRun], rows: &mut Vec<Row>) {
    let entries = run.total_entries();
    let Some(one) = runs.first() else { return };
    for r in runs {
        let wall = r.measured.wall.as_secs_f64();
        let per_entry = |d: Duration| d.as_secs_f64() * 1e6 / entries.max(1) as f64;
        let wal = match r.wal_bytes {
            Some(bytes) => format!(
                ", {:.1} KB of WAL per entry",
                bytes as f64 / 1e3 / entries.max(1) as f64
            ),
            None => String::new(),
        };
        let (label, baseline, ratio) = if r.instances == 1 {
            (
                "PostgreSQL, 1 daemon: first fetch of every source (wall)".to_string(),
                "Miniflux: ~285 entries/s".to_string(),
                String::new(),
            )
        } else {
            (
                format!("PostgreSQL, {} daemons on one database (wall)", r.instances),
                "1 daemon".to_string(),
                format!("{:.2}x throughput", one.measured.wall.as_secs_f64() / wall),
            )
        };
        rows.push(row(
            &label,
            format!(
                "{wall:.2} s, {:.0} entries/s; {}{wal}; daemons: {:.0} µs of CPU per entry, peak RSS {} MB each at most",
                entries as f64 / wall,
                r.measured.cpu_cell(entries, "entry"),
                per_entry(r.daemon_cpu),
                r.daemon_hwm_kb / 1024,
            ),
            baseline,
            ratio,
            "",
        ));
    }
}

/// The server's WAL position, to count the bytes a run writes.
async fn wal_lsn(pool: &sqlx::PgPool) -> Option<u64> {
    sqlx::query_scalar::<_, i64>("SELECT (pg_current_wal_lsn() - '0/0')::int8")
        .fetch_one(pool)
        .await
        .ok()
        .map(|lsn| lsn as u64)
}

/// First fetch of every source by the daemon's scheduler on PostgreSQL,
/// with 1, 2 and 4 instances on one database.
async fn scale(
    run: &Run,
    server: &str,
    database: &str,
    config: &Path,
) -> anyhow::Result<Vec<ScaleRun>> {
    let total_entries = run.total_entries();
    let mut runs = Vec::new();
    for instances in INSTANCES {
        roles::recreate_database(server, "tributary_bench").await?;
        // The schema and sources exist before the clock starts.
        open_store(config).await?;
        let store = tributary::store::Store::connect(database, &Default::default()).await?;
        let watch = sqlx::PgPool::connect(database).await?;
        let cpu = ServerCpu::find(database).await;
        let before = cpu.as_ref().and_then(ServerCpu::total);
        let backends = cpu
            .as_ref()
            .map(|cpu| BackendCpu::start(cpu, "tributary_bench"));
        let wal_before = wal_lsn(&watch).await;
        let started = Instant::now();
        let mut daemons = Vec::new();
        for _ in 0..instances {
            daemons.push(Daemon::start("__daemon", config, None).await?);
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
        let wall = started.elapsed();
        // Before the daemons stop: their shutdown is not the ingest's work.
        let server_cpu = cpu
            .as_ref()
            .and_then(ServerCpu::total)
            .zip(before)
            .map(|(after, before)| after.saturating_sub(before));
        let backend_cpu = backends.and_then(BackendCpu::stop);
        let wal_bytes = wal_lsn(&watch)
            .await
            .zip(wal_before)
            .map(|(after, before)| after.saturating_sub(before));
        let daemon_cpu_ms: u64 = daemons.iter().map(|d| cpu_ms(d.pid).unwrap_or(0)).sum();
        let daemon_hwm_kb = daemons
            .iter()
            .filter_map(|d| proc_status_kb(d.pid, "VmHWM"))
            .max()
            .unwrap_or(0);
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
            "PostgreSQL, {instances} instance(s): {:.2} s, server CPU {server_cpu:?}",
            wall.as_secs_f64()
        );
        runs.push(ScaleRun {
            instances,
            measured: Measured {
                wall,
                server_cpu,
                backend_cpu,
            },
            daemon_cpu: Duration::from_millis(daemon_cpu_ms),
            daemon_hwm_kb,
            wal_bytes,
        });
    }
    Ok(runs)
}
