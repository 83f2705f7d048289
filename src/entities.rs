//! Automatic entity tags (`[entities]`, docs/TAGS-AND-DEDUP.md "Entity
//! tags"): the countries, cities, regions, organizations and people an
//! entry is about, found offline and deterministically.
//!
//! Places and organizations come from gazetteers compiled in
//! (`src/entities/*.tsv`, sources and licences in docs/TAGS-AND-DEDUP.md),
//! matched in one Aho-Corasick pass over the folded text; organizations no
//! list has are found by their head noun ("… Authority", "Ministry of …").
//! People have no list: they are runs of two to four capitalized words
//! that no stop list, place or organization claims. People and
//! organizations are kept only when the article confirms them (in the
//! title or the lead, named twice, or, for people, introduced by a role or
//! a "said").

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::config::LabelCase;
use crate::model::{Entry, Tag};
use crate::text::html_to_text;

const PLACES: &str = include_str!("entities/places.tsv");
const ORGANIZATIONS: &str = include_str!("entities/organizations.tsv");
/// Multi-word city names that are never people (not tagged themselves).
const PLACE_NAMES: &str = include_str!("entities/place_names.txt");

/// How much of an entry's text is read: bounds the CPU one hostile entry
/// can cost. Real articles name what they are about well before this.
const MAX_TEXT_BYTES: usize = 32 * 1024;
/// At most this many entity tags per entry.
const MAX_TAGS: usize = 40;
/// Text this long from the start of the body is the lead when the entry
/// has no summary.
const LEAD_BYTES: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Country,
    City,
    /// A US state, UK nation or Canadian province.
    State,
    Region,
    Organization,
}

impl Kind {
    fn list(self) -> &'static str {
        match self {
            Kind::Country => "countries list",
            Kind::City => "cities list",
            Kind::State => "states and provinces list",
            Kind::Region => "regions list",
            Kind::Organization => "organizations list",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Country => "country",
            Kind::City => "city",
            Kind::State => "state or province",
            Kind::Region => "region",
            Kind::Organization => "organization",
        }
    }
}

#[derive(Debug)]
struct Entity {
    kind: Kind,
    label: &'static str,
    /// A country's or city's region.
    region: Option<usize>,
}

#[derive(Debug)]
struct Name {
    entity: usize,
    /// Written in capitals in the list (`WHO`, `US`): matches only so.
    acronym: bool,
}

struct Gazetteer {
    entities: Vec<Entity>,
    names: Vec<Name>,
    matcher: AhoCorasick,
    /// Every single folded word of the lists: such a word is not part of a
    /// person's name ("Russian President Vladimir Putin").
    words: std::collections::HashSet<String>,
    /// Folded multi-word place names that are not people ("las vegas").
    not_people: std::collections::HashSet<String>,
}

const REGIONS: &[(&str, &[&str])] = &[
    ("Africa", &["Africa", "African"]),
    ("Asia", &["Asia", "Asian"]),
    ("Europe", &["Europe", "European"]),
    ("North America", &["North America", "North American"]),
    (
        "South America",
        &["South America", "South American", "Latin America"],
    ),
    ("Oceania", &["Oceania"]),
    ("Antarctica", &["Antarctica"]),
    ("Middle East", &["Middle East"]),
];

static GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::build);

impl Gazetteer {
    fn build() -> Gazetteer {
        let mut entities = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut regions: HashMap<&str, usize> = HashMap::new();
        let mut add_names = |entity: usize, written: &mut dyn Iterator<Item = &'static str>| {
            for name in written {
                let folded = fold_marked(name).text;
                if folded.is_empty() {
                    continue;
                }
                let acronym = name
                    .chars()
                    .filter(|c| c.is_alphabetic())
                    .all(char::is_uppercase);
                patterns.push(folded);
                names.push(Name { entity, acronym });
            }
        };
        for (label, written) in REGIONS {
            regions.insert(label, entities.len());
            add_names(entities.len(), &mut written.iter().copied());
            entities.push(Entity {
                kind: Kind::Region,
                label,
                region: None,
            });
        }
        for line in PLACES.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&'static str> = line.split('\t').collect();
            // The country column is the generator's: a city does not tag
            // its country (docs/TAGS-AND-DEDUP.md "Entity tags").
            let [kind, label, _country, region, written] = cols[..] else {
                continue;
            };
            let kind = match kind {
                "country" => Kind::Country,
                "state" => Kind::State,
                _ => Kind::City,
            };
            let region = regions.get(region).copied();
            add_names(entities.len(), &mut written.split('|'));
            entities.push(Entity {
                kind,
                label,
                region,
            });
        }
        for line in ORGANIZATIONS.lines().filter(|l| !l.starts_with('#')) {
            let Some((label, written)) = line.split_once('\t') else {
                continue;
            };
            add_names(entities.len(), &mut written.split('|'));
            entities.push(Entity {
                kind: Kind::Organization,
                label,
                region: None,
            });
        }
        let words = patterns
            .iter()
            .filter(|p| !p.contains(' '))
            .cloned()
            .collect();
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .expect("the gazetteers are small enough for Aho-Corasick");
        let not_people = PLACE_NAMES
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| fold_marked(l).text)
            .collect();
        Gazetteer {
            entities,
            names,
            matcher,
            words,
            not_people,
        }
    }
}

