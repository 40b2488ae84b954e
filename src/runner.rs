//! Orchestration shared by `probe --once`, the daemon and `/probe`: resolve an endpoint, probe
//! every address, analyze the chain and evaluate the policy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls_pki_types::UnixTime;

use crate::chain::{self, TrustStores};
use crate::config::Endpoint;
use crate::outcome::ProbeOutcome;
use crate::policy::cross::Member;
use crate::policy::{self, EndpointContext, Policy, Status, Verdict};
use crate::probe::{self, Capture, FailureReason};
use crate::report::PoolSummary;

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
#[allow(clippy::disallowed_methods)] // the one clock read
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Turn a capture into an evaluated outcome. Pure apart from its inputs. Revocation is not
/// checked (nothing is fetched); [`evaluate_capture_checked`] checks it.
pub fn evaluate_capture(
    ep: &Endpoint,
    address_label: String,
    capture: Capture,
    ctx: &EvalContext,
    finished_at: f64,
) -> ProbeOutcome {
    let report = analyze_capture(ep, &capture, &[], ctx, finished_at);
    finish_evaluation(ep, address_label, capture, report, ctx, finished_at)
}

/// [`evaluate_capture`] with revocation: the CRLs of the verified path are fetched through the
/// process-wide cache between chain analysis and policy evaluation, then judged (a pure
/// function of the fetched CRLs and the evaluation time).
pub async fn evaluate_capture_checked(
    ep: &Endpoint,
    address_label: String,
    capture: Capture,
    ctx: &EvalContext,
    finished_at: f64,
) -> ProbeOutcome {
    let mut report = analyze_capture(ep, &capture, &[], ctx, finished_at);
    // An incomplete chain: its missing issuers from the AIA caIssuers URLs (only hosts in
    // `revocation.allow_hosts`), then the chain analyzed again with them, as Windows does.
    if let Some(r) = report
        .as_ref()
        .filter(|_| !ep.revocation.aia_hosts.is_empty())
    {
        let tls = crate::revocation::fetch::tls_config_cached(&ctx.stores);
        if let Some((certs, aia)) =
            crate::revocation::aia::chase(r, &ctx.stores, &ep.revocation, Some(tls), unix_now())
                .await
        {
            if !certs.is_empty() {
                report = analyze_capture(ep, &capture, &certs, ctx, finished_at);
            }
            if let Some(r) = report.as_mut() {
                r.aia = Some(aia);
            }
        }
    }
    if let Some(r) = report.as_mut() {
        let cfg = &ep.revocation;
        if cfg.method != crate::revocation::Method::Off {
            let subjects = crate::revocation::plan(r, &ctx.stores);
            let staple = match (&capture.ocsp_staple, capture.ocsp_staple_bytes) {
                (Some(b), _) => Some(Ok(b.clone())),
                (None, Some(_)) => Some(Err(crate::revocation::Reason::TooLarge)),
                (None, None) => None,
            };
            let fetched = crate::revocation::fetch_plan(
                &subjects,
                cfg,
                staple,
                Some(crate::revocation::fetch::tls_config_cached(&ctx.stores)),
                unix_now(),
            )
            .await;
            let now = ctx.at.unwrap_or(finished_at as i64);
            r.revocation = Some(crate::revocation::judge(&subjects, &fetched, cfg, now));
        }
    }
    finish_evaluation(ep, address_label, capture, report, ctx, finished_at)
}

