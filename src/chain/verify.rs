//! Path building and verification against every named store; hygiene; classification.
//!
//! Size: about 1,400 lines of code and 180 of tests: path building with webpki per store (and
//! the legacy SHA-1/RSA-1024 pass), error positions, hygiene, classification and the AD CS
//! inferences all walk the same parsed chain and store index.

use std::sync::LazyLock;

use rustls_pki_types::{
    alg_id, AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    TrustAnchor, UnixTime,
};
use serde::Serialize;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage};
use x509_parser::prelude::FromDer;

use super::facts::{parse_x509, CertFacts, KeyAlgorithm, SignatureHash};
use super::hostname::{match_hostname, HostnameMatch, NameCheck};
use super::store::{StoreClass, TrustStore, TrustStores};

pub use crate::vocab::{IssuerClass, VerifyErrorKind};

/// One store's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreVerdict {
    pub store: String,
    pub class: StoreClass,
    /// The chain verifies to an anchor of this store (modern algorithms, or legacy SHA-1 /
    /// RSA-1024 algorithms when `legacy_algorithms` is true).
    pub verified: bool,
    /// Verification needed the legacy algorithm list (SHA-1 or RSA < 2048 signatures).
    pub legacy_algorithms: bool,
    pub error: Option<VerifyErrorKind>,
    /// Position in the presented chain of the certificate the error is about, when known.
    pub error_position: Option<usize>,
    /// Human detail (logs and CLI only).
    pub detail: Option<String>,
    /// Fingerprints of the verified path, leaf first, ending with the anchor's subject when the
    /// anchor was not presented.
    pub path: Vec<String>,
    /// Earliest notAfter over the verified path (anchor included where known).
    pub path_not_after: Option<i64>,
    /// The chain verifies to this store when the leaf's EKU is ignored (set when the only
    /// problem is a leaf without serverAuth: then `verified` is false and `error` is `BadEku`).
    pub trusted_ignoring_eku: bool,
    /// Subjects of the intermediates the verified path took from the store's bundle because
    /// the server did not send them (empty when the presented chain is complete for it).
    pub intermediates_from_store: Vec<String>,
    /// Subjects of the intermediates the verified path took from certificates fetched through
    /// the chain's AIA caIssuers URLs (see [`analyze_with_aia`]); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intermediates_from_aia: Vec<String>,
}

/// Chain hygiene facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hygiene {
    /// Each certificate is issued by the next one.
    pub order_valid: bool,
    /// A self-signed root was sent.
    pub root_sent: bool,
    /// No intermediate is missing: a store verifies the chain with the presented certificates
    /// alone (or, when none verifies it, the issuer of the last presented certificate is an
    /// anchor in some store, or it is a root). A path that needed a CA certificate from a
    /// store's bundle is incomplete.
    pub complete: bool,
    /// Subjects of the CA certificates the server should send but does not (taken from a trust
    /// store's bundle to verify the chain). Empty when `complete` or when nothing is known.
    pub missing_intermediates: Vec<String>,
    /// Subjects of the missing intermediates that certificates fetched from the chain's AIA
    /// caIssuers URLs supplied, on a path that needed nothing from a store's bundle: the chain
    /// is "complete only through AIA" (Windows clients fetch them; Java, Android and many
    /// appliances do not). Empty when no AIA certificate was used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub completed_by_aia: Vec<String>,
    /// Presented certificates unrelated to the leaf's path.
    pub superfluous: Vec<usize>,
    /// Positions of expired / not-yet-valid non-leaf certificates.
    pub expired_intermediates: Vec<usize>,
    /// Earliest notAfter over the presented chain.
    pub earliest_not_after: Option<i64>,
}

/// Everything known about a presented chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Parsed presented certificates, in presented order. Unparseable ones are in
    /// `parse_errors` and absent here.
    pub certs: Vec<CertFacts>,
    /// (position, error) for certificates that could not be parsed.
    pub parse_errors: Vec<(usize, String)>,
    /// One verdict per configured store, in configuration order.
    pub stores: Vec<StoreVerdict>,
    pub hostname: Option<HostnameMatch>,
    pub hygiene: Hygiene,
    pub issuer_class: IssuerClass,
    /// The chain carries AD CS markers (template extensions, CA version, LDAP CDP/AIA).
    pub adcs_detected: bool,
    /// Informational inferences, e.g. "SHA-2 from AD CS => Windows Server 2008+ CA with a KSP".
    pub inferences: Vec<String>,
    /// SHA-1 (or MD5) signature anywhere on the best path (or presented chain when unverified).
    pub weak_hash_on_path: bool,
    /// Earliest notAfter on the best verified path (None when no store verified it).
    pub best_path_not_after: Option<i64>,
    /// Facts about the anchor that terminated the best verified path, when known.
    pub anchor: Option<CertFacts>,
    /// The AIA caIssuers chase for an incomplete chain (None: not attempted). `analyze` leaves
    /// it None; the runner fills it (`crate::revocation::aia`). Its certificates are not
    /// presented: positions in `certs` never refer to them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aia: Option<crate::revocation::aia::AiaReport>,
    /// Revocation verdicts of the best verified path (None: not checked). `analyze` leaves it
    /// None; the runner fills it from the fetched CRLs (`crate::revocation::judge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<crate::revocation::RevocationReport>,
}

impl ChainReport {
    /// The leaf, if it parsed.
    pub fn leaf(&self) -> Option<&CertFacts> {
        if self.parse_errors.iter().any(|(p, _)| *p == 0) {
            None
        } else {
            self.certs.first()
        }
    }

    /// Names of stores that verified the chain.
    pub fn verified_stores(&self) -> impl Iterator<Item = &StoreVerdict> {
        self.stores.iter().filter(|s| s.verified)
    }
}

// ---------------------------------------------------------------------------------------------
// Legacy signature algorithms (SHA-1 and RSA keys of 1024..2047 bits), verified with ring.
// ---------------------------------------------------------------------------------------------

/// An RSA PKCS#1 v1.5 algorithm accepting 1024-bit keys (and SHA-1), for legacy internal CAs.
#[derive(Debug)]
struct LegacyRsa {
    signature_alg_id: AlgorithmIdentifier,
    verification_alg: &'static dyn ring::signature::VerificationAlgorithm,
}

impl SignatureVerificationAlgorithm for LegacyRsa {
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }

    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(self.verification_alg, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }
}

// AlgorithmIdentifier contents (OID TLV, then NULL parameters or none).
const SHA1_RSA_NULL: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
];
const SHA1_RSA_ABSENT: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05,
];
/// 1.3.14.3.2.29 sha1WithRSASignature (OIW), seen on old Windows CAs.
const SHA1_RSA_OIW_NULL: &[u8] = &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1d, 0x05, 0x00];
const SHA1_RSA_OIW_ABSENT: &[u8] = &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1d];
const SHA256_RSA_ABSENT: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
];
const SHA512_RSA_ABSENT: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d,
];

static LEGACY_ALGS: &[LegacyRsa] = &[
    LegacyRsa {
        signature_alg_id: AlgorithmIdentifier::from_slice(SHA1_RSA_NULL),
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
    },
    LegacyRsa {
        signature_alg_id: AlgorithmIdentifier::from_slice(SHA1_RSA_ABSENT),
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
    },
    LegacyRsa {
        signature_alg_id: AlgorithmIdentifier::from_slice(SHA1_RSA_OIW_NULL),
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
    },
    LegacyRsa {
        signature_alg_id: AlgorithmIdentifier::from_slice(SHA1_RSA_OIW_ABSENT),
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
    },
    LegacyRsa {
        signature_alg_id: alg_id::RSA_PKCS1_SHA256,
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    },
    LegacyRsa {
        signature_alg_id: AlgorithmIdentifier::from_slice(SHA256_RSA_ABSENT),
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    },
    // ring has no 1024-bit SHA-384 PKCS#1 algorithm; SHA-384 needs >= 2048 bits (default list).
    LegacyRsa {
        signature_alg_id: alg_id::RSA_PKCS1_SHA512,
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    },
    LegacyRsa {
        signature_alg_id: AlgorithmIdentifier::from_slice(SHA512_RSA_ABSENT),
        verification_alg: &ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    },
];

