//! The command line (CONTRACT §1). Each command loads the config first:
//! a bad config prints `FILE:LINE:COL: message` and exits 2.

use crate::app::{self, Application};
use crate::config::{self, Config};
use crate::model::Filter;
use crate::pipeline::{Outcome, Pipeline, RefreshReport};
use crate::publish::{self, Format, ViewRequest};
use crate::{scheduler, shutdown, tag, telemetry};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "Feed aggregator daemon: fetches, deduplicates and tags articles, republishes merged Atom and JSON feeds"
)]
pub struct Cli {
    /// Config file (default: $TRIBUTARY_CONFIG, ./tributary.toml, /etc/tributary/tributary.toml).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: scheduler and HTTP server, until SIGTERM or SIGINT.
    Run,
    /// Fetch all (or the named) sources once now, then exit.
    Fetch {
        /// Source names (default: every configured source).
        sources: Vec<String>,
    },
    /// Validate the config and print a summary.
    Check,
    /// Show every source with its health.
    Sources,
    /// Write a merged feed to stdout: the bytes the server serves for its first page.
    Export {
        /// A configured output feed.
        #[arg(long, conflicts_with_all = ["any", "all", "none", "source"])]
        feed: Option<String>,
        /// At least one of these tags.
        #[arg(long, value_delimiter = ',')]
        any: Vec<String>,
        /// Every one of these tags.
        #[arg(long, value_delimiter = ',')]
        all: Vec<String>,
        /// None of these tags.
        #[arg(long, value_delimiter = ',')]
        none: Vec<String>,
        /// Only these sources.
        #[arg(long, value_delimiter = ',')]
        source: Vec<String>,
        #[arg(long, value_enum, default_value = "atom")]
        format: ExportFormat,
        /// Entries (default: the feed's limit, or 50).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Atom,
    Json,
}

/// Runs a parsed command line; the exit code follows CONTRACT §1.
pub async fn run(cli: Cli) -> ExitCode {
    let config = match config::locate(cli.config.as_deref()).and_then(|path| Config::load(&path)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Check => {
            check(&config);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => run_daemon(config).await,
        Command::Fetch { sources } => fetch(config, sources).await,
        Command::Sources => list_sources(config).await,
        Command::Export {
            feed,
            any,
            all,
            none,
            source,
            format,
            limit,
        } => {
            let filter = Filter {
                any: terms(&any),
                all: terms(&all),
                none: terms(&none),
                sources: source,
            };
            export(config, feed, filter, format, limit).await
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn terms(labels: &[String]) -> Vec<String> {
    labels
        .iter()
        .map(|l| tag::term(l))
        .filter(|t| !t.is_empty())
        .collect()
}

fn check(config: &Config) {
    println!(
        "{}: ok: {} sources ({} enabled), {} tag rules, {} feeds; database {}; listening on {}",
        config.path.display(),
        config.sources.len(),
        config.sources.iter().filter(|s| s.enabled).count(),
        config.tag_rules.len(),
        config.feeds.len(),
        config.daemon.database,
        config.daemon.listen
    );
}

async fn run_daemon(config: Config) -> anyhow::Result<ExitCode> {
    telemetry::init(config.daemon.log_level.as_deref());
    let token = CancellationToken::new();
    shutdown::spawn_signal_handler(token.clone(), config.path.clone())
        .context("installing signal handlers")?;
    let application = Application::build(config).await?;
    application.run_until_stopped(token).await?;
    Ok(ExitCode::SUCCESS)
}

async fn fetch(config: Config, names: Vec<String>) -> anyhow::Result<ExitCode> {
    telemetry::init(Some(config.daemon.log_level.as_deref().unwrap_or("warn")));
    for name in &names {
        if !config.sources.iter().any(|s| &s.name == name) {
            eprintln!("{}: no source named {name:?}", config.path.display());
            return Ok(ExitCode::from(2));
        }
    }
    let names = if names.is_empty() {
        config
            .sources
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.name.clone())
            .collect()
    } else {
        names
    };
    let store = app::open_store(&config).await?;
    let pipeline = Arc::new(Pipeline::new(&config, store.clone())?);
    let token = CancellationToken::new();
    shutdown::spawn_signal_handler(token.clone(), config.path.clone())
        .context("installing signal handlers")?;
    let lease = scheduler::lease_for(config.daemon.timeout);
    let reports = scheduler::run_once(pipeline, &app::instance_id(), &names, lease, token, |r| {
        println!("{}", report_line(r))
    })
    .await?;
    let skipped: Vec<&String> = names
        .iter()
        .filter(|n| !reports.iter().any(|r| &r.source == *n))
        .collect();
    for name in skipped {
        println!(
            "{name}\tskipped: under Retry-After, disabled, or being fetched by another instance"
        );
    }
    let failed = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .count();
    println!("{} sources fetched, {} failed", reports.len(), failed);
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn report_line(r: &RefreshReport) -> String {
    let status = r
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let what = match &r.outcome {
        Outcome::Ingested { entries, stats } => format!(
            "ok\t{entries} entries: {} new, {} updated, {} merged, {} unchanged",
            stats.inserted, stats.updated, stats.merged, stats.unchanged
        ),
        Outcome::NotModified => "not modified".to_string(),
        Outcome::Failed(error) => format!("error: {error}"),
    };
    format!("{}\t{status}\t{what}", r.source)
}

async fn list_sources(config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let states = store.source_states().await?;
    store.close().await;
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let mut rows = vec![[
        "NAME",
        "URL",
        "LAST FETCH",
        "STATUS",
        "ARTICLES",
        "FAILURES",
        "NEXT FETCH",
        "LAST ERROR",
    ]
    .map(String::from)];
    let now = Utc::now();
    for s in &states {
        let mut error = s.last_error.clone().unwrap_or_default();
        let mut notes = Vec::new();
        if !s.enabled {
            notes.push("disabled in config".to_string());
        }
        if let Some(reason) = &s.disabled_reason {
            notes.push(format!("disabled: {reason}"));
        }
        if let Some(until) = s.retry_after_until.filter(|u| *u > now) {
            notes.push(format!("Retry-After until {}", time(Some(until))));
        }
        if let Some(until) = s.backoff_until.filter(|u| *u > now) {
            notes.push(format!("backing off until {}", time(Some(until))));
        }
        if let Some(to) = &s.moved_to {
            notes.push(format!("moved permanently to {to}"));
        }
        if !notes.is_empty() {
            if !error.is_empty() {
                error.push_str("; ");
            }
            error.push_str(&notes.join("; "));
        }
        rows.push([
            s.name.clone(),
            s.url.clone(),
            time(s.last_fetch_at),
            s.last_status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            s.articles.to_string(),
            s.consecutive_failures.to_string(),
            time(s.next_fetch_at),
            if error.is_empty() { "-".into() } else { error },
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 7 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(
    config: Config,
    feed: Option<String>,
    filter: Filter,
    format: ExportFormat,
    limit: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let format = match format {
        ExportFormat::Atom => Format::Atom,
        ExportFormat::Json => Format::Json,
    };
    let request = match &feed {
        Some(name) => {
            let Some(feed) = config.feeds.iter().find(|f| &f.name == name) else {
                eprintln!("{}: no feed named {name:?}", config.path.display());
                return Ok(ExitCode::from(2));
            };
            ViewRequest {
                title: feed.title.clone(),
                path: format!("/feeds/{}", feed.name),
                query: limit
                    .map(|l| vec![("limit".into(), l.to_string())])
                    .unwrap_or_default(),
                filter: Filter {
                    any: feed.any.clone(),
                    all: feed.all.clone(),
                    none: feed.none.clone(),
                    sources: feed.sources.clone(),
                },
                before: None,
                limit: limit.unwrap_or(feed.limit),
                format,
            }
        }
        None => crate::server::merged_request(filter, limit, format),
    };
    let store = app::open_store(&config).await?;
    let rendered = publish::render(&store, &app::site(&config), &request).await?;
    store.close().await;
    print!("{}", rendered.body);
    Ok(ExitCode::SUCCESS)
}
