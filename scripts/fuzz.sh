#!/usr/bin/env bash
# Runs the property tests of tests/fuzz.rs long: each property gets an equal share of
# MINUTES (default 12) and runs rounds of many cases (a fresh random seed each round) until its
# share is spent, under `nice -n 10` so it shares the machine. `cargo test` runs the same
# properties briefly (a few seconds each); docs/testing.md, "Fuzzing", says what each promises.
#
#   scripts/fuzz.sh [MINUTES] [PROPERTY...]
#
# Prints one line per round and a closing table: cases and minutes per property. A failing
# round prints the shrunk input, saves it to tests/proptest-regressions/fuzz.txt (commit it:
# every later run replays it first) and ends the script with status 1; the properties after it
# do not run. Builds without the Kafka feature (the properties need none). Ends with
# "N passed, M failed" (properties).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-12}
shift || true
properties=("$@")
if [ ${#properties[@]} -eq 0 ]; then
    properties=(
        framing_never_panics_on_arbitrary_bytes
        framing_keeps_records_and_rejects_garbage
        adapters_never_panic_and_every_reject_has_a_reason
        rule_loader_never_panics_and_every_error_has_a_place
    )
fi

# Cases per round: a round of each takes about a minute on one loaded core (debug build).
round_cases() {
    case "$1" in
        framing_never_panics_on_arbitrary_bytes) echo 100000 ;;
        framing_keeps_records_and_rejects_garbage) echo 10000 ;;
        adapters_never_panic_and_every_reject_has_a_reason) echo 20000 ;;
        rule_loader_never_panics_and_every_error_has_a_place) echo 10000 ;;
        *) echo 5000 ;;
    esac
}

echo "== building tests/fuzz.rs"
built=$(nice -n 10 cargo test --quiet --locked --no-default-features --test fuzz --no-run \
    --message-format=json | grep '"name":"fuzz"' | grep '"test":true' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$built" ] || { echo "no test executable for tests/fuzz.rs"; exit 2; }
# A copy: rounds run this build even if cargo rebuilds the test meanwhile, and run without
# cargo's build lock, so other builds on the machine go on.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$built" "$work/fuzz"
log=$work/round.log
share=$((minutes * 60 / ${#properties[@]}))
declare -A total_cases total_seconds
passed=0
failed=0
for property in "${properties[@]}"; do
    total_cases[$property]=0
    total_seconds[$property]=0
    cases=$(round_cases "$property")
    start=$SECONDS
    round=0
    while [ "$round" -eq 0 ] || [ $((SECONDS - start)) -lt "$share" ]; do
        round=$((round + 1))
        began=$SECONDS
        if PROPTEST_CASES=$cases nice -n 10 "$work/fuzz" --exact "$property" >"$log" 2>&1; then
            took=$((SECONDS - began))
            total_cases[$property]=$((total_cases[$property] + cases))
            echo "$property: round $round, $cases cases in ${took}s"
        else
            echo "$property: round $round FAILED:"
            cat "$log"
            failed=1
            break
        fi
    done
    total_seconds[$property]=$((SECONDS - start))
    [ "$failed" = 1 ] && break
    passed=$((passed + 1))
done

echo
printf '%-55s %12s %8s\n' property cases minutes
for property in "${properties[@]}"; do
    awk -v p="$property" -v c="${total_cases[$property]:-0}" -v s="${total_seconds[$property]:-0}" \
        'BEGIN { printf "%-55s %12d %8.1f\n", p, c, s / 60 }'
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
