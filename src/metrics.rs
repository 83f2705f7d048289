//! Prometheus metrics (docs/HTTP.md "Metrics"), all named `tributary_*`.
//!
//! Events (fetches, ingests, requests, prunes) go through the `metrics`
//! facade into one process-wide recorder from `metrics-exporter-prometheus`,
//! installed by `Application::build` ([`Recorder::install`]); without it
//! (`tributary fetch`), events are dropped.
//! States (sources by health, stored articles, the DB pool) are read from
//! the store at scrape time instead: they are facts of the database, which
//! several instances may share, not counts of what this process did.

use crate::fetch::{FetchError, Fetched};
use crate::store::{IngestStats, Store, StoreError};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const FETCH_DURATION: &str = "tributary_fetch_duration_seconds";
const HTTP_DURATION: &str = "tributary_http_request_duration_seconds";
/// Fetches take from milliseconds (a 304 on loopback) to the timeout.
const FETCH_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Requests are served from the database: mostly well under a second.
const HTTP_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Histogram samples wait in buffers until drained; without a scraper they
/// would grow, so [`Recorder::run_upkeep`] drains them this often.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder events land in, which `/metrics` renders.
#[derive(Clone)]
pub struct Recorder {
    handle: PrometheusHandle,
}

impl Recorder {
    /// Installs the process-wide recorder. The `metrics` facade takes one
    /// per process, so later calls (tests start many daemons in one
    /// process) share the first.
    pub fn install() -> Recorder {
        Recorder {
            handle: install_once().clone(),
        }
    }

    /// The whole `/metrics` body: recorded events, then states read at
    /// `now`.
    pub async fn render(&self, store: &Store, now: DateTime<Utc>) -> Result<String, StoreError> {
        let mut out = self.handle.render();
        render_states(store, now, &mut out).await?;
        Ok(out)
    }

    /// Drains the histograms' buffers every [`UPKEEP_EVERY`] until
    /// `shutdown`.
    pub async fn run_upkeep(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(UPKEEP_EVERY) => self.handle.run_upkeep(),
            }
        }
    }
}

fn install_once() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(FETCH_DURATION.into()), FETCH_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if something else installed a recorder first; then this
        // handle renders just the scrape-time states, which is still useful.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows states only");
        }
        describe();
        metrics::gauge!("tributary_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "tributary_fetches_total",
        "Source refreshes by source and outcome (ok, not_modified, error_*; error_store: not stored; error_internal: the refresh panicked)"
    );
    describe_counter!(
        "tributary_task_panics_total",
        "Panics of the daemon's tasks (refresh, prune), each logged; the daemon went on"
    );
    describe_histogram!(
        FETCH_DURATION,
        Unit::Seconds,
        "Duration of source refreshes: fetch, parse and store"
    );
    describe_counter!(
        "tributary_fetched_bytes_total",
        Unit::Bytes,
        "Feed body bytes read, after decompression"
    );
    describe_counter!("tributary_articles_ingested_total", "New articles stored");
    describe_counter!(
        "tributary_articles_updated_total",
        "Stored articles whose title or content changed"
    );
    describe_counter!(
        "tributary_articles_deduplicated_total",
        "Entries merged into an article already stored (another source, same story)"
    );
    describe_counter!(
        "tributary_articles_tombstoned_total",
        "Entries skipped because their article was pruned before"
    );
    describe_counter!(
        "tributary_http_requests_total",
        "HTTP requests served, by route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Duration of HTTP requests, by route"
    );
    describe_counter!(
        "tributary_pruned_articles_total",
        "Articles removed by the retention policy"
    );
    describe_counter!(
        "tributary_tombstones_expired_total",
        "Tombstones forgotten after tombstone_retention"
    );
    describe_counter!(
        "tributary_connections_shed_total",
        "Connections closed (idle, accept_error) or refused (busy) to stay within the connection bound"
    );
    describe_counter!(
        "tributary_rule_drops_total",
        "Entries dropped by [[rule]]s, by rule name (not-kept: no keep rule of the source matched); an entry remembered as dropped is counted once"
    );
    describe_counter!(
        "tributary_webhook_delivered_total",
        "Webhook messages this process delivered (a 2xx answer), by webhook"
    );
    describe_counter!(
        "tributary_webhook_failures_total",
        "Failed webhook attempts of this process (an error, a timeout, a non-2xx answer), by webhook"
    );
    describe_counter!(
        "tributary_websub_delivered_total",
        "WebSub distributions (hub = \"self\") and publish pings (an external hub) this process delivered, by kind"
    );
    describe_counter!(
        "tributary_websub_failures_total",
        "Failed WebSub distribution and ping attempts of this process, by kind"
    );
    describe_counter!(
        "tributary_websub_verifications_total",
        "Intents of subscribers to this instance's hub, by outcome: verified (stored or removed), refused (no echo of the challenge, an error, the hub full)"
    );
    describe_gauge!("tributary_build_info", "The running version");
}

