#!/usr/bin/env bash
# A Kafka-compatible broker (tansu 0.6.0) on 127.0.0.1, for the real-broker tests and local use.
#
#   scripts/kafka.sh start [PORT] [--keep|--memory]
#                                               install tansu when missing, start the
#                                               broker (default port 19092), wait until it
#                                               answers a metadata request
#   scripts/kafka.sh stop                       stop the broker this script started
#   scripts/kafka.sh status                     exit 0 and say where, when it runs and answers
#   scripts/kafka.sh env                        print `export SESSIONGUARD_TEST_BROKERS=…`
#   scripts/kafka.sh install                    only install tansu
#
# Idempotent: `start` on a running broker says so and succeeds; `stop` on none does nothing.
# State lives in target/kafka/: broker.pid, broker.port, broker.log (the broker's own output),
# tansu-install.log, and broker.db: SQLite storage, emptied at every start unless --keep.
#
# SQLite, not tansu's in-memory storage: the in-memory storage answers a fetch from an offset
# inside a stored batch with the *next* batch, silently skipping the records between (and
# reports short end offsets). A consumer that seeks — a rebuild after a rebalance — then misses
# records. --memory starts it anyway, for comparison.
#
# The broker advertises 127.0.0.1, not localhost: librdkafka may resolve localhost to ::1.
# tansu 0.6.0 has no transactions (no EndTxn); idempotent produce, consumer groups with
# committed offsets and cooperative-sticky rebalancing work with librdkafka 2.x. It does not
# create topics on first use: clients create them (CreateTopics, e.g. rdkafka's AdminClient,
# or `tansu topic create NAME --partitions N --broker tcp://127.0.0.1:PORT`).
#
# Readiness is a Metadata request sent by python3 (standard library), not kcat: Debian's kcat
# is built on librdkafka 2.0.2, which cannot read tansu's ApiVersions v3 response ("Read
# underflow"); librdkafka 2.12 (the one rdkafka builds) can.
#
# Environment: KAFKA_START_TIMEOUT (seconds, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
DEFAULT_PORT=19092
state=target/kafka
pid_file=$state/broker.pid
port_file=$state/broker.port
log_file=$state/broker.log
install_log=$state/tansu-install.log
timeout=${KAFKA_START_TIMEOUT:-60}

