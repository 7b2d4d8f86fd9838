//! Reading decisions from the actions topic: a `BaseConsumer` in a consumer group, polled on a
//! thread of its own (as the pipeline does: no lost wake-ups), handing each record over in
//! order with its position. An offset is stored — and so committed by librdkafka in the
//! background, and synchronously at the end — only once the decision it holds and every one
//! before it are settled (`enable.auto.offset.store=false`), so a stop or a crash resends
//! what was in flight, under the same `jti`, and skips nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Line, Position};
use crate::telemetry::{self, Level, V};

/// The `kafka:` section of the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSpec {
    pub brokers: String,
    /// The actions topic `run` produces decisions to.
    pub topic: String,
    /// Consumer group (default `sg-actuate`).
    #[serde(default)]
    pub group: Option<String>,
    /// librdkafka properties passed through (TLS, SASL …); secrets belong in
    /// `SESSIONGUARD_KAFKA_*` variables, read as `run` reads them (docs/kafka.md).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Actuation records also go here (one per decision and receiver, key = decision id).
    #[serde(default)]
    pub records_topic: Option<String>,
}

/// The client settings both clients share: brokers, the config's properties, then the
/// `SESSIONGUARD_KAFKA_*` variables.
fn client_config(spec: &KafkaSpec) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("client.id", "sessionguard-actuate");
    for (key, value) in spec
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(crate::config::librdkafka::from_env(std::env::vars()))
    {
        config.set(key, value);
    }
    config
}

/// The producer of the audit topic (actuation records).
pub struct AuditProducer {
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl AuditProducer {
    pub fn new(spec: &KafkaSpec) -> Result<AuditProducer> {
        let mut config = client_config(spec);
        config
            .set("linger.ms", "5")
            .set("enable.idempotence", "true");
        Ok(AuditProducer {
            producer: config
                .create()
                .context("creating the records topic producer")?,
        })
    }

    /// Queues one record; a full queue or a refused record is logged, never blocks delivery.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8]) {
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .key(key)
            .payload(payload);
        if let Err((e, _)) = self.producer.send(record) {
            telemetry::log(
                Level::Warn,
                "record_not_produced",
                "an actuation record could not be queued for the records topic",
                &[("topic", V::S(topic)), ("error", V::S(&e.to_string()))],
            );
        }
    }

    pub fn flush(&self) {
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            telemetry::log(
                Level::Warn,
                "records_flush_failed",
                "actuation records were not all delivered to the records topic",
                &[("error", V::S(&e.to_string()))],
            );
        }
    }
}

/// A subscribed consumer of the actions topic.
pub struct TopicReader {
    consumer: Arc<BaseConsumer>,
}

impl TopicReader {
    pub fn subscribe(spec: &KafkaSpec) -> Result<TopicReader> {
        let mut config = client_config(spec);
        config
            .set("group.id", spec.group.as_deref().unwrap_or("sg-actuate"))
            // A new group acts on what the topic retains: a kill is not skipped for being old
            // (the guard judges it by its own time).
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        config
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false");
        let consumer: BaseConsumer = config
            .create()
            .context("creating the actions topic consumer")?;
        consumer
            .subscribe(&[spec.topic.as_str()])
            .with_context(|| format!("subscribing to {}", spec.topic))?;
        Ok(TopicReader {
            consumer: Arc::new(consumer),
        })
    }

    /// Polls on a thread of its own until the receiving side is gone.
    pub fn spawn(&self, tx: mpsc::Sender<Line>) -> std::thread::JoinHandle<()> {
        let consumer = self.consumer.clone();
        std::thread::spawn(move || {
            while !tx.is_closed() {
                let line = match consumer.poll(Duration::from_millis(100)) {
                    None => continue,
                    Some(Err(e)) => {
                        telemetry::log(
                            Level::Warn,
                            "actions_topic_error",
                            "the actions topic consumer reported an error",
                            &[("error", V::S(&e.to_string()))],
                        );
                        continue;
                    }
                    Some(Ok(message)) => Line {
                        mac: message.headers().and_then(|headers| {
                            headers
                                .iter()
                                .find(|h| h.key == crate::decision::MAC_HEADER)
                                .and_then(|h| h.value.map(<[u8]>::to_vec))
                        }),
                        bytes: match message.payload() {
                            Some(payload) => Ok(payload.to_vec()),
                            None => Err("a record with no value".to_owned()),
                        },
                        end: Position::Kafka {
                            topic: message.topic().to_owned(),
                            partition: message.partition(),
                            offset: message.offset(),
                        },
                    },
                };
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
        })
    }

    /// Stores the offset after `offset`: everything up to it is settled.
    pub fn store(&self, topic: &str, partition: i32, offset: i64) {
        let mut tpl = TopicPartitionList::new();
        let stored = tpl.add_partition_offset(topic, partition, Offset::Offset(offset + 1));
        if let Err(e) = stored.and_then(|()| self.consumer.store_offsets(&tpl)) {
            // A partition taken away by a rebalance: its new owner goes on from the last
            // commit, and resends what this one had not stored.
            telemetry::log(
                Level::Warn,
                "offset_store_failed",
                "cannot store an actions topic offset",
                &[
                    ("topic", V::S(topic)),
                    ("partition", V::I(i64::from(partition))),
                    ("error", V::S(&e.to_string())),
                ],
            );
        }
    }

    /// Commits what is stored, before the process ends.
    pub fn commit(&self) {
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is not a failure.
            if !e.to_string().contains("No offset stored") {
                telemetry::log(
                    Level::Warn,
                    "offset_commit_failed",
                    "cannot commit the actions topic offsets",
                    &[("error", V::S(&e.to_string()))],
                );
            }
        }
    }
}