/// Text folded as tag rules fold it (`text::fold`), with typographic
/// apostrophes made plain, and for each byte whether the character it
/// came from was a capital.
#[derive(Debug, PartialEq)]
struct Marked {
    text: String,
    upper: Vec<bool>,
    /// For each byte, where its character starts in the original text.
    source: Vec<usize>,
}

fn fold_marked(s: &str) -> Marked {
    // Most English text is all ASCII: one pass per map, no per-byte pushes.
    if s.is_ascii() {
        return Marked {
            text: s.to_ascii_lowercase(),
            upper: s.bytes().map(|b| b.is_ascii_uppercase()).collect(),
            source: (0..s.len()).collect(),
        };
    }
    fold_marked_chars(s)
}

/// [`fold_marked`] character by character: any text.
fn fold_marked_chars(s: &str) -> Marked {
    let mut text = String::with_capacity(s.len());
    let mut upper = Vec::with_capacity(s.len());
    let mut source = Vec::with_capacity(s.len());
    for (at, c) in s.char_indices() {
        let up = c.is_uppercase();
        let c = if c == '\u{2019}' { '\'' } else { c };
        if c.is_ascii() {
            text.push(c.to_ascii_lowercase());
            upper.push(up);
            source.push(at);
            continue;
        }
        for d in std::iter::once(c)
            .nfd()
            .filter(|d| !is_combining_mark(*d))
            .flat_map(char::to_lowercase)
        {
            let d = if d == 'ς' { 'σ' } else { d };
            text.push(d);
            upper.extend(std::iter::repeat_n(up, d.len_utf8()));
            source.extend(std::iter::repeat_n(at, d.len_utf8()));
        }
    }
    Marked {
        text,
        upper,
        source,
    }
}

/// Words that may start a sentence or qualify a name without being part of
/// one: "During", "Additionally", "In summary" never begin a person, and a
/// place after them is still a place.
const FUNCTION_WORDS: &[&str] = &[
    "a",
    "about",
    "according",
    "additionally",
    "after",
    "against",
    "all",
    "also",
    "although",
    "among",
    "an",
    "and",
    "another",
    "any",
    "are",
    "as",
    "at",
    "because",
    "before",
    "being",
    "between",
    "both",
    "but",
    "by",
    "central",
    "despite",
    "did",
    "do",
    "does",
    "dozens",
    "during",
    "each",
    "east",
    "eastern",
    "eight",
    "either",
    "even",
    "every",
    "few",
    "finally",
    "first",
    "five",
    "for",
    "former",
    "four",
    "from",
    "further",
    "furthermore",
    "greater",
    "had",
    "has",
    "have",
    "he",
    "her",
    "here",
    "his",
    "how",
    "however",
    "hundreds",
    "i",
    "if",
    "in",
    "including",
    "indeed",
    "inside",
    "instead",
    "into",
    "is",
    "it",
    "its",
    "just",
    "last",
    "like",
    "many",
    "me",
    "meanwhile",
    "millions",
    "more",
    "moreover",
    "most",
    "my",
    "new",
    "next",
    "nine",
    "no",
    "nor",
    "north",
    "northeast",
    "northern",
    "northwest",
    "not",
    "now",
    "of",
    "on",
    "one",
    "only",
    "or",
    "other",
    "our",
    "outside",
    "over",
    "overall",
    "seven",
    "several",
    "she",
    "since",
    "six",
    "so",
    "some",
    "south",
    "southeast",
    "southern",
    "southwest",
    "still",
    "such",
    "summary",
    "ten",
    "than",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "though",
    "thousands",
    "three",
    "through",
    "to",
    "today",
    "tomorrow",
    "too",
    "two",
    "under",
    "until",
    "upon",
    "we",
    "west",
    "western",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "yesterday",
    "yet",
    "you",
    "your",
];

