//! Sliding event-time windows for per-session aggregates (and Sigma correlations' groups):
//! count, distinct count and sum — by event time, whatever order the events arrive in.
//!
//! Entries are kept sorted by event time. Most arrive in order: they go to the back, the
//! trailing span (the `span` before the newest entry) is aggregated incrementally, and the
//! threshold is checked on it — O(1) amortized. An entry that arrives out of order (within the
//! grace) is inserted in place and every span that contains it is checked, so "N within T"
//! holds when any T-long span holds N, whatever the arrival order. Entries are kept a grace
//! longer than the span for that. Distinct values are 64-bit hashes with a reference count; sums
//! are exact in thousandths, so thresholds never wobble with floating-point drift. A window
//! holds nothing it does not need (no map unless it counts distinct values): it lives once per
//! session and rule.
//!
//! A window's memory is bounded, whatever a session floods it with: past [`MAX_ENTRIES`]
//! entries (or twice the threshold, for a `value_count` above half of that), it first lets go
//! of entries kept only for late arrivals, then of the oldest entries whose loss changes no
//! outcome — for `gt`/`gte` thresholds, while the trailing span still holds without them (they
//! would leave the span before any entry kept, so the count, sum or distinct set is exact again
//! by the time it could fall back under the threshold), and for `value_count`, repeats of a
//! value seen again later. If it is still over, it compacts: `value_count` keeps each value's
//! latest entry only; `event_count` and `value_sum` merge entries within one 1/1024 of the span
//! into the latest of them (an amount then counts up to span/1024 longer than it should: the
//! only approximation, and only under a flood no threshold was crossed by).

use std::collections::{HashMap, VecDeque};

use crate::rule::{Bounds, Threshold};
use crate::source::Origin;

/// What a window's aggregate is compared with: a session rule's threshold, or a correlation's
/// condition (comparisons that must all hold: a range).
pub trait Limit {
    fn holds(&self, x: f64) -> bool;
    /// Adding to the aggregate can only make it hold (`gt`, `gte`).
    fn is_upward(&self) -> bool;
    /// The largest value compared with: what a distinct count may need to reach.
    fn largest(&self) -> f64;
}

impl Limit for Threshold {
    fn holds(&self, x: f64) -> bool {
        Threshold::holds(self, x)
    }

    fn is_upward(&self) -> bool {
        Threshold::is_upward(self)
    }

    fn largest(&self) -> f64 {
        self.value
    }
}

impl Limit for Bounds {
    fn holds(&self, x: f64) -> bool {
        Bounds::holds(self, x)
    }

    fn is_upward(&self) -> bool {
        Bounds::is_upward(self)
    }

    fn largest(&self) -> f64 {
        Bounds::largest(self)
    }
}

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
    /// Value hash (distinct), amount in thousandths (sum) or items (count: 1 for most events,
    /// the items a batch call touched — its `records` — for the rest).
    pub value: i64,
}

/// A span that reached the threshold: it ends at `end` (an entry's time) and holds `value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossing {
    pub end: i64,
    pub value: f64,
}

/// Entries a window holds at most (a `value_count` with a threshold over half of this holds up
/// to twice its threshold).
pub const MAX_ENTRIES: usize = 16_384;

/// A compacted count or sum window keeps one entry per this fraction of its span.
const COMPACTED_SLOTS: i64 = 1024;

/// A running aggregate over a run of entries (one span).
#[derive(Clone, Debug, Default)]
struct Running {
    /// Reference counts of distinct values (`Distinct` windows only). Boxed on purpose: an
    /// empty `HashMap` is 48 bytes inline in every window of every session.
    #[allow(clippy::box_collection)]
    distinct: Option<Box<HashMap<i64, u32>>>,
    /// Sum windows: thousandths, exact up to 9 × 10¹² units (9 TB of bytes) in one window.
    /// Count windows: items (a batch call counts as the items it touched).
    total: i64,
}

impl Running {
    fn new(kind: Aggregate) -> Running {
        Running {
            distinct: (kind == Aggregate::Distinct).then(Box::default),
            ..Running::default()
        }
    }

