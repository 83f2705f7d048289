//! Fields the parser used to lose or mangle (issue #17, "Fields read
//! wrong"): bodies of raw HTML, authors, dates, mislabelled encodings,
//! Atom categories, feeds cut off mid-document, and the parser edge cases
//! of the shared corpus that have something to show.

use crate::helpers::*;
use chrono::{DateTime, Utc};
use tributary::model::{Entry, ParsedFeed};
use tributary::parse::parse_feed;
use url::Url;

fn base() -> Url {
    Url::parse("https://feed.example/rss").unwrap()
}

fn parse(doc: &str) -> ParsedFeed {
    parse_bytes(doc.as_bytes())
}

fn parse_bytes(doc: &[u8]) -> ParsedFeed {
    parse_feed(doc, None, &base(), Utc::now())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(doc)))
}

fn one_item(item: &str) -> Entry {
    let doc = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
        <rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
             xmlns:media="http://search.yahoo.com/mrss/"
             xmlns:content="http://purl.org/rss/1.0/modules/content/">
        <channel><title>T</title><link>https://feed.example/</link>
        <item>{item}</item></channel></rss>"#
    );
    let feed = parse(&doc);
    assert_eq!(feed.entries.len(), 1, "{doc}");
    feed.entries.into_iter().next().unwrap()
}

