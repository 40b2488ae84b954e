//! Issue 7, "Hostile and broken peers", at the level an operator runs: a validated config, one
//! `runner::probe_all` round with chain analysis and policy evaluation. Every case runs on
//! loopback next to a healthy endpoint probed in the same round, and asserts its typed reason,
//! that the round ends within the configured timeouts plus a margin, that what is kept stays
//! within the caps, and that the healthy endpoint is captured and analyzed correctly.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certprobe::config::{BaseDir, Config};
use certprobe::outcome::ProbeOutcome;
use certprobe::probe::reason::alert_name;
use certprobe::probe::{FailureReason, HandshakeSignature};
use certprobe::runner::{self, EvalContext};
use rustls::server::WebPkiClientVerifier;
use rustls::{DistinguishedName, RootCertStore};
use rustls_pki_types::CertificateDer;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connect timeout, handshake timeout (every endpoint) and verdict timeout of the test config.
const CONNECT: Duration = Duration::from_secs(2);
const HANDSHAKE: Duration = Duration::from_secs(2);
const VERDICT: Duration = Duration::from_millis(300);
/// Certificate cap of the test config.
const MAX_CHAIN_CERTS: usize = 8;
/// Slack for a loaded 2-core machine on top of the timeouts (never a performance assertion:
/// only "bounded, no hang").
const MARGIN: Duration = Duration::from_secs(4);

/// Worst case of one probe without MTLS: connect + handshake + verdict, then the legacy capture
/// (connect + handshake).
fn probe_budget() -> Duration {
    CONNECT + HANDSHAKE + VERDICT + CONNECT + HANDSHAKE
}

// === Hostile and broken peers ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Answers the ClientHello with an SSH banner.
    Garbage,
    /// Accepts, reads the ClientHello, says nothing.
    Stall,
    /// Sends a TLS 1.2 ServerHello one byte per second.
    Drip,
    /// Sends part of a ServerHello, then RST (SO_LINGER 0).
    ResetMidHandshake,
    /// FIN before any TLS byte.
    CloseAtOnce,
    /// `openssl s_server -tls1`: the real chain through the legacy capture.
    Tls10Only,
    /// `openssl s_server -tls1` behind a proxy that resets every ClientHello carrying
    /// `supported_versions` (a TLS 1.3-intolerant server or middlebox): no alert, no byte, just
    /// RST; the classic ClientHello of the legacy capture gets through.
    Tls10ResetsModernHello,
    /// The same proxy in front of `openssl s_server -tls1_2`: a TLS 1.3-intolerant TLS 1.2
    /// server.
    Tls12ResetsModernHello,
    /// rustls (TLS 1.3) presenting 200 certificates (> 64 KiB).
    HugeChainTls13,
    /// A TLS 1.0 flight with 300 certificates (> 64 KiB) over many records: legacy capture.
    HugeChainLegacy,
    /// rustls (TLS 1.3) presenting bad DER as its certificate.
    GarbageDerTls13,
    /// rustls (TLS 1.2) presenting bad DER as its certificate.
    GarbageDerTls12,
    /// A TLS 1.2 flight whose Certificate message has a certificate length past its end.
    BadLengthsTls12,
    /// A TLS 1.0 flight whose Certificate message has a certificate length past its end.
    BadLengthsLegacy,
    /// A TLS 1.0 flight with well-formed TLS lengths around bad DER (then the intermediate).
    BadDerLegacy,
    /// Reads the ClientHello, answers with a fatal alert of this description.
    Alert(u8),
    /// rustls requesting an (optional) client certificate with ~2,200 acceptable CA names.
    ManyCaNames,
}

/// The alerts of the matrix: handshake_failure, protocol_version, internal_error,
/// unrecognized_name, access_denied, decode_error, illegal_parameter, insufficient_security,
/// certificate_required, unknown_ca.
const ALERTS: &[u8] = &[40, 70, 80, 112, 49, 50, 47, 71, 116, 48];

/// Every hostile peer of the matrix.
fn all_peers() -> Vec<Peer> {
    let mut peers = vec![
        Peer::Garbage,
        Peer::Stall,
        Peer::Drip,
        Peer::ResetMidHandshake,
        Peer::CloseAtOnce,
        Peer::Tls10Only,
        Peer::Tls10ResetsModernHello,
        Peer::Tls12ResetsModernHello,
        Peer::HugeChainTls13,
        Peer::HugeChainLegacy,
        Peer::GarbageDerTls13,
        Peer::GarbageDerTls12,
        Peer::BadLengthsTls12,
        Peer::BadLengthsLegacy,
        Peer::BadDerLegacy,
        Peer::ManyCaNames,
    ];
    peers.extend(ALERTS.iter().map(|a| Peer::Alert(*a)));
    peers
}

