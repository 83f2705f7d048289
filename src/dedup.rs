//! Article identity (docs/TAGS-AND-DEDUP.md "How deduplication works"): canonical URLs and the keys the store
//! enforces. Pure functions.
//!
//! Three keys, from most to least trusted: the source's guid (identity within
//! one source), the canonical link (identity across sources), and for entries
//! with neither, a hash of title and text. The public `uid` derives from the
//! canonical link when there is one, so every instance and every source
//! gives one story the same id.
//!
//! Within one source a distinct key is always a distinct entry: the store
//! never merges two of a source's entries, whatever their links. Entries
//! that share a key but not their text in one feed (a reused guid, guid-less
//! items on one page) get a variant key ([`variant_key`]).

use sha2::{Digest, Sha256};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
use url::Url;

use crate::model::{Entry, NewArticle, Tag};

/// Query parameters that only track the reader, compared lowercased; any
/// `utm_*` is one too. `xtor` is AT Internet's, which rfi.fr appends to
/// every link of its feeds (`?xtor=RSS-1`).
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "yclid",
    "igshid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "_ga",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "ref_src",
    "xtor",
];

fn is_tracking(name: &str) -> bool {
    let name = name.to_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

/// Fragments that point into a page rather than name a post: comment
/// sections, page furniture. Compared lowercased; `comment-N`, `comments-N`,
/// `respond-N` and `more-N` (WordPress) are ones too.
const PAGE_FRAGMENTS: &[&str] = &[
    "comments",
    "comment",
    "respond",
    "reply",
    "replies",
    "more",
    "top",
    "content",
    "main",
    "main-content",
    "maincontent",
    "article",
    "disqus_thread",
    "comments-section",
    "share",
    "footer",
    "header",
    "nav",
    "continue",
    "read-more",
    "readmore",
    "page",
    "start",
    "skip",
];

/// Whether a URL fragment names what the link points to (`#a080605` on a
/// day page of several posts, `releases#2025041100`), as opposed to a place
/// in the page or a tracker (`#comments`, `#more-123`, `#xtor=RSS-1`).
fn fragment_identifies(fragment: &str) -> bool {
    let fragment = fragment.trim().to_lowercase();
    if fragment.is_empty() || fragment.contains('=') || fragment.starts_with(":~:") {
        return false;
    }
    let stem = match fragment.rsplit_once(['-', '_']) {
        Some((stem, number)) if number.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => fragment.as_str(),
    };
    !PAGE_FRAGMENTS.contains(&fragment.as_str())
        && !matches!(stem, "comment" | "comments" | "respond" | "more" | "reply")
}

/// Canonical form of an article URL: scheme and host lowercased, default
/// port, tracking parameters and a fragment that only points into the page
/// (`#comments`, `#top`) dropped; a fragment naming a post on a page of
/// several (`#a080605`) is kept. `None` if not an absolute http(s) URL.
///
/// The path keeps its case and trailing slash (servers may tell them apart),
/// and the other parameters keep their order and their exact encoding.
pub fn canonical_url(url: &str) -> Option<String> {
    // Parsing already lowercases scheme and host, drops a default port and
    // makes an empty path `/` (WHATWG URL rules for http and https).
    let mut url = Url::parse(url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    if !url.fragment().is_some_and(fragment_identifies) {
        url.set_fragment(None);
    }
    if let Some(query) = url.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !is_tracking(&param_name(pair)))
            .collect();
        let kept = kept.join("&");
        url.set_query((!kept.is_empty()).then_some(kept.as_str()));
    }
    Some(url.into())
}

