//! Faults under load, against a real Kafka-compatible broker (tansu) and the `run` binary:
//!
//! - the broker killed (SIGKILL) and restarted while records keep arriving: the same `run`
//!   process keeps consuming after the restart, and the actions topic holds exactly `replay`'s
//!   decisions on the same input — none lost, none under a new id (a repeat carries the same id
//!   and content: ids are a hash of rule, session and evidence, `src/decision.rs`);
//! - the `run` process stopped (SIGSTOP) for longer than `max.poll.interval.ms` and the group
//!   session, then resumed: it loses its partition, rejoins, rebuilds, and the same holds;
//! - 100,000 poison records (not JSON, not UTF-8, too deep, too large, of no known source,
//!   wrong-typed time or identity) with the scenario records among them: every poison record
//!   is in the dead-letter topic once, with its bytes, reason and offset; the scenario records
//!   give `replay`'s decisions; the group commits to the end within a deadline (no stall).
//!
//! The first test starts a tansu of its own (on a port held until it starts, so it can kill and
//! restart it); the others use the broker in `SESSIONGUARD_TEST_BROKERS`, as
//! `tests/kafka_broker.rs` does. All are `#[ignore]`d with that reason, so a plain `cargo test`
//! lists them as ignored, never as passed; `scripts/test.sh` runs them with `--ignored`. (The
//! flood is not on librdkafka's mock cluster: a mock partition keeps only its last ~5 MB, so
//! the start of a 100 k-record topic is gone before it is read.)
#![cfg(feature = "kafka")]

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[path = "support/kafka.rs"]
mod support;
use support::*;

/// Paces the input so that it lasts about 15 s: every fault falls while records arrive.
const EVERY: Duration = Duration::from_millis(15);

/// How long the broker stays down at least: past the group session (6 s, `run_engine`).
const OUTAGE: Duration = Duration::from_secs(8);

/// Sends a signal to a process (`kill -s NAME PID`).
fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -s {name} {pid} failed");
}

/// How many `event`s the engine has logged.
fn logged(engine: &Proc, event: &str) -> usize {
    engine.logged(event).len()
}

#[test]
#[ignore = "needs a Kafka broker: tansu (scripts/kafka.sh install); scripts/test.sh passes --ignored"]
fn a_broker_killed_and_restarted_under_load_loses_no_decision() {
    let _serial = serial();
    let mut broker = Tansu::start("restart");
    let brokers = broker.address();
    let files = scenario_files();
    let records = records(&files);
    let want = by_id(&replay_cli(&files), "replay");
    assert!(want.len() >= 30, "replay gave {} decisions", want.len());

    let topics = Topics::create(&brokers, "restart", 1, 1);
    let input = unkeyed(&records);
    let (producer, produced) =
        produce_in_background(&brokers, &topics.inputs[0], input.clone(), EVERY);
    let group = unique("restart");
    let mut engine = run_engine(&brokers, "run", &group, &topics, false);
    let mut actions = Tail::new(&brokers, &topics.actions);
    wait_until(Duration::from_secs(60), "the first decisions", || {
        actions.count() >= 3
    });

    let at_kill = produced.load(Ordering::Relaxed);
    assert!(
        at_kill < records.len(),
        "the input was complete before the kill: not under load"
    );
    let (consumer_errors, producer_errors) = (
        logged(&engine, "consumer_error"),
        logged(&engine, "producer_error"),
    );
    broker.kill();
    let killed = Instant::now();
    // Down until the engine has seen it (an error from librdkafka in its log), and past the
    // 6 s group session (the outage's length is the fault; what is polled is that it was seen).
    wait_until(
        Duration::from_secs(60),
        "the engine to see the broker gone",
        || {
            logged(&engine, "consumer_error") > consumer_errors
                || logged(&engine, "producer_error") > producer_errors
        },
    );
    while killed.elapsed() < OUTAGE {
        thread::sleep(Duration::from_millis(100));
    }
    broker.restart();
    let down = killed.elapsed();
    let at_restart = produced.load(Ordering::Relaxed);
    assert!(
        engine.running(),
        "run exited during the outage\n{}",
        engine.log_tail()
    );

    producer.join().expect("producer");
    let ends = ends_produced(&input);
    stop_when_committed(
        &brokers,
        &group,
        &topics.inputs[0],
        &ends,
        &mut [&mut engine],
    );
    let got = decisions_on(&brokers, &topics.actions);
    let got_by_id = by_id(&got, "run across a broker restart");
    assert_same_decisions(&got_by_id, &want, "run across a broker restart vs replay");
    assert!(
        read_topic(&brokers, &topics.dead_letters).is_empty(),
        "records were dead-lettered"
    );
    note(&format!(
        "broker killed at input {at_kill}/{n}, down {down:.1?}, back at input {at_restart}/{n}: \
         {} decisions as replay, {} repeated under their ids",
        got_by_id.len(),
        got.len() - got_by_id.len(),
        n = records.len()
    ));
}

