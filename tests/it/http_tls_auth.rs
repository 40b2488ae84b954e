//! The exporter web config on real loopback sockets: TLS with a generated certificate, client
//! certificate verification, certificate rotation, basic auth with bcrypt.

use crate::http_common;
use crate::metrics_common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use certprobe::daemon::http::{serve, AppState, ProbeFuture, ProbeQuery, ProbeRefused};
use certprobe::daemon::metrics::{BuildInfo, Metrics};
use certprobe::daemon::webconfig::{AuthResult, BasicAuth, WebConfig};
use http_common::*;
use metrics_common::*;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::oneshot;

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        ca_der: cert.der().clone(),
        issuer: Issuer::new(p, key),
    }
}

/// (cert PEM, key PEM, cert DER) issued by `pki`.
fn leaf(pki: &Pki, san: &str, client: bool) -> (String, String, CertificateDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = p.signed_by(&key, &pki.issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

fn roots(ca: &CertificateDer<'static>) -> rustls::RootCertStore {
    let mut r = rustls::RootCertStore::empty();
    r.add(ca.clone()).unwrap();
    r
}

fn key_der(pem: &str) -> PrivateKeyDer<'static> {
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(web: WebConfig) -> Running {
    let metrics = Arc::new(Metrics::new(BuildInfo {
        version: "0.1.0".into(),
        revision: "test".into(),
    }));
    metrics.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    let prober = Arc::new(|q: ProbeQuery| -> ProbeFuture {
        Box::pin(async move {
            match q {
                ProbeQuery::Endpoint(n) => Err(ProbeRefused::UnknownEndpoint(n)),
                ProbeQuery::Target { host, .. } => Err(ProbeRefused::NotAllowed(host)),
            }
        })
    });
    let state = Arc::new(AppState::new(metrics, prober).with_web_config(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    Running { addr, stop, task }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("shutdown")
            .unwrap()
            .unwrap();
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn tls_listener_serves_metrics_to_a_trusting_client() {
    let pki = ca("Exporter Test CA");
    let (cert, key, _) = leaf(&pki, "localhost", false);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "server.crt", &cert);
    write(dir.path(), "server.key", &key);
    write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let web = WebConfig::load(&dir.path().join("web.yml")).unwrap();
    assert!(web.tls.is_some() && web.auth.is_none());
    let srv = start(web).await;

    let r = request_tls(srv.addr, roots(&pki.ca_der), None, "GET", "/metrics", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let e = parse(&r.body);
    assert_eq!(
        e.value("certprobe_probe_success", &[("endpoint", "web")]),
        1.0
    );

    // A client that does not trust the exporter's CA fails the handshake.
    let other = ca("Other CA");
    assert!(
        request_tls(srv.addr, roots(&other.ca_der), None, "GET", "/metrics", &[])
            .await
            .is_err()
    );
    // Plain HTTP to the TLS port gets no HTTP response.
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    srv.shutdown().await;
}

#[tokio::test]
async fn tls_certificate_is_reloaded_when_the_files_change() {
    let pki = ca("Rotation CA");
    let (cert1, key1, _) = leaf(&pki, "localhost", false);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "server.crt", &cert1);
    write(dir.path(), "server.key", &key1);
    let web = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        dir.path(),
    )
    .unwrap();
    let cfg = web.tls.clone().unwrap();
    let srv = start(web).await;

    async fn served_cert(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
    ) -> CertificateDer<'static> {
        let cfg = rustls::ClientConfig::builder_with_provider(certprobe::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(ca))
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    }
    let before = served_cert(srv.addr, &pki.ca_der).await;
    let (cert2, key2, der2) = leaf(&pki, "localhost", false);
    assert_ne!(before, der2);
    // Rotate (write to temp names, rename over, as deploy tools do); mtime granularity and the
    // 1 s check interval need the clock to move on.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(dir.path(), "server.key.tmp", &key2);
    write(dir.path(), "server.crt.tmp", &cert2);
    std::fs::rename(
        dir.path().join("server.key.tmp"),
        dir.path().join("server.key"),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("server.crt.tmp"),
        dir.path().join("server.crt"),
    )
    .unwrap();
    let after = served_cert(srv.addr, &pki.ca_der).await;
    assert_eq!(after, der2, "rotated certificate not served");
    // A broken replacement keeps the last good certificate.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(dir.path(), "server.crt", "not a certificate");
    assert_eq!(served_cert(srv.addr, &pki.ca_der).await, der2);
    drop(cfg);
    srv.shutdown().await;
}

#[tokio::test]
async fn client_certificates_are_verified_when_required() {
    let server_pki = ca("Server CA");
    let client_pki = ca("Prometheus Client CA");
    let (cert, key, _) = leaf(&server_pki, "localhost", false);
    let (ccert, ckey, cder) = leaf(&client_pki, "prometheus", true);
    let rogue = ca("Rogue CA");
    let (_, rkey, rder) = leaf(&rogue, "prometheus", true);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "server.crt", &cert);
    write(dir.path(), "server.key", &key);
    write(dir.path(), "clients.crt", &client_pki.ca_pem);
    let web = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n",
        dir.path(),
    )
    .unwrap();
    let _ = ccert;
    let srv = start(web).await;
    let r = request_tls(
        srv.addr,
        roots(&server_pki.ca_der),
        Some((vec![cder], key_der(&ckey))),
        "GET",
        "/healthz",
        &[],
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert!(
        request_tls(
            srv.addr,
            roots(&server_pki.ca_der),
            None,
            "GET",
            "/healthz",
            &[]
        )
        .await
        .is_err(),
        "client without certificate was served"
    );
    assert!(
        request_tls(
            srv.addr,
            roots(&server_pki.ca_der),
            Some((vec![rder], key_der(&rkey))),
            "GET",
            "/healthz",
            &[]
        )
        .await
        .is_err(),
        "client with a foreign certificate was served"
    );
    srv.shutdown().await;
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn basic_auth_401_then_200() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "basic_auth_users:\n  prometheus: '{hash}'\n  alice: '{}'\n",
        bcrypt::hash("other", 4).unwrap()
    );
    write(dir.path(), "web.yml", &yaml);
    let web = WebConfig::load(&dir.path().join("web.yml")).unwrap();
    let auth = web.auth.clone().unwrap();
    // Debug output never shows hashes.
    let dbg = format!("{auth:?}");
    assert!(dbg.contains("prometheus") && !dbg.contains("$2"), "{dbg}");
    let srv = start(web).await;

    let r = get(srv.addr, "/metrics").await;
    assert_eq!(r.status, 401);
    assert!(r.headers["www-authenticate"].starts_with("Basic realm="));
    for (u, p) in [
        ("prometheus", "wrong"),
        ("nobody", "s3cret"),
        ("alice", "s3cret"),
    ] {
        let h = basic(u, p);
        let r = request(
            srv.addr,
            "GET",
            "/metrics",
            &[("Authorization", h.as_str())],
        )
        .await;
        assert_eq!(r.status, 401, "{u}:{p}");
    }
    let r = request(
        srv.addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer abc")],
    )
    .await;
    assert_eq!(r.status, 401);

    let good = basic("prometheus", "s3cret");
    assert!(!auth.is_cached(Some(good.as_bytes())));
    let r = request(
        srv.addr,
        "GET",
        "/metrics",
        &[("Authorization", good.as_str())],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        parse(&r.body).value("certprobe_probe_success", &[("endpoint", "web")]),
        1.0
    );
    // The successful verification is cached: the next scrape costs no bcrypt.
    assert!(auth.is_cached(Some(good.as_bytes())));
    assert!(!auth.is_cached(Some(basic("prometheus", "wrong").as_bytes())));
    let r = request(
        srv.addr,
        "GET",
        "/ready",
        &[("Authorization", good.as_str())],
    )
    .await;
    assert_eq!(r.status, 503, "authenticated, not ready yet");
    srv.shutdown().await;
}

