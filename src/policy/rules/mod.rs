//! The rule catalogue: one pure function per rule, all behind one signature.
//!
//! A rule is `fn(&Ctx, &S) -> Finding`, where `S` is the rule's own settings from the profile
//! (a [`RuleSpec`]: `BasicRule` for rules without parameters). [`run`] is the catalogue's
//! table: in catalogue order, each rule id, where its settings are found (and the settings it
//! is implied with when the profile does not name it), and its function. The severity is
//! applied in one place ([`apply`]).
//!
//! The rules live by subject:
//! - [`chain`]: reachable, trusted, issuer_class, chain_hygiene, aia_completes_chain;
//! - [`lifetime`]: validity, expiry, max_validity, intermediate_expiry;
//! - [`crypto`]: signature_hash, rsassa_pss, key, eku, eku_critical, key_usage;
//! - [`revocation`]: crl_dp, revocation, crl_fresh, cdp_ldap_only;
//! - [`identity`]: hostname, san_required, subject_in_san, subject_contains, cn_wildcard,
//!   san_wildcard, srv_target_name, discovery_cname;
//! - [`session`]: tls_version, mtls_enforced, client_cert_accepted, handshake_signature.

mod chain;
mod crypto;
mod identity;
mod lifetime;
mod revocation;
mod session;

use crate::chain::{CertFacts, ChainReport};
use crate::probe::Capture;

use super::spec::{BasicRule, RuleSpec, RulesSpec, SanRequiredRule, SrvTargetNameRule, Vars};
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

/// Everything a rule may read: the evaluation's inputs and the parsed leaf.
struct Ctx<'a> {
    vars: &'a Vars,
    /// The whole profile (a rule may depend on whether another one is active).
    rules: &'a RulesSpec,
    capture: &'a Capture,
    report: &'a ChainReport,
    ctx: &'a EndpointContext,
    leaf: &'a CertFacts,
    now: i64,
    /// The probe's failure, `reason: detail`, when the handshake failed.
    failure: Option<String>,
}

