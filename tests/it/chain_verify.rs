//! Chain evaluation over rcgen-generated chains: per-store verdicts, hostname, hygiene,
//! classification and AD CS facts.

use certprobe::chain::{
    analyze, parse_cert, ChainReport, IssuerClass, NameCheck, StoreClass, TrustStore, TrustStores,
    VerifyErrorKind,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::{Duration, OffsetDateTime};

const NOW: i64 = 1_800_000_000; // 2027-01-15

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64))
}

fn at(offset_days: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap() + Duration::days(offset_days)
}

fn ca_params(cn: &str, from: i64, to: i64) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Contoso");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = at(from);
    p.not_after = at(to);
    p
}

fn leaf_params(names: &[&str], cn: &str, from: i64, to: i64) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = at(from);
    p.not_after = at(to);
    p
}

struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
    inter: CertifiedIssuer<'static, KeyPair>,
}

fn pki_with(root_days: (i64, i64), inter_days: (i64, i64)) -> Pki {
    let root = CertifiedIssuer::self_signed(
        ca_params("Contoso Root", root_days.0, root_days.1),
        KeyPair::generate().unwrap(),
    )
    .unwrap();
    let mut ip = ca_params("Contoso Issuing CA", inter_days.0, inter_days.1);
    ip.use_authority_key_identifier_extension = true;
    let inter = CertifiedIssuer::signed_by(ip, KeyPair::generate().unwrap(), &root).unwrap();
    Pki { root, inter }
}

fn pki() -> Pki {
    pki_with((-3650, 3650), (-1000, 2000))
}

fn leaf(p: &Pki, params: CertificateParams) -> CertificateDer<'static> {
    params
        .signed_by(&KeyPair::generate().unwrap(), &p.inter)
        .unwrap()
        .der()
        .clone()
}

fn stores(p: &Pki) -> TrustStores {
    TrustStores {
        stores: vec![
            TrustStore::from_bundle("internal", StoreClass::Internal, vec![p.root.der().clone()])
                .unwrap(),
            TrustStore::webpki_roots("public"),
        ],
    }
}

fn name(n: &str) -> NameCheck {
    NameCheck {
        name: n.into(),
        allow_cn_fallback: false,
    }
}

fn run(chain: &[CertificateDer<'static>], n: &str, s: &TrustStores) -> ChainReport {
    analyze(chain, Some(&name(n)), s, now())
}

#[test]
fn a_valid_internal_chain_is_verified_by_the_internal_store_only() {
    let p = pki();
    let l = leaf(
        &p,
        leaf_params(&["pool.contoso.com"], "pool.contoso.com", -10, 300),
    );
    let chain = vec![l, p.inter.der().clone()];
    let r = run(&chain, "pool.contoso.com", &stores(&p));
    let internal = &r.stores[0];
    assert!(internal.verified, "{internal:?}");
    assert!(!internal.legacy_algorithms);
    assert_eq!(internal.error, None);
    assert_eq!(internal.path.len(), 3);
    assert_eq!(internal.path[0], r.certs[0].fingerprint_sha256);
    assert_eq!(internal.path[1], r.certs[1].fingerprint_sha256);
    // The root was not presented: the path ends with its subject.
    assert_eq!(internal.path[2], "O=Contoso,CN=Contoso Root");
    assert_eq!(internal.path_not_after, Some(r.certs[0].not_after));
    let public = &r.stores[1];
    assert!(!public.verified);
    assert_eq!(public.error, Some(VerifyErrorKind::UnknownIssuer));
    assert_eq!(public.error_position, Some(1));
    assert_eq!(r.issuer_class, IssuerClass::Internal);
    let h = r.hostname.as_ref().unwrap();
    assert!(h.matched && !h.via_wildcard && !h.via_cn);
    assert!(r.hygiene.order_valid && r.hygiene.complete && !r.hygiene.root_sent);
    assert!(r.hygiene.superfluous.is_empty() && r.hygiene.expired_intermediates.is_empty());
    assert!(!r.weak_hash_on_path);
    assert_eq!(r.best_path_not_after, Some(r.certs[0].not_after));
    assert_eq!(
        r.anchor.as_ref().unwrap().subject_cn.as_deref(),
        Some("Contoso Root")
    );
    assert_eq!(r.certs[0].san_dns, vec!["pool.contoso.com".to_string()]);
    assert_eq!(r.certs[0].eku, vec!["server_auth".to_string()]);
    assert_eq!(r.certs[1].subject, "O=Contoso,CN=Contoso Issuing CA");
}

#[test]
fn an_expired_leaf_is_reported_as_expired_at_position_zero() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -400, -1));
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert!(!r.stores[0].verified);
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::Expired));
    assert_eq!(r.stores[0].error_position, Some(0));
}

