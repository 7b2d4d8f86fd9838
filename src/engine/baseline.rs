//! A session's baseline of values (networks, countries, scopes …), learnt from its earliest
//! matching events by event time, and the values outside it.
//!
//! The baseline is the values of the session's first `events` matching events within
//! `timespan` of the first — by event time, not arrival. When an earlier event arrives late, the
//! learning period moves back to it: it joins the baseline, and an event that no longer belongs
//! to the learning period is judged as if it had arrived after it (its value, if outside the
//! baseline, fires then). So a stolen token replayed from a new network is caught even when the
//! attacker's record is delivered before the owner's earlier ones.
//!
//! A value found outside while the learning period is still open to records not yet arrived
//! (an earlier record of the owner may yet carry the same value) is *held*, not reported: the
//! engine sets a timer at [`Baseline::open_until`] on the source's clock, and when the clock
//! passes it (no record that could join the learning period can still arrive within the grace)
//! [`Baseline::release`] reports the held values still outside the settled baseline. Once the
//! learning period is settled — every finding after the first minutes of a session — a value
//! outside is reported on the record that brings it.

use smallvec::SmallVec;

use crate::decision::PrincipalRef;
use crate::rule::Learn;
use crate::source::Origin;

/// Baselines stop growing here, so a session cannot learn its way to an unbounded set.
const MAX_BASELINE_VALUES: usize = 64;

/// One value of a learning event.
#[derive(Clone, Copy, Debug)]
struct Learnt {
    time: i64,
    origin: Origin,
    hash: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Baseline {
    /// Values of the learning events, sorted by event time.
    learnt: Vec<Learnt>,
    /// Values seen after learning (so each fires once).
    later: SmallVec<[i64; 2]>,
    /// Values found outside before the learning period settled (boxed: rare).
    pending: Option<Box<Pending>>,
}

/// Findings held until the learning period settles, and the timer set for them.
#[derive(Clone, Debug)]
struct Pending {
    held: Vec<Held>,
    due: i64,
}

/// A value found outside the baseline and held: the finding, and what its decision shows of the
/// record that brought it, kept since that record is gone by the time the finding is reported.
#[derive(Clone, Debug)]
pub struct Held {
    pub outside: Outside,
    /// The value as text (empty for a value of an event that left the learning period).
    pub text: String,
    pub principal: PrincipalRef,
    /// The record's action, when the value was the record's own (not a leaving event's).
    pub action: Option<Box<str>>,
}

/// A value outside the baseline: which one (its index among the event's values, or the
/// learning event it came from), and the baseline it was judged against.
#[derive(Clone, Debug, PartialEq)]
pub struct Outside {
    /// When the value was seen, and where: the event in hand, or an event that left the
    /// learning period because an earlier one arrived.
    pub time: i64,
    pub origin: Origin,
    /// Index of the value among the event's values (`None`: a value of an earlier event).
    pub value_index: Option<usize>,
    /// The value's hash.
    pub hash: i64,
    /// The baseline: its first event, how many values and events it holds.
    pub first: (i64, Origin),
    pub values: usize,
    pub events: usize,
}

impl Baseline {
    fn learning_events(&self) -> usize {
        let mut n = 0;
        let mut last = None;
        for l in &self.learnt {
            if last != Some((l.time, l.origin)) {
                n += 1;
                last = Some((l.time, l.origin));
            }
        }
        n
    }

    /// Distinct values the learning events brought (values seen after learning are not the
    /// baseline, and counting them would make a report depend on when it is made).
    fn distinct_values(&self) -> usize {
        let mut seen: SmallVec<[i64; 8]> = SmallVec::new();
        for h in self.learnt.iter().map(|l| l.hash) {
            if !seen.contains(&h) {
                seen.push(h);
            }
        }
        seen.len()
    }

    fn known(&self, hash: i64) -> bool {
        self.learnt.iter().any(|l| l.hash == hash) || self.later.contains(&hash)
    }

    fn remember(&mut self, hash: i64) {
        if !self.known(hash) && self.learnt.len() + self.later.len() < MAX_BASELINE_VALUES {
            self.later.push(hash);
        }
    }

