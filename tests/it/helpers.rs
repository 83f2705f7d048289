//! Shared test harness: a real HTTP server on 127.0.0.1 serving feed bytes,
//! and the real application on its own temporary SQLite file.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tributary::app::{self, Application};
use tributary::clock::Clock;
use tributary::config::Config;
use tributary::pipeline::{Pipeline, RefreshReport};
use tributary::scheduler;

/// What the fixture server answers on one path.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub extra_headers: Vec<(&'static str, String)>,
    /// Held before answering (a slow publisher).
    pub delay: Option<std::time::Duration>,
}

impl Fixture {
    pub fn feed(body: impl Into<Vec<u8>>) -> Fixture {
        Fixture {
            status: 200,
            body: body.into(),
            content_type: "application/rss+xml; charset=utf-8",
            etag: None,
            last_modified: None,
            extra_headers: Vec::new(),
            delay: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Fixture {
        self.extra_headers.push((name, value.to_string()));
        self
    }

    pub fn with_delay(mut self, delay: std::time::Duration) -> Fixture {
        self.delay = Some(delay);
        self
    }

    pub fn with_etag(mut self, etag: &str) -> Fixture {
        self.etag = Some(etag.to_string());
        self
    }

    pub fn with_last_modified(mut self, value: &str) -> Fixture {
        self.last_modified = Some(value.to_string());
        self
    }

    pub fn status(status: u16) -> Fixture {
        Fixture {
            status,
            body: Vec::new(),
            content_type: "text/plain",
            etag: None,
            last_modified: None,
            extra_headers: Vec::new(),
            delay: None,
        }
    }
}

/// A request the fixture server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub at: std::time::Instant,
}

#[derive(Default)]
struct ServerState {
    fixtures: Mutex<HashMap<String, Fixture>>,
    seen: Mutex<Vec<Seen>>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

/// A real HTTP server on 127.0.0.1 with per-path fixtures that tests can
/// change between fetches. It honours If-None-Match / If-Modified-Since
/// like a well-behaved publisher.
pub struct FeedServer {
    pub base: String,
    state: Arc<ServerState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        let state = Arc::new(ServerState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(serve_fixture)
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        FeedServer {
            base,
            state,
            _stop: stop,
        }
    }

    pub fn set(&self, path: &str, fixture: Fixture) {
        self.state
            .fixtures
            .lock()
            .unwrap()
            .insert(path.to_string(), fixture);
    }

    /// The most requests this server had in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.state
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn serve_fixture(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    state.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers: request.headers().clone(),
        at: std::time::Instant::now(),
    });
    let fixture = state.fixtures.lock().unwrap().get(&path).cloned();
    let Some(fixture) = fixture else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    if let Some(delay) = fixture.delay {
        use std::sync::atomic::Ordering::SeqCst;
        let now = state.in_flight.fetch_add(1, SeqCst) + 1;
        state.max_in_flight.fetch_max(now, SeqCst);
        tokio::time::sleep(delay).await;
        state.in_flight.fetch_sub(1, SeqCst);
    }
    let headers = request.headers();
    let etag_hit = match (&fixture.etag, headers.get("if-none-match")) {
        (Some(etag), Some(sent)) => sent.as_bytes() == etag.as_bytes(),
        _ => false,
    };
    let date_hit = match (&fixture.last_modified, headers.get("if-modified-since")) {
        (Some(lm), Some(sent)) => fixture.etag.is_none() && sent.as_bytes() == lm.as_bytes(),
        _ => false,
    };
    let status = if fixture.status == 200 && (etag_hit || date_hit) {
        304
    } else {
        fixture.status
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", fixture.content_type);
    if let Some(etag) = &fixture.etag {
        response = response.header("etag", HeaderValue::from_str(etag).unwrap());
    }
    if let Some(lm) = &fixture.last_modified {
        response = response.header("last-modified", lm.as_str());
    }
    for (name, value) in &fixture.extra_headers {
        response = response.header(*name, value.as_str());
    }
    let body = if status == 304 {
        Body::empty()
    } else {
        Body::from(fixture.body)
    };
    response.body(body).unwrap()
}

/// A config file in a temporary directory, with its SQLite database there.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
}

impl TestConfig {
    /// `body` is everything after `[daemon]`'s database/listen lines.
    pub fn write(daemon_extra: &str, body: &str) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tributary.db");
        let text = format!(
            "[daemon]\ndatabase = \"sqlite://{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n{daemon_extra}\n{body}",
            db.display()
        );
        std::fs::write(dir.path().join("tributary.toml"), text).unwrap();
        TestConfig { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("tributary.toml")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("tributary.db")
    }

