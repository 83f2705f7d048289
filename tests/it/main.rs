//! Integration tests: the real application against real HTTP servers on
//! 127.0.0.1 and real SQLite files.

mod cli;
mod helpers;
mod pipeline;
