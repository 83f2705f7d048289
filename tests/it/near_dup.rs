//! Near-duplicate detection measured on a labelled corpus: real stories
//! from the shared fixture feeds, each with generated wire-style variants
//! (same story), against every other story of the same feed (same outlet,
//! same vocabulary, different story). Precision matters more than recall.

use crate::helpers::*;
use tributary::cluster::Signature;
use tributary::parse::parse_feed;

/// Measured with the default threshold (0.6) on the corpus below (see
/// BENCHMARKS.md): precision 1.0000, recall 0.9821 over 5,964 true pairs
/// among 1,988 texts of 284 stories (0.9487 before containment counted).
/// The test fails if either drops.
const MIN_PRECISION: f64 = 1.0;
const MIN_RECALL: f64 = 0.982;

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

/// The held-out corpus of issue #22, built from feeds the measure above
/// never saw and labelled by construction before any tuning (BENCHMARKS.md
/// lists the generator bugs fixed since): per story, 4-6 outlets' copies
/// of the wire text (1-3% of the words changed or dropped, half with a
/// wire byline, the closing sentence dropped or
/// another added, each under its own headline), and as hard negatives
/// every other story of the same feed (consecutive stories, often on one
/// subject) and templated siblings: the same text about other figures and
/// other names, with outlet copies of their own.
mod held_out {
    use super::*;

    /// Feeds with several-sentence stories that `corpus` above leaves out.
    const FEEDS: [&str; 10] = [
        "uol_noticias_rss2_latin1_nodecl.xml",
        "jn_pt_rss2_iso8859-1.xml",
        "nhs_northwest_news_rss2.xml",
        "google_ads_devblog_feedburner_atom.xml",
        "biorxiv_plant_rss1_rdf_prism.xml",
        "oren_ru_rss2_windows-1251.xml",
        "macworld_rss2_no_xmldecl.xml",
        "daringfireball_atom.xml",
        "rubenerd_rss2_xml_base.xml",
        "scriptingnews_rss2_source_ns.xml",
    ];
    /// Stories shorter than this have no closing sentence to spare.
    const MIN_WORDS: usize = 40;
    const BYLINES: [&str; 4] = ["AFP - ", "(Reuters) - ", "PARIS (AFP) - ", "AP - "];
    const CLOSINGS: [&str; 4] = [
        "More details are expected later in the day.",
        "The agency said it would publish further figures next week.",
        "This story has been updated with additional reporting.",
        "Officials did not immediately respond to a request for comment.",
    ];
    const FILLERS: [&str; 6] = ["also", "reportedly", "then", "now", "still", "officially"];
    const NAMES: [&str; 8] = [
        "Alvarez",
        "Okafor",
        "Lindqvist",
        "Tanaka",
        "Moreau",
        "Kowalski",
        "Haddad",
        "Nguyen",
    ];

