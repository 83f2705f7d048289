//! The TOML configuration (CONTRACT §2): read, validated once, turned into
//! inert typed values. Every error names `FILE:LINE:COL`.

use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    pub sources: Vec<SourceConfig>,
    pub tag_rules: Vec<TagRuleConfig>,
    pub feeds: Vec<FeedConfig>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// `sqlite://…` or `postgres://…`.
    pub database: String,
    pub listen: String,
    pub base_url: Url,
    pub schedule: Schedule,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub retention: Duration,
    pub user_agent: String,
    /// Feed-level `atom:author` of every output feed.
    pub author: String,
    pub log_level: Option<String>,
    /// Honour `Cache-Control: max-age`, `Expires` and RSS `<ttl>` as a floor
    /// on the polling interval.
    pub respect_cache_headers: bool,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub url: Url,
    /// Labels as written; terms are derived where used.
    pub tags: Vec<String>,
    pub schedule: Schedule,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct TagRuleConfig {
    /// The label of the tag the rule adds.
    pub tag: String,
    pub matcher: RuleMatcher,
    /// Where to look; all fields when the config leaves it out.
    pub fields: Vec<RuleField>,
}

#[derive(Debug, Clone)]
pub enum RuleMatcher {
    /// Whole-word, case-insensitive words or phrases.
    Any(Vec<String>),
    Regex(regex::Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleField {
    Title,
    Summary,
    Content,
    Categories,
    Author,
    Url,
}

impl RuleField {
    pub const ALL: [RuleField; 6] = [
        RuleField::Title,
        RuleField::Summary,
        RuleField::Content,
        RuleField::Categories,
        RuleField::Author,
        RuleField::Url,
    ];
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub name: String,
    pub title: String,
    /// Tag terms (already folded by `tag::term`).
    pub any: Vec<String>,
    pub all: Vec<String>,
    pub none: Vec<String>,
    pub sources: Vec<String>,
    pub limit: u32,
}

/// A cron schedule: 5-field crontab, 6/7-field with seconds, or `@hourly` etc.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: cron::Schedule,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        todo!("{text}")
    }

    /// As written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first tick strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron.after(&after).next()
    }
}

/// A configuration error, displayed as `FILE:LINE:COL: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no configuration file: pass -c FILE, set TRIBUTARY_CONFIG, or create ./tributary.toml or /etc/tributary/tributary.toml")]
    NotFound,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Validates TOML text; `path` is only used in messages and for defaults.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        todo!("{text} {}", path.display())
    }
}

/// `-c FILE`, else `$TRIBUTARY_CONFIG`, else `./tributary.toml`, else
/// `/etc/tributary/tributary.toml` (CONTRACT §1).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    todo!("{explicit:?}")
}
