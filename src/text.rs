//! Text utilities every step shares, below all of them: tag terms, folding
//! for rule matching, the text of an HTML fragment, XML-illegal characters,
//! and the one XML/HTML escaper.
//!
//! A term is a tag's identity (docs/TAGS-AND-DEDUP.md "How tags work"); it keeps diacritics
//! (`élection`). Rules match on *folded* text instead (NFD, combining marks
//! dropped, lowercased), so `élection`, `Election` and `ELECTION` are one
//! word to a rule.

use std::borrow::Cow;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A tag's term: lowercase, runs of spaces, `_` and `-` folded to one `-`,
/// trimmed of separators at either end. `XI JINPING` -> `xi-jinping`.
pub fn term(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut pending_separator = false;
    for c in label.chars() {
        if c.is_whitespace() || c == '_' || c == '-' {
            pending_separator = !out.is_empty();
        } else {
            if pending_separator {
                out.push('-');
                pending_separator = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Text as tag rules see it: decomposed (NFD), combining marks dropped,
/// lowercased. `Élection` -> `election`.
pub fn fold(text: &str) -> String {
    // ASCII has nothing to decompose: most feed text takes this path, which
    // skips the per-char NFD lookups that dominated tagging in profiles.
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        // Greek final sigma: per-char lowercasing of `Σ` gives `σ` anywhere.
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

/// Trims and folds every run of whitespace (no-break spaces included) into
/// one space.
pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// True for characters XML 1.0 forbids (§2.2): C0 controls other than tab,
/// newline and carriage return, and the non-characters U+FFFE and U+FFFF.
/// Lone surrogates cannot occur in a Rust `str`.
pub fn is_xml_illegal(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Removes XML-illegal characters; borrows when there are none (the usual case).
pub fn strip_xml_illegal(s: &str) -> Cow<'_, str> {
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

/// The plain text of an HTML fragment, as titles, summaries, tag rules and
/// near-duplicate signatures read it: tags and comments dropped (`script`
/// and `style` with their content), character references decoded as HTML5
/// does, XML-illegal characters dropped, whitespace collapsed.
///
/// Every element but inline formatting separates words, so
/// `<p>a</p><p>b</p>` reads `a b` while `Text on <b>Russia</b>` reads
/// `Text on Russia`. A scanner rather than an HTML parser: it runs on every
/// stored entry's content, and for text the two only differ on markup no
/// serializer writes (`<textarea>` holding tags, say).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            // `<!-->` and `<!--->` are (empty) comments too.
            let body_start = comment.strip_prefix('-').unwrap_or(comment);
            rest = match body_start.strip_prefix('>') {
                Some(after) => after,
                None => comment.find("-->").map_or("", |end| &comment[end + 3..]),
            };
            out.push(' ');
        } else if rest.starts_with('<') {
            // Only `<` followed by a letter, `/`, `!` or `?` opens a tag; a
            // lone `<` is text.
            let opens_tag = rest[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
            if !opens_tag {
                out.push('<');
                rest = &rest[1..];
                continue;
            }
            let end = tag_end(rest);
            let name = tag_name(&rest[..end]);
            if !is_inline(name) {
                out.push(' ');
            }
            let closing = rest[1..].starts_with('/');
            rest = &rest[end..];
            if !closing
                && (name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style"))
            {
                rest = skip_raw_text(rest, name);
            }
        } else {
            let (decoded, len) = decode_reference(rest);
            out.push_str(&decoded);
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    // References can spell characters XML forbids; drop them before
    // collapsing so no double space is left where they were.
    collapse_whitespace(&strip_xml_illegal(&out))
}

/// The element name of a tag (`<b class=x>`, `</a>` -> `b`, `a`); empty for
/// `<!…>` and `<?…>`.
fn tag_name(tag: &str) -> &str {
    let name = tag.trim_start_matches(['<', '/']);
    let len = name
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name.len());
    &name[..len]
}

/// Whether an element is inline formatting, which does not separate words.
/// Anything else, unknown elements included, does: a missed boundary would
/// glue two words into one no rule can match.
fn is_inline(name: &str) -> bool {
    const INLINE: &[&str] = &[
        "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn",
        "em", "font", "i", "ins", "kbd", "mark", "nobr", "q", "rp", "rt", "ruby", "s", "samp",
        "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
    ];
    INLINE
        .iter()
        .any(|inline| inline.eq_ignore_ascii_case(name))
}

/// What follows the raw text of a `script` or `style` element: everything
/// up to its end tag goes, the end tag itself is left to the caller.
fn skip_raw_text<'a>(s: &'a str, name: &str) -> &'a str {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find("</") {
        let at = from + i;
        let candidate = &bytes[at + 2..];
        if candidate.len() >= name.len()
            && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return &s[at..];
        }
        from = at + 2;
    }
    ""
}

/// Byte length of the tag at the start of `s`, up to its `>` outside quoted
/// attribute values (which may hold `>`), or all of `s` if it never closes.
/// A quote opens a value only right after `=`, as in HTML.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    let mut after_equals = false;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if after_equals => quote = Some(c),
            (None, '>') => return i + 1,
            _ => {}
        }
        if quote.is_none() && !c.is_whitespace() {
            after_equals = c == '=';
        }
    }
    s.len()
}

