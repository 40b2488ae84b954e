//! The demo lab: a small Lync Server 2013 estate on loopback addresses, served by in-process
//! tokio-rustls servers with certificates generated at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Error, Result};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::pki::{self, Ca, LeafSpec};

/// The demo config template (paths are relative to the directory the lab writes into).
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.yaml");

const LEGACY_ROOT: &str = include_str!("fixtures/legacy-sha1-root.pem");
const LEGACY_LEAF: &str = include_str!("fixtures/legacy-sha1-leaf.pem");
const LEGACY_KEY: &str = include_str!("fixtures/legacy-sha1-leaf.key");

/// Where the lab's CAs publish their CRLs (HTTP, on the lab's net).
const CRL_SERVER: &str = "127.0.10.9:18080";
/// The serial of the Access Edge's certificate, which the public CA has revoked.
const EDGE_EXT_SERIAL: u64 = 0x0ed9e;

/// One lab endpoint: where it listens and what it serves.
struct Site {
    addr: SocketAddr,
    chain_pem: String,
    key_pem: String,
    /// Require client certificates issued by this root (MTLS).
    client_ca_pem: Option<String>,
}

/// A running lab.
pub struct Lab {
    /// Directory holding the PKI files and `certprobe-demo.yaml`.
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub addresses: Vec<SocketAddr>,
    cancel: CancellationToken,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Lab {
    /// Generate the PKI into `dir`, start every server on 127.0.10.x, and write the config.
    /// The servers run on the current tokio runtime until the lab is dropped.
    pub async fn start(dir: &Path) -> Result<Lab> {
        Self::start_on(dir, 10).await
    }

    /// Like [`Lab::start`], on 127.0.`net`.x (parallel labs need different nets).
    pub async fn start_on(dir: &Path, net: u8) -> Result<Lab> {
        let addr = |s: &str| addr(&s.replace("127.0.10.", &format!("127.0.{net}.")));
        let now = OffsetDateTime::now_utc();
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;

        // Internal enterprise PKI: an AD CS-style root and issuing CA (CA Version extension),
        // leaves from the WebServer template.
        // The CAs publish their CRLs on the lab's CRL server (an IP literal: no DNS in the lab).
        let crl_base = format!("http://{}", addr(CRL_SERVER));
        let root_crl = format!("{crl_base}/crl/root.crl");
        let int_crl = format!("{crl_base}/crl/issuing01.crl");
        let int_root = Ca::root("Contoso Enterprise Root CA", "Contoso", now, true)?;
        let int_ca = int_root.intermediate(
            "Contoso Issuing CA 01",
            "Contoso",
            now,
            true,
            Some(&root_crl),
        )?;
        // Stand-in "public" CA (trusted as `public` in the demo only). It shards its CRLs:
        // `tls.crl` revokes the Access Edge's certificate, `tls-2.crl` (the reverse proxy's
        // shard) is six hours from its nextUpdate and not yet republished.
        let pub_root = Ca::root("Demo Public Root CA", "Demo Public Trust", now, false)?;
        let pub_root_crl = format!("{crl_base}/public/root.crl");
        let pub_ca = pub_root.intermediate(
            "Demo Public TLS CA",
            "Demo Public Trust",
            now,
            false,
            Some(&pub_root_crl),
        )?;
        // A federation partner's private root nobody here trusts.
        let partner_root = Ca::root("Partner Private Root", "Partner Inc", now, false)?;

        let int_tail = int_ca.cert_pem.clone();
        let pub_tail = pub_ca.cert_pem.clone();
        let public_crl = format!("{crl_base}/public/tls.crl");
        let public_crl_2 = format!("{crl_base}/public/tls-2.crl");

        // An AD CS leaf: the WebServer template, the issuing CA's CDP.
        fn adcs<'a>(crl: &'a str, mut s: LeafSpec<'a>) -> LeafSpec<'a> {
            s.template_name = Some("WebServer");
            s.crl_dp = Some(crl);
            s
        }
        let fe_sans: &'static [&'static str] = &[
            "fepool.contoso.com",
            "fe01.contoso.com",
            "sip.contoso.com",
            "sip.fabrikam.com",
        ];
        let fe2_sans: &'static [&'static str] = &[
            "fepool.contoso.com",
            "fe02.contoso.com",
            "sip.contoso.com",
            "sip.fabrikam.com",
        ];
        let fe01 = int_ca.issue(
            &adcs(
                &int_crl,
                LeafSpec::server(now, "fepool.contoso.com", fe_sans, 365),
            ),
            &int_tail,
        )?;
        // fe02 was renewed separately: another key, and it expires in 10 days.
        let fe02 = int_ca.issue(
            &adcs(
                &int_crl,
                LeafSpec::server(now, "fepool.contoso.com", fe2_sans, 10),
            ),
            &int_tail,
        )?;
        let director = int_ca.issue(
            &adcs(
                &int_crl,
                LeafSpec::server(
                    now,
                    "dirpool.contoso.com",
                    &[
                        "dirpool.contoso.com",
                        "dir01.contoso.com",
                        "sip.contoso.com",
                        "sip.fabrikam.com",
                    ],
                    365,
                ),
            ),
            &int_tail,
        )?;
        let mut edge_int_spec = adcs(
            &int_crl,
            LeafSpec::server(now, "lsedge.contoso.net", &[], 365),
        );
        edge_int_spec.client_auth = true;
        edge_int_spec.template_v2 = true;
        let edge_int = int_ca.issue(&edge_int_spec, &int_tail)?;
        let mut edge_ext_spec = LeafSpec::server(
            now,
            "sip.contoso.com",
            &["sip.contoso.com", "webconf.contoso.com", "*.contoso.com"],
            300,
        );
        edge_ext_spec.crl_dp = Some(&public_crl);
        edge_ext_spec.serial = Some(EDGE_EXT_SERIAL);
        let edge_ext = pub_ca.issue(&edge_ext_spec, &pub_tail)?;
        let mut rp_spec = LeafSpec::server(
            now,
            "webext.contoso.com",
            &[
                "webext.contoso.com",
                "meet.contoso.com",
                "meet.fabrikam.com",
                "dialin.contoso.com",
                "lyncdiscover.contoso.com",
            ],
            300,
        );
        rp_spec.crl_dp = Some(&public_crl_2);
        let rp = pub_ca.issue(&rp_spec, &pub_tail)?;
        let mut partner_spec = LeafSpec::server(
            now,
            "sip.partner.example",
            &["sip.partner.example", "access.partner.example"],
            200,
        );
        partner_spec.crl_dp = Some("http://pki.partner.example/root.crl");
        let partner = partner_root.issue(&partner_spec, "")?;
        // Our MTLS client identity (from the internal CA).
        let mut client_spec = adcs(
            &int_crl,
            LeafSpec::server(
                now,
                "certprobe.contoso.com",
                &["certprobe.contoso.com"],
                365,
            ),
        );
        client_spec.client_auth = true;
        let client = int_ca.issue(&client_spec, &int_tail)?;

