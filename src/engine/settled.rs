//! Spans decided once settled: the state of `value_avg` and `value_percentile` correlations.
//!
//! A count or a sum only grows as matches arrive, so "some span held the threshold" can be
//! decided on the match that made it so, whatever the arrival order ([`super::window`]). An
//! average or a percentile moves either way: a match arriving late, within the grace, can pull
//! a span back under its threshold, or over it. So the span ending at each match's time is
//! decided only once it is settled — its source's clock has passed that time, so no match of
//! the span can still arrive — with every match of the span in hand. That is what time-sorted
//! input gives, so sorted and delivery order decide the same spans, with the same values and
//! evidence; only when the decision comes out differs (up to the grace later).
//!
//! A span is the timespan before its end, end included, like a window's. One decision per
//! burst: a span that holds fires unless it overlaps the latest span that fired. The matches are
//! kept sorted by event time for as long as a span still to be decided, or a match that can
//! still arrive, needs them; past [`MAX_ENTRIES`] the oldest go.

use std::collections::{BTreeSet, HashMap};

use super::firing::{human_ms, trim_float, Firing};
use super::window::MAX_ENTRIES;
use crate::decision::PrincipalRef;
use crate::rule::{Correlation, CorrelationKind};
use crate::source::Origin;

/// One match of a settled correlation's group.
pub struct Entry {
    pub time: i64,
    pub origin: Origin,
    /// An amount in thousandths (averages, percentiles), or a value's hash (how rare it is).
    pub value: i64,
    /// What the evidence shows of the value.
    pub shown: Option<String>,
    pub made_on: MadeOn,
}

/// Where a match was made, for a decision taken after it.
#[derive(Clone)]
pub struct MadeOn {
    /// The session (slot, sequence number): a decision is made on it.
    pub session: (u32, u64),
    /// The record's principal and action, shown as the decision's trigger (none when the
    /// match is a chained correlation's).
    pub record: Option<Box<(PrincipalRef, Box<str>)>>,
}

/// The matches of one group, and the span ends not decided yet.
#[derive(Default)]
pub struct Spans {
    /// Sorted by event time; equal times in arrival order.
    entries: Vec<Entry>,
    /// Span ends (match times) still to decide.
    pending: BTreeSet<i64>,
    /// The latest end of a span that fired.
    fired_end: Option<i64>,
}

/// A span that held: its end, aggregate, the match that ends it, and the evidence.
pub struct Held {
    pub at: i64,
    pub firing: Firing,
    pub session: (u32, u64),
    pub origin: Origin,
}

impl Spans {
    /// The earliest span end still to decide.
    pub fn first_pending(&self) -> Option<i64> {
        self.pending.first().copied()
    }

    /// Adds a match. Matches older than `keep_after` are no longer needed by any span that
    /// can still be decided (the caller's bound: the oldest time a match can still arrive at,
    /// less the timespan).
    pub fn push(&mut self, entry: Entry, span_ms: i64, oldest_arrival: i64) {
        let at = self.entries.partition_point(|e| e.time <= entry.time);
        self.pending.insert(entry.time);
        self.entries.insert(at, entry);
        let needed_from = self
            .first_pending()
            .map_or(oldest_arrival, |p| p.min(oldest_arrival))
            .saturating_sub(span_ms);
        let unneeded = self.entries.partition_point(|e| e.time <= needed_from);
        let over = self.entries.len().saturating_sub(MAX_ENTRIES);
        self.entries.drain(..unneeded.max(over));
    }

    /// Decides every span ending before `to`, oldest first; those that hold, in that order.
    pub fn settle(&mut self, to: i64, c: &Correlation, max_evidence: usize) -> Vec<Held> {
        let mut held = Vec::new();
        while let Some(end) = self.first_pending().filter(|&e| e < to) {
            self.pending.remove(&end);
            let spent = self.fired_end.is_some_and(|f| {
                end > f.saturating_sub(c.timespan_ms) && end < f.saturating_add(c.timespan_ms)
            });
            if spent {
                continue;
            }
            if let Some(h) = self.decide(end, c, max_evidence) {
                self.fired_end = Some(self.fired_end.map_or(end, |f| f.max(end)));
                held.push(h);
            }
        }
        held
    }

