//! The events of the Kafka pipeline (`run`, `rekey`): one type per thing that happens, whose
//! `emit` writes its JSON log line and bumps the counter it has, so a log line and its metric
//! can never drift apart, and every event the pipeline reports is listed here with its level
//! and its fields. Operators read these names in logs and alerts: renaming one is a breaking
//! change.
//!
//! The connectivity watch ([`super::connectivity`]), librdkafka's own lines
//! ([`super::delivery::client_log`]) and the TLS/SASL preflight ([`super::security`]) report
//! through their own modules.

use super::pipeline::{FinalCommit, Mode, Summary};
use crate::event::Reject;
use crate::telemetry::{self, Level, Telemetry, V};

/// The pipeline began: what it does, for which group and topics.
pub struct PipelineStarted<'a> {
    pub mode: &'a Mode,
    pub group: &'a str,
    pub topics: &'a str,
}

impl PipelineStarted<'_> {
    pub fn emit(&self, _: &Telemetry) {
        let what = match self.mode {
            Mode::Evaluate(_) => "evaluating",
            Mode::Rekey => "rekeying",
            Mode::Null => "null engine: one small record per input record, no evaluation",
        };
        let fields = [("group", V::S(self.group)), ("topics", V::S(self.topics))];
        telemetry::log(Level::Info, "pipeline_started", what, &fields);
    }
}

/// `run` without `--progress-topic`: a restart rebuilds partitions from their beginning.
pub struct NoProgressTopic;

impl NoProgressTopic {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Info,
            "no_progress_topic",
            "no --progress-topic: a partition with a committed offset is rebuilt from its beginning",
            &[],
        );
    }
}

/// The pipeline ended: what the final commit did, throughput over the busy span and the output
/// latency quantiles (what benchmarks read, scripts/bench/broker.sh; also on `/metrics`).
pub struct PipelineStopped<'a> {
    pub summary: &'a Summary,
    pub commit: FinalCommit,
    /// The brokers could not be reached when it stopped.
    pub unreachable: bool,
}

impl PipelineStopped<'_> {
    pub fn emit(&self, telemetry: &Telemetry) {
        let summary = self.summary;
        let busy = summary.busy();
        let per_second = if busy.is_zero() {
            0
        } else {
            (summary.records as f64 / busy.as_secs_f64()).round() as u64
        };
        let latency = telemetry.latency();
        let stopped = match self.commit {
            FinalCommit::Committed(n) => format!(
                "stopped after a final commit of {}",
                crate::units::plural(n, "partition")
            ),
            FinalCommit::Failed => {
                "stopped; the final commit failed, so the next owner of the partitions resumes \
                 from the last commit that succeeded"
                    .to_owned()
            }
            FinalCommit::Nothing if self.unreachable => {
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
    }
}

/// A partition was assigned, and where it starts.
pub struct PartitionAssigned<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// The start offset, `beginning`, or `committed or auto.offset.reset`.
    pub start: &'a str,
    pub suppress_below: i64,
    pub high_watermark: i64,
    /// Records are read again, output suppressed, before anything is emitted.
    pub rebuilding: bool,
}

impl PartitionAssigned<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Info,
            "partition_assigned",
            if self.rebuilding {
                "partition assigned; rebuilding its state before emitting"
            } else {
                "partition assigned"
            },
            &[
                ("topic", V::S(self.topic)),
                ("partition", V::I(self.partition.into())),
                ("start", V::S(self.start)),
                ("suppress_below", V::I(self.suppress_below)),
                ("high_watermark", V::I(self.high_watermark)),
            ],
        );
    }
}

/// A partition was revoked, with the position it had reached and the offset stored.
pub struct PartitionRevoked<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub position: i64,
    pub stored: i64,
}

impl PartitionRevoked<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Info,
            "partition_revoked",
            "partition revoked; its sessions are dropped",
            &[
                ("topic", V::S(self.topic)),
                ("partition", V::I(self.partition.into())),
                ("position", V::I(self.position)),
                ("stored", V::I(self.stored)),
            ],
        );
    }
}

/// The group's committed offsets could not be read on assignment: retried, then (when
/// `giving_up`) every new partition is read from its beginning with nothing suppressed.
pub struct CommittedUnknown<'a> {
    pub error: &'a str,
    pub giving_up: bool,
}

