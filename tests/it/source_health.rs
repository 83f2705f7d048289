//! The operator's view (issue #25): each source's fetch history and health
//! events, written with its refreshes and pruned with retention on both
//! backends; `/health.atom` and `.json`, `/sources/{name}` and the index
//! page's 30-day charts through the real daemon; and the pages in headless
//! Chromium at a desktop's and a phone's width.

use crate::helpers::*;
use crate::store::{backends, with_sources};
use chrono::{DateTime, TimeDelta, Utc};
use std::path::Path;
use std::time::Duration;
use tributary::clock::Clock;
use tributary::model::{HealthKind, NewArticle};
use tributary::store::{day_of, FetchRecord, HealthPolicy};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
}

const DAY: i64 = 86_400;

fn entry(key: &str) -> NewArticle {
    NewArticle {
        entry_key: format!("guid:{key}"),
        canonical_url: Some(format!("https://news.test/{key}")),
        content_key: None,
        uid: format!("urn:test:{key}"),
        fingerprint: format!("fp-{key}"),
        link: Some(format!("https://news.test/{key}")),
        title: format!("Story {key}"),
        summary: Some(format!("About {key}.")),
        content: None,
        author: None,
        published: Some(at(0)),
        updated: None,
        tags: Vec::new(),
        tag_origins: Vec::new(),
        language: None,
    }
}

fn ok(at_: DateTime<Utc>) -> FetchRecord {
    FetchRecord {
        at: at_,
        status: Some(200),
        next_fetch_at: at_ + TimeDelta::minutes(15),
        elapsed: Duration::from_millis(120),
        bytes: 2_000,
        ..FetchRecord::default()
    }
}

fn failed(at_: DateTime<Utc>) -> FetchRecord {
    FetchRecord {
        status: Some(500),
        error: Some("HTTP 500".into()),
        failed: true,
        bytes: 0,
        ..ok(at_)
    }
}

