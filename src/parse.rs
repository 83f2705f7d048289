//! Feed bytes -> our model: feed-rs for RSS 0.9x/1.0/2.0, Atom and JSON
//! Feed, plus the leniency real feeds need, sanitized HTML, absolute URLs
//! and UTC dates.
//!
//! The steps, in order:
//! 1. [`encoding`]: detect the charset and transcode to UTF-8;
//! 2. strip characters XML forbids;
//! 3. [`prepare`] (XML) or [`json`] (JSON Feed): mend what feed-rs would
//!    misread or reject, and note what it does not report (`dc:subject`,
//!    effective `xml:base`);
//! 4. feed-rs, behind `catch_unwind`, with our id generator and our
//!    [`dates`] parser; a semantic rejection is retried once without the
//!    optional extension namespaces;
//! 5. normalization into [`ParsedFeed`]: titles and summaries as text,
//!    content through [`sanitize`], links absolute, dates clamped.

mod dates;
mod encoding;
mod json;
mod language;
pub mod limits;

pub use language::{fill as detect_languages, fill_new as detect_new_languages};
mod prepare;
mod sanitize;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use feed_rs::model::{Feed, FeedType, Link, Text};
use feed_rs::parser::{ParseErrorKind, ParseFeedError};
use url::Url;

use crate::model::{Entry, FeedMeta, FieldCut, ParsedFeed};
use crate::text::{collapse_whitespace, escape, html_to_text, strip_xml_illegal, Escape};
use prepare::{ItemExtras, Options, Root};
use sanitize::text_of;

// Entry points for the fuzz targets (fuzz/) and their replay test; the
// pipeline itself goes through `parse_feed`.
pub use dates::parse_timestamp;
pub use sanitize::sanitize_html;

/// A fetched article page prepared for extraction (the `fulltext` step): its
/// nesting flattened past the same depth limit bodies have.
pub fn flatten_page(html: &str) -> std::borrow::Cow<'_, str> {
    sanitize::flatten(html)
}

/// An extracted article body sanitized like any feed body, against the
/// page's URL; with `strip_images` (`[daemon] strip_remote_images`)
/// without images.
pub fn sanitize_body(html: &str, base: &Url, strip_images: bool) -> String {
    sanitize::sanitize_html_with(html, base, strip_images)
}

/// Why a body yielded no feed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace (or a byte order mark).
    #[error("empty body")]
    Empty,
    /// An HTML page, another XML or JSON document, or XML too broken to
    /// read; the text says which, briefly.
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// A parser panicked; caught so one feed cannot take the worker down.
    #[error("parser crashed: {0}")]
    Panic(String),
    /// The document would go over a bound on the work or memory spent on
    /// it (see [`limits`]); the text says which.
    #[error("refused: {0}")]
    Refused(String),
}

/// Choices a user makes about what is kept of a feed, and how long
/// reading it may take.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// `[daemon] strip_remote_images`: no `<img>` in stored content.
    pub strip_remote_images: bool,
    /// Longest time one body's parsing may take (`[daemon] parse_budget`,
    /// docs/CONFIG.md "Fetching"). Checked between
    /// entries, since the field caps bound each entry's work: past it, the
    /// entries read so far are kept and the rest is reported, so a hostile
    /// feed costs its source a bounded slice of CPU per refresh. `None`: no
    /// bound.
    pub budget: Option<Duration>,
    /// A source's `remove_selectors` (docs/CONFIG.md "Rewrites").
    pub remove_selectors: Option<crate::config::RemoveSelectors>,
    /// A source's `language`: stands for the feed's own statement.
    pub language: Option<String>,
    /// Entries without a stated language are left without one: the caller
    /// detects them ([`detect_new_languages`]), for the entries it has not
    /// stored already (the pipeline does, detection being most of a parse's
    /// CPU for a feed that states no language).
    pub defer_language_detection: bool,
}

/// Parses a feed body. `content_type` is the HTTP header (its charset is a
/// hint), `feed_url` the base for relative URLs, `now` the first-seen time
/// used to clamp dates more than a day in the future.
pub fn parse_feed(
    bytes: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    now: DateTime<Utc>,
) -> Result<ParsedFeed, ParseError> {
    parse_feed_with(bytes, content_type, feed_url, now, ParseOptions::default())
}

/// [`parse_feed`] with the user's [`ParseOptions`].
pub fn parse_feed_with(
    bytes: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    now: DateTime<Utc>,
    opts: ParseOptions,
) -> Result<ParsedFeed, ParseError> {
    // feed-rs and quick-xml have panicked on hostile input before (UTF-16BE
    // in feed-rs 3.0); a bad feed must cost one source, never the worker.
    let deadline = opts.budget.map(|budget| Instant::now() + budget);
    let over_budget = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
    catch_unwind(AssertUnwindSafe(|| {
        let run = Run {
            over_budget: &over_budget,
            remove: opts.remove_selectors.as_deref().unwrap_or_default(),
            language: opts.language.as_deref(),
            detect_languages: !opts.defer_language_detection,
        };
        parse_unguarded(bytes, content_type, feed_url, now, &run)
            .map(|feed| apply_limits(feed, feed_url, &opts))
    }))
    .unwrap_or_else(|payload| Err(ParseError::Panic(panic_message(payload.as_ref()))))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// What one parse brings besides the bytes.
struct Run<'a> {
    /// Whether the parse budget is spent (see [`ParseOptions::budget`]).
    over_budget: &'a dyn Fn() -> bool,
    /// The source's `remove_selectors`: elements taken out of bodies and
    /// summaries before they are sanitized or read as text.
    remove: &'a [lol_html::Selector],
    /// The source's `language`, over the feed's.
    language: Option<&'a str>,
    /// Whether entries without a stated language get a detected one here.
    detect_languages: bool,
}

fn parse_unguarded(
    bytes: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    now: DateTime<Utc>,
    run: &Run,
) -> Result<ParsedFeed, ParseError> {
    let decoded = encoding::decode(bytes, content_type);
    tracing::trace!(charset = decoded.charset, "decoded feed body");
    let text = strip_xml_illegal(&decoded.text);
    let text = text.trim_start_matches(|c: char| c == '\u{FEFF}' || c.is_whitespace());
    match text.chars().next() {
        None => Err(ParseError::Empty),
        Some('{') => parse_json(text, feed_url, now, run),
        Some('<') => parse_xml(text, feed_url, now, run),
        Some(_) => match after_leading_junk(text) {
            Some(xml) => parse_xml(xml, feed_url, now, run),
            None => Err(ParseError::NotAFeed("neither XML nor JSON".into())),
        },
    }
}

/// A feed preceded by stray text (a PHP warning printed before the XML is
/// the classic): the document from its XML declaration or feed root on.
fn after_leading_junk(text: &str) -> Option<&str> {
    let mut end = text.len().min(2048);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    ["<?xml", "<rss", "<feed", "<rdf:RDF"]
        .iter()
        .filter_map(|marker| head.find(marker))
        .min()
        .map(|at| &text[at..])
}

