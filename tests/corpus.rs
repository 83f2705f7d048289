//! The parser against the shared fixture corpus: real feeds must yield the
//! stories Python's feedparser finds (counts from `real/MANIFEST.tsv`), and
//! no edge case (ill-formed XML, odd encodings, hostile markup) may make it
//! panic. The corpus lives outside this repository; `TRIBUTARY_SHARED`
//! points at the shared folder holding `fixtures/`.

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tributary::model::ParsedFeed;
use tributary::parse::{parse_feed, ParseError};
use url::Url;

const SKIPPED: &str =
    "skipped: TRIBUTARY_SHARED is not set (the shared fixture corpus lives outside this repo)";

/// Real feeds whose feedparser entry count we deliberately do not match.
/// Each must still differ: a fix shows up as a failure asking to remove it.
const KNOWN_COUNT_MISMATCHES: &[(&str, &str)] = &[(
    "pcmag_dvorak_feedburner_rss2_illegally_nested.xml",
    "every <item> holds an empty nested <item />; feedparser counts those 10 as \
     entries (no title, link or id), we keep the 10 real stories",
)];

/// `edge/wellformed` files that feedparser parses but we reject, with why.
const KNOWN_WELLFORMED_ERRORS: &[(&str, &str)] = &[];

/// Edge files that are not feeds and must be refused, not "parsed".
const MUST_BE_REJECTED: &[&str] = &[
    "node-feedparser/notafeed.html",
    "rss-parser/unrecognized.rss",
    "illformed/rss_empty_document.xml",
];

/// Edge files feed-rs alone fails on (or panics on) that must now parse.
const MUST_PARSE: &[&str] = &[
    "encoding/utf-16be-bom.xml",
    "encoding/utf-16be-autodetect.xml",
    "encoding/utf-32le-bom.xml",
    "node-feedparser/saxerror.xml",
    "illformed/rdf_channel_empty_textinput.xml",
    "wellformed/rss/rss_namespace_1.xml",
    "wellformed/rss/rss_version_missing.xml",
];

/// The shared fixtures; `None` when `TRIBUTARY_SHARED` is unset, which CI
/// (`TRIBUTARY_TEST_ALL=1`) does not allow. The skip is said once, on the
/// real stderr, however many tests skip.
fn fixtures() -> Option<PathBuf> {
    let shared = std::env::var_os("TRIBUTARY_SHARED");
    if shared.is_none() {
        if std::env::var_os("TRIBUTARY_TEST_ALL").is_some() {
            panic!("TRIBUTARY_TEST_ALL is set, but TRIBUTARY_SHARED is not");
        }
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{SKIPPED}");
        });
    }
    shared.map(|shared| PathBuf::from(shared).join("fixtures"))
}

/// A fixed "now": fixture dates are in the past, so nothing gets clamped.
fn now() -> DateTime<Utc> {
    "2030-01-01T00:00:00Z".parse().expect("valid date")
}

fn feed_url(relative: &str) -> Url {
    Url::parse("https://fixtures.example/")
        .unwrap()
        .join(relative)
        .unwrap()
}

struct ManifestRow {
    file: String,
    entries: usize,
    entries_with_tags: usize,
}

