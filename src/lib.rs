//! tributary: a feed aggregator daemon.
//!
//! # Layout
//! Data flows one way, and so do these modules' imports (no cycles:
//! `python3 ../shared/tools/modcycles.py src` checks):
//! - [`text`]: text helpers below every step: tag terms, folding,
//!   HTML-to-text, XML-illegal characters, the one XML/HTML escaper.
//! - [`clock`]: the time, injected (the system's, or one a test moves).
//! - [`config`]: the TOML file, validated into typed values.
//! - [`model`]: the types every step shares.
//! - [`fetch`]: one HTTP client, conditional GET, caps, bounded concurrency.
//! - [`parse`]: feed bytes -> entries (feed-rs, leniency, sanitizing).
//! - [`fulltext`]: an entry's article page -> its main text (robots.txt,
//!   Readability), for sources with `full_text`.
//! - [`rewrite`]: a source's rewrites of titles and links, before tagging.
//! - [`entities`]: automatic tags for the places, organizations and
//!   people an entry names (gazetteers compiled in), read by [`tag`].
//! - [`tag`]: tag terms and tag rules.
//! - [`rules`]: `[[rule]]`s that drop or keep entries, after tags.
//! - [`dedup`]: canonical URLs and article identity keys.
//! - [`cluster`]: near-duplicate texts (MinHash signatures, LSH band keys).
//! - [`redact`]: source URLs as they may be shown (no credentials).
//! - [`store`]: SQLite (and PostgreSQL) persistence behind one interface.
//! - [`publish`]: merged views rendered as Atom and JSON Feed.
//! - [`polling`]: when a source is fetched next: spread cron ticks, backoff, cache floors.
//! - [`scheduler`]: the loops: claims with leases, bounded fan-out, retention.
//! - [`pipeline`]: one source refresh: fetch -> parse -> tag -> dedup -> store.
//! - [`server`]: the axum routes.
//! - [`webhook`]: new articles POSTed to receivers from the store's outbox, signed.
//! - [`hub`]: WebSub publishing: pings to an external hub, or tributary as
//!   the hub of its own feeds (subscriptions verified, distributions signed).
//! - [`metrics`]: Prometheus counters and scrape-time states for `/metrics`.
//! - [`opml`]: OPML 2.0 import into the TOML config and export of the sources.
//! - [`supervise`]: panics of background tasks: logged, counted, restarted.
//! - [`app`]: `Application::build` / `run_until_stopped`, used by `run` and tests.
//! - [`cli`], [`shutdown`], [`telemetry`]: the binary's edges.
//! - [`notify`]: systemd readiness, status, reload and watchdog notices.

/// Test-only fault injection (`fault.rs`): panics here when a unit test
/// armed `$point` for `$key`; expands to nothing outside unit tests.
macro_rules! fault_point {
    ($point:literal, $key:expr) => {
        #[cfg(test)]
        $crate::fault::hit($point, $key);
    };
}

pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dedup;
pub mod entities;
#[cfg(test)]
mod fault;
pub mod fetch;
pub mod fulltext;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod opml;
pub mod parse;
pub mod pipeline;
pub mod polling;
pub mod publish;
pub mod redact;
pub mod rewrite;
pub mod rules;
pub mod scheduler;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod supervise;
pub mod tag;
pub mod telemetry;
pub mod text;
pub mod webhook;
pub mod websub;
