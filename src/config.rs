//! The TOML configuration (docs/CONFIG.md): read, validated once, turned into
//! inert typed values. Every error names `FILE:LINE:COL`.
//!
//! - this file: the public, inert types, loading and locating the file;
//! - [`schedule`]: `Schedule`, cron in crontab's dialect;
//! - [`units`]: durations and sizes;
//! - `validate`: the file as written (`Raw*`) checked once into those types.
//!   Values that stand alone (schedules, durations, sizes, names, URLs)
//!   read themselves, so toml positions their errors at the value; what
//!   needs another table or the file's directory (unique names, `file:`
//!   paths, tag and feed references) is the checker's.

use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

mod schedule;
mod units;
mod validate;

pub use schedule::Schedule;
pub use units::{parse_duration, parse_size, ByteSize, ConfigDuration};
use validate::build;
pub use validate::is_valid_name;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    pub sources: Vec<SourceConfig>,
    pub tag_rules: Vec<TagRuleConfig>,
    pub tag_aliases: Vec<TagAliasConfig>,
    /// `[[rule]]`s that drop or keep entries (docs/CONFIG.md "Rules"), in
    /// file order.
    pub rules: Vec<RuleConfig>,
    pub feeds: Vec<FeedConfig>,
    /// `[[webhook]]`s: new articles of a feed POSTed to a receiver
    /// (docs/CONFIG.md "Webhooks").
    pub webhooks: Vec<WebhookConfig>,
    /// `[dedup]`: near-duplicate detection across outlets (docs/TAGS-AND-DEDUP.md "How deduplication works").
    pub dedup: DedupConfig,
    /// `[health]`: when a source's state changes enough to say so in
    /// `/health.atom` (docs/CONFIG.md "Health").
    pub health: HealthConfig,
    /// `[entities]`: automatic entity tags (docs/CONFIG.md "Entity tags").
    pub entities: EntitiesConfig,
    /// `[websub]`: WebSub, both ways (docs/CONFIG.md "WebSub").
    pub websub: WebsubConfig,
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
    /// Longest one fetched body's parsing may take (docs/CONFIG.md
    /// "Fetching"): what a hostile feed can cost in CPU per refresh.
    pub parse_budget: Duration,
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
    /// How this source's requests differ from every other's.
    pub request: SourceRequest,
    /// `rewrite_title`: applied to each entry's title before tagging and
    /// deduplication (docs/CONFIG.md "Rewrites").
    pub rewrite_title: Option<Rewrite>,
    /// `rewrite_link`: the same for each entry's link.
    pub rewrite_link: Option<Rewrite>,
    /// `remove_selectors`: elements taken out of bodies and summaries
    /// before sanitizing (docs/CONFIG.md "Rewrites").
    pub remove_selectors: Option<RemoveSelectors>,
    /// `language`: the feed's language when it states none or a wrong one
    /// (docs/CONFIG.md "Languages"); a BCP 47 tag.
    pub language: Option<String>,
    /// The outlet its copies count for (docs/TAGS-AND-DEDUP.md "Outlets"):
    /// `outlet` as written, else the URL's host without `www.`.
    pub outlet: String,
    /// `full_text`: when the article page is fetched for the full body
    /// (docs/CONFIG.md "Full text").
    pub full_text: FullText,
    /// `entities`: this source's override of `[entities] enabled`.
    pub entities: Option<bool>,
}

/// A source's `full_text`: whether its entries' article pages are fetched
/// and their main text extracted (the `fulltext` module).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FullText {
    /// The feed's own content only.
    #[default]
    Never,
    /// Only entries that look truncated: a summary without a body, or a
    /// short body (the full text step's `looks_truncated`).
    Auto,
    /// Every new entry with a link.
    Always,
}

/// The outlet of a source at `url` that names none: its host, lowercase,
/// without a leading `www.` (`https://www.rfi.fr/fr/afrique/rss` ->
/// `rfi.fr`); a URL without a host (`file:`) is an outlet of its own.
pub fn default_outlet(url: &Url) -> String {
    match url.host_str() {
        Some(host) => {
            let host = host.to_ascii_lowercase();
            host.strip_prefix("www.").unwrap_or(&host).to_string()
        }
        None => url.to_string(),
    }
}

