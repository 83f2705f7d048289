//! Compiled tag rules and aliases (docs/TAGS-AND-DEDUP.md "How tags work"). Terms and the
//! folded text rules match on come from [`crate::text`].

use std::cell::OnceCell;
use std::collections::HashSet;

use regex::Regex;

use crate::config::{LabelCase, RuleField, RuleMatcher, TagAliasConfig, TagRuleConfig};
use crate::model::{Entry, Tag};
use crate::text::{fold, html_to_text};

/// The configured `tag_rule`s, compiled once, and the `tag_alias`es.
#[derive(Debug, Clone, Default)]
pub struct TagRules {
    rules: Vec<CompiledRule>,
    /// Alias term -> the tag it folds into.
    aliases: std::collections::HashMap<String, Tag>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    tag: Tag,
    matcher: Matcher,
    fields: Vec<RuleField>,
    /// Why a matching entry carries the tag (`explain`), made once: every
    /// match would format it again.
    origin: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// A rule's words, run on folded text.
    Words(WordsMatcher),
    /// The user's own regex, run on the original text.
    Pattern(Regex),
}

impl TagRules {
    /// Compiles the rules. A rule whose tag folds to an empty term, or whose
    /// `any` holds no word, can never add a tag and is left out.
    pub fn new(rules: &[TagRuleConfig]) -> TagRules {
        let rules = rules
            .iter()
            .filter_map(|rule| {
                let tag = Tag::from_label(&rule.tag)?;
                let matcher = Matcher::new(&rule.matcher)?;
                let mut fields = if rule.fields.is_empty() {
                    RuleField::ALL.to_vec()
                } else {
                    rule.fields.clone()
                };
                let mut seen = HashSet::new();
                fields.retain(|field| seen.insert(*field));
                let origin = format!("tag_rule {}", describe(&tag, &matcher, &fields));
                Some(CompiledRule {
                    tag,
                    matcher,
                    fields,
                    origin,
                })
            })
            .collect();
        TagRules {
            rules,
            aliases: Default::default(),
        }
    }

    /// Folds the aliases' spellings into their tags (docs/TAGS-AND-DEDUP.md "How tags work", extended:
    /// `[[tag_alias]] tag = "ukraine" same = ["ua"]`).
    pub fn with_aliases(mut self, aliases: &[TagAliasConfig]) -> TagRules {
        for alias in aliases {
            if let Some(tag) = Tag::from_label(&alias.tag) {
                for term in &alias.same {
                    self.aliases.insert(term.clone(), tag.clone());
                }
            }
        }
        self
    }

    /// An entry's tags with why each is there: its categories, then its
    /// source's tags, then the rules' tags; aliases folded; one per term,
    /// the first spelling kept as label.
    pub fn tagged(
        &self,
        entry: &Entry,
        source: &str,
        source_tags: &[String],
    ) -> Vec<(Tag, String)> {
        self.tagged_with(entry, source, source_tags, None)
    }

    /// [`TagRules::tagged`], then, with `entities`, the automatic entity
    /// tags written in that case ([`crate::entities`]).
    pub fn tagged_with(
        &self,
        entry: &Entry,
        source: &str,
        source_tags: &[String],
        entities: Option<LabelCase>,
    ) -> Vec<(Tag, String)> {
        let categories = entry
            .categories
            .iter()
            .filter_map(|label| Tag::from_label(label))
            .map(|tag| (tag, format!("category in {source}")));
        let from_source = source_tags
            .iter()
            .filter_map(|label| Tag::from_label(label))
            .map(|tag| (tag, format!("tags of source {source}")));
        let text = EntryText::new(entry);
        let from_rules = self
            .rules
            .iter()
            .filter(|rule| rule.is_match(&text))
            .map(|rule| (rule.tag.clone(), rule.origin.clone()));
        let from_entities = entities
            .map(|case| crate::entities::entities_for(entry, case))
            .unwrap_or_default()
            .into_iter()
            .map(|found| (found.tag, found.origin));
        let mut terms = HashSet::new();
        categories
            .chain(from_source)
            .chain(from_rules)
            .chain(from_entities)
            .map(|(tag, why)| match self.aliases.get(&tag.term) {
                Some(target) => (target.clone(), format!("{why}, as {:?} (alias)", tag.label)),
                None => (tag, why),
            })
            .filter(|(tag, _)| terms.insert(tag.term.clone()))
            .collect()
    }