fn analyze_capture(
    ep: &Endpoint,
    capture: &Capture,
    aia: &[rustls_pki_types::CertificateDer<'static>],
    ctx: &EvalContext,
    finished_at: f64,
) -> Option<chain::ChainReport> {
    let now = ctx.at.unwrap_or(finished_at as i64);
    let unix_now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    // Every probed address gets a hostname verdict: the SNI, else the host itself (an IP
    // literal is checked against the leaf's IP SANs, as a client connecting to it would).
    let name_check = ep
        .spec
        .expected_name()
        .map(|name| ctx.policy.name_check(&ep.meta.profile, name));
    (!capture.chain.is_empty()).then(|| {
        chain::analyze_with_aia(
            &capture.chain,
            aia,
            name_check.as_ref(),
            &ctx.stores,
            unix_now,
        )
    })
}

fn finish_evaluation(
    ep: &Endpoint,
    address_label: String,
    capture: Capture,
    report: Option<chain::ChainReport>,
    ctx: &EvalContext,
    finished_at: f64,
) -> ProbeOutcome {
    let now = ctx.at.unwrap_or(finished_at as i64);
    let expected_name = ep.spec.expected_name();
    let ectx = EndpointContext {
        endpoint: ep.meta.endpoint.clone(),
        host: ep.meta.host.clone(),
        pool: ep.meta.pool.clone(),
        name: expected_name.map(str::to_string),
        expected_names: ep.expected_names.clone(),
        expect_client_auth_required: ep.spec.expect_client_auth
            == probe::handshake::ClientAuthExpectation::Required,
        client_cert_configured: ep.spec.client_identity.is_some(),
        discovered: ep.discovered.clone(),
    };
    let empty;
    let judged = match report.as_ref() {
        Some(r) => r,
        None => {
            empty = empty_report();
            &empty
        }
    };
    let mut evaluation =
        policy::evaluate(&ctx.policy, &ep.meta.profile, &capture, judged, &ectx, now);
    incomplete_handshake_is_not_ok(&capture, &mut evaluation);
    ProbeOutcome {
        target: ep.meta.clone(),
        series_key: ProbeOutcome::series_key_for(&address_label, capture.key_type),
        address: address_label,
        capture,
        // Shared with every equal report (a fleet's identical chains): one copy, not one per
        // endpoint, wherever outcomes are kept.
        report: report.map(chain::intern::share_report),
        // Likewise: equal evaluations (same chain, names and profile) are one copy.
        evaluation: policy::share_evaluation(evaluation),
        client_cert_not_after: ep.client_cert.as_ref().map(|c| c.not_after),
        report_from: None,
        oauth: None,
        finished_at,
    }
}

/// One status per row, consistent with its reason (issue 16, item 12): a chain captured from
/// a handshake that then failed (e.g. a server that renegotiates and aborts, `tls_error`) is
/// judged by the policy like any chain, but the probe did not complete, so an `OK` verdict
/// becomes `WARNING` with a note. Two failures stay as judged because rules judge them: a
/// rejected client certificate (`mtls_enforced`, `client_cert_accepted`) and a legacy-only
/// server whose chain came from the legacy capture (`protocol_version`, the TLS version rules).
fn incomplete_handshake_is_not_ok(capture: &Capture, evaluation: &mut policy::Evaluation) {
    let Some(f) = capture.failure.as_ref() else {
        return;
    };
    if evaluation.status != Status::Ok
        || matches!(
            f.reason,
            FailureReason::ClientCertRejected | FailureReason::ProtocolVersion
        )
    {
        return;
    }
    evaluation.status = Status::Warning;
    evaluation.info.push(format!(
        "the handshake did not complete ({}): status WARNING although every rule passed on the captured chain",
        f.reason
    ));
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
    let mut out = Vec::with_capacity(captures.len());
    let remote_dns = ep
        .spec
        .proxy
        .as_ref()
        .is_some_and(|p| p.kind == probe::proxy::ProxyKind::Socks5h);
    let mut oauth_fetched = std::collections::HashSet::new();
    for c in captures {
        let label = if c.address.ip().is_unspecified() && remote_dns {
            // Resolved by the socks5h proxy: the name is the target.
            format!("{}:{}", ep.meta.host, ep.meta.port)
        } else if c.address.ip().is_unspecified()
            && c.failure
                .as_ref()
                .is_some_and(|f| f.reason == FailureReason::Dns)
        {
            "unresolved".to_string()
        } else {
            c.address.to_string()
        };
        let mut o = evaluate_capture_checked(ep, label, c, ctx, finished).await;
        // The OAuth metadata document, once per address (a dual-certificate server is probed
        // once per key type), and only from an address that answered TLS.
        if let Some(s) = ep.oauth.as_ref() {
            if o.report.is_some()
                && !o.capture.address.ip().is_unspecified()
                && oauth_fetched.insert(o.capture.address)
            {
                o.oauth = Some(Box::new(oauth_metadata(ep, s, &o, ctx).await));
            }
        }
        out.push(o);
    }
    out
}

/// Fetch and judge the OAuth metadata document of the address `o` probed (src/oauth.rs): a
/// fresh TLS connection to the same address with the endpoint's name (SNI, else host).
async fn oauth_metadata(
    ep: &Endpoint,
    settings: &crate::oauth::OAuthSettings,
    o: &ProbeOutcome,
    ctx: &EvalContext,
) -> crate::oauth::OAuthReport {
    let name = ep.spec.expected_name().unwrap_or(&ep.meta.host).to_string();
    let addr = o.capture.address;
    let tls = crate::revocation::fetch::tls_config_cached(&ctx.stores);
    let timeout = ep.spec.connect_timeout + ep.spec.handshake_timeout;
    let fetched = crate::oauth::fetch(&name, addr, timeout, tls).await;
    let now = ctx.at.unwrap_or(unix_now() as i64);
    let ectx = EndpointContext {
        endpoint: ep.meta.endpoint.clone(),
        host: ep.meta.host.clone(),
        pool: ep.meta.pool.clone(),
        ..Default::default()
    };
    let issuers: Vec<rustls_pki_types::CertificateDer<'static>> =
        o.capture.chain.iter().skip(1).cloned().collect();
    crate::oauth::judge(
        fetched,
        &crate::oauth::JudgeInput {
            settings,
            policy: &ctx.policy,
            stores: &ctx.stores,
            issuers: &issuers,
            ctx: &ectx,
            address: addr,
            url: crate::oauth::url_for(&name, addr.port()),
            now,
        },
    )
}

/// Probe every endpoint once with at most `concurrency` endpoints in flight; results keep the
/// endpoint order.
///
/// `concurrency` worker tasks take the next endpoint from a shared counter and store each result
/// in its slot as soon as it is evaluated: no task per endpoint waiting on a semaphore, and the
/// caller is woken once per worker, not once per probe. A worker that panics (a bug) is logged
/// and replaced while endpoints remain; the endpoint it was probing gets a `tls_error` outcome
/// ("probe task failed"), as a panicking address task does in `probe::probe_addresses`.
pub async fn probe_all(
    endpoints: &[Arc<Endpoint>],
    concurrency: usize,
    ctx: &EvalContext,
) -> Vec<ProbeOutcome> {
    let probe_ctx = ctx.clone();
    let probe = move |ep: Arc<Endpoint>| {
        let ctx = probe_ctx.clone();
        async move { probe_endpoint(&ep, &ctx).await }
    };
    probe_all_with(endpoints, concurrency, ctx, probe).await
}

/// [`probe_all`] with the per-endpoint probe as a parameter (tests inject a panicking one).
async fn probe_all_with<F, Fut>(
    endpoints: &[Arc<Endpoint>],
    concurrency: usize,
    ctx: &EvalContext,
    probe: F,
) -> Vec<ProbeOutcome>
where
    F: Fn(Arc<Endpoint>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<ProbeOutcome>> + Send + 'static,
{
    let round = Arc::new(Round {
        endpoints: endpoints.to_vec(),
        next: AtomicUsize::new(0),
        slots: Mutex::new((0..endpoints.len()).map(|_| None).collect()),
        probe,
    });
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1).min(endpoints.len()) {
        set.spawn(Arc::clone(&round).work());
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "probe task failed");
            if round.next.load(Ordering::Relaxed) < round.endpoints.len() {
                set.spawn(Arc::clone(&round).work());
            }
        }
    }
    let slots = std::mem::take(&mut *round.slots.lock().unwrap_or_else(PoisonError::into_inner));
    slots
        .into_iter()
        .zip(&round.endpoints)
        .flat_map(|(slot, ep)| slot.unwrap_or_else(|| vec![task_failed(ep, ctx)]))
        .collect()
}

