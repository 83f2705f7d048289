//! Running under systemd (issue: operations): the `tributary run` binary
//! with a real `NOTIFY_SOCKET` datagram socket, SIGHUP reloads good and
//! bad, SIGTERM in the middle of a fetch and a request, journald-style
//! logs, and the hardening score of `deploy/tributary.service`.

use crate::helpers::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixDatagram;

/// `tributary run` as systemd runs it, its stderr collected.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// `http://127.0.0.1:PORT`, read from the "tributary running" log line.
    base: String,
}

impl Daemon {
    async fn spawn(config: &Path, env: &[(&str, String)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["run", "-c", config.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut daemon = Daemon {
            child,
            stderr,
            base: String::new(),
        };
        let line = daemon.wait_for_log("tributary running").await;
        daemon.base = format!("http://{}", listen_address(&line));
        daemon
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The first log line containing `needle`, waiting up to 20 s for it.
    async fn wait_for_log(&mut self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "daemon exited ({status}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no log line {needle:?} within 20 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit, at most `within`.
    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "daemon still running {within:?} after the signal:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Polls `path` until its body satisfies `ok` (20 s at most).
    async fn wait_for_body(&self, path: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && ok(&body) {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "GET {path}: {what} not seen within 20 s (last: {status}):\n{body}\n--- log ---\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `listen=127.0.0.1:PORT` in a log line.
fn listen_address(line: &str) -> String {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("listen="))
        .unwrap_or_else(|| panic!("no listen= in {line:?}"))
        .to_string()
}

/// The service manager's end of the notify protocol: a datagram socket
/// in a temporary directory, named to the daemon by `NOTIFY_SOCKET`.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
    /// Every message received so far, in order.
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        NotifySocket {
            socket: UnixDatagram::bind(&path).unwrap(),
            path,
            _dir: dir,
            seen: Vec::new(),
        }
    }

    fn env(&self) -> (&'static str, String) {
        ("NOTIFY_SOCKET", self.path.to_str().unwrap().to_string())
    }

    /// Receives messages until one satisfies `wanted`; returns it.
    async fn expect(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let received = tokio::time::timeout(left, self.socket.recv(&mut buf)).await;
            let Ok(Ok(n)) = received else {
                panic!("no {what} notification within 20 s; got {:?}", self.seen);
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            if wanted(&message) {
                return message;
            }
        }
    }

    /// The messages that arrive within `window`.
    async fn collect(&mut self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while let Ok(Ok(n)) = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.socket.recv(&mut buf),
        )
        .await
        {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            got.push(message);
        }
        got
    }
}

fn has_line(message: &str, line: &str) -> bool {
    message.lines().any(|l| l == line)
}

fn rss(title: &str, items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(title, link)| {
            format!(
                "<item><title>{title}</title><link>{link}</link>\
                 <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>{title}</title><link>https://example.org/</link>{items}</channel></rss>"
    )
}

#[tokio::test]
async fn systemd_hears_ready_status_watchdog_reload_and_stopping() {
    let server = FeedServer::start().await;
    server.set(
        "/a",
        Fixture::feed(rss("A", &[("Alpha story", "https://a.example/1")])),
    );
    let config = TestConfig::write(
        "",
        &format!("[[source]]\nname = \"a\"\nurl = \"{}\"\n", server.url("/a")),
    );
    let mut notify = NotifySocket::bind();
    let mut daemon = Daemon::spawn(
        &config.path(),
        &[notify.env(), ("WATCHDOG_USEC", "2000000".to_string())],
    )
    .await;

    let ready = notify.expect("READY=1", |m| has_line(m, "READY=1")).await;
    assert!(
        ready.contains(&format!("STATUS=listening on {}", &daemon.base[7..])),
        "{ready}"
    );
    // Ready means serving: migrations ran and the listener is bound.
    assert_eq!(daemon.get("/healthz").await.0, 200);
    let status = notify
        .expect("STATUS with sources", |m| {
            m.contains("STATUS=1 sources, 0 failing; next fetch")
        })
        .await;
    assert!(!status.contains("READY=1"), "{status}");
    notify
        .expect("a first WATCHDOG=1", |m| has_line(m, "WATCHDOG=1"))
        .await;
    notify
        .expect("a second WATCHDOG=1", |m| has_line(m, "WATCHDOG=1"))
        .await;

    daemon.signal("HUP");
    let reloading = notify
        .expect("RELOADING=1", |m| has_line(m, "RELOADING=1"))
        .await;
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "systemd matches a reload by its monotonic time: {reloading}"
    );
    notify
        .expect("READY=1 after the reload", |m| has_line(m, "READY=1"))
        .await;

    daemon.signal("TERM");
    notify
        .expect("STOPPING=1", |m| has_line(m, "STOPPING=1"))
        .await;
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)).await.code(),
        Some(0)
    );
}

