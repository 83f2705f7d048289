//! Operations over HTTP: `/metrics`, the index page (checked in a real
//! headless Chromium, which also renders a feed through `/feed.xsl`), and
//! response compression.

use crate::helpers::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn two_sources_config(server: &FeedServer, prefix: &str) -> TestConfig {
    TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"{prefix}-ok\"\nurl = \"{}\"\ntags = [\"World\"]\n\n\
             [[source]]\nname = \"{prefix}-broken\"\nurl = \"{}\"\n\n\
             [[feed]]\nname = \"world\"\ntitle = \"World news\"\nany = [\"world\"]\n",
            server.url("/ok.xml"),
            server.url("/broken.xml")
        ),
    )
}

async fn serve_two_sources(server: &FeedServer) {
    server.set(
        "/ok.xml",
        Fixture::feed(rss_items(
            "Wire",
            &[
                ("Harbour reopens", "https://wire.test/harbour", &["Economy"]),
                ("Storm passes", "https://wire.test/storm", &["Weather"]),
            ],
        )),
    );
    server.set("/broken.xml", Fixture::status(500));
}

#[tokio::test]
async fn metrics_count_fetches_articles_requests_and_show_sources_and_the_pool() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = two_sources_config(&server, "metrics");
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    app.get_text("/feeds/world.atom").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let metrics = response.text().await.unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&metrics, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} in:\n{metrics}"))
    };

    let ok = [("source", "metrics-ok")];
    assert_eq!(
        value("tributary_fetches_total", &[ok[0], ("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        value(
            "tributary_fetches_total",
            &[("source", "metrics-broken"), ("outcome", "error_http")]
        ),
        1.0
    );
    assert_eq!(value("tributary_articles_ingested_total", &ok), 2.0);
    assert!(value("tributary_fetched_bytes_total", &ok) > 100.0);
    assert!(value("tributary_fetch_duration_seconds_count", &[]) >= 2.0);
    assert!(metrics.contains("tributary_fetch_duration_seconds_bucket{le=\"0.05\"}"));
    assert!(
        value(
            "tributary_http_requests_total",
            &[("route", "/feeds/{file}"), ("status", "200")]
        ) >= 1.0
    );
    // States are this database's, exact whatever else runs in the process.
    assert_eq!(value("tributary_sources", &[("state", "ok")]), 1.0);
    assert_eq!(value("tributary_sources", &[("state", "failing")]), 1.0);
    assert_eq!(value("tributary_sources", &[("state", "disabled")]), 0.0);
    assert_eq!(value("tributary_articles_stored", &[]), 2.0);
    assert!(value("tributary_db_pool_max_connections", &[]) >= 1.0);
    assert!(value("tributary_db_pool_connections", &[("state", "idle")]) >= 0.0);
    assert!(metrics.contains("# TYPE tributary_fetches_total counter"));

    // The scrape itself is counted on the next one; unknown paths share one label.
    app.get("/no/such/page").await;
    let again = app.get_text("/metrics").await;
    assert!(sample(
        &again,
        "tributary_http_requests_total",
        &[("route", "/metrics")]
    )
    .is_some());
    assert!(
        sample(
            &again,
            "tributary_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        )
        .is_some(),
        "{again}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_index_page_lists_feeds_with_autodiscovery_tags_and_source_health() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = two_sources_config(&server, "index");
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"World news\" href=\"http://feeds.test/feeds/world.atom\">"
    ), "{html}");
    assert!(html.contains("type=\"application/feed+json\" title=\"World news\""));
    assert!(html.contains("href=\"http://feeds.test/feeds/world.json\""));
    assert!(html.contains("href=\"http://feeds.test/tags/economy.atom\">Economy <span>1</span>"));
    assert!(html.contains("World <span>2</span>"));
    assert!(html.contains(">index-ok</a>"));
    assert!(html.contains("class=\"state ok\""));
    assert!(html.contains("class=\"state failing\""));
    assert!(html.contains("HTTP 500"));
    app.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_with_gzip_or_brotli_when_accepted() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = two_sources_config(&server, "compress");
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let plain = app.get_text("/feed.atom").await;

    for path in ["/feed.atom", "/", "/metrics"] {
        let gzip = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gzip.headers()["content-encoding"], "gzip", "{path}");
        let bytes = gzip.bytes().await.unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        if path == "/feed.atom" {
            assert_eq!(text, plain);
        }
    }
    let br = app
        .client
        .get(format!("{}/feed.atom", app.base))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    // A client that decodes brotli itself gets the same document back.
    let decoding = reqwest::Client::builder().brotli(true).build().unwrap();
    let decoded = decoding
        .get(format!("{}/feed.atom", app.base))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(decoded, plain);
    app.stop().await;
}

