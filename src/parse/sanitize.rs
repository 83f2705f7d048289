//! Text hygiene for parsed feeds: C1 controls, sanitized HTML (docs/CONFIG.md
//! "Fetching"), plain text of fields that may be HTML, and the "first
//! words" fallback title. The text helpers themselves live in `text`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::OnceLock;

use ammonia::{Builder, UrlRelative};
use regex::Regex;
use url::Url;

use super::limits::{cut_text, MAX_HTML_DEPTH};

mod depth;
use depth::flatten_deep;

pub(crate) use crate::text::is_xml_illegal;
use crate::text::{collapse_whitespace, html_to_text};

/// Words kept when an entry without a title borrows the start of its text.
pub(crate) const FALLBACK_TITLE_WORDS: usize = 10;

/// True for the C1 controls, U+0080 to U+009F.
fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9F}').contains(&c)
}

/// Replaces C1 control characters with what windows-1252 has at those
/// bytes (`U+0092` -> `’`). Nobody means a C1 control in a feed: they are
/// smart quotes from a windows-1252 editor that went through a Latin-1 or
/// UTF-8 label, or `&#146;`-style references (feedparser's "demoronize").
/// The five bytes windows-1252 leaves undefined stay as they are.
pub(crate) fn demoronize(s: &str) -> Cow<'_, str> {
    // C1 controls are 0xC2 0x80..=0x9F in UTF-8: no 0xC2 byte, none.
    if !s.as_bytes().contains(&0xC2) || !s.chars().any(is_c1) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if !is_c1(c) {
                    return c;
                }
                let byte = [c as u32 as u8];
                let (decoded, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&byte);
                decoded.chars().next().unwrap_or(c)
            })
            .collect(),
    )
}

/// Whether a string that claims to be plain text carries markup or entity
/// references anyway. RSS has no way to say which one a title or an RSS 1.0
/// description is, so, like feedparser, we look.
pub(crate) fn looks_like_html(s: &str) -> bool {
    static MARKUP: OnceLock<Regex> = OnceLock::new();
    MARKUP
        .get_or_init(|| {
            Regex::new(r"(?i)</?[a-z][a-z0-9]*[\s/>]|<!--|&(#[0-9]+|#x[0-9a-f]+|[a-z][a-z0-9]*);")
                .expect("static regex")
        })
        .is_match(s)
}

/// Sanitizes an HTML fragment: ordinary markup stays, anything that runs
/// code or embeds other documents goes, relative `href`/`src` become absolute
/// against `base`, and links open without handing over the reader's window.
/// `html` (a whole page) with nesting past [`MAX_HTML_DEPTH`] flattened,
/// so a DOM built from it (full text extraction) stays shallow.
pub(crate) fn flatten(html: &str) -> std::borrow::Cow<'_, str> {
    flatten_deep(html, MAX_HTML_DEPTH)
}

pub fn sanitize_html(html: &str, base: &Url) -> String {
    sanitize_html_with(html, base, false)
}

/// [`sanitize_html`], and with `strip_images` no `<img>`/`<picture>` and no
/// video posters either: nothing the reader's client would load from a
/// third party just by showing the entry (tracking pixels).
pub(crate) fn sanitize_html_with(html: &str, base: &Url, strip_images: bool) -> String {
    thread_local! {
        /// A sanitizer allocates its tag and attribute sets when built: one
        /// per thread and base URL (a feed's entries share theirs), not one
        /// per call.
        static SANITIZER: RefCell<Option<Cached>> = const { RefCell::new(None) };
    }
    let html = flatten_deep(html, MAX_HTML_DEPTH);
    SANITIZER.with_borrow_mut(|cached| {
        let sanitizer = match cached {
            Some(c) if c.base == *base && c.strip_images == strip_images => c,
            _ => cached.insert(Cached::new(base, strip_images)),
        };
        let mut out = sanitizer.builder.clean(&html).to_string();
        // Two things leave a tree that an HTML parser builds differently
        // when it reads the output again: ammonia unwrapping a tag it does
        // not allow but keeping its children (`<p><object><p>x</p></object></p>`
        // becomes `<p><p>x</p></p>`), and a table's foster parenting, which
        // moves misplaced content out of the table into elements it could
        // never be read into (`<dt><table><dt>` gives a `dt` in a `dt`).
        // Only then is the output sanitized again, until it stays the same,
        // so that what is stored reads the same to every parser.
        if unwraps_a_tag(&html, &sanitizer.allowed) || opens_a_table(&html) {
            for _ in 1..MAX_PASSES {
                let again = sanitizer.builder.clean(&out).to_string();
                if again == out {
                    break;
                }
                out = again;
            }
        }
        out.trim().to_string()
    })
}

