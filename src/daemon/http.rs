//! The exporter's HTTP endpoints (axum 0.8, HTTP/1.1):
//!
//! | route | |
//! |---|---|
//! | `GET /metrics` | cached probe results; OpenMetrics when `Accept` asks for it, else text 0.0.4 |
//! | `GET /probe?endpoint=NAME` | fresh probe of a configured endpoint, its families only (404 if unknown) |
//! | `GET /probe?target=HOST[:PORT]` | ad-hoc probe, 403 unless HOST matches `allow_adhoc_targets` |
//! | `GET /healthz` | 200 `ok` while the process serves |
//! | `GET /ready` | 200 once the config is loaded and the first round finished, else 503 |
//! | `POST /-/reload` | reload the config: 200, or 500 with the error text (403 unless `--web.enable-lifecycle`) |
//! | `GET /` | the status page: the fleet table, worst first (`?q=` filter, `?page=`, `?format=json`) |
//! | `GET /endpoint/NAME` | one endpoint in detail (`?format=json`) |
//! | `POST /probe?endpoint=NAME` | "probe now" from the status page: same-origin requests only; 303 back to the page |
//! | `GET /static/app.css`, `GET /static/app.js` | the page's embedded assets |
//!
//! The status page ([`super::statuspage`]) renders the [`StatusBoard`] the daemon's sink fills
//! with the same outcomes the metrics are made of; every page carries a strict
//! Content-Security-Policy ([`super::statuspage::CSP`]).
//!
//! The HTTP layer never probes by itself: `/probe` calls the [`Prober`] the daemon supplies, and
//! `/-/reload` sends a [`ReloadRequest`] to the daemon. Basic auth and TLS come from the
//! exporter web config ([`super::webconfig`]); basic auth covers every route except `/healthz`
//! and `/ready` (liveness and readiness say nothing an attacker can use, and Kubernetes probes
//! and the container HEALTHCHECK must work with auth on). Connections are accepted by
//! [`super::listener`] (timeouts, header cap, connection limit). `/probe` runs at most
//! `--web.probe-concurrency` probes at once; a request that finds no free slot within the queue
//! timeout (or that finds the queue full) is answered 429.
//!
//! Size: about 1,000 lines, every route's handler with its bounds (probe queue, same-origin
//! check, reload channel), kept in one file so the routes table above stays the whole story;
//! the tests are the HTTP suites in `tests/it/`.
//!
//! Wiring on the daemon side:
//!
//! ```text
//! let metrics = Arc::new(Metrics::new(BuildInfo::from_build_env()));
//! let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
//! let prober: Prober = Arc::new(move |q| Box::pin(async move {
//!     // ProbeQuery::Endpoint(name): look the endpoint up in the current config
//!     //   (Err(ProbeRefused::UnknownEndpoint) if absent), runner::probe_endpoint(..),
//!     //   optionally metrics.record(..) each outcome.
//!     // ProbeQuery::Target { host, port }: already matched against allow_adhoc_targets.
//! }));
//! let web = match web_config_path { Some(p) => WebConfig::load(p)?, None => WebConfig::default() };
//! let state = Arc::new(AppState::new(metrics.clone(), prober).with_reload(reload_tx).with_web_config(web));
//! state.set_adhoc_patterns(&config.global.allow_adhoc_targets)?;   // again on every reload
//! tokio::spawn(http::serve(listener, state.clone(), shutdown_signal));
//! // after the first round: state.set_ready(true)
//! // on reload: metrics.retain_endpoints(&names); metrics.set_config_reload(ok, now)
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::authguard::Source;
use super::listener::ListenerLimits;
use super::metrics::{Metrics, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT};
use super::statuspage::render::{self, FleetQuery, ProbeNotice};
use super::statuspage::StatusBoard;
use super::webconfig::{AuthResult, BasicAuth, WebConfig};
use crate::outcome::ProbeOutcome;

/// Default exporter listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9915";

