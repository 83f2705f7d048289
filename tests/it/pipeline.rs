//! The core pipeline end to end: sources served from 127.0.0.1, fetched,
//! deduplicated, tagged, stored in SQLite and served back as Atom/JSON.

use crate::helpers::*;
use std::collections::HashSet;
use std::time::Duration;

/// An RSS 2.0 item.
struct Item<'a> {
    guid: Option<&'a str>,
    link: Option<&'a str>,
    title: &'a str,
    date: &'a str,
    categories: &'a [&'a str],
    author: Option<&'a str>,
    description: &'a str,
}

fn rss(title: &str, site: &str, items: &[Item]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{title}</title><link>{site}</link><description>test</description>\n"
    );
    for item in items {
        xml += "<item>";
        xml += &format!("<title>{}</title>", item.title);
        if let Some(guid) = item.guid {
            xml += &format!("<guid isPermaLink=\"false\">{guid}</guid>");
        }
        if let Some(link) = item.link {
            xml += &format!("<link>{link}</link>");
        }
        for c in item.categories {
            xml += &format!("<category>{c}</category>");
        }
        if let Some(author) = item.author {
            xml += &format!("<dc:creator>{author}</dc:creator>");
        }
        xml += &format!("<pubDate>{}</pubDate>", item.date);
        xml += &format!(
            "<description><![CDATA[{}]]></description>",
            item.description
        );
        xml += "</item>\n";
    }
    xml += "</channel></rss>\n";
    xml
}

fn item<'a>(guid: &'a str, link: &'a str, title: &'a str, date: &'a str) -> Item<'a> {
    Item {
        guid: Some(guid),
        link: Some(link),
        title,
        date,
        categories: &[],
        author: None,
        description: "<p>Body text.</p>",
    }
}

/// The typical republished news item: what an aggregator site shows.
fn rfi_feed() -> String {
    rss(
        "RFI - English",
        "https://www.rfi.fr/en/",
        &[
            Item {
                guid: Some("https://www.rfi.fr/en/asia-pacific/20261127-wang-yi-moscow"),
                link: Some("https://www.rfi.fr/en/asia-pacific/20261127-wang-yi-moscow?xtor=RSS-1"),
                title: "China&#39;s Wang Yi meets Putin in Moscow ahead of Xi visit",
                date: "Fri, 27 Nov 2026 09:30:00 +0100",
                categories: &["Politics", "CHINA", "RUSSIA", "WANG YI", "XI JINPING"],
                author: Some("Clara Montgomery"),
                description: "<p>Chinese Foreign Minister <a href=\"/en/tag/wang-yi/\">Wang Yi</a> met Vladimir Putin.</p><script>alert(1)</script><p onclick=\"steal()\">More <a href=\"javascript:alert(2)\">here</a>.</p><iframe src=\"https://evil.example/\"></iframe><img src=\"/img/wang.jpg\" alt=\"Wang Yi\">",
            },
            Item {
                guid: Some("https://www.rfi.fr/en/africa/20261126-elections"),
                link: Some("/en/africa/20261126-elections"),
                title: "Election results contested in the capital",
                date: "Thu, 26 Nov 2026 18:00:00 +0000",
                categories: &["Africa"],
                author: None,
                description: "<p>Opposition parties reject the count.</p>",
            },
            Item {
                guid: Some("https://www.rfi.fr/en/sport/20261125-football"),
                link: Some("https://www.rfi.fr/en/sport/20261125-football"),
                title: "Cup final ends in a draw",
                date: "Wed, 25 Nov 2026 21:00:00 +0000",
                categories: &["Sport"],
                author: None,
                description: "<p>Extra time settled nothing.</p>",
            },
        ],
    )
}

/// A second outlet carrying the Wang Yi story under the same link (with
/// tracking parameters) and one story of its own.
fn wire_feed() -> String {
    rss(
        "Wire",
        "https://wire.example/",
        &[
            Item {
                guid: Some("wire-1"),
                link: Some("https://WWW.RFI.FR/en/asia-pacific/20261127-wang-yi-moscow?utm_source=wire&utm_medium=rss#top"),
                title: "Wang Yi in Moscow",
                date: "Fri, 27 Nov 2026 10:00:00 +0000",
                categories: &["Diplomacy", "Russia"],
                author: None,
                description: "<p>Short wire copy.</p>",
            },
            Item {
                guid: Some("wire-2"),
                link: Some("https://wire.example/markets"),
                title: "Markets rally",
                date: "Fri, 27 Nov 2026 08:00:00 +0000",
                categories: &["Economy"],
                author: None,
                description: "<p>Stocks up.</p>",
            },
        ],
    )
}

