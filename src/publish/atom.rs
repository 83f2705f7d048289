//! Atom 1.0 output (RFC 4287, docs/HTTP.md).
//!
//! Written by hand into one pre-sized `String`: this runs on every uncached
//! request and the document's shape is fixed, so a DOM or a generic XML
//! writer would only add allocations. Every string goes through
//! [`escape_into`],
//! which also drops what XML 1.0 cannot carry: docs/HTTP.md promises that no
//! invalid control character reaches a reader, whatever earlier steps did.

use super::FeedView;
use crate::model::{Article, SourceRef, Tag};
use crate::text::{escape_into, is_xml_illegal, Escape};
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, Weak};

const ATOM_TYPE: &str = "application/atom+xml";
const HTML_TYPE: &str = "text/html";

/// `articles`: owned or shared (`Arc`, as the store's pages give them).
pub fn render<A: Borrow<Article>>(view: &FeedView, articles: &[A]) -> String {
    document(view, articles, |out, _, article| {
        entry(out, article.borrow(), view.show_outlets)
    })
}

/// tributary's own Atom extension elements (RFC 4287 §6.4), a `tag:` URI
/// like the OPML attributes' (docs/HTTP.md "Top stories").
pub const NAMESPACE: &str = "tag:tributary,2026:feed";

/// Atom entries rendered for articles the store shares (`Arc`), by article
/// id; one per server, kept across its requests. The store hands out one
/// `Arc` per article for as long as it remembers that article unchanged
/// (store/sqlite/page_reader.rs), so an entry is reused only for that very
/// allocation; the `Weak` keeps the allocation reserved, so no other
/// article can appear at its address meanwhile. An entry depends on nothing
/// but its article. Filtered pages were served ~1.7x as fast with it
/// (BENCHMARKS.md's method, commit 21669d0).
#[derive(Default)]
pub struct EntryCache {
    entries: Mutex<HashMap<i64, RenderedEntry>>,
}

/// The article an entry was rendered from, and the entry.
type RenderedEntry = (Weak<Article>, Arc<str>);

/// Entries kept (~2-3 KB each), as many as the page reader remembers.
const MAX_ENTRIES: usize = 8_192;

impl EntryCache {
    /// The same bytes as [`render`]; each entry rendered once for as long
    /// as the store shares that article. An article only this page holds (a
    /// page the store did not remember, any PostgreSQL page) is rendered in
    /// place, as by [`render`]: nothing would reuse its entry.
    pub fn render(&self, view: &FeedView, articles: &[Arc<Article>]) -> String {
        // Entries cached here carry no outlet count; coverage views are
        // scans whose articles the store never shares anyway.
        if view.show_outlets {
            return render(view, articles);
        }
        let shared = |article: &Arc<Article>| Arc::strong_count(article) > 1;
        let mut rendered: Vec<Option<Arc<str>>> = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            articles
                .iter()
                .map(|article| {
                    let (rendered_from, entry) = entries.get(&article.id)?;
                    // The same allocation, so the same article as rendered.
                    std::ptr::eq(rendered_from.as_ptr(), Arc::as_ptr(article))
                        .then(|| entry.clone())
                })
                .collect()
        };
        let mut fresh = Vec::new();
        for (article, slot) in articles.iter().zip(&mut rendered) {
            if slot.is_none() && shared(article) {
                let mut out = String::new();
                entry(&mut out, article, false);
                let out: Arc<str> = out.into();
                fresh.push((article.id, Arc::downgrade(article), out.clone()));
                *slot = Some(out);
            }
        }
        if !fresh.is_empty() {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() + fresh.len() > MAX_ENTRIES {
                entries.retain(|_, (rendered_from, _)| rendered_from.strong_count() > 0);
                if entries.len() + fresh.len() > MAX_ENTRIES {
                    entries.clear();
                }
            }
            for (id, rendered_from, entry) in fresh {
                entries.insert(id, (rendered_from, entry));
            }
        }
        document(view, articles, |out, index, article| {
            match &rendered[index] {
                Some(rendered) => out.push_str(rendered),
                None => entry(out, article, false),
            }
        })
    }
}

