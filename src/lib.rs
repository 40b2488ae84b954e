//! certprobe: probes TLS and mutual-TLS endpoints, judges the presented certificate chains
//! against a supported-CA policy, and exports the verdicts as Prometheus metrics.
//!
//! Layout:
//! - [`config`]: YAML -> raw types (serde-saphyr, with spans) -> validated [`config::Config`].
//! - [`probe`]: connect + TLS/MTLS handshake -> [`probe::Capture`] (I/O only).
//! - [`chain`]: DER -> parsed facts, per-store verification, hostname, hygiene (pure).
//! - [`policy`]: profiles and rules -> [`policy::Evaluation`] (pure).
//! - [`report`]: `probe --once` table / JSON output.
//! - [`daemon`]: scheduler, metrics, HTTP exporter, reload.
//! - [`demo`]: the embedded lab.

#![forbid(unsafe_code)]

pub mod chain;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod outcome;
pub mod policy;
pub mod probe;
pub mod report;
pub mod runner;

/// The one crypto provider certprobe uses (ring), passed explicitly to every rustls builder.
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
