#!/usr/bin/env bash
# bench/revocation-cpu.sh — the daemon's steady-state cost with revocation on against off
# (issue 13, performance item): N endpoints sharing 3 CRLs of E entries each.
#
#   bench/revocation-cpu.sh [N] [ENTRIES] [REPEAT]     (default 10000, 50000, 1)
#
# PKI made with the openssl CLI: a root and three issuing CAs, each with an `openssl ca` index
# of ENTRIES revoked serials (written directly, then `openssl ca -gencrl`) and one valid leaf
# whose CDP names that CA's CRL. One nginx (Debian) on 127.0.0.1 serves the CRLs over HTTP
# (access log: one line per fetch) and the three leaves over TLS on three ports; the N
# endpoints are config entries spread over the three TLS ports (distinct names, same sockets:
# the cost measured is certprobe's, nginx's is not counted).
#
# Each mode (`off`, `crl`) runs the release daemon (`certprobe probe -c ...`, interval
# INTERVAL_S, default 60) for WARM_S seconds (default 75: the first round, which fetches and
# parses the CRLs under `crl`), then measures the process's CPU (utime + stime from
# /proc/PID/stat) over WINDOW_S seconds (default 120: two rounds) and its RSS at the end. The
# modes alternate, REPEAT times. Printed per run: CPU % of one core, ms of CPU per probe,
# RSS, CRL fetches nginx logged during the run.
#
# Environment: BIN (default target/release/certprobe; `cargo build --release`), WORK (default
# /tmp/certprobe-revocation-bench), HTTP_PORT (23080), TLS_PORT (23443: this and the next two).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-10000}"
ENTRIES="${2:-50000}"
REPEAT="${3:-1}"
BIN="$(realpath "${BIN:-$REPO/target/release/certprobe}")"
WORK="${WORK:-/tmp/certprobe-revocation-bench}"
HTTP_PORT="${HTTP_PORT:-23080}"
TLS_PORT="${TLS_PORT:-23443}"
INTERVAL_S="${INTERVAL_S:-60}"
WARM_S="${WARM_S:-75}"
WINDOW_S="${WINDOW_S:-120}"
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release, or BIN=...)" >&2; exit 2; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx missing: apt-get install nginx-light" >&2; exit 2; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

rm -rf "$WORK"; mkdir -p "$WORK/www"
cd "$WORK"
BASE="http://127.0.0.1:$HTTP_PORT"

ca_cnf() { # ca_cnf NAME
  mkdir -p "$1/new"; : > "$1/index.txt"; echo 1000 > "$1/crlnumber"; echo 01 > "$1/serial"
  cat > "$1.cnf" <<CNF
[ca]
default_ca = ca_main
[ca_main]
dir = $WORK/$1
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $WORK/$1.pem
private_key = $WORK/$1.key
default_md = sha256
default_days = 365
default_crl_days = 7
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[crl_ext]
authorityKeyIdentifier = keyid:always
CNF
}
issue() { # issue CA NAME CN EXT [selfsign]
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2.key" 2>/dev/null
  openssl req -new -key "$2.key" -subj "/CN=$3" -out "$2.csr" 2>/dev/null
  printf '[e]\n%b\n' "$4" > "$2.ext"
  local extra=()
  [ "${5:-}" = selfsign ] && extra=(-selfsign -keyfile "$2.key")
  openssl ca -batch -config "$1.cnf" -in "$2.csr" -out "$2.pem" -notext -extfile "$2.ext" \
    -extensions e -startdate 20250101000000Z "${extra[@]}" 2>/dev/null
}
CA_EXT='basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always'
ca_cnf root
issue root root "Bench Root" "$CA_EXT" selfsign
for i in 1 2 3; do
  ca_cnf "int$i"
  issue root "int$i" "Bench Issuing CA $i" "$CA_EXT\ncrlDistributionPoints=URI:$BASE/root.crl"
  issue "int$i" "leaf$i" "leaf$i.bench.test" \
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:leaf$i.bench.test\nauthorityKeyIdentifier=keyid:always\ncrlDistributionPoints=URI:$BASE/int$i.crl"
  cat "leaf$i.pem" "int$i.pem" > "chain$i.pem"
  # ENTRIES revoked serials (none of them the leaf's), then the CRL.
  python3 - "int$i/index.txt" "$ENTRIES" "$i" <<'PY'
import sys
path, n, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "a") as f:
    for k in range(n):
        f.write(f"R\t351231000000Z\t260101000000Z,keyCompromise\t{ca:02X}{k + 0x100000:08X}\tunknown\t/CN=revoked-{k}\n")
