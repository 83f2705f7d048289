//! Credentials in source URLs (`user:password@`, `?apikey=…`) and in a
//! source's own request settings (`headers`, `cookie`, a proxy's password)
//! are used to fetch and shown nowhere: not in the published feeds, the
//! index page, `/metrics`, `tributary sources`, `opml export`, `check`, nor
//! the daemon's logs, also when a fetch fails.

use crate::helpers::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every secret the config holds; none may leave the process.
const SECRETS: &[&str] = &[
    "PASSWORD1",
    "SECRET1",
    "PASSWORD2",
    "SECRET2",
    "PASSWORD3",
    "SECRET3",
    "SECRET4",
    "SECRET5",
    "SECRET6",
    "PASSWORD7",
    "reader",
    "PATHSECRET8",
    "HEADERSECRET9",
    "COOKIESECRET10",
    "PROXYSECRET11",
];

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

fn tributary(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_in_source_urls_are_published_nowhere() {
    let server = FeedServer::start().await;
    let port = server.base.rsplit(':').next().unwrap().to_string();
    // A relative link resolves against the source URL: its userinfo must
    // not ride along into the article's link.
    server.set(
        "/feed.xml",
        Fixture::feed(rss_items(
            "Private",
            &[
                ("Members only", "/posts/1", &[]),
                ("Also", "https://news.example/2", &[]),
            ],
        )),
    );
    server.set(
        "/old.xml",
        Fixture::status(301).with_header("location", "/new.xml?access_token=SECRET5"),
    );
    server.set(
        "/new.xml",
        Fixture::feed(rss_items(
            "Moved",
            &[("Moved story", "https://news.example/3", &[])],
        )),
    );
    server.set(
        "/private/PATHSECRET8/feed.xml",
        Fixture::feed(rss_items(
            "Path",
            &[("Path story", "https://news.example/8", &[])],
        )),
    );
    server.set(
        "/bad-redirect",
        Fixture::status(302).with_header("location", "ftp://u:PASSWORD7@files.example/"),
    );
    let config = TestConfig::write(
        "log_level = \"info,tributary=debug\"",
        &format!(
            "[[source]]\nname = \"private\"\nurl = \"http://reader:PASSWORD1@127.0.0.1:{port}/feed.xml?apikey=SECRET1&lang=en\"\n\n\
             [[source]]\nname = \"missing\"\nurl = \"http://u:PASSWORD2@127.0.0.1:{port}/missing.xml?token=SECRET2\"\n\n\
             [[source]]\nname = \"down\"\nurl = \"http://u:PASSWORD3@127.0.0.1:{}/feed?X-Api-Key=SECRET3\"\n\n\
             [[source]]\nname = \"moved\"\nurl = \"http://127.0.0.1:{port}/old.xml?sig=SECRET4\"\n\n\
             [[source]]\nname = \"bounced\"\nurl = \"http://127.0.0.1:{port}/bad-redirect?session=SECRET6\"\n\n\
             [[source]]\nname = \"declared\"\nurl = \"http://127.0.0.1:{port}/private/PATHSECRET8/feed.xml\"\n\
             public_url = \"https://example.org/news\"\n\
             headers = {{ \"X-Api-Key\" = \"HEADERSECRET9\" }}\ncookie = \"session=COOKIESECRET10\"\n\n\
             [[source]]\nname = \"proxied\"\nurl = \"http://feeds.example.invalid/feed.xml\"\n\
             proxy = \"http://u:PROXYSECRET11@127.0.0.1:{}/\"\ncookie = \"session=COOKIESECRET10\"\n",
            closed_port(),
            closed_port()
        ),
    );

    let log_path = config.dir.path().join("stderr.log");
    let mut daemon: Child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-c", config.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap();
    let started = Instant::now();
    while log().matches("refresh failed").count() < 4 || log().matches("ingested").count() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not every source was fetched:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = log();
    let listen = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("listen="))
        .unwrap()
        .to_string();

    let client = reqwest::Client::new();
    let mut pages = Vec::new();
    for path in ["/feed.atom", "/feed.json", "/", "/metrics"] {
        let response = client
            .get(format!("http://{listen}{path}"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        pages.push((path, response.text().await.unwrap()));
    }
    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    daemon.wait().unwrap();

    for (path, body) in &pages {
        assert_no_secret(path, body);
    }
    // Still useful: the source is credited, with what can be shown.
    let atom = &pages[0].1;
    assert!(atom.contains("Members only"), "{atom}");
    assert!(
        atom.contains(&format!(
            "href=\"http://127.0.0.1:{port}/feed.xml?apikey=***&amp;lang=en\""
        )),
        "{atom}"
    );
    assert!(
        atom.contains(&format!("http://127.0.0.1:{port}/posts/1")),
        "{atom}"
    );
    // A secret the redaction cannot see: the declared public URL instead.
    assert!(atom.contains("href=\"https://example.org/news\""), "{atom}");
    assert!(pages[1].1.contains("apikey=***"), "{}", pages[1].1);
    assert_no_secret("the daemon's log", &log());
    assert!(log().contains("refresh failed"));

    let sources = tributary(&config.path(), &["sources"]);
    assert_no_secret("tributary sources", &sources);
    assert!(
        sources.contains("HTTP 404") || sources.contains("404"),
        "{sources}"
    );
    assert!(sources.contains("moved permanently to"), "{sources}");
    let opml = tributary(&config.path(), &["opml", "export"]);
    assert_no_secret("opml export", &opml);
    assert!(opml.contains("apikey=***"), "{opml}");
    // The operator's own migration can ask for the URLs as configured.
    let full = tributary(&config.path(), &["opml", "export", "--with-secrets"]);
    assert!(
        full.contains("reader:PASSWORD1@") && full.contains("SECRET1"),
        "{full}"
    );
    assert!(full.contains("PATHSECRET8"), "{full}");
    assert_no_secret("check", &tributary(&config.path(), &["check"]));
    // The source's own header and cookie did reach its server.
    let sent = server.requests("/private/PATHSECRET8/feed.xml");
    assert_eq!(sent[0].headers["x-api-key"], "HEADERSECRET9");
    assert_eq!(sent[0].headers["cookie"], "session=COOKIESECRET10");
    assert!(server.requests("/feed.xml")[0]
        .headers
        .get("cookie")
        .is_none());
}
