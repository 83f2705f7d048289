//! The running daemon: one constructor for the binary and the tests.
//! `Application::build` connects the store and binds the listener;
//! `run_until_stopped` runs the scheduler and the server until shutdown.

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::publish::Site;
use crate::scheduler;
use crate::server::{self, AppState};
use crate::store::{SourceSync, Store, StoreOptions};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long open HTTP connections get to finish after a stop was asked.
const SERVER_DRAIN: Duration = Duration::from_secs(5);

pub struct Application {
    config: Arc<Config>,
    store: Store,
    listener: TcpListener,
}

impl Application {
    /// Connects the database (migrations applied), syncs the configured
    /// sources and binds `listen` (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = open_store(&config).await?;
        let listener = TcpListener::bind(&config.daemon.listen)
            .await
            .with_context(|| format!("binding {}", config.daemon.listen))?;
        Ok(Application {
            config: Arc::new(config),
            store,
            listener,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `shutdown` is cancelled, then stops cleanly: in-flight
    /// fetches are abandoned (nothing half-written: each refresh is one
    /// transaction), open requests get a few seconds, the database closes.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let pipeline = Arc::new(Pipeline::new(&self.config, self.store.clone())?);
        let daemon = &self.config.daemon;
        let scheduler = tokio::spawn(scheduler::run(
            pipeline,
            instance_id(),
            daemon.concurrency,
            scheduler::lease_for(daemon.timeout),
            shutdown.clone(),
        ));
        let state = Arc::new(AppState {
            store: self.store.clone(),
            site: site(&self.config),
            config: self.config.clone(),
        });
        tracing::info!(listen = %self.listener.local_addr()?, sources = self.config.sources.len(), "tributary running");
        let server_shutdown = shutdown.clone();
        let server = axum::serve(self.listener, server::router(state))
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await });
        let server = tokio::spawn(async move { server.await });

        shutdown.cancelled().await;
        tracing::info!("stopping");
        let scheduled = scheduler.await.context("scheduler task")?;
        match tokio::time::timeout(SERVER_DRAIN, server).await {
            Ok(joined) => joined.context("server task")??,
            Err(_) => tracing::warn!("open connections did not finish in time; closing them"),
        }
        self.store.close().await;
        scheduled.context("scheduler")?;
        Ok(())
    }
}

/// Connects the configured database and syncs the sources into it.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.daemon.database, &StoreOptions::default())
        .await
        .with_context(|| format!("opening database {}", config.daemon.database))?;
    let sources: Vec<SourceSync> = config
        .sources
        .iter()
        .map(|s| SourceSync {
            name: s.name.clone(),
            url: s.url.to_string(),
            enabled: s.enabled,
        })
        .collect();
    store
        .sync_sources(&sources)
        .await
        .context("syncing sources")?;
    Ok(store)
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
    }
}

/// Names this process in leases: host, pid and a random part.
pub fn instance_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
