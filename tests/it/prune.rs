//! Retention (docs/CONFIG.md "Retention"): old articles are pruned, counted from first
//! stored; their tombstones keep a story still in a feed from coming back;
//! tombstones expire. On every backend, through `tributary prune`, and on
//! the daemon's schedule.

use crate::helpers::*;
use crate::store::{backends, with_sources};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use tributary::clock::Clock;
use tributary::model::{Filter, NewArticle, Tag};
use tributary::store::{FetchRecord, Store};

const DAY: Duration = Duration::from_secs(86_400);

fn day(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap() + TimeDelta::days(n)
}

fn story(name: &str, tag: &str) -> NewArticle {
    NewArticle {
        entry_key: format!("guid:{name}"),
        canonical_url: Some(format!("https://news.test/{name}")),
        content_key: None,
        uid: format!("urn:test:{name}"),
        fingerprint: format!("fp-{name}"),
        link: Some(format!("https://news.test/{name}")),
        title: format!("Story {name}"),
        summary: None,
        content: Some(format!("<p>{name}</p>")),
        author: None,
        published: Some(day(0)),
        updated: None,
        tags: Tag::from_label(tag).into_iter().collect(),
        tag_origins: Vec::new(),
        language: None,
    }
}

fn record(at: DateTime<Utc>) -> FetchRecord {
    FetchRecord {
        at,
        status: Some(200),
        next_fetch_at: at + TimeDelta::minutes(15),
        ..FetchRecord::default()
    }
}

async fn titles(store: &Store) -> Vec<String> {
    let mut titles: Vec<String> = store
        .page(&Filter::default(), None, 500)
        .await
        .unwrap()
        .articles
        .into_iter()
        .map(|a| a.title.clone())
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn pruned_stories_are_not_republished_by_their_source_or_another() {
    for db in backends().await {
        let store = db.store().await;
        let ids = with_sources(&store, &["a", "b"]).await;
        let (a, b) = (ids[0], ids[1]);
        store
            .ingest(a, &[story("old", "Archive")], &record(day(0)))
            .await
            .unwrap();
        store
            .ingest(a, &[story("new", "Fresh")], &record(day(10)))
            .await
            .unwrap();

        // Retention counts from first stored: "old" is 10 days old, "new" is not.
        let stats = store.prune(day(10), 5 * DAY, 365 * DAY).await.unwrap();
        assert_eq!(stats.articles, 1, "{}", db.name);
        assert_eq!(stats.tombstones_added, 2, "{}: entry and URL", db.name);
        assert_eq!(titles(&store).await, ["Story new"], "{}", db.name);
        let tags: Vec<String> = store
            .tag_counts()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.tag.term)
            .collect();
        assert_eq!(
            tags,
            ["fresh"],
            "{}: a pruned article's tags go too",
            db.name
        );

        // Still in the source's feed next time: skipped, not new again.
        let again = store
            .ingest(
                a,
                &[story("old", "Archive"), story("new", "Fresh")],
                &record(day(11)),
            )
            .await
            .unwrap();
        assert_eq!((again.tombstoned, again.inserted), (1, 0), "{}", db.name);
        // Another source carrying the same link: the same story, also pruned.
        let elsewhere = store
            .ingest(b, &[story("old", "Archive")], &record(day(11)))
            .await
            .unwrap();
        assert_eq!(elsewhere.tombstoned, 1, "{}", db.name);
        assert_eq!(titles(&store).await, ["Story new"], "{}", db.name);

        // A second prune with nothing old changes nothing.
        let idle = store.prune(day(11), 5 * DAY, 365 * DAY).await.unwrap();
        assert_eq!(
            (idle.articles, idle.tombstones_added),
            (0, 0),
            "{}",
            db.name
        );
        assert_eq!(store.tombstone_count().await.unwrap(), 2, "{}", db.name);
        store.close().await;
    }
}

