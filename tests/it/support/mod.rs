//! Shared helpers for certprobe's integration tests: PKI builders (rcgen, openssl CLI for what
//! rcgen cannot make), in-process tokio-rustls servers, hostile raw-TCP peers, and runners for
//! `openssl s_server` and nginx whose child processes are killed on drop.
//!
//! Everything listens on loopback only. Declared once in `tests/it/main.rs`; suites `use crate::support;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certprobe::probe::handshake::{ClientIdentity, ProbeSpec};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

// === Probe specs ===

/// A spec for a loopback target with short, load-tolerant timeouts: 2 s connect, 3 s handshake,
/// 300 ms verdict read.
pub fn spec_for(addr: SocketAddr, sni: Option<&str>) -> ProbeSpec {
    let mut spec = ProbeSpec::new(addr.ip().to_string(), addr.port());
    spec.sni = sni.map(str::to_owned);
    spec.connect_timeout = Duration::from_secs(2);
    spec.handshake_timeout = Duration::from_secs(3);
    spec.verdict_timeout = Duration::from_millis(300);
    spec
}

/// `spec` with a 2 s verdict read, for tests that must observe a post-handshake rejection (a
/// TLS 1.3 alert, nginx's HTTP 400): on a loaded machine 300 ms may pass before the server's
/// verdict arrives, and a silent server counts as accepting. Rejections arrive at once, so this
/// only costs time where the server really stays silent.
pub fn patient(mut spec: ProbeSpec) -> ProbeSpec {
    spec.verdict_timeout = Duration::from_secs(2);
    spec
}

// === PKI (rcgen, ECDSA P-256: ring cannot generate RSA keys) ===

/// A certificate authority: its certificate and the issuer used to sign with it.
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    pub key_pem: String,
    pub subject_cn: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf (server or client) certificate with its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub key_pem: String,
}

impl Leaf {
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// Options for a leaf certificate.
pub struct LeafOptions<'a> {
    pub cn: &'a str,
    pub sans: &'a [&'a str],
    /// Validity as (not_before, not_after); default: yesterday .. in 90 days.
    pub validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    /// Client-auth EKU instead of server-auth.
    pub client: bool,
}

impl<'a> LeafOptions<'a> {
    pub fn server(cn: &'a str, sans: &'a [&'a str]) -> Self {
        Self {
            cn,
            sans,
            validity: None,
            client: false,
        }
    }
}

fn default_validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::days(1),
        now + time::Duration::days(90),
    )
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certprobe tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let (nb, na) = default_validity();
    params.not_before = nb;
    params.not_after = na + time::Duration::days(365);
    params
}

impl Ca {
    /// A self-signed root CA.
    pub fn root(cn: &str) -> Self {
        let key = KeyPair::generate().expect("generate key");
        let params = ca_params(cn);
        let cert = params.self_signed(&key).expect("self-sign root");
        Self::from_parts(cn, params, key, cert)
    }

    /// An intermediate CA signed by `self`.
    pub fn intermediate(&self, cn: &str) -> Self {
        let key = KeyPair::generate().expect("generate key");
        let params = ca_params(cn);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign intermediate");
        Self::from_parts(cn, params, key, cert)
    }

