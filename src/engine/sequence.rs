//! Sequences: steps in event-time order within `maxspan`, whatever order their records arrive
//! in, optionally broken by an `until` event between them.
//!
//! Each step keeps the session's recent events that satisfy it (bounded; those too old to
//! start or finish a sequence any more are dropped). On every new hit the engine looks for the
//! earliest chain step 1 ≤ step 2 ≤ … by event time (distinct events; events of the same time
//! count as in order whichever arrived first, since sources stamp whole seconds) that spans at most
//! `maxspan`, has no `until` inside it, and uses only events after the last completed chain; a
//! step with an aggregate completes where its aggregate, over its events after the previous
//! step, first reaches the threshold. A chain found is new (it needs the event in hand), so it
//! fires; its events are then spent.

use smallvec::SmallVec;

use crate::rule::{StepAggregate, Threshold};
use crate::source::Origin;

use super::window::Aggregate;

/// Hits kept per step at most (the newest are kept).
const MAX_HITS: usize = 256;

/// An event's place in a session: event time, then arrival.
pub type Key = (i64, u64);

#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub key: Key,
    pub origin: Origin,
    /// Value hash (distinct) or amount in thousandths (sum), for an aggregated step.
    pub value: i64,
}

#[derive(Clone, Debug, Default)]
pub struct SequenceState {
    hits: Vec<Vec<Hit>>,
    untils: Vec<Key>,
    /// The end of the last completed chain: events up to it are spent.
    spent: Option<Key>,
}

/// A completed chain: the hit that completed each step, the first and last by time.
#[derive(Clone, Debug)]
pub struct Chain {
    pub started: i64,
    pub completed: i64,
    /// Evidence: the hits of the chain, in order (aggregated steps: the hits counted).
    pub evidence: Vec<(i64, Origin)>,
}

/// A step's aggregate in window terms.
pub fn step_window(aggregate: &StepAggregate) -> (Aggregate, i64, &Threshold) {
    match aggregate {
        StepAggregate::EventCount {
            timespan_ms,
            threshold,
        } => (Aggregate::Count, *timespan_ms, threshold),
        StepAggregate::ValueCount {
            timespan_ms,
            threshold,
            ..
        } => (Aggregate::Distinct, *timespan_ms, threshold),
        StepAggregate::ValueSum {
            timespan_ms,
            threshold,
            ..
        } => (Aggregate::Sum, *timespan_ms, threshold),
    }
}

impl SequenceState {
    /// Records that the event at `key` satisfies `step`.
    pub fn hit(&mut self, steps: usize, step: usize, hit: Hit) {
        if self.hits.len() < steps {
            self.hits.resize_with(steps, Vec::new);
        }
        let hits = &mut self.hits[step];
        let at = hits.partition_point(|h| h.key <= hit.key);
        hits.insert(at, hit);
        if hits.len() > MAX_HITS {
            hits.remove(0);
        }
    }

    /// Takes in another state's hits and ends (a parent session's, when a chained session is
    /// linked to it late); what either has spent stays spent.
    pub fn absorb(&mut self, other: &SequenceState) {
        let steps = self.hits.len().max(other.hits.len());
        for (step, hits) in other.hits.iter().enumerate() {
            for hit in hits {
                self.hit(steps, step, *hit);
            }
        }
        for until in &other.untils {
            self.until(*until);
        }
        self.spent = self.spent.max(other.spent);
    }

    /// How many steps have a hit (that is not spent), for `explain`.
    pub fn steps_hit(&self) -> usize {
        self.hits
            .iter()
            .filter(|hits| hits.iter().any(|h| self.spent.is_none_or(|s| h.key > s)))
            .count()
    }

    pub fn until(&mut self, key: Key) {
        let at = self.untils.partition_point(|u| *u <= key);
        self.untils.insert(at, key);
        if self.untils.len() > MAX_HITS {
            self.untils.remove(0);
        }
    }