#[tokio::test]
async fn tombstones_expire_once_no_feed_carried_their_entry_for_the_bound() {
    for db in backends().await {
        let store = db.store().await;
        let a = with_sources(&store, &["a"]).await[0];
        store
            .ingest(a, &[story("old", "x")], &record(day(0)))
            .await
            .unwrap();
        store.prune(day(10), 5 * DAY, 30 * DAY).await.unwrap();
        // Seen again on day 20: the tombstone's clock restarts there.
        let seen = store
            .ingest(a, &[story("old", "x")], &record(day(20)))
            .await
            .unwrap();
        assert_eq!(seen.tombstoned, 1, "{}", db.name);
        let kept = store.prune(day(45), 5 * DAY, 30 * DAY).await.unwrap();
        assert_eq!(kept.tombstones_expired, 0, "{}", db.name);
        let expired = store.prune(day(55), 5 * DAY, 30 * DAY).await.unwrap();
        assert_eq!(expired.tombstones_expired, 2, "{}", db.name);
        assert_eq!(store.tombstone_count().await.unwrap(), 0, "{}", db.name);
        // Forgotten: the entry is a new article again.
        let back = store
            .ingest(a, &[story("old", "x")], &record(day(56)))
            .await
            .unwrap();
        assert_eq!(back.inserted, 1, "{}", db.name);
        store.close().await;
    }
}

#[tokio::test]
async fn one_instance_claims_each_scheduled_prune() {
    for db in backends().await {
        let (first, second) = (db.store().await, db.store().await);
        let due = day(1);
        let (x, y) = tokio::join!(first.claim_prune(due), second.claim_prune(due));
        assert!(x.unwrap() ^ y.unwrap(), "{}: exactly one claims", db.name);
        assert!(!first.claim_prune(due).await.unwrap(), "{}", db.name);
        assert!(
            second.claim_prune(day(2)).await.unwrap(),
            "{}: the next tick is claimable",
            db.name
        );
        first.close().await;
        second.close().await;
    }
}

fn feed_with_two_stories(server: &FeedServer) {
    server.set(
        "/wire.xml",
        Fixture::feed(rss_items(
            "Wire",
            &[
                ("Dam opens", "https://wire.test/dam", &["Energy"]),
                ("Bridge closes", "https://wire.test/bridge", &["Transport"]),
            ],
        )),
    );
}