        pki::write(
            dir,
            "internal-root.pem",
            &format!("{}{LEGACY_ROOT}", int_root.cert_pem),
            false,
        )?;
        pki::write(dir, "public-root.pem", &pub_root.cert_pem, false)?;
        pki::write(dir, "client.pem", &client.chain_pem, false)?;
        pki::write(dir, "client.key", &client.key_pem, true)?;

        let sites = vec![
            Site {
                addr: addr("127.0.10.1:15061"),
                chain_pem: fe01.chain_pem,
                key_pem: fe01.key_pem,
                client_ca_pem: None,
            },
            Site {
                addr: addr("127.0.10.2:15061"),
                chain_pem: fe02.chain_pem,
                key_pem: fe02.key_pem,
                client_ca_pem: None,
            },
            Site {
                addr: addr("127.0.10.3:15061"),
                chain_pem: director.chain_pem,
                key_pem: director.key_pem,
                client_ca_pem: None,
            },
            Site {
                addr: addr("127.0.10.4:14443"),
                chain_pem: LEGACY_LEAF.to_string(),
                key_pem: LEGACY_KEY.to_string(),
                client_ca_pem: None,
            },
            Site {
                addr: addr("127.0.10.5:15061"),
                chain_pem: edge_int.chain_pem,
                key_pem: edge_int.key_pem,
                client_ca_pem: Some(int_root.cert_pem.clone()),
            },
            Site {
                addr: addr("127.0.10.6:10443"),
                chain_pem: edge_ext.chain_pem,
                key_pem: edge_ext.key_pem,
                client_ca_pem: None,
            },
            Site {
                addr: addr("127.0.10.7:10443"),
                chain_pem: rp.chain_pem,
                key_pem: rp.key_pem,
                client_ca_pem: None,
            },
            Site {
                addr: addr("127.0.10.8:15061"),
                chain_pem: partner.chain_pem,
                key_pem: partner.key_pem,
                client_ca_pem: Some(int_root.cert_pem.clone()),
            },
        ];
        let day = time::Duration::days(1);
        let crls: Vec<(String, Vec<u8>)> = vec![
            (
                "/crl/root.crl".into(),
                int_root.crl(now, day * 180, 1, &[])?,
            ),
            (
                "/crl/issuing01.crl".into(),
                int_ca.crl(now, day * 7, 1, &[])?,
            ),
            (
                "/public/root.crl".into(),
                pub_root.crl(now, day * 30, 1, &[])?,
            ),
            (
                "/public/tls.crl".into(),
                pub_ca.crl(
                    now,
                    day * 7,
                    1,
                    &[(EDGE_EXT_SERIAL, rcgen::RevocationReason::KeyCompromise)],
                )?,
            ),
            (
                "/public/tls-2.crl".into(),
                pub_ca.crl(now, time::Duration::hours(6), 1, &[])?,
            ),
        ];
        let cancel = CancellationToken::new();
        let crl_addr = addr(CRL_SERVER);
        let crl_listener = TcpListener::bind(crl_addr).await.map_err(|e| {
            Error::Bind(
                format!("binding the lab CRL server {crl_addr} (is another demo running?)"),
                e,
            )
        })?;
        tokio::spawn(serve_crls(
            crl_listener,
            Arc::new(crls.into_iter().collect()),
            cancel.clone(),
        ));
        let mut addresses = Vec::new();
        for site in sites {
            let listener = TcpListener::bind(site.addr).await.map_err(|e| {
                Error::Bind(
                    format!(
                        "binding the lab server {} (is another demo running?)",
                        site.addr
                    ),
                    e,
                )
            })?;
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(&site)?));
            addresses.push(site.addr);
            tokio::spawn(serve(listener, acceptor, cancel.clone()));
        }
        let config = DEMO_CONFIG.replace("127.0.10.", &format!("127.0.{net}."));
        let config_path = pki::write(dir, "certprobe-demo.yaml", &config, false)?;
        Ok(Lab {
            dir: dir.to_path_buf(),
            config_path,
            addresses,
            cancel,
        })
    }
}

