//! `sessionguard demo`: the whole Kafka path with zero setup.
//!
//! Starts librdkafka's in-process mock cluster, creates an audit topic, produces the scenario
//! fixtures (`fixtures/scenarios/**/*.jsonl`, in path order, each record's original bytes),
//! runs the same pipeline as `sessionguard run` over it with the shipped rules (`rules/`),
//! reads the decisions back from the actions topic and prints them. Rules and fixtures are
//! found relative to the current directory (the repository root).
//!
//! The helpers that produce files into a topic and read a topic back are public: the mock
//! cluster tests use them too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::{run, Control, Mode, Summary};
use crate::config::Settings;
use crate::rule::RuleSet;
use crate::source::file::{self, Item};
use crate::telemetry::Telemetry;

/// A record read back from a topic.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// The `.jsonl` files under `dir`, in path order.
pub fn fixture_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(file::expand_paths(&[dir.to_path_buf()])?
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .collect())
}

/// The records of `files` as the file reader frames them (what `replay` reads).
pub fn records_of(files: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for path in files {
        let reader = file::open(path)?;
        file::for_each_record(reader, &mut |item| {
            if let Item::Record { bytes, .. } = item {
                out.push(bytes.to_vec());
            }
        })?;
    }
    Ok(out)
}

/// Produces `records` to `topic` in order (key: `key_of`, else none; partition: `partition`,
/// else librdkafka's partitioner) and waits until all are delivered.
pub fn produce(
    brokers: &str,
    topic: &str,
    records: &[Vec<u8>],
    partition: Option<i32>,
) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .map_err(|e| anyhow::anyhow!("creating a producer: {e}"))?;
    for record in records {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(record.as_slice());
        if let Some(p) = partition {
            r = r.partition(p);
        }
        let mut r = Some(r);
        while let Some(rec) = r.take() {
            if let Err((e, back)) = producer.send(rec) {
                if !matches!(
                    e,
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull
                    )
                ) {
                    anyhow::bail!("producing to {topic}: {e}");
                }
                std::thread::sleep(Duration::from_millis(10));
                r = Some(back);
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("delivering to {topic}: {e}"))?;
    Ok(())
}

