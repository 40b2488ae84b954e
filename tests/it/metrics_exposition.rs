//! The metrics exposition: promtool-clean, exact parsed values, series replacement and removal.

use crate::metrics_common;

use std::collections::HashSet;

use certprobe::daemon::metrics::{BuildInfo, Metrics};
use certprobe::policy::{Severity, Status, Verdict};
use certprobe::probe::{Failure, FailureReason};
use metrics_common::*;

fn build() -> BuildInfo {
    BuildInfo {
        version: "0.1.0".into(),
        revision: "abc123".into(),
    }
}

/// Several endpoints: healthy, refused, MTLS, legacy TLS 1.0, plus pools and self-metrics.
fn realistic() -> Metrics {
    let m = Metrics::new(build());
    m.set_config_reload(true, NOW);
    m.set_target_counts(4, 5);
    m.set_scheduler_lag(0.25);
    m.inc_scheduler_behind();
    m.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    m.record(&ok_outcome("web", "127.0.0.2:443", "aaaaaaaa"));
    m.record(&refused_outcome("fe1", "127.0.0.3:443"));
    m.record(&mtls_outcome("edge", "127.0.0.4:443"));
    m.record(&legacy_outcome("fe2", "127.0.0.5:5061"));
    m.record_pools(&[("fe-pool".into(), false), ("edge-pool".into(), true)]);
    m
}

#[test]
fn promtool_accepts_realistic_exposition_without_lint_findings() {
    let text = realistic().render_text();
    let (ok, out) = promtool_check(&text);
    assert!(ok, "promtool failed:\n{out}\n---\n{text}");
    assert_eq!(out.trim(), "", "promtool lint findings:\n{out}");
}

#[test]
fn every_family_has_help_and_type() {
    let text = realistic().render_text();
    let e = parse(&text);
    for s in &e.samples {
        let typed = |suffix: &str, ty: &str| {
            s.name
                .strip_suffix(suffix)
                .filter(|f| e.types.get(*f).map(String::as_str) == Some(ty))
        };
        let family = typed("_total", "counter")
            .or_else(|| typed("_bucket", "histogram"))
            .or_else(|| typed("_sum", "histogram"))
            .or_else(|| typed("_count", "histogram"))
            .unwrap_or(&s.name);
        let family = if e.types.contains_key(family) {
            family
        } else {
            &s.name
        };
        assert!(
            e.help.get(family).is_some_and(|h| !h.is_empty()),
            "no HELP for {}",
            s.name
        );
        assert!(e.types.contains_key(family), "no TYPE for {}", s.name);
        assert!(s.name.starts_with("certprobe_"), "unprefixed {}", s.name);
    }
}

#[test]
fn exact_values_of_a_healthy_endpoint() {
    let e = parse(&realistic().render_text());
    let base = [
        ("endpoint", "web"),
        ("address", "127.0.0.1:443"),
        ("role", "web"),
        ("pool", ""),
        ("team", "pki"),
    ];
    assert_eq!(e.value("certprobe_probe_success", &base), 1.0);
    assert_eq!(
        e.count("certprobe_probe_failure", &[("endpoint", "web")]),
        0
    );
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    assert!(
        (e.value(
            "certprobe_probe_duration_seconds",
            &with(&[("phase", "connect")])
        ) - 0.002)
            .abs()
            < 1e-12
    );
    assert!(
        (e.value(
            "certprobe_probe_duration_seconds",
            &with(&[("phase", "handshake")])
        ) - 0.008)
            .abs()
            < 1e-12
    );
    assert!(
        (e.value(
            "certprobe_probe_duration_seconds",
            &with(&[("phase", "total")])
        ) - 0.010)
            .abs()
            < 1e-12
    );
    assert_eq!(
        e.value("certprobe_last_probe_timestamp_seconds", &base),
        NOW
    );
    assert_eq!(
        e.value(
            "certprobe_tls_version_info",
            &with(&[("version", "TLSv1.3")])
        ),
        1.0
    );
    assert_eq!(
        e.value(
            "certprobe_tls_cipher_info",
            &with(&[("cipher", "TLS13_AES_256_GCM_SHA384")])
        ),
        1.0
    );
    assert_eq!(e.value("certprobe_legacy_tls", &base), 0.0);
    assert_eq!(e.value("certprobe_handshake_signature_weak", &base), 0.0);
    assert_eq!(
        e.value(
            "certprobe_cert_not_after_timestamp_seconds",
            &with(&[("position", "0")])
        ),
        1_900_000_000.0
    );
    assert_eq!(
        e.value(
            "certprobe_cert_not_after_timestamp_seconds",
            &with(&[("position", "1")])
        ),
        2_000_000_000.0
    );
    assert_eq!(
        e.value(
            "certprobe_cert_not_before_timestamp_seconds",
            &with(&[("position", "0")])
        ),
        (1_900_000_000 - 365 * 86400) as f64
    );
    let info = e.find("certprobe_cert_info", &with(&[("position", "0")]));
    assert_eq!(info.len(), 1);
    let l = &info[0].labels;
    assert_eq!(l["subject_cn"], "web.corp.example");
    assert_eq!(l["issuer_cn"], "Corp Issuing CA");
    assert_eq!(l["fingerprint_sha256"], "aaaaaaaa");
    assert_eq!(l["serial"], "01:aa");
    assert_eq!(l["signature_algorithm"], "sha256WithRSAEncryption");
    assert_eq!(l["key_algorithm"], "rsa");
    assert_eq!(l["key_bits"], "2048");
    assert_eq!(info[0].value, 1.0);
    let inter = e.find("certprobe_cert_info", &with(&[("position", "1")]));
    assert_eq!(inter[0].labels["key_algorithm"], "ec");
    assert_eq!(inter[0].labels["key_bits"], "256");
    assert_eq!(
        e.value(
            "certprobe_chain_verified",
            &with(&[("store", "enterprise")])
        ),
        1.0
    );
    assert_eq!(
        e.value("certprobe_chain_verified", &with(&[("store", "public")])),
        0.0
    );
    assert_eq!(
        e.value(
            "certprobe_chain_verify_error",
            &with(&[("store", "public"), ("error", "unknown_issuer")])
        ),
        1.0
    );
    assert_eq!(
        e.count(
            "certprobe_chain_verify_error",
            &with(&[("store", "enterprise")])
        ),
        0
    );
    assert_eq!(
        e.value("certprobe_chain_expiry_timestamp_seconds", &base),
        1_900_000_000.0
    );
    assert_eq!(e.value("certprobe_hostname_match", &base), 1.0);
    assert_eq!(e.value("certprobe_chain_order_valid", &base), 1.0);
    assert_eq!(e.value("certprobe_chain_complete", &base), 1.0);
    assert_eq!(e.value("certprobe_policy_status", &base), 0.0);
    assert_eq!(
        e.value(
            "certprobe_policy_rule_failed",
            &with(&[
                ("profile", "web"),
                ("rule", "signature_hash"),
                ("severity", "fail")
            ])
        ),
        0.0
    );
    // not_applicable rules are absent.
    assert_eq!(
        e.count("certprobe_policy_rule_failed", &with(&[("rule", "crl_dp")])),
        0
    );
    assert_eq!(e.count("certprobe_policy_rule_failed", &base), 2);
    assert_eq!(
        e.value("certprobe_leaf_changed_timestamp_seconds", &base),
        NOW
    );
    assert_eq!(e.count("certprobe_mtls_enforced", &base), 0);
    assert_eq!(
        e.count("certprobe_client_cert_not_after_timestamp_seconds", &base),
        0
    );
}

