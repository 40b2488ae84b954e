//! Handshake capture against foreign TLS stacks: `openssl s_server` and nginx serving chains
//! generated at test time (rcgen, or the openssl CLI for RSA-1024 / SHA-1), including MTLS,
//! TLS 1.0/1.1-only (legacy capture) and weak-key servers.

use crate::support;

use certprobe::probe::handshake::{AppProtocol, ClientAuthExpectation};
use certprobe::probe::{probe_address, FailureReason, HandshakeSignature};
use rustls_pki_types::CertificateDer;
use support::*;

#[tokio::test]
async fn openssl_s_server_chain_is_captured() {
    let pki = Pki::new("ossl", &["ossl.test"]);
    let f = Files::new();
    let server = OpensslServer::start(
        &f.write("leaf.pem", &pki.leaf.pem),
        &f.write("leaf.key", &pki.leaf.key_pem),
        Some(&f.write("chain.pem", &pki.intermediate.pem)),
        &[],
    );
    let c = probe_address(&spec_for(server.addr, Some("ossl.test")), server.addr).await;
    assert!(
        c.failure.is_none(),
        "{:?}\n{}",
        c.failure,
        server.child.output()
    );
    assert_eq!(c.chain, pki.chain());
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));
    assert_eq!(c.handshake_signature, HandshakeSignature::Verified);

    // Speaking HTTP to `-www` gets a normal answer: not a rejection.
    let mut http = spec_for(server.addr, Some("ossl.test"));
    http.app_protocol = AppProtocol::Http;
    let c = probe_address(&http, server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
}

#[tokio::test]
async fn openssl_mtls_required_server_accepts_ours_and_rejects_missing_or_foreign() {
    let pki = Pki::new("osslmtls", &["osslmtls.test"]);
    let client_ca = Ca::root("Ossl Client CA");
    let client = client_ca.client("ossl-client");
    let foreign = Ca::root("Ossl Foreign CA").client("foreign");
    let f = Files::new();
    let ca_file = f.write("client-ca.pem", &client_ca.pem);
    let ca_arg = ca_file.display().to_string();
    let server = OpensslServer::start(
        &f.write("leaf.pem", &pki.leaf.pem),
        &f.write("leaf.key", &pki.leaf.key_pem),
        Some(&f.write("chain.pem", &pki.intermediate.pem)),
        &["-Verify", "1", "-verify_return_error", "-CAfile", &ca_arg],
    );

    let mut spec = patient(spec_for(server.addr, Some("osslmtls.test")));
    spec.client_identity = Some(identity(&client, &[]));
    spec.expect_client_auth = ClientAuthExpectation::Required;
    let c = probe_address(&spec, server.addr).await;
    assert!(
        c.failure.is_none(),
        "{:?}\n{}",
        c.failure,
        server.child.output()
    );
    assert_eq!(c.client_auth.accepted, Some(true));
    assert_eq!(c.mtls_enforced, Some(true));
    assert!(c
        .client_auth
        .acceptable_ca_names
        .iter()
        .any(|n| n.contains("CN=Ossl Client CA")));

    let none = probe_address(
        &patient(spec_for(server.addr, Some("osslmtls.test"))),
        server.addr,
    )
    .await;
    let fail = none.failure.expect("rejected");
    assert_eq!(fail.reason, FailureReason::ClientCertRejected, "{fail:?}");
    assert_eq!(fail.alert.as_deref(), Some("certificate_required"));
    assert_eq!(none.chain, pki.chain());

    let mut bad = patient(spec_for(server.addr, Some("osslmtls.test")));
    bad.client_identity = Some(identity(&foreign, &[]));
    let c = probe_address(&bad, server.addr).await;
    let fail = c.failure.expect("rejected");
    assert_eq!(fail.reason, FailureReason::ClientCertRejected, "{fail:?}");
    assert_eq!(fail.alert.as_deref(), Some("unknown_ca"));
    assert_eq!(c.client_auth.accepted, Some(false));
}