    /// Takes an event's values at `time`; returns the first value found outside the baseline.
    pub fn observe(
        &mut self,
        learn: &Learn,
        time: i64,
        origin: Origin,
        hashes: &[i64],
    ) -> Option<Outside> {
        let first = self.learnt.first().map_or(time, |l| l.time).min(time);
        let before = self
            .learnt
            .iter()
            .filter(|l| (l.time, l.origin.sort_key()) < (time, origin.sort_key()))
            .fold((0, None), |(n, last), l| {
                let key = Some((l.time, l.origin));
                (n + usize::from(last != key), key)
            })
            .0;
        let learning =
            before < learn.events as usize && time.saturating_sub(first) < learn.timespan_ms;
        if !learning {
            let found = hashes.iter().position(|h| !self.known(*h));
            let outside = found.map(|i| self.outside(time, origin, Some(i), hashes[i]));
            for &h in hashes {
                self.remember(h);
            }
            return outside;
        }
        for &hash in hashes {
            let at = self
                .learnt
                .partition_point(|l| (l.time, l.origin.sort_key()) <= (time, origin.sort_key()));
            if self.learnt.len() < MAX_BASELINE_VALUES {
                // Exact growth: a baseline lives in every session a rule matched, and holds
                // only a few values (a Vec's first growth would reserve four).
                self.learnt.reserve_exact(1);
                self.learnt.insert(at, Learnt { time, origin, hash });
            }
        }
        if hashes.is_empty() {
            return None;
        }
        // Events that no longer belong to the learning period are judged as later events.
        let mut outside = None;
        while let Some(last) = self.learnt.last().copied() {
            let first = self.learnt[0].time;
            let over_count = self.learning_events() > learn.events as usize;
            let over_time = last.time.saturating_sub(first) >= learn.timespan_ms;
            if !over_count && !over_time {
                break;
            }
            let leaving: Vec<Learnt> = {
                let keep = self
                    .learnt
                    .iter()
                    .position(|l| (l.time, l.origin) == (last.time, last.origin))
                    .unwrap_or(self.learnt.len());
                self.learnt.split_off(keep)
            };
            for l in leaving.iter().rev() {
                if !self.known(l.hash) && outside.is_none() {
                    outside = Some(self.outside(l.time, l.origin, None, l.hash));
                }
            }
            for l in &leaving {
                self.remember(l.hash);
            }
        }
        outside
    }

    /// Values learnt, and values seen outside it since, for `explain`.
    pub fn sizes(&self) -> (usize, usize) {
        let mut learnt: Vec<i64> = self.learnt.iter().map(|l| l.hash).collect();
        learnt.sort_unstable();
        learnt.dedup();
        (learnt.len(), self.later.len())
    }

    /// The latest event time at which a record could still join the learning period: the last
    /// learning event's once the period holds its count of events (an earlier record would push
    /// that one out), else the end of its timespan. Arrivals only ever move it earlier.
    pub fn open_until(&self, learn: &Learn) -> i64 {
        let Some(first) = self.learnt.first() else {
            return i64::MAX;
        };
        if self.learning_events() >= learn.events as usize {
            self.learnt.last().map_or(i64::MAX, |l| l.time)
        } else {
            first
                .time
                .saturating_add(learn.timespan_ms)
                .saturating_sub(1)
        }
    }

    /// Holds a finding made while the learning period was open at `clock`. Returns the time a
    /// timer must be set for, when the held findings need one earlier than the one set.
    pub fn hold(&mut self, learn: &Learn, held: Held) -> Option<i64> {
        let pending = self.pending.get_or_insert_with(|| {
            Box::new(Pending {
                held: Vec::new(),
                due: i64::MAX,
            })
        });
        pending.held.push(held);
        self.reschedule(learn)
    }

    /// After an arrival: the time to set a timer for, when the learning period of held findings
    /// now closes earlier than the timer set.
    pub fn reschedule(&mut self, learn: &Learn) -> Option<i64> {
        self.pending.as_ref()?;
        let until = self.open_until(learn);
        let pending = self.pending.as_mut()?;
        (until < pending.due).then(|| {
            pending.due = until;
            until
        })
    }

    /// A value seen after learning at `(time, origin)` that a held finding saw later: the
    /// finding is moved to this earlier record (as it would have been in time order). Returns
    /// the finding to update what it shows of the record.
    pub fn earlier_sighting(&mut self, hash: i64, time: i64, origin: Origin) -> Option<&mut Held> {
        let held = self
            .pending
            .as_mut()?
            .held
            .iter_mut()
            .find(|h| h.outside.hash == hash && h.outside.value_index.is_some())?;
        let later = (held.outside.time, held.outside.origin.sort_key()) > (time, origin.sort_key());
        later.then(|| {
            held.outside.time = time;
            held.outside.origin = origin;
            held
        })
    }

