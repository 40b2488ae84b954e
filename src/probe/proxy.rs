//! Probing through a proxy: HTTP CONNECT (RFC 9110 9.3.6, optional basic auth) and SOCKS5
//! (RFC 1928, optional username/password per RFC 1929), for estates behind a jump host or an
//! egress proxy. The proxy's answers are hostile input: bounded, typed
//! (`proxy_connect` — the proxy itself unreachable or speaking nonsense, `proxy_refused` — the
//! proxy said no, its status in the detail, `proxy_auth` — it wants credentials or rejected
//! ours).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::reason::{Failure, FailureReason};

/// The kind of proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// `http://host:port`: HTTP CONNECT.
    Http,
    /// `socks5://host:port`: SOCKS5, the target's address resolved locally.
    Socks5,
    /// `socks5h://host:port`: SOCKS5, the target's name resolved by the proxy.
    Socks5h,
}

/// A parsed proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub host: String,
    pub port: u16,
    /// `user:password` for basic auth (HTTP) or RFC 1929 (SOCKS5), read from a file.
    pub credentials: Option<(String, String)>,
}

/// Why a proxy URL or its credentials are refused; the URL is quoted, credentials never are.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0:?}: a proxy is http://HOST:PORT, socks5://HOST:PORT or socks5h://HOST:PORT")]
    Scheme(String),
    #[error("{0:?}: credentials in the proxy URL are refused (they would end up in logs); use proxy_auth_file")]
    Userinfo(String),
    #[error("{0:?}: expected SCHEME://HOST:PORT")]
    Form(String),
    #[error("{url:?}: bad port {port:?}")]
    Port { url: String, port: String },
    #[error("the proxy credentials file must hold USER:PASSWORD on its first line")]
    CredentialsForm,
    #[error("proxy user and password must be 1-255 and 0-255 bytes")]
    CredentialsLength,
    /// The credentials file cannot be read.
    #[error(transparent)]
    Read(#[from] crate::fsread::ReadError),
    /// The credentials file's content is refused (the source says how).
    #[error("{}", path.display())]
    CredentialsFile {
        path: std::path::PathBuf,
        #[source]
        source: Box<ProxyError>,
    },
}