/// `max.poll.interval.ms` for the paused engine: librdkafka's smallest allowed above the group
/// session (6 s, `run_engine`).
const MAX_POLL_MS: u64 = 7_000;

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one, or set SESSIONGUARD_TEST_BROKERS and pass --ignored"]
fn a_consumer_paused_past_max_poll_interval_loses_no_decision() {
    let brokers = brokers();
    let _serial = serial();
    let files = scenario_files();
    let records = records(&files);
    let want = by_id(&replay_cli(&files), "replay");

    let topics = Topics::create(&brokers, "pause", 1, 1);
    let input = unkeyed(&records);
    let (producer, produced) =
        produce_in_background(&brokers, &topics.inputs[0], input.clone(), EVERY);
    let group = unique("pause");
    let max_poll = format!("max.poll.interval.ms={MAX_POLL_MS}");
    let mut engine = run_engine_with(&brokers, "run", &group, &topics, false, &[&max_poll]);
    let mut actions = Tail::new(&brokers, &topics.actions);
    wait_until(Duration::from_secs(60), "the first decisions", || {
        actions.count() >= 3
    });
    let assigned = logged(&engine, "partition_assigned");
    let at_pause = produced.load(Ordering::Relaxed);
    assert!(
        at_pause < records.len(),
        "the input was complete before the pause: not under load"
    );

    signal(engine.child.id(), "STOP");
    // The pause is the fault: nothing in a stopped process can be polled, so it is timed —
    // past max.poll.interval.ms and the 6 s group session, with a margin for a loaded machine.
    let paused = Instant::now();
    let pause = Duration::from_millis(MAX_POLL_MS) + Duration::from_secs(4);
    while paused.elapsed() < pause {
        thread::sleep(Duration::from_millis(100));
    }
    signal(engine.child.id(), "CONT");
    let paused_for = paused.elapsed();
    let at_resume = produced.load(Ordering::Relaxed);

    // It was put out of the group and came back: its partition assigned again.
    wait_until(
        Duration::from_secs(60),
        "the partition assigned again after the pause",
        || logged(&engine, "partition_assigned") > assigned,
    );
    producer.join().expect("producer");
    let ends = ends_produced(&input);
    stop_when_committed(
        &brokers,
        &group,
        &topics.inputs[0],
        &ends,
        &mut [&mut engine],
    );
    let got = decisions_on(&brokers, &topics.actions);
    let got_by_id = by_id(&got, "run paused");
    assert_same_decisions(
        &got_by_id,
        &want,
        "run paused past max.poll.interval.ms vs replay",
    );
    assert!(
        read_topic(&brokers, &topics.dead_letters).is_empty(),
        "records were dead-lettered"
    );
    note(&format!(
        "paused at input {at_pause}/{n} for {:.1?}, resumed at {at_resume}/{n}; assigned {} \
         times: {} decisions as replay, {} repeated under their ids",
        paused_for,
        logged(&engine, "partition_assigned"),
        got_by_id.len(),
        got.len() - got_by_id.len(),
        n = records.len()
    ));
}