/// A reload request from `POST /-/reload`; the daemon answers on `reply` (Err = the same
/// message `check-config` would print).
#[derive(Debug)]
pub struct ReloadRequest {
    pub reply: oneshot::Sender<Result<(), super::ReloadError>>,
}

/// What `/probe` asks the daemon to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeQuery {
    /// A configured endpoint, by name.
    Endpoint(String),
    /// An ad-hoc target, already checked against `allow_adhoc_targets`.
    Target { host: String, port: u16 },
}

/// Why the daemon refused an on-demand probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeRefused {
    #[error("unknown endpoint {0:?}")]
    UnknownEndpoint(String),
    #[error("target not allowed: {0}")]
    NotAllowed(String),
    #[error("probe unavailable: {0}")]
    Unavailable(String),
}

pub type ProbeFuture =
    Pin<Box<dyn Future<Output = Result<Vec<ProbeOutcome>, ProbeRefused>> + Send>>;

/// The daemon's on-demand probe function (the injection seam between HTTP and scheduler). It
/// should share the scheduler's global concurrency bound and per-probe timeouts; `/probe`
/// additionally bounds the wait by Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` header.
pub type Prober = Arc<dyn Fn(ProbeQuery) -> ProbeFuture + Send + Sync>;

/// Where the outcomes of a "probe now" from the status page go: the daemon re-judges them with
/// the endpoint's pool members and records them like a scheduled probe (metrics and board).
/// Without one, they are recorded into the board as they are.
pub type Recorder = Arc<dyn Fn(Vec<ProbeOutcome>) + Send + Sync>;

/// Shared state of the HTTP server.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    ready: AtomicBool,
    reload: Option<mpsc::Sender<ReloadRequest>>,
    prober: Prober,
    adhoc: RwLock<Arc<Vec<HostPattern>>>,
    /// `allow_adhoc_ports` in effect; None = any port (the library default; the daemon always
    /// sets it).
    adhoc_ports: RwLock<Option<Arc<Vec<u16>>>>,
    web: WebConfig,
    limits: ListenerLimits,
    lifecycle: bool,
    probe_enabled: bool,
    probe_slots: Arc<tokio::sync::Semaphore>,
    probe_queue: ProbeQueue,
    probe_waiting: std::sync::atomic::AtomicUsize,
    board: Arc<StatusBoard>,
    page_size: usize,
    recorder: Option<Recorder>,
}

/// How `/probe` requests wait for a slot.
#[derive(Debug, Clone, Copy)]
struct ProbeQueue {
    /// Requests that may wait at once (beyond that: 429 at once).
    max_waiting: usize,
    timeout: std::time::Duration,
}

