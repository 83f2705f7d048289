//! Webhooks (docs/CONFIG.md "Webhooks"): new articles of a feed POSTed to
//! a receiver written here, on 127.0.0.1, which checks every signature as
//! a Standard Webhooks library would, and fails, stalls or answers 500 on
//! cue. What a receiver must see: each new matching article, under one
//! `webhook-id` however often it is sent, across failures, restarts and a
//! kill -9 between the article's commit and the receiver's answer.

use crate::helpers::*;
use crate::store::{backends, fetched, story, with_sources};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use std::collections::{BTreeSet, VecDeque};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary::clock::Clock;
use tributary::model::Filter;
use tributary::store::WebhookRoute;

/// The Standard Webhooks specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How the receiver answers its next requests (then 200).
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Never answers: the sender's timeout (or death) ends the request.
    Stall,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: i64,
    content_type: String,
    body: String,
    /// The signature verified against [`SECRET`].
    verified: bool,
    answered: Option<u16>,
}

#[derive(Default)]
struct ReceiverState {
    script: Mutex<VecDeque<Answer>>,
    got: Mutex<Vec<Received>>,
}

struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> Receiver {
        let state = Arc::new(ReceiverState::default());
        state.script.lock().unwrap().extend(script.iter().copied());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, state }
    }

    fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// The distinct ids it answered 2xx to.
    fn delivered(&self) -> BTreeSet<String> {
        self.got()
            .into_iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .map(|r| r.id)
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let body = String::from_utf8(body.to_vec()).unwrap();
    let verified = verify(&id, &timestamp, &body, &header("webhook-signature"));
    let answer = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200));
    let index = {
        let mut got = state.got.lock().unwrap();
        got.push(Received {
            id,
            timestamp: timestamp.parse().unwrap_or(0),
            content_type: header("content-type"),
            body,
            verified,
            answered: None,
        });
        got.len() - 1
    };
    match answer {
        Answer::Status(status) => {
            state.got.lock().unwrap()[index].answered = Some(status);
            StatusCode::from_u16(status).unwrap()
        }
        Answer::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
    }
}

/// What a receiver's Standard Webhooks library checks: HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under the base64 key after `whsec_`, among
/// the space-separated `v1,` signatures.
fn verify(id: &str, timestamp: &str, body: &str, signatures: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = engine.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// A config with one source `wire` at `feed_url`, a feed `china` (tag
/// china) and a webhook `name` on it to `receiver`.
fn config(feed_url: &str, name: &str, receiver: &str, extra: &str) -> TestConfig {
    TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"wire\"\nurl = \"{feed_url}\"\n\n\
             [[feed]]\nname = \"china\"\nany = [\"China\"]\n\n\
             [[webhook]]\nname = \"{name}\"\nfeed = \"china\"\nurl = \"{receiver}\"\n\
             secret = \"{SECRET}\"\ntimeout = \"1s\"\n{extra}\n"
        ),
    )
}

fn wire(items: &[(&str, &str, &[&str])]) -> String {
    rss_items("Wire", items)
}

/// `tributary hooks`' counts for `name`: pending, failing, delivered,
/// given up.
fn hooks_counts(config: &TestConfig, name: &str) -> [i64; 4] {
    let listed = hooks_command(config);
    let row = listed
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{listed}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    [3, 4, 5, 6].map(|i| fields[i].parse().unwrap_or_else(|_| panic!("{listed}")))
}

