//! Rendered feed pages kept per view and store version: a repeated request,
//! and every 304, costs no query and no rendering until the articles change.

use crate::model::Cursor;
use crate::publish::{Format, Rendered, ViewRequest};
use axum::body::Bytes;
use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Views kept at once, and their bytes; past either, pages of older
/// versions go first, then the least recently used. Far above the
/// configured feeds plus popular tag views, and bounded so that clients
/// walking random filters cannot grow the daemon (a 50-entry page is ~120
/// KB) nor push out the views in steady use.
const MAX_VIEWS: usize = 256;
const MAX_BYTES: usize = 24 << 20;
/// A page over this share of the budget is served but not kept: one huge
/// view would otherwise push out every hot feed and pin its memory.
const MAX_PAGE_BYTES: usize = MAX_BYTES / 8;
/// A page is rendered again at least this often, whatever the version says:
/// a safety net for changes no version bump announced.
const MAX_AGE: Duration = Duration::from_secs(60);

/// What identifies a view's page (its title and filter follow from these
/// and the config, which is fixed for one cache).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ViewKey {
    path: String,
    query: Vec<(String, String)>,
    before: Option<Cursor>,
    limit: u32,
    format: Format,
}

impl ViewKey {
    fn of(request: &ViewRequest) -> ViewKey {
        ViewKey {
            path: request.path.clone(),
            query: request.query.clone(),
            before: request.before,
            limit: request.limit,
            format: request.format,
        }
    }
}

/// A rendered page, cheap to clone into a response, with its compressed
/// forms made once on first demand rather than on every request.
#[derive(Debug, Clone)]
pub struct CachedPage {
    pub body: Bytes,
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    /// The validators as header values, made once: a 304 then allocates
    /// nothing for them.
    pub etag_header: Option<HeaderValue>,
    pub last_modified_header: Option<HeaderValue>,
    gzip: Arc<OnceLock<Bytes>>,
    br: Arc<OnceLock<Bytes>>,
}

/// Content codings served from the cache (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    /// The best coding `Accept-Encoding` allows: br, then gzip.
    pub fn negotiate(accept_encoding: Option<&str>) -> Coding {
        let Some(accept) = accept_encoding else {
            return Coding::Identity;
        };
        let quality = |name: &str| {
            accept
                .split(',')
                .filter_map(|item| {
                    let mut parts = item.split(';');
                    let coding = parts.next()?.trim();
                    (coding.eq_ignore_ascii_case(name) || coding == "*").then(|| {
                        parts
                            .filter_map(|p| p.trim().strip_prefix("q="))
                            .find_map(|q| q.trim().parse::<f32>().ok())
                            .unwrap_or(1.0)
                    })
                })
                .fold(0.0_f32, f32::max)
        };
        if quality("br") > 0.0 {
            Coding::Brotli
        } else if quality("gzip") > 0.0 {
            Coding::Gzip
        } else {
            Coding::Identity
        }
    }

    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }
}

impl CachedPage {
    /// The body in `coding`.
    pub fn encoded(&self, coding: Coding) -> Bytes {
        match coding {
            Coding::Identity => self.body.clone(),
            Coding::Gzip => self.gzip.get_or_init(|| gzip(&self.body)).clone(),
            Coding::Brotli => self.br.get_or_init(|| brotli(&self.body)).clone(),
        }
    }
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to memory cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn brotli(body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(body.len() / 4);
    let params = ::brotli::enc::BrotliEncoderParams {
        quality: 5,
        ..Default::default()
    };
    let _ = ::brotli::BrotliCompress(&mut &body[..], &mut out, &params);
    Bytes::from(out)
}

impl From<Rendered> for CachedPage {
    fn from(rendered: Rendered) -> Self {
        let http_date = httpdate::fmt_http_date(SystemTime::from(rendered.last_modified));
        CachedPage {
            body: Bytes::from(rendered.body),
            etag_header: HeaderValue::from_str(&rendered.etag).ok(),
            last_modified_header: HeaderValue::from_str(&http_date).ok(),
            etag: rendered.etag,
            last_modified: rendered.last_modified,
            gzip: Default::default(),
            br: Default::default(),
        }
    }
}

struct Entry {
    version: i64,
    rendered_at: Instant,
    last_used: Instant,
    page: CachedPage,
}

#[derive(Default)]
pub struct FeedCache {
    pages: Mutex<Pages>,
}

#[derive(Default)]
struct Pages {
    entries: HashMap<ViewKey, Entry>,
    bytes: usize,
}

impl FeedCache {
    /// The page of `request` rendered at `version`, if still fresh.
    pub fn get(&self, request: &ViewRequest, version: i64) -> Option<CachedPage> {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let entry = pages
            .entries
            .get_mut(&ViewKey::of(request))
            .filter(|e| e.version == version && e.rendered_at.elapsed() < MAX_AGE)?;
        entry.last_used = Instant::now();
        Some(entry.page.clone())
    }

    /// The page of `request` rendered at `version`, however old: served
    /// while the database does not answer (`Store::database_away`).
    pub fn get_stale(&self, request: &ViewRequest, version: i64) -> Option<CachedPage> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let entry = pages
            .entries
            .get(&ViewKey::of(request))
            .filter(|e| e.version == version)?;
        Some(entry.page.clone())
    }

