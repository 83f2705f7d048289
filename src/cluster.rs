//! Near-duplicate stories (docs/TAGS-AND-DEDUP.md "How deduplication works"): the same wire copy carried by
//! several outlets under different URLs, lightly edited. Texts are
//! normalized (HTML stripped, diacritics folded, lowercased, punctuation
//! dropped), cut into 3-word shingles and summarized by a MinHash signature
//! whose equal positions estimate the shingle sets' Jaccard similarity;
//! with the sets' sizes, kept beside it, that gives their containment too
//! (a copy that drops or adds a closing sentence is contained in the other).
//! Locality-sensitive hashing (16 bands of 4 rows) turns a signature into
//! band keys: stories sharing a key are the only candidates compared, so
//! lookup stays an index probe however large the store grows.
//! Hashes are hand-rolled (FNV-1a, splitmix64) because signatures are
//! stored: they must be the same on every build and instance.

/// MinHash values per signature.
pub const SIGNATURE_LEN: usize = 64;
/// LSH bands; `SIGNATURE_LEN / BANDS` rows each. With 16×4 a pair at
/// similarity 0.5 becomes a candidate with probability 0.65, at 0.7 with
/// 0.99: well below any threshold worth using.
pub const BANDS: usize = 16;
const ROWS: usize = SIGNATURE_LEN / BANDS;
const SHINGLE_WORDS: usize = 3;
/// Texts with fewer shingles than this are too short to judge: a headline
/// alone says too little to call two stories one.
pub const MIN_SHINGLES: usize = 12;

/// A story's MinHash signature, and the numbers its text states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub minhash: Vec<u32>,
    /// Hashes of the distinct numeric tokens, sorted. Templated stories
    /// (one weather report per city, one result per match) share almost
    /// all their words and differ in their figures: wire copies keep them.
    pub numbers: Vec<u32>,
    /// Hashes of the title's names and figures (capitalized words past the
    /// first, tokens with digits), sorted: what the story is about.
    pub anchors: Vec<u32>,
    /// A Bloom filter of every word of the text, to ask whether the other
    /// story mentions this one's anchors at all.
    pub words: Vec<u8>,
    /// How many distinct shingles the text has: with the other text's
    /// count, it turns the Jaccard estimate into one of containment.
    /// `None` in signatures stored before it was kept (Jaccard only).
    pub shingles: Option<u32>,
}

/// Containment judges a pair only from this share of the threshold in
/// Jaccard (0.4 at the default 0.6)...
const CONTAINED_FLOOR: f64 = 2.0 / 3.0;
/// ...and calls it one story from the threshold plus this (0.75 at 0.6).
/// Both measured on the held-out corpus (BENCHMARKS.md): 0.7 finds more
/// copies, with a thinner margin over distinct stories.
const CONTAINED_MARGIN: f64 = 0.15;

/// Set in a stored signature's number count when a shingle count follows.
const HAS_SHINGLES: u32 = 1 << 31;

/// Bytes of the word Bloom filter: ~1% false positives at 400 words.
const BLOOM_BYTES: usize = 512;
const BLOOM_HASHES: u64 = 3;
const MAX_ANCHORS: usize = 16;

/// How many numbers a signature keeps.
const MAX_NUMBERS: usize = 32;
/// Share of the shorter text's numbers the other must state too.
const NUMBERS_AGREEMENT: f64 = 0.75;

impl Signature {
    /// The signature of a story's title, summary and (HTML) content, or
    /// `None` when the text is too short to compare.
    pub fn of(title: &str, summary: Option<&str>, content: Option<&str>) -> Option<Signature> {
        let mut text = String::with_capacity(title.len() + 64);
        text.push_str(title);
        // Summary and content often repeat each other; the longer one is
        // the story, and counting both would weigh that text twice.
        let body = match (summary, content.map(crate::text::html_to_text)) {
            (Some(s), Some(c)) if c.len() >= s.len() => c,
            (Some(s), _) => s.to_string(),
            (None, Some(c)) => c,
            (None, None) => String::new(),
        };
        text.push(' ');
        text.push_str(&body);
        let folded = crate::text::fold(&text);
        let words = words(&folded);
        if words.len() < SHINGLE_WORDS + MIN_SHINGLES - 1 {
            return None;
        }
        let mut shingles: Vec<u64> = words.windows(SHINGLE_WORDS).map(shingle_hash).collect();
        let minhash = minhash(&shingles).to_vec();
        shingles.sort_unstable();
        shingles.dedup();
        let mut numbers: Vec<u32> = words
            .iter()
            .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
            .map(|w| word_hash(w))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers.truncate(MAX_NUMBERS);
        let mut bloom = vec![0u8; BLOOM_BYTES];
        for w in &words {
            bloom_insert(&mut bloom, w);
        }
        Some(Signature {
            minhash,
            numbers,
            anchors: anchors(title),
            words: bloom,
            shingles: Some(u32::try_from(shingles.len()).unwrap_or(u32::MAX)),
        })
    }

