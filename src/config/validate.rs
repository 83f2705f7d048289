//! The file as written (`Raw*` mirrors of its tables, `deny_unknown_fields`,
//! values wrapped in [`Spanned`] where they need checking) and `Checker`,
//! which validates them once into the public types of [`super`], every
//! error positioned as `FILE:LINE:COL`. The raw layer never leaves here.

use serde::{de, Deserialize, Deserializer};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;
use url::Url;

use super::*;

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
const DEFAULT_PARSE_BUDGET: Duration = Duration::from_secs(20);
const DEFAULT_AUTHOR: &str = "tributary";
const DEFAULT_FEED_LIMIT: u32 = 50;
const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_WEBHOOK_GIVE_UP: Duration = Duration::from_secs(3 * 86_400);
/// Bounds that keep a webhook's leases and retries within a sane time (and
/// their arithmetic far from overflowing); delivered messages are kept 30
/// days.
const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_WEBHOOK_GIVE_UP: Duration = Duration::from_secs(30 * 86_400);
const MAX_FEED_LIMIT: i64 = 500;
/// `[websub]`'s hub: subscriptions, leases (the WebSub recommendation
/// suggests days; ten by default at most) and how long a distribution is
/// retried (its subscriber re-subscribes within a lease anyway).
const MAX_MAX_SUBSCRIPTIONS: i64 = 1_000_000;
const MAX_LEASE: Duration = Duration::from_secs(365 * 86_400);
const MIN_LEASE: Duration = Duration::from_secs(60);
/// Far beyond any sane fan-out, and well below what a semaphore accepts.
const MAX_CONCURRENCY: i64 = 10_000;
/// The compiled size a config's regex may take: far above any real
/// pattern (a Unicode `\\w+` is a few hundred KiB), well below harm.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// `$STATE_DIRECTORY/tributary.db` under systemd (`StateDirectory=`; the
/// first one when several are listed), else `./tributary.db`.
pub(super) fn default_database(state_directory: Option<&str>) -> String {
    match state_directory
        .and_then(|dirs| dirs.split(':').next())
        .map(|dir| dir.trim_end_matches('/'))
        .filter(|dir| !dir.is_empty())
    {
        Some(dir) => format!("sqlite://{dir}/tributary.db"),
        None => "sqlite://tributary.db".to_string(),
    }
}

