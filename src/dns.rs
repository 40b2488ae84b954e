//! DNS through hickory-resolver: SRV lookups for `discover:` sources, host lookups with their
//! CNAME chain (lyncdiscover), and A/AAAA of probed names when `global.dns` names servers.
//!
//! Answers are untrusted input: every name taken from a record is checked as a host name
//! ([`valid_host_name`]) and the number of records taken from one answer is capped
//! ([`MAX_RECORDS`]). Failures are a bounded [`DnsReason`] plus a detail for logs.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

pub use crate::vocab::DnsReason;

/// Records taken from one answer; the rest are ignored and reported (`bad_answer` when an
/// answer holds nothing else).
pub const MAX_RECORDS: usize = 64;
/// CNAME links followed in one host answer.
pub const MAX_CNAME_CHAIN: usize = 8;
/// Default per-query timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default attempts per query.
pub const DEFAULT_ATTEMPTS: usize = 2;

/// `global.dns`: which servers to ask and how patiently. No servers: the system's resolv.conf
/// (for SRV) and the system resolver (getaddrinfo, /etc/hosts) for A/AAAA, as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsSettings {
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

impl DnsSettings {
    /// Whether the system resolver answers A/AAAA (no `nameservers` configured).
    pub fn is_system(&self) -> bool {
        self.nameservers.is_empty()
    }
}

/// A failed lookup: a bounded reason and a detail for logs and the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsFailure {
    pub reason: DnsReason,
    pub detail: String,
}

impl DnsFailure {
    fn new(reason: DnsReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

/// One SRV record, its target checked as a host name (lower case, no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// A host lookup: the CNAME links followed (each a checked host name, in order) and the
/// addresses at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAnswer {
    pub cnames: Vec<String>,
    pub addresses: Vec<IpAddr>,
}

/// A host name as DNS answers may carry it: 1-253 octets, labels of 1-63 letters, digits and
/// `-` (not at either end), at least two labels; `_` is allowed (SRV owner names use it).
/// Returns the name in lower case without the trailing dot.
pub fn valid_host_name(name: &str) -> Option<String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.len() > 253 || !n.contains('.') {
        return None;
    }
    let ok = n.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    ok.then(|| n.to_ascii_lowercase())
}