#[tokio::test]
async fn every_fetch_is_in_the_history_and_state_changes_are_events_on_both_backends() {
    for db in backends().await {
        let policy = HealthPolicy {
            failing_after: 2,
            quiet_after: TimeDelta::days(7),
            flood: 2,
        };
        let store = db.store().await.with_health(policy);
        let ids = with_sources(&store, &["wire"]).await;
        let wire = ids[0];
        let name = db.name;

        // Day 0: a first entry (a first fetch's backlog is never a flood),
        // then three new ones (a flood, above 2), then a 304.
        store
            .ingest(wire, &[entry("z")], &ok(at(-600)))
            .await
            .unwrap();
        store
            .ingest(wire, &[entry("a"), entry("b"), entry("c")], &ok(at(0)))
            .await
            .unwrap();
        let not_modified = FetchRecord {
            status: Some(304),
            bytes: 0,
            ..ok(at(600))
        };
        store.record_fetch(wire, &not_modified).await.unwrap();
        // Day 1: two failures make it failing; a success makes it recover.
        store.record_fetch(wire, &failed(at(DAY))).await.unwrap();
        store
            .record_fetch(wire, &failed(at(DAY + 600)))
            .await
            .unwrap();
        store
            .record_fetch(wire, &failed(at(DAY + 1200)))
            .await
            .unwrap();
        store
            .ingest(wire, &[entry("a")], &ok(at(DAY + 1800)))
            .await
            .unwrap();

        let days = store.source_days(day_of(at(-600)), None).await.unwrap();
        let days: Vec<_> = days.into_iter().map(|(n, d)| (n, d.day, d)).collect();
        assert_eq!(days.len(), 2, "{name}: {days:?}");
        let (_, _, first) = &days[0];
        assert_eq!(
            (first.fetches, first.ok, first.not_modified, first.failed),
            (3, 2, 1, 0),
            "{name}"
        );
        assert_eq!((first.new_entries, first.bytes), (4, 4_000), "{name}");
        let (_, _, second) = &days[1];
        assert_eq!(
            (second.fetches, second.ok, second.failed, second.new_entries),
            (4, 1, 3, 0),
            "{name}: an unchanged entry is not new"
        );

        let log = store.fetch_log("wire", 10).await.unwrap();
        let outcomes: Vec<&str> = log.iter().map(|f| f.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            [
                "ok",
                "failed",
                "failed",
                "failed",
                "not_modified",
                "ok",
                "ok"
            ],
            "{name}: newest first"
        );
        assert_eq!(log[1].error.as_deref(), Some("HTTP 500"), "{name}");
        assert_eq!(log[5].duration_ms, 120, "{name}");
        assert_eq!(log[5].new_entries, 3, "{name}");

        let now = at(DAY + 3600);
        let events = store.health_events(now, &policy, 100).await.unwrap();
        let kinds: Vec<(HealthKind, DateTime<Utc>)> =
            events.iter().map(|e| (e.kind, e.at)).collect();
        assert_eq!(
            kinds,
            [
                (HealthKind::Recovered, at(DAY + 1800)),
                (HealthKind::Failing, at(DAY + 600)),
                (HealthKind::Flood, at(0)),
            ],
            "{name}"
        );
        assert!(events[1].detail.contains("HTTP 500"), "{name}: {events:?}");

        // No new entry since day 0: quiet from day 7 on, found on reading,
        // with the same time once stored when the source speaks again.
        let quiet_from = at(7 * DAY);
        let later = store
            .health_events(at(8 * DAY), &policy, 100)
            .await
            .unwrap();
        assert_eq!(
            (later[0].kind, later[0].at),
            (HealthKind::Quiet, quiet_from)
        );
        assert!(store
            .health_events(at(7 * DAY - 1), &policy, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.kind != HealthKind::Quiet));
        store
            .ingest(wire, &[entry("d")], &ok(at(9 * DAY)))
            .await
            .unwrap();
        let after = store
            .health_events(at(9 * DAY + 1), &policy, 100)
            .await
            .unwrap();
        let quiet: Vec<_> = after
            .iter()
            .filter(|e| e.kind == HealthKind::Quiet)
            .collect();
        assert_eq!(quiet.len(), 1, "{name}: stored once: {after:?}");
        assert_eq!(quiet[0].at, quiet_from, "{name}");
        assert!(quiet[0].detail.contains("until"), "{name}: {quiet:?}");

        // Another instance on the same database reads the same events.
        let other = db.store().await.with_health(policy);
        assert_eq!(
            other
                .health_events(at(9 * DAY + 1), &policy, 100)
                .await
                .unwrap(),
            after,
            "{name}"
        );
        other.close().await;

        // Pruning: fetch rows after a week, days and events after 35 days.
        let retention = Duration::from_secs(365 * DAY as u64);
        store
            .prune(at(16 * DAY), retention, retention)
            .await
            .unwrap();
        let log = store.fetch_log("wire", 10).await.unwrap();
        let kept: Vec<_> = log.iter().map(|f| f.at).collect();
        assert_eq!(kept, [at(9 * DAY)], "{name}: rows older than a week go");
        assert_eq!(
            store.source_days(0, None).await.unwrap().len(),
            3,
            "{name}: the days stay"
        );
        store
            .prune(at(45 * DAY), retention, retention)
            .await
            .unwrap();
        assert!(store.source_days(0, Some("wire")).await.unwrap().is_empty());
        let stored = store
            .health_events(
                at(45 * DAY),
                &HealthPolicy {
                    quiet_after: TimeDelta::days(3650),
                    ..policy
                },
                100,
            )
            .await
            .unwrap();
        assert!(stored.is_empty(), "{name}: {stored:?}");
        store.close().await;
    }
}

