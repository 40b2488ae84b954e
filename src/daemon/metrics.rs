//! The Prometheus exposition of probe outcomes (prometheus-client 0.26).
//!
//! Design:
//! - Per-(endpoint, address) series live in one [`TargetSeries`] value, built once when an
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
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::chain::KeyAlgorithm;
use crate::outcome::ProbeOutcome;
use crate::policy::Verdict;
use crate::probe::HandshakeSignature;

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

/// Per-target metric families, in exposition order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Fam {
    ProbeSuccess,
    ProbeDuration,
    ProbeFailure,
    LastProbe,
    TlsVersion,
    TlsCipher,
    LegacyTls,
    HandshakeSignatureWeak,
    CertNotAfter,
    CertNotBefore,
    CertInfo,
    CertFactsTimestamp,
    ChainVerified,
    ChainVerifyError,
    ChainExpiry,
    ChainOrderValid,
    ChainComplete,
    ChainRootSent,
    ChainWeakHash,
    HostnameMatch,
    PolicyStatus,
    PolicyRuleFailed,
    ClientAuthRequested,
    ClientCertAccepted,
    ClientCertNotAfter,
    MtlsEnforced,
    LeafChanged,
    CertRevoked,
    RevocationStatus,
}

const NFAM: usize = Fam::RevocationStatus as usize + 1;