/// The poison kinds of the flood: the bytes of the `n`th record, and the reason it must be
/// dead-lettered with.
fn poison(n: usize) -> (Vec<u8>, &'static str) {
    let cloudtrail = |time: &str, identity: &str| {
        format!(
            "{{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\
             \"eventName\":\"GetObject\",\"eventTime\":{time},\"userIdentity\":{identity},\
             \"n\":{n}}}"
        )
        .into_bytes()
    };
    match n % 7 {
        0 => (
            format!("{{\"n\": {n}, \"eventTime\": \"2024-").into_bytes(),
            "not_json",
        ),
        1 => (
            [
                format!("{{\"n\": {n}, \"x\": \"").as_bytes(),
                b"\xff\xfe\"}",
            ]
            .concat(),
            "invalid_utf8",
        ),
        2 => (
            format!("{{\"hello\": \"world\", \"n\": {n}}}").into_bytes(),
            "unknown_source",
        ),
        3 => (
            cloudtrail(
                &format!("{{\"n\":{n}}}"),
                "{\"accountId\":\"1\",\"accessKeyId\":\"ASIAX\"}",
            ),
            "bad_timestamp",
        ),
        4 => (
            cloudtrail("\"2024-08-01T10:00:00Z\"", &format!("\"ASIA{n}\"")),
            "invalid_field",
        ),
        5 => (
            cloudtrail(
                "\"2024-08-01T10:00:00Z\"",
                &format!("{{\"accountId\":\"{n}\"}}"),
            ),
            "no_session_identity",
        ),
        _ => (
            format!("{{\"n\":{n},\"a\":{}{}}}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            "too_deep",
        ),
    }
}

/// Poison records in the flood, and how many of them are larger than the record limit.
const POISON: usize = 100_000;
const LARGE: usize = 3;
/// The bound on the whole run over the flood: past it, the run stalled.
const FLOOD_LIMIT: Duration = Duration::from_secs(900);

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one, or set SESSIONGUARD_TEST_BROKERS and pass --ignored"]
fn a_flood_of_poison_records_is_dead_lettered_and_the_valid_ones_decided() {
    let brokers = brokers();
    let _serial = serial();
    let files = scenario_files();
    let good = records(&files);
    let want = by_id(&replay_cli(&files), "replay");

    // The scenario records spread evenly through the poison, in their order, on one partition.
    let mut input: Vec<Out> = Vec::with_capacity(POISON + good.len());
    let mut reasons: Vec<Option<&str>> = Vec::with_capacity(POISON + good.len());
    let every = POISON / good.len();
    let mut valid = good.iter();
    let mut push = |value: Vec<u8>, reason: Option<&'static str>| {
        input.push(Out {
            partition: Some(0),
            key: None,
            value,
        });
        reasons.push(reason);
    };
    for n in 0..POISON {
        if n % every == 0 {
            if let Some(record) = valid.next() {
                push(record.bytes.clone(), None);
            }
        }
        if n % (POISON / LARGE) == POISON / LARGE / 2 {
            let pad = "A".repeat(sessionguard::event::DEFAULT_MAX_RECORD_BYTES);
            push(
                format!("{{\"n\":{n},\"pad\":\"{pad}\"}}").into_bytes(),
                Some("too_large"),
            );
        } else {
            let (bytes, reason) = poison(n);
            push(bytes, Some(reason));
        }
    }
    for record in valid {
        push(record.bytes.clone(), None);
    }
    // The library's normalizer gives each kind the reason expected of it.
    let normalizer = sessionguard::event::Normalizer::default();
    let mut kinds = BTreeSet::new();
    for (out, reason) in input.iter().zip(&reasons) {
        let Some(reason) = reason else { continue };
        if kinds.insert(*reason) {
            let scratch = bumpalo::Bump::new();
            let Err(got) = normalizer.normalize(&out.value, &scratch) else {
                panic!("a {reason} poison record normalized");
            };
            assert_eq!(got.reason.as_str(), *reason, "{got}");
        }
    }
    assert_eq!(
        kinds.len(),
        8,
        "every kind of poison is in the flood: {kinds:?}"
    );

    let topics = Topics::create(&brokers, "flood", 1, 1);
    let started = Instant::now();
    produce(
        &brokers,
        &topics.inputs[0],
        &input,
        Duration::ZERO,
        &AtomicUsize::new(0),
    );
    let produced_in = started.elapsed();
    let group = unique("flood");
    let mut engine = run_engine(&brokers, "run", &group, &topics, false);
    let ends = ends_produced(&input);
    let mut last = Ok(Default::default());
    let done = wait_for(FLOOD_LIMIT, || {
        last = try_committed(&brokers, &group, &topics.inputs[0]);
        last.as_ref().is_ok_and(|c| *c == ends)
    });
    assert!(
        done,
        "the run did not commit the flood to {ends:?} within {FLOOD_LIMIT:?} (at {last:?})\n{}",
        engine.log_tail()
    );
    let consumed_in = started.elapsed() - produced_in;
    engine.terminate();

    // Every poison record dead-lettered once, with its bytes, reason and offset.
    let mut letters = Tail::new(&brokers, &topics.dead_letters);
    wait_until(FLOOD_LIMIT, "every dead letter read back", || {
        letters.read_for(Duration::from_secs(1));
        letters.messages.len() >= POISON
    });
    letters.read_for(Duration::from_secs(3));
    assert_eq!(letters.messages.len(), POISON, "dead letters");
    let mut seen = BTreeSet::new();
    for letter in &letters.messages {
        let offset: usize = letter.header("__connect.errors.offset").parse().unwrap();
        assert!(seen.insert(offset), "offset {offset} dead-lettered twice");
        let reason = reasons[offset]
            .unwrap_or_else(|| panic!("the valid record at offset {offset} was dead-lettered"));
        assert_eq!(
            letter.header("sessionguard.reject.reason"),
            reason,
            "offset {offset}"
        );
        let message = letter.header("__connect.errors.exception.message");
        assert!(message.starts_with(&format!("{reason}: ")), "{message}");
        let bytes = &input[offset].value;
        let kept = bytes.len().min(64 * 1024);
        assert!(
            letter.value == bytes[..kept],
            "offset {offset}: not the original bytes"
        );
        assert_eq!(
            letter.header("sessionguard.truncated"),
            if kept < bytes.len() { "true" } else { "false" },
            "offset {offset}"
        );
    }

    // The valid records among them: replay's decisions.
    let got = decisions_on(&brokers, &topics.actions);
    let got_by_id = by_id(&got, "run over the flood");
    assert_same_decisions(&got_by_id, &want, "run over the flood vs replay");
    note(&format!(
        "flood: {} records ({POISON} poison, {LARGE} over the record limit) produced in \
         {produced_in:.1?}, read, dead-lettered and committed in {consumed_in:.1?}; {} \
         decisions as replay",
        input.len(),
        got_by_id.len()
    ));
}
