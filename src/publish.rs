//! Merged, filtered, paged views of the store, rendered as Atom or JSON Feed.

pub mod atom;
pub mod empty;
pub mod health;
pub mod json;

pub use empty::EmptyReason;

use chrono::{DateTime, Utc};

/// Feed-level facts of one rendered page.
#[derive(Debug, Clone)]
pub struct FeedView {
    /// The feed's `atom:id`: stable, derived from its self URL without paging.
    pub id: String,
    pub title: String,
    /// Absolute URL of this page (with its query).
    pub self_url: String,
    /// The HTML page of this tributary instance (`base_url`).
    pub alternate_url: String,
    /// RFC 5005 `rel="next"`, absolute.
    pub next_url: Option<String>,
    pub author: String,
    /// Newest `updated` of the page's articles (or a fixed time when empty).
    pub updated: DateTime<Utc>,
    /// Generator version string.
    pub generator_version: String,
    /// XSLT for browsers that open the feed (`<?xml-stylesheet?>`), when set.
    pub stylesheet: Option<String>,
    /// Why a first page has no article: Atom `subtitle`, JSON Feed
    /// `description`.
    pub why_empty: Option<EmptyReason>,
    /// Entries carry their outlet count (`tributary:outlets`,
    /// `_tributary.outlets`): views that filter or sort by coverage.
    pub show_outlets: bool,
    /// The WebSub hub the view advertises (`rel="hub"`, JSON Feed
    /// `hubs`), with `self_url` as its topic.
    pub hub: Option<String>,
}

use crate::model::{Article, Cursor, Filter};
use crate::store::{Store, StoreError};
use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Atom,
    Json,
}

impl Format {
    /// From a file extension in a route (`x.atom`, `x.json`).
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "atom" => Some(Format::Atom),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// What to render: a merged view and where it lives.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    pub title: String,
    /// Route path without extension, e.g. `/feeds/world` or `/feed`.
    pub path: String,
    /// The query that selects this view, canonical (sorted, no cursor).
    pub query: Vec<(String, String)>,
    pub filter: Filter,
    pub before: Option<Cursor>,
    pub limit: u32,
    pub format: Format,
}

/// Static facts of this instance that every view carries.
#[derive(Debug, Clone)]
pub struct Site {
    /// `base_url` without a trailing slash.
    pub base_url: String,
    pub author: String,
    /// `[websub] hub`: the hub's URL (`{base_url}/websub/hub` for
    /// tributary's own), if one is set.
    pub hub: Option<String>,
    /// Whether the hub takes coverage views (`/top`, `min_outlets`) as
    /// topics: an external hub fetches and compares them; tributary's own
    /// hub sends new entries, which do not make a ranking.
    pub hub_takes_coverage: bool,
}

impl Site {
    /// The hub `request`'s view advertises: none on later pages (only a
    /// view's first page is a topic).
    pub fn hub_for(&self, request: &ViewRequest) -> Option<&str> {
        let coverage = request.filter.min_outlets.is_some()
            || request.filter.sort == crate::model::Sort::Coverage;
        (request.before.is_none() && (self.hub_takes_coverage || !coverage))
            .then_some(self.hub.as_deref())
            .flatten()
    }
}

/// The absolute URL of `request`'s view: its topic, and its first page's
/// `atom:id`, self link and `Link:` header.
pub fn view_url(site: &Site, request: &ViewRequest) -> String {
    view_url_with(site, request, None)
}

fn view_url_with(site: &Site, request: &ViewRequest, extra: Option<(&str, String)>) -> String {
    let mut query = request.query.clone();
    if let Some((k, v)) = extra {
        query.push((k.to_string(), v));
    }
    let ext = request.format.extension();
    let mut url = format!("{}{}.{ext}", site.base_url, request.path);
    if !query.is_empty() {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter())
            .finish();
        url.push('?');
        url.push_str(&encoded);
    }
    url
}

/// A hub's distribution of `articles` (new in `request`'s view) to a
/// subscriber of `topic`: the view's document holding only them, its
/// self link the topic as subscribed.
pub fn distribution(
    site: &Site,
    request: &ViewRequest,
    topic: &str,
    articles: &[Article],
) -> String {
    let updated = articles
        .iter()
        .map(|a| a.changed)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let view = FeedView {
        id: view_url(site, request),
        title: request.title.clone(),
        self_url: topic.to_string(),
        alternate_url: format!("{}/", site.base_url),
        next_url: None,
        author: site.author.clone(),
        updated,
        generator_version: env!("CARGO_PKG_VERSION").to_string(),
        stylesheet: None,
        why_empty: None,
        show_outlets: false,
        hub: site.hub.clone(),
    };
    match request.format {
        Format::Atom => atom::render(&view, articles),
        Format::Json => json::render(&view, articles),
    }
}

