//! The scheduler: one task per endpoint, each probing all of the endpoint's addresses on its own
//! interval, with jittered start times, a global concurrency bound, per-probe timeouts, DNS
//! re-resolution every round, and drain-on-shutdown. Scrapes never trigger probes.
//!
//! Size: about 610 lines of code; the rest (~200) are its tests.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Endpoint};
use crate::outcome::ProbeOutcome;
use crate::policy::Status;
use crate::report::PoolSummary;
use crate::runner::{self, EvalContext};

/// Where the scheduler delivers its results (the metrics registry in production; a collector in
/// tests).
pub trait OutcomeSink: Send + Sync + 'static {
    /// A fresh outcome for (endpoint, address); replaces the previous one.
    fn record(&self, outcome: &ProbeOutcome);
    /// These (endpoint, address) pairs no longer exist (address gone from DNS, endpoint removed).
    fn remove(&self, endpoint: &str, addresses: &[String]);
    /// Pool consistency after any member changed.
    fn pools(&self, pools: &[PoolSummary]);
    /// How late a probe started compared to its schedule, seconds.
    fn lag(&self, seconds: f64);
    /// A probe started more than one interval late (the scheduler is behind).
    fn behind(&self);
}

/// What the scheduler remembers of the last probe of one (endpoint, address): enough for change
/// detection, plus the whole outcome only where cross-endpoint rules need it.
#[derive(Debug, Clone)]
struct Latest {
    failed: bool,
    status: Status,
    leaf: Option<Box<str>>,
    /// The whole outcome, kept only for endpoints that take part in cross-endpoint rules (pool
    /// members, `same_issuer` partners): they are re-judged whenever a related endpoint is
    /// probed. Other endpoints keep a few bytes (the metrics layer keeps their last
    /// certificate facts itself).
    full: Option<Arc<ProbeOutcome>>,
}

impl Latest {
    fn of(o: &ProbeOutcome, keep_full: bool) -> Self {
        Self {
            failed: o.capture.failure.is_some(),
            status: o.evaluation.status,
            leaf: o.leaf_fingerprint().map(Box::from),
            full: keep_full.then(|| Arc::new(o.clone())),
        }
    }
}

#[derive(Debug, Default)]
struct EndpointLatest {
    /// (pool, profile) under which the endpoint is indexed for cross rules, when it is.
    indexed: Option<(Option<String>, String)>,
    /// Per address, sorted by address.
    addrs: Vec<(String, Latest)>,
}

#[derive(Debug, Default)]
struct Inner {
    endpoints: HashMap<String, EndpointLatest>,
    /// Pool -> member endpoints, and profile -> endpoints, of endpoints that keep full
    /// outcomes (so that a probe finds its related outcomes without scanning every endpoint).
    pools: HashMap<String, BTreeSet<String>>,
    profiles: HashMap<String, BTreeSet<String>>,
}

impl Inner {
    fn unindex(&mut self, name: &str) {
        let Some((pool, profile)) = self.endpoints.get_mut(name).and_then(|e| e.indexed.take())
        else {
            return;
        };
        if let Some(pool) = pool {
            if let Some(m) = self.pools.get_mut(&pool) {
                m.remove(name);
                if m.is_empty() {
                    self.pools.remove(&pool);
                }
            }
        }
        if let Some(m) = self.profiles.get_mut(&profile) {
            m.remove(name);
            if m.is_empty() {
                self.profiles.remove(&profile);
            }
        }
    }

    fn index(&mut self, name: &str, pool: Option<&String>, profile: &str) {
        if let Some(pool) = pool {
            self.pools
                .entry(pool.clone())
                .or_default()
                .insert(name.to_string());
        }
        self.profiles
            .entry(profile.to_string())
            .or_default()
            .insert(name.to_string());
        if let Some(e) = self.endpoints.get_mut(name) {
            e.indexed = Some((pool.cloned(), profile.to_string()));
        }
    }
}