#[test]
fn raw_html_in_a_description_is_the_body() {
    // The Guardian's shape: HTML written straight into <description>.
    let e = one_item(
        r#"<title>Story</title><link>https://news.example/1</link>
        <description><p>The minister said <a href="/more">more</a> on &lt;Tuesday&gt; &amp; later.</p><p>Second paragraph, still part of the body.</p></description>"#,
    );
    let content = e.content.as_deref().expect("a body");
    assert!(
        content.contains(r#"<p>The minister said <a href="https://feed.example/more""#),
        "{content}"
    );
    assert!(
        content.contains("<p>Second paragraph, still part of the body.</p>"),
        "{content}"
    );
    assert_eq!(
        e.summary.as_deref(),
        Some("The minister said more on <Tuesday> & later. Second paragraph, still part of the body.")
    );

    // A raw <img/> before the CDATA that holds the text.
    let e = one_item(
        r#"<title>Photo story</title><link>https://news.example/2</link>
        <description><img src="https://img.example/a.jpg" alt="a"/><![CDATA[<p>Words under the picture.</p>]]></description>"#,
    );
    let content = e.content.as_deref().expect("a body");
    assert!(
        content.contains(r#"<img src="https://img.example/a.jpg" alt="a">"#),
        "{content}"
    );
    assert!(
        content.contains("<p>Words under the picture.</p>"),
        "{content}"
    );

    // Escaped HTML and CDATA are read as before.
    let e = one_item(
        r#"<title>t</title><description>&lt;b&gt;bold&lt;/b&gt; text</description>
        <content:encoded><![CDATA[<p>full <i>text</i></p>]]></content:encoded>"#,
    );
    assert_eq!(e.content.as_deref(), Some("<p>full <i>text</i></p>"));
    assert_eq!(e.summary.as_deref(), Some("bold text"));
}

#[test]
fn authors_are_read_whole_and_from_every_place() {
    let e =
        one_item("<title>t</title><author>Donna Lu (now) and Christopher Knaus (earlier)</author>");
    assert_eq!(
        e.author.as_deref(),
        Some("Donna Lu (now) and Christopher Knaus (earlier)")
    );
    let e = one_item("<title>t</title><author>ann@example.com (Ann Smith)</author>");
    assert_eq!(e.author.as_deref(), Some("Ann Smith"));

    let e = one_item("<title>Episode 1</title><itunes:author>The Podcast Team</itunes:author>");
    assert_eq!(e.author.as_deref(), Some("The Podcast Team"));

    let e = one_item(
        "<title>t</title><author><name>Jane Doe</name><title>Science editor</title></author>",
    );
    assert_eq!(e.author.as_deref(), Some("Jane Doe"));
}

#[test]
fn a_lowercase_pubdate_is_the_date() {
    let e = one_item("<title>Video</title><pubdate>Tue, 03 Jun 2025 10:00:00 GMT</pubdate>");
    assert_eq!(
        e.published,
        Some("2025-06-03T10:00:00Z".parse::<DateTime<Utc>>().unwrap())
    );
}

#[test]
fn utf8_bytes_behind_a_latin1_declaration_are_read_as_utf8() {
    let doc = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel>\
               <item><title>Bericht veröffentlicht</title><description>Die Studie wurde veröffentlicht.</description></item>\
               </channel></rss>";
    for content_type in [None, Some("application/rss+xml; charset=ISO-8859-1")] {
        let feed = parse_feed(doc.as_bytes(), content_type, &base(), Utc::now()).unwrap();
        let e = &feed.entries[0];
        assert_eq!(e.title.as_deref(), Some("Bericht veröffentlicht"));
        assert_eq!(
            e.summary.as_deref(),
            Some("Die Studie wurde veröffentlicht.")
        );
    }
    // Real Latin-1 bytes still decode as Latin-1.
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel>\
                   <item><title>ver\xF6ffentlicht</title></item></channel></rss>";
    assert_eq!(
        parse_bytes(latin1).entries[0].title.as_deref(),
        Some("veröffentlicht")
    );
}

#[test]
fn atom_categories_are_their_terms() {
    let feed = parse(
        r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>Q</title><id>urn:q</id>
        <entry><id>urn:1</id><title>M 2.1 - 5 km N of Somewhere</title>
          <category term="Magnitude 2" label="Magnitude"/>
          <category term="rust" label=" Rust "/>
          <category term="Minecraft" label="r/Minecraft"/>
          <category term="world-news" label="World news"/>
          <category term="" label="Only a label"/>
        </entry></feed>"#,
    );
    assert_eq!(
        feed.entries[0].categories,
        [
            "Magnitude 2",
            "Rust",
            "Minecraft",
            "World news",
            "Only a label"
        ]
    );
}

#[test]
fn podcast_and_media_rss_categories_are_tags() {
    let e = one_item(
        r#"<title>Episode</title>
        <itunes:keywords>science, space ,, astronomy</itunes:keywords>
        <itunes:category text="Technology"><itunes:category text="Podcasting"/></itunes:category>
        <media:category scheme="http://search.yahoo.com/mrss/category_schema">music/rock</media:category>"#,
    );
    assert_eq!(
        e.categories,
        [
            "science",
            "space",
            "astronomy",
            "Technology",
            "Podcasting",
            "music/rock"
        ]
    );
}

/// A Mastodon-style feed that stops before `</channel>`, in the middle of
/// its fourth item.
const CUT_FEED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
    <rss version=\"2.0\"><channel><title>Toots</title><link>https://social.example/@a</link>\
    <item><guid>https://social.example/@a/1</guid><link>https://social.example/@a/1</link><description>&lt;p&gt;one&lt;/p&gt;</description><pubDate>Mon, 01 Dec 2025 10:00:00 +0000</pubDate></item>\
    <item><guid>https://social.example/@a/2</guid><link>https://social.example/@a/2</link><description>&lt;p&gt;two&lt;/p&gt;</description><pubDate>Mon, 01 Dec 2025 09:00:00 +0000</pubDate></item>\
    <item><guid>https://social.example/@a/3</guid><link>https://social.example/@a/3</link><description>&lt;p&gt;three&lt;/p&gt;</description><pubDate>Mon, 01 Dec 2025 08:00:00 +0000</pubDate></item>\
    <item><guid>https://social.example/@a/4</guid><link>https://social.exa";

#[test]
fn a_feed_cut_off_keeps_its_complete_entries() {
    for doc in [
        CUT_FEED.to_string(),
        // Complete items, but </channel> is missing.
        CUT_FEED
            .rsplit_once("<item><guid>https://social.example/@a/4")
            .unwrap()
            .0
            .to_string()
            + "</rss>",
    ] {
        let feed = parse(&doc);
        let links: Vec<_> = feed
            .entries
            .iter()
            .map(|e| e.link.as_deref().unwrap())
            .collect();
        assert_eq!(
            links,
            [
                "https://social.example/@a/1",
                "https://social.example/@a/2",
                "https://social.example/@a/3"
            ],
            "{doc}"
        );
        let warning = feed.warning.expect("the break is reported");
        assert!(warning.contains("malformed XML"), "{warning}");
    }
    // With no complete entry, it is an error as before.
    let err = parse_feed(
        b"<rss version=\"2.0\"><channel><item><title>cut",
        None,
        &base(),
        Utc::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("malformed XML"), "{err}");
}

#[tokio::test]
async fn a_cut_off_feed_is_stored_and_its_error_shown() {
    let server = FeedServer::start().await;
    server.set("/toots", Fixture::feed(CUT_FEED).with_etag("\"v1\""));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"toots\"\nurl = \"{}\"\nschedule = \"0 0 0 1 1 *\"\n",
            server.url("/toots")
        ),
    );
    fetch_now(&config.load()).await;
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let state = store
        .source_states()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "toots")
        .unwrap();
    assert_eq!(state.articles, 3, "the complete entries are stored");
    let error = state.last_error.expect("the operator sees the break");
    assert!(error.contains("malformed XML"), "{error}");
    assert_eq!(state.consecutive_failures, 0, "entries were read");
    assert_eq!(state.etag, None, "a partial body's validators are not kept");
    store.close().await;
}

