//! A source's last 30 days as a small inline SVG (docs/HTTP.md "Source
//! health"): new entries per day as bars, and under them a strip of each
//! day's fetch outcomes told apart by shape, not hue alone: a full block
//! when every fetch worked, a short tick when all said "not modified", a
//! triangle when some failed, a cross when all failed, nothing on a day
//! without a fetch. Colours come from the page's CSS (light and dark); the
//! `<title>` and `aria-label` say the same in words. No script, no
//! external asset.

use crate::model::DayStats;
use crate::text::{escape, Escape};
use std::fmt::Write as _;

/// Days shown, today included.
pub(super) const DAYS: i64 = 30;

/// Pixels per day, bar area and strip heights.
const STEP: i64 = 6;
const BARS: i64 = 24;
const STRIP: i64 = 8;
const GAP: i64 = 3;

/// The CSS the charts use (inside the page's `<style>`).
pub(super) const STYLE: &str = "
svg.history{display:block;overflow:visible}
svg.history .bar{fill:var(--accent)}
svg.history .base{stroke:var(--line)}
svg.history .ok{fill:var(--ok)}
svg.history .nm{fill:var(--muted)}
svg.history .part{fill:var(--warn)}
svg.history .fail{stroke:var(--bad);stroke-width:1.6}
";

/// How a day's fetches went, as the strip draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOutcome {
    None,
    Ok,
    NotModified,
    SomeFailed,
    Failed,
}

fn outcome(day: &DayStats) -> DayOutcome {
    match day {
        d if d.fetches == 0 => DayOutcome::None,
        d if d.failed >= d.fetches => DayOutcome::Failed,
        d if d.failed > 0 => DayOutcome::SomeFailed,
        d if d.ok == 0 => DayOutcome::NotModified,
        _ => DayOutcome::Ok,
    }
}

/// The days `today - DAYS + 1 ..= today` of `days` (any order, any
/// range), a zero day where none is stored.
fn window(days: &[DayStats], today: i64) -> Vec<DayStats> {
    let first = today - DAYS + 1;
    let mut out: Vec<DayStats> = (first..=today)
        .map(|day| DayStats {
            day,
            ..DayStats::default()
        })
        .collect();
    for d in days {
        if (first..=today).contains(&d.day) {
            out[(d.day - first) as usize] = *d;
        }
    }
    out
}

/// The chart's text equivalent.
pub(super) fn summary(name: &str, days: &[DayStats], today: i64) -> String {
    let days = window(days, today);
    let sum = |f: fn(&DayStats) -> i64| days.iter().map(f).sum::<i64>();
    let failing_days = days
        .iter()
        .filter(|d| matches!(outcome(d), DayOutcome::Failed | DayOutcome::SomeFailed))
        .count();
    let busiest = days.iter().map(|d| d.new_entries).max().unwrap_or(0);
    format!(
        "{name}, last {DAYS} days: {} new entries (at most {busiest} a day); {} fetches: {} ok, {} not modified, {} failed; failures on {failing_days} days",
        sum(|d| d.new_entries),
        sum(|d| d.fetches),
        sum(|d| d.ok),
        sum(|d| d.not_modified),
        sum(|d| d.failed),
    )
}

