//! The `policy:` section: parsing, preset/extends resolution, every validation message, the
//! JSON schema, and property tests of the pure evaluator.

use certprobe::chain::{
    analyze, ChainReport, IssuerClass, NameCheck, StoreClass, TrustStore, TrustStores,
};
use certprobe::policy::names::dns_matches;
use certprobe::policy::spec::{ExpiryRule, RulesSpec};
use certprobe::policy::{
    evaluate, EndpointContext, Policy, PolicySpec, ProfileSpec, Severity, Status, Verdict,
};
use certprobe::probe::Capture;
use proptest::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls_pki_types::UnixTime;

fn parse(yaml: &str) -> Result<PolicySpec, String> {
    serde_saphyr::from_str::<PolicySpec>(yaml).map_err(|e| e.to_string())
}

fn errors(yaml: &str) -> Vec<String> {
    Policy::from_spec(parse(yaml).unwrap()).expect_err("expected validation errors")
}

#[test]
fn lync2013_preset_provides_every_role_profile_on_the_baseline() {
    let p = Policy::from_spec(parse("preset: lync2013\n").unwrap()).unwrap();
    let roles = [
        "fe_default",
        "fe_web_internal",
        "fe_web_external",
        "director",
        "director_web_external",
        "mediation",
        "sba",
        "persistent_chat",
        "edge_external",
        "edge_internal",
        "reverse_proxy",
        "oauth_token_issuer",
        "federation_partner",
    ];
    for r in roles {
        let prof = p
            .profile(r)
            .cloned()
            .unwrap_or_else(|| panic!("{r} missing"));
        assert_eq!(prof.ancestry, vec!["lync2013_baseline".to_string()], "{r}");
        assert!(prof.rules.crl_dp.is_some(), "{r} inherits the baseline");
    }
    let mut names = p.profile_names();
    names.retain(|n| !roles.contains(&n.as_str()));
    // `default` and `oauth` (OAuth metadata certificates) are built in.
    assert_eq!(names, vec!["default", "lync2013_baseline", "oauth"]);
    for web in ["fe_web_internal", "fe_web_external"] {
        let o = p
            .profile(web)
            .unwrap()
            .rules
            .oauth_metadata
            .clone()
            .unwrap();
        assert_eq!(o.profile.as_deref(), Some("oauth_token_issuer"), "{web}");
    }
    assert!(p
        .profile("fe_default")
        .unwrap()
        .rules
        .oauth_metadata
        .is_none());
    assert!(
        p.name_check("edge_internal", "lsedge.contoso.net")
            .allow_cn_fallback
    );
    assert!(
        !p.name_check("edge_external", "sip.contoso.com")
            .allow_cn_fallback
    );
    assert!(!p.name_check("default", "x").allow_cn_fallback);
    // Conflicts resolved by severity with the documented default.
    let ei = p.profile("edge_internal").cloned().unwrap().rules;
    assert_eq!(ei.cn_wildcard.unwrap().severity, Some(Severity::Warn));
    let oauth = p.profile("oauth_token_issuer").cloned().unwrap().rules;
    assert_eq!(oauth.key.as_ref().unwrap().rsa_min_bits, Some(2048));
    assert_eq!(oauth.key.unwrap().severity, None, "fail by default (D10)");
    assert_eq!(
        oauth.subject_contains.unwrap().severity,
        Some(Severity::Warn),
        "D10 vs D16"
    );
}

#[test]
fn hardened_preset_overrides_the_baseline_for_every_role() {
    let p = Policy::from_spec(parse("preset: lync2013-hardened\n").unwrap()).unwrap();
    for r in ["fe_default", "edge_external", "director"] {
        let rules = p.profile(r).cloned().unwrap().rules;
        assert_eq!(rules.key.unwrap().rsa_min_bits, Some(2048), "{r}");
        let tls = rules.tls_version.unwrap();
        assert_eq!(tls.severity, Some(Severity::Warn));
    }
}

