//! Connect + handshake + capture for one address.
//!
//! Size: about 1,170 lines of code and 140 of tests. One handshake's state (the rustls config,
//! the recording verifier's results, the post-handshake verdict read, the key-type memo) is
//! shared by every step; the wire-level pieces that stand alone already live beside it
//! (`legacy`, `starttls`, `proxy`, `verifier`, `tap`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, ClientConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::capture::{Capture, ClientAuthFacts, HandshakeSignature};
use super::reason::{alert_name, Failure, FailureReason};
use super::resolve::AddressMode;
use super::tap::Tap;
use super::verifier::{Recorded, Recorder, RecordingClientCertResolver, RecordingVerifier};

/// A client certificate chain and its private key, for MTLS.
#[derive(Debug)]
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// TLS protocol versions a probe may be bounded to: [`TlsVersion::is_probe_version`]
/// (rustls' floor is 1.2).
pub use crate::vocab::TlsVersion;

pub use crate::vocab::KeyType;

impl KeyType {
    /// Whether a handshake signature scheme belongs to this key type.
    pub fn allows(self, scheme: rustls::SignatureScheme) -> bool {
        let code = u16::from(scheme);
        match self {
            // ecdsa_sha1 (0x0203), ecdsa_secp256r1/384r1/521r1 (0x0403/0x0503/0x0603).
            KeyType::Ecdsa => code & 0x00ff == 0x03,
            // rsa_pkcs1_* (0x0201, 0x0401, 0x0501, 0x0601), rsa_pss_rsae/pss_* (0x0804-0x0806,
            // 0x0809-0x080b).
            KeyType::Rsa => {
                code & 0x00ff == 0x01 || matches!(code, 0x0804..=0x0806 | 0x0809..=0x080b)
            }
        }
    }

    /// The key type of a certificate's key, when it is one a probe can ask for.
    pub fn of_key(key: &crate::chain::KeyAlgorithm) -> Option<KeyType> {
        match key {
            crate::chain::KeyAlgorithm::Rsa { .. } => Some(KeyType::Rsa),
            crate::chain::KeyAlgorithm::Ec { .. } => Some(KeyType::Ecdsa),
            _ => None,
        }
    }

    /// The other type (for the `auto` check of a second certificate).
    pub fn other(self) -> KeyType {
        match self {
            KeyType::Ecdsa => KeyType::Rsa,
            KeyType::Rsa => KeyType::Ecdsa,
        }
    }
}

/// Which certificates of an address are probed, by key type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyTypes {
    /// One probe offering every scheme (the server's preferred certificate). At an address's
    /// first probe, whenever its leaf changes and after a config reload, one extra hello offers
    /// only the other key type's schemes; when that reveals a second certificate, both are
    /// probed every round (each restricted to its type). A single-certificate server keeps
    /// costing one handshake.
    #[default]
    Auto,
    /// One probe per listed key type, each offering only that type's schemes.
    Only(Vec<KeyType>),
}

/// Bumped on every config reload: `auto` key-type checks run again at each address's next
/// probe.
static KEY_CHECK_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Make every `auto` endpoint look for a second certificate again at its next probe (the
/// daemon calls this on reload).
pub fn recheck_key_types() {
    KEY_CHECK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Per-address memory of the `auto` key-type check, shared by the clones of one endpoint's
/// spec (bounded by the endpoint's addresses). A small vector, not a hash map: an endpoint has
/// a handful of addresses, and every endpoint holds one of these (a one-entry `HashMap` costs
/// ~300 bytes, the vector 72).
#[derive(Debug, Clone, Default)]
pub struct KeyTypeMemo(Arc<std::sync::Mutex<Vec<(SocketAddr, KeyCheck)>>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyCheck {
    /// Leaf fingerprint of the unrestricted probe when the check ran.
    leaf: String,
    /// A second certificate of the other key type was found.
    several: bool,
    generation: u64,
}

/// Most addresses remembered per endpoint (addresses come and go with DNS).
const KEY_MEMO_CAP: usize = 1024;

impl KeyTypeMemo {
    fn get(&self, a: SocketAddr) -> Option<KeyCheck> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, _)| *k == a)
            .map(|(_, c)| c.clone())
    }

    fn set(&self, a: SocketAddr, check: KeyCheck) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = m.iter_mut().find(|(k, _)| *k == a) {
            slot.1 = check;
            return;
        }
        if m.len() >= KEY_MEMO_CAP {
            m.clear();
        }
        m.reserve_exact(1);
        m.push((a, check));
    }
}

/// (fingerprint, key type) of a capture's leaf.
fn leaf_identity(c: &Capture) -> Option<(String, Option<KeyType>)> {
    let der = c.chain.first()?;
    let facts = crate::chain::facts::parse_cert_cached(der.as_ref()).ok()?;
    Some((
        facts.fingerprint_sha256.clone(),
        KeyType::of_key(&facts.key),
    ))
}