fn hooks_command(config: &TestConfig) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["hooks", "-c", config.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env("COLUMNS", "400")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn each_new_article_of_the_feed_is_posted_once_signed_and_others_are_not() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[]).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Local fair", "https://wire.test/2", &["Local"]),
            ("Shanghai port", "https://wire.test/3", &["China"]),
        ])),
    );
    let config = config(&feeds.url("/wire"), "hook-once", &receiver.url, "");
    let app = TestApp::spawn(config.load()).await;
    within("two messages delivered", || receiver.delivered().len() == 2).await;

    let got = receiver.got();
    assert!(got.iter().all(|r| r.verified), "{got:?}");
    assert!(got
        .iter()
        .all(|r| r.content_type.starts_with("application/json")));
    let now = Utc::now().timestamp();
    assert!(got.iter().all(|r| (now - r.timestamp).abs() < 300));
    let titles: BTreeSet<String> = got
        .iter()
        .map(|r| {
            let item: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert!(item["id"].as_str().unwrap().starts_with("urn:uuid:"));
            item["title"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        titles,
        BTreeSet::from(["Beijing summit".to_string(), "Shanghai port".to_string()])
    );

    // A refetch with one more China story: only that one is sent.
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Local fair", "https://wire.test/2", &["Local"]),
            ("Shanghai port", "https://wire.test/3", &["China"]),
            ("Yangtze flood", "https://wire.test/4", &["China"]),
        ])),
    );
    app.fetch_now().await;
    within("the third message delivered", || {
        receiver.delivered().len() == 3
    })
    .await;
    // The receiver answered; the daemon records it just after.
    assert!(
        eventually(Duration::from_secs(20), || async {
            let metrics = app.get_text("/metrics").await;
            let delivered = &[("webhook", "hook-once")];
            sample(&metrics, "tributary_webhook_delivered_total", delivered) == Some(3.0)
        })
        .await
    );
    let metrics = app.get_text("/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "tributary_webhook_delivered_total",
            &[("webhook", "hook-once")]
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "tributary_webhook_pending",
            &[("webhook", "hook-once")]
        ),
        Some(0.0)
    );
    app.stop().await;
    assert_eq!(receiver.got().len(), 3, "each message sent once");
}

#[tokio::test]
async fn a_receiver_answering_500_then_200_gets_the_same_message_again_after_the_backoff() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[Answer::Status(500)]).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    let config = config(&feeds.url("/wire"), "hook-500", &receiver.url, "");
    let clock = Clock::manual(whole_second());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    within("a first attempt", || receiver.got().len() == 1).await;
    let loaded = config.load();
    let states = || async {
        let store = tributary::app::open_store(&loaded).await.unwrap();
        let states = store.webhook_states().await.unwrap();
        store.close().await;
        states
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            states().await.first().is_some_and(|s| s.failing == 1)
        })
        .await
    );
    let state = &states().await[0];
    assert_eq!((state.pending, state.delivered), (1, 0));
    assert_eq!(state.last_error.as_deref(), Some("HTTP 500"));
    let listed = hooks_command(&config);
    assert!(listed.contains("HTTP 500"), "{listed}");
    assert_eq!(hooks_counts(&config, "hook-500"), [1, 1, 0, 0]);
    let metrics = app.get_text("/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "tributary_webhook_failing",
            &[("webhook", "hook-500")]
        ),
        Some(1.0)
    );

    // Tried again once the backoff (5 s on the daemon's clock) has passed.
    assert_eq!(
        state.next_attempt_at,
        Some(clock.now() + TimeDelta::seconds(5))
    );
    clock.advance(TimeDelta::seconds(5));
    within("the retry delivered", || receiver.delivered().len() == 1).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id, "one webhook-id for both attempts");
    assert_eq!(got[0].body, got[1].body);
    assert!(got.iter().all(|r| r.verified));
    // The receiver answered; the daemon records it just after.
    assert!(
        eventually(Duration::from_secs(20), || async {
            states().await.first().is_some_and(|s| s.delivered == 1)
        })
        .await
    );
    app.stop().await;
    let state = &states().await[0];
    assert_eq!((state.pending, state.failing, state.delivered), (0, 0, 1));
    assert_eq!(hooks_counts(&config, "hook-500"), [0, 0, 1, 0]);
}

#[tokio::test]
async fn a_stalled_receiver_times_out_and_the_message_is_sent_again() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[Answer::Stall]).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    let config = config(&feeds.url("/wire"), "hook-stall", &receiver.url, "");
    let clock = Clock::manual(whole_second());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    let store = tributary::app::open_store(&app.config).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store
                .webhook_states()
                .await
                .unwrap()
                .first()
                .is_some_and(|s| s.failing == 1)
        })
        .await,
        "the stalled attempt should fail by its timeout"
    );
    let state = &store.webhook_states().await.unwrap()[0];
    assert_eq!(state.last_error.as_deref(), Some("no answer within 1s"));
    clock.advance(TimeDelta::seconds(5));
    within("the retry delivered", || receiver.delivered().len() == 1).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id);
    app.stop().await;
    store.close().await;
}

