//! The long-running service: scheduler, metrics, HTTP exporter, reload, shutdown.
//!
//! Probing is decoupled from scraping: the [`scheduler`] probes on its own clock and records
//! into [`metrics::Metrics`]; `/metrics` only renders what is cached.

pub mod authguard;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod scheduler;
pub mod ssrf;
pub mod statuspage;
pub mod webconfig;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Endpoint, Shard};
use crate::outcome::ProbeOutcome;
use crate::report::PoolSummary;
use crate::runner::{self, EvalContext};
use http::{AppState, ProbeQuery, ProbeRefused, Prober, ReloadRequest};
use metrics::{BuildInfo, Metrics};
use scheduler::{OutcomeSink, Scheduler};

/// Everything `certprobe probe` (daemon mode) needs.
pub struct DaemonOptions {
    pub config_path: Option<PathBuf>,
    pub initial: Config,
    pub listen: String,
    pub web_config: Option<PathBuf>,
    /// `--shard` was given: it overrides `global.shard` on reload too.
    pub shard_override: bool,
    pub watch_config: bool,
    pub shutdown_grace: Duration,
    /// Listener limits, lifecycle and /probe switches (`--web.*`).
    pub web: listener::WebArgs,
}

/// The scheduler's results go to the metrics registry and the status page's board.
struct MetricsSink {
    metrics: Arc<Metrics>,
    board: Arc<statuspage::StatusBoard>,
    /// Latest consistency per pool (the registry wants the whole set each time).
    pools: Mutex<BTreeMap<String, bool>>,
}

impl MetricsSink {
    fn retain_pools(&self, configured: &HashSet<String>) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.retain(|p, _| configured.contains(p));
        self.board.retain_pools(configured);
        let all: Vec<(String, bool)> = pools.iter().map(|(p, c)| (p.clone(), *c)).collect();
        self.metrics.record_pools(&all);
    }
}

impl OutcomeSink for MetricsSink {
    fn record(&self, outcome: &ProbeOutcome) {
        self.metrics.record(outcome);
        self.board.record(outcome);
    }

    fn remove(&self, endpoint: &str, addresses: &[String]) {
        self.metrics.remove_targets(endpoint, addresses);
        self.board.remove(endpoint, addresses);
    }

    fn pools(&self, pools: &[PoolSummary]) {
        self.board.record_pools(pools);
        let mut known = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        for p in pools {
            known.insert(p.pool.clone(), p.consistent);
        }
        let all: Vec<(String, bool)> = known.iter().map(|(p, c)| (p.clone(), *c)).collect();
        self.metrics.record_pools(&all);
    }

    fn lag(&self, seconds: f64) {
        self.metrics.set_scheduler_lag(seconds);
    }

    fn behind(&self) {
        self.metrics.inc_scheduler_behind();
    }
}

fn owner(shard: Option<Shard>) -> impl Fn(&Endpoint) -> bool {
    move |e: &Endpoint| shard.is_none_or(|s| s.owns(&e.meta.endpoint))
}

fn owned_names(cfg: &Config) -> HashSet<String> {
    let owns = owner(cfg.global.shard);
    cfg.endpoints
        .iter()
        .filter(|e| owns(e))
        .map(|e| e.meta.endpoint.clone())
        .collect()
}

fn owned_pools(cfg: &Config) -> HashSet<String> {
    let owns = owner(cfg.global.shard);
    cfg.endpoints
        .iter()
        .filter(|e| owns(e))
        .filter_map(|e| e.meta.pool.clone())
        .collect()
}