    /// splitmix64: the corpus is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, p: f64) -> bool {
            ((self.next() >> 11) as f64) < p * (1u64 << 53) as f64
        }
    }

    pub(super) struct Text {
        pub(super) feed: usize,
        pub(super) story: usize,
        /// 0 for the copy an ingest would see first.
        pub(super) copy: usize,
        pub(super) signature: Signature,
    }

    /// One outlet's copy of (`title`, `body`).
    fn outlet_copy(rng: &mut Rng, title: &str, body: &str) -> (String, String) {
        let rate = 0.01 + 0.02 * (rng.next() % 1000) as f64 / 1000.0;
        let mut sentences: Vec<String> = body
            .split_inclusive(". ")
            .map(|s| s.trim().to_string())
            .collect();
        match rng.below(3) {
            0 if sentences.len() > 2 => {
                sentences.pop();
            }
            1 => sentences.push(CLOSINGS[rng.below(CLOSINGS.len())].to_string()),
            _ => {}
        }
        // Outlets keep the figures; they change or drop other words.
        let words: Vec<String> = sentences
            .join(" ")
            .split_whitespace()
            .filter_map(|w| {
                if w.chars().any(|c| c.is_ascii_digit()) || !rng.chance(rate) {
                    return Some(w.to_string());
                }
                if rng.chance(0.5) {
                    None
                } else {
                    Some(FILLERS[rng.below(FILLERS.len())].to_string())
                }
            })
            .collect();
        let mut text = words.join(" ");
        if rng.chance(0.5) {
            text = format!("{}{text}", BYLINES[rng.below(BYLINES.len())]);
        }
        let headline = match rng.below(5) {
            0 => title.to_string(),
            1 => format!("UPDATE: {title}"),
            2 => format!("{title}, officials say"),
            3 => format!("Breaking: {title}"),
            _ => format!("{title} (updated)"),
        };
        (headline, text)
    }

    /// The same template about other figures and other names: every figure
    /// gets other digits, every name of the headline (a capitalized word
    /// past its first that the text never writes in lower case) another
    /// name wherever it recurs.
    fn sibling(rng: &mut Rng, title: &str, body: &str) -> Option<(String, String)> {
        let pieces = |text: &str| -> Vec<String> {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        };
        let has_digits = |w: &str| w.chars().any(|c| c.is_ascii_digit());
        let lower: Vec<String> = pieces(body)
            .into_iter()
            .filter(|w| w.chars().next().is_some_and(char::is_lowercase))
            .collect();
        let mut names: Vec<String> = Vec::new();
        for w in pieces(title).into_iter().skip(1) {
            if w.chars().next().is_some_and(char::is_uppercase)
                && !["I", "A"].contains(&w.as_str())
                && !has_digits(&w)
                && !lower.contains(&w.to_lowercase())
                && !names.contains(&w)
            {
                names.push(w);
            }
        }
        // What tells templated stories apart is in the headline or the
        // figures; a text with neither has no templated sibling, nor one
        // whose figures are all in the closing sentence an outlet may drop.
        let figures = |text: &str| pieces(text).iter().filter(|w| has_digits(w)).count();
        let kept = body.rsplit_once(". ").map_or("", |(kept, _)| kept);
        if names.is_empty() && figures(title) == 0 && figures(kept) < 2 {
            return None;
        }
        let offset = 1 + rng.below(8) as u32;
        let rewrite_word = |w: &str| -> String {
            if has_digits(w) {
                w.chars()
                    .map(|c| match c.to_digit(10) {
                        Some(d) => char::from_digit((d + offset) % 10, 10).unwrap(),
                        None => c,
                    })
                    .collect()
            } else if let Some(i) = names.iter().position(|n| n == w) {
                NAMES[i % NAMES.len()].to_string()
            } else {
                w.to_string()
            }
        };
        let rewrite = |text: &str| {
            let mut out = String::with_capacity(text.len());
            let mut word = String::new();
            for c in text.chars().chain(std::iter::once(' ')) {
                if c.is_alphanumeric() {
                    word.push(c);
                    continue;
                }
                out.push_str(&rewrite_word(&word));
                word.clear();
                out.push(c);
            }
            out.pop();
            out
        };
        Some((rewrite(title), rewrite(body)))
    }

    pub(super) fn corpus(shared: &std::path::Path) -> Vec<Text> {
        let base = url::Url::parse("https://example.org/").unwrap();
        let mut rng = Rng(22);
        let mut texts = Vec::new();
        let mut story = 0;
        for (feed_index, file) in FEEDS.iter().enumerate() {
            let bytes = read(&shared.join("fixtures/real").join(file));
            let feed = parse_feed(&bytes, None, &base, chrono::Utc::now()).unwrap();
            for entry in feed.entries {
                let title = entry.title.clone().unwrap_or_default();
                let body = entry
                    .content
                    .as_deref()
                    .map(strip)
                    .or(entry.summary.as_deref().map(strip))
                    .unwrap_or_default();
                if body.split_whitespace().count() < MIN_WORDS {
                    continue;
                }
                let mut stories = vec![(title.clone(), body.clone())];
                if let Some((t, b)) = sibling(&mut rng, &title, &body) {
                    // Figures the signature never sees (markup) tell nothing.
                    let figures =
                        |t: &str, b: &str| Signature::of(t, None, Some(b)).map(|s| s.numbers);
                    if t != title || figures(&t, &b) != figures(&title, &body) {
                        stories.push((t, b));
                    }
                }
                for (title, body) in stories {
                    let outlets = 4 + rng.below(3);
                    let mut copy = 0;
                    for _ in 0..outlets {
                        let (t, b) = outlet_copy(&mut rng, &title, &body);
                        if let Some(signature) = Signature::of(&t, None, Some(&b)) {
                            texts.push(Text {
                                feed: feed_index,
                                story,
                                copy,
                                signature,
                            });
                            copy += 1;
                        }
                    }
                    story += 1;
                }
            }
        }
        texts
    }
}

/// Whether an ingest of `a` finds stored `b` and calls it the same story:
/// they share a band key (the candidates of `store::near_dup`) and
/// `same_story` holds.
fn merged(a: &Signature, b: &Signature, threshold: f64) -> bool {
    let keys = b.band_keys();
    a.band_keys().iter().any(|k| keys.contains(k)) && a.same_story(b, threshold)
}

#[test]
fn held_out_wire_copies_are_merged_and_distinct_stories_are_kept_apart() {
    // Every pair of texts of one feed counts, as if either were stored
    // first: a copy is merged only into the article it is compared with.
    let Some(shared) = shared_dir() else { return };
    let texts = held_out::corpus(&shared);
    let stories = texts.iter().map(|t| t.story).max().unwrap() + 1;
    let threshold = tributary::config::DedupConfig::default().threshold;
    let (mut tp, mut fp, mut fneg, mut no_candidate) = (0usize, 0usize, 0usize, 0usize);
    for (i, a) in texts.iter().enumerate() {
        for b in &texts[i + 1..] {
            if a.feed != b.feed {
                continue;
            }
            let predicted = merged(&a.signature, &b.signature, threshold);
            match (a.story == b.story, predicted) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => {
                    fneg += 1;
                    let keys = b.signature.band_keys();
                    if !a.signature.band_keys().iter().any(|k| keys.contains(k)) {
                        no_candidate += 1;
                    }
                }
                _ => {}
            }
        }
    }
    // Story level: every later copy merged into the first.
    let mut whole = std::collections::HashMap::<usize, bool>::new();
    for t in &texts {
        let first = texts
            .iter()
            .find(|f| f.story == t.story && f.copy == 0)
            .unwrap();
        let ok = t.copy == 0 || merged(&t.signature, &first.signature, threshold);
        *whole.entry(t.story).or_insert(true) &= ok;
    }
    let merged_stories = whole.values().filter(|ok| **ok).count();
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    println!(
        "held out: precision {precision:.4} recall {recall:.4} ({} true pairs, {fp} false, {fneg} missed of which {no_candidate} not candidates; {} texts, {stories} stories, {merged_stories} with every copy merged into the first)",
        tp + fneg,
        texts.len()
    );
    // Issue #22's targets. Measured: precision 1.0000, recall 0.9609 (0.9151
    // before containment counted), 269 of 301 stories whole (245 before).
    assert!(precision >= 1.0, "precision {precision}");
    assert!(recall >= 0.95, "recall {recall}");
}