fn server_config(site: &Site) -> Result<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(site.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Pem("lab chain PEM", e))?;
    let key = PrivateKeyDer::from_pem_slice(site.key_pem.as_bytes())
        .map_err(|e| Error::Pem("lab key PEM", e))?;
    let provider = crate::crypto_provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls("lab TLS versions", e))?;
    let builder = match &site.client_ca_pem {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots
                    .add(c.map_err(|e| Error::Pem("lab client CA PEM", e))?)
                    .map_err(|e| Error::Tls("lab client CA", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(Error::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls("lab server certificate", e))
}

/// Accept TLS connections until cancelled; answer an HTTP request with 200, otherwise wait
/// briefly for the client and close.
async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    cancel: CancellationToken,
) {
    loop {
        let (sock, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(mut tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
            else {
                return;
            };
            let mut buf = [0u8; 1024];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await
            {
                if n > 0 && (buf.starts_with(b"HEAD ") || buf.starts_with(b"GET ")) {
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
            }
            let _ = tls.shutdown().await;
        });
    }
}

/// The lab's CRL server: `GET <path>` answers the CRL published there (DER) or 404, then
/// closes. A fixture for the demo, not a web server: one request per connection, a bounded
/// request head.
async fn serve_crls(
    listener: TcpListener,
    crls: Arc<std::collections::HashMap<String, Vec<u8>>>,
    cancel: CancellationToken,
) {
    loop {
        let (mut sock, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
        };
        let crls = crls.clone();
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 4096 {
                match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let line = String::from_utf8_lossy(&head);
            let path = line
                .strip_prefix("GET ")
                .and_then(|r| r.split(' ').next())
                .unwrap_or("");
            let response = match crls.get(path) {
                Some(der) => [
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        der.len()
                    )
                    .into_bytes(),
                    der.clone(),
                ]
                .concat(),
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = sock.write_all(&response).await;
            let _ = sock.shutdown().await;
        });
    }
}