/// Counts a `/probe` request waiting for a slot.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ready", &self.is_ready())
            .field("reload", &self.reload.is_some())
            .field("web", &self.web)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(metrics: Arc<Metrics>, prober: Prober) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
            reload: None,
            prober,
            adhoc: RwLock::new(Arc::new(Vec::new())),
            adhoc_ports: RwLock::new(None),
            web: WebConfig::default(),
            limits: ListenerLimits::default(),
            lifecycle: false,
            probe_enabled: true,
            probe_slots: Arc::new(tokio::sync::Semaphore::new(8)),
            probe_queue: ProbeQueue {
                max_waiting: 32,
                timeout: std::time::Duration::from_secs(10),
            },
            probe_waiting: std::sync::atomic::AtomicUsize::new(0),
            board: Arc::new(StatusBoard::new()),
            page_size: super::statuspage::DEFAULT_PAGE_SIZE,
            recorder: None,
        }
    }

    /// The board the status page shows (the daemon shares it with its outcome sink).
    pub fn with_board(mut self, board: Arc<StatusBoard>) -> Self {
        self.board = board;
        self
    }

    /// The status page's board.
    pub fn board(&self) -> &Arc<StatusBoard> {
        &self.board
    }

    /// Rows per page of the fleet table (`--web.page-size`; at least 1).
    pub fn with_page_size(mut self, rows: usize) -> Self {
        self.page_size = rows.max(1);
        self
    }

    /// Where "probe now" outcomes go (see [`Recorder`]).
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Limits of the listener `serve` runs.
    pub fn with_limits(mut self, limits: ListenerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether `POST /-/reload` works (`--web.enable-lifecycle`; off by default).
    pub fn with_lifecycle(mut self, enabled: bool) -> Self {
        self.lifecycle = enabled;
        self
    }

    /// Whether `/probe` is served at all (`--web.disable-probe` turns it off).
    pub fn with_probe_enabled(mut self, enabled: bool) -> Self {
        self.probe_enabled = enabled;
        self
    }

    /// At most `concurrency` on-demand probes at once; a request waits at most `queue_timeout`
    /// for a slot, and at most 4 × `concurrency` requests wait.
    pub fn with_probe_limits(
        mut self,
        concurrency: usize,
        queue_timeout: std::time::Duration,
    ) -> Self {
        let concurrency = concurrency.max(1);
        self.probe_slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        self.probe_queue = ProbeQueue {
            max_waiting: concurrency * 4,
            timeout: queue_timeout,
        };
        self
    }

    /// Replace `allow_adhoc_ports` (None: any port).
    pub fn set_adhoc_ports(&self, ports: Option<Vec<u16>>) {
        *self.adhoc_ports.write().unwrap_or_else(|e| e.into_inner()) = ports.map(Arc::new);
    }

    /// True when `port` may be probed ad hoc.
    pub fn adhoc_port_allowed(&self, port: u16) -> bool {
        self.adhoc_ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|p| p.contains(&port))
    }

    /// Where `POST /-/reload` sends its requests (without one, reload answers 503).
    pub fn with_reload(mut self, tx: mpsc::Sender<ReloadRequest>) -> Self {
        self.reload = Some(tx);
        self
    }

    /// TLS and basic auth for the listener.
    pub fn with_web_config(mut self, web: WebConfig) -> Self {
        self.web = web;
        self
    }

    /// Ready = config loaded and the first probe round done.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Replace the `allow_adhoc_targets` patterns (on load and reload). An empty list refuses
    /// every ad-hoc target.
    pub fn set_adhoc_patterns(&self, patterns: &[String]) -> Result<(), PatternError> {
        let parsed = patterns
            .iter()
            .map(|p| HostPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        *self.adhoc.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(parsed);
        Ok(())
    }

    /// True when `host:port` matches an `allow_adhoc_targets` pattern.
    pub fn adhoc_allowed(&self, host: &str, port: u16) -> bool {
        let pats = self.adhoc.read().unwrap_or_else(|e| e.into_inner()).clone();
        pats.iter().any(|p| p.matches(host, port))
    }
}

use crate::netmatch::parse_port;
pub use crate::netmatch::{HostPattern, PatternError, PortError};

/// Why a `/probe?target=` value is refused (the 400 answer's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("missing ']'")]
    MissingBracket,
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    #[error("expected ':PORT' after ']'")]
    ExpectedPort,
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("IPv6 targets must be written as [addr]:port")]
    BareIpv6,
    #[error("{0:?} is not a host name or IP address")]
    BadHost(String),
}

/// Why no on-demand probe slot was had (the 429 answer's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("too many on-demand probes: {0} waiting already; try again later")]
    QueueFull(usize),
    #[error("on-demand probes are shutting down")]
    ShuttingDown,
    #[error("no on-demand probe slot became free within {:.1} s; try again later", .0.as_secs_f64())]
    Timeout(std::time::Duration),
}

