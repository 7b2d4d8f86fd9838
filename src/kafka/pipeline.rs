//! The consumer loop of `run` and `rekey`: poll → (the evaluator: normalize → time → engine →
//! decisions | normalize → keyed copy) → produce → store offsets when delivered. `run` pushes
//! each record into one [`Evaluator`] per partition, the same per-record path as `replay`, so
//! the same records in the same order give the same decisions.
//!
//! Everything lives on one thread: the loop polls a `BaseConsumer`, and librdkafka runs the
//! rebalance callback inside that poll, where `Core` (behind an uncontended mutex, since the
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

#[cfg(feature = "parquet")]
use super::archive::RunArchive;
use super::connectivity::BrokerWatch;
use super::delivery::{client_error, client_log, owned_headers, Kind, Outbound, Outbox, Ticket};
use super::events;
use super::progress::{self, Progress, ProgressReader};
use super::tasks::{TasksRead, TasksReader};
use super::tracker::{Checkpoint, Tracker};
use super::Control;
use crate::config::Settings;
use crate::decision::Decision;
use crate::engine::{Engine, EngineConfig};
use crate::evaluator::{Evaluator, Sink};
use crate::event::{Normalizer, Reject, RejectReason};
use crate::grant::TaskRecord;
use crate::rule::RuleSet;
use crate::sink::DEAD_LETTER_COPY_BYTES;
use crate::source::Origin;
use crate::telemetry::{self, NotReady, Telemetry};

