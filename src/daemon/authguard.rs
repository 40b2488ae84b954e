//! What a failed basic-auth login costs the one who sent it (issue 16, item 3).
//!
//! bcrypt is deliberately slow, so every password guess costs the daemon a verification; a
//! flood of wrong passwords used to queue a legitimate first login behind all of them (200
//! clients: 6.3 s). The guard keeps, per source (an IPv4 address, or the /64 of an IPv6
//! address), its consecutive failures and the time before which it is not verified again:
//!
//! - at most one verification per source is running or queued at once (a second concurrent
//!   attempt from the same source is answered 429 at once, without bcrypt);
//! - the first [`FREE_FAILURES`] consecutive failures cost nothing more (typos, a scrape job
//!   with an old password); after the n-th (n > 4) the source waits
//!   `min(250 ms × 2^(n-5), 30 s)`, and until then its non-cached attempts are answered 429
//!   with `Retry-After`, without bcrypt: a single guesser is down to about two guesses a
//!   minute after a few minutes;
//! - a success clears the source; failures are forgotten after 15 minutes without one;
//! - at most [`MAX_WAITING`] verifications wait for a bcrypt slot at once (beyond: 429);
//! - the table holds at most [`MAX_SOURCES`] sources (~100 bytes each): when full, expired
//!   entries go first, else the entry whose backoff ends soonest.
//!
//! Credentials that verified before are answered from the cache before the guard is asked,
//! so a scrape with good cached credentials stays fast even from a source in backoff.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sources tracked at once.
pub const MAX_SOURCES: usize = 4096;
/// Verifications allowed to wait for a bcrypt slot at once.
pub const MAX_WAITING: usize = 32;
/// Consecutive failures of a source before it is made to wait.
pub const FREE_FAILURES: u32 = 4;
/// Backoff after the first failure beyond the free ones; doubles with each further one.
pub const BASE_BACKOFF: Duration = Duration::from_millis(250);
/// Longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failures are forgotten after this long without another.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Where a login attempt came from: an IPv4 address or an IPv6 /64 (one host usually owns a
/// whole /64, so rotating addresses inside it buys nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    /// The upper 64 bits.
    V6(u64),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(u32::from(v4)),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
    in_flight: bool,
}

/// Why an attempt is refused before bcrypt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source is in backoff for this long.
    Backoff(Duration),
    /// The source already has a verification running or queued.
    Busy,
    /// Too many verifications are waiting for a slot.
    QueueFull,
}

impl Refusal {
    /// Seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refusal::Backoff(d) => d.as_millis().div_ceil(1000).max(1) as u64,
            Refusal::Busy | Refusal::QueueFull => 1,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    sources: HashMap<Source, Entry>,
    waiting: usize,
}

/// The per-source failure table. One per listener (process).
#[derive(Debug, Default)]
pub struct AuthGuard {
    state: Mutex<State>,
}

/// A verification allowed to run; report its result with [`Admission::finish`]. Dropping it
/// without reporting (e.g. a cancelled request) releases the source's slot.
#[derive(Debug)]
pub struct Admission<'a> {
    guard: &'a AuthGuard,
    source: Source,
    waiting: bool,
    done: bool,
}

fn backoff(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let shift = (failures - FREE_FAILURES - 1).min(20);
    BASE_BACKOFF.saturating_mul(1u32 << shift).min(MAX_BACKOFF)
}

impl AuthGuard {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May `source` run a bcrypt verification now? `Ok` counts it as waiting for a slot
    /// until [`Admission::started`].
    pub fn admit(&self, source: Source, now: Instant) -> Result<Admission<'_>, Refusal> {
        let mut st = self.lock();
        if let Some(e) = st.sources.get_mut(&source) {
            if now.duration_since(e.last_failure) >= FORGET_AFTER && !e.in_flight {
                e.failures = 0;
            }
            if e.in_flight {
                return Err(Refusal::Busy);
            }
            if e.failures > 0 && now < e.blocked_until {
                return Err(Refusal::Backoff(e.blocked_until - now));
            }
        }
        if st.waiting >= MAX_WAITING {
            return Err(Refusal::QueueFull);
        }
        if !st.sources.contains_key(&source) && st.sources.len() >= MAX_SOURCES {
            evict_one(&mut st.sources, now);
        }
        st.sources
            .entry(source)
            .or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: now,
                in_flight: false,
            })
            .in_flight = true;
        st.waiting += 1;
        Ok(Admission {
            guard: self,
            source,
            waiting: true,
            done: false,
        })
    }

    /// Sources tracked now (for tests and the bound).
    pub fn tracked(&self) -> usize {
        self.lock().sources.len()
    }
}

