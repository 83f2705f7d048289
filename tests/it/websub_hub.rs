//! WebSub publishing (docs/CONFIG.md "WebSub"): tributary as the hub of
//! its own feeds, with subscribers written here on 127.0.0.1 that answer
//! the intent verification (or not), check every distribution's
//! signature, and fail on cue; and an external hub written here that
//! counts the publish pings it gets.

use crate::helpers::*;
use crate::store::{backends, fetched, story, with_sources};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary::clock::Clock;
use tributary::model::Filter;
use tributary::store::WebhookRoute;

const SECRET: &str = "a subscriber's own secret";
const TOPIC: &str = "http://feeds.test/feeds/china.atom";

/// How the subscriber answers a verification GET.
#[derive(Clone, Copy, Debug)]
enum Verify {
    Echo,
    WrongEcho,
    NoEcho,
}

/// One distribution the subscriber got.
#[derive(Clone, Debug)]
struct Distribution {
    body: String,
    content_type: String,
    link: String,
    /// `X-Hub-Signature` checked against [`SECRET`].
    verified: bool,
    answered: u16,
}

#[derive(Default)]
struct SubscriberState {
    verify: Mutex<VecDeque<Verify>>,
    answers: Mutex<VecDeque<u16>>,
    verifications: Mutex<Vec<HashMap<String, String>>>,
    got: Mutex<Vec<Distribution>>,
}

struct Subscriber {
    callback: String,
    state: Arc<SubscriberState>,
}

impl Subscriber {
    async fn start(verify: &[Verify], answers: &[u16]) -> Subscriber {
        let state = Arc::new(SubscriberState::default());
        state.verify.lock().unwrap().extend(verify.iter().copied());
        state
            .answers
            .lock()
            .unwrap()
            .extend(answers.iter().copied());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let callback = format!("http://{}/callback?token=x", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/callback",
                axum::routing::get(verification).post(distribution),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Subscriber { callback, state }
    }

    fn verifications(&self) -> Vec<HashMap<String, String>> {
        self.state.verifications.lock().unwrap().clone()
    }

    fn got(&self) -> Vec<Distribution> {
        self.state.got.lock().unwrap().clone()
    }

    fn delivered(&self) -> Vec<Distribution> {
        self.got()
            .into_iter()
            .filter(|d| (200..300).contains(&d.answered))
            .collect()
    }
}

async fn verification(
    State(state): State<Arc<SubscriberState>>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let how = state
        .verify
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Verify::Echo);
    let challenge = query.get("hub.challenge").cloned().unwrap_or_default();
    state.verifications.lock().unwrap().push(query);
    match how {
        Verify::Echo => (StatusCode::OK, challenge),
        Verify::WrongEcho => (StatusCode::OK, format!("{challenge}x")),
        Verify::NoEcho => (StatusCode::OK, String::new()),
    }
}

