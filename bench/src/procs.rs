//! The harness's side of its child processes (roles.rs is theirs): one
//! `__fetch` cycle, a serving child, and what `/proc` says about them.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What one `__fetch` child reported.
#[derive(Debug, Default)]
pub struct Cycle {
    /// Wall time as the parent saw it: process start to exit.
    pub wall: Duration,
    pub entries: usize,
    pub inserted: usize,
    pub not_modified: usize,
    pub failed: usize,
    pub hwm_kb: u64,
    /// User + system CPU time of the child.
    pub cpu: Duration,
    /// What its memory was made of at the highest RSS its sampler saw.
    pub peak: crate::peak::Breakdown,
}

pub async fn fetch_cycle(config: &Path) -> anyhow::Result<Cycle> {
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
        let peak = &mut cycle.peak;
        match k {
            "entries" => cycle.entries = v as usize,
            "inserted" => cycle.inserted = v as usize,
            "not_modified" => cycle.not_modified = v as usize,
            "failed" => cycle.failed = v as usize,
            "hwm_kb" => cycle.hwm_kb = v,
            "cpu_ms" => cycle.cpu = Duration::from_millis(v),
            "peak_rss_kb" => peak.rss = v * 1024,
            "peak_anon_kb" => peak.rss_anon = v * 1024,
            "peak_file_kb" => peak.rss_file = v * 1024,
            "peak_sqlite_kb" => peak.sqlite_used = v * 1024,
            "peak_glibc_used_kb" => peak.glibc_used = v * 1024,
            "peak_glibc_free_kb" => peak.glibc_free = v * 1024,
            "peak_threads" => peak.threads = v,
            "peak_at_ms" => peak.at_ms = v,
            _ => {}
        }
    }
    Ok(cycle)
}

/// A child process serving HTTP until its stdin closes.
pub struct Daemon {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
}

impl Daemon {
    pub async fn start(role: &str, file: &Path, etag: Option<&str>) -> anyhow::Result<Daemon> {
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
    pub async fn stop(&mut self) {
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
