//! Behind PgBouncer in transaction mode (docs/DEPLOYMENT.md "Behind
//! PgBouncer"): a real `pgbouncer` started on a free loopback port in front
//! of the `TRIBUTARY_TEST_POSTGRES` server, with the settings that document
//! names. Two daemons share its few server connections and serve identical
//! feeds; `statement_timeout` still holds; and a database that turns
//! read-only or goes away leaves cached pages served and loses no refresh.

use crate::helpers::*;
use crate::scaleout::{assert_same_feeds, free_port, Daemon};
use crate::store::TestDb;
use sqlx::Connection;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tributary::model::Filter;
use tributary::store::{Store, StoreOptions};

/// A PgBouncer process in transaction mode, killed when dropped.
struct PgBouncer {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    /// In front of `server` (a PostgreSQL URL), with `server_connections`
    /// per database; `None` (after saying so) when `pgbouncer` is absent.
    fn start(server: &str, server_connections: u32) -> Option<PgBouncer> {
        if Command::new("pgbouncer")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            skip("pgbouncer is not on PATH: the PgBouncer tests (.ci/run builds PgBouncer 1.24.1)");
            return None;
        }
        let upstream = url::Url::parse(server).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Run as root (CI), PgBouncer drops to `nobody`, which must read this.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, format!("\"{}\" \"\"\n", upstream.username())).unwrap();
        let port = free_port();
        let config = dir.path().join("pgbouncer.ini");
        // The shipped file's settings for tributary's connections; the
        // addresses, authentication and sizes of a test.
        let shipped = include_str!("../../deploy/pgbouncer.ini");
        let tributary_settings: String = shipped
            .lines()
            .filter(|line| {
                [
                    "pool_mode",
                    "max_prepared_statements",
                    "ignore_startup_parameters",
                ]
                .iter()
                .any(|key| line.starts_with(key))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(tributary_settings.lines().count(), 3, "{shipped}");
        std::fs::write(
            &config,
            format!(
                "[databases]\n* = host={} port={}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\n\
                 default_pool_size = {server_connections}\nmax_client_conn = 200\n\
                 {tributary_settings}",
                upstream.host_str().unwrap(),
                upstream.port().unwrap_or(5432),
                users.display()
            ),
        )
        .unwrap();
        let mut bouncer = PgBouncer {
            child: None,
            port,
            config,
            log: dir.path().join("pgbouncer.log"),
            _dir: dir,
        };
        bouncer.run();
        Some(bouncer)
    }

    /// Starts the process (again, on the same port) and waits until it
    /// listens.
    fn run(&mut self) {
        let mut command = Command::new("pgbouncer");
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = command
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("pgbouncer exited with {status}:\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("pgbouncer did not listen:\n{}", self.log());
    }

    /// Kills the process: every connection through it breaks, and new
    /// ones are refused, as in a failover.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `database_url` (on the upstream server) through this PgBouncer.
    fn url(&self, database_url: &str) -> String {
        let mut url = url::Url::parse(database_url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs `sql` on the server directly (not through PgBouncer), from its
/// own database (the test's may be read-only).
async fn direct(_db: &TestDb, sql: &str) {
    let server = postgres_server().unwrap();
    let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::Executor::execute(&mut conn, sql).await.unwrap();
    conn.close().await.unwrap();
}

/// The test database's name.
fn database_name(db: &TestDb) -> String {
    url::Url::parse(&db.url).unwrap().path()[1..].to_string()
}

/// Ends every session on the test's database but the caller's: the next
/// connections see its new settings (as after a failover).
async fn end_sessions(db: &TestDb) {
    direct(
        db,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            database_name(db)
        ),
    )
    .await;
}

/// The documented setting: the timeout on the database, where PgBouncer's
/// server connections pick it up.
async fn set_database_timeout(db: &TestDb, timeout: &str) {
    let name = database_name(db);
    direct(
        db,
        &format!("ALTER DATABASE {name} SET statement_timeout = '{timeout}'"),
    )
    .await;
}

fn sources_toml(server: &FeedServer, sources: usize) -> String {
    (0..sources)
        .map(|i| {
            format!(
                "[[source]]\nname = \"src-{i}\"\nurl = \"{}\"\ntags = [\"group-{}\"]\n\n",
                server.url(&format!("/src-{i}.xml")),
                i % 3
            )
        })
        .collect::<String>()
        + "[[feed]]\nname = \"group-1\"\ntitle = \"Group one\"\nany = [\"group-1\"]\n"
}

/// Source `i`'s feed with stories `0..stories`.
fn serve(server: &FeedServer, i: usize, stories: usize) {
    let items: Vec<(String, String)> = (0..stories)
        .map(|n| {
            (
                format!("Story {n} of source {i}"),
                format!("https://site{i}.test/story/{n}"),
            )
        })
        .collect();
    let items: Vec<(&str, &str, &[&str])> = items
        .iter()
        .map(|(title, link)| (title.as_str(), link.as_str(), &[] as &[&str]))
        .collect();
    let fixture = Fixture::feed(rss_items(&format!("Source {i}"), &items))
        .with_etag(&format!("\"{i}-{stories}\""));
    server.set(&format!("/src-{i}.xml"), fixture);
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The number of entries `daemon` serves in the merged feed.
async fn served_entries(client: &reqwest::Client, daemon: &Daemon) -> usize {
    let (body, _) = daemon.feed(client, "/feed.atom?limit=500").await;
    parse_atom(&body).entries.len()
}

async fn health(client: &reqwest::Client, daemon: &Daemon) -> (u16, String) {
    let response = client
        .get(format!("{}/healthz", daemon.base))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_through_one_pgbouncer_in_transaction_mode_serve_identical_feeds() {
    const SOURCES: usize = 40;
    const STORIES: usize = 5;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // Two server connections for two daemons of six connections each:
    // their transactions take turns on whichever is free.
    let Some(bouncer) = PgBouncer::start(&db.url, 2) else {
        return;
    };
    set_database_timeout(&db, "30s").await;
    let server = FeedServer::start().await;
    for i in 0..SOURCES {
        serve(&server, i, STORIES);
    }
    let dir = tempfile::tempdir().unwrap();
    let sources = sources_toml(&server, SOURCES);
    let url = bouncer.url(&db.url);
    let client = client();
    // Started together: they migrate the new database at once.
    let mut a = Daemon::start(dir.path(), "node-a", &url, &sources);
    let mut b = Daemon::start(dir.path(), "node-b", &url, &sources);
    a.wait_healthy(&client).await;
    b.wait_healthy(&client).await;

    let mut both = 0;
    for _ in 0..600 {
        both = served_entries(&client, &a)
            .await
            .min(served_entries(&client, &b).await);
        if both == SOURCES * STORIES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        both,
        SOURCES * STORIES,
        "every story served by both\n--- a ---\n{}\n--- b ---\n{}\n--- pgbouncer ---\n{}",
        a.log(),
        b.log(),
        bouncer.log()
    );
    assert_same_feeds(&a, &b, &client).await;
    for daemon in [&a, &b] {
        let log = daemon.log();
        // No prepared statement went missing on another server connection
        // (sqlx's cache behind max_prepared_statements), nothing else failed,
        // and the timeout in force is the configured one.
        assert!(!log.contains("ERROR"), "{log}");
        assert!(!log.contains("statement_timeout in force"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_holds_through_pgbouncer() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(bouncer) = PgBouncer::start(&db.url, 2) else {
        return;
    };
    set_database_timeout(&db, "500ms").await;
    let options = StoreOptions {
        statement_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let store = Store::connect(&bouncer.url(&db.url), &options)
        .await
        .unwrap();
    store.page(&Filter::default(), None, 10).await.unwrap();

    // Another session holds the articles: a read through PgBouncer gives
    // up after the timeout instead of waiting for it.
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::Executor::execute(
        &mut holder,
        "BEGIN; LOCK TABLE articles IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .unwrap();
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        store.page(&Filter::default(), None, 10),
    )
    .await
    .expect("the read waited for the lock: statement_timeout not in force");
    let error = read
        .expect_err("the read went through a held lock")
        .to_string();
    assert!(error.contains("statement timeout"), "{error}");
    sqlx::Executor::execute(&mut holder, "ROLLBACK")
        .await
        .unwrap();
    store.page(&Filter::default(), None, 10).await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_or_lost_database_leaves_cached_pages_served_and_loses_no_refresh() {
    const SOURCES: usize = 6;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(mut bouncer) = PgBouncer::start(&db.url, 4) else {
        return;
    };
    set_database_timeout(&db, "30s").await;
    let server = FeedServer::start().await;
    for i in 0..SOURCES {
        serve(&server, i, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let client = client();
    let mut daemon = Daemon::start(
        dir.path(),
        "node",
        &bouncer.url(&db.url),
        &sources_toml(&server, SOURCES),
    );
    daemon.wait_healthy(&client).await;
    let mut served = 0;
    for _ in 0..300 {
        served = served_entries(&client, &daemon).await;
        if served == SOURCES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(served, SOURCES, "{}", daemon.log());
    let (before, etag) = daemon.feed(&client, "/feed.atom?limit=500").await;

    // The database turns read-only (a replica promoted the wrong way, a
    // full disk's emergency): every source gets a new story meanwhile.
    let name = database_name(&db);
    direct(
        &db,
        &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
    )
    .await;
    end_sessions(&db).await;
    for i in 0..SOURCES {
        serve(&server, i, 2);
    }
    let mut status = (0, String::new());
    for _ in 0..300 {
        status = health(&client, &daemon).await;
        if status.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status.0, 503, "{}", daemon.log());
    assert!(
        status.1.starts_with("degraded:") && status.1.contains("read-only transaction"),
        "{status:?}"
    );
    assert!(
        daemon.log().contains("read-only transaction"),
        "the failing write is logged with its cause:\n{}",
        daemon.log()
    );
    assert_eq!(
        daemon.feed(&client, "/feed.atom?limit=500").await,
        (before.clone(), etag.clone()),
        "reads go on"
    );

    // The database goes away altogether: the rendered page is still served.
    bouncer.kill();
    for _ in 0..300 {
        status = health(&client, &daemon).await;
        if status.1 == "database unavailable\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, (503, "database unavailable\n".to_string()));
    assert_eq!(
        daemon.feed(&client, "/feed.atom?limit=500").await,
        (before.clone(), etag.clone()),
        "the cached page is served while the database is away"
    );
    // Past the age at which a page is rendered again (docs/HTTP.md), the
    // database still away: the page last rendered is still served.
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(
        daemon.feed(&client, "/feed.atom?limit=500").await,
        (before, etag),
        "an outage longer than a minute"
    );
    let uncached = client
        .get(format!("{}/tags/group-0.atom", daemon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        uncached.status(),
        503,
        "a page never rendered cannot be: a balancer tries another instance"
    );

    // It comes back writable: the refreshes are tried again and every new
    // story is stored.
    direct(
        &db,
        &format!("ALTER DATABASE {name} RESET default_transaction_read_only"),
    )
    .await;
    end_sessions(&db).await;
    bouncer.run();
    for _ in 0..600 {
        served = served_entries(&client, &daemon).await;
        if served == 2 * SOURCES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(served, 2 * SOURCES, "{}", daemon.log());
    let mut healthy = false;
    for _ in 0..300 {
        if health(&client, &daemon).await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        healthy,
        "{:?}\n{}",
        health(&client, &daemon).await,
        daemon.log()
    );
}
