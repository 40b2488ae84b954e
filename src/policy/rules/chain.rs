//! Rules about the chain as a whole: that one was captured, that a store verifies it, the
//! issuer class, and how the server presents it.

use crate::chain::{ChainReport, IssuerClass};
use crate::policy::spec::{BasicRule, IssuerClassRule, TrustedRule};
use crate::policy::Severity;
use crate::probe::Capture;

use super::{label, Ctx, Finding};

/// The `reachable` failure's message when no leaf could be parsed.
pub(super) fn unreachable_message(
    capture: &Capture,
    report: &ChainReport,
    failure: Option<&str>,
) -> String {
    if capture.chain.is_empty() && report.certs.is_empty() {
        match failure {
            Some(f) => format!("no certificate chain captured ({f})"),
            None => "no certificate chain captured".to_string(),
        }
    } else {
        let why = report
            .parse_errors
            .iter()
            .find(|(p, _)| *p == 0)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| "no certificate".into());
        format!("the leaf certificate could not be parsed: {why}")
    }
}

/// The informational notes every evaluation of a parsed chain starts with.
pub(super) fn notes(report: &ChainReport) -> Vec<String> {
    let mut info = vec![format!(
        "issuer class: {}{}",
        report.issuer_class.as_str(),
        if report.adcs_detected {
            " (AD CS markers present)"
        } else {
            ""
        }
    )];
    info.extend(report.inferences.iter().cloned());
    if report.hygiene.root_sent {
        info.push(
            "chain hygiene: the server sends its self-signed root (harmless; clients ignore it and it costs bytes in every handshake)"
                .into(),
        );
    }
    info
}

/// `reachable`: a chain was captured (even when the handshake then failed).
pub(super) fn reachable(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let n = c.report.certs.len() + c.report.parse_errors.len();
    match &c.failure {
        Some(f) => Finding::Pass(format!(
            "chain of {n} certificate(s) captured although the handshake failed ({f})"
        )),
        None => Finding::Pass(format!("handshake completed; chain of {n} certificate(s)")),
    }
}

/// `trusted`: the chain verifies against one of the rule's stores (any store when none).
pub(super) fn trusted(c: &Ctx<'_>, rule: &TrustedRule) -> Finding {
    let stores = rule.stores.as_deref().unwrap_or(&[]);
    let r = c.report;
    if r.stores.is_empty() {
        return Finding::Violation("no trust store is configured".into());
    }
    let mut missing = Vec::new();
    let candidates: Vec<_> = if stores.is_empty() {
        r.stores.iter().collect()
    } else {
        for s in stores {
            if !r.stores.iter().any(|v| &v.store == s) {
                missing.push(s.clone());
            }
        }
        r.stores
            .iter()
            .filter(|v| stores.contains(&v.store))
            .collect()
    };
    if let Some(v) = candidates
        .iter()
        .find(|v| !v.verified && v.trusted_ignoring_eku)
    {
        if !candidates.iter().any(|v| v.verified) {
            return Finding::Pass(format!(
                "chains to store {} (path verification failed only on the EKU; see the eku rule)",
                v.store
            ));
        }
    }
    if let Some(v) = candidates.iter().find(|v| v.verified) {
        return Finding::Pass(format!(
            "verified by store {}{}",
            v.store,
            if v.legacy_algorithms {
                " (with legacy SHA-1/RSA-1024 algorithms)"
            } else {
                ""
            }
        ));
    }
    let mut parts: Vec<String> = candidates
        .iter()
        .map(|v| {
            let e = v.error.map_or("not verified", |e| e.as_str());
            let at = v
                .error_position
                .and_then(|p| c.report.certs.get(p).map(|x| format!(" at {}", label(x))))
                .unwrap_or_default();
            match &v.detail {
                Some(d) => format!("{}: {e}{at} ({d})", v.store),
                None => format!("{}: {e}{at}", v.store),
            }
        })
        .collect();
    for m in missing {
        parts.push(format!("{m}: store not configured"));
    }
    Finding::Violation(format!(
        "chain of {} not verified by any allowed store: {}",
        label(c.leaf),
        parts.join("; ")
    ))
}

