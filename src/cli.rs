//! The command line (docs/CLI.md). Each command loads the config first:
//! a bad config prints `FILE:LINE:COL: message` and exits 2.

use crate::app::{self, Application};
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::model::{Filter, PageOutcome};
use crate::pipeline::{Outcome, Pipeline, RefreshReport};
use crate::publish::{self, Format, ViewRequest};
use crate::rules::{self, Rules, Verdict};
use crate::{opml, scheduler, shutdown, telemetry, text};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `println!` without its panic on a closed stdout (`tributary sources |
/// head -1`): see [`write_out`].
macro_rules! outln {
    ($($arg:tt)*) => { write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` without the panic; see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => { write_out(format_args!($($arg)*)) };
}

/// `eprintln!` without the panic when stderr is gone too.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The first error writing to stdout; once set, output is dropped. A
/// reader that stops early (`| head`) is normal for a Unix tool: the
/// command finishes its work (a `fetch` still records every source) and
/// exits quietly. Any other write error is reported at the end.
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::ErrorKind>> = std::sync::Mutex::new(None);

fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_some() {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        *failed = Some(e.kind());
    }
}

/// Flushes stdout and turns a write error other than a closed pipe into
/// a failure.
fn finish_output(code: ExitCode) -> ExitCode {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().flush() {
        let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
        failed.get_or_insert(e.kind());
    }
    let failed = *STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
    match failed {
        None | Some(std::io::ErrorKind::BrokenPipe) => code,
        Some(kind) => {
            errln!(
                "error: writing to standard output: {}",
                std::io::Error::from(kind)
            );
            ExitCode::FAILURE
        }
    }
}

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
    /// Show every webhook's outbox: pending, failing, delivered, last error.
    Hooks,
    /// Show one article: its sources, its copies and why they merged, each
    /// tag's origin, and which output feeds include or exclude it and why.
    Explain {
        /// The article's id (urn:uuid:…) or the URL of any of its copies.
        article: String,
    },
    /// Write a merged feed to stdout: the bytes the server serves for its first page.
    Export {
        /// A configured output feed.
        #[arg(long, conflicts_with_all = ["any", "all", "none", "source", "lang", "top", "min_outlets", "window", "sort"])]
        feed: Option<String>,
        /// The top stories view (`/top`): coverage-sorted, the last day,
        /// two outlets or more unless the options below say otherwise.
        #[arg(long)]
        top: bool,
        /// Only stories at least this many distinct outlets carried.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        min_outlets: Option<u32>,
        /// Only stories published within this long (`12h`, `1d`; at most 30d).
        #[arg(long, value_parser = parse_window)]
        window: Option<std::time::Duration>,
        /// Order: newest first, or most outlets first.
        #[arg(long, value_enum)]
        sort: Option<ExportSort>,
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
        /// Only articles in these languages (`fr` includes `fr-CA`).
        #[arg(long, value_delimiter = ',', value_parser = parse_language)]
        lang: Vec<String>,
        #[arg(long, value_enum, default_value = "atom")]
        format: ExportFormat,
        /// Entries (default: the feed's limit, or 50).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: Option<u32>,
    },
    /// Add the feeds of an OPML file to the config, or print the sources as OPML 2.0.
    Opml {
        #[command(subcommand)]
        action: OpmlAction,
    },
    /// Apply the retention policy now: delete old articles, keep their tombstones.
    Prune,
    /// The [[rule]]s that drop and keep entries.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Judge every stored article by the current rules: print each one they
    /// drop (or no longer keep) and by which rule, and remove it.
    Apply {
        /// Print what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OpmlAction {
    /// Append the OPML file's feeds to the config as [[source]] tables
    /// (comments and formatting kept; URLs already configured are skipped).
    Import {
        /// OPML file (`-` reads standard input).
        file: PathBuf,
        /// Print the new config instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the configured sources as OPML 2.0 (credentials in their
    /// URLs hidden unless --with-secrets).
    Export {
        /// Print the URLs as configured, with their user:password@ and
        /// secret query values (to move the sources to another reader).
        #[arg(long)]
        with_secrets: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Atom,
    Json,
}

fn parse_language(raw: &str) -> Result<String, String> {
    crate::text::language_key(raw)
        .ok_or_else(|| format!("{raw:?} is not a language tag (such as en, fr or pt-BR)"))
}

/// Runs a parsed command line; the exit code follows docs/CLI.md.
pub async fn run(cli: Cli) -> ExitCode {
    let config = match config::locate(cli.config.as_deref()).and_then(|path| Config::load(&path)) {
        Ok(config) => config,
        Err(e) => {
            errln!("{e}");
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
        Command::Hooks => list_hooks(config).await,
        Command::Explain { article } => explain(config, &article).await,
        Command::Opml {
            action: OpmlAction::Import { file, dry_run },
        } => opml_import(config, &file, dry_run),
        Command::Opml {
            action: OpmlAction::Export { with_secrets },
        } => opml_export(config, with_secrets).await,
        Command::Prune => prune(config).await,
        Command::Rules {
            action: RulesAction::Apply { dry_run },
        } => rules_apply(config, dry_run).await,
        Command::Export {
            feed,
            top,
            min_outlets,
            window,
            sort,
            any,
            all,
            none,
            source,
            lang,
            format,
            limit,
        } => {
            let filter = Filter {
                any: terms(&any),
                all: terms(&all),
                none: terms(&none),
                sources: source,
                languages: lang,
                min_outlets,
                window,
                ..Filter::default()
            };
            let sort = sort.map(|s| match s {
                ExportSort::Published => crate::model::Sort::Published,
                ExportSort::Coverage => crate::model::Sort::Coverage,
            });
            let view = match (feed, top) {
                (Some(name), _) => ExportView::Feed(name),
                (None, true) => ExportView::Top(filter, sort),
                (None, false) => ExportView::Merged(filter, sort),
            };
            export(config, view, format, limit).await
        }
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    finish_output(code)
}

fn terms(labels: &[String]) -> Vec<String> {
    labels
        .iter()
        .map(|l| text::term(l))
        .filter(|t| !t.is_empty())
        .collect()
}

fn check(config: &Config) {
    outln!(
        "{}: ok: {} sources ({} enabled), {} tag rules, {} rules, {} feeds, {} webhooks; database {}; listening on {}",
        config.path.display(),
        config.sources.len(),
        config.sources.iter().filter(|s| s.enabled).count(),
        config.tag_rules.len(),
        config.rules.len(),
        config.feeds.len(),
        config.webhooks.len(),
        database_in_use(config),
        config.daemon.listen
    );
    for warning in config.warnings() {
        errln!("{}: warning: {warning}", config.path.display());
    }
}

async fn run_daemon(config: Config) -> anyhow::Result<ExitCode> {
    telemetry::init(config.daemon.log_level.as_deref());
    let token = CancellationToken::new();
    let reload = Arc::new(tokio::sync::Notify::new());
    shutdown::spawn_signal_handler(token.clone(), Some(reload.clone()))
        .context("installing signal handlers")?;
    // SIGTERM works at any moment of start-up too (a database that does
    // not answer yet, a long migration), not only once serving.
    let application = tokio::select! {
        built = Application::build(config) => built?.reload_on(reload),
        () = token.cancelled() => return Ok(ExitCode::SUCCESS),
    };
    application.run_until_stopped(token).await?;
    Ok(ExitCode::SUCCESS)
}

async fn fetch(config: Config, names: Vec<String>) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    // On a terminal the closing table shows every failure: warnings would
    // repeat it (a configured log_level still shows, above the bar).
    let default_level = if interactive { "error" } else { "warn" };
    telemetry::init(Some(
        config.daemon.log_level.as_deref().unwrap_or(default_level),
    ));
    let configured: std::collections::HashSet<&str> =
        config.sources.iter().map(|s| s.name.as_str()).collect();
    for name in &names {
        if !configured.contains(name.as_str()) {
            errln!("{}: no source named {name:?}", config.path.display());
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
    shutdown::spawn_signal_handler(token.clone(), None).context("installing signal handlers")?;
    let lease = scheduler::lease_for(config.daemon.timeout);
    // A terminal gets a progress bar and a table at the end; pipes and
    // logs get one plain line per source as it completes.
    let progress = interactive.then(|| progress_bar(names.len()));
    telemetry::log_above(progress.clone());
    let on_report = |r: &RefreshReport| match &progress {
        Some(bar) => {
            bar.set_message(r.source.clone());
            bar.inc(1);
        }
        None => outln!("{}", report_line(r)),
    };
    let reports = scheduler::run_once(
        pipeline,
        &app::instance_id(),
        &names,
        lease,
        token,
        on_report,
    )
    .await?;
    if let Some(bar) = progress {
        telemetry::log_above(None);
        bar.finish_and_clear();
        print_table(&summary_rows(&reports), &[(6, 30)]);
    }
    let reported: std::collections::HashSet<&str> =
        reports.iter().map(|r| r.source.as_str()).collect();
    let skipped: Vec<&String> = names
        .iter()
        .filter(|n| !reported.contains(n.as_str()))
        .collect();
    for name in skipped {
        outln!(
            "{name}\tskipped: under Retry-After, disabled, or being fetched by another instance"
        );
    }
    let failed = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .count();
    let sources = if reports.len() == 1 {
        "source"
    } else {
        "sources"
    };
    outln!("{} {sources} fetched, {} failed", reports.len(), failed);
    let unreachable = |r: &RefreshReport| matches!(&r.outcome, Outcome::Failed(e) if e.starts_with("connection failed") || e == "timed out");
    if failed > 1 && failed == reports.len() && reports.iter().all(unreachable) {
        outln!("every source failed to connect: is this machine offline, or behind a proxy (HTTPS_PROXY)?");
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn report_line(r: &RefreshReport) -> String {
    let status = r
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let what = match &r.outcome {
        Outcome::Ingested {
            entries,
            stats,
            dropped,
        } => format!(
            "ok\t{entries} entries: {} new, {} updated, {} merged, {} unchanged{}{}",
            stats.inserted,
            stats.updated,
            stats.merged,
            stats.unchanged,
            if stats.tombstoned > 0 {
                format!(", {} pruned before", stats.tombstoned)
            } else {
                String::new()
            },
            if *dropped > 0 {
                format!(", {dropped} dropped by rules")
            } else {
                String::new()
            }
        ),
        Outcome::NotModified => "not modified".to_string(),
        Outcome::Failed(error) => format!("error: {error}"),
    };
    format!("{}\t{status}\t{what}", r.source)
}

async fn explain(config: Config, key: &str) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let found = store.explain(key).await?;
    let dropped = match found {
        Some(_) => None,
        None => store.dropped_entry(key).await?,
    };
    let page = match found.as_ref().and_then(|e| e.article.link.as_deref()) {
        Some(link) => store.article_page(link).await?,
        None => None,
    };
    store.close().await;
    let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    if let Some(d) = dropped {
        let e = &d.entry;
        outln!("entry dropped by a rule (not stored)");
        outln!("  source     {}", d.source);
        outln!("  entry      {}", e.entry_key);
        outln!("  title      {}", e.title);
        outln!("  link       {}", e.link.as_deref().unwrap_or("-"));
        outln!("  dropped    {}", time(d.dropped_at));
        outln!("  rule       {}: {}", e.rule, e.why);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(e) = found else {
        errln!("no stored article or dropped entry has the id or link {key:?}");
        return Ok(ExitCode::from(1));
    };
    let a = &e.article;
    outln!("article {}", a.uid);
    outln!("  title      {}", a.title);
    outln!("  link       {}", a.link.as_deref().unwrap_or("-"));
    outln!("  language   {}", a.language.as_deref().unwrap_or("-"));
    if let Some(page) = &page {
        let status = page.status.map_or("-".to_string(), |s| s.to_string());
        let what = match page.outcome {
            PageOutcome::Extracted => "the body is the page's main text".to_string(),
            outcome => format!(
                "the feed's text kept: {} ({})",
                outcome.as_str(),
                page.error
                    .as_deref()
                    .unwrap_or("extraction gave no more text")
            ),
        };
        let again = match page.next_attempt_at {
            Some(at) => format!(", tried again from {}", time(at)),
            None => String::new(),
        };
        outln!(
            "  full text  {what}; page fetched {} (HTTP {status}, try {}){again}",
            time(page.fetched_at),
            page.attempts
        );
    }
    outln!("  published  {}", time(a.published));
    outln!("  updated    {}", time(a.updated));
    outln!("  first seen {}", time(e.first_seen));
    outln!("sources (first one is the atom:source; only its edits update the article)");
    for entry in &e.entries {
        let how = if let Some(why) = &entry.why {
            match e.copies.iter().find(|c| c.source == entry.source) {
                Some(copy) => format!("{why} (similarity {:.2}) at {}", copy.similarity, copy.url),
                None => why.clone(),
            }
        } else if entry.source == a.source.name && entry.first_seen == e.first_seen {
            "first seen here".to_string()
        } else if let Some(copy) = e.copies.iter().find(|c| c.source == entry.source) {
            format!(
                "near-duplicate text (similarity {:.2}) at {}",
                copy.similarity, copy.url
            )
        } else if entry.source == a.source.name {
            "same source".to_string()
        } else {
            "same canonical link".to_string()
        };
        outln!(
            "  {:<16} {}  {}  ({how})",
            entry.source,
            time(entry.first_seen),
            entry.entry_key
        );
    }
    if !e.kept_apart.is_empty() {
        outln!("kept apart (same link or id in a source, other articles)");
        for other in &e.kept_apart {
            outln!(
                "  {:<16} {}  {} {:?}  ({})",
                other.source,
                other.entry_key,
                other.uid,
                other.title,
                other.why.as_deref().unwrap_or("reason not recorded")
            );
        }
    }
    let last = e.outlets.iter().map(|o| o.first_seen).max();
    outln!(
        "outlets ({}, the last since {}; what min_outlets and sort = coverage count)",
        a.outlets,
        last.map(time).unwrap_or_else(|| "-".into())
    );
    for outlet in &e.outlets {
        outln!(
            "  {:<20} {}  {}",
            outlet.outlet,
            time(outlet.first_seen),
            outlet.sources.join(", ")
        );
    }
    outln!("tags");
    for (tag, origin) in &e.tags {
        outln!(
            "  {:<20} {:<20} from {}",
            tag.term,
            format!("{:?}", tag.label),
            origin.as_deref().unwrap_or("(not recorded)")
        );
    }
    let rules = Rules::new(&config.rules);
    if config.rules.is_empty() {
        outln!("rules: none configured");
    } else {
        outln!("rules (as configured now)");
        let now = Clock::system().now();
        for source in &a.seen_in {
            let verdict = match rules.judge_stored(source, a, now) {
                Verdict::Passed => "kept: no rule decides".to_string(),
                Verdict::Kept { why, .. } => format!("kept by {why}"),
                Verdict::Dropped { rule, why } => {
                    let by = if rule == rules::NOT_KEPT { ":" } else { " by" };
                    format!("dropped{by} {why} (`tributary rules apply` removes it)")
                }
            };
            outln!("  {source:<16} {verdict}");
        }
    }
    outln!("feeds");
    let terms: Vec<&str> = e.tags.iter().map(|(t, _)| t.term.as_str()).collect();
    for feed in &config.feeds {
        let filter = feed.filter();
        let (mut included, mut why) =
            publish::verdict(&filter, &terms, &a.seen_in, a.language.as_deref());
        let coverage = publish::coverage_verdict(&filter, a.outlets, a.published, Utc::now());
        match coverage {
            Some(Some(out)) if included => (included, why) = (false, out),
            Some(None) if included => why += ", and its coverage passes",
            _ => {}
        }
        let verdict = if included { "included" } else { "excluded" };
        outln!("  {:<16} {verdict}: {why}", feed.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_sources(config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let states = store.source_states().await?;
    let pages = store.page_counts().await?;
    let pushes: std::collections::HashMap<String, crate::store::Subscription> = store
        .websub_subscriptions()
        .await?
        .into_iter()
        .map(|s| (s.source.clone(), s))
        .collect();
    store.close().await;
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into())
    };
    // PUSH (WebSub) only once some source has a hub.
    let push_column = !pushes.is_empty();
    let mut rows: Vec<Vec<String>> = vec![[
        "NAME",
        "URL",
        "LAST FETCH",
        "STATUS",
        "ARTICLES",
        "FAILURES",
        "NEXT FETCH",
        "PUSH",
        "LAST ERROR",
    ]
    .into_iter()
    .filter(|h| push_column || *h != "PUSH")
    .map(String::from)
    .collect()];
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
            notes.push(format!(
                "moved permanently to {}",
                crate::redact::public_url(to)
            ));
        }
        if let Some(p) = pages.get(&s.name) {
            let mut note = format!(
                "pages: {} extracted, {} kept the feed's text, {} retrying",
                p.extracted, p.kept, p.retrying
            );
            if let Some(last) = &p.last_error {
                note.push_str(&format!(" (last page error: {last})"));
            }
            notes.push(note);
        }
        if !notes.is_empty() {
            if !error.is_empty() {
                error.push_str("; ");
            }
            error.push_str(&notes.join("; "));
        }
        let push = push_column.then(|| {
            pushes
                .get(&s.name)
                .map_or_else(|| "-".into(), |p| p.describe(now))
        });
        let mut row = vec![
            s.name.clone(),
            crate::redact::public_url(&s.url).into_owned(),
            time(s.last_fetch_at),
            s.last_status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            s.articles.to_string(),
            s.consecutive_failures.to_string(),
            time(s.next_fetch_at),
        ];
        row.extend(push);
        row.push(if error.is_empty() { "-".into() } else { error });
        rows.push(row);
    }
    // On a terminal the last error gives way first, then the URL.
    let last_error = rows[0].len() - 1;
    print_table(&rows, &[(last_error, 30), (1, 24)]);
    Ok(ExitCode::SUCCESS)
}

/// `tributary hooks`: each configured webhook (and any the outbox still
/// holds messages of) with its counts. Secrets are never shown; the URL
/// goes through `redact` like a source's.
async fn list_hooks(config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let states = store.webhook_states().await?;
    let now = Utc::now();
    let hub = store.hub_state(now).await?;
    let subscriptions = store.active_subscriptions(now).await?;
    store.close().await;
    let mut rows = vec![[
        "NAME",
        "FEED",
        "URL",
        "PENDING",
        "FAILING",
        "DELIVERED",
        "GIVEN UP",
        "LAST DELIVERED",
        "NEXT ATTEMPT",
        "LAST ERROR",
    ]
    .map(String::from)];
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    };
    let mut names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    for s in &states {
        if !names.contains(&s.webhook.as_str()) {
            names.push(&s.webhook);
        }
    }
    for name in names {
        let hook = config.webhooks.iter().find(|w| w.name == name);
        let state = states.iter().find(|s| s.webhook == name);
        let state = state.cloned().unwrap_or_default();
        rows.push([
            name.to_string(),
            hook.map_or("(not configured)".into(), |h| {
                h.feed.clone().unwrap_or_else(|| "(own filter)".into())
            }),
            hook.map_or("-".into(), |h| {
                crate::redact::public_url(h.url.as_str()).into_owned()
            }),
            state.pending.to_string(),
            state.failing.to_string(),
            state.delivered.to_string(),
            state.given_up.to_string(),
            time(state.last_delivered_at),
            time(state.next_attempt_at),
            state.last_error.unwrap_or_else(|| "-".into()),
        ]);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    print_table(&rows, &[(9, 30), (2, 24)]);
    print_hub(&config, &hub, &subscriptions);
    Ok(ExitCode::SUCCESS)
}

/// `tributary hooks`' WebSub section: the hub in force, its pings or its
/// subscriptions and distributions. Callbacks are redacted, secrets never
/// shown.
fn print_hub(
    config: &Config,
    hub: &crate::store::HubState,
    subscriptions: &[crate::store::HubSubscription],
) {
    let site = app::site(config);
    let last_error = |e: &Option<String>| e.clone().unwrap_or_else(|| "-".into());
    match (&config.websub.hub, site.hub.as_deref()) {
        (Some(crate::config::HubMode::External(_)), Some(url)) => {
            let p = &hub.pings;
            println!(
                "\nWebSub hub {url}: pings pending {}, failing {}, delivered {}, given up {}; last error: {}",
                p.pending, p.failing, p.delivered, p.given_up, last_error(&p.last_error)
            );
        }
        (Some(crate::config::HubMode::Itself), Some(url)) => {
            println!(
                "\nWebSub hub {url} (self): {} subscriptions; distributions pending {}, failing {}, delivered {}, given up {}; last error: {}",
                hub.subscriptions, hub.pending, hub.failing, hub.delivered, hub.given_up, last_error(&hub.last_error)
            );
        }
        _ if subscriptions.is_empty() => return,
        _ => println!("\nWebSub hub: off ([websub] hub is not set); subscriptions kept:"),
    }
    if subscriptions.is_empty() {
        return;
    }
    let mut rows = vec![["TOPIC", "CALLBACK", "SIGNED", "LEASE ENDS"].map(String::from)];
    for s in subscriptions {
        rows.push([
            s.topic.clone(),
            crate::redact::public_url(&s.callback).into_owned(),
            if s.secret.is_some() { "yes" } else { "no" }.to_string(),
            s.expires_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        ]);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    print_table(&rows, &[(0, 60), (1, 60)]);
}

/// `--window`: a duration as the config writes it, within the views' bound.
fn parse_window(text: &str) -> Result<std::time::Duration, String> {
    let window = crate::config::parse_duration(text)?;
    let max = Filter::MAX_WINDOW;
    if window.is_zero() || window > max {
        return Err(format!(
            "must be from 1s to {}",
            crate::model::format_window(max)
        ));
    }
    Ok(window)
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportSort {
    Published,
    Coverage,
}

/// Which view `export` prints.
enum ExportView {
    Feed(String),
    Top(Filter, Option<crate::model::Sort>),
    Merged(Filter, Option<crate::model::Sort>),
}

async fn export(
    config: Config,
    view: ExportView,
    format: ExportFormat,
    limit: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let format = match format {
        ExportFormat::Atom => Format::Atom,
        ExportFormat::Json => Format::Json,
    };
    let request = match view {
        ExportView::Feed(name) => {
            let Some(feed) = config.feeds.iter().find(|f| f.name == name) else {
                errln!("{}: no feed named {name:?}", config.path.display());
                return Ok(ExitCode::from(2));
            };
            ViewRequest {
                title: feed.title.clone(),
                path: format!("/feeds/{}", feed.name),
                query: limit
                    .map(|l| vec![("limit".into(), l.to_string())])
                    .unwrap_or_default(),
                filter: feed.filter(),
                before: None,
                limit: limit.unwrap_or(feed.limit),
                format,
            }
        }
        ExportView::Top(filter, sort) => crate::server::top_request(filter, sort, limit, format),
        ExportView::Merged(filter, sort) => {
            crate::server::merged_request(filter, sort, limit, format)
        }
    };
    let store = app::open_store(&config).await?;
    // One page: no entry is rendered twice.
    let entries = publish::atom::EntryCache::default();
    let rendered = publish::render(
        &store,
        &app::site(&config),
        &entries,
        &request,
        chrono::Utc::now(),
    )
    .await?;
    store.close().await;
    out!("{}", rendered.body);
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} sources  {wide_msg}",
        )
        .expect("the template is valid"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// The table `tributary fetch` ends with on a terminal.
fn summary_rows(reports: &[RefreshReport]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "SOURCE", "STATUS", "RESULT", "NEW", "UPDATED", "MERGED", "ERROR",
    ]
    .map(String::from)
    .to_vec()];
    for r in reports {
        let status = r
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let (result, numbers, error) = match &r.outcome {
            Outcome::Ingested {
                entries,
                stats,
                dropped,
            } => (
                if *dropped > 0 {
                    format!("{entries} entries, {dropped} dropped")
                } else {
                    format!("{entries} entries")
                },
                [stats.inserted, stats.updated, stats.merged].map(|n| n.to_string()),
                String::new(),
            ),
            Outcome::NotModified => (
                "not modified".into(),
                ["0", "0", "0"].map(String::from),
                String::new(),
            ),
            Outcome::Failed(e) => (
                "failed".into(),
                ["-", "-", "-"].map(String::from),
                e.clone(),
            ),
        };
        let [new, updated, merged] = numbers;
        rows.push(vec![
            r.source.clone(),
            status,
            result,
            new,
            updated,
            merged,
            error,
        ]);
    }
    rows
}

/// Prints aligned columns, the last one unpadded. On a terminal, cells of
/// the `shrinkable` columns, `(column, narrowest)` in the order they give
/// way, are cut with an ellipsis so that lines fit its width; piped
/// output keeps every cell whole.
fn print_table(rows: &[Vec<String>], shrinkable: &[(usize, usize)]) {
    let mut widths = column_widths(rows);
    if let Some(width) = terminal_width() {
        fit_widths(&mut widths, shrinkable, width);
    }
    let last = widths.len().saturating_sub(1);
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let cell = console::truncate_str(cell, widths[i], "…");
            line.push_str(&cell);
            if i < last {
                let pad = widths[i] - console::measure_text_width(&cell);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        outln!("{}", line.trim_end());
    }
}

fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let columns = rows.first().map(Vec::len).unwrap_or(0);
    (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| console::measure_text_width(&r[i]))
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Narrows the `shrinkable` columns, in order and each down to its
/// narrowest, until a line of `widths` (two spaces between columns) fits
/// `width`. A terminal narrower than that wraps the lines.
fn fit_widths(widths: &mut [usize], shrinkable: &[(usize, usize)], width: usize) {
    let line = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
    let mut excess = line.saturating_sub(width);
    for &(column, narrowest) in shrinkable {
        let give = excess.min(widths[column].saturating_sub(narrowest));
        widths[column] -= give;
        excess -= give;
    }
}

/// The width of the terminal stdout is, `None` when stdout is not one:
/// `$COLUMNS` when set (as ls(1) reads it), else the terminal's own.
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c > 0)
        .or_else(|| {
            console::Term::stdout()
                .size_checked()
                .map(|(_rows, columns)| usize::from(columns))
        })
}

/// `tributary opml import FILE`: appends new sources to the config file,
/// which is checked before it is replaced (never left half-written).
fn opml_import(config: Config, file: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let xml = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let feeds = match opml::parse(&xml) {
        Ok(feeds) => feeds,
        Err(e) => {
            errln!("{}: {e}", file.display());
            return Ok(ExitCode::from(2));
        }
    };
    let text = std::fs::read_to_string(&config.path)
        .with_context(|| format!("reading {}", config.path.display()))?;
    let imported = opml::import(
        &text,
        &config,
        &feeds,
        &file.display().to_string(),
        Utc::now(),
    )?;
    for (url, reason) in &imported.invalid {
        errln!("skipped {}: {reason}", crate::redact::public_url(url));
    }
    if !imported.added.is_empty() {
        // The result must load like any config before it replaces one.
        if let Err(e) = Config::from_toml(&imported.text, &config.path) {
            anyhow::bail!("the imported config would not be valid, nothing written: {e}");
        }
    }
    if dry_run {
        out!("{}", imported.text);
        return Ok(ExitCode::SUCCESS);
    }
    if !imported.added.is_empty() {
        write_replacing(&config.path, &imported.text)?;
    }
    for (name, url) in &imported.added {
        outln!("added\t{name}\t{}", crate::redact::public_url(url));
    }
    for url in &imported.skipped {
        outln!(
            "skipped\t{}\talready configured",
            crate::redact::public_url(url)
        );
    }
    outln!(
        "{}: {} sources added, {} already present{}",
        config.path.display(),
        imported.added.len(),
        imported.skipped.len(),
        if imported.invalid.is_empty() {
            String::new()
        } else {
            format!(", {} invalid", imported.invalid.len())
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a sibling file and renames it over `path`, keeping its permissions:
/// a crash leaves the old config or the new one, never a mix.
fn write_replacing(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())
            .with_context(|| format!("setting permissions of {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// `tributary opml export`: the feeds' own titles when the database knows
/// them, else the source names.
async fn opml_export(config: Config, with_secrets: bool) -> anyhow::Result<ExitCode> {
    telemetry::init(Some(config.daemon.log_level.as_deref().unwrap_or("warn")));
    let titles: std::collections::HashMap<String, String> = match app::open_store(&config).await {
        Ok(store) => {
            let states = store.source_states().await.unwrap_or_default();
            store.close().await;
            states
                .into_iter()
                .filter_map(|s| Some((s.name, s.title.filter(|t| !t.is_empty())?)))
                .collect()
        }
        Err(e) => {
            errln!("warning: no feed titles ({e:#}); using source names");
            Default::default()
        }
    };
    let sources: Vec<opml::ExportSource> = config
        .sources
        .iter()
        .map(|s| opml::ExportSource {
            name: s.name.clone(),
            url: if with_secrets {
                s.url.to_string()
            } else {
                crate::redact::public_url(s.url.as_str()).into_owned()
            },
            title: titles.get(&s.name).cloned(),
            tags: s.tags.clone(),
            schedule: (s.schedule.to_string() != config.daemon.schedule.to_string())
                .then(|| s.schedule.to_string()),
            enabled: s.enabled,
        })
        .collect();
    out!("{}", opml::export(&sources, Utc::now()));
    Ok(ExitCode::SUCCESS)
}

/// `tributary prune`: the retention policy, now.
async fn prune(config: Config) -> anyhow::Result<ExitCode> {
    telemetry::init(Some(config.daemon.log_level.as_deref().unwrap_or("warn")));
    let store = app::open_store(&config).await?;
    let daemon = &config.daemon;
    let stats = store
        .prune(Utc::now(), daemon.retention, daemon.tombstone_retention)
        .await
        .context("pruning")?;
    let kept = store.tombstone_count().await?;
    store.close().await;
    outln!(
        "pruned {} articles first stored more than {} ago; {} tombstones added, {} expired, {} kept",
        stats.articles,
        humanize(daemon.retention),
        stats.tombstones_added,
        stats.tombstones_expired,
        kept
    );
    Ok(ExitCode::SUCCESS)
}

/// `tributary rules apply [--dry-run]`.
async fn rules_apply(config: Config, dry_run: bool) -> anyhow::Result<ExitCode> {
    telemetry::init(Some(config.daemon.log_level.as_deref().unwrap_or("warn")));
    let store = app::open_store(&config).await?;
    let rules = Rules::new(&config.rules);
    let verb = if dry_run { "would drop" } else { "dropped" };
    let stats = rules::apply(&store, &rules, Clock::system().now(), dry_run, |d| {
        outln!(
            "{verb} {} {:?} (source {}, rule {}): {}",
            d.uid,
            d.title,
            d.source,
            d.rule,
            d.why
        )
    })
    .await
    .context("applying the rules")?;
    store.close().await;
    if dry_run {
        outln!(
            "{} of {} stored articles would be removed (dry run: nothing changed)",
            stats.dropped,
            stats.judged
        );
    } else {
        outln!(
            "removed {} of {} stored articles",
            stats.removed,
            stats.judged
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn humanize(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// The database `run` opens, as `check` prints it: a relative SQLite path
/// with the file it names here, and, from a shell (no `$STATE_DIRECTORY`),
/// the one the systemd unit opens when that differs: a config leaving
/// `database` to its default is checked from a shell but run by systemd.
fn database_in_use(config: &Config) -> String {
    let here = located(&config.daemon.database);
    let under_systemd = std::env::var_os("STATE_DIRECTORY").is_some();
    match config.database_under_unit() {
        Ok(unit) if !under_systemd && unit != config.daemon.database => format!(
            "{} as the systemd service ($STATE_DIRECTORY), {here} when run from this directory",
            located(&unit)
        ),
        _ => here,
    }
}

/// `database` for printing (password hidden), with the absolute file of a
/// relative SQLite path.
fn located(database: &str) -> String {
    let printed = redact_password(database);
    let Some(path) = database.strip_prefix("sqlite://") else {
        return printed;
    };
    let path = Path::new(path.split('?').next().unwrap_or(path));
    match std::env::current_dir() {
        Ok(dir) if path.is_relative() => format!("{printed} ({})", dir.join(path).display()),
        _ => printed,
    }
}

/// A database URL fit for printing: any password replaced by `***`.
fn redact_password(database: &str) -> String {
    match url::Url::parse(database) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{fit_widths, redact_password};

    #[test]
    fn a_table_narrows_its_shrinkable_columns_in_order_down_to_their_narrowest() {
        // name, url, status, error: 10 + 60 + 6 + 50 and 3 gaps of 2 = 132.
        let natural = [10, 60, 6, 50];
        let fit = |width| {
            let mut widths = natural;
            fit_widths(&mut widths, &[(3, 30), (1, 24)], width);
            widths
        };
        assert_eq!(fit(200), natural, "room enough: nothing cut");
        assert_eq!(fit(122), [10, 60, 6, 40], "the error gives way first");
        assert_eq!(fit(100), [10, 48, 6, 30], "then the URL");
        assert_eq!(
            fit(40),
            [10, 24, 6, 30],
            "never below their narrowest: the terminal wraps"
        );
    }

    #[test]
    fn printed_database_urls_hide_passwords() {
        let cases = [
            (
                "postgres://app:s3cret@db.example/news",
                "postgres://app:***@db.example/news",
            ),
            (
                "postgres://app@db.example/news",
                "postgres://app@db.example/news",
            ),
            ("sqlite://tributary.db", "sqlite://tributary.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_password(url), shown);
        }
    }
}
