//! Feed bytes -> UTF-8 text. The charset comes from the byte order mark,
//! then the HTTP `charset`, then the XML declaration, else UTF-8 with a
//! windows-1252 fallback (what Latin-1 feeds without a declaration need).
//! UTF-16 and UTF-32 are transcoded here, before feed-rs sees them (feed-rs
//! 3.0 panics on UTF-16BE), and the declaration's `encoding` is removed so
//! nothing downstream decodes the text a second time.

use std::sync::OnceLock;

use encoding_rs::{Encoding, REPLACEMENT, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};
use regex::bytes::Regex as BytesRegex;
use regex::Regex;

/// The decoded document and the charset it was read as (for logs and tests).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    pub charset: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wide {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

/// Decodes `bytes` to UTF-8. `content_type` is the HTTP header, if any.
pub(crate) fn decode(bytes: &[u8], content_type: Option<&str>) -> Decoded {
    if let Some((wide, bom_len)) = wide_bom(bytes) {
        return finish(decode_wide(&bytes[bom_len..], wide), wide_name(wide));
    }
    // A byte order mark outranks any label (the HTML and XML specs agree).
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return finish(String::from_utf8_lossy(rest).into_owned(), "UTF-8");
    }
    if let Some(wide) = sniff_wide(bytes) {
        return finish(decode_wide(bytes, wide), wide_name(wide));
    }

    let http = content_type
        .and_then(charset_param)
        .and_then(ascii_compatible);
    let declared = declared_encoding(bytes).and_then(ascii_compatible);
    let utf8 = std::str::from_utf8(bytes).ok();
    let utf8_ok = utf8.is_some();

    // A server that labels everything ISO-8859-1 while the document declares
    // and is valid UTF-8 is a misconfiguration; trusting the header there
    // would turn every accent into mojibake.
    let http = match (http, declared) {
        (Some(h), Some(d)) if h == WINDOWS_1252 && d == UTF_8 && utf8_ok => None,
        _ => http,
    };

    // Bytes that are valid UTF-8 with non-ASCII in them are UTF-8 whatever
    // the label says: legacy text is valid UTF-8 only by a rare accident,
    // while a template declaring ISO-8859-1 over UTF-8 content is common
    // (and decoding it as labelled gives "verÃ¶ffentlicht").
    let utf8_despite_label = utf8.filter(|text| !text.is_ascii());
    if let Some(text) = utf8_despite_label {
        return finish(text.to_owned(), "UTF-8");
    }

    for enc in [http, declared].into_iter().flatten() {
        if enc == UTF_8 {
            if let Some(text) = utf8 {
                return finish(text.to_owned(), "UTF-8");
            }
            continue;
        }
        if let Some(text) = enc.decode_without_bom_handling_and_without_replacement(bytes) {
            return finish(text.into_owned(), enc.name());
        }
    }
    if let Some(text) = utf8 {
        return finish(text.to_owned(), "UTF-8");
    }
    // A declared legacy charset with a few bad bytes still beats a guess.
    if let Some(enc) = [http, declared].into_iter().flatten().find(|e| *e != UTF_8) {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return finish(text.into_owned(), enc.name());
    }
    let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
    finish(text.into_owned(), WINDOWS_1252.name())
}

fn finish(text: String, charset: &'static str) -> Decoded {
    let text = match super::sanitize::demoronize(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(fixed) => fixed,
    };
    Decoded {
        text: drop_declared_encoding(text),
        charset,
    }
}

fn wide_name(wide: Wide) -> &'static str {
    match wide {
        Wide::Utf16Le => "UTF-16LE",
        Wide::Utf16Be => "UTF-16BE",
        Wide::Utf32Le => "UTF-32LE",
        Wide::Utf32Be => "UTF-32BE",
    }
}

