//! The consumer loop of `run` and `rekey`: poll → (the evaluator: normalize → time → engine →
//! decisions | normalize → keyed copy) → produce → store offsets when delivered. `run` pushes
//! each record into one [`Evaluator`] per partition, the same per-record path as `replay`, so
//! the same records in the same order give the same decisions.
//!
//! Everything lives on one thread: the loop polls a `BaseConsumer`, and librdkafka runs the
//! rebalance callback inside that poll, where [`Core`] (behind an uncontended mutex, since the
//! callback gets only `&self`) finishes revoked partitions and rebuilds assigned ones.
//!
//! # Rebuild on assignment (`run`)
//!
//! For each assigned partition, the newest progress record and the group's committed offset
//! give where to start reading (`replay_from`), the clocks to restore before it, and below
//! which offset decisions are suppressed (the larger of the two committed positions). Records below that offset are evaluated again with nothing emitted, so the
//! sessions their windows hold are back when the first new record arrives, and the output
//! equals an uninterrupted run's. Without a progress record but with a committed offset, the
//! partition is replayed from its beginning (conservative and slow, but exact for what the
//! topic retains); with neither, it starts where `auto.offset.reset` says (earliest).
//! Records the future guard holds are replayed too (the replay starts at or before the oldest
//! of them), so the rebuild is exact whatever the time model held at the checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bumpalo::Bump;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

use super::connectivity::BrokerWatch;
use super::delivery::{client_error, client_log, owned_headers, Kind, Outbound, Outbox, Ticket};
use super::progress::{self, Progress, ProgressReader};
use super::tracker::{Checkpoint, Tracker};
use super::Control;
use crate::config::Settings;
use crate::decision::Decision;
use crate::engine::{Engine, EngineConfig};
use crate::evaluator::{Evaluator, Sink};
use crate::event::{Normalizer, Reject, RejectReason};
use crate::rule::RuleSet;
use crate::sink::DEAD_LETTER_COPY_BYTES;
use crate::source::Origin;
use crate::telemetry::{self, Level, NotReady, Telemetry, V};

/// What the pipeline does with each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `run`: evaluate and produce decisions.
    Evaluate,
    /// `rekey`: re-produce the record keyed by its session key.
    Rekey,
    /// A benchmark aid (`run --null-engine`, hidden): the same loop, client settings, offset
    /// storing and delivery tracking as [`Mode::Evaluate`], but no normalize and no rules —
    /// each record is answered by one small record (its offset, as text) to the actions topic,
    /// whose delivery latency is recorded as a decision's is. What `run` costs over the bare
    /// Kafka round trip is `run`'s throughput against this one's.
    Null,
}

/// What a pipeline run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Records read, including those re-read to rebuild state.
    pub records: u64,
    /// Records re-read to rebuild state (their decisions suppressed).
    pub replayed: u64,
    pub events: u64,
    pub rejects: BTreeMap<RejectReason, u64>,
    pub late: u64,
    /// Decisions produced (not counting suppressed ones).
    pub decisions: u64,
    pub dead_letters: u64,
    pub rekeyed: u64,
    /// Records produced by [`Mode::Null`], one per input record.
    pub null_outputs: u64,
    pub rebalances: u64,
    /// The run was stopped with `Control::crash`.
    pub crashed: bool,
    /// Wall-clock time of the first record read, and of the last record processed or the last
    /// acknowledgement of a message a record caused, whichever is later: the busy span that
    /// throughput is measured over (group join and idle waits excluded).
    pub first_record_at: Option<Instant>,
    pub last_done_at: Option<Instant>,
}

impl Summary {
    /// From the first record read to the last one processed and acknowledged.
    pub fn busy(&self) -> Duration {
        match (self.first_record_at, self.last_done_at) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

/// What the commit at the end of a revocation or a run did: the shutdown line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FinalCommit {
    /// No partition had an offset to commit (none assigned, or nothing read).
    Nothing,
    /// Offsets of this many partitions committed.
    Committed(usize),
    /// The commit failed (logged as `commit_failed`).
    Failed,
}

/// How often a partition's progress record is rewritten while records flow.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// `--exit-when-idle` before the first assignment: at least this long.
const NO_ASSIGNMENT_GRACE: Duration = Duration::from_secs(30);
/// How long a revocation or a shutdown waits for outstanding deliveries.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One assigned input partition.
struct Part {
    topic: Arc<str>,
    partition: i32,
    topic_id: u32,
    eval: Option<Evaluator>,
    tracker: Tracker,
    /// The next offset to process; -1 until the first record tells.
    position: i64,
    /// The highest offset stored; nothing at or below it is stored again.
    stored: i64,
    /// Records below this offset were processed before: their output is suppressed.
    suppress_below: i64,
    /// The high watermark when the partition was assigned: caught up once past it.
    catch_up_to: i64,
    /// A record was processed since the last checkpoint.
    dirty: bool,
    last_checkpoint_at: Instant,
    /// The newest completed checkpoint, and whether its progress record is still to write.
    completed: Option<Checkpoint>,
    progress_due: bool,
    progress_written_at: Option<Instant>,
}

impl Part {
    fn caught_up(&self) -> bool {
        self.position >= self.suppress_below
            && (self.catch_up_to <= 0 || self.position >= self.catch_up_to)
    }