PY
  openssl ca -gencrl -config "int$i.cnf" -crlexts crl_ext -out "int$i.crl.pem" 2>/dev/null
  openssl crl -in "int$i.crl.pem" -outform DER -out "www/int$i.crl"
done
openssl ca -gencrl -config root.cnf -crlexts crl_ext -out root.crl.pem 2>/dev/null
openssl crl -in root.crl.pem -outform DER -out www/root.crl
ls -l www | awk 'NR > 1 { printf "  %s %d bytes\n", $NF, $5 }'

cat > nginx.conf <<NG
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  log_format plain '\$request_uri \$status';
  access_log $WORK/access.log plain;
  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi;
  uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
  server { listen 127.0.0.1:$HTTP_PORT; root $WORK/www; }
NG
for i in 1 2 3; do
  echo "  server { listen 127.0.0.1:$((TLS_PORT + i - 1)) ssl; ssl_certificate $WORK/chain$i.pem; ssl_certificate_key $WORK/leaf$i.key; access_log off; return 200; }" >> nginx.conf
done
echo "}" >> nginx.conf
"$NGINX" -e "$WORK/error.log" -p "$WORK" -c "$WORK/nginx.conf" &
NGINX_PID=$!
DAEMON_PID=
trap 'kill $NGINX_PID $DAEMON_PID 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && break; sleep 0.1; done

gen() { # gen MODE
  { echo "global: {interval: ${INTERVAL_S}s, timeout: 10s, revocation: {method: $1}}"
    echo "trust_stores: {bench: {class: internal, pem_files: [$WORK/root.pem]}}"
    echo "endpoints:"
    for k in $(seq 0 $((N - 1))); do
      i=$((k % 3 + 1))
      echo "  - {name: e$k, host: 127.0.0.1, port: $((TLS_PORT + i - 1)), sni: leaf$i.bench.test}"
    done; } > "$1.yaml"
  "$BIN" check-config -c "$1.yaml" >/dev/null
}
gen off
gen crl

python3 - "$BIN" "$N" "$REPEAT" "$WARM_S" "$WINDOW_S" "$INTERVAL_S" "$WORK" <<'PY'
import os, socket, statistics, subprocess, sys, time, urllib.request
bin_, n, repeat, warm, window, interval, work = sys.argv[1], *map(int, sys.argv[2:7]), sys.argv[7]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def rss_mb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) / 1024
def crl_fetches():
    try:
        return sum(1 for l in open(f"{work}/access.log") if ".crl " in l)
    except FileNotFoundError:
        return 0
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
res = {"off": [], "crl": []}
for r in range(repeat):
    for mode in ("off", "crl"):
        port = free_port()
        before = crl_fetches()
        p = subprocess.Popen([bin_, "--log.level", "warn", "probe", "-c", f"{work}/{mode}.yaml",
                              "--web.listen-address", f"127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=open(f"{work}/daemon-{mode}.log", "w"))
        time.sleep(warm)
        c0, t0 = cpu(p.pid), time.monotonic()
        time.sleep(window)
        c1, t1 = cpu(p.pid), time.monotonic()
        rss = rss_mb(p.pid)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        ok = sum(1 for l in body.splitlines()
                 if l.startswith("certprobe_probe_success{") and l.endswith(" 1"))
        revoked = sum(1 for l in body.splitlines()
                      if l.startswith("certprobe_revocation_status{") and not l.endswith(" 0"))
        p.terminate(); p.wait(timeout=30)
        fetches = crl_fetches() - before
        pct = (c1 - c0) / (t1 - t0) * 100
        probes = n * (t1 - t0) / interval
        res[mode].append((pct, rss))
        print(f"run {r+1} {mode:3}: CPU {pct:5.2f} % of a core ({(c1-c0)/probes*1000:.3f} ms/probe), "
              f"RSS {rss:6.1f} MB, probe_success=1 series {ok}/{n}, non-good revocation_status "
              f"series {revoked}, CRL fetches during the run {fetches}", flush=True)
off = statistics.median(c for c, _ in res["off"]); on = statistics.median(c for c, _ in res["crl"])
roff = statistics.median(m for _, m in res["off"]); ron = statistics.median(m for _, m in res["crl"])
print(f"crl / off: CPU {on/off:.3f} ({(on/off-1)*100:+.1f} %), RSS {ron-roff:+.1f} MB")
PY
