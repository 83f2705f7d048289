//! Hostile and broken sources, publisher etiquette and crash safety
//! (docs/CONFIG.md "Fetching"): each case against a misbehaving server on 127.0.0.1.

use crate::helpers::*;
use std::time::Duration;
use tributary::model::SourceState;
use tributary::pipeline::Outcome;

const GOOD_FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Good</title>\
    <link>https://good.example/</link><item><title>Fine story</title><guid>g1</guid>\
    <link>https://good.example/1</link><pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>";

/// One source named `s` at `path` on `server`, scheduled yearly so that only
/// explicit cycles fetch it.
fn one_source(server: &FeedServer, path: &str, daemon_extra: &str) -> TestConfig {
    TestConfig::write(
        daemon_extra,
        &format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\nschedule = \"0 0 0 1 1 *\"\n",
            server.url(path)
        ),
    )
}

async fn state(config: &TestConfig, name: &str) -> SourceState {
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let state = store
        .source_states()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap();
    store.close().await;
    state
}

async fn article_count(config: &TestConfig) -> i64 {
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let n = store.article_count().await.unwrap();
    store.close().await;
    n
}

#[tokio::test]
async fn retry_after_delays_the_source_across_restarts_and_429_is_not_a_failure() {
    let server = FeedServer::start().await;
    server.set(
        "/feed",
        Fixture::status(429).with_header("retry-after", "3600"),
    );
    let config = one_source(&server, "/feed", "");
    let reports = fetch_now(&config.load()).await;
    assert!(matches!(reports[0].outcome, Outcome::Failed(_)));

    let s = state(&config, "s").await;
    assert_eq!(s.last_status, Some(429));
    assert_eq!(s.consecutive_failures, 0, "a 429 is pacing, not failure");
    let until = s.retry_after_until.expect("Retry-After stored");
    let now = chrono::Utc::now();
    assert!(until > now + chrono::TimeDelta::minutes(59), "{until}");
    assert!(s.next_fetch_at.unwrap() >= until);

    // Neither a restarted daemon nor a manual cycle fetches it before then.
    server.set("/feed", Fixture::feed(GOOD_FEED));
    let app = TestApp::spawn(config.load()).await;
    app.scheduler_idle().await;
    assert!(
        app.fetch_now().await.is_empty(),
        "manual fetch skips a source under Retry-After"
    );
    assert_eq!(server.requests("/feed").len(), 1);
    app.stop().await;

    // 503 with an HTTP date counts as a failure and is honoured too.
    let server = FeedServer::start().await;
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(7200));
    server.set(
        "/feed",
        Fixture::status(503).with_header("retry-after", &later),
    );
    let config = one_source(&server, "/feed", "");
    fetch_now(&config.load()).await;
    let s = state(&config, "s").await;
    assert_eq!(s.consecutive_failures, 1);
    assert!(s.retry_after_until.unwrap() > chrono::Utc::now() + chrono::TimeDelta::minutes(119));
}

#[tokio::test]
async fn failures_back_off_exponentially_and_a_success_resets() {
    let server = FeedServer::start().await;
    server.set("/feed", Fixture::status(500));
    // An hourly schedule: backoff starts at one period.
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\nschedule = \"0 * * * *\"\n",
            server.url("/feed")
        ),
    );
    let mut delays = Vec::new();
    for _ in 0..3 {
        fetch_now(&config.load()).await;
        let s = state(&config, "s").await;
        delays.push((s.backoff_until.unwrap() - s.last_fetch_at.unwrap()).num_minutes());
    }
    assert!((54..=66).contains(&delays[0]), "{delays:?}");
    assert!((108..=132).contains(&delays[1]), "{delays:?}");
    assert!((216..=264).contains(&delays[2]), "{delays:?}");
    assert_eq!(state(&config, "s").await.consecutive_failures, 3);

    server.set("/feed", Fixture::feed(GOOD_FEED));
    fetch_now(&config.load()).await;
    let s = state(&config, "s").await;
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.backoff_until, None);
    assert_eq!(s.last_error, None);
    assert_eq!(s.articles, 1);
}