/// What the pipeline does with each record, with what that needs.
#[derive(Clone)]
pub enum Mode {
    /// `run`: evaluate against the rules and produce decisions.
    Evaluate(Arc<RuleSet>),
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
pub enum FinalCommit {
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
    /// Its records' origin name in the archive (`run --archive`; empty without).
    archive_origin: String,
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

/// Where an assigned partition starts: see [`Core::start_of`].
struct Start {
    offset: Offset,
    suppress_below: i64,
    /// The clocks its progress record saved (under `run`).
    clocks: Option<crate::time::ClockState>,
}

/// The group's committed offsets of `wanted`; `None` when they stay unknown. They decide what
/// is suppressed, so they must be known: retried for 30 s while a broker reconnects. If they
/// stay unknown, every partition is read from its beginning with nothing suppressed
/// (duplicates, all with the same ids; never a loss).
fn read_committed(
    consumer: &BaseConsumer<PipelineContext>,
    wanted: &[(String, i32)],
    telemetry: &Telemetry,
) -> Option<HashMap<(String, i32), i64>> {
    let mut query = TopicPartitionList::new();
    for (t, p) in wanted {
        query.add_partition(t, *p);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.committed_offsets(query.clone(), Duration::from_secs(10)) {
            Ok(list) => {
                return Some(
                    list.elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                            _ => None,
                        })
                        .collect(),
                );
            }
            Err(e) => {
                let giving_up = Instant::now() >= deadline;
                let error = &e.to_string();
                events::CommittedUnknown { error, giving_up }.emit(telemetry);
                if giving_up {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// The pipeline's state, shared between the loop and the rebalance callback.
struct Core {
    mode: Mode,
    group: String,
    engine_config: EngineConfig,
    normalizer: Normalizer,
    actions_topic: Arc<str>,
    /// Decisions carry [`crate::decision::MAC_HEADER`] under this key, when set.
    decision_mac_key: Option<Vec<u8>>,
    output_topic: Arc<str>,
    dead_letter_topic: Option<Arc<str>>,
    progress_topic: Option<Arc<str>>,
    parts: Vec<Part>,
    outbox: Outbox,
    progress: Option<ProgressReader>,
    /// `--tasks-topic`: the orchestrator's grants and completions (docs/agents.md).
    tasks: Option<TasksReader>,
    /// Every task record from the tasks topic so far, for partitions assigned later.
    task_records: Vec<TaskRecord>,
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
    /// `run --archive`: what is evaluated and decided, archived.
    #[cfg(feature = "parquet")]
    archive: Option<RunArchive>,
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
                events::OffsetTrouble::RebalanceError(&format!("{other:?}")).emit(&self.telemetry);
                core.parts.clear();
                consumer.unassign()
            }
        };
        // Rebuild reads count as activity: the idle clock starts when the assignment is done.
        core.last_activity = Instant::now();
        if let Err(e) = result {
            events::OffsetTrouble::AssignFailed(&e.to_string()).emit(&self.telemetry);
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

    /// Adds the newly assigned partitions: where each starts, what is replayed without output,
    /// and its evaluator (under `run`) with the clocks its progress record saved.
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
        let committed = read_committed(consumer, &wanted, &self.telemetry);
        if let Some(reader) = &mut self.progress {
            if let Err(error) = reader.refresh() {
                events::ProgressReadFailed {
                    topic: reader.topic(),
                    error: &error,
                }
                .emit(&self.telemetry);
            }
        }
        for (topic, partition) in wanted {
            let start = self.start_of(&topic, partition, committed.as_ref());
            if let Err(e) = tpl.set_partition_offset(&topic, partition, start.offset) {
                events::OffsetTrouble::AssignOffsetFailed(&e.to_string()).emit(&self.telemetry);
            }
            let catch_up_to = consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(5))
                .map_or(0, |(_, high)| high);
            let part = self.new_part(&topic, partition, start, catch_up_to);
            self.parts.push(part);
        }
    }

    /// Where an assigned partition starts reading, and below which offset its output is
    /// suppressed (see the module doc). `committed` is `None` when the committed offsets could
    /// not be read: then everything is read again with nothing suppressed.
    fn start_of(
        &self,
        topic: &str,
        partition: i32,
        committed: Option<&HashMap<(String, i32), i64>>,
    ) -> Start {
        let known = committed.is_some();
        let committed = committed.and_then(|c| c.get(&(topic.to_owned(), partition)).copied());
        let start = |offset, suppress_below| Start {
            offset,
            suppress_below,
            clocks: None,
        };
        match (&self.mode, committed) {
            (Mode::Evaluate(_), c) => {
                let progress = self
                    .progress
                    .as_ref()
                    .and_then(|reader| reader.get(&progress::key(&self.group, topic, partition)));
                match (progress, c) {
                    (Some(p), c) => Start {
                        offset: Offset::Offset(p.replay_from),
                        suppress_below: p.committed.max(c.unwrap_or(-1)),
                        clocks: Some(p.clock_state()),
                    },
                    // Committed but no progress: rebuilt from the beginning, exact for what
                    // the topic retains.
                    (None, Some(c)) => start(Offset::Beginning, c),
                    (None, None) if known => start(Offset::Invalid, -1),
                    (None, None) => start(Offset::Beginning, -1),
                }
            }
            (Mode::Rekey | Mode::Null, Some(c)) => start(Offset::Offset(c), c),
            (Mode::Rekey | Mode::Null, None) if known => start(Offset::Invalid, -1),
            (Mode::Rekey | Mode::Null, None) => start(Offset::Beginning, -1),
        }
    }

    /// The state of a newly assigned partition, logged as `partition_assigned`.
    fn new_part(&mut self, topic: &str, partition: i32, start: Start, catch_up_to: i64) -> Part {
        let mut eval = match &self.mode {
            Mode::Evaluate(rules) => {
                let mut engine =
                    Engine::with_shared_rules(rules.clone(), self.engine_config.clone());
                for record in &self.task_records {
                    engine.apply_task(record);
                }
                let mut eval = Evaluator::new(engine, self.normalizer.clone());
                if let Some(clocks) = start.clocks {
                    // No session is held yet, so this only sets the clocks.
                    eval.resume_clocks(clocks);
                }
                Some(eval)
            }
            Mode::Rekey | Mode::Null => None,
        };
        let topic_id = eval
            .as_mut()
            .map_or(0, |e| e.engine_mut().origin_names().intern(topic));
        self.next_tracker += 1;
        let start_text = match start.offset {
            Offset::Offset(o) => o.to_string(),
            Offset::Beginning => "beginning".to_owned(),
            _ => "committed or auto.offset.reset".to_owned(),
        };
        let suppress_below = start.suppress_below;
        #[cfg(feature = "parquet")]
        let archive_origin = self
            .archive
            .as_mut()
            .map(|archive| archive.origin(topic, partition))
            .unwrap_or_default();
        #[cfg(not(feature = "parquet"))]
        let archive_origin = String::new();
        events::PartitionAssigned {
            topic,
            partition,
            start: &start_text,
            suppress_below,
            high_watermark: catch_up_to,
            rebuilding: suppress_below > 0 && eval.is_some(),
        }
        .emit(&self.telemetry);
        Part {
            topic: topic.into(),
            partition,
            topic_id,
            eval,
            tracker: Tracker::new(self.next_tracker),
            position: match start.offset {
                Offset::Offset(o) => o,
                _ => -1,
            },
            stored: suppress_below,
            suppress_below,
            catch_up_to,
            dirty: false,
            last_checkpoint_at: Instant::now(),
            completed: None,
            progress_due: false,
            progress_written_at: None,
            archive_origin,
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
                events::PartitionRevoked {
                    topic,
                    partition: *partition,
                    position: part.position,
                    stored: part.stored,
                }
                .emit(&self.telemetry);
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
            let pending = self.outbox.pending();
            events::SettleIncomplete { pending }.emit(&self.telemetry);
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
                events::OffsetTrouble::CommitFailed(&e.to_string()).emit(&self.telemetry);
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
                events::OffsetTrouble::StoreFailed(&e.to_string()).emit(&self.telemetry);
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

    /// Processes one record: what every mode shares (position, gaps, counts) around the
    /// mode's own handler.
    fn handle(&mut self, message: &BorrowedMessage<'_>) {
        let Some(index) = self.part_index(message.topic(), message.partition()) else {
            return; // not ours (any more)
        };
        let part = &self.parts[index];
        let offset = message.offset();
        if offset < part.position {
            return; // already processed (a re-fetch after a seek)
        }
        if part.position >= 0 && offset > part.position {
            events::OffsetGap {
                topic: &part.topic,
                partition: part.partition,
                expected: part.position,
                offset,
                suppress_below: part.suppress_below,
            }
            .emit(&self.telemetry);
        }
        self.last_activity = Instant::now();
        let record = Record {
            offset,
            replaying: offset < part.suppress_below,
            source_ts: message.timestamp().to_millis(),
            payload: message.payload().unwrap_or(&[]),
            key: message.key(),
        };
        self.summary.records += 1;
        self.summary
            .first_record_at
            .get_or_insert(self.last_activity);
        if record.replaying {
            self.summary.replayed += 1;
        }
        self.collected.clear();
        match self.mode {
            Mode::Null => self.answer_null(index, &record),
            Mode::Rekey => self.rekey(index, &record, message),
            Mode::Evaluate(_) => self.evaluate(index, &record),
        }
        if !matches!(self.mode, Mode::Null) {
            let mut metrics = self.telemetry.metrics();
            if record.replaying {
                metrics.replayed += 1;
            } else {
                metrics.events += 1;
            }
        }
        self.telemetry.metrics().records += 1;
        if !record.replaying {
            self.send_rejects(index, &record);
            self.send_decisions(index, &record);
        }
        let part = &mut self.parts[index];
        part.position = offset + 1;
        part.dirty = true;
        // The clock read when the record arrived: handling it takes microseconds.
        self.summary.last_done_at = Some(self.last_activity);
    }

    /// [`Mode::Null`]: one small record (the offset) to the actions topic, nothing evaluated.
    fn answer_null(&mut self, index: usize, record: &Record<'_>) {
        if record.replaying {
            return;
        }
        let part = &mut self.parts[index];
        let seq = part.tracker.ticket();
        self.summary.null_outputs += 1;
        self.outbox.send(
            Ticket {
                tracker: part.tracker.id,
                seq,
                source_ts: record.source_ts,
                kind: Kind::Null,
            },
            Outbound {
                topic: self.actions_topic.clone(),
                key: None,
                payload: record.offset.to_string().into_bytes(),
                headers: Vec::new(),
                timestamp: None,
            },
        );
    }

    /// [`Mode::Rekey`]: the record again, keyed by its session key, with its headers and
    /// timestamp; a record that does not normalize is collected as a reject.
    fn rekey(&mut self, index: usize, record: &Record<'_>, message: &BorrowedMessage<'_>) {
        self.scratch.reset();
        let event = match self.normalizer.normalize(record.payload, &self.scratch) {
            Ok(event) => event,
            Err(reject) => {
                self.collected
                    .rejects
                    .push((record.offset, reject, Vec::new()));
                return;
            }
        };
        self.summary.events += u64::from(!record.replaying);
        let key = event.session.key.to_string();
        let part = &mut self.parts[index];
        let seq = part.tracker.ticket();
        self.summary.rekeyed += 1;
        self.outbox.send(
            Ticket {
                tracker: part.tracker.id,
                seq,
                source_ts: record.source_ts,
                kind: Kind::Rekeyed,
            },
            Outbound {
                topic: self.output_topic.clone(),
                key: Some(key.into_bytes()),
                payload: record.payload.to_vec(),
                headers: owned_headers(message.headers()),
                // Keep the original time, so latency counts from the source.
                timestamp: record.source_ts,
            },
        );
    }

    /// [`Mode::Evaluate`]: the record through the partition's evaluator; its decisions and
    /// rejects are collected.
    fn evaluate(&mut self, index: usize, record: &Record<'_>) {
        let part = &mut self.parts[index];
        let Some(eval) = part.eval.as_mut() else {
            return;
        };
        let origin = Origin::Kafka {
            topic: part.topic_id,
            partition: part.partition,
            offset: record.offset,
        };
        let (late_before, events_before) = (eval.tally().late(), eval.tally().events());
        let mut sink = RunSink {
            collected: &mut self.collected,
            // What is read again to rebuild state was archived when first read.
            #[cfg(feature = "parquet")]
            archive: self
                .archive
                .as_mut()
                .filter(|_| !record.replaying)
                .map(|archive| (archive, part.archive_origin.as_str(), &*self.telemetry)),
        };
        // The sink only collects (and archiving reports its own failures), so it cannot fail.
        let _ = eval.push(record.payload, origin, &mut sink);
        if !record.replaying {
            let late = eval.tally().late() - late_before;
            self.summary.events += eval.tally().events() - events_before;
            self.summary.late += late;
            self.telemetry.metrics().late += late;
        }
    }

    /// The collected rejects: to the dead-letter topic, or logged when there is none.
    fn send_rejects(&mut self, index: usize, record: &Record<'_>) {
        let Core {
            parts,
            outbox,
            collected,
            summary,
            telemetry,
            dead_letter_topic,
            ..
        } = self;
        let part = &mut parts[index];
        for (at, reject, bytes) in collected.rejects.drain(..) {
            *summary.rejects.entry(reject.reason).or_default() += 1;
            events::Rejected {
                topic: &part.topic,
                partition: part.partition,
                offset: at,
                reject: &reject,
                dead_lettered: dead_letter_topic.is_some(),
            }
            .emit(telemetry);
            // The record in hand, or one the future guard held and judged now.
            let (bytes, key) = if at == record.offset {
                (record.payload, record.key)
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
                        source_ts: record.source_ts,
                        kind: Kind::DeadLetter,
                    },
                    out,
                );
            }
        }
    }

    /// The collected decisions, to the actions topic keyed by session.
    fn send_decisions(&mut self, index: usize, record: &Record<'_>) {
        let part = &mut self.parts[index];
        for decision in self.collected.decisions.drain(..) {
            let payload = match serde_json::to_vec(&decision) {
                Ok(p) => p,
                Err(e) => {
                    events::DecisionUnserializable {
                        error: &e.to_string(),
                        rule_id: &decision.rule.id,
                    }
                    .emit(&self.telemetry);
                    continue;
                }
            };
            let mut headers = vec![
                ("decision_id".to_owned(), decision.decision_id.into_bytes()),
                ("rule_id".to_owned(), decision.rule.id.as_bytes().to_vec()),
            ];
            if let Some(key) = &self.decision_mac_key {
                let mac = crate::decision::decision_mac(key, &payload);
                headers.push((crate::decision::MAC_HEADER.to_owned(), mac.into_bytes()));
            }
            let seq = part.tracker.ticket();
            self.summary.decisions += 1;
            self.outbox.send(
                Ticket {
                    tracker: part.tracker.id,
                    seq,
                    source_ts: record.source_ts,
                    kind: Kind::Decision {
                        rule_id: decision.rule.id.as_str().into(),
                    },
                },
                Outbound {
                    topic: self.actions_topic.clone(),
                    key: Some(decision.session.key.into_bytes()),
                    payload,
                    headers,
                    timestamp: None,
                },
            );
        }
    }
}

/// The key decisions are authenticated with (`sessionguard actuate` checks it): the file
/// `SESSIONGUARD_DECISION_MAC_KEY_FILE` names, else `SESSIONGUARD_DECISION_MAC_KEY` itself.
fn decision_mac_key() -> anyhow::Result<Option<Vec<u8>>> {
    use anyhow::Context as _;
    let key = match (
        std::env::var_os("SESSIONGUARD_DECISION_MAC_KEY_FILE"),
        std::env::var("SESSIONGUARD_DECISION_MAC_KEY").ok(),
    ) {
        (Some(path), _) => std::fs::read(&path).with_context(|| {
            format!(
                "reading SESSIONGUARD_DECISION_MAC_KEY_FILE ({})",
                path.to_string_lossy()
            )
        })?,
        (None, Some(value)) => value.into_bytes(),
        (None, None) => return Ok(None),
    };
    let mut key = key;
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.len() < 16 {
        anyhow::bail!("the decision MAC key is shorter than 16 bytes");
    }
    Ok(Some(key))
}

/// The record in hand, as the mode handlers need it.
struct Record<'m> {
    offset: i64,
    /// Below the partition's `suppress_below`: read again to rebuild state, output suppressed.
    replaying: bool,
    source_ts: Option<i64>,
    payload: &'m [u8],
    key: Option<&'m [u8]>,
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

/// The evaluator's sink under `run`: collects decisions and rejects for the record in hand,
/// and (`--archive`, for a record not read again to rebuild state) archives the normalized
/// record and the decisions.
struct RunSink<'a> {
    collected: &'a mut Collected,
    #[cfg(feature = "parquet")]
    archive: Option<(&'a mut RunArchive, &'a str, &'a Telemetry)>,
}

impl Sink for RunSink<'_> {
    fn decision(&mut self, decision: &Decision) -> std::io::Result<()> {
        #[cfg(feature = "parquet")]
        if let Some((archive, _, telemetry)) = self.archive.as_mut() {
            archive.decision(decision, telemetry);
        }
        self.collected.decisions.push(decision.clone());
        Ok(())
    }

