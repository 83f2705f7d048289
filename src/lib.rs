//! tributary: a feed aggregator daemon.
//!
//! # Layout
//! Data flows one way, and so do these modules:
//! - [`config`]: the TOML file, validated into typed values.
//! - [`model`]: the types every step shares.
//! - [`fetch`]: one HTTP client, conditional GET, caps, bounded concurrency.
//! - [`parse`]: feed bytes -> entries (feed-rs, leniency, sanitizing).
//! - [`tag`]: tag terms and tag rules.
//! - [`dedup`]: canonical URLs and article identity keys.
//! - [`store`]: SQLite (and PostgreSQL) persistence behind one interface.
//! - [`publish`]: merged views rendered as Atom and JSON Feed.

pub mod config;
pub mod dedup;
pub mod fetch;
pub mod model;
pub mod parse;
pub mod publish;
pub mod tag;