#[test]
fn failed_mtls_and_legacy_endpoints() {
    let e = parse(&realistic().render_text());
    let fe1 = [
        ("endpoint", "fe1"),
        ("address", "127.0.0.3:443"),
        ("role", "default"),
        ("pool", "fe-pool"),
    ];
    assert_eq!(e.value("certprobe_probe_success", &fe1), 0.0);
    let failures = e.find("certprobe_probe_failure", &fe1);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].labels["reason"], "connect_refused");
    assert_eq!(failures[0].labels["alert"], "");
    assert_eq!(failures[0].value, 1.0);
    // Raw error text never becomes a label value.
    assert!(e
        .samples
        .iter()
        .all(|s| s.labels.values().all(|v| !v.contains("os error"))));
    assert_eq!(
        e.count("certprobe_cert_not_after_timestamp_seconds", &fe1),
        0
    );
    assert_eq!(e.count("certprobe_tls_version_info", &fe1), 0);
    assert_eq!(
        e.count(
            "certprobe_probe_duration_seconds",
            &[("endpoint", "fe1"), ("phase", "handshake")]
        ),
        0
    );
    assert_eq!(e.value("certprobe_policy_status", &fe1), 3.0);

    let edge = [
        ("endpoint", "edge"),
        ("role", "lync_edge"),
        ("pool", "edge-pool"),
    ];
    assert_eq!(e.value("certprobe_mtls_enforced", &edge), 1.0);
    assert_eq!(
        e.value("certprobe_client_cert_not_after_timestamp_seconds", &edge),
        1_850_000_000.0
    );
    assert_eq!(e.value("certprobe_client_auth_requested", &edge), 1.0);
    assert_eq!(e.value("certprobe_client_cert_accepted", &edge), 1.0);
    assert_eq!(e.value("certprobe_policy_status", &edge), 1.0);
    assert_eq!(
        e.value(
            "certprobe_policy_rule_failed",
            &[
                ("endpoint", "edge"),
                ("rule", "client_cert_accepted"),
                ("severity", "warn")
            ]
        ),
        1.0
    );

    let fe2 = [
        ("endpoint", "fe2"),
        ("address", "127.0.0.5:5061"),
        ("role", "lync_front_end"),
    ];
    assert_eq!(e.value("certprobe_legacy_tls", &fe2), 1.0);
    assert_eq!(
        e.value(
            "certprobe_tls_version_info",
            &[("endpoint", "fe2"), ("version", "TLSv1.0")]
        ),
        1.0
    );
    assert_eq!(
        e.value(
            "certprobe_probe_failure",
            &[
                ("endpoint", "fe2"),
                ("reason", "protocol_version"),
                ("alert", "protocol_version")
            ]
        ),
        1.0
    );
    assert_eq!(e.value("certprobe_chain_weak_signature_hash", &fe2), 1.0);
    assert_eq!(e.value("certprobe_chain_complete", &fe2), 0.0);
    assert_eq!(
        e.value(
            "certprobe_chain_verify_error",
            &[
                ("endpoint", "fe2"),
                ("store", "enterprise"),
                ("error", "expired")
            ]
        ),
        1.0
    );
    // No store verified: no chain expiry.
    assert_eq!(e.count("certprobe_chain_expiry_timestamp_seconds", &fe2), 0);
    assert_eq!(
        e.value(
            "certprobe_cert_info",
            &[("endpoint", "fe2"), ("key_bits", "1024")]
        ),
        1.0
    );
    assert_eq!(e.value("certprobe_policy_status", &fe2), 2.0);
    assert_eq!(
        e.count(
            "certprobe_policy_rule_failed",
            &[("endpoint", "fe2"), ("severity", "fail")]
        ),
        2
    );

    assert_eq!(
        e.value("certprobe_pool_consistent", &[("pool", "fe-pool")]),
        0.0
    );
    assert_eq!(
        e.value("certprobe_pool_consistent", &[("pool", "edge-pool")]),
        1.0
    );
}

