//! How much of a feed tributary keeps: the caps on what one document may
//! expand to and on every stored field. In one place so tests and fuzz
//! targets can check output against them.
//!
//! The field caps are far above what real feeds send (the largest fields of
//! the shared fixture corpus, 437 files: title 282 bytes, author 242,
//! summary 7.7 KB, body 99 KB, 14 categories; none is cut) and far below
//! what would make one article cost a reader or the database anything
//! noticeable. Lengths are in bytes of UTF-8; cuts fall on
//! character boundaries (text) or element boundaries (HTML).

/// A feed's or an entry's title. 2 KiB is some 300 to 2,000 characters:
/// a paragraph, not a headline, and every title ever seen fits.
pub const MAX_TITLE_BYTES: usize = 2 * 1024;

/// An entry's author (a name or an e-mail address).
pub const MAX_AUTHOR_BYTES: usize = 512;

/// An entry's summary, plain text: a teaser, or a whole article sent as the
/// description by feeds that have no separate body.
pub const MAX_SUMMARY_BYTES: usize = 64 * 1024;

/// An entry's sanitized HTML body. 1 MiB is a long book chapter; the whole
/// body of a feed is capped by `[daemon] max_body` anyway.
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;

/// One category label; longer ones are sentences, not tags.
pub const MAX_CATEGORY_BYTES: usize = 256;

/// An entry's or a feed's id (RSS `guid`, Atom `id`). Cut, not dropped:
/// the cut is the same on every fetch, so the entry keeps its identity.
pub const MAX_ID_BYTES: usize = 2 * 1024;

/// An entry's link or a feed's site URL. Browsers and servers commonly
/// stop at 8 KiB; a longer "URL" is dropped (a cut one would lead nowhere),
/// and the entry is known by its id or title instead.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Categories kept per entry.
pub const MAX_CATEGORIES: usize = 64;

/// HTML elements nested deeper than this are flattened before sanitizing:
/// their tags go, their text stays. The HTML tree builder checks its stack
/// of open elements for every tag, so unbounded nesting costs quadratic
/// time (100,000 nested `<div>`s took a minute of CPU). Chromium's parser
/// flattens at 512; real articles nest a few dozen deep.
pub const MAX_HTML_DEPTH: usize = 256;

/// Bytes that expanding `<!ENTITY>` references may add to a document, at
/// least: see [`entity_expansion_budget`].
pub const MIN_ENTITY_EXPANSION: usize = 1024 * 1024;

/// How many bytes the expansion of internal entity references may add to a
/// document of `document_bytes`: as many as the document has, and at least
/// [`MIN_ENTITY_EXPANSION`]. Like libxml2's amplification check (which
/// allows 1 MB, then 5x), this lets feeds use entities as shorthands and
/// stops a "billion laughs" variant, where a small document names one large
/// entity thousands of times, at twice its size plus 1 MiB. A document over
/// budget fails to parse, naming the cause.
pub fn entity_expansion_budget(document_bytes: usize) -> usize {
    document_bytes.max(MIN_ENTITY_EXPANSION)
}

/// `s` cut to at most `max` bytes on a character boundary; `None` when it
/// already fits.
pub(crate) fn cut_text(s: &str, max: usize) -> Option<&str> {
    if s.len() <= max {
        return None;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(&s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        assert_eq!(cut_text("abc", 3), None);
        assert_eq!(cut_text("abcd", 3), Some("abc"));
        // "é" is two bytes: a cut through it keeps neither half.
        assert_eq!(cut_text("aéb", 2), Some("a"));
        assert_eq!(entity_expansion_budget(10), MIN_ENTITY_EXPANSION);
        assert_eq!(entity_expansion_budget(5 << 20), 5 << 20);
    }
}
