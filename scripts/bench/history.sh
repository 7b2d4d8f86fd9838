#!/usr/bin/env bash
# (i) history (issue 12), on the generated mix and on a large archive:
#
#   write   `archive` throughput as a fraction of `replay`'s on the same input (goal ≥ 0.8):
#           wall time of each, interleaved repetitions, median of the per-repetition ratios
#           (replay time / archive time; the archive's time includes closing its files)
#   size    the archive's bytes against `gzip -6` of the same NDJSON (goal ≤ 0.5)
#   scan    the group-by hunting queries of queries/ (sessions by bytes, principals by source
#           addresses) over an archive of HISTORY_SCAN_EVENTS generated records (default
#           10,000,000; piped from `gen` into `archive -`, no NDJSON on disk): `sessionguard
#           query` (DataFusion) against DuckDB on the same Parquet files, median of the
#           per-repetition ratios (ours / DuckDB's time; goal ≤ 1.5). Ours is timed as a
#           process (start, table registration, query, output); DuckDB's inside Python around
#           the query alone, after a warm-up — a handicap for ours, stated, not hidden
#   backtest  `backtest` (baseline and new rules, one thread each) events/s against `replay`
#           (one thread, one rule set) on the same input: events of history per second of
#           wall time, so 1.0 means two rule sets cost the time of one
#
# Usage: scripts/bench/history.sh MIX.jsonl [REPS]   (run by scripts/bench.sh; builds the
# release binary with --features history; installs duckdb into target/bench/venv on first use)
set -euo pipefail
cd "$(dirname "$0")/../.."

mix=$1
reps=${2:-5}
scan_events=${HISTORY_SCAN_EVENTS:-10000000}
work=target/bench/history
venv=target/bench/venv
bin=${CARGO_TARGET_DIR:-target}/release/sessionguard
mkdir -p "$work"

cargo build --release --quiet --features history
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb pyarrow
fi
echo "duckdb:  $("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')"

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
records=$(wc -l <"$mix")

# --- write throughput and size -------------------------------------------------------------
write_ratios=()
for rep in $(seq "$reps"); do
    t0=$(now)
    "$bin" replay --no-progress "$mix" >/dev/null 2>"$work/replay.stderr"
    t1=$(now)
    rm -rf "$work/archive"
    "$bin" archive --no-progress "$mix" --to "$work/archive" >/dev/null 2>"$work/archive.stderr"
    t2=$(now)
    replay_s=$(python3 -c "print($t1 - $t0)")
    archive_s=$(python3 -c "print($t2 - $t1)")
    ratio=$(python3 -c "print($replay_s / $archive_s)")
    printf '  write %d: replay %.2f s, archive %.2f s: %.3f\n' "$rep" "$replay_s" "$archive_s" "$ratio"
    write_ratios+=("$ratio")
done
write=$(printf '%s\n' "${write_ratios[@]}" | median)
[ -s "$work/mix.jsonl.gz" ] && [ "$work/mix.jsonl.gz" -nt "$mix" ] || gzip -6 -c "$mix" >"$work/mix.jsonl.gz"
archive_bytes=$(du -sb "$work/archive" | cut -f1)
gzip_bytes=$(stat -c %s "$work/mix.jsonl.gz")
ndjson_bytes=$(stat -c %s "$mix")
size=$(python3 -c "print(f'{$archive_bytes / $gzip_bytes:.2f}')")
printf '(i) archive write: %.2f of replay'"'"'s throughput (median of %d; %d records, replay %.0f events/s) [goal >= 0.8]\n' \
    "$write" "$reps" "$records" "$(python3 -c "print($records / $replay_s)")"
printf '(i) archive size: %.2f of gzip -6 (archive %.1f MB, gzip %.1f MB, NDJSON %.1f MB) [goal <= 0.5]\n' \
    "$size" "$(python3 -c "print($archive_bytes / 1e6)")" "$(python3 -c "print($gzip_bytes / 1e6)")" \
    "$(python3 -c "print($ndjson_bytes / 1e6)")"