/// Probe one address for every certificate its `key_types` asks for: one capture per key type
/// probed (see [`KeyTypes`]).
pub async fn probe_address_key_types(spec: &ProbeSpec, address: SocketAddr) -> Vec<Capture> {
    let restricted = |kt: KeyType| {
        let mut s = spec.clone();
        s.key_type = Some(kt);
        // The legacy hello offers every suite: it would capture the other type's certificate
        // and report it under this one. A restricted probe is rustls only (TLS 1.2/1.3).
        s.legacy_fallback = false;
        s
    };
    let mut types = match &spec.key_types {
        KeyTypes::Only(list) => list.clone(),
        KeyTypes::Auto => Vec::new(),
    };
    if !types.is_empty() {
        types.sort();
        types.dedup();
        let mut out = Vec::with_capacity(types.len());
        for kt in types {
            let mut c = probe_address(&restricted(kt), address).await;
            c.key_type = Some(kt);
            out.push(c);
        }
        return out;
    }
    let generation = KEY_CHECK_GENERATION.load(std::sync::atomic::Ordering::Relaxed);
    let memo = spec.key_memo.get(address);
    if let Some(m) = memo
        .as_ref()
        .filter(|m| m.several && m.generation == generation)
    {
        // Known dual-certificate server: both certificates, each by its own hello.
        let mut out: Vec<Capture> = Vec::with_capacity(2);
        for &kt in KeyType::ALL {
            let mut s = restricted(kt);
            if let Some(prev) = out.first() {
                // One enforcement check per address is enough: it is the same server.
                s.expect_client_auth = ClientAuthExpectation::None;
                let enforced = prev.mtls_enforced;
                let mut c = probe_address(&s, address).await;
                c.mtls_enforced = enforced;
                c.key_type = Some(kt);
                c.several_certificates = Some(true);
                out.push(c);
                continue;
            }
            let mut c = probe_address(&s, address).await;
            c.key_type = Some(kt);
            c.several_certificates = Some(true);
            out.push(c);
        }
        let leaves: Vec<_> = out.iter().map(|c| leaf_identity(c).map(|l| l.0)).collect();
        if leaves[0].is_some() && leaves[0] == leaves[1] {
            // Both hellos got the same certificate now: a single-certificate server again.
            spec.key_memo.set(
                address,
                KeyCheck {
                    leaf: m.leaf.clone(),
                    several: false,
                    generation,
                },
            );
            let mut c = out.swap_remove(0);
            c.key_type = None;
            c.several_certificates = Some(false);
            return vec![c];
        }
        return out;
    }
    let mut first = probe_address(spec, address).await;
    let Some((leaf, Some(kt))) = leaf_identity(&first) else {
        return vec![first];
    };
    let fresh = memo
        .as_ref()
        .is_some_and(|m| m.leaf == leaf && m.generation == generation);
    if fresh {
        return vec![first];
    }
    // The check: the same address, offering only the other key type's schemes.
    let mut probe = restricted(kt.other());
    probe.expect_client_auth = ClientAuthExpectation::None;
    let mut second = probe_address(&probe, address).await;
    let several = leaf_identity(&second).is_some_and(|(l, t)| l != leaf && t == Some(kt.other()));
    spec.key_memo.set(
        address,
        KeyCheck {
            leaf,
            several,
            generation,
        },
    );
    first.several_certificates = Some(several);
    if !several {
        return vec![first];
    }
    first.key_type = Some(kt);
    second.key_type = Some(kt.other());
    second.several_certificates = Some(true);
    // The second probe skipped the enforcement check; it is the same server.
    second.mtls_enforced = first.mtls_enforced;
    vec![first, second]
}

/// What the endpoint is expected to do about client certificates.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthExpectation {
    /// The server must refuse clients without a certificate (checked with a second probe).
    Required,
    /// The server may ask for one.
    Optional,
    /// No expectation.
    #[default]
    None,
}

/// Application protocol spoken after the handshake, used to read the server's verdict
/// (e.g. nginx answers a missing client certificate with HTTP 400, not an alert).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// Do not speak; wait briefly for an alert or close after the handshake.
    #[default]
    None,
    /// Send `HEAD / HTTP/1.1` and read the status line.
    Http,
}

/// Everything needed to probe one address. Built from the validated config (or the ad-hoc CLI).
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// Host name as configured (for logs).
    pub host: String,
    pub port: u16,
    /// SNI and name to present; None for IP-only targets.
    pub sni: Option<String>,
    pub client_identity: Option<Arc<ClientIdentity>>,
    pub expect_client_auth: ClientAuthExpectation,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    pub alpn: Vec<String>,
    pub app_protocol: AppProtocol,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// How long to wait after the handshake for the server's verdict (TLS 1.3 client-auth
    /// rejections surface on the first read).
    pub verdict_timeout: Duration,
    /// Cap on presented certificates and on their total DER bytes.
    pub max_chain_certs: usize,
    pub max_chain_bytes: usize,
    /// Try the legacy (TLS 1.0-1.2 ClientHello) capture when rustls cannot negotiate.
    pub legacy_fallback: bool,
    /// Offer only this key type's signature schemes (and TLS 1.2 cipher suites), to see that
    /// certificate of a dual-certificate server; None offers every scheme.
    pub key_type: Option<KeyType>,
    /// Which certificates of each address to probe (config `key_types`, `--key-type`).
    pub key_types: KeyTypes,
    /// The `auto` check's memory (shared by clones of this spec).
    pub key_memo: KeyTypeMemo,
    /// Upgrade the connection with this STARTTLS preamble before the TLS handshake.
    pub starttls: Option<super::starttls::StartTlsSpec>,
    /// Reach the server through this proxy (HTTP CONNECT or SOCKS5).
    pub proxy: Option<Arc<super::proxy::Proxy>>,
    /// Resolve the host through these DNS servers (`global.dns.nameservers`) instead of the
    /// system resolver.
    pub dns: Option<crate::dns::DnsSettings>,
}

impl ProbeSpec {
    /// The SNI a handshake actually sends: the configured name unless it is an IP literal
    /// (RFC 6066 forbids IP addresses in SNI; rustls and the legacy hello send none then).
    pub fn sent_sni(&self) -> Option<String> {
        self.sni
            .as_deref()
            .map(|s| s.trim_start_matches('[').trim_end_matches(']'))
            .filter(|s| !s.is_empty() && s.parse::<std::net::IpAddr>().is_err())
            .map(|_| self.sni.clone().unwrap_or_default())
    }

