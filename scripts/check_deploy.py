#!/usr/bin/env python3
"""Structural checks of certprobe's deployment artefacts (called by check-deploy.sh).

The kustomize trees are rendered by the real kustomize (`kubectl kustomize DIR`, offline;
scripts/test.sh installs Debian's kubernetes-client where no kubectl exists), and the
rendered objects are checked for what matters to operators:

* every YAML file parses; every kustomize resource, generator file and patch
  target exists;
* workloads: non-root, read-only root fs, no privilege escalation, all
  capabilities dropped, /ready readiness and /healthz liveness, resource
  requests, the daemon's arguments, volumes that point at existing objects;
* StatefulSet overlay: --shard from the pod ordinal, SHARD_COUNT == replicas,
  headless governing Service, the Deployment removed;
* Service / ServiceMonitor / pods select each other, the ServiceMonitor drops
  the operator's clashing `endpoint` label;
* the PrometheusRule carries exactly the groups of deploy/prometheus/alerts.yml;
* every metric name used by alerts.yml and the Grafana dashboard is one
  certprobe exports (the family list of the daemon issue), so a typo fails;
* the Grafana dashboard: datasource template variable, every panel queries
  certprobe_ metrics through it, the required panels exist.

Exit status 0 when everything holds; otherwise every problem is printed and the
exit status is 1.
"""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - reported to the operator
    print("check_deploy: PyYAML is missing: apt-get install python3-yaml", file=sys.stderr)
    sys.exit(2)

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy/kubernetes"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/certprobe.json"

# Metric families certprobe exports (issue 4), with the prefix. Counters appear
# with _total, the build info with _info (prometheus-client's Info type).
FAMILIES = {
    "certprobe_" + n
    for n in """
    probe_success probe_duration_seconds probe_failure last_probe_timestamp_seconds
    tls_version_info tls_cipher_info cert_not_after_timestamp_seconds
    cert_not_before_timestamp_seconds cert_info chain_verified
    chain_expiry_timestamp_seconds hostname_match policy_status policy_rule_failed
    client_cert_not_after_timestamp_seconds mtls_enforced pool_consistent
    leaf_changed_timestamp_seconds config_last_reload_successful
    config_last_reload_success_timestamp_seconds probes_total scheduler_lag_seconds
    build_info endpoints addresses
    cert_revoked revocation_status crl_fetch_success crl_fetch_failure
    crl_this_update_timestamp_seconds crl_next_update_timestamp_seconds crl_entries
    crl_size_bytes crl_last_fetch_timestamp_seconds
    ocsp_fetch_success ocsp_fetch_failure ocsp_next_update_timestamp_seconds
    ocsp_last_fetch_timestamp_seconds
    tls_info chain_problem chain_verify_error cert_facts_timestamp_seconds legacy_tls
    handshake_signature_weak client_auth_requested client_cert_accepted
    probe_phase_duration_seconds_bucket probe_phase_duration_seconds_sum
    probe_phase_duration_seconds_count config_warnings scheduler_behind_total
    probes_in_flight chain_order_valid chain_complete chain_root_sent
    chain_weak_signature_hash
    discovery_success discovery_failure discovery_targets
    discovery_last_success_timestamp_seconds discovery_target_info
    oauth_metadata_failure
    """.split()
}
# Families only `metrics: {detail: full}` exports (docs/metrics.md, "Series budget"): the
# shipped alerts and dashboard must work on the default detail, so they never use these.
FULL_ONLY = {
    "certprobe_" + n
    for n in """
    probe_duration_seconds tls_version_info tls_cipher_info chain_order_valid chain_complete
    chain_root_sent chain_weak_signature_hash
    """.split()
}
# Per-certificate families: the default detail exports the leaf (position 0) only.
LEAF_ONLY = {
    "certprobe_cert_not_after_timestamp_seconds",
    "certprobe_cert_not_before_timestamp_seconds",
    "certprobe_cert_info",
}
# Sparse families and the healthy value the default detail never exports: a query comparing
# with it would never match (or, with `unless`/`absent`, always).
SPARSE_HEALTHY = {
    "certprobe_hostname_match": "1",
    "certprobe_policy_rule_failed": "0",
    "certprobe_client_auth_requested": "0",
    "certprobe_legacy_tls": "0",
    "certprobe_handshake_signature_weak": "0",
    "certprobe_chain_problem": "0",
}
# Series Prometheus itself creates.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

