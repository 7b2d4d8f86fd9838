//! The Kafka runtime against librdkafka's in-process mock cluster (no broker needed), through
//! the library API the `run`, `rekey` and `demo` commands use:
//!
//! - the scenario fixtures produced into one partition give exactly the decisions `replay`
//!   gives on the same files: same ids in the same order, same JSON except evidence origins
//!   (topic/partition/offset instead of file:line), key = session key, id and rule headers;
//! - after `rekey` into a 4-partition keyed topic, the decision ids equal replay's for every
//!   rule that depends only on its own session's events (see `CROSS_SESSION_RULES`);
//! - poison records (invalid UTF-8, not JSON, too deep) land in the dead-letter topic with
//!   their reason and origin headers, and the records after them are still decided;
//! - a flood of 100,000 poison records of every kind with the scenario records among them:
//!   each poison record is dead-lettered once with its bytes, reason and origin, the scenario
//!   records give replay's decisions, and the run reads it all within its deadline;
//! - a runner stopped as by a crash mid-stream and then restarted loses no decision and
//!   repeats one only with the same id and bytes, for several stop points;
//! - two runners in one group split the partitions and together give one runner's decision
//!   set, with the second joining while windows are open;
//! - a broker outage and failing produce requests are survived without loss.
//!
//! Every test has its own mock cluster, topics and group, and a deadline on every wait; waits
//! poll for what they wait for (a progress record, a lost assignment, a bound port), never a
//! fixed sleep.
#![cfg(feature = "kafka")]
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bumpalo::Bump;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::Value;
use sessionguard::config::Settings;
use sessionguard::event::Normalizer;
use sessionguard::kafka::demo::{produce, read_topic, records_of, Fetched};
use sessionguard::kafka::{run, Control, Mode, Summary};
use sessionguard::rule::RuleSet;
use sessionguard::telemetry::Telemetry;

#[path = "support/kafka.rs"]
mod support;
use support::{
    decision_id, replay_decisions, root, scenario_paths, settings, wait_until, without_origins,
};

fn rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}")))
}

fn create_topics(cluster: &MockCluster<'_, impl rdkafka::ClientContext>, name: &str, input: i32) {
    cluster
        .create_topic(&format!("{name}.in"), input, 1)
        .unwrap();
    for (suffix, partitions) in [("actions", 1), ("dead", 1), ("progress", 1), ("keyed", 4)] {
        cluster
            .create_topic(&format!("{name}.{suffix}"), partitions, 1)
            .unwrap();
    }
}

struct Runner {
    control: Control,
    telemetry: Arc<Telemetry>,
    handle: JoinHandle<Summary>,
}

fn spawn(mode: Mode, settings: Settings) -> Runner {
    spawn_with(mode, settings, |_| {})
}

fn spawn_with(mode: Mode, settings: Settings, prepare: impl FnOnce(&Control)) -> Runner {
    let control = Control::new();
    prepare(&control);
    let telemetry = Telemetry::new();
    let (c, t) = (control.clone(), telemetry.clone());
    let handle = thread::spawn(move || run(mode, &settings, &c, t).unwrap());
    Runner {
        control,
        telemetry,
        handle,
    }
}

impl Runner {
    fn records(&self) -> u64 {
        self.telemetry.metrics().records
    }

    fn join(self) -> Summary {
        self.handle.join().unwrap()
    }
}

fn decisions_in(brokers: &str, topic: &str) -> Vec<(Fetched, Value)> {
    read_topic(brokers, topic)
        .unwrap()
        .into_iter()
        .map(|f| {
            let v: Value = serde_json::from_slice(&f.payload).expect("decision JSON");
            (f, v)
        })
        .collect()
}

/// The newest position a progress record on `topic` says is delivered (`-1`: none yet).
fn progress_committed(brokers: &str, topic: &str) -> i64 {
    read_topic(brokers, topic)
        .unwrap()
        .iter()
        .filter_map(|f| serde_json::from_slice::<Value>(&f.payload).ok()?["committed"].as_i64())
        .max()
        .unwrap_or(-1)
}

