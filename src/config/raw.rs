//! The config file as written: serde types with source spans. Validation turns these into
//! [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration::HumanDuration;
use crate::chain::StoreClass;
use crate::policy::PolicySpec;
use crate::probe::handshake::{AppProtocol, ClientAuthExpectation};
use crate::probe::AddressMode;

/// The whole config file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Config schema version. Only `1` exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Settings that apply to every endpoint unless the endpoint overrides them.
    #[serde(default)]
    pub global: RawGlobal,
    /// Named trust stores. When absent, one store `public` (the built-in webpki-roots
    /// Mozilla root set) is used.
    #[serde(default)]
    pub trust_stores: Option<BTreeMap<String, RawStore>>,
    /// The supported-CA policy: presets, variables and profiles (see docs/policy.md).
    #[serde(default)]
    pub policy: PolicySpec,
    /// The endpoints to probe.
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    /// Endpoint sources resolved from DNS: `{srv: NAME}` or `{lync_domain: DOMAIN}`, each
    /// target an endpoint (re-resolved every `global.discover_interval`).
    #[serde(default)]
    pub discover: Vec<RawDiscover>,
}

/// `global.dns`: the DNS servers certprobe asks (SRV for `discover:`, and A/AAAA of every
/// probed name when `nameservers` is given).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// `IP:PORT` of each server (`127.0.0.1:53`, `[::1]:5353`). Default: the system's
    /// resolv.conf (and the system resolver for A/AAAA).
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Timeout of one query. Default `3s`.
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// Attempts per query (1-5). Default `2`.
    pub attempts: Option<usize>,
}

/// One `discover:` entry: exactly one of `srv` and `lync_domain`, plus what every endpoint
/// found gets.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDiscover {
    /// An SRV name, e.g. `_sipfederationtls._tcp.fabrikam.com`: each target is an endpoint on
    /// the record's port with SNI = the target.
    #[schemars(with = "Option<String>")]
    pub srv: Option<Spanned<String>>,
    /// A SIP domain: `_sip._tls`, `_sipinternaltls._tcp`, `lyncdiscover`,
    /// `lyncdiscoverinternal`, `_sipfederationtls._tcp` and `_xmpp-server._tcp` of it, each
    /// with its role's profile (edge_external, fe_default, reverse_proxy, fe_web_internal,
    /// edge_external, edge_external).
    #[schemars(with = "Option<String>")]
    pub lync_domain: Option<Spanned<String>>,
    /// The `source` label and endpoint name prefix. Default: the SRV name or the domain.
    pub name: Option<String>,
    /// Profile of every endpoint found (overrides the role profiles of `lync_domain`).
    #[schemars(with = "Option<String>")]
    pub profile: Option<Spanned<String>>,
    /// Most targets taken from this source (default 32, at most 256); more are dropped and
    /// logged.
    pub max_targets: Option<usize>,
    /// Pool of the endpoints found (compared for consistency).
    pub pool: Option<String>,
    /// Extra metric labels of the endpoints found.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Client certificate presented to every target (federation is MTLS).
    #[schemars(with = "Option<String>")]
    pub client_cert: Option<Spanned<String>>,
    /// Its private key.
    #[schemars(with = "Option<String>")]
    pub client_key: Option<Spanned<String>>,
    /// As endpoints[].expect_client_auth.
    pub expect_client_auth: Option<ClientAuthExpectation>,
    /// Probe interval of the endpoints found.
    #[schemars(with = "Option<HumanDuration>")]
    pub interval: Option<Spanned<HumanDuration>>,
    /// Handshake timeout of the endpoints found.
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// Names every endpoint found must carry besides its SRV target.
    #[serde(default)]
    pub expected_names: Vec<String>,
    /// For `_sipfederationtls` records: the certificate must also carry the partner's
    /// `sip.<domain>`. Default: the profile's `srv_target_name.require_sip_domain`.
    pub require_sip_domain: Option<bool>,
}

