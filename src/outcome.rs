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
    /// The STARTTLS protocol, for endpoints that upgrade with it (the `starttls` label; absent
    /// for implicit TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<crate::probe::starttls::StartTls>,
    /// Which per-target series the metrics export (`metrics.detail`).
    #[serde(skip)]
    pub metrics_detail: crate::vocab::MetricsDetail,
}

/// One probe of one address, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeOutcome {
    /// The endpoint's identity, shared with its configuration (one copy per endpoint, not one
    /// per outcome: the status page keeps an outcome per target).
    pub target: std::sync::Arc<TargetMeta>,
    /// The `address` label: `ip:port`, or `unresolved` when name resolution failed.
    pub address: String,
    /// The outcome's identity within its endpoint (metrics series, scheduler state, cross
    /// rules): the address, followed by `/rsa` or `/ecdsa` when the address is probed per key
    /// type (see [`ProbeOutcome::series_key_for`]).
    pub series_key: String,
    pub capture: Capture,
    /// Chain analysis; None when no certificate was captured.
    pub report: Option<std::sync::Arc<ChainReport>>,
    /// The policy's verdicts, shared with every equal evaluation ([`crate::policy::share_evaluation`]):
    /// a fleet of endpoints with the same chain and names under the same profile keeps one copy.
    pub evaluation: std::sync::Arc<Evaluation>,
    /// notAfter of the client certificate used for MTLS, when one is configured.
    pub client_cert_not_after: Option<i64>,
    /// When the last probe that captured a chain finished, when this probe captured none (the
    /// report above is then carried over from it: last good facts stay visible).
    pub report_from: Option<f64>,
    /// When the probe finished, Unix seconds (fractional).
    pub finished_at: f64,
    /// The OAuth metadata document of this address (`oauth_metadata`), when fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<Box<crate::oauth::OAuthReport>>,
}

impl ProbeOutcome {
    /// `address`, or `address/key_type` for a per-key-type probe.
    pub fn series_key_for(address: &str, key_type: Option<crate::probe::KeyType>) -> String {
        match key_type {
            Some(k) => format!("{address}/{}", k.as_str()),
            None => address.to_string(),
        }
    }

    /// Split a series key back into (address, key type).
    pub fn split_series_key(key: &str) -> (&str, Option<crate::probe::KeyType>) {
        if let Some((a, t)) = key.rsplit_once('/') {
            if let Some(k) = crate::probe::KeyType::from_name(t) {
                return (a, Some(k));
            }
        }
        (key, None)
    }

    /// Leaf certificate SHA-256 fingerprint, when a chain was captured and parsed.
    pub fn leaf_fingerprint(&self) -> Option<&str> {
        self.report
            .as_ref()
            .and_then(|r| r.leaf())
            .map(|l| l.fingerprint_sha256.as_str())
    }
}
