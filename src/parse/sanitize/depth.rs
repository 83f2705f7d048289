//! Bounding how deep HTML nests before the HTML parser sees it.
//!
//! html5ever's tree builder walks its stack of open elements for most
//! tags (scope checks, implied end tags), so a fragment nesting `n`
//! elements costs O(n²): 100,000 nested `<div>`s took a minute. One linear
//! pass here estimates the depth the tree builder would reach, mirroring
//! the rules that close elements (matching end tags, `<p>` closed by a
//! block, `<li>` by the next `<li>`, table rows and cells), and drops the
//! tags of elements that would open below `max_depth`. Their text stays:
//! the content is flattened, not lost. The estimate errs high (elements
//! the tree builder would close some other way count as still open), never
//! low, so the tree builder never holds more than `max_depth` elements
//! from this fragment.

use std::borrow::Cow;

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is text up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "plaintext",
];

/// Elements the tree builder does not open inside a fragment.
const IGNORED: &[&str] = &["html", "head", "body", "frameset"];

/// Elements a start tag may close implicitly (see `implied_ends`), and
/// `table`, outside of which table parts are ignored.
const CLOSABLE: &[&str] = &[
    "p", "li", "dd", "dt", "tr", "td", "th", "tbody", "thead", "tfoot", "a", "nobr", "button",
    "table",
];

/// Parts of a table: the tree builder ignores them outside one.
const TABLE_PARTS: &[&str] = &[
    "caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th",
];

/// Formatting elements: closed implicitly, the tree builder reopens them
/// (up to the next text or tag) until their own end tag is seen.
const FORMATTING: &[&str] = &[
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u",
];

/// Scope boundaries (the spec's "has an element in scope").
const SCOPE: &[&str] = &[
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "svg",
    "math",
];

/// Start tags that close an open `<p>` (in button scope).
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "hgroup",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "search",
    "section",
    "summary",
    "ul",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "listing",
    "form",
    "dd",
    "dt",
    "li",
    "table",
    "hr",
    "xmp",
    "plaintext",
];

/// The spec's "special" elements: an end tag for an ordinary element stops
/// looking for its match at one of these.
const SPECIAL: &[&str] = &[
    "address",
    "applet",
    "area",
    "article",
    "aside",
    "base",
    "basefont",
    "bgsound",
    "blockquote",
    "body",
    "br",
    "button",
    "caption",
    "center",
    "col",
    "colgroup",
    "dd",
    "details",
    "dir",
    "div",
    "dl",
    "dt",
    "embed",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "frame",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "iframe",
    "img",
    "input",
    "keygen",
    "li",
    "link",
    "listing",
    "main",
    "marquee",
    "menu",
    "meta",
    "nav",
    "noembed",
    "noframes",
    "noscript",
    "object",
    "ol",
    "p",
    "param",
    "plaintext",
    "pre",
    "script",
    "search",
    "section",
    "select",
    "source",
    "style",
    "summary",
    "table",
    "tbody",
    "td",
    "template",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "track",
    "ul",
    "wbr",
    "xmp",
];

/// `html` with the tags of elements nested deeper than `max_depth`
/// removed (see the module docs); borrowed when nothing nests that deep.
pub(crate) fn flatten_deep(html: &str, max_depth: usize) -> Cow<'_, str> {
    // Fewer tags than the limit cannot nest past it.
    if html.bytes().filter(|&b| b == b'<').count() <= max_depth {
        return Cow::Borrowed(html);
    }
    let lower = html.to_ascii_lowercase();
    let mut scan = Scan {
        lower: lower.as_bytes(),
        stack: Vec::new(),
        excess: 0,
        foreign: 0,
        open: [0; CLOSABLE.len()],
        active: [0; FORMATTING.len()],
        on_stack: [0; FORMATTING.len()],
        max_depth,
    };
    // Byte ranges of `html` to leave out.
    let mut drop: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while let Some(offset) = lower[at..].find('<') {
        let start = at + offset;
        let (end, keep) = scan.markup(start);
        if !keep {
            drop.push((start, end));
        }
        at = end.max(start + 1);
    }
    if drop.is_empty() {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut from = 0;
    for (start, end) in drop {
        out.push_str(&html[from..start]);
        from = end;
    }
    out.push_str(&html[from..]);
    Cow::Owned(out)
}