/// Every record of `topic` (all partitions) up to its current end, by partition then offset.
pub fn read_topic(brokers: &str, topic: &str) -> anyhow::Result<Vec<Fetched>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // assign() needs a group id; this reader never joins it and never commits.
        .set("group.id", "sessionguard.reader")
        .set("enable.auto.commit", "false")
        .create_with_context(DefaultConsumerContext)
        .map_err(|e| anyhow::anyhow!("creating a reader: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!("reading metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| anyhow::anyhow!("watermarks of {topic}/{p}: {e}"))?;
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            ends.push((p, high));
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next: Vec<(i32, i64)> = ends.iter().map(|&(p, _)| (p, 0)).collect();
    while ends
        .iter()
        .any(|&(p, high)| next.iter().any(|&(q, n)| q == p && n < high))
    {
        if Instant::now() > deadline {
            anyhow::bail!("timed out reading {topic}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => anyhow::bail!("reading {topic}: {e}"),
            Some(Ok(m)) => {
                if let Some(n) = next.iter_mut().find(|(q, _)| *q == m.partition()) {
                    n.1 = m.offset() + 1;
                }
                out.push(Fetched {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or(&[]).to_vec(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_owned(), h.value.unwrap_or(&[]).to_vec()))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
    }
    out.sort_by_key(|f| (f.partition, f.offset));
    Ok(out)
}

/// What the demo did.
pub struct DemoReport {
    pub files: usize,
    pub produced: usize,
    pub summary: Summary,
    /// The decisions read back from the actions topic, as JSON.
    pub decisions: Vec<serde_json::Value>,
    pub telemetry: Arc<Telemetry>,
    pub elapsed: Duration,
}

/// Runs the demo from `root` (the repository root, holding `rules/` and `fixtures/`).
pub fn run_demo(root: &Path) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let rules_dir = root.join("rules");
    let fixtures = root.join("fixtures/scenarios");
    if !rules_dir.is_dir() || !fixtures.is_dir() {
        anyhow::bail!(
            "the demo reads rules/ and fixtures/scenarios/ from the current directory; run it \
             from the root of a sessionguard checkout (found neither under {})",
            root.display()
        );
    }
    let rules = RuleSet::load(&[rules_dir]).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Evidence names files relative to the root, as `replay fixtures/scenarios` would.
    let files: Vec<PathBuf> = fixture_files(&fixtures)?
        .into_iter()
        .map(|f| f.strip_prefix(root).map(Path::to_path_buf).unwrap_or(f))
        .collect();
    let absolute: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
    let records = records_of(&absolute)?;

    let cluster =
        MockCluster::new(1).map_err(|e| anyhow::anyhow!("starting the mock cluster: {e}"))?;
    let brokers = cluster.bootstrap_servers();
    let (audit, actions, dead, progress) = (
        "audit",
        "sessionguard.actions",
        "sessionguard.dead-letters",
        "sessionguard.progress",
    );
    for topic in [audit, actions, dead, progress] {
        cluster
            .create_topic(topic, 1, 1)
            .map_err(|e| anyhow::anyhow!("creating {topic}: {e}"))?;
    }
    produce(&brokers, audit, &records, Some(0))?;

    let settings = Settings {
        brokers: brokers.clone(),
        group: "sessionguard-demo".to_owned(),
        topics: vec![audit.to_owned()],
        actions_topic: actions.to_owned(),
        dead_letter_topic: Some(dead.to_owned()),
        progress_topic: Some(progress.to_owned()),
        output_topic: String::new(),
        rules: vec![root.join("rules")],
        source: None,
        metrics_addr: None,
        librdkafka: Vec::new(),
        max_events: Some(records.len() as u64),
        exit_when_idle: Some(Duration::from_secs(15)),
        time: crate::time::TimeConfig::default(),
        idle_timeout_ms: 12 * 3_600_000,
        caep_issuer: "urn:sessionguard".to_owned(),
        max_sessions: crate::engine::EngineConfig::default().max_sessions,
    };
    let telemetry = Telemetry::new();
    let summary = run(
        Mode::Evaluate,
        &settings,
        Some(Arc::new(rules)),
        &Control::new(),
        telemetry.clone(),
    )?;
    let decisions = read_topic(&brokers, actions)?
        .into_iter()
        .filter_map(|f| serde_json::from_slice(&f.payload).ok())
        .collect();
    drop(cluster);
    Ok(DemoReport {
        files: files.len(),
        produced: records.len(),
        summary,
        decisions,
        telemetry,
        elapsed: started.elapsed(),
    })
}

impl DemoReport {
    /// The decisions as a compact table, then a summary.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let text = |v: &serde_json::Value, path: &[&str]| -> String {
            let mut cur = v;
            for p in path {
                cur = &cur[*p];
            }
            cur.as_str().map_or_else(|| cur.to_string(), str::to_owned)
        };
        let _ = writeln!(
            s,
            "{:<20}  {:<34}  {:<17}  {:<44}  reason",
            "time", "rule", "action", "session"
        );
        for d in &self.decisions {
            let time = text(d, &["time"]);
            let session = text(d, &["session", "key"]);
            let _ = writeln!(
                s,
                "{:<20}  {:<34}  {:<17}  {:<44}  {}",
                time.get(..19).unwrap_or(&time).replace('T', " "),
                clip(&text(d, &["rule", "id"]), 34),
                text(d, &["action"]),
                clip(&session, 44),
                text(d, &["evidence", "reason"]),
            );
        }
        let m = self.telemetry.metrics();
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{} records from {} fixture files produced to the mock cluster's topic 'audit'; \
             {} events, {} rejected, {} late",
            self.produced,
            self.files,
            self.summary.events,
            self.summary.rejects.values().sum::<u64>(),
            self.summary.late
        );
        let _ = writeln!(
            s,
            "{} decisions read back from 'sessionguard.actions' (key = session, headers \
             decision_id and rule_id):",
            self.decisions.len()
        );
        for (rule, n) in &m.decisions {
            let _ = writeln!(s, "  {rule:<40} {n:>4}");
        }
        let h = &m.latency_ms;
        if !h.is_empty() {
            let _ = writeln!(
                s,
                "record-to-delivered-decision latency: p50 {} ms, p99 {} ms, max {} ms \
                 (the records were produced before the evaluator joined its group, so this \
                 includes the join)",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max()
            );
        }
        let _ = writeln!(s, "done in {:.1}s", self.elapsed.as_secs_f64());
        s
    }
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let kept: String = text.chars().take(width - 1).collect();
    format!("{kept}…")
}
