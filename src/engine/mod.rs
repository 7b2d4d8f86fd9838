//! The engine: per-session state on event time, rule evaluation, decisions.
//!
//! Pure and synchronous: no I/O, no wall clock. Records reach it in the order they arrive,
//! which is not event-time order (src/time/ has the model): a session's records up to its
//! source's grace older than its newest are applied by event time — windows, baselines and
//! sequences are built to give the same verdict whatever their arrival order — and older ones
//! are late (reported, not applied). Every decision that needs no timer is made on the record
//! that completes it, except a baseline's finding while its learning period could still change
//! (an earlier record yet to arrive may bring the value): that one is held until the period
//! settles ([`baseline`]). Timers (duration rules, held findings) and idle expiry run on the clock of their
//! session's source, which the caller moves with [`Engine::advance`]: one source's lag never
//! holds back another's. Same records in the same order give the same decisions, byte for byte.
//!
//! # Layout
//!
//! - this file: the session table (a slab indexed by key; per-source min-heaps of idle
//!   deadlines and timers, re-checked lazily, so nothing ever scans every session) and the
//!   per-rule dispatch;
//! - [`window`], [`baseline`], [`sequence`]: the order-robust state of each logic kind;
//! - [`correlation`]: Sigma correlations' state, per correlation and group of field values
//!   (pseudo-sessions beside the session table, with their own lateness, expiry and bound);
//! - [`firing`]: a firing made into a decision (evidence, ids, CAEP claims).
//!
//! A rule's firing is its decision, unless correlations refer to it without `generate`: then it
//! only feeds them — the match goes to its correlations' groups, and a correlation that now
//! holds decides on the session of the record that completed it (and feeds the correlations
//! that chain it, in turn).
//!
//! Heaps order ties by session sequence number (order of first appearance), never by hash, so
//! timer decisions come out in a reproducible order.
//!
//! # Kills
//!
//! One kill per session, by event time: a revoke decision in `enforce` mode marks the session
//! killed at the decision's time; a later record of it (by event time) yields one
//! `sessionguard.kill_not_enforced` decision (the revocation did not take effect) and no rule
//! decides on it. A record from before the kill that arrives late is still evaluated: it may
//! step up or alert, and it may kill once more when its kill is dated before the session's —
//! the kill sorted order makes, whose records arrived after those of a later one (a role
//! chain's issuing record after the child's own admin grant); the kill made first cannot be
//! taken back. So every rule that kills a session in sorted order kills it out of order too,
//! beside at most the kills that came first. Every rule sees the record a kill was made on,
//! for the state such an earlier kill needs. AWS sessions issued by a session (`AssumeRole*`,
//! recorded as `lineage.child`) inherit its kill and its sequence progress when they first
//! appear, so a role chain is one story. Baselines are not inherited: the chained session often
//! runs on another host than its parent (a broker assuming a role for a worker).

pub mod baseline;
pub mod correlation;
pub mod firing;
pub mod sequence;
pub mod settled;
pub mod window;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::decision::{self, Decision, PrincipalRef, RuleRef};
use crate::event::{Event, SessionKind, Source};
use crate::grant::{self, Check, GrantTable, TaskRecord};
use crate::rule::field::{Field, Value};
use crate::rule::index::RuleIndex;
use crate::rule::{
    ActionKind, Correlation, CorrelationInput, CorrelationKind, EvalCx, Fire, GrantCheck, Learn,
    MatchField, Mode, Rule, RuleSet, SessionLogic, Severity, Since, StepAggregate, Threshold,
    Tolerance,
};
use crate::source::{Origin, OriginNames};
use crate::time::{source_index, TimeConfig, SOURCES};
use baseline::Baseline;
pub use firing::human_ms;
use firing::{
    build_decision, numeric, principal_of, text_hash, threshold_text, trim_float, value_hash,
    Firing, SessionView,
};
use sequence::{Hit, SequenceState};
use window::{Aggregate, Entry, SlidingWindow};

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// A session with no event for this long (event time) is forgotten.
    pub idle_timeout_ms: i64,
    /// At most this many events are listed in a decision's evidence.
    pub max_evidence_events: usize,
    /// `iss` of CAEP claims: names this deployment to identity providers.
    pub caep_issuer: String,
    /// The most sessions held at once: a hard memory bound (about 1 KiB a session under the
    /// shipped pack). A new session beyond it evicts the session idle longest — by event time,
    /// ties by age, so eviction is deterministic — and the eviction is counted.
    pub max_sessions: usize,
    /// Graces per source, the future bound, quiet sources.
    pub time: TimeConfig,
    /// Task grants and completions every engine starts with (`--tasks`, docs/agents.md).
    pub tasks: Arc<[TaskRecord]>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            idle_timeout_ms: 12 * 3_600_000,
            max_evidence_events: 20,
            caep_issuer: "urn:sessionguard".to_owned(),
            max_sessions: 4_000_000,
            time: TimeConfig::default(),
            tasks: Arc::new([]),
        }
    }
}

/// One rule's state on one session, as [`Engine::rule_states`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleStateView {
    pub rule_id: String,
    /// `event_count`, `value_count`, `value_sum`, `new_value`, `sequence`, `duration`, or
    /// `match` (a rule without session logic).
    pub logic: &'static str,
    pub state: String,
    /// Decisions the rule has taken on the session.
    pub decisions: u64,
}

/// Counters for summaries and metrics.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub events: u64,
    pub late_events: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    /// Sessions forgotten early to stay within `max_sessions`.
    pub sessions_evicted: u64,
    /// Decisions per rule, indexed like the rule set; the last slot is kill_not_enforced.
    pub decisions_by_rule: Vec<u64>,
    /// Baseline findings held while their learning period could still change, and of those,
    /// the ones an earlier record arriving later refuted (its value joined the baseline).
    pub findings_held: u64,
    pub findings_refuted: u64,
}

impl EngineStats {
    /// Decisions made, every rule's and kill_not_enforced's.
    pub fn decisions(&self) -> u64 {
        self.decisions_by_rule.iter().sum()
    }
}

/// What became of a record handed to [`Engine::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Yes,
    /// More than its source's grace older than its session's newest record: not applied.
    Late {
        behind_ms: i64,
    },
}

type ExpiryHeap = BinaryHeap<Reverse<(i64, u64, u32)>>;
type TimerHeap = BinaryHeap<Reverse<(i64, u64, u32, u32)>>;

pub struct Engine {
    rules: Arc<RuleSet>,
    /// Which rules can match each action service.
    rule_index: RuleIndex,
    candidates: SmallVec<[u32; 32]>,
    config: EngineConfig,
    names: OriginNames,
    sessions: Vec<Option<Session>>,
    free_slots: Vec<u32>,
    /// Session slots by key. The key is stored once, in the session; the table holds only
    /// slots and finds keys through them.
    index: SessionIndex,
    /// Child session key → (parent slot, parent sequence number).
    parents: HashMap<Box<str>, (u32, u64)>,
    /// Per source: idle deadlines and timers of its sessions.
    expiry: [ExpiryHeap; SOURCES],
    timers: [TimerHeap; SOURCES],
    /// Live sessions by the oldest input position their state depends on (see
    /// [`Engine::oldest_live_origin`]); one entry per session, removed with it.
    by_first: BTreeSet<(OriginKey, u32)>,
    /// Per source: where its timers and idle expiry stand.
    clock: [i64; SOURCES],
    next_seq: u64,
    key_buf: String,
    cx: EvalCx,
    stats: EngineStats,
    /// Correlations' state, per correlation and group.
    groups: correlation::Groups,
    /// Task grants of autonomous agents, for `agent_grant` rules (crate::grant).
    grants: GrantTable,
    /// The grant check of the event in hand, made once for all `agent_grant` rules.
    grant_check: Option<Check>,
}