    pub fn load(&self) -> Config {
        Config::load(&self.path()).unwrap()
    }
}

/// The real application, serving on a free port.
pub struct TestApp {
    pub base: String,
    pub config: Config,
    /// The daemon's own store handle.
    store: tributary::store::Store,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub client: reqwest::Client,
    /// The daemon's clock, which `fetch_now` reads too.
    pub clock: Clock,
    turns: tokio::sync::watch::Receiver<tributary::scheduler::Turns>,
}

impl TestApp {
    /// Starts the daemon; its scheduler fetches every source once at start.
    pub async fn spawn(config: Config) -> TestApp {
        TestApp::spawn_with_clock(config, Clock::system()).await
    }

    /// Starts the daemon reading the time from `clock` (a manual one
    /// stands still until the test advances it).
    pub async fn spawn_with_clock(config: Config, clock: Clock) -> TestApp {
        let application = Application::build(config.clone())
            .await
            .unwrap()
            .with_clock(clock.clone());
        let base = format!("http://127.0.0.1:{}", application.port());
        let store = application.store().clone();
        let turns = application.scheduler_turns();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(application.run_until_stopped(shutdown.clone()));
        TestApp {
            base,
            config,
            store,
            shutdown,
            handle: Some(handle),
            client: reqwest::Client::builder()
                .no_gzip()
                .no_brotli()
                .build()
                .unwrap(),
            clock,
            turns,
        }
    }

    /// Waits until the daemon's scheduler, in a turn begun after this call,
    /// found nothing to do: no source due that it could claim, no refresh
    /// running. What it has not fetched by then, it fetches only once due.
    pub async fn scheduler_idle(&self) {
        let mut turns = self.turns.clone();
        let completed = turns.borrow_and_update().completed;
        // The turn under way may have begun before this call.
        let idle = turns.wait_for(|t| t.completed >= completed + 2 && t.idle);
        tokio::time::timeout(std::time::Duration::from_secs(20), idle)
            .await
            .expect("the scheduler was not idle within 20 s")
            .expect("the scheduler stopped");
    }

    /// Runs one fetch cycle of every source now, as `tributary fetch` does,
    /// through the daemon's own store (so its feed cache sees the change at
    /// once, not within the poll that another process's writes wait for).
    pub async fn fetch_now(&self) -> Vec<RefreshReport> {
        fetch_with(&self.config, &self.store, &self.clock).await
    }

    /// Waits until every enabled source was fetched at least once.
    pub async fn wait_fetched(&self) {
        let store = app::open_store(&self.config).await.unwrap();
        for _ in 0..200 {
            let states = store.source_states().await.unwrap();
            if states
                .iter()
                .filter(|s| s.enabled)
                .all(|s| s.last_fetch_at.is_some())
            {
                store.close().await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("sources were not fetched in time");
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path_and_query))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_text(&self, path_and_query: &str) -> String {
        let response = self.get(path_and_query).await;
        assert_eq!(response.status(), 200, "GET {path_and_query}");
        response.text().await.unwrap()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One fetch cycle of every enabled source, on the config's database.
pub async fn fetch_now(config: &Config) -> Vec<RefreshReport> {
    fetch_now_with_clock(config, &Clock::system()).await
}

/// [`fetch_now`] at the time `clock` reads: what it stores is stored then.
pub async fn fetch_now_with_clock(config: &Config, clock: &Clock) -> Vec<RefreshReport> {
    let store = app::open_store(config).await.unwrap();
    let reports = fetch_with(config, &store, clock).await;
    store.close().await;
    reports
}

async fn fetch_with(
    config: &Config,
    store: &tributary::store::Store,
    clock: &Clock,
) -> Vec<RefreshReport> {
    // Events land where a daemon of this process (a TestApp) renders them,
    // whichever test built one first.
    tributary::metrics::Recorder::install();
    let pipeline = Arc::new(
        Pipeline::new(config, store.clone())
            .unwrap()
            .with_clock(clock.clone()),
    );
    let names: Vec<String> = config
        .sources
        .iter()
        .filter(|s| s.enabled)
        .map(|s| s.name.clone())
        .collect();
    scheduler::run_once(
        pipeline,
        "test",
        &names,
        chrono::TimeDelta::minutes(5),
        CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap()
}

/// Notes that part of a test is skipped because `missing` is not on this
/// machine: once per reason, on the real stderr (not the test's captured
/// output), so a newcomer's `cargo test` says plainly what it skipped. CI
/// sets `TRIBUTARY_TEST_ALL=1`, and there a skip is a failure.
pub fn skip(missing: &str) {
    if std::env::var_os("TRIBUTARY_TEST_ALL").is_some() {
        panic!("TRIBUTARY_TEST_ALL is set, but {missing}");
    }
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|s| s == missing) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped: {missing}");
        said.push(missing.to_string());
    }
}

/// The shared corpus, or `None` (see [`skip`]) when unset.
pub fn shared_dir() -> Option<PathBuf> {
    match std::env::var_os("TRIBUTARY_SHARED") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            skip("TRIBUTARY_SHARED is not set: tests over the shared fixture corpus and RFC 4287 schema checks (the corpus lives outside this repo; .ci/run sets it)");
            None
        }
    }
}

/// The `TRIBUTARY_TEST_POSTGRES` server URL, or `None` (see [`skip`]).
pub fn postgres_server() -> Option<String> {
    match std::env::var("TRIBUTARY_TEST_POSTGRES") {
        Ok(url) => Some(url),
        Err(_) => {
            skip("TRIBUTARY_TEST_POSTGRES is not set: PostgreSQL halves of the store tests (e.g. postgres://postgres@127.0.0.1:5432/test; .ci/run sets it)");
            None
        }
    }
}

/// Validates Atom against RFC 4287's RELAX NG schema with xmllint; without
/// the schema (or xmllint) it checks that the document is well-formed XML
/// that a feed parser reads, and says what it skipped.
pub fn assert_valid_atom(xml: &str) {
    let checked_by_a_parser = || {
        let mut reader = quick_xml::Reader::from_str(xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("served Atom is not well-formed XML: {e}\n{xml}"),
            }
        }
        parse_atom(xml);
    };
    let Some(shared) = shared_dir() else {
        return checked_by_a_parser();
    };
    let schema = shared.join("schemas/atom.rng");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let output = match std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(&schema)
        .arg(file.path())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip(
                "xmllint is not installed: RFC 4287 schema checks (apt-get install libxml2-utils)",
            );
            return checked_by_a_parser();
        }
        Err(e) => panic!("running xmllint: {e}"),
    };
    assert!(
        output.status.success(),
        "served Atom is not valid RFC 4287:\n{}\n--- document ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        xml
    );
}