    fn add(&mut self, kind: Aggregate, value: i64) {
        match kind {
            Aggregate::Count | Aggregate::Sum => self.total = self.total.saturating_add(value),
            Aggregate::Distinct => {
                if let Some(d) = self.distinct.as_mut() {
                    *d.entry(value).or_default() += 1;
                }
            }
        }
    }

    fn remove(&mut self, kind: Aggregate, value: i64) {
        match kind {
            Aggregate::Count | Aggregate::Sum => self.total = self.total.saturating_sub(value),
            Aggregate::Distinct => {
                if let Some(d) = self.distinct.as_mut() {
                    if let Some(n) = d.get_mut(&value) {
                        *n -= 1;
                        if *n == 0 {
                            d.remove(&value);
                        }
                    }
                }
            }
        }
    }

    /// How many entries hold `value` (`Distinct` windows only).
    fn occurrences(&self, value: i64) -> u32 {
        self.distinct
            .as_ref()
            .and_then(|d| d.get(&value).copied())
            .unwrap_or(0)
    }

    fn value(&self, kind: Aggregate) -> f64 {
        match kind {
            Aggregate::Count => self.total as f64,
            Aggregate::Distinct => self.distinct.as_ref().map_or(0, |d| d.len()) as f64,
            Aggregate::Sum => self.total as f64 / 1000.0,
        }
    }
}

/// A sliding window over one session's matching events for one rule.
#[derive(Clone, Debug)]
pub struct SlidingWindow {
    kind: Aggregate,
    span_ms: i64,
    /// Sorted by event time (equal times in arrival order).
    entries: VecDeque<Entry>,
    /// Index of the first entry of the trailing span; the ones before it are kept only for
    /// entries that may still arrive late.
    trail: usize,
    /// The aggregate of the trailing span.
    trailing: Running,
    /// The threshold held on the trailing span at the last update; an in-order entry fires only
    /// on the crossing.
    held: bool,
    /// End of the span that last fired; a late entry fires only on a span that does not
    /// overlap that one (the same burst is one decision, whatever the arrival order).
    fired_end: i64,
    /// [`MAX_ENTRIES`], but for tests that bound a window tighter.
    max_entries: usize,
}

impl SlidingWindow {
    pub fn new(kind: Aggregate, span_ms: i64) -> Self {
        SlidingWindow {
            kind,
            span_ms,
            entries: VecDeque::new(),
            trail: 0,
            trailing: Running::new(kind),
            held: false,
            fired_end: i64::MIN,
            max_entries: MAX_ENTRIES,
        }
    }

    #[cfg(test)]
    fn with_max_entries(kind: Aggregate, span_ms: i64, max_entries: usize) -> Self {
        SlidingWindow {
            max_entries,
            ..SlidingWindow::new(kind, span_ms)
        }
    }

    /// Adds an entry and reports the span it made reach the threshold, if any. Entries up to
    /// `grace_ms` older than the newest still count in every span they belong to.
    pub fn push(
        &mut self,
        entry: Entry,
        threshold: &impl Limit,
        grace_ms: i64,
    ) -> Option<Crossing> {
        let newest = self.entries.back().map_or(i64::MIN, |e| e.time);
        if entry.time >= newest {
            return self.push_in_order(entry, threshold, grace_ms);
        }
        let position = self.entries.partition_point(|e| e.time <= entry.time);
        self.entries.insert(position, entry);
        if entry.time > newest.saturating_sub(self.span_ms) {
            self.trailing.add(self.kind, entry.value);
        } else {
            self.trail += 1;
        }
        self.held = threshold.holds(self.trailing.value(self.kind));
        let crossing = self.first_crossing_with(position, threshold);
        self.bound(threshold);
        let crossing = crossing?;
        self.fired_end = self.fired_end.max(crossing.end);
        Some(crossing)
    }

