#!/usr/bin/env bash
# Mutation testing of the core with cargo-mutants (crates.io; installed here when missing): each
# mutant is a small change to the code (a function returning a default, `<` for `<=`, `&&` for
# `||`…); a mutant the tests still pass on ("missed", a survivor) is logic no test pins down.
# docs/testing.md lists the survivors of the last run and what was done about each.
#
#   scripts/mutants.sh [SCOPE] [cargo-mutants args…]
#
# SCOPE: engine (src/engine), rule (src/rule), adapters (src/event, src/source), core (all
# three; the default), or a file glob such as 'src/engine/window.rs'. Builds without the
# `kafka` feature (the core does not use it) and runs the tests that exercise the core: unit
# tests and the engine, scenario, time-model, rule, check, golden and third-party tests.
# Results go to target/mutants/<scope>/mutants.out (missed.txt, caught.txt, timeout.txt…).
# A full core run is several thousand mutants — hours on 2 cores; narrow it with a file glob,
# `-F REGEX` (function names), or `--shard k/n`. Exits non-zero when a mutant survives.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-mutants >/dev/null; then
    cargo install cargo-mutants --locked
fi

scope=${1:-core}
[ $# -gt 0 ] && shift
files=()
case "$scope" in
    engine) files=(-f 'src/engine/*.rs') ;;
    rule) files=(-f 'src/rule/*.rs') ;;
    adapters) files=(-f 'src/event/*.rs' -f 'src/source/*.rs') ;;
    core) files=(-f 'src/engine/*.rs' -f 'src/rule/*.rs' -f 'src/event/*.rs' -f 'src/source/*.rs') ;;
    *) files=(-f "$scope") ;;
esac
tests=()
for t in engine scenarios time_model rule_errors check golden third_party; do
    tests+=(--cargo-test-arg="--test=$t")
done

out="target/mutants/$(printf '%s' "$scope" | tr '/*' '__')"
mkdir -p "$out"
exec cargo mutants --no-default-features "${files[@]}" \
    --cargo-test-arg=--lib "${tests[@]}" \
    --timeout-multiplier 3 --build-timeout 600 --output "$out" "$@"
