# shellcheck shell=bash
# bench/probers/certprobe-daemon.sh — the project's own adapter for the shared farm
# (../shared/bench, see its probers/TEMPLATE.sh): certprobe as a scheduling daemon.
#
# Steady mode (steady.sh): writes $PROBER_WORK/generated.yaml with the first N farm targets
# (IP:port, SNI = FARM_SERVER_NAME, trust stores `internal` = FARM_CA and `public` = the
# built-in webpki roots, default policy profile, `global.interval` = INTERVAL_S), runs
# `certprobe probe -c generated.yaml` and a scraper that GETs /metrics once per interval (as
# Prometheus would; the scrape is counted in certprobe's CPU, the curl is not).
#
# Knobs: PROJECT_BIN (required: the release binary), CERTPROBE_PORT (default: a free port),
# CERTPROBE_CONCURRENCY (global.concurrency, default 64).
# Also used by bench/run-farm.sh for the idle-memory and /metrics render measurements.

certprobe_write_config() { # TARGETS_FILE N INTERVAL_S VARIANT -> $PROBER_WORK/generated.yaml
  local f="$PROBER_WORK/generated.yaml"
  mkdir -p "$PROBER_WORK"
  {
    echo "version: 1"
    echo "global:"
    echo "  interval: ${3}s"
    echo "  concurrency: ${CERTPROBE_CONCURRENCY:-64}"
    echo "trust_stores:"
    echo "  internal: { class: internal, pem_files: [\"$FARM_CA\"] }"
    echo "  public: { class: public, builtin: true }"
    echo "endpoints:"
    head -n "$2" "$1" | awk -v sni="$FARM_SERVER_NAME" -v v="$4" \
        -v cc="$FARM_CLIENT_CERT" -v ck="$FARM_CLIENT_KEY" '{
          split($1, hp, ":")
          printf "  - name: t%05d\n    host: \"%s\"\n    port: %s\n    sni: %s\n", NR, hp[1], hp[2], sni
          if (v == "mtls") printf "    client_cert: \"%s\"\n    client_key: \"%s\"\n", cc, ck
        }'
  } > "$f"
  echo "$f"
}

certprobe_start_daemon() { # CONFIG -> PROBER_PID, CERTPROBE_URL
  [[ -x "${PROJECT_BIN:-}" ]] || { echo "certprobe-daemon: set PROJECT_BIN" >&2; return 1; }
  CERTPROBE_PORT="${CERTPROBE_PORT:-$("$PYTHON" "$HERE/lib/free_port.py")}"
  CERTPROBE_URL="http://127.0.0.1:$CERTPROBE_PORT"
  "$PROJECT_BIN" --log.level warn probe -c "$1" --web.listen-address "127.0.0.1:$CERTPROBE_PORT" \
    >"$PROBER_WORK/daemon.log" 2>&1 &
  PROBER_PID=$!
  echo "$PROBER_PID" > "$PROBER_WORK/daemon.pid"
  local t
  for ((t = 0; t < 200; t++)); do
    curl -fsS -o /dev/null "$CERTPROBE_URL/healthz" 2>/dev/null && return 0
    [[ -d /proc/$PROBER_PID ]] || break
    sleep 0.1
  done
  echo "certprobe-daemon: did not come up, see $PROBER_WORK/daemon.log" >&2
  return 1
}

prober_steady_start() { # TARGETS_FILE N INTERVAL_S VARIANT
  local cfg
  cfg=$(certprobe_write_config "$@") || return 1
  "$PROJECT_BIN" check-config -c "$cfg" >/dev/null || return 1
  certprobe_start_daemon "$cfg" || return 1
  # The scraper: one GET of /metrics per interval, like a Prometheus scrape_interval = INTERVAL.
  (
    trap 'exit 0' TERM
    while :; do
      sleep "$3" & wait $!
      curl -fsS -o /dev/null "$CERTPROBE_URL/metrics" || true
    done
  ) &
  SCRAPER_PID=$!
  echo "$SCRAPER_PID" > "$PROBER_WORK/scraper.pid"
}

prober_steady_check() { # ok=<targets whose last probe succeeded> fail=<others seen>
  curl -fsS "$CERTPROBE_URL/metrics" | awk '
    /^certprobe_probe_success\{/ { if ($NF == 1) ok++; else fail++ }
    END { printf "ok=%d fail=%d\n", ok, fail }'
}

prober_steady_stop() {
  if [[ -n "${SCRAPER_PID:-}" && -d /proc/$SCRAPER_PID ]]; then
    kill -TERM "$SCRAPER_PID" 2>/dev/null || true
    wait "$SCRAPER_PID" 2>/dev/null || true
  fi
  if [[ -n "${PROBER_PID:-}" && -d /proc/$PROBER_PID ]]; then
    kill -TERM "$PROBER_PID" 2>/dev/null || true
    wait "$PROBER_PID" 2>/dev/null || true
  fi
}