async fn distribution(
    State(state): State<Arc<SubscriberState>>,
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
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let answered = state.answers.lock().unwrap().pop_front().unwrap_or(200);
    state.got.lock().unwrap().push(Distribution {
        body: String::from_utf8(body.to_vec()).unwrap(),
        content_type: header("content-type"),
        link: header("link"),
        verified: header("x-hub-signature") == format!("sha256={expected}"),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

fn wire(items: &[(&str, &str, &[&str])]) -> String {
    rss_items("Wire", items)
}

/// A config with source `wire`, feed `china` (tag china), and `websub`.
fn config(feed_url: &str, websub: &str) -> TestConfig {
    TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"wire\"\nurl = \"{feed_url}\"\n\n\
             [[feed]]\nname = \"china\"\nany = [\"China\"]\n\n[websub]\n{websub}\n"
        ),
    )
}

const SELF_HUB: &str = "hub = \"self\"\nprivate_callbacks = true\ntimeout = \"2s\"";

/// POSTs a subscription request to the app's hub.
async fn request(app: &TestApp, form: &[(&str, &str)]) -> (u16, String) {
    let response = app
        .client
        .post(format!("{}/websub/hub", app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn subscribe(app: &TestApp, callback: &str, lease: &str) -> (u16, String) {
    request(
        app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.callback", callback),
            ("hub.topic", TOPIC),
            ("hub.secret", SECRET),
            ("hub.lease_seconds", lease),
        ],
    )
    .await
}

/// The subscriptions the store holds whose lease runs at `now`.
async fn subscriptions(
    config: &TestConfig,
    now: chrono::DateTime<Utc>,
) -> Vec<tributary::store::HubSubscription> {
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let subscriptions = store.active_subscriptions(now).await.unwrap();
    store.close().await;
    subscriptions
}

async fn wait_subscribed(config: &TestConfig, callback: &str, now: chrono::DateTime<Utc>) {
    assert!(
        eventually(Duration::from_secs(20), || async {
            subscriptions(config, now)
                .await
                .iter()
                .any(|s| s.callback == callback)
        })
        .await,
        "{callback} should be subscribed"
    );
}

#[tokio::test]
async fn a_verified_subscriber_gets_each_new_article_signed_and_feeds_advertise_the_hub() {
    let feeds = FeedServer::start().await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    let config = config(&feeds.url("/wire"), SELF_HUB);
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    // Every output feed advertises the hub: Atom links (still valid RFC
    // 4287), JSON Feed `hubs`, and a `Link:` header, the topic its self.
    let response = app.get("/feeds/china.atom").await;
    let link = response.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(
        link,
        format!("<http://feeds.test/websub/hub>; rel=\"hub\", <{TOPIC}>; rel=\"self\"")
    );
    let atom = response.text().await.unwrap();
    assert!(atom.contains("<link rel=\"hub\" href=\"http://feeds.test/websub/hub\"/>"));
    assert_valid_atom(&atom);
    for path in ["/feed.atom?any=china", "/tags/china.atom"] {
        let atom = app.get_text(path).await;
        assert!(atom.contains("rel=\"hub\""), "{path}");
        assert_valid_atom(&atom);
    }
    let json: serde_json::Value = serde_json::from_str(&app.get_text("/feed.json").await).unwrap();
    assert_eq!(
        json["hubs"],
        serde_json::json!([{"type": "WebSub", "url": "http://feeds.test/websub/hub"}])
    );

    // Subscribe: 202 first, then the verification GET, then stored.
    let subscriber = Subscriber::start(&[], &[]).await;
    let (status, _) = subscribe(&app, &subscriber.callback, "3600").await;
    assert_eq!(status, 202);
    wait_subscribed(&config, &subscriber.callback, Utc::now()).await;
    let asked = &subscriber.verifications()[0];
    assert_eq!(asked["hub.mode"], "subscribe");
    assert_eq!(asked["hub.topic"], TOPIC);
    assert_eq!(asked["hub.lease_seconds"], "3600");
    assert_eq!(asked["token"], "x", "the callback's own query is kept");

    // A new China story at the source: distributed, signed; the other
    // story of the refresh is not in the topic.
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Local fair", "https://wire.test/2", &["Local"]),
            ("Yangtze flood", "https://wire.test/3", &["China"]),
        ])),
    );
    app.fetch_now().await;
    within("the distribution", || subscriber.delivered().len() == 1).await;
    let got = &subscriber.got()[0];
    assert!(got.verified, "X-Hub-Signature should verify: {got:?}");
    assert!(got.content_type.starts_with("application/atom+xml"));
    assert!(got.link.contains(&format!("<{TOPIC}>; rel=\"self\"")));
    assert_valid_atom(&got.body);
    let feed = parse_atom(&got.body);
    let titles: Vec<String> = feed
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert_eq!(titles, ["Yangtze flood"]);

    assert!(
        eventually(Duration::from_secs(20), || async {
            let metrics = app.get_text("/metrics").await;
            sample(&metrics, "tributary_websub_subscriptions", &[]) == Some(1.0)
                && sample(&metrics, "tributary_websub_distributions_pending", &[]) == Some(0.0)
        })
        .await
    );
    app.stop().await;
    assert_eq!(subscriber.got().len(), 1, "sent once");
    let listed = hooks(&config);
    assert!(
        listed.contains("WebSub hub http://feeds.test/websub/hub (self): 1 subscriptions")
            && listed.contains("delivered 1")
            && listed.contains(TOPIC)
            && !listed.contains(SECRET)
            && !listed.contains("token=x"),
        "{listed}"
    );
}