struct Scan<'a> {
    /// The fragment, ASCII-lowercased (same byte offsets as the original).
    lower: &'a [u8],
    /// Elements taken to be open, innermost last; never longer than `max_depth`.
    stack: Vec<&'a str>,
    /// Elements opened below `max_depth` (their tags dropped) not yet closed.
    excess: usize,
    /// How many open elements are `<svg>` or `<math>`, where `/>` closes.
    foreign: usize,
    /// How many of each [`CLOSABLE`] element are open: most start tags
    /// look for one to close, and need not walk the stack when none is.
    open: [usize; CLOSABLE.len()],
    /// Formatting elements opened and not yet closed by their end tag, and
    /// how many of them are on `stack`: the others may be reopened.
    active: [usize; FORMATTING.len()],
    on_stack: [usize; FORMATTING.len()],
    max_depth: usize,
}

impl<'a> Scan<'a> {
    /// Reads the markup at `start` (a `<`): where it ends, and whether to
    /// keep it.
    fn markup(&mut self, start: usize) -> (usize, bool) {
        let rest = &self.lower[start..];
        if rest.starts_with(b"<!--") {
            // `<!-->` and `<!--->` are whole (empty) comments; `--!>` ends one too.
            let body = start + 2;
            let end = [find(self.lower, body, b"-->").map(|i| i + 3)]
                .into_iter()
                .chain([find(self.lower, body, b"--!>").map(|i| i + 4)])
                .flatten()
                .min()
                .unwrap_or(self.lower.len());
            return (end, true);
        }
        match rest.get(1) {
            Some(b'!' | b'?') => (self.to_gt(start + 1), true),
            Some(b'/') => match rest.get(2) {
                Some(c) if c.is_ascii_alphabetic() => self.end_tag(start),
                Some(_) => (self.to_gt(start + 2), true),
                None => (self.lower.len(), true),
            },
            Some(c) if c.is_ascii_alphabetic() => self.start_tag(start),
            // A `<` that starts no markup is text.
            _ => (start + 1, true),
        }
    }

    /// Just past the first `>` from `from` (the end of input if none).
    fn to_gt(&self, from: usize) -> usize {
        find(self.lower, from, b">").map_or(self.lower.len(), |i| i + 1)
    }

    /// A tag's name (from `from`) and where the tag ends: just past its
    /// `>`, skipping `>`s inside quoted attribute values. `None` when the
    /// input ends inside the tag (the tokenizer drops such a tag).
    fn tag(&self, from: usize) -> (&'a str, Option<usize>, bool) {
        let bytes = self.lower;
        let mut i = from;
        while i < bytes.len() && !matches!(bytes[i], b'\t' | b'\n' | b'\x0c' | b' ' | b'/' | b'>') {
            i += 1;
        }
        let name = std::str::from_utf8(&bytes[from..i]).unwrap_or("");
        while i < bytes.len() {
            match bytes[i] {
                b'>' => {
                    let self_closing = i > from && bytes[i - 1] == b'/';
                    return (name, Some(i + 1), self_closing);
                }
                b'=' => {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if let Some(&quote @ (b'"' | b'\'')) = bytes.get(i) {
                        match find(bytes, i + 1, &[quote]) {
                            Some(close) => i = close + 1,
                            None => return (name, None, false),
                        }
                        continue;
                    }
                }
                _ => i += 1,
            }
        }
        (name, None, false)
    }

    fn start_tag(&mut self, start: usize) -> (usize, bool) {
        let (name, end, self_closing) = self.tag(start + 1);
        let Some(end) = end else {
            return (self.lower.len(), true);
        };
        if RAW_TEXT.contains(&name) && self.foreign == 0 {
            // Its content is text up to `</name`: no tags to count.
            let close = if name == "plaintext" {
                self.lower.len()
            } else {
                self.raw_text_end(end, name)
            };
            // Below the limit the whole element goes, content too: a
            // script's text must not become visible text.
            return (close, self.depth() < self.max_depth);
        }
        let ignored =
            IGNORED.contains(&name) || (TABLE_PARTS.contains(&name) && !self.any_open(&["table"]));
        if VOID.contains(&name) || ignored || (self_closing && self.foreign > 0) {
            return (end, true);
        }
        self.implied_ends(name);
        if self.depth() >= self.max_depth {
            self.excess += 1;
            return (end, false);
        }
        if matches!(name, "svg" | "math") {
            self.foreign += 1;
        }
        if let Some(i) = CLOSABLE.iter().position(|c| *c == name) {
            self.open[i] += 1;
        }
        if let Some(i) = FORMATTING.iter().position(|c| *c == name) {
            self.active[i] += 1;
            self.on_stack[i] += 1;
        }
        self.stack.push(name);
        (end, true)
    }

