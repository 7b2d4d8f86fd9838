#!/usr/bin/env bash
# (g) OCSF from Parquet vs the same OCSF as NDJSON: `replay` with the shipped pack over a
# Security Lake-shaped directory (pyarrow-written, zstd, 5,000 rows per file, row groups of
# 1,000) and over the same records as one NDJSON file, in interleaved repetitions. The records
# are the CloudTrail part of the generated mix mapped to OCSF API Activity
# (scripts/ocsf-lake.py map), as Security Lake maps CloudTrail. Prints events/s of each and the
# median of the per-repetition ratios (Parquet / JSON), and checks both decide the same.
#
# Usage: scripts/bench/parquet.sh MIX.jsonl [REPS]   (run by scripts/bench.sh; needs python3,
# and installs pyarrow into target/bench/venv on first use)
set -euo pipefail
cd "$(dirname "$0")/../.."

mix=$1
reps=${2:-5}
bin=target/release/sessionguard
work=target/bench/ocsf-$(basename "$mix" .jsonl)
venv=target/bench/venv

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet pyarrow
fi
if [ ! -s "$work/events.ocsf.jsonl" ] || [ ! -d "$work/lake" ]; then
    rm -rf "$work"
    mkdir -p "$work"
    python3 scripts/ocsf-lake.py map "$mix" >"$work/events.ocsf.jsonl"
    "$venv/bin/python" scripts/ocsf-lake.py lake "$work/events.ocsf.jsonl" --to "$work/lake" \
        --rows-per-file 5000 --row-group 1000 --compression zstd
fi
echo "input: $(wc -l <"$work/events.ocsf.jsonl") OCSF records, NDJSON $(du -m "$work/events.ocsf.jsonl" | cut -f1) MiB," \
    "lake $(find "$work/lake" -name '*.parquet' | wc -l) files $(du -sm "$work/lake" | cut -f1) MiB"

# events/s as replay reports it (its own clock, reading included), and the decisions.
rate() {
    "$bin" replay --no-progress "$1" 2>"$work/stderr" >"$work/decisions-$2"
    awk '$1 == "events/s" { print $2; exit }' "$work/stderr"
}
ratios=()
for _ in $(seq "$reps"); do
    json=$(rate "$work/events.ocsf.jsonl" json)
    lake=$(rate "$work/lake" lake)
    echo "  json $json events/s, parquet $lake events/s"
    ratios+=("$(python3 -c "print($lake / $json)")")
done
same=$(python3 - "$work/decisions-json" "$work/decisions-lake" <<'PY'
import json, sys
def placeless(path):
    out = []
    for line in open(path):
        d = json.loads(line)
        for e in d["evidence"].get("events", []):
            e.pop("origin", None)
        out.append(json.dumps(d, sort_keys=True))
    return sorted(out)
a, b = placeless(sys.argv[1]), placeless(sys.argv[2])
print(f"{len(a)} decisions, the same from both" if a == b else f"DIFFERENT: {len(a)} from JSON, {len(b)} from Parquet")
PY
)
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
printf '(g) OCSF Parquet lake vs NDJSON replay: %.2f (median of %d; %s)\n' "$median" "$reps" "$same"
