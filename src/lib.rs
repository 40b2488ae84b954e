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
//! - [`vocab`]: every closed vocabulary (TLS versions, hashes, issuer classes, store errors,
//!   rule ids, severities, verdicts, statuses), each one enum with its names.

#![forbid(unsafe_code)]

pub mod chain;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod discovery;
pub mod dns;
pub mod fsread;
pub mod healthcheck;
pub mod labels;
pub mod netmatch;
pub mod oauth;
pub mod outcome;
pub mod policy;
pub mod probe;
pub mod report;
pub mod revocation;
pub mod runner;
pub mod text;
pub mod vocab;

use std::sync::{Arc, LazyLock};

use rustls::crypto::{hash::HashAlgorithm, CryptoProvider};

/// The one crypto provider certprobe uses (ring), passed explicitly to every rustls builder.
/// Built once; every caller shares it.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: LazyLock<Arc<CryptoProvider>> =
        LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));
    Arc::clone(&PROVIDER)
}

/// The provider the prober offers: the same algorithms as [`crypto_provider`], with the
/// SHA-256 cipher suites of each TLS version ahead of the SHA-384 ones (the order browsers
/// offer). A server that honours the client's order then runs its handshake key schedule on
/// SHA-256, which has hardware support on x86-64 where SHA-512 has none; a server with its own
/// preference still picks what it prefers, and the negotiated suite is reported either way.
pub fn probe_crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| {
        let mut provider = rustls::crypto::ring::default_provider();
        // A stable sort keeps ring's order within each (version, hash) class.
        provider.cipher_suites.sort_by_key(|suite| {
            let (tls13, common) = match suite {
                rustls::SupportedCipherSuite::Tls13(s) => (true, &s.common),
                rustls::SupportedCipherSuite::Tls12(s) => (false, &s.common),
            };
            let sha384 = common.hash_provider.algorithm() == HashAlgorithm::SHA384;
            (!tls13, sha384)
        });
        Arc::new(provider)
    });
    Arc::clone(&PROVIDER)
}

/// [`probe_crypto_provider`] restricted to one key type's TLS 1.2 cipher suites (ECDHE_ECDSA or
/// ECDHE_RSA; TLS 1.3 suites are key-agnostic), built once per type. `None` is the whole
/// provider.
pub fn probe_crypto_provider_for(
    key_type: Option<crate::probe::handshake::KeyType>,
) -> Arc<CryptoProvider> {
    use crate::probe::handshake::KeyType;
    fn restricted(kt: KeyType) -> Arc<CryptoProvider> {
        let mut provider = (*probe_crypto_provider()).clone();
        provider.cipher_suites.retain(|suite| match suite {
            rustls::SupportedCipherSuite::Tls13(_) => true,
            rustls::SupportedCipherSuite::Tls12(s) => s.sign.iter().any(|sch| kt.allows(*sch)),
        });
        Arc::new(provider)
    }
    static ECDSA: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| restricted(KeyType::Ecdsa));
    static RSA: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| restricted(KeyType::Rsa));
    match key_type {
        None => probe_crypto_provider(),
        Some(KeyType::Ecdsa) => Arc::clone(&ECDSA),
        Some(KeyType::Rsa) => Arc::clone(&RSA),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite;

    #[test]
    fn probe_provider_offers_the_same_suites_sha256_first_within_each_version() {
        let probe: Vec<CipherSuite> = probe_crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        let mut default: Vec<CipherSuite> = crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(probe[0], CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert_eq!(
            probe
                .iter()
                .position(|s| *s == CipherSuite::TLS13_AES_256_GCM_SHA384),
            Some(2),
            "{probe:?}"
        );
        let first_tls12 = probe
            .iter()
            .position(|s| *s == CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
            .expect("TLS 1.2 ECDSA AES-128 offered");
        assert!(probe[first_tls12..]
            .iter()
            .all(|s| !format!("{s:?}").starts_with("TLS13")));
        let mut sorted = probe.clone();
        sorted.sort_by_key(|s| u16::from(*s));
        default.sort_by_key(|s| u16::from(*s));
        assert_eq!(sorted, default, "same algorithms, different order");
        assert!(Arc::ptr_eq(&crypto_provider(), &crypto_provider()));
    }
}
