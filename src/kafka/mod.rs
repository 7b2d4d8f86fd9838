//! The Kafka runtime: `run` (evaluate audit topics, produce decisions), `rekey` (re-produce raw
//! SIEM records keyed by session), and `demo` (both against librdkafka's in-process mock
//! cluster).
//!
//! # Layout
//!
//! - [`pipeline`]: the consumer loop shared by `run` and `rekey` — a `BaseConsumer` polled on
//!   the caller's thread, per-partition state, rebalance handling, offset discipline.
//! - [`delivery`]: the idempotent producer, delivery tickets and retries.
//! - [`events`]: the pipeline's events, one type each, whose `emit` logs and counts.
//! - [`connectivity`]: whether the brokers answer, said once (then reminders), not per retry.
//! - [`tracker`]: which input positions are safe to store.
//! - [`progress`]: the compacted progress topic that rebuilds partition state.
//! - [`security`]: TLS and SASL at run time: the preflight, explained client errors (the
//!   properties and their secrets are [`crate::config::librdkafka`]).
//! - [`demo`]: the zero-setup demo on the mock cluster.
//! - `archive` (feature `parquet`): `run --archive`, the events and decisions as Parquet,
//!   rolled by size and time.
//!
//! # Why a `BaseConsumer` on a dedicated thread
//!
//! rust-rdkafka's `StreamConsumer` has had lost-wake-up bugs (its issues #638 and #665, PR
//! #840): a stream can stop yielding messages while librdkafka has them queued. A
//! `BaseConsumer` polled in a plain loop cannot lose a wake-up, needs no async runtime, and
//! runs rebalance callbacks synchronously inside `poll` on the same thread that owns the
//! partition state — so a revocation finishes the batch, flushes and commits before librdkafka
//! gives the partition away, with no cross-thread hand-off. The work per record (normalize,
//! evaluate, serialize) is microseconds; the loop polls at least every 100 ms, far inside
//! `max.poll.interval.ms`, and pauses its partitions instead of blocking when the producer
//! cannot keep up.
//!
//! # Delivery and offsets
//!
//! At least once, with deterministic decision ids. `enable.auto.commit=true` with
//! `enable.auto.offset.store=false`: librdkafka commits in the background only what the
//! pipeline stored, and it stores an input offset only when every decision and dead letter
//! caused by the records before it is acknowledged by the broker ([`tracker`]). A record that
//! always fails (invalid UTF-8, not JSON, too deep …) is dead-lettered and passed — a poison
//! record never stalls its partition. Consumers of the actions topic deduplicate on
//! `decision_id`.
//!
//! # State per partition
//!
//! One [`crate::evaluator::Evaluator`] (engine and per-source clocks) per assigned input
//! partition: when the input is keyed by session (what `rekey` is for), all of a session's
//! events are in one partition, so its state needs nothing from other partitions. Timers and
//! idle expiry follow the clocks of the partition's own sources. On revocation the partition's batch is finished, its messages flushed, its
//! offset committed and its sessions dropped; on assignment its state is rebuilt from the
//! progress topic before anything is emitted ([`progress`]).
#![allow(
    clippy::disallowed_methods,
    reason = "the Kafka runtime runs on the wall clock (delivery, idleness, progress intervals); decisions come from the evaluator, on event time"
)]

#[cfg(feature = "parquet")]
pub mod archive;
pub mod connectivity;
pub mod delivery;
pub mod demo;
pub mod events;
pub mod pipeline;
pub mod progress;
pub mod security;
pub mod tasks;
pub mod tracker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::config::ClientConfig;

use crate::config::Settings;

pub use pipeline::{run, Mode, Summary};

/// How a running pipeline is told to stop: gracefully (final flush and commit), or as if the
/// process died (nothing more is flushed or committed; for tests).
#[derive(Clone, Default)]
pub struct Control {
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    /// Crash once this many records were read (0: never).
    crash_after: Arc<AtomicU64>,
}

impl Control {
    pub fn new() -> Control {
        Control::default()
    }

    /// Asks for a graceful stop: finish the record in hand, deliver, commit, leave the group.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops at once without delivering what is queued and without a final commit.
    pub fn crash(&self) {
        self.crash.store(true, Ordering::SeqCst);
    }

    /// Crashes (as `crash`) right after the `records`th record: a deterministic stop point.
    pub fn crash_after(&self, records: u64) {
        self.crash_after.store(records, Ordering::SeqCst);
    }

    /// True once `records` reached the `crash_after` point.
    pub fn crash_due(&self, records: u64) -> bool {
        let at = self.crash_after.load(Ordering::SeqCst);
        at > 0 && records >= at
    }

    /// The flag `stop` sets, for signal handlers.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn crashing(&self) -> bool {
        self.crash.load(Ordering::SeqCst)
    }
}

/// Properties sessionguard's offset discipline depends on; `-X` cannot change them.
const FIXED_CONSUMER: &[(&str, &str)] = &[
    ("enable.auto.commit", "true"),
    ("enable.auto.offset.store", "false"),
];

/// Bootstrap servers and the `-X` properties: the part every client shares.
pub fn base_config(settings: &Settings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "sessionguard");
    for (key, value) in &settings.librdkafka {
        config.set(key, value);
    }
    config
}

/// The group consumer: defaults, then `-X`, then the fixed properties.
pub fn consumer_config(settings: &Settings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "sessionguard")
        .set("group.id", &settings.group)
        // A new group reads what the topic retains: a security engine should not skip it.
        .set("auto.offset.reset", "earliest")
        // Bounded prefetch: at most 16 MiB of records wait in librdkafka's queue.
        .set("queued.max.messages.kbytes", "16384")
        .set("enable.partition.eof", "false")
        // Consumer lag for /metrics.
        .set("statistics.interval.ms", "5000");
    for (key, value) in &settings.librdkafka {
        if FIXED_CONSUMER.iter().any(|(k, _)| k == key) {
            crate::telemetry::log(
                crate::telemetry::Level::Warn,
                "property_ignored",
                "this librdkafka property is fixed by sessionguard's offset discipline",
                &[("property", crate::telemetry::V::S(key))],
            );
            continue;
        }
        config.set(key, value);
    }
    for (key, value) in FIXED_CONSUMER {
        config.set(*key, *value);
    }
    config
}

/// The producer: low linger for latency, then `-X` (idempotence is forced by the outbox).
pub fn producer_config(settings: &Settings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "sessionguard")
        .set("linger.ms", "5");
    for (key, value) in &settings.librdkafka {
        config.set(key, value);
    }
    config
}