    /// The tags of every rule that matches the entry, one per term.
    pub fn matching(&self, entry: &Entry) -> Vec<Tag> {
        let text = EntryText::new(entry);
        let mut terms = HashSet::new();
        let mut tags = Vec::new();
        for rule in &self.rules {
            // Several rules may add one tag: once it is in, skip the others.
            if terms.contains(rule.tag.term.as_str()) || !rule.is_match(&text) {
                continue;
            }
            terms.insert(rule.tag.term.as_str());
            tags.push(rule.tag.clone());
        }
        tags
    }
}

/// How `explain` names a rule.
fn describe(tag: &Tag, matcher: &Matcher, fields: &[RuleField]) -> String {
    format!("{:?} ({})", tag.label, matcher.describe(fields))
}

impl CompiledRule {
    fn is_match(&self, text: &EntryText<'_>) -> bool {
        self.matcher.is_match(text, &self.fields)
    }
}

impl Matcher {
    /// `None` when the words hold no word to look for.
    pub(crate) fn new(matcher: &RuleMatcher) -> Option<Matcher> {
        Some(match matcher {
            RuleMatcher::Any(words) => Matcher::Words(WordsMatcher::new(words)?),
            RuleMatcher::Regex(re) => Matcher::Pattern(re.clone()),
        })
    }

    /// Whether it matches the text of any of `fields`.
    pub(crate) fn is_match(&self, text: &EntryText<'_>, fields: &[RuleField]) -> bool {
        fields.iter().any(|&field| match self {
            Matcher::Words(words) => text.folded(field).iter().any(|t| words.is_match(t)),
            Matcher::Pattern(re) => text.original(field).iter().any(|t| re.is_match(t)),
        })
    }

    /// How `explain` shows it: `any in title, url` or `regex "…"`.
    pub(crate) fn describe(&self, fields: &[RuleField]) -> String {
        match self {
            Matcher::Words(_) => {
                let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
                format!("any in {}", fields.join(", "))
            }
            Matcher::Pattern(re) => format!("regex {:?}", re.as_str()),
        }
    }
}

/// All of a rule's words and phrases, whole words only, on folded text.
///
/// "Whole word" means the match touches no letter or digit on either side.
/// The regex crate has no look-around, so `exact` matches the neighbours
/// themselves, `(?:^|[^\p{L}\p{N}])`: exact for `is_match`, which is all a
/// rule needs. (`\b` would also count `_` as a word character.) Those
/// leading classes keep the regex crate from searching for the words'
/// literals first, which makes `exact` several times slower than a plain
/// alternation; so the plain one, `candidates`, scans first and `exact` only
/// runs from where a word occurs at all, which in most texts is nowhere.
#[derive(Debug, Clone)]
pub(crate) struct WordsMatcher {
    candidates: Regex,
    exact: Regex,
}

impl WordsMatcher {
    /// `None` when there is no word to look for.
    fn new(words: &[String]) -> Option<WordsMatcher> {
        const BEFORE: &str = r"(?:^|[^\p{L}\p{N}])";
        const AFTER: &str = r"(?:[^\p{L}\p{N}]|$)";
        // Words grouped by which edges need a boundary, so each boundary
        // class is compiled once per group rather than once per word: with
        // large Unicode classes that is most of the compile time.
        let mut groups: [Vec<String>; 4] = Default::default();
        for word in words {
            let folded = fold(word);
            let (Some(first), Some(last)) = (
                folded.trim().chars().next(),
                folded.trim().chars().next_back(),
            ) else {
                continue;
            };
            // A phrase matches across any whitespace run.
            let parts: Vec<String> = folded.split_whitespace().map(regex::escape).collect();
            let group = usize::from(!written_without_spaces(first)) * 2
                + usize::from(!written_without_spaces(last));
            groups[group].push(parts.join(r"\s+"));
        }
        let all: Vec<&str> = groups.iter().flatten().map(String::as_str).collect();
        if all.is_empty() {
            return None;
        }
        let exact: Vec<String> = groups
            .iter()
            .enumerate()
            .filter(|(_, words)| !words.is_empty())
            .map(|(group, words)| {
                let before = if group & 2 != 0 { BEFORE } else { "" };
                let after = if group & 1 != 0 { AFTER } else { "" };
                format!("{before}(?:{}){after}", words.join("|"))
            })
            .collect();
        Some(WordsMatcher {
            candidates: words_regex(&all.join("|")),
            exact: words_regex(&exact.join("|")),
        })
    }