    /// The checkpoint at the current position: see `progress` for what `replay_from` means.
    fn checkpoint(&self) -> Checkpoint {
        let pos = self.position.max(0);
        let Some(eval) = &self.eval else {
            return Checkpoint {
                pos,
                replay_from: pos,
                clocks: crate::time::ClockState::default(),
            };
        };
        match eval.rebuild_point() {
            Some((Origin::Kafka { offset, .. }, clocks)) if offset < pos => Checkpoint {
                pos,
                replay_from: offset,
                clocks,
            },
            _ => Checkpoint {
                pos,
                replay_from: pos,
                clocks: eval.clocks().state(),
            },
        }
    }
}

/// The pipeline's state, shared between the loop and the rebalance callback.
struct Core {
    mode: Mode,
    group: String,
    rules: Option<Arc<RuleSet>>,
    engine_config: EngineConfig,
    normalizer: Normalizer,
    actions_topic: Arc<str>,
    output_topic: Arc<str>,
    dead_letter_topic: Option<Arc<str>>,
    progress_topic: Option<Arc<str>>,
    parts: Vec<Part>,
    outbox: Outbox,
    progress: Option<ProgressReader>,
    telemetry: Arc<Telemetry>,
    next_tracker: u64,
    scratch: Bump,
    /// What the evaluator hands back for the record in hand.
    collected: Collected,
    summary: Summary,
    crashed: bool,
    /// Wall-clock time of the last record or rebalance, for `--exit-when-idle`.
    last_activity: Instant,
    assignment_changed: bool,
}

/// The consumer's context: librdkafka calls it from inside `poll`.
pub struct PipelineContext {
    core: Arc<Mutex<Core>>,
    telemetry: Arc<Telemetry>,
    watch: Arc<BrokerWatch>,
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for PipelineContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        client_log(&self.watch, "consumer", level, fac, message);
    }

    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.watch.statistics_show_one_up();
        }
        let mut m = self.telemetry.metrics();
        m.lag.clear();
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    m.lag.insert((name.clone(), *id), p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(
            &self.watch,
            "consumer_error",
            "consumer error (librdkafka retries)",
            &error,
            reason,
        );
    }
}

impl ConsumerContext for PipelineContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            // An assignment is an answer from the group coordinator.
            self.watch.connected();
        }
        let mut core = lock(&self.core);
        core.summary.rebalances += 1;
        core.last_activity = Instant::now();
        core.assignment_changed = true;
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                core.on_assign(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                core.on_revoke(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let text = format!("{other:?}");
                telemetry::log(
                    Level::Error,
                    "rebalance_error",
                    "rebalance failed; dropping the assignment",
                    &[("error", V::S(&text))],
                );
                core.parts.clear();
                consumer.unassign()
            }
        };
        // Rebuild reads count as activity: the idle clock starts when the assignment is done.
        core.last_activity = Instant::now();
        if let Err(e) = result {
            let text = e.to_string();
            telemetry::log(
                Level::Error,
                "assign_failed",
                "could not apply the new assignment",
                &[("error", V::S(&text))],
            );
        }
        core.update_gauges();
    }
}

impl Core {
    fn part_index(&self, topic: &str, partition: i32) -> Option<usize> {
        self.parts
            .iter()
            .position(|p| p.partition == partition && &*p.topic == topic)
    }

