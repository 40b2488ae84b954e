//! Chains rcgen cannot make (SHA-1, RSA-1024 issuers, ecdsa-with-SHA1, RSASSA-PSS), generated
//! with the openssl CLI in a temporary directory at test time.

use crate::support;

use std::path::{Path, PathBuf};
use support::openssl;

use certprobe::chain::{
    analyze, parse_cert, ChainReport, NameCheck, SignatureHash, StoreClass, TrustStore,
    TrustStores, VerifyErrorKind,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

fn pem(dir: &Path, file: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(dir.join(file)).unwrap()
}

/// Key arguments for `req -newkey`.
enum Key {
    Rsa(u32),
    P256,
}

fn newkey(dir: &Path, name: &str, key: &Key) -> PathBuf {
    let file = format!("{name}.key");
    let _stdout = match key {
        Key::Rsa(bits) => openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-out",
                &file,
            ],
        ),
        Key::P256 => openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &file,
            ],
        ),
    };
    dir.join(file)
}

/// Self-signed root `root.pem` signed with `digest`.
fn root(dir: &Path, key: &Key, digest: &str) {
    newkey(dir, "root", key);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            &format!("-{digest}"),
            "-days",
            "3650",
            "-subj",
            "/O=Contoso/CN=Contoso Legacy Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "root.pem",
        ],
    );
}

/// Leaf `leaf.pem` for lync.contoso.com, issued by root with `digest` and extra sigopts.
fn leaf(dir: &Path, key: &Key, digest: &str, sigopts: &[&str]) {
    newkey(dir, "leaf", key);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:lync.contoso.com\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=lync.contoso.com",
            "-out",
            "leaf.csr",
        ],
    );
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-days",
        "365",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ];
    let d = format!("-{digest}");
    args.push(&d);
    for o in sigopts {
        args.push("-sigopt");
        args.push(o);
    }
    openssl(dir, &args);
}

fn evaluate(dir: &Path, chain: Vec<CertificateDer<'static>>) -> ChainReport {
    let stores = TrustStores {
        stores: vec![TrustStore::from_bundle(
            "internal",
            StoreClass::Internal,
            vec![pem(dir, "root.pem")],
        )
        .unwrap()],
    };
    // One hour after the leaf's notBefore: evaluation time is an argument, not the clock.
    let nb = parse_cert(&chain[0]).unwrap().not_before;
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs((nb + 3600) as u64));
    analyze(
        &chain,
        Some(&NameCheck {
            name: "lync.contoso.com".into(),
            allow_cn_fallback: false,
        }),
        &stores,
        now,
    )
}

#[test]
fn a_sha1_rsa2048_chain_verifies_with_legacy_algorithms_and_flags_the_weak_hash() {
    let dir = tempfile::tempdir().unwrap();
    root(dir.path(), &Key::Rsa(2048), "sha1");
    leaf(dir.path(), &Key::Rsa(2048), "sha1", &[]);
    let r = evaluate(dir.path(), vec![pem(dir.path(), "leaf.pem")]);
    let v = &r.stores[0];
    assert!(v.verified, "{v:?}");
    assert!(v.legacy_algorithms);
    assert_eq!(v.error, None);
    assert!(r.weak_hash_on_path);
    assert_eq!(r.certs[0].signature_hash, SignatureHash::Sha1);
    assert_eq!(r.certs[0].signature_oid, "1.2.840.113549.1.1.5");
    assert_eq!(r.certs[0].signature_algorithm, "sha1WithRSAEncryption");
    assert!(r.hostname.unwrap().matched);
}

#[test]
fn a_sha1_leaf_with_a_flipped_signature_byte_is_a_bad_signature_not_a_legacy_success() {
    let dir = tempfile::tempdir().unwrap();
    root(dir.path(), &Key::Rsa(2048), "sha1");
    leaf(dir.path(), &Key::Rsa(2048), "sha1", &[]);
    let mut der = pem(dir.path(), "leaf.pem").to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let r = evaluate(dir.path(), vec![CertificateDer::from(der)]);
    let v = &r.stores[0];
    assert!(!v.verified);
    assert_eq!(v.error, Some(VerifyErrorKind::BadSignature));
    assert_eq!(v.error_position, Some(0));
}

#[test]
fn an_rsa1024_root_issuing_a_sha256_leaf_verifies_via_the_legacy_list() {
    let dir = tempfile::tempdir().unwrap();
    root(dir.path(), &Key::Rsa(1024), "sha256");
    leaf(dir.path(), &Key::Rsa(2048), "sha256", &[]);
    let r = evaluate(dir.path(), vec![pem(dir.path(), "leaf.pem")]);
    let v = &r.stores[0];
    assert!(v.verified, "{v:?}");
    assert!(v.legacy_algorithms);
    assert!(!r.weak_hash_on_path);
    assert_eq!(
        r.anchor.as_ref().unwrap().key,
        certprobe::chain::KeyAlgorithm::Rsa { bits: 1024 }
    );
}

#[test]
fn an_ecdsa_with_sha1_chain_is_an_unverifiable_legacy_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    root(dir.path(), &Key::P256, "sha1");
    leaf(dir.path(), &Key::P256, "sha1", &[]);
    let r = evaluate(dir.path(), vec![pem(dir.path(), "leaf.pem")]);
    let v = &r.stores[0];
    assert!(!v.verified);
    assert_eq!(
        v.error,
        Some(VerifyErrorKind::UnsupportedSignatureAlgorithm)
    );
    assert_eq!(v.error_position, Some(0));
    assert!(v
        .detail
        .as_deref()
        .unwrap()
        .contains("unverifiable legacy algorithm"));
    assert_eq!(r.certs[0].signature_algorithm, "ecdsa-with-SHA1");
    assert!(r.weak_hash_on_path);
}

#[test]
fn an_rsassa_pss_leaf_is_flagged_as_pss_with_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    root(dir.path(), &Key::Rsa(2048), "sha256");
    leaf(
        dir.path(),
        &Key::Rsa(2048),
        "sha256",
        &["rsa_padding_mode:pss", "rsa_pss_saltlen:digest"],
    );
    let r = evaluate(dir.path(), vec![pem(dir.path(), "leaf.pem")]);
    let f = &r.certs[0];
    assert!(f.is_rsassa_pss);
    assert_eq!(f.signature_oid, "1.2.840.113549.1.1.10");
    assert_eq!(f.signature_hash, SignatureHash::Sha256);
    assert_eq!(f.signature_algorithm, "rsassaPss-SHA256");
    assert!(r.stores[0].verified, "{:?}", r.stores[0]);
    assert!(!r.stores[0].legacy_algorithms);
}