/// `certprobe_build_info{revision}` is the commit the binary was built from (it said `unknown`
/// in every build: the metrics read a variable build.rs never set).
#[test]
fn build_info_revision_is_the_git_commit() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let head = std::process::Command::new("git")
        .args(["-C", dir, "rev-parse", "--short=12", "HEAD"])
        .output()
        .expect("git runs");
    assert!(head.status.success(), "the tests run from a git checkout");
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    let info = certprobe::daemon::metrics::BuildInfo::from_build_env();
    assert_eq!(info.revision, head);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn self_metrics() {
    let e = parse(&realistic().render_text());
    assert_eq!(
        e.value(
            "certprobe_build_info",
            &[("version", "0.1.0"), ("revision", "abc123")]
        ),
        1.0
    );
    assert_eq!(e.value("certprobe_config_last_reload_successful", &[]), 1.0);
    assert_eq!(
        e.value(
            "certprobe_config_last_reload_success_timestamp_seconds",
            &[]
        ),
        NOW
    );
    // 5 outcomes recorded: 2 web + edge succeed; fe1 and fe2 failed.
    assert_eq!(
        e.value("certprobe_probes_total", &[("result", "success")]),
        3.0
    );
    assert_eq!(
        e.value("certprobe_probes_total", &[("result", "failure")]),
        2.0
    );
    assert_eq!(e.types["certprobe_probes_total"], "counter");
    assert_eq!(e.value("certprobe_scheduler_lag_seconds", &[]), 0.25);
    assert_eq!(e.value("certprobe_scheduler_behind_total", &[]), 1.0);
    assert_eq!(e.value("certprobe_endpoints", &[]), 4.0);
    assert_eq!(e.value("certprobe_addresses", &[]), 5.0);
}

#[test]
fn failed_reload_keeps_last_success_timestamp() {
    let m = Metrics::new(build());
    m.set_config_reload(true, 100.0);
    m.set_config_reload(false, 200.0);
    let e = parse(&m.render_text());
    assert_eq!(e.value("certprobe_config_last_reload_successful", &[]), 0.0);
    assert_eq!(
        e.value(
            "certprobe_config_last_reload_success_timestamp_seconds",
            &[]
        ),
        100.0
    );
}

#[test]
fn changed_failure_reason_leaves_only_the_new_reason() {
    let m = Metrics::new(build());
    m.record(&refused_outcome("fe1", "127.0.0.3:443"));
    let mut o = refused_outcome("fe1", "127.0.0.3:443");
    o.capture.failure = Some(Failure::new(FailureReason::ConnectTimeout, "timed out"));
    o.finished_at = NOW + 60.0;
    m.record(&o);
    let e = parse(&m.render_text());
    let f = e.find("certprobe_probe_failure", &[("endpoint", "fe1")]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].labels["reason"], "connect_timeout");
    // Recovery removes the failure series entirely.
    let mut ok = ok_outcome("fe1", "127.0.0.3:443", "aaaaaaaa");
    ok.target = o.target.clone();
    m.record(&ok);
    let e = parse(&m.render_text());
    assert_eq!(
        e.count("certprobe_probe_failure", &[("endpoint", "fe1")]),
        0
    );
    assert_eq!(
        e.value("certprobe_probe_success", &[("endpoint", "fe1")]),
        1.0
    );
}

#[test]
fn changed_labels_replace_old_series() {
    let m = Metrics::new(build());
    m.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    let mut o = ok_outcome("web", "127.0.0.1:443", "eeeeeeee");
    o.capture.tls_version = certprobe::vocab::TlsVersion::from_name("TLSv1.2");
    o.capture.cipher_suite = Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into());
    std::sync::Arc::make_mut(o.report.as_mut().unwrap())
        .certs
        .truncate(1);
    o.finished_at = NOW + 300.0;
    m.record(&o);
    let e = parse(&m.render_text());
    let w = [("endpoint", "web")];
    let versions = e.find("certprobe_tls_version_info", &w);
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].labels["version"], "TLSv1.2");
    assert_eq!(e.count("certprobe_tls_cipher_info", &w), 1);
    assert_eq!(e.count("certprobe_cert_info", &w), 1);
    assert_eq!(e.count("certprobe_cert_not_after_timestamp_seconds", &w), 1);
    assert_eq!(
        e.find("certprobe_cert_info", &w)[0].labels["fingerprint_sha256"],
        "eeeeeeee"
    );
    // The leaf changed: its timestamp moves to this probe.
    assert_eq!(
        e.value("certprobe_leaf_changed_timestamp_seconds", &w),
        NOW + 300.0
    );
}

