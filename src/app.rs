//! The running daemon: one constructor for the binary and the tests.
//! `Application::build` connects the store and binds the listener;
//! `run_until_stopped` runs the scheduler and the server until shutdown,
//! tells systemd how it goes (`notify`), and reloads the config on request
//! (SIGHUP) through [`Live`], the parts of the daemon built from the config.

use crate::clock::Clock;
use crate::config::{Config, HubMode};
use crate::metrics::Recorder;
use crate::notify::{self, Heartbeat};
use crate::pipeline::Pipeline;
use crate::publish::Site;
use crate::scheduler::{self, LivePipeline};
use crate::server::{self, AppState};
use crate::store::{HealthPolicy, NearDuplicates, SourceSync, Store, StoreOptions};
use crate::supervise;
use anyhow::Context;
use axum::extract::Request;
use axum::Router;
use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// How long open HTTP connections get to finish after a stop was asked.
const SERVER_DRAIN: Duration = Duration::from_secs(5);
/// How often the `STATUS=` line shown by `systemctl status` is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(10);

pub struct Application {
    config: Arc<Config>,
    store: Store,
    metrics: Recorder,
    clock: Clock,
    listener: TcpListener,
    reload: Arc<Notify>,
    turns: watch::Sender<scheduler::Turns>,
}

