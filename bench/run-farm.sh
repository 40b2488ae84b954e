#!/usr/bin/env bash
# bench/run-farm.sh — certprobe vs blackbox_exporter on the shared loopback farm.
#
#   bench/run-farm.sh [burst] [steady] [extra]     (default: all three)
#
# burst   ../shared/bench/matrix.sh blackbox certprobe: the standard matrix (N 100/1000/5000 x
#         conc 16/128, rsa and mtls at 1000/16), probers interleaved per cell; certprobe runs as
#         `probe --once --targets-file ... --output json` (the shared one-shot adapter).
# steady  farm of 10,000 ECDSA targets; ../shared/bench/steady.sh blackbox 10000 60 and
#         steady.sh certprobe-daemon 10000 60 (bench/probers/certprobe-daemon.sh: the daemon with
#         a generated config, /metrics scraped once per interval), back to back.
# extra   the daemon alone with 10,000 endpoints: RSS with 1 endpoint, with 10,000 configured
#         but (almost) not yet probed, after a full round; /metrics render time (curl, 5 times).
#
# Nothing is copied from the shared harness: its scripts are called by path through an overlay
# directory of symlinks ($BENCH_WORK/overlay) that adds this project's adapter to probers/
# (the harness finds adapters next to itself). Results go to stdout and $OUT (default
# target/bench-farm/<UTC time>.txt).
#
# Environment: SHARED_BENCH (default ../shared/bench relative to the repo), PROJECT_BIN
# (default target/release/certprobe; build it first with `cargo build --release`),
# BENCH_WORK (default /tmp/tlsbench-certprobe), FARM_NET (127.79), FARM_PORT (29443),
# DEADLINE (120 s per repetition), REPEAT (3), MATRIX_* (see matrix.sh).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED_BENCH="${SHARED_BENCH:-$REPO/../shared/bench}"
SHARED_BENCH="$(cd "$SHARED_BENCH" && pwd)"
PROJECT_BIN="${PROJECT_BIN:-$REPO/target/release/certprobe}"
export BENCH_WORK="${BENCH_WORK:-/tmp/tlsbench-certprobe}"
export FARM_NET="${FARM_NET:-127.79}" FARM_PORT="${FARM_PORT:-29443}"
export DEADLINE="${DEADLINE:-120}" PROJECT_BIN
PYTHON="${PYTHON:-python3}"
export PYTHON
OUT="${OUT:-$REPO/target/bench-farm/$(date -u +%Y%m%dT%H%M%SZ).txt}"
mkdir -p "$(dirname "$OUT")" "$BENCH_WORK"

