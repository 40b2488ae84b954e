//! Revocation checking, the way Windows CryptoAPI does it for Lync/Skype for Business: every
//! certificate of the best verified path except the anchor is looked up in its issuer's CRL
//! (merged with the delta CRL the base names) or asked of OCSP (the stapled response, the AIA
//! responders), per `revocation.method`.
//!
//! Split in three so that evaluation stays pure:
//! - [`plan`] (pure): which certificates to check, their issuer keys and CDP URLs, from a
//!   [`ChainReport`] and the stores. Nothing is planned for a chain that verified to no store:
//!   CDP URLs come from remote servers and are fetched only when a configured CA signed them.
//! - [`fetch_plan`] (async, in the runner): fetch the plan's HTTP(S) URLs through the
//!   process-wide [`cache`] (in order, until one gives a CRL).
//! - [`judge`] (pure): signature, issuer, scope, thisUpdate/nextUpdate against `now`, serial
//!   lookup (and [`ocsp::check`] for OCSP responses), into a [`RevocationReport`].
//!
//! Size: about 1,120 lines: the plan, the fetch and the judge of both methods and their
//! per-method combination (`crl`, `ocsp`, `ocsp_then_crl`, `stapled_only`) share the report
//! types defined here; the codecs and caches live in `crl`, `ocsp`, `cache`, `ocsp_cache`.

pub mod aia;
pub mod cache;
pub mod crl;
pub mod fetch;
pub mod metrics;
pub mod ocsp;
pub mod ocsp_cache;

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
    /// OCSP: the leaf's stapled response when it verifies, else the AIA OCSP responders.
    Ocsp,
    /// OCSP as `ocsp`, and the CRL for a certificate OCSP gave no good/revoked answer for.
    OcspThenCrl,
    /// Only the stapled OCSP response (the leaf; nothing is fetched).
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

    /// OCSP responders are asked under this method.
    pub fn uses_live_ocsp(self) -> bool {
        matches!(self, Method::Ocsp | Method::OcspThenCrl)
    }
}

/// Where a certificate's verdict came from (the `method` label of
/// `certprobe_revocation_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Crl,
    /// An OCSP responder named by the certificate's AIA.
    Ocsp,
    /// The OCSP response the server stapled to the handshake.
    OcspStapled,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Crl => "crl",
            Source::Ocsp => "ocsp",
            Source::OcspStapled => "ocsp_stapled",
        }
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
    /// Hosts an incomplete chain's AIA caIssuers URLs may be fetched from (empty: no AIA).
    pub aia_hosts: Vec<String>,
    pub timeout: Duration,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            method: Method::Crl,
            max_age: DEFAULT_MAX_AGE,
            max_crl_bytes: DEFAULT_MAX_CRL_BYTES,
            allow_hosts: Vec::new(),
            aia_hosts: Vec::new(),
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

/// Bounded reason why a CRL or an OCSP response could not be used (a metric label value):
/// [`crate::vocab::RevocationReason`].
pub use crate::vocab::RevocationReason as Reason;

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
    /// Where the verdict came from (for a status without a source: the configured method's
    /// first source).
    pub method: Source,
    pub status: Status,
    /// Why the status is unknown/unavailable (the last URL's reason), when it is.
    pub reason: Option<Reason>,
    /// Extra reason for `unknown`: `ldap_only`, `no_cdp`, `no_ocsp_url`, `no_staple`,
    /// `not_stapled` (only the leaf's status is stapled).
    pub unknown_because: Option<&'static str>,
    /// The CRL URL or OCSP responder that gave the verdict.
    pub url: Option<String>,
    /// The delta CRL merged with the base CRL (Freshest CRL), when the base names one.
    pub delta_url: Option<String>,
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
    /// What the OCSP response used said (`good`, `revoked`, `unknown`), with its validity.
    pub ocsp_status: Option<ocsp::CertStatus>,
    pub ocsp_this_update: Option<i64>,
    pub ocsp_next_update: Option<i64>,
    /// The stapled response (leaf only, whatever the method): what it said, or why it is not
    /// usable (malformed, unauthorized, expired...).
    pub staple_status: Option<ocsp::CertStatus>,
    pub staple_error: Option<Reason>,
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
        .chain(report.aia.iter().flat_map(|a| a.certs.iter()))
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

/// The leaf's stapled OCSP response as captured: its bytes, or `Err(TooLarge)` when it was
/// larger than [`ocsp::MAX_RESPONSE_BYTES`].
pub type Staple = Result<Arc<[u8]>, Reason>;