    /// One story: texts alike (`alike`) whose figures agree and whose
    /// titles are not about different names: a rewritten headline may add
    /// names ("UPDATE", a place), but when each title names what the other
    /// text never mentions, they are two stories told alike.
    pub fn same_story(&self, other: &Signature, threshold: f64) -> bool {
        self.alike(other, threshold)
            && self.numbers_agree(other)
            && !(self.names_unknown_to(other) && other.names_unknown_to(self))
    }

    /// At least `threshold` similar, or one text mostly contained in the
    /// other: a closing sentence dropped or added, or a byline, lowers
    /// Jaccard though one text is the other's copy. Containment counts
    /// only with a Jaccard floor (its estimate from a few equal MinHash
    /// values is noise) and rises with the threshold.
    fn alike(&self, other: &Signature, threshold: f64) -> bool {
        let jaccard = self.similarity(other);
        jaccard >= threshold
            || (jaccard >= threshold * CONTAINED_FLOOR
                && self
                    .containment(other)
                    .is_some_and(|c| c >= (threshold + CONTAINED_MARGIN).min(1.0)))
    }

    fn names_unknown_to(&self, other: &Signature) -> bool {
        self.anchors
            .iter()
            .any(|a| !bloom_contains(&other.words, *a))
    }

    fn numbers_agree(&self, other: &Signature) -> bool {
        let fewer = self.numbers.len().min(other.numbers.len());
        if fewer == 0 {
            return true;
        }
        let shared = self
            .numbers
            .iter()
            .filter(|n| other.numbers.binary_search(n).is_ok())
            .count();
        shared as f64 / fewer as f64 >= NUMBERS_AGREEMENT
    }

    /// Estimated share of the smaller shingle set found in the other:
    /// |A∩B| = J(|A|+|B|)/(1+J). `None` when a signature lacks its count.
    pub fn containment(&self, other: &Signature) -> Option<f64> {
        let (a, b) = (f64::from(self.shingles?), f64::from(other.shingles?));
        let j = self.similarity(other);
        let shared = j * (a + b) / (1.0 + j);
        Some((shared / a.min(b).max(1.0)).min(1.0))
    }

    /// Estimated Jaccard similarity of the two shingle sets.
    pub fn similarity(&self, other: &Signature) -> f64 {
        let equal = self
            .minhash
            .iter()
            .zip(&other.minhash)
            .filter(|(a, b)| a == b)
            .count();
        equal as f64 / SIGNATURE_LEN as f64
    }

    /// One key per band; equal keys make candidates.
    pub fn band_keys(&self) -> Vec<i64> {
        self.minhash
            .chunks(ROWS)
            .enumerate()
            .map(|(band, rows)| {
                let mut h = FNV_OFFSET ^ band as u64;
                for v in rows {
                    h = fnv1a(h, &v.to_le_bytes());
                }
                splitmix64(h) as i64
            })
            .collect()
    }

