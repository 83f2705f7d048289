//! WebSub subscriber (docs/CONFIG.md "WebSub"): a hub written here, on
//! 127.0.0.1, takes tributary's subscription, verifies it at the callback
//! as a real hub does (the challenge must come back), and pushes signed
//! content, which must reach the served feeds. Forged verifications and
//! pushes must change nothing; leases are renewed; a source removed from
//! the config is unsubscribed.

use crate::helpers::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Form;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary::hub::hub_signature;

/// What the test hub saw and did.
#[derive(Default)]
struct HubLog {
    /// Each (un)subscription request's form.
    requests: Vec<HashMap<String, String>>,
    /// Each verification it sent: (mode, status, body).
    verifications: Vec<(String, u16, String)>,
}

/// A WebSub hub: answers 202 to a request, then verifies it at the
/// callback's path on the daemon (`daemon`, set once it runs: the callback
/// names the public host, as behind a reverse proxy), granting `lease`.
#[derive(Clone)]
struct Hub {
    url: String,
    log: Arc<Mutex<HubLog>>,
    daemon: Arc<Mutex<Option<String>>>,
    lease: u64,
}

impl Hub {
    async fn start(lease: u64) -> Hub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hub = Hub {
            url: format!("http://{}/hub", listener.local_addr().unwrap()),
            log: Default::default(),
            daemon: Default::default(),
            lease,
        };
        let app = axum::Router::new()
            .route("/hub", axum::routing::post(hub_request))
            .with_state(hub.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        hub
    }

    fn requests(&self, mode: &str) -> Vec<HashMap<String, String>> {
        let log = self.log.lock().unwrap();
        log.requests
            .iter()
            .filter(|r| r.get("hub.mode").map(String::as_str) == Some(mode))
            .cloned()
            .collect()
    }

    fn verifications(&self, mode: &str) -> Vec<(u16, String)> {
        let log = self.log.lock().unwrap();
        log.verifications
            .iter()
            .filter(|(m, ..)| m == mode)
            .map(|(_, status, body)| (*status, body.clone()))
            .collect()
    }
}

