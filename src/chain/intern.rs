//! Sharing of equal chain reports (issue 19, scale). A fleet presents far fewer distinct chains
//! than it has endpoints (a wildcard leaf behind a thousand names, the same intermediate
//! everywhere), and every consumer that keeps an outcome (the status page's board, the
//! scheduler's cross-rule state, a carried-over report) kept its own copy of a report of ~7 KB.
//! [`share_report`] hands out one `Arc` per distinct report instead.
//!
//! It never changes a result: a report is only replaced by one that is *equal* to it (`==` over
//! every field, the certificates' facts, store verdicts, hostname verdict, revocation and AIA
//! results included), so what a consumer reads is exactly what the analysis computed. The key
//! (the presented certificates' fingerprints) only finds the candidates. Bounded: at most
//! [`INTERN_KEYS`] keys of [`INTERN_VARIANTS`] reports each (the oldest variant of a key goes
//! first); a full table starts over, like [`super::memo::BoundedMemo`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::ChainReport;

/// Most distinct chains (by presented certificates) the report table remembers.
pub const INTERN_KEYS: usize = 1024;
/// Most distinct reports kept per chain (the same chain seen under other names, stores or
/// revocation states).
pub const INTERN_VARIANTS: usize = 4;

/// A bounded table of shared values: equal values (by `==`) under the same key come back as the
/// same `Arc`.
pub struct Interner<K, T> {
    keys: usize,
    variants: usize,
    map: Mutex<HashMap<K, Vec<Arc<T>>>>,
}

impl<K: std::hash::Hash + Eq, T: PartialEq> Interner<K, T> {
    /// An empty table of at most `keys` keys with at most `variants` values each (both >= 1).
    pub fn new(keys: usize, variants: usize) -> Self {
        Self {
            keys: keys.max(1),
            variants: variants.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Vec<Arc<T>>>> {
        // A panic while holding the lock cannot leave a half-written entry: keep using it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared copy of `value`: an equal value already in the table under `key`, else
    /// `value` itself, now remembered.
    pub fn share(&self, key: K, value: T) -> Arc<T> {
        let mut m = self.lock();
        if let Some(vs) = m.get_mut(&key) {
            if let Some(v) = vs.iter().find(|v| ***v == value) {
                return v.clone();
            }
            let v = Arc::new(value);
            if vs.len() >= self.variants {
                vs.remove(0);
            }
            vs.push(v.clone());
            return v;
        }
        if m.len() >= self.keys {
            m.clear();
        }
        let v = Arc::new(value);
        m.insert(key, vec![v.clone()]);
        v
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

static REPORTS: std::sync::LazyLock<Interner<Box<str>, ChainReport>> =
    std::sync::LazyLock::new(|| Interner::new(INTERN_KEYS, INTERN_VARIANTS));

/// The key of a report: the fingerprints of its presented certificates, in order, and its parse
/// errors' positions (what identifies the chain; everything else is compared by `==`).
fn report_key(r: &ChainReport) -> Box<str> {
    let mut k = String::with_capacity(r.certs.len() * 65 + 8);
    for c in &r.certs {
        k.push_str(&c.fingerprint_sha256);
        k.push(',');
    }
    for (p, _) in &r.parse_errors {
        k.push_str(&p.to_string());
        k.push('!');
    }
    k.into_boxed_str()
}

/// `report`, shared with every equal report handed out before (process-wide table).
pub fn share_report(report: ChainReport) -> Arc<ChainReport> {
    REPORTS.share(report_key(&report), report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_arc_and_unequal_ones_do_not() {
        let t: Interner<u8, String> = Interner::new(8, 2);
        let a = t.share(1, "x".to_string());
        let b = t.share(1, "x".to_string());
        assert!(Arc::ptr_eq(&a, &b));
        let c = t.share(1, "y".to_string());
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, "y", "a value is never replaced by an unequal one");
        let d = t.share(2, "x".to_string());
        assert!(!Arc::ptr_eq(&a, &d), "another key is another entry");
        assert_eq!(*d, "x");
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn bounded_in_variants_per_key_and_in_keys() {
        let t: Interner<u32, u32> = Interner::new(3, 2);
        let first = t.share(0, 10);
        t.share(0, 11);
        t.share(0, 12);
        assert_eq!(t.len(), 2, "the oldest variant of a key goes first");
        assert!(!Arc::ptr_eq(&first, &t.share(0, 10)), "10 was evicted");
        assert_eq!(t.len(), 2);
        t.share(1, 1);
        t.share(2, 2);
        assert_eq!(t.len(), 4);
        t.share(3, 3);
        assert_eq!(t.len(), 1, "a new key in a full table starts over");
        assert_eq!(*t.share(3, 3), 3);
    }

    #[test]
    fn shared_reports_are_equal_to_what_was_computed() {
        let stores = crate::chain::TrustStores::default();
        let now = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::ZERO);
        let r1 = crate::chain::analyze(&[], None, &stores, now);
        let r2 = crate::chain::analyze(&[], None, &stores, now);
        let a = share_report(r1.clone());
        let b = share_report(r2);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, r1);
        let mut other = r1.clone();
        other.inferences.push("different".into());
        let c = share_report(other.clone());
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, other);
        assert_eq!(*share_report(r1.clone()), r1);
    }
}
