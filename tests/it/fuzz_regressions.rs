//! Inputs that once broke a fuzz target's invariants (see docs/FUZZING.md),
//! kept under tests/fuzz_regressions/<target>/ and replayed through the same
//! checks the fuzzer runs.

use std::path::{Path, PathBuf};

use crate::fuzz_invariants as fuzz;

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
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