/// Bytes that are no certificate: a DER SEQUENCE header announcing 256 bytes, then 40.
fn bad_der() -> Vec<u8> {
    let mut der = vec![0x30, 0x82, 0x01, 0x00];
    der.extend_from_slice(&[0x41; 40]);
    der
}

/// A Certificate handshake message whose list length is right but whose only entry claims 1024
/// bytes while 100 follow.
fn certificate_with_bad_lengths() -> Vec<u8> {
    let mut list = vec![0x00, 0x04, 0x00];
    list.extend_from_slice(&[0x30; 100]);
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    wire::handshake(11, &body)
}

/// Handshake messages as TLS records of at most `chunk` bytes each.
fn records(handshake: &[u8], chunk: usize) -> Vec<u8> {
    handshake
        .chunks(chunk)
        .flat_map(|piece| wire::record(22, piece))
        .collect()
}

/// One whole TLS record (header included), or `None` when the peer goes away first.
async fn read_record(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut record = vec![0u8; 5];
    tcp.read_exact(&mut record).await.ok()?;
    let len = u16::from_be_bytes([record[3], record[4]]) as usize;
    record.resize(5 + len, 0);
    tcp.read_exact(&mut record[5..]).await.ok()?;
    Some(record)
}

/// Does this ClientHello record carry the `supported_versions` extension (43, TLS 1.3)?
fn has_supported_versions(record: &[u8]) -> bool {
    let walk = || -> Option<bool> {
        // record header 5, handshake header 4, client_version 2, random 32
        let mut at = 5 + 4 + 2 + 32;
        at += 1 + *record.get(at)? as usize; // session_id
        at += 2 + u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]) as usize; // suites
        at += 1 + *record.get(at)? as usize; // compression methods
        let end = at + 2 + u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]) as usize;
        at += 2;
        while at + 4 <= end.min(record.len()) {
            let kind = u16::from_be_bytes([record[at], record[at + 1]]);
            if kind == 43 {
                return Some(true);
            }
            at += 4 + u16::from_be_bytes([record[at + 2], record[at + 3]]) as usize;
        }
        Some(false)
    };
    walk().unwrap_or(false)
}

async fn read_hello(tcp: &mut TcpStream) {
    let mut hello = [0u8; 4096];
    let _ = tcp.read(&mut hello).await;
}

/// The shared PKI: a root (the lab trust store), an issuing CA, the healthy leaf and the leaf of
/// the TLS 1.0-only server.
struct Lab {
    pki: Pki,
    legacy_leaf: Leaf,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Self {
        let pki = Pki::new("hostile-lab", &["healthy.test"]);
        let legacy_leaf = pki.intermediate.leaf("legacy.test", &["legacy.test"]);
        let dir = tempfile::tempdir().expect("tempdir");
        write_file(dir.path(), "root.pem", &pki.root.pem);
        Self {
            pki,
            legacy_leaf,
            dir,
        }
    }

    /// `openssl s_server` presenting the legacy leaf + intermediate with only the TLS version
    /// of `version_flag` (`-tls1`, `-tls1_2`) and every cipher allowed.
    fn legacy_server(&self, version_flag: &str) -> OpensslServer {
        let d = self.dir.path();
        let cert = write_file(d, "legacy-leaf.pem", &self.legacy_leaf.pem);
        let key = write_file(d, "legacy-leaf.key", &self.legacy_leaf.key_pem);
        let chain = write_file(d, "legacy-chain.pem", &self.pki.intermediate.pem);
        OpensslServer::start(
            &cert,
            &key,
            Some(&chain),
            &[version_flag, "-cipher", "DEFAULT@SECLEVEL=0"],
        )
    }

    fn healthy_config(&self) -> Arc<rustls::ServerConfig> {
        server_config(
            self.pki.chain(),
            self.pki.leaf.key_der(),
            &[],
            ClientAuth::None,
        )
    }
}

/// A running peer; the guard keeps its server alive.
struct Running {
    peer: Peer,
    addr: SocketAddr,
    sni: &'static str,
    _guard: Guard,
}

#[allow(dead_code)]
enum Guard {
    Raw(RawServer),
    Tls(TlsServer),
    Openssl(OpensslServer),
    Proxied(RawServer, OpensslServer),
}