fn parse_xml(
    text: &str,
    feed_url: &Url,
    now: DateTime<Utc>,
    run: &Run,
) -> Result<ParsedFeed, ParseError> {
    let mut opts = Options::default();
    loop {
        let prepared = prepare::prepare_xml(text, feed_url, opts);
        if let Some(why) = prepared.limit_error {
            return Err(ParseError::Refused(why));
        }
        match &prepared.root {
            Root::Html => return Err(ParseError::NotAFeed("an HTML page, not a feed".into())),
            Root::Other(name) => {
                return Err(ParseError::NotAFeed(format!(
                    "unknown root element <{name}>"
                )))
            }
            Root::Missing => {
                let why = prepared
                    .syntax_error
                    .as_deref()
                    .unwrap_or("no root element");
                return Err(ParseError::NotAFeed(format!("malformed XML: {why}")));
            }
            _ => {}
        }
        let parsed = match run_feed_rs(prepared.xml.as_bytes(), feed_url) {
            // feed-rs's panics so far were all in extension elements
            // (iTunes, Media RSS): without them the feed may still read.
            Err(panic) if !opts.strip_extensions => {
                tracing::debug!(error = %panic, "feed-rs panicked; retrying without extensions");
                opts.strip_extensions = true;
                continue;
            }
            other => other?,
        };
        match parsed {
            Err(_) if prepared.salvaged.is_some() => return salvage(&prepared, feed_url, now, run),
            Ok(feed) => {
                let ctx = Context {
                    feed_url,
                    now,
                    items: &prepared.items,
                    home_page_url: None,
                    stated_language: prepared.feed_language.as_deref(),
                    json_hubs: &[],
                    run,
                };
                return normalize(feed, &ctx);
            }
            // `<rss>` without a `<channel>`: a feed with nothing in it yet.
            Err(ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot))
                if prepared.root == Root::Rss && prepared.syntax_error.is_none() =>
            {
                return Ok(ParsedFeed::default());
            }
            Err(ParseFeedError::ParseError(kind)) if !opts.strip_extensions => {
                tracing::debug!(error = %kind, "feed-rs rejected the feed; retrying without extensions");
                opts.strip_extensions = true;
            }
            Err(e) => {
                return Err(ParseError::NotAFeed(describe(
                    &e,
                    prepared.syntax_error.as_deref(),
                )))
            }
        }
    }
}

/// The complete entries of a document that breaks off, with the error.
fn salvage(
    prepared: &prepare::Prepared,
    feed_url: &Url,
    now: DateTime<Utc>,
    run: &Run,
) -> Result<ParsedFeed, ParseError> {
    let why = prepared.syntax_error.as_deref().unwrap_or("malformed XML");
    let xml = prepared.salvaged.as_deref().unwrap_or_default();
    let feed = run_feed_rs(xml.as_bytes(), feed_url)?
        .map_err(|e| ParseError::NotAFeed(describe(&e, Some(why))))?;
    let items = prepared
        .items
        .get(..prepared.salvaged_items)
        .unwrap_or_default();
    let ctx = Context {
        feed_url,
        now,
        items,
        home_page_url: None,
        stated_language: prepared.feed_language.as_deref(),
        json_hubs: &[],
        run,
    };
    let mut parsed = normalize(feed, &ctx)?;
    let broken = format!(
        "malformed XML: {why}; kept the {} entries before it",
        parsed.entries.len()
    );
    parsed.warning = Some(match parsed.warning.take() {
        Some(budget) => format!("{broken}; {budget}"),
        None => broken,
    });
    Ok(parsed)
}

fn parse_json(
    text: &str,
    feed_url: &Url,
    now: DateTime<Utc>,
    run: &Run,
) -> Result<ParsedFeed, ParseError> {
    let prepared = json::prepare_json(text).map_err(ParseError::NotAFeed)?;
    let feed = run_feed_rs(prepared.json.as_bytes(), feed_url)?
        .map_err(|e| ParseError::NotAFeed(describe(&e, None)))?;
    let ctx = Context {
        feed_url,
        now,
        items: &prepared.items,
        home_page_url: prepared.home_page_url.as_deref(),
        stated_language: None,
        json_hubs: &prepared.hubs,
        run,
    };
    normalize(feed, &ctx)
}

/// Dates the undated entries of a source's first fetch, its backlog, so
/// that they rank below every date the feed carries and below the last
/// day's news: from the oldest of the feed's entry dates, the feed's own
/// date and `now` minus a day, one second apart in feed order (the first
/// listed is the newest). Dated entries are left alone.
pub fn date_backlog(feed: &mut ParsedFeed, now: DateTime<Utc>) {
    let anchor = feed
        .entries
        .iter()
        .filter_map(|e| e.published)
        .chain(feed.meta.updated)
        .chain([now - chrono::Duration::days(1)])
        .min()
        .unwrap_or(now);
    let undated = feed.entries.iter_mut().filter(|e| e.published.is_none());
    for (i, entry) in (1i64..).zip(undated) {
        entry.published = Some(anchor - chrono::Duration::seconds(i));
    }
}

/// Runs feed-rs; the outer `Err` is a caught panic.
fn run_feed_rs(input: &[u8], feed_url: &Url) -> Result<Result<Feed, ParseFeedError>, ParseError> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        // feed-rs calls the generator only for entries without an id of
        // their own; answering "" keeps those ids empty, so `Entry.guid` is
        // the document's id or nothing (never a hash or a random UUID).
        .id_generator(|_links, _title, _base| String::new())
        .timestamp_parser(dates::parse_timestamp)
        .sanitize_content(false)
        .build();
    catch_unwind(AssertUnwindSafe(|| {
        fault_point!("feed-rs", feed_url.as_str());
        parser.parse(input)
    }))
    .map_err(|payload| ParseError::Panic(panic_message(payload.as_ref())))
}

/// A short reason for `NotAFeed`.
fn describe(e: &ParseFeedError, syntax_error: Option<&str>) -> String {
    match (e, syntax_error) {
        (ParseFeedError::XmlReader(_), Some(why)) => format!("malformed XML: {why}"),
        (ParseFeedError::XmlReader(e), None) => format!("malformed XML: {e}"),
        (ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot), _) => {
            "no RSS, Atom or JSON Feed root element".into()
        }
        (e, _) => e.to_string(),
    }
}

/// What normalization needs besides the feed-rs model.
struct Context<'a> {
    feed_url: &'a Url,
    now: DateTime<Utc>,
    /// Per-entry extras from `prepare`, in feed-rs's entry order.
    items: &'a [ItemExtras],
    home_page_url: Option<&'a str>,
    /// The feed's language as only the pre-pass reads it (RSS `dc:language`).
    stated_language: Option<&'a str>,
    /// JSON Feed `hubs` URLs (feed-rs drops them).
    json_hubs: &'a [String],
    run: &'a Run<'a>,
}

impl Context<'_> {
    /// docs/TAGS-AND-DEDUP.md "How deduplication works" (dates): a date more than a day ahead of first-seen is first-seen.
    fn clamp(&self, date: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        date.map(|d| {
            if d > self.now + chrono::Duration::days(1) {
                self.now
            } else {
                d
            }
        })
    }
}

