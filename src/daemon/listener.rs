//! The exporter's accept loop, plain and TLS, with the limits an exposed listener needs
//! (issue 16, items 1 and 2):
//!
//! - **Header-read timeout** (`--web.read-header-timeout`, default 10 s): a request head must be
//!   complete this long after the connection opened or the previous response was sent (hyper's
//!   timer), so an idle keep-alive connection or a slowloris client is closed after it.
//! - **Idle timeout** (`--web.idle-timeout`, default 60 s): a connection that moves no byte in
//!   either direction for this long while no request is being handled is closed (a client that
//!   stops reading a response).
//! - **Header-size cap** (`--web.max-header-bytes`, default 16 KiB): hyper's read buffer of one
//!   connection never grows past it; a longer head is answered 431 and the connection closed.
//! - **Connection limit** (`--web.max-connections`, default 512, lowered to what the file
//!   descriptor budget leaves after the probers' share, see [`fd_budget`]): every socket the
//!   listener holds counts, TLS handshakes included. When the limit is reached, a new
//!   connection takes the place of the connection that has been quiet the longest and is not
//!   handling a request, so idle or dripping connections can never lock out a scrape.
//! - **TLS**: handshakes run in their own tasks (accept is never blocked by them), time out
//!   after `--web.tls-handshake-timeout` (default 3 s), and at most
//!   `--web.max-handshakes-per-source` (default 32) may be pending per source address: a new
//!   one from the same source replaces that source's oldest pending handshake.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of the exporter listener (defaults as documented in the README).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub tls_handshake_timeout: Duration,
    pub max_handshakes_per_source: usize,
}

/// hyper's smallest allowed read buffer.
pub const MIN_HEADER_BYTES: usize = 8192;

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            tls_handshake_timeout: Duration::from_secs(3),
            max_handshakes_per_source: 32,
        }
    }
}

/// The exporter's listener and lifecycle flags (`certprobe probe`, daemon mode).
#[derive(Debug, Clone, clap::Args)]
pub struct WebArgs {
    /// Enable POST /-/reload over HTTP (SIGHUP always reloads).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Turn off /probe (on-demand probes) entirely.
    #[arg(long = "web.disable-probe")]
    pub disable_probe: bool,
    /// Connections the exporter listener holds at most (TLS handshakes included); lowered to
    /// what the file descriptor limit leaves after the probes' share.
    #[arg(long = "web.max-connections", default_value_t = 512)]
    pub max_connections: usize,
    /// Time allowed for a request head, from the connection's start or the previous response
    /// (also how long an idle keep-alive connection stays open).
    #[arg(long = "web.read-header-timeout", default_value = "10s", value_parser = parse_duration)]
    pub read_header_timeout: crate::config::HumanDuration,
    /// A connection that moves no byte for this long outside a handler is closed.
    #[arg(long = "web.idle-timeout", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: crate::config::HumanDuration,
    /// Cap on the request head (request line and headers) of one connection, in bytes
    /// (at least 8192).
    #[arg(long = "web.max-header-bytes", default_value_t = 16384)]
    pub max_header_bytes: usize,
    /// TLS handshake timeout of the exporter listener.
    #[arg(long = "web.tls-handshake-timeout", default_value = "3s", value_parser = parse_duration)]
    pub tls_handshake_timeout: crate::config::HumanDuration,
    /// TLS handshakes pending at once per source address.
    #[arg(long = "web.max-handshakes-per-source", default_value_t = 32)]
    pub max_handshakes_per_source: usize,
    /// On-demand probes (/probe) in flight at once.
    #[arg(long = "web.probe-concurrency", default_value_t = 8)]
    pub probe_concurrency: usize,
    /// How long a /probe request waits for a free slot before it is answered 429.
    #[arg(long = "web.probe-queue-timeout", default_value = "10s", value_parser = parse_duration)]
    pub probe_queue_timeout: crate::config::HumanDuration,
    /// Rows per page of the status page's fleet table (`GET /`).
    #[arg(long = "web.page-size", default_value_t = crate::daemon::statuspage::DEFAULT_PAGE_SIZE)]
    pub page_size: usize,
    /// Serve no status page (`/` is then a list of links) and keep no copy of the outcomes
    /// for it (about 8 KB per target).
    #[arg(long = "web.disable-status-page")]
    pub disable_status_page: bool,
}

