//! Rules about revocation: the leaf's CDP, the revocation status of the verified path, the
//! freshness of the CRLs used, and LDAP-only CDPs.

use crate::chain::fmt_time;
use crate::policy::spec::{BasicRule, CrlFreshRule};

use super::{label, Ctx, Finding};

/// `crl_dp`: the leaf has a CRL distribution point (OCSP alone does not satisfy it).
pub(super) fn crl_dp(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let leaf = c.leaf;
    if leaf.crl_distribution_points.is_empty() {
        Finding::Violation(format!(
            "leaf {} has no CRL distribution point{}",
            label(leaf),
            if leaf.ocsp_urls.is_empty() {
                String::new()
            } else {
                format!(
                    " (OCSP {} alone does not satisfy the CDP requirement)",
                    leaf.ocsp_urls.join(", ")
                )
            }
        ))
    } else {
        Finding::Pass(format!(
            "CRL distribution point {}",
            leaf.crl_distribution_points.join(", ")
        ))
    }
}

/// `revocation`: nothing on the verified path is revoked, and every status could be obtained.
pub(super) fn revocation(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let report = c.report;
    use crate::revocation::Status as R;
    let Some(rev) = &report.revocation else {
        return Finding::NotApplicable(
            "revocation not checked (revocation.method off, or nothing fetched)".into(),
        );
    };
    if rev.certs.is_empty() {
        return Finding::NotApplicable(
            "revocation not checked: the chain verified to no configured store (its CDPs are not fetched)"
                .into(),
        );
    }
    let line = |c: &crate::revocation::CertRevocation| {
        format!(
            "{} (position {}, serial {}): {}",
            crate::text::bounded(&c.subject, 256),
            c.position,
            c.serial,
            c.detail
        )
    };
    let revoked: Vec<String> = rev
        .certs
        .iter()
        .filter(|c| c.status == R::Revoked)
        .map(line)
        .collect();
    let unavailable: Vec<String> = rev
        .certs
        .iter()
        .filter(|c| c.status == R::Unavailable)
        .map(line)
        .collect();
    if !revoked.is_empty() || !unavailable.is_empty() {
        let mut parts = Vec::new();
        if !revoked.is_empty() {
            parts.push(format!("revoked: {}", revoked.join("; ")));
        }
        if !unavailable.is_empty() {
            parts.push(format!(
                "revocation status unobtainable (Windows fails such peers: revocation server offline): {}",
                unavailable.join("; ")
            ));
        }
        return Finding::Violation(parts.join("; "));
    }
    let good = rev.certs.iter().filter(|c| c.status == R::Good).count();
    let unknown: Vec<String> = rev
        .certs
        .iter()
        .filter(|c| c.status == R::Unknown)
        .map(line)
        .collect();
    if unknown.is_empty() {
        Finding::Pass(format!(
            "{good} certificate(s) of the verified path not revoked"
        ))
    } else {
        Finding::Pass(format!(
            "{good} certificate(s) not revoked; not checked: {}",
            unknown.join("; ")
        ))
    }
}

/// `crl_fresh`: the CRLs used are not about to expire, and none is a stale copy.
pub(super) fn crl_fresh(c: &Ctx<'_>, r: &CrlFreshRule) -> Finding {
    let (report, now) = (c.report, c.now);
    let warn_hours = r.warn_hours.unwrap_or(24);
    let Some(rev) = report.revocation.as_ref().filter(|r| !r.certs.is_empty()) else {
        return Finding::NotApplicable("no CRL was used".into());
    };
    let mut bad = Vec::new();
    let mut soon = Vec::new();
    for c in &rev.certs {
        let url = c
            .url
            .as_deref()
            .or(c.attempts.last().map(|a| a.url.as_str()));
        let Some(url) = url.map(|u| crate::text::bounded(u, 256)) else {
            continue;
        };
        match c.crl_next_update {
            Some(n) if n < now => bad.push(format!("CRL {url} expired at {}", fmt_time(n))),
            Some(n) if n < now + i64::from(warn_hours) * 3600 => {
                soon.push(format!("CRL {url} expires at {}", fmt_time(n)))
            }
            _ => {}
        }
        if c.stale {
            soon.push(format!(
                "CRL {url} is the last good copy: refetching it failed"
            ));
        }
    }
    if !bad.is_empty() {
        bad.extend(soon);
        Finding::Violation(bad.join("; "))
    } else if !soon.is_empty() {
        Finding::Advisory(soon.join("; "))
    } else {
        Finding::Pass("the CRLs used are fresh".into())
    }
}

/// `cdp_ldap_only`: no certificate (the root aside) has only `ldap://` CDPs.
pub(super) fn cdp_ldap_only(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let report = c.report;
    let ldap = |u: &String| u.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("ldap:"));
    let only: Vec<String> = report
        .certs
        .iter()
        .filter(|c| !c.self_signed && !c.crl_distribution_points.is_empty())
        .filter(|c| c.crl_distribution_points.iter().all(ldap))
        .map(label)
        .collect();
    if only.is_empty() {
        Finding::Pass("every certificate with a CDP has an http(s) one".into())
    } else {
        Finding::Violation(format!(
            "only ldap:// CRL distribution points (unreachable without a domain bind: Edge, reverse proxy, federation partners and external clients cannot check revocation): {}",
            only.join("; ")
        ))
    }
}
