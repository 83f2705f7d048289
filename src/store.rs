//! Persistence behind one interface: SQLite (the embedded default) or
//! PostgreSQL, picked from the database URL. SQL is shared where the
//! dialects agree (`$N` placeholders, `ON CONFLICT`, `RETURNING`); times are
//! Unix microseconds on both. The database enforces article identity with
//! unique keys, so a crash or a second writer never creates a duplicate.

mod band_index;
mod bulk_load;
mod dropped;
mod exec;
mod explain;
mod history;
mod hub;
mod memo;
mod near_dup;
mod outbox;
mod pages;
mod postgres;
mod prune;
mod read;
mod sources;
mod sql;
mod sqlite;
mod websub;
mod write;

pub use bulk_load::BulkLoad;
pub use dropped::{DroppedRecord, Removal, StoredArticle};
pub use explain::{ExplainedEntry, Explanation, KeptApart, OutletCopy};
pub use history::{day_of, HealthPolicy, DAYS_KEPT};
pub use hub::{
    recipient_subscription, subscription_recipient, HubState, HubSubscription, PING_RECIPIENT,
    SUBSCRIPTION_PREFIX,
};
pub use outbox::{message_id, Delivery, WebhookRoute, WebhookState};
pub use pages::PageCounts;
pub use prune::PruneStats;
pub use read::TagCount;
pub use sources::{Claimed, FetchRecord, PollFloor, SourceSync, StoreFailure, WriteHealth};
pub use websub::{Subscription, SubscriptionState};
pub use write::IngestStats;

use crate::model::{Cursor, Filter, NewArticle, Page};
use chrono::{DateTime, Utc};
use sqlite::{sqlite_file, sqlite_session, sqlite_url, SqliteRole};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of SQLite's in-thread driver (store/sqlite/), and whether
    /// it concerns the data written rather than the store.
    #[error("database: {source}")]
    Database {
        source: Box<dyn std::error::Error + Send + Sync>,
        about_the_data: bool,
    },
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unknown source {0:?}")]
    UnknownSource(String),
    /// The transaction this refresh was committed in with others failed.
    #[error("{0} (refreshes committed together were all rolled back)")]
    Group(Arc<StoreError>),
    #[error("the write was interrupted before it committed (shutting down)")]
    Interrupted,
    /// A bug: SQLite's in-thread writer met a statement that would wait.
    #[error("the SQLite writer waited on something it cannot wait for")]
    WriterWaited,
    /// SQLite's writer thread could not run a write (it panicked, or the
    /// thread is gone).
    #[error("writing stopped: {0}")]
    WriteTask(String),
    /// A bug: a row the transaction itself read or wrote was not there
    /// (what the store's own writes guarantee did not hold).
    #[error("store invariant broken: {0}")]
    Invariant(&'static str),
    /// The blocking task reading a page stopped (a panic, or shutdown).
    #[error("reading a page stopped: {0}")]
    ReadTask(String),
    /// The database could not be opened at start: where, why, what to do.
    #[error("cannot open {target}: {cause}")]
    Open { target: String, cause: String },
}

impl StoreError {
    /// A conflict between concurrent writers that a retry resolves:
    /// PostgreSQL's deadlock_detected (40P01) and serialization_failure
    /// (40001).
    fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }

    /// The database could not be reached (refused, timed out, the
    /// connection broke): a failover or restart, not a bug or bad data.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// What writes go through: on SQLite a one-connection pool (the single
    /// writer); on PostgreSQL the pool itself.
    writer: AnyPool,
    engine: Engine,
    /// Merge near-duplicate stories from other sources at ingest; off
    /// unless set (`[dedup]`).
    near_duplicates: Option<NearDuplicates>,
    /// When a refresh's outcome is a health event (`[health]`).
    health: HealthPolicy,
    /// Webhooks whose new articles the ingest queues (outbox.rs).
    webhooks: Arc<[WebhookRoute]>,
    /// The WebSub hub's routes (store/hub.rs): replaced as subscriptions
    /// come and go, shared by every clone.
    hub_routes: Arc<std::sync::RwLock<Arc<[WebhookRoute]>>>,
    version: Arc<ContentVersion>,
    /// Writes that failed and were not made good since (sources.rs).
    unstored: Arc<sources::Unstored>,
}