/// Make room for one entry: one whose failures are forgotten or that has none and is idle,
/// else the one whose backoff ends soonest.
fn evict_one(map: &mut HashMap<Source, Entry>, now: Instant) {
    let victim = map
        .iter()
        .filter(|(_, e)| !e.in_flight)
        .min_by_key(|(_, e)| {
            let stale = e.failures == 0 || now.duration_since(e.last_failure) >= FORGET_AFTER;
            (!stale, e.blocked_until)
        })
        .map(|(k, _)| *k);
    if let Some(k) = victim {
        map.remove(&k);
    }
}

impl Admission<'_> {
    /// The verification got its bcrypt slot (it no longer counts as waiting).
    pub fn started(&mut self) {
        if self.waiting {
            self.waiting = false;
            let mut st = self.guard.lock();
            st.waiting = st.waiting.saturating_sub(1);
        }
    }

    /// Record the outcome: a success clears the source, a failure extends its backoff.
    pub fn finish(mut self, ok: bool, now: Instant) {
        self.done = true;
        let mut st = self.guard.lock();
        if self.waiting {
            st.waiting = st.waiting.saturating_sub(1);
            self.waiting = false;
        }
        if ok {
            st.sources.remove(&self.source);
        } else if let Some(e) = st.sources.get_mut(&self.source) {
            e.in_flight = false;
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
            e.blocked_until = now + backoff(e.failures);
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.guard.lock();
        if self.waiting {
            st.waiting = st.waiting.saturating_sub(1);
        }
        match st.sources.get_mut(&self.source) {
            Some(e) if e.failures == 0 => {
                st.sources.remove(&self.source);
            }
            Some(e) => e.in_flight = false,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Source {
        Source::from(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn failures_back_off_exponentially_and_success_clears() {
        let g = AuthGuard::new();
        let t0 = Instant::now();
        let a = src("192.0.2.1");
        for _ in 0..FREE_FAILURES {
            g.admit(a, t0).unwrap().finish(false, t0);
        }
        g.admit(a, t0).unwrap().finish(false, t0);
        assert_eq!(
            g.admit(a, t0).unwrap_err(),
            Refusal::Backoff(Duration::from_millis(250))
        );
        let t1 = t0 + Duration::from_millis(250);
        g.admit(a, t1).unwrap().finish(false, t1);
        assert_eq!(
            g.admit(a, t1).unwrap_err(),
            Refusal::Backoff(Duration::from_millis(500))
        );
        // Another source is not affected.
        g.admit(src("192.0.2.2"), t1).unwrap().finish(true, t1);
        let mut t = t1;
        for _ in 0..20 {
            t += MAX_BACKOFF;
            g.admit(a, t).unwrap().finish(false, t);
        }
        assert_eq!(g.admit(a, t).unwrap_err(), Refusal::Backoff(MAX_BACKOFF));
        assert_eq!(Refusal::Backoff(MAX_BACKOFF).retry_after_secs(), 30);
        t += MAX_BACKOFF;
        g.admit(a, t).unwrap().finish(true, t);
        assert!(g.admit(a, t).is_ok(), "a success clears the source");
    }

    #[test]
    fn one_verification_per_source_and_a_bounded_queue() {
        let g = AuthGuard::new();
        let t = Instant::now();
        let first = g.admit(src("192.0.2.1"), t).unwrap();
        assert_eq!(g.admit(src("192.0.2.1"), t).unwrap_err(), Refusal::Busy);
        drop(first);
        assert!(
            g.admit(src("192.0.2.1"), t).is_ok(),
            "a dropped attempt frees the source"
        );
        let held: Vec<_> = (0..MAX_WAITING as u32)
            .map(|i| g.admit(Source::V4(1000 + i), t).unwrap())
            .collect();
        assert_eq!(
            g.admit(src("192.0.2.9"), t).unwrap_err(),
            Refusal::QueueFull
        );
        drop(held);
        assert!(g.admit(src("192.0.2.9"), t).is_ok());
    }

    #[test]
    fn ipv6_sources_are_grouped_by_64_and_the_table_is_bounded() {
        assert_eq!(src("2001:db8:1:2::1"), src("2001:db8:1:2:ffff::9"));
        assert_ne!(src("2001:db8:1:2::1"), src("2001:db8:1:3::1"));
        assert_eq!(src("::ffff:192.0.2.1"), src("192.0.2.1"));
        let g = AuthGuard::new();
        let t = Instant::now();
        for i in 0..(MAX_SOURCES as u32 * 3) {
            for _ in 0..=FREE_FAILURES {
                g.admit(Source::V4(i), t).unwrap().finish(false, t);
            }
        }
        assert_eq!(g.tracked(), MAX_SOURCES);
        // The newest failures are kept (the evicted ones' backoff ended soonest or as soon).
        let last = Source::V4(MAX_SOURCES as u32 * 3 - 1);
        assert!(matches!(g.admit(last, t), Err(Refusal::Backoff(_))));
    }
}