    fn reject(&mut self, origin: Origin, reject: &Reject, bytes: &[u8]) -> std::io::Result<()> {
        let offset = match origin {
            Origin::Kafka { offset, .. } => offset,
            Origin::File { line, .. } => line as i64,
        };
        self.collected
            .rejects
            .push((offset, reject.clone(), bytes.to_vec()));
        Ok(())
    }

    #[cfg(feature = "parquet")]
    fn event(
        &mut self,
        event: &crate::event::Event<'_>,
        origin: Origin,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        if let (Some((archive, name, telemetry)), Origin::Kafka { offset, .. }) =
            (self.archive.as_mut(), origin)
        {
            archive.event(event, name, offset, bytes, telemetry);
        }
        Ok(())
    }
}

/// Runs `mode` until `control` stops it, `--max-events` records were read, or nothing arrived
/// for `--exit-when-idle`.
pub fn run(
    mode: Mode,
    settings: &Settings,
    control: &Control,
    telemetry: Arc<Telemetry>,
) -> anyhow::Result<Summary> {
    let watch = BrokerWatch::new(&settings.brokers, telemetry.clone());
    let core = Arc::new(Mutex::new(Core::new(
        mode.clone(),
        settings,
        &watch,
        telemetry.clone(),
    )?));
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
    events::PipelineStarted {
        mode: &mode,
        group: &settings.group,
        topics: &settings.topics.join(","),
    }
    .emit(&telemetry);
    if poll_until_done(&core, &consumer, &watch, settings, control) == Ending::Crashed {
        let summary = lock(&core).summary.clone();
        drop(consumer);
        return Ok(summary);
    }
    let (summary, commit) = {
        let mut core = lock(&core);
        let commit = core.settle(&consumer, None);
        // Everything evaluated was archived when read: close the files, write the manifest.
        #[cfg(feature = "parquet")]
        if let Some(archive) = core.archive.take() {
            archive.finish(&telemetry);
        }
        (core.summary.clone(), commit)
    };
    consumer.unsubscribe();
    drop(consumer);
    events::PipelineStopped {
        summary: &summary,
        commit,
        unreachable: watch.down(),
    }
    .emit(&telemetry);
    telemetry::flush_repeats();
    Ok(summary)
}

impl Core {
    /// The pipeline's state before the first assignment, with its producer and (under `run`)
    /// the progress topic's reader.
    fn new(
        mode: Mode,
        settings: &Settings,
        watch: &Arc<BrokerWatch>,
        telemetry: Arc<Telemetry>,
    ) -> anyhow::Result<Core> {
        let outbox = Outbox::new(
            super::producer_config(settings),
            telemetry.clone(),
            watch.clone(),
        )?;
        let evaluating = matches!(mode, Mode::Evaluate(_));
        let progress = match &settings.progress_topic {
            Some(topic) if evaluating => {
                Some(ProgressReader::new(super::base_config(settings), topic)?)
            }
            _ => None,
        };
        if evaluating && settings.progress_topic.is_none() {
            events::NoProgressTopic.emit(&telemetry);
        }
        if settings.archive.is_some() && !evaluating {
            anyhow::bail!("only `run` archives (--archive)");
        }
        let normalizer = Normalizer {
            forced: settings.source,
            ..Normalizer::default()
        };
        #[cfg(feature = "parquet")]
        let archive = settings
            .archive
            .as_ref()
            .map(|archive| RunArchive::create(archive, &normalizer))
            .transpose()?;
        #[cfg(not(feature = "parquet"))]
        if settings.archive.is_some() {
            anyhow::bail!("--archive needs the `parquet` feature, which this build left out");
        }
        let task_files = crate::grant::load(&settings.tasks).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!("--tasks: not loaded:\n{}", lines.join("\n"))
        })?;
        let tasks = match &settings.tasks_topic {
            Some(topic) if evaluating => {
                Some(TasksReader::new(super::base_config(settings), topic)?)
            }
            _ => None,
        };
        let mut core = Core {
            mode,
            group: settings.group.clone(),
            engine_config: EngineConfig {
                idle_timeout_ms: settings.idle_timeout_ms,
                caep_issuer: settings.caep_issuer.clone(),
                max_sessions: settings.max_sessions,
                time: settings.time.clone(),
                tasks: task_files.into(),
                ..EngineConfig::default()
            },
            normalizer,
            actions_topic: settings.actions_topic.as_str().into(),
            decision_mac_key: decision_mac_key()?,
            output_topic: settings.output_topic.as_str().into(),
            dead_letter_topic: settings.dead_letter_topic.as_deref().map(Into::into),
            progress_topic: settings.progress_topic.as_deref().map(Into::into),
            parts: Vec::new(),
            outbox,
            progress,
            tasks,
            task_records: Vec::new(),
            telemetry,
            next_tracker: 0,
            scratch: Bump::new(),
            collected: Collected::default(),
            summary: Summary::default(),
            crashed: false,
            last_activity: Instant::now(),
            assignment_changed: false,
            #[cfg(feature = "parquet")]
            archive,
        };
        // Grants published before the start apply from the first record.
        if let Some(reader) = &mut core.tasks {
            let read = reader.catch_up(Duration::from_secs(15));
            core.apply_tasks(read);
        }
        Ok(core)
    }

    /// Task records from the tasks topic: applied to every partition's engine now, and kept
    /// for partitions assigned later.
    fn apply_tasks(&mut self, read: Result<TasksRead, String>) {
        let Some(reader) = &self.tasks else {
            return;
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                events::TasksReadFailed {
                    topic: reader.topic(),
                    error: &error,
                }
                .emit(&self.telemetry);
                return;
            }
        };
        for (partition, offset, error) in &read.refused {
            events::TaskRecordRefused {
                topic: reader.topic(),
                partition: *partition,
                offset: *offset,
                error,
            }
            .emit(&self.telemetry);
        }
        for record in read.records {
            for part in &mut self.parts {
                if let Some(eval) = &mut part.eval {
                    eval.engine_mut().apply_task(&record);
                }
            }
            events::TaskRecordApplied { record: &record }.emit(&self.telemetry);
            self.task_records.push(record);
        }
    }

    /// What the tasks topic brought since the last poll, without waiting.
    fn read_tasks(&mut self) {
        if let Some(reader) = &mut self.tasks {
            let read = reader.read(Duration::ZERO);
            self.apply_tasks(read);
        }
    }

    /// Between polls: pumps deliveries, pauses or resumes the assignment as the outbox fills
    /// and drains, and says whether a limit (`--max-events`, `--exit-when-idle`) ends the run.
    fn between_polls(
        &mut self,
        consumer: &BaseConsumer<PipelineContext>,
        paused: &mut bool,
        settings: &Settings,
    ) -> bool {
        self.pump(consumer);
        #[cfg(feature = "parquet")]
        if let Some(archive) = self.archive.as_mut() {
            archive.tick(Instant::now(), &self.telemetry);
        }
        let congested = self.outbox.congested(*paused);
        if congested != *paused || (*paused && self.assignment_changed) {
            if let Ok(assignment) = consumer.assignment() {
                let result = if congested {
                    consumer.pause(&assignment)
                } else {
                    consumer.resume(&assignment)
                };
                if result.is_ok() {
                    *paused = congested;
                    self.telemetry.metrics().paused = *paused;
                }
            }
        }
        self.assignment_changed = false;
        if settings
            .max_events
            .is_some_and(|max| self.summary.records >= max)
        {
            return true;
        }
        let Some(idle) = settings.exit_when_idle else {
            return false;
        };
        // Joining the group takes seconds; before the first assignment, wait at least
        // NO_ASSIGNMENT_GRACE so an idle limit shorter than a join cannot end the run before
        // it began.
        let limit = if self.summary.rebalances == 0 {
            idle.max(NO_ASSIGNMENT_GRACE)
        } else {
            idle
        };
        self.last_activity.elapsed() >= limit && self.outbox.pending() == 0
    }
}