/// The resolver for `settings`: hickory with the given servers, or with resolv.conf.
pub struct Resolver {
    inner: TokioResolver,
    settings: DnsSettings,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Why no resolver could be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("reading the system DNS configuration")]
    SystemConfig(#[source] Box<NetError>),
    #[error("building the DNS resolver")]
    Build(#[source] Box<NetError>),
}

impl Resolver {
    /// Build a resolver. Fails only when resolv.conf cannot be read (no servers configured).
    pub fn new(settings: &DnsSettings) -> Result<Self, SetupError> {
        let mut builder = if settings.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| SetupError::SystemConfig(Box::new(e)))?
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|a| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    NameServerConfig::new(a.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = settings.timeout;
        opts.attempts = settings.attempts.saturating_sub(1);
        // Discovery must see a removed record at its next refresh: answers are not cached
        // beyond one lookup.
        opts.cache_size = 0;
        opts.preserve_intermediates = true;
        opts.ndots = 0;
        if !settings.nameservers.is_empty() {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let inner = builder
            .build()
            .map_err(|e| SetupError::Build(Box::new(e)))?;
        Ok(Self {
            inner,
            settings: settings.clone(),
        })
    }

    /// The process-wide resolver for `settings` (rebuilt when a reload changes them).
    pub fn shared(settings: &DnsSettings) -> Result<Arc<Resolver>, SetupError> {
        static CACHE: Mutex<Option<Arc<Resolver>>> = Mutex::new(None);
        let mut slot = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.as_ref().filter(|r| r.settings == *settings) {
            return Ok(Arc::clone(r));
        }
        let r = Arc::new(Resolver::new(settings)?);
        *slot = Some(Arc::clone(&r));
        Ok(r)
    }

    /// The whole time one lookup may take (every attempt), plus a margin.
    pub fn bound(&self) -> Duration {
        self.settings.timeout * (self.settings.attempts.max(1) as u32) + Duration::from_secs(1)
    }

    /// SRV records of `name`, sorted by (priority, weight desc, target, port), at most
    /// [`MAX_RECORDS`]. A target that is not a host name (or `.`, "no service") is skipped;
    /// when every record was skipped the failure is `bad_answer` (or `no_records` for `.`).
    pub async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, DnsFailure> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = self.bounded(name, self.inner.srv_lookup(fqdn)).await?;
        let mut out = Vec::new();
        let mut skipped = 0usize;
        let mut dot = false;
        for r in lookup.answers() {
            let RData::SRV(srv) = &r.data else { continue };
            let target = srv.target.to_ascii();
            if target == "." {
                dot = true;
                continue;
            }
            match valid_host_name(&target) {
                Some(t) if out.len() < MAX_RECORDS => out.push(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: t,
                }),
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                name,
                skipped,
                "SRV records skipped: target not a host name, or more than {MAX_RECORDS} records"
            );
        }
        out.sort_by(|a, b| {
            (a.priority, std::cmp::Reverse(a.weight), &a.target, a.port).cmp(&(
                b.priority,
                std::cmp::Reverse(b.weight),
                &b.target,
                b.port,
            ))
        });
        out.dedup();
        if out.is_empty() {
            return Err(if dot && skipped == 0 {
                DnsFailure::new(
                    DnsReason::NoRecords,
                    format!("{name}: SRV target \".\" (service not offered)"),
                )
            } else {
                DnsFailure::new(
                    DnsReason::BadAnswer,
                    format!("{name}: no SRV record with a usable target"),
                )
            });
        }
        Ok(out)
    }

    /// A, AAAA and the CNAME chain of `host` (both families asked; addresses deduplicated in
    /// answer order, IPv4 first).
    pub async fn host(&self, host: &str) -> Result<HostAnswer, DnsFailure> {
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        let (v4, v6) = tokio::join!(
            self.bounded(host, self.inner.lookup(fqdn.clone(), RecordType::A)),
            self.bounded(host, self.inner.lookup(fqdn, RecordType::AAAA)),
        );
        let mut answer = HostAnswer::default();
        let mut first_err = None;
        for result in [v4, v6] {
            match result {
                Ok(lookup) => {
                    for r in lookup.answers() {
                        match &r.data {
                            RData::A(a) => push_unique(&mut answer.addresses, IpAddr::V4(a.0)),
                            RData::AAAA(a) => push_unique(&mut answer.addresses, IpAddr::V6(a.0)),
                            RData::CNAME(c) if answer.cnames.len() < MAX_CNAME_CHAIN => {
                                if let Some(n) = valid_host_name(&c.0.to_ascii()) {
                                    if !answer.cnames.contains(&n) {
                                        answer.cnames.push(n);
                                    }
                                }
                            }
                            _ => {}
                        }
                        if answer.addresses.len() >= MAX_RECORDS {
                            break;
                        }
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if answer.addresses.is_empty() {
            return Err(first_err.unwrap_or_else(|| {
                DnsFailure::new(DnsReason::NoRecords, format!("{host}: no A or AAAA record"))
            }));
        }
        Ok(answer)
    }

    /// Addresses of `host` for probing, deduplicated, IP literals passed through.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return Ok(vec![ip]);
        }
        self.host(host).await.map(|a| a.addresses)
    }

    async fn bounded<T>(
        &self,
        name: &str,
        fut: impl std::future::Future<Output = Result<T, NetError>>,
    ) -> Result<T, DnsFailure> {
        match tokio::time::timeout(self.bound(), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(name, &e)),
            Err(_) => Err(DnsFailure::new(
                DnsReason::Timeout,
                format!("{name}: no answer within {:?}", self.bound()),
            )),
        }
    }
}

fn push_unique(v: &mut Vec<IpAddr>, ip: IpAddr) {
    if !v.contains(&ip) {
        v.push(ip);
    }
}

/// hickory's error -> a bounded reason.
fn classify(name: &str, e: &NetError) -> DnsFailure {
    let detail = format!("{name}: {}", crate::text::bounded(&e.to_string(), 200));
    let reason = match e {
        NetError::Timeout => DnsReason::Timeout,
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => DnsReason::NxDomain,
            ResponseCode::ServFail => DnsReason::ServFail,
            ResponseCode::Refused => DnsReason::Refused,
            _ => DnsReason::NoRecords,
        },
        NetError::Dns(DnsError::ResponseCode(code)) => match *code {
            ResponseCode::NXDomain => DnsReason::NxDomain,
            ResponseCode::ServFail => DnsReason::ServFail,
            ResponseCode::Refused => DnsReason::Refused,
            _ => DnsReason::Error,
        },
        _ if e.to_string().contains("timed out") => DnsReason::Timeout,
        _ => DnsReason::Error,
    };
    DnsFailure::new(reason, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_from_records_are_checked() {
        assert_eq!(
            valid_host_name("SIP.Fabrikam.com.").as_deref(),
            Some("sip.fabrikam.com")
        );
        assert_eq!(
            valid_host_name("_sip._tls.contoso.com").as_deref(),
            Some("_sip._tls.contoso.com")
        );
        for bad in [
            "",
            ".",
            "localhost",
            "a..b",
            "-a.b",
            "a-.b",
            "a b.c",
            "a\u{1b}[31m.b",
            "a/b.c",
        ] {
            assert_eq!(valid_host_name(bad), None, "{bad:?}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert_eq!(valid_host_name(&long), None);
        let too_long = vec!["a".repeat(60); 5].join(".");
        assert_eq!(valid_host_name(&too_long), None);
    }

    #[test]
    fn errors_map_to_bounded_reasons() {
        use hickory_resolver::net::NoRecords;
        use hickory_resolver::proto::op::Query;
        let q = Query::default();
        let nx = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            q.clone(),
            ResponseCode::NXDomain,
        )));
        assert_eq!(classify("x", &nx).reason, DnsReason::NxDomain);
        let empty = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            q,
            ResponseCode::NoError,
        )));
        assert_eq!(classify("x", &empty).reason, DnsReason::NoRecords);
        let sf = NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail));
        assert_eq!(classify("x", &sf).reason, DnsReason::ServFail);
        assert_eq!(classify("x", &NetError::Timeout).reason, DnsReason::Timeout);
    }
}
