//! A bounded memo table shared by the chain caches (per-store verification verdicts, certificate
//! facts by DER digest). It never changes a result: callers only store what recomputation would
//! return. When it reaches its bound it starts over: a fleet presents far fewer distinct chains
//! than it has endpoints, and clearing keeps the bound without LRU bookkeeping on every hit.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

pub struct BoundedMemo<K, V> {
    cap: usize,
    map: Mutex<HashMap<K, V>>,
}

impl<K: Hash + Eq, V> BoundedMemo<K, V> {
    /// An empty memo that holds at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        // A panic while holding the lock cannot leave a half-written entry: keep using it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `read` makes of the entry for `key`, if there is one.
    pub fn get<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().get(key).and_then(read)
    }

    /// Store `value` under `key`; a full memo is emptied first (a key already present is
    /// replaced without clearing).
    pub fn insert(&self, key: K, value: V) {
        let mut m = self.lock();
        if m.len() >= self.cap && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_bound_and_replaces_existing_keys_in_place() {
        let m = BoundedMemo::new(3);
        for i in 0..3 {
            m.insert(i, i * 10);
        }
        m.insert(1, 11);
        assert_eq!(m.len(), 3, "replacing a present key does not clear");
        assert_eq!(m.get(&1, |v| Some(*v)), Some(11));
        m.insert(7, 70);
        assert_eq!(m.len(), 1, "a new key in a full memo starts over");
        assert_eq!(m.get(&7, |v| Some(*v)), Some(70));
        assert_eq!(m.get(&0, |v| Some(*v)), None);
        assert_eq!(
            m.get(&7, |v| (*v > 100).then_some(*v)),
            None,
            "read can refuse"
        );
    }
}