async fn hub_request(
    State(hub): State<Hub>,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    hub.log.lock().unwrap().requests.push(form.clone());
    tokio::spawn(async move {
        // The daemon's address is set once it runs.
        let mut daemon = None;
        for _ in 0..200 {
            daemon = hub.daemon.lock().unwrap().clone();
            if daemon.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Some(daemon) = daemon else { return };
        let callback = url::Url::parse(&form["hub.callback"]).unwrap();
        let mode = form["hub.mode"].clone();
        let challenge = format!("challenge-{}", rand::random::<u64>());
        let lease = hub.lease.to_string();
        let response = reqwest::Client::new()
            .get(format!("{daemon}{}", daemon_path(&callback)))
            .query(&[
                ("hub.mode", mode.as_str()),
                ("hub.topic", form["hub.topic"].as_str()),
                ("hub.challenge", challenge.as_str()),
                ("hub.lease_seconds", lease.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        // Verified only when the challenge came back as it was sent.
        let verified = if status == 200 && body == challenge {
            "ok".to_string()
        } else {
            body
        };
        hub.log
            .lock()
            .unwrap()
            .verifications
            .push((mode, status, verified));
    });
    StatusCode::ACCEPTED
}

/// The daemon's path of a callback URL: the reverse proxy at
/// `callback_base` strips its `/tributary` prefix.
fn daemon_path(callback: &url::Url) -> String {
    let path = callback.path();
    path.strip_prefix("/tributary").unwrap_or(path).to_string()
}

/// An RSS feed naming `hub` and its own URL, with one item per title.
fn hub_feed(hub: &str, self_url: &str, titles: &[&str]) -> String {
    let items: String = titles
        .iter()
        .map(|t| {
            let slug = t.to_lowercase().replace(' ', "-");
            format!(
                "<item><title>{t}</title><link>https://pub.test/{slug}</link>\
                 <guid>https://pub.test/{slug}</guid><description>About {t}.</description>\
                 <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\
         <channel><title>Publisher</title><link>https://pub.test/</link>\
         <atom:link rel=\"hub\" href=\"{hub}\"/><atom:link rel=\"self\" href=\"{self_url}\"/>\
         {items}</channel></rss>"
    )
}

async fn within(what: &str, holds: impl FnMut() -> bool) {
    let mut holds = holds;
    assert!(
        eventually(Duration::from_secs(30), || std::future::ready(holds())).await,
        "{what}"
    );
}

/// POSTs `body` to the daemon's callback `path` with `signature`.
async fn push(app: &TestApp, path: &str, body: &str, signature: Option<&str>) -> u16 {
    let mut request = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/rss+xml")
        .body(body.to_string());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature", signature);
    }
    request.send().await.unwrap().status().as_u16()
}

const WEBSUB: &str = "[websub]\nsubscribe = true\ncallback_base = \"http://push.feeds.test/tributary/\"\nfallback_interval = \"2h\"\n";

#[tokio::test]
async fn a_hub_verifies_pushes_signed_content_and_the_story_is_served() {
    let hub = Hub::start(3600).await;
    let feeds = FeedServer::start().await;
    let topic = feeds.url("/pub.xml");
    feeds.set(
        "/pub.xml",
        Fixture::feed(hub_feed(&hub.url, &topic, &["Polled story"])),
    );
    let config = TestConfig::write(
        "max_body = \"64KiB\"",
        &format!("{WEBSUB}\n[[source]]\nname = \"pub\"\nurl = \"{topic}\"\n"),
    );
    let app = TestApp::spawn(config.load()).await;
    *hub.daemon.lock().unwrap() = Some(app.base.clone());
    within("tributary subscribed at the hub", || {
        !hub.requests("subscribe").is_empty()
    })
    .await;
    let asked = &hub.requests("subscribe")[0];
    assert_eq!(asked["hub.topic"], topic);
    assert_eq!(asked["hub.lease_seconds"], "604800");
    let callback = url::Url::parse(&asked["hub.callback"]).unwrap();
    assert!(
        callback
            .as_str()
            .starts_with("http://push.feeds.test/tributary/websub/callback/"),
        "{callback}"
    );
    let secret = asked["hub.secret"].clone();
    assert!(secret.len() >= 32, "a weak secret: {secret:?}");
    within("the hub verified the subscription", || {
        !hub.verifications("subscribe").is_empty()
    })
    .await;
    assert_eq!(hub.verifications("subscribe")[0], (200, "ok".to_string()));
    let path = daemon_path(&callback);

    // Forged verifications: no challenge comes back, nothing changes.
    let forged = |path: String, mode: &'static str, topic: String| {
        let client = app.client.clone();
        let base = app.base.clone();
        async move {
            let response = client
                .get(format!("{base}{path}"))
                .query(&[
                    ("hub.mode", mode),
                    ("hub.topic", topic.as_str()),
                    ("hub.challenge", "forged-challenge"),
                    ("hub.lease_seconds", "1"),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let unknown = "/websub/callback/not-a-subscription".to_string();
    for (path, mode, topic) in [
        (unknown.clone(), "subscribe", topic.clone()),
        (
            path.clone(),
            "subscribe",
            "https://other.test/feed".to_string(),
        ),
        (path.clone(), "unsubscribe", topic.clone()),
    ] {
        let (status, body) = forged(path.clone(), mode, topic.clone()).await;
        assert_eq!(status, 404, "{mode} {path} {topic}");
        assert!(!body.contains("forged-challenge"), "{body}");
    }

    let forged_story = hub_feed(&hub.url, &topic, &["Forged story"]);
    assert_eq!(
        push(
            &app,
            &path,
            &forged_story,
            Some(&hub_signature("guess", forged_story.as_bytes()))
        )
        .await,
        202
    );
    assert_eq!(push(&app, &path, &forged_story, None).await, 202);
    let sha1 = "sha1=0000000000000000000000000000000000000000";
    assert_eq!(push(&app, &path, &forged_story, Some(sha1)).await, 202);
    let signed = hub_signature(&secret, forged_story.as_bytes());
    assert_eq!(
        push(&app, &unknown, &forged_story, Some(&signed)).await,
        410
    );
    let huge = hub_feed(&hub.url, &topic, &[&"Huge story ".repeat(7000)]);
    assert!(huge.len() > 64 * 1024);
    let signed_huge = hub_signature(&secret, huge.as_bytes());
    assert_eq!(push(&app, &path, &huge, Some(&signed_huge)).await, 413);

    let pushed = hub_feed(&hub.url, &topic, &["Pushed story"]);
    let signature = hub_signature(&secret, pushed.as_bytes());
    assert_eq!(push(&app, &path, &pushed, Some(&signature)).await, 202);
    let feed = app.get_text("/feed.atom").await;
    assert!(feed.contains("Pushed story"), "{feed}");
    assert!(feed.contains("Polled story"), "{feed}");
    assert!(!feed.contains("Forged story"), "{feed}");
    assert!(!feed.contains("Huge story"), "{feed}");

    let metrics = app.get_text("/metrics").await;
    let pushes = |outcome: &str, reason: &str| {
        sample(
            &metrics,
            "tributary_websub_pushes_total",
            &[("outcome", outcome), ("reason", reason)],
        )
    };
    assert_eq!(pushes("accepted", "signed"), Some(1.0), "{metrics}");
    assert_eq!(pushes("refused", "bad_signature"), Some(1.0));
    assert_eq!(pushes("refused", "unsigned"), Some(1.0));
    assert_eq!(pushes("refused", "weak_signature"), Some(1.0));
    assert_eq!(pushes("refused", "unknown_callback"), Some(1.0));
    assert_eq!(pushes("refused", "too_large"), Some(1.0));
    // The callbacks are behind the server's request metrics like any route.
    let forged = sample(
        &metrics,
        "tributary_http_requests_total",
        &[("route", "/websub/callback/{callback}"), ("status", "404")],
    );
    assert_eq!(forged, Some(3.0), "{metrics}");

    // Visible: the index page says the source is pushed, and when.
    let index = app.get_text("/").await;
    assert!(index.contains("pushed until"), "{index}");
    assert!(index.contains("last push"), "{index}");
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["sources", "-c", config.path().to_str().unwrap()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let row = listed
        .lines()
        .find(|l| l.starts_with("pub "))
        .unwrap_or_default();
    assert!(
        listed.starts_with("NAME") && listed.contains("PUSH"),
        "{listed}"
    );
    assert!(
        row.contains("pushed until") && row.contains("last push"),
        "{listed}"
    );

    // A pushed source is polled at the fallback rate, no sooner.
    let reports = app.fetch_now().await;
    let next = reports[0].next_fetch_at - app.clock.now();
    assert!(
        next >= chrono::TimeDelta::minutes(119),
        "next poll in {next}"
    );
    app.stop().await;
}

#[tokio::test]
async fn short_leases_are_renewed_and_a_removed_source_is_unsubscribed() {
    // A lease of 3 s: renewed at four fifths of it. This publisher names
    // its hub in the `Link` header only.
    let hub = Hub::start(3).await;
    let feeds = FeedServer::start().await;
    let topic = feeds.url("/pub.xml");
    feeds.set(
        "/pub.xml",
        Fixture::feed(rss_items(
            "Publisher",
            &[("Polled story", "https://pub.test/1", &[])],
        ))
        .with_header(
            "link",
            &format!("<{}>; rel=\"hub\", <{topic}>; rel=\"self\"", hub.url),
        ),
    );
    let other = feeds.url("/other.xml");
    feeds.set(
        "/other.xml",
        Fixture::feed(rss_items(
            "Other",
            &[("Other story", "https://other.test/1", &[])],
        )),
    );
    let sources = format!("{WEBSUB}\n[[source]]\nname = \"other\"\nurl = \"{other}\"\n");
    let config = TestConfig::write(
        "",
        &format!("{sources}\n[[source]]\nname = \"pub\"\nurl = \"{topic}\"\n"),
    );
    let app = TestApp::spawn(config.load()).await;
    *hub.daemon.lock().unwrap() = Some(app.base.clone());
    within("the subscription was renewed", || {
        hub.verifications("subscribe").len() >= 2
    })
    .await;
    let asked = hub.requests("subscribe");
    assert!(asked.len() >= 2);
    // A renewal keeps its callback and secret.
    assert_eq!(asked[0]["hub.callback"], asked[1]["hub.callback"]);
    assert_eq!(asked[0]["hub.secret"], asked[1]["hub.secret"]);
    assert!(hub
        .verifications("subscribe")
        .iter()
        .all(|v| *v == (200, "ok".to_string())));
    app.stop().await;

    // The source leaves the config: the next run unsubscribes it.
    std::fs::write(
        config.path(),
        std::fs::read_to_string(config.path()).unwrap().replace(
            &format!("[[source]]\nname = \"pub\"\nurl = \"{topic}\"\n"),
            "",
        ),
    )
    .unwrap();
    let app = TestApp::spawn(config.load()).await;
    *hub.daemon.lock().unwrap() = Some(app.base.clone());
    within("the hub was asked to unsubscribe", || {
        !hub.requests("unsubscribe").is_empty()
    })
    .await;
    let gone = &hub.requests("unsubscribe")[0];
    assert_eq!(gone["hub.topic"], topic);
    assert_eq!(gone["hub.callback"], asked[0]["hub.callback"]);
    within("the hub verified the unsubscribe", || {
        !hub.verifications("unsubscribe").is_empty()
    })
    .await;
    assert_eq!(hub.verifications("unsubscribe")[0], (200, "ok".to_string()));
    // Its pushes are refused from then on.
    let path = daemon_path(&url::Url::parse(&gone["hub.callback"]).unwrap());
    let body = hub_feed(&hub.url, &topic, &["Late story"]);
    let signature = hub_signature(&asked[0]["hub.secret"], body.as_bytes());
    assert_eq!(push(&app, &path, &body, Some(&signature)).await, 410);
    app.stop().await;
}

/// Two daemons on one PostgreSQL database: one subscription is asked for
/// the source; the hub's verification reaches one daemon and its push the
/// other, which takes it: the state is the store's.
#[tokio::test]
async fn two_daemons_on_one_postgres_share_one_subscription() {
    let Some(db) = crate::store::TestDb::postgres().await else {
        return;
    };
    let hub = Hub::start(3600).await;
    let feeds = FeedServer::start().await;
    let topic = feeds.url("/pub.xml");
    feeds.set(
        "/pub.xml",
        Fixture::feed(hub_feed(&hub.url, &topic, &["Polled story"])),
    );
    let text = format!(
        "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         {WEBSUB}\n[[source]]\nname = \"pub\"\nurl = \"{topic}\"\n",
        db.url
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    let config = tributary::config::Config::load(&path).unwrap();
    let one = TestApp::spawn(config.clone()).await;
    let two = TestApp::spawn(config).await;
    *hub.daemon.lock().unwrap() = Some(one.base.clone());
    within("the hub verified the subscription", || {
        !hub.verifications("subscribe").is_empty()
    })
    .await;
    assert_eq!(hub.verifications("subscribe")[0], (200, "ok".to_string()));
    let asked = hub.requests("subscribe");
    assert_eq!(asked.len(), 1, "asked twice: {asked:?}");
    let callback = url::Url::parse(&asked[0]["hub.callback"]).unwrap();
    let body = hub_feed(&hub.url, &topic, &["Pushed story"]);
    let signature = hub_signature(&asked[0]["hub.secret"], body.as_bytes());
    assert_eq!(
        push(&two, &daemon_path(&callback), &body, Some(&signature)).await,
        202
    );
    let feed = two.get_text("/feed.atom").await;
    assert!(feed.contains("Pushed story"), "{feed}");
    assert_eq!(hub.requests("subscribe").len(), 1);
    one.stop().await;
    two.stop().await;
}
