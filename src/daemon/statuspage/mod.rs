//! The operator's status page (issue 17): `GET /` (the fleet, worst first), `GET
//! /endpoint/NAME` (everything about one endpoint), `?format=json` on both, and the static
//! assets they use.
//!
//! - [`StatusBoard`] keeps the latest outcome of every (endpoint, address) the scheduler
//!   delivered, the pool verdicts, and a bounded history of leaf and status changes per
//!   endpoint. It is fed by the same sink that feeds the metrics registry, so the page and
//!   `/metrics` show the same outcomes.
//! - [`render`] turns a snapshot of the board into HTML: pure functions of (outcomes, pools,
//!   history, query, now), unit-tested without a server. Every string that comes from a
//!   certificate or a server goes through [`render::esc`].
//! - The assets (`app.css`, `app.js`) are compiled into the binary (no CDN, no fonts: air-gapped
//!   estates), served from `static/` so that the Content-Security-Policy can forbid inline
//!   scripts and styles.

pub mod render;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use crate::outcome::ProbeOutcome;
use crate::policy::Status;
use crate::report::PoolSummary;

/// History entries kept per endpoint (oldest dropped first).
pub const HISTORY_CAP: usize = 32;

/// How much older than the shown outcome a delivered one may be and still be ignored.
const STALE_WINDOW_SECS: f64 = 3600.0;

/// Rows per page of the fleet table unless `--web.page-size` says otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// The page's stylesheet (served as `static/app.css`).
pub const APP_CSS: &str = include_str!("app.css");
/// The page's script: live filtering only; the page works without it (served as
/// `static/app.js`).
pub const APP_JS: &str = include_str!("app.js");

/// The Content-Security-Policy of every page: scripts and styles only from this origin (no
/// inline script, no inline event handler, no inline style), no plugins, no framing, forms only
/// to this origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What changed, in an endpoint's history.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The leaf certificate presented at an address changed (`from` None: first seen).
    Leaf {
        from: Option<String>,
        to: String,
        /// Subject of the new leaf.
        subject: String,
    },
    /// The rolled-up status of an address changed (`from` None: first probe).
    Status {
        from: Option<Status>,
        to: Status,
        /// Rules that failed or warned in the new state.
        rules: Vec<String>,
    },
}

/// One history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// Unix seconds (the probe's finish time).
    pub at: f64,
    /// The series key (`ip:port`, `ip:port/rsa`).
    pub address: String,
    pub change: Change,
}

/// One endpoint on the board.
#[derive(Debug, Clone, Default)]
pub struct EndpointEntry {
    /// Latest outcome per series key, sorted by series key.
    pub targets: Vec<Arc<ProbeOutcome>>,
    /// Newest last, at most [`HISTORY_CAP`].
    pub history: VecDeque<HistoryEvent>,
}

#[derive(Debug, Default)]
struct Inner {
    endpoints: BTreeMap<String, EndpointEntry>,
    pools: BTreeMap<String, PoolSummary>,
}

/// The latest outcomes, pool verdicts and change history the page shows.
#[derive(Debug, Default)]
pub struct StatusBoard {
    inner: RwLock<Inner>,
    /// `--web.disable-status-page`: nothing is kept (every method is a no-op) and the page's
    /// routes answer 404.
    disabled: bool,
}

/// A consistent copy of the board (cheap: the outcomes are shared).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every target, ordered by (endpoint, series key).
    pub outcomes: Vec<Arc<ProbeOutcome>>,
    pub pools: Vec<PoolSummary>,
}