    /// The name a client using this spec checks the certificate against: the SNI, else the
    /// host as configured (an IP literal is matched against the leaf's IP SANs). None only for
    /// a spec without a host (a chain read from a file).
    pub fn expected_name(&self) -> Option<&str> {
        self.sni
            .as_deref()
            .or(Some(self.host.as_str()))
            .filter(|n| !n.is_empty())
    }

    /// Defaults for a target: TLS 1.2-1.3, 5 s connect, 10 s handshake, 1 s verdict read,
    /// 32 certificates / 256 KiB, legacy fallback on.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let sni = if host.parse::<std::net::IpAddr>().is_ok() {
            None
        } else {
            Some(host.clone())
        };
        Self {
            host,
            port,
            sni,
            client_identity: None,
            expect_client_auth: ClientAuthExpectation::None,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            alpn: Vec::new(),
            app_protocol: AppProtocol::None,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            verdict_timeout: Duration::from_millis(1000),
            max_chain_certs: 32,
            max_chain_bytes: 256 * 1024,
            legacy_fallback: true,
            key_type: None,
            key_types: KeyTypes::Auto,
            key_memo: KeyTypeMemo::default(),
            starttls: None,
            proxy: None,
            dns: None,
        }
    }
}

/// Probe one address: connect, handshake (capturing the chain whatever its validity), read the
/// server's verdict, run the MTLS enforcement check when required, and fall back to the legacy
/// capture for TLS < 1.2 servers. Never panics, never returns an error: failures are data in
/// [`Capture::failure`].
///
/// Worst-case duration: connect + handshake + verdict timeouts, plus connect + handshake
/// timeouts again for the legacy capture, plus one more full probe for the MTLS enforcement
/// check (`expect_client_auth: required` with a client identity). Callers that need a hard
/// bound wrap this in their own timeout.
pub async fn probe_address(spec: &ProbeSpec, address: SocketAddr) -> Capture {
    let identity = match spec
        .client_identity
        .as_deref()
        .map(certified_key)
        .transpose()
    {
        Ok(identity) => identity,
        Err(failure) => {
            let mut capture = Capture::new(address, spec.sent_sni());
            capture.failure = Some(failure);
            return capture;
        }
    };
    let (mut capture, silent) = tls_probe(spec, address, identity.clone()).await;

    let reason = capture.failure.as_ref().map(|f| f.reason);
    // protocol_version / handshake_failure: a server rustls cannot speak to. chain_too_large
    // with no certificate kept: rustls refused a Certificate message over 64 KiB before our
    // verifier saw it; the legacy capture keeps the first certificates within the caps. A reset
    // or close before the server sent a single byte: a version-intolerant server (or a
    // middlebox in front of one) that drops rustls' ClientHello but may answer a classic one.
    let incompatible = matches!(
        reason,
        Some(
            FailureReason::ProtocolVersion
                | FailureReason::HandshakeFailure
                | FailureReason::ChainTooLarge
        )
    );
    let dropped_hello =
        silent && matches!(reason, Some(FailureReason::Reset | FailureReason::Closed));
    // The legacy hello has no STARTTLS preamble and no proxy support: such an endpoint is
    // rustls only.
    if spec.legacy_fallback
        && spec.starttls.is_none()
        && spec.proxy.is_none()
        && capture.chain.is_empty()
        && (incompatible || dropped_hello)
    {
        super::legacy::fallback(spec, address, &mut capture).await;
    }

    if spec.expect_client_auth == ClientAuthExpectation::Required && capture.legacy.is_none() {
        capture.mtls_enforced = if identity.is_none() {
            // The main probe already was a probe without a client certificate.
            enforcement_verdict(&capture)
        } else if reached_certificate_exchange(&capture) {
            let (bare, _) = tls_probe(spec, address, None).await;
            enforcement_verdict(&bare)
        } else {
            None
        };
    }
    capture
}

/// Resolve the spec's host (all addresses or the first) and probe every address concurrently.
/// A resolution failure yields one capture for `0.0.0.0:port` with reason `dns`.
pub async fn probe_endpoint(spec: &ProbeSpec, mode: AddressMode) -> Vec<Capture> {
    // socks5h: the proxy resolves the name; there is one target, the name itself.
    if spec
        .proxy
        .as_ref()
        .is_some_and(|p| p.kind == super::proxy::ProxyKind::Socks5h)
        && spec.host.parse::<std::net::IpAddr>().is_err()
    {
        return probe_addresses(spec, &[SocketAddr::from(([0, 0, 0, 0], spec.port))]).await;
    }
    // A hanging resolver must not hold the probe: resolution shares the connect timeout.
    let resolved = match tokio::time::timeout(
        spec.connect_timeout,
        super::resolve::resolve_with(&spec.host, spec.port, mode, spec.dns.as_ref()),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            FailureReason::Dns,
            format!(
                "resolving {}: no answer within {:?}",
                spec.host, spec.connect_timeout
            ),
        )),
    };
    let addresses = match resolved {
        Ok(addresses) => addresses,
        Err(failure) => {
            let unresolved = SocketAddr::from(([0, 0, 0, 0], spec.port));
            let mut capture = Capture::new(unresolved, spec.sent_sni());
            capture.failure = Some(failure);
            return vec![capture];
        }
    };
    probe_addresses(spec, &addresses).await
}

