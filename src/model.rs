//! The types every step shares: what a parsed feed looks like, what the store
//! keeps, and what publishing reads. No logic beyond small constructors.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// A tag as users see it. `term` is its identity (docs/TAGS-AND-DEDUP.md "How tags work"), `label` the
/// first spelling seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    pub term: String,
    pub label: String,
}

impl Tag {
    /// Builds a tag from any spelling; `None` when it folds to an empty term.
    pub fn from_label(label: &str) -> Option<Tag> {
        let label = label.trim();
        let term = crate::text::term(label);
        (!term.is_empty()).then(|| Tag {
            term,
            label: label.to_string(),
        })
    }
}

/// Feed-level facts a source gives about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedMeta {
    pub title: Option<String>,
    /// The publisher's web site (RSS `link`, Atom `link rel=alternate`), absolute.
    pub site_url: Option<String>,
    /// Atom `id` when the feed has one.
    pub feed_id: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    /// RSS `<ttl>`: a floor on the polling interval.
    pub ttl: Option<Duration>,
    /// WebSub hubs the feed names (`atom:link rel="hub"`, JSON Feed
    /// `hubs`), absolute http(s) URLs; the `Link` header's are added by
    /// the pipeline.
    pub hubs: Vec<String>,
    /// The feed's own URL as it states it (`rel="self"`): the WebSub topic.
    pub self_url: Option<String>,
}

/// One entry as the parser normalized it: absolute URLs, sanitized HTML,
/// UTC dates, categories as given. Identity is decided later by `dedup`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// The source's own id (RSS `guid`, Atom `id`, JSON Feed `id`), trimmed.
    pub guid: Option<String>,
    /// Absolute URL of the original article.
    pub link: Option<String>,
    pub title: Option<String>,
    /// Plain text.
    pub summary: Option<String>,
    /// Sanitized HTML (docs/CONFIG.md "Fetching").
    pub content: Option<String>,
    pub author: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Category labels as the feed spells them.
    pub categories: Vec<String>,
    /// BCP 47 tag: the one the feed states, else the one detected
    /// (`parse::language`).
    pub language: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub meta: FeedMeta,
    pub entries: Vec<Entry>,
    /// What went wrong in a feed read only in part (a document cut off
    /// after some complete entries): the entries are kept, and this is
    /// the source's error for the operator.
    pub warning: Option<String>,
    /// Fields the parser cut to their caps (`parse::limits`), for the log.
    pub cuts: Vec<FieldCut>,
}

/// A field longer than its cap, cut to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCut {
    /// `title`, `author`, `summary`, `content`, `categories`, `guid`,
    /// `link` (dropped, not cut), `feed title`, `feed id` or `site url`
    /// (dropped).
    pub field: &'static str,
    /// Index of the entry in the feed; `None` for a feed-level field.
    pub entry: Option<usize>,
    /// Its length before the cut: bytes, or for `categories` their count.
    pub length: usize,
}

/// An entry made ready for the store: its identity keys and its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArticle {
    /// Identity within one source: `guid:…`, else `link:…`, else `hash:…`.
    pub entry_key: String,
    /// Identity across sources (docs/TAGS-AND-DEDUP.md "How deduplication works"), when the entry has a link.
    pub canonical_url: Option<String>,
    /// Identity of an entry with neither id nor link: hash of title and content.
    pub content_key: Option<String>,
    /// Public, stable id (`urn:uuid:…`) given to the article if it is new.
    pub uid: String,
    /// Hash of title and content: a change means the story was edited.
    pub fingerprint: String,
    pub link: Option<String>,
    pub title: String,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub author: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub tags: Vec<Tag>,
    /// Why each tag is there (same order as `tags`), for `tributary explain`.
    pub tag_origins: Vec<String>,
    pub language: Option<String>,
}

/// An entry a `[[rule]]` dropped (docs/CONFIG.md "Rules"), as the store
/// remembers it: an unchanged entry under unchanged rules is not judged
/// again, and `explain` can say which rule dropped it.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedEntry {
    /// The source's own key for the entry (`NewArticle::entry_key`).
    pub entry_key: String,
    /// The entry's text hash (`NewArticle::fingerprint`): an edited entry
    /// is judged again.
    pub fingerprint: String,
    pub canonical_url: Option<String>,
    pub link: Option<String>,
    pub title: String,
    /// The rule's name (`not-kept` when no keep rule matched).
    pub rule: String,
    /// The rule as `explain` shows it.
    pub why: String,
}

/// The feed an article was first seen in, for `atom:source` (RFC 4287 §4.2.11).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRef {
    pub name: String,
    pub feed_url: String,
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub feed_id: Option<String>,
    pub updated: Option<DateTime<Utc>>,
}

