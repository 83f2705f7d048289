//! Why a merged view has no article (docs/HTTP.md "Empty feeds"): a newcomer
//! opening an empty feed learns whether to wait, fix a source or change the
//! filter, in the Atom `subtitle`, the JSON Feed `description`, the browser
//! view and the index page.

use crate::model::{Filter, SourceState};
use crate::store::{Store, StoreError};
use std::fmt;

/// Failing sources named one by one; the rest are counted.
const NAMED_SOURCES: usize = 3;
/// A source's last error as quoted: its first line, at most this many
/// characters.
const ERROR_CHARS: usize = 100;

/// Why the first page of a view is empty, checked in this order: articles
/// stored but filtered out, then the state of the sources the view reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmptyReason {
    /// Articles are stored (`stored` of them, when known exactly) from the
    /// view's sources, but none passes its filter (`filter`, in words).
    NoMatch { stored: Option<i64>, filter: String },
    /// Every source the view reads is not fetched, and none left articles:
    /// each with why (disabled in the config, gone, removed from it).
    SourcesDisabled(Vec<(String, String)>),
    /// The config has no source.
    NoSources,
    /// None of the view's enabled sources (named) has been fetched yet: a
    /// daemon's first minutes.
    NotFetchedYet(Vec<String>),
    /// No source of the view has fetched successfully: the failing ones
    /// with their last error (briefly), and how many were never fetched.
    AllFailing {
        failing: Vec<(String, String)>,
        not_fetched: usize,
    },
    /// `sources` sources were fetched, but their feeds held no entry.
    NothingFetched { sources: usize },
}

/// Why `filter`'s first page is empty. `sources`: every configured source's
/// state (`Store::source_states`).
pub async fn why_empty(
    store: &Store,
    filter: &Filter,
    sources: &[SourceState],
) -> Result<EmptyReason, StoreError> {
    // Exactly when one count answers it: all articles, or one source's
    // (articles several sources carry would count twice in a sum).
    let mut stored = None;
    let mut any_stored = false;
    if filter.sources.is_empty() {
        let count = store.article_count().await?;
        stored = Some(count);
        any_stored = count > 0;
    } else {
        for name in &filter.sources {
            let count = match sources.iter().find(|s| &s.name == name) {
                Some(state) => state.articles,
                // Removed from the config, its articles kept.
                None => match store.source_id(name).await {
                    Ok(id) => i64::from(store.source_has_articles(id).await?),
                    Err(StoreError::UnknownSource(_)) => 0,
                    Err(e) => return Err(e),
                },
            };
            any_stored |= count > 0;
        }
        if let [name] = filter.sources.as_slice() {
            stored = sources.iter().find(|s| &s.name == name).map(|s| s.articles);
        }
    }
    Ok(decide(filter, sources, any_stored, stored))
}

/// The decision of [`why_empty`] once the counts are known.
fn decide(
    filter: &Filter,
    sources: &[SourceState],
    any_stored: bool,
    stored: Option<i64>,
) -> EmptyReason {
    if any_stored {
        return EmptyReason::NoMatch {
            stored,
            filter: describe(filter),
        };
    }
    let read: Vec<&SourceState> = if filter.sources.is_empty() {
        sources.iter().collect()
    } else {
        sources
            .iter()
            .filter(|s| filter.sources.contains(&s.name))
            .collect()
    };
    let fetched = |s: &&SourceState| s.enabled && s.disabled_reason.is_none();
    let active: Vec<&SourceState> = read.iter().copied().filter(fetched).collect();
    if active.is_empty() {
        let mut off: Vec<(String, String)> = read
            .iter()
            .map(|s| {
                let why = match &s.disabled_reason {
                    Some(reason) => brief(reason),
                    None => "disabled in the config".to_string(),
                };
                (s.name.clone(), why)
            })
            .collect();
        for name in &filter.sources {
            if !read.iter().any(|s| &s.name == name) {
                off.push((name.clone(), "removed from the config".to_string()));
            }
        }
        return if off.is_empty() {
            EmptyReason::NoSources
        } else {
            EmptyReason::SourcesDisabled(off)
        };
    }
    let never: Vec<&&SourceState> = active
        .iter()
        .filter(|s| s.last_fetch_at.is_none())
        .collect();
    if never.len() == active.len() {
        return EmptyReason::NotFetchedYet(active.iter().map(|s| s.name.clone()).collect());
    }
    let failing: Vec<(String, String)> = active
        .iter()
        .filter(|s| s.last_fetch_at.is_some() && s.consecutive_failures > 0)
        .map(|s| {
            let error = s.last_error.as_deref().unwrap_or("unknown error");
            (s.name.clone(), brief(error))
        })
        .collect();
    if failing.len() + never.len() == active.len() {
        return EmptyReason::AllFailing {
            failing,
            not_fetched: never.len(),
        };
    }
    EmptyReason::NothingFetched {
        sources: active.len() - failing.len() - never.len(),
    }
}