/// A fetch that stores nothing is written in one statement on PostgreSQL:
/// its state, history and the events it makes all the same as SQLite's.
#[tokio::test]
async fn a_304_after_failures_recovers_and_a_410_is_gone_on_both_backends() {
    for db in backends().await {
        let policy = HealthPolicy {
            failing_after: 2,
            ..HealthPolicy::default()
        };
        let store = db.store().await.with_health(policy);
        let wire = with_sources(&store, &["wire"]).await[0];
        let name = db.name;
        let validators = FetchRecord {
            validators: Some((Some("\"v1\"".into()), None)),
            ..ok(at(0))
        };
        store.record_fetch(wire, &validators).await.unwrap();
        store.record_fetch(wire, &failed(at(600))).await.unwrap();
        store.record_fetch(wire, &failed(at(1200))).await.unwrap();
        let failing = store.source_state("wire").await.unwrap().unwrap();
        assert_eq!(failing.consecutive_failures, 2, "{name}");
        assert_eq!(failing.last_error.as_deref(), Some("HTTP 500"), "{name}");

        let not_modified = FetchRecord {
            status: Some(304),
            bytes: 0,
            ..ok(at(1800))
        };
        store.record_fetch(wire, &not_modified).await.unwrap();
        let recovered = store.source_state("wire").await.unwrap().unwrap();
        assert_eq!(
            (
                recovered.consecutive_failures,
                recovered.last_status,
                recovered.last_error.as_deref(),
                recovered.etag.as_deref(),
                recovered.next_fetch_at,
            ),
            (
                0,
                Some(304),
                None,
                Some("\"v1\""),
                Some(at(1800) + TimeDelta::minutes(15))
            ),
            "{name}: a 304 keeps the validators"
        );
        let gone = FetchRecord {
            status: Some(410),
            error: Some("HTTP 410 Gone".into()),
            failed: true,
            disabled_reason: Some("410 Gone: the feed was removed".into()),
            ..ok(at(2400))
        };
        store.record_fetch(wire, &gone).await.unwrap();
        let disabled = store.source_state("wire").await.unwrap().unwrap();
        assert_eq!(
            disabled.disabled_reason.as_deref(),
            Some("410 Gone: the feed was removed"),
            "{name}"
        );

        let events = store.health_events(at(3000), &policy, 100).await.unwrap();
        let kinds: Vec<(HealthKind, DateTime<Utc>)> =
            events.iter().map(|e| (e.kind, e.at)).collect();
        assert_eq!(
            kinds,
            [
                (HealthKind::Gone, at(2400)),
                (HealthKind::Recovered, at(1800)),
                (HealthKind::Failing, at(1200)),
            ],
            "{name}"
        );
        assert!(
            events[1].detail.contains("2 failures"),
            "{name}: {events:?}"
        );
        let log = store.fetch_log("wire", 10).await.unwrap();
        let outcomes: Vec<&str> = log.iter().map(|f| f.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            ["gone", "not_modified", "failed", "failed", "ok"],
            "{name}: newest first"
        );
        let days = store.source_days(day_of(at(0)), None).await.unwrap();
        let (_, day) = &days[0];
        assert_eq!(
            (day.fetches, day.ok, day.not_modified, day.failed),
            (5, 1, 1, 3),
            "{name}"
        );
        store.close().await;
    }
}

/// Extracts every `<svg …</svg>` of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("a closed svg") + start + 6;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Checks an SVG is well-formed XML with xmllint (and a parser).
fn assert_well_formed_svg(svg: &str) {
    let mut reader = quick_xml::Reader::from_str(svg);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed: {e}\n{svg}"),
        }
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), svg).unwrap();
    match std::process::Command::new("xmllint")
        .arg("--noout")
        .arg(file.path())
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "xmllint: {}\n{svg}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip("xmllint is not installed (apt-get install libxml2-utils)")
        }
        Err(e) => panic!("running xmllint: {e}"),
    }
}