async fn start(peer: Peer, lab: &Lab) -> Running {
    let (guard, sni) = match peer {
        Peer::Garbage => (
            Guard::Raw(RawServer::start(Hostile::Garbage).await),
            "garbage.test",
        ),
        Peer::Stall => (
            Guard::Raw(RawServer::start(Hostile::Stall).await),
            "stall.test",
        ),
        Peer::CloseAtOnce => (
            Guard::Raw(RawServer::start(Hostile::CloseAtOnce).await),
            "close.test",
        ),
        Peer::Drip => {
            let hello = wire::record(22, &wire::server_hello(0x0303, 0xc02b));
            let server = RawServer::serve(move |mut tcp| {
                let hello = hello.clone();
                async move {
                    read_hello(&mut tcp).await;
                    for byte in hello {
                        if tcp.write_all(&[byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            })
            .await;
            (Guard::Raw(server), "drip.test")
        }
        Peer::ResetMidHandshake => {
            let hello = wire::record(22, &wire::server_hello(0x0303, 0xc02b));
            let server = RawServer::serve(move |mut tcp| {
                let partial = hello[..20].to_vec();
                async move {
                    read_hello(&mut tcp).await;
                    let _ = tcp.write_all(&partial).await;
                    let _ = tcp.flush().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = tcp.set_zero_linger();
                    drop(tcp);
                }
            })
            .await;
            (Guard::Raw(server), "reset.test")
        }
        Peer::Tls10Only => (Guard::Openssl(lab.legacy_server("-tls1")), "legacy.test"),
        Peer::Tls10ResetsModernHello | Peer::Tls12ResetsModernHello => {
            let version = if peer == Peer::Tls10ResetsModernHello {
                "-tls1"
            } else {
                "-tls1_2"
            };
            let backend = lab.legacy_server(version);
            let upstream = backend.addr;
            let proxy = RawServer::serve(move |mut tcp| async move {
                let Some(hello) = read_record(&mut tcp).await else {
                    return;
                };
                if has_supported_versions(&hello) {
                    let _ = tcp.set_zero_linger();
                    return;
                }
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                if server.write_all(&hello).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut server).await;
                }
            })
            .await;
            (Guard::Proxied(proxy, backend), "legacy.test")
        }
        Peer::HugeChainTls13 => {
            let mut chain = lab.pki.chain();
            while chain.len() < 200 {
                chain.push(lab.pki.intermediate.cert.clone());
            }
            assert!(chain.iter().map(|c| c.len()).sum::<usize>() > 64 * 1024);
            let config = server_config(
                chain,
                lab.pki.leaf.key_der(),
                &[&rustls::version::TLS13],
                ClientAuth::None,
            );
            (
                Guard::Tls(TlsServer::start("127.0.0.1", config).await),
                "healthy.test",
            )
        }
        Peer::HugeChainLegacy => {
            let mut certs: Vec<&[u8]> = vec![lab.pki.leaf.cert.as_ref()];
            while certs.len() < 300 {
                certs.push(lab.pki.intermediate.cert.as_ref());
            }
            assert!(certs.iter().map(|c| c.len()).sum::<usize>() > 64 * 1024);
            let mut handshake = wire::server_hello(0x0301, 0xc009);
            handshake.extend(wire::certificate(&certs));
            handshake.extend(wire::server_hello_done());
            let flight = records(&handshake, 16 * 1024);
            (
                Guard::Raw(RawServer::replying(flight, 8192).await),
                "healthy.test",
            )
        }
        Peer::GarbageDerTls13 | Peer::GarbageDerTls12 => {
            let version = if peer == Peer::GarbageDerTls13 {
                &rustls::version::TLS13
            } else {
                &rustls::version::TLS12
            };
            let certified = mismatched_key(vec![CertificateDer::from(bad_der())], &lab.pki.leaf);
            let config = server_config_with_key(certified, &[version], ClientAuth::None);
            (
                Guard::Tls(TlsServer::start("127.0.0.1", config).await),
                "badder.test",
            )
        }
        Peer::BadLengthsTls12 | Peer::BadLengthsLegacy => {
            let version = if peer == Peer::BadLengthsTls12 {
                0x0303
            } else {
                0x0301
            };
            let mut handshake = wire::server_hello(version, 0xc02b);
            handshake.extend(certificate_with_bad_lengths());
            handshake.extend(wire::server_hello_done());
            (
                Guard::Raw(RawServer::replying(records(&handshake, 16 * 1024), 4096).await),
                "badlengths.test",
            )
        }
        Peer::BadDerLegacy => {
            let bad = bad_der();
            let mut handshake = wire::server_hello(0x0301, 0xc009);
            handshake.extend(wire::certificate(&[&bad, &lab.pki.intermediate.cert]));
            handshake.extend(wire::server_hello_done());
            (
                Guard::Raw(RawServer::replying(records(&handshake, 16 * 1024), 4096).await),
                "badder.test",
            )
        }
        Peer::Alert(description) => {
            let alert = wire::record(21, &[2, description]);
            (
                Guard::Raw(RawServer::replying(alert, 4096).await),
                "alert.test",
            )
        }
        Peer::ManyCaNames => {
            let mut roots = RootCertStore::empty();
            roots.add(lab.pki.root.cert.clone()).expect("root");
            let hints: Vec<DistinguishedName> = (0..2200).map(hint_name).collect();
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                certprobe::crypto_provider(),
            )
            .add_root_hint_subjects(hints)
            .allow_unauthenticated()
            .build()
            .expect("client verifier");
            let certified = rustls::sign::CertifiedKey::from_der(
                lab.pki.chain(),
                lab.pki.leaf.key_der(),
                &certprobe::crypto_provider(),
            )
            .expect("certified key");
            let config = rustls::ServerConfig::builder_with_provider(certprobe::crypto_provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(certified.cert.clone(), lab.pki.leaf.key_der())
                .expect("server config");
            (
                Guard::Tls(TlsServer::start("127.0.0.1", Arc::new(config)).await),
                "healthy.test",
            )
        }
    };
    let addr = match &guard {
        Guard::Raw(s) => s.addr,
        Guard::Tls(s) => s.addr,
        Guard::Openssl(s) => s.addr,
        Guard::Proxied(proxy, _) => proxy.addr,
    };
    Running {
        peer,
        addr,
        sni,
        _guard: guard,
    }
}

/// A DER Name `CN=Hint CA 00042` (26 bytes).
fn hint_name(i: usize) -> DistinguishedName {
    let cn = format!("Hint CA {i:05}");
    let mut atv = vec![0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, cn.len() as u8];
    atv.extend_from_slice(cn.as_bytes());
    let seq = der_wrap(0x30, &atv);
    let set = der_wrap(0x31, &seq);
    DistinguishedName::from(der_wrap(0x30, &set))
}

fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 128);
    let mut out = vec![tag, content.len() as u8];
    out.extend_from_slice(content);
    out
}

