//! Name resolution for a target: every A/AAAA of the host (or only the first), IP literals pass
//! through untouched.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::reason::{Failure, FailureReason};

/// Which resolved addresses of a host are probed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AddressMode {
    /// Probe every resolved address (each with the same SNI): pools behind DNS round robin.
    #[default]
    All,
    /// Probe only the first resolved address.
    First,
}

/// Resolve `host:port` to the socket addresses to probe, deduplicated in resolver order.
///
/// IP literals (`127.0.0.1`, `::1`, `[::1]`) are returned as is without a lookup. Failure (or an
/// empty answer) is a [`FailureReason::Dns`] failure.
pub async fn resolve(host: &str, port: u16, mode: AddressMode) -> Result<Vec<SocketAddr>, Failure> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::net::lookup_host((host, port)).await.map_err(|e| {
        Failure::new(
            FailureReason::Dns,
            format!("cannot resolve {host}:{port}: {e}"),
        )
    })?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in found {
        if !out.contains(&addr) {
            out.push(addr);
        }
        if mode == AddressMode::First {
            break;
        }
    }
    if out.is_empty() {
        return Err(Failure::new(
            FailureReason::Dns,
            format!("{host} resolved to no address"),
        ));
    }
    Ok(out)
}

/// [`resolve`] through `dns` (hickory with the configured servers) when given, else through
/// the system resolver.
pub async fn resolve_with(
    host: &str,
    port: u16,
    mode: AddressMode,
    dns: Option<&crate::dns::DnsSettings>,
) -> Result<Vec<SocketAddr>, Failure> {
    let Some(settings) = dns else {
        return resolve(host, port, mode).await;
    };
    let resolver = crate::dns::Resolver::shared(settings)
        .map_err(|e| Failure::new(FailureReason::Dns, crate::text::chain(&e).to_string()))?;
    let ips = resolver
        .addresses(host)
        .await
        .map_err(|f| Failure::new(FailureReason::Dns, format!("cannot resolve {host}: {f}")))?;
    let take = if mode == AddressMode::First {
        1
    } else {
        ips.len()
    };
    Ok(ips
        .into_iter()
        .take(take)
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_literals_pass_through_without_lookup() {
        let v4 = resolve("127.0.0.3", 443, AddressMode::All).await.unwrap();
        assert_eq!(v4, vec!["127.0.0.3:443".parse().unwrap()]);
        let v6 = resolve("[::1]", 8443, AddressMode::All).await.unwrap();
        assert_eq!(v6, vec!["[::1]:8443".parse().unwrap()]);
        let bare6 = resolve("::1", 1, AddressMode::First).await.unwrap();
        assert_eq!(bare6, vec!["[::1]:1".parse().unwrap()]);
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback_and_dedupes() {
        let all = resolve("localhost", 443, AddressMode::All).await.unwrap();
        assert!(!all.is_empty());
        assert!(all.iter().all(|a| a.ip().is_loopback()), "{all:?}");
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        let first = resolve("localhost", 443, AddressMode::First).await.unwrap();
        assert_eq!(first, vec![all[0]]);
    }

    #[tokio::test]
    async fn invalid_name_is_a_dns_failure() {
        // A label longer than 63 octets cannot be encoded into a DNS query, so the system
        // resolver rejects it locally: no packet leaves the machine.
        let name = format!("{}.invalid", "x".repeat(70));
        let err = resolve(&name, 443, AddressMode::All).await.unwrap_err();
        assert_eq!(err.reason, FailureReason::Dns);
    }

    #[test]
    fn address_mode_serde_is_lowercase_and_defaults_to_all() {
        assert_eq!(AddressMode::default(), AddressMode::All);
        assert_eq!(
            serde_json::to_string(&AddressMode::First).unwrap(),
            "\"first\""
        );
        let m: AddressMode = serde_json::from_str("\"all\"").unwrap();
        assert_eq!(m, AddressMode::All);
    }
}