say() { echo "kafka.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# The tansu binary: on PATH, or where cargo installs it.
tansu_bin() {
    if command -v tansu >/dev/null 2>&1; then
        command -v tansu
    elif [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
    else
        return 1
    fi
}

install_tansu() {
    local bin
    if bin=$(tansu_bin) && "$bin" --version 2>/dev/null | grep -q " $TANSU_VERSION\$"; then
        return 0
    fi
    mkdir -p "$state"
    say "installing tansu $TANSU_VERSION with cargo (about 20 minutes on 2 cores; log: $install_log)"
    local started=$SECONDS
    # Serialize concurrent installs (two shells starting the broker at once).
    if ! (
        flock 9
        cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
    ) 9>"$state/install.lock" >"$install_log" 2>&1; then
        tail -n 30 "$install_log" >&2 || true
        die "cargo install tansu failed after $((SECONDS - started))s; see $install_log"
    fi
    bin=$(tansu_bin) || die "cargo install finished but no tansu binary was found; see $install_log"
    say "tansu installed in $((SECONDS - started))s: $("$bin" --version)"
}

# The pid in broker.pid when that process is alive and is tansu.
running_pid() {
    [ -f "$pid_file" ] || return 1
    local pid
    pid=$(cat "$pid_file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'tansu broker' || return 1
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Sends a Metadata request (v0, all topics) to 127.0.0.1:PORT; prints each broker it
# advertises as host:port.
metadata_brokers() {
    python3 - "$1" <<'EOF'
import socket, struct, sys

port = int(sys.argv[1])
try:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.settimeout(3)

        def read(n):
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    raise EOFError("connection closed")
                data += chunk
            return data

        client = b"kafka.sh"
        # api key 3 (Metadata), version 0, correlation id 7, client id, empty topic array = all
        body = struct.pack(">hhih", 3, 0, 7, len(client)) + client + struct.pack(">i", 0)
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", read(4))
        data = read(size)
        correlation, count = struct.unpack(">ii", data[:8])
        if correlation != 7:
            raise ValueError(f"correlation id {correlation}")
        at = 8
        for _ in range(count):
            _node, length = struct.unpack(">ih", data[at : at + 6])
            at += 6
            host = data[at : at + length].decode()
            at += length
            (broker_port,) = struct.unpack(">i", data[at : at + 4])
            at += 4
            print(f"{host}:{broker_port}")
except Exception as e:  # noqa: BLE001 - any failure means "not ready"
    print(f"metadata request to 127.0.0.1:{port} failed: {e}", file=sys.stderr)
    sys.exit(1)
EOF
}

# Succeeds when a metadata request to 127.0.0.1:PORT is answered and the broker advertises
# 127.0.0.1:PORT.
metadata_ok() {
    local out
    out=$(metadata_brokers "$1" 2>/dev/null) || return 1
    grep -qx "127.0.0.1:$1" <<<"$out"
}

start() {
    local port=$DEFAULT_PORT storage=sqlite keep=false
    for arg in "$@"; do
        case $arg in
        --keep) keep=true ;;
        --memory) storage=memory ;;
        '' | *[!0-9]*) die "start: unexpected argument '$arg' (usage: start [PORT] [--keep|--memory])" ;;
        *) port=$arg ;;
        esac
    done
    mkdir -p "$state"
    local pid
    if pid=$(running_pid); then
        local running_port
        running_port=$(cat "$port_file" 2>/dev/null || echo "?")
        [ "$running_port" = "$port" ] ||
            die "a broker started by this script already runs on 127.0.0.1:$running_port (pid $pid); stop it first"
        metadata_ok "$port" ||
            die "the broker (pid $pid) runs but does not answer a metadata request on 127.0.0.1:$port; see $log_file"
        say "already running: 127.0.0.1:$port (pid $pid)"
        echo "127.0.0.1:$port"
        return 0
    fi
    rm -f "$pid_file" "$port_file"
    if port_open "$port"; then
        die "127.0.0.1:$port is already in use by another process; choose another port (start PORT)"
    fi

    command -v python3 >/dev/null 2>&1 || die "python3 is needed to check that the broker answers"
    local started=$SECONDS
    install_tansu
    local bin
    bin=$(tansu_bin)

    # SQLite paths are relative to the broker's working directory, so it runs in $state.
    if [ "$storage" = memory ]; then
        storage=memory://tansu/
        say "warning: in-memory storage skips records when a consumer fetches from inside a batch"
    else
        $keep || rm -f "$state"/broker.db "$state"/broker.db-*
        storage=sqlite://broker.db
    fi
    say "starting $("$bin" --version) on 127.0.0.1:$port, storage $storage (log: $log_file)"
    (
        cd "$state"
        # setsid: the broker outlives the shell that started it, and a Ctrl-C in it.
        exec setsid "$bin" broker \
            --listener-url "tcp://127.0.0.1:$port" \
            --advertised-listener-url "tcp://127.0.0.1:$port" \
            --storage-engine "$storage" \
            </dev/null >broker.log 2>&1
    ) &
    pid=$!
    echo "$pid" >"$pid_file"
    echo "$port" >"$port_file"

    local deadline=$((SECONDS + timeout))
    until port_open "$port" && metadata_ok "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file" "$port_file"
            tail -n 30 "$log_file" >&2 || true
            die "tansu exited during start-up; see $log_file"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -n 30 "$log_file" >&2 || true
            kill "$pid" 2>/dev/null || true
            rm -f "$pid_file" "$port_file"
            die "tansu did not answer a metadata request on 127.0.0.1:$port within ${timeout}s; see $log_file"
        fi
        sleep 0.5
    done
    say "running: 127.0.0.1:$port (pid $pid), ready $((SECONDS - started))s after start"
    echo "127.0.0.1:$port"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        rm -f "$pid_file" "$port_file"
        say "not running"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            say "tansu (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$pid_file" "$port_file"
    say "stopped (pid $pid)"
}

status() {
    local pid port
    if ! pid=$(running_pid); then
        say "not running"
        return 1
    fi
    port=$(cat "$port_file")
    if ! metadata_ok "$port"; then
        say "pid $pid runs but does not answer a metadata request on 127.0.0.1:$port; see $log_file"
        return 1
    fi
    say "running: 127.0.0.1:$port (pid $pid, log $log_file)"
    echo "127.0.0.1:$port"
}

case ${1:-} in
start)
    shift
    start "$@"
    ;;
stop) stop ;;
status) status ;;
env)
    port=$(status 2>/dev/null) || die "no broker is running; run: scripts/kafka.sh start"
    echo "export SESSIONGUARD_TEST_BROKERS=$port"
    ;;
install)
    install_tansu
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
