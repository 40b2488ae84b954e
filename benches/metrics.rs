//! Metrics micro-benchmarks: `Metrics::record` per outcome (success / failure) and
//! `Metrics::render_text` with 10,000 recorded endpoints. `cargo bench --bench metrics`.

mod common;

use std::time::Duration;

use certprobe::daemon::metrics::{BuildInfo, Metrics};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const ENDPOINTS: usize = 10_000;

fn bench_metrics(c: &mut Criterion) {
    let fx = common::Fixture::new();
    let ok = fx.outcome(1, true);
    let failed = fx.outcome(2, false);
    assert!(ok.capture.succeeded());
    assert!(!failed.capture.succeeded());

    let mut g = c.benchmark_group("metrics");
    // Record into a registry that already holds 10k targets (the steady-state case: every
    // record replaces the series of one existing target).
    let m = Metrics::new(BuildInfo::from_build_env());
    let template_ok = fx.outcome(0, true);
    for i in 0..ENDPOINTS {
        let mut o = template_ok.clone();
        std::sync::Arc::make_mut(&mut o.target).endpoint = format!("ep{i:05}");
        o.address = format!("127.77.{}.{}:9443", i / 250, i % 250 + 1);
        assert!(m.record(&o));
    }
    m.set_target_counts(ENDPOINTS as i64, ENDPOINTS as i64);
    g.bench_function("record_success", |b| {
        b.iter(|| std::hint::black_box(m.record(std::hint::black_box(&ok))))
    });
    g.bench_function("record_failure", |b| {
        b.iter(|| std::hint::black_box(m.record(std::hint::black_box(&failed))))
    });
    // Same registry again with the two benchmark targets back to the healthy state.
    assert!(m.record(&ok));
    assert!(m.record(&fx.outcome(2, true)));
    let page = m.render_text();
    assert!(page.len() > ENDPOINTS * 100, "page of {} bytes", page.len());
    g.throughput(criterion::Throughput::Elements(ENDPOINTS as u64));
    g.bench_function("render_text_10k_endpoints", |b| {
        b.iter(|| std::hint::black_box(m.render_text().len()))
    });
    // What `/metrics` does: the page in ~256 KiB pieces, each dropped once sent.
    g.bench_function("render_chunks_10k_endpoints", |b| {
        b.iter(|| std::hint::black_box(m.render_chunks(false).map(|c| c.len()).sum::<usize>()))
    });
    g.bench_function("render_openmetrics_10k_endpoints", |b| {
        b.iter(|| std::hint::black_box(m.render_openmetrics().len()))
    });
    g.finish();

    // Record into an empty registry: the first round after start-up.
    let mut g = c.benchmark_group("metrics_first_record");
    g.bench_function("record_success_new_target", |b| {
        b.iter_batched(
            || Metrics::new(BuildInfo::from_build_env()),
            |m| {
                m.record(&ok);
                m
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_metrics
}
criterion_main!(benches);
