//! Status page render benchmark (issue 17: the page for 10,000 endpoints in at most 100 ms
//! server side). The board holds 10,000 real evaluated outcomes (one in ten a failed probe,
//! every fifth in a pool); measured: the fleet page at the default page size (sort, count and
//! filter text of all 10,000, 500 rows rendered), the same with every row on one page, a
//! filtered page, and one endpoint's detail page. `cargo bench --bench statuspage`.

mod common;

use std::time::Duration;

use certprobe::daemon::statuspage::render::{self, FleetQuery};
use certprobe::daemon::statuspage::{StatusBoard, DEFAULT_PAGE_SIZE};
use criterion::{criterion_group, criterion_main, Criterion};

const ENDPOINTS: usize = 10_000;

fn bench_statuspage(c: &mut Criterion) {
    let fx = common::Fixture::new();
    let board = StatusBoard::new();
    let ok = fx.outcome(0, true);
    let failed = fx.outcome(1, false);
    for i in 0..ENDPOINTS {
        let mut o = if i % 10 == 3 {
            failed.clone()
        } else {
            ok.clone()
        };
        std::sync::Arc::make_mut(&mut o.target).endpoint = format!("ep{i:05}");
        o.address = format!("127.77.{}.{}:9443", i / 250, i % 250 + 1);
        o.series_key = o.address.clone();
        std::sync::Arc::make_mut(&mut o.target).pool =
            (i % 5 == 0).then(|| format!("pool{}", i / 50));
        board.record(&o);
    }
    let snap = board.snapshot();
    assert_eq!(snap.outcomes.len(), ENDPOINTS);
    let now = common::now() as f64 + 5.0;

    let mut g = c.benchmark_group("statuspage");
    g.throughput(criterion::Throughput::Elements(ENDPOINTS as u64));
    let paged = FleetQuery::default();
    let html = render::render_fleet(&snap.outcomes, &snap.pools, &paged, now);
    assert_eq!(html.matches("<tr data-filter").count(), DEFAULT_PAGE_SIZE);
    g.bench_function("fleet_10k_endpoints_page_of_500", |b| {
        b.iter(|| {
            std::hint::black_box(
                render::render_fleet(&snap.outcomes, &snap.pools, &paged, now).len(),
            )
        })
    });
    let all = FleetQuery {
        page_size: ENDPOINTS,
        ..FleetQuery::default()
    };
    let html = render::render_fleet(&snap.outcomes, &snap.pools, &all, now);
    assert_eq!(html.matches("<tr data-filter").count(), ENDPOINTS);
    g.bench_function("fleet_10k_endpoints_all_rows", |b| {
        b.iter(|| {
            std::hint::black_box(render::render_fleet(&snap.outcomes, &snap.pools, &all, now).len())
        })
    });
    let filtered = FleetQuery {
        q: "critical connect_refused".into(),
        ..FleetQuery::default()
    };
    g.bench_function("fleet_10k_endpoints_filtered", |b| {
        b.iter(|| {
            std::hint::black_box(
                render::render_fleet(&snap.outcomes, &snap.pools, &filtered, now).len(),
            )
        })
    });
    g.bench_function("snapshot_10k_endpoints", |b| {
        b.iter(|| std::hint::black_box(board.snapshot().outcomes.len()))
    });
    g.finish();

    let mut g = c.benchmark_group("statuspage_detail");
    let view = board.endpoint("ep00000").expect("endpoint");
    g.bench_function("endpoint_page", |b| {
        b.iter(|| {
            std::hint::black_box(render::render_endpoint("ep00000", &view, now, None, true).len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_statuspage
}
criterion_main!(benches);
