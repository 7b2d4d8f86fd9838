//! Helpers of the Kafka tests (`kafka_broker`, `kafka_faults`, `kafka_tls`, `kafka_mock`,
//! `kafka_codecs`), in one place: names, fixtures and `replay`'s decisions to compare with;
//! clients, topics, producing and reading back; the `sessionguard` binary as a child process;
//! tansu as a child process on a port of its own; decisions compared by id.
//!
//! - Every wait polls what it waits for, with a deadline; none is a fixed sleep.
//! - Every topic and group name is unique per test run ([`unique`]).
//! - Every spawned process is killed and reaped when its guard drops ([`Proc`], [`Tansu`]).
//! - A port for a child is held (bound) until it is handed over ([`Port`]).
//!
//! Included by each test binary with `#[path = "support/kafka.rs"] mod support;`.
#![allow(dead_code)] // each binary uses a different part
#![allow(clippy::disallowed_methods, reason = "deadlines of the waits")]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bumpalo::Bump;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DefaultProducerContext, DeliveryResult, Producer, ProducerContext,
    ThreadedProducer,
};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sessionguard::config::Settings;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::Normalizer;
use sessionguard::replay::{replay, ReplayOptions};
use sessionguard::rule::RuleSet;
use sessionguard::source::file;

// ---------------------------------------------------------------------------------------------
// Gate, names, fixtures
// ---------------------------------------------------------------------------------------------

pub const BROKERS_VAR: &str = "SESSIONGUARD_TEST_BROKERS";

/// The broker address. These tests are `#[ignore]`d, so they run only when asked for
/// (`--ignored`): asked for without a broker, they fail instead of passing without running.
pub fn brokers() -> String {
    match std::env::var(BROKERS_VAR) {
        Ok(b) if !b.trim().is_empty() => b.trim().to_owned(),
        _ => panic!(
            "needs a Kafka broker: set {BROKERS_VAR}=host:port (scripts/kafka.sh start), or run \
             scripts/test.sh, which starts one"
        ),
    }
}

/// One test at a time: each one runs engines, a producer and consumers on a 2-core machine.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A topic or group name no other run uses.
pub fn unique(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    format!(
        "sgt-{label}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A line on the real stderr, so the progress of these slow tests shows in CI logs.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{}: {text}", env!("CARGO_CRATE_NAME"));
}

/// Keeps the log lines of a pipeline run in this test process (`kafka::run` in a thread) out
/// of the test's output: they go to a file under `CARGO_TARGET_TMPDIR`, and when the test
/// holding the guard fails, the lines written while it ran are printed with its failure. A
/// passing run prints none (the `run` tests that spawn the binary keep its stderr in a file
/// the same way, [`Proc`]).
pub fn capture_logs() -> LogCapture {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let path = FILE.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{}-{}.log",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let file = std::fs::File::create(&path).unwrap();
        sessionguard::telemetry::log_to(file);
        path
    });
    let from = std::fs::metadata(path).map_or(0, |m| m.len());
    LogCapture {
        path: path.clone(),
        from,
    }
}

/// See [`capture_logs`].
pub struct LogCapture {
    path: PathBuf,
    from: u64,
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        let text = std::fs::read(&self.path).unwrap_or_default();
        let since = text.get(self.from as usize..).unwrap_or_default();
        // Captured by the test harness, so shown with this test's failure only.
        eprintln!(
            "--- the pipeline's log lines while this test ran (all of them: {}):\n{}",
            self.path.display(),
            String::from_utf8_lossy(since)
        );
    }
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One fixture record: its file (relative to the crate), line, bytes and session key.
#[derive(Clone, Debug)]
pub struct Record {
    pub file: String,
    pub line: u64,
    pub bytes: Vec<u8>,
    pub key: String,
}

/// The scenario files in the order `replay` reads a directory, relative to the crate root.
pub fn scenario_files() -> Vec<String> {
    let files = file::expand_paths(&[root().join("fixtures/scenarios")]).unwrap();
    let files: Vec<String> = files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(files.len() > 10, "scenario fixtures missing");
    files
}

