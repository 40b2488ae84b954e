//! Command-line interface: argument types and dispatch. `main.rs` only calls [`main_entry`].
//!
//! Size: about 950 lines: the clap argument types of every subcommand and the ad-hoc target
//! builder; the subcommands' work lives in `runner`, `report`, `daemon` and `demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::chain::{StoreClass, TrustStore, TrustStores};
use crate::config::{self, Config, Endpoint, HumanDuration};
use crate::outcome::ProbeOutcome;
use crate::policy::Policy;
use crate::probe::handshake::{AppProtocol, KeyType, TlsVersion};
use crate::report;
use crate::runner::{self, EvalContext};

/// Exit code for a usage or configuration error (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// `inspect` captured nothing, or the daemon cannot bind its listen address (sysexits
/// EX_UNAVAILABLE): the reason is printed to stderr.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// The operating system refused what the process needs: the async runtime, a signal handler
/// (sysexits EX_OSERR).
pub const EXIT_OSERR: u8 = 71;

/// The async runtime could not start (exit [`EXIT_OSERR`]).
#[derive(Debug, thiserror::Error)]
#[error("starting the async runtime")]
pub struct RuntimeError(#[source] std::io::Error);

/// The exit code for an error that ended a command: an operational failure's own code, else
/// [`EXIT_USAGE`] (the command line or the config is at fault).
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    if let Some(d) = e.downcast_ref::<crate::daemon::Error>() {
        d.exit_code()
    } else if e.downcast_ref::<RuntimeError>().is_some() {
        EXIT_OSERR
    } else if let Some(d) = e.downcast_ref::<crate::demo::Error>() {
        d.exit_code()
    } else {
        EXIT_USAGE
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "certprobe",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CERTPROBE_GIT_COMMIT"), ")"),
    about = "Probe TLS and mutual-TLS endpoints, judge their certificate chains against a supported-CA policy, and export the verdicts as Prometheus metrics.",
    propagate_version = true
)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log level filter (tracing EnvFilter syntax, e.g. `info`, `certprobe=debug`).
    #[arg(
        long = "log.level",
        default_value = "info",
        global = true,
        env = "CERTPROBE_LOG"
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe endpoints: as a daemon serving /metrics (default), or once with `--once`.
    Probe(Box<ProbeArgs>),
    /// Validate a config file; prints every problem and exits 64 if there is any.
    CheckConfig {
        /// Config file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Print the full parsed chain of a live endpoint or of a PEM file.
    Inspect(InspectArgs),
    /// Print the JSON Schema of the config file.
    Schema,
    /// Run the embedded demo lab: a Lync 2013 estate on loopback, probed by the real daemon.
    Demo(DemoArgs),
    /// Exit 0 if a URL of the daemon answers 2xx, over HTTP or HTTPS (container HEALTHCHECK
    /// without a shell or curl).
    Healthcheck(crate::healthcheck::HealthcheckArgs),
}

