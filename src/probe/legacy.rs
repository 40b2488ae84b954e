//! Legacy capture for servers that only speak TLS 1.0/1.1 or CBC-only suites: a hand-built
//! ClientHello, then ServerHello + Certificate parsing (cleartext before TLS 1.3).
//!
//! rustls speaks only TLS 1.2/1.3 with AEAD suites and always sends `supported_versions`, so a
//! TLS 1.0-only server answers it with a protocol_version alert before presenting any
//! certificate. This module sends a classic ClientHello (record version 3.1, client_version 3.3,
//! no `supported_versions`, the suites such servers pick), reads the server's first flight until
//! the Certificate message (or ServerHelloDone), and closes. No key exchange is done: nothing is
//! encrypted and nothing is sent after the hello.
//!
//! Size: about 640 lines of code; the rest (~200) are its tests, which build TLS 1.0-1.2 server
//! flights byte by byte.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::capture::{Capture, HandshakeSignature, LegacyFacts};
use super::handshake::ProbeSpec;
use super::reason::{alert_name, Failure, FailureReason};

/// Cipher suites offered, most preferred first, with their IANA names. Covers what Windows
/// Server 2003-2012 / Lync 2013 era stacks and OpenSSL at SECLEVEL=0 choose.
pub const OFFERED_SUITES: &[(u16, &str)] = &[
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
];

/// IANA name of a suite we offer, else `0x....`.
pub fn cipher_suite_name(code: u16) -> String {
    OFFERED_SUITES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("0x{code:04x}"))
}

/// Why the legacy capture (or parsing the server's flight) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// More bytes are needed before anything can be said.
    #[error("server flight incomplete")]
    Incomplete,
    /// The peer's bytes are not TLS records.
    #[error("peer does not speak TLS: {0}")]
    NotTls(String),
    /// The server answered with a fatal alert.
    #[error("server sent fatal alert {}", alert_name(*.description))]
    Alert { description: u8 },
    /// TLS records, but a malformed or unexpected handshake.
    #[error("malformed server flight: {0}")]
    Malformed(String),
    /// The Certificate message itself is malformed (lengths that do not add up).
    #[error("malformed Certificate message: {0}")]
    BadCertificateMessage(String),
    /// TCP/timeout problem during the legacy capture.
    #[error("{0}")]
    Io(String),
}

/// What the server's first flight told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFlight {
    /// The version the ServerHello chose (e.g. 0x0301 = TLS 1.0): `server_version`, or the
    /// supported_versions extension's value for TLS 1.3.
    pub version: u16,
    /// The chosen cipher suite.
    pub cipher_suite: u16,
    /// Certificates from the Certificate message, DER, in the order sent.
    pub certificates: Vec<Vec<u8>>,
    /// The Certificate message was complete.
    pub certificate_seen: bool,
    /// ServerHelloDone arrived (the flight is over).
    pub hello_done: bool,
    /// The ServerKeyExchange's group (`secp256r1`, `X25519`; `ffdhe-2048` style for finite-field
    /// DHE by prime size), when one was sent.
    pub kx_group: Option<String>,
    /// The ServerKeyExchange's signature scheme (TLS 1.2 only: TLS 1.0/1.1 sign with a fixed
    /// MD5+SHA-1 or SHA-1 construction and name no scheme).
    pub signature_scheme: Option<u16>,
}

impl ServerFlight {
    /// Nothing more to wait for: the chain (or the end of the flight) has arrived.
    pub fn is_complete(&self) -> bool {
        self.certificate_seen || self.hello_done
    }
}

/// Largest TLSPlaintext/ciphertext record the parser accepts (RFC 5246 6.2.3: 2^14 + 2048).
const MAX_RECORD: usize = (1 << 14) + 2048;

