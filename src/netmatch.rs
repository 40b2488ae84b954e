//! Host and address patterns an operator writes in the config: `allow_adhoc_targets` entries
//! ([`HostPattern`]) and `allow_adhoc_networks` blocks ([`IpNet`]). They are parsed when the
//! config is validated and matched by the daemon's `/probe` handler and its SSRF check
//! (`daemon::http`, `daemon::ssrf`), so they live below both.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an `allow_adhoc_networks` block, an `allow_adhoc_targets` pattern or a port does not
/// parse; each message quotes the value (bounded by [`crate::text::quote`] where it may be long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("{:?} is not an IP address or CIDR block", crate::text::quote(.0))]
    NotAnAddress(String),
    #[error("{:?}: prefix length must be 0-{max}", crate::text::quote(.net))]
    PrefixLength { net: String, max: u8 },
    #[error("{:?}: address has bits set beyond the /{prefix} prefix (did you mean {network}/{prefix}?)", crate::text::quote(.net))]
    HostBits {
        net: String,
        prefix: u8,
        network: IpAddr,
    },
    #[error("empty allow_adhoc_targets pattern")]
    EmptyPattern,
    #[error("pattern {0:?}: missing ']'")]
    MissingBracket(String),
    #[error("pattern {0:?}: expected ':PORT' after ']'")]
    ExpectedPort(String),
    #[error("pattern {pattern:?}: {port}")]
    PatternPort { pattern: String, port: PortError },
    #[error(
        "pattern {0:?}: host may contain letters, digits, '.', '-', '_', ':', '*' and '?' only"
    )]
    BadChars(String),
    #[error(
        "pattern {0:?} matches hosts in any domain or network (an open relay): a name \
         pattern must end in a fixed domain of at least two labels after its last \
         wildcard (*.corp.example.com), an address pattern must fix at least its first \
         octet or group before the first wildcard (10.*, 2001:db8:*)"
    )]
    Unbounded(String),
}

/// A port that is not 1-65535.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {0:?}")]
pub struct PortError(pub String);

/// An address block, `10.0.0.0/8`, `2001:db8::/32`, or one address (`/32`, `/128` implied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| PatternError::NotAnAddress(s.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(PatternError::PrefixLength {
                        net: s.to_string(),
                        max,
                    })
                }
            },
        };
        let net = Self { addr, prefix };
        if net.network() != addr {
            return Err(PatternError::HostBits {
                net: s.to_string(),
                prefix,
                network: net.network(),
            });
        }
        Ok(net)
    }

    pub(crate) const fn v4(a: [u8; 4], prefix: u8) -> Self {
        Self {
            addr: IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            prefix,
        }
    }

    pub(crate) const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }

    /// Whether `ip` lies in this block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `::ffff:a.b.c.d` -> `a.b.c.d`, so a mapped address cannot slip past an IPv4 rule.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// One `allow_adhoc_targets` entry: a host glob (`*` = any run of characters including dots,
/// `?` = one character; case-insensitive), optionally with `:PORT` (`[v6-glob]:PORT` for IPv6).
/// A pattern made of digits, dots and wildcards (or containing `:`) is an address pattern and
/// only matches IP-literal targets, so `10.*` never matches the name `10.evil.example`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
    ip: bool,
}

impl HostPattern {
    pub fn parse(p: &str) -> Result<Self, PatternError> {
        let p = p.trim();
        if p.is_empty() {
            return Err(PatternError::EmptyPattern);
        }
        let port_err = |port| PatternError::PatternPort {
            pattern: p.to_string(),
            port,
        };
        let (host, port) = if let Some(rest) = p.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| PatternError::MissingBracket(p.to_string()))?;
            let port = match after {
                "" => None,
                a => Some(
                    parse_port(
                        a.strip_prefix(':')
                            .ok_or_else(|| PatternError::ExpectedPort(p.to_string()))?,
                    )
                    .map_err(port_err)?,
                ),
            };
            (h.to_string(), port)
        } else if p.matches(':').count() == 1 {
            let (h, port) = p.split_once(':').unwrap_or((p, ""));
            (h.to_string(), Some(parse_port(port).map_err(port_err)?))
        } else {
            (p.to_string(), None)
        };
        if host.is_empty()
            || !host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '*' | '?')
            })
        {
            return Err(PatternError::BadChars(p.to_string()));
        }
        let ip = host.contains(':')
            || host
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '*' | '?'));
        if !bounded_pattern(&host, ip) {
            return Err(PatternError::Unbounded(p.to_string()));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            ip,
        })
    }

    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
            && host.parse::<std::net::IpAddr>().is_ok() == self.ip
            && glob(self.host.as_bytes(), host.to_ascii_lowercase().as_bytes())
    }
}

/// Whether a host glob is confined to one domain or network. Decided by what the pattern can
/// match, not by its spelling: a name pattern must end, after its last wildcard, in `.` plus at
/// least two complete labels (`*.corp.example`, `fe?.corp.example`; not `*a*`, `*-*`, `*.com`,
/// `*example.com`); an address pattern must start with a complete first octet or group
/// (`10.*`, `2001:db8:*`; not `*0*`, `1*`, `*:*`). Patterns without wildcards name one host.
fn bounded_pattern(host: &str, ip: bool) -> bool {
    let is_wild = |c: char| matches!(c, '*' | '?');
    if !host.contains(is_wild) {
        return true;
    }
    if ip {
        let first = host.find(is_wild).unwrap_or(host.len());
        let prefix = &host[..first];
        return match prefix.find(['.', ':']) {
            // A complete first octet/group, e.g. "10." or "2001:", written before any wildcard.
            Some(i) => i > 0 && prefix[..i].chars().all(|c| c.is_ascii_hexdigit()),
            None => false,
        };
    }
    let last = host.rfind(is_wild).unwrap_or(0);
    let tail = &host[last + 1..];
    let Some(domain) = tail.strip_prefix('.') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|l| !l.is_empty())
}

pub(crate) fn parse_port(s: &str) -> Result<u16, PortError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PortError(s.to_string())),
    }
}

/// Iterative glob match with `*` and `?`.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}