    /// The span ending at `end`, when it holds.
    fn decide(&self, end: i64, c: &Correlation, max_evidence: usize) -> Option<Held> {
        let span = c.timespan_ms;
        let lo = self
            .entries
            .partition_point(|e| e.time <= end.saturating_sub(span));
        let hi = self.entries.partition_point(|e| e.time <= end);
        let entries = self.entries.get(lo..hi).filter(|s| !s.is_empty())?;
        let n = entries.len();
        let (value, trigger, measured) = match (c.kind, c.percentile) {
            (CorrelationKind::ValuePercentile, None) => {
                let mut counts: HashMap<i64, u32> = HashMap::with_capacity(n);
                for e in entries {
                    *counts.entry(e.value).or_default() += 1;
                }
                // The first match at the end whose value is as rare as the condition asks.
                let (i, share) = entries
                    .iter()
                    .enumerate()
                    .skip_while(|(_, e)| e.time < end)
                    .map(|(i, e)| (i, f64::from(counts[&e.value]) * 100.0 / n as f64))
                    .find(|&(_, share)| c.condition.holds(share))?;
                (
                    share,
                    i,
                    format!("{}% of the span's {n} matches", trim_float(round3(share))),
                )
            }
            (CorrelationKind::ValuePercentile, Some(p)) => {
                let mut values: Vec<i64> = entries.iter().map(|e| e.value).collect();
                values.sort_unstable();
                let v = percentile(&values, p) / 1000.0;
                let text = format!("p{} {}", trim_float(p), trim_float(round3(v)));
                (v, n - 1, text)
            }
            _ => {
                let total: i128 = entries.iter().map(|e| i128::from(e.value)).sum();
                let v = total as f64 / 1000.0 / n as f64;
                let text = format!("{} over {n} matches", trim_float(round3(v)));
                (v, n - 1, text)
            }
        };
        if !c.condition.holds(value) {
            return None;
        }
        let completing = &entries[trigger];
        let others: Vec<(i64, Origin)> = entries
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != trigger)
            .map(|(_, e)| (e.time, e.origin))
            .collect();
        let keep = others.len().min(max_evidence.saturating_sub(1));
        let omitted = others.len() - keep;
        let start = entries[0].time;
        let reason = match (c.kind, c.percentile) {
            (CorrelationKind::ValuePercentile, None) => format!(
                "{} is {measured} ({}) within {}",
                completing.shown.as_deref().unwrap_or("the value"),
                c.condition.text(),
                human_ms(span)
            ),
            _ => format!(
                "{} {measured} {} within {}",
                c.kind.name(),
                c.condition.text(),
                human_ms(span)
            ),
        };
        let (principal, held_trigger) = match completing.made_on.record.as_deref() {
            Some((principal, action)) => (
                Some(principal.clone()),
                Some((completing.time, completing.origin, action.clone())),
            ),
            None => (None, None),
        };
        let firing = Firing {
            value: Some(round3(value)),
            threshold: Some(c.condition.text()),
            earlier: others[omitted..].to_vec(),
            omitted: omitted as u64,
            trigger_value: completing.shown.clone(),
            principal,
            held_trigger,
            ..Firing::new(c.kind.name(), reason, start)
        };
        Some(Held {
            at: end,
            firing,
            session: completing.made_on.session,
            origin: completing.origin,
        })
    }
}

/// The `p`-th percentile (0–100) of sorted `values`, interpolated linearly between the two
/// nearest ranks (as numpy's and most SIEMs' exact percentiles do).
fn percentile(sorted: &[i64], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let rank = p / 100.0 * last as f64;
    let (below, frac) = (rank.floor() as usize, rank.fract());
    let low = sorted[below] as f64;
    match sorted.get(below + 1) {
        Some(&high) => low + (high as f64 - low) * frac,
        None => low,
    }
}

