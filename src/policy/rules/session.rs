//! Rules about the TLS session itself: the negotiated version, client-certificate enforcement
//! and acceptance, and the handshake signature made with the leaf's key.

use crate::policy::spec::{BasicRule, TlsVersion, TlsVersionRule};
use crate::probe::HandshakeSignature;

use super::{Ctx, Finding};

/// `tls_version`: the negotiated version is at least `min`.
pub(super) fn tls_version(c: &Ctx<'_>, r: &TlsVersionRule) -> Finding {
    let min = r.min.unwrap_or(TlsVersion::Tls10);
    let negotiated = c
        .capture
        .tls_version
        .or_else(|| c.capture.legacy.as_ref().map(|l| l.version));
    match negotiated {
        None => Finding::NotApplicable("negotiated TLS version unknown".into()),
        Some(TlsVersion::Unrecognized) => Finding::Violation("unrecognised TLS version".into()),
        Some(v) if v < min => Finding::Violation(format!(
            "negotiated {} is below the minimum {}",
            v.as_str(),
            min.as_str()
        )),
        Some(v) => Finding::Pass(format!(
            "negotiated {} (minimum {})",
            v.as_str(),
            min.as_str()
        )),
    }
}

/// `mtls_enforced`: a server expected to require client certificates refused a client
/// without one.
pub(super) fn mtls_enforced(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    if !c.ctx.expect_client_auth_required {
        return Finding::NotApplicable(
            "the endpoint does not expect client certificates to be required".into(),
        );
    }
    match c.capture.mtls_enforced {
        Some(true) => Finding::Pass("the server refused a client without a certificate".into()),
        Some(false) => Finding::Violation(
            "client certificates are expected to be required, but the server let a client without one in".into(),
        ),
        None => Finding::NotApplicable("enforcement was not tested in this probe".into()),
    }
}

/// `client_cert_accepted`: the server accepted the client certificate we sent.
pub(super) fn client_cert_accepted(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let (ctx, failure) = (c.ctx, c.failure.as_deref());
    let ca = &c.capture.client_auth;
    if !ca.client_cert_sent {
        return if ctx.client_cert_configured && ca.requested {
            Finding::Violation(
                "a client certificate is configured but none was sent although the server asked for one".into(),
            )
        } else if ctx.client_cert_configured {
            Finding::NotApplicable(
                "a client certificate is configured, but the server did not ask for one".into(),
            )
        } else {
            Finding::NotApplicable("no client certificate presented".into())
        };
    }
    match ca.accepted {
        Some(true) => Finding::Pass("the server accepted our client certificate".into()),
        Some(false) => Finding::Violation(format!(
            "the server rejected our client certificate{}",
            failure.map(|f| format!(" ({f})")).unwrap_or_default()
        )),
        None => Finding::NotApplicable("acceptance of the client certificate unknown".into()),
    }
}

/// `handshake_signature`: the server's handshake signature verified with the leaf's key.
pub(super) fn handshake_signature(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    match &c.capture.handshake_signature {
        HandshakeSignature::Verified => {
            Finding::Pass("handshake signature verified with the leaf key".into())
        }
        HandshakeSignature::WeakKeyNotVerified(d) => Finding::Advisory(format!(
            "handshake signature not verified: leaf key too weak for the provider ({d})"
        )),
        HandshakeSignature::Unverifiable(d) => Finding::Advisory(format!(
            "handshake signature not verified: {d}; that the server holds the leaf's key is unproven"
        )),
        HandshakeSignature::NotChecked => {
            Finding::NotApplicable("handshake signature not checked".into())
        }
    }
}
