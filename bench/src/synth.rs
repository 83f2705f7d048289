//! The synthetic corpus the benchmarks share: deterministic RSS 2.0 feeds of
//! news-like entries (~1.2 KB each, 4 tags from a 200-tag vocabulary), so
//! every run and every machine measures the same bytes.
//!
//! Included by the `tributary-bench` binary and by the daemon's criterion
//! benches (benches/, by `#[path]`), hence the `dead_code` allowances: each
//! uses a part.
#![allow(dead_code)]

use std::fmt::Write as _;

/// Tags in the vocabulary; entries draw [`TAGS_PER_ENTRY`] of them.
pub const TAG_VOCABULARY: usize = 200;
pub const TAGS_PER_ENTRY: usize = 4;

/// Words the text is drawn from: common English and news words that no
/// tag rule of the harness matches ...
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "by",
    "at",
    "from",
    "said",
    "government",
    "minister",
    "president",
    "election",
    "report",
    "city",
    "people",
    "year",
    "week",
    "country",
    "police",
    "court",
    "vote",
    "border",
    "talks",
    "energy",
    "school",
    "union",
    "strike",
    "trade",
    "bank",
    "price",
    "peace",
    "deal",
    "summit",
    "crisis",
    "fire",
    "team",
    "record",
    "science",
    "space",
    "study",
    "parliament",
    "reform",
    "protest",
    "opposition",
    "refugees",
    "oil",
    "gas",
    "wheat",
    "teachers",
    "students",
    "workers",
    "farmers",
    "journalists",
    "officials",
    "leaders",
    "analysts",
    "residents",
    "investigation",
    "agreement",
    "decision",
    "statement",
    "announcement",
    "measures",
];

/// ... and, one word in [`TOPICAL_ONE_IN`], the places, names and topics
/// the rules look for: each rule then tags about one entry in seven, as a
/// newsroom's country and topic rules do, rather than nearly all of them.
const TOPICAL: &[&str] = &[
    "Ukraine",
    "Kyiv",
    "Zelensky",
    "Russia",
    "Moscow",
    "Putin",
    "China",
    "Beijing",
    "Xi",
    "Jinping",
    "France",
    "Paris",
    "Macron",
    "Senegal",
    "Dakar",
    "Nigeria",
    "Mali",
    "Africa",
    "inflation",
    "growth",
    "exports",
    "budget",
    "market",
    "economy",
    "climate",
    "drought",
    "flood",
    "storm",
    "match",
    "league",
    "coach",
    "final",
    "vaccine",
    "hospital",
    "health",
    "ceasefire",
    "sanctions",
    "army",
    "Brazil",
    "India",
    "Europe",
    "Washington",
    "London",
    "Berlin",
    "Tokyo",
];
const TOPICAL_ONE_IN: usize = 40;

/// Tag rules a newsroom might configure, as TOML: word lists and one regex.
pub const TAG_RULES_TOML: &str = r#"
[[tag_rule]]
tag = "Ukraine"
any = ["Ukraine", "Kyiv", "Zelensky"]

[[tag_rule]]
tag = "Russia"
any = ["Russia", "Moscow", "Putin"]

[[tag_rule]]
tag = "China"
any = ["China", "Beijing", "Xi Jinping"]

[[tag_rule]]
tag = "France"
any = ["France", "Paris", "Macron"]

[[tag_rule]]
tag = "Africa"
any = ["Senegal", "Dakar", "Nigeria", "Mali", "Africa"]

[[tag_rule]]
tag = "Economy"
any = ["inflation", "growth", "exports", "budget", "market"]
fields = ["title", "summary"]

[[tag_rule]]
tag = "Climate"
any = ["climate", "drought", "flood", "storm"]

[[tag_rule]]
tag = "Sport"
any = ["match", "league", "coach", "final"]
fields = ["title", "categories"]

[[tag_rule]]
tag = "Health"
any = ["vaccine", "hospital", "health"]

[[tag_rule]]
tag = "Conflict"
regex = "(?i)\\b(ceasefire|sanctions|army)\\b"
fields = ["title", "summary"]
"#;

