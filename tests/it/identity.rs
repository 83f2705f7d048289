//! Article identity end to end, on SQLite and PostgreSQL: entries of one
//! source are never merged because they share a page link, a link without
//! guids or a reused guid; a merged or edited article never mixes fields of
//! two entries; refetches create nothing; a store written by the previous
//! release upgrades in place.

use crate::helpers::*;
use crate::store::{backends, TestDb};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tributary::config::Config;
use tributary::pipeline::Outcome;

/// An RSS 2.0 item.
#[derive(Clone)]
struct Item {
    guid: Option<String>,
    link: Option<String>,
    title: String,
    body: String,
    date: &'static str,
}

fn item(guid: Option<&str>, link: &str, title: &str, date: &'static str) -> Item {
    Item {
        guid: guid.map(String::from),
        link: Some(link.to_string()),
        title: title.to_string(),
        body: format!("<p>The story of {title}.</p>"),
        date,
    }
}

fn rss(items: &[Item]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Test</title><link>https://site.test/</link><description>t</description>\n",
    );
    for item in items {
        xml += "<item>";
        xml += &format!("<title>{}</title>", item.title);
        if let Some(guid) = &item.guid {
            xml += &format!("<guid isPermaLink=\"false\">{guid}</guid>");
        }
        if let Some(link) = &item.link {
            xml += &format!("<link>{link}</link>");
        }
        xml += &format!("<pubDate>{}</pubDate>", item.date);
        xml += &format!("<description><![CDATA[{}]]></description>", item.body);
        xml += "</item>\n";
    }
    xml + "</channel></rss>\n"
}

/// A config whose database is `db` and whose sources are `(name, url)`,
/// fetched only when asked.
fn config(dir: &Path, db: &TestDb, sources: &[(&str, String)]) -> Config {
    let mut text = format!(
        "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n",
        db.url
    );
    for (name, url) in sources {
        text += &format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\nschedule = \"0 0 0 1 1 *\"\n"
        );
    }
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// Every served article (JSON Feed items), newest first.
async fn served(app: &TestApp) -> Vec<Value> {
    let text = app.get_text("/feed.json?limit=500").await;
    let feed: Value = serde_json::from_str(&text).unwrap();
    feed["items"].as_array().unwrap().clone()
}

fn field<'v>(item: &'v Value, name: &str) -> &'v str {
    item[name].as_str().unwrap_or_default()
}

/// The served items by title.
fn by_title(items: &[Value]) -> HashMap<String, Value> {
    items
        .iter()
        .map(|i| (field(i, "title").to_string(), i.clone()))
        .collect()
}

/// One test database per backend, with a server and a fresh directory.
struct Run {
    db: TestDb,
    dir: tempfile::TempDir,
}

async fn runs() -> Vec<Run> {
    backends()
        .await
        .into_iter()
        .map(|db| Run {
            db,
            dir: tempfile::tempdir().unwrap(),
        })
        .collect()
}