/// Compiled CSS selectors, shared by every refresh of a source.
#[derive(Clone)]
pub struct RemoveSelectors(pub std::sync::Arc<[lol_html::Selector]>);

impl std::ops::Deref for RemoveSelectors {
    type Target = [lol_html::Selector];
    fn deref(&self) -> &[lol_html::Selector] {
        &self.0
    }
}

impl std::fmt::Debug for RemoveSelectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoveSelectors({} selectors)", self.0.len())
    }
}

/// A regex replacement: every match of `regex` becomes `with` (`$1`, `${name}`
/// name its groups).
#[derive(Debug, Clone)]
pub struct Rewrite {
    pub regex: regex::Regex,
    pub with: String,
}

/// A source's own request settings (docs/CONFIG.md "Per-source
/// requests"): for sites that refuse default clients or want a key.
/// Header values and the cookie are secrets: `Debug` shows only names.
#[derive(Clone, Default, PartialEq)]
pub struct SourceRequest {
    /// Extra headers (names lowercased, values valid HTTP), sent to the
    /// source's own origin only, never to another host it redirects to.
    pub headers: Vec<(String, String)>,
    /// Instead of `[daemon] user_agent`.
    pub user_agent: Option<String>,
    /// The `Cookie` header, sent like `headers`.
    pub cookie: Option<String>,
    /// An http, https, socks5 or socks5h proxy for every request of this
    /// source.
    pub proxy: Option<Url>,
}

impl std::fmt::Debug for SourceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SourceRequest")
            .field("headers", &names)
            .field("user_agent", &self.user_agent)
            .field("cookie", &self.cookie.as_ref().map(|_| "***"))
            .field(
                "proxy",
                &self
                    .proxy
                    .as_ref()
                    .map(|p| crate::redact::public_url(p.as_str())),
            )
            .finish()
    }
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

/// `[[rule]]`: drops or keeps the entries it matches (docs/CONFIG.md
/// "Rules"). Every condition given must hold: the text matcher, when
/// there is one, and the age bounds.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    /// As written, or `rule-N` by its position among the `[[rule]]`s.
    pub name: String,
    pub action: RuleAction,
    /// Sources it applies to; every source when empty.
    pub sources: Vec<String>,
    pub matcher: Option<RuleMatcher>,
    /// Where the matcher looks: [`RuleField::WITH_TAGS`] when left out.
    pub fields: Vec<RuleField>,
    /// Matches entries dated more than this long ago.
    pub older_than: Option<Duration>,
    /// Matches entries dated less than this long ago.
    pub newer_than: Option<Duration>,
}

/// The name under which entries no keep rule kept are counted and
/// explained (a source with keep rules keeps only what one matches).
pub const NOT_KEPT: &str = "not-kept";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Drop,
    Keep,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Drop => "drop",
            RuleAction::Keep => "keep",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleField {
    Title,
    Summary,
    Content,
    Categories,
    Author,
    Url,
    /// The entry's tags once tagged (labels): `[[rule]]` only, since tag
    /// rules make them.
    Tags,
}

impl RuleField {
    /// What a `[[tag_rule]]` can look at.
    pub const ALL: [RuleField; 6] = [
        RuleField::Title,
        RuleField::Summary,
        RuleField::Content,
        RuleField::Categories,
        RuleField::Author,
        RuleField::Url,
    ];

    /// What a `[[rule]]` can look at.
    pub const WITH_TAGS: [RuleField; 7] = [
        RuleField::Title,
        RuleField::Summary,
        RuleField::Content,
        RuleField::Categories,
        RuleField::Author,
        RuleField::Url,
        RuleField::Tags,
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
            RuleField::Tags => "tags",
        }
    }

    pub fn from_name(name: &str) -> Option<RuleField> {
        RuleField::WITH_TAGS
            .into_iter()
            .find(|f| f.as_str() == name)
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
    /// `lang`: primary language subtags, lowercase.
    pub languages: Vec<String>,
    pub limit: u32,
    /// Coverage (docs/CONFIG.md "Output feeds"): at least this many outlets,
    /// published within `window`, and the order.
    pub min_outlets: Option<u32>,
    pub window: Option<std::time::Duration>,
    pub sort: crate::model::Sort,
}

