//! The HTTP interface (docs/HTTP.md): read-only routes over the store,
//! caching headers and 304s, errors mapped to status codes in one place.

mod cache;
mod chart;
mod hub;
mod index;
pub use index::FeedDays;
mod ops;
mod serve;

pub use serve::{serve, Limits};

use crate::config::{canonical_term, Config};
use crate::model::Filter;
use crate::publish::{self, Format, Site, ViewRequest};
use crate::store::{Store, StoreError};
use crate::text;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cache::{CachedPage, Coding};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;

/// Default and largest page sizes of merged views.
const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
/// Most terms (or sources) one filter parameter may list: far above any
/// real view, and bounded so that a request cannot build a query past the
/// databases' expression depth or compound-select limits.
pub const MAX_TERMS: usize = 64;

/// What every handler reads.
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub site: Site,
    /// Rendered pages of this config's views.
    pub cache: cache::FeedCache,
    /// Atom entries of the articles the store shares, reused across pages.
    pub entries: crate::publish::atom::EntryCache,
    /// What `/metrics` renders.
    pub metrics: crate::metrics::Recorder,
    /// What time it is for states shown (backoffs in force).
    pub clock: crate::clock::Clock,
    /// The index page's feed charts, recomputed at most once a minute.
    pub feed_days: index::FeedDays,
}

/// The daemon's routes, and `more` (routes with their own state: WebSub's
/// callbacks), all behind the security headers and request metrics.
pub fn router(state: Arc<AppState>, more: Router) -> Router {
    // Feeds come compressed from the page cache (`respond`): only the other
    // routes go through the compression layer, which a feed request (and
    // every 304) would otherwise pay for negotiating.
    let pages = Router::new()
        .route("/", get(index::index))
        .route("/feed.xsl", get(index::feed_xsl))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/sources/{name}", get(ops::source_page))
        .route("/health.atom", get(ops::health_atom))
        .route("/health.json", get(ops::health_json))
        .layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .route("/feed.atom", get(merged_atom))
        .route("/feed.json", get(merged_json))
        .route("/top.atom", get(top_atom))
        .route("/top.json", get(top_json))
        .route("/feeds/{file}", get(configured_feed))
        .route("/tags/{file}", get(tag_feed))
        .route("/websub/hub", hub::route())
        .merge(pages)
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .merge(more)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(track_request))
}

/// Errors as the client sees them: 4xx say what was wrong, 5xx reveal
/// nothing (the cause is logged).
#[derive(Debug)]
pub enum ApiError {
    NotFound,
    BadRequest(String),
    Internal(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found\n").into_response(),
            ApiError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, format!("bad request: {message}\n")).into_response()
            }
            // A page not rendered before the database went away: a load
            // balancer tries another instance, a client again later.
            ApiError::Internal(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "request failed: database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
        }
    }
}

/// Counts every request by route pattern and status (`Router::layer` runs
/// after routing, so the matched pattern is known; unmatched paths share one
/// label and cannot grow the metric's cardinality).
async fn track_request(request: Request, next: Next) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::record_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// What a page rendered in a browser may load: the index page needs only
/// its inline `<style>`; an Atom feed opened in a browser also loads
/// `/feed.xsl`, which CSP governs as a script (an XSLT is a script-like
/// destination), and its output needs its inline `<style>`. `'self'` admits
/// no script in practice: nothing here is served as JavaScript, and
/// `nosniff` stops browsers from running any other type as one.
const HTML_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const FEED_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `X-Content-Type-Options: nosniff` on every response, and a
/// `Content-Security-Policy` on those a browser renders (HTML, XML feeds,
/// the XSLT).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let policy = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .and_then(|media| match media.as_str() {
            "text/html" => Some(HTML_POLICY),
            "text/xsl" | "application/xml" | "text/xml" | "application/atom+xml" => {
                Some(FEED_POLICY)
            }
            _ => None,
        });
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(policy) = policy {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    response
}

