#!/usr/bin/env bash
# Runs every test of sessionguard: formatting and lints, unit tests, golden tests over
# fixtures/, the third-party data coverage test, engine and rule tests, the shipped rule pack's
# inline tests, and the benches compiled and run once in test mode.
# Needs only the Rust toolchain. Ends with one line: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
status=0
cargo test --all-targets --locked 2>&1 | tee "$log" || status=$?
if [ -d rules ] && ls rules/*.yml >/dev/null 2>&1; then
    echo "== sessionguard check rules/"
    cargo run --quiet --locked -- check rules 2>&1 | tee -a "$log" || status=$?
fi

# One closing line over every test binary and the rule pack's inline tests.
awk '
    /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
    / rules loaded; / { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed,?$/) p += $(i-1); if ($(i) ~ /^failed$/) f += $(i-1) } }
    END { printf "%d passed, %d failed\n", p, f }
' "$log"
exit "$status"
