//! The Prometheus exposition of probe outcomes (prometheus-client 0.26).
//!
//! Design:
//! - Per-(endpoint, address) series live in one `TargetSeries` value, built once when an
//!   outcome is recorded. Recording an outcome *replaces* that value, so a series whose label
//!   values changed (old failure reason, old TLS version, old certificate at a position, ...)
//!   disappears without any bookkeeping, and removing a target removes all of its series.
//! - A target's series are encoded once, when its outcome is recorded, in a compact form: its
//!   shared label set (`endpoint`, `address`, `role`, `pool`, configured labels) is stored once
//!   and each sample only as the rest of its line (extra labels and value). The encoding is
//!   hand-written for this and checked against prometheus-client's own encoder in the tests
//!   (gauge sample lines are identical in the text format 0.0.4 and OpenMetrics).
//! - A scrape snapshots the target list under a short read lock and streams the page in pieces
//!   of ~256 KiB, family by family: it never probes, never re-encodes, and never holds the
//!   whole page in memory.
//! - Self-metrics (build info, reload status, probe counters, scheduler lag, target counts) are
//!   ordinary prometheus-client metrics in the same registry (prefix `certprobe`).
//! - Configured endpoint labels are rendered into every per-target series, after the base labels
//!   `endpoint, address, role, pool`. Keys in [`RESERVED_LABELS`], keys starting with `__` and
//!   keys that are not valid label names are dropped here (config validation rejects them).
//!
//! Time is never read here: timestamps come from the outcomes (`finished_at`) or the caller.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::chain::KeyAlgorithm;
use crate::outcome::ProbeOutcome;
use crate::policy::Verdict;
use crate::probe::HandshakeSignature;
use crate::vocab::{ChainProblem, MetricsDetail};

/// Metric name prefix.
pub const PREFIX: &str = "certprobe";

/// `Content-Type` of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `Content-Type` of the OpenMetrics text format.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub use crate::labels::{is_allowed_endpoint_label, RESERVED_LABELS};

/// Longest label value taken from a certificate or the peer; longer values are truncated.
const MAX_LABEL_VALUE: usize = 256;

/// Identity of the running binary (the `build_info` labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
}

impl BuildInfo {
    /// Version from Cargo, revision = the git commit build.rs embedded (`CERTPROBE_GIT_COMMIT`,
    /// the same one `--version` shows; `unknown` when built outside a git checkout without it).
    pub fn from_build_env() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: env!("CERTPROBE_GIT_COMMIT").to_string(),
        }
    }
}

mod encode;
mod families;
mod page;
mod series;

use encode::*;
use families::*;
use page::*;
use series::*;

#[derive(Debug, Default)]
struct State {
    targets: BTreeMap<(String, String), Arc<TargetSeries>>,
    /// Configured endpoint names, once [`Metrics::retain_endpoints`] was called: outcomes of
    /// other endpoints (a probe still in flight when a reload removed its endpoint) are dropped.
    endpoints: Option<HashSet<String>>,
}

impl State {
    fn accepts(&self, endpoint: &str) -> bool {
        self.endpoints.as_ref().is_none_or(|e| e.contains(endpoint))
    }

    fn snapshot(&self) -> Vec<Arc<TargetSeries>> {
        self.targets.values().cloned().collect()
    }
}