/// Titles and roles: not part of a name, and a name right after one is
/// confirmed as a person's ("spokesman Guo Jiakun").
const ROLES: &[&str] = &[
    "actor",
    "actress",
    "adviser",
    "advisor",
    "ambassador",
    "archbishop",
    "author",
    "bishop",
    "captain",
    "cardinal",
    "ceo",
    "chair",
    "chairman",
    "chairwoman",
    "chancellor",
    "chief",
    "coach",
    "colonel",
    "commander",
    "commissioner",
    "congressman",
    "congresswoman",
    "counterpart",
    "deputy",
    "director",
    "dr",
    "emir",
    "envoy",
    "executive",
    "founder",
    "gen",
    "general",
    "gov",
    "governor",
    "head",
    "judge",
    "justice",
    "king",
    "lawmaker",
    "lawyer",
    "leader",
    "lieutenant",
    "lord",
    "mayor",
    "minister",
    "mr",
    "mrs",
    "ms",
    "official",
    "pastor",
    "pope",
    "premier",
    "president",
    "prince",
    "princess",
    "prof",
    "professor",
    "prosecutor",
    "queen",
    "rep",
    "representative",
    "sardar",
    "secretary",
    "sen",
    "senator",
    "sheikh",
    "shri",
    "sir",
    "smt",
    "speaker",
    "spokesman",
    "spokesperson",
    "spokeswoman",
    "striker",
    "vice",
    "writer",
];

/// Words that end a person candidate altogether: a run holding one names a
/// thing ("Peking University", "White House", "Foreign Ministry").
const INSTITUTIONS: &[&str] = &[
    "academy",
    "administration",
    "agency",
    "agreement",
    "airlines",
    "airport",
    "alliance",
    "army",
    "assembly",
    "association",
    "authority",
    "award",
    "bank",
    "bill",
    "board",
    "bridge",
    "bureau",
    "caucus",
    "center",
    "centers",
    "centre",
    "centres",
    "championship",
    "church",
    "city",
    "club",
    "college",
    "commission",
    "committee",
    "company",
    "conference",
    "congress",
    "corp",
    "corporation",
    "council",
    "county",
    "court",
    "creek",
    "cup",
    "daily",
    "day",
    "department",
    "district",
    "embassy",
    "enterprises",
    "federation",
    "festival",
    "force",
    "forum",
    "foundation",
    "fund",
    "games",
    "government",
    "group",
    "guard",
    "hall",
    "hospital",
    "house",
    "images",
    "inc",
    "index",
    "institute",
    "institution",
    "island",
    "islands",
    "journal",
    "lake",
    "law",
    "league",
    "library",
    "ltd",
    "media",
    "metro",
    "ministry",
    "monument",
    "mosque",
    "mountain",
    "movement",
    "museum",
    "navy",
    "network",
    "news",
    "office",
    "olympics",
    "organisation",
    "organization",
    "palace",
    "park",
    "parliament",
    "party",
    "police",
    "post",
    "press",
    "prize",
    "program",
    "programme",
    "project",
    "province",
    "region",
    "republic",
    "river",
    "road",
    "sabha",
    "school",
    "sea",
    "senate",
    "service",
    "services",
    "society",
    "square",
    "station",
    "street",
    "summit",
    "team",
    "temple",
    "times",
    "tower",
    "township",
    "tracker",
    "treaty",
    "tribunal",
    "union",
    "university",
    "valley",
    "war",
    "week",
    "yojana",
];

/// Words in capitals that are never names: dates, and the other
/// capitalized common words of news prose.
const NOT_NAMES: &[&str] = &[
    "april",
    "arab",
    "august",
    "best",
    "biggest",
    "breaking",
    "christian",
    "click",
    "communist",
    "conservative",
    "continue",
    "december",
    "defence",
    "defense",
    "democrat",
    "democratic",
    "economy",
    "email",
    "exclusive",
    "february",
    "federal",
    "finance",
    "follow",
    "foreign",
    "friday",
    "global",
    "grand",
    "greatest",
    "green",
    "health",
    "interior",
    "international",
    "islamic",
    "january",
    "jewish",
    "july",
    "june",
    "labour",
    "latest",
    "liberal",
    "live",
    "march",
    "may",
    "monday",
    "more",
    "muslim",
    "national",
    "november",
    "october",
    "opinion",
    "orthodox",
    "photo",
    "prime",
    "read",
    "republican",
    "royal",
    "saturday",
    "september",
    "share",
    "sign",
    "socialist",
    "state",
    "subscribe",
    "sunday",
    "supreme",
    "thursday",
    "trade",
    "tuesday",
    "united",
    "update",
    "updated",
    "video",
    "watch",
    "wednesday",
    "world",
];

/// Lowercase words allowed inside a name ("Ursula von der Leyen").
const PARTICLES: &[&str] = &[
    "al", "bin", "da", "das", "de", "del", "della", "der", "di", "do", "dos", "du", "el", "ibn",
    "la", "le", "van", "von",
];

/// What may follow a name as its last word, in capitals or not.
const GENERATIONS: &[&str] = &["ii", "iii", "iv", "jr", "sr"];

/// Verbs of speech: a name right before or after one is a person's.
const SAID: &[&str] = &[
    "added",
    "announced",
    "argued",
    "insisted",
    "said",
    "says",
    "stated",
    "told",
    "warned",
    "wrote",
];

fn listed(list: &[&str], folded: &str) -> bool {
    list.binary_search(&folded).is_ok()
}