impl Application {
    /// Installs the metrics recorder, connects the database (migrations
    /// applied), syncs the configured sources and binds `listen` (port 0
    /// picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // Before anything records an event.
        let metrics = Recorder::install();
        let store = open_store(&config).await?;
        let listener = TcpListener::bind(&config.daemon.listen)
            .await
            .with_context(|| format!("binding {}", config.daemon.listen))?;
        Ok(Application {
            config: Arc::new(config),
            store,
            metrics,
            clock: Clock::system(),
            listener,
            reload: Arc::new(Notify::new()),
            turns: watch::channel(scheduler::Turns::default()).0,
        })
    }

    /// Reloads the config file each time `trigger` is notified (the signal
    /// handler does on SIGHUP).
    pub fn reload_on(mut self, trigger: Arc<Notify>) -> Application {
        self.reload = trigger;
        self
    }

    /// Reads the time from `clock` (tests move a manual one) instead of
    /// the system's: refreshes, schedules, prunes and shown states.
    pub fn with_clock(mut self, clock: Clock) -> Application {
        self.clock = clock;
        self
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The scheduler's turns once it runs: to wait until it has looked for
    /// due sources (and found none) instead of for a while.
    pub fn scheduler_turns(&self) -> watch::Receiver<scheduler::Turns> {
        self.turns.subscribe()
    }

    /// Runs until `shutdown` is cancelled, then stops cleanly: in-flight
    /// fetches are abandoned (nothing half-written: each refresh is one
    /// transaction), open requests get a few seconds, the database closes.
    /// A task that panics is supervised: a refresh is recorded as its
    /// source's failure, the pruner restarts. Should the scheduler or the
    /// server end on their own, that is fatal: the daemon stops the same
    /// clean way, then returns the error (and systemd restarts it).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let live = Live::new(
            self.config.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.clock.clone(),
        );
        let live = match live {
            Ok(live) => live,
            Err(e) => {
                self.store.close().await;
                return Err(e);
            }
        };
        // Cancelled by `shutdown`, or by a fatal error of our own.
        let stop = shutdown.child_token();
        let daemon = &self.config.daemon;
        let heartbeat = Heartbeat::default();
        // Before the first refresh: its new articles are queued to the
        // hub's subscribers (or its pings) too.
        let hub_routes = crate::hub::sync_routes(
            &self.store,
            &self.config,
            server::topic_view,
            self.clock.now(),
        );
        if let Err(e) = hub_routes.await {
            tracing::warn!(error = %e, "websub routes not set; the hub loop sets them");
        }
        let mut scheduler = tokio::spawn(scheduler::run(
            live.pipeline.clone(),
            instance_id(),
            daemon.concurrency,
            scheduler::lease_for(daemon.timeout),
            stop.clone(),
            scheduler::Progress {
                heartbeat: heartbeat.clone(),
                turns: self.turns,
            },
            self.clock.clone(),
        ));
        let watchdog = tokio::spawn(notify::watchdog(heartbeat, stop.clone()));
        let listen = self.listener.local_addr();
        let limits = server::Limits::for_this_process();
        let mut server = tokio::spawn(server::serve(
            self.listener,
            live.service(),
            limits,
            stop.clone(),
        ));
        let listen = listen.map_or_else(|e| e.to_string(), |a| a.to_string());
        tracing::info!(listen = %listen, sources = self.config.sources.len(), max_connections = limits.max_connections, "tributary running");
        // Migrations ran and the listener is bound: systemd may start the
        // units ordered after this one.
        notify::ready(&format!("listening on {listen}"));
        let status = tokio::spawn(report_status(
            self.store.clone(),
            self.clock.clone(),
            stop.clone(),
        ));
        let upkeep = tokio::spawn(self.metrics.clone().run_upkeep(stop.clone()));
        let pruner = {
            let (store, stop, clock) = (self.store.clone(), stop.clone(), self.clock.clone());
            let (schedule, retention, tombstones) = (
                daemon.prune_schedule.clone(),
                daemon.retention,
                daemon.tombstone_retention,
            );
            tokio::spawn(supervise::restarting("prune", stop.clone(), move || {
                scheduler::run_prune(
                    store.clone(),
                    schedule.clone(),
                    retention,
                    tombstones,
                    stop.clone(),
                    clock.clone(),
                )
            }))
        };
        // Webhooks: the outbox, delivered with this process's own leases.
        let webhooks = {
            let (store, stop, clock) = (self.store.clone(), stop.clone(), self.clock.clone());
            let (live, owner) = (live.clone(), instance_id());
            tokio::spawn(supervise::restarting("webhooks", stop.clone(), move || {
                let live = live.clone();
                crate::webhook::run(
                    store.clone(),
                    move || live.config(),
                    owner.clone(),
                    clock.clone(),
                    stop.clone(),
                )
            }))
        };
        // WebSub: pings to an external hub, or distributions of our own.
        let hub = {
            let (store, stop, clock) = (self.store.clone(), stop.clone(), self.clock.clone());
            let (live, owner) = (live.clone(), instance_id());
            tokio::spawn(supervise::restarting(
                "websub_hub",
                stop.clone(),
                move || {
                    let live = live.clone();
                    crate::hub::run(
                        store.clone(),
                        move || live.config(),
                        server::topic_view,
                        site,
                        owner.clone(),
                        clock.clone(),
                        stop.clone(),
                    )
                },
            ))
        };

        // WebSub: subscriptions asked, renewed and ended with this
        // process's own claims.
        let websub = {
            let (store, stop, clock) = (self.store.clone(), stop.clone(), self.clock.clone());
            let (live, owner) = (live.clone(), instance_id());
            tokio::spawn(supervise::restarting(
                "websub_subscriber",
                stop.clone(),
                move || {
                    let live = live.clone();
                    crate::websub::run(
                        store.clone(),
                        move || live.config(),
                        owner.clone(),
                        clock.clone(),
                        stop.clone(),
                    )
                },
            ))
        };

        let mut fatal = None;
        let mut scheduled = None;
        let mut server_ended = false;
        loop {
            tokio::select! {
                // First: at a stop, the tasks ending is no error.
                biased;
                _ = stop.cancelled() => break,
                _ = self.reload.notified() => live.reload().await,
                ended = &mut scheduler => {
                    fatal = Some(match &ended {
                        Ok(_) => anyhow::anyhow!("the scheduler stopped on its own"),
                        Err(e) => anyhow::anyhow!("the scheduler panicked: {e}"),
                    });
                    scheduled = Some(ended);
                    break;
                }
                ended = &mut server => {
                    server_ended = true;
                    fatal = Some(match ended {
                        Ok(()) => anyhow::anyhow!("the HTTP server stopped on its own"),
                        Err(e) => anyhow::anyhow!("the HTTP server panicked: {}", supervise::panic_message(e)),
                    });
                    break;
                }
            }
        }
        if let Some(e) = &fatal {
            tracing::error!(error = %e, "fatal; stopping");
            stop.cancel();
        }
        notify::stopping();
        tracing::info!("stopping");
        let scheduled = match scheduled {
            Some(ended) => ended,
            None => scheduler.await,
        };
        for (task, ended) in [
            ("watchdog", watchdog.await),
            ("status", status.await),
            ("metrics upkeep", upkeep.await),
            ("prune", pruner.await),
            ("webhooks", webhooks.await),
            ("websub hub", hub.await),
            ("websub subscriber", websub.await),
        ] {
            if let Err(e) = ended {
                tracing::error!(task, error = %supervise::panic_message(e), "task panicked");
            }
        }
        if !server_ended {
            match tokio::time::timeout(SERVER_DRAIN, &mut server).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %supervise::panic_message(e), "the HTTP server panicked")
                }
                Err(_) => tracing::warn!("open connections did not finish in time; closing them"),
            }
        }
        self.store.close().await;
        if let Some(e) = fatal {
            return Err(e);
        }
        scheduled
            .map_err(|e| {
                anyhow::anyhow!("the scheduler panicked: {}", supervise::panic_message(e))
            })?
            .context("scheduler")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The parts of the running daemon built from the config, replaced whole by