/// The `/probe` implementation: a fresh probe of a configured endpoint, or of an ad-hoc target
/// (already matched against `allow_adhoc_targets` and `allow_adhoc_ports`) judged by the built-in
/// `default` profile. An ad-hoc target is resolved here once; only the addresses that pass
/// `allow_adhoc_networks` (and are not the exporter's own `listen`) are probed.
fn make_prober(current: Arc<RwLock<Arc<Config>>>, listen: Option<std::net::SocketAddr>) -> Prober {
    Arc::new(move |query: ProbeQuery| {
        let cfg = current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        Box::pin(async move {
            let ctx = EvalContext {
                stores: cfg.stores.clone(),
                policy: cfg.policy.clone(),
                at: None,
            };
            let ep = match query {
                ProbeQuery::Endpoint(name) => cfg
                    .endpoint(&name)
                    .cloned()
                    .ok_or(ProbeRefused::UnknownEndpoint(name))?,
                ProbeQuery::Target { host, port } => {
                    let policy = ssrf::NetworkPolicy {
                        allowed: cfg.global.allow_adhoc_networks.clone(),
                        listener: listen,
                        explicit_ports: cfg.global.allow_adhoc_ports.clone(),
                    };
                    let checked =
                        ssrf::resolve_checked(&host, port, &policy)
                            .await
                            .map_err(|e| {
                                ProbeRefused::NotAllowed(format!(
                                    "{host}:{port}: {}",
                                    crate::text::chain(&e)
                                ))
                            })?;
                    let mut b = crate::config::EndpointBuilder::new(
                        format!("{host}:{port}"),
                        host,
                        port,
                        &cfg.global,
                    );
                    // Connect to the checked addresses only: no second resolution.
                    b.endpoint.resolve = checked;
                    b.build()
                }
            };
            let mut outcomes = runner::probe_endpoint(&ep, &ctx).await;
            runner::apply_cross_rules(&cfg.policy, &mut outcomes);
            Ok(outcomes)
        })
    })
}

/// Where the status page's "probe now" outcomes go: re-judged with the latest outcomes of the
/// endpoint's pool members and `same_issuer` partners (a pool member probed alone would look
/// consistent with itself), then recorded like a scheduled probe, into the metrics and the board.
fn make_recorder(current: Arc<RwLock<Arc<Config>>>, sink: Arc<MetricsSink>) -> http::Recorder {
    Arc::new(move |fresh: Vec<ProbeOutcome>| {
        let cfg = current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let Some(first) = fresh.first() else {
            return;
        };
        let name = first.target.endpoint.clone();
        let pool = first.target.pool.clone();
        let partners = runner::same_issuer_partners(&cfg.policy, &first.target.profile);
        if pool.is_none() && partners.is_empty() {
            for o in &fresh {
                sink.record(o);
            }
            return;
        }
        let mut all = sink.board.related(&name, pool.as_deref(), &partners);
        all.extend(fresh);
        let pools = runner::apply_cross_rules(&cfg.policy, &mut all);
        for o in &all {
            sink.record(o);
        }
        if !pools.is_empty() {
            sink.pools(&pools);
        }
    })
}

fn unix_now() -> f64 {
    runner::unix_now()
}

/// Run every `discover:` source of `cfg` once (concurrently, each bounded) and fold the
/// results into `states`: a success replaces a source's set, a failure keeps its last good one.
/// States of sources no longer configured are dropped.
pub async fn discover_sources(
    cfg: &Config,
    states: &mut BTreeMap<String, crate::discovery::SourceState>,
) {
    states.retain(|id, _| cfg.discover.iter().any(|s| s.id == *id));
    if cfg.discover.is_empty() {
        return;
    }
    let resolver = match crate::dns::Resolver::shared(&cfg.global.dns) {
        Ok(r) => r,
        Err(e) => {
            let e = crate::text::chain(&e).to_string();
            tracing::error!(problem = %e, "DNS resolver unavailable: discover: sources keep their last targets");
            for s in &cfg.discover {
                states.entry(s.id.clone()).or_default().failure = Some(crate::dns::DnsFailure {
                    reason: crate::dns::DnsReason::Error,
                    detail: e.clone(),
                });
            }
            return;
        }
    };
    let bound = resolver.bound() * 2;
    let futs = cfg.discover.iter().map(|s| {
        let resolver = resolver.clone();
        async move {
            let out = tokio::time::timeout(bound, crate::discovery::refresh(&resolver, s)).await;
            (s, out)
        }
    });
    let results = futures_util::future::join_all(futs).await;
    let now = unix_now();
    for (source, result) in results {
        let outcome = result.unwrap_or_else(|_| crate::discovery::Outcome {
            failures: vec![(
                source.queries[0].record,
                crate::dns::DnsFailure {
                    reason: crate::dns::DnsReason::Timeout,
                    detail: format!("{}: lookups did not finish within {bound:?}", source.id),
                },
            )],
            ..Default::default()
        });
        if outcome.dropped > 0 {
            tracing::warn!(source = %source.id, dropped = outcome.dropped, max_targets = source.max_targets, "discover: more targets than max_targets; the rest are not probed");
        }
        let state = states.entry(source.id.clone()).or_default();
        state.update(&source.kind, outcome, now);
        match &state.failure {
            Some(f) => {
                tracing::warn!(source = %source.id, reason = f.reason.as_str(), detail = %crate::text::quote_message(&f.detail), kept = state.endpoints.len(), "discovery lookup failed; keeping the last good targets")
            }
            None => {
                tracing::info!(source = %source.id, targets = state.endpoints.len(), "discovery refreshed")
            }
        }
    }
}

