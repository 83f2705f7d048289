//! One shared HTTP client for every source (docs/CONFIG.md "Fetching"): conditional GET,
//! size and time caps, redirects, bounded concurrency (global and per host).
//!
//! The client never follows redirects on its own: we walk the chain here so
//! we can cap it, spot permanent moves, keep the conditional headers on every
//! hop and be sure no `Referer` leaks. It has no cookie store, so a source
//! cannot track us across fetches.
//!
//! A redirect may not lead further inside the network than the source
//! itself: a public feed answering `302 Location: http://127.0.0.1/…` is
//! refused (see [`AddressClass`]). Names are resolved once per connection
//! by a resolver that drops the addresses the hop may not reach, so the
//! connection goes to a checked address (no DNS rebinding window).

mod file;
mod links;

pub use links::WebLinks;

use crate::clock::Clock;
use crate::config::{DaemonConfig, SourceRequest};
use crate::redact::public;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// RFC 9110 §15.4 leaves the cap to the client; 5 is the contract's.
pub const MAX_REDIRECTS: usize = 5;

/// Feeds first, anything else last: some servers pick the representation by
/// `Accept`, and a feed reader should ask for what it can read.
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
     application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.9, */*;q=0.8";

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

/// What a fetch that reached the server and succeeded brought back.
// One value per fetch, moved once into the pipeline and never kept in a
// collection: boxing the body's fields would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
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
        /// The class of the address the first hop reached (through a proxy:
        /// of an IP-literal URL only); `None` for `file:` and unknown. Pages
        /// a feed links to may be no more private (`fetch_confined`).
        peer: Option<AddressClass>,
        /// WebSub hub and self from the `Link` headers.
        links: WebLinks,
    },
}

/// Why a fetch failed; the scheduler backs off (or honours `retry_after`).
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
pub struct Fetcher {
    /// Connects anywhere: a source's first hop (the operator chose it),
    /// and every hop of a source that allows private redirects.
    client: reqwest::Client,
    /// For redirect hops: `confined[c]` connects only to addresses of class
    /// `c` or more public. Separate clients, so separate connection pools:
    /// a connection is only ever reused under the limit it was checked for.
    confined: [reqwest::Client; 3],
    /// Whole-fetch budget: every hop of the redirect chain and the body read.
    timeout: Duration,
    max_body: u64,
    /// At most `concurrency` fetches in flight in total.
    global: Arc<Semaphore>,
    /// At most `per_host` fetches in flight per host, keyed by the lowercased
    /// host of the URL asked for (port ignored: it is still the same server).
    /// The map only grows with the set of source hosts, which the config bounds.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_host: usize,
    /// What "now" a `Retry-After: SECONDS` counts from.
    clock: Clock,
    /// What clients are built from: a source's proxy gets its own.
    settings: Settings,
    /// One client per proxy a source names, built on first use; the
    /// config bounds how many.
    proxied: Mutex<HashMap<Url, reqwest::Client>>,
}

/// What the fetcher takes from [`DaemonConfig`]; its own type so tests can
/// build a fetcher without a whole validated config.
#[derive(Debug, Clone)]
struct Settings {
    user_agent: String,
    timeout: Duration,
    max_body: u64,
    concurrency: usize,
    per_host: usize,
}

impl Fetcher {
    pub fn new(daemon: &DaemonConfig) -> Result<Fetcher, FetchError> {
        Fetcher::with_settings(Settings {
            user_agent: daemon.user_agent.clone(),
            timeout: daemon.timeout,
            max_body: daemon.max_body,
            concurrency: daemon.concurrency,
            per_host: daemon.per_host,
        })
    }

    fn with_settings(settings: Settings) -> Result<Fetcher, FetchError> {
        let build = |limit: Option<AddressClass>| {
            let builder = Fetcher::builder(&settings);
            let builder = match limit {
                Some(limit) => builder.dns_resolver(Arc::new(ConfinedResolver { limit })),
                None => builder,
            };
            builder
                .build()
                .map_err(|e| FetchError::Other(error_chain(&e)))
        };
        Ok(Fetcher {
            client: build(None)?,
            confined: [
                build(Some(AddressClass::Public))?,
                build(Some(AddressClass::Private))?,
                build(Some(AddressClass::LinkLocal))?,
            ],
            timeout: settings.timeout,
            max_body: settings.max_body,
            // Zero permits would hang every fetch forever; config rejects it,
            // this only keeps a hand-built config from deadlocking.
            global: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            hosts: Mutex::new(HashMap::new()),
            per_host: settings.per_host.max(1),
            clock: Clock::system(),
            settings,
            proxied: Mutex::new(HashMap::new()),
        })
    }

    /// The same fetcher reading the time from `clock`: a `Retry-After` in
    /// seconds is then a time on the clock the refresh is scheduled by.
    pub fn with_clock(mut self, clock: Clock) -> Fetcher {
        self.clock = clock;
        self
    }

    fn builder(settings: &Settings) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .default_headers(HeaderMap::from_iter([(
                header::ACCEPT,
                HeaderValue::from_static(ACCEPT),
            )]))
            .redirect(redirect::Policy::none())
            .referer(false)
            .gzip(true)
            .deflate(true)
            .brotli(true)
            .connect_timeout(settings.timeout)
    }

    /// The client for a hop that may reach `limit` and more public
    /// addresses; `None`: anywhere.
    fn client_for(&self, limit: Option<AddressClass>) -> &reqwest::Client {
        match limit {
            Some(AddressClass::Public) => &self.confined[0],
            Some(AddressClass::Private) => &self.confined[1],
            Some(AddressClass::LinkLocal) => &self.confined[2],
            Some(AddressClass::Loopback) | None => &self.client,
        }
    }

    /// The client that sends every request through `proxy`. The proxy
    /// resolves names and connects, so only IP-literal redirect targets
    /// can be checked against the source's address (docs/CONFIG.md
    /// "Per-source requests").
    fn proxied_client(&self, proxy: &Url) -> Result<reqwest::Client, FetchError> {
        let mut clients = self.proxied.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(proxy) {
            return Ok(client.clone());
        }
        let client = reqwest::Proxy::all(proxy.as_str())
            .and_then(|proxy| Fetcher::builder(&self.settings).proxy(proxy).build())
            .map_err(|e| {
                FetchError::Other(format!("proxy {}: {}", public(proxy), error_chain(&e)))
            })?;
        clients.insert(proxy.clone(), client.clone());
        Ok(client)
    }

    /// Fetches `url`, holding a global and a per-host permit while it runs.
    ///
    /// The host permit is taken first so that a fetch queued behind a busy
    /// host does not sit on a global permit other hosts could use. A redirect
    /// to another host keeps the original host's permit: simple, and the
    /// bound still holds for the hosts we are configured to poll.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        self.fetch_for(url, validators, false, &SourceRequest::default())
            .await
    }

    /// [`Fetcher::fetch`] for a source that may (`allow_private_redirects`)
    /// or may not redirect further inside the network than its own address,
    /// with its own request settings.
    pub async fn fetch_for(
        &self,
        url: &Url,
        validators: &Validators,
        allow_private_redirects: bool,
        request: &SourceRequest,
    ) -> Result<Fetched, FetchError> {
        if url.scheme() == "file" {
            return file::read(url, validators, self.max_body).await;
        }
        self.fetch_polite(url, validators, allow_private_redirects, None, request)
            .await
    }

    /// [`Fetcher::fetch_for`] for a URL someone else chose (an article page
    /// a feed links to): every hop, the first included, may reach only
    /// addresses of class `limit` or more public, so a public feed cannot
    /// point us at this host, the LAN or a metadata service.
    pub async fn fetch_confined(
        &self,
        url: &Url,
        validators: &Validators,
        limit: AddressClass,
        request: &SourceRequest,
    ) -> Result<Fetched, FetchError> {
        self.fetch_polite(url, validators, false, Some(limit), request)
            .await
    }

    /// An HTTP(S) fetch within the per-host and global bounds and the
    /// timeout.
    async fn fetch_polite(
        &self,
        url: &Url,
        validators: &Validators,
        allow_private_redirects: bool,
        limit: Option<AddressClass>,
        request: &SourceRequest,
    ) -> Result<Fetched, FetchError> {
        check_scheme(url)?;
        let host = url
            .host_str()
            .ok_or_else(|| FetchError::Other(format!("{}: no host", public(url))))?;
        let host_permits = self.host_semaphore(host);
        let _host = host_permits
            .acquire()
            .await
            .expect("per-host semaphore is never closed");
        let _global = self
            .global
            .acquire()
            .await
            .expect("global semaphore is never closed");
        // The timeout starts once we hold the permits: waiting in line is
        // not the source's fault.
        let chain = self.fetch_chain(url, validators, allow_private_redirects, limit, request);
        tokio::time::timeout(self.timeout, chain)
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    fn host_semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Follows up to [`MAX_REDIRECTS`] redirects, then reads the answer.
    ///
    /// The first hop goes anywhere (unless `first_limit` confines it too);
    /// the address it connected to sets the limit for the redirects after
    /// it, unless the source allows private redirects.
    async fn fetch_chain(
        &self,
        url: &Url,
        validators: &Validators,
        allow_private_redirects: bool,
        first_limit: Option<AddressClass>,
        source: &SourceRequest,
    ) -> Result<Fetched, FetchError> {
        let proxied = match &source.proxy {
            Some(proxy) => Some(self.proxied_client(proxy)?),
            None => None,
        };
        let mut current = url.clone();
        let mut redirects = 0;
        let mut permanent = false;
        let mut limit: Option<AddressClass> = first_limit;
        let mut peer: Option<AddressClass> = None;
        loop {
            if let (Some(limit), Some(ip)) = (limit, literal_ip(&current)) {
                let class = AddressClass::of(ip);
                if class > limit {
                    let what = if redirects == 0 {
                        "page at"
                    } else {
                        "redirect to"
                    };
                    let refused = refusal(what, &ip.to_string(), class, limit);
                    return Err(FetchError::Other(refused));
                }
            }
            let client = proxied.as_ref().unwrap_or_else(|| self.client_for(limit));
            let same_origin = current.origin() == url.origin();
            let response = self
                .request(client, &current, validators, source, same_origin)
                .send()
                .await
                .map_err(classify)?;
            if redirects == 0 {
                // Through a proxy the peer is the proxy, not the source: the
                // source's address is what its URL names, an IP literal or
                // else (a name only the proxy resolves) the strictest. No
                // address known (never seen in practice): the strictest.
                let source = match proxied {
                    Some(_) => literal_ip(&current),
                    None => response.remote_addr().map(|a| a.ip()),
                };
                peer = source.map(AddressClass::of);
                if limit.is_none() && !allow_private_redirects {
                    limit = Some(peer.unwrap_or(AddressClass::Public));
                }
            }
            let status = response.status();
            if let Some(next) = redirect_target(&current, &response)? {
                if redirects == MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects);
                }
                redirects += 1;
                permanent |= matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                );
                tracing::debug!(from = %public(&current), to = %public(&next), status = status.as_u16(), "redirect");
                current = next;
                continue;
            }
            let permanent_redirect = permanent.then(|| current.clone());
            return self
                .finish(response, current, permanent_redirect, peer)
                .await;
        }
    }

    /// One GET with the stored validators. They go on every hop: they were
    /// stored from the end of the chain, which is the resource they describe.
    /// The source's headers and cookie go only to its own origin
    /// (`same_origin`): a redirect elsewhere must not carry its secrets.
    fn request(
        &self,
        client: &reqwest::Client,
        url: &Url,
        validators: &Validators,
        source: &SourceRequest,
        same_origin: bool,
    ) -> reqwest::RequestBuilder {
        let mut request = client.get(url.clone());
        // Config validation checked every name and value; one that still
        // fails here is skipped rather than failing the fetch.
        let value = |text: &str| HeaderValue::from_str(text).ok();
        if let Some(agent) = source.user_agent.as_deref().and_then(value) {
            request = request.header(header::USER_AGENT, agent);
        }
        if same_origin {
            for (name, text) in &source.headers {
                if let (Ok(name), Some(text)) =
                    (HeaderName::from_bytes(name.as_bytes()), value(text))
                {
                    request = request.header(name, text);
                }
            }
            if let Some(cookie) = source.cookie.as_deref().and_then(value) {
                request = request.header(header::COOKIE, cookie);
            }
        }
        let conditional = [
            (header::IF_NONE_MATCH, &validators.etag),
            (header::IF_MODIFIED_SINCE, &validators.last_modified),
        ];
        for (name, value) in conditional {
            let Some(value) = value else { continue };
            // Byte for byte, no re-quoting: RFC 9110 §13.1 compares opaque
            // strings. A value that cannot be a header is dropped, not mangled.
            match HeaderValue::from_bytes(value.as_bytes()) {
                Ok(value) => request = request.header(name, value),
                Err(_) => {
                    tracing::debug!(header = %name, "stored validator is not a valid header value; skipped")
                }
            }
        }
        request
    }

    /// Turns the last response of the chain into a result.
    async fn finish(
        &self,
        response: reqwest::Response,
        final_url: Url,
        permanent_redirect: Option<Url>,
        peer: Option<AddressClass>,
    ) -> Result<Fetched, FetchError> {
        let status = response.status();
        let headers = response.headers();
        let cache = parse_cache_hints(headers);
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified {
                cache,
                permanent_redirect,
            });
        }
        if !status.is_success() {
            // Retry-After is defined for 503 and 3xx, used with 429 (RFC 6585
            // §4); honour it wherever a server sends it.
            let retry_after = headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, self.clock.now()));
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let validators = Validators {
            etag: header_string(headers, header::ETAG),
            last_modified: header_string(headers, header::LAST_MODIFIED),
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let links = links::web_links(headers, &final_url);
        let bytes = read_capped(response, self.max_body).await?;
        Ok(Fetched::Body {
            status: status.as_u16(),
            bytes,
            content_type,
            validators,
            final_url,
            permanent_redirect,
            cache,
            peer,
            links,
        })
    }
}

/// Only http and https, at the start and on every hop: a `Location` must not
/// send us to `file:` or anything else.
fn check_scheme(url: &Url) -> Result<(), FetchError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(FetchError::Other(format!(
            "{}: unsupported scheme {other}",
            public(url)
        ))),
    }
}

/// The next URL when `response` is a redirect we should follow.
///
/// 304 is a 3xx but the end of the road, and a 3xx without `Location`
/// (300 Multiple Choices, say) is not followable: both end the chain.
fn redirect_target(current: &Url, response: &reqwest::Response) -> Result<Option<Url>, FetchError> {
    let status = response.status();
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    // RFC 9110 §10.2.2: Location may be relative to the request URL. Raw
    // non-ASCII bytes are taken as UTF-8 and percent-encoded by `join`.
    // The error leaves the text out: it may hold credentials.
    let location = String::from_utf8_lossy(location.as_bytes());
    let next = current
        .join(location.trim())
        .map_err(|e| FetchError::Other(format!("bad redirect Location: {e}")))?;
    check_scheme(&next)?;
    Ok(Some(next))
}

/// A header as a string when it is valid UTF-8. A non-UTF-8 validator is
/// dropped rather than altered: echoing a mangled one would never match.
fn header_string(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let value = headers.get(name)?;
    String::from_utf8(value.as_bytes().to_vec()).ok()
}

/// Streams the (decoded) body, giving up as soon as it would pass `max_body`
/// so a gzip bomb or an endless body never costs more than `max_body` bytes.
async fn read_capped(mut response: reqwest::Response, max_body: u64) -> Result<Bytes, FetchError> {
    // Only known for unencoded bodies (reqwest drops it when it decodes);
    // when it already says too much, do not read at all.
    if response.content_length().is_some_and(|len| len > max_body) {
        return Err(FetchError::TooLarge(max_body));
    }
    let capacity = response.content_length().unwrap_or(0).min(max_body);
    let mut body = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(FetchError::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Sorts a reqwest error into the kinds the scheduler treats differently.
/// The URL is dropped: it may hold credentials, and the message is logged
/// and shown as the source's last error.
fn classify(error: reqwest::Error) -> FetchError {
    let error = error.without_url();
    let mut cause = std::error::Error::source(&error);
    while let Some(err) = cause {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return FetchError::Other(refused.to_string());
        }
        cause = err.source();
    }
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_connect() {
        FetchError::Connect(error_chain(&error))
    } else {
        FetchError::Other(error_chain(&error))
    }
}

/// The causes of `error`, outermost first, without repeats, kept short for
/// logs and the `sources` table. reqwest's own top line only restates the
/// URL, so it is used only when there is no cause.
fn error_chain(error: &reqwest::Error) -> String {
    const MAX_LEN: usize = 200;
    let mut parts: Vec<String> = Vec::new();
    let mut cause = std::error::Error::source(error);
    while let Some(err) = cause {
        let text = err.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        cause = err.source();
    }
    let mut message = if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    };
    if message.len() > MAX_LEN {
        let cut = (0..=MAX_LEN)
            .rev()
            .find(|&i| message.is_char_boundary(i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// How far inside a network an address is, from the open internet in.
/// A redirect may lead to the class of the source's own address or a more
/// public one: a public source may not send us to a private address, nor a
/// source on the LAN to the metadata service or to this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressClass {
    /// Globally routable.
    Public,
    /// RFC 1918, CGNAT (100.64/10), unique local (fc00::/7), and every
    /// other range that is not globally routable (RFC 6890: benchmarking,
    /// documentation, reserved, multicast, broadcast).
    Private,
    /// 169.254/16 (cloud metadata services live there), fe80::/10.
    LinkLocal,
    /// This host: 127/8, ::1, and the unspecified 0.0.0.0/8 and ::.
    Loopback,
}

impl AddressClass {
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(ip) => AddressClass::of_v4(ip),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => AddressClass::of_v4(v4),
                None => AddressClass::of_v6(ip),
            },
        }
    }

    fn of_v4(ip: Ipv4Addr) -> AddressClass {
        let [a, b, c, _] = ip.octets();
        if ip.is_loopback() || a == 0 {
            AddressClass::Loopback
        } else if ip.is_link_local() {
            AddressClass::LinkLocal
        } else if ip.is_private()
            || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
            || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
            || (a == 198 && (b == 18 || b == 19)) // benchmarking
            || ip.is_documentation()
            || ip.is_multicast()
            || a >= 240
        // reserved, broadcast
        {
            AddressClass::Private
        } else {
            AddressClass::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> AddressClass {
        let first = ip.segments()[0];
        if ip.is_loopback() || ip.is_unspecified() {
            AddressClass::Loopback
        } else if first & 0xffc0 == 0xfe80 {
            AddressClass::LinkLocal
        } else if first & 0xfe00 == 0xfc00 // unique local
            || first & 0xffc0 == 0xfec0 // site-local (deprecated)
            || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
            || ip.is_multicast()
            // IPv4-compatible (::a.b.c.d) and other addresses under ::/8.
            || first == 0
        {
            AddressClass::Private
        } else {
            AddressClass::Public
        }
    }

    fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public",
            AddressClass::Private => "a private",
            AddressClass::LinkLocal => "a link-local",
            AddressClass::Loopback => "a loopback",
        }
    }
}

/// The IP of a URL whose host is an address: those never reach a resolver.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn refusal(what: &str, host: &str, class: AddressClass, limit: AddressClass) -> String {
    format!(
        "{what} {host} refused: {} address, and the source is at {} one \
         (allow_private_redirects = true allows it)",
        class.describe(),
        limit.describe()
    )
}

/// A redirect's host resolves only to addresses it may not reach.
#[derive(Debug)]
struct Refused {
    host: String,
    class: AddressClass,
    limit: AddressClass,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&refusal("redirect to", &self.host, self.class, self.limit))
    }
}

impl std::error::Error for Refused {}

/// A resolver that connects only to public addresses: for URLs that
/// strangers give us (a WebSub hub's callbacks).
pub fn public_resolver() -> Arc<impl reqwest::dns::Resolve + 'static> {
    Arc::new(ConfinedResolver {
        limit: AddressClass::Public,
    })
}

/// Resolves like the system (getaddrinfo) and keeps only the addresses of
/// class `limit` or more public; the connection then goes to one of those,
/// so what was checked is what is reached.
struct ConfinedResolver {
    limit: AddressClass,
}

impl reqwest::dns::Resolve for ConfinedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let limit = self.limit;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| AddressClass::of(a.ip()) <= limit)
                .collect();
            if allowed.is_empty() {
                if let Some(nearest) = all.iter().map(|a| AddressClass::of(a.ip())).min() {
                    let refused = Refused {
                        host,
                        class: nearest,
                        limit,
                    };
                    return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date,
/// as an absolute UTC time. A date in the past is returned as is (it means
/// "now"); anything else unparsable is `None`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd delay still means "much later"; clamp it into chrono's
        // range instead of dropping it. The scheduler applies its own cap.
        const CLAMP: i64 = 100 * 365 * 24 * 3600;
        let seconds = value.parse::<i64>().unwrap_or(CLAMP).min(CLAMP);
        return now.checked_add_signed(TimeDelta::seconds(seconds));
    }
    parse_http_date(value)
}

/// Reads `Cache-Control: max-age` and `Expires` (RFC 9111 §5.2, §5.3).
///
/// These are hints for polling politeness, not a cache: `max-age` is kept
/// even beside `no-cache`/`no-store` (those are about storing responses,
/// which we do not do), `s-maxage` is ignored (we are not a shared cache),
/// and `Age` is subtracted so a response served stale-ish by a CDN does not
/// push the next poll too far. Both fields are returned; RFC 9111 says
/// `max-age` wins over `Expires`, which the caller applies.
pub fn parse_cache_hints(headers: &HeaderMap) -> CacheHints {
    let max_age = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_max_age)
        .map(|max_age| {
            let age = headers
                .get(header::AGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            Duration::from_secs(max_age.saturating_sub(age))
        });
    // An invalid Expires (such as "0") means "already expired" (§5.3): no floor.
    let expires = headers
        .get(header::EXPIRES)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    CacheHints { max_age, expires }
}

/// The `max-age` directive of one `Cache-Control` value, in seconds.
/// Directive names are case-insensitive and the argument may be quoted
/// (RFC 9111 §5.2).
pub fn parse_max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // §1.2.2: a delta-seconds too large to represent means "a long time".
        Some(value.parse::<u64>().unwrap_or(u64::from(u32::MAX)))
    })
}

/// An HTTP-date in any of the three forms RFC 9110 §5.6.7 says to accept.
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(value.trim())
        .ok()
        .map(DateTime::<Utc>::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap as AxHeaderMap, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;
    use futures_util::{stream, StreamExt};
    use std::convert::Infallible;
    use std::io::Write;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;
    use tokio::net::TcpListener;

    const MIB: u64 = 1024 * 1024;
    const USER_AGENT: &str = "tributary-test/0.1 (+http://127.0.0.1/)";

    fn settings() -> Settings {
        Settings {
            user_agent: USER_AGENT.to_owned(),
            timeout: Duration::from_secs(10),
            max_body: MIB,
            concurrency: 4,
            per_host: 2,
        }
    }

    fn fetcher(tweak: impl FnOnce(&mut Settings)) -> Fetcher {
        let mut settings = settings();
        tweak(&mut settings);
        Fetcher::with_settings(settings).unwrap()
    }

    /// Serves `router` on a fresh loopback port until the test ends.
    async fn serve(router: Router) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    fn url(addr: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{addr}{path}")).unwrap()
    }

    /// Every request's path and headers, in arrival order.
    type Seen = Arc<Mutex<Vec<(String, AxHeaderMap)>>>;

    fn record(seen: &Seen, uri: &Uri, headers: &AxHeaderMap) {
        seen.lock()
            .unwrap()
            .push((uri.to_string(), headers.clone()));
    }

    fn body_of(fetched: Fetched) -> Bytes {
        match fetched {
            Fetched::Body { bytes, .. } => bytes,
            other => panic!("expected a body, got {other:?}"),
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    // An opaque, weak ETag with a space in it: it must come back untouched.
    const ETAG: &str = r#"W/"a b""#;
    const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

    async fn conditional(State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap) -> Response {
        record(&seen, &uri, &headers);
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == ETAG.as_bytes());
        if matches {
            return (
                StatusCode::NOT_MODIFIED,
                [(header::CACHE_CONTROL, "public, max-age=60")],
            )
                .into_response();
        }
        (
            [
                (header::ETAG, ETAG),
                (header::LAST_MODIFIED, LAST_MODIFIED),
                (header::CONTENT_TYPE, "application/rss+xml; charset=UTF-8"),
            ],
            "<rss/>",
        )
            .into_response()
    }

    #[tokio::test]
    async fn conditional_get_echoes_validators_byte_for_byte_and_gets_not_modified() {
        let seen = Seen::default();
        let addr = serve(
            Router::new()
                .route("/feed", get(conditional))
                .with_state(seen.clone()),
        )
        .await;
        let fetcher = fetcher(|_| {});
        let feed = url(addr, "/feed");

        let first = fetcher.fetch(&feed, &Validators::default()).await.unwrap();
        let Fetched::Body {
            status,
            bytes,
            content_type,
            validators,
            final_url,
            permanent_redirect,
            ..
        } = first
        else {
            panic!("expected a body, got {first:?}");
        };
        assert_eq!(status, 200);
        assert_eq!(&bytes[..], b"<rss/>");
        assert_eq!(
            content_type.as_deref(),
            Some("application/rss+xml; charset=UTF-8")
        );
        assert_eq!(validators.etag.as_deref(), Some(ETAG));
        assert_eq!(validators.last_modified.as_deref(), Some(LAST_MODIFIED));
        assert_eq!(final_url, feed);
        assert_eq!(permanent_redirect, None);

        let second = fetcher.fetch(&feed, &validators).await.unwrap();
        let Fetched::NotModified {
            cache,
            permanent_redirect,
        } = second
        else {
            panic!("expected 304, got {second:?}");
        };
        assert_eq!(cache.max_age, Some(Duration::from_secs(60)));
        assert_eq!(permanent_redirect, None);

        let seen = seen.lock().unwrap();
        assert!(seen[0].1.get(header::IF_NONE_MATCH).is_none());
        assert!(seen[0].1.get(header::IF_MODIFIED_SINCE).is_none());
        assert_eq!(seen[1].1[header::IF_NONE_MATCH].as_bytes(), ETAG.as_bytes());
        assert_eq!(
            seen[1].1[header::IF_MODIFIED_SINCE].as_bytes(),
            LAST_MODIFIED.as_bytes()
        );
    }

    #[tokio::test]
    async fn a_stored_validator_that_is_not_a_header_value_is_skipped() {
        let seen = Seen::default();
        let addr = serve(
            Router::new()
                .route("/feed", get(conditional))
                .with_state(seen.clone()),
        )
        .await;
        let validators = Validators {
            etag: Some("\"bad\nvalue\"".to_owned()),
            last_modified: Some(LAST_MODIFIED.to_owned()),
        };
        let fetched = fetcher(|_| {})
            .fetch(&url(addr, "/feed"), &validators)
            .await
            .unwrap();
        assert_eq!(&body_of(fetched)[..], b"<rss/>");
        let seen = seen.lock().unwrap();
        assert!(seen[0].1.get(header::IF_NONE_MATCH).is_none());
        assert_eq!(
            seen[0].1[header::IF_MODIFIED_SINCE].as_bytes(),
            LAST_MODIFIED.as_bytes()
        );
    }

    #[tokio::test]
    async fn compressed_bodies_are_asked_for_and_decoded() {
        let seen = Seen::default();
        let plain = "<feed>".repeat(1000);
        let gzipped = gzip(plain.as_bytes());
        let deflated = {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(plain.as_bytes()).unwrap();
            encoder.finish().unwrap()
        };
        let router = Router::new()
            .route(
                "/gzip",
                get(
                    move |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                        record(&seen, &uri, &headers);
                        ([(header::CONTENT_ENCODING, "gzip")], gzipped)
                    },
                ),
            )
            .route(
                "/deflate",
                get(|| async move { ([(header::CONTENT_ENCODING, "deflate")], deflated) }),
            )
            .with_state(seen.clone());
        let addr = serve(router).await;
        let fetcher = fetcher(|_| {});

        let bytes = body_of(
            fetcher
                .fetch(&url(addr, "/gzip"), &Validators::default())
                .await
                .unwrap(),
        );
        assert_eq!(&bytes[..], plain.as_bytes());
        let bytes = body_of(
            fetcher
                .fetch(&url(addr, "/deflate"), &Validators::default())
                .await
                .unwrap(),
        );
        assert_eq!(&bytes[..], plain.as_bytes());

        let seen = seen.lock().unwrap();
        let accepted = seen[0].1[header::ACCEPT_ENCODING]
            .to_str()
            .unwrap()
            .to_owned();
        for coding in ["gzip", "deflate", "br"] {
            assert!(
                accepted.contains(coding),
                "{coding} missing from {accepted:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_cut_at_max_body_counting_decompressed_bytes() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; MIB as usize];
        for _ in 0..64 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        // Small on the wire: only decompressed counting can catch it.
        assert!((bomb.len() as u64) < MIB, "bomb is {} bytes", bomb.len());
        let router = Router::new().route(
            "/bomb",
            get(move || async move { ([(header::CONTENT_ENCODING, "gzip")], bomb) }),
        );
        let addr = serve(router).await;
        let fetcher = fetcher(|s| s.max_body = MIB);
        let result = fetcher
            .fetch(&url(addr, "/bomb"), &Validators::default())
            .await;
        assert!(
            matches!(result, Err(FetchError::TooLarge(MIB))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn an_endless_chunked_body_is_cut_at_max_body() {
        let router = Router::new().route(
            "/endless",
            get(|| async {
                let chunk = Bytes::from_static(&[b'x'; 8192]);
                Body::from_stream(stream::repeat_with(move || {
                    Ok::<_, Infallible>(chunk.clone())
                }))
            }),
        );
        let addr = serve(router).await;
        let fetcher = fetcher(|s| s.max_body = 256 * 1024);
        let result = fetcher
            .fetch(&url(addr, "/endless"), &Validators::default())
            .await;
        assert!(
            matches!(result, Err(FetchError::TooLarge(262_144))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_body_of_exactly_max_body_passes_and_one_byte_more_does_not() {
        const MAX: u64 = 10_000;
        // Chunked, so the streaming check decides, not Content-Length.
        fn chunked(len: usize) -> Body {
            let half = Bytes::from(vec![b'x'; len / 2]);
            let rest = Bytes::from(vec![b'y'; len - len / 2]);
            Body::from_stream(stream::iter([Ok::<_, Infallible>(half), Ok(rest)]))
        }
        let router = Router::new()
            .route("/exact", get(|| async { chunked(MAX as usize) }))
            .route("/over", get(|| async { chunked(MAX as usize + 1) }))
            .route(
                "/over-with-length",
                get(|| async { vec![b'z'; MAX as usize + 1] }),
            );
        let addr = serve(router).await;
        let fetcher = fetcher(|s| s.max_body = MAX);
        let none = Validators::default();

        let bytes = body_of(fetcher.fetch(&url(addr, "/exact"), &none).await.unwrap());
        assert_eq!(bytes.len() as u64, MAX);
        for path in ["/over", "/over-with-length"] {
            let result = fetcher.fetch(&url(addr, path), &none).await;
            assert!(
                matches!(result, Err(FetchError::TooLarge(MAX))),
                "{path}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket); // accept, read nothing, say nothing
            }
        });
        let fetcher = fetcher(|s| s.timeout = Duration::from_millis(500));
        let started = Instant::now();
        let result = fetcher.fetch(&url(addr, "/"), &Validators::default()).await;
        assert!(matches!(result, Err(FetchError::Timeout)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_body_that_stalls_after_the_headers_times_out() {
        let router = Router::new().route(
            "/stall",
            get(|| async {
                let first =
                    stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"<rss>")) });
                Body::from_stream(first.chain(stream::pending()))
            }),
        );
        let addr = serve(router).await;
        let fetcher = fetcher(|s| s.timeout = Duration::from_millis(500));
        let started = Instant::now();
        let result = fetcher
            .fetch(&url(addr, "/stall"), &Validators::default())
            .await;
        assert!(matches!(result, Err(FetchError::Timeout)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    fn redirect(status: StatusCode, location: &str) -> Response {
        (status, [(header::LOCATION, location.to_owned())]).into_response()
    }

    fn redirect_router(hits: Arc<AtomicUsize>) -> Router {
        Router::new()
            .route(
                "/moved",
                get(|| async { redirect(StatusCode::MOVED_PERMANENTLY, "/hop") }),
            )
            .route(
                "/hop",
                get(|| async { redirect(StatusCode::FOUND, "final?x=1") }),
            )
            .route(
                "/temp",
                get(|| async { redirect(StatusCode::TEMPORARY_REDIRECT, "/final") }),
            )
            .route("/final", get(|| async { "done" }))
            .route(
                "/chain/{n}",
                get(|Path(n): Path<usize>| async move {
                    if n == 0 {
                        "end".into_response()
                    } else {
                        redirect(StatusCode::FOUND, &format!("/chain/{}", n - 1))
                    }
                }),
            )
            .route(
                "/loop",
                get(move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    redirect(StatusCode::FOUND, "/loop")
                }),
            )
            .route(
                "/evil",
                get(|| async { redirect(StatusCode::FOUND, "file:///etc/passwd") }),
            )
    }

    #[tokio::test]
    async fn redirects_are_followed_and_a_301_is_reported_as_permanent() {
        let addr = serve(redirect_router(Arc::default())).await;
        let fetcher = fetcher(|_| {});
        let none = Validators::default();

        // 301 then 302 with a relative Location: the query is the server's own.
        let fetched = fetcher.fetch(&url(addr, "/moved"), &none).await.unwrap();
        let Fetched::Body {
            bytes,
            final_url,
            permanent_redirect,
            ..
        } = fetched
        else {
            panic!("expected a body, got {fetched:?}");
        };
        assert_eq!(&bytes[..], b"done");
        assert_eq!(final_url, url(addr, "/final?x=1"));
        assert_eq!(permanent_redirect, Some(url(addr, "/final?x=1")));

        let fetched = fetcher.fetch(&url(addr, "/temp"), &none).await.unwrap();
        let Fetched::Body {
            final_url,
            permanent_redirect,
            ..
        } = fetched
        else {
            panic!("expected a body, got {fetched:?}");
        };
        assert_eq!(final_url, url(addr, "/final"));
        assert_eq!(permanent_redirect, None);
    }

    #[tokio::test]
    async fn five_redirects_are_followed_and_the_sixth_is_refused() {
        let hits = Arc::new(AtomicUsize::new(0));
        let addr = serve(redirect_router(hits.clone())).await;
        let fetcher = fetcher(|_| {});
        let none = Validators::default();

        let bytes = body_of(fetcher.fetch(&url(addr, "/chain/5"), &none).await.unwrap());
        assert_eq!(&bytes[..], b"end");
        let result = fetcher.fetch(&url(addr, "/chain/6"), &none).await;
        assert!(
            matches!(result, Err(FetchError::TooManyRedirects)),
            "{result:?}"
        );

        let result = fetcher.fetch(&url(addr, "/loop"), &none).await;
        assert!(
            matches!(result, Err(FetchError::TooManyRedirects)),
            "{result:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1 + MAX_REDIRECTS);
    }

    #[tokio::test]
    async fn a_redirect_to_a_non_http_scheme_is_refused() {
        let addr = serve(redirect_router(Arc::default())).await;
        let result = fetcher(|_| {})
            .fetch(&url(addr, "/evil"), &Validators::default())
            .await;
        assert!(matches!(result, Err(FetchError::Other(_))), "{result:?}");
    }

    #[tokio::test]
    async fn error_statuses_carry_retry_after_as_an_absolute_time() {
        let router = Router::new()
            .route(
                "/busy",
                get(|| async {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "120")],
                    )
                }),
            )
            .route(
                "/down",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "Wed, 21 Oct 2037 07:28:00 GMT")],
                    )
                }),
            )
            .route("/gone", get(|| async { StatusCode::GONE }));
        let addr = serve(router).await;
        // Seconds count from the injected clock, however far it is from
        // the system's.
        let now = DateTime::parse_from_rfc3339("2031-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let fetcher = fetcher(|_| {}).with_clock(Clock::manual(now));
        let none = Validators::default();

        let result = fetcher.fetch(&url(addr, "/busy"), &none).await;
        let Err(FetchError::Status {
            status: 429,
            retry_after: Some(at),
        }) = result
        else {
            panic!("expected 429 with Retry-After, got {result:?}");
        };
        assert_eq!(at, now + TimeDelta::seconds(120));

        let result = fetcher.fetch(&url(addr, "/down"), &none).await;
        let expected = DateTime::parse_from_rfc3339("2037-10-21T07:28:00Z").unwrap();
        assert!(
            matches!(result, Err(FetchError::Status { status: 503, retry_after: Some(at) }) if at == expected),
            "{result:?}"
        );

        let result = fetcher.fetch(&url(addr, "/gone"), &none).await;
        assert!(
            matches!(
                result,
                Err(FetchError::Status {
                    status: 410,
                    retry_after: None
                })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn no_content_is_an_empty_body() {
        let addr =
            serve(Router::new().route("/empty", get(|| async { StatusCode::NO_CONTENT }))).await;
        let fetched = fetcher(|_| {})
            .fetch(&url(addr, "/empty"), &Validators::default())
            .await
            .unwrap();
        assert!(
            matches!(&fetched, Fetched::Body { status: 204, bytes, .. } if bytes.is_empty()),
            "{fetched:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_with_its_cause() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let target = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let result = fetcher(|_| {}).fetch(&target, &Validators::default()).await;
        let Err(FetchError::Connect(message)) = result else {
            panic!("expected a connect error, got {result:?}");
        };
        assert!(message.to_lowercase().contains("refused"), "{message}");
        assert!(message.len() <= 210, "{message}");
    }

    /// Besides `file:` sources, which only the operator's config can name
    /// (OPML import and redirects take http and https alone).
    #[tokio::test]
    async fn only_http_and_https_are_fetched() {
        for url in ["ftp://files.example/feed.xml", "gopher://old.example/1"] {
            let result = fetcher(|_| {})
                .fetch(&Url::parse(url).unwrap(), &Validators::default())
                .await;
            assert!(matches!(result, Err(FetchError::Other(_))), "{result:?}");
        }
    }

    #[tokio::test]
    async fn a_file_source_is_read_with_the_caps_and_answers_304_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.xml");
        std::fs::write(&path, "<rss version=\"2.0\"><channel/></rss>").unwrap();
        let url = Url::from_file_path(&path).unwrap();
        let files = fetcher(|_| {});
        let first = files.fetch(&url, &Validators::default()).await.unwrap();
        let Fetched::Body { validators, .. } = first else {
            panic!("expected a body, got {first:?}");
        };
        let again = files.fetch(&url, &validators).await.unwrap();
        assert!(matches!(again, Fetched::NotModified { .. }), "{again:?}");
        // A directory, a missing file and a file over max_body are errors.
        let dir_url = Url::from_directory_path(dir.path()).unwrap();
        assert!(files.fetch(&dir_url, &Validators::default()).await.is_err());
        let missing = Url::from_file_path(dir.path().join("gone.xml")).unwrap();
        assert!(files.fetch(&missing, &Validators::default()).await.is_err());
        std::fs::write(&path, vec![b' '; 2 * 1024 * 1024]).unwrap();
        let small = fetcher(|s: &mut Settings| s.max_body = 1024 * 1024);
        let result = small.fetch(&url, &Validators::default()).await;
        assert!(matches!(result, Err(FetchError::TooLarge(_))), "{result:?}");
    }

    #[tokio::test]
    async fn requests_carry_our_user_agent_and_no_cookie_referer_or_extra_query() {
        let seen = Seen::default();
        let router = Router::new()
            .route(
                "/start",
                get(
                    |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                        record(&seen, &uri, &headers);
                        (
                            StatusCode::FOUND,
                            [
                                (header::SET_COOKIE, "session=abc; Path=/"),
                                (header::LOCATION, "/end"),
                            ],
                        )
                    },
                ),
            )
            .route(
                "/end",
                get(
                    |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                        record(&seen, &uri, &headers);
                        ([(header::SET_COOKIE, "again=1; Path=/")], "ok")
                    },
                ),
            )
            .with_state(seen.clone());
        let addr = serve(router).await;
        let fetcher = fetcher(|_| {});
        for _ in 0..2 {
            fetcher
                .fetch(&url(addr, "/start"), &Validators::default())
                .await
                .unwrap();
        }

        let seen = seen.lock().unwrap();
        let paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(paths, ["/start", "/end", "/start", "/end"]);
        for (path, headers) in seen.iter() {
            assert_eq!(headers[header::USER_AGENT], USER_AGENT, "{path}");
            assert!(headers.get(header::COOKIE).is_none(), "{path}: {headers:?}");
            assert!(
                headers.get(header::REFERER).is_none(),
                "{path}: {headers:?}"
            );
        }
    }

    /// Counts requests in flight; each one waits at a barrier for `meet`
    /// others (bounded by a timeout), so overlap is forced when allowed and
    /// measured, not inferred from timings.
    #[derive(Clone)]
    struct Overlap {
        in_flight: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        barrier: Arc<tokio::sync::Barrier>,
        wait: Duration,
    }

    async fn overlapping(State(overlap): State<Overlap>) -> &'static str {
        let now = overlap.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        overlap.most.fetch_max(now, Ordering::SeqCst);
        let _ = tokio::time::timeout(overlap.wait, overlap.barrier.wait()).await;
        overlap.in_flight.fetch_sub(1, Ordering::SeqCst);
        "ok"
    }

    /// The most requests the server saw at once when two are fetched
    /// together. `wait` only has to be long when overlap is expected: the
    /// bound itself never depends on it.
    async fn most_in_flight(wait: Duration, tweak: impl FnOnce(&mut Settings)) -> usize {
        let overlap = Overlap {
            in_flight: Arc::default(),
            most: Arc::default(),
            barrier: Arc::new(tokio::sync::Barrier::new(2)),
            wait,
        };
        let addr = serve(
            Router::new()
                .route("/", get(overlapping))
                .with_state(overlap.clone()),
        )
        .await;
        let fetcher = fetcher(tweak);
        let (target, none) = (url(addr, "/"), Validators::default());
        let (a, b) = tokio::join!(fetcher.fetch(&target, &none), fetcher.fetch(&target, &none));
        a.unwrap();
        b.unwrap();
        overlap.most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn per_host_and_global_limits_bound_fetches_in_flight() {
        let (long, short) = (Duration::from_secs(5), Duration::from_millis(200));
        // Control: with room for two, the two fetches do overlap.
        assert_eq!(most_in_flight(long, |s| s.per_host = 2).await, 2);
        assert_eq!(most_in_flight(short, |s| s.per_host = 1).await, 1);
        let global_only = |s: &mut Settings| {
            s.per_host = 2;
            s.concurrency = 1;
        };
        assert_eq!(most_in_flight(short, global_only).await, 1);
    }

    #[tokio::test]
    async fn fetcher_new_takes_its_limits_from_daemon_config() {
        let daemon = DaemonConfig {
            database: "sqlite::memory:".to_owned(),
            listen: "127.0.0.1:0".to_owned(),
            base_url: Url::parse("http://127.0.0.1/").unwrap(),
            schedule: crate::config::Schedule::parse("0 * * * * *").unwrap(),
            concurrency: 4,
            per_host: 2,
            timeout: Duration::from_secs(10),
            max_body: 100,
            retention: Duration::from_secs(86_400),
            prune_schedule: crate::config::Schedule::parse("0 3 * * *").unwrap(),
            tombstone_retention: Duration::from_secs(86_400),
            user_agent: "tributary/9.9 (+http://127.0.0.1/)".to_owned(),
            author: "tributary".to_owned(),
            log_level: None,
            respect_cache_headers: true,
            pool_size: None,
            statement_timeout: Duration::from_secs(30),
            strip_remote_images: false,
            parse_budget: Duration::from_secs(20),
        };
        let seen = Seen::default();
        let router = Router::new()
            .route(
                "/small",
                get(
                    |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                        record(&seen, &uri, &headers);
                        "x".repeat(100)
                    },
                ),
            )
            .route("/big", get(|| async { "x".repeat(101) }))
            .with_state(seen.clone());
        let addr = serve(router).await;
        let fetcher = Fetcher::new(&daemon).unwrap();
        let none = Validators::default();

        body_of(fetcher.fetch(&url(addr, "/small"), &none).await.unwrap());
        let result = fetcher.fetch(&url(addr, "/big"), &none).await;
        assert!(
            matches!(result, Err(FetchError::TooLarge(100))),
            "{result:?}"
        );
        assert_eq!(
            seen.lock().unwrap()[0].1[header::USER_AGENT],
            "tributary/9.9 (+http://127.0.0.1/)"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_all_three_http_date_forms() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let date = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let cases = [
            ("120", date("2025-01-01T00:02:00Z")),
            (" 0 ", Some(now)),
            (
                "Wed, 21 Oct 2037 07:28:00 GMT",
                date("2037-10-21T07:28:00Z"),
            ),
            (
                "Wednesday, 21-Oct-37 07:28:00 GMT",
                date("2037-10-21T07:28:00Z"),
            ),
            ("Wed Oct 21 07:28:00 2037", date("2037-10-21T07:28:00Z")),
            // In the past: returned as is, it just means "now".
            (
                "Sun, 06 Nov 1994 08:49:37 GMT",
                date("1994-11-06T08:49:37Z"),
            ),
            ("-5", None),
            ("1.5", None),
            ("+5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
        let far = parse_retry_after("99999999999999999999999", now).unwrap();
        assert!(far > now + TimeDelta::days(365 * 50));
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let cases = [
            ("max-age=60", Some(60)),
            ("public, MAX-AGE=300, must-revalidate", Some(300)),
            ("max-age=\"90\"", Some(90)),
            ("no-store, max-age=30", Some(30)),
            ("s-maxage=600", None),
            ("max-age=", None),
            ("max-age=-1", None),
            ("max-age=soon", None),
            ("no-cache", None),
            ("max-age=99999999999999999999999", Some(u64::from(u32::MAX))),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_max_age(value), expected, "{value:?}");
        }
    }

    #[test]
    fn cache_hints_subtract_age_and_read_expires() {
        let mut headers = HeaderMap::new();
        headers.append(header::CACHE_CONTROL, HeaderValue::from_static("public"));
        headers.append(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=600"),
        );
        headers.insert(header::AGE, HeaderValue::from_static("100"));
        headers.insert(
            header::EXPIRES,
            HeaderValue::from_static("Thu, 01 Dec 2033 16:00:00 GMT"),
        );
        let hints = parse_cache_hints(&headers);
        assert_eq!(hints.max_age, Some(Duration::from_secs(500)));
        assert_eq!(
            hints.expires,
            Some(
                DateTime::parse_from_rfc3339("2033-12-01T16:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        headers.insert(header::AGE, HeaderValue::from_static("120"));
        headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
        let hints = parse_cache_hints(&headers);
        assert_eq!(hints.max_age, Some(Duration::ZERO));
        assert_eq!(hints.expires, None);

        assert_eq!(parse_cache_hints(&HeaderMap::new()), CacheHints::default());
    }

    #[test]
    fn addresses_are_classed_from_the_open_internet_in() {
        use AddressClass::*;
        assert!(Public < Private && Private < LinkLocal && LinkLocal < Loopback);
        let cases = [
            ("93.184.216.34", Public),
            ("8.8.8.8", Public),
            ("100.63.255.255", Public),
            ("172.32.0.1", Public),
            ("2606:4700::1111", Public),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("192.0.2.2", Private),
            ("198.18.0.1", Private),
            ("224.0.0.1", Private),
            ("255.255.255.255", Private),
            ("fd00::2", Private),
            ("fc00::1", Private),
            ("2001:db8::1", Private),
            ("::ffff:10.0.0.1", Private),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
            ("::ffff:169.254.169.254", LinkLocal),
            ("127.0.0.1", Loopback),
            ("127.255.0.1", Loopback),
            ("0.0.0.0", Loopback),
            ("::1", Loopback),
            ("::", Loopback),
            ("::ffff:127.0.0.1", Loopback),
        ];
        for (ip, class) in cases {
            assert_eq!(AddressClass::of(ip.parse().unwrap()), class, "{ip}");
        }
    }

    /// Runs `test` again inside a network namespace of its own where
    /// 192.0.2.2 (TEST-NET-1) is a local address; `Some(address)` in that
    /// re-run, `None` in the caller once it passed (or could not be made:
    /// no `unshare`, or no user namespaces, and TRIBUTARY_TEST_ALL unset).
    fn outer_address_in_own_namespace(test: &str) -> Option<IpAddr> {
        if std::env::var_os("TRIBUTARY_IN_NETNS").is_some() {
            return Some("192.0.2.2".parse().unwrap());
        }
        let out = std::process::Command::new("unshare")
            .args(["--net", "--map-root-user", "sh", "-c"])
            .arg("ip link set lo up && ip addr add 192.0.2.2/32 dev lo && exec \"$0\" \"$@\"")
            .arg(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture"])
            .env("TRIBUTARY_IN_NETNS", "1")
            .output();
        let made = out.as_ref().is_ok_and(|o| {
            o.status.success() || !String::from_utf8_lossy(&o.stderr).starts_with("unshare:")
        });
        if !made {
            assert!(
                std::env::var_os("TRIBUTARY_TEST_ALL").is_none(),
                "TRIBUTARY_TEST_ALL is set, but no network namespace could be made: {out:?}"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {test} (no network namespace of its own here)"
            );
            return None;
        }
        let out = out.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{test} in its own network namespace:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        None
    }

    /// A source on a non-loopback address redirecting to loopback: real
    /// connections, the production policy, inside a network namespace of
    /// the test's own.
    #[tokio::test]
    async fn a_redirect_may_not_lead_further_inside_than_the_source() {
        let Some(outer) = outer_address_in_own_namespace(
            "fetch::tests::a_redirect_may_not_lead_further_inside_than_the_source",
        ) else {
            return;
        };
        assert!(AddressClass::of(outer) < AddressClass::Loopback);
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let inner = serve(Router::new().route(
            "/internal",
            get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "internal"
            }),
        ))
        .await
        .port();
        let listener = TcpListener::bind((outer, 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new()
            .route(
                "/to-ip",
                get(move || async move {
                    redirect(
                        StatusCode::FOUND,
                        &format!("http://127.0.0.1:{inner}/internal"),
                    )
                }),
            )
            .route(
                "/to-name",
                get(move || async move {
                    redirect(
                        StatusCode::FOUND,
                        &format!("http://localhost:{inner}/internal"),
                    )
                }),
            )
            .route(
                "/to-self",
                get(|| async { redirect(StatusCode::FOUND, "/ok") }),
            )
            .route("/ok", get(|| async { "outer" }));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let fetcher = fetcher(|_| {});
        let none = Validators::default();
        let at = |path: &str| Url::parse(&format!("{base}{path}")).unwrap();

        // An address literal is checked as is; a name through the resolver.
        for path in ["/to-ip", "/to-name"] {
            let result = fetcher.fetch(&at(path), &none).await;
            let Err(FetchError::Other(message)) = &result else {
                panic!("{path}: expected a refusal, got {result:?}");
            };
            assert!(
                message.contains("refused: a loopback address")
                    && message.contains("allow_private_redirects"),
                "{path}: {message}"
            );
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the private resource was fetched"
        );

        // Same class as the source: followed.
        let bytes = body_of(fetcher.fetch(&at("/to-self"), &none).await.unwrap());
        assert_eq!(&bytes[..], b"outer");
        // A source that opted in: followed.
        let bytes = body_of(
            fetcher
                .fetch_for(&at("/to-name"), &none, true, &SourceRequest::default())
                .await
                .unwrap(),
        );
        assert_eq!(&bytes[..], b"internal");
        let bytes = body_of(
            fetcher
                .fetch_for(&at("/to-ip"), &none, true, &SourceRequest::default())
                .await
                .unwrap(),
        );
        assert_eq!(&bytes[..], b"internal");
    }

    /// The resolver's addresses get the URL's port and are connected to;
    /// a name with none allowed is refused with the policy's message.
    #[tokio::test]
    async fn the_confining_resolver_connects_to_allowed_addresses_only() {
        let addr = serve(Router::new().route("/", get(|| async { "ok" }))).await;
        let target = format!("http://localhost:{}/", addr.port());
        let confined = |limit| {
            Fetcher::builder(&settings())
                .dns_resolver(Arc::new(ConfinedResolver { limit }))
                .build()
                .unwrap()
        };
        let response = confined(AddressClass::Loopback)
            .get(&target)
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");

        let error = confined(AddressClass::Public)
            .get(&target)
            .send()
            .await
            .unwrap_err();
        let result = classify(error);
        assert!(
            matches!(&result, FetchError::Other(m) if m.starts_with("redirect to localhost refused: a loopback address, and the source is at a public one")),
            "{result:?}"
        );
    }

    /// A router that records every request and answers "ok", whatever the
    /// path (and, for a proxy, whatever the host asked for).
    fn recording(seen: Seen) -> Router {
        Router::new()
            .fallback(
                |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                    record(&seen, &uri, &headers);
                    "ok"
                },
            )
            .with_state(seen)
    }

    fn source_request() -> SourceRequest {
        SourceRequest {
            headers: vec![("x-api-key".into(), "s3cret-key".into())],
            user_agent: Some("NewsroomBot/2.0".into()),
            cookie: Some("consent=yes; session=s3cret-cookie".into()),
            proxy: None,
        }
    }

    #[tokio::test]
    async fn a_sources_headers_and_cookie_reach_its_origin_and_no_other() {
        let elsewhere_seen = Seen::default();
        let elsewhere = serve(recording(elsewhere_seen.clone())).await;
        let seen = Seen::default();
        let target = url(elsewhere, "/feed");
        let origin = serve(
            Router::new()
                .route(
                    "/feed",
                    get(
                        |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                            record(&seen, &uri, &headers);
                            "ok"
                        },
                    ),
                )
                .route(
                    "/moved",
                    get(
                        move |State(seen): State<Seen>, uri: Uri, headers: AxHeaderMap| async move {
                            record(&seen, &uri, &headers);
                            redirect(StatusCode::FOUND, target.as_str())
                        },
                    ),
                )
                .with_state(seen.clone()),
        )
        .await;
        let fetcher = fetcher(|_| {});
        let none = Validators::default();
        let request = source_request();

        let direct = fetcher
            .fetch_for(&url(origin, "/feed"), &none, true, &request)
            .await
            .unwrap();
        assert_eq!(body_of(direct), "ok");
        let (_, headers) = seen.lock().unwrap()[0].clone();
        assert_eq!(headers["x-api-key"], "s3cret-key");
        assert_eq!(headers["cookie"], "consent=yes; session=s3cret-cookie");
        assert_eq!(headers["user-agent"], "NewsroomBot/2.0");
        // The shared client's defaults still hold beside them.
        assert_eq!(headers["accept"], ACCEPT);

        // Redirected to another origin (another port): the user agent
        // follows, the key and the cookie do not.
        let redirected = fetcher
            .fetch_for(&url(origin, "/moved"), &none, true, &request)
            .await
            .unwrap();
        assert_eq!(body_of(redirected), "ok");
        let (_, first_hop) = seen.lock().unwrap()[1].clone();
        assert_eq!(first_hop["x-api-key"], "s3cret-key");
        let (_, headers) = elsewhere_seen.lock().unwrap()[0].clone();
        assert_eq!(headers["user-agent"], "NewsroomBot/2.0");
        assert!(headers.get("x-api-key").is_none(), "{headers:?}");
        assert!(headers.get("cookie").is_none(), "{headers:?}");

        // Another source sends none of it.
        fetcher.fetch(&url(origin, "/feed"), &none).await.unwrap();
        let (_, headers) = seen.lock().unwrap()[2].clone();
        assert_eq!(headers["user-agent"], USER_AGENT);
        assert!(headers.get("x-api-key").is_none() && headers.get("cookie").is_none());
    }

    #[tokio::test]
    async fn a_sources_http_proxy_carries_its_requests() {
        let seen = Seen::default();
        let proxy = serve(recording(seen.clone())).await;
        let request = SourceRequest {
            proxy: Some(url(proxy, "/")),
            ..source_request()
        };
        // A name that resolves nowhere: only the proxy can answer it.
        let feed = Url::parse("http://feeds.example.invalid/rss.xml").unwrap();
        let fetched = fetcher(|_| {})
            .fetch_for(&feed, &Validators::default(), false, &request)
            .await
            .unwrap();
        assert_eq!(body_of(fetched), "ok");
        let (target, headers) = seen.lock().unwrap()[0].clone();
        assert_eq!(target, "http://feeds.example.invalid/rss.xml");
        assert_eq!(headers["host"], "feeds.example.invalid");
        assert_eq!(headers["x-api-key"], "s3cret-key");
    }

    #[tokio::test]
    async fn through_a_proxy_a_redirect_to_a_private_ip_literal_is_still_refused() {
        // The proxy listens on loopback; that must not make the source count
        // as a loopback one, whose redirects may go anywhere.
        let proxy = serve(
            Router::new()
                .fallback(|| async { redirect(StatusCode::FOUND, "http://127.0.0.1:9/internal") }),
        )
        .await;
        let request = SourceRequest {
            proxy: Some(url(proxy, "/")),
            ..SourceRequest::default()
        };
        let feed = Url::parse("http://feeds.example.invalid/rss.xml").unwrap();
        let refused = fetcher(|_| {})
            .fetch_for(&feed, &Validators::default(), false, &request)
            .await;
        match refused {
            Err(FetchError::Other(why)) => assert!(why.contains("refused"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A SOCKS5 proxy (RFC 1928, no authentication, CONNECT only) that
    /// relays to `to` whatever address it is asked for, and counts what it
    /// was asked for.
    async fn socks5_proxy(to: SocketAddr, asked: Arc<Mutex<Vec<String>>>) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let asked = asked.clone();
                tokio::spawn(async move {
                    let mut greeting = [0u8; 2];
                    client.read_exact(&mut greeting).await.unwrap();
                    let mut methods = vec![0u8; greeting[1] as usize];
                    client.read_exact(&mut methods).await.unwrap();
                    client.write_all(&[5, 0]).await.unwrap();
                    let mut head = [0u8; 4];
                    client.read_exact(&mut head).await.unwrap();
                    let host = match head[3] {
                        3 => {
                            let len = client.read_u8().await.unwrap();
                            let mut name = vec![0u8; len as usize];
                            client.read_exact(&mut name).await.unwrap();
                            String::from_utf8(name).unwrap()
                        }
                        1 => {
                            let mut ip = [0u8; 4];
                            client.read_exact(&mut ip).await.unwrap();
                            Ipv4Addr::from(ip).to_string()
                        }
                        other => panic!("address type {other}"),
                    };
                    let port = client.read_u16().await.unwrap();
                    asked.lock().unwrap().push(format!("{host}:{port}"));
                    let mut upstream = tokio::net::TcpStream::connect(to).await.unwrap();
                    client
                        .write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_sources_socks5_proxy_carries_its_requests() {
        let seen = Seen::default();
        let origin = serve(recording(seen.clone())).await;
        let asked = Arc::<Mutex<Vec<String>>>::default();
        let proxy = socks5_proxy(origin, asked.clone()).await;
        let request = SourceRequest {
            // socks5h: the proxy resolves the name.
            proxy: Some(Url::parse(&format!("socks5h://{proxy}")).unwrap()),
            ..SourceRequest::default()
        };
        let feed = Url::parse("http://feeds.example.invalid:8080/rss.xml").unwrap();
        let fetched = fetcher(|_| {})
            .fetch_for(&feed, &Validators::default(), false, &request)
            .await
            .unwrap();
        assert_eq!(body_of(fetched), "ok");
        assert_eq!(*asked.lock().unwrap(), ["feeds.example.invalid:8080"]);
        assert_eq!(
            seen.lock().unwrap()[0].1["host"],
            "feeds.example.invalid:8080"
        );
    }
}