/// One text of an entry, folded and marked.
struct Segment {
    original: String,
    marked: Marked,
    /// Mostly capitalized words (a headline in title case or capitals):
    /// capitals there say nothing about names.
    headline: bool,
    /// Its words' spans in the folded text (`words`), found once.
    words: Vec<(usize, usize)>,
}

impl Segment {
    fn new(text: &str) -> Segment {
        let mut text = text;
        if text.len() > MAX_TEXT_BYTES {
            let mut end = MAX_TEXT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text = &text[..end];
        }
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.chars().next().is_some_and(char::is_alphabetic))
            .collect();
        let capitalized = words
            .iter()
            .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
            .count();
        let mut segment = Segment {
            original: text.to_string(),
            marked: fold_marked(text),
            headline: words.len() >= 3 && capitalized * 10 >= words.len() * 6,
            words: Vec::new(),
        };
        segment.words = words_of(segment.text());
        segment
    }

    fn text(&self) -> &str {
        &self.marked.text
    }

    fn is_word_char(c: char) -> bool {
        c.is_alphanumeric()
    }

    /// Whether `start..end` is a whole word (or phrase).
    fn whole(&self, start: usize, end: usize) -> bool {
        let text = self.text();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        !before.is_some_and(Self::is_word_char) && !after.is_some_and(Self::is_word_char)
    }

    /// The word right before `start`, when only spaces or a comma separate
    /// them: "the bureau director, Christopher Wray".
    fn word_across_comma_before(&self, start: usize) -> Option<&str> {
        let text = &self.text()[..start];
        let trimmed = text.trim_end_matches(' ');
        let trimmed = trimmed.strip_suffix(',').unwrap_or(trimmed);
        self.word_before(trimmed.len() + usize::from(trimmed.len() < text.len()))
            .filter(|_| trimmed.len() < text.len())
            .map(|(_, w)| w)
    }

    /// The word right after `end`, across spaces and one comma.
    fn word_across_comma_after(&self, end: usize) -> Option<&str> {
        let text = &self.text()[end..];
        let rest = text.strip_prefix(',').unwrap_or(text);
        self.word_after(end + (text.len() - rest.len()))
            .map(|(_, w)| w)
    }

    /// The word right before `start`, when only spaces separate them.
    fn word_before(&self, start: usize) -> Option<(usize, &str)> {
        let text = &self.text()[..start];
        let trimmed = text.trim_end_matches(' ');
        if trimmed.len() == text.len() && start > 0 {
            return None;
        }
        let begin = trimmed
            .char_indices()
            .rev()
            .take_while(|(_, c)| Self::is_word_char(*c))
            .last()
            .map(|(i, _)| i)?;
        Some((begin, &trimmed[begin..]))
    }

    /// The word right after `end`, when only spaces separate them.
    fn word_after(&self, end: usize) -> Option<(usize, &str)> {
        let text = &self.text()[end..];
        let trimmed = text.trim_start_matches(' ');
        if trimmed.len() == text.len() {
            return None;
        }
        let begin = end + (text.len() - trimmed.len());
        let len: usize = trimmed
            .chars()
            .take_while(|c| Self::is_word_char(*c))
            .map(char::len_utf8)
            .sum();
        (len > 0).then(|| (begin, &self.text()[begin..begin + len]))
    }

    /// The original text of the folded span `start..end`.
    fn original(&self, start: usize, end: usize) -> &str {
        let source = &self.marked.source;
        let from = source.get(start).copied().unwrap_or(self.original.len());
        let to = source.get(end).copied().unwrap_or(self.original.len());
        self.original.get(from..to).unwrap_or_default()
    }

    fn capital_at(&self, i: usize) -> bool {
        self.marked.upper.get(i).copied().unwrap_or(false)
    }

    /// A capitalized word that is not a function word: the start or end of
    /// another name ("Michael Jordan", "Paris Saint-Germain").
    fn is_name_word(&self, word: Option<(usize, &str)>) -> bool {
        word.is_some_and(|(i, w)| self.capital_at(i) && !listed(FUNCTION_WORDS, w))
    }

    /// A capital after three small letters: a brand ("SmartCity",
    /// "YouTube"), not a name ("McLeod", "LaBelle", "MacArthur").
    fn camel_case(&self, start: usize, end: usize) -> bool {
        let mut small = 0;
        for (i, c) in self.text()[start..end].char_indices() {
            if self.capital_at(start + i) {
                if small >= 3 {
                    return true;
                }
                small = 0;
            } else if c.is_alphabetic() {
                small += 1;
            }
        }
        false
    }

    fn all_capitals(&self, start: usize, end: usize) -> bool {
        self.text()[start..end]
            .char_indices()
            .filter(|(_, c)| c.is_alphabetic())
            .all(|(i, _)| self.capital_at(start + i))
    }
}

/// One entity tag and why it is there.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub tag: Tag,
    /// What `explain` shows: `entity: country "Chinese" (countries list)`.
    pub origin: String,
}