fn manifest(real: &Path) -> Vec<ManifestRow> {
    let text = std::fs::read_to_string(real.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (file, entries, tags) = (col("file"), col("entries"), col("entries_with_tags"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            ManifestRow {
                file: cells[file].to_string(),
                entries: cells[entries].parse().expect("entries is a number"),
                entries_with_tags: cells[tags].parse().expect("entries_with_tags is a number"),
            }
        })
        .collect()
}

fn has_illegal_xml_char(s: &str) -> bool {
    s.chars().any(|c| {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    })
}

/// Every string the parser produced.
fn all_strings(feed: &ParsedFeed) -> Vec<&str> {
    let meta = &feed.meta;
    let mut out: Vec<&str> = [&meta.title, &meta.site_url, &meta.feed_id]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    for e in &feed.entries {
        out.extend(
            [
                &e.guid, &e.link, &e.title, &e.summary, &e.content, &e.author,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        );
        out.extend(e.categories.iter().map(String::as_str));
    }
    out
}

/// What is wrong with one real feed's result, if anything; the count
/// mismatch is reported separately so known ones can be told apart.
fn check_real(row: &ManifestRow, feed: &ParsedFeed) -> (Option<String>, Vec<String>) {
    let count = (feed.entries.len() != row.entries).then(|| {
        format!(
            "{} entries, feedparser finds {}",
            feed.entries.len(),
            row.entries
        )
    });
    let mut problems = Vec::new();
    let tagged = feed
        .entries
        .iter()
        .filter(|e| !e.categories.is_empty())
        .count();
    if tagged < row.entries_with_tags {
        problems.push(format!(
            "{tagged} entries with categories, feedparser finds {}",
            row.entries_with_tags
        ));
    }
    for (i, e) in feed.entries.iter().enumerate() {
        let http_link = e
            .link
            .as_deref()
            .and_then(|l| Url::parse(l).ok())
            .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
        if !http_link && e.guid.is_none() {
            problems.push(format!(
                "entry {i}: neither an absolute http(s) link nor a guid"
            ));
        }
        if e.title.as_deref().is_none_or(|t| t.trim().is_empty()) {
            problems.push(format!("entry {i}: no title"));
        }
    }
    if all_strings(feed).into_iter().any(has_illegal_xml_char) {
        problems.push("XML-illegal characters in the output".into());
    }
    (count, problems)
}

#[test]
fn every_real_feed_yields_the_stories_feedparser_finds() {
    let Some(fixtures) = fixtures() else {
        return;
    };
    let real = fixtures.join("real");
    let rows = manifest(&real);
    assert!(!rows.is_empty(), "MANIFEST.tsv lists no feeds");
    let mut failures = Vec::new();
    for row in &rows {
        let bytes = std::fs::read(real.join(&row.file)).expect("fixture listed in the manifest");
        let url = feed_url(&format!("real/{}", row.file));
        let feed = match parse_feed(&bytes, None, &url, now()) {
            Ok(feed) => feed,
            Err(e) => {
                failures.push(format!("{}: {e}", row.file));
                continue;
            }
        };
        let (count, problems) = check_real(row, &feed);
        let known = KNOWN_COUNT_MISMATCHES.iter().find(|(f, _)| *f == row.file);
        match (count, known) {
            (Some(why), None) => failures.push(format!("{}: {why}", row.file)),
            (None, Some(_)) => failures.push(format!(
                "{}: now matches feedparser; remove it from KNOWN_COUNT_MISMATCHES",
                row.file
            )),
            (Some(why), Some((_, reason))) => {
                println!("known mismatch {}: {why} ({reason})", row.file)
            }
            (None, None) => {}
        }
        failures.extend(problems.into_iter().map(|p| format!("{}: {p}", row.file)));
        println!(
            "ok {:<55} {:>3} entries, {:>3} tagged",
            row.file,
            feed.entries.len(),
            feed.entries
                .iter()
                .filter(|e| !e.categories.is_empty())
                .count()
        );
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The simulated HTTP header of a feedparser test case (`Header: Content-type: …`).
fn feedparser_content_type(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]);
    head.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Header:")?.trim();
        let (name, value) = rest.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_string())
    })
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable fixture folder")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip fixture");
    out
}

#[test]
fn no_edge_case_makes_the_parser_panic() {
    let Some(fixtures) = fixtures() else {
        return;
    };
    let edge = fixtures.join("edge");
    let mut files = Vec::new();
    files_under(&edge, &mut files);
    assert!(!files.is_empty(), "no edge fixtures found");

    // folder -> (ok, err)
    let mut tallies: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut results: BTreeMap<String, Result<usize, String>> = BTreeMap::new();
    for path in &files {
        let relative = path
            .strip_prefix(&edge)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let mut bytes = std::fs::read(path).expect("readable fixture");
        if relative.ends_with(".gz") {
            bytes = gunzip(&bytes);
        }
        let content_type = feedparser_content_type(&bytes);
        let url = feed_url(&format!("edge/{relative}"));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            parse_feed(&bytes, content_type.as_deref(), &url, now())
        }));
        let result = match outcome {
            Err(_) => {
                failures.push(format!("{relative}: a panic escaped parse_feed"));
                continue;
            }
            Ok(Err(ParseError::Panic(why))) => {
                println!("caught panic {relative}: {why}");
                Err(format!("panic: {why}"))
            }
            Ok(result) => result.map(|f| f.entries.len()).map_err(|e| e.to_string()),
        };
        let folder = Path::new(&relative)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tally = tallies.entry(folder).or_default();
        if result.is_ok() {
            tally.0 += 1;
        } else {
            tally.1 += 1;
        }
        results.insert(relative, result);
    }

    println!("{:<28} {:>4} {:>4}", "edge folder", "ok", "err");
    for (folder, (ok, err)) in &tallies {
        println!("{folder:<28} {ok:>4} {err:>4}");
    }
    let (ok, err) = tallies
        .values()
        .fold((0, 0), |(a, b), (ok, err)| (a + ok, b + err));
    println!("{:<28} {ok:>4} {err:>4}", "total");
    for (file, result) in &results {
        if let Err(why) = result {
            println!("err {file}: {why}");
        }
    }

    for (file, result) in &results {
        let known = KNOWN_WELLFORMED_ERRORS.iter().find(|(f, _)| f == file);
        if !file.starts_with("wellformed/") {
            continue;
        }
        match (result, known) {
            (Err(why), None) => {
                failures.push(format!("{file}: feedparser parses it; we say {why}"))
            }
            (Ok(_), Some(_)) => failures.push(format!(
                "{file}: parses now; remove it from KNOWN_WELLFORMED_ERRORS"
            )),
            _ => {}
        }
    }
    for file in MUST_BE_REJECTED {
        match results.get(*file) {
            Some(Err(_)) => {}
            Some(Ok(n)) => failures.push(format!("{file}: not a feed, yet parsed ({n} entries)")),
            None => failures.push(format!("{file}: fixture missing")),
        }
    }
    for file in MUST_PARSE {
        match results.get(*file) {
            Some(Ok(_)) => {}
            Some(Err(why)) => failures.push(format!("{file}: {why}")),
            None => failures.push(format!("{file}: fixture missing")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