#[test]
fn leaf_changed_keeps_first_seen_time_while_unchanged() {
    let m = Metrics::new(build());
    m.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    for i in 1..4 {
        let mut o = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa");
        o.finished_at = NOW + 60.0 * f64::from(i);
        m.record(&o);
    }
    let e = parse(&m.render_text());
    assert_eq!(
        e.value(
            "certprobe_leaf_changed_timestamp_seconds",
            &[("endpoint", "web")]
        ),
        NOW
    );
    assert_eq!(
        e.value(
            "certprobe_last_probe_timestamp_seconds",
            &[("endpoint", "web")]
        ),
        NOW + 180.0
    );
}

#[test]
fn failure_without_chain_keeps_last_certificate_facts_with_their_time() {
    let m = Metrics::new(build());
    m.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    let mut down = refused_outcome("web", "127.0.0.1:443");
    down.target = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa").target;
    down.finished_at = NOW + 60.0;
    m.record(&down);
    let e = parse(&m.render_text());
    let w = [("endpoint", "web")];
    assert_eq!(e.value("certprobe_probe_success", &w), 0.0);
    assert_eq!(
        e.value(
            "certprobe_cert_not_after_timestamp_seconds",
            &[("endpoint", "web"), ("position", "0")]
        ),
        1_900_000_000.0
    );
    assert_eq!(e.value("certprobe_cert_facts_timestamp_seconds", &w), NOW);
    assert_eq!(
        e.value("certprobe_last_probe_timestamp_seconds", &w),
        NOW + 60.0
    );
    assert_eq!(e.value("certprobe_leaf_changed_timestamp_seconds", &w), NOW);
    assert_eq!(e.count("certprobe_tls_version_info", &w), 0);
}

#[test]
fn reload_removal_makes_series_disappear() {
    let m = realistic();
    let before = parse(&m.render_text());
    assert!(before.count("certprobe_probe_success", &[("endpoint", "edge")]) == 1);
    // Reload removed `edge`; DNS dropped web's second address.
    let keep: HashSet<(String, String)> = [
        ("web", "127.0.0.1:443"),
        ("fe1", "127.0.0.3:443"),
        ("fe2", "127.0.0.5:5061"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    m.retain_targets(&keep);
    m.record_pools(&[("fe-pool".into(), true)]);
    let e = parse(&m.render_text());
    assert!(e
        .samples
        .iter()
        .all(|s| s.labels.get("endpoint").map(String::as_str) != Some("edge")));
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "web")]),
        1
    );
    assert_eq!(
        e.count("certprobe_probe_success", &[("address", "127.0.0.2:443")]),
        0
    );
    assert_eq!(e.count("certprobe_pool_consistent", &[]), 1);
    assert_eq!(
        e.value("certprobe_pool_consistent", &[("pool", "fe-pool")]),
        1.0
    );
    assert_eq!(m.target_counts(), (3, 3));
    // Removing one address of an endpoint (DNS no longer returns it) leaves the others.
    m.record(&legacy_outcome("web", "127.0.0.9:443"));
    assert_eq!(m.target_counts(), (3, 4));
    m.remove_targets("web", &["127.0.0.9:443".to_string()]);
    assert_eq!(m.target_counts(), (3, 3));
    m.remove_endpoint("fe2");
    assert_eq!(m.target_counts(), (2, 2));
    let e = parse(&m.render_text());
    assert_eq!(e.count("certprobe_probe_success", &[]), 2);
    assert!(e
        .samples
        .iter()
        .all(|s| s.labels.get("endpoint").map(String::as_str) != Some("fe2")));
    // Removed entirely: leaf history is gone too, so a re-added endpoint starts fresh.
    let mut again = legacy_outcome("fe2", "127.0.0.5:5061");
    again.finished_at = NOW + 999.0;
    m.record(&again);
    let e = parse(&m.render_text());
    assert_eq!(
        e.value(
            "certprobe_leaf_changed_timestamp_seconds",
            &[("endpoint", "fe2")]
        ),
        NOW + 999.0
    );
    let (ok, out) = promtool_check(&m.render_text());
    assert!(ok && out.trim().is_empty(), "{out}");
}

#[test]
fn configured_labels_are_rendered_and_reserved_ones_dropped() {
    let m = Metrics::new(build());
    let mut o = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa");
    let labels = &mut std::sync::Arc::make_mut(&mut o.target).labels;
    labels.insert("site".into(), "oslo \"dc1\"\nrow".into());
    labels.insert("reason".into(), "clash".into());
    labels.insert("__meta".into(), "x".into());
    labels.insert("bad-name".into(), "x".into());
    m.record(&o);
    let text = m.render_text();
    let e = parse(&text);
    let s = e.find("certprobe_probe_success", &[("endpoint", "web")]);
    assert_eq!(s.len(), 1);
    let keys: Vec<&str> = s[0].labels.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["address", "endpoint", "pool", "role", "site", "team"]
    );
    assert_eq!(s[0].labels["site"], "oslo \"dc1\"\nrow");
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "{out}");
}

