//! One source refresh, top to bottom: fetch -> parse -> tag -> dedup ->
//! store, and what the scheduler must know about the next one.

use crate::clock::Clock;
use crate::config::{Config, FullText, RuleAction, SourceConfig};
use crate::dedup;
use crate::fetch::{AddressClass, CacheHints, FetchError, Fetched, Fetcher, Validators};
use crate::fulltext::{self, FullTexter};
use crate::model::{NewArticle, ParsedFeed};
use crate::parse::{self, ParseError};
use crate::polling;
use crate::rules::{Rules, Verdict};
use crate::store::{Claimed, FetchRecord, IngestStats, PollFloor, Store, StoreError};
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
    /// `[entities]`: which sources get automatic entity tags, and their case.
    entities: crate::config::EntitiesConfig,
    /// `[[rule]]`s: which entries are dropped before the store.
    entry_rules: Rules,
    sources: HashMap<String, SourceConfig>,
    respect_cache_headers: bool,
    /// `[daemon] concurrency`, for the scheduler's fan-out bounds.
    concurrency: usize,
    parse_options: parse::ParseOptions,
    /// Article pages for sources with `full_text` (and robots.txt cache).
    full_texter: FullTexter,
    /// What time a refresh happens at, as stored and scheduled from.
    clock: Clock,
    /// `[websub] fallback_interval`: the least wait between polls of a
    /// source whose hub pushes to us.
    push_fallback: Duration,
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
    Ingested {
        entries: usize,
        stats: IngestStats,
        /// Entries `[[rule]]`s dropped (now, or remembered from before).
        dropped: usize,
    },
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
        Ok(Pipeline {
            store,
            fetcher: Fetcher::new(&config.daemon)?,
            rules: TagRules::new(&config.tag_rules).with_aliases(&config.tag_aliases),
            entities: config.entities,
            entry_rules: {
                let rules = Rules::new(&config.rules);
                // Every rule shows in /metrics from the start, at 0.
                let keeps = config.rules.iter().any(|r| r.action == RuleAction::Keep);
                let not_kept = keeps.then_some(crate::rules::NOT_KEPT);
                for name in rules.names().chain(not_kept) {
                    crate::metrics::record_rule_drops(name, 0);
                }
                rules
            },
            sources: config
                .sources
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect(),
            respect_cache_headers: config.daemon.respect_cache_headers,
            concurrency: config.daemon.concurrency,
            full_texter: FullTexter::new(
                Some(config.daemon.parse_budget),
                config.daemon.strip_remote_images,
            ),
            parse_options: parse::ParseOptions {
                strip_remote_images: config.daemon.strip_remote_images,
                budget: Some(config.daemon.parse_budget),
                remove_selectors: None,
                language: None,
                // `detect_languages`, for new entries only.
                defer_language_detection: true,
            },
            clock: Clock::system(),
            push_fallback: config.websub.fallback_interval,
        })
    }

    /// The same pipeline reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Pipeline {
        self.fetcher = self.fetcher.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many fetches run at once (`[daemon] concurrency`).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Refreshes one claimed source and records the outcome. Failures are
    /// part of the report, the store's included (`store_failed`); only a
    /// source this pipeline does not know is an error.
    // A warn-level span: its fields (the source) show on every line even
    // when only warnings are logged.
    #[tracing::instrument(name = "refresh", level = "warn", skip_all, fields(source = %claimed.name, url = %crate::redact::public_url(&claimed.url)))]
    pub async fn refresh_source(&self, claimed: &Claimed) -> Result<RefreshReport, StoreError> {
        let Some(config) = self.sources.get(&claimed.name) else {
            return Err(StoreError::UnknownSource(claimed.name.clone()));
        };
        fault_point!("refresh", &claimed.name);
        let started = std::time::Instant::now();
        let validators = Validators {
            etag: claimed.etag.clone(),
            last_modified: claimed.last_modified.clone(),
        };
        let fetched = match Url::parse(&claimed.url) {
            Ok(url) => {
                let allow = config.allow_private_redirects;
                self.fetcher
                    .fetch_for(&url, &validators, allow, &config.request)
                    .await
            }
            Err(e) => Err(FetchError::Other(format!("bad URL: {e}"))),
        };
        let now = self.clock.now();
        let mut outcome_label = crate::metrics::fetch_outcome(&fetched);
        let body_bytes = match &fetched {
            Ok(Fetched::Body { bytes, .. }) => bytes.len(),
            _ => 0,
        };
        let took = Took {
            elapsed: started.elapsed(),
            bytes: body_bytes as u64,
        };
        let status = match &fetched {
            Ok(Fetched::Body { status, .. }) => Some(*status),
            Ok(Fetched::NotModified { .. }) => Some(304),
            Err(FetchError::Status { status, .. }) => Some(*status),
            Err(_) => None,
        };
        // Failures counted in memory when the store could not take them.
        let unstored = self.store.unstored(&claimed.name);
        let claimed = &Claimed {
            consecutive_failures: unstored.as_ref().map_or(claimed.consecutive_failures, |f| {
                f.consecutive_failures.max(claimed.consecutive_failures)
            }),
            ..claimed.clone()
        };
        let counted = unstored.is_some();
        let report = match self
            .store_outcome(claimed, config, now, took, fetched, counted)
            .await
        {
            Ok(report) => {
                self.store.note_stored(&claimed.name);
                if matches!(report.outcome, Outcome::Failed(_)) && outcome_label == "ok" {
                    // A body was read but could not be used.
                    outcome_label = "error_parse";
                }
                report
            }
            Err(e) => {
                outcome_label = "error_store";
                self.store_failed(claimed, config, now, took, status, e)
                    .await
            }
        };
        let elapsed = started.elapsed();
        crate::metrics::record_refresh(
            &claimed.name,
            outcome_label,
            elapsed,
            body_bytes,
            match &report.outcome {
                Outcome::Ingested { stats, .. } => Some(stats),
                _ => None,
            },
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        match &report.outcome {
            // Logged as an error by `store_failed`.
            Outcome::Failed(_) if outcome_label == "error_store" => {}
            Outcome::Failed(error) => {
                tracing::warn!(status = ?report.status, error = %error, elapsed_ms, next = %report.next_fetch_at, "refresh failed")
            }
            Outcome::NotModified => {
                tracing::info!(status = 304, elapsed_ms, next = %report.next_fetch_at, "not modified")
            }
            Outcome::Ingested {
                entries,
                stats,
                dropped,
            } => tracing::info!(
                status = ?report.status,
                entries,
                dropped,
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

    /// Parses what was fetched and stores the outcome. `counted`: the
    /// source's failures are counted in memory (`claimed` carries them), so
    /// the stored count is replaced rather than counted on.
    async fn store_outcome(
        &self,
        claimed: &Claimed,
        config: &SourceConfig,
        now: DateTime<Utc>,
        took: Took,
        fetched: Result<Fetched, FetchError>,
        counted: bool,
    ) -> Result<RefreshReport, StoreError> {
        let report = match fetched {
            Ok(Fetched::NotModified {
                cache,
                permanent_redirect,
            }) => {
                // The floor the last 200 set holds; this response's own
                // cache headers, when it has any, refresh that part.
                let mut floor = claimed.poll_floor;
                floor.max_age = cache_interval(&cache, now).or(floor.max_age);
                let next = self.next_poll(claimed.id, config, now, &floor).await?;
                let record = FetchRecord {
                    at: now,
                    status: Some(304),
                    next_fetch_at: next,
                    moved_to: permanent_redirect.map(String::from),
                    poll_floor: Some(floor),
                    elapsed: took.elapsed,
                    bytes: took.bytes,
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
                peer,
                links,
            }) => {
                // Relative links resolve against what may be shown.
                let base = crate::redact::without_credentials(&final_url);
                let topic = base.to_string();
                let parsed = parse_off_thread(
                    bytes,
                    content_type,
                    base,
                    now,
                    self.parse_options_for(config),
                )
                .await;
                match parsed {
                    Ok(mut feed) => {
                        log_cuts(&claimed.name, &feed.cuts);
                        with_web_links(&mut feed.meta, links, topic);
                        // Pages may be no more private than the feed, unless
                        // the source allows private redirects.
                        let page_limit = if config.allow_private_redirects {
                            AddressClass::Loopback
                        } else {
                            peer.unwrap_or(AddressClass::Public)
                        };
                        self.complete(claimed.id, config, &mut feed, page_limit, now)
                            .await?;
                        let floor = PollFloor {
                            ttl: feed.meta.ttl,
                            max_age: cache_interval(&cache, now),
                        };
                        let next = self.next_poll(claimed.id, config, now, &floor).await?;
                        let entries = feed.entries.len();
                        let Prepared {
                            articles,
                            dropped,
                            remembered,
                        } = self
                            .prepare_judged(claimed.id, config, feed.entries, now)
                            .await?;
                        // A feed read in part: its entries are stored, the
                        // error is the source's, and the validators are not
                        // kept, so the next fetch gets the whole body again.
                        let warning = feed.warning.map(|w| format!("parse: {w}"));
                        if let Some(warning) = &warning {
                            tracing::warn!(error = %warning, "feed read in part");
                        }
                        let record = FetchRecord {
                            at: now,
                            status: Some(status),
                            error: warning.clone(),
                            next_fetch_at: next,
                            validators: warning
                                .is_none()
                                .then_some((validators.etag, validators.last_modified)),
                            moved_to: permanent_redirect.map(String::from),
                            feed: Some(feed.meta),
                            poll_floor: Some(floor),
                            elapsed: took.elapsed,
                            bytes: took.bytes,
                            ..FetchRecord::default()
                        };
                        let stats = self
                            .store
                            .ingest_owned(claimed.id, articles, &record)
                            .await?;
                        let dropped_now = dropped.len();
                        self.remember_drops(claimed.id, config, dropped, now)
                            .await?;
                        report(
                            claimed,
                            Some(status),
                            Outcome::Ingested {
                                entries,
                                stats,
                                dropped: dropped_now + remembered,
                            },
                            next,
                        )
                    }
                    Err(e) => {
                        // Validators are not kept: the next fetch gets the
                        // body again rather than a 304 for a feed never read.
                        let failure = Failure::new(Some(status), format!("parse: {e}"));
                        self.record_failure(claimed, config, now, took, failure, counted)
                            .await?
                    }
                }
            }
            Err(FetchError::Status { status: 410, .. }) => {
                let reason = "410 Gone: the publisher removed this feed".to_string();
                let failure = Failure {
                    disabled_reason: Some(reason.clone()),
                    ..Failure::new(Some(410), reason)
                };
                self.record_failure(claimed, config, now, took, failure, counted)
                    .await?
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
                self.record_failure(claimed, config, now, took, failure, counted)
                    .await?
            }
            Err(e) => {
                let failure = Failure::new(None, e.to_string());
                self.record_failure(claimed, config, now, took, failure, counted)
                    .await?
            }
        };
        Ok(report)
    }

    /// The store could not write this refresh (a full disk, a lost
    /// connection): the source failed. Logged and kept in memory, then
    /// stored as a failure if the store takes that much; else the lease
    /// runs out and the source is tried again then. Its validators stay as
    /// they were, so nothing fetched is skipped as unchanged next time.
    async fn store_failed(
        &self,
        claimed: &Claimed,
        config: &SourceConfig,
        now: DateTime<Utc>,
        took: Took,
        status: Option<u16>,
        e: StoreError,
    ) -> RefreshReport {
        tracing::error!(source = %claimed.name, error = %e, "storing the refresh failed");
        let error = format!("store: {e}");
        let failures = claimed.consecutive_failures + 1;
        self.store.note_unstored(
            &claimed.name,
            now,
            status,
            error.clone(),
            failures,
            !e.is_about_the_data(),
        );
        // A store-wide failure is not the source's fault: no backoff, the
        // next regular tick. Data the database refused will be refused
        // again: that backs off like any failure of the source.
        let regular = polling::next_tick(&config.schedule, &config.name, now);
        let backoff_until = e
            .is_about_the_data()
            .then(|| polling::backoff_until(&config.schedule, now, failures));
        let next = backoff_until.map_or(regular, |b| b.max(regular));
        let record = FetchRecord {
            at: now,
            status,
            error: Some(error.clone()),
            next_fetch_at: next,
            backoff_until,
            failed: true,
            consecutive_failures: Some(failures),
            elapsed: took.elapsed,
            bytes: took.bytes,
            ..FetchRecord::default()
        };
        if let Err(e) = self.store.record_fetch(claimed.id, &record).await {
            tracing::warn!(source = %claimed.name, error = %e, "the failure could not be stored either; kept in memory");
        }
        report(claimed, status, Outcome::Failed(error), next)
    }

    /// A refresh of `claimed` panicked (a bug in tributary): logged, counted
    /// and recorded as the source's failure like any other, which releases
    /// its lease; it backs off, since the same feed would panic again. If
    /// even that cannot be stored, it is kept in memory as `store_failed`
    /// keeps any unstored refresh.
    pub async fn record_crash(&self, claimed: &Claimed, panic: &str) -> RefreshReport {
        let now = self.clock.now();
        let error = format!("internal error: {panic}");
        tracing::error!(source = %claimed.name, error = %error, "refresh panicked");
        crate::metrics::record_panic("refresh");
        crate::metrics::record_refresh(&claimed.name, "error_internal", Duration::ZERO, 0, None);
        let Some(config) = self.sources.get(&claimed.name) else {
            // Claimed with this pipeline, so configured in it: unreachable.
            return report(claimed, None, Outcome::Failed(error), now);
        };
        let failure = Failure::new(None, error);
        match self
            .record_failure(claimed, config, now, Took::default(), failure, false)
            .await
        {
            Ok(report) => report,
            Err(e) => {
                self.store_failed(claimed, config, now, Took::default(), None, e)
                    .await
            }
        }
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
            .map(|entry| self.prepare_one(config, entry).0)
            .collect()
    }

    /// One entry rewritten, tagged (with each tag's origin) and keyed; and
    /// the categories the feed gave it, which only the `[[rule]]`s still
    /// read (identity and text hashes do not).
    fn prepare_one(
        &self,
        config: &SourceConfig,
        entry: crate::model::Entry,
    ) -> (NewArticle, Vec<String>) {
        let mut entry = crate::rewrite::apply(config, entry);
        let (tags, origins) = self
            .rules
            .tagged_with(
                &entry,
                &config.name,
                &config.tags,
                self.entities
                    .for_source(config)
                    .then_some(self.entities.case),
            )
            .into_iter()
            .unzip();
        let categories = std::mem::take(&mut entry.categories);
        let mut article = dedup::prepare(&config.name, entry, tags);
        article.tag_origins = origins;
        (article, categories)
    }

    /// [`Pipeline::prepare`], then the `[[rule]]`s: what is stored, and what
    /// they dropped. An entry remembered as dropped under the same rules
    /// with the same text is not judged again (docs/CONFIG.md "Rules").
    async fn prepare_judged(
        &self,
        source_id: i64,
        config: &SourceConfig,
        entries: Vec<crate::model::Entry>,
        now: DateTime<Utc>,
    ) -> Result<Prepared, StoreError> {
        let Some(rules) = self.entry_rules.fingerprint(&config.name) else {
            return Ok(Prepared {
                articles: self.prepare(config, entries),
                dropped: Vec::new(),
                remembered: 0,
            });
        };
        // Keys first, then one lookup of the remembered drops.
        let ready: Vec<(NewArticle, Vec<String>)> = entries
            .into_iter()
            .map(|entry| self.prepare_one(config, entry))
            .collect();
        let keys: Vec<&str> = ready.iter().map(|(a, ..)| a.entry_key.as_str()).collect();
        let known = self
            .store
            .remembered_drops(source_id, &rules, &keys)
            .await?;
        let mut prepared = Prepared {
            articles: Vec::with_capacity(ready.len()),
            dropped: Vec::new(),
            remembered: 0,
        };
        for (article, categories) in ready {
            if known.get(&article.entry_key) == Some(&article.fingerprint) {
                prepared.remembered += 1;
                continue;
            }
            match self
                .entry_rules
                .judge_new(&config.name, &article, &categories, now)
            {
                Verdict::Dropped { rule, why } => {
                    prepared.dropped.push(crate::model::DroppedEntry {
                        entry_key: article.entry_key,
                        fingerprint: article.fingerprint,
                        canonical_url: article.canonical_url,
                        link: article.link,
                        title: article.title,
                        rule,
                        why,
                    });
                }
                Verdict::Passed | Verdict::Kept { .. } => prepared.articles.push(article),
            }
        }
        Ok(prepared)
    }

    /// Remembers this refresh's new drops and counts them per rule.
    async fn remember_drops(
        &self,
        source_id: i64,
        config: &SourceConfig,
        dropped: Vec<crate::model::DroppedEntry>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(rules) = self.entry_rules.fingerprint(&config.name) else {
            return Ok(());
        };
        for drop in &dropped {
            crate::metrics::record_rule_drops(&drop.rule, 1);
        }
        if !dropped.is_empty() {
            tracing::info!(dropped = dropped.len(), "entries dropped by rules");
        }
        self.store
            .remember_drops(source_id, &rules, &dropped, now)
            .await
    }

    /// Full text (docs/CONFIG.md "Full text"), before tags, rules and
    /// dedup so they all see full bodies. An entry whose page was extracted
    /// before gets that body again without a request; a new entry that
    /// wants its page (the source's `full_text`) gets it fetched, and so
    /// does one whose page failed and is due again; at most
    /// [`fulltext::PAGES_PER_REFRESH`] pages per refresh, one at a time
    /// (the site's other pages wait for the next refresh). Page failures
    /// are the pages' (kept in the store), never the source's.
    async fn full_text(
        &self,
        source_id: i64,
        config: &SourceConfig,
        entries: &mut [crate::model::Entry],
        stored: Stored<'_>,
        limit: AddressClass,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if config.full_text == FullText::Never {
            return Ok(());
        }
        // Each wanted page: (entry index, page URL, entry key). The URL is
        // the link after `rewrite_link`, as the article will link to it.
        let wanted: Vec<(usize, Url, &str)> = entries
            .iter()
            .zip(stored.keys)
            .enumerate()
            .filter_map(|(i, (entry, key))| {
                let (link, key) = key.as_ref()?;
                let probe = crate::model::Entry {
                    link: link.clone(),
                    ..Default::default()
                };
                let wants = fulltext::wants_page(config.full_text, entry)
                    && fulltext::wants_page(FullText::Always, &probe);
                if !wants {
                    return None;
                }
                let url = Url::parse(link.as_deref()?).ok()?;
                Some((i, url, key.as_str()))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let urls: Vec<&str> = wanted.iter().map(|(_, url, _)| url.as_str()).collect();
        let pages = self.store.article_pages(source_id, &urls).await?;
        let known = stored.known;
        let mut to_fetch = Vec::new();
        // One fetch per page: another entry with the same link gets the
        // body from the stored page on the next refresh.
        let mut queued = std::collections::HashSet::new();
        for (i, url, key) in wanted {
            // Tries of this page so far, and the page as read before when
            // this is a re-read, when it is to be fetched now.
            let page = pages.get(url.as_str());
            if let Some(content) = page.and_then(|page| page.content.as_ref()) {
                entries[i].content = Some(content.clone());
            }
            let fetch = match page {
                Some(page) if fulltext::wants_reread(&entries[i], page, now) => {
                    let retrying = page.next_attempt_at.is_some();
                    Some((if retrying { page.attempts } else { 0 }, Some(page)))
                }
                Some(page) if page.content.is_some() => None,
                Some(page) if page.next_attempt_at.is_some_and(|at| at <= now) => {
                    Some((page.attempts, None))
                }
                // Final, or backing off.
                Some(_) => None,
                None if !known.contains_key(key) => Some((0, None)),
                // Stored before `full_text` was set: not fetched.
                None => None,
            };
            if let Some((attempts, read_before)) = fetch {
                if queued.insert(url.clone()) {
                    to_fetch.push((i, url, attempts, read_before));
                }
            }
        }
        let mut records = Vec::new();
        let deadline = tokio::time::Instant::now() + fulltext::PAGES_TIME;
        for (i, url, attempts, read_before) in
            to_fetch.into_iter().take(fulltext::PAGES_PER_REFRESH)
        {
            let page = fulltext::PageRequest {
                url: &url,
                source: &config.request,
                limit,
                attempts,
                read_before,
            };
            let fetch = self
                .full_texter
                .fetch_page(&self.fetcher, page, &entries[i], now);
            let record = match tokio::time::timeout_at(deadline, fetch).await {
                Ok(record) => record,
                Err(_) => fulltext::out_of_time(page, &entries[i], now),
            };
            let out_of_time = tokio::time::Instant::now() >= deadline;
            metrics::counter!(
                "tributary_article_pages_total",
                "source" => config.name.clone(),
                "outcome" => record.outcome.as_str()
            )
            .increment(1);
            match &record.content {
                Some(body) => entries[i].content = Some(body.clone()),
                None => tracing::info!(
                    page = %url,
                    outcome = record.outcome.as_str(),
                    error = ?record.error,
                    "article page kept the feed's text"
                ),
            }
            records.push(record);
            if out_of_time {
                break;
            }
        }
        if !records.is_empty() {
            let extracted = records.iter().filter(|r| r.content.is_some()).count();
            tracing::info!(pages = records.len(), extracted, "article pages fetched");
        }
        self.store.record_pages(source_id, &records).await
    }

    /// What a parsed feed (polled or pushed) gets before it is judged: dates
    /// for a first fetch's undated backlog, languages for new entries that
    /// state none, and full text (pages at most as private as `page_limit`).
    async fn complete(
        &self,
        source_id: i64,
        config: &SourceConfig,
        feed: &mut ParsedFeed,
        page_limit: AddressClass,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.date_backlog(source_id, feed, now).await?;
        // The entry keys and their lookup serve only these two steps.
        let needed = config.full_text != FullText::Never
            || feed.entries.iter().any(|entry| entry.language.is_none());
        if !needed {
            return Ok(());
        }
        let keys = entry_keys(config, &feed.entries);
        let lookup: Vec<&str> = keys.iter().flatten().map(|(_, key)| key.as_str()).collect();
        let known = self.store.known_entries(source_id, &lookup).await?;
        let entries = std::mem::take(&mut feed.entries);
        feed.entries = detect_languages(entries, &keys, &known).await?;
        let stored = Stored {
            keys: &keys,
            known: &known,
        };
        self.full_text(
            source_id,
            config,
            &mut feed.entries,
            stored,
            page_limit,
            now,
        )
        .await
    }

    /// The daemon's parse options with this source's own.
    fn parse_options_for(&self, source: &SourceConfig) -> parse::ParseOptions {
        parse::ParseOptions {
            remove_selectors: source.remove_selectors.clone(),
            language: source.language.clone(),
            ..self.parse_options.clone()
        }
    }

    /// On a source's first fetch, its undated entries are a backlog: they
    /// get dates below the feed's dated ones (see `parse::date_backlog`)
    /// instead of the fetch time. Later, an undated entry is new and keeps
    /// the time it was first seen.
    async fn date_backlog(
        &self,
        source_id: i64,
        feed: &mut ParsedFeed,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if feed.entries.iter().all(|e| e.published.is_some())
            || self.store.source_has_articles(source_id).await?
        {
            return Ok(());
        }
        parse::date_backlog(feed, now);
        Ok(())
    }

    async fn record_failure(
        &self,
        claimed: &Claimed,
        config: &SourceConfig,
        now: DateTime<Utc>,
        took: Took,
        failure: Failure,
        counted: bool,
    ) -> Result<RefreshReport, StoreError> {
        let Failure {
            status,
            error,
            retry_after,
            failed,
            disabled_reason,
        } = failure;
        let failures = claimed.consecutive_failures + i64::from(failed);
        let regular = polling::next_tick(&config.schedule, &config.name, now);
        let backoff_until = failed.then(|| polling::backoff_until(&config.schedule, now, failures));
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
            consecutive_failures: counted.then_some(failures),
            elapsed: took.elapsed,
            bytes: took.bytes,
            ..FetchRecord::default()
        };
        self.store.record_fetch(claimed.id, &record).await?;
        Ok(report(claimed, status, Outcome::Failed(error), next))
    }

    /// [`Pipeline::next_fetch`], no sooner than `[websub]
    /// fallback_interval` when a hub pushes this source to us.
    async fn next_poll(
        &self,
        source_id: i64,
        config: &SourceConfig,
        now: DateTime<Utc>,
        floor: &PollFloor,
    ) -> Result<DateTime<Utc>, StoreError> {
        let next = self.next_fetch(config, now, floor);
        if !self.store.websub_pushed(source_id, now).await? {
            return Ok(next);
        }
        let fallback =
            chrono::TimeDelta::from_std(self.push_fallback).unwrap_or(chrono::TimeDelta::MAX);
        Ok(next.max(now.checked_add_signed(fallback).unwrap_or(next)))
    }

    /// Entries a WebSub hub pushed for `source`: parsed, completed, tagged,
    /// judged by the rules, deduplicated and stored as a poll's are (the
    /// same steps, shared), without touching the source's fetch state.
    pub async fn ingest_pushed(
        &self,
        source: &str,
        bytes: bytes::Bytes,
        content_type: Option<String>,
    ) -> Result<PushReport, PushError> {
        let Some(config) = self.sources.get(source) else {
            return Err(StoreError::UnknownSource(source.to_string()).into());
        };
        let source_id = self.store.source_id(source).await?;
        let now = self.clock.now();
        let base = crate::redact::without_credentials(&config.url);
        let mut feed = parse_off_thread(
            bytes,
            content_type,
            base,
            now,
            self.parse_options_for(config),
        )
        .await
        .map_err(|e| PushError::Parse(e.to_string()))?;
        log_cuts(source, &feed.cuts);
        // The pages of a pushed feed: no more private than a public feed's.
        let page_limit = if config.allow_private_redirects {
            AddressClass::Loopback
        } else {
            AddressClass::Public
        };
        self.complete(source_id, config, &mut feed, page_limit, now)
            .await?;
        let entries = feed.entries.len();
        let Prepared {
            articles, dropped, ..
        } = self
            .prepare_judged(source_id, config, feed.entries, now)
            .await?;
        let record = FetchRecord {
            at: now,
            next_fetch_at: now,
            pushed: true,
            ..FetchRecord::default()
        };
        let stats = self
            .store
            .ingest_owned(source_id, articles, &record)
            .await?;
        self.remember_drops(source_id, config, dropped, now).await?;
        Ok(PushReport { entries, stats })
    }

    fn next_fetch(
        &self,
        config: &SourceConfig,
        now: DateTime<Utc>,
        floor: &PollFloor,
    ) -> DateTime<Utc> {
        let regular = polling::next_tick(&config.schedule, &config.name, now);
        if !self.respect_cache_headers {
            return regular;
        }
        polling::apply_cache_floor(regular, now, floor)
    }
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PushReport {
    pub entries: usize,
    pub stats: IngestStats,
}

/// Why a push stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("parse: {0}")]
    Parse(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The WebSub hubs and topic of a fetched feed: the `Link` headers' first
/// (the spec's order of discovery), then the document's; the topic is the
/// `self` link, else the URL fetched.
fn with_web_links(
    meta: &mut crate::model::FeedMeta,
    links: crate::fetch::WebLinks,
    fetched: String,
) {
    let mut hubs = links.hubs;
    for hub in std::mem::take(&mut meta.hubs) {
        if !hubs.contains(&hub) {
            hubs.push(hub);
        }
    }
    meta.hubs = hubs;
    meta.self_url = links.self_url.or(meta.self_url.take()).or(Some(fetched));
}

/// What a fetch cost, for the source's history.
#[derive(Debug, Clone, Copy, Default)]
struct Took {
    elapsed: Duration,
    bytes: u64,
}

/// How long the response may be cached, as an interval: `max-age`, else
/// `Expires` from now.
fn cache_interval(cache: &CacheHints, now: DateTime<Utc>) -> Option<Duration> {
    cache
        .max_age
        .or_else(|| cache.expires.and_then(|e| (e - now).to_std().ok()))
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

/// A refresh's entries once judged by the `[[rule]]`s.
struct Prepared {
    articles: Vec<NewArticle>,
    /// Dropped now (remembered and counted after the ingest).
    dropped: Vec<crate::model::DroppedEntry>,
    /// Skipped as dropped before, unchanged.
    remembered: usize,
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

/// What the store has of a refresh's entries: each entry's key (with its
/// link after the source's rewrites), and the stored entries' languages by
/// key.
#[derive(Clone, Copy)]
struct Stored<'a> {
    keys: &'a [Option<(Option<String>, String)>],
    known: &'a HashMap<String, Option<String>>,
}

/// Each entry's link after `rewrite_link` and its key as the store will
/// know it (`None`: an entry without id or link).
fn entry_keys(
    config: &SourceConfig,
    entries: &[crate::model::Entry],
) -> Vec<Option<(Option<String>, String)>> {
    entries
        .iter()
        .map(|entry| {
            let rewritten = crate::rewrite::apply(
                config,
                crate::model::Entry {
                    guid: entry.guid.clone(),
                    link: entry.link.clone(),
                    ..Default::default()
                },
            );
            let key = dedup::entry_key(&rewritten)?;
            Some((rewritten.link, key))
        })
        .collect()
}

/// Languages for the entries that state none and are new to the store
/// (stored ones keep the language they have, and vote for the feed's), on
/// the blocking pool: whatlang's scoring is most of a parse's CPU.
async fn detect_languages(
    mut entries: Vec<crate::model::Entry>,
    keys: &[Option<(Option<String>, String)>],
    known: &HashMap<String, Option<String>>,
) -> Result<Vec<crate::model::Entry>, StoreError> {
    if entries.iter().all(|entry| entry.language.is_some()) {
        return Ok(entries);
    }
    let is_known: Vec<bool> = keys
        .iter()
        .map(|key| key.as_ref().is_some_and(|(_, key)| known.contains_key(key)))
        .collect();
    if is_known.iter().all(|&known| known) {
        return Ok(entries);
    }
    let stored: Vec<String> = known.values().flatten().cloned().collect();
    let _core = cpu_work().acquire().await;
    let detect = tokio::task::spawn_blocking(move || {
        let stored: Vec<&str> = stored.iter().map(String::as_str).collect();
        // A panic in detection leaves the entries without a language.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            parse::detect_new_languages(&mut entries, &is_known, &stored)
        }));
        entries
    });
    // The blocking pool drops the task only when the runtime shuts down:
    // nothing of this refresh is stored then.
    detect.await.map_err(|_| StoreError::Interrupted)
}

/// Permits for refreshes' CPU work on the blocking pool (parsing, language
/// detection), one per core, shared by every pipeline of the process.
/// Unbounded, every refresh in flight parsed at once, each on a blocking
/// thread of its own: no faster on these cores, and each thread's stack,
/// allocator cache and half-built feed stayed resident (BENCHMARKS.md,
/// "Memory of a SQLite ingest": 81 threads, a quarter of the peak).
fn cpu_work() -> &'static tokio::sync::Semaphore {
    static CPU_WORK: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    CPU_WORK.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
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
    let _core = cpu_work().acquire().await;
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