/// (name without prefix, help) per [`Fam`], same order.
const FAMILIES: [(&str, &str); NFAM] = [
    ("probe_success", "1 if the last probe of this address completed the TLS handshake (and the client-certificate exchange) without failure, else 0."),
    ("probe_duration_seconds", "Duration of the last probe by phase: connect (TCP), handshake (TLS incl. the post-handshake verdict read), total (connect + handshake)."),
    ("probe_failure", "1 for the reason the last probe failed; only the current reason's series exists, none while the probe succeeds."),
    ("last_probe_timestamp_seconds", "Unix time the last probe of this address finished."),
    ("tls_version_info", "Negotiated TLS protocol version of the last probe (value always 1)."),
    ("tls_cipher_info", "Negotiated TLS cipher suite (IANA name) of the last probe (value always 1)."),
    ("legacy_tls", "1 if the server only speaks TLS below 1.2 (or SSL), 0 otherwise."),
    ("handshake_signature_weak", "1 if the handshake signature could not be verified (leaf key too weak, e.g. RSA-1024, or a scheme the crypto provider lacks, e.g. ECDSA P-521), 0 if it was verified."),
    ("cert_not_after_timestamp_seconds", "notAfter of each presented certificate, Unix time; position 0 is the leaf."),
    ("cert_not_before_timestamp_seconds", "notBefore of each presented certificate, Unix time; position 0 is the leaf."),
    ("cert_info", "Identity of each presented certificate (value always 1); the only family with high-cardinality labels."),
    ("cert_facts_timestamp_seconds", "Unix time the certificate facts shown for this address were observed (older than the last probe when the last probe captured no chain)."),
    ("chain_verified", "1 if the presented chain verifies against the named trust store, else 0."),
    ("chain_verify_error", "1 for the bounded reason a trust store rejected the chain; absent for stores that verified it."),
    ("chain_expiry_timestamp_seconds", "Earliest notAfter on the best verified path, Unix time; absent when no store verified the chain."),
    ("chain_order_valid", "1 if each presented certificate is issued by the next one, else 0."),
    ("chain_complete", "1 if no intermediate certificate is missing from the presented chain, else 0."),
    ("chain_root_sent", "1 if the server sent a self-signed root certificate, else 0."),
    ("chain_weak_signature_hash", "1 if a SHA-1 or MD5 signature is on the best path (or presented chain when unverified), else 0."),
    ("hostname_match", "1 if the leaf certificate is valid for the expected name, else 0."),
    ("policy_status", "Policy verdict of the last probe: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("policy_rule_failed", "1 if the policy rule failed (verdict fail or warn), 0 if it passed; severity is the verdict's level (fail or warn) when 1; rules that did not apply are absent."),
    ("client_auth_requested", "1 if the server sent a CertificateRequest, else 0."),
    ("client_cert_accepted", "1 if the server accepted certprobe's client certificate, 0 if it rejected it; absent when unknown."),
    ("client_cert_not_after_timestamp_seconds", "notAfter of the client certificate certprobe presents to this endpoint, Unix time."),
    ("mtls_enforced", "1 if the server refused a client without a certificate, 0 if it let one in; absent when not checked."),
    ("leaf_changed_timestamp_seconds", "Unix time the leaf certificate fingerprint of this address last changed (first observation time until it changes)."),
    ("cert_revoked", "1 for each certificate of the verified path (position 0 is the leaf) that its issuer's CRL lists as revoked; absent for certificates not revoked."),
    ("revocation_status", "Revocation status of each certificate of the verified path whose status is not good: 1 unknown (no http CDP: none or LDAP only), 2 unavailable (no usable CRL), 3 revoked; absent when good or not checked."),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
}

/// All series of one (endpoint, address), encoded once when its outcome is recorded, in a
/// compact form: the label set every series of the target shares is stored once, and each
/// sample only as the rest of its line. A scrape writes `certprobe_<family>` + `base` + each
/// line; nothing is re-encoded. Gauge sample lines are identical in the text format 0.0.4 and
/// in OpenMetrics, so the same text serves both.
#[derive(Debug, Clone)]
struct TargetSeries {
    /// `{endpoint="…",address="…",role="…",pool="…"` and the configured labels, escaped; no
    /// closing brace.
    base: Box<str>,
    /// The rest of each sample line (`,phase="connect"} 0.00012\n`, or `} 1\n`), grouped by
    /// family in family order.
    tails: Box<str>,
    /// `tails[offsets[f]..offsets[f + 1]]` are the lines of family `f`.
    offsets: [u32; NFAM + 1],
    /// Leaf fingerprint and the time it was first seen (leaf_changed state).
    leaf: Option<(Box<str>, f64)>,
    /// When the certificate facts on display were observed (None: no chain seen yet).
    cert_time: Option<f64>,
}

impl TargetSeries {
    fn family(&self, f: usize) -> &str {
        &self.tails[self.offsets[f] as usize..self.offsets[f + 1] as usize]
    }
}

/// The certificate-derived families, a contiguous range of [`Fam`] (kept on display while
/// later probes capture no chain).
const CERT_FAMS: std::ops::RangeInclusive<usize> =
    Fam::CertNotAfter as usize..=Fam::HostnameMatch as usize;

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

/// Append `v` to `out` escaped as a label value (backslash, double quote, newline), cut to
/// [`MAX_LABEL_VALUE`] bytes first.
fn push_label_value(out: &mut String, v: &str) {
    let v = truncated(v);
    let mut last = 0;
    for (i, b) in v.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&v[last..i]);
        out.push_str(escaped);
        last = i + 1;
    }
    out.push_str(&v[last..]);
}

fn push_label(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    push_label_value(out, value);
    out.push('"');
}

/// Append a sample value the way prometheus-client writes gauges: integers in decimal, floats
/// as the shortest representation that round-trips (`2.0`, `1.5e-5`), non-finite values as
/// `NaN`, `+Inf`, `-Inf`.
fn push_value(out: &mut String, v: Value) {
    match v {
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
        Value::Float(f) if f.is_finite() => out.push_str(dtoa::Buffer::new().format_finite(f)),
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f > 0.0 => out.push_str("+Inf"),
        Value::Float(_) => out.push_str("-Inf"),
    }
}

/// Collects the sample lines of one target, per family.
struct Lines {
    fams: [String; NFAM],
}

