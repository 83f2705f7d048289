//! Pre-processing between decoding and feed-rs. The document is read once
//! with quick-xml and copied through verbatim except where real feeds need
//! mending:
//! - everything before the root element goes (declarations, bogus `<?phpxml`
//!   processing instructions, doctypes, blank lines), and so does anything
//!   after it;
//! - bare `&` becomes `&amp;`, and references to entities the doctype
//!   declares are replaced by their text (quick-xml does not expand them);
//! - `<rss>` without a version feed-rs accepts gets `version="2.0"`;
//! - non-standard namespaces are mapped to the ones feed-rs knows (a default
//!   `xmlns` from backend.userland.com is dropped, Atom 0.3 becomes Atom 1.0
//!   with its renamed elements, RSS 0.90 becomes RSS 1.0);
//! - Atom text `type`s feed-rs rejects (`text/plain`, `application/xhtml+xml`,
//!   empty) are normalized; unusable `xml:base` values are dropped;
//! - RSS 1.0 items without `<link>` (which feed-rs drops) get their
//!   `rdf:about`, or a placeholder we later ignore;
//! - RSS bodies holding raw HTML elements become one CDATA section (feed-rs
//!   would keep only their text), `xhtml:body` and `fullitem` become
//!   `content:encoded`, RSS 2.0 elements in a prefixed namespace lose the
//!   prefix and a `pubdate` in the wrong case is `pubDate`;
//! - text feed-rs 3.0 would panic on is made safe for it (see
//!   [`GuardedText`]): an e-mail address next to a multi-byte character in
//!   a person element, an iTunes or Media RSS time it cannot read.
//!
//! Along the way it records, per entry in document order, what feed-rs does
//! not report: `dc:subject`, the effective `xml:base`, `guid@isPermaLink`,
//! and the authors, categories, titles, links and dates of elements it does
//! not read. A document that breaks off after complete entries is also
//! returned cut after the last of them and closed (`Prepared::salvaged`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use regex::Regex;
use url::Url;

use super::sanitize::is_xml_illegal;

const ATOM: &str = "http://www.w3.org/2005/Atom";
const ATOM_03: &str = "http://purl.org/atom/ns#";
const RSS_10: &str = "http://purl.org/rss/1.0/";
const RSS_090: &str = "http://my.netscape.com/rdf/simple/0.9/";
const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DC_11: &str = "http://purl.org/dc/elements/1.1/";
const ITUNES: &str = "http://www.itunes.com/dtds/podcast-1.0.dtd";
const CONTENT: &str = "http://purl.org/rss/1.0/modules/content/";
const XHTML: &str = "http://www.w3.org/1999/xhtml";

/// The link given to RSS 1.0 items that have none, so feed-rs keeps them;
/// not http(s), so it never becomes an entry's link.
const PLACEHOLDER_LINK: &str = "about:blank";

/// What the root element says the document is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Root {
    Rss,
    Rdf,
    Atom,
    AtomEntry,
    Html,
    Other(String),
    /// No element at all.
    Missing,
}

impl Root {
    pub(crate) fn is_feed(&self) -> bool {
        matches!(self, Root::Rss | Root::Rdf | Root::Atom | Root::AtomEntry)
    }

    /// How deep its entries are: `<rss><channel><item>`, `<feed><entry>`.
    fn item_depth(&self) -> usize {
        match self {
            Root::Rss => 3,
            Root::Rdf | Root::Atom => 2,
            Root::AtomEntry => 1,
            _ => 0,
        }
    }

    fn is_rss_like(&self) -> bool {
        matches!(self, Root::Rss | Root::Rdf)
    }
}

/// What feed-rs will not tell us about one entry.
#[derive(Debug, Default, Clone)]
pub(crate) struct ItemExtras {
    /// Effective `xml:base` at the entry (the feed URL when none is given).
    pub base: Option<Url>,
    /// Effective `xml:base` at its content (`atom:content`, `content:encoded`).
    pub content_base: Option<Url>,
    /// Effective `xml:base` at its summary (`atom:summary`, `description`).
    pub summary_base: Option<Url>,
    /// Categories feed-rs misses (`dc:subject`, wrapped `<category>`s),
    /// trimmed, in order.
    pub subjects: Vec<String>,
    /// RSS `guid@isPermaLink`, when the guid has the attribute.
    pub guid_is_permalink: Option<bool>,
    /// Authors feed-rs misses, in order of preference: the `<name>` of an
    /// RSS `<author>` written as a structure, then `itunes:author`.
    pub author_name: Option<String>,
    pub itunes_author: Option<String>,
    /// An Atom `<link>` with its URL as text instead of `href`, and whether
    /// it is an alternate (preferred) one.
    pub link_text: Option<(bool, String)>,
    /// `media:title` and `media:description` (or iTunes' `title`), for an
    /// entry without a title or summary of its own.
    pub media_title: Option<String>,
    pub media_description: Option<String>,
    /// A Dublin Core terms date, for an entry without a date feed-rs reads.
    pub dcterms_date: Option<String>,
    /// The entry element's `xml:lang`, else its `dc:language` (feed-rs
    /// reads `xml:lang` only on Atom's `<content>`).
    pub language: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Prepared {
    pub xml: String,
    pub root: Root,
    /// One per entry feed-rs will see, in document order.
    pub items: Vec<ItemExtras>,
    /// Where the document stopped being well-formed, if it did. The rest is
    /// passed through untouched and feed-rs has the last word.
    pub syntax_error: Option<String>,
    /// When the document breaks off (or turns malformed) after complete
    /// entries: those entries, closed into a well-formed document. Its
    /// entries are the first `salvaged_items` of `items`.
    pub salvaged: Option<String>,
    pub salvaged_items: usize,
    /// Why the document was not read to its end: expanding its entities
    /// went over [`super::limits::entity_expansion_budget`]. Not a feed to
    /// keep any part of.
    pub limit_error: Option<String>,
    /// The channel's `dc:language` (RSS 1.0 and 2.0), which feed-rs does
    /// not read.
    pub feed_language: Option<String>,
}

/// How hard to mend. `strip_extensions` is the retry after feed-rs rejected
/// the document: it drops the Media RSS, iTunes and Podcast elements (one
/// malformed `media:description` must not cost every entry) and Atom
/// content of types feed-rs cannot read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    pub strip_extensions: bool,
}

/// Namespaces we need to tell apart, by URI.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ns {
    None,
    Atom,
    Atom03,
    Rss,
    Rdf,
    Dc,
    /// RSS `content:encoded`'s module.
    Content,
    Xhtml,
    Extension,
    Other,
}

fn classify(uri: &str) -> Ns {
    match uri {
        ATOM => Ns::Atom,
        ATOM_03 => Ns::Atom03,
        RSS_10 | RSS_090 => Ns::Rss,
        RDF => Ns::Rdf,
        DC_11 | "http://purl.org/dc/elements/1.0/" | "http://purl.org/dc/terms/" => Ns::Dc,
        CONTENT => Ns::Content,
        XHTML => Ns::Xhtml,
        "http://search.yahoo.com/mrss/"
        | "http://search.yahoo.com/mrss"
        | "https://podcastindex.org/namespace/1.0" => Ns::Extension,
        _ if uri.eq_ignore_ascii_case(ITUNES) => Ns::Extension,
        _ if is_userland_rss(uri) => Ns::Rss,
        _ => Ns::Other,
    }
}

