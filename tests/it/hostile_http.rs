//! The HTTP server against hostile and odd clients (issues #23, #17):
//! slow-header floods, idle keep-alive connections, oversized filters,
//! unknown sources, tags that need percent-encoding in links, and the
//! headers on what browsers render.

use crate::helpers::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary::model::Filter;
use tributary::server::MAX_TERMS;

/// Categories that each need percent-encoding in a path segment (or look
/// like they might).
const ODD_TAGS: [&str; 8] = [
    "/r/AskReddit",
    "http://gdata.youtube.com/schemas/2007#video",
    "what?",
    "100%",
    "two words",
    "Économie",
    "a+b=c",
    "v1.2",
];

async fn odd_tags_app() -> (FeedServer, TestConfig, TestApp) {
    let server = FeedServer::start().await;
    let items: Vec<(String, String)> = ODD_TAGS
        .iter()
        .enumerate()
        .map(|(i, _)| (format!("Story {i}"), format!("https://example.org/{i}")))
        .collect();
    let categories: Vec<[&str; 1]> = ODD_TAGS.iter().map(|t| [*t]).collect();
    let mut rss_input: Vec<(&str, &str, &[&str])> = items
        .iter()
        .zip(&categories)
        .map(|((title, link), cats)| (title.as_str(), link.as_str(), &cats[..]))
        .collect();
    // For filters with several `all` terms.
    rss_input.push((
        "Three",
        "https://example.org/3t",
        &["x-one", "x-two", "x-three"],
    ));
    rss_input.push(("Two", "https://example.org/2t", &["x-one", "x-two"]));
    server.set("/feed", Fixture::feed(rss_items("Odd", &rss_input)));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\n",
            server.url("/feed")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    (server, config, app)
}

/// The `href`s of the tag list on the index page, unescaped.
fn tag_links(html: &str) -> Vec<String> {
    let section = html
        .split("<section id=\"tags\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("a tags section");
    section
        .split("<a href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|href| href.replace("&amp;", "&").replace("&#39;", "'"))
        .collect()
}

#[tokio::test]
async fn every_tag_link_on_the_index_page_answers_with_its_articles() {
    let (_server, config, app) = odd_tags_app().await;
    let html = app.get_text("/").await;
    let links = tag_links(&html);
    assert!(links.len() >= ODD_TAGS.len(), "{links:?}");
    let base = config.load().daemon.base_url.to_string();
    let base = base.trim_end_matches('/');
    let mut titles = Vec::new();
    for link in &links {
        let path = link
            .strip_prefix(base)
            .unwrap_or_else(|| panic!("{link} is not under {base}"));
        // Sent as written: the client must not have to fix the link.
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "GET {link}");
        let atom = response.text().await.unwrap();
        let feed = parse_atom(&atom);
        assert!(!feed.entries.is_empty(), "{link}");
        titles.extend(
            feed.entries
                .iter()
                .map(|e| e.title.as_ref().unwrap().content.clone()),
        );
        // The feed names itself by the same link.
        let self_link = feed
            .links
            .iter()
            .find(|l| l.rel.as_deref() == Some("self"))
            .unwrap();
        assert_eq!(self_link.href, *link);
    }
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), ODD_TAGS.len() + 2, "{titles:?}");
}