#[tokio::test]
async fn atom_feeds_reference_the_served_stylesheet_and_stay_valid() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = two_sources_config(&server, "xsl");
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let atom = app.get_text("/feeds/world.atom").await;
    assert!(
        atom.starts_with(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"/feed.xsl\"?>\n<feed"
        ),
        "{atom}"
    );
    assert_valid_atom(&atom);
    assert_eq!(parse_atom(&atom).entries.len(), 2);
    let xsl = app.get("/feed.xsl").await;
    assert_eq!(xsl.status(), 200);
    assert_eq!(xsl.headers()["content-type"], "text/xsl; charset=utf-8");
    assert!(xsl.text().await.unwrap().contains("xsl:stylesheet"));
    app.stop().await;
}

/// Runs headless Chromium on `url` with `args`; its stdout.
pub(crate) async fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let binary = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is needed for the browser test: apt-get install chromium (.ci/run does)");
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium finished")
        .expect("chromium ran");
    assert!(
        output.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium (apt-get install chromium); .ci/run runs it"]
async fn a_browser_shows_the_index_page_and_a_readable_feed() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = two_sources_config(&server, "browser");
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let profile = tempfile::tempdir().unwrap();
    let index = format!("{}/", app.base);

    let dom = chromium(profile.path(), &["--dump-dom"], &index).await;
    assert!(dom.contains("<h1>tributary</h1>"), "{dom}");
    assert!(dom.contains("World news"), "{dom}");
    assert!(dom.contains("browser-ok"), "{dom}");
    assert!(dom.contains("Economy"), "{dom}");

    let screenshot: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("index-page.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1200,900",
            "--hide-scrollbars",
        ],
        &index,
    )
    .await;
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );
    eprintln!("index page screenshot: {}", screenshot.display());
    // And on a phone's width (look at it: the sources read as cards).
    let phone = Path::new(env!("CARGO_TARGET_TMPDIR")).join("index-page-phone.png");
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", phone.display()),
            "--window-size=390,844",
            "--hide-scrollbars",
        ],
        &index,
    )
    .await;
    assert!(std::fs::read(&phone).is_ok_and(|png| png.len() > 10_000));
    eprintln!("index page on a phone: {}", phone.display());

    // Opening a feed shows the stylesheet's page, not raw XML.
    let feed_url = format!("{}/feeds/world.atom", app.base);
    let feed = chromium(profile.path(), &["--dump-dom"], &feed_url).await;
    if !feed.contains("This is a web feed.") && feed.contains("http://www.w3.org/2005/Atom") {
        // Chromium is removing XSLT; a build without it shows the raw XML.
        eprintln!("skipped the feed page: this Chromium no longer applies XSLT");
        app.stop().await;
        return;
    }
    assert!(feed.contains("This is a web feed."), "{feed}");
    assert!(feed.contains("Harbour reopens"), "{feed}");
    assert!(
        feed.contains("http://feeds.test/feeds/world.atom"),
        "{feed}"
    );
    let feed_screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("feed-page.png");
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", feed_screenshot.display()),
            "--window-size=1200,900",
            "--hide-scrollbars",
        ],
        &feed_url,
    )
    .await;
    assert!(std::fs::read(&feed_screenshot).is_ok_and(|png| png.len() > 10_000));

    // An empty view says why on the page (its Atom subtitle), through the
    // same stylesheet.
    let empty_url = format!("{}/feed.atom?any=sport", app.base);
    let empty = chromium(profile.path(), &["--dump-dom"], &empty_url).await;
    assert!(
        empty.contains(
            "No articles: none of the 2 stored articles matches this feed (tagged any of sport)."
        ),
        "{empty}"
    );
    app.stop().await;
}

