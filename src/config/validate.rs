//! Raw -> validated config. Collects every problem instead of stopping at the first.
//!
//! Size: about 1,300 lines, one validator per config section with one error collector; its
//! tests are the fixture files under `tests/fixtures/config` (exact messages, run by
//! `tests/it/config_fixtures.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::PrivateKeyDer;
use serde_saphyr::Spanned;

use super::endpoint::{check_host, check_sni, EndpointBuilder, EndpointError, LoadedIdentity};
use super::raw::{RawConfig, RawEndpoint, RawKeyTypes, RawKeyTypesMode, RawSni, RawStore};
use super::{Config, ConfigError, ConfigErrors, Endpoint, Global, Shard};
use crate::chain::{StoreClass, TrustStore, TrustStores};
use crate::policy::Policy;

/// Directory that relative paths in the config resolve against.
#[derive(Debug, Clone)]
pub struct BaseDir(pub PathBuf);

impl BaseDir {
    fn resolve(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.0.join(path)
        }
    }
}

struct Collector<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Collector<'_> {
    fn err_at<T>(&mut self, span: &Spanned<T>, path: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line: Some(span.referenced.line() as u32),
            column: Some(span.referenced.column() as u32),
            path: path.into(),
            message: msg.into(),
        });
    }
    fn err(&mut self, line: Option<u32>, path: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            column: None,
            path: path.into(),
            message: msg.into(),
        });
    }
    fn warn(&mut self, line: Option<u32>, path: impl Into<String>, msg: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: self.file.to_string(),
            line,
            column: None,
            path: path.into(),
            message: msg.into(),
        });
    }
}

fn line_of<T>(s: &Spanned<T>) -> Option<u32> {
    Some(s.referenced.line() as u32)
}

/// Validate a parsed config.
pub fn validate_raw(raw: RawConfig, file: &str, base: &BaseDir) -> Result<Config, ConfigErrors> {
    let mut c = Collector {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };

    if let Some(v) = raw.version {
        if v != 1 {
            c.err(
                None,
                "version",
                format!("unsupported config version {v} (only 1 exists)"),
            );
        }
    }

    let global = validate_global(&raw, base, &mut c);
    let stores = validate_stores(raw.trust_stores.as_ref(), base, &mut c);

    let policy = match Policy::from_spec(raw.policy.clone()) {
        Ok(p) => p,
        Err(problems) => {
            for p in problems {
                let (path, msg) = split_path(&p);
                c.err(None, path, msg);
            }
            Policy::default()
        }
    };

    check_policy_store_names(&raw.policy, &stores, &mut c);

    if raw.endpoints.is_empty() && raw.discover.is_empty() {
        c.err(
            None,
            "endpoints",
            "at least one endpoint (or a discover: source) is required",
        );
    }
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut endpoints = Vec::with_capacity(raw.endpoints.len());
    for (i, e) in raw.endpoints.iter().enumerate() {
        let name = e.name.value.clone();
        if let Some(first_line) = seen.get(&name) {
            c.err_at(
                &e.name,
                format!("endpoints[{i}].name"),
                format!("duplicate endpoint name {name:?} (first defined on line {first_line})"),
            );
        } else {
            seen.insert(name, e.name.referenced.line() as u32);
        }
        if let Some(ep) = validate_endpoint(
            &format!("endpoints[{i}]"),
            e,
            &global,
            &policy,
            base,
            &mut c,
        ) {
            endpoints.push(std::sync::Arc::new(ep));
        }
    }

    let discover = validate_discover(&raw.discover, &global, &policy, base, &seen, &mut c);

    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    Ok(Config {
        origin: file.to_string(),
        global,
        stores: Arc::new(stores),
        policy: Arc::new(policy),
        endpoints,
        discover,
        warnings: c.warnings,
    })
}

/// `policy.profiles.x.extends: message` -> (path, message).
fn split_path(p: &str) -> (String, String) {
    match p.split_once(": ") {
        Some((path, msg)) if !path.contains(' ') => (path.to_string(), msg.to_string()),
        _ => ("policy".to_string(), p.to_string()),
    }
}

fn positive(
    d: &Option<Spanned<super::HumanDuration>>,
    default: Duration,
    path: &str,
    c: &mut Collector<'_>,
) -> Duration {
    match d {
        Some(s) if s.value.0.is_zero() => {
            c.err_at(s, path, "must be greater than zero");
            default
        }
        Some(s) => s.value.0,
        None => default,
    }
}