/// Our model of `feed`; `Err` only when the parse budget ran out before
/// the first entry.
fn normalize(mut feed: Feed, ctx: &Context) -> Result<ParsedFeed, ParseError> {
    if !ctx.run.remove.is_empty() {
        remove_elements(&mut feed, ctx.run.remove);
    }
    // Whether "text/plain" was said by the document (Atom `type`, JSON Feed
    // `content_text`) or is merely feed-rs's default for RSS elements, which
    // often carry HTML anyway.
    let explicit_plain = matches!(feed.feed_type, FeedType::Atom | FeedType::JSON);
    let site_url = match ctx.home_page_url {
        Some(home) => absolute_http(home, ctx.feed_url),
        None => alternate_link(&feed.links, ctx.feed_url),
    };
    let meta = FeedMeta {
        title: feed
            .title
            .as_ref()
            .map(|t| plain_text(t, explicit_plain))
            .filter(|t| !t.is_empty()),
        site_url,
        feed_id: (feed.feed_type == FeedType::Atom)
            .then(|| feed.id.trim().to_string())
            .filter(|id| !id.is_empty()),
        updated: ctx.clamp(feed.updated.or(feed.published)),
        ttl: feed
            .ttl
            .map(|minutes| Duration::from_secs(u64::from(minutes) * 60)),
        hubs: links_with_rel(&feed.links, "hub", ctx.feed_url)
            .chain(
                ctx.json_hubs
                    .iter()
                    .filter_map(|h| absolute_http(h, ctx.feed_url)),
            )
            .take(MAX_HUBS)
            .collect(),
        self_url: links_with_rel(&feed.links, "self", ctx.feed_url).next(),
    };
    // RFC 4287 §4.2.1: an Atom entry without an author has the feed's.
    let feed_author = (feed.feed_type == FeedType::Atom)
        .then(|| first_author(&feed.authors))
        .flatten();
    let feed_language = match ctx.run.language {
        Some(configured) => Some(configured.to_string()),
        None => [feed.language.as_deref(), ctx.stated_language]
            .into_iter()
            .flatten()
            .find_map(crate::text::language_tag),
    };

    let aligned = ctx.items.len() == feed.entries.len();
    if !aligned && !ctx.items.is_empty() {
        tracing::debug!(
            prepared = ctx.items.len(),
            parsed = feed.entries.len(),
            "entry counts differ; dc:subject and xml:base extras ignored"
        );
    }
    let no_extras = ItemExtras::default();
    let mut entries = Vec::with_capacity(feed.entries.len());
    let mut warning = None;
    for (i, e) in feed.entries.iter().enumerate() {
        if (ctx.run.over_budget)() {
            let total = feed.entries.len();
            if i == 0 {
                return Err(ParseError::Refused(format!(
                    "parsing took longer than its time budget (parse_budget) before the first of {total} entries"
                )));
            }
            warning = Some(format!(
                "parsing took longer than its time budget (parse_budget): kept the first {i} of {total} entries"
            ));
            break;
        }
        let extras = if aligned { &ctx.items[i] } else { &no_extras };
        let mut entry = normalize_entry(e, extras, feed.feed_type.clone(), explicit_plain, ctx);
        if entry.author.is_none() {
            entry.author.clone_from(&feed_author);
        }
        if entry.language.is_none() {
            entry.language.clone_from(&feed_language);
        }
        if !is_blank(&entry) {
            entries.push(scrub_entry(entry));
        }
    }
    if ctx.run.detect_languages {
        language::fill(&mut entries);
    }
    Ok(ParsedFeed {
        meta: scrub_meta(meta),
        entries,
        warning,
        cuts: Vec::new(),
    })
}

/// Takes the elements `selectors` match out of every entry's HTML body
/// and summary, before they are sanitized or read as text (a class or an
/// id the sanitizer drops still selects here). A body the rewriter cannot
/// read is kept as it was.
fn remove_elements(feed: &mut Feed, selectors: &[lol_html::Selector]) {
    use lol_html::{ElementContentHandlers, Settings};
    let remove = |html: &mut String| {
        let settings = selectors
            .iter()
            .fold(Settings::new(), |settings, selector| {
                let handler = ElementContentHandlers::default().element(
                    |el: &mut lol_html::html_content::Element<'_, '_>| {
                        el.remove();
                        Ok(())
                    },
                );
                settings
                    .append_element_content_handler((std::borrow::Cow::Borrowed(selector), handler))
            });
        if let Ok(rewritten) = lol_html::rewrite_str(html, settings) {
            *html = rewritten;
        }
    };
    // RSS descriptions are labelled text/plain yet carry HTML; plain text
    // passes through the rewriter unchanged.
    for entry in &mut feed.entries {
        if let Some(body) = entry.content.as_mut().and_then(|c| c.body.as_mut()) {
            remove(body);
        }
        if let Some(summary) = entry.summary.as_mut() {
            remove(&mut summary.content);
        }
    }
}

fn normalize_entry(
    e: &feed_rs::model::Entry,
    extras: &ItemExtras,
    feed_type: FeedType,
    explicit_plain: bool,
    ctx: &Context,
) -> Entry {
    let base = extras.base.as_ref().unwrap_or(ctx.feed_url);
    let guid = Some(e.id.trim().to_string()).filter(|id| !id.is_empty());

    // RSS 2.0: a guid is the permalink unless isPermaLink="false".
    let permalink_guid = || {
        let rss = matches!(feed_type, FeedType::RSS0 | FeedType::RSS2);
        guid.as_deref()
            .filter(|_| rss && extras.guid_is_permalink != Some(false))
            .and_then(|g| Url::parse(g).ok())
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(String::from)
    };
    let link = alternate_link(&e.links, base)
        .or_else(|| {
            let (_, text) = extras.link_text.as_ref()?;
            absolute_http(text, base)
        })
        .or_else(permalink_guid);

    let summary_text = e
        .summary
        .as_ref()
        .map(|t| plain_text(t, explicit_plain))
        .filter(|s| !s.is_empty());
    let media_text = || {
        e.media
            .iter()
            .find_map(|m| m.description.as_ref())
            .map(|t| plain_text(t, false))
            .filter(|s| !s.is_empty())
    };
    let summary = summary_text.or_else(media_text).or_else(|| {
        let text = text_of(extras.media_description.as_deref()?, false);
        Some(text).filter(|t| !t.is_empty())
    });

    let content_base = extras.content_base.as_ref().unwrap_or(base);
    let summary_base = extras.summary_base.as_ref().unwrap_or(base);
    let content = e
        .content
        .as_ref()
        .and_then(|c| {
            let body = c.body.as_deref()?;
            content_html(body, c.content_type.as_str(), explicit_plain, content_base)
        })
        .or_else(|| {
            let s = e.summary.as_ref()?;
            content_html(
                &s.content,
                s.content_type.as_str(),
                explicit_plain,
                summary_base,
            )
        });

    let title = e
        .title
        .as_ref()
        .map(|t| plain_text(t, explicit_plain))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            e.media
                .iter()
                .find_map(|m| m.title.as_ref())
                .map(|t| plain_text(t, false))
                .or_else(|| extras.media_title.as_deref().map(|t| text_of(t, false)))
                .filter(|t| !t.is_empty())
        })
        .or_else(|| {
            let text = summary
                .clone()
                .or_else(|| content.as_deref().map(html_to_text))?;
            Some(sanitize::first_words(&text, sanitize::FALLBACK_TITLE_WORDS))
                .filter(|t| !t.is_empty())
        });

    let mut categories: Vec<String> = Vec::new();
    let labels = e
        .categories
        .iter()
        .map(category_label)
        .chain(extras.subjects.iter().map(String::as_str));
    for label in labels {
        let label = text_of(label, false);
        if !label.is_empty() && !categories.contains(&label) {
            categories.push(label);
        }
    }

    let dcterms_date = extras
        .dcterms_date
        .as_deref()
        .and_then(dates::parse_timestamp);
    Entry {
        guid,
        link,
        title,
        summary,
        content,
        author: first_author(&e.authors)
            .or_else(|| extras.author_name.as_deref().map(collapse_whitespace))
            .or_else(|| extras.itunes_author.as_deref().map(collapse_whitespace)),
        published: ctx.clamp(e.published.or(e.updated).or(dcterms_date)),
        updated: ctx.clamp(e.updated.or(e.published).or(dcterms_date)),
        categories,
        // The most specific statement: the content's, then the entry's
        // (the feed's is the caller's fallback).
        language: [e.language.as_deref(), extras.language.as_deref()]
            .into_iter()
            .flatten()
            .find_map(crate::text::language_tag),
    }
}

