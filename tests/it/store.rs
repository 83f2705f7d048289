//! The store suite, run against every backend: a fresh SQLite file always,
//! and a fresh PostgreSQL database per test when `TRIBUTARY_TEST_POSTGRES`
//! names a server (`postgres://postgres@127.0.0.1:5432/test` in CI).

use crate::helpers::{eventually, tag_index_sql};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;
use tributary::model::{Cursor, Filter, NewArticle, Tag};
use tributary::store::{Backend, FetchRecord, SourceSync, Store, StoreOptions};

/// One database for one test: a SQLite file in a temporary directory, or a
/// PostgreSQL database created for it and dropped afterwards.
pub struct TestDb {
    pub url: String,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
    /// Server URL and database name, to drop it.
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tributary.db").display());
        TestDb {
            url,
            name: "sqlite",
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh database on the `TRIBUTARY_TEST_POSTGRES` server; `None` when
    /// the variable is unset. A set but unreachable server fails the test.
    pub async fn postgres() -> Option<TestDb> {
        use sqlx::Connection;
        let server = crate::helpers::postgres_server()?;
        let name = format!("t_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("TRIBUTARY_TEST_POSTGRES={server} unreachable: {e}"));
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            url: url.to_string(),
            name: "postgres",
            _dir: None,
            postgres: Some((server, name)),
        })
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url, &StoreOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&server).await?;
                sqlx::Executor::execute(
                    &mut admin,
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                )
                .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}

/// SQLite always; PostgreSQL too when configured.
pub async fn backends() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite()];
    if let Some(db) = TestDb::postgres().await {
        dbs.push(db);
    }
    dbs
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
}

fn tags(labels: &[&str]) -> Vec<Tag> {
    labels.iter().filter_map(|l| Tag::from_label(l)).collect()
}

/// `count` stories `n0`, `n1`…, a second apart, every third tagged China,
/// the others Sport.
fn china_and_sport(count: i64) -> Vec<NewArticle> {
    (0..count)
        .map(|i| {
            let label: &[&str] = if i % 3 == 0 { &["China"] } else { &["Sport"] };
            story(&format!("n{i}"), i, label)
        })
        .collect()
}

/// An entry whose identity is its link `https://news.test/{story}`.
pub fn story(story: &str, published: i64, labels: &[&str]) -> NewArticle {
    NewArticle {
        entry_key: format!("guid:{story}"),
        canonical_url: Some(format!("https://news.test/{story}")),
        content_key: None,
        uid: format!("urn:test:{story}"),
        fingerprint: format!("fp-{story}"),
        link: Some(format!("https://news.test/{story}")),
        title: format!("Story {story}"),
        summary: Some(format!("About {story}.")),
        content: Some(format!("<p>{story}</p>")),
        author: None,
        published: Some(at(published)),
        updated: None,
        tags: tags(labels),
        tag_origins: Vec::new(),
        language: None,
    }
}

pub fn fetched(at_: DateTime<Utc>) -> FetchRecord {
    FetchRecord {
        at: at_,
        status: Some(200),
        next_fetch_at: at_ + TimeDelta::minutes(15),
        ..FetchRecord::default()
    }
}

fn sync(names: &[&str]) -> Vec<SourceSync> {
    names
        .iter()
        .map(|n| SourceSync {
            name: n.to_string(),
            url: format!("http://127.0.0.1:9/{n}.xml"),
            enabled: true,
            outlet: None,
        })
        .collect()
}

/// Configures sources of these names; their ids, in order.
pub async fn with_sources(store: &Store, names: &[&str]) -> Vec<i64> {
    store.sync_sources(&sync(names)).await.unwrap();
    let mut ids = Vec::new();
    for name in names {
        ids.push(store.source_id(name).await.unwrap());
    }
    ids
}

async fn everything(store: &Store, filter: &Filter) -> Vec<tributary::model::Article> {
    let page = store.page(filter, None, 500).await.unwrap();
    page.articles
        .into_iter()
        .map(std::sync::Arc::unwrap_or_clone)
        .collect()
}

#[tokio::test]
async fn migrations_apply_once_and_a_second_instance_finds_the_same_database() {
    for db in backends().await {
        let (first, second) = tokio::join!(db.store(), db.store());
        assert_eq!(first.article_count().await.unwrap(), 0, "{}", db.name);
        assert!(first.ping().await && second.ping().await, "{}", db.name);
        // The empty feed's `updated` comes from here: equal on every instance.
        assert_eq!(
            first.created_at().await.unwrap(),
            second.created_at().await.unwrap(),
            "{}",
            db.name
        );
        let expected = match db.name {
            "sqlite" => Backend::Sqlite,
            _ => Backend::Postgres,
        };
        assert_eq!(first.backend(), expected);
        first.close().await;
        second.close().await;
    }
}

