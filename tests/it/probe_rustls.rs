//! Handshake capture against in-process tokio-rustls servers on loopback, with certificates
//! generated at test time.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use certprobe::probe::handshake::ClientAuthExpectation;
use certprobe::probe::{
    probe_address, probe_endpoint, AddressMode, FailureReason, HandshakeSignature,
};
use support::*;

fn sha_of(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(der))
}

#[tokio::test]
async fn valid_chain_is_captured_with_tls13_facts() {
    let pki = Pki::new("valid", &["valid.test"]);
    let server = TlsServer::start("127.0.0.1", pki.server_config(&[], ClientAuth::None)).await;
    let mut spec = spec_for(server.addr, Some("valid.test"));
    spec.alpn = vec!["h2".into()];
    let c = probe_address(&spec, server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert_eq!(c.chain, pki.chain());
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));
    assert!(
        c.cipher_suite.as_deref().unwrap().starts_with("TLS13_"),
        "{:?}",
        c.cipher_suite
    );
    assert_eq!(c.kx_group.as_deref(), Some("X25519"));
    assert_eq!(c.handshake_signature, HandshakeSignature::Verified);
    assert_eq!(c.sni.as_deref(), Some("valid.test"));
    assert!(c.connect_duration.is_some() && c.handshake_duration.is_some());
    assert!(!c.client_auth.requested);
    assert_eq!(c.client_auth.accepted, None);
    assert!(c.legacy.is_none());
    // The server has no ALPN configured: nothing negotiated.
    assert_eq!(c.alpn, None);
}