/// Files of the shared corpus that have a title, a link or a body to show.
#[test]
fn edge_cases_with_something_to_show_yield_it() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("fixtures/edge/wellformed");
    // (file, what the entry must show)
    let cases: &[(&str, &str)] = &[
        (
            "namespace/rss2.0NSwithModulesNoDefNS.xml",
            "title link body date",
        ),
        (
            "namespace/rss2.0NSwithModulesNoDefNSLocalNameClash.xml",
            "title link body date",
        ),
        ("rss/item_fullitem.xml", "body"),
        ("rss/item_xhtml_body.xml", "body"),
        ("atom10/entry_link_no_href.xml", "link"),
        ("atom10/entry_link_no_href_link_priority.xml", "link"),
        ("media-rss/item_media_title1.xml", "title"),
        ("media-rss/media_group.xml", "title body"),
        ("namespace/atommathml.xml", "body"),
        ("namespace/atomsvg.xml", "body"),
        ("namespace/atomsvgdesc.xml", "body"),
        ("namespace/atomsvgtitle.xml", "body"),
        ("namespace/atomxlink.xml", "body"),
        ("namespace/rss2.0mathml.xml", "body"),
        ("namespace/rss2.0svg.xml", "body"),
        ("namespace/rss2.0svg5.xml", "body"),
        ("namespace/rss2.0svgtitle.xml", "body"),
        ("namespace/rss2.0xlink.xml", "body"),
    ];
    for (file, shows) in cases {
        let feed = parse_bytes(&read(&dir.join(file)));
        assert!(!feed.entries.is_empty(), "{file}: no entry");
        for e in &feed.entries {
            for field in shows.split(' ') {
                let has = match field {
                    "title" => e.title.is_some(),
                    "link" => e.link.is_some(),
                    "body" => e.content.is_some() || e.summary.is_some(),
                    "date" => e.published.is_some(),
                    _ => unreachable!(),
                };
                assert!(has, "{file}: no {field} in {e:?}");
            }
        }
    }
    let links: Vec<_> = parse_bytes(&read(
        &dir.join("atom10/entry_link_no_href_link_priority.xml"),
    ))
    .entries
    .into_iter()
    .map(|e| e.link.unwrap())
    .collect();
    assert_eq!(
        links,
        [
            "http://www.example.com/alternate",
            "http://www.example.com/alternate"
        ]
    );
}