fn hooks(config: &TestConfig) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["hooks", "-c", config.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env("COLUMNS", "400")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_wrong_or_absent_challenge_echo_subscribes_nothing() {
    let feeds = FeedServer::start().await;
    feeds.set("/wire", Fixture::feed(wire(&[])));
    let config = config(&feeds.url("/wire"), SELF_HUB);
    let app = TestApp::spawn(config.load()).await;
    // The only test whose verifications are refused: the count is its own.
    let refused = || async {
        let metrics = app.get_text("/metrics").await;
        let outcome = &[("outcome", "refused")];
        sample(&metrics, "tributary_websub_verifications_total", outcome).unwrap_or(0.0)
    };
    for (n, how) in [Verify::WrongEcho, Verify::NoEcho].into_iter().enumerate() {
        let subscriber = Subscriber::start(&[how], &[]).await;
        let (status, _) = subscribe(&app, &subscriber.callback, "3600").await;
        assert_eq!(status, 202);
        let expected = (n + 1) as f64;
        assert!(
            eventually(Duration::from_secs(20), || async {
                refused().await == expected
            })
            .await,
            "{how:?} should be refused"
        );
        assert_eq!(subscriber.verifications().len(), 1);
        assert!(
            subscriptions(&config, Utc::now()).await.is_empty(),
            "{how:?}"
        );
    }

    // Bad requests are refused at once, saying why.
    let subscriber = Subscriber::start(&[], &[]).await;
    let cb = subscriber.callback.as_str();
    for (form, why) in [
        (
            vec![("hub.mode", "subscribe"), ("hub.callback", cb)],
            "hub.topic is missing",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.callback", cb),
                ("hub.topic", "https://elsewhere.test/feed.atom"),
            ],
            "one of this instance's feeds",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.callback", "ftp://127.0.0.1/x"),
                ("hub.topic", TOPIC),
            ],
            "http or https",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.callback", cb),
                ("hub.topic", "http://feeds.test/top.atom"),
            ],
            "coverage views",
        ),
    ] {
        let (status, text) = request(&app, &form).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(why), "{text}");
    }
    assert!(subscriber.verifications().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn callbacks_on_private_addresses_are_refused_unless_allowed() {
    let feeds = FeedServer::start().await;
    feeds.set("/wire", Fixture::feed(wire(&[])));
    let config = config(&feeds.url("/wire"), "hub = \"self\"");
    let app = TestApp::spawn(config.load()).await;
    let subscriber = Subscriber::start(&[], &[]).await;
    let (status, text) = subscribe(&app, &subscriber.callback, "3600").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not a public address"), "{text}");
    assert!(subscriber.verifications().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_expired_lease_gets_no_delivery() {
    let feeds = FeedServer::start().await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    let config = config(&feeds.url("/wire"), SELF_HUB);
    let clock = Clock::manual(whole_second());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    app.wait_fetched().await;
    let expiring = Subscriber::start(&[], &[]).await;
    assert_eq!(subscribe(&app, &expiring.callback, "60").await.0, 202);
    wait_subscribed(&config, &expiring.callback, clock.now()).await;
    let lease_end = subscriptions(&config, clock.now()).await[0].expires_at;
    assert_eq!(lease_end, clock.now() + TimeDelta::seconds(60));

    // The lease ends; a new story arrives, then a fresh subscriber
    // subscribes and a second story arrives: only the fresh one gets it.
    clock.advance(TimeDelta::seconds(61));
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Yangtze flood", "https://wire.test/2", &["China"]),
        ])),
    );
    app.fetch_now().await;
    let fresh = Subscriber::start(&[], &[]).await;
    assert_eq!(subscribe(&app, &fresh.callback, "3600").await.0, 202);
    wait_subscribed(&config, &fresh.callback, clock.now()).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Yangtze flood", "https://wire.test/2", &["China"]),
            ("Shanghai port", "https://wire.test/3", &["China"]),
        ])),
    );
    app.fetch_now().await;
    within("the fresh subscriber's distribution", || {
        fresh.delivered().len() == 1
    })
    .await;
    assert!(fresh.got()[0].body.contains("Shanghai port"));
    assert!(expiring.got().is_empty(), "{:?}", expiring.got());
    // Pruned: not listed, no row left behind.
    let left = subscriptions(&config, clock.now() - TimeDelta::days(1)).await;
    assert_eq!(left.len(), 1, "{left:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_subscriber_answering_500_then_200_gets_the_distribution_after_the_backoff() {
    let feeds = FeedServer::start().await;
    feeds.set("/wire", Fixture::feed(wire(&[])));
    let config = config(&feeds.url("/wire"), SELF_HUB);
    let clock = Clock::manual(whole_second());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    app.wait_fetched().await;
    let subscriber = Subscriber::start(&[], &[500]).await;
    assert_eq!(subscribe(&app, &subscriber.callback, "3600").await.0, 202);
    wait_subscribed(&config, &subscriber.callback, clock.now()).await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[(
            "Beijing summit",
            "https://wire.test/1",
            &["China"],
        )])),
    );
    app.fetch_now().await;
    within("a first attempt", || subscriber.got().len() == 1).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            let metrics = app.get_text("/metrics").await;
            sample(&metrics, "tributary_websub_distributions_failing", &[]) == Some(1.0)
        })
        .await
    );
    // Tried again once the backoff (5 s on the daemon's clock) has passed.
    clock.advance(TimeDelta::seconds(5));
    within("the retry delivered", || subscriber.delivered().len() == 1).await;
    let got = subscriber.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert!(got.iter().all(|d| d.verified));
    app.stop().await;
}

