//! `file:` sources: a feed on this machine's disk, such as one a local
//! script writes, or the sample that makes the quick start show a feed
//! offline. Read with the same caps as a download; the file's size and
//! modification time stand in for an ETag, so an unchanged file is a 304.

use super::{CacheHints, FetchError, Fetched, Validators};
use std::time::UNIX_EPOCH;
use url::Url;

pub(super) async fn read(
    url: &Url,
    validators: &Validators,
    max_body: u64,
) -> Result<Fetched, FetchError> {
    let path = url
        .to_file_path()
        .map_err(|()| FetchError::Other(format!("{url}: not a local file path")))?;
    let unreadable = |e: std::io::Error| FetchError::Other(format!("{}: {e}", path.display()));
    let meta = tokio::fs::metadata(&path).await.map_err(unreadable)?;
    if !meta.is_file() {
        return Err(FetchError::Other(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    if meta.len() > max_body {
        return Err(FetchError::TooLarge(max_body));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let etag = format!("\"{}-{modified}\"", meta.len());
    if validators.etag.as_deref() == Some(etag.as_str()) {
        return Ok(Fetched::NotModified {
            cache: CacheHints::default(),
            permanent_redirect: None,
        });
    }
    let bytes = tokio::fs::read(&path).await.map_err(unreadable)?;
    // The file may have grown between the two looks.
    if bytes.len() as u64 > max_body {
        return Err(FetchError::TooLarge(max_body));
    }
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Some("application/feed+json".to_string()),
        _ => None,
    };
    Ok(Fetched::Body {
        status: 200,
        bytes: bytes.into(),
        content_type,
        validators: Validators {
            etag: Some(etag),
            last_modified: None,
        },
        final_url: url.clone(),
        permanent_redirect: None,
        cache: CacheHints::default(),
        peer: None,
        links: Default::default(),
    })
}
