#!/usr/bin/env bash
# Runs every test of sessionguard: formatting and lints, the structure check
# (scripts/structure.py: no function over 150 lines, no import cycle between modules), unit
# tests of both crates (the engine, and the generator in crates/sessionguard-gen), golden tests
# over fixtures/, the third-party data coverage test, engine and rule tests, the shipped rule
# pack's inline tests, the property tests of tests/fuzz.rs briefly (scripts/fuzz.sh runs them
# long), and the benches compiled and run once in test mode (the memory bench's quick mode
# asserts its session bound there); and the real-broker tests (tests/kafka_broker.rs,
# kafka_tls.rs and kafka_faults.rs, #[ignore]d in a plain `cargo test`, run here with
# --ignored) against a Kafka-compatible broker on 127.0.0.1, which scripts/kafka.sh installs
# (tansu, built by cargo once: about 20 minutes on 2 cores) and starts, unless
# SESSIONGUARD_TEST_BROKERS already names one. A broker that cannot start fails the run, and
# so does a log line at level error in the output (tests keep the engine's logs in files and
# show them only with a failure). Needs the Rust toolchain, a C compiler and make (librdkafka
# and OpenSSL are built from source) and python3 (scripts/kafka.sh asks the broker whether it
# is up; scripts/structure.py; pyarrow, installed into a venv, for tests/archive.rs);
# stunnel4 and openssl for tests/kafka_tls.rs, and chromium for tests/explain.rs's headless
# browser test, are installed with apt-get when missing (as root); and the AWS emulator for tests/actuate.rs's IAM test (moto's server from PyPI,
# pip-installed into target/moto-venv, started on a free loopback port, stopped at the end).
# Ends with one line: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
# One build of each configuration: incremental state for ~45 test crates is gigabytes of disk
# that a run from a clean checkout (CI) never reuses. CARGO_INCREMENTAL=1 brings it back.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

log=$(mktemp)
install_pid=
moto_install_pid=
moto_pid=
stop_broker=false
cleanup() {
    rm -f "$log"
    if [ -n "$moto_install_pid" ]; then kill "$moto_install_pid" 2>/dev/null || true; fi
    if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; fi
    if [ -n "$install_pid" ]; then kill -- "-$install_pid" 2>/dev/null || true; fi
    if $stop_broker; then scripts/kafka.sh stop || true; fi
}
trap cleanup EXIT

# The broker's install runs in the background while the crate is linted and built; bounded so
# a hung build cannot eat CI's 90 minutes (timeout leads its own process group: cleanup ends it).
if [ -z "${SESSIONGUARD_TEST_BROKERS:-}" ]; then
    mkdir -p target/kafka
    broker_clock=$SECONDS
    timeout 45m scripts/kafka.sh install >target/kafka/install.out 2>&1 &
    install_pid=$!
fi

# tests/actuate.rs checks that IAM really changes against moto's AWS emulator (a pinned
# version, in a venv of its own), installed while the crate builds.
mkdir -p target
(
    if [ ! -x target/moto-venv/bin/moto_server ]; then
        python3 -m venv target/moto-venv && target/moto-venv/bin/pip install -q 'moto[server]==5.2.5'
    fi
) >target/moto-install.log 2>&1 &
moto_install_pid=$!

# tests/kafka_tls.rs puts stunnel (TLS termination) in front of tansu, which has no TLS of its
# own; the certificates are made with the openssl command.
if ! command -v stunnel >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    echo "== apt-get install stunnel4 openssl (for tests/kafka_tls.rs)"
    mkdir -p target
    (apt-get update -qq && apt-get install -y -qq stunnel4 openssl) >target/stunnel-install.log 2>&1 ||
        { tail -n 20 target/stunnel-install.log; echo "installing stunnel4 failed: tests/kafka_tls.rs will fail"; }
fi

# tests/explain.rs opens `explain --html` pages in a real headless browser: Debian's chromium.
if ! command -v chromium >/dev/null 2>&1; then
    echo "== apt-get install chromium (for tests/explain.rs's browser test)"
    mkdir -p target
    (apt-get update -qq && apt-get install -y -qq chromium) >target/chromium-install.log 2>&1 ||
        { tail -n 20 target/chromium-install.log; echo "installing chromium failed: tests/explain.rs's browser test will fail"; }
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# `query` (DataFusion) is behind the `history` feature, not in the default build: linted and
# tested here as well (docs/history.md).
echo "== cargo clippy --features history"
cargo clippy --all-targets --locked --features history -- -D warnings
status=0
broker_failed=0
if [ -n "$install_pid" ]; then
    echo "== scripts/kafka.sh start"
    waited=$SECONDS
    install_ok=true
    wait "$install_pid" || install_ok=false
    install_pid=
    cat target/kafka/install.out
    echo "broker install: $((SECONDS - broker_clock))s since the start of this script, $((SECONDS - waited))s of it waited for here"
    if ! $install_ok; then
        echo "scripts/kafka.sh install failed (log above): the real-broker tests cannot run"
        broker_failed=1
    elif SESSIONGUARD_TEST_BROKERS=$(scripts/kafka.sh status 2>/dev/null); then
        echo "using the broker already running on $SESSIONGUARD_TEST_BROKERS"
        export SESSIONGUARD_TEST_BROKERS
    elif SESSIONGUARD_TEST_BROKERS=$(scripts/kafka.sh start); then
        stop_broker=true
        export SESSIONGUARD_TEST_BROKERS
    else
        echo "scripts/kafka.sh start failed: the real-broker tests cannot run"
        broker_failed=1
    fi
    if [ "$broker_failed" = 1 ]; then
        unset SESSIONGUARD_TEST_BROKERS
        status=1
    fi