/// `cfg` with the endpoints of every discovered source added (a configured endpoint wins over
/// a discovered one of the same name).
pub fn with_discovered(
    cfg: &Config,
    states: &BTreeMap<String, crate::discovery::SourceState>,
) -> Config {
    let mut out = cfg.clone();
    let mut names: HashSet<String> = out
        .endpoints
        .iter()
        .map(|e| e.meta.endpoint.clone())
        .collect();
    for s in &cfg.discover {
        let Some(state) = states.get(&s.id) else {
            continue;
        };
        for e in &state.endpoints {
            if names.insert(e.meta.endpoint.clone()) {
                out.endpoints.push(Arc::clone(e));
            } else {
                tracing::warn!(endpoint = %e.meta.endpoint, source = %s.id, "discovered endpoint has the name of another endpoint; not probed");
            }
        }
    }
    out
}

fn discovery_statuses(
    cfg: &Config,
    states: &BTreeMap<String, crate::discovery::SourceState>,
) -> Vec<crate::discovery::SourceStatus> {
    cfg.discover
        .iter()
        .map(|s| {
            crate::discovery::SourceStatus::of(
                &s.id,
                &states.get(&s.id).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

struct Daemon {
    /// The config as loaded (without discovered endpoints).
    static_cfg: Arc<Config>,
    sources: BTreeMap<String, crate::discovery::SourceState>,
    opts_path: Option<PathBuf>,
    shard_override: Option<Option<Shard>>,
    metrics: Arc<Metrics>,
    sink: Arc<MetricsSink>,
    state: Arc<AppState>,
    current: Arc<RwLock<Arc<Config>>>,
    scheduler: Scheduler,
}

impl Daemon {
    /// Reload the config file. On any problem the running config stays, the errors are logged
    /// (the same text `check-config` prints) and `config_last_reload_successful` drops to 0.
    /// The file is read and validated on a blocking thread with a time limit, so the control
    /// loop (and SIGTERM) never waits on a slow file system.
    async fn reload(&mut self, trigger: &str) -> Result<(), ReloadError> {
        let Some(path) = self.opts_path.clone() else {
            return Err(ReloadError::NoConfigFile);
        };
        let loaded = load_off_loop(path.clone()).await;
        if let Ok(cfg) = &loaded {
            discover_sources(cfg, &mut self.sources).await;
        }
        self.apply(trigger, &path, loaded)
    }

    /// Resolve the `discover:` sources again and apply what changed.
    async fn rediscover(&mut self) {
        let cfg = self.static_cfg.clone();
        discover_sources(&cfg, &mut self.sources).await;
        self.install("discovery");
    }

    /// Run the static config plus the discovered endpoints: unchanged endpoints keep their
    /// tasks, vanished ones stop and lose their series, new ones start.
    fn install(&mut self, trigger: &str) {
        let mut cfg = with_discovered(&self.static_cfg, &self.sources);
        {
            let old = self
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            cfg.share_unchanged(&old);
        }
        let names = owned_names(&cfg);
        self.metrics.retain_endpoints(&names);
        self.sink.board.retain_endpoints(&names);
        self.scheduler.apply(&cfg, owner(cfg.global.shard));
        self.sink.retain_pools(&owned_pools(&cfg));
        self.state.set_adhoc_ports(Some(cfg.adhoc_ports()));
        self.metrics
            .record_discovery(&discovery_statuses(&cfg, &self.sources));
        tracing::debug!(trigger, endpoints = names.len(), "endpoints applied");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
    }

    fn apply(
        &mut self,
        trigger: &str,
        path: &std::path::Path,
        loaded: Result<Config, crate::config::ConfigErrors>,
    ) -> Result<(), ReloadError> {
        let mut cfg = match loaded {
            Ok(c) => c,
            Err(errs) => {
                for e in &errs.0 {
                    tracing::error!(trigger, problem = %crate::text::quote_message(&e.to_string()), "config reload rejected; the previous config keeps running");
                }
                self.metrics.set_config_reload(false, unix_now());
                return Err(ReloadError::Invalid(errs));
            }
        };
        if let Some(shard) = self.shard_override {
            cfg.global.shard = shard;
        }
        // Look for second certificates (key_types: auto) again at every address's next probe.
        crate::probe::handshake::recheck_key_types();
        if let Err(e) = self
            .state
            .set_adhoc_patterns(&cfg.global.allow_adhoc_targets)
        {
            tracing::error!(trigger, problem = %e, "config reload rejected; the previous config keeps running");
            self.metrics.set_config_reload(false, unix_now());
            return Err(ReloadError::AdhocTargets {
                path: path.to_path_buf(),
                source: e,
            });
        }
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        self.metrics.set_config_warnings(cfg.warnings.len());
        self.static_cfg = Arc::new(cfg);
        self.install(trigger);
        self.metrics.set_config_reload(true, unix_now());
        let n = self.scheduler.endpoint_count();
        tracing::info!(trigger, endpoints = n, "config reloaded");
        Ok(())
    }
}

/// How long reading and validating a config file may take on reload.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// `Config::load` on a blocking thread, bounded by [`RELOAD_TIMEOUT`].
async fn load_off_loop(path: PathBuf) -> Result<Config, crate::config::ConfigErrors> {
    let origin = path.display().to_string();
    let fail = |message: String| {
        crate::config::ConfigErrors(vec![crate::config::ConfigError {
            file: origin.clone(),
            line: None,
            column: None,
            path: String::new(),
            message,
        }])
    };
    match tokio::time::timeout(
        RELOAD_TIMEOUT,
        tokio::task::spawn_blocking(move || Config::load(&path)),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(fail("loading the config failed unexpectedly".into())),
        Err(_) => Err(fail(format!(
            "reading and validating the config took longer than {} s; the previous config keeps running",
            RELOAD_TIMEOUT.as_secs()
        ))),
    }
}

/// Why a reload (SIGHUP, `POST /-/reload`, a changed file) was rejected; the running config
/// stays. `POST /-/reload` answers with the message (and its source).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("started with ad-hoc targets: there is no config file to reload")]
    NoConfigFile,
    /// The file does not validate: every problem, as `check-config` prints them.
    #[error("{0}")]
    Invalid(crate::config::ConfigErrors),
    /// `global.allow_adhoc_targets` validated but does not install (kept from the check).
    #[error("{}: global.allow_adhoc_targets", path.display())]
    AdhocTargets {
        path: PathBuf,
        #[source]
        source: crate::netmatch::PatternError,
    },
}

/// Why the daemon could not start. Each says whose fault it is through its exit code
/// ([`Error::exit_code`]): the operator's settings, or the machine. The cause is the error's
/// `source()` (printed by `{:#}`), not repeated in its own message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--web.config.file` does not load (exit 64, a configuration error).
    #[error("web config {}", path.display())]
    WebConfig {
        path: std::path::PathBuf,
        #[source]
        source: webconfig::WebConfigError,
    },
    /// The `--web.*` listener options are inconsistent (exit 64).
    #[error(transparent)]
    WebOptions(listener::WebOptionsError),
    /// `global.allow_adhoc_targets` does not parse (exit 64).
    #[error("global.allow_adhoc_targets")]
    AdhocTargets(#[source] crate::netmatch::PatternError),
    /// The listen address cannot be bound: in use, not local, not permitted (exit 69,
    /// EX_UNAVAILABLE).
    #[error("listening on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A signal handler cannot be installed (exit 71, EX_OSERR).
    #[error("installing the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this failure (sysexits.h).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::WebConfig { .. } | Error::WebOptions(_) | Error::AdhocTargets(_) => {
                crate::cli::EXIT_USAGE
            }
            Error::Listen { .. } => crate::cli::EXIT_UNAVAILABLE,
            Error::Signal { .. } => crate::cli::EXIT_OSERR,
        }
    }
}