/// a reload: requests and claims after the swap see the new config, those
/// in flight finish with the one they started with.
#[derive(Clone)]
pub struct Live {
    store: Store,
    config: Arc<RwLock<Arc<Config>>>,
    /// The HTTP routes (output feeds, site facts) of the config in force.
    routes: Arc<RwLock<Router>>,
    pipeline: LivePipeline,
    metrics: Recorder,
    clock: Clock,
}

impl Live {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        metrics: Recorder,
        clock: Clock,
    ) -> anyhow::Result<Live> {
        let pipeline = Pipeline::new(&config, store.clone())
            .context("building the pipeline")?
            .with_clock(clock.clone());
        let pipeline: LivePipeline = Arc::new(tokio::sync::RwLock::new(Arc::new(pipeline)));
        Ok(Live {
            routes: Arc::new(RwLock::new(routes(
                &config, &store, &metrics, &clock, &pipeline,
            ))),
            metrics,
            clock,
            pipeline,
            config: Arc::new(RwLock::new(config)),
            store,
        })
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The HTTP service: each request goes to the routes in force when it
    /// arrives, so that output feeds changed by a reload are served at once.
    pub fn service(&self) -> RoutesInForce {
        RoutesInForce(self.routes.clone())
    }

    /// Re-reads the config file (SIGHUP), telling systemd `RELOADING=1`,
    /// then `READY=1`. A config that fails validation is rejected with a log
    /// line naming FILE:LINE:COL, and the running one stays.
    pub async fn reload(&self) {
        notify::reloading();
        if let Err(e) = self.try_reload().await {
            tracing::error!(
                error = %format_args!("{e:#}"),
                "config rejected; the running config stays"
            );
        }
        notify::ready(&status_line(&self.store, &self.clock).await);
    }

    async fn try_reload(&self) -> anyhow::Result<()> {
        let old = self.config();
        let config = Arc::new(Config::load(&old.path)?);
        warn_restart_needed(&old, &config);
        // Same pool and writer lock; the new `[dedup]` policy for ingests.
        let store = self
            .store
            .clone()
            .with_near_duplicates(near_duplicates(&config.dedup))
            .with_health(HealthPolicy::from_config(&config.health))
            .with_webhooks(crate::webhook::routes(&config));
        let pipeline = Pipeline::new(&config, store.clone())
            .context("building the pipeline")?
            .with_clock(self.clock.clone());
        let routes = routes(&config, &store, &self.metrics, &self.clock, &self.pipeline);
        {
            // Held across the sync so that no claim sees the new sources
            // table with the old pipeline, or the other way round.
            let mut live_pipeline = self.pipeline.write().await;
            self.store
                .sync_sources(&source_syncs(&config))
                .await
                .context("syncing sources")?;
            *live_pipeline = Arc::new(pipeline);
        }
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = routes;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config.clone();
        let names =
            |c: &Config| -> BTreeSet<String> { c.sources.iter().map(|s| s.name.clone()).collect() };
        let (before, after) = (names(&old), names(&config));
        tracing::info!(
            config = %config.path.display(),
            added = ?after.difference(&before).collect::<Vec<_>>(),
            removed = ?before.difference(&after).collect::<Vec<_>>(),
            sources = config.sources.len(),
            tag_rules = config.tag_rules.len(),
            feeds = config.feeds.len(),
            "config reloaded"
        );
        Ok(())
    }
}