/// Latest probe state per (endpoint, address), for pool consistency, carrying facts over failed
/// probes, and change detection. Every operation is proportional to one endpoint's addresses
/// (plus its related endpoints for cross rules), never to the whole fleet.
#[derive(Debug, Default)]
pub struct State {
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Store the fresh outcomes of `ep` (carrying facts over and logging changes); returns the
    /// addresses that were known before and are not any more.
    fn update(&self, ep: &Endpoint, outcomes: &mut [ProbeOutcome], keep_full: bool) -> Vec<String> {
        let name = &ep.meta.endpoint;
        let mut inner = self.lock();
        let entry = inner.endpoints.entry(name.clone()).or_default();
        let mut previous = std::mem::take(&mut entry.addrs);
        let mut fresh: Vec<(String, Latest)> = Vec::with_capacity(outcomes.len());
        for o in outcomes.iter_mut() {
            let prev = previous
                .iter()
                .position(|(a, _)| *a == o.series_key)
                .map(|i| previous.swap_remove(i).1);
            if keep_full {
                carry_over(o, prev.as_ref().and_then(|p| p.full.as_deref()));
            }
            log_changes(o, prev.as_ref());
            fresh.push((o.series_key.clone(), Latest::of(o, keep_full)));
        }
        fresh.sort_by(|a, b| a.0.cmp(&b.0));
        entry.addrs = fresh;
        let mut vanished: Vec<String> = previous.into_iter().map(|(a, _)| a).collect();
        vanished.sort();
        let want = keep_full.then(|| (ep.meta.pool.clone(), ep.meta.profile.clone()));
        if entry.indexed != want {
            inner.unindex(name);
            if keep_full {
                inner.index(name, ep.meta.pool.as_ref(), &ep.meta.profile);
            }
        }
        vanished
    }

    /// Addresses of `endpoint` seen by its last probe.
    fn addresses(&self, endpoint: &str) -> Vec<String> {
        self.lock()
            .endpoints
            .get(endpoint)
            .map(|e| e.addrs.iter().map(|(a, _)| a.clone()).collect())
            .unwrap_or_default()
    }

    /// Forget an endpoint; returns the addresses it had.
    fn forget(&self, endpoint: &str) -> Vec<String> {
        let mut inner = self.lock();
        inner.unindex(endpoint);
        inner
            .endpoints
            .remove(endpoint)
            .map(|e| e.addrs.into_iter().map(|(a, _)| a).collect())
            .unwrap_or_default()
    }

    /// Latest full outcomes of `ep`, of its pool's members, and of endpoints whose profile is in
    /// `profiles`, ordered by (endpoint, address).
    fn related(&self, ep: &Endpoint, profiles: &[String]) -> Vec<ProbeOutcome> {
        let inner = self.lock();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        names.insert(ep.meta.endpoint.as_str());
        if let Some(m) = ep.meta.pool.as_ref().and_then(|p| inner.pools.get(p)) {
            names.extend(m.iter().map(String::as_str));
        }
        for p in profiles {
            if let Some(m) = inner.profiles.get(p) {
                names.extend(m.iter().map(String::as_str));
            }
        }
        names
            .into_iter()
            .filter_map(|n| inner.endpoints.get(n))
            .flat_map(|e| e.addrs.iter())
            .filter_map(|(_, l)| l.full.as_deref().cloned())
            .collect()
    }

    /// Number of (endpoint, address) targets remembered.
    #[cfg(test)]
    fn targets(&self) -> usize {
        self.lock().endpoints.values().map(|e| e.addrs.len()).sum()
    }
}

/// Shared, swappable evaluation inputs: a reload that changes trust stores or policy reaches
/// running endpoint tasks at their next round without rescheduling them.
pub type SharedEval = watch::Receiver<EvalContext>;

/// A running scheduler.
pub struct Scheduler {
    sink: Arc<dyn OutcomeSink>,
    state: Arc<State>,
    semaphore: watch::Sender<Arc<Semaphore>>,
    concurrency: usize,
    eval_tx: watch::Sender<EvalContext>,
    tasks: JoinSet<()>,
    /// Per endpoint: (config digest, cancel token, addresses last seen).
    running: HashMap<String, (String, CancellationToken)>,
    root: CancellationToken,
    /// Endpoints that have not completed their first probe yet.
    pending_first: Arc<Mutex<HashSet<String>>>,
    first_round_tx: watch::Sender<bool>,
}