/// A hash table of session slots keyed by the sessions' own keys.
#[derive(Default)]
struct SessionIndex {
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl SessionIndex {
    fn hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn get(&self, sessions: &[Option<Session>], key: &str) -> Option<u32> {
        self.table
            .find(self.hash(key), |&slot| key_at(sessions, slot) == key)
            .copied()
    }

    fn insert(&mut self, sessions: &[Option<Session>], slot: u32) {
        let hash = self.hash(key_at(sessions, slot));
        let hasher = &self.hasher;
        self.table.insert_unique(hash, slot, |&s| {
            std::hash::BuildHasher::hash_one(hasher, key_at(sessions, s))
        });
    }

    fn remove(&mut self, key: &str, slot: u32) {
        if let Ok(entry) = self.table.find_entry(self.hash(key), |&s| s == slot) {
            entry.remove();
        }
    }
}

fn key_at(sessions: &[Option<Session>], slot: u32) -> &str {
    sessions
        .get(slot as usize)
        .and_then(Option::as_ref)
        .map_or("", |s| &s.key)
}

struct Session {
    seq: u64,
    key: Box<str>,
    kind: SessionKind,
    source: Source,
    derived: bool,
    kill_reported: bool,
    /// When a `dry_run` kill was decided; [`NOT_KILLED`] otherwise.
    dry_run_killed: i64,
    /// Records applied so far: orders a session's events that share an event time.
    arrivals: u32,
    started: i64,
    /// The newest event time applied.
    last_seen: i64,
    /// Role-chain links, for the few sessions that have them.
    links: Option<Box<Links>>,
    /// When an enforced kill was decided; [`NOT_KILLED`] otherwise (an `Option` would cost 8
    /// more bytes on every session).
    killed: i64,
    /// State of the rules that have matched this session; empty (no allocation) for most.
    rules: Vec<(u32, RuleState)>,
    /// The oldest input this session's state depends on: its first record, or its parent's
    /// oldest when it inherited from one.
    first: Origin,
}

impl Session {
    fn parent(&self) -> Option<&str> {
        self.links.as_ref().and_then(|l| l.parent.as_deref())
    }
}

/// The most sessions a decision's role chain names: deeper chains are cut there.
const MAX_CHAIN: usize = 16;

/// Whether a rule (on a session or a group) may decide at `t`: not within `suppress` of its
/// last decision, on either side, so arrival order does not pick which one speaks. When it
/// may, the decision is counted and its ordinal returned.
fn unsuppressed(
    last_decided: &mut i64,
    decisions: &mut u64,
    t: i64,
    suppress: Option<i64>,
) -> Option<u64> {
    if let Some(quiet) = suppress {
        if *last_decided != NEVER && t.abs_diff(*last_decided) < quiet as u64 {
            return None;
        }
    }
    *last_decided = t;
    *decisions += 1;
    Some(*decisions - 1)
}

/// `Session::killed` of a session no enforced rule has killed.
const NOT_KILLED: i64 = i64::MIN;

/// A session's kill time once a kill at `t` is decided: the earlier of the two.
fn earliest_kill(killed: i64, t: i64) -> i64 {
    if killed == NOT_KILLED {
        t
    } else {
        killed.min(t)
    }
}

/// "Never" for the event times kept in rule states.
const NEVER: i64 = i64::MIN;

/// Sessions this one was issued from, or issued.
#[derive(Default)]
struct Links {
    parent: Option<Box<str>>,
    children: Vec<Box<str>>,
}

/// Where a session's state starts in its input ([`Origin::sort_key`]).
type OriginKey = (u64, i64);

fn origin_key(origin: Origin) -> OriginKey {
    origin.sort_key()
}

#[derive(Clone)]
struct RuleState {
    decisions: u64,
    /// Event time of the last decision ([`NEVER`] before the first): `suppress` keeps the rule
    /// quiet that long on either side of it, so arrival order does not pick which one speaks.
    last_decided: i64,
    logic: LogicState,
}

impl Default for RuleState {
    fn default() -> Self {
        RuleState {
            decisions: 0,
            last_decided: NEVER,
            logic: LogicState::Empty,
        }
    }
}

#[derive(Clone, Default)]
enum LogicState {
    #[default]
    Empty,
    Window(SlidingWindow),
    Baseline(Baseline),
    /// Boxed: sequences are rare and their state is the largest.
    Sequence(Box<SequenceState>),
    Duration(DurationState),
    /// What one session used of each grant's budget.
    Budget(Box<BudgetUse>),
}

/// Per grant that bound the session's events: calls, bytes, distinct resources (hashes), and
/// whether the budget's finding was made. Distinct resources stop being recorded past the
/// budget, so the set stays bounded.
#[derive(Clone, Default)]
struct BudgetUse {
    grants: Vec<(u32, Usage)>,
}

#[derive(Clone, Default)]
struct Usage {
    calls: u64,
    bytes: u64,
    resources: std::collections::HashSet<i64>,
    decided: bool,
}

#[derive(Clone)]
struct DurationState {
    /// Where the clock starts ([`i64::MAX`] while only an end has been seen).
    since: i64,
    origin: Origin,
    /// The timer set ([`NEVER`] when none).
    due: i64,
    /// The earliest end (`until`) at or after `since` ([`NEVER`] when none).
    ended: i64,
    /// Who acted on the session, for a decision a timer takes without an event in hand.
    principal: Option<Box<PrincipalRef>>,
    /// A life after a logout: the session's start is the first life's, so `since:
    /// session_start` counts from this life's first match.
    renewed: bool,
}

impl Default for DurationState {
    fn default() -> Self {
        DurationState {
            since: i64::MAX,
            origin: Origin::File { file: 0, line: 0 },
            due: NEVER,
            ended: NEVER,
            principal: None,
            renewed: false,
        }
    }
}

impl DurationState {
    fn ended_before(&self, t: i64) -> bool {
        self.ended != NEVER && self.ended < t
    }
}

impl Engine {
    pub fn new(rules: RuleSet, config: EngineConfig) -> Engine {
        Engine::with_shared_rules(Arc::new(rules), config)
    }

    /// An engine over rules shared with other engines (the Kafka runtime keeps one engine per
    /// partition, all with the same compiled rules).
    pub fn with_shared_rules(rules: Arc<RuleSet>, config: EngineConfig) -> Engine {
        let stats = EngineStats {
            decisions_by_rule: vec![0; rules.rules.len() + 1],
            ..EngineStats::default()
        };
        let mut grants = GrantTable::default();
        for record in config.tasks.iter() {
            grants.apply(record);
        }
        Engine {
            rule_index: RuleIndex::new(&rules),
            candidates: SmallVec::new(),
            rules,
            config,
            names: OriginNames::default(),
            sessions: Vec::new(),
            free_slots: Vec::new(),
            index: SessionIndex::default(),
            parents: HashMap::new(),
            expiry: Default::default(),
            timers: Default::default(),
            by_first: BTreeSet::new(),
            clock: [i64::MIN; SOURCES],
            next_seq: 0,
            key_buf: String::new(),
            cx: EvalCx::default(),
            stats,
            groups: correlation::Groups::default(),
            grants,
            grant_check: None,
        }
    }

    /// Forgets every session, timer and counter, keeping the rules and the task grants.
    pub fn reset(&mut self) {
        let rules = std::mem::take(&mut self.rules);
        let grants = std::mem::take(&mut self.grants);
        let config = self.config.clone();
        *self = Engine::with_shared_rules(rules, config);
        self.grants = grants;
    }

    /// Applies a task grant or completion: events processed from now on are checked against
    /// it, at their event time (docs/agents.md).
    pub fn apply_task(&mut self, record: &TaskRecord) {
        self.grants.apply(record);
    }