/// Every line of `files`, original bytes, with its session key.
pub fn records(files: &[String]) -> Vec<Record> {
    let normalizer = Normalizer::default();
    let mut scratch = Bump::new();
    let mut out = Vec::new();
    for name in files {
        let text = std::fs::read(root().join(name)).unwrap();
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            scratch.reset();
            let event = normalizer
                .normalize(line, &scratch)
                .unwrap_or_else(|r| panic!("{name}:{}: {r}", index + 1));
            let key = event.session.key.to_string();
            out.push(Record {
                file: name.clone(),
                line: index as u64 + 1,
                bytes: line.to_vec(),
                key,
            });
        }
    }
    out
}

/// A stable partition for a session key (FNV-1a), so every run puts a session in one place.
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % partitions as u64) as i32
}

/// `sessionguard replay FILES… --rules rules --no-final-timers` (a topic has no end, so `run`
/// never fires the timers due in the last grace): one JSON value per decision.
pub fn replay_cli(files: &[String]) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .arg("replay")
        .args(files)
        .args(["--rules", "rules", "--no-progress", "--no-final-timers"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A decision without its evidence origins (file:line in a replay, topic/partition/offset in
/// a run), which is all that differs between the two for the same events.
pub fn without_origins(decision: &Value) -> Value {
    let mut decision = decision.clone();
    if let Some(events) = decision
        .pointer_mut("/evidence/events")
        .and_then(Value::as_array_mut)
    {
        for event in events {
            if let Some(event) = event.as_object_mut() {
                event.remove("origin");
            }
        }
    }
    decision
}

pub fn decision_id(decision: &Value) -> String {
    decision["decision_id"]
        .as_str()
        .unwrap_or_else(|| panic!("decision without decision_id: {decision}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Kafka clients
// ---------------------------------------------------------------------------------------------

/// Drives a future to completion on this thread (the admin client's futures are completed by
/// librdkafka's own threads; no async runtime is needed).
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

pub fn config(brokers: &str) -> ClientConfig {
    client(brokers, &[])
}

/// A client of `brokers` with `security` settings (`security.protocol`, `ssl.*`, `sasl.*`).
pub fn client(brokers: &str, security: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    for (k, v) in security {
        config.set(k, v);
    }
    config
}

/// Creates topics with the given partition counts; tansu does not create topics on first use.
/// Progress topics (named `…-progress-…`) are compacted, as docs/kafka.md asks.
pub fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    create_topics_secured(brokers, &[], topics);
}

/// `create_topics` over a client with `security` settings.
pub fn create_topics_secured(brokers: &str, security: &[(String, String)], topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = client(brokers, security).create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| {
            let topic = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
            if name.contains("-progress-") {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    // A loaded tansu can time a CreateTopics out; asked again, a created one already exists.
    let mut attempt = 0;
    let results = loop {
        match block_on(admin.create_topics(&new, &options)) {
            Ok(results) => break results,
            Err(e) if attempt < 3 => {
                attempt += 1;
                note(&format!("CreateTopics failed ({e}); again"));
                thread::sleep(Duration::from_secs(2));
            }
            Err(e) => panic!("CreateTopics: {e}"),
        }
    };
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => panic!("creating topic {topic}: {code}"),
        }
    }
    // Wait until the metadata shows every partition.
    let consumer: BaseConsumer = client(brokers, security)
        .set("group.id", unique("reader"))
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (name, partitions) in topics {
        loop {
            let seen = consumer
                .fetch_metadata(Some(name), Duration::from_secs(5))
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
                .unwrap_or(0);
            if seen == *partitions as usize {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "topic {name}: {seen} of {partitions} partitions visible after 30s"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Counts failed deliveries, so a test never believes it produced what the broker refused.
#[derive(Default)]
pub struct Deliveries {
    pub failed: AtomicUsize,
    pub first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.first_error
                .lock()
                .unwrap()
                .get_or_insert_with(|| error.to_string());
        }
    }
}

/// A record to produce: partition (none = librdkafka's choice), key, value.
#[derive(Clone)]
pub struct Out {
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub value: Vec<u8>,
}

/// Produces `records` in order (idempotent producer: no duplicates, no reordering), one every
/// `every` (zero: as fast as possible); `produced` counts the records handed over so far.
pub fn produce(
    brokers: &str,
    topic: &str,
    records: &[Out],
    every: Duration,
    produced: &AtomicUsize,
) {
    let producer: BaseProducer<Deliveries> = config(brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        // Records over sessionguard's 1 MiB record limit too (librdkafka's default is 1 MB).
        .set("message.max.bytes", "4000000")
        .create_with_context(Deliveries::default())
        .unwrap();
    for out in records {
        let mut record = BaseRecord::to(topic).payload(&out.value[..]);
        if let Some(key) = &out.key {
            record = record.key(key.as_bytes());
        }
        if let Some(partition) = out.partition {
            record = record.partition(partition);
        }
        let mut record = Some(record);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(r) = record.take() {
            match producer.send(r) {
                Ok(()) => {}
                Err((error, r)) => {
                    assert!(Instant::now() < deadline, "producing to {topic}: {error}");
                    producer.poll(Duration::from_millis(50));
                    record = Some(r);
                }
            }
        }
        produced.fetch_add(1, Ordering::Relaxed);
        producer.poll(Duration::ZERO);
        if !every.is_zero() {
            thread::sleep(every);
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("flushing to {topic}: {e}"));
    let context = producer.context();
    let failed = context.failed.load(Ordering::Relaxed);
    assert_eq!(
        failed,
        0,
        "{failed} records not delivered to {topic}: {:?}",
        context.first_error.lock().unwrap()
    );
}

/// `produce` on its own thread; returns the count of records handed over so far.
pub fn produce_in_background(
    brokers: &str,
    topic: &str,
    records: Vec<Out>,
    every: Duration,
) -> (thread::JoinHandle<()>, Arc<AtomicUsize>) {
    let produced = Arc::new(AtomicUsize::new(0));
    let (brokers, topic, count) = (brokers.to_owned(), topic.to_owned(), produced.clone());
    let handle = thread::spawn(move || produce(&brokers, &topic, &records, every, &count));
    (handle, produced)
}

pub fn plain_consumer(brokers: &str) -> BaseConsumer {
    config(brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

/// One message read back.
#[derive(Clone, Debug)]
pub struct Msg {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Msg {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.value).unwrap_or_else(|e| {
            panic!(
                "partition {} offset {}: not JSON ({e}): {}",
                self.partition,
                self.offset,
                String::from_utf8_lossy(&self.value)
            )
        })
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or_else(
            || {
                panic!(
                    "message at offset {} has no header {name}: {:?}",
                    self.offset, self.headers
                )
            },
            String::as_str,
        )
    }
}

pub fn partitions(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect()
}

/// A consumer assigned to every partition of a topic from its beginning, outside any group,
/// that keeps what it has read.
///
/// Ends are found by reading, not by asking: tansu 0.6.0's in-memory storage answers
/// ListOffsets(latest) with the base offset of the last stored batch + 1, short of the real
/// end whenever the last produce request carried several records.
pub struct Tail {
    pub consumer: BaseConsumer,
    pub topic: String,
    pub messages: Vec<Msg>,
}

impl Tail {
    pub fn new(brokers: &str, topic: &str) -> Tail {
        let consumer = plain_consumer(brokers);
        let mut assignment = TopicPartitionList::new();
        for p in partitions(&consumer, topic) {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        Tail {
            consumer,
            topic: topic.to_owned(),
            messages: Vec::new(),
        }
    }

    /// Reads what arrives within `wait`; true when something did.
    pub fn read_for(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let before = self.messages.len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(left.min(Duration::from_millis(100))) {
                Some(Ok(m)) => {
                    let mut headers = BTreeMap::new();
                    if let Some(hs) = m.headers() {
                        for h in hs.iter() {
                            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                            headers.insert(h.key.to_owned(), value.unwrap_or_default());
                        }
                    }
                    self.messages.push(Msg {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                }
                Some(Err(e)) => panic!("reading {}: {e}", self.topic),
                None if left.is_zero() => break,
                None => {}
            }
        }
        self.messages.len() > before
    }

    /// How many messages have been read so far, after reading what is there now.
    pub fn count(&mut self) -> usize {
        self.read_for(Duration::from_millis(50));
        self.messages.len()
    }

    /// Reads until nothing more arrives for `QUIET`; every message, in (partition, offset)
    /// order. Call it once the writers have finished.
    pub fn drain(mut self) -> Vec<Msg> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.read_for(QUIET) {
            assert!(
                Instant::now() < deadline,
                "{} kept growing for 120s",
                self.topic
            );
        }
        let mut out = self.messages;
        out.sort_by_key(|m| (m.partition, m.offset));
        out
    }
}

/// How long a topic must stay silent for a reader to take it as read to its end.
pub const QUIET: Duration = Duration::from_millis(2500);

/// Every message of `topic` (its writers have finished), in (partition, offset) order.
pub fn read_topic(brokers: &str, topic: &str) -> Vec<Msg> {
    Tail::new(brokers, topic).drain()
}

/// End offset per non-empty partition, from messages read.
pub fn ends_of(messages: &[Msg]) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for m in messages {
        let end = out.entry(m.partition).or_insert(0);
        *end = (*end).max(m.offset + 1);
    }
    out
}

/// End offset per non-empty partition of records produced in order into a new topic.
pub fn ends_produced(records: &[Out]) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for r in records {
        *out.entry(r.partition.expect("explicit partition"))
            .or_insert(0) += 1;
    }
    out
}

/// Asserts that `group` committed every non-empty partition of `topic` to its end.
pub fn assert_committed_to_end(brokers: &str, group: &str, topic: &str, ends: &BTreeMap<i32, i64>) {
    let committed = committed(brokers, group, topic);
    let nonempty: BTreeMap<i32, i64> = committed
        .iter()
        .filter(|(_, &o)| o > 0)
        .map(|(&p, &o)| (p, o))
        .collect();
    assert_eq!(
        &nonempty, ends,
        "group {group} did not commit {topic} to its end (committed {committed:?})"
    );
}

/// The offsets `group` has committed on `topic`, by partition (absent: none).
pub fn committed(brokers: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    try_committed(brokers, group, topic)
        .unwrap_or_else(|e| panic!("committed offsets of {group} on {topic}: {e}"))
}

/// `committed`, or the error (a busy broker may time a request out: pollers ask again).
pub fn try_committed(
    brokers: &str,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, rdkafka::error::KafkaError> {
    let consumer: BaseConsumer = config(brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut list = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        list.add_partition(topic, p.id());
    }
    let list = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(list
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// The partitions of `topic` an engine holds now, from the `partition_assigned` and
/// `partition_revoked` events of its JSON log (tansu 0.6.0 answers DescribeGroups with no
/// assignments to read instead).
pub fn held_partitions(log: &Path, topic: &str) -> BTreeSet<i32> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut held = BTreeSet::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(name), Some(partition)) = (event["event"].as_str(), event["partition"].as_i64())
        else {
            continue;
        };
        if event["topic"] != topic {
            continue;
        }
        match name {
            "partition_assigned" => {
                held.insert(partition as i32);
            }
            "partition_revoked" => {
                held.remove(&(partition as i32));
            }
            _ => {}
        }
    }
    held
}

// ---------------------------------------------------------------------------------------------
// The sessionguard binary
// ---------------------------------------------------------------------------------------------

/// A spawned `sessionguard`, killed (SIGKILL) and reaped when dropped; its stderr goes to a log
/// file whose tail failure messages show.
pub struct Proc {
    pub child: Child,
    pub what: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(what: &str, args: &[String]) -> Proc {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(env!("CARGO_CRATE_NAME"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{}.log", unique(what)));
        let stderr = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .current_dir(root())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().unwrap())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning sessionguard {what}: {e}"));
        Proc {
            child,
            what: what.to_owned(),
            log,
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- {} ({}), last lines:\n{tail}",
            self.what,
            self.log.display()
        )
    }

    /// The events of its JSON log named `event`.
    pub fn logged(&self, event: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, no chance to commit or flush.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own; kills it and fails after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                self.sigkill();
                panic!(
                    "sessionguard {} did not exit within {within:?}\n{}",
                    self.what,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a successful exit.
    pub fn finish(&mut self, within: Duration) {
        let status = self.wait_exit(within);
        assert!(
            status.success(),
            "sessionguard {} exited with {status}\n{}",
            self.what,
            self.log_tail()
        );
    }

    /// SIGTERM (a graceful stop: final delivery and commit), then a successful exit.
    pub fn terminate(&mut self) {
        if self.running() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &self.child.id().to_string()])
                .status();
        }
        self.finish(Duration::from_secs(30));
    }
}

/// Waits until `group` has committed every non-empty partition of `topic` to its end (so every
/// decision before is delivered), then stops `engines` gracefully. For engines that run
/// without `--exit-when-idle`: a restart after SIGKILL waits for the dead member's session to
/// expire before it is assigned anything, for a time the broker decides.
pub fn stop_when_committed(
    brokers: &str,
    group: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
    engines: &mut [&mut Proc],
) {
    let mut last = BTreeMap::new();
    let done = wait_for(RUN_LIMIT, || {
        last = committed(brokers, group, topic);
        last.retain(|_, o| *o > 0);
        &last == ends
    });
    if !done {
        let logs: Vec<String> = engines.iter().map(|e| e.log_tail()).collect();
        panic!(
            "group {group} did not commit {topic} to {ends:?} within {RUN_LIMIT:?} (at \
             {last:?})\n{}",
            logs.join("\n")
        );
    }
    for engine in engines {
        engine.terminate();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The topics one evaluator group works with.
pub struct Topics {
    pub inputs: Vec<String>,
    pub actions: String,
    pub dead_letters: String,
    pub progress: String,
}

impl Topics {
    /// Unique names; inputs with `input_partitions` each, the others as given.
    pub fn create(brokers: &str, label: &str, inputs: usize, input_partitions: i32) -> Topics {
        let topics = Topics {
            inputs: (0..inputs)
                .map(|i| unique(&format!("{label}-in{i}")))
                .collect(),
            actions: unique(&format!("{label}-actions")),
            dead_letters: unique(&format!("{label}-dlq")),
            progress: unique(&format!("{label}-progress")),
        };
        let mut all: Vec<(&str, i32)> = topics
            .inputs
            .iter()
            .map(|t| (t.as_str(), input_partitions))
            .collect();
        all.push((&topics.actions, 3));
        all.push((&topics.dead_letters, 1));
        all.push((&topics.progress, 1));
        create_topics(brokers, &all);
        topics
    }
}

/// How long an engine waits with nothing to read before it exits.
pub const IDLE_EXIT: &str = "5s";
/// Bound on one engine run over the fixtures.
pub const RUN_LIMIT: Duration = Duration::from_secs(180);

/// `sessionguard run` over `topics` in `group`; with `idle_exit`, it exits after `IDLE_EXIT`
/// without records.
pub fn run_engine(
    brokers: &str,
    what: &str,
    group: &str,
    topics: &Topics,
    idle_exit: bool,
) -> Proc {
    run_engine_with(brokers, what, group, topics, idle_exit, &[])
}

/// `run_engine` with more librdkafka properties (`name=value`, each passed as `-X`).
pub fn run_engine_with(
    brokers: &str,
    what: &str,
    group: &str,
    topics: &Topics,
    idle_exit: bool,
    properties: &[&str],
) -> Proc {
    let mut args: Vec<String> = [
        "run",
        "--brokers",
        brokers,
        "--group",
        group,
        "--topics",
        &topics.inputs.join(","),
        "--actions-topic",
        &topics.actions,
        "--dead-letter-topic",
        &topics.dead_letters,
        "--progress-topic",
        &topics.progress,
        "--rules",
        "rules",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if idle_exit {
        args.push("--exit-when-idle".into());
        args.push(IDLE_EXIT.into());
    }
    // A member killed with SIGKILL leaves the group only when its session times out, and its
    // restarted successor waits for that: keep it short (librdkafka's default is 45 s), but
    // well above 3 s: tansu holds a rejoining follower's JoinGroup for 3 s (PAUSE_MS), during
    // which it sends no heartbeat, so a 3 s session makes two members expel each other in turn.
    for property in ["session.timeout.ms=6000", "heartbeat.interval.ms=500"]
        .iter()
        .chain(properties)
    {
        args.push("-X".into());
        args.push(property.to_string());
    }
    Proc::spawn(what, &args)
}

/// Decisions read back from an actions topic, checked for the message contract: key = session
/// key, headers `decision_id` and `rule_id` matching the value.
pub fn decisions_on(brokers: &str, actions: &str) -> Vec<Value> {
    read_topic(brokers, actions)
        .into_iter()
        .map(|m| {
            let d = m.json();
            assert_eq!(
                m.key.as_deref(),
                d.pointer("/session/key").and_then(Value::as_str),
                "message key is not the session key: {d}"
            );
            assert_eq!(
                m.header("decision_id"),
                decision_id(&d),
                "decision_id header"
            );
            assert_eq!(
                m.header("rule_id"),
                d.pointer("/rule/id").and_then(Value::as_str).unwrap(),
                "rule_id header"
            );
            d
        })
        .collect()
}

/// Decisions by id; fails on two different decisions under one id.
pub fn by_id(decisions: &[Value], what: &str) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for d in decisions {
        let id = decision_id(d);
        if let Some(seen) = out.get(&id) {
            assert_eq!(seen, d, "{what}: two different decisions share the id {id}");
        } else {
            out.insert(id, d.clone());
        }
    }
    out
}

/// Asserts that `got` (by id, origins stripped) is exactly `want`, naming what is missing or
/// extra.
pub fn assert_same_decisions(
    got: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
    what: &str,
) {
    let strip = |m: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(id, d)| (id.clone(), without_origins(d)))
            .collect()
    };
    let (got, want) = (strip(got), strip(want));
    let missing: Vec<String> = want
        .iter()
        .filter(|(id, _)| !got.contains_key(*id))
        .map(|(id, d)| format!("{id} {} {}", d["rule"]["id"], d["session"]["key"]))
        .collect();
    let extra: Vec<String> = got
        .iter()
        .filter(|(id, _)| !want.contains_key(*id))
        .map(|(id, d)| format!("{id} {} {}", d["rule"]["id"], d["session"]["key"]))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} decisions missing, {} extra\nmissing: {missing:#?}\nextra: {extra:#?}",
        missing.len(),
        extra.len()
    );
    for (id, d) in &want {
        assert_eq!(&got[id], d, "{what}: decision {id} differs");
    }
}

/// The records as keyed messages on `partitions` partitions (what `rekey` makes).
pub fn keyed(records: &[Record], partitions: i32) -> Vec<Out> {
    records
        .iter()
        .map(|r| Out {
            partition: Some(partition_of(&r.key, partitions)),
            key: Some(r.key.clone()),
            value: r.bytes.clone(),
        })
        .collect()
}

pub fn unkeyed(records: &[Record]) -> Vec<Out> {
    records
        .iter()
        .map(|r| Out {
            partition: Some(0),
            key: None,
            value: r.bytes.clone(),
        })
        .collect()
}

/// Polls `until` every 50 ms; false when `within` passes first.
pub fn wait_for(within: Duration, mut until: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if until() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    until()
}

/// One uninterrupted engine over `topics` (already filled): its decisions by id.
pub fn reference_run(brokers: &str, topics: &Topics, label: &str) -> BTreeMap<String, Value> {
    let group = unique(&format!("{label}-ref"));
    run_engine(brokers, &format!("{label}-reference"), &group, topics, true).finish(RUN_LIMIT);
    let decisions = decisions_on(brokers, &topics.actions);
    let map = by_id(&decisions, "reference run");
    assert_eq!(
        map.len(),
        decisions.len(),
        "an uninterrupted run repeated decisions"
    );
    map
}

/// Waits until `until` holds, or fails the test naming `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !until() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Decision ids, in order.
pub fn ids(decisions: &[Value]) -> Vec<String> {
    decisions.iter().map(decision_id).collect()
}

// ---------------------------------------------------------------------------------------------
// Through the library (the mock cluster's tests)
// ---------------------------------------------------------------------------------------------

/// The scenario fixtures, as `replay` reads the directory.
pub fn scenario_paths() -> Vec<PathBuf> {
    let files =
        sessionguard::kafka::demo::fixture_files(&root().join("fixtures/scenarios")).unwrap();
    assert!(files.len() > 10, "scenario fixtures missing");
    files
}

/// Decisions of `replay` (the library) over `files`, as JSON values in emission order — without
/// the timers the end of a file fires (a topic has no end).
pub fn replay_decisions(files: &[PathBuf]) -> Vec<Value> {
    let mut engine = Engine::new(
        RuleSet::load(&[root().join("rules")]).unwrap(),
        EngineConfig::default(),
    );
    let mut out = Vec::new();
    replay(
        files,
        &mut engine,
        &ReplayOptions {
            end_of_input: false,
            ..ReplayOptions::default()
        },
        &mut |d| {
            out.push(serde_json::to_value(d).unwrap());
            Ok(())
        },
        &mut |_, _, _, _| Ok(()),
    )
    .unwrap();
    out
}

/// Settings of a `run` (or `rekey`) through the library: topics `{name}.actions`, `.dead`,
/// `.progress`, `.keyed`; a 6 s group session; exits after 3 s without records.
pub fn settings(brokers: &str, group: &str, topics: &[&str], name: &str) -> Settings {
    Settings {
        brokers: brokers.to_owned(),
        group: group.to_owned(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        actions_topic: format!("{name}.actions"),
        dead_letter_topic: Some(format!("{name}.dead")),
        progress_topic: Some(format!("{name}.progress")),
        tasks_topic: None,
        tasks: Vec::new(),
        output_topic: format!("{name}.keyed"),
        rules: vec![root().join("rules")],
        source: None,
        metrics_addr: None,
        librdkafka: vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("heartbeat.interval.ms".into(), "500".into()),
            ("log_level".into(), "3".into()),
        ],
        max_events: None,
        exit_when_idle: Some(Duration::from_secs(3)),
        time: sessionguard::time::TimeConfig::default(),
        idle_timeout_ms: 12 * 3_600_000,
        caep_issuer: "urn:sessionguard".to_owned(),
        max_sessions: EngineConfig::default().max_sessions,
        archive: None,
    }
}

/// Produces `records` to partition 0 of `topic`, compressed with `codec` (`none` too), in
/// batches of many records (so a codec really compresses several at once).
pub fn produce_compressed(
    brokers: &str,
    security: &[(String, String)],
    topic: &str,
    records: &[Vec<u8>],
    codec: &str,
) {
    let producer: ThreadedProducer<DefaultProducerContext> = client(brokers, security)
        .set("compression.type", codec)
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .unwrap_or_else(|e| panic!("a producer with compression.type={codec}: {e}"));
    for record in records {
        let mut r = Some(
            BaseRecord::<[u8], [u8]>::to(topic)
                .payload(record)
                .partition(0),
        );
        while let Some(rec) = r.take() {
            if let Err((_, back)) = producer.send(rec) {
                thread::sleep(Duration::from_millis(10));
                r = Some(back);
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("delivering to {topic} ({codec}): {e}"));
}

// ---------------------------------------------------------------------------------------------
// Tools, ports, a broker of the test's own
// ---------------------------------------------------------------------------------------------

/// The tansu binary: on PATH, or where `cargo install` (scripts/kafka.sh) puts it.
pub fn tansu() -> Option<PathBuf> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    which("tansu").or_else(|| Some(home.join("bin/tansu")).filter(|p| p.is_file()))
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A directory of its own under the target's temporary directory.
pub fn scratch_dir(label: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(env!("CARGO_CRATE_NAME"))
        .join(unique(label));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free port, held (bound) until [`Port::hand_over`], so no other process takes it while
/// the test prepares the child that will listen on it.
pub struct Port {
    listener: TcpListener,
}

impl Port {
    pub fn new() -> Port {
        Port {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    pub fn number(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Releases the port for the child about to bind it; its number.
    pub fn hand_over(self) -> u16 {
        self.number()
    }
}

/// Whether something accepts connections on 127.0.0.1:`port`, polled until `within`.
pub fn wait_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Whether 127.0.0.1:`port` refuses connections (nothing listens), polled until `within`.
pub fn wait_port_closed(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A tansu broker of the test's own, on a port held until it starts, with SQLite storage in a
/// scratch directory (so it keeps its topics, offsets and groups across a restart); killed
/// (SIGKILL) and reaped when dropped. Its output goes to `tansu.log` in that directory.
pub struct Tansu {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    /// Starts it and waits until it answers a metadata request.
    pub fn start(label: &str) -> Tansu {
        let bin = tansu().unwrap_or_else(|| {
            panic!("needs tansu: scripts/kafka.sh install (scripts/test.sh installs it)")
        });
        let port = Port::new();
        let mut broker = Tansu {
            bin,
            dir: scratch_dir(label),
            port: port.number(),
            child: None,
        };
        broker.spawn(Some(port));
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self, held: Option<Port>) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .unwrap();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        if let Some(port) = held {
            port.hand_over();
        }
        let child = Command::new(&self.bin)
            .current_dir(&self.dir)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://broker.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        let metadata: BaseConsumer = config(&self.address()).create().unwrap();
        let answered = wait_port(self.port, Duration::from_secs(30))
            && wait_for(Duration::from_secs(30), || {
                metadata
                    .fetch_metadata(None, Duration::from_secs(2))
                    .is_ok()
            });
        assert!(
            answered,
            "tansu did not answer on {} within 30s; see {}",
            self.address(),
            self.dir.join("tansu.log").display()
        );
    }

    /// SIGKILL: no clean shutdown; returns once nothing listens on its port.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            wait_port_closed(self.port, Duration::from_secs(10)),
            "port {} still open after tansu was killed",
            self.port
        );
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "tansu is running");
        self.spawn(None);
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