#[test]
fn openmetrics_rendering_parses_and_ends_with_eof() {
    let m = realistic();
    let text = m.render_openmetrics();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let e = parse(&text);
    assert_eq!(
        e.value("certprobe_probe_success", &[("endpoint", "fe1")]),
        0.0
    );
    assert_eq!(
        e.value("certprobe_probes_total", &[("result", "success")]),
        3.0
    );
    assert_eq!(e.types["certprobe_probes"], "counter");
}

#[test]
fn render_outcomes_contains_only_the_given_outcomes_and_does_not_record() {
    let m = realistic();
    let fresh = {
        let mut o = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa");
        o.finished_at = NOW + 10.0;
        o
    };
    let text = m.render_outcomes(std::slice::from_ref(&fresh), false);
    let e = parse(&text);
    assert!(e
        .samples
        .iter()
        .all(|s| s.labels.get("endpoint").map(String::as_str) == Some("web")));
    assert_eq!(e.count("certprobe_probe_success", &[]), 1);
    assert_eq!(
        e.value("certprobe_last_probe_timestamp_seconds", &[]),
        NOW + 10.0
    );
    // Same leaf as recorded: first-seen time comes from the daemon's history.
    assert_eq!(
        e.value("certprobe_leaf_changed_timestamp_seconds", &[]),
        NOW
    );
    assert_eq!(e.count("certprobe_probes_total", &[]), 0);
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "{out}");
    // The daemon's state is unchanged.
    let main = parse(&m.render_text());
    assert_eq!(
        main.value(
            "certprobe_last_probe_timestamp_seconds",
            &[("address", "127.0.0.1:443")]
        ),
        NOW
    );
    assert_eq!(
        main.value("certprobe_probes_total", &[("result", "success")]),
        3.0
    );
    let om = m.render_outcomes(std::slice::from_ref(&fresh), true);
    assert!(om.ends_with("# EOF\n"));
}

#[test]
fn empty_registry_is_valid() {
    let m = Metrics::new(build());
    let text = m.render_text();
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "{out}\n{text}");
    let e = parse(&text);
    assert_eq!(
        e.value("certprobe_probes_total", &[("result", "failure")]),
        0.0
    );
    assert_eq!(e.count("certprobe_probe_success", &[]), 0);
}

#[test]
fn pool_series_follow_the_latest_set_of_pools() {
    // Consistency itself is judged by policy::cross::pool_consistency (tests/it/policy_cases.rs);
    // the registry only mirrors the set it is given.
    let m = Metrics::new(build());
    m.record_pools(&[
        ("fe-pool".to_string(), true),
        ("edge-pool".to_string(), false),
    ]);
    let e = parse(&m.render_text());
    assert_eq!(
        e.value("certprobe_pool_consistent", &[("pool", "fe-pool")]),
        1.0
    );
    assert_eq!(
        e.value("certprobe_pool_consistent", &[("pool", "edge-pool")]),
        0.0
    );
    m.record_pools(&[("fe-pool".to_string(), false)]);
    let e = parse(&m.render_text());
    assert_eq!(
        e.value("certprobe_pool_consistent", &[("pool", "fe-pool")]),
        0.0
    );
    assert_eq!(
        e.count("certprobe_pool_consistent", &[("pool", "edge-pool")]),
        0
    );
}

#[test]
fn outcome_of_an_endpoint_removed_by_reload_does_not_resurrect_it() {
    let m = realistic();
    let configured: HashSet<String> = ["web", "fe1"].iter().map(|s| s.to_string()).collect();
    m.retain_endpoints(&configured);
    let e = parse(&m.render_text());
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "edge")]),
        0
    );
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "fe2")]),
        0
    );
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "web")]),
        2
    );
    // A probe of `edge` that was in flight during the reload finishes now.
    assert!(!m.record(&mtls_outcome("edge", "127.0.0.4:443")));
    // Configured endpoints still record, including a new address.
    assert!(m.record(&ok_outcome("web", "127.0.0.7:443", "aaaaaaaa")));
    let e = parse(&m.render_text());
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "edge")]),
        0
    );
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "web")]),
        3
    );
    // The dropped outcome is not counted.
    assert_eq!(
        e.value("certprobe_probes_total", &[("result", "success")]),
        4.0
    );
    m.remove_endpoint("web");
    assert!(!m.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa")));
    assert_eq!(
        parse(&m.render_text()).count("certprobe_probe_success", &[]),
        1
    );
}

