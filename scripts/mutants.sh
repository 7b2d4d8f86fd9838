#!/usr/bin/env bash
# Mutation testing of the core with cargo-mutants (crates.io; installed here when missing): each
# mutant is a small change to the code (a function returning a default, `<` for `<=`, `&&` for
# `||`…); a mutant the tests still pass on ("missed", a survivor) is logic no test pins down.
# docs/testing.md lists the survivors of the last run and what was done about each.
#
#   scripts/mutants.sh [SCOPE] [cargo-mutants args…]
#
# SCOPE: engine (src/engine), rule (src/rule), adapters (src/event, src/source), core (all
# three; the default), diff[:BASE] (the core's lines changed since BASE, default origin/main or
# main: the habit for a change — a handful of mutants, not thousands), or a file glob such as
# 'src/engine/window.rs'. Builds without the
# `kafka` feature (the core does not use it), with `parquet` (the golden fixtures hold a
# Parquet file), and runs the unit tests and the integration tests
# that exercise the scope (engine, scenarios, time_model, rule_errors, check, golden,
# third_party, sigma_correlation, agents — the task grants are judged in src/engine —, for the
# rules sigma, falco and rule_lists — the community formats and lookup lists —, and for
# the adapters ocsf (Parquet files), hostile and fuzz (damaged input); all of them for core,
# diff or a glob; MUTANTS_TESTS="engine scenarios" overrides).
# Results go to target/mutants/<scope>/mutants.out (missed.txt, caught.txt, timeout.txt…).
# A full core run is several thousand mutants — hours on 2 cores; narrow it with a file glob,
# `-F REGEX` (function names), or `--shard k/n`. Exits non-zero when a mutant survives.
# Arguments for the test binaries go after `-- --` (`-- -- --skip rule::`): after one `--` they
# reach cargo, which refuses them — the script then says the run means nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-mutants >/dev/null; then
    cargo install cargo-mutants --locked
fi

scope=${1:-core}
# The core's files, and every test target that exercises them: for core, diff and a file glob.
# `**` takes nested modules too (`src/rule/compile/filter.rs`); `*` alone stops at the folder.
core_files=(-f 'src/engine/**/*.rs' -f 'src/rule/**/*.rs' -f 'src/event/**/*.rs' -f 'src/source/**/*.rs')
all_targets="engine scenarios time_model rule_errors check golden third_party sigma_correlation sigma falco rule_lists agents ocsf hostile fuzz"
[ $# -gt 0 ] && shift
# The files to mutate, and the test targets that exercise them (unit tests always).
case "$scope" in
    engine) files=(-f 'src/engine/**/*.rs'); targets="engine scenarios time_model check sigma_correlation agents" ;;
    rule) files=(-f 'src/rule/**/*.rs'); targets="rule_errors check engine scenarios sigma_correlation sigma falco rule_lists" ;;
    adapters) files=(-f 'src/event/**/*.rs' -f 'src/source/**/*.rs'); targets="golden third_party scenarios ocsf hostile fuzz" ;;
    core)
        files=("${core_files[@]}")
        targets=$all_targets
        ;;
    diff | diff:*)
        base=${scope#diff}
        base=${base#:}
        if [ -z "$base" ]; then
            base=$(git rev-parse --verify -q origin/main >/dev/null && echo origin/main || echo main)
        fi
        mkdir -p target/mutants
        git diff "$base" -- src/engine src/rule src/event src/source >target/mutants/change.diff
        files=("${core_files[@]}" --in-diff target/mutants/change.diff)
        scope=diff
        targets=$all_targets
        ;;
    *) files=(-f "$scope"); targets=$all_targets ;;
esac
targets=${MUTANTS_TESTS:-$targets}
# Given to every cargo invocation, the build's (`cargo test --no-run`) as well as the tests':
# otherwise each mutant's build links all of the crate's test binaries (about 40), most of which
# it never runs — two thirds of a mutant's time on this crate.
tests=(--cargo-arg=--lib)
for t in $targets; do
    tests+=(--cargo-arg="--test=$t")
done
# Every mutant is a rebuild and a link of each test binary: without debug info both are faster.
export CARGO_PROFILE_DEV_DEBUG=0
# Mutants build in a target directory of their own. Cargo takes a workspace member's build as
# fresh when its sources are older than the build, so a mutated build left in a shared
# directory is reused by the next ordinary build of the same features — seen once: a unit
# test failed on the last mutant's code after a run. MUTANTS_TARGET_DIR overrides.
export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$PWD/target/mutants/build}

# A mutant's tests time out at three times the unmutated run's, or MUTANTS_TIMEOUT seconds: a
# mutant that loops (the framer's `advance` made a no-op) costs the whole timeout, so a file
# full of loops runs faster with a tighter one.
if [ -n "${MUTANTS_TIMEOUT:-}" ]; then
    timeout=(--timeout "$MUTANTS_TIMEOUT")
else
    timeout=(--timeout-multiplier 3)
fi

out="target/mutants/$(printf '%s' "$scope" | tr '/*' '__')"
mkdir -p "$out"
status=0
cargo mutants --no-default-features --features parquet "${files[@]}" \
    "${tests[@]}" \
    "${timeout[@]}" --build-timeout 600 --output "$out" "$@" || status=$?
# A test command cargo refuses fails for every mutant, so each counts as caught; with
# `--baseline skip` nothing else would say so. Seen once: `-- --skip rule::` (one `--`: cargo
# itself got `--skip`); the test binaries' own arguments go after `-- --`.
if refused=$(grep -l -e '^error: unexpected argument' -e '^error: no test target named' \
    "$out"/mutants.out/log/*.log 2>/dev/null | head -n 3) && [ -n "$refused" ]; then
    echo "cargo refused the test command; these results mean nothing. See:" >&2
    echo "$refused" >&2
    exit 2
fi
exit "$status"