/// Parse an ad-hoc `target`: `host`, `host:port`, `[v6]` or `[v6]:port` (default port 443).
/// The host must be a DNS name or an IP literal.
pub fn parse_target(t: &str) -> Result<(String, u16), TargetError> {
    let t = t.trim();
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(TargetError::MissingBracket)?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(TargetError::NotIpv6(h.to_string()));
        }
        let port = match after {
            "" => 443,
            a => parse_port(a.strip_prefix(':').ok_or(TargetError::ExpectedPort)?)?,
        };
        (h.to_string(), port)
    } else {
        match t.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), parse_port(p)?),
            Some(_) => return Err(TargetError::BareIpv6),
            None => (t.to_string(), 443),
        }
    };
    let dns_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !dns_ok && host.parse::<std::net::IpAddr>().is_err() {
        return Err(TargetError::BadHost(host));
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Build the router (exposed for tests and embedding).
pub fn router(state: Arc<AppState>) -> Router {
    let router = Router::new()
        .route("/", get(fleet_page))
        .route("/endpoint/{name}", get(endpoint_page))
        .route("/static/app.css", get(app_css))
        .route("/static/app.js", get(app_js))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe).post(probe_now))
        .route("/-/reload", post(reload));
    let router = match state.web.auth.clone() {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(auth, basic_auth)),
        None => router,
    };
    // Health endpoints stay open with basic auth on (added after the auth layer).
    router
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(state)
}

/// Serve until `shutdown` resolves, then finish in-flight requests and return.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = state.web.tls.clone();
    let limits = state.limits.clone();
    let app = router(state);
    super::listener::serve(listener, app, tls, limits, shutdown).await
}

static BCRYPT_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"certprobe\", charset=\"UTF-8\"",
        )],
        "Unauthorized\n",
    )
        .into_response()
}

async fn basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|h| h.as_bytes().to_vec());
    if auth.is_cached(header.as_deref()) {
        return next.run(req).await;
    }
    if header.is_none() {
        // Nothing to verify: no bcrypt, not a failure.
        return unauthorized();
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    // A source that failed recently waits before its next verification, and has at most one
    // running or queued: the guesses cost the guesser, not the next legitimate login.
    let mut admission = match auth
        .guard
        .admit(Source::from(peer), std::time::Instant::now())
    {
        Ok(a) => a,
        Err(refusal) => {
            tracing::debug!(%peer, ?refusal, "basic auth: attempt refused before verification");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    header::RETRY_AFTER,
                    HeaderValue::from(refusal.retry_after_secs()),
                )],
                "Too many failed logins from this address; retry later\n",
            )
                .into_response();
        }
    };
    // bcrypt is deliberately slow: bound how many run at once so a password-guessing client
    // queues instead of taking every core.
    let Ok(_slot) = BCRYPT_SLOTS.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    admission.started();
    let verifier = auth.clone();
    let result = tokio::task::spawn_blocking(move || verifier.check(header.as_deref()))
        .await
        .unwrap_or(AuthResult::Denied);
    admission.finish(result == AuthResult::Ok, std::time::Instant::now());
    match result {
        AuthResult::Ok => next.run(req).await,
        AuthResult::Denied => unauthorized(),
    }
}

fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