/// Plain text of a feed-rs text construct.
fn plain_text(t: &Text, explicit_plain: bool) -> String {
    match t.content_type.as_str() {
        "text/plain" if explicit_plain => collapse_whitespace(&t.content),
        "text/plain" => text_of(&t.content, false),
        _ => html_to_text(&t.content),
    }
}

/// Sanitized HTML for a body of the given media type; `None` when empty or
/// not text at all (an inline image, say).
fn content_html(body: &str, media_type: &str, explicit_plain: bool, base: &Url) -> Option<String> {
    // feed-rs labels XHTML `application/xhtml`; inline XML reads as markup too.
    let html = match media_type {
        "text/plain" if !explicit_plain && sanitize::looks_like_html(body) => {
            sanitize_html(body, base)
        }
        "text/plain" => plain_to_html(body),
        t if t.contains("html") || t.ends_with("xml") => sanitize_html(body, base),
        _ => return None,
    };
    Some(html).filter(|h| !h.trim().is_empty())
}

/// Escaped plain text, paragraphs kept: blank lines separate `<p>`s and
/// single newlines become `<br>`.
fn plain_to_html(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape(p, Escape::Text).replace('\n', "<br>")))
        .collect()
}

/// The link to show for a feed or an entry: `rel="alternate"` (or no rel),
/// HTML preferred, absolute http(s).
fn alternate_link(links: &[Link], base: &Url) -> Option<String> {
    let alternates = links.iter().filter(|l| {
        l.target.is_none()
            && l.rel
                .as_deref()
                .is_none_or(|r| r.trim().eq_ignore_ascii_case("alternate"))
    });
    let html_like = |l: &&Link| {
        l.media_type
            .as_deref()
            .is_none_or(|t| t.contains("html") || t.trim().is_empty())
    };
    let (preferred, others): (Vec<&Link>, Vec<&Link>) = alternates.partition(html_like);
    preferred
        .into_iter()
        .chain(others)
        .find_map(|l| absolute_http(&l.href, base))
}

/// Hubs kept per feed: a feed naming more is odd, and each costs a request.
const MAX_HUBS: usize = 4;

/// The absolute http(s) targets of the links whose `rel` is `rel` (WebSub
/// discovery, https://www.w3.org/TR/websub/#discovery).
fn links_with_rel<'a>(
    links: &'a [Link],
    rel: &'a str,
    base: &'a Url,
) -> impl Iterator<Item = String> + 'a {
    links
        .iter()
        .filter(move |l| {
            l.rel.as_deref().is_some_and(|r| {
                r.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
            })
        })
        .filter_map(|l| absolute_http(&l.href, base))
        .filter(|url| url.len() <= limits::MAX_URL_BYTES)
}

/// `href` made absolute against `base`, if the result is http(s).
fn absolute_http(href: &str, base: &Url) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = Url::parse(href).or_else(|_| base.join(href)).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// The tag of a category: its `term` (what it is), shown as its `label`
/// only when the label names the same thing (`term="rust" label="Rust"`);
/// a label that says something else (`term="Magnitude 2"
/// label="Magnitude"`, `term="Minecraft" label="r/Minecraft"`) is not the
/// category.
fn category_label(c: &feed_rs::model::Category) -> &str {
    let term = c.term.trim();
    match c.label.as_deref().map(str::trim) {
        Some(label) if term.is_empty() => label,
        Some(label) if same_words(label, term) => label,
        _ => term,
    }
}

/// Equal but for case and how words are separated (spaces, `-`, `_`),
/// which is how tags compare too.
fn same_words(a: &str, b: &str) -> bool {
    fn words(s: &str) -> impl Iterator<Item = String> + '_ {
        s.split(|c: char| c.is_whitespace() || c == '-' || c == '_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
    }
    words(a).eq(words(b))
}

/// The first author's name (else e-mail), without the parentheses RSS's
/// `email (Name)` convention leaves around it.
fn first_author(people: &[feed_rs::model::Person]) -> Option<String> {
    people.iter().find_map(|p| {
        let name = p
            .name
            .as_deref()
            .map(|n| collapse_whitespace(unparenthesize(n.trim())))
            .filter(|n| !n.is_empty());
        name.or_else(|| p.email.clone().filter(|e| !e.trim().is_empty()))
    })
}

/// `(Name)` -> `Name`, and a parenthesis left unmatched at either end by
/// the e-mail split goes; parentheses that belong to the name stay
/// (`Ann (now) and Bo (earlier)`).
fn unparenthesize(name: &str) -> &str {
    let opens = name.matches('(').count();
    let closes = name.matches(')').count();
    let enclosed = name.starts_with('(')
        && name.ends_with(')')
        && name.len() >= 2
        && is_one_group(&name[1..name.len() - 1]);
    if enclosed {
        name[1..name.len() - 1].trim()
    } else if opens > closes {
        name.strip_prefix('(').unwrap_or(name).trim()
    } else if closes > opens {
        name.strip_suffix(')').unwrap_or(name).trim()
    } else {
        name
    }
}

/// Whether parentheses in `inner` never close more than they open, so
/// `(inner)` is one group.
fn is_one_group(inner: &str) -> bool {
    let mut depth = 0i32;
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// An entry with nothing to show or identify it by (a bare `<item/>`, or
/// one holding only a date) is not a story: there is nothing to publish.
fn is_blank(e: &Entry) -> bool {
    e.guid.is_none()
        && e.link.is_none()
        && e.title.is_none()
        && e.summary.is_none()
        && e.content.is_none()
}

/// Last line of defence for docs/TAGS-AND-DEDUP.md "How deduplication works" (dates): character references in the
/// source can still spell characters XML forbids, or C1 controls.
fn scrub(s: String) -> String {
    let s = match strip_xml_illegal(&s) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(clean) => clean,
    };
    match sanitize::demoronize(&s) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(fixed) => fixed,
    }
}

fn scrub_entry(e: Entry) -> Entry {
    Entry {
        guid: e.guid.map(scrub),
        link: e.link.map(scrub),
        title: e.title.map(scrub),
        summary: e.summary.map(scrub),
        content: e.content.map(scrub),
        author: e.author.map(scrub),
        categories: e.categories.into_iter().map(scrub).collect(),
        ..e
    }
}

fn scrub_meta(m: FeedMeta) -> FeedMeta {
    FeedMeta {
        title: m.title.map(scrub),
        site_url: m.site_url.map(scrub),
        feed_id: m.feed_id.map(scrub),
        ..m
    }
}