/// Run the daemon until SIGTERM/SIGINT; drain in-flight probes within the grace period.
pub async fn run(opts: DaemonOptions) -> std::result::Result<(), Error> {
    let static_cfg = Arc::new(opts.initial);
    let mut sources = BTreeMap::new();
    discover_sources(&static_cfg, &mut sources).await;
    let cfg = with_discovered(&static_cfg, &sources);
    let metrics = Arc::new(Metrics::new(BuildInfo::from_build_env()));
    let sink = Arc::new(MetricsSink {
        metrics: metrics.clone(),
        board: Arc::new(if opts.web.disable_status_page {
            statuspage::StatusBoard::disabled()
        } else {
            statuspage::StatusBoard::new()
        }),
        pools: Mutex::new(BTreeMap::new()),
    });
    let web = match &opts.web_config {
        Some(p) => webconfig::WebConfig::load(p).map_err(|source| Error::WebConfig {
            path: p.clone(),
            source,
        })?,
        None => webconfig::WebConfig::default(),
    };
    opts.web.validate().map_err(Error::WebOptions)?;
    let listener = TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.listen.clone(),
            source,
        })?;
    let local = listener.local_addr().ok();
    if let Some(addr) = local {
        // The bound address (with `--web.listen-address 127.0.0.1:0`, the port the kernel chose).
        let scheme = if web.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %addr, "listening on {scheme}://{addr}/ (status page at /, metrics at /metrics)");
    }
    // Raise the soft descriptor limit, keep the probes' share, give the listener the rest.
    let budget = listener::fd_budget(
        opts.web.max_connections,
        cfg.global.concurrency + opts.web.probe_concurrency,
    );
    let mut limits = opts.web.limits();
    limits.max_connections = budget.listener_connections;
    tracing::info!(
        nofile_limit = budget.limit,
        nofile_soft_before = budget.soft_before,
        reserved_for_probes = budget.reserved_for_probes,
        listener_connections = budget.listener_connections,
        "file descriptor budget"
    );
    if budget.listener_connections < budget.requested {
        tracing::warn!(
            requested = budget.requested,
            listener_connections = budget.listener_connections,
            "--web.max-connections lowered to fit the file descriptor limit after the probes' share; raise the hard RLIMIT_NOFILE (ulimit -Hn, LimitNOFILE=) to allow more"
        );
    }
    // One copy of the config: the scheduler's tasks and /probe share its endpoints.
    let cfg = Arc::new(cfg);
    let current = Arc::new(RwLock::new(cfg.clone()));
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let state = Arc::new(
        AppState::new(metrics.clone(), make_prober(current.clone(), local))
            .with_reload(reload_tx)
            .with_web_config(web)
            .with_limits(limits)
            .with_lifecycle(opts.web.enable_lifecycle)
            .with_probe_enabled(!opts.web.disable_probe)
            .with_probe_limits(opts.web.probe_concurrency, opts.web.probe_queue_timeout.0)
            .with_board(sink.board.clone())
            .with_page_size(opts.web.page_size)
            .with_recorder(make_recorder(current.clone(), sink.clone())),
    );
    state.set_adhoc_ports(Some(cfg.adhoc_ports()));
    state
        .set_adhoc_patterns(&cfg.global.allow_adhoc_targets)
        .map_err(Error::AdhocTargets)?;

    let root = CancellationToken::new();
    let http_stop = CancellationToken::new();
    let names = owned_names(&cfg);
    metrics.retain_endpoints(&names);
    sink.board.retain_endpoints(&names);
    metrics.set_config_reload(true, unix_now());
    metrics.set_config_warnings(cfg.warnings.len());
    let scheduler = Scheduler::start(&cfg, owner(cfg.global.shard), sink.clone(), root.clone());
    metrics.record_discovery(&discovery_statuses(&cfg, &sources));
    tracing::info!(
        listen = %opts.listen,
        endpoints = names.len(),
        shard = ?cfg.global.shard.map(|s| s.to_string()),
        config = %cfg.origin,
        "certprobe daemon started"
    );

    let http = {
        let state = state.clone();
        let stop = http_stop.clone();
        tokio::spawn(async move {
            if let Err(e) = http::serve(listener, state, stop.cancelled_owned()).await {
                tracing::error!(error = %e, "exporter stopped");
            }
        })
    };
    {
        let mut first = scheduler.first_round_done();
        let state = state.clone();
        tokio::spawn(async move {
            while !*first.borrow_and_update() {
                if first.changed().await.is_err() {
                    return;
                }
            }
            state.set_ready(true);
            tracing::info!("first probing round complete; ready");
        });
    }

    let mut daemon = Daemon {
        static_cfg: static_cfg.clone(),
        sources,
        opts_path: opts.config_path.clone(),
        shard_override: opts.shard_override.then_some(cfg.global.shard),
        metrics: metrics.clone(),
        sink,
        state: state.clone(),
        current,
        scheduler,
    };
    // From here on the running config lives only in `daemon.current` (a reload frees it).
    drop(cfg);

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| Error::Signal {
            signal: "SIGTERM",
            source,
        })?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|source| Error::Signal {
            signal: "SIGHUP",
            source,
        })?;
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let mut last_stamp = opts.config_path.as_deref().and_then(file_stamp);
    let mut ticks: u64 = 0;
    let mut next_discovery = tokio::time::Instant::now() + static_cfg.global.discover_interval;
    drop(static_cfg);
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); break; }
            // A reload never holds off SIGTERM: the signal ends the wait for the file.
            _ = sighup.recv() => {
                let stop = tokio::select! {
                    _ = daemon.reload("SIGHUP") => false,
                    _ = sigterm.recv() => true,
                };
                if stop { tracing::info!("SIGTERM during a reload: shutting down"); break; }
            }
            Some(req) = reload_rx.recv() => {
                let stop = tokio::select! {
                    r = daemon.reload("/-/reload") => { let _ = req.reply.send(r); false }
                    _ = sigterm.recv() => true,
                };
                if stop { tracing::info!("SIGTERM during a reload: shutting down"); break; }
            }
            _ = housekeeping.tick() => {
                ticks += 1;
                metrics.set_probes_in_flight(daemon.scheduler.in_flight() as i64);
                // Free the tasks of endpoints a reload cancelled as soon as they finish.
                daemon.scheduler.reap();
                if tokio::time::Instant::now() >= next_discovery {
                    next_discovery = tokio::time::Instant::now() + daemon.static_cfg.global.discover_interval;
                    if !daemon.static_cfg.discover.is_empty() {
                        let stop = tokio::select! {
                            _ = daemon.rediscover() => false,
                            _ = sigterm.recv() => true,
                        };
                        if stop { tracing::info!("SIGTERM during discovery: shutting down"); break; }
                    }
                }
                if ticks.is_multiple_of(5) {
                    let (endpoints, addresses) = metrics.target_counts();
                    metrics.set_target_counts(daemon.scheduler.endpoint_count().max(endpoints) as i64, addresses as i64);
                    if opts.watch_config {
                        let stamp = opts.config_path.as_deref().and_then(file_stamp);
                        if stamp.is_some() && stamp != last_stamp {
                            last_stamp = stamp;
                            let stop = tokio::select! {
                                _ = daemon.reload("file change") => false,
                                _ = sigterm.recv() => true,
                            };
                            if stop { tracing::info!("SIGTERM during a reload: shutting down"); break; }
                        }
                    }
                }
            }
        }
    }
    state.set_ready(false);
    daemon.scheduler.shutdown(opts.shutdown_grace).await;
    http_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    tracing::info!("stopped");
    Ok(())
}

/// Modification time and length of a file (polling survives editors that replace the file by
/// rename, which inotify watches on the file would miss).
fn file_stamp(p: &std::path::Path) -> Option<(SystemTime, u64)> {
    let md = std::fs::metadata(p).ok()?;
    Some((md.modified().ok()?, md.len()))
}
