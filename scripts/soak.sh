#!/usr/bin/env bash
# Bounded soak of the certprobe daemon (issue 7, "Soak"). NOT part of CI's time budget.
#
# N loopback TLS endpoints (one nginx, `listen 127.88.x.y:PORT ssl` per endpoint, two
# certificates), the daemon probing them every INTERVAL seconds for ROUNDS rounds, while:
#   - every FLAP_EVERY rounds, FLAP_SIZE endpoints are stopped (removed from nginx, reload), the
#     previously stopped ones are started again, and FLAP_SIZE others are switched to another
#     certificate (new key);
#   - every RELOAD_EVERY rounds the daemon is reloaded with SIGHUP (alternating verdict_timeout,
#     so every endpoint's probe task is replaced);
# and checks:
#   - RSS at the end within 10% of its value after the first round;
#   - open file descriptors back to baseline (non-socket fds equal, sockets not above the
#     baseline's range);
#   - no thread growth; certprobe_endpoints / certprobe_addresses unchanged;
#   - every flap visible in /metrics: certprobe_probe_failure{reason="connect_refused"} for
#     stopped endpoints, certprobe_probe_success back to 1 for restarted ones,
#     certprobe_leaf_changed_timestamp_seconds moved past the switch for switched ones;
#   - every reload successful (certprobe_config_last_reload_successful 1).
# Prints a summary (and writes it as JSON to $WORK/summary.json); exits 1 on any violation.
#
# Environment (defaults): N=2000 ROUNDS=20 INTERVAL=5 FLAP_EVERY=4 FLAP_SIZE=50 RELOAD_EVERY=6
# PORT=8443 METRICS_PORT=19915 BIN=target/debug/certprobe WORK=$(mktemp -d) KEEP=0
# Needs: nginx, openssl, python3. Uses loopback only (127.88.0.0/16, 127.0.0.1).
set -euo pipefail

cd "$(dirname "$0")/.."
export N="${N:-2000}" ROUNDS="${ROUNDS:-20}" INTERVAL="${INTERVAL:-5}"
export FLAP_EVERY="${FLAP_EVERY:-4}" FLAP_SIZE="${FLAP_SIZE:-50}" RELOAD_EVERY="${RELOAD_EVERY:-6}"
export PORT="${PORT:-8443}" METRICS_PORT="${METRICS_PORT:-19915}"
export BIN="${BIN:-$PWD/target/debug/certprobe}" KEEP="${KEEP:-0}"
export WORK="${WORK:-$(mktemp -d /tmp/certprobe-soak.XXXXXX)}"
mkdir -p "$WORK"

for tool in nginx openssl python3; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is required" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "soak: $BIN not found (cargo build first, or set BIN)" >&2; exit 2; }
# nginx holds one listening socket per endpoint; the daemon one socket per probe in flight.
ulimit -n "$(( N * 2 + 4096 > 20000 ? 20000 : N * 2 + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "soak: N=$N rounds=$ROUNDS interval=${INTERVAL}s flap every $FLAP_EVERY rounds ($FLAP_SIZE stopped + $FLAP_SIZE switched), SIGHUP every $RELOAD_EVERY rounds; work dir $WORK; ulimit -n $(ulimit -n)"

exec python3 - <<'PY'
import json, os, re, signal, subprocess, sys, time, urllib.request

N = int(os.environ["N"]); ROUNDS = int(os.environ["ROUNDS"]); INTERVAL = float(os.environ["INTERVAL"])
FLAP_EVERY = int(os.environ["FLAP_EVERY"]); FLAP_SIZE = int(os.environ["FLAP_SIZE"])
RELOAD_EVERY = int(os.environ["RELOAD_EVERY"]); PORT = int(os.environ["PORT"])
MPORT = int(os.environ["METRICS_PORT"]); BIN = os.environ["BIN"]; WORK = os.environ["WORK"]
KEEP = os.environ["KEEP"] == "1"
violations = []
procs = []

def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