/// A UTF-16/32 byte order mark and its length. UTF-32LE's mark starts like
/// UTF-16LE's, so it is checked first.
fn wide_bom(bytes: &[u8]) -> Option<(Wide, usize)> {
    match bytes {
        [0xFF, 0xFE, 0, 0, ..] => Some((Wide::Utf32Le, 4)),
        [0, 0, 0xFE, 0xFF, ..] => Some((Wide::Utf32Be, 4)),
        [0xFF, 0xFE, ..] => Some((Wide::Utf16Le, 2)),
        [0xFE, 0xFF, ..] => Some((Wide::Utf16Be, 2)),
        _ => None,
    }
}

/// XML 1.0 Appendix F: without a BOM, the zero bytes around the first ASCII
/// character (`<` or whitespace) give UTF-16/32 away.
fn sniff_wide(bytes: &[u8]) -> Option<Wide> {
    match bytes {
        [0, 0, 0, c, ..] if *c != 0 => Some(Wide::Utf32Be),
        [c, 0, 0, 0, ..] if *c != 0 => Some(Wide::Utf32Le),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => Some(Wide::Utf16Be),
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Some(Wide::Utf16Le),
        _ => None,
    }
}

fn decode_wide(bytes: &[u8], wide: Wide) -> String {
    match wide {
        Wide::Utf16Le => UTF_16LE.decode_without_bom_handling(bytes).0.into_owned(),
        Wide::Utf16Be => UTF_16BE.decode_without_bom_handling(bytes).0.into_owned(),
        // encoding_rs has no UTF-32 (the web never needed it): decode by hand.
        Wide::Utf32Le | Wide::Utf32Be => bytes
            .chunks(4)
            .map(|chunk| {
                let mut quad = [0u8; 4];
                quad[..chunk.len()].copy_from_slice(chunk);
                let n = if wide == Wide::Utf32Le {
                    u32::from_le_bytes(quad)
                } else {
                    u32::from_be_bytes(quad)
                };
                char::from_u32(n).unwrap_or('\u{FFFD}')
            })
            .collect(),
    }
}

/// Only encodings that keep ASCII bytes as ASCII can describe a document we
/// already know is not UTF-16/32; a `charset=utf-16` on such bytes is wrong.
fn ascii_compatible(enc: &'static Encoding) -> Option<&'static Encoding> {
    (enc != REPLACEMENT && enc.is_ascii_compatible()).then_some(enc)
}

/// The `charset` parameter of a Content-Type header.
fn charset_param(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        Encoding::for_label(value.as_bytes())
    })
}

/// The `encoding` of the XML declaration, read from the raw bytes (at this
/// point they are known to be ASCII-compatible).
fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    static DECL: OnceLock<BytesRegex> = OnceLock::new();
    let decl = DECL.get_or_init(|| {
        BytesRegex::new(r#"^\s*<\?xml\s[^>]*?encoding\s*=\s*["']\s*([A-Za-z0-9._:\-]+)\s*["']"#)
            .expect("static regex")
    });
    let head = &bytes[..bytes.len().min(1024)];
    let label = decl.captures(head)?.get(1)?.as_bytes();
    Encoding::for_label(label)
}