/// The outcome of an endpoint whose probe task panicked.
fn task_failed(ep: &Endpoint, ctx: &EvalContext) -> ProbeOutcome {
    let mut capture = Capture::new(
        SocketAddr::from(([0, 0, 0, 0], ep.meta.port)),
        ep.spec.sent_sni(),
    );
    capture.failure = Some(probe::Failure::new(
        FailureReason::TlsError,
        "probe task failed",
    ));
    let label = capture.address.to_string();
    evaluate_capture(ep, label, capture, ctx, unix_now())
}

/// One `probe_all` round shared by its workers.
struct Round<F> {
    endpoints: Vec<Arc<Endpoint>>,
    next: AtomicUsize,
    /// One slot per endpoint, filled when its probe is evaluated.
    slots: Mutex<Vec<Option<Vec<ProbeOutcome>>>>,
    probe: F,
}

impl<F, Fut> Round<F>
where
    F: Fn(Arc<Endpoint>) -> Fut,
    Fut: std::future::Future<Output = Vec<ProbeOutcome>>,
{
    async fn work(self: Arc<Self>) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(ep) = self.endpoints.get(i) else {
                return;
            };
            let outcomes = (self.probe)(Arc::clone(ep)).await;
            self.slots.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(outcomes);
        }
    }
}