#[test]
fn basic_auth_check_directly() {
    let mut users = std::collections::BTreeMap::new();
    users.insert("u".to_string(), bcrypt::hash("p:with:colons", 4).unwrap());
    let a = BasicAuth::new(&users).unwrap();
    assert_eq!(
        a.check(Some(basic("u", "p:with:colons").as_bytes())),
        AuthResult::Ok
    );
    assert_eq!(
        a.check(Some(basic("u", "p").as_bytes())),
        AuthResult::Denied
    );
    assert_eq!(a.check(None), AuthResult::Denied);
    assert_eq!(a.check(Some(b"Basic !!!notbase64")), AuthResult::Denied);
}

#[test]
fn web_config_errors_are_precise_and_never_echo_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let err = WebConfig::from_yaml("basic_auth_users:\n  bob: plaintext-password\n", dir.path())
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("\"bob\"") && msg.contains("not a bcrypt hash"),
        "{msg}"
    );
    assert!(!msg.contains("plaintext-password"), "{msg}");

    let err = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("cipher_suites"), "{err:#}");

    let err = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("missing.crt"), "{err:#}");

    let pki = ca("CA");
    let (cert, key, _) = leaf(&pki, "localhost", false);
    write(dir.path(), "s.crt", &cert);
    write(dir.path(), "s.key", &key);
    let err = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireAndVerifyClientCert\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("needs client_ca_file"),
        "{err:#}"
    );
    let err = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireAnyClientCert\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("not supported"), "{err:#}");
    let err = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  min_version: TLS13\n  max_version: TLS12\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("min_version"), "{err:#}");
    // A key that does not belong to the certificate.
    let (_, other_key, _) = leaf(&pki, "localhost", false);
    write(dir.path(), "o.key", &other_key);
    let err = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: s.crt\n  key_file: o.key\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    // Empty file: no TLS, no auth.
    let w = WebConfig::from_yaml("", dir.path()).unwrap();
    assert!(w.tls.is_none() && w.auth.is_none());
}

#[tokio::test]
async fn tls13_only_listener_refuses_tls12_clients() {
    let pki = ca("CA13");
    let (cert, key, _) = leaf(&pki, "localhost", false);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.crt", &cert);
    write(dir.path(), "s.key", &key);
    let web = WebConfig::from_yaml(
        "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  min_version: TLS13\n",
        dir.path(),
    )
    .unwrap();
    let srv = start(web).await;
    let cfg = rustls::ClientConfig::builder_with_provider(certprobe::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&pki.ca_der))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let r = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await;
    assert!(r.is_err());
    let ok = request_tls(srv.addr, roots(&pki.ca_der), None, "GET", "/healthz", &[])
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    srv.shutdown().await;
}

/// Issue 16, item 11: with basic auth on, /healthz and /ready still answer without credentials
/// (Kubernetes probes and the container HEALTHCHECK send none); everything else needs them.
/// Before: both answered 401.
#[tokio::test]
async fn health_endpoints_need_no_credentials_with_basic_auth_on() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
    );
    let srv = start(WebConfig::load(&dir.path().join("web.yml")).unwrap()).await;
    let r = get(srv.addr, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(
        get(srv.addr, "/ready").await.status,
        503,
        "not ready yet, but not 401"
    );
    for path in ["/metrics", "/probe?endpoint=web", "/"] {
        assert_eq!(get(srv.addr, path).await.status, 401, "{path}");
    }
    assert_eq!(
        request(srv.addr, "POST", "/-/reload", &[]).await.status,
        401
    );
    srv.shutdown().await;
}
