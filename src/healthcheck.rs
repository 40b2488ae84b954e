//! `certprobe healthcheck`: GET a URL of the daemon and exit 0 on a 2xx answer, for the
//! container HEALTHCHECK (distroless has no shell or curl) and other supervisors.
//!
//! It speaks what the daemon speaks (issue 16, item 11). The TLS and credential options are
//! named after a Prometheus scrape config's (`tls_config.ca_file`, `server_name`,
//! `insecure_skip_verify`, `basic_auth.username` / `password_file`), which is what an
//! exporter-toolkit user already writes:
//!
//! - `--web.config.file FILE`: the daemon's own web config. With `tls_server_config` the check
//!   speaks TLS (an `http://` URL is taken as `https://`) and accepts exactly the certificate
//!   the daemon serves (its `cert_file`'s first certificate; handshake signature checked), so a
//!   self-signed listener needs no CA file. A FILE that does not exist means "no web config"
//!   (plain HTTP), so an image can name its conventional path whether or not TLS is on.
//! - `--tls.ca-file`, `--tls.server-name`: verify the listener's chain against these roots
//!   (default name: the URL's host). `--tls.insecure-skip-verify`: any certificate.
//! - `--auth.username` + `--auth.password-file`, or `user:password@` in the URL: basic auth
//!   (not needed for `/healthz` and `/ready`, which are outside basic auth).
//!
//! Every read is bounded (the status line only) and every step has a 5 s timeout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `certprobe healthcheck` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArgs {
    /// URL to GET, http:// or https://, e.g. http://127.0.0.1:9915/healthz.
    #[arg(long, default_value = "http://127.0.0.1:9915/healthz")]
    pub url: String,
    /// The daemon's web config: with `tls_server_config`, speak TLS and accept exactly the
    /// certificate it serves. A path that does not exist means no web config.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config: Option<PathBuf>,
    /// PEM roots to verify the listener's certificate with (https).
    #[arg(long = "tls.ca-file", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Name to verify the certificate for (default: the URL's host).
    #[arg(long = "tls.server-name", value_name = "NAME")]
    pub server_name: Option<String>,
    /// Accept any certificate (https).
    #[arg(long = "tls.insecure-skip-verify")]
    pub insecure_skip_verify: bool,
    /// Basic-auth user name.
    #[arg(long = "auth.username", requires = "password_file")]
    pub username: Option<String>,
    /// File holding the basic-auth password (one line).
    #[arg(
        long = "auth.password-file",
        value_name = "FILE",
        requires = "username"
    )]
    pub password_file: Option<PathBuf>,
}

const STEP: Duration = Duration::from_secs(5);

/// Accepts exactly one end-entity certificate (the daemon's own), with a valid handshake
/// signature.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the listener does not serve the certificate of the web config's cert_file".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepts any certificate (`--tls.insecure-skip-verify`); signatures are still checked.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why the check could not be made. [`HealthcheckError::is_usage`] tells a bad command line
/// (exit 64) from a failed check (exit 1, the reason on stderr).
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("healthcheck: the URL must start with http:// or https://")]
    Scheme,
    #[error("healthcheck: the URL path contains spaces or control characters")]
    Path,
    /// `--tls.ca-file`, the served certificate named by `--web.config.file`.
    #[error(transparent)]
    Pem(#[from] crate::fsread::PemError),
    /// `--web.config.file`, `--password-file`.
    #[error(transparent)]
    Read(#[from] crate::fsread::ReadError),
    #[error("web config {}", path.display())]
    WebConfig {
        path: std::path::PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("TLS versions")]
    TlsVersions(#[source] rustls::Error),
    #[error("{}: bad CA certificate", path.display())]
    BadCa {
        path: std::path::PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("--tls.server-name / URL host")]
    ServerName(#[source] rustls_pki_types::InvalidDnsNameError),
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("connect to {hostport}")]
    Connect {
        hostport: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    #[error("TLS handshake")]
    Handshake(#[source] std::io::Error),
    #[error("write timed out")]
    WriteTimeout,
    #[error("no answer within 5 s")]
    AnswerTimeout,
    /// Writing the request or reading the answer.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl HealthcheckError {
    /// The command line is at fault (not the daemon being checked).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Scheme | Self::Path)
    }
}

type Result<T, E = HealthcheckError> = std::result::Result<T, E>;

/// The certificate the daemon serves, when its web config has `tls_server_config`.
fn served_cert(web_config: &Path) -> Result<Option<CertificateDer<'static>>> {
    if !web_config.exists() {
        return Ok(None);
    }
    let text = crate::fsread::read_capped_string(web_config, crate::fsread::MAX_WEB_CONFIG_BYTES)?;
    let file: crate::daemon::webconfig::WebConfigFile = if text.trim().is_empty() {
        Default::default()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| HealthcheckError::WebConfig {
            path: web_config.to_path_buf(),
            source: Box::new(e),
        })?
    };
    let Some(tls) = file.tls_server_config else {
        return Ok(None);
    };
    let base = web_config.parent().unwrap_or(Path::new("."));
    let cert = if tls.cert_file.is_absolute() {
        tls.cert_file
    } else {
        base.join(tls.cert_file)
    };
    Ok(crate::fsread::read_pem_chain(&cert)?.into_iter().next())
}

struct Target {
    tls: bool,
    host: String,
    hostport: String,
    path: String,
    userinfo: Option<String>,
}

fn parse_url(url: &str) -> Result<Target> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(HealthcheckError::Scheme);
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(HealthcheckError::Path);
    }
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_string()
    } else {
        hostport
            .rsplit_once(':')
            .map_or(hostport, |(h, _)| h)
            .to_string()
    };
    let hostport = if hostport.starts_with('[') || !hostport.contains(':') {
        if hostport.contains("]:") {
            hostport.to_string()
        } else {
            format!("{hostport}:{}", if tls { 443 } else { 80 })
        }
    } else {
        hostport.to_string()
    };
    Ok(Target {
        tls,
        host,
        hostport,
        path,
        userinfo,
    })
}