impl CommittedUnknown<'_> {
    pub fn emit(&self, _: &Telemetry) {
        let (level, message) = if self.giving_up {
            (
                Level::Error,
                "committed offsets unknown; reading from the beginning, nothing suppressed",
            )
        } else {
            (
                Level::Warn,
                "could not read the committed offsets; retrying",
            )
        };
        let fields = [("error", V::S(self.error))];
        telemetry::log(level, "committed_unknown", message, &fields);
    }
}

/// A failure around a rebalance or the offsets: the event name says which.
pub enum OffsetTrouble<'a> {
    /// The rebalance callback got an error: the assignment is dropped.
    RebalanceError(&'a str),
    /// The new assignment could not be applied.
    AssignFailed(&'a str),
    /// A new partition's start offset could not be set.
    AssignOffsetFailed(&'a str),
    /// Offsets could not be stored (the partition is no longer assigned, usually).
    StoreFailed(&'a str),
    /// The final commit failed: the next owner replays from the last commit.
    CommitFailed(&'a str),
}

impl OffsetTrouble<'_> {
    pub fn emit(&self, _: &Telemetry) {
        let (level, event, message, error) = match *self {
            OffsetTrouble::RebalanceError(e) => (
                Level::Error,
                "rebalance_error",
                "rebalance failed; dropping the assignment",
                e,
            ),
            OffsetTrouble::AssignFailed(e) => (
                Level::Error,
                "assign_failed",
                "could not apply the new assignment",
                e,
            ),
            OffsetTrouble::AssignOffsetFailed(e) => (
                Level::Error,
                "assign_offset_failed",
                "could not set the start offset",
                e,
            ),
            OffsetTrouble::StoreFailed(e) => (
                Level::Debug,
                "store_failed",
                "could not store offsets (partition no longer assigned?)",
                e,
            ),
            OffsetTrouble::CommitFailed(e) => (
                Level::Warn,
                "commit_failed",
                "final commit failed; the next owner replays from the last commit",
                e,
            ),
        };
        telemetry::log(level, event, message, &[("error", V::S(error))]);
    }
}

/// A revocation or the end of a run could not wait for every acknowledgement: only what was
/// acknowledged is committed.
pub struct SettleIncomplete {
    pub pending: usize,
}

impl SettleIncomplete {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Warn,
            "settle_incomplete",
            "not every message was acknowledged in time; committing only what was",
            &[("pending", V::U(self.pending as u64))],
        );
    }
}

/// The next record of a partition came past the offset expected. Legitimate on compacted
/// topics and past transaction markers; otherwise records went missing, and a rebuild that
/// misses records is not exact. Counted as `sessionguard_offset_gaps_total`.
pub struct OffsetGap<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub expected: i64,
    pub offset: i64,
    pub suppress_below: i64,
}

impl OffsetGap<'_> {
    pub fn emit(&self, telemetry: &Telemetry) {
        telemetry.metrics().offset_gaps += 1;
        telemetry::log(
            Level::Warn,
            "offset_gap",
            "the next record came past the expected offset: records in between were skipped",
            &[
                ("topic", V::S(self.topic)),
                ("partition", V::I(self.partition.into())),
                ("expected", V::I(self.expected)),
                ("offset", V::I(self.offset)),
                ("suppress_below", V::I(self.suppress_below)),
            ],
        );
    }
}

/// A record was rejected. Counted as `sessionguard_rejects_total` by reason; logged only when
/// there is no dead-letter topic (otherwise the dead letter is the record of it).
pub struct Rejected<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reject: &'a Reject,
    pub dead_lettered: bool,
}

impl Rejected<'_> {
    pub fn emit(&self, telemetry: &Telemetry) {
        *telemetry
            .metrics()
            .rejects
            .entry(self.reject.reason)
            .or_default() += 1;
        if self.dead_lettered {
            return;
        }
        let detail = self.reject.to_string();
        telemetry::log(
            Level::Warn,
            "record_rejected",
            "rejected record (no dead-letter topic)",
            &[
                ("topic", V::S(self.topic)),
                ("partition", V::I(self.partition.into())),
                ("offset", V::I(self.offset)),
                ("reason", V::S(self.reject.reason.as_str())),
                ("detail", V::S(&detail)),
            ],
        );
    }
}

/// A decision could not be serialized: it is not produced.
pub struct DecisionUnserializable<'a> {
    pub error: &'a str,
    pub rule_id: &'a str,
}

impl DecisionUnserializable<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Error,
            "decision_unserializable",
            "a decision could not be serialized",
            &[("error", V::S(self.error)), ("rule_id", V::S(self.rule_id))],
        );
    }
}