#[test]
fn operator_profiles_layer_on_presets_and_extend_them() {
    let p = Policy::from_spec(
        parse(
            "preset: lync2013
profiles:
  edge_external:
    rules:
      san_wildcard: { severity: warn }
  my_edge:
    extends: edge_external
    description: mine
    rules:
      expiry: { warn_days: 60 }
",
        )
        .unwrap(),
    )
    .unwrap();
    let e = p.profile("edge_external").cloned().unwrap().rules;
    let w = e.san_wildcard.unwrap();
    assert_eq!(w.severity, Some(Severity::Warn));
    assert!(w.mode.is_some(), "preset mode kept under the override");
    let m = p.profile("my_edge").cloned().unwrap();
    assert_eq!(m.ancestry, vec!["edge_external", "lync2013_baseline"]);
    assert_eq!(m.description.as_deref(), Some("mine"));
    let ex = m.rules.expiry.unwrap();
    assert_eq!((ex.warn_days, ex.critical_days), (Some(60), Some(7)));
    assert_eq!(m.rules.san_wildcard.unwrap().severity, Some(Severity::Warn));
}

#[test]
fn every_problem_is_reported_with_its_field_path() {
    let errs = errors(
        r#"version: 2
vars:
  sip_domains: [contoso.com]
profiles:
  a:
    extends: b
  b:
    extends: a
  edge_x:
    extends: edge_y
  bad:
    rules:
      san_required:
        names: ["${nope}", "sip.${sip_domains[*]}", { name: "x.${sip_domains}", when: aol }]
      san_wildcard: { mode: allow_for, allow_for: ["${fe_pool"] }
      expiry: { warn_days: 5, critical_days: 10 }
      key: { ec_curves: [P-256, secp256k1] }
      key_usage: { require: [digital_signature, sign_everything] }
      eku: { require_when: { unknown_feature: [client_auth] } }
      same_issuer: { profile: missing }
"#,
    );
    assert_eq!(
        errs,
        vec![
            "policy.profiles.a.extends: cycle a -> b -> a",
            "policy.profiles.b.extends: cycle b -> a -> b",
            "policy.profiles.bad.rules.eku.require_when: unknown feature \"unknown_feature\"",
            "policy.profiles.bad.rules.expiry: critical_days (10) is larger than warn_days (5)",
            "policy.profiles.bad.rules.key.ec_curves: unknown curve \"secp256k1\" (known: P-256, P-384, P-521)",
            "policy.profiles.bad.rules.key_usage.require: unknown key usage \"sign_everything\" (known: digital_signature, non_repudiation, key_encipherment, data_encipherment, key_agreement, key_cert_sign, crl_sign, encipher_only, decipher_only)",
            "policy.profiles.bad.rules.same_issuer.profile: unknown profile \"missing\"",
            "policy.profiles.bad.rules.san_required.names[0]: unknown variable ${nope} in pattern \"${nope}\"",
            "policy.profiles.bad.rules.san_required.names[2].when: unknown feature \"aol\"",
            "policy.profiles.bad.rules.san_wildcard.allow_for[0]: unterminated \"${\" in pattern \"${fe_pool\"",
            "policy.profiles.edge_x.extends: unknown profile \"edge_y\"",
            "policy.version: unsupported version 2 (supported: 1)",
        ]
    );
}

#[test]
fn unknown_rules_and_rule_parameters_are_rejected_by_the_parser() {
    let e = parse("profiles:\n  p:\n    rules:\n      expiry: { warn_dayz: 3 }\n").unwrap_err();
    assert!(
        e.contains("unknown field") && e.contains("warn_dayz"),
        "{e}"
    );
    let e = parse("profiles:\n  p:\n    rules:\n      no_such_rule: {}\n").unwrap_err();
    assert!(e.contains("no_such_rule"), "{e}");
    let e = parse("profiles:\n  p:\n    rules:\n      crl_dp: { severity: fatal }\n").unwrap_err();
    assert!(e.contains("fatal"), "{e}");
    let e = parse("preset: lync2010\n").unwrap_err();
    assert!(e.contains("lync2010"), "{e}");
}

#[test]
fn the_json_schema_documents_the_policy_section() {
    let schema = schemars::schema_for!(PolicySpec);
    let text = serde_json::to_string(&schema).unwrap();
    for needle in [
        "lync2013-hardened",
        "sip_domains",
        "public_im_aol",
        "wildcard_ok",
        "san_or_cn",
        "same_spki",
        "Warn when expiring within this many days",
    ] {
        assert!(text.contains(needle), "schema lacks {needle}");
    }
}

#[test]
fn unset_variables_are_listed_per_profile() {
    let p = Policy::from_spec(
        parse("preset: lync2013\nvars:\n  sip_domains: [contoso.com]\n").unwrap(),
    )
    .unwrap();
    assert_eq!(
        p.unset_vars("edge_external"),
        vec![
            "variable ${edge_access_fqdn} is not set",
            "variable ${edge_webconf_fqdn} is not set"
        ]
    );
    assert!(p.unset_vars("edge_internal").is_empty());
}

