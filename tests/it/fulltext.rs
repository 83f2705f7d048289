//! Full text for truncated feeds (a source's `full_text`, docs/CONFIG.md
//! "Full text"), end to end: feeds of summaries and their article pages
//! (navigation, ads, comments and related links around the story) served
//! from 127.0.0.1, robots.txt allowing and disallowing, and pages that are
//! slow, huge, not HTML or gone; on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::store::{backends, TestDb};
use chrono::{DateTime, TimeDelta, Utc};
use tributary::clock::Clock;
use tributary::config::Config;
use tributary::model::PageOutcome;
use tributary::pipeline::Outcome;

const NOW: &str = "2026-11-28T12:00:00Z";

/// The story's own paragraphs: what extraction must find.
const STORY: [&str; 4] = [
    "President Zelensky met regional leaders in Kyiv on Friday to discuss the reconstruction of the power grid, which was damaged by months of strikes.",
    "The talks, which lasted more than six hours, ended with an agreement on financing new substations before the winter and on sharing spare transformers between neighbouring regions.",
    "Engineers say that the most damaged lines in the east will take at least two more years to rebuild, and that the pace depends on how quickly equipment can be delivered from abroad.",
    "Local officials welcomed the plan but warned that villages near the front line would remain without reliable power for the coming months, whatever is decided in the capital.",
];

/// A real-looking article page: the story inside a site's navigation, ads,
/// a comment thread and related links.
fn article_page(title: &str) -> String {
    let story: String = STORY.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | World News</title>
<script>window.ads = [];</script><link rel="stylesheet" href="/site.css"></head>
<body>
<header class="site-header"><nav class="main-nav"><ul>
  <li><a href="/">Home</a></li><li><a href="/world">World</a></li>
  <li><a href="/business">Business</a></li><li><a href="/sport">Sport</a></li>
  <li><a href="/subscribe">Subscribe for unlimited access</a></li></ul></nav></header>
<div class="ad-banner sponsored"><a href="https://ads.example/click">Buy cheap flights now with BannerAirline</a></div>
<main><article class="article-body">
<h1>{title}</h1><p class="byline">By A. Reporter</p>
<img src="/images/grid.jpg" alt="Workers repair a power line">
{story}
</article>
<aside class="related"><h2>Related</h2><ul>
  <li><a href="/world/1">RelatedHeadline one about something else</a></li>
  <li><a href="/world/2">RelatedHeadline two about another thing</a></li></ul></aside>
<section id="comments" class="comments"><h2>Comments</h2>
  <div class="comment"><p>CommenterBob says: first! this is a terrible article.</p></div>
  <div class="comment"><p>CommenterAlice says: I disagree with Bob entirely.</p></div>
</section></main>
<footer class="site-footer"><p>Copyright World News. Cookie policy. Privacy.</p></footer>
<script>trackPageView();</script>
</body></html>"#
    )
}

fn html(body: impl Into<Vec<u8>>) -> Fixture {
    Fixture {
        content_type: "text/html; charset=utf-8",
        ..Fixture::feed(body)
    }
}