    /// An intermediate CA signed by `self` with the given validity (e.g. already expired).
    pub fn intermediate_valid(
        &self,
        cn: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Self {
        let key = KeyPair::generate().expect("generate key");
        let mut params = ca_params(cn);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign intermediate");
        Self::from_parts(cn, params, key, cert)
    }

    /// A leaf for `opts` whose key is `key_pem` (PKCS#8 PEM; e.g. an RSA key made with the
    /// openssl CLI, since ring cannot generate RSA keys).
    pub fn leaf_with_key(&self, opts: &LeafOptions<'_>, key_pem: &str) -> Leaf {
        let (_, params) = leaf_params(opts);
        let key = KeyPair::from_pem(key_pem).expect("parse leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        leaf_from(cert, key)
    }

    fn from_parts(
        cn: &str,
        params: CertificateParams,
        key: KeyPair,
        cert: rcgen::Certificate,
    ) -> Self {
        Self {
            cert: cert.der().clone(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            subject_cn: cn.to_string(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server leaf for `sans` (DNS names or IPs), valid now.
    pub fn leaf(&self, cn: &str, sans: &[&str]) -> Leaf {
        self.leaf_with(&LeafOptions::server(cn, sans))
    }

    /// A client-auth leaf.
    pub fn client(&self, cn: &str) -> Leaf {
        self.leaf_with(&LeafOptions {
            cn,
            sans: &[],
            validity: None,
            client: true,
        })
    }

    pub fn leaf_with(&self, opts: &LeafOptions<'_>) -> Leaf {
        let (key, params) = leaf_params(opts);
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        leaf_from(cert, key)
    }
}

fn leaf_params(opts: &LeafOptions<'_>) -> (KeyPair, CertificateParams) {
    let key = KeyPair::generate().expect("generate key");
    let sans: Vec<String> = opts.sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, opts.cn);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if opts.client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let (nb, na) = opts.validity.unwrap_or_else(default_validity);
    params.not_before = nb;
    params.not_after = na;
    (key, params)
}

fn leaf_from(cert: rcgen::Certificate, key: KeyPair) -> Leaf {
    Leaf {
        cert: cert.der().clone(),
        pem: cert.pem(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        key_pem: key.serialize_pem(),
    }
}

/// A self-signed server certificate (not a CA).
pub fn self_signed(cn: &str, sans: &[&str]) -> Leaf {
    let (key, params) = leaf_params(&LeafOptions::server(cn, sans));
    let cert = params.self_signed(&key).expect("self-sign leaf");
    leaf_from(cert, key)
}

/// A root, an intermediate and a server leaf for `sans`: the usual "valid chain".
pub struct Pki {
    pub root: Ca,
    pub intermediate: Ca,
    pub leaf: Leaf,
}

impl Pki {
    pub fn new(label: &str, sans: &[&str]) -> Self {
        let root = Ca::root(&format!("{label} Root CA"));
        let intermediate = root.intermediate(&format!("{label} Issuing CA"));
        let leaf = intermediate.leaf(sans.first().copied().unwrap_or(label), sans);
        Self {
            root,
            intermediate,
            leaf,
        }
    }

    /// leaf + intermediate, as a server presents it.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.leaf.cert.clone(), self.intermediate.cert.clone()]
    }

    /// A rustls server config presenting [`Pki::chain`] with the leaf's key (see
    /// [`server_config`]).
    pub fn server_config(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        auth: ClientAuth,
    ) -> Arc<ServerConfig> {
        server_config(self.chain(), self.leaf.key_der(), versions, auth)
    }

    /// leaf + intermediate PEM (nginx `ssl_certificate`).
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.leaf.pem, self.intermediate.pem)
    }
}

/// A client identity for the probe.
pub fn identity(leaf: &Leaf, chain_extra: &[&Ca]) -> Arc<ClientIdentity> {
    let mut chain = vec![leaf.cert.clone()];
    chain.extend(chain_extra.iter().map(|c| c.cert.clone()));
    Arc::new(ClientIdentity {
        chain,
        key: leaf.key_der(),
    })
}

/// A temporary directory for a test's files.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        write_file(self.dir.path(), name, contents)
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Files {
    fn default() -> Self {
        Self::new()
    }
}

/// Write `contents` to `dir/name` and return the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

// === In-process tokio-rustls servers ===

/// How the in-process server treats client certificates.
pub enum ClientAuth {
    None,
    /// Require a certificate chaining to one of these roots.
    Required(Vec<CertificateDer<'static>>),
    /// Request one (these roots are the acceptable CA names) but allow none.
    Optional(Vec<CertificateDer<'static>>),
}

pub fn client_verifier(auth: &ClientAuth) -> Option<Arc<dyn ClientCertVerifier>> {
    let (roots, optional) = match auth {
        ClientAuth::None => return None,
        ClientAuth::Required(r) => (r, false),
        ClientAuth::Optional(r) => (r, true),
    };
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("add client root");
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(store), certprobe::crypto_provider());
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    Some(builder.build().expect("client verifier"))
}

/// A rustls ServerConfig for `chain`/`key`, the given versions (empty = 1.2 and 1.3) and client
/// authentication.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
    auth: ClientAuth,
) -> Arc<ServerConfig> {
    let provider = certprobe::crypto_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).expect("server key matches cert");
    server_config_with_key(Arc::new(certified), versions, auth)
}

/// Like [`server_config`] but with a prepared CertifiedKey (which may deliberately pair a chain
/// with the wrong signing key).
pub fn server_config_with_key(
    certified: Arc<CertifiedKey>,
    versions: &[&'static SupportedProtocolVersion],
    auth: ClientAuth,
) -> Arc<ServerConfig> {
    let versions: Vec<&'static SupportedProtocolVersion> = if versions.is_empty() {
        vec![&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        versions.to_vec()
    };
    let builder = ServerConfig::builder_with_provider(certprobe::crypto_provider())
        .with_protocol_versions(&versions)
        .expect("server versions");
    let builder = match client_verifier(&auth) {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_cert_resolver(Arc::new(FixedCert(certified))))
}

/// Presents one CertifiedKey whatever the ClientHello says.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A CertifiedKey whose chain and signing key do not belong together (bad handshake signature).
pub fn mismatched_key(chain: Vec<CertificateDer<'static>>, other: &Leaf) -> Arc<CertifiedKey> {
    let provider = certprobe::crypto_provider();
    let signer = provider
        .key_provider
        .load_private_key(other.key_der())
        .expect("load key");
    Arc::new(CertifiedKey::new(chain, signer))
}

/// A tokio-rustls server on loopback. Counts completed handshakes and the application bytes it
/// received after them. The accept task is aborted on drop.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub handshakes: Arc<AtomicUsize>,
    pub failed_handshakes: Arc<AtomicUsize>,
    pub app_bytes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsServer {
    /// Listen on `ip:0`.
    pub async fn start(ip: &str, config: Arc<ServerConfig>) -> Self {
        let listener = TcpListener::bind((ip.parse::<IpAddr>().expect("ip"), 0))
            .await
            .expect("bind tls server");
        let addr = listener.local_addr().expect("local addr");
        let handshakes = Arc::new(AtomicUsize::new(0));
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let app_bytes = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (h, f, b) = (
            handshakes.clone(),
            failed_handshakes.clone(),
            app_bytes.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, h, f, b) = (acceptor.clone(), h.clone(), f.clone(), b.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(_) => {
                            f.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut buf = [0u8; 4096];
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                b.fetch_add(n, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            handshakes,
            failed_handshakes,
            app_bytes,
            task,
        }
    }
}

impl TlsServer {
    /// The number of completed server-side handshakes once it reaches `n` (or after 5 s): the
    /// server task may finish its side of a handshake slightly after the client's.
    pub async fn handshakes_reaching(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen = self.handshakes.load(Ordering::SeqCst);
            if seen >= n || Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// === Hostile raw-TCP peers ===

/// What a hostile peer does after accepting and reading the ClientHello.
#[derive(Debug, Clone, Copy)]
pub enum Hostile {
    /// Answers with a non-TLS banner.
    Garbage,
    /// Says nothing and keeps the connection open.
    Stall,
    /// Resets the connection (SO_LINGER 0 + close => RST).
    Reset,
    /// Closes cleanly (FIN) at once without any TLS byte.
    CloseAtOnce,
}

/// A raw TCP server on 127.0.0.1 behaving as `Hostile`. Aborted on drop.
pub struct RawServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RawServer {
    pub async fn start(behaviour: Hostile) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if let Hostile::CloseAtOnce = behaviour {
                        // FIN before reading anything; keep the socket open (no RST for the
                        // client's late ClientHello) by only shutting down our side.
                        let _ = tcp.shutdown().await;
                        let mut sink = [0u8; 4096];
                        let _ = tokio::time::timeout(Duration::from_secs(5), async {
                            while let Ok(n) = tcp.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        })
                        .await;
                        return;
                    }
                    let mut hello = [0u8; 4096];
                    let _ = tcp.read(&mut hello).await;
                    match behaviour {
                        Hostile::Garbage => {
                            let _ = tcp
                                .write_all(
                                    b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\nProtocol mismatch.\r\n",
                                )
                                .await;
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                        Hostile::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
                        Hostile::Reset => {
                            let _ = tcp.set_zero_linger();
                            drop(tcp);
                        }
                        Hostile::CloseAtOnce => {}
                    }
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    /// A raw TCP server that answers every connection's first bytes (the ClientHello) with
    /// `reply`, written in `chunk`-byte pieces with short pauses (to exercise reassembly), then
    /// keeps the connection open for a while.
    pub async fn replying(reply: Vec<u8>, chunk: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw");
        let addr = listener.local_addr().expect("addr");
        let reply = Arc::new(reply);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let reply = reply.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let mut hello = [0u8; 4096];
                    let _ = tcp.read(&mut hello).await;
                    for piece in reply.chunks(chunk.max(1)) {
                        if tcp.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                });
            }
        });
        Self { addr, task }
    }
}

impl RawServer {
    /// A raw TCP server on 127.0.0.1 that runs `handler` for every accepted connection (each in
    /// its own task). Aborted on drop.
    pub async fn serve<F, Fut>(handler: F) -> Self
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw");
        let addr = listener.local_addr().expect("addr");
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handler(tcp));
            }
        });
        Self { addr, task }
    }
}

