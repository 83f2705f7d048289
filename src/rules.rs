//! `[[rule]]`s that drop or keep entries (docs/CONFIG.md "Rules"), compiled
//! once. They run after rewrites and tags (so `tags` can be matched) and
//! before deduplication and the store. Order, for one source's entry:
//!
//! 1. drop rules of that source (global or listing it), in file order: the
//!    first that matches drops the entry;
//! 2. then, if the source has keep rules, the entry is kept only when one
//!    matches (the first one is named), else it is dropped as
//!    [`NOT_KEPT`];
//! 3. a source with no rule keeps everything.
//!
//! Text matching is the tag rules' own ([`crate::tag`]): `any` words on
//! folded text, or a regex on the original.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub use crate::config::NOT_KEPT;
use crate::config::{RuleAction, RuleConfig, RuleField};
use crate::model::{Article, Entry, NewArticle, Tag};
use crate::tag::{EntryText, Fields, Matcher};

/// The configured rules, compiled.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    name: String,
    action: RuleAction,
    /// Every source when empty.
    sources: Vec<String>,
    /// `None`: no text condition (only ages); also when `any` holds no
    /// word, which then never matches (see [`CompiledRule::is_match`]).
    matcher: Option<Matcher>,
    has_text_condition: bool,
    fields: Vec<RuleField>,
    older_than: Option<TimeDelta>,
    newer_than: Option<TimeDelta>,
    /// What it is, for `explain`.
    description: String,
    /// All of it as configured (words and all), for the fingerprint.
    identity: String,
}

/// What the rules decided for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The source has no rule that decided: kept.
    Passed,
    /// A keep rule matched.
    Kept { rule: String, why: String },
    /// A drop rule matched, or none of the source's keep rules did
    /// (`rule` is then [`NOT_KEPT`]).
    Dropped { rule: String, why: String },
}

impl Verdict {
    pub fn is_dropped(&self) -> bool {
        matches!(self, Verdict::Dropped { .. })
    }
}

impl Rules {
    pub fn new(configs: &[RuleConfig]) -> Rules {
        let rules = configs
            .iter()
            .map(|rule| {
                let matcher = rule.matcher.as_ref().and_then(Matcher::new);
                let mut parts = Vec::new();
                if let Some(m) = &matcher {
                    parts.push(m.describe(&rule.fields));
                }
                if let Some(d) = rule.older_than {
                    parts.push(format!("older than {}", humanize(d)));
                }
                if let Some(d) = rule.newer_than {
                    parts.push(format!("newer than {}", humanize(d)));
                }
                let scope = if rule.sources.is_empty() {
                    "every source".to_string()
                } else {
                    format!("sources {}", rule.sources.join(", "))
                };
                let description = format!(
                    "{} rule {:?} ({}; {scope})",
                    rule.action.as_str(),
                    rule.name,
                    parts.join(", ")
                );
                CompiledRule {
                    name: rule.name.clone(),
                    action: rule.action,
                    sources: rule.sources.clone(),
                    matcher,
                    has_text_condition: rule.matcher.is_some(),
                    fields: rule.fields.clone(),
                    older_than: rule.older_than.and_then(|d| TimeDelta::from_std(d).ok()),
                    newer_than: rule.newer_than.and_then(|d| TimeDelta::from_std(d).ok()),
                    description,
                    identity: format!("{rule:?}"),
                }
            })
            .collect();
        Rules { rules }
    }

    /// Whether any rule applies to `source`.
    pub fn apply_to(&self, source: &str) -> bool {
        self.of(source).next().is_some()
    }