    /// The task grants known.
    pub fn grants(&self) -> &GrantTable {
        &self.grants
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Names of files and topics that origins refer to.
    /// What each rule that has matched session `key` holds for it now, in rule order: the
    /// window's aggregate against its threshold, the baseline's size, the sequence's steps, the
    /// duration's clock (`sessionguard explain`). Empty for a session not held.
    pub fn rule_states(&self, key: &str) -> Vec<RuleStateView> {
        let Some(session) = self
            .index
            .get(&self.sessions, key)
            .and_then(|slot| self.sessions[slot as usize].as_ref())
        else {
            return Vec::new();
        };
        let mut views = Vec::new();
        for (index, state) in &session.rules {
            let Some(rule) = self.rules.rules.get(*index as usize) else {
                continue;
            };
            let threshold = match &rule.session {
                Some(
                    SessionLogic::EventCount { threshold, .. }
                    | SessionLogic::ValueCount { threshold, .. }
                    | SessionLogic::ValueSum { threshold, .. },
                ) => format!(" (fires at {})", threshold_text(threshold)),
                _ => String::new(),
            };
            let (logic, text) = match &state.logic {
                LogicState::Empty => ("match", "matched".to_owned()),
                LogicState::Window(window) => (
                    window.kind().name(),
                    format!(
                        "{} in the last {}{threshold}",
                        trim_float(window.value_at(session.last_seen)),
                        human_ms(window.span_ms())
                    ),
                ),
                LogicState::Baseline(baseline) => {
                    let (learnt, later) = baseline.sizes();
                    (
                        "new_value",
                        format!(
                            "baseline of {}; {later} new since",
                            crate::units::plural(learnt, "value")
                        ),
                    )
                }
                LogicState::Sequence(sequence) => {
                    let steps = match &rule.session {
                        Some(SessionLogic::Sequence { steps, .. }) => steps.len(),
                        _ => 0,
                    };
                    (
                        "sequence",
                        format!("{} of {steps} steps reached", sequence.steps_hit()),
                    )
                }
                LogicState::Duration(duration) => {
                    let mut text = if duration.since == i64::MAX {
                        "clock not started".to_owned()
                    } else {
                        format!("clock since {}", crate::event::Timestamp(duration.since))
                    };
                    if duration.due != NEVER {
                        let _ = write!(text, ", due {}", crate::event::Timestamp(duration.due));
                    }
                    ("duration", text)
                }
                LogicState::Budget(used) => {
                    let text = used
                        .grants
                        .iter()
                        .map(|(_, u)| {
                            format!(
                                "{} calls, {} bytes, {} resources",
                                u.calls,
                                u.bytes,
                                u.resources.len()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    ("agent_grant", format!("grant budget used: {text}"))
                }
            };
            views.push(RuleStateView {
                rule_id: rule.id.clone(),
                logic,
                state: text,
                decisions: state.decisions,
            });
        }
        views
    }

    pub fn origin_names(&mut self) -> &mut OriginNames {
        &mut self.names
    }

    /// Sessions currently held.
    pub fn session_count(&self) -> usize {
        self.index.len()
    }

    /// Correlation groups currently held.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Counters of correlation groups: created, expired, evicted, late matches.
    pub fn group_stats(&self) -> &correlation::GroupStats {
        &self.groups.stats
    }

    /// The oldest input any live session's state depends on: replaying the input from there,
    /// with the clocks as they were before it, rebuilds every live session exactly.
    /// Conservative: a session's whole history counts from its first record (or its parent's,
    /// when it inherited the parent's state), even when its windows no longer need it. `None`
    /// when no session or correlation group is held. Kept in ordered indexes, so this is
    /// O(log n).
    pub fn oldest_live_origin(&self) -> Option<Origin> {
        let session = self.by_first.first().and_then(|&(_, slot)| {
            self.sessions
                .get(slot as usize)
                .and_then(Option::as_ref)
                .map(|s| s.first)
        });
        session
            .into_iter()
            .chain(self.groups.oldest_origin())
            .min_by_key(|o| origin_key(*o))
    }

    /// Evaluates one event; decisions are appended to `out`. A record more than its source's
    /// grace older than its session's newest is late: counted, not applied.
    pub fn process(
        &mut self,
        event: &Event<'_>,
        origin: Origin,
        out: &mut Vec<Decision>,
    ) -> Applied {
        self.stats.events += 1;
        let t = event.time.millis();
        let grace = self.config.time.grace(event.source);
        self.cx.reset();
        self.grant_check = None;

        self.key_buf.clear();
        let _ = write!(self.key_buf, "{}", event.session.key);
        let slot = match self.index.get(&self.sessions, &self.key_buf) {
            Some(slot) => {
                let newest = self.session_mut(slot).last_seen;
                if t < newest.saturating_sub(grace) {
                    self.stats.late_events += 1;
                    return Applied::Late {
                        behind_ms: newest.saturating_sub(t),
                    };
                }
                slot
            }
            None => self.create_session(event, t, origin),
        };
        let session = self.session_mut(slot);
        session.last_seen = session.last_seen.max(t);
        session.arrivals = session.arrivals.wrapping_add(1);
        if event.session.created_at.is_none() {
            session.started = session.started.min(t);
        }
        if session.killed != NOT_KILLED && t >= session.killed {
            if !session.kill_reported {
                session.kill_reported = true;
                self.kill_not_enforced(slot, event, origin, out);
            }
            self.issued(slot, event, out);
            return Applied::Yes;
        }
        // Only the rules that can match this event's service, in rule order.
        let mut candidates = std::mem::take(&mut self.candidates);
        self.rule_index
            .candidates(&event.action.service, &mut candidates);
        // Every rule sees the record, also after one of them killed on it: their state must
        // hold it for a kill dated earlier whose records are still to come.
        for &rule_index in &candidates {
            self.evaluate(rule_index as usize, slot, event, origin, out);
        }
        self.candidates = candidates;
        self.issued(slot, event, out);
        Applied::Yes
    }

    /// The event issued a session (`AssumeRole*`): link it, after the event's own rules ran, so
    /// the child inherits the state this event left.
    fn issued(&mut self, slot: u32, event: &Event<'_>, out: &mut Vec<Decision>) {
        if let Some(child) = event.lineage.as_ref().and_then(|l| l.child.as_ref()) {
            self.register_child(slot, &child.to_string(), event, out);
        }
    }

    /// Moves the clock of `source` to `to` (never back): fires its sessions' due timers and
    /// forgets its idle sessions.
    pub fn advance(&mut self, source: Source, to: i64, out: &mut Vec<Decision>) {
        let s = source_index(source);
        if to <= self.clock[s] {
            return;
        }
        self.clock[s] = to;
        // Before anything is forgotten: a settled span's session is live at least until then.
        self.settle(source, to, out);
        while let Some(&Reverse((fire_at, seq, slot, rule))) = self.timers[s].peek() {
            if fire_at >= to {
                break;
            }
            self.timers[s].pop();
            self.fire_timer(fire_at, seq, slot, rule as usize, out);
        }
        while self
            .idlest_in(s)
            .is_some_and(|(deadline, ..)| deadline < to)
        {
            if let Some(Reverse((_, _, slot))) = self.expiry[s].pop() {
                self.remove_session(slot);
                self.stats.sessions_expired += 1;
            }
        }
        self.groups.expire(source, to, self.config.idle_timeout_ms);
    }

    /// Moves every source's clock to `marks` (by [`source_index`]), see [`Self::advance`].
    pub fn advance_all(&mut self, marks: &[i64; SOURCES], out: &mut Vec<Decision>) {
        for source in Source::ALL {
            self.advance(source, marks[source_index(source)], out);
        }
    }

    /// The end of the input: every source's clock moves to its newest record (`marks`), and,
    /// since nothing more can arrive, the spans ending at that very time are settled too.
    pub fn finish(&mut self, marks: &[i64; SOURCES], out: &mut Vec<Decision>) {
        self.advance_all(marks, out);
        for source in Source::ALL {
            let newest = marks[source_index(source)];
            if newest != i64::MIN {
                self.settle(source, newest.saturating_add(1), out);
            }
        }
    }

    /// Decides the settled correlations' spans of `source` that end before `to`.
    fn settle(&mut self, source: Source, to: i64, out: &mut Vec<Decision>) {
        let max_evidence = self.config.max_evidence_events;
        let settled = self
            .groups
            .settle(source, to, &self.rules.rules, max_evidence);
        for done in settled {
            self.decide_settled(done, out);
        }
    }

    /// The current top of a source's expiry heap, after dropping entries of removed sessions
    /// and re-queueing those of sessions active since they were pushed: (deadline, seq, slot).
    fn idlest_in(&mut self, s: usize) -> Option<(i64, u64, u32)> {
        let idle = self.config.idle_timeout_ms;
        while let Some(&Reverse((deadline, seq, slot))) = self.expiry[s].peek() {
            let current = match self.sessions.get(slot as usize).and_then(Option::as_ref) {
                Some(session) if session.seq == seq => session.last_seen.saturating_add(idle),
                _ => {
                    self.expiry[s].pop();
                    continue;
                }
            };
            if current > deadline {
                self.expiry[s].pop();
                self.expiry[s].push(Reverse((current, seq, slot)));
                continue;
            }
            return Some((deadline, seq, slot));
        }
        None
    }

    /// Removes the session idle longest, whatever its source.
    fn evict_idlest(&mut self) {
        let idlest = (0..SOURCES)
            .filter_map(|s| {
                self.idlest_in(s)
                    .map(|(deadline, seq, _)| (deadline, seq, s))
            })
            .min();
        if let Some((_, _, s)) = idlest {
            if let Some(Reverse((_, _, slot))) = self.expiry[s].pop() {
                self.remove_session(slot);
                self.stats.sessions_evicted += 1;
            }
        }
    }

    fn session_mut(&mut self, slot: u32) -> &mut Session {
        self.sessions[slot as usize]
            .as_mut()
            .expect("indexed slots hold sessions")
    }

    fn create_session(&mut self, event: &Event<'_>, t: i64, first: Origin) -> u32 {
        if self.index.len() >= self.config.max_sessions.max(1) {
            self.evict_idlest();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.sessions_created += 1;
        let mut session = Session {
            seq,
            key: self.key_buf.as_str().into(),
            kind: event.session.kind,
            source: event.source,
            derived: event.session.derived,
            kill_reported: false,
            dry_run_killed: NOT_KILLED,
            arrivals: 0,
            started: event.session.created_at.map_or(t, |c| c.millis().min(t)),
            last_seen: t,
            links: None,
            killed: NOT_KILLED,
            rules: Vec::new(),
            first,
        };
        if let Some((parent_slot, parent_seq)) = self.parents.remove(self.key_buf.as_str()) {
            if let Some(parent) = self.sessions[parent_slot as usize]
                .as_ref()
                .filter(|p| p.seq == parent_seq)
            {
                session.links = Some(Box::new(Links {
                    parent: Some(parent.key.clone()),
                    children: Vec::new(),
                }));
                session.killed = parent.killed;
                session.arrivals = parent.arrivals;
                if origin_key(parent.first) < origin_key(session.first) {
                    session.first = parent.first;
                }
                session.rules = parent
                    .rules
                    .iter()
                    // Sequence progress follows the chain; baselines do not, because a
                    // chained session often runs elsewhere (a broker assumes a role for a
                    // worker on another host) and would look like token reuse.
                    .filter(|(_, state)| matches!(state.logic, LogicState::Sequence(_)))
                    .map(|(rule, state)| {
                        let mut inherited = state.clone();
                        inherited.decisions = 0;
                        inherited.last_decided = NEVER;
                        (*rule, inherited)
                    })
                    .collect();
            }
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.sessions[slot as usize] = Some(session);
                slot
            }
            None => {
                self.sessions.push(Some(session));
                (self.sessions.len() - 1) as u32
            }
        };
        self.index.insert(&self.sessions, slot);
        let first = self.session_mut(slot).first;
        self.by_first.insert((origin_key(first), slot));
        let deadline = t.saturating_add(self.config.idle_timeout_ms);
        self.expiry[source_index(event.source)].push(Reverse((deadline, seq, slot)));
        slot
    }

    fn register_child(
        &mut self,
        parent_slot: u32,
        child: &str,
        event: &Event<'_>,
        out: &mut Vec<Decision>,
    ) {
        let parent = self.session_mut(parent_slot);
        let seq = parent.seq;
        let links = parent.links.get_or_insert_with(Box::default);
        if !links.children.iter().any(|c| &**c == child) {
            links.children.push(child.into());
        }
        match self.index.get(&self.sessions, child) {
            Some(child_slot) if child_slot != parent_slot => {
                self.link_late(parent_slot, child_slot, event, out);
            }
            Some(_) => {}
            None => {
                self.parents.insert(child.into(), (parent_slot, seq));
            }
        }
    }

    /// A chained session whose own records arrived before the record that issued it: it
    /// inherits now what it would have inherited at its start — the kill and the sequence
    /// progress — and a sequence the two complete together decides on the child.
    fn link_late(
        &mut self,
        parent_slot: u32,
        child_slot: u32,
        event: &Event<'_>,
        out: &mut Vec<Decision>,
    ) {
        let (parent_key, parent_killed, parent_first, inherited) = {
            let parent = self.sessions[parent_slot as usize]
                .as_ref()
                .expect("live slot");
            let sequences: Vec<(u32, SequenceState)> = parent
                .rules
                .iter()
                .filter_map(|(rule, state)| match &state.logic {
                    LogicState::Sequence(seq) => Some((*rule, (**seq).clone())),
                    _ => None,
                })
                .collect();
            (parent.key.clone(), parent.killed, parent.first, sequences)
        };
        let child = self.session_mut(child_slot);
        let links = child.links.get_or_insert_with(Box::default);
        if links.parent.is_some() {
            return;
        }
        links.parent = Some(parent_key);
        if parent_killed != NOT_KILLED {
            child.killed = earliest_kill(child.killed, parent_killed);
        }
        let child_first = child.first;
        if origin_key(parent_first) < origin_key(child_first) {
            self.by_first.remove(&(origin_key(child_first), child_slot));
            self.session_mut(child_slot).first = parent_first;
            self.by_first.insert((origin_key(parent_first), child_slot));
        }
        let max_evidence = self.config.max_evidence_events;
        for (rule_index, from_parent) in inherited {
            let rule_index = rule_index as usize;
            let Some(SessionLogic::Sequence {
                maxspan_ms, steps, ..
            }) = &self.rules.rules[rule_index].session
            else {
                continue;
            };
            let aggregates = step_aggregates(steps);
            let killed = self.kill_bound(rule_index, child_slot);
            let state = rule_state_in(&mut self.sessions, child_slot, rule_index);
            let LogicState::Sequence(seq) =
                ensure(&mut state.logic, || LogicState::Sequence(Box::default()))
            else {
                continue;
            };
            seq.absorb(&from_parent);
            let Some(chain) = seq.complete(&aggregates, *maxspan_ms, max_evidence, killed) else {
                continue;
            };
            let firing = Firing {
                value: Some(steps.len() as f64),
                earlier: chain.evidence,
                principal: Some(principal_of(event)),
                ..Firing::new(
                    "sequence",
                    format!(
                        "{} steps in order within {} (maxspan {}), across the role chain",
                        steps.len(),
                        human_ms(chain.completed - chain.started),
                        human_ms(*maxspan_ms)
                    ),
                    chain.started,
                )
            };
            self.fire(rule_index, child_slot, chain.completed, None, firing, out);
        }
    }

    fn remove_session(&mut self, slot: u32) {
        if let Some(session) = self.sessions[slot as usize].take() {
            self.index.remove(&session.key, slot);
            self.by_first.remove(&(origin_key(session.first), slot));
            let children = session.links.iter().flat_map(|l| l.children.iter());
            for child in children {
                if self
                    .parents
                    .get(child)
                    .is_some_and(|(s, q)| *s == slot && *q == session.seq)
                {
                    self.parents.remove(child);
                }
            }
            self.free_slots.push(slot);
        }
    }

    fn evaluate(
        &mut self,
        rule_index: usize,
        slot: u32,
        event: &Event<'_>,
        origin: Origin,
        out: &mut Vec<Decision>,
    ) {
        let (session_started, session_seq, source, newest, arrival) = {
            let s = self.sessions[slot as usize].as_ref().expect("live slot");
            (s.started, s.seq, s.source, s.last_seen, s.arrivals)
        };
        let rule = &self.rules.rules[rule_index];
        let cx = &mut self.cx;
        let mut step = Step {
            event,
            origin,
            t: event.time.millis(),
            grace: self.config.time.grace(source),
            max_evidence: self.config.max_evidence_events,
            at: event.time.millis(),
            trigger: Some((event, origin)),
            timer: None,
            clock: self.clock[source_index(source)],
            held: false,
        };
        let firing = match &rule.session {
            None => rule.detection.matches(event, cx).then(|| {
                let reason = match &rule.output {
                    Some(output) => output.render(event, &cx.scratch),
                    None => format!("{} matched the rule's detection", event.action),
                };
                Firing::new("match", reason, step.t)
            }),
            Some(SessionLogic::Sequence {
                maxspan_ms,
                steps,
                until,
            }) => {
                let closes = until
                    .as_ref()
                    .is_some_and(|u| rule.detection.eval(u, event, cx));
                let hits = if closes {
                    SmallVec::new()
                } else {
                    sequence_hits(rule, steps, event, cx)
                };
                if hits.is_empty() && !closes {
                    return;
                }
                let killed = self.kill_bound(rule_index, slot);
                let state = rule_state_in(&mut self.sessions, slot, rule_index);
                let LogicState::Sequence(seq) =
                    ensure(&mut state.logic, || LogicState::Sequence(Box::default()))
                else {
                    return;
                };
                step.sequence(
                    seq,
                    steps,
                    *maxspan_ms,
                    (closes, &hits),
                    (arrival, newest),
                    killed,
                )
            }
            Some(SessionLogic::Duration {
                until: Some(until), ..
            }) if rule.detection.eval(until, event, cx) => {
                // The session ended (a logout): no timer of this rule fires past it.
                let state = rule_state_in(&mut self.sessions, slot, rule_index);
                if let LogicState::Duration(d) =
                    ensure(
                        &mut state.logic,
                        || LogicState::Duration(Default::default()),
                    )
                {
                    if d.since == i64::MAX || step.t >= d.since {
                        d.ended = if d.ended == NEVER {
                            step.t
                        } else {
                            d.ended.min(step.t)
                        };
                    }
                }
                return;
            }
            Some(SessionLogic::AgentGrant { check }) => {
                if !rule.detection.matches(event, cx) {
                    return;
                }
                let found = &*self
                    .grant_check
                    .get_or_insert_with(|| self.grants.check(event, &cx.scratch));
                let in_force = matches!(
                    found,
                    Check::Within { .. } | Check::Outside { .. } | Check::UnnamedRole { .. }
                );
                // Only budgets keep state, and only for sessions a grant in force binds.
                let state = (*check == GrantCheck::Budget && in_force)
                    .then(|| rule_state_in(&mut self.sessions, slot, rule_index));
                grant_firing(*check, found, &self.grants, state, event)
            }
            Some(logic) => {
                if !rule.detection.matches(event, cx) {
                    return;
                }
                let state = rule_state_in(&mut self.sessions, slot, rule_index);
                step.logic(logic, state, cx, session_started)
            }
        };
        self.stats.findings_held += u64::from(step.held);
        if let Some(due) = step.timer {
            self.timers[source_index(source)].push(Reverse((
                due,
                session_seq,
                slot,
                rule_index as u32,
            )));
        }
        if let Some(firing) = firing {
            let (at, trigger) = (step.at, step.trigger);
            self.fire(rule_index, slot, at, trigger, firing, out);
        }
    }

    fn fire_timer(
        &mut self,
        fire_at: i64,
        seq: u64,
        slot: u32,
        rule_index: usize,
        out: &mut Vec<Decision>,
    ) {
        let Some(session) = self.sessions.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        if session.seq != seq {
            return;
        }
        if let Some(SessionLogic::NewValue { .. } | SessionLogic::ScopeGrowth { .. }) =
            &self.rules.rules[rule_index].session
        {
            return self.release_held(fire_at, slot, rule_index, out);
        }
        // A session that went idle past its timeout before the timer was due had ended then.
        let ended = session
            .last_seen
            .saturating_add(self.config.idle_timeout_ms)
            < fire_at;
        // (A session killed by then gets no decision: `fire` sees to it.)
        if ended {
            return;
        }
        let (limit, active_within) = match &self.rules.rules[rule_index].session {
            Some(SessionLogic::Duration {
                limit_ms,
                active_within_ms,
                ..
            }) => (*limit_ms, *active_within_ms),
            _ => return,
        };
        // No sign of life near the due time: the session ended without saying so.
        if active_within.is_some_and(|w| session.last_seen < fire_at.saturating_sub(w)) {
            return;
        }
        let Some(LogicState::Duration(d)) = session
            .rules
            .iter()
            .find(|(r, _)| *r as usize == rule_index)
            .map(|(_, s)| s.logic.clone())
        else {
            return;
        };
        // A timer moved earlier (an earlier record arrived) or past an end: stale.
        if d.due != fire_at || d.ended_before(fire_at) {
            return;
        }
        let firing = Firing {
            value: Some(limit as f64 / 1000.0),
            threshold: Some(format!("> {}", human_ms(limit))),
            earlier: vec![(d.since, d.origin)],
            principal: d.principal.map(|p| *p),
            ..Firing::new(
                "duration",
                format!(
                    "session still active {} after {}",
                    human_ms(limit),
                    if d.since == session.started {
                        "it started"
                    } else {
                        "its first matching event"
                    }
                ),
                d.since,
            )
        };
        self.fire(rule_index, slot, fire_at, None, firing, out);
    }

    /// The timer of a baseline's held findings went off (`due`): its learning period is
    /// settled; the held values still outside it are reported, by event time.
    fn release_held(&mut self, due: i64, slot: u32, rule_index: usize, out: &mut Vec<Decision>) {
        let aggregate = match self.rules.rules[rule_index].session {
            Some(SessionLogic::ScopeGrowth { .. }) => "scope_growth",
            _ => "new_value",
        };
        let state = rule_state_in(&mut self.sessions, slot, rule_index);
        let LogicState::Baseline(b) = &mut state.logic else {
            return;
        };
        let (released, refuted) = b.release(due);
        self.stats.findings_refuted += refuted as u64;
        for held in released {
            let firing = outside_firing(
                &held.outside,
                held.text,
                aggregate,
                held.principal,
                held.action,
            );
            self.fire(rule_index, slot, held.outside.time, None, firing, out);
        }
    }

    /// A rule's firing: its decision, unless it only feeds correlations; then the
    /// correlations it feeds take the match.
    fn fire(
        &mut self,
        rule_index: usize,
        slot: u32,
        t: i64,
        trigger: Option<(&Event<'_>, Origin)>,
        firing: Firing,
        out: &mut Vec<Decision>,
    ) {
        if self.after_kill(rule_index, slot, t) {
            return;
        }
        let rule = &self.rules.rules[rule_index];
        if rule.feeds.is_empty() {
            return self.decide(rule_index, slot, t, trigger, firing, out);
        }
        // Where the match was read: the record in hand, else the last of its evidence.
        let origin = trigger
            .map(|(_, o)| o)
            .or_else(|| firing.held_trigger.as_ref().map(|h| h.1))
            .or_else(|| firing.earlier.last().map(|e| e.1));
        if rule.generate {
            self.decide(rule_index, slot, t, trigger, firing, out);
        }
        if let Some(origin) = origin {
            self.correlate(rule_index, slot, (t, origin), trigger.map(|(e, _)| e), out);
        }
    }

    /// A match of rule `rule_index` (at `t`, read at `origin`, on the session at `slot`) into
    /// the groups of the correlations it feeds; a correlation that now holds decides and, in
    /// turn, feeds the correlations that chain it. Breadth-first with a queue: chains may be
    /// long.
    fn correlate(
        &mut self,
        rule_index: usize,
        slot: u32,
        (t, origin): (i64, Origin),
        event: Option<&Event<'_>>,
        out: &mut Vec<Decision>,
    ) {
        let todo = VecDeque::from([(rule_index, t, None)]);
        self.correlate_chain(todo, slot, origin, event, out);
    }

    /// The matches in `todo` — (the rule that matched, when, its group's values when it is a
    /// correlation) — into the groups of the correlations they feed, and on down the chains.
    fn correlate_chain(
        &mut self,
        mut todo: VecDeque<(usize, i64, Option<correlation::Values>)>,
        slot: u32,
        origin: Origin,
        event: Option<&Event<'_>>,
        out: &mut Vec<Decision>,
    ) {
        let rules = Arc::clone(&self.rules);
        let (source, session_seq) = {
            let session = self.session_mut(slot);
            (session.source, session.seq)
        };
        let grace = self.config.time.grace(source);
        let limits = correlation::Limits {
            max_groups: self.config.max_sessions,
            max_evidence: self.config.max_evidence_events,
        };
        while let Some((matched, at, inner)) = todo.pop_front() {
            for &(c, j) in &rules.rules[matched].feeds {
                let corr_rule = &rules.rules[c as usize];
                let Some(correlation) = corr_rule.correlation.as_deref() else {
                    continue;
                };
                let Some(input) = correlation.inputs.get(j as usize) else {
                    continue;
                };
                let from = MatchView {
                    event,
                    inner: inner.as_deref(),
                };
                let Some(values) = from.values(&input.group, &mut self.cx) else {
                    continue;
                };
                let Some((value, shown)) =
                    from.measure(correlation, input, &rules.rules[matched], &mut self.cx)
                else {
                    continue;
                };
                let made_on = correlation.kind.is_settled().then(|| settled::MadeOn {
                    session: (slot, session_seq),
                    record: event.map(|e| Box::new((principal_of(e), e.action.to_string().into()))),
                });
                let taken = correlation::Input {
                    time: at,
                    origin,
                    source,
                    grace,
                    rule: j as usize,
                    value,
                    shown,
                    made_on,
                };
                let Some(done) = self.groups.apply((c, correlation), values, &taken, limits) else {
                    continue;
                };
                if !corr_rule.feeds.is_empty() {
                    let values = self.groups.values(done.slot).map(Box::from);
                    todo.push_back((c as usize, done.at, values));
                }
                if corr_rule.generate {
                    let trigger = event.map(|e| (e, origin));
                    self.decide_group(
                        c as usize,
                        done.slot,
                        slot,
                        (done.at, trigger),
                        done.firing,
                        out,
                    );
                }
            }
        }
    }

    /// A settled span of a correlation's group that held: decided on the session of the match
    /// that ends it, and fed to the correlations that chain it.
    fn decide_settled(&mut self, done: correlation::SettledCompletion, out: &mut Vec<Decision>) {
        let (slot, seq) = done.session;
        let live = self
            .sessions
            .get(slot as usize)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.seq == seq);
        if !live {
            self.groups.stats.orphaned += 1;
            return;
        }
        let c = done.correlation as usize;
        let group = done.completion.slot;
        let at = done.completion.at;
        let rules = Arc::clone(&self.rules);
        let corr_rule = &rules.rules[c];
        if corr_rule.generate {
            let firing = done.completion.firing;
            self.decide_group(c, group, slot, (at, None), firing, out);
        }
        if !corr_rule.feeds.is_empty() {
            let values = self.groups.values(group).map(Box::from);
            let todo = VecDeque::from([(c, at, values)]);
            self.correlate_chain(todo, slot, done.origin, None, out);
        }
    }

    /// A correlation's decision on one of its groups, made on the session of the record that
    /// completed it: suppression and ordinals are the group's.
    fn decide_group(
        &mut self,
        rule_index: usize,
        group: u32,
        slot: u32,
        (t, trigger): (i64, Option<(&Event<'_>, Origin)>),
        firing: Firing,
        out: &mut Vec<Decision>,
    ) {
        if self.after_kill(rule_index, slot, t) {
            return;
        }
        let suppress = self.rules.rules[rule_index].suppress_ms;
        let Some(group) = self.groups.group_mut(group) else {
            return;
        };
        let Some(ordinal) =
            unsuppressed(&mut group.last_decided, &mut group.decisions, t, suppress)
        else {
            return;
        };
        self.emit(rule_index, slot, (t, ordinal), trigger, firing, out);
    }

    /// Whether a match of rule `rule_index` at `t` comes at or after its session's kill
    /// ([`Engine::kill_bound`]).
    fn after_kill(&self, rule_index: usize, slot: u32, t: i64) -> bool {
        t >= self.kill_bound(rule_index, slot)
    }

    /// From when on a match of rule `rule_index` on the session neither decides nor feeds a
    /// correlation: its enforced kill (no rule runs on a killed session's later records) or,
    /// for a `dry_run` kill rule, its dry-run kill (one each); `i64::MAX` before any. A match
    /// dated before the kill still counts, kills included: its records arrived after those of
    /// a kill later in event time (a role chain's issuing record after the child's own admin
    /// grant), and it is the kill sorted order makes.
    fn kill_bound(&self, rule_index: usize, slot: u32) -> i64 {
        let Some(session) = self.sessions.get(slot as usize).and_then(Option::as_ref) else {
            return i64::MIN;
        };
        let rule: &Rule = &self.rules.rules[rule_index];
        let at = |killed: i64| {
            if killed == NOT_KILLED {
                i64::MAX
            } else {
                killed
            }
        };
        let dry_run = if rule.action.is_kill() && matches!(rule.mode, Mode::DryRun) {
            at(session.dry_run_killed)
        } else {
            i64::MAX
        };
        at(session.killed).min(dry_run)
    }

    /// Applies suppression, then emits the decision.
    fn decide(
        &mut self,
        rule_index: usize,
        slot: u32,
        t: i64,
        trigger: Option<(&Event<'_>, Origin)>,
        firing: Firing,
        out: &mut Vec<Decision>,
    ) {
        let suppress = self.rules.rules[rule_index].suppress_ms;
        let state = rule_state_in(&mut self.sessions, slot, rule_index);
        let Some(ordinal) =
            unsuppressed(&mut state.last_decided, &mut state.decisions, t, suppress)
        else {
            return;
        };
        self.emit(rule_index, slot, (t, ordinal), trigger, firing, out);
    }

    /// A decision past suppression, as the `ordinal`-th of its rule (on its session or group):
    /// marks the kill and emits it.
    fn emit(
        &mut self,
        rule_index: usize,
        slot: u32,
        (t, ordinal): (i64, u64),
        trigger: Option<(&Event<'_>, Origin)>,
        firing: Firing,
        out: &mut Vec<Decision>,
    ) {
        let rule: &Rule = &self.rules.rules[rule_index];
        let (action, mode) = (rule.action, rule.mode);
        let session = self.sessions[slot as usize].as_mut().expect("live slot");
        if action.is_kill() {
            match mode {
                // Earlier than any kill it has: `fire` refused a kill at or after it.
                Mode::Enforce => session.killed = t,
                Mode::DryRun => session.dry_run_killed = t,
            }
        }
        let rule = &self.rules.rules[rule_index];
        let decision = build_decision(
            &self.config,
            &self.names,
            RuleRef {
                id: rule.id.clone(),
                version: rule.version.clone(),
                title: rule.title.clone(),
            },
            rule.level,
            action,
            mode,
            &self.view(slot),
            t,
            ordinal,
            trigger,
            firing,
        );
        self.stats.decisions_by_rule[rule_index] += 1;
        out.push(decision);
    }

    /// The session in `slot` as a decision shows it, with its role chain: the sessions it was
    /// issued from, parent first, up to the root (a session issued by none known) or the
    /// oldest one still in the table (an ancestor forgotten while idle ends the walk, and the
    /// chain then names no root).
    fn view(&self, slot: u32) -> SessionView<'_> {
        let session = self.sessions[slot as usize].as_ref().expect("live slot");
        let mut chain: Vec<&str> = Vec::new();
        let mut root = None;
        let mut next = session.parent();
        while let Some(key) = next {
            if chain.len() == MAX_CHAIN || chain.contains(&key) || key == &*session.key {
                break;
            }
            chain.push(key);
            let ancestor = self
                .index
                .get(&self.sessions, key)
                .and_then(|s| self.sessions[s as usize].as_ref());
            match ancestor {
                Some(a) => match a.parent() {
                    Some(parent) => next = Some(parent),
                    None => {
                        root = Some(key);
                        next = None;
                    }
                },
                None => next = None,
            }
        }
        SessionView {
            key: &session.key,
            kind: session.kind,
            derived: session.derived,
            started: session.started,
            chain,
            root,
        }
    }

    fn kill_not_enforced(
        &mut self,
        slot: u32,
        event: &Event<'_>,
        origin: Origin,
        out: &mut Vec<Decision>,
    ) {
        let t = event.time.millis();
        let session = self.sessions[slot as usize].as_ref().expect("live slot");
        let killed_at = if session.killed == NOT_KILLED {
            t
        } else {
            session.killed
        };
        let firing = Firing {
            value: Some((t - killed_at) as f64 / 1000.0),
            ..Firing::new(
                "kill_not_enforced",
                format!(
                    "activity {} after the session was killed",
                    human_ms(t - killed_at)
                ),
                killed_at,
            )
        };
        let decision = build_decision(
            &self.config,
            &self.names,
            RuleRef {
                id: decision::KILL_NOT_ENFORCED.to_owned(),
                version: "1".to_owned(),
                title: "Activity after a kill: the revocation did not take effect".to_owned(),
            },
            Severity::Critical,
            ActionKind::RevokeCredential,
            Mode::Enforce,
            &self.view(slot),
            t,
            0,
            Some((event, origin)),
            firing,
        );
        *self.stats.decisions_by_rule.last_mut().expect("kill slot") += 1;
        out.push(decision);
    }
}

/// One rule's look at one event: the event, and what the evaluation decides besides a firing
/// (the decision's time, its trigger, a timer to set).
struct Step<'e> {
    event: &'e Event<'e>,
    origin: Origin,
    t: i64,
    grace: i64,
    max_evidence: usize,
    /// The decision's time: the event's own, or where the state says the rule first held.
    at: i64,
    trigger: Option<(&'e Event<'e>, Origin)>,
    /// A timer this event set: a duration rule's due time, or when a baseline's held findings
    /// settle.
    timer: Option<i64>,
    /// The clock of the session's source: no record up to it can still arrive.
    clock: i64,
    /// A baseline finding was held (not decided on this event).
    held: bool,
}

/// A match as a correlation reads it: the record in hand (when there is one), and the group
/// values of the correlation that matched (when it is one).
struct MatchView<'m, 'e> {
    event: Option<&'m Event<'e>>,
    inner: Option<&'m [Box<str>]>,
}

impl MatchView<'_, '_> {
    /// The text of each field; `None` when one is absent: the match then does not count.
    fn values(&self, fields: &[MatchField], cx: &mut EvalCx) -> Option<Vec<Box<str>>> {
        fields.iter().map(|f| self.text(f, cx)).collect()
    }

    fn text(&self, field: &MatchField, cx: &mut EvalCx) -> Option<Box<str>> {
        match field {
            MatchField::Group(k) => self.inner?.get(*k as usize).cloned(),
            MatchField::Event(field) => {
                let value = field.get(self.event?, &cx.scratch);
                if value.is_missing() {
                    return None;
                }
                value.write_text(&mut cx.text);
                Some(cx.text.as_str().into())
            }
        }
    }

    /// What the match adds to its group (a distinct value's hash, an amount in thousandths),
    /// and what the evidence shows of it; `None` when the value is absent (or, for a sum, not
    /// a number).
    fn measure(
        &self,
        correlation: &Correlation,
        input: &CorrelationInput,
        matched: &Rule,
        cx: &mut EvalCx,
    ) -> Option<(i64, Option<String>)> {
        match correlation.kind {
            CorrelationKind::EventCount => Some((1, None)),
            CorrelationKind::Temporal | CorrelationKind::TemporalOrdered => {
                Some((0, Some(matched.id.clone())))
            }
            CorrelationKind::ValueCount => self.measure_distinct(input, cx),
            // Without a percentile, values are ranked by how often they occur.
            CorrelationKind::ValuePercentile if correlation.percentile.is_none() => {
                self.measure_distinct(input, cx)
            }
            CorrelationKind::ValueSum
            | CorrelationKind::ValueAvg
            | CorrelationKind::ValuePercentile => {
                let field = input.value.first()?;
                let amount = match field {
                    MatchField::Event(f) => numeric(&f.get(self.event?, &cx.scratch))?,
                    MatchField::Group(_) => self.text(field, cx)?.trim().parse().ok()?,
                };
                amount
                    .is_finite()
                    .then(|| (milli(amount), Some(trim_float(amount))))
            }
        }
    }

    /// A value's hash, and its text for the evidence. One field: its text; several: the
    /// tuple as a JSON array (exact).
    fn measure_distinct(
        &self,
        input: &CorrelationInput,
        cx: &mut EvalCx,
    ) -> Option<(i64, Option<String>)> {
        let values = self.values(&input.value, cx)?;
        let shown = values.join(", ");
        let key = match values.as_slice() {
            [one] => one.to_string(),
            many => serde_json::to_string(many).unwrap_or_default(),
        };
        Some((text_hash(&key), Some(shown)))
    }
}

/// The steps of a sequence `event` is a hit of, with each hit's value.
fn sequence_hits(
    rule: &Rule,
    steps: &[crate::rule::Step],
    event: &Event<'_>,
    cx: &mut EvalCx,
) -> SmallVec<[(usize, i64); 4]> {
    let mut hits = SmallVec::new();
    for (i, step) in steps.iter().enumerate() {
        if !rule.detection.eval(&step.condition, event, cx) {
            continue;
        }
        let value = match &step.aggregate {
            None | Some(StepAggregate::EventCount { .. }) => Some(firing::items(event)),
            Some(StepAggregate::ValueCount { field, .. }) => {
                let v = field.get(event, &cx.scratch);
                (!v.is_missing()).then(|| value_hash(&v, Tolerance::Exact, &mut cx.text))
            }
            Some(StepAggregate::ValueSum { field, .. }) => {
                numeric(&field.get(event, &cx.scratch)).map(milli)
            }
        };
        if let Some(value) = value {
            hits.push((i, value));
        }
    }
    hits
}

impl Step<'_> {
    /// A sequence's state after this event (`closes`: it matched `until`; `hits`: the steps it
    /// is), and the firing when the chain completes.
    fn sequence(
        &mut self,
        seq: &mut SequenceState,
        steps: &[crate::rule::Step],
        maxspan_ms: i64,
        (closes, hits): (bool, &[(usize, i64)]),
        (arrival, newest): (u32, i64),
        killed: i64,
    ) -> Option<Firing> {
        let (t, origin) = (self.t, self.origin);
        let key = (t, u64::from(arrival));
        if closes {
            seq.until(key);
        }
        for &(step, value) in hits {
            seq.hit(steps.len(), step, Hit { key, origin, value });
        }
        seq.forget_before(newest.saturating_sub(maxspan_ms).saturating_sub(self.grace));
        let chain = seq.complete(
            &step_aggregates(steps),
            maxspan_ms,
            self.max_evidence,
            killed,
        )?;
        self.at = chain.completed;
        let mut earlier = chain.evidence;
        earlier.retain(|e| *e != (t, origin));
        Some(Firing {
            value: Some(steps.len() as f64),
            earlier,
            ..Firing::new(
                "sequence",
                format!(
                    "{} steps in order within {} (maxspan {})",
                    steps.len(),
                    human_ms(chain.completed - chain.started),
                    human_ms(maxspan_ms)
                ),
                chain.started,
            )
        })
    }

    /// Every logic but sequences, on an event the rule's detection matched.
    fn logic(
        &mut self,
        logic: &SessionLogic,
        state: &mut RuleState,
        cx: &mut EvalCx,
        session_started: i64,
    ) -> Option<Firing> {
        match logic {
            SessionLogic::EventCount {
                timespan_ms,
                threshold,
            } => {
                let value = firing::items(self.event);
                self.window(state, (Aggregate::Count, *timespan_ms, threshold), value)
            }
            SessionLogic::ValueCount {
                field,
                timespan_ms,
                threshold,
            } => {
                let value = field.get(self.event, &cx.scratch);
                if value.is_missing() {
                    return None;
                }
                let hash = value_hash(&value, Tolerance::Exact, &mut cx.text);
                let window = (Aggregate::Distinct, *timespan_ms, threshold);
                self.window(state, window, hash).map(|f| Firing {
                    trigger_value: Some(cx.text.clone()),
                    ..f
                })
            }
            SessionLogic::ValueSum {
                field,
                timespan_ms,
                threshold,
            } => {
                let amount = numeric(&field.get(self.event, &cx.scratch))?;
                self.window(
                    state,
                    (Aggregate::Sum, *timespan_ms, threshold),
                    milli(amount),
                )
            }
            SessionLogic::NewValue {
                field,
                learn,
                tolerance,
            } => self.new_value(state, cx, (field, learn, *tolerance)),
            SessionLogic::ScopeGrowth { field, learn } => {
                self.scope_growth(state, cx, (field, learn))
            }
            SessionLogic::Duration {
                since,
                limit_ms,
                fire,
                ..
            } => self.duration(state, (since, *limit_ms, fire), session_started),
            SessionLogic::Sequence { .. } | SessionLogic::AgentGrant { .. } => None,
        }
    }

    /// This event's `value` into a sliding window of `kind` over `span`.
    fn window(
        &mut self,
        state: &mut RuleState,
        (kind, span, threshold): (Aggregate, i64, &Threshold),
        value: i64,
    ) -> Option<Firing> {
        let entry = Entry {
            time: self.t,
            origin: self.origin,
            value,
        };
        push_window(
            state,
            (kind, span, threshold),
            entry,
            (self.grace, self.max_evidence),
            &mut self.at,
        )
    }

    /// A value outside the session's learnt baseline.
    fn new_value(
        &mut self,
        state: &mut RuleState,
        cx: &mut EvalCx,
        (field, learn, tolerance): (&Field, &Learn, Tolerance),
    ) -> Option<Firing> {
        let value = field.get(self.event, &cx.scratch);
        if value.is_missing() {
            return None;
        }
        let hash = value_hash(&value, tolerance, &mut cx.text);
        self.baseline(state, learn, &[hash], |_| cx.text.clone(), "new_value")
    }

    /// A scope the session did not have while its baseline was learnt.
    fn scope_growth(
        &mut self,
        state: &mut RuleState,
        cx: &mut EvalCx,
        (field, learn): (&Field, &Learn),
    ) -> Option<Firing> {
        let mut hashes: SmallVec<[i64; 8]> = SmallVec::new();
        let mut texts: SmallVec<[String; 4]> = SmallVec::new();
        match field.get(self.event, &cx.scratch) {
            Value::Missing => {}
            Value::List(items) => {
                for item in items {
                    hashes.push(text_hash(item));
                    texts.push(item.to_string());
                }
            }
            other => {
                hashes.push(value_hash(&other, Tolerance::Exact, &mut cx.text));
                texts.push(cx.text.clone());
            }
        }
        let text_of = |i: usize| texts.get(i).cloned().unwrap_or_default();
        self.baseline(state, learn, &hashes, text_of, "scope_growth")
    }

    /// This event's values into the session's baseline. A value outside it is reported on this
    /// event once the learning period is settled (the clock passed it); before, it is held and
    /// a timer set for when the period settles ([`Engine::release_held`]).
    fn baseline(
        &mut self,
        state: &mut RuleState,
        learn: &Learn,
        hashes: &[i64],
        text_of: impl Fn(usize) -> String,
        aggregate: &'static str,
    ) -> Option<Firing> {
        let LogicState::Baseline(b) = ensure(&mut state.logic, || {
            LogicState::Baseline(Baseline::default())
        }) else {
            return None;
        };
        let outside = b.observe(learn, self.t, self.origin, hashes);
        for &hash in hashes {
            if let Some(held) = b.earlier_sighting(hash, self.t, self.origin) {
                held.principal = principal_of(self.event);
                held.action = Some(self.event.action.to_string().into());
            }
        }
        let rescheduled = b.reschedule(learn);
        self.timer = rescheduled;
        let outside = outside?;
        let text = outside.value_index.map(text_of).unwrap_or_default();
        let principal = principal_of(self.event);
        if self.clock <= b.open_until(learn) {
            let action = outside
                .value_index
                .map(|_| self.event.action.to_string().into());
            let held = baseline::Held {
                outside,
                text,
                principal,
                action,
            };
            self.timer = b.hold(learn, held).or(rescheduled);
            self.held = true;
            return None;
        }
        let mut firing = outside_firing(&outside, text, aggregate, principal, None);
        if outside.value_index.is_none() {
            self.at = outside.time;
            self.trigger = None;
        } else {
            // The record is in hand: the decision shows it (and its principal) as the trigger.
            firing.principal = None;
        }
        Some(firing)
    }

    /// A session (or privilege) older than `limit_ms`: fired on this event, or a timer set.
    fn duration(
        &mut self,
        state: &mut RuleState,
        (since, limit_ms, fire): (&Since, i64, &Fire),
        session_started: i64,
    ) -> Option<Firing> {
        let (t, origin) = (self.t, self.origin);
        let LogicState::Duration(d) =
            ensure(
                &mut state.logic,
                || LogicState::Duration(Default::default()),
            )
        else {
            return None;
        };
        if d.ended_before(t) {
            // A new life after a logout: the clock starts again, at this match.
            *d = DurationState {
                renewed: true,
                ..DurationState::default()
            };
        }
        let start = match since {
            Since::SessionStart if !d.renewed => session_started,
            _ => t,
        };
        if start < d.since {
            d.since = start;
            d.origin = origin;
        }
        let due = d.since.saturating_add(limit_ms);
        match fire {
            Fire::OnEvent if t > due => Some(Firing {
                value: Some((t - d.since) as f64 / 1000.0),
                threshold: Some(format!("> {}", human_ms(limit_ms))),
                earlier: vec![(d.since, d.origin)],
                ..Firing::new(
                    "duration",
                    format!(
                        "session age {} exceeds {}",
                        human_ms(t - d.since),
                        human_ms(limit_ms)
                    ),
                    d.since,
                )
            }),
            Fire::OnTimer if d.due != due => {
                d.due = due;
                d.principal = Some(Box::new(principal_of(self.event)));
                self.timer = Some(due);
                None
            }
            _ => None,
        }
    }
}

fn rule_state_in(sessions: &mut [Option<Session>], slot: u32, rule: usize) -> &mut RuleState {
    let session = sessions[slot as usize].as_mut().expect("live slot");
    let position = match session.rules.iter().position(|(r, _)| *r as usize == rule) {
        Some(p) => p,
        None => {
            // Exact growth: a session rarely holds state for more than a few rules.
            session.rules.reserve_exact(1);
            session.rules.push((rule as u32, RuleState::default()));
            session.rules.len() - 1
        }
    };
    &mut session.rules[position].1
}

fn ensure(logic: &mut LogicState, make: impl FnOnce() -> LogicState) -> &mut LogicState {
    if matches!(logic, LogicState::Empty) {
        *logic = make();
    }
    logic
}

/// Adds an entry to a rule's window; on a crossing, sets `at` to the end of the span that
/// reached the threshold and returns the firing.
fn push_window(
    state: &mut RuleState,
    (kind, span, threshold): (Aggregate, i64, &Threshold),
    entry: Entry,
    (grace, max_evidence): (i64, usize),
    at: &mut i64,
) -> Option<Firing> {
    let LogicState::Window(window) = ensure(&mut state.logic, || {
        LogicState::Window(SlidingWindow::new(kind, span))
    }) else {
        return None;
    };
    let crossing = window.push(entry, threshold, grace)?;
    *at = crossing.end;
    let (earlier, omitted, window_start) = window.evidence(crossing.end, entry, max_evidence);
    Some(Firing {
        value: Some(crossing.value),
        threshold: Some(threshold_text(threshold)),
        earlier,
        omitted,
        ..Firing::new(
            kind.name(),
            format!(
                "{} {} {} within {}",
                kind.name(),
                trim_float(crossing.value),
                threshold_text(threshold),
                human_ms(span)
            ),
            window_start,
        )
    })
}

/// A baseline finding as a firing, for a decision taken without the record in hand: the
/// record's principal, and its action when the value was its own (a held finding) — none for
/// an event that left the learning period, which the evidence lists with the first.
fn outside_firing(
    outside: &baseline::Outside,
    text: String,
    aggregate: &'static str,
    principal: PrincipalRef,
    action: Option<Box<str>>,
) -> Firing {
    let (first_time, first_origin) = outside.first;
    let mut earlier = vec![(first_time, first_origin)];
    if outside.value_index.is_none() {
        earlier.push((outside.time, outside.origin));
    }
    let (values, events) = (outside.values, outside.events);
    let baseline = format!(
        "the session's baseline of {values} value{} learnt from {events} event{}",
        if values == 1 { "" } else { "s" },
        if events == 1 { "" } else { "s" },
    );
    let reason = match (aggregate, text.is_empty()) {
        ("scope_growth", true) => "the session gained a scope it did not start with".to_owned(),
        ("scope_growth", false) => {
            format!("the session gained {text}, which it did not start with")
        }
        (_, true) => format!("a value outside {baseline}"),
        (_, false) => format!("{text} outside {baseline}"),
    };
    Firing {
        earlier,
        trigger_value: (!text.is_empty()).then_some(text),
        principal: Some(principal),
        held_trigger: action.map(|a| (outside.time, outside.origin, a)),
        ..Firing::new(aggregate, reason, first_time)
    }
}

/// A sequence's steps' aggregates in window terms.
fn step_aggregates(
    steps: &[crate::rule::Step],
) -> SmallVec<[Option<(Aggregate, i64, Threshold)>; 4]> {
    steps
        .iter()
        .map(|s| {
            s.aggregate.as_ref().map(|a| {
                let (kind, span, threshold) = sequence::step_window(a);
                (kind, span, *threshold)
            })
        })
        .collect()
}

/// Steps `order` to its next permutation in lexicographic order; false after the last. Unit
/// tests walk every arrival order with it.
#[cfg(test)]
pub(crate) fn next_permutation(order: &mut [usize]) -> bool {
    let Some(k) = (0..order.len().saturating_sub(1))
        .rev()
        .find(|&k| order[k] < order[k + 1])
    else {
        return false;
    };
    let l = (k + 1..order.len())
        .rev()
        .find(|&l| order[k] < order[l])
        .expect("order[k + 1] is larger");
    order.swap(k, l);
    order[k + 1..].reverse();
    true
}

fn milli(amount: f64) -> i64 {
    (amount * 1000.0).round() as i64
}

/// An `agent_grant` rule's finding on one event, from the grant table's answer (`found`).
fn grant_firing(
    check: GrantCheck,
    found: &Check,
    grants: &GrantTable,
    state: Option<&mut RuleState>,
    event: &Event<'_>,
) -> Option<Firing> {
    let t = event.time.millis();
    let named = |i: u32| {
        let g = grants.grant(i);
        (format!("agent {} task {}", g.agent, g.task), g.granted)
    };
    match (check, found) {
        (GrantCheck::Outside, Check::Outside { grant, what }) => {
            let (who, since) = named(*grant);
            Some(Firing::new("agent_grant", format!("{who}: {what}"), since))
        }
        (GrantCheck::Outside, Check::NoGrantInForce { agent }) => Some(Firing::new(
            "agent_grant",
            format!(
                "agent {agent} acts ({}) with no task grant in force",
                event.action
            ),
            t,
        )),
        (GrantCheck::Ended, Check::Ended { grant, completed }) => {
            let (who, since) = named(*grant);
            let g = grants.grant(*grant);
            let (how, at) = if *completed {
                ("completed", g.completed)
            } else {
                ("expired", g.end())
            };
            Some(Firing::new(
                "agent_grant",
                format!(
                    "{who}: {} {} after the task {how}",
                    event.action,
                    human_ms(t - at)
                ),
                since,
            ))
        }
        (GrantCheck::Role, Check::UnnamedRole { grant, role }) => {
            let (who, since) = named(*grant);
            Some(Firing::new(
                "agent_grant",
                format!("{who}: chains into role {role}, which the grant does not name"),
                since,
            ))
        }
        (
            GrantCheck::Budget,
            Check::Within { grant }
            | Check::Outside { grant, .. }
            | Check::UnnamedRole { grant, .. },
        ) => {
            let terms = grants.grant(*grant).terms()?;
            let budget = terms.budget;
            if budget.is_empty() {
                return None;
            }
            let LogicState::Budget(used) =
                ensure(&mut state?.logic, || LogicState::Budget(Box::default()))
            else {
                return None;
            };
            let usage = match used.grants.iter().position(|(g, _)| g == grant) {
                Some(i) => &mut used.grants[i].1,
                None => {
                    used.grants.push((*grant, Usage::default()));
                    &mut used.grants.last_mut().expect("just pushed").1
                }
            };
            if usage.decided {
                return None;
            }
            usage.calls += 1;
            usage.bytes = usage.bytes.saturating_add(event.bytes.unwrap_or(0));
            let limit_resources = budget.resources.unwrap_or(u64::MAX);
            if (usage.resources.len() as u64) <= limit_resources {
                if let Some(name) = grant::resource_names(event).first() {
                    usage.resources.insert(text_hash(name));
                }
            }
            let over = [
                ("calls", usage.calls, budget.calls),
                ("bytes", usage.bytes, budget.bytes),
                (
                    "distinct resources",
                    usage.resources.len() as u64,
                    budget.resources,
                ),
            ]
            .into_iter()
            .find(|(_, used, limit)| limit.is_some_and(|l| *used > l))?;
            usage.decided = true;
            let (what, used_now, limit) = (over.0, over.1, over.2.unwrap_or(0));
            let (who, since) = named(*grant);
            Some(Firing {
                value: Some(used_now as f64),
                threshold: Some(format!("> {limit}")),
                ..Firing::new(
                    "agent_grant",
                    format!("{who}: {used_now} {what} in this session, over the grant's budget of {limit}"),
                    since,
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_holds_within_its_span_on_either_side_and_not_at_its_end() {
        let (mut last, mut decisions) = (NEVER, 0);
        let mut at = |t: i64| unsuppressed(&mut last, &mut decisions, t, Some(100));
        assert_eq!(at(1_000), Some(0), "the first decides");
        assert_eq!(at(1_099), None, "within the span after it");
        assert_eq!(at(901), None, "within the span before it (arrived late)");
        assert_eq!(at(1_100), Some(1), "exactly the span after it decides");
        assert_eq!(
            at(1_000),
            Some(2),
            "exactly the span before the newest decides"
        );
        assert_eq!(at(5_000), Some(3));
        let (mut last, mut decisions) = (NEVER, 0);
        assert_eq!(unsuppressed(&mut last, &mut decisions, 7, None), Some(0));
        assert_eq!(
            unsuppressed(&mut last, &mut decisions, 7, None),
            Some(1),
            "no suppress"
        );
    }
}
