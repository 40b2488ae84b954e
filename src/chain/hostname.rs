//! Hostname verification with RFC 6125 wildcard semantics.

use std::net::IpAddr;

use serde::Serialize;

use super::facts::CertFacts;

/// What name to check and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCheck {
    /// DNS name or IP literal the client used (SNI / expected name).
    pub name: String,
    /// Allow falling back to the subject CN when the certificate has no SAN extension (Edge
    /// internal profile only).
    pub allow_cn_fallback: bool,
}

/// Result of matching a name against a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostnameMatch {
    pub name: String,
    pub matched: bool,
    /// The SAN entry (or `CN=...`) that matched.
    pub matched_by: Option<String>,
    /// Matched only through a wildcard.
    pub via_wildcard: bool,
    /// Matched only through the CN fallback.
    pub via_cn: bool,
}

/// Match `check.name` against the leaf's SANs (and CN where allowed).
///
/// RFC 6125: case-insensitive, a trailing dot is ignored, a wildcard is only honoured as the
/// entire left-most label of a presented DNS name with at least two labels after it
/// (`*.example.com`), matches exactly one label, and never matches the bare parent. IP literals
/// match only IP SANs, never wildcards or the CN.
pub fn match_hostname(leaf: &CertFacts, check: &NameCheck) -> HostnameMatch {
    let mut out = HostnameMatch {
        name: check.name.clone(),
        matched: false,
        matched_by: None,
        via_wildcard: false,
        via_cn: false,
    };
    let wanted = check.name.trim();
    // IP literal (optionally bracketed IPv6).
    let ip_text = wanted
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(wanted);
    if let Ok(ip) = ip_text.parse::<IpAddr>() {
        for san in &leaf.san_ip {
            if san.parse::<IpAddr>().ok() == Some(ip) {
                out.matched = true;
                out.matched_by = Some(san.clone());
                return out;
            }
        }
        return out;
    }
    let Some(host) = normalize_reference(wanted) else {
        return out;
    };
    // Exact matches win over wildcards.
    for san in &leaf.san_dns {
        if let Some(p) = normalize_presented(san) {
            if !p.starts_with("*.") && p == host {
                out.matched = true;
                out.matched_by = Some(san.clone());
                return out;
            }
        }
    }
    for san in &leaf.san_dns {
        if let Some(p) = normalize_presented(san) {
            if wildcard_matches(&p, &host) {
                out.matched = true;
                out.matched_by = Some(san.clone());
                out.via_wildcard = true;
                return out;
            }
        }
    }
    if check.allow_cn_fallback && leaf.san_dns.is_empty() {
        if let Some(cn) = &leaf.subject_cn {
            if let Some(p) = normalize_presented(cn) {
                let exact = !p.starts_with("*.") && p == host;
                let wild = wildcard_matches(&p, &host);
                if exact || wild {
                    out.matched = true;
                    out.matched_by = Some(format!("CN={cn}"));
                    out.via_cn = true;
                    out.via_wildcard = wild;
                }
            }
        }
    }
    out
}

/// Lower-case, strip one trailing dot; None for names that can never match (empty labels).
fn normalize_reference(name: &str) -> Option<String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.split('.').any(str::is_empty) || n.contains('*') {
        return None;
    }
    Some(n.to_ascii_lowercase())
}

fn normalize_presented(name: &str) -> Option<String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.split('.').any(str::is_empty) {
        return None;
    }
    Some(n.to_ascii_lowercase())
}

