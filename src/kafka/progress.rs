//! The progress topic: where each input partition's state can be rebuilt from.
//!
//! A small compacted topic, one record per (group, input topic, partition), key
//! `group/topic/partition`, value `{"replay_from", "committed", "clocks"}`:
//!
//! - `committed`: an input position every decision of the records before which is delivered
//!   (a record is written only after that is true);
//! - `replay_from`: the oldest offset the partition's state at `committed` depends on — the first
//!   event of the oldest session still held (see `Engine::oldest_live_origin`), or `committed`
//!   when nothing is held;
//! - `clocks`, `heard`: every source's clock (its newest event time) just before `replay_from`
//!   and where the others stood when it was last heard from (see src/time/), restored
//!   before replaying so that timers, expiry and the future guard act at the same records as
//!   in the first run. `replay_from` is a position where the evaluator noted its clocks, at or
//!   before the first record of the oldest live session.
//!
//! A new owner of the partition replays from `replay_from` with decisions suppressed below the
//! larger of `committed` and the group's committed offset. Any older record is safe too: the
//! `replay_from` of an older position is never later (sessions live now were live then, or
//! started after it), so losing the newest record only costs replay time.
//!
//! Reading: a group-less consumer assigned to every partition of the topic, kept open, reads
//! up to the high watermarks whenever a partition is assigned, so it sees what the previous
//! owner wrote when it gave the partition up.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::event::Source;
use crate::time::{ClockState, SOURCES};

/// One progress record's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub replay_from: i64,
    pub committed: i64,
    /// Source name → newest event time (ms) before `replay_from`; sources not seen are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clocks: BTreeMap<String, i64>,
    /// Source name → the newest event time of all sources when it was last heard from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub heard: BTreeMap<String, i64>,
    /// Records admitted before `replay_from`, and per source that count when it was last heard.
    #[serde(default)]
    pub arrivals: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub heard_at: BTreeMap<String, u64>,
}

fn by_name(times: [i64; SOURCES]) -> BTreeMap<String, i64> {
    Source::ALL
        .iter()
        .zip(times)
        .filter(|(_, t)| *t != i64::MIN)
        .map(|(s, t)| (s.as_str().to_owned(), t))
        .collect()
}

fn by_source(times: &BTreeMap<String, i64>) -> [i64; SOURCES] {
    Source::ALL.map(|s| times.get(s.as_str()).copied().unwrap_or(i64::MIN))
}

impl Progress {
    pub fn new(replay_from: i64, committed: i64, clocks: ClockState) -> Progress {
        Progress {
            replay_from,
            committed,
            clocks: by_name(clocks.newest),
            heard: by_name(clocks.heard),
            arrivals: clocks.arrivals,
            heard_at: Source::ALL
                .iter()
                .zip(clocks.heard_at)
                .filter(|(_, n)| *n != 0)
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
        }
    }

    /// The clocks as the evaluator keeps them.
    pub fn clock_state(&self) -> ClockState {
        ClockState {
            newest: by_source(&self.clocks),
            heard: by_source(&self.heard),
            arrivals: self.arrivals,
            heard_at: Source::ALL.map(|s| self.heard_at.get(s.as_str()).copied().unwrap_or(0)),
        }
    }
}

/// The key of a partition's progress record.
pub fn key(group: &str, topic: &str, partition: i32) -> String {
    format!("{group}/{topic}/{partition}")
}

/// Reads the progress topic to its end on demand.
pub struct ProgressReader {
    topic: String,
    consumer: BaseConsumer,
    assigned: Vec<i32>,
    /// Next offset to read per partition.
    next: HashMap<i32, i64>,
    latest: HashMap<String, Progress>,
}

/// A consumer that reads a topic whole by `assign()`, outside any consumer group: librdkafka's
/// `assign()` needs a group id, but this one never joins (no subscribe) and never commits, so
/// `group` is only a name.
pub(super) fn assigning_reader(
    mut config: ClientConfig,
    group: &str,
    what: &str,
) -> anyhow::Result<BaseConsumer> {
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    config
        .create_with_context(DefaultConsumerContext)
        .map_err(|e| anyhow::anyhow!("creating {what}: {e}"))
}

impl ProgressReader {
    pub fn new(config: ClientConfig, topic: &str) -> anyhow::Result<ProgressReader> {
        let consumer = assigning_reader(
            config,
            "sessionguard.progress-reader",
            "the progress reader",
        )?;
        Ok(ProgressReader {
            topic: topic.to_owned(),
            consumer,
            assigned: Vec::new(),
            next: HashMap::new(),
            latest: HashMap::new(),
        })
    }

    /// Reads the topic up to its current end: call once per assignment, then [`Self::get`].
    /// An error leaves what was read before it.
    pub fn refresh(&mut self) -> Result<(), String> {
        self.catch_up(Duration::from_secs(15))
    }

    /// The progress topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The newest progress record of `key` read so far.
    pub fn get(&self, key: &str) -> Option<Progress> {
        self.latest.get(key).cloned()
    }

    fn catch_up(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Ok(()); // not created yet: nothing written
        }
        if partitions != self.assigned {
            let mut tpl = TopicPartitionList::new();
            for &p in &partitions {
                let from = self
                    .next
                    .get(&p)
                    .map_or(Offset::Beginning, |&o| Offset::Offset(o));
                tpl.add_partition_offset(&self.topic, p, from)
                    .map_err(|e| e.to_string())?;
            }
            self.consumer.assign(&tpl).map_err(|e| e.to_string())?;
            self.assigned = partitions.clone();
        }
        let mut ends = HashMap::new();
        for &p in &partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p, Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            ends.insert(p, (low, high));
        }
        let behind = |next: &HashMap<i32, i64>| {
            ends.iter()
                .any(|(p, &(low, high))| next.get(p).copied().unwrap_or(low).max(low) < high)
        };
        while behind(&self.next) {
            if Instant::now() > deadline {
                return Err("timed out reading the progress topic to its end".to_owned());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                // Transient (a broker reconnecting): keep trying until the deadline.
                Some(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                Some(Ok(m)) => {
                    self.next.insert(m.partition(), m.offset() + 1);
                    let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                        continue;
                    };
                    match m.payload() {
                        None => {
                            self.latest.remove(key);
                        }
                        Some(value) => {
                            if let Ok(p) = serde_json::from_slice::<Progress>(value) {
                                self.latest.insert(key.to_owned(), p);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