#[tokio::test]
async fn gone_disables_the_source_and_says_so() {
    let server = FeedServer::start().await;
    server.set("/feed", Fixture::status(410));
    let config = one_source(&server, "/feed", "");
    fetch_now(&config.load()).await;
    let s = state(&config, "s").await;
    assert!(s.disabled_reason.unwrap().contains("410"));
    assert!(
        fetch_now(&config.load()).await.is_empty(),
        "a gone source is not fetched again"
    );
    assert_eq!(server.requests("/feed").len(), 1);
}

#[tokio::test]
async fn a_permanent_redirect_is_followed_and_reported() {
    let server = FeedServer::start().await;
    server.set("/old", Fixture::status(301).with_header("location", "/new"));
    server.set("/new", Fixture::feed(GOOD_FEED));
    let config = one_source(&server, "/old", "");
    fetch_now(&config.load()).await;
    let s = state(&config, "s").await;
    assert_eq!(s.articles, 1);
    assert_eq!(s.moved_to.as_deref(), Some(server.url("/new").as_str()));
    // The user's TOML is never rewritten.
    assert!(std::fs::read_to_string(config.path())
        .unwrap()
        .contains("/old"));

    server.set(
        "/loop",
        Fixture::status(302).with_header("location", "/loop"),
    );
    let looping = one_source(&server, "/loop", "");
    fetch_now(&looping.load()).await;
    assert!(state(&looping, "s")
        .await
        .last_error
        .unwrap()
        .contains("redirects"));
}