/// A receiver that keeps failing: the message is given up once
/// `give_up_after` has passed, and tried no more.
#[tokio::test]
async fn a_message_failing_past_give_up_after_is_given_up() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[Answer::Status(503), Answer::Status(503)]).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    let config = config(
        &feeds.url("/wire"),
        "hook-give-up",
        &receiver.url,
        "give_up_after = \"8s\"\n",
    );
    let clock = Clock::manual(whole_second());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    let store = tributary::app::open_store(&app.config).await.unwrap();
    let state = || async { store.webhook_states().await.unwrap().first().cloned() };
    assert!(
        eventually(Duration::from_secs(20), || async {
            state().await.is_some_and(|s| s.failing == 1)
        })
        .await
    );
    // The second attempt, 5 s later, fails too; the next would come after
    // 8 s: given up.
    clock.advance(TimeDelta::seconds(5));
    assert!(
        eventually(Duration::from_secs(20), || async {
            state().await.is_some_and(|s| s.given_up == 1)
        })
        .await,
        "{:?}",
        state().await
    );
    let s = state().await.unwrap();
    assert_eq!((s.pending, s.delivered), (0, 0));
    assert_eq!(s.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(receiver.got().len(), 2);
    assert_eq!(hooks_counts(&config, "hook-give-up"), [0, 0, 0, 1]);
    let metrics = app.get_text("/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "tributary_webhook_failures_total",
            &[("webhook", "hook-give-up")]
        ),
        Some(2.0)
    );
    app.stop().await;
    store.close().await;
}

#[tokio::test]
async fn messages_stored_while_no_daemon_ran_are_delivered_when_it_starts_in_atom() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[]).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Shanghai port", "https://wire.test/3", &["China"]),
        ])),
    );
    let config = config(
        &feeds.url("/wire"),
        "hook-restart",
        &receiver.url,
        "format = \"atom\"\n",
    );
    // `tributary fetch`: stored, and queued in the same transaction.
    fetch_now(&config.load()).await;
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    assert_eq!(store.webhook_states().await.unwrap()[0].pending, 2);
    store.close().await;
    assert!(receiver.got().is_empty());

    let app = TestApp::spawn(config.load()).await;
    within("both delivered", || receiver.delivered().len() == 2).await;
    app.stop().await;
    for r in receiver.got() {
        assert!(r.verified);
        assert!(r.content_type.starts_with("application/atom+xml"));
        let entry = feed_rs::parser::parse(r.body.as_bytes()).unwrap();
        assert_eq!(entry.entries.len(), 1, "{}", r.body);
    }
}

/// The outbox's claims on both backends: a message leased to one instance
/// is not claimed by another until the lease runs out, a delivered one
/// never again, and the ingest queues a message only for a new article
/// its webhook's feed holds.
#[tokio::test]
async fn outbox_claims_lease_each_message_to_one_instance_on_every_backend() {
    for db in backends().await {
        let china = Filter {
            any: vec!["china".into()],
            ..Filter::default()
        };
        let store = db.store().await.with_webhooks(vec![WebhookRoute {
            name: "china".into(),
            filter: china,
        }]);
        let id = with_sources(&store, &["wire"]).await[0];
        let at = Utc::now();
        let record = fetched(at);
        store
            .ingest(
                id,
                &[story("one", 0, &["China"]), story("two", 1, &["Sport"])],
                &record,
            )
            .await
            .unwrap();
        // A refetch (and an edit) queues nothing more.
        let mut edited = story("one", 0, &["China"]);
        edited.fingerprint = "edited".into();
        store.ingest(id, &[edited], &record).await.unwrap();

        let names = ["china".to_string()];
        let lease = at + TimeDelta::seconds(40);
        let a = store
            .claim_deliveries("a", &names, at, lease, 10)
            .await
            .unwrap();
        assert_eq!(a.len(), 1, "{}", db.name);
        assert_eq!(a[0].attempts, 1);
        assert_eq!(
            a[0].message_id,
            tributary::store::message_id("china", "urn:test:one")
        );
        let b = store
            .claim_deliveries("b", &names, at + TimeDelta::seconds(1), lease, 10)
            .await
            .unwrap();
        assert!(b.is_empty(), "{}: claimed twice", db.name);
        // `a` died: its lease runs out, `b` takes the message over.
        let later = lease + TimeDelta::seconds(1);
        let b = store
            .claim_deliveries("b", &names, later, later + TimeDelta::seconds(40), 10)
            .await
            .unwrap();
        assert_eq!(
            (b.len(), b[0].id, b[0].attempts),
            (1, a[0].id, 2),
            "{}",
            db.name
        );
        store.mark_delivered(b[0].id, later).await.unwrap();
        let again = store
            .claim_deliveries(
                "a",
                &names,
                later + TimeDelta::days(1),
                later + TimeDelta::days(2),
                10,
            )
            .await
            .unwrap();
        assert!(again.is_empty(), "{}: delivered twice", db.name);
        let state = &store.webhook_states().await.unwrap()[0];
        assert_eq!((state.pending, state.delivered), (0, 1), "{}", db.name);
        store.close().await;
    }
}