    fn push_in_order(
        &mut self,
        entry: Entry,
        threshold: &impl Limit,
        grace_ms: i64,
    ) -> Option<Crossing> {
        self.entries.push_back(entry);
        self.trailing.add(self.kind, entry.value);
        let cutoff = entry.time.saturating_sub(self.span_ms);
        while self.entries[self.trail].time <= cutoff {
            let old = self.entries[self.trail].value;
            self.trailing.remove(self.kind, old);
            self.trail += 1;
        }
        let keep_from = cutoff.saturating_sub(grace_ms.max(0));
        while self.trail > 0 && self.entries.front().is_some_and(|e| e.time <= keep_from) {
            self.entries.pop_front();
            self.trail -= 1;
        }
        let value = self.trailing.value(self.kind);
        let holds = threshold.holds(value);
        let crossed = holds && !self.held;
        self.held = holds;
        // An entry that adds nothing to a count or sum cannot help a `gt`/`gte` threshold hold
        // on any span: a flood of them (zero-byte reads) costs no memory.
        if entry.value == 0 && self.kind != Aggregate::Distinct && threshold.is_upward() {
            self.entries.pop_back();
        }
        self.bound(threshold);
        if !crossed {
            return None;
        }
        self.fired_end = entry.time;
        Some(Crossing {
            end: entry.time,
            value,
        })
    }

    /// The most entries this window holds for `threshold`.
    fn cap(&self, threshold: &impl Limit) -> usize {
        match self.kind {
            Aggregate::Distinct => {
                let needed = threshold.largest().clamp(0.0, u32::MAX as f64) as usize;
                self.max_entries
                    .max(needed.saturating_add(1).saturating_mul(2))
            }
            Aggregate::Count | Aggregate::Sum => self.max_entries,
        }
    }

    /// Keeps the window within its cap (see the module documentation for what goes first).
    fn bound(&mut self, threshold: &impl Limit) {
        let cap = self.cap(threshold);
        if self.entries.len() <= cap {
            return;
        }
        // Entries kept only for late arrivals.
        while self.entries.len() > cap && self.trail > 0 {
            self.entries.pop_front();
            self.trail -= 1;
        }
        // The oldest entries whose loss changes no outcome.
        let upward = threshold.is_upward();
        while self.entries.len() > cap {
            let oldest = self.entries[0].value;
            let removable = match self.kind {
                Aggregate::Distinct => {
                    self.trailing.occurrences(oldest) > 1
                        || (upward && threshold.holds(self.trailing.value(self.kind) - 1.0))
                }
                Aggregate::Count => {
                    upward && threshold.holds(self.trailing.total.saturating_sub(oldest) as f64)
                }
                Aggregate::Sum => {
                    upward
                        && threshold
                            .holds(self.trailing.total.saturating_sub(oldest) as f64 / 1000.0)
                }
            };
            if !removable {
                break;
            }
            self.entries.pop_front();
            self.trailing.remove(self.kind, oldest);
        }
        if self.entries.len() > cap {
            self.compact();
        }
        // A threshold that is not `gt`/`gte` over more distinct values than the cap: the oldest go.
        while self.entries.len() > cap {
            if let Some(oldest) = self.entries.pop_front() {
                self.trailing.remove(self.kind, oldest.value);
            }
        }
    }

    /// Compacts a window whose entries are all in the trailing span (see [`Self::bound`]).
    fn compact(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        match self.kind {
            Aggregate::Distinct => {
                let mut seen = std::collections::HashSet::with_capacity(entries.len());
                let mut latest: Vec<Entry> = entries
                    .into_iter()
                    .rev()
                    .filter(|e| seen.insert(e.value))
                    .collect();
                latest.reverse();
                self.entries = latest.into();
            }
            Aggregate::Count | Aggregate::Sum => {
                let slot = (self.span_ms / COMPACTED_SLOTS).max(1);
                for entry in entries {
                    match self.entries.back_mut() {
                        Some(last) if last.time.div_euclid(slot) == entry.time.div_euclid(slot) => {
                            last.time = entry.time;
                            last.origin = entry.origin;
                            last.value = last.value.saturating_add(entry.value);
                        }
                        _ => self.entries.push_back(entry),
                    }
                }
            }
        }
        // The trailing span, again.
        let newest = self.entries.back().map_or(i64::MIN, |e| e.time);
        let cutoff = newest.saturating_sub(self.span_ms);
        self.trail = self.entries.partition_point(|e| e.time <= cutoff);
        self.trailing = Running::new(self.kind);
        for e in self.entries.iter().skip(self.trail) {
            self.trailing.add(self.kind, e.value);
        }
    }