impl Scheduler {
    /// Start probing every endpoint of `cfg` that `owns` accepts.
    pub fn start(
        cfg: &Config,
        owns: impl Fn(&Endpoint) -> bool,
        sink: Arc<dyn OutcomeSink>,
        root: CancellationToken,
    ) -> Self {
        let (eval_tx, _) = watch::channel(EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        });
        let (first_round_tx, _) = watch::channel(false);
        let mut s = Self {
            sink,
            state: Arc::new(State::default()),
            semaphore: watch::channel(Arc::new(Semaphore::new(cfg.global.concurrency))).0,
            concurrency: cfg.global.concurrency,
            eval_tx,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            root,
            pending_first: Arc::new(Mutex::new(HashSet::new())),
            first_round_tx,
        };
        s.apply(cfg, owns);
        s
    }

    /// Latest outcomes.
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Becomes true once every endpoint has been probed once since start.
    pub fn first_round_done(&self) -> watch::Receiver<bool> {
        self.first_round_tx.subscribe()
    }

    /// Probes holding a concurrency permit right now.
    pub fn in_flight(&self) -> usize {
        self.concurrency
            .saturating_sub(self.semaphore.borrow().available_permits())
    }

    /// Number of endpoint tasks running.
    pub fn endpoint_count(&self) -> usize {
        self.running.len()
    }

    /// Apply a (new) config: endpoints whose digest is unchanged keep their task, state and
    /// schedule; removed ones stop and their series disappear; new or changed ones start with a
    /// jittered first probe.
    pub fn apply(&mut self, cfg: &Config, owns: impl Fn(&Endpoint) -> bool) {
        // Reap the tasks of endpoints cancelled by earlier reloads (a JoinSet keeps finished
        // tasks' results until joined: without this every reload leaked them).
        while self.tasks.try_join_next().is_some() {}
        self.eval_tx.send_replace(EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        });
        // A semaphore cannot shrink in place: a changed bound publishes a fresh one, which every
        // task uses from its next round (probes in flight finish on the old one).
        if cfg.global.concurrency != self.concurrency {
            self.concurrency = cfg.global.concurrency;
            self.semaphore
                .send_replace(Arc::new(Semaphore::new(cfg.global.concurrency)));
        }
        let wanted: HashMap<&str, &Arc<Endpoint>> = cfg
            .endpoints
            .iter()
            .filter(|e| owns(e))
            .map(|e| (e.meta.endpoint.as_str(), e))
            .collect();
        let current: Vec<String> = self.running.keys().cloned().collect();
        for name in current {
            let changed = match wanted.get(name.as_str()) {
                None => None,
                Some(e) => Some(self.running.get(&name).is_some_and(|(d, _)| *d != e.digest)),
            };
            match changed {
                Some(false) => {}
                // Changed: restart its task; keep its latest outcomes and series until the new
                // task's first probe replaces them (addresses that vanish are removed then).
                Some(true) => {
                    if let Some((_, token)) = self.running.remove(&name) {
                        token.cancel();
                    }
                }
                // Removed: stop it and drop its series.
                None => {
                    if let Some((_, token)) = self.running.remove(&name) {
                        token.cancel();
                    }
                    let addrs = self.forget(&name);
                    self.sink.remove(&name, &addrs);
                    if let Ok(mut p) = self.pending_first.lock() {
                        p.remove(&name);
                    }
                }
            }
        }
        for (name, ep) in wanted {
            if self.running.contains_key(name) {
                continue;
            }
            let token = self.root.child_token();
            self.running
                .insert(name.to_string(), (ep.digest.clone(), token.clone()));
            if let Ok(mut p) = self.pending_first.lock() {
                p.insert(name.to_string());
            }
            let task = EndpointTask {
                ep: Arc::clone(ep),
                eval: self.eval_tx.subscribe(),
                sink: self.sink.clone(),
                state: self.state.clone(),
                semaphore: self.semaphore.subscribe(),
                cancel: token,
                pending_first: self.pending_first.clone(),
                first_round_tx: self.first_round_tx.clone(),
                initial_delay: jitter(ep.interval),
            };
            self.tasks.spawn(task.run());
        }
        self.check_first_round();
    }

    fn check_first_round(&self) {
        let empty = self
            .pending_first
            .lock()
            .map(|p| p.is_empty())
            .unwrap_or(false);
        if empty {
            self.first_round_tx.send_replace(true);
        }
    }

    fn forget(&self, endpoint: &str) -> Vec<String> {
        self.state.forget(endpoint)
    }

    /// Drop the finished tasks of endpoints that earlier reloads cancelled (a `JoinSet` keeps a
    /// finished task's allocation until it is joined).
    pub fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Stop scheduling and wait up to `grace` for in-flight probes; abort what is left.
    pub async fn shutdown(mut self, grace: Duration) {
        self.root.cancel();
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(grace = ?grace, "in-flight probes did not finish within the grace period; aborting them");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

/// A uniformly random delay in [0, interval): spreads first probes so a start or reload does not
/// hit every endpoint at once.
fn jitter(interval: Duration) -> Duration {
    let max = interval.as_millis().min(u128::from(u64::MAX)) as u64;
    if max == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..max))
}