fn validate_global(raw: &RawConfig, base: &BaseDir, c: &mut Collector<'_>) -> Global {
    let g = &raw.global;
    let d = Global::default();
    let interval = positive(&g.interval, d.interval, "global.interval", c);
    let retry_interval = g
        .retry_interval
        .as_ref()
        .map(|_| positive(&g.retry_interval, interval, "global.retry_interval", c));
    let connect_timeout = positive(
        &g.connect_timeout,
        d.connect_timeout,
        "global.connect_timeout",
        c,
    );
    let timeout = positive(&g.timeout, d.timeout, "global.timeout", c);
    let verdict_timeout = positive(
        &g.verdict_timeout,
        d.verdict_timeout,
        "global.verdict_timeout",
        c,
    );
    let concurrency = match &g.concurrency {
        Some(s) if s.value == 0 => {
            c.err_at(s, "global.concurrency", "must be at least 1");
            d.concurrency
        }
        Some(s) => s.value,
        None => d.concurrency,
    };
    let max_chain_certs = match &g.max_chain_certs {
        Some(s) if s.value == 0 => {
            c.err_at(s, "global.max_chain_certs", "must be at least 1");
            d.max_chain_certs
        }
        Some(s) => s.value,
        None => d.max_chain_certs,
    };
    let max_chain_bytes = match &g.max_chain_bytes {
        Some(s) if s.value < 1024 => {
            c.err_at(s, "global.max_chain_bytes", "must be at least 1024");
            d.max_chain_bytes
        }
        Some(s) => s.value,
        None => d.max_chain_bytes,
    };
    for (i, p) in g.allow_adhoc_targets.iter().enumerate() {
        if let Err(e) = crate::netmatch::HostPattern::parse(p) {
            c.err(
                None,
                format!("global.allow_adhoc_targets[{i}]"),
                e.to_string(),
            );
        }
    }
    if let Some(ports) = &g.allow_adhoc_ports {
        if ports.contains(&0) {
            c.err(
                None,
                "global.allow_adhoc_ports",
                "0 is not a TCP port (1-65535)",
            );
        }
    }
    let mut allow_adhoc_networks = Vec::new();
    for (i, n) in g.allow_adhoc_networks.iter().enumerate() {
        match crate::netmatch::IpNet::parse(n) {
            Ok(net) => allow_adhoc_networks.push(net),
            Err(e) => c.err(
                None,
                format!("global.allow_adhoc_networks[{i}]"),
                e.to_string(),
            ),
        }
    }
    let shard = match &g.shard {
        Some(s) => match Shard::parse(&s.value) {
            Ok(sh) => Some(sh),
            Err(e) => {
                c.err_at(s, "global.shard", e.to_string());
                None
            }
        },
        None => None,
    };
    let proxy = g.proxy.as_deref().and_then(|url| {
        load_proxy(url, g.proxy_auth_file.as_deref(), base)
            .map_err(|e| c.err(None, "global.proxy", crate::text::chain(&e).to_string()))
            .ok()
    });
    if g.proxy.is_none() && g.proxy_auth_file.is_some() {
        c.err(None, "global.proxy_auth_file", "given without global.proxy");
    }
    let dns = validate_dns(&g.dns, c);
    let discover_interval = positive(
        &g.discover_interval,
        crate::discovery::DEFAULT_DISCOVER_INTERVAL,
        "global.discover_interval",
        c,
    );
    Global {
        dns,
        discover_interval,
        proxy,
        interval,
        retry_interval,
        connect_timeout,
        timeout,
        verdict_timeout,
        concurrency,
        addresses: g.addresses.unwrap_or_default(),
        max_chain_certs,
        max_chain_bytes,
        allow_adhoc_targets: g.allow_adhoc_targets.clone(),
        allow_adhoc_ports: g.allow_adhoc_ports.clone(),
        allow_adhoc_networks,
        shard,
        metrics_detail: g
            .metrics
            .detail
            .unwrap_or(crate::vocab::MetricsDetail::Default),
        revocation: validate_revocation(
            &g.revocation,
            &crate::revocation::RevocationConfig::default(),
            "global.revocation",
            c,
        ),
    }
}