/// Probe each of `addresses` concurrently (one task each); captures come back in the same order.
pub async fn probe_addresses(spec: &ProbeSpec, addresses: &[SocketAddr]) -> Vec<Capture> {
    let mut set = tokio::task::JoinSet::new();
    for (index, address) in addresses.iter().copied().enumerate() {
        let spec = spec.clone();
        set.spawn(async move { (index, probe_address_key_types(&spec, address).await) });
    }
    let mut out: Vec<Option<Vec<Capture>>> = vec![None; addresses.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((index, capture)) => out[index] = Some(capture),
            // A panicking probe is a bug; it must not take the other addresses down.
            Err(e) => tracing::error!(error = %e, "probe task failed"),
        }
    }
    out.into_iter()
        .zip(addresses.iter().copied())
        .flat_map(|(captures, address)| {
            captures.unwrap_or_else(|| {
                let mut c = Capture::new(address, spec.sent_sni());
                c.failure = Some(Failure::new(FailureReason::TlsError, "probe task failed"));
                vec![c]
            })
        })
        .collect()
}

fn certified_key(identity: &ClientIdentity) -> Result<Arc<CertifiedKey>, Failure> {
    let provider = crate::crypto_provider();
    CertifiedKey::from_der(identity.chain.clone(), identity.key.clone_key(), &provider)
        .map(Arc::new)
        .map_err(|e| {
            Failure::new(
                FailureReason::TlsError,
                format!("client certificate/key unusable: {e}"),
            )
        })
}

/// Did the probe get far enough for the server to have decided about client authentication?
fn reached_certificate_exchange(capture: &Capture) -> bool {
    !capture.chain.is_empty() || capture.tls_version.is_some()
}

/// MTLS enforcement from a probe made WITHOUT a client certificate: `Some(true)` when the server
/// refused it (alert or close during or right after the handshake, HTTP 400), `Some(false)` when
/// it let us in, `None` when the probe failed before the server could decide.
fn enforcement_verdict(bare: &Capture) -> Option<bool> {
    match bare.failure.as_ref().map(|f| f.reason) {
        None => Some(false),
        Some(FailureReason::ClientCertRejected) => Some(true),
        Some(
            FailureReason::TlsAlert
            | FailureReason::Closed
            | FailureReason::Reset
            | FailureReason::HandshakeFailure,
        ) if reached_certificate_exchange(bare) => Some(true),
        Some(_) => None,
    }
}

/// One rustls probe with the given client identity (or none). The flag is true when the
/// handshake failed before the server sent a single byte.
async fn tls_probe(
    spec: &ProbeSpec,
    address: SocketAddr,
    identity: Option<Arc<CertifiedKey>>,
) -> (Capture, bool) {
    let mut capture = Capture::new(address, spec.sent_sni());
    let recorder = Recorder::new();
    let outcome = run_tls(spec, address, identity, &recorder, &mut capture).await;
    let rec = recorder.snapshot();
    capture.chain = rec.chain.clone();
    capture.handshake_signature = rec
        .handshake_signature
        .clone()
        .unwrap_or(HandshakeSignature::NotChecked);
    capture.signature_scheme = rec.signature_scheme.clone();
    capture.ocsp_staple_bytes = rec.ocsp_staple_bytes;
    capture.ocsp_staple = rec.ocsp_staple.clone();
    capture.client_auth = ClientAuthFacts {
        requested: rec.client_auth_requested,
        acceptable_ca_names: rec.acceptable_ca_names.clone(),
        acceptable_ca_names_truncated: rec.acceptable_ca_names_truncated,
        client_cert_sent: rec.client_cert_sent,
        accepted: None,
    };
    let silent = matches!(&outcome, Err(Step::Handshake(_, flight)) if flight.is_empty());
    if let Err(Step::Handshake(_, flight)) = &outcome {
        // The handshake died (a TLS 1.2 client-certificate rejection, a bad signature): keep
        // what the ServerHello negotiated, read from the cleartext flight.
        record_server_hello(flight, &mut capture);
    }
    let failure = match outcome {
        Ok(()) => None,
        Err(Step::Failed(failure)) => Some(failure),
        Err(Step::Handshake(err, flight)) => {
            Some(classify_io_error(&err, &rec, Stage::Handshake, &flight))
        }
        Err(Step::Verdict(err)) => Some(classify_io_error(&err, &rec, Stage::Verdict, &[])),
    };
    let failure = failure.map(|mut f| {
        if let (FailureReason::HandshakeFailure, Some(kt)) = (f.reason, spec.key_type) {
            f.detail = format!(
                "{}; only {kt} signature schemes and cipher suites were offered (key_types): the server may hold no {kt} certificate",
                f.detail
            );
        }
        f
    });
    if rec.client_cert_sent {
        capture.client_auth.accepted = match failure.as_ref().map(|f| f.reason) {
            None => Some(true),
            Some(FailureReason::ClientCertRejected) => Some(false),
            Some(_) => None,
        };
    }
    capture.failure = failure;
    (capture, silent)
}

/// Where a probe stopped.
enum Step {
    /// Already classified.
    Failed(Failure),
    /// The TLS handshake failed with this error; the bytes are the (bounded) start of what the
    /// server sent, for classifying malformed messages.
    Handshake(io::Error, Vec<u8>),
    /// The post-handshake verdict read failed with this error.
    Verdict(io::Error),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Verdict,
}

