//! Each article's language: stated by its feed or detected from its text,
//! served as `xml:lang` and JSON Feed `language`, and filtered on with
//! `lang` (docs/CONFIG.md "Languages").

use crate::helpers::*;

const FRENCH: &str =
    "Le ministre chinois des Affaires étrangères a reçu son homologue russe à Pékin \
    pour des entretiens consacrés à la guerre en Ukraine et aux relations avec l'Otan.";
const ENGLISH: &str = "China's foreign minister received his Russian counterpart in Beijing on \
    Tuesday for talks on the war in Ukraine and on relations with NATO.";
const STATED_ELSEWHERE: &str = "Whatever the text says, the language stated for an \
    entry is the one kept: this summary is in English, its entry says otherwise.";
const GERMAN: &str = "Der chinesische Außenminister hat seinen russischen Amtskollegen in Peking \
    empfangen, um über den Krieg in der Ukraine und die Beziehungen zur Nato zu sprechen.";

fn rss(channel_language: Option<&str>, items: &[(&str, &str)]) -> String {
    let language = channel_language
        .map(|l| format!("<language>{l}</language>"))
        .unwrap_or_default();
    let items: String = items
        .iter()
        .map(|(slug, text)| {
            format!(
                "<item><title>{slug}</title><link>https://news.example/{slug}</link>\
                 <description>{text}</description>\
                 <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>\
         <link>https://news.example/</link>{language}{items}</channel></rss>"
    )
}

fn languages_by_title(json: &serde_json::Value) -> Vec<(String, Option<String>)> {
    let mut items: Vec<(String, Option<String>)> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["title"].as_str().unwrap().to_string(),
                item["language"].as_str().map(String::from),
            )
        })
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn languages_are_detected_or_kept_as_stated_served_and_filtered() {
    let server = FeedServer::start().await;
    // No language stated: each item's is detected from its text.
    server.set(
        "/mixed.xml",
        Fixture::feed(rss(
            None,
            &[
                ("fr-story", FRENCH),
                ("en-story", ENGLISH),
                ("de-story", GERMAN),
                ("scrap", "Podcast #42"),
            ],
        )),
    );
    // Stated (in a spelling to normalize): kept, whatever the text says.
    server.set(
        "/quebec.xml",
        Fixture::feed(rss(
            Some("FR_ca"),
            &[(
                "qc-story",
                "Stated languages win over the text: this channel says it is French from Canada.",
            )],
        )),
    );
    // The operator's `language` over the feed's own statement.
    server.set(
        "/told.xml",
        Fixture::feed(rss(
            Some("en"),
            &[(
                "told-story",
                "The source's language in the config stands for the feed's own statement.",
            )],
        )),
    );
    // Atom: an entry's xml:lang over the feed's.
    server.set(
        "/atom.xml",
        Fixture::feed(format!(
            "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"pt-BR\">\
             <title>Atom</title><id>urn:atom</id><updated>2026-11-27T10:00:00Z</updated>\
             <entry><id>urn:a1</id><title>pt-story</title><updated>2026-11-27T10:00:00Z</updated>\
             <link href=\"https://news.example/pt\"/><summary>{STATED_ELSEWHERE}</summary></entry>\
             <entry xml:lang=\"es\"><id>urn:a2</id><title>es-story</title><updated>2026-11-27T10:00:00Z</updated>\
             <link href=\"https://news.example/es\"/><summary>Este texto está en español, como dice su entrada, y no en portugués.</summary></entry>\
             </feed>"
        )),
    );
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"mixed\"\nurl = \"{}\"\n\
             [[source]]\nname = \"quebec\"\nurl = \"{}\"\n\
             [[source]]\nname = \"atom\"\nurl = \"{}\"\n\
             [[source]]\nname = \"told\"\nurl = \"{}\"\nlanguage = \"de_at\"\n\
             [[feed]]\nname = \"francais\"\nlang = [\"fr\"]\n",
            server.url("/mixed.xml"),
            server.url("/quebec.xml"),
            server.url("/atom.xml"),
            server.url("/told.xml"),
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let all: serde_json::Value = serde_json::from_str(&app.get_text("/feed.json").await).unwrap();
    let some = |l: &str| Some(l.to_string());
    assert_eq!(
        languages_by_title(&all),
        [
            ("de-story".to_string(), some("de")),
            ("en-story".to_string(), some("en")),
            ("es-story".to_string(), some("es")),
            ("fr-story".to_string(), some("fr")),
            ("pt-story".to_string(), some("pt-BR")),
            ("qc-story".to_string(), some("fr-CA")),
            ("scrap".to_string(), None),
            ("told-story".to_string(), some("de-AT")),
        ]
    );

    let atom = app.get_text("/feed.atom?lang=fr").await;
    assert_valid_atom(&atom);
    let mut french: Vec<String> = parse_atom(&atom)
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    french.sort();
    assert_eq!(french, ["fr-story", "qc-story"]);
    // feed-rs reads xml:lang only on <content>: look at the markup.
    let mut stated: Vec<&str> = atom
        .match_indices("<entry xml:lang=\"")
        .map(|(at, m)| {
            let value = &atom[at + m.len()..];
            &value[..value.find('"').unwrap()]
        })
        .collect();
    stated.sort();
    assert_eq!(stated, ["fr", "fr-CA"]);
    let configured = parse_atom(&app.get_text("/feeds/francais.atom").await);
    assert_eq!(configured.entries.len(), 2);

    let several: serde_json::Value =
        serde_json::from_str(&app.get_text("/feed.json?lang=pt,de").await).unwrap();
    assert_eq!(
        languages_by_title(&several),
        [
            ("de-story".to_string(), some("de")),
            ("pt-story".to_string(), some("pt-BR")),
            ("told-story".to_string(), some("de-AT")),
        ]
    );

    let refused = app.get("/feed.atom?lang=french").await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("\"french\""));
    app.stop().await;

    // `export --lang` reads the same store.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["export", "-c"])
        .arg(config.path())
        .args(["--lang", "de", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        languages_by_title(&exported),
        [
            ("de-story".to_string(), some("de")),
            ("told-story".to_string(), some("de-AT")),
        ]
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["export", "-c"])
        .arg(config.path())
        .args(["--lang", "german"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"german\" is not a language tag"));
}

