//! Feeds written to hurt: entity amplification, oversized fields, deeply
//! nested HTML, script in URL attributes. Served from 127.0.0.1 to the real
//! pipeline (and to the real binary where memory is the question).

use crate::helpers::*;
use proptest::prelude::*;
use tributary::parse::limits::{
    MAX_AUTHOR_BYTES, MAX_CATEGORIES, MAX_CATEGORY_BYTES, MAX_CONTENT_BYTES, MAX_HTML_DEPTH,
    MAX_ID_BYTES, MAX_SUMMARY_BYTES, MAX_TITLE_BYTES, MAX_URL_BYTES,
};
use tributary::parse::ParseError;

const CONTENT_NS: &str = "http://purl.org/rss/1.0/modules/content/";

/// An RSS document with a doctype declaring `entities` and one item made of
/// `item` (raw XML).
fn rss_with_entities(entities: &[(&str, &str)], item: &str) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n");
    for (name, value) in entities {
        xml += &format!("<!ENTITY {name} \"{value}\">\n");
    }
    xml += &format!(
        "]>\n<rss version=\"2.0\" xmlns:content=\"{CONTENT_NS}\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>hostile</title><link>https://h.example/</link>\n<item>{item}</item></channel></rss>\n"
    );
    xml
}

fn good_feed() -> String {
    rss_items(
        "Good",
        &[(
            "An ordinary story",
            "https://good.example/1",
            &["news"] as &[&str],
        )],
    )
}

/// Serves `doc` as the one source `name` (`daemon_extra`: lines of its
/// `[daemon]` table) and fetches it once with the real pipeline.
async fn serve_and_fetch(
    name: &str,
    doc: String,
    daemon_extra: &str,
) -> (FeedServer, TestConfig, tributary::pipeline::Outcome) {
    let server = FeedServer::start().await;
    let path = format!("/{name}");
    server.set(&path, Fixture::feed(doc));
    let config = TestConfig::write(
        daemon_extra,
        &format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{}\"\n",
            server.url(&path)
        ),
    );
    let mut reports = fetch_now(&config.load()).await;
    (server, config, reports.remove(0).outcome)
}

fn assert_ingested(outcome: &tributary::pipeline::Outcome) {
    assert!(
        matches!(outcome, tributary::pipeline::Outcome::Ingested { .. }),
        "{outcome:?}"
    );
}

async fn sqlite(config: &TestConfig) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", config.db_path().display()))
        .await
        .unwrap()
}

/// What a child process did: exit code (`None`: killed by a signal), peak
/// resident memory in bytes (from `wait4`), and its standard output.
struct Measured {
    code: Option<i32>,
    peak_rss: u64,
    stdout: String,
}

