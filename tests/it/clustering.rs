//! One story, one entry (docs/TAGS-AND-DEDUP.md): the same wire story carried by
//! several outlets under different URLs becomes one article linking every
//! copy; distinct stories on the same topic stay apart; tag aliases,
//! diacritic-insensitive rules and `tributary explain`.

use crate::helpers::*;
use std::time::Duration;

const STORY: &str = "Chinese Foreign Minister Wang Yi met Russian President Vladimir Putin in Moscow on Friday, \
    ahead of a planned visit by Xi Jinping next month. The two sides discussed trade, energy supplies \
    and the war in Ukraine, according to a statement from the Kremlin. Wang said relations between \
    Beijing and Moscow were at their best level in history and would not be swayed by outside pressure.";

const OTHER_STORY: &str = "Russian President Vladimir Putin said on Friday that Moscow would increase energy \
    supplies to China, in a speech to business leaders in Saint Petersburg about trade with Beijing and the \
    sanctions imposed over the war in Ukraine by Western governments, which he called a failure.";

const THIRD_STORY: &str = "China and Russia held joint naval exercises in the Sea of Japan this week, the \
    defence ministry in Beijing said, with warships and aircraft from both countries taking part in drills \
    that Tokyo described as a growing concern for regional security and stability.";

fn item(guid: &str, link: &str, title: &str, body: &str, categories: &[&str]) -> String {
    let cats: String = categories
        .iter()
        .map(|c| format!("<category>{c}</category>"))
        .collect();
    format!(
        "<item><title>{title}</title><guid>{guid}</guid><link>{link}</link>{cats}\
         <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate><description>{body}</description></item>"
    )
}

fn rss(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Outlet</title>\
         <link>https://outlet.example/</link>{}</channel></rss>",
        items.concat()
    )
}

async fn outlets(dedup: &str) -> (FeedServer, TestConfig) {
    let server = FeedServer::start().await;
    server.set(
        "/rfi",
        Fixture::feed(rss(&[
            item(
                "rfi-1",
                "https://www.rfi.fr/en/asia/wang-yi-moscow",
                "Wang Yi meets Putin in Moscow",
                STORY,
                &["Politics", "CHINA"],
            ),
            item(
                "rfi-2",
                "https://www.rfi.fr/en/asia/naval-drills",
                "China and Russia hold naval drills",
                THIRD_STORY,
                &["UA"],
            ),
        ])),
    );
    // The copies arrive later, so that rfi's is the first seen.
    server.set(
        "/france24",
        Fixture::feed(rss(&[
            item(
                "f24-1",
                "https://www.france24.com/en/wang-yi-putin",
                "Putin receives Wang Yi",
                &format!("AFP - {STORY}"),
                &["Russia"],
            ),
            item(
                "f24-2",
                "https://www.france24.com/en/putin-energy",
                "Putin promises more energy for China",
                OTHER_STORY,
                &["Russia"],
            ),
        ]))
        .with_delay(Duration::from_millis(300)),
    );
    server.set(
        "/wire",
        Fixture::feed(rss(&[item(
            "w-1",
            "https://wire.example/2026/11/27/wang-yi",
            "UPDATE: Wang Yi meets Putin in Moscow",
            &STORY
                .replace("Friday", "Friday afternoon")
                .replace("trade, energy", "trade and energy"),
            &["Election results", "Diplomacy"],
        )]))
        .with_delay(Duration::from_millis(600)),
    );
    let body = format!(
        "{dedup}\n\
         [[source]]\nname = \"rfi-en\"\nurl = \"{}\"\ntags = [\"rfi\"]\n\
         [[source]]\nname = \"france24\"\nurl = \"{}\"\n\
         [[source]]\nname = \"wire\"\nurl = \"{}\"\n\
         [[tag_rule]]\ntag = \"election\"\nany = [\"élection\"]\nfields = [\"categories\"]\n\
         [[tag_rule]]\ntag = \"kremlin\"\nregex = \"Kreml\"\n\
         [[tag_alias]]\ntag = \"ukraine\"\nsame = [\"ua\", \"ukrainian war\"]\n\
         [[feed]]\nname = \"russia\"\nany = [\"russia\"]\n\
         [[feed]]\nname = \"no-diplomacy\"\nnone = [\"diplomacy\"]\n",
        server.url("/rfi"),
        server.url("/france24"),
        server.url("/wire")
    );
    let config = TestConfig::write("", &body);
    (server, config)
}

