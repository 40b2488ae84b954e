//! The OAuth token-issuer certificate of a Lync / Skype for Business Front End pool (issue 15
//! part 5): `https://<pool>/metadata/json/1` is fetched over a fresh TLS connection to the
//! probed address with the endpoint's own name (SNI and certificate check), each certificate it
//! publishes in `keys[].keyValue.value` (base64 DER, `usage: Signing`) is judged with an OAuth
//! profile, and a pool's members must publish the same set (policy::cross).
//!
//! The document is hostile input: the URL is built from the endpoint, never from the document;
//! the body, its JSON nesting and its number of keys are bounded; every way it can be unusable
//! is a [`OAuthFailure`] reason. [`parse_metadata`] and [`judge`] are pure; only [`fetch`]
//! touches the network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

use crate::chain::{self, CertFacts, TrustStores};
use crate::policy::{self, EndpointContext, Evaluation, Policy, RuleVerdict};
use crate::probe::Capture;
pub use crate::vocab::OAuthFailure;
use crate::vocab::{RuleId, Severity, Status, Verdict};

/// The metadata document's path on the pool's web services.
pub const METADATA_PATH: &str = "/metadata/json/1";
/// Largest metadata document read (a real one is 2-6 KiB).
pub const MAX_BODY_BYTES: u64 = 256 * 1024;
/// Deepest JSON nesting accepted (a real document nests 4 levels; serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 32;
/// Most entries in `keys` (a roll window publishes two).
pub const MAX_KEYS: usize = 8;
/// Longest failure detail kept (it may quote the document).
const MAX_DETAIL: usize = 200;

/// An endpoint's OAuth metadata settings (config `oauth_metadata`, or its profile's rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OAuthSettings {
    /// Profile judging each certificate.
    pub profile: String,
    /// Severity of a failed fetch.
    pub severity: Severity,
}

/// The effective settings of an endpoint bound to `profile`: `explicit` (the endpoint's
/// `oauth_metadata: true|false`, `--oauth-metadata`) wins over the profile's `oauth_metadata`
/// rule; without a rule, `true` judges with the built-in `oauth` profile and fails a failed
/// fetch.
pub fn settings_for(
    policy: &Policy,
    profile: &str,
    explicit: Option<bool>,
) -> Option<OAuthSettings> {
    let rule = policy
        .profile(profile)
        .and_then(|p| p.rules.oauth_metadata.as_ref());
    let severity = rule.and_then(|r| r.severity);
    let enabled = match explicit {
        Some(e) => e,
        None => rule.is_some() && severity != Some(Severity::Off),
    };
    enabled.then(|| OAuthSettings {
        profile: rule
            .and_then(|r| r.profile.clone())
            .unwrap_or_else(|| "oauth".to_string()),
        severity: severity
            .filter(|s| *s != Severity::Off)
            .unwrap_or(Severity::Fail),
    })
}

/// Why the document gave no certificate, with a bounded human detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub reason: OAuthFailure,
    pub detail: String,
}

impl Failure {
    fn new(reason: OAuthFailure, detail: impl Into<String>) -> Self {
        let mut detail: String = detail.into();
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
            detail.push('…');
        }
        Self { reason, detail }
    }
}

/// One signing certificate of the document, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataKey {
    /// Index in the document's `keys` array.
    pub position: usize,
    pub der: CertificateDer<'static>,
}

/// One published certificate, judged.
#[derive(Debug, Clone, Serialize)]
pub struct OAuthCert {
    /// Index in the document's `keys` array (the `position` label).
    pub position: usize,
    pub cert: CertFacts,
    pub evaluation: Evaluation,
}

/// The OAuth metadata of one probed address.
#[derive(Debug, Clone, Serialize)]
pub struct OAuthReport {
    pub url: String,
    /// Profile the certificates were judged with.
    pub profile: String,
    /// Worst of the certificates' evaluations and the document-level verdicts.
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub certs: Vec<OAuthCert>,
    /// Document-level verdicts: `oauth_metadata` (the fetch), `oauth_roll_window`, and
    /// `pool_consistency` once the cross-endpoint rules ran.
    pub verdicts: Vec<RuleVerdict>,
}