    fn on_assign(
        &mut self,
        consumer: &BaseConsumer<PipelineContext>,
        tpl: &mut TopicPartitionList,
    ) {
        let wanted: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .filter(|(t, p)| self.part_index(t, *p).is_none())
            .collect();
        if wanted.is_empty() {
            return;
        }
        let mut query = TopicPartitionList::new();
        for (t, p) in &wanted {
            query.add_partition(t, *p);
        }
        // The committed offsets decide what is suppressed, so they must be known: retried
        // while a broker reconnects. If they stay unknown, every partition is read from its
        // beginning with nothing suppressed (duplicates, all with the same ids; never a loss).
        let mut committed: Option<HashMap<(String, i32), i64>> = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while committed.is_none() {
            match consumer.committed_offsets(query.clone(), Duration::from_secs(10)) {
                Ok(list) => {
                    committed = Some(
                        list.elements()
                            .iter()
                            .filter_map(|e| match e.offset() {
                                Offset::Offset(o) => {
                                    Some(((e.topic().to_owned(), e.partition()), o))
                                }
                                _ => None,
                            })
                            .collect(),
                    );
                }
                Err(e) if Instant::now() < deadline => {
                    let text = e.to_string();
                    telemetry::log(
                        Level::Warn,
                        "committed_unknown",
                        "could not read the committed offsets; retrying",
                        &[("error", V::S(&text))],
                    );
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    let text = e.to_string();
                    telemetry::log(
                        Level::Error,
                        "committed_unknown",
                        "committed offsets unknown; reading from the beginning, nothing suppressed",
                        &[("error", V::S(&text))],
                    );
                    break;
                }
            }
        }
        let committed_known = committed.is_some();
        let committed = committed.unwrap_or_default();
        if let Some(reader) = &mut self.progress {
            reader.refresh();
        }
        for (topic, partition) in wanted {
            let committed = committed.get(&(topic.clone(), partition)).copied();
            let progress = match (&self.progress, self.mode) {
                (Some(reader), Mode::Evaluate) => {
                    reader.get(&progress::key(&self.group, &topic, partition))
                }
                _ => None,
            };
            let (start, suppress_below, clocks) = match (self.mode, progress, committed) {
                (Mode::Rekey | Mode::Null, _, Some(c)) => (Offset::Offset(c), c, None),
                (Mode::Rekey | Mode::Null, _, None) if committed_known => {
                    (Offset::Invalid, -1, None)
                }
                (Mode::Rekey | Mode::Null, _, None) => (Offset::Beginning, -1, None),
                (Mode::Evaluate, Some(p), c) => (
                    Offset::Offset(p.replay_from),
                    p.committed.max(c.unwrap_or(-1)),
                    Some(p.clock_state()),
                ),
                (Mode::Evaluate, None, Some(c)) => (Offset::Beginning, c, None),
                (Mode::Evaluate, None, None) if committed_known => (Offset::Invalid, -1, None),
                (Mode::Evaluate, None, None) => (Offset::Beginning, -1, None),
            };
            if let Err(e) = tpl.set_partition_offset(&topic, partition, start) {
                let text = e.to_string();
                telemetry::log(
                    Level::Error,
                    "assign_offset_failed",
                    "could not set the start offset",
                    &[("error", V::S(&text))],
                );
            }
            let catch_up_to = consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(5))
                .map_or(0, |(_, high)| high);
            let position = match start {
                Offset::Offset(o) => o,
                _ => -1,
            };
            let mut eval = match (self.mode, &self.rules) {
                (Mode::Evaluate, Some(rules)) => {
                    let engine =
                        Engine::with_shared_rules(rules.clone(), self.engine_config.clone());
                    let mut eval = Evaluator::new(engine, self.normalizer.clone());
                    if let Some(clocks) = clocks {
                        // No session is held yet, so this only sets the clocks.
                        eval.resume_clocks(clocks);
                    }
                    Some(eval)
                }
                _ => None,
            };
            let topic_id = eval
                .as_mut()
                .map_or(0, |e| e.engine_mut().origin_names().intern(&topic));
            self.next_tracker += 1;
            let start_text = match start {
                Offset::Offset(o) => o.to_string(),
                Offset::Beginning => "beginning".to_owned(),
                _ => "committed or auto.offset.reset".to_owned(),
            };
            telemetry::log(
                Level::Info,
                "partition_assigned",
                if suppress_below > 0 && self.mode == Mode::Evaluate {
                    "partition assigned; rebuilding its state before emitting"
                } else {
                    "partition assigned"
                },
                &[
                    ("topic", V::S(&topic)),
                    ("partition", V::I(partition.into())),
                    ("start", V::S(&start_text)),
                    ("suppress_below", V::I(suppress_below)),
                    ("high_watermark", V::I(catch_up_to)),
                ],
            );
            self.parts.push(Part {
                topic: topic.as_str().into(),
                partition,
                topic_id,
                eval,
                tracker: Tracker::new(self.next_tracker),
                position,
                stored: suppress_below,
                suppress_below,
                catch_up_to,
                dirty: false,
                last_checkpoint_at: Instant::now(),
                completed: None,
                progress_due: false,
                progress_written_at: None,
            });
        }
    }

    fn on_revoke(&mut self, consumer: &BaseConsumer<PipelineContext>, tpl: &TopicPartitionList) {
        let revoked: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        if !self.crashed && !consumer.assignment_lost() {
            let _ = self.settle(consumer, Some(&revoked));
        }
        for (topic, partition) in &revoked {
            if let Some(i) = self.part_index(topic, *partition) {
                let part = self.parts.swap_remove(i);
                telemetry::log(
                    Level::Info,
                    "partition_revoked",
                    "partition revoked; its sessions are dropped",
                    &[
                        ("topic", V::S(topic)),
                        ("partition", V::I((*partition).into())),
                        ("position", V::I(part.position)),
                        ("stored", V::I(part.stored)),
                    ],
                );
            }
        }
    }

    /// Delivers everything, stores and commits the offsets of `which` (all when `None`), and
    /// writes their progress records: the end of a revocation or of a run.
    fn settle(
        &mut self,
        consumer: &BaseConsumer<PipelineContext>,
        which: Option<&[(String, i32)]>,
    ) -> FinalCommit {
        for part in &mut self.parts {
            if part.dirty {
                let cp = part.checkpoint();
                part.tracker.checkpoint(cp);
                part.dirty = false;
            }
        }
        let (acks, complete) = self.outbox.drain(SETTLE_TIMEOUT);
        self.apply_acks(acks);
        if !complete {
            telemetry::log(
                Level::Warn,
                "settle_incomplete",
                "not every message was acknowledged in time; committing only what was",
                &[("pending", V::U(self.outbox.pending() as u64))],
            );
        }
        let selected = |p: &Part| {
            which.is_none_or(|w| w.iter().any(|(t, n)| *n == p.partition && **t == *p.topic))
        };
        self.store_completed(consumer, |p| selected(p));
        let (acks, _) = self.outbox.drain(Duration::from_secs(10));
        self.apply_acks(acks);
        let mut tpl = TopicPartitionList::new();
        for part in self.parts.iter().filter(|p| selected(p)) {
            if part.stored >= 0 {
                let _ = tpl.add_partition_offset(
                    &part.topic,
                    part.partition,
                    Offset::Offset(part.stored),
                );
            }
        }
        if tpl.count() == 0 {
            return FinalCommit::Nothing;
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => FinalCommit::Committed(tpl.count()),
            Err(e) => {
                let text = e.to_string();
                telemetry::log(
                    Level::Warn,
                    "commit_failed",
                    "final commit failed; the next owner replays from the last commit",
                    &[("error", V::S(&text))],
                );
                FinalCommit::Failed
            }
        }
    }

    fn apply_acks(&mut self, acks: Vec<super::delivery::Ack>) {
        if acks.is_empty() {
            return;
        }
        // One clock read per batch of acknowledgements, not one per message.
        let now = Instant::now();
        let mut m = self.telemetry.metrics();
        for ack in acks {
            match &ack.ticket.kind {
                Kind::Decision { rule_id } => {
                    *m.decisions.entry(rule_id.to_string()).or_default() += 1;
                }
                Kind::DeadLetter => m.dead_letters += 1,
                Kind::Rekeyed => m.rekeyed += 1,
                Kind::Null | Kind::Progress => {}
            }
            if ack.ticket.tracker == 0 {
                continue;
            }
            self.summary.last_done_at = Some(now);
            if let Some(part) = self
                .parts
                .iter_mut()
                .find(|p| p.tracker.id == ack.ticket.tracker)
            {
                part.tracker.ack(ack.ticket.seq);
            }
        }
    }

    /// Stores the offsets of completed checkpoints and writes due progress records. `force`
    /// selects partitions whose progress is written now regardless of the interval.
    fn store_completed(
        &mut self,
        consumer: &BaseConsumer<PipelineContext>,
        force: impl Fn(&Part) -> bool,
    ) {
        let mut tpl = TopicPartitionList::new();
        let mut progress_out = Vec::new();
        for part in &mut self.parts {
            if let Some(cp) = part.tracker.completed() {
                if cp.pos > part.stored {
                    let _ = tpl.add_partition_offset(
                        &part.topic,
                        part.partition,
                        Offset::Offset(cp.pos),
                    );
                    part.stored = cp.pos;
                }
                part.completed = Some(cp);
                part.progress_due = true;
            }
            let Some(cp) = part.completed else { continue };
            let interval_passed = part
                .progress_written_at
                .is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL);
            if part.progress_due
                && (interval_passed || force(part))
                && cp.pos >= part.suppress_below
                && part.eval.is_some()
            {
                part.progress_due = false;
                part.progress_written_at = Some(Instant::now());
                progress_out.push((
                    progress::key(&self.group, &part.topic, part.partition),
                    Progress::new(cp.replay_from, cp.pos, cp.clocks),
                ));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.store_offsets(&tpl) {
                let text = e.to_string();
                telemetry::log(
                    Level::Debug,
                    "store_failed",
                    "could not store offsets (partition no longer assigned?)",
                    &[("error", V::S(&text))],
                );
            }
        }
        if let Some(topic) = &self.progress_topic {
            for (key, value) in progress_out {
                let Ok(payload) = serde_json::to_vec(&value) else {
                    continue;
                };
                self.outbox.send(
                    Ticket {
                        tracker: 0,
                        seq: 0,
                        source_ts: None,
                        kind: Kind::Progress,
                    },
                    Outbound {
                        topic: topic.clone(),
                        key: Some(key.into_bytes()),
                        payload,
                        headers: Vec::new(),
                        timestamp: None,
                    },
                );
            }
        }
    }

    /// One turn of bookkeeping: acknowledgements, checkpoints, offsets, gauges.
    fn pump(&mut self, consumer: &BaseConsumer<PipelineContext>) {
        let acks = self.outbox.pump();
        self.apply_acks(acks);
        for part in &mut self.parts {
            if !part.dirty {
                continue;
            }
            let held = part
                .eval
                .as_ref()
                .is_some_and(|e| !e.clocks().held().is_empty());
            // Held records make a checkpoint cost a scan of the (small) held list: take one at
            // most every 100 ms then. Otherwise it is O(log n), taken after every record.
            if !held || part.last_checkpoint_at.elapsed() >= Duration::from_millis(100) {
                let cp = part.checkpoint();
                part.tracker.checkpoint(cp);
                part.dirty = false;
                part.last_checkpoint_at = Instant::now();
            }
        }
        self.store_completed(consumer, |_| false);
        self.update_gauges();
    }

    fn update_gauges(&self) {
        let sessions: usize = self
            .parts
            .iter()
            .filter_map(|p| p.eval.as_ref())
            .map(|e| e.engine().session_count())
            .sum();
        let behind = self.parts.iter().filter(|p| !p.caught_up()).count();
        {
            let mut m = self.telemetry.metrics();
            m.sessions = sessions as u64;
            m.partitions = self.parts.len() as u64;
            m.not_ready = if self.parts.is_empty() {
                NotReady::NoPartition
            } else {
                NotReady::CatchingUp {
                    behind,
                    assigned: self.parts.len(),
                }
            };
        }
        self.telemetry
            .set_ready(!self.parts.is_empty() && behind == 0);
    }

    /// Processes one record.
    fn handle(&mut self, message: &BorrowedMessage<'_>) {
        let Some(index) = self.part_index(message.topic(), message.partition()) else {
            return; // not ours (any more)
        };
        let Core {
            parts,
            outbox,
            scratch,
            collected,
            normalizer,
            summary,
            telemetry,
            actions_topic,
            output_topic,
            dead_letter_topic,
            mode,
            last_activity,
            ..
        } = self;
        let part = &mut parts[index];
        let offset = message.offset();
        if offset < part.position {
            return; // already processed (a re-fetch after a seek)
        }
        if part.position >= 0 && offset > part.position {
            // Legitimate on compacted topics and past transaction markers; otherwise records
            // went missing, and a rebuild that misses records is not exact.
            telemetry.metrics().offset_gaps += 1;
            telemetry::log(
                Level::Warn,
                "offset_gap",
                "the next record came past the expected offset: records in between were skipped",
                &[
                    ("topic", V::S(&part.topic)),
                    ("partition", V::I(part.partition.into())),
                    ("expected", V::I(part.position)),
                    ("offset", V::I(offset)),
                    ("suppress_below", V::I(part.suppress_below)),
                ],
            );
        }
        *last_activity = Instant::now();
        let replaying = offset < part.suppress_below;
        let source_ts = message.timestamp().to_millis();
        let payload = message.payload().unwrap_or(&[]);
        summary.records += 1;
        if summary.first_record_at.is_none() {
            summary.first_record_at = Some(*last_activity);
        }
        if replaying {
            summary.replayed += 1;
        }
        if *mode == Mode::Null {
            // The null engine: everything but normalize and evaluate.
            if !replaying {
                let seq = part.tracker.ticket();
                summary.null_outputs += 1;
                outbox.send(
                    Ticket {
                        tracker: part.tracker.id,
                        seq,
                        source_ts,
                        kind: Kind::Null,
                    },
                    Outbound {
                        topic: actions_topic.clone(),
                        key: None,
                        payload: offset.to_string().into_bytes(),
                        headers: Vec::new(),
                        timestamp: None,
                    },
                );
            }
            telemetry.metrics().records += 1;
            part.position = offset + 1;
            part.dirty = true;
            summary.last_done_at = Some(*last_activity);
            return;
        }
        let origin = Origin::Kafka {
            topic: part.topic_id,
            partition: part.partition,
            offset,
        };
        let key = message.key();
        collected.clear();
        match (*mode, part.eval.as_mut()) {
            (Mode::Evaluate, Some(eval)) => {
                let (late_before, events_before) = (eval.tally().late(), eval.tally().events());
                // The sink only collects, so it cannot fail.
                let _ = eval.push(payload, origin, collected);
                let late = eval.tally().late() - late_before;
                if !replaying {
                    summary.events += eval.tally().events() - events_before;
                    summary.late += late;
                    telemetry.metrics().late += late;
                }
            }
            _ => {
                scratch.reset();
                match normalizer.normalize(payload, scratch) {
                    Err(reject) => collected.rejects.push((offset, reject, Vec::new())),
                    Ok(event) => {
                        summary.events += u64::from(!replaying);
                        let key = event.session.key.to_string();
                        let headers = owned_headers(message.headers());
                        let seq = part.tracker.ticket();
                        summary.rekeyed += 1;
                        outbox.send(
                            Ticket {
                                tracker: part.tracker.id,
                                seq,
                                source_ts,
                                kind: Kind::Rekeyed,
                            },
                            Outbound {
                                topic: output_topic.clone(),
                                key: Some(key.into_bytes()),
                                payload: payload.to_vec(),
                                headers,
                                // Keep the original time, so latency counts from the source.
                                timestamp: source_ts,
                            },
                        );
                    }
                }
            }
        }
        if !replaying {
            telemetry.metrics().events += 1;
        }
        telemetry.metrics().records += 1;
        if replaying {
            telemetry.metrics().replayed += 1;
        }
        for (at, reject, bytes) in collected.rejects.drain(..) {
            if replaying {
                continue;
            }
            *summary.rejects.entry(reject.reason).or_default() += 1;
            *telemetry
                .metrics()
                .rejects
                .entry(reject.reason)
                .or_default() += 1;
            // The record in hand, or one the future guard held and judged now.
            let (bytes, key) = if at == offset {
                (payload, key)
            } else {
                (bytes.as_slice(), None)
            };
            if let Some(topic) = dead_letter_topic {
                let out = dead_letter(topic, part, at, key, bytes, &reject);
                let seq = part.tracker.ticket();
                summary.dead_letters += 1;
                outbox.send(
                    Ticket {
                        tracker: part.tracker.id,
                        seq,
                        source_ts,
                        kind: Kind::DeadLetter,
                    },
                    out,
                );
            } else {
                let detail = reject.to_string();
                telemetry::log(
                    Level::Warn,
                    "record_rejected",
                    "rejected record (no dead-letter topic)",
                    &[
                        ("topic", V::S(&part.topic)),
                        ("partition", V::I(part.partition.into())),
                        ("offset", V::I(at)),
                        ("reason", V::S(reject.reason.as_str())),
                        ("detail", V::S(&detail)),
                    ],
                );
            }
        }
        for decision in collected.decisions.drain(..) {
            if replaying {
                continue;
            }
            let payload = match serde_json::to_vec(&decision) {
                Ok(p) => p,
                Err(e) => {
                    let text = e.to_string();
                    telemetry::log(
                        Level::Error,
                        "decision_unserializable",
                        "a decision could not be serialized",
                        &[("error", V::S(&text)), ("rule_id", V::S(&decision.rule.id))],
                    );
                    continue;
                }
            };
            let seq = part.tracker.ticket();
            summary.decisions += 1;
            outbox.send(
                Ticket {
                    tracker: part.tracker.id,
                    seq,
                    source_ts,
                    kind: Kind::Decision {
                        rule_id: decision.rule.id.as_str().into(),
                    },
                },
                Outbound {
                    topic: actions_topic.clone(),
                    key: Some(decision.session.key.into_bytes()),
                    payload,
                    headers: vec![
                        ("decision_id".to_owned(), decision.decision_id.into_bytes()),
                        ("rule_id".to_owned(), decision.rule.id.into_bytes()),
                    ],
                    timestamp: None,
                },
            );
        }
        part.position = offset + 1;
        part.dirty = true;
        // The clock read when the record arrived: handling it takes microseconds.
        summary.last_done_at = Some(*last_activity);
    }
}