PROBLEMS: list[str] = []


def problem(msg: str) -> None:
    PROBLEMS.append(msg)


def rel(p: pathlib.Path) -> str:
    return str(p.relative_to(ROOT))


# --------------------------------------------------------------------------- YAML


def load_all(path: pathlib.Path) -> list:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(f"{rel(path)}: YAML does not parse: {e}")
        return []


def check_yaml_parses() -> None:
    for path in sorted((ROOT / "deploy").rglob("*.y*ml")):
        load_all(path)


# ---------------------------------------------------------------------- kustomize


def render(kdir: pathlib.Path) -> list[dict]:
    """Resources of one kustomization, rendered by the real kustomize (`kubectl kustomize`,
    offline; Debian's kubernetes-client package ships it)."""
    if not (kdir / "kustomization.yaml").exists():
        problem(f"{rel(kdir)}: no kustomization.yaml")
        return []
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        problem("kubectl not found (install Debian's kubernetes-client)")
        return []
    r = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, text=True)
    if r.returncode != 0:
        problem(f"{rel(kdir)}: kubectl kustomize failed: {r.stderr.strip()}")
        return []
    return [d for d in yaml.safe_load_all(r.stdout) if isinstance(d, dict)]


def by_kind(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r.get("kind") == kind]


def one(resources: list[dict], kind: str, where: str) -> dict | None:
    found = by_kind(resources, kind)
    if len(found) != 1:
        problem(f"{where}: expected exactly one {kind}, found {len(found)}")
        return None
    return found[0]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_workload(w: dict, resources: list[dict], where: str) -> None:
    name = f"{where}: {w['kind']}/{w['metadata']['name']}"
    spec = w["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    if not selects(spec["selector"]["matchLabels"], pod_labels):
        problem(f"{name}: selector does not match the pod template labels")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problem(f"{name}: pod securityContext.runAsNonRoot must be true")
    if not psc.get("runAsUser"):
        problem(f"{name}: pod securityContext.runAsUser must be a non-zero uid")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(f"{name}: seccompProfile RuntimeDefault expected")
    if pod.get("automountServiceAccountToken") is not False:
        problem(f"{name}: automountServiceAccountToken must be false")
    containers = pod.get("containers", [])
    if len(containers) != 1:
        problem(f"{name}: expected one container")
        return
    c = containers[0]
    csc = c.get("securityContext", {})
    if csc.get("readOnlyRootFilesystem") is not True:
        problem(f"{name}: readOnlyRootFilesystem must be true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(f"{name}: allowPrivilegeEscalation must be false")
    if csc.get("capabilities", {}).get("drop") != ["ALL"]:
        problem(f"{name}: capabilities must drop ALL")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/ready":
        problem(f"{name}: readinessProbe must GET /ready")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        problem(f"{name}: livenessProbe must GET /healthz")
    req = c.get("resources", {}).get("requests", {})
    if not req.get("cpu") or not req.get("memory"):
        problem(f"{name}: cpu and memory requests required")
    args = c.get("args", [])
    joined = " ".join(args)
    for want in ("probe", "-c /etc/certprobe/certprobe.yaml", "--web.listen-address=0.0.0.0:9915"):
        if want not in joined:
            problem(f"{name}: args lack {want!r}")
    if "--once" in args:
        problem(f"{name}: the daemon must not run with --once")
    port_names = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if port_names.get("metrics") != 9915:
        problem(f"{name}: container port `metrics` must be 9915")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    if mounts.get("config", {}).get("mountPath") != "/etc/certprobe":
        problem(f"{name}: the config volume must be mounted at /etc/certprobe")
    for m in mounts.values():
        if m.get("readOnly") is not True:
            problem(f"{name}: volume mount {m['name']} must be readOnly")
        if "subPath" in m:
            problem(f"{name}: volume mount {m['name']} uses subPath (updates would not reach the pod)")
    names = {(r["kind"], r["metadata"]["name"]) for r in resources}
    for v in pod.get("volumes", []):
        if v["name"] not in mounts:
            problem(f"{name}: volume {v['name']} is not mounted")
        if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in names:
            problem(f"{name}: volume {v['name']} refers to a missing ConfigMap {v['configMap']['name']}")
        if "secret" in v and ("Secret", v["secret"]["secretName"]) not in names:
            problem(f"{name}: volume {v['name']} refers to a missing Secret {v['secret']['secretName']}")
    sa = pod.get("serviceAccountName")
    if sa and ("ServiceAccount", sa) not in names:
        problem(f"{name}: ServiceAccount {sa} missing")


def check_scrape_path(resources: list[dict], pod_labels: dict, where: str) -> dict | None:
    svc = one(resources, "Service", where)
    sm = one(resources, "ServiceMonitor", where)
    if svc is None or sm is None:
        return svc
    if not selects(svc["spec"]["selector"], pod_labels):
        problem(f"{where}: Service selector does not match the pods")
    if not selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})):
        problem(f"{where}: ServiceMonitor does not select the Service")
    ns = svc["metadata"].get("namespace")
    if ns not in sm["spec"].get("namespaceSelector", {}).get("matchNames", [ns]):
        problem(f"{where}: ServiceMonitor namespaceSelector misses namespace {ns}")
    svc_ports = {p["name"] for p in svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        if ep.get("port") not in svc_ports:
            problem(f"{where}: ServiceMonitor port {ep.get('port')} is not a Service port")
        if ep.get("path", "/metrics") != "/metrics":
            problem(f"{where}: ServiceMonitor must scrape /metrics")
        drops = [r for r in ep.get("relabelings", [])
                 if r.get("action") == "labeldrop" and re.fullmatch(r.get("regex", ""), "endpoint")]
        if not ep.get("honorLabels") and not drops:
            problem(f"{where}: ServiceMonitor must drop the operator's `endpoint` target label")
    return svc


def check_prometheusrule(resources: list[dict], where: str) -> None:
    pr = one(resources, "PrometheusRule", where)
    if pr is None:
        return
    alerts = load_all(ALERTS)
    if alerts and pr["spec"].get("groups") != alerts[0].get("groups"):
        problem(f"{where}: PrometheusRule groups differ from {rel(ALERTS)}: "
                "run scripts/gen-prometheusrule.py")


def check_config_map(resources: list[dict], where: str) -> None:
    # kustomize's configMapGenerator appends a hash of the content to the name (and rewrites
    # every reference), so that a config change rolls the pods.
    cms = [r for r in by_kind(resources, "ConfigMap")
           if re.fullmatch(r"certprobe-config(-[a-z0-9]{10})?", r["metadata"]["name"])]
    if len(cms) != 1:
        problem(f"{where}: ConfigMap certprobe-config missing")
        return
    text = cms[0].get("data", {}).get("certprobe.yaml")
    if text is None:
        problem(f"{where}: ConfigMap certprobe-config has no certprobe.yaml")
        return
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict) or not cfg.get("endpoints"):
        problem(f"{where}: certprobe.yaml must list endpoints")