/// An RSS feed of `(title, link)` items carrying a one-line summary only.
fn summaries(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(title, link)| {
            format!(
                "<item><title>{title}</title><link>{link}</link><guid>{link}</guid>\
                 <description>Leaders met to discuss the grid.</description>\
                 <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>World</title>\
         <link>https://example.org/</link>{items}</channel></rss>"
    )
}

/// A config on `db` with `[daemon]` lines `daemon` and the rest `body`.
fn config_on(db: &TestDb, daemon: &str, body: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    let text = format!(
        "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n{daemon}\n{body}",
        db.url
    );
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    (dir, config)
}

fn entries_of(atom: &str) -> Vec<feed_rs::model::Entry> {
    parse_atom(atom).entries
}

fn body_of(entry: &feed_rs::model::Entry) -> String {
    entry
        .content
        .as_ref()
        .and_then(|c| c.body.clone())
        .unwrap_or_default()
}

/// The daemon serves the story (not the site around it) for entries that
/// carried a summary, tag rules see the full body, the page under a
/// robots.txt `Disallow` is never requested, and a refetch of the feed
/// requests no page again.
#[tokio::test]
async fn summaries_become_full_articles_fetched_once_and_tagged_from_their_bodies() {
    for db in backends().await {
        let server = FeedServer::start().await;
        let grid = server.url("/world/grid");
        let talks = server.url("/world/talks");
        let private = server.url("/private/memo");
        server.set(
            "/feed.xml",
            Fixture::feed(summaries(&[
                ("Grid talks in Kyiv", &grid),
                ("Regional talks", &talks),
                ("A private memo", &private),
            ])),
        );
        server.set("/world/grid", html(article_page("Grid talks in Kyiv")));
        server.set("/world/talks", html(article_page("Regional talks")));
        server.set("/private/memo", html(article_page("A private memo")));
        server.set(
            "/robots.txt",
            Fixture {
                content_type: "text/plain",
                ..Fixture::feed("User-agent: *\nDisallow: /private/\n")
            },
        );
        let (dir, config) = config_on(
            &db,
            "",
            &format!(
                "[[source]]\nname = \"world\"\nurl = \"{}\"\nfull_text = \"auto\"\n\
                 [[tag_rule]]\ntag = \"Ukraine\"\nany = [\"Zelensky\"]\n",
                server.url("/feed.xml")
            ),
        );
        let config_path = dir.path().join("tributary.toml");
        let (ok, out) = tributary(&config_path, &["fetch"]).await;
        assert!(ok && out.contains("3 entries"), "{}: {out}", db.name);
        assert_eq!(server.requests("/robots.txt").len(), 1, "{}", db.name);
        assert_eq!(server.requests("/world/grid").len(), 1, "{}", db.name);
        assert_eq!(server.requests("/world/talks").len(), 1, "{}", db.name);
        assert!(server.requests("/private/memo").is_empty(), "{}", db.name);
        // The feed again: its pages are not.
        fetch_now(&config).await;
        assert_eq!(server.requests("/feed.xml").len(), 2);
        assert_eq!(server.requests("/world/grid").len(), 1, "{}", db.name);
        assert_eq!(server.requests("/world/talks").len(), 1, "{}", db.name);

        // `tributary run`: the daemon fetches once more and serves them.
        let app = TestApp::spawn(config.clone()).await;
        app.fetch_now().await;
        let atom = app.get_text("/feed.atom").await;
        app.stop().await;
        assert_eq!(server.requests("/world/grid").len(), 1, "{}", db.name);
        let entries = entries_of(&atom);
        assert_eq!(entries.len(), 3, "{}: {atom}", db.name);
        for entry in &entries {
            let title = entry.title.as_ref().unwrap().content.clone();
            let body = body_of(entry);
            let tags: Vec<String> = entry.categories.iter().map(|c| c.term.clone()).collect();
            if title == "A private memo" {
                assert!(!body.contains("substations"), "{}: {body}", db.name);
                assert!(tags.is_empty(), "{}: {tags:?}", db.name);
                continue;
            }
            for paragraph in STORY {
                assert!(body.contains(paragraph), "{}: {title}: {body}", db.name);
            }
            for chrome in [
                "Subscribe for unlimited access",
                "BannerAirline",
                "CommenterBob",
                "RelatedHeadline",
                "Cookie policy",
                "trackPageView",
            ] {
                assert!(!body.contains(chrome), "{}: {chrome} in {body}", db.name);
            }
            // Relative URLs resolve against the page.
            assert!(
                body.contains(&server.url("/images/grid.jpg")),
                "{}: {body}",
                db.name
            );
            assert_eq!(tags, ["ukraine"], "{}: {title}", db.name);
        }
        let (ok, out) = tributary(&config_path, &["sources"]).await;
        assert!(ok, "{out}");
        assert!(
            out.contains("pages: 2 extracted, 1 kept the feed's text, 0 retrying (last page error: disallowed by robots.txt)"),
            "{}: {out}",
            db.name
        );
        let (ok, out) = tributary(&config_path, &["explain", &grid]).await;
        assert!(ok, "{out}");
        assert!(
            out.contains("full text  the body is the page's main text; page fetched"),
            "{}: {out}",
            db.name
        );
        let (ok, out) = tributary(&config_path, &["explain", &private]).await;
        assert!(ok, "{out}");
        assert!(
            out.contains("full text  the feed's text kept: disallowed (disallowed by robots.txt)"),
            "{}: {out}",
            db.name
        );
    }
}

/// Runs the binary with `args` and the config at `config`, off the test's
/// runtime (which serves the pages): whether it succeeded, and its output.
async fn tributary(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .env("COLUMNS", "400")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A slow page (over `timeout`), one over `max_body`, a PDF and a page
/// that is gone leave their articles as the feed had them, each with its
/// reason kept; only the slow one is tried again, after its backoff, and
/// then its full text replaces the summary.
#[tokio::test]
async fn pages_that_fail_leave_the_feeds_text_and_only_passing_failures_are_retried() {
    let server = FeedServer::start().await;
    let [slow, huge, pdf, gone] = ["/slow", "/huge", "/report.pdf", "/gone"].map(|p| server.url(p));
    server.set(
        "/feed.xml",
        Fixture::feed(summaries(&[
            ("Slow", &slow),
            ("Huge", &huge),
            ("Pdf", &pdf),
            ("Gone", &gone),
        ])),
    );
    server.set(
        "/slow",
        html(article_page("Slow")).with_delay(std::time::Duration::from_secs(5)),
    );
    let padding = "<div class=\"ad\">filler</div>".repeat(20_000);
    server.set("/huge", html(article_page(&format!("Huge {padding}"))));
    server.set(
        "/report.pdf",
        Fixture {
            content_type: "application/pdf",
            ..Fixture::feed(b"%PDF-1.7 not a page".to_vec())
        },
    );
    server.set("/gone", Fixture::status(404));
    // No robots.txt (404): everything is allowed.
    let config = TestConfig::write(
        "timeout = \"1s\"\nmax_body = \"256KiB\"",
        &format!(
            "[[source]]\nname = \"world\"\nurl = \"{}\"\nfull_text = \"always\"\n",
            server.url("/feed.xml")
        ),
    );
    let clock = Clock::manual(NOW.parse::<DateTime<Utc>>().unwrap());
    let reports = fetch_now_with_clock(&config.load(), &clock).await;
    assert!(
        matches!(reports[0].outcome, Outcome::Ingested { entries: 4, .. }),
        "{reports:?}"
    );
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let outcome = |url: String| {
        let store = store.clone();
        async move { store.article_page(&url).await.unwrap().unwrap() }
    };
    let slow_page = outcome(slow.clone()).await;
    assert_eq!(slow_page.outcome, PageOutcome::Failed);
    assert_eq!(slow_page.error.as_deref(), Some("timed out"));
    assert!(slow_page.next_attempt_at.is_some());
    let huge_page = outcome(huge.clone()).await;
    assert_eq!(huge_page.outcome, PageOutcome::TooLarge);
    assert!(huge_page.next_attempt_at.is_none());
    let pdf_page = outcome(pdf.clone()).await;
    assert_eq!(pdf_page.outcome, PageOutcome::NotHtml);
    let gone_page = outcome(gone.clone()).await;
    assert_eq!(
        (
            gone_page.outcome,
            gone_page.status,
            gone_page.next_attempt_at
        ),
        (PageOutcome::Failed, Some(404), None)
    );
    store.close().await;

    // A refresh before the slow page's backoff ends fetches no page.
    clock.advance(TimeDelta::minutes(10));
    fetch_now_with_clock(&config.load(), &clock).await;
    for path in ["/slow", "/huge", "/report.pdf", "/gone"] {
        assert_eq!(server.requests(path).len(), 1, "{path}");
    }
    // After it, the slow page (fast now) is fetched again and extracted.
    server.set("/slow", html(article_page("Slow")));
    clock.advance(TimeDelta::minutes(30));
    fetch_now_with_clock(&config.load(), &clock).await;
    assert_eq!(server.requests("/slow").len(), 2);
    for path in ["/huge", "/report.pdf", "/gone"] {
        assert_eq!(server.requests(path).len(), 1, "{path}");
    }
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    let atom = app.get_text("/feed.atom").await;
    app.stop().await;
    for entry in entries_of(&atom) {
        let title = entry.title.as_ref().unwrap().content.clone();
        let body = body_of(&entry);
        let summary = entry.summary.map(|s| s.content).unwrap_or_default();
        if title == "Slow" {
            assert!(body.contains(STORY[2]), "{body}");
        } else {
            assert!(!body.contains(STORY[2]), "{title}: {body}");
            assert!(summary.contains("Leaders met"), "{title}: {summary}");
        }
    }
}

/// The extractor against the page the tests serve, directly: the story's
/// paragraphs in order, none of the site around them.
#[test]
fn extraction_keeps_the_story_and_drops_the_site_around_it() {
    let base = url::Url::parse("https://news.example/world/grid").unwrap();
    let page = article_page("Grid talks");
    let body = tributary::fulltext::extract_main_text(page.as_bytes(), None, &base, false)
        .unwrap()
        .unwrap();
    let at: Vec<usize> = STORY.iter().map(|p| body.find(p).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{body}");
    for chrome in [
        "Subscribe",
        "BannerAirline",
        "CommenterAlice",
        "RelatedHeadline",
        "<script",
    ] {
        assert!(!body.contains(chrome), "{chrome}: {body}");
    }
}

/// One outlet's summary and another's full copy of the same story, under
/// other links and titles, are two articles without full text and one
/// (the near-duplicate clustering compared the full body) with it.
#[tokio::test]
async fn full_bodies_let_near_duplicate_clustering_merge_a_summarys_story() {
    for full_text in ["never", "auto"] {
        let server = FeedServer::start().await;
        let page = server.url("/world/grid");
        server.set(
            "/summaries.xml",
            Fixture::feed(summaries(&[("Grid talks in Kyiv", &page)])),
        );
        server.set("/world/grid", html(article_page("Grid talks in Kyiv")));
        let wire = format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>\
             <link>https://wire.example/</link><item><title>Kyiv agrees grid plan</title>\
             <link>https://wire.example/kyiv-grid</link><guid>wire-1</guid>\
             <description>{}</description>\
             <pubDate>Fri, 27 Nov 2026 11:00:00 GMT</pubDate></item></channel></rss>",
            STORY.join(" ")
        );
        server.set("/wire.xml", Fixture::feed(wire));
        let config = TestConfig::write(
            "",
            &format!(
                "[[source]]\nname = \"outlet\"\nurl = \"{}\"\nfull_text = \"{full_text}\"\n\
                 [[source]]\nname = \"wire\"\nurl = \"{}\"\n",
                server.url("/summaries.xml"),
                server.url("/wire.xml")
            ),
        );
        let app = TestApp::spawn(config.load()).await;
        app.wait_fetched().await;
        let entries = entries_of(&app.get_text("/feed.atom").await);
        let metrics = app.get_text("/metrics").await;
        app.stop().await;
        if full_text == "auto" {
            let labels = [("source", "outlet"), ("outcome", "extracted")];
            let pages = sample(&metrics, "tributary_article_pages_total", &labels);
            assert_eq!(pages, Some(1.0), "{metrics}");
        }
        let expected = if full_text == "never" { 2 } else { 1 };
        assert_eq!(entries.len(), expected, "full_text = {full_text}");
    }
}

/// Pages are the feed's choice: one may be no more private than the feed's
/// own address. A feed read from disk (no address: the strictest, as a
/// public feed) cannot send tributary to this host, neither for the page
/// nor for its robots.txt; `allow_private_redirects = true` lets it.
#[tokio::test]
async fn a_feed_cannot_send_page_fetches_to_a_more_private_address() {
    let server = FeedServer::start().await;
    let page = server.url("/world/grid");
    server.set("/world/grid", html(article_page("Grid talks in Kyiv")));
    for allow in [false, true] {
        let config = TestConfig::write(
            "",
            &format!(
                "[[source]]\nname = \"disk\"\nurl = \"file:feed.xml\"\nfull_text = \"always\"\n\
                 allow_private_redirects = {allow}\n"
            ),
        );
        std::fs::write(
            config.dir.path().join("feed.xml"),
            summaries(&[("Grid talks in Kyiv", &page)]),
        )
        .unwrap();
        fetch_now(&config.load()).await;
        let store = tributary::app::open_store(&config.load()).await.unwrap();
        let record = store.article_page(&page).await.unwrap().unwrap();
        store.close().await;
        if allow {
            assert_eq!(record.outcome, PageOutcome::Extracted);
            assert_eq!(server.requests("/world/grid").len(), 1);
        } else {
            assert_eq!(record.outcome, PageOutcome::Failed);
            let error = record.error.unwrap_or_default();
            assert!(
                error.starts_with("page at 127.0.0.1 refused: a loopback address"),
                "{error}"
            );
            assert_eq!(record.next_attempt_at, None, "refusals are final");
            assert!(server.requests("/world/grid").is_empty());
            assert!(server.requests("/robots.txt").is_empty());
        }
    }
}

/// An Atom feed of one entry carrying a summary, updated at `updated`.
fn one_updated_entry(link: &str, updated: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>World</title>\
         <id>urn:world</id><updated>{updated}</updated>\
         <entry><title>Grid talks in Kyiv</title><id>urn:grid</id><link href=\"{link}\"/>\
         <published>2026-11-27T10:00:00Z</published><updated>{updated}</updated>\
         <summary>Leaders met to discuss the grid.</summary></entry></feed>"
    )
}

/// A page is read once per article, and again only when its entry says it
/// was updated: conditionally (a 304 keeps the body read before), at most
/// once an hour, and a re-read that fails keeps the body too; on both
/// backends.
#[tokio::test]
async fn an_updated_entry_rereads_its_page_conditionally() {
    for db in backends().await {
        let server = FeedServer::start().await;
        let page = server.url("/world/grid");
        let feed = |updated: &str| Fixture::feed(one_updated_entry(&page, updated));
        server.set("/feed.xml", feed("2026-11-27T10:00:00Z"));
        server.set(
            "/world/grid",
            html(article_page("Grid talks")).with_etag("\"v1\""),
        );
        let (_dir, config) = config_on(
            &db,
            "",
            &format!(
                "[[source]]\nname = \"world\"\nurl = \"{}\"\nfull_text = \"auto\"\n",
                server.url("/feed.xml")
            ),
        );
        let clock = Clock::manual(NOW.parse::<DateTime<Utc>>().unwrap());
        let body = |clock: Clock| {
            let config = config.clone();
            async move {
                let app = TestApp::spawn_with_clock(config, clock).await;
                let atom = app.get_text("/feed.atom").await;
                app.stop().await;
                body_of(&entries_of(&atom)[0])
            }
        };
        fetch_now_with_clock(&config, &clock).await;
        assert_eq!(server.requests("/world/grid").len(), 1, "{}", db.name);
        assert!(body(clock.clone()).await.contains(STORY[0]), "{}", db.name);

        // Not updated: not read again, however long after.
        clock.advance(TimeDelta::hours(3));
        fetch_now_with_clock(&config, &clock).await;
        assert_eq!(server.requests("/world/grid").len(), 1, "{}", db.name);

        // Updated: read again with the page's validators; the 304 keeps
        // the body.
        server.set("/feed.xml", feed("2026-11-28T14:00:00Z"));
        fetch_now_with_clock(&config, &clock).await;
        let reads = server.requests("/world/grid");
        assert_eq!(reads.len(), 2, "{}", db.name);
        assert_eq!(reads[1].headers["if-none-match"], "\"v1\"", "{}", db.name);
        assert!(body(clock.clone()).await.contains(STORY[0]), "{}", db.name);

        // Updated again within the hour: not yet; after it, the page has
        // changed and its new text replaces the old.
        let corrected = article_page("Grid talks").replace(
            "lasted more than six hours",
            "lasted more than seven hours (corrected)",
        );
        server.set("/world/grid", html(corrected).with_etag("\"v2\""));
        server.set("/feed.xml", feed("2026-11-28T14:30:00Z"));
        clock.advance(TimeDelta::minutes(30));
        fetch_now_with_clock(&config, &clock).await;
        assert_eq!(server.requests("/world/grid").len(), 2, "{}", db.name);
        clock.advance(TimeDelta::minutes(31));
        fetch_now_with_clock(&config, &clock).await;
        assert_eq!(server.requests("/world/grid").len(), 3, "{}", db.name);
        let text = body(clock.clone()).await;
        assert!(
            text.contains("seven hours (corrected)"),
            "{}: {text}",
            db.name
        );

        // A re-read that fails keeps the corrected body.
        server.set("/world/grid", Fixture::status(503));
        server.set("/feed.xml", feed("2026-11-28T18:00:00Z"));
        clock.advance(TimeDelta::hours(2));
        fetch_now_with_clock(&config, &clock).await;
        assert_eq!(server.requests("/world/grid").len(), 4, "{}", db.name);
        let text = body(clock.clone()).await;
        assert!(
            text.contains("seven hours (corrected)"),
            "{}: {text}",
            db.name
        );
    }
}

/// A page that names its encoding only in a `<meta>` (a windows-1252 site
/// whose server sends a bare `text/html`) reads as the site wrote it.
#[tokio::test]
async fn a_pages_meta_charset_is_honoured() {
    let server = FeedServer::start().await;
    let page = server.url("/monde/kyiv");
    server.set(
        "/feed.xml",
        Fixture::feed(one_updated_entry(&page, "2026-11-27T10:00:00Z")),
    );
    let french = article_page("Réunion à Kyiv")
        .replace(
            "<meta charset=\"utf-8\">",
            "<meta charset=\"windows-1252\">",
        )
        .replace("met regional leaders", "a reçu les élus régionaux");
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&french);
    assert!(!unmappable);
    server.set(
        "/monde/kyiv",
        Fixture {
            content_type: "text/html",
            ..Fixture::feed(bytes.into_owned())
        },
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"monde\"\nurl = \"{}\"\nfull_text = \"auto\"\n",
            server.url("/feed.xml")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.fetch_now().await;
    let atom = app.get_text("/feed.atom").await;
    app.stop().await;
    let body = body_of(&entries_of(&atom)[0]);
    assert!(body.contains("a reçu les élus régionaux"), "{body}");
}