/// Decision ids, checking that every repeat of an id carries the same bytes.
fn deduplicated(decisions: &[(Fetched, Value)]) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, &[u8]> = BTreeMap::new();
    for (f, v) in decisions {
        let id = decision_id(v);
        if let Some(first) = seen.get(&id) {
            assert_eq!(
                String::from_utf8_lossy(first),
                String::from_utf8_lossy(&f.payload),
                "decision {id} was repeated with different content"
            );
        }
        seen.insert(id, &f.payload);
    }
    seen.into_keys().collect()
}

fn ids(decisions: &[Value]) -> BTreeSet<String> {
    decisions.iter().map(decision_id).collect()
}

#[test]
fn one_partition_gives_exactly_the_replay_decisions() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "exact";
    create_topics(&cluster, name, 1);
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    produce(&brokers, &format!("{name}.in"), &records, Some(0)).unwrap();

    let mut s = settings(&brokers, "exact-group", &[&format!("{name}.in")], name);
    s.max_events = Some(records.len() as u64);
    let summary = spawn(Mode::Evaluate(rules()), s).join();
    assert_eq!(summary.records, records.len() as u64);
    assert_eq!(summary.rejects.values().sum::<u64>(), 0);

    let expected = replay_decisions(&files);
    assert!(expected.len() > 20, "the scenarios should decide");
    let got = decisions_in(&brokers, &format!("{name}.actions"));
    let got_ids: Vec<String> = got.iter().map(|(_, v)| decision_id(v)).collect();
    let want_ids: Vec<String> = expected.iter().map(decision_id).collect();
    assert_eq!(got_ids, want_ids, "same decisions, same order");
    for ((fetched, got), want) in got.iter().zip(&expected) {
        assert_eq!(without_origins(got), without_origins(want));
        assert_eq!(
            fetched.key.as_deref(),
            want["session"]["key"].as_str().map(str::as_bytes),
            "key = session key"
        );
        assert_eq!(fetched.header("decision_id"), want["decision_id"].as_str());
        assert_eq!(fetched.header("rule_id"), want["rule"]["id"].as_str());
        // Evidence points at Kafka records of the input topic.
        for e in got["evidence"]["events"].as_array().unwrap() {
            assert_eq!(e["origin"]["topic"], format!("{name}.in").as_str());
            assert_eq!(e["origin"]["partition"], 0);
            let offset = e["origin"]["offset"].as_i64().unwrap();
            assert!((0..records.len() as i64).contains(&offset));
        }
    }
    // The same events reached the same places: evidence offsets are the replay's lines,
    // counted over the whole stream.
    let mut line_offsets = BTreeMap::new();
    let mut offset = 0i64;
    for f in &files {
        let n = records_of(std::slice::from_ref(f)).unwrap().len() as i64;
        line_offsets.insert(f.display().to_string(), offset);
        offset += n;
    }
    for (got, want) in got.iter().map(|(_, v)| v).zip(&expected) {
        let gev = got["evidence"]["events"].as_array().unwrap();
        let wev = want["evidence"]["events"].as_array().unwrap();
        for (g, w) in gev.iter().zip(wev) {
            let file = w["origin"]["file"].as_str().unwrap();
            let line = w["origin"]["line"].as_i64().unwrap();
            assert_eq!(
                g["origin"]["offset"].as_i64().unwrap(),
                line_offsets[file] + line - 1
            );
        }
    }
}

/// Rules whose decisions depend on more than their own session's events, so a keyed,
/// partitioned run may differ from one stream:
/// - the 8-hour timer fires when *other* sessions' events move event time past its due time,
///   and each partition has its own event time;
/// - role chaining links a parent session to a child with another key, which may hash to
///   another partition: the child then inherits neither the kill nor the sequence progress;
/// - kill_not_enforced on a chained child depends on that inheritance too;
/// - and so does every other decision on a chained child: killed by the chain in one stream it
///   has no later kill of its own, while in a partition apart from its parent another rule may
///   kill it. Chained children (decisions naming a parent) are left out of the comparison.
const CROSS_SESSION_RULES: &[&str] = &[
    "sg.session.privileged_open_8h",
    "sg.aws.role_chain_admin",
    "sessionguard.kill_not_enforced",
];
// (Checked: with only the timer rule excluded, the comparison fails: decisions of the two
// lineage-dependent rules differ when parent and child land in different partitions.)