    /// What `source`'s rules are, as a hash: a remembered drop holds while
    /// it is unchanged (a changed rule, or one added or removed, for this
    /// source re-evaluates its entries). `None` when it has no rules.
    pub fn fingerprint(&self, source: &str) -> Option<String> {
        let mut hash = Sha256::new();
        let mut any = false;
        for rule in self.of(source) {
            any = true;
            hash.update(rule.identity.as_bytes());
            hash.update([0x1f]);
        }
        any.then(|| hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The rule names, for `/metrics` (a bounded label set) and listings.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// The verdict on a parsed entry of `source` with its `tags`, at `now`.
    pub fn judge(&self, source: &str, entry: &Entry, tags: &[Tag], now: DateTime<Utc>) -> Verdict {
        let date = entry.published.or(entry.updated);
        let fields = Fields {
            tags,
            ..Fields::of(entry)
        };
        self.judge_fields(source, fields, date, now)
    }

    /// The verdict on an entry of `source` made ready for the store (its
    /// tags made, its keys too), with the categories the feed gave it.
    pub fn judge_new(
        &self,
        source: &str,
        article: &NewArticle,
        categories: &[String],
        now: DateTime<Utc>,
    ) -> Verdict {
        let fields = Fields {
            title: Some(article.title.as_str()),
            summary: article.summary.as_deref(),
            content: article.content.as_deref(),
            author: article.author.as_deref(),
            link: article.link.as_deref(),
            categories,
            tags: &article.tags,
        };
        self.judge_fields(source, fields, article.published.or(article.updated), now)
    }

    /// The verdict on a stored article as `source` carries it: its tags
    /// stand for the categories too, which the store keeps only as tags.
    pub fn judge_stored(&self, source: &str, article: &Article, now: DateTime<Utc>) -> Verdict {
        let labels: Vec<String> = article.tags.iter().map(|t| t.label.clone()).collect();
        let fields = Fields {
            title: Some(article.title.as_str()),
            summary: article.summary.as_deref(),
            content: article.content.as_deref(),
            author: article.author.as_deref(),
            link: article.link.as_deref(),
            categories: &labels,
            tags: &article.tags,
        };
        self.judge_fields(source, fields, Some(article.published), now)
    }

    /// `date`: the entry's own; an undated entry is as new as `now` (it is
    /// dated when first seen).
    fn judge_fields(
        &self,
        source: &str,
        fields: Fields<'_>,
        date: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Verdict {
        if !self.apply_to(source) {
            return Verdict::Passed;
        }
        let age = now - date.unwrap_or(now);
        let text = EntryText::of(fields);
        let matching = |rule: &&CompiledRule| rule.is_match(&text, age);
        let of = || self.of(source);
        if let Some(rule) = of().filter(|r| r.action == RuleAction::Drop).find(matching) {
            return Verdict::Dropped {
                rule: rule.name.clone(),
                why: rule.description.clone(),
            };
        }
        let keep: Vec<&CompiledRule> = of().filter(|r| r.action == RuleAction::Keep).collect();
        if keep.is_empty() {
            return Verdict::Passed;
        }
        let names: Vec<&str> = keep.iter().map(|r| r.name.as_str()).collect();
        match keep.iter().copied().find(matching) {
            Some(rule) => Verdict::Kept {
                rule: rule.name.clone(),
                why: rule.description.clone(),
            },
            None => Verdict::Dropped {
                rule: NOT_KEPT.to_string(),
                why: format!(
                    "no keep rule of source {source} matched ({})",
                    names.join(", ")
                ),
            },
        }
    }

    fn of<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a CompiledRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.sources.is_empty() || r.sources.iter().any(|s| s == source))
    }
}

/// What `tributary rules apply` did (or would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Stored articles judged.
    pub judged: u64,
    /// Articles the rules drop in every source that carries them.
    pub dropped: u64,
    /// Of those, deleted (0 on a dry run).
    pub removed: u64,
}

/// An article `apply` drops, as it reports it.
#[derive(Debug, Clone)]
pub struct StoredDrop {
    pub uid: String,
    pub title: String,
    /// The first source carrying it, and its verdict there.
    pub source: String,
    pub rule: String,
    pub why: String,
}

/// How many stored articles `apply` judges and removes at once: bounds its
/// memory and each transaction.
const APPLY_PAGE: u32 = 200;

