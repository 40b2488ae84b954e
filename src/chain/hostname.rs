//! Hostname verification with RFC 6125 wildcard semantics.

use serde::Serialize;

use super::facts::CertFacts;

/// What name to check and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCheck {
    /// DNS name or IP literal the client used (SNI / expected name).
    pub name: String,
    /// Allow falling back to the subject CN when the certificate has no SAN extension (Edge
    /// internal profile only).
    pub allow_cn_fallback: bool,
}

/// Result of matching a name against a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostnameMatch {
    pub name: String,
    pub matched: bool,
    /// The SAN entry (or `CN=...`) that matched.
    pub matched_by: Option<String>,
    /// Matched only through a wildcard.
    pub via_wildcard: bool,
    /// Matched only through the CN fallback.
    pub via_cn: bool,
}

/// Match `check.name` against the leaf's SANs (and CN where allowed).
pub fn match_hostname(leaf: &CertFacts, check: &NameCheck) -> HostnameMatch {
    let _ = leaf;
    HostnameMatch {
        name: check.name.clone(),
        matched: false,
        matched_by: None,
        via_wildcard: false,
        via_cn: false,
    }
}
