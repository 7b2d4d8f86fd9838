#!/usr/bin/env bash
# (c) Peer comparison: sessionguard against rsigma 0.23.0 (a Rust streaming Sigma engine with
# correlation windows) on the same CloudTrail JSON lines, with equivalent rules:
# bench/peer/rules/ (sessionguard) and bench/peer/sigma/ (Sigma, two detections and three
# per-session correlations: one event_count, two value_count).
#
# Usage: scripts/bench/peer.sh [FILE …]
#   Each FILE (CloudTrail JSON, one record per line) is one case. With no FILE, two cases are
#   generated into target/bench/:
#     generated           `sessionguard gen --sources cloudtrail --events 200000 --sessions 5000`
#     many distinct keys  scripts/bench/peer_many_keys.py: 150 000 records, every session reads
#                         hundreds of distinct S3 objects per window (rsigma's value_count recounts
#                         the window's distinct values on every event)
#
# Per case: once, both engines' correlation matches per rule and how many sessions they share,
# and the parity check: sessionguard loading rsigma's own Sigma files (bench/peer/sigma) as
# written, compared with rsigma group by group;
# then PEER_REPS (default 15) interleaved repetitions (sessionguard, rsigma, sessionguard, …),
# wall time of each whole process (start-up and rule loading included; both write their matches
# to /dev/null), and the median of the per-repetition ratios sessionguard rate / rsigma rate
# next to each side's median rate. A `cpu` line gives the same ratio on CPU time (user +
# system), steadier than wall time when other jobs share the machine; both engines run on one
# thread here. The last stdout line of each case is its `(c) …` line.
#
# Environment: PEER_REPS (repetitions, default 15); PEER_NO_INSTALL=1 (fail instead of running
# `cargo install rsigma --version 0.23.0 --locked` when rsigma is not found); RSIGMA (path of
# the rsigma binary, default the one on PATH, else ~/.cargo/bin/rsigma).
set -euo pipefail
cd "$(dirname "$0")/../.."

RSIGMA_VERSION=0.23.0
REPS=${PEER_REPS:-15}
if ! [[ $REPS =~ ^[1-9][0-9]*$ ]]; then
    echo "peer.sh: PEER_REPS must be a positive integer, not '$REPS'" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "peer.sh: python3 is needed" >&2; exit 1; }

# --- rsigma ------------------------------------------------------------------------------------
find_rsigma() {
    if [[ -n ${RSIGMA:-} ]]; then
        [[ -x $RSIGMA ]] && echo "$RSIGMA"
    elif command -v rsigma >/dev/null; then
        command -v rsigma
    elif [[ -x $HOME/.cargo/bin/rsigma ]]; then
        echo "$HOME/.cargo/bin/rsigma"
    fi
}
RSIGMA_BIN=$(find_rsigma || true)
if [[ -z $RSIGMA_BIN ]]; then
    if [[ ${PEER_NO_INSTALL:-} == 1 ]]; then
        if [[ -n ${RSIGMA:-} ]]; then
            echo "peer.sh: rsigma not found: RSIGMA=$RSIGMA is not an executable file." >&2
        else
            echo "peer.sh: rsigma not found: not on PATH, not in ~/.cargo/bin." >&2
        fi
        echo "peer.sh: install it with: cargo install rsigma --version $RSIGMA_VERSION --locked" >&2
        echo "peer.sh: (about 6 minutes; later versions need a newer rustc), or unset PEER_NO_INSTALL to let this script do it" >&2
        exit 1
    fi
    echo "peer.sh: rsigma not found; installing it: cargo install rsigma --version $RSIGMA_VERSION --locked (about 6 minutes)" >&2
    if ! cargo install rsigma --version "$RSIGMA_VERSION" --locked; then
        echo "peer.sh: installing rsigma $RSIGMA_VERSION failed; the peer comparison cannot run" >&2
        exit 1
    fi
    RSIGMA= RSIGMA_BIN=$(find_rsigma || true)
    if [[ -z $RSIGMA_BIN ]]; then
        echo "peer.sh: rsigma was installed but is neither on PATH nor in ~/.cargo/bin" >&2
        exit 1
    fi
fi
RSIGMA_SEEN=$("$RSIGMA_BIN" --version 2>/dev/null | awk 'NR == 1 {print $NF}')
if [[ $RSIGMA_SEEN != "$RSIGMA_VERSION" ]]; then
    echo "peer.sh: note: $RSIGMA_BIN is rsigma ${RSIGMA_SEEN:-of unknown version}, not $RSIGMA_VERSION; measuring it anyway" >&2
