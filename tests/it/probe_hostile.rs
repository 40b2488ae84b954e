//! Hostile and broken peers: failures are bounded reasons, never panics or hangs.

use crate::support;

use std::time::{Duration, Instant};

use certprobe::probe::{probe_address, FailureReason};
use support::*;

#[tokio::test]
async fn garbage_answer_is_not_tls() {
    let server = RawServer::start(Hostile::Garbage).await;
    let c = probe_address(&spec_for(server.addr, Some("garbage.test")), server.addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::NotTls, "{f:?}");
    assert!(c.chain.is_empty());
}

#[tokio::test]
async fn stalled_handshake_times_out_within_bounds() {
    let server = RawServer::start(Hostile::Stall).await;
    let mut spec = spec_for(server.addr, Some("stall.test"));
    spec.handshake_timeout = Duration::from_millis(500);
    // The legacy fallback only runs for protocol_version/handshake_failure, not for timeouts.
    let started = Instant::now();
    let c = probe_address(&spec, server.addr).await;
    let elapsed = started.elapsed();
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::HandshakeTimeout, "{f:?}");
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    // Generous margin for a loaded machine: the point is that it is bounded.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn reset_connection_is_reset() {
    let server = RawServer::start(Hostile::Reset).await;
    let c = probe_address(&spec_for(server.addr, Some("reset.test")), server.addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::Reset, "{f:?}");
}

#[tokio::test]
async fn immediate_close_is_closed() {
    let server = RawServer::start(Hostile::CloseAtOnce).await;
    let c = probe_address(&spec_for(server.addr, Some("close.test")), server.addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::Closed, "{f:?}");
}

#[tokio::test]
async fn refused_port_is_connect_refused() {
    let port = free_port("127.0.0.1");
    let addr = ([127, 0, 0, 1], port).into();
    let c = probe_address(&spec_for(addr, Some("refused.test")), addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::ConnectRefused, "{f:?}");
    assert!(c.connect_duration.is_some());
    assert!(c.handshake_duration.is_none());
}

fn long_chain(depth: usize) -> (Vec<rustls_pki_types::CertificateDer<'static>>, Leaf) {
    let mut cas = vec![Ca::root("Deep Root")];
    for i in 0..depth {
        let next = cas[i].intermediate(&format!("Deep Intermediate {i}"));
        cas.push(next);
    }
    let leaf = cas.last().unwrap().leaf("deep.test", &["deep.test"]);
    let mut chain = vec![leaf.cert.clone()];
    chain.extend(cas.iter().skip(1).rev().map(|c| c.cert.clone()));
    (chain, leaf)
}

#[tokio::test]
async fn chain_over_the_certificate_cap_is_chain_too_large_keeping_the_first_certs() {
    let (chain, leaf) = long_chain(9);
    assert_eq!(chain.len(), 10);
    let server = TlsServer::start(
        "127.0.0.1",
        server_config(chain.clone(), leaf.key_der(), &[], ClientAuth::None),
    )
    .await;
    let mut spec = spec_for(server.addr, Some("deep.test"));
    spec.max_chain_certs = 4;
    let c = probe_address(&spec, server.addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::ChainTooLarge, "{f:?}");
    assert_eq!(c.chain, chain[..4].to_vec());
}

#[tokio::test]
async fn chain_over_the_byte_cap_is_chain_too_large() {
    let (chain, leaf) = long_chain(3);
    let server = TlsServer::start(
        "127.0.0.1",
        server_config(chain.clone(), leaf.key_der(), &[], ClientAuth::None),
    )
    .await;
    let mut spec = spec_for(server.addr, Some("deep.test"));
    // Room for the leaf and the first intermediate only.
    spec.max_chain_bytes = chain[0].len() + chain[1].len() + 1;
    let c = probe_address(&spec, server.addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::ChainTooLarge, "{f:?}");
    assert_eq!(c.chain, chain[..2].to_vec());
    // Within both caps the same server is fine.
    let ok = probe_address(&spec_for(server.addr, Some("deep.test")), server.addr).await;
    assert!(ok.failure.is_none(), "{:?}", ok.failure);
    assert_eq!(ok.chain, chain);
}