    /// Drops what can no longer take part in a chain: events older than `horizon`.
    pub fn forget_before(&mut self, horizon: i64) {
        for hits in &mut self.hits {
            let old = hits.partition_point(|h| h.key.0 < horizon);
            hits.drain(..old);
        }
        let old = self.untils.partition_point(|u| u.0 < horizon);
        self.untils.drain(..old);
    }

    /// Looks for the earliest complete chain that completes before `before` (its session's
    /// kill: a chain completing later could not decide, and must not be spent); spends it when
    /// found.
    pub fn complete(
        &mut self,
        aggregates: &[Option<(Aggregate, i64, Threshold)>],
        maxspan: i64,
        max_evidence: usize,
        before: i64,
    ) -> Option<Chain> {
        if self.hits.len() < aggregates.len() || aggregates.is_empty() {
            return None;
        }
        let floor = self.spent;
        let starts: Vec<Key> = self.completions(0, floor, aggregates[0].as_ref(), &[]);
        for start in starts {
            let mut evidence = Vec::new();
            let mut prev = start;
            let mut used: SmallVec<[Key; 4]> = SmallVec::new();
            used.push(start);
            self.collect(0, floor, start, aggregates[0].as_ref(), &mut evidence);
            let mut complete = true;
            for (step, aggregate) in aggregates.iter().enumerate().skip(1) {
                let Some(next) = self
                    .completions(step, Some(prev), aggregate.as_ref(), &used)
                    .into_iter()
                    .next()
                else {
                    complete = false;
                    break;
                };
                self.collect(step, Some(prev), next, aggregate.as_ref(), &mut evidence);
                used.push(next);
                prev = next;
            }
            if !complete {
                // Later starts cannot complete either: every later step was searched after an
                // earlier point already.
                return None;
            }
            let started = start.0;
            if prev.0.saturating_sub(started) > maxspan || prev.0 >= before {
                continue;
            }
            if self.untils.iter().any(|u| *u > start && *u < prev) {
                continue;
            }
            let last = used.iter().copied().max().unwrap_or(prev);
            self.spent = Some(last);
            for hits in &mut self.hits {
                hits.retain(|h| h.key > last);
            }
            self.untils.retain(|u| *u > prev);
            evidence.truncate(max_evidence.max(1));
            return Some(Chain {
                started,
                completed: prev.0,
                evidence,
            });
        }
        None
    }

    /// Where the step can complete using only events after `after` (not among `used`), earliest
    /// first: each hit for a plain step; each point where the aggregate reaches its threshold
    /// otherwise.
    fn completions(
        &self,
        step: usize,
        after: Option<Key>,
        aggregate: Option<&(Aggregate, i64, Threshold)>,
        used: &[Key],
    ) -> Vec<Key> {
        let hits = self.after(step, after);
        let hits = hits.iter().filter(|h| !used.contains(&h.key));
        match aggregate {
            None => hits.map(|h| h.key).collect(),
            Some(&(kind, span, threshold)) => {
                let mut window = super::window::SlidingWindow::new(kind, span);
                hits.filter(|h| {
                    let entry = super::window::Entry {
                        time: h.key.0,
                        origin: h.origin,
                        value: h.value,
                    };
                    window.push(entry, &threshold, 0).is_some()
                })
                .map(|h| h.key)
                .collect()
            }
        }
    }

    /// The step's hits that may follow `after`: later in event time, or at the same time in
    /// any arrival order — sources stamp whole seconds (CloudTrail), and events of one second
    /// arrive in no particular order, so a tie in event time is not evidence of order.
    fn after(&self, step: usize, after: Option<Key>) -> &[Hit] {
        let hits = &self.hits[step];
        let from = after.map_or(0, |k| hits.partition_point(|h| h.key.0 < k.0));
        &hits[from..]
    }

