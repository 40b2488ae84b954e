//! The rule catalogue: one pure check per rule id.
//!
//! Size: about 1,330 lines: thirty rules, each a `check_*` function or a short closure in
//! [`run`], with their messages. Still to do (issue 18): one function per rule behind one
//! signature, so that `run` shrinks to a table.

use crate::chain::{
    match_hostname, CertFacts, ChainReport, IssuerClass, KeyAlgorithm, NameCheck, SignatureHash,
};
use crate::probe::{Capture, HandshakeSignature};

use super::names::{self, Coverage};
use super::spec::{EkuName, NameMode, NamePattern, RulesSpec, TlsVersion, Vars, WildcardMode};
use super::{EndpointContext, RuleId, RuleVerdict, Severity, Verdict};

/// keyUsage bit names as `CertFacts::key_usage` spells them.
pub const KEY_USAGE_BITS: &[&str] = &[
    "digital_signature",
    "non_repudiation",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
];

const DAY: i64 = 86_400;

/// What a check found, before the rule's severity is applied.
enum Finding {
    Pass(String),
    NotApplicable(String),
    /// A violation: becomes fail / warn / info per the rule severity.
    Violation(String),
    /// Intrinsically a warning (warn windows, allowed-but-discouraged values): warn unless the
    /// severity is info.
    Advisory(String),
}

struct Ctx<'a> {
    vars: &'a Vars,
    capture: &'a Capture,
    report: &'a ChainReport,
    ctx: &'a EndpointContext,
    leaf: &'a CertFacts,
    now: i64,
}

pub use crate::chain::fmt_time;

/// A short human label for a certificate: `CN=x` or the subject DN.
pub fn label(c: &CertFacts) -> String {
    match &c.subject_cn {
        Some(cn) => format!("CN={cn}"),
        None if c.subject.is_empty() => format!("serial {}", c.serial),
        None => c.subject.clone(),
    }
}

/// A duration in days with one decimal, rounded down (so that it agrees with the table's whole
/// DAYS column: 9.97 days is "9.9 days", never "10.0 days").
fn days(secs: i64) -> String {
    let tenths = secs.div_euclid(DAY / 10);
    format!("{}.{} days", tenths.div_euclid(10), tenths.rem_euclid(10))
}

/// The name the client used: explicit context name, else the SNI sent, else the host.
fn endpoint_name(c: &Ctx<'_>) -> Option<String> {
    c.ctx
        .name
        .clone()
        .or_else(|| c.capture.sni.clone())
        .or_else(|| (!c.ctx.host.is_empty()).then(|| c.ctx.host.clone()))
}

fn feature_on(vars: &Vars, cond: &str) -> bool {
    match cond.strip_prefix('!') {
        Some(f) => !vars.features.get(f).unwrap_or(false),
        None => vars.features.get(cond).unwrap_or(false),
    }
}