    /// The timer set for `due` went off: the learning period is settled. Returns the held
    /// findings whose value is still outside the baseline, by event time, each with the
    /// settled baseline's figures, and how many were refuted (their value was learnt after
    /// all); nothing when the timer is stale (a later one replaced it).
    pub fn release(&mut self, due: i64) -> (Vec<Held>, usize) {
        if self.pending.as_ref().is_none_or(|p| p.due != due) {
            return (Vec::new(), 0);
        }
        let Some(pending) = self.pending.take() else {
            return (Vec::new(), 0);
        };
        let held = pending.held.len();
        let mut out: Vec<Held> = pending
            .held
            .into_iter()
            .filter(|h| !self.learnt.iter().any(|l| l.hash == h.outside.hash))
            .collect();
        let refuted = held - out.len();
        out.sort_by_key(|h| (h.outside.time, h.outside.origin.sort_key()));
        for h in &mut out {
            let o = &h.outside;
            h.outside = self.outside(o.time, o.origin, o.value_index, o.hash);
        }
        (out, refuted)
    }

    fn outside(&self, time: i64, origin: Origin, value_index: Option<usize>, hash: i64) -> Outside {
        let first = self
            .learnt
            .first()
            .map_or((time, origin), |l| (l.time, l.origin));
        Outside {
            time,
            origin,
            value_index,
            hash,
            first,
            values: self.distinct_values(),
            events: self.learning_events(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEARN: Learn = Learn {
        events: 3,
        timespan_ms: 600_000,
    };

    fn at(line: u64) -> Origin {
        Origin::File { file: 0, line }
    }

    /// Events as (time, value); returns the times of the values found outside.
    fn run(events: &[(i64, i64)]) -> Vec<i64> {
        let mut b = Baseline::default();
        events
            .iter()
            .enumerate()
            .filter_map(|(i, &(t, v))| b.observe(&LEARN, t, at(i as u64), &[v]))
            .map(|o| o.time)
            .collect()
    }

    #[test]
    fn learns_the_first_events_then_reports_a_new_value() {
        assert_eq!(run(&[(0, 1), (10, 1), (20, 2), (30, 2), (40, 3)]), vec![40]);
    }

    #[test]
    fn learning_ends_after_its_timespan() {
        assert_eq!(run(&[(0, 1), (700_000, 2)]), vec![700_000]);
    }

    #[test]
    fn the_attackers_record_first_still_fires() {
        // Sorted: 0,10,20 learn value 1; 40 brings value 9. Delivered: 40 first.
        assert_eq!(run(&[(40, 9), (0, 1), (10, 1), (20, 1)]), vec![40]);
        assert_eq!(run(&[(10, 1), (40, 9), (20, 1), (0, 1)]), vec![40]);
    }

    #[test]
    fn every_order_finds_the_same_outsider() {
        let events = [(0, 1), (10, 1), (20, 2), (40, 3), (50, 1)];
        let mut order: Vec<usize> = (0..events.len()).collect();
        for _ in 0..120 {
            let shuffled: Vec<(i64, i64)> = order.iter().map(|&i| events[i]).collect();
            assert_eq!(run(&shuffled), vec![40], "order {order:?}");
            if !crate::engine::next_permutation(&mut order) {
                break;
            }
        }
    }

    fn held(outside: Outside) -> Held {
        Held {
            outside,
            text: String::new(),
            principal: PrincipalRef::default(),
            action: Some("s3:ListBuckets".into()),
        }
    }

    #[test]
    fn the_learning_period_is_open_until_its_count_or_its_timespan_ends() {
        let mut b = Baseline::default();
        assert_eq!(b.open_until(&LEARN), i64::MAX);
        b.observe(&LEARN, 1_000, at(1), &[1]);
        assert_eq!(b.open_until(&LEARN), 1_000 + 600_000 - 1);
        b.observe(&LEARN, 5_000, at(2), &[1]);
        b.observe(&LEARN, 9_000, at(3), &[1]);
        // Three events: a record could still join only before the third.
        assert_eq!(b.open_until(&LEARN), 9_000);
        b.observe(&LEARN, 3_000, at(4), &[1]);
        assert_eq!(
            b.open_until(&LEARN),
            5_000,
            "an earlier record moves it back"
        );
    }

    #[test]
    fn a_held_value_is_released_only_if_the_settled_baseline_lacks_it() {
        // A workload with two programs: the second's first record arrives late.
        let mut b = Baseline::default();
        b.observe(&LEARN, 0, at(1), &[1]);
        let found = b
            .observe(&LEARN, 700_000, at(2), &[2])
            .expect("outside while open");
        assert_eq!(b.hold(&LEARN, held(found)), Some(599_999));
        b.observe(&LEARN, 20_000, at(3), &[2]);
        assert_eq!(b.release(599_999).1, 1, "value 2 was learnt after all");

        // A thief: nothing earlier brings its value.
        let mut b = Baseline::default();
        b.observe(&LEARN, 0, at(1), &[1]);
        let found = b
            .observe(&LEARN, 700_000, at(2), &[9])
            .expect("outside while open");
        let due = b.hold(&LEARN, held(found)).unwrap();
        b.observe(&LEARN, 20_000, at(3), &[1]);
        b.observe(&LEARN, 30_000, at(4), &[1]);
        // The third learning event closes the period earlier: the timer moves, once.
        assert_eq!(b.reschedule(&LEARN), Some(30_000));
        assert_eq!(
            b.reschedule(&LEARN),
            None,
            "no second timer for the same time"
        );
        assert!(b.release(due).0.is_empty(), "the replaced timer is stale");
        let (out, refuted) = b.release(30_000);
        assert_eq!(refuted, 0);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].outside.time, out[0].outside.values), (700_000, 1));
        assert_eq!(
            out[0].outside.events, 3,
            "judged against the settled baseline"
        );
        assert!(b.release(30_000).0.is_empty(), "released once");
    }