#[tokio::test]
async fn tls12_only_server_is_captured_as_tls12() {
    let pki = Pki::new("tls12", &["tls12.test"]);
    let server = TlsServer::start(
        "127.0.0.1",
        pki.server_config(&[&rustls::version::TLS12], ClientAuth::None),
    )
    .await;
    let c = probe_address(&spec_for(server.addr, Some("tls12.test")), server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.2"));
    assert!(
        c.cipher_suite
            .as_deref()
            .unwrap()
            .starts_with("TLS_ECDHE_ECDSA_WITH_"),
        "{:?}",
        c.cipher_suite
    );
    assert_eq!(c.chain.len(), 2);
    assert_eq!(c.handshake_signature, HandshakeSignature::Verified);
}

#[tokio::test]
async fn expired_self_signed_and_wrong_name_chains_are_still_captured() {
    let root = Ca::root("Odd Root");
    let now = time::OffsetDateTime::now_utc();
    let expired = root.leaf_with(&LeafOptions {
        cn: "expired.test",
        sans: &["expired.test"],
        validity: Some((
            now - time::Duration::days(400),
            now - time::Duration::days(30),
        )),
        client: false,
    });
    let selfsigned = self_signed("self.test", &["self.test"]);
    let other_name = root.leaf("elsewhere.test", &["elsewhere.test"]);
    for (label, leaf, sni) in [
        ("expired", &expired, "expired.test"),
        ("self-signed", &selfsigned, "self.test"),
        ("wrong name", &other_name, "asked-for.test"),
    ] {
        let server = TlsServer::start(
            "127.0.0.1",
            server_config(
                vec![leaf.cert.clone()],
                leaf.key_der(),
                &[],
                ClientAuth::None,
            ),
        )
        .await;
        let c = probe_address(&spec_for(server.addr, Some(sni)), server.addr).await;
        assert!(c.failure.is_none(), "{label}: {:?}", c.failure);
        assert_eq!(c.chain, vec![leaf.cert.clone()], "{label}");
        assert_eq!(
            c.tls_version.map(|v| v.as_str()),
            Some("TLSv1.3"),
            "{label}"
        );
        assert_eq!(server.handshakes_reaching(1).await, 1, "{label}");
    }
}

#[tokio::test]
async fn handshake_signature_by_a_key_other_than_the_leafs_fails_with_chain_captured() {
    let pki = Pki::new("forged", &["forged.test"]);
    let impostor = pki.intermediate.leaf("impostor", &["forged.test"]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = server_config_with_key(
            mismatched_key(pki.chain(), &impostor),
            &[version],
            ClientAuth::None,
        );
        let server = TlsServer::start("127.0.0.1", config).await;
        let c = probe_address(&spec_for(server.addr, Some("forged.test")), server.addr).await;
        let f = c.failure.expect("a forged handshake signature must fail");
        assert_eq!(f.reason, FailureReason::TlsError, "{version:?}: {f:?}");
        assert!(f.detail.contains("signature"), "{f:?}");
        assert_eq!(
            c.chain,
            pki.chain(),
            "chain captured before the signature check"
        );
        assert_eq!(server.handshakes.load(Ordering::SeqCst), 0);
    }
}

struct MtlsLab {
    server_pki: Pki,
    client_ca: Ca,
    client: Leaf,
    foreign: Leaf,
}

fn mtls_lab() -> MtlsLab {
    let server_pki = Pki::new("mtls", &["mtls.test"]);
    let client_ca = Ca::root("Client Root CA");
    let client = client_ca.client("probe-client");
    let foreign = Ca::root("Foreign Root CA").client("foreign-client");
    MtlsLab {
        server_pki,
        client_ca,
        client,
        foreign,
    }
}

async fn mtls_server(
    lab: &MtlsLab,
    version: &'static rustls::SupportedProtocolVersion,
    required: bool,
) -> TlsServer {
    let roots = vec![lab.client_ca.cert.clone()];
    let auth = if required {
        ClientAuth::Required(roots)
    } else {
        ClientAuth::Optional(roots)
    };
    TlsServer::start(
        "127.0.0.1",
        server_config(
            lab.server_pki.chain(),
            lab.server_pki.leaf.key_der(),
            &[version],
            auth,
        ),
    )
    .await
}

#[tokio::test]
async fn mtls_server_accepts_our_client_certificate_and_enforces_mtls() {
    let lab = mtls_lab();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let server = mtls_server(&lab, version, true).await;
        let mut spec = patient(spec_for(server.addr, Some("mtls.test")));
        spec.client_identity = Some(identity(&lab.client, &[]));
        spec.expect_client_auth = ClientAuthExpectation::Required;
        let c = probe_address(&spec, server.addr).await;
        assert!(c.failure.is_none(), "{version:?}: {:?}", c.failure);
        assert!(c.client_auth.requested);
        assert!(c.client_auth.client_cert_sent);
        assert_eq!(c.client_auth.accepted, Some(true));
        assert_eq!(c.chain, lab.server_pki.chain());
        // The second probe (without a certificate) was refused.
        assert_eq!(c.mtls_enforced, Some(true), "{version:?}");
        // Acceptable CA names from the CertificateRequest.
        assert_eq!(
            c.client_auth.acceptable_ca_names.len(),
            1,
            "{:?}",
            c.client_auth
        );
        assert!(
            c.client_auth.acceptable_ca_names[0].contains("CN=Client Root CA"),
            "{:?}",
            c.client_auth.acceptable_ca_names
        );
        assert!(!c.client_auth.acceptable_ca_names_truncated);
        // One accepted handshake (ours, with the certificate).
        assert_eq!(server.handshakes_reaching(1).await, 1, "{version:?}");
    }
}

#[tokio::test]
async fn mtls_server_rejects_a_missing_certificate_with_certificate_required_and_chain_captured() {
    let lab = mtls_lab();
    let server = mtls_server(&lab, &rustls::version::TLS13, true).await;
    let c = probe_address(
        &patient(spec_for(server.addr, Some("mtls.test"))),
        server.addr,
    )
    .await;
    let f = c.failure.clone().expect("rejected");
    assert_eq!(f.reason, FailureReason::ClientCertRejected, "{f:?}");
    assert_eq!(f.alert.as_deref(), Some("certificate_required"));
    assert_eq!(c.chain, lab.server_pki.chain());
    assert!(c.client_auth.requested);
    assert!(!c.client_auth.client_cert_sent);
    assert_eq!(c.client_auth.accepted, None);
    // TLS 1.3: the handshake completed on our side, the verdict came on the first read.
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));
}

#[tokio::test]
async fn tls12_mtls_rejection_of_a_missing_certificate_is_classified_during_the_handshake() {
    let lab = mtls_lab();
    let server = mtls_server(&lab, &rustls::version::TLS12, true).await;
    let c = probe_address(&spec_for(server.addr, Some("mtls.test")), server.addr).await;
    let f = c.failure.clone().expect("rejected");
    assert_eq!(f.reason, FailureReason::ClientCertRejected, "{f:?}");
    assert_eq!(f.alert.as_deref(), Some("certificate_required"));
    assert_eq!(c.chain, lab.server_pki.chain());
}

