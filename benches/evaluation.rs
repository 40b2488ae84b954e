//! Evaluation micro-benchmarks: `chain::analyze` (ECDSA leaf + intermediate against two stores:
//! `internal` with the root, `public` = webpki-roots) and `policy::evaluate` (built-in `default`
//! profile and the lync2013 `fe_default` profile). Short runs: `cargo bench --bench evaluation`.

mod common;

use std::time::Duration;

use certprobe::chain;
use certprobe::policy::{self, EndpointContext};
use criterion::{criterion_group, criterion_main, Criterion};
use rustls_pki_types::UnixTime;

fn bench_eval(c: &mut Criterion) {
    let fx = common::Fixture::new();
    let now = common::now();
    let unix = UnixTime::since_unix_epoch(Duration::from_secs(now as u64));
    let stores = fx.ctx.stores.clone();
    let policy = fx.ctx.policy.clone();

    let mut g = c.benchmark_group("chain");
    g.bench_function("analyze_ecdsa_2_stores", |b| {
        let name = policy.name_check("default", "target.tlsbench.test");
        b.iter(|| {
            std::hint::black_box(chain::analyze(
                std::hint::black_box(&fx.chain),
                Some(&name),
                &stores,
                unix,
            ))
        })
    });
    g.bench_function("parse_cert_leaf", |b| {
        b.iter(|| std::hint::black_box(chain::parse_cert(std::hint::black_box(&fx.chain[0]))))
    });
    g.finish();

    let mut g = c.benchmark_group("policy");
    for (endpoint, profile, sni) in [
        ("web", "default", "target.tlsbench.test"),
        ("fe01", "fe_default", "fepool.contoso.com"),
    ] {
        let ep = fx.config.endpoint(endpoint).expect("endpoint");
        assert_eq!(ep.meta.profile, profile);
        let capture = fx.capture("127.0.0.1:9443".parse().expect("addr"), sni);
        let name = policy.name_check(profile, sni);
        let report = chain::analyze(&fx.chain, Some(&name), &stores, unix);
        let ectx = EndpointContext {
            endpoint: ep.meta.endpoint.clone(),
            host: ep.meta.host.clone(),
            pool: ep.meta.pool.clone(),
            name: Some(sni.to_string()),
            expected_names: ep.expected_names.clone(),
            expect_client_auth_required: false,
            client_cert_configured: false,
            discovered: None,
        };
        // The fixture is healthy: a benchmark of a failing evaluation would measure another path.
        let ev = policy::evaluate(&policy, profile, &capture, &report, &ectx, now);
        assert_eq!(
            ev.status,
            policy::Status::Ok,
            "{profile}: {:?}",
            ev.verdicts
        );
        g.bench_function(format!("evaluate_{profile}"), |b| {
            b.iter(|| {
                std::hint::black_box(policy::evaluate(
                    &policy, profile, &capture, &report, &ectx, now,
                ))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("runner");
    let ep = fx.config.endpoint("web").expect("web").clone();
    let capture = fx.capture(
        "127.0.0.1:9443".parse().expect("addr"),
        "target.tlsbench.test",
    );
    g.bench_function("evaluate_capture_default", |b| {
        b.iter(|| {
            std::hint::black_box(certprobe::runner::evaluate_capture(
                &ep,
                "127.0.0.1:9443".to_string(),
                capture.clone(),
                &fx.ctx,
                now as f64,
            ))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_eval
}
criterion_main!(benches);
