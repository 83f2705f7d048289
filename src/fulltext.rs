//! Full text for truncated feeds (a source's `full_text`, docs/CONFIG.md
//! "Full text"): an entry's article page fetched through the feeds' own
//! [`Fetcher`] (its `per_host` and global bounds, `timeout`, `max_body`,
//! User-Agent, redirect rules, no cookie jar), checked against the site's
//! robots.txt (RFC 9309), its main text extracted with `dom_smoothie` (a
//! port of Mozilla's Readability.js) and sanitized like any feed body. The
//! pipeline decides which entries get a page (new ones, a bounded number per
//! refresh) and keeps each page's outcome in the store.

use crate::config::{FullText, SourceRequest};
use crate::fetch::{AddressClass, FetchError, Fetched, Fetcher, Validators};
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

/// A page read before is read again (conditionally) when its entry's
/// `updated` moves past the one it was read for, at most this often: a
/// feed that stamps every entry with its build time costs each page one
/// conditional request an hour, not one per refresh.
pub const REREAD_AFTER: TimeDelta = TimeDelta::hours(1);

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
#[derive(Clone, Copy)]
pub struct PageRequest<'a> {
    pub url: &'a Url,
    /// The source's request settings (only its User-Agent and proxy apply).
    pub source: &'a SourceRequest,
    /// The most private address class the page may be at (the feed's).
    pub limit: AddressClass,
    /// Fetches of this page before this one (of this re-read, for one).
    pub attempts: u32,
    /// The page as read before, when this is a re-read for an updated
    /// entry: asked for conditionally, and kept when the re-read fails.
    pub read_before: Option<&'a PageRecord>,
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
    /// Nothing here fails: every outcome is a record. A re-read that comes
    /// to nothing new (304, or a failure) keeps what was read before.
    pub async fn fetch_page(
        &self,
        fetcher: &Fetcher,
        page: PageRequest<'_>,
        entry: &Entry,
        now: DateTime<Utc>,
    ) -> PageRecord {
        let read_before = page.read_before;
        let record = self.read_page(fetcher, page, entry, now).await;
        kept_on_reread(record, read_before, entry, now)
    }

    async fn read_page(
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
            read_before,
        } = page;
        let record = |outcome, status, error, retry| {
            page_record(url, attempts, now, outcome, status, error, retry)
        };
        let validators = Validators {
            etag: read_before.and_then(|page| page.etag.clone()),
            last_modified: read_before.and_then(|page| page.last_modified.clone()),
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
        let fetched = fetcher
            .fetch_confined(url, &validators, limit, &request)
            .await;
        match fetched {
            Ok(Fetched::Body {
                status,
                bytes,
                content_type,
                final_url,
                validators,
                ..
            }) => {
                let record = |outcome, status, error, retry| PageRecord {
                    etag: validators.etag.clone(),
                    last_modified: validators.last_modified.clone(),
                    ..record(outcome, status, error, retry)
                };
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
            // The page has not changed since it was read (`fetch_page`
            // keeps what was read).
            Ok(Fetched::NotModified { .. }) if read_before.is_some() => {
                record(PageOutcome::Failed, Some(304), None, false)
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
        let fetched = fetcher
            .fetch_confined(&robots, &Validators::default(), limit, request)
            .await;
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
        etag: None,
        last_modified: None,
        entry_updated: None,
    }
}

/// Whether `page`, read before for `entry`, is to be read again at `now`:
/// the entry says it was updated after the page was read for it (after the
/// page was fetched, for pages read before this was recorded), the page
/// was read at least [`REREAD_AFTER`] ago, and it was read (not refused:
/// a page too large, not HTML or disallowed stays so).
pub fn wants_reread(entry: &Entry, page: &PageRecord, now: DateTime<Utc>) -> bool {
    let read = matches!(page.outcome, PageOutcome::Extracted | PageOutcome::KeptFeed);
    let updated_since = match (entry.updated, page.entry_updated) {
        (Some(updated), Some(read_for)) => updated > read_for,
        (Some(updated), None) => updated > page.fetched_at,
        (None, _) => false,
    };
    let due = match page.next_attempt_at {
        Some(at) => at <= now,
        None => now - page.fetched_at >= REREAD_AFTER,
    };
    read && updated_since && due
}

/// A page fetch cut short by the refresh's [`PAGES_TIME`]: retried later.
pub fn out_of_time(page: PageRequest<'_>, entry: &Entry, now: DateTime<Utc>) -> PageRecord {
    let error = Some("timed out (the refresh's time for pages ran out)".to_string());
    let record = page_record(
        page.url,
        page.attempts,
        now,
        PageOutcome::Failed,
        None,
        error,
        true,
    );
    kept_on_reread(record, page.read_before, entry, now)
}

/// What to record of a page read for `entry`: `record` itself, unless it
/// was a re-read of `read_before` that came to nothing new (a 304, or a
/// failure), which keeps the page as read before.
fn kept_on_reread(
    mut record: PageRecord,
    read_before: Option<&PageRecord>,
    entry: &Entry,
    now: DateTime<Utc>,
) -> PageRecord {
    record.entry_updated = entry.updated;
    let Some(before) = read_before else {
        return record;
    };
    match record.outcome {
        PageOutcome::Extracted | PageOutcome::KeptFeed => record,
        _ if record.status == Some(304) => PageRecord {
            fetched_at: now,
            status: Some(304),
            error: None,
            attempts: 1,
            next_attempt_at: None,
            entry_updated: entry.updated,
            ..before.clone()
        },
        // A failed re-read: the page as read before stays; tried again
        // while the failure may pass, then given up for this update.
        _ => PageRecord {
            status: record.status,
            error: record.error,
            attempts: record.attempts,
            fetched_at: now,
            next_attempt_at: record.next_attempt_at,
            entry_updated: match record.next_attempt_at {
                // Still earlier than the entry's `updated`.
                Some(_) => before.entry_updated.or(Some(before.fetched_at)),
                None => entry.updated,
            },
            ..before.clone()
        },
    }
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

/// The page as text, its encoding chosen as browsers choose it (WHATWG
/// HTML "determining the character encoding", simplified): a BOM, else the
/// Content-Type's `charset`, else a `<meta charset>` (or `http-equiv`) in
/// the first 1024 bytes, else UTF-8 when the bytes are UTF-8 and
/// windows-1252 (what browsers assume for the Western web) when not.
fn decode(bytes: &[u8], content_type: Option<&str>) -> String {
    let label = content_type.and_then(|ct| {
        ct.split(';')
            .filter_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim().eq_ignore_ascii_case("charset").then(|| {
                    value
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'')
                        .to_string()
                })
            })
            .next()
    });
    let declared = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .or_else(|| meta_charset(bytes));
    let encoding = declared.unwrap_or_else(|| match std::str::from_utf8(bytes) {
        Ok(_) => encoding_rs::UTF_8,
        Err(_) => encoding_rs::WINDOWS_1252,
    });
    // `decode` lets a BOM override the label, as browsers do.
    encoding.decode(bytes).0.into_owned()
}

