//! Rules about algorithms and usages: signature hashes, RSASSA-PSS, keys, EKU and keyUsage.

use crate::chain::{CertFacts, KeyAlgorithm, SignatureHash};
use crate::policy::spec::{BasicRule, EkuName, EkuRule, KeyRule, KeyUsageRule, SignatureHashRule};

use super::{feature_on, label, Ctx, Finding};

/// `signature_hash`: every non-root certificate is signed with an allowed hash.
pub(super) fn signature_hash(c: &Ctx<'_>, r: &SignatureHashRule) -> Finding {
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

/// `rsassa_pss`: no RSASSA-PSS signature (unsupported by Lync) anywhere on the chain.
pub(super) fn rsassa_pss(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let pss: Vec<String> = c
        .report
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
}

/// `key`: the leaf's key algorithm and size. RSA size limits also apply to the issuers on the presented chain (a 1024-bit intermediate
/// weakens every leaf under it); curves and strict sizes are judged on the leaf only.
pub(super) fn key(c: &Ctx<'_>, r: &KeyRule) -> Finding {
    let leaf_finding = leaf_key(c.leaf, r);
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

fn leaf_key(leaf: &CertFacts, r: &KeyRule) -> Finding {
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

/// `eku`: the leaf carries the required extended key usages (per feature, too).
pub(super) fn eku(c: &Ctx<'_>, r: &EkuRule) -> Finding {
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

/// `eku_critical`: the EKU extension is not marked critical.
pub(super) fn eku_critical(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let leaf = c.leaf;
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
}

/// `key_usage`: the leaf's keyUsage bits and criticality.
pub(super) fn key_usage(c: &Ctx<'_>, r: &KeyUsageRule) -> Finding {
    let leaf = c.leaf;
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