/// The strict list: webpki's ring algorithms.
fn strict_algs() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    webpki::ALL_VERIFICATION_ALGS
}

/// Legacy algorithms FIRST (webpki uses the first algorithm whose identifiers match, so a
/// 1024-bit SHA-256 signature would otherwise hit the 2048-bit default and fail), then defaults.
static LEGACY_LIST: LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> =
    LazyLock::new(|| {
        let mut v: Vec<&'static dyn SignatureVerificationAlgorithm> = Vec::new();
        for a in LEGACY_ALGS {
            v.push(a);
        }
        v.extend_from_slice(webpki::ALL_VERIFICATION_ALGS);
        v
    });

/// EKU validator that accepts anything (used only to decide trust apart from the leaf's EKU).
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Analysis
// ---------------------------------------------------------------------------------------------

/// Map a webpki error to the bounded reason set (webpki's enum is non-exhaustive).
fn map_error(e: &webpki::Error) -> VerifyErrorKind {
    use webpki::Error as E;
    #[allow(deprecated)]
    match e {
        E::UnknownIssuer | E::CertDistrusted => VerifyErrorKind::UnknownIssuer,
        E::CertExpired { .. } => VerifyErrorKind::Expired,
        E::CertNotValidYet { .. } => VerifyErrorKind::NotYetValid,
        E::InvalidSignatureForPublicKey | E::SignatureAlgorithmMismatch => {
            VerifyErrorKind::BadSignature
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            VerifyErrorKind::UnsupportedSignatureAlgorithm
        }
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            VerifyErrorKind::BadEku
        }
        E::PathLenConstraintViolated
        | E::MaximumPathDepthExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumSignatureChecksExceeded => VerifyErrorKind::PathTooLong,
        E::NameConstraintViolation
        | E::MaximumNameConstraintComparisonsExceeded
        | E::InvalidNetworkMaskConstraint
        | E::MalformedNameConstraint => VerifyErrorKind::NameConstraints,
        E::CaUsedAsEndEntity => VerifyErrorKind::CaUsedAsLeaf,
        E::EndEntityUsedAsCa => VerifyErrorKind::NotCa,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::MalformedDnsIdentifier
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension => VerifyErrorKind::Malformed,
        _ => VerifyErrorKind::Other,
    }
}

fn is_eku_error(e: &webpki::Error) -> bool {
    map_error(e) == VerifyErrorKind::BadEku
}

fn unix(t: UnixTime) -> i64 {
    t.as_secs() as i64
}

fn valid_at(f: &CertFacts, now: i64) -> bool {
    f.not_before <= now && now <= f.not_after
}

/// Strip a DER TLV header (tag + length), returning the contents.
fn der_contents(der: &[u8]) -> &[u8] {
    if der.len() < 2 {
        return der;
    }
    let l0 = der[1];
    let hdr = if l0 < 0x80 {
        2
    } else {
        2 + (l0 & 0x7f) as usize
    };
    der.get(hdr..).unwrap_or(der)
}

fn facts_match_anchor(f: &CertFacts, a: &TrustAnchor<'_>) -> bool {
    f.subject_der == a.subject.as_ref()
        && der_contents(&f.spki_der) == a.subject_public_key_info.as_ref()
}

fn anchor_subject_string(a: &TrustAnchor<'_>) -> String {
    let contents = a.subject.as_ref();
    let mut der = Vec::with_capacity(contents.len() + 6);
    der.push(0x30);
    let n = contents.len();
    if n < 0x80 {
        der.push(n as u8);
    } else if n < 0x100 {
        der.extend_from_slice(&[0x81, n as u8]);
    } else if n < 0x10000 {
        der.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        return format!("anchor:{}", hex::encode(contents));
    }
    der.extend_from_slice(contents);
    match x509_parser::x509::X509Name::from_der(&der) {
        Ok((_, name)) => super::facts::rfc4514(&name),
        Err(_) => format!("anchor:{}", hex::encode(contents)),
    }
}

/// Per-analysis context shared by all stores.
struct Ctx<'c, 'd> {
    chain: &'c [CertificateDer<'d>],
    /// Parsed facts by presented position (None when unparseable).
    facts: &'c [Option<CertFacts>],
    /// CA certificates fetched from AIA caIssuers URLs: offered to path building after the
    /// presented intermediates and the store's helpers, never counted as presented.
    extra: &'c [CertificateDer<'d>],
    extra_facts: &'c [Option<CertFacts>],
    now: UnixTime,
    now_s: i64,
}

impl Ctx<'_, '_> {
    fn fact(&self, i: usize) -> Option<&CertFacts> {
        self.facts.get(i).and_then(|f| f.as_ref())
    }

    /// Presented positions following issuer -> subject from the leaf (cycle-free).
    fn dn_walk(&self) -> Vec<usize> {
        let mut walk = vec![0usize];
        let Some(mut cur) = self.fact(0) else {
            return walk;
        };
        while walk.len() < self.chain.len() {
            if cur.self_signed {
                break;
            }
            let mut next = None;
            for (j, f) in self.facts.iter().enumerate() {
                let Some(f) = f else { continue };
                if walk.contains(&j) || f.subject_der != cur.issuer_der {
                    continue;
                }
                let kid_ok = match (&cur.authority_key_id, &f.subject_key_id) {
                    (Some(a), Some(s)) => a == s,
                    _ => true,
                };
                if kid_ok {
                    next = Some(j);
                    break;
                }
                if next.is_none() {
                    next = Some(j);
                }
            }
            match next {
                Some(j) => {
                    walk.push(j);
                    cur = self.facts[j].as_ref().expect("checked above");
                }
                None => break,
            }
        }
        walk
    }

    /// Any issuer key (presented non-leaf cert or a known anchor of the store) is RSA < 2048.
    fn weak_rsa_issuer(&self, store: &TrustStore) -> bool {
        let weak = |f: &CertFacts| matches!(f.key, KeyAlgorithm::Rsa { bits } if bits < 2048);
        self.facts.iter().skip(1).flatten().any(weak) || store.anchor_facts.iter().any(weak)
    }