/// The decoded name of one `name=value` query pair (`utm%5Fsource` is
/// `utm_source`).
fn param_name(pair: &str) -> String {
    url::form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

/// Turns a parsed entry of source `source_name` into what the store keeps.
/// `entry`'s key within its source as [`prepare`] gives it, when it has a
/// guid or a link (an entry keyed by its text hash has `None`).
pub fn entry_key(entry: &Entry) -> Option<String> {
    let guid = entry
        .guid
        .as_deref()
        .map(str::trim)
        .filter(|guid| !guid.is_empty());
    match guid {
        Some(guid) => Some(format!("guid:{guid}")),
        None => Some(format!("link:{}", canonical_url(entry.link.as_deref()?)?)),
    }
}

pub fn prepare(source_name: &str, entry: Entry, tags: Vec<Tag>) -> NewArticle {
    let guid = entry
        .guid
        .as_deref()
        .map(str::trim)
        .filter(|guid| !guid.is_empty());
    let canonical = entry.link.as_deref().and_then(canonical_url);
    let content_key = (guid.is_none() && canonical.is_none()).then(|| content_hash(&entry));
    let entry_key = match (guid, &canonical, &content_key) {
        (Some(guid), _, _) => format!("guid:{guid}"),
        (None, Some(url), _) => format!("link:{url}"),
        (None, None, hash) => format!("hash:{}", hash.as_deref().unwrap_or_default()),
    };
    let identity = match &canonical {
        Some(url) => format!("url:{url}"),
        None => format!("entry:{source_name}:{entry_key}"),
    };
    NewArticle {
        uid: uid(&identity),
        fingerprint: fingerprint(&entry),
        entry_key,
        canonical_url: canonical,
        content_key,
        link: entry.link,
        title: entry.title.unwrap_or_default(),
        summary: entry.summary,
        content: entry.content,
        author: entry.author,
        published: entry.published,
        updated: entry.updated,
        tags,
        tag_origins: Vec::new(),
        language: entry.language,
    }
}

/// The key an entry of a source had before fragments could identify a post
/// (`link:` and its canonical link without the fragment), when it differs:
/// the store finds entries stored by earlier versions under it.
pub fn legacy_entry_key(article: &NewArticle) -> Option<String> {
    let url = article.entry_key.strip_prefix("link:")?;
    let (page, _) = url.split_once('#')?;
    Some(format!("link:{page}"))
}

/// What tells apart entries of one source that share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A guid reused for stories under different links.
    Link,
    /// Entries without id sharing a link, under different titles.
    Title,
    /// Entries with the same key (guid or link) but different text.
    Text,
}

/// The key of an entry whose base key (`entry_key`) another entry of its
/// source also has: the base key and what tells it apart, its link or its
/// text. Stable as long as that stays the same.
pub fn variant_key(article: &NewArticle, variant: Variant) -> String {
    match variant {
        Variant::Link => format!(
            "{} + link:{}",
            article.entry_key,
            article.canonical_url.as_deref().unwrap_or_default()
        ),
        Variant::Title => {
            let title = sha256_hex(&normalize(&article.title));
            format!("{} + title:{}", article.entry_key, &title[..16])
        }
        Variant::Text => {
            let text = &article.fingerprint;
            format!(
                "{} + text:{}",
                article.entry_key,
                text.get(..16).unwrap_or(text)
            )
        }
    }
}

/// The variant that tells an entry apart from another story stored under
/// its key: its link for a guid, its title for a link ([`is_other_story`]).
pub fn story_variant(article: &NewArticle) -> Option<Variant> {
    match article.entry_key.split_once(':') {
        Some(("guid", _)) if article.canonical_url.is_some() => Some(Variant::Link),
        Some(("link", _)) => Some(Variant::Title),
        _ => None,
    }
}

/// The base key of a stored entry key (the key without its variant).
pub fn base_key(entry_key: &str) -> &str {
    entry_key
        .split_once(" + link:")
        .or_else(|| entry_key.split_once(" + title:"))
        .or_else(|| entry_key.split_once(" + text:"))
        .map_or(entry_key, |(base, _)| base)
}

/// Whether an entry with the same key as a stored one (of the same source)
/// is another story. Same guid: the publisher reused it if link and title
/// both changed (an edit keeps one). Same link without guid: the title
/// changed (entries without id are told apart by their text; a new body
/// under the same title is an edit).
pub fn is_other_story(stored_title: &str, stored_link: Option<&str>, article: &NewArticle) -> bool {
    let other_title = normalize(stored_title) != normalize(&article.title);
    match article.entry_key.split_once(':') {
        Some(("guid", _)) => {
            stored_link.and_then(canonical_url) != article.canonical_url && other_title
        }
        Some(("link", _)) => other_title,
        _ => false,
    }
}