/// Parse the bytes a server sent in answer to our ClientHello: records (split or coalesced
/// handshake messages), the ServerHello, the Certificate message, ServerHelloDone.
///
/// Pure and total: it never panics, whatever the input. Returns [`LegacyError::Incomplete`] until
/// a ServerHello has arrived; after that, a partial flight (see [`ServerFlight::is_complete`]).
pub fn parse_server_flight(bytes: &[u8]) -> Result<ServerFlight, LegacyError> {
    // Reassemble the handshake stream from the records received so far.
    let mut handshake = Vec::new();
    let mut rest = bytes;
    let mut first = true;
    while !rest.is_empty() {
        let content_type = rest[0];
        if !(20..=24).contains(&content_type) {
            return Err(if first {
                LegacyError::NotTls(format!(
                    "first byte 0x{content_type:02x} is no TLS record type"
                ))
            } else {
                LegacyError::Malformed(format!("record type 0x{content_type:02x}"))
            });
        }
        if rest.len() >= 2 && rest[1] != 3 {
            return Err(if first {
                LegacyError::NotTls(format!("record version major {} is not 3", rest[1]))
            } else {
                LegacyError::Malformed(format!("record version major {}", rest[1]))
            });
        }
        if rest.len() < 5 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len > MAX_RECORD {
            return Err(if first {
                LegacyError::NotTls(format!("record length {len} over the TLS maximum"))
            } else {
                LegacyError::Malformed(format!("record length {len}"))
            });
        }
        if rest.len() < 5 + len {
            break;
        }
        let fragment = &rest[5..5 + len];
        rest = &rest[5 + len..];
        first = false;
        match content_type {
            21 => {
                // Warning alerts (level 1) other than close_notify are ignorable here.
                if let [level, description, ..] = fragment {
                    if *level != 1 || *description == 0 {
                        return Err(LegacyError::Alert {
                            description: *description,
                        });
                    }
                }
            }
            22 => handshake.extend_from_slice(fragment),
            // ChangeCipherSpec / application data: the cleartext part of the flight is over.
            _ => break,
        }
    }

    let mut flight = ServerFlight::default();
    let mut hello_seen = false;
    let mut msgs = handshake.as_slice();
    while msgs.len() >= 4 {
        let msg_type = msgs[0];
        let len = (usize::from(msgs[1]) << 16) | (usize::from(msgs[2]) << 8) | usize::from(msgs[3]);
        if msgs.len() < 4 + len {
            break;
        }
        let body = &msgs[4..4 + len];
        msgs = &msgs[4 + len..];
        match msg_type {
            2 => {
                let (version, suite) = parse_server_hello(body)?;
                flight.version = version;
                flight.cipher_suite = suite;
                hello_seen = true;
            }
            11 if hello_seen => {
                flight.certificates = parse_certificate_list(body)?;
                flight.certificate_seen = true;
            }
            12 if hello_seen => {
                let ecdhe = cipher_suite_name(flight.cipher_suite).contains("ECDHE_");
                let (group, scheme) = parse_server_key_exchange(body, ecdhe, flight.version);
                flight.kx_group = group;
                flight.signature_scheme = scheme;
            }
            14 if hello_seen => {
                flight.hello_done = true;
                break;
            }
            // HelloRequest (0) may precede the ServerHello; after it, ServerKeyExchange,
            // CertificateRequest, CertificateStatus and anything else are skipped.
            0 => {}
            _ if hello_seen => {}
            other => {
                return Err(LegacyError::Malformed(format!(
                    "handshake message type {other} before the ServerHello"
                )))
            }
        }
    }
    if hello_seen {
        Ok(flight)
    } else {
        Err(LegacyError::Incomplete)
    }
}

/// The (version, cipher suite) the ServerHello at the start of `bytes` chose, ignoring what
/// follows the cleartext handshake records (an alert that ended the handshake, encrypted
/// records). None when no complete ServerHello is there.
pub fn negotiated_by_server_hello(bytes: &[u8]) -> Option<(u16, u16)> {
    let mut end = 0;
    while let [22, 3, _, l0, l1, ..] = bytes.get(end..)? {
        let next = end + 5 + usize::from(u16::from_be_bytes([*l0, *l1]));
        if next > bytes.len() {
            break;
        }
        end = next;
    }
    parse_server_flight(&bytes[..end])
        .ok()
        .map(|f| (f.version, f.cipher_suite))
}