def check_kubernetes() -> None:
    base = render(K8S / "base")
    where = "kubernetes/base"
    dep = one(base, "Deployment", where)
    if dep is not None:
        if dep["spec"].get("replicas") != 1:
            problem(f"{where}: the Deployment runs exactly 1 replica")
        check_workload(dep, base, where)
        check_scrape_path(base, dep["spec"]["template"]["metadata"]["labels"], where)
    if by_kind(base, "StatefulSet"):
        problem(f"{where}: the base has no StatefulSet (it is the overlay's)")
    check_prometheusrule(base, where)
    check_config_map(base, where)
    if one(base, "Secret", where) is not None:
        s = by_kind(base, "Secret")[0]
        if s.get("type") != "kubernetes.io/tls" or set(s.get("data", {})) != {"tls.crt", "tls.key"}:
            problem(f"{where}: Secret must be kubernetes.io/tls with tls.crt and tls.key")

    sts_tree = render(K8S / "overlays/statefulset")
    where = "kubernetes/overlays/statefulset"
    if by_kind(sts_tree, "Deployment"):
        problem(f"{where}: the Deployment must be removed")
    sts = one(sts_tree, "StatefulSet", where)
    if sts is None:
        return
    check_workload(sts, sts_tree, where)
    svc = check_scrape_path(sts_tree, sts["spec"]["template"]["metadata"]["labels"], where)
    if svc is not None:
        if sts["spec"].get("serviceName") != svc["metadata"]["name"]:
            problem(f"{where}: serviceName must be the Service {svc['metadata']['name']}")
        if svc["spec"].get("clusterIP") != "None":
            problem(f"{where}: the governing Service must be headless (clusterIP: None)")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}
    if "--shard=$(SHARD_INDEX)/$(SHARD_COUNT)" not in c.get("args", []):
        problem(f"{where}: args must contain --shard=$(SHARD_INDEX)/$(SHARD_COUNT)")
    idx = env.get("SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if idx != "metadata.labels['apps.kubernetes.io/pod-index']":
        problem(f"{where}: SHARD_INDEX must come from the pod-index label")
    count = env.get("SHARD_COUNT", {}).get("value")
    if count != str(sts["spec"].get("replicas")):
        problem(f"{where}: SHARD_COUNT ({count}) must equal replicas ({sts['spec'].get('replicas')})")
    check_prometheusrule(sts_tree, where)
    check_config_map(sts_tree, where)


# --------------------------------------------------------------------- metrics


METRIC_RE = re.compile(r"\b(certprobe_[a-z0-9_]+|up)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    # Drop label matchers and strings so label values are not taken for names.
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    return set(METRIC_RE.findall(expr))


def check_names(names: set[str], where: str) -> None:
    for n in sorted(names - FAMILIES - PROMETHEUS_SERIES):
        problem(f"{where}: unknown metric {n} (not a certprobe family)")


def check_default_detail(expr: str, where: str) -> None:
    """The query works on what `detail: default` exports."""
    for n in sorted(metric_names(expr) & FULL_ONLY):
        problem(f"{where}: {n} exists only with metrics detail full (docs/metrics.md migration table)")
    for m in re.finditer(r"(certprobe_[a-z0-9_]*[a-z0-9])(\{[^}]*\})?", expr):
        name, sel = m.group(1), m.group(2) or ""
        if name in LEAF_ONLY and not re.search(r'position\s*=\s*"0"', sel):
            problem(f"{where}: {name} without position=\"0\" (the default detail exports the leaf only)")
    for name, healthy in SPARSE_HEALTHY.items():
        for m in re.finditer(re.escape(name) + r"(\{[^}]*\})?\s*(==|!=)\s*([0-9]+)", expr):
            op, v = m.group(2), m.group(3)
            if (op == "==" and v == healthy) or (op == "!=" and v != healthy):
                problem(f"{where}: {name} {op} {v} selects the healthy value, which the default detail does not export")


def check_alert_names() -> None:
    docs = load_all(ALERTS)
    if not docs:
        return
    seen = set()
    for g in docs[0]["groups"]:
        for r in g["rules"]:
            name = r.get("alert") or r.get("record")
            check_names(metric_names(r["expr"]), f"{rel(ALERTS)}: {name}")
            check_default_detail(r["expr"], f"{rel(ALERTS)}: {name}")
            seen.add(name)
            if r.get("alert"):
                if r.get("labels", {}).get("severity") not in ("warning", "critical"):
                    problem(f"{rel(ALERTS)}: {name}: severity label warning|critical required")
                ann = r.get("annotations", {})
                for key in ("summary", "description"):
                    if key not in ann:
                        problem(f"{rel(ALERTS)}: {name}: annotation {key} missing")
                for ref in re.findall(r"\{\{[^}]*\}\}", ann.get("summary", "") + ann.get("description", "")):
                    for n in metric_names(ref.replace('\\"', '"')):
                        if n != "up" and n not in FAMILIES:
                            problem(f"{rel(ALERTS)}: {name}: template queries unknown metric {n}")


# --------------------------------------------------------------------- grafana


REQUIRED_PANEL_METRICS = {
    # what the dashboard must show -> a metric its query must use
    "days left": "certprobe_cert_not_after_timestamp_seconds",
    "policy failures by rule": "certprobe_policy_rule_failed",
    "trust by store": "certprobe_chain_verified",
    "probe failures by reason": "certprobe_probe_failure",
    "pool consistency": "certprobe_pool_consistent",
    "scheduler lag": "certprobe_scheduler_lag_seconds",
    "probes per second": "certprobe_probes_total",
    "reload status": "certprobe_config_last_reload_successful",
}


def panels(items: list) -> list:
    out = []
    for p in items:
        out.append(p)
        out.extend(panels(p.get("panels", [])))
    return out


def check_grafana() -> None:
    try:
        dash = json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as e:
        problem(f"{rel(DASHBOARD)}: not valid JSON: {e}")
        return
    where = rel(DASHBOARD)
    ds_vars = [v for v in dash.get("templating", {}).get("list", [])
               if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    if len(ds_vars) != 1:
        problem(f"{where}: needs one datasource template variable of type prometheus")
        return
    ds_ref = "${" + ds_vars[0]["name"] + "}"
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            if (v.get("datasource") or {}).get("uid") != ds_ref:
                problem(f"{where}: variable {v.get('name')} must use datasource {ds_ref}")
            q = v.get("query")
            qtext = q.get("query", "") if isinstance(q, dict) else str(q)
            check_names(metric_names(qtext), f"{where}: variable {v.get('name')}")
            check_default_detail(qtext, f"{where}: variable {v.get('name')}")
    ids = set()
    used = set()
    for p in panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        if p.get("id") in ids:
            problem(f"{where}: duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if (p.get("datasource") or {}).get("uid") != ds_ref:
            problem(f"{where}: panel {title!r} must use datasource {ds_ref}")
        targets = p.get("targets", [])
        if not targets:
            problem(f"{where}: panel {title!r} has no targets")
        for t in targets:
            expr = t.get("expr", "")
            names = metric_names(expr)
            if not any(n.startswith("certprobe_") for n in names):
                problem(f"{where}: panel {title!r} target {t.get('refId')} queries no certprobe_ metric")
            check_names(names, f"{where}: panel {title!r}")
            check_default_detail(expr, f"{where}: panel {title!r}")
            used |= names
            if (t.get("datasource") or {}).get("uid", ds_ref) != ds_ref:
                problem(f"{where}: panel {title!r} target {t.get('refId')} must use {ds_ref}")
    cells: dict[tuple[int, int], str] = {}
    for p in dash.get("panels", []):
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24:
            problem(f"{where}: panel {p.get('title')!r} is wider than the 24-column grid")
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    problem(f"{where}: panels {cells[(x, y)]!r} and {p.get('title')!r} overlap")
                    break
                cells[(x, y)] = p.get("title", "?")
            else:
                continue
            break
    for what, metric in REQUIRED_PANEL_METRICS.items():
        if metric not in used:
            problem(f"{where}: no panel shows {what} ({metric})")
    days = [p for p in panels(dash.get("panels", [])) if p.get("type") == "table"
            and any("certprobe_cert_not_after_timestamp_seconds" in t.get("expr", "")
                    for t in p.get("targets", []))]
    if not days:
        problem(f"{where}: the days-left panel must be a table")
    for p in days:
        sort = p.get("options", {}).get("sortBy", [])
        if not sort or sort[0].get("desc") is not False:
            problem(f"{where}: days-left table {p.get('title')!r} must sort ascending")


def main() -> int:
    check_yaml_parses()
    check_kubernetes()
    check_alert_names()
    check_grafana()
    for p in PROBLEMS:
        print(f"FAIL: {p}", file=sys.stderr)
    if PROBLEMS:
        print(f"check_deploy: {len(PROBLEMS)} problem(s)", file=sys.stderr)
        return 1
    print("check_deploy: kubernetes, alert names and grafana dashboard OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