/// A rendered page and its validators.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: String,
    /// Strong validator of the exact body (quoted).
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    /// Why the page is empty, when it is the view's first page and empty.
    pub why_empty: Option<EmptyReason>,
}

/// Reads one page of the view and renders it, reusing `entries` where the
/// store shares the page's articles.
/// `now`: the time a `window` counts back from (docs/HTTP.md).
pub async fn render(
    store: &Store,
    site: &Site,
    entries: &atom::EntryCache,
    request: &ViewRequest,
    now: DateTime<Utc>,
) -> Result<Rendered, StoreError> {
    let page = store
        .page_at(&request.filter, request.before, request.limit, now)
        .await?;
    // The time the view's content last changed, not its newest entry's
    // date: an old-dated story stored today changes the view today, and a
    // reader that revalidates with If-Modified-Since alone must see it.
    // Stored times only, so every instance on one database agrees.
    // Every article was stored after the database was created, so its
    // creation time only matters for an empty page.
    let newest_change = page.articles.iter().map(|a| a.changed).max();
    let since = match newest_change {
        Some(changed) => changed,
        None => store.created_at().await?,
    };
    let updated = since.max(store.removed_at().await?);
    // A later page past the last article needs no explanation.
    let why_empty = if page.articles.is_empty() && request.before.is_none() {
        let sources = store.source_states().await?;
        Some(empty::why_empty(store, &request.filter, &sources).await?)
    } else {
        None
    };
    let url_with = |extra: Option<(&str, String)>| view_url_with(site, request, extra);
    let view = FeedView {
        id: url_with(None),
        title: request.title.clone(),
        self_url: url_with(request.before.map(|c| ("before", encode_cursor(c)))),
        alternate_url: format!("{}/", site.base_url),
        next_url: page
            .next
            .map(|c| url_with(Some(("before", encode_cursor(c))))),
        author: site.author.clone(),
        updated,
        generator_version: env!("CARGO_PKG_VERSION").to_string(),
        stylesheet: Some(stylesheet_href(&site.base_url)),
        why_empty,
        show_outlets: request.filter.sort == crate::model::Sort::Coverage
            || request.filter.min_outlets.is_some(),
        hub: site.hub_for(request).map(String::from),
    };
    let body = match request.format {
        Format::Atom => entries.render(&view, &page.articles),
        Format::Json => json::render(&view, &page.articles),
    };
    // Identifies the bytes for revalidation, nothing secret: a 128-bit
    // non-cryptographic hash, ~20x cheaper than SHA-256 on a 120 KB page.
    let etag = format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body.as_bytes()));
    Ok(Rendered {
        body,
        etag,
        last_modified: updated,
        why_empty: view.why_empty,
    })
}