/// One OCSP responder asked for a certificate.
#[derive(Debug, Clone)]
pub struct OcspFetch {
    pub responder: String,
    pub entry: ocsp_cache::Entry,
}

/// Everything evaluation judges revocation from: the stapled response, the CRLs and OCSP
/// responses fetched.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub staple: Option<Staple>,
    pub crls: FetchedCrls,
    /// OCSP responders asked, by position in the verified path, in order.
    pub ocsp: HashMap<usize, Vec<OcspFetch>>,
}

/// The issuer of `s` as OCSP needs it.
fn ocsp_issuer(s: &Subject) -> Option<ocsp::Issuer<'_>> {
    Some(ocsp::Issuer {
        name_contents: &s.cert.issuer_der,
        spki_der: s.issuer_spki.as_deref()?,
    })
}

/// The stapled response judged for `s` (the leaf only).
fn staple_for(
    s: &Subject,
    staple: Option<&Staple>,
    now: i64,
) -> Option<Result<ocsp::OcspAnswer, Reason>> {
    if s.position != 0 {
        return None;
    }
    let bytes = match staple? {
        Ok(b) => b,
        Err(e) => return Some(Err(*e)),
    };
    Some(match ocsp_issuer(s) {
        Some(issuer) => ocsp::check(bytes, &s.cert.serial, issuer, now),
        None => Err(Reason::BadSignature),
    })
}

/// A good or revoked answer settles a certificate; `unknown` does not.
fn decisive(a: &Result<ocsp::OcspAnswer, Reason>) -> bool {
    matches!(a, Ok(x) if x.status != ocsp::CertStatus::Unknown)
}

/// At most this many URLs (CDPs, OCSP responders) are tried per certificate.
const MAX_URLS_PER_CERT: usize = 4;

/// Fetch what a plan needs under `cfg.method`: CRLs through the CRL cache (for each
/// certificate its http(s) CDPs in order until one gives a CRL that matches), OCSP responses
/// through the OCSP cache (its AIA responders in order until one gives a decisive answer),
/// skipping the live OCSP of a leaf whose staple already settles it. `now` is the wall clock.
pub async fn fetch_plan(
    subjects: &[Subject],
    cfg: &RevocationConfig,
    staple: Option<Staple>,
    tls: Option<Arc<rustls::ClientConfig>>,
    now: f64,
) -> Evidence {
    let mut out = Evidence {
        staple,
        ..Evidence::default()
    };
    if cfg.method == Method::Off {
        return out;
    }
    for s in subjects {
        let mut settled = false;
        if cfg.method.uses_live_ocsp() {
            settled = staple_for(s, out.staple.as_ref(), now as i64).is_some_and(|a| decisive(&a));
            if !settled {
                settled = fetch_ocsp(s, cfg, tls.clone(), now, &mut out).await;
            }
        }
        let wants_crl = match cfg.method {
            Method::Crl => true,
            Method::OcspThenCrl => !settled,
            _ => false,
        };
        if wants_crl {
            fetch_crls(s, cfg, tls.clone(), now, &mut out.crls).await;
        }
    }
    out
}

async fn fetch_ocsp(
    s: &Subject,
    cfg: &RevocationConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    now: f64,
    out: &mut Evidence,
) -> bool {
    let Some(issuer) = ocsp_issuer(s) else {
        return false;
    };
    let Some(req) = ocsp::request(&s.cert.serial, issuer) else {
        return false;
    };
    for responder in fetchable(&s.cert.ocsp_urls).take(MAX_URLS_PER_CERT) {
        let url = ocsp::get_url(responder, &req);
        let entry = ocsp_cache::global()
            .get(responder, &url, cfg, now, tls.clone())
            .await;
        let ok = entry
            .body
            .as_ref()
            .is_some_and(|b| decisive(&ocsp::check(b, &s.cert.serial, issuer, now as i64)));
        out.ocsp.entry(s.position).or_default().push(OcspFetch {
            responder: responder.clone(),
            entry,
        });
        if ok {
            return true;
        }
    }
    false
}

async fn fetch_crls(
    s: &Subject,
    cfg: &RevocationConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    now: f64,
    out: &mut FetchedCrls,
) {
    let cache = cache::global();
    for url in fetchable(&s.urls).take(MAX_URLS_PER_CERT) {
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
            // The delta CRL the base names (Freshest CRL), first http(s) URL.
            let delta = state
                .crl
                .as_ref()
                .and_then(|c| fetchable(&c.freshest_urls).next().cloned());
            if let Some(durl) = delta {
                if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(durl) {
                    let st = cache.get(slot.key(), cfg, now, tls.clone()).await;
                    slot.insert(st);
                }
            }
            break;
        }
    }
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