#[test]
fn rekeyed_partitions_give_the_replay_decisions_of_session_local_rules() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "rekey";
    create_topics(&cluster, name, 1);
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    produce(&brokers, &format!("{name}.in"), &records, Some(0)).unwrap();

    let mut s = settings(&brokers, "rekey-group", &[&format!("{name}.in")], name);
    s.max_events = Some(records.len() as u64);
    let summary = spawn(Mode::Rekey, s).join();
    assert_eq!(summary.rekeyed, records.len() as u64);

    // Every record of a session is in one partition, under its session key, with its bytes.
    let keyed = read_topic(&brokers, &format!("{name}.keyed")).unwrap();
    assert_eq!(keyed.len(), records.len());
    let normalizer = Normalizer::default();
    let mut partition_of: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    for f in &keyed {
        let scratch = Bump::new();
        let event = normalizer.normalize(&f.payload, &scratch).unwrap();
        let key = event.session.key.to_string().into_bytes();
        assert_eq!(f.key.as_ref(), Some(&key));
        assert_eq!(*partition_of.entry(key).or_insert(f.partition), f.partition);
    }
    let used: BTreeSet<i32> = keyed.iter().map(|f| f.partition).collect();
    assert!(used.len() > 1, "sessions should spread over partitions");

    let mut s = settings(&brokers, "rekey-eval", &[&format!("{name}.keyed")], name);
    s.max_events = Some(records.len() as u64);
    spawn(Mode::Evaluate(rules()), s).join();
    let got = decisions_in(&brokers, &format!("{name}.actions"));
    let got: Vec<Value> = got.into_iter().map(|(_, v)| v).collect();
    let expected = replay_decisions(&files);
    let cross = |d: &Value| CROSS_SESSION_RULES.contains(&d["rule"]["id"].as_str().unwrap());
    let chained: BTreeSet<String> = got
        .iter()
        .chain(&expected)
        .filter(|d| !d["session"]["parent"].is_null())
        .map(|d| d["session"]["key"].as_str().unwrap().to_owned())
        .collect();
    let local = |d: &&Value| !cross(d) && !chained.contains(d["session"]["key"].as_str().unwrap());
    let got_local = ids(&got.iter().filter(local).cloned().collect::<Vec<_>>());
    let want_local = ids(&expected.iter().filter(local).cloned().collect::<Vec<_>>());
    assert!(want_local.len() > 20);
    let differing: Vec<String> = got
        .iter()
        .chain(&expected)
        .filter(|d| {
            let id = d["decision_id"].as_str().unwrap_or("").to_owned();
            got_local.contains(&id) != want_local.contains(&id)
        })
        .map(|d| format!("{} {} {}", d["rule"]["id"], d["session"]["key"], d["time"]))
        .collect();
    assert_eq!(got_local, want_local, "differing: {differing:#?}");
}

#[test]
fn poison_records_are_dead_lettered_and_do_not_stall_the_partition() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "poison";
    create_topics(&cluster, name, 1);
    let files: Vec<PathBuf> = scenario_paths()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("scope-escalation-aws/attack"))
        .collect();
    let good = records_of(&files).unwrap();
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
    let poison: Vec<Vec<u8>> = vec![
        b"{\"eventTime\": \"\xff\xfe\"}".to_vec(),
        b"this is not json".to_vec(),
        deep.into_bytes(),
    ];
    let mut records = poison.clone();
    records.extend(good.iter().cloned());
    produce(&brokers, &format!("{name}.in"), &records, Some(0)).unwrap();

    let mut s = settings(&brokers, "poison-group", &[&format!("{name}.in")], name);
    s.max_events = Some(records.len() as u64);
    let summary = spawn(Mode::Evaluate(rules()), s).join();
    assert_eq!(summary.dead_letters, 3);

    let dead = read_topic(&brokers, &format!("{name}.dead")).unwrap();
    assert_eq!(dead.len(), 3);
    let reasons: Vec<&str> = dead
        .iter()
        .map(|f| f.header("sessionguard.reject.reason").unwrap())
        .collect();
    assert_eq!(reasons, ["invalid_utf8", "not_json", "too_deep"]);
    for (i, f) in dead.iter().enumerate() {
        assert_eq!(f.payload, poison[i], "the original bytes");
        assert_eq!(
            f.header("__connect.errors.topic"),
            Some(format!("{name}.in").as_str())
        );
        assert_eq!(f.header("__connect.errors.partition"), Some("0"));
        assert_eq!(
            f.header("__connect.errors.offset"),
            Some(i.to_string().as_str())
        );
        let message = f.header("__connect.errors.exception.message").unwrap();
        assert!(
            message.starts_with(&format!("{}: ", reasons[i])),
            "{message}"
        );
    }
    // The records after the poison were decided, as replay decides them.
    let got: Vec<Value> = decisions_in(&brokers, &format!("{name}.actions"))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let expected = replay_decisions(&files);
    assert!(!expected.is_empty());
    assert_eq!(ids(&got), ids(&expected));
    // And the offset was committed past everything: a new runner in the group has nothing to do.
    let mut s = settings(&brokers, "poison-group", &[&format!("{name}.in")], name);
    s.exit_when_idle = Some(Duration::from_secs(2));
    let again = spawn(Mode::Evaluate(rules()), s).join();
    assert_eq!(again.decisions + again.dead_letters, 0);
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

