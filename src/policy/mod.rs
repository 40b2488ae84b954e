//! The declarative supported-CA policy: profiles built on a baseline, one verdict per rule, a
//! rolled-up status. Pure: a function of (capture facts, chain report, endpoint context,
//! profile, now).

pub mod cross;
pub mod names;
pub mod presets;
mod rules;
pub mod spec;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::chain::ChainReport;
use crate::probe::Capture;

pub use cross::{pool_consistency, same_issuer_as, CrossVerdict, Member, PoolVerdict};
pub use spec::{PolicySpec, Preset, ProfileSpec, RulesSpec};

pub use crate::vocab::{RuleId, Severity, Status, Verdict};

/// A short human label for a certificate: `CN=x` or the subject DN.
pub fn cert_label(c: &crate::chain::CertFacts) -> String {
    rules::label(c)
}

/// A rule outcome: the rule id (from a closed catalogue, safe as a metric label), the severity
/// it ran with, the verdict, and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RuleVerdict {
    pub rule: RuleId,
    pub severity: Severity,
    pub verdict: Verdict,
    pub message: String,
}

/// The evaluation of one capture under one profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Evaluation {
    pub profile: String,
    pub status: Status,
    pub verdicts: Vec<RuleVerdict>,
    /// Informational notes (issuer class, AD CS inference, ...).
    pub info: Vec<String>,
}

static EVALUATIONS: std::sync::LazyLock<crate::chain::intern::Interner<u64, Evaluation>> =
    std::sync::LazyLock::new(|| {
        crate::chain::intern::Interner::new(
            crate::chain::intern::INTERN_KEYS,
            crate::chain::intern::INTERN_VARIANTS,
        )
    });

/// `evaluation`, shared with every equal evaluation handed out before (process-wide, bounded
/// table; see [`crate::chain::intern`]). Keyed by a hash of the whole value and replaced only by
/// an `==` one, so no reader ever sees another endpoint's verdicts: a hash collision only costs
/// a comparison.
pub fn share_evaluation(evaluation: Evaluation) -> std::sync::Arc<Evaluation> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    evaluation.hash(&mut h);
    EVALUATIONS.share(h.finish(), evaluation)
}

/// What the policy needs to know about the endpoint beyond the capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointContext {
    pub endpoint: String,
    pub host: String,
    pub pool: Option<String>,
    /// The name the client used (SNI or host).
    pub name: Option<String>,
    /// Extra names that must appear in the SAN (from config `expected_names`).
    pub expected_names: Vec<String>,
    /// The endpoint expects the server to require client certificates.
    pub expect_client_auth_required: bool,
    /// A client certificate is configured for the endpoint (ad hoc or in YAML): its rejection
    /// is then judged by `client_cert_accepted` under every profile, at severity fail unless the
    /// profile sets that rule itself.
    pub client_cert_configured: bool,
    /// Set when the endpoint was found by a `discover:` source (the SRV target, the CNAME
    /// chain): the `srv_target_name` and `discovery_cname` rules judge it.
    pub discovered: Option<std::sync::Arc<crate::discovery::Discovered>>,
}

/// One profile with its whole `extends` chain (and preset layers) merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProfile {
    pub name: String,
    pub description: Option<String>,
    /// Ancestors, nearest first.
    pub ancestry: Vec<String>,
    pub rules: RulesSpec,
}

/// A validated, resolved policy: every profile with its baseline applied.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub spec: PolicySpec,
    /// Resolved profiles by name (the built-in `default` included once resolved through
    /// [`Policy::from_spec`]; [`Policy::profile`] falls back to it for `Policy::default()`).
    pub profiles: BTreeMap<String, ResolvedProfile>,
}