/// The user's options and the caps of [`limits`], applied to a parsed
/// feed: every stored field within its cap, each cut recorded.
fn apply_limits(mut feed: ParsedFeed, feed_url: &Url, opts: &ParseOptions) -> ParsedFeed {
    let mut cuts = Vec::new();
    if let Some(title) = feed.meta.title.as_mut() {
        cap_text(
            title,
            limits::MAX_TITLE_BYTES,
            "feed title",
            None,
            &mut cuts,
        );
    }
    cap_id(&mut feed.meta.feed_id, "feed id", None, &mut cuts);
    cap_url(&mut feed.meta.site_url, "site url", None, &mut cuts);
    for (i, e) in feed.entries.iter_mut().enumerate() {
        cap_id(&mut e.guid, "guid", Some(i), &mut cuts);
        cap_url(&mut e.link, "link", Some(i), &mut cuts);
        if opts.strip_remote_images {
            if let Some(content) = e.content.as_mut() {
                *content = sanitize::sanitize_html_with(content, feed_url, true);
            }
            e.content = e.content.take().filter(|c| !c.trim().is_empty());
        }
        let entry = Some(i);
        if let Some(title) = e.title.as_mut() {
            cap_text(title, limits::MAX_TITLE_BYTES, "title", entry, &mut cuts);
        }
        if let Some(author) = e.author.as_mut() {
            cap_text(author, limits::MAX_AUTHOR_BYTES, "author", entry, &mut cuts);
        }
        if let Some(summary) = e.summary.as_mut() {
            cap_text(
                summary,
                limits::MAX_SUMMARY_BYTES,
                "summary",
                entry,
                &mut cuts,
            );
        }
        if let Some(content) = e.content.as_mut() {
            if let Some(cut) = sanitize::cut_html(content, limits::MAX_CONTENT_BYTES, feed_url) {
                cuts.push(FieldCut {
                    field: "content",
                    entry,
                    length: content.len(),
                });
                *content = cut;
            }
        }
        let categories = e.categories.len();
        let mut long = false;
        for c in e.categories.iter_mut() {
            if let Some(cut) = limits::cut_text(c, limits::MAX_CATEGORY_BYTES) {
                *c = cut.trim_end().to_string();
                long = true;
            }
        }
        e.categories.truncate(limits::MAX_CATEGORIES);
        if long || categories > limits::MAX_CATEGORIES {
            cuts.push(FieldCut {
                field: "categories",
                entry,
                length: categories,
            });
        }
    }
    feed.cuts = cuts;
    feed
}

/// Cuts plain text to `max` bytes, ending in an ellipsis, and records it.
/// An id over [`limits::MAX_ID_BYTES`], cut on a character boundary with
/// no ellipsis: it is a key, never shown as prose.
fn cap_id(
    id: &mut Option<String>,
    field: &'static str,
    entry: Option<usize>,
    cuts: &mut Vec<FieldCut>,
) {
    let Some(text) = id.as_mut() else { return };
    if let Some(kept) = limits::cut_text(text, limits::MAX_ID_BYTES) {
        let length = text.len();
        *text = kept.to_string();
        cuts.push(FieldCut {
            field,
            entry,
            length,
        });
    }
}

/// A URL over [`limits::MAX_URL_BYTES`] is dropped.
fn cap_url(
    url: &mut Option<String>,
    field: &'static str,
    entry: Option<usize>,
    cuts: &mut Vec<FieldCut>,
) {
    if let Some(length) = url
        .as_deref()
        .map(str::len)
        .filter(|&length| length > limits::MAX_URL_BYTES)
    {
        *url = None;
        cuts.push(FieldCut {
            field,
            entry,
            length,
        });
    }
}