/// A daemon on `database` with a working source and one that fails,
/// fetched until the failing one is failing.
async fn failing_daemon(server: &FeedServer, database: &str) -> (TestConfig, TestApp, Clock) {
    // Published yesterday and today, whatever day the test runs.
    let now = Utc::now();
    let items: String = [
        ("Harbour reopens", "harbour", now - TimeDelta::days(1)),
        ("Storm passes", "storm", now),
    ]
    .iter()
    .map(|(title, slug, date)| {
        format!(
            "<item><title>{title}</title><link>https://wire.test/{slug}</link>\
             <category>World</category><pubDate>{}</pubDate></item>",
            date.to_rfc2822()
        )
    })
    .collect();
    server.set(
        "/ok.xml",
        Fixture::feed(format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>\
             <link>https://example.org/</link>{items}</channel></rss>"
        )),
    );
    server.set("/broken.xml", Fixture::status(500));
    let dir = tempfile::tempdir().unwrap();
    let broken = server
        .url("/broken.xml")
        .replace("http://", "http://ops:s3cret@");
    let text = format!(
        "[daemon]\ndatabase = \"{database}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\nschedule = \"0 0 1 1 *\"\n\n\
         [health]\nfailing_after = 2\nquiet_after = \"7d\"\nflood = 100\n\n\
         [[source]]\nname = \"wire\"\nurl = \"{}\"\ntags = [\"World\"]\n\n\
         [[source]]\nname = \"broken\"\nurl = \"{broken}\"\n\n\
         [[feed]]\nname = \"world\"\ntitle = \"World news\"\nany = [\"world\"]\n",
        server.url("/ok.xml"),
    );
    std::fs::write(dir.path().join("tributary.toml"), text).unwrap();
    let config = TestConfig { dir };
    let clock = Clock::manual(now);
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    app.wait_fetched().await;
    app.scheduler_idle().await;
    clock.advance(TimeDelta::minutes(10));
    app.fetch_now().await;
    (config, app, clock)
}

