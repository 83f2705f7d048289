//! Near-duplicate detection measured on a labelled corpus: real stories
//! from the shared fixture feeds, each with generated wire-style variants
//! (same story), against every other story of the same feed (same outlet,
//! same vocabulary, different story). Precision matters more than recall.

use crate::helpers::*;
use tributary::cluster::Signature;
use tributary::parse::parse_feed;

/// Measured with the default threshold (0.6) on the corpus below (see
/// BENCHMARKS.md): precision 1.0000, recall 0.9487 over 5,964 true pairs
/// among 1,988 texts of 284 stories. The test fails if either drops.
const MIN_PRECISION: f64 = 1.0;
const MIN_RECALL: f64 = 0.948;

struct Story {
    feed: usize,
    story: usize,
    signature: Signature,
}

/// Deterministic, lightly edited copies of one story, as outlets publish
/// wire copy: a byline prefix, another headline, words swapped, a sentence
/// added or dropped, and two of those at once.
fn variants(title: &str, body: &str) -> Vec<(String, String)> {
    let sentences: Vec<&str> = body.split_inclusive(". ").collect();
    let words: Vec<&str> = body.split_whitespace().collect();
    let swapped: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i % 25 == 7 { "reportedly" } else { w })
        .collect::<Vec<_>>()
        .join(" ");
    let dropped = if sentences.len() > 2 {
        sentences[..sentences.len() - 1].concat()
    } else {
        body.to_string()
    };
    let added = format!("{body} The agency said more details would follow later on Friday.");
    vec![
        (title.to_string(), format!("AFP - {body}")),
        (
            format!("UPDATE: {title} as officials react"),
            body.to_string(),
        ),
        (title.to_string(), swapped.clone()),
        (title.to_string(), added.clone()),
        (title.to_string(), dropped),
        (format!("{title} (wire)"), format!("(Reuters) - {swapped}")),
    ]
}

fn corpus(shared: &std::path::Path) -> Vec<Story> {
    let feeds = [
        "guardian_us_rss2.xml",
        "lanacion_ar_rss2_media_content.xml",
        "dcrainmaker_wordpress_rss2.xml",
        "medium_tag_rss2_content_encoded.xml",
        "washingtonpost_wellness_rss2.xml",
        "heise_developer_atom.xml",
        "science_twis_rss1_rdf.xml",
        "talkingpointsmemo_atom.xml",
        "aktuality_sk_rss2_dc.xml",
        "livemint_news_rss2_media.xml",
    ];
    let base = url::Url::parse("https://example.org/").unwrap();
    let mut stories = Vec::new();
    let mut story_id = 0;
    for (feed_index, file) in feeds.iter().enumerate() {
        let bytes = read(&shared.join("fixtures/real").join(file));
        let feed = parse_feed(&bytes, None, &base, chrono::Utc::now()).unwrap();
        for entry in feed.entries {
            let title = entry.title.clone().unwrap_or_default();
            let body = entry
                .content
                .as_deref()
                .map(strip)
                .or(entry.summary.clone())
                .unwrap_or_default();
            let Some(original) = Signature::of(&title, None, Some(&body)) else {
                continue;
            };
            stories.push(Story {
                feed: feed_index,
                story: story_id,
                signature: original,
            });
            for (t, b) in variants(&title, &body) {
                if let Some(signature) = Signature::of(&t, None, Some(&b)) {
                    stories.push(Story {
                        feed: feed_index,
                        story: story_id,
                        signature,
                    });
                }
            }
            story_id += 1;
        }
    }
    stories
}

fn strip(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// (precision, recall, true pairs, predicted pairs) at `threshold`, over
/// every pair within a feed.
fn measure(stories: &[Story], threshold: f64) -> (f64, f64, usize, usize) {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (i, a) in stories.iter().enumerate() {
        for b in &stories[i + 1..] {
            if a.feed != b.feed {
                continue;
            }
            let same = a.story == b.story;
            let predicted = a.signature.same_story(&b.signature, threshold);
            match (same, predicted) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fneg += 1,
                _ => {}
            }
        }
    }
    let precision = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    (precision, recall, tp + fneg, tp + fp)
}

#[test]
fn the_default_threshold_keeps_distinct_stories_apart_and_finds_wire_copies() {
    let Some(shared) = shared_dir() else { return };
    let stories = corpus(&shared);
    let originals = stories.iter().map(|s| s.story).max().unwrap() + 1;
    assert!(
        originals >= 150,
        "a corpus worth measuring: {originals} stories"
    );
    for threshold in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let (p, r, truth, predicted) = measure(&stories, threshold);
        println!("threshold {threshold:.1}: precision {p:.4} recall {r:.4} ({truth} true pairs, {predicted} predicted, {originals} stories, {} texts)", stories.len());
    }
    let threshold = tributary::config::DedupConfig::default().threshold;
    let (precision, recall, _, _) = measure(&stories, threshold);
    assert!(
        precision >= MIN_PRECISION,
        "precision {precision} at {threshold}"
    );
    assert!(recall >= MIN_RECALL, "recall {recall} at {threshold}");
}
