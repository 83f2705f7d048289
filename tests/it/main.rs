//! Integration tests: the real application against real HTTP servers on
//! 127.0.0.1 and real SQLite files.

mod cli;
mod clustering;
mod helpers;
mod hostile_feeds;
mod near_dup;
mod opml;
mod ops;
mod ops_http;
mod pipeline;
mod prune;
mod robust;
mod scaleout;
mod store;
