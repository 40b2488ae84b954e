//! Orchestration shared by `probe --once`, the daemon and `/probe`: resolve an endpoint, probe
//! every address, analyze the chain and evaluate the policy.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::UnixTime;
use tokio::sync::Semaphore;

use crate::chain::{self, NameCheck, TrustStores};
use crate::config::Endpoint;
use crate::outcome::ProbeOutcome;
use crate::policy::{self, EndpointContext, Policy};
use crate::probe::{self, Capture, FailureReason};

/// What evaluation needs besides the capture: stores, policy, and the moment to judge at.
#[derive(Clone)]
pub struct EvalContext {
    pub stores: Arc<TrustStores>,
    pub policy: Arc<Policy>,
    /// Evaluate as of this Unix time instead of the probe's finish time (`--at`).
    pub at: Option<i64>,
}

/// Current Unix time, fractional seconds. The only clock read on the probe path; evaluation
/// receives it as an argument.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Turn a capture into an evaluated outcome. Pure apart from its inputs.
pub fn evaluate_capture(
    ep: &Endpoint,
    address_label: String,
    capture: Capture,
    ctx: &EvalContext,
    finished_at: f64,
) -> ProbeOutcome {
    let now = ctx.at.unwrap_or(finished_at as i64);
    let unix_now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let name_check = ep.spec.sni.clone().map(|name| NameCheck {
        name,
        allow_cn_fallback: ctx.policy.allows_cn_fallback(&ep.meta.profile),
    });
    let report = (!capture.chain.is_empty())
        .then(|| chain::analyze(&capture.chain, name_check.as_ref(), &ctx.stores, unix_now));
    let ectx = EndpointContext {
        endpoint: ep.meta.endpoint.clone(),
        host: ep.meta.host.clone(),
        pool: ep.meta.pool.clone(),
        name: ep.spec.sni.clone(),
        expected_names: ep.expected_names.clone(),
        expect_client_auth_required: ep.spec.expect_client_auth
            == probe::handshake::ClientAuthExpectation::Required,
    };
    let empty = empty_report();
    let evaluation = policy::evaluate(
        &ctx.policy,
        &ep.meta.profile,
        &capture,
        report.as_ref().unwrap_or(&empty),
        &ectx,
        now,
    );
    ProbeOutcome {
        target: ep.meta.clone(),
        address: address_label,
        capture,
        report,
        evaluation,
        client_cert_not_after: ep.client_cert.as_ref().map(|c| c.not_after),
        report_from: None,
        finished_at,
    }
}

fn empty_report() -> chain::ChainReport {
    chain::analyze(
        &[],
        None,
        &TrustStores::default(),
        UnixTime::since_unix_epoch(std::time::Duration::ZERO),
    )
}

/// Probe one endpoint: resolve, probe each address concurrently, evaluate.
pub async fn probe_endpoint(ep: &Endpoint, ctx: &EvalContext) -> Vec<ProbeOutcome> {
    let captures = if ep.resolve.is_empty() {
        probe::probe_endpoint(&ep.spec, ep.addresses).await
    } else {
        let addrs: Vec<SocketAddr> = ep
            .resolve
            .iter()
            .map(|ip| SocketAddr::new(*ip, ep.meta.port))
            .collect();
        probe::probe_addresses(&ep.spec, &addrs).await
    };
    let finished = unix_now();
    captures
        .into_iter()
        .map(|c| {
            let label = if c.address.ip().is_unspecified()
                && c.failure
                    .as_ref()
                    .is_some_and(|f| f.reason == FailureReason::Dns)
            {
                "unresolved".to_string()
            } else {
                c.address.to_string()
            };
            evaluate_capture(ep, label, c, ctx, finished)
        })
        .collect()
}

/// Probe every endpoint once with at most `concurrency` endpoints in flight; results keep the
/// endpoint order.
pub async fn probe_all(
    endpoints: &[Endpoint],
    concurrency: usize,
    ctx: &EvalContext,
) -> Vec<ProbeOutcome> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, ep) in endpoints.iter().cloned().enumerate() {
        let sem = sem.clone();
        let ctx = ctx.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, probe_endpoint(&ep, &ctx).await)
        });
    }
    let mut results: Vec<(usize, Vec<ProbeOutcome>)> = Vec::with_capacity(endpoints.len());
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => results.push(v),
            Err(e) => tracing::error!(error = %e, "probe task failed"),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().flat_map(|(_, v)| v).collect()
}

/// Pool consistency after a round: every address of every endpoint in a pool must present the
/// same leaf certificate (or at least the same key). Pools whose members present different keys
/// are inconsistent.
pub fn pool_summaries(
    _policy: &Policy,
    outcomes: &[ProbeOutcome],
) -> Vec<crate::report::PoolSummary> {
    use std::collections::BTreeMap;
    let mut by_pool: BTreeMap<&str, Vec<&ProbeOutcome>> = BTreeMap::new();
    for o in outcomes {
        if let Some(p) = o.target.pool.as_deref() {
            by_pool.entry(p).or_default().push(o);
        }
    }
    by_pool
        .into_iter()
        .map(|(pool, members)| {
            let leaves: Vec<(&str, &crate::chain::CertFacts)> = members
                .iter()
                .filter_map(|o| {
                    o.report
                        .as_ref()
                        .and_then(|r| r.leaf())
                        .map(|l| (o.address.as_str(), l))
                })
                .collect();
            let mut fps: Vec<&str> = leaves
                .iter()
                .map(|(_, l)| l.fingerprint_sha256.as_str())
                .collect();
            fps.sort_unstable();
            fps.dedup();
            let mut keys: Vec<&str> = leaves.iter().map(|(_, l)| l.spki_sha256.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            let (consistent, detail) = if leaves.len() < 2 {
                (
                    true,
                    format!("{} member(s) with a certificate", leaves.len()),
                )
            } else if fps.len() == 1 {
                (
                    true,
                    format!("{} members present the same certificate", leaves.len()),
                )
            } else if keys.len() == 1 {
                (
                    true,
                    format!(
                        "{} members, {} certificates, same key",
                        leaves.len(),
                        fps.len()
                    ),
                )
            } else {
                let list: Vec<String> = members
                    .iter()
                    .filter_map(|o| {
                        o.leaf_fingerprint().map(|f| {
                            format!(
                                "{}@{}={}",
                                o.target.endpoint,
                                o.address,
                                &f[..f.len().min(12)]
                            )
                        })
                    })
                    .collect();
                (
                    false,
                    format!("{} different keys: {}", keys.len(), list.join(", ")),
                )
            };
            crate::report::PoolSummary {
                pool: pool.to_string(),
                consistent,
                status: if consistent {
                    crate::policy::Status::Ok
                } else {
                    crate::policy::Status::Critical
                },
                detail,
            }
        })
        .collect()
}