/// The route patterns above as static metric labels.
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    const ROUTES: [&str; 15] = [
        "/",
        "/feed.xsl",
        "/metrics",
        "/healthz",
        "/sources/{name}",
        "/health.atom",
        "/health.json",
        "/feed.atom",
        "/feed.json",
        "/top.atom",
        "/top.json",
        "/feeds/{file}",
        "/tags/{file}",
        "/websub/hub",
        "/websub/callback/{callback}",
    ];
    matched
        .and_then(|m| ROUTES.iter().find(|r| **r == m.as_str()))
        .copied()
        .unwrap_or("unmatched")
}

async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let body = state
        .metrics
        .render(&state.store, state.clock.now())
        .await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

/// 200 `ok` while the database answers and takes this process's writes;
/// 503 otherwise, with the reason: reads may still work then, but nothing
/// new is stored, which a load balancer or a monitor must see.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    if !state.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
    }
    match state.store.write_health().await.reason() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {reason}\n"),
        )
            .into_response(),
    }
}

async fn merged_atom(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    merged(state, query, headers, Format::Atom).await
}

async fn merged_json(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    merged(state, query, headers, Format::Json).await
}

async fn merged(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    let path = "/feed";
    ad_hoc(
        state,
        query,
        headers,
        format,
        path,
        String::new(),
        Filter::default(),
    )
    .await
}

/// A view of every article that the query's filters narrow, over `base`.
async fn ad_hoc(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    format: Format,
    path: &str,
    title: String,
    base: Filter,
) -> Result<Response, ApiError> {
    let mut params = ViewParams::parse(query.as_deref(), true)?;
    params.apply_aliases(&state.config.tag_aliases);
    check_sources(&state, &params.filter.sources).await?;
    let request = params.into_request(path.into(), title, base, DEFAULT_LIMIT, format);
    respond(&state, &request, &headers).await
}

async fn top_atom(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    top(state, query, headers, Format::Atom).await
}

async fn top_json(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    top(state, query, headers, Format::Json).await
}

/// `/top.{atom,json}`: the merged view's parameters over [`top_filter`].
async fn top(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    let title = "tributary: top stories".to_string();
    ad_hoc(state, query, headers, format, "/top", title, top_filter()).await
}

/// Stories of the last day that two outlets or more carried, most
/// outlets first (docs/HTTP.md "Top stories").
pub fn top_filter() -> Filter {
    Filter {
        min_outlets: Some(TOP_MIN_OUTLETS),
        window: Some(Filter::COVERAGE_WINDOW),
        sort: crate::model::Sort::Coverage,
        ..Filter::default()
    }
}

/// `/top`'s default `min_outlets`: one outlet is no coverage to rank.
pub const TOP_MIN_OUTLETS: u32 = 2;

/// The first page of `/top.{atom,json}` with these parameters: what
/// `tributary export --top` prints, byte for byte.
pub fn top_request(
    filter: Filter,
    sort: Option<crate::model::Sort>,
    limit: Option<u32>,
    format: Format,
) -> ViewRequest {
    let mut params = ViewParams {
        filter,
        sort,
        limit,
        before: None,
    };
    params.normalize();
    params.into_request(
        "/top".into(),
        "tributary: top stories".into(),
        top_filter(),
        DEFAULT_LIMIT,
        format,
    )
}

/// The first page of `/feed.{atom,json}` with these filters: what
/// `tributary export` prints, byte for byte.
pub fn merged_request(
    filter: Filter,
    sort: Option<crate::model::Sort>,
    limit: Option<u32>,
    format: Format,
) -> ViewRequest {
    let mut params = ViewParams {
        filter,
        sort,
        limit,
        before: None,
    };
    params.normalize();
    params.into_request(
        "/feed".into(),
        String::new(),
        Filter::default(),
        DEFAULT_LIMIT,
        format,
    )
}

async fn tag_feed(
    state: State<Arc<AppState>>,
    Path(file): Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (name, format) = split_extension(&file)?;
    let (path, base) = tag_view(&state.config, name).ok_or(ApiError::NotFound)?;
    ad_hoc(state, query, headers, format, &path, String::new(), base).await
}

