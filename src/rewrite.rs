//! A source's rewrites of its entries' titles and links (`rewrite_title`,
//! `rewrite_link`; docs/CONFIG.md "Rewrites"), applied after parsing and
//! before tagging and deduplication, so tag rules, identity keys and
//! near-duplicate signatures all see the cleaned text (a " - Outlet A"
//! suffix no longer sets two outlets' copies of one story apart).

use crate::config::{Rewrite, SourceConfig};
use crate::model::Entry;

/// `entry` with its source's rewrites applied. A rewrite that would leave
/// the title empty, or the link not an absolute http(s) URL, is not
/// applied: an entry keeps a title and a link that leads somewhere.
pub fn apply(source: &SourceConfig, mut entry: Entry) -> Entry {
    if let (Some(rewrite), Some(title)) = (&source.rewrite_title, &entry.title) {
        let rewritten = replace(rewrite, title);
        let rewritten = rewritten.trim();
        if !rewritten.is_empty() && rewritten != title {
            entry.title = Some(rewritten.to_string());
        }
    }
    if let (Some(rewrite), Some(link)) = (&source.rewrite_link, &entry.link) {
        // Only a changed link is parsed again (parsing normalizes it).
        let rewritten = replace(rewrite, link);
        if rewritten != link.as_str() {
            match url::Url::parse(rewritten.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                    entry.link = Some(url.to_string());
                }
                _ => tracing::debug!(
                    source = %source.name,
                    "rewrite_link gave no http(s) URL; the link is kept as sent"
                ),
            }
        }
    }
    entry
}

fn replace<'t>(rewrite: &Rewrite, text: &'t str) -> std::borrow::Cow<'t, str> {
    rewrite.regex.replace_all(text, rewrite.with.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn source_with(rewrites: &str) -> SourceConfig {
        let text = format!("[[source]]\nname = \"s\"\nurl = \"https://example.com/f\"\n{rewrites}");
        Config::from_toml(&text, Path::new("test.toml"))
            .unwrap()
            .sources
            .remove(0)
    }

    fn entry(title: &str, link: &str) -> Entry {
        Entry {
            title: Some(title.into()),
            link: Some(link.into()),
            ..Entry::default()
        }
    }

    #[test]
    fn titles_and_links_are_rewritten_but_never_emptied_or_broken() {
        let source = source_with(
            "rewrite_title = { regex = \" - Outlet A$\", with = \"\" }\n\
             rewrite_link = { regex = \"^https://m\\\\.example\\\\.com/(.*)$\", with = \"https://www.example.com/$1\" }\n",
        );
        let e = apply(
            &source,
            entry(
                "Wang Yi meets Lavrov - Outlet A",
                "https://m.example.com/a/1?x=2",
            ),
        );
        assert_eq!(e.title.as_deref(), Some("Wang Yi meets Lavrov"));
        assert_eq!(e.link.as_deref(), Some("https://www.example.com/a/1?x=2"));

        // Nothing to rewrite: unchanged.
        let e = apply(&source, entry("Plain", "https://www.example.com/b"));
        assert_eq!(e.title.as_deref(), Some("Plain"));
        assert_eq!(e.link.as_deref(), Some("https://www.example.com/b"));

        // A link the rewrite does not match stays byte for byte (parsing
        // would add the root's slash).
        let e = apply(&source, entry("Plain", "https://www.example.com"));
        assert_eq!(e.link.as_deref(), Some("https://www.example.com"));

        // A title that is only the suffix stays as sent.
        let e = apply(&source, entry(" - Outlet A", "https://m.example.com/c"));
        assert_eq!(e.title.as_deref(), Some(" - Outlet A"));

        let breaking = source_with("rewrite_link = { regex = \"^https://\", with = \"\" }\n");
        let e = apply(&breaking, entry("t", "https://www.example.com/d"));
        assert_eq!(e.link.as_deref(), Some("https://www.example.com/d"));
    }

    #[test]
    fn a_bad_rewrite_is_refused_at_its_place() {
        let text = "[[source]]\nname = \"s\"\nurl = \"https://example.com/f\"\n\
                    rewrite_title = { regex = \"(unclosed\", with = \"\" }\n";
        let error = Config::from_toml(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("t.toml:4:"), "{error}");
        assert!(error.contains("invalid regex"), "{error}");
        let text = "[[source]]\nname = \"s\"\nurl = \"https://example.com/f\"\n\
                    rewrite_link = { regex = \"x\" }\n";
        let error = Config::from_toml(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("with"), "{error}");
    }
}