/// `issuer_class`: the chain's issuer class (internal, public) is one the role allows.
pub(super) fn issuer_class(c: &Ctx<'_>, r: &IssuerClassRule) -> Finding {
    let report = c.report;
    let allowed = r
        .allowed
        .clone()
        .unwrap_or_else(|| vec![IssuerClass::Internal, IssuerClass::Public]);
    let cls = report.issuer_class.as_str();
    let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    let trusted_active = c
        .rules
        .trusted
        .as_ref()
        .is_some_and(|t| t.severity != Some(Severity::Off));
    if names.contains(&cls) {
        Finding::Pass(format!("issuer class {cls} is allowed"))
    } else if report.issuer_class == IssuerClass::Unknown
        && trusted_active
        && !report
            .stores
            .iter()
            .any(|s| s.verified || s.trusted_ignoring_eku)
    {
        // Not verified by any store: the class cannot be told; `trusted` reports it.
        Finding::NotApplicable(
            "issuer class unknown: the chain is not verified by any store (see trusted)".into(),
        )
    } else {
        Finding::Violation(format!(
            "issuer class {cls} (issuer {}) is not allowed; allowed: {}",
            c.leaf.issuer,
            names.join(", ")
        ))
    }
}

/// `chain_hygiene`: the server sends a complete chain, in order, without extra certificates.
pub(super) fn chain_hygiene(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let report = c.report;
    let h = &report.hygiene;
    let mut p = Vec::new();
    if !h.complete {
        let verified = report
            .stores
            .iter()
            .any(|s| s.verified || s.trusted_ignoring_eku);
        p.push(if h.missing_intermediates.is_empty() {
            "chain incomplete (an intermediate is missing)".to_string()
        } else if !h.completed_by_aia.is_empty() {
            format!(
                "chain incomplete (an intermediate is missing): the server does not send {} (verified only through the AIA caIssuers URL; see aia_completes_chain)",
                h.missing_intermediates.join(", ")
            )
        } else if verified {
            format!(
                "chain incomplete (an intermediate is missing): the server does not send {} (verified only because the trust store's bundle holds it; clients that trust only the root fail)",
                h.missing_intermediates.join(", ")
            )
        } else {
            format!(
                "chain incomplete (an intermediate is missing): the server does not send its issuing CA {}",
                h.missing_intermediates.join(", ")
            )
        });
    }
    if !h.order_valid {
        p.push("certificates out of order".to_string());
    }
    if !h.superfluous.is_empty() {
        p.push(format!(
            "superfluous certificate(s) at position(s) {:?}",
            h.superfluous
        ));
    }
    if p.is_empty() {
        Finding::Pass(format!(
            "chain complete and in order{}",
            if h.root_sent { " (root sent)" } else { "" }
        ))
    } else {
        Finding::Violation(p.join("; "))
    }
}

/// `aia_completes_chain`: the verified path needed no certificate fetched through AIA.
pub(super) fn aia_completes_chain(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let report = c.report;
    let Some(aia) = &report.aia else {
        return Finding::NotApplicable("no AIA chase ran for this chain".into());
    };
    let h = &report.hygiene;
    if !h.completed_by_aia.is_empty() {
        let urls: Vec<&str> = aia
            .fetches
            .iter()
            .filter(|f| f.issuer.is_some())
            .map(|f| f.url.as_str())
            .collect();
        return Finding::Violation(format!(
            "chain complete only through AIA: the server does not send {}, fetched from {} (Windows clients fetch it; Java, Android and many appliances fail)",
            h.completed_by_aia.join(", "),
            urls.join(", ")
        ));
    }
    let failed: Vec<String> = aia
        .fetches
        .iter()
        .filter_map(|f| f.reason.map(|r| format!("{} ({})", f.url, r.as_str())))
        .collect();
    if failed.is_empty() {
        Finding::NotApplicable(
            "AIA supplied issuers, but no verified path used them (see trusted)".into(),
        )
    } else {
        Finding::NotApplicable(format!(
            "AIA did not complete the chain: {} (see trusted)",
            failed.join(", ")
        ))
    }
}