#[test]
fn inline_svg_and_mathml_survive_sanitizing_without_script() {
    let e = one_item(
        r#"<title>Chart</title><description><![CDATA[<svg width="10" height="10" onload="alert(1)"><script>alert(2)</script><circle cx="5" cy="5" r="4" fill="red"/><a href="javascript:alert(3)"><text>x</text></a><foreignObject><iframe src="https://evil.example/"></iframe></foreignObject></svg><math><mi>a</mi><mo>+</mo><mi>b</mi></math>]]></description>"#,
    );
    let content = e.content.as_deref().expect("a body");
    assert!(content.contains("<circle"), "{content}");
    assert!(content.contains("<mi>a</mi>"), "{content}");
    for banned in [
        "onload",
        "script",
        "alert",
        "javascript",
        "iframe",
        "foreignObject",
    ] {
        assert!(!content.contains(banned), "{banned} survived: {content}");
    }
}

const NEWS: &str = "<rss version=\"2.0\"><channel><title>News</title><link>https://news.example/</link>{items}</channel></rss>";

fn news_item(n: u32, hours_ago: i64) -> String {
    let date = (Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc2822();
    format!("<item><title>News {n}</title><link>https://news.example/{n}</link><pubDate>{date}</pubDate></item>")
}

fn archive(items: &[u32]) -> String {
    let items: String = items
        .iter()
        .map(|n| {
            format!(
                "<item><title>Archive {n}</title><link>https://archive.example/{n}</link></item>"
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>Archive</title><link>https://archive.example/</link>{items}</channel></rss>")
}

#[tokio::test]
async fn undated_entries_of_a_first_fetch_rank_below_dated_news() {
    let server = FeedServer::start().await;
    let news: String = [news_item(1, 2), news_item(2, 5)].concat();
    server.set("/news", Fixture::feed(NEWS.replace("{items}", &news)));
    server.set("/archive", Fixture::feed(archive(&[3, 2, 1])));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\nschedule = \"0 0 0 1 1 *\"\n\
             [[source]]\nname = \"archive\"\nurl = \"{}\"\nschedule = \"0 0 0 1 1 *\"\n",
            server.url("/news"),
            server.url("/archive")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let titles_and_dates = |feed: feed_rs::model::Feed| -> Vec<(String, DateTime<Utc>)> {
        feed.entries
            .into_iter()
            .map(|e| (e.title.unwrap().content, e.published.or(e.updated).unwrap()))
            .collect()
    };
    let first = titles_and_dates(parse_atom(&app.get_text("/feed.atom").await));
    let titles: Vec<_> = first.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["News 1", "News 2", "Archive 3", "Archive 2", "Archive 1"],
        "the backlog sits below the news, in its feed's order"
    );

    // Refetched, the backlog keeps its dates; a new undated entry is news.
    server.set("/archive", Fixture::feed(archive(&[4, 3, 2, 1])));
    app.fetch_now().await;
    let second = titles_and_dates(parse_atom(&app.get_text("/feed.atom").await));
    assert_eq!(second[0].0, "Archive 4", "new, so dated when first seen");
    assert_eq!(
        &second[1..],
        &first[..],
        "dates are stable across refetches"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_first_fetch_is_told_apart_on_every_backend() {
    for db in crate::store::backends().await {
        let store = db.store().await;
        let [id] = crate::store::with_sources(&store, &["s"]).await[..] else {
            panic!("one source expected")
        };
        assert!(!store.source_has_articles(id).await.unwrap(), "{}", db.name);
        let entry = Entry {
            title: Some("Story".into()),
            link: Some("https://s.example/1".into()),
            ..Entry::default()
        };
        let record = tributary::store::FetchRecord {
            at: Utc::now(),
            next_fetch_at: Utc::now(),
            ..Default::default()
        };
        let article = tributary::dedup::prepare("s", entry, Vec::new());
        store.ingest(id, &[article], &record).await.unwrap();
        assert!(store.source_has_articles(id).await.unwrap(), "{}", db.name);
        store.close().await;
    }
}