    /// The earliest span containing the entry at `position` that holds the threshold and does
    /// not overlap the span that fired last.
    fn first_crossing_with(&self, position: usize, threshold: &impl Limit) -> Option<Crossing> {
        let t = self.entries[position].time;
        let last_end = t.saturating_add(self.span_ms);
        let mut running = Running::new(self.kind);
        let mut lo = self
            .entries
            .partition_point(|e| e.time <= t.saturating_sub(self.span_ms));
        for i in lo..position {
            running.add(self.kind, self.entries[i].value);
        }
        let mut j = position;
        while j < self.entries.len() && self.entries[j].time < last_end {
            let end = self.entries[j].time;
            running.add(self.kind, self.entries[j].value);
            // A span ends after every entry at its end time.
            if self.entries.get(j + 1).is_some_and(|next| next.time == end) {
                j += 1;
                continue;
            }
            while self.entries[lo].time <= end.saturating_sub(self.span_ms) {
                running.remove(self.kind, self.entries[lo].value);
                lo += 1;
            }
            let value = running.value(self.kind);
            let f = self.fired_end;
            let spent = f != i64::MIN
                && end > f.saturating_sub(self.span_ms)
                && end.saturating_sub(self.span_ms) < f;
            if threshold.holds(value) && !spent {
                return Some(Crossing { end, value });
            }
            j += 1;
        }
        None
    }

    /// The evidence of a crossing ending at `end` that `entry` (the event in hand, reported on
    /// its own) made: the span's other entries, the newest `max_evidence - 1` kept, how many
    /// were left out, and where the span's entries start.
    pub fn evidence(
        &self,
        end: i64,
        entry: Entry,
        max_evidence: usize,
    ) -> (Vec<(i64, Origin)>, u64, i64) {
        let others: Vec<(i64, Origin)> = self
            .span(end)
            .filter(|e| (e.time, e.origin) != (entry.time, entry.origin))
            .map(|e| (e.time, e.origin))
            .collect();
        let keep = others.len().min(max_evidence.saturating_sub(1));
        let omitted = others.len() - keep;
        let start = others.first().map_or(entry.time, |e| e.0).min(entry.time);
        (others[omitted..].to_vec(), omitted as u64, start)
    }