/// clap value parser (its errors are text).
fn parse_duration(s: &str) -> Result<crate::config::HumanDuration, String> {
    crate::config::HumanDuration::parse(s).map_err(|e| e.to_string())
}

impl Default for WebArgs {
    fn default() -> Self {
        let l = ListenerLimits::default();
        Self {
            enable_lifecycle: false,
            disable_probe: false,
            max_connections: l.max_connections,
            read_header_timeout: crate::config::HumanDuration(l.read_header_timeout),
            idle_timeout: crate::config::HumanDuration(l.idle_timeout),
            max_header_bytes: l.max_header_bytes,
            tls_handshake_timeout: crate::config::HumanDuration(l.tls_handshake_timeout),
            max_handshakes_per_source: l.max_handshakes_per_source,
            probe_concurrency: 8,
            probe_queue_timeout: crate::config::HumanDuration(Duration::from_secs(10)),
            page_size: crate::daemon::statuspage::DEFAULT_PAGE_SIZE,
            disable_status_page: false,
        }
    }
}

/// A `--web.*` option out of range (the message names the flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebOptionsError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("--web.max-header-bytes must be at least {MIN_HEADER_BYTES}")]
    HeaderBytes,
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
}

impl WebArgs {
    /// Check the values (the messages name the flag).
    pub fn validate(&self) -> Result<(), WebOptionsError> {
        for (flag, n) in [
            ("--web.max-connections", self.max_connections),
            (
                "--web.max-handshakes-per-source",
                self.max_handshakes_per_source,
            ),
            ("--web.page-size", self.page_size),
            ("--web.probe-concurrency", self.probe_concurrency),
        ] {
            if n == 0 {
                return Err(WebOptionsError::Zero(flag));
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(WebOptionsError::HeaderBytes);
        }
        for (flag, d) in [
            ("--web.read-header-timeout", self.read_header_timeout),
            ("--web.idle-timeout", self.idle_timeout),
            ("--web.tls-handshake-timeout", self.tls_handshake_timeout),
        ] {
            if d.0.is_zero() {
                return Err(WebOptionsError::ZeroDuration(flag));
            }
        }
        Ok(())
    }

    /// The listener limits, before the file descriptor budget lowers `max_connections`.
    pub fn limits(&self) -> ListenerLimits {
        ListenerLimits {
            max_connections: self.max_connections,
            read_header_timeout: self.read_header_timeout.0,
            idle_timeout: self.idle_timeout.0,
            max_header_bytes: self.max_header_bytes,
            tls_handshake_timeout: self.tls_handshake_timeout.0,
            max_handshakes_per_source: self.max_handshakes_per_source,
        }
    }
}

/// Sockets one probe may hold at once (every address of an endpoint is probed concurrently; the
/// MTLS enforcement probe and the legacy capture add one each), as counted by [`fd_budget`].
pub const SOCKETS_PER_PROBE: u64 = 4;
/// Descriptors kept for everything else: the runtime, logs, config and certificate files.
pub const FD_RESERVE_BASE: u64 = 64;
/// The listener never gets fewer connections than this, whatever the budget says.
pub const MIN_LISTENER_CONNECTIONS: usize = 16;

/// How the process's file descriptors are shared (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft `RLIMIT_NOFILE` before and after raising it to the hard limit.
    pub soft_before: u64,
    pub limit: u64,
    /// Kept for probes (scheduler and `/probe`) and the process itself.
    pub reserved_for_probes: u64,
    /// What the listener may hold (connections and TLS handshakes).
    pub listener_connections: usize,
    /// The listener limit asked for (`--web.max-connections`).
    pub requested: usize,
}

/// Raise the soft `RLIMIT_NOFILE` up to the hard limit, then split the descriptors: the probers'
/// share (`probes_in_flight` × [`SOCKETS_PER_PROBE`] + [`FD_RESERVE_BASE`]) first, the listener
/// gets at most what is left, so exporter clients can never take the sockets probes need.
pub fn fd_budget(requested: usize, probes_in_flight: usize) -> FdBudget {
    let soft_before = rlimit::Resource::NOFILE
        .get()
        .map(|(s, _)| s)
        .unwrap_or(1024);
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(soft_before);
    budget_for(limit, soft_before, requested, probes_in_flight)
}