#[tokio::test]
async fn the_watchdog_is_withheld_while_the_scheduler_is_stuck() {
    let server = FeedServer::start().await;
    server.set(
        "/a",
        Fixture::feed(rss("A", &[("Alpha story", "https://a.example/1")])),
    );
    let config = TestConfig::write(
        "",
        &format!("[[source]]\nname = \"a\"\nurl = \"{}\"\n", server.url("/a")),
    );
    let mut notify = NotifySocket::bind();
    let mut daemon = Daemon::spawn(
        &config.path(),
        &[notify.env(), ("WATCHDOG_USEC", "2000000".to_string())],
    )
    .await;
    notify
        .expect("WATCHDOG=1", |m| has_line(m, "WATCHDOG=1"))
        .await;

    // The first pass over the empty store ends by building the tag index,
    // which keeps the heartbeat beating while it waits for the write lock
    // (up to busy_timeout): once it is built, the lock below stops the
    // scheduler itself.
    let url = format!("sqlite://{}", config.db_path().display());
    assert!(
        eventually(Duration::from_secs(20), || async {
            tag_index_sql(&url).await.is_some()
        })
        .await,
        "the first pass never built the tag index"
    );

    // Another process takes the database's write lock and keeps it: the
    // scheduler cannot claim sources, though the process is alive and
    // still serves reads.
    let mut locker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    // A ping already on its way may still arrive; after that, none.
    notify.collect(Duration::from_millis(1500)).await;
    let during = notify.collect(Duration::from_secs(3)).await;
    assert!(
        !during.iter().any(|m| has_line(m, "WATCHDOG=1")),
        "pinged while the scheduler was stuck: {during:?}"
    );
    assert_eq!(daemon.get("/healthz").await.0, 200, "alive, but stuck");
    daemon
        .wait_for_log("scheduler made no progress; withholding the watchdog ping")
        .await;

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    notify
        .expect("WATCHDOG=1 once unstuck", |m| has_line(m, "WATCHDOG=1"))
        .await;
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)).await.code(),
        Some(0)
    );
}

#[tokio::test]
async fn sighup_applies_added_sources_removed_sources_tag_rules_and_feeds() {
    let server = FeedServer::start().await;
    server.set(
        "/a",
        Fixture::feed(rss("A", &[("Alpha story", "https://a.example/1")])),
    );
    server.set(
        "/b",
        Fixture::feed(rss("B", &[("Breaking: Beta story", "https://b.example/1")])),
    );
    // `a` is fetched every second, so that its stop shows.
    let before = format!(
        "[[source]]\nname = \"a\"\nurl = \"{}\"\ntags = [\"alpha\"]\nschedule = \"* * * * * *\"\n\
         [[feed]]\nname = \"picked\"\nany = [\"alpha\"]\n",
        server.url("/a")
    );
    let config = TestConfig::write("", &before);
    let mut notify = NotifySocket::bind();
    let mut daemon = Daemon::spawn(&config.path(), &[notify.env()]).await;
    daemon
        .wait_for_body("/feeds/picked.atom", "Alpha story", |b| {
            b.contains("Alpha story")
        })
        .await;
    assert_eq!(daemon.get("/feeds/extra.atom").await.0, 404);

    let text = std::fs::read_to_string(config.path()).unwrap();
    // A new `listen` cannot be taken over by the running process.
    let head = text[..text.find("[[source]]").unwrap()]
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    // `b` every second too: its fetches show the scheduler's time passing.
    let after = format!(
        "{head}[[source]]\nname = \"b\"\nurl = \"{}\"\ntags = [\"beta\"]\nschedule = \"* * * * * *\"\n\
         [[tag_rule]]\ntag = \"breaking\"\nany = [\"Breaking\"]\n\
         [[feed]]\nname = \"picked\"\nany = [\"breaking\"]\n\
         [[feed]]\nname = \"extra\"\ntitle = \"Extra\"\nany = [\"beta\"]\n",
        server.url("/b")
    );
    std::fs::write(config.path(), after).unwrap();
    daemon.signal("HUP");
    notify
        .expect("RELOADING=1", |m| has_line(m, "RELOADING=1"))
        .await;
    notify.expect("READY=1", |m| has_line(m, "READY=1")).await;
    let reloaded = daemon.wait_for_log("config reloaded").await;
    assert!(
        reloaded.contains("added=[\"b\"]") && reloaded.contains("removed=[\"a\"]"),
        "{reloaded}"
    );

    // The added source is fetched at once, tagged by the new rule, and
    // the changed feed follows the new filter.
    let picked = daemon
        .wait_for_body("/feeds/picked.atom", "the new source's story", |b| {
            b.contains("Beta story")
        })
        .await;
    assert!(!picked.contains("Alpha story"), "{picked}");
    assert_valid_atom(&picked);
    let extra = daemon
        .wait_for_body("/feeds/extra.atom", "the added feed", |b| {
            b.contains("Beta story")
        })
        .await;
    assert!(extra.contains(">Extra</title>"), "{extra}");
    let restart = daemon.wait_for_log("apply at the next restart").await;
    assert!(
        restart.contains("WARN") && restart.contains("keys=listen"),
        "{restart}"
    );
    // The removed source's articles stay; it is no longer fetched, while
    // `b`, due as often as `a` was, is fetched three more times.
    let everything = daemon.get("/feed.atom").await.1;
    assert!(everything.contains("Alpha story"), "{everything}");
    let fetched = server.requests("/a").len();
    let b_fetched = server.requests("/b").len();
    assert!(
        eventually(Duration::from_secs(20), || async {
            server.requests("/b").len() >= b_fetched + 3
        })
        .await,
        "b is fetched every second"
    );
    assert_eq!(
        server.requests("/a").len(),
        fetched,
        "a removed source is not fetched"
    );

    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)).await.code(),
        Some(0)
    );
}

