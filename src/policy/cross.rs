//! Cross-endpoint rules, run after a probing round over plain slices of results:
//! `pool_consistency` (members of a pool present the same certificate or key) and
//! `same_issuer` (e.g. Persistent Chat issued by the same CA as the Front End).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chain::{CertFacts, ChainReport};

use super::rules::label;
use super::spec::PoolMode;
use super::{Policy, RuleVerdict, Severity, Verdict};

/// One probed (endpoint, address) as the cross-endpoint rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub endpoint: &'a str,
    pub address: &'a str,
    pub profile: &'a str,
    pub pool: Option<&'a str>,
    /// None when no chain was captured.
    pub report: Option<&'a ChainReport>,
    /// Set when the address is probed per key type (a dual-certificate server): pool members
    /// are then compared key type by key type.
    pub key_type: Option<crate::probe::KeyType>,
}

impl Member<'_> {
    fn leaf(&self) -> Option<&CertFacts> {
        self.report.and_then(|r| r.leaf())
    }
}

/// Consistency of one (pool, profile) group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolVerdict {
    pub pool: String,
    pub profile: String,
    pub consistent: bool,
    pub mode: PoolMode,
    /// Severity from the profile's `pool_consistency` rule; `info` when the profile has none
    /// (the group is still reported, e.g. for the pool metric).
    pub severity: Severity,
    pub verdict: Verdict,
    /// Members with a parsed leaf that took part.
    pub members: usize,
    /// Distinct certificates (same_cert) or keys (same_spki) seen.
    pub distinct: usize,
    pub detail: String,
}

/// A cross-endpoint verdict for one (endpoint, address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossVerdict {
    pub endpoint: String,
    pub address: String,
    pub verdict: RuleVerdict,
}

fn short(fp: &str) -> &str {
    &fp[..fp.len().min(16)]
}

/// `CN=x (fingerprint prefix)`: how a certificate is named in cross-endpoint messages.
pub fn short_label(c: &CertFacts) -> String {
    format!("{} ({})", label(c), short(&c.fingerprint_sha256))
}

