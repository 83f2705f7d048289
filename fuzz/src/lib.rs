//! The invariants the fuzz targets assert. Each `check_*` function takes the
//! raw fuzzer input, runs it through tributary's public entry point and
//! panics when an invariant breaks (libFuzzer reports a panic as a crash).
//!
//! The replay test `tests/fuzz_regressions.rs` includes this file, so a
//! saved input is checked exactly as the fuzzer checked it.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use url::Url;

use tributary::config::{Config, ConfigError};
use tributary::model::{Entry, ParsedFeed};
use tributary::parse::{limits, parse_feed, parse_timestamp, sanitize_html, ParseError};
use tributary::publish::{decode_cursor, encode_cursor};
use tributary::server::{ApiError, ViewParams, MAX_LIMIT};

/// Parsed output may be at most this many times the size of the input, plus
/// [`PARSE_OUTPUT_SLACK`]. Escaping (`&` -> `&amp;`), `rel="noopener
/// noreferrer"` on links and relative URLs made absolute grow text by a small
/// factor; anything beyond this is amplification (entity expansion, a field
/// copied into every entry). Loose on purpose until the parser has caps of
/// its own (entity expansion and stored field sizes); tighten it to those
/// caps then.
pub const PARSE_OUTPUT_RATIO: usize = 64;
/// Fixed allowance on top of [`PARSE_OUTPUT_RATIO`] (a tiny input can still
/// name a long base URL in every link).
pub const PARSE_OUTPUT_SLACK: usize = 64 * 1024;

/// The base URL inputs are parsed against.
pub const FEED_URL: &str = "https://fuzz.example/feeds/main.xml";

/// The first-seen time: dates more than a day after it must come out clamped.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default()
}

/// Content-Type headers the parse target pairs with its input (chosen by the
/// input's length, so seeds from the shared corpus stay byte for byte).
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/rss+xml"),
    Some("text/xml; charset=iso-8859-1"),
    Some("application/atom+xml; charset=utf-16"),
    Some("application/feed+json; charset=utf-8"),
    Some("text/html; charset=bogus"),
];

/// Feed bytes through the whole parser: encoding detection, pre-processing,
/// feed-rs and normalization.
///
/// - no panic (one caught by `parse_feed`'s guard is a finding too);
/// - output bounded by the input size ([`PARSE_OUTPUT_RATIO`]);
/// - every string free of XML-illegal characters and C1 controls;
/// - links absolute http(s) URLs;
/// - content passes the sanitizer checks of [`check_sanitized`];
/// - no date more than a day after "now".
pub fn check_parse(data: &[u8]) {
    let content_type = CONTENT_TYPES[data.len() % CONTENT_TYPES.len()];
    let feed_url = Url::parse(FEED_URL).unwrap();
    let feed = match parse_feed(data, content_type, &feed_url, now()) {
        Ok(feed) => feed,
        Err(ParseError::Panic(message)) => panic!("parser panicked: {message}"),
        Err(ParseError::Empty | ParseError::NotAFeed(_) | ParseError::Refused(_)) => return,
    };
    let size = output_size(&feed);
    let bound = data.len() * PARSE_OUTPUT_RATIO + PARSE_OUTPUT_SLACK;
    assert!(
        size <= bound,
        "{} input bytes gave {size} output bytes (bound {bound})",
        data.len()
    );
    let latest = now() + Duration::days(1);
    let meta = &feed.meta;
    for text in [&meta.title, &meta.site_url, &meta.feed_id]
        .into_iter()
        .flatten()
    {
        assert_clean_text(text);
    }
    if let Some(site) = &meta.site_url {
        assert_http_url(site);
        assert!(site.len() <= limits::MAX_URL_BYTES, "site url over its cap");
    }
    let feed_id = meta.feed_id.as_deref().map_or(0, str::len);
    assert!(feed_id <= limits::MAX_ID_BYTES, "feed id over its cap");
    assert!(
        meta.updated.is_none_or(|d| d <= latest),
        "feed date not clamped: {:?}",
        meta.updated
    );
    for entry in &feed.entries {
        check_entry(entry, latest);
    }
}

