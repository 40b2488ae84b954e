//! The Prometheus exposition of probe outcomes (prometheus-client 0.26).
//!
//! Design:
//! - Per-(endpoint, address) series live in one [`TargetSeries`] value, built once when an
//!   outcome is recorded. Recording an outcome *replaces* that value, so a series whose label
//!   values changed (old failure reason, old TLS version, old certificate at a position, ...)
//!   disappears without any bookkeeping, and removing a target removes all of its series.
//! - The series text of a target is encoded by prometheus-client once, when its outcome is
//!   recorded (gauge sample lines are identical in the text format 0.0.4 and OpenMetrics). A
//!   scrape snapshots the target list under a short read lock and splices the cached text
//!   family by family: it never probes and does not re-encode anything.
//! - Self-metrics (build info, reload status, probe counters, scheduler lag, target counts) are
//!   ordinary prometheus-client metrics in the same registry (prefix `certprobe`).
//! - Configured endpoint labels are rendered into every per-target series, after the base labels
//!   `endpoint, address, role, pool`. Keys in [`RESERVED_LABELS`], keys starting with `__` and
//!   keys that are not valid label names are dropped here (config validation rejects them).
//!
//! Time is never read here: timestamps come from the outcomes (`finished_at`) or the caller.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::chain::KeyAlgorithm;
use crate::outcome::ProbeOutcome;
use crate::policy::{Severity, Status, Verdict};
use crate::probe::HandshakeSignature;

/// Metric name prefix.
pub const PREFIX: &str = "certprobe";

/// `Content-Type` of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `Content-Type` of the OpenMetrics text format.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label names certprobe uses itself. Configured endpoint labels must not use them.
pub const RESERVED_LABELS: &[&str] = &[
    "endpoint",
    "address",
    "role",
    "pool",
    "phase",
    "reason",
    "alert",
    "version",
    "cipher",
    "position",
    "subject_cn",
    "issuer_cn",
    "serial",
    "fingerprint_sha256",
    "signature_algorithm",
    "key_algorithm",
    "key_bits",
    "store",
    "error",
    "profile",
    "rule",
    "severity",
    "result",
    "revision",
    "job",
    "instance",
    "le",
    "quantile",
];

/// Longest label value taken from a certificate or the peer; longer values are truncated.
const MAX_LABEL_VALUE: usize = 256;

/// Identity of the running binary (the `build_info` labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
}

impl BuildInfo {
    /// Version from Cargo, revision from `CERTPROBE_REVISION` at build time (`unknown` if unset).
    pub fn from_build_env() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("CERTPROBE_REVISION")
                .unwrap_or("unknown")
                .to_string(),
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
}

const NFAM: usize = Fam::LeafChanged as usize + 1;