impl Lines {
    fn new() -> Self {
        Self {
            fams: std::array::from_fn(|_| String::new()),
        }
    }

    fn push(&mut self, fam: Fam, labels: &[(&str, &str)], value: Value) {
        let t = &mut self.fams[fam as usize];
        for (k, v) in labels {
            t.push(',');
            push_label(t, k, v);
        }
        t.push_str("} ");
        push_value(t, value);
        t.push('\n');
    }

    fn finish(self) -> (Box<str>, [u32; NFAM + 1]) {
        let mut tails = String::with_capacity(self.fams.iter().map(String::len).sum());
        let mut offsets = [0u32; NFAM + 1];
        for (f, text) in self.fams.iter().enumerate() {
            tails.push_str(text);
            offsets[f + 1] = u32::try_from(tails.len()).unwrap_or(u32::MAX);
        }
        (tails.into_boxed_str(), offsets)
    }
}

/// Which families have at least one sample among `targets`.
fn present_families(targets: &[Arc<TargetSeries>]) -> [bool; NFAM] {
    let mut present = [false; NFAM];
    for t in targets {
        for (f, p) in present.iter_mut().enumerate() {
            *p |= t.offsets[f] != t.offsets[f + 1];
        }
    }
    present
}

/// Size of the pieces a scrape is streamed in.
const CHUNK: usize = 256 * 1024;

/// The per-target families of a snapshot, rendered in chunks of about [`CHUNK`] bytes: a
/// scrape never holds the whole page in memory.
struct FamilyChunks {
    targets: Vec<Arc<TargetSeries>>,
    present: [bool; NFAM],
    /// Next (family, target) to write.
    fam: usize,
    idx: usize,
    /// Text before the families (self-metrics) and after them (`# EOF`).
    head: Option<String>,
    tail: Option<&'static str>,
}

impl FamilyChunks {
    fn new(targets: Vec<Arc<TargetSeries>>, head: String, openmetrics: bool) -> Self {
        Self {
            present: present_families(&targets),
            targets,
            fam: 0,
            idx: 0,
            head: Some(head),
            tail: openmetrics.then_some("# EOF\n"),
        }
    }
}

impl Iterator for FamilyChunks {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut out = self.head.take().unwrap_or_default();
        out.reserve(CHUNK + 1024);
        while self.fam < NFAM {
            let f = self.fam;
            if !self.present[f] {
                self.fam += 1;
                continue;
            }
            let (name, help) = FAMILIES[f];
            if self.idx == 0 {
                for (kw, text) in [("# HELP ", help), ("# TYPE ", "gauge")] {
                    out.push_str(kw);
                    out.push_str(PREFIX);
                    out.push('_');
                    out.push_str(name);
                    out.push(' ');
                    out.push_str(text);
                    out.push('\n');
                }
            }
            while let Some(t) = self.targets.get(self.idx) {
                self.idx += 1;
                for line in t.family(f).split_inclusive('\n') {
                    out.push_str(PREFIX);
                    out.push('_');
                    out.push_str(name);
                    out.push_str(&t.base);
                    out.push_str(line);
                }
                if out.len() >= CHUNK {
                    return Some(out);
                }
            }
            self.fam += 1;
            self.idx = 0;
        }
        if let Some(t) = self.tail.take() {
            out.push_str(t);
        }
        (!out.is_empty()).then_some(out)
    }
}

