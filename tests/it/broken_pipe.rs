//! Output commands whose reader goes away early (`tributary sources |
//! head -1`) stop printing quietly instead of panicking.

use crate::helpers::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

/// Enough sources that `sources` and `opml export` print well over a
/// pipe's 64 KiB buffer, so the reader closing does hit a later write.
const SOURCES: usize = 1_500;

fn many_sources(url: &str) -> TestConfig {
    let mut body = String::new();
    for i in 0..SOURCES {
        body.push_str(&format!(
            "[[source]]\nname = \"source-{i:04}\"\nurl = \"{url}?n={i}&padding=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n\n"
        ));
    }
    TestConfig::write("", &body)
}

fn spawn(config: &TestConfig, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("-c")
        .arg(config.path())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Like `| head -1`: reads one line, then closes the pipe.
fn after_one_line(config: &TestConfig, args: &[&str]) -> (String, Output) {
    let mut child = spawn(config, args);
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (first, child.wait_with_output().unwrap())
}

/// Like `| true`: the pipe is closed before anything is written.
fn unread(config: &TestConfig, args: &[&str]) -> Output {
    let mut child = spawn(config, args);
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn assert_quiet(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
}

#[test]
fn listing_commands_stop_quietly_when_the_reader_goes_away() {
    let config = many_sources("http://127.0.0.1:9/feed.xml");
    for args in [&["sources"][..], &["opml", "export"]] {
        let (first, out) = after_one_line(&config, args);
        assert!(!first.is_empty(), "{args:?} printed nothing");
        assert_quiet(&format!("{args:?}"), &out);
    }
    for args in [&["check"][..], &["export"], &["export", "--format", "json"]] {
        assert_quiet(&format!("{args:?}"), &unread(&config, args));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_with_a_closed_stdout_still_fetches_every_source() {
    let server = FeedServer::start().await;
    let items: Vec<(String, String)> = (0..3)
        .map(|i| (format!("Story {i}"), format!("https://news.example/{i}")))
        .collect();
    let items: Vec<(&str, &str, &[&str])> = items
        .iter()
        .map(|(t, l)| (t.as_str(), l.as_str(), &[][..]))
        .collect();
    server.set("/feed.xml", Fixture::feed(rss_items("News", &items)));
    let mut body = String::new();
    for i in 0..5 {
        body.push_str(&format!(
            "[[source]]\nname = \"s{i}\"\nurl = \"{}?n={i}\"\n\n",
            server.url("/feed.xml")
        ));
    }
    let config = TestConfig::write("", &body);

    let fetch = {
        let config_path = config.path();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
                .arg("-c")
                .arg(config_path)
                .arg("fetch")
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            child.wait_with_output().unwrap()
        })
    };
    let out = fetch.await.unwrap();
    assert_quiet("fetch", &out);
    assert_eq!(server.requests("/feed.xml").len(), 5);

    // Every source's outcome was recorded even though nobody read the report.
    let listing = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("-c")
        .arg(config.path())
        .arg("sources")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    let fetched = listing
        .lines()
        .filter(|l| l.starts_with('s') && l.contains(" 200 "))
        .count();
    assert_eq!(fetched, 5, "{listing}");
}