/// RSS 2.0 namespaces some generators declare as the default; feed-rs only
/// knows un-namespaced RSS 2.0.
fn is_userland_rss(uri: &str) -> bool {
    matches!(
        uri.trim_end_matches('/'),
        "http://backend.userland.com/rss2"
            | "http://backend.userland.com/rss"
            | "http://blogs.law.harvard.edu/tech/rss"
            | "http://purl.org/net/rss"
    )
}

fn resolve(ns: &ResolveResult) -> Ns {
    match ns {
        ResolveResult::Bound(uri) => classify(uri.as_ref()),
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Unknown(_) => Ns::Other,
    }
}

/// One open element of the output.
#[derive(Default)]
struct Frame {
    /// The end tag to write instead of the source's, when the element was renamed.
    end_tag: Option<String>,
    /// Whether this element was an entry (its extras are finished at its end).
    is_item: bool,
    /// Whether this element is the RSS 2.0 `<channel>` feed-rs reads.
    is_channel: bool,
    /// Whether this element is a `link` child of an RSS 1.0 item.
    is_rdf_link: bool,
    /// Whether this element's text is a category feed-rs misses (`dc:subject`,
    /// a wrapped `<category>`) of the current entry.
    is_subject: bool,
    /// Depth of the `xml:base` stack before this element.
    bases: usize,
    /// Text of this element the current entry keeps (see [`Collect`]).
    collect: Option<Collect>,
    /// Whether this is an RSS `<author>` child of an entry.
    is_author: bool,
    /// Whether this is the channel's `dc:language` (RSS 1.0 states the
    /// feed's language only so; feed-rs reads RSS 2.0's `<language>` alone).
    is_feed_language: bool,
}

/// A start tag being read, and what every step asks of it.
struct StartTag<'a> {
    ns: Ns,
    start: &'a BytesStart<'a>,
    qname: &'a str,
    local: &'a str,
    /// 1 for the root element.
    depth: usize,
    /// In Atom's namespace (1.0 or 0.3), or in none inside an Atom document.
    atomish: bool,
}

/// The entry being read.
struct OpenItem {
    extras: ItemExtras,
    /// RSS 1.0 only: `rdf:about`, and whether a non-empty `<link>` was seen.
    about: Option<String>,
    has_link: bool,
    text: String,
}

struct Prep {
    out: String,
    opts: Options,
    root: Root,
    atom03: bool,
    frames: Vec<Frame>,
    bases: Vec<Url>,
    items: Vec<ItemExtras>,
    item: Option<OpenItem>,
    /// RSS 2.0: how many `<channel>`s were opened (feed-rs reads the first).
    channels: usize,
    /// Depth below which everything is being dropped.
    skip_from: Option<usize>,
    /// Internal entities declared in the doctype, name -> replacement text.
    entities: HashMap<String, String>,
    /// An entry body being read as raw HTML (see [`RawBody`]).
    raw_body: Option<RawBody>,
    /// Qualified names of the open elements above entries (`rss`,
    /// `channel`, `feed`), to close a document that breaks off.
    ancestors: Vec<String>,
    /// Output length and entry count after the last complete entry.
    last_item_end: Option<(usize, usize)>,
    /// Bytes entity expansion added so far, and may add in all
    /// (amplification bound).
    expanded: usize,
    expansion_budget: usize,
    /// Set when an expansion went over the budget; reading stops there.
    limit_error: Option<String>,
    /// The text of an element feed-rs could panic on, being read.
    guarded: Option<GuardedText>,
    /// The channel's `dc:language`, while read, then as read.
    feed_language_text: String,
    feed_language: Option<String>,
}

/// Rewrites a decoded XML document for feed-rs; see the module docs.
pub(crate) fn prepare_xml(text: &str, feed_url: &Url, opts: Options) -> Prepared {
    let mut prep = Prep {
        out: String::with_capacity(text.len() + 256),
        opts,
        root: Root::Missing,
        atom03: false,
        frames: Vec::new(),
        bases: vec![feed_url.clone()],
        items: Vec::new(),
        item: None,
        channels: 0,
        skip_from: None,
        entities: HashMap::new(),
        raw_body: None,
        ancestors: Vec::new(),
        last_item_end: None,
        expanded: 0,
        expansion_budget: super::limits::entity_expansion_budget(text.len()),
        limit_error: None,
        guarded: None,
        feed_language_text: String::new(),
        feed_language: None,
    };
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.allow_dangling_amp = true;
    config.trim_text(false);

    let mut last = 0usize;
    let mut syntax_error = None;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (resolve(&ns), event),
            Err(e) => {
                let rest = &text[last..];
                if prep.frames.len() == 1 && is_unterminated_end_tag(rest) {
                    // `</rss` at the very end: the document is complete
                    // but for one `>`, so finish it rather than refuse it.
                    prep.out.push_str(rest.trim_end());
                    prep.out.push('>');
                    prep.frames.clear();
                } else {
                    let at = reader.error_position();
                    syntax_error = Some(format!("{e} (at byte {at})"));
                    if prep.root != Root::Missing {
                        prep.out.push_str(&without_xml_declarations(rest));
                    }
                }
                break;
            }
        };
        let pos = reader.buffer_position() as usize;
        let raw = &text[last..pos];
        last = pos;
        let finished = match event {
            Event::Eof => true,
            Event::Start(start) => {
                prep.start(ns, &start, raw, false);
                !prep.root.is_feed()
            }
            Event::Empty(start) => {
                prep.start(ns, &start, raw, true);
                // An empty root is the whole document.
                !prep.root.is_feed() || prep.frames.is_empty()
            }
            Event::End(_) => {
                prep.end(raw);
                prep.frames.is_empty()
            }
            Event::Text(_) if prep.in_body() => {
                // With `allow_dangling_amp`, an `&` left in text starts no
                // reference: it is a bare ampersand to escape.
                let fixed = raw.replace('&', "&amp;");
                prep.text(&fixed, raw);
                false
            }
            Event::CData(ref data) if prep.in_body() => {
                let value = data.clone().into_inner();
                prep.text(raw, &value);
                false
            }
            Event::GeneralRef(ref r) if prep.in_body() => {
                let name = r.clone().into_inner();
                match r.resolve_char_ref() {
                    Ok(Some(c)) if !is_xml_illegal(c) => prep.text(raw, &c.to_string()),
                    // A reference to a character XML forbids (`&#1;`) would
                    // make feed-rs reject the whole document.
                    Ok(Some(_)) | Err(_) => {}
                    Ok(None) => {
                        if let Some(value) = quick_xml::escape::resolve_predefined_entity(&name) {
                            prep.text(raw, value);
                        } else if let Some(value) = prep.entities.get(name.as_ref()).cloned() {
                            prep.expand_entity(&name, &value);
                        } else {
                            // Unknown (often HTML) entities stay as written;
                            // feed-rs keeps them and the HTML step decodes them.
                            prep.text(raw, raw);
                        }
                    }
                }
                prep.limit_error.is_some()
            }
            Event::DocType(ref doctype) if prep.root == Root::Missing => {
                prep.entities = doctype_entities(&doctype.clone().into_inner());
                false
            }
            Event::Comment(_) | Event::PI(_) if prep.in_body() => {
                prep.copy(raw);
                false
            }
            // Declarations, doctypes and anything outside the root element.
            _ => false,
        };
        if finished {
            break;
        }
    }
    if syntax_error.is_none() && !prep.frames.is_empty() && prep.root.is_feed() {
        syntax_error = Some(format!(
            "the document ends inside <{}>",
            prep.ancestors.last().map_or("?", String::as_str)
        ));
    }
    let (salvaged, salvaged_items) = match &syntax_error {
        Some(_) => prep.salvage(),
        None => (None, 0),
    };
    Prepared {
        xml: prep.out,
        root: prep.root,
        items: prep.items,
        syntax_error,
        salvaged,
        salvaged_items,
        limit_error: prep.limit_error,
        feed_language: prep.feed_language,
    }
}