// === The operator's path: config -> probe_all ===

fn load_config(lab: &Lab, endpoints: &[(String, SocketAddr, &str)]) -> Config {
    let (yaml, path) = write_config(lab, endpoints, "60s");
    match Config::from_yaml(
        &yaml,
        &path.display().to_string(),
        BaseDir(lab.dir.path().to_path_buf()),
    ) {
        Ok(cfg) => cfg,
        Err(e) => panic!("config rejected:\n{e}\n{yaml}"),
    }
}

/// The test config (YAML text and the file it was written to).
fn write_config(
    lab: &Lab,
    endpoints: &[(String, SocketAddr, &str)],
    interval: &str,
) -> (String, std::path::PathBuf) {
    let mut yaml = format!(
        "global:\n  interval: {interval}\n  connect_timeout: {}ms\n  timeout: {}ms\n  verdict_timeout: {}ms\n  concurrency: 4\n  max_chain_certs: {MAX_CHAIN_CERTS}\ntrust_stores:\n  lab:\n    class: internal\n    pem_files: [root.pem]\nendpoints:\n",
        CONNECT.as_millis(),
        HANDSHAKE.as_millis(),
        VERDICT.as_millis()
    );
    for (name, addr, sni) in endpoints {
        yaml.push_str(&format!(
            "  - name: {name}\n    host: {}\n    port: {}\n    sni: {sni}\n",
            addr.ip(),
            addr.port()
        ));
    }
    let path = lab.dir.path().join("certprobe.yaml");
    std::fs::write(&path, &yaml).expect("write config");
    (yaml, path)
}

struct Round {
    outcomes: Vec<ProbeOutcome>,
    elapsed: Duration,
}

impl Round {
    fn get(&self, endpoint: &str) -> &ProbeOutcome {
        let found: Vec<&ProbeOutcome> = self
            .outcomes
            .iter()
            .filter(|o| o.target.endpoint == endpoint)
            .collect();
        assert_eq!(found.len(), 1, "one outcome for {endpoint}");
        found[0]
    }
}

/// Start `peers` and `healthy` healthy servers, probe them all in one `probe_all` round with
/// `concurrency`, bounded by an outer timeout so a hang fails the test instead of blocking it.
async fn round(lab: &Lab, peers: &[Peer], healthy: usize, concurrency: usize) -> Round {
    let mut running = Vec::new();
    for peer in peers {
        running.push(start(*peer, lab).await);
    }
    let healthy_servers: Vec<TlsServer> = {
        let mut v = Vec::new();
        for _ in 0..healthy {
            v.push(TlsServer::start("127.0.0.1", lab.healthy_config()).await);
        }
        v
    };
    let mut endpoints: Vec<(String, SocketAddr, &str)> = Vec::new();
    for (i, s) in healthy_servers.iter().enumerate() {
        endpoints.push((format!("healthy-{i}"), s.addr, "healthy.test"));
    }
    for r in &running {
        endpoints.push((endpoint_name(r.peer), r.addr, r.sni));
    }
    let cfg = load_config(lab, &endpoints);
    let ctx = EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at: None,
    };
    // Waves of `concurrency` probes, each at most one probe budget: the outer bound.
    let waves = endpoints.len().div_ceil(concurrency) as u32;
    let outer = probe_budget() * waves + MARGIN * 2;
    let started = Instant::now();
    let outcomes =
        tokio::time::timeout(outer, runner::probe_all(&cfg.endpoints, concurrency, &ctx))
            .await
            .unwrap_or_else(|_| panic!("probe_all did not finish within {outer:?}"));
    let elapsed = started.elapsed();
    assert_eq!(outcomes.len(), endpoints.len(), "one outcome per endpoint");
    drop(running);
    drop(healthy_servers);
    Round { outcomes, elapsed }
}