fn parse_server_hello(body: &[u8]) -> Result<(u16, u16), LegacyError> {
    let short = || LegacyError::Malformed("ServerHello too short".into());
    if body.len() < 2 + 32 + 1 {
        return Err(short());
    }
    let legacy_version = u16::from_be_bytes([body[0], body[1]]);
    let sid_len = usize::from(body[34]);
    let at = 35 + sid_len;
    let suite = body.get(at..at + 2).ok_or_else(short)?;
    let suite = u16::from_be_bytes([suite[0], suite[1]]);
    // TLS 1.3 (RFC 8446 4.1.3): legacy_version stays 0x0303 and the version chosen is in the
    // supported_versions extension. Extensions follow the compression method; a ServerHello
    // without them (TLS <= 1.2) ends there.
    let version = body
        .get(at + 3..)
        .and_then(selected_version)
        .unwrap_or(legacy_version);
    Ok((version, suite))
}

/// The supported_versions (43) extension's version from a ServerHello's extensions block.
fn selected_version(ext_block: &[u8]) -> Option<u16> {
    let (len, mut rest) = match ext_block {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return None,
    };
    rest = rest.get(..len)?;
    while let [t0, t1, l0, l1, tail @ ..] = rest {
        let ext_len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = tail.get(..ext_len)?;
        if u16::from_be_bytes([*t0, *t1]) == 43 {
            return match data {
                [v0, v1] => Some(u16::from_be_bytes([*v0, *v1])),
                _ => None,
            };
        }
        rest = &tail[ext_len..];
    }
    None
}

/// (group, signature scheme) of a ServerKeyExchange (RFC 8422 5.4 for ECDHE, RFC 5246 7.4.3 for
/// DHE). Best effort: a message that does not parse gives (None, None), never an error (the
/// chain is what the legacy capture is for).
fn parse_server_key_exchange(
    body: &[u8],
    ecdhe: bool,
    version: u16,
) -> (Option<String>, Option<u16>) {
    let u16_at = |i: usize| body.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (group, params_end) = if ecdhe {
        // curve_type named_curve(3), NamedCurve, opaque point<1..2^8-1>.
        if body.first() != Some(&3) {
            return (None, None);
        }
        let Some(curve) = u16_at(1) else {
            return (None, None);
        };
        let point_len = usize::from(*body.get(3).unwrap_or(&0));
        let name = rustls::NamedGroup::from(curve)
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("0x{curve:04x}"));
        (name, 4 + point_len)
    } else {
        // dh_p<1..2^16-1>, dh_g<1..2^16-1>, dh_Ys<1..2^16-1>.
        let mut at = 0;
        let mut p_bits = 0;
        for i in 0..3 {
            let Some(len) = u16_at(at) else {
                return (None, None);
            };
            if i == 0 {
                p_bits = usize::from(len) * 8;
            }
            at += 2 + usize::from(len);
        }
        (format!("ffdhe-{p_bits}"), at)
    };
    let scheme = if version >= 0x0303 {
        u16_at(params_end)
    } else {
        None
    };
    (Some(group), scheme)
}

fn parse_certificate_list(body: &[u8]) -> Result<Vec<Vec<u8>>, LegacyError> {
    let bad = |what: &str| LegacyError::BadCertificateMessage(what.to_string());
    let [a, b, c, list @ ..] = body else {
        return Err(bad("too short"));
    };
    let total = (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c);
    if total != list.len() {
        return Err(bad("list length mismatch"));
    }
    let mut certs = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let [a, b, c, tail @ ..] = rest else {
            return Err(bad("truncated entry length"));
        };
        let len = (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c);
        let der = tail
            .get(..len)
            .ok_or_else(|| bad("truncated certificate"))?;
        certs.push(der.to_vec());
        rest = &tail[len..];
    }
    Ok(certs)
}