/// `pattern` is normalized; only `*.<at least two labels>` is a wildcard.
fn wildcard_matches(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    // No further wildcards, and at least two labels under the wildcard (no `*.com`).
    if suffix.contains('*') || !suffix.contains('.') {
        return false;
    }
    match host.split_once('.') {
        Some((first, rest)) => !first.is_empty() && rest == suffix,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::facts::{AdcsExtensions, KeyAlgorithm, SignatureHash};
    use proptest::prelude::*;

    fn leaf(dns: &[&str], ips: &[&str], cn: Option<&str>) -> CertFacts {
        CertFacts {
            subject: String::new(),
            subject_cn: cn.map(str::to_string),
            issuer: String::new(),
            issuer_cn: None,
            serial: "01".into(),
            fingerprint_sha256: String::new(),
            spki_sha256: String::new(),
            not_before: 0,
            not_after: 0,
            san_dns: dns.iter().map(|s| s.to_string()).collect(),
            san_ip: ips.iter().map(|s| s.to_string()).collect(),
            has_san_extension: !dns.is_empty() || !ips.is_empty(),
            key: KeyAlgorithm::Ed25519,
            signature_oid: String::new(),
            signature_algorithm: String::new(),
            signature_hash: SignatureHash::Sha256,
            is_rsassa_pss: false,
            is_ca: false,
            path_len: None,
            self_signed: false,
            key_usage: vec![],
            key_usage_critical: false,
            has_key_usage: false,
            eku: vec![],
            eku_critical: false,
            has_eku: false,
            crl_distribution_points: vec![],
            ocsp_urls: vec![],
            ca_issuers_urls: vec![],
            certificate_policies: vec![],
            subject_key_id: None,
            authority_key_id: None,
            adcs: AdcsExtensions::default(),
            version: 3,
            unknown_critical_extensions: vec![],
            has_name_constraints: false,
            spki_der: vec![],
            subject_der: vec![],
            issuer_der: vec![],
        }
    }

    fn check(name: &str) -> NameCheck {
        NameCheck {
            name: name.into(),
            allow_cn_fallback: false,
        }
    }

    fn cn_check(name: &str) -> NameCheck {
        NameCheck {
            name: name.into(),
            allow_cn_fallback: true,
        }
    }

    #[test]
    fn exact_names_match_case_insensitively_and_ignore_a_trailing_dot() {
        let l = leaf(&["Pool.Contoso.com"], &[], None);
        let m = match_hostname(&l, &check("pool.contoso.COM."));
        assert!(m.matched && !m.via_wildcard && !m.via_cn);
        assert_eq!(m.matched_by.as_deref(), Some("Pool.Contoso.com"));
    }

    #[test]
    fn a_wildcard_matches_exactly_one_left_most_label() {
        let l = leaf(&["*.contoso.com"], &[], None);
        let m = match_hostname(&l, &check("meet.contoso.com"));
        assert!(m.matched && m.via_wildcard);
        assert!(!match_hostname(&l, &check("a.meet.contoso.com")).matched);
        assert!(!match_hostname(&l, &check("contoso.com")).matched);
    }

    #[test]
    fn partial_label_and_non_left_most_wildcards_never_match() {
        let l = leaf(&["f*.contoso.com", "www.*.com", "*.com"], &[], None);
        assert!(!match_hostname(&l, &check("foo.contoso.com")).matched);
        assert!(!match_hostname(&l, &check("www.contoso.com")).matched);
        assert!(!match_hostname(&l, &check("contoso.com")).matched);
    }

    #[test]
    fn ip_names_match_only_ip_sans() {
        let l = leaf(&["127.0.0.1", "*.0.0.1"], &["::1"], Some("127.0.0.1"));
        assert!(!match_hostname(&l, &cn_check("127.0.0.1")).matched);
        let m = match_hostname(&l, &check("::1"));
        assert!(m.matched);
        assert!(match_hostname(&l, &check("[0:0::1]")).matched);
    }

    #[test]
    fn cn_fallback_only_when_allowed_and_no_dns_san() {
        let cn_only = leaf(&[], &[], Some("edge.contoso.com"));
        assert!(!match_hostname(&cn_only, &check("edge.contoso.com")).matched);
        let m = match_hostname(&cn_only, &cn_check("edge.contoso.com"));
        assert!(m.matched && m.via_cn);
        assert_eq!(m.matched_by.as_deref(), Some("CN=edge.contoso.com"));
        let with_san = leaf(&["other.contoso.com"], &[], Some("edge.contoso.com"));
        assert!(!match_hostname(&with_san, &cn_check("edge.contoso.com")).matched);
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9-]{0,8}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn a_wildcard_never_matches_a_name_with_a_different_label_count(
            base in prop::collection::vec(label(), 2..4),
            host in prop::collection::vec(label(), 1..7),
        ) {
            let pattern = format!("*.{}", base.join("."));
            let l = leaf(&[&pattern], &[], None);
            let m = match_hostname(&l, &check(&host.join(".")));
            if host.len() != base.len() + 1 {
                prop_assert!(!m.matched);
            }
        }

        #[test]
        fn exact_names_always_match_themselves(labels in prop::collection::vec(label(), 1..6)) {
            let name = labels.join(".");
            let l = leaf(&[&name], &[], None);
            let m = match_hostname(&l, &check(&name));
            prop_assert!(m.matched);
            prop_assert!(!m.via_wildcard);
        }

        /// `*.<base>` matches exactly the names made of one extra label in front of `<base>`:
        /// the star never spans a dot, never matches the bare parent and never stands for a
        /// label further right. Hosts are either random or built as `<label>.<base>` (the
        /// positive case), and the CN fallback (the widest path) is allowed.
        #[test]
        fn a_wildcard_matches_iff_it_replaces_exactly_the_left_most_label(
            base in prop::collection::vec(label(), 2..4),
            first in prop::collection::vec(label(), 0..3),
            random in prop::collection::vec(label(), 1..7),
            use_random in any::<bool>(),
            in_cn in any::<bool>(),
        ) {
            let pattern = format!("*.{}", base.join("."));
            let host: Vec<String> = if use_random {
                random
            } else {
                first.iter().chain(base.iter()).cloned().collect()
            };
            let l = if in_cn {
                leaf(&[], &[], Some(&pattern))
            } else {
                leaf(&[&pattern], &[], None)
            };
            let m = match_hostname(&l, &cn_check(&host.join(".")));
            let expected = host.len() == base.len() + 1 && host[1..] == base[..];
            prop_assert_eq!(m.matched, expected, "{} vs {}", pattern, host.join("."));
            prop_assert_eq!(m.via_wildcard, expected);
            prop_assert_eq!(m.via_cn, expected && in_cn);
        }

        /// A star anywhere but as the whole left-most label (`f*.a.b`, `*f.a.b`, `a.*.b`,
        /// `a.b.*`, `a.f*.b`) never matches anything, not even the name it would "obviously"
        /// stand for.
        #[test]
        fn stars_other_than_the_whole_left_most_label_never_match(
            labels in prop::collection::vec(label(), 3..6),
            at in any::<prop::sample::Index>(),
            form in 0usize..3,
            random in prop::collection::vec(label(), 1..7),
        ) {
            let i = at.index(labels.len());
            let mut presented = labels.clone();
            presented[i] = match form {
                0 if i > 0 => "*".to_string(),
                0 | 1 => format!("{}*", labels[i]),
                _ => format!("*{}", labels[i]),
            };
            let pattern = presented.join(".");
            let l = leaf(&[&pattern], &[], None);
            for host in [labels.join("."), random.join(".")] {
                let m = match_hostname(&l, &check(&host));
                prop_assert!(!m.matched, "{} matched {}", pattern, host);
            }
        }

        /// Matching ignores ASCII case on either side and one trailing dot on the reference.
        #[test]
        fn matching_ignores_case_and_a_trailing_dot(
            labels in prop::collection::vec(label(), 2..5),
            flips in prop::collection::vec(any::<bool>(), 64),
            dot in any::<bool>(),
            wildcard in any::<bool>(),
        ) {
            let name = labels.join(".");
            let mut mixed: String = name
                .chars()
                .zip(flips.iter().cycle())
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            if dot {
                mixed.push('.');
            }
            let presented = if wildcard {
                format!("*.{}", labels[1..].join(".").to_ascii_uppercase())
            } else {
                name.to_ascii_uppercase()
            };
            let l = leaf(&[&presented], &[], None);
            let m = match_hostname(&l, &check(&mixed));
            let wildcard_applies = wildcard && labels.len() >= 3;
            prop_assert_eq!(m.matched, !wildcard || wildcard_applies, "{} vs {}", presented, mixed);
        }
    }
}