/// Run the check: `Ok(true)` for a 2xx answer.
pub fn run(args: &HealthcheckArgs) -> Result<bool> {
    let mut target = parse_url(&args.url)?;
    let pinned = match &args.web_config {
        Some(p) => served_cert(p)?,
        None => None,
    };
    if pinned.is_some() {
        target.tls = true;
    }
    let credentials = match (&args.username, &args.password_file) {
        (Some(u), Some(f)) => {
            let pass = crate::fsread::read_capped_string(f, crate::fsread::MAX_KEY_BYTES)?;
            Some(format!("{u}:{}", pass.trim_end_matches(['\r', '\n'])))
        }
        _ => target.userinfo.clone(),
    };
    let tls = if target.tls {
        let provider = crate::crypto_provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(HealthcheckError::TlsVersions)?;
        let cfg = if args.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
                .with_no_client_auth()
        } else if let Some(ca) = &args.ca_file {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::fsread::read_pem_chain(ca)? {
                roots.add(c).map_err(|source| HealthcheckError::BadCa {
                    path: ca.clone(),
                    source,
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else if let Some(cert) = pinned {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
                .with_no_client_auth()
        } else {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let name = args.server_name.clone().unwrap_or(target.host.clone());
        let name = ServerName::try_from(name).map_err(HealthcheckError::ServerName)?;
        Some((tokio_rustls::TlsConnector::from(Arc::new(cfg)), name))
    } else {
        None
    };
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        target.path, target.hostport
    );
    if let Some(c) = credentials {
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(c)
        ));
    }
    req.push_str("\r\n");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HealthcheckError::Runtime)?;
    rt.block_on(async move {
        let tcp = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(&target.hostport))
            .await
            .map_err(|_| HealthcheckError::ConnectTimeout)?
            .map_err(|source| HealthcheckError::Connect {
                hostport: target.hostport.clone(),
                source,
            })?;
        match tls {
            None => exchange(tcp, &req).await,
            Some((connector, name)) => {
                let s = tokio::time::timeout(STEP, connector.connect(name, tcp))
                    .await
                    .map_err(|_| HealthcheckError::HandshakeTimeout)?
                    .map_err(HealthcheckError::Handshake)?;
                exchange(s, &req).await
            }
        }
    })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &str) -> Result<bool> {
    tokio::time::timeout(STEP, s.write_all(req.as_bytes()))
        .await
        .map_err(|_| HealthcheckError::WriteTimeout)??;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let got = tokio::time::timeout(STEP, s.read(&mut buf[n..]))
            .await
            .map_err(|_| HealthcheckError::AnswerTimeout)??;
        if got == 0 {
            break;
        }
        n += got;
    }
    let head = &buf[..n];
    let ok = (head.starts_with(b"HTTP/1.1 2") || head.starts_with(b"HTTP/1.0 2")) && n >= 12;
    if !ok {
        let line = String::from_utf8_lossy(head);
        let line = line.lines().next().unwrap_or("");
        eprintln!("healthcheck: {}", crate::text::escape_control(line));
    }
    Ok(ok)
}
