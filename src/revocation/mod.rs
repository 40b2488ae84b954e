//! Revocation checking, the way Windows CryptoAPI does it for Lync/Skype for Business: every
//! certificate of the best verified path except the anchor is looked up in its issuer's CRL.
//!
//! Split in three so that evaluation stays pure:
//! - [`plan`] (pure): which certificates to check, their issuer keys and CDP URLs, from a
//!   [`ChainReport`] and the stores. Nothing is planned for a chain that verified to no store:
//!   CDP URLs come from remote servers and are fetched only when a configured CA signed them.
//! - [`fetch_plan`] (async, in the runner): fetch the plan's HTTP(S) URLs through the
//!   process-wide [`cache`] (in order, until one gives a CRL).
//! - [`judge`] (pure): signature, issuer, scope, thisUpdate/nextUpdate against `now`, serial
//!   lookup, into a [`RevocationReport`].

pub mod cache;
pub mod crl;
pub mod fetch;
pub mod metrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::chain::{CertFacts, ChainReport, TrustStores};
use crl::ParsedCrl;

/// Default for `revocation.max_age`: a cached CRL is refetched after at most this long.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Default for `revocation.max_crl_bytes`.
pub const DEFAULT_MAX_CRL_BYTES: u64 = 20 * 1024 * 1024;
/// Default for `revocation.timeout`: one CRL fetch, redirects included.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How revocation is checked (`revocation.method`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// CRLs from the certificates' HTTP(S) CDPs.
    #[default]
    Crl,
    /// OCSP (not implemented yet: reported as not checked).
    Ocsp,
    /// OCSP, else CRL (OCSP not implemented yet: CRL).
    OcspThenCrl,
    /// Only the stapled OCSP response (not implemented yet: reported as not checked).
    StapledOnly,
    /// No revocation checking.
    Off,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Crl => "crl",
            Method::Ocsp => "ocsp",
            Method::OcspThenCrl => "ocsp_then_crl",
            Method::StapledOnly => "stapled_only",
            Method::Off => "off",
        }
    }

    /// CRLs are fetched under this method.
    pub fn uses_crl(self) -> bool {
        matches!(self, Method::Crl | Method::OcspThenCrl)
    }
}

/// Effective revocation settings of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RevocationConfig {
    pub method: Method,
    pub max_age: Duration,
    pub max_crl_bytes: u64,
    /// When non-empty, only hosts matching one of these globs are fetched; a link-local or
    /// metadata address is fetched only when its host matches one.
    pub allow_hosts: Vec<String>,
    pub timeout: Duration,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            method: Method::Crl,
            max_age: DEFAULT_MAX_AGE,
            max_crl_bytes: DEFAULT_MAX_CRL_BYTES,
            allow_hosts: Vec::new(),
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

impl RevocationConfig {
    pub fn off() -> Self {
        Self {
            method: Method::Off,
            ..Self::default()
        }
    }
}

/// Bounded reason why a CRL could not be used (a metric label value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Dns,
    Connect,
    Tls,
    Timeout,
    HttpStatus,
    Redirect,
    TooLarge,
    BadDer,
    BadUrl,
    /// Another scheme than http/https.
    Unsupported,
    /// Refused by the fetch policy (link-local/metadata address, host not in `allow_hosts`).
    Blocked,
    BadSignature,
    WrongIssuer,
    /// The CRL's Issuing Distribution Point does not cover the certificate (or is indirect,
    /// or a delta CRL was published as the base).
    Scope,
    Expired,
    NotYetValid,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Dns => "dns",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Timeout => "timeout",
            Reason::HttpStatus => "http_status",
            Reason::Redirect => "redirect",
            Reason::TooLarge => "too_large",
            Reason::BadDer => "bad_der",
            Reason::BadUrl => "bad_url",
            Reason::Unsupported => "unsupported",
            Reason::Blocked => "blocked",
            Reason::BadSignature => "bad_signature",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::Scope => "scope",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            Reason::Dns => "its host does not resolve",
            Reason::Connect => "the connection failed",
            Reason::Tls => "the TLS connection failed",
            Reason::Timeout => "the fetch timed out",
            Reason::HttpStatus => "the server answered with an error status",
            Reason::Redirect => "it redirects to another host",
            Reason::TooLarge => "it is larger than max_crl_bytes",
            Reason::BadDer => "it is not a DER or PEM CRL",
            Reason::BadUrl => "the URL is malformed or carries userinfo",
            Reason::Unsupported => "its scheme is not http or https",
            Reason::Blocked => "the fetch policy refuses its host or address",
            Reason::BadSignature => "its signature does not verify with the issuer's key",
            Reason::WrongIssuer => "it is issued by another CA than the certificate's issuer",
            Reason::Scope => "its issuing distribution point does not cover the certificate",
            Reason::Expired => "it is past its nextUpdate",
            Reason::NotYetValid => "its thisUpdate is in the future",
        }
    }
}

