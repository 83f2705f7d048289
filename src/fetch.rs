//! One shared HTTP client for every source (CONTRACT §8): conditional GET,
//! size and time caps, redirects, bounded concurrency (global and per host).

use crate::config::DaemonConfig;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::time::Duration;
use url::Url;

/// Validators echoed byte for byte on the next request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Caching hints a response gives, a floor on the polling interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    pub max_age: Option<Duration>,
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub enum Fetched {
    NotModified {
        cache: CacheHints,
        permanent_redirect: Option<Url>,
    },
    Body {
        status: u16,
        bytes: Bytes,
        content_type: Option<String>,
        validators: Validators,
        /// The URL the body came from, after redirects (base for relative URLs).
        final_url: Url,
        /// Where a 301/308 pointed, if the chain had one.
        permanent_redirect: Option<Url>,
        cache: CacheHints,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<DateTime<Utc>>,
    },
    #[error("body larger than {0} bytes")]
    TooLarge(u64),
    #[error("more than 5 redirects")]
    TooManyRedirects,
    #[error("{0}")]
    Other(String),
}

/// The shared client and its concurrency bounds.
pub struct Fetcher {}

impl Fetcher {
    pub fn new(daemon: &DaemonConfig) -> Result<Fetcher, FetchError> {
        todo!("{daemon:?}")
    }

    /// Fetches `url`, holding a global and a per-host permit while it runs.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        todo!("{url} {validators:?}")
    }
}