/// Removes the `encoding` pseudo-attribute from a leading XML declaration:
/// the text is UTF-8 now, whatever the declaration said.
fn drop_declared_encoding(text: String) -> String {
    static DECL: OnceLock<Regex> = OnceLock::new();
    let decl = DECL.get_or_init(|| {
        Regex::new(r#"^(\s*<\?xml\s[^>]*?)\s+encoding\s*=\s*("[^"]*"|'[^']*')"#)
            .expect("static regex")
    });
    match decl.replace(&text, "$1") {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    fn utf16be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
    }

    fn utf32be(s: &str) -> Vec<u8> {
        s.chars().flat_map(|c| (c as u32).to_be_bytes()).collect()
    }

    /// One decoding case: what arrives, and what must come out.
    struct Case {
        name: &'static str,
        bytes: Vec<u8>,
        content_type: Option<&'static str>,
        charset: &'static str,
        tail: &'static str,
    }

    #[test]
    fn picks_the_charset_in_priority_order() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss>é</rss>";
        let latin1_decl: &[u8] = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss>\xE9</rss>";
        let case = |name, bytes: Vec<u8>, content_type, charset, tail| Case {
            name,
            bytes,
            content_type,
            charset,
            tail,
        };
        let cases = [
            case(
                "UTF-16LE BOM",
                [&[0xFF, 0xFE][..], &utf16le(doc)].concat(),
                None,
                "UTF-16LE",
                "<rss>é</rss>",
            ),
            case(
                "UTF-16BE without BOM",
                utf16be(doc),
                Some("text/xml; charset=iso-8859-1"),
                "UTF-16BE",
                "<rss>é</rss>",
            ),
            case(
                "UTF-32BE without BOM",
                utf32be(doc),
                None,
                "UTF-32BE",
                "<rss>é</rss>",
            ),
            case(
                "HTTP charset beats the declaration",
                b"<?xml version=\"1.0\" encoding=\"utf-8\"?><rss>\xE9</rss>".to_vec(),
                Some("application/rss+xml; charset=\"windows-1252\""),
                "windows-1252",
                "<rss>é</rss>",
            ),
            case(
                "declaration",
                latin1_decl.to_vec(),
                None,
                "windows-1252",
                "<rss>é</rss>",
            ),
            case(
                "declaration when HTTP says UTF-8 but bytes are not",
                latin1_decl.to_vec(),
                Some("text/xml; charset=utf-8"),
                "windows-1252",
                "<rss>é</rss>",
            ),
            case(
                "Latin-1 without declaration",
                b"<rss>\xE9</rss>".to_vec(),
                None,
                "windows-1252",
                "<rss>é</rss>",
            ),
            case(
                "UTF-8 BOM beats the labels",
                "\u{FEFF}<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><rss>é</rss>"
                    .as_bytes()
                    .to_vec(),
                Some("text/xml; charset=windows-1252"),
                "UTF-8",
                "<rss>é</rss>",
            ),
            case(
                "GB2312",
                b"<?xml version='1.0' encoding='gb2312'?><rss>\xD6\xD0</rss>".to_vec(),
                None,
                "GBK",
                "<rss>中</rss>",
            ),
            case(
                "UTF-8 document behind an ISO-8859-1 header",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss>é</rss>"
                    .as_bytes()
                    .to_vec(),
                Some("text/xml; charset=ISO-8859-1"),
                "UTF-8",
                "<rss>é</rss>",
            ),
            case(
                "UTF-8 bytes behind an ISO-8859-1 declaration",
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss>veröffentlicht</rss>"
                    .as_bytes()
                    .to_vec(),
                None,
                "UTF-8",
                "<rss>veröffentlicht</rss>",
            ),
            case(
                "UTF-8 bytes behind ISO-8859-1 in both labels",
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss>veröffentlicht</rss>"
                    .as_bytes()
                    .to_vec(),
                Some("text/xml; charset=ISO-8859-1"),
                "UTF-8",
                "<rss>veröffentlicht</rss>",
            ),
            case(
                "UTF-8 carrying windows-1252 quotes as C1 controls",
                "<rss>don\u{92}t</rss>".as_bytes().to_vec(),
                None,
                "UTF-8",
                "<rss>don’t</rss>",
            ),
        ];
        for c in cases {
            let decoded = decode(&c.bytes, c.content_type);
            assert_eq!(decoded.charset, c.charset, "{}", c.name);
            assert!(
                decoded.text.ends_with(c.tail),
                "{}: {:?}",
                c.name,
                decoded.text
            );
            assert!(
                !decoded.text.contains("encoding="),
                "{}: {:?}",
                c.name,
                decoded.text
            );
        }
    }

    #[test]
    fn unknown_labels_are_ignored() {
        let decoded = decode(
            b"<?xml version=\"1.0\" encoding=\"bogus\"?><rss/>",
            Some("text/xml; charset=nonsense"),
        );
        assert_eq!(decoded.charset, "UTF-8");
        assert_eq!(decoded.text, "<?xml version=\"1.0\"?><rss/>");
    }
}