/// Revocation status of one certificate (a metric label value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Good,
    Revoked,
    /// No usable revocation source: LDAP-only or no CDP, or an unsupported method.
    Unknown,
    /// The sources exist but none gave a usable CRL (fetch failed, expired, bad signature...).
    Unavailable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Good => "good",
            Status::Revoked => "revoked",
            Status::Unknown => "unknown",
            Status::Unavailable => "unavailable",
        }
    }
}

/// One URL tried for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlAttempt {
    pub url: String,
    /// None: this URL gave the verdict.
    pub error: Option<Reason>,
}

/// Revocation verdict of one certificate of the verified path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRevocation {
    /// Position in the verified path (0 = leaf).
    pub position: usize,
    pub subject: String,
    pub serial: String,
    pub method: Method,
    pub status: Status,
    /// Why the status is unknown/unavailable (the last URL's reason), when it is.
    pub reason: Option<Reason>,
    /// Extra reason for `unknown`: `ldap_only`, `no_cdp`, `method_not_implemented`.
    pub unknown_because: Option<&'static str>,
    /// The CRL URL that gave the verdict.
    pub url: Option<String>,
    pub attempts: Vec<UrlAttempt>,
    /// Revocation date (Unix seconds) and reason code when revoked.
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub crl_this_update: Option<i64>,
    pub crl_next_update: Option<i64>,
    /// The CRL used is the last good copy kept after a failed refetch.
    pub stale: bool,
    /// Every CDP of the certificate is `ldap://` (never fetched).
    pub ldap_only: bool,
    pub detail: String,
}

/// Revocation verdicts of a chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevocationReport {
    pub method: Option<Method>,
    /// One entry per certificate of the best verified path except the anchor, leaf first.
    pub certs: Vec<CertRevocation>,
}

impl RevocationReport {
    /// The worst status over the path (revoked > unavailable > unknown > good).
    pub fn worst(&self) -> Option<&CertRevocation> {
        let rank = |s: Status| match s {
            Status::Revoked => 3,
            Status::Unavailable => 2,
            Status::Unknown => 1,
            Status::Good => 0,
        };
        self.certs.iter().max_by_key(|c| rank(c.status))
    }
}

/// One certificate to check.
#[derive(Debug, Clone)]
pub struct Subject {
    pub position: usize,
    pub cert: CertFacts,
    /// The issuer's SubjectPublicKeyInfo DER (None when the issuer is not known).
    pub issuer_spki: Option<Vec<u8>>,
    /// CDP URLs, in the certificate's order.
    pub urls: Vec<String>,
}

/// The certificates to check for a chain (empty when no store verified it).
pub fn plan(report: &ChainReport, stores: &TrustStores) -> Vec<Subject> {
    let best = report
        .stores
        .iter()
        .position(|v| v.verified && !v.legacy_algorithms)
        .or_else(|| report.stores.iter().position(|v| v.verified));
    let Some(bi) = best else { return Vec::new() };
    let verdict = &report.stores[bi];
    let Some(store) = stores.stores.iter().find(|s| s.name == verdict.store) else {
        return Vec::new();
    };
    let known: Vec<&CertFacts> = report
        .certs
        .iter()
        .chain(store.helper_facts.iter().flatten())
        .chain(store.anchor_facts.iter())
        .chain(report.anchor.iter())
        .collect();
    let by_fp = |fp: &str| known.iter().find(|f| f.fingerprint_sha256 == fp).copied();
    let anchor_fp = report
        .anchor
        .as_ref()
        .map(|a| a.fingerprint_sha256.as_str());
    let mut out = Vec::new();
    for (position, fp) in verdict.path.iter().enumerate() {
        if Some(fp.as_str()) == anchor_fp {
            break;
        }
        let Some(cert) = by_fp(fp) else { break };
        if cert.self_signed {
            break;
        }
        let issuer_spki = verdict
            .path
            .get(position + 1)
            .and_then(|n| by_fp(n))
            .filter(|i| i.subject_der == cert.issuer_der)
            .or_else(|| {
                known
                    .iter()
                    .copied()
                    .find(|i| i.subject_der == cert.issuer_der)
            })
            .map(|i| i.spki_der.clone())
            .or_else(|| {
                store
                    .anchors
                    .iter()
                    .find(|a| a.subject.as_ref() == cert.issuer_der)
                    .map(|a| wrap_sequence(a.subject_public_key_info.as_ref()))
            });
        out.push(Subject {
            position,
            cert: cert.clone(),
            issuer_spki,
            urls: cert.crl_distribution_points.clone(),
        });
    }
    out
}