#[tokio::test]
async fn the_health_feed_the_source_page_and_the_charts_show_a_failing_source_on_both_backends() {
    let mut databases = vec![None];
    for db in backends().await.into_iter().skip(1) {
        databases.push(Some(db));
    }
    for db in databases {
        let server = FeedServer::start().await;
        let sqlite = tempfile::tempdir().unwrap();
        let url = match &db {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", sqlite.path().join("t.db").display()),
        };
        let (_config, app, clock) = failing_daemon(&server, &url).await;
        let backend = if db.is_some() { "postgres" } else { "sqlite" };

        let atom = app.get("/health.atom").await;
        assert_eq!(atom.status(), 200, "{backend}");
        assert_eq!(
            atom.headers()["content-type"],
            "application/atom+xml; charset=utf-8"
        );
        let etag = atom.headers()["etag"].to_str().unwrap().to_string();
        let xml = atom.text().await.unwrap();
        assert_valid_atom(&xml);
        let feed = parse_atom(&xml);
        assert_eq!(feed.entries.len(), 1, "{backend}: {xml}");
        let failing = &feed.entries[0];
        assert_eq!(failing.title.as_ref().unwrap().content, "broken is failing");
        assert!(failing
            .id
            .starts_with("urn:tributary:health:broken:failing:"));
        assert_eq!(failing.links[0].href, "http://feeds.test/sources/broken");
        let content = failing.content.as_ref().unwrap().body.clone().unwrap();
        assert!(content.contains("HTTP 500"), "{content}");
        // Stable: the same bytes again, and a 304 to a reader holding them.
        let again = app
            .client
            .get(format!("{}/health.atom", app.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{backend}");

        let json: serde_json::Value =
            serde_json::from_str(&app.get_text("/health.json").await).unwrap();
        assert_eq!(json["items"][0]["id"].as_str(), Some(failing.id.as_str()));
        assert_eq!(json["items"][0]["title"], "broken is failing");

        let page = app.get("/sources/broken").await;
        assert_eq!(page.status(), 200, "{backend}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("s3cret"), "{backend}: credentials shown");
        assert!(html.contains("failing"), "{html}");
        assert!(html.contains("2 failures in a row"), "{html}");
        assert!(html.contains("backoff until"), "{html}");
        assert!(html.contains("HTTP 500"), "{html}");
        assert!(html.contains("World news"), "{backend}: the feeds it feeds");
        let charts = svgs(&html);
        assert_eq!(charts.len(), 1, "{backend}");
        assert_well_formed_svg(charts[0]);
        assert!(
            charts[0].contains("2 fetches: 0 ok, 0 not modified, 2 failed"),
            "{}",
            charts[0]
        );
        let wire = app.get_text("/sources/wire").await;
        assert!(wire.contains("<h1>wire</h1>"), "{wire}");
        assert!(wire.contains("ETag") || wire.contains("none (every fetch"));
        assert!(wire.contains(">ok<"), "{wire}");
        assert_eq!(app.get("/sources/nobody").await.status(), 404);

        let index = app.get_text("/").await;
        assert!(
            index.contains("href=\"http://feeds.test/sources/broken\""),
            "{index}"
        );
        let charts = svgs(&index);
        assert_eq!(
            charts.len(),
            4,
            "{backend}: one per feed (World news, All articles) and per source"
        );
        assert!(
            charts[0].contains("World news, last 30 days: 2 articles published (at most 1 a day)"),
            "{}",
            charts[0]
        );
        for chart in &charts {
            assert_well_formed_svg(chart);
            assert!(chart.contains("<title>") && chart.contains("aria-label="));
        }
        assert!(charts.iter().any(|c| c.contains("class=\"fail\"")));
        assert!(charts.iter().any(|c| c.contains("class=\"bar\"")));
        assert!(!index.contains("quiet: no new entry"), "{index}");

        // Eight days on without a new entry, wire is quiet: said on the
        // index page, its own page and in the health feed.
        clock.advance(TimeDelta::days(8));
        let index = app.get_text("/").await;
        assert!(index.contains("quiet: no new entry since"), "{index}");
        let page = app.get_text("/sources/wire").await;
        assert!(page.contains("no new entry since"), "{page}");
        let feed = parse_atom(&app.get_text("/health.atom").await);
        let titles: Vec<String> = feed
            .entries
            .iter()
            .map(|e| e.title.as_ref().unwrap().content.clone())
            .collect();
        assert_eq!(
            titles,
            ["wire went quiet", "broken is failing"],
            "{backend}"
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium (apt-get install chromium); .ci/run runs it"]
async fn a_browser_shows_the_sources_health_at_a_desktops_and_a_phones_width() {
    let server = FeedServer::start().await;
    let sqlite = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", sqlite.path().join("t.db").display());
    let (_config, app, _clock) = failing_daemon(&server, &url).await;
    let profile = tempfile::tempdir().unwrap();
    for (page, path) in [("index", "/"), ("source", "/sources/broken")] {
        let url = format!("{}{path}", app.base);
        let dom = crate::ops_http::chromium(profile.path(), &["--dump-dom"], &url).await;
        assert!(dom.contains("<svg"), "{dom}");
        assert!(dom.contains("aria-label="), "{dom}");
        // A desktop's and a phone's width, and the desktop in dark mode
        // (prefers-color-scheme: dark).
        for (width, height, scheme) in [(1280, 900, ""), (390, 844, ""), (1280, 900, "-dark")] {
            let shot = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("health-{page}-{width}{scheme}.png"));
            let _ = std::fs::remove_file(&shot);
            let mut args = vec![
                format!("--screenshot={}", shot.display()),
                format!("--window-size={width},{height}"),
                "--hide-scrollbars".to_string(),
            ];
            if !scheme.is_empty() {
                args.push("--force-dark-mode".to_string());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::ops_http::chromium(profile.path(), &args, &url).await;
            let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
            assert!(png.len() > 10_000, "near-empty: {} bytes", png.len());
            eprintln!("{page} page at {width} px{scheme}: {}", shot.display());
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_recording_the_same_change_store_one_event() {
    for db in backends().await {
        let name = db.name;
        let first = db.store().await;
        let second = db.store().await;
        let wire = with_sources(&first, &["wire"]).await[0];
        let gone = FetchRecord {
            status: Some(410),
            error: Some("410 Gone".into()),
            disabled_reason: Some("410 Gone: the publisher removed this feed".into()),
            ..failed(at(0))
        };
        // At once: each may read the state before the other's commit; the
        // event's key (source, kind, time) lets only one row in.
        let (a, b) = tokio::join!(
            first.record_fetch(wire, &gone),
            second.record_fetch(wire, &gone)
        );
        a.unwrap();
        b.unwrap();
        for store in [&first, &second] {
            let events = store
                .health_events(at(60), &HealthPolicy::default(), 100)
                .await
                .unwrap();
            let kinds: Vec<HealthKind> = events.iter().map(|e| e.kind).collect();
            assert_eq!(kinds, [HealthKind::Gone], "{name}: {events:?}");
        }
        first.close().await;
        second.close().await;
    }
}