fn cap_text(
    text: &mut String,
    max: usize,
    field: &'static str,
    entry: Option<usize>,
    cuts: &mut Vec<FieldCut>,
) {
    const ELLIPSIS: char = '…';
    if text.len() <= max {
        return;
    }
    if let Some(kept) = limits::cut_text(text, max - ELLIPSIS.len_utf8()) {
        let length = text.len();
        let mut cut = kept.trim_end().to_string();
        cut.push(ELLIPSIS);
        *text = cut;
        cuts.push(FieldCut {
            field,
            entry,
            length,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_url() -> Url {
        Url::parse("https://example.com/feeds/main.xml").unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2024-06-01T12:00:00Z".parse().unwrap()
    }

    fn parse(doc: &str) -> ParsedFeed {
        parse_feed(doc.as_bytes(), None, &feed_url(), now())
            .unwrap_or_else(|e| panic!("{e}: {doc}"))
    }

    fn date(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn rss_links_resolve_against_xml_base_then_the_feed_url() {
        let feed = parse(
            r#"<?xml version="1.0"?>
            <rss version="2.0" xml:base="https://base.example/news/">
              <channel>
                <title>  Example
                  News </title>
                <link>/</link>
                <ttl>30</ttl>
                <item><title>A</title><link>a.html</link><guid>  id-a  </guid>
                  <description>&lt;img src="img/a.png"&gt; See &lt;a href="/x"&gt;x&lt;/a&gt;</description></item>
                <item xml:base="https://other.example/dir/"><title>B</title><link>b.html</link></item>
              </channel>
            </rss>"#,
        );
        assert_eq!(feed.meta.title.as_deref(), Some("Example News"));
        assert_eq!(feed.meta.site_url.as_deref(), Some("https://base.example/"));
        assert_eq!(feed.meta.ttl, Some(Duration::from_secs(30 * 60)));
        let [a, b] = feed.entries.as_slice() else {
            panic!("two entries expected: {feed:?}")
        };
        assert_eq!(a.link.as_deref(), Some("https://base.example/news/a.html"));
        assert_eq!(a.guid.as_deref(), Some("id-a"));
        let content = a.content.as_deref().unwrap();
        assert!(
            content.contains(r#"src="https://base.example/news/img/a.png""#),
            "{content}"
        );
        assert!(
            content.contains(r#"href="https://base.example/x""#),
            "{content}"
        );
        assert_eq!(a.summary.as_deref(), Some("See x"));
        assert_eq!(b.link.as_deref(), Some("https://other.example/dir/b.html"));

        let plain = parse(
            r#"<rss version="2.0"><channel><item><title>t</title><link>../p/1</link></item></channel></rss>"#,
        );
        assert_eq!(
            plain.entries[0].link.as_deref(),
            Some("https://example.com/p/1")
        );
    }

    #[test]
    fn websub_hubs_and_self_from_atom_rss_and_json_feed() {
        let atom = parse(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><id>f</id><title>t</title>
              <link rel="hub" href="https://hub.example/"/>
              <link rel="self" href="/atom.xml"/>
              <link rel="alternate" href="https://site.example/"/></feed>"#,
        );
        assert_eq!(atom.meta.hubs, ["https://hub.example/"]);
        assert_eq!(
            atom.meta.self_url.as_deref(),
            Some("https://example.com/atom.xml")
        );
        let rss = parse(
            r#"<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>
              <atom:link rel="hub" href="https://a.hub.example/"/>
              <atom:link rel="hub" href="javascript:alert(1)"/>
              <atom:link rel="hub" href="https://b.hub.example/"/></channel></rss>"#,
        );
        assert_eq!(
            rss.meta.hubs,
            ["https://a.hub.example/", "https://b.hub.example/"]
        );
        assert_eq!(rss.meta.self_url, None);
        let json = parse(
            r#"{"version":"https://jsonfeed.org/version/1.1","title":"J",
                "feed_url":"https://j.example/feed.json",
                "hubs":[{"type":"WebSub","url":"https://hub.j.example/"},{"type":"x"}],"items":[]}"#,
        );
        assert_eq!(json.meta.hubs, ["https://hub.j.example/"]);
    }

    #[test]
    fn atom_feed_maps_every_field() {
        let feed = parse(
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/">
              <id>urn:uuid:feed-1</id>
              <title type="html">Blog &amp;amp; more</title>
              <updated>2024-05-01T10:00:00+02:00</updated>
              <link rel="self" href="/atom.xml"/>
              <link rel="alternate" type="text/html" href="/"/>
              <author><name>Ann</name></author>
              <entry>
                <id>tag:blog.example,2024:1</id>
                <title type="text">Hello &lt;world&gt;</title>
                <link rel="edit" href="/edit/1"/>
                <link rel="alternate" type="text/html" href="posts/1"/>
                <published>2024-04-30T08:00:00Z</published>
                <category term="rust" label=" Rust "/>
                <category term="feeds"/>
                <summary type="html">&lt;p&gt;Short &amp;amp; sweet&lt;/p&gt;</summary>
                <content type="xhtml" xml:base="https://cdn.example/"><div xmlns="http://www.w3.org/1999/xhtml"><p>Body <img src="i.png"/></p></div></content>
              </entry>
            </feed>"#,
        );
        assert_eq!(feed.meta.feed_id.as_deref(), Some("urn:uuid:feed-1"));
        assert_eq!(feed.meta.title.as_deref(), Some("Blog & more"));
        assert_eq!(feed.meta.site_url.as_deref(), Some("https://blog.example/"));
        assert_eq!(feed.meta.updated, date("2024-05-01T08:00:00Z"));
        let e = &feed.entries[0];
        assert_eq!(e.guid.as_deref(), Some("tag:blog.example,2024:1"));
        assert_eq!(e.title.as_deref(), Some("Hello <world>"));
        assert_eq!(e.link.as_deref(), Some("https://blog.example/posts/1"));
        assert_eq!(e.author.as_deref(), Some("Ann"), "inherited from the feed");
        assert_eq!(e.categories, ["Rust", "feeds"]);
        assert_eq!(e.summary.as_deref(), Some("Short & sweet"));
        let content = e.content.as_deref().unwrap();
        assert!(
            content.contains(r#"<img src="https://cdn.example/i.png">"#),
            "{content}"
        );
        assert_eq!(e.published, date("2024-04-30T08:00:00Z"));
        assert_eq!(e.updated, e.published, "updated falls back to published");
    }

    /// RSS 1.0 states the feed's language only as the channel's
    /// `dc:language` (some RSS 2.0 feeds too); RSS 2.0's `<language>` wins
    /// when both are there, and an item's own wins over either.
    #[test]
    fn a_channels_dc_language_is_the_feeds() {
        let rdf = parse(
            r#"<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
                 xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
               <channel rdf:about="https://r.example/"><title>R</title><link>https://r.example/</link>
                 <description>d</description><dc:language> ja </dc:language></channel>
               <item rdf:about="https://r.example/1"><title>One</title><link>https://r.example/1</link></item>
               <item rdf:about="https://r.example/2"><title>Two</title><link>https://r.example/2</link>
                 <dc:language>en</dc:language></item>
               </rdf:RDF>"#,
        );
        let languages: Vec<_> = rdf.entries.iter().map(|e| e.language.as_deref()).collect();
        assert_eq!(languages, [Some("ja"), Some("en")]);

        let both = parse(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
               <channel><title>B</title><link>https://b.example/</link><dc:language>fr</dc:language>
               <language>de</language><item><title>Eins</title><link>https://b.example/1</link></item>
               </channel></rss>"#,
        );
        assert_eq!(both.entries[0].language.as_deref(), Some("de"));
        let dc_only = parse(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
               <channel><title>B</title><link>https://b.example/</link><dc:language>fr-FR</dc:language>
               <item><title>Un</title><link>https://b.example/1</link></item></channel></rss>"#,
        );
        assert_eq!(dc_only.entries[0].language.as_deref(), Some("fr-FR"));
    }

    /// JSON Feed 1.1 states a language per item (feed-rs keeps only the
    /// feed's): an item's own wins, the others get the feed's.
    #[test]
    fn json_feed_items_keep_their_own_language() {
        let feed = parse(
            r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","language":"fr-FR",
               "items":[{"id":"1","title":"Un","content_text":"x","language":"en_GB"},
                        {"id":"2","title":"Deux","content_text":"y"},
                        {"id":"3","title":"Drei","content_text":"z","language":7}]}"#,
        );
        let languages: Vec<_> = feed.entries.iter().map(|e| e.language.as_deref()).collect();
        assert_eq!(languages, [Some("en-GB"), Some("fr-FR"), Some("fr-FR")]);
    }

    #[test]
    fn json_feed_maps_every_field() {
        let feed = parse(
            r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","home_page_url":"https://j.example/",
               "feed_url":"https://j.example/feed.json",
               "items":[{"id":"1","url":"/posts/1","title":"One","content_text":"a < b\n\nnext",
                          "summary":"<b>sum</b>","date_published":"2024-05-01T00:00:00Z",
                          "date_modified":"2024-05-02T00:00:00Z","tags":[" x ",""],
                          "authors":[{"name":"Bo"}]},
                         {"id":2,"content_html":"<p onclick=\"x()\">Two words here</p>"}]}"#,
        );
        assert_eq!(feed.meta.site_url.as_deref(), Some("https://j.example/"));
        assert_eq!(feed.meta.feed_id, None);
        let [one, two] = feed.entries.as_slice() else {
            panic!("two entries expected")
        };
        assert_eq!(one.link.as_deref(), Some("https://example.com/posts/1"));
        assert_eq!(one.content.as_deref(), Some("<p>a &lt; b</p><p>next</p>"));
        assert_eq!(
            one.summary.as_deref(),
            Some("<b>sum</b>"),
            "JSON summary is plain text"
        );
        assert_eq!(one.categories, ["x"]);
        assert_eq!(one.author.as_deref(), Some("Bo"));
        assert_eq!(one.updated, date("2024-05-02T00:00:00Z"));
        assert_eq!(two.guid.as_deref(), Some("2"));
        assert_eq!(two.content.as_deref(), Some("<p>Two words here</p>"));
        assert_eq!(two.title.as_deref(), Some("Two words here"));
    }

    #[test]
    fn content_is_sanitized() {
        let feed = parse(
            r#"<rss version="2.0"><channel><item><title>t</title><link>https://s.example/a/b</link>
            <content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/"><![CDATA[
              <p onclick="steal()">Hi<script>alert(1)</script></p>
              <a href="javascript:alert(1)">js</a><a href="/ok">ok</a>
              <iframe src="https://evil.example/"></iframe><style>p{}</style>
              <img src="../img/x.png" onerror="bad()">
            ]]></content:encoded></item></channel></rss>"#,
        );
        let html = feed.entries[0].content.as_deref().unwrap();
        for banned in [
            "script",
            "onclick",
            "javascript:",
            "iframe",
            "style",
            "onerror",
            "alert",
        ] {
            assert!(!html.contains(banned), "{banned} survived: {html}");
        }
        assert!(
            html.contains(r#"src="https://example.com/img/x.png""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="https://example.com/ok" rel="noopener noreferrer""#),
            "{html}"
        );
    }

    #[test]
    fn dates_are_clamped_or_left_missing() {
        let feed = parse(
            r#"<rss version="2.0"><channel>
              <item><title>future</title><pubDate>Mon, 01 Jan 2035 00:00:00 GMT</pubDate></item>
              <item><title>tomorrow-ish</title><pubDate>Sun, 02 Jun 2024 11:00:00 GMT</pubDate></item>
              <item><title>undated</title></item>
              <item><title>odd</title><pubDate>2020/1/10 14:33:00</pubDate></item>
            </channel></rss>"#,
        );
        let dates: Vec<_> = feed
            .entries
            .iter()
            .map(|e| (e.published, e.updated))
            .collect();
        assert_eq!(dates[0], (Some(now()), Some(now())));
        assert_eq!(
            dates[1],
            (date("2024-06-02T11:00:00Z"), date("2024-06-02T11:00:00Z"))
        );
        assert_eq!(dates[2], (None, None));
        assert_eq!(dates[3].0, date("2020-01-10T14:33:00Z"));
    }

    #[test]
    fn untitled_entries_borrow_their_first_words() {
        let feed = parse(
            r#"<rss version="2.0"><channel>
              <item><description>&lt;p&gt;One two three four five six seven eight nine ten eleven twelve&lt;/p&gt;</description></item>
              <item><description>Short one.</description><link>https://x.example/</link></item>
              <item><link>https://x.example/only-link</link></item>
            </channel></rss>"#,
        );
        let titles: Vec<_> = feed.entries.iter().map(|e| e.title.as_deref()).collect();
        assert_eq!(
            titles,
            [
                Some("One two three four five six seven eight nine ten…"),
                Some("Short one."),
                None
            ]
        );
    }

    #[test]
    fn guid_is_only_the_documents_own_id() {
        let feed = parse(
            r#"<rss version="2.0"><channel>
              <item><title>no guid</title><link>https://x.example/1</link></item>
              <item><title>blank guid</title><guid>   </guid></item>
              <item><title>permalink</title><guid>https://x.example/3</guid></item>
              <item><title>not a permalink</title><guid isPermaLink="false">https://x.example/4</guid></item>
              <item><title>not a URL</title><guid>post-5</guid></item>
            </channel></rss>"#,
        );
        let got: Vec<_> = feed
            .entries
            .iter()
            .map(|e| (e.guid.as_deref(), e.link.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (None, Some("https://x.example/1")),
                (None, None),
                (Some("https://x.example/3"), Some("https://x.example/3")),
                (Some("https://x.example/4"), None),
                (Some("post-5"), None),
            ]
        );
    }

    #[test]
    fn categories_come_from_every_vocabulary() {
        let rss = parse(
            r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><item><title>t</title>
              <category>World</category><category/><category>  </category>
              <dc:subject><![CDATA[ Science ]]></dc:subject><dc:subject>World</dc:subject>
            </item></channel></rss>"#,
        );
        assert_eq!(rss.entries[0].categories, ["World", "Science"]);

        let rdf = parse(
            r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
                 xmlns:dc="http://purl.org/dc/elements/1.1/">
              <channel rdf:about="https://r.example/"><title>R</title><link>https://r.example/</link></channel>
              <item rdf:about="https://r.example/1"><title>one</title><link>https://r.example/1</link>
                <dc:subject>Biology</dc:subject><dc:date>2024-01-02</dc:date></item>
              <item rdf:about="https://r.example/2"><title>no link</title></item>
            </rdf:RDF>"#,
        );
        assert_eq!(rdf.entries.len(), 2);
        assert_eq!(rdf.entries[0].categories, ["Biology"]);
        assert_eq!(rdf.entries[0].published, date("2024-01-02T00:00:00Z"));
        assert_eq!(
            rdf.entries[1].link.as_deref(),
            Some("https://r.example/2"),
            "from rdf:about"
        );
    }

    #[test]
    fn control_characters_never_come_through() {
        let doc = "<rss version=\"2.0\"><channel><title>T\u{1}</title><item><title>a\u{0}b&#x1F;c\u{B}</title>\
                   <description>x\u{FFFE}y &amp;#1; z</description><category>c\u{1B}at</category></item></channel></rss>";
        let feed = parse(doc);
        let e = &feed.entries[0];
        assert_eq!(feed.meta.title.as_deref(), Some("T"));
        assert_eq!(e.title.as_deref(), Some("abc"));
        assert_eq!(e.summary.as_deref(), Some("xy z"));
        assert_eq!(e.categories, ["cat"]);
        assert!(!e
            .content
            .as_deref()
            .unwrap()
            .chars()
            .any(sanitize::is_xml_illegal));

        // C1 controls are windows-1252 punctuation gone astray.
        let doc = "<rss version=\"2.0\"><channel><item><title>don&#146;t \u{93}quote\u{94}</title></item></channel></rss>";
        assert_eq!(
            parse(doc).entries[0].title.as_deref(),
            Some("don’t “quote”")
        );
    }

    #[test]
    fn errors_say_what_went_wrong() {
        let url = feed_url();
        let err = |body: &[u8]| parse_feed(body, Some("text/html"), &url, now()).unwrap_err();
        assert!(matches!(err(b""), ParseError::Empty));
        assert!(matches!(err(b" \r\n\t "), ParseError::Empty));
        assert!(matches!(err(b"\xEF\xBB\xBF  "), ParseError::Empty));
        let cases: &[(&[u8], &str)] = &[
            (
                b"<!DOCTYPE html><html><head><title>Hi</title></head><body></body></html>",
                "HTML page",
            ),
            (b"<html><body><p>moved</body></html>", "HTML page"),
            (b"Internal Server Error", "neither XML nor JSON"),
            (b"Warning: <rss> is not here", "malformed XML"),
            (
                b"<rss version=\"2.0\"><channel><item><title>cut",
                "malformed XML",
            ),
            (
                b"<opml version=\"1.0\"><body/></opml>",
                "unknown root element <opml>",
            ),
            (b"{\"not\": \"a feed\"}", "not a JSON Feed"),
        ];
        for (body, want) in cases {
            match err(body) {
                ParseError::NotAFeed(why) => {
                    assert!(why.contains(want), "{why:?} should mention {want:?}")
                }
                other => panic!("{body:?}: expected NotAFeed, got {other:?}"),
            }
        }
    }

    #[test]
    fn real_world_breakage_is_mended() {
        // (document, entries, first title)
        let cases: &[(&[u8], usize, &str)] = &[
            // Latin-1 without declaration, no version attribute, Portuguese dates.
            (
                b"<rss><channel><item><title>Not\xEDcia</title><pubDate>Seg, 22 Set 2008 18:53:00 -0300</pubDate></item></channel></rss>",
                1,
                "Notícia",
            ),
            // A default namespace feed-rs does not know.
            (
                b"<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns=\"http://backend.userland.com/rss2\"><channel><item><title>ns</title></item></channel></rss>",
                1,
                "ns",
            ),
            // Bogus processing instruction and blank lines before the root.
            (
                b"\n\n<?phpxml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><item><title>pi</title></item></channel></rss>\n<!-- trailing junk <",
                1,
                "pi",
            ),
            // Bare ampersands.
            (
                b"<rss version=\"2.0\"><channel><item><title>AT&T & co</title><link>http://x.example/?a=1&b=2</link></item></channel></rss>",
                1,
                "AT&T & co",
            ),
            // Atom 0.3.
            (
                b"<feed version=\"0.3\" xmlns=\"http://purl.org/atom/ns#\"><entry><title type=\"text/plain\" mode=\"escaped\">old</title><issued>2004-01-01T00:00:00Z</issued><content type=\"text/html\" mode=\"escaped\">&lt;b&gt;x&lt;/b&gt;</content></entry></feed>",
                1,
                "old",
            ),
            // One malformed extension element must not cost the feed.
            (
                b"<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel><item><title>m</title><media:description type=\"weird\">d</media:description></item></channel></rss>",
                1,
                "m",
            ),
            // A PHP warning before the document.
            (
                b"Warning: Undefined index in /srv/feed.php on line 3\n<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><item><title>php</title></item></channel></rss>",
                1,
                "php",
            ),
            // An empty RSS document is a feed with no entries.
            (b"<rss version=\"0.91\"></rss>", 0, ""),
        ];
        for (doc, count, title) in cases {
            let feed = parse_feed(doc, None, &feed_url(), now())
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(doc)));
            assert_eq!(
                feed.entries.len(),
                *count,
                "{}",
                String::from_utf8_lossy(doc)
            );
            if *count > 0 {
                assert_eq!(feed.entries[0].title.as_deref(), Some(*title));
            }
        }
        let atom03 = parse_feed(cases[4].0, None, &feed_url(), now()).unwrap();
        assert_eq!(atom03.entries[0].published, date("2004-01-01T00:00:00Z"));
        assert_eq!(atom03.entries[0].content.as_deref(), Some("<b>x</b>"));
        let amp = parse_feed(cases[3].0, None, &feed_url(), now()).unwrap();
        assert_eq!(
            amp.entries[0].link.as_deref(),
            Some("http://x.example/?a=1&b=2")
        );
    }

    #[test]
    fn a_panic_in_feed_rs_is_caught() {
        // feed-rs 3.0 panics on UTF-16BE; parse_feed transcodes first, so
        // hand the raw bytes to the guarded call directly.
        let doc =
            "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel/></rss>";
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend(doc.encode_utf16().flat_map(u16::to_be_bytes));
        match run_feed_rs(&bytes, &feed_url()) {
            Err(ParseError::Panic(why)) => assert!(!why.is_empty()),
            Err(other) => panic!("expected a caught panic, got {other:?}"),
            Ok(result) => {
                panic!("feed-rs no longer panics here ({result:?}); pick another trigger")
            }
        }
    }

    #[test]
    fn utf16_is_transcoded_not_a_panic() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel><item><title>Ünïcode</title></item></channel></rss>";
        for bom in [true, false] {
            let mut bytes: Vec<u8> = if bom { vec![0xFE, 0xFF] } else { Vec::new() };
            bytes.extend(doc.encode_utf16().flat_map(u16::to_be_bytes));
            let feed = parse_feed(&bytes, None, &feed_url(), now()).unwrap();
            assert_eq!(feed.entries[0].title.as_deref(), Some("Ünïcode"));
        }
    }

    fn three_items() -> String {
        let items: String = (1..=3)
            .map(|i| {
                format!(
                    "<item><title>Story {i}</title><link>https://example.com/{i}</link>\
                     <description>&lt;p&gt;Body {i}&lt;/p&gt;</description></item>"
                )
            })
            .collect();
        format!(r#"<rss version="2.0"><channel><title>T</title>{items}</channel></rss>"#)
    }

    /// Parses `doc` with a budget that runs out after `checks` checks.
    fn parse_with_budget_of(doc: &str, checks: usize) -> Result<ParsedFeed, ParseError> {
        let left = std::cell::Cell::new(checks);
        let over_budget = || {
            let spent = left.get() == 0;
            left.set(left.get().saturating_sub(1));
            spent
        };
        let run = Run {
            over_budget: &over_budget,
            remove: &[],
            language: None,
            detect_languages: true,
        };
        parse_unguarded(doc.as_bytes(), None, &feed_url(), now(), &run)
    }

    #[test]
    fn a_spent_parse_budget_keeps_the_entries_read_and_says_how_many() {
        let feed = parse_with_budget_of(&three_items(), 2).unwrap();
        let titles: Vec<_> = feed
            .entries
            .iter()
            .map(|e| e.title.clone().unwrap())
            .collect();
        assert_eq!(titles, ["Story 1", "Story 2"]);
        let warning = feed.warning.expect("a feed read in part says so");
        assert!(
            warning.contains("kept the first 2 of 3 entries"),
            "{warning}"
        );

        let whole = parse_with_budget_of(&three_items(), usize::MAX).unwrap();
        assert_eq!(whole.entries.len(), 3);
        assert_eq!(whole.warning, None);
    }

    #[test]
    fn a_budget_spent_before_the_first_entry_refuses_the_feed() {
        match parse_with_budget_of(&three_items(), 0) {
            Err(ParseError::Refused(why)) => assert!(why.contains("time budget"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The same through the public entry point with a zero budget.
        let opts = ParseOptions {
            budget: Some(Duration::ZERO),
            ..ParseOptions::default()
        };
        let refused = parse_feed_with(three_items().as_bytes(), None, &feed_url(), now(), opts);
        assert!(
            matches!(refused, Err(ParseError::Refused(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_cut_off_feed_over_budget_reports_both() {
        let doc = three_items().replace("</channel></rss>", "<item><title>Cut");
        let feed = parse_with_budget_of(&doc, 1).unwrap();
        assert_eq!(feed.entries.len(), 1);
        let warning = feed.warning.unwrap();
        assert!(warning.starts_with("malformed XML"), "{warning}");
        assert!(warning.contains("time budget"), "{warning}");
    }

    #[test]
    fn a_feed_rs_panic_is_retried_without_extensions() {
        let url = Url::parse("https://example.com/feed-rs-panics-once.xml").unwrap();
        crate::fault::arm("feed-rs", url.as_str(), 1);
        let doc = three_items();
        let feed = parse_feed(doc.as_bytes(), None, &url, now()).unwrap();
        assert_eq!(
            feed.entries.len(),
            3,
            "the retry without extensions reads it"
        );

        // A panic on the retry too fails the feed, and only the feed.
        let url = Url::parse("https://example.com/feed-rs-panics-twice.xml").unwrap();
        crate::fault::arm("feed-rs", url.as_str(), 2);
        let failed = parse_feed(doc.as_bytes(), None, &url, now());
        assert!(matches!(failed, Err(ParseError::Panic(_))), "{failed:?}");
    }

    #[test]
    fn removed_elements_leave_bodies_and_summaries_before_sanitizing() {
        let doc = r#"<rss version="2.0"><channel><title>T</title><item><title>A</title>
            <link>https://example.com/a</link>
            <description>&lt;p&gt;Teaser.&lt;/p&gt;&lt;p class="more"&gt;Read more&lt;/p&gt;</description>
            <content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/"><![CDATA[
              <div class="ad">Buy now</div><p>The story.</p><aside class="share"><a href="/s">Share</a></aside>
              <aside class="note">A note.</aside>]]></content:encoded>
            </item></channel></rss>"#;
        let selectors: Vec<lol_html::Selector> = [".ad", "aside.share", "p.more"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let run = Run {
            over_budget: &|| false,
            remove: &selectors,
            language: None,
            detect_languages: true,
        };
        let feed = parse_unguarded(doc.as_bytes(), None, &feed_url(), now(), &run).unwrap();
        let entry = &feed.entries[0];
        let content = entry.content.as_deref().unwrap();
        assert!(
            content.contains("The story.") && content.contains("A note."),
            "{content}"
        );
        assert!(
            !content.contains("Buy now") && !content.contains("Share"),
            "{content}"
        );
        assert_eq!(entry.summary.as_deref(), Some("Teaser."));
    }
}