/// Arguments shared by the ad-hoc target forms.
#[derive(Debug, Args, Clone)]
pub struct AdhocArgs {
    /// Ad-hoc target HOST:PORT (repeatable); no config file needed.
    #[arg(long = "target", value_name = "HOST:PORT")]
    pub targets: Vec<String>,
    /// File with one `HOST:PORT [SNI]` per line (`#` comments allowed).
    #[arg(long = "targets-file", value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// SNI / expected name for ad-hoc targets (default: the host, none for IPs).
    #[arg(long)]
    pub sni: Option<String>,
    /// PEM roots for the `internal` trust store (repeatable).
    #[arg(long = "ca", value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// PEM roots that REPLACE the built-in public store (air-gapped estates, tests).
    #[arg(long = "public-ca", value_name = "FILE")]
    pub public_ca: Vec<PathBuf>,
    /// Client certificate (PEM) for MTLS.
    #[arg(long = "client-cert", value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for MTLS.
    #[arg(long = "client-key", value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Policy profile for ad-hoc targets: the built-in `default`, or a preset profile such as
    /// `public_web` or `edge_internal`.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Handshake timeout for ad-hoc targets.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: HumanDuration,
    /// Application protocol spoken after the handshake: `none`, or `http` (sends `HEAD /` and
    /// reads the status, e.g. nginx's 400 for a rejected client certificate). Config: `protocol`.
    #[arg(long, value_parser = parse_app_protocol, value_name = "none|http")]
    pub protocol: Option<AppProtocol>,
    /// ALPN protocol to offer (repeatable, in order). Config: `alpn`.
    #[arg(long = "alpn", value_name = "PROTO")]
    pub alpn: Vec<String>,
    /// Lowest TLS version to offer: 1.2 or 1.3. Config: `tls.min_version`.
    #[arg(long = "min-tls", value_parser = parse_tls_version, value_name = "1.2|1.3")]
    pub min_tls: Option<TlsVersion>,
    /// Highest TLS version to offer: 1.2 or 1.3. Config: `tls.max_version`.
    #[arg(long = "max-tls", value_parser = parse_tls_version, value_name = "1.2|1.3")]
    pub max_tls: Option<TlsVersion>,
    /// Probe once per key type, offering only that type's signature schemes (repeatable:
    /// `--key-type ecdsa --key-type rsa`), to see each certificate of a dual-certificate server.
    /// Without it the probe also checks for a second certificate. Config: `key_types`.
    #[arg(long = "key-type", value_parser = parse_key_type, value_name = "ecdsa|rsa")]
    pub key_types: Vec<KeyType>,
    /// Connect to these addresses instead of resolving the host (repeatable); SNI and the name
    /// check still use the host. Config: `resolve`.
    #[arg(long = "resolve", value_name = "IP")]
    pub resolve: Vec<std::net::IpAddr>,
    /// Upgrade with STARTTLS first: smtp, lmtp, imap, pop3, ftp, ldap, xmpp-client,
    /// xmpp-server, postgres, mysql, sieve, nntp. Config: `starttls`.
    #[arg(long = "starttls", value_parser = parse_starttls, value_name = "PROTO")]
    pub starttls: Option<crate::probe::starttls::StartTls>,
    /// Reach the targets through a proxy: http://HOST:PORT (CONNECT), socks5://HOST:PORT,
    /// socks5h://HOST:PORT (remote DNS). Config: `proxy`.
    #[arg(long = "proxy", value_name = "URL")]
    pub proxy: Option<String>,
    /// File with USER:PASSWORD for --proxy. Config: `proxy_auth_file`.
    #[arg(long = "proxy-auth-file", value_name = "FILE", requires = "proxy")]
    pub proxy_auth_file: Option<PathBuf>,
}

fn parse_starttls(s: &str) -> Result<crate::probe::starttls::StartTls, String> {
    crate::probe::starttls::StartTls::from_name(s).ok_or_else(|| {
        format!(
            "{s:?}: expected one of {}",
            crate::probe::starttls::StartTls::NAMES.join(", ")
        )
    })
}

fn parse_app_protocol(s: &str) -> Result<AppProtocol, String> {
    match s {
        "none" => Ok(AppProtocol::None),
        "http" => Ok(AppProtocol::Http),
        _ => Err(format!("{s:?}: expected none or http")),
    }
}

fn parse_tls_version(s: &str) -> Result<TlsVersion, String> {
    match TlsVersion::from_name(s) {
        Some(v) if v.is_probe_version() => Ok(v),
        _ => Err(format!(
            "{s:?}: expected 1.2 or 1.3 (rustls speaks no older version; a TLS 1.0/1.1 server is captured by the legacy hello)"
        )),
    }
}

fn parse_key_type(s: &str) -> Result<KeyType, String> {
    KeyType::from_name(&s.to_ascii_lowercase())
        .ok_or_else(|| format!("{s:?}: expected one of {}", KeyType::NAMES.join(", ")))
}