    /// Stored form: the word filter, then (little-endian u32) the number
    /// count, the shingle count, the MinHash values, the numbers and the
    /// anchors. The number count's top bit says a shingle count follows:
    /// signatures stored before it was kept lack it, and their number
    /// count is at most `MAX_NUMBERS`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.words.clone();
        let numbers = self.numbers.len() as u32;
        match self.shingles {
            Some(shingles) => {
                out.extend((numbers | HAS_SHINGLES).to_le_bytes());
                out.extend(shingles.to_le_bytes());
            }
            None => out.extend(numbers.to_le_bytes()),
        }
        for v in self
            .minhash
            .iter()
            .chain(&self.numbers)
            .chain(&self.anchors)
        {
            out.extend(v.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Signature> {
        let (words, rest) = bytes.split_at_checked(BLOOM_BYTES)?;
        if rest.len() % 4 != 0 || rest.len() < 4 + SIGNATURE_LEN * 4 {
            return None;
        }
        let mut values = rest
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let numbers = values.next()?;
        let shingles = if numbers & HAS_SHINGLES != 0 {
            Some(values.next()?)
        } else {
            None
        };
        let numbers = (numbers & !HAS_SHINGLES) as usize;
        let minhash: Vec<u32> = values.by_ref().take(SIGNATURE_LEN).collect();
        if minhash.len() < SIGNATURE_LEN {
            return None;
        }
        let numbers: Vec<u32> = values.by_ref().take(numbers).collect();
        Some(Signature {
            minhash,
            numbers,
            anchors: values.collect(),
            words: words.to_vec(),
            shingles,
        })
    }
}

/// Normalized words of `text::fold`ed text (no case, no diacritics): letters
/// and digits only. Wire bylines such as "AFP -" stay words: they weigh one
/// shingle.
fn words(folded: &str) -> Vec<&str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The title's names and figures, folded like the text's words.
fn anchors(title: &str) -> Vec<u32> {
    let mut out: Vec<u32> = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .enumerate()
        .filter(|(i, w)| {
            w.chars().any(|c| c.is_ascii_digit())
                || (*i > 0 && w.chars().next().is_some_and(char::is_uppercase))
        })
        .map(|(_, w)| word_hash(&crate::text::fold(w)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out.truncate(MAX_ANCHORS);
    out
}

fn word_hash(word: &str) -> u32 {
    fnv1a(FNV_OFFSET, word.as_bytes()) as u32
}

fn bloom_insert(bloom: &mut [u8], word: &str) {
    let h = word_hash(word);
    for k in 0..BLOOM_HASHES {
        let bit = bloom_bit(h, k);
        bloom[bit / 8] |= 1 << (bit % 8);
    }
}

fn bloom_contains(bloom: &[u8], word_hash: u32) -> bool {
    (0..BLOOM_HASHES).all(|k| {
        let bit = bloom_bit(word_hash, k);
        bloom
            .get(bit / 8)
            .is_some_and(|b| b & (1 << (bit % 8)) != 0)
    })
}

fn bloom_bit(word_hash: u32, k: u64) -> usize {
    (splitmix64(u64::from(word_hash) ^ (k << 32)) % (BLOOM_BYTES as u64 * 8)) as usize
}

fn shingle_hash(words: &[&str]) -> u64 {
    let mut h = FNV_OFFSET;
    for w in words {
        h = fnv1a(h, w.as_bytes());
        h = fnv1a(h, b" ");
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[inline(always)]
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The MinHash values of the shingles' hashes: per seed, the least of the
/// shingles' permuted hashes. The hot loop of a signature (64 permutations
/// of every shingle): where the CPU has AVX-512 (vector 64-bit multiplies)
/// the same arithmetic runs eight seeds at a time, with AVX2 four (3.7x and
/// 1.4x the portable loop in criterion). Equal results on every path
/// (tested); stored signatures depend on them.
fn minhash(shingles: &[u64]) -> [u32; SIGNATURE_LEN] {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both calls): the CPU has the features the function is
        // compiled for, checked just before.
        if std::arch::is_x86_feature_detected!("avx512dq") {
            return unsafe { minhash_avx512(shingles) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return unsafe { minhash_avx2(shingles) };
        }
    }
    minhash_portable(shingles)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn minhash_avx2(shingles: &[u64]) -> [u32; SIGNATURE_LEN] {
    minhash_portable(shingles)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn minhash_avx512(shingles: &[u64]) -> [u32; SIGNATURE_LEN] {
    minhash_portable(shingles)
}

#[inline(always)]
fn minhash_portable(shingles: &[u64]) -> [u32; SIGNATURE_LEN] {
    let mut minhash = [u32::MAX; SIGNATURE_LEN];
    for &base in shingles {
        for (slot, seed) in minhash.iter_mut().zip(SEEDS) {
            *slot = (*slot).min((splitmix64(base ^ seed) >> 32) as u32);
        }
    }
    minhash
}

/// One seed per MinHash permutation, fixed forever (signatures are stored).
const SEEDS: [u64; SIGNATURE_LEN] = seeds();

const fn seeds() -> [u64; SIGNATURE_LEN] {
    let mut out = [0u64; SIGNATURE_LEN];
    let mut i = 0;
    let mut x: u64 = 0x7472_6962_7574_6172; // "tributar"
    while i < SIGNATURE_LEN {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out[i] = z ^ (z >> 31);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = "Chinese Foreign Minister Wang Yi met Russian President Vladimir Putin in Moscow on Friday, \
        ahead of a planned visit by Xi Jinping next month. The two sides discussed trade, energy supplies \
        and the war in Ukraine, according to a statement from the Kremlin. Wang said relations between \
        Beijing and Moscow were at their best level in history and would not be swayed by outside pressure.";

    /// Closing sentences one outlet keeps and another drops.
    const EPILOGUE: &str =
        "Russia and China signed eleven agreements on agriculture and transport. \
        Xi is expected to stay three days. Wang later flew on to Minsk for talks with Belarusian \
        officials about the grain corridor and the railway through Kazakhstan, and is due back \
        in Beijing at the end of the week, when the foreign ministry will brief reporters on \
        the outcome of both visits.";

    const PINNED_ROWS: [u32; 3] = [81327661, 336292833, 27493359];
    const PINNED_KEYS: [i64; 2] = [-1238898642812984693, 5997134253873557829];

    fn sig(title: &str, body: &str) -> Signature {
        Signature::of(title, None, Some(body)).unwrap()
    }

    #[test]
    fn normalization_folds_case_accents_punctuation_and_markup() {
        assert_eq!(
            words(&crate::text::fold("L'Élection, <b>à</b> Paris!")),
            ["l", "election", "b", "a", "b", "paris"]
        );
        let a = Signature::of("Élection à Paris", None, Some(&format!("<p>{STORY}</p>"))).unwrap();
        let b = Signature::of("ELECTION A PARIS", None, Some(STORY)).unwrap();
        assert_eq!(a.minhash, b.minhash);
        assert_eq!(a.words, b.words);
    }

    #[test]
    fn light_edits_stay_similar_and_other_stories_do_not() {
        let original = sig("Wang Yi meets Putin in Moscow", STORY);
        let cases: &[(&str, String, f64, f64)] = &[
            ("wire prefix", format!("AFP - {STORY}"), 0.85, 1.0),
            ("few words changed", STORY.replace("Friday", "Thursday").replace("trade", "commerce"), 0.7, 1.0),
            ("sentence dropped", STORY.split(". ").take(2).collect::<Vec<_>>().join(". "), 0.5, 0.95),
            (
                "same topic, other story",
                "Russian President Vladimir Putin said on Friday that Moscow would increase energy supplies \
                 to China, in a speech to business leaders in Saint Petersburg about trade with Beijing and \
                 the sanctions imposed over the war in Ukraine by Western governments."
                    .to_string(),
                0.0,
                0.2,
            ),
        ];
        for (name, text, low, high) in cases {
            let s = original.similarity(&sig("Wang Yi meets Putin in Moscow", text));
            assert!(s >= *low && s <= *high, "{name}: {s}");
        }
        // A changed headline alone does not break the match.
        let s = original.similarity(&sig("Putin receives China's top diplomat", STORY));
        assert!(s >= 0.7, "{s}");
    }

    #[test]
    fn templated_stories_with_other_figures_are_other_stories() {
        let report = |city: &str, low: i32, high: i32| {
            format!("The forecast for {city} says the sky will be cloudy in the morning and the temperature will range \
                     between {low} degrees at night and {high} degrees in the afternoon, with light winds from the \
                     south and a chance of rain in the evening according to the national weather service.")
        };
        let a = sig("Weather today", &report("Rosario", 20, 26));
        let b = sig("Weather today", &report("Ushuaia", -1, 6));
        assert!(
            a.similarity(&b) >= 0.7,
            "same template: {}",
            a.similarity(&b)
        );
        assert!(!a.same_story(&b, 0.7));
        let copy = sig(
            "Weather in Rosario",
            &format!("AFP - {}", report("Rosario", 20, 26)),
        );
        assert!(a.same_story(&copy, 0.7));
    }

    #[test]
    fn similar_stories_share_a_band_key() {
        let a = sig("Wang Yi meets Putin in Moscow", STORY);
        let b = sig(
            "Wang Yi meets Putin",
            &format!("AFP - {STORY} More to follow."),
        );
        let shared = a
            .band_keys()
            .iter()
            .filter(|k| b.band_keys().contains(k))
            .count();
        assert!(shared >= 1, "near-duplicates become candidates");
        assert_eq!(a.band_keys().len(), BANDS);
    }

    #[test]
    fn a_copy_contained_in_the_other_is_one_story_though_jaccard_is_low() {
        let long = format!("{STORY} {EPILOGUE}");
        let full = sig("Wang Yi meets Putin in Moscow", &long);
        let short = sig("Wang Yi meets Putin in Moscow", &format!("AFP - {STORY}"));
        let jaccard = full.similarity(&short);
        assert!(jaccard < 0.6, "closing sentences cost Jaccard: {jaccard}");
        let containment = full.containment(&short).unwrap();
        assert!(containment >= 0.75, "{containment}");
        assert!(full.same_story(&short, 0.6) && short.same_story(&full, 0.6));
        // A stricter threshold asks more of containment too.
        assert!(!full.same_story(&short, 0.9));
        // A text that opens alike and goes on about something else is not
        // contained in it.
        let other = sig(
            "Wang Yi meets Putin in Moscow",
            &format!(
                "{}. Putin said Moscow would increase energy supplies to China, in a speech to \
                 business leaders in Saint Petersburg about trade with Beijing and the sanctions \
                 imposed over the war in Ukraine by Western governments.",
                STORY.split(". ").next().unwrap()
            ),
        );
        assert!(full.containment(&other).unwrap() < 0.75);
        assert!(!full.same_story(&other, 0.6));
    }

    #[test]
    fn signatures_stored_without_a_shingle_count_are_judged_by_jaccard_alone() {
        let long = format!("{STORY} {EPILOGUE}");
        let full = sig("Wang Yi meets Putin in Moscow", &long);
        // The layout before the count: filter, number count, MinHash,
        // numbers, anchors.
        let mut old = full.words.clone();
        old.extend((full.numbers.len() as u32).to_le_bytes());
        for v in full
            .minhash
            .iter()
            .chain(&full.numbers)
            .chain(&full.anchors)
        {
            old.extend(v.to_le_bytes());
        }
        let stored = Signature::from_bytes(&old).unwrap();
        assert_eq!(stored.shingles, None);
        assert_eq!(
            stored,
            Signature {
                shingles: None,
                ..full.clone()
            }
        );
        let short = sig("Wang Yi meets Putin in Moscow", &format!("AFP - {STORY}"));
        assert_eq!(stored.containment(&short), None);
        assert!(full.same_story(&short, 0.6), "with the count: contained");
        assert!(!stored.same_story(&short, 0.6), "without: Jaccard alone");
        assert!(
            stored.same_story(&full, 0.6),
            "an unchanged text still matches"
        );
    }

    #[test]
    fn short_texts_are_not_judged() {
        assert_eq!(
            Signature::of("Markets rally", Some("Stocks up."), None),
            None
        );
    }

    #[test]
    fn every_minhash_path_computes_the_same_values() {
        let shingles: Vec<u64> = (0..500u64).map(splitmix64).collect();
        let portable = minhash_portable(&shingles);
        assert_eq!(minhash(&shingles), portable);
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY (both calls): checked just before.
            if std::arch::is_x86_feature_detected!("avx512dq") {
                assert_eq!(unsafe { minhash_avx512(&shingles) }, portable);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                assert_eq!(unsafe { minhash_avx2(&shingles) }, portable);
            }
        }
        assert_eq!(minhash(&[]), [u32::MAX; SIGNATURE_LEN]);
    }

    #[test]
    fn signatures_are_stable_and_round_trip() {
        let a = sig("Wang Yi meets Putin in Moscow", STORY);
        assert_eq!(Signature::from_bytes(&a.to_bytes()), Some(a.clone()));
        assert!(a.shingles.is_some());
        assert_eq!(Signature::from_bytes(&[1, 2, 3]), None);
        let truncated = &a.to_bytes()[..BLOOM_BYTES + 8 + 10 * 4];
        assert_eq!(Signature::from_bytes(truncated), None);
        // Pinned: a change here would split every stored cluster.
        assert_eq!(&a.minhash[..3], &PINNED_ROWS);
        assert_eq!(&a.band_keys()[..2], &PINNED_KEYS);
    }
}
