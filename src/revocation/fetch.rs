//! Fetching a CRL over HTTP(S): URLs come from certificates presented by remote servers, so
//! every step is bounded and checked (scheme, userinfo, resolved addresses, redirects, time,
//! size). HTTP/1.1 with hyper's client connection over a tokio `TcpStream` (tokio-rustls for
//! https); the connection goes to the address that passed the checks, never re-resolved.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{glob_match, Reason, RevocationConfig};

/// A URL that passed the syntactic checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub https: bool,
    /// Lowercase host, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parse an http(s) URL: no userinfo, a host of DNS characters or an IP literal, a port, a
/// path of visible ASCII. Anything else is `Reason::BadUrl` (or `Unsupported` for another
/// scheme).
pub fn parse_url(url: &str) -> Result<HttpUrl, Reason> {
    if url.len() > 2048 {
        return Err(Reason::BadUrl);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Reason::BadUrl)?;
    let https = if scheme.eq_ignore_ascii_case("http") {
        false
    } else if scheme.eq_ignore_ascii_case("https") {
        true
    } else {
        return Err(Reason::Unsupported);
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if authority.contains('@') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Reason::BadUrl);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or(Reason::BadUrl)?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| Reason::BadUrl)?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| Reason::BadUrl)?,
        None if https => 443,
        None => 80,
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty()
        || port == 0
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(Reason::BadUrl);
    }
    Ok(HttpUrl {
        https,
        host,
        port,
        path,
    })
}

/// Addresses never fetched unless the host is explicitly allowed: link-local (169.254/16 holds
/// the cloud metadata address 169.254.169.254; fe80::/10), the AWS IPv6 metadata address
/// fd00:ec2::254, unspecified, multicast and broadcast.
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_address(IpAddr::V4(v4));
            }
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6
                    == "fd00:ec2::254"
                        .parse::<std::net::Ipv6Addr>()
                        .expect("literal")
        }
    }
}

/// What a successful GET returned.
pub enum Fetched {
    /// 200 with the body.
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// 304 to a conditional GET.
    NotModified,
}

/// Validators for a conditional GET.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// GET `url` under `cfg`'s bounds (time, size, allowed hosts). Same-host redirects (at most 3)
/// are followed; a redirect to another host is refused.
pub async fn get(
    url: &str,
    cfg: &RevocationConfig,
    validators: &Validators,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Fetched, Reason> {
    let timeout = cfg.timeout;
    match tokio::time::timeout(timeout, get_inner(url, cfg, validators, tls)).await {
        Ok(r) => r,
        Err(_) => Err(Reason::Timeout),
    }
}

async fn get_inner(
    url: &str,
    cfg: &RevocationConfig,
    validators: &Validators,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Fetched, Reason> {
    let mut target = parse_url(url)?;
    let first_host = (target.host.clone(), target.port, target.https);
    for _ in 0..4 {
        let explicitly_allowed = cfg.allow_hosts.iter().any(|g| glob_match(g, &target.host));
        if !cfg.allow_hosts.is_empty() && !explicitly_allowed {
            return Err(Reason::Blocked);
        }
        let addr = resolve(&target, explicitly_allowed).await?;
        match request(
            &target,
            addr,
            cfg.max_crl_bytes,
            validators,
            "application/pkix-crl, */*",
            tls.clone(),
        )
        .await?
        {
            Step::Done(f) => return Ok(f),
            Step::Redirect(location) => {
                let next = if location.starts_with('/') {
                    HttpUrl {
                        path: location,
                        ..target.clone()
                    }
                } else {
                    parse_url(&location)?
                };
                if (next.host.clone(), next.port, next.https) != first_host {
                    return Err(Reason::Redirect);
                }
                target = next;
            }
        }
    }
    Err(Reason::Redirect)
}

/// GET `path` over https from `addr` itself (no name resolution, no redirects: a 3xx is
/// `Reason::Redirect`), with SNI and certificate verification for `name`, the body capped at
/// `max_bytes`. The OAuth metadata fetch (src/oauth.rs): the address and name are an endpoint's
/// own, never taken from a document. No time bound here: the caller wraps it in one.
pub async fn get_at(
    name: &str,
    addr: SocketAddr,
    path: &str,
    max_bytes: u64,
    accept: &'static str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, Reason> {
    let target = HttpUrl {
        https: true,
        host: name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        port: addr.port(),
        path: path.to_string(),
    };
    match request(
        &target,
        addr,
        max_bytes,
        &Validators::default(),
        accept,
        Some(tls),
    )
    .await?
    {
        Step::Done(Fetched::Body { body, .. }) => Ok(body),
        Step::Done(Fetched::NotModified) => Err(Reason::HttpStatus),
        Step::Redirect(_) => Err(Reason::Redirect),
    }
}

async fn resolve(target: &HttpUrl, explicitly_allowed: bool) -> Result<SocketAddr, Reason> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|_| Reason::Dns)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Reason::Dns);
    }
    // Every address must pass: a name that also resolves to the metadata address is refused.
    if !explicitly_allowed && addrs.iter().any(|a| forbidden_address(a.ip())) {
        return Err(Reason::Blocked);
    }
    Ok(addrs[0])
}