fn check_entry(entry: &Entry, latest: DateTime<Utc>) {
    let texts = [
        &entry.guid,
        &entry.link,
        &entry.title,
        &entry.summary,
        &entry.content,
        &entry.author,
    ];
    for text in texts.into_iter().flatten().chain(&entry.categories) {
        assert_clean_text(text);
    }
    // Every stored field within its cap (README "Fetching").
    let within = |field: &Option<String>, cap: usize, name: &str| {
        let len = field.as_deref().map_or(0, str::len);
        assert!(len <= cap, "{name} of {len} bytes over its cap {cap}");
    };
    within(&entry.title, limits::MAX_TITLE_BYTES, "title");
    within(&entry.author, limits::MAX_AUTHOR_BYTES, "author");
    within(&entry.summary, limits::MAX_SUMMARY_BYTES, "summary");
    within(&entry.content, limits::MAX_CONTENT_BYTES, "content");
    within(&entry.guid, limits::MAX_ID_BYTES, "guid");
    within(&entry.link, limits::MAX_URL_BYTES, "link");
    assert!(entry.categories.len() <= limits::MAX_CATEGORIES);
    for category in &entry.categories {
        assert!(category.len() <= limits::MAX_CATEGORY_BYTES, "{category:?}");
    }
    if let Some(link) = &entry.link {
        assert_http_url(link);
    }
    if let Some(content) = &entry.content {
        assert_no_active_content(content);
    }
    for date in [entry.published, entry.updated].into_iter().flatten() {
        assert!(date <= latest, "entry date not clamped: {date}");
    }
}

/// Bytes of text the parse produced. An author inherited from the feed
/// (RFC 4287 §4.2.1) is counted once, not once per entry.
fn output_size(feed: &ParsedFeed) -> usize {
    let m = &feed.meta;
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let mut authors = std::collections::HashSet::new();
    let mut size = len(&m.title) + len(&m.site_url) + len(&m.feed_id);
    for e in &feed.entries {
        size += len(&e.guid) + len(&e.link) + len(&e.title) + len(&e.summary) + len(&e.content);
        size += e.categories.iter().map(String::len).sum::<usize>();
        if let Some(author) = &e.author {
            if authors.insert(author.as_str()) {
                size += author.len();
            }
        }
    }
    size
}

/// XML-illegal characters and the C1 controls windows-1252 gives a meaning
/// to (the parser turns those into the windows-1252 characters; the five it
/// leaves undefined stay, as XML 1.0 allows them).
fn assert_clean_text(s: &str) {
    let bad = s.chars().find(|&c| {
        let c1 = matches!(c, '\u{80}'..='\u{9F}')
            && !matches!(c, '\u{81}' | '\u{8D}' | '\u{8F}' | '\u{90}' | '\u{9D}');
        c1 || matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    });
    assert!(
        bad.is_none(),
        "illegal character {bad:?} in {:?}",
        excerpt(s, 0)
    );
}

/// Up to 200 characters of `s` from about byte `at`, for failure messages.
fn excerpt(s: &str, at: usize) -> String {
    let start = (0..=at.min(s.len()).saturating_sub(80))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    s[start..].chars().take(200).collect()
}

fn assert_http_url(s: &str) {
    let url = Url::parse(s).unwrap_or_else(|e| panic!("link {s:?} is not a URL: {e}"));
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "link {s:?} is not http(s)"
    );
}