#[test]
fn carried_over_report_keeps_its_observation_time() {
    // The scheduler may carry the last good report into a failed probe's outcome
    // (`report_from` = when that report was captured).
    let m = Metrics::new(build());
    m.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    let mut o = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa");
    o.capture.failure = Some(Failure::new(FailureReason::ConnectTimeout, "timed out"));
    o.capture.tls_version = None;
    o.capture.cipher_suite = None;
    o.report_from = Some(NOW);
    o.finished_at = NOW + 120.0;
    m.record(&o);
    let e = parse(&m.render_text());
    let w = [("endpoint", "web")];
    assert_eq!(e.value("certprobe_cert_facts_timestamp_seconds", &w), NOW);
    assert_eq!(
        e.value("certprobe_last_probe_timestamp_seconds", &w),
        NOW + 120.0
    );
    assert_eq!(e.value("certprobe_leaf_changed_timestamp_seconds", &w), NOW);
    assert_eq!(e.value("certprobe_probe_success", &w), 0.0);
    assert_eq!(
        e.value(
            "certprobe_probe_failure",
            &[("endpoint", "web"), ("reason", "connect_timeout")]
        ),
        1.0
    );
    assert_eq!(e.count("certprobe_cert_info", &w), 2);
    // After a restart (no history) the carried report's leaf counts as first seen at report_from.
    let fresh = Metrics::new(build());
    fresh.record(&o);
    let e = parse(&fresh.render_text());
    assert_eq!(e.value("certprobe_leaf_changed_timestamp_seconds", &w), NOW);
}

#[test]
fn fixture_rule_ids_are_real_rule_ids() {
    // The fixtures use rule ids the evaluator really emits (the `rule` label values).
    for o in [
        ok_outcome("a", "127.0.0.1:1", "aaaaaaaa"),
        mtls_outcome("b", "127.0.0.1:2"),
        legacy_outcome("c", "127.0.0.1:3"),
    ] {
        for v in &o.evaluation.verdicts {
            assert!(
                certprobe::vocab::RuleId::ALL.contains(&v.rule),
                "{}",
                v.rule
            );
        }
    }
}

#[test]
fn rule_severity_label_is_the_verdicts_level_when_the_rule_fails() {
    let m = Metrics::new(build());
    let mut o = ok_outcome("legacy", "127.0.0.9:443", "bbbbbbbb");
    // A fail-severity rule whose finding is advisory (SHA-1 in its warn list), one real failure,
    // one pass.
    o.evaluation = eval(
        "default",
        Status::Critical,
        &[
            ("signature_hash", Severity::Fail, Verdict::Warn),
            ("hostname", Severity::Fail, Verdict::Fail),
            ("validity", Severity::Fail, Verdict::Pass),
        ],
    );
    m.record(&o);
    let e = parse(&m.render_text());
    let sev = |rule: &str| {
        let s = e.find(
            "certprobe_policy_rule_failed",
            &[("endpoint", "legacy"), ("rule", rule)],
        );
        assert_eq!(s.len(), 1, "{rule}: {s:?}");
        (s[0].labels["severity"].clone(), s[0].value)
    };
    assert_eq!(sev("signature_hash"), ("warn".to_string(), 1.0));
    assert_eq!(sev("hostname"), ("fail".to_string(), 1.0));
    assert_eq!(sev("validity"), ("fail".to_string(), 0.0));
}

/// A dual-certificate server probed per key type: two series sets for one address, told apart
/// by `key_type`, and removing one key type leaves the other.
#[test]
fn per_key_type_outcomes_get_their_own_series() {
    use certprobe::outcome::ProbeOutcome;
    use certprobe::probe::KeyType;
    let m = Metrics::new(build());
    let mut rsa = ok_outcome("dual", "127.0.0.9:443", "rsa00000");
    rsa.capture.key_type = Some(KeyType::Rsa);
    rsa.series_key = ProbeOutcome::series_key_for(&rsa.address, rsa.capture.key_type);
    let mut ec = ok_outcome("dual", "127.0.0.9:443", "ec000000");
    ec.capture.key_type = Some(KeyType::Ecdsa);
    ec.series_key = ProbeOutcome::series_key_for(&ec.address, ec.capture.key_type);
    m.record(&rsa);
    m.record(&ec);
    let text = m.render_text();
    let (ok, out) = promtool_check(&text);
    assert!(ok, "{out}");
    let e = parse(&text);
    for kt in ["rsa", "ecdsa"] {
        assert_eq!(
            e.value(
                "certprobe_probe_success",
                &[
                    ("endpoint", "dual"),
                    ("address", "127.0.0.9:443"),
                    ("key_type", kt)
                ]
            ),
            1.0,
            "{text}"
        );
    }
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "dual")]),
        2
    );
    m.remove_targets("dual", &["127.0.0.9:443/rsa".to_string()]);
    let e = parse(&m.render_text());
    assert_eq!(
        e.count("certprobe_probe_success", &[("endpoint", "dual")]),
        1
    );
    assert_eq!(
        e.count(
            "certprobe_probe_success",
            &[("endpoint", "dual"), ("key_type", "ecdsa")]
        ),
        1
    );
    // A single-certificate target has no key_type label at all.
    let single = ok_outcome("one", "127.0.0.8:443", "aaaaaaaa");
    m.record(&single);
    let text = m.render_text();
    let line = text
        .lines()
        .find(|l| l.starts_with("certprobe_probe_success{endpoint=\"one\""))
        .expect("series");
    assert!(!line.contains("key_type"), "{line}");
}