/// Runs `tributary fetch` under a pseudo-terminal (util-linux `script`);
/// `None` when `script` is missing.
fn fetch_on_a_terminal(config: &Path) -> Option<String> {
    on_a_terminal(&["fetch", "-c", config.to_str().unwrap()], None)
}

/// Runs tributary with `args` under a pseudo-terminal (util-linux
/// `script`), `$COLUMNS` set to `columns` if given; `None` when `script`
/// is missing.
fn on_a_terminal(args: &[&str], columns: Option<usize>) -> Option<String> {
    let command = format!("{} {}", env!("CARGO_BIN_EXE_tributary"), args.join(" "));
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("COLUMNS")
        .stdin(std::process::Stdio::null());
    if let Some(columns) = columns {
        script.env("COLUMNS", columns.to_string());
    }
    let out = script.output().ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).replace('\r', ""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_fits_the_terminal_width_and_prints_whole_lines_when_piped() {
    let server = FeedServer::start().await;
    let long_path = format!("/{}/feed.xml", "section-".repeat(16));
    server.set(&long_path, Fixture::status(500));
    server.set(
        "/ok.xml",
        Fixture::feed(rss_items(
            "Wire",
            &[("Harbour reopens", "https://wire.test/harbour", &[])],
        )),
    );
    let long_url = server.url(&long_path);
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"long-and-broken\"\nurl = \"{long_url}\"\n\n\
             [[source]]\nname = \"ok\"\nurl = \"{}\"\n",
            server.url("/ok.xml")
        ),
    );
    let path = config.path();
    let fetch = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["fetch", "-c", path.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(fetch.status.success());

    let terminal = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            on_a_terminal(&["sources", "-c", path.to_str().unwrap()], Some(150))
        })
        .await
        .unwrap()
    };
    let Some(terminal) = terminal else {
        crate::helpers::skip("util-linux `script` is not installed: `tributary sources` on a terminal (apt-get install bsdutils)");
        return;
    };
    let lines: Vec<&str> = terminal.lines().collect();
    assert_eq!(lines.len(), 3, "{terminal}");
    for line in &lines {
        assert!(
            line.chars().count() <= 150,
            "wider than 150 columns: {line:?}"
        );
    }
    let broken = lines
        .iter()
        .find(|l| l.starts_with("long-and-broken"))
        .unwrap();
    // The URL is cut, its start still readable; the error (with its
    // backoff note) is cut last but still says what failed.
    assert!(broken.contains(&long_url[..30]), "{broken}");
    assert!(!broken.contains(&long_url), "{broken}");
    assert!(broken.contains("…"), "{broken}");
    assert!(broken.contains("HTTP 500"), "{broken}");
    let ok = lines.iter().find(|l| l.starts_with("ok ")).unwrap();
    assert!(
        ok.contains(&server.url("/ok.xml")),
        "short cells stay whole: {ok}"
    );

    // Piped (COLUMNS or not), every cell is whole: `| grep`, `| less -S`.
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["sources", "-c", path.to_str().unwrap()])
        .env("COLUMNS", "150")
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout);
    let broken = piped
        .lines()
        .find(|l| l.starts_with("long-and-broken"))
        .unwrap();
    assert!(broken.contains(&long_url), "{broken}");
    assert!(broken.contains("backing off until"), "{broken}");
    assert!(!piped.contains('…'), "{piped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_shows_a_progress_bar_and_a_table_on_a_terminal_and_plain_lines_otherwise() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = two_sources_config(&server, "progress");
    let path = config.path();

    let terminal = tokio::task::spawn_blocking(move || fetch_on_a_terminal(&path))
        .await
        .unwrap();
    let Some(terminal) = terminal else {
        crate::helpers::skip("util-linux `script` is not installed: the terminal half of the fetch test (apt-get install bsdutils)");
        return;
    };
    assert!(terminal.contains("sources"), "{terminal}");
    let table: Vec<&str> = terminal
        .lines()
        .map(|l| l.rsplit("\u{1b}[2K").next().unwrap_or(l))
        .skip_while(|l| !l.starts_with("SOURCE"))
        .collect();
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        words(table[0]),
        ["SOURCE", "STATUS", "RESULT", "NEW", "UPDATED", "MERGED", "ERROR"],
        "{terminal}"
    );
    let rows: Vec<Vec<String>> = table[1..].iter().map(|l| words(l)).collect();
    assert!(
        rows.contains(&words("progress-broken 500 failed - - - HTTP 500")),
        "{terminal}"
    );
    assert!(
        rows.contains(&words("progress-ok 200 2 entries 2 0 0")),
        "{terminal}"
    );
    assert!(terminal.contains("2 sources fetched, 1 failed"));

    // Piped: one plain line per source, no escape sequences.
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["fetch", "-c", config.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&piped.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("progress-ok\t200\tok\t2 entries")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("progress-broken\t500\terror: HTTP 500")),
        "{stdout}"
    );
}

