//! Full text for truncated feeds (a source's `full_text`, docs/CONFIG.md
//! "Full text"): an entry's article page fetched through the feeds' own
//! [`Fetcher`] (its `per_host` and global bounds, `timeout`, `max_body`,
//! User-Agent, redirect rules, no cookie jar), checked against the site's
//! robots.txt (RFC 9309), its main text extracted with `dom_smoothie` (a
//! port of Mozilla's Readability.js) and sanitized like any feed body. The
//! pipeline decides which entries get a page (new ones, a bounded number per
//! refresh) and keeps each page's outcome in the store.

use crate::config::{FullText, SourceRequest};
use crate::fetch::{AddressClass, FetchError, Fetched, Fetcher};
use crate::model::{Entry, PageOutcome, PageRecord};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// Most article pages one refresh fetches: a feed of 100 new entries costs
/// its site 10 page requests per refresh, and the rest follow on the next
/// refreshes (their entries keep the feed's text until then).
pub const PAGES_PER_REFRESH: usize = 10;

/// All page fetches of one refresh take at most this long: a source's
/// lease (`scheduler::lease_for`) gives a refresh 30 s beyond the feed's
/// own `timeout`. A page cut short is tried again later.
pub const PAGES_TIME: Duration = Duration::from_secs(20);

/// `full_text = "auto"`: an entry whose body has fewer characters of text
/// than this (or that has only a summary) is taken as truncated.
pub const AUTO_MIN_CHARS: usize = 1000;

/// A page that failed in a way that may pass (timeout, 429, 5xx, a lost
/// connection) is tried this many times in all, waiting
/// [`RETRY_BASE`] × 2ⁿ between tries; then the feed's text is final.
pub const MAX_ATTEMPTS: u32 = 4;
const RETRY_BASE: TimeDelta = TimeDelta::minutes(30);

/// Elements Readability scores at most: a bound on extraction CPU beside
/// `max_body` (a page with more is kept as the feed had it).
const MAX_ELEMENTS: usize = 30_000;

/// robots.txt is read once per origin and kept this long (RFC 9309 §2.4:
/// no longer than 24 hours); an unreachable one (§2.3.1.4: disallow all)
/// is asked again sooner.
const ROBOTS_TTL: TimeDelta = TimeDelta::hours(24);
const ROBOTS_RETRY: TimeDelta = TimeDelta::hours(1);
/// Origins whose robots.txt is kept in memory at once.
const ROBOTS_ORIGINS: usize = 1024;
/// The product token robots.txt groups are matched against.
const ROBOTS_AGENT: &str = "tributary";

/// What a site's robots.txt says, as cached.
#[derive(Clone)]
enum RobotsRules {
    /// No robots.txt (4xx): everything is allowed (RFC 9309 §2.3.1.3).
    AllowAll,
    /// Unreachable (5xx, timeout): nothing is (§2.3.1.4).
    DisallowAll,
    Rules(Arc<texting_robots::Robot>),
}

/// One article page to fetch.
pub struct PageRequest<'a> {
    pub url: &'a Url,
    /// The source's request settings (only its User-Agent and proxy apply).
    pub source: &'a SourceRequest,
    /// The most private address class the page may be at (the feed's).
    pub limit: AddressClass,
    /// Fetches of this page before this one.
    pub attempts: u32,
}

/// Fetches and extracts article pages; holds the robots.txt cache.
pub struct FullTexter {
    robots: Mutex<HashMap<String, (RobotsRules, DateTime<Utc>)>>,
    /// Longest wait for one page's extraction (`[daemon] parse_budget`).
    budget: Option<Duration>,
    strip_images: bool,
}

impl FullTexter {
    pub fn new(budget: Option<Duration>, strip_images: bool) -> FullTexter {
        FullTexter {
            robots: Mutex::new(HashMap::new()),
            budget,
            strip_images,
        }
    }