async fn run_tls(
    spec: &ProbeSpec,
    address: SocketAddr,
    identity: Option<Arc<CertifiedKey>>,
    recorder: &Recorder,
    capture: &mut Capture,
) -> Result<(), Step> {
    let config = client_config(spec, identity, recorder).map_err(Step::Failed)?;
    let server_name = server_name(spec, address).map_err(Step::Failed)?;

    let mut tcp = match &spec.proxy {
        None => connect(address, spec.connect_timeout, capture)
            .await
            .map_err(Step::Failed)?,
        Some(proxy) => {
            let started = Instant::now();
            let tunnel =
                super::proxy::tunnel(proxy, address, &spec.host, spec.connect_timeout).await;
            capture.connect_duration = Some(started.elapsed());
            tunnel.map_err(Step::Failed)?
        }
    };
    if let Some(st) = &spec.starttls {
        // The plaintext preamble shares the handshake timeout.
        let domain = spec.sni.as_deref().unwrap_or(&spec.host);
        let facts = super::starttls::negotiate(&mut tcp, st, domain, spec.handshake_timeout)
            .await
            .map_err(Step::Failed)?;
        capture.starttls = Some(Box::new(facts));
    }

    let started = Instant::now();
    let connector = TlsConnector::from(Arc::new(config));
    let (tcp, tap) = Tap::new(tcp);
    let handshake =
        tokio::time::timeout(spec.handshake_timeout, connector.connect(server_name, tcp));
    let mut stream = match handshake.await {
        Err(_) => {
            capture.handshake_duration = Some(started.elapsed());
            return Err(Step::Failed(Failure::new(
                FailureReason::HandshakeTimeout,
                format!(
                    "TLS handshake did not complete within {} ms",
                    spec.handshake_timeout.as_millis()
                ),
            )));
        }
        Ok(Err(e)) => {
            capture.handshake_duration = Some(started.elapsed());
            return Err(Step::Handshake(e, tap.bytes()));
        }
        Ok(Ok(stream)) => stream,
    };
    tap.stop();
    capture.handshake_duration = Some(started.elapsed());
    record_session(&stream, capture);

    // The verdict read exists to see the server refuse our client certificate (or its
    // absence). A server that sent no CertificateRequest has nothing to refuse: waiting the
    // full verdict timeout on a silent server would hold a concurrency slot for nothing. With
    // `app_protocol: http` the HEAD is still sent (its answer arrives at once).
    let wait_for_verdict =
        spec.app_protocol != AppProtocol::None || recorder.lock().client_auth_requested;
    let verdict = if wait_for_verdict {
        let verdict_started = Instant::now();
        let verdict = read_verdict(spec, &mut stream).await;
        capture.verdict_duration = Some(verdict_started.elapsed());
        verdict
    } else {
        Verdict::Silent
    };
    let rec = recorder.snapshot();
    let result = match verdict {
        Verdict::Silent | Verdict::Data => Ok(()),
        Verdict::Closed(how) => {
            if rec.client_auth_requested {
                Err(Step::Failed(Failure::new(
                    FailureReason::ClientCertRejected,
                    format!(
                        "server {how} right after the handshake ({})",
                        client_cert_phrase(&rec)
                    ),
                )))
            } else {
                Ok(())
            }
        }
        Verdict::Error(e) => Err(Step::Verdict(e)),
        Verdict::Http(http) => {
            if http.is_client_cert_rejection(rec.client_auth_requested) {
                Err(Step::Failed(Failure::new(
                    FailureReason::ClientCertRejected,
                    format!(
                        "server answered `{}` to HEAD ({})",
                        http.status_line,
                        client_cert_phrase(&rec)
                    ),
                )))
            } else {
                Ok(())
            }
        }
    };
    // Best effort: tell the server we are done. Errors are irrelevant at this point.
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.shutdown()).await;
    result
}

fn client_cert_phrase(rec: &Recorded) -> &'static str {
    if rec.client_cert_sent {
        "client certificate sent"
    } else {
        "client certificate requested, none sent"
    }
}

