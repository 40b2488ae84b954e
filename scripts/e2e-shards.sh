#!/usr/bin/env bash
# Shard end to end: one config of N endpoints, 3 daemons with --shard 0/3, 1/3, 2/3 (as the
# StatefulSet overlay runs them), one real Prometheus scraping the three. Asserts that
# Prometheus sees every endpoint exactly once (count by endpoint == 1, N in all), that the
# shards' certprobe_endpoints add up to N, and that each shard keeps the series budget per
# address. Loopback only; the endpoints point at a closed port, so every probe fails fast
# with connect_refused (a failing address has a known series set, too).
#
#   scripts/e2e-shards.sh [--binary PATH]     default target/debug/certprobe; E2E_KEEP=1 keeps the dir
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
binary=$root/target/debug/certprobe
[ "${1:-}" != --binary ] || binary=$2
N=${SHARD_E2E_N:-60}
prometheus=$(command -v prometheus || echo /usr/bin/prometheus)
[ -x "$binary" ] || { echo "e2e-shards: $binary is not built (cargo build)" >&2; exit 2; }
[ -x "$prometheus" ] || { echo "e2e-shards: prometheus is missing (apt-get install prometheus)" >&2; exit 2; }
T=$(mktemp -d /tmp/certprobe-e2e-shards.XXXXXX)
pids=()
cleanup() {
    local rc=$? p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ "$rc" = 0 ] || { echo "---- logs in $T" >&2; tail -n 5 "$T"/*.log >&2 || true; }
    [ -n "${E2E_KEEP:-}" ] || [ "$rc" != 0 ] || rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
die() { echo "e2e-shards: FAILED: $*" >&2; exit 1; }
ok() { echo "e2e-shards: ok   $*"; }

read -r p_closed p0 p1 p2 p_prom < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
{
    echo "global: {interval: 2s, connect_timeout: 500ms, timeout: 1s}"
    echo "endpoints:"
    for i in $(seq 1 "$N"); do
        printf '  - {name: ep%03d, host: 127.0.0.1, port: %s}\n' "$i" "$p_closed"
    done
} > "$T/certprobe.yaml"
"$binary" check-config -c "$T/certprobe.yaml" > "$T/check.log" 2>&1 || die "check-config: $(cat "$T/check.log")"
i=0
for port in "$p0" "$p1" "$p2"; do
    "$binary" --log.level warn probe -c "$T/certprobe.yaml" --shard "$i/3" \
        --web.listen-address "127.0.0.1:$port" > "$T/shard$i.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
done
cat > "$T/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: certprobe
    static_configs: [{targets: ['127.0.0.1:$p0', '127.0.0.1:$p1', '127.0.0.1:$p2']}]
EOF
"$prometheus" --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/data" \
    --web.listen-address="127.0.0.1:$p_prom" --log.level=warn > "$T/prometheus.log" 2>&1 &
pids+=($!)
q() { curl -fsS --max-time 5 -G --data-urlencode "query=$1" "http://127.0.0.1:$p_prom/api/v1/query" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(" ".join(sorted(x["value"][1] for x in r)) if r else "")'; }
end=$(($(date +%s) + 60))
until [ "$(q 'count(certprobe_probe_success{job="certprobe"})' 2>/dev/null)" = "$N" ] \
    && [ "$(q 'count(up{job="certprobe"} == 1)' 2>/dev/null)" = 3 ]; do
    [ "$(date +%s)" -lt "$end" ] || die "Prometheus did not see $N endpoints from 3 shards within 60s: $(q 'count(certprobe_probe_success)' 2>/dev/null || true)"
    sleep 0.5
done
ok "Prometheus scrapes 3 shards and sees $N endpoints"
dups=$(q 'count by (endpoint) (certprobe_probe_success{job="certprobe"}) > 1')
[ -z "$dups" ] || die "endpoints seen by more than one shard: $dups"
ok "each endpoint seen exactly once (count by (endpoint) > 1 is empty)"
per=$(q 'count by (instance) (certprobe_probe_success{job="certprobe"})')
[ "$(echo "$per" | wc -w)" = 3 ] || die "not every shard has endpoints: $per"
ok "endpoints per shard: $per"
[ "$(q 'sum(certprobe_endpoints{job="certprobe"})')" = "$N" ] || die "sum(certprobe_endpoints) != $N"
ok "the shards' certprobe_endpoints add up to $N"
worst=$(q 'max(count by (instance, endpoint, address) ({job="certprobe", endpoint!=""}))')
[ "${worst%.*}" -le 12 ] || die "an address exports $worst series on its shard (budget 12)"
ok "series per address on every shard <= 12 (worst $worst)"
echo "e2e-shards: passed"
