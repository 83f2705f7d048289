//! What the server tells readers about a view's freshness.

use crate::helpers::*;
use tributary::clock::Clock;

fn feed_with(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(title, date)| {
            let slug = title.to_lowercase().replace(' ', "-");
            format!(
                "<item><title>{title}</title><link>https://news.example/{slug}</link>\
                 <guid>https://news.example/{slug}</guid><description>About {title}.</description>\
                 <pubDate>{date}</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>\
         <link>https://news.example/</link>{items}</channel></rss>"
    )
}

async fn get_if_modified_since(app: &TestApp, path: &str, since: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .header("if-modified-since", since)
        .send()
        .await
        .unwrap()
}

/// A reader that revalidates with If-Modified-Since alone must see a story
/// that arrives today with an older date: Last-Modified is when the view
/// changed, not its newest entry's date.
#[tokio::test]
async fn an_old_dated_story_arriving_later_changes_last_modified() {
    let server = FeedServer::start().await;
    server.set(
        "/news.xml",
        Fixture::feed(feed_with(&[(
            "Fresh news",
            "Fri, 27 Nov 2026 10:00:00 GMT",
        )])),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\nschedule = \"0 0 1 1 *\"\n",
            server.url("/news.xml")
        ),
    );
    let clock = Clock::manual(chrono::Utc::now());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    app.wait_fetched().await;

    let first = app.get("/feed.atom").await;
    assert_eq!(first.status(), 200);
    let last_modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    let stamped = httpdate::parse_http_date(&last_modified).unwrap();
    assert!(
        stamped > httpdate::parse_http_date("Fri, 27 Nov 2026 10:00:00 GMT").unwrap(),
        "Last-Modified is when the view was stored, not the entry's date: {last_modified}"
    );
    assert_eq!(
        get_if_modified_since(&app, "/feed.atom", &last_modified)
            .await
            .status(),
        304
    );

    // HTTP dates have one-second resolution: the change must land in a
    // later second than the validator the reader holds.
    clock.advance(chrono::TimeDelta::seconds(2));
    server.set(
        "/news.xml",
        Fixture::feed(feed_with(&[
            ("Fresh news", "Fri, 27 Nov 2026 10:00:00 GMT"),
            ("Archive story", "Mon, 02 Mar 2020 08:00:00 GMT"),
        ])),
    );
    app.fetch_now().await;

    let after = get_if_modified_since(&app, "/feed.atom", &last_modified).await;
    assert_eq!(
        after.status(),
        200,
        "the view changed since {last_modified}"
    );
    let newer = after.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(httpdate::parse_http_date(&newer).unwrap() > stamped);
    let body = after.text().await.unwrap();
    assert!(body.contains("Archive story"), "{body}");

    // Nothing changed since: the newer validator is current.
    assert_eq!(
        get_if_modified_since(&app, "/feed.atom", &newer)
            .await
            .status(),
        304
    );
    // The same on a second process reading the same database (equal
    // content, equal Last-Modified on every instance).
    let again = TestApp::spawn(config.load()).await;
    let other = again.get("/feed.atom").await;
    assert_eq!(other.headers()["last-modified"], newer.as_str());
    again.stop().await;
    app.stop().await;
}