/// `/tags/{name}`'s path (its canonical term, encoded) and filter; none
/// for a name that folds to no term.
fn tag_view(config: &Config, name: &str) -> Option<(String, Filter)> {
    let term = canonical_term(&config.tag_aliases, &text::term(name));
    if term.is_empty() {
        return None;
    }
    let path = format!("/tags/{}", encode_segment(&term));
    let base = Filter {
        all: vec![term],
        ..Filter::default()
    };
    Some((path, base))
}

/// `feed`'s first page and paging `params`.
fn configured_request(
    feed: &crate::config::FeedConfig,
    params: ViewParams,
    format: Format,
) -> ViewRequest {
    params.into_request(
        format!("/feeds/{}", encode_segment(&feed.name)),
        feed.title.clone(),
        feed.filter(),
        feed.limit,
        format,
    )
}

/// The view a WebSub topic names: one of this instance's feed URLs
/// (`base_url`, a feed route, its filters; not a later page), as the
/// routes above read it. The error says why not.
pub fn topic_view(config: &Config, topic: &str) -> Result<ViewRequest, String> {
    let base = config.daemon.base_url.as_str().trim_end_matches('/');
    let not_ours = || format!("hub.topic must be one of this instance's feeds, under {base}/");
    let rest = topic
        .strip_prefix(base)
        .filter(|rest| rest.starts_with('/') && !rest.contains('#'))
        .ok_or_else(not_ours)?;
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let said = |e: ApiError| match e {
        ApiError::BadRequest(message) => message,
        _ => not_ours(),
    };
    let request = if let Some(file) = path.strip_prefix("/feeds/") {
        let file = decode_segment(file);
        let (name, format) = split_extension(&file).map_err(said)?;
        let feed = config
            .feeds
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(not_ours)?;
        configured_request(feed, ViewParams::parse(query, false).map_err(said)?, format)
    } else {
        let file = path.strip_prefix("/tags/").map(decode_segment);
        let (name, format) = match &file {
            Some(file) => split_extension(file).map_err(said)?,
            None => split_extension(path.trim_start_matches('/')).map_err(said)?,
        };
        let (path, title, base) = match (&file, name) {
            (Some(_), name) => {
                let (path, base) = tag_view(config, name).ok_or_else(not_ours)?;
                (path, String::new(), base)
            }
            (None, "feed") => ("/feed".to_string(), String::new(), Filter::default()),
            (None, "top") => (
                "/top".to_string(),
                "tributary: top stories".to_string(),
                top_filter(),
            ),
            _ => return Err(not_ours()),
        };
        let mut params = ViewParams::parse(query, true).map_err(said)?;
        params.apply_aliases(&config.tag_aliases);
        params.into_request(path, title, base, DEFAULT_LIMIT, format)
    };
    if request.before.is_some() {
        return Err("hub.topic is a feed's first page: without before=".into());
    }
    Ok(request)
}

async fn configured_feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (name, format) = split_extension(&file)?;
    let feed = state
        .config
        .feeds
        .iter()
        .find(|f| f.name == name)
        .ok_or(ApiError::NotFound)?;
    // A configured feed is fixed; only paging applies.
    let params = ViewParams::parse(query.as_deref(), false)?;
    let request = configured_request(feed, params, format);
    respond(&state, &request, &headers).await
}