fi

# --- sessionguard ------------------------------------------------------------------------------
echo "peer.sh: cargo build --release" >&2
cargo build --release --quiet
SG=target/release/sessionguard
if ! check=$("$SG" check bench/peer/rules 2>&1); then
    echo "$check" >&2
    echo "peer.sh: bench/peer/rules does not load" >&2
    exit 1
fi

# --- inputs ------------------------------------------------------------------------------------
CASES=()
FILES=()
if (($# > 0)); then
    for f in "$@"; do
        [[ -r $f ]] || { echo "peer.sh: cannot read $f" >&2; exit 2; }
        CASES+=("$(basename "$f")")
        FILES+=("$f")
    done
else
    mkdir -p target/bench
    echo "peer.sh: generating target/bench/peer-gen.jsonl and target/bench/peer-many-keys.jsonl" >&2
    "$SG" gen -q --sources cloudtrail --events 200000 --sessions 5000 \
        --out target/bench/peer-gen.jsonl
    python3 scripts/bench/peer_many_keys.py target/bench/peer-many-keys.jsonl
    CASES=("generated" "many distinct keys")
    FILES=(target/bench/peer-gen.jsonl target/bench/peer-many-keys.jsonl)
fi

# One thread each: rsigma's `engine eval` runs correlations on one thread, and sessionguard's
# --threads is pinned to 1 so that a change of its default cannot skew the comparison.
run_ours() {
    "$SG" replay "$1" --rules bench/peer/rules --threads 1 --out "$2" --no-progress 2>/dev/null
}
run_theirs() {
    "$RSIGMA_BIN" engine eval -q --output-format ndjson -r bench/peer/sigma -e "@$1" \
        --no-detections --suppress 1h --timestamp-field eventTime >"$2"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for i in "${!FILES[@]}"; do
    file=${FILES[$i]}
    name=${CASES[$i]}
    events=$(wc -l <"$file" | tr -d ' ')
    echo "peer.sh: case $name ($file, $events events): match check, then $REPS repetitions" >&2

    # Once: both engines' matches, compared per rule (this run also warms the page cache).
    run_ours "$file" "$TMP/ours.jsonl"
    run_theirs "$file" "$TMP/theirs.jsonl"
    python3 - "$TMP/ours.jsonl" "$TMP/theirs.jsonl" "$file" bench/peer/rules/*.yml <<'PY'
import json, re, sys
# sessionguard keys temporary and long-term keys by the access key (aws:<account>:sts:<ASIA…>,
# aws:<account>:iam-key:<AKIA…>) but console sessions by sign-in; to compare sessions with
# rsigma's group-by, each decision is mapped to the access key of its deciding event, found
# through the evidence's origin line.
decisions = [json.loads(line) for line in open(sys.argv[1])]
wanted = {}
for d in decisions:
    events = d.get("evidence", {}).get("events") or []
    if events:
        wanted[events[-1]["origin"]["line"]] = None
if wanted:
    with open(sys.argv[3]) as f:
        for n, line in enumerate(f, 1):
            if n in wanted:
                wanted[n] = json.loads(line).get("userIdentity", {}).get("accessKeyId")
ours, theirs = {}, {}
for d in decisions:
    events = d.get("evidence", {}).get("events") or []
    akid = wanted.get(events[-1]["origin"]["line"]) if events else None
    ours.setdefault(d["rule"]["title"], []).append(akid or d["session"]["key"])
for line in open(sys.argv[2]):
    d = json.loads(line)
    if d.get("correlation_type") is None:
        continue
    group = dict(d.get("group_key") or [])
    theirs.setdefault(d["rule_title"], []).append(group.get("userIdentity.accessKeyId"))
titles = set(ours) | set(theirs)
for rule in sys.argv[4:]:
    m = re.search(r"^title: (.*)$", open(rule).read(), re.M)
    if m:
        titles.add(m.group(1).strip())
wild = []
for title in sorted(titles):
    o, t = ours.get(title, []), theirs.get(title, [])
    shared = len(set(o) & set(t))
    print(f"  matches  {title}: sessionguard {len(o)}, rsigma {len(t)}, same access key in both {shared}")
    if abs(len(o) - len(t)) > max(2, 0.1 * max(len(o), len(t))):
        wild.append(title)
for title in wild:
    print(f"  WARNING  the engines differ widely on `{title}`: the rules are not equivalent on this input")
PY

    # Parity: the very Sigma files rsigma reads (bench/peer/sigma), loaded verbatim by
    # sessionguard, must match the same groups (access keys) per correlation. Groups, not
    # match counts: re-alerting differs (rsigma --suppress 1h; a Sigma rule has no suppress).
    "$SG" replay "$file" --rules bench/peer/sigma --threads 1 --out "$TMP/ours-sigma.jsonl" \
        --no-progress 2>/dev/null
    python3 - "$TMP/ours-sigma.jsonl" "$TMP/theirs.jsonl" "$name" <<'PY'
import json, sys
ours, theirs = {}, {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    fields = dict((f["name"], f["value"]) for f in d["evidence"].get("group", {}).get("fields", []))
    ours.setdefault(d["rule"]["title"], set()).add(fields.get("userIdentity.accessKeyId"))
for line in open(sys.argv[2]):
    d = json.loads(line)
    if d.get("correlation_type") is None:
        continue
    group = dict(d.get("group_key") or [])
    theirs.setdefault(d["rule_title"], set()).add(group.get("userIdentity.accessKeyId"))
same = total = 0
for title in sorted(set(ours) | set(theirs)):
    o, t = ours.get(title, set()), theirs.get(title, set())
    same += len(o & t)
    total += len(o | t)
    print(f"  parity   {title}: groups sessionguard {len(o)}, rsigma {len(t)}, in both {len(o & t)}")
    for key in sorted(o - t)[:3]:
        print(f"           only sessionguard: {key}")
    for key in sorted(t - o)[:3]:
        print(f"           only rsigma: {key}")
print(f"(c, parity) {sys.argv[3]}: the same Sigma correlations in both engines: {same} of {total} groups matched by both")
PY

    # The timed runs: the commands of run_ours and run_theirs, output to /dev/null.
    python3 - "$file" "$events" "$name" "$RSIGMA_SEEN" "$REPS" "$SG" "$RSIGMA_BIN" <<'PY'
import os, statistics, subprocess, sys, time
file, events, name, version, reps, sg, rsigma = sys.argv[1:8]
events, reps = int(events), int(reps)
ours_cmd = [sg, "replay", file, "--rules", "bench/peer/rules", "--threads", "1",
            "--out", "/dev/null", "--no-progress"]
theirs_cmd = [rsigma, "engine", "eval", "-q", "--output-format", "ndjson", "-r", "bench/peer/sigma",
              "-e", "@" + file, "--no-detections", "--suppress", "1h",
              "--timestamp-field", "eventTime"]

def measure(cmd):
    """Wall seconds and CPU seconds (user + system) of one run, output to /dev/null."""
    with open(os.devnull, "w") as null:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null, stderr=null)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"peer.sh: {cmd[0]} failed (wait status {status}): {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime

rows = []
for r in range(1, reps + 1):
    ours, theirs = measure(ours_cmd), measure(theirs_cmd)
    rows.append((ours, theirs))
    print(f"peer.sh:   rep {r}/{reps}: sessionguard {ours[0] * 1000:.0f} ms ({ours[1] * 1000:.0f} ms cpu), "
          f"rsigma {theirs[0] * 1000:.0f} ms ({theirs[1] * 1000:.0f} ms cpu)", file=sys.stderr)

med = statistics.median
ours = [events / o[0] for o, _ in rows]
theirs = [events / t[0] for _, t in rows]
ratios = [o / t for o, t in zip(ours, theirs)]
cpu_ratios = [t[1] / o[1] for o, t in rows]
print(f"  spread   wall-time ratio {min(ratios):.2f}x … {max(ratios):.2f}x; "
      f"sessionguard {min(ours):,.0f}…{max(ours):,.0f}/s, rsigma {min(theirs):,.0f}…{max(theirs):,.0f}/s")
print(f"  cpu      per CPU second (user + system): sessionguard {med(events / o[1] for o, _ in rows):,.0f}/s  "
      f"rsigma {med(events / t[1] for _, t in rows):,.0f}/s  ratio {med(cpu_ratios):.2f}x "
      f"({min(cpu_ratios):.2f}x … {max(cpu_ratios):.2f}x)")
print(f"(c) peer rsigma {version}, case {name} ({events} events): "
      f"sessionguard {med(ours):,.0f}/s  rsigma {med(theirs):,.0f}/s  "
      f"ratio {med(ratios):.2f}x (median of {len(rows)})")
PY
done