/// Cross-endpoint rules over one round of outcomes: `pool_consistency` (every member of a pool
/// presents the same certificate, or the same key where the profile allows) and `same_issuer`.
/// Their verdicts are appended to the members' evaluations (which re-rolls their status); the
/// returned summaries feed the `pool_consistent` metric and the report.
pub fn apply_cross_rules(policy: &Policy, outcomes: &mut [ProbeOutcome]) -> Vec<PoolSummary> {
    let (pools, cross) = {
        let members: Vec<Member<'_>> = outcomes
            .iter()
            .map(|o| Member {
                endpoint: &o.target.endpoint,
                address: &o.series_key,
                profile: &o.target.profile,
                pool: o.target.pool.as_deref(),
                report: o.report.as_deref(),
                key_type: o.capture.key_type,
            })
            .collect();
        let mut cross = policy::cross::pool_verdicts_for_members(policy, &members);
        cross.extend(policy::cross::same_issuer_as(policy, &members));
        (policy::cross::pool_consistency(policy, &members), cross)
    };
    let oauth_cross = {
        let members: Vec<policy::cross::OAuthMember<'_>> = outcomes
            .iter()
            .filter_map(|o| {
                o.oauth.as_deref().map(|r| policy::cross::OAuthMember {
                    endpoint: &o.target.endpoint,
                    address: &o.series_key,
                    pool: o.target.pool.as_deref(),
                    report: r,
                })
            })
            .collect();
        policy::cross::oauth_pool_consistency(policy, &members)
    };
    // Index by (endpoint, address): a round can hold tens of thousands of outcomes.
    let index: std::collections::HashMap<(String, String), usize> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| ((o.target.endpoint.clone(), o.series_key.clone()), i))
        .collect();
    for c in cross {
        if let Some(&i) = index.get(&(c.endpoint, c.address)) {
            // Copy on write: the evaluation may be shared with other endpoints'.
            std::sync::Arc::make_mut(&mut outcomes[i].evaluation).add_verdict(c.verdict);
        }
    }
    for c in oauth_cross {
        if let Some(r) = index
            .get(&(c.endpoint, c.address))
            .and_then(|&i| outcomes[i].oauth.as_deref_mut())
        {
            r.add_verdict(c.verdict);
        }
    }
    pools
        .into_iter()
        .map(|p| PoolSummary {
            status: match p.verdict {
                Verdict::Fail if !p.consistent => Status::Critical,
                Verdict::Warn if !p.consistent => Status::Warning,
                _ => Status::Ok,
            },
            pool: p.pool,
            consistent: p.consistent,
            detail: p.detail,
        })
        .collect()
}

