#!/usr/bin/env bash
# Checks that `sessionguard gen` writes the same bytes as a recorded build: the records, the
# ground truth, the summary on stderr (its timing line left out), the exit code and `--help`,
# for argument sets that cover every flag, both delivery orders, envelopes, gzip, stdout,
# source restrictions, seeds, rates, and the refusals. For refactoring the generator: record
# with the old binary, then check the new one.
#
#   scripts/gen-identity.sh record BIN [LIST]   # write LIST (default scripts/gen-identity.txt)
#   scripts/gen-identity.sh check BIN [LIST]    # compare; exits 1 and names what differs
#
# The list holds one line per case and file: `<case> <what> <sha256>`. Under a minute in a
# release build; one case writes 1.4 GB under $TMPDIR (removed as it goes).
set -euo pipefail

mode=${1:-}
bin=${2:-}
list=${3:-scripts/gen-identity.txt}
if [[ $mode != record && $mode != check ]] || [ -z "$bin" ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
bin=$(realpath "$bin")

# name | arguments (the out and truth paths are added per case where the name says so)
cases=(
    "small-sorted|--events 20000 --sessions 500 --events-per-second-of-event-time 10 --attacks 25 --seed 7"
    "small-realistic|--events 20000 --sessions 500 --events-per-second-of-event-time 10 --attacks 25 --seed 7 --delivery realistic"
    "envelope-bare-realistic|--events 20000 --sessions 500 --events-per-second-of-event-time 10 --attacks 25 --seed 8 --delivery realistic --envelope"
    "envelope-7-sorted-gzip|--events 20000 --sessions 800 --events-per-second-of-event-time 12 --attacks 25 --seed 9 --envelope 7 --gzip"
    "envelope-3-realistic-gzip|--events 15000 --sessions 300 --events-per-second-of-event-time 8 --attacks 12 --seed 10 --envelope 3 --delivery realistic --gzip"
    "ct-github-rate|--events 30000 --sessions 700 --events-per-second-of-event-time 15 --sources cloudtrail=5,github=1 --attack-rate 800 --seed 11"
    "okta-only|--events 12000 --sessions 200 --events-per-second-of-event-time 6 --sources okta --seed 12"
    "k8s-github|--events 12000 --sessions 250 --events-per-second-of-event-time 6 --sources kubernetes,github --attacks 9 --seed 13 --delivery realistic"
    "cloudtrail-only|--events 25000 --sessions 900 --events-per-second-of-event-time 12 --sources cloudtrail --attacks 14 --seed 14"
    "start-offset|--events 10000 --sessions 100 --events-per-second-of-event-time 5 --attacks 6 --start 2025-02-28T23:50:00.250+02:00 --seed 15"
    "start-epoch|--events 8000 --sessions 3 --events-per-second-of-event-time 4 --attacks 3 --start 1700000000 --seed 16"
    "no-attacks-fast|--events 50000 --sessions 2000 --seed 17"
    "many-sessions|--events 60000 --sessions 30000 --events-per-second-of-event-time 30 --seed 18"
    "medium-sorted|--events 300000 --events-per-second-of-event-time 200 --seed 3"
    "medium-realistic|--events 300000 --events-per-second-of-event-time 200 --seed 3 --delivery realistic"
    "default-1m|"
    "stdout+truth|--events 20000 --sessions 400 --events-per-second-of-event-time 10 --attacks 25 --seed 19 STDOUT"
    "stdout-gzip|--events 5000 --sessions 100 --events-per-second-of-event-time 3 --attacks 3 --seed 20 --gzip STDOUT"
    "refuse-short|--events 1000 --attacks 5"
    "refuse-source|--events 10 --sources cloudtrail,azure"
    "refuse-weights|--events 10 --sources okta=0"
    "refuse-start|--events 10 --start yesterday"
    "refuse-rate|--events 10 --events-per-second-of-event-time 0"
    "refuse-unreachable|--events 1200 --events-per-second-of-event-time 1 --attacks 100"
    "sparse|--events 1000 --events-per-second-of-event-time 0.5 --attacks 25 --seed 21"
)

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
got="$dir/list"
: >"$got"

sum() { sha256sum "$1" | cut -d' ' -f1; }

"$bin" gen --help >"$dir/help" 2>&1
echo "help stdout $(sum "$dir/help")" >>"$got"

for case in "${cases[@]}"; do
    name=${case%%|*}
    read -r -a args <<<"${case#*|}"
    rm -f "$dir"/out* "$dir/truth" "$dir/stdout"
    rc=0
    if [ ${#args[@]} -gt 0 ] && [ "${args[-1]}" = STDOUT ]; then
        unset 'args[-1]'
        (cd "$dir" && exec "$bin" gen "${args[@]}" --truth truth) >"$dir/stdout" 2>"$dir/stderr" || rc=$?
        files=(stdout truth)
    else
        (cd "$dir" && exec "$bin" gen ${args[@]+"${args[@]}"} --out out) 2>"$dir/stderr" || rc=$?
        mv "$dir/out.truth.jsonl" "$dir/truth" 2>/dev/null || true
        files=(out truth)
    fi
    for f in "${files[@]}"; do
        if [ -e "$dir/$f" ]; then
            echo "$name $f $(sum "$dir/$f")" >>"$got"
        else
            echo "$name $f absent" >>"$got"
        fi
    done
    grep -v '^records/s' "$dir/stderr" >"$dir/summary" || true
    echo "$name stderr $(sum "$dir/summary")" >>"$got"
    echo "$name exit $rc" >>"$got"
    rm -f "$dir"/out*
done

if [ "$mode" = record ]; then
    mkdir -p "$(dirname "$list")"
    cp "$got" "$list"
    echo "recorded $(wc -l <"$list") lines in $list"
else
    if diff -u "$list" "$got"; then
        echo "identical: $(wc -l <"$list") lines of $list"
    else
        echo "DIFFERENT from $list" >&2
        exit 1
    fi
fi
