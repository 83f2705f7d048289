//! Automatic entity tags (`[entities]`, docs/TAGS-AND-DEDUP.md "Entity
//! tags") end to end: the daemon and `tributary fetch`/`explain` over the
//! shipped sample feed, served from 127.0.0.1 without its categories.

use crate::helpers::*;
use std::process::Command;

/// config/samples/newsroom-sample.xml, the rfi.fr-shaped sample, with its
/// `<category>` lines taken out: a bare feed as rfi.fr's own are.
fn bare_sample() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/samples/newsroom-sample.xml"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with("<category>"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two sources serving the same bare feed under different links: `wire`
/// takes `[entities]` as configured, `plain` opts out.
async fn setup(entities: &str) -> (FeedServer, TestConfig) {
    let server = FeedServer::start().await;
    let sample = bare_sample();
    server.set("/wire.xml", Fixture::feed(sample.clone()));
    server.set(
        "/plain.xml",
        Fixture::feed(sample.replace("sample.tributary.invalid", "plain.tributary.invalid")),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "{entities}\n\
             [dedup]\nenabled = false\n\
             [[source]]\nname = \"wire\"\nurl = \"{}\"\n\
             [[source]]\nname = \"plain\"\nurl = \"{}\"\nentities = false\n\
             [[feed]]\nname = \"lavrov\"\nany = [\"sergei-lavrov\"]\n\
             [[feed]]\nname = \"europe\"\nall = [\"europe\", \"nato\"]\n",
            server.url("/wire.xml"),
            server.url("/plain.xml"),
        ),
    );
    (server, config)
}

/// Each entry's (title, category labels), in feed order.
fn entries(atom: &str) -> Vec<(String, Vec<String>)> {
    parse_atom(atom)
        .entries
        .into_iter()
        .map(|e| {
            let title = e.title.map(|t| t.content).unwrap_or_default();
            let labels = e
                .categories
                .into_iter()
                .map(|c| c.label.unwrap_or(c.term))
                .collect();
            (title, labels)
        })
        .collect()
}

/// Runs the binary off the test's runtime, which serves the feeds.
async fn tributary(config: &TestConfig, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(args)
        .arg("-c")
        .arg(config.path())
        .env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_daemon_tags_a_bare_feed_with_its_places_and_people_and_filters_by_them() {
    let (_server, config) = setup("[entities]\nenabled = true").await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    app.scheduler_idle().await;

    let lavrov = entries(&app.get_text("/feeds/lavrov.atom").await);
    assert_eq!(
        lavrov.len(),
        1,
        "only the opted-in source's copy: {lavrov:?}"
    );
    let (title, labels) = &lavrov[0];
    assert!(title.starts_with("China's Wang Yi meets Sergei Lavrov"));
    assert_eq!(
        labels,
        &[
            "CHINA",
            "ASIA",
            "MOSCOW",
            "RUSSIA",
            "EUROPE",
            "UKRAINE",
            "BEIJING",
            "WANG YI",
            "SERGEI LAVROV",
            "XI JINPING",
            "GUO JIAKUN"
        ]
    );

    // The NATO story: an organization and a derived region.
    let europe = entries(&app.get_text("/feeds/europe.atom").await);
    let titles: Vec<&str> = europe.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["NATO ministers meet in Brussels as Europe weighs new support for Ukraine"]
    );
    for expected in ["NATO", "BRUSSELS", "BELGIUM", "EUROPE", "UKRAINE", "RUSSIA"] {
        assert!(
            europe[0].1.iter().any(|l| l == expected),
            "{expected} in {europe:?}"
        );
    }

    // The source that opted out has no automatic tags.
    let plain = entries(&app.get_text("/feed.atom?source=plain").await);
    assert_eq!(plain.len(), 2);
    assert!(
        plain.iter().all(|(_, labels)| labels.is_empty()),
        "{plain:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn fetch_tags_in_title_case_and_explain_shows_each_tags_evidence() {
    let (_server, config) = setup("[entities]\nenabled = true\ncase = \"title\"").await;
    tributary(&config, &["fetch"]).await;
    let out = tributary(
        &config,
        &[
            "explain",
            "https://sample.tributary.invalid/en/asia-pacific/wang-yi-lavrov-moscow",
        ],
    )
    .await;
    for expected in [
        "China",
        "from entity: country \"China\" (countries list)",
        "from entity: region of \"China\" (countries list)",
        "from entity: city \"Moscow\" (cities list)",
        "from entity: country of city \"Moscow\" (cities list)",
        "from entity: person \"Wang Yi\" (in the title)",
        "from entity: person \"Guo Jiakun\" (beside \"spokesman\")",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[tokio::test]
async fn entity_tags_are_off_unless_enabled_and_a_source_may_opt_in() {
    let (server, config) = setup("").await;
    let text = std::fs::read_to_string(config.path()).unwrap().replace(
        &format!("url = \"{}\"\n", server.url("/wire.xml")),
        &format!("url = \"{}\"\nentities = true\n", server.url("/wire.xml")),
    );
    std::fs::write(config.path(), text).unwrap();
    fetch_now(&config.load()).await;
    let app = TestApp::spawn(config.load()).await;
    let wire = entries(&app.get_text("/feed.atom?source=wire").await);
    assert!(wire
        .iter()
        .all(|(_, labels)| labels.iter().any(|l| l == "EUROPE")));
    let plain = entries(&app.get_text("/feed.atom?source=plain").await);
    assert!(
        plain.iter().all(|(_, labels)| labels.is_empty()),
        "{plain:?}"
    );
    app.stop().await;
}

#[test]
fn a_bad_case_is_a_clear_config_error() {
    let config = TestConfig::write("", "[entities]\nenabled = true\ncase = \"lower\"\n");
    let err = tributary::config::Config::load(&config.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tributary.toml:"), "{err}");
    assert!(err.contains("unknown variant `lower`"), "{err}");
}