/// A dead letter: a bounded copy of the original bytes, with Kafka Connect's error headers.
fn dead_letter(
    topic: &Arc<str>,
    part: &Part,
    offset: i64,
    key: Option<&[u8]>,
    payload: &[u8],
    reject: &Reject,
) -> Outbound {
    let copy = &payload[..payload.len().min(DEAD_LETTER_COPY_BYTES)];
    Outbound {
        topic: topic.clone(),
        key: key.map(<[u8]>::to_vec),
        payload: copy.to_vec(),
        headers: vec![
            (
                "__connect.errors.exception.message".to_owned(),
                format!("{}: {}", reject.reason, reject.detail).into_bytes(),
            ),
            (
                "__connect.errors.topic".to_owned(),
                part.topic.as_bytes().to_vec(),
            ),
            (
                "__connect.errors.partition".to_owned(),
                part.partition.to_string().into_bytes(),
            ),
            (
                "__connect.errors.offset".to_owned(),
                offset.to_string().into_bytes(),
            ),
            (
                "sessionguard.reject.reason".to_owned(),
                reject.reason.as_str().as_bytes().to_vec(),
            ),
            (
                "sessionguard.truncated".to_owned(),
                (copy.len() < payload.len()).to_string().into_bytes(),
            ),
        ],
        timestamp: None,
    }
}