    /// The entries of the span ending at `end`, oldest first.
    pub fn span(&self, end: i64) -> impl Iterator<Item = &Entry> + '_ {
        let start = end.saturating_sub(self.span_ms);
        self.entries
            .iter()
            .filter(move |e| e.time > start && e.time <= end)
    }

    pub fn kind(&self) -> Aggregate {
        self.kind
    }

    /// The aggregate of the span ending at `end` (count: items; distinct: values; sum: the
    /// total), what `explain` shows of the window.
    pub fn value_at(&self, end: i64) -> f64 {
        match self.kind {
            Aggregate::Count => self.span(end).map(|e| e.value).sum::<i64>() as f64,
            Aggregate::Sum => self.span(end).map(|e| e.value).sum::<i64>() as f64 / 1000.0,
            Aggregate::Distinct => {
                let values: std::collections::HashSet<i64> =
                    self.span(end).map(|e| e.value).collect();
                values.len() as f64
            }
        }
    }

    pub fn span_ms(&self) -> i64 {
        self.span_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::CmpOp;

    fn entry(time: i64, value: i64) -> Entry {
        Entry {
            time,
            origin: Origin::File {
                file: 0,
                line: time as u64,
            },
            value,
        }
    }

    const GTE3: Threshold = Threshold {
        op: CmpOp::Gte,
        value: 3.0,
    };

    fn fires(w: &mut SlidingWindow, time: i64, value: i64) -> Option<i64> {
        w.push(entry(time, value), &GTE3, 10_000).map(|c| c.end)
    }

    #[test]
    fn count_fires_once_on_the_crossing_event() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        assert_eq!(fires(&mut w, 0, 1), None);
        assert_eq!(fires(&mut w, 10, 1), None);
        assert_eq!(fires(&mut w, 20, 1), Some(20));
        assert_eq!(
            fires(&mut w, 30, 1),
            None,
            "still above: no second decision"
        );
        // Everything before 1030 leaves the trailing span; the count drops below and re-arms.
        assert_eq!(fires(&mut w, 2000, 1), None);
        assert_eq!(fires(&mut w, 2001, 1), None);
        assert_eq!(fires(&mut w, 2002, 1), Some(2002));
    }

    #[test]
    fn window_edge_is_span_back_from_the_newest_event() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        fires(&mut w, 0, 1);
        fires(&mut w, 1000, 1);
        // An entry exactly `span` old has left the span.
        assert_eq!(w.span(1000).count(), 1);
    }

    #[test]
    fn a_batch_counts_as_its_items() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        assert_eq!(fires(&mut w, 0, 1), None);
        assert_eq!(
            fires(&mut w, 10, 2),
            Some(10),
            "one call and a batch of two make three"
        );
        let mut late = SlidingWindow::new(Aggregate::Count, 1000);
        assert_eq!(fires(&mut late, 500, 1), None);
        assert_eq!(
            fires(&mut late, 100, 2),
            Some(500),
            "a late batch counts its items too"
        );
    }

    #[test]
    fn distinct_and_sum() {
        let mut d = SlidingWindow::new(Aggregate::Distinct, 1000);
        fires(&mut d, 0, 7);
        fires(&mut d, 1, 7);
        assert_eq!(fires(&mut d, 2, 8), None);
        assert_eq!(fires(&mut d, 3, 9), Some(3));
        let mut s = SlidingWindow::new(Aggregate::Sum, 1000);
        assert_eq!(
            s.push(entry(0, 1500), &GTE3, 0),
            None,
            "1.5 is below 3 in thousandths"
        );
        assert_eq!(
            s.push(entry(1, 1500), &GTE3, 0),
            Some(Crossing { end: 1, value: 3.0 })
        );
    }

    #[test]
    fn a_distinct_value_leaves_the_window_with_its_last_entry() {
        // 7 twice, then both copies slide out: 8 and 9 are two values, not three.
        let mut d = SlidingWindow::new(Aggregate::Distinct, 1000);
        fires(&mut d, 0, 7);
        fires(&mut d, 10, 7);
        assert_eq!(
            fires(&mut d, 1005, 8),
            None,
            "7 at 10 is still in (5, 1005]"
        );
        assert_eq!(
            fires(&mut d, 2000, 9),
            None,
            "the span (1000, 2000] holds 8 and 9"
        );
        // One copy out, one in: the value still counts.
        let mut d = SlidingWindow::new(Aggregate::Distinct, 1000);
        fires(&mut d, 0, 7);
        fires(&mut d, 600, 7);
        assert_eq!(fires(&mut d, 1200, 8), None);
        assert_eq!(fires(&mut d, 1300, 9), Some(1300), "7 at 600 keeps 7 in");
    }

    #[test]
    fn a_late_entry_completes_the_span_it_belongs_to() {
        // 0, 500 and (late) 100: the span ending at 500 holds three.
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        fires(&mut w, 0, 1);
        fires(&mut w, 500, 1);
        assert_eq!(fires(&mut w, 100, 1), Some(500));
        // Another late entry in the same span does not fire again.
        assert_eq!(fires(&mut w, 200, 1), None);
    }

    #[test]
    fn a_late_entry_exactly_one_span_old_is_outside_the_trailing_span() {
        // 100 and 1000, then (late) 0: the span (0, 1000] still holds two, so the next entry
        // is the third and fires.
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        fires(&mut w, 100, 1);
        fires(&mut w, 1000, 1);
        assert_eq!(fires(&mut w, 0, 1), None, "0 and 100 are two");
        assert_eq!(fires(&mut w, 1050, 1), Some(1050), "(50, 1050] holds three");
    }

    #[test]
    fn a_late_entry_fires_only_on_spans_that_contain_it() {
        // Fires at 2000, then holds without firing again; the late 2000 belongs to spans that
        // all overlap the one that fired. The span ending at 3000 holds and does not overlap
        // it, but it does not contain the late entry: no decision.
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        for t in [1200, 1500] {
            assert_eq!(fires(&mut w, t, 1), None);
        }
        assert_eq!(fires(&mut w, 2000, 1), Some(2000));
        for t in [2400, 2600, 3000] {
            assert_eq!(fires(&mut w, t, 1), None, "{t}: still holding");
        }
        assert_eq!(fires(&mut w, 2000, 1), None);
    }

    #[test]
    fn late_entries_fire_on_a_span_that_just_misses_the_fired_one() {
        // Fired on (1200, 2200]. Late entries fill (200, 1200], which ends where the fired
        // span starts: no overlap, a decision of its own.
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        for t in [2000, 2100] {
            fires(&mut w, t, 1);
        }
        assert_eq!(fires(&mut w, 2200, 1), Some(2200));
        assert_eq!(fires(&mut w, 1000, 1), None);
        assert_eq!(fires(&mut w, 1100, 1), None);
        assert_eq!(fires(&mut w, 1200, 1), Some(1200));

        // Fired on (-980, 20]. A late entry completes (20, 1020], which starts where the fired
        // span ends.
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        for t in [0, 10] {
            fires(&mut w, t, 1);
        }
        assert_eq!(fires(&mut w, 20, 1), Some(20));
        assert_eq!(fires(&mut w, 1020, 1), None);
        assert_eq!(fires(&mut w, 500, 1), None, "(20, 1020] holds two");
        assert_eq!(fires(&mut w, 600, 1), Some(1020));
    }

    #[test]
    fn a_span_ends_after_every_entry_at_its_end_time() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        fires(&mut w, 500, 1);
        fires(&mut w, 500, 1);
        assert_eq!(
            w.push(entry(100, 1), &GTE3, 10_000),
            Some(Crossing {
                end: 500,
                value: 3.0
            })
        );
    }

    #[test]
    fn entries_dropped_past_the_grace_leave_the_trailing_span_in_place() {
        // Grace 0: what leaves the span is dropped at once. 1500 and 1600 leave the span at
        // 2600; 2600 and 2601 are two, not three.
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        for t in [0, 1500, 1600, 2600, 2601] {
            assert_eq!(w.push(entry(t, 1), &GTE3, 0), None, "{t}");
        }
        assert_eq!(w.span(2601).count(), 2);
    }

    #[test]
    fn every_arrival_order_fires_on_the_same_span() {
        // Three entries within 1000, then two far later: any order fires once, ending at 900.
        let times = [0, 400, 900, 5000, 5100];
        let mut order: Vec<usize> = (0..times.len()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..120 {
            // Next permutation (lexicographic), so all 120 orders are tried.
            let mut w = SlidingWindow::new(Aggregate::Count, 1000);
            let ends: Vec<i64> = order
                .iter()
                .filter_map(|&i| fires(&mut w, times[i], 1))
                .collect();
            seen.insert(ends);
            if !crate::engine::next_permutation(&mut order) {
                break;
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![vec![900]]);
    }

    #[test]
    fn late_distinct_values_count_in_their_span() {
        let mut d = SlidingWindow::new(Aggregate::Distinct, 1000);
        fires(&mut d, 900, 1);
        fires(&mut d, 950, 1);
        assert_eq!(fires(&mut d, 100, 2), None, "the span 0..1000 holds 1, 2");
        assert_eq!(fires(&mut d, 50, 3), Some(900));
    }

    #[test]
    fn entries_older_than_span_and_grace_are_forgotten() {
        let mut w = SlidingWindow::new(Aggregate::Count, 1000);
        for t in 0..100 {
            w.push(entry(t * 100, 1), &GTE3, 500);
        }
        // Kept: the span (1000) and the grace (500) behind the newest (9900).
        assert!(w.entries.len() <= 16, "{} entries kept", w.entries.len());
    }

    /// A small deterministic generator for the property tests below.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn bounded_windows_decide_as_unbounded_ones_on_ordered_input() {
        let mut rng = Lcg(7);
        for round in 0..300 {
            let kind = [Aggregate::Distinct, Aggregate::Count, Aggregate::Sum][round % 3];
            let threshold = Threshold {
                op: if round % 2 == 0 {
                    CmpOp::Gte
                } else {
                    CmpOp::Gt
                },
                value: 1.0 + rng.below(6) as f64,
            };
            let mut bounded = SlidingWindow::with_max_entries(kind, 1000, 16);
            let mut unbounded = SlidingWindow::with_max_entries(kind, 1000, usize::MAX);
            let mut time = 0;
            let values = 1 + rng.below(12);
            for _ in 0..2_000 {
                time += rng.below(60) as i64;
                let value = match kind {
                    Aggregate::Distinct => rng.below(values) as i64,
                    Aggregate::Count => 1,
                    Aggregate::Sum => 1000 * rng.below(2) as i64,
                };
                let e = entry(time, value);
                let got = bounded.push(e, &threshold, 2_000);
                let want = unbounded.push(e, &threshold, 2_000);
                assert_eq!(
                    got, want,
                    "round {round} ({kind:?} {threshold:?}) at {time}"
                );
                assert!(
                    bounded.entries.len() <= bounded.cap(&threshold),
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn a_distinct_value_flood_stays_within_the_cap_and_still_fires() {
        let hour = 3_600_000;
        let mut d = SlidingWindow::new(Aggregate::Distinct, hour);
        let over = Threshold {
            op: CmpOp::Gt,
            value: 1000.0,
        };
        let fired = flood(&mut d, &over, 0..200_000, |time| time);
        assert_eq!(fired, [1000], "the 1,001st distinct value, once");
    }

    /// Pushes an entry at each millisecond of `times` (60 s of grace), its value `value(time)`,
    /// checking the cap after each; the crossings' ends.
    fn flood(
        w: &mut SlidingWindow,
        threshold: &Threshold,
        times: std::ops::Range<i64>,
        value: impl Fn(i64) -> i64,
    ) -> Vec<i64> {
        let mut fired = Vec::new();
        for time in times {
            if let Some(c) = w.push(entry(time, value(time)), threshold, 60_000) {
                fired.push(c.end);
            }
            assert!(w.entries.len() <= MAX_ENTRIES);
        }
        fired
    }

    /// Under an `lt` threshold no entry may be let go past the cap (fewer can only make it
    /// hold): a count that passes the threshold stops holding, and holds again — a second
    /// crossing — only once its entries have left the span.
    #[test]
    fn a_count_past_the_cap_under_lt_keeps_every_entry() {
        let hour = 3_600_000;
        let mut w = SlidingWindow::new(Aggregate::Count, hour);
        let threshold = Threshold {
            op: CmpOp::Lt,
            value: 20_000.0,
        };
        let mut fired = flood(&mut w, &threshold, 0..25_000, |_| 1);
        assert_eq!(w.value_at(24_999), 25_000.0);
        fired.extend(flood(
            &mut w,
            &threshold,
            hour + 30_000..hour + 30_001,
            |_| 1,
        ));
        assert_eq!(fired, [0, hour + 30_000]);
    }

    #[test]
    fn a_sum_flood_under_its_threshold_is_compacted_and_still_fires() {
        let hour = 3_600_000;
        let mut w = SlidingWindow::new(Aggregate::Sum, hour);
        let threshold = Threshold {
            op: CmpOp::Gte,
            value: 150_000.0,
        };
        // One unit every millisecond: 150,000 units in 150 s, all inside the hour.
        let fired = flood(&mut w, &threshold, 0..200_000, |_| 1000);
        assert_eq!(fired.len(), 1, "{fired:?}");
        // Merged entries count from the latest of their slot (span/1024 = 3.5 s): the crossing
        // comes no more than one slot early.
        assert!((149_999 - 3_516..=149_999).contains(&fired[0]), "{fired:?}");
    }
}