/// `revocation:` over `base` (the defaults for `global`, the global settings for an endpoint).
fn validate_revocation(
    r: &super::raw::RawRevocation,
    base: &crate::revocation::RevocationConfig,
    path: &str,
    c: &mut Collector<'_>,
) -> crate::revocation::RevocationConfig {
    let mut out = base.clone();
    if let Some(m) = r.method {
        out.method = m;
    }
    out.max_age = positive(&r.max_age, base.max_age, &format!("{path}.max_age"), c);
    out.timeout = positive(&r.timeout, base.timeout, &format!("{path}.timeout"), c);
    match &r.max_crl_bytes {
        Some(s) if s.value < 1024 => {
            c.err_at(s, format!("{path}.max_crl_bytes"), "must be at least 1024");
        }
        Some(s) => out.max_crl_bytes = s.value,
        None => {}
    }
    if let Some(h) = host_globs(&r.allow_hosts, &format!("{path}.allow_hosts"), c) {
        out.allow_hosts = h;
    }
    if let Some(h) = host_globs(&r.aia_hosts, &format!("{path}.aia_hosts"), c) {
        out.aia_hosts = h;
    }
    out
}

/// A host glob of `allow_hosts`/`aia_hosts`/`--aia-host`: a host name or IP, `*` for one label.
pub fn host_glob_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.*:".contains(&b))
}

/// A list of host globs (`allow_hosts`, `aia_hosts`), each checked.
fn host_globs(
    hosts: &Option<Vec<String>>,
    path: &str,
    c: &mut Collector<'_>,
) -> Option<Vec<String>> {
    let hosts = hosts.as_ref()?;
    for (i, h) in hosts.iter().enumerate() {
        if !host_glob_ok(h) {
            c.err(
                None,
                format!("{path}[{i}]"),
                "must be a host name or IP glob (letters, digits, '-', '.', ':', '*')",
            );
        }
    }
    Some(hosts.clone())
}

/// A profile's `trusted.stores` must name configured stores: a typo would otherwise surface only
/// at probe time, as "store not configured" on every endpoint of the profile.
fn check_policy_store_names(
    policy: &crate::policy::PolicySpec,
    stores: &TrustStores,
    c: &mut Collector<'_>,
) {
    for (name, profile) in &policy.profiles {
        let Some(trusted) = &profile.rules.trusted else {
            continue;
        };
        for (j, store) in trusted.stores.iter().flatten().enumerate() {
            if stores.get(store).is_none() {
                let known: Vec<&str> = stores.stores.iter().map(|s| s.name.as_str()).collect();
                c.err(
                    None,
                    format!("policy.profiles.{name}.rules.trusted.stores[{j}]"),
                    format!(
                        "unknown trust store \"{}\" (configured: {})",
                        crate::text::quote(store),
                        known.join(", ")
                    ),
                );
            }
        }
    }
}

fn validate_stores(
    raw: Option<&BTreeMap<String, RawStore>>,
    base: &BaseDir,
    c: &mut Collector<'_>,
) -> TrustStores {
    let Some(raw) = raw else {
        return TrustStores {
            stores: vec![TrustStore::webpki_roots("public")],
        };
    };
    if raw.is_empty() {
        c.err(
            None,
            "trust_stores",
            "at least one trust store is required when the section is present",
        );
    }
    let mut stores = Vec::new();
    for (name, s) in raw {
        let path = format!("trust_stores.{name}");
        if !valid_label_value_name(name) {
            c.err(
                None,
                &path,
                "store names may only contain letters, digits, '_' and '-'",
            );
        }
        if s.pem_files.is_empty() && s.anchor_files.is_empty() && !s.builtin {
            c.err(
                None,
                &path,
                "needs pem_files, anchor_files or builtin: true (or several)",
            );
            continue;
        }
        let mut read_files = |key: &str, files: &[Spanned<String>]| {
            let mut certs = Vec::new();
            for (j, f) in files.iter().enumerate() {
                let fpath = format!("{path}.{key}[{j}]");
                match crate::fsread::read_pem_certs(&base.resolve(&f.value)) {
                    Ok(v) if v.is_empty() => c.err_at(
                        f,
                        &fpath,
                        format!("{:?} contains no PEM certificates", f.value),
                    ),
                    Ok(v) => certs.extend(v),
                    Err(e) => c.err_at(f, &fpath, crate::text::chain(&e).to_string()),
                }
            }
            certs
        };
        let bundle = read_files("pem_files", &s.pem_files);
        let pinned = read_files("anchor_files", &s.anchor_files);
        let mut store = match TrustStore::from_bundle(name.clone(), s.class, bundle)
            .and_then(|mut st| st.add_anchors(pinned).map(|()| st))
        {
            Ok(st) => st,
            Err(e) => {
                c.err(None, &path, e.to_string());
                continue;
            }
        };
        if !s.pem_files.is_empty()
            && store.anchors.is_empty()
            && s.anchor_files.is_empty()
            && !s.builtin
        {
            c.warn(
                None,
                &path,
                "pem_files hold no self-signed root: this store has no trust anchor and verifies nothing (list the root, or put a CA you pin in anchor_files)",
            );
        }
        if s.builtin {
            store
                .anchors
                .extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if s.builtin && s.class == StoreClass::Internal {
            c.warn(None, &path, "builtin public roots in a store of class internal: public CAs will be classified as internal");
        }
        stores.push(store);
    }
    TrustStores { stores }
}

fn valid_label_value_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

/// Syntactic DNS name check (labels 1-63 of letters, digits, '-', '_'; '*' allowed as a whole
/// first label only where `allow_wildcard`).
pub(crate) fn valid_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    })
}