/// One thread's sanitizer for one base URL and image policy.
struct Cached {
    base: Url,
    strip_images: bool,
    builder: Builder<'static>,
    /// The tags the builder keeps or drops with their content, lowercased.
    allowed: HashSet<String>,
}

impl Cached {
    fn new(base: &Url, strip_images: bool) -> Cached {
        let builder = sanitizer(base, strip_images);
        let allowed = builder
            .clone_tags()
            .into_iter()
            .chain(builder.clone_clean_content_tags())
            .map(str::to_ascii_lowercase)
            .collect();
        Cached {
            base: base.clone(),
            strip_images,
            builder,
            allowed,
        }
    }
}

/// Sanitizer passes at most over one fragment; one settles what the first
/// moved, the next confirms it (a third has not been seen to change more).
const MAX_PASSES: usize = 4;

/// Whether `html` has a `<table` start tag, in any case.
fn opens_a_table(html: &str) -> bool {
    html.as_bytes()
        .windows(6)
        .any(|w| w[0] == b'<' && w[1..].eq_ignore_ascii_case(b"table"))
}

/// Whether `html` opens an element the sanitizer neither keeps nor drops
/// whole, which it unwraps (a linear scan of tag names).
fn unwraps_a_tag(html: &str, allowed: &HashSet<String>) -> bool {
    let bytes = html.as_bytes();
    let mut name = String::new();
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + at + 1;
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b':'))
            .map_or(bytes.len(), |n| start + n);
        if end > start && bytes[start].is_ascii_alphabetic() {
            name.clear();
            name.extend(
                bytes[start..end]
                    .iter()
                    .map(|b| b.to_ascii_lowercase() as char),
            );
            if !allowed.contains(&name) {
                return true;
            }
        }
        i = end.max(start);
    }
    false
}

/// Schemes a URL attribute other than `href`/`src` may have (`cite`).
const CITE_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

fn sanitizer(base: &Url, strip_images: bool) -> Builder<'static> {
    let mut builder = Builder::default();
    // ammonia checks the scheme of `href`, `src` and a few others, but lets
    // `cite` (blockquote, q, del, ins) through as written: a
    // `javascript:` URL there is one click away in some readers. Resolve
    // it like `href` and keep it only with a harmless scheme.
    let cite_base = base.clone();
    builder.attribute_filter(move |_element, attr, value| match attr {
        "cite" | "longdesc" => cite_base
            .join(value.trim())
            .ok()
            .filter(|url| CITE_SCHEMES.contains(&url.scheme()))
            .map(|url| Cow::Owned(url.to_string())),
        _ => Some(Cow::Borrowed(value)),
    });
    if strip_images {
        builder.rm_tags(["img"]);
    }
    // ammonia's defaults already exclude script, style, iframe, object,
    // embed, form and every on* attribute; the additions are media elements
    // feed readers commonly show, with only inert attributes, and `tfoot`,
    // which ammonia omits: stripping it moved its rows to the table body and
    // made the output change when sanitized again.
    builder
        .add_tags(["audio", "video", "source", "tfoot"])
        .add_tag_attributes("audio", ["src", "controls"])
        .add_tag_attributes("video", ["src", "controls", "width", "height"])
        .add_tag_attributes("source", ["src", "type"])
        .url_relative(UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    allow_svg_and_mathml(&mut builder);
    if !strip_images {
        builder
            .add_tags(["picture"])
            .add_tag_attributes("video", ["poster"]);
    }
    builder
}

