//! The family catalogue: every per-target metric family, its name and help, in page order.

/// Per-target metric families, in exposition order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Fam {
    ProbeSuccess,
    ProbeDuration,
    ProbeFailure,
    LastProbe,
    TlsVersion,
    TlsCipher,
    TlsInfo,
    LegacyTls,
    HandshakeSignatureWeak,
    CertNotAfter,
    CertNotBefore,
    CertInfo,
    CertFactsTimestamp,
    ChainVerified,
    ChainVerifyError,
    ChainExpiry,
    ChainOrderValid,
    ChainComplete,
    ChainRootSent,
    ChainWeakHash,
    ChainProblem,
    HostnameMatch,
    PolicyStatus,
    PolicyRuleFailed,
    ClientAuthRequested,
    ClientCertAccepted,
    ClientCertNotAfter,
    MtlsEnforced,
    LeafChanged,
    CertRevoked,
    RevocationStatus,
    OAuthMetadataFailure,
}

pub(super) const NFAM: usize = Fam::OAuthMetadataFailure as usize + 1;

/// (name without prefix, help) per [`Fam`], same order.
pub(super) const FAMILIES: [(&str, &str); NFAM] = [
    ("probe_success", "1 if the last probe of this address completed the TLS handshake (and the client-certificate exchange) without failure, else 0."),
    ("probe_duration_seconds", "Duration of the last probe by phase: connect (TCP), handshake (TLS incl. the post-handshake verdict read), total (connect + handshake); detail full only (the histogram certprobe_probe_phase_duration_seconds covers all addresses)."),
    ("probe_failure", "1 for the reason the last probe failed; only the current reason's series exists, none while the probe succeeds."),
    ("last_probe_timestamp_seconds", "Unix time the last probe of this address finished."),
    ("tls_version_info", "Negotiated TLS protocol version of the last probe (value always 1)."),
    ("tls_cipher_info", "Negotiated TLS cipher suite (IANA name) of the last probe (value always 1)."),
    ("tls_info", "Negotiated TLS version, cipher suite (IANA name) and key-exchange group of the last probe (value always 1)."),
    ("legacy_tls", "1 if the server only speaks TLS below 1.2 (or SSL), 0 otherwise (detail default: only the 1)."),
    ("handshake_signature_weak", "1 if the handshake signature could not be verified (leaf key too weak, e.g. RSA-1024, or a scheme the crypto provider lacks, e.g. ECDSA P-521), 0 if it was verified (detail default: only the 1)."),
    ("cert_not_after_timestamp_seconds", "notAfter of each presented certificate, Unix time; position 0 is the leaf (detail default: the leaf only). With the label source=oauth_metadata: each certificate of the OAuth metadata document, position = its index in keys[]."),
    ("cert_not_before_timestamp_seconds", "notBefore of each presented certificate, Unix time; position 0 is the leaf (detail default: the leaf only, while it is not yet valid)."),
    ("cert_info", "Identity of each presented certificate (value always 1); the only family with high-cardinality labels (detail default: the leaf only). With the label source=oauth_metadata: each certificate of the OAuth metadata document."),
    ("cert_facts_timestamp_seconds", "Unix time the certificate facts shown for this address were observed (older than the last probe when the last probe captured no chain; detail default: only then)."),
    ("chain_verified", "1 if the presented chain verifies against the named trust store, else 0."),
    ("chain_verify_error", "1 for the bounded reason a trust store rejected the chain; absent for stores that verified it."),
    ("chain_expiry_timestamp_seconds", "Earliest notAfter on the best verified path, Unix time; absent when no store verified the chain."),
    ("chain_order_valid", "1 if each presented certificate is issued by the next one, else 0."),
    ("chain_complete", "1 if no intermediate certificate is missing from the presented chain, else 0."),
    ("chain_root_sent", "1 if the server sent a self-signed root certificate, else 0."),
    ("chain_weak_signature_hash", "1 if a SHA-1 or MD5 signature is on the best path (or presented chain when unverified), else 0."),
    ("chain_problem", "1 for each hygiene problem of the presented chain (order_invalid, incomplete, root_sent, weak_signature_hash); absent for a clean chain."),
    ("hostname_match", "1 if the leaf certificate is valid for the expected name, else 0 (detail default: only the 0)."),
    ("policy_status", "Policy verdict of the last probe: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("policy_rule_failed", "1 if the policy rule failed (verdict fail or warn), severity = the verdict's level; detail default exports only these, detail full also passing rules at 0 (with their configured severity). Rules that did not apply are absent."),
    ("client_auth_requested", "1 if the server sent a CertificateRequest, else 0 (detail default: only the 1)."),
    ("client_cert_accepted", "1 if the server accepted certprobe's client certificate, 0 if it rejected it; absent when unknown."),
    ("client_cert_not_after_timestamp_seconds", "notAfter of the client certificate certprobe presents to this endpoint, Unix time."),
    ("mtls_enforced", "1 if the server refused a client without a certificate, 0 if it let one in; absent when not checked."),
    ("leaf_changed_timestamp_seconds", "Unix time the leaf certificate fingerprint of this address last changed (first observation time until it changes)."),
    ("cert_revoked", "1 for each certificate of the verified path (position 0 is the leaf) that its issuer's CRL lists as revoked; absent for certificates not revoked."),
    ("revocation_status", "Revocation status of each certificate of the verified path whose status is not good: 1 unknown (no http CDP: none or LDAP only), 2 unavailable (no usable CRL), 3 revoked; absent when good or not checked."),
    ("oauth_metadata_failure", "1 for the bounded reason the OAuth metadata document (oauth_metadata) of this address gave no certificate; absent while it is usable and for endpoints that do not fetch it."),
];

/// The certificate-derived families, a contiguous range of [`Fam`] (kept on display while
/// later probes capture no chain).
pub(super) const CERT_FAMS: std::ops::RangeInclusive<usize> =
    Fam::CertNotAfter as usize..=Fam::HostnameMatch as usize;