/// A proxy URL and its optional credentials file.
fn load_proxy(
    url: &str,
    auth_file: Option<&str>,
    base: &BaseDir,
) -> Result<Arc<crate::probe::proxy::Proxy>, crate::probe::proxy::ProxyError> {
    let proxy = crate::probe::proxy::Proxy::parse(url)?;
    let proxy = match auth_file {
        None => proxy,
        Some(f) => proxy.with_credentials_file(&base.resolve(f))?,
    };
    Ok(Arc::new(proxy))
}

fn validate_endpoint(
    prefix: &str,
    e: &RawEndpoint,
    global: &Global,
    policy: &Policy,
    base: &BaseDir,
    c: &mut Collector<'_>,
) -> Option<Endpoint> {
    let p = |f: &str| format!("{prefix}.{f}");
    let errors_before = c.errors.len();

    let name = e.name.value.trim().to_string();
    if let Some(bad) = crate::text::first_unsafe_char(&e.name.value) {
        // Names reach terminals and log lines: no \r, \t, NUL, ESC, newline (issue 16).
        c.err_at(
            &e.name,
            p("name"),
            format!("must not contain control characters: found {bad}"),
        );
    } else if name.is_empty() {
        c.err_at(&e.name, p("name"), "must not be empty");
    } else if name.chars().count() > 128 {
        c.err_at(&e.name, p("name"), "must be at most 128 characters");
    }

    let host = match check_host(&e.host.value) {
        Ok(h) => h,
        Err(err) => {
            c.err_at(&e.host, p("host"), err.to_string());
            e.host.value.trim().to_string()
        }
    };
    let host_is_ip = host.parse::<std::net::IpAddr>().is_ok();

    let port = match &e.port {
        Some(s) if s.value == 0 || s.value > 65535 => {
            c.err_at(
                s,
                p("port"),
                format!("{} is not a TCP port (1-65535)", s.value),
            );
            443
        }
        Some(s) => s.value as u16,
        None => e.starttls.map_or(443, |st| st.default_port()),
    };

    let sni = match &e.sni {
        None => (!host_is_ip).then(|| host.clone()),
        Some(RawSni::Enabled(false)) => None,
        Some(RawSni::Enabled(true)) => {
            if host_is_ip {
                c.err(
                    line_of(&e.host),
                    p("sni"),
                    "sni: true needs a host name; give the name to send instead",
                );
            }
            (!host_is_ip).then(|| host.clone())
        }
        Some(RawSni::Name(n)) => {
            if let Err(err) = check_sni(n) {
                c.err(line_of(&e.host), p("sni"), err.to_string());
            }
            Some(n.clone())
        }
    };

    let profile = match (&e.profile, &e.role) {
        (Some(a), Some(b)) if a.value != b.value => {
            c.err_at(b, p("role"), "role is an alias of profile; give only one");
            a.value.clone()
        }
        (Some(a), _) | (None, Some(a)) => {
            if !policy.has_profile(&a.value) {
                c.err_at(
                    a,
                    p(if e.profile.is_some() {
                        "profile"
                    } else {
                        "role"
                    }),
                    format!("unknown profile {:?}", a.value),
                );
            }
            a.value.clone()
        }
        (None, None) => "default".to_string(),
    };

    if e.labels.len() > 16 {
        c.err(
            line_of(&e.name),
            p("labels"),
            "at most 16 labels per endpoint",
        );
    }
    for (k, v) in &e.labels {
        if let Some(bad) = crate::text::first_unsafe_char(v) {
            c.err(
                line_of(&e.name),
                format!("{}.{}", p("labels"), crate::text::quote(k)),
                format!("label values must not contain control characters: found {bad}"),
            );
        }
    }
    if let Some(bad) = e.pool.as_deref().and_then(crate::text::first_unsafe_char) {
        c.err(
            line_of(&e.name),
            p("pool"),
            format!("must not contain control characters: found {bad}"),
        );
    }
    for k in e.labels.keys() {
        if crate::labels::RESERVED_LABELS.contains(&k.as_str()) {
            c.err(
                line_of(&e.name),
                format!("{}.{k}", p("labels")),
                "reserved label name (certprobe sets it)",
            );
        } else if !crate::labels::is_allowed_endpoint_label(k) {
            c.err(
                line_of(&e.name),
                format!("{}.{k}", p("labels")),
                "not a valid Prometheus label name",
            );
        }
    }

    let interval = match &e.interval {
        Some(s) if s.value.0.is_zero() => {
            c.err_at(s, p("interval"), "must be greater than zero");
            global.interval
        }
        Some(s) => s.value.0,
        None => global.interval,
    };
    let timeout = match &e.timeout {
        Some(s) if s.value.0.is_zero() => {
            c.err_at(s, p("timeout"), "must be greater than zero");
            global.timeout
        }
        Some(s) => s.value.0,
        None => global.timeout,
    };
    if global.connect_timeout + timeout >= interval {
        c.warn(
            line_of(&e.name),
            p("timeout"),
            format!(
                "connect timeout + handshake timeout ({:?}) >= interval ({:?}): a stalled endpoint is probed back to back",
                global.connect_timeout + timeout,
                interval
            ),
        );
    }

    let min_version = e
        .tls
        .min_version
        .map_or(crate::vocab::TlsVersion::Tls12, |v| v.0);
    let max_version = e
        .tls
        .max_version
        .map_or(crate::vocab::TlsVersion::Tls13, |v| v.0);
    if min_version > max_version {
        c.err(
            line_of(&e.name),
            p("tls"),
            "min_version is above max_version",
        );
    }
    for (j, a) in e.alpn.iter().enumerate() {
        if a.is_empty() || a.len() > 255 {
            c.err(
                line_of(&e.name),
                format!("{}[{j}]", p("alpn")),
                "ALPN ids are 1-255 bytes",
            );
        }
    }
    for (j, n) in e.expected_names.iter().enumerate() {
        let bare = n.strip_prefix("*.").unwrap_or(n);
        if !valid_dns_name(bare) && n.parse::<std::net::IpAddr>().is_err() {
            c.err(
                line_of(&e.name),
                format!("{}[{j}]", p("expected_names")),
                format!("{n:?} is not a DNS name or IP address"),
            );
        }
    }

    let mut resolve = Vec::new();
    for (j, a) in e.resolve.iter().enumerate() {
        match a.parse::<std::net::IpAddr>() {
            Ok(ip) => resolve.push(ip),
            Err(_) => c.err(
                line_of(&e.name),
                format!("{}[{j}]", p("resolve")),
                format!("{a:?} is not an IP address"),
            ),
        }
    }

    // OAuth metadata: an https document on the endpoint itself, fetched directly (no proxy,
    // no STARTTLS); a profile's rule is skipped for such endpoints, an explicit `true` is an
    // error.
    let direct_https = e.starttls.is_none() && e.proxy.is_none() && global.proxy.is_none();
    if e.oauth_metadata == Some(true) && !direct_https {
        c.err(
            line_of(&e.name),
            p("oauth_metadata"),
            "the OAuth metadata document is fetched over direct https: not with starttls or a proxy",
        );
    }
    let oauth =
        crate::oauth::settings_for(policy, &profile, e.oauth_metadata).filter(|_| direct_https);
    if let Some(o) = &oauth {
        if !policy.has_profile(&o.profile) {
            c.err(
                line_of(&e.name),
                p("oauth_metadata"),
                format!("the OAuth profile {:?} does not exist", o.profile),
            );
        }
    }

    let identity = load_client_identity(prefix, e, base, c);

    if c.errors.len() > errors_before {
        return None;
    }

    let mut builder = EndpointBuilder::new(name, host, port, global);
    if let Some(id) = &identity {
        builder.identity(id);
    }
    let spec = &mut builder.endpoint.spec;
    spec.sni = sni;
    spec.expect_client_auth = e.expect_client_auth.unwrap_or_default();
    spec.min_version = min_version;
    spec.max_version = max_version;
    spec.alpn = e.alpn.clone();
    spec.starttls = e.starttls.map(|proto| {
        let mut st = crate::probe::starttls::StartTlsSpec::new(proto);
        if let Some(n) = &e.ehlo_name {
            if valid_dns_name(n) {
                st.hello_name = n.clone();
            } else {
                c.err(
                    line_of(&e.host),
                    p("ehlo_name"),
                    format!("{n:?} is not a valid DNS name"),
                );
            }
        }
        if let Some(d) = &e.xmpp_domain {
            if valid_dns_name(d) {
                st.xmpp_domain = Some(d.clone());
            } else {
                c.err(
                    line_of(&e.host),
                    p("xmpp_domain"),
                    format!("{d:?} is not a valid DNS name"),
                );
            }
        }
        st
    });
    spec.proxy = match e.proxy.as_deref() {
        Some(url) => load_proxy(url, e.proxy_auth_file.as_deref(), base)
            .map_err(|err| {
                c.err(
                    line_of(&e.host),
                    p("proxy"),
                    crate::text::chain(&err).to_string(),
                )
            })
            .ok(),
        None => global.proxy.clone(),
    };
    if e.proxy.is_none() && e.proxy_auth_file.is_some() {
        c.err(
            line_of(&e.host),
            p("proxy_auth_file"),
            "given without proxy",
        );
    }
    if e.starttls.is_none() && (e.ehlo_name.is_some() || e.xmpp_domain.is_some()) {
        c.err(
            line_of(&e.host),
            p("starttls"),
            "ehlo_name and xmpp_domain only apply with starttls",
        );
    }
    spec.key_types = match &e.key_types {
        None | Some(RawKeyTypes::Mode(RawKeyTypesMode::Auto)) => crate::probe::KeyTypes::Auto,
        Some(RawKeyTypes::List(list)) if list.is_empty() => {
            c.err(
                line_of(&e.host),
                p("key_types"),
                "key_types: an empty list probes nothing; give auto, or key types such as [ecdsa, rsa]",
            );
            crate::probe::KeyTypes::Auto
        }
        Some(RawKeyTypes::List(list)) => crate::probe::KeyTypes::Only(list.clone()),
    };
    spec.app_protocol = e.protocol.unwrap_or_default();
    spec.handshake_timeout = timeout;
    spec.legacy_fallback = e.tls.legacy_fallback.unwrap_or(true);

    let ep = &mut builder.endpoint;
    std::sync::Arc::make_mut(&mut ep.meta).profile = profile;
    std::sync::Arc::make_mut(&mut ep.meta).pool = e.pool.clone().filter(|p| !p.is_empty());
    std::sync::Arc::make_mut(&mut ep.meta).labels = e.labels.clone();
    std::sync::Arc::make_mut(&mut ep.meta).starttls = e.starttls;
    std::sync::Arc::make_mut(&mut ep.meta).metrics_detail =
        e.metrics.detail.unwrap_or(global.metrics_detail);
    ep.addresses = e.addresses.unwrap_or(global.addresses);
    ep.resolve = resolve;
    ep.interval = interval;
    ep.retry_interval = global.retry_interval.unwrap_or(interval).min(interval);
    ep.expected_names = e.expected_names.clone();
    ep.revocation = validate_revocation(
        &e.revocation,
        &global.revocation,
        &format!("{prefix}.revocation"),
        c,
    );
    ep.oauth = oauth;
    Some(builder.build())
}

