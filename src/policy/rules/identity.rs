//! Rules about names: the hostname, required SAN entries, the subject, wildcards, and the
//! names DNS discovery requires (SRV target, CNAME chain).

use crate::chain::{match_hostname, NameCheck};
use crate::discovery::DiscoveryRecord;
use crate::policy::names::{self, Coverage};
use crate::policy::spec::{
    BasicRule, HostnameRule, NameMode, NamePattern, SanRequiredRule, SanWildcardRule,
    SrvTargetNameRule, SubjectContainsRule, WildcardMode,
};

use super::{endpoint_name, feature_on, label, Ctx, Finding};

/// `hostname`: the name the client uses matches the leaf (SAN, or CN when allowed).
pub(super) fn hostname(c: &Ctx<'_>, r: &HostnameRule) -> Finding {
    let mode = r.mode.unwrap_or(NameMode::San);
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

/// `san_required`: every required name (and the endpoint's `expected_names`) is an explicit
/// SAN entry, or covered by a wildcard where the pattern allows it.
pub(super) fn san_required(c: &Ctx<'_>, r: &SanRequiredRule) -> Finding {
    let pats: &[NamePattern] = r.names.as_deref().unwrap_or(&[]);
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
            Err(e) => errs.push(e.to_string()),
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

/// `subject_in_san`: the subject CN is repeated in the SAN.
pub(super) fn subject_in_san(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let leaf = c.leaf;
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
}

/// `subject_contains`: the subject DN contains one of the configured names.
pub(super) fn subject_contains(c: &Ctx<'_>, r: &SubjectContainsRule) -> Finding {
    let leaf = c.leaf;
    let mut wanted = Vec::new();
    let mut errs = Vec::new();
    for p in r.any_of.iter().flatten() {
        match names::expand(c.vars, c.ctx, p) {
            Ok(v) => wanted.extend(v),
            Err(e) => errs.push(e.to_string()),
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

/// `cn_wildcard`: no wildcard in the subject CN.
pub(super) fn cn_wildcard(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    match &c.leaf.subject_cn {
        Some(cn) if cn.contains('*') => Finding::Violation(format!(
            "wildcard in the subject CN {cn} (not supported for any role)"
        )),
        Some(cn) => Finding::Pass(format!("subject CN {cn} has no wildcard")),
        None => Finding::NotApplicable("leaf has no subject CN".into()),
    }
}

/// `san_wildcard`: wildcard SAN entries are allowed, discouraged, forbidden, or allowed only
/// for named names.
pub(super) fn san_wildcard(c: &Ctx<'_>, r: &SanWildcardRule) -> Finding {
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

/// `srv_target_name`: every required name is an explicit SAN dNSName (Lync matches the SRV
/// target against the SAN; a wildcard entry does not satisfy federation).
pub(super) fn srv_target_name(c: &Ctx<'_>, r: &SrvTargetNameRule) -> Finding {
    let leaf = c.leaf;
    let Some(d) = c.ctx.discovered.as_deref() else {
        return Finding::NotApplicable("not a discovered endpoint".into());
    };
    let need_sip = d
        .require_sip_domain
        .or(r.require_sip_domain)
        .unwrap_or(false)
        && d.record == DiscoveryRecord::SipFederationTls;
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
pub(super) fn discovery_cname(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let Some(d) = c.ctx.discovered.as_deref() else {
        return Finding::NotApplicable("not a discovered endpoint".into());
    };
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
