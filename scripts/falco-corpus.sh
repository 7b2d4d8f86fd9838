#!/usr/bin/env bash
# Loads a Falco rule file for Kubernetes audit logs (such as falcosecurity/plugins'
# plugins/k8saudit/rules/k8s_audit_rules.yaml — not vendored here: fetch it yourself) and prints
# how many of its rules load and why the others do not: each rule that does not load with the
# first error that keeps it out. Uses the release build of sessionguard if there is one, else the
# debug build (under $CARGO_TARGET_DIR, default target/).
#   scripts/falco-corpus.sh ~/src/falco-plugins/plugins/k8saudit/rules/k8s_audit_rules.yaml
set -euo pipefail
file=$(realpath "${1:?usage: scripts/falco-corpus.sh FALCO_RULES_FILE}")
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/sessionguard
if [ ! -x "$bin" ]; then
    bin=$target/debug/sessionguard
    [ -x "$bin" ] || cargo build --quiet --no-default-features
fi
out=$("$bin" check "$file" 2>&1) || true

# The rules the file names (`- rule: NAME` items), as their ids, and those it switches off.
ids() { tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/_/g; s/^_+|_+$//g; s/^/falco./'; }
names=$(awk '
    /^- / { rule = "" }
    /^- rule:/ { rule = substr($0, 9); gsub(/^[ \t]+|[ \t]+$/, "", rule); gsub(/^["\x27]|["\x27]$/, "", rule); print rule }
' "$file" | ids | sort -u)
off=$(awk '
    /^- / { rule = "" }
    /^- rule:/ { rule = substr($0, 9); gsub(/^[ \t]+|[ \t]+$/, "", rule); gsub(/^["\x27]|["\x27]$/, "", rule) }
    /^  enabled:[ \t]*false/ && rule != "" { print rule }
' "$file" | ids | sort -u)

total=$(printf '%s\n' "$names" | grep -c . || true)
failed=$(printf '%s\n' "$out" | grep -o 'rule `falco\.[^`]*`' | tr -d '`' | cut -d' ' -f2 | sort -u || true)
nfailed=$(printf '%s\n' "$failed" | grep -c . || true)
noff=$(printf '%s\n' "$off" | grep -c . || true)
for id in $failed; do
    echo "not loaded: $id: $(printf '%s\n' "$out" | grep -F "rule \`$id\`: " | head -n 1 | sed 's/^.*`: //')"
done
# Errors that belong to no rule (a macro or list item that is broken on its own).
printf '%s\n' "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+: ' | grep -v ': rule `' | sed 's/^/file: /' || true
echo "$((total - nfailed - noff)) of $total Falco rules load ($nfailed do not; $noff switched off with enabled: false)"