/// `global:` settings.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGlobal {
    /// How often each (endpoint, address) is probed. Default `60s`.
    #[schemars(with = "Option<HumanDuration>")]
    pub interval: Option<Spanned<HumanDuration>>,
    /// Shorter interval used after a failed probe, until the endpoint recovers. Default: the
    /// endpoint's interval.
    #[schemars(with = "Option<HumanDuration>")]
    pub retry_interval: Option<Spanned<HumanDuration>>,
    /// TCP connect timeout. Default `5s`.
    #[schemars(with = "Option<HumanDuration>")]
    pub connect_timeout: Option<Spanned<HumanDuration>>,
    /// TLS handshake timeout (including the post-handshake verdict read). Default `10s`.
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// How long to wait after the handshake for the server's verdict on our client certificate
    /// (TLS 1.3 rejections arrive on the first read). Default `1s`.
    #[schemars(with = "Option<HumanDuration>")]
    pub verdict_timeout: Option<Spanned<HumanDuration>>,
    /// Maximum probes in flight at once. Default `64`.
    #[schemars(with = "Option<usize>")]
    pub concurrency: Option<Spanned<usize>>,
    /// `all` (default): probe every A/AAAA address of each host. `first`: only the first.
    pub addresses: Option<AddressMode>,
    /// Maximum number of certificates accepted from a peer. Default `32`.
    #[schemars(with = "Option<usize>")]
    pub max_chain_certs: Option<Spanned<usize>>,
    /// Maximum total DER bytes of certificates accepted from a peer. Default `262144`.
    #[schemars(with = "Option<usize>")]
    pub max_chain_bytes: Option<Spanned<usize>>,
    /// Host patterns (`*.example.com`, `10.0.0.*` style globs) that `/probe?target=` may probe
    /// although they are not configured. Empty (default): ad-hoc targets are refused.
    #[serde(default)]
    pub allow_adhoc_targets: Vec<String>,
    /// Proxy for every endpoint that names none (see endpoints[].proxy).
    pub proxy: Option<String>,
    /// Credentials file for `global.proxy`.
    pub proxy_auth_file: Option<String>,
    /// Ports `/probe?target=` may connect to. Default: the ports of the configured endpoints.
    #[serde(default)]
    pub allow_adhoc_ports: Option<Vec<u16>>,
    /// Address blocks (`10.0.0.0/8`, `2001:db8::/32`, single addresses) the resolved addresses
    /// of an ad-hoc target must lie in. Default: any address except loopback, unspecified,
    /// link-local, multicast and the cloud metadata addresses.
    #[serde(default)]
    pub allow_adhoc_networks: Vec<String>,
    /// Only probe the endpoints of shard `I/N` (stable hash of the endpoint name).
    /// The `--shard` flag overrides it.
    #[schemars(with = "Option<String>")]
    pub shard: Option<Spanned<String>>,
    /// Revocation checking of chains that verify to a configured store (CRLs from the
    /// certificates' HTTP CDPs). Default: `method: crl`.
    #[serde(default)]
    pub revocation: RawRevocation,
    /// DNS servers, timeout and attempts (default: the system's resolv.conf).
    #[serde(default)]
    pub dns: RawDns,
    /// How often `discover:` sources are resolved again. Default `5m`.
    #[schemars(with = "Option<HumanDuration>")]
    pub discover_interval: Option<Spanned<HumanDuration>>,
    /// Metric detail of every endpoint that sets none. Default `detail: default`.
    #[serde(default)]
    pub metrics: RawMetrics,
}

/// `metrics:` settings, under `global` or per endpoint (the endpoint's `detail` overrides the
/// global one).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `default`: the series budget (about 10 series per healthy address, one more per
    /// non-passing finding; docs/metrics.md). `full`: also every certificate position, every
    /// evaluated rule (0 when passing), the chain hygiene and per-address duration gauges.
    pub detail: Option<crate::vocab::MetricsDetail>,
}

/// `revocation:` settings, under `global` or per endpoint (an endpoint's keys override the
/// global ones).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    /// `crl` (default; a verified stapled response that says revoked is still reported),
    /// `ocsp` (the leaf's staple, else the AIA OCSP responders), `ocsp_then_crl` (OCSP, then the
    /// CRL when OCSP gave no good/revoked answer), `stapled_only` (the leaf's staple only), or
    /// `off`.
    pub method: Option<crate::revocation::Method>,
    /// A cached CRL is refetched after this long, or at its nextUpdate if sooner. Default `1h`.
    #[schemars(with = "Option<HumanDuration>")]
    pub max_age: Option<Spanned<HumanDuration>>,
    /// Largest CRL fetched, in bytes. Default `20971520` (20 MB).
    #[schemars(with = "Option<u64>")]
    pub max_crl_bytes: Option<Spanned<u64>>,
    /// Host globs (`*.pki.example.com`). When set, only CDP hosts matching one are fetched,
    /// and only these may resolve to link-local or metadata addresses. Default: any host of a
    /// certificate whose chain verified to a configured store.
    pub allow_hosts: Option<Vec<String>>,
    /// Host globs that an incomplete chain's AIA caIssuers URLs may be fetched from (the
    /// missing issuing CA, as Windows fetches it). Those URLs come from a chain that did not
    /// verify, so nothing is fetched unless its host matches one. Default: none (no AIA).
    pub aia_hosts: Option<Vec<String>>,
    /// Bound of one CRL fetch (connect, redirects, body). Default `10s`.
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
}

/// One named trust store.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `internal` (enterprise roots) or `public` (web PKI). Decides issuer classification.
    pub class: StoreClass,
    /// PEM bundle files (relative paths are relative to the config file). Self-signed roots
    /// are the store's trust anchors; other CA certificates in them only help build paths (a
    /// chain that needs one is verified but reported incomplete).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub pem_files: Vec<Spanned<String>>,
    /// PEM files whose every certificate is a trust anchor, self-signed or not (a pinned
    /// intermediate or server certificate).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub anchor_files: Vec<Spanned<String>>,
    /// Include the built-in webpki-roots (Mozilla) public roots.
    #[serde(default)]
    pub builtin: bool,
}

/// `key_types:` is `auto` or a list of key types.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawKeyTypes {
    List(Vec<crate::probe::KeyType>),
    Mode(RawKeyTypesMode),
}

