//! Failures that must not hide: when the store cannot write a refresh (a
//! full disk, a PostgreSQL backend killed mid-write), the source shows the
//! failure, `tributary_fetches_total` counts it as `error_store`, the log
//! names the source at ERROR, `/healthz` answers 503 with the reason, and
//! all of it clears once writes succeed again. The feeds keep being served
//! throughout.

use crate::helpers::*;
use crate::store::TestDb;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn feed(items: &[&str]) -> String {
    let items: Vec<(&str, String, &[&str])> = items
        .iter()
        .enumerate()
        .map(|(i, title)| (*title, format!("https://example.org/{i}"), &[][..]))
        .collect();
    let items: Vec<(&str, &str, &[&str])> =
        items.iter().map(|(t, l, c)| (*t, l.as_str(), *c)).collect();
    rss_items("Failing", &items)
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    match client.get(format!("{base}{path}")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// `/healthz` once it answers `status`, or its last answer after `within`.
async fn healthz_when(
    client: &reqwest::Client,
    base: &str,
    status: u16,
    within: Duration,
) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let health = get(client, base, "/healthz").await;
        if health.0 == status || tokio::time::Instant::now() >= deadline {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/metrics` once `holds` is true of it, or the last one after `within`:
/// a refresh's failure is recorded in memory first, then the attempt to
/// store it, then its metrics.
async fn metrics_when(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
    holds: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (_, metrics) = get(client, base, "/metrics").await;
        if holds(&metrics) || tokio::time::Instant::now() >= deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stored_error(metrics: &str) -> bool {
    sample(
        metrics,
        "tributary_fetches_total",
        &[("source", "a"), ("outcome", "error_store")],
    )
    .is_some_and(|n| n >= 1.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this process may mount a tmpfs in a mount namespace of its own
/// (root, or CAP_SYS_ADMIN, and `unshare` installed).
fn can_mount_tmpfs(dir: &Path) -> bool {
    Command::new("unshare")
        .args(["-m", "--", "mount", "-t", "tmpfs", "-o", "size=1m", "none"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The daemon, killed when the test ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The disk under the SQLite database fills up: a real `tributary run`
/// whose database lives on a 16 MiB tmpfs (mounted in a mount namespace of
/// its own, so nothing leaks to the host), filled up through
/// `/proc/PID/root` once the first refresh is stored.
#[tokio::test]
async fn a_full_disk_shows_in_the_source_metrics_log_and_healthz_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    if !can_mount_tmpfs(&disk) {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root and unshare); \
             see docs/CONFIG.md, Failures, for the manual check"
        );
        return;
    }
    let server = FeedServer::start().await;
    server.set("/a", Fixture::feed(feed(&["First story"])));
    let port = free_port();
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"sqlite://{}/tributary.db\"\nlisten = \"127.0.0.1:{port}\"\n\
             base_url = \"http://feeds.test\"\nschedule = \"* * * * * *\"\ntimeout = \"4s\"\n\n\
             [[source]]\nname = \"a\"\nurl = \"{}\"\n",
            disk.display(),
            server.url("/a")
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let daemon = Daemon(
        Command::new("unshare")
            .args(["-m", "--", "sh", "-c"])
            .arg("mount -t tmpfs -o size=16m tributary-test \"$1\" && shift && exec \"$@\"")
            .arg("sh")
            .arg(&disk)
            .arg(env!("CARGO_BIN_EXE_tributary"))
            .args(["run", "-c", config.to_str().unwrap()])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    let stored = eventually(Duration::from_secs(30), || async {
        get(&client, &base, "/feed.atom")
            .await
            .1
            .contains("First story")
    })
    .await;
    assert!(stored, "first refresh not served:\n{}", log_text());
    assert_eq!(get(&client, &base, "/healthz").await, (200, "ok\n".into()));

    // The next fetch takes a while: the disk fills up after the source was
    // claimed (on a disk already full the claim fails, and that shows in
    // /healthz too, but no refresh runs).
    let seen = server.requests("/a").len();
    server.set(
        "/a",
        Fixture::feed(feed(&["First story", "Second story"])).with_delay(Duration::from_secs(2)),
    );
    // The second fetch from now started after the change for sure.
    let claimed = eventually(Duration::from_secs(30), || async {
        server.requests("/a").len() >= seen + 2
    })
    .await;
    assert!(claimed);
    // Fill the daemon's tmpfs: the path resolves in its mount namespace.
    let filler = Path::new("/proc")
        .join(daemon.0.id().to_string())
        .join("root")
        .join(disk.strip_prefix("/").unwrap())
        .join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let full = loop {
            if let Err(e) = file.write_all(&chunk) {
                break e;
            }
        };
        assert_eq!(full.kind(), std::io::ErrorKind::StorageFull, "{full}");
    }
    server.set(
        "/a",
        Fixture::feed(feed(&["First story", "Second story", "Third story"])),
    );

    let health = healthz_when(&client, &base, 503, Duration::from_secs(30)).await;
    assert!(
        health.0 == 503
            && health
                .1
                .starts_with("degraded: store writes failing since ")
            && health.1.contains("full")
            && health.1.contains("not stored: a"),
        "{health:?}"
    );
    let metrics = metrics_when(&client, &base, Duration::from_secs(30), stored_error).await;
    assert!(stored_error(&metrics), "{metrics}");
    let value = |name: &str, labels: &[(&str, &str)]| sample(&metrics, name, labels);
    assert_eq!(
        value("tributary_sources", &[("state", "failing")]),
        Some(1.0)
    );
    assert_eq!(value("tributary_sources", &[("state", "ok")]), Some(0.0));
    assert_eq!(value("tributary_sources_unstored", &[]), Some(1.0));
    assert_eq!(value("tributary_store_writes_failing", &[]), Some(1.0));
    let error_line = log_text()
        .lines()
        .find(|l| l.contains("storing the refresh failed"))
        .map(String::from);
    assert!(
        error_line
            .as_deref()
            .is_some_and(|l| l.contains("ERROR") && l.contains("source=a")),
        "{error_line:?}\n{}",
        log_text()
    );
    // Still serving what was stored.
    let (status, atom) = get(&client, &base, "/feed.atom").await;
    assert_eq!(status, 200);
    assert!(atom.contains("First story") && !atom.contains("Third story"));

    // Space again, and the server asks to slow down next time (once the
    // lease the unstored refresh still holds ran out: timeout + 30 s). A 429
    // counts no failure, but its record stores the count kept in memory.
    server.set("/a", Fixture::status(429));
    std::fs::remove_file(&filler).unwrap();
    // As `tributary sources` shows it, run where the daemon's disk is.
    let sources = || {
        let out = Command::new("nsenter")
            .args(["-t", &daemon.0.id().to_string(), "-m", "--"])
            .arg(env!("CARGO_BIN_EXE_tributary"))
            .args(["sources", "-c", config.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut table = String::new();
    for _ in 0..90 {
        table = sources();
        if table.contains("HTTP 429") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("a "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // NAME URL LAST-FETCH(date, time) STATUS ARTICLES FAILURES …
    assert_eq!(row.get(4), Some(&"429"), "{table}\n{}", log_text());
    assert_eq!(row.get(6), Some(&"1"), "{table}");
    // Writes work again: healthy, though the source is failing.
    assert_eq!(get(&client, &base, "/healthz").await, (200, "ok\n".into()));

    server.set(
        "/a",
        Fixture::feed(feed(&["First story", "Second story", "Third story"])),
    );
    let recovered = eventually(Duration::from_secs(30), || async {
        get(&client, &base, "/feed.atom")
            .await
            .1
            .contains("Third story")
    })
    .await;
    assert!(recovered, "{}", log_text());
    assert!(get(&client, &base, "/feed.atom")
        .await
        .1
        .contains("Third story"));
    let (_, metrics) = get(&client, &base, "/metrics").await;
    assert_eq!(
        sample(&metrics, "tributary_sources", &[("state", "ok")]),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "tributary_sources_unstored", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, "tributary_store_writes_failing", &[]),
        Some(0.0)
    );
}

/// PostgreSQL kills the daemon's connection in the middle of an ingest
/// (`pg_terminate_backend`, as an administrator or a failover would).
#[tokio::test]
async fn a_killed_postgres_backend_shows_until_a_refresh_is_stored_again() {
    use sqlx::{Connection, Executor};
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: TRIBUTARY_TEST_POSTGRES is not set");
        return;
    };
    let server = FeedServer::start().await;
    server.set("/a", Fixture::feed(feed(&["First story"])));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    std::fs::write(
        &path,
        format!(
            "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             base_url = \"http://feeds.test\"\nschedule = \"* * * * * *\"\ntimeout = \"10s\"\n\n\
             [[source]]\nname = \"a\"\nurl = \"{}\"\n",
            db.url,
            server.url("/a")
        ),
    )
    .unwrap();
    let app = TestApp::spawn(tributary::config::Config::load(&path).unwrap()).await;
    let stored = eventually(Duration::from_secs(30), || async {
        app.get_text("/feed.atom").await.contains("First story")
    })
    .await;
    assert!(stored);
    assert_eq!(app.get_text("/healthz").await, "ok\n");

    // Hold the articles table: the next ingest waits on it, and is killed
    // while it waits. Reads go on.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    admin.execute("BEGIN").await.unwrap();
    admin
        .execute("LOCK TABLE articles IN EXCLUSIVE MODE")
        .await
        .unwrap();
    server.set("/a", Fixture::feed(feed(&["First story", "Second story"])));
    let mut killed = 0;
    for _ in 0..300 {
        killed = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if killed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(killed > 0, "no ingest waited on the lock");

    // While the lock holds, every later ingest waits: the failure stays.
    let health = healthz_when(&app.client, &app.base, 503, Duration::from_secs(20)).await;
    assert!(
        health.0 == 503
            && health
                .1
                .starts_with("degraded: store writes failing since ")
            && health.1.contains("not stored: a"),
        "{health:?}"
    );
    let metrics = metrics_when(
        &app.client,
        &app.base,
        Duration::from_secs(30),
        stored_error,
    )
    .await;
    assert!(stored_error(&metrics), "{metrics}");
    assert_eq!(
        sample(&metrics, "tributary_sources", &[("state", "failing")]),
        Some(1.0),
        "{metrics}"
    );
    // The failure itself could be stored (on a new connection): another
    // process sees it too.
    let other = db.store().await;
    let persisted = eventually(Duration::from_secs(30), || async {
        let state = other.source_states().await.unwrap().remove(0);
        state.consecutive_failures >= 1
            && state
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("store: "))
    })
    .await;
    assert!(persisted, "{:?}", other.source_states().await.unwrap());
    other.close().await;
    assert!(app.get_text("/feed.atom").await.contains("First story"));

    admin.execute("COMMIT").await.unwrap();
    let recovered = eventually(Duration::from_secs(30), || async {
        app.get("/healthz").await.status() == 200
    })
    .await;
    assert!(recovered);
    let ingested = eventually(Duration::from_secs(30), || async {
        app.get_text("/feed.atom").await.contains("Second story")
    })
    .await;
    assert!(ingested);
    let metrics = metrics_when(&app.client, &app.base, Duration::from_secs(30), |m| {
        sample(m, "tributary_sources", &[("state", "ok")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&metrics, "tributary_sources", &[("state", "ok")]),
        Some(1.0),
        "{metrics}"
    );
    app.stop().await;
}