/// The text of the character reference at the start of `s` (`&amp;`,
/// `&eacute;`, `&#233;`, `&#xE9;`, legacy `&copy` without `;`…) and its
/// byte length; a lone `&` when there is none. HTML5's rules (§13.2.5.72):
/// numeric references to C1 controls mean windows-1252's characters, and
/// 0, surrogates and values beyond Unicode mean U+FFFD.
fn decode_reference(s: &str) -> (Cow<'static, str>, usize) {
    let body = &s[1..];
    if let Some(number) = body.strip_prefix('#') {
        let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (number, 10, 1),
        };
        let len = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        if len == 0 {
            return (Cow::Borrowed("&"), 1);
        }
        let code = if len > 8 {
            u32::MAX
        } else {
            u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX)
        };
        let c = match code {
            0x80..=0x9F => html5ever::data::C1_REPLACEMENTS[(code - 0x80) as usize]
                .unwrap_or_else(|| char::from_u32(code).unwrap_or('\u{FFFD}')),
            0 => '\u{FFFD}',
            _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
        };
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return (Cow::Owned(c.to_string()), 1 + prefix + len + semicolon);
    }
    // The longest name any entity has is 31 characters (`&CounterClockwise…`).
    let run = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len())
        .min(32);
    if run == 0 {
        return (Cow::Borrowed("&"), 1);
    }
    if body[run..].starts_with(';') {
        if let Some(text) = entity(&body[..=run]) {
            return (Cow::Owned(text), run + 2);
        }
    }
    // Legacy entities match without `;`, the longest that fits (`&copy2026`).
    for len in (1..=run.min(6)).rev() {
        if let Some(text) = entity(&body[..len]) {
            return (Cow::Owned(text), len + 1);
        }
    }
    (Cow::Borrowed("&"), 1)
}

/// The text of a named entity (`eacute;`, legacy `eacute`). The table also
/// holds every prefix of a name, as (0, 0), for a tokenizer's lookahead.
fn entity(name: &str) -> Option<String> {
    match *html5ever::data::NAMED_ENTITIES.get(name)? {
        (0, _) => None,
        (a, b) => Some(
            [a, b]
                .into_iter()
                .filter(|&c| c != 0)
                .filter_map(char::from_u32)
                .collect(),
        ),
    }
}

/// Where escaped text goes: element content or an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    Text,
    Attribute,
}

const TEXT_SPECIAL: [bool; 256] = special_bytes(false);
const ATTRIBUTE_SPECIAL: [bool; 256] = special_bytes(true);

/// Bytes [`escape_into`] must look at; every other byte is copied as is.
/// 0xEF leads U+FFFE and U+FFFF, which XML 1.0 (§2.2 `Char`) forbids.
const fn special_bytes(attribute: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        // Tab and newline are fine in text; in attributes they would be
        // normalized to spaces (XML 1.0 §3.3.3), so they get references.
        table[b] = attribute || (b != b'\t' as usize && b != b'\n' as usize);
        b += 1;
    }
    table[b'&' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'"' as usize] = attribute;
    table[b'\'' as usize] = attribute;
    table[0xEF] = true;
    table
}

/// `value` escaped for XML or HTML; see [`escape_into`].
pub fn escape(value: &str, context: Escape) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    escape_into(&mut out, value, context);
    out
}