/// The label of the listed place or organization `name` is one of the
/// names of ("UN" -> "United Nations"), if any.
pub fn label_of(name: &str) -> Option<&'static str> {
    let gazetteer = &*GAZETTEER;
    let folded = fold_marked(name).text;
    gazetteer
        .matcher
        .find_overlapping_iter(&folded)
        .find(|m| m.start() == 0 && m.end() == folded.len())
        .map(|m| gazetteer.entities[gazetteer.names[m.pattern().as_usize()].entity].label)
}

/// The entity tags of one entry, in the order the text first names them:
/// each place followed by its country and region.
pub fn entities_for(entry: &Entry, case: LabelCase) -> Vec<Found> {
    // A title's " | " part is a byline or a section ("… | Cas Mudde").
    let title = entry.title.as_deref().unwrap_or("");
    let title = Segment::new(title.split(" | ").next().unwrap_or(title));
    let summary_text = entry.summary.as_deref().map(html_to_text);
    let content_text = entry.content.as_deref().map(html_to_text);
    // Many feeds give the same text as summary and body: read it once, or
    // every name in it would count twice.
    let summary_text = summary_text.filter(|summary| {
        let body = content_text
            .as_deref()
            .map(crate::text::collapse_whitespace);
        let summary = crate::text::collapse_whitespace(summary);
        !body.is_some_and(|body| body.contains(&summary))
    });
    let summary = Segment::new(summary_text.as_deref().unwrap_or(""));
    let content = Segment::new(content_text.as_deref().unwrap_or(""));
    let segments = [&title, &summary, &content];

    let mut out = Tagged::new(case);
    // What the lists and institution names claim is no person's name.
    let mut claimed: [Vec<Claim>; 3] = Default::default();
    let mut organizations = Mentions {
        // The lead: the start of the summary, or of the body without one.
        lead: if summary.text().is_empty() { 2 } else { 1 },
        found: Vec::new(),
    };
    for (which, segment) in segments.iter().enumerate() {
        places(
            which,
            segment,
            &mut out,
            &mut claimed[which],
            &mut organizations,
        );
    }
    institutions(&segments, &mut organizations, &mut claimed);
    for candidate in &organizations.found {
        if let Some(why) = candidate.confirmed(candidate.mentions) {
            out.push(&candidate.label, || {
                format!(
                    "entity: organization {:?} ({}, {why})",
                    candidate.written, candidate.list
                )
            });
        }
    }
    people(&segments, &claimed, &mut out);
    out.found
}

/// The organizations an entry names, each tagged only when confirmed as
/// people are: a name in passing ("dip a toe into NBA Twitter") is not
/// what the article is about.
struct Mentions {
    /// Which segment is the lead.
    lead: usize,
    found: Vec<Candidate>,
}

impl Mentions {
    /// Counts a mention of `label` at `start` of segment `which`; `None`
    /// when the name is new and may not start a candidate there.
    fn mention(
        &mut self,
        label: &str,
        which: usize,
        start: usize,
        new: impl FnOnce() -> Option<Candidate>,
    ) {
        let i = match self.found.iter().position(|c| c.label == label) {
            Some(i) => i,
            None => match new() {
                Some(candidate) => {
                    self.found.push(candidate);
                    self.found.len() - 1
                }
                None => return,
            },
        };
        let candidate = &mut self.found[i];
        candidate.mentions += 1;
        match which {
            0 => candidate.in_title = true,
            _ if which == self.lead && start < LEAD_BYTES => candidate.in_lead = true,
            _ => {}
        }
    }
}

struct Tagged {
    case: LabelCase,
    found: Vec<Found>,
    terms: std::collections::HashSet<String>,
}

impl Tagged {
    fn new(case: LabelCase) -> Tagged {
        Tagged {
            case,
            found: Vec::new(),
            terms: Default::default(),
        }
    }

    fn push(&mut self, label: &str, origin: impl FnOnce() -> String) {
        if self.found.len() >= MAX_TAGS {
            return;
        }
        let label = match self.case {
            LabelCase::Upper => label.to_uppercase(),
            LabelCase::Title => label.to_string(),
        };
        let Some(tag) = Tag::from_label(&label) else {
            return;
        };
        if self.terms.insert(tag.term.clone()) {
            self.found.push(Found {
                tag,
                origin: origin(),
            });
        }
    }
}