# --- backtest ----------------------------------------------------------------------------
backtest_ratios=()
for rep in $(seq "$reps"); do
    t0=$(now)
    "$bin" replay --no-progress "$mix" >/dev/null 2>/dev/null
    t1=$(now)
    "$bin" backtest --rules rules --baseline rules "$mix" >/dev/null 2>/dev/null || true
    t2=$(now)
    ratio=$(python3 -c "print(($t1 - $t0) / ($t2 - $t1))")
    printf '  backtest %d: replay %.0f events/s, backtest %.0f events/s: %.3f\n' "$rep" \
        "$(python3 -c "print($records / ($t1 - $t0))")" "$(python3 -c "print($records / ($t2 - $t1))")" "$ratio"
    backtest_ratios+=("$ratio")
done
backtest=$(printf '%s\n' "${backtest_ratios[@]}" | median)
printf '(i) backtest (2 rule sets, 2 threads): %.2f of replay'"'"'s events/s (1 rule set, 1 thread; median of %d)\n' \
    "$backtest" "$reps"

# --- scan against DuckDB -------------------------------------------------------------------
scan=$work/scan-$scan_events
if [ ! -s "$scan/_sessionguard_archive.json" ]; then
    rm -rf "$scan"
    t0=$(now)
    "$bin" gen --events "$scan_events" --sessions 100000 --events-per-second-of-event-time 200 --seed 2 -q |
        "$bin" archive --no-progress - --to "$scan" >/dev/null 2>"$work/scan-archive.stderr"
    echo "  archived $scan_events generated records in $(python3 -c "print(f'{$(now) - $t0:.0f}')") s"
fi
echo "  scan archive: $(find "$scan/events" -name '*.parquet' | wc -l) event files, $(du -sm "$scan" | cut -f1) MiB"
for name in sessions-by-bytes principals-by-source-ips; do
    sql=queries/$name.sql
    ratios=()
    for rep in $(seq "$reps"); do
        t0=$(now)
        "$bin" query "$sql" --archive "$scan" --format csv >"$work/$name.ours.csv"
        t1=$(now)
        ours=$(python3 -c "print($t1 - $t0)")
        duck=$("$venv/bin/python" - "$scan" "$sql" "$work/$name.duckdb.csv" <<'PY'
import sys, time, duckdb
scan, sql_file, out = sys.argv[1:]
sql = open(sql_file).read()
con = duckdb.connect()
con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{scan}/events/*/*/*.parquet', hive_partitioning = true)")
con.execute(sql).fetchall()  # warm-up: file metadata cached, as a resident DuckDB would have it
start = time.perf_counter()
rows = con.execute(sql).fetchall()
print(time.perf_counter() - start)
with open(out, "w") as f:
    for row in rows:
        f.write(",".join("" if v is None else str(v) for v in row) + "\n")
PY
)
        ratio=$(python3 -c "print($ours / $duck)")
        printf '  %s %d: sessionguard query %.2f s, DuckDB %.2f s: %.2f\n' "$name" "$rep" "$ours" "$duck" "$ratio"
        ratios+=("$ratio")
    done
    # The same answer from both (first column: the group's key).
    same=$(python3 - "$work/$name.ours.csv" "$work/$name.duckdb.csv" <<'PY'
import sys
ours = [l.split(",")[0] for l in open(sys.argv[1]).read().splitlines()[1:]]
duck = [l.split(",")[0] for l in open(sys.argv[2]).read().splitlines()]
print("same groups" if ours == duck else f"DIFFERENT groups: {ours[:3]} vs {duck[:3]}")
PY
)
    printf '(i) scan %s over %d events: %.2f of DuckDB %s (median of %d; %s) [goal <= 1.5]\n' \
        "$name" "$scan_events" "$(printf '%s\n' "${ratios[@]}" | median)" \
        "$("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')" "$reps" "$same"
done
