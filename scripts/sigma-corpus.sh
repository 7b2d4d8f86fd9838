#!/usr/bin/env bash
# Loads every SigmaHQ rule for the log sources sessionguard reads, one file at a time, and
# prints how many load and why the others do not. DIR is a checkout of SigmaHQ/sigma (not
# vendored here: fetch it yourself). Uses target/release/sessionguard if built, else debug.
#   scripts/sigma-corpus.sh ~/src/sigma
set -euo pipefail
dir=${1:?usage: scripts/sigma-corpus.sh SIGMA_CHECKOUT}
cd "$(dirname "$0")/.."
bin=target/release/sessionguard
if [ ! -x "$bin" ]; then
    bin=target/debug/sessionguard
    [ -x "$bin" ] || cargo build --quiet
fi
total=0
loaded=0
for sub in rules/cloud/aws/cloudtrail rules/identity/okta rules/cloud/azure/signin_logs \
    rules/cloud/azure/audit_logs rules/application/github/audit rules/application/kubernetes/audit; do
    n=0
    ok=0
    for f in "$dir/$sub"/*.yml; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        if out=$("$bin" check "$f" 2>&1); then
            ok=$((ok + 1))
        else
            echo "not loaded: ${f#"$dir"/}: $(echo "$out" | head -n 1 | sed 's/^[^ ]* //')"
        fi
    done
    echo "$sub: $ok of $n load"
    total=$((total + n))
    loaded=$((loaded + ok))
done
echo "$loaded of $total SigmaHQ rules load unchanged"