/// The places and organizations of one text, whole words only, longest
/// first where names overlap ("South Korea", not "Korea").
fn places(
    which: usize,
    segment: &Segment,
    out: &mut Tagged,
    claimed: &mut Vec<Claim>,
    organizations: &mut Mentions,
) {
    let gazetteer = &*GAZETTEER;
    let text = segment.text();
    let mut matches: Vec<(usize, usize, usize)> = gazetteer
        .matcher
        .find_overlapping_iter(text)
        .filter(|m| segment.whole(m.start(), m.end()))
        .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
        .collect();
    matches.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
    let mut covered = 0;
    for (start, end, pattern) in matches {
        if start < covered {
            continue;
        }
        covered = end;
        let name = &gazetteer.names[pattern];
        let entity = &gazetteer.entities[name.entity];
        // Proper nouns only: "turkey" is food, "chad" a word.
        if !segment.capital_at(start) {
            continue;
        }
        if name.acronym && (segment.headline || !segment.all_capitals(start, end)) {
            continue;
        }
        if !segment.headline && entity.kind != Kind::Organization {
            // Part of another name: "Michael Jordan", "Air China", "Paris
            // Saint-Germain", "New York Times".
            if segment.is_name_word(segment.word_before(start)) {
                continue;
            }
            if matches!(entity.kind, Kind::City | Kind::State)
                && segment.is_name_word(segment.word_after(end))
            {
                continue;
            }
        }
        claimed.push(Claim {
            start,
            end,
            organization: entity.kind == Kind::Organization,
        });
        let written = segment.original(start, end);
        let list = entity.kind.list();
        if entity.kind == Kind::Organization {
            organizations.mention(entity.label, which, start, || {
                Some(Candidate {
                    label: entity.label.to_string(),
                    written: written.to_string(),
                    list,
                    ..Candidate::default()
                })
            });
            continue;
        }
        out.push(entity.label, || {
            format!("entity: {} {written:?} ({list})", entity.kind.name())
        });
        if let Some(region) = entity.region {
            let region = &gazetteer.entities[region];
            out.push(region.label, || {
                format!("entity: region of {:?} ({list})", entity.label)
            });
        }
    }
}

/// Head nouns of institutions' names: a run of capitalized words holding
/// one names an organization ("Tax Justice Network", "Ministry of
/// Defence"). Nouns that name a country's body only with its country
/// ("Court", "House", "Office", "Police") are not heads.
const ORG_HEADS: &[&str] = &[
    "agency",
    "association",
    "authority",
    "bank",
    "board",
    "bureau",
    "caucus",
    "club",
    "commission",
    "committee",
    "company",
    "corporation",
    "council",
    "department",
    "directorate",
    "enterprises",
    "federation",
    "foundation",
    "institute",
    "league",
    "ministry",
    "network",
    "organisation",
    "organization",
    "party",
    "society",
    "university",
];

/// Lowercase words inside an institution's name ("Centers for Disease
/// Control and Prevention", "Bank of England").
const CONNECTORS: &[&str] = &["and", "for", "of", "on", "the"];

/// Function words that may begin an institution's name ("Central
/// Information Commission"); the others are trimmed off its start.
const NAME_OPENERS: &[&str] = &[
    "central", "east", "eastern", "first", "greater", "new", "north", "northern", "south",
    "southern", "west", "western",
];

/// A span of text one step claimed; `organization` when a listed or
/// named organization's.
#[derive(Clone, Copy)]
struct Claim {
    start: usize,
    end: usize,
    organization: bool,
}

fn overlaps(claimed: &[Claim], start: usize, end: usize) -> bool {
    claimed.iter().any(|c| c.start < end && start < c.end)
}

/// A name candidate (a person or an institution): as first written, and
/// what confirms it.
#[derive(Default)]
struct Candidate {
    /// The tag's label: a listed organization's, else as first written.
    label: String,
    written: String,
    /// Where it comes from, for `explain`.
    list: &'static str,
    in_title: bool,
    in_lead: bool,
    mentions: usize,
}

impl Candidate {
    /// Why the article is about it, if it is: named in the title or lead,
    /// or named at least `twice`.
    fn confirmed(&self, mentions: usize) -> Option<String> {
        if self.in_title {
            Some("in the title".to_string())
        } else if self.in_lead {
            Some("in the lead".to_string())
        } else if mentions >= 2 {
            Some(format!("named {mentions} times"))
        } else {
            None
        }
    }
}

/// Organizations no list has, named as institutions are: capitalized
/// words around a head noun ("Gurugram Metropolitan Development
/// Authority"). A name overlapping a listed organization is that one's.
fn institutions(
    segments: &[&Segment; 3],
    organizations: &mut Mentions,
    claimed: &mut [Vec<Claim>; 3],
) {
    for which in [1, 2, 0] {
        let segment = segments[which];
        for (start, end) in institution_names(segment) {
            if claimed[which]
                .iter()
                .any(|c| c.organization && c.start < end && start < c.end)
            {
                continue;
            }
            claimed[which].push(Claim {
                start,
                end,
                organization: true,
            });
            let written = segment.original(start, end);
            // In a title-case headline every word is capitalized: a name
            // there only confirms one the text gives.
            let headline = which == 0 && segment.headline;
            organizations.mention(written, which, start, || {
                (!headline).then(|| Candidate {
                    label: written.to_string(),
                    written: written.to_string(),
                    list: "an institution's name",
                    ..Candidate::default()
                })
            });
        }
    }
}