#[tokio::test]
async fn syncing_sources_is_idempotent_even_from_two_instances_at_once() {
    for db in backends().await {
        let (a, b) = (db.store().await, db.store().await);
        let names: Vec<String> = (0..60).map(|i| format!("source-{i:02}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let config = sync(&names);
        let (ra, rb) = tokio::join!(a.sync_sources(&config), b.sync_sources(&config));
        ra.unwrap();
        rb.unwrap();
        a.sync_sources(&config).await.unwrap();
        let states = a.source_states().await.unwrap();
        assert_eq!(
            states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            names,
            "{}",
            db.name
        );

        // A source leaving the config stops being listed (its row stays for
        // its articles); coming back brings it back, once.
        a.sync_sources(&config[1..]).await.unwrap();
        assert_eq!(b.source_states().await.unwrap().len(), 59, "{}", db.name);
        let (ra, rb) = tokio::join!(a.sync_sources(&config), b.sync_sources(&config));
        ra.unwrap();
        rb.unwrap();
        assert_eq!(b.source_states().await.unwrap().len(), 60, "{}", db.name);

        // Disabling is synced too.
        let mut disabled = config.clone();
        disabled[0].enabled = false;
        b.sync_sources(&disabled).await.unwrap();
        let states = a.source_states().await.unwrap();
        assert!(!states[0].enabled && states[1].enabled, "{}", db.name);
    }
}

#[tokio::test]
async fn a_changed_url_forgets_the_old_validators_and_fetches_at_once() {
    for db in backends().await {
        let store = db.store().await;
        let config = sync(&["rfi-en"]);
        store.sync_sources(&config).await.unwrap();
        let id = store.source_id("rfi-en").await.unwrap();
        let record = FetchRecord {
            validators: Some((
                Some("\"v1\"".into()),
                Some("Mon, 01 Jan 2024 00:00:00 GMT".into()),
            )),
            next_fetch_at: Utc::now() + TimeDelta::hours(1),
            ..fetched(Utc::now())
        };
        store.record_fetch(id, &record).await.unwrap();
        let before = &store.source_states().await.unwrap()[0];
        assert_eq!(before.etag.as_deref(), Some("\"v1\""), "{}", db.name);

        // Same config again: nothing changes.
        store.sync_sources(&config).await.unwrap();
        assert_eq!(
            &store.source_states().await.unwrap()[0],
            before,
            "{}",
            db.name
        );

        let moved = vec![SourceSync {
            url: "http://127.0.0.1:9/new.xml".into(),
            ..config[0].clone()
        }];
        store.sync_sources(&moved).await.unwrap();
        let after = &store.source_states().await.unwrap()[0];
        assert_eq!(after.url, "http://127.0.0.1:9/new.xml", "{}", db.name);
        assert_eq!(after.etag, None, "{}", db.name);
        assert_eq!(after.last_modified, None, "{}", db.name);
        assert_eq!(after.next_fetch_at, None, "{}", db.name);
        let claimed = store
            .claim_due(
                "me",
                Utc::now(),
                Utc::now() + TimeDelta::minutes(1),
                10,
                None,
            )
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{}: due at once", db.name);
        assert_eq!(claimed[0].etag, None, "{}", db.name);
    }
}

#[tokio::test]
async fn the_same_entry_twice_is_one_article_updated_in_place() {
    for db in backends().await {
        let store = db.store().await;
        store.sync_sources(&sync(&["a"])).await.unwrap();
        let a = store.source_id("a").await.unwrap();
        let first = store
            .ingest(a, &[story("one", 0, &["World"])], &fetched(at(10)))
            .await
            .unwrap();
        assert_eq!(first.inserted, 1, "{}", db.name);
        let again = store
            .ingest(a, &[story("one", 0, &["World"])], &fetched(at(20)))
            .await
            .unwrap();
        assert_eq!((again.inserted, again.unchanged), (0, 1), "{}", db.name);
        let mut edited = story("one", 0, &["World"]);
        edited.title = "Story one, corrected".into();
        edited.fingerprint = "fp-one-2".into();
        let third = store.ingest(a, &[edited], &fetched(at(30))).await.unwrap();
        assert_eq!(third.updated, 1, "{}", db.name);

        let articles = everything(&store, &Filter::default()).await;
        assert_eq!(articles.len(), 1, "{}", db.name);
        assert_eq!(articles[0].title, "Story one, corrected", "{}", db.name);
        assert_eq!(articles[0].updated, at(30), "{}: updated moved", db.name);
        assert_eq!(articles[0].published, at(0), "{}", db.name);
    }
}

/// Filtered pages remember the articles they read (SQLite's page reader):
/// an edit, a tag or an outlet added later must show on the next page.
#[tokio::test]
async fn a_filtered_page_shows_each_change_to_an_article_it_read_before() {
    for db in backends().await {
        let store = db.store().await;
        let ids = with_sources(&store, &["a", "b"]).await;
        let (a, b) = (ids[0], ids[1]);
        let world = Filter {
            any: vec!["world".into()],
            ..Filter::default()
        };
        let page = |store: Store, filter: Filter| async move {
            let articles = everything(&store, &filter).await;
            assert_eq!(articles.len(), 1);
            let terms: Vec<String> = articles[0].tags.iter().map(|t| t.term.clone()).collect();
            (
                articles[0].title.clone(),
                terms,
                articles[0].seen_in.clone(),
            )
        };
        store
            .ingest(a, &[story("one", 0, &["World"])], &fetched(at(10)))
            .await
            .unwrap();
        let (title, terms, seen_in) = page(store.clone(), world.clone()).await;
        assert_eq!(
            (title.as_str(), terms, seen_in),
            (
                "Story one",
                vec!["world".to_string()],
                vec!["a".to_string()]
            ),
            "{}",
            db.name
        );
        // Read twice at one version: the second comes from memory.
        assert_eq!(page(store.clone(), world.clone()).await.0, "Story one");

        // Another outlet carries the same link with another tag.
        store
            .ingest(b, &[story("one", 0, &["Europe"])], &fetched(at(20)))
            .await
            .unwrap();
        let (_, terms, seen_in) = page(store.clone(), world.clone()).await;
        assert_eq!(terms, ["world", "europe"], "{}: tag merged", db.name);
        assert_eq!(seen_in, ["a", "b"], "{}: second outlet", db.name);

        // The first outlet corrects its title.
        let mut edited = story("one", 0, &["World"]);
        edited.title = "Story one, corrected".into();
        edited.fingerprint = "fp-one-2".into();
        store.ingest(a, &[edited], &fetched(at(30))).await.unwrap();
        let (title, ..) = page(store.clone(), world.clone()).await;
        assert_eq!(title, "Story one, corrected", "{}: edit shown", db.name);
        let europe = Filter {
            any: vec!["europe".into()],
            ..Filter::default()
        };
        let (title, ..) = page(store.clone(), europe).await;
        assert_eq!(title, "Story one, corrected", "{}: every view", db.name);

        // Another process's edit (here another handle on the database,
        // whose changes this one does not hear of) shows within a second.
        let other = db.store().await;
        let mut again = story("one", 0, &["World"]);
        again.title = "Story one, final".into();
        again.fingerprint = "fp-one-3".into();
        other.ingest(a, &[again], &fetched(at(40))).await.unwrap();
        let seen = eventually(std::time::Duration::from_millis(1_100), || async {
            page(store.clone(), world.clone()).await.0 == "Story one, final"
        })
        .await;
        assert!(seen, "{}: another writer", db.name);
    }
}

/// A tag that a later copy adds files the story under its own date in that
/// tag's view, whether the story had tags before or none.
#[tokio::test]
async fn a_tag_added_by_a_later_copy_sorts_the_story_by_its_own_date() {
    for db in backends().await {
        let store = db.store().await;
        let ids = with_sources(&store, &["a", "b"]).await;
        let (a, b) = (ids[0], ids[1]);
        let first = [
            story("y", 0, &["Europe"]),
            story("w", 3, &[]),
            story("x", 5, &["World"]),
            story("z", 10, &["Europe"]),
        ];
        store.ingest(a, &first, &fetched(at(20))).await.unwrap();
        // Ingested later than every story was published: the added tag rows
        // must carry each story's date, not the copy's.
        let copies = [story("x", 5, &["Europe"]), story("w", 3, &["Europe"])];
        let stats = store.ingest(b, &copies, &fetched(at(30))).await.unwrap();
        assert_eq!((stats.inserted, stats.merged), (0, 2), "{}", db.name);

        let europe = Filter {
            any: vec!["europe".into()],
            ..Filter::default()
        };
        let titles: Vec<String> = everything(&store, &europe)
            .await
            .into_iter()
            .map(|article| article.title)
            .collect();
        assert_eq!(
            titles,
            ["Story z", "Story x", "Story w", "Story y"],
            "{}",
            db.name
        );
        // Page by page (keyset on the tag index's dates) gives the same order.
        let first_page = store.page(&europe, None, 2).await.unwrap();
        let next = first_page.next.expect("a second page");
        let second_page = store.page(&europe, Some(next), 2).await.unwrap();
        let paged: Vec<String> = first_page
            .articles
            .iter()
            .chain(&second_page.articles)
            .map(|article| article.title.clone())
            .collect();
        assert_eq!(paged, titles, "{}", db.name);
    }
}

#[tokio::test]
async fn a_feed_larger_than_one_lookup_statement_ingests_and_refetches_exactly() {
    // More entries than one set-based lookup or multi-row insert holds,
    // with a second entry (another id) for story 0's link in the same batch:
    // an article of its own.
    let mut batch: Vec<NewArticle> = (0..1_200)
        .map(|i| story(&format!("s{i}"), i, &["World", &format!("Topic {}", i % 7)]))
        .collect();
    let mut again = story("s0", 0, &["Extra"]);
    again.entry_key = "guid:s0-again".into();
    again.uid = "urn:test:s0-again".into();
    batch.push(again);
    for db in backends().await {
        let store = db.store().await;
        let ids = with_sources(&store, &["a", "b"]).await;
        let (a, b) = (ids[0], ids[1]);
        let first = store.ingest(a, &batch, &fetched(at(2_000))).await.unwrap();
        assert_eq!((first.inserted, first.merged), (1_201, 0), "{}", db.name);
        let refetch = store.ingest(a, &batch, &fetched(at(2_100))).await.unwrap();
        assert_eq!(
            (refetch.inserted, refetch.unchanged),
            (0, 1_201),
            "{}",
            db.name
        );
        let elsewhere: Vec<NewArticle> = (0..1_200)
            .map(|i| story(&format!("s{i}"), i, &["Science"]))
            .collect();
        let copies = store
            .ingest(b, &elsewhere, &fetched(at(2_200)))
            .await
            .unwrap();
        assert_eq!((copies.inserted, copies.merged), (0, 1_200), "{}", db.name);

        let articles = store
            .page(&Filter::default(), None, 2_000)
            .await
            .unwrap()
            .articles;
        assert_eq!(articles.len(), 1_201, "{}", db.name);
        let oldest = articles.last().unwrap();
        assert_eq!(oldest.title, "Story s0", "{}", db.name);
        let terms: Vec<&str> = oldest.tags.iter().map(|t| t.term.as_str()).collect();
        for term in ["world", "topic-0", "science"] {
            assert!(terms.contains(&term), "{}: {term} in {terms:?}", db.name);
        }
        let other = &articles[articles.len() - 2];
        assert_eq!(other.title, "Story s0", "{}", db.name);
        let terms: Vec<&str> = other.tags.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(terms, ["extra"], "{}", db.name);
    }
}

#[tokio::test]
async fn the_same_link_in_two_sources_is_one_article_seen_in_both_with_tags_united() {
    for db in backends().await {
        let store = db.store().await;
        let ids = with_sources(&store, &["a", "b"]).await;
        let (a, b) = (ids[0], ids[1]);
        store
            .ingest(
                a,
                &[story("wang-yi", 0, &["China", "XI JINPING"])],
                &fetched(at(10)),
            )
            .await
            .unwrap();
        let mut copy = story("wang-yi", 0, &["Xi Jinping", "Russia"]);
        copy.entry_key = "guid:b-7781".into();
        copy.uid = "urn:test:other".into();
        let stats = store.ingest(b, &[copy], &fetched(at(20))).await.unwrap();
        assert_eq!(stats.merged, 1, "{}", db.name);

        let articles = everything(&store, &Filter::default()).await;
        assert_eq!(articles.len(), 1, "{}", db.name);
        let article = &articles[0];
        assert_eq!(
            article.uid, "urn:test:wang-yi",
            "{}: first copy's id",
            db.name
        );
        assert_eq!(article.seen_in, ["a", "b"], "{}", db.name);
        assert_eq!(article.source.name, "a", "{}", db.name);
        let terms: BTreeSet<&str> = article.tags.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(
            terms,
            BTreeSet::from(["china", "russia", "xi-jinping"]),
            "{}",
            db.name
        );
        let label = article
            .tags
            .iter()
            .find(|t| t.term == "xi-jinping")
            .unwrap();
        assert_eq!(
            label.label, "XI JINPING",
            "{}: first spelling kept",
            db.name
        );
        let in_order: Vec<&str> = article.tags.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            in_order,
            ["China", "XI JINPING", "Russia"],
            "{}: the first copy's tags in its order, then the new ones",
            db.name
        );
    }
}

#[tokio::test]
async fn another_outlets_near_duplicate_copy_joins_the_story_on_every_backend() {
    const TEXT: &str = "Chinese Foreign Minister Wang Yi met Russian President Vladimir Putin in Moscow \
        on Friday, ahead of a planned visit by Xi Jinping next month. The two sides discussed trade, \
        energy supplies and the war in Ukraine, according to a statement from the Kremlin.";
    let policy = tributary::store::NearDuplicates {
        threshold: 0.6,
        window: TimeDelta::days(3),
    };
    for db in backends().await {
        let store = db.store().await.with_near_duplicates(Some(policy));
        store.sync_sources(&sync(&["a", "b", "c"])).await.unwrap();
        let id = |name: &'static str| {
            let store = store.clone();
            async move { store.source_id(name).await.unwrap() }
        };
        let mut original = story("wang-yi", 0, &["China"]);
        original.content = Some(format!("<p>{TEXT}</p>"));
        store
            .ingest(id("a").await, &[original], &fetched(at(10)))
            .await
            .unwrap();

        let mut copy = story("wire-wang-yi", 3600, &["Russia"]);
        copy.title = "Putin receives Wang Yi".into();
        copy.content = Some(format!("<p>AFP - {TEXT}</p>"));
        let stats = store
            .ingest(id("b").await, &[copy.clone()], &fetched(at(20)))
            .await
            .unwrap();
        assert_eq!(
            (stats.merged, stats.clustered, stats.inserted),
            (1, 1, 0),
            "{}",
            db.name
        );

        // Outside the window it is another story.
        let mut late = copy.clone();
        late.entry_key = "guid:late".into();
        late.canonical_url = Some("https://news.test/late".into());
        late.link = late.canonical_url.clone();
        late.uid = "urn:test:late".into();
        late.published = Some(at(10 * 24 * 3600));
        let stats = store
            .ingest(id("c").await, &[late], &fetched(at(30)))
            .await
            .unwrap();
        assert_eq!(stats.inserted, 1, "{}", db.name);

        let articles = everything(&store, &Filter::default()).await;
        assert_eq!(articles.len(), 2, "{}", db.name);
        let story = articles
            .iter()
            .find(|a| a.uid == "urn:test:wang-yi")
            .unwrap();
        assert_eq!(story.seen_in, ["a", "b"], "{}", db.name);
        assert_eq!(
            story.related,
            ["https://news.test/wire-wang-yi"],
            "{}",
            db.name
        );
        let terms: BTreeSet<&str> = story.tags.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(terms, BTreeSet::from(["china", "russia"]), "{}", db.name);

        // The copy's own URL now leads to the story.
        let explained = store
            .explain("https://news.test/wire-wang-yi")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(explained.article.uid, "urn:test:wang-yi", "{}", db.name);
        assert_eq!(explained.copies.len(), 1, "{}", db.name);
        assert!(explained.copies[0].similarity >= 0.6, "{}", db.name);
    }
}

