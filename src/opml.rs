//! OPML 2.0 (docs/CLI.md `tributary opml`): the sources as a subscription
//! list, and an OPML file's feeds appended to the TOML config as
//! `[[source]]` tables, the file's comments and formatting kept (toml_edit).
//!
//! Tags travel both ways: export puts each source in a folder outline named
//! after its first tag and lists all of them in `category` (OPML 2.0 §
//! "category": comma-separated, slash-delimited); import turns the titles of
//! enclosing folders and the `category` paths back into source tags.
//!
//! What only tributary knows (the source's name, its exact tags, schedule
//! and whether it is enabled) travels in attributes of our own namespace
//! ([`NAMESPACE`], as OPML 2.0 allows), so that export then import gives
//! the same sources back and `[[feed]] sources` lists still match.

use crate::config::Config;
use crate::text::{self, Escape};
use chrono::{DateTime, Utc};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::collections::HashSet;
use std::fmt::Write as _;
use url::Url;

/// Longest source name derived from a title.
const MAX_NAME_LEN: usize = 40;

/// The namespace of tributary's own outline attributes (a `tag:` URI,
/// RFC 4151: a name, not a place to fetch).
pub const NAMESPACE: &str = "tag:tributary,2026:opml";

#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("not well-formed OPML: {0}")]
    Xml(#[from] quick_xml::Error),
    #[error("not OPML: no <opml> root element")]
    NotOpml,
    #[error("config is not editable TOML: {0}")]
    Toml(#[from] toml_edit::TomlError),
    #[error("config: `source` is not an array of [[source]] tables")]
    SourceNotTables,
}

/// One feed outline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// `title`, else `text`.
    pub title: Option<String>,
    pub url: String,
    /// Folder titles above it and its `category` paths, as written; or
    /// exactly the tags tributary exported.
    pub tags: Vec<String>,
    /// What a tributary export says of the source (`None` elsewhere).
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
}