    fn anchor_facts<'s>(
        &'s self,
        store: &'s TrustStore,
        a: &TrustAnchor<'_>,
    ) -> Option<&'s CertFacts> {
        // The store's own copy first (a presented cross-certificate shares subject and key
        // with the anchor but has its own validity); else a presented self-signed copy.
        store
            .anchor_facts
            .iter()
            .find(|f| facts_match_anchor(f, a))
            .or_else(|| {
                self.facts
                    .iter()
                    .flatten()
                    .find(|f| f.self_signed && facts_match_anchor(f, a))
            })
    }

    /// The CA that imposed name constraints on this chain: the nearest presented CA, store
    /// helper or anchor on the DN walk that carries a nameConstraints extension.
    fn constraining_ca(&self, store: &TrustStore) -> Option<String> {
        let walk = self.dn_walk();
        if let Some(f) = walk
            .iter()
            .skip(1)
            .filter_map(|&i| self.fact(i))
            .find(|f| f.has_name_constraints)
        {
            return Some(f.subject.clone());
        }
        store
            .helper_facts
            .iter()
            .flatten()
            .chain(store.anchor_facts.iter())
            .find(|f| f.has_name_constraints)
            .map(|f| f.subject.clone())
    }

    fn position_of_der(&self, der: &[u8]) -> Option<usize> {
        self.chain.iter().position(|c| c.as_ref() == der)
    }

    /// Best guess at which presented certificate an error is about.
    fn error_position(&self, kind: VerifyErrorKind, store: &TrustStore) -> Option<usize> {
        let walk = self.dn_walk();
        match kind {
            VerifyErrorKind::Expired | VerifyErrorKind::NotYetValid => {
                let bad = |i: &usize| {
                    self.fact(*i).is_some_and(|f| {
                        if kind == VerifyErrorKind::Expired {
                            self.now_s > f.not_after
                        } else {
                            self.now_s < f.not_before
                        }
                    })
                };
                walk.iter()
                    .copied()
                    .find(|i| bad(i))
                    .or_else(|| (0..self.chain.len()).find(|i| bad(i)))
            }
            VerifyErrorKind::BadEku | VerifyErrorKind::CaUsedAsLeaf => Some(0),
            // The constrained name is the leaf's (webpki checks the leaf's names).
            VerifyErrorKind::NameConstraints => Some(0),
            VerifyErrorKind::NotCa => walk
                .iter()
                .copied()
                .skip(1)
                .find(|i| self.fact(*i).is_some_and(|f| !f.is_ca)),
            VerifyErrorKind::UnknownIssuer => walk.last().copied(),
            VerifyErrorKind::UnsupportedSignatureAlgorithm => walk.iter().copied().find(|i| {
                self.fact(*i)
                    .is_some_and(|f| !f.self_signed && !strictly_supported(f))
            }),
            VerifyErrorKind::BadSignature => {
                // Walk the DN chain; the first certificate whose signature does not verify
                // under its (presented or anchor) issuer key.
                let parsed = |i: usize| self.chain.get(i).and_then(|c| parse_x509(c.as_ref()).ok());
                for (k, &i) in walk.iter().enumerate() {
                    let Some(cert) = parsed(i) else {
                        return Some(i);
                    };
                    let res = match walk.get(k + 1) {
                        Some(&j) => match parsed(j) {
                            Some(issuer) => cert.verify_signature(Some(issuer.public_key())),
                            None => continue,
                        },
                        None => {
                            let issuer_dn = self.fact(i).map(|f| f.issuer_der.as_slice());
                            let a = store
                                .anchors
                                .iter()
                                .find(|a| Some(a.subject.as_ref()) == issuer_dn)?;
                            let spki = with_seq_header(a.subject_public_key_info.as_ref());
                            match x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki) {
                                Ok((_, spki)) => cert.verify_signature(Some(&spki)),
                                Err(_) => return None,
                            }
                        }
                    };
                    if matches!(
                        res,
                        Err(x509_parser::error::X509Error::SignatureVerificationError)
                    ) {
                        return Some(i);
                    }
                }
                None
            }
            _ => None,
        }
    }
}

fn with_seq_header(contents: &[u8]) -> Vec<u8> {
    let n = contents.len();
    let mut der = Vec::with_capacity(n + 4);
    der.push(0x30);
    if n < 0x80 {
        der.push(n as u8);
    } else if n < 0x100 {
        der.extend_from_slice(&[0x81, n as u8]);
    } else {
        der.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    der.extend_from_slice(contents);
    der
}

/// The signature algorithm is one webpki's default (ring) list can verify.
fn strictly_supported(f: &CertFacts) -> bool {
    matches!(
        f.signature_oid.as_str(),
        "1.2.840.113549.1.1.11"
            | "1.2.840.113549.1.1.12"
            | "1.2.840.113549.1.1.13"
            | "1.2.840.10045.4.3.2"
            | "1.2.840.10045.4.3.3"
            | "1.3.101.112"
    ) || (f.is_rsassa_pss
        && matches!(
            f.signature_hash,
            SignatureHash::Sha256 | SignatureHash::Sha384 | SignatureHash::Sha512
        ))
}

/// What one successful webpki run tells us.
#[derive(Clone)]
struct PathInfo {
    /// Presented positions of the path (leaf first, intermediates), excluding the anchor.
    positions: Vec<usize>,
    path: Vec<String>,
    not_after: Option<i64>,
    anchor: Option<CertFacts>,
    /// Subjects of the intermediates taken from the store's bundle (not presented).
    from_store: Vec<String>,
    /// Subjects of the intermediates taken from AIA-fetched certificates.
    from_aia: Vec<String>,
}

/// A failed run: webpki's error and, when certprobe's own path checks rejected a candidate
/// path, why.
type RunError = (webpki::Error, Option<&'static str>);
type RunResult = Result<PathInfo, RunError>;

fn secs(t: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.max(0) as u64))
}

/// Checks webpki leaves out, run on each candidate path so that path building can try another
/// one: the anchor's own validity (deps.md pitfall 8), critical extensions and CA-ness of a
/// known anchor certificate, and keyCertSign on intermediates that carry a keyUsage.
fn path_checks(
    ctx: &Ctx<'_, '_>,
    store: &TrustStore,
    p: &webpki::VerifiedPath<'_>,
    now: UnixTime,
) -> Result<(), (webpki::Error, &'static str)> {
    let now_s = ctx.now_s;
    for c in p.intermediate_certificates() {
        let Some(f) = ctx
            .position_of_der(c.der().as_ref())
            .and_then(|i| ctx.fact(i))
        else {
            continue;
        };
        if f.has_key_usage && !f.key_usage.iter().any(|k| k == "key_cert_sign") {
            return Err((
                webpki::Error::EndEntityUsedAsCa,
                "an issuing CA certificate has a keyUsage without keyCertSign",
            ));
        }
    }
    if let Some(f) = ctx.anchor_facts(store, p.anchor()) {
        if now_s > f.not_after {
            return Err((
                webpki::Error::CertExpired {
                    time: now,
                    not_after: secs(f.not_after),
                },
                "the trust anchor certificate has expired",
            ));
        }
        if now_s < f.not_before {
            return Err((
                webpki::Error::CertNotValidYet {
                    time: now,
                    not_before: secs(f.not_before),
                },
                "the trust anchor certificate is not yet valid",
            ));
        }
        if !f.unknown_critical_extensions.is_empty() {
            return Err((
                webpki::Error::UnsupportedCriticalExtension,
                "the trust anchor certificate has an unknown critical extension",
            ));
        }
        // A v3 anchor must be a CA, unless the anchor is the leaf itself (a pinned
        // self-signed server certificate).
        let is_leaf = ctx
            .fact(0)
            .is_some_and(|l| l.fingerprint_sha256 == f.fingerprint_sha256);
        if f.version >= 3 && !f.is_ca && !is_leaf {
            return Err((
                webpki::Error::EndEntityUsedAsCa,
                "the trust anchor certificate is not a CA (no basicConstraints cA)",
            ));
        }
    }
    Ok(())
}