    /// Fetches `page` for `entry` and says what came
    /// of it: the extracted body when it has more text than the entry.
    /// Nothing here fails: every outcome is a record.
    pub async fn fetch_page(
        &self,
        fetcher: &Fetcher,
        page: PageRequest<'_>,
        entry: &Entry,
        now: DateTime<Utc>,
    ) -> PageRecord {
        let PageRequest {
            url,
            source: request,
            limit,
            attempts,
        } = page;
        let record = |outcome, status, error, retry| {
            page_record(url, attempts, now, outcome, status, error, retry)
        };
        // Pages are the feed's choice, not the operator's: the source's
        // headers and cookie stay with the feed; its User-Agent and proxy
        // apply.
        let request = SourceRequest {
            user_agent: request.user_agent.clone(),
            proxy: request.proxy.clone(),
            ..SourceRequest::default()
        };
        if !self.allowed(fetcher, url, &request, limit, now).await {
            let error = "disallowed by robots.txt".to_string();
            return record(PageOutcome::Disallowed, None, Some(error), false);
        }
        let fetched = fetcher.fetch_confined(url, limit, &request).await;
        match fetched {
            Ok(Fetched::Body {
                status,
                bytes,
                content_type,
                final_url,
                ..
            }) => {
                if !is_html(content_type.as_deref(), &bytes) {
                    let error = format!(
                        "not HTML ({})",
                        content_type.as_deref().unwrap_or("no content type")
                    );
                    return record(PageOutcome::NotHtml, Some(status), Some(error), false);
                }
                let base = crate::redact::without_credentials(&final_url);
                match self.extract(bytes, content_type, base).await {
                    Ok(Some(body)) if text_chars(&body) > entry_chars(entry) => PageRecord {
                        content: Some(body),
                        ..record(PageOutcome::Extracted, Some(status), None, false)
                    },
                    Ok(_) => record(PageOutcome::KeptFeed, Some(status), None, false),
                    Err(error) => record(PageOutcome::KeptFeed, Some(status), Some(error), false),
                }
            }
            Ok(Fetched::NotModified { .. }) => {
                // Sent without validators: a server that answers 304 anyway
                // gave nothing to read.
                let error = "304 to an unconditional request".to_string();
                record(PageOutcome::Failed, Some(304), Some(error), false)
            }
            Err(FetchError::TooLarge(max)) => {
                let error = format!("page larger than {max} bytes");
                record(PageOutcome::TooLarge, None, Some(error), false)
            }
            Err(FetchError::Status { status, .. }) => {
                let retry = status == 429 || status >= 500;
                let error = format!("HTTP {status}");
                record(PageOutcome::Failed, Some(status), Some(error), retry)
            }
            // Refused (an address more private than the feed's, a scheme
            // other than http(s)): final.
            Err(e @ FetchError::Other(_)) => {
                record(PageOutcome::Failed, None, Some(e.to_string()), false)
            }
            Err(e) => record(PageOutcome::Failed, None, Some(e.to_string()), true),
        }
    }