/// Runs `tributary ARGS` with its address space capped at `limit` bytes
/// (so a regression aborts instead of swapping the machine) and measures it.
async fn run_measured(args: Vec<String>, limit: u64) -> Measured {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        command.pre_exec(move || {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Reaped by wait4 below, which std's `wait` cannot replace (it gives
    // no resource usage).
    #[allow(clippy::zombie_processes)]
    let mut child = command.spawn().unwrap();
    // Blocking reads and wait4 run off the runtime: the feed server the
    // child fetches from runs on it.
    tokio::task::spawn_blocking(move || {
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = child.id() as libc::pid_t;
        // SAFETY: `pid` is our unreaped child; the pointers are valid.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(reaped, pid, "{}", std::io::Error::last_os_error());
        Measured {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            // ru_maxrss is in KiB on Linux.
            peak_rss: usage.ru_maxrss as u64 * 1024,
            stdout,
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_amplification_fails_the_source_in_bounded_memory() {
    // The issue's feed: 160 KB declaring one 100 KB entity referenced
    // 20,000 times; unbounded, it expands to 2 GB and took 12 GB of RSS.
    let entity = "x".repeat(100_000);
    let references = "&big;".repeat(20_000);
    let bomb = rss_with_entities(
        &[("big", &entity)],
        &format!("<title>bomb</title><guid>b1</guid><description>{references}</description>"),
    );
    assert!(bomb.len() < 220_000, "{}", bomb.len());
    let server = FeedServer::start().await;
    server.set("/bomb", Fixture::feed(bomb));
    server.set("/good", Fixture::feed(good_feed()));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"bomb\"\nurl = \"{}\"\n[[source]]\nname = \"good\"\nurl = \"{}\"\n",
            server.url("/bomb"),
            server.url("/good")
        ),
    );
    let args = vec![
        "fetch".to_string(),
        "-c".to_string(),
        config.path().display().to_string(),
    ];
    let run = run_measured(args, 2 << 30).await;
    eprintln!("tributary fetch: peak RSS {} MiB", run.peak_rss >> 20);
    assert_eq!(run.code, Some(0), "exited normally: {}", run.stdout);
    assert!(
        run.peak_rss < 300 << 20,
        "peak RSS {} MB",
        run.peak_rss >> 20
    );
    assert!(
        run.stdout.contains("2 sources fetched, 1 failed"),
        "{}",
        run.stdout
    );
    let bomb_line = run.stdout.lines().find(|l| l.starts_with("bomb")).unwrap();
    assert!(bomb_line.contains("entity expansion"), "{bomb_line}");

    // The cause is the source's last error; nothing of the bomb is stored,
    // and the other source is unharmed.
    let pool = sqlite(&config).await;
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM sources WHERE name = 'bomb'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let last_error = last_error.unwrap();
    assert!(
        last_error.contains("refused: entity expansion over its limit"),
        "{last_error}"
    );
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM articles")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(titles, ["An ordinary story"]);
    pool.close().await;
}

#[tokio::test]
async fn modest_entity_use_still_expands() {
    // Shorthands within budget are expanded as before.
    let doc = rss_with_entities(
        &[("site", "https://h.example"), ("word", "expanded")],
        "<title>&word; title</title><link>&site;/1</link>",
    );
    let feed = tributary::parse::parse_feed(
        doc.as_bytes(),
        None,
        &url::Url::parse("https://h.example/feed").unwrap(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(feed.entries[0].title.as_deref(), Some("expanded title"));
    assert_eq!(feed.entries[0].link.as_deref(), Some("https://h.example/1"));
}

fn parse(
    doc: &str,
    content_type: Option<&str>,
) -> Result<tributary::model::ParsedFeed, ParseError> {
    tributary::parse::parse_feed(
        doc.as_bytes(),
        content_type,
        &url::Url::parse("https://h.example/feed").unwrap(),
        chrono::Utc::now(),
    )
}

/// feed-rs 3.0 cuts a person string one byte either side of the e-mail
/// address it finds in it; a multi-byte character there made it panic and
/// the whole feed was refused (found by the `parse` fuzz target).
#[test]
fn an_email_next_to_a_multibyte_character_costs_no_entry() {
    let authors = [
        // The character after the address: U+FFFD, an em dash.
        (
            "<author>zcb1972@21cn.co\u{FFFD}</author>",
            "zcb1972@21cn.co",
        ),
        (
            "<author>jd@example.fr\u{2014}Jean Dupont</author>",
            "Jean Dupont",
        ),
        // Before it: guillemets, a no-break space, an ideograph.
        (
            "<author>R\u{e9}daction \u{ab}redaction@example.fr\u{bb}</author>",
            "R\u{e9}daction",
        ),
        (
            "<dc:creator>Jean Dupont\u{a0}jd@example.fr</dc:creator>",
            "Jean Dupont",
        ),
        (
            "<dc:creator>\u{5f20}\u{4f1f}\u{ff08}zw@example.cn\u{ff09}</dc:creator>",
            "\u{5f20}\u{4f1f}",
        ),
        // Split across a character reference and CDATA: feed-rs joins them.
        (
            "<author>jd@example.fr&#187; Jean Dupont</author>",
            "Jean Dupont",
        ),
        (
            "<author><![CDATA[Jean Dupont \u{ab}]]>jd@example.fr</author>",
            "Jean Dupont",
        ),
    ];
    for (author, expected) in authors {
        let item = format!("<title>One</title><link>https://h.example/1</link>{author}");
        let doc = rss_with_entities(
            &[],
            &format!("{item}</item><item><title>Two</title><link>https://h.example/2</link>"),
        );
        let feed = parse(&doc, None).unwrap_or_else(|e| panic!("{author}: {e}"));
        assert_eq!(feed.entries.len(), 2, "{author}");
        assert_eq!(
            feed.entries[0].author.as_deref(),
            Some(expected),
            "{author}"
        );
    }

    // Channel-level people (managingEditor, webMaster, iTunes) and JSON Feed
    // authors reach the same code.
    let channel = "<rss version=\"2.0\" xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\"><channel>\
        <title>t</title><link>https://h.example/</link>\
        <managingEditor>ed@example.fr\u{2014}</managingEditor><webMaster>\u{2014}wm@example.fr \u{2014}</webMaster>\
        <itunes:author>Ann \u{ab}ann@example.fr\u{bb}</itunes:author>\
        <itunes:owner><itunes:name>Ann \u{ab}ann@example.fr\u{bb}</itunes:name><itunes:email>ann@example.fr</itunes:email></itunes:owner>\
        <item><title>One</title><link>https://h.example/1</link></item></channel></rss>";
    let feed = parse(channel, None).unwrap();
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].link.as_deref(), Some("https://h.example/1"));

    let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"t",
        "authors":[{"name":"Ann \u00abann@example.fr\u00bb"}],
        "items":[{"id":"1","url":"https://h.example/1","content_text":"x",
                  "author":{"name":"zcb1972@21cn.co\ufffd"}}]}"#;
    let feed = parse(json, Some("application/feed+json")).unwrap();
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].author.as_deref(), Some("zcb1972@21cn.co"));
}

/// feed-rs 3.0 reads Media RSS and iTunes times with Unicode `\d` and
/// `parse::<u64>().unwrap()`: an Arabic-Indic digit or a 20-digit number
/// made it panic, refusing the whole feed.
#[test]
fn a_media_time_feed_rs_cannot_read_costs_no_entry() {
    for time in [
        "\u{663}",
        "99999999999999999999",
        "99999999999999999:00:00",
        "1.\u{663}",
    ] {
        for extension in [
            format!("<itunes:duration>{time}</itunes:duration>"),
            format!("<media:thumbnail url=\"https://h.example/t.png\" time=\"{time}\"/>"),
            format!("<media:text start=\"{time}\">caption</media:text>"),
        ] {
            let doc = format!(
                "<rss version=\"2.0\" xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\" \
                 xmlns:media=\"http://search.yahoo.com/mrss/\"><channel><title>t</title>\
                 <item><title>One</title><link>https://h.example/1</link>{extension}</item>\
                 <item><title>Two</title><link>https://h.example/2</link></item></channel></rss>"
            );
            let feed = parse(&doc, None).unwrap_or_else(|e| panic!("{extension}: {e}"));
            let titles: Vec<_> = feed.entries.iter().map(|e| e.title.as_deref()).collect();
            assert_eq!(titles, [Some("One"), Some("Two")], "{extension}");
        }
    }
}

#[tokio::test]
async fn fields_are_stored_and_served_within_their_caps() {
    // A 4 KB doctype-and-references title that expands to 1 MB, a 40 KB
    // author, a 200 KB summary, a 1.4 MB body and 100 long categories.
    let title_refs = "&t;".repeat(1000);
    let author = "Ann ".repeat(10_000);
    let summary = "word ".repeat(40_000);
    let body: String = (0..90_000).map(|i| format!("<p>para {i}</p>")).collect();
    let categories: String = (0..100)
        .map(|i| format!("<category>c{i} {}</category>", "long ".repeat(100)))
        .collect();
    let doc = rss_with_entities(
        &[("t", &"T".repeat(1000))],
        &format!(
            "<title>{title_refs}</title><guid>big-1</guid><link>https://h.example/1</link>\
             <dc:creator>{author}</dc:creator><description>{summary}</description>\
             <content:encoded><![CDATA[{body}]]></content:encoded>{categories}"
        ),
    );
    assert!(doc.len() < 4 << 20, "{}", doc.len());
    let (_server, config, outcome) = serve_and_fetch("big", doc, "").await;
    assert_ingested(&outcome);

    let pool = sqlite(&config).await;
    let (title, author, summary, content): (String, String, String, String) =
        sqlx::query_as("SELECT title, author, summary, content FROM articles")
            .fetch_one(&pool)
            .await
            .unwrap();
    let tags: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM article_tags")
        .fetch_one(&pool)
        .await
        .unwrap();
    let max_label: i64 = sqlx::query_scalar("SELECT MAX(LENGTH(CAST(label AS BLOB))) FROM tags")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Cut, not dropped: each keeps most of its cap.
    for (field, value, cap) in [
        ("title", &title, MAX_TITLE_BYTES),
        ("author", &author, MAX_AUTHOR_BYTES),
        ("summary", &summary, MAX_SUMMARY_BYTES),
        ("content", &content, MAX_CONTENT_BYTES),
    ] {
        assert!(
            value.len() <= cap && value.len() > cap / 2,
            "{field}: {} bytes, cap {cap}",
            value.len()
        );
    }
    assert!(title.starts_with("TTTT") && title.ends_with('…'), "{title}");
    assert!(summary.ends_with('…'));
    // The body is cut between elements, and what is left is whole.
    assert!(content.starts_with("<p>para 0</p>"));
    assert!(
        content.ends_with("</p>"),
        "{}",
        &content[content.len() - 40..]
    );
    assert_eq!(
        content.matches("<p>").count(),
        content.matches("</p>").count()
    );
    assert!(tags as usize <= MAX_CATEGORIES, "{tags} tags");
    assert!(max_label as usize <= MAX_CATEGORY_BYTES, "{max_label}");

    // What is served is bounded by the same caps.
    let app = TestApp::spawn(config.load()).await;
    let atom = app.get_text("/feed.atom").await;
    assert!(atom.len() < 4 << 20, "served {} bytes", atom.len());
    assert_valid_atom(&atom);
    // Each cut is counted, by source and field.
    let metrics = app.get_text("/metrics").await;
    for field in ["title", "author", "summary", "content", "categories"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tributary_fields_cut_total{")
                    && l.contains("source=\"big\"")
                    && l.contains(&format!("field=\"{field}\""))),
            "{field} cut not counted"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn deeply_nested_html_is_flattened_not_parsed_quadratically() {
    // 100,000 nested divs (1.1 MB): a minute of CPU per fetch unbounded.
    let depth = 100_000;
    let body = format!(
        "{}deep inside{}",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    let doc = rss_with_entities(
        &[],
        &format!(
            "<title>nested</title><guid>n1</guid><content:encoded><![CDATA[{body}]]></content:encoded>\
             <description><![CDATA[{body}]]></description>"
        ),
    );
    let (_server, config, outcome) = serve_and_fetch("nested", doc, "").await;
    assert_ingested(&outcome);
    let pool = sqlite(&config).await;
    let (summary, content): (String, String) =
        sqlx::query_as("SELECT summary, content FROM articles")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    // The text survives; the elements the HTML parser built (its work)
    // stop at the depth bound.
    assert_eq!(summary, "deep inside");
    assert!(content.contains("deep inside"));
    let divs = content.matches("<div>").count();
    assert!(divs <= MAX_HTML_DEPTH, "{divs} nested divs kept");
    assert_eq!(divs, content.matches("</div>").count());
    assert!(content.len() < 16 * 1024, "{} bytes", content.len());
}

#[tokio::test]
async fn parsing_stops_at_its_time_budget_and_the_source_says_so() {
    // How far parsing gets within `parse_budget` depends on the machine;
    // that it stops, and says so, does not: a 1 ms budget is spent on a
    // megabyte before its first entry (the partial case, entries kept up to
    // the budget, is tested in parse.rs with a budget counted in checks).
    let body = "<p>paragraph</p>".repeat(1024);
    let items: String = (0..64)
        .map(|i| {
            format!(
                "<item><title>costly {i}</title><guid>c{i}</guid>\
                 <content:encoded><![CDATA[{body}]]></content:encoded></item>"
            )
        })
        .collect();
    let doc = format!(
        "<rss version=\"2.0\" xmlns:content=\"{CONTENT_NS}\"><channel><title>costly</title>{items}</channel></rss>"
    );
    let (_server, config, outcome) =
        serve_and_fetch("costly", doc, "parse_budget = \"1ms\"\n").await;
    let tributary::pipeline::Outcome::Failed(error) = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        error.contains("longer than its time budget (parse_budget)"),
        "{error}"
    );
    let pool = sqlite(&config).await;
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM sources WHERE name = 'costly'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(last_error.as_deref(), Some(error.as_str()));
}

#[tokio::test]
async fn huge_ids_are_cut_and_huge_links_dropped_keeping_each_entry_apart() {
    // Two entries whose 100 KB guids differ only past the cap, each with a
    // 100 KB link: each stays its own article on every fetch, with an id
    // within its cap and no link that leads nowhere.
    let long = "g".repeat(100_000);
    let link = format!("https://h.example/{}", "p".repeat(100_000));
    let item = |n: u32| {
        format!(
            "<item><title>story {n}</title><guid isPermaLink=\"false\">{long}{n}</guid>\
             <link>{link}{n}</link><description>body {n}</description></item>"
        )
    };
    let doc = format!(
        "<rss version=\"2.0\"><channel><title>ids</title>{}{}</channel></rss>",
        item(1),
        item(2)
    );
    let (_server, config, outcome) = serve_and_fetch("ids", doc, "").await;
    assert_ingested(&outcome);
    // Fetched again, the same cut ids find the same articles.
    assert_ingested(&fetch_now(&config.load()).await[0].outcome);
    let pool = sqlite(&config).await;
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM articles ORDER BY title")
        .fetch_all(&pool)
        .await
        .unwrap();
    let longest_key: i64 =
        sqlx::query_scalar("SELECT MAX(LENGTH(CAST(entry_key AS BLOB))) FROM article_sources")
            .fetch_one(&pool)
            .await
            .unwrap();
    let links: i64 = sqlx::query_scalar("SELECT COUNT(link) FROM articles")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Titles differ, so the cut ids (equal after the cut) do not merge them.
    assert_eq!(titles, ["story 1", "story 2"]);
    // The key is the id with a short prefix at most.
    assert!(
        (longest_key as usize) < MAX_ID_BYTES + 64,
        "{longest_key}-byte entry key"
    );
    assert_eq!(links, 0, "a link over {MAX_URL_BYTES} bytes is dropped");
    let app = TestApp::spawn(config.load()).await;
    let atom = app.get_text("/feed.atom").await;
    assert!(atom.len() < 64 * 1024, "served {} bytes", atom.len());
    assert_valid_atom(&atom);
    let metrics = app.get_text("/metrics").await;
    for field in ["guid", "link"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tributary_fields_cut_total{")
                    && l.contains(&format!("field=\"{field}\""))),
            "{field} cut not counted"
        );
    }
    app.stop().await;
}

const URL_ATTRIBUTES: &str = r#"<blockquote cite="javascript:alert(1)">quoted</blockquote>
<q cite="/sources/2">short</q><del cite="JaVaScRiPt:alert(3)">gone</del>
<img src="https://tracker.example/pixel.gif" longdesc="javascript:alert(4)" alt="">
<p>text stays</p>"#;

async fn stored_content(daemon_extra: &str, server: &FeedServer) -> String {
    let config = TestConfig::write(
        daemon_extra,
        &format!(
            "[[source]]\nname = \"attrs\"\nurl = \"{}\"\n",
            server.url("/attrs")
        ),
    );
    fetch_now(&config.load()).await;
    let pool = sqlite(&config).await;
    let content: String = sqlx::query_scalar("SELECT content FROM articles")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    content
}

#[tokio::test]
async fn url_attributes_are_sanitized_and_remote_images_can_be_stripped() {
    let doc = rss_with_entities(
        &[],
        &format!(
            "<title>attrs</title><guid>a1</guid><link>https://h.example/a</link>\
             <description><![CDATA[{URL_ATTRIBUTES}]]></description>"
        ),
    );
    let server = FeedServer::start().await;
    server.set("/attrs", Fixture::feed(doc));

    let content = stored_content("", &server).await;
    assert!(
        !content.to_ascii_lowercase().contains("javascript"),
        "{content}"
    );
    let cite = format!(r#"<q cite="{}">"#, server.url("/sources/2"));
    assert!(
        content.contains(&cite),
        "relative cite made absolute: {content}"
    );
    assert!(
        content.contains("<blockquote>quoted</blockquote>"),
        "{content}"
    );
    assert!(content.contains("tracker.example/pixel.gif"), "{content}");

    let stripped = stored_content("strip_remote_images = true", &server).await;
    assert!(!stripped.contains("<img"), "{stripped}");
    assert!(!stripped.contains("tracker.example"), "{stripped}");
    assert!(stripped.contains("<p>text stays</p>"), "{stripped}");
}

/// XML-escapes text for an element or a quoted entity value.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every `<` in sanitized HTML opens a tag that closes: no markup cut in
/// two, nothing a browser would read differently.
fn looks_well_formed(html: &str) -> bool {
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let tag = &rest[lt + 1..];
        let starts_tag = tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
        let Some(gt) = tag.find('>') else {
            return false;
        };
        if !starts_tag || tag[..gt].contains('<') {
            return false;
        }
        rest = &tag[gt + 1..];
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever titles, bodies and entity declarations a source sends, in
    /// RSS or Atom, every stored field stays within its cap and the body
    /// is sanitized markup.
    #[test]
    fn stored_fields_stay_within_their_caps(
        atom in any::<bool>(),
        entity in "[^\"<&%]{0,3000}",
        refs in 0usize..1500,
        title in any::<String>(),
        author in "\\PC{0,700}",
        body in proptest::collection::vec(
            prop_oneof![
                Just("<div>".to_string()),
                Just("</div>".to_string()),
                Just("<b>".to_string()),
                Just("<p>".to_string()),
                Just("<img src=x>".to_string()),
                Just("<a href='javascript:x'>".to_string()),
                Just("<script>alert(1)</script>".to_string()),
                "\\PC{0,40}",
            ],
            0..400,
        ),
        body_refs in 0usize..400,
    ) {
        let expanded = |n: usize| "&e;".repeat(n);
        let title = format!("{}{}", esc(&title), expanded(refs));
        let author = esc(&author);
        let body = format!("{}{}", esc(&body.concat()), expanded(body_refs));
        let doctype = format!("<!DOCTYPE x [<!ENTITY e \"{}\">]>", esc(&entity));
        let doc = if atom {
            format!(
                "{doctype}<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>{title}</title>\
                 <entry><id>e1</id><title type=\"html\">{title}</title><author><name>{author}</name></author>\
                 <summary type=\"html\">{body}</summary><content type=\"html\">{body}{body}</content></entry></feed>"
            )
        } else {
            format!(
                "{doctype}<rss version=\"2.0\"><channel><title>{title}</title><item><title>{title}</title>\
                 <author>{author}</author><description>{body}</description></item></channel></rss>"
            )
        };
        let url = url::Url::parse("https://p.example/feed").unwrap();
        match tributary::parse::parse_feed(doc.as_bytes(), None, &url, chrono::Utc::now()) {
            Ok(feed) => {
                let title = feed.meta.title.as_deref().unwrap_or("");
                prop_assert!(title.len() <= MAX_TITLE_BYTES);
                for e in &feed.entries {
                    prop_assert!(e.title.as_deref().unwrap_or("").len() <= MAX_TITLE_BYTES);
                    prop_assert!(e.author.as_deref().unwrap_or("").len() <= MAX_AUTHOR_BYTES);
                    prop_assert!(e.summary.as_deref().unwrap_or("").len() <= MAX_SUMMARY_BYTES);
                    prop_assert!(e.categories.len() <= MAX_CATEGORIES);
                    let content = e.content.as_deref().unwrap_or("");
                    prop_assert!(content.len() <= MAX_CONTENT_BYTES);
                    prop_assert!(looks_well_formed(content), "{}", content);
                    let lower = content.to_ascii_lowercase();
                    prop_assert!(!lower.contains("<script") && !lower.contains("javascript:"));
                    prop_assert!(content.matches("<div>").count() <= MAX_HTML_DEPTH);
                }
            }
            Err(ParseError::Refused(why)) => prop_assert!(why.contains("entity expansion")),
            Err(ParseError::NotAFeed(_) | ParseError::Empty) => {}
            Err(e) => prop_assert!(false, "unexpected error: {e}"),
        }
    }
}