/// (name without prefix, help) per [`Fam`], same order.
const FAMILIES: [(&str, &str); NFAM] = [
    ("probe_success", "1 if the last probe of this address completed the TLS handshake (and the client-certificate exchange) without failure, else 0."),
    ("probe_duration_seconds", "Duration of the last probe by phase: connect (TCP), handshake (TLS incl. the post-handshake verdict read), total (connect + handshake)."),
    ("probe_failure", "1 for the reason the last probe failed; only the current reason's series exists, none while the probe succeeds."),
    ("last_probe_timestamp_seconds", "Unix time the last probe of this address finished."),
    ("tls_version_info", "Negotiated TLS protocol version of the last probe (value always 1)."),
    ("tls_cipher_info", "Negotiated TLS cipher suite (IANA name) of the last probe (value always 1)."),
    ("legacy_tls", "1 if the server only speaks TLS below 1.2 (or SSL), 0 otherwise."),
    ("handshake_signature_weak", "1 if the leaf key was too weak to verify the handshake signature (e.g. RSA-1024), 0 if it was verified."),
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
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone)]
struct Sample {
    fam: Fam,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

/// All series of one (endpoint, address), encoded once by prometheus-client when the outcome is
/// recorded. Gauge sample lines are identical in the text format 0.0.4 and in OpenMetrics, so
/// the same text serves both.
#[derive(Debug, Clone)]
struct TargetSeries {
    /// Sample lines, grouped by family in family order.
    text: String,
    /// `text[offsets[f]..offsets[f + 1]]` are the sample lines of family `f`.
    offsets: [u32; NFAM + 1],
    /// Leaf fingerprint and the time it was first seen (leaf_changed state).
    leaf: Option<(String, f64)>,
    /// Certificate-derived samples of the last outcome that had a chain, with its time, kept
    /// visible while later probes capture no chain.
    cert_samples: Vec<Sample>,
    cert_time: Option<f64>,
}

impl TargetSeries {
    fn family(&self, f: usize) -> &str {
        &self.text[self.offsets[f] as usize..self.offsets[f + 1] as usize]
    }
}

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

/// Append every per-target family (HELP, TYPE, cached sample lines) of `targets`.
fn write_families(targets: &[Arc<TargetSeries>], out: &mut String) {
    out.reserve(targets.iter().map(|t| t.text.len()).sum::<usize>() + NFAM * 256);
    for (f, (name, help)) in FAMILIES.iter().enumerate() {
        if targets.iter().all(|t| t.family(f).is_empty()) {
            continue;
        }
        for kw in ["# HELP ", "# TYPE "] {
            out.push_str(kw);
            out.push_str(PREFIX);
            out.push('_');
            out.push_str(name);
            out.push(' ');
            out.push_str(if kw == "# HELP " { help } else { "gauge" });
            out.push('\n');
        }
        for t in targets {
            out.push_str(t.family(f));
        }
    }
}

/// Label set of one sample: base labels then family labels.
struct SeriesLabels<'a> {
    base: &'a [(Cow<'static, str>, String)],
    extra: &'a [(&'static str, String)],
}

impl EncodeLabelSet for SeriesLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        for (k, v) in self.base {
            prometheus_client::encoding::EncodeLabel::encode(
                &(k.as_ref(), v.as_str()),
                encoder.encode_label(),
            )?;
        }
        for (k, v) in self.extra {
            prometheus_client::encoding::EncodeLabel::encode(
                &(*k, v.as_str()),
                encoder.encode_label(),
            )?;
        }
        Ok(())
    }
}

/// Encodes the samples of one target; used once per recorded outcome.
#[derive(Debug)]
struct OneTarget {
    base: Vec<(Cow<'static, str>, String)>,
    samples: Vec<Sample>,
}

impl Collector for OneTarget {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (f, (name, help)) in FAMILIES.iter().enumerate() {
            let mut samples = self
                .samples
                .iter()
                .filter(|s| s.fam as usize == f)
                .peekable();
            if samples.peek().is_none() {
                continue;
            }
            let mut me = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for s in samples {
                let labels = SeriesLabels {
                    base: &self.base,
                    extra: &s.labels,
                };
                let mut fe = me.encode_family(&labels)?;
                match s.value {
                    Value::Int(v) => fe.encode_gauge(&v)?,
                    Value::Float(v) => fe.encode_gauge(&v)?,
                }
            }
        }
        Ok(())
    }
}

