//! An empty feed says why it is empty (docs/HTTP.md "Empty feeds"), in the
//! Atom subtitle, the JSON Feed description and on the index page: the
//! real daemon over HTTP, its real store, feeds served on 127.0.0.1.

use crate::helpers::*;
use std::time::Duration;

/// The subtitle of the served Atom at `path`, which has no entry and stays
/// valid RFC 4287.
async fn atom_reason(app: &TestApp, path: &str) -> String {
    let atom = app.get_text(path).await;
    assert_valid_atom(&atom);
    let feed = parse_atom(&atom);
    assert!(feed.entries.is_empty(), "{atom}");
    feed.description
        .unwrap_or_else(|| panic!("{path} has no subtitle:\n{atom}"))
        .content
}

/// The description of the served JSON Feed at `path`, which has no item.
async fn json_reason(app: &TestApp, path: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(&app.get_text(path).await).unwrap();
    assert_eq!(json["items"], serde_json::json!([]), "{json}");
    json["description"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} has no description: {json}"))
        .to_string()
}

/// The index page's note under the feed titled `title`, if any.
async fn index_reason(app: &TestApp, title: &str) -> Option<String> {
    let html = app.get_text("/").await;
    let item = html
        .lines()
        .find(|l| l.starts_with(&format!("<li><span class=\"title\">{title}</span>")))
        .unwrap_or_else(|| panic!("{title} is not listed:\n{html}"));
    let (_, rest) = item.split_once("<span class=\"empty\">")?;
    Some(rest.split_once("</span>").unwrap().0.to_string())
}

fn world_feed(sources: &str) -> String {
    format!("{sources}\n[[feed]]\nname = \"world\"\ntitle = \"World news\"\nany = [\"world\"]\n")
}

#[tokio::test]
async fn before_the_first_fetch_a_feed_says_its_source_was_not_fetched_yet() {
    let server = FeedServer::start().await;
    // The first fetch hangs: the feed is read while the daemon waits for it.
    server.set(
        "/slow.xml",
        Fixture::feed(rss_items(
            "Slow",
            &[("Late story", "https://slow.test/late", &["World"])],
        ))
        .with_delay(Duration::from_secs(600)),
    );
    let config = TestConfig::write(
        "timeout = \"10m\"",
        &world_feed(&format!(
            "[[source]]\nname = \"slow\"\nurl = \"{}\"\n",
            server.url("/slow.xml")
        )),
    );
    let app = TestApp::spawn(config.load()).await;
    let expected = "No articles yet: source slow has not been fetched yet.";
    assert_eq!(atom_reason(&app, "/feeds/world.atom").await, expected);
    assert_eq!(json_reason(&app, "/feeds/world.json").await, expected);
    assert_eq!(atom_reason(&app, "/feed.atom").await, expected);
    assert_eq!(
        index_reason(&app, "World news").await.as_deref(),
        Some(expected)
    );
    assert_eq!(
        index_reason(&app, "All articles").await.as_deref(),
        Some(expected)
    );
    app.stop().await;
}