#[tokio::test]
async fn nginx_chain_is_captured() {
    let pki = Pki::new("nginx", &["nginx.test"]);
    let nginx = Nginx::start(&pki.chain_pem(), &pki.leaf.key_pem, "");
    let mut spec = patient(spec_for(nginx.addr, Some("nginx.test")));
    spec.app_protocol = AppProtocol::Http;
    spec.alpn = vec!["http/1.1".into()];
    let c = probe_address(&spec, nginx.addr).await;
    assert!(
        c.failure.is_none(),
        "{:?}\n{}",
        c.failure,
        nginx.child.output()
    );
    assert_eq!(c.chain, pki.chain());
    assert_eq!(c.alpn.as_deref(), Some("http/1.1"));
    assert!(!c.client_auth.requested);
}

#[tokio::test]
async fn nginx_mtls_rejection_arrives_as_http_400_and_is_classified() {
    let pki = Pki::new("nginxmtls", &["nginxmtls.test"]);
    let client_ca = Ca::root("Nginx Client CA");
    let client = client_ca.client("nginx-client");
    let foreign = Ca::root("Nginx Foreign CA").client("foreign");
    let f = Files::new();
    let ca_file = f.write("client-ca.pem", &client_ca.pem);
    let nginx = Nginx::start(
        &pki.chain_pem(),
        &pki.leaf.key_pem,
        &format!(
            "ssl_client_certificate {}; ssl_verify_client on;",
            ca_file.display()
        ),
    );
    let http = |identity: Option<std::sync::Arc<certprobe::probe::ClientIdentity>>| {
        let mut spec = patient(spec_for(nginx.addr, Some("nginxmtls.test")));
        spec.app_protocol = AppProtocol::Http;
        spec.client_identity = identity;
        spec
    };

    // Our certificate: accepted, and the no-certificate probe is refused (HTTP 400).
    let mut spec = http(Some(identity(&client, &[])));
    spec.expect_client_auth = ClientAuthExpectation::Required;
    let c = probe_address(&spec, nginx.addr).await;
    assert!(
        c.failure.is_none(),
        "{:?}\n{}",
        c.failure,
        nginx.child.output()
    );
    assert_eq!(c.client_auth.accepted, Some(true));
    assert_eq!(c.mtls_enforced, Some(true));

    // No certificate: the TLS handshake succeeds, the rejection is the HTTP 400.
    let c = probe_address(&http(None), nginx.addr).await;
    let fail = c.failure.clone().expect("rejected");
    assert_eq!(fail.reason, FailureReason::ClientCertRejected, "{fail:?}");
    assert!(fail.detail.contains("400"), "{fail:?}");
    assert_eq!(fail.alert, None);
    assert_eq!(c.chain, pki.chain());
    assert!(c.tls_version.is_some());

    // A certificate from another CA: also a 400.
    let c = probe_address(&http(Some(identity(&foreign, &[]))), nginx.addr).await;
    let fail = c.failure.expect("rejected");
    assert_eq!(fail.reason, FailureReason::ClientCertRejected, "{fail:?}");
    assert_eq!(c.client_auth.accepted, Some(false));

    // Without app_protocol http the rejection is invisible: nginx waits for a request. This is
    // why endpoints behind nginx-like front ends must declare `app_protocol: http`.
    let mut silent = http(None);
    silent.app_protocol = AppProtocol::None;
    let c = probe_address(&silent, nginx.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert!(c.client_auth.requested);
}

/// An RSA root + RSA leaf made by the openssl CLI (`digest` sha1/sha256, leaf `bits`).
struct OsslPki {
    _files: Files,
    root: OsslCert,
    leaf: OsslCert,
}

fn ossl_pki(leaf_bits: u32, digest: &str) -> OsslPki {
    let files = Files::new();
    let root = ossl_root(files.dir.path(), "root", "Legacy Root CA", 2048, digest);
    let leaf = ossl_leaf(
        files.dir.path(),
        &root,
        "leaf",
        "legacy.test",
        "DNS:legacy.test,IP:127.0.0.1",
        leaf_bits,
        digest,
    );
    OsslPki {
        _files: files,
        root,
        leaf,
    }
}

fn der(bytes: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from(bytes.to_vec())
}

async fn legacy_only_server_is_captured_by_the_legacy_handshake(flag: &str, version: &str) {
    let pki = ossl_pki(2048, "sha1");
    let server = OpensslServer::start(
        &pki.leaf.cert,
        &pki.leaf.key,
        Some(&pki.root.cert),
        &[flag, "-cipher", "DEFAULT@SECLEVEL=0"],
    );
    let spec = spec_for(server.addr, Some("legacy.test"));
    let c = probe_address(&spec, server.addr).await;
    let fail = c
        .failure
        .clone()
        .expect("protocol_version is still reported");
    assert_eq!(
        fail.reason,
        FailureReason::ProtocolVersion,
        "{fail:?}\n{}",
        server.child.output()
    );
    assert_eq!(fail.alert.as_deref(), Some("protocol_version"));
    assert_eq!(
        fail.detail,
        format!("server offers only {version}; chain captured by legacy handshake")
    );
    assert_eq!(c.chain, vec![der(&pki.leaf.der), der(&pki.root.der)]);
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some(version));
    let legacy = c.legacy.clone().expect("legacy facts");
    assert_eq!(legacy.version.as_str(), version);
    assert!(
        legacy.cipher_suite.starts_with("TLS_"),
        "an offered suite is named: {legacy:?}"
    );
    assert_eq!(
        c.cipher_suite.as_deref(),
        Some(legacy.cipher_suite.as_str())
    );
    assert_eq!(c.handshake_signature, HandshakeSignature::NotChecked);

    // Without the fallback: only the reason, no chain.
    let mut no_fallback = spec.clone();
    no_fallback.legacy_fallback = false;
    let c = probe_address(&no_fallback, server.addr).await;
    assert_eq!(c.failure.unwrap().reason, FailureReason::ProtocolVersion);
    assert!(c.chain.is_empty());
    assert!(c.legacy.is_none());
}