/// The URLs a subject's CRL may be fetched from: http(s) only, in order.
pub fn fetchable(urls: &[String]) -> impl Iterator<Item = &String> {
    urls.iter().filter(|u| {
        let l = u.get(..8).unwrap_or(u).to_ascii_lowercase();
        l.starts_with("http://") || l.starts_with("https://")
    })
}

fn is_ldap(url: &str) -> bool {
    url.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("ldap:"))
}

/// What was fetched for a plan: the cache's state of each URL tried.
pub type FetchedCrls = HashMap<String, cache::UrlState>;

/// Fetch a plan's URLs through `cache`: for each certificate, its http(s) CDPs in order until
/// one gives a CRL that judges (issuer and signature match). `now` is the wall clock.
pub async fn fetch_plan(
    subjects: &[Subject],
    cfg: &RevocationConfig,
    cache: &cache::CrlCache,
    tls: Option<Arc<rustls::ClientConfig>>,
    now: f64,
) -> FetchedCrls {
    let mut out = FetchedCrls::new();
    if !cfg.method.uses_crl() {
        return out;
    }
    for s in subjects {
        for url in fetchable(&s.urls).take(4) {
            let state = match out.get(url) {
                Some(st) => st.clone(),
                None => {
                    let st = cache.get(url, cfg, now, tls.clone()).await;
                    out.insert(url.clone(), st.clone());
                    st
                }
            };
            let usable = state
                .crl
                .as_ref()
                .is_some_and(|c| crl_matches(c, s).is_ok());
            if usable {
                break;
            }
        }
    }
    out
}

/// Issuer, signature and scope of `crl` for `s`.
fn crl_matches(crl: &ParsedCrl, s: &Subject) -> Result<(), Reason> {
    if crl.issuer_der != s.cert.issuer_der {
        return Err(Reason::WrongIssuer);
    }
    match &s.issuer_spki {
        Some(spki) if crl.signed_by(spki) => {}
        _ => return Err(Reason::BadSignature),
    }
    if crl.is_delta {
        return Err(Reason::Scope);
    }
    if let Some(idp) = &crl.idp {
        let uris_disjoint = !idp.uris.is_empty()
            && !s.cert.crl_distribution_points.is_empty()
            && !idp
                .uris
                .iter()
                .any(|u| s.cert.crl_distribution_points.iter().any(|c| c == u));
        if idp.indirect
            || idp.only_attribute_certs
            || (idp.only_user_certs && s.cert.is_ca)
            || (idp.only_ca_certs && !s.cert.is_ca)
            || uris_disjoint
        {
            return Err(Reason::Scope);
        }
    }
    Ok(())
}

/// RFC 5280 reason code names.
fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "other",
    }
}

/// Judge a plan against what was fetched, at `now` (Unix seconds). Pure.
pub fn judge(
    subjects: &[Subject],
    fetched: &FetchedCrls,
    cfg: &RevocationConfig,
    now: i64,
) -> RevocationReport {
    if cfg.method == Method::Off {
        return RevocationReport::default();
    }
    let certs = subjects
        .iter()
        .map(|s| judge_one(s, fetched, cfg.method, now))
        .collect();
    RevocationReport {
        method: Some(cfg.method),
        certs,
    }
}

