//! Article identity (CONTRACT §4): canonical URLs and the keys the store
//! enforces. Pure functions.

use crate::model::{Entry, NewArticle, Tag};

/// Canonical form of an article URL: scheme and host lowercased, default
/// port, fragment and tracking parameters dropped. `None` if not an
/// absolute http(s) URL.
pub fn canonical_url(url: &str) -> Option<String> {
    todo!("{url}")
}

/// Turns a parsed entry of source `source_name` into what the store keeps.
pub fn prepare(source_name: &str, entry: Entry, tags: Vec<Tag>) -> NewArticle {
    todo!("{source_name} {entry:?} {tags:?}")
}
