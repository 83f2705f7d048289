//! JSON Feed 1.1 output (<https://www.jsonfeed.org/version/1.1/>).
//!
//! The same page as the Atom output, serialized straight from borrowed
//! articles: the structs below hold `&str`s and slices, so rendering
//! allocates only the output buffer. Human-readable strings go through
//! [`Text`], which drops what the Atom drops, so both formats read alike.

use super::atom::{Legal, Timestamp};
use super::FeedView;
use crate::model::{Article, SourceRef, Tag};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::borrow::Borrow;

const VERSION: &str = "https://jsonfeed.org/version/1.1";

/// `articles`: owned or shared (`Arc`, as the store's pages give them).
pub fn render<A: Borrow<Article>>(view: &FeedView, articles: &[A]) -> String {
    let why_empty = view.why_empty.as_ref().map(ToString::to_string);
    let feed = Feed {
        version: VERSION,
        title: Text(&view.title),
        description: why_empty.as_deref().map(Text),
        home_page_url: &view.alternate_url,
        feed_url: &view.self_url,
        next_url: non_empty(&view.next_url),
        authors: author(&view.author),
        hubs: view.hub.as_deref().map(|url| {
            [Hub {
                kind: "WebSub",
                url,
            }]
        }),
        items: Items(articles, view.show_outlets),
    };
    let mut buf = Vec::with_capacity(estimate(articles));
    serde_json::to_writer(&mut buf, &feed).expect("these types always serialize");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// One article as a JSON Feed item object, as a feed's `items` hold it:
/// a webhook's body.
pub fn item(article: &Article) -> String {
    serde_json::to_string(&Item::new(article, false)).expect("these types always serialize")
}

#[derive(Serialize)]
#[serde(bound(serialize = "A: Borrow<Article>"))]
struct Feed<'a, A: Borrow<Article>> {
    version: &'static str,
    title: Text<'a>,
    /// Why the page is empty (docs/HTTP.md "Empty feeds").
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Text<'a>>,
    home_page_url: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authors: Option<[Author<'a>; 1]>,
    /// JSON Feed 1.1 `hubs`: the WebSub hub of this feed.
    #[serde(skip_serializing_if = "Option::is_none")]
    hubs: Option<[Hub<'a>; 1]>,
    items: Items<'a, A>,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Author<'a> {
    name: Text<'a>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    title: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Text<'a>>,
    date_published: Date<'a>,
    date_modified: Date<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authors: Option<[Author<'a>; 1]>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    tags: Labels<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    /// A custom object: JSON Feed 1.1 "Extensions" reserves `_`-prefixed
    /// keys for these, and readers ignore what they don't know.
    #[serde(rename = "_tributary")]
    tributary: Extension<'a>,
}

impl<'a> Item<'a> {
    /// `show_outlets`: a coverage view's items carry their outlet count.
    fn new(article: &'a Article, show_outlets: bool) -> Item<'a> {
        let content_html = non_empty(&article.content);
        let summary = non_empty(&article.summary);
        Item {
            id: &article.uid,
            url: non_empty(&article.link),
            title: Text(&article.title),
            content_html: content_html.map(Text),
            // The spec requires content_html or content_text; without HTML
            // the summary is the best text there is.
            content_text: match content_html {
                Some(_) => None,
                None => Some(Text(summary.unwrap_or(""))),
            },
            summary: summary.map(Text),
            date_published: Date(&article.published),
            date_modified: Date(&article.updated),
            authors: article.author.as_deref().and_then(author),
            tags: Labels(&article.tags),
            language: article.language.as_deref(),
            tributary: Extension {
                source: Source::new(&article.source),
                seen_in: &article.seen_in,
                related: &article.related,
                outlets: show_outlets.then_some(article.outlets),
                tags: Tags(&article.tags),
            },
        }
    }
}

#[derive(Serialize)]
struct Extension<'a> {
    source: Source<'a>,
    seen_in: &'a [String],
    /// Other outlets' copies of the same story.
    related: &'a [String],
    /// Distinct outlets that carried the story (docs/HTTP.md "Top
    /// stories"), in views that filter or sort by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    outlets: Option<i64>,
    tags: Tags<'a>,
}

#[derive(Serialize)]
struct Source<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<Text<'a>>,
    feed_url: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_page_url: Option<&'a str>,
}

impl<'a> Source<'a> {
    fn new(source: &'a SourceRef) -> Source<'a> {
        Source {
            name: &source.name,
            title: non_empty(&source.title).map(Text),
            feed_url: crate::redact::public_url(&source.feed_url),
            home_page_url: non_empty(&source.site_url),
        }
    }
}

#[derive(Serialize)]
struct TagObject<'a> {
    term: Text<'a>,
    label: Text<'a>,
}

/// `items`, serialized one article at a time instead of collected first.
struct Items<'a, A>(&'a [A], bool);

impl<A: Borrow<Article>> Serialize for Items<'_, A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|a| Item::new(a.borrow(), self.1)))
    }
}

/// An item's `tags`: JSON Feed has plain strings, so the labels people read.
struct Labels<'a>(&'a [Tag]);

