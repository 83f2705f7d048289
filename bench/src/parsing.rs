//! Phase 2, the parse floor: feed-rs alone on all cores; then tributary's
//! parse (normalize, sanitize) and parse + tag + dedup, the same way.

use bytes::Bytes;
use std::path::Path;
use std::time::{Duration, Instant};
use url::Url;

use crate::report::{row, Row};
use crate::{synth, Run};

/// Measures the three stages and returns the floor's wall time, which the
/// ingest rows are ratios of.
pub fn measure(run: &Run, rows: &mut Vec<Row>) -> Duration {
    // Each the best of three: one pass takes well under a second, where a
    // noisy host's hiccup moved the floor (and every ratio over it) by half.
    let best_of_3 = |stage: Stage| {
        (0..3)
            .map(|_| parse_all(&run.feeds, run.cores, stage))
            .min()
            .expect("three runs")
    };
    let floor = best_of_3(Stage::FeedRs);
    let normalize = best_of_3(Stage::Parse);
    let prepare = best_of_3(Stage::Prepare);
    eprintln!(
        "parse floor {floor:.2?}, tributary parse {normalize:.2?}, parse+tag+dedup {prepare:.2?}"
    );
    rows.push(row(
        "parse floor: feed-rs alone, all cores",
        String::new(),
        format!(
            "{:.0} entries/s ({:.2} s)",
            run.rate(floor),
            floor.as_secs_f64()
        ),
        String::new(),
        "",
    ));
    rows.push(row(
        "tributary parse (normalize, sanitize), all cores",
        format!("{:.0} entries/s", run.rate(normalize)),
        "parse floor".into(),
        format!("{:.2}x time", normalize.as_secs_f64() / floor.as_secs_f64()),
        "",
    ));
    rows.push(row(
        "tributary parse + tag + dedup, all cores",
        format!("{:.0} entries/s", run.rate(prepare)),
        "parse floor".into(),
        format!("{:.2}x time", prepare.as_secs_f64() / floor.as_secs_f64()),
        "",
    ));
    floor
}

#[derive(Clone, Copy)]
enum Stage {
    FeedRs,
    Parse,
    Prepare,
}

/// Wall time of one stage over the whole corpus on `threads` threads,
/// sources dealt round-robin.
fn parse_all(feeds: &[Bytes], threads: usize, stage: Stage) -> Duration {
    let rules = tributary::tag::TagRules::new(&synth_rules());
    let now = chrono::Utc::now();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let rules = &rules;
            scope.spawn(move || {
                for (i, bytes) in feeds.iter().enumerate().skip(t).step_by(threads) {
                    let url = Url::parse(&format!("http://127.0.0.1{}", synth::feed_path(i)))
                        .expect("valid URL");
                    match stage {
                        Stage::FeedRs => {
                            let feed = feed_rs::parser::parse(&bytes[..]).expect("parses");
                            std::hint::black_box(feed);
                        }
                        Stage::Parse => {
                            let feed = tributary::parse::parse_feed(bytes, None, &url, now)
                                .expect("parses");
                            std::hint::black_box(feed);
                        }
                        Stage::Prepare => {
                            let feed = tributary::parse::parse_feed(bytes, None, &url, now)
                                .expect("parses");
                            let name = synth::source_name(i);
                            let tags = ["bench".to_string()];
                            let articles: Vec<_> = feed
                                .entries
                                .into_iter()
                                .map(|e| {
                                    let t = tributary::tag::tags_for(&e, &tags, rules);
                                    tributary::dedup::prepare(&name, e, t)
                                })
                                .collect();
                            std::hint::black_box(articles);
                        }
                    }
                }
            });
        }
    });
    started.elapsed()
}

fn synth_rules() -> Vec<tributary::config::TagRuleConfig> {
    let toml = format!(
        "[daemon]\ndatabase = \"sqlite://unused.db\"\n{}",
        synth::TAG_RULES_TOML
    );
    tributary::config::Config::from_toml(&toml, Path::new("rules.toml"))
        .expect("the synthetic rules are valid")
        .tag_rules
}