impl Default for AdhocArgs {
    /// What the flags default to (used by `inspect`, which shares the ad-hoc machinery).
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            targets_file: None,
            sni: None,
            ca: Vec::new(),
            public_ca: Vec::new(),
            client_cert: None,
            client_key: None,
            profile: "default".to_string(),
            timeout: HumanDuration::default(),
            protocol: None,
            alpn: Vec::new(),
            min_tls: None,
            max_tls: None,
            key_types: Vec::new(),
            resolve: Vec::new(),
            starttls: None,
            proxy: None,
            proxy_auth_file: None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Config file (YAML). Not needed with --target/--targets-file.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Probe everything once, print a report and exit with a Nagios code
    /// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    #[arg(long)]
    pub once: bool,
    /// Only these configured endpoints (repeatable).
    #[arg(long = "endpoint", value_name = "NAME")]
    pub endpoints: Vec<String>,
    /// Endpoints from DNS (repeatable): `srv:NAME` (every target of an SRV record, e.g.
    /// srv:_sipfederationtls._tcp.fabrikam.com) or `lync:DOMAIN` (every Lync record of a SIP
    /// domain), judged by the lync2013 preset's role profiles (or --profile).
    #[arg(long = "discover", value_name = "srv:NAME|lync:DOMAIN")]
    pub discover: Vec<String>,
    /// DNS server IP:PORT for discovery and for resolving probed names (repeatable; default:
    /// the system's resolv.conf).
    #[arg(long = "dns-server", value_name = "IP:PORT")]
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Report format for --once.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Show details for OK results too (table output).
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub adhoc: AdhocArgs,
    /// Evaluate as of this moment (RFC 3339), e.g. "what breaks if nobody renews before
    /// 1 March?".
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Maximum probes in flight (overrides global.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Revocation method for every endpoint (overrides `revocation.method`), e.g. `off`.
    #[arg(long, value_enum, value_name = "METHOD")]
    pub revocation: Option<crate::revocation::Method>,
    /// Host glob an incomplete chain's AIA caIssuers URL may be fetched from (repeatable; adds
    /// to `revocation.aia_hosts` of every endpoint), e.g. `--aia-host pki.contoso.com`.
    #[arg(long = "aia-host", value_name = "GLOB")]
    pub aia_hosts: Vec<String>,
    /// Also fetch the OAuth metadata document `https://<name>/metadata/json/1` of every
    /// probed address (a Front End pool's web services) and judge its token-issuer
    /// certificates (profile `oauth`, or the profile's `oauth_metadata` rule). With -c FILE it
    /// applies to every selected endpoint. Config: `oauth_metadata: true`.
    #[arg(long = "oauth-metadata")]
    pub oauth_metadata: bool,
    /// Exporter listen address (daemon mode).
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9915")]
    pub listen: String,
    /// Exporter web config file (TLS and basic auth; Prometheus exporter-toolkit format).
    #[arg(long = "web.config.file")]
    pub web_config: Option<PathBuf>,
    /// Probe only shard I of N (stable hash of the endpoint name); overrides global.shard.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Also reload when the config file changes on disk (polls its metadata every 5 s).
    #[arg(long = "watch-config")]
    pub watch_config: bool,
    /// Grace period for in-flight probes at shutdown.
    #[arg(long = "shutdown-grace", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: HumanDuration,
    #[command(flatten)]
    pub web: crate::daemon::listener::WebArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Live target HOST:PORT.
    #[arg(long, conflicts_with = "file")]
    pub target: Option<String>,
    /// PEM file with a chain (leaf first).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// SNI / expected name.
    #[arg(long)]
    pub sni: Option<String>,
    /// PEM roots for the `internal` store (repeatable).
    #[arg(long = "ca", value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the report once and exit with the usual exit code.
    #[arg(long)]
    pub once: bool,
    /// Exporter listen address.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9915")]
    pub listen: String,
    /// Report format for --once.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// TLS and basic auth for the demo's daemon (exporter-toolkit web config), as for `probe`.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config: Option<PathBuf>,
    /// Third octet of the lab's loopback addresses (127.0.N.x), to run labs side by side.
    #[arg(long = "lab-net", default_value_t = 10, hide = true)]
    pub lab_net: u8,
}

fn parse_duration(s: &str) -> Result<HumanDuration, String> {
    HumanDuration::parse(s).map_err(|e| e.to_string())
}

/// Parse `--at`.
pub fn parse_at(s: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("--at {s:?} is not an RFC 3339 time (e.g. 2027-03-01T00:00:00Z)")
        })?;
    Ok(t.unix_timestamp())
}