#[tokio::test]
async fn mtls_server_rejects_a_certificate_from_another_ca_with_unknown_ca() {
    let lab = mtls_lab();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let server = mtls_server(&lab, version, true).await;
        let mut spec = patient(spec_for(server.addr, Some("mtls.test")));
        spec.client_identity = Some(identity(&lab.foreign, &[]));
        let c = probe_address(&spec, server.addr).await;
        let f = c.failure.clone().expect("rejected");
        assert_eq!(
            f.reason,
            FailureReason::ClientCertRejected,
            "{version:?}: {f:?}"
        );
        assert_eq!(f.alert.as_deref(), Some("unknown_ca"));
        assert!(c.client_auth.client_cert_sent);
        assert_eq!(c.client_auth.accepted, Some(false));
        assert_eq!(c.chain, lab.server_pki.chain());
    }
}

#[tokio::test]
async fn optional_client_auth_server_is_reported_as_not_enforcing_mtls() {
    let lab = mtls_lab();
    let server = mtls_server(&lab, &rustls::version::TLS13, false).await;
    let mut spec = spec_for(server.addr, Some("mtls.test"));
    spec.client_identity = Some(identity(&lab.client, &[]));
    spec.expect_client_auth = ClientAuthExpectation::Required;
    let c = probe_address(&spec, server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert!(c.client_auth.requested);
    assert_eq!(c.client_auth.accepted, Some(true));
    assert_eq!(c.mtls_enforced, Some(false));
    // Both probes completed their handshake: ours and the one without a certificate.
    assert_eq!(server.handshakes_reaching(2).await, 2);
}

#[tokio::test]
async fn mtls_enforcement_is_not_checked_unless_required() {
    let lab = mtls_lab();
    let server = mtls_server(&lab, &rustls::version::TLS13, true).await;
    let mut spec = spec_for(server.addr, Some("mtls.test"));
    spec.client_identity = Some(identity(&lab.client, &[]));
    spec.expect_client_auth = ClientAuthExpectation::Optional;
    let c = probe_address(&spec, server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert_eq!(c.mtls_enforced, None);
}

#[tokio::test]
async fn many_acceptable_ca_names_are_capped_and_flagged() {
    let server_pki = Pki::new("manyca", &["manyca.test"]);
    let roots: Vec<_> = (0..70)
        .map(|i| Ca::root(&format!("Accepted CA {i}")).cert)
        .collect();
    let server = TlsServer::start(
        "127.0.0.1",
        server_pki.server_config(&[], ClientAuth::Optional(roots)),
    )
    .await;
    let c = probe_address(&spec_for(server.addr, Some("manyca.test")), server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert!(c.client_auth.requested);
    assert_eq!(
        c.client_auth.acceptable_ca_names.len(),
        certprobe::probe::verifier::MAX_ACCEPTABLE_CA_NAMES
    );
    assert!(c.client_auth.acceptable_ca_names_truncated);
    assert!(c.client_auth.acceptable_ca_names[0].contains("CN=Accepted CA 0"));
}

#[tokio::test]
async fn each_loopback_address_is_captured_separately() {
    let a = Pki::new("node-a", &["pool.test"]);
    let b = Pki::new("node-b", &["pool.test"]);
    let server_a = TlsServer::start("127.0.0.2", a.server_config(&[], ClientAuth::None)).await;
    let server_b = TlsServer::start(
        "127.0.0.3",
        b.server_config(&[&rustls::version::TLS12], ClientAuth::None),
    )
    .await;
    let spec = spec_for(server_a.addr, Some("pool.test"));
    let ca = probe_address(&spec, server_a.addr).await;
    let mut spec_b = spec.clone();
    spec_b.port = server_b.addr.port();
    let cb = probe_address(&spec_b, server_b.addr).await;
    assert!(
        ca.failure.is_none() && cb.failure.is_none(),
        "{:?} {:?}",
        ca.failure,
        cb.failure
    );
    assert_eq!(ca.address, server_a.addr);
    assert_eq!(cb.address, server_b.addr);
    assert_eq!(ca.sni.as_deref(), Some("pool.test"));
    assert_eq!(cb.sni.as_deref(), Some("pool.test"));
    assert_eq!(ca.chain, a.chain());
    assert_eq!(cb.chain, b.chain());
    assert_ne!(sha_of(&ca.chain[0]), sha_of(&cb.chain[0]));
    assert_eq!(ca.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));
    assert_eq!(cb.tls_version.map(|v| v.as_str()), Some("TLSv1.2"));
}

#[tokio::test]
async fn probe_endpoint_probes_an_ip_literal_target_and_reports_dns_failures() {
    let pki = Pki::new("endpoint", &["127.0.0.1"]);
    let server = TlsServer::start("127.0.0.1", pki.server_config(&[], ClientAuth::None)).await;
    let spec = spec_for(server.addr, None);
    let caps = probe_endpoint(&spec, AddressMode::All).await;
    assert_eq!(caps.len(), 1);
    assert!(caps[0].failure.is_none(), "{:?}", caps[0].failure);
    assert_eq!(caps[0].sni, None);
    assert_eq!(caps[0].chain, pki.chain());

    let mut bad = spec.clone();
    bad.host = format!("{}.invalid", "y".repeat(70));
    let caps = probe_endpoint(&bad, AddressMode::All).await;
    assert_eq!(caps.len(), 1);
    assert_eq!(
        caps[0].address.to_string(),
        format!("0.0.0.0:{}", spec.port)
    );
    assert_eq!(caps[0].failure.as_ref().unwrap().reason, FailureReason::Dns);
}

/// The safety claim behind accepting any chain: against an untrusted (self-signed) server the
/// probe completes the handshake and sends zero application bytes.
#[tokio::test]
async fn probe_sends_no_application_data_to_an_untrusted_server() {
    let leaf = self_signed("attacker.test", &["attacker.test"]);
    let server = TlsServer::start(
        "127.0.0.1",
        server_config(
            vec![leaf.cert.clone()],
            leaf.key_der(),
            &[],
            ClientAuth::None,
        ),
    )
    .await;
    let spec = spec_for(server.addr, Some("victim.test"));
    let c = probe_address(&spec, server.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert_eq!(c.chain.len(), 1);
    // The server saw a completed handshake and then the connection end without any data.
    assert_eq!(server.handshakes_reaching(1).await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.app_bytes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn probe_endpoint_resolves_localhost_and_probes_each_address_with_the_same_sni() {
    let pki = Pki::new("localhost", &["localhost"]);
    let server = TlsServer::start("127.0.0.1", pki.server_config(&[], ClientAuth::None)).await;
    let mut spec = spec_for(server.addr, Some("localhost"));
    spec.host = "localhost".into();
    let caps = probe_endpoint(&spec, AddressMode::All).await;
    assert!(!caps.is_empty());
    assert!(
        caps.iter().all(|c| c.address.ip().is_loopback()),
        "{caps:?}"
    );
    assert!(caps.iter().all(|c| c.sni.as_deref() == Some("localhost")));
    let v4 = caps
        .iter()
        .find(|c| c.address == server.addr)
        .expect("127.0.0.1 is among localhost's addresses");
    assert!(v4.failure.is_none(), "{:?}", v4.failure);
    assert_eq!(v4.chain, pki.chain());
    // Any other address (e.g. ::1) has no server: refused, reported separately.
    for other in caps.iter().filter(|c| c.address != server.addr) {
        assert_eq!(
            other.failure.as_ref().map(|f| f.reason),
            Some(FailureReason::ConnectRefused)
        );
    }
    let first = probe_endpoint(&spec, AddressMode::First).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].address, caps[0].address);
}

/// A server that sends no CertificateRequest has no client-certificate verdict to give: the
/// probe does not wait the verdict timeout on it (it would hold a concurrency slot for nothing;
/// the soak showed 2,000 silent endpoints throttled to concurrency / verdict_timeout probes/s).
/// With a CertificateRequest the verdict is still read.
#[tokio::test]
async fn verdict_is_read_only_after_a_certificate_request() {
    let pki = Pki::new("verdict", &["verdict.test"]);
    let plain = TlsServer::start("127.0.0.1", pki.server_config(&[], ClientAuth::None)).await;
    let mut spec = spec_for(plain.addr, Some("verdict.test"));
    spec.verdict_timeout = Duration::from_secs(60);
    let c = tokio::time::timeout(Duration::from_secs(30), probe_address(&spec, plain.addr))
        .await
        .expect("the probe must not wait for the 60 s verdict timeout");
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert_eq!(c.verdict_duration, None);
    assert_eq!(c.chain, pki.chain());

    // Optional client auth: the server asks, we have no certificate, it stays silent; the
    // verdict read runs for the whole (short) verdict timeout.
    let asking = TlsServer::start(
        "127.0.0.1",
        pki.server_config(&[], ClientAuth::Optional(vec![pki.root.cert.clone()])),
    )
    .await;
    let mut spec = spec_for(asking.addr, Some("verdict.test"));
    spec.verdict_timeout = Duration::from_millis(400);
    let c = probe_address(&spec, asking.addr).await;
    assert!(c.failure.is_none(), "{:?}", c.failure);
    assert!(c.client_auth.requested);
    let waited = c.verdict_duration.expect("verdict read");
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
}

/// IPv6: a server on [::1] is probed by IP literal (bare and bracketed), with and without SNI,
/// through the CLI (`probe --once --target [::1]:port`: address `[::1]:port`, chain verified)
/// and through a config whose `host` is the bracketed literal (judged OK end to end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_server_is_probed_by_literal_through_the_cli_and_a_config() {
    let pki = Pki::new("v6", &["::1", "v6.test"]);
    let server = TlsServer::start("::1", pki.server_config(&[], ClientAuth::None)).await;
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    for host in ["::1", "[::1]"] {
        let mut spec = spec_for(server.addr, None);
        spec.host = host.into();
        let caps = probe_endpoint(&spec, AddressMode::All).await;
        assert_eq!(caps.len(), 1, "{host}: {caps:?}");
        assert_eq!(caps[0].address, server.addr, "{host}");
        assert!(caps[0].failure.is_none(), "{host}: {:?}", caps[0].failure);
        assert_eq!(caps[0].sni, None);
        assert_eq!(caps[0].chain, pki.chain());
    }
    let named = probe_address(&spec_for(server.addr, Some("v6.test")), server.addr).await;
    assert!(named.failure.is_none(), "{:?}", named.failure);
    assert_eq!(named.sni.as_deref(), Some("v6.test"));
    assert_eq!(named.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));

    let dir = tempfile::tempdir().unwrap();
    let root = write_file(dir.path(), "root.pem", &pki.root.pem);
    let target = format!("[::1]:{}", server.addr.port());
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_certprobe"))
            .args(["probe", "--once", "--target", &target, "--output", "json"])
            .arg("--ca")
            .arg(&root)
            .output()
            .unwrap()
    });
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let result = &doc["results"][0];
    assert_eq!(result["address"], target.as_str(), "{doc}");
    assert_eq!(
        result["capture"]["failure"],
        serde_json::Value::Null,
        "{doc}"
    );
    assert_eq!(result["chain"][0]["san_ip"][0], "::1", "{doc}");
    let stores = result["report"]["stores"].as_array().unwrap();
    assert!(
        stores.iter().any(|s| s["verified"] == true),
        "the chain verifies against --ca: {doc}"
    );

    // A config may bracket the literal too; the endpoint is judged like any other.
    let yaml = format!(
        "trust_stores:\n  lab: {{class: internal, pem_files: [root.pem]}}\nendpoints:\n  - name: v6\n    host: \"[::1]\"\n    port: {}\n    sni: v6.test\n",
        server.addr.port()
    );
    let cfg = certprobe::config::Config::from_yaml(
        &yaml,
        "v6.yaml",
        certprobe::config::BaseDir(dir.path().to_path_buf()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.endpoints[0].meta.host, "::1");
    let ctx = certprobe::runner::EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at: None,
    };
    let outcomes = certprobe::runner::probe_endpoint(&cfg.endpoints[0], &ctx).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].address, target);
    assert_eq!(
        outcomes[0].evaluation.status,
        certprobe::policy::Status::Ok,
        "{:?}",
        outcomes[0].evaluation
    );
    assert_eq!(server.handshakes_reaching(5).await, 5);
}
