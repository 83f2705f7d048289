//! The accept loop: HTTP/1.1 connections with a header-read timeout and a
//! bound on how many are open at once, so that clients holding connections
//! open (partial headers, idle keep-alive) cannot use up the process's file
//! descriptors and lock everyone else out.
//!
//! Fairness at the bound: a new connection is always admitted by closing the
//! oldest connection that has no request in progress, preferring those that
//! never sent a complete request (a slow-header flood) over idle keep-alive
//! connections of clients already served. A normal client needs the few
//! milliseconds its request takes to send, so a flood must open connections
//! faster than that to starve it; the flood's own connections are what gets
//! closed. Only when every connection is busy with a request is a new one
//! refused (closed at once, rather than left waiting in the backlog).

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Time a client gets to send a request's headers, counted from the
/// connection's start or the end of its previous response: it also ends
/// idle keep-alive connections.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, whatever the file limit allows.
const MAX_CONNECTIONS: usize = 8192;
/// Warnings about shedding and accept errors, at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What one listener admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// Connections bounded by this process's open-file limit, leaving a
    /// quarter of it (at least 64) for the database, fetches and logs.
    pub fn for_this_process() -> Limits {
        Limits {
            max_connections: connections_for(open_file_limit().unwrap_or(1024)),
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

fn connections_for(open_files: u64) -> usize {
    let reserve = (open_files / 4).max(64);
    let allowed = usize::try_from(open_files.saturating_sub(reserve)).unwrap_or(usize::MAX);
    allowed.clamp(16, MAX_CONNECTIONS)
}

/// The soft `RLIMIT_NOFILE` (Linux; elsewhere the caller assumes 1,024).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// Serves `service` on `listener` until `shutdown`; then open connections
/// finish their request in progress and close, and this returns once all
/// are closed.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: CancellationToken,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let registry = Arc::new(Registry::default());
    let tracker = TaskTracker::new();
    let mut warned = Warned::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors (or memory): make room and pause rather
                // than spin on an error that will not go away by itself.
                if warned.due() {
                    tracing::warn!(error = %e, open = registry.len(), "accept failed; closing the oldest idle connection");
                }
                if registry.shed_one() {
                    crate::metrics::record_connections_shed("accept_error", 1);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let Some((slot, shed)) = registry.admit(limits.max_connections) else {
            crate::metrics::record_connections_shed("busy", 1);
            if warned.due() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "every connection is busy with a request; refusing new ones"
                );
            }
            drop(stream);
            continue;
        };
        if shed > 0 {
            crate::metrics::record_connections_shed("idle", shed);
        }
        if shed > 0 && warned.due() {
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection limit reached; closing the oldest idle connections"
            );
        }
        let connection = Connection {
            registry: registry.clone(),
            slot,
        };
        tracker.spawn(connection.run(
            stream,
            service.clone(),
            limits.header_timeout,
            shutdown.clone(),
        ));
        // Shed connections close at their task's next poll: wait for that
        // rather than accept past the bound meanwhile.
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = registry.room(limits.max_connections) => {}
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// Errors of one connection that went away before it was accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[derive(Default)]
struct Warned(Option<Instant>);

