//! Sliding event-time windows for per-session aggregates: count, distinct count and sum.
//!
//! Each window keeps the entries inside its timespan in arrival order (the engine feeds events
//! in event-time order) and evicts from the front as time moves. Distinct values are kept as
//! 64-bit hashes with a reference count; sums are exact in thousandths, so thresholds never
//! wobble with floating-point drift. A window holds nothing it does not need (no map unless it
//! counts distinct values): it lives once per session and rule.

use std::collections::{HashMap, VecDeque};

use crate::rule::Threshold;
use crate::source::Origin;

/// What a window aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Distinct,
    Sum,
}

impl Aggregate {
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "event_count",
            Aggregate::Distinct => "value_count",
            Aggregate::Sum => "value_sum",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub time: i64,
    pub origin: Origin,
    /// Value hash (distinct) or amount in thousandths (sum); unused for counts.
    pub value: i64,
}

/// A sliding window over one session's matching events for one rule.
#[derive(Clone, Debug)]
pub struct SlidingWindow {
    kind: Aggregate,
    span_ms: i64,
    entries: VecDeque<Entry>,
    /// Reference counts of distinct values (`Distinct` windows only). Boxed on purpose: an
    /// empty `HashMap` is 48 bytes inline in every window of every session.
    #[allow(clippy::box_collection)]
    distinct: Option<Box<HashMap<i64, u32>>>,
    /// Thousandths: exact up to 9 × 10¹² units (9 TB of bytes) in one window.
    sum_milli: i64,
    /// The threshold held after the last update; a decision fires only on the crossing.
    held: bool,
}

impl SlidingWindow {
    pub fn new(kind: Aggregate, span_ms: i64) -> Self {
        SlidingWindow {
            kind,
            span_ms,
            entries: VecDeque::new(),
            distinct: (kind == Aggregate::Distinct).then(Box::default),
            sum_milli: 0,
            held: false,
        }
    }

    /// Adds an entry at `time` and reports whether the threshold was just crossed.
    pub fn push(&mut self, entry: Entry, threshold: &Threshold) -> bool {
        self.evict_before(entry.time - self.span_ms);
        match self.kind {
            Aggregate::Count => {}
            Aggregate::Distinct => {
                if let Some(distinct) = self.distinct.as_mut() {
                    *distinct.entry(entry.value).or_default() += 1;
                }
            }
            Aggregate::Sum => self.sum_milli = self.sum_milli.saturating_add(entry.value),
        }
        self.entries.push_back(entry);
        let holds = threshold.holds(self.value());
        let crossed = holds && !self.held;
        self.held = holds;
        crossed
    }

    /// Drops entries older than `cutoff` (exclusive), keeping the window at `span` back from
    /// the newest event.
    fn evict_before(&mut self, cutoff: i64) {
        while let Some(front) = self.entries.front() {
            if front.time > cutoff {
                break;
            }
            let old = self.entries.pop_front().expect("front exists");
            match self.kind {
                Aggregate::Count => {}
                Aggregate::Distinct => {
                    if let Some(distinct) = self.distinct.as_mut() {
                        if let Some(n) = distinct.get_mut(&old.value) {
                            *n -= 1;
                            if *n == 0 {
                                distinct.remove(&old.value);
                            }
                        }
                    }
                }
                Aggregate::Sum => self.sum_milli = self.sum_milli.saturating_sub(old.value),
            }
        }
    }

    /// The aggregate's current value.
    pub fn value(&self) -> f64 {
        match self.kind {
            Aggregate::Count => self.entries.len() as f64,
            Aggregate::Distinct => self.distinct.as_ref().map_or(0, |d| d.len()) as f64,
            Aggregate::Sum => self.sum_milli as f64 / 1000.0,
        }
    }

    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    pub fn kind(&self) -> Aggregate {
        self.kind
    }

    pub fn span_ms(&self) -> i64 {
        self.span_ms
    }

    /// Forgets everything (after a decision, so the next one needs a fresh crossing).
    pub fn clear(&mut self) {
        self.entries.clear();
        if let Some(distinct) = self.distinct.as_mut() {
            distinct.clear();
        }
        self.sum_milli = 0;
        self.held = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::CmpOp;

    fn entry(time: i64, value: i64) -> Entry {
        Entry {
            time,
            origin: Origin::File { file: 0, line: 0 },
            value,
        }
    }

    const GTE3: Threshold = Threshold {
        op: CmpOp::Gte,
        value: 3.0,
    };

    #[test]
    fn count_fires_once_on_the_crossing_event() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        assert!(!w.push(entry(0, 0), &GTE3));
        assert!(!w.push(entry(10, 0), &GTE3));
        assert!(w.push(entry(20, 0), &GTE3));
        assert!(
            !w.push(entry(30, 0), &GTE3),
            "still above: no second decision"
        );
        // Everything before 1030 leaves; the count drops below and re-arms.
        assert!(!w.push(entry(2000, 0), &GTE3));
        assert_eq!(w.value(), 1.0);
        assert!(!w.push(entry(2001, 0), &GTE3));
        assert!(w.push(entry(2002, 0), &GTE3));
    }

    #[test]
    fn window_edge_is_span_back_from_the_newest_event() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        w.push(entry(0, 0), &GTE3);
        w.push(entry(1000, 0), &GTE3);
        // An entry exactly `span` old has left the window.
        assert_eq!(w.value(), 1.0);
    }

    #[test]
    fn distinct_and_sum() {
        let mut d = SlidingWindow::new(Aggregate::Distinct, 1000);
        d.push(entry(0, 7), &GTE3);
        d.push(entry(1, 7), &GTE3);
        d.push(entry(2, 8), &GTE3);
        assert_eq!(d.value(), 2.0);
        assert!(d.push(entry(3, 9), &GTE3));
        d.push(entry(1001, 10), &GTE3);
        // Both 7s (at 0 and 1) have left the window: 8, 9 and 10 remain.
        assert_eq!(d.value(), 3.0);

        let mut s = SlidingWindow::new(Aggregate::Sum, 1000);
        s.push(entry(0, 1500), &GTE3);
        assert!(s.push(entry(1, 1500), &GTE3));
        assert_eq!(s.value(), 3.0);
    }
}