/// Initialise tracing on stderr.
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Entry point used by `main`.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format, &cli.log_level);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("certprobe: error: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RuntimeError(e).into())
}

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { config } => Ok(check_config(&config)),
        Command::Schema => {
            let s = serde_json::to_string_pretty(&config::json_schema())?;
            println!("{s}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe(args) => probe(*args),
        Command::Inspect(args) => inspect(args),
        Command::Demo(args) => Ok(crate::demo::run(args)?),
        Command::Healthcheck(args) => healthcheck(&args),
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: OK ({} endpoints, {} trust stores)",
                path.display(),
                cfg.endpoints.len(),
                cfg.stores.stores.len()
            );
            ExitCode::SUCCESS
        }
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} problem(s)", path.display(), errs.0.len());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn load_config_or_exit(path: &Path) -> Result<Config> {
    match Config::load(path) {
        Ok(c) => {
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            Ok(c)
        }
        Err(errs) => bail!("invalid config:\n{errs}"),
    }
}

/// Build a config for the ad-hoc form (`--target`, `--targets-file`).
pub fn adhoc_config(a: &AdhocArgs) -> Result<Config> {
    let mut targets: Vec<(String, Option<String>)> = a
        .targets
        .iter()
        .map(|t| (t.clone(), a.sni.clone()))
        .collect();
    if let Some(f) = &a.targets_file {
        let text = crate::fsread::read_capped_string(f, crate::fsread::MAX_CONFIG_BYTES)
            .map_err(|e| anyhow::anyhow!("--targets-file: {e}"))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let t = parts.next().unwrap_or_default().to_string();
            let sni = parts.next().map(str::to_string).or_else(|| a.sni.clone());
            if parts.next().is_some() {
                bail!("{}:{}: expected `HOST:PORT [SNI]`", f.display(), n + 1);
            }
            targets.push((t, sni));
        }
    }
    if targets.is_empty() {
        bail!("nothing to probe: give -c FILE, --target HOST:PORT or --targets-file FILE");
    }
    let mut stores = Vec::new();
    if !a.ca.is_empty() {
        let mut certs = Vec::new();
        for f in &a.ca {
            let v = crate::fsread::read_pem_chain(f)?;
            certs.extend(v);
        }
        stores.push(
            TrustStore::from_bundle("internal", StoreClass::Internal, certs)
                .map_err(anyhow::Error::msg)?,
        );
    }
    if a.public_ca.is_empty() {
        stores.push(TrustStore::webpki_roots("public"));
    } else {
        let mut certs = Vec::new();
        for f in &a.public_ca {
            certs.extend(crate::fsread::read_pem_chain(f)?);
        }
        stores.push(
            TrustStore::from_bundle("public", StoreClass::Public, certs)
                .map_err(anyhow::Error::msg)?,
        );
    }
    let policy = adhoc_policy(&a.profile)?;
    // The loader's check: the key must be the certificate's (before any connection).
    let identity = match (&a.client_cert, &a.client_key) {
        (Some(c), Some(k)) => Some(config::endpoint::load_client_identity(c, k)?),
        _ => None,
    };
    if let Some(s) = &a.sni {
        config::endpoint::check_sni(s).context("--sni")?;
    }
    let global = config::Global::default();
    let proxy = match &a.proxy {
        None => None,
        Some(url) => {
            let p = crate::probe::proxy::Proxy::parse(url).context("--proxy")?;
            let p = match &a.proxy_auth_file {
                None => p,
                Some(f) => p.with_credentials_file(f).context("--proxy-auth-file")?,
            };
            Some(Arc::new(p))
        }
    };
    let mut endpoints = Vec::with_capacity(targets.len());
    let mut names = std::collections::HashSet::with_capacity(targets.len());
    for (i, (t, sni)) in targets.into_iter().enumerate() {
        let (host, mut port) = split_host_port(&t)?;
        // The config loader's host check (an IP address or a valid DNS name).
        let host =
            config::endpoint::check_host(&host).with_context(|| format!("--target {t:?}"))?;
        if let Some(st) = a.starttls {
            // `--starttls smtp --target mail.contoso.com`: the protocol's port.
            let explicit = t.contains("]:") || (!t.starts_with('[') && t.matches(':').count() == 1);
            if !explicit {
                port = st.default_port();
            }
        }
        // A target listed twice gets a distinct name (`host:port#index`).
        let name = if names.contains(&t) {
            format!("{t}#{i}")
        } else {
            t.clone()
        };
        names.insert(name.clone());
        let mut b = config::EndpointBuilder::new(name, host, port, &global);
        if let Some(id) = &identity {
            b.identity(id);
        }
        let ep = &mut b.endpoint;
        std::sync::Arc::make_mut(&mut ep.meta).profile = a.profile.clone();
        std::sync::Arc::make_mut(&mut ep.meta).starttls = a.starttls;
        ep.resolve = a.resolve.clone();
        let spec = &mut ep.spec;
        if let Some(s) = sni {
            config::endpoint::check_sni(&s).with_context(|| format!("{t}: SNI"))?;
            spec.sni = Some(s);
        }
        spec.handshake_timeout = a.timeout.0;
        if let Some(p) = a.protocol {
            spec.app_protocol = p;
        }
        spec.alpn = a.alpn.clone();
        if let Some(v) = a.min_tls {
            spec.min_version = v;
        }
        if let Some(v) = a.max_tls {
            spec.max_version = v;
        }
        if spec.min_version > spec.max_version {
            bail!("--min-tls is above --max-tls: no TLS version to offer");
        }
        spec.starttls = a.starttls.map(crate::probe::starttls::StartTlsSpec::new);
        spec.proxy = proxy.clone();
        spec.key_types = if a.key_types.is_empty() {
            crate::probe::KeyTypes::Auto
        } else {
            crate::probe::KeyTypes::Only(a.key_types.clone())
        };
        endpoints.push(Arc::new(b.build()));
    }
    Ok(Config {
        origin: "<command line>".into(),
        global,
        stores: Arc::new(TrustStores { stores }),
        policy: Arc::new(policy),
        endpoints,
        discover: Vec::new(),
        warnings: Vec::new(),
    })
}

