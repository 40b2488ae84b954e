//! Shared fixtures for the criterion benches: a real ECDSA P-256 chain (root -> intermediate ->
//! leaf, generated with rcgen at start-up), a validated config with two trust stores (`internal`
//! with the root, `public` = the built-in webpki roots) and the lync2013 policy preset, and
//! outcomes produced by the real evaluator (`runner::evaluate_capture`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use certprobe::config::{BaseDir, Config};
use certprobe::outcome::ProbeOutcome;
use certprobe::probe::{Capture, Failure, FailureReason, HandshakeSignature};
use certprobe::runner::{self, EvalContext};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;

/// Evaluation time: the moment the fixture is built (the chain is valid for 90 days).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub struct Fixture {
    pub chain: Vec<CertificateDer<'static>>,
    pub config: Config,
    pub ctx: EvalContext,
    _dir: tempfile::TempDir,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let t = time::OffsetDateTime::now_utc();
    p.not_before = t - time::Duration::days(1);
    p.not_after = t + time::Duration::days(3650);
    p
}

impl Fixture {
    pub fn new() -> Self {
        let root_key = KeyPair::generate().expect("key");
        let root_params = ca_params("bench root");
        let root = root_params.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::new(root_params, root_key);

        let int_key = KeyPair::generate().expect("key");
        let int_params = ca_params("bench intermediate");
        let int = int_params
            .signed_by(&int_key, &root_issuer)
            .expect("intermediate");
        let int_issuer = Issuer::new(int_params, int_key);

        let leaf_key = KeyPair::generate().expect("key");
        let mut lp = CertificateParams::new(vec![
            "fepool.contoso.com".to_string(),
            "fe01.contoso.com".to_string(),
            "target.tlsbench.test".to_string(),
        ])
        .expect("leaf params");
        lp.distinguished_name
            .push(DnType::CommonName, "fepool.contoso.com");
        lp.is_ca = IsCa::ExplicitNoCa;
        lp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        lp.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        // Lync profiles require a CRL distribution point (B2): a healthy fixture carries one.
        lp.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec!["http://pki.contoso.com/crl/issuing.crl".to_string()],
        }];
        let t = time::OffsetDateTime::now_utc();
        lp.not_before = t - time::Duration::days(1);
        lp.not_after = t + time::Duration::days(90);
        let leaf = lp.signed_by(&leaf_key, &int_issuer).expect("leaf");

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("root.pem"), root.pem()).expect("write root");
        let yaml = r#"
version: 1
trust_stores:
  internal: { class: internal, pem_files: [root.pem] }
  public: { class: public, builtin: true }
policy:
  version: 1
  preset: lync2013
  vars:
    sip_domains: [contoso.com]
    fe_pool: fepool.contoso.com
    fe_web_internal: lyncweb.contoso.com
    fe_web_external: webext.contoso.com
endpoints:
  - name: fe01
    host: fe01.contoso.com
    sni: fepool.contoso.com
    resolve: [127.0.10.1]
    port: 5061
    profile: fe_default
  - name: web
    host: target.tlsbench.test
    resolve: [127.0.0.1]
    port: 9443
"#;
        let config = Config::from_yaml(yaml, "<bench>", BaseDir(dir.path().to_path_buf()))
            .unwrap_or_else(|e| panic!("bench config: {e}"));
        let ctx = EvalContext {
            stores: config.stores.clone(),
            policy: config.policy.clone(),
            at: None,
        };
        Fixture {
            chain: vec![leaf.der().clone(), int.der().clone()],
            config,
            ctx,
            _dir: dir,
        }
    }

    /// A successful TLS 1.3 capture of the chain, as the prober records it.
    pub fn capture(&self, address: SocketAddr, sni: &str) -> Capture {
        let mut c = Capture::new(address, Some(sni.to_string()));
        c.connect_duration = Some(Duration::from_micros(80));
        c.handshake_duration = Some(Duration::from_micros(900));
        c.verdict_duration = Some(Duration::from_micros(300));
        c.tls_version = Some(certprobe::vocab::TlsVersion::Tls13);
        c.cipher_suite = Some("TLS13_AES_256_GCM_SHA384".into());
        c.kx_group = Some("X25519".into());
        c.chain = self.chain.clone();
        c.handshake_signature = HandshakeSignature::Verified;
        c
    }

    /// One evaluated outcome for endpoint `i` (the `web` endpoint renamed), success or failure.
    pub fn outcome(&self, i: usize, success: bool) -> ProbeOutcome {
        let mut ep = self.config.endpoint("web").expect("web endpoint").clone();
        std::sync::Arc::make_mut(&mut ep.meta).endpoint = format!("ep{i:05}");
        let addr: SocketAddr = format!("127.77.{}.{}:9443", i / 250, i % 250 + 1)
            .parse()
            .expect("addr");
        let mut capture = self.capture(addr, "target.tlsbench.test");
        if !success {
            capture.chain.clear();
            capture.tls_version = None;
            capture.cipher_suite = None;
            capture.kx_group = None;
            capture.handshake_signature = HandshakeSignature::NotChecked;
            capture.failure = Some(Failure::new(
                FailureReason::ConnectRefused,
                format!("TCP connect to {addr}: Connection refused (os error 111)"),
            ));
        }
        runner::evaluate_capture(&ep, addr.to_string(), capture, &self.ctx, now() as f64)
    }
}