/// The consumer's poll returned an error other than a broker outage (the connectivity watch
/// reports those); librdkafka retries.
pub struct PollError<'a> {
    pub error: &'a str,
}

impl PollError<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Warn,
            "poll_error",
            "consumer poll error (librdkafka retries)",
            &[("error", V::S(self.error))],
        );
    }
}

/// The progress topic could not be read on assignment: partitions rebuild from older
/// positions (their committed offsets, or their beginning).
pub struct ProgressReadFailed<'a> {
    pub topic: &'a str,
    pub error: &'a str,
}

impl ProgressReadFailed<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Warn,
            "progress_read_failed",
            "could not read the progress topic; rebuilding from older positions",
            &[("topic", V::S(self.topic)), ("error", V::S(self.error))],
        );
    }
}

/// The producer refused a message for a reason other than a full queue; it is sent again.
pub struct ProduceFailed<'a> {
    pub topic: &'a str,
    pub error: &'a str,
}

impl ProduceFailed<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Warn,
            "produce_failed",
            "could not enqueue a message; retrying",
            &[("error", V::S(self.error)), ("topic", V::S(self.topic))],
        );
    }
}

/// A message was not delivered; it is sent again. Counted as
/// `sessionguard_delivery_errors_total`.
pub struct DeliveryFailed<'a> {
    pub topic: &'a str,
    pub error: &'a str,
}

impl DeliveryFailed<'_> {
    pub fn emit(&self, telemetry: &Telemetry) {
        telemetry.metrics().delivery_errors += 1;
        telemetry::log(
            Level::Warn,
            "delivery_failed",
            "a message was not delivered; sending it again",
            &[("error", V::S(self.error)), ("topic", V::S(self.topic))],
        );
    }
}

/// A task grant or completion from the tasks topic was applied to every partition's engine.
pub struct TaskRecordApplied<'a> {
    pub record: &'a crate::grant::TaskRecord,
}

impl TaskRecordApplied<'_> {
    pub fn emit(&self, _: &Telemetry) {
        let r = self.record;
        let (kind, what) = match r.kind {
            crate::grant::TaskRecordKind::Grant(_) => ("grant", "task grant applied"),
            crate::grant::TaskRecordKind::Complete => ("complete", "task completion applied"),
        };
        telemetry::log(
            Level::Info,
            "task_record_applied",
            what,
            &[
                ("kind", V::S(kind)),
                ("agent", V::S(&r.agent)),
                ("task", V::S(&r.task)),
                ("time_ms", V::I(r.time)),
            ],
        );
    }
}

/// `run --archive`: writing the archive failed (a full disk, a directory gone). Archiving
/// stops; detection and delivery go on, so a broken archive never costs a decision.
pub struct ArchiveFailed<'a> {
    pub dir: &'a str,
    pub error: &'a str,
}

impl ArchiveFailed<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Error,
            "archive_failed",
            "writing the archive failed: archiving stops, evaluation goes on",
            &[("dir", V::S(self.dir)), ("error", V::S(self.error))],
        );
    }
}

/// `run --archive`: the archive was closed at the end of the run and its manifest written.
pub struct ArchiveClosed<'a> {
    pub dir: &'a str,
    pub events: u64,
    pub decisions: u64,
    pub files: u64,
}

impl ArchiveClosed<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Info,
            "archive_closed",
            "archive closed and its manifest written",
            &[
                ("dir", V::S(self.dir)),
                ("events", V::U(self.events)),
                ("decisions", V::U(self.decisions)),
                ("files", V::U(self.files)),
            ],
        );
    }
}

/// A record on the tasks topic that is not a task record: skipped.
pub struct TaskRecordRefused<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub error: &'a str,
}

impl TaskRecordRefused<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Warn,
            "task_record_refused",
            "a record on the tasks topic is not a task record; skipped",
            &[
                ("topic", V::S(self.topic)),
                ("partition", V::I(i64::from(self.partition))),
                ("offset", V::I(self.offset)),
                ("error", V::S(self.error)),
            ],
        );
    }
}

/// The tasks topic could not be read (it is read again before the next poll).
pub struct TasksReadFailed<'a> {
    pub topic: &'a str,
    pub error: &'a str,
}

impl TasksReadFailed<'_> {
    pub fn emit(&self, _: &Telemetry) {
        telemetry::log(
            Level::Warn,
            "tasks_read_failed",
            "could not read the tasks topic; retrying",
            &[("topic", V::S(self.topic)), ("error", V::S(self.error))],
        );
    }
}