fn endpoint_name(peer: Peer) -> String {
    match peer {
        Peer::Alert(d) => format!("alert-{}", alert_name(d).replace('_', "-")),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A healthy endpoint in the same round: full TLS 1.3 capture, and the chain analyzed (leaf
/// parsed, verified by the lab store, name matched).
fn assert_healthy(o: &ProbeOutcome, lab: &Lab) {
    let c = &o.capture;
    assert!(
        c.failure.is_none(),
        "{}: {:?}",
        o.target.endpoint,
        c.failure
    );
    assert_eq!(c.chain, lab.pki.chain(), "{}", o.target.endpoint);
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.3"));
    assert_eq!(c.handshake_signature, HandshakeSignature::Verified);
    let report = o.report.as_ref().expect("chain report");
    assert!(report.parse_errors.is_empty(), "{:?}", report.parse_errors);
    let leaf = report.leaf().expect("leaf parsed");
    assert_eq!(leaf.subject_cn.as_deref(), Some("healthy.test"));
    assert!(
        report.stores.iter().any(|s| s.store == "lab" && s.verified),
        "{:?}",
        report.stores
    );
}

/// The legacy server's real chain (leaf + intermediate), captured by the legacy hello with
/// `version`, parsed, and verified by the lab store.
fn assert_legacy_capture(o: &ProbeOutcome, lab: &Lab, version: &str, ctx: &str) {
    let c = &o.capture;
    assert_eq!(
        c.chain,
        vec![
            lab.legacy_leaf.cert.clone(),
            lab.pki.intermediate.cert.clone()
        ],
        "{ctx}"
    );
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some(version), "{ctx}");
    assert!(c.legacy.is_some(), "{ctx}");
    let report = o.report.as_ref().expect("report of the legacy chain");
    let leaf = report.leaf().expect("legacy leaf parsed");
    assert_eq!(leaf.subject_cn.as_deref(), Some("legacy.test"));
    assert!(
        report.stores.iter().any(|s| s.store == "lab" && s.verified),
        "{ctx}: {:?}",
        report.stores
    );
}

/// The typed reason and bounded facts of one hostile peer's outcome.
fn assert_peer(peer: Peer, o: &ProbeOutcome, lab: &Lab) {
    let c = &o.capture;
    let f = c
        .failure
        .as_ref()
        .map(|f| (f.reason, f.alert.clone(), f.detail.clone()));
    let ctx = format!("{peer:?}: {:?}", c.failure);
    assert!(
        c.chain.len() <= MAX_CHAIN_CERTS,
        "{ctx}: {} certs",
        c.chain.len()
    );
    assert!(
        c.client_auth.acceptable_ca_names.len() <= 64,
        "{ctx}: {} names",
        c.client_auth.acceptable_ca_names.len()
    );
    let reason = f.as_ref().map(|f| f.0);
    match peer {
        Peer::Garbage => {
            assert_eq!(reason, Some(FailureReason::NotTls), "{ctx}");
            assert!(c.chain.is_empty(), "{ctx}");
        }
        Peer::Stall | Peer::Drip => {
            assert_eq!(reason, Some(FailureReason::HandshakeTimeout), "{ctx}");
            let took = c.handshake_duration.expect("handshake duration");
            assert!(took >= HANDSHAKE, "{ctx}: {took:?}");
            assert!(took < HANDSHAKE + MARGIN, "{ctx}: {took:?}");
        }
        Peer::ResetMidHandshake => assert_eq!(reason, Some(FailureReason::Reset), "{ctx}"),
        Peer::CloseAtOnce => assert_eq!(reason, Some(FailureReason::Closed), "{ctx}"),
        Peer::Tls10ResetsModernHello => {
            assert_eq!(reason, Some(FailureReason::ProtocolVersion), "{ctx}");
            assert_eq!(f.as_ref().unwrap().1, None, "no alert: the hello was reset");
            let detail = &c.failure.as_ref().unwrap().detail;
            assert!(detail.contains("version intolerance"), "{detail}");
            assert!(detail.starts_with("connection reset"), "{detail}");
            assert_legacy_capture(o, lab, "TLSv1.0", &ctx);
        }
        Peer::Tls12ResetsModernHello => {
            // It speaks TLS 1.2, so no protocol_version: the reset stays the reason, but the
            // chain the classic hello got is captured and judged.
            assert_eq!(reason, Some(FailureReason::Reset), "{ctx}");
            let detail = &c.failure.as_ref().unwrap().detail;
            assert!(detail.contains("TLS 1.3 intolerance"), "{detail}");
            assert_legacy_capture(o, lab, "TLSv1.2", &ctx);
        }
        Peer::Tls10Only => {
            assert_eq!(reason, Some(FailureReason::ProtocolVersion), "{ctx}");
            assert_eq!(f.as_ref().unwrap().1.as_deref(), Some("protocol_version"));
            assert_legacy_capture(o, lab, "TLSv1.0", &ctx);
        }
        Peer::HugeChainTls13 => {
            assert_eq!(reason, Some(FailureReason::ChainTooLarge), "{ctx}");
        }
        Peer::HugeChainLegacy => {
            assert_eq!(reason, Some(FailureReason::ChainTooLarge), "{ctx}");
            assert_eq!(c.chain.len(), MAX_CHAIN_CERTS, "{ctx}");
            assert_eq!(c.chain[0], lab.pki.leaf.cert, "{ctx}");
        }
        Peer::GarbageDerTls13 | Peer::GarbageDerTls12 => {
            assert_eq!(reason, Some(FailureReason::BadCertificate), "{ctx}");
            assert_eq!(c.chain, vec![CertificateDer::from(bad_der())], "{ctx}");
            assert_parse_error_at_leaf(o);
        }
        Peer::BadLengthsTls12 | Peer::BadLengthsLegacy => {
            assert_eq!(reason, Some(FailureReason::BadCertificate), "{ctx}");
            assert!(c.chain.is_empty(), "{ctx}");
            let detail = &f.as_ref().unwrap().2;
            assert!(detail.contains("Certificate message"), "{ctx}");
        }
        Peer::BadDerLegacy => {
            // The flight itself is well formed: the legacy capture keeps both certificates
            // and the analysis reports the unparseable leaf.
            assert_eq!(reason, Some(FailureReason::ProtocolVersion), "{ctx}");
            assert_eq!(
                c.chain,
                vec![
                    CertificateDer::from(bad_der()),
                    lab.pki.intermediate.cert.clone()
                ],
                "{ctx}"
            );
            assert_parse_error_at_leaf(o);
        }
        Peer::Alert(description) => {
            let expected = match description {
                70 => FailureReason::ProtocolVersion,
                40 => FailureReason::HandshakeFailure,
                _ => FailureReason::TlsAlert,
            };
            assert_eq!(reason, Some(expected), "{ctx}");
            assert_eq!(
                f.as_ref().unwrap().1.as_deref(),
                Some(alert_name(description)),
                "{ctx}"
            );
            assert!(c.chain.is_empty(), "{ctx}");
        }
        Peer::ManyCaNames => {
            assert_eq!(reason, None, "{ctx}");
            assert_eq!(c.chain, lab.pki.chain());
            let auth = &c.client_auth;
            assert!(auth.requested);
            assert!(!auth.client_cert_sent);
            assert_eq!(auth.acceptable_ca_names.len(), 64);
            assert!(auth.acceptable_ca_names_truncated);
            assert!(
                auth.acceptable_ca_names.iter().all(|n| n.contains("CN=")),
                "{:?}",
                &auth.acceptable_ca_names[..3]
            );
        }
    }
}

fn assert_parse_error_at_leaf(o: &ProbeOutcome) {
    let report = o.report.as_ref().expect("a report for the captured bytes");
    assert!(
        report.parse_errors.iter().any(|(pos, _)| *pos == 0),
        "{:?}",
        report.parse_errors
    );
    assert!(report.leaf().is_none());
    assert!(!report.stores.iter().any(|s| s.verified));
}

/// One peer next to one healthy endpoint: typed reason, bounded round, healthy unaffected.
async fn single(peer: Peer) {
    let lab = Lab::new();
    let r = round(&lab, &[peer], 1, 4).await;
    assert_peer(peer, r.get(&endpoint_name(peer)), &lab);
    assert_healthy(r.get("healthy-0"), &lab);
    let budget = probe_budget() + MARGIN;
    assert!(
        r.elapsed < budget,
        "{peer:?}: round took {:?} > {budget:?}",
        r.elapsed
    );
}

#[tokio::test]
async fn garbage() {
    single(Peer::Garbage).await;
}

#[tokio::test]
async fn accept_and_stall() {
    single(Peer::Stall).await;
}

#[tokio::test]
async fn drip_one_byte_per_second_ends_as_handshake_timeout() {
    single(Peer::Drip).await;
}

#[tokio::test]
async fn reset_mid_handshake() {
    single(Peer::ResetMidHandshake).await;
}

#[tokio::test]
async fn close_at_once() {
    single(Peer::CloseAtOnce).await;
}

#[tokio::test]
async fn tls10_only_is_captured_with_its_real_chain() {
    single(Peer::Tls10Only).await;
}

#[tokio::test]
async fn tls10_server_that_resets_modern_hellos_is_captured_by_the_legacy_hello() {
    single(Peer::Tls10ResetsModernHello).await;
}

#[tokio::test]
async fn tls12_server_that_resets_tls13_hellos_keeps_reset_with_its_chain_captured() {
    single(Peer::Tls12ResetsModernHello).await;
}

#[tokio::test]
async fn hundreds_of_certificates_over_64k_tls13() {
    single(Peer::HugeChainTls13).await;
}

#[tokio::test]
async fn hundreds_of_certificates_over_64k_legacy_flight() {
    single(Peer::HugeChainLegacy).await;
}

#[tokio::test]
async fn bad_der_certificate_tls13() {
    single(Peer::GarbageDerTls13).await;
}

#[tokio::test]
async fn bad_der_certificate_tls12() {
    single(Peer::GarbageDerTls12).await;
}

#[tokio::test]
async fn wrong_lengths_in_the_certificate_message_tls12() {
    single(Peer::BadLengthsTls12).await;
}

#[tokio::test]
async fn wrong_lengths_in_the_certificate_message_legacy() {
    single(Peer::BadLengthsLegacy).await;
}

#[tokio::test]
async fn bad_der_certificate_in_a_legacy_flight() {
    single(Peer::BadDerLegacy).await;
}

#[tokio::test]
async fn each_tls_alert_is_reported_with_its_name() {
    let lab = Lab::new();
    let peers: Vec<Peer> = ALERTS.iter().map(|a| Peer::Alert(*a)).collect();
    let r = round(&lab, &peers, 1, 4).await;
    for peer in &peers {
        assert_peer(*peer, r.get(&endpoint_name(*peer)), &lab);
    }
    assert_healthy(r.get("healthy-0"), &lab);
}

#[tokio::test]
async fn certificate_request_with_thousands_of_ca_names_is_capped() {
    single(Peer::ManyCaNames).await;
}

/// Every hostile peer and several healthy endpoints in one round at concurrency 4.
#[tokio::test]
async fn all_hostile_peers_and_healthy_endpoints_in_one_round() {
    let lab = Lab::new();
    let peers = all_peers();
    let r = round(&lab, &peers, 4, 4).await;
    for peer in &peers {
        assert_peer(*peer, r.get(&endpoint_name(*peer)), &lab);
    }
    for i in 0..4 {
        assert_healthy(r.get(&format!("healthy-{i}")), &lab);
    }
}

// === The daemon keeps running through all of it ===

/// The `reason` (None = success) and `alert` labels the daemon must export for `peer`.
fn expected_labels(peer: Peer) -> (Option<&'static str>, Option<&'static str>) {
    match peer {
        Peer::Garbage => (Some("not_tls"), None),
        Peer::Stall | Peer::Drip => (Some("handshake_timeout"), None),
        Peer::ResetMidHandshake => (Some("reset"), None),
        Peer::CloseAtOnce => (Some("closed"), None),
        Peer::Tls10Only => (Some("protocol_version"), Some("protocol_version")),
        Peer::Tls10ResetsModernHello => (Some("protocol_version"), None),
        Peer::Tls12ResetsModernHello => (Some("reset"), None),
        Peer::HugeChainTls13 | Peer::HugeChainLegacy => (Some("chain_too_large"), None),
        Peer::GarbageDerTls13
        | Peer::GarbageDerTls12
        | Peer::BadLengthsTls12
        | Peer::BadLengthsLegacy => (Some("bad_certificate"), None),
        Peer::BadDerLegacy => (Some("protocol_version"), None),
        Peer::Alert(70) => (Some("protocol_version"), Some("protocol_version")),
        Peer::Alert(40) => (Some("handshake_failure"), Some("handshake_failure")),
        Peer::Alert(d) => (Some("tls_alert"), Some(alert_name(d))),
        Peer::ManyCaNames => (None, None),
    }
}

/// A plain HTTP/1.1 GET on loopback; returns the body of a 200 answer.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// `name{labels} value` samples of `family` for `endpoint`: (labels text, value).
fn samples<'a>(metrics: &'a str, family: &str, endpoint: &str) -> Vec<(&'a str, f64)> {
    let needle = format!("endpoint=\"{endpoint}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&needle))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(&labels[start..end])
}

/// The real daemon probes every hostile peer and two healthy endpoints for several rounds:
/// it stays up, exports each peer's typed reason (and alert name), keeps the healthy endpoints
/// successful, and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_keeps_running_and_exports_every_reason() {
    let lab = Lab::new();
    let peers = all_peers();
    let mut running = Vec::new();
    for peer in &peers {
        running.push(start(*peer, &lab).await);
    }
    let healthy = [
        TlsServer::start("127.0.0.1", lab.healthy_config()).await,
        TlsServer::start("127.0.0.1", lab.healthy_config()).await,
    ];
    let mut endpoints: Vec<(String, SocketAddr, &str)> = healthy
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("healthy-{i}"), s.addr, "healthy.test"))
        .collect();
    for r in &running {
        endpoints.push((endpoint_name(r.peer), r.addr, r.sni));
    }
    let (_, config) = write_config(&lab, &endpoints, "4s");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port("127.0.0.1")).into();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_certprobe"));
    cmd.args(["probe", "-c"])
        .arg(&config)
        .args(["--web.listen-address", &addr.to_string()])
        .env_remove("CERTPROBE_LOG");
    let daemon = ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(30));
    let names: Vec<String> = endpoints.iter().map(|e| e.0.clone()).collect();

    // Wait for two probes of every endpoint (two distinct last-probe timestamps), scraping as
    // Prometheus would.
    let metrics = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut first: std::collections::HashMap<String, f64> = Default::default();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let Some(m) = http_get(addr, "/metrics") else {
                assert!(Instant::now() < deadline, "no /metrics");
                continue;
            };
            let mut twice = 0;
            for n in &names {
                if let Some((_, ts)) = samples(&m, "certprobe_last_probe_timestamp_seconds", n)
                    .first()
                    .copied()
                {
                    let seen = *first.entry(n.clone()).or_insert(ts);
                    if ts > seen {
                        twice += 1;
                    }
                }
            }
            if twice == names.len() || Instant::now() > deadline {
                return m;
            }
        }
    })
    .await
    .expect("scrape task");
    let output = daemon.output();
    assert!(!output.contains("panicked"), "{output}");
    for peer in &peers {
        let name = endpoint_name(*peer);
        let (reason, alert) = expected_labels(*peer);
        let success = samples(&metrics, "certprobe_probe_success", &name);
        let failures = samples(&metrics, "certprobe_probe_failure", &name);
        match reason {
            None => {
                assert_eq!(
                    success.first().map(|s| s.1),
                    Some(1.0),
                    "{name}: {success:?}"
                );
                assert!(failures.is_empty(), "{name}: {failures:?}");
            }
            Some(reason) => {
                assert_eq!(
                    success.first().map(|s| s.1),
                    Some(0.0),
                    "{name}: {success:?}"
                );
                assert_eq!(failures.len(), 1, "{name}: {failures:?}");
                let (labels, value) = failures[0];
                assert_eq!(value, 1.0);
                assert_eq!(label(labels, "reason"), Some(reason), "{name}: {labels}");
                if let Some(alert) = alert {
                    assert_eq!(label(labels, "alert"), Some(alert), "{name}: {labels}");
                }
            }
        }
    }
    // legacy_tls follows the version spoken, whichever hello got the chain. The default
    // metric detail exports it only when 1 (docs/metrics.md "Series budget").
    for (peer, legacy) in [
        (Peer::Tls10Only, Some(1.0)),
        (Peer::Tls10ResetsModernHello, Some(1.0)),
        (Peer::Tls12ResetsModernHello, None),
    ] {
        let name = endpoint_name(peer);
        let gauge = samples(&metrics, "certprobe_legacy_tls", &name);
        assert_eq!(gauge.first().map(|s| s.1), legacy, "{name}: {gauge:?}");
    }
    for i in 0..healthy.len() {
        let name = format!("healthy-{i}");
        let success = samples(&metrics, "certprobe_probe_success", &name);
        assert_eq!(
            success.first().map(|s| s.1),
            Some(1.0),
            "{name}: {success:?}"
        );
        let verified = samples(&metrics, "certprobe_chain_verified", &name);
        assert!(
            verified
                .iter()
                .any(|(l, v)| label(l, "store") == Some("lab") && *v == 1.0),
            "{name}: {verified:?}"
        );
    }
    // Still up after all of it, and stops on SIGTERM.
    let status = std::process::Command::new("kill")
        .args(["-0", &daemon.pid().to_string()])
        .status()
        .expect("kill -0");
    assert!(status.success(), "daemon died:\n{}", daemon.output());
    let mut daemon = daemon;
    let exit = tokio::task::block_in_place(|| daemon.terminate(Duration::from_secs(20)));
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}:\n{}",
        daemon.output()
    );
    drop(running);
}