/// `/feed.xsl` under base_url's path. Root-relative, not absolute:
/// browsers apply only same-origin stylesheets, and a feed opened through
/// another host name than base_url's should still render.
fn stylesheet_href(base_url: &str) -> String {
    let path = url::Url::parse(base_url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    format!("{path}/feed.xsl")
}

/// Whether a view with `filter` holds an article carrying tag `terms`,
/// seen in `sources`, in `language`, and why (for `tributary explain`).
/// Mirrors the page query's conditions.
pub fn verdict(
    filter: &Filter,
    terms: &[&str],
    sources: &[String],
    language: Option<&str>,
) -> (bool, String) {
    if !filter.sources.is_empty() && !sources.iter().any(|s| filter.sources.contains(s)) {
        return (
            false,
            format!("not seen in any of sources {:?}", filter.sources),
        );
    }
    if !filter.holds_language(language) {
        let language = language.unwrap_or("unknown");
        return (
            false,
            format!(
                "its language ({language}) is none of `lang` {:?}",
                filter.languages
            ),
        );
    }
    if let Some(t) = filter.none.iter().find(|t| terms.contains(&t.as_str())) {
        return (false, format!("has tag {t:?}, which `none` excludes"));
    }
    if let Some(t) = filter.all.iter().find(|t| !terms.contains(&t.as_str())) {
        return (false, format!("lacks tag {t:?}, which `all` requires"));
    }
    if filter.any.is_empty() {
        return (
            true,
            "no `any` filter; `all`, `none`, `sources` and `lang` pass".to_string(),
        );
    }
    match filter.any.iter().find(|t| terms.contains(&t.as_str())) {
        Some(t) => (true, format!("has tag {t:?} from `any`")),
        None => (
            false,
            format!("has none of the `any` tags {:?}", filter.any),
        ),
    }
}

/// What a view's coverage conditions say of an article with `outlets`
/// published at `published`, at `now` (for `tributary explain`): `None`
/// when the view has none; `Some(None)` when they pass; `Some(Some(why))`
/// when they exclude it.
pub fn coverage_verdict(
    filter: &Filter,
    outlets: i64,
    published: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Option<String>> {
    let window = filter.effective_window();
    if filter.min_outlets.is_none() && window.is_none() {
        return None;
    }
    if let Some(min) = filter.min_outlets.filter(|m| i64::from(*m) > outlets) {
        return Some(Some(format!(
            "carried by {outlets} outlets, fewer than min_outlets = {min}"
        )));
    }
    if let Some(window) = window {
        let since = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| now.checked_sub_signed(w));
        if since.is_some_and(|since| published < since) {
            return Some(Some(format!(
                "published before its window of {}",
                crate::model::format_window(window)
            )));
        }
    }
    Some(None)
}

/// The opaque `before=` value of RFC 5005 paging: `published.id`, and in
/// a coverage-sorted walk `.outlets.as_of` after it.
pub fn encode_cursor(cursor: Cursor) -> String {
    let mut raw = format!("{}.{}", cursor.published.timestamp_micros(), cursor.id);
    if let Some(mark) = cursor.coverage {
        raw += &format!(".{}.{}", mark.outlets, mark.as_of.timestamp_micros());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_cursor(value: &str) -> Option<Cursor> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let time = |micros: &str| DateTime::from_timestamp_micros(micros.parse().ok()?);
    let parts: Vec<&str> = raw.split('.').collect();
    let (published, id, coverage) = match parts[..] {
        [published, id] => (published, id, None),
        [published, id, outlets, as_of] => (
            published,
            id,
            Some(crate::model::CoverageMark {
                outlets: outlets.parse().ok()?,
                as_of: time(as_of)?,
            }),
        ),
        _ => return None,
    };
    Some(Cursor {
        published: time(published)?,
        id: id.parse().ok()?,
        coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_filter_rules() {
        let filter = Filter {
            any: vec!["china".into(), "russia".into()],
            all: vec!["world".into()],
            none: vec!["sport".into()],
            sources: vec!["rfi-en".into()],
            languages: vec!["fr".into()],
            ..Filter::default()
        };
        let rfi = vec!["rfi-en".to_string()];
        let fr = Some("fr");
        // Tags, sources, language; whether included, and why.
        type Case<'a> = (&'a [&'a str], &'a [String], Option<&'a str>, bool, &'a str);
        let cases: &[Case] = &[
            (&["world", "china"], &rfi, fr, true, "\"china\" from `any`"),
            (&["world", "china"], &rfi, Some("fr-CA"), true, "`any`"),
            (&["world", "china", "sport"], &rfi, fr, false, "\"sport\""),
            (&["china"], &rfi, fr, false, "lacks tag \"world\""),
            (&["world"], &rfi, fr, false, "none of the `any` tags"),
            (
                &["world", "china"],
                &[],
                fr,
                false,
                "not seen in any of sources",
            ),
            (&["world", "china"], &rfi, Some("en"), false, "(en) is none"),
            (
                &["world", "china"],
                &rfi,
                Some("fro"),
                false,
                "(fro) is none",
            ),
            (&["world", "china"], &rfi, None, false, "(unknown) is none"),
        ];
        for (terms, sources, language, included, why) in cases {
            let (ok, reason) = verdict(&filter, terms, sources, *language);
            assert_eq!(ok, *included, "{terms:?}: {reason}");
            // Webhooks match in memory with `Filter::holds`: the same answer.
            let names: Vec<&str> = sources.iter().map(String::as_str).collect();
            assert_eq!(filter.holds(terms, &names, *language), ok, "{reason}");
            assert!(reason.contains(why), "{reason}");
        }
        assert!(verdict(&Filter::default(), &[], &[], None).0);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let cursor = Cursor {
            published: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: 42,
            coverage: None,
        };
        assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        let walk = Cursor {
            coverage: Some(crate::model::CoverageMark {
                outlets: 3,
                as_of: DateTime::from_timestamp_micros(1_764_000_100_000_000).unwrap(),
            }),
            ..cursor
        };
        assert_eq!(decode_cursor(&encode_cursor(walk)), Some(walk));
        for bad in ["", "!!!", "bm90LWEtY3Vyc29y", "MTIz"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
