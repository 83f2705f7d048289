//! `[[rule]]`s that drop and keep entries (docs/CONFIG.md "Rules"), end to
//! end: the daemon, `fetch`, `export`, `explain` and `rules apply` over
//! feeds served from 127.0.0.1, on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::store::backends;
use chrono::{DateTime, TimeDelta, Utc};
use std::path::Path;
use std::process::Command;
use tributary::clock::Clock;
use tributary::pipeline::Outcome;

/// An RSS 2.0 feed of `(title, link, RFC 2822 date, categories)` items.
fn rss(items: &[(&str, &str, &str, &[&str])]) -> String {
    let items: String = items
        .iter()
        .map(|(title, link, date, categories)| {
            let categories: String = categories
                .iter()
                .map(|c| format!("<category>{c}</category>"))
                .collect();
            format!(
                "<item><title>{title}</title><link>{link}</link><guid>{link}</guid>\
                 <description>About {title}.</description>{categories}\
                 <pubDate>{date}</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
         <link>https://example.org/</link>{items}</channel></rss>"
    )
}

/// Runs the binary off the test's runtime, which serves the feeds.
async fn tributary(config: &Path, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn titles(atom: &str) -> Vec<String> {
    parse_atom(atom)
        .entries
        .into_iter()
        .filter_map(|e| e.title.map(|t| t.content))
        .collect()
}

const NOW: &str = "2026-11-28T12:00:00Z";
const YESTERDAY: &str = "Fri, 27 Nov 2026 10:00:00 GMT";
const LONG_AGO: &str = "Sat, 10 Oct 2026 10:00:00 GMT";

/// Drop rules first, then a source's keep rules; the daemon serves only
/// what passed, `/metrics` counts each drop once per rule, a refetch of
/// the same entries judges (and counts) nothing again, and `explain` names
/// the rule.
#[tokio::test]
async fn the_daemon_serves_only_what_the_rules_let_through() {
    let server = FeedServer::start().await;
    server.set(
        "/news.xml",
        Fixture::feed(rss(&[
            (
                "Rust 1.99 released",
                "https://news.example/rust",
                YESTERDAY,
                &["Programming"],
            ),
            (
                "Sponsored: a faster laptop",
                "https://news.example/ad",
                YESTERDAY,
                &[],
            ),
            (
                "Rust 1.80 released",
                "https://news.example/old",
                LONG_AGO,
                &[],
            ),
        ])),
    );
    server.set(
        "/blog.xml",
        Fixture::feed(rss(&[
            (
                "Tips for the borrow checker",
                "https://blog.example/tips",
                YESTERDAY,
                &["Rust"],
            ),
            (
                "Cooking pasta",
                "https://blog.example/pasta",
                YESTERDAY,
                &["Food"],
            ),
        ])),
    );
    let sources = format!(
        "[[source]]\nname = \"news\"\nurl = \"{}\"\nschedule = \"0 0 1 1 *\"\n\
         [[source]]\nname = \"blog\"\nurl = \"{}\"\nschedule = \"0 0 1 1 *\"\n",
        server.url("/news.xml"),
        server.url("/blog.xml")
    );
    let rules = "[[rule]]\nname = \"daemon-ads\"\naction = \"drop\"\nregex = \"(?i)^sponsored\"\nfields = [\"title\"]\n\
                 [[rule]]\nname = \"daemon-stale\"\naction = \"drop\"\nolder_than = \"30d\"\n\
                 [[rule]]\nname = \"daemon-rust-only\"\naction = \"keep\"\nsources = [\"blog\"]\nany = [\"rust\"]\nfields = [\"title\", \"tags\"]\n";
    let config = TestConfig::write("", &format!("{sources}{rules}"));
    let clock = Clock::manual(NOW.parse::<DateTime<Utc>>().unwrap());
    let app = TestApp::spawn_with_clock(config.load(), clock.clone()).await;
    app.wait_fetched().await;

    let mut served = titles(&app.get_text("/feed.atom").await);
    served.sort();
    assert_eq!(
        served,
        ["Rust 1.99 released", "Tips for the borrow checker"],
        "drop rules, then the blog's keep rule (matched on a tag)"
    );
    let metrics = app.get_text("/metrics").await;
    let drops = |metrics: &str, rule: &str| {
        sample(metrics, "tributary_rule_drops_total", &[("rule", rule)]).unwrap_or(0.0)
    };
    assert_eq!(drops(&metrics, "daemon-ads"), 1.0, "{metrics}");
    assert_eq!(drops(&metrics, "daemon-stale"), 1.0, "{metrics}");
    assert!(drops(&metrics, "not-kept") >= 1.0, "{metrics}");

    // The same entries again: remembered, not judged or counted again.
    let reports = app.fetch_now().await;
    let dropped: Vec<(String, usize)> = reports
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Ingested { dropped, .. } => (r.source.clone(), *dropped),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(dropped.contains(&("news".into(), 2)), "{dropped:?}");
    assert!(dropped.contains(&("blog".into(), 1)), "{dropped:?}");
    let metrics = app.get_text("/metrics").await;
    assert_eq!(drops(&metrics, "daemon-ads"), 1.0, "{metrics}");
    assert_eq!(drops(&metrics, "daemon-stale"), 1.0, "{metrics}");

    // An edited entry is judged again.
    server.set(
        "/news.xml",
        Fixture::feed(rss(&[
            (
                "Rust 1.99 released",
                "https://news.example/rust",
                YESTERDAY,
                &["Programming"],
            ),
            (
                "Sponsored: a faster laptop, now cheaper",
                "https://news.example/ad",
                YESTERDAY,
                &[],
            ),
            (
                "Rust 1.80 released",
                "https://news.example/old",
                LONG_AGO,
                &[],
            ),
        ])),
    );
    app.fetch_now().await;
    let metrics = app.get_text("/metrics").await;
    assert_eq!(drops(&metrics, "daemon-ads"), 2.0, "{metrics}");
    assert_eq!(drops(&metrics, "daemon-stale"), 1.0, "{metrics}");

    let (ok, out, err) = tributary(&config.path(), &["explain", "https://news.example/ad"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("entry dropped by a rule"), "{out}");
    assert!(
        out.contains("rule       daemon-ads: drop rule \"daemon-ads\""),
        "{out}"
    );
    let (ok, out, err) =
        tributary(&config.path(), &["explain", "https://blog.example/pasta"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("rule       not-kept: no keep rule of source blog matched (daemon-rust-only)"),
        "{out}"
    );
    let (ok, out, err) = tributary(&config.path(), &["explain", "https://blog.example/tips"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("blog             kept by keep rule \"daemon-rust-only\""),
        "{out}"
    );
    app.stop().await;

    // Without the ads rule, the next fetch judges the news entries again
    // (the source's rules changed) and the ad comes back.
    std::fs::write(
        config.path(),
        std::fs::read_to_string(config.path())
            .unwrap()
            .replace("regex = \"(?i)^sponsored\"", "regex = \"(?i)^advert\""),
    )
    .unwrap();
    clock.advance(TimeDelta::minutes(1));
    fetch_now_with_clock(&config.load(), &clock).await;
    let (ok, out, err) = tributary(&config.path(), &["export"]).await;
    assert!(ok, "{err}");
    let mut exported = titles(&out);
    exported.sort();
    assert_eq!(
        exported,
        [
            "Rust 1.99 released",
            "Sponsored: a faster laptop, now cheaper",
            "Tips for the borrow checker"
        ]
    );
}

/// Real markup (The Guardian's RSS, 55 items): a rule on categories drops
/// the sport items through `fetch`, so `export` has none of them.
#[tokio::test]
async fn fetch_and_export_drop_a_real_feeds_sport_items() {
    let Some(shared) = shared_dir() else { return };
    let bytes = read(&shared.join("fixtures/real/guardian_us_rss2.xml"));
    let sport = sport_titles(&bytes);
    assert_eq!(sport.len(), 7);
    let server = FeedServer::start().await;
    server.set("/guardian.xml", Fixture::feed(bytes));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"guardian\"\nurl = \"{}\"\n\
             [[rule]]\nname = \"no-sport\"\naction = \"drop\"\nany = [\"Sport\"]\nfields = [\"categories\"]\n",
            server.url("/guardian.xml")
        ),
    );
    let (ok, out, err) = tributary(&config.path(), &["fetch"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("55 entries: 48 new"), "{out}");
    assert!(out.contains("7 dropped by rules"), "{out}");
    let (ok, out, err) = tributary(&config.path(), &["export", "--limit", "100"]).await;
    assert!(ok, "{err}");
    let exported = titles(&out);
    assert_eq!(exported.len(), 48);
    for title in &sport {
        assert!(!exported.contains(title), "{title} was exported");
    }
}

/// The titles of the fixture's items in the category "Sport".
fn sport_titles(bytes: &[u8]) -> Vec<String> {
    let feed = feed_rs::parser::parse(bytes).unwrap();
    feed.entries
        .into_iter()
        .filter(|e| e.categories.iter().any(|c| c.term == "Sport"))
        .filter_map(|e| e.title.map(|t| t.content))
        .collect()
}

/// A rule added after the articles were stored: `rules apply --dry-run`
/// lists what it would remove and changes nothing; `rules apply` removes
/// them from served feeds; the next fetch does not store them again. On
/// SQLite and PostgreSQL.
#[tokio::test]
async fn rules_apply_removes_stored_articles_a_new_rule_drops() {
    let Some(shared) = shared_dir() else { return };
    let bytes = read(&shared.join("fixtures/real/guardian_us_rss2.xml"));
    let sport = sport_titles(&bytes);
    let server = FeedServer::start().await;
    server.set("/guardian.xml", Fixture::feed(bytes));
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tributary.toml");
        let base = format!(
            "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\
             [[source]]\nname = \"guardian\"\nurl = \"{}\"\n",
            db.url,
            server.url("/guardian.xml")
        );
        std::fs::write(&path, &base).unwrap();
        let (ok, out, err) = tributary(&path, &["fetch"]).await;
        assert!(ok, "{}: {err}", db.name);
        assert!(out.contains("55 entries: 55 new"), "{}: {out}", db.name);

        std::fs::write(
            &path,
            format!(
                "{base}[[rule]]\nname = \"no-sport\"\naction = \"drop\"\nany = [\"sport\"]\nfields = [\"categories\"]\n"
            ),
        )
        .unwrap();
        let (ok, out, err) = tributary(&path, &["rules", "apply", "--dry-run"]).await;
        assert!(ok, "{}: {err}", db.name);
        let listed: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("would drop "))
            .collect();
        assert_eq!(listed.len(), sport.len(), "{}: {out}", db.name);
        for title in &sport {
            assert!(
                listed.iter().any(|l| l.contains(&format!("{title:?}"))
                    && l.contains("(source guardian, rule no-sport)")),
                "{}: {title} not listed: {out}",
                db.name
            );
        }
        assert!(
            out.contains("7 of 55 stored articles would be removed (dry run: nothing changed)"),
            "{}: {out}",
            db.name
        );
        let (_, exported, _) = tributary(&path, &["export", "--limit", "100"]).await;
        assert_eq!(
            titles(&exported).len(),
            55,
            "{}: the dry run changed nothing",
            db.name
        );

        let (ok, out, err) = tributary(&path, &["rules", "apply"]).await;
        assert!(ok, "{}: {err}", db.name);
        assert!(
            out.contains("removed 7 of 55 stored articles"),
            "{}: {out}",
            db.name
        );
        let (_, exported, _) = tributary(&path, &["export", "--limit", "100"]).await;
        let exported = titles(&exported);
        assert_eq!(exported.len(), 48, "{}", db.name);
        for title in &sport {
            assert!(!exported.contains(title), "{}: {title}", db.name);
        }

        // Remembered as dropped: the feed still carries them, and they stay out.
        let (ok, out, err) = tributary(&path, &["fetch"]).await;
        assert!(ok, "{}: {err}", db.name);
        assert!(out.contains(" 0 new"), "{}: {out}", db.name);
        assert!(out.contains("7 dropped by rules"), "{}: {out}", db.name);
        let (_, exported, _) = tributary(&path, &["export", "--limit", "100"]).await;
        assert_eq!(titles(&exported).len(), 48, "{}", db.name);

        // A second apply finds nothing more.
        let (ok, out, err) = tributary(&path, &["rules", "apply"]).await;
        assert!(ok, "{}: {err}", db.name);
        assert!(
            out.contains("removed 0 of 48 stored articles"),
            "{}: {out}",
            db.name
        );
    }
}

/// A keep rule added later: `explain` says what it decides for a stored
/// article, and `rules apply` removes what is no longer kept.
#[tokio::test]
async fn rules_apply_removes_what_a_new_keep_rule_no_longer_keeps() {
    let server = FeedServer::start().await;
    server.set(
        "/blog.xml",
        Fixture::feed(rss(&[
            (
                "Tips for the borrow checker",
                "https://blog.example/tips",
                YESTERDAY,
                &["Rust"],
            ),
            (
                "Cooking pasta",
                "https://blog.example/pasta",
                YESTERDAY,
                &["Food"],
            ),
        ])),
    );
    let source = format!(
        "[[source]]\nname = \"blog\"\nurl = \"{}\"\n",
        server.url("/blog.xml")
    );
    let config = TestConfig::write("", &source);
    fetch_now(&config.load()).await;
    let text = std::fs::read_to_string(config.path()).unwrap();
    std::fs::write(
        config.path(),
        format!("{text}[[rule]]\nname = \"rust\"\naction = \"keep\"\nany = [\"rust\"]\n"),
    )
    .unwrap();

    let (ok, out, err) =
        tributary(&config.path(), &["explain", "https://blog.example/pasta"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("blog             dropped: no keep rule of source blog matched (rust) (`tributary rules apply` removes it)"),
        "{out}"
    );
    let (ok, out, err) = tributary(&config.path(), &["rules", "apply", "--dry-run"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("\"Cooking pasta\" (source blog, rule not-kept): no keep rule of source blog matched (rust)"),
        "{out}"
    );
    assert!(
        out.contains("1 of 2 stored articles would be removed"),
        "{out}"
    );
    let (ok, out, err) = tributary(&config.path(), &["rules", "apply"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("removed 1 of 2 stored articles"), "{out}");
    let (_, exported, _) = tributary(&config.path(), &["export"]).await;
    assert_eq!(titles(&exported), ["Tips for the borrow checker"]);
    let (ok, out, _) = tributary(&config.path(), &["explain", "https://blog.example/pasta"]).await;
    assert!(ok);
    assert!(
        out.contains("entry dropped by a rule (not stored)"),
        "{out}"
    );
    assert!(out.contains("rule       not-kept: "), "{out}");
}
