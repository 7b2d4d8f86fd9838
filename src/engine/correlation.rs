//! Correlation state: one pseudo-session per correlation and group of values, beside the
//! session table.
//!
//! A Sigma correlation counts the matches of other rules grouped by field values — the user,
//! the source address — across sessions: each failed sign-in is a session of its own, the
//! successful one another. Its state is kept per (correlation, group key) in a table shaped like
//! the session table: a slab indexed by key; per-source min-heaps of idle deadlines, re-checked
//! lazily, so nothing scans every group; a hard bound on the number held (the idlest goes
//! first). Lateness is per group, as it is per session: a match more than its source's grace
//! older than the newest match of its group is late — counted, not applied. Windows and
//! sequences are the order-robust ones of session rules, so which groups decide does not depend
//! on the arrival order within the grace.
//!
//! The heaps order ties by the groups' sequence numbers (order of creation), never by hash, so
//! expiry and eviction are reproducible.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use super::firing::{human_ms, trim_float, Firing};
use super::sequence::{Hit, SequenceState};
use super::settled::{self, MadeOn, Spans};
use super::window::{Aggregate, Entry, SlidingWindow};
use crate::decision::{Group as GroupEvidence, GroupField};
use crate::event::Source;
use crate::rule::{Correlation, CorrelationKind, Rule};
use crate::source::Origin;
use crate::time::{source_index, SOURCES};

type ExpiryHeap = BinaryHeap<Reverse<(i64, u64, u32)>>;

/// The groups of every correlation.
#[derive(Default)]
pub struct Groups {
    slots: Vec<Option<Group>>,
    free: Vec<u32>,
    /// (correlation's rule index, group key) → slot.
    index: HashMap<(u32, Box<str>), u32>,
    /// Per source (of the group's first match): idle deadlines.
    expiry: [ExpiryHeap; SOURCES],
    /// Live groups by the oldest input their state depends on.
    by_first: BTreeSet<((u64, i64), u32)>,
    /// Per source: groups of settled correlations by their earliest span still to decide.
    unsettled: [ExpiryHeap; SOURCES],
    next_seq: u64,
    pub stats: GroupStats,
}

#[derive(Clone, Debug, Default)]
pub struct GroupStats {
    pub created: u64,
    pub expired: u64,
    /// Forgotten early to stay within the bound.
    pub evicted: u64,
    /// Matches more than their grace older than their group's newest: not counted.
    pub late: u64,
    /// Settled spans that held after the session of their completing match was forgotten:
    /// not decided (the session's idle timeout is normally far longer than the grace).
    pub orphaned: u64,
}

/// One group of one correlation.
pub struct Group {
    seq: u64,
    correlation: u32,
    /// The source of its first match: its clock settles spans and expires the group.
    source: Source,
    key: Box<str>,
    values: Values,
    /// The newest match applied (event time).
    last_seen: i64,
    /// Matches applied: orders matches of the same event time.
    arrivals: u32,
    /// Decisions so far, and the time of the last ([`i64::MIN`] before the first).
    pub decisions: u64,
    pub last_decided: i64,
    state: GroupState,
    first: Origin,
}

enum GroupState {
    Window(SlidingWindow),
    Sequence(Box<SequenceState>),
    /// `value_avg`, `value_percentile`: spans decided once settled.
    Settled(Box<Spans>),
}

/// One match of a rule a correlation refers to, as the correlation takes it in.
pub struct Input {
    pub time: i64,
    pub origin: Origin,
    /// The source of the session it was made on: its grace and clock apply.
    pub source: Source,
    pub grace: i64,
    /// Which of the correlation's rules matched.
    pub rule: usize,
    /// A value hash (`value_count`), an amount in thousandths (`value_sum`), else unused.
    pub value: i64,
    /// What the evidence shows for the match: the value counted, or the rule that matched.
    pub shown: Option<String>,
    /// Settled correlations decide after the match: where it was made.
    pub made_on: Option<MadeOn>,
}

/// The values of a group, in group-by order.
pub type Values = Box<[Box<str>]>;

/// A correlation that now holds on a group: when, and its evidence.
pub struct Completion {
    pub slot: u32,
    pub at: i64,
    pub firing: Firing,
}

/// A settled span that held: the completion, its correlation (rule index), and the session
/// (slot, sequence number) and origin of the match that ends it.
pub struct SettledCompletion {
    pub completion: Completion,
    pub correlation: u32,
    pub session: (u32, u64),
    pub origin: Origin,
}