#[test]
fn an_expired_intermediate_is_reported_at_its_position_and_in_hygiene() {
    let p = pki_with((-3650, 3650), (-1000, -5));
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::Expired));
    assert_eq!(r.stores[0].error_position, Some(1));
    assert_eq!(r.hygiene.expired_intermediates, vec![1]);
}

#[test]
fn an_expired_internal_root_makes_the_chain_expired_even_though_webpki_ignores_anchor_validity() {
    let p = pki_with((-3650, -2), (-1000, 2000));
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert!(!r.stores[0].verified);
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::Expired));
    // The anchor was not presented.
    assert_eq!(r.stores[0].error_position, None);
}

#[test]
fn a_not_yet_valid_leaf_is_reported_as_not_yet_valid() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", 2, 300));
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::NotYetValid));
    assert_eq!(r.stores[0].error_position, Some(0));
}

#[test]
fn a_missing_intermediate_is_unknown_issuer_and_incomplete() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let r = run(&[l], "pool.contoso.com", &stores(&p));
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::UnknownIssuer));
    assert_eq!(r.stores[0].error_position, Some(0));
    assert!(!r.hygiene.complete);
    assert_eq!(r.issuer_class, IssuerClass::Unknown);
}

#[test]
fn an_out_of_order_chain_still_verifies_but_order_is_flagged() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let chain = vec![l, p.root.der().clone(), p.inter.der().clone()];
    let r = run(&chain, "pool.contoso.com", &stores(&p));
    assert!(r.stores[0].verified);
    assert!(!r.hygiene.order_valid);
    assert!(r.hygiene.root_sent);
    assert!(r.hygiene.complete);
}

#[test]
fn a_superfluous_root_sent_is_tolerated_and_reported() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let chain = vec![l, p.inter.der().clone(), p.root.der().clone()];
    let r = run(&chain, "pool.contoso.com", &stores(&p));
    assert!(r.stores[0].verified);
    assert!(r.hygiene.order_valid && r.hygiene.root_sent && r.hygiene.complete);
    // The sent root is the anchor: the path ends with its fingerprint, and it is not unrelated.
    assert_eq!(r.stores[0].path[2], r.certs[2].fingerprint_sha256);
    assert!(r.hygiene.superfluous.is_empty());
    assert_eq!(r.stores[0].path_not_after, Some(r.certs[0].not_after));
}

#[test]
fn an_unrelated_extra_certificate_is_listed_as_superfluous() {
    let p = pki();
    let other = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let chain = vec![l, p.inter.der().clone(), other.inter.der().clone()];
    let r = run(&chain, "pool.contoso.com", &stores(&p));
    assert!(r.stores[0].verified);
    assert_eq!(r.hygiene.superfluous, vec![2]);
    assert!(!r.hygiene.order_valid);
}

#[test]
fn a_wrong_name_does_not_match_but_trust_is_unaffected() {
    let p = pki();
    let l = leaf(
        &p,
        leaf_params(&["pool.contoso.com"], "pool.contoso.com", -10, 300),
    );
    let r = run(
        &[l, p.inter.der().clone()],
        "other.contoso.com",
        &stores(&p),
    );
    assert!(r.stores[0].verified);
    assert!(!r.hostname.as_ref().unwrap().matched);
}