/// Profiles linked to `profile` by a `same_issuer` rule, in either direction.
pub fn same_issuer_partners(policy: &Policy, profile: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = policy
        .profile(profile)
        .and_then(|p| p.rules.same_issuer.as_ref())
        .and_then(|r| r.profile.as_ref())
    {
        out.push(r.clone());
    }
    for name in policy.profile_names() {
        let refers = policy
            .profile(&name)
            .and_then(|p| p.rules.same_issuer.as_ref())
            .and_then(|r| r.profile.as_deref())
            .is_some_and(|r| r == profile);
        if refers && name != profile {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BaseDir, Config};

    /// Endpoints on loopback ports nobody listens on (refused at once), in a known order, and
    /// the context to evaluate them in.
    fn refused_endpoints(n: usize) -> (Config, EvalContext) {
        let mut yaml = String::from("endpoints:\n");
        for i in 0..n {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            yaml.push_str(&format!(
                "  - name: ep{i:02}\n    host: 127.0.0.1\n    port: {port}\n"
            ));
        }
        let cfg = Config::from_yaml(&yaml, "test.yaml", BaseDir(std::env::temp_dir())).unwrap();
        let ctx = EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        };
        (cfg, ctx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probe_all_probes_each_endpoint_once_and_keeps_their_order() {
        let (cfg, ctx) = refused_endpoints(23);
        for concurrency in [0, 1, 4, 23, 100] {
            let outcomes = probe_all(&cfg.endpoints, concurrency, &ctx).await;
            let names: Vec<&str> = outcomes
                .iter()
                .map(|o| o.target.endpoint.as_str())
                .collect();
            let expected: Vec<String> = (0..23).map(|i| format!("ep{i:02}")).collect();
            assert_eq!(names, expected, "concurrency {concurrency}");
            assert!(outcomes.iter().all(|o| o
                .capture
                .failure
                .as_ref()
                .is_some_and(|f| f.reason == FailureReason::ConnectRefused)));
        }
        assert!(probe_all(&[], 8, &ctx).await.is_empty());
    }

    /// A probe that panics (a bug) costs only its own endpoint: with one worker, the worker is
    /// replaced and every later endpoint is still probed; the lost one reports `tls_error`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_probe_loses_only_its_endpoint() {
        let (cfg, ctx) = refused_endpoints(6);
        for concurrency in [1, 3] {
            let probe_ctx = ctx.clone();
            let probe = move |ep: Arc<Endpoint>| {
                let ctx = probe_ctx.clone();
                async move {
                    if ep.meta.endpoint == "ep02" || ep.meta.endpoint == "ep04" {
                        panic!("injected panic in the probe of {}", ep.meta.endpoint);
                    }
                    probe_endpoint(&ep, &ctx).await
                }
            };
            let outcomes = probe_all_with(&cfg.endpoints, concurrency, &ctx, probe).await;
            let names: Vec<&str> = outcomes
                .iter()
                .map(|o| o.target.endpoint.as_str())
                .collect();
            assert_eq!(names, ["ep00", "ep01", "ep02", "ep03", "ep04", "ep05"]);
            for o in &outcomes {
                let failure = o.capture.failure.as_ref().expect("every probe failed");
                if ["ep02", "ep04"].contains(&o.target.endpoint.as_str()) {
                    assert_eq!(failure.reason, FailureReason::TlsError);
                    assert_eq!(failure.detail, "probe task failed");
                    assert_eq!(o.evaluation.status, Status::Critical);
                } else {
                    assert_eq!(failure.reason, FailureReason::ConnectRefused, "{o:?}");
                }
            }
        }
    }
}
