//! The load generator: N keep-alive HTTP/1.1 connections (hyper's client
//! connection, nothing above it), each sending its next request as soon as
//! the previous answer is read, for a fixed duration after a warm-up;
//! every latency is recorded. Both servers of a comparison see this same
//! generator with the same connection count.

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, ETAG, HOST, IF_NONE_MATCH};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use crate::synth::{self, Rng};

/// What each request asks for.
#[derive(Debug, Clone)]
pub enum Workload {
    /// One path, optionally conditional.
    Fixed {
        path: String,
        if_none_match: Option<String>,
    },
    /// `/feed.atom?any=a,b&none=c` over random tags of the vocabulary:
    /// (almost) every request is a different view.
    Filtered { vocabulary: usize },
    /// One of these paths at random per request.
    Paths(std::sync::Arc<Vec<String>>),
}

impl Workload {
    fn path(&self, rng: &mut Rng) -> String {
        match self {
            Workload::Fixed { path, .. } => path.clone(),
            Workload::Filtered { vocabulary } => format!(
                "/feed.atom?any={},{}&none={}",
                synth::tag_term(rng.below(*vocabulary)),
                synth::tag_term(rng.below(*vocabulary)),
                synth::tag_term(rng.below(*vocabulary)),
            ),
            Workload::Paths(paths) => paths[rng.below(paths.len())].clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Sorted, microseconds.
    pub latencies_us: Vec<u32>,
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile of latency.
    pub fn p(&self, q: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        Duration::from_micros(u64::from(self.latencies_us[i]))
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests in {:.2?} ({:.0}/s), {} errors, {:.1} MB, statuses {:?}, p50 {:.2?} p99 {:.2?} max {:.2?}",
            self.requests,
            self.elapsed,
            self.rate(),
            self.errors,
            self.bytes as f64 / 1e6,
            self.statuses,
            self.p(0.5),
            self.p(0.99),
            self.p(1.0),
        )
    }
}

/// Runs `connections` connections against `addr` for `duration` (after a
/// warm-up of a fifth of it, not recorded).
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    workload: Workload,
) -> anyhow::Result<LoadResult> {
    let warmup = duration / 5;
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let workload = workload.clone();
        tasks.spawn(async move { connection(addr, workload, c as u64, start, end).await });
    }
    let mut total = LoadResult {
        elapsed: duration,
        ..LoadResult::default()
    };
    while let Some(joined) = tasks.join_next().await {
        let r = joined??;
        total.requests += r.requests;
        total.errors += r.errors;
        total.bytes += r.bytes;
        total.latencies_us.extend(r.latencies_us);
        for (status, n) in r.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
    }
    total.latencies_us.sort_unstable();
    if total.requests == 0 {
        bail!("no request completed against {addr}");
    }
    Ok(total)
}

async fn connection(
    addr: SocketAddr,
    workload: Workload,
    seed: u64,
    start: Instant,
    end: Instant,
) -> anyhow::Result<LoadResult> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let host = HeaderValue::from_str(&addr.to_string())?;
    let mut rng = Rng::new(0xbe9c_0000 + seed);
    let mut result = LoadResult::default();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let mut request = Request::get(workload.path(&mut rng))
            .header(HOST, host.clone())
            .body(Empty::<Bytes>::new())?;
        if let Workload::Fixed {
            if_none_match: Some(etag),
            ..
        } = &workload
        {
            request
                .headers_mut()
                .insert(IF_NONE_MATCH, HeaderValue::from_str(etag)?);
        }
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        if sent < start {
            continue;
        }
        result.latencies_us.push(sent.elapsed().as_micros() as u32);
        result.requests += 1;
        result.bytes += body.len() as u64;
        *result.statuses.entry(status).or_default() += 1;
        if !(status == 200 || status == 304) {
            result.errors += 1;
        }
    }
    Ok(result)
}

/// One plain GET: the body and its ETag.
pub async fn get_once(addr: SocketAddr, path: &str) -> anyhow::Result<(Bytes, String)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("GET {path}: {}", response.status());
    }
    let etag = response
        .headers()
        .get(ETAG)
        .context("no ETag")?
        .to_str()?
        .to_string();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((body, etag))
}