fn judge_one(s: &Subject, fetched: &FetchedCrls, method: Method, now: i64) -> CertRevocation {
    let mut r = CertRevocation {
        position: s.position,
        subject: s.cert.subject.clone(),
        serial: s.cert.serial.clone(),
        method,
        status: Status::Unknown,
        reason: None,
        unknown_because: None,
        url: None,
        attempts: Vec::new(),
        revoked_at: None,
        revocation_reason: None,
        crl_this_update: None,
        crl_next_update: None,
        stale: false,
        ldap_only: !s.urls.is_empty() && s.urls.iter().all(|u| is_ldap(u)),
        detail: String::new(),
    };
    if !method.uses_crl() {
        r.unknown_because = Some("method_not_implemented");
        r.detail = format!(
            "revocation method {} is not implemented yet",
            method.as_str()
        );
        return r;
    }
    let urls: Vec<&String> = fetchable(&s.urls).take(4).collect();
    if urls.is_empty() {
        r.unknown_because = Some(if r.ldap_only { "ldap_only" } else { "no_cdp" });
        r.detail = if r.ldap_only {
            "every CRL distribution point is ldap:// (not fetched; clients outside the domain cannot reach it)".into()
        } else {
            "the certificate has no http(s) CRL distribution point".into()
        };
        return r;
    }
    r.status = Status::Unavailable;
    for url in urls {
        let Some(state) = fetched.get(url) else {
            continue;
        };
        let Some(crl) = &state.crl else {
            let reason = state.last_error.unwrap_or(Reason::Connect);
            r.attempts.push(UrlAttempt {
                url: url.clone(),
                error: Some(reason),
            });
            r.reason = Some(reason);
            continue;
        };
        let checked = crl_matches(crl, s).and_then(|()| {
            if crl.this_update > now {
                Err(Reason::NotYetValid)
            } else if crl.next_update.is_some_and(|n| n < now) {
                Err(Reason::Expired)
            } else {
                Ok(())
            }
        });
        r.crl_this_update = Some(crl.this_update);
        r.crl_next_update = crl.next_update;
        if let Err(reason) = checked {
            r.attempts.push(UrlAttempt {
                url: url.clone(),
                error: Some(reason),
            });
            r.reason = Some(reason);
            continue;
        }
        r.attempts.push(UrlAttempt {
            url: url.clone(),
            error: None,
        });
        r.url = Some(url.clone());
        r.stale = state.stale();
        r.reason = None;
        match crl.lookup(&s.cert.serial) {
            // certificateHold / removeFromCRL entries of a base CRL still block (Windows).
            Some(e) => {
                r.status = Status::Revoked;
                r.revoked_at = Some(e.revoked_at);
                r.revocation_reason = e.reason.map(|c| reason_name(c).to_string());
                r.detail = format!(
                    "revoked on {}{} (CRL {})",
                    crate::chain::fmt_time(e.revoked_at),
                    r.revocation_reason
                        .as_deref()
                        .map(|n| format!(", reason {n}"))
                        .unwrap_or_default(),
                    crate::text::bounded(url, 256)
                );
            }
            None => {
                r.status = Status::Good;
                r.detail = format!(
                    "not revoked (CRL {}{})",
                    crate::text::bounded(url, 256),
                    if r.stale {
                        ", last good copy: the refetch failed"
                    } else {
                        ""
                    }
                );
            }
        }
        return r;
    }
    let reason = r.reason.unwrap_or(Reason::Connect);
    r.reason = Some(reason);
    r.detail = format!(
        "no usable CRL: {} ({})",
        reason.sentence(),
        r.attempts
            .last()
            .map(|a| crate::text::bounded(&a.url, 256))
            .unwrap_or_default()
    );
    r
}

/// Wrap SubjectPublicKeyInfo contents (a webpki `TrustAnchor`'s form) back into a SEQUENCE.
fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// `*` matches any run of characters within one label; `**.example.com`-style prefixes are
/// not special: `*.example.com` matches `pki.example.com` only. Case-insensitive.
pub fn glob_match(glob: &str, host: &str) -> bool {
    let (g, h) = (glob.to_ascii_lowercase(), host.to_ascii_lowercase());
    let gl: Vec<&str> = g.split('.').collect();
    let hl: Vec<&str> = h.split('.').collect();
    gl.len() == hl.len() && gl.iter().zip(&hl).all(|(g, h)| label_match(g, h))
}

fn label_match(g: &str, h: &str) -> bool {
    match g.split_once('*') {
        None => g == h,
        Some((pre, post)) => {
            h.len() >= pre.len() + post.len() && h.starts_with(pre) && h.ends_with(post)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_labels() {
        assert!(glob_match("*.pki.example.com", "crl.PKI.example.com"));
        assert!(!glob_match("*.pki.example.com", "a.b.pki.example.com"));
        assert!(glob_match("127.0.0.1", "127.0.0.1"));
        assert!(glob_match("crl*.example.com", "crl2.example.com"));
        assert!(!glob_match("crl*.example.com", "evil.example.com"));
    }

    #[test]
    fn sequences_are_rewrapped() {
        assert_eq!(wrap_sequence(&[1, 2]), vec![0x30, 2, 1, 2]);
        let long = vec![0u8; 300];
        let w = wrap_sequence(&long);
        assert_eq!(&w[..4], &[0x30, 0x82, 0x01, 0x2c]);
    }
}