/// An HTML fragment through the sanitizer (input read as UTF-8, lossily).
///
/// - no `<script>` element, no `on*` attribute, no `javascript:`,
///   `vbscript:` or `data:` URL, every URL attribute absolute;
/// - the same holds for the output sanitized again (what a browser parses
///   from the output), and that second pass changes nothing (see
///   docs/FUZZING.md for the unwrapped tags and tables that once did).
pub fn check_sanitized(data: &[u8]) {
    let html = String::from_utf8_lossy(data);
    let base = Url::parse(FEED_URL).unwrap();
    let once = sanitize_html(&html, &base);
    assert_no_active_content(&once);
    let twice = sanitize_html(&once, &base);
    // What a reader's browser builds from the output must be inert too.
    assert_no_active_content(&twice);
    let (once, twice) = (pre_newline_dropped(&once), pre_newline_dropped(&twice));
    if once != twice {
        let at = once
            .bytes()
            .zip(twice.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(once.len().min(twice.len()));
        panic!(
            "sanitizing again changed byte {at}: {:?} became {:?}",
            excerpt(&once, at),
            excerpt(&twice, at)
        );
    }
}

/// `html` without the newline that may open a `<pre>`. An HTML parser drops
/// one such newline and html5ever's serializer does not write it back, so a
/// leading blank line in a `<pre>` is lost on every pass; a cosmetic upstream
/// quirk, not the instability this target looks for.
fn pre_newline_dropped(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find("<pre") {
        let Some(end) = rest[at..].find('>') else {
            break;
        };
        let tag_end = at + end + 1;
        out.push_str(&rest[..tag_end]);
        rest = &rest[tag_end..];
        rest = rest.strip_prefix('\n').unwrap_or(rest);
    }
    out.push_str(rest);
    out
}

/// The sanitizer's promises about its output, checked on the serialized
/// HTML: tags and attributes as html5ever writes them (double-quoted
/// values, `<` in text always escaped).
pub fn assert_no_active_content(html: &str) {
    for (tag, attrs) in tags(html) {
        assert!(
            !tag.eq_ignore_ascii_case("script"),
            "<script> in sanitized output {html:?}"
        );
        for (name, value) in attrs {
            let name = name.to_ascii_lowercase();
            assert!(
                !name.starts_with("on"),
                "event handler {name:?} on <{tag}> in {html:?}"
            );
            // The attributes a browser loads or navigates to (ammonia's list).
            if !matches!(
                name.as_str(),
                "href"
                    | "xlink:href"
                    | "src"
                    | "action"
                    | "data"
                    | "formaction"
                    | "ping"
                    | "poster"
            ) {
                continue;
            }
            let value = decode_attr(&value);
            // Browsers ignore ASCII whitespace and controls inside a scheme.
            let squeezed: String = value
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
                .collect::<String>()
                .to_ascii_lowercase();
            for scheme in ["javascript:", "vbscript:", "data:"] {
                assert!(
                    !squeezed.starts_with(scheme),
                    "{scheme} URL in {name:?} on <{tag}> in {html:?}"
                );
            }
            assert!(
                Url::parse(&value).is_ok(),
                "relative {name}={value:?} on <{tag}> in {html:?}"
            );
        }
    }
}

/// Start tags of serialized HTML: (name, [(attribute, raw value)]).
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if rest.starts_with('/') || rest.starts_with('!') {
            continue;
        }
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_string();
        rest = &rest[name_end..];
        let mut attrs = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('>') || rest.starts_with('/') {
                break;
            }
            let key_end = rest
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>')
                .unwrap_or(rest.len());
            let key = rest[..key_end].to_string();
            rest = &rest[key_end..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix("=\"") {
                let end = after.find('"').unwrap_or(after.len());
                value = after[..end].to_string();
                rest = after.get(end + 1..).unwrap_or("");
            }
            attrs.push((key, value));
        }
        out.push((name, attrs));
    }
    out
}

