//! The final table: one row per measurement, tributary beside the baseline
//! measured in the same run.

use std::fmt::Write as _;
use std::time::Duration;

/// One row of the final table.
pub struct Row {
    what: String,
    tributary: String,
    baseline: String,
    ratio: String,
    target: String,
}

pub fn row(what: &str, tributary: String, baseline: String, ratio: String, target: &str) -> Row {
    Row {
        what: what.into(),
        tributary,
        baseline,
        ratio,
        target: target.into(),
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The table under a line naming the run's shape (bench/compare.sh reads
/// both: keep the row names stable).
pub fn table(run: &crate::Run, rows: &[Row]) -> String {
    let args = &run.args;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} sources x {} entries ({:.1} MB), {} cores, {} connections, {} s per load run\n",
        args.sources,
        args.entries,
        run.corpus_bytes as f64 / 1e6,
        run.cores,
        args.connections,
        args.duration
    );
    let _ = writeln!(
        out,
        "| measurement | tributary | baseline (same run) | ratio | target |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.what, r.tributary, r.baseline, r.ratio, r.target
        );
    }
    out
}