/// Parses served Atom back with a real parser.
pub fn parse_atom(xml: &str) -> feed_rs::model::Feed {
    feed_rs::parser::parse(xml.as_bytes()).expect("served feed parses")
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// An RSS 2.0 feed of `(title, link, categories)` items, all published at
/// one fixed date.
pub fn rss_items(title: &str, items: &[(&str, &str, &[&str])]) -> String {
    let items: String = items
        .iter()
        .map(|(title, link, categories)| {
            let categories: String = categories
                .iter()
                .map(|c| format!("<category>{c}</category>"))
                .collect();
            format!(
                "<item><title>{title}</title><link>{link}</link><guid>{link}</guid>\
                 <description>About {title}.</description>{categories}\
                 <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title}</title>\
         <link>https://example.org/</link>{items}</channel></rss>"
    )
}

/// Checks `holds` every 50 ms until it is true or `within` has passed;
/// whether it became true. For what a daemon does in the background.
pub async fn eventually<F, Fut>(within: std::time::Duration, mut holds: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if holds().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The tag index's definition in the SQLite store at `url`, `None` while
/// a first import goes without it (store/bulk_load.rs).
pub async fn tag_index_sql(url: &str) -> Option<String> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let sql = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'article_tags_term_published'",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    sql
}

/// A documentation address (TEST-NET-1) that exists only inside the network
/// namespace [`in_own_network_namespace`] makes: a "non-loopback" host for
/// tests of what crosses from outer to inner addresses.
pub const OUTER_ADDRESS: &str = "192.0.2.2";

/// Runs the test named `test` again inside a network namespace of its own
/// (util-linux `unshare`, iproute2 `ip`), where only `lo` exists, with
/// [`OUTER_ADDRESS`] on it: real connections to a non-loopback address
/// with no traffic leaving the namespace. True in that re-run (go on);
/// false in the caller once the re-run passed (or was skipped).
pub fn in_own_network_namespace(test: &str) -> bool {
    if std::env::var_os("TRIBUTARY_IN_NETNS").is_some() {
        return true;
    }
    let out = std::process::Command::new("unshare")
        .args(["--net", "--map-root-user", "sh", "-c"])
        .arg(format!(
            "ip link set lo up && ip addr add {OUTER_ADDRESS}/32 dev lo && exec \"$0\" \"$@\""
        ))
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--include-ignored"])
        .env("TRIBUTARY_IN_NETNS", "1")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip("util-linux `unshare` is not installed: tests that need a network namespace of their own");
            return false;
        }
        Err(e) => panic!("running unshare: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && (stderr.starts_with("unshare:") || stderr.contains("ip: ")) {
        skip(&format!("no network namespace of our own here ({}): tests of redirects from a non-loopback source", stderr.trim()));
        return false;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own network namespace:\n{stdout}\n{stderr}"
    );
    false
}

/// Asserts that `holds` becomes true within 20 s, checked every 50 ms.
pub async fn within(what: &str, holds: impl FnMut() -> bool) {
    let mut holds = holds;
    assert!(
        eventually(std::time::Duration::from_secs(20), || std::future::ready(
            holds()
        ))
        .await,
        "{what}"
    );
}

/// Now, to the second: the store keeps microseconds.
pub fn whole_second() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap()
}

/// The value of the sample of `name` whose labels include all of `labels`.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