#[test]
fn a_wildcard_leaf_matches_one_label_via_wildcard() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["*.contoso.com"], "x", -10, 300));
    let chain = vec![l, p.inter.der().clone()];
    let r = run(&chain, "meet.contoso.com", &stores(&p));
    let h = r.hostname.as_ref().unwrap();
    assert!(h.matched && h.via_wildcard);
    assert_eq!(h.matched_by.as_deref(), Some("*.contoso.com"));
    assert!(
        !run(&chain, "a.meet.contoso.com", &stores(&p))
            .hostname
            .unwrap()
            .matched
    );
    assert!(
        !run(&chain, "contoso.com", &stores(&p))
            .hostname
            .unwrap()
            .matched
    );
}

#[test]
fn a_cn_only_leaf_matches_only_with_cn_fallback() {
    let p = pki();
    let l = leaf(&p, leaf_params(&[], "edge.contoso.com", -10, 300));
    let chain = vec![l, p.inter.der().clone()];
    let s = stores(&p);
    let strict = analyze(&chain, Some(&name("edge.contoso.com")), &s, now());
    assert!(!strict.hostname.unwrap().matched);
    assert!(!strict.certs[0].has_san_extension);
    let lenient = analyze(
        &chain,
        Some(&NameCheck {
            name: "edge.contoso.com".into(),
            allow_cn_fallback: true,
        }),
        &s,
        now(),
    );
    let h = lenient.hostname.unwrap();
    assert!(h.matched && h.via_cn);
    assert!(lenient.stores[0].verified);
}

#[test]
fn a_leaf_signed_by_a_look_alike_ca_key_is_a_bad_signature_at_the_leaf() {
    let p = pki();
    // Same DN as the real issuing CA, different key.
    let mut ip = ca_params("Contoso Issuing CA", -1000, 2000);
    ip.use_authority_key_identifier_extension = true;
    let fake = CertifiedIssuer::signed_by(ip, KeyPair::generate().unwrap(), &p.root).unwrap();
    let mut lp = leaf_params(&["pool.contoso.com"], "x", -10, 300);
    lp.use_authority_key_identifier_extension = false;
    let l = lp
        .signed_by(&KeyPair::generate().unwrap(), &fake)
        .unwrap()
        .der()
        .clone();
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert!(!r.stores[0].verified);
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::BadSignature));
    assert_eq!(r.stores[0].error_position, Some(0));
    assert!(!r.stores[0].legacy_algorithms);
}

#[test]
fn a_client_auth_only_leaf_is_bad_eku_but_otherwise_trusted() {
    let p = pki();
    let mut lp = leaf_params(&["pool.contoso.com"], "x", -10, 300);
    lp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let l = leaf(&p, lp);
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    let v = &r.stores[0];
    assert!(!v.verified);
    assert_eq!(v.error, Some(VerifyErrorKind::BadEku));
    assert_eq!(v.error_position, Some(0));
    assert!(v.trusted_ignoring_eku);
    assert!(!r.stores[1].trusted_ignoring_eku);
    assert_eq!(r.issuer_class, IssuerClass::Internal);
    assert_eq!(r.certs[0].eku, vec!["client_auth".to_string()]);
}

fn bmp(s: &str) -> Vec<u8> {
    let units: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let mut v = vec![0x1e, units.len() as u8];
    v.extend(units);
    v
}

fn utf8(s: &str) -> Vec<u8> {
    let mut v = vec![0x0c, s.len() as u8];
    v.extend(s.as_bytes());
    v
}

