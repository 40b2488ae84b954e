//! AIA caIssuers chasing, as Windows CryptoAPI does for an incomplete chain: when no store
//! verifies what the server sent and the issuer walk stops at a certificate whose issuer is
//! neither presented nor known to a store, the missing CA certificate is fetched from that
//! certificate's AIA `caIssuers` URLs (and, up to [`MAX_DEPTH`] levels, from the fetched
//! certificate's own), then offered to path building ([`crate::chain::analyze_with_aia`]).
//! A chain that verifies only this way is "complete only through AIA": Windows clients work,
//! Java, Android and many appliances do not (rule `aia_completes_chain`).
//!
//! The URLs come from a chain that has **not** verified, i.e. from whoever runs the server, so
//! nothing is fetched unless `revocation.aia_hosts` is set, and then only from hosts matching
//! it (on top of the fetch bounds of [`super::fetch`]: http/https, no userinfo, same-host
//! redirects, time and size). A fetched certificate is only a candidate: path building checks
//! its signature like any other, so a hostile one cannot make a chain trusted.
//!
//! Split like the rest of revocation: [`needs_issuer`] and [`parse_body`] are pure; [`chase`]
//! fetches through the process-wide [`super::ocsp_cache::aia_global`] cache (one fetch per URL
//! however many endpoints share it).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Serialize;

use super::{fetchable, Reason, RevocationConfig};
use crate::chain::{CertFacts, ChainReport, TrustStores};

/// Largest caIssuers body accepted (a certificate, or a few in PEM).
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Levels chased: the missing issuer, its issuer, and one more.
pub const MAX_DEPTH: usize = 3;
/// caIssuers URLs tried per certificate (in order, until one gives the issuer).
pub const MAX_URLS: usize = 3;

/// One caIssuers URL tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AiaFetch {
    /// The URL, from the certificate's AIA extension.
    pub url: String,
    /// Subject of the certificate whose issuer was sought.
    pub for_subject: String,
    /// Subject of the CA certificate it gave, when it gave the issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Why it gave no usable issuer (fetch failure, `bad_der`: no certificate in the body,
    /// `wrong_issuer`: no CA certificate with the sought subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The body is a last good copy kept after a failed refetch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// The chase of one chain: what was tried, and the certificates offered to path building.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AiaReport {
    pub fetches: Vec<AiaFetch>,
    /// Facts of the fetched CA certificates, in the order they were chased (not presented).
    pub certs: Vec<CertFacts>,
}

/// The certificate whose issuer the chain lacks, when AIA may supply it: no store verified the
/// chain (even ignoring the leaf's EKU), the issuer walk over the presented certificates ends
/// at a certificate that is not self-signed, whose issuer is neither an anchor nor a bundled CA
/// of any store, and that names an http(s) caIssuers URL. Pure.
pub fn needs_issuer<'a>(report: &'a ChainReport, stores: &TrustStores) -> Option<&'a CertFacts> {
    if report
        .stores
        .iter()
        .any(|s| s.verified || s.trusted_ignoring_eku)
    {
        return None;
    }
    let mut cur = report.leaf()?;
    let mut seen = vec![cur.fingerprint_sha256.as_str()];
    while let Some(next) = report
        .certs
        .iter()
        .find(|c| c.subject_der == cur.issuer_der && !seen.contains(&c.fingerprint_sha256.as_str()))
    {
        if cur.self_signed {
            break;
        }
        seen.push(&next.fingerprint_sha256);
        cur = next;
    }
    if cur.self_signed || known_issuer(stores, &cur.issuer_der) {
        return None;
    }
    fetchable(&cur.ca_issuers_urls).next().map(|_| cur)
}

fn known_issuer(stores: &TrustStores, issuer_der: &[u8]) -> bool {
    stores.stores.iter().any(|s| {
        s.anchors.iter().any(|a| a.subject.as_ref() == issuer_der)
            || s.helper_facts
                .iter()
                .flatten()
                .any(|h| h.subject_der == issuer_der)
    })
}

