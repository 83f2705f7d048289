//! Criterion benches of rendering one 50-entry page (Atom and JSON Feed)
//! from articles as the store returns them: the CPU cost of an uncached
//! feed request once its query is done.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tributary::model::{Article, SourceRef};
use tributary::publish::{atom, json, FeedView};
use tributary::tag::TagRules;
use tributary::{dedup, parse, tag};
use url::Url;

// As in `tributary` (src/main.rs): hot paths measured on its allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "../bench/src/synth.rs"]
mod synth;

const ENTRIES: usize = 50;
const ORIGIN: &str = "http://127.0.0.1:8000";

/// Fifty articles shaped as `Store::page` returns them: parsed, tagged and
/// keyed by the real code, from the synthetic corpus.
fn page() -> Vec<Article> {
    let bytes = synth::rss_feed(ORIGIN, 3, ENTRIES);
    let url = Url::parse(&format!("{ORIGIN}{}", synth::feed_path(3))).unwrap();
    let now = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let feed = parse::parse_feed(bytes.as_bytes(), Some("application/rss+xml"), &url, now)
        .expect("synthetic feed parses");
    let source = SourceRef {
        name: synth::source_name(3),
        feed_url: url.to_string(),
        title: feed.meta.title.clone(),
        site_url: feed.meta.site_url.clone(),
        feed_id: None,
        updated: Some(now),
    };
    let rules = TagRules::default();
    feed.entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let tags = tag::tags_for(&entry, &["bench".to_string()], &rules);
            let new = dedup::prepare(&source.name, entry, tags);
            Article {
                id: i as i64 + 1,
                uid: new.uid,
                link: new.link,
                title: new.title,
                summary: new.summary,
                content: new.content,
                author: new.author,
                language: new.language,
                published: new.published.unwrap_or(now),
                updated: new.updated.or(new.published).unwrap_or(now),
                changed: now,
                tags: new.tags,
                source: source.clone(),
                seen_in: vec![source.name.clone()],
                related: Vec::new(),
                outlets: 1,
            }
        })
        .collect()
}

fn view(articles: &[Article]) -> FeedView {
    FeedView {
        id: "http://127.0.0.1:8080/feeds/bench.atom".into(),
        title: "Benchmark feed".into(),
        self_url: "http://127.0.0.1:8080/feeds/bench.atom".into(),
        alternate_url: "http://127.0.0.1:8080/".into(),
        next_url: Some("http://127.0.0.1:8080/feeds/bench.atom?before=MTc2.NDI".into()),
        author: "tributary".into(),
        updated: articles.iter().map(|a| a.updated).max().unwrap(),
        generator_version: env!("CARGO_PKG_VERSION").into(),
        stylesheet: None,
        why_empty: None,
        show_outlets: false,
        hub: None,
    }
}

fn bench_render(c: &mut Criterion) {
    let articles = page();
    let view = view(&articles);
    let atom_len = atom::render(&view, &articles).len();
    let mut group = c.benchmark_group("render_50_entry_page");
    group.throughput(Throughput::Bytes(atom_len as u64));
    group.bench_function("atom", |b| {
        b.iter(|| atom::render(black_box(&view), black_box(&articles)))
    });
    group.bench_function("json", |b| {
        b.iter(|| json::render(black_box(&view), black_box(&articles)))
    });
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
