//! Text hygiene for parsed feeds: XML-illegal characters, sanitized HTML
//! (CONTRACT §6), HTML-to-text for titles and summaries, and the "first
//! words" fallback title.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::OnceLock;

use ammonia::{Builder, UrlRelative};
use regex::Regex;
use url::Url;

/// Words kept when an entry without a title borrows the start of its text.
pub(crate) const FALLBACK_TITLE_WORDS: usize = 10;

/// True for characters XML 1.0 forbids (§2.2): C0 controls other than tab,
/// newline and carriage return, and the non-characters U+FFFE and U+FFFF.
/// Lone surrogates cannot occur in a Rust `str`.
pub(crate) fn is_xml_illegal(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Removes XML-illegal characters; borrows when there are none (the usual case).
pub(crate) fn strip_xml_illegal(s: &str) -> Cow<'_, str> {
    // A byte scan first (whole feeds go through here): the C0 controls are
    // their own bytes in UTF-8, and U+FFFE/U+FFFF start with 0xEF, which is
    // rare outside CJK text.
    if !has_suspect_byte(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    if s.chars().any(is_xml_illegal) {
        Cow::Owned(s.chars().filter(|c| !is_xml_illegal(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether any byte is a C0 control other than tab, newline and carriage
/// return, or 0xEF. Bitwise operators and whole chunks, no early exit inside
/// one: the compiler turns that into a vector loop, several times faster
/// than `any` on a whole feed.
fn has_suspect_byte(bytes: &[u8]) -> bool {
    let suspect = |b: u8| ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF);
    bytes
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |found, &b| found | suspect(b)))
}

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

/// Trims and folds every run of whitespace (no-break spaces included) into
/// one space.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Escapes text so it can be embedded in HTML as-is.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
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
pub fn sanitize_html(html: &str, base: &Url) -> String {
    thread_local! {
        /// A sanitizer allocates its tag and attribute sets when built: one
        /// per thread and base URL (a feed's entries share theirs), not one
        /// per call.
        static SANITIZER: RefCell<Option<(Url, Builder<'static>)>> = const { RefCell::new(None) };
    }
    SANITIZER.with_borrow_mut(|cached| {
        let builder = match cached {
            Some((for_base, builder)) if for_base == base => builder,
            _ => &mut cached.insert((base.clone(), sanitizer(base))).1,
        };
        builder.clean(html).to_string().trim().to_string()
    })
}

fn sanitizer(base: &Url) -> Builder<'static> {
    let mut builder = Builder::default();
    // ammonia's defaults already exclude script, style, iframe, object,
    // embed, form and every on* attribute; the additions are media elements
    // feed readers commonly show, with only inert attributes, and `tfoot`,
    // which ammonia omits: stripping it moved its rows to the table body and
    // made the output change when sanitized again.
    builder
        .add_tags(["audio", "video", "source", "picture", "tfoot"])
        .add_tag_attributes("audio", ["src", "controls"])
        .add_tag_attributes("video", ["src", "controls", "poster", "width", "height"])
        .add_tag_attributes("source", ["src", "type"])
        .url_relative(UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    builder
}

/// Plain text of an HTML fragment: tags dropped (script and style with their
/// content), entities decoded, whitespace collapsed.
pub(crate) fn html_to_text(html: &str) -> String {
    // Without a tag or a character reference there is nothing for an HTML
    // parser to do (many summaries are plain words typed as HTML): the
    // sanitizer's output would be the same characters.
    if !html.contains(['<', '&']) {
        return collapse_whitespace(&strip_xml_illegal(html));
    }
    html_to_text_parsed(html)
}

fn html_to_text_parsed(html: &str) -> String {
    static BLOCK: OnceLock<Regex> = OnceLock::new();
    // Block boundaries separate words; without a space `<p>a</p><p>b</p>`
    // would read "ab".
    let block = BLOCK.get_or_init(|| {
        Regex::new(
            r"(?i)<(/?)(p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section|article|header|footer|figure|figcaption)\b",
        )
        .expect("static regex")
    });
    let spaced = block.replace_all(html, " <$1$2");
    thread_local! {
        static TEXT_ONLY: Builder<'static> = {
            let mut builder = Builder::empty();
            builder.clean_content_tags(HashSet::from(["script", "style"]));
            builder
        };
    }
    let serialized = TEXT_ONLY.with(|builder| builder.clean(&spaced).to_string());
    // With no tags allowed, the serializer only escapes these four in text.
    let text = serialized
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    // Character references can spell characters XML forbids; drop them
    // before collapsing so no double space is left where they were.
    collapse_whitespace(&strip_xml_illegal(&text))
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

    fn base() -> Url {
        Url::parse("https://example.com/blog/post/").unwrap()
    }

    #[test]
    fn strips_illegal_control_characters_only() {
        let s = "a\u{0}b\u{8}c\td\ne\rf\u{B}\u{C}g\u{1F}h\u{FFFE}\u{FFFF}i\u{85}";
        assert_eq!(strip_xml_illegal(s), "abc\td\ne\rfghi\u{85}");
        assert!(matches!(strip_xml_illegal("clean"), Cow::Borrowed(_)));
        // Alone (no control character to give it away), and beside legal
        // characters that share its first byte (U+FF01, U+FFFD).
        assert_eq!(strip_xml_illegal("！x\u{FFFF}y�"), "！xy�");
        assert!(matches!(strip_xml_illegal("！�\u{85}"), Cow::Borrowed(_)));
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
    fn html_becomes_plain_text() {
        let cases = [
            ("<p>One</p><p>Two &amp; three</p>", "One Two & three"),
            ("a&nbsp;b &lt;tag&gt;", "a b <tag>"),
            ("<script>x()</script>  Hello\n\n world ", "Hello world"),
            ("caf&eacute; &#8217;s", "café ’s"),
        ];
        for (input, want) in cases {
            assert_eq!(html_to_text(input), want, "{input:?}");
        }
    }

    #[test]
    fn text_without_markup_reads_as_the_html_parser_reads_it() {
        // Line ends, NUL and other controls, no-break spaces, a bare `>`,
        // non-Latin text: the shortcut must agree with the parser.
        let cases = [
            "  plain   words\r\nacross\rlines\n\n",
            "a\u{0}b\u{1}c\u{FFFF}d",
            "caf\u{e9}\u{a0}au\u{a0} lait > tea",
            "\u{4e2d}\u{56fd}\u{3000}\u{65b0}\u{95fb} \u{2028} x",
            "",
            " \t ",
        ];
        for input in cases {
            assert_eq!(html_to_text(input), html_to_text_parsed(input), "{input:?}");
        }
        assert_eq!(html_to_text("a\r\n b\u{0}c"), "a bc");
    }

    #[test]
    fn plain_text_is_left_alone_unless_it_carries_markup() {
        assert_eq!(text_of("  x < y  and  z ", false), "x < y and z");
        assert_eq!(text_of("AT&T <b>wins</b>", false), "AT&T wins");
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
