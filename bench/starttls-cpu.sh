#!/usr/bin/env bash
# bench/starttls-cpu.sh — CPU per probe: SMTP STARTTLS against implicit TLS, same postfix,
# same certificate, same run (issue 14, performance item).
#
#   bench/starttls-cpu.sh [N] [RUNS]        (default N=1000 endpoints per mode, RUNS=5)
#
# One real postfix (Debian package) on 127.0.0.1 with two listeners: smtpd on $SMTP_PORT
# (STARTTLS, `smtpd_tls_security_level = may`) and smtpd on $SMTPS_PORT with
# `smtpd_tls_wrappermode = yes` (implicit TLS), both serving one ECDSA P-256 certificate.
# The endpoints are N config entries pointing at each listener (distinct names, same address):
# the measured cost is certprobe's, postfix's CPU is not counted. Each run is one
# `certprobe probe --once -c CONFIG --output json` (concurrency 16); CPU is the child's user +
# system time from getrusage(RUSAGE_CHILDREN) (python3), wall time from a monotonic clock. The
# two modes alternate, RUNS times each; the script prints every run and the medians.
#
# Environment: BIN (default target/release/certprobe; build it with `cargo build --release`),
# WORK (default /tmp/certprobe-starttls-bench), SMTP_PORT (22025), SMTPS_PORT (22465).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-1000}"
RUNS="${2:-5}"
BIN="$(realpath "${BIN:-$REPO/target/release/certprobe}")"
WORK="${WORK:-/tmp/certprobe-starttls-bench}"
SMTP_PORT="${SMTP_PORT:-22025}"
SMTPS_PORT="${SMTPS_PORT:-22465}"
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release, or BIN=...)" >&2; exit 2; }
[ -x /usr/lib/postfix/sbin/master ] || { echo "postfix missing: apt-get install postfix" >&2; exit 2; }

rm -rf "$WORK"; mkdir -p "$WORK/pf/queue" "$WORK/pf/data"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=mail.bench.test -addext subjectAltName=DNS:mail.bench.test \
  -addext basicConstraints=critical,CA:FALSE -keyout pf/key.pem -out pf/cert.pem 2>/dev/null
cat > pf/main.cf <<CF
compatibility_level = 3.6
queue_directory = $WORK/pf/queue
data_directory = $WORK/pf/data
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.bench.test
mydestination =
smtpd_tls_cert_file = $WORK/pf/cert.pem
smtpd_tls_key_file = $WORK/pf/key.pem
smtpd_tls_security_level = may
smtpd_client_connection_count_limit = 0
default_process_limit = 200
maillog_file = $WORK/pf/maillog
maillog_file_prefixes = $WORK
CF
# Debian's master.cf without its inet services, plus our two listeners (no chroot).
grep -Ev '^(smtp|submission|smtps)[[:space:]]+inet' /etc/postfix/master.cf \
  | awk '!/^[#[:space:]]/ && NF >= 8 { $5 = "n" } { print }' > pf/master.cf
cat >> pf/master.cf <<CF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
127.0.0.1:$SMTPS_PORT inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
CF
postfix -c "$WORK/pf" set-permissions create-missing >/dev/null 2>&1
/usr/lib/postfix/sbin/master -c "$WORK/pf" -d &
MASTER=$!
trap 'kill $MASTER 2>/dev/null; wait $MASTER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$SMTPS_PORT") 2>/dev/null && break; sleep 0.1
done

gen() { # gen MODE PORT EXTRA
  { echo "global: {concurrency: 16, timeout: 10s}"
    echo "trust_stores: {bench: {class: internal, pem_files: [$WORK/pf/cert.pem]}}"
    echo "endpoints:"
    for i in $(seq 1 "$N"); do
      echo "  - {name: $1-$i, host: 127.0.0.1, port: $2, sni: mail.bench.test$3}"
    done; } > "$1.yaml"
}
gen starttls "$SMTP_PORT" ", starttls: smtp"
gen implicit "$SMTPS_PORT" ""
"$BIN" check-config -c starttls.yaml >/dev/null
"$BIN" check-config -c implicit.yaml >/dev/null

python3 - "$BIN" "$N" "$RUNS" <<'PY'
import json, resource, statistics, subprocess, sys, time
bin_, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
res = {"starttls": [], "implicit": []}
for r in range(runs):
    for mode in ("starttls", "implicit"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        p = subprocess.run([bin_, "probe", "--once", "-c", f"{mode}.yaml", "--output", "json"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out = json.loads(p.stdout)
        results = out.get("results", out) if isinstance(out, dict) else out
        ok = sum(1 for x in results
                 if not x["capture"].get("failure") and x["capture"].get("tls_version"))
        res[mode].append((cpu, wall))
        print(f"run {r+1} {mode:8}: {ok}/{n} handshakes completed, CPU {cpu:.3f} s "
              f"({cpu/n*1000:.3f} ms/probe), wall {wall:.2f} s", flush=True)
for mode, v in res.items():
    cpu = statistics.median(c for c, _ in v); wall = statistics.median(w for _, w in v)
    print(f"median {mode:8}: CPU {cpu:.3f} s = {cpu/n*1000:.3f} ms/probe, wall {wall:.2f} s")
s = statistics.median(c for c, _ in res["starttls"]); i = statistics.median(c for c, _ in res["implicit"])
print(f"STARTTLS - implicit: {(s-i)/n*1000:+.3f} ms CPU per probe ({(s/i-1)*100:+.1f} %)")
PY