/// The `uid` of an article known only within its source: an entry whose link
/// names another of the source's entries too.
pub fn local_uid(source_name: &str, entry_key: &str) -> String {
    uid(&format!("entry:{source_name}:{entry_key}"))
}

/// Identity of an entry with neither id nor link: its normalized title and
/// text (content, else summary), so re-serialized whitespace is no new story.
fn content_hash(entry: &Entry) -> String {
    let text = entry
        .content
        .as_deref()
        .filter(|content| !content.trim().is_empty())
        .or(entry.summary.as_deref())
        .unwrap_or_default();
    let title = entry.title.as_deref().unwrap_or_default();
    sha256_hex(&format!("{}\n{}", normalize(title), normalize(text)))
}

/// What "the story was edited" is measured on: title, summary and content,
/// whitespace-normalized so that only a real change moves `updated`.
/// The unit separator keeps text from shifting between fields unseen.
fn fingerprint(entry: &Entry) -> String {
    let field = |value: &Option<String>| normalize(value.as_deref().unwrap_or_default());
    sha256_hex(&format!(
        "{}\u{1f}{}\u{1f}{}",
        field(&entry.title),
        field(&entry.summary),
        field(&entry.content)
    ))
}

/// NFC, whitespace runs collapsed to one space, trimmed.
fn normalize(text: &str) -> String {
    // Most text is NFC already (all ASCII is): the quick check skips
    // re-composing it char by char.
    let composed;
    let nfc = if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        composed = text.nfc().collect::<String>();
        &composed
    };
    let mut out = String::with_capacity(nfc.len());
    for word in nfc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `urn:uuid:` and a name-based UUID with the layout of version 5 (RFC 4122
/// §4.3: version nibble 5, variant bits `10`), taken from SHA-256 of the
/// identity rather than SHA-1 of a namespace. Deterministic, so the same
/// article gets the same id on every instance; it is an opaque id (RFC 4287
/// §4.2.6), nobody recomputes it.
fn uid(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    // A table, not `write!("{:02x}")`: the formatter cost ~6,000
    // instructions per key, two keys per entry.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_key_is_the_key_prepare_gives() {
        let entries = [
            (Some(" abc "), Some("https://Example.org/a?utm_source=x")),
            (None, Some("https://Example.org/a?utm_source=x")),
        ];
        for (guid, link) in entries {
            let entry = Entry {
                guid: guid.map(String::from),
                link: link.map(String::from),
                title: Some("T".into()),
                ..Entry::default()
            };
            let key = entry_key(&entry);
            assert_eq!(
                key.as_deref(),
                Some(prepare("s", entry, vec![]).entry_key.as_str())
            );
        }
        assert_eq!(entry_key(&Entry::default()), None);
    }

    #[test]
    fn keys_are_lowercase_hex_sha256() {
        // FIPS 180-2's test vector: stored keys must not change spelling.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    }
    use regex::Regex;

    #[test]
    fn canonical_url_normalizes_what_does_not_name_the_page() {
        let rfi = "https://www.rfi.fr/en/africa/20240101-story";
        let cases = [
            (rfi.to_string(), Some(rfi)),
            (format!("{rfi}?xtor=RSS-1"), Some(rfi)),
            (format!("{rfi}?xtor=RSS-1#xtor=RSS-1"), Some(rfi)),
            (format!("{rfi}?XTOR=RSS-1&utm_source=x"), Some(rfi)),
            (
                "HTTPS://WWW.RFI.FR/en/Africa/Story".into(),
                Some("https://www.rfi.fr/en/Africa/Story"),
            ),
            (
                "https://www.rfi.fr/cn/中国?xtor=RSS-1".into(),
                Some("https://www.rfi.fr/cn/%E4%B8%AD%E5%9B%BD"),
            ),
            (
                "https://Bücher.example/a".into(),
                Some("https://xn--bcher-kva.example/a"),
            ),
            (
                "https://example.com/a/".into(),
                Some("https://example.com/a/"),
            ),
            ("https://example.com".into(), Some("https://example.com/")),
            ("https://example.com?".into(), Some("https://example.com/")),
            (
                "https://example.com:443/a".into(),
                Some("https://example.com/a"),
            ),
            (
                "http://example.com:80/a".into(),
                Some("http://example.com/a"),
            ),
            (
                "http://example.com:8080/a".into(),
                Some("http://example.com:8080/a"),
            ),
            (
                "https://example.com:80/a".into(),
                Some("https://example.com:80/a"),
            ),
            (
                "https://example.com/a#comments".into(),
                Some("https://example.com/a"),
            ),
            (
                "https://example.com/a#comment-1234".into(),
                Some("https://example.com/a"),
            ),
            (
                "https://example.com/a#more-77".into(),
                Some("https://example.com/a"),
            ),
            (
                "https://example.com/a#".into(),
                Some("https://example.com/a"),
            ),
            (
                "https://example.com/a#:~:text=word".into(),
                Some("https://example.com/a"),
            ),
            // A fragment naming one post of a page of several is kept.
            (
                "http://scripting.com/2017/06/26.html#a080605".into(),
                Some("http://scripting.com/2017/06/26.html#a080605"),
            ),
            (
                "https://example.com/releases#2025041100".into(),
                Some("https://example.com/releases#2025041100"),
            ),
            (
                "https://example.com/entries.php#111".into(),
                Some("https://example.com/entries.php#111"),
            ),
            (
                "  https://example.com/a  ".into(),
                Some("https://example.com/a"),
            ),
            ("ftp://example.com/a".into(), None),
            ("mailto:someone@example.com".into(), None),
            ("javascript:alert(1)".into(), None),
            ("/relative/path".into(), None),
            ("example.com/a".into(), None),
            ("".into(), None),
        ];
        for (url, expected) in cases {
            assert_eq!(
                canonical_url(&url).as_deref(),
                expected,
                "canonical_url({url:?})"
            );
        }
    }

    #[test]
    fn canonical_url_drops_only_tracking_parameters() {
        // (query of https://example.com/a, canonical query)
        let cases = [
            ("?id=1&utm_source=rss&utm_medium=feed", "?id=1"),
            ("?UTM_Source=x&Utm_campaign=y", ""),
            ("?utm%5Fsource=x&b=2", "?b=2"),
            ("?fbclid=1&gclid=2&dclid=3&msclkid=4&mc_cid=5&mc_eid=6", ""),
            ("?yclid=7&igshid=8&_ga=9&ref_src=10&xtor=11", ""),
            ("?FBCLID=1&p=2", "?p=2"),
            ("?z=1&fbclid=x&a=2&m=3", "?z=1&a=2&m=3"),
            // Kept parameters keep their exact encoding.
            ("?q=a%20b&r=c+d&flag", "?q=a%20b&r=c+d&flag"),
            ("?a=1&&b=2&", "?a=1&b=2"),
            ("?ref=home&utm=x&xtorx=1", "?ref=home&utm=x&xtorx=1"),
            ("?", ""),
            ("", ""),
        ];
        for (query, expected) in cases {
            let url = format!("https://example.com/a{query}");
            let canonical = canonical_url(&url);
            let expected = format!("https://example.com/a{expected}");
            assert_eq!(canonical.as_deref(), Some(expected.as_str()), "{url:?}");
        }
    }

    fn entry(guid: Option<&str>, link: Option<&str>, title: &str, content: &str) -> Entry {
        Entry {
            guid: guid.map(String::from),
            link: link.map(String::from),
            title: Some(title.to_string()),
            content: Some(content.to_string()),
            ..Entry::default()
        }
    }

    #[test]
    fn keys_follow_guid_then_link_then_content() {
        let hash = |title: &str, text: &str| sha256_hex(&format!("{title}\n{text}"));
        // (entry, entry_key, canonical_url, content_key)
        let cases = [
            (
                entry(
                    Some("urn:rfi:1"),
                    Some("https://www.rfi.fr/a?xtor=RSS-1"),
                    "T",
                    "C",
                ),
                "guid:urn:rfi:1".to_string(),
                Some("https://www.rfi.fr/a"),
                None,
            ),
            (
                entry(Some("  urn:rfi:1 "), None, "T", "C"),
                "guid:urn:rfi:1".to_string(),
                None,
                None,
            ),
            (
                entry(None, Some("https://www.rfi.fr/a?xtor=RSS-1"), "T", "C"),
                "link:https://www.rfi.fr/a".to_string(),
                Some("https://www.rfi.fr/a"),
                None,
            ),
            (
                entry(Some(" "), Some("https://www.rfi.fr/a"), "T", "C"),
                "link:https://www.rfi.fr/a".to_string(),
                Some("https://www.rfi.fr/a"),
                None,
            ),
            (
                entry(None, None, "Title", "Content"),
                format!("hash:{}", hash("Title", "Content")),
                None,
                Some(hash("Title", "Content")),
            ),
            (
                entry(
                    None,
                    Some("ftp://example.com/a"),
                    " Title\n",
                    "  Content  here ",
                ),
                format!("hash:{}", hash("Title", "Content here")),
                None,
                Some(hash("Title", "Content here")),
            ),
            (
                Entry {
                    title: Some("Title".into()),
                    summary: Some("Summary".into()),
                    ..Entry::default()
                },
                format!("hash:{}", hash("Title", "Summary")),
                None,
                Some(hash("Title", "Summary")),
            ),
        ];
        for (entry, entry_key, canonical, content_key) in cases {
            let description = format!("{entry:?}");
            let article = prepare("rfi-en", entry, vec![]);
            assert_eq!(article.entry_key, entry_key, "{description}");
            assert_eq!(article.canonical_url.as_deref(), canonical, "{description}");
            assert_eq!(article.content_key, content_key, "{description}");
        }
    }

    #[test]
    fn entries_sharing_a_key_get_variants_that_name_what_differs() {
        let a = prepare(
            "s",
            entry(Some("g"), Some("https://e.test/a#comments"), "A", "x"),
            vec![],
        );
        assert_eq!(a.canonical_url.as_deref(), Some("https://e.test/a"));
        assert_eq!(
            variant_key(&a, Variant::Link),
            "guid:g + link:https://e.test/a"
        );
        let text = variant_key(&a, Variant::Text);
        assert_eq!(text, format!("guid:g + text:{}", &a.fingerprint[..16]));
        let title = variant_key(&a, Variant::Title);
        assert!(title.starts_with("guid:g + title:"), "{title}");
        for key in [&text, &title, &variant_key(&a, Variant::Link), &a.entry_key] {
            assert_eq!(base_key(key), "guid:g");
        }
        // A guid-less entry linking to one post of a page: its key keeps the
        // fragment; the key earlier versions gave it does not.
        let post = prepare(
            "s",
            entry(None, Some("https://e.test/day.html#a1"), "P", "x"),
            vec![],
        );
        assert_eq!(post.entry_key, "link:https://e.test/day.html#a1");
        assert_eq!(
            legacy_entry_key(&post).as_deref(),
            Some("link:https://e.test/day.html")
        );
        assert_eq!(legacy_entry_key(&a), None);
        // Source-local ids differ from the link's and between entries.
        let local = local_uid("s", &post.entry_key);
        assert_ne!(local, post.uid);
        assert_ne!(local, local_uid("s", "link:https://e.test/day.html#a2"));
        assert_eq!(local, local_uid("s", &post.entry_key));
    }

    #[test]
    fn a_reused_guid_is_another_story_only_if_link_and_title_differ() {
        let stored = ("Original title", Some("https://e.test/a?utm_source=x"));
        // (entry, another story)
        let cases = [
            (
                entry(Some("g"), Some("https://e.test/a"), "Edited title", "new"),
                false,
            ),
            (
                entry(
                    Some("g"),
                    Some("https://e.test/moved"),
                    "Original  title",
                    "x",
                ),
                false,
            ),
            (
                entry(Some("g"), Some("https://e.test/b"), "Other story", "y"),
                true,
            ),
            (entry(Some("g"), None, "Other story", "y"), true),
            // Without a guid, a new title under the same link.
            (
                entry(None, Some("https://e.test/a"), "Original title", "edited"),
                false,
            ),
            (
                entry(None, Some("https://e.test/a"), "Next item", "x"),
                true,
            ),
            (entry(None, None, "Next item", "x"), false),
        ];
        for (e, other) in cases {
            let article = prepare("s", e, vec![]);
            assert_eq!(
                is_other_story(stored.0, stored.1, &article),
                other,
                "{article:?}"
            );
        }
    }

    #[test]
    fn uid_is_a_stable_version_5_style_urn() {
        let format = Regex::new(
            r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        let entries = [
            entry(Some("g"), Some("https://www.rfi.fr/a"), "T", "C"),
            entry(Some("g"), None, "T", "C"),
            entry(None, None, "T", "C"),
            Entry::default(),
        ];
        for e in entries {
            let first = prepare("rfi-en", e.clone(), vec![]);
            let again = prepare("rfi-en", e.clone(), vec![]);
            assert!(format.is_match(&first.uid), "{}", first.uid);
            assert_eq!(first.uid, again.uid, "{e:?}");
        }
        // Pinned (checked against Python's hashlib and uuid): ids must never
        // change between versions or instances.
        let pinned = [
            (
                entry(Some("g"), Some("https://www.rfi.fr/a?xtor=RSS-1"), "T", "C"),
                "urn:uuid:c4a63e5b-ef97-590f-a29c-2564e66192da",
            ),
            (
                Entry {
                    title: Some("T".into()),
                    ..Entry::default()
                },
                "urn:uuid:bb779c7d-c75d-5850-94dc-2b4680083c78",
            ),
        ];
        for (e, expected) in pinned {
            assert_eq!(prepare("rfi-en", e, vec![]).uid, expected);
        }
    }

    /// An entry as seen in a source.
    type Sighting = (&'static str, Entry);

    #[test]
    fn uid_follows_the_canonical_link_across_sources() {
        // (source, entry) pairs that are one article.
        let same: &[&[Sighting]] = &[
            &[
                (
                    "rfi-en",
                    entry(
                        Some("rfi-1"),
                        Some("https://www.rfi.fr/en/a?xtor=RSS-1"),
                        "T",
                        "C",
                    ),
                ),
                (
                    "rfi-world",
                    entry(
                        Some("other-guid"),
                        Some("https://www.rfi.fr/en/a"),
                        "Other",
                        "X",
                    ),
                ),
                (
                    "aggregator",
                    entry(
                        None,
                        Some("HTTPS://WWW.RFI.FR:443/en/a?utm_source=x#top"),
                        "T",
                        "C",
                    ),
                ),
            ],
            &[
                (
                    "a",
                    entry(
                        None,
                        Some("https://example.com/p?id=7&fbclid=abc"),
                        "T",
                        "C",
                    ),
                ),
                (
                    "b",
                    entry(None, Some("https://example.com/p?id=7"), "T", "C"),
                ),
            ],
            // Without a link, a guid is an identity within one source only.
            &[
                ("a", entry(Some("g1"), None, "T", "C")),
                ("a", entry(Some("g1"), None, "Edited", "Edited")),
            ],
        ];
        for group in same {
            let articles: Vec<NewArticle> = group
                .iter()
                .map(|(source, e)| prepare(source, e.clone(), vec![]))
                .collect();
            for article in &articles[1..] {
                assert_eq!(article.uid, articles[0].uid, "{group:?}");
                assert_eq!(
                    article.canonical_url, articles[0].canonical_url,
                    "{group:?}"
                );
            }
        }
        // Pairs that are different articles.
        let different: &[(Sighting, Sighting)] = &[
            (
                (
                    "a",
                    entry(None, Some("https://example.com/p?id=7"), "T", "C"),
                ),
                (
                    "a",
                    entry(None, Some("https://example.com/p?id=8"), "T", "C"),
                ),
            ),
            (
                ("a", entry(None, Some("https://example.com/P"), "T", "C")),
                ("a", entry(None, Some("https://example.com/p"), "T", "C")),
            ),
            (
                ("a", entry(Some("g1"), None, "T", "C")),
                ("b", entry(Some("g1"), None, "T", "C")),
            ),
            (
                ("a", entry(None, None, "T", "C")),
                ("b", entry(None, None, "T", "C")),
            ),
        ];
        for ((source_a, a), (source_b, b)) in different {
            let a = prepare(source_a, a.clone(), vec![]);
            let b = prepare(source_b, b.clone(), vec![]);
            assert_ne!(a.uid, b.uid, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn fingerprint_changes_only_when_the_text_does() {
        let base = Entry {
            guid: Some("g".into()),
            link: Some("https://example.com/a".into()),
            title: Some("Title".into()),
            summary: Some("Summary".into()),
            content: Some("<p>Content</p>".into()),
            author: Some("Jane".into()),
            ..Entry::default()
        };
        let original = prepare("s", base.clone(), vec![]).fingerprint;
        // (edit, fingerprint changes)
        let cases: Vec<(Entry, bool)> = vec![
            (base.clone(), false),
            (
                Entry {
                    title: Some("Title!".into()),
                    ..base.clone()
                },
                true,
            ),
            (
                Entry {
                    summary: Some("Summary, edited".into()),
                    ..base.clone()
                },
                true,
            ),
            (
                Entry {
                    content: Some("<p>Content, edited</p>".into()),
                    ..base.clone()
                },
                true,
            ),
            (
                Entry {
                    content: None,
                    ..base.clone()
                },
                true,
            ),
            // Text moving from one field to the next is an edit.
            (
                Entry {
                    title: Some("TitleSummary".into()),
                    summary: Some("".into()),
                    ..base.clone()
                },
                true,
            ),
            // Re-serialized whitespace is not.
            (
                Entry {
                    title: Some("  Title\n".into()),
                    ..base.clone()
                },
                false,
            ),
            // Neither are fields outside the text.
            (
                Entry {
                    author: Some("John".into()),
                    link: Some("https://example.com/b".into()),
                    ..base.clone()
                },
                false,
            ),
        ];
        for (edited, changes) in cases {
            let fingerprint = prepare("s", edited.clone(), vec![]).fingerprint;
            assert_eq!(fingerprint != original, changes, "{edited:?}");
            assert_eq!(fingerprint.len(), 64);
        }
    }

    #[test]
    fn prepare_copies_the_entry_and_tags() {
        let published = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let e = Entry {
            guid: Some("g".into()),
            link: Some("https://example.com/a?utm_source=x".into()),
            title: None,
            summary: Some("S".into()),
            content: Some("C".into()),
            author: Some("A".into()),
            published: Some(published),
            updated: None,
            categories: vec!["ignored".into()],
            language: Some("en".into()),
        };
        let tags = vec![Tag::from_label("World").unwrap()];
        let article = prepare("s", e, tags.clone());
        assert_eq!(article.title, "");
        // The link is kept as the feed gave it; only identity is canonical.
        assert_eq!(
            article.link.as_deref(),
            Some("https://example.com/a?utm_source=x")
        );
        assert_eq!(article.summary.as_deref(), Some("S"));
        assert_eq!(article.content.as_deref(), Some("C"));
        assert_eq!(article.author.as_deref(), Some("A"));
        assert_eq!(article.published, Some(published));
        assert_eq!(article.updated, None);
        assert_eq!(article.tags, tags);
        assert_eq!(article.language.as_deref(), Some("en"));
    }
}