/// Judge a plan against the evidence, at `now` (Unix seconds). Pure.
///
/// Per method, for each certificate of the path:
/// - `crl`: its CRL. The leaf's staple is judged too, and a verified staple that says
///   revoked makes the leaf revoked (Schannel hands the staple to CryptoAPI, which takes it
///   as the leaf's answer: a Windows client refuses that peer whatever the CRL says).
/// - `ocsp`: the leaf's staple when it verifies and says good or revoked, else the AIA OCSP
///   responders in order.
/// - `ocsp_then_crl`: as `ocsp`, then the CRL when OCSP gave no good/revoked answer.
/// - `stapled_only`: the leaf's staple; the other certificates are not checked.
pub fn judge(
    subjects: &[Subject],
    ev: &Evidence,
    cfg: &RevocationConfig,
    now: i64,
) -> RevocationReport {
    if cfg.method == Method::Off {
        return RevocationReport::default();
    }
    let certs = subjects
        .iter()
        .map(|s| judge_one(s, ev, cfg.method, now))
        .collect();
    RevocationReport {
        method: Some(cfg.method),
        certs,
    }
}

fn blank(s: &Subject, method: Source) -> CertRevocation {
    CertRevocation {
        position: s.position,
        subject: s.cert.subject.clone(),
        serial: s.cert.serial.clone(),
        method,
        status: Status::Unknown,
        reason: None,
        unknown_because: None,
        url: None,
        delta_url: None,
        attempts: Vec::new(),
        revoked_at: None,
        revocation_reason: None,
        crl_this_update: None,
        crl_next_update: None,
        stale: false,
        ldap_only: !s.urls.is_empty() && s.urls.iter().all(|u| is_ldap(u)),
        ocsp_status: None,
        ocsp_this_update: None,
        ocsp_next_update: None,
        staple_status: None,
        staple_error: None,
        detail: String::new(),
    }
}

fn judge_one(s: &Subject, ev: &Evidence, method: Method, now: i64) -> CertRevocation {
    let staple = staple_for(s, ev.staple.as_ref(), now);
    let mut r = match method {
        Method::Crl | Method::Off => {
            let mut r = judge_crl(s, &ev.crls, now);
            if let Some(Ok(a)) = &staple {
                if a.status == ocsp::CertStatus::Revoked && r.status != Status::Revoked {
                    let crl_detail = std::mem::take(&mut r.detail);
                    apply_ocsp(&mut r, a, Source::OcspStapled, None, false);
                    r.detail = format!("{} (the CRL check: {crl_detail})", r.detail);
                }
            }
            r
        }
        Method::StapledOnly => {
            let mut r = blank(s, Source::OcspStapled);
            match &staple {
                _ if s.position != 0 => {
                    r.unknown_because = Some("not_stapled");
                    r.detail =
                        "not checked: only the leaf's status is stapled (method stapled_only)"
                            .into();
                }
                None => {
                    r.unknown_because = Some("no_staple");
                    r.detail =
                        "not checked: the server stapled no OCSP response (method stapled_only)"
                            .into();
                }
                Some(Ok(a)) => apply_ocsp(&mut r, a, Source::OcspStapled, None, false),
                Some(Err(e)) => unusable(&mut r, *e, "stapled OCSP response", None),
            }
            r
        }
        Method::Ocsp | Method::OcspThenCrl => {
            let mut r = judge_ocsp(s, ev, staple.as_ref(), now);
            let settled = matches!(r.status, Status::Good | Status::Revoked);
            if method == Method::OcspThenCrl && !settled {
                let ocsp_attempts = std::mem::take(&mut r.attempts);
                let ocsp_detail = r.detail.clone();
                let (st, ots, otu) = (r.ocsp_status, r.ocsp_this_update, r.ocsp_next_update);
                r = judge_crl(s, &ev.crls, now);
                r.attempts.splice(0..0, ocsp_attempts);
                r.ocsp_status = st;
                r.ocsp_this_update = ots;
                r.ocsp_next_update = otu;
                r.detail = format!("{} (OCSP: {ocsp_detail})", r.detail);
            }
            r
        }
    };
    if let Some(st) = &staple {
        match st {
            Ok(a) => r.staple_status = Some(a.status),
            Err(e) => r.staple_error = Some(*e),
        }
    }
    r
}