/// What differs between the backends beside their SQL dialects.
#[derive(Clone)]
enum Engine {
    /// One writer: its queue, thread and page readers (sqlite.rs).
    Sqlite(Arc<sqlite::Sqlite>),
    /// Several instances may share the server: when to analyze the tables,
    /// and articles pages read at one content version (postgres.rs).
    Postgres(Arc<postgres::Postgres>),
}

/// The articles' version as this process last saw it: a counter (a row of
/// `meta` on SQLite, a sequence on PostgreSQL) bumped after every write
/// that changes what a feed shows. Rendered feeds are cached under it, so
/// a hit costs no query; other processes' writes (other instances,
/// `tributary fetch`) are seen within `VERSION_POLL`.
#[derive(Debug)]
struct ContentVersion {
    value: std::sync::atomic::AtomicI64,
    checked: std::sync::Mutex<Option<std::time::Instant>>,
    /// The last poll failed: the database did not answer.
    unanswered: std::sync::atomic::AtomicBool,
}

/// How stale this process's view of other writers' changes may be.
const VERSION_POLL: Duration = Duration::from_secs(1);

/// When a new entry is another outlet's copy of a stored story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearDuplicates {
    /// Similarity at or above which texts are one story (`cluster`).
    pub threshold: f64,
    /// Only stories published within this of each other are compared.
    pub window: chrono::TimeDelta,
}

impl NearDuplicates {
    /// The window in microseconds (the stores' unit of time).
    pub(crate) fn window_us(&self) -> i64 {
        self.window.num_microseconds().unwrap_or(i64::MAX / 4)
    }
}

/// How many connections the pool holds and how many of them are idle.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Pool sizing and timeouts (`[daemon] pool_size`, `statement_timeout`).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool; `None` picks the backend's default.
    pub max_connections: Option<u32>,
    pub acquire_timeout: Duration,
    /// PostgreSQL: `statement_timeout` of every connection. SQLite has no
    /// such limit; there it bounds how long a statement waits for another
    /// process's write lock (`busy_timeout`).
    pub statement_timeout: Duration,
}

impl StoreOptions {
    /// SQLite has one writer and readers on the same file: a few
    /// connections serve the HTTP readers beside the writer.
    pub const DEFAULT_SQLITE_POOL: u32 = 8;
    /// PostgreSQL: enough for `concurrency` ingests and the HTTP readers
    /// without one instance hogging the server's `max_connections` (100 by
    /// default), shared by every instance.
    pub const DEFAULT_POSTGRES_POOL: u32 = 10;

    pub fn from_config(daemon: &crate::config::DaemonConfig) -> StoreOptions {
        StoreOptions {
            max_connections: daemon.pool_size,
            statement_timeout: daemon.statement_timeout,
            ..StoreOptions::default()
        }
    }

    /// `statement_timeout` in milliseconds, as both backends' settings
    /// take it.
    fn timeout_ms(&self) -> u128 {
        self.statement_timeout.as_millis().min(i32::MAX as u128)
    }

