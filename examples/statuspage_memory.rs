//! What the status page's board costs in memory: 10,000 real evaluated outcomes (the bench
//! fixture's chain; one in ten a refused connection) recorded into a `StatusBoard`, resident set
//! before and after (system allocator; the daemon uses jemalloc).
//! `cargo run --release --example statuspage_memory`; figure in docs/benchmarks.md.

#[path = "../benches/common/mod.rs"]
mod common;
fn rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}
fn main() {
    let fx = common::Fixture::new();
    let mut outs = Vec::new();
    for i in 0..10_000 {
        outs.push(fx.outcome(i, i % 10 != 3));
    }
    let board = certprobe::daemon::statuspage::StatusBoard::new();
    let before = rss_kb();
    for o in &outs {
        board.record(o);
    }
    let after = rss_kb();
    eprintln!(
        "board of 10000 targets: +{} KB RSS, {:.2} KB per target",
        after - before,
        (after - before) as f64 / 10000.0
    );
    drop(outs);
    std::hint::black_box(&board);
}