impl Labels<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|tag| Text(&tag.label)))
    }
}

/// `_tributary.tags`: terms too, which is what filters match.
struct Tags<'a>(&'a [Tag]);

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|tag| TagObject {
            term: Text(&tag.term),
            label: Text(&tag.label),
        }))
    }
}

/// A string without the characters XML 1.0 forbids (see [`Legal`]);
/// serde_json writes it straight into the output, escaped, unallocated.
#[derive(Clone, Copy)]
struct Text<'a>(&'a str);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Legal(self.0))
    }
}

/// RFC 3339, seconds precision, `Z`: the same instants the Atom shows.
struct Date<'a>(&'a DateTime<Utc>);

impl Serialize for Date<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Timestamp(self.0))
    }
}

/// JSON Feed 1.1 author objects need a name, url or avatar; no name, none.
fn author(name: &str) -> Option<[Author<'_>; 1]> {
    (!name.is_empty()).then_some([Author { name: Text(name) }])
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Rough output size, so the buffer rarely grows.
fn estimate<A: Borrow<Article>>(articles: &[A]) -> usize {
    1024 + articles
        .iter()
        .map(|a| {
            let a: &Article = a.borrow();
            let content = a.content.as_ref().map_or(0, String::len);
            640 + a.title.len()
                + content
                + content / 8
                + a.summary.as_ref().map_or(0, String::len) * 2
                + a.tags
                    .iter()
                    .map(|t| 40 + t.term.len() + t.label.len() * 2)
                    .sum::<usize>()
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::atom::tests::{sample_articles, sample_view};
    use serde_json::{json, Value};

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).expect("output is JSON")
    }

    #[test]
    fn renders_a_json_feed_1_1_document() {
        let articles = sample_articles();
        let feed = parse(&render(&sample_view(None), &articles));

        assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(feed["title"], "China and Russia");
        assert_eq!(feed["home_page_url"], "http://127.0.0.1:8080/");
        assert_eq!(
            feed["feed_url"],
            "http://127.0.0.1:8080/feeds/china-russia.atom"
        );
        assert!(feed.get("next_url").is_none());
        assert_eq!(feed["authors"], json!([{ "name": "tributary" }]));

        let items = feed["items"].as_array().unwrap();
        let ids: Vec<_> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [&articles[0].uid, &articles[1].uid]);

        let news = &items[0];
        assert_eq!(news["url"], articles[0].link.as_deref().unwrap());
        assert_eq!(news["title"], articles[0].title);
        assert_eq!(
            news["content_html"],
            articles[0].content.as_deref().unwrap()
        );
        assert!(news.get("content_text").is_none());
        assert_eq!(news["summary"], articles[0].summary.as_deref().unwrap());
        assert_eq!(news["date_published"], "2025-05-08T07:42:11Z");
        assert_eq!(news["date_modified"], "2025-05-08T08:03:00Z");
        assert_eq!(news["authors"], json!([{ "name": "Clara Montgomery" }]));
        assert_eq!(
            news["tags"],
            json!(["Politics", "CHINA", "RUSSIA", "WANG YI", "XI JINPING"])
        );
        let extension = &news["_tributary"];
        assert_eq!(
            extension["source"],
            json!({
                "name": "rfi-en",
                "title": "RFI - English",
                "feed_url": "https://www.rfi.fr/en/rss",
                "home_page_url": "https://www.rfi.fr/en/",
            })
        );
        assert_eq!(extension["seen_in"], json!(["rfi-en", "wires"]));
        assert_eq!(
            extension["tags"][3],
            json!({ "term": "wang-yi", "label": "WANG YI" })
        );
        assert_eq!(extension["tags"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn items_without_html_fall_back_to_text_content() {
        let mut articles = sample_articles();
        let mut bare = articles[1].clone();
        bare.summary = None;
        articles.push(bare);
        let feed = parse(&render(&sample_view(None), &articles));
        let items = feed["items"].as_array().unwrap();

        // No link, no author: those keys are absent, not null.
        let bulletin = &items[1];
        assert!(bulletin.get("url").is_none());
        assert!(bulletin.get("authors").is_none());
        assert!(bulletin.get("content_html").is_none());
        assert_eq!(bulletin["content_text"], "Sirens tested at noon.");
        assert_eq!(bulletin["title"], "Bell & whistle bulletin");
        assert_eq!(bulletin["tags"], json!(["Alerts"]));
        assert_eq!(bulletin["_tributary"]["source"]["name"], "civil-defence");
        assert!(bulletin["_tributary"]["source"].get("title").is_none());

        assert_eq!(items[2]["content_text"], "");
        assert!(items[2].get("summary").is_none());
    }

    #[test]
    fn next_url_is_present_only_when_there_is_a_next_page() {
        let next = "http://127.0.0.1:8080/feed.json?before=abc";
        let feed = parse(&render(&sample_view(Some(next)), &sample_articles()));
        assert_eq!(feed["next_url"], next);
    }

    #[test]
    fn an_empty_page_still_has_items() {
        let feed = parse(&render(&sample_view(None), &[] as &[Article]));
        assert_eq!(feed["items"], json!([]));
    }
}
