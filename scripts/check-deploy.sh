#!/usr/bin/env bash
# Check every deployment artefact without docker or a cluster (kustomize trees are rendered by
# `kubectl kustomize`, offline).
# CI runs this; it needs promtool (Debian package `prometheus`), python3 with
# PyYAML (`python3-yaml`) and systemd-analyze (`systemd`), all from apt.
#
#   scripts/check-deploy.sh                    all checks
#   scripts/check-deploy.sh --binary PATH      also run `PATH check-config` on the
#                                              shipped example configuration
#
# Exit status 0 when all checks pass; the first failing check stops the run.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
binary=

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || { echo "--binary needs a path" >&2; exit 2; }; binary=$2; shift ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-deploy: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "check-deploy: $1 is missing: apt-get install -y $2" >&2
        exit 2
    }
}
need promtool prometheus
need systemd-analyze systemd
need python3 python3
python3 -c 'import yaml' 2>/dev/null || {
    echo "check-deploy: PyYAML is missing: apt-get install -y python3-yaml" >&2
    exit 2
}

check() {
    local name=$1; shift
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "check-deploy: FAILED: $name" >&2
        echo "$passed passed, $failed failed"
        exit 1
    fi
}

# --- Prometheus
check "promtool check rules alerts.yml" promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules alerts_test.yml" promtool test rules deploy/prometheus/alerts_test.yml
check "promtool check config prometheus.yml" promtool check config deploy/prometheus/prometheus.yml
# Every alert in alerts.yml has at least one unit test that expects it to fire.
every_alert_tested() {
    python3 - <<'PY'
import sys, yaml
rules = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
tests = yaml.safe_load(open("deploy/prometheus/alerts_test.yml"))
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
firing, quiet = set(), set()
for t in tests["tests"]:
    for c in t.get("alert_rule_test", []):
        (firing if c.get("exp_alerts") else quiet).add(c["alertname"])
missing = sorted((alerts - firing) | (alerts - quiet))
for a in sorted(alerts - firing):
    print(f"alert {a} has no test where it fires", file=sys.stderr)
for a in sorted(alerts - quiet):
    print(f"alert {a} has no test where it stays quiet", file=sys.stderr)
print(f"{len(alerts)} alerts, each tested firing and not firing")
sys.exit(1 if missing else 0)
PY
}
check "every alert tested firing and quiet" every_alert_tested
check "PrometheusRule generated from alerts.yml" python3 scripts/gen-prometheusrule.py --check

# --- Grafana JSON
check "grafana JSON parses" python3 -m json.tool deploy/grafana/certprobe.json "$tmp/dashboard.json"

# Every dashboard query (and variable query) is valid PromQL: each becomes a
# recording rule in a scratch file that promtool parses. Grafana variables are
# replaced by values of the right type.
dashboard_promql() {
    python3 - "$tmp/dashboard-rules.yml" <<'PY' || return 1
import json, re, sys, yaml
dash = json.load(open("deploy/grafana/certprobe.json"))
def walk(ps):
    for p in ps:
        yield p
        yield from walk(p.get("panels", []))
exprs = [t["expr"] for p in walk(dash["panels"]) for t in p.get("targets", []) if t.get("expr")]
for v in dash["templating"]["list"]:
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q or "")
    if m:
        exprs.append(m.group(1))
subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
rules = []
for i, e in enumerate(exprs):
    for k, val in subst.items():
        e = e.replace(k, val)
    e = re.sub(r"\$\{?\w+\}?", ".*", e)
    rules.append({"record": f"dashboard:query_{i}", "expr": e})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
print(f"{len(rules)} dashboard queries")
PY
    promtool check rules "$tmp/dashboard-rules.yml"
}
check "grafana queries are valid PromQL" dashboard_promql

# --- Kubernetes, metric names, dashboard structure
check "kubernetes/alerts/dashboard structure" python3 scripts/check_deploy.py