/// Appends `value` escaped for `context`, in XML 1.0 and HTML alike,
/// dropping characters XML 1.0 cannot represent at all (C0 controls but
/// tab, LF, CR; U+FFFE; U+FFFF).
///
/// Quotes are escaped in attributes only: in text they are harmless, and
/// HTML content is full of them. `\r` becomes `&#13;` so parsers keep it
/// rather than folding it into a newline (XML 1.0 §2.11).
pub fn escape_into(out: &mut String, value: &str, context: Escape) {
    let special = match context {
        Escape::Text => &TEXT_SPECIAL,
        Escape::Attribute => &ATTRIBUTE_SPECIAL,
    };
    let bytes = value.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !special[usize::from(b)] {
            i += 1;
            continue;
        }
        let (replacement, len) = match b {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' => ("&quot;", 1),
            b'\'' => ("&apos;", 1),
            b'\t' => ("&#9;", 1),
            b'\n' => ("&#10;", 1),
            b'\r' => ("&#13;", 1),
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                ("", 3)
            }
            0xEF => {
                i += 1;
                continue;
            }
            _ => ("", 1), // any other C0 control
        };
        // Every special byte is ASCII or a UTF-8 lead byte, so these slice
        // boundaries are char boundaries.
        out.push_str(&value[copied..i]);
        out.push_str(replacement);
        i += len;
        copied = i;
    }
    out.push_str(&value[copied..]);
}

/// A language as filters hold it: a tag, lowercase, so `fr` matches an
/// article in `fr` or `fr-CA` (`model::Filter::languages`).
pub fn language_key(raw: &str) -> Option<String> {
    language_tag(raw).map(|tag| tag.to_ascii_lowercase())
}

/// Longest language tag kept: BCP 47's longest registered forms are under this.
const MAX_LANGUAGE_TAG_BYTES: usize = 35;

/// A stated language tag in one spelling (`en_US`, `EN-us` -> `en-US`), or
/// `None` when it is not a tag at all (`English`, `x`, free text).
pub fn language_tag(tag: &str) -> Option<String> {
    let tag = tag.trim();
    if tag.is_empty() || tag.len() > MAX_LANGUAGE_TAG_BYTES {
        return None;
    }
    let mut out = String::with_capacity(tag.len());
    for (i, part) in tag.split(['-', '_']).enumerate() {
        let ascii_alnum =
            !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ascii_alnum {
            return None;
        }
        if i == 0 {
            // The primary subtag: two or three letters (ISO 639).
            if !(2..=3).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_alphabetic()) {
                return None;
            }
            out.push_str(&part.to_ascii_lowercase());
            continue;
        }
        out.push('-');
        // BCP 47's conventional case: regions upper, scripts title, the rest lower.
        match part.len() {
            2 if part.bytes().all(|b| b.is_ascii_alphabetic()) => {
                out.push_str(&part.to_ascii_uppercase())
            }
            4 if part.bytes().all(|b| b.is_ascii_alphabetic()) => {
                out.push_str(&part[..1].to_ascii_uppercase());
                out.push_str(&part[1..].to_ascii_lowercase());
            }
            _ => out.push_str(&part.to_ascii_lowercase()),
        }
    }
    Some(out)
}

