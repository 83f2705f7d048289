//! The `tributary` binary: parse the command line and hand over to the library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tributary::cli::run(tributary::cli::Cli::parse()).await
}
