#!/usr/bin/env bash
# Measures sessionguard on SigmaHQ's rules for the log sources it reads. DIR is a checkout of
# SigmaHQ/sigma (not vendored here: fetch it yourself). Prints:
#   1. how many rules of rules/ load, one file at a time, and why the others do not;
#   2. how many of those that load fire on the third-party data vendored under
#      fixtures/third_party/ (each data file replayed alone: they are separate captures);
#   3. how many rules of rules-placeholder/ load, given a placeholders file that names each
#      `%placeholder%` they use (with a dummy value: this measures loading, not matching).
# Uses $CARGO_TARGET_DIR (default target)/release/sessionguard if built, else debug.
#   scripts/sigma-corpus.sh ~/src/sigma
set -euo pipefail
dir=${1:?usage: scripts/sigma-corpus.sh SIGMA_CHECKOUT}
dir=$(cd "$dir" && pwd)
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/sessionguard
if [ ! -x "$bin" ]; then
    bin=$target/debug/sessionguard
    [ -x "$bin" ] || cargo build --quiet --no-default-features
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/loaded" "$work/placeholder"

subdirs="cloud/aws/cloudtrail identity/okta cloud/azure/signin_logs cloud/azure/audit_logs
    application/github/audit application/kubernetes/audit"
total=0
loaded=0
for sub in $subdirs; do
    n=0
    ok=0
    for f in "$dir/rules/$sub"/*.yml; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        if out=$("$bin" check "$f" 2>&1); then
            ok=$((ok + 1))
            cp "$f" "$work/loaded/"
        else
            echo "not loaded: ${f#"$dir"/}: $(echo "$out" | head -n 1 | sed 's/^[^ ]* //')"
        fi
    done
    echo "rules/$sub: $ok of $n load"
    total=$((total + n))
    loaded=$((loaded + ok))
done
echo "$loaded of $total SigmaHQ rules load unchanged"

: >"$work/decisions"
find fixtures/third_party -type f \( -name '*.json' -o -name '*.jsonl' \) | sort |
    while read -r data; do
        "$bin" replay --no-progress --rules "$work/loaded" "$data" >>"$work/decisions" 2>/dev/null
    done
fired=$(grep -o '"rule":{"id":"[^"]*"' "$work/decisions" | sort -u | wc -l)
echo "$fired of $loaded fire on fixtures/third_party ($(wc -l <"$work/decisions") decisions)"

n=0
for sub in $subdirs; do
    for f in "$dir/rules-placeholder/$sub"/*.yml; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        cp "$f" "$work/placeholder/"
    done
done
if [ "$n" -gt 0 ]; then
    {
        echo "placeholders:"
        grep -ho '%[A-Za-z0-9_]*%' "$work/placeholder"/*.yml | sort -u | tr -d % |
            sed 's/.*/  &: [placeholder-value]/'
    } >"$work/placeholder/_placeholders.yml"
    ok=0
    for f in "$work/placeholder"/[!_]*.yml; do
        if out=$("$bin" check "$f" "$work/placeholder/_placeholders.yml" 2>&1); then
            ok=$((ok + 1))
        else
            echo "not loaded: rules-placeholder/$(basename "$f"): $(echo "$out" | head -n 1 | sed 's/^[^ ]* //')"
        fi
    done
    echo "$ok of $n SigmaHQ rules-placeholder rules load with a placeholders file"
fi
