//! Where an ad-hoc `/probe?target=` may connect (issue 16, item 7). The name is matched against
//! `allow_adhoc_targets` and the port against `allow_adhoc_ports` by the HTTP layer; this module
//! resolves the name once, checks every resolved address against `allow_adhoc_networks`, and
//! returns the addresses that passed: the probe connects to exactly those (no second lookup, so
//! a DNS answer that changes between check and connect cannot redirect it).
//!
//! Without `allow_adhoc_networks` every address is allowed except [`DEFAULT_DENIED`] (loopback,
//! unspecified, link-local, multicast, broadcast, the cloud metadata addresses). With it, only
//! addresses inside a listed network are. The daemon's own listener (its port on a loopback, an
//! unspecified or its own address) is refused unless `allow_adhoc_ports` lists that port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::netmatch::canonical;
pub use crate::netmatch::IpNet;

/// Refused when `allow_adhoc_networks` is empty.
pub const DEFAULT_DENIED: &[(IpNet, &str)] = &[
    (IpNet::v4([0, 0, 0, 0], 8), "unspecified"),
    (IpNet::v4([127, 0, 0, 0], 8), "loopback"),
    (IpNet::v4([169, 254, 169, 254], 32), "cloud metadata"),
    (IpNet::v4([169, 254, 0, 0], 16), "link-local"),
    (IpNet::v4([100, 100, 100, 200], 32), "cloud metadata"),
    (IpNet::v4([224, 0, 0, 0], 4), "multicast"),
    (IpNet::v4([240, 0, 0, 0], 4), "reserved"),
    (IpNet::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (IpNet::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        IpNet::v6([0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254], 128),
        "cloud metadata",
    ),
    (IpNet::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (IpNet::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// The address rules of ad-hoc probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// `allow_adhoc_networks`; empty = everything but [`DEFAULT_DENIED`].
    pub allowed: Vec<IpNet>,
    /// The exporter's own listener.
    pub listener: Option<SocketAddr>,
    /// `allow_adhoc_ports` as written (None when defaulted to the configured endpoints' ports).
    pub explicit_ports: Option<Vec<u16>>,
}

/// Why one address may not be probed ad hoc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{ip} port {port} is certprobe's own listener")]
    OwnListener { ip: IpAddr, port: u16 },
    #[error(
        "{ip} is a {what} address ({net}); list its network in allow_adhoc_networks to allow it"
    )]
    Denied {
        ip: IpAddr,
        what: &'static str,
        net: IpNet,
    },
    #[error("{0} is the broadcast address")]
    Broadcast(IpAddr),
    #[error("{0} is not in allow_adhoc_networks")]
    NotListed(IpAddr),
}

/// Why an ad-hoc target is not probed: it does not resolve, or no address of it is allowed.
#[derive(Debug, thiserror::Error)]
pub enum TargetRefused {
    #[error("resolving {0} timed out")]
    Timeout(String),
    #[error("{host} does not resolve")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} resolved to no address")]
    NoAddress(String),
    /// Every address refused; each named.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Refusal>),
}

impl NetworkPolicy {
    /// Ok, or why `ip:port` may not be probed.
    pub fn check(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if let Some(l) = self.listener {
            let own_ip = l.ip().is_unspecified() || canonical(l.ip()) == ip || ip.is_loopback();
            let listed = self
                .explicit_ports
                .as_ref()
                .is_some_and(|p| p.contains(&port));
            if port == l.port() && own_ip && !listed {
                return Err(Refusal::OwnListener { ip, port });
            }
        }
        if self.allowed.is_empty() {
            if let Some((net, what)) = DEFAULT_DENIED.iter().find(|(n, _)| n.contains(ip)) {
                return Err(Refusal::Denied {
                    ip,
                    what,
                    net: *net,
                });
            }
            if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
                return Err(Refusal::Broadcast(ip));
            }
            return Ok(());
        }
        if self.allowed.iter().any(|n| n.contains(ip)) {
            Ok(())
        } else {
            Err(Refusal::NotListed(ip))
        }
    }
}

/// Resolve `host` once (IP literals pass through) and keep the addresses `policy` allows. An
/// error when the name does not resolve or no address is allowed (the message names each
/// refused address).
pub async fn resolve_checked(
    host: &str,
    port: u16,
    policy: &NetworkPolicy,
) -> Result<Vec<IpAddr>, TargetRefused> {
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let lookup = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::net::lookup_host((host, port)),
            )
            .await
            .map_err(|_| TargetRefused::Timeout(host.to_string()))?
            .map_err(|source| TargetRefused::Resolve {
                host: host.to_string(),
                source,
            })?;
            let mut v: Vec<IpAddr> = lookup.map(|a| a.ip()).collect();
            v.dedup();
            v
        }
    };
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for ip in addrs {
        match policy.check(ip, port) {
            Ok(()) => ok.push(ip),
            Err(e) => refused.push(e),
        }
    }
    if ok.is_empty() {
        if refused.is_empty() {
            return Err(TargetRefused::NoAddress(host.to_string()));
        }
        return Err(TargetRefused::Refused(refused));
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_policy_refuses_loopback_link_local_metadata_and_mapped_forms() {
        let p = NetworkPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "fd00:ec2::254",
        ] {
            assert!(p.check(ip(bad), 443).is_err(), "{bad} allowed");
        }
        for good in ["10.1.2.3", "192.0.2.7", "2001:db8::5"] {
            assert!(p.check(ip(good), 443).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn listed_networks_replace_the_default_and_the_own_listener_stays_refused() {
        let p = NetworkPolicy {
            allowed: vec![
                IpNet::parse("127.0.0.0/8").unwrap(),
                IpNet::parse("10.1.0.0/16").unwrap(),
            ],
            listener: Some("127.0.0.1:9915".parse().unwrap()),
            explicit_ports: None,
        };
        assert!(p.check(ip("127.0.0.5"), 5061).is_ok());
        assert!(p.check(ip("10.1.9.9"), 443).is_ok());
        assert!(p.check(ip("10.2.0.1"), 443).is_err());
        assert!(p.check(ip("127.0.0.1"), 9915).is_err());
        assert!(
            p.check(ip("127.0.0.2"), 9915).is_err(),
            "any loopback address reaches a 127.0.0.1 listener's port? refuse"
        );
        let listed = NetworkPolicy {
            explicit_ports: Some(vec![9915]),
            ..p
        };
        assert!(listed.check(ip("127.0.0.1"), 9915).is_ok());
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            IpNet::parse("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(IpNet::parse("::1").unwrap().to_string(), "::1/128");
        assert!(IpNet::parse("10.0.0.1/8")
            .unwrap_err()
            .to_string()
            .contains("10.0.0.0/8"));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("example.com").is_err());
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[tokio::test]
    async fn resolve_checked_keeps_only_allowed_addresses() {
        let p = NetworkPolicy::default();
        let e = resolve_checked("localhost", 443, &p)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("loopback"), "{e}");
        assert_eq!(
            resolve_checked("192.0.2.1", 443, &p).await.unwrap(),
            vec![ip("192.0.2.1")]
        );
    }
}