fn client_config(
    spec: &ProbeSpec,
    identity: Option<Arc<CertifiedKey>>,
    recorder: &Recorder,
) -> Result<ClientConfig, Failure> {
    let provider = crate::probe_crypto_provider_for(spec.key_type);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls13, &rustls::version::TLS13),
        (TlsVersion::Tls12, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter(|(v, _)| *v >= spec.min_version && *v <= spec.max_version)
    .map(|(_, p)| p)
    .collect();
    if versions.is_empty() {
        return Err(Failure::new(
            FailureReason::TlsError,
            "min_version is above max_version: no TLS version to offer",
        ));
    }
    let verifier = RecordingVerifier::new(
        provider.signature_verification_algorithms,
        spec.max_chain_certs,
        spec.max_chain_bytes,
        recorder.clone(),
    )
    .with_key_type(spec.key_type);
    let resolver = RecordingClientCertResolver::new(identity, recorder.clone());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| Failure::new(FailureReason::TlsError, format!("client config: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = spec.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // Every probe is a full handshake: a resumed session presents no certificate.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// SNI: the configured name (sent even though we connect to an IP); without one, the IP
/// (rustls sends no SNI for an IP server name).
fn server_name(spec: &ProbeSpec, address: SocketAddr) -> Result<ServerName<'static>, Failure> {
    match &spec.sni {
        Some(sni) => ServerName::try_from(sni.clone()).map_err(|e| {
            Failure::new(FailureReason::TlsError, format!("invalid SNI {sni:?}: {e}"))
        }),
        None => Ok(ServerName::IpAddress(address.ip().into())),
    }
}

async fn connect(
    address: SocketAddr,
    limit: Duration,
    capture: &mut Capture,
) -> Result<TcpStream, Failure> {
    let started = Instant::now();
    let result = tokio::time::timeout(limit, TcpStream::connect(address)).await;
    capture.connect_duration = Some(started.elapsed());
    match result {
        Err(_) => Err(Failure::new(
            FailureReason::ConnectTimeout,
            format!(
                "TCP connect to {address} did not complete within {} ms",
                limit.as_millis()
            ),
        )),
        Ok(Err(e)) => {
            let reason = match e.kind() {
                io::ErrorKind::ConnectionRefused => FailureReason::ConnectRefused,
                io::ErrorKind::TimedOut => FailureReason::ConnectTimeout,
                _ => FailureReason::ConnectError,
            };
            Err(Failure::new(
                reason,
                format!("TCP connect to {address}: {e}"),
            ))
        }
        Ok(Ok(tcp)) => {
            // Small handshake writes should not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

fn record_session(stream: &TlsStream<Tap<TcpStream>>, capture: &mut Capture) {
    let conn = stream.get_ref().1;
    capture.tls_version = conn.protocol_version().map(version_name);
    capture.cipher_suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str().map(str::to_owned));
    capture.alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    capture.kx_group = conn
        .negotiated_key_exchange_group()
        .and_then(|g| g.name().as_str().map(str::to_owned));
}

/// Version and cipher suite from the ServerHello in the server's (cleartext) flight, for a
/// handshake that failed before rustls reported them.
fn record_server_hello(flight: &[u8], capture: &mut Capture) {
    if capture.tls_version.is_some() {
        return;
    }
    if let Some((version, suite)) = super::legacy::negotiated_by_server_hello(flight) {
        capture.tls_version = Some(version_name(rustls::ProtocolVersion::from(version)));
        capture.cipher_suite = rustls::CipherSuite::from(suite)
            .as_str()
            .map(str::to_owned)
            .or_else(|| Some(format!("0x{suite:04x}")));
    }
}

fn version_name(v: rustls::ProtocolVersion) -> crate::vocab::TlsVersion {
    crate::vocab::TlsVersion::from_wire(u16::from(v))
}

/// What the server did right after the handshake.
enum Verdict {
    /// Nothing within the verdict timeout: servers that wait for the client (SIP, HTTP).
    Silent,
    /// The server sent application data (no rejection).
    Data,
    /// The server closed (`"closed the connection"`) without an alert.
    Closed(&'static str),
    /// A read/write error (alert, reset).
    Error(io::Error),
    /// The HTTP response to our `HEAD /`.
    Http(HttpResponse),
}

/// Most bytes of an HTTP response we read.
const MAX_HTTP_RESPONSE: usize = 16 * 1024;

async fn read_verdict(spec: &ProbeSpec, stream: &mut TlsStream<Tap<TcpStream>>) -> Verdict {
    match spec.app_protocol {
        AppProtocol::None => {
            let mut buf = [0u8; 512];
            match tokio::time::timeout(spec.verdict_timeout, stream.read(&mut buf)).await {
                Err(_) => Verdict::Silent,
                Ok(Ok(0)) => Verdict::Closed("closed the connection"),
                Ok(Ok(_)) => Verdict::Data,
                Ok(Err(e)) => eof_as_closed(e),
            }
        }
        AppProtocol::Http => {
            let deadline = tokio::time::Instant::now() + spec.verdict_timeout;
            let host = spec.sni.clone().unwrap_or_else(|| spec.host.clone());
            // The only application data a probe ever sends: no credentials, no cookies.
            let request = format!("HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let write = async {
                stream.write_all(request.as_bytes()).await?;
                stream.flush().await
            };
            match tokio::time::timeout_at(deadline, write).await {
                Err(_) => return Verdict::Silent,
                Ok(Err(e)) => return eof_as_closed(e),
                Ok(Ok(())) => {}
            }
            let mut response = Vec::new();
            let mut buf = [0u8; 4096];
            let mut eof = false;
            loop {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Err(_) => break,
                    Ok(Ok(0)) => {
                        eof = true;
                        break;
                    }
                    Ok(Ok(n)) => {
                        response.extend_from_slice(&buf[..n]);
                        if response.len() >= MAX_HTTP_RESPONSE {
                            break;
                        }
                    }
                    Ok(Err(e)) if response.is_empty() => return eof_as_closed(e),
                    Ok(Err(_)) => break,
                }
            }
            if response.is_empty() {
                return if eof {
                    Verdict::Closed("closed the connection without answering the HTTP request")
                } else {
                    Verdict::Silent
                };
            }
            match HttpResponse::parse(&response) {
                Some(http) => Verdict::Http(http),
                None => Verdict::Data,
            }
        }
    }
}

/// A close without close_notify surfaces as `UnexpectedEof`; it is a close, not an error.
fn eof_as_closed(e: io::Error) -> Verdict {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Verdict::Closed("closed the connection (no close_notify)"),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            Verdict::Closed("reset the connection")
        }
        _ => Verdict::Error(e),
    }
}

/// The parts of an HTTP response the MTLS classification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub status_line: String,
    /// Up to 16 KiB of the response after the header, lossily decoded.
    pub body: String,
}

/// nginx's texts for the 400 it sends instead of a TLS alert (`ssl_verify_client on`).
const NGINX_CLIENT_CERT_MARKERS: &[&str] = &[
    "No required SSL certificate was sent",
    "The SSL certificate error",
];

impl HttpResponse {
    /// Parse the status line (and keep the body); None when it is not HTTP/1.x.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (&text[..], ""),
        };
        let status_line = head.lines().next()?.trim_end().to_string();
        let mut parts = status_line.split_whitespace();
        if !parts.next()?.starts_with("HTTP/1.") {
            return None;
        }
        let status = parts.next()?.parse().ok()?;
        Some(Self {
            status,
            status_line,
            body: body.to_string(),
        })
    }

    /// nginx with `ssl_verify_client on` completes the TLS handshake and answers 400 with
    /// "No required SSL certificate was sent" / "The SSL certificate error" in the body (a
    /// `HEAD` answer has no body, so a 400 to our well-formed `HEAD` after the server asked for
    /// a client certificate counts too).
    pub fn is_client_cert_rejection(&self, client_auth_requested: bool) -> bool {
        self.status == 400
            && (client_auth_requested
                || NGINX_CLIENT_CERT_MARKERS
                    .iter()
                    .any(|m| self.body.contains(m)))
    }
}