type ResultLabels = [(&'static str, &'static str); 1];
type PoolLabels = [(&'static str, String); 1];
type PhaseLabels = [(&'static str, &'static str); 1];
type PhaseFamily = Family<PhaseLabels, Histogram, fn() -> Histogram>;

/// Buckets of `probe_phase_duration_seconds`: 5 ms to 10 s (the default handshake timeout).
const PHASE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn phase_histogram() -> Histogram {
    Histogram::new(PHASE_BUCKETS)
}

/// The metrics registry of the daemon. Cheap to share (`Arc<Metrics>`); all methods take `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    state: RwLock<State>,
    reload_ok: Gauge,
    config_warnings: Gauge,
    reload_ts: Gauge<f64, AtomicU64>,
    probes: Family<ResultLabels, Counter>,
    phases: PhaseFamily,
    pools: Family<PoolLabels, Gauge>,
    pool_names: std::sync::Mutex<HashSet<String>>,
    lag: Gauge<f64, AtomicU64>,
    behind: Counter,
    in_flight: Gauge,
    endpoints: Gauge,
    addresses: Gauge,
    /// `discover:` sources (src/discovery.rs).
    discovery: DiscoveryFamilies,
    /// Size of the last page rendered as a whole.
    last_len: AtomicUsize,
}

type SourceLabels = Vec<(&'static str, String)>;

/// The discovery families, replaced as a whole after every refresh.
#[derive(Debug, Default)]
struct DiscoveryFamilies {
    success: Family<SourceLabels, Gauge>,
    failure: Family<SourceLabels, Gauge>,
    targets: Family<SourceLabels, Gauge>,
    last_success: Family<SourceLabels, Gauge<f64, AtomicU64>>,
    target_info: Family<SourceLabels, Gauge>,
}

fn new_registry() -> Registry {
    Registry::with_prefix(PREFIX)
}

impl Metrics {
    pub fn new(build: BuildInfo) -> Self {
        let mut registry = new_registry();
        registry.register(
            "build",
            "certprobe build information (value always 1)",
            Info::new(vec![
                ("version".to_string(), build.version),
                ("revision".to_string(), build.revision),
            ]),
        );
        let reload_ok = Gauge::default();
        registry.register(
            "config_last_reload_successful",
            "1 if the last configuration load or reload succeeded, else 0",
            reload_ok.clone(),
        );
        let config_warnings = Gauge::default();
        registry.register(
            "config_warnings",
            "Non-fatal findings in the running config (e.g. an endpoint whose timeouts reach its interval, a key file readable by others); details in the log",
            config_warnings.clone(),
        );
        let reload_ts = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load or reload",
            reload_ts.clone(),
        );
        let probes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "probes",
            "Probes completed by result (success or failure)",
            probes.clone(),
        );
        let _ = probes.get_or_create(&[("result", "success")]);
        let _ = probes.get_or_create(&[("result", "failure")]);
        let phases: PhaseFamily = Family::new_with_constructor(phase_histogram);
        registry.register(
            "probe_phase_duration_seconds",
            "Probe durations of every address this instance probes, by phase: connect (TCP), handshake (TLS incl. the post-handshake verdict read), total (connect + handshake)",
            phases.clone(),
        );
        for phase in ["connect", "handshake", "total"] {
            let _ = phases.get_or_create(&[("phase", phase)]);
        }
        let lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "scheduler_lag_seconds",
            "How late the most recently started probe started compared with its schedule",
            lag.clone(),
        );
        let behind = Counter::default();
        registry.register(
            "scheduler_behind",
            "Times a probe started later than its interval allows (the scheduler fell behind)",
            behind.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "probes_in_flight",
            "Probes currently running",
            in_flight.clone(),
        );
        let endpoints = Gauge::default();
        registry.register(
            "endpoints",
            "Configured endpoints handled by this instance (this shard)",
            endpoints.clone(),
        );
        let addresses = Gauge::default();
        registry.register(
            "addresses",
            "Resolved (endpoint, address) targets probed by this instance",
            addresses.clone(),
        );
        let pools = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pool_consistent",
            "1 if every probed address of the pool presents the same leaf certificate (or at least the same key), else 0",
            pools.clone(),
        );
        let discovery = DiscoveryFamilies::default();
        registry.register(
            "discovery_success",
            "1 if the last DNS lookup of the discover: source succeeded, else 0 (its last good targets are still probed)",
            discovery.success.clone(),
        );
        registry.register(
            "discovery_failure",
            "1 for the bounded reason the last lookup of the source failed (nxdomain, no_records, servfail, refused, timeout, bad_answer, error); absent while it succeeds",
            discovery.failure.clone(),
        );
        registry.register(
            "discovery_targets",
            "Endpoints the source currently contributes (the last good set)",
            discovery.targets.clone(),
        );
        registry.register(
            "discovery_last_success_timestamp_seconds",
            "Unix time of the source's last successful lookup",
            discovery.last_success.clone(),
        );
        registry.register(
            "discovery_target_info",
            "One series per discovered endpoint (value always 1): the record it came from, the SRV target, port, priority and weight",
            discovery.target_info.clone(),
        );
        // Per-URL CRL families (src/revocation/metrics.rs), read from the CRL cache at scrape.
        registry.register_collector(Box::new(crate::revocation::metrics::CrlCollector));
        Self {
            registry,
            state: RwLock::new(State::default()),
            reload_ok,
            config_warnings,
            reload_ts,
            probes,
            phases,
            pools,
            pool_names: std::sync::Mutex::new(HashSet::new()),
            lag,
            behind,
            in_flight,
            endpoints,
            addresses,
            discovery,
            last_len: AtomicUsize::new(4096),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one outcome: replaces every series of its (endpoint, address) and counts the probe
    /// in `probes_total{result}`.
    ///
    /// When the outcome carries no chain but an earlier one did, the earlier certificate facts
    /// stay visible (`cert_facts_timestamp_seconds` tells when they were observed).
    ///
    /// Returns false (and records nothing) when [`Metrics::retain_endpoints`] was called and the
    /// outcome's endpoint is not in the configured set: a probe that was in flight when a
    /// reload removed its endpoint cannot resurrect its series.
    pub fn record(&self, outcome: &ProbeOutcome) -> bool {
        let key = (outcome.target.endpoint.clone(), outcome.series_key.clone());
        // Encode outside the write lock (scrapes only need the read lock).
        let prev = {
            let state = self.read();
            if !state.accepts(&key.0) {
                return false;
            }
            state.targets.get(&key).cloned()
        };
        let series = Arc::new(build_series(outcome, prev.as_deref()));
        {
            let mut state = self.write();
            if !state.accepts(&key.0) {
                return false;
            }
            state.targets.insert(key, series);
        }
        let result = if outcome.capture.succeeded() {
            "success"
        } else {
            "failure"
        };
        self.probes.get_or_create(&[("result", result)]).inc();
        let c = &outcome.capture;
        let connect = c.connect_duration.map(|d| d.as_secs_f64());
        let handshake = c.handshake_duration.map(|d| d.as_secs_f64());
        for (phase, v) in [("connect", connect), ("handshake", handshake)] {
            if let Some(v) = v {
                self.phases.get_or_create(&[("phase", phase)]).observe(v);
            }
        }
        if connect.is_some() || handshake.is_some() {
            let total = connect.unwrap_or(0.0) + handshake.unwrap_or(0.0);
            self.phases
                .get_or_create(&[("phase", "total")])
                .observe(total);
        }
        true
    }

    /// Replace the `pool_consistent` series: pass every pool; pools not listed disappear.
    pub fn record_pools(&self, pools: &[(String, bool)]) {
        let mut known = self.pool_names.lock().unwrap_or_else(|e| e.into_inner());
        for (pool, ok) in pools {
            self.pools
                .get_or_create(&[("pool", pool.clone())])
                .set(i64::from(*ok));
        }
        let now: HashSet<String> = pools.iter().map(|p| p.0.clone()).collect();
        for gone in known.difference(&now) {
            self.pools.remove(&[("pool", gone.clone())]);
        }
        *known = now;
    }

    /// Keep only the listed (endpoint, address) targets (after a reload or re-resolution).
    pub fn retain_targets(&self, keep: &HashSet<(String, String)>) {
        self.write().targets.retain(|k, _| keep.contains(k));
    }

    /// Declare the configured endpoints (at load and after every reload): targets of other
    /// endpoints are removed, and later outcomes of other endpoints are ignored by
    /// [`Metrics::record`].
    pub fn retain_endpoints(&self, keep: &HashSet<String>) {
        let mut state = self.write();
        state.targets.retain(|k, _| keep.contains(&k.0));
        state.endpoints = Some(keep.clone());
    }

    /// Remove every series of one endpoint.
    pub fn remove_endpoint(&self, name: &str) {
        let mut state = self.write();
        state.targets.retain(|k, _| k.0 != name);
        if let Some(e) = state.endpoints.as_mut() {
            e.remove(name);
        }
    }

    /// Remove the series of some addresses of one endpoint (all of them when `addresses` is
    /// empty). Proportional to that endpoint's targets, not to the whole registry.
    pub fn remove_targets(&self, endpoint: &str, addresses: &[String]) {
        let mut state = self.write();
        let keys: Vec<(String, String)> = state
            .targets
            .range((endpoint.to_string(), String::new())..)
            .take_while(|((e, _), _)| e == endpoint)
            .filter(|((_, a), _)| addresses.is_empty() || addresses.contains(a))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            state.targets.remove(&k);
        }
    }

    /// (endpoints, (endpoint, address) targets) that currently have series, without copying
    /// any key.
    pub fn target_counts(&self) -> (usize, usize) {
        let state = self.read();
        let mut endpoints = 0;
        let mut last: Option<&str> = None;
        for (e, _) in state.targets.keys() {
            if last != Some(e.as_str()) {
                endpoints += 1;
                last = Some(e.as_str());
            }
        }
        (endpoints, state.targets.len())
    }

    /// Record a configuration (re)load result; `now` is Unix seconds.
    pub fn set_config_reload(&self, ok: bool, now: f64) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_ts.set(now);
        }
    }

    /// Replace every discovery series with `statuses` (sources not listed disappear).
    pub fn record_discovery(&self, statuses: &[crate::discovery::SourceStatus]) {
        let d = &self.discovery;
        d.success.clear();
        d.failure.clear();
        d.targets.clear();
        d.last_success.clear();
        d.target_info.clear();
        for s in statuses {
            let src = vec![("source", s.source.clone())];
            d.success.get_or_create(&src).set(i64::from(s.success));
            d.targets.get_or_create(&src).set(s.targets as i64);
            if let Some(t) = s.last_success {
                d.last_success.get_or_create(&src).set(t);
            }
            if let Some(r) = s.reason {
                let mut l = src.clone();
                l.push(("reason", r.as_str().to_string()));
                d.failure.get_or_create(&l).set(1);
            }
            for t in &s.target_info {
                let opt = |v: Option<u16>| v.map(|v| v.to_string()).unwrap_or_default();
                let l = vec![
                    ("source", s.source.clone()),
                    ("endpoint", t.endpoint.clone()),
                    ("record", t.record.as_str().to_string()),
                    ("target", t.target.clone()),
                    ("port", t.port.to_string()),
                    ("priority", opt(t.priority)),
                    ("weight", opt(t.weight)),
                ];
                d.target_info.get_or_create(&l).set(1);
            }
        }
    }

    /// Number of non-fatal findings in the running config.
    pub fn set_config_warnings(&self, n: usize) {
        self.config_warnings.set(n as i64);
    }

    pub fn set_scheduler_lag(&self, seconds: f64) {
        self.lag.set(seconds);
    }

    pub fn inc_scheduler_behind(&self) {
        self.behind.inc();
    }

    pub fn set_probes_in_flight(&self, n: i64) {
        self.in_flight.set(n);
    }

    /// Number of configured endpoints and resolved addresses handled by this instance.
    pub fn set_target_counts(&self, endpoints: i64, addresses: i64) {
        self.endpoints.set(endpoints);
        self.addresses.set(addresses);
    }

    /// The whole registry in the Prometheus text format 0.0.4, as one `String` (`/metrics`
    /// streams [`Metrics::render_chunks`] instead).
    pub fn render_text(&self) -> String {
        self.render_whole(false)
    }

    /// The whole registry in the OpenMetrics text format (ends with `# EOF`).
    pub fn render_openmetrics(&self) -> String {
        self.render_whole(true)
    }

    fn render_whole(&self, openmetrics: bool) -> String {
        // Sized from the previous page: growing a 50 MB string by doubling copies it twice.
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed));
        for chunk in self.render_chunks(openmetrics) {
            out.push_str(&chunk);
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// The whole registry as a sequence of text pieces of about 256 KiB (what `/metrics`
    /// streams): self-metrics first, then every per-target family. The target list is
    /// snapshotted under a short read lock when this is called; the pieces are written as the
    /// iterator is advanced, so the page never exists in memory as a whole.
    pub fn render_chunks(&self, openmetrics: bool) -> impl Iterator<Item = String> + Send {
        let mut head = String::with_capacity(4096);
        // Writing into a String cannot fail.
        if openmetrics {
            let _ = prometheus_client::encoding::text::encode_registry(&mut head, &self.registry);
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut head, &self.registry);
        }
        let snapshot = self.read().snapshot();
        FamilyChunks::new(snapshot, head, openmetrics)
    }

    /// The per-target families for just `outcomes` (the `/probe` answer), in the text format
    /// 0.0.4 or OpenMetrics. Does not change the daemon's state; `leaf_changed` and retained
    /// certificate facts come from the recorded history of the same (endpoint, address).
    pub fn render_outcomes(&self, outcomes: &[ProbeOutcome], openmetrics: bool) -> String {
        let mut tmp: BTreeMap<(String, String), Arc<TargetSeries>> = BTreeMap::new();
        for o in outcomes {
            let key = (o.target.endpoint.clone(), o.series_key.clone());
            let prev = self.read().targets.get(&key).cloned();
            tmp.insert(key, Arc::new(build_series(o, prev.as_deref())));
        }
        let targets: Vec<Arc<TargetSeries>> = tmp.into_values().collect();
        FamilyChunks::new(targets, String::new(), openmetrics).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
    use prometheus_client::metrics::MetricType;

    type RefSample = (Fam, Vec<(&'static str, String)>, Value);

    /// prometheus-client's own encoding of the same samples, for comparison.
    #[derive(Debug)]
    struct Reference {
        labels: Vec<(String, String)>,
        samples: Vec<RefSample>,
    }

    struct Set<'a>(Vec<(&'a str, &'a str)>);

    impl EncodeLabelSet for Set<'_> {
        fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
            for (k, v) in &self.0 {
                prometheus_client::encoding::EncodeLabel::encode(
                    &(*k, *v),
                    encoder.encode_label(),
                )?;
            }
            Ok(())
        }
    }

    impl Collector for Reference {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for (f, (name, help)) in FAMILIES.iter().enumerate() {
                let mut it = self.samples.iter().filter(|s| s.0 as usize == f).peekable();
                if it.peek().is_none() {
                    continue;
                }
                let mut me = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                for (_, extra, value) in it {
                    let mut set: Vec<(&str, &str)> = self
                        .labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    set.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                    let set = Set(set);
                    let mut fe = me.encode_family(&set)?;
                    match value {
                        Value::Int(v) => fe.encode_gauge(v)?,
                        Value::Float(v) => fe.encode_gauge(v)?,
                    }
                }
            }
            Ok(())
        }
    }

    fn sample_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    /// The hand-written encoder writes exactly what prometheus-client writes for the same
    /// samples, in both formats (escaping, integer and float formatting).
    #[test]
    fn encoding_matches_prometheus_client_in_both_formats() {
        let labels = vec![
            (
                "endpoint".to_string(),
                "a \"quoted\" \\ name\nwith newline".to_string(),
            ),
            ("address".to_string(), "[::1]:443".to_string()),
            ("site".to_string(), "øst".to_string()),
        ];
        let samples: Vec<RefSample> = vec![
            (Fam::ProbeSuccess, vec![], Value::Int(1)),
            (
                Fam::ProbeDuration,
                vec![("phase", "connect".into())],
                Value::Float(0.000015),
            ),
            (
                Fam::ProbeDuration,
                vec![("phase", "total".into())],
                Value::Float(0.1),
            ),
            (Fam::LastProbe, vec![], Value::Float(1_800_000_000.25)),
            (
                Fam::CertNotAfter,
                vec![("position", "0".into())],
                Value::Int(-62_135_596_800),
            ),
            (
                Fam::CertInfo,
                vec![("subject_cn", "x\"\\\ny".into())],
                Value::Int(1),
            ),
            (Fam::LeafChanged, vec![], Value::Float(2.0)),
            (Fam::LeafChanged, vec![], Value::Float(1e300)),
            (Fam::LeafChanged, vec![], Value::Float(f64::INFINITY)),
            (Fam::LeafChanged, vec![], Value::Float(f64::NEG_INFINITY)),
            (Fam::LeafChanged, vec![], Value::Float(f64::NAN)),
        ];
        let reference = |om: bool| {
            let mut r = new_registry();
            r.register_collector(Box::new(Reference {
                labels: labels.clone(),
                samples: samples.clone(),
            }));
            let mut s = String::new();
            if om {
                prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
            } else {
                prometheus_client::encoding::prometheus_text::encode(&mut s, &r).unwrap();
            }
            s
        };
        let mut l = Lines::new();
        for (fam, extra, value) in &samples {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.push(*fam, &extra, *value);
        }
        let (tails, offsets) = l.finish();
        let mut base = String::from("{");
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                base.push(',');
            }
            push_label(&mut base, k, v);
        }
        let series = Arc::new(TargetSeries {
            base: base.into_boxed_str(),
            tails,
            offsets,
            leaf: None,
            cert_time: None,
        });
        for om in [false, true] {
            let ours: String = FamilyChunks::new(vec![series.clone()], String::new(), om).collect();
            let mut theirs = reference(om);
            if om {
                // prometheus-client's OpenMetrics encoder writes `inf`; the OpenMetrics spec
                // (and its text-format encoder) say `+Inf`. certprobe's values are always
                // finite; the spelling of the spec is kept.
                theirs = theirs
                    .replace("} inf\n", "} +Inf\n")
                    .replace("} -inf\n", "} -Inf\n");
            }
            assert_eq!(ours, theirs, "openmetrics={om}");
        }
        assert_eq!(
            series.family(Fam::ProbeDuration as usize).lines().count(),
            2
        );
        assert_eq!(series.family(Fam::ProbeFailure as usize), "");
        assert!(sample_lines(&reference(false)).len() == samples.len());
    }

    /// A page split into pieces is the same page.
    #[test]
    fn chunked_rendering_equals_one_piece() {
        let mut targets = Vec::new();
        for i in 0..3000 {
            let mut l = Lines::new();
            let name = format!("ep{i}");
            l.push(Fam::ProbeSuccess, &[], Value::Int(1));
            l.push(
                Fam::PolicyRuleFailed,
                &[("rule", "trusted"), ("profile", &name)],
                Value::Int(0),
            );
            let (tails, offsets) = l.finish();
            let mut base = String::from("{");
            push_label(&mut base, "endpoint", &name);
            targets.push(Arc::new(TargetSeries {
                base: base.into_boxed_str(),
                tails,
                offsets,
                leaf: None,
                cert_time: None,
            }));
        }
        let chunks: Vec<String> =
            FamilyChunks::new(targets.clone(), "head\n".into(), true).collect();
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len() < CHUNK + 4096));
        let page = chunks.concat();
        assert!(page.starts_with("head\n# HELP certprobe_probe_success "));
        assert!(page.ends_with("certprobe_policy_rule_failed{endpoint=\"ep2999\",rule=\"trusted\",profile=\"ep2999\"} 0\n# EOF\n"));
        assert_eq!(
            page.lines().filter(|l| !l.starts_with('#')).count(),
            1 + 6000
        );
        // Families stay contiguous: every success line comes before the first rule line.
        let last_success = page.rfind("certprobe_probe_success{").unwrap();
        let first_rule = page.find("certprobe_policy_rule_failed{").unwrap();
        assert!(last_success < first_rule);
    }
}