/// A stored article as publishing reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub id: i64,
    pub uid: String,
    pub link: Option<String>,
    pub title: String,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub author: Option<String>,
    /// BCP 47 tag (`en`, `fr-FR`), when stated or detected.
    pub language: Option<String>,
    pub published: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// When the store last saw this article change as readers see it
    /// (stored, edited, another source or outlet added): what a view's
    /// `Last-Modified` is made of.
    pub changed: DateTime<Utc>,
    pub tags: Vec<Tag>,
    pub source: SourceRef,
    /// Names of every source the article was seen in, first one first.
    pub seen_in: Vec<String>,
    /// Other outlets' copies of the same story (near-duplicates under other
    /// URLs), served as `rel="related"`.
    pub related: Vec<String>,
    /// How many distinct outlets carried it (docs/TAGS-AND-DEDUP.md
    /// "Outlets"); in a coverage-sorted view, as of the walk's time.
    pub outlets: i64,
}

/// Which articles a merged view holds. Tag lists hold terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub any: Vec<String>,
    pub all: Vec<String>,
    pub none: Vec<String>,
    pub sources: Vec<String>,
    /// Languages (primary subtags, lowercase: `fr` also holds `fr-CA`).
    pub languages: Vec<String>,
    /// Only articles that at least this many distinct outlets carried.
    pub min_outlets: Option<u32>,
    /// Only articles published within this long before the view's time.
    pub window: Option<Duration>,
    pub sort: Sort,
}

impl Filter {
    /// The window of a coverage-sorted view that sets none: a bounded
    /// set to rank, the stories of the last day.
    pub const COVERAGE_WINDOW: Duration = Duration::from_secs(86_400);
    /// The longest `window`: a coverage-sorted page ranks every article of
    /// its window, so this bounds a page's work.
    pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);
    /// The largest `min_outlets`: far above any story's coverage.
    pub const MAX_MIN_OUTLETS: u32 = 10_000;

    /// Whether an article carrying tag `terms`, seen in `sources`, in
    /// `language` passes the tag, source and language conditions: what
    /// the page query asks of it (`publish::verdict` says why), for what
    /// is matched in memory (webhooks, at ingest).
    pub fn holds(&self, terms: &[&str], sources: &[&str], language: Option<&str>) -> bool {
        let has = |t: &String| terms.contains(&t.as_str());
        (self.sources.is_empty() || sources.iter().any(|s| self.sources.iter().any(|f| f == s)))
            && self.holds_language(language)
            && !self.none.iter().any(has)
            && self.all.iter().all(has)
            && (self.any.is_empty() || self.any.iter().any(has))
    }

    /// Whether an article in `language` passes `lang`: a filter language
    /// holds its regional variants (`fr` holds `fr-CA`).
    pub fn holds_language(&self, language: Option<&str>) -> bool {
        if self.languages.is_empty() {
            return true;
        }
        let Some(lang) = language.map(str::to_ascii_lowercase) else {
            return false;
        };
        self.languages.iter().any(|wanted| {
            lang == *wanted
                || lang
                    .strip_prefix(wanted.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    }

    /// The window this view applies, if any.
    pub fn effective_window(&self) -> Option<Duration> {
        match self.sort {
            Sort::Coverage => Some(self.window.unwrap_or(Filter::COVERAGE_WINDOW)),
            Sort::Published => self.window,
        }
    }
}

/// The order of a merged view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    /// Newest first (published, then id).
    #[default]
    Published,
    /// Most outlets first, then newest first.
    Coverage,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Published => "published",
            Sort::Coverage => "coverage",
        }
    }

    pub fn from_name(name: &str) -> Option<Sort> {
        [Sort::Published, Sort::Coverage]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A window as the config and queries write it, in its largest whole unit
/// (`12h`, `1d`, `90m`).
pub fn format_window(window: Duration) -> String {
    let secs = window.as_secs();
    let millis = window.as_millis();
    if !millis.is_multiple_of(1000) || secs == 0 {
        return format!("{millis}ms");
    }
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// Keyset position: the last article of the previous page (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub published: DateTime<Utc>,
    pub id: i64,
    /// In a coverage-sorted view: where the walk is in coverage order.
    pub coverage: Option<CoverageMark>,
}

/// A coverage-sorted walk's position beyond (published, id): the last
/// article's outlet count, and the time the walk's first page was read.
/// The walk counts only copies seen at or before `as_of`, so an article
/// whose coverage grows meanwhile keeps its place, and neither shows twice
/// nor is skipped (docs/HTTP.md "Top stories").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoverageMark {
    pub outlets: i64,
    pub as_of: DateTime<Utc>,
}

/// One page of a merged view.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Shared, not copied: SQLite's page reader remembers the articles it
    /// read for the next pages (store/sqlite/page_reader.rs).
    pub articles: Vec<std::sync::Arc<Article>>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// What the store knows about a source's health, for `tributary sources`,