fn run_webpki(
    ctx: &Ctx<'_, '_>,
    ee: &EndEntityCert<'_>,
    store: &TrustStore,
    algs: &[&dyn SignatureVerificationAlgorithm],
    eku: impl ExtendedKeyUsageValidator,
) -> RunResult {
    // The presented intermediates first, then the store's helper CAs (path building prefers
    // what the server sent; a helper only fills a gap).
    // AIA-fetched certificates come last: they only complete what neither the server nor the
    // store supplies.
    let presented = ctx.chain.get(1..).unwrap_or(&[]);
    let with_helpers: Vec<CertificateDer<'_>>;
    let intermediates: &[CertificateDer<'_>] = if store.helpers.is_empty() && ctx.extra.is_empty() {
        presented
    } else {
        with_helpers = presented
            .iter()
            .map(|c| CertificateDer::from(c.as_ref()))
            .chain(
                store
                    .helpers
                    .iter()
                    .map(|c| CertificateDer::from(c.as_ref())),
            )
            .chain(ctx.extra.iter().map(|c| CertificateDer::from(c.as_ref())))
            .collect();
        &with_helpers
    };
    // certprobe's own checks run on each candidate path (see `path_checks`).
    let now = ctx.now;
    let rejected: std::cell::Cell<Option<&'static str>> = std::cell::Cell::new(None);
    let check_path = |p: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let r = path_checks(ctx, store, p, now);
        if let Err((_, why)) = &r {
            rejected.set(Some(why));
        }
        r.map_err(|(e, _)| e)
    };
    let vp = ee
        .verify_for_usage(
            algs,
            &store.anchors,
            intermediates,
            now,
            eku,
            None,
            Some(&check_path),
        )
        .map_err(|e| (e, rejected.get()))?;
    let mut positions = vec![0usize];
    let mut path = Vec::new();
    let mut from_store = Vec::new();
    let mut from_aia = Vec::new();
    let mut not_after = ctx.fact(0).map(|f| f.not_after);
    if let Some(f) = ctx.fact(0) {
        path.push(f.fingerprint_sha256.clone());
    }
    for c in vp.intermediate_certificates() {
        let der = c.der();
        match ctx.position_of_der(der.as_ref()) {
            Some(p) => {
                positions.push(p);
                if let Some(f) = ctx.fact(p) {
                    path.push(f.fingerprint_sha256.clone());
                    not_after = Some(not_after.map_or(f.not_after, |n| n.min(f.not_after)));
                } else {
                    path.push(super::facts::sha256_hex(der.as_ref()));
                }
            }
            None => {
                path.push(super::facts::sha256_hex(der.as_ref()));
                if let Some(f) = ctx
                    .extra
                    .iter()
                    .position(|e| e.as_ref() == der.as_ref())
                    .and_then(|i| ctx.extra_facts.get(i))
                    .and_then(|f| f.as_ref())
                {
                    not_after = Some(not_after.map_or(f.not_after, |n| n.min(f.not_after)));
                    from_aia.push(f.subject.clone());
                    continue;
                }
                let helper = store
                    .helpers
                    .iter()
                    .position(|h| h.as_ref() == der.as_ref())
                    .and_then(|i| store.helper_facts.get(i))
                    .and_then(|f| f.as_ref());
                match helper {
                    Some(f) => {
                        not_after = Some(not_after.map_or(f.not_after, |n| n.min(f.not_after)));
                        from_store.push(f.subject.clone());
                    }
                    None => from_store.push(format!(
                        "certificate {}",
                        &super::facts::sha256_hex(der.as_ref())[..16]
                    )),
                }
            }
        }
    }
    let anchor = ctx.anchor_facts(store, vp.anchor()).cloned();
    let presented_anchor = ctx
        .facts
        .iter()
        .flatten()
        .any(|f| f.self_signed && facts_match_anchor(f, vp.anchor()));
    match &anchor {
        Some(a) => {
            if presented_anchor {
                path.push(a.fingerprint_sha256.clone());
            } else {
                path.push(a.subject.clone());
            }
            not_after = Some(not_after.map_or(a.not_after, |n| n.min(a.not_after)));
        }
        None => path.push(anchor_subject_string(vp.anchor())),
    }
    Ok(PathInfo {
        positions,
        path,
        not_after,
        anchor,
        from_store,
        from_aia,
    })
}

/// Strict, then legacy when the failure is about algorithms / weak RSA issuer keys.
/// Returns (result, legacy used).
fn verify_with_fallback(
    ctx: &Ctx<'_, '_>,
    ee: &EndEntityCert<'_>,
    store: &TrustStore,
    eku: &dyn Fn() -> Box<dyn ExtendedKeyUsageValidator>,
) -> (RunResult, bool) {
    let strict = run_webpki(ctx, ee, store, strict_algs(), BoxedEku(eku()));
    let retry = match &strict {
        Ok(_) => false,
        Err((e, _)) => match map_error(e) {
            VerifyErrorKind::UnsupportedSignatureAlgorithm => true,
            VerifyErrorKind::BadSignature => ctx.weak_rsa_issuer(store),
            _ => false,
        },
    };
    if !retry {
        return (strict, false);
    }
    let legacy = run_webpki(ctx, ee, store, &LEGACY_LIST, BoxedEku(eku()));
    (legacy, true)
}

fn describe(e: &webpki::Error, why: Option<&'static str>) -> String {
    let text = webpki_error_text(e);
    match why {
        Some(w) => format!("{text} (a candidate path was rejected: {w})"),
        None => text,
    }
}

/// A webpki error as a sentence (webpki's own `Display` is its `Debug` text, with Unix times
/// and byte arrays): dates in RFC 3339, algorithm identifiers as OIDs, EKUs by name.
pub fn webpki_error_text(e: &webpki::Error) -> String {
    use webpki::Error as E;
    let at = |t: UnixTime| super::fmt_time(unix(t));
    #[allow(deprecated)]
    match e {
        E::UnknownIssuer => "no path to a trust anchor of this store (unknown issuer)".into(),
        E::CertDistrusted => "a certificate on the path is distrusted".into(),
        E::CertExpired { time, not_after } => format!(
            "a certificate on the path expired at {} (checked at {})",
            at(*not_after),
            at(*time)
        ),
        E::CertNotValidYet { time, not_before } => format!(
            "a certificate on the path is not valid before {} (checked at {})",
            at(*not_before),
            at(*time)
        ),
        E::InvalidSignatureForPublicKey => {
            "a signature on the path does not verify with its issuer's key".into()
        }
        E::SignatureAlgorithmMismatch => {
            "a certificate's signature algorithm differs from the one in its signed part".into()
        }
        E::UnsupportedSignatureAlgorithmContext(c) => format!(
            "unsupported signature algorithm {}",
            algorithm_text(c.signature_algorithm_id.as_ref())
        ),
        E::UnsupportedSignatureAlgorithmForPublicKeyContext(c) => format!(
            "signature algorithm {} is not supported for the issuer's key ({})",
            algorithm_text(c.signature_algorithm_id.as_ref()),
            algorithm_text(c.public_key_algorithm_id.as_ref())
        ),
        E::UnsupportedSignatureAlgorithm => "unsupported signature algorithm".into(),
        E::UnsupportedSignatureAlgorithmForPublicKey => {
            "signature algorithm not supported for the issuer's key".into()
        }
        E::RequiredEkuNotFoundContext(c) => {
            let required = format!("{:?}", c.required);
            let required = required
                .split("KeyPurposeId(")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .unwrap_or("the required purpose");
            let present: Vec<String> = c
                .present
                .iter()
                .map(|arcs| {
                    eku_text(
                        &arcs
                            .iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join("."),
                    )
                })
                .collect();
            format!(
                "the leaf's extended key usage lacks {} (present: {})",
                eku_text(required),
                if present.is_empty() {
                    "none".to_string()
                } else {
                    present.join(", ")
                }
            )
        }
        E::RequiredEkuNotFound => "the leaf's extended key usage lacks the required purpose".into(),
        E::EmptyEkuExtension => "the leaf has an empty extended key usage extension".into(),
        E::PathLenConstraintViolated => "a CA's path length constraint is exceeded".into(),
        E::MaximumPathDepthExceeded => "the path is longer than the validator allows".into(),
        E::MaximumPathBuildCallsExceeded | E::MaximumSignatureChecksExceeded => {
            "path building gave up (too many candidate paths)".into()
        }
        E::NameConstraintViolation => "a name on the path violates a CA's name constraints".into(),
        E::MaximumNameConstraintComparisonsExceeded => {
            "name-constraint checking gave up (too many comparisons)".into()
        }
        E::InvalidNetworkMaskConstraint | E::MalformedNameConstraint => {
            "a CA's name constraints are malformed".into()
        }
        E::CaUsedAsEndEntity => "the leaf is a CA certificate".into(),
        E::EndEntityUsedAsCa => "a certificate used as an issuer is not a CA".into(),
        E::BadDer | E::BadDerTime | E::TrailingData(_) => "a certificate is malformed DER".into(),
        E::MalformedExtensions | E::ExtensionValueInvalid => {
            "a certificate has malformed extensions".into()
        }
        E::InvalidCertValidity => "a certificate's validity period is invalid".into(),
        E::InvalidSerialNumber => "a certificate's serial number is invalid".into(),
        E::MalformedDnsIdentifier => "a DNS name in a certificate is malformed".into(),
        E::UnsupportedCertVersion => "a certificate's X.509 version is not supported".into(),
        E::UnsupportedCriticalExtension => "a certificate has an unknown critical extension".into(),
        E::CertNotValidForName(_) => "the certificate is not valid for the name".into(),
        E::CertRevoked => "a certificate on the path is revoked".into(),
        other => format!("path validation failed ({})", error_variant_name(other)),
    }
}

