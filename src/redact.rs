//! Source URLs as they may be shown: in published feeds, on the index page,
//! in `tributary sources` and `opml export`, in logs and stored errors.
//!
//! Private feeds often carry credentials in their URL (`user:pass@`,
//! `?apikey=…`). The full URL is only ever used to fetch; everything that
//! leaves the process goes through [`public_url`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use url::Url;

/// Source URLs whose config declares a `public_url`, by the URL as
/// configured. Process-wide, filled as configs are read, so that every
/// place that shows a source URL only needs [`public_url`]. Entries are
/// never removed: a reload that drops a `public_url` keeps showing it,
/// which never reveals more than before. Bounded by the URLs configured.
fn declared() -> &'static RwLock<HashMap<String, String>> {
    static DECLARED: OnceLock<RwLock<HashMap<String, String>>> = OnceLock::new();
    DECLARED.get_or_init(Default::default)
}

/// From now on `url` is shown as `public`.
pub fn declare(url: &Url, public: &Url) {
    let mut declared = declared().write().unwrap_or_else(|e| e.into_inner());
    declared.insert(url.as_str().to_owned(), public.as_str().to_owned());
}

/// What a secret query value is replaced with.
pub const MASK: &str = "***";

/// Query parameter names whose values are secrets: a parameter is masked
/// when its lowercased name (percent-decoded, `-` and `.` read as `_`)
/// contains one of these. Broad on purpose: masking a harmless value
/// costs nothing, publishing a key does.
pub const SECRET_PARAMETERS: &[&str] = &[
    "token",      // token, access_token, auth_token, x-token
    "key",        // key, apikey, api_key, x-api-key, license_key
    "secret",     // secret, client_secret
    "pass",       // password, passwd, passphrase
    "pwd",        //
    "auth",       // auth, oauth, authorization
    "sig",        // sig, signature, x-amz-signature
    "session",    // session, sessionid
    "credential", // credential, x-amz-credential
    "jwt",        //
];

/// Exact names too short to match as substrings without false hits.
const SECRET_EXACT: &[&str] = &["sid", "code", "hash", "private"];

/// Whether a query parameter named `name` carries a secret.
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace(['-', '.'], "_");
    SECRET_PARAMETERS.iter().any(|s| name.contains(s)) || SECRET_EXACT.contains(&name.as_str())
}

/// `url` fit to be shown: its declared `public_url`, else the URL with
/// userinfo dropped and the values of secret query parameters replaced by
/// [`MASK`]. Text that does not parse as a URL is shown as a placeholder,
/// never as is: it could be anything.
pub fn public_url(url: &str) -> Cow<'_, str> {
    let declared = declared().read().unwrap_or_else(|e| e.into_inner());
    if let Some(public) = declared.get(url) {
        return Cow::Owned(public.clone());
    }
    drop(declared);
    // Userinfo needs an `@`, a query a `?`: most URLs have neither, and
    // feeds call this for every entry.
    if !url.contains(['@', '?']) {
        return Cow::Borrowed(url);
    }
    match Url::parse(url) {
        Ok(parsed) => match redact(&parsed) {
            Some(redacted) => Cow::Owned(redacted.into()),
            None => Cow::Borrowed(url),
        },
        Err(_) => Cow::Borrowed("(invalid URL)"),
    }
}

/// [`public_url`] for a parsed URL.
pub fn public(url: &Url) -> Url {
    let declared = declared().read().unwrap_or_else(|e| e.into_inner());
    if let Some(public) = declared.get(url.as_str()).and_then(|p| Url::parse(p).ok()) {
        return public;
    }
    drop(declared);
    without_credentials(url)
}

/// `url` without userinfo and with secret query values masked, whatever
/// its declared public URL: the base that relative links in a feed resolve
/// against, which must stay the feed's real location.
pub fn without_credentials(url: &Url) -> Url {
    redact(url).unwrap_or_else(|| url.clone())
}

/// The redacted URL, or `None` when there is nothing to hide.
fn redact(url: &Url) -> Option<Url> {
    let has_userinfo = !url.username().is_empty() || url.password().is_some();
    let query = url.query().and_then(redact_query);
    if !has_userinfo && query.is_none() {
        return None;
    }
    let mut shown = url.clone();
    // Fails only for URLs that cannot have userinfo, which have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if let Some(query) = query {
        shown.set_query(Some(&query));
    }
    Some(shown)
}

/// The query with secret values masked, or `None` when none are secret.
/// Pairs are kept as written: only the secret values change.
fn redact_query(query: &str) -> Option<String> {
    let mut changed = false;
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            if !value.is_empty() && is_secret_parameter(&decoded) {
                changed = true;
                Cow::Owned(format!("{name}={MASK}"))
            } else {
                Cow::Borrowed(pair)
            }
        })
        .collect();
    changed.then(|| pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_dropped_and_secret_values_masked() {
        let cases = [
            (
                "https://user:hunter2@feeds.example/rss",
                "https://feeds.example/rss",
            ),
            ("https://user@feeds.example/rss", "https://feeds.example/rss"),
            (
                "https://feeds.example/rss?apikey=S3CR3T&lang=en",
                "https://feeds.example/rss?apikey=***&lang=en",
            ),
            (
                "https://feeds.example/rss?lang=en&X-Api-Key=S&Access_Token=T&sig=U&auth=V&page=2",
                "https://feeds.example/rss?lang=en&X-Api-Key=***&Access_Token=***&sig=***&auth=***&page=2",
            ),
            (
                "http://a:b@feeds.example:8080/p?password=x&sid=y#top",
                "http://feeds.example:8080/p?password=***&sid=***#top",
            ),
            // Percent-encoded names are read decoded.
            (
                "https://feeds.example/?api%5Fkey=x",
                "https://feeds.example/?api%5Fkey=***",
            ),
            // Nothing to hide: the very same text.
            (
                "https://feeds.example/rss?lang=en&page=2",
                "https://feeds.example/rss?lang=en&page=2",
            ),
            ("https://feeds.example/rss?token", "https://feeds.example/rss?token"),
        ];
        for (url, shown) in cases {
            assert_eq!(public_url(url), shown, "{url}");
        }
        assert_eq!(public_url("not a url: me:secret@x?k=v"), "(invalid URL)");
    }

    #[test]
    fn secret_names_are_matched_case_insensitively_and_as_parts() {
        for name in [
            "token",
            "TOKEN",
            "apikey",
            "api_key",
            "x-api-key",
            "secret",
            "client_secret",
            "password",
            "passwd",
            "pwd",
            "auth",
            "oauth_token",
            "signature",
            "X-Amz-Signature",
            "session",
            "sessionid",
            "sid",
            "code",
            "private",
            "jwt",
        ] {
            assert!(is_secret_parameter(name), "{name}");
        }
        for name in ["lang", "page", "format", "q", "category", "id", "side"] {
            assert!(!is_secret_parameter(name), "{name}");
        }
    }

    #[test]
    fn a_declared_public_url_is_shown_instead() {
        let url = Url::parse("https://user:pw@feeds.example/private/abc123/rss").unwrap();
        let shown = Url::parse("https://feeds.example/news").unwrap();
        declare(&url, &shown);
        assert_eq!(public_url(url.as_str()), "https://feeds.example/news");
        assert_eq!(public(&url), shown);
        // Relative links still resolve against the real place, credentials
        // dropped.
        assert_eq!(
            without_credentials(&url).as_str(),
            "https://feeds.example/private/abc123/rss"
        );
    }
}