fn titles(xml: &str) -> Vec<String> {
    parse_atom(xml)
        .entries
        .iter()
        .map(|e| e.title.clone().unwrap().content)
        .collect()
}

#[tokio::test]
async fn wire_copies_under_other_urls_are_one_article_and_distinct_stories_stay_apart() {
    let (_server, config) = outlets("").await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;

    let xml = app.get_text("/feed.atom").await;
    assert_valid_atom(&xml);
    let mut got = titles(&xml);
    got.sort();
    assert_eq!(
        got,
        [
            "China and Russia hold naval drills",
            "Putin promises more energy for China",
            "Wang Yi meets Putin in Moscow",
        ],
        "three stories: the Wang Yi copies merged, the same-topic stories apart"
    );
    let feed = parse_atom(&xml);
    let story = feed
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "Wang Yi meets Putin in Moscow")
        .unwrap();
    let alternate: Vec<&str> = story
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("alternate"))
        .map(|l| l.href.as_str())
        .collect();
    let mut related: Vec<&str> = story
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("related"))
        .map(|l| l.href.as_str())
        .collect();
    related.sort();
    assert_eq!(
        alternate,
        ["https://www.rfi.fr/en/asia/wang-yi-moscow"],
        "the first-seen copy"
    );
    assert_eq!(
        related,
        [
            "https://wire.example/2026/11/27/wang-yi",
            "https://www.france24.com/en/wang-yi-putin"
        ]
    );
    let terms: Vec<&str> = story.categories.iter().map(|c| c.term.as_str()).collect();
    for term in [
        "politics",
        "china",
        "rfi",
        "russia",
        "diplomacy",
        "election",
        "election-results",
        "kremlin",
    ] {
        assert!(
            terms.contains(&term),
            "tags are the union: missing {term} in {terms:?}"
        );
    }
    assert!(xml.contains("<title type=\"text\">Outlet</title>"));

    // source= matches every source the story was seen in.
    assert_eq!(
        titles(&app.get_text("/feed.atom?source=wire").await),
        ["Wang Yi meets Putin in Moscow"]
    );
    let by_france24 = titles(&app.get_text("/feed.atom?source=france24").await);
    assert_eq!(by_france24.len(), 2, "{by_france24:?}");

    // A refetch changes nothing, and the copies' URLs keep resolving to it.
    app.fetch_now().await;
    assert_eq!(titles(&app.get_text("/feed.atom").await).len(), 3);

    // Aliases fold spellings, in stored tags and in queries.
    assert_eq!(
        titles(&app.get_text("/feed.atom?any=UA").await),
        ["China and Russia hold naval drills"]
    );
    assert_eq!(
        titles(&app.get_text("/tags/ukrainian-war.atom").await),
        ["China and Russia hold naval drills"]
    );
    app.stop().await;
}

#[tokio::test]
async fn near_duplicate_merging_can_be_turned_off() {
    let (_server, config) = outlets("[dedup]\nenabled = false\n").await;
    let app = TestApp::spawn(config.load()).await;
    app.wait_fetched().await;
    assert_eq!(
        titles(&app.get_text("/feed.atom").await).len(),
        5,
        "every copy its own article"
    );
    app.stop().await;
}

#[tokio::test]
async fn explain_shows_sources_cluster_tag_origins_and_feed_verdicts() {
    let (_server, config) = outlets("").await;
    fetch_now(&config.load()).await;
    let path = config.path();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "explain",
            "-c",
            path.to_str().unwrap(),
            "https://wire.example/2026/11/27/wang-yi?utm_source=x",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "title      Wang Yi meets Putin in Moscow",
        "link       https://www.rfi.fr/en/asia/wang-yi-moscow",
        "rfi-en",
        "first seen here",
        "guid:w-1",
        "near-duplicate text (similarity",
        "https://www.france24.com/en/wang-yi-putin",
        "from category in rfi-en",
        "from tags of source rfi-en",
        "from tag_rule \"kremlin\" (regex \"Kreml\")",
        "from tag_rule \"election\" (any in categories)",
        "russia           included: has tag \"russia\" from `any`",
        "no-diplomacy     excluded: has tag \"diplomacy\", which `none` excludes",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let missing = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "explain",
            "-c",
            path.to_str().unwrap(),
            "https://nowhere.example/",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}