/// The publish pings a hub got, each as its form pairs.
type Pings = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A hub written here, and the pings it gets.
async fn ping_hub() -> (String, Pings) {
    let pings: Pings = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/hub",
            axum::routing::post(|State(pings): State<Pings>, body: Bytes| async move {
                let pairs = url::form_urlencoded::parse(&body).into_owned().collect();
                pings.lock().unwrap().push(pairs);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(pings.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, pings)
}

#[tokio::test]
async fn an_external_hub_gets_one_publish_ping_per_change() {
    let (hub, pings) = ping_hub().await;
    let feeds = FeedServer::start().await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Local fair", "https://wire.test/2", &["Local"]),
        ])),
    );
    let config = config(&feeds.url("/wire"), &format!("hub = \"{hub}\""));
    let app = TestApp::spawn(config.load()).await;
    let response = app.get("/feeds/china.atom").await;
    assert_eq!(
        response.headers()["link"].to_str().unwrap(),
        format!("<{hub}>; rel=\"hub\", <{TOPIC}>; rel=\"self\"")
    );
    let atom = response.text().await.unwrap();
    assert!(atom.contains(&format!("<link rel=\"hub\" href=\"{hub}\"/>")));
    assert_valid_atom(&atom);
    assert_valid_atom(&app.get_text("/top.atom").await);

    // The first refresh's two stories: one ping for every feed they changed.
    let topics = |ping: &[(String, String)]| -> BTreeSet<String> {
        assert!(ping.contains(&("hub.mode".into(), "publish".into())));
        ping.iter()
            .filter(|(k, _)| k == "hub.url")
            .map(|(_, v)| v.clone())
            .collect()
    };
    within("a first ping", || pings.lock().unwrap().len() == 1).await;
    let first = topics(&pings.lock().unwrap()[0]);
    for topic in [
        TOPIC,
        "http://feeds.test/feeds/china.json",
        "http://feeds.test/feed.atom",
        "http://feeds.test/tags/china.atom",
        "http://feeds.test/tags/local.atom",
    ] {
        assert!(first.contains(topic), "{topic} in {first:?}");
    }

    // A refetch with nothing new pings nothing; a new story pings again.
    app.fetch_now().await;
    feeds.set(
        "/wire",
        Fixture::feed(wire(&[
            ("Beijing summit", "https://wire.test/1", &["China"]),
            ("Local fair", "https://wire.test/2", &["Local"]),
            ("Harbour gala", "https://wire.test/3", &["Local"]),
        ])),
    );
    app.fetch_now().await;
    within("a second ping", || pings.lock().unwrap().len() == 2).await;
    let second = topics(&pings.lock().unwrap()[1]);
    assert!(second.contains("http://feeds.test/tags/local.atom"));
    assert!(!second.contains(TOPIC), "china did not change: {second:?}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            let store = tributary::app::open_store(&config.load()).await.unwrap();
            let state = store.hub_state(Utc::now()).await.unwrap();
            store.close().await;
            state.pings.delivered == 3 && state.pings.pending == 0
        })
        .await
    );
    app.stop().await;
    assert_eq!(pings.lock().unwrap().len(), 2, "one ping per change");
}

