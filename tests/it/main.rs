//! Integration tests: the real application against real HTTP servers on
//! 127.0.0.1 and real SQLite files.

mod broken_pipe;
mod cli;
mod clustering;
mod empty_feeds;
mod entities;
mod failures;
mod fidelity;
mod fulltext;
/// The fuzz targets' invariant checks (fuzz/src/lib.rs), shared so saved
/// inputs are replayed exactly as the fuzzer judged them.
#[path = "../../fuzz/src/lib.rs"]
mod fuzz_invariants;
mod fuzz_regressions;
mod helpers;
mod hostile_feeds;
mod hostile_http;
mod identity;
mod languages;
mod near_dup;
mod opml;
mod ops;
mod ops_http;
mod pgbouncer;
mod pipeline;
mod prune;
mod redirects;
mod robust;
mod rules;
mod scaleout;
mod secrets;
mod served;
mod source_health;
mod startup;
mod store;
mod top;
mod webhooks;
mod websub_hub;
mod websub_subscriber;