/// Inline SVG drawings and MathML formulas, which some feeds use as their
/// whole body: shapes, text and layout only. No links (`a`, `use`,
/// `xlink:href`), no `style`, no animation, no `foreignObject`; ammonia
/// itself refuses namespace switches that could smuggle HTML in.
fn allow_svg_and_mathml(builder: &mut Builder<'static>) {
    const SVG: [&str; 16] = [
        "svg",
        "g",
        "circle",
        "ellipse",
        "line",
        "path",
        "polygon",
        "polyline",
        "rect",
        "text",
        "tspan",
        "title",
        "desc",
        "defs",
        "linearGradient",
        "stop",
    ];
    const SVG_ATTRIBUTES: [&str; 30] = [
        "width",
        "height",
        "viewBox",
        "version",
        "baseProfile",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "d",
        "points",
        "fill",
        "stroke",
        "stroke-width",
        "opacity",
        "fill-opacity",
        "stroke-opacity",
        "transform",
        "font-size",
        "font-family",
        "text-anchor",
        "offset",
        "stop-color",
    ];
    const MATHML: [&str; 25] = [
        "math",
        "mrow",
        "mi",
        "mo",
        "mn",
        "ms",
        "mtext",
        "mspace",
        "msup",
        "msub",
        "msubsup",
        "mfrac",
        "msqrt",
        "mroot",
        "mover",
        "munder",
        "munderover",
        "mtable",
        "mtr",
        "mtd",
        "mstyle",
        "mpadded",
        "mphantom",
        "menclose",
        "semantics",
    ];
    const MATHML_ATTRIBUTES: [&str; 6] = [
        "display",
        "mathvariant",
        "stretchy",
        "fence",
        "separator",
        "notation",
    ];
    builder.add_tags(SVG).add_tags(MATHML);
    for tag in SVG {
        builder.add_tag_attributes(tag, SVG_ATTRIBUTES);
    }
    for tag in MATHML {
        builder.add_tag_attributes(tag, MATHML_ATTRIBUTES);
    }
}

/// Sanitized HTML cut to at most `max` bytes at an element boundary: the
/// start is kept, a tag or character reference the cut went through is
/// left out, and the elements left open are closed. `None` when it fits.
pub(crate) fn cut_html(html: &str, max: usize, base: &Url) -> Option<String> {
    if html.len() <= max {
        return None;
    }
    // Closing the open elements adds at most a few KiB (their depth is
    // bounded); leave room for that, and cut deeper if it was not enough.
    let mut room = (max / 8).min(16 * 1024);
    loop {
        let prefix = cut_text(html, max.saturating_sub(room)).unwrap_or(html);
        // A tag or reference cut in two would read as text: drop its start.
        let prefix = match (prefix.rfind('<'), prefix.rfind('>')) {
            (Some(lt), gt) if gt.is_none_or(|gt| gt < lt) => &prefix[..lt],
            _ => prefix,
        };
        let prefix = match (prefix.rfind('&'), prefix.rfind(';')) {
            (Some(amp), semi) if semi.is_none_or(|s| s < amp) && prefix.len() - amp < 12 => {
                &prefix[..amp]
            }
            _ => prefix,
        };
        let cut = sanitize_html(prefix, base);
        if cut.len() <= max || room >= max {
            return Some(cut_text(&cut, max).unwrap_or(&cut).to_string());
        }
        room = (room * 2).min(max);
    }
}

/// Plain text of a field that may or may not be HTML.
pub(crate) fn text_of(s: &str, is_html: bool) -> String {
    if is_html || looks_like_html(s) {
        html_to_text(s)
    } else {
        collapse_whitespace(s)
    }
}