/// Encode one target's samples with prometheus-client and split the sample lines by family.
fn encode_target(
    base: Vec<(Cow<'static, str>, String)>,
    samples: Vec<Sample>,
) -> (String, [u32; NFAM + 1]) {
    let mut registry = new_registry();
    registry.register_collector(Box::new(OneTarget { base, samples }));
    let mut encoded = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut encoded, &registry);
    let mut text = String::with_capacity(encoded.len());
    let mut offsets = [0u32; NFAM + 1];
    let mut current = 0usize;
    for line in encoded.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            let name = name
                .strip_prefix(PREFIX)
                .and_then(|n| n.strip_prefix('_'))
                .unwrap_or(name);
            let f = FAMILIES
                .iter()
                .position(|(n, _)| *n == name)
                .unwrap_or(current);
            for o in &mut offsets[current + 1..=f] {
                *o = text.len() as u32;
            }
            current = f;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        text.push_str(line);
    }
    for o in &mut offsets[current + 1..] {
        *o = text.len() as u32;
    }
    (text, offsets)
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
        let key = (outcome.target.endpoint.clone(), outcome.address.clone());
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

    /// The (endpoint, address) targets that currently have series.
    pub fn targets(&self) -> Vec<(String, String)> {
        self.read().targets.keys().cloned().collect()
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

    /// The whole registry in the Prometheus text format 0.0.4.
    pub fn render_text(&self) -> String {
        self.render(false)
    }

    /// The whole registry in the OpenMetrics text format (ends with `# EOF`).
    pub fn render_openmetrics(&self) -> String {
        self.render(true)
    }

    fn render(&self, openmetrics: bool) -> String {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 4096);
        // Writing into a String cannot fail.
        if openmetrics {
            let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        }
        let snapshot = self.read().snapshot();
        write_families(&snapshot, &mut out);
        if openmetrics {
            out.push_str("# EOF\n");
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// The per-target families for just `outcomes` (the `/probe` answer), in the text format
    /// 0.0.4 or OpenMetrics. Does not change the daemon's state; `leaf_changed` and retained
    /// certificate facts come from the recorded history of the same (endpoint, address).
    pub fn render_outcomes(&self, outcomes: &[ProbeOutcome], openmetrics: bool) -> String {
        let mut tmp: BTreeMap<(String, String), Arc<TargetSeries>> = BTreeMap::new();
        for o in outcomes {
            let key = (o.target.endpoint.clone(), o.address.clone());
            let prev = self.read().targets.get(&key).cloned();
            tmp.insert(key, Arc::new(build_series(o, prev.as_deref())));
        }
        let targets: Vec<Arc<TargetSeries>> = tmp.into_values().collect();
        let mut out = String::new();
        write_families(&targets, &mut out);
        if openmetrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_LABEL_VALUE {
        return s.to_string();
    }
    let mut end = MAX_LABEL_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn valid_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.starts_with("__")
}

/// True when `key` may be used as a configured endpoint label.
pub fn is_allowed_endpoint_label(key: &str) -> bool {
    valid_label_name(key) && !RESERVED_LABELS.contains(&key)
}

/// A bounded, label-safe token from peer-supplied text (alert names): `[a-z0-9_]`, <= 48 chars,
/// anything else becomes `other`.
fn token(s: &str) -> String {
    if !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        s.to_string()
    } else {
        "other".to_string()
    }
}

fn is_legacy_version(v: &str) -> bool {
    matches!(
        v,
        "TLSv1.0" | "TLSv1.1" | "TLSv1" | "SSLv3" | "SSLv2" | "TLSv1_0" | "TLSv1_1"
    )
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Fail => "fail",
        Severity::Warn => "warn",
        Severity::Info => "info",
        Severity::Off => "off",
    }
}

fn status_value(s: Status) -> i64 {
    match s {
        Status::Ok => 0,
        Status::Warning => 1,
        Status::Critical => 2,
        Status::Unknown => 3,
    }
}

