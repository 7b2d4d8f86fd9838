//! A session's baseline of values (networks, countries, scopes …), learnt from its earliest
//! matching events by event time, and the values outside it.
//!
//! The baseline is the values of the session's first `events` matching events within
//! `timespan` of the first — by event time, not arrival. When an earlier event arrives late, the
//! learning period moves back to it: it joins the baseline, and an event that no longer belongs
//! to the learning period is judged as if it had arrived after it (its value, if outside the
//! baseline, fires then). So a stolen token replayed from a new network is caught even when the
//! attacker's record is delivered before the owner's earlier ones.

use smallvec::SmallVec;

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

    fn distinct_values(&self) -> usize {
        let mut seen: SmallVec<[i64; 8]> = SmallVec::new();
        for h in self
            .learnt
            .iter()
            .map(|l| l.hash)
            .chain(self.later.iter().copied())
        {
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
            let outside = found.map(|i| self.outside(time, origin, Some(i)));
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
                    outside = Some(self.outside(l.time, l.origin, None));
                }
            }
            for l in &leaving {
                self.remember(l.hash);
            }
        }
        outside
    }

    fn outside(&self, time: i64, origin: Origin, value_index: Option<usize>) -> Outside {
        let first = self
            .learnt
            .first()
            .map_or((time, origin), |l| (l.time, l.origin));
        Outside {
            time,
            origin,
            value_index,
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
}
