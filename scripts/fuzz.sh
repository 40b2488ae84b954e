#!/usr/bin/env bash
# Run certprobe's cargo-fuzz targets for a bounded time each and report executions and crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 s; all targets)
#
# Targets (fuzz/fuzz_targets/): config_loader, cert_facts, legacy_parser. Each run starts from
# the committed seeds (fuzz/seeds/<target>/), the committed crash regressions
# (fuzz/regressions/<target>/, if any) and the local, gitignored corpus (fuzz/corpus/<target>/,
# which grows from run to run). Targets run one after the other, one libFuzzer process at a time.
#
# Toolchain: cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, sancov passes). This script
# uses the machine's stable toolchain with RUSTC_BOOTSTRAP=1, which unlocks those flags on stable.
# cargo-fuzz is installed from crates.io (`cargo install cargo-fuzz --locked`) when missing.
#
# Environment:
#   FUZZ_SANITIZER  address (default) | none     (none runs faster; the code under test is safe Rust)
#   FUZZ_MAX_LEN    largest input in bytes (default 8192; seeds are at most about 3 KB)
#   FUZZ_JOBS       cargo build jobs (default 2)
#
# Not part of CI (too slow); results are recorded by hand in docs/reliability.md ("Fuzzing").
# Exit status: 0 when no target crashed, 1 when any did (artifacts: fuzz/artifacts/<target>/).
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
shift || true
all_targets=(config_loader cert_facts legacy_parser)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
max_len="${FUZZ_MAX_LEN:-8192}"
jobs="${FUZZ_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

echo "== building fuzz targets (sanitizer: $sanitizer, RUSTC_BOOTSTRAP=1, $(rustc --version))"
CARGO_BUILD_JOBS="$jobs" cargo fuzz build --sanitizer "$sanitizer"

logdir="$root/fuzz/target/fuzz-logs"
mkdir -p "$logdir"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)"
summary=()
failed=0

for t in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "unknown target $t (have: ${all_targets[*]})" >&2
        exit 2
    fi
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    inputs=("fuzz/corpus/$t" "fuzz/seeds/$t")
    if [ -d "fuzz/regressions/$t" ]; then inputs+=("fuzz/regressions/$t"); fi
    log="$logdir/$t.log"
    echo "== $t: ${secs}s (log: ${log#"$root"/})"
    set +e
    CARGO_BUILD_JOBS="$jobs" cargo fuzz run --sanitizer "$sanitizer" "$t" "${inputs[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 -max_len="$max_len" \
        -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1
    rc=$?
    set -e
    stat() { awk -v k="stat::$1:" '$1 == k { print $2 }' "$log" | tail -n1; }
    execs="$(stat number_of_executed_units)"
    rate="$(stat average_exec_per_sec)"
    new_units="$(stat new_units_added)"
    rss="$(stat peak_rss_mb)"
    last="$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")"
    artifacts="$(sed -n 's/.*Test unit written to \(\S*\).*/\1/p' "$log" | tr '\n' ' ')"
    if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
        crashes=1
        failed=1
        grep -m5 -E 'panicked|ERROR: |SUMMARY: ' "$log" | sed 's/^/   /' || true
    else
        crashes=0
    fi
    summary+=("$(printf '%-14s %6s %12s %8s %5s %6s %6s %8s %7s  %s' \
        "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "${new_units:-?}" \
        "${rss:-?}" "$crashes" "${artifacts:--}")")
    tail -n 12 "$log" | grep -E '^(stat::|Done|#[0-9]+)' | sed 's/^/   /' || true
done

echo
echo "== fuzz summary: started $started, $(nproc) cores ($cpu), $(uname -sm), sanitizer $sanitizer"
echo "   commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown), command: $0 $secs ${targets[*]}"
printf '%-14s %6s %12s %8s %5s %6s %6s %8s %7s  %s\n' \
    target seconds executions exec/s cov corpus new rss_mb crashes artifacts
for line in "${summary[@]}"; do echo "$line"; done
exit "$failed"