/// `global.dns`.
fn validate_dns(d: &super::raw::RawDns, c: &mut Collector<'_>) -> crate::dns::DnsSettings {
    let mut out = crate::dns::DnsSettings::default();
    for (i, n) in d.nameservers.iter().enumerate() {
        match n.parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 => out.nameservers.push(a),
            _ => c.err(
                None,
                format!("global.dns.nameservers[{i}]"),
                format!(
                    "{:?} is not IP:PORT (e.g. 127.0.0.1:53 or [::1]:5353)",
                    crate::text::quote(n)
                ),
            ),
        }
    }
    if d.nameservers.len() > 8 {
        c.err(None, "global.dns.nameservers", "at most 8 servers");
    }
    out.timeout = positive(
        &d.timeout,
        crate::dns::DEFAULT_TIMEOUT,
        "global.dns.timeout",
        c,
    );
    match d.attempts {
        Some(a) if !(1..=5).contains(&a) => {
            c.err(None, "global.dns.attempts", "must be 1 to 5");
        }
        Some(a) => out.attempts = a,
        None => {}
    }
    out
}

/// `discover:` sources: each validated once into a template endpoint that every target copies.
fn validate_discover(
    raw: &[super::raw::RawDiscover],
    global: &Global,
    policy: &Policy,
    base: &BaseDir,
    static_names: &HashMap<String, u32>,
    c: &mut Collector<'_>,
) -> Vec<Arc<crate::discovery::Source>> {
    use crate::discovery::{queries, Source, SourceKind};
    let mut out = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, d) in raw.iter().enumerate() {
        let prefix = format!("discover[{i}]");
        let (kind, span) = match (&d.srv, &d.lync_domain) {
            (Some(s), None) => (
                SourceKind::Srv(s.value.trim_end_matches('.').to_ascii_lowercase()),
                s,
            ),
            (None, Some(l)) => (
                SourceKind::LyncDomain(l.value.trim_end_matches('.').to_ascii_lowercase()),
                l,
            ),
            (Some(_), Some(l)) => {
                c.err_at(l, &prefix, "give srv or lync_domain, not both");
                continue;
            }
            (None, None) => {
                c.err(None, &prefix, "needs srv: NAME or lync_domain: DOMAIN");
                continue;
            }
        };
        let (field, name) = match &kind {
            SourceKind::Srv(n) => ("srv", n.clone()),
            SourceKind::LyncDomain(n) => ("lync_domain", n.clone()),
        };
        if crate::dns::valid_host_name(&name).is_none() {
            c.err_at(
                span,
                format!("{prefix}.{field}"),
                format!("{:?} is not a DNS name", crate::text::quote(&name)),
            );
            continue;
        }
        if matches!(kind, SourceKind::LyncDomain(_)) && name.starts_with('_') {
            c.err_at(
                span,
                format!("{prefix}.lync_domain"),
                "give the SIP domain (contoso.com), not a record name; use srv: for one record",
            );
        }
        let id = d.name.clone().unwrap_or_else(|| name.clone());
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !id_ok {
            c.err_at(
                span,
                format!("{prefix}.name"),
                "source names are 1-64 letters, digits, '.', '_' or '-'",
            );
        }
        if let Some(first) = ids.insert(id.clone(), i) {
            c.err_at(
                span,
                format!("{prefix}.name"),
                format!("source {id:?} is also discover[{first}] (give one of them a name:)"),
            );
        }
        let max_targets = match d.max_targets {
            Some(n) if n == 0 || n > crate::discovery::MAX_MAX_TARGETS => {
                c.err_at(
                    span,
                    format!("{prefix}.max_targets"),
                    format!("must be 1 to {}", crate::discovery::MAX_MAX_TARGETS),
                );
                crate::discovery::DEFAULT_MAX_TARGETS
            }
            Some(n) => n,
            None => crate::discovery::DEFAULT_MAX_TARGETS,
        };
        let profile = d.profile.as_ref().map(|p| p.value.as_str());
        let qs = queries(&kind, profile);
        if profile.is_none() {
            for q in &qs {
                if !policy.has_profile(&q.profile) {
                    c.err_at(
                        span,
                        format!("{prefix}.profile"),
                        format!(
                            "the {} record's profile {:?} is not defined (preset lync2013 has it); set profile:",
                            q.record.human(),
                            q.profile
                        ),
                    );
                    break;
                }
            }
        }
        let raw_ep = RawEndpoint {
            name: Spanned::new(id.clone(), span.referenced, span.defined),
            host: Spanned::new(
                crate::discovery::srv_domain(&name),
                span.referenced,
                span.defined,
            ),
            port: None,
            sni: None,
            profile: d.profile.clone(),
            role: None,
            pool: d.pool.clone(),
            labels: d.labels.clone(),
            addresses: None,
            resolve: Vec::new(),
            client_cert: d.client_cert.clone(),
            client_key: d.client_key.clone(),
            expect_client_auth: d.expect_client_auth,
            interval: d.interval.clone(),
            timeout: d.timeout.clone(),
            tls: Default::default(),
            alpn: Vec::new(),
            starttls: None,
            proxy: None,
            proxy_auth_file: None,
            ehlo_name: None,
            xmpp_domain: None,
            key_types: None,
            protocol: None,
            expected_names: d.expected_names.clone(),
            oauth_metadata: None,
            revocation: Default::default(),
            metrics: Default::default(),
        };
        let Some(template) = validate_endpoint(&prefix, &raw_ep, global, policy, base, c) else {
            continue;
        };
        if static_names
            .keys()
            .any(|n| n.starts_with(&format!("{id}-")))
        {
            c.warn(
                line_of(span),
                &prefix,
                format!("endpoint names starting with \"{id}-\" may collide with this source's; a configured endpoint wins over a discovered one of the same name"),
            );
        }
        out.push(Arc::new(Source {
            id,
            kind,
            queries: qs,
            template: Arc::new(template),
            max_targets,
            require_sip_domain: d.require_sip_domain,
        }));
    }
    out
}