/// Limits a table works within.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_groups: usize,
    pub max_evidence: usize,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn group_mut(&mut self, slot: u32) -> Option<&mut Group> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// The group's values, as a correlation's matches give them to the correlations that
    /// chain it.
    pub fn values(&self, slot: u32) -> Option<&[Box<str>]> {
        self.slots
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|g| &*g.values)
    }

    /// The oldest input a live group depends on.
    pub fn oldest_origin(&self) -> Option<Origin> {
        let &(_, slot) = self.by_first.first()?;
        self.slots
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|g| g.first)
    }

    /// Takes a match into the group `values` of correlation `c`; the completion when the
    /// correlation now holds on it. `None` also for a late match (counted in the stats).
    pub fn apply(
        &mut self,
        (c, correlation): (u32, &Correlation),
        values: Vec<Box<str>>,
        input: &Input,
        limits: Limits,
    ) -> Option<Completion> {
        let texts: Vec<&str> = values.iter().map(|v| &**v).collect();
        let key = serde_json::to_string(&texts).unwrap_or_default();
        let slot = match self.index.get(&(c, key.as_str().into())) {
            Some(&slot) => slot,
            None => self.create((c, correlation), key, values, input, limits.max_groups),
        };
        let group = self.slots[slot as usize].as_mut()?;
        if input.time < group.last_seen.saturating_sub(input.grace) {
            self.stats.late += 1;
            return None;
        }
        group.last_seen = group.last_seen.max(input.time);
        group.arrivals = group.arrivals.wrapping_add(1);
        if let GroupState::Settled(spans) = &mut group.state {
            let made_on = input.made_on.clone()?;
            let before = spans.first_pending();
            let entry = settled::Entry {
                time: input.time,
                origin: input.origin,
                value: input.value,
                shown: input.shown.clone(),
                made_on,
            };
            let oldest_arrival = group.last_seen.saturating_sub(input.grace);
            spans.push(entry, correlation.timespan_ms, oldest_arrival);
            let first = spans.first_pending();
            if before.is_none() || first < before {
                if let Some(due) = first {
                    let s = source_index(group.source);
                    self.unsettled[s].push(Reverse((due, group.seq, slot)));
                }
            }
            return None;
        }
        let (at, firing) = group.take(correlation, input, limits.max_evidence)?;
        Some(group.completion(slot, correlation, at, firing))
    }

    /// Decides the spans of settled correlations' groups of `source` that end before its
    /// clock `to`; those that hold, in order of their groups' earliest spans.
    pub fn settle(
        &mut self,
        source: Source,
        to: i64,
        rules: &[Rule],
        max_evidence: usize,
    ) -> Vec<SettledCompletion> {
        let s = source_index(source);
        let mut done = Vec::new();
        while let Some(&Reverse((due, seq, slot))) = self.unsettled[s].peek() {
            if due >= to {
                break;
            }
            self.unsettled[s].pop();
            let Some(group) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
                continue;
            };
            let correlation = rules
                .get(group.correlation as usize)
                .and_then(|r| r.correlation.as_deref());
            let (Some(correlation), GroupState::Settled(spans)) = (correlation, &mut group.state)
            else {
                continue;
            };
            // Stale: the group was replaced, or an earlier span took this one's place.
            if group.seq != seq || spans.first_pending() != Some(due) {
                continue;
            }
            let held = spans.settle(to, correlation, max_evidence);
            if let Some(next) = spans.first_pending() {
                self.unsettled[s].push(Reverse((next, seq, slot)));
            }
            for h in held {
                let completion = group.completion(slot, correlation, h.at, h.firing);
                done.push(SettledCompletion {
                    completion,
                    correlation: group.correlation,
                    session: h.session,
                    origin: h.origin,
                });
            }
        }
        done
    }

    fn create(
        &mut self,
        (c, correlation): (u32, &Correlation),
        key: String,
        values: Vec<Box<str>>,
        input: &Input,
        max_groups: usize,
    ) -> u32 {
        if self.index.len() >= max_groups.max(1) {
            self.evict_idlest();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.created += 1;
        let state = match correlation.kind {
            CorrelationKind::TemporalOrdered => GroupState::Sequence(Box::default()),
            kind if kind.is_settled() => GroupState::Settled(Box::default()),
            kind => {
                let aggregate = match kind {
                    CorrelationKind::EventCount => Aggregate::Count,
                    CorrelationKind::ValueSum => Aggregate::Sum,
                    _ => Aggregate::Distinct,
                };
                GroupState::Window(SlidingWindow::new(aggregate, correlation.timespan_ms))
            }
        };
        let key: Box<str> = key.into();
        let group = Group {
            seq,
            correlation: c,
            source: input.source,
            key: key.clone(),
            values: values.into(),
            last_seen: input.time,
            arrivals: 0,
            decisions: 0,
            last_decided: i64::MIN,
            state,
            first: input.origin,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(group);
                slot
            }
            None => {
                self.slots.push(Some(group));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert((c, key), slot);
        self.by_first.insert((input.origin.sort_key(), slot));
        self.expiry[source_index(input.source)].push(Reverse((input.time, seq, slot)));
        slot
    }

    /// Forgets the groups of `source` idle longer than `idle_ms` at its clock `to`.
    pub fn expire(&mut self, source: Source, to: i64, idle_ms: i64) {
        let s = source_index(source);
        while self
            .idlest_in(s, idle_ms)
            .is_some_and(|(deadline, ..)| deadline < to)
        {
            if let Some(Reverse((_, _, slot))) = self.expiry[s].pop() {
                self.remove(slot);
                self.stats.expired += 1;
            }
        }
    }

    /// The top of a source's expiry heap once stale entries are dropped and groups active
    /// since their entry was pushed are re-queued: (deadline, seq, slot). The heap holds last
    /// activity times; the deadline is that plus `idle_ms`.
    fn idlest_in(&mut self, s: usize, idle_ms: i64) -> Option<(i64, u64, u32)> {
        while let Some(&Reverse((seen, seq, slot))) = self.expiry[s].peek() {
            let current = match self.slots.get(slot as usize).and_then(Option::as_ref) {
                Some(group) if group.seq == seq => group.last_seen,
                _ => {
                    self.expiry[s].pop();
                    continue;
                }
            };
            if current > seen {
                self.expiry[s].pop();
                self.expiry[s].push(Reverse((current, seq, slot)));
                continue;
            }
            return Some((seen.saturating_add(idle_ms), seq, slot));
        }
        None
    }

    /// Removes the group idle longest, whatever its source.
    fn evict_idlest(&mut self) {
        let idlest = (0..SOURCES)
            .filter_map(|s| self.idlest_in(s, 0).map(|(seen, seq, _)| (seen, seq, s)))
            .min();
        if let Some((_, _, s)) = idlest {
            if let Some(Reverse((_, _, slot))) = self.expiry[s].pop() {
                self.remove(slot);
                self.stats.evicted += 1;
            }
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(group) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            self.index.remove(&(group.correlation, group.key));
            self.by_first.remove(&(group.first.sort_key(), slot));
            self.free.push(slot);
        }
    }
}

impl Group {
    /// A firing of this group's correlation made into its completion: the group's values
    /// named in the reason and the evidence.
    fn completion(
        &self,
        slot: u32,
        correlation: &Correlation,
        at: i64,
        firing: Firing,
    ) -> Completion {
        let shown: Vec<GroupField> = correlation
            .group_by
            .iter()
            .zip(self.values.iter())
            .map(|(name, value)| GroupField {
                name: name.clone(),
                value: value.to_string(),
            })
            .collect();
        let firing = Firing {
            reason: if shown.is_empty() {
                firing.reason
            } else {
                let by: Vec<String> = shown
                    .iter()
                    .map(|f| format!("{}={}", f.name, f.value))
                    .collect();
                format!("{} for {}", firing.reason, by.join(", "))
            },
            group: Some(GroupEvidence {
                key: self.key.to_string(),
                fields: shown,
            }),
            ..firing
        };
        Completion { slot, at, firing }
    }

    /// The match into the group's state; the decision's time and firing when the correlation
    /// now holds.
    fn take(
        &mut self,
        correlation: &Correlation,
        input: &Input,
        max_evidence: usize,
    ) -> Option<(i64, Firing)> {
        let span = correlation.timespan_ms;
        match &mut self.state {
            GroupState::Window(window) => {
                // The input's value is 1 for event_count (the engine measures it so).
                let value = match correlation.kind {
                    CorrelationKind::Temporal => input.rule as i64,
                    _ => input.value,
                };
                let entry = Entry {
                    time: input.time,
                    origin: input.origin,
                    value,
                };
                let crossing = window.push(entry, &correlation.condition, input.grace)?;
                let (earlier, omitted, start) = window.evidence(crossing.end, entry, max_evidence);
                let value = crossing.value;
                let reason = match correlation.kind {
                    CorrelationKind::Temporal => format!(
                        "{} of {} rules matched within {}",
                        trim_float(value),
                        correlation.inputs.len(),
                        human_ms(span)
                    ),
                    kind => format!(
                        "{} {} {} within {}",
                        kind.name(),
                        trim_float(value),
                        correlation.condition.text(),
                        human_ms(span)
                    ),
                };
                let firing = Firing {
                    value: Some(value),
                    threshold: Some(correlation.condition.text()),
                    earlier,
                    omitted,
                    trigger_value: input.shown.clone(),
                    ..Firing::new(correlation.kind.name(), reason, start)
                };
                Some((crossing.end, firing))
            }
            // Decided once settled ([`Groups::settle`]), never on the match.
            GroupState::Settled(_) => None,
            GroupState::Sequence(seq) => {
                let steps = correlation.inputs.len();
                let key = (input.time, u64::from(self.arrivals));
                let hit = Hit {
                    key,
                    origin: input.origin,
                    value: 0,
                };
                seq.hit(steps, input.rule, hit);
                let horizon = self.last_seen.saturating_sub(span);
                seq.forget_before(horizon.saturating_sub(input.grace));
                // Within the timespan: less than it apart, as in a window.
                let plain = vec![None; steps];
                let chain = seq.complete(&plain, span.saturating_sub(1), max_evidence, i64::MAX)?;
                let mut earlier = chain.evidence;
                earlier.retain(|e| *e != (input.time, input.origin));
                let reason = format!(
                    "{steps} rules matched in order within {} (timespan {})",
                    human_ms(chain.completed - chain.started),
                    human_ms(span)
                );
                let firing = Firing {
                    value: Some(steps as f64),
                    earlier,
                    trigger_value: input.shown.clone(),
                    ..Firing::new(correlation.kind.name(), reason, chain.started)
                };
                Some((chain.completed, firing))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Bound, Bounds, Compare, CorrelationInput};

    fn correlation(kind: CorrelationKind, rules: usize, gte: f64) -> Correlation {
        Correlation {
            kind,
            timespan_ms: 1000,
            condition: Bounds {
                all: vec![Bound {
                    op: Compare::Gte,
                    value: gte,
                }],
            },
            group_by: vec!["user".to_owned()],
            inputs: (0..rules)
                .map(|_| CorrelationInput {
                    rule: 0,
                    group: Vec::new(),
                    value: Vec::new(),
                })
                .collect(),
            generate: false,
            percentile: None,
        }
    }

    fn input(time: i64, rule: usize, source: Source) -> Input {
        Input {
            time,
            origin: Origin::File {
                file: 0,
                line: time as u64,
            },
            source,
            grace: 500,
            rule,
            value: 1,
            shown: None,
            made_on: None,
        }
    }

    const LIMITS: Limits = Limits {
        max_groups: 100,
        max_evidence: 20,
    };

    /// Applies (user, time, rule) matches; returns the completions as (user, time).
    fn run(
        groups: &mut Groups,
        c: &Correlation,
        matches: &[(&str, i64, usize)],
    ) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for &(user, time, rule) in matches {
            let done = groups.apply(
                (0, c),
                vec![user.into()],
                &input(time, rule, Source::Okta),
                LIMITS,
            );
            if let Some(done) = done {
                let values = groups.values(done.slot).unwrap().to_vec();
                assert_eq!(&*values[0], user);
                out.push((user.to_owned(), done.at));
            }
        }
        out
    }

    #[test]
    fn each_group_counts_its_own_matches() {
        let c = correlation(CorrelationKind::EventCount, 1, 3.0);
        let mut groups = Groups::default();
        let fired = run(
            &mut groups,
            &c,
            &[
                ("ann", 0, 0),
                ("bob", 10, 0),
                ("ann", 20, 0),
                ("bob", 30, 0),
                ("ann", 40, 0),
                ("ann", 50, 0),
                ("bob", 1030, 0),
            ],
        );
        // Ann's third is a decision, her fourth holds; Bob's third is a span too late.
        assert_eq!(fired, [("ann".to_owned(), 40)]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.stats.created, 2);
    }

    #[test]
    fn a_match_past_the_grace_of_its_group_is_late() {
        let c = correlation(CorrelationKind::EventCount, 1, 2.0);
        let mut groups = Groups::default();
        // 600 behind the group's newest (grace 500): late, not counted; 400 behind counts.
        assert!(run(&mut groups, &c, &[("ann", 1000, 0), ("ann", 400, 0)]).is_empty());
        assert_eq!(groups.stats.late, 1);
        assert_eq!(
            run(&mut groups, &c, &[("ann", 600, 0)]),
            [("ann".into(), 1000)]
        );
    }

    #[test]
    fn idle_groups_expire_on_their_sources_clock() {
        let c = correlation(CorrelationKind::EventCount, 1, 5.0);
        let mut groups = Groups::default();
        let apply = |groups: &mut Groups, user: &str, time: i64, source: Source| {
            groups.apply((0, &c), vec![user.into()], &input(time, 0, source), LIMITS)
        };
        apply(&mut groups, "ann", 0, Source::Okta);
        apply(&mut groups, "bob", 0, Source::Cloudtrail);
        apply(&mut groups, "ann", 50, Source::Okta);
        // Ann's deadline follows her newest match (50 + 100); only Okta's clock moves.
        groups.expire(Source::Okta, 150, 100);
        assert_eq!(groups.len(), 2);
        groups.expire(Source::Okta, 151, 100);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups.stats.expired, 1);
        groups.expire(Source::Cloudtrail, 101, 100);
        assert_eq!((groups.len(), groups.oldest_origin()), (0, None));
    }

    #[test]
    fn past_the_bound_the_idlest_group_goes() {
        let c = correlation(CorrelationKind::EventCount, 1, 2.0);
        let mut groups = Groups::default();
        let limits = Limits {
            max_groups: 2,
            max_evidence: 20,
        };
        for (user, time) in [("ann", 0), ("bob", 10), ("ann", 20), ("cyd", 30)] {
            let m = input(time, 0, Source::Okta);
            groups.apply((0, &c), vec![user.into()], &m, limits);
        }
        // Bob was idle longest (Ann acted at 20): he goes, and starts again from nothing.
        assert_eq!(groups.stats.evicted, 1);
        assert_eq!(groups.len(), 2);
        let again = run(&mut groups, &c, &[("bob", 40, 0)]);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_match_exactly_the_grace_behind_still_counts() {
        let c = correlation(CorrelationKind::EventCount, 1, 2.0);
        let mut groups = Groups::default();
        assert!(groups.is_empty());
        // Grace 500: 500 behind the group's newest counts, 501 behind is late.
        let fired = run(&mut groups, &c, &[("ann", 1000, 0), ("ann", 499, 0)]);
        assert!(fired.is_empty(), "{fired:?}");
        assert_eq!(groups.stats.late, 1);
        let fired = run(&mut groups, &c, &[("ann", 500, 0)]);
        assert_eq!(fired, [("ann".into(), 1000)]);
        assert!(!groups.is_empty());
    }

    #[test]
    fn the_oldest_origin_is_the_first_match_of_the_oldest_live_group() {
        let c = correlation(CorrelationKind::EventCount, 1, 5.0);
        let mut groups = Groups::default();
        let apply = |groups: &mut Groups, user: &str, time: i64| {
            groups.apply(
                (0, &c),
                vec![user.into()],
                &input(time, 0, Source::Okta),
                LIMITS,
            )
        };
        apply(&mut groups, "ann", 10);
        apply(&mut groups, "bob", 20);
        apply(&mut groups, "bob", 40);
        let line = |groups: &Groups| match groups.oldest_origin() {
            Some(Origin::File { line, .. }) => Some(line),
            _ => None,
        };
        assert_eq!(line(&groups), Some(10));
        // Ann idle past 10 + 100 goes; Bob's first match (line 20, not his newest) is then the
        // oldest input a group needs.
        groups.expire(Source::Okta, 111, 100);
        assert_eq!((groups.len(), line(&groups)), (1, Some(20)));
    }

    #[test]
    fn a_window_decision_shows_its_value_threshold_earlier_matches_and_trigger_value() {
        let c = correlation(CorrelationKind::EventCount, 1, 3.0);
        let mut groups = Groups::default();
        let limits = Limits {
            max_groups: 100,
            max_evidence: 2,
        };
        let mut done = None;
        for time in [0, 10, 20, 30] {
            let m = Input {
                shown: Some(format!("match at {time}")),
                ..input(time, 0, Source::Okta)
            };
            done = done.or(groups.apply((0, &c), vec!["ann".into()], &m, limits));
        }
        let done = done.expect("the third match holds");
        let firing = &done.firing;
        assert_eq!(done.at, 20);
        assert_eq!(firing.value, Some(3.0));
        assert_eq!(firing.threshold.as_deref(), Some(">= 3"));
        // Two earlier matches, one shown (the trigger takes the other place), one omitted.
        let earlier: Vec<i64> = firing.earlier.iter().map(|e| e.0).collect();
        assert_eq!((earlier, firing.omitted), (vec![10], 1));
        assert_eq!(firing.trigger_value.as_deref(), Some("match at 20"));
        assert!(firing.reason.ends_with("for user=ann"), "{}", firing.reason);
    }

    #[test]
    fn an_ordered_decision_shows_the_earlier_steps_and_the_triggering_rule() {
        let ordered = correlation(CorrelationKind::TemporalOrdered, 2, 2.0);
        let mut groups = Groups::default();
        let apply = |groups: &mut Groups, time: i64, rule: usize| {
            let m = Input {
                shown: Some(format!("rule {rule}")),
                ..input(time, rule, Source::Okta)
            };
            groups.apply((0, &ordered), vec!["ann".into()], &m, LIMITS)
        };
        assert!(apply(&mut groups, 10, 0).is_none());
        let done = apply(&mut groups, 40, 1).expect("0 then 1");
        let earlier: Vec<i64> = done.firing.earlier.iter().map(|e| e.0).collect();
        assert_eq!(earlier, [10], "the trigger is not among the earlier events");
        assert_eq!(done.firing.trigger_value.as_deref(), Some("rule 1"));
        assert_eq!((done.at, done.firing.value), (40, Some(2.0)));
    }

    #[test]
    fn between_groups_idle_alike_the_one_created_first_is_evicted() {
        let c = correlation(CorrelationKind::EventCount, 1, 2.0);
        let mut groups = Groups::default();
        let limits = Limits {
            max_groups: 2,
            max_evidence: 20,
        };
        let apply = |groups: &mut Groups, user: &str, time: i64| {
            let m = input(time, 0, Source::Okta);
            groups.apply((0, &c), vec![user.into()], &m, limits)
        };
        apply(&mut groups, "ann", 0);
        apply(&mut groups, "bob", 50);
        groups.expire(Source::Okta, 60, 50);
        assert_eq!(groups.len(), 1, "Ann expired");
        // Cyd takes Ann's slot, idle as long as Bob but created after him; Dan's group is one
        // too many: Bob goes, by the order of creation, not by the slots.
        apply(&mut groups, "cyd", 50);
        apply(&mut groups, "dan", 60);
        assert_eq!(groups.stats.evicted, 1);
        assert!(
            apply(&mut groups, "cyd", 70).is_some(),
            "Cyd's group was kept"
        );
        assert!(
            apply(&mut groups, "bob", 70).is_none(),
            "Bob's group starts again"
        );
    }

    #[test]
    fn temporal_holds_in_any_order_and_temporal_ordered_in_its_own() {
        let any = correlation(CorrelationKind::Temporal, 2, 2.0);
        let mut groups = Groups::default();
        // Rule 1 before rule 0 in event time, and rule 0 arriving first: the span ends at 30.
        assert_eq!(
            run(&mut groups, &any, &[("ann", 10, 0), ("ann", 30, 1)]),
            [("ann".into(), 30)]
        );
        assert_eq!(
            run(&mut groups, &any, &[("bob", 30, 1), ("bob", 10, 0)]),
            [("bob".into(), 30)]
        );
        let ordered = correlation(CorrelationKind::TemporalOrdered, 2, 2.0);
        let mut groups = Groups::default();
        // Rule 1 then rule 0 is not the order; a later rule 1 completes it.
        let fired = run(
            &mut groups,
            &ordered,
            &[("ann", 0, 1), ("ann", 10, 0), ("ann", 20, 1)],
        );
        assert_eq!(fired, [("ann".into(), 20)]);
        // Within the timespan means less than it apart: 1000 exactly is too far.
        let fired = run(&mut groups, &ordered, &[("bob", 0, 0), ("bob", 1000, 1)]);
        assert!(fired.is_empty(), "{fired:?}");
    }
}