/// With a log level that shows progress (`info`), log lines are written
/// above the progress bar, never into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_the_progress_bar_share_the_terminal_cleanly() {
    let server = FeedServer::start().await;
    serve_two_sources(&server).await;
    let config = TestConfig::write(
        "log_level = \"info\"",
        &format!(
            "[[source]]\nname = \"logs-ok\"\nurl = \"{}\"\n\n\
             [[source]]\nname = \"logs-broken\"\nurl = \"{}\"\n",
            server.url("/ok.xml"),
            server.url("/broken.xml")
        ),
    );
    let path = config.path();
    let terminal = tokio::task::spawn_blocking(move || fetch_on_a_terminal(&path))
        .await
        .unwrap();
    let Some(terminal) = terminal else {
        crate::helpers::skip("util-linux `script` is not installed: the terminal half of the fetch test (apt-get install bsdutils)");
        return;
    };
    // What is left visible of each line once the bar's clearing and
    // redrawing (carriage returns, erase-line) are applied.
    let visible: Vec<&str> = terminal
        .lines()
        .map(|l| l.rsplit("\u{1b}[2K").next().unwrap_or(l))
        .map(|l| l.rsplit('\r').next().unwrap_or(l))
        .collect();
    assert!(
        visible.iter().any(|l| l.contains("INFO")),
        "the configured log level shows: {terminal:?}"
    );
    for line in &visible {
        assert!(
            !(line.contains(" sources") && line.contains("INFO")),
            "a log line written into the bar: {line:?}\n{terminal:?}"
        );
    }
}

/// Hundreds of tags do not push the sources out of view: the most used
/// show, the rest are one click away; sources read as labelled cards on a
/// phone (the cells carry their labels).
#[tokio::test]
async fn the_index_page_shows_the_top_tags_and_keeps_the_rest_one_click_away() {
    let server = FeedServer::start().await;
    // 60 topics (an entry keeps at most 64 categories).
    let categories: Vec<String> = (0..60).map(|i| format!("Topic {i:03}")).collect();
    let refs: Vec<&str> = categories.iter().map(String::as_str).collect();
    let items: Vec<(String, String)> = (0..100)
        .map(|i| (format!("Story {i}"), format!("https://wire.test/{i}")))
        .collect();
    // Story i carries topics 0..=i: topic 000 is the most used.
    let feed_items: Vec<(&str, &str, &[&str])> = items
        .iter()
        .enumerate()
        .map(|(i, (t, l))| (t.as_str(), l.as_str(), &refs[..=i.min(59)]))
        .collect();
    server.set("/many.xml", Fixture::feed(rss_items("Many", &feed_items)));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"many\"\nurl = \"{}\"\n",
            server.url("/many.xml")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let html = app.get_text("/").await;
    let (top, rest) = html
        .split_once("<details>")
        .expect("the other tags are in a <details>");
    assert!(top.contains(">Topic 000 <span>100</span>"), "{top}");
    assert!(top.contains(">Topic 039 <span>61</span>"), "{top}");
    assert!(
        !top.contains(">Topic 040 "),
        "only the 40 most used show at once"
    );
    assert!(rest.contains("<summary>All 60 tags</summary>"), "{rest}");
    assert!(rest.contains(">Topic 059 <span>41</span>"), "{rest}");
    assert!(html.contains("data-label=\"state\""));
    app.stop().await;
}
