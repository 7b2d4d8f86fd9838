//! The tasks topic of `run --tasks-topic`: an orchestrator's task grants and completions
//! (docs/agents.md), read whole by every instance — a grant concerns every partition whose
//! sessions its agent may appear in, so the topic is not shared out by the consumer group.
//!
//! The reader assigns every partition of the topic from its beginning (no group membership, no
//! commits: a restart reads the grants again) and is polled without waiting between the input
//! consumer's polls, so a record published on the topic is applied before the input records
//! polled after it arrives. A record that is not a task record is logged and skipped.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::grant::TaskRecord;

/// How often the topic's partitions are looked up again until it exists.
const METADATA_RETRY: Duration = Duration::from_secs(2);

pub struct TasksReader {
    topic: String,
    consumer: BaseConsumer,
    assigned: bool,
    looked_up_at: Option<Instant>,
    /// Next offset to read, per partition.
    next: std::collections::HashMap<i32, i64>,
}

/// What one read of the topic brought.
#[derive(Default)]
pub struct TasksRead {
    pub records: Vec<TaskRecord>,
    /// (partition, offset, why) of records that are not task records.
    pub refused: Vec<(i32, i64, String)>,
}

impl TasksReader {
    pub fn new(config: ClientConfig, topic: &str) -> anyhow::Result<TasksReader> {
        let consumer = super::progress::assigning_reader(
            config,
            "sessionguard.tasks-reader",
            "the tasks topic reader",
        )?;
        Ok(TasksReader {
            topic: topic.to_owned(),
            consumer,
            assigned: false,
            looked_up_at: None,
            next: Default::default(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Assigns every partition from its beginning once the topic exists.
    fn assign(&mut self) -> Result<(), String> {
        if self.assigned
            || self
                .looked_up_at
                .is_some_and(|t| t.elapsed() < METADATA_RETRY)
        {
            return Ok(());
        }
        self.looked_up_at = Some(Instant::now());
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
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition_offset(&self.topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
        self.consumer.assign(&tpl).map_err(|e| e.to_string())?;
        self.assigned = true;
        Ok(())
    }

    /// Everything the topic has brought since the last call, waiting at most `wait` for the
    /// first record (zero: only what has already arrived).
    pub fn read(&mut self, wait: Duration) -> Result<TasksRead, String> {
        self.assign()?;
        let mut read = TasksRead::default();
        if !self.assigned {
            return Ok(read);
        }
        let mut timeout = wait;
        while let Some(message) = self.consumer.poll(timeout) {
            timeout = Duration::ZERO;
            let Ok(message) = message else {
                // Transient (a broker reconnecting): librdkafka retries; read on next time.
                break;
            };
            self.next.insert(message.partition(), message.offset() + 1);
            let payload = message.payload().unwrap_or_default();
            match TaskRecord::from_json(payload) {
                Ok(record) => read.records.push(record),
                Err(e) => read
                    .refused
                    .push((message.partition(), message.offset(), e.0)),
            }
        }
        Ok(read)
    }

    /// Reads until every partition is at the end it had when called (or `timeout` passes):
    /// the grants published before `run` started apply from its first record.
    pub fn catch_up(&mut self, timeout: Duration) -> Result<TasksRead, String> {
        let deadline = Instant::now() + timeout;
        self.looked_up_at = None;
        self.assign()?;
        let mut all = TasksRead::default();
        if !self.assigned {
            return Ok(all);
        }
        let ends: Vec<(i32, i64, i64)> = {
            let metadata = self
                .consumer
                .fetch_metadata(Some(&self.topic), Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            let ids: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut ends = Vec::new();
            for p in ids {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                ends.push((p, low, high));
            }
            ends
        };
        loop {
            let behind = ends
                .iter()
                .any(|&(p, low, high)| self.next.get(&p).copied().unwrap_or(low).max(low) < high);
            if !behind {
                return Ok(all);
            }
            if Instant::now() > deadline {
                return Err("timed out reading the tasks topic to its end".to_owned());
            }
            let read = self.read(Duration::from_millis(100))?;
            all.records.extend(read.records);
            all.refused.extend(read.refused);
        }
    }
}
