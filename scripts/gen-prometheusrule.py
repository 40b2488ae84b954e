#!/usr/bin/env python3
"""Write deploy/kubernetes/base/prometheusrule.yaml from deploy/prometheus/alerts.yml.

alerts.yml is the single source of the alert rules (promtool tests it); the
PrometheusRule embeds the same groups for the Prometheus Operator. Run this after
editing alerts.yml; scripts/check-deploy.sh fails while the two differ.

    scripts/gen-prometheusrule.py            write the file
    scripts/gen-prometheusrule.py --check    exit 1 if the file is out of date
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "deploy/prometheus/alerts.yml"
DST = ROOT / "deploy/kubernetes/base/prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by scripts/gen-prometheusrule.py:
# edit alerts.yml (and its tests), then re-run the script.
#
# Your Prometheus must select this rule (ruleSelector, e.g. a
# `release: <your-prometheus>` label for kube-prometheus-stack).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: certprobe
  labels:
    app.kubernetes.io/name: certprobe
spec:
"""


def render() -> str:
    lines = SRC.read_text().splitlines()
    # Drop the leading comment block of alerts.yml; keep everything from `groups:`.
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = "\n".join(("  " + line) if line.strip() else "" for line in lines[start:])
    return HEADER + body + "\n"


def main() -> int:
    want = render()
    if "--check" in sys.argv[1:]:
        if not DST.exists() or DST.read_text() != want:
            print(f"{DST.relative_to(ROOT)} is out of date: run scripts/gen-prometheusrule.py",
                  file=sys.stderr)
            return 1
        return 0
    DST.write_text(want)
    print(f"wrote {DST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