/// How the poll loop ended.
#[derive(PartialEq, Eq)]
enum Ending {
    /// Stopped, or a limit reached: the final commit follows.
    Done,
    /// A crash was injected (tests): deliveries abandoned, nothing committed.
    Crashed,
}

/// Polls and handles records until `control` stops the run or a limit is reached.
fn poll_until_done(
    core: &Mutex<Core>,
    consumer: &BaseConsumer<PipelineContext>,
    watch: &BrokerWatch,
    settings: &Settings,
    control: &Control,
) -> Ending {
    let mut paused = false;
    let mut last_poll_error: Option<Instant> = None;
    loop {
        let records = lock(core).summary.records;
        if control.crashing() || control.crash_due(records) {
            let mut core = lock(core);
            core.crashed = true;
            core.outbox.abandon();
            core.summary.crashed = true;
            return Ending::Crashed;
        }
        if control.stopping() || lock(core).between_polls(consumer, &mut paused, settings) {
            return Ending::Done;
        }
        watch.tick();
        // Grants first: one published before an input record is applied before it.
        lock(core).read_tasks();
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                watch.connected();
                lock(core).handle(&message)
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
                events::PollError {
                    error: &e.to_string(),
                }
                .emit(&lock(core).telemetry);
            }
            Some(Err(_)) => {}
        }
    }
}
