//! `sessionguard demo`: the whole Kafka path with zero setup.
//!
//! Starts librdkafka's in-process mock cluster, creates an audit topic, produces the scenario
//! fixtures (`fixtures/scenarios/**/*.jsonl`, in path order, each record's original bytes),
//! runs the same pipeline as `sessionguard run` over it with the shipped rules (`rules/`),
//! reads the decisions back from the actions topic and prints them scenario by scenario beside
//! the ground truth (`fixtures/scenarios.expected.json`, [`crate::scenarios`]), ending with a
//! one-line verdict. Rules and fixtures are found relative to the current directory (the
//! repository root).
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
use crate::decision::KILL_NOT_ENFORCED;
use crate::event::Normalizer;
use crate::rule::RuleSet;
use crate::scenarios::{paragraph, Comparison, Decided, GroundTruth};
use crate::source::file::{self, Item};
use crate::telemetry::Telemetry;

/// The demo's topics.
const AUDIT: &str = "audit";
const ACTIONS: &str = "sessionguard.actions";

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
        file::open_records(path)?.for_each(&mut |item| {
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
    /// The log sources the records are from, as the normalizer detected them.
    pub sources: Vec<&'static str>,
    pub summary: Summary,
    /// The decisions read back from the actions topic, as JSON.
    pub decisions: Vec<serde_json::Value>,
    /// The decisions beside the scenarios' ground truth.
    pub comparison: Comparison,
    /// Decisions whose evidence could not be traced to a scenario record.
    pub unlocated: usize,
    pub telemetry: Arc<Telemetry>,
    pub elapsed: Duration,
    /// What `actuate` did with the kill decisions (feature `actuate`): the paragraph to print
    /// and the SETs the bundled receiver accepted, one line each.
    pub actuation: Option<(String, Vec<String>)>,
}

/// The width to lay the demo out in: `COLUMNS` when the shell exports it, else 80.
pub fn output_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c >= 40)
        .unwrap_or(80)
}

/// Runs the demo from `root` (the repository root, holding `rules/` and `fixtures/`).
pub fn run_demo(root: &Path) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let rules_dir = root.join("rules");
    let fixtures = root.join("fixtures/scenarios");
    let truth_path = root.join("fixtures/scenarios.expected.json");
    if !rules_dir.is_dir() || !fixtures.is_dir() {
        anyhow::bail!(
            "the demo reads rules/ and fixtures/scenarios/ from the current directory; run it \
             from the root of a sessionguard checkout (found neither under {})",
            root.display()
        );
    }
    let truth = GroundTruth::load(&truth_path)?;
    let rules = RuleSet::load(&[rules_dir]).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Evidence names files relative to the root, as `replay fixtures/scenarios` would.
    let files: Vec<PathBuf> = fixture_files(&fixtures)?
        .into_iter()
        .map(|f| f.strip_prefix(root).map(Path::to_path_buf).unwrap_or(f))
        .collect();
    // Each record with where it came from: its offset in the one-partition topic is its index.
    let mut records = Vec::new();
    let mut origins: Vec<(usize, u64)> = Vec::new();
    for (index, relative) in files.iter().enumerate() {
        file::open_records(&root.join(relative))?.for_each(&mut |item| {
            if let Item::Record { bytes, line } = item {
                records.push(bytes.to_vec());
                origins.push((index, line));
            }
        })?;
    }
    let sources = sources_of(&records);

    let cluster =
        MockCluster::new(1).map_err(|e| anyhow::anyhow!("starting the mock cluster: {e}"))?;
    let brokers = cluster.bootstrap_servers();
    let (dead, progress) = ("sessionguard.dead-letters", "sessionguard.progress");
    for topic in [AUDIT, ACTIONS, dead, progress] {
        cluster
            .create_topic(topic, 1, 1)
            .map_err(|e| anyhow::anyhow!("creating {topic}: {e}"))?;
    }
    produce(&brokers, AUDIT, &records, Some(0))?;

    let settings = Settings {
        brokers: brokers.clone(),
        group: "sessionguard-demo".to_owned(),
        topics: vec![AUDIT.to_owned()],
        actions_topic: ACTIONS.to_owned(),
        dead_letter_topic: Some(dead.to_owned()),
        progress_topic: Some(progress.to_owned()),
        tasks_topic: None,
        tasks: Vec::new(),
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
        archive: None,
    };
    let telemetry = Telemetry::new();
    let summary = run(
        Mode::Evaluate(Arc::new(rules)),
        &settings,
        &Control::new(),
        telemetry.clone(),
    )?;
    let decisions: Vec<serde_json::Value> = read_topic(&brokers, ACTIONS)?
        .into_iter()
        .filter_map(|f| serde_json::from_slice(&f.payload).ok())
        .collect();
    drop(cluster);
    let scenarios_dir = Path::new("fixtures/scenarios");
    let locate = |origin: &serde_json::Value| {
        if origin["topic"] != AUDIT {
            return None;
        }
        let offset = usize::try_from(origin["offset"].as_i64()?).ok()?;
        let &(index, line) = origins.get(offset)?;
        let file = files[index].strip_prefix(scenarios_dir).ok()?;
        Some((file.to_string_lossy().into_owned(), line))
    };
    let located: Vec<Decided> = decisions
        .iter()
        .filter_map(|d| Decided::from_json(d, locate))
        .collect();
    let actuation = actuate(&decisions);
    Ok(DemoReport {
        actuation,
        files: files.len(),
        produced: records.len(),
        sources,
        summary,
        unlocated: decisions.len() - located.len(),
        comparison: truth.compare(&located),
        decisions,
        telemetry,
        elapsed: started.elapsed(),
    })
}

