//! Criterion benches of the ingest hot path, per entry: parse + normalize
//! (against feed-rs alone, the floor), canonical URL and dedup keys, tag
//! rule evaluation, near-duplicate signatures. Input: the synthetic corpus
//! of `tributary-bench`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use tributary::config::Config;
use tributary::model::Entry;
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

fn rules() -> TagRules {
    let toml = format!(
        "[daemon]\ndatabase = \"sqlite://bench.db\"\n{}",
        synth::TAG_RULES_TOML
    );
    let config = Config::from_toml(&toml, Path::new("bench.toml")).expect("bench config");
    TagRules::new(&config.tag_rules)
}

fn entries() -> Vec<Entry> {
    let bytes = synth::rss_feed(ORIGIN, 7, ENTRIES);
    let url = Url::parse(&format!("{ORIGIN}{}", synth::feed_path(7))).unwrap();
    parse::parse_feed(bytes.as_bytes(), Some("application/rss+xml"), &url, now())
        .expect("synthetic feed parses")
        .entries
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

fn bench_parse(c: &mut Criterion) {
    let bytes = synth::rss_feed(ORIGIN, 7, ENTRIES);
    let url = Url::parse(&format!("{ORIGIN}{}", synth::feed_path(7))).unwrap();
    let mut group = c.benchmark_group("parse_50_entries");
    // Per-entry figures: criterion reports elements/s.
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("feed_rs_alone", |b| {
        b.iter(|| feed_rs::parser::parse(black_box(bytes.as_bytes())).unwrap())
    });
    group.bench_function("tributary_parse_feed", |b| {
        b.iter(|| {
            parse::parse_feed(
                black_box(bytes.as_bytes()),
                Some("application/rss+xml"),
                &url,
                now(),
            )
            .unwrap()
        })
    });
    // The synthetic feed states its language; a feed that does not has
    // every entry's told from its text (parse/language.rs).
    let unstated: Vec<Entry> = entries()
        .into_iter()
        .map(|e| Entry {
            language: None,
            ..e
        })
        .collect();
    group.bench_function("language_detection", |b| {
        b.iter_batched(
            || unstated.clone(),
            |mut entries| {
                parse::detect_languages(&mut entries);
                entries
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_dedup(c: &mut Criterion) {
    let entries = entries();
    let link = entries[0].link.clone().unwrap();
    let mut group = c.benchmark_group("dedup");
    group.bench_function("canonical_url", |b| {
        b.iter(|| dedup::canonical_url(black_box(&link)))
    });
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("prepare_50_entries", |b| {
        b.iter_batched(
            || entries.clone(),
            |entries| {
                entries
                    .into_iter()
                    .map(|e| dedup::prepare("s00007", e, Vec::new()))
                    .collect::<Vec<_>>()
            },
            BatchSize::SmallInput,
        )
    });
    // MinHash over every new entry's text (cluster.rs), before the writer.
    group.bench_function("signatures_50_entries", |b| {
        b.iter(|| {
            for entry in &entries {
                black_box(tributary::cluster::Signature::of(
                    entry.title.as_deref().unwrap_or(""),
                    entry.summary.as_deref(),
                    entry.content.as_deref(),
                ));
            }
        })
    });
    group.finish();
}

fn bench_tags(c: &mut Criterion) {
    let entries = entries();
    let rules = rules();
    let source_tags = vec!["bench".to_string(), "World News".to_string()];
    let mut group = c.benchmark_group("tags");
    group.bench_function("term", |b| {
        b.iter(|| tributary::text::term(black_box("XI  Jinping_Visit")))
    });
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("rules_matching_50_entries", |b| {
        b.iter(|| {
            for entry in &entries {
                black_box(rules.matching(entry));
            }
        })
    });
    group.bench_function("tags_for_50_entries", |b| {
        b.iter(|| {
            for entry in &entries {
                black_box(tag::tags_for(entry, &source_tags, &rules));
            }
        })
    });
    // `[entities] enabled`: the automatic tags on top of the above; compare
    // with `parse_50_entries` of the same run (BENCHMARKS.md).
    group.bench_function("entities_50_entries", |b| {
        b.iter(|| {
            for entry in &entries {
                black_box(tributary::entities::entities_for(
                    entry,
                    tributary::config::LabelCase::Upper,
                ));
            }
        })
    });
    group.finish();
}

/// A refresh's CPU work on one 50-entry feed, without and with
/// `[entities]`: parse, tags (categories, source tags, rules), identity
/// keys and near-duplicate signatures. The store's writes come on top of
/// this in a real refresh, so the ratio of the two is an upper bound on
/// how much entity tags slow ingest (BENCHMARKS.md "Entity tags").
fn bench_ingest(c: &mut Criterion) {
    let bytes = synth::rss_feed(ORIGIN, 7, ENTRIES);
    let url = Url::parse(&format!("{ORIGIN}{}", synth::feed_path(7))).unwrap();
    let rules = rules();
    let source_tags = vec!["bench".to_string(), "World News".to_string()];
    let ingest = |entities: Option<tributary::config::LabelCase>| {
        let feed =
            parse::parse_feed(bytes.as_bytes(), Some("application/rss+xml"), &url, now()).unwrap();
        feed.entries
            .into_iter()
            .map(|entry| {
                let signature = tributary::cluster::Signature::of(
                    entry.title.as_deref().unwrap_or(""),
                    entry.summary.as_deref(),
                    entry.content.as_deref(),
                );
                let tags = rules
                    .tagged_with(&entry, "s00007", &source_tags, entities)
                    .into_iter()
                    .map(|(tag, _)| tag)
                    .collect();
                (dedup::prepare("s00007", entry, tags), signature)
            })
            .collect::<Vec<_>>()
    };
    let mut group = c.benchmark_group("ingest_50_entries");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("without_entities", |b| b.iter(|| black_box(ingest(None))));
    group.bench_function("with_entities", |b| {
        b.iter(|| black_box(ingest(Some(tributary::config::LabelCase::Upper))))
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_dedup, bench_tags, bench_ingest);
criterion_main!(benches);