impl FeedConfig {
    /// The articles this feed holds, as the store and publisher take it.
    pub fn filter(&self) -> crate::model::Filter {
        crate::model::Filter {
            any: self.any.clone(),
            all: self.all.clone(),
            none: self.none.clone(),
            sources: self.sources.clone(),
            languages: self.languages.clone(),
            min_outlets: self.min_outlets,
            window: self.window,
            sort: self.sort,
        }
    }
}

/// `[[webhook]]`: each new article entering `feed` is POSTed to `url`,
/// signed as Standard Webhooks says, from the store's outbox.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Unique among webhooks (default: the feed's name): the outbox rows,
    /// metrics and `tributary hooks` name it.
    pub name: String,
    /// The `[[feed]]` whose articles it sends, if it names one; the
    /// filter (that feed's, or the webhook's own).
    pub feed: Option<String>,
    pub filter: crate::model::Filter,
    pub url: Url,
    pub secret: WebhookSecret,
    pub format: WebhookFormat,
    /// How long one delivery may take before it counts as failed.
    pub timeout: Duration,
    /// After this long undelivered, a message is given up.
    pub give_up_after: Duration,
}

/// A webhook's signing key: the bytes of `whsec_<base64>`. Never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub std::sync::Arc<[u8]>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "whsec_{}", crate::redact::MASK)
    }
}

/// What a webhook's body is: one JSON Feed item (the default) or one
/// Atom entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    #[default]
    Json,
    Atom,
}

/// `[websub]`: WebSub, both ways (docs/CONFIG.md "WebSub").
#[derive(Debug, Clone, PartialEq)]
pub struct WebsubConfig {
    // --- Publisher and hub (`hub`, routes under /websub/hub) ---
    /// The hub output feeds advertise, if any.
    pub hub: Option<HubMode>,
    /// Self hub: at most this many subscriptions at once.
    pub max_subscriptions: usize,
    /// Self hub: the lease granted when a subscriber asks for none, and
    /// the longest granted.
    pub lease: Duration,
    pub max_lease: Duration,
    /// Self hub: callbacks may be on loopback, private and link-local
    /// addresses (off: only public ones).
    pub private_callbacks: bool,
    /// How long one verification, distribution or ping may take.
    pub timeout: Duration,
    /// A distribution (or ping) undelivered this long is given up.
    pub give_up_after: Duration,

    // --- Subscriber (src/websub.rs): sources that push to us ---
    /// Subscribe to the hubs sources announce; off by default, since the
    /// hub must reach `callback_base` (or `base_url`) from outside.
    pub subscribe: bool,
    /// Where hubs reach our callbacks, when not at `base_url`; ends with `/`.
    pub callback_base: Option<Url>,
    /// How often a source with an active subscription is still polled, at
    /// the least: pushes can be lost, a hub can stop.
    pub fallback_interval: Duration,
    /// The lease asked of hubs (`hub.lease_seconds`); the hub decides.
    pub subscribe_lease: Duration,
}

impl WebsubConfig {
    /// The hub's defaults: subscriptions, leases (the WebSub
    /// recommendation suggests days; ten at most by default), and how long
    /// a distribution is retried (its subscriber re-subscribes within a
    /// lease anyway).
    pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1_000;
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(86_400);
    pub const DEFAULT_MAX_LEASE: Duration = Duration::from_secs(10 * 86_400);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);
    /// The subscriber's defaults.
    pub const DEFAULT_FALLBACK_INTERVAL: Duration = Duration::from_secs(6 * 3600);
    pub const DEFAULT_SUBSCRIBE_LEASE: Duration = Duration::from_secs(7 * 86_400);

    /// The base of callback URLs: `callback_base`, else `base_url`.
    pub fn callback_base<'a>(&'a self, daemon: &'a DaemonConfig) -> &'a Url {
        self.callback_base.as_ref().unwrap_or(&daemon.base_url)
    }
}