die() { echo "run-farm: $*" >&2; exit 1; }
[[ -x "$PROJECT_BIN" ]] || die "no $PROJECT_BIN (cargo build --release)"
[[ -x "$SHARED_BENCH/run.sh" ]] || die "no shared bench at $SHARED_BENCH"
phases=("$@")
(( ${#phases[@]} )) || phases=(burst steady extra)

# The overlay: the shared harness by symlink, plus bench/probers/*.sh of this project.
OVL="$BENCH_WORK/overlay"
rm -rf "$OVL"
mkdir -p "$OVL/probers"
for f in "$SHARED_BENCH"/*; do [[ $(basename "$f") == probers ]] || ln -s "$f" "$OVL/"; done
for f in "$SHARED_BENCH"/probers/*.sh "$REPO"/bench/probers/*.sh; do ln -sf "$f" "$OVL/probers/"; done

log() { echo "$*" | tee -a "$OUT"; }
machine() {
  log "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $1"
  log "# nproc=$(nproc) cpu=\"$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
  log "# certprobe=$("$PROJECT_BIN" --version) blackbox=$(prometheus-blackbox-exporter --version 2>&1 | head -1 | awk '{print $3}')"
}
farm() { "$OVL/farm.sh" "$@" 2>&1 | tail -1 | tee -a "$OUT"; }
stop_farm() { "$OVL/farm.sh" stop >/dev/null 2>&1 || true; }
trap stop_farm EXIT

for phase in "${phases[@]}"; do
  case $phase in
  burst)
    machine "burst: matrix.sh blackbox certprobe"
    farm start 5000
    "$OVL/matrix.sh" blackbox certprobe 2>&1 | tee -a "$OUT"
    log "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    ;;
  steady)
    machine "steady: steady.sh {blackbox,certprobe-daemon} 10000 60"
    FARM_VARIANTS=ec farm start 10000
    for p in blackbox certprobe-daemon; do
      "$OVL/steady.sh" "$p" 10000 60 2>&1 | tee -a "$OUT"
      log "# load after $p: $(cut -d' ' -f1-3 /proc/loadavg)"
    done
    ;;
  extra)
    machine "extra: daemon memory and /metrics render at 10,000 endpoints"
    FARM_VARIANTS=ec farm start 10000
    # shellcheck disable=SC1091
    . "$BENCH_WORK/farm.env"
    export FARM_N FARM_SERVER_NAME FARM_CA FARM_CLIENT_CERT FARM_CLIENT_KEY
    export HERE="$OVL" PROBER_WORK="$BENCH_WORK/prober-certprobe-extra"
    mkdir -p "$PROBER_WORK"
    # shellcheck disable=SC1091
    . "$REPO/bench/probers/certprobe-daemon.sh"
    rss() { awk '/^VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
    hwm() { awk '/^VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
    # 1. one endpoint (a config needs at least one): the baseline
    cfg=$(certprobe_write_config "$FARM_TARGETS_EC" 1 60 ec)
    certprobe_start_daemon "$cfg"; sleep 3
    rss0=$(rss "$PROBER_PID"); prober_steady_stop; unset PROBER_PID
    # 2. 10,000 endpoints configured, interval 1 h: after 5 s only ~0.1 % have been probed
    cfg=$(certprobe_write_config "$FARM_TARGETS_EC" 10000 3600 ec)
    certprobe_start_daemon "$cfg"; sleep 5
    rss_idle=$(rss "$PROBER_PID"); prober_steady_stop; unset PROBER_PID
    log "rss_mb_1_endpoint=$rss0 rss_mb_10k_idle=$rss_idle idle_kb_per_endpoint=$(awk -v a="$rss0" -v b="$rss_idle" 'BEGIN{printf "%.2f", (b-a)*1024/9999}')"
    # 3. 10,000 endpoints, interval 60 s: wait for the first full round (/ready), then scrape
    cfg=$(certprobe_write_config "$FARM_TARGETS_EC" 10000 60 ec)
    certprobe_start_daemon "$cfg"
    t0=$(date +%s)
    until curl -fsS -o /dev/null "$CERTPROBE_URL/ready" 2>/dev/null; do
      (( $(date +%s) - t0 < DEADLINE )) || die "no full round within $DEADLINE s"
      sleep 1
    done
    log "first_round_s=$(( $(date +%s) - t0 )) rss_mb_10k_after_round=$(rss "$PROBER_PID") hwm_mb=$(hwm "$PROBER_PID") round_kb_per_endpoint=$(awk -v a="$rss0" -v b="$(rss "$PROBER_PID")" 'BEGIN{printf "%.2f", (b-a)*1024/9999}')"
    for i in 1 2 3 4 5; do
      log "metrics_scrape_$i $(curl -fsS -o /dev/null -w 'time_total_s=%{time_total} ttfb_s=%{time_starttransfer} bytes=%{size_download}' "$CERTPROBE_URL/metrics")"
    done
    log "metrics_series=$(curl -fsS "$CERTPROBE_URL/metrics" | grep -vc '^#') $(prober_steady_check) rss_mb_after_scrapes=$(rss "$PROBER_PID") hwm_mb=$(hwm "$PROBER_PID")"
    prober_steady_stop
    ;;
  *) die "unknown phase $phase (burst | steady | extra)" ;;
  esac
done
log "# results in $OUT"