#[tokio::test]
async fn tls10_only_server_is_captured_by_the_legacy_handshake() {
    legacy_only_server_is_captured_by_the_legacy_handshake("-tls1", "TLSv1.0").await;
}

#[tokio::test]
async fn tls11_only_server_is_captured_by_the_legacy_handshake() {
    legacy_only_server_is_captured_by_the_legacy_handshake("-tls1_1", "TLSv1.1").await;
}

#[tokio::test]
async fn cbc_only_tls12_server_is_captured_with_handshake_failure_and_its_suite() {
    let pki = ossl_pki(2048, "sha256");
    let server = OpensslServer::start(
        &pki.leaf.cert,
        &pki.leaf.key,
        None,
        &["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"],
    );
    let c = probe_address(&spec_for(server.addr, Some("legacy.test")), server.addr).await;
    let fail = c.failure.clone().expect("failure");
    assert_eq!(
        fail.reason,
        FailureReason::HandshakeFailure,
        "{fail:?}\n{}",
        server.child.output()
    );
    assert_eq!(c.chain, vec![der(&pki.leaf.der)]);
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.2"));
    assert_eq!(
        c.legacy.as_ref().map(|l| l.cipher_suite.as_str()),
        Some("TLS_RSA_WITH_AES_128_CBC_SHA")
    );
    assert!(fail.detail.contains("legacy handshake"), "{fail:?}");

    // Without the fallback: handshake_failure before any certificate, nothing captured.
    let mut spec = spec_for(server.addr, Some("legacy.test"));
    spec.legacy_fallback = false;
    let c = probe_address(&spec, server.addr).await;
    let fail = c.failure.expect("failure");
    assert_eq!(fail.reason, FailureReason::HandshakeFailure, "{fail:?}");
    assert_eq!(fail.alert.as_deref(), Some("handshake_failure"));
    assert!(c.chain.is_empty());
}

#[tokio::test]
async fn rsa_1024_server_is_captured_with_weak_key_flag() {
    let pki = ossl_pki(1024, "sha1");
    for flag in ["-tls1_3", "-tls1_2"] {
        let server = OpensslServer::start(
            &pki.leaf.cert,
            &pki.leaf.key,
            Some(&pki.root.cert),
            &[flag, "-cipher", "DEFAULT@SECLEVEL=0"],
        );
        let c = probe_address(&spec_for(server.addr, Some("legacy.test")), server.addr).await;
        assert!(
            c.failure.is_none(),
            "{flag}: {:?}\n{}",
            c.failure,
            server.child.output()
        );
        assert_eq!(c.chain, vec![der(&pki.leaf.der), der(&pki.root.der)]);
        match &c.handshake_signature {
            HandshakeSignature::WeakKeyNotVerified(detail) => {
                assert!(detail.contains("RSA-1024"), "{detail}")
            }
            other => panic!("{flag}: expected WeakKeyNotVerified, got {other:?}"),
        }
        assert!(c.legacy.is_none());
    }
}