fn exposition(body: String, openmetrics: bool) -> Response {
    let ct = if openmetrics {
        CONTENT_TYPE_OPENMETRICS
    } else {
        CONTENT_TYPE_TEXT
    };
    ([(header::CONTENT_TYPE, HeaderValue::from_static(ct))], body).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let om = wants_openmetrics(&headers);
    // Streamed in pieces of ~256 KiB, each written when hyper asks for it: a page of 10,000
    // targets is never held in memory as a whole (the body is sent chunked).
    let chunks = state
        .metrics
        .render_chunks(om)
        .map(|c| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(c)));
    let ct = if om {
        CONTENT_TYPE_OPENMETRICS
    } else {
        CONTENT_TYPE_TEXT
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
        axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

async fn probe(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = match (q.get("endpoint"), q.get("target")) {
        (Some(e), None) if !e.is_empty() => ProbeQuery::Endpoint(e.clone()),
        (None, Some(t)) if !t.is_empty() => {
            let (host, port) = match parse_target(t) {
                Ok(x) => x,
                Err(e) => {
                    return (StatusCode::BAD_REQUEST, format!("bad target: {e}\n")).into_response()
                }
            };
            if !state.probe_enabled {
                return disabled_probe();
            }
            if !state.adhoc_port_allowed(port) {
                return (
                    StatusCode::FORBIDDEN,
                    format!("target {host}:{port} is not allowed: port {port} is not in allow_adhoc_ports (default: the ports of the configured endpoints)\n"),
                )
                    .into_response();
            }
            if !state.adhoc_allowed(&host, port) {
                return (
                    StatusCode::FORBIDDEN,
                    format!("target {host}:{port} is not allowed: add a matching pattern to allow_adhoc_targets, or probe a configured endpoint with ?endpoint=NAME\n"),
                )
                    .into_response();
            }
            ProbeQuery::Target { host, port }
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "give exactly one of ?endpoint=NAME or ?target=HOST:PORT\n",
            )
                .into_response()
        }
    };
    if !state.probe_enabled {
        return disabled_probe();
    }
    let deadline = scrape_timeout(&headers);
    let _slot = match probe_slot(&state, deadline).await {
        Ok(slot) => slot,
        Err(msg) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                format!("{msg}\n"),
            )
                .into_response()
        }
    };
    let fut = (state.prober)(query);
    let result = match deadline {
        Some(limit) => match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => {
                return (
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "probe did not finish within the scrape timeout ({:.1} s)\n",
                        limit.as_secs_f64()
                    ),
                )
                    .into_response()
            }
        },
        None => fut.await,
    };
    match result {
        Ok(outcomes) => {
            let om = wants_openmetrics(&headers);
            let m = state.metrics.clone();
            match tokio::task::spawn_blocking(move || m.render_outcomes(&outcomes, om)).await {
                Ok(body) => exposition(body, om),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rendering failed: {e}\n"),
                )
                    .into_response(),
            }
        }
        Err(e @ ProbeRefused::UnknownEndpoint(_)) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Err(e @ ProbeRefused::NotAllowed(_)) => {
            (StatusCode::FORBIDDEN, format!("{e}\n")).into_response()
        }
        Err(e @ ProbeRefused::Unavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}

fn disabled_probe() -> Response {
    (
        StatusCode::FORBIDDEN,
        "/probe is disabled (--web.disable-probe)\n",
    )
        .into_response()
}

/// A slot for one on-demand probe: at once, within the queue timeout (or the scrape timeout if
/// shorter), or an error message for the 429 answer.
async fn probe_slot(
    state: &AppState,
    deadline: Option<std::time::Duration>,
) -> Result<tokio::sync::OwnedSemaphorePermit, SlotError> {
    if let Ok(p) = state.probe_slots.clone().try_acquire_owned() {
        return Ok(p);
    }
    let q = state.probe_queue;
    if state.probe_waiting.fetch_add(1, Ordering::SeqCst) >= q.max_waiting {
        state.probe_waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(SlotError::QueueFull(q.max_waiting));
    }
    let _waiting = Waiting(&state.probe_waiting);
    let wait = deadline.map_or(q.timeout, |d| d.min(q.timeout));
    match tokio::time::timeout(wait, state.probe_slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(_)) => Err(SlotError::ShuttingDown),
        Err(_) => Err(SlotError::Timeout(wait)),
    }
}

/// Prometheus' scrape timeout minus a 0.5 s margin for the response itself.
fn scrape_timeout(headers: &HeaderMap) -> Option<std::time::Duration> {
    let secs: f64 = headers
        .get("x-prometheus-scrape-timeout-seconds")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    Some(std::time::Duration::from_secs_f64(
        (secs - 0.5).max(secs / 2.0).min(3600.0),
    ))
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    if !state.lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "the lifecycle API is not enabled: start certprobe with --web.enable-lifecycle, or send SIGHUP\n",
        )
            .into_response();
    }
    let Some(tx) = &state.reload else {
        return (StatusCode::SERVICE_UNAVAILABLE, "reload is not available\n").into_response();
    };
    let (reply, rx) = oneshot::channel();
    if tx.send(ReloadRequest { reply }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "reloader is not running\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "config reloaded\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}\n", bounded_body(&crate::text::chain(&e).to_string())),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "reloader dropped the request\n",
        )
            .into_response(),
    }
}