/// A STARTTLS endpoint's series carry `starttls`; implicit-TLS ones do not.
#[test]
fn starttls_endpoints_get_a_starttls_label_and_others_do_not() {
    let m = Metrics::new(build());
    let mut smtp = ok_outcome("mx", "127.0.0.7:25", "aaaaaaaa");
    std::sync::Arc::make_mut(&mut smtp.target).starttls =
        Some(certprobe::probe::starttls::StartTls::Smtp);
    m.record(&smtp);
    m.record(&ok_outcome("web", "127.0.0.1:443", "bbbbbbbb"));
    let text = m.render_text();
    let (ok, out) = promtool_check(&text);
    assert!(ok, "{out}");
    let e = parse(&text);
    assert_eq!(
        e.value(
            "certprobe_probe_success",
            &[("endpoint", "mx"), ("starttls", "smtp")]
        ),
        1.0
    );
    let web = text
        .lines()
        .find(|l| l.starts_with("certprobe_probe_success{endpoint=\"web\""))
        .expect("web series");
    assert!(!web.contains("starttls"), "{web}");
}

// ------------------------------------------------------------------ series budget (issue 19)

use certprobe::vocab::MetricsDetail;

/// The rules the default profile evaluates on a healthy chain, every one passing.
const DEFAULT_PROFILE_PASSING: &[(&str, Severity, Verdict)] = &[
    ("reachable", Severity::Fail, Verdict::Pass),
    ("trusted", Severity::Fail, Verdict::Pass),
    ("hostname", Severity::Fail, Verdict::Pass),
    ("validity", Severity::Fail, Verdict::Pass),
    ("expiry", Severity::Warn, Verdict::Pass),
    ("signature_hash", Severity::Fail, Verdict::Pass),
    ("key", Severity::Fail, Verdict::Pass),
    ("tls_version", Severity::Warn, Verdict::Pass),
    ("handshake_signature", Severity::Warn, Verdict::Pass),
    ("chain_hygiene", Severity::Warn, Verdict::Pass),
    ("intermediate_expiry", Severity::Warn, Verdict::Pass),
    ("crl_dp", Severity::Warn, Verdict::NotApplicable),
];

/// A healthy address as the issue measures it: default profile, two trust stores that both
/// verify, a two-certificate chain, every rule passing.
fn healthy(detail: MetricsDetail) -> certprobe::outcome::ProbeOutcome {
    let mut o = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa");
    std::sync::Arc::make_mut(&mut o.target).profile = "default".into();
    std::sync::Arc::make_mut(&mut o.target).metrics_detail = detail;
    o.capture.kx_group = Some("X25519".into());
    let r = std::sync::Arc::make_mut(o.report.as_mut().unwrap());
    for c in &mut r.certs {
        c.not_before = NOW as i64 - 30 * 86400;
    }
    for s in &mut r.stores {
        s.verified = true;
        s.error = None;
    }
    r.best_path_not_after = Some(1_900_000_000);
    o.evaluation = eval("default", Status::Ok, DEFAULT_PROFILE_PASSING);
    o
}