/// The character references html5ever's serializer writes in attributes.
fn decode_attr(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A date string through the lenient timestamp parser.
///
/// - no panic;
/// - a parsed date lies in years 0..=9999 (what RFC 3339, and so the Atom
///   and JSON Feed output, can write);
/// - it survives a round trip: its RFC 3339 form parses to the same second.
pub fn check_date(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let Some(date) = parse_timestamp(&raw) else {
        return;
    };
    assert!(
        (0..=9999).contains(&date.year()),
        "{raw:?} parsed to out-of-range {date}"
    );
    let whole = date.with_nanosecond(0).unwrap_or(date);
    let written = whole.to_rfc3339();
    assert_eq!(
        parse_timestamp(&written),
        Some(whole),
        "{raw:?} parsed to {date}, whose RFC 3339 form {written:?} does not read back"
    );
}

/// A config file through the loader.
///
/// - no panic;
/// - a rejection is `ConfigError::Invalid` with a line and column inside the
///   text, never an I/O or "not found" error.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, Path::new("fuzz.toml")) {
        Ok(_) => {}
        Err(ConfigError::Invalid {
            file,
            line,
            col,
            message,
        }) => {
            assert_eq!(file, "fuzz.toml");
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&line) && col >= 1,
                "position {line}:{col} outside a {lines}-line file ({message})"
            );
            let width = text
                .split('\n')
                .nth(line - 1)
                .map_or(0, |l| l.chars().count());
            assert!(
                col <= width + 1,
                "column {col} past the end of line {line} ({width} chars): {message}"
            );
            assert!(!message.trim().is_empty(), "empty message at {line}:{col}");
        }
        Err(other) => panic!("config text gave a non-positional error: {other}"),
    }
}

/// A URL query string through the feed views' parameter parser, both as a
/// merged view (filters allowed) and as a configured feed (paging only).
///
/// - no panic; a rejection is a 400 (`BadRequest`) with a message;
/// - every term non-empty, normalized (`text::term` of itself), the lists
///   sorted and deduplicated;
/// - terms bounded by the input: at most one per two input bytes, and no
///   more text than three times the input (lowercasing can grow a char);
/// - `limit` within 1..=MAX_LIMIT, and a cursor survives a round trip.
pub fn check_query(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    for filters_allowed in [true, false] {
        let params = match ViewParams::parse(Some(query), filters_allowed) {
            Ok(params) => params,
            Err(ApiError::BadRequest(message)) => {
                assert!(!message.is_empty());
                continue;
            }
            Err(other) => panic!("query {query:?} gave {other:?}"),
        };
        let f = &params.filter;
        let lists = [&f.any, &f.all, &f.none, &f.sources];
        if !filters_allowed {
            assert!(
                lists.iter().all(|l| l.is_empty()),
                "filters read from {query:?} on a configured feed"
            );
        }
        let mut count = 0;
        let mut bytes = 0;
        for list in lists {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "unsorted or duplicate terms {list:?}"
            );
            for term in list {
                assert!(!term.is_empty(), "empty term from {query:?}");
                count += 1;
                bytes += term.len();
            }
        }
        for term in f.any.iter().chain(&f.all).chain(&f.none) {
            assert_eq!(&tributary::text::term(term), term, "term not normalized");
        }
        assert!(
            count <= query.len() / 2 + 1,
            "{count} terms from {} bytes",
            query.len()
        );
        assert!(
            bytes <= 3 * query.len(),
            "{bytes} bytes of terms from {} bytes",
            query.len()
        );
        if let Some(limit) = params.limit {
            assert!((1..=MAX_LIMIT).contains(&limit));
        }
        // Coverage parameters stay within the bounds that cap a page's work.
        use tributary::model::Filter;
        if let Some(n) = f.min_outlets {
            assert!(
                (1..=Filter::MAX_MIN_OUTLETS).contains(&n),
                "min_outlets {n}"
            );
        }
        if let Some(window) = f.window {
            assert!(
                !window.is_zero() && window <= Filter::MAX_WINDOW,
                "window {window:?}"
            );
        }
        if !filters_allowed {
            assert!(f.min_outlets.is_none() && f.window.is_none() && params.sort.is_none());
        }
        if let Some(cursor) = params.before {
            assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        }
    }
}
