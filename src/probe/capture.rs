//! The facts one probe of one (endpoint, address) produced.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use serde::Serialize;

use super::reason::Failure;

/// Everything observed during one probe of one address. Present even when the probe failed:
/// a server that rejects our client certificate has already sent its chain.
#[derive(Debug, Clone, Serialize)]
pub struct Capture {
    /// The address that was connected to.
    pub address: SocketAddr,
    /// SNI sent (None for IP-only targets).
    pub sni: Option<String>,
    /// Time from starting the TCP connect until it completed.
    #[serde(serialize_with = "ser_opt_secs")]
    pub connect_duration: Option<Duration>,
    /// Time from the ClientHello until the TLS handshake completed (or failed).
    #[serde(serialize_with = "ser_opt_secs")]
    pub handshake_duration: Option<Duration>,
    /// Time spent after the handshake waiting for the server's verdict (an alert, a close, the
    /// HTTP answer, or the verdict timeout when the server stays silent). None when no verdict
    /// was read: the server sent no CertificateRequest and `app_protocol` is `none`.
    #[serde(serialize_with = "ser_opt_secs")]
    pub verdict_duration: Option<Duration>,
    /// Negotiated protocol version, e.g. `TLSv1.3` (or the legacy version, e.g. `TLSv1.0`).
    pub tls_version: Option<crate::vocab::TlsVersion>,
    /// Negotiated cipher suite IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// Negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// Key-exchange group, e.g. `X25519`, where rustls exposes it.
    pub kx_group: Option<String>,
    /// The signature scheme of the server's handshake signature (CertificateVerify /
    /// ServerKeyExchange), e.g. `ecdsa_secp256r1_sha256`.
    pub signature_scheme: Option<String>,
    /// The server stapled an OCSP response (its length in bytes; its content is judged by the
    /// revocation checks).
    pub ocsp_staple_bytes: Option<usize>,
    /// The stapled OCSP response itself (at most `revocation::ocsp::MAX_RESPONSE_BYTES`; a
    /// larger one is kept as its length only and judged too large).
    #[serde(skip)]
    pub ocsp_staple: Option<std::sync::Arc<[u8]>>,
    /// The chain exactly as presented by the server (leaf first), DER.
    #[serde(skip)]
    pub chain: Vec<CertificateDer<'static>>,
    /// Handshake signature check outcome.
    pub handshake_signature: HandshakeSignature,
    /// Client authentication facts (CertificateRequest, whether our cert was accepted).
    pub client_auth: ClientAuthFacts,
    /// For `expect_client_auth: required`: did the server refuse a client WITHOUT a certificate?
    /// `Some(true)` = enforced (good), `Some(false)` = the server let us in without one.
    pub mtls_enforced: Option<bool>,
    /// Set when this address is probed once per key type (a dual-certificate server, or
    /// `key_types` configured): the key type this probe asked for (the `key_type` label).
    pub key_type: Option<super::handshake::KeyType>,
    /// Whether the server holds a second certificate of another key type: `Some(true)` when a
    /// probe restricted to the other type got another leaf, `Some(false)` when it got the same
    /// leaf or none, None when not checked by this probe.
    pub several_certificates: Option<bool>,
    /// The STARTTLS preamble's facts (banner, capabilities, XMPP stream facts), when the
    /// endpoint upgrades with STARTTLS.
    /// Boxed: most endpoints use implicit TLS, and a capture is kept per target.
    pub starttls: Option<Box<super::starttls::StartTlsFacts>>,
    /// Set when the chain was obtained by the legacy (TLS <= 1.2, non-rustls) capture.
    pub legacy: Option<Box<LegacyFacts>>,
    /// Why the probe failed, if it did. A capture with a chain and a failure is normal (MTLS
    /// rejection, TLS 1.0-only server).
    pub failure: Option<Failure>,
}

fn ser_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Capture {
    /// An empty capture for `address`, to be filled as the probe progresses.
    pub fn new(address: SocketAddr, sni: Option<String>) -> Self {
        Self {
            address,
            sni,
            connect_duration: None,
            handshake_duration: None,
            verdict_duration: None,
            tls_version: None,
            cipher_suite: None,
            alpn: None,
            kx_group: None,
            signature_scheme: None,
            ocsp_staple_bytes: None,
            ocsp_staple: None,
            chain: Vec::new(),
            handshake_signature: HandshakeSignature::NotChecked,
            client_auth: ClientAuthFacts::default(),
            mtls_enforced: None,
            key_type: None,
            several_certificates: None,
            starttls: None,
            legacy: None,
            failure: None,
        }
    }

    /// True when the handshake completed and no failure was recorded.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

/// Outcome of verifying the server's handshake signature (CertificateVerify / ServerKeyExchange)
/// with the presented leaf key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum HandshakeSignature {
    /// Verified with the provider's algorithms.
    Verified,
    /// The leaf key is too weak for the provider (e.g. RSA-1024): the handshake was allowed to
    /// complete but the signature could not be verified. Flagged, not failed.
    WeakKeyNotVerified(String),
    /// The server signed with a scheme certprobe offers so that the chain can be captured but
    /// the crypto provider cannot verify (ECDSA P-521 with ring): the handshake was allowed to
    /// complete, the signature was not verified. Flagged, not failed.
    Unverifiable(String),
    /// Not checked (no handshake, or legacy capture which stops before the key exchange).
    NotChecked,
}

/// What the server said about client authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientAuthFacts {
    /// The server sent a CertificateRequest.
    pub requested: bool,
    /// Distinguished names from the CertificateRequest `certificate_authorities`, as RFC 4514
    /// strings (bounded in count; see `acceptable_ca_names_truncated`).
    pub acceptable_ca_names: Vec<String>,
    /// More names were sent than we keep.
    pub acceptable_ca_names_truncated: bool,
    /// We presented a client certificate.
    pub client_cert_sent: bool,
    /// The server accepted our client certificate (None when not applicable / unknown).
    pub accepted: Option<bool>,
}

/// Facts from the legacy (hand-rolled ClientHello) capture of a server rustls cannot speak to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyFacts {
    /// Version the server chose, e.g. `TLSv1.0`.
    pub version: crate::vocab::TlsVersion,
    /// Cipher suite the server chose, IANA name or `0xc014` when unknown.
    pub cipher_suite: String,
}