#[tokio::test]
async fn filters_over_the_term_bound_are_a_clear_400_and_the_bound_itself_answers() {
    let (_server, _config, app) = odd_tags_app().await;
    let terms = |n: usize| {
        (0..n)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    for key in ["all", "any", "none", "source"] {
        // 993 `all` terms used to exceed SQLite's expression depth: a 500.
        let response = app.get(&format!("/feed.atom?{key}={}", terms(993))).await;
        assert_eq!(response.status(), 400, "{key}");
        let body = response.text().await.unwrap();
        assert!(body.contains(&MAX_TERMS.to_string()), "{key}: {body}");
    }
    // Repeated parameters count together.
    let split = format!("/feed.atom?all={}&all={}", terms(40), terms(40));
    assert_eq!(app.get(&split).await.status(), 400);
    for key in ["all", "any", "none"] {
        let response = app
            .get(&format!("/feed.atom?{key}={}", terms(MAX_TERMS)))
            .await;
        assert_eq!(response.status(), 200, "{key}");
    }
    let tag_view = format!("/tags/100%25.atom?all={}", terms(MAX_TERMS));
    assert_eq!(app.get(&tag_view).await.status(), 200);
    let titles = |atom: &str| {
        let mut titles: Vec<String> = parse_atom(atom)
            .entries
            .iter()
            .map(|e| e.title.as_ref().unwrap().content.clone())
            .collect();
        titles.sort();
        titles
    };
    for (path, expected) in [
        ("/feed.atom?all=x-one,x-two,x-three", vec!["Three"]),
        ("/feed.atom?all=x-two,x-one", vec!["Three", "Two"]),
        ("/tags/x-two.atom?all=x-three,x-one", vec!["Three"]),
        ("/feed.atom?any=x-two,v1.2&all=x-one,x-three", vec!["Three"]),
    ] {
        assert_eq!(titles(&app.get_text(path).await), expected, "{path}");
    }
    // The tag's own term repeated in `all=` is the same view.
    let repeated = parse_atom(&app.get_text("/tags/v1.2.atom?all=v1.2,v1.2").await);
    assert_eq!(repeated.entries.len(), 1);
}

#[tokio::test]
async fn the_most_terms_allowed_make_a_query_both_backends_run() {
    let terms = |prefix: &str| {
        (0..MAX_TERMS)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
    };
    for db in crate::store::backends().await {
        let store = db.store().await;
        for filter in [
            Filter {
                all: terms("a"),
                none: terms("n"),
                sources: terms("s"),
                ..Filter::default()
            },
            Filter {
                any: terms("y"),
                all: terms("a"),
                none: terms("n"),
                sources: terms("s"),
                languages: terms("fr"),
                ..Filter::default()
            },
        ] {
            let page = store.page(&filter, None, 500).await;
            assert!(page.is_ok(), "{}: {:?}", db.name, page.err());
        }
        store.close().await;
    }
}

#[tokio::test]
async fn an_unknown_source_is_a_400() {
    let (_server, _config, app) = odd_tags_app().await;
    for path in [
        "/feed.atom?source=nosuch",
        "/feed.json?source=news,nosuch",
        "/tags/v1.2.atom?source=nosuch",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(response.text().await.unwrap().contains("nosuch"), "{path}");
    }
    let known = parse_atom(&app.get_text("/feed.atom?source=news").await);
    assert_eq!(known.entries.len(), ODD_TAGS.len() + 2);
}

#[tokio::test]
async fn what_browsers_render_carries_a_content_security_policy_and_nosniff() {
    let (_server, _config, app) = odd_tags_app().await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for (path, accept) in [
        ("/", browser),
        ("/feed.xsl", browser),
        ("/feed.atom", browser),
        ("/feed.atom", "application/atom+xml"),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        // The pages style themselves inline; nothing runs inline.
        assert!(csp.contains("style-src 'unsafe-inline'"), "{path}: {csp}");
        assert!(!csp.contains("script-src 'unsafe"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let index = app.get("/").await;
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        !csp.contains("script-src"),
        "the index page loads no script"
    );
    assert!(!index.text().await.unwrap().contains("<script"));
    let json = app.get("/feed.json").await;
    assert_eq!(json.headers()["x-content-type-options"], "nosniff");
}

/// Whether the server closes `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn partial_headers_and_idle_keep_alive_connections_are_closed() {
    let (_server, _config, app) = odd_tags_app().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut partial = TcpStream::connect(&addr).await.unwrap();
    partial
        .write_all(b"GET /feed.atom HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Generous: the header-read timeout is 10 s.
    let (partial, silent, idle) = tokio::join!(
        closed_within(&mut partial, Duration::from_secs(60)),
        closed_within(&mut silent, Duration::from_secs(60)),
        closed_within(&mut idle, Duration::from_secs(60)),
    );
    assert!(partial, "a connection sending partial headers stayed open");
    assert!(silent, "a connection sending nothing stayed open");
    assert!(idle, "an idle keep-alive connection stayed open");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// `tributary run` with its open-file limit lowered to `files`.
struct LimitedDaemon {
    child: Child,
    log: Arc<Mutex<String>>,
    addr: String,
}

impl LimitedDaemon {
    async fn spawn(config: &std::path::Path, files: u32) -> LimitedDaemon {
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -n {files} && exec \"$0\" run -c \"$1\""),
                env!("CARGO_BIN_EXE_tributary"),
                config.to_str().unwrap(),
            ])
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let started = Instant::now();
        let addr = loop {
            let text = log.lock().unwrap().clone();
            if let Some(line) = text.lines().find(|l| l.contains("tributary running")) {
                break line
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("listen="))
                    .unwrap()
                    .to_string();
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "daemon exited:\n{text}"
            );
            assert!(started.elapsed() < Duration::from_secs(20), "{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        LimitedDaemon { child, log, addr }
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for LimitedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_slow_header_flood_neither_exhausts_descriptors_nor_locks_clients_out() {
    const FLOOD: usize = 1500;
    const FILES: u32 = 256;
    let server = FeedServer::start().await;
    server.set(
        "/feed",
        Fixture::feed(rss_items("One", &[("Hello", "https://example.org/1", &[])])),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"news\"\nurl = \"{}\"\n",
            server.url("/feed")
        ),
    );
    let daemon = LimitedDaemon::spawn(&config.path(), FILES).await;
    // A new connection per request: a kept-alive one reaches its idle
    // timeout about when the flood's last connections do, and a request
    // sent on it as the server closes it fails for the client, not us.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let feed = format!("http://{}/feed.atom", daemon.addr);

    // Each flood connection sends part of a request line and headers, then
    // waits; a task per connection notes when the server closes it.
    let idle_files = daemon.open_files();
    let closed = Arc::new(AtomicUsize::new(0));
    let mut most_open_files = 0;
    for i in 0..FLOOD {
        let connect = TcpStream::connect(&daemon.addr);
        let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(10), connect).await
        else {
            // Not held open by the server either.

            closed.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let _ = stream
            .write_all(b"GET /feed.atom HTTP/1.1\r\nHost: feeds.test\r\nX-Slow: ")
            .await;
        let closed = closed.clone();
        tokio::spawn(async move {
            if closed_within(&mut stream, Duration::from_secs(120)).await {
                closed.fetch_add(1, Ordering::SeqCst);
            }
        });
        if i % 100 == 0 {
            most_open_files = most_open_files.max(daemon.open_files());
        }
    }
    // A normal client still gets answers while the flood's connections are
    // open on its side.
    for _ in 0..5 {
        let response = client.get(&feed).send().await;
        let response = response.unwrap_or_else(|e| {
            panic!(
                "a normal request failed during the flood: {e}\n{}",
                daemon.log.lock().unwrap()
            )
        });
        assert_eq!(response.status(), 200);
        most_open_files = most_open_files.max(daemon.open_files());
    }
    // Connections stop at three quarters of the limit (192 of 256): the
    // rest stays free for the database and fetches.
    assert!(
        most_open_files <= idle_files + 192 + 16,
        "{most_open_files} of {FILES} files open ({idle_files} before the flood)"
    );
    // Every flood connection is closed: shed for newer ones or timed out.
    let all_closed = eventually(Duration::from_secs(90), || {
        let closed = closed.clone();
        async move { closed.load(Ordering::SeqCst) == FLOOD }
    })
    .await;
    assert!(
        all_closed,
        "{} of {FLOOD} flood connections still open",
        FLOOD - closed.load(Ordering::SeqCst)
    );
    assert_eq!(client.get(&feed).send().await.unwrap().status(), 200);
    let log = daemon.log.lock().unwrap().clone();
    assert!(!log.contains("Too many open files"), "{log}");
    // The operator sees the shedding in /metrics, not only in the log.
    let metrics = client
        .get(format!("http://{}/metrics", daemon.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shed = sample(
        &metrics,
        "tributary_connections_shed_total",
        &[("reason", "idle")],
    );
    assert!(shed.is_some_and(|n| n >= 1.0), "{metrics}");
}