# --- systemd: verify the unit with a stand-in executable at the binary's path,
# and keep its exposure score at "OK" (<= 2.0).
systemd_unit() {
    printf '#!/bin/sh\nexit 0\n' > "$tmp/certprobe"
    chmod +x "$tmp/certprobe"
    sed "s#/usr/local/bin/certprobe#$tmp/certprobe#g" deploy/systemd/certprobe.service \
        > "$tmp/certprobe.service"
    systemd-analyze verify "$tmp/certprobe.service" || return 1
    local want
    for want in 'DynamicUser=yes' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
        'PrivateTmp=yes' 'CapabilityBoundingSet=$' \
        'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$' 'ReadOnlyPaths=/etc/certprobe$' \
        'ExecReload=/bin/kill -HUP \$MAINPID$' 'Restart=on-failure$'; do
        grep -q "^$want" deploy/systemd/certprobe.service \
            || { echo "certprobe.service lacks $want" >&2; return 1; }
    done
    systemd-analyze security --offline=yes --threshold=20 "$tmp/certprobe.service" \
        > "$tmp/security.txt" 2>&1 || { cat "$tmp/security.txt" >&2; return 1; }
    tail -n 1 "$tmp/security.txt"
}
check "systemd unit" systemd_unit

# --- Docker build script (dry: builds nothing) and the Dockerfile's invariants
dockerfile() {
    local ok=0
    grep -Eq '^FROM rust:\$\{RUST_VERSION\}-slim-bookworm AS build' Dockerfile || { echo "build stage must use the pinned rust image" >&2; ok=1; }
    grep -Eq '^FROM gcr.io/distroless/cc-debian12:nonroot$' Dockerfile || { echo "runtime must be distroless cc nonroot" >&2; ok=1; }
    grep -Eq '^USER 65532:65532$' Dockerfile || { echo "USER must be numeric non-root" >&2; ok=1; }
    grep -Eq '^EXPOSE 9915$' Dockerfile || { echo "EXPOSE 9915 missing" >&2; ok=1; }
    grep -Eq '^HEALTHCHECK ' Dockerfile || { echo "HEALTHCHECK missing" >&2; ok=1; }
    grep -Eq 'scripts/build-release.sh --out /out' Dockerfile || { echo "build stage must run scripts/build-release.sh" >&2; ok=1; }
    grep -Eq '/etc/certprobe/certprobe.yaml' Dockerfile || { echo "config path missing" >&2; ok=1; }
    ! grep -Eq '^FROM [^ ]+:latest' Dockerfile || { echo "no :latest images" >&2; ok=1; }
    return $ok
}
check "Dockerfile invariants" dockerfile
check "build-release.sh --check" scripts/build-release.sh --check
check "shell syntax" bash -n scripts/build-release.sh scripts/check-deploy.sh

# --- optional: the example configuration against the real binary
if [ -n "$binary" ]; then
    check "certprobe check-config (kubernetes example)" \
        "$binary" check-config -c deploy/kubernetes/base/certprobe.yaml
    # The commented-out MTLS endpoint must be valid once uncommented: enable it, with stand-in
    # client certificate files at the Secret's paths.
    example_mtls() {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
            -subj /CN=certprobe-check -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null || return 1
        sed -e '/An MTLS endpoint/d' -e 's/^  # \(.*\)$/  \1/' -e "s#/etc/certprobe/client#$tmp#" \
            deploy/kubernetes/base/certprobe.yaml > "$tmp/certprobe-mtls.yaml"
        grep -q 'expect_client_auth: required' "$tmp/certprobe-mtls.yaml" || { echo "MTLS example not found" >&2; return 1; }
        "$binary" check-config -c "$tmp/certprobe-mtls.yaml"
    }
    check "certprobe check-config (kubernetes example, MTLS endpoint enabled)" example_mtls
fi

echo "$passed passed, $failed failed"