/// `source=` names a source the store knows (configured, or removed from
/// the config but kept for its articles); anything else is a 400 rather
/// than an empty feed that looks like a quiet source.
async fn check_sources(state: &AppState, names: &[String]) -> Result<(), ApiError> {
    for name in names {
        if state.config.sources.iter().any(|s| &s.name == name) {
            continue;
        }
        match state.store.source_id(name).await {
            Ok(_) => {}
            Err(StoreError::UnknownSource(_)) => {
                return Err(ApiError::BadRequest(format!("unknown source {name:?}")))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub(crate) use crate::text::encode_segment;

/// The inverse of [`encode_segment`] (invalid escapes are kept as written).
fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn split_extension(file: &str) -> Result<(&str, Format), ApiError> {
    let (name, ext) = file.rsplit_once('.').ok_or(ApiError::NotFound)?;
    let format = Format::from_extension(ext).ok_or(ApiError::NotFound)?;
    Ok((name, format))
}

/// The query parameters of a view (docs/HTTP.md); anything else is a 400.
#[derive(Debug, Default)]
pub struct ViewParams {
    /// Tag terms (normalized, sorted, deduplicated), source names,
    /// `min_outlets` and `window` (`sort` is below: unset differs from
    /// `published` over `/top`'s default).
    pub filter: Filter,
    pub sort: Option<crate::model::Sort>,
    pub limit: Option<u32>,
    pub before: Option<crate::model::Cursor>,
}

impl ViewParams {
    /// Reads a raw query string; `filters_allowed` is false for configured
    /// feeds, which take only paging. Public for the fuzz targets.
    pub fn parse(query: Option<&str>, filters_allowed: bool) -> Result<ViewParams, ApiError> {
        let mut params = ViewParams::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let list = |value: &str| -> Vec<String> {
                value
                    .split(',')
                    .map(text::term)
                    .filter(|t| !t.is_empty())
                    .collect()
            };
            match key.as_ref() {
                "any" | "all" | "none" if filters_allowed => {
                    let target = match key.as_ref() {
                        "any" => &mut params.filter.any,
                        "all" => &mut params.filter.all,
                        _ => &mut params.filter.none,
                    };
                    target.extend(list(&value));
                    check_terms(&key, target.len())?;
                }
                "source" if filters_allowed => {
                    params.filter.sources.extend(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                    );
                    check_terms(&key, params.filter.sources.len())?;
                }
                "lang" if filters_allowed => {
                    for raw in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let lang = text::language_key(raw).ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "lang= takes language tags such as en or pt-BR, not {raw:?}"
                            ))
                        })?;
                        params.filter.languages.push(lang);
                    }
                    check_terms(&key, params.filter.languages.len())?;
                }
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "limit must be a number from 1 to {MAX_LIMIT}, not {value:?}"
                            ))
                        })?;
                    params.limit = Some(limit);
                }
                "min_outlets" if filters_allowed => {
                    let max = Filter::MAX_MIN_OUTLETS;
                    let n = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=max).contains(n))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "min_outlets must be a number from 1 to {max}, not {value:?}"
                            ))
                        })?;
                    params.filter.min_outlets = Some(n);
                }
                "window" if filters_allowed => {
                    let max = crate::model::format_window(Filter::MAX_WINDOW);
                    let window = crate::config::parse_duration(&value)
                        .ok()
                        .filter(|w| !w.is_zero() && *w <= Filter::MAX_WINDOW)
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "window must be a duration from 1s to {max} (12h, 1d), not {value:?}"
                            ))
                        })?;
                    params.filter.window = Some(window);
                }
                "sort" if filters_allowed => {
                    let sort = crate::model::Sort::from_name(&value).ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "sort must be published or coverage, not {value:?}"
                        ))
                    })?;
                    params.sort = Some(sort);
                }
                "before" => {
                    let cursor = publish::decode_cursor(&value).ok_or_else(|| {
                        ApiError::BadRequest(format!("invalid before cursor {value:?}"))
                    })?;
                    params.before = Some(cursor);
                }
                other => {
                    let allowed = if filters_allowed {
                        "any, all, none, source, lang, min_outlets, window, sort, limit, before"
                    } else {
                        "limit, before"
                    };
                    return Err(ApiError::BadRequest(format!(
                        "unknown parameter {other:?} (allowed: {allowed})"
                    )));
                }
            }
        }
        params.normalize();
        Ok(params)
    }
}

/// Rejects a parameter listing more than [`MAX_TERMS`] values (repeated
/// parameters count together).
fn check_terms(key: &str, count: usize) -> Result<(), ApiError> {
    if count > MAX_TERMS {
        return Err(ApiError::BadRequest(format!(
            "{key}= lists {count} values; at most {MAX_TERMS} are allowed"
        )));
    }
    Ok(())
}