const FEEDS: &str = r#"
[[source]]
name = "rfi-en"
url = "RFI_URL"
tags = ["rfi", "world"]
schedule = "0 0 0 1 1 *"

[[source]]
name = "wire"
url = "WIRE_URL"
tags = ["wire"]
schedule = "0 0 0 1 1 *"

[[tag_rule]]
tag = "Moscow"
any = ["Moscow"]
fields = ["title"]

[[feed]]
name = "china-russia"
title = "China and Russia"
any = ["china", "russia"]
none = ["sport"]

[[feed]]
name = "no-sport"
title = "Everything but sport"
none = ["sport"]
sources = ["rfi-en"]
"#;

async fn two_sources() -> (FeedServer, TestConfig) {
    let server = FeedServer::start().await;
    let config = two_sources_on(&server);
    (server, config)
}

/// rfi-en and wire on `server`; wire answers a little later, so that
/// rfi-en's copy of the shared story is deterministically the first seen.
fn two_sources_on(server: &FeedServer) -> TestConfig {
    server.set("/en/rss", Fixture::feed(rfi_feed()).with_etag("\"rfi-v1\""));
    server.set(
        "/wire.xml",
        Fixture::feed(wire_feed())
            .with_last_modified("Fri, 27 Nov 2026 10:00:00 GMT")
            .with_delay(std::time::Duration::from_millis(300)),
    );
    let body = FEEDS
        .replace("RFI_URL", &server.url("/en/rss"))
        .replace("WIRE_URL", &server.url("/wire.xml"));
    TestConfig::write("", &body)
}

