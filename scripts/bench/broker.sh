#!/usr/bin/env bash
# (d) and (e) through a real broker: tansu 0.6.0 on SQLite, started by scripts/kafka.sh.
#
# (d) Throughput. The generated events are produced once into a fresh 1-partition topic; then,
#     interleaved (null, run, null, run …, BROKER_REPS each, default 5: each costs seconds of
#     broker time), a fresh consumer group of
#       null  `sessionguard run --null-engine`: the same consumer loop, client settings, offset
#             storing and delivery tracking as `run`, no normalize or rules, one small record
#             (the input offset) produced per input record (docs/kafka.md, "The null engine");
#       run   `sessionguard run --rules rules` (the full shipped pack, with a progress topic);
#     reads the whole topic. Throughput = records ÷ the span from the engine's first record to
#     the last one processed with everything it caused acknowledged (its `pipeline_stopped`
#     line; group join excluded). Reported: the medians and run/null.
# (e) Latency at half the lower of the two (d) medians: each engine runs live on a fresh topic
#     while the same events are produced paced at that rate; the engine's hdrhistogram — the
#     input record's Kafka timestamp (the CreateTime the bench's producer sets when it hands
#     the record to librdkafka, linger.ms=1) to the broker's acknowledgement of the output —
#     per decision (run) and per output record (null). Before it, the broker alone at the same
#     rate (paced producer → plain consumer, no engine) gives the floor.
#
# Both engines and the floor consumer get -X fetch.wait.max.ms=$BROKER_FETCH_WAIT_MS (default
# 100): tansu 0.6.0 answers a fetch only after sleeping at least half of the fetch's max wait,
# even when it has data (docs/kafka.md), so librdkafka's default 500 adds ~250 ms to every record.
# The engines also get session.timeout.ms=30000 (a loaded machine delays tansu's heartbeat
# answers; an engine that still stops short of the topic's end is run again, and says so).
# The engine binary is a private copy (target/bench/broker/sessionguard), so a rebuild of
# target/release during the run cannot change it between repetitions.
#
# Usage: scripts/bench/broker.sh          Environment: BROKER_REPS (default 5), BROKER_EVENTS
# (default 20000: tansu on SQLite reads ~1,000–7,000 records/s, and slows as a topic grows), BROKER_ATTACK_RATE (attacks per million records, default 10000: ~3,900
# decisions, so the p99.9 rests on a few thousand), BROKER_FETCH_WAIT_MS (default 100).
# The last two stdout lines are the `(d) broker: …` and `(e) broker latency …` lines; the
# engines' logs are in target/bench/broker/.
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=${BROKER_REPS:-5}
EVENTS=${BROKER_EVENTS:-20000}
ATTACK_RATE=${BROKER_ATTACK_RATE:-10000}
FETCH_WAIT_MS=${BROKER_FETCH_WAIT_MS:-100}
for v in REPS EVENTS FETCH_WAIT_MS; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "broker.sh: BROKER_$v must be a positive integer, not '${!v}'" >&2
        exit 2
    fi
done

echo "broker.sh: building (cargo build --release, cargo bench --bench broker --no-run)" >&2
cargo build --release --quiet
cargo bench --bench broker --no-run --quiet 2>/dev/null ||
    cargo bench --bench broker --no-run
mkdir -p target/bench/broker
# A private copy: a rebuild of target/release by someone else mid-run must not change the
# binary between repetitions.
SG=target/bench/broker/sessionguard
cp target/release/sessionguard "$SG"

# A broker this script starts is stopped when it ends; one already running is left running.
if ! scripts/kafka.sh status >/dev/null 2>&1; then
    trap 'scripts/kafka.sh stop || true' EXIT
fi
BROKERS=$(scripts/kafka.sh start | tail -n 1)
if ! [[ $BROKERS =~ ^[0-9A-Za-z.:-]+:[0-9]+$ ]]; then
    echo "broker.sh: scripts/kafka.sh start printed '$BROKERS', not HOST:PORT" >&2
    exit 1
fi
echo "broker.sh: broker at $BROKERS" >&2

INPUT=target/bench/broker/input-$EVENTS-$ATTACK_RATE.jsonl
if [[ ! -s $INPUT ]]; then
    # 2,000 s of event time (100 records per second for 200 000 records): enough for the
    # attacks (they need at least 900 s) and for the 5- and 10-minute windows of the pack.
    "$SG" gen --sources cloudtrail,okta,kubernetes,github \
        --events "$EVENTS" --attack-rate "$ATTACK_RATE" \
        --events-per-second-of-event-time "$(python3 -c "print($EVENTS / 2000)")" \
        --out "$INPUT" --quiet
fi
DECISIONS=$("$SG" replay "$INPUT" --rules rules --no-progress \
    --out /dev/null 2>&1 | awk '$1 == "decisions" { print $2 }')
echo "input: $INPUT; replay takes $DECISIONS decisions on it"

cargo bench --bench broker --quiet -- --bench \
    --brokers "$BROKERS" --input "$INPUT" --reps "$REPS" \
    --bin "$SG" --rules rules --work target/bench/broker --expect-decisions "$DECISIONS" \
    -X "fetch.wait.max.ms=$FETCH_WAIT_MS"