else
    echo "== real-broker tests use SESSIONGUARD_TEST_BROKERS=$SESSIONGUARD_TEST_BROKERS"
fi
echo "== scripts/structure.py (no function over 150 lines, no import cycle between modules)"
python3 scripts/structure.py || status=1
echo "== cargo test"
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# The real-broker tests are #[ignore]d (a plain `cargo test` lists them as ignored); here they
# run, against the broker started above. Without one they fail: they never pass unrun.
echo "== cargo test --test kafka_broker --test kafka_tls --test kafka_faults --test kafka_tasks -- --ignored"
cargo test --locked --test kafka_broker --test kafka_tls --test kafka_faults --test kafka_tasks -- --ignored 2>&1 | tee -a "$log" || status=$?
# tests/archive.rs has sessionguard's archive read by pyarrow (Apache Arrow's C++ Parquet
# reader, not the Rust one that wrote it): pyarrow goes into a venv of its own under target/,
# made once. Without it that test fails; it never passes unrun.
venv=target/test-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
    echo "== python3 -m venv $venv; pip install pyarrow (for tests/archive.rs)"
    mkdir -p target
    (python3 -m venv "$venv" && "$venv/bin/pip" install --quiet pyarrow) >target/test-venv.log 2>&1 ||
        { tail -n 20 target/test-venv.log; echo "installing pyarrow failed: tests/archive.rs's pyarrow test will fail"; }
fi
echo "== cargo test --features history --test query (SQL over the archive)"
cargo test --locked --features history --test query 2>&1 | tee -a "$log" || status=$?
echo "== cargo test --test archive -- --ignored (pyarrow reads the archive)"
SESSIONGUARD_TEST_PYTHON="$PWD/$venv/bin/python" cargo test --locked --test archive -- --ignored 2>&1 | tee -a "$log" || status=$?
echo "== cargo test --test explain -- --ignored (the HTML page in headless chromium)"
SESSIONGUARD_TEST_BROWSER="$(command -v chromium || echo chromium)" cargo test --locked --test explain -- --ignored 2>&1 | tee -a "$log" || status=$?
if [ -d rules ] && ls rules/*.yml >/dev/null 2>&1; then
    echo "== sessionguard check rules/"
    cargo run --quiet --locked -- check rules 2>&1 | tee -a "$log" || status=$?
fi

# A passing run reads as passing: the tests keep the engine's log lines in files and show them
# only with a failure, so a log line at level error here is a failure of its own.
errors=$(grep -c '"level":"error"' "$log" || true)
if [ "$errors" -gt 0 ]; then
    echo "$errors log line(s) at level error reached the test output:"
    grep '"level":"error"' "$log" | head -n 5
    status=1
fi

echo "== the AWS emulator (moto) and cargo test --test actuate -- --ignored"
moto_failed=0
if wait "$moto_install_pid"; then
    moto_install_pid=
    moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    target/moto-venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >target/moto-server.log 2>&1 &
    moto_pid=$!
    for _ in $(seq 1 50); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $moto_port), 0.2)" 2>/dev/null; then break; fi
        sleep 0.2
    done
    SESSIONGUARD_TEST_MOTO="http://127.0.0.1:$moto_port" \
        cargo test --locked --test actuate -- --ignored 2>&1 | tee -a "$log" || status=$?
else
    moto_install_pid=
    tail -n 20 target/moto-install.log
    echo "installing moto failed: the AWS emulator test cannot run"
    moto_failed=1
    status=1
fi

# One closing line over every test binary and the rule pack's inline tests.
awk -v broker_failed="$((broker_failed + moto_failed))" '
    /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
    / rules? loaded; / { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed,?$/) p += $(i-1); if ($(i) ~ /^failed$/) f += $(i-1) } }
    END { printf "%d passed, %d failed\n", p, f + broker_failed }
' "$log"
exit "$status"