/// Run every rule of `rules`. Returns the verdicts (in catalogue order) and informational notes.
pub fn run(
    vars: &Vars,
    rules: &RulesSpec,
    capture: &Capture,
    report: &ChainReport,
    ctx: &EndpointContext,
    now: i64,
) -> (Vec<RuleVerdict>, Vec<String>) {
    let mut info = Vec::new();
    let mut out = Vec::new();
    let sev_of = |s: Option<Severity>| s.unwrap_or(Severity::Fail);

    // reachable: without a parseable leaf nothing else can be judged; always a failure.
    let failure = capture
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", f.reason, f.detail));
    let leaf = match report.leaf() {
        Some(l) => l,
        None => {
            let msg = if capture.chain.is_empty() && report.certs.is_empty() {
                match &failure {
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
            };
            out.push(RuleVerdict {
                rule: RuleId::Reachable,
                severity: sev_of(rules.reachable.as_ref().and_then(|r| r.severity)),
                verdict: Verdict::Fail,
                message: msg,
            });
            return (out, info);
        }
    };
    let c = Ctx {
        vars,
        capture,
        report,
        ctx,
        leaf,
        now,
    };

    info.push(format!(
        "issuer class: {}{}",
        report.issuer_class.as_str(),
        if report.adcs_detected {
            " (AD CS markers present)"
        } else {
            ""
        }
    ));
    info.extend(report.inferences.iter().cloned());
    if report.hygiene.root_sent {
        info.push(
            "chain hygiene: the server sends its self-signed root (harmless; clients ignore it and it costs bytes in every handshake)"
                .into(),
        );
    }

    macro_rules! rule {
        ($id:expr, $field:ident, $check:expr) => {
            if let Some(r) = &rules.$field {
                let sev = sev_of(r.severity);
                if sev != Severity::Off {
                    #[allow(clippy::redundant_closure_call)]
                    let f: Finding = ($check)(r);
                    out.push(apply($id, sev, f, &mut info));
                }
            }
        };
    }

    rule!(RuleId::Reachable, reachable, |_r| match &failure {
        Some(f) => Finding::Pass(format!(
            "chain of {} certificate(s) captured although the handshake failed ({f})",
            report.certs.len() + report.parse_errors.len()
        )),
        None => Finding::Pass(format!(
            "handshake completed; chain of {} certificate(s)",
            report.certs.len() + report.parse_errors.len()
        )),
    });
    rule!(RuleId::Trusted, trusted, |r: &super::spec::TrustedRule| {
        check_trusted(&c, r.stores.as_deref().unwrap_or(&[]))
    });
    rule!(
        RuleId::IssuerClass,
        issuer_class,
        |r: &super::spec::IssuerClassRule| {
            let allowed = r
                .allowed
                .clone()
                .unwrap_or_else(|| vec![IssuerClass::Internal, IssuerClass::Public]);
            let cls = report.issuer_class.as_str();
            let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            let trusted_active = rules
                .trusted
                .as_ref()
                .is_some_and(|t| sev_of(t.severity) != Severity::Off);
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
                    "issuer class unknown: the chain is not verified by any store (see trusted)"
                        .into(),
                )
            } else {
                Finding::Violation(format!(
                    "issuer class {cls} (issuer {}) is not allowed; allowed: {}",
                    leaf.issuer,
                    names.join(", ")
                ))
            }
        }
    );
    rule!(
        RuleId::Hostname,
        hostname,
        |r: &super::spec::HostnameRule| { check_hostname(&c, r.mode.unwrap_or(NameMode::San)) }
    );
    rule!(RuleId::Validity, validity, |_r| {
        if now < leaf.not_before {
            Finding::Violation(format!(
                "leaf {} is not yet valid (notBefore {})",
                label(leaf),
                fmt_time(leaf.not_before)
            ))
        } else if now > leaf.not_after {
            Finding::Violation(format!(
                "leaf {} expired at {}",
                label(leaf),
                fmt_time(leaf.not_after)
            ))
        } else {
            Finding::Pass(format!(
                "leaf {} valid {} .. {}",
                label(leaf),
                fmt_time(leaf.not_before),
                fmt_time(leaf.not_after)
            ))
        }
    });
    rule!(RuleId::Expiry, expiry, |r: &super::spec::ExpiryRule| {
        let warn = i64::from(r.warn_days.unwrap_or(30)) * DAY;
        let crit = match r.critical_hours {
            Some(h) => i64::from(h) * 3600,
            None => i64::from(r.critical_days.unwrap_or(7)) * DAY,
        };
        check_expiry(&c, warn, crit)
    });
    rule!(
        RuleId::MaxValidity,
        max_validity,
        |r: &super::spec::MaxValidityRule| {
            let max = i64::from(r.max_days.unwrap_or(398));
            let span = leaf.not_after - leaf.not_before;
            if span > max * DAY {
                Finding::Violation(format!(
                    "leaf {} is valid for {} (> {max} days)",
                    label(leaf),
                    days(span)
                ))
            } else {
                Finding::Pass(format!("validity period {} <= {max} days", days(span)))
            }
        }
    );
    rule!(
        RuleId::SignatureHash,
        signature_hash,
        |r: &super::spec::SignatureHashRule| { check_hashes(&c, r) }
    );
    rule!(RuleId::RsassaPss, rsassa_pss, |_r| {
        let pss: Vec<String> = report
            .certs
            .iter()
            .filter(|x| x.is_rsassa_pss)
            .map(label)
            .collect();
        if pss.is_empty() {
            Finding::Pass("no RSASSA-PSS signature on the chain".into())
        } else {
            Finding::Violation(format!(
                "RSASSA-PSS signature (1.2.840.113549.1.1.10, unsupported by Lync) on {}",
                pss.join(", ")
            ))
        }
    });
    rule!(RuleId::Key, key, |r: &super::spec::KeyRule| check_key(
        &c, r
    ));
    rule!(RuleId::Eku, eku, |r: &super::spec::EkuRule| check_eku(
        &c, r
    ));
    rule!(RuleId::EkuCritical, eku_critical, |_r| {
        if !leaf.has_eku {
            Finding::NotApplicable("leaf has no EKU extension".into())
        } else if leaf.eku_critical {
            Finding::Violation(format!(
                "leaf {} marks the EKU extension critical",
                label(leaf)
            ))
        } else {
            Finding::Pass("EKU extension is not critical".into())
        }
    });
    rule!(
        RuleId::KeyUsage,
        key_usage,
        |r: &super::spec::KeyUsageRule| { check_key_usage(leaf, r) }
    );
    rule!(RuleId::CrlDp, crl_dp, |_r| {
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
    });
    // Revocation was judged only when the runner fetched for it (method not `off`): a pure
    // evaluation without fetched CRLs (benches, `--at` replays of stored captures) gives no
    // revocation verdict rather than a misleading one.
    if report.revocation.is_some() {
        rule!(RuleId::Revocation, revocation, |_r| check_revocation(
            report
        ));
        rule!(
            RuleId::CrlFresh,
            crl_fresh,
            |r: &super::spec::CrlFreshRule| {
                check_crl_fresh(report, now, r.warn_hours.unwrap_or(24))
            }
        );
    }
    rule!(
        RuleId::CdpLdapOnly,
        cdp_ldap_only,
        |_r| check_cdp_ldap_only(report)
    );
    rule!(
        RuleId::SanRequired,
        san_required,
        |r: &super::spec::SanRequiredRule| {
            check_san_required(&c, r.names.as_deref().unwrap_or(&[]))
        }
    );
    // The endpoint's own `expected_names` are checked even when the profile has no
    // `san_required` rule.
    if rules.san_required.is_none() && !ctx.expected_names.is_empty() {
        out.push(apply(
            RuleId::SanRequired,
            Severity::Fail,
            check_san_required(&c, &[]),
            &mut info,
        ));
    }
    rule!(RuleId::SubjectInSan, subject_in_san, |_r| {
        match &leaf.subject_cn {
            None => Finding::NotApplicable("leaf has no subject CN".into()),
            Some(cn) if !leaf.has_san_extension => Finding::Violation(format!(
                "leaf has no SAN extension; subject CN {cn} must be repeated in the SAN"
            )),
            Some(cn) => {
                let n = names::normalize(cn);
                if leaf.san_dns.iter().any(|s| names::normalize(s) == n) {
                    Finding::Pass(format!("subject CN {cn} is repeated in the SAN"))
                } else {
                    Finding::Violation(format!(
                        "subject CN {cn} is not repeated in the SAN [{}]",
                        leaf.san_dns.join(", ")
                    ))
                }
            }
        }
    });
    rule!(
        RuleId::SubjectContains,
        subject_contains,
        |r: &super::spec::SubjectContainsRule| {
            let mut wanted = Vec::new();
            let mut errs = Vec::new();
            for p in r.any_of.iter().flatten() {
                match names::expand(vars, ctx, p) {
                    Ok(v) => wanted.extend(v),
                    Err(e) => errs.push(e),
                }
            }
            let subj = leaf.subject.to_ascii_lowercase();
            if let Some(w) = wanted
                .iter()
                .find(|w| subj.contains(&w.to_ascii_lowercase()))
            {
                Finding::Pass(format!("subject {} contains {w}", leaf.subject))
            } else if wanted.is_empty() && errs.is_empty() {
                Finding::NotApplicable("no names configured".into())
            } else {
                let mut m = format!(
                    "subject {} contains none of [{}]",
                    leaf.subject,
                    wanted.join(", ")
                );
                if !errs.is_empty() {
                    m.push_str(&format!(" ({})", errs.join("; ")));
                }
                Finding::Violation(m)
            }
        }
    );
    rule!(
        RuleId::CnWildcard,
        cn_wildcard,
        |_r| match &leaf.subject_cn {
            Some(cn) if cn.contains('*') => Finding::Violation(format!(
                "wildcard in the subject CN {cn} (not supported for any role)"
            )),
            Some(cn) => Finding::Pass(format!("subject CN {cn} has no wildcard")),
            None => Finding::NotApplicable("leaf has no subject CN".into()),
        }
    );
    rule!(
        RuleId::SanWildcard,
        san_wildcard,
        |r: &super::spec::SanWildcardRule| { check_san_wildcard(&c, r) }
    );
    // Discovered endpoints: the SRV target (and the partner's sip.<domain>) in the SAN, and
    // the lyncdiscover CNAME chain. Implied for discovered endpoints unless the profile sets
    // the rule (`off` included).
    if let Some(d) = ctx.discovered.as_deref() {
        let implied = super::spec::SrvTargetNameRule::default();
        let r = rules.srv_target_name.as_ref().unwrap_or(&implied);
        let sev = sev_of(r.severity);
        if sev != Severity::Off && !d.record.is_host() {
            let need_sip = d
                .require_sip_domain
                .or(r.require_sip_domain)
                .unwrap_or(false)
                && d.record == crate::discovery::DiscoveryRecord::SipFederationTls;
            out.push(apply(
                RuleId::SrvTargetName,
                sev,
                check_srv_target_name(leaf, d, need_sip),
                &mut info,
            ));
        }
        let implied_cname = super::spec::BasicRule {
            severity: Some(Severity::Warn),
        };
        let r = rules.discovery_cname.as_ref().unwrap_or(&implied_cname);
        let sev = sev_of(r.severity);
        if sev != Severity::Off && d.record.is_host() {
            out.push(apply(
                RuleId::DiscoveryCname,
                sev,
                check_discovery_cname(d),
                &mut info,
            ));
        }
    }
    rule!(
        RuleId::TlsVersion,
        tls_version,
        |r: &super::spec::TlsVersionRule| {
            let min = r.min.unwrap_or(TlsVersion::Tls10);
            let negotiated = capture
                .tls_version
                .or_else(|| capture.legacy.as_ref().map(|l| l.version));
            match negotiated {
                None => Finding::NotApplicable("negotiated TLS version unknown".into()),
                Some(TlsVersion::Unrecognized) => {
                    Finding::Violation("unrecognised TLS version".into())
                }
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
    );
    rule!(RuleId::MtlsEnforced, mtls_enforced, |_r| {
        if !ctx.expect_client_auth_required {
            Finding::NotApplicable(
                "the endpoint does not expect client certificates to be required".into(),
            )
        } else {
            match capture.mtls_enforced {
                Some(true) => Finding::Pass("the server refused a client without a certificate".into()),
                Some(false) => Finding::Violation(
                    "client certificates are expected to be required, but the server let a client without one in".into(),
                ),
                None => Finding::NotApplicable("enforcement was not tested in this probe".into()),
            }
        }
    });
    // Whoever configures a client certificate expects its rejection to be an error: the rule
    // is part of every profile then (the profile's own setting, `off` included, wins).
    let implied_client_cert_rule = super::spec::BasicRule::default();
    let client_cert_rule = rules.client_cert_accepted.as_ref().or(ctx
        .client_cert_configured
        .then_some(&implied_client_cert_rule));
    if let Some(r) = client_cert_rule {
        let sev = sev_of(r.severity);
        if sev != Severity::Off {
            let f = check_client_cert_accepted(capture, ctx, failure.as_deref());
            out.push(apply(RuleId::ClientCertAccepted, sev, f, &mut info));
        }
    }
    rule!(RuleId::HandshakeSignature, handshake_signature, |_r| {
        match &capture.handshake_signature {
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
    });
    rule!(RuleId::ChainHygiene, chain_hygiene, |_r| {
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
    });
    // Judged only when the runner chased AIA for this chain (the chain was incomplete and
    // `revocation.aia_hosts` names the hosts it may fetch from).
    if let Some(aia) = &report.aia {
        rule!(RuleId::AiaCompletesChain, aia_completes_chain, |_r| {
            check_aia_completes_chain(report, aia)
        });
    }
    rule!(
        RuleId::IntermediateExpiry,
        intermediate_expiry,
        |r: &super::spec::IntermediateExpiryRule| {
            let warn = i64::from(r.warn_days.unwrap_or(30)) * DAY;
            let mut bad = Vec::new();
            let mut soon = Vec::new();
            for x in report.certs.iter().skip(1) {
                if now > x.not_after {
                    bad.push(format!("{} expired at {}", label(x), fmt_time(x.not_after)));
                } else if now < x.not_before {
                    bad.push(format!(
                        "{} not valid before {}",
                        label(x),
                        fmt_time(x.not_before)
                    ));
                } else if now + warn > x.not_after {
                    soon.push(format!("{} expires at {}", label(x), fmt_time(x.not_after)));
                }
            }
            if !bad.is_empty() {
                bad.extend(soon);
                Finding::Violation(bad.join("; "))
            } else if !soon.is_empty() {
                Finding::Advisory(soon.join("; "))
            } else if report.certs.len() <= 1 {
                Finding::NotApplicable("no intermediate presented".into())
            } else {
                Finding::Pass("presented intermediates valid".into())
            }
        }
    );
    (out, info)
}

fn check_client_cert_accepted(
    capture: &Capture,
    ctx: &EndpointContext,
    failure: Option<&str>,
) -> Finding {
    let ca = &capture.client_auth;
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

fn apply(rule: RuleId, severity: Severity, f: Finding, info: &mut Vec<String>) -> RuleVerdict {
    let (verdict, message) = match f {
        Finding::Pass(m) => (Verdict::Pass, m),
        Finding::NotApplicable(m) => (Verdict::NotApplicable, m),
        Finding::Violation(m) | Finding::Advisory(m) if severity == Severity::Info => {
            info.push(format!("{}: {m}", rule.as_str()));
            (Verdict::Pass, format!("(info) {m}"))
        }
        Finding::Violation(m) if severity == Severity::Fail => (Verdict::Fail, m),
        Finding::Violation(m) | Finding::Advisory(m) => (Verdict::Warn, m),
    };
    RuleVerdict {
        rule,
        severity,
        verdict,
        message,
    }
}

fn check_trusted(c: &Ctx<'_>, stores: &[String]) -> Finding {
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

fn check_hostname(c: &Ctx<'_>, mode: NameMode) -> Finding {
    let Some(name) = endpoint_name(c) else {
        return Finding::NotApplicable("no endpoint name to check".into());
    };
    let leaf = c.leaf;
    // One matcher for the whole crate (RFC 6125 wildcard semantics, IP SANs).
    let m = match_hostname(
        leaf,
        &NameCheck {
            name: name.clone(),
            allow_cn_fallback: mode == NameMode::SanOrCn,
        },
    );
    if m.matched {
        let by = m.matched_by.unwrap_or_default();
        return if m.via_cn {
            Finding::Pass(format!(
                "{name} matches subject {by} (no SAN entries; CN fallback allowed)"
            ))
        } else {
            Finding::Pass(format!("{name} matches SAN {by}"))
        };
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Finding::Violation(format!(
            "IP {name} is not among the IP SANs [{}] of {}",
            leaf.san_ip.join(", "),
            label(leaf)
        ));
    }
    let cn_note = match (&leaf.subject_cn, mode) {
        (Some(cn), NameMode::San) if names::dns_matches(cn, &name) => {
            " (it matches the subject CN, which is ignored: SAN only)".to_string()
        }
        _ => String::new(),
    };
    Finding::Violation(format!(
        "{name} does not match {} (SAN [{}]){cn_note}",
        label(leaf),
        leaf.san_dns.join(", ")
    ))
}

/// The notAfter the expiry windows apply to, and the certificate it belongs to.
pub fn expiry_basis(report: &ChainReport, leaf: &CertFacts) -> (i64, String) {
    match report.best_path_not_after {
        Some(t) => {
            let who = report
                .certs
                .iter()
                .find(|x| x.not_after == t)
                .or(report.anchor.as_ref().filter(|a| a.not_after == t))
                .map(label)
                .unwrap_or_else(|| "the verified path".into());
            (t, who)
        }
        None => (leaf.not_after, label(leaf)),
    }
}

fn check_expiry(c: &Ctx<'_>, warn: i64, crit: i64) -> Finding {
    let (t, who) = expiry_basis(c.report, c.leaf);
    let left = t - c.now;
    if left <= 0 {
        Finding::Violation(format!("{who} expired at {}", fmt_time(t)))
    } else if c.now + crit > t {
        Finding::Violation(format!(
            "{who} expires in {} at {} (critical window {})",
            days(left),
            fmt_time(t),
            days(crit)
        ))
    } else if c.now + warn > t {
        Finding::Advisory(format!(
            "{who} expires in {} at {} (warning window {})",
            days(left),
            fmt_time(t),
            days(warn)
        ))
    } else {
        Finding::Pass(format!(
            "{who} expires in {} at {}",
            days(left),
            fmt_time(t)
        ))
    }
}

fn check_hashes(c: &Ctx<'_>, r: &super::spec::SignatureHashRule) -> Finding {
    use SignatureHash::*;
    let allowed = r
        .allowed
        .clone()
        .unwrap_or_else(|| vec![Sha1, Sha224, Sha256, Sha384, Sha512]);
    let warn = r.warn.clone().unwrap_or_default();
    let mut bad = Vec::new();
    let mut soft = Vec::new();
    let mut seen = Vec::new();
    for x in c.report.certs.iter().filter(|x| !x.self_signed) {
        let name = x.signature_hash.as_str();
        match x.signature_hash {
            Unknown if x.is_rsassa_pss => continue,
            Unknown => bad.push(format!(
                "{} signed with {} (unknown hash)",
                label(x),
                x.signature_algorithm
            )),
            h if !allowed.contains(&h) => bad.push(format!("{} signed with {name}", label(x))),
            h if warn.contains(&h) => soft.push(format!("{} signed with {name}", label(x))),
            _ => {}
        }
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    let allowed_s = allowed
        .iter()
        .map(|h| h.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !bad.is_empty() {
        Finding::Violation(format!("{} (allowed: {allowed_s})", bad.join("; ")))
    } else if !soft.is_empty() {
        Finding::Advisory(format!("{} (discouraged)", soft.join("; ")))
    } else {
        Finding::Pass(format!("signature hashes on the path: {}", seen.join(", ")))
    }
}

/// RSA size limits also apply to the issuers on the presented chain (a 1024-bit intermediate
/// weakens every leaf under it); curves and strict sizes are judged on the leaf only.
fn check_key(c: &Ctx<'_>, r: &super::spec::KeyRule) -> Finding {
    let leaf_finding = check_leaf_key(c.leaf, r);
    let min = r.rsa_min_bits.unwrap_or(1024);
    let warn_below = r.rsa_warn_below.unwrap_or(0);
    let mut bad = Vec::new();
    let mut soft = Vec::new();
    for x in c.report.certs.iter().skip(1) {
        if let KeyAlgorithm::Rsa { bits } = x.key {
            if bits < min {
                bad.push(format!(
                    "issuer {} has an RSA-{bits} key (minimum {min})",
                    label(x)
                ));
            } else if bits < warn_below {
                soft.push(format!(
                    "issuer {} has an RSA-{bits} key ({warn_below} or more recommended)",
                    label(x)
                ));
            }
        }
    }
    match leaf_finding {
        Finding::Violation(m) => {
            bad.insert(0, m);
            Finding::Violation(bad.join("; "))
        }
        _ if !bad.is_empty() => Finding::Violation(bad.join("; ")),
        Finding::Advisory(m) => {
            soft.insert(0, m);
            Finding::Advisory(soft.join("; "))
        }
        f if soft.is_empty() => f,
        _ => Finding::Advisory(soft.join("; ")),
    }
}

fn check_leaf_key(leaf: &CertFacts, r: &super::spec::KeyRule) -> Finding {
    match &leaf.key {
        KeyAlgorithm::Rsa { bits } => {
            let bits = *bits;
            let min = r.rsa_min_bits.unwrap_or(1024);
            let warn_below = r.rsa_warn_below.unwrap_or(0);
            let sizes = r.rsa_sizes.clone().unwrap_or_default();
            if bits < min {
                Finding::Violation(format!(
                    "leaf {} has an RSA-{bits} key (minimum {min})",
                    label(leaf)
                ))
            } else if bits < warn_below {
                Finding::Advisory(format!(
                    "leaf {} has an RSA-{bits} key ({warn_below} or more recommended)",
                    label(leaf)
                ))
            } else if !sizes.is_empty() && !sizes.contains(&bits) {
                Finding::Advisory(format!(
                    "leaf {} has an RSA-{bits} key, not one of the supported sizes {sizes:?}",
                    label(leaf)
                ))
            } else {
                Finding::Pass(format!("RSA-{bits}"))
            }
        }
        KeyAlgorithm::Ec { curve, .. } => {
            let curves = r
                .ec_curves
                .clone()
                .unwrap_or_else(|| vec!["P-256".into(), "P-384".into(), "P-521".into()]);
            if curves.iter().any(|c| c == curve) {
                Finding::Pass(format!("EC {curve}"))
            } else {
                Finding::Violation(format!(
                    "leaf {} has an EC key on curve {curve} (allowed: {})",
                    label(leaf),
                    curves.join(", ")
                ))
            }
        }
        KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => {
            let alg = if matches!(leaf.key, KeyAlgorithm::Ed25519) {
                "Ed25519"
            } else {
                "Ed448"
            };
            if r.allow_eddsa.unwrap_or(false) {
                Finding::Pass(alg.to_string())
            } else {
                Finding::Violation(format!(
                    "leaf {} has an {alg} key (not allowed)",
                    label(leaf)
                ))
            }
        }
        KeyAlgorithm::Other { oid } => Finding::Violation(format!(
            "leaf {} has an unsupported key algorithm {oid}",
            label(leaf)
        )),
    }
}

fn check_eku(c: &Ctx<'_>, r: &super::spec::EkuRule) -> Finding {
    let leaf = c.leaf;
    let mut required: Vec<EkuName> = r
        .require
        .clone()
        .unwrap_or_else(|| vec![EkuName::ServerAuth]);
    let mut not_required = Vec::new();
    for (feature, ekus) in r.require_when.iter().flatten() {
        if feature_on(c.vars, feature) {
            required.extend(ekus.iter().copied());
        } else {
            not_required.push(format!(
                "{} not required: {feature} off",
                ekus.iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !leaf.has_eku {
        if r.only_if_present.unwrap_or(false) {
            return Finding::NotApplicable("leaf has no EKU extension (any usage)".into());
        }
        return Finding::Violation(format!(
            "leaf {} has no EKU extension; required: {}",
            label(leaf),
            required
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let missing: Vec<&str> = required
        .iter()
        .filter(|e| !leaf.eku.iter().any(|x| x == e.as_str()))
        .map(|e| e.as_str())
        .collect();
    if missing.is_empty() {
        let mut m = format!("EKU [{}]", leaf.eku.join(", "));
        if !not_required.is_empty() {
            m.push_str(&format!(" ({})", not_required.join("; ")));
        }
        Finding::Pass(m)
    } else {
        Finding::Violation(format!(
            "leaf {} EKU [{}] lacks {}",
            label(leaf),
            leaf.eku.join(", "),
            missing.join(", ")
        ))
    }
}

fn check_key_usage(leaf: &CertFacts, r: &super::spec::KeyUsageRule) -> Finding {
    if !leaf.has_key_usage {
        return Finding::Violation(format!("leaf {} has no keyUsage extension", label(leaf)));
    }
    let mut p = Vec::new();
    let missing: Vec<&String> = r
        .require
        .iter()
        .flatten()
        .filter(|b| !leaf.key_usage.contains(b))
        .collect();
    if !missing.is_empty() {
        p.push(format!(
            "keyUsage [{}] lacks {}",
            leaf.key_usage.join(", "),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(want) = r.critical {
        if want != leaf.key_usage_critical {
            p.push(format!(
                "keyUsage must {}be critical",
                if want { "" } else { "not " }
            ));
        }
    }
    if p.is_empty() {
        Finding::Pass(format!(
            "keyUsage [{}]{}",
            leaf.key_usage.join(", "),
            if leaf.key_usage_critical {
                " (critical)"
            } else {
                ""
            }
        ))
    } else {
        Finding::Violation(format!("leaf {}: {}", label(leaf), p.join("; ")))
    }
}

fn check_san_required(c: &Ctx<'_>, pats: &[NamePattern]) -> Finding {
    let leaf = c.leaf;
    let mut missing = Vec::new();
    let mut errs = Vec::new();
    let mut checked = 0usize;
    let mut all: Vec<(String, bool)> = Vec::new();
    for p in pats {
        if let Some(w) = p.when() {
            if !feature_on(c.vars, w) {
                continue;
            }
        }
        match names::expand(c.vars, c.ctx, p.pattern()) {
            Ok(v) => all.extend(v.into_iter().map(|n| (n, p.wildcard_ok()))),
            Err(e) => errs.push(e),
        }
    }
    all.extend(c.ctx.expected_names.iter().map(|n| (n.clone(), false)));
    let mut done = std::collections::BTreeSet::new();
    for (name, wildcard_ok) in all {
        if !done.insert(names::normalize(&name)) {
            continue;
        }
        checked += 1;
        match names::coverage(&leaf.san_dns, &name) {
            Coverage::Explicit => {}
            Coverage::Wildcard(_) if wildcard_ok => {}
            Coverage::Wildcard(w) => missing.push(format!("{name} (only covered by wildcard {w})")),
            Coverage::Missing => missing.push(name),
        }
    }
    if missing.is_empty() && errs.is_empty() {
        if checked == 0 {
            Finding::NotApplicable("no SAN entries required".into())
        } else {
            Finding::Pass(format!("all {checked} required name(s) present in the SAN"))
        }
    } else {
        let mut m = Vec::new();
        if !missing.is_empty() {
            m.push(format!(
                "SAN of {} lacks {} (SAN [{}])",
                label(leaf),
                missing.join(", "),
                leaf.san_dns.join(", ")
            ));
        }
        if !errs.is_empty() {
            m.push(format!("cannot build required names: {}", errs.join("; ")));
        }
        Finding::Violation(m.join("; "))
    }
}

fn check_san_wildcard(c: &Ctx<'_>, r: &super::spec::SanWildcardRule) -> Finding {
    let leaf = c.leaf;
    let wild: Vec<&String> = leaf
        .san_dns
        .iter()
        .filter(|s| names::is_wildcard(s))
        .collect();
    if wild.is_empty() {
        return Finding::Pass("no wildcard SAN entry".into());
    }
    let list = wild
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match r.mode.unwrap_or(WildcardMode::Forbid) {
        WildcardMode::Allow => Finding::Pass(format!("wildcard SAN {list} allowed")),
        WildcardMode::Warn => Finding::Advisory(format!(
            "wildcard SAN {list}: allowed for this role but of limited value (not queried)"
        )),
        WildcardMode::Forbid => Finding::Violation(format!(
            "wildcard SAN {list} is not supported for this role"
        )),
        WildcardMode::AllowFor => {
            let mut allowed = Vec::new();
            for p in r.allow_for.iter().flatten() {
                // Unset variables simply contribute no names here.
                if let Ok(v) = names::expand(c.vars, c.ctx, p) {
                    allowed.extend(v);
                }
            }
            let mut p = Vec::new();
            for w in &wild {
                if !allowed.iter().any(|n| names::dns_matches(w, n)) {
                    p.push(format!(
                        "wildcard SAN {w} stands for none of the names wildcards are allowed for"
                    ));
                }
            }
            if let Some(name) = endpoint_name(c) {
                if let Coverage::Wildcard(w) = names::coverage(&leaf.san_dns, &name) {
                    let n = names::normalize(&name);
                    if !allowed.iter().any(|a| names::normalize(a) == n) {
                        p.push(format!(
                            "endpoint name {name} is matched only through wildcard {w}; wildcards are allowed only for simple URLs / lyncdiscover names"
                        ));
                    }
                }
            }
            if p.is_empty() {
                Finding::Pass(format!("wildcard SAN {list} used only for allowed names"))
            } else {
                Finding::Violation(p.join("; "))
            }
        }
    }
}

/// Name patterns whose variables must be set for the rules to be judged: active
/// `san_required` names (their `when` condition holds) and `subject_contains` patterns.
/// (`san_wildcard.allow_for` patterns tolerate unset variables.)
pub fn required_patterns(vars: &Vars, r: &RulesSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = r
        .san_required
        .as_ref()
        .filter(|s| s.severity != Some(Severity::Off))
    {
        for p in s.names.iter().flatten() {
            if p.when().is_none_or(|w| feature_on(vars, w)) {
                out.push(p.pattern().to_string());
            }
        }
    }
    if let Some(s) = r
        .subject_contains
        .as_ref()
        .filter(|s| s.severity != Some(Severity::Off))
    {
        out.extend(s.any_of.iter().flatten().cloned());
    }
    out
}

/// (field path, pattern) for every name pattern in a rules spec.
pub fn patterns_with_paths(r: &RulesSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(s) = &r.san_required {
        for (i, p) in s.names.iter().flatten().enumerate() {
            out.push((format!("san_required.names[{i}]"), p.pattern().to_string()));
        }
    }
    if let Some(s) = &r.san_wildcard {
        for (i, p) in s.allow_for.iter().flatten().enumerate() {
            out.push((format!("san_wildcard.allow_for[{i}]"), p.clone()));
        }
    }
    if let Some(s) = &r.subject_contains {
        for (i, p) in s.any_of.iter().flatten().enumerate() {
            out.push((format!("subject_contains.any_of[{i}]"), p.clone()));
        }
    }
    out
}

/// (field path, feature condition) for every feature reference in a rules spec.
pub fn features_with_paths(r: &RulesSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(s) = &r.san_required {
        for (i, p) in s.names.iter().flatten().enumerate() {
            if let Some(w) = p.when() {
                out.push((format!("san_required.names[{i}].when"), w.to_string()));
            }
        }
    }
    if let Some(e) = &r.eku {
        for k in e.require_when.iter().flatten().map(|(k, _)| k) {
            out.push(("eku.require_when".to_string(), k.clone()));
        }
    }
    out
}

/// `revocation`: nothing on the verified path is revoked, and every status could be obtained.
fn check_revocation(report: &ChainReport) -> Finding {
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
fn check_crl_fresh(report: &ChainReport, now: i64, warn_hours: u32) -> Finding {
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
/// `aia_completes_chain`: the verified path needed no certificate fetched through AIA.
fn check_aia_completes_chain(
    report: &ChainReport,
    aia: &crate::revocation::aia::AiaReport,
) -> Finding {
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

fn check_cdp_ldap_only(report: &ChainReport) -> Finding {
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

/// `srv_target_name`: every required name is an explicit SAN dNSName (Lync matches the SRV
/// target against the SAN; a wildcard entry does not satisfy federation).
fn check_srv_target_name(
    leaf: &CertFacts,
    d: &crate::discovery::Discovered,
    need_sip: bool,
) -> Finding {
    let mut wanted = vec![names::normalize(&d.target)];
    if need_sip {
        let sip = format!("sip.{}", names::normalize(&d.domain));
        if !wanted.contains(&sip) {
            wanted.push(sip);
        }
    }
    let explicit = |n: &str| leaf.san_dns.iter().any(|s| names::normalize(s) == n);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|n| !explicit(n))
        .map(|n| {
            if leaf.san_dns.iter().any(|s| names::dns_matches(s, n)) {
                format!("{n} (only a wildcard covers it)")
            } else {
                n.clone()
            }
        })
        .collect();
    if missing.is_empty() {
        Finding::Pass(format!(
            "the SAN carries {} ({} record {})",
            wanted.join(", "),
            d.record.human(),
            d.query
        ))
    } else {
        Finding::Violation(format!(
            "the {} record {} points at {}, but the SAN [{}] lacks {}: federation partners refuse it",
            d.record.human(),
            d.query,
            d.target,
            leaf.san_dns.join(", "),
            missing.join(", ")
        ))
    }
}

/// `discovery_cname`: the CNAME chain of a discovered host stays inside its SIP domain.
fn check_discovery_cname(d: &crate::discovery::Discovered) -> Finding {
    let domain = names::normalize(&d.domain);
    let inside = |n: &str| {
        let n = names::normalize(n);
        n == domain || n.ends_with(&format!(".{domain}"))
    };
    match d.cnames.iter().find(|n| !inside(n)) {
        None if d.cnames.is_empty() => {
            Finding::Pass(format!("{} is not a CNAME", d.target))
        }
        None => Finding::Pass(format!(
            "CNAME chain {} -> {} stays in {domain}",
            d.target,
            d.cnames.join(" -> ")
        )),
        Some(out) => Finding::Violation(format!(
            "CNAME chain {} -> {} leaves {domain} at {out}: a CNAME into another domain breaks Lync mobile clients' certificate check",
            d.target,
            d.cnames.join(" -> ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_down_so_they_agree_with_the_table() {
        // 9.97 days left: the table's DAYS column says 9, so the message must not say 10.0.
        assert_eq!(days(9 * DAY + DAY * 97 / 100), "9.9 days");
        assert_eq!(days(10 * DAY), "10.0 days");
        assert_eq!(days(DAY / 2), "0.5 days");
        assert_eq!(days(0), "0.0 days");
    }
}