/// `[daemon]` settings that the running process cannot take over: the
/// listener stays bound, the store stays open, the scheduler keeps its
/// bound and the log filter stays installed.
fn warn_restart_needed(old: &Config, new: &Config) {
    let (a, b) = (&old.daemon, &new.daemon);
    let changed: Vec<&str> = [
        ("listen", a.listen != b.listen),
        ("database", a.database != b.database),
        ("concurrency", a.concurrency != b.concurrency),
        ("log_level", a.log_level != b.log_level),
        ("pool_size", a.pool_size != b.pool_size),
        (
            "statement_timeout",
            a.statement_timeout != b.statement_timeout,
        ),
        ("retention", a.retention != b.retention),
        (
            "prune_schedule",
            a.prune_schedule.as_str() != b.prune_schedule.as_str(),
        ),
        (
            "tombstone_retention",
            a.tombstone_retention != b.tombstone_retention,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect();
    if !changed.is_empty() {
        tracing::warn!(
            keys = %changed.join(", "),
            "these [daemon] settings changed; they apply at the next restart"
        );
    }
}

/// A service handing each request to the routes in force. (A `Router`
/// with a fallback that forwards would route every request twice.)
#[derive(Clone)]
pub struct RoutesInForce(Arc<RwLock<Router>>);

impl tower::Service<Request> for RoutesInForce {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <Router as tower::Service<Request>>::Future;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // Routers are always ready.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut current = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        current.call(request)
    }
}

/// The HTTP routes for one config: the server's, and WebSub's callbacks
/// (which ingest through the pipeline in force when a push arrives).
fn routes(
    config: &Arc<Config>,
    store: &Store,
    metrics: &Recorder,
    clock: &Clock,
    pipeline: &LivePipeline,
) -> Router {
    let callbacks = crate::websub::Callbacks::new(
        store.clone(),
        pipeline.clone(),
        config.clone(),
        clock.clone(),
    );
    let state = Arc::new(AppState {
        store: store.clone(),
        site: site(config),
        config: config.clone(),
        cache: Default::default(),
        entries: Default::default(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        feed_days: Default::default(),
    });
    server::router(state, crate::websub::router(callbacks))
}

/// Keeps systemd's `STATUS=` current (sources, failing, next fetch) while a
/// service manager listens.
async fn report_status(store: Store, clock: Clock, shutdown: CancellationToken) {
    if !notify::enabled() {
        return;
    }
    let mut last = String::new();
    loop {
        let line = status_line(&store, &clock).await;
        if line != last {
            notify::status(&line);
            last = line;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(STATUS_EVERY) => {}
        }
    }
}

/// E.g. `12 sources, 1 failing; next fetch at 10:15:03 UTC`.
async fn status_line(store: &Store, clock: &Clock) -> String {
    let states = match store.source_states().await {
        Ok(states) => states,
        Err(e) => return format!("database error: {e}"),
    };
    let failing = states
        .iter()
        .filter(|s| s.consecutive_failures > 0 || s.disabled_reason.is_some())
        .count();
    let next = match store.next_due().await {
        Ok(Some(at)) if at <= clock.now() => "now".to_string(),
        Ok(Some(at)) => format!("at {}", at.format("%H:%M:%S UTC")),
        Ok(None) => "not scheduled".to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    format!(
        "{} sources, {failing} failing; next fetch {next}",
        states.len()
    )
}

/// Connects the configured database and syncs the sources into it.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(
        &config.daemon.database,
        &StoreOptions::from_config(&config.daemon),
    )
    .await
    .context("opening the database")?
    .with_near_duplicates(near_duplicates(&config.dedup))
    .with_health(HealthPolicy::from_config(&config.health))
    .with_webhooks(crate::webhook::routes(config));
    store
        .sync_sources(&source_syncs(config))
        .await
        .context("syncing sources")?;
    scheduler::reclaim_stale_local_leases(&store)
        .await
        .context("releasing stale leases")?;
    Ok(store)
}

/// `[dedup]` as the store applies it at ingest.
fn near_duplicates(dedup: &crate::config::DedupConfig) -> Option<NearDuplicates> {
    dedup.enabled.then(|| NearDuplicates {
        threshold: dedup.threshold,
        window: chrono::TimeDelta::from_std(dedup.window).unwrap_or(chrono::TimeDelta::days(3)),
    })
}

/// The configured sources as the store's sync takes them.
fn source_syncs(config: &Config) -> Vec<SourceSync> {
    config
        .sources
        .iter()
        .map(|s| SourceSync {
            name: s.name.clone(),
            url: s.url.to_string(),
            enabled: s.enabled,
            outlet: Some(s.outlet.clone()),
        })
        .collect()
}

/// The facts every rendered view carries.
pub fn site(config: &Config) -> Site {
    Site {
        base_url: config
            .daemon
            .base_url
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        author: config.daemon.author.clone(),
        hub: match &config.websub.hub {
            None => None,
            Some(HubMode::External(url)) => Some(url.to_string()),
            Some(HubMode::Itself) => Some(format!(
                "{}/websub/hub",
                config.daemon.base_url.as_str().trim_end_matches('/')
            )),
        },
        hub_takes_coverage: matches!(config.websub.hub, Some(HubMode::External(_))),
    }
}

/// Names this process in leases: host, pid and a random part.
pub fn instance_id() -> String {
    scheduler::instance_id()
}

#[cfg(test)]
mod tests {
    //! Supervision on a real daemon: its own SQLite file, feeds read from
    //! disk (`file:` sources), HTTP on 127.0.0.1. Panics are injected at
    //! `fault_point!`s, armed per source name so tests running at once do
    //! not trip over each other's.
    use super::*;
    use crate::fault;

    const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>\
        <link>https://wire.test/</link><item><title>Dam opens</title>\
        <link>https://wire.test/dam</link><guid>https://wire.test/dam</guid>\
        <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>";

    /// A config in `dir` with one `file:` source per name, all serving FEED.
    fn config(dir: &std::path::Path, daemon_extra: &str, sources: &[&str]) -> Config {
        let mut text = format!(
            "[daemon]\ndatabase = \"sqlite://{}\"\nlisten = \"127.0.0.1:0\"\n\
             base_url = \"http://feeds.test\"\nschedule = \"0 0 1 1 *\"\n{daemon_extra}\n",
            dir.join("tributary.db").display()
        );
        for name in sources {
            std::fs::write(dir.join(format!("{name}.xml")), FEED).unwrap();
            text += &format!("[[source]]\nname = \"{name}\"\nurl = \"file:{name}.xml\"\n");
        }
        let path = dir.join("tributary.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    struct Running {
        base: String,
        store: Store,
        shutdown: CancellationToken,
        handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    async fn start(config: Config) -> Running {
        let app = Application::build(config).await.unwrap();
        let shutdown = CancellationToken::new();
        Running {
            base: format!("http://127.0.0.1:{}", app.port()),
            store: app.store().clone(),
            shutdown: shutdown.clone(),
            handle: tokio::spawn(app.run_until_stopped(shutdown)),
        }
    }

    async fn get(url: String) -> (u16, String) {
        let response = reqwest::get(url).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Checks `holds` every 20 ms for up to 10 s; whether it became true.
    async fn eventually<F: std::future::Future<Output = bool>>(
        mut holds: impl FnMut() -> F,
    ) -> bool {
        for _ in 0..500 {
            if holds().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_refresh_that_panics_is_recorded_as_its_sources_failure_and_the_daemon_goes_on() {
        fault::arm("refresh", "crashing", usize::MAX);
        let dir = tempfile::tempdir().unwrap();
        let daemon = start(config(dir.path(), "", &["calm", "crashing"])).await;
        let fetched = eventually(|| async {
            let states = daemon.store.source_states().await.unwrap();
            states.iter().all(|s| s.last_fetch_at.is_some())
        })
        .await;
        assert!(fetched, "both sources should have a fetch recorded");

        // What `tributary sources` shows: the failure, counted, backed off.
        let states = daemon.store.source_states().await.unwrap();
        let crashing = states.iter().find(|s| s.name == "crashing").unwrap();
        assert_eq!(crashing.consecutive_failures, 1);
        assert_eq!(
            crashing.last_error.as_deref(),
            Some("internal error: fault injected at refresh")
        );
        assert!(crashing.backoff_until.is_some());
        let calm = states.iter().find(|s| s.name == "calm").unwrap();
        assert_eq!((calm.consecutive_failures, calm.articles), (0, 1));
        // Its lease was released with the record, not left to expire.
        assert!(daemon.store.lease_owners().await.unwrap().is_empty());

        // The daemon goes on serving; the panic shows in its metrics.
        assert_eq!(
            get(format!("{}/healthz", daemon.base)).await,
            (200, "ok\n".into())
        );
        let (_, feed) = get(format!("{}/feed.atom", daemon.base)).await;
        assert!(feed.contains("Dam opens"));
        let (_, metrics) = get(format!("{}/metrics", daemon.base)).await;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tributary_fetches_total{")
                    && l.contains("source=\"crashing\"")
                    && l.contains("outcome=\"error_internal\"")),
            "{metrics}"
        );
        assert!(metrics.contains("tributary_task_panics_total{task=\"refresh\"}"));

        daemon.shutdown.cancel();
        daemon.handle.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn tributary_fetch_reports_a_refresh_that_panics_as_failed_and_fetches_the_rest() {
        fault::arm("refresh", "crashing-once", usize::MAX);
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "", &["steady", "crashing-once"]);
        let store = open_store(&config).await.unwrap();
        let pipeline = Arc::new(Pipeline::new(&config, store.clone()).unwrap());
        let names = ["steady".to_string(), "crashing-once".to_string()];
        let lease = chrono::TimeDelta::minutes(5);
        let reports = scheduler::run_once(
            pipeline,
            "test",
            &names,
            lease,
            CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap();
        let outcomes: Vec<_> = reports
            .iter()
            .map(|r| (&r.source[..], &r.outcome))
            .collect();
        assert!(
            matches!(
                &outcomes[..],
                [
                    ("crashing-once", crate::pipeline::Outcome::Failed(e)),
                    ("steady", crate::pipeline::Outcome::Ingested { entries: 1, .. }),
                ] if e == "internal error: fault injected at refresh"
            ),
            "{outcomes:?}"
        );
        assert!(store.lease_owners().await.unwrap().is_empty());
        store.close().await;
    }

    #[tokio::test]
    async fn a_pruner_that_panics_is_restarted_and_prunes_at_a_later_tick() {
        // Only this test's daemon prunes at all: the others keep the
        // default nightly prune_schedule.
        fault::arm("prune", "", 1);
        let dir = tempfile::tempdir().unwrap();
        let extra = "retention = \"1s\"\nprune_schedule = \"* * * * * *\"";
        let daemon = start(config(dir.path(), extra, &["aging"])).await;
        let panicked_then_pruned = eventually(|| async {
            let (_, metrics) = get(format!("{}/metrics", daemon.base)).await;
            metrics.contains("tributary_task_panics_total{task=\"prune\"} 1")
                && daemon.store.source_states().await.unwrap()[0]
                    .last_fetch_at
                    .is_some()
                && daemon.store.article_count().await.unwrap() == 0
        })
        .await;
        assert!(
            panicked_then_pruned,
            "the pruner should panic once, then prune"
        );
        daemon.shutdown.cancel();
        daemon.handle.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_scheduler_that_panics_stops_the_daemon_cleanly_and_returns_the_error() {
        fault::arm("claim", "doomed", 1);
        let dir = tempfile::tempdir().unwrap();
        let daemon = start(config(dir.path(), "", &["doomed"])).await;
        let ended = tokio::time::timeout(Duration::from_secs(10), daemon.handle)
            .await
            .expect("the daemon should stop on its own")
            .unwrap();
        let error = format!("{:#}", ended.unwrap_err());
        assert!(error.contains("the scheduler panicked"), "{error}");
        // Drained and closed: the port refuses, the store is closed.
        assert!(reqwest::get(format!("{}/healthz", daemon.base))
            .await
            .is_err());
        assert!(!daemon.store.ping().await);
        assert!(
            !daemon.shutdown.is_cancelled(),
            "the caller's token is its own"
        );
    }
}