#[test]
fn rule_ids_are_unique_snake_case_label_values() {
    let mut seen = std::collections::BTreeSet::new();
    for id in certprobe::vocab::RuleId::NAMES {
        assert!(
            id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{id}"
        );
        assert!(seen.insert(id), "duplicate {id}");
    }
}

// === properties ===

const NOW: i64 = 1_800_000_000;

fn base_report() -> (Capture, ChainReport) {
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "Prop Root");
    cp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(cp, KeyPair::generate().unwrap()).unwrap();
    let mut lp = CertificateParams::new(vec!["app.example.org".to_string()]).unwrap();
    lp.distinguished_name
        .push(DnType::CommonName, "app.example.org");
    let leaf = lp.signed_by(&KeyPair::generate().unwrap(), &root).unwrap();
    let chain = vec![leaf.der().clone()];
    let stores = TrustStores {
        stores: vec![TrustStore::from_bundle(
            "internal",
            StoreClass::Internal,
            vec![root.der().clone()],
        )
        .unwrap()],
    };
    let r = analyze(
        &chain,
        Some(&NameCheck {
            name: "app.example.org".into(),
            allow_cn_fallback: false,
        }),
        &stores,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64)),
    );
    let mut cap = Capture::new(
        "127.0.0.1:443".parse().unwrap(),
        Some("app.example.org".into()),
    );
    cap.chain = chain;
    (cap, r)
}

fn expiry_policy(warn: u32, crit: u32) -> Policy {
    let mut spec = PolicySpec::default();
    spec.profiles.insert(
        "p".into(),
        ProfileSpec {
            rules: RulesSpec {
                expiry: Some(ExpiryRule {
                    warn_days: Some(warn),
                    critical_days: Some(crit),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    Policy::from_spec(spec).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// An expiry finding exists iff now + window > notAfter, for each window.
    #[test]
    fn expiry_finding_iff_now_plus_window_exceeds_not_after(
        left in -10 * 86_400i64..120 * 86_400,
        crit in 0u32..20,
        extra in 0u32..60,
    ) {
        static BASE: std::sync::OnceLock<(Capture, ChainReport)> = std::sync::OnceLock::new();
        let (cap, base) = BASE.get_or_init(base_report);
        let warn = crit + extra;
        let mut r = base.clone();
        let not_after = NOW + left;
        r.certs[0].not_after = not_after;
        r.best_path_not_after = Some(not_after);
        r.issuer_class = IssuerClass::Internal;
        let p = expiry_policy(warn, crit);
        let e = evaluate(&p, "p", cap, &r, &EndpointContext::default(), NOW);
        let v = e.verdict(certprobe::vocab::RuleId::Expiry).unwrap().verdict;
        let critical = NOW + i64::from(crit) * 86_400 > not_after || left <= 0;
        let warning = NOW + i64::from(warn) * 86_400 > not_after;
        let expected = if critical { Verdict::Fail } else if warning { Verdict::Warn } else { Verdict::Pass };
        prop_assert_eq!(v, expected);
        let status = match expected { Verdict::Fail => Status::Critical, Verdict::Warn => Status::Warning, _ => Status::Ok };
        prop_assert_eq!(e.status, status);
    }

    /// A wildcard stands for exactly one non-empty left-most label.
    #[test]
    fn wildcard_never_crosses_a_label(
        labels in proptest::collection::vec("[a-z0-9]{1,8}", 1..4),
        base in "[a-z]{1,8}\\.(com|net|org)",
    ) {
        let name = format!("{}.{base}", labels.join("."));
        let m = dns_matches(&format!("*.{base}"), &name);
        prop_assert_eq!(m, labels.len() == 1);
    }
}

#[test]
fn the_shipped_example_policy_parses_and_validates() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        policy: PolicySpec,
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policy-lync2013.example.yaml"
    ))
    .unwrap();
    let f: File = serde_saphyr::from_str(&text).unwrap();
    let p = Policy::from_spec(f.policy).unwrap();
    let admin = p.profile("admin_portal").cloned().unwrap();
    assert_eq!(admin.ancestry, vec!["lync2013_baseline"]);
    assert_eq!(admin.rules.expiry.unwrap().warn_days, Some(45));
    for r in [
        "fe_default",
        "edge_external",
        "reverse_proxy",
        "oauth_token_issuer",
    ] {
        assert!(p.unset_vars(r).is_empty(), "{r}: {:?}", p.unset_vars(r));
    }
}