#[test]
fn a_feed_lang_that_is_not_a_language_tag_is_refused_with_its_position() {
    let config = TestConfig::write(
        "",
        "[[feed]]\nname = \"f\"\nlang = [\"fr\", \"Français\"]\n",
    );
    let error = tributary::config::Config::load(&config.path())
        .unwrap_err()
        .to_string();
    assert!(error.contains("tributary.toml:8:15:"), "{error}");
    assert!(
        error.contains("\"Français\" is not a language tag"),
        "{error}"
    );
}

/// Real feeds that state no language (or an empty one): most of each
/// feed's entries get its language, and none gets another (a headline
/// alone may stay unknown).
#[tokio::test]
async fn real_feeds_without_a_stated_language_get_the_one_they_are_written_in() {
    let Some(shared) = shared_dir() else {
        return skip("TRIBUTARY_SHARED (the real-feed fixtures)");
    };
    let cases = [
        ("heise_developer_atom.xml", "de"),
        ("lanacion_ar_rss2_media_content.xml", "es"),
        ("livemint_news_rss2_media.xml", "en"),
        ("oren_ru_rss2_windows-1251.xml", "ru"),
        ("uol_noticias_rss2_latin1_nodecl.xml", "pt"),
        ("aktuality_sk_rss2_dc.xml", "sk"),
    ];
    let server = FeedServer::start().await;
    let mut sources = String::new();
    for (i, (file, _)) in cases.iter().enumerate() {
        let body = read(&shared.join("fixtures/real").join(file));
        server.set(&format!("/{i}.xml"), Fixture::feed(body));
        sources += &format!(
            "[[source]]\nname = \"s{i}\"\nurl = \"{}\"\n",
            server.url(&format!("/{i}.xml"))
        );
    }
    let config = TestConfig::write("", &sources);
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    let all: serde_json::Value =
        serde_json::from_str(&app.get_text("/feed.json?limit=500").await).unwrap();
    for (i, (file, expected)) in cases.iter().enumerate() {
        let source = format!("s{i}");
        let languages: Vec<Option<&str>> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["_tributary"]["source"]["name"] == source.as_str())
            .map(|item| item["language"].as_str())
            .collect();
        assert!(!languages.is_empty(), "{file}: no entries");
        let right = languages.iter().filter(|l| **l == Some(*expected)).count();
        let wrong: Vec<_> = languages
            .iter()
            .filter(|l| l.is_some_and(|l| l != *expected))
            .collect();
        assert!(wrong.is_empty(), "{file}: {wrong:?}");
        assert!(
            right * 5 >= languages.len() * 4,
            "{file}: {right} of {} detected as {expected}: {languages:?}",
            languages.len()
        );
    }
    app.stop().await;
}

/// On later refreshes only new entries are read: stored ones keep their
/// language (even when, read alone, their text would not tell it), and the
/// languages stored for the feed settle a new headline whose own guess
/// is hesitant.
#[tokio::test]
async fn later_refreshes_read_only_new_entries_and_the_feeds_stored_language_settles_headlines() {
    let server = FeedServer::start().await;
    let first = [
        ("un", FRENCH),
        (
            "deux",
            "Le gouvernement annonce un plan pour les hôpitaux publics et leurs soignants.",
        ),
        (
            "trois",
            "Nouvelle hausse des prix de l'énergie en France cet hiver, selon le régulateur.",
        ),
    ];
    server.set("/fr.xml", Fixture::feed(rss(None, &first)));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"fr\"\nurl = \"{}\"\n",
            server.url("/fr.xml")
        ),
    );
    let app = TestApp::spawn(config.load()).await;
    app.fetch_now().await;
    let some = |l: &str| Some(l.to_string());
    let json: serde_json::Value = serde_json::from_str(&app.get_text("/feed.json").await).unwrap();
    assert!(
        languages_by_title(&json)
            .iter()
            .all(|(_, l)| *l == some("fr")),
        "{json}"
    );

    // The stored entries' text shrinks to a scrap (their language stays);
    // a new headline, hesitant alone, gets the feed's.
    let mut second: Vec<(&str, &str)> = first
        .iter()
        .map(|(slug, _)| (*slug, "Mise à jour."))
        .collect();
    second.push((
        "greve",
        "Grève des transports: la circulation reste perturbée",
    ));
    server.set("/fr.xml", Fixture::feed(rss(None, &second)));
    app.fetch_now().await;
    let json: serde_json::Value = serde_json::from_str(&app.get_text("/feed.json").await).unwrap();
    app.stop().await;
    assert_eq!(
        languages_by_title(&json),
        [
            ("deux".to_string(), some("fr")),
            ("greve".to_string(), some("fr")),
            ("trois".to_string(), some("fr")),
            ("un".to_string(), some("fr")),
        ]
    );
}