/// The feed document around `articles`, each written by `write_entry`
/// (with its index).
fn document<A: Borrow<Article>>(
    view: &FeedView,
    articles: &[A],
    mut write_entry: impl FnMut(&mut String, usize, &A),
) -> String {
    let mut out = String::with_capacity(estimate(view, articles));
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    if let Some(href) = non_empty(&view.stylesheet) {
        // Browsers opening the feed show a page instead of raw XML.
        out.push_str("<?xml-stylesheet type=\"text/xsl\"");
        attribute(&mut out, "href", href);
        out.push_str("?>\n");
    }
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\"");
    if view.show_outlets {
        attribute(&mut out, "xmlns:tributary", NAMESPACE);
    }
    out.push_str(">\n");
    element(&mut out, "  ", "id", "", &view.id);
    element(&mut out, "  ", "title", " type=\"text\"", &view.title);
    if let Some(reason) = &view.why_empty {
        element(
            &mut out,
            "  ",
            "subtitle",
            " type=\"text\"",
            &reason.to_string(),
        );
    }
    date(&mut out, "  ", "updated", &view.updated);
    link(&mut out, "  ", "self", Some(ATOM_TYPE), &view.self_url);
    if let Some(hub) = non_empty(&view.hub) {
        // WebSub §4: the hub and the topic (the self link above).
        link(&mut out, "  ", "hub", None, hub);
    }
    link(
        &mut out,
        "  ",
        "alternate",
        Some(HTML_TYPE),
        &view.alternate_url,
    );
    if let Some(next) = non_empty(&view.next_url) {
        // RFC 5005 §3: paged feeds point at the next (older) page.
        link(&mut out, "  ", "next", Some(ATOM_TYPE), next);
    }
    out.push_str("  <generator");
    if !view.generator_version.is_empty() {
        attribute(&mut out, "version", &view.generator_version);
    }
    out.push_str(">tributary</generator>\n");
    // RFC 4287 §4.1.1: a feed-level author keeps entries without one valid.
    person(&mut out, "  ", "author", &view.author);
    for (index, article) in articles.iter().enumerate() {
        write_entry(&mut out, index, article);
    }
    out.push_str("</feed>\n");
    out
}

/// One article as an Atom Entry Document (RFC 4287 §2), the entry a feed
/// holds: a webhook's body.
pub fn entry_document(article: &Article) -> String {
    let mut inner = String::new();
    entry(&mut inner, article, false);
    let inner = inner.replacen("<entry", "<entry xmlns=\"http://www.w3.org/2005/Atom\"", 1);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        inner.trim_start()
    )
}

fn entry(out: &mut String, article: &Article, show_outlets: bool) {
    match &article.language {
        Some(lang) => {
            out.push_str("  <entry xml:lang=\"");
            escape_into(out, lang, Escape::Attribute);
            out.push_str("\">\n");
        }
        None => out.push_str("  <entry>\n"),
    }
    element(out, "    ", "id", "", &article.uid);
    element(out, "    ", "title", " type=\"text\"", &article.title);
    let alternate = non_empty(&article.link);
    if let Some(href) = alternate {
        link(out, "    ", "alternate", Some(HTML_TYPE), href);
    }
    // Other outlets' copies of the same story (docs/TAGS-AND-DEDUP.md "How deduplication works").
    for href in &article.related {
        link(out, "    ", "related", Some(HTML_TYPE), href);
    }
    date(out, "    ", "published", &article.published);
    date(out, "    ", "updated", &article.updated);
    if let Some(name) = non_empty(&article.author) {
        person(out, "    ", "author", name);
    }
    let summary = non_empty(&article.summary);
    if let Some(summary) = summary {
        element(out, "    ", "summary", " type=\"text\"", summary);
    }
    match (non_empty(&article.content), alternate) {
        (Some(html), _) => element(out, "    ", "content", " type=\"html\"", html),
        // RFC 4287 §4.1.2: an entry without atom:content MUST have a
        // rel="alternate" link; with neither, the summary (or nothing) is it.
        (None, None) => element(
            out,
            "    ",
            "content",
            " type=\"text\"",
            summary.unwrap_or(""),
        ),
        (None, Some(_)) => {}
    }
    for tag in &article.tags {
        category(out, tag);
    }
    if show_outlets {
        // How many distinct outlets carried the story (docs/HTTP.md).
        out.push_str(&format!(
            "    <tributary:outlets>{}</tributary:outlets>\n",
            article.outlets
        ));
    }
    source(out, &article.source, &article.updated);
    out.push_str("  </entry>\n");
}

