//! Arbitrary DER -> `chain::parse_cert` and `chain::analyze`: must never panic.
//!
//! The input is analysed as a one-certificate chain against a fixed set of stores (an internal
//! store holding one rcgen root, built once, plus the built-in public roots), with a DNS name
//! check (CN fallback allowed, the widest code path) and a fixed evaluation time. When the input
//! is a concatenation of two or more DER SEQUENCEs (the seeds include leaf+intermediate pairs),
//! they are also analysed as a presented chain, so path building over fuzzed intermediates runs.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use certprobe::chain::{
    analyze, match_hostname, parse_cert, NameCheck, StoreClass, TrustStore, TrustStores,
};
use libfuzzer_sys::fuzz_target;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, UnixTime};

/// 2026-01-01T00:00:00Z: evaluation is pure, time is an argument.
const NOW: u64 = 1_767_225_600;

fn stores() -> &'static TrustStores {
    static STORES: OnceLock<TrustStores> = OnceLock::new();
    STORES.get_or_init(|| {
        let key = KeyPair::generate().expect("rcgen key (ring, P-256)");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "certprobe fuzz root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = params.self_signed(&key).expect("self-signed fuzz root");
        let internal =
            TrustStore::from_certs("internal", StoreClass::Internal, vec![root.der().clone()])
                .expect("fuzz root is a usable anchor");
        TrustStores {
            stores: vec![internal, TrustStore::webpki_roots("public")],
        }
    })
}

/// Split `data` into top-level DER TLVs (definite lengths only); None unless it is exactly a
/// concatenation of at least two of them.
fn split_der(data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (&tag, tail) = rest.split_first()?;
        if tag != 0x30 {
            return None;
        }
        let (&first, tail) = tail.split_first()?;
        let (len, tail) = if first < 0x80 {
            (usize::from(first), tail)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || tail.len() < n {
                return None;
            }
            let len = tail[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &tail[n..])
        };
        let header = rest.len() - tail.len();
        let total = header.checked_add(len)?;
        if total > rest.len() {
            return None;
        }
        out.push(&rest[..total]);
        rest = &rest[total..];
    }
    (out.len() >= 2).then_some(out)
}

fn check(chain: &[CertificateDer<'_>]) {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW));
    let name = NameCheck {
        name: "fuzz.example.com".into(),
        allow_cn_fallback: true,
    };
    let report = analyze(chain, Some(&name), stores(), now);
    // Every presented certificate is either parsed or listed as a parse error.
    assert_eq!(
        report.certs.len() + report.parse_errors.len(),
        chain.len(),
        "analyze lost a certificate"
    );
    let _ = report.leaf();
    let _ = report.verified_stores().count();
    let _ = analyze(chain, None, stores(), now);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(facts) = parse_cert(data) {
        // Hostname matching over whatever names the certificate carries, plus an IP literal.
        for n in facts.san_dns.iter().chain(facts.subject_cn.iter()).take(8) {
            let m = match_hostname(
                &facts,
                &NameCheck {
                    name: n.clone(),
                    allow_cn_fallback: true,
                },
            );
            assert!(!m.via_wildcard || m.matched, "via_wildcard without a match");
        }
        let _ = match_hostname(
            &facts,
            &NameCheck {
                name: "127.0.0.1".into(),
                allow_cn_fallback: false,
            },
        );
    }
    check(&[CertificateDer::from(data)]);
    if let Some(parts) = split_der(data) {
        let chain: Vec<_> = parts.into_iter().map(CertificateDer::from).collect();
        check(&chain);
    }
});