#[tokio::test]
async fn sighup_with_an_invalid_config_keeps_the_running_one() {
    let server = FeedServer::start().await;
    server.set(
        "/a",
        Fixture::feed(rss("A", &[("Alpha story", "https://a.example/1")])),
    );
    server.set(
        "/b",
        Fixture::feed(rss("B", &[("Beta story", "https://b.example/1")])),
    );
    let body = format!(
        "[[source]]\nname = \"a\"\nurl = \"{}\"\ntags = [\"alpha\"]\n\
         [[feed]]\nname = \"picked\"\nany = [\"alpha\"]\n",
        server.url("/a")
    );
    let config = TestConfig::write("", &body);
    let good = std::fs::read_to_string(config.path()).unwrap();
    let mut notify = NotifySocket::bind();
    let mut daemon = Daemon::spawn(&config.path(), &[notify.env()]).await;
    let served = daemon
        .wait_for_body("/feeds/picked.atom", "Alpha story", |b| {
            b.contains("Alpha story")
        })
        .await;

    let lines = good.lines().count();
    let broken = [
        // TOML syntax
        (format!("{good}[[source]\n"), lines + 1),
        // valid TOML, invalid config: a bad cron expression
        (
            format!(
                "{good}[[source]]\nname = \"b\"\nurl = \"{}\"\nschedule = \"61 * * * *\"\n",
                server.url("/b")
            ),
            lines + 4,
        ),
    ];
    for (text, line) in broken {
        std::fs::write(config.path(), &text).unwrap();
        daemon.signal("HUP");
        notify
            .expect("RELOADING=1", |m| has_line(m, "RELOADING=1"))
            .await;
        // systemd leaves "reloading" even when the config was refused.
        notify.expect("READY=1", |m| has_line(m, "READY=1")).await;
        let rejected = daemon.wait_for_log("config rejected").await;
        assert!(
            rejected.contains(&format!("{}:{line}:", config.path().display())),
            "the error names FILE:LINE:COL: {rejected}"
        );
        assert!(rejected.contains("ERROR"), "{rejected}");
        // Clear the log so the next case finds its own line.
        daemon.stderr.lock().unwrap().clear();
        assert_eq!(
            daemon.get("/feeds/picked.atom").await,
            (200, served.clone())
        );
        assert!(daemon.child.try_wait().unwrap().is_none(), "still running");
    }
    assert_eq!(
        server.requests("/b").len(),
        0,
        "nothing of a rejected config runs"
    );

    // Fixed, the next SIGHUP applies it.
    std::fs::write(
        config.path(),
        format!(
            "{good}[[source]]\nname = \"b\"\nurl = \"{}\"\ntags = [\"alpha\"]\n",
            server.url("/b")
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    daemon
        .wait_for_body("/feeds/picked.atom", "the fixed config's source", |b| {
            b.contains("Beta story")
        })
        .await;
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)).await.code(),
        Some(0)
    );
}

/// A publisher that answers headers and the start of a body, then stalls
/// with the connection open. Returns its URL and a counter of connections.
async fn stalling_publisher() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/feed", listener.local_addr().unwrap());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 2048];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                      Content-Length: 100000\r\n\r\n<rss version=\"2.0\"><channel><title>Slow</title>\
                      <item><title>Half a story</title>",
                )
                .await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, connections)
}