/// Rounds to thousandths: what amounts are kept in, so a reason never shows float noise.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Bound, Bounds, Compare};

    fn correlation(
        kind: CorrelationKind,
        percentile: Option<f64>,
        op: Compare,
        v: f64,
    ) -> Correlation {
        Correlation {
            kind,
            timespan_ms: 1000,
            condition: Bounds {
                all: vec![Bound { op, value: v }],
            },
            group_by: Vec::new(),
            inputs: Vec::new(),
            generate: true,
            percentile,
        }
    }

    fn entry(time: i64, value: i64) -> Entry {
        Entry {
            time,
            origin: Origin::File {
                file: 0,
                line: time as u64,
            },
            value,
            shown: Some(value.to_string()),
            made_on: MadeOn {
                session: (0, 0),
                record: None,
            },
        }
    }

    /// Pushes (time, amount in units) in the given order, settles at `to`; the ends that fired.
    fn fired(c: &Correlation, matches: &[(i64, i64)], to: i64) -> Vec<(i64, f64)> {
        let mut spans = Spans::default();
        for &(t, v) in matches {
            spans.push(entry(t, v * 1000), c.timespan_ms, i64::MIN);
        }
        spans
            .settle(to, c, 10)
            .into_iter()
            .map(|h| (h.at, h.firing.value.unwrap()))
            .collect()
    }

    #[test]
    fn an_average_is_decided_on_the_whole_span_whatever_the_order() {
        let c = correlation(CorrelationKind::ValueAvg, None, Compare::Gt, 500.0);
        // The span ending at 10 (900 alone) holds; the ones ending at 20 and 30 overlap it.
        let sorted = [(10, 900), (20, 100), (30, 700)];
        let shuffled = [(30, 700), (10, 900), (20, 100)];
        assert_eq!(fired(&c, &sorted, 100), [(10, 900.0)]);
        assert_eq!(fired(&c, &shuffled, 100), [(10, 900.0)]);
        // Only spans before the clock are decided.
        assert!(fired(&c, &sorted, 10).is_empty());
    }

    #[test]
    fn a_late_match_can_pull_a_span_back_under_its_threshold() {
        let c = correlation(CorrelationKind::ValueAvg, None, Compare::Gte, 500.0);
        // Arriving in this order, a decision on 600 alone would have been wrong: 100 at an
        // earlier time belongs to the span ending at 20.
        assert!(fired(&c, &[(20, 600), (10, 100)], 100).is_empty());
        assert_eq!(
            fired(&c, &[(10, 100), (20, 600), (30, 800)], 100),
            [(30, 500.0)]
        );
    }

    #[test]
    fn one_decision_per_burst_and_again_on_a_span_that_does_not_overlap() {
        let c = correlation(CorrelationKind::ValueAvg, None, Compare::Gte, 10.0);
        let got = fired(
            &c,
            &[(0, 10), (500, 10), (999, 10), (1000, 10), (2500, 10)],
            5000,
        );
        // 0 fires; 500 and 999 overlap it; 1000 is a span later (its span starts after 0).
        assert_eq!(got, [(0, 10.0), (1000, 10.0), (2500, 10.0)]);
    }

    #[test]
    fn a_late_span_ending_one_timespan_before_the_fired_one_does_not_overlap_it() {
        let c = correlation(CorrelationKind::ValueAvg, None, Compare::Gte, 10.0);
        let mut spans = Spans::default();
        spans.push(entry(1000, 10_000), c.timespan_ms, i64::MIN);
        let fired: Vec<i64> = spans.settle(1001, &c, 10).iter().map(|h| h.at).collect();
        assert_eq!(fired, [1000]);
        // A match dated 0, arriving late: its span, (-1000, 0], ends where the fired one's
        // starts. One more millisecond and they would share it.
        spans.push(entry(0, 10_000), c.timespan_ms, i64::MIN);
        spans.push(entry(1, 10_000), c.timespan_ms, i64::MIN);
        let fired: Vec<i64> = spans.settle(1001, &c, 10).iter().map(|h| h.at).collect();
        assert_eq!(fired, [0]);
    }

    #[test]
    fn a_percentile_interpolates_between_ranks() {
        assert_eq!(percentile(&[10, 20, 30, 40, 50], 50.0), 30.0);
        assert_eq!(percentile(&[10, 20, 30, 40], 50.0), 25.0);
        assert_eq!(percentile(&[10, 20, 30, 40, 50], 95.0), 48.0);
        assert_eq!(percentile(&[7], 99.0), 7.0);
        let c = correlation(
            CorrelationKind::ValuePercentile,
            Some(95.0),
            Compare::Gte,
            48.0,
        );
        let m = [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)];
        assert_eq!(fired(&c, &m, 10), [(5, 48.0)]);
    }

    #[test]
    fn without_a_percentile_a_value_rarer_than_the_share_fires() {
        // 1 of the span's matches in 5 is 20 %: rare at `lte: 20`, not at `lte: 19`.
        let rare = correlation(CorrelationKind::ValuePercentile, None, Compare::Lte, 20.0);
        let m = [(1, 7), (2, 7), (3, 7), (4, 7), (5, 9)];
        let mut spans = Spans::default();
        for &(t, v) in &m {
            spans.push(entry(t, v), 1000, i64::MIN);
        }
        let held = spans.settle(10, &rare, 10);
        // The first match (100 % of a span of one) is not rare; the 9 is.
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].at, held[0].firing.value), (5, Some(20.0)));
        assert_eq!(held[0].firing.trigger_value.as_deref(), Some("9"));
        assert_eq!(held[0].firing.earlier.len(), 4);
        let strict = correlation(CorrelationKind::ValuePercentile, None, Compare::Lte, 19.0);
        assert!(fired(&strict, &m, 10).is_empty());
        // Only the match ending a span is ranked: the 9 first, then common 7s, is never rare
        // when it ends a span (a span of one), and a 7 ending a span never is.
        let first_rare = [(1, 9), (2, 7), (3, 7), (4, 7), (5, 7)];
        assert!(fired(&rare, &first_rare, 10).is_empty());
    }

    #[test]
    fn matches_no_span_can_need_are_let_go() {
        let mut spans = Spans::default();
        for t in 0..10 {
            spans.push(entry(t * 1000, 1), 1000, t * 1000);
        }
        let c = correlation(CorrelationKind::ValueAvg, None, Compare::Gte, 100.0);
        spans.settle(i64::MAX, &c, 10);
        spans.push(entry(20_000, 1), 1000, 20_000);
        assert_eq!(spans.entries.len(), 1);
    }
}