impl Prep {
    fn in_body(&self) -> bool {
        !self.frames.is_empty()
    }

    fn skipping(&self) -> bool {
        self.skip_from.is_some()
    }

    fn copy(&mut self, raw: &str) {
        if !self.skipping() {
            self.out.push_str(raw);
        }
    }

    /// Writes an internal entity's replacement text, unless that would take
    /// expansion over its budget: then nothing more is read, and the
    /// document fails (see `limits::entity_expansion_budget`).
    fn expand_entity(&mut self, name: &str, value: &str) {
        let escaped = quick_xml::escape::minimal_escape(value);
        let expanded = self.expanded + escaped.len();
        if expanded > self.expansion_budget {
            self.limit_error = Some(format!(
                "entity expansion over its limit: references to &{name}; would add \
                 more than {} bytes to the document",
                self.expansion_budget
            ));
            return;
        }
        self.expanded = expanded;
        self.text(&escaped, value);
    }

    /// Text, CDATA or a reference: `raw` is what to write, `value` what it means.
    fn text(&mut self, raw: &str, value: &str) {
        self.copy(raw);
        if let Some(guarded) = self.guarded.as_mut() {
            guarded.value.push_str(value);
        }
        if let Some(body) = self.raw_body.as_mut() {
            body.text(raw, value);
        }
        if self
            .frames
            .last()
            .is_some_and(|f| f.is_subject || f.is_rdf_link || f.collect.is_some())
        {
            if let Some(item) = self.item.as_mut() {
                item.text.push_str(value);
            }
        }
        if self.frames.last().is_some_and(|f| f.is_feed_language) {
            self.feed_language_text.push_str(value);
        }
    }

    /// A start tag (or an empty element's): the root says what the document
    /// is; any other tag is mended for feed-rs and copied out, and what it
    /// means to the entry being read is kept in its frame until it ends.
    fn start(&mut self, ns: Ns, start: &BytesStart, raw: &str, empty: bool) {
        if self.raw_body_markup(raw, empty) {
            return;
        }
        // feed-rs reads a person or duration as the text before any child.
        self.finish_guarded();
        let depth = self.frames.len() + 1;
        if depth == 1 && !self.open_root(ns, start) {
            return;
        }
        let tag = StartTag {
            ns,
            start,
            qname: start.name().into_inner(),
            local: start.local_name().into_inner(),
            depth,
            atomish: matches!(ns, Ns::Atom | Ns::Atom03)
                || (ns == Ns::None && matches!(self.root, Root::Atom | Root::AtomEntry)),
        };
        let bases_before = self.bases.len();
        let mut edit = self.mend(&tag);
        let role = self.entry_role(&tag);
        let body = self.entry_body(&tag, &mut edit);
        self.write_start(&tag, raw, &edit, empty);
        if depth < self.root.item_depth() {
            let name = edit.rename.as_deref().unwrap_or(tag.qname);
            self.ancestors.push(name.to_string());
        }
        if let Some(kind) = body.filter(|_| !empty) {
            self.raw_body = Some(RawBody {
                depth,
                out_start: self.out.len(),
                html: String::new(),
                markup: kind == BodyKind::Rename,
            });
        }
        let frame = Frame {
            end_tag: edit.rename.map(|name| format!("</{name}>")),
            bases: bases_before,
            ..role
        };
        if empty {
            self.close(frame, depth);
        } else {
            self.frames.push(frame);
        }
    }

    /// Reads what the root element says the document is. False when it is
    /// not a feed: nothing more is read.
    fn open_root(&mut self, ns: Ns, start: &BytesStart) -> bool {
        let local = start.local_name().into_inner();
        self.root = match local {
            "rss" => Root::Rss,
            "RDF" => Root::Rdf,
            "feed" if matches!(ns, Ns::Atom | Ns::Atom03 | Ns::None | Ns::Other) => Root::Atom,
            "entry" if matches!(ns, Ns::Atom | Ns::None) => Root::AtomEntry,
            _ if ["html", "head", "body"].contains(&local.to_ascii_lowercase().as_str()) => {
                Root::Html
            }
            _ => Root::Other(start.name().into_inner().to_string()),
        };
        if !self.root.is_feed() {
            return false;
        }
        self.atom03 = ns == Ns::Atom03;
        true
    }

    /// What the tag must say for feed-rs to read it as meant. Also tracks
    /// its `xml:base` and, on the retry, starts dropping its subtree when
    /// feed-rs cannot read it.
    fn mend(&mut self, tag: &StartTag) -> TagEdit {
        let mut edit = TagEdit::default();
        self.xml_base(tag.start, &mut edit);
        self.namespaces(tag.start, tag.depth, &mut edit);
        self.rss_names(tag.ns, tag.start, &mut edit);
        if tag.depth == 1 && self.root == Root::Rss {
            let version = attr(tag.start, "version");
            if !matches!(version.as_deref(), Some("2.0" | "0.91" | "0.92" | "")) {
                edit.set.push(("version".into(), "2.0".into()));
            }
        }
        self.skip_if_stripped(tag);
        self.atom_names_and_types(tag, &mut edit);
        if tag.ns == Ns::Extension {
            unreadable_time_attributes(tag.local, tag.start, &mut edit);
        }
        edit
    }

    /// The retry drops whole subtrees: extension elements, and Atom content
    /// of a type feed-rs cannot read.
    fn skip_if_stripped(&mut self, tag: &StartTag) {
        if !self.opts.strip_extensions || self.skipping() {
            return;
        }
        let bad_content = tag.atomish
            && tag.local == "content"
            && attr(tag.start, "src").is_none()
            && !matches!(
                attr(tag.start, "type")
                    .map(|t| normalize_atom_type(&t.trim().to_ascii_lowercase(), true))
                    .as_deref(),
                None | Some("text" | "html" | "xhtml")
            );
        if tag.ns == Ns::Extension || bad_content {
            self.skip_from = Some(tag.depth);
        }
    }