#[test]
fn ms_template_extensions_are_decoded_and_drive_the_adcs_inference() {
    let p = pki();
    for (enc, expect) in [
        (bmp("WebServer"), "WebServer"),
        (utf8("LyncWeb"), "LyncWeb"),
    ] {
        let mut lp = leaf_params(&["pool.contoso.com"], "x", -10, 300);
        lp.custom_extensions = vec![
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 20, 2], enc),
            // SEQUENCE { OID 1.3.6.1.4.1.311.21.8.1.2, INTEGER 100, INTEGER 3 }
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 311, 21, 7],
                vec![
                    0x30, 0x13, 0x06, 0x0b, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x15, 0x08,
                    0x01, 0x02, 0x02, 0x01, 0x64, 0x02, 0x01, 0x03,
                ],
            ),
            // SEQUENCE { SEQUENCE { OID serverAuth } }
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 311, 21, 10],
                vec![
                    0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03,
                    0x01,
                ],
            ),
        ];
        let l = leaf(&p, lp);
        let f = parse_cert(&l).unwrap();
        assert_eq!(f.adcs.template_name.as_deref(), Some(expect));
        assert_eq!(
            f.adcs.template_oid.as_deref(),
            Some("1.3.6.1.4.1.311.21.8.1.2")
        );
        assert_eq!(
            (f.adcs.template_major, f.adcs.template_minor),
            (Some(100), Some(3))
        );
        assert_eq!(
            f.adcs.application_policies,
            vec!["1.3.6.1.5.5.7.3.1".to_string()]
        );
        let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
        assert!(r.adcs_detected);
        assert!(r
            .inferences
            .iter()
            .any(|i| i.contains("Windows Server 2008+ CA with a CNG KSP")));
        // Trusted by the internal store, so no heuristic classification is needed.
        assert!(!r
            .inferences
            .iter()
            .any(|i| i.contains("suggest an internal")));
    }
}

#[test]
fn adcs_markers_on_an_untrusted_chain_suggest_an_internal_ca() {
    let p = pki();
    let mut cp = ca_params("Contoso Issuing CA", -1000, 2000);
    // CA Version V2.1: key index 1, cert index 2.
    cp.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 311, 21, 1],
        vec![0x02, 0x03, 0x01, 0x00, 0x02],
    )];
    let ca = CertifiedIssuer::self_signed(cp, KeyPair::generate().unwrap()).unwrap();
    let l = leaf_params(&["pool.contoso.com"], "x", -10, 300)
        .signed_by(&KeyPair::generate().unwrap(), &ca)
        .unwrap()
        .der()
        .clone();
    let r = run(&[l, ca.der().clone()], "pool.contoso.com", &stores(&p));
    assert_eq!(r.certs[1].adcs.ca_version.as_deref(), Some("V2.1"));
    assert_eq!(r.issuer_class, IssuerClass::Unknown);
    assert!(r.adcs_detected);
    assert!(r
        .inferences
        .contains(&"AD CS markers suggest an internal enterprise CA".to_string()));
    assert!(r.inferences.iter().any(|i| i.contains("CNG KSP")));
}

#[test]
fn an_unparseable_certificate_is_recorded_by_position() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let r = run(
        &[l, garbage, p.inter.der().clone()],
        "pool.contoso.com",
        &stores(&p),
    );
    assert_eq!(r.parse_errors.len(), 1);
    assert_eq!(r.parse_errors[0].0, 1);
    assert_eq!(r.certs.len(), 2);
    assert!(r.stores[0].verified);
    assert!(!r.hygiene.order_valid);
    let only_garbage = run(
        &[CertificateDer::from(vec![1, 2, 3])],
        "pool.contoso.com",
        &stores(&p),
    );
    assert!(only_garbage.leaf().is_none());
    assert_eq!(
        only_garbage.stores[0].error,
        Some(VerifyErrorKind::Malformed)
    );
    assert!(!only_garbage.hostname.unwrap().matched);
}

