//! The exporter's own listener security: the Prometheus exporter-toolkit web config file
//! (`--web.config.file`), with `tls_server_config` and `basic_auth_users` (bcrypt hashes).
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional
//!   client_ca_file: clients-ca.crt                 # required with a verifying client_auth_type
//!   min_version: TLS12                             # optional: TLS12 | TLS13
//!   max_version: TLS13                             # optional
//! basic_auth_users:
//!   prometheus: $2y$10$...
//! ```
//!
//! The certificate and key are re-read when their modification time changes (checked at most
//! once per second during handshakes), so a rotated certificate is served without a restart.
//! Passwords and hashes are never logged; `Debug` output lists user names only.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Why the web config does not load. Each message names the setting or the file at fault;
/// a hash or key is never echoed.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The web config file itself cannot be read.
    #[error(transparent)]
    Read(#[from] crate::fsread::ReadError),
    /// Not YAML of the documented shape (the parser's message names the key).
    #[error(transparent)]
    Yaml(Box<serde_saphyr::Error>),
    #[error("{0} is not supported by the exporter listener (TLS12 or TLS13)")]
    UnsupportedVersion(String),
    #[error("unknown TLS version {0:?} (expected TLS12 or TLS13)")]
    UnknownVersion(String),
    #[error("tls_server_config: min_version is above max_version")]
    VersionRange,
    #[error("tls_server_config: protocol versions")]
    Versions(#[source] rustls::Error),
    #[error("tls_server_config: client_ca_file is set but client_auth_type is NoClientCert")]
    CaWithoutClientAuth,
    #[error("tls_server_config: client_auth_type {0} needs client_ca_file")]
    NeedsClientCa(String),
    #[error("client_ca_file {}: bad CA certificate", path.display())]
    BadClientCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error(
        "tls_server_config: client_auth_type {0} (accepting unverified client certificates) \
         is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
    )]
    UnverifiedClientAuth(String),
    #[error("tls_server_config: unknown client_auth_type {0:?}")]
    UnknownClientAuth(String),
    /// A certificate, CA or key file: unreadable, not PEM, empty.
    #[error(transparent)]
    Pem(#[from] crate::fsread::PemError),
    #[error("unsupported private key in {}", path.display())]
    UnsupportedKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{} does not match {}", key.display(), cert.display())]
    KeyMismatch {
        key: PathBuf,
        cert: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("basic_auth_users: the password hash of user {0:?} is not a bcrypt hash")]
    NotBcrypt(String),
    #[error("generating the dummy bcrypt hash")]
    DummyHash(#[source] bcrypt::BcryptError),
}

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfigFile>,
    /// user name -> bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: Option<BTreeMap<String, String>>,
}

/// `tls_server_config`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfigFile {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// NoClientCert (default), VerifyClientCertIfGiven or RequireAndVerifyClientCert.
    #[serde(default)]
    pub client_auth_type: Option<String>,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// TLS12 or TLS13.
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

/// The loaded web config: an optional TLS server config and optional basic auth.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    pub auth: Option<Arc<BasicAuth>>,
}

impl WebConfig {
    /// Load and validate `path` (certificate files are read now, so errors surface at start).
    /// The caller names the file in its own message (`daemon::Error::WebConfig`).
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = crate::fsread::read_capped_string(path, crate::fsread::MAX_WEB_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, base)
    }

    /// Parse and validate YAML; relative file names are resolved against `base_dir`.
    pub fn from_yaml(text: &str, base_dir: &Path) -> Result<Self, WebConfigError> {
        let file: WebConfigFile = if text.trim().is_empty() {
            WebConfigFile::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| WebConfigError::Yaml(Box::new(e)))?
        };
        Self::from_file(&file, base_dir)
    }

    pub fn from_file(file: &WebConfigFile, base_dir: &Path) -> Result<Self, WebConfigError> {
        let tls = match &file.tls_server_config {
            Some(t) => Some(build_tls(t, base_dir)?),
            None => None,
        };
        let auth = match &file.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users)?)),
            _ => None,
        };
        Ok(Self { tls, auth })
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn version(v: &str) -> Result<&'static rustls::SupportedProtocolVersion, WebConfigError> {
    match v {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(WebConfigError::UnsupportedVersion(v.to_string())),
        other => Err(WebConfigError::UnknownVersion(other.to_string())),
    }
}

