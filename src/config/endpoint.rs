//! One way to build an [`Endpoint`]: the config loader (`validate.rs`), the ad-hoc command line
//! (`probe --target`, `inspect`) and the daemon's `/probe?target=` all start from
//! [`EndpointBuilder::new`] (the global settings every endpoint inherits), load a client
//! identity with [`load_client_identity`] (the key must be the certificate's), check host and
//! SNI names with [`check_host`] and [`check_sni`], and finish with [`EndpointBuilder::build`]
//! (the digest of the validated fields). Discovered endpoints are derived from a template built
//! here. So an ad-hoc target gets the checks a config file gets, with the same messages.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{ClientCertInfo, Endpoint, Global};
use crate::fsread::PemError;
use crate::outcome::TargetMeta;
use crate::probe::{ClientIdentity, ProbeSpec};

/// What is wrong with a host, an SNI name or a client identity, with the value or the file it
/// concerns (never key material).
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("must not be empty")]
    EmptyHost,
    #[error("{:?} is neither an IP address nor a valid DNS name", crate::text::quote(.0))]
    BadHost(String),
    #[error("{:?} is not a valid DNS name", crate::text::quote(.0))]
    BadSni(String),
    /// The client certificate file (unreadable, not PEM, no certificate).
    #[error(transparent)]
    ClientCert(PemError),
    /// The client key file (unreadable, not PEM, no key).
    #[error(transparent)]
    ClientKey(PemError),
    #[error("{}: certificate does not parse: {detail}", path.display())]
    CertParse { path: PathBuf, detail: String },
    #[error("{} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{}: unsupported private key (ring supports RSA >= 2048, ECDSA P-256/P-384, Ed25519)", key.display())]
    UnsupportedKey { key: PathBuf },
}

impl EndpointError {
    /// Whether the error concerns the client key file (else the certificate file), for a
    /// config error's field path.
    pub fn is_about_key(&self) -> bool {
        matches!(
            self,
            Self::ClientKey(_) | Self::KeyMismatch { .. } | Self::UnsupportedKey { .. }
        )
    }
}

/// A host as written in a config or on the command line: trimmed, an IPv6 literal's brackets
/// removed; it must be an IP address or a valid DNS name.
pub fn check_host(raw: &str) -> Result<String, EndpointError> {
    let host = raw.trim();
    // An IPv6 literal may be written in brackets, as in a URL or `--target [::1]:443`.
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner,
        _ => host,
    }
    .to_string();
    if host.is_empty() {
        Err(EndpointError::EmptyHost)
    } else if host.parse::<std::net::IpAddr>().is_err() && !super::validate::valid_dns_name(&host) {
        Err(EndpointError::BadHost(host))
    } else {
        Ok(host)
    }
}

/// A name to send as SNI: a valid DNS name.
pub fn check_sni(name: &str) -> Result<(), EndpointError> {
    if super::validate::valid_dns_name(name) {
        Ok(())
    } else {
        Err(EndpointError::BadSni(name.to_string()))
    }
}

/// A client certificate chain and its key, checked to belong together.
#[derive(Debug, Clone)]
pub struct LoadedIdentity {
    pub identity: Arc<ClientIdentity>,
    pub info: ClientCertInfo,
    /// SHA-256 of the key file's bytes (for the endpoint digest; the key itself is never
    /// digested into anything printed).
    key_sha256: [u8; 32],
}

/// Load `cert` (PEM chain, leaf first) and `key` (PEM private key) and check that the key is
/// the certificate's: a key that is not would make every probe look like a rejected client
/// certificate.
pub fn load_client_identity(cert: &Path, key: &Path) -> Result<LoadedIdentity, EndpointError> {
    let chain = crate::fsread::read_pem_chain(cert).map_err(EndpointError::ClientCert)?;
    let (private_key, key_bytes) =
        crate::fsread::read_pem_key(key).map_err(EndpointError::ClientKey)?;
    let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).map_err(|e| {
        EndpointError::CertParse {
            path: cert.to_path_buf(),
            detail: e.to_string(),
        }
    })?;
    super::check_client_key(leaf.tbs_certificate.subject_pki.raw, &private_key).map_err(
        |p| match p {
            super::ClientKeyProblem::DoesNotMatch => EndpointError::KeyMismatch {
                key: key.to_path_buf(),
                cert: cert.to_path_buf(),
            },
            super::ClientKeyProblem::Unsupported => EndpointError::UnsupportedKey {
                key: key.to_path_buf(),
            },
        },
    )?;
    let info = ClientCertInfo {
        path: cert.to_path_buf(),
        not_after: leaf.validity().not_after.timestamp(),
        subject: leaf.subject().to_string(),
        fingerprint_sha256: hex::encode(Sha256::digest(chain[0].as_ref())),
    };
    Ok(LoadedIdentity {
        identity: Arc::new(ClientIdentity {
            chain,
            key: private_key,
        }),
        info,
        key_sha256: Sha256::digest(&key_bytes).into(),
    })
}