    fn is_match(&self, folded: &str) -> bool {
        let Some(candidate) = self.candidates.find(folded) else {
            return false;
        };
        // Start one character early: `exact` must see what precedes the word.
        let start = folded[..candidate.start()]
            .char_indices()
            .next_back()
            .map_or(0, |(i, _)| i);
        self.exact.is_match_at(folded, start)
    }
}

fn words_regex(pattern: &str) -> Regex {
    // Every word is escaped, so only an absurdly long list could fail here
    // (the compiled-size limit is raised well above any real rule).
    regex::RegexBuilder::new(pattern)
        .size_limit(64 << 20)
        .build()
        .expect("escaped words always form a valid regex")
}

/// Scripts written without spaces between words (Chinese, Japanese, Thai,
/// Lao, Khmer, Burmese): there "whole word" cannot mean "between spaces", so
/// a word edge in them needs no boundary. `中国` matches in `中国外交部`.
fn written_without_spaces(c: char) -> bool {
    matches!(
        c,
        // Thai, Lao; Myanmar; Khmer
        '\u{0E00}'..='\u{0EFF}'
            | '\u{1000}'..='\u{109F}'
            | '\u{1780}'..='\u{17FF}'
            // Hiragana, Katakana and its extensions, halfwidth Katakana
            | '\u{3040}'..='\u{30FF}'
            | '\u{31F0}'..='\u{31FF}'
            | '\u{FF66}'..='\u{FF9F}'
            // CJK ideographs: extension A, unified, compatibility, B to G
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{3134F}'
    )
}

/// The fields of an entry (or of a stored article) that rules read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub title: Option<&'a str>,
    pub summary: Option<&'a str>,
    /// HTML.
    pub content: Option<&'a str>,
    pub author: Option<&'a str>,
    pub link: Option<&'a str>,
    pub categories: &'a [String],
    /// Tags as their labels; empty for tag rules, which make them.
    pub tags: &'a [Tag],
}

impl<'a> Fields<'a> {
    pub fn of(entry: &'a Entry) -> Fields<'a> {
        Fields {
            title: entry.title.as_deref(),
            summary: entry.summary.as_deref(),
            content: entry.content.as_deref(),
            author: entry.author.as_deref(),
            link: entry.link.as_deref(),
            categories: &entry.categories,
            tags: &[],
        }
    }
}

/// One entry's field texts, as rules read them. Each field is stripped and
/// folded at most once per entry, however many rules look at it.
pub(crate) struct EntryText<'a> {
    fields: Fields<'a>,
    content: OnceCell<Option<String>>,
    folded: [OnceCell<Vec<String>>; RuleField::WITH_TAGS.len()],
}

impl<'a> EntryText<'a> {
    pub(crate) fn new(entry: &'a Entry) -> Self {
        EntryText::of(Fields::of(entry))
    }

    pub(crate) fn of(fields: Fields<'a>) -> Self {
        EntryText {
            fields,
            content: OnceCell::new(),
            folded: Default::default(),
        }
    }

    /// The field's texts as the feed gave them; content with its HTML tags
    /// as text; categories and tags one text per label, so a phrase never
    /// spans two.
    fn original(&self, field: RuleField) -> Vec<&str> {
        let fields = &self.fields;
        match field {
            RuleField::Title => fields.title.into_iter().collect(),
            RuleField::Summary => fields.summary.into_iter().collect(),
            RuleField::Content => self
                .content
                .get_or_init(|| fields.content.map(html_to_text))
                .as_deref()
                .into_iter()
                .collect(),
            RuleField::Categories => fields.categories.iter().map(String::as_str).collect(),
            RuleField::Author => fields.author.into_iter().collect(),
            RuleField::Url => fields.link.into_iter().collect(),
            RuleField::Tags => fields.tags.iter().map(|t| t.label.as_str()).collect(),
        }
    }

    fn folded(&self, field: RuleField) -> &[String] {
        self.folded[field as usize]
            .get_or_init(|| self.original(field).into_iter().map(fold).collect())
    }
}