#[tokio::test]
async fn a_copy_without_the_closing_sentences_joins_the_story_unless_stored_before_shingle_counts()
{
    const TEXT: &str = "Chinese Foreign Minister Wang Yi met Russian President Vladimir Putin in Moscow \
        on Friday, ahead of a planned visit by Xi Jinping next month. The two sides discussed trade, \
        energy supplies and the war in Ukraine, according to a statement from the Kremlin. Wang said \
        relations between Beijing and Moscow were at their best level in history and would not be \
        swayed by outside pressure.";
    const CLOSING: &str =
        "Russia and China signed eleven agreements on agriculture and transport. \
        Xi is expected to stay three days. Wang later flew on to Minsk for talks with Belarusian \
        officials about the grain corridor and the railway through Kazakhstan, and is due back in \
        Beijing at the end of the week, when the foreign ministry.";
    let policy = tributary::store::NearDuplicates {
        threshold: 0.6,
        window: TimeDelta::days(3),
    };
    let ten_days = 10 * 24 * 3600;
    for db in backends().await {
        let store = db.store().await.with_near_duplicates(Some(policy));
        let ids = with_sources(&store, &["a", "b", "c"]).await;
        let full = |name: &str, published: i64| {
            let mut article = story(name, published, &["China"]);
            article.title = "Wang Yi meets Putin in Moscow".into();
            article.content = Some(format!("<p>{TEXT} {CLOSING}</p>"));
            article
        };
        let short = |name: &str, published: i64| {
            let mut article = story(name, published, &["Russia"]);
            article.title = "Wang Yi meets Putin in Moscow".into();
            article.content = Some(format!("<p>AFP - {TEXT}</p>"));
            article
        };
        // Jaccard is below the threshold (the closing sentences are a third
        // of the text); the short copy is contained in the full one. (Two
        // texts so far apart in Jaccard often share no band key at all:
        // these share one.)
        let signature = |a: &NewArticle| {
            tributary::cluster::Signature::of(&a.title, a.summary.as_deref(), a.content.as_deref())
                .unwrap()
        };
        let (f, s) = (signature(&full("f", 0)), signature(&short("s", 0)));
        assert!(f.similarity(&s) < 0.6 && f.containment(&s).unwrap() >= 0.75);
        store
            .ingest(ids[0], &[full("full", 0)], &fetched(at(10)))
            .await
            .unwrap();
        let stats = store
            .ingest(ids[1], &[short("short", 3600)], &fetched(at(20)))
            .await
            .unwrap();
        assert_eq!((stats.clustered, stats.inserted), (1, 0), "{}", db.name);

        // The same pair ten days on, the story's signature in the layout
        // stored before shingle counts: Jaccard alone, two stories.
        store
            .ingest(ids[0], &[full("full-old", ten_days)], &fetched(at(30)))
            .await
            .unwrap();
        rewrite_signature_without_shingle_count(&db, "urn:test:full-old").await;
        let stats = store
            .ingest(
                ids[2],
                &[short("short-old", ten_days + 3600)],
                &fetched(at(40)),
            )
            .await
            .unwrap();
        assert_eq!((stats.clustered, stats.inserted), (0, 1), "{}", db.name);

        let related: Vec<(String, Vec<String>)> = everything(&store, &Filter::default())
            .await
            .into_iter()
            .map(|a| (a.uid, a.related))
            .collect();
        assert_eq!(
            related,
            [
                ("urn:test:short-old".to_string(), vec![]),
                ("urn:test:full-old".to_string(), vec![]),
                (
                    "urn:test:full".to_string(),
                    vec!["https://news.test/short".to_string()]
                ),
            ],
            "{}",
            db.name
        );
    }
}