/// The policy for ad-hoc probes: the built-in `default` profile, or the first preset that
/// defines `--profile` (e.g. `public_web`, `edge_internal`).
fn adhoc_policy(profile: &str) -> Result<Policy> {
    use crate::policy::spec::{PolicySpec, Preset};
    let mut known = Vec::new();
    for preset in [None, Some(Preset::PublicWeb), Some(Preset::Lync2013)] {
        let spec = PolicySpec {
            preset,
            ..Default::default()
        };
        let policy = Policy::from_spec(spec)
            .map_err(|e| anyhow::anyhow!("built-in policy: {}", e.join("; ")))?;
        if policy.has_profile(profile) {
            return Ok(policy);
        }
        known.extend(policy.profile_names());
    }
    known.sort();
    known.dedup();
    bail!(
        "--profile {profile:?}: unknown profile (built-in: {})",
        known.join(", ")
    )
}

/// Split `host:port`, `[v6]:port`; the port defaults to 443.
pub fn split_host_port(t: &str) -> Result<(String, u16)> {
    if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .with_context(|| format!("{t:?}: missing ']'"))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().with_context(|| format!("{t:?}: bad port"))?,
            None => 443,
        };
        return Ok((h.to_string(), port));
    }
    match t.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            p.parse().with_context(|| format!("{t:?}: bad port"))?,
        )),
        _ if t.parse::<std::net::Ipv6Addr>().is_ok() => Ok((t.to_string(), 443)),
        None => Ok((t.to_string(), 443)),
        _ => bail!("{t:?}: expected HOST:PORT"),
    }
}

