#!/usr/bin/env bash
# Every performance figure of sessionguard in one run, on one generated input (issue 5):
#
#   (a) B_parse (bare serde_json typed borrowed parse) vs replay with the full shipped pack
#   (b) replay on 2 engine threads sharded by session key vs 1
#   (c) the peer rsigma 0.23.0 on equivalent per-session correlation rules (scripts/bench/peer.sh)
#   (d) through the real broker: null engine vs `run` (scripts/bench/broker.sh)
#   (e) event-to-decision latency: in-process, and through the broker for run and null
#   (f) bytes per session at 10 k / 100 k / 1 M sessions, and the session bound with 10 M
#   (g) replay of OCSF from a Security Lake-shaped Parquet directory vs the same as NDJSON
#       (scripts/bench/parquet.sh; installs pyarrow into target/bench/venv on first use)
#   (h) actuation: SETs signed per second on one core (ES256, RS256), and decision →
#       acknowledged SET latency at 1,000 decisions/s against a local receiver (benches/actuate.rs)
#   (i) history: archive write throughput against replay, archive size against gzip, the
#       group-by hunting queries over a large archive against DuckDB, backtest events/s against
#       replay (scripts/bench/history.sh; builds --features history, installs duckdb into
#       target/bench/venv; HISTORY_SCAN_EVENTS sets the large archive's size, default 10 M)
#
# Ratios are medians of per-repetition ratios over interleaved repetitions; absolute rates are
# context (the machines are shared and noisy). (a), (b) and (e in-process) run on the
# generated mix and again on the real third-party logs of fixtures/third_party/ (a copy of
# ../shared/data), so the synthetic mix cannot flatter the figures.
#
# Usage: scripts/bench.sh [--quick]
#   --quick            fewer events and repetitions (a smoke run, not figures to quote)
# Environment: BENCH_EVENTS (default 300000), BENCH_REPS (default 15), BENCH_SKIP (parts to
# skip, e.g. "c,d": the peer needs rsigma, installed by cargo on first use (~6 minutes); the
# broker part installs and starts tansu via scripts/kafka.sh (~20 minutes the first time)).
# The broker part has its own input size (BROKER_EVENTS, default 20000, and BROKER_REPS,
# default 5): the local broker, tansu on SQLite, reads only ~1,000–7,000 records/s.
#
# The full output is also written to target/bench/bench-<time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${BENCH_EVENTS:-300000}
reps=${BENCH_REPS:-15}
skip=${BENCH_SKIP:-}
if [ "${1:-}" = "--quick" ]; then
    events=${BENCH_EVENTS:-30000}
    reps=${BENCH_REPS:-3}
fi
mkdir -p target/bench
log=target/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).txt
exec > >(tee "$log") 2>&1

skipped() { [[ ",$skip," == *",$1,"* ]]; }
section() { printf '\n== %s\n' "$*"; }

section "machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
echo "cpu:     $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "rustc:   $(rustc --version)"
echo "build:   release, portable (no target-cpu=native)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"

section "build"
cargo build --release --quiet
cargo bench --no-run --quiet --bench suite --bench memory 2>&1 | grep -v '^ *Executable' || true
bin=target/release/sessionguard

section "input"
mix=target/bench/mix-$events.jsonl
if [ ! -s "$mix" ]; then
    # 20 records per second of event time: a run long enough for every attack kind (~4 h of
    # event time at 300 000 records), with the benign habits that trip naive rules.
    "$bin" gen --events "$events" --sessions 10000 --events-per-second-of-event-time 20 \
        --seed 1 --out "$mix" 2>&1 | grep -E 'records|sessions|event time|ground truth' || true
fi
echo "generated: $mix ($(wc -l <"$mix") records, $(du -m "$mix" | cut -f1) MiB; truth: $mix.truth.jsonl, $(wc -l <"$mix.truth.jsonl") attacks)"
echo "real:      fixtures/third_party/ ($(find fixtures/third_party -type f -name '*.json*' | wc -l) files from ../shared/data)"

section "(a) (b) (e) in-process, generated mix"
cargo bench --quiet --bench suite -- --input "$mix" --reps "$reps" 2>&1 | grep -v '^ *Running'

section "(a) (b) (e) in-process, real third-party logs"
cargo bench --quiet --bench suite -- --input fixtures/third_party --reps "$reps" 2>&1 | grep -v '^ *Running' |
    sed 's/^(\([abe]\))/(\1, real)/'

if skipped c; then
    section "(c) skipped (BENCH_SKIP)"
else
    section "(c) peer: rsigma 0.23.0"
    PEER_REPS=$reps scripts/bench/peer.sh || echo "(c) FAILED: scripts/bench/peer.sh exited $?"
fi

if skipped d; then
    section "(d) (e) broker skipped (BENCH_SKIP)"
else
    section "(d) (e) through the real broker"
    scripts/bench/broker.sh || echo "(d) FAILED: scripts/bench/broker.sh exited $?"
fi

if skipped g; then
    section "(g) Parquet skipped (BENCH_SKIP)"
else
    section "(g) OCSF: Parquet lake vs NDJSON"
    scripts/bench/parquet.sh "$mix" "$reps" || echo "(g) FAILED: scripts/bench/parquet.sh exited $?"
fi

if skipped h; then
    section "(h) actuation skipped (BENCH_SKIP)"
else
    section "(h) actuation: signed SETs per second, decision -> acknowledged SET"
    cargo bench --quiet --bench actuate -- --bench 2>&1 | grep -v '^ *Running' || echo "(h) FAILED: benches/actuate.rs exited $?"
fi

if skipped i; then
    section "(i) history skipped (BENCH_SKIP)"
else
    section "(i) history: archive write and size, query scan against DuckDB, backtest"
    scripts/bench/history.sh "$mix" "$reps" || echo "(i) FAILED: scripts/bench/history.sh exited $?"
fi

section "(f) memory"
cargo bench --quiet --bench memory 2>&1 | grep -v '^ *Running'

section "summary (targets: (a) ≥ 0.75; (b) ≥ 1.7; (c) ≥ 5×; (d) ≥ 0.8; (e) in-process p99 ≤ 2 ms, broker p99 ≤ 50 ms and ≤ null + 5 ms; (f) ≤ 256 B idle, ≤ 1 KiB full pack, bounded; (g) reported; (h) decision -> ack p99 ≤ 50 ms at 1,000/s, SETs/s reported; (i) archive write ≥ 0.8 of replay, size ≤ 0.5 of gzip, scan ≤ 1.5× DuckDB)"
grep -E '^\((a|b|c|d|e|f|g|h|i)[,)]' "$log" | grep -v '^(.) FAILED' || true
grep -E '^\(.\) FAILED' "$log" || true
echo
echo "full output: $log"