/// Stores article `uid`'s signature as versions before shingle counts
/// wrote it: the count and its flag (the number count's top bit) removed.
async fn rewrite_signature_without_shingle_count(db: &TestDb, uid: &str) {
    use sqlx::Connection;
    const BLOOM_BYTES: usize = 512;
    let old = |bytes: Vec<u8>| {
        let count = u32::from_le_bytes(bytes[BLOOM_BYTES..BLOOM_BYTES + 4].try_into().unwrap());
        assert_ne!(count & (1 << 31), 0, "stored with a shingle count");
        let mut out = bytes[..BLOOM_BYTES].to_vec();
        out.extend((count & !(1 << 31)).to_le_bytes());
        out.extend(&bytes[BLOOM_BYTES + 8..]);
        out
    };
    if db.name == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let bytes: Vec<u8> = sqlx::query_scalar("SELECT signature FROM articles WHERE uid = ?")
            .bind(uid)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE articles SET signature = ? WHERE uid = ?")
            .bind(old(bytes))
            .bind(uid)
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let bytes: Vec<u8> = sqlx::query_scalar("SELECT signature FROM articles WHERE uid = $1")
            .bind(uid)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE articles SET signature = $1 WHERE uid = $2")
            .bind(old(bytes))
            .bind(uid)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// A wire story's text for near-duplicate tests: `n` makes another story.
fn wire_text(n: usize) -> String {
    format!(
        "Story {n}: the foreign ministers of {n} countries met in Geneva on Friday to discuss \
         grain exports, energy prices and the ceasefire talks, according to a joint statement \
         released after the meeting. Delegation {n} said further rounds would follow next month \
         and that observers from {n} agencies would monitor the agreement."
    )
}

/// Outlet `outlet`'s copy of story `n`, under its own URL.
fn wire_copy(outlet: &str, n: usize, published: i64) -> NewArticle {
    let mut copy = story(&format!("{outlet}-{n}"), published, &[outlet]);
    copy.title = format!("Ministers meet in Geneva ({n})");
    copy.content = Some(format!("<p>{outlet} - {}</p>", wire_text(n)));
    copy
}

#[tokio::test]
async fn copies_find_stories_other_writers_stored_never_pruned_ones_and_old_ones() {
    let policy = tributary::store::NearDuplicates {
        threshold: 0.6,
        window: TimeDelta::days(3),
    };
    for db in backends().await {
        // Two handles on one database: two writers, as two processes are.
        let one = db.store().await.with_near_duplicates(Some(policy));
        let two = db.store().await.with_near_duplicates(Some(policy));
        let ids = with_sources(&one, &["a", "b", "c", "d", "e"]).await;
        let ingest = |store: &Store, source: usize, copy: NewArticle, fetched_at: i64| {
            let (store, source) = (store.clone(), ids[source]);
            async move {
                store
                    .ingest(source, &[copy], &fetched(at(fetched_at)))
                    .await
                    .unwrap()
            }
        };

        // `one` has written (and read what it needs) before `two` stores
        // story 1; its copy, through `one`, still joins it.
        ingest(&one, 0, wire_copy("a", 0, 0), 10).await;
        ingest(&two, 1, wire_copy("b", 1, 0), 20).await;
        let stats = ingest(&one, 2, wire_copy("c", 1, 60), 30).await;
        assert_eq!((stats.clustered, stats.inserted), (1, 0), "{}", db.name);

        // Pruned (by the other writer): a later copy is a story again, not
        // a link to an article that is gone.
        let retention = std::time::Duration::from_secs(60);
        let pruned = two.prune(at(1_000), retention, retention).await.unwrap();
        assert_eq!(pruned.articles, 2, "{}: stories 0 and 1", db.name);
        let stats = ingest(&one, 3, wire_copy("d", 1, 120), 1_100).await;
        assert_eq!((stats.clustered, stats.inserted), (0, 1), "{}", db.name);

        // A year-old story (a backfill) and its copy from another outlet.
        let year = 365 * 24 * 3600;
        ingest(&one, 0, wire_copy("a", 2, -year), 1_200).await;
        let stats = ingest(&one, 4, wire_copy("e", 2, 600 - year), 1_300).await;
        assert_eq!((stats.clustered, stats.inserted), (1, 0), "{}", db.name);

        let stored = everything(&one, &Filter::default()).await;
        let related: Vec<(&str, &[String])> = stored
            .iter()
            .map(|a| (a.uid.as_str(), a.related.as_slice()))
            .collect();
        assert_eq!(
            related,
            [
                ("urn:test:d-1", &[][..]),
                ("urn:test:a-2", &["https://news.test/e-2".to_string()][..])
            ],
            "{}: the copy after the prune, then the old story with its copy",
            db.name
        );
    }
}

#[tokio::test]
async fn a_sources_later_rewrite_of_its_own_story_stays_its_own_article() {
    let policy = tributary::store::NearDuplicates {
        threshold: 0.6,
        window: TimeDelta::days(3),
    };
    for db in backends().await {
        let store = db.store().await.with_near_duplicates(Some(policy));
        let ids = with_sources(&store, &["a", "b"]).await;
        store
            .ingest(ids[0], &[wire_copy("a", 1, 0)], &fetched(at(10)))
            .await
            .unwrap();
        // One feed's entries are distinct stories, however alike, also
        // across refreshes; another outlet's copy still joins.
        let mut rewrite = wire_copy("a", 1, 60);
        rewrite.entry_key = "guid:a-1-update".into();
        rewrite.canonical_url = Some("https://news.test/a-1-update".into());
        rewrite.link = rewrite.canonical_url.clone();
        rewrite.uid = "urn:test:a-1-update".into();
        let stats = store
            .ingest(ids[0], &[rewrite], &fetched(at(20)))
            .await
            .unwrap();
        assert_eq!((stats.clustered, stats.inserted), (0, 1), "{}", db.name);
        let stats = store
            .ingest(ids[1], &[wire_copy("b", 1, 120)], &fetched(at(30)))
            .await
            .unwrap();
        assert_eq!((stats.clustered, stats.inserted), (1, 0), "{}", db.name);
    }
}

/// The content version (a `meta` row on SQLite, a sequence on PostgreSQL)
/// moves with every ingest that changes articles and only then, and another
/// instance reads where it stands: its feeds' ETags change with the
/// writer's.
#[tokio::test]
async fn another_instance_reads_the_content_version_an_ingest_moved() {
    for db in backends().await {
        let store = db.store().await;
        store.sync_sources(&sync(&["a"])).await.unwrap();
        let a = store.source_id("a").await.unwrap();
        let before = db.store().await.content_version().await.unwrap();
        let articles = [story("v-1", 0, &["Versions"])];
        store.ingest(a, &articles, &fetched(at(100))).await.unwrap();
        let moved = store.content_version().await.unwrap();
        assert!(moved > before, "{}: {before} -> {moved}", db.name);
        assert_eq!(
            db.store().await.content_version().await.unwrap(),
            moved,
            "{}",
            db.name
        );
        // The same entry again: no feed changes, nor the version.
        store.ingest(a, &articles, &fetched(at(200))).await.unwrap();
        assert_eq!(
            db.store().await.content_version().await.unwrap(),
            moved,
            "{}",
            db.name
        );
    }
}

#[tokio::test]
async fn concurrent_ingest_from_two_instances_never_duplicates_and_keeps_every_tag() {
    for db in backends().await {
        let (one, two) = (db.store().await, db.store().await);
        let names: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        one.sync_sources(&sync(&names)).await.unwrap();
        let mut ids = Vec::new();
        for name in &names {
            ids.push(one.source_id(name).await.unwrap());
        }
        // Every source carries the same 40 stories, each with its own tag,
        // in a different order (which invites lock-order deadlocks).
        let batch = |source: usize| -> Vec<NewArticle> {
            let mut batch: Vec<NewArticle> = (0..40)
                .map(|i| {
                    let from = format!("from-{source}");
                    let mut a = story(&format!("s-{i}"), i, &["shared", from.as_str()]);
                    a.entry_key = format!("guid:{source}-{i}");
                    a
                })
                .collect();
            if source % 2 == 1 {
                batch.reverse();
            }
            batch
        };
        let batches: Vec<Vec<NewArticle>> = (0..4).map(batch).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in ids.iter().enumerate() {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            let (id, articles) = (*id, batches[i].clone());
            tasks.spawn(async move { store.ingest(id, &articles, &fetched(at(100))).await });
        }
        let mut inserted = 0;
        while let Some(done) = tasks.join_next().await {
            inserted += done
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", db.name))
                .inserted;
        }
        assert_eq!(inserted, 40, "{}: each story inserted once", db.name);
        let articles = everything(&two, &Filter::default()).await;
        assert_eq!(articles.len(), 40, "{}", db.name);
        let uids: HashSet<&str> = articles.iter().map(|a| a.uid.as_str()).collect();
        assert_eq!(uids.len(), 40, "{}", db.name);
        for article in &articles {
            let terms: BTreeSet<&str> = article.tags.iter().map(|t| t.term.as_str()).collect();
            assert_eq!(
                terms,
                BTreeSet::from(["from-0", "from-1", "from-2", "from-3", "shared"]),
                "{}: {}",
                db.name,
                article.uid
            );
            assert_eq!(article.seen_in.len(), 4, "{}", db.name);
        }
    }
}

/// Another process's write transaction on a SQLite file: the store's writes
/// queue behind it until it commits.
struct OtherWriter(sqlx::SqliteConnection);

impl OtherWriter {
    async fn begin(url: &str) -> OtherWriter {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        OtherWriter(conn)
    }

    /// Commits once the writes started before have had `queued` to line up.
    async fn commit_after(mut self, queued: Duration) {
        tokio::time::sleep(queued).await;
        sqlx::query("COMMIT").execute(&mut self.0).await.unwrap();
    }
}

/// SQLite commits the refreshes queued behind its one writer together. One
/// that breaks (here: an unknown source, which violates a foreign key) must
/// cost none of the others their articles or fetch records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_fails_in_a_group_commit_loses_none_of_the_others() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let names = ["s0", "s1", "s2", "s3", "s4"];
    store.sync_sources(&sync(&names)).await.unwrap();
    let mut ids = Vec::new();
    for name in names {
        ids.push(store.source_id(name).await.unwrap());
    }
    let unknown_source = ids.iter().max().unwrap() + 100;
    let version_before = store.content_version().await.unwrap();
    // Another process holds the write lock, so the refreshes queue behind
    // the writer: the first alone (it took the lock, and waits in the
    // database), then every other one, the broken one among them.
    let other_process = OtherWriter::begin(&db.url).await;
    let refresh = |source_id: i64, tag: usize| {
        let store = store.clone();
        let articles: Vec<NewArticle> = (0..3)
            .map(|k| story(&format!("{tag}-{k}"), k, &["shared"]))
            .collect();
        async move {
            (
                source_id,
                store.ingest(source_id, &articles, &fetched(at(100))).await,
            )
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(refresh(ids[0], 0));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for (i, id) in ids.iter().enumerate().skip(1) {
        tasks.spawn(refresh(*id, i));
        if i == 2 {
            tasks.spawn(refresh(unknown_source, 99));
        }
    }
    other_process.commit_after(Duration::from_millis(300)).await;

    while let Some(done) = tasks.join_next().await {
        let (source_id, result) = done.unwrap();
        if source_id == unknown_source {
            let error = result.expect_err("a refresh of an unknown source cannot be stored");
            assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
        } else {
            assert_eq!(result.unwrap().inserted, 3, "source {source_id}");
        }
    }
    let articles = everything(&store, &Filter::default()).await;
    let mut titles: Vec<&str> = articles.iter().map(|a| a.title.as_str()).collect();
    titles.sort();
    let expected: Vec<String> = (0..5)
        .flat_map(|i| (0..3).map(move |k| format!("Story {i}-{k}")))
        .collect();
    assert_eq!(titles, expected);
    for state in store.source_states().await.unwrap() {
        assert_eq!(state.last_status, Some(200), "{}", state.name);
    }
    // Feeds learnt of the five refreshes in two commits, not five.
    let bumps = store.content_version().await.unwrap() - version_before;
    assert_eq!(bumps, 2, "one content version per group committed");
    // Committed with the articles: another process (a second daemon, the
    // CLI) reads the same version from the file, so its ETags change too.
    let other_store = db.store().await;
    assert_eq!(
        other_store.content_version().await.unwrap(),
        version_before + 2
    );
}

/// 304s and failed fetches are recorded in SQLite's group commits beside the
/// ingests: every record is kept, and a group of records alone changes no
/// feed, so feed ETags (and readers' 304s) survive a cycle where nothing was
/// new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_records_share_the_group_commit_and_change_no_feed() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let ids = with_sources(&store, &["s0", "s1", "s2", "s3"]).await;
    let version_before = store.content_version().await.unwrap();
    let other_process = OtherWriter::begin(&db.url).await;
    let not_modified = FetchRecord {
        status: Some(304),
        ..fetched(at(200))
    };
    let failed = FetchRecord {
        status: Some(503),
        error: Some("HTTP 503".into()),
        failed: true,
        ..fetched(at(200))
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (source_id, record) in [
        (ids[0], not_modified.clone()),
        (ids[1], failed),
        (ids[2], not_modified),
    ] {
        let store = store.clone();
        tasks.spawn(async move { (source_id, store.record_fetch(source_id, &record).await) });
    }
    other_process.commit_after(Duration::from_millis(300)).await;
    while let Some(done) = tasks.join_next().await {
        let (source_id, result) = done.unwrap();
        result.unwrap_or_else(|e| panic!("source {source_id}: {e}"));
    }
    let states: std::collections::HashMap<String, (Option<u16>, i64)> = store
        .source_states()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, (s.last_status, s.consecutive_failures)))
        .collect();
    assert_eq!(states["s0"], (Some(304), 0));
    assert_eq!(states["s1"], (Some(503), 1), "the failure counted");
    assert_eq!(states["s2"], (Some(304), 0));
    assert_eq!(states["s3"], (None, 0), "never fetched");
    assert_eq!(
        store.content_version().await.unwrap(),
        version_before,
        "records alone change no feed"
    );
    // An ingest after them still stores its articles and bumps the version.
    let stats = store
        .ingest(ids[3], &[story("after", 0, &["x"])], &fetched(at(300)))
        .await
        .unwrap();
    assert_eq!(stats.inserted, 1);
    assert_eq!(store.content_version().await.unwrap(), version_before + 1);
}

