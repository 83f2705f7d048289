//! The PostgreSQL server's own work during a phase: CPU time of its
//! processes from `/proc` (the server must run on this machine, and should
//! serve nobody else during the run), and, where the server preloads
//! `pg_stat_statements`, the statements that took it.

use sqlx::{Connection, PgConnection, Row as _};
use std::fmt::Write as _;
use std::time::Duration;

/// The server's process tree, found from a backend's parent.
pub struct ServerCpu {
    postmaster: u32,
}

impl ServerCpu {
    /// `None` when the server's processes cannot be read here (another
    /// machine, or another user's processes behind `hidepid`).
    pub async fn find(database: &str) -> Option<ServerCpu> {
        let mut conn = PgConnection::connect(database).await.ok()?;
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let postmaster = stat_fields(backend as u32)?.get(1)?.parse().ok()?;
        let _ = conn.close().await;
        let cpu = ServerCpu { postmaster };
        cpu.total().map(|_| cpu)
    }

    /// CPU time of every process the server ran so far: the postmaster's
    /// own, its live children's (backends, WAL writer, checkpointer,
    /// autovacuum) and its exited children's (counted into the
    /// postmaster's `cutime`/`cstime` when it reaps them). The difference
    /// of two readings is the server's work in between.
    pub fn total(&self) -> Option<Duration> {
        let own = stat_fields(self.postmaster)?;
        // After the command: state, ppid, ... utime is the 12th field.
        let field = |fields: &[String], i: usize| fields.get(i)?.parse::<u64>().ok();
        let mut ticks = field(&own, 11)? + field(&own, 12)? + field(&own, 13)? + field(&own, 14)?;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let Some(fields) = stat_fields(pid) else {
                continue;
            };
            if field(&fields, 1) == Some(self.postmaster as u64) {
                ticks += field(&fields, 11).unwrap_or(0) + field(&fields, 12).unwrap_or(0);
            }
        }
        // Clock ticks, 100 per second on Linux.
        Some(Duration::from_millis(ticks * 10))
    }
}

/// The fields of `/proc/PID/stat` after the parenthesised command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(String::from).collect())
}

/// Per-statement figures of one database from `pg_stat_statements`, when
/// the server preloads it (`shared_preload_libraries`).
pub struct Statements {
    conn: PgConnection,
}

impl Statements {
    pub async fn open(database: &str) -> Option<Statements> {
        let mut conn = PgConnection::connect(database).await.ok()?;
        sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .await
            .ok()?;
        let mut statements = Statements { conn };
        statements.reset().await.then_some(statements)
    }

    pub async fn reset(&mut self) -> bool {
        sqlx::raw_sql("SELECT pg_stat_statements_reset()")
            .execute(&mut self.conn)
            .await
            .is_ok()
    }

    /// The statements of this database by time spent, as a markdown table
    /// for BENCHMARKS.md: the first `limit`, then the rest summed; times
    /// per `unit` (an entry, a 304) when given.
    pub async fn table(&mut self, limit: usize, per: Option<(&str, f64)>) -> String {
        let rows = match sqlx::query(
            "SELECT query, calls, total_exec_time + total_plan_time AS ms, rows,
                    shared_blks_hit + shared_blks_read AS blocks, wal_bytes::float8
             FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat_statements%'
             ORDER BY ms DESC",
        )
        .fetch_all(&mut self.conn)
        .await
        {
            Ok(rows) => rows,
            Err(e) => return format!("(pg_stat_statements: {e})\n"),
        };
        let total_ms: f64 = rows.iter().map(|r| r.get::<f64, _>(2)).sum();
        let (unit, count) = per.unwrap_or(("", 0.0));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| statement | calls | ms | share | µs per {unit} | rows | buffers | WAL bytes |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- |");
        let mut rest = (0i64, 0.0f64);
        for (i, r) in rows.iter().enumerate() {
            let (calls, ms): (i64, f64) = (r.get(1), r.get(2));
            if i >= limit {
                rest.0 += calls;
                rest.1 += ms;
                continue;
            }
            let query: String = r.get(0);
            let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
            let query: String = query.chars().take(90).collect();
            let _ = writeln!(
                out,
                "| `{}` | {calls} | {ms:.0} | {:.1}% | {} | {} | {} | {:.0} |",
                query.replace('|', "\\|"),
                100.0 * ms / total_ms.max(1e-9),
                per_unit(ms, count),
                r.get::<i64, _>(3),
                r.get::<i64, _>(4),
                r.get::<f64, _>(5),
            );
        }
        let _ = writeln!(
            out,
            "| (the other {} statements) | {} | {:.0} | {:.1}% | {} | | | |",
            rows.len().saturating_sub(limit),
            rest.0,
            rest.1,
            100.0 * rest.1 / total_ms.max(1e-9),
            per_unit(rest.1, count)
        );
        let _ = writeln!(
            out,
            "| all | {} | {total_ms:.0} | 100% | {} | | | |",
            rows.iter().map(|r| r.get::<i64, _>(1)).sum::<i64>(),
            per_unit(total_ms, count)
        );
        out
    }
}

fn per_unit(ms: f64, count: f64) -> String {
    if count > 0.0 {
        format!("{:.1}", ms * 1000.0 / count)
    } else {
        String::new()
    }
}

/// CPU time of the backends serving one database, sampled from `/proc`
/// every 20 ms while a phase runs (a backend's last ticks before it exits
/// are missed): the ingest's own work, without autovacuum's or the
/// checkpointer's, which the whole server's figure includes.
pub struct BackendCpu {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl BackendCpu {
    pub fn start(server: &ServerCpu, database: &str) -> BackendCpu {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (postmaster, title) = (server.postmaster, format!(" {database} "));
        let stopping = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut ticks: std::collections::HashMap<u32, u64> = Default::default();
            loop {
                let last = stopping.load(Ordering::Acquire);
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                        continue;
                    };
                    let Some(fields) = stat_fields(pid) else {
                        continue;
                    };
                    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
                    if field(1) != Some(postmaster as u64) {
                        continue;
                    }
                    // A backend's title: "postgres: USER DATABASE HOST STATE".
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if !String::from_utf8_lossy(&cmdline).contains(&title) {
                        continue;
                    }
                    let now = field(11).unwrap_or(0) + field(12).unwrap_or(0);
                    let seen = ticks.entry(pid).or_default();
                    *seen = (*seen).max(now);
                }
                if last {
                    return ticks.values().sum();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        BackendCpu { stop, sampler }
    }

    /// The backends' CPU since `start`, including what they had used
    /// before it (none: each phase's backends are its own).
    pub fn stop(self) -> Option<Duration> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let ticks = self.sampler.join().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }
}