/// Spans of institutions' names in one text.
fn institution_names(segment: &Segment) -> Vec<(usize, usize)> {
    let text = segment.text();
    let mut out = Vec::new();
    let mut run: Vec<(usize, usize)> = Vec::new();
    let word = |&(s, e): &(usize, usize)| &text[s..e];
    let flush = |run: &mut Vec<(usize, usize)>, out: &mut Vec<(usize, usize)>| {
        while run.last().is_some_and(|w| listed(CONNECTORS, word(w))) {
            run.pop();
        }
        let opener = run
            .iter()
            .position(|w| {
                let w = word(w);
                !listed(FUNCTION_WORDS, w) || listed(NAME_OPENERS, w)
            })
            .unwrap_or(run.len());
        let name = &run[opener..];
        let capitalized = name.iter().filter(|w| !listed(CONNECTORS, word(w))).count();
        if capitalized >= 2 && name.iter().any(|w| listed(ORG_HEADS, word(w))) {
            out.push((name[0].0, name[name.len() - 1].1));
        }
        run.clear();
    };
    for &(start, end) in &segment.words {
        let joined = run
            .last()
            .is_some_and(|&(_, prev_end)| &text[prev_end..start] == " ");
        if !joined {
            flush(&mut run, &mut out);
        }
        if segment.capital_at(start) || (!run.is_empty() && listed(CONNECTORS, &text[start..end])) {
            run.push((start, end));
        } else {
            flush(&mut run, &mut out);
        }
        if text[end..].starts_with("'s") {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A person candidate: a name as first written, and what confirms it.
#[derive(Default)]
struct Person {
    written: String,
    folded: String,
    in_title: bool,
    in_lead: bool,
    mentions: usize,
    introduced: Option<String>,
}

/// People: runs of capitalized words, split at function words, roles,
/// dates and listed places, kept at two to four words, confirmed by the
/// title, the lead, repetition (the full name or the surname alone) or a
/// role or speech verb beside them. A surname alone never makes a tag: it
/// counts for the full name the article also gives ("Lavrov" for "Sergei
/// Lavrov").
fn people(segments: &[&Segment; 3], claimed: &[Vec<Claim>; 3], out: &mut Tagged) {
    let [title, summary, content] = *segments;
    let mut people: Vec<Person> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // The lead: the start of the summary, or of the body when there is none.
    let lead = if summary.text().is_empty() { 2 } else { 1 };
    // The title last: in a title-case headline every word is capitalized,
    // so a name found there only confirms one the text also gives.
    for (which, segment) in [(1, summary), (2, content), (0, title)] {
        for (start, end) in names(segment) {
            if overlaps(&claimed[which], start, end) {
                continue;
            }
            let folded = segment.text()[start..end].to_string();
            if segment.headline && which == 0 && !index.contains_key(&folded) {
                continue;
            }
            let i = *index.entry(folded.clone()).or_insert_with(|| {
                people.push(Person {
                    folded,
                    ..Person::default()
                });
                people.len() - 1
            });
            let person = &mut people[i];
            if person.written.is_empty() {
                person.written = segment.original(start, end).to_string();
            }
            person.mentions += 1;
            match which {
                0 => person.in_title = true,
                _ if which == lead && start < LEAD_BYTES => person.in_lead = true,
                _ => {}
            }
            if person.introduced.is_none() {
                let before = segment.word_across_comma_before(start);
                let after = segment.word_across_comma_after(end);
                person.introduced = before
                    .filter(|w| listed(ROLES, w) || listed(SAID, w))
                    .or(after.filter(|w| listed(SAID, w)))
                    .map(str::to_string);
            }
        }
    }
    // The surname (or, for two-word names, either word) alone, in capitals,
    // counts as a mention of the one full name that has it.
    let mut owners: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, person) in people.iter().enumerate() {
        let words: Vec<&str> = person.folded.split(' ').collect();
        let mut parts = vec![words[words.len() - 1]];
        if words.len() == 2 {
            parts.push(words[0]);
        }
        for part in parts {
            owners.entry(part).or_default().push(i);
        }
    }
    let mut alone = vec![0usize; people.len()];
    for segment in segments {
        for (start, end) in capitalized_words(segment) {
            let word = &segment.text()[start..end];
            if let Some([owner]) = owners.get(word).map(Vec::as_slice) {
                if !inside_full_name(segment, start, end, &people[*owner].folded) {
                    alone[*owner] += 1;
                }
            }
        }
    }
    let padded: Vec<String> = people.iter().map(|p| format!(" {} ", p.folded)).collect();
    for (i, person) in people.iter().enumerate() {
        let mentions = person.mentions + alone[i];
        // A stray word before or after a name the article gives alone
        // ("… to Democracy Gene Sharp" beside "Gene Sharp"): that name's.
        let stray = mentions == 1
            && padded
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && padded[i].contains(other.as_str()));
        if stray {
            continue;
        }
        let why = if person.in_title {
            "in the title".to_string()
        } else if person.in_lead {
            "in the lead".to_string()
        } else if mentions >= 2 {
            format!("named {mentions} times")
        } else if let Some(word) = &person.introduced {
            format!("beside {word:?}")
        } else {
            continue;
        };
        out.push(&person.written, || {
            format!("entity: person {:?} ({why})", person.written)
        });
    }
}

/// Whether the word at `start..end` is part of an occurrence of `full`.
fn inside_full_name(segment: &Segment, start: usize, end: usize, full: &str) -> bool {
    let text = segment.text();
    let from = start.saturating_sub(full.len());
    let to = (end + full.len()).min(text.len());
    let (mut from, mut to) = (from, to);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    while !text.is_char_boundary(to) {
        to += 1;
    }
    text[from..to].match_indices(full).any(|(i, _)| {
        let i = from + i;
        i <= start && end <= i + full.len()
    })
}

/// The words of a text whose first letter is a capital, as byte spans.
fn capitalized_words(segment: &Segment) -> Vec<(usize, usize)> {
    segment
        .words
        .iter()
        .copied()
        .filter(|&(start, _)| segment.capital_at(start))
        .collect()
}

/// Every word of a text (letters, digits, inner `-` and `'`), as byte
/// spans; a trailing possessive `'s` is not part of it.
fn words_of(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let inner = (c == '-' || c == '\'')
            && start.is_some()
            && chars
                .peek()
                .is_some_and(|&(_, next)| Segment::is_word_char(next));
        if Segment::is_word_char(c) || inner {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((s, i));
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out.into_iter()
        .map(|(s, e)| match text[s..e].strip_suffix("'s") {
            Some(stem) if !stem.is_empty() => (s, s + stem.len()),
            _ => (s, e),
        })
        .collect()
}

/// Person-name spans of one text.
fn names(segment: &Segment) -> Vec<(usize, usize)> {
    let text = segment.text();
    let words = &segment.words;
    let mut out = Vec::new();
    // Runs of name words joined by single spaces.
    let mut run: Vec<(usize, usize)> = Vec::new();
    let mut flush = |run: &mut Vec<(usize, usize)>| {
        split_run(segment, run, &mut out);
        run.clear();
    };
    for &(start, end) in words {
        let word = &text[start..end];
        let joined = run
            .last()
            .is_some_and(|&(_, prev_end)| &text[prev_end..start] == " ");
        if !joined {
            flush(&mut run);
        }
        let capital = segment.capital_at(start);
        // A word in capitals is an acronym (AFP), not a name, outside
        // headlines; but a generation ends a name ("Theodore Roosevelt IV").
        let generation = !run.is_empty() && listed(GENERATIONS, word);
        let acronym = end - start >= 2
            && segment.all_capitals(start, end)
            && !segment.headline
            && !generation;
        // "London-based", "Kremlin-backed": an adjective, not a name.
        let adjective = word
            .match_indices('-')
            .any(|(i, _)| !segment.capital_at(start + i + 1));
        if (capital && !acronym && !adjective) || (!run.is_empty() && listed(PARTICLES, word)) {
            run.push((start, end));
        } else {
            flush(&mut run);
        }
        // A possessive ends the name: "Xi Jinping's visit".
        if text[end..].starts_with("'s") {
            flush(&mut run);
        }
    }
    flush(&mut run);
    out
}

/// Splits a run of capitalized words at the words that cannot be part of a
/// name and keeps the pieces of two to four words.
fn split_run(segment: &Segment, run: &[(usize, usize)], out: &mut Vec<(usize, usize)>) {
    let gazetteer = &*GAZETTEER;
    let text = segment.text();
    // A run holding an institution noun names a thing, not a person.
    if run.iter().any(|&(s, e)| listed(INSTITUTIONS, &text[s..e])) {
        return;
    }
    let mut piece: Vec<(usize, usize)> = Vec::new();
    let mut keep = |piece: &mut Vec<(usize, usize)>| {
        while piece
            .last()
            .is_some_and(|&(s, e)| listed(PARTICLES, &text[s..e]))
        {
            piece.pop();
        }
        if (2..=4).contains(&piece.len()) {
            let span = (piece[0].0, piece[piece.len() - 1].1);
            if !gazetteer.not_people.contains(&text[span.0..span.1]) {
                out.push(span);
            }
        }
        piece.clear();
    };
    for &(start, end) in run {
        let word = &text[start..end];
        let stop = listed(FUNCTION_WORDS, word)
            || listed(ROLES, word)
            || listed(NOT_NAMES, word)
            || gazetteer.words.contains(word)
            || word.chars().count() < 2
            || word.chars().any(|c| c.is_numeric())
            || segment.camel_case(start, end);
        if stop {
            keep(&mut piece);
        } else if piece.is_empty() && listed(PARTICLES, word) {
            continue;
        } else {
            piece.push((start, end));
        }
    }
    keep(&mut piece);
}

#[cfg(test)]
mod tests;