impl Policy {
    /// Build from the config's `policy:` section (presets expanded, `extends` resolved). Returns
    /// every problem found, each prefixed with its field path.
    pub fn from_spec(spec: PolicySpec) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        if let Some(v) = spec.version {
            if v != 1 {
                errors.push(format!(
                    "policy.version: unsupported version {v} (supported: 1)"
                ));
            }
        }
        if let (Some(d), Some(f)) = (&spec.vars.director_web_external, &spec.vars.fe_web_external) {
            if names::normalize(d) == names::normalize(f) {
                errors.push(format!(
                    "policy.vars.director_web_external: {d:?} must differ from fe_web_external (D3)"
                ));
            }
        }
        // Layers per profile name: (origin path, spec), lowest first.
        let mut layers: BTreeMap<String, Vec<(String, ProfileSpec)>> = BTreeMap::new();
        for (origin, set) in presets::layers(spec.preset) {
            for (name, p) in set {
                layers.entry(name).or_default().push((origin.clone(), p));
            }
        }
        for (name, p) in &spec.profiles {
            layers
                .entry(name.clone())
                .or_default()
                .push(("policy.profiles".to_string(), p.clone()));
        }
        // Flatten layers: last `extends`/`description` wins, rules merged in order.
        let mut flat: BTreeMap<String, (String, ProfileSpec)> = BTreeMap::new();
        for (name, ls) in &layers {
            let mut merged = ProfileSpec::default();
            let mut origin = String::new();
            for (o, p) in ls {
                if p.extends.is_some() {
                    merged.extends = p.extends.clone();
                }
                if p.description.is_some() {
                    merged.description = p.description.clone();
                }
                merged.rules = merged.rules.merged(&p.rules);
                origin = o.clone();
            }
            flat.insert(name.clone(), (origin, merged));
        }
        let mut profiles = BTreeMap::new();
        for name in flat.keys() {
            let (origin, _) = &flat[name];
            let path = format!("{origin}.{name}");
            let mut chain = vec![name.clone()];
            let mut rules = RulesSpec::default();
            let mut stack = vec![flat[name].1.rules.clone()];
            let mut cur = name.clone();
            let mut ok = true;
            while let Some(parent) = flat[&cur].1.extends.clone() {
                if chain.contains(&parent) {
                    chain.push(parent);
                    errors.push(format!("{path}.extends: cycle {}", chain.join(" -> ")));
                    ok = false;
                    break;
                }
                match flat.get(&parent) {
                    Some((_, p)) => {
                        stack.push(p.rules.clone());
                        chain.push(parent.clone());
                        cur = parent;
                    }
                    None => {
                        // Report unknown extends once, at the profile that names it.
                        if cur == *name {
                            errors.push(format!("{path}.extends: unknown profile {parent:?}"));
                        }
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            for r in stack.iter().rev() {
                rules = rules.merged(r);
            }
            let prof = ResolvedProfile {
                name: name.clone(),
                description: flat[name].1.description.clone(),
                ancestry: chain[1..].to_vec(),
                rules,
            };
            // Validate only what the operator wrote (or inherits); presets are tested.
            if origin == "policy.profiles" || spec.profiles.contains_key(name) {
                validate_rules(
                    &spec,
                    &format!("policy.profiles.{name}.rules"),
                    &prof.rules,
                    &flat,
                    &mut errors,
                );
            }
            profiles.insert(name.clone(), prof);
        }
        if errors.is_empty() {
            Ok(Self { spec, profiles })
        } else {
            errors.sort();
            errors.dedup();
            Err(errors)
        }
    }

    /// Whether a profile name exists (built-in `default`, presets, or configured).
    pub fn has_profile(&self, name: &str) -> bool {
        name == "default" || self.profiles.contains_key(name)
    }

    /// The resolved profile.
    pub fn profile(&self, name: &str) -> Option<&ResolvedProfile> {
        // The built-in default is parsed once per process, not on every lookup (lookups happen
        // several times per probe).
        static BUILTIN_DEFAULT: std::sync::LazyLock<ResolvedProfile> =
            std::sync::LazyLock::new(presets::builtin_default);
        match self.profiles.get(name) {
            Some(p) => Some(p),
            None if name == "default" => Some(&BUILTIN_DEFAULT),
            None => None,
        }
    }

    /// The name check `chain::analyze` should use for an endpoint bound to `profile`: CN
    /// fallback only where the profile's `hostname` rule is `san_or_cn` (Edge internal).
    pub fn name_check(&self, profile: &str, name: &str) -> crate::chain::NameCheck {
        let allow_cn_fallback = self
            .profile(profile)
            .and_then(|p| p.rules.hostname.as_ref())
            .and_then(|h| h.mode)
            == Some(spec::NameMode::SanOrCn);
        crate::chain::NameCheck {
            name: name.to_string(),
            allow_cn_fallback,
        }
    }

    /// Names of every available profile.
    pub fn profile_names(&self) -> Vec<String> {
        let mut v: BTreeSet<String> = self.profiles.keys().cloned().collect();
        v.insert("default".into());
        v.into_iter().collect()
    }

    /// Store names referenced by `trusted.stores` in any profile (for config validation
    /// against the configured stores).
    pub fn referenced_stores(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, p) in &self.profiles {
            if let Some(t) = &p.rules.trusted {
                for s in t.stores.iter().flatten() {
                    out.entry(s.clone()).or_default().push(name.clone());
                }
            }
        }
        out
    }

    /// Variables used without `?` by a profile that are not set in `vars` (endpoint variables
    /// excluded): a config check can warn about them for the profiles actually bound.
    pub fn unset_vars(&self, profile: &str) -> Vec<String> {
        let Some(p) = self.profile(profile) else {
            return Vec::new();
        };
        let ctx = EndpointContext {
            host: "endpoint.invalid".into(),
            name: Some("endpoint.invalid".into()),
            pool: Some("pool.invalid".into()),
            ..Default::default()
        };
        let mut out = BTreeSet::new();
        for pat in rules::required_patterns(&self.spec.vars, &p.rules) {
            if let Err(e) = names::expand(&self.spec.vars, &ctx, &pat) {
                out.insert(e.to_string());
            }
        }
        out.into_iter().collect()
    }
}

fn validate_rules(
    spec: &PolicySpec,
    path: &str,
    r: &RulesSpec,
    profiles: &BTreeMap<String, (String, ProfileSpec)>,
    errors: &mut Vec<String>,
) {
    for (field, pat) in rules::patterns_with_paths(r) {
        if let Err(e) = names::validate_pattern(&spec.vars, &pat) {
            errors.push(format!("{path}.{field}: {e}"));
        }
    }
    for (field, feature) in rules::features_with_paths(r) {
        let f = feature.trim_start_matches('!');
        if spec.vars.features.get(f).is_none() {
            errors.push(format!("{path}.{field}: unknown feature {f:?}"));
        }
    }
    if let Some(e) = &r.expiry {
        if let (Some(w), Some(c)) = (e.warn_days, e.critical_days) {
            if c > w {
                errors.push(format!(
                    "{path}.expiry: critical_days ({c}) is larger than warn_days ({w})"
                ));
            }
        }
    }
    if let Some(k) = &r.key {
        for c in k.ec_curves.iter().flatten() {
            if !matches!(c.as_str(), "P-256" | "P-384" | "P-521") {
                errors.push(format!(
                    "{path}.key.ec_curves: unknown curve {c:?} (known: P-256, P-384, P-521)"
                ));
            }
        }
    }
    if let Some(ku) = &r.key_usage {
        for b in ku.require.iter().flatten() {
            if !rules::KEY_USAGE_BITS.contains(&b.as_str()) {
                errors.push(format!(
                    "{path}.key_usage.require: unknown key usage {b:?} (known: {})",
                    rules::KEY_USAGE_BITS.join(", ")
                ));
            }
        }
    }
    if let Some(p) = r.oauth_metadata.as_ref().and_then(|o| o.profile.as_ref()) {
        if p != "default" && !profiles.contains_key(p) {
            errors.push(format!(
                "{path}.oauth_metadata.profile: unknown profile {p:?}"
            ));
        }
    }
    if let Some(s) = &r.same_issuer {
        match &s.profile {
            None if s.severity != Some(Severity::Off) => {
                errors.push(format!("{path}.same_issuer.profile: required"))
            }
            Some(p) if p != "default" && !profiles.contains_key(p) => {
                errors.push(format!("{path}.same_issuer.profile: unknown profile {p:?}"))
            }
            _ => {}
        }
    }
}

impl Evaluation {
    /// The verdicts that do not pass: failures and warnings, in evaluation order.
    pub fn failing(&self) -> impl Iterator<Item = &RuleVerdict> + '_ {
        self.verdicts
            .iter()
            .filter(|v| matches!(v.verdict, Verdict::Fail | Verdict::Warn))
    }

