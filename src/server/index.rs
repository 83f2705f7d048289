//! `GET /` (docs/HTTP.md): one server-rendered HTML page listing the output
//! feeds with subscribe links (and `<link rel="alternate">` autodiscovery,
//! so browsers and readers find them), the tags with their counts, and the
//! sources with their health. No script: it must work in any browser.
//! Also `GET /feed.xsl`, the stylesheet that makes the Atom feeds readable
//! in a browser.

use super::{chart, encode_segment, ApiError, AppState};
use crate::metrics;
use crate::model::{DayStats, Filter, SourceState};
use crate::publish::{self, EmptyReason};
use crate::store::{day_of, StoreError};
use crate::text::{escape, Escape};
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The XSLT referenced by every Atom output (`<?xml-stylesheet?>`).
const FEED_XSL: &str = include_str!("../../assets/feed.xsl");

/// The most used tags shown at once; the rest are one click away (a
/// `<details>`, no script), so the sources below stay in view.
const TOP_TAGS: usize = 40;

/// Tags beyond this many (the least used) are not listed at all: the page
/// stays small whatever the feeds' categories.
const MAX_TAGS: usize = 2_000;

pub(super) const STYLE: &str = "
:root{color-scheme:light dark;--muted:#666;--line:#ddd;--chip:#eef2f7;--accent:#0b5cad;--ok:#1a7f37;--bad:#c62828;--warn:#9a6700}
@media (prefers-color-scheme:dark){:root{--muted:#aaa;--line:#444;--chip:#2a3038;--accent:#7db4ff;--ok:#5bd17a;--bad:#ff7b72;--warn:#e3b341}}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
a{color:var(--accent)}
header p,.muted,footer{color:var(--muted)}
h2{margin-top:2rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
ul.feeds{list-style:none;padding:0}
ul.feeds li{padding:.6rem 0;border-bottom:1px solid var(--line)}
ul.feeds .title{font-weight:600}
ul.feeds code{font-size:.85rem;word-break:break-all}
.sub{display:inline-block;margin-left:.5rem;padding:.05rem .55rem;border:1px solid var(--accent);border-radius:.3rem;text-decoration:none;font-size:.9rem}
.tags a{display:inline-block;background:var(--chip);border-radius:.8rem;padding:.05rem .6rem;margin:.15rem .1rem;text-decoration:none;font-size:.9rem}
.tags a span{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
td.num{text-align:right}
.state{font-weight:600}.state small{font-weight:400}
.ok{color:var(--ok)}.failing{color:var(--bad)}.disabled,.never_fetched{color:var(--warn)}
.error{color:var(--bad);max-width:22rem;overflow-wrap:anywhere}
table.facts th{width:9rem;color:var(--muted);font-weight:400}
table.facts td{overflow-wrap:anywhere}
.wide{overflow-x:auto}
ul.feeds .empty{color:var(--warn)}
footer{margin-top:2.5rem;font-size:.85rem}
details summary{cursor:pointer;color:var(--accent);margin:.3rem 0}
@media (max-width:40rem){body{margin:1rem auto}
#sources table,#sources tbody,#sources tr,#sources td{display:block;width:auto}
#sources thead{display:none}
#sources tr{border-bottom:1px solid var(--line);padding:.4rem 0}
#sources td{border:0;padding:.1rem 0;text-align:left}
#sources td[data-label]::before{content:attr(data-label) \": \";color:var(--muted)}
.error{max-width:none}
table.facts th{width:5.5rem}}
";

/// The feeds' articles per day (configured feeds in order, then the merged
/// view), computed at most once per `FEED_DAYS_FOR`: one count query per
/// feed over its last 30 days of articles, which a page reload need not
/// repeat.
#[derive(Default)]
pub struct FeedDays(std::sync::Mutex<Option<(std::time::Instant, i64, PerFeed)>>);

/// Each feed's (day, articles), in `FeedDays`' order.
type PerFeed = Arc<Vec<Vec<(i64, i64)>>>;

const FEED_DAYS_FOR: std::time::Duration = std::time::Duration::from_secs(60);

async fn feed_days(state: &AppState, today: i64) -> Result<PerFeed, StoreError> {
    {
        let kept = state.feed_days.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, day, days)) = kept.as_ref() {
            if *day == today && at.elapsed() < FEED_DAYS_FOR {
                return Ok(days.clone());
            }
        }
    }
    let from = today - chart::DAYS + 1;
    let mut all = Vec::with_capacity(state.config.feeds.len() + 1);
    for feed in &state.config.feeds {
        all.push(state.store.articles_per_day(&feed.filter(), from).await?);
    }
    all.push(
        state
            .store
            .articles_per_day(&Filter::default(), from)
            .await?,
    );
    let all = Arc::new(all);
    *state.feed_days.0.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((std::time::Instant::now(), today, all.clone()));
    Ok(all)
}

pub(super) async fn index(State(state): State<Arc<AppState>>) -> Result<Html<String>, ApiError> {
    let sources = state.store.source_states().await?;
    let pushes: HashMap<String, crate::store::Subscription> = state
        .store
        .websub_subscriptions()
        .await?
        .into_iter()
        .map(|s| (s.source.clone(), s))
        .collect();
    let tags = state.store.tag_counts().await?;
    let articles = state.store.article_count().await?;
    let base = &state.site.base_url;
    let feeds = &state.config.feeds;
    let now = state.clock.now();

    let mut html = String::with_capacity(16 * 1024);
    html.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>tributary</title>\n");
    // Autodiscovery: readers given this page's URL offer these feeds.
    for feed in feeds {
        for (kind, ext) in [
            ("application/atom+xml", "atom"),
            ("application/feed+json", "json"),
        ] {
            let _ = writeln!(
                html,
                "<link rel=\"alternate\" type=\"{kind}\" title=\"{}\" href=\"{}\">",
                esc(&feed.title),
                esc(&format!(
                    "{base}/feeds/{}.{ext}",
                    encode_segment(&feed.name)
                ))
            );
        }
    }
    let _ = writeln!(
        html,
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"All articles\" href=\"{}\">",
        esc(&format!("{base}/feed.atom"))
    );
    let _ = writeln!(
        html,
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"Source health\" href=\"{}\">",
        esc(&format!("{base}/health.atom"))
    );
    let _ = writeln!(
        html,
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"Top stories\" href=\"{}\">",
        esc(&format!("{base}/top.atom"))
    );
    let _ = write!(
        html,
        "<style>{STYLE}{}</style>\n</head>\n<body>\n",
        chart::STYLE
    );

    let _ = writeln!(
        html,
        "<header>\n<h1>tributary</h1>\n<p>{} articles from {} sources, republished as {} feeds.</p>\n</header>",
        articles,
        sources.iter().filter(|s| s.enabled).count(),
        feeds.len() + 2
    );

    let today = day_of(now);
    let per_day = feed_days(&state, today).await?;
    html.push_str("<section id=\"feeds\">\n<h2>Feeds</h2>\n<ul class=\"feeds\">\n");
    for (i, feed) in feeds.iter().enumerate() {
        let filter = feed.filter();
        feed_item(
            &mut html,
            &feed.title,
            &publish::empty::describe(&filter),
            &format!("{base}/feeds/{}", encode_segment(&feed.name)),
            why_empty(&state, &filter, &sources, articles).await?,
            &chart::feed_svg(&feed.title, &per_day[i], today),
        );
    }
    feed_item(
        &mut html,
        "All articles",
        "everything, newest first; filter with ?any=, ?all=, ?none=, ?source=, ?lang=",
        &format!("{base}/feed"),
        why_empty(&state, &Filter::default(), &sources, articles).await?,
        &chart::feed_svg("All articles", &per_day[feeds.len()], today),
    );
    let top = super::top_filter();
    feed_item(
        &mut html,
        "Top stories",
        &format!(
            "{}; change with ?min_outlets=, ?window=, and the filters above",
            publish::empty::describe(&top)
        ),
        &format!("{base}/top"),
        why_empty(&state, &top, &sources, articles).await?,
        // Its stories are the day's: a 30-day chart would say nothing.
        "",
    );
    html.push_str("</ul>\n</section>\n");

    html.push_str("<section id=\"tags\">\n<h2>Tags</h2>\n");
    if tags.is_empty() {
        html.push_str("<p class=\"muted\">No tags yet.</p>\n");
    } else {
        let chip = |html: &mut String, t: &crate::store::TagCount| {
            let _ = writeln!(
                html,
                "<a href=\"{}\">{} <span>{}</span></a>",
                esc(&format!("{base}/tags/{}.atom", encode_segment(&t.tag.term))),
                esc(&t.tag.label),
                t.articles
            );
        };
        html.push_str("<p class=\"tags\">\n");
        for t in tags.iter().take(TOP_TAGS) {
            chip(&mut html, t);
        }
        html.push_str("</p>\n");
        if tags.len() > TOP_TAGS {
            let _ = writeln!(
                html,
                "<details><summary>All {} tags</summary>\n<p class=\"tags\">",
                tags.len()
            );
            for t in tags.iter().take(MAX_TAGS).skip(TOP_TAGS) {
                chip(&mut html, t);
            }
            html.push_str("</p>\n</details>\n");
        }
        if tags.len() > MAX_TAGS {
            let _ = writeln!(
                html,
                "<span class=\"muted\">and {} more</span>",
                tags.len() - MAX_TAGS
            );
        }
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"sources\">\n<h2>Sources</h2>\n<table>\n<thead><tr><th>source</th><th>state</th><th>articles</th><th>last 30 days</th><th>last fetch</th><th>next fetch</th><th>last error</th></tr></thead>\n<tbody>\n");
    // Every source's days in one query (at most 30 rows each).
    let quiet_after = state.store.health_policy().quiet_after;
    let mut days: HashMap<String, Vec<DayStats>> = HashMap::new();
    for (name, day) in state
        .store
        .source_days(today - chart::DAYS + 1, None)
        .await?
    {
        days.entry(name).or_default().push(day);
    }
    for s in &sources {
        let chart = chart::svg(
            &s.name,
            days.get(&s.name).map_or(&[][..], Vec::as_slice),
            today,
        );
        let push = pushes.get(&s.name).map(|p| p.describe(now));
        source_row(&mut html, s, now, quiet_after, base, &chart, push);
    }
    html.push_str("</tbody>\n</table>\n</section>\n");

    let _ = writeln!(
        html,
        "<footer>tributary {} · <a href=\"{}\">health feed</a> · <a href=\"{}\">healthz</a> · <a href=\"{}\">metrics</a></footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        esc(&format!("{base}/health.atom")),
        esc(&format!("{base}/healthz")),
        esc(&format!("{base}/metrics"))
    );
    Ok(Html(html))
}

pub(super) async fn feed_xsl() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/xsl; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        FEED_XSL,
    )
        .into_response()
}

fn feed_item(
    html: &mut String,
    title: &str,
    description: &str,
    url_stem: &str,
    why_empty: Option<EmptyReason>,
    chart: &str,
) {
    let atom = format!("{url_stem}.atom");
    let json = format!("{url_stem}.json");
    let empty = why_empty
        .map(|why| format!("<br><span class=\"empty\">{}</span>", esc(&why.to_string())))
        .unwrap_or_default();
    let _ = writeln!(
        html,
        "<li><span class=\"title\">{}</span> <a class=\"sub\" href=\"{}\">Atom</a><a class=\"sub\" href=\"{}\">JSON Feed</a><br><span class=\"muted\">{}</span>{empty}<br><code>{}</code>{chart}</li>",
        esc(title),
        esc(&atom),
        esc(&json),
        esc(description),
        esc(&atom)
    );
}

/// Why the feed of `filter` is empty, when it is (docs/HTTP.md "Empty
/// feeds"): the words its Atom subtitle carries. `articles`: how many are
/// stored, which spares the page query while there are none.
async fn why_empty(
    state: &AppState,
    filter: &Filter,
    sources: &[SourceState],
    articles: i64,
) -> Result<Option<EmptyReason>, StoreError> {
    if articles > 0
        && !state
            .store
            .page_at(filter, None, 1, state.clock.now())
            .await?
            .articles
            .is_empty()
    {
        return Ok(None);
    }
    Ok(Some(
        publish::empty::why_empty(&state.store, filter, sources).await?,
    ))
}

fn source_row(
    html: &mut String,
    s: &SourceState,
    now: DateTime<Utc>,
    quiet_after: chrono::TimeDelta,
    base: &str,
    chart: &str,
    push: Option<String>,
) {
    let state = metrics::source_state(s);
    let mut detail = Vec::new();
    // WebSub: pushed by its hub (docs/CONFIG.md "WebSub").
    detail.extend(push);
    if state == "failing" {
        detail.push(format!("{} in a row", s.consecutive_failures));
    }
    if let Some(since) = quiet_since(s, now, quiet_after) {
        detail.push(format!("quiet: no new entry since {}", time(Some(since))));
    }
    if let Some(until) = s.retry_after_until.filter(|t| *t > now) {
        detail.push(format!("Retry-After until {}", time(Some(until))));
    } else if let Some(until) = s.backoff_until.filter(|t| *t > now) {
        detail.push(format!("backing off until {}", time(Some(until))));
    }
    let label = if detail.is_empty() {
        esc(&state.replace('_', " "))
    } else {
        format!(
            "{}<br><small class=\"muted\">{}</small>",
            esc(&state.replace('_', " ")),
            esc(&detail.join(", "))
        )
    };
    let title = s.title.as_deref().filter(|t| !t.is_empty());
    let error = s
        .disabled_reason
        .as_deref()
        .or(s.last_error.as_deref())
        .unwrap_or("");
    let _ = writeln!(
        html,
        "<tr><td><a href=\"{}\">{}</a> <a class=\"muted\" href=\"{}\">feed</a>{}</td><td class=\"state {state}\" data-label=\"state\">{}</td><td class=\"num\" data-label=\"articles\">{}</td><td class=\"chart\">{chart}</td><td data-label=\"last fetch\">{}{}</td><td data-label=\"next fetch\">{}</td><td class=\"error\">{}</td></tr>",
        esc(&format!("{base}/sources/{}", encode_segment(&s.name))),
        esc(&s.name),
        esc(&crate::redact::public_url(&s.url)),
        title
            .map(|t| format!("<br><span class=\"muted\">{}</span>", esc(t)))
            .unwrap_or_default(),
        label,
        s.articles,
        time(s.last_fetch_at),
        s.last_status
            .map(|c| format!(" <span class=\"muted\">HTTP {c}</span>"))
            .unwrap_or_default(),
        if s.enabled && s.disabled_reason.is_none() {
            time(s.next_fetch_at)
        } else {
            "-".to_string()
        },
        esc(error)
    );
}

/// Since when the source is quiet at `now` (no new entry for
/// `quiet_after`), if it is fetched and is.
pub(super) fn quiet_since(
    s: &SourceState,
    now: DateTime<Utc>,
    quiet_after: chrono::TimeDelta,
) -> Option<DateTime<Utc>> {
    let fetched = s.enabled && s.disabled_reason.is_none();
    // A `quiet_after` past the calendar's end never comes.
    s.last_new_at.filter(|last| {
        fetched
            && last
                .checked_add_signed(quiet_after)
                .is_some_and(|quiet| quiet <= now)
    })
}

pub(super) fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".to_string())
}