/// An entry's tags: its categories, then its source's tags, then the rules'
/// tags; one per term, the first spelling kept as label.
pub fn tags_for(entry: &Entry, source_tags: &[String], rules: &TagRules) -> Vec<Tag> {
    rules
        .tagged(entry, "", source_tags)
        .into_iter()
        .map(|(tag, _)| tag)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(tag: &str, words: &[&str], fields: &[RuleField]) -> TagRuleConfig {
        TagRuleConfig {
            tag: tag.to_string(),
            matcher: RuleMatcher::Any(words.iter().map(|w| w.to_string()).collect()),
            fields: fields.to_vec(),
        }
    }

    fn regex(tag: &str, re: &str, fields: &[RuleField]) -> TagRuleConfig {
        TagRuleConfig {
            tag: tag.to_string(),
            matcher: RuleMatcher::Regex(Regex::new(re).unwrap()),
            fields: fields.to_vec(),
        }
    }

    fn titled(title: &str) -> Entry {
        Entry {
            title: Some(title.to_string()),
            ..Entry::default()
        }
    }

    fn terms(tags: &[Tag]) -> Vec<&str> {
        tags.iter().map(|t| t.term.as_str()).collect()
    }

    #[test]
    fn any_matches_whole_words_without_case_or_diacritics() {
        // (words, title, matches)
        let cases: &[(&[&str], &str, bool)] = &[
            (&["élection"], "Election day", true),
            (&["élection"], "the election", true),
            (&["élection"], "L'ÉLECTION présidentielle", true),
            (&["Election"], "Présidentielle : l'élection", true),
            (&["élection"], "Elections", false),
            (&["élection"], "préélection", false),
            (&["Kyiv"], "Kyiv under fire", true),
            (&["Kyiv"], "Kyivstar outage", false),
            (&["Kyiv"], "Kyiv's mayor", true),
            (&["Kyiv"], "(Kyiv)", true),
            (&["Kyiv"], "Kyiv2", false),
            (&["Kyiv"], "Kyivstar, then Kyiv", true),
            (&["Kyiv"], "Kyivstar; xkyiv", false),
            (&["ab", "ab-c"], "ab-cd", true),
            (&["ab-c", "ab"], "ab-cd", true),
            (&["ab-c"], "ab-cd", false),
            (&["Kyiv"], "", false),
            (&["Ukraine", "Kyiv", "Zelensky"], "Zelensky speaks", true),
            (&["Ukraine", "Kyiv", "Zelensky"], "Moscow", false),
            (&["Wang Yi"], "Wang Yi meets Blinken", true),
            (&["Wang Yi"], "Wang\n\t Yi", true),
            (&["Wang Yi"], "minister wang\u{a0}yi", true),
            (&["Wang  Yi"], "Wang Yi", true),
            (&["Wang Yi"], "Wang Yin", false),
            (&["Wang Yi"], "WangYi", false),
            (&["Wang Yi"], "Wang-Yi", false),
            (&["C++"], "Why C++ is hard", true),
            (&["C++"], "C++11", false),
            (&["U.S."], "The U.S. election", true),
            (&["a.b"], "axb", false),
            (&["中国"], "中国外交部发言人", true),
            (&["中国"], "美国", false),
            (&["中国", "China"], "China's", true),
            (&["中国", "China"], "Chinatown 中国人", true),
            (&["Ελλάδα"], "ΕΛΛΑΔΑ", true),
        ];
        for (words, title, expected) in cases {
            let rules = TagRules::new(&[any("t", words, &[])]);
            let found = !rules.matching(&titled(title)).is_empty();
            assert_eq!(found, *expected, "{words:?} in {title:?}");
        }
    }

    #[test]
    fn rules_look_only_at_their_fields() {
        let entry = Entry {
            guid: Some("ukraine-guid".into()),
            link: Some("https://example.com/world/ukraine-war".into()),
            title: Some("Title".into()),
            summary: Some("Summary about Kyiv".into()),
            content: Some(r#"<p class="china">Text on <b>Russia</b></p><!-- Iran -->"#.into()),
            author: Some("Jane Doe".into()),
            categories: vec!["Sport".into(), "Wang".into(), "Yi".into()],
            ..Entry::default()
        };
        use RuleField::*;
        // (rule, tags expected)
        let cases: Vec<(TagRuleConfig, bool)> = vec![
            (any("t", &["kyiv"], &[]), true),
            (any("t", &["kyiv"], &[Summary]), true),
            (any("t", &["kyiv"], &[Title, Content]), false),
            (any("t", &["russia"], &[Content]), true),
            // Attributes and comments are not text.
            (any("t", &["china"], &[Content]), false),
            (any("t", &["iran"], &[Content]), false),
            (any("t", &["sport"], &[Categories]), true),
            (any("t", &["sport"], &[Title, Summary, Content]), false),
            // Each category is matched alone.
            (any("t", &["wang yi"], &[Categories]), false),
            (any("t", &["jane doe"], &[Author]), true),
            (any("t", &["jane"], &[Title]), false),
            (any("t", &["ukraine"], &[Url]), true),
            (any("t", &["ukraine"], &[Title]), false),
            // The guid is not a field.
            (
                any("t", &["ukraine"], &[Title, Summary, Content, Author]),
                false,
            ),
            (regex("t", r"\bKyiv\b", &[Summary]), true),
            (regex("t", r"\bKyiv\b", &[Title]), false),
            (regex("t", r"^Sport$", &[Categories]), true),
            (regex("t", r"Text on Russia", &[Content]), true),
            (regex("t", r"class=", &[Content]), false),
            (regex("t", r"/world/", &[Url]), true),
        ];
        for (rule, expected) in cases {
            let description = format!("{:?} in {:?}", rule.matcher, rule.fields);
            let found = !TagRules::new(&[rule]).matching(&entry).is_empty();
            assert_eq!(found, expected, "{description}");
        }
    }

    #[test]
    fn regex_runs_on_unfolded_text() {
        let cases = [
            (r"élection", "L'élection", true),
            (r"élection", "L'election", false),
            (r"(?i)ÉLECTION", "l'élection", true),
            (r"Kyiv", "kyiv", false),
        ];
        for (re, title, expected) in cases {
            let rules = TagRules::new(&[regex("t", re, &[])]);
            let found = !rules.matching(&titled(title)).is_empty();
            assert_eq!(found, expected, "{re:?} in {title:?}");
        }
    }

    #[test]
    fn matching_gives_one_tag_per_term_in_rule_order() {
        let rules = TagRules::new(&[
            any("Ukraine", &["Kyiv"], &[]),
            any("Russia", &["Moscow"], &[]),
            any("UKRAINE", &["Zelensky"], &[]),
            any("China", &["Beijing"], &[]),
            any("  ", &["Kyiv"], &[]),
            any("empty", &[" ", ""], &[]),
        ]);
        let tags = rules.matching(&titled("Zelensky in Kyiv, Moscow replies"));
        assert_eq!(terms(&tags), ["ukraine", "russia"]);
        assert_eq!(tags[0].label, "Ukraine");
        assert!(TagRules::default().matching(&titled("Kyiv")).is_empty());
    }

    #[test]
    fn tags_for_unions_categories_sources_and_rules() {
        let rules = TagRules::new(&[
            any("Ukraine", &["Kyiv"], &[]),
            any("World", &["Kyiv"], &[]),
            any("Xi Jinping", &["Xi"], &[]),
        ]);
        let entry = Entry {
            title: Some("Xi and Kyiv".into()),
            categories: vec!["XI JINPING".into(), "Europe".into(), " ".into()],
            ..Entry::default()
        };
        // (source tags, expected terms, expected labels)
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &[],
                &["xi-jinping", "europe", "ukraine", "world"],
                &["XI JINPING", "Europe", "Ukraine", "World"],
            ),
            (
                &["rfi", "world"],
                &["xi-jinping", "europe", "rfi", "world", "ukraine"],
                &["XI JINPING", "Europe", "rfi", "world", "Ukraine"],
            ),
            (
                &["europe", "", "xi_jinping"],
                &["xi-jinping", "europe", "ukraine", "world"],
                &["XI JINPING", "Europe", "Ukraine", "World"],
            ),
        ];
        for (source_tags, expected_terms, expected_labels) in cases {
            let source_tags: Vec<String> = source_tags.iter().map(|s| s.to_string()).collect();
            let tags = tags_for(&entry, &source_tags, &rules);
            assert_eq!(terms(&tags), *expected_terms, "{source_tags:?}");
            let labels: Vec<&str> = tags.iter().map(|t| t.label.as_str()).collect();
            assert_eq!(labels, *expected_labels, "{source_tags:?}");
        }
    }
}