/// RSS `<ttl>` asks for at most one fetch an hour; a 304 (which has no body
/// to say it again) must not bring the source back to every five minutes.
#[tokio::test]
async fn a_304_keeps_the_polling_floor_the_last_full_response_set() {
    let server = FeedServer::start().await;
    let body = feed_with(&[("Fresh news", "Fri, 27 Nov 2026 10:00:00 GMT")])
        .replace("<channel>", "<channel><ttl>60</ttl>");
    server.set("/news.xml", Fixture::feed(body).with_etag("\"v1\""));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\nschedule = \"*/5 * * * *\"\n",
            server.url("/news.xml")
        ),
    );
    let loaded = config.load();
    let floor = chrono::TimeDelta::minutes(59);

    let first = fetch_now(&loaded).await;
    assert_eq!(first[0].status, Some(200));
    assert!(first[0].next_fetch_at - chrono::Utc::now() > floor);

    for _ in 0..2 {
        let again = fetch_now(&loaded).await;
        assert_eq!(again[0].status, Some(304), "{again:?}");
        let next = again[0].next_fetch_at;
        assert!(
            next - chrono::Utc::now() > floor,
            "after a 304 the <ttl> floor still holds: next fetch at {next}"
        );
    }
    let store = tributary::app::open_store(&loaded).await.unwrap();
    let state = store.source_states().await.unwrap().remove(0);
    assert!(state.next_fetch_at.unwrap() - chrono::Utc::now() > floor);
    store.close().await;

    // A 304's own cache headers refresh the header part of the floor; the
    // <ttl> of the last body still holds beside them.
    server.set(
        "/news.xml",
        Fixture::feed(feed_with(&[(
            "Fresh news",
            "Fri, 27 Nov 2026 10:00:00 GMT",
        )]))
        .with_etag("\"v1\"")
        .with_header("cache-control", "max-age=7200"),
    );
    let with_header = fetch_now(&loaded).await;
    assert_eq!(with_header[0].status, Some(304));
    assert!(with_header[0].next_fetch_at - chrono::Utc::now() > chrono::TimeDelta::minutes(119));
}

fn tributary(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTARY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tributary {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Export then import keeps every source's name (whatever its feed's title),
/// exact tags, schedule and enabled flag, so `[[feed]] sources` still match.
#[tokio::test(flavor = "multi_thread")]
async fn opml_export_then_import_keeps_names_tags_and_schedules() {
    let server = FeedServer::start().await;
    let titled = |title: &str| {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title}</title>\
             <link>https://news.example/</link></channel></rss>"
        )
    };
    server.set("/guardian.xml", Fixture::feed(titled("The Guardian")));
    server.set("/novosti.xml", Fixture::feed(titled("Последние новости")));
    server.set(
        "/long.xml",
        Fixture::feed(titled(
            "Department of Extraordinarily Long Publication Titles Weekly",
        )),
    );
    let sources = format!(
        "[[source]]\nname = \"guardian-us\"\nurl = \"{}\"\ntags = [\"News/World\", \"a, b\", \"UK\"]\n\n\
         [[source]]\nname = \"novosti\"\nurl = \"{}\"\nschedule = \"0 */2 * * *\"\n\n\
         [[source]]\nname = \"long_one\"\nurl = \"{}\"\nenabled = false\n\n\
         [[feed]]\nname = \"picked\"\ntitle = \"Picked\"\nsources = [\"guardian-us\", \"novosti\", \"long_one\"]\n",
        server.url("/guardian.xml"),
        server.url("/novosti.xml"),
        server.url("/long.xml"),
    );
    let original = TestConfig::write("", &sources);
    let path = original.path();
    let path = path.to_str().unwrap();
    tributary(&["fetch", "-c", path]);
    let exported = tributary(&["opml", "export", "-c", path]);
    assert!(
        exported.contains("The Guardian"),
        "titles still shown: {exported}"
    );

    let target = TestConfig::write("", "");
    let opml = target.dir.path().join("export.opml");
    std::fs::write(&opml, &exported).unwrap();
    let target_path = target.path();
    tributary(&[
        "opml",
        "import",
        opml.to_str().unwrap(),
        "-c",
        target_path.to_str().unwrap(),
    ]);

    let summary = |config: tributary::config::Config| {
        let mut sources: Vec<_> = config
            .sources
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.url.to_string(),
                    s.tags.clone(),
                    s.schedule.to_string(),
                    s.enabled,
                )
            })
            .collect();
        sources.sort();
        sources
    };
    assert_eq!(summary(target.load()), summary(original.load()));
    // The feed definition that names them is valid in the new config.
    let mut text = std::fs::read_to_string(&target_path).unwrap();
    text.push_str("\n[[feed]]\nname = \"picked\"\ntitle = \"Picked\"\nsources = [\"guardian-us\", \"novosti\", \"long_one\"]\n");
    std::fs::write(&target_path, text).unwrap();
    tributary(&["check", "-c", target_path.to_str().unwrap()]);
}