fn budget_for(limit: u64, soft_before: u64, requested: usize, probes: usize) -> FdBudget {
    let reserved = (probes as u64)
        .saturating_mul(SOCKETS_PER_PROBE)
        .saturating_add(FD_RESERVE_BASE);
    let left = limit.saturating_sub(reserved);
    let listener = (requested as u64)
        .min(left)
        .max(MIN_LISTENER_CONNECTIONS as u64) as usize;
    FdBudget {
        soft_before,
        limit,
        reserved_for_probes: reserved,
        listener_connections: listener,
        requested,
    }
}

fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// One socket the listener holds.
struct Entry {
    source: IpAddr,
    handshaking: bool,
    /// Milliseconds since the registry's epoch of the last byte moved.
    progress: Arc<AtomicU64>,
    /// Requests being handled on this connection.
    busy: Arc<AtomicUsize>,
    cancel: CancellationToken,
}

/// Every connection of one listener, for the limit and the eviction.
struct Registry {
    epoch: Instant,
    max: usize,
    per_source: usize,
    inner: Mutex<(u64, HashMap<u64, Entry>)>,
    evicted: AtomicU64,
    refused: AtomicU64,
}

/// What a connection task gets from [`Registry::admit`].
struct Admitted {
    id: u64,
    progress: Arc<AtomicU64>,
    busy: Arc<AtomicUsize>,
    cancel: CancellationToken,
}

