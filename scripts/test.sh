#!/usr/bin/env bash
# Runs every test of sessionguard: unit tests, golden tests over fixtures/, the third-party data
# coverage test, doc tests, and the benches compiled and run once in test mode.
# Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
cargo test --doc --locked
