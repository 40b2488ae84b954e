//! Bounded failure reasons: the values of the `reason` metric label.

use serde::Serialize;

pub use crate::vocab::FailureReason;

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