    fn pool_size(&self, backend: Backend) -> u32 {
        self.max_connections.unwrap_or(match backend {
            Backend::Sqlite => Self::DEFAULT_SQLITE_POOL,
            Backend::Postgres => Self::DEFAULT_POSTGRES_POOL,
        })
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: None,
            acquire_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// How often a transaction that PostgreSQL aborted to break a deadlock (or
/// a serialization conflict) between instances is tried again.
const MAX_ATTEMPTS: u32 = 5;

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// PostgreSQL's migrations, without sqlx's session advisory lock: behind a
/// transaction pooler (PgBouncer) its lock and unlock may reach different
/// server connections, and a lock left on one would stall every later
/// start. [`migrate`] takes a transaction-level lock instead.
fn postgres_migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("migrations/postgres");
    migrator.set_locking(false);
    migrator
}

/// The advisory lock PostgreSQL instances take turns migrating under
/// (any constant other tools on the database do not use).
const MIGRATION_LOCK: i64 = 0x7472_6962_7574_6172; // "tributar"

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, file, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let sqlite_url = sqlite_url(rest);
            // Its writer thread and page readers open the file again: an
            // in-memory database would be another one on each connection.
            let Some(file) = sqlite_file(&sqlite_url) else {
                return Err(StoreError::UnsupportedUrl(url.to_string()));
            };
            (Backend::Sqlite, Some(file), sqlite_url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, None, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let connect_options = match backend {
            Backend::Sqlite => AnyConnectOptions::from_str(&url)?,
            Backend::Postgres => {
                AnyConnectOptions::from_str(&with_statement_timeout(&url, options.timeout_ms()))?
            }
        };
        probe(&connect_options, backend, &url).await?;
        let pool = open_pool(
            &connect_options,
            backend,
            options,
            options.pool_size(backend),
            SqliteRole::Reader,
        )
        .await?;
        let writer = match backend {
            Backend::Sqlite => {
                open_pool(&connect_options, backend, options, 1, SqliteRole::Writer).await?
            }
            Backend::Postgres => pool.clone(),
        };
        migrate(&writer, backend).await?;
        if backend == Backend::Postgres {
            check_statement_timeout(&pool, options.timeout_ms()).await?;
        }
        let engine = match &file {
            Some(path) => Engine::Sqlite(Arc::new(sqlite::Sqlite::open(path, options)?)),
            None => Engine::Postgres(Default::default()),
        };
        let store = Store {
            pool,
            writer,
            engine,
            near_duplicates: None,
            health: HealthPolicy::default(),
            webhooks: Arc::new([]),
            hub_routes: Arc::new(std::sync::RwLock::new(Arc::new([]))),
            version: Arc::new(ContentVersion {
                value: std::sync::atomic::AtomicI64::new(0),
                checked: std::sync::Mutex::new(None),
                unanswered: Default::default(),
            }),
            unstored: Default::default(),
        };
        store.init_meta().await?;
        if let Engine::Sqlite(_) = store.engine {
            store.ensure_tag_index().await?;
        }
        Ok(store)
    }

    /// Turns near-duplicate merging on (or off with `None`).
    pub fn with_near_duplicates(mut self, policy: Option<NearDuplicates>) -> Store {
        self.near_duplicates = policy;
        self
    }

    /// Sets the thresholds of health events.
    pub fn with_health(mut self, policy: HealthPolicy) -> Store {
        self.health = policy;
        self
    }

    /// The thresholds of health events in force.
    pub fn health_policy(&self) -> HealthPolicy {
        self.health
    }

    /// Stores the entries of one refresh of `source_id` and its fetch record
    /// in one transaction: a crash leaves either all of it or none.
    ///
    /// On SQLite, refreshes waiting for the single writer are committed
    /// together (sqlite/group_commit.rs), each still all or nothing.
    pub async fn ingest(
        &self,
        source_id: i64,
        articles: &[NewArticle],
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        match &self.engine {
            Engine::Sqlite(sqlite) => {
                self.ingest_grouped(sqlite, source_id, articles.to_vec(), record)
                    .await
            }
            Engine::Postgres(_) => self.ingest_by_itself(source_id, articles, record).await,
        }
    }