/// The key of the poison record at `index` of the flood.
fn poison_key(index: usize) -> String {
    format!("poison-{index}")
}

/// Asserts that no partition of `topic` has lost its start: a mock partition keeps only its
/// last 5 MB (librdkafka's `rd_kafka_mock_partition_log_append`), so a test that writes more
/// would read short without any fault of the engine.
fn assert_whole(brokers: &str, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "watermarks")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    for partition in metadata.topics()[0].partitions() {
        let (low, _) = consumer
            .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            low,
            0,
            "{topic}/{} dropped its first {low} records (the mock keeps 5 MB a partition)",
            partition.id()
        );
    }
}

/// 100,000 poison records — not JSON, not UTF-8, too deep, larger than the 1 MiB record limit,
/// of no known source, with a wrong-typed time or identity — over 8 partitions, the scenario
/// records among those of partition 0 in their order: every poison record is in the
/// dead-letter topic once, with its bytes (the first 64 KiB of a large one, marked truncated),
/// its reason and its partition and offset; the scenario records give exactly replay's
/// decisions; the run reads everything within its deadline. (Spread over partitions because a
/// mock partition keeps only its last 5 MB: one partition would lose the start of the flood.
/// The poison records are keyed so that their dead letters, which keep the key, spread by
/// hash; keyless, librdkafka's sticky partitioner sent long runs to one partition, more of
/// them the busier the machine, and a partition could pass 5 MB.)
#[test]
fn a_flood_of_poison_records_is_dead_lettered_and_the_valid_ones_decided() {
    let _logs = support::capture_logs();
    const POISON: usize = 100_000;
    const PARTITIONS: usize = 8;
    const LARGE: [usize; 3] = [10_001, 45_002, 80_003];
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "flood";
    let topic = format!("{name}.in");
    cluster.create_topic(&topic, PARTITIONS as i32, 1).unwrap();
    for (suffix, partitions) in [("actions", 1), ("dead", 16), ("progress", 1)] {
        cluster
            .create_topic(&format!("{name}.{suffix}"), partitions, 1)
            .unwrap();
    }
    let files = scenario_paths();
    let good = records_of(&files).unwrap();
    let expected = replay_decisions(&files);
    assert!(expected.len() > 20, "the scenarios should decide");

    // (partition, bytes, the reason it must be dead-lettered with: none for a valid record)
    let mut input: Vec<(usize, Vec<u8>, Option<&str>)> = Vec::with_capacity(POISON + good.len());
    let every = POISON / good.len();
    let mut valid = good.iter();
    for n in 0..POISON {
        if n % every == 0 {
            if let Some(record) = valid.next() {
                input.push((0, record.clone(), None));
            }
        }
        if let Some(k) = LARGE.iter().position(|&l| l == n) {
            let pad = "A".repeat(sessionguard::event::DEFAULT_MAX_RECORD_BYTES);
            let bytes = format!("{{\"n\":{n},\"pad\":\"{pad}\"}}").into_bytes();
            input.push((PARTITIONS - 1 - k, bytes, Some("too_large")));
        } else {
            let (bytes, reason) = poison(n);
            input.push((n % PARTITIONS, bytes, Some(reason)));
        }
    }
    input.extend(valid.map(|r| (0, r.clone(), None)));
    // The library's normalizer gives each kind the reason expected of it.
    let normalizer = Normalizer::default();
    let mut kinds = BTreeSet::new();
    for (_, bytes, reason) in &input {
        let Some(reason) = reason else { continue };
        if kinds.insert(*reason) {
            let scratch = Bump::new();
            let got = normalizer
                .normalize(bytes, &scratch)
                .map(|_| ())
                .unwrap_err();
            assert_eq!(got.reason.as_str(), *reason, "{got}");
        }
    }
    assert_eq!(
        kinds.len(),
        8,
        "every kind of poison is in the flood: {kinds:?}"
    );

    // Produced in order per partition (idempotent), so each record's offset is known; with a
    // limit above the large records (librdkafka's default is 1,000,000 bytes).
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.max.bytes", "4000000")
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut next = [0usize; PARTITIONS];
    let mut at: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (i, (partition, bytes, reason)) in input.iter().enumerate() {
        at.insert((*partition as i32, next[*partition] as i64), i);
        next[*partition] += 1;
        // A dead letter keeps its record's key: keyed, the dead letters spread over the
        // dead-letter partitions by hash, the same way however loaded the machine is.
        let key = reason.map(|_| poison_key(i));
        let mut record = BaseRecord::<[u8], [u8]>::to(&topic)
            .payload(bytes)
            .partition(*partition as i32);
        if let Some(key) = &key {
            record = record.key(key.as_bytes());
        }
        let mut record = Some(record);
        while let Some(r) = record.take() {
            if let Err((e, back)) = producer.send(r) {
                assert!(
                    matches!(
                        e,
                        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                    ),
                    "producing the flood: {e}"
                );
                thread::sleep(Duration::from_millis(5));
                record = Some(back);
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    drop(producer);
    assert_whole(&brokers, &topic);

    let mut s = settings(&brokers, "flood-group", &[&topic], name);
    s.max_events = Some(input.len() as u64);
    let started = Instant::now();
    let runner = spawn(Mode::Evaluate(rules()), s);
    wait_until(
        Duration::from_secs(300),
        "the run to read the whole flood",
        || runner.records() >= input.len() as u64 || runner.handle.is_finished(),
    );
    let summary = runner.join();
    let took = started.elapsed();
    assert_eq!(summary.records, input.len() as u64, "records read");
    assert_eq!(summary.dead_letters, POISON as u64);

    // Every poison record dead-lettered once, with its bytes, reason, partition and offset.
    let dead_topic = format!("{name}.dead");
    assert_whole(&brokers, &dead_topic);
    let dead = read_topic(&brokers, &dead_topic).unwrap();
    assert_eq!(dead.len(), POISON, "dead letters");
    let mut seen = BTreeSet::new();
    for letter in &dead {
        let number = |header: &str| -> i64 {
            letter
                .header(header)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("a dead letter without {header}"))
        };
        let origin = (
            number("__connect.errors.partition") as i32,
            number("__connect.errors.offset"),
        );
        assert!(seen.insert(origin), "{origin:?} dead-lettered twice");
        let (_, bytes, reason) = &input[at[&origin]];
        assert_eq!(
            letter.key.as_deref(),
            Some(poison_key(at[&origin]).as_bytes()),
            "{origin:?}: the dead letter keeps the record's key"
        );
        let reason =
            reason.unwrap_or_else(|| panic!("the valid record {origin:?} was dead-lettered"));
        assert_eq!(
            letter.header("sessionguard.reject.reason"),
            Some(reason),
            "{origin:?}"
        );
        assert_eq!(
            letter.header("__connect.errors.topic"),
            Some(topic.as_str())
        );
        let message = letter.header("__connect.errors.exception.message").unwrap();
        assert!(message.starts_with(&format!("{reason}: ")), "{message}");
        let kept = bytes.len().min(64 * 1024);
        assert!(
            letter.payload == bytes[..kept],
            "{origin:?}: not the original bytes"
        );
        assert_eq!(
            letter.header("sessionguard.truncated"),
            Some(if kept < bytes.len() { "true" } else { "false" }),
            "{origin:?}"
        );
    }

    // The valid records among them: replay's decisions, in replay's order.
    let got: Vec<Value> = decisions_in(&brokers, &format!("{name}.actions"))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let strip = |ds: &[Value]| ds.iter().map(without_origins).collect::<Vec<Value>>();
    assert_eq!(strip(&got), strip(&expected), "decisions among the flood");
    eprintln!(
        "kafka_mock: {} records ({POISON} poison) read, dead-lettered and decided in {took:.1?}",
        input.len()
    );
}

#[test]
fn restarts_after_a_crash_lose_no_decision() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    let expected = ids(&replay_decisions(&files));
    // Stop points spread over the stream, inside open windows of different scenarios. Each
    // round: the first runner reads up to the stop point and has time to deliver, store and
    // write progress; then more records arrive and it crashes a few records later, with
    // decisions undelivered and offsets unstored; a second runner takes over.
    for (round, stop_at) in [97usize, 301, 555].into_iter().enumerate() {
        let name = format!("crash{round}");
        create_topics(&cluster, &name, 1);
        let input = format!("{name}.in");
        produce(&brokers, &input, &records[..stop_at], Some(0)).unwrap();
        let group = format!("crash-group-{round}");
        let mut s = settings(&brokers, &group, &[&input], &name);
        s.exit_when_idle = None;
        // Slow deliveries: what the last records caused is still in flight at the crash.
        s.librdkafka.push(("linger.ms".into(), "300".into()));
        let crash_at = stop_at as u64 + 40;
        let first = spawn_with(Mode::Evaluate(rules()), s, |c| c.crash_after(crash_at));
        wait_until(
            Duration::from_secs(30),
            "the first runner to reach the stop point",
            || first.records() >= stop_at as u64,
        );
        // Everything the records before the stop point caused is delivered, and a progress
        // record says so: the restart has that checkpoint to rebuild from.
        let progress = format!("{name}.progress");
        wait_until(
            Duration::from_secs(30),
            "a progress record at the stop point",
            || progress_committed(&brokers, &progress) >= stop_at as i64,
        );
        produce(&brokers, &input, &records[stop_at..], Some(0)).unwrap();
        let crashed = first.join();
        assert!(crashed.crashed);
        assert_eq!(crashed.records, crash_at, "stopped mid-stream");

        let s = settings(&brokers, &group, &[&input], &name);
        let second = spawn(Mode::Evaluate(rules()), s).join();
        assert!(
            second.replayed > 0,
            "round {round}: the restart rebuilt state by replaying"
        );
        let got = decisions_in(&brokers, &format!("{name}.actions"));
        assert_eq!(
            deduplicated(&got),
            expected,
            "round {round}: the decisions of an uninterrupted run"
        );
    }
}

#[test]
fn two_runners_split_the_partitions_and_give_one_runners_decisions() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "split";
    create_topics(&cluster, name, 1);
    let keyed = format!("{name}.keyed");
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    // Keyed by session, as rekey writes it.
    let normalizer = Normalizer::default();
    let mut by_partition: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for r in &records {
        let scratch = Bump::new();
        let key = normalizer
            .normalize(r, &scratch)
            .unwrap()
            .session
            .key
            .to_string();
        let p = (key
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
            % 4) as i32;
        by_partition.entry(p).or_default().push(r.clone());
    }
    // The first half of every partition now, the rest once the second runner has joined.
    let mut rest = BTreeMap::new();
    let mut first_half = 0u64;
    for (p, rs) in &by_partition {
        let half = rs.len() / 2;
        produce(&brokers, &keyed, &rs[..half], Some(*p)).unwrap();
        rest.insert(*p, rs[half..].to_vec());
        first_half += half as u64;
    }
    let s = settings(&brokers, "split-group", &[&keyed], name);
    let mut s1 = s.clone();
    s1.exit_when_idle = None;
    let a = spawn(Mode::Evaluate(rules()), s1);
    wait_until(
        Duration::from_secs(30),
        "the first runner to read the first half",
        || a.records() >= first_half,
    );
    let mut s2 = s.clone();
    s2.exit_when_idle = None;
    let b = spawn(Mode::Evaluate(rules()), s2);
    wait_until(
        Duration::from_secs(30),
        "the second runner to get partitions",
        || b.telemetry.metrics().partitions > 0,
    );
    wait_until(
        Duration::from_secs(30),
        "the first runner to keep some partitions",
        || a.telemetry.metrics().partitions > 0,
    );
    let (pa, pb) = (
        a.telemetry.metrics().partitions,
        b.telemetry.metrics().partitions,
    );
    assert_eq!(pa + pb, 4, "the partitions are split: {pa} + {pb}");
    for (p, rs) in &rest {
        produce(&brokers, &keyed, rs, Some(*p)).unwrap();
    }
    let new_records = |r: &Runner| {
        let m = r.telemetry.metrics();
        m.records - m.replayed
    };
    wait_until(
        Duration::from_secs(60),
        "the two runners to read every record",
        || new_records(&a) + new_records(&b) >= records.len() as u64,
    );
    a.control.stop();
    b.control.stop();
    let (sa, sb) = (a.join(), b.join());
    assert!(sa.decisions > 0 && sb.decisions > 0, "both runners decided");
    assert!(
        sa.rebalances >= 2,
        "the first runner went through a rebalance"
    );
    let together = deduplicated(&decisions_in(&brokers, &format!("{name}.actions")));

    // One runner alone over the same keyed topic, in another group.
    let alone_name = "split-alone";
    cluster
        .create_topic(&format!("{alone_name}.actions"), 1, 1)
        .unwrap();
    cluster
        .create_topic(&format!("{alone_name}.progress"), 1, 1)
        .unwrap();
    let mut s = settings(&brokers, "split-alone-group", &[&keyed], alone_name);
    s.max_events = Some(records.len() as u64);
    spawn(Mode::Evaluate(rules()), s).join();
    let alone = deduplicated(&decisions_in(&brokers, &format!("{alone_name}.actions")));
    assert!(alone.len() > 20);
    assert_eq!(together, alone);
}

