//! The one per-record path every driver shares: bytes → normalize → time → engine → decisions.
//!
//! `replay`, `check`, `replay --threads` (per shard, with the time stage on the router), and
//! `run` push records into an [`Evaluator`] and receive decisions and rejects through a
//! [`Sink`]; they own only their sources, sinks and offsets. A record is normalized once; the
//! future guard of [`crate::time::Clocks`] admits it (or holds it until a second record confirms
//! its time); the clocks of every source move, firing due timers; the engine applies it by
//! event time within its session's grace, or reports it late. Everything rejected on the way —
//! unreadable, unknown, late, future — goes to the sink with its reason and its bytes, so
//! nothing is lost from view. Tests push strings.

use std::collections::BTreeMap;
use std::io;

use bumpalo::Bump;

use crate::decision::Decision;
use crate::engine::{human_ms, Applied, Engine};
use crate::event::{Event, Normalizer, Reject, RejectReason, Source};
use crate::grant::{is_task_record, TaskRecord};
use crate::source::Origin;
use crate::time::{Admit, ClockState, Clocks, Released, TimeConfig};

/// Where an evaluator's output goes.
pub trait Sink {
    /// A decision, as soon as it is made.
    fn decision(&mut self, decision: &Decision) -> io::Result<()>;
    /// A record that was not applied, with why and its bytes (empty when framing lost them).
    fn reject(&mut self, origin: Origin, reject: &Reject, bytes: &[u8]) -> io::Result<()>;
    /// A record that normalized, with its event, in the order records arrive (before the time
    /// stage judges it): what an archive keeps. Most sinks ignore it.
    fn event(&mut self, _event: &Event<'_>, _origin: Origin, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

/// What an evaluator has seen, for summaries and metrics.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub records: u64,
    pub events_by_source: BTreeMap<Source, u64>,
    pub rejects_by_reason: BTreeMap<RejectReason, u64>,
    pub late_by_source: BTreeMap<Source, u64>,
    pub future_by_source: BTreeMap<Source, u64>,
    /// Task grants and completions read among the records (docs/agents.md).
    pub task_records: u64,
}

impl Tally {
    pub fn events(&self) -> u64 {
        self.events_by_source.values().sum()
    }

    pub fn late(&self) -> u64 {
        self.late_by_source.values().sum()
    }