    /// [`Store::ingest`], taking the articles: SQLite's writer queue then
    /// holds them without a copy. For a caller that is done with them, as
    /// the pipeline is (and bench/, storing parsed feeds as it does).
    pub async fn ingest_owned(
        &self,
        source_id: i64,
        articles: Vec<NewArticle>,
        record: &FetchRecord,
    ) -> Result<IngestStats, StoreError> {
        match &self.engine {
            Engine::Sqlite(sqlite) => {
                self.ingest_grouped(sqlite, source_id, articles, record)
                    .await
            }
            Engine::Postgres(_) => self.ingest_by_itself(source_id, &articles, record).await,
        }
    }

    /// One page of the articles matching `filter`, newest first (published,
    /// then id), starting after `before`.
    pub async fn page(
        &self,
        filter: &Filter,
        before: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        self.page_at(filter, before, limit, Utc::now()).await
    }

    /// [`Store::page`] as of `now`: what a `window` counts back from, and
    /// the time a coverage-sorted walk starts at (its first page's cursor
    /// carries it on).
    pub async fn page_at(
        &self,
        filter: &Filter,
        before: Option<Cursor>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Page, StoreError> {
        let (articles, more) = match &self.engine {
            Engine::Sqlite(sqlite) => {
                let plan = read::page_plan(filter, before, limit, now);
                let version = self.content_version().await?;
                sqlite
                    .page_reader
                    .page(plan, limit as usize, version)
                    .await?
            }
            Engine::Postgres(_) => self.page_through_pool(filter, before, limit, now).await?,
        };
        let as_of = match before.and_then(|c| c.coverage) {
            Some(mark) => mark.as_of,
            None => now,
        };
        let next = more.then(|| articles.last()).flatten().map(|a| Cursor {
            published: a.published,
            id: a.id,
            coverage: (filter.sort == crate::model::Sort::Coverage).then_some(
                crate::model::CoverageMark {
                    outlets: a.outlets,
                    as_of,
                },
            ),
        });
        Ok(Page { articles, next })
    }

    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite(_) => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// Connections of the pool, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    /// True when the database answers within `PING_TIMEOUT` (a pool whose
    /// server is gone would retry connecting until its acquire timeout).
    pub async fn ping(&self) -> bool {
        let answer = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(tokio::time::timeout(PING_TIMEOUT, answer).await, Ok(Ok(_)))
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// When this database was created: the `updated` of an empty feed, so
    /// that it stays stable.
    pub async fn created_at(&self) -> Result<DateTime<Utc>, StoreError> {
        self.meta_time("created_at").await
    }

    /// When an article last left the store (retention, a removed source):
    /// every view that held it changed then. Kept by a trigger.
    pub async fn removed_at(&self) -> Result<DateTime<Utc>, StoreError> {
        self.meta_time("removed_at").await
    }

    async fn meta_time(&self, key: &str) -> Result<DateTime<Utc>, StoreError> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value
            .and_then(|v| v.parse::<i64>().ok())
            .map(from_micros)
            .unwrap_or_default())
    }

    async fn init_meta(&self) -> Result<(), StoreError> {
        // The database's clock, as the triggers that stamp `changed_at` and
        // `removed_at` use: an empty view's Last-Modified is this time, and
        // must not come after the first article's (nor follow a test's clock).
        let now_micros = match self.backend() {
            Backend::Sqlite => "CAST(CAST(unixepoch('subsec') * 1000000 AS INTEGER) AS TEXT)",
            Backend::Postgres => "tributary_now_micros()::TEXT",
        };
        // PostgreSQL keeps the content version in a sequence (migrations'
        // content_version_sequence).
        let version_row = match self.backend() {
            Backend::Sqlite => ", ('content_version', '0')",
            Backend::Postgres => "",
        };
        let sql = format!(
            "INSERT INTO meta (key, value) VALUES ('created_at', {now_micros}){version_row}
             ON CONFLICT (key) DO NOTHING"
        );
        let _guard = self.write_guard().await;
        sqlx::query(&sql).execute(&self.writer).await?;
        Ok(())
    }