impl OAuthReport {
    /// Append a document-level verdict (the pool's) and roll the status up again.
    pub fn add_verdict(&mut self, v: RuleVerdict) {
        self.verdicts.push(v);
        self.status = self.rolled_up();
    }

    fn rolled_up(&self) -> Status {
        self.certs
            .iter()
            .fold(policy::roll_up(&self.verdicts), |s, c| {
                s.worst(c.evaluation.status)
            })
    }

    /// The set compared across a pool: fingerprints (`same_cert`) or SPKI hashes
    /// (`same_spki`), sorted, deduplicated.
    pub fn key_set(&self, same_spki: bool) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .certs
            .iter()
            .map(|c| {
                if same_spki {
                    c.cert.spki_sha256.as_str()
                } else {
                    c.cert.fingerprint_sha256.as_str()
                }
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// `https://<name>[:port]/metadata/json/1` (IPv6 literals bracketed).
pub fn url_for(name: &str, port: u16) -> String {
    let host = if name.contains(':') && !name.starts_with('[') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    if port == 443 {
        format!("https://{host}{METADATA_PATH}")
    } else {
        format!("https://{host}:{port}{METADATA_PATH}")
    }
}

/// Whether the nesting of `body` (arrays and objects, outside strings) exceeds `max`. A linear
/// scan, run before serde_json so that a deep document is [`OAuthFailure::TooDeep`] whatever
/// the parser's own recursion limit.
fn too_deep(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in body {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[derive(Deserialize)]
struct Doc {
    keys: Option<Vec<RawKey>>,
}

#[derive(Deserialize)]
struct RawKey {
    usage: Option<String>,
    // The documented spelling and the one ACS-style documents use.
    #[serde(rename = "keyValue", alias = "keyvalue")]
    key_value: Option<RawKeyValue>,
}

#[derive(Deserialize)]
struct RawKeyValue {
    value: Option<String>,
}

/// The signing certificates of a metadata document, in document order. Pure. Extra fields are
/// ignored; keys whose `usage` is not `Signing` are skipped.
pub fn parse_metadata(body: &[u8]) -> Result<Vec<MetadataKey>, Failure> {
    if body.len() as u64 > MAX_BODY_BYTES {
        return Err(Failure::new(
            OAuthFailure::TooLarge,
            format!("{} bytes (at most {MAX_BODY_BYTES})", body.len()),
        ));
    }
    if too_deep(body, MAX_DEPTH) {
        return Err(Failure::new(
            OAuthFailure::TooDeep,
            format!("JSON nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| {
        let reason = if e.to_string().contains("recursion limit") {
            OAuthFailure::TooDeep
        } else {
            OAuthFailure::BadJson
        };
        Failure::new(reason, e.to_string())
    })?;
    let keys = doc
        .keys
        .ok_or_else(|| Failure::new(OAuthFailure::MissingField, "no `keys` array"))?;
    if keys.len() > MAX_KEYS {
        return Err(Failure::new(
            OAuthFailure::TooManyKeys,
            format!("{} keys (at most {MAX_KEYS})", keys.len()),
        ));
    }
    let mut out = Vec::new();
    for (i, k) in keys.into_iter().enumerate() {
        if !k
            .usage
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("signing"))
        {
            continue;
        }
        let value = k
            .key_value
            .ok_or_else(|| {
                Failure::new(
                    OAuthFailure::MissingField,
                    format!("keys[{i}]: no keyValue"),
                )
            })?
            .value
            .ok_or_else(|| {
                Failure::new(
                    OAuthFailure::MissingField,
                    format!("keys[{i}].keyValue: no value"),
                )
            })?;
        let compact: Vec<u8> = value.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|e| {
                Failure::new(
                    OAuthFailure::BadBase64,
                    format!("keys[{i}].keyValue.value: {e}"),
                )
            })?;
        match x509_parser::parse_x509_certificate(&der) {
            Ok(([], _)) => {}
            Ok(_) => {
                return Err(Failure::new(
                    OAuthFailure::BadDer,
                    format!("keys[{i}].keyValue.value: trailing bytes after the certificate"),
                ))
            }
            Err(e) => {
                return Err(Failure::new(
                    OAuthFailure::BadDer,
                    format!("keys[{i}].keyValue.value: {e}"),
                ))
            }
        }
        out.push(MetadataKey {
            position: i,
            der: CertificateDer::from(der),
        });
    }
    if out.is_empty() {
        return Err(Failure::new(
            OAuthFailure::NoSigningKey,
            "no key with usage Signing",
        ));
    }
    Ok(out)
}

/// GET the metadata document from `addr` with `name` as SNI and verified name, within
/// `timeout`, through the revocation fetcher's bounded HTTP/1.1 client.
pub async fn fetch(
    name: &str,
    addr: SocketAddr,
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, Failure> {
    use crate::revocation::Reason as R;
    let get = crate::revocation::fetch::get_at(
        name,
        addr,
        METADATA_PATH,
        MAX_BODY_BYTES,
        "application/json",
        tls,
    );
    match tokio::time::timeout(timeout, get).await {
        Err(_) => Err(Failure::new(
            OAuthFailure::Timeout,
            format!("no answer within {timeout:?}"),
        )),
        Ok(Ok(body)) => Ok(body),
        Ok(Err(r)) => Err(match r {
            R::Tls => Failure::new(
                OAuthFailure::Tls,
                format!("TLS handshake with {addr} for {name} failed (untrusted or wrong name?)"),
            ),
            R::HttpStatus | R::Redirect => {
                Failure::new(OAuthFailure::HttpStatus, "the server did not answer 200")
            }
            R::TooLarge => Failure::new(
                OAuthFailure::TooLarge,
                format!("body larger than {MAX_BODY_BYTES} bytes"),
            ),
            R::Timeout => Failure::new(OAuthFailure::Timeout, "timed out"),
            other => Failure::new(
                OAuthFailure::Connect,
                format!("{}: connecting to {addr} failed", other.as_str()),
            ),
        }),
    }
}

/// What [`judge`] needs besides the document.
pub struct JudgeInput<'a> {
    pub settings: &'a OAuthSettings,
    pub policy: &'a Policy,
    pub stores: &'a TrustStores,
    /// Issuers the endpoint itself presented (its TLS chain without the leaf): a document
    /// carries bare certificates, usually from the same PKI.
    pub issuers: &'a [CertificateDer<'static>],
    /// Endpoint, host and pool of the probed endpoint.
    pub ctx: &'a EndpointContext,
    pub address: SocketAddr,
    pub url: String,
    pub now: i64,
}

/// Judge a fetched (or failed) document. Pure: time is `input.now`.
pub fn judge(fetched: Result<Vec<u8>, Failure>, input: &JudgeInput<'_>) -> OAuthReport {
    let s = input.settings;
    let mut report = OAuthReport {
        url: input.url.clone(),
        profile: s.profile.clone(),
        status: Status::Ok,
        failure: None,
        certs: Vec::new(),
        verdicts: Vec::new(),
    };
    match fetched.and_then(|body| parse_metadata(&body)) {
        Err(f) => {
            let verdict = match s.severity {
                Severity::Fail => Verdict::Fail,
                Severity::Warn => Verdict::Warn,
                Severity::Info | Severity::Off => Verdict::Pass,
            };
            let prefix = if verdict == Verdict::Pass {
                "(info) "
            } else {
                ""
            };
            report.verdicts.push(RuleVerdict {
                rule: RuleId::OAuthMetadata,
                severity: s.severity,
                verdict,
                message: format!("{prefix}{}: {} ({})", input.url, f.reason.human(), f.detail),
            });
            report.failure = Some(f);
        }
        Ok(keys) => {
            let now = UnixTime::since_unix_epoch(Duration::from_secs(input.now.max(0) as u64));
            for k in keys {
                let chain_report = chain::analyze_with_aia(
                    std::slice::from_ref(&k.der),
                    input.issuers,
                    None,
                    input.stores,
                    now,
                );
                let Some(cert) = chain_report.leaf().cloned() else {
                    continue;
                };
                let mut capture = Capture::new(input.address, None);
                capture.chain = vec![k.der.clone()];
                let evaluation = policy::evaluate(
                    input.policy,
                    &s.profile,
                    &capture,
                    &chain_report,
                    input.ctx,
                    input.now,
                );
                report.certs.push(OAuthCert {
                    position: k.position,
                    cert,
                    evaluation,
                });
            }
            report.verdicts.push(RuleVerdict {
                rule: RuleId::OAuthMetadata,
                severity: s.severity,
                verdict: Verdict::Pass,
                message: format!(
                    "{}: {} signing certificate(s) published",
                    input.url,
                    report.certs.len()
                ),
            });
            if let Some(v) = check_roll_window(&report.certs, input.now) {
                report.verdicts.push(v);
            }
        }
    }
    report.status = report.rolled_up();
    report
}

/// A roll window: more than one certificate published while the oldest is still valid. A
/// finding of severity info (never degrades a status); None with one certificate, or when the
/// older one has expired (its own `validity` verdict says so).
pub fn check_roll_window(certs: &[OAuthCert], now: i64) -> Option<RuleVerdict> {
    if certs.len() < 2 {
        return None;
    }
    let oldest = certs.iter().min_by_key(|c| c.cert.not_before)?;
    let newest = certs.iter().max_by_key(|c| c.cert.not_before)?;
    if oldest.cert.not_after <= now {
        return None;
    }
    Some(RuleVerdict {
        rule: RuleId::OAuthRollWindow,
        severity: Severity::Info,
        verdict: Verdict::Pass,
        message: format!(
            "(info) roll window: {} certificates published; the older {} is valid until {}, the newer {} since {}",
            certs.len(),
            crate::policy::cross::short_label(&oldest.cert),
            chain::fmt_time(oldest.cert.not_after),
            crate::policy::cross::short_label(&newest.cert),
            chain::fmt_time(newest.cert.not_before),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(der: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    fn cert_der() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["oauth.test".to_string()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn reason(body: &str) -> OAuthFailure {
        parse_metadata(body.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn signing_keys_are_taken_in_order_and_extra_fields_ignored() {
        let (a, b) = (cert_der(), cert_der());
        let doc = format!(
            r#"{{"issuer":"00000002-0000-0ff1-ce00-000000000000@contoso.com","realm":"contoso.com",
               "keys":[{{"usage":"Signing","keyinfo":{{"x5t":"abc"}},"keyValue":{{"type":"x509Certificate","value":"{}"}}}},
                       {{"usage":"Encrypting","keyValue":{{"value":"not even base64"}}}},
                       {{"usage":"signing","keyvalue":{{"value":"{}"}}}}],
               "endpoints":[{{"location":"https://x/y","protocol":"OAuth2","usage":"issuance"}}]}}"#,
            b64(&a),
            b64(&b)
        );
        let keys = parse_metadata(doc.as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].position, keys[1].position), (0, 2));
        assert_eq!(keys[0].der.as_ref(), a.as_slice());
        assert_eq!(keys[1].der.as_ref(), b.as_slice());
    }

    #[test]
    fn every_unusable_document_has_its_reason() {
        assert_eq!(reason("{\"keys\": [}"), OAuthFailure::BadJson);
        assert_eq!(reason("<html>404</html>"), OAuthFailure::BadJson);
        assert_eq!(reason("{\"keys\": \"x\"}"), OAuthFailure::BadJson);
        assert_eq!(reason("{\"realm\": \"x\"}"), OAuthFailure::MissingField);
        assert_eq!(
            reason("{\"keys\": [{\"usage\": \"Signing\"}]}"),
            OAuthFailure::MissingField
        );
        assert_eq!(
            reason("{\"keys\": [{\"usage\": \"Signing\", \"keyValue\": {}}]}"),
            OAuthFailure::MissingField
        );
        assert_eq!(
            reason("{\"keys\": [{\"usage\": \"Signing\", \"keyValue\": {\"value\": \"%%%\"}}]}"),
            OAuthFailure::BadBase64
        );
        assert_eq!(
            reason("{\"keys\": [{\"usage\": \"Signing\", \"keyValue\": {\"value\": \"AAEC\"}}]}"),
            OAuthFailure::BadDer
        );
        assert_eq!(reason("{\"keys\": []}"), OAuthFailure::NoSigningKey);
        let nine = ["{}"; 9].join(",");
        assert_eq!(
            reason(&format!("{{\"keys\": [{nine}]}}")),
            OAuthFailure::TooManyKeys
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(reason(&deep), OAuthFailure::TooDeep);
        // Brackets inside strings do not count.
        let strings = format!("{{\"x\": \"{}\", \"keys\": []}}", "[".repeat(200));
        assert_eq!(reason(&strings), OAuthFailure::NoSigningKey);
        let big = " ".repeat(MAX_BODY_BYTES as usize + 1);
        assert_eq!(reason(&big), OAuthFailure::TooLarge);
    }

    #[test]
    fn urls_are_built_from_the_endpoint_name() {
        assert_eq!(
            url_for("eepool.contoso.com", 443),
            "https://eepool.contoso.com/metadata/json/1"
        );
        assert_eq!(url_for("::1", 4443), "https://[::1]:4443/metadata/json/1");
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::config::{BaseDir, Config};

    fn load(yaml: &str) -> Result<Config, crate::config::ConfigErrors> {
        Config::from_yaml(yaml, "<test>", BaseDir(".".into()))
    }

    #[test]
    fn endpoints_fetch_when_asked_or_when_their_profile_says_so() {
        let cfg = load(
            "policy:\n  preset: lync2013\nendpoints:\n  - {name: a, host: a.test, oauth_metadata: true}\n  - {name: b, host: b.test, profile: fe_web_internal}\n  - {name: c, host: c.test, profile: fe_web_internal, oauth_metadata: false}\n  - {name: d, host: d.test, profile: fe_default}\n",
        )
        .unwrap();
        let get = |n: &str| cfg.endpoint(n).unwrap().oauth.clone();
        assert_eq!(
            get("a"),
            Some(OAuthSettings {
                profile: "oauth".into(),
                severity: Severity::Fail
            })
        );
        assert_eq!(
            get("b"),
            Some(OAuthSettings {
                profile: "oauth_token_issuer".into(),
                severity: Severity::Warn
            })
        );
        assert_eq!(get("c"), None);
        assert_eq!(get("d"), None);
        // Part of the endpoint's digest: switching it is a changed endpoint on reload.
        let on = load("endpoints:\n  - {name: a, host: a.test, oauth_metadata: true}\n").unwrap();
        let off = load("endpoints:\n  - {name: a, host: a.test}\n").unwrap();
        assert_ne!(on.endpoints[0].digest, off.endpoints[0].digest);
    }

    #[test]
    fn oauth_metadata_is_refused_where_it_cannot_be_fetched_directly() {
        let e =
            load("endpoints:\n  - {name: a, host: a.test, starttls: smtp, oauth_metadata: true}\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("endpoints[0].oauth_metadata"), "{e}");
        let e = load(
            "policy:\n  profiles:\n    web:\n      rules:\n        oauth_metadata: {profile: nosuch}\nendpoints:\n  - {name: a, host: a.test, profile: web}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "policy.profiles.web.rules.oauth_metadata.profile: unknown profile \"nosuch\""
            ),
            "{e}"
        );
    }
}
