//! The operator's view (docs/HTTP.md "Source health"): `/health.atom` and
//! `/health.json`, the sources' state changes as a feed, and
//! `/sources/{name}`, one source's page: where it is fetched from, its
//! state, what is in force (validators, Retry-After, backoff), its latest
//! fetches and errors, its 30 days and where its articles go.

use super::index::{esc, quiet_since, time, STYLE};
use super::{chart, encode_segment, etag_matches, ApiError, AppState};
use crate::model::SourceState;
use crate::publish::health::{self, HealthFeed};
use crate::publish::Format;
use crate::store::day_of;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::Arc;

/// Entries of the health feed: the latest events.
pub const HEALTH_ENTRIES: u32 = 100;
/// Fetches and events listed on a source's page.
const PAGE_FETCHES: u32 = 50;
const PAGE_EVENTS: u32 = 20;

pub(super) async fn health_atom(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    health_feed(state, headers, Format::Atom).await
}

pub(super) async fn health_json(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    health_feed(state, headers, Format::Json).await
}

async fn health_feed(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let policy = state.store.health_policy();
    let events = state
        .store
        .health_events(now, &policy, HEALTH_ENTRIES)
        .await?;
    let updated = match events.first() {
        Some(newest) => newest.at,
        None => state.store.created_at().await?,
    };
    let feed = HealthFeed {
        base_url: &state.site.base_url,
        author: &state.site.author,
        updated,
    };
    let body = match format {
        Format::Atom => health::atom(&feed, &events),
        Format::Json => health::json(&feed, &events),
    };
    let etag = format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body.as_bytes()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
    };
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