/// A small corpus with ties in `published`, several tags and two sources.
async fn corpus(store: &Store) {
    store.sync_sources(&sync(&["rfi", "bbc"])).await.unwrap();
    let rfi = store.source_id("rfi").await.unwrap();
    let bbc = store.source_id("bbc").await.unwrap();
    let palette: [&[&str]; 5] = [
        &["China", "World"],
        &["Russia", "World"],
        &["China", "Russia"],
        &["Sport"],
        &["China", "Sport"],
    ];
    let rfi_batch: Vec<NewArticle> = (0..25)
        .map(|i| story(&format!("r{i:02}"), (i / 3) * 60, palette[i as usize % 5]))
        .collect();
    let bbc_batch: Vec<NewArticle> = (0..15)
        .map(|i| {
            story(
                &format!("b{i:02}"),
                (i / 2) * 60 + 30,
                palette[(i as usize + 2) % 5],
            )
        })
        .collect();
    store
        .ingest(rfi, &rfi_batch, &fetched(at(10_000)))
        .await
        .unwrap();
    store
        .ingest(bbc, &bbc_batch, &fetched(at(10_000)))
        .await
        .unwrap();
}

fn filters() -> Vec<(&'static str, Filter)> {
    let terms = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("everything", Filter::default()),
        (
            "any",
            Filter {
                any: terms(&["china", "russia"]),
                ..Filter::default()
            },
        ),
        (
            "all",
            Filter {
                all: terms(&["china", "world"]),
                ..Filter::default()
            },
        ),
        (
            "none",
            Filter {
                none: terms(&["sport"]),
                ..Filter::default()
            },
        ),
        (
            "sources",
            Filter {
                sources: terms(&["bbc"]),
                ..Filter::default()
            },
        ),
        (
            "combined",
            Filter {
                any: terms(&["china"]),
                none: terms(&["sport"]),
                sources: terms(&["rfi"]),
                ..Filter::default()
            },
        ),
    ]
}