    /// Atom: renamed 0.3 elements and text types feed-rs rejects.
    fn atom_names_and_types(&self, tag: &StartTag, edit: &mut TagEdit) {
        if !tag.atomish || tag.depth == 1 {
            return;
        }
        if self.atom03 {
            let renamed = match tag.local {
                "issued" => Some("published"),
                "modified" => Some("updated"),
                "tagline" => Some("subtitle"),
                "copyright" => Some("rights"),
                "url" => Some("uri"),
                _ => None,
            };
            if let Some(new_local) = renamed {
                let prefix = tag.qname.strip_suffix(tag.local).unwrap_or("");
                edit.rename = Some(format!("{prefix}{new_local}"));
            }
        }
        if let Some(ty) = atom_type(tag.local, tag.start, self.atom03) {
            edit.set.push(("type".into(), ty));
        }
    }

    /// What the element is to the entries: the RSS channel, an entry (opened
    /// here), or an element of one whose text the entry keeps. Its end tag
    /// and bases are left to the caller.
    fn entry_role(&mut self, tag: &StartTag) -> Frame {
        let item_depth = self.root.item_depth();
        let parent = self.frames.last();
        let parent_is_channel = parent.is_some_and(|p| p.is_channel);
        let parent_is_author = parent.is_some_and(|p| p.is_author);
        let in_item = self.item.is_some();
        let is_channel = self.root == Root::Rss && tag.depth == 2 && tag.local == "channel" && {
            self.channels += 1;
            self.channels == 1
        };
        let is_item = tag.depth == item_depth
            && match self.root {
                Root::Rss => tag.local == "item" && parent_is_channel,
                Root::Rdf => tag.local == "item",
                Root::Atom => tag.local == "entry" && tag.atomish,
                Root::AtomEntry => true,
                _ => false,
            };
        let mut frame = if is_item {
            self.item = Some(OpenItem {
                extras: ItemExtras {
                    base: self.bases.last().cloned(),
                    language: attr(tag.start, "xml:lang"),
                    ..ItemExtras::default()
                },
                about: attr(tag.start, "rdf:about"),
                has_link: false,
                text: String::new(),
            });
            Frame {
                is_item,
                ..Frame::default()
            }
        } else if in_item && tag.depth > item_depth {
            self.entry_child(tag)
        } else {
            Frame::default()
        };
        frame.is_channel = is_channel;
        // A child of the channel: in RSS 2.0 and 1.0 alike at depth 3, and
        // not in an entry (RSS 1.0's entries are the channel's siblings).
        frame.is_feed_language = !in_item
            && self.root.is_rss_like()
            && tag.depth == 3
            && tag.ns == Ns::Dc
            && tag.local == "language";
        if frame.is_feed_language {
            self.feed_language_text.clear();
        }
        frame.is_author = in_item
            && tag.depth == item_depth + 1
            && self.root.is_rss_like()
            && matches!(tag.ns, Ns::None | Ns::Rss)
            && tag.local == "author";
        if parent_is_author && tag.local == "name" {
            frame.collect = Some(Collect::AuthorName);
            if let Some(item) = self.item.as_mut() {
                item.text.clear();
            }
        }
        frame
    }

    /// An element inside the entry being read: what its attributes tell the
    /// entry (`isPermaLink`, the base of its content or summary), and
    /// whether the entry keeps its text (a category, RSS 1.0's link, one of
    /// [`Collect`]).
    fn entry_child(&mut self, tag: &StartTag) -> Frame {
        let rss_like = self.root.is_rss_like();
        let child = tag.depth == self.root.item_depth() + 1;
        let base = self.bases.last().cloned();
        let item = self.item.as_mut().expect("in an item");
        let mut is_subject = false;
        let mut is_rdf_link = false;
        match (tag.ns, tag.local) {
            (Ns::Dc, "subject") => is_subject = true,
            // feedparser finds categories wrapped in a non-standard
            // container (`<categories><category>`); feed-rs reads only
            // direct children.
            (Ns::None | Ns::Rss, "category") if rss_like && !child => is_subject = true,
            (Ns::Rss | Ns::None, "link") if child && self.root == Root::Rdf => is_rdf_link = true,
            (Ns::None | Ns::Rss, "guid") if child => {
                item.extras.guid_is_permalink =
                    attr(tag.start, "isPermaLink").map(|v| !v.trim().eq_ignore_ascii_case("false"))
            }
            (_, "content" | "encoded") if child => item.extras.content_base = base,
            (_, "summary" | "description") if child => item.extras.summary_base = base,
            _ => {}
        }
        let mut collect = item_text_to_collect(
            tag.ns,
            tag.local,
            tag.start,
            child,
            rss_like,
            &mut item.extras,
        );
        if child && tag.atomish && tag.local == "link" && attr(tag.start, "href").is_none() {
            let alternate =
                attr(tag.start, "rel").is_none_or(|r| r.trim().eq_ignore_ascii_case("alternate"));
            collect = Some(Collect::LinkText { alternate });
        }
        if is_subject || is_rdf_link || collect.is_some() {
            item.text.clear();
        }
        Frame {
            is_subject,
            is_rdf_link,
            collect,
            ..Frame::default()
        }
    }

    /// An RSS entry body that may hold raw HTML (see [`RawBody`]);
    /// `xhtml:body` and `fullitem` are renamed `content:encoded` here.
    fn entry_body(&mut self, tag: &StartTag, edit: &mut TagEdit) -> Option<BodyKind> {
        let is_entry_child = self.item.is_some() && tag.depth == self.root.item_depth() + 1;
        if !is_entry_child || !self.root.is_rss_like() || self.skipping() {
            return None;
        }
        let body = raw_body_kind(tag.ns, tag.local)?;
        if body == BodyKind::Rename {
            edit.rename = Some("content:encoded".into());
            edit.remove.push("xmlns".into());
            edit.set.push(("xmlns:content".into(), CONTENT.into()));
            if let Some(item) = self.item.as_mut() {
                item.extras.content_base = self.bases.last().cloned();
            }
        }
        Some(body)
    }

    /// Copies the tag out, mended, unless its subtree is being dropped; the
    /// text of an element feed-rs could panic on is held from here on.
    fn write_start(&mut self, tag: &StartTag, raw: &str, edit: &TagEdit, empty: bool) {
        if self.skipping() {
            return;
        }
        if edit.is_empty() {
            self.out.push_str(raw);
        } else {
            self.out.push_str(&edit.render(tag.start, empty));
        }
        let guard = (!tag.atomish && self.root.is_feed())
            .then(|| guard_kind(tag.ns, tag.local))
            .flatten();
        if let Some(kind) = guard.filter(|_| !empty) {
            self.guarded = Some(GuardedText {
                kind,
                depth: tag.depth,
                out_start: self.out.len(),
                value: String::new(),
            });
        }
    }

