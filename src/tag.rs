//! Tag terms and labels (CONTRACT §3) and compiled tag rules.

use crate::config::TagRuleConfig;
use crate::model::{Entry, Tag};

/// A tag's term: lowercase, runs of spaces, `_` and `-` folded to one `-`,
/// trimmed of separators at either end. `XI JINPING` -> `xi-jinping`.
pub fn term(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut pending_separator = false;
    for c in label.chars() {
        if c.is_whitespace() || c == '_' || c == '-' {
            pending_separator = !out.is_empty();
        } else {
            if pending_separator {
                out.push('-');
                pending_separator = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The configured `tag_rule`s, compiled once.
#[derive(Debug, Clone, Default)]
pub struct TagRules {}

impl TagRules {
    pub fn new(rules: &[TagRuleConfig]) -> TagRules {
        todo!("{rules:?}")
    }

    /// The tags of every rule that matches the entry.
    pub fn matching(&self, entry: &Entry) -> Vec<Tag> {
        todo!("{entry:?}")
    }
}

/// An entry's tags: its categories, then its source's tags, then the rules'
/// tags; one per term, the first spelling kept as label.
pub fn tags_for(entry: &Entry, source_tags: &[String], rules: &TagRules) -> Vec<Tag> {
    todo!("{entry:?} {source_tags:?} {rules:?}")
}