/// RFC 4287 §4.2.11: the feed the entry was copied from, so readers can
/// credit and follow the original publisher.
fn source(out: &mut String, source: &SourceRef, entry_updated: &DateTime<Utc>) {
    out.push_str("    <source>\n");
    // atom:id must be an IRI (§4.2.6); a sloppy feed's own id may not be one,
    // its URL always is.
    let feed_url = crate::redact::public_url(&source.feed_url);
    let id = non_empty(&source.feed_id)
        .filter(|id| is_absolute_iri(id))
        .unwrap_or(&feed_url);
    element(out, "      ", "id", "", id);
    let title = non_empty(&source.title).unwrap_or(&source.name);
    element(out, "      ", "title", " type=\"text\"", title);
    link(out, "      ", "self", None, &feed_url);
    if let Some(site) = non_empty(&source.site_url) {
        link(out, "      ", "alternate", Some(HTML_TYPE), site);
    }
    date(
        out,
        "      ",
        "updated",
        source.updated.as_ref().unwrap_or(entry_updated),
    );
    out.push_str("    </source>\n");
}

fn category(out: &mut String, tag: &Tag) {
    // `term` is required and must be meaningful (§4.2.2.1); skip, don't emit "".
    if tag.term.is_empty() {
        return;
    }
    out.push_str("    <category");
    attribute(out, "term", &tag.term);
    attribute(out, "label", &tag.label);
    out.push_str("/>\n");
}

/// `{indent}<{name}{attrs}>{text}</{name}>`; `attrs` is a trusted literal.
fn element(out: &mut String, indent: &str, name: &str, attrs: &str, text: &str) {
    out.push_str(indent);
    out.push('<');
    out.push_str(name);
    out.push_str(attrs);
    out.push('>');
    escape_into(out, text, Escape::Text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn date(out: &mut String, indent: &str, name: &str, at: &DateTime<Utc>) {
    out.push_str(indent);
    out.push('<');
    out.push_str(name);
    out.push('>');
    write!(out, "{}", Timestamp(at)).expect("writing to a String cannot fail");
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn link(out: &mut String, indent: &str, rel: &str, media_type: Option<&str>, href: &str) {
    out.push_str(indent);
    out.push_str("<link rel=\"");
    out.push_str(rel);
    out.push('"');
    if let Some(media_type) = media_type {
        out.push_str(" type=\"");
        out.push_str(media_type);
        out.push('"');
    }
    attribute(out, "href", href);
    out.push_str("/>\n");
}

fn person(out: &mut String, indent: &str, role: &str, name: &str) {
    out.push_str(indent);
    out.push('<');
    out.push_str(role);
    out.push_str("><name>");
    escape_into(out, name, Escape::Text);
    out.push_str("</name></");
    out.push_str(role);
    out.push_str(">\n");
}

/// ` {name}="{value}"`, the value escaped.
fn attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value, Escape::Attribute);
    out.push('"');
}

/// Treats `Some("")` like `None`: an empty link, author or summary says nothing.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// `scheme ":" rest` (RFC 3987 §2.2 / RFC 3986 §3.1) with no white space.
fn is_absolute_iri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An RFC 3339 timestamp in UTC with seconds precision and `Z`, as RFC 4287
/// §3.3 wants it (and JSON Feed reuses). Years outside 0000–9999 cannot be
/// written in RFC 3339, so they are clamped to its ends.
pub(super) struct Timestamp<'a>(pub(super) &'a DateTime<Utc>);

impl fmt::Display for Timestamp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.0;
        match at.year() {
            ..0 => f.write_str("0000-01-01T00:00:00Z"),
            10000.. => f.write_str("9999-12-31T23:59:59Z"),
            year => write!(
                f,
                "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                at.month(),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            ),
        }
    }
}

/// Displays a string without the characters XML 1.0 cannot carry, so the
/// JSON Feed shows the same text as the Atom (JSON could escape them, but a
/// reader would then display a bell or a NUL).
pub(super) struct Legal<'a>(pub(super) &'a str);

