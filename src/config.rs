//! The TOML configuration (README "Configuration"): read, validated once, turned into
//! inert typed values. Every error names `FILE:LINE:COL`.
//!
//! The file is first deserialized into `Raw*` mirrors of its tables
//! (`deny_unknown_fields`, values wrapped in [`Spanned`] where they need
//! checking), then `Checker` validates them into the public types. The raw
//! layer never leaves this module.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use url::Url;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    pub sources: Vec<SourceConfig>,
    pub tag_rules: Vec<TagRuleConfig>,
    pub tag_aliases: Vec<TagAliasConfig>,
    pub feeds: Vec<FeedConfig>,
    /// `[dedup]`: near-duplicate detection across outlets (README "How deduplication works").
    pub dedup: DedupConfig,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// `sqlite:…`, `postgres://…` or `postgresql://…`.
    pub database: String,
    /// `host:port` or a socket address, as written.
    pub listen: String,
    /// Its path always ends with `/`, so `base_url.join("feeds/x.atom")`
    /// keeps a path prefix such as `https://example.org/tributary/`.
    pub base_url: Url,
    pub schedule: Schedule,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub retention: Duration,
    /// When the daemon applies `retention` (default daily, 03:00 UTC).
    pub prune_schedule: Schedule,
    /// How long a pruned article's keys are remembered after its entry was
    /// last seen in a feed.
    pub tombstone_retention: Duration,
    pub user_agent: String,
    /// Feed-level `atom:author` of every output feed.
    pub author: String,
    pub log_level: Option<String>,
    /// Honour `Cache-Control: max-age`, `Expires` and RSS `<ttl>` as a floor
    /// on the polling interval.
    pub respect_cache_headers: bool,
    /// Database connections per instance; `None`: the backend's default.
    pub pool_size: Option<u32>,
    /// Longest a database statement may run (PostgreSQL), or wait for
    /// another process's write lock (SQLite).
    pub statement_timeout: Duration,
    /// Drop `<img>` from stored content: readers load no third-party
    /// images (tracking pixels) through tributary's feeds.
    pub strip_remote_images: bool,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub url: Url,
    /// What is shown instead of `url` (published feeds, index page, CLI,
    /// logs): for a URL whose secret [`crate::redact`] cannot recognise.
    pub public_url: Option<Url>,
    /// Labels as written; terms are derived where used.
    pub tags: Vec<String>,
    pub schedule: Schedule,
    pub enabled: bool,
    /// Redirects may lead to addresses more private than the source's own
    /// (a public feed to a LAN host or this one); off by default.
    pub allow_private_redirects: bool,
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

    /// The name used in the config's `fields` list.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::Title => "title",
            RuleField::Summary => "summary",
            RuleField::Content => "content",
            RuleField::Categories => "categories",
            RuleField::Author => "author",
            RuleField::Url => "url",
        }
    }

    pub fn from_name(name: &str) -> Option<RuleField> {
        RuleField::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub name: String,
    pub title: String,
    /// Tag terms (already folded by `text::term`).
    pub any: Vec<String>,
    pub all: Vec<String>,
    pub none: Vec<String>,
    pub sources: Vec<String>,
    pub limit: u32,
}

impl FeedConfig {
    /// The articles this feed holds, as the store and publisher take it.
    pub fn filter(&self) -> crate::model::Filter {
        crate::model::Filter {
            any: self.any.clone(),
            all: self.all.clone(),
            none: self.none.clone(),
            sources: self.sources.clone(),
        }
    }
}

/// `[[tag_alias]]`: spellings folded into one tag.
#[derive(Debug, Clone, PartialEq)]
pub struct TagAliasConfig {
    /// The label of the tag every alias becomes.
    pub tag: String,
    /// Alias terms (folded by `text::term`).
    pub same: Vec<String>,
}

/// The term `term` stands for once aliases are applied.
pub fn canonical_term(aliases: &[TagAliasConfig], term: &str) -> String {
    aliases
        .iter()
        .find(|a| a.same.iter().any(|s| s == term))
        .map(|a| crate::text::term(&a.tag))
        .unwrap_or_else(|| term.to_string())
}

/// `[dedup]`: when texts from different URLs count as one story.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupConfig {
    /// Off: only ids and canonical links merge articles.
    pub enabled: bool,
    /// Estimated Jaccard similarity of 3-word shingles (0 < t <= 1) at or
    /// above which two texts are one story (their figures and the names in
    /// their titles must agree too). 0.6 measured precision 1.0 on the
    /// labelled corpus (BENCHMARKS.md): distinct stories stay apart.
    pub threshold: f64,
    /// Only stories published this close to each other are compared.
    pub window: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            enabled: true,
            threshold: 0.6,
            window: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// A cron schedule: 5-field crontab, 6/7-field with seconds, or `@hourly` etc.
///
/// The 5-field form follows crontab(5): day of week 0-7 with Sunday as 0 or
/// 7, and when both day of month and day of week are restricted a day
/// matching either fires. The 6/7-field form is the `cron` crate's syntax as
/// is; there, numeric days of week are refused because that dialect counts
/// 1 as Sunday (Quartz) where crontab counts it as Monday: names are
/// unambiguous.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: cron::Schedule,
    /// Crontab's day-of-week half when both day fields are restricted:
    /// the `cron` crate ANDs them, crontab ORs them.
    or_days_of_week: Option<cron::Schedule>,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (main, or_days_of_week) = match fields.as_slice() {
            [] => return Err("empty schedule".to_string()),
            [word] if word.starts_with('@') => (shorthand(word)?.to_string(), None),
            [minute, hour, dom, month, dow] => {
                let days_of_week = crontab_days_of_week(dow)?;
                if restricted(dom) && restricted(dow) {
                    (
                        format!("0 {minute} {hour} {dom} {month} *"),
                        Some(format!("0 {minute} {hour} * {month} {days_of_week}")),
                    )
                } else {
                    (
                        format!("0 {minute} {hour} {dom} {month} {days_of_week}"),
                        None,
                    )
                }
            }
            [_, _, _, _, _, dow] | [_, _, _, _, _, dow, _] => {
                refuse_numeric_days_of_week(dow)?;
                (fields.join(" "), None)
            }
            _ => {
                return Err(format!(
                    "expected 5 fields (minute hour day month weekday), 6 or 7 with seconds first, or @hourly etc.; found {}",
                    fields.len()
                ))
            }
        };
        let schedule = Schedule {
            text: text.to_string(),
            cron: compile_cron(&main)?,
            or_days_of_week: or_days_of_week.as_deref().map(compile_cron).transpose()?,
        };
        if schedule.next_after(chrono::Utc::now()).is_none() {
            return Err("it never fires".to_string());
        }
        Ok(schedule)
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
        let main = self.cron.after(&after).next();
        let or = self
            .or_days_of_week
            .as_ref()
            .and_then(|cron| cron.after(&after).next());
        match (main, or) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// crontab(5) nicknames, as 6-field expressions.
fn shorthand(word: &str) -> Result<&'static str, String> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "@hourly" => "0 0 * * * *",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@weekly" => "0 0 0 * * SUN",
        "@monthly" => "0 0 0 1 * *",
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        _ => {
            return Err(format!(
                "unknown `{word}`, expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"
            ))
        }
    })
}

/// crontab(5) treats a day field starting with `*` as unrestricted.
fn restricted(field: &str) -> bool {
    !(field.starts_with('*') || field == "?")
}