/// The kill decisions through `actuate` to the bundled receiver: the summary and one line per
/// SET received (`None` without the feature, or when it could not run: the demo goes on).
#[cfg(feature = "actuate")]
fn actuate(decisions: &[serde_json::Value]) -> Option<(String, Vec<String>)> {
    let lines: Vec<Vec<u8>> = decisions
        .iter()
        .map(|d| d.to_string().into_bytes())
        .collect();
    let (summary, received) = match crate::actuate::demo::deliver(&lines) {
        Ok(done) => done,
        Err(e) => return Some((format!("actuation could not run: {e:#}"), Vec::new())),
    };
    let text = format!(
        "actuation (sessionguard actuate, docs/actuation.md): {} kill decisions signed as CAEP \
         session-revoked Security Event Tokens (ES256, jti = the decision id) and pushed to a \
         Shared Signals receiver on a loopback port, which verified each against the \
         transmitter's key and accepted {} ({} refused, {} duplicates). The first ones:",
        summary.delivered + summary.refused + summary.failed,
        received.sets.len(),
        received.refused,
        received.duplicates
    );
    let sets = received
        .sets
        .iter()
        .map(|set| {
            format!(
                "  SET {} {} {} → {}",
                set.alg,
                &set.jti[..12.min(set.jti.len())],
                set.event,
                set.session
            )
        })
        .collect();
    Some((text, sets))
}

#[cfg(not(feature = "actuate"))]
fn actuate(_: &[serde_json::Value]) -> Option<(String, Vec<String>)> {
    None
}

/// The sources of `records` as the normalizer detects them, in name order.
fn sources_of(records: &[Vec<u8>]) -> Vec<&'static str> {
    let normalizer = Normalizer::default();
    let mut scratch = bumpalo::Bump::new();
    let mut sources = std::collections::BTreeSet::new();
    for record in records {
        scratch.reset();
        if let Ok(event) = normalizer.normalize(record, &scratch) {
            sources.insert(event.source.as_str());
        }
    }
    sources.into_iter().collect()
}

impl DemoReport {
    /// What was fed and how, each scenario with its decisions beside the ground truth, what
    /// `kill_not_enforced` means here, and the verdict on the last line; laid out in `width`
    /// columns without cutting an identifier.
    pub fn render(&self, width: usize) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        s.push_str(&paragraph(
            &format!(
                "sessionguard demo: {} records of {} scenario files ({} log sources: {}) \
                 produced to topic '{AUDIT}' of librdkafka's in-process mock cluster, evaluated \
                 by the same pipeline as `sessionguard run` with the rule pack in rules/; {} \
                 read back from '{ACTIONS}'.",
                self.produced,
                self.files,
                self.sources.len(),
                self.sources.join(", "),
                crate::units::plural(self.decisions.len(), "decision"),
            ),
            width,
        ));
        s.push('\n');
        s.push_str(&paragraph(
            "Each scenario is an attack (its ground truth, fixtures/scenarios.expected.json, \
             names the decisions it must get: session, line, rule, action) or a lookalike \
             (harmless activity close to the rules' thresholds: nothing may be decided). \
             Beside each decision: what the ground truth expected.",
            width,
        ));
        s.push('\n');
        s.push_str(&self.comparison.render(width));
        s.push('\n');
        let _ = writeln!(
            s,
            "{} events, {} rejected, {} late.",
            self.summary.events,
            self.summary.rejects.values().sum::<u64>(),
            self.summary.late
        );
        if self.unlocated > 0 {
            let _ = writeln!(
                s,
                "{} without evidence traced to a scenario record.",
                crate::units::plural(self.unlocated, "decision")
            );
        }
        let after_kill = self
            .comparison
            .scenarios
            .iter()
            .flat_map(|sc| &sc.rows)
            .filter(|(d, _)| d.rule == KILL_NOT_ENFORCED)
            .count();
        if after_kill > 0 {
            s.push_str(&paragraph(
                &format!(
                    "{KILL_NOT_ENFORCED}: {after_kill} of the {} decisions. The rules ask for \
                     these sessions to be ended, but the demo's receiver (below) only verifies \
                     and records the SETs: nothing revokes a session until actuation reaches an \
                     identity provider, so each killed \
                     session that keeps acting is reported once, as a deployment reports a kill \
                     that did not take effect. A session issued from a killed one (AWS role \
                     chaining, shown parent → child) inherits its kill.",
                    self.decisions.len()
                ),
                width,
            ));
        }
        let h = &self.telemetry.metrics().latency_ms;
        if !h.is_empty() {
            s.push_str(&paragraph(
                &format!(
                    "record-to-delivered-decision latency: p50 {} ms, p99 {} ms, max {} ms (the \
                     records were produced before the evaluator joined its group, so this \
                     includes the join); done in {:.1}s.",
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.99),
                    h.max(),
                    self.elapsed.as_secs_f64()
                ),
                width,
            ));
        }
        if let Some((text, sets)) = &self.actuation {
            s.push_str(&paragraph(text, width));
            for line in sets.iter().filter(|l| l.chars().count() <= width).take(5) {
                let _ = writeln!(s, "{line}");
            }
        }
        let _ = writeln!(s, "verdict: {}", self.comparison.verdict());
        s
    }
}