/// The variant name of a webpki error (its Debug text up to the first `(` or `{`), for the
/// rare variants without their own sentence.
fn error_variant_name(e: &webpki::Error) -> String {
    let d = format!("{e:?}");
    d.split(['(', '{', ' '])
        .next()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect()
}

/// An AlgorithmIdentifier's contents as `name (OID)` where known, else the dotted OID.
fn algorithm_text(der: &[u8]) -> String {
    // OID TLV first.
    let oid = match der {
        [0x06, len, rest @ ..] if usize::from(*len) <= rest.len() => {
            x509_parser::der_parser::oid::Oid::new(std::borrow::Cow::Borrowed(
                &rest[..usize::from(*len)],
            ))
            .to_id_string()
        }
        _ => return format!("(unparseable identifier, {} bytes)", der.len()),
    };
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Some("sha1WithRSAEncryption"),
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.11" => Some("sha256WithRSAEncryption"),
        "1.2.840.113549.1.1.12" => Some("sha384WithRSAEncryption"),
        "1.2.840.113549.1.1.13" => Some("sha512WithRSAEncryption"),
        "1.2.840.113549.1.1.10" => Some("RSASSA-PSS"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10045.4.3.2" => Some("ecdsa-with-SHA256"),
        "1.2.840.10045.4.3.3" => Some("ecdsa-with-SHA384"),
        "1.2.840.10045.4.3.4" => Some("ecdsa-with-SHA512"),
        "1.2.840.10040.4.3" => Some("dsa-with-SHA1"),
        "1.3.101.112" => Some("Ed25519"),
        "1.3.101.113" => Some("Ed448"),
        _ => None,
    };
    match name {
        Some(n) => format!("{n} ({oid})"),
        None => oid,
    }
}

fn eku_text(oid: &str) -> String {
    match oid {
        "1.3.6.1.5.5.7.3.1" => "serverAuth (1.3.6.1.5.5.7.3.1)".into(),
        "1.3.6.1.5.5.7.3.2" => "clientAuth (1.3.6.1.5.5.7.3.2)".into(),
        "1.3.6.1.5.5.7.3.3" => "codeSigning (1.3.6.1.5.5.7.3.3)".into(),
        "1.3.6.1.5.5.7.3.4" => "emailProtection (1.3.6.1.5.5.7.3.4)".into(),
        "1.3.6.1.5.5.7.3.8" => "timeStamping (1.3.6.1.5.5.7.3.8)".into(),
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning (1.3.6.1.5.5.7.3.9)".into(),
        _ => oid.chars().take(128).collect(),
    }
}

struct BoxedEku(Box<dyn ExtendedKeyUsageValidator>);

impl ExtendedKeyUsageValidator for BoxedEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        self.0.validate(iter)
    }
}

/// Most chains one store's [`VerdictCache`] remembers; when full it starts over (a fleet has far
/// fewer distinct chains than endpoints: pools, wildcards, one issuing CA).
const VERDICT_CACHE_MAX: usize = 1024;

/// Memo of [`analyze`]'s per-store verification (webpki path building + certprobe's path
/// checks: two or more signature verifications per chain) keyed by the presented chain (SHA-256
/// of every certificate, in order). An entry is only used at a time inside the interval in which
/// no validity boundary (notBefore, notAfter + 1 s) of a presented certificate or of one of the
/// store's anchors falls, so it returns exactly what a fresh verification would; results whose
/// text embeds the evaluation time (expired / not yet valid) are not cached. Evaluation stays a
/// pure function of (chain, name, stores, now): the cache only skips recomputation. Shared by
/// clones of the store; a reload builds new stores and therefore a new cache.
#[derive(Clone)]
pub struct VerdictCache(std::sync::Arc<super::memo::BoundedMemo<String, CachedVerdict>>);

impl Default for VerdictCache {
    fn default() -> Self {
        Self(std::sync::Arc::new(super::memo::BoundedMemo::new(
            VERDICT_CACHE_MAX,
        )))
    }
}

struct CachedVerdict {
    /// The entry holds for `from <= now < until` (Unix seconds).
    from: i64,
    until: i64,
    verdict: StoreVerdict,
    path: Option<PathInfo>,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl VerdictCache {
    /// Number of cached chains.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, key: &str, now_s: i64) -> Option<(StoreVerdict, Option<PathInfo>)> {
        self.0.get(key, |e| {
            (e.from <= now_s && now_s < e.until).then(|| (e.verdict.clone(), e.path.clone()))
        })
    }

    fn put(&self, key: String, entry: CachedVerdict) {
        self.0.insert(key, entry);
    }
}

/// The cache key of a presented chain: None when a certificate could not be parsed (such chains
/// are verified every time).
fn chain_key(ctx: &Ctx<'_, '_>) -> Option<String> {
    let mut key = String::with_capacity(ctx.facts.len() * 65);
    for f in ctx.facts {
        key.push_str(&f.as_ref()?.fingerprint_sha256);
        key.push(',');
    }
    for f in ctx.extra_facts {
        key.push_str("aia:");
        key.push_str(&f.as_ref()?.fingerprint_sha256);
        key.push(',');
    }
    Some(key)
}

/// The largest interval `[from, until)` around `now_s` in which no presented certificate and no
/// anchor of `store` changes validity.
fn validity_cell(ctx: &Ctx<'_, '_>, store: &TrustStore) -> (i64, i64) {
    let (mut from, mut until) = (i64::MIN, i64::MAX);
    let now = ctx.now_s;
    for f in ctx
        .facts
        .iter()
        .chain(ctx.extra_facts.iter())
        .flatten()
        .chain(store.anchor_facts.iter())
    {
        for b in [f.not_before, f.not_after.saturating_add(1)] {
            if b <= now {
                from = from.max(b);
            } else {
                until = until.min(b);
            }
        }
    }
    (from, until)
}