/// Two daemons on one PostgreSQL database: whichever stores the
/// articles, their messages are leased by one of them at a time, so the
/// receiver gets each once.
#[tokio::test]
async fn two_daemons_on_one_postgres_database_send_each_message_once() {
    let Some(db) = crate::store::TestDb::postgres().await else {
        return;
    };
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[]).await;
    let stories: Vec<(String, String)> = (1..=12)
        .map(|n| (format!("China story {n}"), format!("https://wire.test/{n}")))
        .collect();
    let items: Vec<(&str, &str, &[&str])> = stories
        .iter()
        .map(|(title, link)| (title.as_str(), link.as_str(), &["China"][..]))
        .collect();
    feeds.set("/wire", Fixture::feed(wire(&items)));
    let text = format!(
        "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         [[source]]\nname = \"wire\"\nurl = \"{}\"\n\n\
         [[feed]]\nname = \"china\"\nany = [\"China\"]\n\n\
         [[webhook]]\nname = \"hook-two\"\nfeed = \"china\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        db.url,
        feeds.url("/wire"),
        receiver.url
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    let config = tributary::config::Config::load(&path).unwrap();
    let one = TestApp::spawn(config.clone()).await;
    let two = TestApp::spawn(config).await;
    within("every story delivered", || receiver.delivered().len() == 12).await;
    one.stop().await;
    two.stop().await;
    let got = receiver.got();
    assert_eq!(got.len(), 12, "a message sent twice: {got:?}");
    assert!(got.iter().all(|r| r.verified));
}

/// SIGHUP adds a webhook to a running `tributary run`: articles stored
/// from then on are sent; those stored before are not.
#[tokio::test]
async fn a_webhook_added_by_a_reload_sends_the_articles_stored_after_it() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[]).await;
    feeds.set(
        "/a",
        Fixture::feed(wire(&[(
            "Before the hook",
            "https://wire.test/a1",
            &["China"],
        )])),
    );
    feeds.set(
        "/b",
        Fixture::feed(wire(&[(
            "After the hook",
            "https://wire.test/b1",
            &["China"],
        )])),
    );
    let sources = format!(
        "[[source]]\nname = \"a\"\nurl = \"{}\"\n\n[[feed]]\nname = \"china\"\nany = [\"China\"]\n",
        feeds.url("/a")
    );
    let config = TestConfig::write("", &sources);
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-c", config.path().to_str().unwrap()])
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let loaded = config.load();
    let stored = eventually(Duration::from_secs(20), || async {
        let store = tributary::app::open_store(&loaded).await.unwrap();
        let n = store.article_count().await.unwrap();
        store.close().await;
        n == 1
    })
    .await;
    assert!(stored, "the first source's story was not stored");

    let text = std::fs::read_to_string(config.path()).unwrap();
    std::fs::write(
        config.path(),
        format!(
            "{text}\n[[source]]\nname = \"b\"\nurl = \"{}\"\n\n\
             [[webhook]]\nname = \"hook-reload\"\nfeed = \"china\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
            feeds.url("/b"),
            receiver.url
        ),
    )
    .unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let delivered = eventually(Duration::from_secs(20), || {
        std::future::ready(receiver.delivered().len() == 1)
    })
    .await;
    let term = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(daemon.wait().unwrap().success());
    assert!(delivered, "{:?}", receiver.got());
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let item: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(item["title"], "After the hook");
}