    /// Append a verdict (e.g. from the cross-endpoint rules) and roll the status up again.
    pub fn add_verdict(&mut self, v: RuleVerdict) {
        self.verdicts.push(v);
        self.status = roll_up(&self.verdicts);
    }

    /// The verdict of a rule, if it ran.
    pub fn verdict(&self, rule: RuleId) -> Option<&RuleVerdict> {
        self.verdicts.iter().find(|v| v.rule == rule)
    }
}

/// Worst rule wins: any fail => Critical, any warn => Warning, else Ok.
pub fn roll_up(verdicts: &[RuleVerdict]) -> Status {
    verdicts.iter().fold(Status::Ok, |acc, v| {
        acc.worst(match v.verdict {
            Verdict::Fail => Status::Critical,
            Verdict::Warn => Status::Warning,
            Verdict::Pass | Verdict::NotApplicable => Status::Ok,
        })
    })
}

/// Evaluate one capture. Pure.
pub fn evaluate(
    policy: &Policy,
    profile: &str,
    capture: &Capture,
    report: &ChainReport,
    ctx: &EndpointContext,
    now: i64,
) -> Evaluation {
    let Some(p) = policy.profile(profile) else {
        return Evaluation {
            profile: profile.to_string(),
            status: Status::Unknown,
            verdicts: Vec::new(),
            info: vec![format!("unknown profile {profile:?}")],
        };
    };
    let (verdicts, info) = rules::run(&policy.spec.vars, &p.rules, capture, report, ctx, now);
    Evaluation {
        profile: profile.to_string(),
        status: roll_up(&verdicts),
        verdicts,
        info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(rule: RuleId, verdict: Verdict) -> RuleVerdict {
        RuleVerdict {
            rule,
            severity: Severity::Fail,
            verdict,
            message: String::new(),
        }
    }

    #[test]
    fn worst_rule_wins() {
        assert_eq!(roll_up(&[]), Status::Ok);
        assert_eq!(
            roll_up(&[
                v(RuleId::Trusted, Verdict::Pass),
                v(RuleId::Expiry, Verdict::NotApplicable)
            ]),
            Status::Ok
        );
        assert_eq!(
            roll_up(&[
                v(RuleId::Trusted, Verdict::Warn),
                v(RuleId::Expiry, Verdict::Pass)
            ]),
            Status::Warning
        );
        assert_eq!(
            roll_up(&[
                v(RuleId::Trusted, Verdict::Warn),
                v(RuleId::Expiry, Verdict::Fail)
            ]),
            Status::Critical
        );
    }

    #[test]
    fn director_external_web_fqdn_must_differ_from_the_front_end() {
        let spec = PolicySpec {
            vars: spec::Vars {
                fe_web_external: Some("webext.contoso.com".into()),
                director_web_external: Some("WebExt.contoso.com.".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            Policy::from_spec(spec).unwrap_err(),
            vec!["policy.vars.director_web_external: \"WebExt.contoso.com.\" must differ from fe_web_external (D3)"]
        );
    }

    #[test]
    fn tls_versions_parse_from_rustls_and_openssl_spellings() {
        use crate::vocab::TlsVersion::{self, *};
        for (s, want) in [
            ("TLSv1.3", Tls13),
            ("tls1.2", Tls12),
            ("1.1", Tls11),
            ("TLSv1", Tls10),
            ("SSLv3", Ssl3),
        ] {
            assert_eq!(TlsVersion::from_name(s), Some(want), "{s}");
        }
        assert_eq!(TlsVersion::from_name("QUIC"), None);
    }

    #[test]
    fn equal_evaluations_are_one_copy_and_unequal_ones_are_never_merged() {
        let ev = |msg: &str| Evaluation {
            profile: "share_test".into(),
            status: Status::Ok,
            verdicts: vec![RuleVerdict {
                rule: RuleId::ALL[0],
                severity: Severity::Fail,
                verdict: Verdict::Pass,
                message: msg.into(),
            }],
            info: vec![],
        };
        let a = share_evaluation(ev("chain verified by internal"));
        let b = share_evaluation(ev("chain verified by internal"));
        assert!(
            std::sync::Arc::ptr_eq(&a, &b),
            "equal evaluations share one Arc"
        );
        let c = share_evaluation(ev("chain verified by public"));
        assert!(!std::sync::Arc::ptr_eq(&a, &c));
        assert_eq!(c.verdicts[0].message, "chain verified by public");
        assert_eq!(a.verdicts[0].message, "chain verified by internal");
    }
}