/// Fill `r` from a verified OCSP answer.
fn apply_ocsp(
    r: &mut CertRevocation,
    a: &ocsp::OcspAnswer,
    source: Source,
    url: Option<&str>,
    stale: bool,
) {
    r.method = source;
    r.ocsp_status = Some(a.status);
    r.ocsp_this_update = Some(a.this_update);
    r.ocsp_next_update = a.next_update;
    r.url = url.map(str::to_string);
    r.stale = stale;
    r.reason = None;
    r.unknown_because = None;
    let what = match (source, url) {
        (Source::OcspStapled, _) => "stapled OCSP response".to_string(),
        (_, Some(u)) => format!("OCSP {}", crate::text::bounded(u, 256)),
        _ => "OCSP".to_string(),
    };
    let by = if a.delegated {
        ", signed by a delegated responder"
    } else {
        ""
    };
    match a.status {
        ocsp::CertStatus::Good => {
            r.status = Status::Good;
            r.detail = format!(
                "not revoked ({what}{by}{})",
                if stale {
                    ", last good copy: the refetch failed"
                } else {
                    ""
                }
            );
        }
        ocsp::CertStatus::Revoked => {
            r.status = Status::Revoked;
            r.revoked_at = a.revoked_at;
            r.revocation_reason = a.reason.map(|c| reason_name(c).to_string());
            r.detail = format!(
                "revoked{}{} ({what}{by})",
                a.revoked_at
                    .map(|t| format!(" on {}", crate::chain::fmt_time(t)))
                    .unwrap_or_default(),
                r.revocation_reason
                    .as_deref()
                    .map(|n| format!(", reason {n}"))
                    .unwrap_or_default(),
            );
        }
        ocsp::CertStatus::Unknown => {
            // Windows: revocation status unknown, as with an offline responder; the peer is
            // refused when revocation checking is on.
            r.status = Status::Unavailable;
            r.reason = Some(Reason::CertUnknown);
            r.detail = format!("the responder does not know the certificate ({what}{by})");
        }
    }
}

fn unusable(r: &mut CertRevocation, reason: Reason, what: &str, url: Option<&str>) {
    r.status = Status::Unavailable;
    r.reason = Some(reason);
    r.detail = format!(
        "no usable {what}: {}{}",
        ocsp_sentence(reason),
        url.map(|u| format!(" ({})", crate::text::bounded(u, 256)))
            .unwrap_or_default()
    );
}

/// [`Reason::human`] for an OCSP response.
fn ocsp_sentence(reason: Reason) -> &'static str {
    match reason {
        Reason::BadDer => "it is not a DER OCSP response",
        Reason::TooLarge => "it is larger than the OCSP response bound (64 KiB)",
        Reason::BadSignature => "its signature does not verify with the signer's key",
        Reason::Expired => "it is past its nextUpdate",
        Reason::NotYetValid => "its thisUpdate is in the future",
        r => r.human(),
    }
}

fn judge_ocsp(
    s: &Subject,
    ev: &Evidence,
    staple: Option<&Result<ocsp::OcspAnswer, Reason>>,
    now: i64,
) -> CertRevocation {
    let mut r = blank(s, Source::Ocsp);
    if let Some(Ok(a)) = staple.filter(|a| decisive(a)) {
        apply_ocsp(&mut r, a, Source::OcspStapled, None, false);
        return r;
    }
    let fetches = ev.ocsp.get(&s.position).map(Vec::as_slice).unwrap_or(&[]);
    if fetchable(&s.cert.ocsp_urls).next().is_none() {
        r.unknown_because = Some("no_ocsp_url");
        r.detail = "the certificate names no http(s) OCSP responder".into();
        return r;
    }
    r.status = Status::Unavailable;
    let mut last: Option<(Reason, &str)> = None;
    for f in fetches {
        let verdict = match (&f.entry.body, ocsp_issuer(s)) {
            (Some(b), Some(issuer)) => ocsp::check(b, &s.cert.serial, issuer, now),
            (Some(_), None) => Err(Reason::BadSignature),
            (None, _) => Err(f.entry.last_error.unwrap_or(Reason::Connect)),
        };
        // A failed refetch with a last good copy reports the fetch failure as the attempt's
        // error when the copy is no longer usable.
        let verdict = match (verdict, f.entry.last_error) {
            (Err(_), Some(e)) if f.entry.body.is_some() => Err(e),
            (v, _) => v,
        };
        match verdict {
            Ok(a) if a.status != ocsp::CertStatus::Unknown => {
                r.attempts.push(UrlAttempt {
                    url: f.responder.clone(),
                    error: None,
                });
                apply_ocsp(
                    &mut r,
                    &a,
                    Source::Ocsp,
                    Some(&f.responder),
                    f.entry.stale(),
                );
                return r;
            }
            Ok(a) => {
                r.attempts.push(UrlAttempt {
                    url: f.responder.clone(),
                    error: Some(Reason::CertUnknown),
                });
                apply_ocsp(
                    &mut r,
                    &a,
                    Source::Ocsp,
                    Some(&f.responder),
                    f.entry.stale(),
                );
                last = None;
            }
            Err(e) => {
                r.attempts.push(UrlAttempt {
                    url: f.responder.clone(),
                    error: Some(e),
                });
                last = Some((e, f.responder.as_str()));
            }
        }
    }
    if let Some((e, url)) = last {
        unusable(&mut r, e, "OCSP response", Some(url));
    } else if r.ocsp_status.is_none() {
        unusable(&mut r, Reason::Connect, "OCSP response", None);
    }
    if let Some(Err(e)) = staple {
        r.detail = format!(
            "{}; the stapled response is not usable either: {}",
            r.detail,
            ocsp_sentence(*e)
        );
    }
    r
}