/// The daemon dies (SIGKILL) after the article was stored and while its
/// message is with the receiver, which never answers; started again, it
/// sends it again, under the same id, and the receiver takes it.
#[tokio::test]
async fn a_kill_9_between_commit_and_delivery_loses_no_message() {
    let feeds = FeedServer::start().await;
    let receiver = Receiver::start(&[Answer::Stall]).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    // A long timeout: only the kill ends the first attempt.
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"wire\"\nurl = \"{}\"\n\n\
             [[feed]]\nname = \"china\"\nany = [\"China\"]\n\n\
             [[webhook]]\nname = \"hook-kill\"\nfeed = \"china\"\nurl = \"{}\"\n\
             secret = \"{SECRET}\"\ntimeout = \"1h\"\n",
            feeds.url("/wire"),
            receiver.url
        ),
    );
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["run", "-c", config.path().to_str().unwrap()])
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = run();
    within("the first attempt reached the receiver", || {
        receiver.got().len() == 1
    })
    .await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let mut second = run();
    let delivered = eventually(Duration::from_secs(30), || {
        std::future::ready(receiver.delivered().len() == 1)
    })
    .await;
    // The receiver answered; the daemon records it just after.
    let recorded = eventually(Duration::from_secs(30), || {
        std::future::ready(hooks_counts(&config, "hook-kill") == [0, 0, 1, 0])
    })
    .await;
    let _ = second.kill();
    second.wait().unwrap();
    assert!(delivered, "{:?}", receiver.got());
    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].id, got[1].id);
    assert!(got.iter().all(|r| r.verified));
    assert!(recorded, "{}", hooks_command(&config));
}

#[test]
fn webhooks_take_a_feed_or_a_filter_and_refuse_plain_secrets_unknown_and_coverage_feeds() {
    let check = |webhook: &str| {
        let config = TestConfig::write(
            "",
            &format!(
                "[[source]]\nname = \"wire\"\nurl = \"https://wire.test/feed\"\n\n\
                 [[feed]]\nname = \"china\"\nany = [\"China\"]\n\n\
                 [[feed]]\nname = \"top\"\nmin_outlets = 2\n\n[[webhook]]\n{webhook}\n"
            ),
        );
        tributary::config::Config::load(&config.path()).map(|c| format!("{:?}", c.webhooks))
    };
    let ok = check(&format!(
        "feed = \"china\"\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""
    ))
    .unwrap();
    assert!(!ok.contains("MfKQ9r8"), "the secret shows in Debug: {ok}");
    // A filter of its own instead of a feed, as a feed's keys.
    let own = check(&format!(
        "name = \"french-wire\"\nsources = [\"wire\"]\nlang = [\"FR\"]\nnone = [\"Sport\"]\n\
         url = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""
    ))
    .unwrap();
    assert!(
        own.contains("feed: None")
            && own.contains("languages: [\"fr\"]")
            && own.contains("none: [\"sport\"]"),
        "{own}"
    );
    for (webhook, error) in [
        (
            "feed = \"china\"\nurl = \"https://hooks.test/in\"\nsecret = \"hunter2-hunter2\"".to_string(),
            "does not start with whsec_",
        ),
        (
            "feed = \"china\"\nurl = \"https://hooks.test/in\"\nsecret = \"whsec_c2hvcnQ=\"".to_string(),
            "its key is 5 bytes",
        ),
        (
            format!("feed = \"nope\"\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""),
            "unknown feed \"nope\"",
        ),
        (
            format!("feed = \"top\"\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""),
            "coverage conditions",
        ),
        (
            format!("feed = \"china\"\nurl = \"ftp://hooks.test/in\"\nsecret = \"{SECRET}\""),
            "must be an http or https URL",
        ),
        (
            format!("feed = \"china\"\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\"\nformat = \"xml\""),
            "format must be",
        ),
        (
            format!("feed = \"china\"\nany = [\"x\"]\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""),
            "`feed` or its own any/all/none/sources/lang, not both",
        ),
        (
            format!("any = [\"x\"]\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""),
            "a webhook without `feed` needs a `name`",
        ),
        (
            format!("name = \"w\"\nsources = [\"nope\"]\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\""),
            "unknown source \"nope\" in webhook",
        ),
        (
            format!("feed = \"china\"\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\"\ntimeout = \"2h\""),
            "timeout must be at most 1h",
        ),
        (
            format!("feed = \"china\"\nurl = \"https://hooks.test/in\"\nsecret = \"{SECRET}\"\ngive_up_after = \"60d\""),
            "give_up_after must be at most 30d",
        ),
    ] {
        let message = check(&webhook).unwrap_err().to_string();
        assert!(message.contains(error), "{webhook}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("tributary.toml:"), "{message}");
    }
}