#[tokio::test]
async fn sigterm_during_a_slow_fetch_and_a_request_exits_0_with_an_intact_database() {
    let server = FeedServer::start().await;
    server.set(
        "/fast",
        Fixture::feed(rss("Fast", &[("Fast story", "https://fast.example/1")])),
    );
    let (slow, connections) = stalling_publisher().await;
    let config = TestConfig::write(
        "timeout = \"1h\"\n",
        &format!(
            "[[source]]\nname = \"fast\"\nurl = \"{}\"\n[[source]]\nname = \"slow\"\nurl = \"{slow}\"\n",
            server.url("/fast")
        ),
    );
    let mut daemon = Daemon::spawn(&config.path(), &[]).await;
    daemon
        .wait_for_body("/feed.atom", "the fast source's story", |b| {
            b.contains("Fast story")
        })
        .await;
    let started = Instant::now();
    while connections.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "slow fetch never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A request in flight: its head is still arriving.
    let address = daemon.base.trim_start_matches("http://").to_string();
    let mut request = tokio::net::TcpStream::connect(&address).await.unwrap();
    request
        .write_all(b"GET /feed.atom HTTP/1.1\r\nHost: feeds.test\r\n")
        .await
        .unwrap();
    // And an idle keep-alive connection after a complete one.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: feeds.test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");

    // Nothing half-written: the file is intact, the committed story is
    // there, the abandoned fetch left no trace and no lease behind.
    let url = format!("sqlite://{}", config.db_path().display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let leased: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sources WHERE lease_owner IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(leased, 0, "leases are released on a clean stop");
    drop(db);
    let exported = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["export", "-c", config.path().to_str().unwrap()])
        .output()
        .unwrap();
    let feed = String::from_utf8_lossy(&exported.stdout);
    assert!(feed.contains("Fast story"), "{feed}");
    assert!(!feed.contains("Half a story"), "{feed}");
}

/// The device and inode of a file, as systemd writes `JOURNAL_STREAM`.
fn journal_stream_of(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    format!("{}:{}", meta.dev(), meta.ino())
}

/// Runs the daemon with stderr into a file (the journal's stand-in), until
/// one refresh was logged; returns the log.
async fn run_logging_to_file(journal_stream: impl Fn(&Path) -> String) -> String {
    let server = FeedServer::start().await;
    server.set(
        "/a",
        Fixture::feed(rss("A", &[("Alpha story", "https://a.example/1")])),
    );
    let config = TestConfig::write(
        "",
        &format!("[[source]]\nname = \"a\"\nurl = \"{}\"\n", server.url("/a")),
    );
    let log_path = config.dir.path().join("stderr.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-c", config.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", journal_stream(&log_path))
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("ingested")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no refresh logged:\n{}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    std::fs::read_to_string(&log_path).unwrap()
}

#[tokio::test]
async fn logs_to_the_journal_carry_priorities_and_no_colors_or_timestamps() {
    let log = run_logging_to_file(journal_stream_of).await;
    assert!(!log.contains('\u{1b}'), "no ANSI escapes: {log}");
    for line in log.lines() {
        let priority = line.get(..3).unwrap_or_default();
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&priority),
            "each line starts with its syslog priority: {line:?}"
        );
        assert!(
            !line[3..].starts_with(|c: char| c.is_ascii_digit()),
            "the journal adds the time, the line does not: {line:?}"
        );
    }
    // One span per refresh, with structured fields.
    let refresh = log.lines().find(|l| l.contains("ingested")).unwrap();
    assert!(
        refresh.starts_with("<6>refresh{source=a url=http://127.0.0.1:"),
        "{refresh}"
    );
    assert!(refresh.contains("inserted=1"), "{refresh}");
}

#[tokio::test]
async fn a_journal_stream_that_is_not_stderr_keeps_the_plain_format() {
    // Inherited from a parent whose stderr went to the journal, but this
    // stderr is a file: systemd.exec(5) says to check the inode.
    let log = run_logging_to_file(|_| "1:1".to_string()).await;
    let first = log.lines().next().unwrap();
    assert!(
        first.starts_with(|c: char| c.is_ascii_digit()) && first.contains("INFO"),
        "timestamped, level named: {first:?}"
    );
}

#[test]
fn the_systemd_unit_follows_daemon_conventions_and_is_hardened() {
    let unit_path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/tributary.service");
    let unit = std::fs::read_to_string(unit_path).unwrap();
    let settings: Vec<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for wanted in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "StateDirectory=tributary",
        "ConfigurationDirectory=tributary",
        "DynamicUser=yes",
    ] {
        assert!(
            settings.iter().any(|l| l.starts_with(wanted)),
            "{wanted} missing from the unit"
        );
    }

    let output = match Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", unit_path])
        .env("SYSTEMD_COLORS", "0")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::helpers::skip("systemd-analyze is not installed: the unit's hardening score (apt-get install systemd)");
            return;
        }
        Err(e) => panic!("running systemd-analyze: {e}"),
    };
    let report = String::from_utf8_lossy(&output.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for tributary.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{report}");
    assert!(output.status.success(), "{report}");
}