    fn end(&mut self, raw: &str) {
        let depth = self.frames.len();
        self.raw_body_end(depth, raw);
        if self.guarded.as_ref().is_some_and(|g| g.depth == depth) {
            self.finish_guarded();
        }
        self.ancestors
            .truncate(depth.saturating_sub(1).min(self.ancestors.len()));
        let Some(frame) = self.frames.pop() else {
            return;
        };
        if frame.is_item && self.root == Root::Rdf && !self.skipping() {
            if let Some(item) = self.item.as_ref().filter(|i| !i.has_link) {
                let href = item.about.as_deref().unwrap_or(PLACEHOLDER_LINK);
                let href = quick_xml::escape::escape(href);
                self.out
                    .push_str(&format!("<link xmlns=\"{RSS_10}\">{href}</link>"));
            }
        }
        if !self.skipping() {
            match &frame.end_tag {
                Some(tag) => self.out.push_str(tag),
                None => self.out.push_str(raw),
            }
        }
        self.close(frame, depth);
    }

    /// Bookkeeping when an element ends (or was empty).
    fn close(&mut self, frame: Frame, depth: usize) {
        self.bases.truncate(frame.bases);
        if self.skip_from == Some(depth) {
            self.skip_from = None;
        }
        if frame.is_feed_language && self.feed_language.is_none() {
            let text = self.feed_language_text.trim();
            self.feed_language = (!text.is_empty()).then(|| text.to_string());
        }
        let Some(item) = self.item.as_mut() else {
            return;
        };
        if frame.is_subject {
            let subject = item.text.trim();
            if !subject.is_empty() {
                item.extras.subjects.push(subject.to_string());
            }
        }
        if frame.is_rdf_link && !item.text.trim().is_empty() {
            item.has_link = true;
        }
        if let Some(collect) = frame.collect {
            collect.finish(&item.text, &mut item.extras);
        }
        if frame.is_item {
            let item = self.item.take().expect("checked above");
            self.items.push(item.extras);
            if !self.skipping() {
                self.last_item_end = Some((self.out.len(), self.items.len()));
            }
        }
    }

    /// Tracks `xml:base` like feed-rs does, dropping values it would choke
    /// on and any that is not http(s): a `javascript:` base would turn every
    /// relative link in the content into script.
    fn xml_base(&mut self, start: &BytesStart, edit: &mut TagEdit) {
        let Some(value) = attr(start, "xml:base") else {
            return;
        };
        let current = self.bases.last().expect("the feed URL is always there");
        match current.join(value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => self.bases.push(url),
            _ => edit.remove.push("xml:base".into()),
        }
    }

    /// Maps namespace declarations onto the URIs feed-rs recognizes.
    fn namespaces(&self, start: &BytesStart, depth: usize, edit: &mut TagEdit) {
        for a in start.attributes().with_checks(false).flatten() {
            let key = a.key.as_ref();
            if key != "xmlns" && !key.starts_with("xmlns:") {
                continue;
            }
            let uri = a.value.trim();
            let default = key == "xmlns";
            let replacement = if uri == ATOM_03 {
                Some(ATOM)
            } else if uri == RSS_090 {
                Some(RSS_10)
            } else if uri == "http://purl.org/dc/elements/1.0/" {
                Some(DC_11)
            } else if uri != ITUNES && uri.eq_ignore_ascii_case(ITUNES) {
                Some(ITUNES)
            } else if default && depth == 1 && self.root == Root::Atom && classify(uri) == Ns::Other
            {
                // A `<feed>` whose default namespace is a typo of Atom's.
                Some(ATOM)
            } else if default && depth == 1 && self.root == Root::Rdf && classify(uri) == Ns::Other
            {
                Some(RSS_10)
            } else {
                None
            };
            if default
                && self.root == Root::Rss
                && (is_userland_rss(uri) || (depth == 1 && classify(uri) == Ns::Other))
            {
                // RSS 2.0 has no namespace; feed-rs reads only un-namespaced RSS.
                edit.remove.push(key.to_string());
            } else if let Some(new) = replacement {
                edit.set.push((key.to_string(), new.to_string()));
            }
        }
    }
}

/// An RSS entry body (`description`, `content:encoded`) that may hold raw,
/// unescaped HTML: feed-rs would keep only its text, so when markup shows
/// up the whole body is rewritten as one CDATA section of HTML.
struct RawBody {
    /// Depth of the body element.
    depth: usize,
    /// Where its content starts in the output.
    out_start: usize,
    /// The content as HTML: markup and escaped text as written, CDATA as
    /// its value.
    html: String,
    /// Whether an element was seen inside (else the output stays as is).
    markup: bool,
}

impl RawBody {
    fn text(&mut self, raw: &str, value: &str) {
        if raw.starts_with("<![CDATA[") {
            self.html.push_str(value);
        } else {
            self.html.push_str(raw);
        }
    }
}

/// How an entry child is read as a body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BodyKind {
    /// `description`, `content:encoded`: kept, mended if it holds markup.
    Keep,
    /// `xhtml:body`, `fullitem`: renamed to `content:encoded`.
    Rename,
}

fn raw_body_kind(ns: Ns, local: &str) -> Option<BodyKind> {
    match (ns, local) {
        (Ns::None | Ns::Rss, "description") | (Ns::Content, "encoded") => Some(BodyKind::Keep),
        (Ns::Xhtml, "body") => Some(BodyKind::Rename),
        (Ns::None, "fullitem") => Some(BodyKind::Rename),
        _ => None,
    }
}

/// Entry text feed-rs does not read, kept in [`ItemExtras`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Collect {
    /// `<name>` inside an RSS `<author>`.
    AuthorName,
    ItunesAuthor,
    /// `itunes:keywords`, `media:keywords`: comma-separated categories.
    Keywords,
    /// `media:category`.
    Category,
    /// An Atom `<link>` without `href`.
    LinkText {
        alternate: bool,
    },
    /// `media:title`, `media:description`: fallbacks for the entry's own.
    MediaTitle,
    MediaDescription,
    /// `dcterms:issued`, `dcterms:created`, `dcterms:modified`.
    DcTermsDate,
    /// `dc:language`.
    Language,
}

impl Collect {
    fn finish(self, text: &str, extras: &mut ItemExtras) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        match self {
            Collect::AuthorName => {
                extras.author_name.get_or_insert_with(|| text.to_string());
            }
            Collect::ItunesAuthor => {
                extras.itunes_author.get_or_insert_with(|| text.to_string());
            }
            Collect::Keywords => {
                for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    extras.subjects.push(word.to_string());
                }
            }
            Collect::Category => extras.subjects.push(text.to_string()),
            Collect::DcTermsDate => {
                extras.dcterms_date.get_or_insert_with(|| text.to_string());
            }
            Collect::Language => {
                extras.language.get_or_insert_with(|| text.to_string());
            }
            Collect::MediaTitle => {
                extras.media_title.get_or_insert_with(|| text.to_string());
            }
            Collect::MediaDescription => {
                extras
                    .media_description
                    .get_or_insert_with(|| text.to_string());
            }
            Collect::LinkText { alternate } => {
                if extras
                    .link_text
                    .as_ref()
                    .is_none_or(|(alt, _)| !alt && alternate)
                {
                    extras.link_text = Some((alternate, text.to_string()));
                }
            }
        }
    }
}