#[tokio::test]
async fn a_news_item_is_republished_in_full_with_its_source() {
    let (server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let atom = app.get_text("/feeds/china-russia.atom").await;
    assert_valid_atom(&atom);
    let feed = parse_atom(&atom);
    assert_eq!(feed.title.unwrap().content, "China and Russia");
    assert_eq!(
        feed.entries.len(),
        1,
        "one story, merged from two sources:\n{atom}"
    );
    let entry = &feed.entries[0];
    assert_eq!(
        entry.title.as_ref().unwrap().content,
        "China's Wang Yi meets Putin in Moscow ahead of Xi visit"
    );
    assert_eq!(entry.authors[0].name.as_deref(), Some("Clara Montgomery"));
    // The link readers follow is the publisher's, as given.
    assert_eq!(
        entry.links[0].href,
        "https://www.rfi.fr/en/asia-pacific/20261127-wang-yi-moscow?xtor=RSS-1"
    );
    let labels: Vec<&str> = entry
        .categories
        .iter()
        .map(|c| c.label.as_deref().unwrap())
        .collect();
    for label in [
        "Politics",
        "CHINA",
        "RUSSIA",
        "WANG YI",
        "XI JINPING",
        "rfi",
        "world",
        "Diplomacy",
        "wire",
        "Moscow",
    ] {
        assert!(labels.contains(&label), "missing tag {label} in {labels:?}");
    }
    let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
    assert!(
        terms.contains(&"wang-yi") && terms.contains(&"xi-jinping"),
        "{terms:?}"
    );
    assert_eq!(
        terms.iter().filter(|t| **t == "russia").count(),
        1,
        "RUSSIA and Russia are one tag"
    );
    assert_eq!(
        entry.published.unwrap().to_rfc3339(),
        "2026-11-27T08:30:00+00:00"
    );
    assert!(entry
        .summary
        .as_ref()
        .unwrap()
        .content
        .contains("met Vladimir Putin"));

    // atom:source names the feed the story was first seen in.
    assert!(atom.contains("<source>"), "{atom}");
    assert!(
        atom.contains("<title type=\"text\">RFI - English</title>"),
        "{atom}"
    );
    assert!(
        atom.contains(&format!("href=\"{}\"", server.url("/en/rss"))),
        "{atom}"
    );

    // Sanitized body with absolute URLs.
    let body = entry.content.as_ref().unwrap().body.as_ref().unwrap();
    assert!(
        !body.contains("<script") && !body.contains("alert(1)"),
        "{body}"
    );
    assert!(
        !body.contains("onclick") && !body.contains("javascript:"),
        "{body}"
    );
    assert!(!body.contains("<iframe"), "{body}");
    assert!(
        body.contains(&format!("src=\"{}\"", server.url("/img/wang.jpg"))),
        "{body}"
    );
    assert!(
        body.contains(&format!("href=\"{}\"", server.url("/en/tag/wang-yi/"))),
        "{body}"
    );

    // A relative item link is resolved against the feed's URL.
    let all = parse_atom(&app.get_text("/feed.atom?all=africa").await);
    assert_eq!(
        all.entries[0].links[0].href,
        server.url("/en/africa/20261126-elections")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_same_link_in_two_sources_is_one_article_with_tags_united() {
    let (_server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let feed = parse_atom(&app.get_text("/feed.atom").await);
    let titles: Vec<String> = feed
        .entries
        .iter()
        .map(|e| e.title.clone().unwrap().content)
        .collect();
    assert_eq!(
        feed.entries.len(),
        4,
        "3 + 2 entries, one shared: {titles:?}"
    );
    let ids: HashSet<&str> = feed.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 4);

    // A second cycle changes nothing.
    app.fetch_now().await;
    let again = parse_atom(&app.get_text("/feed.atom").await);
    assert_eq!(again.entries.len(), 4);

    // The merged story is found through either source.
    let by_wire = parse_atom(&app.get_text("/feed.atom?source=wire").await);
    let titles: Vec<String> = by_wire
        .entries
        .iter()
        .map(|e| e.title.clone().unwrap().content)
        .collect();
    assert_eq!(
        titles,
        vec![
            "China's Wang Yi meets Putin in Moscow ahead of Xi visit",
            "Markets rally"
        ]
    );

    let json: serde_json::Value =
        serde_json::from_str(&app.get_text("/feed.json?any=wang-yi").await).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["_tributary"]["seen_in"],
        serde_json::json!(["rfi-en", "wire"])
    );
    app.stop().await;
}

#[tokio::test]
async fn tag_filters_select_by_term() {
    let (_server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let titles = |xml: String| -> Vec<String> {
        assert_valid_atom(&xml);
        parse_atom(&xml)
            .entries
            .iter()
            .map(|e| e.title.clone().unwrap().content)
            .collect()
    };
    let cases: &[(&str, &[&str])] = &[
        (
            "/feed.atom?any=Sport,economy",
            &["Markets rally", "Cup final ends in a draw"],
        ),
        (
            "/feed.atom?all=rfi,africa",
            &["Election results contested in the capital"],
        ),
        (
            "/feed.atom?all=rfi&none=sport,africa",
            &["China's Wang Yi meets Putin in Moscow ahead of Xi visit"],
        ),
        (
            "/feed.atom?any=XI_JINPING",
            &["China's Wang Yi meets Putin in Moscow ahead of Xi visit"],
        ),
        (
            "/tags/wire.atom",
            &[
                "China's Wang Yi meets Putin in Moscow ahead of Xi visit",
                "Markets rally",
            ],
        ),
        (
            "/tags/wire.atom?none=economy",
            &["China's Wang Yi meets Putin in Moscow ahead of Xi visit"],
        ),
        (
            "/feeds/no-sport.atom",
            &[
                "China's Wang Yi meets Putin in Moscow ahead of Xi visit",
                "Election results contested in the capital",
            ],
        ),
        ("/feed.atom?any=nothing-has-this", &[]),
    ];
    for (path, expected) in cases {
        assert_eq!(titles(app.get_text(path).await), *expected, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn pages_link_to_the_next_until_every_article_was_seen_once() {
    let server = FeedServer::start().await;
    let items: Vec<(String, String, String)> = (0..7)
        .map(|i| {
            (
                format!("id-{i}"),
                format!("https://news.example/{i}"),
                format!("Story {i}"),
            )
        })
        .collect();
    // Two entries share a date: order falls back to id, paging must not skip.
    let dates = [
        "Mon, 23 Nov 2026 10:00:00 GMT",
        "Tue, 24 Nov 2026 10:00:00 GMT",
        "Tue, 24 Nov 2026 10:00:00 GMT",
        "Wed, 25 Nov 2026 10:00:00 GMT",
        "Thu, 26 Nov 2026 10:00:00 GMT",
        "Fri, 27 Nov 2026 10:00:00 GMT",
        "Sat, 28 Nov 2026 01:00:00 GMT",
    ];
    let rss_items: Vec<Item> = items
        .iter()
        .zip(dates)
        .map(|((g, l, t), d)| item(g, l, t, d))
        .collect();
    server.set(
        "/feed",
        Fixture::feed(rss("News", "https://news.example/", &rss_items)),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\n",
            server.url("/feed")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let mut seen = Vec::new();
    let mut next = Some(format!("{}/feed.atom?limit=3", app.base));
    let mut pages = 0;
    while let Some(url) = next {
        let path = url
            .strip_prefix("http://feeds.test")
            .unwrap_or(&url)
            .replace(&app.base, "");
        let xml = app.get_text(&path).await;
        assert_valid_atom(&xml);
        let feed = parse_atom(&xml);
        seen.extend(
            feed.entries
                .iter()
                .map(|e| e.title.clone().unwrap().content),
        );
        next = feed
            .links
            .iter()
            .find(|l| l.rel.as_deref() == Some("next"))
            .map(|l| l.href.clone());
        if let Some(n) = &next {
            assert!(
                n.starts_with("http://feeds.test/feed.atom?limit=3&before="),
                "absolute, from base_url: {n}"
            );
        }
        pages += 1;
        assert!(pages <= 3, "paging does not end");
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = vec!["Story 6", "Story 5", "Story 4", "Story 3"]
        .into_iter()
        .map(String::from)
        .collect();
    // Same date: higher id first (stored in feed order, so Story 2 after Story 1).
    expected.extend(["Story 2", "Story 1", "Story 0"].map(String::from));
    assert_eq!(seen, expected);
    app.stop().await;
}

#[tokio::test]
async fn feeds_answer_304_to_current_validators() {
    let (_server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let first = app.get("/feeds/china-russia.atom").await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(first.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/atom+xml"));

    let by_etag = app
        .client
        .get(format!("{}/feeds/china-russia.atom", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(by_etag.status(), 304);
    assert_eq!(by_etag.headers()["etag"], etag.as_str());
    // Both validators and the caching headers, as on the 200 (docs/HTTP.md).
    assert_eq!(by_etag.headers()["last-modified"], last_modified.as_str());
    assert_eq!(by_etag.headers()["cache-control"], "public, max-age=60");
    assert!(by_etag.headers().contains_key("vary"));
    assert!(by_etag.bytes().await.unwrap().is_empty());

    let by_date = app
        .client
        .get(format!("{}/feeds/china-russia.atom", app.base))
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), 304);

    let stale = app
        .client
        .get(format!("{}/feeds/china-russia.atom", app.base))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);

    // Another view has another validator.
    let other = app.get("/feeds/china-russia.json").await;
    assert_ne!(other.headers()["etag"].to_str().unwrap(), etag);
    app.stop().await;
}

#[tokio::test]
async fn ids_stay_stable_across_refetch_and_restart() {
    let (server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let ids = |xml: String| -> Vec<String> {
        parse_atom(&xml)
            .entries
            .iter()
            .map(|e| e.id.clone())
            .collect()
    };
    let before = ids(app.get_text("/feed.atom").await);
    assert!(
        before.iter().all(|id| id.starts_with("urn:uuid:")),
        "{before:?}"
    );
    app.fetch_now().await;
    assert_eq!(ids(app.get_text("/feed.atom").await), before);
    app.stop().await;

    let restarted = TestApp::spawn(config.load()).await;
    assert_eq!(ids(restarted.get_text("/feed.atom").await), before);
    restarted.stop().await;

    // A fresh database fed the same bytes gives the same ids: they come from
    // the articles, not from insertion order.
    let other = two_sources_on(&server);
    let app2 = TestApp::spawn(other.load()).await;
    app2.wait_fetched().await;
    let mut fresh = ids(app2.get_text("/feed.atom").await);
    let mut expected = before.clone();
    fresh.sort();
    expected.sort();
    assert_eq!(fresh, expected);
    app2.stop().await;
}

#[tokio::test]
async fn an_edited_story_is_updated_in_place() {
    let server = FeedServer::start().await;
    let v1 = rss(
        "News",
        "https://news.example/",
        &[
            item(
                "a",
                "https://news.example/a",
                "Quake hits coast",
                "Fri, 27 Nov 2026 10:00:00 GMT",
            ),
            item(
                "b",
                "https://news.example/b",
                "Other story",
                "Thu, 26 Nov 2026 10:00:00 GMT",
            ),
        ],
    );
    server.set("/feed", Fixture::feed(v1));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\nschedule = \"0 0 0 1 1 *\"\n",
            server.url("/feed")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let before = parse_atom(&app.get_text("/feed.atom").await);
    let original = before
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "Quake hits coast")
        .unwrap()
        .clone();

    let v2 = rss(
        "News",
        "https://news.example/",
        &[
            item(
                "a",
                "https://news.example/a",
                "Quake hits coast, dozens hurt",
                "Fri, 27 Nov 2026 10:00:00 GMT",
            ),
            item(
                "b",
                "https://news.example/b",
                "Other story",
                "Thu, 26 Nov 2026 10:00:00 GMT",
            ),
        ],
    );
    server.set("/feed", Fixture::feed(v2));
    app.fetch_now().await;
    let after = parse_atom(&app.get_text("/feed.atom").await);
    assert_eq!(after.entries.len(), 2);
    let edited = after
        .entries
        .iter()
        .find(|e| e.id == original.id)
        .expect("same id after the edit");
    assert_eq!(
        edited.title.as_ref().unwrap().content,
        "Quake hits coast, dozens hurt"
    );
    assert!(
        edited.updated.unwrap() > original.updated.unwrap(),
        "updated moves on an edit"
    );
    assert_eq!(edited.published, original.published, "published stays");
    let untouched_before = before
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "Other story")
        .unwrap();
    let untouched_after = after
        .entries
        .iter()
        .find(|e| e.id == untouched_before.id)
        .unwrap();
    assert_eq!(
        untouched_after.updated, untouched_before.updated,
        "updated moves only on a real change"
    );
    app.stop().await;
}

#[tokio::test]
async fn refetches_are_conditional_and_echo_validators() {
    let (server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    app.fetch_now().await;
    let rfi = server.requests("/en/rss");
    assert_eq!(rfi.len(), 2);
    assert!(
        rfi[0].headers.get("if-none-match").is_none(),
        "first fetch is unconditional"
    );
    assert_eq!(rfi[1].headers["if-none-match"], "\"rfi-v1\"");
    let wire = server.requests("/wire.xml");
    assert_eq!(
        wire[1].headers["if-modified-since"],
        "Fri, 27 Nov 2026 10:00:00 GMT"
    );
    let ua = rfi[0].headers["user-agent"].to_str().unwrap();
    assert!(
        ua.starts_with("tributary/") && ua.contains("http://feeds.test"),
        "{ua}"
    );
    assert!(rfi[0].headers.get("cookie").is_none() && rfi[0].headers.get("referer").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_failing_source_does_not_stop_the_others_and_its_error_is_kept() {
    let (server, config) = two_sources().await;
    server.set(
        "/en/rss",
        Fixture::feed("<html><body>Service moved</body></html>"),
    );
    server.set("/wire.xml", Fixture::status(500));
    let mut text = std::fs::read_to_string(config.path()).unwrap();
    text += &format!(
        "\n[[source]]\nname = \"good\"\nurl = \"{}\"\n",
        server.url("/good")
    );
    std::fs::write(config.path(), text).unwrap();
    server.set(
        "/good",
        Fixture::feed(rss(
            "Good",
            "https://good.example/",
            &[item(
                "g",
                "https://good.example/1",
                "Fine story",
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        )),
    );

    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let feed = parse_atom(&app.get_text("/feed.atom").await);
    assert_eq!(feed.entries.len(), 1);
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let states = store.source_states().await.unwrap();
    let by_name = |n: &str| states.iter().find(|s| s.name == n).unwrap().clone();
    assert!(by_name("rfi-en").last_error.unwrap().starts_with("parse:"));
    assert_eq!(by_name("wire").last_status, Some(500));
    assert_eq!(by_name("wire").consecutive_failures, 1);
    assert!(by_name("wire").backoff_until.is_some());
    assert_eq!(by_name("good").last_error, None);
    assert_eq!(by_name("good").articles, 1);
    app.stop().await;
}

#[tokio::test]
async fn unknown_feeds_are_404_and_bad_queries_400() {
    let (_server, config) = two_sources().await;
    let app = TestApp::spawn(config.load()).await;
    for (path, status) in [
        ("/feeds/nope.atom", 404),
        ("/feeds/china-russia.rss", 404),
        ("/feed.atom?limit=0", 400),
        ("/feed.atom?limit=501", 400),
        ("/feed.atom?colour=red", 400),
        ("/feed.atom?before=garbage", 400),
        ("/feeds/china-russia.atom?any=x", 400),
        ("/healthz", 200),
        ("/feed.atom?limit=500", 200),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        if status == 400 {
            let text = response.text().await.unwrap();
            assert!(text.starts_with("bad request: "), "{text}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_scheduler_refetches_on_a_seconds_schedule() {
    let server = FeedServer::start().await;
    server.set(
        "/feed",
        Fixture::feed(rss(
            "News",
            "https://news.example/",
            &[item(
                "a",
                "https://news.example/a",
                "A",
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        ))
        .with_etag("\"v1\""),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\nschedule = \"* * * * * *\"\n",
            server.url("/feed")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    eventually(Duration::from_secs(10), || async {
        server.requests("/feed").len() >= 3
    })
    .await;
    let fetched = server.requests("/feed").len();
    assert!(
        fetched >= 3,
        "fetched {fetched} times in 10 s on a 1-second schedule"
    );
    app.stop().await;
}

#[tokio::test]
async fn real_world_feeds_are_served_back_as_valid_atom() {
    let Some(shared) = shared_dir() else { return };
    let server = FeedServer::start().await;
    let real = shared.join("fixtures/real");
    let mut sources = String::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&real).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let stem = path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .replace('.', "-")
            .to_lowercase();
        let mut fixture = Fixture::feed(read(&path));
        fixture.content_type = "application/xml";
        server.set(&format!("/{stem}"), fixture);
        sources += &format!(
            "[[source]]\nname = \"{stem}\"\nurl = \"{}\"\nschedule = \"0 0 0 1 1 *\"\n",
            server.url(&format!("/{stem}"))
        );
        names.push(stem);
    }
    assert!(names.len() >= 30, "the corpus has 32 real feeds");
    let config = TestConfig::write("", &sources);
    let reports = fetch_now(&config.load()).await;
    let ok = reports
        .iter()
        .filter(|r| matches!(r.outcome, tributary::pipeline::Outcome::Ingested { .. }))
        .count();
    assert!(
        ok >= names.len() - 2,
        "most real feeds ingest: {reports:#?}"
    );
    let app = TestApp::spawn(config.load()).await;
    let xml = app.get_text("/feed.atom?limit=500").await;
    assert_valid_atom(&xml);
    let feed = parse_atom(&xml);
    assert_eq!(feed.entries.len(), 500);
    for entry in &feed.entries {
        for link in &entry.links {
            assert!(
                link.href.starts_with("http://") || link.href.starts_with("https://"),
                "relative link {}",
                link.href
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_first_import_leaves_the_tag_index_built_by_fetch_and_by_the_daemon() {
    let (_server, config) = two_sources().await;
    let url = format!("sqlite://{}", config.db_path().display());
    // `tributary fetch` into an empty store: built before it returns.
    fetch_now(&config.load()).await;
    assert!(tag_index_sql(&url).await.is_some());

    // The daemon's first pass over an empty store: built once it is done.
    let (_server, config) = two_sources().await;
    let url = format!("sqlite://{}", config.db_path().display());
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let built = eventually(Duration::from_secs(5), || async {
        tag_index_sql(&url).await.is_some()
    })
    .await;
    assert!(built, "the daemon's first pass left no tag index");
    let xml = app.get_text("/feed.atom?any=Sport,economy").await;
    assert_eq!(parse_atom(&xml).entries.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn rewrites_clean_titles_and_links_before_tags_and_dedup() {
    // A mobile edition: " - RFI Mobile" on every title, m. links. Its
    // rewrites make its copy of a story the desktop feed's article.
    let server = FeedServer::start().await;
    let story = "https://www.rfi.fr/en/asia/20250401-wang-yi-lavrov";
    server.set(
        "/desktop",
        Fixture::feed(rss(
            "RFI",
            "https://www.rfi.fr/en/",
            &[item(
                "d1",
                story,
                "Wang Yi meets Lavrov",
                "Tue, 01 Apr 2025 10:00:00 GMT",
            )],
        )),
    );
    server.set(
        "/mobile",
        Fixture::feed(rss(
            "RFI mobile",
            "https://m.rfi.fr/en/",
            &[
                item(
                    "m1",
                    "https://m.rfi.fr/en/asia/20250401-wang-yi-lavrov",
                    "Wang Yi meets Lavrov - RFI Mobile",
                    "Tue, 01 Apr 2025 10:05:00 GMT",
                ),
                item(
                    "m2",
                    "https://m.rfi.fr/en/europe/20250401-nato",
                    "NATO ministers meet - RFI Mobile",
                    "Tue, 01 Apr 2025 11:00:00 GMT",
                ),
            ],
        )),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"desktop\"\nurl = \"{}\"\n\n\
             [[source]]\nname = \"mobile\"\nurl = \"{}\"\n\
             rewrite_title = {{ regex = \" - RFI Mobile$\", with = \"\" }}\n\
             rewrite_link = {{ regex = \"^https://m\\\\.rfi\\\\.fr/\", with = \"https://www.rfi.fr/\" }}\n\n\
             [[tag_rule]]\ntag = \"mobile-suffix\"\nregex = \"RFI Mobile\"\nfields = [\"title\"]\n",
            server.url("/desktop"),
            server.url("/mobile")
        ),
    );
    fetch_now(&config.load()).await;
    let app = TestApp::spawn(config.load()).await;
    let json: serde_json::Value = serde_json::from_str(&app.get_text("/feed.json").await).unwrap();
    let items = json["items"].as_array().unwrap();
    let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["NATO ministers meet", "Wang Yi meets Lavrov"]);
    assert_eq!(
        items[0]["url"],
        "https://www.rfi.fr/en/europe/20250401-nato"
    );
    // One article for the story, carried by both sources.
    assert_eq!(
        items[1]["_tributary"]["seen_in"],
        serde_json::json!(["desktop", "mobile"])
    );
    // Tag rules saw the rewritten title.
    let tagged = app.get_text("/feed.json?any=mobile-suffix").await;
    let tagged: serde_json::Value = serde_json::from_str(&tagged).unwrap();
    assert_eq!(tagged["items"].as_array().unwrap().len(), 0, "{tagged}");
    app.stop().await;
}

#[tokio::test]
async fn remove_selectors_take_share_bars_out_of_real_markup() {
    // FeedBurner's "feedflare" share bar, as a real feed carries it in
    // every description, and its tracking pixel.
    let Some(shared) = shared_dir() else { return };
    let doc = std::fs::read_to_string(
        shared.join("fixtures/real/pcmag_dvorak_feedburner_rss2_illegally_nested.xml"),
    )
    .unwrap();
    let server = FeedServer::start().await;
    server.set("/dvorak", Fixture::feed(doc));
    // Each in a database of its own: the same links would make them one
    // article.
    let stored = |remove: &'static str| {
        let config = TestConfig::write(
            "",
            &format!(
                "[[source]]\nname = \"dvorak\"\nurl = \"{}\"\n{remove}",
                server.url("/dvorak")
            ),
        );
        async move {
            fetch_now(&config.load()).await;
            let app = TestApp::spawn(config.load()).await;
            let json: serde_json::Value =
                serde_json::from_str(&app.get_text("/feed.json").await).unwrap();
            app.stop().await;
            json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| format!("{} {}\n", i["content_html"], i["summary"]))
                .collect::<String>()
        }
    };
    let as_sent = stored("").await;
    let cleaned = stored(
        "remove_selectors = [\"div.feedflare\", \"img[src*='feeds.feedburner.com/~r/']\"]\n",
    )
    .await;
    assert!(as_sent.contains("feeds.feedburner.com/~ff/"), "{as_sent}");
    assert!(!cleaned.contains("feeds.feedburner.com/~ff/"), "{cleaned}");
    assert!(!cleaned.contains("feeds.feedburner.com/~r/"), "{cleaned}");
    // The story itself stays.
    assert!(
        cleaned.contains("No one needs to go to this annual gadget tradeshow"),
        "{cleaned}"
    );
}