/// `--endpoint NAME...`: keep only these endpoints (each must exist).
fn select_endpoints(cfg: &mut Config, names: &[String]) -> Result<()> {
    for n in names {
        if cfg.endpoint(n).is_none() {
            bail!("--endpoint {n:?}: no such endpoint in {}", cfg.origin);
        }
    }
    cfg.endpoints.retain(|e| names.contains(&e.meta.endpoint));
    Ok(())
}

/// The config of `--discover` sources given on the command line: the lync2013 preset (for the
/// role profiles), the ad-hoc trust stores and client identity, one `discover:` entry each.
fn discover_config(args: &ProbeArgs) -> Result<Config> {
    let a = &args.adhoc;
    let q = |p: &std::path::Path| -> Result<String> {
        let abs = std::path::absolute(p).with_context(|| format!("{}", p.display()))?;
        Ok(serde_json::to_string(&abs.display().to_string())?)
    };
    let mut y = String::from("policy: {preset: lync2013}\n");
    let mut stores = Vec::new();
    if !a.ca.is_empty() {
        let files: Result<Vec<String>> = a.ca.iter().map(|p| q(p)).collect();
        stores.push(format!(
            "  internal: {{class: internal, pem_files: [{}]}}",
            files?.join(", ")
        ));
    }
    if a.public_ca.is_empty() {
        stores.push("  public: {class: public, builtin: true}".to_string());
    } else {
        let files: Result<Vec<String>> = a.public_ca.iter().map(|p| q(p)).collect();
        stores.push(format!(
            "  public: {{class: public, pem_files: [{}]}}",
            files?.join(", ")
        ));
    }
    y.push_str("trust_stores:\n");
    y.push_str(&stores.join("\n"));
    y.push_str("\ndiscover:\n");
    for d in &args.discover {
        let (key, name) = match d.split_once(':') {
            Some(("srv", n)) => ("srv", n),
            Some(("lync", n)) => ("lync_domain", n),
            _ => bail!("--discover {d:?}: expected srv:NAME or lync:DOMAIN"),
        };
        y.push_str(&format!("  - {key}: {}\n", serde_json::to_string(name)?));
        if a.profile != "default" {
            y.push_str(&format!(
                "    profile: {}\n",
                serde_json::to_string(&a.profile)?
            ));
        }
        if let (Some(c), Some(k)) = (&a.client_cert, &a.client_key) {
            y.push_str(&format!(
                "    client_cert: {}\n    client_key: {}\n",
                q(c)?,
                q(k)?
            ));
        }
    }
    let base = config::BaseDir(std::path::PathBuf::from("."));
    Config::from_yaml(&y, "<command line --discover>", base).map_err(|e| anyhow::anyhow!("{e}"))
}