enum Step {
    Done(Fetched),
    Redirect(String),
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn request(
    target: &HttpUrl,
    addr: SocketAddr,
    max_bytes: u64,
    validators: &Validators,
    accept: &'static str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Step, Reason> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|_| Reason::Connect)?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if target.https {
        let config = tls.ok_or(Reason::Tls)?;
        let name = rustls_pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| Reason::BadUrl)?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|_| Reason::Tls)?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| Reason::Connect)?;
    let conn_task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let _abort = AbortOnDrop(conn_task);
    let mut req = hyper::Request::get(target.path.as_str())
        .header(header::HOST, target.authority())
        .header(
            header::USER_AGENT,
            concat!("certprobe/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, accept);
    if let Some(etag) = &validators.etag {
        req = req.header(header::IF_NONE_MATCH, etag.as_str());
    }
    if let Some(lm) = &validators.last_modified {
        req = req.header(header::IF_MODIFIED_SINCE, lm.as_str());
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|_| Reason::BadUrl)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|_| Reason::Connect)?;
    let status = resp.status().as_u16();
    let header_text = |name: header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 256)
            .map(str::to_string)
    };
    match status {
        200 => {}
        304 if validators.etag.is_some() || validators.last_modified.is_some() => {
            return Ok(Step::Done(Fetched::NotModified));
        }
        301 | 302 | 303 | 307 | 308 => {
            let location = header_text(header::LOCATION).ok_or(Reason::HttpStatus)?;
            return Ok(Step::Redirect(location));
        }
        _ => return Err(Reason::HttpStatus),
    }
    if let Some(len) = header_text(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()) {
        if len > max_bytes {
            return Err(Reason::TooLarge);
        }
    }
    let etag = header_text(header::ETAG);
    let last_modified = header_text(header::LAST_MODIFIED);
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Reason::Connect)?;
        if let Some(data) = frame.data_ref() {
            if (out.len() + data.len()) as u64 > max_bytes {
                return Err(Reason::TooLarge);
            }
            out.extend_from_slice(data);
        }
    }
    Ok(Step::Done(Fetched::Body {
        body: out,
        etag,
        last_modified,
    }))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`tls_config`] built once per set of stores (the last one is kept: stores change only on
/// a reload).
pub fn tls_config_cached(stores: &Arc<crate::chain::TrustStores>) -> Arc<rustls::ClientConfig> {
    type Slot = Option<(
        std::sync::Weak<crate::chain::TrustStores>,
        Arc<rustls::ClientConfig>,
    )>;
    static LAST: std::sync::Mutex<Slot> = std::sync::Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((w, c)) = last.as_ref() {
        if w.upgrade().is_some_and(|s| Arc::ptr_eq(&s, stores)) {
            return c.clone();
        }
    }
    let c = tls_config(stores);
    *last = Some((Arc::downgrade(stores), c.clone()));
    c
}

/// Client configuration for https CDPs: the Mozilla roots plus every configured store's
/// anchors (an AD CS CDP on https is served with a certificate of the same PKI).
pub fn tls_config(stores: &crate::chain::TrustStores) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for s in &stores.stores {
        roots.extend(s.anchors.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .expect("ring supports the default versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        });
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let u = parse_url("http://pki.example.test/CertEnroll/ca.crl").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("pki.example.test", 80, "/CertEnroll/ca.crl")
        );
        let u = parse_url("HTTPS://[::1]:8443/a.crl?x=1").unwrap();
        assert!(u.https);
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        assert_eq!(parse_url("http://user:pw@host/x.crl"), Err(Reason::BadUrl));
        assert_eq!(parse_url("ldap:///CN=x,CN=CDP"), Err(Reason::Unsupported));
        assert_eq!(parse_url("file:///etc/passwd"), Err(Reason::Unsupported));
        assert_eq!(parse_url("http://host:99999/"), Err(Reason::BadUrl));
        assert_eq!(parse_url("http://ho st/"), Err(Reason::BadUrl));
        assert_eq!(parse_url("http:///x"), Err(Reason::BadUrl));
    }

    #[test]
    fn link_local_and_metadata_addresses_are_forbidden() {
        for ip in [
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
        ] {
            assert!(forbidden_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "::1", "10.1.2.3", "192.0.2.1"] {
            assert!(!forbidden_address(ip.parse().unwrap()), "{ip}");
        }
    }
}