impl fmt::Display for Legal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| is_xml_illegal(c)) {
            f.write_str(&rest[..i])?;
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Enough capacity that rendering a typical page never reallocates: the
/// strings themselves, markup per element, and slack for escaped HTML.
fn estimate<A: Borrow<Article>>(view: &FeedView, articles: &[A]) -> usize {
    let feed = 1024
        + view.id.len()
        + view.title.len()
        + view.self_url.len()
        + view.alternate_url.len()
        + view.next_url.as_ref().map_or(0, String::len)
        + view.author.len()
        + view.generator_version.len();
    let entries: usize = articles
        .iter()
        .map(|a| {
            let a: &Article = a.borrow();
            let content = a.content.as_ref().map_or(0, String::len);
            let source = &a.source;
            768 + a.uid.len()
                + a.title.len()
                + a.link.as_ref().map_or(0, String::len)
                + a.author.as_ref().map_or(0, String::len)
                + a.summary.as_ref().map_or(0, String::len)
                + content
                + content / 4
                + a.tags
                    .iter()
                    .map(|t| 40 + t.term.len() + t.label.len())
                    .sum::<usize>()
                + source.name.len()
                + source.feed_url.len() * 2
                + source.title.as_ref().map_or(0, String::len)
                + source.site_url.as_ref().map_or(0, String::len)
                + source.feed_id.as_ref().map_or(0, String::len)
        })
        .sum();
    feed + entries
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::text::escape;
    use chrono::TimeZone;
    use std::io::Write as _;
    use std::process::Command;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn tag(term: &str, label: &str) -> Tag {
        Tag {
            term: term.to_string(),
            label: label.to_string(),
        }
    }

    pub(in crate::publish) fn sample_view(next_url: Option<&str>) -> FeedView {
        FeedView {
            id: "http://127.0.0.1:8080/feeds/china-russia.atom".to_string(),
            title: "China and Russia".to_string(),
            self_url: "http://127.0.0.1:8080/feeds/china-russia.atom".to_string(),
            alternate_url: "http://127.0.0.1:8080/".to_string(),
            next_url: next_url.map(str::to_string),
            author: "tributary".to_string(),
            updated: at(2025, 5, 8, 10, 15, 0),
            generator_version: "0.1.0".to_string(),
            stylesheet: None,
            why_empty: None,
            show_outlets: false,
            hub: None,
        }
    }

    fn rfi_source() -> SourceRef {
        SourceRef {
            name: "rfi-en".to_string(),
            feed_url: "https://www.rfi.fr/en/rss".to_string(),
            title: Some("RFI - English".to_string()),
            site_url: Some("https://www.rfi.fr/en/".to_string()),
            feed_id: None,
            updated: Some(at(2025, 5, 8, 9, 0, 0)),
        }
    }

    /// A republished news item, then an item with no link and no author.
    #[test]
    fn shared_articles_render_the_same_bytes_and_an_edit_shows_at_once() {
        let view = sample_view(None);
        let articles: Vec<Arc<Article>> = sample_articles().into_iter().map(Arc::new).collect();
        let entries = EntryCache::default();
        // Held elsewhere too, as the store's page reader holds them.
        let _remembered = articles.clone();
        let plain = render(&view, &articles);
        assert_eq!(entries.render(&view, &articles), plain, "first render");
        assert_eq!(entries.render(&view, &articles), plain, "from memory");

        // The store shares an edited article as a new Arc with the same id.
        let mut edited = Article::clone(&articles[0]);
        edited.title = "Corrected headline".into();
        let mut again = articles.clone();
        again[0] = Arc::new(edited);
        let _remembered_again = again.clone();
        let xml = entries.render(&view, &again);
        assert_eq!(xml, render(&view, &again));
        assert!(xml.contains("Corrected headline"), "{xml}");
    }

    pub(in crate::publish) fn sample_articles() -> Vec<Article> {
        vec![
            Article {
                id: 2,
                uid: "urn:uuid:6f1c9a52-3d0e-5b7a-9c1e-2f4b8d0a7e31".to_string(),
                link: Some(
                    "https://www.rfi.fr/en/international/20250508-xi-jinping-moscow-visit"
                        .to_string(),
                ),
                title: "Xi Jinping heads to Moscow as Wang Yi talks up \"no limits\" ties"
                    .to_string(),
                summary: Some(
                    "China's president is in Moscow for Victory Day celebrations.".to_string(),
                ),
                content: Some(
                    "<p>Chinese President Xi Jinping & his foreign minister arrive in \
                     Moscow, where the <a href=\"https://www.rfi.fr/en/tag/russia\">Kremlin</a> \
                     says ties are \"at their best\" &lt;ever&gt; – 5 < 6, n'est-ce pas? \
                     Café Ελλάδα 北京</p>"
                        .to_string(),
                ),
                author: Some("Clara Montgomery".to_string()),
                language: Some("en-GB".to_string()),
                published: at(2025, 5, 8, 7, 42, 11),
                updated: at(2025, 5, 8, 8, 3, 0),
                changed: at(2025, 5, 8, 8, 5, 0),
                tags: vec![
                    tag("politics", "Politics"),
                    tag("china", "CHINA"),
                    tag("russia", "RUSSIA"),
                    tag("wang-yi", "WANG YI"),
                    tag("xi-jinping", "XI JINPING"),
                ],
                source: rfi_source(),
                seen_in: vec!["rfi-en".to_string(), "wires".to_string()],
                related: vec!["https://wires.example/wang-yi-moscow".to_string()],
                outlets: 2,
            },
            Article {
                id: 1,
                uid: "urn:uuid:0b7d4e2c-8a13-5f6e-b2d9-7c4a1e3f5d08".to_string(),
                link: None,
                title: "Bell\u{0007} & whistle\u{FFFE} bulletin".to_string(),
                summary: Some("Sirens tested at noon.\u{0}".to_string()),
                content: None,
                author: None,
                language: None,
                published: at(2025, 5, 7, 12, 0, 0),
                updated: at(2025, 5, 7, 12, 0, 0),
                changed: at(2025, 5, 7, 12, 1, 0),
                tags: vec![tag("alerts", "Alerts\u{1b}")],
                source: SourceRef {
                    name: "civil-defence".to_string(),
                    feed_url: "https://example.org/alerts.xml".to_string(),
                    title: None,
                    site_url: None,
                    feed_id: Some("alerts feed".to_string()),
                    updated: None,
                },
                seen_in: vec!["civil-defence".to_string()],
                related: Vec::new(),
                outlets: 1,
            },
        ]
    }

    /// The `<source>…</source>` blocks, in entry order.
    fn source_blocks(xml: &str) -> Vec<&str> {
        xml.split("<source>")
            .skip(1)
            .map(|rest| &rest[..rest.find("</source>").unwrap()])
            .collect()
    }

    #[test]
    fn legal_drops_exactly_what_escape_drops() {
        let input = "a\u{0}b\u{7}c\td\ne\rf\u{1f}g\u{FFFE}h\u{FFFF}i\u{FFFD}\u{7f}&<";
        assert_eq!(Legal(input).to_string(), "abc\td\ne\rfghi\u{FFFD}\u{7f}&<");
        assert_eq!(
            escape(&Legal(input).to_string(), Escape::Text),
            escape(input, Escape::Text)
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_seconds_clamped_to_four_digit_years() {
        let nanos = at(2025, 5, 8, 7, 4, 9) + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(Timestamp(&nanos).to_string(), "2025-05-08T07:04:09Z");
        assert_eq!(
            Timestamp(&at(12, 1, 2, 3, 4, 5)).to_string(),
            "0012-01-02T03:04:05Z"
        );
        assert_eq!(
            Timestamp(&at(-5, 1, 1, 0, 0, 0)).to_string(),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp(&at(10_000, 1, 1, 0, 0, 0)).to_string(),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn absolute_iris_are_recognized() {
        for id in [
            "urn:uuid:6f1c9a52",
            "tag:rfi.fr,2025:feed",
            "https://www.rfi.fr/en/rss",
        ] {
            assert!(is_absolute_iri(id), "{id}");
        }
        for id in [
            "alerts feed",
            "12345",
            ":x",
            "http:",
            "a b:c",
            "https://x y",
        ] {
            assert!(!is_absolute_iri(id), "{id}");
        }
    }

    #[test]
    fn feed_rs_reads_back_what_was_written() {
        let articles = sample_articles();
        let xml = render(&sample_view(None), &articles);
        let feed = feed_rs::parser::parse(xml.as_bytes()).expect("feed-rs parses the output");

        assert_eq!(feed.id, "http://127.0.0.1:8080/feeds/china-russia.atom");
        assert_eq!(feed.title.unwrap().content, "China and Russia");
        assert_eq!(feed.updated, Some(at(2025, 5, 8, 10, 15, 0)));
        assert_eq!(feed.authors[0].name.as_deref(), Some("tributary"));
        let generator = feed.generator.unwrap();
        assert_eq!(generator.content, "tributary");
        assert_eq!(generator.version.as_deref(), Some("0.1.0"));
        let feed_links: Vec<_> = feed
            .links
            .iter()
            .map(|l| (l.rel.as_deref().unwrap(), l.href.as_str()))
            .collect();
        assert_eq!(
            feed_links,
            [
                ("self", "http://127.0.0.1:8080/feeds/china-russia.atom"),
                ("alternate", "http://127.0.0.1:8080/"),
            ]
        );

        assert_eq!(feed.entries.len(), 2);
        let (news, bulletin) = (&feed.entries[0], &feed.entries[1]);
        assert_eq!(news.id, articles[0].uid);
        assert_eq!(news.title.as_ref().unwrap().content, articles[0].title);
        assert_eq!(news.links.len(), 2, "alternate and one related");
        assert_eq!(news.links[1].rel.as_deref(), Some("related"));
        assert_eq!(news.links[0].href, articles[0].link.as_deref().unwrap());
        assert_eq!(news.links[0].rel.as_deref(), Some("alternate"));
        assert_eq!(news.links[0].media_type.as_deref(), Some("text/html"));
        assert_eq!(news.published, Some(articles[0].published));
        assert_eq!(news.updated, Some(articles[0].updated));
        assert_eq!(news.authors.len(), 1);
        assert_eq!(news.authors[0].name.as_deref(), Some("Clara Montgomery"));
        assert_eq!(
            news.summary.as_ref().unwrap().content,
            articles[0].summary.as_deref().unwrap()
        );
        let content = news.content.as_ref().unwrap();
        assert_eq!(content.content_type.as_str(), "text/html");
        assert_eq!(content.body.as_deref(), articles[0].content.as_deref());
        let categories: Vec<_> = news
            .categories
            .iter()
            .map(|c| (c.term.as_str(), c.label.as_deref().unwrap()))
            .collect();
        assert_eq!(
            categories,
            [
                ("politics", "Politics"),
                ("china", "CHINA"),
                ("russia", "RUSSIA"),
                ("wang-yi", "WANG YI"),
                ("xi-jinping", "XI JINPING"),
            ]
        );

        assert_eq!(bulletin.id, articles[1].uid);
        assert_eq!(
            bulletin.title.as_ref().unwrap().content,
            "Bell & whistle bulletin"
        );
        assert!(bulletin.links.is_empty());
        assert!(bulletin.authors.is_empty());
        assert_eq!(
            bulletin.content.as_ref().unwrap().body.as_deref(),
            Some("Sirens tested at noon.")
        );
        assert_eq!(bulletin.categories[0].label.as_deref(), Some("Alerts"));
    }

    #[test]
    fn every_entry_without_content_has_an_alternate_link() {
        // RFC 4287 §4.1.2, a rule the RELAX NG schema cannot express.
        let mut articles = sample_articles();
        articles[0].content = None;
        let mut no_summary = articles[1].clone();
        no_summary.summary = None;
        articles.push(no_summary);
        let xml = render(&sample_view(None), &articles);
        let feed = feed_rs::parser::parse(xml.as_bytes()).unwrap();
        for entry in &feed.entries {
            let has_alternate = entry
                .links
                .iter()
                .any(|l| l.rel.as_deref() == Some("alternate"));
            assert!(entry.content.is_some() || has_alternate, "{}", entry.id);
        }
        assert!(feed.entries[0].content.is_none());
        assert!(xml.contains("<content type=\"text\"></content>"));
    }

    #[test]
    fn control_characters_never_reach_the_output() {
        let xml = render(&sample_view(None), &sample_articles());
        let illegal = |c: char| {
            (c.is_control() && c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}')
        };
        assert!(!xml.chars().any(illegal), "{xml}");
        assert!(xml.contains("<title type=\"text\">Bell &amp; whistle bulletin</title>"));
    }

    #[test]
    fn entries_carry_their_source_feed() {
        let xml = render(&sample_view(None), &sample_articles());
        let blocks = source_blocks(&xml);
        assert_eq!(blocks.len(), 2);

        let rfi = blocks[0];
        assert!(rfi.contains("<id>https://www.rfi.fr/en/rss</id>"), "{rfi}");
        assert!(rfi.contains("<title type=\"text\">RFI - English</title>"));
        assert!(rfi.contains("<link rel=\"self\" href=\"https://www.rfi.fr/en/rss\"/>"));
        assert!(rfi.contains(
            "<link rel=\"alternate\" type=\"text/html\" href=\"https://www.rfi.fr/en/\"/>"
        ));
        assert!(rfi.contains("<updated>2025-05-08T09:00:00Z</updated>"));

        // No usable id, title or date of its own: URL, name, entry's date.
        let alerts = blocks[1];
        assert!(
            alerts.contains("<id>https://example.org/alerts.xml</id>"),
            "{alerts}"
        );
        assert!(alerts.contains("<title type=\"text\">civil-defence</title>"));
        assert!(!alerts.contains("rel=\"alternate\""));
        assert!(alerts.contains("<updated>2025-05-07T12:00:00Z</updated>"));

        let mut articles = sample_articles();
        articles[0].source.feed_id = Some("tag:rfi.fr,2025:en".to_string());
        let xml = render(&sample_view(None), &articles);
        assert!(source_blocks(&xml)[0].contains("<id>tag:rfi.fr,2025:en</id>"));
    }

    #[test]
    fn other_outlets_copies_are_related_links() {
        let xml = render(&sample_view(None), &sample_articles());
        assert!(xml.contains(
            "<link rel=\"related\" type=\"text/html\" href=\"https://wires.example/wang-yi-moscow\"/>"
        ));
        assert_eq!(xml.matches("rel=\"related\"").count(), 1);
    }

    #[test]
    fn next_link_only_when_there_is_a_next_page() {
        let articles = sample_articles();
        let last = render(&sample_view(None), &articles);
        assert!(!last.contains("rel=\"next\""));

        let next = "http://127.0.0.1:8080/feed.atom?any=china&before=abc&limit=2";
        let paged = render(&sample_view(Some(next)), &articles);
        assert_eq!(paged.matches("rel=\"next\"").count(), 1);
        assert!(paged.contains(
            "<link rel=\"next\" type=\"application/atom+xml\" \
             href=\"http://127.0.0.1:8080/feed.atom?any=china&amp;before=abc&amp;limit=2\"/>"
        ));
        let feed = feed_rs::parser::parse(paged.as_bytes()).unwrap();
        assert!(feed
            .links
            .iter()
            .any(|l| l.rel.as_deref() == Some("next") && l.href == next));
    }

    #[test]
    fn output_is_valid_against_the_rfc4287_relax_ng_schema() {
        let Ok(shared) = std::env::var("TRIBUTARY_SHARED") else {
            // CI runs everything (TRIBUTARY_TEST_ALL=1); elsewhere say so
            // past the test's captured output.
            assert!(
                std::env::var_os("TRIBUTARY_TEST_ALL").is_none(),
                "TRIBUTARY_TEST_ALL is set, but TRIBUTARY_SHARED is not"
            );
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the RFC 4287 schema check (TRIBUTARY_SHARED is not set)"
            );
            return;
        };
        let schema = std::path::Path::new(&shared).join("schemas/atom.rng");
        let mut no_content = sample_articles();
        no_content[0].content = None;
        no_content[1].summary = None;
        let documents = [
            render(&sample_view(None), &sample_articles()),
            render(
                &sample_view(Some("http://127.0.0.1:8080/feed.atom?before=x")),
                &no_content,
            ),
            render(&sample_view(None), &[] as &[Article]),
        ];
        for xml in documents {
            let mut file = tempfile::Builder::new().suffix(".atom").tempfile().unwrap();
            file.write_all(xml.as_bytes()).unwrap();
            let output = match Command::new("xmllint")
                .arg("--noout")
                .arg("--relaxng")
                .arg(&schema)
                .arg(file.path())
                .output()
            {
                Ok(output) => output,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    assert!(
                        std::env::var_os("TRIBUTARY_TEST_ALL").is_none(),
                        "TRIBUTARY_TEST_ALL is set, but xmllint is not installed"
                    );
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipped: the RFC 4287 schema check (xmllint is not installed: apt-get install libxml2-utils)"
                    );
                    return;
                }
                Err(e) => panic!("running xmllint: {e}"),
            };
            assert!(
                output.status.success(),
                "xmllint rejected the feed:\n{}\n{xml}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    #[test]
    fn estimate_covers_a_typical_page() {
        let articles = sample_articles();
        let view = sample_view(Some("http://127.0.0.1:8080/feed.atom?before=x"));
        assert!(render(&view, &articles).len() <= estimate(&view, &articles));
    }
}