/// Collects what the evaluator hands back for one record: decisions, and rejected records by
/// offset (with their bytes when they are not the record in hand).
#[derive(Default)]
struct Collected {
    decisions: Vec<Decision>,
    rejects: Vec<(i64, Reject, Vec<u8>)>,
}

impl Collected {
    fn clear(&mut self) {
        self.decisions.clear();
        self.rejects.clear();
    }
}

impl Sink for Collected {
    fn decision(&mut self, decision: &Decision) -> std::io::Result<()> {
        self.decisions.push(decision.clone());
        Ok(())
    }

    fn reject(&mut self, origin: Origin, reject: &Reject, bytes: &[u8]) -> std::io::Result<()> {
        let offset = match origin {
            Origin::Kafka { offset, .. } => offset,
            Origin::File { line, .. } => line as i64,
        };
        self.rejects.push((offset, reject.clone(), bytes.to_vec()));
        Ok(())
    }
}

/// Runs `mode` until `control` stops it, `--max-events` records were read, or nothing arrived
/// for `--exit-when-idle`. `rules` is required for [`Mode::Evaluate`].
pub fn run(
    mode: Mode,
    settings: &Settings,
    rules: Option<Arc<RuleSet>>,
    control: &Control,
    telemetry: Arc<Telemetry>,
) -> anyhow::Result<Summary> {
    if mode == Mode::Evaluate && rules.is_none() {
        anyhow::bail!("run needs rules");
    }
    let watch = BrokerWatch::new(&settings.brokers, telemetry.clone());
    let outbox = Outbox::new(
        super::producer_config(settings),
        telemetry.clone(),
        watch.clone(),
    )?;
    let progress = match (&settings.progress_topic, mode) {
        (Some(topic), Mode::Evaluate) => {
            Some(ProgressReader::new(super::base_config(settings), topic)?)
        }
        _ => None,
    };
    if mode == Mode::Evaluate && settings.progress_topic.is_none() {
        telemetry::log(
            Level::Info,
            "no_progress_topic",
            "no --progress-topic: a partition with a committed offset is rebuilt from its beginning",
            &[],
        );
    }
    let core = Arc::new(Mutex::new(Core {
        mode,
        group: settings.group.clone(),
        rules,
        engine_config: EngineConfig {
            idle_timeout_ms: settings.idle_timeout_ms,
            caep_issuer: settings.caep_issuer.clone(),
            max_sessions: settings.max_sessions,
            time: settings.time.clone(),
            ..EngineConfig::default()
        },
        normalizer: Normalizer {
            forced: settings.source,
            ..Normalizer::default()
        },
        actions_topic: settings.actions_topic.as_str().into(),
        output_topic: settings.output_topic.as_str().into(),
        dead_letter_topic: settings.dead_letter_topic.as_deref().map(Into::into),
        progress_topic: settings.progress_topic.as_deref().map(Into::into),
        parts: Vec::new(),
        outbox,
        progress,
        telemetry: telemetry.clone(),
        next_tracker: 0,
        scratch: Bump::new(),
        collected: Collected::default(),
        summary: Summary::default(),
        crashed: false,
        last_activity: Instant::now(),
        assignment_changed: false,
    }));
    let context = PipelineContext {
        core: core.clone(),
        telemetry: telemetry.clone(),
        watch: watch.clone(),
    };
    let consumer: BaseConsumer<PipelineContext> = super::consumer_config(settings)
        .create_with_context(context)
        .map_err(|e| super::security::client_error("creating the consumer", &e, settings))?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| anyhow::anyhow!("subscribing to {}: {e}", topics.join(",")))?;
    let topics_text = settings.topics.join(",");
    telemetry::log(
        Level::Info,
        "pipeline_started",
        match mode {
            Mode::Evaluate => "evaluating",
            Mode::Rekey => "rekeying",
            Mode::Null => "null engine: one small record per input record, no evaluation",
        },
        &[
            ("group", V::S(&settings.group)),
            ("topics", V::S(&topics_text)),
        ],
    );
    let mut paused = false;
    let mut last_poll_error: Option<Instant> = None;
    loop {
        let records = lock(&core).summary.records;
        if control.crashing() || control.crash_due(records) {
            let mut core = lock(&core);
            core.crashed = true;
            core.outbox.abandon();
            core.summary.crashed = true;
            let summary = core.summary.clone();
            drop(core);
            drop(consumer);
            return Ok(summary);
        }
        if control.stopping() {
            break;
        }
        {
            let mut core = lock(&core);
            core.pump(&consumer);
            let congested = core.outbox.congested(paused);
            if congested != paused || (paused && core.assignment_changed) {
                if let Ok(assignment) = consumer.assignment() {
                    let result = if congested {
                        consumer.pause(&assignment)
                    } else {
                        consumer.resume(&assignment)
                    };
                    if result.is_ok() {
                        paused = congested;
                        core.telemetry.metrics().paused = paused;
                    }
                }
            }
            core.assignment_changed = false;
            if settings
                .max_events
                .is_some_and(|max| core.summary.records >= max)
            {
                break;
            }
            if let Some(idle) = settings.exit_when_idle {
                // Joining the group takes seconds; before the first assignment, wait at least
                // NO_ASSIGNMENT_GRACE so an idle limit shorter than a join cannot end the run
                // before it began.
                let limit = if core.summary.rebalances == 0 {
                    idle.max(NO_ASSIGNMENT_GRACE)
                } else {
                    idle
                };
                if core.last_activity.elapsed() >= limit && core.outbox.pending() == 0 {
                    break;
                }
            }
        }
        watch.tick();
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                watch.connected();
                lock(&core).handle(&message)
            }
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) => {
                watch.all_down();
            }
            Some(Err(e))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure) => {}
            Some(Err(e))
                if last_poll_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) =>
            {
                last_poll_error = Some(Instant::now());
                let text = e.to_string();
                telemetry::log(
                    Level::Warn,
                    "poll_error",
                    "consumer poll error (librdkafka retries)",
                    &[("error", V::S(&text))],
                );
            }
            Some(Err(_)) => {}
        }
    }
    let (summary, commit) = {
        let mut core = lock(&core);
        let commit = core.settle(&consumer, None);
        (core.summary.clone(), commit)
    };
    consumer.unsubscribe();
    drop(consumer);
    // Throughput over the busy span, and the output latency quantiles: what benchmarks read
    // (scripts/bench/broker.sh), also served on /metrics.
    let busy = summary.busy();
    let per_second = if busy.is_zero() {
        0
    } else {
        (summary.records as f64 / busy.as_secs_f64()).round() as u64
    };
    let latency = telemetry.latency();
    let unreachable = watch.down();
    let stopped = match commit {
        FinalCommit::Committed(n) => format!(
            "stopped after a final commit of {}",
            crate::units::plural(n, "partition")
        ),
        FinalCommit::Failed => {
            "stopped; the final commit failed, so the next owner of the partitions resumes \
             from the last commit that succeeded"
                .to_owned()
        }
        FinalCommit::Nothing if unreachable => {
            "stopped; nothing was committed: the brokers could not be reached".to_owned()
        }
        FinalCommit::Nothing if summary.records == 0 => {
            "stopped; nothing to commit: no record was read".to_owned()
        }
        FinalCommit::Nothing => "stopped; nothing left to commit".to_owned(),
    };
    telemetry::log(
        Level::Info,
        "pipeline_stopped",
        &stopped,
        &[
            ("records", V::U(summary.records)),
            ("decisions", V::U(summary.decisions)),
            ("dead_letters", V::U(summary.dead_letters)),
            ("null_outputs", V::U(summary.null_outputs)),
            ("busy_ms", V::U(busy.as_millis() as u64)),
            ("records_per_s", V::U(per_second)),
            ("latency_count", V::U(latency.count)),
            ("latency_p50_ms", V::U(latency.p50)),
            ("latency_p99_ms", V::U(latency.p99)),
            ("latency_p999_ms", V::U(latency.p999)),
            ("latency_max_ms", V::U(latency.max)),
        ],
    );
    telemetry::flush_repeats();
    Ok(summary)
}
