#!/usr/bin/env bash
# bench/scale.sh — one certprobe daemon with N endpoints (default 100,000 every 300 s) on the
# shared loopback farm, reusing the farm's sockets: endpoint i is farm target i mod F (F = the
# farm's size), so each socket serves N/F endpoint names (distinct endpoints for certprobe: own
# name, schedule and series; the same host:port). That keeps the farm within `ulimit -n`.
#
#   FARM_VARIANTS=ec ../shared/bench/farm.sh start 10000      # first (same BENCH_WORK/FARM_NET)
#   bench/scale.sh [N] [INTERVAL_S] [-- extra daemon flags, e.g. --web.disable-status-page]
#
# Prints: check-config wall time (3 runs), start to /healthz, RSS (VmRSS and VmHWM) after the
# first full round, CPU % of one core over WINDOW_S (default 180 s, from 60 s after start),
# /metrics first byte and total over 3 scrapes, and the probe counters. Knobs: PROJECT_BIN
# (default target/release/certprobe), BENCH_WORK (the farm's work dir), ROUND_WAIT_S (default
# INTERVAL_S + 20: when the first round is over), WINDOW_S. Stops the daemon it started (by pid).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-100000}"
IV="${2:-300}"
shift $(( $# >= 2 ? 2 : $# ))
if [[ "${1:-}" == "--" ]]; then shift; fi
EXTRA=("$@")
PROJECT_BIN="${PROJECT_BIN:-$REPO/target/release/certprobe}"
: "${BENCH_WORK:?set BENCH_WORK to the work dir of the farm}"
# shellcheck disable=SC1091
source "$BENCH_WORK/farm.env"
WORK="$BENCH_WORK/scale-$N"
mkdir -p "$WORK"
CFG="$WORK/certprobe.yaml"
ROUND_WAIT_S="${ROUND_WAIT_S:-$((IV + 20))}"
WINDOW_S="${WINDOW_S:-180}"

awk -v n="$N" -v iv="$IV" -v sni="$FARM_SERVER_NAME" -v ca="$FARM_CA" '
  { t[NR - 1] = $1 }
  END {
    printf "global:\n  interval: %ss\ntrust_stores:\n", iv
    printf "  internal: { class: internal, pem_files: [\"%s\"] }\n", ca
    printf "  public: { class: public, builtin: true }\nendpoints:\n"
    for (i = 0; i < n; i++) {
      split(t[i % NR], hp, ":")
      printf "  - name: t%06d\n    host: \"%s\"\n    port: %s\n    sni: %s\n", i, hp[1], hp[2], sni
    }
  }' "$FARM_TARGETS_EC" > "$CFG"

echo "# $(date -u +%FT%TZ) N=$N interval=${IV}s farm=$FARM_N sockets flags=${EXTRA[*]:-none}"
echo "# $("$PROJECT_BIN" --version) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" config=$(du -h "$CFG" | cut -f1)"
for r in 1 2 3; do
  /usr/bin/time -f "check-config run $r: %e s wall, %U s user, %M KB peak" \
    "$PROJECT_BIN" check-config -c "$CFG" >/dev/null 2>"$WORK/cc.err" || { cat "$WORK/cc.err"; exit 1; }
  tail -1 "$WORK/cc.err"
done

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
t0=$(date +%s.%N)
"$PROJECT_BIN" --log.level warn probe -c "$CFG" --web.listen-address "127.0.0.1:$PORT" \
  "${EXTRA[@]}" >"$WORK/daemon.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; do
  [[ -d /proc/$PID ]] || { echo "daemon died:"; tail "$WORK/daemon.log"; exit 1; }
  sleep 0.1
done
el=$(echo "$(date +%s.%N) - $t0" | bc)
echo "start to /healthz: ${el} s"

ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
hz=$(getconf CLK_TCK)
sleep 60
c0=$(ticks); w0=$(date +%s.%N)
sleep "$WINDOW_S"
c1=$(ticks); w1=$(date +%s.%N)
echo "CPU over ${WINDOW_S} s: $(echo "scale=1; 100 * ($c1 - $c0) / $hz / ($w1 - $w0)" | bc) % of one core"
rest=$(( ROUND_WAIT_S - 60 - WINDOW_S ))
if (( rest > 0 )); then sleep "$rest"; fi
rss() { awk '/VmRSS|VmHWM/{printf "%s %d MB  ", $1, $2 / 1024}' "/proc/$PID/status"; echo; }
el=$(echo "$(date +%s.%N) - $t0" | bc | cut -d. -f1)
echo "after the first round, ${el} s after start: $(rss)"
for s in 1 2 3; do
  curl -s -o "$WORK/metrics.txt" -w "scrape $s: first byte %{time_starttransfer} s, total %{time_total} s, %{size_download} bytes\n" \
    "http://127.0.0.1:$PORT/metrics"
done
echo "after 3 scrapes: $(rss)"
if [[ " ${EXTRA[*]:-} " != *" --web.disable-status-page "* ]]; then
  curl -s -o /dev/null -w "status page /: first byte %{time_starttransfer} s, total %{time_total} s\n" \
    "http://127.0.0.1:$PORT/"
  echo "after the status page: $(rss)"
fi
grep -E '^certprobe_(probes_total|scheduler_behind_total)' "$WORK/metrics.txt" | head -5 || true
echo "up: $(grep -c '^certprobe_probe_success{.*} 1' "$WORK/metrics.txt") / $N"
echo "load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