impl Proxy {
    /// Parse `http://host:port`, `socks5://host:port`, `socks5h://host:port`. Userinfo in the
    /// URL is refused: credentials come from a file (`proxy_auth_file`), never from the URL.
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        let (kind, rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
            (ProxyKind::Http, r, 3128)
        } else if let Some(r) = url.strip_prefix("socks5://") {
            (ProxyKind::Socks5, r, 1080)
        } else if let Some(r) = url.strip_prefix("socks5h://") {
            (ProxyKind::Socks5h, r, 1080)
        } else {
            return Err(ProxyError::Scheme(url.to_string()));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('@') {
            return Err(ProxyError::Userinfo(url.to_string()));
        }
        if rest.contains('/') || rest.is_empty() {
            return Err(ProxyError::Form(url.to_string()));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.is_empty() => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| ProxyError::Port {
                        url: url.to_string(),
                        port: p.to_string(),
                    })?,
            ),
            _ => (rest.to_string(), default_port),
        };
        Ok(Proxy {
            kind,
            host,
            port,
            credentials: None,
        })
    }

    /// `user:password` from a file's first line.
    pub fn with_credentials_text(mut self, text: &str) -> Result<Proxy, ProxyError> {
        let line = text.lines().next().unwrap_or("").trim();
        let (u, p) = line.split_once(':').ok_or(ProxyError::CredentialsForm)?;
        if u.is_empty() || u.len() > 255 || p.len() > 255 {
            return Err(ProxyError::CredentialsLength);
        }
        self.credentials = Some((u.to_string(), p.to_string()));
        Ok(self)
    }

    /// `user:password` from the first line of `path` (read as a key file: a regular file of
    /// at most [`crate::fsread::MAX_KEY_BYTES`]).
    pub fn with_credentials_file(self, path: &std::path::Path) -> Result<Proxy, ProxyError> {
        let text = crate::fsread::read_capped_string(path, crate::fsread::MAX_KEY_BYTES)?;
        self.with_credentials_text(&text)
            .map_err(|e| ProxyError::CredentialsFile {
                path: path.to_path_buf(),
                source: Box::new(e),
            })
    }

    /// The URL without credentials, for logs and details.
    pub fn display(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

fn connect_err(detail: String) -> Failure {
    Failure::new(FailureReason::ProxyConnect, detail)
}

/// Open a tunnel through `proxy` to `target` (an address, or for socks5h the name `host`).
pub async fn tunnel(
    proxy: &Proxy,
    target: SocketAddr,
    host: &str,
    limit: Duration,
) -> Result<TcpStream, Failure> {
    let work = async {
        let mut s = TcpStream::connect((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| connect_err(format!("connecting to proxy {}: {e}", proxy.display())))?;
        let _ = s.set_nodelay(true);
        match proxy.kind {
            ProxyKind::Http => http_connect(&mut s, proxy, target).await?,
            ProxyKind::Socks5 | ProxyKind::Socks5h => socks5(&mut s, proxy, target, host).await?,
        }
        Ok(s)
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(connect_err(format!(
            "proxy {} did not open the tunnel within {} ms",
            proxy.display(),
            limit.as_millis()
        ))),
    }
}

async fn http_connect(s: &mut TcpStream, proxy: &Proxy, target: SocketAddr) -> Result<(), Failure> {
    let authority = target.to_string();
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((u, p)) = &proxy.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| connect_err(format!("writing CONNECT to {}: {e}", proxy.display())))?;
    // Read the response head byte by byte (it must not swallow the server's first TLS bytes),
    // bounded at 8 KiB.
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 8192 {
            return Err(connect_err(format!(
                "proxy {} sent a response head over 8 KiB",
                proxy.display()
            )));
        }
        match s.read(&mut b).await {
            Ok(0) => {
                return Err(connect_err(format!(
                    "proxy {} closed the connection before answering CONNECT",
                    proxy.display()
                )))
            }
            Ok(_) => head.push(b[0]),
            Err(e) => {
                return Err(connect_err(format!(
                    "reading the CONNECT answer of {}: {e}",
                    proxy.display()
                )))
            }
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = crate::text::bounded(text.lines().next().unwrap_or(""), 120);
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| {
            connect_err(format!(
                "proxy {} answered CONNECT with {status_line:?} (not HTTP)",
                proxy.display()
            ))
        })?;
    match code {
        200..=299 => Ok(()),
        // 407 is the standard answer; tinyproxy answers rejected credentials with 401.
        401 | 407 => Err(Failure::new(
            FailureReason::ProxyAuth,
            format!(
                "proxy {} wants authentication ({status_line}){}",
                proxy.display(),
                if proxy.credentials.is_some() {
                    ": the credentials were rejected"
                } else {
                    ""
                }
            ),
        )),
        _ => Err(Failure::new(
            FailureReason::ProxyRefused,
            format!(
                "proxy {} refused CONNECT {authority}: {status_line}",
                proxy.display()
            ),
        )),
    }
}

async fn socks5(
    s: &mut TcpStream,
    proxy: &Proxy,
    target: SocketAddr,
    host: &str,
) -> Result<(), Failure> {
    let io =
        |e: std::io::Error| connect_err(format!("SOCKS5 exchange with {}: {e}", proxy.display()));
    let methods: &[u8] = if proxy.credentials.is_some() {
        &[0x00, 0x02]
    } else {
        &[0x00]
    };
    let mut hello = vec![0x05, methods.len() as u8];
    hello.extend_from_slice(methods);
    s.write_all(&hello).await.map_err(io)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.map_err(io)?;
    if choice[0] != 0x05 {
        return Err(connect_err(format!(
            "{} is not a SOCKS5 proxy (version byte 0x{:02x})",
            proxy.display(),
            choice[0]
        )));
    }
    match choice[1] {
        0x00 => {}
        0x02 => {
            let (u, p) = proxy.credentials.as_ref().ok_or_else(|| {
                Failure::new(
                    FailureReason::ProxyAuth,
                    format!("SOCKS5 proxy {} wants a password", proxy.display()),
                )
            })?;
            let mut auth = vec![0x01, u.len() as u8];
            auth.extend_from_slice(u.as_bytes());
            auth.push(p.len() as u8);
            auth.extend_from_slice(p.as_bytes());
            s.write_all(&auth).await.map_err(io)?;
            let mut status = [0u8; 2];
            s.read_exact(&mut status).await.map_err(io)?;
            if status[1] != 0 {
                return Err(Failure::new(
                    FailureReason::ProxyAuth,
                    format!("SOCKS5 proxy {} rejected the credentials", proxy.display()),
                ));
            }
        }
        0xff => {
            return Err(Failure::new(
                FailureReason::ProxyAuth,
                format!(
                    "SOCKS5 proxy {} accepts none of the offered authentication methods",
                    proxy.display()
                ),
            ))
        }
        m => {
            return Err(connect_err(format!(
                "SOCKS5 proxy {} chose an unknown method 0x{m:02x}",
                proxy.display()
            )))
        }
    }
    let mut req = vec![0x05, 0x01, 0x00];
    if proxy.kind == ProxyKind::Socks5h && host.parse::<std::net::IpAddr>().is_err() {
        let name = host.as_bytes();
        if name.len() > 255 {
            return Err(connect_err("host name too long for SOCKS5".into()));
        }
        req.push(0x03);
        req.push(name.len() as u8);
        req.extend_from_slice(name);
    } else {
        match target.ip() {
            std::net::IpAddr::V4(v4) => {
                req.push(0x01);
                req.extend_from_slice(&v4.octets());
            }
            std::net::IpAddr::V6(v6) => {
                req.push(0x04);
                req.extend_from_slice(&v6.octets());
            }
        }
    }
    req.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut rep = [0u8; 4];
    s.read_exact(&mut rep).await.map_err(io)?;
    if rep[1] != 0x00 {
        let why = match rep[1] {
            0x01 => "general failure",
            0x02 => "not allowed by the ruleset",
            0x03 => "network unreachable",
            0x04 => "host unreachable",
            0x05 => "connection refused",
            0x06 => "TTL expired",
            0x07 => "command not supported",
            0x08 => "address type not supported",
            _ => "unknown error",
        };
        return Err(Failure::new(
            FailureReason::ProxyRefused,
            format!(
                "SOCKS5 proxy {} refused the connection: reply 0x{:02x} ({why})",
                proxy.display(),
                rep[1]
            ),
        ));
    }
    // Skip the bound address.
    let skip = match rep[3] {
        0x01 => 4,
        0x04 => 16,
        0x03 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await.map_err(io)?;
            usize::from(l[0])
        }
        t => {
            return Err(connect_err(format!(
                "SOCKS5 proxy {} answered with address type 0x{t:02x}",
                proxy.display()
            )))
        }
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).await.map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_and_credentials_in_urls_are_refused() {
        let p = Proxy::parse("http://proxy.contoso.com:8080").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::Http, "proxy.contoso.com", 8080)
        );
        assert_eq!(Proxy::parse("socks5://127.0.0.1").unwrap().port, 1080);
        assert_eq!(Proxy::parse("socks5h://[::1]:1081").unwrap().host, "::1");
        assert!(Proxy::parse("http://u:p@proxy:1")
            .unwrap_err()
            .to_string()
            .contains("refused"));
        assert!(Proxy::parse("ftp://proxy:1").is_err());
        assert!(Proxy::parse("http://proxy:0").is_err());
        let c = p.with_credentials_text("svc:s3cret\n").unwrap();
        assert_eq!(c.credentials, Some(("svc".into(), "s3cret".into())));
        assert!(!c.display().contains("s3cret"));
    }
}