/// An error text for a response body: at most 64 KiB (a config error quoting a huge value, or
/// thousands of problems, is cut and says so).
fn bounded_body(e: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 64 * 1024;
    if e.len() <= MAX {
        return e.into();
    }
    let mut cut = MAX;
    while !e.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… ({} bytes in all; the log has every problem)",
        &e[..cut],
        e.len()
    )
    .into()
}

// === The status page ===

/// Headers of every status page response: the strict CSP, no sniffing, no framing, no caching
/// (the page is live state), the Referer only to this origin.
fn page_headers(content_type: &'static str) -> [(header::HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(super::statuspage::CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

fn wants_json(q: &HashMap<String, String>) -> bool {
    q.get("format").is_some_and(|f| f == "json")
}

/// Render off the async workers (10,000 rows take milliseconds, not microseconds).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering failed: {e}\n"),
        )
            .into_response()
    })
}

fn json_body(
    outcomes: &[&ProbeOutcome],
    pools: &[crate::report::PoolSummary],
    now: f64,
) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Err(e) =
        crate::report::write_json_refs(&mut buf, outcomes, pools, now as i64, now as i64)
    {
        return format!("{{\"error\":\"{e}\"}}\n").into_bytes();
    }
    buf
}

/// `/` with `--web.disable-status-page`: links only.
const INDEX: &str = concat!(
    "<!doctype html>\n<html><head><title>certprobe</title></head><body>\n",
    "<h1>certprobe</h1>\n<p>TLS / MTLS certificate chain prober (status page disabled).</p>\n<ul>\n",
    "<li><a href=\"metrics\">/metrics</a>: cached probe results</li>\n",
    "<li>/probe?endpoint=NAME: fresh probe of a configured endpoint</li>\n",
    "<li><a href=\"healthz\">/healthz</a>, <a href=\"ready\">/ready</a></li>\n",
    "</ul>\n</body></html>\n"
);

fn status_page_disabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the status page is disabled (--web.disable-status-page)\n",
    )
        .into_response()
}

async fn fleet_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !state.board.is_enabled() {
        return (page_headers(HTML), INDEX).into_response();
    }
    let query = FleetQuery {
        q: q.get("q").cloned().unwrap_or_default(),
        page: q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
        page_size: state.page_size,
    };
    let json = wants_json(&q);
    let snap = state.board.snapshot();
    let now = crate::runner::unix_now();
    let rendered = blocking(move || {
        if json {
            let (rows, _) = render::select(&snap.outcomes, &query.q);
            let (shown, page, pages) = render::page(&rows, &query);
            let next: Option<String> = (page < pages).then(|| {
                format!(
                    "<?format=json&q={}&page={}>; rel=\"next\"",
                    render::pct(&query.q),
                    page + 1
                )
            });
            (json_body(shown, &snap.pools, now), next)
        } else {
            (
                render::render_fleet(&snap.outcomes, &snap.pools, &query, now).into_bytes(),
                None,
            )
        }
    })
    .await;
    match rendered {
        Ok((body, next)) => {
            let mut resp = (page_headers(if json { JSON } else { HTML }), body).into_response();
            if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
                resp.headers_mut().insert(header::LINK, link);
            }
            resp
        }
        Err(r) => r,
    }
}