/// Asserts that the served items are the feed's entries, one article each,
/// with each entry's own title and link, and that refetching changes
/// nothing (no new article, no `date_modified` moved).
async fn assert_one_article_per_entry(app: &TestApp, backend: &str, expected: &[(String, String)]) {
    let items = served(app).await;
    let got: HashSet<(String, String)> = items
        .iter()
        .map(|i| (field(i, "title").to_string(), field(i, "url").to_string()))
        .collect();
    let want: HashSet<(String, String)> = expected.iter().cloned().collect();
    assert_eq!(
        items.len(),
        expected.len(),
        "{backend}: one article per entry"
    );
    assert_eq!(
        got, want,
        "{backend}: each article has its own entry's title and link"
    );
    for report in app.fetch_now().await {
        match report.outcome {
            Outcome::Ingested { stats, .. } => {
                assert_eq!(
                    (stats.inserted, stats.updated),
                    (0, 0),
                    "{backend}: {report:?}"
                )
            }
            other => panic!("{backend}: {other:?}"),
        }
    }
    let again = served(app).await;
    let before: HashSet<(String, String)> = items
        .iter()
        .map(|i| {
            (
                field(i, "id").to_string(),
                field(i, "date_modified").to_string(),
            )
        })
        .collect();
    let after: HashSet<(String, String)> = again
        .iter()
        .map(|i| {
            (
                field(i, "id").to_string(),
                field(i, "date_modified").to_string(),
            )
        })
        .collect();
    assert_eq!(before, after, "{backend}: a refetch changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_sharing_a_page_link_or_no_id_stay_distinct_articles() {
    let server = FeedServer::start().await;
    // Posts of a day page told apart by their fragment, guids distinct.
    let day: Vec<Item> = (1..=6)
        .map(|i| {
            let link = format!("https://blog.test/2026/12/07.html#a0{i}0000");
            item(
                Some(&link.clone()),
                &link,
                &format!("Day post {i}"),
                "Mon, 07 Dec 2026 0{i}:00:00 GMT",
            )
        })
        .collect();
    // Release notes without guids, one anchor each.
    let releases: Vec<Item> = (1..=5)
        .map(|i| {
            item(
                None,
                &format!("https://project.test/releases#202604{i:02}00"),
                &format!("Release 1.{i}"),
                "Sun, 06 Dec 2026 10:00:00 GMT",
            )
        })
        .collect();
    // Project news without guids, all linking to one page.
    let news: Vec<Item> = (1..=7)
        .map(|i| {
            item(
                None,
                "https://project.test/news.html",
                &format!("News {i}"),
                "Sat, 05 Dec 2026 10:00:00 GMT",
            )
        })
        .collect();
    // Two linked-list posts (distinct ids) pointing to one external URL.
    let linked = vec![
        item(
            Some("tag:df,2026:1"),
            "https://external.test/story",
            "First take",
            "Fri, 04 Dec 2026 10:00:00 GMT",
        ),
        item(
            Some("tag:df,2026:2"),
            "https://external.test/story",
            "Second take",
            "Fri, 04 Dec 2026 12:00:00 GMT",
        ),
    ];
    // One guid reused for four different stories.
    let reused: Vec<Item> = (1..=4)
        .map(|i| {
            item(
                Some("same-guid"),
                &format!("https://paper.test/story-{i}"),
                &format!("Paper story {i}"),
                "Thu, 03 Dec 2026 10:00:00 GMT",
            )
        })
        .collect();
    let feeds = [
        ("day", &day),
        ("releases", &releases),
        ("news", &news),
        ("linked", &linked),
        ("paper", &reused),
    ];
    let mut sources = Vec::new();
    let mut expected = Vec::new();
    for (name, items) in feeds {
        server.set(&format!("/{name}"), Fixture::feed(rss(items)));
        sources.push((name, server.url(&format!("/{name}"))));
        expected.extend(
            items
                .iter()
                .map(|i| (i.title.clone(), i.link.clone().unwrap())),
        );
    }
    for run in runs().await {
        let app = TestApp::spawn(config(run.dir.path(), &run.db, &sources)).await;
        app.wait_fetched().await;
        assert_one_article_per_entry(&app, run.db.name, &expected).await;

        // `explain` says why the linked-list posts are two articles.
        let store = tributary::app::open_store(&app.config).await.unwrap();
        let items = by_title(&served(&app).await);
        let second = field(&items["Second take"], "id").to_string();
        let explained = store.explain(&second).await.unwrap().unwrap();
        assert_eq!(explained.article.title, "Second take");
        assert!(
            explained.entries[0]
                .why
                .as_deref()
                .unwrap()
                .contains("shared with another entry"),
            "{}: {:?}",
            run.db.name,
            explained.entries
        );
        let first = field(&items["First take"], "id").to_string();
        let explained = store.explain(&first).await.unwrap().unwrap();
        assert_eq!(explained.article.title, "First take");
        assert_eq!(explained.kept_apart.len(), 1, "{:?}", explained.kept_apart);
        assert_eq!(explained.kept_apart[0].title, "Second take");
        store.close().await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_feeds_keep_every_entry() {
    let Some(shared) = shared_dir() else { return };
    let server = FeedServer::start().await;
    let names = [
        "scriptingnews_rss2_source_ns.xml",
        "onefoottsunami_atom_xml_base.xml",
    ];
    let mut sources = Vec::new();
    let mut ids = 0;
    for name in names {
        let bytes = read(&shared.join("fixtures/real").join(name));
        ids += feed_rs::parser::parse(&bytes[..]).unwrap().entries.len();
        let mut fixture = Fixture::feed(bytes);
        fixture.content_type = "application/xml";
        server.set(&format!("/{name}"), fixture);
        sources.push((
            name.split('_').next().unwrap(),
            server.url(&format!("/{name}")),
        ));
    }
    for run in runs().await {
        let app = TestApp::spawn(config(run.dir.path(), &run.db, &sources)).await;
        app.wait_fetched().await;
        let items = served(&app).await;
        assert_eq!(
            items.len(),
            ids,
            "{}: one article per entry id",
            run.db.name
        );
        app.fetch_now().await;
        assert_eq!(
            served(&app).await,
            items,
            "{}: a refetch changes nothing",
            run.db.name
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_updates_its_own_article_and_a_reused_guid_is_a_new_one() {
    let server = FeedServer::start().await;
    let story = item(
        Some("g-1"),
        "https://paper.test/a",
        "Original title",
        "Mon, 07 Dec 2026 08:00:00 GMT",
    );
    let other = item(
        Some("g-2"),
        "https://paper.test/b",
        "Unrelated",
        "Mon, 07 Dec 2026 07:00:00 GMT",
    );
    for run in runs().await {
        let backend = run.db.name;
        server.set(
            "/paper",
            Fixture::feed(rss(&[story.clone(), other.clone()])),
        );
        let sources = [("paper", server.url("/paper"))];
        let app = TestApp::spawn(config(run.dir.path(), &run.db, &sources)).await;
        app.wait_fetched().await;
        let first = by_title(&served(&app).await);
        let id = field(&first["Original title"], "id").to_string();

        // Same guid and link, title and text edited, a later date: the same
        // story, every field from the edited entry.
        let mut edited = story.clone();
        edited.title = "Edited title".into();
        edited.body = "<p>Corrected.</p>".into();
        edited.date = "Mon, 07 Dec 2026 09:00:00 GMT";
        server.set(
            "/paper",
            Fixture::feed(rss(&[edited.clone(), other.clone()])),
        );
        app.fetch_now().await;
        let items = served(&app).await;
        assert_eq!(items.len(), 2, "{backend}");
        let now = by_title(&items);
        let article = &now["Edited title"];
        assert_eq!(field(article, "id"), id, "{backend}: an edit keeps the id");
        assert_eq!(
            field(article, "content_html"),
            "<p>Corrected.</p>",
            "{backend}"
        );
        assert_eq!(
            field(article, "date_published"),
            "2026-12-07T09:00:00Z",
            "{backend}"
        );
        assert_ne!(
            field(article, "date_modified"),
            field(&first["Original title"], "date_modified")
        );
        assert_eq!(
            field(&now["Unrelated"], "date_modified"),
            field(&first["Unrelated"], "date_modified"),
            "{backend}: an unchanged entry is not updated"
        );

        // The publisher reuses the guid for another story (new link, new
        // title): a new article, the first one untouched.
        let reuse = item(
            Some("g-1"),
            "https://paper.test/c",
            "Another story",
            "Mon, 07 Dec 2026 10:00:00 GMT",
        );
        server.set("/paper", Fixture::feed(rss(&[reuse, other.clone()])));
        app.fetch_now().await;
        app.fetch_now().await;
        let items = served(&app).await;
        assert_eq!(items.len(), 3, "{backend}: {items:#?}");
        let after = by_title(&items);
        assert_eq!(field(&after["Edited title"], "id"), id, "{backend}");
        assert_eq!(
            field(&after["Edited title"], "date_modified"),
            field(article, "date_modified")
        );
        assert_eq!(
            field(&after["Another story"], "url"),
            "https://paper.test/c"
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sources_merge_by_canonical_link_fragment_included() {
    let server = FeedServer::start().await;
    let date = "Mon, 07 Dec 2026 08:00:00 GMT";
    let a = [
        item(Some("a-1"), "https://blog.test/day.html#a1", "Post 1", date),
        item(Some("a-2"), "https://blog.test/day.html#a2", "Post 2", date),
        item(Some("a-3"), "https://blog.test/other", "Other", date),
    ];
    // Another outlet's copies: tracking parameters, and a fragment that
    // points into the page, do not make another article.
    let b = [
        item(
            Some("b-2"),
            "https://blog.test/day.html?utm_source=rss#a2",
            "Post 2",
            date,
        ),
        item(
            Some("b-3"),
            "https://blog.test/other?utm_medium=x#comments",
            "Other",
            date,
        ),
    ];
    server.set("/a", Fixture::feed(rss(&a)));
    server.set("/b", Fixture::feed(rss(&b)));
    let sources = [("a", server.url("/a")), ("b", server.url("/b"))];
    for run in runs().await {
        let app = TestApp::spawn(config(run.dir.path(), &run.db, &sources)).await;
        app.wait_fetched().await;
        let items = served(&app).await;
        let seen: HashMap<&str, HashSet<&str>> = items
            .iter()
            .map(|i| {
                let sources = i["_tributary"]["seen_in"].as_array().unwrap();
                let sources = sources.iter().map(|s| s.as_str().unwrap()).collect();
                (field(i, "title"), sources)
            })
            .collect();
        let both = HashSet::from(["a", "b"]);
        let want = HashMap::from([
            ("Post 1", HashSet::from(["a"])),
            ("Post 2", both.clone()),
            ("Other", both),
        ]);
        assert_eq!(items.len(), 3, "{}: {items:#?}", run.db.name);
        assert_eq!(seen, want, "{}", run.db.name);
        app.stop().await;
    }
}

/// The schema of the previous release (its migrations, the last one
/// `last`) on `db`, with `rows` inserted as that release stored them.
async fn previous_release_store(db: &TestDb, rows: &[String]) {
    let last = match db.name {
        "sqlite" => "20261204000000",
        _ => "20261203000000",
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(db.name);
    let old = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&repo).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() <= last || name.starts_with(last) {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    if db.name == "sqlite" {
        let options: sqlx::sqlite::SqliteConnectOptions = db.url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        migrator.run(&pool).await.unwrap();
        for sql in rows {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for sql in rows {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        // The rows name their ids: identities continue after them.
        for table in ["sources", "articles"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            );
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_previous_release_upgrades_in_place() {
    let server = FeedServer::start().await;
    let day = |i: u32| {
        let link = format!("https://blog.test/day.html#a{i}");
        item(
            Some(&format!("post-{i}")),
            &link,
            &format!("Post {i}"),
            "Mon, 07 Dec 2026 08:00:00 GMT",
        )
    };
    let release = |i: u32| {
        item(
            None,
            &format!("https://project.test/rel#{i}"),
            &format!("Release {i}"),
            "Sun, 06 Dec 2026 08:00:00 GMT",
        )
    };
    let solo = item(
        Some("solo"),
        "https://blog.test/solo",
        "Solo",
        "Sat, 05 Dec 2026 08:00:00 GMT",
    );
    let blog = vec![day(1), day(2), day(3), solo.clone()];
    let project = vec![release(1), release(2), release(3)];
    server.set("/blog", Fixture::feed(rss(&blog)));
    server.set("/project", Fixture::feed(rss(&project)));
    let sources = [
        ("blog", server.url("/blog")),
        ("project", server.url("/project")),
    ];
    let t = 1_796_630_400_000_000_i64; // 2026-12-07T08:00:00Z in microseconds
    let uid = |n: u32| format!("urn:uuid:00000000-0000-5000-8000-00000000000{n}");
    // As the previous release stored these feeds: the day page's posts and
    // the release notes each merged into one article under the link
    // without its fragment (with the last entry's text), the solo post alone.
    let mut rows = vec![
        format!(
            "INSERT INTO sources (id, name, url) VALUES (1, 'blog', '{}')",
            sources[0].1
        ),
        format!(
            "INSERT INTO sources (id, name, url) VALUES (2, 'project', '{}')",
            sources[1].1
        ),
    ];
    let articles = [
        (
            1,
            "https://blog.test/day.html",
            "https://blog.test/day.html#a3",
            "Post 3",
            1,
        ),
        (
            2,
            "https://blog.test/solo",
            "https://blog.test/solo",
            "Solo",
            1,
        ),
        (
            3,
            "https://project.test/rel",
            "https://project.test/rel#3",
            "Release 3",
            2,
        ),
    ];
    for (id, canonical, link, title, source) in articles {
        rows.push(format!(
            "INSERT INTO articles (id, uid, canonical_url, link, title, summary, content,
                 published, updated, first_seen, fingerprint, source_id)
             VALUES ({id}, '{}', '{canonical}', '{link}', '{title}', NULL,
                 '<p>The story of {title}.</p>', {t}, {t}, {t}, 'from-the-previous-release', {source})",
            uid(id)
        ));
    }
    let keys = [
        (1, "guid:post-1", 1),
        (1, "guid:post-2", 1),
        (1, "guid:post-3", 1),
        (1, "guid:solo", 2),
        (2, "link:https://project.test/rel", 3),
    ];
    for (source, key, article) in keys {
        rows.push(format!(
            "INSERT INTO article_sources (source_id, entry_key, article_id, first_seen)
             VALUES ({source}, '{key}', {article}, {t})"
        ));
    }
    // The entries' text fingerprints, as every release computes them: the
    // previous release left each merged article with its last entry's.
    let scratch = (TestDb::sqlite(), tempfile::tempdir().unwrap());
    fetch_now(&config(scratch.1.path(), &scratch.0, &sources)).await;
    let fingerprints: HashMap<String, String> = {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&scratch.0.url)
            .await
            .unwrap();
        sqlx::query_as("SELECT title, fingerprint FROM articles")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .collect()
    };
    let rows: Vec<String> = rows
        .iter()
        .map(|row| {
            let title = ["Post 3", "Solo", "Release 3"]
                .into_iter()
                .find(|title| row.contains(&format!("'{title}'")));
            match title {
                Some(title) => row.replace("from-the-previous-release", &fingerprints[title]),
                None => row.clone(),
            }
        })
        .collect();
    for run in runs().await {
        let backend = run.db.name;
        previous_release_store(&run.db, &rows).await;
        let config = config(run.dir.path(), &run.db, &sources);
        for report in fetch_now(&config).await {
            assert!(
                matches!(report.outcome, Outcome::Ingested { .. }),
                "{backend}: {report:?}"
            );
        }
        let app = TestApp::spawn(config).await;
        let items = served(&app).await;
        let titles: HashSet<&str> = items.iter().map(|i| field(i, "title")).collect();
        let want: HashSet<&str> = blog
            .iter()
            .chain(&project)
            .map(|i| i.title.as_str())
            .collect();
        assert_eq!(
            items.len(),
            7,
            "{backend}: one article per entry: {items:#?}"
        );
        assert_eq!(titles, want, "{backend}");
        // Stored articles keep their ids: none lost, none duplicated.
        let ids: Vec<&str> = items.iter().map(|i| field(i, "id")).collect();
        for n in 1..=3 {
            assert_eq!(
                ids.iter().filter(|id| **id == uid(n)).count(),
                1,
                "{backend}: article {n} kept: {ids:?}"
            );
        }
        let items = by_title(&items);
        assert_eq!(field(&items["Solo"], "id"), uid(2), "{backend}");
        // The entry with the stored text keeps the merged article.
        let page = &items["Post 3"];
        assert_eq!(field(page, "id"), uid(1), "{backend}");
        assert_eq!(field(page, "url"), "https://blog.test/day.html#a3");
        assert_eq!(field(page, "content_html"), "<p>The story of Post 3.</p>");
        assert_eq!(
            field(&items["Release 3"], "id"),
            uid(3),
            "{backend}: the stored text keeps its article"
        );
        for report in app.fetch_now().await {
            match report.outcome {
                Outcome::Ingested { stats, .. } => {
                    assert_eq!(
                        (stats.inserted, stats.updated),
                        (0, 0),
                        "{backend}: {report:?}"
                    )
                }
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(served(&app).await.len(), 7, "{backend}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_without_id_on_one_page_stay_apart_as_the_page_changes() {
    let server = FeedServer::start().await;
    let news = |i: u32, body: &str| Item {
        guid: None,
        link: Some("https://project.test/news.html".into()),
        title: format!("News {i}"),
        body: body.to_string(),
        date: "Sat, 05 Dec 2026 10:00:00 GMT",
    };
    /// The page's items, then the served articles' (title, text).
    type Day = (Vec<Item>, Vec<(&'static str, &'static str)>);
    let days: Vec<Day> = vec![
        (vec![news(1, "one")], vec![("News 1", "one")]),
        (
            vec![news(2, "two"), news(1, "one")],
            vec![("News 1", "one"), ("News 2", "two")],
        ),
        // News 1 left the page; News 2 is not taken for an edit of it.
        (
            vec![news(2, "two")],
            vec![("News 1", "one"), ("News 2", "two")],
        ),
        // A new body under the same title and link is an edit.
        (
            vec![news(2, "two, corrected")],
            vec![("News 1", "one"), ("News 2", "two, corrected")],
        ),
        (
            vec![news(3, "three"), news(2, "two, corrected")],
            vec![
                ("News 1", "one"),
                ("News 2", "two, corrected"),
                ("News 3", "three"),
            ],
        ),
    ];
    for run in runs().await {
        let backend = run.db.name;
        server.set("/news", Fixture::feed(rss(&days[0].0)));
        let sources = [("news", server.url("/news"))];
        let app = TestApp::spawn(config(run.dir.path(), &run.db, &sources)).await;
        app.wait_fetched().await;
        for (day, (items, want)) in days.iter().enumerate() {
            server.set("/news", Fixture::feed(rss(items)));
            app.fetch_now().await;
            let mut got: Vec<(String, String)> = served(&app)
                .await
                .iter()
                .map(|i| {
                    (
                        field(i, "title").to_string(),
                        field(i, "summary").to_string(),
                    )
                })
                .collect();
            got.sort();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(t, b)| (t.to_string(), b.to_string()))
                .collect();
            assert_eq!(got, want, "{backend}: day {day}");
        }
        app.stop().await;
    }
}