/// A crontab day-of-week field (0-7, Sunday is 0 or 7, names, ranges,
/// steps) as an explicit list in the `cron` crate's numbering (Sunday = 1).
fn crontab_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (base, Some(step)),
                _ => return Err(format!("invalid step `{step}` in day of week")),
            },
            None => (item, None),
        };
        let (first, last) = if base == "*" {
            (0, 6)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, mut b) = (day_of_week(a)?, day_of_week(b)?);
            // `fri-sun`: Sunday closes the week as 7.
            if b == 0 && a > 0 {
                b = 7;
            }
            if a > b {
                return Err(format!("day-of-week range `{base}` runs backwards"));
            }
            (a, b)
        } else {
            let a = day_of_week(base)?;
            // `1/2` steps to the end of the week, as cronie reads it.
            (a, if step.is_some() { a.max(6) } else { a })
        };
        for day in (first..=last).step_by(step.unwrap_or(1)) {
            days[day % 7] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|&d| days[d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A crontab day of week: 0-7 (0 and 7 are Sunday) or an English name.
fn day_of_week(text: &str) -> Result<usize, String> {
    const NAMES: [(&str, &str); 7] = [
        ("sun", "sunday"),
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
    ];
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day of week `{n}` is out of range 0-7"))
        };
    }
    let lower = text.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| format!("unknown day of week `{text}`"))
}

fn refuse_numeric_days_of_week(field: &str) -> Result<(), String> {
    let numeric = field.split(',').any(|item| {
        let base = item.split('/').next().unwrap_or_default();
        base.bytes().any(|b| b.is_ascii_digit())
    });
    if numeric {
        Err("numeric days of week are ambiguous with a seconds field (1 is Sunday there, Monday in crontab); use names such as MON-FRI".to_string())
    } else {
        Ok(())
    }
}

fn compile_cron(expression: &str) -> Result<cron::Schedule, String> {
    expression.parse::<cron::Schedule>().map_err(|e| {
        // The crate's message repeats the expression with a caret line, then
        // (sometimes) explains; keep only the explanation.
        let message = e.to_string();
        let mut lines = message.lines().skip(1);
        let caret = lines.next().and_then(|line| line.find('^'));
        let explanation: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
        if !explanation.is_empty() {
            // "Minutes must be less than 59" means at most 59.
            return explanation
                .join(" ")
                .replace("must be less than", "must be at most");
        }
        match caret
            .and_then(|at| expression.get(at..))
            .and_then(|rest| rest.split_whitespace().next())
        {
            Some(token) => format!("unexpected `{token}`"),
            None => "incomplete expression".to_string(),
        }
    })
}

/// Parses a duration such as `30s`, `15m`, `2h`, `90d`, `1w`, `500ms` or
/// `1h30m`. A bare number is refused: its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        if rest[digits..].starts_with(['.', ',']) {
            return Err("use whole numbers, e.g. \"1h30m\" rather than \"1.5h\"".to_string());
        }
        rest = rest[digits..].trim_start();
        let letters = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let unit = &rest[..letters];
        let scale: u64 = match unit {
            "ms" | "msec" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 604_800_000,
            "" => {
                return Err(format!(
                    "`{number}` needs a unit (ms, s, m, h, d, w), e.g. \"{number}s\""
                ))
            }
            _ => {
                return Err(format!(
                    "unknown unit `{unit}`, expected ms, s, m, h, d or w"
                ))
            }
        };
        millis = number
            .checked_mul(scale)
            .and_then(|part| millis.checked_add(part))
            .ok_or_else(|| "duration too large".to_string())?;
        rest = rest[letters..].trim_start();
    }
    Ok(Duration::from_millis(millis))
}

/// Parses a size in bytes: `10MiB`, `512KiB`, `1GiB`, `10MB`, `1KB`, or a
/// bare number of bytes. Units are case-insensitive; `K`/`M`/`G` are powers
/// of 1000, `Ki`/`Mi`/`Gi` powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Err("expected a number of bytes, optionally with a unit such as MiB".to_string());
    }
    let number: u64 = text[..digits]
        .parse()
        .map_err(|_| "size too large".to_string())?;
    if text[digits..].starts_with(['.', ',']) {
        return Err("use whole numbers, e.g. \"1536KiB\" rather than \"1.5MiB\"".to_string());
    }
    let unit = text[digits..].trim_start();
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" | "ki" => 1 << 10,
        "mib" | "mi" => 1 << 20,
        "gib" | "gi" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`, expected B, KB, MB, GB, KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| "size too large".to_string())
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
        let state_directory = std::env::var("STATE_DIRECTORY").ok();
        build(text, path, state_directory.as_deref())
    }

    /// What is valid but probably not what the operator meant, or will fail
    /// on this machine: for `tributary check` to say before `run` does.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let loopback_host = |host: &str| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let listen_host = self
            .daemon
            .listen
            .rsplit_once(':')
            .map_or(self.daemon.listen.as_str(), |(host, _)| host);
        if self.daemon.base_url.host_str().is_some_and(loopback_host) && !loopback_host(listen_host)
        {
            warnings.push(format!(
                "base_url {} is a loopback address but listen is {}: readers on other machines get self and next links they cannot follow; set base_url to the URL they use",
                self.daemon.base_url, self.daemon.listen
            ));
        }
        if let Some(path) = self.daemon.database.strip_prefix("sqlite://") {
            let path = Path::new(path.split('?').next().unwrap_or(path));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    warnings.push(format!(
                        "database directory {} does not exist: create it before `run` (tributary creates the file, not its directory)",
                        dir.display()
                    ));
                }
            }
        }
        for source in &self.sources {
            if let Ok(path) = source.url.to_file_path() {
                if source.enabled && !path.is_file() {
                    warnings.push(format!(
                        "source {:?}: {} does not exist (yet)",
                        source.name,
                        path.display()
                    ));
                }
            }
        }
        warnings
    }

    /// The source named `name`, if configured.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The output feed named `name`, if configured.
    pub fn feed(&self, name: &str) -> Option<&FeedConfig> {
        self.feeds.iter().find(|f| f.name == name)
    }
}

/// `-c FILE`, else `$TRIBUTARY_CONFIG`, else `./tributary.toml`, else
/// `/etc/tributary/tributary.toml` (README "Commands").
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let from_env = std::env::var_os("TRIBUTARY_CONFIG").map(PathBuf::from);
    locate_with(explicit, from_env, |path| path.exists())
}

/// [`locate`] with its environment passed in. A path the user named is
/// returned even if missing, so loading it reports that file, not another.
fn locate_with(
    explicit: Option<&Path>,
    from_env: Option<PathBuf>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = from_env.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(path);
    }
    ["./tributary.toml", "/etc/tributary/tributary.toml"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| exists(path))
        .ok_or(ConfigError::NotFound)
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_SCHEDULE: &str = "*/15 * * * *";
const DEFAULT_CONCURRENCY: usize = 16;
const DEFAULT_PER_HOST: usize = 2;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BODY: u64 = 10 << 20;
const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);
const DEFAULT_PRUNE_SCHEDULE: &str = "0 3 * * *";
const DEFAULT_TOMBSTONE_RETENTION: Duration = Duration::from_secs(365 * 86_400);
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_AUTHOR: &str = "tributary";
const DEFAULT_FEED_LIMIT: u32 = 50;
const MAX_FEED_LIMIT: i64 = 500;
/// Far beyond any sane fan-out, and well below what a semaphore accepts.
const MAX_CONCURRENCY: i64 = 10_000;

/// `$STATE_DIRECTORY/tributary.db` under systemd (`StateDirectory=`; the
/// first one when several are listed), else `./tributary.db`.
fn default_database(state_directory: Option<&str>) -> String {
    match state_directory
        .and_then(|dirs| dirs.split(':').next())
        .map(|dir| dir.trim_end_matches('/'))
        .filter(|dir| !dir.is_empty())
    {
        Some(dir) => format!("sqlite://{dir}/tributary.db"),
        None => "sqlite://tributary.db".to_string(),
    }
}

fn build(text: &str, path: &Path, state_directory: Option<&str>) -> Result<Config, ConfigError> {
    let check = Checker {
        text,
        file: path.display().to_string(),
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        line_starts: line_starts(text),
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| check.toml_error(&e))?;
    let daemon = check.daemon(raw.daemon.unwrap_or_default(), state_directory)?;
    let sources = check.sources(raw.source, &daemon.schedule)?;
    let tag_rules = raw
        .tag_rule
        .into_iter()
        .map(|rule| check.tag_rule(rule))
        .collect::<Result<_, _>>()?;
    let tag_aliases = check.tag_aliases(raw.tag_alias)?;
    let mut feeds: Vec<FeedConfig> = check.feeds(raw.feed, &sources)?;
    for feed in &mut feeds {
        for terms in [&mut feed.any, &mut feed.all, &mut feed.none] {
            for term in terms.iter_mut() {
                *term = canonical_term(&tag_aliases, term);
            }
        }
    }
    let dedup = check.dedup(raw.dedup.unwrap_or_default())?;
    Ok(Config {
        path: path.to_path_buf(),
        daemon,
        sources,
        tag_rules,
        feeds,
        tag_aliases,
        dedup,
    })
}

// The file as written. `Spanned` marks values whose errors need a position.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    daemon: Option<RawDaemon>,
    #[serde(default)]
    source: Vec<Spanned<RawSource>>,
    #[serde(default)]
    tag_rule: Vec<Spanned<RawTagRule>>,
    #[serde(default)]
    feed: Vec<Spanned<RawFeed>>,
    #[serde(default)]
    tag_alias: Vec<RawTagAlias>,
    dedup: Option<RawDedup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagAlias {
    tag: Spanned<String>,
    same: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    database: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    schedule: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    per_host: Option<Spanned<i64>>,
    timeout: Option<Spanned<Scalar>>,
    max_body: Option<Spanned<Scalar>>,
    retention: Option<Spanned<Scalar>>,
    prune_schedule: Option<Spanned<String>>,
    tombstone_retention: Option<Spanned<Scalar>>,
    user_agent: Option<String>,
    author: Option<String>,
    log_level: Option<Spanned<String>>,
    respect_cache_headers: Option<bool>,
    pool_size: Option<Spanned<i64>>,
    statement_timeout: Option<Spanned<Scalar>>,
    strip_remote_images: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    url: Spanned<String>,
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    schedule: Option<Spanned<String>>,
    enabled: Option<bool>,
    allow_private_redirects: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagRule {
    tag: Spanned<String>,
    any: Option<Spanned<Vec<Spanned<String>>>>,
    regex: Option<Spanned<String>>,
    fields: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Spanned<String>,
    title: Option<String>,
    #[serde(default)]
    any: Vec<Spanned<String>>,
    #[serde(default)]
    all: Vec<Spanned<String>>,
    #[serde(default)]
    none: Vec<Spanned<String>>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    limit: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDedup {
    enabled: Option<bool>,
    threshold: Option<Spanned<f64>>,
    window: Option<Spanned<Scalar>>,
}

/// A string or an integer: sizes take both, and durations say why a bare
/// integer is wrong instead of a generic type error.
enum Scalar {
    Text(String),
    Integer(i64),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Integer)
                    .map_err(|_| E::custom("integer too large"))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// What a source or feed name may be: `[a-z0-9_-]+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Turns raw values into typed ones; every error points into `text`.