/// TLS records and handshake messages, for hand-built server flights.
pub mod wire {
    /// One TLS record (version 3.1).
    pub fn record(content_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 3, 1];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    pub fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    pub fn server_hello(version: u16, suite: u16) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x42; 32]);
        b.push(0); // session id
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0); // compression
        handshake(2, &b)
    }

    pub fn certificate(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        handshake(11, &body)
    }

    pub fn server_hello_done() -> Vec<u8> {
        handshake(14, &[])
    }
}

/// A loopback port that was free a moment ago (bind `ip:0`, read the port, release it).
pub fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip.parse::<IpAddr>().expect("ip"), 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

// === Child processes ===

/// A child process killed (and reaped) on drop, with its output collected for diagnostics.
pub struct ChildGuard {
    child: Child,
    _stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
}

impl ChildGuard {
    /// Spawn `cmd` with piped stdin (kept open), stdout and stderr collected. Returns once a
    /// line containing `ready_marker` appeared on stdout/stderr, or once `ready_addr` accepts
    /// TCP connections, within `wait`.
    pub fn spawn(
        mut cmd: Command,
        ready_marker: Option<&str>,
        ready_addr: Option<SocketAddr>,
        wait: Duration,
    ) -> Self {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
                    if out.len() < 64 * 1024 {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
            });
        }
        let mut guard = Self {
            child,
            _stdin: stdin,
            output,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!(
                    "{cmd:?} exited early with {status}; output:\n{}",
                    guard.output()
                );
            }
            let marker_seen = ready_marker.is_some_and(|m| guard.output().contains(m));
            let addr_ready = ready_addr.is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
            });
            if marker_seen || addr_ready {
                return guard;
            }
            if started.elapsed() > wait {
                let out = guard.output();
                drop(guard);
                panic!("{cmd:?} not ready within {wait:?}; output:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM (via `kill`) and wait up to `wait` for the exit status.
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl s_server -www` on 127.0.0.1:<free port>, killed on drop.
pub struct OpensslServer {
    pub addr: SocketAddr,
    pub child: ChildGuard,
}

impl OpensslServer {
    /// `cert`/`key` PEM files, optional `chain` PEM (intermediates), plus extra arguments
    /// (e.g. `-tls1`, `-cipher DEFAULT@SECLEVEL=0`, `-Verify 1 -CAfile ...`).
    pub fn start(cert: &Path, key: &Path, chain: Option<&Path>, extra: &[&str]) -> Self {
        let port = free_port("127.0.0.1");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new("openssl");
        cmd.arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-www");
        if let Some(chain) = chain {
            cmd.arg("-cert_chain").arg(chain);
        }
        cmd.args(extra);
        let child = ChildGuard::spawn(cmd, Some("ACCEPT"), None, Duration::from_secs(15));
        Self { addr, child }
    }
}

/// `program` (arguments to be added) run by a shell that kills it once its stdin closes: a
/// lab whose servers live in a static, never dropped, loses them when the test binary exits.
pub fn until_stdin_closes(program: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#""$@" & p=$!; cat >/dev/null; kill $p; wait $p"#)
        .arg("sh")
        .arg(program);
    cmd
}

/// An nginx.conf for a test: one worker, no master, in the foreground, its pid, error log and
/// temp paths under `dir`; `http` is the rest of the `http {}` block (log and server blocks).
pub fn nginx_conf(dir: &Path, worker_connections: u32, http: &str) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections {worker_connections}; }}
http {{
  open_file_cache off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
{http}}}
"#
    )
}

/// nginx (master_process off, daemon off) with one TLS server block on 127.0.0.1:<free port>,
/// killed on drop. `extra` goes into the `server {}` block.
pub struct Nginx {
    pub addr: SocketAddr,
    pub child: ChildGuard,
    pub dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(cert_chain_pem: &str, key_pem: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        write_file(dir.path(), "chain.pem", cert_chain_pem);
        write_file(dir.path(), "key.pem", key_pem);
        let port = free_port("127.0.0.1");
        let conf = nginx_conf(
            dir.path(),
            64,
            &format!(
                r#"  access_log off;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name _;
    ssl_certificate {d}/chain.pem;
    ssl_certificate_key {d}/key.pem;
    {extra}
    location / {{ return 200 "ok\n"; }}
  }}
"#
            ),
        );
        let conf_path = write_file(dir.path(), "nginx.conf", &conf);
        let mut cmd = Command::new("nginx");
        cmd.arg("-e")
            .arg(format!("{d}/error.log"))
            .arg("-p")
            .arg(&d)
            .arg("-c")
            .arg(&conf_path);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(15));
        Self { addr, child, dir }
    }
}

// === openssl CLI PKI (RSA-1024, SHA-1: what rcgen cannot make) ===

/// A certificate and key made with the openssl CLI.
pub struct OsslCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

/// Run the openssl CLI in `dir`; panics with its stderr on failure; returns its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pem_to_der(dir: &Path, pem: &str) -> Vec<u8> {
    let der = format!("{pem}.der");
    openssl(dir, &["x509", "-in", pem, "-outform", "DER", "-out", &der]);
    std::fs::read(dir.join(der)).expect("read der")
}

/// A self-signed RSA root (`bits`, `digest` e.g. "sha1"/"sha256") in `dir` named `name`.
pub fn ossl_root(dir: &Path, name: &str, cn: &str, bits: u32, digest: &str) -> OsslCert {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "365",
            &format!("-{digest}"),
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    OsslCert {
        der: pem_to_der(dir, &cert),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// An RSA server leaf for `sans` (openssl SAN syntax, e.g. `DNS:legacy.test,IP:127.0.0.1`)
/// signed by `ca` with `digest`.
pub fn ossl_leaf(
    dir: &Path,
    ca: &OsslCert,
    name: &str,
    cn: &str,
    sans: &str,
    bits: u32,
    digest: &str,
) -> OsslCert {
    let (key, csr, cert, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName={sans}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("write ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    let ca_cert = ca.cert.display().to_string();
    let ca_key = ca.key.display().to_string();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "90",
            &format!("-{digest}"),
            "-extfile",
            &ext,
        ],
    );
    OsslCert {
        der: pem_to_der(dir, &cert),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A private key made with the openssl CLI (`genpkey` arguments, e.g. `["-algorithm", "RSA",
/// "-pkeyopt", "rsa_keygen_bits:2048"]`), as PKCS#8 PEM.
pub fn ossl_key(dir: &Path, name: &str, genpkey: &[&str]) -> String {
    let file = format!("{name}.key");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend_from_slice(&["-out", &file]);
    openssl(dir, &args);
    std::fs::read_to_string(dir.join(file)).expect("read key")
}

/// A server leaf with a key of any type openssl can make (`-newkey` argument list, e.g.
/// `["ec", "-pkeyopt", "ec_paramgen_curve:P-521"]` or `["rsa-pss", "-pkeyopt",
/// "rsa_keygen_bits:2048"]`), signed by the openssl-made `ca` with SHA-256.
pub fn ossl_leaf_key(
    dir: &Path,
    ca: &OsslCert,
    name: &str,
    cn: &str,
    sans: &str,
    newkey: &[&str],
) -> OsslCert {
    let (key, csr, cert, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName={sans}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("write ext");
    let mut args = vec!["req", "-newkey"];
    args.extend_from_slice(newkey);
    let subj = format!("/CN={cn}");
    args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &args);
    let ca_cert = ca.cert.display().to_string();
    let ca_key = ca.key.display().to_string();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "90",
            "-sha256",
            "-extfile",
            &ext,
        ],
    );
    OsslCert {
        der: pem_to_der(dir, &cert),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

// === Foreign TLS servers from Debian (gnutls-serv, stunnel4, haproxy, apache2) ===

/// `gnutls-serv` (GnuTLS) on <free port>, killed on drop. gnutls-serv has no listen-address
/// option and binds the wildcard address; the tests connect to it on 127.0.0.1 only. `extra`:
/// e.g. `--require-client-cert --x509cafile ca.pem`, `--http`, `--ocsp-response r.der`.
pub struct GnutlsServer {
    pub addr: SocketAddr,
    pub child: ChildGuard,
}

impl GnutlsServer {
    pub fn start(chain: &Path, key: &Path, extra: &[&str]) -> Self {
        let port = free_port("127.0.0.1");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new("gnutls-serv");
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--x509certfile")
            .arg(chain)
            .arg("--x509keyfile")
            .arg(key)
            .args(extra);
        let child = ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(15));
        Self { addr, child }
    }
}

/// stunnel4 in the foreground on 127.0.0.1:<free port>, each accepted connection handed to
/// `/bin/cat` (so the server stays silent after the handshake, like SIP). `service` lines go
/// into the service section (e.g. `verifyChain = yes`, `CAfile = …`).
pub struct Stunnel {
    pub addr: SocketAddr,
    pub child: ChildGuard,
    pub dir: tempfile::TempDir,
}

impl Stunnel {
    pub fn start(cert_chain_pem: &str, key_pem: &str, service: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        write_file(dir.path(), "chain.pem", cert_chain_pem);
        write_file(dir.path(), "key.pem", key_pem);
        let port = free_port("127.0.0.1");
        let conf = format!(
            "foreground = yes\npid =\noutput = {d}/stunnel.log\n[probe]\naccept = 127.0.0.1:{port}\ncert = {d}/chain.pem\nkey = {d}/key.pem\nexec = /bin/cat\n{service}\n"
        );
        let conf_path = write_file(dir.path(), "stunnel.conf", &conf);
        let mut cmd = Command::new("stunnel4");
        cmd.arg(&conf_path);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(15));
        Self { addr, child, dir }
    }
}

/// haproxy 2.6 in the foreground (`-db`), an HTTP frontend on 127.0.0.1:<free port> answering
/// 200 itself. `bind_extra` is appended to the `bind … ssl crt …` line (e.g. `verify required
/// ca-file …`).
pub struct Haproxy {
    pub addr: SocketAddr,
    pub child: ChildGuard,
    pub dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(cert_chain_pem: &str, key_pem: &str, bind_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        // haproxy wants the certificate chain and its key in one file.
        write_file(dir.path(), "crt.pem", &format!("{cert_chain_pem}{key_pem}"));
        let port = free_port("127.0.0.1");
        let conf = format!(
            "global\n  maxconn 64\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\nfrontend probe\n  bind 127.0.0.1:{port} ssl crt {d}/crt.pem {bind_extra}\n  http-request return status 200 content-type text/plain string ok\n"
        );
        let conf_path = write_file(dir.path(), "haproxy.cfg", &conf);
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&conf_path);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(15));
        Self { addr, child, dir }
    }
}