/// The SVG of `name`'s `days` up to `today` (days since the epoch).
pub(super) fn svg(name: &str, days: &[DayStats], today: i64) -> String {
    let label = escape(&summary(name, days, today), Escape::Attribute);
    let days = window(days, today);
    let width = DAYS * STEP;
    let height = BARS + GAP + STRIP;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<svg class=\"history\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" aria-label=\"{label}\"><title>{label}</title>"
    );
    let _ = write!(
        out,
        "<line class=\"base\" x1=\"0\" y1=\"{BARS}.5\" x2=\"{width}\" y2=\"{BARS}.5\"/>"
    );
    bars(&mut out, &days);
    for (i, d) in days.iter().enumerate() {
        let x = i as i64 * STEP;
        let top = BARS + GAP;
        let mid = x as f64 + (STEP - 1) as f64 / 2.0;
        match outcome(d) {
            DayOutcome::None => {}
            DayOutcome::Ok => {
                let _ = write!(
                    out,
                    "<rect class=\"ok\" x=\"{x}\" y=\"{top}\" width=\"{}\" height=\"{STRIP}\"/>",
                    STEP - 1
                );
            }
            DayOutcome::NotModified => {
                let _ = write!(
                    out,
                    "<rect class=\"nm\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"2\"/>",
                    top + STRIP - 2,
                    STEP - 1
                );
            }
            DayOutcome::SomeFailed => {
                let _ = write!(
                    out,
                    "<path class=\"part\" d=\"M{mid} {top}L{} {}L{x} {}Z\"/>",
                    x + STEP - 1,
                    top + STRIP,
                    top + STRIP
                );
            }
            DayOutcome::Failed => {
                let (l, r) = (x as f64 + 0.5, (x + STEP - 1) as f64 - 0.5);
                let _ = write!(
                    out,
                    "<path class=\"fail\" d=\"M{l} {}L{r} {}M{r} {}L{l} {}\"/>",
                    top + 1,
                    top + STRIP - 1,
                    top + 1,
                    top + STRIP - 1
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// A view's articles per day (`counts`: (day, articles)) as bars, with
/// its text equivalent.
pub(super) fn feed_svg(title: &str, counts: &[(i64, i64)], today: i64) -> String {
    let days: Vec<DayStats> = counts
        .iter()
        .map(|&(day, new_entries)| DayStats {
            day,
            new_entries,
            ..DayStats::default()
        })
        .collect();
    let days = window(&days, today);
    let total: i64 = days.iter().map(|d| d.new_entries).sum();
    let most = days.iter().map(|d| d.new_entries).max().unwrap_or(0);
    let label = escape(
        &format!("{title}, last {DAYS} days: {total} articles published (at most {most} a day)"),
        Escape::Attribute,
    );
    let width = DAYS * STEP;
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        "<svg class=\"history\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{BARS}\" viewBox=\"0 0 {width} {}\" aria-label=\"{label}\"><title>{label}</title>",
        BARS + 1
    );
    let _ = write!(
        out,
        "<line class=\"base\" x1=\"0\" y1=\"{BARS}.5\" x2=\"{width}\" y2=\"{BARS}.5\"/>"
    );
    bars(&mut out, &days);
    out.push_str("</svg>");
    out
}

/// New entries (articles) per day as bars over the baseline.
fn bars(out: &mut String, days: &[DayStats]) {
    let max = days.iter().map(|d| d.new_entries).max().unwrap_or(0).max(1);
    for (i, d) in days.iter().enumerate() {
        if d.new_entries > 0 {
            // At least a pixel: a day with one entry is not a day with none.
            let h = ((d.new_entries * BARS + max - 1) / max).clamp(1, BARS);
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\"/>",
                i as i64 * STEP,
                BARS - h,
                STEP - 1
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(xml: &str) {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut depth = 0i32;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Start(_)) => depth += 1,
                Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}: {xml}"),
            }
        }
        assert_eq!(depth, 0, "{xml}");
    }

    #[test]
    fn each_outcome_has_its_own_shape_and_the_text_says_it() {
        let today = 20_000;
        let days = [
            DayStats {
                day: today,
                fetches: 4,
                ok: 4,
                new_entries: 10,
                ..DayStats::default()
            },
            DayStats {
                day: today - 1,
                fetches: 4,
                not_modified: 4,
                ..DayStats::default()
            },
            DayStats {
                day: today - 2,
                fetches: 4,
                ok: 2,
                failed: 2,
                new_entries: 1,
                ..DayStats::default()
            },
            DayStats {
                day: today - 3,
                fetches: 4,
                failed: 4,
                ..DayStats::default()
            },
            // Outside the window: not drawn, not counted.
            DayStats {
                day: today - 40,
                fetches: 9,
                failed: 9,
                ..DayStats::default()
            },
        ];
        let svg = svg("wire <&>", &days, today);
        well_formed(&svg);
        assert_eq!(svg.matches("class=\"ok\"").count(), 1);
        assert_eq!(svg.matches("class=\"nm\"").count(), 1);
        assert_eq!(svg.matches("class=\"part\"").count(), 1);
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains(
            "<title>wire &lt;&amp;&gt;, last 30 days: 11 new entries (at most 10 a day); 16 fetches: 6 ok, 4 not modified, 6 failed; failures on 2 days</title>"
        ));
        let feed = feed_svg(
            "World & more",
            &[(today, 3), (today - 1, 1), (today - 31, 9)],
            today,
        );
        well_formed(&feed);
        assert_eq!(feed.matches("class=\"bar\"").count(), 2);
        assert!(
            feed.contains("World &amp; more, last 30 days: 4 articles published (at most 3 a day)")
        );
        let empty = super::svg("quiet", &[], today);
        well_formed(&empty);
        assert!(!empty.contains("<rect"));
    }
}