impl Default for WebsubConfig {
    fn default() -> Self {
        WebsubConfig {
            hub: None,
            max_subscriptions: WebsubConfig::DEFAULT_MAX_SUBSCRIPTIONS,
            lease: WebsubConfig::DEFAULT_LEASE,
            max_lease: WebsubConfig::DEFAULT_MAX_LEASE,
            private_callbacks: false,
            timeout: WebsubConfig::DEFAULT_TIMEOUT,
            give_up_after: WebsubConfig::DEFAULT_GIVE_UP_AFTER,
            subscribe: false,
            callback_base: None,
            fallback_interval: WebsubConfig::DEFAULT_FALLBACK_INTERVAL,
            subscribe_lease: WebsubConfig::DEFAULT_SUBSCRIBE_LEASE,
        }
    }
}

/// Which hub output feeds advertise.
#[derive(Debug, Clone, PartialEq)]
pub enum HubMode {
    /// An external hub, pinged (`hub.mode=publish`) when feeds change.
    External(Url),
    /// tributary itself, at `{base_url}/websub/hub`.
    Itself,
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
    /// their titles must agree too); a text mostly contained in the other
    /// is one from a lower Jaccard (`cluster::Signature::same_story`). 0.6
    /// measured precision 1.0 on the labelled corpora (BENCHMARKS.md):
    /// distinct stories stay apart.
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

/// `[entities]`: automatic tags for the places, organizations and people
/// an entry is about (docs/TAGS-AND-DEDUP.md "Entity tags").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntitiesConfig {
    /// Off by default; a source's `entities` overrides it.
    pub enabled: bool,
    pub case: LabelCase,
}

impl EntitiesConfig {
    /// Whether entries of `source` get entity tags.
    pub fn for_source(&self, source: &SourceConfig) -> bool {
        source.entities.unwrap_or(self.enabled)
    }
}

/// How entity tag labels are written: `CHINA`, `WANG YI` (the
/// aggregators' shape) or `China`, `Wang Yi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelCase {
    #[default]
    Upper,
    Title,
}

/// `[health]`: the thresholds of the health feed's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Consecutive failures after which a source is failing.
    pub failing_after: i64,
    /// A source with no new entry for this long is quiet.
    pub quiet_after: Duration,
    /// More new entries than this in one fetch is a flood.
    pub flood: i64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failing_after: 3,
            quiet_after: Duration::from_secs(7 * 24 * 3600),
            flood: 200,
        }
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