/// Subscriptions and their distributions on both backends: stored,
/// renewed, counted; the ingest queues a new article to each route whose
/// topic holds it; an ended lease is pruned with its rows.
#[tokio::test]
async fn subscriptions_and_distributions_on_every_backend() {
    for db in backends().await {
        let store = db.store().await;
        let at = Utc::now();
        let id = store
            .upsert_subscription(TOPIC, "http://a.test/cb", Some("s"), 60, at)
            .await
            .unwrap();
        let renewed = store
            .upsert_subscription(TOPIC, "http://a.test/cb", None, 120, at)
            .await
            .unwrap();
        assert_eq!(id, renewed, "{}", db.name);
        let other = store
            .upsert_subscription(TOPIC, "http://b.test/cb", None, 3600, at)
            .await
            .unwrap();
        assert_eq!(
            store
                .subscription_count(TOPIC, "http://a.test/cb", at)
                .await
                .unwrap(),
            (true, 2)
        );
        let active = store.active_subscriptions(at).await.unwrap();
        assert_eq!(active[0].lease_seconds, 120);
        assert_eq!(active[0].secret, None);

        let china = Filter {
            any: vec!["china".into()],
            ..Filter::default()
        };
        store.set_hub_routes(
            [id, other]
                .map(|id| WebhookRoute {
                    name: tributary::store::subscription_recipient(id),
                    filter: china.clone(),
                })
                .to_vec(),
        );
        let source = with_sources(&store, &["wire"]).await[0];
        store
            .ingest(
                source,
                &[story("one", 0, &["China"]), story("two", 1, &["Sport"])],
                &fetched(at),
            )
            .await
            .unwrap();
        assert_eq!(store.hub_state(at).await.unwrap().pending, 2, "{}", db.name);
        // A webhook listing does not show the hub's rows.
        assert!(store.webhook_states().await.unwrap().is_empty());

        // `a`'s lease (120 s) ends: pruned, with its pending row.
        let later = at + TimeDelta::seconds(121);
        assert_eq!(store.prune_subscriptions(later).await.unwrap(), 1);
        let state = store.hub_state(later).await.unwrap();
        assert_eq!((state.subscriptions, state.pending), (1, 1), "{}", db.name);
        assert!(store
            .remove_subscription(TOPIC, "http://b.test/cb")
            .await
            .unwrap());
        let state = store.hub_state(later).await.unwrap();
        assert_eq!((state.subscriptions, state.pending), (0, 0), "{}", db.name);
        store.close().await;
    }
}