/// A view's filter in words: `tagged any of a, b; none of c, from rfi-en`.
pub fn describe(filter: &Filter) -> String {
    let mut tags = Vec::new();
    for (what, list) in [
        ("any of", &filter.any),
        ("all of", &filter.all),
        ("none of", &filter.none),
    ] {
        if !list.is_empty() {
            tags.push(format!("{what} {}", list.join(", ")));
        }
    }
    let mut words: Vec<String> = Vec::new();
    if !tags.is_empty() {
        words.push(format!("tagged {}", tags.join("; ")));
    }
    if !filter.sources.is_empty() {
        words.push(format!("from {}", filter.sources.join(", ")));
    }
    if !filter.languages.is_empty() {
        words.push(format!("in {}", filter.languages.join(", ")));
    }
    let mut described = if words.is_empty() {
        "every article".to_string()
    } else {
        words.join(", ")
    };
    if let Some(n) = filter.min_outlets.filter(|n| *n > 1) {
        described += &format!(", carried by {n} outlets or more");
    }
    if let Some(window) = filter.effective_window() {
        described += &format!(
            ", published in the last {}",
            crate::model::format_window(window)
        );
    }
    if filter.sort == crate::model::Sort::Coverage {
        described += ", most outlets first";
    }
    described
}

/// An error message's first line, cut to [`ERROR_CHARS`].
fn brief(error: &str) -> String {
    let line = error.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line.to_string(),
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Named sources with their reasons: `a (why); b (why); and 2 more`.
fn name_sources(list: &[(String, String)], separator: &str) -> String {
    let mut out: Vec<String> = list
        .iter()
        .take(NAMED_SOURCES)
        .map(|(name, why)| format!("{name}{separator}{why}"))
        .collect();
    if list.len() > NAMED_SOURCES {
        out.push(format!("and {} more", list.len() - NAMED_SOURCES));
    }
    out.join("; ")
}

impl fmt::Display for EmptyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmptyReason::NoMatch { stored, filter } => match stored {
                Some(1) => write!(
                    f,
                    "No articles: the one stored article does not match this feed ({filter})."
                ),
                Some(n) => write!(
                    f,
                    "No articles: none of the {n} stored articles matches this feed ({filter})."
                ),
                None => write!(
                    f,
                    "No articles: none of the stored articles matches this feed ({filter})."
                ),
            },
            EmptyReason::SourcesDisabled(sources) => match sources.as_slice() {
                [(name, why)] => write!(f, "No articles: source {name} is not fetched: {why}."),
                _ => write!(
                    f,
                    "No articles: none of its sources is fetched: {}.",
                    name_sources(sources, ": ")
                ),
            },
            EmptyReason::NoSources => write!(f, "No articles: no source is configured."),
            EmptyReason::NotFetchedYet(sources) => match sources.as_slice() {
                [name] => write!(
                    f,
                    "No articles yet: source {name} has not been fetched yet."
                ),
                _ => write!(
                    f,
                    "No articles yet: none of the {} sources has been fetched yet.",
                    sources.len()
                ),
            },
            EmptyReason::AllFailing {
                failing,
                not_fetched,
            } => {
                match failing.as_slice() {
                    [(name, error)] if *not_fetched == 0 => {
                        write!(f, "No articles yet: source {name} is failing: {error}")?
                    }
                    _ => write!(
                        f,
                        "No articles yet: every source fetched is failing ({}): {}",
                        failing.len(),
                        name_sources(failing, ": ")
                    )?,
                }
                if *not_fetched > 0 {
                    write!(
                        f,
                        "; {} not fetched yet",
                        plural(*not_fetched as i64, "other source", "other sources")
                    )?;
                }
                write!(f, ".")
            }
            EmptyReason::NothingFetched { sources } => write!(
                f,
                "No articles yet: {} fetched without error, but held no entries.",
                plural(*sources as i64, "source was", "sources were")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn source(name: &str) -> SourceState {
        SourceState {
            name: name.to_string(),
            url: format!("https://{name}.test/feed"),
            enabled: true,
            ..SourceState::default()
        }
    }

    fn fetched(name: &str, failures: i64, error: Option<&str>) -> SourceState {
        SourceState {
            last_fetch_at: Some(Utc.with_ymd_and_hms(2026, 5, 8, 10, 0, 0).unwrap()),
            consecutive_failures: failures,
            last_error: error.map(str::to_string),
            ..source(name)
        }
    }

    #[test]
    fn stored_articles_make_the_filter_the_reason() {
        let filter = Filter {
            any: vec!["china".into(), "russia".into()],
            none: vec!["sport".into()],
            ..Filter::default()
        };
        let reason = decide(
            &filter,
            &[fetched("a", 3, Some("HTTP 503"))],
            true,
            Some(12),
        );
        assert_eq!(
            reason.to_string(),
            "No articles: none of the 12 stored articles matches this feed (tagged any of china, russia; none of sport)."
        );
    }

    #[test]
    fn source_states_give_the_reason_when_nothing_is_stored() {
        let all = Filter::default();
        let text = |sources: &[SourceState]| decide(&all, sources, false, Some(0)).to_string();
        assert_eq!(
            text(&[source("a"), source("b")]),
            "No articles yet: none of the 2 sources has been fetched yet."
        );
        assert_eq!(
            text(&[source("a")]),
            "No articles yet: source a has not been fetched yet."
        );
        assert_eq!(
            text(&[fetched("a", 2, Some("HTTP 503 Service Unavailable\nbody"))]),
            "No articles yet: source a is failing: HTTP 503 Service Unavailable."
        );
        let many: Vec<SourceState> = (0..5)
            .map(|i| fetched(&format!("s{i}"), 1, Some("timed out")))
            .chain([source("new")])
            .collect();
        assert_eq!(
            text(&many),
            "No articles yet: every source fetched is failing (5): s0: timed out; s1: timed out; s2: timed out; and 2 more; 1 other source not fetched yet."
        );
        assert_eq!(
            text(&[fetched("a", 0, None), fetched("b", 1, Some("x"))]),
            "No articles yet: 1 source was fetched without error, but held no entries."
        );
        assert_eq!(
            text(&[SourceState {
                enabled: false,
                ..source("a")
            }]),
            "No articles: source a is not fetched: disabled in the config."
        );
        assert_eq!(text(&[]), "No articles: no source is configured.");
    }

    #[test]
    fn named_sources_limit_the_reason_to_them() {
        let filter = Filter {
            sources: vec!["gone".into(), "old".into(), "removed".into()],
            ..Filter::default()
        };
        let sources = [
            SourceState {
                disabled_reason: Some("HTTP 410 Gone: the feed was removed".into()),
                ..fetched("gone", 1, Some("HTTP 410"))
            },
            SourceState {
                enabled: false,
                ..source("old")
            },
            fetched("other", 0, None),
        ];
        assert_eq!(
            decide(&filter, &sources, false, None).to_string(),
            "No articles: none of its sources is fetched: gone: HTTP 410 Gone: the feed was removed; old: disabled in the config; removed: removed from the config."
        );
        let one = Filter {
            sources: vec!["old".into()],
            ..Filter::default()
        };
        assert_eq!(
            decide(&one, &sources, false, Some(0)).to_string(),
            "No articles: source old is not fetched: disabled in the config."
        );
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(300);
        let cut = brief(&long);
        assert_eq!(cut.chars().count(), ERROR_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn filters_read_as_words() {
        assert_eq!(describe(&Filter::default()), "every article");
        let from = Filter {
            sources: vec!["rfi-en".into()],
            ..Filter::default()
        };
        assert_eq!(describe(&from), "from rfi-en");
        let both = Filter {
            all: vec!["world".into()],
            ..from
        };
        assert_eq!(describe(&both), "tagged all of world, from rfi-en");
    }
}