    /// Whether the site's robots.txt lets us fetch `url`; read once per
    /// origin and cached.
    async fn allowed(
        &self,
        fetcher: &Fetcher,
        url: &Url,
        request: &SourceRequest,
        limit: AddressClass,
        now: DateTime<Utc>,
    ) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let origin = url.origin().ascii_serialization();
        let cached = self.lock().get(&origin).cloned();
        let rules = match cached {
            Some((rules, until)) if until > now => rules,
            _ => {
                let (rules, ttl) = self.read_robots(fetcher, url, request, limit).await;
                let mut cache = self.lock();
                if cache.len() >= ROBOTS_ORIGINS {
                    cache.retain(|_, (_, until)| *until > now);
                    if cache.len() >= ROBOTS_ORIGINS {
                        cache.clear();
                    }
                }
                cache.insert(origin, (rules.clone(), now + ttl));
                rules
            }
        };
        match rules {
            RobotsRules::AllowAll => true,
            RobotsRules::DisallowAll => false,
            RobotsRules::Rules(robot) => robot.allowed(url.as_str()),
        }
    }

    async fn read_robots(
        &self,
        fetcher: &Fetcher,
        url: &Url,
        request: &SourceRequest,
        limit: AddressClass,
    ) -> (RobotsRules, TimeDelta) {
        let mut robots = url.clone();
        robots.set_path("/robots.txt");
        robots.set_query(None);
        robots.set_fragment(None);
        let fetched = fetcher.fetch_confined(&robots, limit, request).await;
        match fetched {
            Ok(Fetched::Body { bytes, .. }) => {
                match texting_robots::Robot::new(ROBOTS_AGENT, &bytes) {
                    Ok(robot) => (RobotsRules::Rules(Arc::new(robot)), ROBOTS_TTL),
                    // Unparseable: as good as none (§2.2: what cannot be
                    // read is ignored).
                    Err(_) => (RobotsRules::AllowAll, ROBOTS_TTL),
                }
            }
            Err(FetchError::Status { status, .. }) if (400..500).contains(&status) => {
                (RobotsRules::AllowAll, ROBOTS_TTL)
            }
            // Refused before any request (an address more private than the
            // feed's): the page's own fetch is refused the same way and
            // says so.
            Err(FetchError::Other(_)) => (RobotsRules::AllowAll, ROBOTS_RETRY),
            _ => (RobotsRules::DisallowAll, ROBOTS_RETRY),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (RobotsRules, DateTime<Utc>)>> {
        self.robots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page's main text as sanitized HTML, `None` when Readability
    /// finds no article. CPU work: on the blocking pool, waited for at most
    /// the parse budget.
    async fn extract(
        &self,
        bytes: bytes::Bytes,
        content_type: Option<String>,
        base: Url,
    ) -> Result<Option<String>, String> {
        let strip_images = self.strip_images;
        let work = tokio::task::spawn_blocking(move || {
            extract_main_text(&bytes, content_type.as_deref(), &base, strip_images)
        });
        let joined = match self.budget {
            Some(budget) => tokio::time::timeout(budget, work)
                .await
                .map_err(|_| "extraction: over the parse budget".to_string())?,
            None => work.await,
        };
        joined.map_err(|e| format!("extraction: {e}"))?
    }
}

/// The page at `url`, tried for the `attempts + 1`-th time at `now`,
/// came to `outcome`; `retry`: a failure that may pass, tried again later
/// unless this was the last of [`MAX_ATTEMPTS`].
fn page_record(
    url: &Url,
    attempts: u32,
    now: DateTime<Utc>,
    outcome: PageOutcome,
    status: Option<u16>,
    error: Option<String>,
    retry: bool,
) -> PageRecord {
    let attempts = attempts + 1;
    PageRecord {
        url: url.to_string(),
        outcome,
        status,
        error,
        content: None,
        attempts,
        fetched_at: now,
        next_attempt_at: (retry && attempts < MAX_ATTEMPTS)
            .then(|| now + RETRY_BASE * 2i32.pow(attempts - 1)),
    }
}

/// A page fetch cut short by the refresh's [`PAGES_TIME`]: retried later.
pub fn out_of_time(url: &Url, attempts: u32, now: DateTime<Utc>) -> PageRecord {
    let error = Some("timed out (the refresh's time for pages ran out)".to_string());
    page_record(url, attempts, now, PageOutcome::Failed, None, error, true)
}

/// Readability over one page: its main text, sanitized against `base`.
pub fn extract_main_text(
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
    strip_images: bool,
) -> Result<Option<String>, String> {
    let html = decode(bytes, content_type);
    let html = crate::parse::flatten_page(&html);
    let config = dom_smoothie::Config {
        max_elements_to_parse: MAX_ELEMENTS,
        ..Default::default()
    };
    let mut readability =
        dom_smoothie::Readability::new(html.as_ref(), Some(base.as_str()), Some(config))
            .map_err(|e| format!("extraction: {e}"))?;
    let article = match readability.parse() {
        Ok(article) => article,
        Err(dom_smoothie::ReadabilityError::GrabFailed) => return Ok(None),
        Err(e) => return Err(format!("extraction: {e}")),
    };
    let body = crate::parse::sanitize_body(&article.content, base, strip_images);
    if body.len() > crate::parse::limits::MAX_CONTENT_BYTES {
        return Err("extraction: body over the content cap".to_string());
    }
    Ok(Some(body).filter(|b| !b.trim().is_empty()))
}

/// Whether `mode` wants `entry`'s page.
pub fn wants_page(mode: FullText, entry: &Entry) -> bool {
    let has_link = entry
        .link
        .as_deref()
        .and_then(|l| Url::parse(l).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
    has_link
        && match mode {
            FullText::Never => false,
            FullText::Always => true,
            FullText::Auto => looks_truncated(entry),
        }
}

/// An entry with only a summary, or a body shorter than [`AUTO_MIN_CHARS`].
pub fn looks_truncated(entry: &Entry) -> bool {
    match &entry.content {
        None => true,
        Some(content) => text_chars(content) < AUTO_MIN_CHARS,
    }
}

/// Characters of text the entry carries: its body's, else its summary's.
fn entry_chars(entry: &Entry) -> usize {
    match (&entry.content, &entry.summary) {
        (Some(content), _) => text_chars(content),
        (None, Some(summary)) => summary.chars().filter(|c| !c.is_whitespace()).count(),
        (None, None) => 0,
    }
}

/// Characters of text (whitespace aside) in an HTML fragment.
fn text_chars(html: &str) -> usize {
    crate::text::html_to_text(html)
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// `text/html`, `application/xhtml+xml`, or no type and a body that opens
/// like HTML.
fn is_html(content_type: Option<&str>, bytes: &[u8]) -> bool {
    match content_type {
        Some(ct) => {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "text/html" || mime == "application/xhtml+xml"
        }
        None => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_lowercase();
            head.contains("<html") || head.contains("<!doctype html")
        }
    }
}

/// The page as text: the `charset` its Content-Type names, else a BOM or
/// UTF-8 (a `<meta charset>` other than UTF-8 is not looked for).
fn decode(bytes: &[u8], content_type: Option<&str>) -> String {
    let label = content_type.and_then(|ct| {
        ct.split(';')
            .filter_map(|p| p.trim().strip_prefix("charset="))
            .next()
            .map(|c| c.trim_matches('"').to_string())
    });
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(bytes).0.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(content: Option<&str>, summary: Option<&str>) -> Entry {
        Entry {
            link: Some("https://example.org/a".into()),
            content: content.map(String::from),
            summary: summary.map(String::from),
            ..Entry::default()
        }
    }

    #[test]
    fn auto_wants_pages_of_summaries_and_short_bodies_only() {
        let long = format!("<p>{}</p>", "word ".repeat(400));
        assert!(wants_page(FullText::Auto, &entry(None, Some("A teaser."))));
        assert!(wants_page(
            FullText::Auto,
            &entry(Some("<p>Short.</p>"), None)
        ));
        assert!(!wants_page(FullText::Auto, &entry(Some(&long), None)));
        assert!(wants_page(FullText::Always, &entry(Some(&long), None)));
        assert!(!wants_page(FullText::Never, &entry(None, None)));
        let no_link = Entry {
            link: None,
            ..entry(None, None)
        };
        assert!(!wants_page(FullText::Always, &no_link));
    }

    #[test]
    fn only_html_pages_are_read() {
        assert!(is_html(Some("text/html; charset=utf-8"), b""));
        assert!(is_html(Some("application/xhtml+xml"), b""));
        assert!(!is_html(Some("application/pdf"), b"%PDF"));
        assert!(is_html(None, b"<!DOCTYPE html><html>"));
        assert!(!is_html(None, b"\x89PNG"));
    }

    #[test]
    fn a_pages_charset_is_honoured() {
        let latin1 = b"<p>caf\xe9</p>";
        assert_eq!(
            decode(latin1, Some("text/html; charset=ISO-8859-1")),
            "<p>café</p>"
        );
        assert_eq!(decode("<p>café</p>".as_bytes(), None), "<p>café</p>");
    }
}