#[test]
fn facts_cover_subject_serial_fingerprints_validity_and_ip_sans() {
    let p = pki();
    let mut lp = leaf_params(
        &["pool.contoso.com", "127.0.0.1", "::1"],
        "pool.contoso.com",
        -10,
        300,
    );
    lp.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0xab, 0xcd]));
    let l = leaf(&p, lp);
    let f = parse_cert(&l).unwrap();
    assert_eq!(f.subject, "CN=pool.contoso.com");
    assert_eq!(f.issuer, "O=Contoso,CN=Contoso Issuing CA");
    assert_eq!(f.issuer_cn.as_deref(), Some("Contoso Issuing CA"));
    assert_eq!(f.serial, "abcd");
    assert_eq!(f.fingerprint_sha256.len(), 64);
    assert_ne!(f.fingerprint_sha256, f.spki_sha256);
    assert_eq!(f.san_ip, vec!["127.0.0.1".to_string(), "::1".to_string()]);
    assert_eq!(f.not_after - f.not_before, 310 * 86400);
    assert_eq!(f.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(
        f.key,
        certprobe::chain::KeyAlgorithm::Ec {
            curve: "P-256".into(),
            bits: 256
        }
    );
    assert!(!f.is_ca && !f.self_signed);
    assert_eq!(f.key_usage, vec!["digital_signature".to_string()]);
    assert!(f.authority_key_id.is_some());
    let root = parse_cert(p.root.der()).unwrap();
    assert!(root.is_ca && root.self_signed);
    assert_eq!(
        root.key_usage,
        vec!["key_cert_sign".to_string(), "crl_sign".to_string()]
    );
}

#[test]
fn an_ldap_crl_distribution_point_is_an_ad_cs_marker() {
    let p = pki();
    let mut lp = leaf_params(&["pool.contoso.com"], "x", -10, 300);
    lp.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![
            "ldap:///CN=Contoso%20Issuing%20CA,CN=CDP,CN=Public%20Key%20Services,CN=Services,CN=Configuration,DC=contoso,DC=com?certificateRevocationList?base".into(),
            "http://pki.contoso.com/issuing.crl".into(),
        ],
    }];
    let l = leaf(&p, lp);
    let f = parse_cert(&l).unwrap();
    assert!(f.adcs.ldap_urls);
    assert_eq!(f.crl_distribution_points.len(), 2);
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert!(r.adcs_detected);
    // No template extension and no CA Version: no OS inference.
    assert!(!r.inferences.iter().any(|i| i.contains("KSP")));
}

#[test]
fn an_empty_chain_is_malformed_for_every_store_and_never_panics() {
    let p = pki();
    let r = run(&[], "pool.contoso.com", &stores(&p));
    assert!(r.certs.is_empty());
    assert!(r
        .stores
        .iter()
        .all(|s| s.error == Some(VerifyErrorKind::Malformed)));
    assert!(!r.hostname.unwrap().matched);
    assert!(!r.hygiene.complete);
    assert_eq!(r.issuer_class, IssuerClass::Unknown);
}

#[test]
fn a_self_signed_leaf_pinned_in_the_internal_store_is_trusted() {
    let mut lp = leaf_params(&["edge.contoso.com"], "edge.contoso.com", -10, 300);
    lp.use_authority_key_identifier_extension = false;
    let key = KeyPair::generate().unwrap();
    let cert = lp.self_signed(&key).unwrap().der().clone();
    let s = TrustStores {
        stores: vec![
            TrustStore::from_bundle("internal", StoreClass::Internal, vec![cert.clone()]).unwrap(),
        ],
    };
    let r = run(&[cert], "edge.contoso.com", &s);
    assert!(r.stores[0].verified, "{:?}", r.stores[0]);
    assert!(r.certs[0].self_signed);
    assert!(!r.hygiene.root_sent);
}