/// HTML text and attribute escaping: one escaper for both keeps every
/// value safe wherever it lands.
pub(super) fn esc(s: &str) -> String {
    escape(s, Escape::Attribute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_in_text_and_attributes() {
        assert_eq!(
            esc(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &apos;Jerry&apos;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_fetched_source_is_quiet_once_its_last_new_entry_is_older_than_quiet_after() {
        let day = |d: i64| DateTime::from_timestamp(d * 86_400, 0).unwrap();
        let week = chrono::TimeDelta::days(7);
        let source = SourceState {
            enabled: true,
            last_new_at: Some(day(10)),
            ..SourceState::default()
        };
        assert_eq!(quiet_since(&source, day(16), week), None);
        assert_eq!(quiet_since(&source, day(17), week), Some(day(10)));
        let gone = SourceState {
            disabled_reason: Some("410 Gone".into()),
            ..source.clone()
        };
        assert_eq!(quiet_since(&gone, day(30), week), None);
        let never = SourceState {
            last_new_at: None,
            ..source.clone()
        };
        assert_eq!(quiet_since(&never, day(30), week), None);
        assert_eq!(quiet_since(&source, day(30), chrono::TimeDelta::MAX), None);
    }

    #[test]
    fn the_stylesheet_is_well_formed_xslt() {
        assert!(FEED_XSL.contains("http://www.w3.org/1999/XSL/Transform"));
        let mut reader = quick_xml::Reader::from_str(FEED_XSL);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("feed.xsl: {e}"),
            }
        }
    }
}