#[test]
fn a_broker_outage_loses_no_decision() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "outage";
    create_topics(&cluster, name, 1);
    let input = format!("{name}.in");
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    let half = records.len() / 2;
    produce(&brokers, &input, &records[..half], Some(0)).unwrap();
    let mut s = settings(&brokers, "outage-group", &[&input], name);
    s.exit_when_idle = None;
    let runner = spawn(Mode::Evaluate(rules()), s);
    wait_until(Duration::from_secs(30), "the first half", || {
        runner.records() >= half as u64
    });
    // The broker goes away for longer than the group's session timeout (6 s): the runner
    // loses its assignment, and gets it back — and rebuilds — once the broker returns.
    cluster.broker_down(1).unwrap();
    wait_until(
        Duration::from_secs(60),
        "the runner to lose its assignment",
        || runner.telemetry.metrics().partitions == 0,
    );
    let replayed_before = runner.telemetry.metrics().replayed;
    cluster.broker_up(1).unwrap();
    wait_until(
        Duration::from_secs(60),
        "the partition assigned again and its state rebuilt",
        || {
            let m = runner.telemetry.metrics();
            m.partitions == 1 && m.replayed > replayed_before
        },
    );
    // Then produce requests fail a few times before they succeed: librdkafka and the outbox
    // retry them.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 4],
    );
    produce(&brokers, &input, &records[half..], Some(0)).unwrap();
    wait_until(
        Duration::from_secs(60),
        "every record after the outage",
        || {
            let m = runner.telemetry.metrics();
            m.records - m.replayed >= records.len() as u64
        },
    );
    // Delivery after an outage waits on the producer's retries and backoff (slow on a loaded
    // machine): give it time, then require every decision — nothing lost, only late.
    let expected = ids(&replay_decisions(&files));
    let actions = format!("{name}.actions");
    wait_until(
        Duration::from_secs(90),
        "every decision delivered after the outage",
        || {
            let complete = deduplicated(&decisions_in(&brokers, &actions)).is_superset(&expected);
            if !complete {
                thread::sleep(Duration::from_millis(500));
            }
            complete
        },
    );
    runner.control.stop();
    let summary = runner.join();
    assert!(summary.records >= records.len() as u64);
    let got = decisions_in(&brokers, &actions);
    assert_eq!(deduplicated(&got), expected);
}