/// An endpoint under construction: the global settings applied, the fields set by its caller,
/// then [`EndpointBuilder::build`].
#[derive(Debug)]
pub struct EndpointBuilder {
    /// The endpoint so far (its `digest` is set by `build`).
    pub endpoint: Endpoint,
    digest: Sha256,
}

impl EndpointBuilder {
    /// Endpoint `name` probing `host:port` with what every endpoint inherits from `global`:
    /// timeouts, chain caps, DNS servers, address mode, intervals, revocation and metrics detail.
    /// The SNI is the host when it is a name; the profile is `default`.
    pub fn new(name: String, host: String, port: u16, global: &Global) -> Self {
        let mut spec = ProbeSpec::new(host.clone(), port);
        spec.connect_timeout = global.connect_timeout;
        spec.handshake_timeout = global.timeout;
        spec.verdict_timeout = global.verdict_timeout;
        spec.max_chain_certs = global.max_chain_certs;
        spec.max_chain_bytes = global.max_chain_bytes;
        spec.dns = (!global.dns.is_system()).then(|| global.dns.clone());
        let endpoint = Endpoint {
            meta: std::sync::Arc::new(TargetMeta {
                endpoint: name,
                host,
                port,
                profile: "default".into(),
                pool: None,
                labels: Default::default(),
                starttls: None,
                metrics_detail: global.metrics_detail,
            }),
            spec,
            addresses: global.addresses,
            resolve: Vec::new(),
            interval: global.interval,
            retry_interval: global.retry_interval.unwrap_or(global.interval),
            expected_names: Vec::new(),
            client_cert: None,
            digest: String::new(),
            revocation: global.revocation.clone(),
            discovered: None,
            oauth: None,
        };
        Self {
            endpoint,
            digest: Sha256::new(),
        }
    }

    /// Present `id` as the client certificate (its key's bytes go into the digest).
    pub fn identity(&mut self, id: &LoadedIdentity) -> &mut Self {
        self.digest.update(id.identity.chain[0].as_ref());
        self.digest.update(id.key_sha256);
        self.endpoint.spec.client_identity = Some(id.identity.clone());
        self.endpoint.client_cert = Some(id.info.clone());
        self
    }

    /// The endpoint, its digest computed from its validated fields.
    pub fn build(self) -> Endpoint {
        let Self {
            mut endpoint,
            mut digest,
        } = self;
        endpoint_digest(&mut digest, &endpoint);
        endpoint.digest = hex::encode(digest.finalize());
        endpoint
    }
}

/// Adds what defines a validated endpoint to its digest: its own validated fields and the
/// effective global settings it was built with (timeouts, chain caps, revocation), never the
/// raw YAML (whose line and column spans moved every endpoint below an inserted comment).
/// Runtime state (the key-type memo) and the identity's key (hashed by
/// [`EndpointBuilder::identity`]) are left out.
fn endpoint_digest(digest: &mut Sha256, ep: &Endpoint) {
    // Destructured so that a new field cannot be forgotten here.
    let Endpoint {
        meta,
        spec,
        addresses,
        resolve,
        interval,
        retry_interval,
        expected_names,
        client_cert,
        digest: _,
        revocation,
        discovered,
        oauth,
    } = ep;
    let ProbeSpec {
        host,
        port,
        sni,
        client_identity: _,
        expect_client_auth,
        min_version,
        max_version,
        alpn,
        app_protocol,
        connect_timeout,
        handshake_timeout,
        verdict_timeout,
        max_chain_certs,
        max_chain_bytes,
        legacy_fallback,
        key_type,
        key_types,
        key_memo: _,
        starttls,
        proxy,
        dns,
    } = spec;
    let fields = format!(
        "{:?}",
        (
            (meta, addresses, resolve, interval, retry_interval),
            (expected_names, client_cert, revocation),
            (
                host,
                port,
                sni,
                expect_client_auth,
                min_version,
                max_version
            ),
            (alpn, app_protocol, connect_timeout, handshake_timeout),
            (
                verdict_timeout,
                max_chain_certs,
                max_chain_bytes,
                legacy_fallback
            ),
            (key_type, key_types, starttls, proxy),
            (dns, discovered, oauth),
        )
    );
    digest.update(fields.as_bytes());
}