/// [`verify_store`] through the store's [`VerdictCache`].
fn verify_store_cached(
    ctx: &Ctx<'_, '_>,
    ee: Option<&EndEntityCert<'_>>,
    store: &TrustStore,
    key: Option<&str>,
) -> (StoreVerdict, Option<PathInfo>) {
    let Some(key) = key.filter(|_| ee.is_some()) else {
        return verify_store(ctx, ee, store);
    };
    if let Some(hit) = store.verdict_cache.get(key, ctx.now_s) {
        return hit;
    }
    let (v, p) = verify_store(ctx, ee, store);
    let time_in_text = matches!(
        v.error,
        Some(VerifyErrorKind::Expired | VerifyErrorKind::NotYetValid)
    );
    if !time_in_text {
        let (from, until) = validity_cell(ctx, store);
        store.verdict_cache.put(
            key.to_string(),
            CachedVerdict {
                from,
                until,
                verdict: v.clone(),
                path: p.clone(),
            },
        );
    }
    (v, p)
}

/// A store's verdict is about that store's paths only: an error found on the way (an expired
/// intermediate, a bad signature) is only this store's error when the chain could reach one of
/// its anchors at all. Otherwise the truth for this store is `unknown_issuer`.
fn reachable_kind(ctx: &Ctx<'_, '_>, store: &TrustStore, kind: VerifyErrorKind) -> VerifyErrorKind {
    match kind {
        VerifyErrorKind::UnknownIssuer | VerifyErrorKind::Malformed => kind,
        _ if store_reaches(ctx, store) => kind,
        _ => VerifyErrorKind::UnknownIssuer,
    }
}

/// Whether some issuer -> subject link (by DN) from the leaf, through presented certificates
/// and the store's helper CAs, ends at one of the store's anchors. Bounded by the number of
/// candidate certificates (each is visited once).
fn store_reaches(ctx: &Ctx<'_, '_>, store: &TrustStore) -> bool {
    let Some(leaf) = ctx.fact(0) else {
        return true; // nothing to say: keep webpki's verdict
    };
    let is_anchor_subject = |dn: &[u8]| store.anchors.iter().any(|a| a.subject.as_ref() == dn);
    let candidates: Vec<&CertFacts> = ctx
        .facts
        .iter()
        .skip(1)
        .flatten()
        .chain(store.helper_facts.iter().flatten())
        .chain(ctx.extra_facts.iter().flatten())
        .collect();
    if is_anchor_subject(&leaf.subject_der) && leaf.self_signed {
        return true; // a pinned self-signed leaf
    }
    let mut visited = vec![false; candidates.len()];
    let mut frontier: Vec<&[u8]> = vec![&leaf.issuer_der];
    while let Some(issuer) = frontier.pop() {
        if is_anchor_subject(issuer) {
            return true;
        }
        for (i, c) in candidates.iter().enumerate() {
            if !visited[i] && c.subject_der == issuer {
                visited[i] = true;
                if !c.self_signed {
                    frontier.push(&c.issuer_der);
                } else if is_anchor_subject(&c.subject_der) {
                    return true;
                }
            }
        }
    }
    false
}

fn verify_store(
    ctx: &Ctx<'_, '_>,
    ee: Option<&EndEntityCert<'_>>,
    store: &TrustStore,
) -> (StoreVerdict, Option<PathInfo>) {
    let mut v = StoreVerdict {
        store: store.name.clone(),
        class: store.class,
        verified: false,
        legacy_algorithms: false,
        error: None,
        error_position: None,
        detail: None,
        path: Vec::new(),
        path_not_after: None,
        trusted_ignoring_eku: false,
        intermediates_from_store: Vec::new(),
        intermediates_from_aia: Vec::new(),
    };
    let Some(ee) = ee else {
        v.error = Some(VerifyErrorKind::Malformed);
        v.error_position = Some(0);
        v.detail = Some("leaf certificate is missing or not parseable by webpki".into());
        return (v, None);
    };
    let server = || -> Box<dyn ExtendedKeyUsageValidator> { Box::new(KeyUsage::server_auth()) };
    let (res, legacy) = verify_with_fallback(ctx, ee, store, &server);
    match res {
        Ok(p) => {
            v.verified = true;
            v.legacy_algorithms = legacy;
            v.path = p.path.clone();
            v.path_not_after = p.not_after;
            v.intermediates_from_store = p.from_store.clone();
            v.intermediates_from_aia = p.from_aia.clone();
            (v, Some(p))
        }
        Err((e, _)) if is_eku_error(&e) => {
            // Decide trust apart from the leaf's EKU (the policy reports EKU as its own rule).
            let any = || -> Box<dyn ExtendedKeyUsageValidator> { Box::new(AnyEku) };
            let (res2, legacy2) = verify_with_fallback(ctx, ee, store, &any);
            match res2 {
                Ok(p) => {
                    v.trusted_ignoring_eku = true;
                    v.legacy_algorithms = legacy2;
                    v.error = Some(VerifyErrorKind::BadEku);
                    v.error_position = Some(0);
                    v.detail = Some(webpki_error_text(&e));
                    v.path = p.path;
                    v.path_not_after = p.not_after;
                    v.intermediates_from_store = p.from_store;
                    v.intermediates_from_aia = p.from_aia;
                    (v, None)
                }
                Err((e2, why)) => {
                    let kind = reachable_kind(ctx, store, map_error(&e2));
                    v.error = Some(kind);
                    v.error_position = ctx.error_position(kind, store);
                    v.detail = Some(format!(
                        "{}; leaf EKU also lacks serverAuth",
                        describe(&e2, why)
                    ));
                    (v, None)
                }
            }
        }
        Err((e, why)) => {
            let kind = reachable_kind(ctx, store, map_error(&e));
            v.error = Some(kind);
            v.error_position = ctx.error_position(kind, store);
            v.detail = Some(match kind {
                VerifyErrorKind::NameConstraints => match ctx.constraining_ca(store) {
                    Some(ca) => format!("{} (constraints imposed by {ca})", describe(&e, why)),
                    None => describe(&e, why),
                },
                VerifyErrorKind::UnknownIssuer if map_error(&e) != kind => format!(
                    "no path to a trust anchor of this store (the chain's issuers are not in it; \
                     the path validator stopped earlier: {})",
                    describe(&e, why)
                ),
                VerifyErrorKind::UnsupportedSignatureAlgorithm => {
                    format!("unverifiable legacy algorithm: {}", describe(&e, why))
                }
                _ => describe(&e, why),
            });
            (v, None)
        }
    }
}

