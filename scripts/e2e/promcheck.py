#!/usr/bin/env python3
"""Judge one Prometheus HTTP API answer for scripts/e2e.sh.

Reads the JSON body of /api/v1/query or /api/v1/alerts on stdin and exits 0 when the
condition holds, 1 when it does not (printing what it saw, for the failure message), and
2 when the answer is not a successful API response.

  promcheck.py series CHECK     every series of the instant vector satisfies CHECK, a Python
                                expression over v (the float value) and now (time.time());
                                at least one series is required
  promcheck.py absent           the instant vector is empty
  promcheck.py firing NAME K=V.. an alert NAME whose labels include every K=V is firing
                                (K~=V: its annotation K contains V)
  promcheck.py quiet K=V..      no alert (pending or firing) matches every K=V
  promcheck.py exactly A/E..    the firing alerts with an endpoint label are exactly these
                                alertname/endpoint pairs (and none is pending)
  promcheck.py value            print the single series' value (for later comparisons)
"""

import json
import sys
import time


def labels_str(metric):
    name = metric.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def want_labels(args):
    """K=V: label K equals V. K~=V: annotation K contains V (labels are checked first)."""
    labels, annotations = {}, {}
    for a in args:
        k, _, v = a.partition("=")
        if k.endswith("~"):
            annotations[k[:-1]] = v
        else:
            labels[k] = v
    return labels, annotations


def matches(alert, want):
    labels, annotations = want
    return all(alert["labels"].get(k) == v for k, v in labels.items()) and all(
        v in alert["annotations"].get(k, "") for k, v in annotations.items()
    )


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        body = json.load(sys.stdin)
    except ValueError as e:
        print(f"not JSON: {e}")
        return 2
    if body.get("status") != "success":
        print(f"API error: {body.get('errorType')}: {body.get('error')}")
        return 2
    data = body["data"]

    if mode in ("series", "absent", "value"):
        if data.get("resultType") != "vector":
            print(f"expected an instant vector, got {data.get('resultType')}")
            return 2
        result = data["result"]
        seen = "; ".join(f"{labels_str(r['metric'])} = {r['value'][1]}" for r in result) or "no series"
        if mode == "absent":
            if result:
                print(f"still present: {seen}")
                return 1
            return 0
        if mode == "value":
            if len(result) != 1:
                print(f"expected exactly one series, got: {seen}")
                return 1
            print(result[0]["value"][1])
            return 0
        check = args[0]
        if not result:
            print("no series")
            return 1
        now = time.time()
        bad = [r for r in result if not eval(check, {"v": float(r["value"][1]), "now": now})]  # noqa: S307
        if bad:
            print(f"want {check}; got: {seen}")
            return 1
        print(seen)
        return 0

    alerts = data["alerts"]
    if mode == "firing":
        name, want = args[0], want_labels(args[1:])
        for a in alerts:
            if a["labels"].get("alertname") == name and a["state"] == "firing" and matches(a, want):
                print(f"{name} firing: {a['annotations'].get('summary', '')}")
                return 0
        names = sorted({f"{a['labels'].get('alertname')}[{a['labels'].get('endpoint', '-')}]:{a['state']}" for a in alerts})
        near = [a["annotations"].get("summary", "") for a in alerts if a["labels"].get("alertname") == name]
        print(f"{name} {args[1:]} not firing; alerts now: {', '.join(names) or 'none'}; summaries of {name}: {near}")
        return 1
    if mode == "quiet":
        want = want_labels(args)
        hits = [a for a in alerts if matches(a, want)]
        if hits:
            print("; ".join(f"{a['labels']['alertname']} ({a['state']}): {a['annotations'].get('summary', '')}" for a in hits))
            return 1
        return 0
    if mode == "exactly":
        want = set(args)
        got = {f"{a['labels']['alertname']}/{a['labels']['endpoint']}" for a in alerts if "endpoint" in a["labels"]}
        pending = {f"{a['labels']['alertname']}/{a['labels'].get('endpoint', '-')}" for a in alerts if a["state"] != "firing"}
        if got != want or pending:
            print(f"unexpected: {sorted(got - want)}; missing: {sorted(want - got)}; pending: {sorted(pending)}")
            return 1
        print(f"{len(got)} alerts, as expected")
        return 0
    print(f"unknown mode {mode}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