/// An endpoint's `client_cert`/`client_key` pair, loaded by
/// [`super::endpoint::load_client_identity`]; each error is reported at the field it concerns.
fn load_client_identity(
    prefix: &str,
    e: &RawEndpoint,
    base: &BaseDir,
    c: &mut Collector<'_>,
) -> Option<LoadedIdentity> {
    let (cert, key) = match (&e.client_cert, &e.client_key) {
        (None, None) => return None,
        (Some(cert), None) => {
            c.err_at(
                cert,
                format!("{prefix}.client_key"),
                "client_cert needs client_key",
            );
            return None;
        }
        (None, Some(key)) => {
            c.err_at(
                key,
                format!("{prefix}.client_cert"),
                "client_key needs client_cert",
            );
            return None;
        }
        (Some(cert), Some(key)) => (cert, key),
    };
    let key_path = base.resolve(&key.value);
    let loaded = super::endpoint::load_client_identity(&base.resolve(&cert.value), &key_path);
    if !matches!(loaded, Err(EndpointError::ClientCert(_))) {
        warn_if_readable_by_others(&key_path, prefix, key, c);
    }
    match loaded {
        Ok(id) => Some(id),
        Err(err) if err.is_about_key() => {
            c.err_at(
                key,
                format!("{prefix}.client_key"),
                crate::text::chain(&err).to_string(),
            );
            None
        }
        Err(err) => {
            c.err_at(
                cert,
                format!("{prefix}.client_cert"),
                crate::text::chain(&err).to_string(),
            );
            None
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(
    path: &Path,
    prefix: &str,
    key: &Spanned<String>,
    c: &mut Collector<'_>,
) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(path) {
        let mode = md.permissions().mode();
        if mode & 0o077 != 0 {
            let msg = format!(
                "private key {} is readable by group/others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
            tracing::warn!(file = %path.display(), "{msg}");
            c.warn(line_of(key), format!("{prefix}.client_key"), msg);
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path, _: &str, _: &Spanned<String>, _: &mut Collector<'_>) {}

/// Why a client key cannot be used with its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKeyProblem {
    /// The key's public half is not the certificate's.
    DoesNotMatch,
    /// ring cannot sign with it.
    Unsupported,
}

impl ClientKeyProblem {
    /// The message for the operator (paths only, never key material).
    pub fn message(self, key_path: &Path, cert_path: &Path) -> String {
        match self {
            Self::DoesNotMatch => format!(
                "{} does not match the certificate in {}",
                key_path.display(),
                cert_path.display()
            ),
            Self::Unsupported => format!(
                "{}: unsupported private key (ring supports RSA >= 2048, ECDSA P-256/P-384, Ed25519)",
                key_path.display()
            ),
        }
    }
}

/// The one check that a client key belongs to its certificate (`leaf_spki`: the DER
/// SubjectPublicKeyInfo of the chain's first certificate), shared by the config loader and
/// the ad-hoc `--client-cert`/`--client-key` path.
pub fn check_client_key(leaf_spki: &[u8], key: &PrivateKeyDer<'_>) -> Result<(), ClientKeyProblem> {
    let signing = crate::crypto_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|_| ClientKeyProblem::Unsupported)?;
    match signing.public_key() {
        Some(pk) if pk.as_ref() != leaf_spki => Err(ClientKeyProblem::DoesNotMatch),
        _ => Ok(()),
    }
}