/// A bundle's issuing CA is a path-building helper, not an anchor: a leaf-only chain verifies
/// through it but is incomplete and names it; the same bundle pinned as anchors (anchor_files)
/// is the operator's explicit choice and complete.
#[test]
fn bundle_intermediates_help_paths_but_are_not_anchors() {
    let p = pki();
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let bundle = vec![p.root.der().clone(), p.inter.der().clone()];
    let s = TrustStores {
        stores: vec![
            TrustStore::from_bundle("internal", StoreClass::Internal, bundle.clone()).unwrap(),
        ],
    };
    assert_eq!(
        s.stores[0].anchors.len(),
        1,
        "only the self-signed root is an anchor"
    );
    assert_eq!(s.stores[0].helpers.len(), 1);
    let r = run(std::slice::from_ref(&l), "pool.contoso.com", &s);
    assert!(r.stores[0].verified, "{:?}", r.stores[0]);
    assert!(!r.hygiene.complete);
    assert_eq!(r.hygiene.missing_intermediates.len(), 1);
    assert!(r.hygiene.missing_intermediates[0].contains("Contoso Issuing CA"));
    assert_eq!(
        r.stores[0].intermediates_from_store,
        r.hygiene.missing_intermediates
    );
    // The path's expiry includes the helper's notAfter (2000 days) — the leaf's (300) is earlier.
    assert_eq!(r.best_path_not_after, Some(NOW + 300 * 86_400));
    // With the intermediate presented, complete.
    let r = run(&[l.clone(), p.inter.der().clone()], "pool.contoso.com", &s);
    assert!(r.hygiene.complete && r.hygiene.missing_intermediates.is_empty());
    // Every certificate pinned as an anchor: complete by the operator's choice.
    let pinned = TrustStores {
        stores: vec![TrustStore::from_anchors("internal", StoreClass::Internal, bundle).unwrap()],
    };
    let r = run(&[l], "pool.contoso.com", &pinned);
    assert!(r.stores[0].verified && r.hygiene.complete);
}

/// A store's verdict is about its own paths: the expired intermediate is the internal store's
/// error; the public store reaches none of its anchors and says unknown_issuer.
#[test]
fn an_expired_intermediate_is_unknown_issuer_for_a_store_it_does_not_reach() {
    let p = pki_with((-3650, 3650), (-1000, -5));
    let l = leaf(&p, leaf_params(&["pool.contoso.com"], "x", -10, 300));
    let r = run(&[l, p.inter.der().clone()], "pool.contoso.com", &stores(&p));
    assert_eq!(r.stores[0].error, Some(VerifyErrorKind::Expired));
    assert_eq!(r.stores[1].store, "public");
    assert_eq!(
        r.stores[1].error,
        Some(VerifyErrorKind::UnknownIssuer),
        "{:?}",
        r.stores[1]
    );
    let d = r.stores[0].detail.as_deref().unwrap();
    assert!(
        d.contains("expired at 20") && !d.contains("UnixTime"),
        "{d}"
    );
}

/// A name-constraints failure names the CA that imposed the constraint.
#[test]
fn a_name_constraints_failure_names_the_constraining_ca() {
    let root = CertifiedIssuer::self_signed(
        ca_params("Contoso Root", -3650, 3650),
        KeyPair::generate().unwrap(),
    )
    .unwrap();
    let mut ip = ca_params("Contoso Constrained CA", -1000, 2000);
    ip.use_authority_key_identifier_extension = true;
    ip.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("contoso.com".into())],
        excluded_subtrees: vec![],
    });
    let inter = CertifiedIssuer::signed_by(ip, KeyPair::generate().unwrap(), &root).unwrap();
    let l = leaf_params(&["sip.fabrikam.com"], "sip.fabrikam.com", -10, 300)
        .signed_by(&KeyPair::generate().unwrap(), &inter)
        .unwrap()
        .der()
        .clone();
    let s = TrustStores {
        stores: vec![TrustStore::from_bundle(
            "internal",
            StoreClass::Internal,
            vec![root.der().clone()],
        )
        .unwrap()],
    };
    let r = run(&[l, inter.der().clone()], "sip.fabrikam.com", &s);
    assert_eq!(
        r.stores[0].error,
        Some(VerifyErrorKind::NameConstraints),
        "{:?}",
        r.stores[0]
    );
    let d = r.stores[0].detail.as_deref().unwrap();
    assert!(d.contains("CN=Contoso Constrained CA"), "{d}");
    assert!(d.contains("name constraints"), "{d}");
}
