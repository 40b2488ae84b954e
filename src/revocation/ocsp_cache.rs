//! The process-wide OCSP cache: one fetch per (responder, CertID) however many endpoints
//! present the certificate, kept until the response's nextUpdate or `max_age` (whichever is
//! sooner), single-flight, the last good response kept (and reported stale) when a refetch
//! fails, bounded in entries (least recently used evicted). Requests carry no nonce, so a
//! response is cacheable (AD CS's Online Responder serves cached, pre-signed responses).
//!
//! The same cache type, with another size bound and no nextUpdate, holds the CA certificates
//! fetched from AIA caIssuers URLs ([`aia_global`]): one fetch per URL for the whole process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use super::fetch::{self, Fetched, Validators};
use super::{Reason, RevocationConfig};

/// (responder, CertID) pairs the cache may hold.
pub const MAX_ENTRIES: usize = 16_384;
/// After a failed fetch, the responder is not asked again for that certificate for this long
/// (capped by `max_age`).
pub const FAILURE_BACKOFF_SECS: f64 = 60.0;

/// What the cache knows of one (responder, CertID).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The responder URL (from the certificate's AIA).
    pub responder: String,
    /// The last response received with HTTP 200 (judged by `ocsp::check`, not here).
    pub body: Option<Arc<[u8]>>,
    /// nextUpdate announced by `body` (scheduling only).
    pub next_update: Option<i64>,
    pub fetched_at: f64,
    pub attempted_at: f64,
    pub last_error: Option<Reason>,
    pub attempts: u64,
    last_used: u64,
}

impl Entry {
    /// The response held is a last good copy kept after a failed refetch.
    pub fn stale(&self) -> bool {
        self.body.is_some() && self.last_error.is_some()
    }

    fn fresh(&self, cfg: &RevocationConfig, now: f64) -> bool {
        let max_age = cfg.max_age.as_secs_f64();
        if self.attempts == 0 {
            return false;
        }
        if self.last_error.is_some() {
            return now < self.attempted_at + max_age.min(FAILURE_BACKOFF_SECS);
        }
        let refresh = match self.next_update.map(|t| t as f64) {
            Some(nu) if nu > self.fetched_at => max_age.min(nu - self.fetched_at),
            Some(_) => max_age.min(FAILURE_BACKOFF_SECS),
            None => max_age,
        };
        now < self.fetched_at + refresh
    }
}

struct Slot {
    fetching: tokio::sync::Mutex<()>,
    state: Mutex<Entry>,
}

/// A cache of small HTTP bodies keyed by URL. [`global`] is the process's OCSP cache,
/// [`aia_global`] its AIA caIssuers cache.
pub struct OcspCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    tick: AtomicU64,
    /// Largest body accepted (`too_large` beyond).
    max_bytes: u64,
    /// The nextUpdate a body announces (refetch no later than it).
    next_update_of: fn(&[u8]) -> Option<i64>,
}

impl Default for OcspCache {
    fn default() -> Self {
        Self::new(
            super::ocsp::MAX_RESPONSE_BYTES as u64,
            super::ocsp::announced_next_update,
        )
    }
}

static GLOBAL: LazyLock<OcspCache> = LazyLock::new(OcspCache::default);
static AIA: LazyLock<OcspCache> =
    LazyLock::new(|| OcspCache::new(super::aia::MAX_CERT_BYTES as u64, |_| None));

/// The process-wide OCSP cache.
pub fn global() -> &'static OcspCache {
    &GLOBAL
}

/// The process-wide cache of certificates fetched from AIA caIssuers URLs.
pub fn aia_global() -> &'static OcspCache {
    &AIA
}

impl OcspCache {
    /// A cache of bodies up to `max_bytes`, refreshed no later than `next_update_of(body)`.
    pub fn new(max_bytes: u64, next_update_of: fn(&[u8]) -> Option<i64>) -> Self {
        Self {
            slots: Mutex::default(),
            tick: AtomicU64::new(0),
            max_bytes,
            next_update_of,
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slots.get(key) {
            return s.clone();
        }
        if slots.len() >= MAX_ENTRIES {
            let victim = slots
                .iter()
                .min_by_key(|(_, s)| {
                    s.state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .last_used
                })
                .map(|(k, _)| k.clone());
            if let Some(v) = victim {
                slots.remove(&v);
            }
        }
        let s = Arc::new(Slot {
            fetching: tokio::sync::Mutex::new(()),
            state: Mutex::new(Entry::default()),
        });
        slots.insert(key.to_string(), s.clone());
        s
    }

    /// The entry of `get_url` (the responder URL with the encoded request appended), fetching
    /// it first when it is not fresh under `cfg` at `now` (Unix seconds, wall clock).
    pub async fn get(
        &self,
        responder: &str,
        get_url: &str,
        cfg: &RevocationConfig,
        now: f64,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Entry {
        let slot = self.slot(get_url);
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.last_used = tick;
            if st.responder.is_empty() {
                st.responder = responder.to_string();
            }
            if st.fresh(cfg, now) {
                return st.clone();
            }
        }
        let _guard = slot.fetching.lock().await;
        {
            let st = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            if st.fresh(cfg, crate::runner::unix_now().max(now)) {
                return st.clone();
            }
        }
        let bounded = RevocationConfig {
            max_crl_bytes: self.max_bytes,
            ..cfg.clone()
        };
        let result = fetch::get(get_url, &bounded, &Validators::default(), tls).await;
        let done = crate::runner::unix_now();
        let mut st = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.attempts += 1;
        st.attempted_at = done;
        match result {
            Ok(Fetched::Body { body, .. }) => {
                st.next_update = (self.next_update_of)(&body);
                st.body = Some(Arc::from(body));
                st.fetched_at = done;
                st.last_error = None;
            }
            Ok(Fetched::NotModified) => st.last_error = Some(Reason::HttpStatus),
            Err(e) => st.last_error = Some(e),
        }
        st.clone()
    }

    /// Every cached entry that was attempted, sorted by responder (metrics).
    pub fn snapshot(&self) -> Vec<Entry> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Entry> = slots
            .values()
            .map(|s| {
                s.state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .filter(|e| e.attempts > 0)
            .collect();
        out.sort_by(|a, b| a.responder.cmp(&b.responder));
        out
    }
}
