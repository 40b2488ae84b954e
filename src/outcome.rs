//! The unit every consumer (CLI report, metrics, logs) works from: one probe of one
//! (endpoint, address), with its chain report and policy evaluation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chain::ChainReport;
use crate::policy::Evaluation;
use crate::probe::Capture;

/// Identity of a configured endpoint, as carried into metrics labels and reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TargetMeta {
    /// Unique endpoint name from the config (the `endpoint` label).
    pub endpoint: String,
    pub host: String,
    pub port: u16,
    /// Profile (role) name; `default` when the endpoint names none (the `role` label).
    pub profile: String,
    /// Pool name (the `pool` label; empty when none).
    pub pool: Option<String>,
    /// Configured extra labels (small string map; keys validated as Prometheus label names).
    pub labels: BTreeMap<String, String>,
}

/// One probe of one address, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeOutcome {
    pub target: TargetMeta,
    /// The `address` label: `ip:port`, or `unresolved` when name resolution failed.
    pub address: String,
    pub capture: Capture,
    /// Chain analysis; None when no certificate was captured.
    pub report: Option<ChainReport>,
    pub evaluation: Evaluation,
    /// notAfter of the client certificate used for MTLS, when one is configured.
    pub client_cert_not_after: Option<i64>,
    /// When the last probe that captured a chain finished, when this probe captured none (the
    /// report above is then carried over from it: last good facts stay visible).
    pub report_from: Option<f64>,
    /// When the probe finished, Unix seconds (fractional).
    pub finished_at: f64,
}

impl ProbeOutcome {
    /// Leaf certificate SHA-256 fingerprint, when a chain was captured and parsed.
    pub fn leaf_fingerprint(&self) -> Option<&str> {
        self.report
            .as_ref()
            .and_then(|r| r.leaf())
            .map(|l| l.fingerprint_sha256.as_str())
    }
}