/// The first `n` words of `text`, with an ellipsis when some were cut.
pub(crate) fn first_words(text: &str, n: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() > n {
        format!("{}…", words[..n].join(" "))
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's finding: an unwrapped element that bounded a `<p>` left
    /// markup a parser rebuilt differently on a second reading.
    #[test]
    fn sanitizing_again_changes_nothing_when_a_tag_was_unwrapped() {
        let base = Url::parse("https://example.org/").unwrap();
        for html in [
            "<p><object><p>x</p></object></p>",
            "<h3><object><h3>y</h3></object></h3>",
            "<li><object><li>z</li></object></li>",
            "<p>plain <b>allowed</b> markup</p>",
        ] {
            let once = sanitize_html(html, &base);
            assert_eq!(sanitize_html(&once, &base), once, "{html}");
        }
        let allowed: HashSet<String> = ["p", "b"].map(String::from).into();
        assert!(!unwraps_a_tag("<p>a <b>b</b> 1 < 2</p>", &allowed));
        assert!(unwraps_a_tag("<p><object>x</object></p>", &allowed));
    }

    /// The fuzzer's next finding: a table's foster parenting moved content
    /// into an element a parser closes on a second reading (a `dt` in a
    /// `dt`, a link in a link); no tag was unwrapped. The content stays,
    /// in the structure a browser would build.
    #[test]
    fn sanitizing_again_changes_nothing_after_foster_parenting() {
        let base = Url::parse("https://example.org/").unwrap();
        for html in [
            "x<dt><table><dd>",
            "<a href=x><hr><table><a href=y>text",
            "<pre><ul><hr></b><em><li><table><li>item",
            "<TABLE><dt>a<dt>b</TABLE>",
        ] {
            let once = sanitize_html(html, &base);
            assert_eq!(sanitize_html(&once, &base), once, "{html}");
        }
        let once = sanitize_html("<a href=x><hr><table><a href=y>text", &base);
        assert!(once.contains(">text</a>"), "{once}");
        assert!(opens_a_table("<p>a</p><TaBlE border=1>"));
        assert!(!opens_a_table("<p>a table</p><tab>"));
    }

    fn base() -> Url {
        Url::parse("https://example.com/blog/post/").unwrap()
    }

    #[test]
    fn c1_controls_become_windows_1252_punctuation() {
        assert_eq!(
            demoronize("don\u{92}t \u{93}x\u{94} \u{85} \u{80}\u{81}"),
            "don’t “x” … €\u{81}"
        );
        assert!(matches!(demoronize("plain ’"), Cow::Borrowed(_)));
    }

    #[test]
    fn sanitizer_removes_active_content_and_keeps_markup() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                r#"<p onclick="x()">Hi <script>alert(1)</script><em>there</em></p>"#,
                &["<p>", "<em>there</em>"],
                &["script", "onclick", "alert"],
            ),
            (
                r#"<a href="javascript:alert(1)">x</a><iframe src="https://evil"></iframe>"#,
                &["x"],
                &["javascript", "iframe"],
            ),
            (
                r#"<style>p{}</style><form><input></form><object data="a"></object><embed src="b">"#,
                &[],
                &["style", "form", "input", "object", "embed"],
            ),
            (
                r#"<img src="../img/a.png"><a href="/about">about</a>"#,
                &[
                    r#"src="https://example.com/blog/img/a.png""#,
                    r#"href="https://example.com/about""#,
                    r#"rel="noopener noreferrer""#,
                ],
                &[],
            ),
            (
                "<figure><img src=\"x.jpg\"><figcaption>c</figcaption></figure><h2>t</h2><ul><li>i</li></ul><blockquote>q</blockquote><table><tr><td>1</td></tr></table>",
                &["<figure>", "<figcaption>", "<h2>", "<li>", "<blockquote>", "<td>"],
                &[],
            ),
        ];
        for (input, present, absent) in cases {
            let out = sanitize_html(input, &base());
            for p in *present {
                assert!(out.contains(p), "{out:?} should contain {p:?}");
            }
            for a in *absent {
                assert!(!out.contains(a), "{out:?} should not contain {a:?}");
            }
        }
    }

    #[test]
    fn plain_text_is_left_alone_unless_it_carries_markup() {
        assert_eq!(text_of("  x < y  and  z ", false), "x < y and z");
        assert_eq!(text_of("AT&T <b>wins</b>", false), "AT&T wins");
    }

    #[test]
    fn html_is_cut_between_elements_and_closed() {
        let html = format!(
            "<div><blockquote><p>{}</p></blockquote></div>",
            "<em>word</em> &amp; ".repeat(1000)
        );
        assert_eq!(cut_html(&html, html.len(), &base()), None);
        for max in [100, 1000, 5000, 9999] {
            let cut = cut_html(&html, max, &base()).unwrap();
            assert!(cut.len() <= max, "{max}: {}", cut.len());
            assert!(cut.len() > max / 2, "{max}: {}", cut.len());
            assert!(cut.starts_with("<div><blockquote><p><em>word</em>"));
            assert!(cut.ends_with("</p></blockquote></div>"), "{cut}");
            assert_eq!(cut.matches("<em>").count(), cut.matches("</em>").count());
            assert!(!cut.contains("&amp;am") && !cut.contains("&lt;"), "{cut}");
        }
    }

    #[test]
    fn cite_urls_are_checked_like_href() {
        let out = sanitize_html(
            r#"<blockquote cite="javascript:alert(1)">a</blockquote><q cite="../src">b</q><img src="p.gif" longdesc="d.html">"#,
            &base(),
        );
        assert_eq!(
            out,
            r#"<blockquote>a</blockquote><q cite="https://example.com/blog/src">b</q><img src="https://example.com/blog/post/p.gif">"#
        );
        let stripped = sanitize_html_with(
            r#"<p>t<img src="https://t.example/p.gif"></p><picture><img src="a.png"></picture><video src="v.mp4" poster="p.jpg"></video>"#,
            &base(),
            true,
        );
        assert_eq!(
            stripped,
            r#"<p>t</p><video src="https://example.com/blog/post/v.mp4"></video>"#
        );
    }

    /// How deep the elements of serialized HTML nest.
    fn nesting(html: &str) -> usize {
        const VOID: [&str; 5] = ["br", "hr", "img", "source", "wbr"];
        let (mut depth, mut deepest) = (0usize, 0);
        for tag in html.split('<').skip(1) {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
                .collect();
            if let Some(_end) = name.strip_prefix('/') {
                depth = depth.saturating_sub(1);
            } else if !name.is_empty() && !VOID.contains(&name.as_str()) {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
        deepest
    }

    #[test]
    fn no_markup_nests_past_the_depth_bound() {
        // Patterns where the tree builder keeps elements open that a naive
        // count would take as closed; each repeated 2,000 times.
        let fifty = "<div>".repeat(50);
        let patterns = [
            "<div>".to_string(),
            "<span><div></span>".to_string(),
            format!("<td>{fifty}<tr>"),
            format!("<td>{fifty}</td>"),
            format!("<form>{fifty}</form>"),
            format!("<li><ul>{fifty}</li>"),
            format!("<p><button>{fifty}</p>"),
            format!("<a href=x>{fifty}<a href=y>"),
            format!("<table><tr><td><table>{fifty}</tr>"),
            format!(
                "<p>{}</p>x",
                (0..50).map(|i| format!("<b id=b{i}>")).collect::<String>()
            ),
        ];
        for pattern in patterns {
            let html = pattern.repeat(2000);
            let out = sanitize_html(&html, &base());
            let depth = nesting(&out);
            assert!(
                depth <= MAX_HTML_DEPTH,
                "{pattern:?}: nests {depth} deep in the sanitizer's output"
            );
        }
    }

    #[test]
    fn first_words_cuts_with_an_ellipsis() {
        assert_eq!(first_words("a b c", 10), "a b c");
        assert_eq!(
            first_words(
                "one two three four five six seven eight nine ten eleven",
                10
            ),
            "one two three four five six seven eight nine ten…"
        );
    }
}