/// What of an entry's extension element to keep; `itunes:category`, whose
/// value is an attribute, is recorded at once.
fn item_text_to_collect(
    ns: Ns,
    local: &str,
    start: &BytesStart,
    child: bool,
    rss_like: bool,
    extras: &mut ItemExtras,
) -> Option<Collect> {
    if ns == Ns::Dc && child && matches!(local, "issued" | "created" | "modified") {
        return Some(Collect::DcTermsDate);
    }
    if ns == Ns::Dc && child && local == "language" {
        return Some(Collect::Language);
    }
    if ns != Ns::Extension {
        return None;
    }
    match local {
        "author" if child && rss_like => Some(Collect::ItunesAuthor),
        "keywords" => Some(Collect::Keywords),
        "title" => Some(Collect::MediaTitle),
        "description" => Some(Collect::MediaDescription),
        "category" => match attr(start, "text") {
            Some(text) => {
                let text = text.trim();
                if !text.is_empty() {
                    extras.subjects.push(text.to_string());
                }
                None
            }
            None => Some(Collect::Category),
        },
        _ => None,
    }
}

impl Prep {
    /// Inside a raw HTML body, an element is markup: copied, and nothing
    /// else. Returns whether `raw` was such markup.
    fn raw_body_markup(&mut self, raw: &str, empty: bool) -> bool {
        let Some(body) = self.raw_body.as_mut() else {
            return false;
        };
        body.markup = true;
        body.html.push_str(raw);
        self.out.push_str(raw);
        if !empty {
            self.frames.push(Frame {
                bases: self.bases.len(),
                ..Frame::default()
            });
        }
        true
    }

    /// An end tag inside (or ending) a raw HTML body.
    fn raw_body_end(&mut self, depth: usize, raw: &str) {
        let Some(body) = self.raw_body.as_mut() else {
            return;
        };
        if depth > body.depth {
            body.html.push_str(raw);
            return;
        }
        let Some(body) = self.raw_body.take() else {
            return;
        };
        if body.markup && body.out_start <= self.out.len() {
            self.out.truncate(body.out_start);
            self.out.push_str("<![CDATA[");
            self.out
                .push_str(&body.html.replace("]]>", "]]]]><![CDATA[>"));
            self.out.push_str("]]>");
        }
    }

    /// RSS 2.0 elements feed-rs would not recognize by name: in a prefixed
    /// RSS namespace (`<r:item>`), or a `pubDate` in the wrong case.
    fn rss_names(&self, ns: Ns, start: &BytesStart, edit: &mut TagEdit) {
        if self.root != Root::Rss || !matches!(ns, Ns::None | Ns::Rss) {
            return;
        }
        let local = start.local_name();
        let local = local.as_ref();
        let qname = start.name();
        let prefixed = qname.as_ref().contains(':');
        if local != "pubDate" && local.eq_ignore_ascii_case("pubdate") {
            edit.rename = Some("pubDate".into());
        } else if prefixed && ns == Ns::Rss {
            edit.rename = Some(local.to_string());
        }
    }

    /// The document cut after its last complete entry and closed.
    fn salvage(&self) -> (Option<String>, usize) {
        let Some((len, items)) = self.last_item_end else {
            return (None, 0);
        };
        if !matches!(self.root, Root::Rss | Root::Rdf | Root::Atom) || items == 0 {
            return (None, 0);
        }
        let mut xml = self.out.get(..len).unwrap_or_default().to_string();
        for name in self.ancestors.iter().rev() {
            xml.push_str("</");
            xml.push_str(name);
            xml.push('>');
        }
        (Some(xml), items)
    }
}

/// The text of an element that feed-rs 3.0 parses in a way that can panic,
/// held until the element's first child or end so it can be rewritten:
/// feed-rs joins text, CDATA and references into one string.
struct GuardedText {
    kind: GuardKind,
    depth: usize,
    /// Where the element's content starts in the output.
    out_start: usize,
    /// The content so far, unescaped.
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GuardKind {
    /// Split into name and e-mail (`util::parse_person_name_email`).
    Person,
    /// A "normal play time" (`util::parse_npt`).
    Time,
}

/// Which guard an element's text needs: the RSS and Dublin Core elements
/// feed-rs reads as a person, `itunes:author`, `itunes:owner`'s
/// `itunes:name`, and `itunes:duration`. Generous on namespaces: the
/// rewrite changes nothing a reader sees.
fn guard_kind(ns: Ns, local: &str) -> Option<GuardKind> {
    match (ns, local) {
        (Ns::None | Ns::Rss, "author" | "managingEditor" | "webMaster")
        | (Ns::Dc, "creator")
        | (Ns::Extension, "author" | "name") => Some(GuardKind::Person),
        (Ns::Extension, "duration") => Some(GuardKind::Time),
        _ => None,
    }
}

impl Prep {
    /// Ends the guarded element's text, rewriting it if feed-rs would panic
    /// on it.
    fn finish_guarded(&mut self) {
        let Some(guarded) = self.guarded.take() else {
            return;
        };
        let rewrite = match guarded.kind {
            GuardKind::Person => match person_text_for_feed_rs(&guarded.value) {
                Cow::Owned(safe) => Some(safe),
                Cow::Borrowed(_) => None,
            },
            // Nothing: what feed-rs makes of a time it cannot read.
            GuardKind::Time => (!feed_rs_reads_time(&guarded.value)).then(String::new),
        };
        if let Some(safe) = rewrite {
            if guarded.out_start <= self.out.len() {
                self.out.truncate(guarded.out_start);
                self.out
                    .push_str(&quick_xml::escape::minimal_escape(safe.as_str()));
            }
        }
    }
}

/// feed-rs 3.0's pattern for an e-mail address in a person string.
fn feed_rs_email() -> &'static Regex {
    static EMAIL: OnceLock<Regex> = OnceLock::new();
    EMAIL.get_or_init(|| {
        Regex::new(r"\b(<\[\()?(mailto:)?([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})(>]\))?\b")
            .expect("valid regex")
    })
}

/// A person string feed-rs 3.0 can split without panicking. It finds the
/// first e-mail address and takes the name from the longer side, dropping
/// one byte next to the address as a delimiter (`<`, `(`, a space): a
/// multi-byte character there (`«`, a no-break space, U+FFFD) panics. Such
/// a character becomes a space, so it is the delimiter dropped
/// (`Rédaction «redaction@example.fr»` gives the name `Rédaction`); a
/// letter or digit is kept, with a space put between.
pub(crate) fn person_text_for_feed_rs(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    // A rewrite moves where the first address is found, so check again;
    // real names settle in one round, and a string still unsafe after a
    // few keeps only its ASCII.
    for _ in 0..4 {
        let Some(found) = feed_rs_email().find(&text) else {
            return text;
        };
        let before = text[..found.start()]
            .chars()
            .next_back()
            .filter(|c| !c.is_ascii());
        let after = text[found.end()..].chars().next().filter(|c| !c.is_ascii());
        if before.is_none() && after.is_none() {
            return text;
        }
        let head = &text[..found.start() - before.map_or(0, char::len_utf8)];
        let tail = &text[found.end() + after.map_or(0, char::len_utf8)..];
        let mut safe = String::with_capacity(text.len() + 2);
        safe.push_str(head);
        match before {
            Some(c) if c.is_alphanumeric() => {
                safe.push(c);
                safe.push(' ');
            }
            Some(_) => safe.push(' '),
            None => {}
        }
        safe.push_str(found.as_str());
        match after {
            Some(c) if c.is_alphanumeric() => {
                safe.push(' ');
                safe.push(c);
            }
            Some(_) => safe.push(' '),
            None => {}
        }
        safe.push_str(tail);
        text = Cow::Owned(safe);
    }
    let ascii = text
        .chars()
        .map(|c| if c.is_ascii() { c } else { ' ' })
        .collect();
    Cow::Owned(ascii)
}