/// apache2 with mod_ssl in the foreground (`-X`, one process) on 127.0.0.1:<free port>, with
/// its own minimal config. `vhost_extra` goes into the `<VirtualHost>` (e.g. `SSLVerifyClient
/// require`).
pub struct Apache {
    pub addr: SocketAddr,
    pub child: ChildGuard,
    pub dir: tempfile::TempDir,
}

impl Apache {
    pub fn start(cert_pem: &str, chain_pem: &str, key_pem: &str, vhost_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        write_file(dir.path(), "cert.pem", cert_pem);
        write_file(dir.path(), "chain.pem", chain_pem);
        write_file(dir.path(), "key.pem", key_pem);
        std::fs::create_dir_all(dir.path().join("htdocs")).expect("htdocs");
        write_file(&dir.path().join("htdocs"), "index.html", "ok\n");
        let port = free_port("127.0.0.1");
        let m = "/usr/lib/apache2/modules";
        let conf = format!(
            r#"ServerRoot {d}
ServerName localhost
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so
LoadModule ssl_module {m}/mod_ssl.so
User www-data
Group www-data
PidFile {d}/httpd.pid
ErrorLog {d}/error.log
LogLevel info
Mutex file:{d} default
DefaultRuntimeDir {d}
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
  DocumentRoot {d}/htdocs
  SSLEngine on
  SSLCertificateFile {d}/cert.pem
  SSLCertificateChainFile {d}/chain.pem
  SSLCertificateKeyFile {d}/key.pem
  {vhost_extra}
</VirtualHost>
"#
        );
        let conf_path = write_file(dir.path(), "httpd.conf", &conf);
        // The worker runs as www-data: it must be able to read the document root.
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let mut cmd = Command::new("apache2");
        cmd.arg("-X").arg("-f").arg(&conf_path);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(20));
        Self { addr, child, dir }
    }
}
