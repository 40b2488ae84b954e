//! Policy verdicts over live captures: `openssl s_server` on 127.0.0.1 serves a SHA-1 internal
//! chain, a chain missing its intermediate and a wildcard certificate; `openssl s_client
//! -showcerts` captures what was presented (chain in presented order and the negotiated
//! version), which then goes through `chain::analyze` and `policy::evaluate`.

use crate::support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::openssl;

use certprobe::chain::{analyze, StoreClass, TrustStore, TrustStores};
use certprobe::policy::{
    evaluate, EndpointContext, Evaluation, Policy, PolicySpec, Status, Verdict,
};
use certprobe::probe::Capture;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

/// An internal PKI made with the openssl CLI: root -> issuing CA -> leaves.
fn make_pki(d: &Path) {
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    for k in ["root", "inter", "leaf"] {
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &format!("{k}.key"),
            ],
        );
    }
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/O=Contoso/CN=Contoso Root CA",
            "-days",
            "3650",
            "-sha256",
            "-out",
            "root.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "inter.key",
            "-subj",
            "/O=Contoso/CN=Contoso Issuing CA",
            "-out",
            "inter.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "2",
            "-days",
            "1825",
            "-sha256",
            "-extfile",
            "ca.cnf",
            "-extensions",
            "ca",
            "-out",
            "inter.pem",
        ],
    );
}

