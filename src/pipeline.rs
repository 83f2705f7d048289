//! One source refresh, top to bottom: fetch -> parse -> tag -> dedup ->
//! store, and what the scheduler must know about the next one.

use crate::config::{Config, SourceConfig};
use crate::dedup;
use crate::fetch::{CacheHints, FetchError, Fetched, Fetcher, Validators};
use crate::model::{NewArticle, ParsedFeed};
use crate::parse::{self, ParseError};
use crate::scheduler;
use crate::store::{Claimed, FetchRecord, IngestStats, Store, StoreError};
use crate::tag::TagRules;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;
use url::Url;

/// Everything a refresh needs, built once from the config.
pub struct Pipeline {
    store: Store,
    fetcher: Fetcher,
    rules: TagRules,
    sources: HashMap<String, SourceConfig>,
    respect_cache_headers: bool,
    /// `[daemon] concurrency`, for the scheduler's fan-out bounds.
    concurrency: usize,
    parse_options: parse::ParseOptions,
}

/// What one refresh did, for logs and `tributary fetch`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshReport {
    pub source: String,
    pub status: Option<u16>,
    pub outcome: Outcome,
    pub next_fetch_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ingested { entries: usize, stats: IngestStats },
    NotModified,
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("fetch: {0}")]
    Fetch(#[from] FetchError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Pipeline {
    pub fn new(config: &Config, store: Store) -> Result<Pipeline, PipelineError> {
        // Refreshes record metrics: the recorder must exist before the first.
        crate::metrics::install();
        Ok(Pipeline {
            store,
            fetcher: Fetcher::new(&config.daemon)?,
            rules: TagRules::new(&config.tag_rules).with_aliases(&config.tag_aliases),
            sources: config
                .sources
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect(),
            respect_cache_headers: config.daemon.respect_cache_headers,
            concurrency: config.daemon.concurrency,
            parse_options: parse::ParseOptions {
                strip_remote_images: config.daemon.strip_remote_images,
            },
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many fetches run at once (`[daemon] concurrency`).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Refreshes one claimed source and records the outcome. Failures of the
    /// source are part of the report; only a failing database is an error.
    #[tracing::instrument(name = "refresh", skip_all, fields(source = %claimed.name, url = %claimed.url))]
    pub async fn refresh_source(&self, claimed: &Claimed) -> Result<RefreshReport, StoreError> {
        let Some(config) = self.sources.get(&claimed.name) else {
            return Err(StoreError::UnknownSource(claimed.name.clone()));
        };
        let started = Utc::now();
        let validators = Validators {
            etag: claimed.etag.clone(),
            last_modified: claimed.last_modified.clone(),
        };
        let fetched = match Url::parse(&claimed.url) {
            Ok(url) => self.fetcher.fetch(&url, &validators).await,
            Err(e) => Err(FetchError::Other(format!("bad URL: {e}"))),
        };
        let now = Utc::now();
        let fetch_outcome = crate::metrics::fetch_outcome(&fetched);
        let body_bytes = match &fetched {
            Ok(Fetched::Body { bytes, .. }) => bytes.len(),
            _ => 0,
        };
        let report = match fetched {
            Ok(Fetched::NotModified {
                cache,
                permanent_redirect,
            }) => {
                let next = self.next_fetch(config, now, &cache, None);
                let record = FetchRecord {
                    at: now,
                    status: Some(304),
                    next_fetch_at: next,
                    moved_to: permanent_redirect.map(String::from),
                    ..FetchRecord::default()
                };
                self.store.record_fetch(claimed.id, &record).await?;
                report(claimed, Some(304), Outcome::NotModified, next)
            }
            Ok(Fetched::Body {
                status,
                bytes,
                content_type,
                validators,
                final_url,
                permanent_redirect,
                cache,
            }) => {
                let parsed =
                    parse_off_thread(bytes, content_type, final_url, now, self.parse_options).await;
                match parsed {
                    Ok(feed) => {
                        log_cuts(&claimed.name, &feed.cuts);
                        let next = self.next_fetch(config, now, &cache, feed.meta.ttl);
                        let entries = feed.entries.len();
                        let articles = self.prepare(config, feed.entries);
                        let record = FetchRecord {
                            at: now,
                            status: Some(status),
                            next_fetch_at: next,
                            validators: Some((validators.etag, validators.last_modified)),
                            moved_to: permanent_redirect.map(String::from),
                            feed: Some(feed.meta),
                            ..FetchRecord::default()
                        };
                        let stats = self
                            .store
                            .ingest_owned(claimed.id, articles, &record)
                            .await?;
                        report(
                            claimed,
                            Some(status),
                            Outcome::Ingested { entries, stats },
                            next,
                        )
                    }
                    Err(e) => {
                        // Validators are not kept: the next fetch gets the
                        // body again rather than a 304 for a feed never read.
                        let failure = Failure::new(Some(status), format!("parse: {e}"));
                        self.record_failure(claimed, config, now, failure).await?
                    }
                }
            }
            Err(FetchError::Status { status: 410, .. }) => {
                let reason = "410 Gone: the publisher removed this feed".to_string();
                let failure = Failure {
                    disabled_reason: Some(reason.clone()),
                    ..Failure::new(Some(410), reason)
                };
                self.record_failure(claimed, config, now, failure).await?
            }
            Err(FetchError::Status {
                status,
                retry_after,
            }) => {
                let failure = Failure {
                    retry_after,
                    // A 429 is the server pacing us, not the source failing.
                    failed: status != 429,
                    ..Failure::new(Some(status), format!("HTTP {status}"))
                };
                self.record_failure(claimed, config, now, failure).await?
            }
            Err(e) => {
                let failure = Failure::new(None, e.to_string());
                self.record_failure(claimed, config, now, failure).await?
            }
        };
        let elapsed = (Utc::now() - started).to_std().unwrap_or_default();
        crate::metrics::record_refresh(
            &claimed.name,
            fetch_outcome,
            elapsed,
            body_bytes,
            &report.outcome,
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        match &report.outcome {
            Outcome::Failed(error) => {
                tracing::warn!(status = ?report.status, error = %error, elapsed_ms, next = %report.next_fetch_at, "refresh failed")
            }
            Outcome::NotModified => {
                tracing::info!(status = 304, elapsed_ms, next = %report.next_fetch_at, "not modified")
            }
            Outcome::Ingested { entries, stats } => tracing::info!(
                status = ?report.status,
                entries,
                inserted = stats.inserted,
                updated = stats.updated,
                merged = stats.merged,
                elapsed_ms,
                next = %report.next_fetch_at,
                "ingested"
            ),
        }
        Ok(report)
    }

    /// What a refresh of `config` stores for these parsed entries: tagged
    /// (with each tag's origin) and keyed for dedup.
    pub fn prepare(
        &self,
        config: &SourceConfig,
        entries: Vec<crate::model::Entry>,
    ) -> Vec<NewArticle> {
        entries
            .into_iter()
            .map(|entry| {
                let (tags, origins) = self
                    .rules
                    .tagged(&entry, &config.name, &config.tags)
                    .into_iter()
                    .unzip();
                let mut article = dedup::prepare(&config.name, entry, tags);
                article.tag_origins = origins;
                article
            })
            .collect()
    }

    async fn record_failure(
        &self,
        claimed: &Claimed,
        config: &SourceConfig,
        now: DateTime<Utc>,
        failure: Failure,
    ) -> Result<RefreshReport, StoreError> {
        let Failure {
            status,
            error,
            retry_after,
            failed,
            disabled_reason,
        } = failure;
        let failures = claimed.consecutive_failures + i64::from(failed);
        let regular = scheduler::next_tick(&config.schedule, &config.name, now);
        let backoff_until =
            failed.then(|| scheduler::backoff_until(&config.schedule, now, failures));
        let next = [Some(regular), backoff_until, retry_after]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(regular);
        let record = FetchRecord {
            at: now,
            status,
            error: Some(error.clone()),
            next_fetch_at: next,
            retry_after_until: retry_after,
            backoff_until,
            failed,
            disabled_reason,
            ..FetchRecord::default()
        };
        self.store.record_fetch(claimed.id, &record).await?;
        Ok(report(claimed, status, Outcome::Failed(error), next))
    }

    fn next_fetch(
        &self,
        config: &SourceConfig,
        now: DateTime<Utc>,
        cache: &CacheHints,
        ttl: Option<Duration>,
    ) -> DateTime<Utc> {
        let regular = scheduler::next_tick(&config.schedule, &config.name, now);
        if !self.respect_cache_headers {
            return regular;
        }
        scheduler::apply_cache_floor(regular, now, cache, ttl)
    }
}

fn report(
    claimed: &Claimed,
    status: Option<u16>,
    outcome: Outcome,
    next_fetch_at: DateTime<Utc>,
) -> RefreshReport {
    RefreshReport {
        source: claimed.name.clone(),
        status,
        outcome,
        next_fetch_at,
    }
}

/// A refresh that stored nothing, as `record_failure` takes it.
struct Failure {
    status: Option<u16>,
    error: String,
    /// When the server asked us to come back (429/503 `Retry-After`).
    retry_after: Option<DateTime<Utc>>,
    /// Counts toward backoff.
    failed: bool,
    /// Stops the source (410 Gone).
    disabled_reason: Option<String>,
}

impl Failure {
    fn new(status: Option<u16>, error: String) -> Failure {
        Failure {
            status,
            error,
            retry_after: None,
            failed: true,
            disabled_reason: None,
        }
    }
}

/// Parsing is CPU work: it runs on the blocking pool, off the async
/// workers, and a panic in it stays there (it becomes this source's error).
async fn parse_off_thread(
    bytes: bytes::Bytes,
    content_type: Option<String>,
    base: Url,
    now: DateTime<Utc>,
    opts: parse::ParseOptions,
) -> Result<ParsedFeed, ParseError> {
    tokio::task::spawn_blocking(move || {
        parse::parse_feed_with(&bytes, content_type.as_deref(), &base, now, opts)
    })
    .await
    .unwrap_or_else(|join_error| Err(ParseError::Panic(join_error.to_string())))
}

/// Fields cut to their caps (`parse::limits`): one warning per refresh
/// that had any, and a counter per field.
fn log_cuts(source: &str, cuts: &[crate::model::FieldCut]) {
    let Some(longest) = cuts.iter().max_by_key(|c| c.length) else {
        return;
    };
    for cut in cuts {
        metrics::counter!(
            "tributary_fields_cut_total",
            "source" => source.to_string(),
            "field" => cut.field
        )
        .increment(1);
    }
    tracing::warn!(
        cuts = cuts.len(),
        field = longest.field,
        entry = ?longest.entry,
        length = longest.length,
        "fields over their caps were cut (the longest named)"
    );
}