#[tokio::test]
async fn tributary_prune_applies_retention_and_a_later_fetch_does_not_bring_them_back() {
    let server = FeedServer::start().await;
    feed_with_two_stories(&server);
    let config = TestConfig::write(
        "retention = \"1s\"",
        &format!(
            "[[source]]\nname = \"wire\"\nurl = \"{}\"\n",
            server.url("/wire.xml")
        ),
    );
    let loaded = config.load();
    // Stored an hour ago: both articles are past the 1 s retention.
    let an_hour_ago = Clock::manual(Utc::now() - TimeDelta::hours(1));
    let first = fetch_now_with_clock(&loaded, &an_hour_ago).await;
    assert!(matches!(
        first[0].outcome,
        tributary::pipeline::Outcome::Ingested { .. }
    ));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["prune", "-c", config.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pruned 2 articles first stored more than 1s ago"),
        "{stdout}"
    );

    // The feed still carries both stories: they stay pruned.
    let again = fetch_now(&loaded).await;
    match &again[0].outcome {
        tributary::pipeline::Outcome::Ingested { stats, .. } => {
            assert_eq!((stats.tombstoned, stats.inserted), (2, 0))
        }
        other => panic!("{other:?}"),
    }
    let store = tributary::app::open_store(&loaded).await.unwrap();
    assert_eq!(store.article_count().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test]
async fn the_daemon_prunes_on_its_schedule() {
    let server = FeedServer::start().await;
    feed_with_two_stories(&server);
    let config = TestConfig::write(
        "retention = \"1s\"\nprune_schedule = \"* * * * * *\"",
        &format!(
            "[[source]]\nname = \"wire\"\nurl = \"{}\"\n",
            server.url("/wire.xml")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let store = tributary::app::open_store(&app.config).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        store.article_count().await.unwrap() == 0
    })
    .await;
    let remaining = store.article_count().await.unwrap();
    assert_eq!(remaining, 0, "the scheduled prune did not run");
    assert!(store.last_prune().await.unwrap().is_some());
    assert!(store.tombstone_count().await.unwrap() >= 4);
    let atom = app.get_text("/feed.atom").await;
    assert_eq!(parse_atom(&atom).entries.len(), 0);
    store.close().await;
    app.stop().await;
}

/// A tag whose last article was pruned is gone; stored again later, it
/// takes the new spelling, and feeds show that one, not the one they
/// showed before the prune.
#[tokio::test]
async fn a_tag_stored_again_after_a_prune_shows_its_new_spelling() {
    for db in backends().await {
        let store = db.store().await;
        let a = with_sources(&store, &["a"]).await[0];
        let labels = |page: tributary::model::Page| -> Vec<String> {
            page.articles
                .iter()
                .flat_map(|a| a.tags.iter().map(|t| t.label.clone()))
                .collect()
        };
        store
            .ingest(a, &[story("old", "World News")], &record(day(0)))
            .await
            .unwrap();
        let before = store.page(&Filter::default(), None, 10).await.unwrap();
        assert_eq!(labels(before), ["World News"], "{}", db.name);

        store.prune(day(10), 5 * DAY, 365 * DAY).await.unwrap();
        store
            .ingest(a, &[story("new", "WORLD NEWS")], &record(day(10)))
            .await
            .unwrap();
        let after = store.page(&Filter::default(), None, 10).await.unwrap();
        assert_eq!(labels(after), ["WORLD NEWS"], "{}", db.name);
    }
}

/// Band keys have no foreign key to cascade them on PostgreSQL (the
/// migration `article_bands_unchecked`): retention deletes them itself.
#[tokio::test]
async fn a_pruned_storys_band_keys_go_with_it() {
    let policy = tributary::store::NearDuplicates {
        threshold: 0.6,
        window: TimeDelta::days(3),
    };
    for db in backends().await {
        if db.name != "postgres" {
            // SQLite's writer keeps band keys in memory, not in the table.
            continue;
        }
        let store = db.store().await.with_near_duplicates(Some(policy));
        let a = with_sources(&store, &["a"]).await[0];
        let text = |name: &str| {
            let mut entry = story(name, "Archive");
            entry.content = Some(format!(
                "<p>{name}: the council met on Tuesday to vote on the harbour budget, \
                 the new tram line and the winter shelter for the homeless.</p>"
            ));
            entry
        };
        store
            .ingest(a, &[text("old")], &record(day(0)))
            .await
            .unwrap();
        store
            .ingest(a, &[text("new")], &record(day(10)))
            .await
            .unwrap();
        let bands = |db_url: String| async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db_url).await.unwrap();
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT a.title, COALESCE(CAST(cardinality(b.band_keys) AS BIGINT), 0) FROM articles a
                 LEFT JOIN article_bands b ON b.article_id = a.id ORDER BY a.title",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let orphans: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM article_bands b
                 WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = b.article_id)",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            (rows, orphans)
        };
        let (before, _) = bands(db.url.clone()).await;
        assert!(
            before.len() == 2 && before.iter().all(|(_, n)| *n > 0),
            "both stories have band keys: {before:?}"
        );
        let stats = store.prune(day(10), 5 * DAY, 365 * DAY).await.unwrap();
        assert_eq!(stats.articles, 1);
        let (after, orphans) = bands(db.url.clone()).await;
        assert_eq!(after, [("Story new".to_string(), before[1].1)]);
        assert_eq!(orphans, 0, "the pruned story's band keys are gone");
    }
}