/// The encoding a `<meta charset="...">` or `<meta http-equiv="Content-Type"
/// content="...; charset=...">` in the page's first 1024 bytes names.
/// A page that is being decoded cannot be UTF-16 (its ASCII `<meta>` was
/// just read), so a UTF-16 label means UTF-8, as in the HTML standard.
fn meta_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(open) = rest.find(['<']) {
        rest = &rest[open..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.split_once("-->").map_or("", |(_, after)| after);
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        rest = &rest[end..];
        let Some(attributes) = tag.strip_prefix("<meta") else {
            rest = rest.get(1..).unwrap_or("");
            continue;
        };
        if !attributes.starts_with(|c: char| c.is_ascii_whitespace() || c == '/') {
            continue;
        }
        let label = attribute(attributes, "charset").or_else(|| {
            (attribute(attributes, "http-equiv")? == "content-type")
                .then(|| attribute(attributes, "content"))
                .flatten()
                .and_then(|content| {
                    let at = content.find("charset")?;
                    let value = content[at + "charset".len()..].trim_start();
                    let value = value.strip_prefix('=')?.trim_start();
                    let value = value.trim_start_matches(['"', '\'']);
                    Some(value.split([';', '"', '\'', ' ']).next().unwrap_or(value))
                })
        });
        if let Some(encoding) = label.and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes())) {
            return Some(match encoding {
                e if e == encoding_rs::UTF_16BE || e == encoding_rs::UTF_16LE => encoding_rs::UTF_8,
                e if e == encoding_rs::X_USER_DEFINED => encoding_rs::WINDOWS_1252,
                e => e,
            });
        }
    }
    None
}

/// The value of attribute `name` in a lowercased tag's attribute text:
/// quoted or bare.
fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = attributes[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = attributes[..start]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_whitespace() || c == '/' || c == '"' || c == '\'');
        let value = attributes[from..].trim_start();
        let Some(value) = value.strip_prefix('=').filter(|_| before_ok) else {
            continue;
        };
        let value = value.trim_start();
        return Some(match value.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &value[1..];
                inner.split(quote).next().unwrap_or(inner)
            }
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '/')
                .next()
                .unwrap_or(value),
        });
    }
    None
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
        assert_eq!(
            decode(latin1, Some("text/html; Charset=\"iso-8859-1\"")),
            "<p>café</p>"
        );
    }

    #[test]
    fn a_meta_charset_is_honoured_when_the_header_names_none() {
        let page = |head: &str| {
            let mut bytes =
                format!("<!DOCTYPE html><html><head>{head}</head><body><p>caf").into_bytes();
            bytes.extend_from_slice(b"\xe9</p></body></html>");
            bytes
        };
        for head in [
            r#"<meta charset="iso-8859-1">"#,
            "<META CHARSET=windows-1252>",
            r#"<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">"#,
            r#"<meta content='text/html;charset=latin1' http-equiv='content-type'/>"#,
        ] {
            let text = decode(&page(head), Some("text/html"));
            assert!(text.contains("<p>café</p>"), "{head}: {text}");
        }
        // The header's charset wins over the page's own.
        let koi8 = decode(
            &page(r#"<meta charset="koi8-r">"#),
            Some("text/html; charset=latin1"),
        );
        assert!(koi8.contains("café"), "{koi8}");
        // A meta inside a comment, or a `charset` that is part of another
        // attribute's name, is not a declaration: the bytes are not UTF-8,
        // so windows-1252.
        let commented = decode(&page(r#"<!-- <meta charset="koi8-r"> -->"#), None);
        assert!(commented.contains("café"), "{commented}");
        let other = decode(&page(r#"<meta data-charset="koi8-r">"#), None);
        assert!(other.contains("café"), "{other}");
        // UTF-8 bytes with no declaration stay UTF-8; a UTF-16 label in a
        // meta means UTF-8.
        let utf8 = decode("<p>café</p>".as_bytes(), None);
        assert_eq!(utf8, "<p>café</p>");
        let sixteen = decode(
            "<meta charset=utf-16><p>café</p>".as_bytes(),
            Some("text/html"),
        );
        assert!(sixteen.contains("<p>café</p>"), "{sixteen}");
    }
}
