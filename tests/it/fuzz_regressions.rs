//! Inputs that once broke a fuzz target's invariants (see docs/FUZZING.md),
//! kept under tests/fuzz_regressions/<target>/ and replayed through the same
//! checks the fuzzer runs.

use std::path::{Path, PathBuf};

use crate::fuzz_invariants as fuzz;

/// The saved inputs of `target`, plus a whole corpus when
/// `TRIBUTARY_FUZZ_CORPUS` names one (e.g. `fuzz/corpus`): a fuzzing run's
/// findings replayed on stable, without libFuzzer.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target)];
    if let Some(corpus) = std::env::var_os("TRIBUTARY_FUZZ_CORPUS") {
        dirs.push(PathBuf::from(corpus).join(target));
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    for path in inputs(target) {
        eprintln!("replaying {}", path.display());
        check(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn fuzz_regressions_parse() {
    replay("parse", fuzz::check_parse);
}

#[test]
fn fuzz_regressions_sanitize() {
    replay("sanitize", fuzz::check_sanitized);
}

#[test]
fn fuzz_regressions_dates() {
    replay("dates", fuzz::check_date);
}

#[test]
fn fuzz_regressions_config() {
    replay("config", fuzz::check_config);
}

#[test]
fn fuzz_regressions_query() {
    replay("query", fuzz::check_query);
}