/// Per-target series of one (endpoint, address) in an exposition.
fn series_of(e: &Exposition, endpoint: &str, address: &str) -> Vec<String> {
    let mut names: Vec<String> = e
        .samples
        .iter()
        .filter(|s| {
            s.labels.get("endpoint").map(String::as_str) == Some(endpoint)
                && s.labels.get("address").map(String::as_str) == Some(address)
        })
        .map(|s| {
            let extra: Vec<String> = s
                .labels
                .iter()
                .filter(|(k, _)| {
                    !["endpoint", "address", "role", "pool", "team"].contains(&k.as_str())
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{}{{{}}}", s.name, extra.join(","))
        })
        .collect();
    names.sort();
    names
}

/// Issue 19's budget: at most 12 series per healthy address by default (it was 36).
#[test]
fn series_budget_of_a_healthy_address_by_default() {
    let m = Metrics::new(build());
    m.record(&healthy(MetricsDetail::Default));
    let text = m.render_text();
    let e = parse(&text);
    let series = series_of(&e, "web", "127.0.0.1:443");
    eprintln!(
        "{} series per healthy address:\n{}",
        series.len(),
        series.join("\n")
    );
    assert!(
        series.len() <= 12,
        "{} series per healthy address, budget 12:\n{}",
        series.len(),
        series.join("\n")
    );
    // What an operator alerts on is there.
    for name in [
        "certprobe_probe_success{}",
        "certprobe_last_probe_timestamp_seconds{}",
        "certprobe_cert_not_after_timestamp_seconds{position=0}",
        "certprobe_chain_expiry_timestamp_seconds{}",
        "certprobe_chain_verified{store=enterprise}",
        "certprobe_chain_verified{store=public}",
        "certprobe_policy_status{}",
        "certprobe_leaf_changed_timestamp_seconds{}",
        "certprobe_tls_info{cipher=TLS13_AES_256_GCM_SHA384,group=X25519,version=TLSv1.3}",
    ] {
        assert!(
            series.iter().any(|s| s == name),
            "{name} missing: {series:#?}"
        );
    }
    assert_eq!(e.count("certprobe_policy_rule_failed", &[]), 0);
    assert_eq!(e.count("certprobe_chain_problem", &[]), 0);
    assert_eq!(e.count("certprobe_probe_duration_seconds", &[]), 0);
    // The phase durations are one histogram for the whole process.
    assert_eq!(
        e.value(
            "certprobe_probe_phase_duration_seconds_count",
            &[("phase", "total")]
        ),
        1.0
    );
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "promtool:\n{out}");
}

/// `metrics: {detail: full}` restores every family (a superset of default, so alerts written
/// for default work on it).
#[test]
fn full_detail_restores_every_family_as_a_superset_of_default() {
    let count = |detail| {
        let m = Metrics::new(build());
        m.record(&healthy(detail));
        series_of(&parse(&m.render_text()), "web", "127.0.0.1:443")
    };
    let default = count(MetricsDetail::Default);
    let full = count(MetricsDetail::Full);
    for s in &default {
        assert!(full.contains(s), "{s} is in default but not in full");
    }
    assert!(full.len() >= 35, "{} full series: {full:#?}", full.len());
    for name in [
        "certprobe_cert_not_after_timestamp_seconds{position=1}",
        "certprobe_cert_info{",
        "certprobe_policy_rule_failed{profile=default,rule=key,severity=fail}",
        "certprobe_chain_order_valid{}",
        "certprobe_probe_duration_seconds{phase=connect}",
        "certprobe_tls_version_info{version=TLSv1.3}",
        "certprobe_hostname_match{}",
    ] {
        assert!(
            full.iter().any(|s| s.starts_with(name)),
            "{name} missing in full"
        );
    }
}

/// Each non-passing finding adds its own series (with its severity), nothing else.
#[test]
fn default_detail_adds_one_series_per_non_passing_finding() {
    let m = Metrics::new(build());
    m.record(&healthy(MetricsDetail::Default));
    let before = series_of(&parse(&m.render_text()), "web", "127.0.0.1:443");
    let mut o = healthy(MetricsDetail::Default);
    o.finished_at = NOW + 60.0;
    let r = std::sync::Arc::make_mut(o.report.as_mut().unwrap());
    r.hygiene.root_sent = true;
    r.hostname.as_mut().unwrap().matched = false;
    let mut verdicts = DEFAULT_PROFILE_PASSING.to_vec();
    verdicts[2].2 = Verdict::Fail; // hostname
    verdicts[9].2 = Verdict::Warn; // chain_hygiene
    o.evaluation = eval("default", Status::Critical, &verdicts);
    m.record(&o);
    let e = parse(&m.render_text());
    let after = series_of(&e, "web", "127.0.0.1:443");
    let added: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    assert_eq!(
        added,
        [
            "certprobe_chain_problem{problem=root_sent}",
            "certprobe_hostname_match{}",
            "certprobe_policy_rule_failed{profile=default,rule=chain_hygiene,severity=warn}",
            "certprobe_policy_rule_failed{profile=default,rule=hostname,severity=fail}",
        ]
        .iter()
        .collect::<Vec<_>>(),
        "{after:#?}"
    );
    assert_eq!(after.len(), before.len() + 4);
    assert_eq!(
        e.value("certprobe_hostname_match", &[("endpoint", "web")]),
        0.0
    );
    assert_eq!(
        e.value("certprobe_policy_status", &[("endpoint", "web")]),
        2.0
    );
    // Fixed: the finding series disappear again (Prometheus marks them stale and the alert
    // resolves).
    let mut fixed = healthy(MetricsDetail::Default);
    fixed.finished_at = NOW + 120.0;
    m.record(&fixed);
    assert_eq!(
        series_of(&parse(&m.render_text()), "web", "127.0.0.1:443"),
        before
    );
}

/// A leaf that is not valid yet shows its notBefore by default (CertprobeCertNotYetValid);
/// a valid one does not.
#[test]
fn default_detail_exports_not_before_only_while_the_leaf_is_not_yet_valid() {
    let m = Metrics::new(build());
    let mut o = healthy(MetricsDetail::Default);
    std::sync::Arc::make_mut(o.report.as_mut().unwrap()).certs[0].not_before = NOW as i64 + 3600;
    m.record(&o);
    let e = parse(&m.render_text());
    assert_eq!(
        e.value(
            "certprobe_cert_not_before_timestamp_seconds",
            &[("endpoint", "web"), ("position", "0")]
        ),
        NOW.floor() + 3600.0
    );
    m.record(&healthy(MetricsDetail::Default));
    let e = parse(&m.render_text());
    assert_eq!(
        e.count("certprobe_cert_not_before_timestamp_seconds", &[]),
        0
    );
}

/// A failing probe without a chain keeps the last leaf facts by default, and then shows
/// when they were observed.
#[test]
fn default_detail_keeps_carried_facts_and_shows_their_time() {
    let m = Metrics::new(build());
    m.record(&healthy(MetricsDetail::Default));
    let e = parse(&m.render_text());
    assert_eq!(e.count("certprobe_cert_facts_timestamp_seconds", &[]), 0);
    let mut down = refused_outcome("web", "127.0.0.1:443");
    down.target = healthy(MetricsDetail::Default).target;
    down.finished_at = NOW + 60.0;
    m.record(&down);
    let e = parse(&m.render_text());
    let w = [("endpoint", "web")];
    assert_eq!(e.value("certprobe_probe_success", &w), 0.0);
    assert_eq!(e.value("certprobe_cert_facts_timestamp_seconds", &w), NOW);
    assert_eq!(
        e.value(
            "certprobe_cert_not_after_timestamp_seconds",
            &[("endpoint", "web"), ("position", "0")]
        ),
        1_900_000_000.0
    );
    assert_eq!(e.count("certprobe_probe_failure", &w), 1);
    assert_eq!(e.count("certprobe_chain_verified", &w), 2);
}