    /// The content version (see [`ContentVersion`]): from memory, read
    /// again from the database at most once per `VERSION_POLL`. While the
    /// database does not answer (a failover, a restart), the version last
    /// read stands: pages rendered under it are still the newest this
    /// process knows, and go on being served from the cache
    /// (docs/DEPLOYMENT.md "Behind PgBouncer").
    pub async fn content_version(&self) -> Result<i64, StoreError> {
        use std::sync::atomic::Ordering;
        let fresh = {
            let checked = self
                .version
                .checked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            checked.is_some_and(|at| at.elapsed() < VERSION_POLL)
        };
        if !fresh {
            match tokio::time::timeout(PING_TIMEOUT, self.stored_content_version()).await {
                Ok(Ok(value)) => {
                    self.version.value.fetch_max(value, Ordering::SeqCst);
                    self.version.unanswered.store(false, Ordering::SeqCst);
                }
                failed => {
                    let ever_read = self
                        .version
                        .checked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .is_some();
                    let error = match failed {
                        Ok(Err(e)) => StoreError::Db(e),
                        _ => StoreError::Db(sqlx::Error::PoolTimedOut),
                    };
                    if !ever_read {
                        return Err(error);
                    }
                    self.version.unanswered.store(true, Ordering::SeqCst);
                    tracing::warn!(error = %error, "reading the content version failed; serving what is cached");
                }
            }
            *self
                .version
                .checked
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        }
        Ok(self.version.value.load(Ordering::SeqCst))
    }

    /// The content version as the database holds it (`meta` on SQLite, a
    /// sequence on PostgreSQL).
    async fn stored_content_version(&self) -> Result<i64, sqlx::Error> {
        Ok(match self.backend() {
            Backend::Sqlite => {
                let value: Option<String> =
                    sqlx::query_scalar("SELECT value FROM meta WHERE key = 'content_version'")
                        .fetch_optional(&self.pool)
                        .await?;
                value.and_then(|v| v.parse().ok()).unwrap_or(0)
            }
            Backend::Postgres => {
                sqlx::query_scalar("SELECT last_value FROM content_version")
                    .fetch_one(&self.pool)
                    .await?
            }
        })
    }

    /// True while the database does not answer this process's content
    /// version polls (see [`Store::content_version`]).
    pub fn database_away(&self) -> bool {
        self.version
            .unanswered
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks the articles changed, after the change committed (a reader
    /// that saw the new version then also sees the new rows). The caller
    /// holds the write guard on SQLite. Readers that remember articles
    /// forget them all (ingests on SQLite's writer thread bump it in their
    /// own transaction and name the articles they changed: sqlite/group_commit.rs).
    /// On PostgreSQL a sequence: no row lock for instances' refreshes to
    /// queue on, no commit of its own (migrations' content_version_sequence).
    pub(crate) async fn bump_version(&self) -> Result<(), StoreError> {
        let value: i64 = match self.backend() {
            Backend::Sqlite => {
                let value: String = sqlx::query_scalar(
                    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT)
                     WHERE key = 'content_version' RETURNING value",
                )
                .fetch_one(&self.writer)
                .await?;
                let Ok(value) = value.parse() else {
                    return Ok(());
                };
                value
            }
            Backend::Postgres => {
                sqlx::query_scalar("SELECT nextval('content_version')")
                    .fetch_one(&self.writer)
                    .await?
            }
        };
        self.note_version(value, None);
        Ok(())
    }

    /// Tells this process's readers of a committed content version.
    /// `touched`: the stored articles the write changed, when known (an
    /// ingest): readers that remember articles then forget only those
    /// (sqlite/page_reader.rs); otherwise everything.
    fn note_version(&self, value: i64, touched: Option<Vec<i64>>) {
        // Before this process's readers can see the new version.
        if let (Engine::Sqlite(sqlite), Some(touched)) = (&self.engine, touched) {
            sqlite.page_reader.changed(value, touched);
        }
        self.version
            .value
            .fetch_max(value, std::sync::atomic::Ordering::SeqCst);
    }

    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.engine {
            Engine::Sqlite(sqlite) => Some(sqlite.write_lock.lock().await),
            Engine::Postgres(_) => None,
        }
    }
}