impl Warned {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

/// What the registry knows of one open connection.
#[derive(Clone)]
struct Slot {
    id: u64,
    /// Requests whose handler is running.
    in_flight: Arc<AtomicUsize>,
    /// Requests whose headers arrived complete.
    requests: Arc<AtomicUsize>,
    /// Cancelled to close the connection.
    shed: CancellationToken,
}

/// The open connections, oldest first (ids only grow), and those told to
/// close that have not closed yet: their sockets still count.
#[derive(Default)]
struct Registry {
    state: Mutex<Open>,
    next: AtomicU64,
    /// Signalled each time a connection closes.
    closed: Notify,
}

#[derive(Default)]
struct Open {
    live: BTreeMap<u64, Slot>,
    closing: usize,
}

impl Open {
    /// Tells the connection `admit` would close first, if any, to close.
    fn shed_one(&mut self) -> bool {
        let Some(slot) = Registry::victim(&self.live).and_then(|id| self.live.remove(&id)) else {
            return false;
        };
        slot.shed.cancel();
        self.closing += 1;
        true
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// A slot for a new connection, and how many others were told to
    /// close to make room; `None` when every open connection is busy.
    fn admit(&self, max: usize) -> Option<(Slot, usize)> {
        let mut open = self.lock();
        let mut shed = 0;
        while open.live.len() >= max {
            if !open.shed_one() {
                return None;
            }
            shed += 1;
        }
        let slot = Slot {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            in_flight: Default::default(),
            requests: Default::default(),
            shed: CancellationToken::new(),
        };
        open.live.insert(slot.id, slot.clone());
        Some((slot, shed))
    }

    fn shed_one(&self) -> bool {
        self.lock().shed_one()
    }

    /// Returns once at most `max` sockets are open, counting those told to
    /// close: the next accept then exceeds the bound by one at most.
    async fn room(&self, max: usize) {
        loop {
            {
                let open = self.lock();
                if open.live.len() + open.closing <= max {
                    return;
                }
            }
            // A permit stored by a close since the check wakes this at once.
            self.closed.notified().await;
        }
    }

    /// The oldest idle connection that never sent a whole request, else the
    /// oldest idle one.
    fn victim(live: &BTreeMap<u64, Slot>) -> Option<u64> {
        let idle = || {
            live.values()
                .filter(|s| s.in_flight.load(Ordering::SeqCst) == 0)
        };
        idle()
            .find(|s| s.requests.load(Ordering::SeqCst) == 0)
            .or_else(|| idle().next())
            .map(|s| s.id)
    }

    fn leave(&self, id: u64) {
        {
            let mut open = self.lock();
            if open.live.remove(&id).is_none() {
                open.closing = open.closing.saturating_sub(1);
            }
        }
        self.closed.notify_one();
    }
}

/// One accepted connection; leaves the registry when dropped.
struct Connection {
    registry: Arc<Registry>,
    slot: Slot,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.registry.leave(self.slot.id);
    }
}

impl Connection {
    async fn run<S>(
        self,
        stream: TcpStream,
        service: S,
        header_timeout: Duration,
        shutdown: CancellationToken,
    ) where
        S: tower::Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let (in_flight, requests) = (self.slot.in_flight.clone(), self.slot.requests.clone());
        let handler = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            requests.fetch_add(1, Ordering::SeqCst);
            let busy = Busy::enter(in_flight.clone());
            let call = service.clone().oneshot(request.map(Body::new));
            async move {
                let response = call.await;
                drop(busy);
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(stream), handler);
        tokio::pin!(connection);
        let shed = self.slot.shed.clone();
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = shed.cancelled() => return,
            _ = shutdown.cancelled() => {}
        }
        // Stopping: the request in progress, if any, may finish.
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = connection => {}
            _ = shed.cancelled() => {}
        }
    }
}

/// Counts a request in progress until dropped (also when the connection
/// goes away mid-request).
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_other_descriptors() {
        assert_eq!(connections_for(1024), 768);
        assert_eq!(connections_for(256), 192);
        assert_eq!(connections_for(100), 36);
        assert_eq!(connections_for(10), 16);
        assert_eq!(connections_for(1 << 20), MAX_CONNECTIONS);
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn at_the_bound_the_oldest_never_served_connection_goes_first() {
        let registry = Registry::default();
        let (served, _) = registry.admit(3).unwrap();
        served.requests.fetch_add(1, Ordering::SeqCst);
        let (slow, _) = registry.admit(3).unwrap();
        let (busy, _) = registry.admit(3).unwrap();
        busy.in_flight.fetch_add(1, Ordering::SeqCst);
        let (fresh, shed) = registry.admit(3).unwrap();
        assert!(shed == 1 && slow.shed.is_cancelled());
        fresh.requests.fetch_add(1, Ordering::SeqCst);
        assert!(!served.shed.is_cancelled() && !busy.shed.is_cancelled());
        // No never-served one left: the oldest idle keep-alive one.
        let (_, shed) = registry.admit(3).unwrap();
        assert!(shed == 1 && served.shed.is_cancelled());
        // Every connection busy: refused.
        let open: Vec<Slot> = registry.lock().live.values().cloned().collect();
        for slot in &open {
            slot.in_flight.fetch_add(1, Ordering::SeqCst);
        }
        assert!(registry.admit(3).is_none());
        assert_eq!(registry.len(), 3);
        // The two told to close still count until they have closed.
        assert_eq!(registry.lock().closing, 2);
        registry.leave(slow.id);
        registry.leave(served.id);
        assert_eq!(registry.lock().closing, 0);
    }
}
