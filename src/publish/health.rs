//! The daemon's own health as a feed (`/health.atom`, `/health.json`;
//! docs/HTTP.md "Source health"): one entry per change of a source's
//! state, so an operator learns in the feed reader they already use that a
//! source died. Entry ids derive from the source, the kind and the time of
//! the event, so every instance (and every render) gives the same ones.

use super::atom::Timestamp;
use crate::model::{HealthEvent, HealthKind};
use crate::text::{escape_into, Escape};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// What the feed's head needs.
#[derive(Debug, Clone)]
pub struct HealthFeed<'a> {
    /// `base_url` without a trailing slash.
    pub base_url: &'a str,
    pub author: &'a str,
    /// Newest event's time, else a fixed one (the store's creation).
    pub updated: DateTime<Utc>,
}

const TITLE: &str = "tributary: source health";

/// A stable id: the source, the kind and the time of the event.
pub fn entry_id(event: &HealthEvent) -> String {
    format!(
        "urn:tributary:health:{}:{}:{}",
        event.source,
        event.kind.as_str(),
        event.at.timestamp_micros()
    )
}

/// The entry's title, in words.
pub fn title(event: &HealthEvent) -> String {
    let what = match event.kind {
        HealthKind::Failing => "is failing",
        HealthKind::Recovered => "recovered",
        HealthKind::Gone => "is gone (410): no longer fetched",
        HealthKind::Moved => "moved permanently",
        HealthKind::Quiet => "went quiet",
        HealthKind::Flood => "flooded",
    };
    format!("{} {what}", event.source)
}

/// The source's page.
pub fn source_page(base_url: &str, source: &str) -> String {
    format!("{base_url}/sources/{source}")
}

pub fn atom(feed: &HealthFeed<'_>, events: &[HealthEvent]) -> String {
    let mut out = String::with_capacity(1024 + events.len() * 600);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    let self_url = format!("{}/health.atom", feed.base_url);
    text(&mut out, "  ", "id", &self_url);
    text(&mut out, "  ", "title", TITLE);
    let _ = writeln!(out, "  <updated>{}</updated>", Timestamp(&feed.updated));
    link(&mut out, "  ", "self", "application/atom+xml", &self_url);
    link(
        &mut out,
        "  ",
        "alternate",
        "text/html",
        &format!("{}/", feed.base_url),
    );
    out.push_str("  <author>\n");
    text(&mut out, "    ", "name", feed.author);
    out.push_str("  </author>\n");
    let _ = writeln!(
        out,
        "  <generator version=\"{}\">tributary</generator>",
        env!("CARGO_PKG_VERSION")
    );
    for event in events {
        out.push_str("  <entry>\n");
        text(&mut out, "    ", "id", &entry_id(event));
        text(&mut out, "    ", "title", &title(event));
        let _ = writeln!(out, "    <updated>{}</updated>", Timestamp(&event.at));
        let _ = writeln!(out, "    <published>{}</published>", Timestamp(&event.at));
        link(
            &mut out,
            "    ",
            "alternate",
            "text/html",
            &source_page(feed.base_url, &event.source),
        );
        out.push_str("    <category");
        attribute(&mut out, "term", event.kind.as_str());
        out.push_str("/>\n");
        out.push_str("    <content type=\"text\">");
        escape_into(&mut out, &event.detail, Escape::Text);
        out.push_str("</content>\n");
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

pub fn json(feed: &HealthFeed<'_>, events: &[HealthEvent]) -> String {
    let items: Vec<serde_json::Value> = events
        .iter()
        .map(|event| {
            let at = Timestamp(&event.at).to_string();
            serde_json::json!({
                "id": entry_id(event),
                "url": source_page(feed.base_url, &event.source),
                "title": title(event),
                "content_text": crate::text::strip_xml_illegal(&event.detail),
                "date_published": at,
                "date_modified": at,
                "tags": [event.kind.as_str()],
                "_tributary": { "source": event.source, "kind": event.kind.as_str() },
            })
        })
        .collect();
    let doc = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": TITLE,
        "home_page_url": format!("{}/", feed.base_url),
        "feed_url": format!("{}/health.json", feed.base_url),
        "authors": [{ "name": feed.author }],
        "items": items,
    });
    doc.to_string()
}

fn text(out: &mut String, indent: &str, name: &str, value: &str) {
    let _ = write!(out, "{indent}<{name}>");
    escape_into(out, value, Escape::Text);
    let _ = writeln!(out, "</{name}>");
}

fn link(out: &mut String, indent: &str, rel: &str, media_type: &str, href: &str) {
    let _ = write!(out, "{indent}<link rel=\"{rel}\" type=\"{media_type}\"");
    attribute(out, "href", href);
    out.push_str("/>\n");
}

fn attribute(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    escape_into(out, value, Escape::Attribute);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> HealthEvent {
        HealthEvent {
            source: "wire".into(),
            kind: HealthKind::Failing,
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            detail: "3 consecutive failures; the last: HTTP 500 <b>&</b>\u{1}".into(),
        }
    }

    #[test]
    fn entries_have_stable_ids_links_and_escaped_text() {
        let feed = HealthFeed {
            base_url: "http://example.org/t",
            author: "ops",
            updated: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let atom = atom(&feed, &[event()]);
        assert!(atom.contains("<id>urn:tributary:health:wire:failing:1700000000000000</id>"));
        assert!(atom.contains("href=\"http://example.org/t/sources/wire\""));
        assert!(atom.contains("HTTP 500 &lt;b&gt;&amp;&lt;/b&gt;</content>"));
        assert!(!atom.contains('\u{1}'));
        let json = super::json(&feed, &[event()]);
        assert!(!json.contains("\\u0001"), "{json}");
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            json["items"][0]["id"],
            "urn:tributary:health:wire:failing:1700000000000000"
        );
        assert_eq!(json["items"][0]["title"], "wire is failing");
    }
}