pub(super) fn build(
    text: &str,
    path: &Path,
    state_directory: Option<&str>,
) -> Result<Config, ConfigError> {
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
    let rules = check.rules(raw.rule, &sources)?;
    let feeds = check.feeds(raw.feed, &sources, &tag_aliases)?;
    let webhooks = check.webhooks(raw.webhook, &feeds, &sources, &tag_aliases)?;
    let dedup = check.dedup(raw.dedup.unwrap_or_default())?;
    let health = check.health(raw.health.unwrap_or_default())?;
    let entities = raw
        .entities
        .map_or_else(Default::default, |raw| EntitiesConfig {
            enabled: raw.enabled.unwrap_or(false),
            case: raw.case.unwrap_or_default(),
        });
    let websub = check.websub(raw.websub.unwrap_or_default())?;
    Ok(Config {
        path: path.to_path_buf(),
        daemon,
        sources,
        tag_rules,
        feeds,
        webhooks,
        tag_aliases,
        rules,
        dedup,
        health,
        entities,
        websub,
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
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    feed: Vec<Spanned<RawFeed>>,
    #[serde(default)]
    webhook: Vec<Spanned<RawWebhook>>,
    #[serde(default)]
    tag_alias: Vec<RawTagAlias>,
    dedup: Option<RawDedup>,
    health: Option<RawHealth>,
    entities: Option<RawEntities>,
    websub: Option<RawWebsub>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebsub {
    // Publisher and hub.
    hub: Option<Spanned<String>>,
    max_subscriptions: Option<Spanned<i64>>,
    lease: Option<Spanned<ConfigDuration>>,
    max_lease: Option<Spanned<ConfigDuration>>,
    private_callbacks: Option<bool>,
    timeout: Option<Spanned<ConfigDuration>>,
    give_up_after: Option<Spanned<ConfigDuration>>,
    // Subscriber.
    subscribe: Option<bool>,
    callback_base: Option<CallbackBase>,
    fallback_interval: Option<Spanned<ConfigDuration>>,
    subscribe_lease: Option<Spanned<ConfigDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntities {
    enabled: Option<bool>,
    case: Option<LabelCase>,
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
    base_url: Option<BaseUrl>,
    schedule: Option<Schedule>,
    concurrency: Option<Spanned<i64>>,
    per_host: Option<Spanned<i64>>,
    timeout: Option<Spanned<ConfigDuration>>,
    max_body: Option<Spanned<ByteSize>>,
    retention: Option<Spanned<ConfigDuration>>,
    prune_schedule: Option<Schedule>,
    tombstone_retention: Option<Spanned<ConfigDuration>>,
    user_agent: Option<String>,
    author: Option<String>,
    log_level: Option<Spanned<String>>,
    respect_cache_headers: Option<bool>,
    pool_size: Option<Spanned<i64>>,
    statement_timeout: Option<Spanned<ConfigDuration>>,
    strip_remote_images: Option<bool>,
    parse_budget: Option<Spanned<ConfigDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<SourceName>,
    url: Spanned<SourceLocation>,
    public_url: Option<PublicUrl>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    schedule: Option<Schedule>,
    enabled: Option<bool>,
    allow_private_redirects: Option<bool>,
    headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    user_agent: Option<Spanned<String>>,
    cookie: Option<Spanned<String>>,
    proxy: Option<ProxyUrl>,
    rewrite_title: Option<RawRewrite>,
    rewrite_link: Option<RawRewrite>,
    remove_selectors: Option<Vec<Spanned<String>>>,
    language: Option<Spanned<String>>,
    outlet: Option<Spanned<String>>,
    full_text: Option<crate::config::FullText>,
    entities: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRewrite {
    regex: Spanned<String>,
    with: String,
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
struct RawRule {
    name: Option<Spanned<RuleName>>,
    action: Spanned<String>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    any: Option<Spanned<Vec<Spanned<String>>>>,
    regex: Option<Spanned<String>>,
    fields: Option<Spanned<Vec<Spanned<String>>>>,
    older_than: Option<Spanned<ConfigDuration>>,
    newer_than: Option<Spanned<ConfigDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Spanned<FeedName>,
    title: Option<String>,
    #[serde(default)]
    any: Vec<Spanned<String>>,
    #[serde(default)]
    all: Vec<Spanned<String>>,
    #[serde(default)]
    none: Vec<Spanned<String>>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    lang: Vec<Spanned<String>>,
    limit: Option<Spanned<i64>>,
    min_outlets: Option<Spanned<i64>>,
    window: Option<Spanned<ConfigDuration>>,
    sort: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Option<Spanned<FeedName>>,
    /// A `[[feed]]`'s name, or the filter keys below (as a feed's).
    feed: Option<Spanned<String>>,
    #[serde(default)]
    any: Vec<Spanned<String>>,
    #[serde(default)]
    all: Vec<Spanned<String>>,
    #[serde(default)]
    none: Vec<Spanned<String>>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    lang: Vec<Spanned<String>>,
    url: Spanned<WebhookUrl>,
    secret: Spanned<String>,
    format: Option<Spanned<String>>,
    timeout: Option<Spanned<ConfigDuration>>,
    give_up_after: Option<Spanned<ConfigDuration>>,
}

/// A webhook's `url`: http(s), read like a source's.
struct WebhookUrl(Url);

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        http_url(&text, "url").map(WebhookUrl)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDedup {
    enabled: Option<bool>,
    threshold: Option<Spanned<f64>>,
    window: Option<Spanned<ConfigDuration>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    failing_after: Option<Spanned<i64>>,
    quiet_after: Option<Spanned<ConfigDuration>>,
    flood: Option<Spanned<i64>>,
}

/// Bounds of `[health]`'s counts: past these an event could never fire.
const MAX_FAILING_AFTER: i64 = 1_000;
const MAX_FLOOD: i64 = 1_000_000;

/// What a source or feed name may be: `[a-z0-9_-]+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A `[[source]]`'s name as the file writes it ([`is_valid_name`]); reads
/// itself, so toml positions its error at the value. Unique among sources:
/// [`Checker::unique_name`].
struct SourceName(String);

/// A `[[feed]]`'s name, the same way.
struct FeedName(String);

/// A `[[rule]]`'s `name`, the same way (it is a `/metrics` label).
struct RuleName(String);

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        valid_name(deserializer, "rule").map(RuleName)
    }
}

impl<'de> Deserialize<'de> for SourceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        valid_name(deserializer, "source").map(SourceName)
    }
}

impl<'de> Deserialize<'de> for FeedName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        valid_name(deserializer, "feed").map(FeedName)
    }
}

fn valid_name<'de, D: Deserializer<'de>>(deserializer: D, kind: &str) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if !is_valid_name(&text) {
        return Err(de::Error::custom(format!(
            "invalid {kind} name {text:?}: use lowercase letters, digits, `-` and `_`"
        )));
    }
    Ok(text)
}

/// `base_url`: an absolute http(s) URL without a query or fragment (feed
/// URLs are joined onto it), and its text as written.
struct BaseUrl {
    text: String,
    url: Url,
}

/// `[websub] callback_base`: as `base_url`, callback paths are joined onto it.
struct CallbackBase(Url);

impl<'de> Deserialize<'de> for CallbackBase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = http_url(&text, "callback_base")?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(de::Error::custom(format!(
                "invalid callback_base {text:?}: must not have a query or fragment"
            )));
        }
        Ok(CallbackBase(url))
    }
}

/// `public_url`: an absolute http(s) URL.
struct PublicUrl(Url);

/// A source's `proxy`: http, https, socks5 or socks5h.
struct ProxyUrl(Url);