/// `GET path` on `addr`: (status line, body); `None` while nothing listens.
fn http_get(addr: &str, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

#[test]
fn the_run_command_reads_file_env_and_flags_serves_metrics_and_stops_on_sigterm() {
    let _logs = support::capture_logs();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "cli";
    create_topics(&cluster, name, 1);
    let files: Vec<PathBuf> = scenario_paths()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("bulk-export/attack"))
        .collect();
    let mut records = records_of(&files).unwrap();
    records.push(b"not json at all".to_vec());
    produce(&brokers, &format!("{name}.in"), &records, Some(0)).unwrap();
    let expected = replay_decisions(&files);
    assert!(!expected.is_empty());

    let dir = std::env::temp_dir().join(format!("sessionguard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sessionguard.yaml");
    std::fs::write(
        &config,
        format!(
            "brokers: {brokers}\ngroup: overridden-by-env\ntopics: [{name}.in]\n\
             actions_topic: {name}.actions\ndead_letter_topic: {name}.dead\n\
             progress_topic: {name}.progress\n\
             librdkafka:\n  session.timeout.ms: 6000\n  log_level: 3\n"
        ),
    )
    .unwrap();
    // Port 0: the child binds a free port itself and says which (no port picked here and
    // released, for another process to take in between).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--metrics-addr", "127.0.0.1:0", "--rules", "rules"])
        .env("SESSIONGUARD_GROUP", "cli-group")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_lines = {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        rx
    };
    let mut stderr = String::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr_lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no metrics_serving line in time:\n{stderr}"));
        stderr.push_str(&line);
        stderr.push('\n');
        let Ok(log) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if log["event"] == "metrics_serving" {
            break log["addr"].as_str().unwrap().to_owned();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "no ready /metrics with every decision in time"
        );
        thread::sleep(Duration::from_millis(200));
        let Some((status, _)) = http_get(&addr, "/readyz") else {
            continue;
        };
        if !status.contains("200") {
            continue;
        }
        let (_, body) = http_get(&addr, "/metrics").unwrap();
        let delivered: u64 = body
            .lines()
            .filter(|l| l.starts_with("sessionguard_decisions_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if delivered as usize == expected.len() {
            break body;
        }
    };
    assert!(http_get(&addr, "/healthz").unwrap().0.contains("200"));
    assert!(metrics.contains(&format!("sessionguard_records_total {}", records.len())));
    assert!(metrics.contains("sessionguard_rejects_total{reason=\"not_json\"} 1"));
    assert!(metrics.contains("sessionguard_dead_letters_total 1"));
    assert!(metrics.contains("sessionguard_decision_latency_seconds{quantile=\"0.99\"}"));
    assert!(metrics.contains(&format!(
        "sessionguard_decision_latency_seconds_count {}",
        expected.len()
    )));
    for rule in expected.iter().map(|d| d["rule"]["id"].as_str().unwrap()) {
        assert!(metrics.contains(&format!(
            "sessionguard_decisions_total{{rule_id=\"{rule}\"}}"
        )));
    }
    for forbidden in ["session=", "user=", "ip=", "key="] {
        assert!(
            !metrics.contains(forbidden),
            "high-cardinality label {forbidden}"
        );
    }

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        thread::sleep(Duration::from_millis(100));
    };
    // The child has exited: its stderr is closed, and the reader ends after the last line.
    for line in stderr_lines.iter() {
        stderr.push_str(&line);
        stderr.push('\n');
    }
    assert!(status.success(), "{status}\n{stderr}");
    assert!(
        stderr.contains("\"event\":\"pipeline_stopped\""),
        "{stderr}"
    );
    let got = decisions_in(&brokers, &format!("{name}.actions"));
    assert_eq!(deduplicated(&got), ids(&expected));
    // The final commit happened: the group has nothing left to do.
    let mut s = settings(&brokers, "cli-group", &[&format!("{name}.in")], name);
    s.exit_when_idle = Some(Duration::from_secs(2));
    let again = spawn(Mode::Evaluate(rules()), s).join();
    assert_eq!(again.decisions + again.dead_letters, 0);
    assert_eq!(again.records, again.replayed, "only rebuild reads");
    let _ = std::fs::remove_dir_all(&dir);
}
