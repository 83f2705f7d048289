//! Scale-out on PostgreSQL (docs/DEPLOYMENT.md "PostgreSQL and several instances"): two real `tributary run`
//! processes on one database share the fetching of 120 sources without a
//! coordinator, never fetch one source twice for one due time, serve the
//! same feeds, and keep every source fetched after one of them is killed.
//! Runs when `TRIBUTARY_TEST_POSTGRES` names a server.

use crate::helpers::*;
use crate::store::TestDb;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tributary::config::Schedule;
use tributary::polling;

const SOURCES: usize = 120;
const SCHEDULE: &str = "*/2 * * * * *";

/// A daemon process, killed if the test ends early (pgbouncer.rs runs
/// them too).
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) base: String,
    log: std::path::PathBuf,
}

impl Daemon {
    pub(crate) fn start(dir: &Path, name: &str, database: &str, sources: &str) -> Daemon {
        let port = free_port();
        let config = dir.join(format!("{name}.toml"));
        // Same config on every node but for the listen address and the
        // User-Agent, which tells the fixture server who fetched.
        std::fs::write(
            &config,
            format!(
                "[daemon]\ndatabase = \"{database}\"\nlisten = \"127.0.0.1:{port}\"\n\
                 base_url = \"https://feeds.example.org/\"\nschedule = \"{SCHEDULE}\"\n\
                 timeout = \"2s\"\nuser_agent = \"{name}\"\npool_size = 6\n\n{sources}"
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["run", "-c", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn wait_healthy(&mut self, client: &reqwest::Client) {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("daemon exited with {status}:\n{}", self.log());
            }
            let health = client.get(format!("{}/healthz", self.base)).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("daemon did not become healthy:\n{}", self.log());
    }

    /// Body and ETag of a served feed.
    pub(crate) async fn feed(&self, client: &reqwest::Client, path: &str) -> (String, String) {
        let response = client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}:\n{}", self.log());
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        (response.text().await.unwrap(), etag)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two instances serve the merged, JSON, configured and tag feeds with the
/// same bytes and the same ETag, as a load balancer needs.
pub(crate) async fn assert_same_feeds(a: &Daemon, b: &Daemon, client: &reqwest::Client) {
    for path in [
        "/feed.atom?limit=500",
        "/feed.json?limit=500",
        "/feeds/group-1.atom",
        "/tags/group-2.atom",
    ] {
        let (body_a, etag_a) = a.feed(client, path).await;
        let (body_b, etag_b) = b.feed(client, path).await;
        assert_eq!(body_a, body_b, "{path} differs between instances");
        assert_eq!(etag_a, etag_b, "{path}");
    }
}

fn source_name(i: usize) -> String {
    format!("src-{i:03}")
}

/// One own story per source, and one story every source carries (merged
/// into one article with every source's tags).
fn rss(i: usize) -> String {
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Source {i}</title>\
         <link>https://site{i}.test/</link><description>x</description>\
         <item><title>Own story {i}</title><link>https://site{i}.test/own</link>\
         <guid>https://site{i}.test/own</guid><pubDate>Fri, 27 Nov 2026 09:{:02}:00 +0000</pubDate>\
         <description>{}</description></item>\
         <item><title>The shared story</title><link>https://wire.test/shared?utm_source=s{i}</link>\
         <pubDate>Fri, 27 Nov 2026 08:00:00 +0000</pubDate><description>Wire copy.</description></item>\
         </channel></rss>",
        i % 60,
        distinct_text(i)
    )
}

/// Text no other source's own story resembles (so near-duplicate
/// detection keeps them apart).
fn distinct_text(i: usize) -> String {
    const WORDS: [&str; 24] = [
        "harbour",
        "election",
        "wheat",
        "satellite",
        "museum",
        "glacier",
        "tariff",
        "orchestra",
        "vaccine",
        "railway",
        "drought",
        "festival",
        "copper",
        "parliament",
        "reef",
        "startup",
        "bridge",
        "monsoon",
        "library",
        "pipeline",
        "volcano",
        "strike",
        "lottery",
        "telescope",
    ];
    let mut state = i as u64 * 2_654_435_761 + 1;
    (0..14)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            WORDS[(state >> 33) as usize % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn sources_toml(server: &FeedServer) -> String {
    let mut toml = String::new();
    for i in 0..SOURCES {
        toml += &format!(
            "[[source]]\nname = \"{}\"\nurl = \"{}\"\ntags = [\"group-{}\"]\n\n",
            source_name(i),
            server.url(&format!("/{}.xml", source_name(i))),
            i % 3
        );
    }
    toml += "[[feed]]\nname = \"group-1\"\ntitle = \"Group one\"\nany = [\"group-1\"]\n";
    toml
}

/// Fetches per source as (wall-clock time, User-Agent).
fn fetches(
    server: &FeedServer,
    clock: (Instant, DateTime<Utc>),
) -> HashMap<String, Vec<(DateTime<Utc>, String)>> {
    (0..SOURCES)
        .map(|i| {
            let name = source_name(i);
            let seen = server
                .requests(&format!("/{name}.xml"))
                .into_iter()
                .map(|s| {
                    let wall = clock.1 + TimeDelta::from_std(s.at - clock.0).unwrap();
                    let agent = s.headers["user-agent"].to_str().unwrap().to_string();
                    (wall, agent)
                })
                .collect();
            (name, seen)
        })
        .collect()
}

/// Asserts that no source was fetched twice for one due time: the due
/// times of a source are its schedule's ticks shifted by its spread, and
/// between two consecutive due times at most one fetch may start.
fn assert_each_due_time_fetched_once(fetches: &HashMap<String, Vec<(DateTime<Utc>, String)>>) {
    let schedule = Schedule::parse(SCHEDULE).unwrap();
    let t0 = Utc::now();
    for (name, seen) in fetches {
        let offset = polling::next_tick(&schedule, name, t0) - schedule.next_after(t0).unwrap();
        let mut due_times = HashSet::new();
        for (at, agent) in seen {
            let due = schedule.next_after(*at - offset).unwrap();
            assert!(
                due_times.insert(due),
                "{name} fetched twice for the due time before {due} (second by {agent} at {at}): {seen:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_on_one_postgres_database_share_the_work_and_survive_a_kill() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let server = FeedServer::start().await;
    for i in 0..SOURCES {
        let fixture = Fixture::feed(rss(i)).with_etag(&format!("\"v{i}\""));
        server.set(&format!("/{}.xml", source_name(i)), fixture);
    }
    let clock = (Instant::now(), Utc::now());
    let dir = tempfile::tempdir().unwrap();
    let sources = sources_toml(&server);
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let mut a = Daemon::start(dir.path(), "node-a", &db.url, &sources);
    let mut b = Daemon::start(dir.path(), "node-b", &db.url, &sources);
    a.wait_healthy(&client).await;
    b.wait_healthy(&client).await;

    // Two rounds for every source: the first round's articles are committed
    // (its lease is released only with them), and several due times passed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = fetches(&server, clock);
        if seen.values().all(|s| s.len() >= 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every source was fetched 3 times in 60 s\n--- a ---\n{}\n--- b ---\n{}",
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seen = fetches(&server, clock);
    assert_each_due_time_fetched_once(&seen);
    let agents: HashSet<&str> = seen
        .values()
        .flatten()
        .map(|(_, agent)| agent.as_str())
        .collect();
    assert_eq!(
        agents,
        HashSet::from(["node-a", "node-b"]),
        "both instances fetch"
    );

    // Behind a load balancer either node may answer: same bytes, same ETag.
    assert_same_feeds(&a, &b, &client).await;
    let (merged, _) = a.feed(&client, "/feed.atom?limit=500").await;
    assert_valid_atom(&merged);
    let feed = parse_atom(&merged);
    assert_eq!(feed.entries.len(), SOURCES + 1, "one article per story");
    let shared = feed
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "The shared story")
        .unwrap();
    let terms: HashSet<&str> = shared.categories.iter().map(|c| c.term.as_str()).collect();
    assert!(
        ["group-0", "group-1", "group-2"]
            .iter()
            .all(|t| terms.contains(t)),
        "tags of every source merged: {terms:?}"
    );

    // Kill one instance mid-work: the other takes over its sources, those
    // it held leases on once the leases expire.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(120);
    loop {
        let after: Vec<usize> = (0..SOURCES)
            .map(|i| {
                server
                    .requests(&format!("/{}.xml", source_name(i)))
                    .iter()
                    .filter(|s| s.at > killed)
                    .count()
            })
            .collect();
        if after.iter().all(|&n| n >= 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sources not fetched after the kill: {:?}\n--- b ---\n{}",
            (0..SOURCES)
                .filter(|&i| after[i] == 0)
                .map(source_name)
                .collect::<Vec<_>>(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = fetches(&server, clock);
    assert_each_due_time_fetched_once(&seen);
    let (after_kill, _) = b.feed(&client, "/feed.atom?limit=500").await;
    assert_eq!(after_kill, merged, "the survivor serves the same feed");

    // The survivor still stops cleanly.
    let pid = b.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = b.child.wait().unwrap();
    assert!(status.success(), "SIGTERM exit: {status}\n{}", b.log());
}