/// Alerts a server sends when it refuses the client certificate (or its absence). OpenSSL in
/// TLS 1.2 answers a missing certificate with handshake_failure.
fn is_client_auth_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure
            | AlertDescription::DecryptError
            | AlertDescription::NoCertificate
    )
}

/// Map a handshake or verdict-read error to a bounded reason. Never looks at error text; the
/// text goes to the detail only.
///
/// `flight` is the start of what the server sent (empty after the handshake): it tells a peer
/// that does not speak TLS from a TLS peer with a malformed Certificate message.
fn classify_io_error(err: &io::Error, rec: &Recorded, stage: Stage, flight: &[u8]) -> Failure {
    if let Some(detail) = &rec.chain_too_large {
        return Failure::new(FailureReason::ChainTooLarge, detail.clone());
    }
    if let Some(detail) = &rec.signature_error {
        let reason = if rec.leaf_unparseable {
            FailureReason::BadCertificate
        } else {
            FailureReason::TlsError
        };
        return Failure::new(reason, detail.clone());
    }
    let when = match stage {
        Stage::Handshake => "during the handshake",
        Stage::Verdict => "after the handshake",
    };
    if let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_rustls_error(tls, rec, when, flight);
    }
    let reason = match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => FailureReason::Reset,
        io::ErrorKind::UnexpectedEof => FailureReason::Closed,
        io::ErrorKind::TimedOut => FailureReason::HandshakeTimeout,
        _ => FailureReason::TlsError,
    };
    let detail = match reason {
        FailureReason::Closed => {
            format!("peer closed the connection {when} without an alert ({err})")
        }
        FailureReason::Reset => format!("connection reset {when} ({err})"),
        _ => format!("{err} ({when})"),
    };
    if rec.client_auth_requested
        && stage == Stage::Verdict
        && matches!(reason, FailureReason::Reset | FailureReason::Closed)
    {
        return Failure::new(
            FailureReason::ClientCertRejected,
            format!("{detail}; {}", client_cert_phrase(rec)),
        );
    }
    Failure::new(reason, detail)
}

fn classify_rustls_error(
    err: &rustls::Error,
    rec: &Recorded,
    when: &str,
    flight: &[u8],
) -> Failure {
    use rustls::{Error, InvalidMessage, PeerIncompatible};
    match err {
        Error::AlertReceived(alert) => {
            let name = alert_name(u8::from(*alert));
            let reason = match alert {
                AlertDescription::ProtocolVersion => FailureReason::ProtocolVersion,
                _ if rec.client_auth_requested && is_client_auth_alert(*alert) => {
                    FailureReason::ClientCertRejected
                }
                AlertDescription::HandshakeFailure if rec.chain.is_empty() => {
                    FailureReason::HandshakeFailure
                }
                _ => FailureReason::TlsAlert,
            };
            let detail = match reason {
                FailureReason::ProtocolVersion => format!(
                    "server refused TLS 1.2/1.3 (protocol_version alert {when}): it only speaks an older version"
                ),
                FailureReason::ClientCertRejected => format!(
                    "server sent {name} alert {when} ({})",
                    client_cert_phrase(rec)
                ),
                FailureReason::HandshakeFailure => format!(
                    "server sent handshake_failure {when}, before any certificate: no cipher suite or parameters in common"
                ),
                _ => format!("server sent fatal alert {name} {when}"),
            };
            Failure::new(reason, detail).with_alert(name)
        }
        Error::InvalidMessage(
            InvalidMessage::HandshakePayloadTooLarge | InvalidMessage::CertificatePayloadTooLarge,
        ) => Failure::new(
            FailureReason::ChainTooLarge,
            format!("server sent a handshake message over the size limit {when} ({err})"),
        ),
        Error::InvalidMessage(_) if rec.chain.is_empty() => classify_malformed(err, when, flight),
        Error::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
        ) => Failure::new(
            FailureReason::ProtocolVersion,
            format!("server chose a TLS version we do not offer {when} ({err})"),
        ),
        _ => Failure::new(FailureReason::TlsError, format!("{err} ({when})")),
    }
}

