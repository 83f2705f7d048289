//! The `Link` header's WebSub targets (RFC 8288; https://www.w3.org/TR/websub/#discovery):
//! `<https://hub.example/>; rel="hub", <https://example.org/feed>; rel="self"`.

use reqwest::header::{HeaderMap, LINK};
use url::Url;

/// What a response's `Link` headers announce for WebSub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebLinks {
    /// `rel="hub"` targets, absolute http(s), in header order.
    pub hubs: Vec<String>,
    /// The first `rel="self"` target: the topic.
    pub self_url: Option<String>,
}

/// Header bytes read, at most: a `Link` header is a few hundred bytes.
const MAX_LINK_BYTES: usize = 16 * 1024;
/// Hubs kept from the headers.
const MAX_HUBS: usize = 4;

/// The WebSub links of `headers`, resolved against `base`.
pub fn web_links(headers: &HeaderMap, base: &Url) -> WebLinks {
    let mut links = WebLinks::default();
    let mut read = 0;
    for value in headers.get_all(LINK) {
        read += value.len();
        if read > MAX_LINK_BYTES {
            break;
        }
        let Ok(text) = value.to_str() else { continue };
        for (target, rels) in parse_link_header(text) {
            let Some(url) = base
                .join(target)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
            else {
                continue;
            };
            let has = |rel: &str| rels.iter().any(|r| r.eq_ignore_ascii_case(rel));
            if has("hub") && links.hubs.len() < MAX_HUBS {
                links.hubs.push(url.to_string());
            }
            if has("self") && links.self_url.is_none() {
                links.self_url = Some(url.to_string());
            }
        }
    }
    links
}

/// Each link of one `Link` header value: its target and its `rel` tokens.
/// Lenient: a link that does not parse is skipped, not the rest.
pub fn parse_link_header(text: &str) -> Vec<(&str, Vec<String>)> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].trim();
        rest = &rest[open + close + 1..];
        // Parameters up to the next link: a comma outside quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..end];
        rest = &rest[end..];
        let mut rels = Vec::new();
        for param in params.split(';') {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("rel") {
                let value = value.trim().trim_matches('"');
                rels.extend(value.split_ascii_whitespace().map(str::to_string));
            }
        }
        links.push((target, rels));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn hub_and_self_from_one_or_several_headers() {
        let base = Url::parse("https://example.org/blog/feed.xml").unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            LINK,
            HeaderValue::from_static(
                r#"<https://hub.example/>; rel="hub", </blog/feed.xml>; rel="self alternate""#,
            ),
        );
        headers.append(
            LINK,
            HeaderValue::from_static("<https://second.example/hub>;rel=hub"),
        );
        let links = web_links(&headers, &base);
        assert_eq!(
            links.hubs,
            ["https://hub.example/", "https://second.example/hub"]
        );
        assert_eq!(
            links.self_url.as_deref(),
            Some("https://example.org/blog/feed.xml")
        );
    }

    #[test]
    fn odd_headers_give_what_parses() {
        let parsed = parse_link_header(r#"<a>; title="x, y"; rel="hub", <b"#);
        assert_eq!(parsed, [("a", vec!["hub".to_string()])]);
        let base = Url::parse("https://example.org/").unwrap();
        let mut headers = HeaderMap::new();
        headers.append(LINK, HeaderValue::from_static(r#"<ftp://x/>; rel="hub""#));
        assert_eq!(web_links(&headers, &base), WebLinks::default());
    }
}