impl ViewParams {
    /// Tag spellings folded into their `[[tag_alias]]` tags.
    fn apply_aliases(&mut self, aliases: &[crate::config::TagAliasConfig]) {
        let f = &mut self.filter;
        for list in [&mut f.any, &mut f.all, &mut f.none] {
            for term in list.iter_mut() {
                *term = canonical_term(aliases, term);
            }
        }
        self.normalize();
    }

    /// Sorted and deduplicated, so equal views have equal URLs and ETags.
    fn normalize(&mut self) {
        let f = &mut self.filter;
        for list in [
            &mut f.any,
            &mut f.all,
            &mut f.none,
            &mut f.sources,
            &mut f.languages,
        ] {
            list.sort();
            list.dedup();
        }
    }

    fn into_request(
        self,
        path: String,
        title: String,
        base: Filter,
        default_limit: u32,
        format: Format,
    ) -> ViewRequest {
        let mut query = Vec::new();
        for (key, values) in [
            ("any", &self.filter.any),
            ("all", &self.filter.all),
            ("none", &self.filter.none),
            ("source", &self.filter.sources),
            ("lang", &self.filter.languages),
        ] {
            if !values.is_empty() {
                query.push((key.to_string(), values.join(",")));
            }
        }
        if let Some(n) = self.filter.min_outlets {
            query.push(("min_outlets".into(), n.to_string()));
        }
        if let Some(window) = self.filter.window {
            query.push(("window".into(), crate::model::format_window(window)));
        }
        if let Some(sort) = self.sort {
            query.push(("sort".into(), sort.as_str().into()));
        }
        if let Some(limit) = self.limit {
            query.push(("limit".into(), limit.to_string()));
        }
        let mut filter = base;
        filter.any.extend(self.filter.any);
        filter.all.extend(self.filter.all);
        filter.none.extend(self.filter.none);
        filter.sources.extend(self.filter.sources);
        filter.languages.extend(self.filter.languages);
        filter.min_outlets = self.filter.min_outlets.or(filter.min_outlets);
        filter.window = self.filter.window.or(filter.window);
        filter.sort = self.sort.unwrap_or(filter.sort);
        let title = if title.is_empty() {
            describe(&path, &query)
        } else {
            title
        };
        ViewRequest {
            title,
            path,
            query,
            filter,
            before: self.before,
            limit: self.limit.unwrap_or(default_limit),
            format,
        }
    }
}

/// A readable title for an ad-hoc view.
fn describe(path: &str, query: &[(String, String)]) -> String {
    let mut title = match path.strip_prefix("/tags/") {
        Some(term) => format!("tributary: {}", decode_segment(term)),
        None => "tributary: all articles".to_string(),
    };
    for (key, value) in query.iter().filter(|(k, _)| k != "limit") {
        title.push_str(&format!(", {key} {value}"));
    }
    title
}

async fn respond(
    state: &AppState,
    request: &ViewRequest,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // A coverage walk's cursor carries its time and place in coverage
    // order; a newest-first cursor cannot say where that walk is.
    if request.filter.sort == crate::model::Sort::Coverage
        && request.before.is_some_and(|c| c.coverage.is_none())
    {
        return Err(ApiError::BadRequest(
            "this before= cursor is not from a coverage-sorted view; start from the first page"
                .into(),
        ));
    }
    let version = state.store.content_version().await?;
    let page = match state.cache.get(request, version) {
        Some(page) => page,
        None => {
            // Past its age, a page is still the newest this process knows
            // while the database does not answer.
            let stale = match state.store.database_away() {
                true => state.cache.get_stale(request, version),
                false => None,
            };
            if let Some(page) = stale {
                return Ok(respond_with(state, request, headers, page));
            }
            let rendered = publish::render(
                &state.store,
                &state.site,
                &state.entries,
                request,
                state.clock.now(),
            )
            .await?;
            // An empty page says why (sources not fetched yet, failing),
            // and that changes without the articles' version changing.
            let keep = rendered.why_empty.is_none();
            let page = CachedPage::from(rendered);
            if keep {
                state.cache.put(request, version, page.clone());
            }
            page
        }
    };
    Ok(respond_with(state, request, headers, page))
}