#[tokio::test]
async fn when_every_source_fails_a_feed_names_them_with_their_errors() {
    let server = FeedServer::start().await;
    server.set("/a.xml", Fixture::status(503));
    server.set("/b.xml", Fixture::status(404));
    let config = TestConfig::write(
        "",
        &world_feed(&format!(
            "[[source]]\nname = \"wire-a\"\nurl = \"{}\"\n\n[[source]]\nname = \"wire-b\"\nurl = \"{}\"\n",
            server.url("/a.xml"),
            server.url("/b.xml")
        )),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let both =
        "No articles yet: every source fetched is failing (2): wire-a: HTTP 503; wire-b: HTTP 404.";
    assert_eq!(atom_reason(&app, "/feeds/world.atom").await, both);
    assert_eq!(json_reason(&app, "/feed.json").await, both);
    assert_eq!(
        atom_reason(&app, "/tags/world.atom?source=wire-a").await,
        "No articles yet: source wire-a is failing: HTTP 503."
    );
    assert_eq!(
        index_reason(&app, "World news").await.as_deref(),
        Some(both)
    );

    // The reason follows the sources' health, not only the articles: once
    // one recovers (with nothing for this feed), the feed says that.
    server.set(
        "/a.xml",
        Fixture::feed(rss_items(
            "Wire A",
            &[("Local fair", "https://a.test/fair", &["Local"])],
        )),
    );
    app.fetch_now().await;
    assert_eq!(
        atom_reason(&app, "/feeds/world.atom").await,
        "No articles: the one stored article does not match this feed (tagged any of world)."
    );
    app.stop().await;
}

#[tokio::test]
async fn when_articles_are_stored_but_none_matches_the_feed_says_so() {
    let server = FeedServer::start().await;
    server.set(
        "/news.xml",
        Fixture::feed(rss_items(
            "News",
            &[
                ("Harbour reopens", "https://news.test/harbour", &["France"]),
                (
                    "Storm passes",
                    "https://news.test/storm",
                    &["France", "Weather"],
                ),
            ],
        )),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\n\n\
             [[feed]]\nname = \"east\"\ntitle = \"China and Russia\"\nany = [\"China\", \"Russia\"]\n",
            server.url("/news.xml")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    assert_eq!(
        atom_reason(&app, "/feeds/east.atom").await,
        "No articles: none of the 2 stored articles matches this feed (tagged any of china, russia)."
    );
    assert_eq!(
        atom_reason(&app, "/tags/sport.atom").await,
        "No articles: none of the 2 stored articles matches this feed (tagged all of sport)."
    );
    assert_eq!(
        json_reason(&app, "/feed.json?none=france&source=news").await,
        "No articles: none of the 2 stored articles matches this feed (tagged none of france, from news)."
    );
    assert_eq!(
        index_reason(&app, "China and Russia").await.as_deref(),
        Some("No articles: none of the 2 stored articles matches this feed (tagged any of china, russia).")
    );

    // A feed with articles says nothing of the kind, nor does a page past
    // its last article.
    let atom = app.get_text("/feed.atom?limit=2").await;
    assert_eq!(parse_atom(&atom).entries.len(), 2);
    assert!(!atom.contains("<subtitle"), "{atom}");
    assert_eq!(index_reason(&app, "All articles").await, None);
    let json: serde_json::Value =
        serde_json::from_str(&app.get_text("/feed.json?limit=2").await).unwrap();
    assert!(json.get("description").is_none(), "{json}");
    let past_the_end = tributary::publish::encode_cursor(tributary::model::Cursor {
        published: chrono::DateTime::UNIX_EPOCH,
        id: 0,
        coverage: None,
    });
    let last = app
        .get_text(&format!("/feed.atom?before={past_the_end}"))
        .await;
    assert_valid_atom(&last);
    assert!(parse_atom(&last).entries.is_empty(), "{last}");
    assert!(!last.contains("<subtitle"), "{last}");
    app.stop().await;
}

#[tokio::test]
async fn a_source_filter_naming_a_disabled_source_says_it_is_not_fetched() {
    let server = FeedServer::start().await;
    server.set(
        "/live.xml",
        Fixture::feed(rss_items(
            "Live",
            &[("Storm passes", "https://live.test/storm", &["Weather"])],
        )),
    );
    server.set("/gone.xml", Fixture::status(410));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"live\"\nurl = \"{}\"\n\n\
             [[source]]\nname = \"gone\"\nurl = \"{}\"\n\n\
             [[source]]\nname = \"old\"\nurl = \"{}\"\nenabled = false\n",
            server.url("/live.xml"),
            server.url("/gone.xml"),
            server.url("/old.xml")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    assert_eq!(
        atom_reason(&app, "/feed.atom?source=old").await,
        "No articles: source old is not fetched: disabled in the config."
    );
    assert_eq!(
        json_reason(&app, "/feed.json?source=gone,old").await,
        "No articles: none of its sources is fetched: gone: 410 Gone: the publisher removed this feed; old: disabled in the config."
    );
    // Beside a live source, a disabled one explains nothing: the filter does.
    assert_eq!(
        atom_reason(&app, "/feed.atom?source=live,old&any=sport").await,
        "No articles: none of the stored articles matches this feed (tagged any of sport, from live, old)."
    );
    app.stop().await;
}
