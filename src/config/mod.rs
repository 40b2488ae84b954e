//! Configuration: YAML -> [`raw`] types (serde-saphyr, with source spans) -> validated
//! [`Config`]. Validation collects every problem, each with file, line/column where known and
//! the field path (`endpoints[3].client_cert`).

pub mod duration;
pub mod endpoint;
pub mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::chain::TrustStores;
use crate::outcome::TargetMeta;
use crate::policy::Policy;
use crate::probe::{AddressMode, ProbeSpec};

pub use duration::{DurationError, HumanDuration};
pub use endpoint::{EndpointBuilder, EndpointError, LoadedIdentity};
pub use validate::{check_client_key, host_glob_ok, validate_raw, BaseDir, ClientKeyProblem};

/// Default probe interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default TCP connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default handshake timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default post-handshake verdict read timeout.
pub const DEFAULT_VERDICT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default number of probes in flight.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default cap on presented certificates.
pub const DEFAULT_MAX_CHAIN_CERTS: usize = 32;
/// Default cap on presented certificate bytes.
pub const DEFAULT_MAX_CHAIN_BYTES: usize = 256 * 1024;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded demo>`).
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Field path, e.g. `endpoints[3].client_cert`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `--shard I/N`: this replica probes the endpoints whose name hashes to I (0-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a `--shard`/`global.shard` value does not parse; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("invalid shard {0:?}: expected I/N, e.g. 0/3")]
    Form(String),
    #[error("invalid shard {0:?}: I is not a number")]
    Index(String),
    #[error("invalid shard {0:?}: N is not a number")]
    Count(String),
    #[error("invalid shard {0:?}: need 0 <= I < N")]
    Range(String),
}

impl Shard {
    /// Parse `I/N` with 0 <= I < N.
    pub fn parse(s: &str) -> Result<Self, ShardError> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| ShardError::Form(s.to_string()))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| ShardError::Index(s.to_string()))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| ShardError::Count(s.to_string()))?;
        if count == 0 || index >= count {
            return Err(ShardError::Range(s.to_string()));
        }
        Ok(Self { index, count })
    }

    /// Whether this shard owns `endpoint`. Stable across processes, versions and platforms
    /// (FNV-1a 64 over the name's bytes).
    pub fn owns(&self, endpoint: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in endpoint.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % u64::from(self.count)) as u32 == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Validated global settings.
#[derive(Debug, Clone)]
pub struct Global {
    pub interval: Duration,
    pub retry_interval: Option<Duration>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub verdict_timeout: Duration,
    pub concurrency: usize,
    pub addresses: AddressMode,
    pub max_chain_certs: usize,
    pub max_chain_bytes: usize,
    pub allow_adhoc_targets: Vec<String>,
    /// `allow_adhoc_ports` as written (None: the configured endpoints' ports).
    pub allow_adhoc_ports: Option<Vec<u16>>,
    /// `allow_adhoc_networks`, parsed (empty: the default deny list).
    pub allow_adhoc_networks: Vec<crate::netmatch::IpNet>,
    pub shard: Option<Shard>,
    /// `global.proxy`, used by endpoints that name none.
    pub proxy: Option<std::sync::Arc<crate::probe::proxy::Proxy>>,
    pub revocation: crate::revocation::RevocationConfig,
    /// `global.metrics.detail` (endpoints that set none use it).
    pub metrics_detail: crate::vocab::MetricsDetail,
    /// `global.dns`.
    pub dns: crate::dns::DnsSettings,
    /// `global.discover_interval`.
    pub discover_interval: Duration,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            retry_interval: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            verdict_timeout: DEFAULT_VERDICT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            addresses: AddressMode::All,
            max_chain_certs: DEFAULT_MAX_CHAIN_CERTS,
            max_chain_bytes: DEFAULT_MAX_CHAIN_BYTES,
            allow_adhoc_targets: Vec::new(),
            allow_adhoc_ports: None,
            allow_adhoc_networks: Vec::new(),
            shard: None,
            proxy: None,
            revocation: Default::default(),
            metrics_detail: crate::vocab::MetricsDetail::Default,
            dns: Default::default(),
            discover_interval: crate::discovery::DEFAULT_DISCOVER_INTERVAL,
        }
    }
}

/// Facts about a configured MTLS client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertInfo {
    pub path: PathBuf,
    pub not_after: i64,
    pub subject: String,
    pub fingerprint_sha256: String,
}

/// A validated endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub meta: Arc<TargetMeta>,
    /// Probe parameters (client identity loaded).
    pub spec: ProbeSpec,
    pub addresses: AddressMode,
    /// Fixed addresses to connect to instead of resolving the host (`resolve:`).
    pub resolve: Vec<std::net::IpAddr>,
    pub interval: Duration,
    /// Interval used after a failure.
    pub retry_interval: Duration,
    pub expected_names: Vec<String>,
    pub client_cert: Option<ClientCertInfo>,
    /// Digest of everything that defines this endpoint (config values and the bytes of its key
    /// material): a reload keeps the state of endpoints whose digest is unchanged.
    pub digest: String,
    /// Effective revocation settings.
    pub revocation: crate::revocation::RevocationConfig,
    /// Set for an endpoint found by a `discover:` source.
    pub discovered: Option<Arc<crate::discovery::Discovered>>,
    /// Fetch and judge the OAuth metadata document (`oauth_metadata`).
    pub oauth: Option<crate::oauth::OAuthSettings>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (file path or `<embedded ...>`).
    pub origin: String,
    pub global: Global,
    pub stores: Arc<TrustStores>,
    pub policy: Arc<Policy>,
    pub endpoints: Vec<Arc<Endpoint>>,
    /// `discover:` sources (their endpoints are added to `endpoints` by the daemon and by
    /// `probe --once` after each lookup).
    pub discover: Vec<Arc<crate::discovery::Source>>,
    /// Non-fatal findings (e.g. a key file readable by others, timeout >= interval).
    pub warnings: Vec<ConfigError>,
}

impl Config {
    /// Load and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        let text = crate::fsread::read_capped_string(path, crate::fsread::MAX_CONFIG_BYTES)
            .map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    file: origin.clone(),
                    line: None,
                    column: None,
                    path: String::new(),
                    message: format!("cannot load the config file: {}", crate::text::chain(&e)),
                }])
            })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_yaml(&text, &origin, BaseDir(base))
    }

    /// Parse and validate YAML text; relative file paths resolve against `base`.
    pub fn from_yaml(text: &str, origin: &str, base: BaseDir) -> Result<Config, ConfigErrors> {
        let raw: raw::RawConfig = parse_yaml(text, origin)?;
        validate_raw(raw, origin, &base)
    }

    /// Endpoint by name.
    /// Reuse `old`'s copy of every endpoint whose digest is unchanged, so that a reload does
    /// not keep two copies of unchanged endpoints (one in the new config, one in the running
    /// scheduler task).
    pub fn share_unchanged(&mut self, old: &Config) {
        let by_name: std::collections::HashMap<&str, &Arc<Endpoint>> = old
            .endpoints
            .iter()
            .map(|e| (e.meta.endpoint.as_str(), e))
            .collect();
        for e in self.endpoints.iter_mut() {
            if let Some(o) = by_name.get(e.meta.endpoint.as_str()) {
                if o.digest == e.digest {
                    *e = Arc::clone(o);
                }
            }
        }
    }

    /// The ports ad-hoc probes may use: `allow_adhoc_ports`, or every configured endpoint's.
    pub fn adhoc_ports(&self) -> Vec<u16> {
        match &self.global.allow_adhoc_ports {
            Some(p) => p.clone(),
            None => {
                let mut p: Vec<u16> = self.endpoints.iter().map(|e| e.meta.port).collect();
                p.sort_unstable();
                p.dedup();
                p
            }
        }
    }

    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.meta.endpoint == name)
            .map(|e| &**e)
    }
}

/// Endpoints of the richest documented shape (every per-endpoint key of the README) a config
/// may hold: the YAML budget below is sized for it (docs/reliability.md).
pub const DOCUMENTED_MAX_ENDPOINTS: usize = 100_000;
/// YAML nodes (maps, sequences, scalars) in one config: ~60 per rich endpoint, plus margin.
pub const YAML_MAX_NODES: usize = 8_000_000;

/// serde-saphyr's budget scaled to [`DOCUMENTED_MAX_ENDPOINTS`]; what stops a billion-laughs
/// bomb (the alias/anchor ratio, the bound on replayed anchor events and bytes) is kept at the
/// library's defaults.
fn yaml_budget() -> serde_saphyr::Budget {
    let mut b = serde_saphyr::Budget::default();
    b.max_reader_input_bytes = Some(crate::fsread::MAX_CONFIG_BYTES as usize);
    b.max_events = 4 * YAML_MAX_NODES;
    b.max_nodes = YAML_MAX_NODES;
    b.max_total_scalar_bytes = 256 * 1024 * 1024;
    // One `<<: *defaults` per endpoint is the documented way to share settings.
    b.max_aliases = 4 * DOCUMENTED_MAX_ENDPOINTS;
    b.max_merge_keys = 2 * DOCUMENTED_MAX_ENDPOINTS;
    b
}

/// Deserialize YAML into `T`, turning a serde-saphyr error into a located [`ConfigError`] with
/// the field path where serde knows it.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigErrors> {
    let mut field_path = String::new();
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(yaml_budget());
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let p = e.path().to_string();
            if p != "." {
                // `Spanned` adds a `.value` segment; unknown map positions show as `?`.
                field_path = p.replace(".value", "").replace(".?", "");
            }
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let loc = e.location();
        let full = e.to_string();
        // serde-saphyr renders a source snippet after the first line; keep the message line.
        let message = full
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid YAML")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        // The location is reported separately; drop serde-saphyr's "line N column M: " prefix.
        let message = match message.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
                rest.to_string()
            }
            _ => message,
        };
        let message = if message.contains("budget breached") {
            format!(
                "the config exceeds the YAML size limits ({message}): at most {} YAML nodes, \
                 enough for about {} endpoints of the richest documented shape; split the estate \
                 across shards (--shard) or files",
                YAML_MAX_NODES, DOCUMENTED_MAX_ENDPOINTS
            )
        } else {
            message
        };
        let message = match message.as_str() {
            "invalid u16" | "invalid u32" | "invalid u64" | "invalid usize" => {
                "expected a non-negative integer".to_string()
            }
            _ if field_path.ends_with("min_version") || field_path.ends_with("max_version") => {
                format!("{message} (TLS 1.0/1.1-only servers are still captured by the legacy handshake; see tls.legacy_fallback)")
            }
            _ => message
                .trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable")
                .to_string(),
        };
        ConfigErrors(vec![ConfigError {
            file: origin.to_string(),
            line: loc.map(|l| l.line() as u32),
            column: loc.map(|l| l.column() as u32),
            path: field_path,
            message,
        }])
    })
}

/// The JSON Schema of the config file.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::RawConfig);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