#[tokio::test]
async fn filters_and_keyset_paging_give_the_same_articles_in_the_same_order_on_every_backend() {
    let mut results: Vec<(&str, Vec<Vec<String>>)> = Vec::new();
    for db in backends().await {
        let store = db.store().await;
        corpus(&store).await;
        let mut per_filter = Vec::new();
        for (label, filter) in filters() {
            let all = everything(&store, &filter).await;
            for a in &all {
                let terms: HashSet<&str> = a.tags.iter().map(|t| t.term.as_str()).collect();
                assert!(
                    filter.any.is_empty() || filter.any.iter().any(|t| terms.contains(t.as_str()))
                );
                assert!(
                    filter.all.iter().all(|t| terms.contains(t.as_str())),
                    "{label}"
                );
                assert!(
                    !filter.none.iter().any(|t| terms.contains(t.as_str())),
                    "{label}"
                );
                assert!(filter.sources.is_empty() || filter.sources.contains(&a.source.name));
            }
            // Newest first, ties by id, no gaps or repeats across pages.
            for pair in all.windows(2) {
                assert!(
                    (pair[0].published, pair[0].id) > (pair[1].published, pair[1].id),
                    "{}: {label} order",
                    db.name
                );
            }
            let mut paged = Vec::new();
            let mut before: Option<Cursor> = None;
            loop {
                let page = store.page(&filter, before, 4).await.unwrap();
                assert!(page.articles.len() <= 4);
                paged.extend(page.articles.iter().map(|a| a.uid.clone()));
                match page.next {
                    Some(next) => before = Some(next),
                    None => break,
                }
            }
            let uids: Vec<String> = all.iter().map(|a| a.uid.clone()).collect();
            assert_eq!(paged, uids, "{}: {label} paged", db.name);
            assert!(!uids.is_empty(), "{label} matches something");
            per_filter.push(uids);
        }
        let expected_counts = [40, 32, 8, 24, 15];
        for (i, n) in expected_counts.iter().enumerate() {
            assert_eq!(per_filter[i].len(), *n, "{}: {}", db.name, filters()[i].0);
        }
        results.push((db.name, per_filter));
    }
    for (name, per_filter) in &results[1..] {
        assert_eq!(
            per_filter, &results[0].1,
            "{name} differs from {}",
            results[0].0
        );
    }
}