impl Registry {
    fn new(max: usize, per_source: usize) -> Self {
        Self {
            epoch: Instant::now(),
            max: max.max(1),
            per_source: per_source.max(1),
            inner: Mutex::new((0, HashMap::new())),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Make room for a connection from `source` and register it; None when every connection is
    /// handling a request (the new one is then closed).
    fn admit(&self, source: IpAddr, handshaking: bool) -> Option<Admitted> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (next, conns) = &mut *guard;
        if handshaking {
            let pending: Vec<(u64, u64)> = conns
                .iter()
                .filter(|(_, e)| e.handshaking && e.source == source)
                .map(|(id, e)| (*id, e.progress.load(Ordering::Relaxed)))
                .collect();
            if pending.len() >= self.per_source {
                if let Some((id, _)) = pending.iter().min_by_key(|(id, p)| (*p, *id)) {
                    self.evict(conns, *id);
                }
            }
        }
        if conns.len() >= self.max {
            let quietest = conns
                .iter()
                .filter(|(_, e)| e.busy.load(Ordering::Relaxed) == 0)
                .min_by_key(|(id, e)| (e.progress.load(Ordering::Relaxed), **id))
                .map(|(id, _)| *id);
            match quietest {
                Some(id) => self.evict(conns, id),
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        *next += 1;
        let id = *next;
        let entry = Entry {
            source,
            handshaking,
            progress: Arc::new(AtomicU64::new(millis_since(self.epoch))),
            busy: Arc::new(AtomicUsize::new(0)),
            cancel: CancellationToken::new(),
        };
        let admitted = Admitted {
            id,
            progress: entry.progress.clone(),
            busy: entry.busy.clone(),
            cancel: entry.cancel.clone(),
        };
        conns.insert(id, entry);
        Some(admitted)
    }

    fn evict(&self, conns: &mut HashMap<u64, Entry>, id: u64) {
        if let Some(e) = conns.remove(&id) {
            e.cancel.cancel();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn handshake_done(&self, id: u64) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = guard.1.get_mut(&id) {
            e.handshaking = false;
        }
    }

    fn remove(&self, id: u64) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(&id);
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// A socket that records when it last moved a byte and fails once it has been quiet for the
/// idle timeout while no request is being handled.
struct Watched<S> {
    inner: S,
    epoch: Instant,
    progress: Arc<AtomicU64>,
    busy: Arc<AtomicUsize>,
    idle: Duration,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Watched<S> {
    fn touch(&mut self) {
        self.progress
            .store(millis_since(self.epoch), Ordering::Relaxed);
        self.stall = None;
    }

    /// Called when the inner socket returned Pending: Ready(error) once the connection has been
    /// quiet for the idle timeout with no request in a handler.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        loop {
            let last = self.epoch + Duration::from_millis(self.progress.load(Ordering::Relaxed));
            let deadline = tokio::time::Instant::from_std(last + self.idle);
            let sleep = self
                .stall
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.busy.load(Ordering::Relaxed) > 0 {
                // A handler is working (a /probe may take a while): look again later.
                self.touch();
                continue;
            }
            return Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "exporter connection idle",
            ));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_stall(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_stall(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Counts a request as being handled until its response head is ready.
struct BusyGuard(Arc<AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve `app` on `tcp` (TLS when `tls` is set) until `shutdown` resolves, then let in-flight
/// requests finish (at most 5 s) and return.
pub async fn serve(
    tcp: TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::new(
        limits.max_connections,
        limits.max_handshakes_per_source,
    ));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_headers(100);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::debug!(error = %e, "exporter accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(adm) = registry.admit(peer.ip(), acceptor.is_some()) else {
            tracing::debug!(%peer, "exporter connection refused: every connection is busy");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let registered = Registered {
            registry: registry.clone(),
            id: adm.id,
        };
        let io = Watched {
            inner: stream,
            epoch: registry.epoch,
            progress: adm.progress,
            busy: adm.busy.clone(),
            idle: limits.idle_timeout,
            stall: None,
        };
        let app = app.clone();
        let http = http.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        let limits = limits.clone();
        let cancel = adm.cancel;
        let busy = adm.busy;
        tracker.spawn(async move {
            let _registered = registered;
            match acceptor {
                None => serve_connection(io, peer, app, http, busy, cancel, stop).await,
                Some(acceptor) => {
                    let hs =
                        tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(io));
                    let tls = tokio::select! {
                        r = hs => match r {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "exporter TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "exporter TLS handshake timed out");
                                return;
                            }
                        },
                        _ = cancel.cancelled() => return,
                        _ = stop.cancelled() => return,
                    };
                    _registered.registry.handshake_done(_registered.id);
                    serve_connection(tls, peer, app, http, busy, cancel, stop).await
                }
            }
        });
    }
    drop(tcp);
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    let (evicted, refused) = (
        registry.evicted.load(Ordering::Relaxed),
        registry.refused.load(Ordering::Relaxed),
    );
    if evicted > 0 || refused > 0 {
        tracing::info!(
            evicted,
            refused,
            "exporter listener: connections closed to stay within the connection limit"
        );
    }
    Ok(())
}

async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    app: Router,
    http: hyper::server::conn::http1::Builder,
    busy: Arc<AtomicUsize>,
    cancel: CancellationToken,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        busy.fetch_add(1, Ordering::Relaxed);
        let guard = BusyGuard(busy.clone());
        let mut app = app.clone();
        async move {
            let _guard = guard;
            tower_service::Service::call(&mut app, req).await
        }
    });
    let conn = http.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "exporter connection ended");
            }
        }
        _ = cancel.cancelled() => {
            tracing::debug!(%peer, "exporter connection closed to make room for a new one");
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_gets_what_the_probes_leave() {
        // ulimit -n 1024, concurrency 64 + 8 on-demand probes: 72 * 4 + 64 = 352 kept.
        let b = budget_for(1024, 1024, 512, 72);
        assert_eq!(b.reserved_for_probes, 352);
        assert_eq!(b.listener_connections, 512);
        let b = budget_for(512, 512, 512, 72);
        assert_eq!(b.listener_connections, 160);
        // Never below the floor, even when the probes would take everything.
        let b = budget_for(256, 256, 512, 72);
        assert_eq!(b.listener_connections, MIN_LISTENER_CONNECTIONS);
    }

    #[test]
    fn a_full_registry_evicts_the_quietest_idle_connection_never_a_busy_one() {
        let r = Registry::new(2, 32);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = r.admit(ip, false).unwrap();
        let b = r.admit(ip, false).unwrap();
        a.progress.store(5, Ordering::Relaxed);
        b.progress.store(1, Ordering::Relaxed);
        let c = r.admit(ip, false).unwrap();
        assert!(b.cancel.is_cancelled() && !a.cancel.is_cancelled());
        a.busy.store(1, Ordering::Relaxed);
        c.busy.store(1, Ordering::Relaxed);
        assert!(r.admit(ip, false).is_none(), "every connection is busy");
    }

    #[test]
    fn pending_handshakes_are_capped_per_source() {
        let r = Registry::new(100, 2);
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "::1".parse().unwrap();
        let a = r.admit(one, true).unwrap();
        let _b = r.admit(one, true).unwrap();
        let x = r.admit(other, true).unwrap();
        let _c = r.admit(one, true).unwrap();
        assert!(a.cancel.is_cancelled(), "the oldest of that source goes");
        assert!(!x.cancel.is_cancelled(), "other sources keep theirs");
    }
}