#[tokio::test]
async fn broken_bodies_store_a_clear_error_and_ingest_nothing() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("html", b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>not a feed</p></body></html>".to_vec(), "not a feed"),
        ("garbage", (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(), ""),
        ("truncated", GOOD_FEED.as_bytes()[..GOOD_FEED.len() / 2].to_vec(), ""),
    ];
    for (name, body, words) in cases {
        let server = FeedServer::start().await;
        server.set("/feed", Fixture::feed(body));
        let config = one_source(&server, "/feed", "");
        let reports = fetch_now(&config.load()).await;
        let s = state(&config, "s").await;
        match &reports[0].outcome {
            Outcome::Failed(error) => {
                assert!(error.starts_with("parse:"), "{name}: {error}");
                assert!(error.contains(words), "{name}: {error}");
                assert_eq!(s.last_error.as_deref(), Some(error.as_str()));
                assert_eq!(article_count(&config).await, 0, "{name}");
            }
            // A truncated document may still yield its complete items, as
            // lenient parsers do; it must never yield more than there were.
            Outcome::Ingested { entries, .. } => {
                assert_eq!(name, "truncated", "{name} must not ingest");
                assert!(*entries <= 1);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_oversized_or_bomb_body_is_cut_at_max_body() {
    use std::io::Write;
    let server = FeedServer::start().await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    server.set(
        "/bomb",
        Fixture::feed(bomb).with_header("content-encoding", "gzip"),
    );
    let config = one_source(&server, "/bomb", "max_body = \"1MiB\"\n");
    fetch_now(&config.load()).await;
    let error = state(&config, "s").await.last_error.unwrap();
    assert!(error.contains("larger than 1048576 bytes"), "{error}");
}

/// The bomb: 1 GiB inflated from about 1 MiB, fetched by the real
/// binary with the default `max_body` (10 MiB), whose peak memory is read
/// from /proc while it runs.
#[tokio::test]
async fn a_one_gibibyte_gzip_bomb_keeps_the_fetchers_memory_flat() {
    use std::io::Write;
    let server = FeedServer::start().await;
    let bomb = tokio::task::spawn_blocking(|| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.finish().unwrap()
    })
    .await
    .unwrap();
    assert!(
        bomb.len() < 8 << 20,
        "a bomb: {} bytes on the wire",
        bomb.len()
    );
    server.set(
        "/bomb",
        Fixture::feed(bomb).with_header("content-encoding", "gzip"),
    );
    let config = one_source(&server, "/bomb", "");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["fetch", "-c", config.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // VmHWM is the high-water mark: the last reading is the peak so far.
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(status.success());
    assert!(peak_kb > 0, "the child's memory was read");
    assert!(
        peak_kb < 100 * 1024,
        "peak RSS {peak_kb} kB while inflating a 1 GiB bomb"
    );
    let error = state(&config, "s").await.last_error.unwrap();
    assert!(error.contains("larger than 10485760 bytes"), "{error}");
}

#[tokio::test]
async fn a_parser_panic_stays_that_sources_error() {
    let Some(shared) = shared_dir() else { return };
    let server = FeedServer::start().await;
    let mut config_body = String::new();
    let dir = shared.join("fixtures/edge/encoding");
    for (i, file) in [
        "utf-16be.xml",
        "utf-16be-bom.xml",
        "utf-16be-autodetect.xml",
    ]
    .iter()
    .enumerate()
    {
        let mut fixture = Fixture::feed(read(&dir.join(file)));
        fixture.content_type = "application/xml";
        server.set(&format!("/u{i}"), fixture);
        config_body += &format!(
            "[[source]]\nname = \"u{i}\"\nurl = \"{}\"\n",
            server.url(&format!("/u{i}"))
        );
    }
    server.set("/good", Fixture::feed(GOOD_FEED));
    config_body += &format!(
        "[[source]]\nname = \"good\"\nurl = \"{}\"\n",
        server.url("/good")
    );
    let config = TestConfig::write("", &config_body);
    let reports = fetch_now(&config.load()).await;
    assert_eq!(reports.len(), 4, "every source reported: {reports:#?}");
    let good = reports.iter().find(|r| r.source == "good").unwrap();
    assert!(
        matches!(good.outcome, Outcome::Ingested { entries: 1, .. }),
        "{good:?}"
    );
    for r in reports.iter().filter(|r| r.source != "good") {
        // Transcoded and ingested, or a recorded error: never a crash.
        if let Outcome::Failed(e) = &r.outcome {
            assert!(!e.is_empty());
        }
    }
}

#[tokio::test]
async fn validators_and_schedule_survive_a_restart() {
    let server = FeedServer::start().await;
    server.set("/feed", Fixture::feed(GOOD_FEED).with_etag("\"v1\""));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\nschedule = \"0 * * * *\"\n",
            server.url("/feed")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    app.stop().await;
    assert_eq!(server.requests("/feed").len(), 1);

    // A restart does not re-poll early: the next fetch time was persisted.
    let app = TestApp::spawn(config.load()).await;
    app.scheduler_idle().await;
    assert_eq!(
        server.requests("/feed").len(),
        1,
        "no early re-poll after a restart"
    );
    // And when it does fetch, it is conditional: one unconditional request ever.
    app.fetch_now().await;
    app.stop().await;
    let seen = server.requests("/feed");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["if-none-match"], "\"v1\"");
}

#[tokio::test]
async fn per_host_bounds_fetches_across_sources_of_one_site() {
    let server = FeedServer::start().await;
    let mut body = String::new();
    for i in 0..6 {
        server.set(
            &format!("/section/{i}"),
            Fixture::feed(GOOD_FEED).with_delay(Duration::from_millis(200)),
        );
        body += &format!(
            "[[source]]\nname = \"section-{i}\"\nurl = \"{}\"\n",
            server.url(&format!("/section/{i}"))
        );
    }
    let config = TestConfig::write("per_host = 2\n", &body);
    let reports = fetch_now(&config.load()).await;
    assert_eq!(reports.len(), 6);
    assert_eq!(
        server.max_in_flight(),
        2,
        "per_host = 2 holds across sources of one host"
    );
}

#[tokio::test]
async fn cache_headers_and_ttl_set_a_floor_on_the_interval() {
    let server = FeedServer::start().await;
    server.set(
        "/feed",
        Fixture::feed(GOOD_FEED).with_header("cache-control", "max-age=7200"),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\nschedule = \"* * * * * *\"\n",
            server.url("/feed")
        ),
    );
    fetch_now(&config.load()).await;
    let s = state(&config, "s").await;
    let wait = s.next_fetch_at.unwrap() - s.last_fetch_at.unwrap();
    assert!(
        wait >= chrono::TimeDelta::minutes(119),
        "max-age honoured: {wait}"
    );

    let ttl_feed = GOOD_FEED.replace("<title>Good</title>", "<title>Good</title><ttl>90</ttl>");
    server.set("/feed", Fixture::feed(ttl_feed));
    let opted_out = TestConfig::write(
        "respect_cache_headers = false\n",
        &format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\nschedule = \"* * * * * *\"\n",
            server.url("/feed")
        ),
    );
    fetch_now(&opted_out.load()).await;
    let s = state(&opted_out, "s").await;
    assert!(s.next_fetch_at.unwrap() - s.last_fetch_at.unwrap() < chrono::TimeDelta::seconds(3));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\nschedule = \"* * * * * *\"\n",
            server.url("/feed")
        ),
    );
    fetch_now(&config.load()).await;
    let s = state(&config, "s").await;
    assert!(
        s.next_fetch_at.unwrap() - s.last_fetch_at.unwrap() >= chrono::TimeDelta::minutes(89),
        "<ttl> honoured"
    );
}

