//! Integration tests: the real application against real HTTP servers on
//! 127.0.0.1 and real SQLite files.

mod broken_pipe;
mod cli;
mod clustering;
mod failures;
mod fidelity;
mod helpers;
mod hostile_feeds;
mod hostile_http;
mod identity;
mod near_dup;
mod opml;
mod ops;
mod ops_http;
mod pipeline;
mod prune;
mod redirects;
mod robust;
mod scaleout;
mod secrets;
mod served;
mod startup;
mod store;