/// A TLS 1.0-1.2 ClientHello: record version 3.1, client_version 3.3, no `supported_versions`,
/// the [`OFFERED_SUITES`], SNI (for DNS names), supported_groups, ec_point_formats,
/// signature_algorithms and an empty renegotiation_info.
pub fn client_hello(sni: Option<&str>, random: [u8; 32]) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = sni.filter(|n| n.parse::<std::net::IpAddr>().is_err() && !n.is_empty()) {
        let name = name.as_bytes();
        let name = &name[..name.len().min(255)];
        let mut list = vec![0u8]; // host_name
        push_u16(&mut list, name.len());
        list.extend_from_slice(name);
        let mut data = Vec::new();
        push_u16(&mut data, list.len());
        data.extend_from_slice(&list);
        push_ext(&mut ext, 0x0000, &data);
    }
    // supported_groups: x25519, secp256r1, secp384r1, secp521r1
    let groups: &[u16] = &[0x001d, 0x0017, 0x0018, 0x0019];
    push_ext(&mut ext, 0x000a, &u16_list(groups));
    // ec_point_formats: uncompressed
    push_ext(&mut ext, 0x000b, &[1, 0]);
    // signature_algorithms (TLS 1.2 servers): SHA-2 RSA/ECDSA/PSS, then SHA-1 for old stacks.
    let sigalgs: &[u16] = &[
        0x0401, 0x0403, 0x0804, 0x0501, 0x0503, 0x0805, 0x0601, 0x0603, 0x0806, 0x0201, 0x0203,
    ];
    push_ext(&mut ext, 0x000d, &u16_list(sigalgs));
    // renegotiation_info (empty): some old servers insist on it.
    push_ext(&mut ext, 0xff01, &[0]);

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random);
    body.push(0); // session_id
    let suites: Vec<u16> = OFFERED_SUITES.iter().map(|(c, _)| *c).collect();
    body.extend_from_slice(&u16_list(&suites));
    body.extend_from_slice(&[1, 0]); // compression: null
    push_u16(&mut body, ext.len());
    body.extend_from_slice(&ext);

    let mut handshake = vec![1u8];
    handshake.extend_from_slice(&[
        (body.len() >> 16) as u8,
        (body.len() >> 8) as u8,
        body.len() as u8,
    ]);
    handshake.extend_from_slice(&body);

    let mut record = vec![22u8, 3, 1];
    push_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

fn push_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

fn u16_list(items: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 * items.len());
    push_u16(&mut out, items.len() * 2);
    for i in items {
        out.extend_from_slice(&i.to_be_bytes());
    }
    out
}

fn push_ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    push_u16(out, data.len());
    out.extend_from_slice(data);
}

/// The legacy capture of one address.
#[derive(Debug, Clone)]
pub struct LegacyCapture {
    pub flight: ServerFlight,
    pub connect_duration: Duration,
    pub handshake_duration: Duration,
    /// The flight exceeded the byte cap before it was complete.
    pub truncated: bool,
}