/// A pool on the database: sessions set up for tributary (WAL, timeouts,
/// foreign keys); `role`: what its SQLite connections are for.
async fn open_pool(
    connect_options: &AnyConnectOptions,
    backend: Backend,
    options: &StoreOptions,
    connections: u32,
    role: SqliteRole,
) -> Result<AnyPool, StoreError> {
    let timeout_ms = options.timeout_ms();
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => {
                        for pragma in sqlite_session(timeout_ms, role) {
                            conn.execute(pragma.as_str()).await?;
                        }
                    }
                    // statement_timeout comes with the connection's startup
                    // options ([`with_statement_timeout`]): a SET here would
                    // stay behind on a pooler's shared server connection.
                    Backend::Postgres => {}
                }
                Ok(())
            })
        })
        .connect_with(connect_options.clone())
        .await?;
    Ok(pool)
}

/// How long `/healthz` and a content-version poll wait for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// `url` with `statement_timeout` among its startup options, so that the
/// session starts with it: a stuck statement must not hold row locks (and
/// so other instances' work) forever. PgBouncer cannot keep a startup
/// option per client; there it is ignored (`ignore_startup_parameters`)
/// and the database's own setting applies (docs/DEPLOYMENT.md "Behind
/// PgBouncer"), which [`check_statement_timeout`] verifies.
fn with_statement_timeout(url: &str, timeout_ms: u128) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed
                .query_pairs_mut()
                .append_pair("options", &format!("-c statement_timeout={timeout_ms}"));
            parsed.to_string()
        }
        // sqlx reports the URL's error itself.
        Err(_) => url.to_string(),
    }
}

/// Warns when the `statement_timeout` in force is not the configured one:
/// behind PgBouncer, the database's or role's setting applies.
async fn check_statement_timeout(pool: &AnyPool, timeout_ms: u128) -> Result<(), StoreError> {
    let in_force: String =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
            .fetch_one(pool)
            .await?;
    if in_force.parse::<u128>().ok() != Some(timeout_ms) {
        tracing::warn!(
            configured_ms = %timeout_ms,
            in_force_ms = %in_force,
            "statement_timeout in force is not the configured one (a pooler ignored it?): \
             set it on the database, ALTER DATABASE … SET statement_timeout (docs/DEPLOYMENT.md \"Behind PgBouncer\")"
        );
    }
    Ok(())
}

/// How long start-up waits for the database's first answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection and one query before any pool: a pool retries a failing
/// connect until its acquire timeout and then says only "pool timed out",
/// where a newcomer needs the cause, the file or host, and what to do.
async fn probe(options: &AnyConnectOptions, backend: Backend, url: &str) -> Result<(), StoreError> {
    use sqlx::{AnyConnection, ConnectOptions, Connection};
    let target = match backend {
        Backend::Sqlite => match sqlite_file(url) {
            Some(path) => format!("SQLite database {}", path.display()),
            None => "SQLite database".to_string(),
        },
        Backend::Postgres => format!("PostgreSQL at {}", postgres_target(url)),
    };
    let opened = async {
        let mut conn: AnyConnection = options.connect().await?;
        // SQLite opens any file lazily: reading the schema is what finds
        // out that it is not a database.
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        if backend == Backend::Sqlite {
            sqlx::query("SELECT count(*) FROM sqlite_master")
                .execute(&mut conn)
                .await?;
        }
        conn.close().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, opened).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Open {
            cause: open_advice(&e, backend, url),
            target,
        }),
        Err(_) => Err(StoreError::Open {
            target,
            cause: format!(
                "no answer within {} s: check the host and port, and any firewall between",
                PROBE_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// `host:port/database as user` of a PostgreSQL URL: never its password.
fn postgres_target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let user = match u.username() {
                "" => String::new(),
                name => format!(" as user {name}"),
            };
            format!(
                "{}:{}{}{user}",
                u.host_str().unwrap_or("localhost"),
                u.port().unwrap_or(5432),
                u.path()
            )
        }
        Err(_) => "the configured URL".to_string(),
    }
}