fn verify_error_str(e: crate::chain::VerifyErrorKind) -> &'static str {
    use crate::chain::VerifyErrorKind as K;
    match e {
        K::UnknownIssuer => "unknown_issuer",
        K::Expired => "expired",
        K::NotYetValid => "not_yet_valid",
        K::BadSignature => "bad_signature",
        K::UnsupportedSignatureAlgorithm => "unsupported_signature_algorithm",
        K::BadEku => "bad_eku",
        K::PathTooLong => "path_too_long",
        K::NameConstraints => "name_constraints",
        K::CaUsedAsLeaf => "ca_used_as_leaf",
        K::NotCa => "not_ca",
        K::Malformed => "malformed",
        K::Other => "other",
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

fn base_labels(o: &ProbeOutcome) -> Vec<(Cow<'static, str>, String)> {
    let t = &o.target;
    let mut base: Vec<(Cow<'static, str>, String)> = Vec::with_capacity(4 + t.labels.len());
    base.push((Cow::Borrowed("endpoint"), truncate(&t.endpoint)));
    base.push((Cow::Borrowed("address"), truncate(&o.address)));
    base.push((Cow::Borrowed("role"), truncate(&t.profile)));
    base.push((
        Cow::Borrowed("pool"),
        truncate(t.pool.as_deref().unwrap_or("")),
    ));
    for (k, v) in &t.labels {
        if is_allowed_endpoint_label(k) {
            base.push((Cow::Owned(k.clone()), truncate(v)));
        } else {
            tracing::debug!(label = %k, endpoint = %t.endpoint, "configured label dropped: reserved or invalid name");
        }
    }
    base
}

fn is_cert_fam(f: Fam) -> bool {
    matches!(
        f,
        Fam::CertNotAfter
            | Fam::CertNotBefore
            | Fam::CertInfo
            | Fam::ChainVerified
            | Fam::ChainVerifyError
            | Fam::ChainExpiry
            | Fam::ChainOrderValid
            | Fam::ChainComplete
            | Fam::ChainRootSent
            | Fam::ChainWeakHash
            | Fam::HostnameMatch
    )
}

/// Build the series of one outcome. `prev` supplies leaf-change history and the last
/// certificate facts for outcomes without a chain.
fn build_series(o: &ProbeOutcome, prev: Option<&TargetSeries>) -> TargetSeries {
    let mut s: Vec<Sample> = Vec::with_capacity(48);
    let mut push = |fam: Fam, labels: Vec<(&'static str, String)>, value: Value| {
        s.push(Sample { fam, labels, value })
    };
    let c = &o.capture;
    let b = |v: bool| Value::Int(i64::from(v));

    push(Fam::ProbeSuccess, vec![], b(c.succeeded()));
    let connect = c.connect_duration.map(|d| d.as_secs_f64());
    let handshake = c.handshake_duration.map(|d| d.as_secs_f64());
    if let Some(v) = connect {
        push(
            Fam::ProbeDuration,
            vec![("phase", "connect".into())],
            Value::Float(v),
        );
    }
    if let Some(v) = handshake {
        push(
            Fam::ProbeDuration,
            vec![("phase", "handshake".into())],
            Value::Float(v),
        );
    }
    if connect.is_some() || handshake.is_some() {
        push(
            Fam::ProbeDuration,
            vec![("phase", "total".into())],
            Value::Float(connect.unwrap_or(0.0) + handshake.unwrap_or(0.0)),
        );
    }
    if let Some(f) = &c.failure {
        let alert = f.alert.as_deref().map(token).unwrap_or_default();
        push(
            Fam::ProbeFailure,
            vec![("reason", f.reason.as_str().into()), ("alert", alert)],
            Value::Int(1),
        );
    }
    push(Fam::LastProbe, vec![], Value::Float(o.finished_at));

    let version = c
        .tls_version
        .as_deref()
        .or(c.legacy.as_ref().map(|l| l.version.as_str()));
    let cipher = c
        .cipher_suite
        .as_deref()
        .or(c.legacy.as_ref().map(|l| l.cipher_suite.as_str()));
    if let Some(v) = version {
        push(
            Fam::TlsVersion,
            vec![("version", truncate(v))],
            Value::Int(1),
        );
    }
    if let Some(v) = cipher {
        push(Fam::TlsCipher, vec![("cipher", truncate(v))], Value::Int(1));
    }
    if version.is_some() || c.legacy.is_some() {
        push(
            Fam::LegacyTls,
            vec![],
            b(c.legacy.is_some() || version.is_some_and(is_legacy_version)),
        );
    }
    match &c.handshake_signature {
        HandshakeSignature::Verified => push(Fam::HandshakeSignatureWeak, vec![], Value::Int(0)),
        HandshakeSignature::WeakKeyNotVerified(_) => {
            push(Fam::HandshakeSignatureWeak, vec![], Value::Int(1))
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
            let p = pos.to_string();
            push(
                Fam::CertNotAfter,
                vec![("position", p.clone())],
                Value::Int(cert.not_after),
            );
            push(
                Fam::CertNotBefore,
                vec![("position", p.clone())],
                Value::Int(cert.not_before),
            );
            let (key_alg, key_bits) = key_labels(&cert.key);
            push(
                Fam::CertInfo,
                vec![
                    ("position", p),
                    (
                        "subject_cn",
                        truncate(cert.subject_cn.as_deref().unwrap_or("")),
                    ),
                    (
                        "issuer_cn",
                        truncate(cert.issuer_cn.as_deref().unwrap_or("")),
                    ),
                    ("serial", truncate(&cert.serial)),
                    ("fingerprint_sha256", truncate(&cert.fingerprint_sha256)),
                    ("signature_algorithm", truncate(&cert.signature_algorithm)),
                    ("key_algorithm", key_alg.into()),
                    ("key_bits", key_bits),
                ],
                Value::Int(1),
            );
            pos += 1;
        }
        for st in &r.stores {
            push(
                Fam::ChainVerified,
                vec![("store", truncate(&st.store))],
                b(st.verified),
            );
            if !st.verified {
                if let Some(e) = st.error {
                    push(
                        Fam::ChainVerifyError,
                        vec![
                            ("store", truncate(&st.store)),
                            ("error", verify_error_str(e).into()),
                        ],
                        Value::Int(1),
                    );
                }
            }
        }
        if let Some(t) = r.best_path_not_after {
            push(Fam::ChainExpiry, vec![], Value::Int(t));
        }
        if !r.certs.is_empty() {
            push(Fam::ChainOrderValid, vec![], b(r.hygiene.order_valid));
            push(Fam::ChainComplete, vec![], b(r.hygiene.complete));
            push(Fam::ChainRootSent, vec![], b(r.hygiene.root_sent));
            push(Fam::ChainWeakHash, vec![], b(r.weak_hash_on_path));
        }
        if let Some(h) = &r.hostname {
            push(Fam::HostnameMatch, vec![], b(h.matched));
        }
    }

    push(
        Fam::PolicyStatus,
        vec![],
        Value::Int(status_value(o.evaluation.status)),
    );
    for v in &o.evaluation.verdicts {
        // `severity` is what this result means: a fail-severity rule whose finding is only
        // advisory (e.g. SHA-1 in a rule's `warn` list) reports `warn`, so alerts can route on
        // the label alone. Passing rules carry their configured severity.
        let (failed, severity) = match v.verdict {
            Verdict::Fail => (1, "fail"),
            Verdict::Warn => (1, "warn"),
            Verdict::Pass => (0, severity_str(v.severity)),
            Verdict::NotApplicable => continue,
        };
        push(
            Fam::PolicyRuleFailed,
            vec![
                ("profile", truncate(&o.evaluation.profile)),
                ("rule", v.rule.into()),
                ("severity", severity.into()),
            ],
            Value::Int(failed),
        );
    }
    let ca = &c.client_auth;
    if c.failure.is_none() || !c.chain.is_empty() || o.report.is_some() {
        push(Fam::ClientAuthRequested, vec![], b(ca.requested));
    }
    if let Some(a) = ca.accepted {
        push(Fam::ClientCertAccepted, vec![], b(a));
    }
    if let Some(t) = o.client_cert_not_after {
        push(Fam::ClientCertNotAfter, vec![], Value::Int(t));
    }
    if let Some(m) = c.mtls_enforced {
        push(Fam::MtlsEnforced, vec![], b(m));
    }

    // Leaf change tracking.
    let leaf = match (o.leaf_fingerprint(), prev.and_then(|p| p.leaf.as_ref())) {
        (Some(fp), Some((old, since))) if old == fp => Some((fp.to_string(), *since)),
        (Some(fp), _) => Some((fp.to_string(), o.report_from.unwrap_or(o.finished_at))),
        (None, old) => old.cloned(),
    };
    if let Some((_, since)) = &leaf {
        push(Fam::LeafChanged, vec![], Value::Float(*since));
    }

    // Keep the last certificate facts visible when this probe captured no chain.
    let (cert_samples, cert_time) = if cert_time.is_some() {
        (
            s.iter().filter(|x| is_cert_fam(x.fam)).cloned().collect(),
            cert_time,
        )
    } else if let Some(p) = prev.filter(|p| p.cert_time.is_some()) {
        s.extend(p.cert_samples.iter().cloned());
        (p.cert_samples.clone(), p.cert_time)
    } else {
        (Vec::new(), None)
    };
    if let Some(t) = cert_time {
        s.push(Sample {
            fam: Fam::CertFactsTimestamp,
            labels: vec![],
            value: Value::Float(t),
        });
    }

    s.sort_by_key(|x| x.fam);
    let (text, offsets) = encode_target(base_labels(o), s);
    TargetSeries {
        text,
        offsets,
        leaf,
        cert_samples,
        cert_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    /// The cache serves both formats: prometheus-client must encode gauge sample lines
    /// identically in the text format 0.0.4 and in OpenMetrics.
    #[test]
    fn gauge_sample_lines_are_identical_in_both_formats() {
        let base = vec![
            (
                Cow::Borrowed("endpoint"),
                "a \"quoted\" \\ name\nwith newline".to_string(),
            ),
            (Cow::Borrowed("address"), "[::1]:443".to_string()),
            (Cow::Owned("site".to_string()), "øst".to_string()),
        ];
        let samples = vec![
            Sample {
                fam: Fam::ProbeSuccess,
                labels: vec![],
                value: Value::Int(1),
            },
            Sample {
                fam: Fam::ProbeDuration,
                labels: vec![("phase", "connect".into())],
                value: Value::Float(0.000015),
            },
            Sample {
                fam: Fam::ProbeDuration,
                labels: vec![("phase", "total".into())],
                value: Value::Float(0.1),
            },
            Sample {
                fam: Fam::LastProbe,
                labels: vec![],
                value: Value::Float(1_800_000_000.25),
            },
            Sample {
                fam: Fam::CertNotAfter,
                labels: vec![("position", "0".into())],
                value: Value::Int(-62_135_596_800),
            },
            Sample {
                fam: Fam::LeafChanged,
                labels: vec![],
                value: Value::Float(2.0),
            },
        ];
        let enc = |om: bool| {
            let mut r = new_registry();
            r.register_collector(Box::new(OneTarget {
                base: base.clone(),
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
        let (text, om) = (enc(false), enc(true));
        assert_eq!(sample_lines(&text), sample_lines(&om));
        let (cached, offsets) = encode_target(base.clone(), samples.clone());
        assert_eq!(cached.lines().collect::<Vec<_>>(), sample_lines(&text));
        // Offsets split the families exactly.
        let series = TargetSeries {
            text: cached,
            offsets,
            leaf: None,
            cert_samples: vec![],
            cert_time: None,
        };
        assert_eq!(
            series.family(Fam::ProbeDuration as usize).lines().count(),
            2
        );
        assert_eq!(series.family(Fam::ProbeFailure as usize), "");
        assert!(series.family(Fam::LeafChanged as usize).ends_with(" 2.0\n"));
    }
}