/// `n` entries dropped by the `[[rule]]` named `rule` (names come from the
/// config only: a bounded label set).
pub fn record_rule_drops(rule: &str, n: u64) {
    metrics::counter!("tributary_rule_drops_total", "rule" => rule.to_string()).increment(n);
}

/// The label of a fetch result before parsing: `ok` for a body (parsing may
/// still turn it into `error_parse`), `not_modified`, or the error's kind.
pub fn fetch_outcome(fetched: &Result<Fetched, FetchError>) -> &'static str {
    match fetched {
        Ok(Fetched::Body { .. }) => "ok",
        Ok(Fetched::NotModified { .. }) => "not_modified",
        Err(FetchError::Timeout) => "error_timeout",
        Err(FetchError::Connect(_)) => "error_connect",
        Err(FetchError::Status { status: 410, .. }) => "error_gone",
        Err(FetchError::Status { status: 429, .. }) => "error_rate_limited",
        Err(FetchError::Status { .. }) => "error_http",
        Err(FetchError::TooLarge(_)) => "error_too_large",
        Err(FetchError::TooManyRedirects) => "error_redirects",
        Err(FetchError::Other(_)) => "error_other",
    }
}

/// Records one finished refresh of `source`; `label`: its outcome, as
/// [`fetch_outcome`] gives it, or `error_parse` (a body that could not be
/// used), `error_store` (an outcome the store could not write) or
/// `error_internal` (the refresh panicked);
/// `ingested`: what the store did with its entries, if it took them.
pub fn record_refresh(
    source: &str,
    label: &'static str,
    elapsed: Duration,
    body_bytes: usize,
    ingested: Option<&IngestStats>,
) {
    let source = source.to_string();
    metrics::counter!("tributary_fetches_total", "source" => source.clone(), "outcome" => label)
        .increment(1);
    metrics::histogram!(FETCH_DURATION).record(elapsed.as_secs_f64());
    metrics::counter!("tributary_fetched_bytes_total", "source" => source.clone())
        .increment(body_bytes as u64);
    if let Some(stats) = ingested {
        for (name, n) in [
            ("tributary_articles_ingested_total", stats.inserted),
            ("tributary_articles_updated_total", stats.updated),
            ("tributary_articles_deduplicated_total", stats.merged),
            ("tributary_articles_tombstoned_total", stats.tombstoned),
        ] {
            metrics::counter!(name, "source" => source.clone()).increment(n as u64);
        }
    }
}

/// Records one HTTP request; `route` is the matched route pattern (bounded
/// cardinality), never the raw path.
pub fn record_request(route: &'static str, status: u16, elapsed: Duration) {
    // Static labels: this runs on every request, the feeds' hot path.
    metrics::counter!(
        "tributary_http_requests_total",
        "route" => route,
        "status" => status_label(status)
    )
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(elapsed.as_secs_f64());
}

/// The statuses the server answers with, as static labels.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        304 => "304",
        400 => "400",
        404 => "404",
        405 => "405",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// Records connections the server closed or refused to stay within its
/// connection bound: `idle` (closed to make room for a new one), `busy`
/// (a new one refused: every open one had a request in flight),
/// `accept_error` (closed after running out of descriptors).
pub fn record_connections_shed(reason: &'static str, count: usize) {
    metrics::counter!("tributary_connections_shed_total", "reason" => reason)
        .increment(count as u64);
}

/// One webhook attempt of this process: delivered or failed. Names come
/// from the config only: a bounded label set.
pub fn record_webhook(webhook: &str, delivered: bool) {
    let name = match delivered {
        true => "tributary_webhook_delivered_total",
        false => "tributary_webhook_failures_total",
    };
    metrics::counter!(name, "webhook" => webhook.to_string()).increment(1);
}

/// One WebSub attempt of this process (`kind`: `distribution` to a
/// subscriber, `ping` to an external hub): delivered or failed.
pub fn record_websub(kind: &'static str, delivered: bool) {
    let name = match delivered {
        true => "tributary_websub_delivered_total",
        false => "tributary_websub_failures_total",
    };
    metrics::counter!(name, "kind" => kind).increment(1);
}

/// One intent verification of the hub: verified or refused.
pub fn record_websub_verification(verified: bool) {
    let outcome = if verified { "verified" } else { "refused" };
    metrics::counter!("tributary_websub_verifications_total", "outcome" => outcome).increment(1);
}

/// Records a panic of one of the daemon's tasks (`refresh`, `prune`).
pub fn record_panic(task: &'static str) {
    metrics::counter!("tributary_task_panics_total", "task" => task).increment(1);
}

/// Records one prune run.
pub fn record_prune(articles: u64, tombstones_expired: u64) {
    metrics::counter!("tributary_pruned_articles_total").increment(articles);
    metrics::counter!("tributary_tombstones_expired_total").increment(tombstones_expired);
}

/// The health a source is in, one of [`SOURCE_STATES`].
pub fn source_state(s: &crate::model::SourceState) -> &'static str {
    if !s.enabled || s.disabled_reason.is_some() {
        "disabled"
    } else if s.last_fetch_at.is_none() {
        "never_fetched"
    } else if s.consecutive_failures > 0 {
        "failing"
    } else {
        "ok"
    }
}