fn build_tls(t: &TlsServerConfigFile, base: &Path) -> Result<Arc<ServerConfig>, WebConfigError> {
    let provider = crate::crypto_provider();
    let min = t.min_version.as_deref().map(version).transpose()?;
    let max = t.max_version.as_deref().map(version).transpose()?;
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    for (v, rank) in [(&rustls::version::TLS12, 12), (&rustls::version::TLS13, 13)] {
        let lo = min.map(|m| {
            if m.version == rustls::ProtocolVersion::TLSv1_3 {
                13
            } else {
                12
            }
        });
        let hi = max.map(|m| {
            if m.version == rustls::ProtocolVersion::TLSv1_3 {
                13
            } else {
                12
            }
        });
        if lo.is_none_or(|l| rank >= l) && hi.is_none_or(|h| rank <= h) {
            versions.push(v);
        }
    }
    if versions.is_empty() {
        return Err(WebConfigError::VersionRange);
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(WebConfigError::Versions)?;

    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth_type {
        "NoClientCert" | "" => {
            if t.client_ca_file.is_some() {
                return Err(WebConfigError::CaWithoutClientAuth);
            }
            builder.with_no_client_auth()
        }
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let ca = t
                .client_ca_file
                .as_ref()
                .ok_or_else(|| WebConfigError::NeedsClientCa(auth_type.to_string()))?;
            let ca = resolve(base, ca);
            let mut roots = RootCertStore::empty();
            for c in crate::fsread::read_pem_chain(&ca)? {
                roots.add(c).map_err(|source| WebConfigError::BadClientCa {
                    path: ca.clone(),
                    source,
                })?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let v = if auth_type == "VerifyClientCertIfGiven" {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(WebConfigError::Verifier)?)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(WebConfigError::UnverifiedClientAuth(auth_type.to_string()))
        }
        other => return Err(WebConfigError::UnknownClientAuth(other.to_string())),
    };
    let resolver = ReloadingCert::new(resolve(base, &t.cert_file), resolve(base, &t.key_file))?;
    let mut cfg = builder.with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, WebConfigError> {
    let certs: Vec<CertificateDer<'static>> = crate::fsread::read_pem_chain(cert)?;
    let (key_der, _) = crate::fsread::read_pem_key(key)?;
    let signing = crate::crypto_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| WebConfigError::UnsupportedKey {
            path: key.to_path_buf(),
            source,
        })?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .map_err(|source| WebConfigError::KeyMismatch {
            key: key.to_path_buf(),
            cert: cert.to_path_buf(),
            source,
        })?;
    Ok(Arc::new(ck))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Serves the certificate from files, re-reading them when they change.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<CertState>,
}

#[derive(Debug)]
struct CertState {
    current: Arc<CertifiedKey>,
    stamp: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl ReloadingCert {
    fn new(cert: PathBuf, key: PathBuf) -> Result<Self, WebConfigError> {
        let current = load_certified_key(&cert, &key)?;
        let stamp = (mtime(&cert), mtime(&key));
        Ok(Self {
            cert,
            key,
            state: Mutex::new(CertState {
                current,
                stamp,
                checked: Instant::now(),
            }),
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.elapsed() >= Duration::from_secs(1) {
            st.checked = Instant::now();
            let stamp = (mtime(&self.cert), mtime(&self.key));
            if stamp != st.stamp {
                match load_certified_key(&self.cert, &self.key) {
                    Ok(ck) => {
                        tracing::info!(cert = %self.cert.display(), "exporter TLS certificate reloaded");
                        st.current = ck;
                        st.stamp = stamp;
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::text::chain(&e), "exporter TLS certificate reload failed; keeping the previous one");
                    }
                }
            }
        }
        Some(st.current.clone())
    }
}

/// Basic-auth users with bcrypt hashes, and a cache of successful verifications.
pub struct BasicAuth {
    /// (SHA-256 of the user name, user name, bcrypt hash).
    users: Vec<([u8; 32], String, String)>,
    /// SHA-256 over (user, password, hash) of credentials that verified.
    cache: Mutex<HashSet<[u8; 32]>>,
    /// One dummy hash per cost the configured users have: an unknown user is verified against
    /// the dummy of a cost picked from the users' costs by a keyed hash of the name, so unknown
    /// names cost what known names cost, in the same proportions, and the same name always
    /// costs the same (issue 16, item 9).
    dummy_hashes: Vec<(u32, String)>,
    /// Random key of that pick (per process).
    dummy_key: [u8; 32],
    /// Failed logins per source (issue 16, item 3).
    pub guard: super::authguard::AuthGuard,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.users.iter().map(|u| u.1.as_str()).collect();
        f.debug_struct("BasicAuth")
            .field("users", &names)
            .finish_non_exhaustive()
    }
}

const CACHE_MAX: usize = 1024;

/// The outcome of checking an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Ok,
    /// Missing, malformed or wrong credentials.
    Denied,
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl BasicAuth {
    /// Users from the config; every hash must be a well-formed bcrypt hash.
    pub fn new(users: &BTreeMap<String, String>) -> Result<Self, WebConfigError> {
        let mut out = Vec::new();
        for (user, hash) in users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                // The hash itself is not echoed.
                return Err(WebConfigError::NotBcrypt(user.clone()));
            }
            out.push((sha(&[user.as_bytes()]), user.clone(), hash.clone()));
        }
        let mut costs: Vec<u32> = out
            .iter()
            .filter_map(|u| u.2.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .collect();
        costs.sort_unstable();
        costs.dedup();
        if costs.is_empty() {
            costs.push(10);
        }
        let dummy_hashes = costs
            .into_iter()
            .map(|cost| {
                bcrypt::hash("certprobe-dummy-password", cost)
                    .map(|h| (cost, h))
                    .map_err(WebConfigError::DummyHash)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            users: out,
            cache: Mutex::new(HashSet::new()),
            dummy_hashes,
            dummy_key: rand::random(),
            guard: super::authguard::AuthGuard::new(),
        })
    }

    /// The dummy hash an unknown `user` is checked against: the cost of the configured user
    /// that a keyed hash of the name points at.
    fn dummy_for(&self, user: &str) -> &str {
        let pick = sha(&[&self.dummy_key, user.as_bytes()]);
        let idx = u64::from_be_bytes(pick[..8].try_into().unwrap_or([0; 8])) as usize
            % self.users.len().max(1);
        let cost = self
            .users
            .get(idx)
            .and_then(|u| u.2.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost());
        self.dummy_hashes
            .iter()
            .find(|(c, _)| Some(*c) == cost)
            .or(self.dummy_hashes.first())
            .map(|(_, h)| h.as_str())
            .unwrap_or("")
    }

    /// The bcrypt cost a login as `user` is verified at (known or not).
    pub fn verification_cost(&self, user: &str) -> u32 {
        let user_key = sha(&[user.as_bytes()]);
        let hash = self
            .users
            .iter()
            .find(|(k, _, _)| ct_eq(k, &user_key))
            .map(|u| u.2.as_str())
            .unwrap_or_else(|| self.dummy_for(user));
        hash.parse::<bcrypt::HashParts>()
            .map(|p| p.get_cost())
            .unwrap_or(0)
    }

    /// Check an `Authorization` header value. Blocking (bcrypt) on a cache miss: call from a
    /// blocking context.
    pub fn check(&self, authorization: Option<&[u8]>) -> AuthResult {
        let Some((user, pass)) = authorization.and_then(parse_basic) else {
            return AuthResult::Denied;
        };
        let user_key = sha(&[user.as_bytes()]);
        // Constant-time lookup: look at every user, never stop early.
        let mut found: Option<&str> = None;
        for (k, _, hash) in &self.users {
            if ct_eq(k, &user_key) {
                found = Some(hash.as_str());
            }
        }
        let hash = found.unwrap_or_else(|| self.dummy_for(&user));
        let cache_key = sha(&[user.as_bytes(), pass.as_bytes(), hash.as_bytes()]);
        if found.is_some()
            && self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&cache_key)
        {
            return AuthResult::Ok;
        }
        let ok = bcrypt::verify(pass.as_bytes(), hash).unwrap_or(false) && found.is_some();
        if ok {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(cache_key);
            AuthResult::Ok
        } else {
            AuthResult::Denied
        }
    }

    /// True when these exact credentials verified before (no bcrypt needed).
    pub fn is_cached(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, pass)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let user_key = sha(&[user.as_bytes()]);
        let mut found: Option<&str> = None;
        for (k, _, hash) in &self.users {
            if ct_eq(k, &user_key) {
                found = Some(hash.as_str());
            }
        }
        found.is_some_and(|hash| {
            let key = sha(&[user.as_bytes(), pass.as_bytes(), hash.as_bytes()]);
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&key)
        })
    }
}