/// Group members by (pool, profile) and check that each group presents one certificate
/// (`same_cert`) or one public key (`same_spki`). Members without a leaf are skipped and named
/// in the detail.
pub fn pool_consistency(policy: &Policy, members: &[Member<'_>]) -> Vec<PoolVerdict> {
    let mut groups: BTreeMap<(String, String), Vec<&Member<'_>>> = BTreeMap::new();
    for m in members {
        if let Some(pool) = m.pool.filter(|p| !p.is_empty()) {
            groups
                .entry((pool.to_string(), m.profile.to_string()))
                .or_default()
                .push(m);
        }
    }
    let mut out = Vec::new();
    for ((pool, profile), ms) in groups {
        let rule = policy
            .profile(&profile)
            .and_then(|p| p.rules.pool_consistency.clone());
        let (mode, severity) = match &rule {
            Some(r) => (
                r.mode.unwrap_or(PoolMode::SameCert),
                r.severity.unwrap_or(Severity::Fail),
            ),
            None => (PoolMode::SameCert, Severity::Info),
        };
        if severity == Severity::Off {
            continue;
        }
        // key -> members presenting it. When a member holds certificates of two key types
        // (probed per type), the comparison is per key type: its RSA certificate is compared
        // with the other members' RSA certificates, not with their ECDSA ones.
        let per_type = ms.iter().any(|m| m.key_type.is_some());
        let mut seen: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for m in &ms {
            match m.leaf() {
                Some(l) => {
                    let key = match mode {
                        PoolMode::SameCert => l.fingerprint_sha256.clone(),
                        PoolMode::SameSpki => l.spki_sha256.clone(),
                    };
                    let kt = if per_type {
                        crate::probe::KeyType::of_key(&l.key).map_or("other", |k| k.as_str())
                    } else {
                        ""
                    };
                    seen.entry((kt, key)).or_default().push(format!(
                        "{}@{} ({})",
                        m.endpoint,
                        m.address,
                        label(l)
                    ));
                }
                None => skipped.push(format!("{}@{}", m.endpoint, m.address)),
            }
        }
        let n: usize = seen.values().map(Vec::len).sum();
        let mut types: Vec<&str> = seen.keys().map(|(t, _)| *t).collect();
        types.dedup();
        let consistent = seen.len() <= types.len().max(1);
        let what = match mode {
            PoolMode::SameCert => "certificate",
            PoolMode::SameSpki => "public key",
        };
        let mut detail = if seen.is_empty() {
            "no member presented a certificate".to_string()
        } else if consistent {
            format!("{n} member address(es) present the same {what}")
        } else {
            let parts: Vec<String> = seen
                .iter()
                .map(|((t, k), v)| {
                    let t = if t.is_empty() {
                        String::new()
                    } else {
                        format!("{t} ")
                    };
                    format!("{t}{} {}: {}", what, short(k), v.join(", "))
                })
                .collect();
            format!("{} different {what}s: {}", seen.len(), parts.join("; "))
        };
        if !skipped.is_empty() {
            detail.push_str(&format!(" (no certificate from {})", skipped.join(", ")));
        }
        let verdict = if seen.is_empty() {
            Verdict::NotApplicable
        } else if consistent || severity == Severity::Info {
            Verdict::Pass
        } else if severity == Severity::Fail {
            Verdict::Fail
        } else {
            Verdict::Warn
        };
        out.push(PoolVerdict {
            pool,
            profile,
            consistent,
            mode,
            severity,
            verdict,
            members: n,
            distinct: seen.len(),
            detail,
        });
    }
    out
}

/// The `pool_consistency` verdict for every member whose profile has the rule (to append to
/// each member's evaluation with [`super::Evaluation::add_verdict`]).
pub fn pool_verdicts_for_members(policy: &Policy, members: &[Member<'_>]) -> Vec<CrossVerdict> {
    let pools = pool_consistency(policy, members);
    let mut out = Vec::new();
    for m in members {
        let Some(pool) = m.pool else { continue };
        if let Some(pv) = pools
            .iter()
            .find(|p| p.pool == pool && p.profile == m.profile && p.severity != Severity::Info)
        {
            out.push(CrossVerdict {
                endpoint: m.endpoint.to_string(),
                address: m.address.to_string(),
                verdict: RuleVerdict {
                    rule: crate::vocab::RuleId::PoolConsistency,
                    severity: pv.severity,
                    verdict: pv.verdict,
                    message: format!("pool {}: {}", pv.pool, pv.detail),
                },
            });
        }
    }
    out
}

/// `same_issuer`: for every member whose profile has a `same_issuer: {profile: P}` rule, its
/// leaf issuer DN (and authority key id, when both carry one) must equal that of a leaf
/// presented by some member using profile `P`.
pub fn same_issuer_as(policy: &Policy, members: &[Member<'_>]) -> Vec<CrossVerdict> {
    let mut out = Vec::new();
    for m in members {
        let Some(rule) = policy
            .profile(m.profile)
            .and_then(|p| p.rules.same_issuer.as_ref())
        else {
            continue;
        };
        let severity = rule.severity.unwrap_or(Severity::Fail);
        let Some(reference) = rule.profile.clone() else {
            continue;
        };
        if severity == Severity::Off {
            continue;
        }
        let mk = |verdict, message: String| CrossVerdict {
            endpoint: m.endpoint.to_string(),
            address: m.address.to_string(),
            verdict: RuleVerdict {
                rule: crate::vocab::RuleId::SameIssuer,
                severity,
                verdict,
                message,
            },
        };
        let Some(leaf) = m.leaf() else {
            out.push(mk(Verdict::NotApplicable, "no certificate captured".into()));
            continue;
        };
        let refs: Vec<(&Member<'_>, &CertFacts)> = members
            .iter()
            .filter(|r| r.profile == reference)
            .filter_map(|r| r.leaf().map(|l| (r, l)))
            .collect();
        if refs.is_empty() {
            out.push(mk(
                Verdict::NotApplicable,
                format!(
                    "no endpoint with profile {reference} presented a certificate to compare with"
                ),
            ));
            continue;
        }
        let same = |l: &CertFacts| {
            l.issuer == leaf.issuer
                && match (&l.authority_key_id, &leaf.authority_key_id) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        };
        if let Some((r, _)) = refs.iter().find(|(_, l)| same(l)) {
            out.push(mk(
                Verdict::Pass,
                format!(
                    "issuer {} matches the {reference} certificate of {}",
                    leaf.issuer, r.endpoint
                ),
            ));
        } else {
            let theirs: Vec<String> = refs
                .iter()
                .map(|(r, l)| {
                    format!(
                        "{}: {}{}",
                        r.endpoint,
                        l.issuer,
                        l.authority_key_id
                            .as_ref()
                            .map(|a| format!(" (AKI {a})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let v = if severity == Severity::Fail {
                Verdict::Fail
            } else if severity == Severity::Warn {
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            out.push(mk(
                v,
                format!(
                    "issuer {}{} differs from the {reference} issuer ({})",
                    leaf.issuer,
                    leaf.authority_key_id
                        .as_ref()
                        .map(|a| format!(" (AKI {a})"))
                        .unwrap_or_default(),
                    theirs.join("; ")
                ),
            ));
        }
    }
    out
}

/// One probed address's OAuth metadata as the pool rule sees it (src/oauth.rs).
#[derive(Debug, Clone, Copy)]
pub struct OAuthMember<'a> {
    pub endpoint: &'a str,
    pub address: &'a str,
    pub pool: Option<&'a str>,
    pub report: &'a crate::oauth::OAuthReport,
}

/// `pool_consistency` of the OAuth certificates: every member of a pool (grouped by pool and
/// OAuth profile) publishes the same *set* of certificates (`same_cert`) or keys (`same_spki`).
/// A roll window is not an inconsistency as long as every member publishes both certificates
/// ({A, B} on each); {A} on one and {B} on another is. Members whose fetch failed are left out
/// and named. Only profiles with a `pool_consistency` rule are judged.
pub fn oauth_pool_consistency(policy: &Policy, members: &[OAuthMember<'_>]) -> Vec<CrossVerdict> {
    let mut groups: BTreeMap<(&str, &str), Vec<&OAuthMember<'_>>> = BTreeMap::new();
    for m in members {
        if let Some(pool) = m.pool.filter(|p| !p.is_empty()) {
            groups
                .entry((pool, m.report.profile.as_str()))
                .or_default()
                .push(m);
        }
    }
    let mut out = Vec::new();
    for ((pool, profile), ms) in groups {
        let Some(rule) = policy
            .profile(profile)
            .and_then(|p| p.rules.pool_consistency.clone())
        else {
            continue;
        };
        let severity = rule.severity.unwrap_or(Severity::Fail);
        if severity == Severity::Off {
            continue;
        }
        let spki = rule.mode == Some(PoolMode::SameSpki);
        let what = if spki { "key" } else { "certificate" };
        let mut sets: BTreeMap<Vec<&str>, Vec<String>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for m in &ms {
            if m.report.certs.is_empty() {
                skipped.push(format!("{}@{}", m.endpoint, m.address));
            } else {
                sets.entry(m.report.key_set(spki))
                    .or_default()
                    .push(format!("{}@{}", m.endpoint, m.address));
            }
        }
        let n: usize = sets.values().map(Vec::len).sum();
        let consistent = sets.len() <= 1;
        let mut detail = if sets.is_empty() {
            "no member published an OAuth certificate".to_string()
        } else if consistent {
            let k = sets.keys().next().map_or(0, Vec::len);
            format!("{n} member address(es) publish the same OAuth {what} set ({k} {what}(s))")
        } else {
            let parts: Vec<String> = sets
                .iter()
                .map(|(set, who)| {
                    let ids: Vec<&str> = set.iter().map(|k| short(k)).collect();
                    format!("{{{}}}: {}", ids.join(", "), who.join(", "))
                })
                .collect();
            format!(
                "{} different OAuth {what} sets: {}",
                sets.len(),
                parts.join("; ")
            )
        };
        if !skipped.is_empty() {
            detail.push_str(&format!(
                " (no OAuth certificate from {})",
                skipped.join(", ")
            ));
        }
        let verdict = if sets.is_empty() {
            Verdict::NotApplicable
        } else if consistent || severity == Severity::Info {
            Verdict::Pass
        } else if severity == Severity::Fail {
            Verdict::Fail
        } else {
            Verdict::Warn
        };
        for m in &ms {
            out.push(CrossVerdict {
                endpoint: m.endpoint.to_string(),
                address: m.address.to_string(),
                verdict: RuleVerdict {
                    rule: crate::vocab::RuleId::PoolConsistency,
                    severity,
                    verdict,
                    message: format!("pool {pool}: {detail}"),
                },
            });
        }
    }
    out
}