/// the scheduler and the index page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceState {
    pub name: String,
    pub url: String,
    pub enabled: bool,
    pub title: Option<String>,
    pub articles: i64,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    pub next_fetch_at: Option<DateTime<Utc>>,
    /// A `Retry-After` the server asked for, in force until then.
    pub retry_after_until: Option<DateTime<Utc>>,
    /// Backoff after failures, in force until then.
    pub backoff_until: Option<DateTime<Utc>>,
    /// Why the source stopped being fetched (410 Gone), if it did.
    pub disabled_reason: Option<String>,
    /// A permanent redirect target seen on the last fetch.
    pub moved_to: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When the source last brought a new entry (the health feed's quiet).
    pub last_new_at: Option<DateTime<Utc>>,
}

/// One source's fetches on one UTC day (the history's rollup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayStats {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub fetches: i64,
    pub ok: i64,
    pub not_modified: i64,
    pub failed: i64,
    pub new_entries: i64,
    pub bytes: i64,
}

/// One fetch as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLogEntry {
    pub at: DateTime<Utc>,
    /// `ok`, `not_modified`, `partial`, `throttled`, `gone` or `failed`.
    pub outcome: String,
    pub status: Option<u16>,
    pub duration_ms: i64,
    pub bytes: i64,
    pub new_entries: i64,
    pub error: Option<String>,
}

/// What changed in a source's state (the health feed's entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthKind {
    /// `failing_after` consecutive failures.
    Failing,
    /// Fetched again after failing.
    Recovered,
    /// 410 Gone: no longer fetched.
    Gone,
    /// A permanent redirect to another URL.
    Moved,
    /// No new entry for `quiet_after`.
    Quiet,
    /// More than `flood` new entries in one fetch.
    Flood,
}

impl HealthKind {
    pub const ALL: [HealthKind; 6] = [
        HealthKind::Failing,
        HealthKind::Recovered,
        HealthKind::Gone,
        HealthKind::Moved,
        HealthKind::Quiet,
        HealthKind::Flood,
    ];

    /// As stored, and in entry ids.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthKind::Failing => "failing",
            HealthKind::Recovered => "recovered",
            HealthKind::Gone => "gone",
            HealthKind::Moved => "moved",
            HealthKind::Quiet => "quiet",
            HealthKind::Flood => "flood",
        }
    }

    pub fn parse(s: &str) -> Option<HealthKind> {
        HealthKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A change of a source's state, at the time it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub source: String,
    pub kind: HealthKind,
    pub at: DateTime<Utc>,
    /// What happened, in words (the error, the new URL, the count).
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_written_in_their_largest_whole_unit() {
        for (secs, text) in [
            (43_200, "12h"),
            (86_400, "1d"),
            (5_400, "90m"),
            (1_209_600, "2w"),
            (61, "61s"),
        ] {
            assert_eq!(format_window(Duration::from_secs(secs)), text);
        }
        assert_eq!(format_window(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(
            crate::config::parse_duration("1500ms").unwrap(),
            Duration::from_millis(1_500)
        );
    }
}

/// What fetching an entry's article page for its full text came to
/// (docs/CONFIG.md "Full text"), as the `article_pages` table keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOutcome {
    /// The main text was extracted and replaces the feed's content.
    Extracted,
    /// Extraction gave no more text than the feed: the feed's content stays.
    KeptFeed,
    /// The page is not HTML.
    NotHtml,
    /// The page is larger than `max_body`.
    TooLarge,
    /// The site's robots.txt disallows the page.
    Disallowed,
    /// The request failed (HTTP status, timeout, connection).
    Failed,
}

impl PageOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PageOutcome::Extracted => "extracted",
            PageOutcome::KeptFeed => "kept_feed",
            PageOutcome::NotHtml => "not_html",
            PageOutcome::TooLarge => "too_large",
            PageOutcome::Disallowed => "disallowed",
            PageOutcome::Failed => "failed",
        }
    }

    /// The stored name back; an unknown one (a newer version's) reads as a
    /// final failure.
    pub fn from_name(name: &str) -> PageOutcome {
        match name {
            "extracted" => PageOutcome::Extracted,
            "kept_feed" => PageOutcome::KeptFeed,
            "not_html" => PageOutcome::NotHtml,
            "too_large" => PageOutcome::TooLarge,
            "disallowed" => PageOutcome::Disallowed,
            _ => PageOutcome::Failed,
        }
    }
}

/// One article page's state: what its last fetch came to and when it may
/// be tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRecord {
    pub url: String,
    pub outcome: PageOutcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The extracted body (sanitized HTML), when `outcome` is `Extracted`.
    pub content: Option<String>,
    /// Fetches of this page so far.
    pub attempts: u32,
    pub fetched_at: DateTime<Utc>,
    /// A failure that may pass is tried again from then; `None`: final.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The page's validators, for a conditional read when its entry is
    /// updated.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The entry's `updated` when the page was read.
    pub entry_updated: Option<DateTime<Utc>>,
}