/// The error's cause in words, with what to do about it.
fn open_advice(error: &sqlx::Error, backend: Backend, url: &str) -> String {
    let code = match error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    let text = error.to_string();
    match (backend, code.as_deref(), error) {
        (Backend::Sqlite, Some("26"), _) => {
            "the file is not a SQLite database: point `database` at another path, or move this file away"
                .to_string()
        }
        (Backend::Sqlite, Some("14"), _) => {
            let dir = sqlite_file(url).and_then(|p| p.parent().map(|d| d.to_path_buf()));
            match dir {
                Some(d) if !d.as_os_str().is_empty() && !d.is_dir() => format!(
                    "directory {} does not exist: create it (tributary creates the file, not its directory)",
                    d.display()
                ),
                _ => format!("{text}: check that the directory is writable by this user"),
            }
        }
        (Backend::Postgres, Some("28P01" | "28000"), sqlx::Error::Database(e)) => format!(
            "{}: check the user and password (keep the password out of the config: PGPASSWORD or ~/.pgpass)",
            e.message()
        ),
        (Backend::Postgres, _, sqlx::Error::Database(e))
            if e.message().contains("unsupported startup parameter") =>
        {
            format!(
                "{}: a PgBouncer in between needs `ignore_startup_parameters = extra_float_digits, options` (docs/DEPLOYMENT.md \"Behind PgBouncer\")",
                e.message()
            )
        }
        (Backend::Postgres, Some("3D000"), _) => {
            "the database does not exist: create it (createdb) or fix the URL's path".to_string()
        }
        (_, _, sqlx::Error::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: is the server running and listening on that host and port?"
                .to_string()
        }
        _ => text,
    }
}

/// Applies pending migrations. On PostgreSQL all of them in one
/// transaction holding a transaction-level advisory lock: instances starting
/// together take turns, and a transaction pooler keeps the lock, the
/// migrations and the unlock (the commit) on one server connection. SQLite
/// has no such lock:
/// when two processes migrate one file at once, the loser's migration fails
/// (and rolls back) on the winner's tables; once the winner committed, a
/// second run finds them recorded and skips them.
async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let mut tries = 1;
    loop {
        let result = match backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(pool).await,
            Backend::Postgres => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                // Each migration runs in a savepoint of this transaction.
                postgres_migrator().run(&mut *tx).await?;
                tx.commit().await.map_err(Into::into)
            }
        };
        match result {
            Err(
                e @ (sqlx::migrate::MigrateError::Execute(_)
                | sqlx::migrate::MigrateError::ExecuteMigration(..)),
            ) if backend == Backend::Sqlite && tries < MAX_ATTEMPTS => {
                tracing::debug!(error = %e, tries, "migration raced another process; again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(tries))).await;
                tries += 1;
            }
            result => return Ok(result?),
        }
    }
}

/// After a failed write transaction attempt number `tries`: true (after a
/// short jittered pause) when it should run again, because PostgreSQL
/// aborted it to break a deadlock or serialization conflict with another
/// instance. The transaction rolled back whole, so running it again is safe.
async fn retry_after_conflict(error: &StoreError, tries: u32) -> bool {
    if tries >= MAX_ATTEMPTS || !error.is_transient() {
        return false;
    }
    tracing::debug!(error = %error, tries, "transaction conflict; trying again");
    let pause = 10 * u64::from(tries) + rand::random::<u64>() % 20;
    tokio::time::sleep(Duration::from_millis(pause)).await;
    true
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}