struct EndpointTask {
    ep: Arc<Endpoint>,
    eval: SharedEval,
    sink: Arc<dyn OutcomeSink>,
    state: Arc<State>,
    semaphore: watch::Receiver<Arc<Semaphore>>,
    cancel: CancellationToken,
    pending_first: Arc<Mutex<HashSet<String>>>,
    first_round_tx: watch::Sender<bool>,
    initial_delay: Duration,
}

impl EndpointTask {
    async fn run(self) {
        let mut due = Instant::now() + self.initial_delay;
        // Profiles linked to this endpoint's by a same_issuer rule, for the policy they were
        // computed from: recomputed only when a reload swaps the policy, not on every probe.
        let mut partners: Option<(Arc<crate::policy::Policy>, Vec<String>)> = None;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {}
            }
            let semaphore = self.semaphore.borrow().clone();
            let permit = tokio::select! {
                _ = self.cancel.cancelled() => return,
                p = semaphore.acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            };
            let started = Instant::now();
            let lag = started.saturating_duration_since(due);
            self.sink.lag(lag.as_secs_f64());
            if lag > self.ep.interval {
                self.sink.behind();
                tracing::warn!(endpoint = %self.ep.meta.endpoint, lag_seconds = lag.as_secs_f64(), "scheduler is behind: probe started more than one interval late");
            }
            let ctx = self.eval.borrow().clone();
            // A probe is bounded by its own connect/handshake timeouts; this outer bound also
            // covers DNS and the MTLS enforcement probe.
            let bound = self.ep.spec.connect_timeout * 2
                + self.ep.spec.handshake_timeout * 2
                + self.ep.revocation.timeout * 2
                + Duration::from_secs(5);
            // Boxed: an idle endpoint task then holds a pointer, not the probe's state machine
            // (10,000 idle tasks would otherwise each keep room for a whole probe).
            let probe = Box::pin(runner::probe_endpoint(&self.ep, &ctx));
            let outcomes = match tokio::time::timeout(bound, probe).await {
                Ok(o) => o,
                Err(_) => {
                    tracing::warn!(endpoint = %self.ep.meta.endpoint, bound_seconds = bound.as_secs_f64(), "probe exceeded its overall bound");
                    self.timed_out(bound, &ctx)
                }
            };
            drop(permit);
            let failed = outcomes.iter().any(|o| o.capture.failure.is_some());
            let linked = match &partners {
                Some((policy, linked)) if Arc::ptr_eq(policy, &ctx.policy) => linked,
                _ => {
                    let linked = runner::same_issuer_partners(&ctx.policy, &self.ep.meta.profile);
                    &partners.insert((ctx.policy.clone(), linked)).1
                }
            };
            self.deliver(outcomes, &ctx, linked);
            self.mark_first_done();
            let next_in = if failed {
                self.ep.retry_interval
            } else {
                self.ep.interval
            };
            due += next_in;
            let now = Instant::now();
            if due < now {
                // Never try to catch up with a burst: skip missed slots.
                due = now;
            }
        }
    }

    /// Outcomes for a probe that exceeded its overall bound: a `handshake_timeout` for every
    /// address seen before (so they do not look vanished), or `dns` when none was ever seen.
    fn timed_out(&self, bound: Duration, ctx: &EvalContext) -> Vec<ProbeOutcome> {
        let known = self.state.addresses(&self.ep.meta.endpoint);
        let now = runner::unix_now();
        let detail = format!("the probe did not finish within its overall bound of {bound:?}");
        let mk = |label: String, addr: std::net::SocketAddr, reason| {
            let mut c = crate::probe::Capture::new(addr, self.ep.spec.sent_sni());
            c.failure = Some(crate::probe::Failure::new(reason, detail.clone()));
            runner::evaluate_capture(&self.ep, label, c, ctx, now)
        };
        let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], self.ep.meta.port));
        if known.is_empty() {
            return vec![mk(
                "unresolved".into(),
                unspecified,
                crate::probe::FailureReason::Dns,
            )];
        }
        known
            .into_iter()
            .map(|key| {
                let (a, key_type) = ProbeOutcome::split_series_key(&key);
                let addr = a.parse().unwrap_or(unspecified);
                let label = a.to_string();
                let mut o = mk(label, addr, crate::probe::FailureReason::HandshakeTimeout);
                if key_type.is_some() {
                    o.capture.key_type = key_type;
                    o.series_key = key;
                }
                o
            })
            .collect()
    }

    fn mark_first_done(&self) {
        if let Ok(mut p) = self.pending_first.lock() {
            if p.remove(&self.ep.meta.endpoint) && p.is_empty() {
                self.first_round_tx.send_replace(true);
            }
        }
    }

    /// `partners`: profiles linked to this endpoint's by a `same_issuer` rule.
    fn deliver(&self, mut outcomes: Vec<ProbeOutcome>, ctx: &EvalContext, partners: &[String]) {
        let name = &self.ep.meta.endpoint;
        // Cross-endpoint rules: an endpoint in a pool or linked by a same_issuer rule is
        // re-judged with its related endpoints; only those keep their whole outcome.
        let cross = self.ep.meta.pool.is_some() || !partners.is_empty();
        let vanished = self.state.update(&self.ep, &mut outcomes, cross);
        if !vanished.is_empty() {
            tracing::info!(endpoint = %name, addresses = ?vanished, "addresses no longer resolved; their series are removed");
            self.sink.remove(name, &vanished);
        }
        if !cross {
            for o in &outcomes {
                self.sink.record(o);
            }
            return;
        }
        // Re-judge every outcome related to this endpoint (same pool, or linked by a
        // same_issuer rule) and re-record them all with the cross verdicts.
        drop(outcomes);
        let mut related = self.state.related(&self.ep, partners);
        let pools = runner::apply_cross_rules(&ctx.policy, &mut related);
        for o in &related {
            self.sink.record(o);
        }
        if !pools.is_empty() {
            self.sink.pools(&pools);
        }
    }
}