pub(super) async fn source_page(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Html<String>, ApiError> {
    let Some(source) = state.store.source_state(&name).await? else {
        return Err(ApiError::NotFound);
    };
    let now = state.clock.now();
    let today = day_of(now);
    let policy = state.store.health_policy();
    let days = state
        .store
        .source_days(today - chart::DAYS + 1, Some(&name))
        .await?;
    let days: Vec<_> = days.into_iter().map(|(_, d)| d).collect();
    let fetches = state.store.fetch_log(&name, PAGE_FETCHES).await?;
    let events = state
        .store
        .source_health_events(&name, now, &policy, PAGE_EVENTS)
        .await?;
    let base = &state.site.base_url;
    let config = state.config.sources.iter().find(|s| s.name == name);

    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} · tributary</title>\n<style>{STYLE}{}</style>\n</head>\n<body>\n",
        esc(&name),
        chart::STYLE
    );
    let _ = writeln!(
        html,
        "<header>\n<p><a href=\"{}/\">tributary</a> / sources</p>\n<h1>{}</h1>\n{}</header>",
        esc(base),
        esc(&name),
        source
            .title
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| format!("<p>{}</p>\n", esc(t)))
            .unwrap_or_default()
    );

    html.push_str("<section id=\"state\">\n<h2>State</h2>\n<table class=\"facts\">\n");
    let state_name = crate::metrics::source_state(&source);
    let mut fact = |key: &str, value: String| {
        let _ = writeln!(html, "<tr><th>{}</th><td>{value}</td></tr>", esc(key));
    };
    fact(
        "URL",
        format!(
            "<code>{}</code>",
            esc(&crate::redact::public_url(&source.url))
        ),
    );
    fact(
        "state",
        format!(
            "<span class=\"state {state_name}\">{}</span>{}",
            esc(&state_name.replace('_', " ")),
            if source.consecutive_failures > 0 {
                format!(" ({} failures in a row)", source.consecutive_failures)
            } else {
                String::new()
            }
        ),
    );
    if let Some(since) = quiet_since(&source, now, policy.quiet_after) {
        fact(
            "quiet",
            format!(
                "<span class=\"disabled\">no new entry since {}</span>",
                time(Some(since))
            ),
        );
    }
    fact("articles", source.articles.to_string());
    fact(
        "last fetch",
        format!(
            "{}{}",
            time(source.last_fetch_at),
            source
                .last_status
                .map(|c| format!(" · HTTP {c}"))
                .unwrap_or_default()
        ),
    );
    fact("next fetch", next_fetch(&source));
    fact("in force", in_force(&source, now));
    fact("validators", validators(&source));
    if let Some(reason) = &source.disabled_reason {
        fact("disabled", esc(reason));
    }
    if let Some(to) = &source.moved_to {
        fact(
            "moved to",
            format!("<code>{}</code>", esc(&crate::redact::public_url(to))),
        );
    }
    if let Some(error) = &source.last_error {
        fact(
            "last error",
            format!("<span class=\"error\">{}</span>", esc(error)),
        );
    }
    let tags = config.map(|c| c.tags.join(", ")).unwrap_or_default();
    fact(
        "tags",
        if tags.is_empty() {
            "<span class=\"muted\">none of its own</span>".to_string()
        } else {
            esc(&tags)
        },
    );
    let feeds: Vec<String> = state
        .config
        .feeds
        .iter()
        .filter(|f| f.sources.is_empty() || f.sources.contains(&name))
        .map(|f| {
            format!(
                "<a href=\"{}\">{}</a>{}",
                esc(&format!("{base}/feeds/{}.atom", encode_segment(&f.name))),
                esc(&f.title),
                if f.sources.is_empty() {
                    ""
                } else {
                    " (by name)"
                }
            )
        })
        .collect();
    fact(
        "feeds",
        if feeds.is_empty() {
            "<span class=\"muted\">none but the merged feed</span>".to_string()
        } else {
            format!(
                "{} · <a href=\"{}\">its own</a>",
                feeds.join(", "),
                esc(&format!("{base}/feed.atom?source={name}"))
            )
        },
    );
    html.push_str("</table>\n</section>\n");

    let _ = writeln!(
        html,
        "<section id=\"history\">\n<h2>Last {} days</h2>\n{}\n<p class=\"muted\">Bars: new entries per day. Below: a block when every fetch worked, a short tick when all were not modified, a triangle when some failed, a cross when all failed.</p>\n</section>",
        chart::DAYS,
        chart::svg(&name, &days, today)
    );

    html.push_str("<section id=\"events\">\n<h2>Changes</h2>\n");
    if events.is_empty() {
        html.push_str("<p class=\"muted\">No change of state recorded.</p>\n");
    } else {
        html.push_str(
            "<div class=\"wide\"><table>\n<thead><tr><th>when</th><th>what</th><th>detail</th></tr></thead>\n<tbody>\n",
        );
        for e in &events {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(Some(e.at)),
                esc(e.kind.as_str()),
                esc(&e.detail)
            );
        }
        html.push_str("</tbody>\n</table></div>\n");
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"fetches\">\n<h2>Latest fetches</h2>\n");
    if fetches.is_empty() {
        html.push_str("<p class=\"muted\">No fetch recorded in the last week.</p>\n");
    } else {
        // Six columns: a phone scrolls the table, not the page.
        html.push_str("<div class=\"wide\"><table>\n<thead><tr><th>when</th><th>outcome</th><th class=\"num\">took</th><th class=\"num\">bytes</th><th class=\"num\">new</th><th>error</th></tr></thead>\n<tbody>\n");
        for f in &fetches {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"{}\">{}{}</td><td class=\"num\">{} ms</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"error\">{}</td></tr>",
                time(Some(f.at)),
                outcome_class(&f.outcome),
                esc(&f.outcome.replace('_', " ")),
                f.status.map(|s| format!(" · {s}")).unwrap_or_default(),
                f.duration_ms,
                f.bytes,
                f.new_entries,
                esc(f.error.as_deref().unwrap_or(""))
            );
        }
        html.push_str("</tbody>\n</table></div>\n");
    }
    html.push_str("</section>\n");
    let _ = writeln!(
        html,
        "<footer><a href=\"{}/\">all sources</a> · <a href=\"{}\">health feed</a></footer>\n</body>\n</html>",
        esc(base),
        esc(&format!("{base}/health.atom"))
    );
    Ok(Html(html))
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "ok",
        "not_modified" => "muted",
        "partial" | "throttled" => "disabled",
        _ => "failing",
    }
}

fn next_fetch(s: &SourceState) -> String {
    if !s.enabled {
        "not fetched (enabled = false)".to_string()
    } else if s.disabled_reason.is_some() {
        "not fetched (disabled)".to_string()
    } else {
        time(s.next_fetch_at)
    }
}

fn in_force(s: &SourceState, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = Vec::new();
    if let Some(until) = s.retry_after_until.filter(|t| *t > now) {
        out.push(format!("Retry-After until {}", time(Some(until))));
    }
    if let Some(until) = s.backoff_until.filter(|t| *t > now) {
        out.push(format!("backoff until {}", time(Some(until))));
    }
    if out.is_empty() {
        "<span class=\"muted\">nothing: the regular schedule</span>".to_string()
    } else {
        esc(&out.join(" · "))
    }
}

fn validators(s: &SourceState) -> String {
    let mut out = Vec::new();
    if let Some(etag) = &s.etag {
        out.push(format!("ETag <code>{}</code>", esc(etag)));
    }
    if let Some(lm) = &s.last_modified {
        out.push(format!("Last-Modified <code>{}</code>", esc(lm)));
    }
    if out.is_empty() {
        "<span class=\"muted\">none (every fetch gets the whole body)</span>".to_string()
    } else {
        out.join("<br>")
    }
}