#[tokio::test]
async fn two_claimers_at_once_never_get_the_same_source() {
    for db in backends().await {
        let (one, two) = (db.store().await, db.store().await);
        let names: Vec<String> = (0..120).map(|i| format!("feed-{i:03}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        one.sync_sources(&sync(&names)).await.unwrap();
        let now = Utc::now();
        let claim_all = |store: Store, owner: &'static str| async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_due(owner, now, now + TimeDelta::minutes(5), 7, None)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|c| c.name));
                tokio::task::yield_now().await;
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(claim_all(one.clone(), "one")),
            tokio::spawn(claim_all(two.clone(), "two"))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let a_set: HashSet<&String> = a.iter().collect();
        let b_set: HashSet<&String> = b.iter().collect();
        assert_eq!(
            a.len() + b.len(),
            120,
            "{}: each claimed exactly once",
            db.name
        );
        assert!(a_set.is_disjoint(&b_set), "{}", db.name);
        assert_eq!(a_set.len() + b_set.len(), 120, "{}", db.name);
    }
}

#[tokio::test]
async fn a_source_never_fetched_is_claimed_before_overdue_ones_on_every_backend() {
    for db in backends().await {
        let store = db.store().await;
        store.sync_sources(&sync(&["a"])).await.unwrap();
        let a = store.source_id("a").await.unwrap();
        let now = Utc::now();
        let overdue = FetchRecord {
            next_fetch_at: now - TimeDelta::hours(1),
            ..fetched(now - TimeDelta::hours(2))
        };
        store.record_fetch(a, &overdue).await.unwrap();
        store.sync_sources(&sync(&["a", "new"])).await.unwrap();
        let lease = now + TimeDelta::minutes(1);
        let first = store.claim_due("me", now, lease, 1, None).await.unwrap();
        assert_eq!(first[0].name, "new", "{}", db.name);
        let second = store.claim_due("me", now, lease, 1, None).await.unwrap();
        assert_eq!(second[0].name, "a", "{}", db.name);
    }
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_a_released_one_at_once() {
    for db in backends().await {
        let store = db.store().await;
        store.sync_sources(&sync(&["a", "b"])).await.unwrap();
        let now = Utc::now();
        let lease = now + TimeDelta::seconds(30);
        let first = store.claim_due("dead", now, lease, 10, None).await.unwrap();
        assert_eq!(first.len(), 2, "{}", db.name);
        let during = store
            .claim_due("alive", now + TimeDelta::seconds(29), lease, 10, None)
            .await
            .unwrap();
        assert!(during.is_empty(), "{}: leased sources are skipped", db.name);
        // Named sources (`tributary fetch a`) respect leases as well.
        let named = store
            .claim_due("alive", now, lease, 10, Some(&["a".to_string()]))
            .await
            .unwrap();
        assert!(named.is_empty(), "{}", db.name);
        assert!(store
            .claim_due("alive", now, lease, 10, Some(&[]))
            .await
            .unwrap()
            .is_empty());

        // The holder died: past its lease the sources are taken over.
        let later = now + TimeDelta::seconds(31);
        let taken = store
            .claim_due("alive", later, later + TimeDelta::seconds(30), 10, None)
            .await
            .unwrap();
        assert_eq!(taken.len(), 2, "{}", db.name);

        // A clean shutdown releases its leases for the next claimer.
        store.release_leases("alive").await.unwrap();
        let again = store
            .claim_due("next", later, later, 10, None)
            .await
            .unwrap();
        assert_eq!(again.len(), 2, "{}", db.name);
    }
}

#[tokio::test]
async fn a_fetch_record_round_trips_and_schedules_the_next_claim() {
    for db in backends().await {
        let store = db.store().await;
        store.sync_sources(&sync(&["a"])).await.unwrap();
        let id = store.source_id("a").await.unwrap();
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        let claimed = store
            .claim_due("me", now, now + TimeDelta::minutes(5), 10, None)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let failure = FetchRecord {
            at: now,
            status: Some(503),
            error: Some("HTTP 503".into()),
            next_fetch_at: now + TimeDelta::minutes(10),
            validators: Some((
                Some("W/\"e1\"".into()),
                Some("Tue, 02 Jan 2024 00:00:00 GMT".into()),
            )),
            retry_after_until: Some(now + TimeDelta::minutes(10)),
            backoff_until: Some(now + TimeDelta::minutes(20)),
            failed: true,
            ..FetchRecord::default()
        };
        store.record_fetch(id, &failure).await.unwrap();
        store.record_fetch(id, &failure).await.unwrap();
        let state = &store.source_states().await.unwrap()[0];
        assert_eq!(state.last_fetch_at, Some(now), "{}", db.name);
        assert_eq!(state.last_status, Some(503), "{}", db.name);
        assert_eq!(state.last_error.as_deref(), Some("HTTP 503"), "{}", db.name);
        assert_eq!(state.consecutive_failures, 2, "{}", db.name);
        assert_eq!(
            state.next_fetch_at,
            Some(now + TimeDelta::minutes(10)),
            "{}",
            db.name
        );
        assert_eq!(
            state.retry_after_until, failure.retry_after_until,
            "{}",
            db.name
        );
        assert_eq!(state.backoff_until, failure.backoff_until, "{}", db.name);
        assert_eq!(state.etag.as_deref(), Some("W/\"e1\""), "{}", db.name);
        assert_eq!(
            state.last_modified.as_deref(),
            Some("Tue, 02 Jan 2024 00:00:00 GMT")
        );
        assert_eq!(
            store.next_due().await.unwrap(),
            Some(now + TimeDelta::minutes(10))
        );

        // Not due before next_fetch_at (the lease was released by the record).
        let early = store.claim_due("me", now, now, 10, None).await.unwrap();
        assert!(early.is_empty(), "{}", db.name);
        let due = now + TimeDelta::minutes(10);
        let claimed = store.claim_due("me", due, due, 10, None).await.unwrap();
        assert_eq!(claimed[0].etag.as_deref(), Some("W/\"e1\""), "{}", db.name);
        assert_eq!(claimed[0].consecutive_failures, 2, "{}", db.name);

        // Success resets failures; validators `None` keeps the stored ones.
        store.record_fetch(id, &fetched(due)).await.unwrap();
        let state = &store.source_states().await.unwrap()[0];
        assert_eq!(state.consecutive_failures, 0, "{}", db.name);
        assert_eq!(state.last_error, None, "{}", db.name);
        assert_eq!(state.etag.as_deref(), Some("W/\"e1\""), "{}", db.name);

        // 410 Gone: disabled, never claimed again.
        let gone = FetchRecord {
            status: Some(410),
            error: Some("gone".into()),
            disabled_reason: Some("410 Gone".into()),
            ..fetched(due)
        };
        store.record_fetch(id, &gone).await.unwrap();
        let state = &store.source_states().await.unwrap()[0];
        assert_eq!(
            state.disabled_reason.as_deref(),
            Some("410 Gone"),
            "{}",
            db.name
        );
        let far = due + TimeDelta::days(30);
        assert!(store
            .claim_due("me", far, far, 10, None)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn a_page_walks_the_published_index_instead_of_scanning_articles() {
    for db in backends().await {
        let store = db.store().await;
        store.sync_sources(&sync(&["a"])).await.unwrap();
        let a = store.source_id("a").await.unwrap();
        let batch = china_and_sport(3000);
        store.ingest(a, &batch, &fetched(at(5000))).await.unwrap();
        let plan = match store.backend() {
            Backend::Sqlite => store.explain_page(&Filter::default()).await.unwrap(),
            Backend::Postgres => {
                analyze(&db.url).await;
                store.explain_page(&Filter::default()).await.unwrap()
            }
        };
        let plan = plan.join("\n");
        match store.backend() {
            Backend::Sqlite => assert!(
                plan.contains("articles_published") && !plan.contains("TEMP B-TREE"),
                "{plan}"
            ),
            Backend::Postgres => assert!(
                plan.contains("articles_published") && !plan.contains("Seq Scan on articles"),
                "{plan}"
            ),
        }
        if store.backend() == Backend::Sqlite {
            let china = Filter {
                any: vec!["china".into()],
                ..Filter::default()
            };
            // A tag filter reads the tag's newest entries from its index and
            // fetches only those articles; the only sorts are of the
            // `limit + 1` candidates.
            let plan = store.explain_page(&china).await.unwrap();
            assert!(
                plan.iter()
                    .any(|l| l
                        .starts_with("SEARCH t USING COVERING INDEX article_tags_term_published")),
                "{plan:?}"
            );
            assert!(
                plan.iter()
                    .any(|l| l.starts_with("SEARCH a USING INTEGER PRIMARY KEY")),
                "{plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|l| l.starts_with("SCAN a") || l.starts_with("SCAN t")),
                "{plan:?}"
            );
        }
    }
}

async fn analyze(url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::Executor::execute(&mut conn, "ANALYZE").await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_first_import_builds_the_tag_index_once_at_the_end() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let migrated = tag_index_sql(&db.url)
        .await
        .expect("the migration creates it");
    let [a] = with_sources(&store, &["a"]).await[..] else {
        unreachable!()
    };
    let bulk_load = store.begin_bulk_load().await.unwrap().expect("empty store");
    assert_eq!(tag_index_sql(&db.url).await, None);
    let batch = china_and_sport(300);
    store.ingest(a, &batch, &fetched(at(5000))).await.unwrap();
    let china = Filter {
        any: vec!["china".into()],
        ..Filter::default()
    };
    // Meanwhile filtered views are right, only slower.
    let during = everything(&store, &china).await;
    assert_eq!(during.len(), 100);
    assert!(during.windows(2).all(|w| w[0].published >= w[1].published));
    bulk_load.finish().await.unwrap();
    // The same index as the migration's, and used again.
    assert_eq!(
        tag_index_sql(&db.url)
            .await
            .map(|s| s.replace("IF NOT EXISTS ", "")),
        Some(migrated)
    );
    // (Statements prepared before re-plan when they next run; an EXPLAIN
    // does not, so it asks a connection opened after.)
    let fresh = db.store().await;
    let plan = fresh.explain_page(&china).await.unwrap();
    fresh.close().await;
    assert!(
        plan.iter()
            .any(|l| l.starts_with("SEARCH t USING COVERING INDEX article_tags_term_published")),
        "{plan:?}"
    );
    let after: Vec<_> = everything(&store, &china)
        .await
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(after, during.iter().map(|a| a.id).collect::<Vec<_>>());
    // A store with articles imports row by row: its index stays.
    assert!(store.begin_bulk_load().await.unwrap().is_none());
    assert!(tag_index_sql(&db.url).await.is_some());
    store.close().await;
}

#[tokio::test]
async fn a_bulk_load_cut_short_leaves_no_store_without_its_tag_index() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    // Dropped unfinished (an error unwound the import): built again at once.
    drop(store.begin_bulk_load().await.unwrap().expect("empty store"));
    eventually(Duration::from_secs(2), || async {
        tag_index_sql(&db.url).await.is_some()
    })
    .await;
    assert!(tag_index_sql(&db.url).await.is_some());
    // The process died mid-import: the next start builds it.
    std::mem::forget(store.begin_bulk_load().await.unwrap().expect("still empty"));
    store.close().await;
    assert_eq!(tag_index_sql(&db.url).await, None);
    let reopened = db.store().await;
    assert!(tag_index_sql(&db.url).await.is_some());
    reopened.close().await;
}

#[tokio::test]
async fn postgres_imports_row_by_row() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    // Other instances may be serving from it: its index is never dropped.
    assert!(store.begin_bulk_load().await.unwrap().is_none());
    store.close().await;
}

#[tokio::test]
async fn an_ingest_finds_stored_articles_by_their_keys_without_reading_them_all() {
    for db in backends().await {
        let store = db.store().await;
        let [a] = with_sources(&store, &["a"]).await[..] else {
            unreachable!()
        };
        let batch = china_and_sport(20_000);
        store.ingest(a, &batch, &fetched(at(5000))).await.unwrap();
        if store.backend() == Backend::Postgres {
            analyze(&db.url).await;
        }
        // The next refresh of 50 of them: one index probe per key.
        let plan = store
            .explain_identity_lookup(&batch[..50])
            .await
            .unwrap()
            .join("\n");
        match store.backend() {
            Backend::Sqlite => assert!(
                !plan.lines().any(|l| l.starts_with("SCAN articles")),
                "{plan}"
            ),
            Backend::Postgres => assert!(!plan.contains("Seq Scan on articles"), "{plan}"),
        }
    }
}

#[tokio::test]
async fn postgres_analyzes_the_tables_and_vacuums_the_tag_index_as_a_first_import_grows_them() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    let [a] = with_sources(&store, &["a"]).await[..] else {
        unreachable!()
    };
    let batch = china_and_sport(1500);
    store.ingest(a, &batch, &fetched(at(5000))).await.unwrap();
    // Not autovacuum's (`last_autoanalyze`): this instance's own.
    let analyzed = || async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let analyzed: bool = sqlx::query_scalar(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'article_bands'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        analyzed
    };
    let done = eventually(Duration::from_secs(10), analyzed).await;
    assert!(done, "no ANALYZE after 1,500 new articles");
    // Filtered pages read `article_tags` by index alone only where the
    // visibility map says so: the instance vacuums it too, not autovacuum.
    let vacuumed = || async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let (vacuumed, pages, visible): (bool, i32, i32) = sqlx::query_as(
            "SELECT s.last_vacuum IS NOT NULL, c.relpages, c.relallvisible
             FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
             WHERE s.relname = 'article_tags'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        vacuumed && pages > 0 && visible == pages
    };
    let done = eventually(Duration::from_secs(10), vacuumed).await;
    assert!(
        done,
        "article_tags not all-visible after 1,500 new articles"
    );
    store.close().await;
}

/// `lang=fr` holds French articles and their regional variants, on every
/// backend and through tag-driven and scanned pages alike; an edit that
/// states no language keeps the one stored.
#[tokio::test]
async fn language_filters_hold_an_articles_language_and_its_regional_variants() {
    for db in backends().await {
        let store = db.store().await;
        let [a] = with_sources(&store, &["a"]).await[..] else {
            unreachable!()
        };
        let mut stories = Vec::new();
        for (i, (name, language)) in [
            ("paris", Some("fr")),
            ("quebec", Some("fr-CA")),
            ("london", Some("en-GB")),
            ("frisian", Some("fy")),
            ("unknown", None),
        ]
        .into_iter()
        .enumerate()
        {
            let mut s = story(name, i as i64, &["World"]);
            s.language = language.map(String::from);
            stories.push(s);
        }
        store.ingest(a, &stories, &fetched(at(10))).await.unwrap();
        let names = |articles: Vec<tributary::model::Article>| -> Vec<String> {
            articles.into_iter().map(|a| a.title).collect()
        };
        for any in [vec![], vec!["world".to_string()]] {
            let french = Filter {
                any: any.clone(),
                languages: vec!["fr".into()],
                ..Filter::default()
            };
            assert_eq!(
                names(everything(&store, &french).await),
                ["Story quebec", "Story paris"],
                "{}",
                db.name
            );
            let canadian_or_english = Filter {
                any,
                languages: vec!["fr-ca".into(), "en".into()],
                ..Filter::default()
            };
            assert_eq!(
                names(everything(&store, &canadian_or_english).await),
                ["Story london", "Story quebec"],
                "{}",
                db.name
            );
        }
        let all = everything(&store, &Filter::default()).await;
        let paris = all.iter().find(|a| a.title == "Story paris").unwrap();
        assert_eq!(paris.language.as_deref(), Some("fr"), "{}", db.name);

        let mut edited = story("paris", 0, &["World"]);
        edited.fingerprint = "fp-paris-2".into();
        edited.summary = Some("Edited.".into());
        store.ingest(a, &[edited], &fetched(at(20))).await.unwrap();
        let all = everything(&store, &Filter::default()).await;
        let paris = all.iter().find(|a| a.title == "Story paris").unwrap();
        assert_eq!(paris.summary.as_deref(), Some("Edited."), "{}", db.name);
        assert_eq!(paris.language.as_deref(), Some("fr"), "{}", db.name);
        store.close().await;
    }
}