/// The feeds of an OPML document, in document order. Outlines with an
/// `xmlUrl` are feeds; outlines without one are folders whose titles become
/// the tags of the feeds inside them.
pub fn parse(xml: &str) -> Result<Vec<OpmlFeed>, OpmlError> {
    let mut reader = NsReader::from_str(xml);
    let mut feeds = Vec::new();
    // One entry per open <outline>: its folder title, if it is a folder.
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut saw_root = false;
    loop {
        match reader.read_event()? {
            Event::Start(e) if e.local_name().as_ref() == "opml" => saw_root = true,
            Event::Empty(e) if e.local_name().as_ref() == "opml" => saw_root = true,
            Event::Start(e) if e.local_name().as_ref() == "outline" => {
                let outline = Outline::read(&e, &reader);
                let folder = match outline.feed(&folders) {
                    Some(feed) => {
                        feeds.push(feed);
                        None
                    }
                    None => outline.title(),
                };
                folders.push(folder);
            }
            Event::Empty(e) if e.local_name().as_ref() == "outline" => {
                if let Some(feed) = Outline::read(&e, &reader).feed(&folders) {
                    feeds.push(feed);
                }
            }
            Event::End(e) if e.local_name().as_ref() == "outline" => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(OpmlError::NotOpml);
    }
    Ok(feeds)
}

/// The attributes of one `<outline>` that matter here. Attribute names are
/// matched case-insensitively: exporters disagree on `xmlUrl` / `xmlurl`.
#[derive(Default)]
struct Outline {
    text: Option<String>,
    title: Option<String>,
    xml_url: Option<String>,
    category: Option<String>,
    /// Attributes in [`NAMESPACE`].
    own_name: Option<String>,
    own_tags: Option<String>,
    own_schedule: Option<String>,
    own_enabled: Option<String>,
}

impl Outline {
    fn read(e: &BytesStart<'_>, reader: &NsReader<&[u8]>) -> Outline {
        let mut outline = Outline::default();
        for attr in e.attributes().flatten() {
            let Ok(value) = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let (namespace, local) = reader.resolver().resolve_attribute(attr.key);
            let key = local.as_ref().to_ascii_lowercase();
            let slot = match namespace {
                ResolveResult::Bound(ns) if ns.as_ref() == NAMESPACE => match key.as_str() {
                    "name" => &mut outline.own_name,
                    "tags" => &mut outline.own_tags,
                    "schedule" => &mut outline.own_schedule,
                    "enabled" => &mut outline.own_enabled,
                    _ => continue,
                },
                ResolveResult::Bound(_) => continue,
                _ => match key.as_str() {
                    "text" => &mut outline.text,
                    "title" => &mut outline.title,
                    "xmlurl" => &mut outline.xml_url,
                    "category" => &mut outline.category,
                    _ => continue,
                },
            };
            *slot = Some(value.to_string());
        }
        outline
    }

    fn title(&self) -> Option<String> {
        self.title.clone().or_else(|| self.text.clone())
    }

    fn feed(&self, folders: &[Option<String>]) -> Option<OpmlFeed> {
        let url = self.xml_url.clone()?;
        let mut tags: Vec<String> = folders.iter().flatten().cloned().collect();
        if let Some(category) = &self.category {
            tags.extend(
                category
                    .split(',')
                    .flat_map(|path| path.split('/'))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            );
        }
        // Our own export lists the tags exactly (a tag may hold `/` or `,`).
        if let Some(own) = self
            .own_tags
            .as_deref()
            .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
        {
            tags = own;
        }
        let mut seen = HashSet::new();
        tags.retain(|t| {
            let term = text::term(t);
            !term.is_empty() && seen.insert(term)
        });
        Some(OpmlFeed {
            title: self.title(),
            url,
            tags,
            name: self.own_name.clone(),
            schedule: self.own_schedule.clone(),
            enabled: self.own_enabled.as_deref().map(|v| v != "false"),
        })
    }
}

/// A source of the config, as export needs it.
#[derive(Debug, Clone)]
pub struct ExportSource {
    pub name: String,
    pub url: String,
    /// The feed's own title once fetched; else the source name is used.
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// The source's own schedule, when it is not the daemon's.
    pub schedule: Option<String>,
    pub enabled: bool,
}

/// OPML 2.0 of `sources`, grouped in folders by first tag.
pub fn export(sources: &[ExportSource], now: DateTime<Utc>) -> String {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\" xmlns:tributary=\"{NAMESPACE}\">\n  <head>\n    <title>tributary sources</title>\n");
    let _ = writeln!(
        out,
        "    <dateCreated>{}</dateCreated>\n    <docs>http://opml.org/spec2.opml</docs>\n  </head>\n  <body>",
        now.to_rfc2822()
    );
    // Folders in order of first appearance; untagged sources at top level.
    let mut folders: Vec<&str> = Vec::new();
    for s in sources {
        if let Some(first) = s.tags.first() {
            if !folders.contains(&first.as_str()) {
                folders.push(first);
            }
        }
    }
    for s in sources.iter().filter(|s| s.tags.is_empty()) {
        feed_outline(&mut out, "    ", s);
    }
    for folder in folders {
        let _ = writeln!(
            out,
            "    <outline text=\"{0}\" title=\"{0}\">",
            escape(folder)
        );
        for s in sources
            .iter()
            .filter(|s| s.tags.first().map(String::as_str) == Some(folder))
        {
            feed_outline(&mut out, "      ", s);
        }
        out.push_str("    </outline>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

fn feed_outline(out: &mut String, indent: &str, s: &ExportSource) {
    let title = escape(s.title.as_deref().unwrap_or(&s.name));
    let _ = write!(
        out,
        "{indent}<outline type=\"rss\" text=\"{title}\" title=\"{title}\" xmlUrl=\"{}\"",
        escape(&s.url)
    );
    if !s.tags.is_empty() {
        let category: Vec<String> = s.tags.iter().map(|t| format!("/{t}")).collect();
        let _ = write!(out, " category=\"{}\"", escape(&category.join(",")));
    }
    let _ = write!(out, " tributary:name=\"{}\"", escape(&s.name));
    if !s.tags.is_empty() {
        let tags = serde_json::to_string(&s.tags).unwrap_or_default();
        let _ = write!(out, " tributary:tags=\"{}\"", escape(&tags));
    }
    if let Some(schedule) = &s.schedule {
        let _ = write!(out, " tributary:schedule=\"{}\"", escape(schedule));
    }
    if !s.enabled {
        out.push_str(" tributary:enabled=\"false\"");
    }
    out.push_str("/>\n");
}

/// Attribute values: OPML is XML, and a URL or title may hold anything.
fn escape(text: &str) -> String {
    text::escape(text, Escape::Attribute)
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// The new config text.
    pub text: String,
    /// (name, url) of each source added.
    pub added: Vec<(String, String)>,
    /// URLs skipped: already configured, or twice in the file.
    pub skipped: Vec<String>,
    /// (url, reason) of outlines that are not usable feeds.
    pub invalid: Vec<(String, String)>,
}

/// Appends `feeds` to the config text as `[[source]]` tables after the
/// existing ones; URLs already configured (compared after URL
/// normalization) are skipped. Names come from titles, made unique; the
/// comment above them says from where and when (`now`).
pub fn import(
    config_text: &str,
    config: &Config,
    feeds: &[OpmlFeed],
    origin: &str,
    now: DateTime<Utc>,
) -> Result<Imported, OpmlError> {
    let mut doc: toml_edit::DocumentMut = config_text.parse()?;
    let mut urls: HashSet<String> = config.sources.iter().map(|s| s.url.to_string()).collect();
    let mut names: HashSet<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let mut result = Imported::default();
    let mut tables = Vec::new();
    for feed in feeds {
        let url = match Url::parse(&feed.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(url) => {
                result.invalid.push((
                    feed.url.clone(),
                    format!("{} URLs are not fetched", url.scheme()),
                ));
                continue;
            }
            Err(e) => {
                result.invalid.push((feed.url.clone(), e.to_string()));
                continue;
            }
        };
        if !urls.insert(url.to_string()) {
            result.skipped.push(url.to_string());
            continue;
        }
        // The name a tributary export carries, if it is still a valid one;
        // else one made from the title.
        let base = feed
            .name
            .clone()
            .filter(|n| crate::config::is_valid_name(n))
            .or_else(|| feed.title.as_deref().map(slug))
            .filter(|s| !s.is_empty())
            .or_else(|| url.host_str().map(slug))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "source".to_string());
        let name = unique(&base, &names);
        names.insert(name.clone());
        let mut table = toml_edit::Table::new();
        table["name"] = toml_edit::value(name.as_str());
        table["url"] = toml_edit::value(url.as_str());
        if !feed.tags.is_empty() {
            let tags: toml_edit::Array = feed.tags.iter().map(String::as_str).collect();
            table["tags"] = toml_edit::value(tags);
        }
        if let Some(schedule) = &feed.schedule {
            table["schedule"] = toml_edit::value(schedule.as_str());
        }
        if feed.enabled == Some(false) {
            table["enabled"] = toml_edit::value(false);
        }
        result.added.push((name, url.to_string()));
        tables.push(table);
    }
    if let Some(first) = tables.first_mut() {
        first.decor_mut().set_prefix(format!(
            "\n# Imported from {} on {}.\n",
            origin.replace('\n', " "),
            now.format("%Y-%m-%d")
        ));
    }
    if !tables.is_empty() {
        let item = doc
            .entry("source")
            .or_insert(toml_edit::Item::ArrayOfTables(Default::default()));
        let array = item
            .as_array_of_tables_mut()
            .ok_or(OpmlError::SourceNotTables)?;
        for table in tables {
            array.push(table);
        }
    }
    result.text = doc.to_string();
    Ok(result)
}

/// A source name (`[a-z0-9-_]`, docs/CONFIG.md) from a title: accents
/// dropped, other runs of characters folded to one `-`.
pub fn slug(title: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::new();
    for c in title.nfkd() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if unicode_normalization::char::is_combining_mark(c) {
            continue;
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() > MAX_NAME_LEN {
            // Cut at the last word boundary, not mid-word.
            let cut = out[..MAX_NAME_LEN].rfind('-').unwrap_or(MAX_NAME_LEN);
            out.truncate(cut);
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

fn unique(base: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken.contains(name))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_valid_source_names() {
        let cases = [
            ("RFI English", "rfi-english"),
            ("Le Monde.fr - Actualités", "le-monde-fr-actualites"),
            ("  BBC News: World!  ", "bbc-news-world"),
            ("新闻", ""),
            ("Ça va?", "ca-va"),
        ];
        for (title, expected) in cases {
            assert_eq!(slug(title), expected, "{title}");
        }
        assert!(slug(&"word ".repeat(30)).len() <= MAX_NAME_LEN);
        // Long titles are cut between words, not inside one.
        assert_eq!(
            slug("Department of Extraordinarily Long Publication Titles Weekly"),
            "department-of-extraordinarily-long"
        );
    }

    #[test]
    fn names_are_made_unique_with_a_suffix() {
        let taken: HashSet<String> = ["news", "news-2"].map(String::from).into();
        assert_eq!(unique("news", &taken), "news-3");
        assert_eq!(unique("other", &taken), "other");
    }

    #[test]
    fn nested_folders_and_categories_become_tags() {
        let xml = r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>x</title></head><body>
  <outline text="News">
    <outline text="World &amp; Politics">
      <outline type="rss" text="RFI" xmlUrl="https://www.rfi.fr/en/rss" category="/africa,/news"/>
    </outline>
    <outline type="rss" title="BBC" text="ignored" xmlurl="https://feeds.bbci.co.uk/news/rss.xml"/>
  </outline>
  <outline type="rss" text="Top level" xmlUrl="https://example.org/feed"/>
  <outline text="Empty folder"/>
</body></opml>"#;
        let feeds = parse(xml).unwrap();
        assert_eq!(
            feeds,
            vec![
                OpmlFeed {
                    title: Some("RFI".into()),
                    url: "https://www.rfi.fr/en/rss".into(),
                    tags: vec!["News".into(), "World & Politics".into(), "africa".into()],
                    name: None,
                    schedule: None,
                    enabled: None,
                },
                OpmlFeed {
                    title: Some("BBC".into()),
                    url: "https://feeds.bbci.co.uk/news/rss.xml".into(),
                    tags: vec!["News".into()],
                    name: None,
                    schedule: None,
                    enabled: None,
                },
                OpmlFeed {
                    title: Some("Top level".into()),
                    url: "https://example.org/feed".into(),
                    tags: vec![],
                    name: None,
                    schedule: None,
                    enabled: None,
                },
            ]
        );
    }

    #[test]
    fn non_opml_is_rejected() {
        assert!(matches!(parse("<rss/>"), Err(OpmlError::NotOpml)));
        assert!(parse("<opml><body><outline").is_err());
    }
}
