//! The process-wide CRL cache: one fetch per URL however many endpoints share it, kept until
//! nextUpdate or `max_age` (whichever is sooner), single-flight (concurrent probes wait on the
//! same fetch), conditional GET, last good copy kept and reported stale when a refetch fails,
//! bounded (entries and memory, least recently used evicted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc as StdArc;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use super::crl::ParsedCrl;
use super::fetch::{self, Fetched, Validators};
use super::{Reason, RevocationConfig};

/// Total memory the cache may hold (DER plus serial sets); least recently used URLs are evicted
/// past it.
pub const DEFAULT_MEMORY_CAP: usize = 256 * 1024 * 1024;
/// URLs the cache may hold.
pub const MAX_URLS: usize = 4096;
/// After a failed fetch, the URL is not tried again for this long (capped by `max_age`).
pub const FAILURE_BACKOFF_SECS: f64 = 60.0;
/// A CRL already past its nextUpdate is refetched at most this often (capped by `max_age`).
pub const EXPIRED_REFRESH_SECS: f64 = 300.0;

/// What the cache knows of one URL.
#[derive(Debug, Clone, Default)]
pub struct UrlState {
    /// The last good copy.
    pub crl: Option<Arc<ParsedCrl>>,
    /// Unix time of the last fetch that produced (or confirmed, 304) `crl`.
    pub fetched_at: f64,
    /// Unix time of the last attempt.
    pub attempted_at: f64,
    /// Why the last attempt failed (None when it succeeded).
    pub last_error: Option<Reason>,
    pub validators: Validators,
    /// Completed attempts, and failed ones.
    pub attempts: u64,
    pub failures: u64,
    last_used: u64,
}

impl UrlState {
    /// The copy is a last good copy kept after a failed refetch.
    pub fn stale(&self) -> bool {
        self.crl.is_some() && self.last_error.is_some()
    }

    fn fresh(&self, cfg: &RevocationConfig, now: f64) -> bool {
        let max_age = cfg.max_age.as_secs_f64();
        if self.attempts == 0 {
            return false;
        }
        if self.last_error.is_some() {
            return now < self.attempted_at + max_age.min(FAILURE_BACKOFF_SECS);
        }
        let Some(crl) = &self.crl else { return false };
        let refresh = match crl.next_update.map(|t| t as f64) {
            Some(nu) if nu > self.fetched_at => max_age.min(nu - self.fetched_at),
            Some(_) => max_age.min(EXPIRED_REFRESH_SECS),
            None => max_age,
        };
        now < self.fetched_at + refresh
    }
}

struct Slot {
    /// Held while fetching: concurrent probes of the same URL wait here and then read the
    /// result instead of fetching again.
    fetching: tokio::sync::Mutex<()>,
    state: Mutex<UrlState>,
}

/// The cache. [`global`] is the process's.
pub struct CrlCache {
    slots: Mutex<HashMap<String, StdArc<Slot>>>,
    tick: AtomicU64,
    memory_cap: usize,
}

impl Default for CrlCache {
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_CAP)
    }
}

static GLOBAL: LazyLock<CrlCache> = LazyLock::new(CrlCache::default);

/// The process-wide cache.
pub fn global() -> &'static CrlCache {
    &GLOBAL
}

impl CrlCache {
    pub fn new(memory_cap: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
            memory_cap,
        }
    }

    fn slot(&self, url: &str) -> StdArc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slots.get(url) {
            return s.clone();
        }
        if slots.len() >= MAX_URLS {
            evict_lru(&mut slots, 1);
        }
        let s = StdArc::new(Slot {
            fetching: tokio::sync::Mutex::new(()),
            state: Mutex::new(UrlState::default()),
        });
        slots.insert(url.to_string(), s.clone());
        s
    }

    /// The state of `url`, fetching it first when the cached copy is not fresh under `cfg` at
    /// `now` (Unix seconds, wall clock).
    pub async fn get(
        &self,
        url: &str,
        cfg: &RevocationConfig,
        now: f64,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> UrlState {
        let slot = self.slot(url);
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.last_used = tick;
            if st.fresh(cfg, now) {
                return st.clone();
            }
        }
        let _guard = slot.fetching.lock().await;
        let validators = {
            let st = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            // Another probe fetched it while this one waited.
            if st.fresh(cfg, crate::runner::unix_now().max(now)) {
                return st.clone();
            }
            if st.crl.is_some() {
                st.validators.clone()
            } else {
                Validators::default()
            }
        };
        let result = fetch::get(url, cfg, &validators, tls).await;
        let done = crate::runner::unix_now();
        let parsed = match result {
            Ok(Fetched::Body {
                body,
                etag,
                last_modified,
            }) => tokio::task::spawn_blocking(move || {
                ParsedCrl::parse(body).map(|c| Some((Arc::new(c), etag, last_modified)))
            })
            .await
            .unwrap_or(Err(Reason::BadDer)),
            Ok(Fetched::NotModified) => Ok(None),
            Err(e) => Err(e),
        };
        let out = {
            let mut st = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.attempts += 1;
            st.attempted_at = done;
            match parsed {
                Ok(Some((crl, etag, last_modified))) => {
                    st.crl = Some(crl);
                    st.fetched_at = done;
                    st.last_error = None;
                    st.validators = Validators {
                        etag,
                        last_modified,
                    };
                }
                Ok(None) if st.crl.is_some() => {
                    st.fetched_at = done;
                    st.last_error = None;
                }
                Ok(None) => {
                    st.failures += 1;
                    st.last_error = Some(Reason::HttpStatus);
                }
                Err(e) => {
                    st.failures += 1;
                    st.last_error = Some(e);
                }
            }
            st.clone()
        };
        self.enforce_memory_cap(url);
        out
    }

    /// Evict least recently used URLs (never `keep`) until the cached CRLs fit the cap.
    fn enforce_memory_cap(&self, keep: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let total: usize = slots.values().map(|s| memory_of(s)).sum();
            if total <= self.memory_cap {
                return;
            }
            let victim = slots
                .iter()
                .filter(|(u, s)| u.as_str() != keep && memory_of(s) > 0)
                .min_by_key(|(_, s)| last_used(s))
                .map(|(u, _)| u.clone());
            match victim {
                Some(v) => {
                    slots.remove(&v);
                }
                None => return,
            }
        }
    }

    /// Every cached URL with its state, sorted by URL (metrics).
    pub fn snapshot(&self) -> Vec<(String, UrlState)> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, UrlState)> = slots
            .iter()
            .map(|(u, s)| {
                (
                    u.clone(),
                    s.state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                )
            })
            .filter(|(_, s)| s.attempts > 0)
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Memory held by the cached CRLs.
    pub fn memory(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.values().map(|s| memory_of(s)).sum()
    }
}

fn memory_of(s: &Slot) -> usize {
    s.state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .crl
        .as_ref()
        .map_or(0, |c| c.memory())
}

fn last_used(s: &Slot) -> u64 {
    s.state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last_used
}

fn evict_lru(slots: &mut HashMap<String, StdArc<Slot>>, n: usize) {
    for _ in 0..n {
        let victim = slots
            .iter()
            .min_by_key(|(_, s)| last_used(s))
            .map(|(u, _)| u.clone());
        if let Some(v) = victim {
            slots.remove(&v);
        }
    }
}