/// Analyze a presented chain. Pure.
pub fn analyze(
    chain: &[CertificateDer<'_>],
    name: Option<&NameCheck>,
    stores: &TrustStores,
    now: UnixTime,
) -> ChainReport {
    analyze_with_aia(chain, &[], name, stores, now)
}

/// [`analyze`] with CA certificates fetched from the chain's AIA caIssuers URLs offered to path
/// building (after the presented intermediates and the stores' helpers), as Windows CryptoAPI
/// does for an incomplete chain. A path that used one is reported in each store verdict's
/// `intermediates_from_aia` and in `hygiene.completed_by_aia`; the chain stays incomplete as
/// presented. Unparseable `aia` certificates are ignored. Pure.
pub fn analyze_with_aia(
    chain: &[CertificateDer<'_>],
    aia: &[CertificateDer<'_>],
    name: Option<&NameCheck>,
    stores: &TrustStores,
    now: UnixTime,
) -> ChainReport {
    let now_s = unix(now);
    let extra_facts: Vec<Option<CertFacts>> = aia
        .iter()
        .map(|c| super::facts::parse_cert_cached(c.as_ref()).ok())
        .collect();
    // Facts of every certificate (memoized by DER: a fleet presents the same chains again and
    // again). The x509-parser structures are only re-parsed on the rare error path that needs
    // them (locating a bad signature).
    let mut facts: Vec<Option<CertFacts>> = Vec::with_capacity(chain.len());
    let mut parse_errors = Vec::new();
    for (i, c) in chain.iter().enumerate() {
        match super::facts::parse_cert_cached(c.as_ref()) {
            Ok(f) => facts.push(Some(f)),
            Err(e) => {
                parse_errors.push((i, e.to_string()));
                facts.push(None);
            }
        }
    }
    let ctx = Ctx {
        chain,
        facts: &facts,
        extra: aia,
        extra_facts: &extra_facts,
        now,
        now_s,
    };

    let ee = chain.first().and_then(|c| EndEntityCert::try_from(c).ok());
    let mut verdicts = Vec::with_capacity(stores.stores.len());
    let mut paths: Vec<Option<PathInfo>> = Vec::with_capacity(stores.stores.len());
    let key = chain_key(&ctx);
    for store in &stores.stores {
        let (v, p) = verify_store_cached(&ctx, ee.as_ref(), store, key.as_deref());
        verdicts.push(v);
        paths.push(p);
    }

    // Best path: first strictly verified store, else first verified store.
    let best = verdicts
        .iter()
        .position(|v| v.verified && !v.legacy_algorithms)
        .or_else(|| verdicts.iter().position(|v| v.verified));
    let best_path = best.and_then(|i| paths[i].as_ref());

    let hostname = match (name, ctx.fact(0)) {
        (Some(n), Some(leaf)) => Some(match_hostname(leaf, n)),
        (Some(n), None) => Some(HostnameMatch {
            name: n.name.clone(),
            matched: false,
            matched_by: None,
            via_wildcard: false,
            via_cn: false,
        }),
        (None, _) => None,
    };

    // Hygiene.
    let n = chain.len();
    let order_valid = (0..n.saturating_sub(1)).all(|i| match (ctx.fact(i), ctx.fact(i + 1)) {
        (Some(a), Some(b)) => {
            a.issuer_der == b.subject_der
                && match (&a.authority_key_id, &b.subject_key_id) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                }
        }
        _ => false,
    });
    let root_sent = (1..n).any(|i| ctx.fact(i).is_some_and(|f| f.self_signed));
    // Complete: some store verifies the chain with the presented certificates alone. A path
    // that needed a CA certificate from a store's bundle is incomplete (clients that trust only
    // the root fail); when no store verifies it, the last presented certificate's issuer must be
    // an anchor somewhere (or it is a root itself).
    let trusted_verdicts = || {
        verdicts
            .iter()
            .filter(|v| v.verified || v.trusted_ignoring_eku)
    };
    let walk = ctx.dn_walk();
    let (complete, missing_intermediates) = match trusted_verdicts()
        .find(|v| v.intermediates_from_store.is_empty() && v.intermediates_from_aia.is_empty())
    {
        Some(_) => (true, Vec::new()),
        None => match trusted_verdicts()
            .find(|v| v.intermediates_from_store.is_empty())
            .or_else(|| trusted_verdicts().next())
        {
            Some(v) => (
                false,
                v.intermediates_from_store
                    .iter()
                    .chain(v.intermediates_from_aia.iter())
                    .cloned()
                    .collect(),
            ),
            // No store verifies the chain. Complete when the last presented certificate is
            // a root or issued by an anchor of some store. Incomplete when its issuer is a CA
            // certificate of a store's bundle (known to be missing), or when only the leaf
            // (no CA certificate) was sent and its issuer is unknown. A chain that ends in a
            // CA certificate of an unknown issuer is left complete: its root is untrusted,
            // which `trusted` reports, not missing.
            None => match walk.last().and_then(|&i| ctx.fact(i)) {
                None => (false, Vec::new()),
                Some(last) if last.self_signed => (true, Vec::new()),
                Some(last)
                    if stores.stores.iter().any(|s| {
                        s.anchors
                            .iter()
                            .any(|a| a.subject.as_ref() == last.issuer_der)
                    }) =>
                {
                    (true, Vec::new())
                }
                Some(last) => {
                    let helper = stores
                        .stores
                        .iter()
                        .flat_map(|s| s.helper_facts.iter().flatten())
                        .find(|h| h.subject_der == last.issuer_der);
                    match helper {
                        Some(h) => (false, vec![h.subject.clone()]),
                        None if last.is_ca => (true, Vec::new()),
                        None => (false, vec![last.issuer.clone()]),
                    }
                }
            },
        },
    };
    let related: Vec<usize> = match best_path {
        Some(p) => {
            let mut r = p.positions.clone();
            if let Some(a) = &p.anchor {
                for (i, f) in facts.iter().enumerate() {
                    if f.as_ref()
                        .is_some_and(|f| f.fingerprint_sha256 == a.fingerprint_sha256)
                    {
                        r.push(i);
                    }
                }
            }
            r
        }
        None => walk.clone(),
    };
    let superfluous = (1..n).filter(|i| !related.contains(i)).collect();
    let expired_intermediates = (1..n)
        .filter(|&i| ctx.fact(i).is_some_and(|f| !valid_at(f, now_s)))
        .collect();
    let earliest_not_after = facts.iter().flatten().map(|f| f.not_after).min();

    // Complete only through AIA: a trusted path that needed no store helper but used an
    // AIA-fetched certificate.
    let completed_by_aia = if complete {
        Vec::new()
    } else {
        trusted_verdicts()
            .find(|v| v.intermediates_from_store.is_empty() && !v.intermediates_from_aia.is_empty())
            .map(|v| v.intermediates_from_aia.clone())
            .unwrap_or_default()
    };
    let hygiene = Hygiene {
        order_valid,
        root_sent,
        complete,
        missing_intermediates,
        completed_by_aia,
        superfluous,
        expired_intermediates,
        earliest_not_after,
    };

    // Issuer class.
    let trusted_by = |class: StoreClass| {
        verdicts
            .iter()
            .any(|v| v.class == class && (v.verified || v.trusted_ignoring_eku))
    };
    let issuer_class = if trusted_by(StoreClass::Internal) {
        IssuerClass::Internal
    } else if trusted_by(StoreClass::Public) {
        IssuerClass::Public
    } else {
        IssuerClass::Unknown
    };

    let anchor = best_path.and_then(|p| p.anchor.clone());
    let adcs_detected = facts.iter().flatten().any(|f| f.adcs.any())
        || anchor.as_ref().is_some_and(|a| a.adcs.any());
    let mut inferences = Vec::new();
    if issuer_class == IssuerClass::Unknown && adcs_detected {
        inferences.push("AD CS markers suggest an internal enterprise CA".to_string());
    }
    if let Some(leaf) = ctx.fact(0) {
        let template = leaf.adcs.template_name.is_some() || leaf.adcs.template_oid.is_some();
        let issuing_ca_version = walk
            .get(1)
            .and_then(|&i| ctx.fact(i))
            .or(anchor.as_ref())
            .is_some_and(|ca| ca.adcs.ca_version.is_some());
        let sha2 = matches!(
            leaf.signature_hash,
            SignatureHash::Sha224
                | SignatureHash::Sha256
                | SignatureHash::Sha384
                | SignatureHash::Sha512
        ) || leaf.signature_oid.starts_with("1.2.840.10045.4.3");
        if (template || issuing_ca_version) && sha2 {
            inferences.push(
                "SHA-2 signature from an AD CS CA => Windows Server 2008+ CA with a CNG KSP"
                    .to_string(),
            );
        }
    }

    let weak = |f: &CertFacts| {
        !f.self_signed && matches!(f.signature_hash, SignatureHash::Sha1 | SignatureHash::Md5)
    };
    let weak_hash_on_path = match best_path {
        Some(p) => p.positions.iter().any(|&i| ctx.fact(i).is_some_and(weak)),
        None => facts.iter().flatten().any(weak),
    };
    let best_path_not_after = best_path.and_then(|p| p.not_after);

    ChainReport {
        certs: facts.into_iter().flatten().collect(),
        parse_errors,
        stores: verdicts,
        hostname,
        hygiene,
        issuer_class,
        adcs_detected,
        inferences,
        weak_hash_on_path,
        best_path_not_after,
        anchor,
        aia: None,
        revocation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_algorithms_come_before_the_defaults_that_share_their_identifiers() {
        let list = &*LEGACY_LIST;
        let first_default = list
            .iter()
            .position(|a| {
                a.signature_alg_id() == alg_id::RSA_PKCS1_SHA256
                    && a.public_key_alg_id() == alg_id::RSA_ENCRYPTION
            })
            .unwrap();
        // The first RSA-PKCS1-SHA256 entry is the 1024-bit legacy one, not webpki's 2048-bit.
        assert!(first_default < LEGACY_ALGS.len());
        assert_eq!(
            list.len(),
            LEGACY_ALGS.len() + webpki::ALL_VERIFICATION_ALGS.len()
        );
        // Both SHA-1 OIDs are covered.
        for id in [SHA1_RSA_NULL, SHA1_RSA_OIW_NULL] {
            assert!(list
                .iter()
                .any(|a| a.signature_alg_id() == AlgorithmIdentifier::from_slice(id)));
        }
    }

    #[test]
    fn webpki_errors_map_to_the_bounded_reason_set() {
        use webpki::Error as E;
        assert_eq!(map_error(&E::UnknownIssuer), VerifyErrorKind::UnknownIssuer);
        assert_eq!(
            map_error(&E::InvalidSignatureForPublicKey),
            VerifyErrorKind::BadSignature
        );
        assert_eq!(
            map_error(&E::PathLenConstraintViolated),
            VerifyErrorKind::PathTooLong
        );
        assert_eq!(
            map_error(&E::MaximumPathBuildCallsExceeded),
            VerifyErrorKind::PathTooLong
        );
        assert_eq!(
            map_error(&E::CaUsedAsEndEntity),
            VerifyErrorKind::CaUsedAsLeaf
        );
        assert_eq!(map_error(&E::EndEntityUsedAsCa), VerifyErrorKind::NotCa);
        assert_eq!(map_error(&E::EmptyEkuExtension), VerifyErrorKind::BadEku);
        assert_eq!(map_error(&E::CertRevoked), VerifyErrorKind::Other);
        assert_eq!(
            map_error(&E::CertExpired {
                time: secs(10),
                not_after: secs(5)
            }),
            VerifyErrorKind::Expired
        );
    }

    #[test]
    fn der_contents_strips_short_and_long_headers_and_never_panics() {
        assert_eq!(der_contents(&[0x30, 0x01, 0xaa]), &[0xaa]);
        assert_eq!(der_contents(&[0x30, 0x81, 0x01, 0xaa]), &[0xaa]);
        assert_eq!(der_contents(&[0x30]), &[0x30]);
        assert_eq!(der_contents(&[0x30, 0x84, 0x01]), &[0x30, 0x84, 0x01]);
    }

    /// Root -> intermediate -> leaf (ECDSA P-256), the leaf valid for [nb, na].
    fn ecdsa_chain(nb: i64, na: i64) -> (CertificateDer<'static>, Vec<CertificateDer<'static>>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.not_before = t(nb - 86_400);
            p.not_after = t(na + 10 * 86_400);
            p
        };
        let rk = KeyPair::generate().unwrap();
        let rp = ca("cache root");
        let root = rp.self_signed(&rk).unwrap();
        let ri = Issuer::new(rp, rk);
        let ik = KeyPair::generate().unwrap();
        let ip = ca("cache intermediate");
        let int = ip.signed_by(&ik, &ri).unwrap();
        let ii = Issuer::new(ip, ik);
        let lk = KeyPair::generate().unwrap();
        let mut lp = CertificateParams::new(vec!["cache.example".to_string()]).unwrap();
        lp.not_before = t(nb);
        lp.not_after = t(na);
        lp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = lp.signed_by(&lk, &ii).unwrap();
        (
            root.der().clone(),
            vec![leaf.der().clone(), int.der().clone()],
        )
    }

    fn at(s: i64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(s as u64))
    }

    fn json(r: &ChainReport) -> serde_json::Value {
        serde_json::to_value(r).unwrap()
    }

    #[test]
    fn cached_verdicts_equal_fresh_ones_and_respect_validity_boundaries() {
        let (nb, na) = (1_800_000_000, 1_800_000_000 + 90 * 86_400);
        let (root, chain) = ecdsa_chain(nb, na);
        let store =
            || TrustStore::from_bundle("internal", StoreClass::Internal, vec![root.clone()]);
        let cached = TrustStores {
            stores: vec![store().unwrap(), TrustStore::webpki_roots("public")],
        };
        let now = nb + 86_400;

        let first = analyze(&chain, None, &cached, at(now));
        assert!(first.stores[0].verified, "{:?}", first.stores[0]);
        assert_eq!(cached.stores[0].verdict_cache.len(), 1);
        assert_eq!(cached.stores[1].verdict_cache.len(), 1);
        // A hit (a second later, same validity cell) gives what a fresh store computes.
        let hit = analyze(&chain, None, &cached, at(now + 1));
        let fresh_stores = TrustStores {
            stores: vec![store().unwrap(), TrustStore::webpki_roots("public")],
        };
        let fresh = analyze(&chain, None, &fresh_stores, at(now + 1));
        assert_eq!(json(&hit), json(&fresh));

        // Past the leaf's notAfter the cached "verified" must not be reused.
        let late = analyze(&chain, None, &cached, at(na + 1));
        assert!(!late.stores[0].verified);
        assert_eq!(late.stores[0].error, Some(VerifyErrorKind::Expired));
        // Exactly at notAfter it is still valid (webpki: time > notAfter is expired).
        let edge = analyze(&chain, None, &cached, at(na));
        assert!(edge.stores[0].verified, "{:?}", edge.stores[0]);
        // Before notBefore: not yet valid.
        let early = analyze(&chain, None, &cached, at(nb - 1));
        assert_eq!(early.stores[0].error, Some(VerifyErrorKind::NotYetValid));
        // And back inside the window: verified again.
        assert!(analyze(&chain, None, &cached, at(now)).stores[0].verified);
    }

    #[test]
    fn verdict_cache_is_bounded() {
        let (root, _) = ecdsa_chain(1_800_000_000, 1_800_100_000);
        let stores = TrustStores {
            stores: vec![
                TrustStore::from_bundle("internal", StoreClass::Internal, vec![root]).unwrap(),
            ],
        };
        let c = &stores.stores[0].verdict_cache;
        for i in 0..(VERDICT_CACHE_MAX + 10) {
            c.put(
                format!("k{i}"),
                CachedVerdict {
                    from: 0,
                    until: 1,
                    verdict: StoreVerdict {
                        store: "internal".into(),
                        class: StoreClass::Internal,
                        verified: false,
                        legacy_algorithms: false,
                        error: None,
                        error_position: None,
                        detail: None,
                        path: vec![],
                        path_not_after: None,
                        trusted_ignoring_eku: false,
                        intermediates_from_store: vec![],
                        intermediates_from_aia: vec![],
                    },
                    path: None,
                },
            );
        }
        assert!(c.len() <= VERDICT_CACHE_MAX);
        assert!(c.get("k0", 0).is_none());
        assert!(c.get(&format!("k{}", VERDICT_CACHE_MAX + 9), 0).is_some());
        assert!(c.get(&format!("k{}", VERDICT_CACHE_MAX + 9), 1).is_none());
    }
}