def sh(*args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r

def addr(i):
    return f"127.88.{i // 250}.{i % 250 + 1}"

def name(i):
    return f"soak-{i:05d}"

# --- PKI: one root, two server certificates (different keys) for the same name ---
def pki():
    d = WORK
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", f"{d}/root.key", "-out", f"{d}/root.pem",
       "-days", "30", "-subj", "/CN=Soak Root CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for leaf in ("a", "b"):
        sh("openssl", "req", *ec, "-keyout", f"{d}/{leaf}.key", "-out", f"{d}/{leaf}.csr",
           "-subj", f"/CN=soak.test")
        with open(f"{d}/{leaf}.ext", "w") as f:
            f.write("subjectAltName=DNS:soak.test\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
        sh("openssl", "x509", "-req", "-in", f"{d}/{leaf}.csr", "-CA", f"{d}/root.pem",
           "-CAkey", f"{d}/root.key", "-CAcreateserial", "-out", f"{d}/{leaf}.pem", "-days", "30",
           "-extfile", f"{d}/{leaf}.ext")

# --- nginx: endpoints on cert A, on cert B, or stopped ---
def nginx_conf(on_b, stopped):
    blocks = []
    for cert, members in (("a", [i for i in range(N) if i not in on_b and i not in stopped]),
                          ("b", [i for i in range(N) if i in on_b and i not in stopped])):
        if not members:
            continue
        listens = "".join(f"    listen {addr(i)}:{PORT} ssl;\n" for i in members)
        blocks.append(f"""  server {{
{listens}    server_name _;
    ssl_certificate {WORK}/{cert}.pem;
    ssl_certificate_key {WORK}/{cert}.key;
    return 200 "ok\\n";
  }}
""")
    conf = f"""daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  ssl_session_cache off;
  ssl_session_tickets off;
  client_body_temp_path {WORK}/body;
  proxy_temp_path {WORK}/proxy;
  fastcgi_temp_path {WORK}/fastcgi;
  uwsgi_temp_path {WORK}/uwsgi;
  scgi_temp_path {WORK}/scgi;
{''.join(blocks)}}}
"""
    with open(f"{WORK}/nginx.conf", "w") as f:
        f.write(conf)

def nginx_reload():
    sh("nginx", "-p", WORK, "-c", f"{WORK}/nginx.conf", "-s", "reload")
    time.sleep(1.0)  # the new worker takes over the listeners

# --- certprobe config ---
def certprobe_conf(verdict_ms):
    lines = [f"global:\n  interval: {int(INTERVAL * 1000)}ms\n  connect_timeout: 1s\n  timeout: 2s\n"
             f"  verdict_timeout: {verdict_ms}ms\n  concurrency: 64\n",
             f"trust_stores:\n  soak:\n    class: internal\n    pem_files: [{WORK}/root.pem]\n",
             "endpoints:\n"]
    for i in range(N):
        lines.append(f"  - name: {name(i)}\n    host: {addr(i)}\n    port: {PORT}\n    sni: soak.test\n")
    with open(f"{WORK}/certprobe.yaml", "w") as f:
        f.write("".join(lines))

# --- metrics ---
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

FAMILIES = ("certprobe_probe_failure", "certprobe_probe_success",
            "certprobe_leaf_changed_timestamp_seconds", "certprobe_last_probe_timestamp_seconds",
            "certprobe_endpoints", "certprobe_addresses", "certprobe_config_last_reload_successful",
            "certprobe_scheduler_lag_seconds", "certprobe_scheduler_behind_total",
            "certprobe_probes_total")

def scrape():
    with urllib.request.urlopen(f"http://127.0.0.1:{MPORT}/metrics", timeout=30) as r:
        body = r.read().decode()
    out = {"_bytes": [({}, float(len(body)))]}
    for line in body.splitlines():
        if not line.startswith(FAMILIES):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out

def by_endpoint(metrics, family, **match):
    res = {}
    for labels, value in metrics.get(family, []):
        if all(labels.get(k) == v for k, v in match.items()):
            res[labels.get("endpoint")] = value
    return res

def gauge(metrics, family):
    v = metrics.get(family, [])
    return v[0][1] if v else None

# --- process figures ---
def proc_figures(pid, samples=10):
    rss, threads, sockets, other = [], [], [], []
    for _ in range(samples):
        with open(f"/proc/{pid}/status") as f:
            st = f.read()
        rss.append(int(re.search(r"VmRSS:\s+(\d+)", st).group(1)))
        threads.append(int(re.search(r"Threads:\s+(\d+)", st).group(1)))
        s = o = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:"):
                s += 1
            else:
                o += 1
        sockets.append(s); other.append(o)
        time.sleep(0.2)
    return {"rss_kib": max(rss), "threads_min": min(threads), "threads_max": max(threads),
            "sockets_min": min(sockets), "sockets_max": max(sockets),
            "other_fds_min": min(other), "other_fds_max": max(other)}

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def wait_reprobed(indices, since, deadline_s):
    """Until every endpoint in `indices` finished a probe that started after `since`."""
    deadline = time.time() + deadline_s
    while True:
        mm = scrape()
        last = by_endpoint(mm, "certprobe_last_probe_timestamp_seconds")
        pending = [i for i in indices if last.get(name(i), 0) < since + 3]
        if not pending or time.time() > deadline:
            return mm, pending
        time.sleep(2)

def cleanup():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()

def main():
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    pki()
    on_b, stopped = set(), set()
    nginx_conf(on_b, stopped)
    nginx = subprocess.Popen(["nginx", "-p", WORK, "-c", f"{WORK}/nginx.conf"],
                             stdout=open(f"{WORK}/nginx.out", "w"), stderr=subprocess.STDOUT)
    procs.append(nginx)
    time.sleep(1.5)
    if nginx.poll() is not None:
        sys.exit(f"nginx exited: {open(f'{WORK}/nginx.out').read()}")
    verdict_ms = 1000
    certprobe_conf(verdict_ms)
    daemon = subprocess.Popen([BIN, "--log.level", "warn", "probe", "-c", f"{WORK}/certprobe.yaml",
                               "--web.listen-address", f"127.0.0.1:{MPORT}"],
                              stdout=open(f"{WORK}/daemon.out", "w"), stderr=subprocess.STDOUT)
    procs.append(daemon)
    # Round 1: every endpoint probed once (its last-probe timestamp exists).
    deadline = time.time() + 120
    while True:
        time.sleep(1)
        if daemon.poll() is not None:
            sys.exit(f"daemon exited: {open(f'{WORK}/daemon.out').read()[-3000:]}")
        try:
            m = scrape()
        except OSError:
            continue
        done = len(by_endpoint(m, "certprobe_last_probe_timestamp_seconds"))
        if done >= N:
            break
        if time.time() > deadline:
            sys.exit(f"first round incomplete after 120 s: {done}/{N}")
    ok = sum(1 for v in by_endpoint(m, "certprobe_probe_success").values() if v == 1)
    log(f"round 1 complete: {done} endpoints probed, {ok} successful")
    if ok != N:
        violations.append(f"round 1: only {ok}/{N} endpoints successful")
    time.sleep(INTERVAL)
    deadline = time.time() + 30
    while gauge(m, "certprobe_addresses") != N and time.time() < deadline:
        time.sleep(1)
        m = scrape()
    base = proc_figures(daemon.pid)
    base_cpu = cpu_seconds(daemon.pid)
    rss_series = [base["rss_kib"]]
    base_gauges = {g: gauge(m, g) for g in ("certprobe_endpoints", "certprobe_addresses")}
    log(f"baseline after round 1: {base} {base_gauges}")
    t0 = time.time()
    phase_log = []      # (phase, stopped, switched, restarted, t_flap)
    switched_at = {}    # endpoint index -> time of its switch to B
    reloads = 0

    def verify_phase(ph):
        nonlocal m
        k, st, sw, rs, t = ph
        # Wait (bounded) until every flapped endpoint was probed again after the flap: with
        # 2,000 endpoints on a loaded machine the scheduler may run behind its interval.
        m, pending = wait_reprobed(st + sw + rs, t, 15 * INTERVAL)
        if pending:
            violations.append(f"phase {k}: {len(pending)} flapped endpoints not re-probed within {15 * INTERVAL:.0f} s: {[name(i) for i in pending[:5]]}")
        failure = by_endpoint(m, "certprobe_probe_failure", reason="connect_refused")
        success = by_endpoint(m, "certprobe_probe_success")
        changed = by_endpoint(m, "certprobe_leaf_changed_timestamp_seconds")
        bad_stop = [name(i) for i in st if failure.get(name(i)) != 1]
        bad_restart = [name(i) for i in rs if success.get(name(i)) != 1]
        bad_switch = [name(i) for i in sw if not (changed.get(name(i), 0) >= t - 1)]
        for what, bad in (("stopped endpoints without connect_refused", bad_stop),
                          ("restarted endpoints not successful", bad_restart),
                          ("switched endpoints without a leaf change", bad_switch)):
            if bad:
                violations.append(f"phase {k}: {len(bad)} {what}: {bad[:5]}")
        log(f"phase {k} verified: {len(st) - len(bad_stop)}/{len(st)} stopped seen as connect_refused, "
            f"{len(rs) - len(bad_restart)}/{len(rs)} restarted successful, "
            f"{len(sw) - len(bad_switch)}/{len(sw)} switched with a new leaf-change timestamp")

    for r in range(2, ROUNDS + 1):
        # Wait for the start of round r.
        time.sleep(max(0.0, t0 + (r - 1) * INTERVAL - time.time()))
        if daemon.poll() is not None:
            violations.append(f"daemon exited during round {r}")
            break
        rss_series.append(rss_kib(daemon.pid))
        if r % FLAP_EVERY == 0:
            if phase_log:
                verify_phase(phase_log[-1])
            k = r // FLAP_EVERY
            lo = (2 * k * FLAP_SIZE) % N
            new_stopped = {(lo + j) % N for j in range(FLAP_SIZE)}
            new_switched = {(lo + FLAP_SIZE + j) % N for j in range(FLAP_SIZE)} - on_b
            restarted = stopped - new_stopped
            stopped = new_stopped
            on_b |= new_switched
            nginx_conf(on_b, stopped)
            nginx_reload()
            t = time.time()
            for i in new_switched:
                switched_at[i] = t
            phase_log.append((k, sorted(stopped), sorted(new_switched), sorted(restarted), t))
            log(f"round {r}: flap {k}: stopped {len(stopped)}, restarted {len(restarted)}, switched {len(new_switched)} (on cert B: {len(on_b)})")
        if r % RELOAD_EVERY == 0 and r <= ROUNDS - 3:
            verdict_ms = 900 if verdict_ms == 1000 else 1000
            certprobe_conf(verdict_ms)
            daemon.send_signal(signal.SIGHUP)
            reloads += 1
            time.sleep(2)
            mm = scrape()
            if gauge(mm, "certprobe_config_last_reload_successful") != 1:
                violations.append(f"round {r}: reload not successful")
            log(f"round {r}: SIGHUP reload #{reloads} (verdict_timeout {verdict_ms}ms)")
    # Let the last flap show up (two full intervals), then verify it and sample.
    time.sleep(2 * INTERVAL + 3)
    if phase_log:
        verify_phase(phase_log[-1])
    deadline = time.time() + 30
    while gauge(m, "certprobe_addresses") != N and time.time() < deadline:
        time.sleep(1)
        m = scrape()
    time.sleep(INTERVAL)  # as for the baseline: one interval without scrapes before sampling
    end = proc_figures(daemon.pid)
    rss_series.append(end["rss_kib"])
    cpu = cpu_seconds(daemon.pid) - base_cpu
    wall = time.time() - t0
    probes = {l.get("result"): v for l, v in m.get("certprobe_probes_total", [])}
    end_gauges = {g: gauge(m, g) for g in ("certprobe_endpoints", "certprobe_addresses")}
    log(f"end: {end} {end_gauges}")
    if end["rss_kib"] > base["rss_kib"] * 1.10:
        violations.append(f"RSS grew more than 10%: {base['rss_kib']} KiB -> {end['rss_kib']} KiB")
    if end["other_fds_min"] > base["other_fds_max"]:
        violations.append(f"non-socket fds grew: {base['other_fds_max']} -> {end['other_fds_min']}")
    if end["sockets_min"] > base["sockets_max"]:
        violations.append(f"sockets above baseline: {base['sockets_min']}..{base['sockets_max']} -> {end['sockets_min']}..{end['sockets_max']}")
    if end["threads_min"] > base["threads_max"]:
        violations.append(f"threads grew: {base['threads_max']} -> {end['threads_min']}")
    if end_gauges != base_gauges:
        violations.append(f"endpoint/address gauges changed: {base_gauges} -> {end_gauges}")
    with open(f"{WORK}/daemon.out") as f:
        panics = [l for l in f if "panicked" in l]
    if panics:
        violations.append(f"daemon panicked: {panics[:3]}")
    summary = {
        "date": started, "n": N, "rounds": ROUNDS, "interval_s": INTERVAL,
        "flaps": len(phase_log), "flap_size": FLAP_SIZE, "switched_total": len(switched_at),
        "reloads": reloads, "after_round_1": base, "end": end,
        "gauges_after_round_1": base_gauges, "gauges_end": end_gauges,
        "rss_kib_per_round": rss_series, "wall_s_after_round_1": round(wall, 1),
        "daemon_cpu_s_after_round_1": round(cpu, 1), "probes_total_end": probes,
        "scheduler_behind_total_end": gauge(m, "certprobe_scheduler_behind_total"),
        "metrics_body_bytes_end": gauge(m, "_bytes"),
        "violations": violations,
    }
    with open(f"{WORK}/summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    print("SOAK " + ("PASSED" if not violations else f"FAILED: {len(violations)} violation(s)"))
    return 0 if not violations else 1

try:
    rc = main()
finally:
    cleanup()
    if not KEEP:
        subprocess.run(["rm", "-rf", WORK])
sys.exit(rc)
PY
