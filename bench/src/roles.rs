//! The processes and servers of a benchmark run: the corpus server (in the
//! harness), and the child roles measured from outside: one `tributary
//! fetch` cycle, the daemon, and the static server of the serving ceiling.

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use sqlx::Connection;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tributary::app::{self, Application};
use tributary::config::Config;
use tributary::pipeline::{Outcome, Pipeline};
use tributary::scheduler;

pub async fn run(
    role: &str,
    config: &Option<PathBuf>,
    body: &Option<PathBuf>,
    etag: &Option<String>,
) -> anyhow::Result<()> {
    match role {
        "__fetch" => fetch(config.as_ref().context("--config")?).await,
        "__serve" | "__daemon" => serve(config.as_ref().context("--config")?).await,
        "__static" => {
            let body = std::fs::read(body.as_ref().context("--body")?)?;
            serve_static(Bytes::from(body), etag.clone().context("--etag")?).await
        }
        other => anyhow::bail!("unknown role {other}"),
    }
}

/// Exactly what `tributary fetch` does (cli.rs), timed, then a RESULT line
/// with the tallies and this process's peak RSS.
async fn fetch(path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    tributary::telemetry::init(Some("warn"));
    let sampler = crate::peak::Sampler::start();
    let started = Instant::now();
    let store = app::open_store(&config).await?;
    let opened = started.elapsed();
    let pipeline = Arc::new(Pipeline::new(&config, store.clone())?);
    let names: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let lease = scheduler::lease_for(config.daemon.timeout);
    let reports = scheduler::run_once(
        pipeline,
        &app::instance_id(),
        &names,
        lease,
        CancellationToken::new(),
        |_| {},
    )
    .await?;
    store.close().await;
    let (mut entries, mut inserted, mut not_modified, mut failed) = (0, 0, 0, 0);
    for report in &reports {
        match &report.outcome {
            Outcome::Ingested {
                entries: n, stats, ..
            } => {
                entries += n;
                inserted += stats.inserted;
            }
            Outcome::NotModified => not_modified += 1,
            Outcome::Failed(error) => {
                if failed == 0 {
                    eprintln!("{}: {error}", report.source);
                }
                failed += 1;
            }
        }
    }
    let wall = started.elapsed();
    let peak = sampler.stop();
    println!(
        "RESULT wall_ms={} open_ms={} sources={} entries={entries} inserted={inserted} \
         not_modified={not_modified} failed={failed} hwm_kb={} cpu_ms={} {}",
        wall.as_millis(),
        opened.as_millis(),
        reports.len(),
        crate::procs::proc_status_kb(std::process::id(), "VmHWM").unwrap_or(0),
        crate::procs::cpu_ms(std::process::id()).unwrap_or(0),
        peak.result_pairs()
    );
    Ok(())
}

/// Prints `PORT n` once listening, then runs until stdin closes.
fn stop_on_stdin_eof() -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
        stop.cancel();
    });
    token
}

/// The daemon as `tributary run` builds it (scheduler and server).
async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    tributary::telemetry::init(config.daemon.log_level.as_deref());
    let application = Application::build(config).await?;
    println!("PORT {}", application.port());
    application.run_until_stopped(stop_on_stdin_eof()).await
}

/// The serving ceiling: the same bytes and validators from memory, with the
/// same framework, and a 304 when `If-None-Match` matches.
async fn serve_static(body: Bytes, etag: String) -> anyhow::Result<()> {
    let etag = HeaderValue::from_str(&etag)?;
    let handler = move |headers: HeaderMap| {
        let body = body.clone();
        let etag = etag.clone();
        async move {
            let fresh = headers.get(header::IF_NONE_MATCH) == Some(&etag);
            let mut response = if fresh {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                (
                    [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
                    body,
                )
                    .into_response()
            };
            response.headers_mut().insert(header::ETAG, etag);
            response
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    let stop = stop_on_stdin_eof();
    axum::serve(listener, Router::new().fallback(get(handler)))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}

/// The feeds being served, replaceable between cycles; the generation
/// (how many times they were replaced) is part of each ETag.
pub struct Corpus {
    served: std::sync::RwLock<(u64, Arc<Vec<Bytes>>)>,
}

impl Corpus {
    pub fn replace(&self, feeds: Arc<Vec<Bytes>>) {
        let mut served = self.served.write().unwrap_or_else(|e| e.into_inner());
        *served = (served.0 + 1, feeds);
    }
}

/// Serves the synthetic feeds at `synth::feed_path(i)` with an ETag each,
/// answering 304 to a matching `If-None-Match` (for the refetch cycle).
pub async fn serve_corpus(feeds: Arc<Vec<Bytes>>) -> anyhow::Result<(SocketAddr, Arc<Corpus>)> {
    async fn feed(
        State(corpus): State<Arc<Corpus>>,
        Path(file): Path<String>,
        headers: HeaderMap,
    ) -> Response {
        let index = file
            .strip_prefix('s')
            .and_then(|f| f.strip_suffix(".xml"))
            .and_then(|n| n.parse::<usize>().ok());
        let (generation, feeds) = corpus
            .served
            .read()
            .map(|served| served.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let Some(bytes) = index.and_then(|i| feeds.get(i)) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let etag = format!("\"{generation}-{}-{}\"", index.unwrap_or(0), bytes.len());
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes());
        if fresh {
            return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
        }
        (
            [
                (
                    header::CONTENT_TYPE,
                    "application/rss+xml; charset=utf-8".to_string(),
                ),
                (header::ETAG, etag),
            ],
            bytes.clone(),
        )
            .into_response()
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let corpus = Arc::new(Corpus {
        served: std::sync::RwLock::new((0, feeds)),
    });
    let router = Router::new()
        .route("/sources/{file}", get(feed))
        .with_state(corpus.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((addr, corpus))
}

/// Drops and creates database `name` on the PostgreSQL `server`.
pub async fn recreate_database(server: &str, name: &str) -> anyhow::Result<()> {
    let admin = format!("{}/postgres", server.trim_end_matches('/'));
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .with_context(|| format!("connecting {admin}"))?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