#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawKeyTypesMode {
    Auto,
}

/// `sni:` is a name, or `false` to send no SNI (IP-only targets).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawSni {
    Name(String),
    Enabled(bool),
}

/// `tls:` bounds.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Lowest version offered: `"1.2"` (default; rustls' floor) or `"1.3"`. Servers that only
    /// speak older versions are still captured by the legacy handshake.
    pub min_version: Option<crate::vocab::ProbeTlsVersion>,
    /// Highest version offered: `"1.3"` (default) or `"1.2"`.
    pub max_version: Option<crate::vocab::ProbeTlsVersion>,
    /// Try the legacy TLS 1.0-1.2 capture when the server cannot speak TLS 1.2+. Default true.
    pub legacy_fallback: Option<bool>,
}

/// One endpoint.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Unique name: the `endpoint` label.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// DNS name or IP address to connect to.
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// TCP port. Default `443`.
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u32>>,
    /// Name sent as SNI and checked against the certificate. Default: `host` (none when host is an
    /// IP address). `false` sends no SNI.
    pub sni: Option<RawSni>,
    /// Policy profile (role) to judge this endpoint with. Default `default`.
    #[schemars(with = "Option<String>")]
    pub profile: Option<Spanned<String>>,
    /// Alias of `profile`.
    #[schemars(with = "Option<String>")]
    pub role: Option<Spanned<String>>,
    /// Pool name: all endpoints/addresses in a pool are compared for consistency.
    pub pool: Option<String>,
    /// Extra metric labels (small map; keys must be valid Prometheus label names).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `all` (default from `global.addresses`) or `first`.
    pub addresses: Option<AddressMode>,
    /// Connect to these IP addresses instead of resolving `host` (like curl's `--resolve`):
    /// the SNI and name checks still use the name.
    #[serde(default)]
    pub resolve: Vec<String>,
    /// Client certificate (PEM, leaf first) presented for MTLS.
    #[schemars(with = "Option<String>")]
    pub client_cert: Option<Spanned<String>>,
    /// Private key (PEM, PKCS#8/PKCS#1/SEC1) for `client_cert`.
    #[schemars(with = "Option<String>")]
    pub client_key: Option<Spanned<String>>,
    /// `required`: the server must refuse clients without a certificate (checked with a
    /// second probe). `optional` or `none` (default).
    pub expect_client_auth: Option<ClientAuthExpectation>,
    /// Probe interval override.
    #[schemars(with = "Option<HumanDuration>")]
    pub interval: Option<Spanned<HumanDuration>>,
    /// Handshake timeout override.
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// TLS version bounds.
    #[serde(default)]
    pub tls: RawTls,
    /// ALPN protocols to offer, e.g. `[h2, http/1.1]`.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// Upgrade with STARTTLS before the handshake: smtp, lmtp, imap, pop3, ftp, ldap,
    /// xmpp-client, xmpp-server, postgres, mysql, sieve, nntp. Without `port`, the protocol's
    /// usual port (25, 24, 143, 110, 21, 389, 5222, 5269, 5432, 3306, 4190, 119).
    pub starttls: Option<crate::probe::starttls::StartTls>,
    /// Reach the server through a proxy: `http://HOST:PORT` (HTTP CONNECT),
    /// `socks5://HOST:PORT` or `socks5h://HOST:PORT` (the proxy resolves the name). Overrides
    /// `global.proxy`.
    pub proxy: Option<String>,
    /// File with `USER:PASSWORD` for the proxy (basic auth or SOCKS5 username/password).
    pub proxy_auth_file: Option<String>,
    /// SMTP EHLO / LMTP LHLO name for `starttls` (default `certprobe.invalid`).
    pub ehlo_name: Option<String>,
    /// XMPP stream `to=` domain for `starttls: xmpp-*` (default: the SNI, else the host).
    pub xmpp_domain: Option<String>,
    /// Which certificates to probe by key type: `auto` (default: the server's preferred one,
    /// plus a check for a second certificate of the other key type, probed too when found), or
    /// a list such as `[ecdsa, rsa]` (one probe per type, each offering only its schemes).
    pub key_types: Option<RawKeyTypes>,
    /// Application protocol spoken after the handshake: `none` (default) or `http` (sends a
    /// `HEAD /` to read an HTTP-level rejection such as nginx's 400 for a missing client cert).
    pub protocol: Option<AppProtocol>,
    /// Names that must appear in the certificate's SAN, in addition to the profile's.
    #[serde(default)]
    pub expected_names: Vec<String>,
    /// Front End pool web services: also fetch the OAuth metadata document
    /// `https://<sni or host>/metadata/json/1` from every probed address and judge its
    /// token-issuer certificates (profile `oauth`, or the profile's `oauth_metadata` rule).
    /// Default: the profile's `oauth_metadata` rule (set in the lync2013 `fe_web_*` profiles).
    pub oauth_metadata: Option<bool>,
    /// Revocation settings overriding `global.revocation`.
    #[serde(default)]
    pub revocation: RawRevocation,
    /// Metric detail override (`detail: default | full`; default: `global.metrics.detail`).
    #[serde(default)]
    pub metrics: RawMetrics,
}
