#!/usr/bin/env bash
# Prints, per benchmark group, the throughput of each bench and its ratio to the group's
# baseline, from criterion's estimates of the last run (`cargo bench --bench NAME` first).
# Usage: scripts/bench-ratio.sh [GROUP-PREFIX]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "${1:-}" <<'PY'
import json, os, sys
prefix = sys.argv[1]
root = "target/criterion"
if not os.path.isdir(root):
    sys.exit("no criterion results: run cargo bench first")
for group in sorted(os.listdir(root)):
    gdir = os.path.join(root, group)
    if not group.startswith(prefix.replace("/", "_")) or not os.path.isdir(gdir):
        continue
    rows = {}
    for bench in sorted(os.listdir(gdir)):
        est = os.path.join(gdir, bench, "new", "estimates.json")
        bm = os.path.join(gdir, bench, "new", "benchmark.json")
        if not os.path.exists(est):
            continue
        ns = json.load(open(est))["median"]["point_estimate"]
        tp = json.load(open(bm)).get("throughput") or {}
        n = tp.get("Elements") or 1
        rows[bench] = n / ns * 1e9
    base = next((v for k, v in rows.items() if k.startswith("baseline")), None)
    for bench, rate in rows.items():
        ratio = f"{rate / base:5.2f}x baseline" if base else ""
        print(f"{group:<28} {bench:<24} {rate:>12,.0f} events/s  {ratio}")
PY