/// splitmix64: tiny, seedable, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The label of tag `i`; its term is `topic-NNN`.
pub fn tag_label(i: usize) -> String {
    format!("Topic {i:03}")
}

pub fn tag_term(i: usize) -> String {
    format!("topic-{i:03}")
}

/// The path a source's feed is served at.
pub fn feed_path(source: usize) -> String {
    format!("/sources/s{source:05}.xml")
}

pub fn source_name(source: usize) -> String {
    format!("s{source:05}")
}

fn words(rng: &mut Rng, out: &mut String, n: usize) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let pool = match rng.below(TOPICAL_ONE_IN) {
            0 => TOPICAL,
            _ => WORDS,
        };
        out.push_str(pool[rng.below(pool.len())]);
    }
}

/// One source's RSS 2.0 document with `entries` items. `origin` is the
/// `http://host:port` the articles' links point at. Entries are newest
/// first, an hour apart, ending at a fixed date so reruns match.
pub fn rss_feed(origin: &str, source: usize, entries: usize) -> String {
    // 2026-01-01T00:00:00Z minus a per-source offset, then an hour per entry:
    // a first fetch finds months of backlog, dated in no order across sources.
    let newest = 1_767_225_600 - (source as i64 % 3600) * 60;
    rss_feed_of(origin, source, entries, 0, newest, 3600)
}

/// The feed of `source` at `generation`: entries no earlier generation had
/// (their guids and links carry it), the newest dated `newest` (Unix
/// seconds), each next one `spacing` seconds earlier.
pub fn rss_feed_of(
    origin: &str,
    source: usize,
    entries: usize,
    generation: u64,
    newest: i64,
    spacing: i64,
) -> String {
    let mut rng = Rng::new(0x7269_7665_7200_0000 ^ source as u64 ^ generation << 40);
    let id = |e: usize| match generation {
        0 => e.to_string(),
        g => format!("g{g}-{e}"),
    };
    let name = source_name(source);
    let mut out = String::with_capacity(1400 * entries + 800);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel>\n\
         <title>Synthetic outlet {name}</title>\n<link>{origin}/{name}/</link>\n\
         <description>Benchmark feed {source}</description>\n<language>en</language>\n"
    );
    for e in 0..entries {
        let published = chrono::DateTime::from_timestamp(newest - e as i64 * spacing, 0)
            .expect("in range")
            .to_rfc2822();
        let mut title = String::new();
        words(&mut rng, &mut title, 8);
        let mut summary = String::new();
        words(&mut rng, &mut summary, 28);
        let _ = write!(
            out,
            "<item>\n<title>{title}</title>\n\
             <link>{origin}/{name}/articles/{id}.html?utm_source=rss&amp;utm_medium=feed&amp;xtor=RSS-1</link>\n\
             <guid isPermaLink=\"false\">{name}-{id}</guid>\n<pubDate>{published}</pubDate>\n\
             <dc:creator>Reporter {}</dc:creator>\n<description>{summary}</description>\n",
            rng.below(50),
            id = id(e),
        );
        let mut chosen = [usize::MAX; TAGS_PER_ENTRY];
        for slot in 0..TAGS_PER_ENTRY {
            let mut t = rng.below(TAG_VOCABULARY);
            while chosen[..slot].contains(&t) {
                t = rng.below(TAG_VOCABULARY);
            }
            chosen[slot] = t;
            let _ = writeln!(out, "<category>{}</category>", tag_label(t));
        }
        out.push_str("<content:encoded><![CDATA[");
        for p in 0..3 {
            out.push_str("<p>");
            words(&mut rng, &mut out, 25);
            if p == 1 {
                let _ = write!(
                    out,
                    " <a href=\"/{name}/related/{}.html\">read more</a>",
                    rng.below(1000)
                );
            }
            out.push_str(".</p>");
        }
        out.push_str("]]></content:encoded>\n</item>\n");
    }
    out.push_str("</channel>\n</rss>\n");
    out
}