/// Connect, send the legacy ClientHello, read the server's flight (bounded by the handshake
/// timeout and by `max_chain_bytes` plus room for the other handshake messages), close.
pub async fn capture(spec: &ProbeSpec, address: SocketAddr) -> Result<LegacyCapture, LegacyError> {
    let started = Instant::now();
    let mut tcp =
        match tokio::time::timeout(spec.connect_timeout, TcpStream::connect(address)).await {
            Err(_) => return Err(LegacyError::Io("legacy connect timed out".into())),
            Ok(Err(e)) => return Err(LegacyError::Io(format!("legacy connect: {e}"))),
            Ok(Ok(tcp)) => tcp,
        };
    let connect_duration = started.elapsed();
    let _ = tcp.set_nodelay(true);
    let hs_started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.handshake_timeout;
    let hello = client_hello(spec.sni.as_deref(), rand::random());
    match tokio::time::timeout_at(deadline, tcp.write_all(&hello)).await {
        Err(_) => return Err(LegacyError::Io("legacy ClientHello write timed out".into())),
        Ok(Err(e)) => return Err(LegacyError::Io(format!("legacy ClientHello write: {e}"))),
        Ok(Ok(())) => {}
    }
    // The flight holds the chain plus ServerHello/ServerKeyExchange/CertificateRequest: allow
    // generous room over the chain cap, but stay bounded.
    let cap = spec.max_chain_bytes.saturating_add(64 * 1024);
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut truncated = false;
    let flight = loop {
        // `received.len() < cap` here: the loop leaves as soon as the cap is reached.
        let room = (cap - received.len()).min(buf.len());
        let n = match tokio::time::timeout_at(deadline, tcp.read(&mut buf[..room])).await {
            Err(_) => {
                return Err(match parse_server_flight(&received) {
                    Ok(_) | Err(LegacyError::Incomplete) => {
                        LegacyError::Io("legacy handshake timed out before the Certificate".into())
                    }
                    Err(e) => e,
                })
            }
            Ok(Err(e)) => return Err(LegacyError::Io(format!("legacy read: {e}"))),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            match parse_server_flight(&received) {
                Ok(flight) => break flight,
                Err(LegacyError::Incomplete) => {
                    return Err(LegacyError::Io(
                        "server closed the connection before its ServerHello".into(),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        received.extend_from_slice(&buf[..n]);
        let full = received.len() >= cap;
        match parse_server_flight(&received) {
            Ok(flight) if flight.is_complete() => break flight,
            Ok(flight) if full => {
                truncated = true;
                break flight;
            }
            Ok(_) => {}
            Err(LegacyError::Incomplete) if full => {
                return Err(LegacyError::Malformed(format!(
                    "no ServerHello within {cap} bytes"
                )))
            }
            Err(LegacyError::Incomplete) => {}
            Err(e) => return Err(e),
        }
    };
    let handshake_duration = hs_started.elapsed();
    let _ = tokio::time::timeout(Duration::from_millis(100), tcp.shutdown()).await;
    Ok(LegacyCapture {
        flight,
        connect_duration,
        handshake_duration,
        truncated,
    })
}

/// After rustls failed with protocol_version / handshake_failure: run the legacy capture and
/// merge it into `capture` (chain, version, suite, legacy facts), keeping the original reason
/// with a detail that says the chain came from the legacy handshake.
pub async fn fallback(spec: &ProbeSpec, address: SocketAddr, capture: &mut Capture) {
    let original = capture
        .failure
        .clone()
        .unwrap_or_else(|| Failure::new(FailureReason::ProtocolVersion, "legacy capture"));
    let legacy = match self::capture(spec, address).await {
        Ok(legacy) => legacy,
        Err(LegacyError::BadCertificateMessage(what)) => {
            capture.failure = Some(Failure {
                reason: FailureReason::BadCertificate,
                alert: original.alert.clone(),
                detail: format!(
                    "{}; legacy capture: server sent a malformed Certificate message: {what}",
                    original.detail
                ),
            });
            return;
        }
        Err(e) => {
            let mut failure = original;
            failure.detail = format!("{}; legacy capture failed: {e}", failure.detail);
            capture.failure = Some(failure);
            return;
        }
    };
    let flight = legacy.flight;
    let server_version = flight.version;
    let version = crate::vocab::TlsVersion::from_wire(flight.version);
    let suite = cipher_suite_name(flight.cipher_suite);
    let presented = flight.certificates.len();
    let presented_bytes: usize = flight.certificates.iter().map(Vec::len).sum();
    let mut chain = Vec::new();
    let mut kept_bytes = 0usize;
    for der in flight.certificates {
        if chain.len() >= spec.max_chain_certs || kept_bytes + der.len() > spec.max_chain_bytes {
            break;
        }
        kept_bytes += der.len();
        chain.push(CertificateDer::from(der));
    }
    let too_large = legacy.truncated || chain.len() < presented;
    capture.chain = chain;
    capture.connect_duration = Some(legacy.connect_duration);
    capture.handshake_duration = Some(legacy.handshake_duration);
    capture.verdict_duration = None;
    capture.tls_version = Some(version);
    capture.cipher_suite = Some(suite.clone());
    capture.alpn = None;
    capture.kx_group = flight.kx_group.clone();
    capture.signature_scheme = flight
        .signature_scheme
        .map(|code| super::verifier::scheme_name(rustls::SignatureScheme::from(code)));
    capture.handshake_signature = HandshakeSignature::NotChecked;
    capture.legacy = Some(Box::new(LegacyFacts {
        version,
        cipher_suite: suite.clone(),
    }));
    let failure = if too_large {
        Failure::new(
            FailureReason::ChainTooLarge,
            format!(
                "legacy handshake: server presented {presented} certificates / {presented_bytes} bytes{}, over the cap of {} certificates / {} bytes",
                if legacy.truncated { " (flight cut at the byte cap)" } else { "" },
                spec.max_chain_certs,
                spec.max_chain_bytes
            ),
        )
    } else if original.reason == FailureReason::ChainTooLarge {
        Failure::new(
            FailureReason::ChainTooLarge,
            format!(
                "{}; legacy handshake ({version}) captured all {presented} certificates ({presented_bytes} bytes)",
                original.detail
            ),
        )
    } else if original.reason == FailureReason::HandshakeFailure {
        Failure {
            reason: FailureReason::HandshakeFailure,
            alert: original.alert.clone(),
            detail: format!(
                "server offers no cipher suite rustls supports (it chose {suite} over {version}); chain captured by legacy handshake"
            ),
        }
    } else if matches!(
        original.reason,
        FailureReason::Reset | FailureReason::Closed
    ) {
        // Intolerance: rustls' ClientHello was dropped, the classic one (no TLS 1.3
        // extensions) answered.
        if server_version < 0x0303 {
            Failure::new(
                FailureReason::ProtocolVersion,
                format!(
                    "{}; a classic ClientHello was answered with {version}: the server speaks only {version} and drops modern ClientHellos (version intolerance); chain captured by legacy handshake",
                    original.detail
                ),
            )
        } else {
            Failure {
                reason: original.reason,
                alert: original.alert.clone(),
                detail: format!(
                    "{}; a classic ClientHello without TLS 1.3 extensions was answered with {version} (TLS 1.3 intolerance); chain captured by legacy handshake",
                    original.detail
                ),
            }
        }
    } else {
        Failure {
            reason: original.reason,
            alert: original.alert.clone(),
            detail: format!("server offers only {version}; chain captured by legacy handshake"),
        }
    };
    capture.failure = Some(failure);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 3, 1];
        push_u16(&mut r, payload.len());
        r.extend_from_slice(payload);
        r
    }

    fn handshake_msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![
            kind,
            (body.len() >> 16) as u8,
            (body.len() >> 8) as u8,
            body.len() as u8,
        ];
        m.extend_from_slice(body);
        m
    }

    fn server_hello(version: u16, suite: u16) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7u8; 32]);
        b.push(4);
        b.extend_from_slice(&[1, 2, 3, 4]);
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0);
        handshake_msg(2, &b)
    }

    fn certificate(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&[(c.len() >> 16) as u8, (c.len() >> 8) as u8, c.len() as u8]);
            list.extend_from_slice(c);
        }
        let mut body = vec![
            (list.len() >> 16) as u8,
            (list.len() >> 8) as u8,
            list.len() as u8,
        ];
        body.extend_from_slice(&list);
        handshake_msg(11, &body)
    }

    #[test]
    fn coalesced_flight_in_one_record_parses() {
        let mut hs = server_hello(0x0301, 0xc014);
        hs.extend(certificate(&[b"leaf-der", b"ca-der"]));
        hs.extend(handshake_msg(14, &[]));
        let flight = parse_server_flight(&record(22, &hs)).unwrap();
        assert_eq!(flight.version, 0x0301);
        assert_eq!(flight.cipher_suite, 0xc014);
        assert_eq!(
            flight.certificates,
            vec![b"leaf-der".to_vec(), b"ca-der".to_vec()]
        );
        assert!(flight.hello_done && flight.is_complete());
    }

    #[test]
    fn certificate_split_across_records_parses_and_partial_is_incomplete() {
        let mut hs = server_hello(0x0302, 0x002f);
        hs.extend(certificate(&[&[0xab; 300]]));
        let (a, b) = hs.split_at(100);
        let mut bytes = record(22, a);
        let partial = parse_server_flight(&bytes).unwrap();
        assert!(!partial.is_complete());
        bytes.extend(record(22, b));
        let flight = parse_server_flight(&bytes).unwrap();
        assert!(flight.certificate_seen);
        assert_eq!(flight.certificates[0].len(), 300);
        assert_eq!(
            cipher_suite_name(flight.cipher_suite),
            "TLS_RSA_WITH_AES_128_CBC_SHA"
        );
        assert_eq!(
            crate::vocab::TlsVersion::from_wire(flight.version).as_str(),
            "TLSv1.1"
        );
    }

    #[test]
    fn alert_and_garbage_are_classified() {
        assert_eq!(
            parse_server_flight(&record(21, &[2, 70])),
            Err(LegacyError::Alert { description: 70 })
        );
        assert!(matches!(
            parse_server_flight(b"HTTP/1.1 400 Bad Request\r\n"),
            Err(LegacyError::NotTls(_))
        ));
        assert_eq!(parse_server_flight(&[22, 3]), Err(LegacyError::Incomplete));
        assert_eq!(parse_server_flight(&[]), Err(LegacyError::Incomplete));
    }

    #[test]
    fn server_key_exchange_gives_group_and_scheme() {
        // ECDHE, secp256r1 (23), a 65-byte point, then (TLS 1.2) ecdsa_secp256r1_sha256.
        let mut ske = vec![3, 0, 23, 65];
        ske.extend_from_slice(&[4; 65]);
        ske.extend_from_slice(&[0x04, 0x03, 0, 2, 0xaa, 0xbb]);
        assert_eq!(
            parse_server_key_exchange(&ske, true, 0x0303),
            (Some("secp256r1".to_string()), Some(0x0403))
        );
        // TLS 1.0 names no scheme.
        assert_eq!(
            parse_server_key_exchange(&ske, true, 0x0301),
            (Some("secp256r1".to_string()), None)
        );
        // DHE with a 2048-bit prime, g, Ys, then rsa_pkcs1_sha256.
        let mut dhe = vec![1, 0];
        dhe.extend_from_slice(&[0xff; 256]);
        dhe.extend_from_slice(&[0, 1, 2, 1, 0]);
        dhe.extend_from_slice(&[0x11; 256]);
        dhe.extend_from_slice(&[0x04, 0x01]);
        assert_eq!(
            parse_server_key_exchange(&dhe, false, 0x0303),
            (Some("ffdhe-2048".to_string()), Some(0x0401))
        );
        // Garbage never panics.
        assert_eq!(parse_server_key_exchange(&[3], true, 0x0303), (None, None));
        assert_eq!(
            parse_server_key_exchange(&[0xff], false, 0x0303),
            (None, None)
        );
    }

    #[test]
    fn server_hello_version_comes_from_supported_versions_and_survives_a_trailing_alert() {
        // ServerHello: legacy_version 0x0303, random, empty session id, suite 0x1301, null
        // compression, extensions: supported_versions = 0x0304.
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[0x42; 32]);
        hello.extend_from_slice(&[0, 0x13, 0x01, 0]);
        hello.extend_from_slice(&[0, 6, 0, 43, 0, 2, 0x03, 0x04]);
        let mut msg = vec![2, 0, 0, hello.len() as u8];
        msg.extend_from_slice(&hello);
        let mut bytes = record(22, &msg);
        bytes.extend_from_slice(&record(21, &[2, 40]));
        assert_eq!(negotiated_by_server_hello(&bytes), Some((0x0304, 0x1301)));
        assert_eq!(negotiated_by_server_hello(b"garbage"), None);
    }

    #[test]
    fn unknown_suite_renders_as_hex() {
        assert_eq!(cipher_suite_name(0x1301), "0x1301");
    }

    #[test]
    fn client_hello_is_well_formed_and_has_no_supported_versions() {
        let hello = client_hello(Some("lync.example.com"), [9; 32]);
        assert_eq!(&hello[..3], &[22, 3, 1]);
        let rec_len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(rec_len, hello.len() - 5);
        assert_eq!(hello[5], 1);
        assert_eq!(&hello[9..11], &[3, 3]);
        // supported_versions (0x002b) must not appear as an extension type.
        let body = &hello[9..];
        let suites_at = 2 + 32 + 1;
        let suites_len = usize::from(u16::from_be_bytes([body[suites_at], body[suites_at + 1]]));
        let ext_at = suites_at + 2 + suites_len + 2;
        let mut exts = &body[ext_at + 2..];
        let mut kinds = Vec::new();
        while exts.len() >= 4 {
            kinds.push(u16::from_be_bytes([exts[0], exts[1]]));
            let l = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
            exts = &exts[4 + l..];
        }
        assert_eq!(kinds, vec![0x0000, 0x000a, 0x000b, 0x000d, 0xff01]);
        assert!(hello.windows(16).any(|w| w == b"lync.example.com"));
        // No SNI for IP targets.
        let ip = client_hello(Some("127.0.0.1"), [9; 32]);
        assert!(!ip.windows(9).any(|w| w == b"127.0.0.1"));
    }

    proptest::proptest! {
        #[test]
        fn parse_server_flight_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = parse_server_flight(&bytes);
        }

        #[test]
        fn parse_server_flight_never_panics_on_tls_shaped_input(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
            kind in 0u8..16,
        ) {
            let mut hs = server_hello(0x0301, 0xc014);
            hs.extend(handshake_msg(kind, &body));
            let _ = parse_server_flight(&record(22, &hs));
        }
    }
}