    fn rejected(&mut self, reason: RejectReason) {
        *self.rejects_by_reason.entry(reason).or_default() += 1;
    }
}

/// Clock snapshots kept at most; past it every other one is dropped (rebuilds then start a
/// little earlier, still exactly).
const MAX_SNAPSHOTS: usize = 4096;

pub struct Evaluator {
    normalizer: Normalizer,
    engine: Engine,
    clocks: Clocks,
    /// Where a rebuild can start: (origin of a record, the clocks just before it), oldest first,
    /// taken while nothing is held, at least `snapshot_every` records apart.
    snapshots: std::collections::VecDeque<(Origin, ClockState)>,
    snapshot_every: u64,
    since_snapshot: u64,
    scratch: Bump,
    released: Vec<Released>,
    decisions: Vec<Decision>,
    tally: Tally,
}

impl Evaluator {
    pub fn new(engine: Engine, normalizer: Normalizer) -> Evaluator {
        let clocks = Clocks::new(engine.config().time.clone());
        Evaluator {
            normalizer,
            engine,
            clocks,
            snapshots: std::collections::VecDeque::new(),
            snapshot_every: 64,
            since_snapshot: u64::MAX,
            scratch: Bump::new(),
            released: Vec::new(),
            decisions: Vec::new(),
            tally: Tally::default(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn into_engine(self) -> Engine {
        self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// Resumes the clocks from a checkpoint, and moves the engine's with them.
    pub fn resume_clocks(&mut self, state: ClockState) {
        self.clocks.resume(state);
        self.advance_all();
        self.decisions.clear();
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Where the state can be rebuilt from: the origin of a record at or before everything live
    /// sessions and held records depend on, with the clocks just before it. Replaying the input
    /// from there into a fresh evaluator whose clocks were resumed to these gives the same
    /// state. `None` when nothing depends on the past (start at the current position with the
    /// current clocks).
    pub fn rebuild_point(&self) -> Option<(Origin, ClockState)> {
        let bound = self.dependency_bound()?;
        let at = self
            .snapshots
            .partition_point(|(o, _)| o.sort_key() <= bound.sort_key());
        match at.checked_sub(1) {
            Some(i) => Some(self.snapshots[i]),
            None => Some((bound, ClockState::default())),
        }
    }

    /// The oldest input that live sessions or held records depend on.
    fn dependency_bound(&self) -> Option<Origin> {
        self.engine
            .oldest_live_origin()
            .into_iter()
            .chain(self.clocks.held().iter().map(|h| h.origin))
            .min_by_key(|o| o.sort_key())
    }

    /// Notes the clocks before the record at `origin`, now and then, and forgets snapshots no
    /// rebuild can need.
    fn snapshot(&mut self, origin: Origin) {
        self.since_snapshot = self.since_snapshot.saturating_add(1);
        if self.since_snapshot < self.snapshot_every || !self.clocks.held().is_empty() {
            return;
        }
        self.since_snapshot = 0;
        self.snapshots.push_back((origin, self.clocks.state()));
        let bound = self.dependency_bound().unwrap_or(origin).sort_key();
        while self.snapshots.len() >= 2 && self.snapshots[1].0.sort_key() <= bound {
            self.snapshots.pop_front();
        }
        if self.snapshots.len() > MAX_SNAPSHOTS {
            let mut index = 0;
            self.snapshots.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.snapshot_every *= 2;
        }
    }

    /// A stretch of input that could not be framed into a record.
    pub fn push_broken(
        &mut self,
        origin: Origin,
        reject: &Reject,
        bytes: &[u8],
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        self.tally.records += 1;
        self.tally.rejected(reject.reason);
        sink.reject(origin, reject, bytes)
    }

    /// One record. Decisions it completes reach `sink` before this returns.
    pub fn push(&mut self, bytes: &[u8], origin: Origin, sink: &mut dyn Sink) -> io::Result<()> {
        self.tally.records += 1;
        self.snapshot(origin);
        self.scratch.reset();
        let scratch = std::mem::take(&mut self.scratch);
        // An OpenTelemetry export of several spans is read span by span, each with the
        // export's origin (crate::event::otel).
        let result = match crate::event::otel::split_export(bytes) {
            Some(parts) => parts
                .iter()
                .try_for_each(|part| self.push_normalized(part, origin, &scratch, sink)),
            None => self.push_normalized(bytes, origin, &scratch, sink),
        };
        self.scratch = scratch;
        result
    }

    fn push_normalized(
        &mut self,
        bytes: &[u8],
        origin: Origin,
        scratch: &Bump,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let event = match self.normalizer.normalize(bytes, scratch) {
            Ok(event) => event,
            Err(reject)
                if reject.reason == RejectReason::UnknownSource && is_task_record(bytes) =>
            {
                // A task grant or completion among the audit records (docs/agents.md).
                return match TaskRecord::from_json(bytes) {
                    Ok(record) => {
                        self.tally.task_records += 1;
                        self.engine.apply_task(&record);
                        Ok(())
                    }
                    Err(e) => {
                        let reject =
                            Reject::new(RejectReason::InvalidField, format!("task record: {e}"));
                        self.tally.rejected(reject.reason);
                        sink.reject(origin, &reject, bytes)
                    }
                };
            }
            Err(reject) => {
                self.tally.rejected(reject.reason);
                return sink.reject(origin, &reject, bytes);
            }
        };
        *self.tally.events_by_source.entry(event.source).or_default() += 1;
        sink.event(&event, origin, bytes)?;
        let admit = self.clocks.admit(
            event.source,
            event.time.millis(),
            bytes,
            origin,
            &mut self.released,
        );
        self.settle_released(sink)?;
        if admit == Admit::Now {
            self.clocks.applied(event.source, event.time.millis());
            self.advance_all();
            let applied = self.engine.process(&event, origin, &mut self.decisions);
            self.report(applied, event.source, origin, bytes, sink)?;
        }
        self.flush(sink)
    }

    /// Applies or rejects what the future guard released.
    fn settle_released(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        for released in std::mem::take(&mut self.released) {
            match released {
                Released::Apply(held) => {
                    self.clocks.applied(held.source, held.time);
                    self.advance_all();
                    let scratch = Bump::new();
                    // It normalized once on the way in, so it cannot fail differently now.
                    if let Ok(event) = self.normalizer.normalize(&held.bytes, &scratch) {
                        let applied = self
                            .engine
                            .process(&event, held.origin, &mut self.decisions);
                        self.report(applied, held.source, held.origin, &held.bytes, sink)?;
                    }
                }
                Released::Future { held, ahead_ms } => {
                    *self.tally.future_by_source.entry(held.source).or_default() += 1;
                    self.tally.rejected(RejectReason::Future);
                    let reject = future_reject(held.source, ahead_ms);
                    sink.reject(held.origin, &reject, &held.bytes)?;
                }
            }
        }
        Ok(())
    }

    fn report(
        &mut self,
        applied: Applied,
        source: Source,
        origin: Origin,
        bytes: &[u8],
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let Applied::Late { behind_ms } = applied else {
            return Ok(());
        };
        *self.tally.late_by_source.entry(source).or_default() += 1;
        self.tally.rejected(RejectReason::Late);
        let reject = late_reject(self.clocks.config(), source, behind_ms);
        sink.reject(origin, &reject, bytes)
    }

    /// Moves the engine's clock of every source to where the clocks stand before a record
    /// (at the end of the input, [`Engine::finish`] moves them to each source's newest).
    fn advance_all(&mut self) {
        let marks = self.clocks.watermarks(false);
        self.engine.advance_all(&marks, &mut self.decisions);
    }

    fn flush(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        canonical_order(&mut self.decisions);
        for decision in self.decisions.drain(..) {
            sink.decision(&decision)?;
        }
        Ok(())
    }

    /// The end of the input: records still held are `future`, and every source's clock moves to
    /// its newest record (nothing more can arrive), firing the timers due by then.
    pub fn finish(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        self.clocks.finish(&mut self.released);
        self.settle_released(sink)?;
        let marks = self.clocks.watermarks(true);
        self.engine.finish(&marks, &mut self.decisions);
        self.flush(sink)
    }

    /// Like [`Self::finish`] for an input that goes on (a topic): held records are judged, but
    /// the clocks stay where the records put them.
    pub fn pause(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        self.clocks.finish(&mut self.released);
        self.settle_released(sink)?;
        self.flush(sink)
    }
}

/// The order of the decisions made at one record (timers of several sources, the record's own):
/// by decision time, then id — intrinsic to the decisions, so one engine and sharded engines
/// emit them alike.
pub fn canonical_order(decisions: &mut [Decision]) {
    decisions.sort_by(|a, b| (a.time, &a.decision_id).cmp(&(b.time, &b.decision_id)));
}

/// The reject of a record more than its grace older than its session's newest.
pub fn late_reject(time: &TimeConfig, source: Source, behind_ms: i64) -> Reject {
    Reject::new(
        RejectReason::Late,
        format!(
            "{} older than the newest record of its session (grace {})",
            human_ms(behind_ms),
            human_ms(time.grace(source))
        ),
    )
}

/// The reject of a record the future guard never saw confirmed.
pub fn future_reject(source: Source, ahead_ms: i64) -> Reject {
    Reject::new(
        RejectReason::Future,
        format!(
            "{} ahead of the newest {} record, and no other record confirmed its time",
            human_ms(ahead_ms),
            source.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::rule::RuleSet;

    #[derive(Default)]
    struct Collect {
        decisions: Vec<Decision>,
        rejects: Vec<(Origin, RejectReason)>,
    }

    impl Sink for Collect {
        fn decision(&mut self, decision: &Decision) -> io::Result<()> {
            self.decisions.push(decision.clone());
            Ok(())
        }
        fn reject(&mut self, origin: Origin, reject: &Reject, _: &[u8]) -> io::Result<()> {
            self.rejects.push((origin, reject.reason));
            Ok(())
        }
    }

    fn evaluator() -> Evaluator {
        let rules = RuleSet::load(&[std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rules"
        ))])
        .expect("the shipped pack loads");
        Evaluator::new(
            Engine::new(rules, EngineConfig::default()),
            Normalizer::default(),
        )
    }

    fn okta(time: &str, session: &str) -> String {
        format!(
            r#"{{"uuid":"u-{time}","published":"{time}","eventType":"user.session.access_admin_app","actor":{{"id":"00u1","type":"User","alternateId":"a@example.com"}},"authenticationContext":{{"rootSessionId":"{session}"}},"outcome":{{"result":"SUCCESS"}},"client":{{"ipAddress":"198.51.100.7"}}}}"#
        )
    }

    fn at(line: u64) -> Origin {
        Origin::File { file: 0, line }
    }

    #[test]
    fn late_and_future_records_are_rejected_with_their_reason() {
        let mut e = evaluator();
        let mut sink = Collect::default();
        e.push(
            okta("2024-01-01T10:00:00Z", "s1").as_bytes(),
            at(1),
            &mut sink,
        )
        .unwrap();
        // 30 minutes older than its session's newest: past the 20-minute grace.
        e.push(
            okta("2024-01-01T09:30:00Z", "s1").as_bytes(),
            at(2),
            &mut sink,
        )
        .unwrap();
        // Another session of the same age is not late: lateness is per session.
        e.push(
            okta("2024-01-01T09:30:00Z", "s2").as_bytes(),
            at(3),
            &mut sink,
        )
        .unwrap();
        // A year ahead: held, then judged future at the end.
        e.push(
            okta("2025-01-01T10:00:00Z", "s3").as_bytes(),
            at(4),
            &mut sink,
        )
        .unwrap();
        e.push(b"{not json", at(5), &mut sink).unwrap();
        e.finish(&mut sink).unwrap();
        assert_eq!(
            sink.rejects,
            vec![
                (at(2), RejectReason::Late),
                (at(5), RejectReason::NotJson),
                (at(4), RejectReason::Future)
            ]
        );
        assert_eq!(e.tally().late(), 1);
        assert_eq!(e.tally().future_by_source.get(&Source::Okta), Some(&1));
        assert_eq!(e.tally().records, 5);
    }
}