    /// Appends the evidence of a step completed at `at`: the hit, or the aggregate's hits.
    fn collect(
        &self,
        step: usize,
        after: Option<Key>,
        at: Key,
        aggregate: Option<&(Aggregate, i64, Threshold)>,
        evidence: &mut Vec<(i64, Origin)>,
    ) {
        let span = aggregate.map_or(0, |a| a.1);
        for h in self.after(step, after) {
            if h.key > at {
                break;
            }
            if h.key == at || (aggregate.is_some() && h.key.0 > at.0.saturating_sub(span)) {
                evidence.push((h.key.0, h.origin));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(time: i64, n: u64) -> Hit {
        Hit {
            key: (time, n),
            origin: Origin::File { file: 0, line: n },
            value: 1,
        }
    }

    fn plain(steps: usize) -> Vec<Option<(Aggregate, i64, Threshold)>> {
        vec![None; steps]
    }

    /// A plain step, then one that completes when `at_least` of its events fall within `span`.
    fn then_count(span: i64, at_least: f64) -> Vec<Option<(Aggregate, i64, Threshold)>> {
        let threshold = Threshold {
            op: crate::rule::CmpOp::Gte,
            value: at_least,
        };
        vec![None, Some((Aggregate::Count, span, threshold))]
    }

    fn evidence_times(chain: &Chain) -> Vec<i64> {
        chain.evidence.iter().map(|(t, _)| *t).collect()
    }

    /// Feeds (step, time) hits in the given order; returns the completion times.
    fn run(hits: &[(usize, i64)], maxspan: i64) -> Vec<i64> {
        let mut s = SequenceState::default();
        let mut out = Vec::new();
        for (n, &(step, time)) in hits.iter().enumerate() {
            s.hit(2, step, hit(time, n as u64));
            if let Some(chain) = s.complete(&plain(2), maxspan, 20, i64::MAX) {
                out.push(chain.completed);
            }
        }
        out
    }

    #[test]
    fn steps_in_event_time_order_whatever_the_arrival() {
        assert_eq!(run(&[(0, 10), (1, 20)], 100), vec![20]);
        assert_eq!(run(&[(1, 20), (0, 10)], 100), vec![20]);
        // Step 2 before step 1 in event time is no sequence.
        assert_eq!(run(&[(1, 5), (0, 10)], 100), Vec::<i64>::new());
    }

    #[test]
    fn maxspan_is_measured_from_the_latest_start_that_fits() {
        assert_eq!(run(&[(0, 0), (0, 80), (1, 150)], 100), vec![150]);
        assert_eq!(run(&[(0, 0), (1, 150)], 100), Vec::<i64>::new());
    }

    #[test]
    fn forgetting_old_untils_keeps_the_newer_ones() {
        // Untils at 100 and 300 (either arrival order); forgetting before 200 drops only 100,
        // so 300 still breaks a chain from 250 to 350.
        for untils in [[(100, 0), (300, 1)], [(300, 1), (100, 0)]] {
            let mut s = SequenceState::default();
            for u in untils {
                s.until(u);
            }
            s.forget_before(200);
            s.hit(2, 0, hit(250, 2));
            s.hit(2, 1, hit(350, 3));
            assert!(
                s.complete(&plain(2), 1000, 20, i64::MAX).is_none(),
                "{untils:?}"
            );
        }
    }

    #[test]
    fn the_newest_max_hits_untils_are_kept() {
        // MAX_HITS untils at 1, 2, … MAX_HITS: the oldest still breaks a chain around it.
        let mut s = SequenceState::default();
        for t in 1..=MAX_HITS as i64 {
            s.until((t * 10, t as u64));
        }
        s.hit(2, 0, hit(5, 1000));
        s.hit(2, 1, hit(15, 1001));
        assert!(
            s.complete(&plain(2), 1000, 20, i64::MAX).is_none(),
            "the until at 10 is kept"
        );
    }

    #[test]
    fn an_aggregated_step_counts_only_events_after_the_previous_step() {
        let aggregates = then_count(50, 3.0);
        let mut s = SequenceState::default();
        for (n, t) in [5, 6, 7].into_iter().enumerate() {
            s.hit(2, 1, hit(t, n as u64));
        }
        s.hit(2, 0, hit(10, 3));
        assert!(s.complete(&aggregates, 100, 20, i64::MAX).is_none());
        s.hit(2, 1, hit(12, 4));
        s.hit(2, 1, hit(13, 5));
        assert!(s.complete(&aggregates, 100, 20, i64::MAX).is_none());
        s.hit(2, 1, hit(11, 6)); // late
        let chain = s
            .complete(&aggregates, 100, 20, i64::MAX)
            .expect("three reads after the grant");
        assert_eq!((chain.started, chain.completed), (10, 13));
        assert_eq!(chain.evidence.len(), 4);
    }

    #[test]
    fn steps_of_the_same_second_are_in_order_whichever_arrives_first() {
        assert_eq!(run(&[(1, 10), (0, 10)], 100), vec![10]);
    }

    #[test]
    fn a_plain_steps_evidence_is_the_hit_that_completed_it() {
        // The start at 0 is too early for maxspan; the chain runs from 80.
        let mut s = SequenceState::default();
        s.hit(2, 0, hit(0, 0));
        s.hit(2, 0, hit(80, 1));
        s.hit(2, 1, hit(150, 2));
        let chain = s
            .complete(&plain(2), 100, 20, i64::MAX)
            .expect("80 then 150");
        assert_eq!(evidence_times(&chain), [80, 150]);
    }

    #[test]
    fn an_aggregated_steps_evidence_is_the_hits_inside_its_span() {
        // Two reads within 50 after the grant: the read exactly 50 before the completing one
        // is outside the span, as in a window, and not in the evidence.
        let aggregates = then_count(50, 2.0);
        let mut s = SequenceState::default();
        s.hit(2, 0, hit(0, 0));
        s.hit(2, 1, hit(10, 1));
        s.hit(2, 1, hit(60, 2));
        assert!(
            s.complete(&aggregates, 100, 20, i64::MAX).is_none(),
            "10 left the span at 60"
        );
        s.hit(2, 1, hit(60, 3));
        let chain = s
            .complete(&aggregates, 100, 20, i64::MAX)
            .expect("two reads at 60");
        assert_eq!(evidence_times(&chain), [0, 60, 60]);
    }

    #[test]
    fn a_chain_spanning_exactly_maxspan_completes() {
        assert_eq!(run(&[(0, 0), (1, 100)], 100), vec![100]);
        assert_eq!(run(&[(0, 0), (1, 101)], 100), Vec::<i64>::new());
    }

    #[test]
    fn a_state_without_hits_completes_nothing() {
        assert!(SequenceState::default()
            .complete(&plain(2), 100, 20, i64::MAX)
            .is_none());
    }

    #[test]
    fn only_an_until_strictly_inside_the_chain_breaks_it() {
        // Between the steps it breaks the chain; before the start, or on the start or the end
        // (the same record matched a step and the until), it does not.
        let cases = [
            ((15, 5), None),
            ((5, 9), Some(20)),
            ((10, 0), Some(20)),
            ((20, 1), Some(20)),
        ];
        for (until, completed) in cases {
            let mut s = SequenceState::default();
            s.until(until);
            s.hit(2, 0, hit(10, 0));
            s.hit(2, 1, hit(20, 1));
            let chain = s.complete(&plain(2), 100, 20, i64::MAX);
            assert_eq!(chain.map(|c| c.completed), completed, "until at {until:?}");
        }
    }

    #[test]
    fn a_chain_spends_its_events_and_leaves_the_later_ones() {
        // Delivered out of order: the second chain's end and an until between its steps come
        // before the first chain completes.
        let mut s = SequenceState::default();
        s.hit(2, 1, hit(50, 0));
        s.until((45, 1));
        s.hit(2, 1, hit(20, 2));
        s.hit(2, 0, hit(10, 3));
        let first = s
            .complete(&plain(2), 100, 20, i64::MAX)
            .expect("10 then 20");
        assert_eq!((first.started, first.completed), (10, 20));
        // A start in the second the first chain ended does not reuse its spent end.
        s.hit(2, 0, hit(20, 4));
        assert!(
            s.complete(&plain(2), 100, 20, i64::MAX).is_none(),
            "45 breaks 20 → 50"
        );
        // The until at 45, delivered before the first chain, still breaks 40 → 50.
        s.hit(2, 0, hit(40, 5));
        assert!(s.complete(&plain(2), 100, 20, i64::MAX).is_none());
        s.hit(2, 0, hit(47, 6));
        let second = s
            .complete(&plain(2), 100, 20, i64::MAX)
            .expect("47 then 50");
        assert_eq!((second.started, second.completed), (47, 50));
    }

    #[test]
    fn a_chain_completing_at_or_after_the_kill_is_neither_found_nor_spent() {
        // Killed at 50: 10 → 50 completes on the kill and cannot decide; it stays unspent, so
        // the 30 that arrives later still makes 10 → 30, which completes before the kill.
        let mut s = SequenceState::default();
        s.hit(2, 0, hit(10, 0));
        s.hit(2, 1, hit(50, 1));
        assert!(s.complete(&plain(2), 100, 20, 50).is_none());
        assert_eq!(
            s.complete(&plain(2), 100, 20, 51).map(|c| c.completed),
            Some(50)
        );
        let mut s = SequenceState::default();
        s.hit(2, 0, hit(10, 0));
        s.hit(2, 1, hit(50, 1));
        assert!(s.complete(&plain(2), 100, 20, 50).is_none());
        s.hit(2, 1, hit(30, 2));
        let chain = s.complete(&plain(2), 100, 20, 50).expect("10 then 30");
        assert_eq!((chain.started, chain.completed), (10, 30));
    }

    #[test]
    fn the_newest_max_hits_of_a_step_are_kept() {
        let mut s = SequenceState::default();
        for t in 1..=MAX_HITS as i64 + 1 {
            s.hit(2, 0, hit(t, t as u64));
        }
        s.hit(2, 1, hit(1_000, 1_000));
        let chain = s
            .complete(&plain(2), 10_000, 20, i64::MAX)
            .expect("a chain");
        assert_eq!(
            chain.started,
            2,
            "the oldest of {} was dropped",
            MAX_HITS + 1
        );
    }

    #[test]
    fn steps_hit_counts_the_steps_with_an_unspent_hit() {
        let mut s = SequenceState::default();
        s.hit(3, 0, hit(10, 0));
        s.hit(3, 1, hit(20, 1));
        assert_eq!(s.steps_hit(), 2);
        s.complete(&plain(2), 100, 20, i64::MAX)
            .expect("two steps of two");
        assert_eq!(s.steps_hit(), 0, "both spent");
        s.hit(3, 2, hit(30, 2));
        assert_eq!(s.steps_hit(), 1);
    }

    #[test]
    fn forgetting_drops_only_what_is_older_than_the_horizon() {
        let mut s = SequenceState::default();
        s.hit(2, 0, hit(10, 0));
        s.hit(2, 0, hit(100, 3));
        s.until((50, 1));
        s.until((100, 2));
        s.until((150, 4));
        s.forget_before(100);
        assert_eq!(s.untils, [(100, 2), (150, 4)]);
        assert_eq!(s.hits[0].len(), 1);
        s.hit(2, 1, hit(120, 5));
        let chain = s
            .complete(&plain(2), 1_000, 20, i64::MAX)
            .expect("100 → 120");
        assert_eq!(chain.started, 100, "the hit at 10 is forgotten");
    }
}
