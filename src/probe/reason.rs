//! Bounded failure reasons: the values of the `reason` metric label.

use serde::Serialize;

/// Why a probe failed. A small closed set: it becomes a metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureReason {
    /// Name resolution failed or returned no address.
    Dns,
    /// TCP connection refused (RST to SYN).
    ConnectRefused,
    /// TCP connect did not complete within the connect timeout.
    ConnectTimeout,
    /// Other TCP connect error (unreachable, ...).
    ConnectError,
    /// The TLS handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// The server sent a fatal TLS alert (the alert name is in [`Failure::alert`]).
    TlsAlert,
    /// The server only speaks TLS < 1.2 (a legacy capture may still have the chain).
    ProtocolVersion,
    /// The peer sent something that is not TLS.
    NotTls,
    /// The connection was reset by the peer.
    Reset,
    /// The peer closed the connection without an alert.
    Closed,
    /// The server rejected our client certificate (or the absence of one).
    ClientCertRejected,
    /// The server's chain exceeded the configured certificate count or byte cap.
    ChainTooLarge,
    /// No cipher suite / parameters in common (handshake_failure alert before any certificate).
    HandshakeFailure,
    /// The server presented a certificate that cannot be parsed.
    BadCertificate,
    /// Any other TLS protocol error (detail has the text).
    TlsError,
    /// STARTTLS: the server does not offer the upgrade (capability missing).
    StarttlsUnsupported,
    /// STARTTLS: the server refused the upgrade (its reply code is in the detail).
    StarttlsRefused,
    /// STARTTLS: an unexpected reply, an over-long or endless answer, or data after the
    /// server's go-ahead (the port may speak another protocol).
    StarttlsProtocol,
    /// The proxy could not be reached, timed out, or does not speak its protocol.
    ProxyConnect,
    /// The proxy refused the tunnel (its status or SOCKS reply is in the detail).
    ProxyRefused,
    /// The proxy wants credentials, or rejected ours.
    ProxyAuth,
}

impl FailureReason {
    /// Every reason, for documentation and for pre-declaring metric series.
    pub const ALL: &'static [FailureReason] = &[
        Self::Dns,
        Self::ConnectRefused,
        Self::ConnectTimeout,
        Self::ConnectError,
        Self::HandshakeTimeout,
        Self::TlsAlert,
        Self::ProtocolVersion,
        Self::NotTls,
        Self::Reset,
        Self::Closed,
        Self::ClientCertRejected,
        Self::ChainTooLarge,
        Self::HandshakeFailure,
        Self::BadCertificate,
        Self::TlsError,
        Self::StarttlsUnsupported,
        Self::StarttlsRefused,
        Self::StarttlsProtocol,
        Self::ProxyConnect,
        Self::ProxyRefused,
        Self::ProxyAuth,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::ConnectRefused => "connect_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::ConnectError => "connect_error",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::TlsAlert => "tls_alert",
            Self::ProtocolVersion => "protocol_version",
            Self::NotTls => "not_tls",
            Self::Reset => "reset",
            Self::Closed => "closed",
            Self::ClientCertRejected => "client_cert_rejected",
            Self::ChainTooLarge => "chain_too_large",
            Self::HandshakeFailure => "handshake_failure",
            Self::BadCertificate => "bad_certificate",
            Self::TlsError => "tls_error",
            Self::StarttlsUnsupported => "starttls_unsupported",
            Self::StarttlsRefused => "starttls_refused",
            Self::StarttlsProtocol => "starttls_protocol",
            Self::ProxyConnect => "proxy_connect",
            Self::ProxyRefused => "proxy_refused",
            Self::ProxyAuth => "proxy_auth",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe failure: the bounded reason, the alert name when the reason is an alert, and a human
/// detail string for logs and the CLI (never a metric label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub reason: FailureReason,
    /// TLS alert description in snake_case (e.g. `certificate_required`), when one was received.
    pub alert: Option<String>,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            alert: None,
            detail: detail.into(),
        }
    }

    pub fn with_alert(mut self, alert: impl Into<String>) -> Self {
        self.alert = Some(alert.into());
        self
    }
}

/// The snake_case name of a TLS alert description (IANA "TLS Alerts" registry), or `unknown`.
/// A bounded set: safe as a label value.
pub fn alert_name(code: u8) -> &'static str {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_snake_case_iana_names() {
        assert_eq!(alert_name(116), "certificate_required");
        assert_eq!(alert_name(48), "unknown_ca");
        assert_eq!(alert_name(70), "protocol_version");
        assert_eq!(alert_name(250), "unknown");
    }

    #[test]
    fn every_reason_has_a_distinct_label() {
        let mut labels: Vec<_> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), FailureReason::ALL.len());
    }
}