/// `tributary rules apply`: judges every stored article by the current
/// rules as each source that carries it. An article dropped in all of them
/// is reported to `on_drop` and, unless `dry_run`, deleted; its entries are
/// remembered as dropped (so the next fetch does not store them again while
/// the rules stay as they are), and served feeds change. An article some
/// source keeps stays: that source's entry would bring it back anyway.
pub async fn apply(
    store: &crate::store::Store,
    rules: &Rules,
    now: DateTime<Utc>,
    dry_run: bool,
    mut on_drop: impl FnMut(&StoredDrop),
) -> Result<ApplyStats, crate::store::StoreError> {
    use crate::model::DroppedEntry;
    use crate::store::Removal;
    let mut stats = ApplyStats::default();
    let mut after = 0;
    loop {
        let page = store.stored_articles(after, APPLY_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.article.id;
        let mut removals = Vec::new();
        for stored in page {
            stats.judged += 1;
            let verdicts: Vec<Verdict> = stored
                .entries
                .iter()
                .map(|(_, source, _)| rules.judge_stored(source, &stored.article, now))
                .collect();
            if verdicts.is_empty() || !verdicts.iter().all(Verdict::is_dropped) {
                continue;
            }
            stats.dropped += 1;
            let mut drops = Vec::new();
            for ((source_id, source, entry_key), verdict) in stored.entries.iter().zip(verdicts) {
                let (Verdict::Dropped { rule, why }, Some(fingerprint)) =
                    (verdict, rules.fingerprint(source))
                else {
                    continue;
                };
                if drops.is_empty() {
                    on_drop(&StoredDrop {
                        uid: stored.article.uid.clone(),
                        title: stored.article.title.clone(),
                        source: source.clone(),
                        rule: rule.clone(),
                        why: why.clone(),
                    });
                }
                drops.push((
                    *source_id,
                    fingerprint,
                    DroppedEntry {
                        entry_key: entry_key.clone(),
                        fingerprint: stored.fingerprint.clone(),
                        canonical_url: stored.canonical_url.clone(),
                        link: stored.article.link.clone(),
                        title: stored.article.title.clone(),
                        rule,
                        why,
                    },
                ));
            }
            removals.push(Removal {
                article_id: stored.article.id,
                drops,
            });
        }
        if !dry_run {
            stats.removed += store.remove_dropped(&removals, now).await?;
        }
    }
    Ok(stats)
}

impl CompiledRule {
    /// Every condition it has holds.
    fn is_match(&self, text: &EntryText<'_>, age: TimeDelta) -> bool {
        if self.older_than.is_some_and(|d| age <= d) || self.newer_than.is_some_and(|d| age >= d) {
            return false;
        }
        match &self.matcher {
            Some(matcher) => matcher.is_match(text, &self.fields),
            // `any` with nothing left to look for after folding matches nothing.
            None => !self.has_text_condition,
        }
    }
}

/// `30d`, `12h`, `90s`: the largest whole unit.
fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn rules(toml: &str) -> Rules {
        let text = format!(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\
             [[source]]\nname = \"b\"\nurl = \"https://b.example/f\"\n{toml}"
        );
        Rules::new(&Config::from_toml(&text, Path::new("t.toml")).unwrap().rules)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn entry(title: &str, days_old: i64) -> Entry {
        Entry {
            title: Some(title.into()),
            link: Some("https://a.example/post".into()),
            categories: vec!["Sponsored Content".into()],
            published: Some(now() - TimeDelta::days(days_old)),
            ..Entry::default()
        }
    }

    fn verdict(rules: &Rules, source: &str, title: &str, days_old: i64, tags: &[&str]) -> String {
        let tags: Vec<Tag> = tags.iter().filter_map(|t| Tag::from_label(t)).collect();
        match rules.judge(source, &entry(title, days_old), &tags, now()) {
            Verdict::Passed => "passed".into(),
            Verdict::Kept { rule, .. } => format!("kept by {rule}"),
            Verdict::Dropped { rule, .. } => format!("dropped by {rule}"),
        }
    }

    #[test]
    fn drop_rules_come_first_then_a_sources_keep_rules() {
        let rules = rules(
            "[[rule]]\naction = \"keep\"\nsources = [\"a\"]\nany = [\"Rust\", \"Linux\"]\nfields = [\"title\"]\n\
             [[rule]]\nname = \"no-ads\"\naction = \"drop\"\nregex = \"(?i)^sponsored\"\nfields = [\"categories\"]\n\
             [[rule]]\nname = \"old\"\naction = \"drop\"\nolder_than = \"30d\"\n\
             [[rule]]\nname = \"fresh-linux\"\naction = \"keep\"\nsources = [\"a\"]\nany = [\"kernel\"]\nfields = [\"tags\"]\n",
        );
        // (source, title, days old, tags, verdict)
        let cases: &[(&str, &str, i64, &[&str], &str)] = &[
            // Every entry carries the "Sponsored Content" category: the
            // drop rule is first, before any keep rule.
            ("a", "Rust 2.0", 1, &[], "dropped by no-ads"),
            ("b", "Anything", 1, &[], "dropped by no-ads"),
        ];
        for (source, title, days, tags, expected) in cases {
            assert_eq!(
                &verdict(&rules, source, title, *days, tags),
                expected,
                "{title}"
            );
        }
        let rules_without_ads = self::rules(
            "[[rule]]\naction = \"keep\"\nsources = [\"a\"]\nany = [\"Rust\", \"Linux\"]\nfields = [\"title\"]\n\
             [[rule]]\nname = \"old\"\naction = \"drop\"\nolder_than = \"30d\"\n\
             [[rule]]\nname = \"kernel\"\naction = \"keep\"\nsources = [\"a\"]\nany = [\"kernel\"]\nfields = [\"tags\"]\n",
        );
        let cases: &[(&str, &str, i64, &[&str], &str)] = &[
            ("a", "Rust 2.0 is out", 1, &[], "kept by rule-1"),
            ("a", "Rusty nails", 1, &[], "dropped by not-kept"),
            ("a", "Scheduler patches", 1, &["Kernel"], "kept by kernel"),
            ("a", "Rust 2.0 is out", 31, &[], "dropped by old"),
            // Source b has no keep rule: only the drop rules judge it.
            ("b", "Rusty nails", 1, &[], "passed"),
            ("b", "Rusty nails", 31, &[], "dropped by old"),
            ("b", "Rusty nails", 29, &[], "passed"),
        ];
        for (source, title, days, tags, expected) in cases {
            assert_eq!(
                &verdict(&rules_without_ads, source, title, *days, tags),
                expected,
                "{source}: {title}, {days} days"
            );
        }
    }

    #[test]
    fn every_condition_of_a_rule_must_hold() {
        let rules = rules(
            "[[rule]]\nname = \"old-deals\"\naction = \"drop\"\nany = [\"deal\"]\nolder_than = \"2d\"\nnewer_than = \"10d\"\n",
        );
        assert_eq!(verdict(&rules, "a", "Deal of the day", 1, &[]), "passed");
        assert_eq!(
            verdict(&rules, "a", "Deal of the day", 3, &[]),
            "dropped by old-deals"
        );
        assert_eq!(verdict(&rules, "a", "Deal of the day", 11, &[]), "passed");
        assert_eq!(verdict(&rules, "a", "Ideal weather", 3, &[]), "passed");
        // Undated: as new as now.
        let undated = Entry {
            published: None,
            ..entry("Deal", 0)
        };
        assert_eq!(rules.judge("a", &undated, &[], now()), Verdict::Passed);
    }

    #[test]
    fn check_warns_of_a_drop_rule_by_newer_than() {
        let text = "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\
                    [[rule]]\naction = \"drop\"\nnewer_than = \"1h\"\n\
                    [[rule]]\naction = \"keep\"\nnewer_than = \"2d\"\n";
        let warnings = Config::from_toml(text, Path::new("t.toml"))
            .unwrap()
            .warnings();
        let about_rules: Vec<&String> = warnings.iter().filter(|w| w.contains("rule")).collect();
        assert_eq!(about_rules.len(), 1, "{warnings:?}");
        assert!(about_rules[0].starts_with("rule \"rule-1\" drops by newer_than"));
    }

    #[test]
    fn the_fingerprint_changes_with_the_sources_rules_only() {
        let one = rules("[[rule]]\naction = \"drop\"\nsources = [\"a\"]\nany = [\"x\"]\n");
        let two = rules(
            "[[rule]]\naction = \"drop\"\nsources = [\"a\"]\nany = [\"x\"]\n\
             [[rule]]\naction = \"drop\"\nsources = [\"b\"]\nany = [\"y\"]\n",
        );
        let changed = rules("[[rule]]\naction = \"drop\"\nsources = [\"a\"]\nany = [\"z\"]\n");
        assert!(one.fingerprint("a").is_some());
        assert_eq!(one.fingerprint("a"), two.fingerprint("a"));
        assert_ne!(one.fingerprint("a"), changed.fingerprint("a"));
        assert_eq!(one.fingerprint("b"), None);
        assert!(two.fingerprint("b").is_some());
    }

    #[test]
    fn bad_rules_are_refused_at_their_place() {
        let base = "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\n";
        let cases = [
            ("[[rule]]\naction = \"hide\"\nany = [\"x\"]\n", "5:10: rule \"rule-1\": action \"hide\" must be \"drop\" or \"keep\""),
            ("[[rule]]\naction = \"drop\"\n", "4:1: rule \"rule-1\" needs `any`, `regex`, `older_than` or `newer_than`"),
            ("[[rule]]\naction = \"drop\"\nsources = [\"zz\"]\nany = [\"x\"]\n", "6:12: rule \"rule-1\": no source named \"zz\""),
            ("[[rule]]\naction = \"drop\"\nany = [\"x\"]\nfields = [\"body\"]\n", "7:11: unknown field \"body\", expected one of title, summary, content, categories, author, url, tags"),
            ("[[rule]]\naction = \"drop\"\nolder_than = \"1d\"\nfields = [\"title\"]\n", "7:10: rule \"rule-1\": `fields` needs `any` or `regex` to look for"),
            ("[[rule]]\nname = \"Ads\"\naction = \"drop\"\nany = [\"x\"]\n", "5:8: invalid rule name \"Ads\""),
            ("[[rule]]\nname = \"not-kept\"\naction = \"drop\"\nany = [\"x\"]\n", "5:8: rule name \"not-kept\" is reserved"),
            ("[[rule]]\naction = \"drop\"\nany = [\"x\"]\n[[rule]]\nname = \"rule-1\"\naction = \"drop\"\nany = [\"y\"]\n", "8:8: duplicate rule name \"rule-1\""),
            ("[[rule]]\naction = \"drop\"\nregex = \"(x\"\n", "6:9: invalid regex"),
            ("[[rule]]\naction = \"drop\"\nregex = \"\\\\w{1000}\\\\w{1000}\"\n", "6:9: invalid regex"),
            ("[[rule]]\naction = \"drop\"\nolder_than = \"0s\"\n", "6:14: older_than must be greater than 0"),
        ];
        for (rule, expected) in cases {
            let error = Config::from_toml(&format!("{base}{rule}"), Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("t.toml:{expected}")),
                "{rule}: {error}"
            );
        }
        // A tag rule cannot look at tags: they are being made.
        let error = Config::from_toml(
            &format!("{base}[[tag_rule]]\ntag = \"t\"\nany = [\"x\"]\nfields = [\"tags\"]\n"),
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("t.toml:7:11: a tag_rule cannot look at `tags`"),
            "{error}"
        );
    }
}
