//! Certificate fact extraction over third-party vectors (tests/data/pyca-vectors, from
//! cryptography-vectors) and over mutated DER (never panics).

use certprobe::chain::{
    analyze, parse_cert, CertFacts, KeyAlgorithm, SignatureHash, TrustStore, TrustStores,
};
use proptest::prelude::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

fn vector(name: &str) -> Vec<CertificateDer<'static>> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pyca-vectors")
        .join(name);
    if name.ends_with(".der") {
        vec![CertificateDer::from(std::fs::read(path).unwrap())]
    } else {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
    }
}

fn facts(name: &str) -> CertFacts {
    parse_cert(&vector(name)[0]).unwrap()
}

#[test]
fn sha1_is_detected_under_the_oiw_sha1_with_rsa_oid_too() {
    let f = facts("alternate-rsa-sha1-oid.der");
    assert_eq!(f.signature_oid, "1.3.14.3.2.29");
    assert_eq!(f.signature_hash, SignatureHash::Sha1);
    assert_eq!(f.signature_algorithm, "sha1WithRSASignature");
    assert_eq!(f.eku, vec!["server_auth".to_string()]);
}

#[test]
fn sha1_hidden_in_rsassa_pss_parameters_is_reported_as_sha1() {
    let f = facts("ee-pss-sha1-cert.pem");
    assert!(f.is_rsassa_pss);
    assert_eq!(f.signature_hash, SignatureHash::Sha1);
    assert_eq!(f.san_dns, vec!["PSS-SHA1".to_string()]);
}

#[test]
fn ms_template_information_without_a_minor_version_is_decoded() {
    let f = facts("ms-certificate-template.pem");
    assert_eq!(f.adcs.template_oid.as_deref(), Some("1.2.3.4.5.6.7.8.9.0"));
    assert_eq!(f.adcs.template_major, Some(1));
    assert_eq!(f.adcs.template_minor, None);
    assert!(f.adcs.any());
    assert_eq!(
        f.key,
        KeyAlgorithm::Ec {
            curve: "P-256".into(),
            bits: 256
        }
    );
    assert_eq!(f.signature_hash, SignatureHash::Sha256);
}

#[test]
fn crl_distribution_points_list_full_name_uris_only() {
    assert!(facts("cdp_crl_issuer.pem")
        .crl_distribution_points
        .is_empty());
    assert_eq!(
        facts("cdp_fullname_reasons_crl_issuer.pem").crl_distribution_points,
        vec!["http://myhost.com/myca.crl".to_string()]
    );
    assert_eq!(facts("utf8-dnsname.pem").crl_distribution_points.len(), 3);
}

#[test]
fn a_real_public_chain_parses_with_eku_san_and_aia() {
    let chain = vector("cryptography.io.chain.pem");
    assert_eq!(chain.len(), 2);
    let leaf = parse_cert(&chain[0]).unwrap();
    assert_eq!(leaf.subject_cn.as_deref(), Some("www.cryptography.io"));
    assert_eq!(
        leaf.san_dns,
        vec![
            "www.cryptography.io".to_string(),
            "cryptography.io".to_string()
        ]
    );
    assert_eq!(
        leaf.eku,
        vec!["server_auth".to_string(), "client_auth".to_string()]
    );
    assert!(!leaf.ocsp_urls.is_empty() || !leaf.ca_issuers_urls.is_empty());
    // RFC 4514 order: last RDN first.
    assert!(leaf.subject.starts_with("CN=www.cryptography.io,OU="));
    let ca = parse_cert(&chain[1]).unwrap();
    assert!(ca.is_ca);
    assert_eq!(
        Some(ca.subject_key_id.clone().unwrap()),
        leaf.authority_key_id
    );
}

#[test]
fn client_only_critical_eku_and_empty_eku_are_reported_as_such() {
    let f = facts("ekucrit-testuser-cert.pem");
    assert_eq!(f.eku, vec!["client_auth".to_string()]);
    assert!(f.eku_critical && f.has_eku);
    assert!(f.san_dns.is_empty() && f.has_san_extension);
    let e = facts("empty-eku.pem");
    assert!(e.has_eku && e.eku.is_empty());
}

#[test]
fn v1_md5_and_cn_only_certificates_are_reported() {
    let v1 = facts("v1_cert.pem");
    assert_eq!(v1.version, 1);
    // The outer algorithm is the bare md5 digest OID (SSLeay era).
    assert_eq!(v1.signature_oid, "1.2.840.113549.2.5");
    assert_eq!(v1.signature_hash, SignatureHash::Md5);
    let cn = facts("no_sans.pem");
    assert!(!cn.has_san_extension);
    assert_eq!(cn.subject_cn.as_deref(), Some("Leaf Certison"));
    assert_eq!(
        cn.subject,
        "emailAddress=leaf@cryptography.com,CN=Leaf Certison,O=Cryptography,L=Prague,ST=Prague,C=CZ"
    );
}

#[test]
fn a_malformed_san_never_panics() {
    let chain = vector("malformed-san.pem");
    let _ = parse_cert(&chain[0]);
    let stores = TrustStores {
        stores: vec![TrustStore::webpki_roots("public")],
    };
    let r = analyze(
        &chain,
        None,
        &stores,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
    );
    assert!(!r.stores[0].verified);
}

#[test]
fn multiple_wildcards_and_idna_wildcards_are_listed_verbatim() {
    assert_eq!(facts("wildcard_san.pem").san_dns.len(), 4);
    assert_eq!(
        facts("san_wildcard_idna.pem").san_dns,
        vec!["*.xn--80ato2c.cryptography".to_string()]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn mutated_or_truncated_certificates_never_panic(
        which in 0usize..6,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let names = [
            "cryptography.io.chain.pem", "ms-certificate-template.pem", "utf8-dnsname.pem",
            "ee-pss-sha1-cert.pem", "wildcard_san.pem", "cdp_fullname_reasons_crl_issuer.pem",
        ];
        let chain = vector(names[which]);
        let mut der = chain[0].to_vec();
        for (i, b) in flips {
            let i = i.index(der.len());
            der[i] ^= b;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        let _ = parse_cert(&der);
        let mut mutated = vec![CertificateDer::from(der)];
        mutated.extend(chain.into_iter().skip(1));
        let stores = TrustStores { stores: vec![TrustStore::webpki_roots("public")] };
        let r = analyze(&mutated, None, &stores, UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_500_000_000)));
        prop_assert_eq!(r.certs.len() + r.parse_errors.len(), mutated.len());
    }
}