/// Whether feed-rs 3.0 reads a "normal play time" without panicking: it
/// matches Unicode digits and unwraps their `u64` parse, then multiplies
/// hours by 3600, so a non-ASCII digit or a long number panics.
fn feed_rs_reads_time(value: &str) -> bool {
    value.chars().all(|c| c.is_ascii() || !c.is_numeric())
        && value
            .split(|c: char| !c.is_ascii_digit())
            .all(|digits| digits.len() <= 12)
}

/// Drops the Media RSS time attributes (`media:thumbnail@time`,
/// `media:text@start`/`end`) feed-rs would panic on; it ignores a time it
/// cannot read, so that is what it gets.
fn unreadable_time_attributes(local: &str, start: &BytesStart, edit: &mut TagEdit) {
    let names: &[&str] = match local {
        "thumbnail" => &["time"],
        "text" => &["start", "end"],
        _ => return,
    };
    for a in start.attributes().with_checks(false).flatten() {
        let key = a.key.as_ref();
        let local_key = key.rsplit(':').next().unwrap_or(key);
        if !names.contains(&local_key) {
            continue;
        }
        let value = quick_xml::escape::unescape(&a.value).unwrap_or_default();
        if !feed_rs_reads_time(&value) {
            edit.remove.push(key.to_string());
        }
    }
}

/// Whether `rest` is nothing but an end tag missing its `>`.
fn is_unterminated_end_tag(rest: &str) -> bool {
    let rest = rest.trim();
    rest.strip_prefix("</").is_some_and(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
    })
}

/// `rest` (text copied unread after a syntax error) without `<?xml ...?>`
/// declarations: feed-rs switches its decoder on one it meets mid-document
/// and quick-xml panics when that encoding differs from the current one.
fn without_xml_declarations(rest: &str) -> std::borrow::Cow<'_, str> {
    static DECLARATION: OnceLock<Regex> = OnceLock::new();
    DECLARATION
        .get_or_init(|| Regex::new(r"(?s)<\?xml(?:\s.*?)?\?>").expect("static regex"))
        .replace_all(rest, "")
}

/// Internal general entities of a doctype (`<!ENTITY id "text">`), not
/// expanded recursively: enough for the feeds that use them as shorthands.
fn doctype_entities(doctype: &str) -> HashMap<String, String> {
    static ENTITY: OnceLock<Regex> = OnceLock::new();
    let entity = ENTITY.get_or_init(|| {
        Regex::new(r#"<!ENTITY\s+([A-Za-z_][\w.:-]*)\s+(?:"([^"]*)"|'([^']*)')\s*>"#)
            .expect("static regex")
    });
    entity
        .captures_iter(doctype)
        .filter_map(|c| {
            let value = c.get(2).or_else(|| c.get(3))?.as_str();
            let value = quick_xml::escape::unescape(value)
                .map_or_else(|_| value.to_string(), |v| v.into_owned());
            Some((c[1].to_string(), value))
        })
        .collect()
}

/// The Atom `type` feed-rs should see on a text construct or content
/// element, when it differs from the one given; `None` leaves the tag alone.
fn atom_type(local: &str, start: &BytesStart, atom03: bool) -> Option<String> {
    let is_content = local == "content";
    let is_text = matches!(
        local,
        "title" | "subtitle" | "summary" | "rights" | "tagline" | "copyright" | "info"
    );
    if !is_content && !is_text {
        return None;
    }
    let given = attr(start, "type");
    let ty = given.as_deref().map(|t| t.trim().to_ascii_lowercase());
    let wanted = if is_content && attr(start, "src").is_some() {
        // RFC 4287 §4.1.3.1: with `src`, the type is a MIME type, and
        // feed-rs rejects the short forms there.
        match ty?.as_str() {
            "" | "text" => "text/plain".to_string(),
            "html" => "text/html".to_string(),
            "xhtml" => "application/xhtml+xml".to_string(),
            t if t.contains('/') => t.to_string(),
            _ => "application/octet-stream".to_string(),
        }
    } else {
        let escaped = atom03 && attr(start, "mode").is_some_and(|m| m.trim() == "escaped");
        match ty.as_deref() {
            None if escaped => "html".to_string(),
            None => return None,
            Some(t) => normalize_atom_type(t, is_content),
        }
    };
    (given.as_deref() != Some(wanted.as_str())).then_some(wanted)
}

/// Atom inline `type` values as feed-rs reads them: `text`, `html`, `xhtml`,
/// or (content only) a MIME type it handles as an inline document.
fn normalize_atom_type(ty: &str, is_content: bool) -> String {
    match ty {
        "" | "text" | "text/plain" => "text",
        "html" | "text/html" => "html",
        "xhtml" | "application/xhtml+xml" => "xhtml",
        // feed-rs routes `*/xml` content to a text parser that then
        // rejects the type; inline XML reads fine as xhtml.
        t if t.ends_with("+xml") || t.ends_with("/xml") => "xhtml",
        t if is_content && t.contains('/') && !t.starts_with("text/") => return t.to_string(),
        t if t.contains("html") => "html",
        _ => "text",
    }
    .to_string()
}

/// An attribute's unescaped value, by qualified name.
fn attr(start: &BytesStart, name: &str) -> Option<String> {
    start
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| {
            quick_xml::escape::unescape(&a.value)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.to_string())
        })
}

/// Changes to one start tag.
#[derive(Default)]
struct TagEdit {
    rename: Option<String>,
    /// Attributes to set (replacing any with the same name); values unescaped.
    set: Vec<(String, String)>,
    remove: Vec<String>,
}

impl TagEdit {
    fn is_empty(&self) -> bool {
        self.rename.is_none() && self.set.is_empty() && self.remove.is_empty()
    }