/// `StateDirectory=tributary` of deploy/tributary.service, as systemd
/// exports it in `$STATE_DIRECTORY`.
pub const UNIT_STATE_DIRECTORY: &str = "/var/lib/tributary";

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// The database `tributary run` opens on this config under
    /// deploy/tributary.service, where systemd sets `$STATE_DIRECTORY` to
    /// [`UNIT_STATE_DIRECTORY`]: for `tributary check` run from a shell,
    /// whose own default (`./tributary.db`) the service does not use.
    pub fn database_under_unit(&self) -> Result<String, ConfigError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| ConfigError::Io {
            file: self.path.display().to_string(),
            source,
        })?;
        Ok(build(&text, &self.path, Some(UNIT_STATE_DIRECTORY))?
            .daemon
            .database)
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
        for rule in &self.rules {
            if rule.action == RuleAction::Drop && rule.newer_than.is_some() {
                warnings.push(format!(
                    "rule {:?} drops by newer_than: an entry is judged when first fetched and stays dropped as it ages (docs/CONFIG.md \"Rules\"); for \"only recent entries\" use a keep rule",
                    rule.name
                ));
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
/// `/etc/tributary/tributary.toml` (docs/CLI.md).
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

#[cfg(test)]
mod tests {
    use super::validate::default_database;
    use super::*;

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
        assert_eq!(source.outlet, "example.org");
        let rule = &config.tag_rules[0];
        assert_eq!(rule.tag, "Xi Jinping");
        assert!(matches!(&rule.matcher, RuleMatcher::Any(words) if words == &["Xi Jinping"]));
        assert_eq!(rule.fields, RuleField::ALL);
        let feed = config.feed("all").unwrap();
        assert_eq!(feed.title, "all");
        assert!(feed.any.is_empty() && feed.all.is_empty() && feed.none.is_empty());
        assert!(feed.sources.is_empty());
        assert_eq!(feed.limit, 50);
        assert_eq!(
            (feed.min_outlets, feed.window, feed.sort),
            (None, None, crate::model::Sort::Published)
        );
    }

    #[test]
    fn full_text_is_never_unless_set_and_takes_three_values() {
        let config = parse(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/rss\"\n\
             [[source]]\nname = \"b\"\nurl = \"https://b.example/rss\"\nfull_text = \"auto\"\n\
             [[source]]\nname = \"c\"\nurl = \"https://c.example/rss\"\nfull_text = \"always\"\n",
        )
        .unwrap();
        let modes: Vec<FullText> = config.sources.iter().map(|s| s.full_text).collect();
        assert_eq!(modes, [FullText::Never, FullText::Auto, FullText::Always]);
        let err = parse(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/rss\"\nfull_text = \"yes\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("4:13") && err.contains("unknown variant `yes`"),
            "{err}"
        );
    }

    #[test]
    fn outlets_default_to_the_host_without_www_and_coverage_keys_are_typed() {
        let text = "[[source]]\nname = \"a\"\nurl = \"https://WWW.rfi.fr/fr/afrique/rss\"\n\
                    [[source]]\nname = \"b\"\nurl = \"https://feeds.bbci.co.uk/news/rss.xml\"\noutlet = \" BBC \"\n\
                    [[feed]]\nname = \"top\"\nmin_outlets = 3\nwindow = \"12h\"\nsort = \"coverage\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.sources[0].outlet, "rfi.fr");
        assert_eq!(config.sources[1].outlet, "bbc");
        let filter = config.feeds[0].filter();
        assert_eq!(filter.min_outlets, Some(3));
        assert_eq!(filter.window, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(filter.sort, crate::model::Sort::Coverage);
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
    fn a_feeds_tags_are_terms_with_aliases_applied_each_once() {
        let config = parse(
            "[[tag_alias]]\ntag = \"US\"\nsame = [\"USA\", \"United States\"]\n\
             [[feed]]\nname = \"us\"\nany = [\"usa\", \"United States\", \"Politics\"]\n",
        )
        .unwrap();
        assert_eq!(config.feeds[0].any, ["us", "politics"]);
    }

    #[test]
    fn a_sources_request_settings_are_checked_where_they_are_written() {
        let source = "[[source]]\nname = \"s\"\nurl = \"https://example.com/feed\"\n";
        let config = parse(&format!(
            "{source}headers = {{ \"X-Api-Key\" = \"k3y\", Accept-Language = \"fr\" }}\n\
             user_agent = \"NewsroomBot/2.0\"\ncookie = \"consent=yes\"\nproxy = \"socks5h://127.0.0.1:1080\"\n"
        ))
        .unwrap();
        let request = &config.sources[0].request;
        assert_eq!(
            request.headers,
            [
                ("accept-language".to_string(), "fr".to_string()),
                ("x-api-key".to_string(), "k3y".to_string())
            ]
        );
        assert_eq!(request.user_agent.as_deref(), Some("NewsroomBot/2.0"));
        assert_eq!(request.proxy.as_ref().unwrap().scheme(), "socks5h");
        // Secrets stay out of anything that prints the config.
        let printed = format!("{:?}", config.sources[0]);
        assert!(
            !printed.contains("k3y") && !printed.contains("consent=yes"),
            "{printed}"
        );
        assert!(printed.contains("x-api-key"), "{printed}");

        for (extra, line_col, message) in [
            (
                "headers = { \"Bad Name\" = \"x\" }",
                "4:11",
                "invalid header name \"Bad Name\"",
            ),
            (
                "headers = { \"If-None-Match\" = \"x\" }",
                "4:11",
                "conditional GET sends the stored ETag",
            ),
            ("headers = { \"Cookie\" = \"x\" }", "4:11", "use `cookie"),
            (
                "headers = { \"X-Key\" = \"line\\nbreak\" }",
                "4:11",
                "header \"X-Key\" has a value that is not valid",
            ),
            (
                "cookie = \"a=1\\tb\\u0001\"",
                "4:10",
                "cookie is not valid in an HTTP header",
            ),
            (
                "proxy = \"ftp://proxy:21\"",
                "4:9",
                "invalid proxy \"ftp://proxy:21\"",
            ),
        ] {
            let error = error_of(&format!("{source}{extra}\n"));
            assert!(error.starts_with(line_col), "{extra}: {error}");
            assert!(error.contains(message), "{extra}: {error}");
        }
        // A secret in a refused value is not quoted back.
        let error = error_of(&format!(
            "{source}headers = {{ \"X-Key\" = \"s3cret\\u0001\" }}\n"
        ));
        assert!(!error.contains("s3cret"), "{error}");
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
            ("[[feed]]\nname = \"x\"\nmin_outlets = 0\n".into(), "3:15: min_outlets must be between 1 and 10000, got 0"),
            ("[[feed]]\nname = \"x\"\nwindow = \"31d\"\n".into(), "3:10: window must be at most 30d"),
            ("[[feed]]\nname = \"x\"\nwindow = \"0s\"\n".into(), "3:10: window must be greater than 0"),
            ("[[feed]]\nname = \"x\"\nsort = \"popular\"\n".into(), "3:8: sort must be \"published\" or \"coverage\", got \"popular\""),
            (format!("{SOURCE}outlet = \" \"\n"), "4:10: outlet must not be empty"),
            // [dedup].
            ("[dedup]\nthreshold = 1.5\n".into(), "2:13: threshold must be above 0 and at most 1"),
            // [health].
            ("[health]\nfailing_after = 0\n".into(), "2:17: failing_after must be between 1 and 1000, got 0"),
            ("[health]\nquiet_after = \"0s\"\n".into(), "2:15: quiet_after must be greater than 0"),
            ("[health]\nflood = -1\n".into(), "2:9: flood must be between 1 and 1000000, got -1"),
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
    fn websub_subscriber_keys() {
        let config = parse("[daemon]\nbase_url = \"https://news.example/\"\n").unwrap();
        assert_eq!(config.websub, WebsubConfig::default());
        assert!(!config.websub.subscribe, "off by default");
        assert_eq!(
            config.websub.callback_base(&config.daemon).as_str(),
            "https://news.example/"
        );
        let config = parse(
            "[websub]\nsubscribe = true\ncallback_base = \"https://push.example/t\"\n\
             fallback_interval = \"3h\"\nsubscribe_lease = \"1d\"\n",
        )
        .unwrap();
        assert!(config.websub.subscribe);
        assert_eq!(
            config.websub.callback_base(&config.daemon).as_str(),
            "https://push.example/t/"
        );
        assert_eq!(
            config.websub.fallback_interval,
            Duration::from_secs(3 * 3600)
        );
        assert_eq!(config.websub.subscribe_lease, Duration::from_secs(86_400));
        assert!(error_of("[websub]\ncallback_base = \"ftp://x/\"\n").contains("callback_base"));
        assert!(error_of("[websub]\nfallback_interval = \"0s\"\n").contains("greater than 0"));
        assert!(error_of("[websub]\nsubscribe = 1\n").contains("2:13"));
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
        assert_eq!(config.feed("francais").unwrap().languages, ["fr"]);
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
    /// with a wide margin (this takes a few seconds in a debug build, and
    /// over 30 s on a machine busy with other builds), not a performance
    /// assertion.
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
            .recv_timeout(Duration::from_secs(180))
            .expect("validating 50,000 sources did not finish in 3 minutes");
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