    /// The depth the tree builder may reach: the open elements, and the
    /// formatting elements it may reopen.
    fn depth(&self) -> usize {
        let reopened: usize = self
            .active
            .iter()
            .zip(self.on_stack)
            .map(|(active, on_stack)| active.saturating_sub(on_stack))
            .sum();
        self.stack.len() + reopened
    }

    fn end_tag(&mut self, start: usize) -> (usize, bool) {
        let (name, end, _) = self.tag(start + 2);
        let Some(end) = end else {
            return (self.lower.len(), true);
        };
        if self.excess > 0 {
            self.excess -= 1;
            return (end, false);
        }
        if let Some(i) = FORMATTING.iter().position(|c| *c == name) {
            self.active[i] = self.active[i].saturating_sub(1);
        }
        // `</form>` takes the form out of the stack and leaves what it
        // holds open: counting it as still open errs high.
        if name == "form" {
            return (end, true);
        }
        // What stops the search for the element to close: the scope each
        // end tag is looked for in, or any special element for ordinary ones.
        let stops = |open: &str| match name {
            "table" => matches!(open, "html" | "template"),
            "tbody" | "thead" | "tfoot" | "tr" => matches!(open, "html" | "template" | "table"),
            "p" => SCOPE.contains(&open) || open == "button",
            "li" => SCOPE.contains(&open) || matches!(open, "ol" | "ul"),
            _ if SPECIAL.contains(&name) => SCOPE.contains(&open),
            _ => SPECIAL.contains(&open),
        };
        let found = self
            .stack
            .iter()
            .rposition(|&open| open == name)
            .filter(|&at| !self.stack[at + 1..].iter().any(|open| stops(open)));
        if let Some(at) = found {
            self.pop_to(at);
        }
        (end, true)
    }