/// `Basic base64(user:password)` -> (user, password).
fn parse_basic(h: &[u8]) -> Option<(String, String)> {
    let h = std::str::from_utf8(h).ok()?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before: every unknown user was verified at the first user's cost, so a user with another
    /// cost answered measurably slower than any unknown name.
    #[test]
    fn unknown_users_cost_what_known_users_cost() {
        let mut users = BTreeMap::new();
        users.insert("alice".to_string(), bcrypt::hash("a", 4).unwrap());
        users.insert("bob".to_string(), bcrypt::hash("b", 6).unwrap());
        let auth = BasicAuth::new(&users).unwrap();
        assert_eq!(auth.verification_cost("alice"), 4);
        assert_eq!(auth.verification_cost("bob"), 6);
        let costs: Vec<u32> = (0..200)
            .map(|i| auth.verification_cost(&format!("guess{i}")))
            .collect();
        let at6 = costs.iter().filter(|c| **c == 6).count();
        assert!(costs.iter().all(|c| *c == 4 || *c == 6), "{costs:?}");
        assert!(
            (40..=160).contains(&at6),
            "{at6} of 200 unknown names at cost 6"
        );
        // Stable per name, like a real user.
        assert_eq!(
            auth.verification_cost("mallory"),
            auth.verification_cost("mallory")
        );
    }
}