/// One rule's function: the finding for its settings `S`.
type Check<S> = fn(&Ctx<'_>, &S) -> Finding;

/// The verdicts judged so far and the informational notes.
struct Judged {
    out: Vec<RuleVerdict>,
    info: Vec<String>,
}

impl Judged {
    /// Judge rule `id` when the profile has settings for it (`spec`) and its severity is not
    /// `off`.
    fn rule<S: RuleSpec>(&mut self, c: &Ctx<'_>, id: RuleId, spec: Option<&S>, check: Check<S>) {
        let Some(spec) = spec else { return };
        let sev = severity_of(spec);
        if sev != Severity::Off {
            let f = check(c, spec);
            self.out.push(apply(id, sev, f, &mut self.info));
        }
    }
}

fn severity_of<S: RuleSpec>(spec: &S) -> Severity {
    spec.severity().unwrap_or(Severity::Fail)
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
    let failure = capture
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", f.reason, f.detail));
    // reachable: without a parseable leaf nothing else can be judged; always a failure.
    let Some(leaf) = report.leaf() else {
        let verdict = RuleVerdict {
            rule: RuleId::Reachable,
            severity: rules.reachable.as_ref().map_or(Severity::Fail, severity_of),
            verdict: Verdict::Fail,
            message: chain::unreachable_message(capture, report, failure.as_deref()),
        };
        return (vec![verdict], Vec::new());
    };
    let c = Ctx {
        vars,
        rules,
        capture,
        report,
        ctx,
        leaf,
        now,
        failure,
    };
    let mut j = Judged {
        out: Vec::new(),
        info: chain::notes(report),
    };
    let r = rules;
    j.rule(
        &c,
        RuleId::Reachable,
        r.reachable.as_ref(),
        chain::reachable,
    );
    j.rule(&c, RuleId::Trusted, r.trusted.as_ref(), chain::trusted);
    j.rule(
        &c,
        RuleId::IssuerClass,
        r.issuer_class.as_ref(),
        chain::issuer_class,
    );
    j.rule(
        &c,
        RuleId::Hostname,
        r.hostname.as_ref(),
        identity::hostname,
    );
    j.rule(
        &c,
        RuleId::Validity,
        r.validity.as_ref(),
        lifetime::validity,
    );
    j.rule(&c, RuleId::Expiry, r.expiry.as_ref(), lifetime::expiry);
    j.rule(
        &c,
        RuleId::MaxValidity,
        r.max_validity.as_ref(),
        lifetime::max_validity,
    );
    j.rule(
        &c,
        RuleId::SignatureHash,
        r.signature_hash.as_ref(),
        crypto::signature_hash,
    );
    j.rule(
        &c,
        RuleId::RsassaPss,
        r.rsassa_pss.as_ref(),
        crypto::rsassa_pss,
    );
    j.rule(&c, RuleId::Key, r.key.as_ref(), crypto::key);
    j.rule(&c, RuleId::Eku, r.eku.as_ref(), crypto::eku);
    j.rule(
        &c,
        RuleId::EkuCritical,
        r.eku_critical.as_ref(),
        crypto::eku_critical,
    );
    j.rule(
        &c,
        RuleId::KeyUsage,
        r.key_usage.as_ref(),
        crypto::key_usage,
    );
    j.rule(&c, RuleId::CrlDp, r.crl_dp.as_ref(), revocation::crl_dp);
    // Revocation is judged only when the runner fetched for it (method not `off`): a pure
    // evaluation without fetched CRLs (benches, `--at` replays of stored captures) gives no
    // revocation verdict rather than a misleading one.
    if report.revocation.is_some() {
        j.rule(
            &c,
            RuleId::Revocation,
            r.revocation.as_ref(),
            revocation::revocation,
        );
        j.rule(
            &c,
            RuleId::CrlFresh,
            r.crl_fresh.as_ref(),
            revocation::crl_fresh,
        );
    }
    j.rule(
        &c,
        RuleId::CdpLdapOnly,
        r.cdp_ldap_only.as_ref(),
        revocation::cdp_ldap_only,
    );
    // The endpoint's own `expected_names` are checked (severity fail) even when the profile
    // has no `san_required` rule.
    let implied_san = SanRequiredRule::default();
    let san_required = r
        .san_required
        .as_ref()
        .or((!ctx.expected_names.is_empty()).then_some(&implied_san));
    j.rule(
        &c,
        RuleId::SanRequired,
        san_required,
        identity::san_required,
    );
    j.rule(
        &c,
        RuleId::SubjectInSan,
        r.subject_in_san.as_ref(),
        identity::subject_in_san,
    );
    j.rule(
        &c,
        RuleId::SubjectContains,
        r.subject_contains.as_ref(),
        identity::subject_contains,
    );
    j.rule(
        &c,
        RuleId::CnWildcard,
        r.cn_wildcard.as_ref(),
        identity::cn_wildcard,
    );
    j.rule(
        &c,
        RuleId::SanWildcard,
        r.san_wildcard.as_ref(),
        identity::san_wildcard,
    );
    // Discovered endpoints: the SRV target (and the partner's sip.<domain>) in the SAN for SRV
    // records, the CNAME chain for host records. Implied for discovered endpoints (fail and
    // warn) unless the profile sets the rule (`off` included).
    if let Some(d) = ctx.discovered.as_deref() {
        let implied_srv = SrvTargetNameRule::default();
        let implied_cname = BasicRule {
            severity: Some(Severity::Warn),
        };
        if d.record.is_host() {
            let spec = r.discovery_cname.as_ref().unwrap_or(&implied_cname);
            j.rule(
                &c,
                RuleId::DiscoveryCname,
                Some(spec),
                identity::discovery_cname,
            );
        } else {
            let spec = r.srv_target_name.as_ref().unwrap_or(&implied_srv);
            j.rule(
                &c,
                RuleId::SrvTargetName,
                Some(spec),
                identity::srv_target_name,
            );
        }
    }
    j.rule(
        &c,
        RuleId::TlsVersion,
        r.tls_version.as_ref(),
        session::tls_version,
    );
    j.rule(
        &c,
        RuleId::MtlsEnforced,
        r.mtls_enforced.as_ref(),
        session::mtls_enforced,
    );
    // Whoever configures a client certificate expects its rejection to be an error: the rule
    // is part of every profile then (the profile's own setting, `off` included, wins).
    let implied_client_cert = BasicRule::default();
    let client_cert = r
        .client_cert_accepted
        .as_ref()
        .or(ctx.client_cert_configured.then_some(&implied_client_cert));
    j.rule(
        &c,
        RuleId::ClientCertAccepted,
        client_cert,
        session::client_cert_accepted,
    );
    j.rule(
        &c,
        RuleId::HandshakeSignature,
        r.handshake_signature.as_ref(),
        session::handshake_signature,
    );
    j.rule(
        &c,
        RuleId::ChainHygiene,
        r.chain_hygiene.as_ref(),
        chain::chain_hygiene,
    );
    // Judged only when the runner chased AIA for this chain (the chain was incomplete and
    // `revocation.aia_hosts` names the hosts it may fetch from).
    if report.aia.is_some() {
        j.rule(
            &c,
            RuleId::AiaCompletesChain,
            r.aia_completes_chain.as_ref(),
            chain::aia_completes_chain,
        );
    }
    j.rule(
        &c,
        RuleId::IntermediateExpiry,
        r.intermediate_expiry.as_ref(),
        lifetime::intermediate_expiry,
    );
    (j.out, j.info)
}

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