    fn render(&self, start: &BytesStart, empty: bool) -> String {
        let mut tag = String::from("<");
        tag.push_str(self.rename.as_deref().unwrap_or(start.name().as_ref()));
        for a in start.attributes().with_checks(false).flatten() {
            let key = a.key.as_ref();
            if self.remove.iter().any(|r| r == key) || self.set.iter().any(|(k, _)| k == key) {
                continue;
            }
            // Raw values are already escaped; keep whichever quote they allow.
            let quote = if a.value.contains('"') { '\'' } else { '"' };
            tag.push_str(&format!(" {key}={quote}{}{quote}", a.value));
        }
        for (key, value) in &self.set {
            tag.push_str(&format!(
                " {key}=\"{}\"",
                quick_xml::escape::escape(value.as_str())
            ));
        }
        tag.push_str(if empty { "/>" } else { ">" });
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(doc: &str) -> Prepared {
        let url = Url::parse("https://example.com/feed.xml").unwrap();
        prepare_xml(doc, &url, Options::default())
    }

    #[test]
    fn mends_documents_feed_rs_would_misread() {
        // (input, expected output)
        let cases = [
            (
                "\n<?phpxml version=\"1.0\"?>\n<!-- c --><!DOCTYPE rss><rss version=\"2.0\"><channel/></rss>\n<p>junk",
                "<rss version=\"2.0\"><channel/></rss>",
            ),
            (
                "<rss version=\"2.0\"><channel/></rss\n",
                "<rss version=\"2.0\"><channel/></rss>",
            ),
            (
                "<rss><channel><title>AT&T &amp; co</title></channel></rss>",
                "<rss version=\"2.0\"><channel><title>AT&amp;T &amp; co</title></channel></rss>",
            ),
            (
                "<rss version='2.0' xmlns=\"http://backend.userland.com/rss2\"><channel/></rss>",
                "<rss version=\"2.0\"><channel/></rss>",
            ),
            (
                "<feed version=\"0.3\" xmlns=\"http://purl.org/atom/ns#\"><entry><issued>x</issued><title type=\"text/plain\">t</title></entry></feed>",
                "<feed version=\"0.3\" xmlns=\"http://www.w3.org/2005/Atom\"><entry><published>x</published><title type=\"text\">t</title></entry></feed>",
            ),
            (
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><content src=\"/v.mp4\" type=\"text\"/></entry></feed>",
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><content src=\"/v.mp4\" type=\"text/plain\"/></entry></feed>",
            ),
            (
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry xml:base=\"javascript:alert(1)\"/></feed>",
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry/></feed>",
            ),
            (
                "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://my.netscape.com/rdf/simple/0.9/\"><item rdf:about=\"https://e.x/1\"><title>t</title></item></rdf:RDF>",
                "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><item rdf:about=\"https://e.x/1\"><title>t</title><link xmlns=\"http://purl.org/rss/1.0/\">https://e.x/1</link></item></rdf:RDF>",
            ),
        ];
        for (input, want) in cases {
            let prepared = prep(input);
            assert_eq!(prepared.xml, want, "{input}");
            assert!(prepared.syntax_error.is_none(), "{input}");
        }
    }

    #[test]
    fn expands_doctype_entities_and_drops_illegal_references() {
        let prepared = prep(
            "<!DOCTYPE rss [ <!ENTITY id \"tag:e.x,\"> <!ENTITY amp2 'a &amp; b'> ]>\
             <rss version=\"2.0\"><channel><title>&id;1 &amp2; &#1;&#x41;&nbsp;</title></channel></rss>",
        );
        assert_eq!(
            prepared.xml,
            "<rss version=\"2.0\"><channel><title>tag:e.x,1 a &amp; b &#x41;&nbsp;</title></channel></rss>"
        );
    }

    #[test]
    fn records_what_feed_rs_does_not_report() {
        let prepared = prep(
            r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xml:base="https://b.example/x/">
              <channel>
                <item xml:base="sub/"><guid isPermaLink="false">g</guid>
                  <dc:subject> One </dc:subject><dc:subject>T&amp;wo</dc:subject>
                  <categories><category>Nested</category></categories>
                  <description xml:base="/d/">d</description>
                  <item/>
                </item>
                <item><guid>h</guid></item>
              </channel>
            </rss>"#,
        );
        assert_eq!(prepared.root, Root::Rss);
        assert_eq!(
            prepared.items.len(),
            2,
            "the nested <item/> is not an entry"
        );
        let first = &prepared.items[0];
        assert_eq!(first.subjects, ["One", "T&wo", "Nested"]);
        assert_eq!(first.guid_is_permalink, Some(false));
        assert_eq!(
            first.base.as_ref().unwrap().as_str(),
            "https://b.example/x/sub/"
        );
        assert_eq!(
            first.summary_base.as_ref().unwrap().as_str(),
            "https://b.example/d/"
        );
        assert_eq!(prepared.items[1].guid_is_permalink, None);
    }

    #[test]
    fn tells_feeds_from_other_documents() {
        let cases = [
            ("<rss/>", Root::Rss),
            (
                "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"/>",
                Root::Rdf,
            ),
            ("<feed xmlns=\"http://www.w3.org/2005/Atom\"/>", Root::Atom),
            (
                "<entry xmlns=\"http://www.w3.org/2005/Atom\"/>",
                Root::AtomEntry,
            ),
            ("<!DOCTYPE html><html><body>", Root::Html),
            ("<opml/>", Root::Other("opml".into())),
            ("<!-- nothing -->", Root::Missing),
        ];
        for (input, root) in cases {
            assert_eq!(prep(input).root, root, "{input}");
        }
    }

    #[test]
    fn raw_html_bodies_become_one_cdata_section() {
        let prepared = prep(
            "<rss version=\"2.0\"><channel><item><description><p>a &amp; <b>b</b>]]&gt;</p><![CDATA[ c ]]></description>\
             <r:item xmlns:r=\"x\"/><description>plain &amp; simple</description></item></channel></rss>",
        );
        assert_eq!(
            prepared.xml,
            "<rss version=\"2.0\"><channel><item><description><![CDATA[<p>a &amp; <b>b</b>]]&gt;</p> c ]]></description>\
             <r:item xmlns:r=\"x\"/><description>plain &amp; simple</description></item></channel></rss>"
        );
    }

    #[test]
    fn a_cut_document_is_closed_after_its_last_complete_entry() {
        let prepared = prep(
            "<r:rss xmlns:r=\"http://backend.userland.com/rss2\" version=\"2.0\"><r:channel><r:item><r:title>1</r:title></r:item><r:item><r:title>2",
        );
        assert!(prepared.syntax_error.is_some());
        assert_eq!(prepared.salvaged_items, 1);
        assert_eq!(
            prepared.salvaged.as_deref(),
            Some("<rss xmlns:r=\"http://backend.userland.com/rss2\" version=\"2.0\"><channel><item><title>1</title></item></channel></rss>")
        );
    }

    #[test]
    fn the_retry_drops_extension_elements() {
        let url = Url::parse("https://example.com/").unwrap();
        let doc = r#"<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item><title>t</title><media:group><media:description type="x"/></media:group></item></channel></rss>"#;
        let strict = prepare_xml(doc, &url, Options::default());
        assert!(strict.xml.contains("media:group"));
        let lenient = prepare_xml(
            doc,
            &url,
            Options {
                strip_extensions: true,
            },
        );
        assert_eq!(
            lenient.xml,
            r#"<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item><title>t</title></item></channel></rss>"#
        );
    }
}