async fn endpoint_page(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !state.board.is_enabled() {
        return status_page_disabled();
    }
    let now = crate::runner::unix_now();
    let json = wants_json(&q);
    let Some(view) = state.board.endpoint(&name) else {
        let body = if json {
            format!(
                "{{\"error\":{}}}\n",
                serde_json::Value::String(format!("unknown endpoint {name:?}"))
            )
        } else {
            render::render_not_found(&name, now)
        };
        return (
            StatusCode::NOT_FOUND,
            page_headers(if json { JSON } else { HTML }),
            body,
        )
            .into_response();
    };
    let notice = q.get("probed").and_then(|p| ProbeNotice::from_query(p));
    let probe_enabled = state.probe_enabled;
    let rendered = blocking(move || {
        if json {
            let refs: Vec<&ProbeOutcome> = view.entry.targets.iter().map(|t| &**t).collect();
            let pools: Vec<crate::report::PoolSummary> = view.pool.iter().cloned().collect();
            json_body(&refs, &pools, now)
        } else {
            render::render_endpoint(&name, &view, now, notice, probe_enabled).into_bytes()
        }
    })
    .await;
    match rendered {
        Ok(body) => (page_headers(if json { JSON } else { HTML }), body).into_response(),
        Err(r) => r,
    }
}

async fn app_css() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        super::statuspage::APP_CSS,
    )
        .into_response()
}

async fn app_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        super::statuspage::APP_JS,
    )
        .into_response()
}

/// The `host[:port]` of an absolute URL (`Origin`, `Referer`), lower-cased.
fn url_authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    // No userinfo in an Origin; a Referer never carries it either (browsers strip it).
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    Some(auth.to_ascii_lowercase())
}

/// Whether a state-changing request comes from a page of this origin: a browser says so in
/// `Sec-Fetch-Site` (it must be `same-origin`), and `Origin` (or, without it, `Referer`) must
/// name the `Host` the request was sent to. A request with none of the three is refused: every
/// browser sends `Origin` on a POST, and scripts use `GET /probe`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h: &header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| !s.eq_ignore_ascii_case("same-origin")) {
        return false;
    }
    let Some(host) = get(&header::HOST).map(str::to_ascii_lowercase) else {
        return false;
    };
    let named = match (get(&header::ORIGIN), get(&header::REFERER)) {
        (Some(o), _) => Some(o),
        (None, Some(r)) => Some(r),
        (None, None) => None,
    };
    match named {
        Some(u) => url_authority(u).is_some_and(|a| a == host),
        None => false,
    }
}

/// `POST /probe?endpoint=NAME`, the status page's "probe now": a fresh probe of a configured
/// endpoint (same slots and limits as `GET /probe`), recorded like a scheduled one, then 303
/// back to the endpoint's page with a fixed notice.
async fn probe_now(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !state.board.is_enabled() {
        return status_page_disabled();
    }
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "cross-origin POST refused: \"probe now\" works from the status page of this daemon; scripts use GET /probe?endpoint=NAME\n",
        )
            .into_response();
    }
    let Some(name) = q.get("endpoint").filter(|e| !e.is_empty()).cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            "POST /probe takes ?endpoint=NAME (ad-hoc targets: GET /probe?target=)\n",
        )
            .into_response();
    };
    let back = |n: ProbeNotice| {
        (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                HeaderValue::from_str(&format!(
                    "endpoint/{}?probed={}",
                    render::pct(&name),
                    n.as_str()
                ))
                .unwrap_or_else(|_| HeaderValue::from_static("./")),
            )],
        )
            .into_response()
    };
    if !state.probe_enabled {
        return back(ProbeNotice::Disabled);
    }
    let Ok(_slot) = probe_slot(&state, None).await else {
        return back(ProbeNotice::Busy);
    };
    match (state.prober)(ProbeQuery::Endpoint(name.clone())).await {
        Ok(outcomes) => {
            match &state.recorder {
                Some(r) => r(outcomes),
                None => {
                    for o in &outcomes {
                        state.board.record(o);
                    }
                }
            }
            back(ProbeNotice::Done)
        }
        Err(e @ ProbeRefused::UnknownEndpoint(_)) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Err(e) => {
            tracing::warn!(endpoint = %crate::text::quote(&name), error = %e, "probe now from the status page failed");
            back(ProbeNotice::Failed)
        }
    }
}
