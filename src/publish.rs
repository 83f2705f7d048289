//! Merged, filtered, paged views of the store, rendered as Atom or JSON Feed.

pub mod atom;
pub mod json;

use chrono::{DateTime, Utc};

/// Feed-level facts of one rendered page.
#[derive(Debug, Clone)]
pub struct FeedView {
    /// The feed's `atom:id`: stable, derived from its self URL without paging.
    pub id: String,
    pub title: String,
    /// Absolute URL of this page (with its query).
    pub self_url: String,
    /// The HTML page of this tributary instance (`base_url`).
    pub alternate_url: String,
    /// RFC 5005 `rel="next"`, absolute.
    pub next_url: Option<String>,
    pub author: String,
    /// Newest `updated` of the page's articles (or a fixed time when empty).
    pub updated: DateTime<Utc>,
    /// Generator version string.
    pub generator_version: String,
}