const SOURCE_STATES: [&str; 4] = ["ok", "failing", "disabled", "never_fetched"];

async fn render_states(
    store: &Store,
    now: DateTime<Utc>,
    out: &mut String,
) -> Result<(), StoreError> {
    let sources = store.source_states().await?;
    gauge_header(
        out,
        "tributary_sources",
        "Configured sources by state (ok, failing, disabled, never_fetched)",
    );
    for state in SOURCE_STATES {
        let n = sources.iter().filter(|s| source_state(s) == state).count();
        let _ = writeln!(out, "tributary_sources{{state=\"{state}\"}} {n}");
    }
    gauge_header(
        out,
        "tributary_sources_delayed",
        "Sources waiting out a backoff or a server's Retry-After",
    );
    let delayed = sources
        .iter()
        .filter(|s| {
            s.backoff_until.is_some_and(|t| t > now) || s.retry_after_until.is_some_and(|t| t > now)
        })
        .count();
    let _ = writeln!(out, "tributary_sources_delayed {delayed}");
    gauge_header(
        out,
        "tributary_sources_unstored",
        "Sources whose latest refresh the store could not write (a full disk, a lost connection)",
    );
    let health = store.write_health().await;
    let _ = writeln!(out, "tributary_sources_unstored {}", health.sources.len());
    gauge_header(
        out,
        "tributary_store_writes_failing",
        "1 while this process's writes fail (what makes /healthz answer 503 degraded), else 0",
    );
    let _ = writeln!(
        out,
        "tributary_store_writes_failing {}",
        u8::from(!health.is_ok())
    );
    gauge_header(out, "tributary_articles_stored", "Articles in the database");
    let _ = writeln!(
        out,
        "tributary_articles_stored {}",
        store.article_count().await?
    );
    let hooks = store.webhook_states().await?;
    if !hooks.is_empty() {
        gauge_header(
            out,
            "tributary_webhook_pending",
            "Webhook messages in the outbox not delivered yet (nor given up), by webhook",
        );
        for h in &hooks {
            let _ = writeln!(
                out,
                "tributary_webhook_pending{{webhook=\"{}\"}} {}",
                h.webhook, h.pending
            );
        }
        gauge_header(
            out,
            "tributary_webhook_failing",
            "Of the pending webhook messages, those whose last attempt failed, by webhook",
        );
        for h in &hooks {
            let _ = writeln!(
                out,
                "tributary_webhook_failing{{webhook=\"{}\"}} {}",
                h.webhook, h.failing
            );
        }
        gauge_header(
            out,
            "tributary_webhook_given_up",
            "Webhook messages given up after give_up_after, by webhook",
        );
        for h in &hooks {
            let _ = writeln!(
                out,
                "tributary_webhook_given_up{{webhook=\"{}\"}} {}",
                h.webhook, h.given_up
            );
        }
    }
    let hub = store.hub_state(now).await?;
    for (name, help, value) in [
        (
            "tributary_websub_subscriptions",
            "Subscriptions to this instance's WebSub hub whose lease runs",
            hub.subscriptions,
        ),
        (
            "tributary_websub_distributions_pending",
            "WebSub distributions to subscribers not delivered yet (nor given up)",
            hub.pending,
        ),
        (
            "tributary_websub_distributions_failing",
            "Of the pending WebSub distributions, those whose last attempt failed",
            hub.failing,
        ),
        (
            "tributary_websub_distributions_given_up",
            "WebSub distributions given up after give_up_after",
            hub.given_up,
        ),
    ] {
        gauge_header(out, name, help);
        let _ = writeln!(out, "{name} {value}");
    }
    let pool = store.pool_stats();
    gauge_header(
        out,
        "tributary_db_pool_connections",
        "Database pool connections by state (idle, in_use)",
    );
    let _ = writeln!(
        out,
        "tributary_db_pool_connections{{state=\"idle\"}} {}",
        pool.idle
    );
    let _ = writeln!(
        out,
        "tributary_db_pool_connections{{state=\"in_use\"}} {}",
        pool.size.saturating_sub(pool.idle)
    );
    gauge_header(
        out,
        "tributary_db_pool_max_connections",
        "Largest size of the database pool",
    );
    let _ = writeln!(out, "tributary_db_pool_max_connections {}", pool.max);
    Ok(())
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_errors_map_to_bounded_outcome_labels() {
        let cases = [
            (Err(FetchError::Timeout), "error_timeout"),
            (Err(FetchError::Connect("refused".into())), "error_connect"),
            (
                Err(FetchError::Status {
                    status: 503,
                    retry_after: None,
                }),
                "error_http",
            ),
            (
                Err(FetchError::Status {
                    status: 410,
                    retry_after: None,
                }),
                "error_gone",
            ),
            (Err(FetchError::TooLarge(10)), "error_too_large"),
            (Err(FetchError::TooManyRedirects), "error_redirects"),
        ];
        for (fetched, label) in cases {
            assert_eq!(fetch_outcome(&fetched), label);
        }
    }
}