fn probe(args: ProbeArgs) -> Result<ExitCode> {
    let adhoc = !args.adhoc.targets.is_empty() || args.adhoc.targets_file.is_some();
    let discover = !args.discover.is_empty();
    let mut cfg = match (&args.config, adhoc) {
        _ if discover && (adhoc || args.config.is_some()) => {
            bail!("give --discover alone, not with -c FILE or --target/--targets-file")
        }
        _ if discover => discover_config(&args)?,
        (Some(_), true) => bail!("give either -c FILE or --target/--targets-file, not both"),
        (Some(path), false) => load_config_or_exit(path)?,
        (None, true) => adhoc_config(&args.adhoc)?,
        (None, false) => {
            bail!("nothing to probe: give -c FILE, --target HOST:PORT or --targets-file FILE")
        }
    };
    if args.oauth_metadata {
        if args.adhoc.starttls.is_some() || args.adhoc.proxy.is_some() {
            bail!("--oauth-metadata fetches over direct https: not with --starttls or --proxy");
        }
        let policy = cfg.policy.clone();
        for e in &mut cfg.endpoints {
            let settings = crate::oauth::settings_for(&policy, &e.meta.profile, Some(true));
            Arc::make_mut(e).oauth = settings;
        }
        for s in &mut cfg.discover {
            let t = &mut Arc::make_mut(&mut Arc::make_mut(s).template);
            t.oauth = crate::oauth::settings_for(&policy, &t.meta.profile, Some(true));
        }
    }
    if let Some(c) = args.concurrency {
        if c == 0 {
            bail!("--concurrency must be at least 1");
        }
        cfg.global.concurrency = c;
    }
    if let Some(m) = args.revocation {
        cfg.global.revocation.method = m;
        for e in &mut cfg.endpoints {
            Arc::make_mut(e).revocation.method = m;
        }
    }
    for h in &args.aia_hosts {
        if !config::host_glob_ok(h) {
            bail!("--aia-host {h:?}: must be a host name or IP glob (letters, digits, '-', '.', ':', '*')");
        }
        cfg.global.revocation.aia_hosts.push(h.clone());
        for e in &mut cfg.endpoints {
            Arc::make_mut(e).revocation.aia_hosts.push(h.clone());
        }
    }
    if let Some(s) = &args.shard {
        cfg.global.shard = Some(config::Shard::parse(s)?);
    }
    // With discover: sources, `--once --endpoint` may name a discovered endpoint: checked after
    // the lookups. The daemon selects among the configured endpoints.
    if !args.endpoints.is_empty() && (cfg.discover.is_empty() || !args.once) {
        select_endpoints(&mut cfg, &args.endpoints)?;
    }
    if !args.dns_servers.is_empty() {
        cfg.global.dns.nameservers = args.dns_servers.clone();
        for e in &mut cfg.endpoints {
            Arc::make_mut(e).spec.dns = Some(cfg.global.dns.clone());
        }
        for s in &mut cfg.discover {
            Arc::make_mut(&mut Arc::make_mut(s).template).spec.dns = Some(cfg.global.dns.clone());
        }
    }
    let at = args.at.as_deref().map(parse_at).transpose()?;
    if args.once {
        let rt = runtime()?;
        if !cfg.discover.is_empty() {
            let mut states = std::collections::BTreeMap::new();
            rt.block_on(crate::daemon::discover_sources(&cfg, &mut states));
            for s in &cfg.discover {
                if let Some(f) = states.get(&s.id).and_then(|st| st.failure.as_ref()) {
                    eprintln!(
                        "discovery {}: {} ({})",
                        crate::text::term(&s.id),
                        f.reason.as_str(),
                        crate::text::term(&f.detail)
                    );
                }
            }
            cfg = crate::daemon::with_discovered(&cfg, &states);
            if !args.endpoints.is_empty() {
                select_endpoints(&mut cfg, &args.endpoints)?;
            }
            if cfg.endpoints.is_empty() {
                eprintln!("discovery found no endpoint");
                return Ok(ExitCode::from(3));
            }
        }
        let code = rt.block_on(run_once(&cfg, at, args.output, args.verbose));
        return Ok(ExitCode::from(code));
    }
    if at.is_some() {
        bail!("--at only makes sense with --once");
    }
    let rt = runtime()?;
    let result = rt.block_on(crate::daemon::run(crate::daemon::DaemonOptions {
        config_path: args.config.clone(),
        initial: cfg,
        listen: args.listen.clone(),
        web_config: args.web_config.clone(),
        shard_override: args.shard.is_some(),
        watch_config: args.watch_config,
        shutdown_grace: args.shutdown_grace.0,
        web: args.web.clone(),
    }));
    // A config read stuck in the kernel must not hold the exit (SIGTERM always wins).
    rt.shutdown_timeout(Duration::from_secs(2));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Probe every endpoint of `cfg` once, print the report, return the Nagios exit code.
pub async fn run_once(cfg: &Config, at: Option<i64>, output: OutputFormat, verbose: bool) -> u8 {
    let ctx = EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at,
    };
    let endpoints: Vec<Arc<Endpoint>> = match cfg.global.shard {
        Some(sh) => cfg
            .endpoints
            .iter()
            .filter(|e| sh.owns(&e.meta.endpoint))
            .cloned()
            .collect(),
        None => cfg.endpoints.clone(),
    };
    let mut outcomes = runner::probe_all(&endpoints, cfg.global.concurrency, &ctx).await;
    let pools = runner::apply_cross_rules(&cfg.policy, &mut outcomes);
    let generated = runner::unix_now() as i64;
    let now = at.unwrap_or(generated);
    match output {
        OutputFormat::Json => {
            // Streamed: the JSON document of a large run is tens of MB.
            let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
            if let Err(e) = report::write_json(out, &outcomes, &pools, now, generated) {
                eprintln!("certprobe: writing the JSON report: {e}");
            }
        }
        OutputFormat::Table => {
            print!("{}", report::render_table(&outcomes, &pools, now, verbose));
        }
    }
    report::overall_status(&outcomes, &pools).exit_code()
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let adhoc = AdhocArgs {
        targets: args.target.iter().cloned().collect(),
        sni: args.sni.clone(),
        ca: args.ca.clone(),
        ..Default::default()
    };
    let rt = runtime()?;
    let outcomes = if let Some(file) = &args.file {
        let chain = crate::fsread::read_pem_chain(file)?;
        // A file has no address: judge it as if it had been presented for --sni.
        let mut cfg = adhoc_config(&AdhocArgs {
            targets: vec!["0.0.0.0:0".into()],
            ..adhoc
        })?;
        let mut ep = Arc::unwrap_or_clone(cfg.endpoints.remove(0));
        std::sync::Arc::make_mut(&mut ep.meta).endpoint = file.display().to_string();
        ep.spec.sni = args.sni.clone();
        // No address: the only name to check is --sni.
        ep.spec.host = String::new();
        std::sync::Arc::make_mut(&mut ep.meta).host = String::new();
        let mut cap = crate::probe::Capture::new(
            std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            args.sni.clone(),
        );
        cap.chain = chain;
        let ctx = EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        };
        vec![runner::evaluate_capture(
            &ep,
            "file".into(),
            cap,
            &ctx,
            runner::unix_now(),
        )]
    } else if args.target.is_some() {
        let cfg = adhoc_config(&adhoc)?;
        let ctx = EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        };
        rt.block_on(runner::probe_all(&cfg.endpoints, 4, &ctx))
    } else {
        bail!("give --target HOST:PORT or --file PEM");
    };
    match args.output {
        OutputFormat::Json => {
            let certs: Vec<_> = outcomes.iter().filter_map(|o| o.report.as_ref()).collect();
            println!("{}", serde_json::to_string_pretty(&certs)?);
        }
        OutputFormat::Table => {
            for o in &outcomes {
                print!("{}", report::render_chain(o));
            }
        }
    }
    // Nothing to inspect is an operational failure, not a success with an empty page.
    let empty: Vec<&ProbeOutcome> = outcomes.iter().filter(|o| o.report.is_none()).collect();
    if !empty.is_empty() {
        for o in &empty {
            let why = o
                .capture
                .failure
                .as_ref()
                .map(|f| format!("{}: {}", f.reason, f.detail))
                .unwrap_or_else(|| "the server sent no certificate".into());
            eprintln!(
                "inspect: no certificate captured from {} ({}): {why}",
                o.target.endpoint, o.address
            );
        }
        return Ok(ExitCode::from(EXIT_UNAVAILABLE));
    }
    Ok(ExitCode::SUCCESS)
}

fn healthcheck(args: &crate::healthcheck::HealthcheckArgs) -> Result<ExitCode> {
    // A failed check is exit 1 with the reason on stderr; a bad command line is an error.
    Ok(match crate::healthcheck::run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.is_usage() => return Err(e.into()),
        Err(e) => {
            eprintln!(
                "healthcheck: {}",
                crate::text::escape_control(&crate::text::chain(&e).to_string())
            );
            ExitCode::from(1)
        }
    })
}