fn failing_rules(o: &ProbeOutcome) -> Vec<String> {
    o.evaluation
        .failing()
        .map(|v| v.rule.as_str().to_string())
        .collect()
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// A board that keeps nothing (`--web.disable-status-page`: no memory spent on the page).
    pub fn disabled() -> Self {
        Self {
            disabled: true,
            ..Self::default()
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.disabled
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh outcome of one (endpoint, address): replaces the previous one, and appends to the
    /// endpoint's history when its leaf or status changed.
    /// A probe that captured no chain keeps showing the previous chain's facts, marked with
    /// when they were captured (as the metrics do).
    pub fn record(&self, o: &ProbeOutcome) {
        if self.disabled {
            return;
        }
        let mut fresh = o.clone();
        // The raw DER (chain, OCSP staple) is neither shown nor serialized (the parsed facts
        // are): not kept, a few KB less per target.
        fresh.capture.chain = Vec::new();
        fresh.capture.ocsp_staple = None;
        let mut inner = self.write();
        let entry = inner
            .endpoints
            .entry(o.target.endpoint.clone())
            .or_default();
        let pos = entry
            .targets
            .binary_search_by(|t| t.series_key.as_str().cmp(&o.series_key));
        // An older outcome than the one shown (the scheduler re-judging a pool with its own copy
        // of a member that "probe now" refreshed since) does not replace it. Bounded to an hour
        // so that a wall clock stepped back cannot freeze the board.
        if let Ok(i) = pos {
            let shown = entry.targets[i].finished_at;
            if o.finished_at < shown && shown - o.finished_at < STALE_WINDOW_SECS {
                return;
            }
        }
        if let (None, Ok(i)) = (&fresh.report, pos) {
            let p = &entry.targets[i];
            if p.report.is_some() {
                fresh.report = p.report.clone();
                fresh.report_from = Some(p.report_from.unwrap_or(p.finished_at));
            }
        }
        let carried = fresh.report_from.is_some();
        let fresh = Arc::new(fresh);
        let prev = match pos {
            Ok(i) => Some(std::mem::replace(&mut entry.targets[i], fresh.clone())),
            Err(i) => {
                entry.targets.insert(i, fresh);
                None
            }
        };
        let mut push = |change| {
            if entry.history.len() == HISTORY_CAP {
                entry.history.pop_front();
            } else if entry.history.len() == entry.history.capacity() {
                // Exact growth: most endpoints only ever hold their first leaf and status (two
                // events), and the board holds one history per endpoint.
                entry.history.reserve_exact(1);
            }
            entry.history.push_back(HistoryEvent {
                at: o.finished_at,
                address: o.series_key.clone(),
                change,
            });
        };
        let old_leaf = prev.as_ref().and_then(|p| p.leaf_fingerprint());
        if let Some(new_leaf) = o.leaf_fingerprint() {
            // A carried-over report (no chain this time) is not a change.
            if old_leaf != Some(new_leaf) && !carried {
                push(Change::Leaf {
                    from: old_leaf.map(str::to_string),
                    to: new_leaf.to_string(),
                    subject: o
                        .report
                        .as_ref()
                        .and_then(|r| r.leaf())
                        .map(|l| l.subject.clone())
                        .unwrap_or_default(),
                });
            }
        }
        let old_status = prev.as_ref().map(|p| p.evaluation.status);
        if old_status != Some(o.evaluation.status) {
            push(Change::Status {
                from: old_status,
                to: o.evaluation.status,
                rules: failing_rules(o),
            });
        }
    }

    /// These (endpoint, series key) targets no longer exist; an endpoint left without targets is
    /// forgotten with its history.
    pub fn remove(&self, endpoint: &str, addresses: &[String]) {
        let mut inner = self.write();
        let Some(entry) = inner.endpoints.get_mut(endpoint) else {
            return;
        };
        entry
            .targets
            .retain(|t| !addresses.iter().any(|a| *a == t.series_key));
        if entry.targets.is_empty() {
            inner.endpoints.remove(endpoint);
        }
    }

    /// Forget every endpoint not in `names` (a reload removed them).
    pub fn retain_endpoints(&self, names: &std::collections::HashSet<String>) {
        self.write().endpoints.retain(|n, _| names.contains(n));
    }

    /// Latest pool verdicts (replacing those of the same pools).
    pub fn record_pools(&self, pools: &[PoolSummary]) {
        if self.disabled {
            return;
        }
        let mut inner = self.write();
        for p in pools {
            inner.pools.insert(p.pool.clone(), p.clone());
        }
    }

    /// Forget the verdicts of pools not in `pools`.
    pub fn retain_pools(&self, pools: &std::collections::HashSet<String>) {
        self.write().pools.retain(|p, _| pools.contains(p));
    }

    /// Every target and pool verdict.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.read();
        Snapshot {
            outcomes: inner
                .endpoints
                .values()
                .flat_map(|e| e.targets.iter().cloned())
                .collect(),
            pools: inner.pools.values().cloned().collect(),
        }
    }

    /// One endpoint: its entry, the outcomes of its pool's other members, and its pool verdict.
    pub fn endpoint(&self, name: &str) -> Option<EndpointView> {
        let inner = self.read();
        let entry = inner.endpoints.get(name)?.clone();
        let pool = entry.targets.first().and_then(|t| t.target.pool.clone());
        let (members, summary) = match &pool {
            Some(p) => (
                inner
                    .endpoints
                    .iter()
                    .filter(|(n, _)| n.as_str() != name)
                    .flat_map(|(_, e)| e.targets.iter())
                    .filter(|t| t.target.pool.as_deref() == Some(p.as_str()))
                    .cloned()
                    .collect(),
                inner.pools.get(p).cloned(),
            ),
            None => (Vec::new(), None),
        };
        Some(EndpointView {
            entry,
            pool_members: members,
            pool: summary,
        })
    }

    /// The latest outcomes of the endpoints related to `endpoint` by cross-endpoint rules: the
    /// members of `pool` and the endpoints whose profile is in `profiles` (the endpoint itself
    /// excluded).
    pub fn related(
        &self,
        endpoint: &str,
        pool: Option<&str>,
        profiles: &[String],
    ) -> Vec<ProbeOutcome> {
        let inner = self.read();
        inner
            .endpoints
            .iter()
            .filter(|(n, _)| n.as_str() != endpoint)
            .flat_map(|(_, e)| e.targets.iter())
            .filter(|t| {
                (pool.is_some() && t.target.pool.as_deref() == pool)
                    || profiles.contains(&t.target.profile)
            })
            .map(|t| (**t).clone())
            .collect()
    }
}

/// What the detail page of one endpoint shows.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub entry: EndpointEntry,
    /// Latest outcomes of the other members of the endpoint's pool.
    pub pool_members: Vec<Arc<ProbeOutcome>>,
    pub pool: Option<PoolSummary>,
}

#[cfg(test)]
mod tests;