/// A path segment as written into links: everything but RFC 3986's
/// unreserved characters and the sub-delimiters safe in a segment is
/// percent-encoded (UTF-8), so that `/`, `#`, `?`, `%`, spaces and
/// non-ASCII in a tag survive the round trip through `/tags/{file}`.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stated_tags_get_one_spelling_and_non_tags_are_refused() {
        assert_eq!(language_tag("en_US").as_deref(), Some("en-US"));
        assert_eq!(language_tag(" FR-fr ").as_deref(), Some("fr-FR"));
        assert_eq!(language_tag("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(language_tag("es-419").as_deref(), Some("es-419"));
        for bad in [
            "",
            "English",
            "e",
            "en--us",
            "en US",
            "fr-<b>",
            "x-klingon-",
            "12",
        ] {
            assert_eq!(language_tag(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn term_folds_case_and_separators() {
        let cases = [
            ("XI JINPING", "xi-jinping"),
            ("Xi Jinping", "xi-jinping"),
            ("xi-jinping", "xi-jinping"),
            ("xi_jinping", "xi-jinping"),
            ("  Wang  Yi ", "wang-yi"),
            ("a - b", "a-b"),
            ("--x--", "x"),
            ("Élection", "élection"),
            ("ÉLECTION", "élection"),
            ("", ""),
            (" _-_ ", ""),
        ];
        for (label, expected) in cases {
            assert_eq!(term(label), expected, "term({label:?})");
        }
    }

    #[test]
    fn fold_drops_diacritics_and_case() {
        let cases = [
            ("Élection", "election"),
            ("ÉLECTION", "election"),
            // Already decomposed input folds the same.
            ("E\u{301}lection", "election"),
            ("Zelensky", "zelensky"),
            ("Зеленский", "зеленскии"),
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
            ("Οδυσσεύς", "οδυσσευσ"),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(fold(text), expected, "fold({text:?})");
        }
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
    fn html_becomes_plain_text() {
        let cases = [
            ("<p>One</p><p>Two &amp; three</p>", "One Two & three"),
            ("a&nbsp;b &lt;tag&gt;", "a b <tag>"),
            ("<script>x()</script>  Hello\n\n world ", "Hello world"),
            ("<STYLE>p { x: '</p>' }</STYLE>b", "b"),
            ("<script>if (a </b) {}</script>ok", "ok"),
            ("caf&eacute; &#8217;s", "café ’s"),
            ("AT&amp;T &lt;3 caf&#233; caf&#xE9;", "AT&T <3 café café"),
            (
                "&copy2026 &notin; &NotEqualTilde;",
                "©2026 ∉ \u{2242}\u{338}",
            ),
            (
                "&#150; &#0; &#xD800; &#x110000; &#65",
                "– \u{FFFD} \u{FFFD} \u{FFFD} A",
            ),
            ("1 < 2 & 3 > 2", "1 < 2 & 3 > 2"),
            ("&bogus; &#xZZ; &#; &", "&bogus; &#xZZ; &#; &"),
            ("a&#0;b", "a\u{FFFD}b"),
            ("a&#1;b", "ab"),
            ("AT&T x&Tab;y &bo &amp1", "AT&T x y &bo &1"),
            ("a\r\n b\u{0}c", "a bc"),
            ("", ""),
        ];
        for (html, expected) in cases {
            assert_eq!(html_to_text(html), expected, "html_to_text({html:?})");
        }
    }

    #[test]
    fn every_element_but_inline_formatting_separates_words() {
        let cases = [
            ("<p>China</p>", "China"),
            ("<p>a</p><p>b</p>", "a b"),
            ("a<br/>b<br>c<hr>d", "a b c d"),
            ("<li>a</li><li>b</li>", "a b"),
            (
                "<aside>a</aside><main>b</main><x-custom>c</x-custom>",
                "a b c",
            ),
            ("a<img src=x>b", "a b"),
            (r#"<a title="x > y" href='/z'>link</a>"#, "link"),
            ("on <b>Russia</b>, <B>K</B>yiv", "on Russia, Kyiv"),
            ("<span class=x>a</span><em>b</em>", "ab"),
            ("super<wbr>cali", "supercali"),
            // A quote opens a value only after `=`.
            ("<p class=it's>a</p>b", "a b"),
            ("x<!-- <p>hidden</p> -->y", "x y"),
            ("x<!-->y<!--->z", "x y z"),
            ("<p>unclosed", "unclosed"),
            ("text <b", "text"),
        ];
        for (html, expected) in cases {
            assert_eq!(html_to_text(html), expected, "html_to_text({html:?})");
        }
    }

    #[test]
    fn escape_handles_markup_quotes_and_illegal_characters() {
        use Escape::{Attribute, Text};
        let cases = [
            ("plain", Text, "plain"),
            ("a & b < c > d", Text, "a &amp; b &lt; c &gt; d"),
            (r#"say "hi" it's"#, Text, r#"say "hi" it's"#),
            (
                r#"say "hi" it's"#,
                Attribute,
                "say &quot;hi&quot; it&apos;s",
            ),
            ("tab\tline\nret\r", Text, "tab\tline\nret&#13;"),
            ("tab\tline\nret\r", Attribute, "tab&#9;line&#10;ret&#13;"),
            ("bell\u{7}nul\u{0}esc\u{1b}", Text, "bellnulesc"),
            ("x\u{FFFE}y\u{FFFF}z", Attribute, "xyz"),
            // Other characters led by 0xEF stay.
            ("\u{F000}\u{FFFD}\u{FF01}", Text, "\u{F000}\u{FFFD}\u{FF01}"),
            ("Café 北京 ]]>", Text, "Café 北京 ]]&gt;"),
            ("", Text, ""),
        ];
        for (input, context, expected) in cases {
            assert_eq!(escape(input, context), expected, "input {input:?}");
        }
    }
}