    pub fn put(&self, request: &ViewRequest, version: i64, page: CachedPage) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let key = ViewKey::of(request);
        if let Some(old) = pages.entries.remove(&key) {
            pages.bytes -= old.page.body.len();
        }
        let size = page.body.len();
        if size > MAX_PAGE_BYTES {
            return;
        }
        let full =
            |pages: &Pages| pages.entries.len() >= MAX_VIEWS || pages.bytes + size > MAX_BYTES;
        if full(&pages) {
            // Pages of an older version are only re-rendered on their next
            // request anyway.
            pages.entries.retain(|_, e| e.version == version);
            pages.bytes = pages.entries.values().map(|e| e.page.body.len()).sum();
        }
        while full(&pages) {
            let Some(oldest) = pages
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = pages.entries.remove(&oldest) {
                pages.bytes -= old.page.body.len();
            }
        }
        let now = Instant::now();
        let entry = Entry {
            version,
            rendered_at: now,
            last_used: now,
            page,
        };
        pages.entries.insert(key, entry);
        pages.bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Filter;

    fn request(path: &str, limit: u32) -> ViewRequest {
        ViewRequest {
            title: "t".into(),
            path: path.into(),
            query: Vec::new(),
            filter: Filter::default(),
            before: None,
            limit,
            format: Format::Atom,
        }
    }

    fn page(body: &str) -> CachedPage {
        CachedPage::from(Rendered {
            body: body.to_string(),
            etag: format!("\"{body}\""),
            last_modified: DateTime::UNIX_EPOCH,
            why_empty: None,
        })
    }

    #[test]
    fn codings_follow_accept_encoding() {
        let cases = [
            (None, Coding::Identity),
            (Some("gzip, deflate, br"), Coding::Brotli),
            (Some("gzip"), Coding::Gzip),
            (Some("br;q=0, gzip;q=0.5"), Coding::Gzip),
            (Some("identity"), Coding::Identity),
            (Some("*"), Coding::Brotli),
            (Some("deflate"), Coding::Identity),
        ];
        for (header, coding) in cases {
            assert_eq!(Coding::negotiate(header), coding, "{header:?}");
        }
    }

    #[test]
    fn compressed_forms_decode_to_the_page() {
        use std::io::Read;
        let page = page(&"<entry>news</entry>".repeat(200));
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&page.encoded(Coding::Gzip)[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain.as_bytes(), &page.body[..]);
        let mut plain = Vec::new();
        ::brotli::BrotliDecompress(&mut &page.encoded(Coding::Brotli)[..], &mut plain).unwrap();
        assert_eq!(plain, page.body);
        assert!(page.encoded(Coding::Gzip).len() < page.body.len() / 4);
    }

    #[test]
    fn a_page_is_served_only_for_its_view_and_version() {
        let cache = FeedCache::default();
        cache.put(&request("/feed", 50), 7, page("a"));
        assert_eq!(cache.get(&request("/feed", 50), 7).unwrap().body, "a");
        assert!(
            cache.get(&request("/feed", 50), 8).is_none(),
            "articles changed"
        );
        assert!(
            cache.get(&request("/feed", 10), 7).is_none(),
            "another view"
        );
        assert!(cache.get(&request("/tags/x", 50), 7).is_none());
    }

    #[test]
    fn clients_walking_random_views_do_not_push_out_a_view_in_steady_use() {
        let cache = FeedCache::default();
        let hot = request("/feeds/world", 50);
        cache.put(&hot, 1, page("hot"));
        for i in 0..(3 * MAX_VIEWS) {
            cache.put(&request(&format!("/tags/t{i}"), 50), 1, page("x"));
            if i % 20 == 0 {
                assert!(cache.get(&hot, 1).is_some(), "evicted after {i} views");
            }
        }
        assert!(cache.get(&hot, 1).is_some());
        assert!(cache.pages.lock().unwrap().entries.len() <= MAX_VIEWS);
        // Full, a page of a new version makes room from the older ones
        // first (they would be rendered again on their next request).
        cache.put(&request("/tags/new", 50), 2, page("new"));
        assert_eq!(cache.pages.lock().unwrap().entries.len(), 1);
        assert!(cache.get(&request("/tags/new", 50), 2).is_some());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = FeedCache::default();
        for i in 0..(MAX_VIEWS + 10) {
            cache.put(&request(&format!("/tags/t{i}"), 50), 1, page("x"));
        }
        assert!(cache.pages.lock().unwrap().entries.len() <= MAX_VIEWS);
        let big = "x".repeat(MAX_PAGE_BYTES);
        for i in 0..10 {
            cache.put(&request(&format!("/big/{i}"), 50), 1, page(&big));
        }
        let pages = cache.pages.lock().unwrap();
        assert!(pages.bytes <= MAX_BYTES);
        assert_eq!(
            pages.bytes,
            pages
                .entries
                .values()
                .map(|e| e.page.body.len())
                .sum::<usize>()
        );
    }

    #[test]
    fn a_page_over_its_share_of_the_budget_is_served_but_not_kept() {
        let cache = FeedCache::default();
        let hot = request("/feeds/world", 50);
        cache.put(&hot, 1, page("hot"));
        // Larger than the whole budget: before, everything else was evicted
        // to make room for it.
        let huge = request("/feed", 500);
        cache.put(&huge, 1, page(&"x".repeat(MAX_BYTES + 1)));
        assert!(cache.get(&hot, 1).is_some(), "the hot feed was pushed out");
        assert!(cache.get(&huge, 1).is_none(), "the huge page was kept");
        cache.put(&huge, 1, page(&"x".repeat(MAX_PAGE_BYTES + 1)));
        assert!(cache.get(&huge, 1).is_none());
        assert!(cache.pages.lock().unwrap().bytes < MAX_PAGE_BYTES);
    }
}