/// rustls could not decode something the server sent before any certificate was recorded:
/// look at the cleartext flight to say whether it was TLS at all, and whether the Certificate
/// message was the broken part.
fn classify_malformed(err: &rustls::Error, when: &str, flight: &[u8]) -> Failure {
    use super::legacy::{parse_server_flight, LegacyError};
    match parse_server_flight(flight) {
        Err(LegacyError::BadCertificateMessage(what)) => Failure::new(
            FailureReason::BadCertificate,
            format!("server sent a malformed Certificate message: {what} ({err}, {when})"),
        ),
        Err(LegacyError::NotTls(what)) => Failure::new(
            FailureReason::NotTls,
            format!("peer does not speak TLS: {what} ({err}, {when})"),
        ),
        // Nothing recorded (should not happen): rustls' record-layer errors mean "not TLS".
        _ if flight.is_empty() => Failure::new(
            FailureReason::NotTls,
            format!("peer does not speak TLS: {err} ({when})"),
        ),
        _ => Failure::new(
            FailureReason::TlsError,
            format!("server sent a malformed TLS message: {err} ({when})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_split_the_signature_schemes() {
        use rustls::SignatureScheme as S;
        for s in [
            S::ECDSA_NISTP256_SHA256,
            S::ECDSA_NISTP384_SHA384,
            S::ECDSA_NISTP521_SHA512,
        ] {
            assert!(KeyType::Ecdsa.allows(s) && !KeyType::Rsa.allows(s), "{s:?}");
        }
        for s in [
            S::RSA_PKCS1_SHA256,
            S::RSA_PKCS1_SHA512,
            S::RSA_PSS_SHA256,
            S::RSA_PSS_SHA512,
            S::from(0x0809),
        ] {
            assert!(KeyType::Rsa.allows(s) && !KeyType::Ecdsa.allows(s), "{s:?}");
        }
        assert!(!KeyType::Rsa.allows(S::ED25519) && !KeyType::Ecdsa.allows(S::ED25519));
        // The restricted providers keep TLS 1.3 suites and only that type's TLS 1.2 suites.
        let rsa = crate::probe_crypto_provider_for(Some(KeyType::Rsa));
        assert!(rsa
            .cipher_suites
            .iter()
            .any(|s| s.version() == &rustls::version::TLS13));
        assert!(rsa
            .cipher_suites
            .iter()
            .all(|s| !format!("{:?}", s.suite()).contains("ECDSA")));
    }

    #[test]
    fn sent_sni_is_none_for_ip_literals() {
        let mut spec = ProbeSpec::new("10.1.2.3", 443);
        assert_eq!(spec.sent_sni(), None);
        assert_eq!(spec.expected_name(), Some("10.1.2.3"));
        spec.sni = Some("10.1.2.3".into());
        assert_eq!(spec.sent_sni(), None);
        spec.sni = Some("[::1]".into());
        assert_eq!(spec.sent_sni(), None);
        spec.sni = Some("sip.contoso.com".into());
        assert_eq!(spec.sent_sni().as_deref(), Some("sip.contoso.com"));
    }

    #[test]
    fn nginx_no_cert_page_is_a_client_cert_rejection() {
        let raw = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n<html><head><title>400 No required SSL certificate was sent</title></head></html>";
        let http = HttpResponse::parse(raw).unwrap();
        assert_eq!(http.status, 400);
        assert!(http.is_client_cert_rejection(false));
    }

    #[test]
    fn plain_400_without_certificate_request_is_not_a_rejection() {
        let http = HttpResponse::parse(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        assert!(!http.is_client_cert_rejection(false));
        assert!(http.is_client_cert_rejection(true));
        let ok = HttpResponse::parse(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert!(!ok.is_client_cert_rejection(true));
    }

    #[test]
    fn non_http_bytes_do_not_parse() {
        assert!(HttpResponse::parse(b"SIP/2.0 200 OK\r\n\r\n").is_none());
        assert!(HttpResponse::parse(b"").is_none());
    }

    fn flight_with_certificate_list(list: &[u8]) -> Vec<u8> {
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[0x42; 32]);
        hello.extend_from_slice(&[0, 0xc0, 0x2b, 0]);
        let mut msgs = vec![2, 0, 0, hello.len() as u8];
        msgs.extend_from_slice(&hello);
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(list);
        msgs.push(11);
        msgs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msgs.extend_from_slice(&body);
        let mut record = vec![22, 3, 3];
        record.extend_from_slice(&(msgs.len() as u16).to_be_bytes());
        record.extend_from_slice(&msgs);
        record
    }

    #[test]
    fn malformed_message_is_classified_from_the_flight() {
        let err = rustls::Error::InvalidMessage(rustls::InvalidMessage::MessageTooShort);
        let rec = Recorded::default();
        // An entry claiming 1024 bytes where 10 follow: a broken Certificate message.
        let mut list = vec![0, 4, 0];
        list.extend_from_slice(&[0x30; 10]);
        let f = classify_rustls_error(&err, &rec, "x", &flight_with_certificate_list(&list));
        assert_eq!(f.reason, FailureReason::BadCertificate, "{f:?}");
        // Not TLS records at all.
        let f = classify_rustls_error(&err, &rec, "x", b"SSH-2.0-OpenSSH_9.2p1\r\n");
        assert_eq!(f.reason, FailureReason::NotTls, "{f:?}");
        // TLS records with a well-formed Certificate message: something else was malformed.
        let mut list = vec![0, 0, 2];
        list.extend_from_slice(&[0x30, 0x00]);
        let f = classify_rustls_error(&err, &rec, "x", &flight_with_certificate_list(&list));
        assert_eq!(f.reason, FailureReason::TlsError, "{f:?}");
        // A record-layer error with nothing recorded is still "not TLS".
        let f = classify_rustls_error(&err, &rec, "x", &[]);
        assert_eq!(f.reason, FailureReason::NotTls, "{f:?}");
    }

    #[test]
    fn protocol_version_alert_maps_to_protocol_version() {
        let rec = Recorded::default();
        let f = classify_rustls_error(
            &rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
            &rec,
            "during the handshake",
            &[],
        );
        assert_eq!(f.reason, FailureReason::ProtocolVersion);
        assert_eq!(f.alert.as_deref(), Some("protocol_version"));
    }

    #[test]
    fn handshake_failure_maps_by_whether_a_certificate_was_requested() {
        let mut rec = Recorded::default();
        let alert = rustls::Error::AlertReceived(AlertDescription::HandshakeFailure);
        assert_eq!(
            classify_rustls_error(&alert, &rec, "x", &[]).reason,
            FailureReason::HandshakeFailure
        );
        rec.chain = vec![CertificateDer::from(vec![1u8])];
        rec.client_auth_requested = true;
        assert_eq!(
            classify_rustls_error(&alert, &rec, "x", &[]).reason,
            FailureReason::ClientCertRejected
        );
    }
}