/// A `[[source]]`'s `url`: an absolute http(s) URL, or the path of a
/// `file:` URL, which the checker resolves against the config's directory.
enum SourceLocation {
    Http(Url),
    File(String),
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = http_url(&text, "base_url")?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(de::Error::custom(format!(
                "invalid base_url {text:?}: must not have a query or fragment"
            )));
        }
        Ok(BaseUrl { text, url })
    }
}

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        http_url(&text, "public_url").map(PublicUrl)
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match Url::parse(&text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h")
                    && url.has_host() =>
            {
                Ok(ProxyUrl(url))
            }
            _ => Err(de::Error::custom(format!(
                "invalid proxy {:?}: expected http://, https://, socks5:// or socks5h://HOST:PORT",
                crate::redact::public_url(&text)
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for SourceLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.strip_prefix("file:") {
            Some(path) => Ok(SourceLocation::File(path.to_string())),
            None => http_url(&text, "url").map(SourceLocation::Http),
        }
    }
}

/// An absolute http(s) URL, or an error naming `key` (no credentials in a
/// URL that parsed).
fn http_url<E: de::Error>(text: &str, key: &str) -> Result<Url, E> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        Ok(_) => Err(E::custom(format!(
            "invalid {key} {:?}: must be an http or https URL",
            crate::redact::public_url(text)
        ))),
        Err(e) => Err(E::custom(format!(
            "invalid {key} {text:?}: {e}; expected an absolute http or https URL"
        ))),
    }
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

    /// `[daemon]`, one key after another: of several mistakes, the first
    /// checked is reported.
    fn daemon(
        &self,
        raw: RawDaemon,
        state_directory: Option<&str>,
    ) -> Result<DaemonConfig, ConfigError> {
        let database = match raw.database {
            Some(database) => self.database(database)?,
            None => default_database(state_directory),
        };
        let listen_span = raw.listen.as_ref().map_or(0..0, |l| l.span());
        let listen = match raw.listen {
            Some(listen) => self.listen(listen)?,
            None => DEFAULT_LISTEN.to_string(),
        };
        let (base_url_text, base_url) = match raw.base_url {
            Some(BaseUrl { text, url }) => (text, url),
            None => self.base_url_from_listen(&listen, listen_span)?,
        };
        Ok(DaemonConfig {
            database,
            listen,
            base_url: with_trailing_slash(base_url),
            schedule: raw
                .schedule
                .unwrap_or_else(|| default_schedule(DEFAULT_SCHEDULE)),
            concurrency: self.count(raw.concurrency, "concurrency", DEFAULT_CONCURRENCY)?,
            per_host: self.count(raw.per_host, "per_host", DEFAULT_PER_HOST)?,
            timeout: self.duration(raw.timeout, "timeout", DEFAULT_TIMEOUT)?,
            retention: self.duration(raw.retention, "retention", DEFAULT_RETENTION)?,
            prune_schedule: raw
                .prune_schedule
                .unwrap_or_else(|| default_schedule(DEFAULT_PRUNE_SCHEDULE)),
            tombstone_retention: self.duration(
                raw.tombstone_retention,
                "tombstone_retention",
                DEFAULT_TOMBSTONE_RETENTION,
            )?,
            pool_size: match raw.pool_size {
                Some(n) => Some(self.count(Some(n), "pool_size", 0)? as u32),
                None => None,
            },
            statement_timeout: self.duration(
                raw.statement_timeout,
                "statement_timeout",
                DEFAULT_STATEMENT_TIMEOUT,
            )?,
            max_body: self.max_body(raw.max_body)?,
            user_agent: raw
                .user_agent
                .unwrap_or_else(|| default_user_agent(&base_url_text)),
            author: raw.author.unwrap_or_else(|| DEFAULT_AUTHOR.to_string()),
            log_level: match raw.log_level {
                Some(level) => Some(self.log_level(level)?),
                None => None,
            },
            respect_cache_headers: raw.respect_cache_headers.unwrap_or(true),
            strip_remote_images: raw.strip_remote_images.unwrap_or(false),
            parse_budget: self.duration(raw.parse_budget, "parse_budget", DEFAULT_PARSE_BUDGET)?,
        })
    }

    /// `sqlite:…`, `postgres://…` or `postgresql://…`.
    fn database(&self, database: Spanned<String>) -> Result<String, ConfigError> {
        let known = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database.get_ref().starts_with(scheme));
        if !known {
            return Err(self.error(
                database.span(),
                format!(
                    "invalid database {:?}: expected sqlite://FILE or postgres://…",
                    database.get_ref()
                ),
            ));
        }
        Ok(database.into_inner())
    }

    fn listen(&self, listen: Spanned<String>) -> Result<String, ConfigError> {
        if !is_listen_address(listen.get_ref()) {
            return Err(self.error(
                listen.span(),
                format!(
                    "invalid listen address {:?}: expected HOST:PORT, e.g. \"127.0.0.1:8080\"",
                    listen.get_ref()
                ),
            ));
        }
        Ok(listen.into_inner())
    }

    /// Without `base_url`, feeds link to the listen address.
    fn base_url_from_listen(
        &self,
        listen: &str,
        listen_span: Range<usize>,
    ) -> Result<(String, Url), ConfigError> {
        let text = format!("http://{listen}");
        // `listen` was checked, but a host name may still not make a URL.
        let url = Url::parse(&text).map_err(|e| {
            self.error(
                listen_span,
                format!("cannot derive base_url from listen {listen:?} ({e}); set base_url"),
            )
        })?;
        Ok((text, url))
    }

    fn max_body(&self, value: Option<Spanned<ByteSize>>) -> Result<u64, ConfigError> {
        match value {
            None => Ok(DEFAULT_MAX_BODY),
            Some(value) => match value.get_ref() {
                ByteSize(0) => Err(self.error(value.span(), "max_body must be greater than 0")),
                ByteSize(bytes) => Ok(*bytes),
            },
        }
    }

    /// A `tracing` filter (`info`, `tributary=debug,sqlx=warn`).
    fn log_level(&self, level: Spanned<String>) -> Result<String, ConfigError> {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(level.get_ref()) {
            return Err(self.error(
                level.span(),
                format!("invalid log_level {:?}: {e}", level.get_ref()),
            ));
        }
        Ok(level.into_inner())
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
            let name = self.unique_name(
                &source.name.get_ref().0,
                source.name.span(),
                "source",
                &mut seen,
            )?;
            let url = self.source_url(&source.url)?;
            let public_url = source.public_url.as_ref().map(|p| p.0.clone());
            let tags = source
                .tags
                .iter()
                .map(|tag| self.label(tag, "tag"))
                .collect::<Result<_, _>>()?;
            let schedule = source
                .schedule
                .clone()
                .unwrap_or_else(|| default_schedule.clone());
            if let Some(public_url) = &public_url {
                crate::redact::declare(&url, public_url);
            }
            sources.push(SourceConfig {
                name,
                public_url,
                tags,
                schedule,
                enabled: source.enabled.unwrap_or(true),
                allow_private_redirects: source.allow_private_redirects.unwrap_or(false),
                request: self.source_request(&source)?,
                rewrite_title: self.rewrite(source.rewrite_title.as_ref())?,
                rewrite_link: self.rewrite(source.rewrite_link.as_ref())?,
                remove_selectors: self.remove_selectors(source.remove_selectors.as_deref())?,
                language: match &source.language {
                    None => None,
                    Some(lang) => Some(
                        crate::text::language_tag(lang.get_ref())
                            .ok_or_else(|| self.not_a_language(lang))?,
                    ),
                },
                outlet: match &source.outlet {
                    Some(outlet) => {
                        let trimmed = outlet.get_ref().trim();
                        if trimmed.is_empty() {
                            return Err(self.error(outlet.span(), "outlet must not be empty"));
                        }
                        trimmed.to_lowercase()
                    }
                    None => crate::config::default_outlet(&url),
                },
                full_text: source.full_text.unwrap_or_default(),
                entities: source.entities,
                url,
            });
        }
        Ok(sources)
    }

    fn tag_rule(&self, raw: Spanned<RawTagRule>) -> Result<TagRuleConfig, ConfigError> {
        let table = raw.span();
        let rule = raw.into_inner();
        let tag = self.label(&rule.tag, "tag")?;
        let what = format!("tag_rule {tag:?}");
        let matcher = match self.matcher(&what, rule.any, rule.regex)? {
            Some(matcher) => matcher,
            None => {
                return Err(self.error(
                    table,
                    format!("{what} needs `any` (words or phrases) or `regex`"),
                ))
            }
        };
        let fields = self.fields(rule.fields, &RuleField::ALL)?;
        Ok(TagRuleConfig {
            tag,
            matcher,
            fields,
        })
    }

    /// `any` or `regex` (not both), if either is there.
    fn matcher(
        &self,
        what: &str,
        any: Option<Spanned<Vec<Spanned<String>>>>,
        regex: Option<Spanned<String>>,
    ) -> Result<Option<RuleMatcher>, ConfigError> {
        Ok(match (any, regex) {
            (Some(_), Some(regex)) => {
                return Err(self.error(
                    regex.span(),
                    format!("{what} has both `any` and `regex`; keep one"),
                ))
            }
            (None, None) => None,
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
                Some(RuleMatcher::Any(words))
            }
            (None, Some(regex)) => Some(RuleMatcher::Regex(self.regex(&regex)?)),
        })
    }

    /// A rule's `fields`, each once, from `allowed`; all of them when left
    /// out.
    fn fields(
        &self,
        raw: Option<Spanned<Vec<Spanned<String>>>>,
        allowed: &[RuleField],
    ) -> Result<Vec<RuleField>, ConfigError> {
        let Some(fields) = raw else {
            return Ok(allowed.to_vec());
        };
        if fields.get_ref().is_empty() {
            return Err(self.error(
                fields.span(),
                "`fields` must not be empty; leave it out to look everywhere",
            ));
        }
        let mut parsed = Vec::new();
        for field in fields.get_ref() {
            if RuleField::from_name(field.get_ref()) == Some(RuleField::Tags)
                && !allowed.contains(&RuleField::Tags)
            {
                return Err(self.error(
                    field.span(),
                    "a tag_rule cannot look at `tags`: it makes them (a [[rule]] can)",
                ));
            }
            let Some(f) = RuleField::from_name(field.get_ref()).filter(|f| allowed.contains(f))
            else {
                let expected: Vec<&str> = allowed.iter().map(|f| f.as_str()).collect();
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
        Ok(parsed)
    }

    /// `[[rule]]`s: named (`rule-N` by position unless written), unique,
    /// scoped to configured sources, with at least one condition.
    fn rules(
        &self,
        raw: Vec<Spanned<RawRule>>,
        sources: &[SourceConfig],
    ) -> Result<Vec<RuleConfig>, ConfigError> {
        let known: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut rules = Vec::with_capacity(raw.len());
        for (position, rule) in raw.into_iter().enumerate() {
            let table = rule.span();
            let rule = rule.into_inner();
            let (name, span) = match &rule.name {
                Some(name) => (name.get_ref().0.clone(), name.span()),
                None => (format!("rule-{}", position + 1), table.clone()),
            };
            if name == crate::config::NOT_KEPT {
                return Err(self.error(
                    span,
                    format!("rule name {name:?} is reserved for entries no keep rule kept"),
                ));
            }
            let name = self.unique_name(&name, span, "rule", &mut seen)?;
            let what = format!("rule {name:?}");
            let action = match rule.action.get_ref().as_str() {
                "drop" => RuleAction::Drop,
                "keep" => RuleAction::Keep,
                other => {
                    return Err(self.error(
                        rule.action.span(),
                        format!("{what}: action {other:?} must be \"drop\" or \"keep\""),
                    ))
                }
            };
            let mut scope = Vec::new();
            for source in &rule.sources {
                if !known.contains(source.get_ref().as_str()) {
                    return Err(self.error(
                        source.span(),
                        format!("{what}: no source named {:?}", source.get_ref()),
                    ));
                }
                if !scope.contains(source.get_ref()) {
                    scope.push(source.get_ref().clone());
                }
            }
            let matcher = self.matcher(&what, rule.any, rule.regex)?;
            let has_matcher = matcher.is_some();
            if !has_matcher {
                if let Some(fields) = &rule.fields {
                    return Err(self.error(
                        fields.span(),
                        format!("{what}: `fields` needs `any` or `regex` to look for"),
                    ));
                }
            }
            let fields = self.fields(rule.fields, &RuleField::WITH_TAGS)?;
            let older_than = self.age(rule.older_than, "older_than")?;
            let newer_than = self.age(rule.newer_than, "newer_than")?;
            if !has_matcher && older_than.is_none() && newer_than.is_none() {
                return Err(self.error(
                    table,
                    format!("{what} needs `any`, `regex`, `older_than` or `newer_than`"),
                ));
            }
            rules.push(RuleConfig {
                name,
                action,
                sources: scope,
                matcher,
                fields,
                older_than,
                newer_than,
            });
        }
        Ok(rules)
    }

    fn age(
        &self,
        value: Option<Spanned<ConfigDuration>>,
        key: &str,
    ) -> Result<Option<Duration>, ConfigError> {
        value
            .map(|v| self.duration(Some(v), key, Duration::ZERO))
            .transpose()
    }

    /// `[[feed]]`s: their sources must be configured ones; their tags are
    /// terms, aliases applied.
    fn feeds(
        &self,
        raw: Vec<Spanned<RawFeed>>,
        sources: &[SourceConfig],
        aliases: &[TagAliasConfig],
    ) -> Result<Vec<FeedConfig>, ConfigError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let known: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut feeds = Vec::with_capacity(raw.len());
        for feed in raw {
            let feed = feed.into_inner();
            let name =
                self.unique_name(&feed.name.get_ref().0, feed.name.span(), "feed", &mut seen)?;
            let feed_sources =
                self.known_sources(&feed.sources, &known, &format!("feed {name:?}"))?;
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
            let min_outlets = match feed.min_outlets {
                None => None,
                Some(n) => match u32::try_from(*n.get_ref()) {
                    Ok(m) if (1..=crate::model::Filter::MAX_MIN_OUTLETS).contains(&m) => Some(m),
                    _ => {
                        return Err(self.error(
                            n.span(),
                            format!(
                                "min_outlets must be between 1 and {}, got {}",
                                crate::model::Filter::MAX_MIN_OUTLETS,
                                n.get_ref()
                            ),
                        ))
                    }
                },
            };
            let window = match feed.window {
                None => None,
                Some(w) => {
                    let max = crate::model::Filter::MAX_WINDOW;
                    let window = self.duration(Some(w.clone()), "window", max)?;
                    if window > max {
                        return Err(self.error(
                            w.span(),
                            format!(
                                "window must be at most {}",
                                crate::model::format_window(max)
                            ),
                        ));
                    }
                    Some(window)
                }
            };
            let sort = match &feed.sort {
                None => crate::model::Sort::Published,
                Some(sort) => crate::model::Sort::from_name(sort.get_ref()).ok_or_else(|| {
                    self.error(
                        sort.span(),
                        format!(
                            "sort must be \"published\" or \"coverage\", got {:?}",
                            sort.get_ref()
                        ),
                    )
                })?,
            };
            feeds.push(FeedConfig {
                min_outlets,
                window,
                sort,
                title: feed.title.unwrap_or_else(|| name.clone()),
                any: self.terms(&feed.any, aliases)?,
                all: self.terms(&feed.all, aliases)?,
                none: self.terms(&feed.none, aliases)?,
                sources: feed_sources,
                languages: self.languages(&feed.lang)?,
                limit,
                name,
            });
        }
        Ok(feeds)
    }

    /// `[[webhook]]`s: each names a configured `[[feed]]` without coverage
    /// conditions (a story's outlets grow after it is stored: "new
    /// article with 3 outlets" has no moment to send it at), or has a
    /// feed's tag, source and language filter of its own (and then a
    /// `name`); and a secret as Standard Webhooks writes it.
    fn webhooks(
        &self,
        raw: Vec<Spanned<RawWebhook>>,
        feeds: &[FeedConfig],
        sources: &[SourceConfig],
        aliases: &[TagAliasConfig],
    ) -> Result<Vec<WebhookConfig>, ConfigError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let known: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut webhooks = Vec::with_capacity(raw.len());
        for spanned in raw {
            let span = spanned.span();
            let hook = spanned.into_inner();
            let own_filter = !(hook.any.is_empty()
                && hook.all.is_empty()
                && hook.none.is_empty()
                && hook.sources.is_empty()
                && hook.lang.is_empty());
            let (feed, filter, default_name) = match &hook.feed {
                Some(feed_key) => {
                    let feed_name = feed_key.get_ref();
                    if own_filter {
                        return Err(self.error(
                            feed_key.span(),
                            "a webhook takes `feed` or its own any/all/none/sources/lang, not both",
                        ));
                    }
                    let Some(feed) = feeds.iter().find(|f| &f.name == feed_name) else {
                        return Err(self.error(
                            feed_key.span(),
                            format!("unknown feed {feed_name:?} in webhook: name a [[feed]]"),
                        ));
                    };
                    if feed.min_outlets.is_some()
                        || feed.window.is_some()
                        || feed.sort != crate::model::Sort::Published
                    {
                        return Err(self.error(
                            feed_key.span(),
                            format!(
                                "feed {feed_name:?} has coverage conditions (min_outlets, window or sort): \
                                 a webhook sends each article once, when it is stored, so it takes feeds without them"
                            ),
                        ));
                    }
                    (
                        Some(feed.name.clone()),
                        feed.filter(),
                        Some((feed.name.clone(), feed_key.span())),
                    )
                }
                None => {
                    let names = self.known_sources(&hook.sources, &known, "webhook")?;
                    let filter = crate::model::Filter {
                        any: self.terms(&hook.any, aliases)?,
                        all: self.terms(&hook.all, aliases)?,
                        none: self.terms(&hook.none, aliases)?,
                        sources: names,
                        languages: self.languages(&hook.lang)?,
                        ..crate::model::Filter::default()
                    };
                    (None, filter, None)
                }
            };
            let (name, span) = match (&hook.name, default_name) {
                (Some(name), _) => (name.get_ref().0.clone(), name.span()),
                (None, Some(default)) => default,
                (None, None) => return Err(self.error(
                    span,
                    "a webhook without `feed` needs a `name` (lowercase letters, digits, - and _)",
                )),
            };
            let name = self.unique_name(&name, span, "webhook", &mut seen)?;
            let secret = self.webhook_secret(&hook.secret)?;
            let format = match &hook.format {
                None => WebhookFormat::Json,
                Some(f) => match f.get_ref().as_str() {
                    "json" => WebhookFormat::Json,
                    "atom" => WebhookFormat::Atom,
                    other => {
                        return Err(self.error(
                            f.span(),
                            format!("format must be \"json\" or \"atom\", got {other:?}"),
                        ))
                    }
                },
            };
            webhooks.push(WebhookConfig {
                name,
                feed,
                filter,
                url: hook.url.into_inner().0,
                secret,
                format,
                timeout: self.at_most(
                    hook.timeout,
                    "timeout",
                    DEFAULT_WEBHOOK_TIMEOUT,
                    MAX_WEBHOOK_TIMEOUT,
                )?,
                give_up_after: self.at_most(
                    hook.give_up_after,
                    "give_up_after",
                    DEFAULT_WEBHOOK_GIVE_UP,
                    MAX_WEBHOOK_GIVE_UP,
                )?,
            });
        }
        Ok(webhooks)
    }

    /// A duration above 0 and at most `max` ("1h", "30d" in the message).
    fn at_most(
        &self,
        value: Option<Spanned<ConfigDuration>>,
        key: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let span = value.as_ref().map(|v| v.span());
        let duration = self.duration(value, key, default)?;
        match span {
            Some(span) if duration > max => Err(self.error(
                span,
                format!("{key} must be at most {}", crate::model::format_window(max)),
            )),
            _ => Ok(duration),
        }
    }

    /// `whsec_` and the base64 of 24 to 64 random bytes, as Standard
    /// Webhooks writes a symmetric secret; anything else is refused, so a
    /// receiver's library verifies what we sign. The error never repeats
    /// the value.
    fn webhook_secret(&self, secret: &Spanned<String>) -> Result<WebhookSecret, ConfigError> {
        use base64::Engine;
        let refuse = |why: &str| {
            self.error(
                secret.span(),
                format!(
                    "invalid webhook secret: {why}; write it as Standard Webhooks does, \
                     whsec_ and the base64 of 24 to 64 random bytes \
                     (e.g. whsec_$(openssl rand -base64 32))"
                ),
            )
        };
        let Some(encoded) = secret.get_ref().trim().strip_prefix("whsec_") else {
            return Err(refuse("it does not start with whsec_"));
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| refuse("what follows whsec_ is not base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(refuse(&format!("its key is {} bytes", key.len())));
        }
        Ok(WebhookSecret(key.into()))
    }

    /// A `sources` list of configured source names, each once, in order;
    /// an unknown one is an error at its place (`owner` says whose list).
    fn known_sources(
        &self,
        raw: &[Spanned<String>],
        known: &HashSet<&str>,
        owner: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let mut names: Vec<String> = Vec::with_capacity(raw.len());
        for source in raw {
            if !known.contains(source.get_ref().as_str()) {
                return Err(self.error(
                    source.span(),
                    format!("unknown source {:?} in {owner}", source.get_ref()),
                ));
            }
            if !names.contains(source.get_ref()) {
                names.push(source.get_ref().clone());
            }
        }
        Ok(names)
    }

    /// A feed's `lang`: language tags, lowercase (they match an article's
    /// language and its regional variants).
    fn languages(&self, raw: &[Spanned<String>]) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for lang in raw {
            let Some(tag) = crate::text::language_key(lang.get_ref()) else {
                return Err(self.not_a_language(lang));
            };
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        Ok(out)
    }

    fn not_a_language(&self, lang: &Spanned<String>) -> ConfigError {
        self.error(
            lang.span(),
            format!(
                "{:?} is not a language tag (ISO 639 code such as \"en\" or \"fr\", optionally with a region: \"pt-BR\")",
                lang.get_ref()
            ),
        )
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

    fn health(&self, raw: RawHealth) -> Result<HealthConfig, ConfigError> {
        let defaults = HealthConfig::default();
        let bounded = |value: Option<Spanned<i64>>, key: &str, max: i64, default: i64| {
            let Some(value) = value else {
                return Ok(default);
            };
            let n = *value.get_ref();
            if !(1..=max).contains(&n) {
                return Err(self.error(
                    value.span(),
                    format!("{key} must be between 1 and {max}, got {n}"),
                ));
            }
            Ok(n)
        };
        Ok(HealthConfig {
            failing_after: bounded(
                raw.failing_after,
                "failing_after",
                MAX_FAILING_AFTER,
                defaults.failing_after,
            )?,
            quiet_after: self.duration(raw.quiet_after, "quiet_after", defaults.quiet_after)?,
            flood: bounded(raw.flood, "flood", MAX_FLOOD, defaults.flood)?,
        })
    }

    /// `[websub]`: the publisher and hub keys, then the subscriber's.
    fn websub(&self, raw: RawWebsub) -> Result<WebsubConfig, ConfigError> {
        let subscribe_lease = self.duration(
            raw.subscribe_lease,
            "subscribe_lease",
            WebsubConfig::DEFAULT_SUBSCRIBE_LEASE,
        )?;
        let hub = match &raw.hub {
            None => None,
            Some(hub) if hub.get_ref() == "self" => Some(HubMode::Itself),
            Some(hub) => match Url::parse(hub.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                    Some(HubMode::External(url))
                }
                _ => {
                    return Err(self.error(
                        hub.span(),
                        "hub must be an absolute http or https URL, or \"self\" for tributary's own hub",
                    ))
                }
            },
        };
        let max_subscriptions = match raw.max_subscriptions {
            None => WebsubConfig::DEFAULT_MAX_SUBSCRIPTIONS as i64,
            Some(n) if (1..=MAX_MAX_SUBSCRIPTIONS).contains(n.get_ref()) => *n.get_ref(),
            Some(n) => {
                return Err(self.error(
                    n.span(),
                    format!(
                        "max_subscriptions must be between 1 and {MAX_MAX_SUBSCRIPTIONS}, got {}",
                        n.get_ref()
                    ),
                ))
            }
        };
        let max_lease = self.at_most(
            raw.max_lease,
            "max_lease",
            WebsubConfig::DEFAULT_MAX_LEASE,
            MAX_LEASE,
        )?;
        let lease_span = raw.lease.as_ref().map(|l| l.span());
        let lease = self.at_most(
            raw.lease,
            "lease",
            WebsubConfig::DEFAULT_LEASE.min(max_lease),
            max_lease,
        )?;
        if let Some(span) = lease_span.filter(|_| lease < MIN_LEASE) {
            return Err(self.error(span, "lease must be at least 1m"));
        }
        Ok(WebsubConfig {
            hub,
            max_subscriptions: usize::try_from(max_subscriptions).unwrap_or(1),
            lease,
            max_lease,
            private_callbacks: raw.private_callbacks.unwrap_or(false),
            timeout: self.at_most(
                raw.timeout,
                "timeout",
                WebsubConfig::DEFAULT_TIMEOUT,
                MAX_WEBHOOK_TIMEOUT,
            )?,
            give_up_after: self.at_most(
                raw.give_up_after,
                "give_up_after",
                WebsubConfig::DEFAULT_GIVE_UP_AFTER,
                MAX_WEBHOOK_GIVE_UP,
            )?,
            subscribe: raw.subscribe.unwrap_or(false),
            callback_base: raw.callback_base.map(|b| with_trailing_slash(b.0)),
            fallback_interval: self.duration(
                raw.fallback_interval,
                "fallback_interval",
                WebsubConfig::DEFAULT_FALLBACK_INTERVAL,
            )?,
            // Whole seconds, as `hub.lease_seconds` says it.
            subscribe_lease: Duration::from_secs(subscribe_lease.as_secs().max(1)),
        })
    }

    /// A source or feed name (valid as read), unique among its kind.
    fn unique_name(
        &self,
        name: &str,
        span: Range<usize>,
        kind: &str,
        seen: &mut HashMap<String, usize>,
    ) -> Result<String, ConfigError> {
        if let Some(first) = seen.insert(name.to_string(), self.line(&span)) {
            return Err(self.error(
                span,
                format!("duplicate {kind} name {name:?} (first defined at line {first})"),
            ));
        }
        Ok(name.to_string())
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

    /// Tag filters as terms, aliases applied, without repeats.
    fn terms(
        &self,
        labels: &[Spanned<String>],
        aliases: &[TagAliasConfig],
    ) -> Result<Vec<String>, ConfigError> {
        let mut terms = Vec::with_capacity(labels.len());
        for label in labels {
            let term = canonical_term(aliases, &crate::text::term(&self.label(label, "tag")?));
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        Ok(terms)
    }

    /// An http(s) URL, or a `file:` one for a feed on this machine's disk:
    /// `file:///abs/path.xml`, or `file:path.xml` relative to the config
    /// file's directory.
    fn source_url(&self, location: &Spanned<SourceLocation>) -> Result<Url, ConfigError> {
        let rest = match location.get_ref() {
            SourceLocation::Http(url) => return Ok(url.clone()),
            SourceLocation::File(rest) => rest,
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
                location.span(),
                format!("invalid url \"file:{rest}\": not a file path"),
            )
        })
    }

    /// `headers`, `user_agent`, `cookie` and `proxy` of a `[[source]]`:
    /// what reqwest would refuse at fetch time is refused here, at its
    /// place in the file.
    fn source_request(&self, source: &RawSource) -> Result<SourceRequest, ConfigError> {
        // tributary sets these itself (conditional GET, compression, the
        // connection) or has a key of their own.
        const MANAGED: [(&str, &str); 9] = [
            ("host", "it is the URL's"),
            ("content-length", "a GET has no body"),
            ("transfer-encoding", "a GET has no body"),
            ("connection", "the client manages connections"),
            (
                "accept-encoding",
                "the client asks for gzip, deflate and br itself",
            ),
            ("if-none-match", "conditional GET sends the stored ETag"),
            (
                "if-modified-since",
                "conditional GET sends the stored Last-Modified",
            ),
            ("user-agent", "use `user_agent = \"…\"`"),
            ("cookie", "use `cookie = \"…\"`"),
        ];
        let mut headers = Vec::new();
        if let Some(table) = &source.headers {
            for (name, value) in table.get_ref() {
                let lower = name.to_ascii_lowercase();
                if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                    return Err(self.error(
                        table.span(),
                        format!("invalid header name {name:?}: letters, digits and !#$%&'*+-.^_`|~ only"),
                    ));
                }
                if let Some((_, why)) = MANAGED.iter().find(|(managed, _)| *managed == lower) {
                    return Err(self.error(
                        table.span(),
                        format!("header {name:?} cannot be set per source: {why}"),
                    ));
                }
                if reqwest::header::HeaderValue::from_str(value).is_err() {
                    // The value may be a secret: never quoted.
                    return Err(self.error(
                        table.span(),
                        format!("header {name:?} has a value that is not valid in HTTP (a control character)"),
                    ));
                }
                headers.push((lower, value.clone()));
            }
        }
        let header_text = |value: &Option<Spanned<String>>, key: &str| match value {
            Some(text) if reqwest::header::HeaderValue::from_str(text.get_ref()).is_err() => {
                Err(self.error(
                    text.span(),
                    format!("{key} is not valid in an HTTP header (a control character)"),
                ))
            }
            Some(text) => Ok(Some(text.get_ref().clone())),
            None => Ok(None),
        };
        let user_agent = header_text(&source.user_agent, "user_agent")?;
        let cookie = header_text(&source.cookie, "cookie")?;
        let proxy = source.proxy.as_ref().map(|p| p.0.clone());
        Ok(SourceRequest {
            headers,
            user_agent,
            cookie,
            proxy,
        })
    }

    /// A regex, its compiled size bounded so that no pattern in the config
    /// can take much memory (or time to build).
    fn regex(&self, regex: &Spanned<String>) -> Result<regex::Regex, ConfigError> {
        regex::RegexBuilder::new(regex.get_ref())
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                self.error(
                    regex.span(),
                    format!("invalid regex {:?}: {}", regex.get_ref(), regex_message(&e)),
                )
            })
    }

    fn remove_selectors(
        &self,
        raw: Option<&[Spanned<String>]>,
    ) -> Result<Option<RemoveSelectors>, ConfigError> {
        let Some(raw) = raw.filter(|list| !list.is_empty()) else {
            return Ok(None);
        };
        let mut selectors = Vec::with_capacity(raw.len());
        for text in raw {
            match text.get_ref().parse::<lol_html::Selector>() {
                Ok(selector) => selectors.push(selector),
                Err(e) => {
                    return Err(self.error(
                        text.span(),
                        format!("invalid CSS selector {:?}: {e}", text.get_ref()),
                    ))
                }
            }
        }
        Ok(Some(RemoveSelectors(selectors.into())))
    }

    fn rewrite(&self, raw: Option<&RawRewrite>) -> Result<Option<Rewrite>, ConfigError> {
        let Some(raw) = raw else { return Ok(None) };
        Ok(Some(Rewrite {
            regex: self.regex(&raw.regex)?,
            with: raw.with.clone(),
        }))
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
        value: Option<Spanned<ConfigDuration>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        match value.get_ref() {
            ConfigDuration(d) if d.is_zero() => {
                Err(self.error(value.span(), format!("{key} must be greater than 0")))
            }
            ConfigDuration(d) => Ok(*d),
        }
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

fn default_schedule(text: &str) -> Schedule {
    Schedule::parse(text).expect("the default schedules are valid")
}

/// `tributary/VERSION (+BASE_URL)`: a feed's operator can see who fetches.
fn default_user_agent(base_url: &str) -> String {
    format!(
        "tributary/{} (+{})",
        env!("CARGO_PKG_VERSION"),
        base_url.trim_end_matches('/')
    )
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