type ResultLabels = [(&'static str, &'static str); 1];
type PoolLabels = [(&'static str, String); 1];

/// The metrics registry of the daemon. Cheap to share (`Arc<Metrics>`); all methods take `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    state: RwLock<State>,
    reload_ok: Gauge,
    config_warnings: Gauge,
    reload_ts: Gauge<f64, AtomicU64>,
    probes: Family<ResultLabels, Counter>,
    pools: Family<PoolLabels, Gauge>,
    pool_names: std::sync::Mutex<HashSet<String>>,
    lag: Gauge<f64, AtomicU64>,
    behind: Counter,
    in_flight: Gauge,
    endpoints: Gauge,
    addresses: Gauge,
    /// Size of the last page rendered as a whole.
    last_len: AtomicUsize,
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
        // Per-URL CRL families (src/revocation/metrics.rs), read from the CRL cache at scrape.
        registry.register_collector(Box::new(crate::revocation::metrics::CrlCollector));
        Self {
            registry,
            state: RwLock::new(State::default()),
            reload_ok,
            config_warnings,
            reload_ts,
            probes,
            pools,
            pool_names: std::sync::Mutex::new(HashSet::new()),
            lag,
            behind,
            in_flight,
            endpoints,
            addresses,
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

/// `s` cut to at most [`MAX_LABEL_VALUE`] bytes, on a character boundary.
fn truncated(s: &str) -> &str {
    if s.len() <= MAX_LABEL_VALUE {
        return s;
    }
    let mut end = MAX_LABEL_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A bounded, label-safe token from peer-supplied text (alert names): `[a-z0-9_]`, <= 48 chars,
/// anything else becomes `other`.
fn token(s: &str) -> &str {
    if !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        s
    } else {
        "other"
    }
}

fn key_labels(k: &KeyAlgorithm) -> (&'static str, String) {
    match k {
        KeyAlgorithm::Rsa { bits } => ("rsa", bits.to_string()),
        KeyAlgorithm::Ec { bits, .. } => ("ec", bits.to_string()),
        KeyAlgorithm::Ed25519 => ("ed25519", "256".to_string()),
        KeyAlgorithm::Ed448 => ("ed448", "456".to_string()),
        KeyAlgorithm::Other { .. } => ("other", String::new()),
    }
}

/// `{endpoint="…",address="…",role="…",pool="…"` plus the configured labels (keys sorted),
/// escaped, without the closing brace.
fn base_text(o: &ProbeOutcome) -> Box<str> {
    let t = &o.target;
    let mut base = String::with_capacity(96);
    base.push('{');
    push_label(&mut base, "endpoint", &t.endpoint);
    base.push(',');
    push_label(&mut base, "address", &o.address);
    if let Some(k) = o.capture.key_type {
        // Only for an address probed per key type: a single-certificate server's series keep
        // their label set.
        base.push(',');
        push_label(&mut base, "key_type", k.as_str());
    }
    if let Some(st) = t.starttls {
        // Only where set: implicit-TLS targets keep their label set.
        base.push(',');
        push_label(&mut base, "starttls", st.as_str());
    }
    base.push(',');
    push_label(&mut base, "role", &t.profile);
    base.push(',');
    push_label(&mut base, "pool", t.pool.as_deref().unwrap_or(""));
    for (k, v) in &t.labels {
        if is_allowed_endpoint_label(k) {
            base.push(',');
            push_label(&mut base, k, v);
        } else {
            tracing::debug!(label = %k, endpoint = %t.endpoint, "configured label dropped: reserved or invalid name");
        }
    }
    base.into_boxed_str()
}

/// Build the series of one outcome. `prev` supplies leaf-change history and the last
/// certificate facts for outcomes without a chain.
fn build_series(o: &ProbeOutcome, prev: Option<&TargetSeries>) -> TargetSeries {
    let mut l = Lines::new();
    let c = &o.capture;
    let b = |v: bool| Value::Int(i64::from(v));

    l.push(Fam::ProbeSuccess, &[], b(c.succeeded()));
    let connect = c.connect_duration.map(|d| d.as_secs_f64());
    let handshake = c.handshake_duration.map(|d| d.as_secs_f64());
    if let Some(v) = connect {
        l.push(Fam::ProbeDuration, &[("phase", "connect")], Value::Float(v));
    }
    if let Some(v) = handshake {
        l.push(
            Fam::ProbeDuration,
            &[("phase", "handshake")],
            Value::Float(v),
        );
    }
    if connect.is_some() || handshake.is_some() {
        let total = connect.unwrap_or(0.0) + handshake.unwrap_or(0.0);
        l.push(
            Fam::ProbeDuration,
            &[("phase", "total")],
            Value::Float(total),
        );
    }
    if let Some(f) = &c.failure {
        let alert = f.alert.as_deref().map(token).unwrap_or("");
        l.push(
            Fam::ProbeFailure,
            &[("reason", f.reason.as_str()), ("alert", alert)],
            Value::Int(1),
        );
    }
    l.push(Fam::LastProbe, &[], Value::Float(o.finished_at));

    let version = c.tls_version.or(c.legacy.as_ref().map(|l| l.version));
    let cipher = c
        .cipher_suite
        .as_deref()
        .or(c.legacy.as_ref().map(|l| l.cipher_suite.as_str()));
    if let Some(v) = version {
        l.push(Fam::TlsVersion, &[("version", v.as_str())], Value::Int(1));
    }
    if let Some(v) = cipher {
        l.push(Fam::TlsCipher, &[("cipher", v)], Value::Int(1));
    }
    if version.is_some() || c.legacy.is_some() {
        // By the version spoken: a legacy capture can also come back with TLS 1.2 (a server
        // without rustls' cipher suites, or one that drops TLS 1.3 ClientHellos).
        let legacy = version.is_some_and(crate::vocab::TlsVersion::is_legacy);
        l.push(Fam::LegacyTls, &[], b(legacy));
    }
    match &c.handshake_signature {
        HandshakeSignature::Verified => l.push(Fam::HandshakeSignatureWeak, &[], Value::Int(0)),
        HandshakeSignature::WeakKeyNotVerified(_) | HandshakeSignature::Unverifiable(_) => {
            l.push(Fam::HandshakeSignatureWeak, &[], Value::Int(1))
        }
        HandshakeSignature::NotChecked => {}
    }

    let mut cert_time = None;
    if let Some(r) = &o.report {
        // A report carried over from an earlier probe (`report_from`) is as old as that probe.
        cert_time = Some(o.report_from.unwrap_or(o.finished_at));
        // Presented positions: certs are in order with unparseable positions left out.
        let mut pos = 0usize;
        for cert in &r.certs {
            while r.parse_errors.iter().any(|(p, _)| *p == pos) {
                pos += 1;
            }
            let mut pbuf = itoa::Buffer::new();
            let p = pbuf.format(pos);
            l.push(
                Fam::CertNotAfter,
                &[("position", p)],
                Value::Int(cert.not_after),
            );
            l.push(
                Fam::CertNotBefore,
                &[("position", p)],
                Value::Int(cert.not_before),
            );
            let (key_alg, key_bits) = key_labels(&cert.key);
            l.push(
                Fam::CertInfo,
                &[
                    ("position", p),
                    ("subject_cn", cert.subject_cn.as_deref().unwrap_or("")),
                    ("issuer_cn", cert.issuer_cn.as_deref().unwrap_or("")),
                    ("serial", &cert.serial),
                    ("fingerprint_sha256", &cert.fingerprint_sha256),
                    ("signature_algorithm", &cert.signature_algorithm),
                    ("key_algorithm", key_alg),
                    ("key_bits", &key_bits),
                ],
                Value::Int(1),
            );
            pos += 1;
        }
        for st in &r.stores {
            l.push(Fam::ChainVerified, &[("store", &st.store)], b(st.verified));
            if !st.verified {
                if let Some(e) = st.error {
                    l.push(
                        Fam::ChainVerifyError,
                        &[("store", &st.store), ("error", e.as_str())],
                        Value::Int(1),
                    );
                }
            }
        }
        if let Some(t) = r.best_path_not_after {
            l.push(Fam::ChainExpiry, &[], Value::Int(t));
        }
        if !r.certs.is_empty() {
            l.push(Fam::ChainOrderValid, &[], b(r.hygiene.order_valid));
            l.push(Fam::ChainComplete, &[], b(r.hygiene.complete));
            l.push(Fam::ChainRootSent, &[], b(r.hygiene.root_sent));
            l.push(Fam::ChainWeakHash, &[], b(r.weak_hash_on_path));
        }
        if let Some(h) = &r.hostname {
            l.push(Fam::HostnameMatch, &[], b(h.matched));
        }
        l.push(
            Fam::CertFactsTimestamp,
            &[],
            Value::Float(cert_time.unwrap_or(0.0)),
        );
    } else if let Some(p) = prev.filter(|p| p.cert_time.is_some()) {
        // Keep the last certificate facts visible when this probe captured no chain.
        cert_time = p.cert_time;
        for f in CERT_FAMS {
            l.fams[f].push_str(p.family(f));
        }
    }

    l.push(
        Fam::PolicyStatus,
        &[],
        Value::Int(i64::from(o.evaluation.status.exit_code())),
    );
    for v in &o.evaluation.verdicts {
        // `severity` is what this result means: a fail-severity rule whose finding is only
        // advisory (e.g. SHA-1 in a rule's `warn` list) reports `warn`, so alerts can route on
        // the label alone. Passing rules carry their configured severity.
        let (failed, severity) = match v.verdict {
            Verdict::Fail => (1, "fail"),
            Verdict::Warn => (1, "warn"),
            Verdict::Pass => (0, v.severity.as_str()),
            Verdict::NotApplicable => continue,
        };
        l.push(
            Fam::PolicyRuleFailed,
            &[
                ("profile", &o.evaluation.profile),
                ("rule", v.rule.as_str()),
                ("severity", severity),
            ],
            Value::Int(failed),
        );
    }
    let ca = &c.client_auth;
    if c.failure.is_none() || !c.chain.is_empty() || o.report.is_some() {
        l.push(Fam::ClientAuthRequested, &[], b(ca.requested));
    }
    if let Some(a) = ca.accepted {
        l.push(Fam::ClientCertAccepted, &[], b(a));
    }
    if let Some(t) = o.client_cert_not_after {
        l.push(Fam::ClientCertNotAfter, &[], Value::Int(t));
    }
    if let Some(m) = c.mtls_enforced {
        l.push(Fam::MtlsEnforced, &[], b(m));
    }

    // Leaf change tracking.
    let leaf = match (o.leaf_fingerprint(), prev.and_then(|p| p.leaf.as_ref())) {
        (Some(fp), Some((old, since))) if **old == *fp => Some((old.clone(), *since)),
        (Some(fp), _) => Some((Box::from(fp), o.report_from.unwrap_or(o.finished_at))),
        (None, old) => old.cloned(),
    };
    if let Some((_, since)) = &leaf {
        l.push(Fam::LeafChanged, &[], Value::Float(*since));
    }
    // Revocation: series only for certificates whose status is not good (a healthy chain adds
    // none to the per-address budget).
    if let Some(rev) = o.report.as_ref().and_then(|r| r.revocation.as_ref()) {
        use crate::revocation::Status as R;
        for cr in &rev.certs {
            let level = match cr.status {
                R::Good => continue,
                R::Unknown => 1,
                R::Unavailable => 2,
                R::Revoked => 3,
            };
            let pos = cr.position.to_string();
            if cr.status == R::Revoked {
                l.push(Fam::CertRevoked, &[("position", &pos)], Value::Int(1));
            }
            l.push(
                Fam::RevocationStatus,
                &[("position", &pos), ("method", cr.method.as_str())],
                Value::Int(level),
            );
        }
    }

    let (tails, offsets) = l.finish();
    TargetSeries {
        base: base_text(o),
        tails,
        offsets,
        leaf,
        cert_time,
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