struct Checker<'a> {
    text: &'a str,
    file: String,
    /// The config file's directory: relative `file:` sources start there.
    dir: PathBuf,
    /// Byte offset where each line starts, so a name's line is a binary
    /// search: scanning from the top for each of N names was O(N²).
    line_starts: Vec<usize>,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, span.start);
        ConfigError::Invalid {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }

    fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        // serde speaks Rust (fields, i64); a TOML file has keys and integers.
        let message = error.message().trim();
        let message = match message.strip_prefix("unknown field") {
            Some(rest) => format!("unknown key{rest}"),
            None => match message.strip_prefix("missing field") {
                Some(rest) => format!("missing key{rest}"),
                None => message.to_string(),
            },
        }
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number");
        self.error(error.span().unwrap_or(0..0), message)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.line_starts
            .partition_point(|&start| start <= span.start)
    }

    fn daemon(
        &self,
        raw: RawDaemon,
        state_directory: Option<&str>,
    ) -> Result<DaemonConfig, ConfigError> {
        let database = match raw.database {
            Some(db) => {
                let ok = ["sqlite:", "postgres://", "postgresql://"]
                    .iter()
                    .any(|scheme| db.get_ref().starts_with(scheme));
                if !ok {
                    return Err(self.error(
                        db.span(),
                        format!(
                            "invalid database {:?}: expected sqlite://FILE or postgres://…",
                            db.get_ref()
                        ),
                    ));
                }
                db.into_inner()
            }
            None => default_database(state_directory),
        };

        let listen_span = raw.listen.as_ref().map_or(0..0, |l| l.span());
        let listen = match raw.listen {
            Some(listen) => {
                if !is_listen_address(listen.get_ref()) {
                    return Err(self.error(
                        listen.span(),
                        format!(
                            "invalid listen address {:?}: expected HOST:PORT, e.g. \"127.0.0.1:8080\"",
                            listen.get_ref()
                        ),
                    ));
                }
                listen.into_inner()
            }
            None => DEFAULT_LISTEN.to_string(),
        };

        let (base_url_text, base_url) = match raw.base_url {
            Some(text) => {
                let url = self.http_url(&text, "base_url")?;
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(self.error(
                        text.span(),
                        format!(
                            "invalid base_url {:?}: must not have a query or fragment",
                            text.get_ref()
                        ),
                    ));
                }
                (text.into_inner(), url)
            }
            None => {
                let text = format!("http://{listen}");
                // `listen` was checked, but a host name may still not make a URL.
                let url = Url::parse(&text).map_err(|e| {
                    self.error(
                        listen_span.clone(),
                        format!(
                            "cannot derive base_url from listen {listen:?} ({e}); set base_url"
                        ),
                    )
                })?;
                (text, url)
            }
        };
        let base_url = with_trailing_slash(base_url);

        let schedule = match raw.schedule {
            Some(text) => self.schedule(&text)?,
            None => Schedule::parse(DEFAULT_SCHEDULE).expect("the default schedule is valid"),
        };

        let concurrency = self.count(raw.concurrency, "concurrency", DEFAULT_CONCURRENCY)?;
        let per_host = self.count(raw.per_host, "per_host", DEFAULT_PER_HOST)?;
        let timeout = self.duration(raw.timeout, "timeout", DEFAULT_TIMEOUT)?;
        let retention = self.duration(raw.retention, "retention", DEFAULT_RETENTION)?;
        let prune_schedule = match raw.prune_schedule {
            Some(text) => self.schedule(&text)?,
            None => Schedule::parse(DEFAULT_PRUNE_SCHEDULE).expect("the default is valid"),
        };
        let tombstone_retention = self.duration(
            raw.tombstone_retention,
            "tombstone_retention",
            DEFAULT_TOMBSTONE_RETENTION,
        )?;
        let pool_size = match raw.pool_size {
            Some(n) => Some(self.count(Some(n), "pool_size", 0)? as u32),
            None => None,
        };
        let statement_timeout = self.duration(
            raw.statement_timeout,
            "statement_timeout",
            DEFAULT_STATEMENT_TIMEOUT,
        )?;

        let max_body = match raw.max_body {
            None => DEFAULT_MAX_BODY,
            Some(value) => {
                let bytes = match value.get_ref() {
                    Scalar::Integer(n) => {
                        u64::try_from(*n).map_err(|_| "must be positive".to_string())
                    }
                    Scalar::Text(text) => parse_size(text),
                };
                match bytes {
                    Ok(0) => {
                        return Err(self.error(value.span(), "max_body must be greater than 0"))
                    }
                    Ok(bytes) => bytes,
                    Err(e) => {
                        return Err(self.error(
                            value.span(),
                            format!("invalid size {}: {e}", scalar_text(value.get_ref())),
                        ))
                    }
                }
            }
        };

        let user_agent = raw.user_agent.unwrap_or_else(|| {
            format!(
                "tributary/{} (+{})",
                env!("CARGO_PKG_VERSION"),
                base_url_text.trim_end_matches('/')
            )
        });

        let log_level = match raw.log_level {
            Some(level) => {
                if let Err(e) = tracing_subscriber::EnvFilter::try_new(level.get_ref()) {
                    return Err(self.error(
                        level.span(),
                        format!("invalid log_level {:?}: {e}", level.get_ref()),
                    ));
                }
                Some(level.into_inner())
            }
            None => None,
        };

        Ok(DaemonConfig {
            database,
            listen,
            base_url,
            schedule,
            concurrency,
            per_host,
            timeout,
            max_body,
            retention,
            prune_schedule,
            tombstone_retention,
            user_agent,
            author: raw.author.unwrap_or_else(|| DEFAULT_AUTHOR.to_string()),
            log_level,
            respect_cache_headers: raw.respect_cache_headers.unwrap_or(true),
            pool_size,
            statement_timeout,
            strip_remote_images: raw.strip_remote_images.unwrap_or(false),
        })
    }

    fn sources(
        &self,
        raw: Vec<Spanned<RawSource>>,
        default_schedule: &Schedule,
    ) -> Result<Vec<SourceConfig>, ConfigError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut sources = Vec::with_capacity(raw.len());
        for source in raw {
            let source = source.into_inner();
            let name = self.name(&source.name, "source", &mut seen)?;
            let url = self.source_url(&source.url)?;
            let public_url = match &source.public_url {
                Some(text) => Some(self.http_url(text, "public_url")?),
                None => None,
            };
            let tags = source
                .tags
                .iter()
                .map(|tag| self.label(tag, "tag"))
                .collect::<Result<_, _>>()?;
            let schedule = match &source.schedule {
                Some(text) => self.schedule(text)?,
                None => default_schedule.clone(),
            };
            if let Some(public_url) = &public_url {
                crate::redact::declare(&url, public_url);
            }
            sources.push(SourceConfig {
                name,
                url,
                public_url,
                tags,
                schedule,
                enabled: source.enabled.unwrap_or(true),
                allow_private_redirects: source.allow_private_redirects.unwrap_or(false),
            });
        }
        Ok(sources)
    }

    fn tag_rule(&self, raw: Spanned<RawTagRule>) -> Result<TagRuleConfig, ConfigError> {
        let table = raw.span();
        let rule = raw.into_inner();
        let tag = self.label(&rule.tag, "tag")?;
        let matcher = match (rule.any, rule.regex) {
            (Some(_), Some(regex)) => {
                return Err(self.error(
                    regex.span(),
                    format!("tag_rule {tag:?} has both `any` and `regex`; keep one"),
                ))
            }
            (None, None) => {
                return Err(self.error(
                    table,
                    format!("tag_rule {tag:?} needs `any` (words or phrases) or `regex`"),
                ))
            }
            (Some(any), None) => {
                if any.get_ref().is_empty() {
                    return Err(
                        self.error(any.span(), "`any` must list at least one word or phrase")
                    );
                }
                let mut words = Vec::with_capacity(any.get_ref().len());
                for word in any.get_ref() {
                    let trimmed = word.get_ref().trim();
                    if trimmed.is_empty() {
                        return Err(self.error(word.span(), "empty word in `any`"));
                    }
                    words.push(trimmed.to_string());
                }
                RuleMatcher::Any(words)
            }
            (None, Some(regex)) => match regex::Regex::new(regex.get_ref()) {
                Ok(compiled) => RuleMatcher::Regex(compiled),
                Err(e) => {
                    return Err(self.error(
                        regex.span(),
                        format!("invalid regex {:?}: {}", regex.get_ref(), regex_message(&e)),
                    ))
                }
            },
        };
        let fields = match rule.fields {
            None => RuleField::ALL.to_vec(),
            Some(fields) => {
                if fields.get_ref().is_empty() {
                    return Err(self.error(
                        fields.span(),
                        "`fields` must not be empty; leave it out to look everywhere",
                    ));
                }
                let mut parsed = Vec::new();
                for field in fields.get_ref() {
                    let Some(f) = RuleField::from_name(field.get_ref()) else {
                        let expected: Vec<&str> =
                            RuleField::ALL.iter().map(|f| f.as_str()).collect();
                        return Err(self.error(
                            field.span(),
                            format!(
                                "unknown field {:?}, expected one of {}",
                                field.get_ref(),
                                expected.join(", ")
                            ),
                        ));
                    };
                    if !parsed.contains(&f) {
                        parsed.push(f);
                    }
                }
                parsed
            }
        };
        Ok(TagRuleConfig {
            tag,
            matcher,
            fields,
        })
    }

    fn feeds(
        &self,
        raw: Vec<Spanned<RawFeed>>,
        sources: &[SourceConfig],
    ) -> Result<Vec<FeedConfig>, ConfigError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let known: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut feeds = Vec::with_capacity(raw.len());
        for feed in raw {
            let feed = feed.into_inner();
            let name = self.name(&feed.name, "feed", &mut seen)?;
            let mut feed_sources = Vec::with_capacity(feed.sources.len());
            let mut listed = HashSet::new();
            for source in &feed.sources {
                if !known.contains(source.get_ref().as_str()) {
                    return Err(self.error(
                        source.span(),
                        format!("unknown source {:?} in feed {name:?}", source.get_ref()),
                    ));
                }
                if listed.insert(source.get_ref().as_str()) {
                    feed_sources.push(source.get_ref().clone());
                }
            }
            let limit = match feed.limit {
                None => DEFAULT_FEED_LIMIT,
                Some(limit) => match u32::try_from(*limit.get_ref()) {
                    Ok(n) if (1..=MAX_FEED_LIMIT).contains(&i64::from(n)) => n,
                    _ => {
                        return Err(self.error(
                            limit.span(),
                            format!(
                                "limit must be between 1 and {MAX_FEED_LIMIT}, got {}",
                                limit.get_ref()
                            ),
                        ))
                    }
                },
            };
            feeds.push(FeedConfig {
                title: feed.title.unwrap_or_else(|| name.clone()),
                any: self.terms(&feed.any)?,
                all: self.terms(&feed.all)?,
                none: self.terms(&feed.none)?,
                sources: feed_sources,
                limit,
                name,
            });
        }
        Ok(feeds)
    }

    /// `[[tag_alias]]`: every spelling in `same` folds into `tag`. A term
    /// may be an alias of one tag only, and an alias is never itself a
    /// target (no chains).
    fn tag_aliases(&self, raw: Vec<RawTagAlias>) -> Result<Vec<TagAliasConfig>, ConfigError> {
        let mut targets = HashMap::new();
        for alias in &raw {
            let label = self.label(&alias.tag, "tag")?;
            targets.insert(crate::text::term(&label), alias.tag.span());
        }
        let mut aliased: HashMap<String, String> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for alias in raw {
            let tag = self.label(&alias.tag, "tag")?;
            let target = crate::text::term(&tag);
            if alias.same.is_empty() {
                return Err(self.error(alias.tag.span(), "`same` must list at least one spelling"));
            }
            let mut same = Vec::with_capacity(alias.same.len());
            for spelling in &alias.same {
                let term = crate::text::term(&self.label(spelling, "alias")?);
                if term == target {
                    continue;
                }
                if targets.contains_key(&term) {
                    return Err(self.error(
                        spelling.span(),
                        format!(
                            "{:?} is itself an aliased tag: aliases cannot chain",
                            spelling.get_ref()
                        ),
                    ));
                }
                if let Some(other) = aliased.insert(term.clone(), target.clone()) {
                    if other != target {
                        return Err(self.error(
                            spelling.span(),
                            format!("{:?} is already an alias of {other:?}", spelling.get_ref()),
                        ));
                    }
                }
                same.push(term);
            }
            out.push(TagAliasConfig { tag, same });
        }
        Ok(out)
    }

    fn dedup(&self, raw: RawDedup) -> Result<DedupConfig, ConfigError> {
        let defaults = DedupConfig::default();
        let threshold = match raw.threshold {
            None => defaults.threshold,
            Some(t) if *t.get_ref() > 0.0 && *t.get_ref() <= 1.0 => *t.get_ref(),
            Some(t) => {
                return Err(self.error(
                    t.span(),
                    format!(
                        "threshold must be above 0 and at most 1, got {}",
                        t.get_ref()
                    ),
                ))
            }
        };
        Ok(DedupConfig {
            enabled: raw.enabled.unwrap_or(defaults.enabled),
            threshold,
            window: self.duration(raw.window, "window", defaults.window)?,
        })
    }

    /// A source or feed name: `[a-z0-9_-]+`, unique among its kind.
    fn name(
        &self,
        name: &Spanned<String>,
        kind: &str,
        seen: &mut HashMap<String, usize>,
    ) -> Result<String, ConfigError> {
        let text = name.get_ref();
        if !is_valid_name(text) {
            return Err(self.error(
                name.span(),
                format!("invalid {kind} name {text:?}: use lowercase letters, digits, `-` and `_`"),
            ));
        }
        let line = self.line(&name.span());
        if let Some(first) = seen.insert(text.clone(), line) {
            return Err(self.error(
                name.span(),
                format!("duplicate {kind} name {text:?} (first defined at line {first})"),
            ));
        }
        Ok(text.clone())
    }

    /// A tag label that folds to a non-empty term; kept as written, trimmed.
    fn label(&self, label: &Spanned<String>, what: &str) -> Result<String, ConfigError> {
        let trimmed = label.get_ref().trim();
        if crate::text::term(trimmed).is_empty() {
            return Err(self.error(
                label.span(),
                format!("{what} {:?} is empty", label.get_ref()),
            ));
        }
        Ok(trimmed.to_string())
    }

    /// Tag filters as terms, without repeats.
    fn terms(&self, labels: &[Spanned<String>]) -> Result<Vec<String>, ConfigError> {
        let mut terms = Vec::with_capacity(labels.len());
        for label in labels {
            let term = crate::text::term(&self.label(label, "tag")?);
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        Ok(terms)
    }

    /// An http(s) URL, or a `file:` one for a feed on this machine's disk:
    /// `file:///abs/path.xml`, or `file:path.xml` relative to the config
    /// file's directory.
    fn source_url(&self, text: &Spanned<String>) -> Result<Url, ConfigError> {
        let Some(rest) = text.get_ref().strip_prefix("file:") else {
            return self.http_url(text, "url");
        };
        let path = match rest.strip_prefix("//") {
            Some(absolute) => PathBuf::from(absolute),
            None => self.dir.join(rest),
        };
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir().unwrap_or_default().join(path)
        };
        Url::from_file_path(&path).map_err(|()| {
            self.error(
                text.span(),
                format!("invalid url {:?}: not a file path", text.get_ref()),
            )
        })
    }

    fn http_url(&self, text: &Spanned<String>, key: &str) -> Result<Url, ConfigError> {
        match Url::parse(text.get_ref()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
            Ok(_) => Err(self.error(
                text.span(),
                format!(
                    "invalid {key} {:?}: must be an http or https URL",
                    crate::redact::public_url(text.get_ref())
                ),
            )),
            Err(e) => Err(self.error(
                text.span(),
                format!(
                    "invalid {key} {:?}: {e}; expected an absolute http or https URL",
                    text.get_ref()
                ),
            )),
        }
    }

    fn schedule(&self, text: &Spanned<String>) -> Result<Schedule, ConfigError> {
        Schedule::parse(text.get_ref()).map_err(|e| {
            self.error(
                text.span(),
                format!("invalid cron schedule {:?}: {e}", text.get_ref()),
            )
        })
    }

    fn count(
        &self,
        value: Option<Spanned<i64>>,
        key: &str,
        default: usize,
    ) -> Result<usize, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        if !(1..=MAX_CONCURRENCY).contains(&n) {
            return Err(self.error(
                value.span(),
                format!("{key} must be between 1 and {MAX_CONCURRENCY}, got {n}"),
            ));
        }
        Ok(n as usize)
    }

    /// A positive duration.
    fn duration(
        &self,
        value: Option<Spanned<Scalar>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let parsed = match value.get_ref() {
            Scalar::Text(text) => parse_duration(text),
            Scalar::Integer(n) => Err(format!(
                "`{n}` needs a unit (ms, s, m, h, d, w), e.g. \"{n}s\""
            )),
        };
        match parsed {
            Ok(d) if d.is_zero() => {
                Err(self.error(value.span(), format!("{key} must be greater than 0")))
            }
            Ok(d) => Ok(d),
            Err(e) => Err(self.error(
                value.span(),
                format!("invalid duration {}: {e}", scalar_text(value.get_ref())),
            )),
        }
    }
}

fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::Text(text) => format!("{text:?}"),
        Scalar::Integer(n) => n.to_string(),
    }
}

/// `host:port` with a numeric port, or a socket address (`[::1]:8080`).
fn is_listen_address(text: &str) -> bool {
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match text.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
        None => false,
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// The regex crate's syntax errors draw the pattern and a caret over
/// several lines; the last line says what is wrong.
fn regex_message(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_string()
}

/// Where each line of `text` starts: 0, then one past every `\n`.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        build(text, Path::new("test.toml"), None)
    }

    /// The `line:col: message` of a config that must fail.
    fn error_of(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(ConfigError::Invalid {
                file,
                line,
                col,
                message,
            }) => {
                assert_eq!(file, "test.toml");
                format!("{line}:{col}: {message}")
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    const SOURCE: &str = "[[source]]\nname = \"a\"\nurl = \"https://example.org/rss\"\n";

    #[test]
    fn an_empty_file_gets_every_default() {
        let config = parse("").unwrap();
        let d = &config.daemon;
        assert_eq!(d.database, "sqlite://tributary.db");
        assert_eq!(d.listen, "127.0.0.1:8080");
        assert_eq!(d.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(d.schedule.as_str(), "*/15 * * * *");
        assert_eq!(d.concurrency, 16);
        assert_eq!(d.per_host, 2);
        assert_eq!(d.timeout, Duration::from_secs(30));
        assert_eq!(d.max_body, 10 * 1024 * 1024);
        assert_eq!(d.retention, Duration::from_secs(90 * 24 * 3600));
        assert_eq!(
            d.user_agent,
            format!(
                "tributary/{} (+http://127.0.0.1:8080)",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(d.author, "tributary");
        assert_eq!(d.log_level, None);
        assert!(d.respect_cache_headers);
        assert_eq!(d.pool_size, None, "the backend picks");
        assert_eq!(d.statement_timeout, Duration::from_secs(30));
        assert!(
            config.sources.is_empty() && config.tag_rules.is_empty() && config.feeds.is_empty()
        );
        assert_eq!(config.dedup, DedupConfig::default());
        assert_eq!(config.path, Path::new("test.toml"));
    }

    #[test]
    fn sources_tag_rules_and_feeds_get_their_defaults() {
        let text = format!(
            "[daemon]\nschedule = \"@hourly\"\n{SOURCE}\n\
             [[tag_rule]]\ntag = \"Xi Jinping\"\nany = [\"Xi Jinping\"]\n\
             [[feed]]\nname = \"all\"\n"
        );
        let config = parse(&text).unwrap();
        let source = &config.sources[0];
        assert_eq!(source.url.as_str(), "https://example.org/rss");
        assert!(source.tags.is_empty());
        assert_eq!(source.schedule.as_str(), "@hourly");
        assert!(source.enabled);
        let rule = &config.tag_rules[0];
        assert_eq!(rule.tag, "Xi Jinping");
        assert!(matches!(&rule.matcher, RuleMatcher::Any(words) if words == &["Xi Jinping"]));
        assert_eq!(rule.fields, RuleField::ALL);
        let feed = config.feed("all").unwrap();
        assert_eq!(feed.title, "all");
        assert!(feed.any.is_empty() && feed.all.is_empty() && feed.none.is_empty());
        assert!(feed.sources.is_empty());
        assert_eq!(feed.limit, 50);
    }

    #[test]
    fn written_values_are_kept_and_typed() {
        let text = format!(
            "[daemon]\n\
             database = \"postgres://u@db/tributary\"\n\
             listen = \"0.0.0.0:9000\"\n\
             base_url = \"https://news.example.org/tributary\"\n\
             concurrency = 4\nper_host = 1\ntimeout = \"1m30s\"\nmax_body = 1048576\n\
             retention = \"2w\"\nauthor = \"Newsroom\"\nlog_level = \"tributary=debug,info\"\n\
             respect_cache_headers = false\npool_size = 20\nstatement_timeout = \"5s\"\n\
             {SOURCE}tags = [\"RFI\", \"World News\"]\nschedule = \"*/2 * * * * *\"\nenabled = false\n\
             [[tag_rule]]\ntag = \"ukraine\"\nregex = \"(?i)\\\\bkyiv\\\\b\"\nfields = [\"title\", \"url\", \"title\"]\n\
             [[feed]]\nname = \"x\"\ntitle = \"X\"\nany = [\"World News\", \"world_news\"]\n\
             all = [\"RFI\"]\nnone = [\"Sport\"]\nsources = [\"a\"]\nlimit = 500\n\
             [dedup]\nenabled = false\nthreshold = 0.8\nwindow = \"12h\"\n"
        );
        let config = parse(&text).unwrap();
        let d = &config.daemon;
        assert_eq!(d.database, "postgres://u@db/tributary");
        assert_eq!(d.listen, "0.0.0.0:9000");
        assert_eq!(d.base_url.as_str(), "https://news.example.org/tributary/");
        assert_eq!(
            d.base_url.join("feeds/x.atom").unwrap().as_str(),
            "https://news.example.org/tributary/feeds/x.atom"
        );
        assert_eq!(
            d.user_agent,
            format!(
                "tributary/{} (+https://news.example.org/tributary)",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!((d.concurrency, d.per_host), (4, 1));
        assert_eq!(d.timeout, Duration::from_secs(90));
        assert_eq!(d.max_body, 1 << 20);
        assert_eq!(d.retention, Duration::from_secs(14 * 86_400));
        assert_eq!(d.author, "Newsroom");
        assert_eq!(d.log_level.as_deref(), Some("tributary=debug,info"));
        assert!(!d.respect_cache_headers);
        assert_eq!(d.pool_size, Some(20));
        assert_eq!(d.statement_timeout, Duration::from_secs(5));
        let source = config.source("a").unwrap();
        assert_eq!(source.tags, ["RFI", "World News"]);
        assert_eq!(source.schedule.as_str(), "*/2 * * * * *");
        assert!(!source.enabled);
        let rule = &config.tag_rules[0];
        assert!(matches!(&rule.matcher, RuleMatcher::Regex(r) if r.is_match("in Kyiv today")));
        assert_eq!(rule.fields, [RuleField::Title, RuleField::Url]);
        let feed = &config.feeds[0];
        assert_eq!(feed.title, "X");
        assert_eq!(feed.any, ["world-news"]);
        assert_eq!(feed.all, ["rfi"]);
        assert_eq!(feed.none, ["sport"]);
        assert_eq!(feed.sources, ["a"]);
        assert_eq!(feed.limit, 500);
        assert_eq!(feed.filter().any, ["world-news"]);
        assert_eq!(
            config.dedup,
            DedupConfig {
                enabled: false,
                threshold: 0.8,
                window: Duration::from_secs(12 * 3600),
            }
        );
    }

    #[test]
    fn the_default_database_follows_state_directory() {
        let cases = [
            (None, "sqlite://tributary.db"),
            (Some(""), "sqlite://tributary.db"),
            (
                Some("/var/lib/tributary"),
                "sqlite:///var/lib/tributary/tributary.db",
            ),
            (
                Some("/var/lib/tributary/"),
                "sqlite:///var/lib/tributary/tributary.db",
            ),
            (
                Some("/var/lib/a:/var/lib/b"),
                "sqlite:///var/lib/a/tributary.db",
            ),
        ];
        for (state_directory, expected) in cases {
            assert_eq!(
                default_database(state_directory),
                expected,
                "{state_directory:?}"
            );
            let config = build("", Path::new("t.toml"), state_directory).unwrap();
            assert_eq!(config.daemon.database, expected);
        }
    }

    #[test]
    fn base_url_defaults_from_listen() {
        let config = parse("[daemon]\nlisten = \"localhost:3000\"\n").unwrap();
        assert_eq!(config.daemon.base_url.as_str(), "http://localhost:3000/");
        assert!(config
            .daemon
            .user_agent
            .ends_with("(+http://localhost:3000)"));
        let config = parse("[daemon]\nlisten = \"[::1]:8080\"\n").unwrap();
        assert_eq!(config.daemon.base_url.as_str(), "http://[::1]:8080/");
    }

    #[test]
    fn errors_point_at_the_offending_value() {
        let s = SOURCE;
        let cases: Vec<(String, &str)> = vec![
            // TOML syntax and shape.
            ("[daemon\n".into(), "1:8: "),
            ("[daemon]\nlisten = \"x\n".into(), "2:12: invalid basic string"),
            ("[daemon]\nconcurrency = 1\nconcurrency = 2\n".into(), "3:1: duplicate key"),
            (
                "[daemon]\nshedule = \"* * * * *\"\n".into(),
                "2:1: unknown key `shedule`, expected one of",
            ),
            ("[daemons]\n".into(), "1:2: unknown key `daemons`"),
            (format!("{s}shedule = \"@daily\"\n"), "4:1: unknown key `shedule`"),
            ("[[source]]\nname = \"a\"\n".into(), "1:1: missing key `url`"),
            ("[daemon]\nconcurrency = \"4\"\n".into(), "2:15: invalid type: string \"4\", expected an integer"),
            ("[daemon]\ntimeout = 1.5\n".into(), "2:11: invalid type: floating point"),
            // [daemon] values.
            (
                "[daemon]\ndatabase = \"mysql://x\"\n".into(),
                "2:12: invalid database \"mysql://x\"",
            ),
            (
                "[daemon]\nlisten = \"8080\"\n".into(),
                "2:10: invalid listen address \"8080\"",
            ),
            (
                "[daemon]\nlisten = \"localhost:99999\"\n".into(),
                "2:10: invalid listen address",
            ),
            (
                "[daemon]\nbase_url = \"example.org\"\n".into(),
                "2:12: invalid base_url \"example.org\": relative URL without a base",
            ),
            (
                "[daemon]\nbase_url = \"ftp://example.org/\"\n".into(),
                "2:12: invalid base_url \"ftp://example.org/\": must be an http or https URL",
            ),
            (
                "[daemon]\nbase_url = \"https://example.org/?a=b\"\n".into(),
                "2:12: invalid base_url \"https://example.org/?a=b\": must not have a query",
            ),
            (
                "[daemon]\nschedule = \"* * *\"\n".into(),
                "2:12: invalid cron schedule \"* * *\": expected 5 fields",
            ),
            (
                "[daemon]\nschedule = \"61 * * * *\"\n".into(),
                "2:12: invalid cron schedule \"61 * * * *\": ",
            ),
            ("[daemon]\nconcurrency = 0\n".into(), "2:15: concurrency must be between 1 and"),
            ("[daemon]\nper_host = -1\n".into(), "2:12: per_host must be between 1 and"),
            (
                "[daemon]\ntimeout = \"30\"\n".into(),
                "2:11: invalid duration \"30\": `30` needs a unit",
            ),
            ("[daemon]\ntimeout = 30\n".into(), "2:11: invalid duration 30: `30` needs a unit"),
            ("[daemon]\ntimeout = \"0s\"\n".into(), "2:11: timeout must be greater than 0"),
            (
                "[daemon]\nretention = \"90 dayz\"\n".into(),
                "2:13: invalid duration \"90 dayz\": unknown unit `dayz`",
            ),
            (
                "[daemon]\nmax_body = \"10XB\"\n".into(),
                "2:12: invalid size \"10XB\": unknown unit `XB`",
            ),
            ("[daemon]\nmax_body = 0\n".into(), "2:12: max_body must be greater than 0"),
            ("[daemon]\nmax_body = -5\n".into(), "2:12: invalid size -5: must be positive"),
            (
                "[daemon]\nlog_level = \"tributary=loud\"\n".into(),
                "2:13: invalid log_level \"tributary=loud\"",
            ),
            // [[source]].
            (
                "[[source]]\nname = \"RFI en\"\nurl = \"https://x.org/\"\n".into(),
                "2:8: invalid source name \"RFI en\": use lowercase letters",
            ),
            (
                format!("{s}\n[[source]]\nname = \"b\"\nurl = \"https://x.org\"\n\n[[source]]\nname = \"a\"\nurl = \"https://y.org\"\n"),
                "10:8: duplicate source name \"a\" (first defined at line 2)",
            ),
            (
                "[[source]]\nname = \"a\"\nurl = \"/rss\"\n".into(),
                "3:7: invalid url \"/rss\": relative URL without a base",
            ),
            (
                "[[source]]\nname = \"a\"\nurl = \"ftp://files.example/feed.xml\"\n".into(),
                "3:7: invalid url \"ftp://files.example/feed.xml\": must be an http or https URL",
            ),
            (format!("{s}tags = [\"ok\", \" - \"]\n"), "4:15: tag \" - \" is empty"),
            (
                format!("{s}schedule = \"*/5 * * * * * * *\"\n"),
                "4:12: invalid cron schedule \"*/5 * * * * * * *\": expected 5 fields",
            ),
            (
                format!("{s}schedule = \"0 0 30 2 *\"\n"),
                "4:12: invalid cron schedule \"0 0 30 2 *\": it never fires",
            ),
            (
                format!("{s}schedule = \"0 0 9 * * 1-5\"\n"),
                "4:12: invalid cron schedule \"0 0 9 * * 1-5\": numeric days of week are ambiguous",
            ),
            (
                format!("{s}schedule = \"@reboot\"\n"),
                "4:12: invalid cron schedule \"@reboot\": unknown `@reboot`",
            ),
            // [[tag_rule]].
            (
                "\n[[tag_rule]]\ntag = \"china\"\n".into(),
                "2:1: tag_rule \"china\" needs `any` (words or phrases) or `regex`",
            ),
            (
                "[[tag_rule]]\ntag = \"china\"\nany = [\"China\"]\nregex = \"china\"\n".into(),
                "4:9: tag_rule \"china\" has both `any` and `regex`",
            ),
            (
                "[[tag_rule]]\ntag = \"china\"\nany = []\n".into(),
                "3:7: `any` must list at least one word",
            ),
            (
                "[[tag_rule]]\ntag = \"china\"\nany = [\"China\", \"  \"]\n".into(),
                "3:17: empty word in `any`",
            ),
            (
                "[[tag_rule]]\ntag = \"china\"\nregex = \"(china\"\n".into(),
                "3:9: invalid regex \"(china\": unclosed group",
            ),
            (
                "[[tag_rule]]\ntag = \"china\"\nany = [\"China\"]\nfields = [\"title\", \"body\"]\n".into(),
                "4:20: unknown field \"body\", expected one of title, summary, content, categories, author, url",
            ),
            (
                "[[tag_rule]]\ntag = \"china\"\nany = [\"China\"]\nfields = []\n".into(),
                "4:10: `fields` must not be empty",
            ),
            ("[[tag_rule]]\ntag = \"\"\nany = [\"x\"]\n".into(), "2:7: tag \"\" is empty"),
            // [[feed]].
            (
                "[[feed]]\nname = \"China\"\n".into(),
                "2:8: invalid feed name \"China\": use lowercase letters",
            ),
            (
                "[[feed]]\nname = \"x\"\n[[feed]]\nname = \"x\"\n".into(),
                "4:8: duplicate feed name \"x\" (first defined at line 2)",
            ),
            (
                format!("{s}[[feed]]\nname = \"x\"\nsources = [\"a\", \"nope\"]\n"),
                "6:17: unknown source \"nope\" in feed \"x\"",
            ),
            ("[[feed]]\nname = \"x\"\nlimit = 0\n".into(), "3:9: limit must be between 1 and 500, got 0"),
            ("[[feed]]\nname = \"x\"\nlimit = 501\n".into(), "3:9: limit must be between 1 and 500, got 501"),
            ("[[feed]]\nname = \"x\"\nnone = [\"_\"]\n".into(), "3:9: tag \"_\" is empty"),
            // [dedup].
            ("[dedup]\nthreshold = 1.5\n".into(), "2:13: threshold must be above 0 and at most 1"),
            ("[dedup]\nmode = \"fast\"\n".into(), "2:1: unknown key `mode`"),
        ];
        for (text, expected) in cases {
            let got = error_of(&text);
            assert!(
                got.starts_with(expected),
                "for:\n{text}\nexpected `{expected}…`\ngot      `{got}`"
            );
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let got = error_of("# «ça»\n[daemon]\nauthor = \"é\" ; listen = \"x\"\n");
        assert!(got.starts_with("3:14: "), "{got}");
        let got = error_of("[[feed]]\nname = \"x\"\nall = [\"é\", \"—\", \" \"]\n");
        assert!(got.starts_with("3:18: tag \" \" is empty"), "{got}");
    }

    #[test]
    fn errors_display_as_file_line_col_message() {
        let err = build(
            "[daemon]\nschedule = \"* * *\"\n",
            Path::new("/etc/tributary/tributary.toml"),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/tributary/tributary.toml:2:12: invalid cron schedule \"* * *\": expected 5 fields (minute hour day month weekday), 6 or 7 with seconds first, or @hourly etc.; found 3"
        );
    }

    fn at(text: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn schedules_tick_when_expected() {
        // 2025-01-01 is a Wednesday.
        let cases = [
            (
                "*/15 * * * *",
                "2025-01-01T10:07:30Z",
                "2025-01-01T10:15:00Z",
            ),
            (
                "*/15 * * * *",
                "2025-01-01T10:15:00Z",
                "2025-01-01T10:30:00Z",
            ),
            ("30 9 * * *", "2025-01-01T10:00:00Z", "2025-01-02T09:30:00Z"),
            (
                "* * * * * *",
                "2025-01-01T10:00:00Z",
                "2025-01-01T10:00:01Z",
            ),
            (
                "*/2 * * * * *",
                "2025-01-01T10:00:00Z",
                "2025-01-01T10:00:02Z",
            ),
            (
                "*/10 * * * * * 2026",
                "2025-01-01T10:00:00Z",
                "2026-01-01T00:00:00Z",
            ),
            (
                "0 30 9 * * MON-FRI",
                "2025-01-03T10:00:00Z",
                "2025-01-06T09:30:00Z",
            ),
            ("@hourly", "2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z"),
            ("@daily", "2025-01-01T10:00:00Z", "2025-01-02T00:00:00Z"),
            ("@midnight", "2025-01-01T10:00:00Z", "2025-01-02T00:00:00Z"),
            ("@weekly", "2025-01-01T10:00:00Z", "2025-01-05T00:00:00Z"),
            ("@monthly", "2025-01-01T10:00:00Z", "2025-02-01T00:00:00Z"),
            ("@yearly", "2025-01-01T10:00:00Z", "2026-01-01T00:00:00Z"),
            ("@annually", "2025-01-01T10:00:00Z", "2026-01-01T00:00:00Z"),
            // Crontab day-of-week numbering: 0 and 7 are Sunday, 1 Monday.
            ("0 9 * * 1", "2025-01-01T10:00:00Z", "2025-01-06T09:00:00Z"),
            ("0 9 * * 0", "2025-01-01T10:00:00Z", "2025-01-05T09:00:00Z"),
            ("0 9 * * 7", "2025-01-01T10:00:00Z", "2025-01-05T09:00:00Z"),
            (
                "0 9 * * 1-5",
                "2025-01-03T10:00:00Z",
                "2025-01-06T09:00:00Z",
            ),
            (
                "0 9 * * 5-7",
                "2025-01-01T10:00:00Z",
                "2025-01-03T09:00:00Z",
            ),
            (
                "0 9 * * sat,sun",
                "2025-01-01T10:00:00Z",
                "2025-01-04T09:00:00Z",
            ),
            (
                "0 9 * * fri-sun",
                "2025-01-04T10:00:00Z",
                "2025-01-05T09:00:00Z",
            ),
            (
                "0 9 * * */2",
                "2025-01-01T10:00:00Z",
                "2025-01-02T09:00:00Z",
            ),
            // Day of month OR day of week, as crontab does: the 20th or Mondays.
            ("0 0 20 * 1", "2025-01-01T10:00:00Z", "2025-01-06T00:00:00Z"),
            ("0 0 20 * 1", "2025-01-14T10:00:00Z", "2025-01-20T00:00:00Z"),
            ("0 0 20 * 1", "2025-01-20T10:00:00Z", "2025-01-27T00:00:00Z"),
        ];
        for (expression, after, expected) in cases {
            let schedule =
                Schedule::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(schedule.as_str(), expression);
            assert_eq!(
                schedule.next_after(at(after)),
                Some(at(expected)),
                "{expression} after {after}"
            );
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        let cases = [
            ("", "empty schedule"),
            ("* * *", "expected 5 fields"),
            ("@every 5m", "expected 5 fields"),
            ("@fortnightly", "unknown `@fortnightly`"),
            ("0 9 * * 8", "day of week `8` is out of range 0-7"),
            ("0 9 * * 5-1", "range `5-1` runs backwards"),
            ("0 9 * * mon/0", "invalid step `0`"),
            ("0 9 * * funday", "unknown day of week `funday`"),
            ("x * * * *", "Minutes"),
            ("0 0 31 2 *", "never fires"),
            ("0 0 0 * * 1", "ambiguous"),
            ("0 0 0 * * MON-FRI 2001", "never fires"),
        ];
        for (expression, expected) in cases {
            let err = Schedule::parse(expression).unwrap_err();
            assert!(err.contains(expected), "{expression}: {err}");
        }
        // A schedule later than now is not "never".
        let in_a_while = Utc.with_ymd_and_hms(2099, 6, 1, 0, 0, 0).unwrap();
        let s = Schedule::parse("0 0 0 1 6 * 2099").unwrap();
        assert_eq!(s.next_after(Utc::now()), Some(in_a_while));
    }

    #[test]
    fn durations_parse() {
        let ok = [
            ("30s", 30_000),
            ("15m", 900_000),
            ("2h", 7_200_000),
            ("90d", 7_776_000_000),
            ("1w", 604_800_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("1h 30m 15s", 5_415_000),
            ("2 days", 172_800_000),
            (" 10min ", 600_000),
        ];
        for (text, millis) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        let bad = [
            ("", "empty"),
            ("30", "needs a unit"),
            ("1h30", "`30` needs a unit"),
            ("s", "expected a number"),
            ("1.5h", "use whole numbers"),
            ("5y", "unknown unit `y`"),
            ("-5s", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("999999999999999w", "too large"),
        ];
        for (text, expected) in bad {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn sizes_parse() {
        let ok = [
            ("10MiB", 10 << 20),
            ("512KiB", 512 << 10),
            ("1GiB", 1 << 30),
            ("10MB", 10_000_000),
            ("1KB", 1_000),
            ("1kb", 1_000),
            ("4 MiB", 4 << 20),
            ("1048576", 1_048_576),
            ("7B", 7),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for text in ["", "MiB", "1.5MiB", "10XB", "-1", "99999999999GiB"] {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }

    #[test]
    fn locate_prefers_the_flag_then_the_environment_then_the_usual_places() {
        let nowhere = |_: &Path| false;
        let everywhere = |_: &Path| true;
        let only_etc = |p: &Path| p == Path::new("/etc/tributary/tributary.toml");
        let flag = Path::new("my.toml");
        let env = || Some(PathBuf::from("/env.toml"));
        assert_eq!(locate_with(Some(flag), env(), nowhere).unwrap(), flag);
        assert_eq!(
            locate_with(None, env(), nowhere).unwrap(),
            Path::new("/env.toml")
        );
        assert_eq!(
            locate_with(None, Some(PathBuf::new()), everywhere).unwrap(),
            Path::new("./tributary.toml")
        );
        assert_eq!(
            locate_with(None, None, only_etc).unwrap(),
            Path::new("/etc/tributary/tributary.toml")
        );
        assert!(matches!(
            locate_with(None, None, nowhere),
            Err(ConfigError::NotFound)
        ));
    }

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/tributary.example.toml"
        ));
        let text = std::fs::read_to_string(path).unwrap();
        let config = build(&text, path, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.daemon.database, "sqlite://tributary.db");
        for name in ["rfi-en", "rfi-fr"] {
            assert!(config.source(name).is_some(), "{name}");
        }
        assert_eq!(
            config.source("rfi-en").unwrap().url.as_str(),
            "https://www.rfi.fr/en/rss"
        );
        let china_russia = config.feed("china-russia").unwrap();
        assert_eq!(china_russia.any, ["china", "russia"]);
        assert!(config
            .tag_rules
            .iter()
            .any(|r| crate::text::term(&r.tag) == "wang-yi"));
        assert!(config
            .tag_rules
            .iter()
            .any(|r| matches!(r.matcher, RuleMatcher::Regex(_))));
    }

    /// 50,000 sources (and a feed naming each) must validate: the checker
    /// used to rescan the file from the top for every name (and every feed
    /// member), which took minutes here. The timeout is a liveness guard
    /// with a wide margin (this takes a few seconds in a debug build), not
    /// a performance assertion.
    #[test]
    fn fifty_thousand_sources_validate_and_lines_stay_right() {
        const N: usize = 50_000;
        let mut text = String::from("[daemon]\nschedule = \"0 * * * *\"\n");
        for i in 0..N {
            text.push_str(&format!(
                "\n[[source]]\nname = \"s{i}\"\nurl = \"https://feeds{i}.example/rss\"\n"
            ));
        }
        let names: Vec<String> = (0..N).map(|i| format!("\"s{i}\"")).collect();
        text.push_str(&format!(
            "\n[[feed]]\nname = \"all\"\nsources = [{}]\n",
            names.join(", ")
        ));
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = parse(&text).map(|c| (c.sources.len(), c.feeds[0].sources.len()));
            let _ = done.send(result);
        });
        let result = wait
            .recv_timeout(Duration::from_secs(30))
            .expect("validating 50,000 sources did not finish in 30 s");
        assert_eq!(result.unwrap(), (N, N));

        // Lines found by the index, not the scan: a repeated name names the
        // line of the first one.
        let text = "[[source]]\nname = \"a\"\nurl = \"https://a.example/\"\n\n\
                    [[source]]\nname = \"b\"\nurl = \"https://b.example/\"\n\
                    [[source]]\nname = \"b\"\nurl = \"https://c.example/\"\n";
        assert_eq!(
            error_of(text),
            "9:8: duplicate source name \"b\" (first defined at line 6)"
        );
    }
}