/// The response for a rendered `page`: its body or a 304, with the feed's
/// headers.
fn respond_with(
    state: &AppState,
    request: &ViewRequest,
    headers: &HeaderMap,
    page: CachedPage,
) -> Response {
    let content_type = match request.format {
        Format::Atom if prefers_html(headers) => XML_FOR_BROWSERS,
        format => format.content_type(),
    };
    let mut response = conditional(page, content_type, headers);
    if let Some(hub) = state.site.hub_for(request) {
        // WebSub §4: discovery from the headers, for any body.
        let topic = publish::view_url(&state.site, request);
        let link = format!("<{hub}>; rel=\"hub\", <{topic}>; rel=\"self\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// Browsers show `application/atom+xml` as plain text and apply the feed's
/// XSLT only to a generic XML type; the bytes are the same.
const XML_FOR_BROWSERS: &str = "application/xml; charset=utf-8";

/// True when `Accept` ranks HTML above Atom: a browser navigating to the
/// feed, not a feed reader (those list Atom first, or HTML with a lower q).
fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut html = 0.0_f32;
    let mut atom = 0.0_f32;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" => html = html.max(q),
            "application/atom+xml" | "application/*" | "*/*" => atom = atom.max(q),
            _ => {}
        }
    }
    html > atom
}

/// A 200 with validators, or a 304 when the client's copy is current
/// (RFC 9110 §13.1: If-None-Match wins over If-Modified-Since).
fn conditional(rendered: CachedPage, content_type: &'static str, headers: &HeaderMap) -> Response {
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(value) => value
            .to_str()
            .is_ok_and(|v| etag_matches(v, &rendered.etag)),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                DateTime::<Utc>::from(since).timestamp() >= rendered.last_modified.timestamp()
            }),
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // Compressed once per page and version, not per request.
        let coding = Coding::negotiate(
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        );
        let mut r = rendered.encoded(coding).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(name) = coding.header() {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        r
    };
    let h = response.headers_mut();
    if let Some(etag) = &rendered.etag_header {
        h.insert(header::ETAG, etag.clone());
    }
    // On 304s too (docs/HTTP.md: responses carry both validators).
    if let Some(last_modified) = &rendered.last_modified_header {
        h.insert(header::LAST_MODIFIED, last_modified.clone());
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("accept-encoding, accept"),
    );
    response
}

/// Weak comparison (RFC 9110 §8.8.3.2), as caches revalidating compressed
/// variants may send `W/` forms.
fn etag_matches(header_value: &str, etag: &str) -> bool {
    header_value
        .split(',')
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == "*" || v == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_params_accept_the_contract_and_reject_the_rest() {
        let p = ViewParams::parse(
            Some("any=China,RUSSIA&none=sport&source=rfi-en&limit=10"),
            true,
        )
        .unwrap();
        assert_eq!(p.filter.any, vec!["china", "russia"]);
        assert_eq!(p.filter.none, vec!["sport"]);
        assert_eq!(p.filter.sources, vec!["rfi-en"]);
        assert_eq!(p.limit, Some(10));
        for bad in ["limit=0", "limit=501", "limit=x", "foo=1", "before=zzz"] {
            assert!(
                matches!(
                    ViewParams::parse(Some(bad), true),
                    Err(ApiError::BadRequest(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ViewParams::parse(Some("any=x"), false),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn browsers_get_generic_xml_and_feed_readers_atom() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
            prefers_html(&headers)
        };
        // Chromium and Firefox navigating.
        assert!(accepts(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        ));
        assert!(accepts(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        // SimplePie (FreshRSS), a Miniflux-like list, curl.
        assert!(!accepts("application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.7, */*;q=0.1"));
        assert!(!accepts(
            "application/rss+xml, application/atom+xml;q=0.9, */*;q=0.5"
        ));
        assert!(!accepts("*/*"));
        assert!(!prefers_html(&HeaderMap::new()));
    }

    #[test]
    fn etags_compare_weakly_and_in_lists() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
