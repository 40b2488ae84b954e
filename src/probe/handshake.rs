//! Connect + handshake + capture for one address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::capture::Capture;

/// A client certificate chain and its private key, for MTLS.
#[derive(Debug)]
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// TLS protocol versions a probe may be bounded to (rustls' floor is 1.2).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
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
}

impl ProbeSpec {
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
        }
    }
}

/// Probe one address: connect, handshake (capturing the chain whatever its validity), read the
/// server's verdict, run the MTLS enforcement check when required, and fall back to the legacy
/// capture for TLS < 1.2 servers. Never panics, never returns an error: failures are data in
/// [`Capture::failure`].
pub async fn probe_address(spec: &ProbeSpec, address: SocketAddr) -> Capture {
    let mut c = Capture::new(address, spec.sni.clone());
    c.failure = Some(super::Failure::new(
        super::FailureReason::TlsError,
        "probe not implemented yet",
    ));
    c
}

/// Which resolved addresses of a host to probe.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AddressMode {
    /// Every A/AAAA address, each with the same SNI.
    #[default]
    All,
    /// Only the first address returned by the resolver.
    First,
}