#[tokio::test]
async fn kill_9_during_ingest_loses_nothing_committed_and_duplicates_nothing() {
    let server = FeedServer::start().await;
    let mut body = String::new();
    let sources = 40;
    let per_source = 60;
    for s in 0..sources {
        let mut xml = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed</title><link>https://x.example/</link>");
        for i in 0..per_source {
            // Every tenth story is shared with the next source, to exercise cross-source merges.
            let link = if i % 10 == 0 {
                format!("https://shared.example/{}-{i}", (s + 1) / 2)
            } else {
                format!("https://x.example/{s}/{i}")
            };
            xml += &format!(
                "<item><title>Story {s}-{i}</title><guid>{s}-{i}</guid><link>{link}</link><category>c{}</category><description>{}</description></item>",
                i % 7,
                "words ".repeat(150)
            );
        }
        xml += "</channel></rss>";
        server.set(&format!("/f{s}"), Fixture::feed(xml));
        body += &format!(
            "[[source]]\nname = \"f{s}\"\nurl = \"{}\"\n",
            server.url(&format!("/f{s}"))
        );
    }
    let config = TestConfig::write("", &body);
    let path = config.path();
    // Kill `tributary fetch` at different moments of its ingest.
    // The feed server runs on this test's runtime: the children are awaited,
    // never waited for in a blocking call.
    for delay_ms in [150u64, 300, 450, 600, 800] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["fetch", "-c", path.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.kill().await.unwrap(); // SIGKILL
    }
    // A normal run completes the rest.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["fetch", "-c", path.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("40 sources fetched, 0 failed"),
        "{summary}"
    );

    let db = config.db_path();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let articles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM articles")
        .fetch_one(&pool)
        .await
        .unwrap();
    let distinct_links: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT canonical_url) FROM articles")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(articles, distinct_links, "no duplicate articles");
    // 40 sources x 54 own stories, plus 6 shared stories per pair of sources.
    let expected = (sources * (per_source - per_source / 10)) as i64
        + ((sources / 2 + 1) * (per_source / 10)) as i64;
    assert_eq!(articles, expected);
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM article_sources")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        links,
        (sources * per_source) as i64,
        "every source's every entry recorded once"
    );
    pool.close().await;
}
