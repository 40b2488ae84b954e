//! Path building and verification against every named store; hygiene; classification.

use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Serialize;

use super::facts::CertFacts;
use super::hostname::{HostnameMatch, NameCheck};
use super::store::{StoreClass, TrustStores};

/// Bounded reason why a store rejected a chain (a metric label value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyErrorKind {
    UnknownIssuer,
    Expired,
    NotYetValid,
    BadSignature,
    UnsupportedSignatureAlgorithm,
    BadEku,
    PathTooLong,
    NameConstraints,
    CaUsedAsLeaf,
    NotCa,
    Malformed,
    Other,
}

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
}

/// Chain hygiene facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hygiene {
    /// Each certificate is issued by the next one.
    pub order_valid: bool,
    /// A self-signed root was sent.
    pub root_sent: bool,
    /// The issuer of the last presented certificate is an anchor in some store (or it is a
    /// root): no intermediate is missing.
    pub complete: bool,
    /// Presented certificates unrelated to the leaf's path.
    pub superfluous: Vec<usize>,
    /// Positions of expired / not-yet-valid non-leaf certificates.
    pub expired_intermediates: Vec<usize>,
    /// Earliest notAfter over the presented chain.
    pub earliest_not_after: Option<i64>,
}

/// Issuer classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerClass {
    Internal,
    Public,
    Unknown,
}

/// Everything known about a presented chain.
#[derive(Debug, Clone, Serialize)]
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

/// Analyze a presented chain. Pure.
pub fn analyze(
    chain: &[CertificateDer<'_>],
    name: Option<&NameCheck>,
    stores: &TrustStores,
    now: UnixTime,
) -> ChainReport {
    let _ = (chain, name, stores, now);
    ChainReport {
        certs: Vec::new(),
        parse_errors: Vec::new(),
        stores: Vec::new(),
        hostname: None,
        hygiene: Hygiene::default(),
        issuer_class: IssuerClass::Unknown,
        adcs_detected: false,
        inferences: Vec::new(),
        weak_hash_on_path: false,
        best_path_not_after: None,
        anchor: None,
    }
}