    #[test]
    fn an_earlier_sighting_of_a_held_value_takes_its_place() {
        let mut b = Baseline::default();
        b.observe(&LEARN, 0, at(1), &[1]);
        let found = b.observe(&LEARN, 900_000, at(2), &[9]).unwrap();
        b.hold(&LEARN, held(found));
        assert!(
            b.observe(&LEARN, 800_000, at(3), &[9]).is_none(),
            "already found"
        );
        let moved = b.earlier_sighting(9, 800_000, at(3)).expect("earlier");
        assert_eq!(moved.outside.time, 800_000);
        assert!(
            b.earlier_sighting(9, 850_000, at(4)).is_none(),
            "not earlier"
        );
        assert!(
            b.earlier_sighting(8, 700_000, at(5)).is_none(),
            "another value is not the held one"
        );
        let (out, _) = b.release(599_999);
        assert_eq!(
            (out[0].outside.time, out[0].outside.origin),
            (800_000, at(3))
        );
    }

    #[test]
    fn a_finding_shows_the_baselines_distinct_values_and_learning_events() {
        let mut b = Baseline::default();
        // Three learning events bring two distinct values; the first carries both.
        b.observe(&LEARN, 0, at(1), &[1, 2]);
        b.observe(&LEARN, 10, at(2), &[2]);
        b.observe(&LEARN, 20, at(3), &[1]);
        let found = b.observe(&LEARN, 30, at(4), &[2, 7]).expect("7 is new");
        assert_eq!((found.value_index, found.hash), (Some(1), 7));
        assert_eq!((found.values, found.events), (2, 3));
        assert_eq!(found.first, (0, at(1)));
        assert_eq!(b.sizes(), (2, 1), "two values learnt, one seen since");
    }

    #[test]
    fn a_value_exactly_one_timespan_after_the_first_is_judged_after_learning() {
        let mut b = Baseline::default();
        b.observe(&LEARN, 0, at(1), &[1]);
        let found = b.observe(&LEARN, 600_000, at(2), &[9]).expect("outside");
        assert_eq!(
            (found.time, found.value_index),
            (600_000, Some(0)),
            "the record's own value, not a learnt one leaving the period"
        );
        assert_eq!(b.sizes(), (1, 1));
    }

    #[test]
    fn a_baseline_holds_at_most_its_bound_of_values_learnt_and_seen() {
        let mut b = Baseline::default();
        let many: Vec<i64> = (0..100).collect();
        b.observe(&LEARN, 0, at(1), &many);
        assert_eq!(b.sizes(), (MAX_BASELINE_VALUES, 0));

        let mut b = Baseline::default();
        b.observe(&LEARN, 0, at(1), &[1]);
        for i in 0..100 {
            b.observe(&LEARN, 700_000 + i, at(2 + i as u64), &[100 + i]);
        }
        assert_eq!(b.sizes(), (1, MAX_BASELINE_VALUES - 1));
    }
}