fn make_leaf(d: &Path, name: &str, cn: &str, sans: &[&str], hash: &str) {
    let san = sans
        .iter()
        .map(|s| format!("DNS:{s}"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(
        d.join(format!("{name}.cnf")),
        format!(
            "[v3]\nbasicConstraints=CA:FALSE\nsubjectAltName={san}\nextendedKeyUsage=serverAuth\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             crlDistributionPoints=URI:http://pki.contoso.com/crl/issuing.crl\n\
             authorityKeyIdentifier=keyid\n"
        ),
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-set_serial",
            "77",
            "-days",
            "397",
            &format!("-{hash}"),
            "-extfile",
            &format!("{name}.cnf"),
            "-extensions",
            "v3",
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// `openssl s_server` on a free loopback port; killed on drop.
struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(d: &Path, cert: &str, with_intermediate: bool) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = vec![
        "s_server".to_string(),
        "-accept".into(),
        format!("127.0.0.1:{port}"),
        "-cert".into(),
        cert.into(),
        "-key".into(),
        "leaf.key".into(),
        "-cipher".into(),
        "DEFAULT@SECLEVEL=0".into(),
        "-www".into(),
        "-quiet".into(),
    ];
    if with_intermediate {
        args.extend(["-cert_chain".into(), "inter.pem".into()]);
    }
    let child = Command::new("openssl")
        .current_dir(d)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_server");
    let mut server = Server(child, port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = server.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("s_server exited with {status}: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "s_server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Capture what the server presents with `openssl s_client -showcerts`.
fn capture(port: u16, sni: &str) -> Capture {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            sni,
            "-showcerts",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM certificates in s_client output");
    assert!(!chain.is_empty(), "no certificate captured: {text}");
    let version = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Protocol  : ")
                .or_else(|| l.strip_prefix("New, ").and_then(|r| r.split(',').next()))
        })
        .map(|v| v.trim().to_string());
    let mut c = Capture::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Some(sni.into()),
    );
    c.chain = chain;
    c.tls_version = version.and_then(|v| certprobe::vocab::TlsVersion::from_name(&v));
    c
}

fn stores(d: &Path) -> TrustStores {
    let root = CertificateDer::from_pem_file(d.join("root.pem")).unwrap();
    TrustStores {
        stores: vec![
            TrustStore::from_bundle("internal", StoreClass::Internal, vec![root]).unwrap(),
        ],
    }
}

fn policy(preset: &str) -> Policy {
    let spec: PolicySpec = serde_saphyr::from_str(&format!(
        "preset: {preset}\nvars:\n  sip_domains: [contoso.com]\n  fe_pool: eepool.contoso.com\n  mediation_pool: medpool.contoso.com\n"
    ))
    .unwrap();
    Policy::from_spec(spec).unwrap()
}

fn judge(p: &Policy, profile: &str, cap: &Capture, st: &TrustStores, host: &str) -> Evaluation {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let r = analyze(
        &cap.chain,
        Some(&p.name_check(profile, host)),
        st,
        UnixTime::since_unix_epoch(Duration::from_secs(now as u64)),
    );
    let ctx = EndpointContext {
        endpoint: host.into(),
        host: host.into(),
        name: Some(host.into()),
        ..Default::default()
    };
    evaluate(p, profile, cap, &r, &ctx, now)
}

fn issues(e: &Evaluation) -> String {
    e.verdicts
        .iter()
        .filter(|v| v.verdict != Verdict::Pass)
        .map(|v| {
            let s = match v.verdict {
                Verdict::Warn => "warn",
                Verdict::Fail => "fail",
                Verdict::NotApplicable => "na",
                Verdict::Pass => "pass",
            };
            format!("{}={s}", v.rule)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dump(e: &Evaluation) -> String {
    e.verdicts
        .iter()
        .map(|v| format!("  {} {:?}: {}", v.rule, v.verdict, v.message))
        .collect::<Vec<_>>()
        .join("\n")
}

const NA: &str = "mtls_enforced=na client_cert_accepted=na handshake_signature=na";

#[test]
fn live_sha1_internal_chain_missing_intermediate_and_wildcard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let st = stores(d);
    let fe_sans = ["eepool.contoso.com", "ee01.contoso.com"];
    make_leaf(d, "sha1", "eepool.contoso.com", &fe_sans, "sha1");
    make_leaf(d, "sha256", "eepool.contoso.com", &fe_sans, "sha256");
    make_leaf(
        d,
        "wild",
        "medpool.contoso.com",
        &["medpool.contoso.com", "*.contoso.com"],
        "sha256",
    );

    // SHA-1 internal chain: compliant under the documentation, failing when hardened.
    let s = serve(d, "sha1.pem", true);
    let cap = capture(s.1, "ee01.contoso.com");
    assert_eq!(cap.chain.len(), 2, "leaf and intermediate presented");
    assert_eq!(cap.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));
    let e = judge(
        &policy("lync2013"),
        "fe_default",
        &cap,
        &st,
        "ee01.contoso.com",
    );
    assert_eq!(issues(&e), NA, "{}", dump(&e));
    assert_eq!(e.status, Status::Ok);
    assert_eq!(
        e.verdict(certprobe::vocab::RuleId::Trusted)
            .unwrap()
            .message,
        "verified by store internal (with legacy SHA-1/RSA-1024 algorithms)"
    );
    let h = judge(
        &policy("lync2013-hardened"),
        "fe_default",
        &cap,
        &st,
        "ee01.contoso.com",
    );
    assert_eq!(
        issues(&h),
        format!("signature_hash=fail {NA}"),
        "{}",
        dump(&h)
    );
    assert_eq!(h.status, Status::Critical);
    drop(s);

    // The same kind of leaf served without its intermediate.
    let s = serve(d, "sha256.pem", false);
    let cap = capture(s.1, "ee01.contoso.com");
    assert_eq!(cap.chain.len(), 1);
    let e = judge(
        &policy("lync2013"),
        "fe_default",
        &cap,
        &st,
        "ee01.contoso.com",
    );
    assert_eq!(
        issues(&e),
        format!("trusted=fail issuer_class=na {NA} chain_hygiene=warn intermediate_expiry=na"),
        "{}",
        dump(&e)
    );
    assert_eq!(e.status, Status::Critical);
    assert!(e
        .verdict(certprobe::vocab::RuleId::ChainHygiene)
        .unwrap()
        .message
        .contains("intermediate is missing"));
    drop(s);

    // A wildcard certificate: fine for the default profile, unsupported on Mediation.
    let s = serve(d, "wild.pem", true);
    let cap = capture(s.1, "med01.contoso.com");
    let e = judge(
        &policy("lync2013"),
        "default",
        &cap,
        &st,
        "med01.contoso.com",
    );
    assert_eq!(issues(&e), "", "{}", dump(&e));
    assert_eq!(
        e.verdict(certprobe::vocab::RuleId::Hostname)
            .unwrap()
            .message,
        "med01.contoso.com matches SAN *.contoso.com"
    );
    let m = judge(
        &policy("lync2013"),
        "mediation",
        &cap,
        &st,
        "med01.contoso.com",
    );
    // The member name is only covered by the wildcard, which Mediation does not support.
    assert_eq!(
        issues(&m),
        format!("san_required=fail san_wildcard=fail {NA}"),
        "{}",
        dump(&m)
    );
    assert_eq!(m.status, Status::Critical);
}