/// A probe that captured no chain keeps showing the last captured chain's facts, marked with
/// when they were captured.
fn carry_over(o: &mut ProbeOutcome, prev: Option<&ProbeOutcome>) {
    if o.report.is_some() {
        return;
    }
    if let Some(p) = prev {
        if let Some(r) = &p.report {
            o.report = Some(r.clone());
            o.report_from = Some(p.report_from.unwrap_or(p.finished_at));
            // The OAuth document is only fetched from an address that answered TLS: its last
            // judgement stays with the carried-over chain.
            if o.oauth.is_none() {
                o.oauth = p.oauth.clone();
            }
        }
    }
}

/// One structured event per state change, never per successful probe at info level.
fn log_changes(o: &ProbeOutcome, prev: Option<&Latest>) {
    let ep = &o.target.endpoint;
    let addr = &o.address;
    let was_ok = prev.map(|p| !p.failed);
    match (&o.capture.failure, was_ok) {
        (Some(f), Some(true) | None) => tracing::warn!(
            endpoint = %ep, address = %addr, reason = f.reason.as_str(), alert = f.alert.as_deref().unwrap_or(""),
            detail = %crate::text::quote_message(&f.detail), "probe failed"
        ),
        (Some(f), Some(false)) => {
            tracing::debug!(endpoint = %ep, address = %addr, reason = f.reason.as_str(), "probe still failing")
        }
        (None, Some(false)) => tracing::info!(endpoint = %ep, address = %addr, "probe recovered"),
        (None, _) => tracing::debug!(endpoint = %ep, address = %addr, "probe ok"),
    }
    if let (Some(p), Some(n)) = (prev.and_then(|p| p.leaf.as_deref()), o.leaf_fingerprint()) {
        if p != n && o.report_from.is_none() {
            tracing::info!(endpoint = %ep, address = %addr, old = %p, new = %n, "leaf certificate changed");
        }
    }
    let new_status = o.evaluation.status;
    let old_status = prev.map(|p| p.status);
    if old_status != Some(new_status) && (old_status.is_some() || new_status != Status::Ok) {
        let failing: Vec<&str> = o.evaluation.failing().map(|v| v.rule.as_str()).collect();
        tracing::info!(endpoint = %ep, address = %addr, old = ?old_status, new = ?new_status, rules = ?failing, "policy status changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BaseDir;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(String, Instant)>>);

    impl OutcomeSink for Collect {
        fn record(&self, o: &ProbeOutcome) {
            self.0
                .lock()
                .unwrap()
                .push((o.target.endpoint.clone(), Instant::now()));
        }
        fn remove(&self, _: &str, _: &[String]) {}
        fn pools(&self, _: &[PoolSummary]) {}
        fn lag(&self, _: f64) {}
        fn behind(&self) {}
    }

    fn config(n: usize, interval: &str) -> Config {
        // Port 1 on loopback refuses at once: each probe is a quick, real connect_refused.
        let mut y = format!("global: {{interval: {interval}, concurrency: 8}}\nendpoints:\n");
        for i in 0..n {
            y.push_str(&format!(
                "  - {{name: ep{i}, host: ep{i}.test, port: 1, resolve: [127.0.0.1]}}\n"
            ));
        }
        Config::from_yaml(&y, "<test>", BaseDir(".".into())).unwrap()
    }

    fn refused(cfg: &Config, ep: &Endpoint, ip: [u8; 4]) -> ProbeOutcome {
        let ctx = EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        };
        let addr = std::net::SocketAddr::from((ip, ep.meta.port));
        let mut c = crate::probe::Capture::new(addr, ep.spec.sni.clone());
        c.failure = Some(crate::probe::Failure::new(
            crate::probe::FailureReason::ConnectRefused,
            "refused",
        ));
        runner::evaluate_capture(ep, addr.to_string(), c, &ctx, 1.0)
    }

    #[test]
    fn state_keeps_whole_outcomes_only_for_cross_rule_members_and_finds_them_by_index() {
        let y = "endpoints:\n  - {name: a, host: a.test, port: 1, pool: p}\n  - {name: b, host: b.test, port: 1, pool: p}\n  - {name: c, host: c.test, port: 1}\n  - {name: d, host: d.test, port: 1, pool: q}\n";
        let cfg = Config::from_yaml(y, "<test>", BaseDir(".".into())).unwrap();
        let ep = |n: &str| cfg.endpoints.iter().find(|e| e.meta.endpoint == n).unwrap();
        let st = State::default();
        let mut a = vec![
            refused(&cfg, ep("a"), [127, 0, 0, 1]),
            refused(&cfg, ep("a"), [127, 0, 0, 2]),
        ];
        assert!(st.update(ep("a"), &mut a, true).is_empty());
        assert!(st
            .update(ep("b"), &mut [refused(&cfg, ep("b"), [127, 0, 0, 3])], true)
            .is_empty());
        assert!(st
            .update(
                ep("c"),
                &mut [refused(&cfg, ep("c"), [127, 0, 0, 4])],
                false
            )
            .is_empty());
        assert!(st
            .update(ep("d"), &mut [refused(&cfg, ep("d"), [127, 0, 0, 5])], true)
            .is_empty());
        let keys = |v: Vec<ProbeOutcome>| -> Vec<(String, String)> {
            v.into_iter()
                .map(|o| (o.target.endpoint.clone(), o.address))
                .collect()
        };
        let pool_p = vec![
            ("a".to_string(), "127.0.0.1:1".to_string()),
            ("a".to_string(), "127.0.0.2:1".to_string()),
            ("b".to_string(), "127.0.0.3:1".to_string()),
        ];
        assert_eq!(keys(st.related(ep("a"), &[])), pool_p);
        assert_eq!(keys(st.related(ep("b"), &[])), pool_p);
        // Not a cross member: remembered (addresses, status) but no whole outcome.
        assert!(st.related(ep("c"), &[]).is_empty());
        assert_eq!(st.addresses("c"), vec!["127.0.0.4:1".to_string()]);
        // Partner profiles pull in every indexed endpoint of that profile.
        assert_eq!(keys(st.related(ep("c"), &["default".to_string()])).len(), 4);
        // An address that is gone is reported once and dropped.
        let mut a = vec![refused(&cfg, ep("a"), [127, 0, 0, 2])];
        assert_eq!(
            st.update(ep("a"), &mut a, true),
            vec!["127.0.0.1:1".to_string()]
        );
        assert_eq!(st.targets(), 4);
        // Forgetting b removes it from its pool's index.
        assert_eq!(st.forget("b"), vec!["127.0.0.3:1".to_string()]);
        assert_eq!(
            keys(st.related(ep("a"), &[])),
            vec![("a".to_string(), "127.0.0.2:1".to_string())]
        );
        // Leaving cross rules (keep_full false) drops the whole outcome and the index entry.
        st.update(
            ep("d"),
            &mut [refused(&cfg, ep("d"), [127, 0, 0, 5])],
            false,
        );
        assert!(!st.lock().pools.contains_key("q"));
        assert!(st.related(ep("d"), &[]).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn first_probes_spread_over_the_interval_then_repeat_every_interval() {
        let cfg = config(100, "60s");
        let sink = Arc::new(Collect::default());
        let start = Instant::now();
        let sched = Scheduler::start(&cfg, |_| true, sink.clone(), CancellationToken::new());
        tokio::time::sleep(Duration::from_secs(125)).await;
        let records = sink.0.lock().unwrap().clone();
        let mut first: HashMap<String, Duration> = HashMap::new();
        let mut per: HashMap<String, Vec<Duration>> = HashMap::new();
        for (e, t) in &records {
            first.entry(e.clone()).or_insert(*t - start);
            per.entry(e.clone()).or_default().push(*t - start);
        }
        assert_eq!(first.len(), 100, "every endpoint probed");
        // Spread: every 10 s slice of the first interval saw first probes (no thundering herd).
        let mut buckets = [0usize; 6];
        for d in first.values() {
            assert!(*d < Duration::from_secs(61), "first probe at {d:?}");
            buckets[(d.as_secs() / 10).min(5) as usize] += 1;
        }
        assert!(buckets.iter().all(|b| *b > 0), "{buckets:?}");
        assert!(buckets.iter().all(|b| *b < 50), "{buckets:?}");
        // Then each endpoint keeps its own 60 s cadence.
        for (e, times) in &per {
            assert!(times.len() >= 2, "{e}: {times:?}");
            let gap = times[1] - times[0];
            assert!(
                gap >= Duration::from_secs(59) && gap <= Duration::from_secs(61),
                "{e}: gap {gap:?}"
            );
        }
        sched.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_unchanged_endpoints_schedule_and_drops_removed_ones() {
        let cfg = config(3, "10s");
        let sink = Arc::new(Collect::default());
        let mut sched = Scheduler::start(&cfg, |_| true, sink.clone(), CancellationToken::new());
        tokio::time::sleep(Duration::from_secs(25)).await;
        let before = sink.0.lock().unwrap().len();
        assert!(before >= 6, "{before}");
        // Drop ep2; ep0/ep1 are unchanged (same digest) and keep running.
        let mut smaller = cfg.clone();
        smaller.endpoints.retain(|e| e.meta.endpoint != "ep2");
        sched.apply(&smaller, |_| true);
        assert_eq!(sched.endpoint_count(), 2);
        sink.0.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let after = sink.0.lock().unwrap().clone();
        assert!(after.iter().all(|(e, _)| e != "ep2"), "{after:?}");
        for e in ["ep0", "ep1"] {
            let n = after.iter().filter(|(x, _)| x == e).count();
            assert!(
                (2..=4).contains(&n),
                "{e}: {n} probes in 30 s at a 10 s interval"
            );
        }
        sched.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn reloads_that_restart_endpoints_do_not_accumulate_finished_tasks() {
        let sink = Arc::new(Collect::default());
        let mut sched =
            Scheduler::start(&config(3, "10s"), |_| true, sink, CancellationToken::new());
        for i in 0..50 {
            let mut c = config(3, "10s");
            for e in c.endpoints.iter_mut() {
                let e = Arc::make_mut(e);
                e.digest = format!("{}-{i}", e.digest);
            }
            sched.apply(&c, |_| true);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sched.endpoint_count(), 3);
        // Only the 3 live tasks and at most the last round of cancelled ones remain.
        assert!(sched.tasks.len() <= 6, "{} tasks held", sched.tasks.len());
        // The daemon's housekeeping reaps the last round's cancelled tasks too.
        tokio::time::sleep(Duration::from_millis(10)).await;
        sched.reap();
        assert_eq!(sched.tasks.len(), 3, "only the live tasks remain");
        sched.shutdown(Duration::from_secs(1)).await;
    }
}