/// The delta CRL fetched for `base`: issued and signed like the base, a delta CRL whose
/// BaseCRLNumber is at most the base's CRL number (it completes this base), within
/// thisUpdate/nextUpdate.
fn usable_delta<'a>(
    base: &ParsedCrl,
    state: Option<&'a cache::UrlState>,
    s: &Subject,
    now: i64,
) -> Result<&'a ParsedCrl, Reason> {
    let state = state.ok_or(Reason::Connect)?;
    let Some(delta) = state.crl.as_deref() else {
        return Err(state.last_error.unwrap_or(Reason::Connect));
    };
    if delta.issuer_der != s.cert.issuer_der {
        return Err(Reason::WrongIssuer);
    }
    match &s.issuer_spki {
        Some(spki) if delta.signed_by(spki) => {}
        _ => return Err(Reason::BadSignature),
    }
    let completes = match (&delta.delta_base, &base.crl_number) {
        (Some(db), Some(bn)) => crl::cmp_crl_numbers(db, bn) != std::cmp::Ordering::Greater,
        _ => false,
    };
    if !delta.is_delta || !completes {
        return Err(Reason::Scope);
    }
    if delta.this_update > now {
        return Err(Reason::NotYetValid);
    }
    if delta.next_update.is_some_and(|n| n < now) {
        return Err(Reason::Expired);
    }
    Ok(delta)
}

fn judge_crl(s: &Subject, fetched: &FetchedCrls, now: i64) -> CertRevocation {
    let mut r = blank(s, Source::Crl);
    let urls: Vec<&String> = fetchable(&s.urls).take(MAX_URLS_PER_CERT).collect();
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
        // A base that names delta CRLs is complete only with a usable delta.
        let mut entry = crl.lookup(&s.cert.serial);
        let mut via = String::new();
        if let Some(durl) = fetchable(&crl.freshest_urls).next() {
            match usable_delta(crl, fetched.get(durl), s, now) {
                Ok(delta) => {
                    r.delta_url = Some(durl.clone());
                    via = format!(" + delta CRL {}", crate::text::bounded(durl, 256));
                    match delta.lookup(&s.cert.serial) {
                        // removeFromCRL: the base's (hold) entry no longer applies.
                        Some(e) if e.reason == Some(8) => entry = None,
                        Some(e) => entry = Some(e),
                        None => {}
                    }
                }
                Err(reason) => {
                    r.attempts.push(UrlAttempt {
                        url: durl.clone(),
                        error: Some(reason),
                    });
                    r.status = Status::Unavailable;
                    r.reason = Some(reason);
                    r.url = None;
                    r.detail = format!(
                        "no usable delta CRL (the base CRL {} names one): {} ({})",
                        crate::text::bounded(url, 256),
                        reason.human(),
                        crate::text::bounded(durl, 256)
                    );
                    return r;
                }
            }
        }
        let url = &format!("{}{via}", crate::text::bounded(url, 256));
        match entry {
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
        reason.human(),
        r.attempts
            .last()
            .map(|a| crate::text::bounded(&a.url, 256))
            .unwrap_or_default()
    );
    r
}

/// Wrap SubjectPublicKeyInfo contents (a webpki `TrustAnchor`'s form) back into a SEQUENCE.
fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    ocsp::der_wrap(0x30, contents)
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
