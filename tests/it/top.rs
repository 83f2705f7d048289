//! Top stories by coverage (docs/HTTP.md "Top stories"): sources on
//! loopback servers carry copies of the same stories; the daemon counts
//! each story's distinct outlets and serves coverage views, `/top` and
//! `[[feed]]`s, on SQLite and PostgreSQL, and `tributary export` prints
//! the same bytes.

use crate::helpers::*;
use crate::store::backends;
use chrono::{DateTime, TimeDelta, Utc};
use tributary::clock::Clock;
use tributary::config::Config;
use tributary::model::{Filter, NewArticle, Sort};
use tributary::store::{Backend, FetchRecord, SourceSync, Store};

/// Friday 27 November 2026, 12:00 UTC: the daemon's (manual) clock.
fn noon() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc()
}

/// An RSS 2.0 feed of `(story, hours before noon)` items, each linking to
/// `https://news.test/{story}`: the same link in every feed that carries
/// the story, so the daemon stores one article with several sources.
fn carrying(title: &str, stories: &[(&str, i64)]) -> String {
    carrying_before(noon(), title, stories)
}

/// [`carrying`], `hours` before `now`.
fn carrying_before(now: DateTime<Utc>, title: &str, stories: &[(&str, i64)]) -> String {
    let items: String = stories
        .iter()
        .map(|(story, hours)| {
            let date = (now - TimeDelta::hours(*hours)).to_rfc2822();
            format!(
                "<item><title>Story {story}</title><link>https://news.test/{story}</link>\
                 <description>What happened in {story}.</description><pubDate>{date}</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title}</title>\
         <link>https://example.org/</link>{items}</channel></rss>"
    )
}

/// Five sources on one server: `city` and `city-sport` share the host
/// 127.0.0.1 (one outlet), `county` is reached as `localhost` (another),
/// `wire` and `agency` name their outlets.
fn sources(server: &FeedServer) -> String {
    let localhost = server.url("/county.xml").replace("127.0.0.1", "localhost");
    format!(
        "[[source]]\nname = \"city\"\nurl = \"{}\"\n\n\
         [[source]]\nname = \"city-sport\"\nurl = \"{}\"\n\n\
         [[source]]\nname = \"county\"\nurl = \"{localhost}\"\n\n\
         [[source]]\nname = \"wire\"\nurl = \"{}\"\noutlet = \"wires.example\"\n\n\
         [[source]]\nname = \"agency\"\nurl = \"{}\"\noutlet = \"Agency.example\"\n\n\
         [[feed]]\nname = \"wide\"\ntitle = \"Widely reported\"\nmin_outlets = 3\nsort = \"coverage\"\nwindow = \"12h\"\n",
        server.url("/city.xml"),
        server.url("/city-sport.xml"),
        server.url("/wire.xml"),
        server.url("/agency.xml"),
    )
}

/// A config on `database` (SQLite file or PostgreSQL database).
fn config_on(dir: &std::path::Path, database: &str, body: &str) -> Config {
    let text = format!(
        "[daemon]\ndatabase = \"{database}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n{body}"
    );
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// The database of `db` for a daemon whose config lives in `dir`: a
/// SQLite file there, or `db`'s PostgreSQL database.
fn database(db: &crate::store::TestDb, dir: &std::path::Path) -> String {
    if db.name == "sqlite" {
        format!("sqlite://{}", dir.join("tributary.db").display())
    } else {
        db.url.clone()
    }
}

/// The entries' titles (as a feed parser reads them) and their
/// `tributary:outlets` counts, in order, from a document that validates.
fn ranked(xml: &str) -> Vec<(String, i64)> {
    assert_valid_atom(xml);
    let titles = parse_atom(xml)
        .entries
        .into_iter()
        .map(|e| e.title.map(|t| t.content).unwrap_or_default());
    // `<entry>` or `<entry xml:lang="…">`.
    let counts = xml.split("<entry").skip(1).map(|entry| {
        let between = |open: &str, close: &str| {
            let start = entry.find(open)? + open.len();
            let end = start + entry[start..].find(close)?;
            entry[start..end].parse::<i64>().ok()
        };
        between("<tributary:outlets>", "</tributary:outlets>").unwrap_or(-1)
    });
    titles.zip(counts).collect()
}

fn owned(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    expected.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

#[tokio::test]
async fn top_stories_rank_by_distinct_outlets_on_both_backends() {
    for db in backends().await {
        let server = FeedServer::start().await;
        // `three`: city, county, wire (city-sport is city's outlet again).
        // `two-new` and `two-old`: two outlets each, 1 h and 3 h old.
        // `same-host`: city and city-sport only, one outlet.
        // `yesterday`: four outlets, but 30 h old.
        server.set(
            "/city.xml",
            Fixture::feed(carrying(
                "City",
                &[
                    ("three", 2),
                    ("two-new", 1),
                    ("same-host", 1),
                    ("yesterday", 30),
                ],
            )),
        );
        server.set(
            "/city-sport.xml",
            Fixture::feed(carrying("City sport", &[("three", 2), ("same-host", 1)])),
        );
        server.set(
            "/county.xml",
            Fixture::feed(carrying(
                "County",
                &[("three", 2), ("two-old", 3), ("yesterday", 30)],
            )),
        );
        server.set(
            "/wire.xml",
            Fixture::feed(carrying(
                "Wire",
                &[("three", 2), ("two-new", 1), ("yesterday", 30)],
            )),
        );
        server.set(
            "/agency.xml",
            Fixture::feed(carrying("Agency", &[("two-old", 3), ("yesterday", 30)])),
        );
        let dir = tempfile::tempdir().unwrap();
        let config = config_on(dir.path(), &database(&db, dir.path()), &sources(&server));
        let app = TestApp::spawn_with_clock(config.clone(), Clock::manual(noon())).await;
        app.scheduler_idle().await;

        let top = app.get_text("/top.atom").await;
        assert_eq!(
            ranked(&top),
            owned(&[
                ("Story three", 3),
                ("Story two-new", 2),
                ("Story two-old", 2)
            ]),
            "{}: most outlets first, then newest; one outlet and yesterday's left out",
            db.name
        );
        assert!(
            top.contains("xmlns:tributary=\"tag:tributary,2026:feed\""),
            "{top}"
        );
        // The outlets' copies are still listed as they were.
        let feed = parse_atom(&top);
        assert_eq!(feed.entries.len(), 3);

        let json: serde_json::Value =
            serde_json::from_str(&app.get_text("/top.json").await).unwrap();
        let counts: Vec<(String, i64)> = json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["title"].as_str().unwrap().to_string(),
                    i["_tributary"]["outlets"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(counts, ranked(&top), "{}", db.name);
        let seen_in = &json["items"][0]["_tributary"]["seen_in"];
        assert_eq!(seen_in.as_array().unwrap().len(), 4, "{seen_in}");

        // Ad-hoc views: the parameters on /feed, and /top's defaults overridden.
        let wide = app.get_text("/feed.atom?min_outlets=3").await;
        assert_eq!(
            ranked(&wide),
            owned(&[("Story three", 3), ("Story yesterday", 4)]),
            "{}: newest first, no window",
            db.name
        );
        let week = app.get_text("/top.atom?window=2d&min_outlets=1").await;
        assert_eq!(
            ranked(&week),
            owned(&[
                ("Story yesterday", 4),
                ("Story three", 3),
                ("Story two-new", 2),
                ("Story two-old", 2),
                ("Story same-host", 1),
            ]),
            "{}",
            db.name
        );
        // A configured feed: three outlets or more in the last 12 hours.
        assert_eq!(
            ranked(&app.get_text("/feeds/wide.atom").await),
            owned(&[("Story three", 3)]),
            "{}",
            db.name
        );
        // Plain views do not carry the count.
        assert!(!app
            .get_text("/feed.atom")
            .await
            .contains("tributary:outlets"));

        for bad in [
            "/feed.atom?min_outlets=0",
            "/feed.atom?min_outlets=x",
            "/top.json?window=0s",
            "/top.json?window=31d",
            "/top.json?window=soon",
            "/feed.atom?sort=popular",
            "/feeds/wide.atom?min_outlets=2",
        ] {
            let response = app.get(bad).await;
            assert_eq!(response.status(), 400, "{bad}");
        }
        let index = app.get_text("/").await;
        assert!(index.contains("/top.atom"), "{index}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_reader_walking_top_pages_sees_each_story_once_while_coverage_grows() {
    for db in backends().await {
        walk_while_coverage_grows(&db).await;
    }
}

async fn walk_while_coverage_grows(db: &crate::store::TestDb) {
    let server = FeedServer::start().await;
    // Coverage at the walk's start: a 3, b 2, c 2, d 1, e 1.
    let first = [
        (
            "/city.xml",
            vec![("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)],
        ),
        ("/county.xml", vec![("a", 1), ("b", 2)]),
        ("/wire.xml", vec![("a", 1), ("c", 3)]),
        ("/agency.xml", vec![]),
        ("/city-sport.xml", vec![]),
    ];
    for (path, stories) in &first {
        server.set(path, Fixture::feed(carrying(path, stories)));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_on(dir.path(), &database(db, dir.path()), &sources(&server));
    let clock = Clock::manual(noon());
    let app = TestApp::spawn_with_clock(config, clock.clone()).await;
    app.scheduler_idle().await;

    let page = |path: String| {
        let app = &app;
        async move {
            let json: serde_json::Value = serde_json::from_str(&app.get_text(&path).await).unwrap();
            let titles: Vec<String> = json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_string())
                .collect();
            let next = json["next_url"]
                .as_str()
                .map(|u| u.trim_start_matches("http://feeds.test").to_string());
            (titles, next)
        }
    };
    let (one, next) = page("/top.json?min_outlets=1&limit=2".into()).await;
    assert_eq!(one, ["Story a", "Story b"]);

    // Between pages: d gains three outlets (below the cursor before, above
    // it now), b one more (above, stays there), and a new story f arrives
    // with four.
    clock.advance(TimeDelta::minutes(5));
    let later = [
        (
            "/city.xml",
            vec![("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 1)],
        ),
        ("/county.xml", vec![("a", 1), ("b", 2), ("d", 4), ("f", 1)]),
        ("/wire.xml", vec![("a", 1), ("c", 3), ("d", 4), ("f", 1)]),
        ("/agency.xml", vec![("b", 2), ("d", 4), ("f", 1)]),
        ("/city-sport.xml", vec![]),
    ];
    for (path, stories) in &later {
        server.set(path, Fixture::feed(carrying(path, stories)));
    }
    app.fetch_now().await;

    let mut walked = one.clone();
    let mut next = next;
    while let Some(url) = next {
        let (titles, after) = page(url).await;
        walked.extend(titles);
        next = after;
    }
    assert_eq!(
        walked,
        ["Story a", "Story b", "Story c", "Story d", "Story e"],
        "{}: each story of the walk once, in the order it began with",
        db.name
    );

    // A new walk ranks by coverage now.
    let (fresh, _) = page("/top.json?min_outlets=1&limit=3".into()).await;
    assert_eq!(fresh, ["Story f", "Story d", "Story a"], "{}", db.name);

    // A newest-first cursor cannot continue a coverage walk.
    let plain = app.get_text("/feed.json?limit=1").await;
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    let before = plain["next_url"]
        .as_str()
        .unwrap()
        .split("before=")
        .nth(1)
        .unwrap();
    let response = app.get(&format!("/top.json?before={before}")).await;
    assert_eq!(response.status(), 400);
    app.stop().await;
}

/// `tributary ARGS -c CONFIG`, which must succeed: its standard output.
/// On a blocking thread: the feed server runs on this test's runtime.
async fn run(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let (config, owned): (_, Vec<String>) = (
        config.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("-c")
            .arg(config)
            .args(owned)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "tributary {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[tokio::test]
async fn fetch_then_export_and_explain_show_coverage_as_the_server_does() {
    let server = FeedServer::start().await;
    let now = Utc::now();
    for (path, stories) in [
        ("/city.xml", vec![("three", 2), ("two", 1), ("one", 1)]),
        ("/city-sport.xml", vec![("three", 2), ("one", 1)]),
        ("/county.xml", vec![("three", 2)]),
        ("/wire.xml", vec![("three", 2), ("two", 1)]),
        ("/agency.xml", vec![]),
    ] {
        server.set(path, Fixture::feed(carrying_before(now, path, &stories)));
    }
    let config = TestConfig::write("", &sources(&server));
    let path = config.path();
    run(&path, &["fetch"]).await;

    let (_, json) = run(&path, &["export", "--top", "--format", "json"]).await;
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let counts: Vec<(&str, i64)> = parsed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap(),
                i["_tributary"]["outlets"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("Story three", 3), ("Story two", 2)]);
    let (_, atom) = run(&path, &["export", "--top"]).await;
    assert_eq!(
        ranked(&atom),
        owned(&[("Story three", 3), ("Story two", 2)])
    );
    let (_, everything) = run(
        &path,
        &[
            "export",
            "--sort",
            "coverage",
            "--window",
            "1d",
            "--min-outlets",
            "1",
        ],
    )
    .await;
    assert_eq!(
        ranked(&everything),
        owned(&[("Story three", 3), ("Story two", 2), ("Story one", 1)])
    );
    let (_, wide) = run(&path, &["export", "--feed", "wide", "--format", "json"]).await;
    assert!(wide.contains("\"outlets\":3"), "{wide}");

    let (_, explained) = run(&path, &["explain", "https://news.test/three"]).await;
    assert!(explained.contains("outlets (3,"), "{explained}");
    // One line per outlet, its sources in the order they carried it.
    let outlet = |name: &str| {
        explained
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in:\n{explained}"))
            .to_string()
    };
    let city = outlet("127.0.0.1");
    assert!(
        city.contains("city,") || city.contains("city-sport,"),
        "{city}"
    );
    assert!(outlet("localhost").ends_with("county"), "{explained}");
    assert!(outlet("wires.example").ends_with("wire"), "{explained}");
    let (_, two) = run(&path, &["explain", "https://news.test/two"]).await;
    assert!(
        two.contains("wide             excluded: carried by 2 outlets, fewer than min_outlets = 3"),
        "{two}"
    );

    // The daemon on the same database serves those bytes.
    let app = TestApp::spawn(config.load()).await;
    app.scheduler_idle().await;
    assert_eq!(app.get_text("/top.json").await, json);
    app.stop().await;
}

/// An entry of story `story` linking to `https://news.test/{link}`, with
/// `text` as its body, published `published`.
fn entry(story: &str, link: &str, text: &str, published: DateTime<Utc>) -> NewArticle {
    NewArticle {
        entry_key: format!("guid:{link}"),
        canonical_url: Some(format!("https://news.test/{link}")),
        content_key: None,
        uid: format!("urn:test:{link}"),
        fingerprint: format!("fp-{link}"),
        link: Some(format!("https://news.test/{link}")),
        title: format!("Story {story}"),
        summary: None,
        content: Some(format!("<p>{text}</p>")),
        author: None,
        published: Some(published),
        updated: None,
        tags: Vec::new(),
        tag_origins: Vec::new(),
        language: None,
    }
}

fn wire_text(n: usize) -> String {
    format!(
        "Story {n}: the foreign ministers of {n} countries met in Geneva on Friday to discuss \
         grain exports, energy prices and the ceasefire talks, according to a joint statement \
         released after the meeting. Delegation {n} said further rounds would follow next month \
         and that observers from {n} agencies would monitor the agreement."
    )
}

fn fetched(at: DateTime<Utc>) -> FetchRecord {
    FetchRecord {
        at,
        status: Some(200),
        next_fetch_at: at + TimeDelta::minutes(15),
        ..FetchRecord::default()
    }
}

fn sync(sources: &[(&str, Option<&str>)]) -> Vec<SourceSync> {
    sources
        .iter()
        .map(|(name, outlet)| SourceSync {
            name: name.to_string(),
            url: format!("http://127.0.0.1:9/{name}.xml"),
            enabled: true,
            outlet: outlet.map(str::to_string),
        })
        .collect()
}

/// Titles and counts of a view's first page.
async fn counted(store: &Store, filter: &Filter) -> Vec<(String, i64)> {
    store
        .page(filter, None, 500)
        .await
        .unwrap()
        .articles
        .iter()
        .map(|a| (a.title.clone(), a.outlets))
        .collect()
}

#[tokio::test]
async fn the_store_counts_outlets_of_shared_links_and_near_duplicates_and_recounts_on_a_new_outlet()
{
    let policy = tributary::store::NearDuplicates {
        threshold: 0.6,
        window: TimeDelta::days(3),
    };
    let now = Utc::now();
    let hours = |h: i64| now - TimeDelta::hours(h);
    for db in backends().await {
        let store = db.store().await.with_near_duplicates(Some(policy));
        // `a` and `b` are one outlet; `d` has none named (its own).
        let outlets = [
            ("a", Some("one")),
            ("b", Some("one")),
            ("c", Some("two")),
            ("d", None),
        ];
        store.sync_sources(&sync(&outlets)).await.unwrap();
        let mut ids = Vec::new();
        for (name, _) in outlets {
            ids.push(store.source_id(name).await.unwrap());
        }
        // Two months of single-outlet stories from `a`: what a coverage
        // view must not read in full.
        let backlog: Vec<NewArticle> = (0..2_000)
            .map(|i| {
                entry(
                    &format!("old-{i}"),
                    &format!("old-{i}"),
                    &format!("Backlog {i}."),
                    hours(i * 3 / 4),
                )
            })
            .collect();
        store
            .ingest(ids[0], &backlog, &fetched(hours(0)))
            .await
            .unwrap();

        // `linked`: the same link in a, b (same outlet), c and d.
        let linked = entry("linked", "linked", "The linked story.", hours(2));
        for (i, source) in ids.iter().enumerate() {
            let at = now - TimeDelta::minutes(10) + TimeDelta::seconds(i as i64);
            store
                .ingest(*source, std::slice::from_ref(&linked), &fetched(at))
                .await
                .unwrap();
        }
        // `wire`: one story under three URLs, near-duplicates from a, b, c.
        for (i, source) in ids[..3].iter().enumerate() {
            let copy = entry("wire", &format!("wire-{i}"), &wire_text(7), hours(1));
            store
                .ingest(*source, &[copy], &fetched(now - TimeDelta::minutes(5)))
                .await
                .unwrap();
        }
        let two_or_more = Filter {
            min_outlets: Some(2),
            sort: Sort::Coverage,
            ..Filter::default()
        };
        assert_eq!(
            counted(&store, &two_or_more).await,
            [
                ("Story linked".to_string(), 3),
                ("Story wire".to_string(), 2)
            ],
            "{}",
            db.name
        );

        let changed = |store: Store| async move {
            let page = store.page(&Filter::default(), None, 500).await.unwrap();
            let linked = page.articles.iter().find(|a| a.title == "Story linked");
            linked.unwrap().changed
        };
        let before = changed(store.clone()).await;
        // `c` joins outlet `one`: its copies no longer count apart.
        let moved = [
            ("a", Some("one")),
            ("b", Some("one")),
            ("c", Some("one")),
            ("d", None),
        ];
        store.sync_sources(&sync(&moved)).await.unwrap();
        assert_eq!(
            counted(&store, &two_or_more).await,
            [("Story linked".to_string(), 2)],
            "{}",
            db.name
        );
        // Its count changed: views that show it changed (Last-Modified).
        assert!(changed(store.clone()).await > before, "{}", db.name);
        let explained = store
            .explain("https://news.test/linked")
            .await
            .unwrap()
            .unwrap();
        let names: Vec<&str> = explained
            .outlets
            .iter()
            .map(|o| o.outlet.as_str())
            .collect();
        assert_eq!(names.len(), 2, "{}: {names:?}", db.name);
        assert_eq!(names[0], "one", "{}", db.name);
        assert_eq!(explained.outlets[0].sources, ["a", "b", "c"], "{}", db.name);

        // The coverage view reads its window from an index, not every article.
        let plan = match store.backend() {
            Backend::Sqlite => store.explain_page(&two_or_more).await.unwrap(),
            Backend::Postgres => {
                analyze(&db.url).await;
                store.explain_page(&two_or_more).await.unwrap()
            }
        };
        let plan = plan.join("\n");
        match store.backend() {
            Backend::Sqlite => assert!(
                plan.contains("SEARCH a USING INDEX articles_") && !plan.contains("SCAN a"),
                "{plan}"
            ),
            Backend::Postgres => assert!(
                plan.contains("articles_") && !plan.contains("Seq Scan on articles"),
                "{plan}"
            ),
        }
        store.close().await;
    }
}

async fn analyze(url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::Executor::execute(&mut conn, "ANALYZE").await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn the_migration_counts_the_outlets_of_articles_stored_before_it() {
    sqlx::any::install_default_drivers();
    for db in backends().await {
        // The schema as it was: every migration before this one, run from
        // a copy of the repository's files.
        let dir = tempfile::tempdir().unwrap();
        let backend = if db.name == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        };
        let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        for file in std::fs::read_dir(&repository).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            if name.as_str() < "20261208030000" {
                std::fs::copy(file.path(), dir.path().join(&name)).unwrap();
            }
        }
        let url = if db.name == "sqlite" {
            format!("{}?mode=rwc", db.url)
        } else {
            db.url.clone()
        };
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(dir.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let recent = (Utc::now() - TimeDelta::hours(1)).timestamp_micros();
        for statement in [
            "INSERT INTO sources (id, name, url) VALUES (1, 'a', 'http://127.0.0.1:9/a'), \
             (2, 'b', 'http://127.0.0.1:9/b'), (3, 'c', 'http://127.0.0.1:9/c')"
                .to_string(),
            format!(
                "INSERT INTO articles (id, uid, title, published, updated, first_seen, fingerprint, source_id) \
                 VALUES (1, 'urn:test:old', 'Story old', {recent}, {recent}, {recent}, 'fp', 1)"
            ),
            format!(
                "INSERT INTO article_sources (source_id, entry_key, article_id, first_seen) \
                 VALUES (1, 'guid:old', 1, {recent}), (2, 'guid:old', 1, {})",
                recent + 1
            ),
            format!(
                "INSERT INTO article_links (canonical_url, article_id, source_id, url, similarity, first_seen) \
                 VALUES ('https://news.test/old-c', 1, 3, 'https://news.test/old-c', 0.9, {})",
                recent + 2
            ),
        ] {
            sqlx::query(&statement).execute(&pool).await.unwrap();
        }
        pool.close().await;

        // This version's store migrates it: three sources, no outlet named
        // yet, three outlets.
        let store = db.store().await;
        let top = Filter {
            min_outlets: Some(2),
            sort: Sort::Coverage,
            ..Filter::default()
        };
        assert_eq!(
            counted(&store, &top).await,
            [("Story old".to_string(), 3)],
            "{}",
            db.name
        );
        // The config names them: `a` and `b` are one outlet.
        let named = [("a", Some("one")), ("b", Some("one")), ("c", Some("two"))];
        store.sync_sources(&sync(&named)).await.unwrap();
        assert_eq!(
            counted(&store, &top).await,
            [("Story old".to_string(), 2)],
            "{}",
            db.name
        );
        store.close().await;
    }
}