#[tokio::test]
async fn certificate_message_over_the_tls_size_limit_is_chain_too_large() {
    // ~160 certificates of ~450 bytes: the Certificate message exceeds 64 KiB, which rustls'
    // deframer refuses before our verifier runs.
    let (chain, leaf) = long_chain(160);
    let total: usize = chain.iter().map(|c| c.len()).sum();
    assert!(total > 0xffff, "{total}");
    let server = TlsServer::start(
        "127.0.0.1",
        server_config(chain, leaf.key_der(), &[], ClientAuth::None),
    )
    .await;
    let mut spec = spec_for(server.addr, Some("deep.test"));
    spec.max_chain_certs = 1000;
    spec.max_chain_bytes = 1 << 20;
    let c = probe_address(&spec, server.addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::ChainTooLarge, "{f:?}");
}

#[tokio::test]
async fn full_accept_queue_is_connect_timeout() {
    // A listener that never accepts, with its accept queue filled: the kernel drops further
    // SYNs, so our connect neither completes nor is refused.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let mut spec = spec_for(addr, Some("queue.test"));
    spec.connect_timeout = Duration::from_millis(300);
    let c = probe_address(&spec, addr).await;
    let f = c.failure.expect("failure");
    assert_eq!(f.reason, FailureReason::ConnectTimeout, "{f:?}");
    assert!(c.chain.is_empty());
    drop(listener);
}

/// A server that answers any ClientHello with a TLS 1.0 ServerHello (as old SChannel does),
/// its messages split over many small records and TCP writes: rustls refuses the version, the
/// legacy capture reassembles the flight.
#[tokio::test]
async fn tls10_server_hello_answer_is_captured_by_the_legacy_handshake() {
    let pki = Pki::new("schannel", &["schannel.test"]);
    let mut handshake = wire::server_hello(0x0301, 0x002f);
    handshake.extend(wire::certificate(&[&pki.leaf.cert, &pki.intermediate.cert]));
    handshake.extend(wire::server_hello_done());
    let mut flight = Vec::new();
    for piece in handshake.chunks(100) {
        flight.extend(wire::record(22, piece));
    }
    let server = RawServer::replying(flight, 37).await;
    let c = probe_address(&spec_for(server.addr, Some("schannel.test")), server.addr).await;
    let f = c.failure.clone().expect("protocol_version still reported");
    assert_eq!(f.reason, FailureReason::ProtocolVersion, "{f:?}");
    assert_eq!(
        f.detail,
        "server offers only TLSv1.0; chain captured by legacy handshake"
    );
    assert_eq!(c.chain, pki.chain());
    assert_eq!(c.tls_version.map(|v| v.as_str()), Some("TLSv1.0"));
    assert_eq!(
        c.cipher_suite.as_deref(),
        Some("TLS_RSA_WITH_AES_128_CBC_SHA")
    );
}

#[tokio::test]
async fn legacy_capture_applies_the_certificate_cap() {
    let (chain, _) = long_chain(5);
    let certs: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
    let mut handshake = wire::server_hello(0x0301, 0xc014);
    handshake.extend(wire::certificate(&certs));
    handshake.extend(wire::server_hello_done());
    let server = RawServer::replying(wire::record(22, &handshake), 4096).await;
    let mut spec = spec_for(server.addr, Some("deep.test"));
    spec.max_chain_certs = 3;
    let c = probe_address(&spec, server.addr).await;
    let f = c.failure.clone().expect("failure");
    assert_eq!(f.reason, FailureReason::ChainTooLarge, "{f:?}");
    assert_eq!(c.chain, chain[..3].to_vec());
    assert_eq!(
        c.legacy.as_ref().map(|l| l.version.as_str()),
        Some("TLSv1.0")
    );
}