#[test]
fn the_hub_is_self_or_an_http_url_and_its_bounds_are_checked() {
    for (websub, error) in [
        (
            "hub = \"ftp://hub.test/\"",
            "hub must be an absolute http or https URL, or \"self\"",
        ),
        (
            "hub = \"self\"\nmax_subscriptions = 0",
            "max_subscriptions must be between 1",
        ),
        (
            "hub = \"self\"\nlease = \"10s\"",
            "lease must be at least 1m",
        ),
        (
            "hub = \"self\"\nlease = \"20d\"",
            "lease must be at most 10d",
        ),
        (
            "hub = \"self\"\nsubscribers = 3",
            "unknown key `subscribers`",
        ),
    ] {
        let config = config("http://127.0.0.1:1/wire", websub);
        let message = tributary::config::Config::load(&config.path())
            .unwrap_err()
            .to_string();
        assert!(message.contains(error), "{websub}: {message}");
        assert!(message.contains("tributary.toml:"), "{message}");
    }
    let config = config("http://127.0.0.1:1/wire", "hub = \"https://hub.test/\"").load();
    assert_eq!(
        config.websub.hub,
        Some(tributary::config::HubMode::External(
            "https://hub.test/".parse().unwrap()
        ))
    );
    assert_eq!(config.websub.max_subscriptions, 1000);
}

/// Two daemons on one PostgreSQL database, both running the hub loop:
/// each new entry reaches the subscriber once.
#[tokio::test]
async fn two_daemons_on_one_postgres_database_distribute_each_entry_once() {
    let Some(db) = crate::store::TestDb::postgres().await else {
        return;
    };
    let feeds = FeedServer::start().await;
    feeds.set("/wire", Fixture::feed(wire(&[])));
    let text = format!(
        "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         [[source]]\nname = \"wire\"\nurl = \"{}\"\n\n\
         [[feed]]\nname = \"china\"\nany = [\"China\"]\n\n[websub]\n{SELF_HUB}\n",
        db.url,
        feeds.url("/wire"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    let config = tributary::config::Config::load(&path).unwrap();
    let one = TestApp::spawn(config.clone()).await;
    let two = TestApp::spawn(config.clone()).await;
    one.wait_fetched().await;
    let subscriber = Subscriber::start(&[], &[]).await;
    assert_eq!(subscribe(&one, &subscriber.callback, "3600").await.0, 202);
    assert!(
        eventually(Duration::from_secs(20), || async {
            let store = tributary::app::open_store(&config).await.unwrap();
            let n = store.active_subscriptions(Utc::now()).await.unwrap().len();
            store.close().await;
            n == 1
        })
        .await
    );
    let stories: Vec<(String, String)> = (1..=12)
        .map(|n| (format!("China story {n}"), format!("https://wire.test/{n}")))
        .collect();
    let items: Vec<(&str, &str, &[&str])> = stories
        .iter()
        .map(|(title, link)| (title.as_str(), link.as_str(), &["China"][..]))
        .collect();
    feeds.set("/wire", Fixture::feed(wire(&items)));
    one.fetch_now().await;
    let entries = || -> Vec<String> {
        subscriber
            .delivered()
            .iter()
            .flat_map(|d| parse_atom(&d.body).entries)
            .map(|e| e.title.unwrap().content)
            .collect()
    };
    within("every story distributed", || entries().len() >= 12).await;
    one.stop().await;
    two.stop().await;
    let got = entries();
    assert_eq!(got.len(), 12, "an entry sent twice: {got:?}");
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 12);
    assert!(subscriber.got().iter().all(|d| d.verified));
}