/// The certificates in a caIssuers body, each parsed once: one DER certificate (AD CS
/// publishes `.crt` files so), or PEM `CERTIFICATE` blocks (at most 8). PKCS#7 (`.p7c`)
/// bundles are not read. `bad_der` when no certificate parses. Pure.
pub fn parse_body(body: &[u8]) -> Result<Vec<(CertificateDer<'static>, CertFacts)>, Reason> {
    if body.len() > MAX_CERT_BYTES {
        return Err(Reason::TooLarge);
    }
    let ders: Vec<CertificateDer<'static>> = if body.first() == Some(&0x30) {
        vec![CertificateDer::from(body.to_vec())]
    } else {
        CertificateDer::pem_slice_iter(body)
            .take(8)
            .filter_map(Result::ok)
            .collect()
    };
    let certs: Vec<_> = ders
        .into_iter()
        .filter_map(|d| {
            crate::chain::facts::parse_cert(d.as_ref())
                .ok()
                .map(|f| (d, f))
        })
        .collect();
    if certs.is_empty() {
        Err(Reason::BadDer)
    } else {
        Ok(certs)
    }
}

/// Chase the chain's missing issuers (see the module doc). None when nothing was attempted:
/// the chain needs no issuer, or `revocation.aia_hosts` is empty. Otherwise the fetched
/// issuers (DER, in chase order) and the report of every URL tried.
pub async fn chase(
    report: &ChainReport,
    stores: &TrustStores,
    cfg: &RevocationConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    now: f64,
) -> Option<(Vec<CertificateDer<'static>>, AiaReport)> {
    if cfg.aia_hosts.is_empty() {
        return None;
    }
    // Fetched under the CDP bounds, with `aia_hosts` as the only hosts allowed.
    let cfg = &RevocationConfig {
        allow_hosts: cfg.aia_hosts.clone(),
        max_crl_bytes: MAX_CERT_BYTES as u64,
        ..cfg.clone()
    };
    let mut cur = needs_issuer(report, stores)?.clone();
    let mut ders = Vec::new();
    let mut out = AiaReport::default();
    for _ in 0..MAX_DEPTH {
        let mut found = None;
        for url in fetchable(&cur.ca_issuers_urls).take(MAX_URLS) {
            let entry = super::ocsp_cache::aia_global()
                .get(url, url, cfg, now, tls.clone())
                .await;
            let mut fetch = AiaFetch {
                url: url.clone(),
                for_subject: cur.subject.clone(),
                issuer: None,
                reason: None,
                stale: entry.stale(),
            };
            let picked = match &entry.body {
                None => Err(entry.last_error.unwrap_or(Reason::Connect)),
                Some(body) => parse_body(body).and_then(|certs| {
                    certs
                        .into_iter()
                        .find(|(_, f)| f.subject_der == cur.issuer_der && f.is_ca)
                        .ok_or(Reason::WrongIssuer)
                }),
            };
            match picked {
                Ok((der, facts)) => {
                    fetch.issuer = Some(facts.subject.clone());
                    out.fetches.push(fetch);
                    found = Some((der, facts));
                    break;
                }
                Err(reason) => {
                    fetch.reason = Some(reason);
                    out.fetches.push(fetch);
                }
            }
        }
        let Some((der, facts)) = found else { break };
        let done = facts.self_signed || known_issuer(stores, &facts.issuer_der);
        ders.push(der);
        let looped = out.certs.iter().any(|c| c.subject_der == facts.issuer_der);
        out.certs.push(facts.clone());
        // A fetched CA whose issuer was already fetched closes a loop: stop there.
        if done || looped {
            break;
        }
        cur = facts;
    }
    Some((ders, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_a_certificate_is_bad_der_and_an_oversized_one_too_large() {
        assert_eq!(parse_body(b"<html>not found</html>"), Err(Reason::BadDer));
        assert_eq!(
            parse_body(&[0x30, 0x03, 0x02, 0x01, 0x00]),
            Err(Reason::BadDer)
        );
        assert_eq!(
            parse_body(&vec![0x30; MAX_CERT_BYTES + 1]),
            Err(Reason::TooLarge)
        );
    }
}