    /// Elements a start tag `name` closes before it opens.
    fn implied_ends(&mut self, name: &str) {
        if CLOSES_P.contains(&name) {
            self.close_in_scope(&["p"], &["button"]);
        }
        match name {
            "li" => self.close_sibling(&["li"]),
            "dd" | "dt" => self.close_sibling(&["dd", "dt"]),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.pop_if_top(&["h1", "h2", "h3", "h4", "h5", "h6"]);
            }
            // A row or section start closes the open cell and row first.
            "tr" => {
                self.close_in_scope(&["td", "th"], &["tr", "tbody", "thead", "tfoot"]);
                self.close_in_scope(&["tr"], &["tbody", "thead", "tfoot"]);
            }
            "td" | "th" => self.close_in_scope(&["td", "th"], &["tr"]),
            "tbody" | "thead" | "tfoot" => {
                self.close_in_scope(&["td", "th"], &["tr", "tbody", "thead", "tfoot"]);
                self.close_in_scope(&["tr"], &["tbody", "thead", "tfoot"]);
                self.close_in_scope(&["tbody", "thead", "tfoot"], &[]);
            }
            "option" | "optgroup" => self.pop_if_top(&["option", "optgroup"]),
            // An open `a` or `nobr` is closed by the adoption agency, which
            // leaves the special elements inside it open.
            "a" | "nobr" => {
                if let Some(at) = self.stack.iter().rposition(|&open| open == name) {
                    if !self.stack[at + 1..]
                        .iter()
                        .any(|open| SPECIAL.contains(open))
                    {
                        self.pop_to(at);
                    }
                }
            }
            "button" => self.close_in_scope(&["button"], &[]),
            _ => {}
        }
    }

    /// Closes the current element if it is one of `names`.
    fn pop_if_top(&mut self, names: &[&str]) {
        if self.stack.last().is_some_and(|top| names.contains(top)) {
            self.pop_to(self.stack.len() - 1);
        }
    }

    /// Closes the innermost open element named in `names`, unless a scope
    /// boundary (or one of `also_stop`) comes first.
    fn close_in_scope(&mut self, names: &[&str], also_stop: &[&str]) {
        if !self.any_open(names) {
            return;
        }
        for at in (0..self.stack.len()).rev() {
            let open = self.stack[at];
            if names.contains(&open) {
                self.pop_to(at);
                return;
            }
            if SCOPE.contains(&open) || also_stop.contains(&open) {
                return;
            }
        }
    }

    /// `<li>`, `<dd>`, `<dt>`: closes an open one unless a special element
    /// other than address, div and p comes first.
    fn close_sibling(&mut self, names: &[&str]) {
        if !self.any_open(names) {
            return;
        }
        for at in (0..self.stack.len()).rev() {
            let open = self.stack[at];
            if names.contains(&open) {
                self.pop_to(at);
                return;
            }
            if SPECIAL.contains(&open) && !matches!(open, "address" | "div" | "p") {
                return;
            }
        }
    }

    /// Closes the element at `at` and everything inside it.
    fn pop_to(&mut self, at: usize) {
        for open in self.stack.drain(at..) {
            if matches!(open, "svg" | "math") {
                self.foreign -= 1;
            }
            if let Some(i) = CLOSABLE.iter().position(|c| *c == open) {
                self.open[i] -= 1;
            }
            if let Some(i) = FORMATTING.iter().position(|c| *c == open) {
                self.on_stack[i] -= 1;
            }
        }
    }

    /// Whether an element named in `names` (all [`CLOSABLE`]) is open.
    fn any_open(&self, names: &[&str]) -> bool {
        CLOSABLE
            .iter()
            .zip(self.open)
            .any(|(name, open)| open > 0 && names.contains(name))
    }

    /// Just past the end tag closing a raw text element (the end of input
    /// if none).
    fn raw_text_end(&self, from: usize, name: &str) -> usize {
        let mut at = from;
        while let Some(i) = find(self.lower, at, b"</") {
            let after = i + 2 + name.len();
            if self.lower[i + 2..].starts_with(name.as_bytes())
                && self
                    .lower
                    .get(after)
                    .is_none_or(|c| matches!(c, b'\t' | b'\n' | b'\x0c' | b' ' | b'/' | b'>'))
            {
                return self.to_gt(after);
            }
            at = i + 2;
        }
        self.lower.len()
    }
}

/// The first occurrence of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_html_is_left_alone() {
        let html = "<p>a<p>b<ul><li>x<li>y</ul><table><tr><td>1<td>2<tr><td>3</table>".repeat(100);
        assert!(matches!(flatten_deep(&html, 8), Cow::Borrowed(_)));
        let html = "<div><span>x</span></div><br><img src=a>".repeat(100);
        assert!(matches!(flatten_deep(&html, 4), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_flattened_keeping_text() {
        let html = format!("{}text{}", "<div>".repeat(10), "</div>".repeat(10));
        assert_eq!(
            flatten_deep(&html, 3),
            "<div><div><div>text</div></div></div>"
        );
        // Unclosed formatting elements nest too.
        let html = "<b>x".repeat(10);
        assert_eq!(flatten_deep(&html, 2), format!("<b>x<b>{}", "x".repeat(9)));
        // `<div/>` is an open div in HTML.
        let html = "<div/>".repeat(10);
        assert_eq!(flatten_deep(&html, 2), "<div/><div/>");
    }

    #[test]
    fn markup_that_holds_no_tags_is_not_counted() {
        let html = format!(
            "<div><script>{}</script><!-- {} --><p title=\"<div>\">t</p></div>",
            "<div>".repeat(20),
            "<div>".repeat(20)
        );
        assert!(matches!(flatten_deep(&html, 3), Cow::Borrowed(_)));
        // A script below the limit goes with its text.
        let html = format!("{}<script>x</script>y", "<i>".repeat(10));
        assert_eq!(flatten_deep(&html, 2), "<i><i>y");
    }

    #[test]
    fn end_tags_that_the_parser_ignores_close_nothing() {
        // `</span>` does not close a span with a div open inside it.
        let html = "<span><div></span>".repeat(10);
        assert_eq!(
            flatten_deep(&html, 4),
            "<span><div></span><span><div></span>"
        );
    }
}
