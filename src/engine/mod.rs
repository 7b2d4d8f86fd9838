//! The engine: per-session state on event time, rule evaluation, decisions.
//!
//! Pure and synchronous: no I/O, no wall clock. Events must arrive in event-time order (the
//! [`sequencer`] puts them in order within the allowed lateness); the engine's watermark is the
//! newest event time it has seen, and timers (duration rules, idle expiry) fire when the
//! watermark passes them — so a session's timer fires even when only other sessions' events
//! move time forward. Same events in the same order give the same decisions, byte for byte.
//!
//! # State
//!
//! Sessions live in a slab indexed by their rendered key; a min-heap of idle deadlines expires
//! them without ever scanning the table (deadlines are re-checked lazily: a session that was
//! active since its entry was pushed is re-queued at its new deadline). Each session keeps
//! state only for the rules that have matched it. Heaps order ties by session sequence number
//! (order of first appearance), never by hash, so timer decisions come out in a reproducible
//! order.
//!
//! # Kills
//!
//! One kill per session: a revoke decision in `enforce` mode marks the session killed; later
//! activity on it yields one `sessionguard.kill_not_enforced` decision (the revocation did not
//! take effect) and no other rule runs on it. AWS sessions issued by a session (`AssumeRole*`,
//! recorded as `lineage.child`) inherit its kill and its sequence progress when they first
//! appear, so a role chain is one story. Baselines are not inherited: the chained session
//! often runs on another host than its parent (a broker assuming a role for a worker).

pub mod sequencer;
pub mod window;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::decision::{
    self, caep_claims, Decision, Evidence, EvidenceEvent, EvidenceOrigin, PrincipalRef, RuleRef,
    SessionRef, Window,
};
use crate::event::{Event, SessionKind, Timestamp};
use crate::rule::field::Value;
use crate::rule::index::RuleIndex;
use crate::rule::{
    ActionKind, EvalCx, Fire, Learn, Mode, Rule, RuleSet, SessionLogic, Severity, Since,
    StepAggregate, Threshold, Tolerance,
};
use crate::source::{Origin, OriginNames};
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            idle_timeout_ms: 12 * 3_600_000,
            max_evidence_events: 20,
            caep_issuer: "urn:sessionguard".to_owned(),
            max_sessions: 4_000_000,
        }
    }
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
    pub decisions: u64,
    /// Decisions per rule, indexed like the rule set; the last slot is kill_not_enforced.
    pub decisions_by_rule: Vec<u64>,
}

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
    expiry: BinaryHeap<Reverse<(i64, u64, u32)>>,
    timers: BinaryHeap<Reverse<(i64, u64, u32, u32)>>,
    /// Live sessions by the oldest input position their state depends on (see
    /// [`Engine::oldest_live_origin`]); one entry per session, removed with it.
    by_first: BTreeSet<(OriginKey, u32)>,
    watermark: i64,
    next_seq: u64,
    key_buf: String,
    cx: EvalCx,
    stats: EngineStats,
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
    derived: bool,
    started: i64,
    last_seen: i64,
    /// Role-chain links, for the few sessions that have them.
    links: Option<Box<Links>>,
    /// When an enforced kill was decided; [`NOT_KILLED`] otherwise (an `Option` would cost 8
    /// more bytes on every session).
    killed: i64,
    kill_reported: bool,
    dry_run_killed: bool,
    /// State of the rules that have matched this session; empty (no allocation) for most.
    rules: Vec<(u32, RuleState)>,
    /// The oldest input this session's state depends on: its first event, or its parent's
    /// oldest when it inherited from one; with the engine's watermark just before that input.
    first: (Origin, i64),
}

/// `Session::killed` of a session no enforced rule has killed.
const NOT_KILLED: i64 = i64::MIN;

/// Sessions this one was issued from, or issued.
#[derive(Default)]
struct Links {
    parent: Option<Box<str>>,
    children: Vec<Box<str>>,
}

/// A total order on origins of one input: file then line, or topic, partition, then offset,
/// packed into 16 bytes (it is kept for every live session). Only origins of the same file or
/// partition are meaningfully compared.
type OriginKey = (u64, i64);

fn origin_key(origin: Origin) -> OriginKey {
    match origin {
        Origin::File { file, line } => (u64::from(file), line as i64),
        Origin::Kafka {
            topic,
            partition,
            offset,
        } => (
            1 << 63 | u64::from(topic) << 32 | u64::from(partition as u32),
            offset,
        ),
    }
}

#[derive(Clone, Default)]
struct RuleState {
    decisions: u64,
    suppressed_until: i64,
    logic: LogicState,
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
}

#[derive(Clone)]
struct Baseline {
    first: i64,
    first_origin: Origin,
    learned: u32,
    values: SmallVec<[i64; 4]>,
}

/// Baselines stop growing here, so a session cannot learn its way to an unbounded set.
const MAX_BASELINE_VALUES: usize = 64;

#[derive(Clone, Default)]
struct SequenceState {
    stage: usize,
    started: i64,
    step_window: Option<SlidingWindow>,
    evidence: Vec<(i64, Origin)>,
}

#[derive(Clone)]
struct DurationState {
    since: i64,
    origin: Origin,
    timer_set: bool,
    /// Who acted on the session, for a decision a timer takes without an event in hand.
    principal: Option<Box<PrincipalRef>>,
}

/// What a firing rule hands to the decision builder.
struct Firing {
    aggregate: &'static str,
    reason: String,
    value: Option<f64>,
    threshold: Option<String>,
    window_start: i64,
    /// Earlier events, oldest first, then omitted count.
    earlier: Vec<(i64, Origin)>,
    omitted: u64,
    trigger_value: Option<String>,
    /// Who acted, when the decision is taken without an event in hand (timers).
    principal: Option<PrincipalRef>,
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
            expiry: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            by_first: BTreeSet::new(),
            watermark: i64::MIN,
            next_seq: 0,
            key_buf: String::new(),
            cx: EvalCx::default(),
            stats,
        }
    }

    /// Forgets every session, timer and counter, keeping the rules: as if just created.
    pub fn reset(&mut self) {
        let rules = std::mem::take(&mut self.rules);
        let config = self.config.clone();
        *self = Engine::with_shared_rules(rules, config);
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Names of files and topics that origins refer to.
    pub fn origin_names(&mut self) -> &mut OriginNames {
        &mut self.names
    }

    pub fn watermark(&self) -> Option<Timestamp> {
        (self.watermark != i64::MIN).then(|| Timestamp::from_millis(self.watermark))
    }

    /// Sessions currently held.
    pub fn session_count(&self) -> usize {
        self.index.len()
    }

    /// The oldest input any live session's state depends on, with the watermark the engine
    /// had just before reading it: replaying the input from there, into a fresh engine whose
    /// watermark is first moved to that value (`advance`), rebuilds every live session exactly.
    /// Conservative: a session's whole history counts from its first event (or its parent's,
    /// when it inherited the parent's state), even when its windows no longer need it. `None`
    /// when no session is held. Kept in an ordered index, so this is O(log n).
    pub fn oldest_live_origin(&self) -> Option<(Origin, i64)> {
        let &(_, slot) = self.by_first.first()?;
        self.sessions
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|s| s.first)
    }

    /// Evaluates one event. Decisions are appended to `out`. An event older than the watermark
    /// is counted as late and not applied.
    pub fn process(&mut self, event: &Event<'_>, origin: Origin, out: &mut Vec<Decision>) {
        self.stats.events += 1;
        let t = event.time.millis();
        if t < self.watermark {
            self.stats.late_events += 1;
            return;
        }
        let watermark_before = self.watermark;
        self.advance(t, out);
        self.cx.reset();

        self.key_buf.clear();
        let _ = write!(self.key_buf, "{}", event.session.key);
        let slot = match self.index.get(&self.sessions, &self.key_buf) {
            Some(slot) => slot,
            None => self.create_session(event, t, (origin, watermark_before)),
        };
        if let Some(child) = event.lineage.as_ref().and_then(|l| l.child.as_ref()) {
            self.register_child(slot, &child.to_string());
        }
        let session = self.session_mut(slot);
        session.last_seen = t;
        if session.killed != NOT_KILLED {
            if !session.kill_reported {
                session.kill_reported = true;
                self.kill_not_enforced(slot, event, origin, out);
            }
            return;
        }
        // Only the rules that can match this event's service, in rule order.
        let mut candidates = std::mem::take(&mut self.candidates);
        self.rule_index
            .candidates(&event.action.service, &mut candidates);
        for &rule_index in &candidates {
            self.evaluate(rule_index as usize, slot, event, origin, out);
            if self.session_mut(slot).killed != NOT_KILLED {
                break;
            }
        }
        self.candidates = candidates;
    }

    /// Moves the watermark to `t`: fires due timers and forgets idle sessions.
    pub fn advance(&mut self, t: i64, out: &mut Vec<Decision>) {
        if t <= self.watermark {
            return;
        }
        self.watermark = t;
        while let Some(&Reverse((fire_at, seq, slot, rule))) = self.timers.peek() {
            if fire_at >= t {
                break;
            }
            self.timers.pop();
            self.fire_timer(fire_at, seq, slot, rule as usize, out);
        }
        while self
            .expiry
            .peek()
            .is_some_and(|Reverse((deadline, ..))| *deadline < t)
        {
            if let Some(slot) = self.pop_idlest() {
                self.remove_session(slot);
                self.stats.sessions_expired += 1;
            }
        }
    }

    /// Pops the expiry heap until its top entry is current, and returns that session's slot:
    /// the session idle longest. Entries of removed sessions are dropped; entries of sessions
    /// active since they were pushed are pushed again at their new deadline.
    fn pop_idlest(&mut self) -> Option<u32> {
        let idle = self.config.idle_timeout_ms;
        while let Some(Reverse((deadline, seq, slot))) = self.expiry.pop() {
            let Some(session) = self.sessions.get(slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            if session.seq != seq {
                continue;
            }
            let current = session.last_seen.saturating_add(idle);
            if current > deadline {
                self.expiry.push(Reverse((current, seq, slot)));
            } else {
                return Some(slot);
            }
        }
        None
    }

    fn session_mut(&mut self, slot: u32) -> &mut Session {
        self.sessions[slot as usize]
            .as_mut()
            .expect("indexed slots hold sessions")
    }

    fn create_session(&mut self, event: &Event<'_>, t: i64, first: (Origin, i64)) -> u32 {
        if self.index.len() >= self.config.max_sessions.max(1) {
            if let Some(slot) = self.pop_idlest() {
                self.remove_session(slot);
                self.stats.sessions_evicted += 1;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.sessions_created += 1;
        let mut session = Session {
            seq,
            key: self.key_buf.as_str().into(),
            kind: event.session.kind,
            derived: event.session.derived,
            started: event.session.created_at.map_or(t, |c| c.millis().min(t)),
            last_seen: t,
            links: None,
            killed: NOT_KILLED,
            kill_reported: false,
            dry_run_killed: false,
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
                if origin_key(parent.first.0) < origin_key(session.first.0) {
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
        self.by_first
            .insert((origin_key(first_of(&self.sessions, slot)), slot));
        let deadline = t.saturating_add(self.config.idle_timeout_ms);
        self.expiry.push(Reverse((deadline, seq, slot)));
        slot
    }

    fn register_child(&mut self, parent_slot: u32, child: &str) {
        let parent = self.session_mut(parent_slot);
        let seq = parent.seq;
        let links = parent.links.get_or_insert_with(Box::default);
        if !links.children.iter().any(|c| &**c == child) {
            links.children.push(child.into());
        }
        self.parents.insert(child.into(), (parent_slot, seq));
    }

    fn remove_session(&mut self, slot: u32) {
        if let Some(session) = self.sessions[slot as usize].take() {
            self.index.remove(&session.key, slot);
            self.by_first.remove(&(origin_key(session.first.0), slot));
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
        let t = event.time.millis();
        let (session_started, session_seq, has_state) = {
            let s = self.sessions[slot as usize].as_ref().expect("live slot");
            let has = s.rules.iter().any(|(r, _)| *r as usize == rule_index);
            (s.started, s.seq, has)
        };
        let max_evidence = self.config.max_evidence_events;
        let rule = &self.rules.rules[rule_index];
        let cx = &mut self.cx;
        let mut timer = None;
        let firing = match &rule.session {
            None => rule.detection.matches(event, cx).then(|| Firing {
                aggregate: "match",
                reason: format!("{} matched the rule's detection", event.action),
                value: None,
                threshold: None,
                window_start: t,
                earlier: Vec::new(),
                omitted: 0,
                trigger_value: None,
                principal: None,
            }),
            Some(SessionLogic::Sequence {
                maxspan_ms,
                steps,
                until,
            }) => {
                let closes = until
                    .as_ref()
                    .is_some_and(|u| rule.detection.eval(u, event, cx));
                let holds: SmallVec<[bool; 4]> = steps
                    .iter()
                    .map(|s| rule.detection.eval(&s.condition, event, cx))
                    .collect();
                // Nothing to do unless a step matched or `until` closes an open sequence.
                let relevant = holds.iter().any(|h| *h) || (closes && has_state);
                if !relevant {
                    return;
                }
                let state = rule_state_in(&mut self.sessions, slot, rule_index);
                let LogicState::Sequence(seq) =
                    ensure(&mut state.logic, || LogicState::Sequence(Box::default()))
                else {
                    return;
                };
                let step = SequenceStep {
                    steps,
                    holds: &holds,
                    closes,
                    maxspan: *maxspan_ms,
                    max_evidence,
                };
                advance_sequence(seq, &step, t, origin, event, cx)
            }
            Some(SessionLogic::Duration {
                until: Some(until), ..
            }) if has_state && rule.detection.eval(until, event, cx) => {
                // The session ended (a logout): this rule's clock and timer go with it.
                let session = self.sessions[slot as usize].as_mut().expect("live slot");
                session.rules.retain(|(r, _)| *r as usize != rule_index);
                return;
            }
            Some(logic) => {
                if !rule.detection.matches(event, cx) {
                    return;
                }
                let state = rule_state_in(&mut self.sessions, slot, rule_index);
                match logic {
                    SessionLogic::EventCount {
                        timespan_ms,
                        threshold,
                    } => {
                        let at = Entry {
                            time: t,
                            origin,
                            value: 0,
                        };
                        push_window(
                            state,
                            Aggregate::Count,
                            *timespan_ms,
                            threshold,
                            at,
                            max_evidence,
                        )
                    }
                    SessionLogic::ValueCount {
                        field,
                        timespan_ms,
                        threshold,
                    } => {
                        let value = field.get(event, &cx.scratch);
                        if value.is_missing() {
                            return;
                        }
                        let hash = value_hash(&value, Tolerance::Exact, &mut cx.text);
                        let at = Entry {
                            time: t,
                            origin,
                            value: hash,
                        };
                        push_window(
                            state,
                            Aggregate::Distinct,
                            *timespan_ms,
                            threshold,
                            at,
                            max_evidence,
                        )
                        .map(|f| Firing {
                            trigger_value: Some(cx.text.clone()),
                            ..f
                        })
                    }
                    SessionLogic::ValueSum {
                        field,
                        timespan_ms,
                        threshold,
                    } => {
                        let Some(amount) = numeric(&field.get(event, &cx.scratch)) else {
                            return;
                        };
                        let at = Entry {
                            time: t,
                            origin,
                            value: milli(amount),
                        };
                        push_window(
                            state,
                            Aggregate::Sum,
                            *timespan_ms,
                            threshold,
                            at,
                            max_evidence,
                        )
                    }
                    SessionLogic::NewValue {
                        field,
                        learn,
                        tolerance,
                    } => {
                        let value = field.get(event, &cx.scratch);
                        if value.is_missing() {
                            return;
                        }
                        let hash = value_hash(&value, *tolerance, &mut cx.text);
                        check_baseline(state, learn, &[hash], t, origin, &cx.text, "new_value")
                    }
                    SessionLogic::ScopeGrowth { field, learn } => {
                        let mut hashes: SmallVec<[i64; 8]> = SmallVec::new();
                        let mut texts: SmallVec<[String; 4]> = SmallVec::new();
                        match field.get(event, &cx.scratch) {
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
                        scope_growth(state, learn, &hashes, &texts, t, origin)
                    }
                    SessionLogic::Duration {
                        since,
                        limit_ms,
                        fire,
                        ..
                    } => {
                        let LogicState::Duration(d) = ensure(&mut state.logic, || {
                            LogicState::Duration(DurationState {
                                since: match since {
                                    Since::SessionStart => session_started,
                                    Since::FirstMatch => t,
                                },
                                origin,
                                timer_set: false,
                                principal: None,
                            })
                        }) else {
                            return;
                        };
                        let due = d.since.saturating_add(*limit_ms);
                        match fire {
                            Fire::OnEvent if t > due => Some(Firing {
                                aggregate: "duration",
                                reason: format!(
                                    "session age {} exceeds {}",
                                    human_ms(t - d.since),
                                    human_ms(*limit_ms)
                                ),
                                value: Some((t - d.since) as f64 / 1000.0),
                                threshold: Some(format!("> {}", human_ms(*limit_ms))),
                                window_start: d.since,
                                earlier: vec![(d.since, d.origin)],
                                omitted: 0,
                                trigger_value: None,
                                principal: None,
                            }),
                            Fire::OnTimer if !d.timer_set => {
                                d.timer_set = true;
                                d.principal = Some(Box::new(principal_of(event)));
                                timer = Some(due);
                                None
                            }
                            _ => None,
                        }
                    }
                    SessionLogic::Sequence { .. } => None,
                }
            }
        };
        if let Some(due) = timer {
            self.timers
                .push(Reverse((due, session_seq, slot, rule_index as u32)));
        }
        if let Some(firing) = firing {
            self.decide(rule_index, slot, t, Some((event, origin)), firing, out);
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
        // A session that went idle past its timeout before the timer was due had ended then.
        let ended = session
            .last_seen
            .saturating_add(self.config.idle_timeout_ms)
            < fire_at;
        if session.seq != seq || session.killed != NOT_KILLED || ended {
            return;
        }
        let limit = match &self.rules.rules[rule_index].session {
            Some(SessionLogic::Duration { limit_ms, .. }) => *limit_ms,
            _ => return,
        };
        let Some(LogicState::Duration(d)) = session
            .rules
            .iter()
            .find(|(r, _)| *r as usize == rule_index)
            .map(|(_, s)| s.logic.clone())
        else {
            return;
        };
        let firing = Firing {
            aggregate: "duration",
            reason: format!(
                "session still active {} after {}",
                human_ms(limit),
                if d.since == session.started {
                    "it started"
                } else {
                    "its first matching event"
                }
            ),
            value: Some(limit as f64 / 1000.0),
            threshold: Some(format!("> {}", human_ms(limit))),
            window_start: d.since,
            earlier: vec![(d.since, d.origin)],
            omitted: 0,
            trigger_value: None,
            principal: d.principal.map(|p| *p),
        };
        self.decide(rule_index, slot, fire_at, None, firing, out);
    }

    /// Applies suppression and the one-kill rule, then emits the decision.
    fn decide(
        &mut self,
        rule_index: usize,
        slot: u32,
        t: i64,
        trigger: Option<(&Event<'_>, Origin)>,
        firing: Firing,
        out: &mut Vec<Decision>,
    ) {
        let rule: &Rule = &self.rules.rules[rule_index];
        let (action, mode, suppress) = (rule.action, rule.mode, rule.suppress_ms);
        let session = self.sessions[slot as usize].as_mut().expect("live slot");
        if action.is_kill() {
            match mode {
                Mode::Enforce if session.killed != NOT_KILLED => return,
                Mode::DryRun if session.dry_run_killed => return,
                _ => {}
            }
        }
        let state = rule_state_in(&mut self.sessions, slot, rule_index);
        if t < state.suppressed_until {
            return;
        }
        state.suppressed_until = suppress.map_or(i64::MIN, |s| t.saturating_add(s));
        let ordinal = state.decisions;
        state.decisions += 1;
        let session = self.sessions[slot as usize].as_mut().expect("live slot");
        if action.is_kill() {
            match mode {
                Mode::Enforce => session.killed = t,
                Mode::DryRun => session.dry_run_killed = true,
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
            session,
            t,
            ordinal,
            trigger,
            firing,
        );
        self.stats.decisions += 1;
        self.stats.decisions_by_rule[rule_index] += 1;
        out.push(decision);
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
            aggregate: "kill_not_enforced",
            reason: format!(
                "activity {} after the session was killed",
                human_ms(t - killed_at)
            ),
            value: Some((t - killed_at) as f64 / 1000.0),
            threshold: None,
            window_start: killed_at,
            earlier: Vec::new(),
            omitted: 0,
            trigger_value: None,
            principal: None,
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
            session,
            t,
            0,
            Some((event, origin)),
            firing,
        );
        self.stats.decisions += 1;
        *self.stats.decisions_by_rule.last_mut().expect("kill slot") += 1;
        out.push(decision);
    }
}

fn first_of(sessions: &[Option<Session>], slot: u32) -> Origin {
    sessions[slot as usize]
        .as_ref()
        .map_or(Origin::File { file: 0, line: 0 }, |s| s.first.0)
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

fn push_window(
    state: &mut RuleState,
    kind: Aggregate,
    span: i64,
    threshold: &Threshold,
    entry: Entry,
    max_evidence: usize,
) -> Option<Firing> {
    let LogicState::Window(window) = ensure(&mut state.logic, || {
        LogicState::Window(SlidingWindow::new(kind, span))
    }) else {
        return None;
    };
    if !window.push(entry, threshold) {
        return None;
    }
    Some(window_firing(window, threshold, max_evidence))
}

fn milli(amount: f64) -> i64 {
    (amount * 1000.0).round() as i64
}

fn window_firing(window: &SlidingWindow, threshold: &Threshold, max_evidence: usize) -> Firing {
    let entries = window.entries();
    let value = window.value();
    // The triggering event is reported separately; list the ones before it.
    let earlier_count = entries.len().saturating_sub(1);
    let keep = earlier_count.min(max_evidence.saturating_sub(1));
    let earlier: Vec<(i64, Origin)> = entries
        .iter()
        .take(earlier_count)
        .skip(earlier_count - keep)
        .map(|e| (e.time, e.origin))
        .collect();
    Firing {
        aggregate: window.kind().name(),
        reason: format!(
            "{} {} {} within {}",
            window.kind().name(),
            trim_float(value),
            threshold_text(threshold),
            human_ms(window.span_ms())
        ),
        value: Some(value),
        threshold: Some(threshold_text(threshold)),
        window_start: entries.front().map_or(0, |e| e.time),
        earlier,
        omitted: (earlier_count - keep) as u64,
        trigger_value: None,
        principal: None,
    }
}

/// Learns a baseline from the first events, then reports values outside it.
fn check_baseline(
    state: &mut RuleState,
    learn: &Learn,
    hashes: &[i64],
    t: i64,
    origin: Origin,
    text: &str,
    aggregate: &'static str,
) -> Option<Firing> {
    let LogicState::Baseline(b) = ensure(&mut state.logic, || {
        LogicState::Baseline(Baseline {
            first: t,
            first_origin: origin,
            learned: 0,
            values: SmallVec::new(),
        })
    }) else {
        return None;
    };
    let learning = b.learned < learn.events && t - b.first < learn.timespan_ms;
    let mut fired = None;
    for &hash in hashes {
        if b.values.contains(&hash) {
            continue;
        }
        if !learning {
            fired.get_or_insert(Firing {
                aggregate,
                reason: format!(
                    "{} outside the session's baseline of {} value{} learnt from {} event{}",
                    if text.is_empty() { "a value" } else { text },
                    b.values.len(),
                    if b.values.len() == 1 { "" } else { "s" },
                    b.learned,
                    if b.learned == 1 { "" } else { "s" },
                ),
                value: None,
                threshold: None,
                window_start: b.first,
                earlier: vec![(b.first, b.first_origin)],
                omitted: 0,
                trigger_value: Some(text.to_owned()),
                principal: None,
            });
        }
        if b.values.len() < MAX_BASELINE_VALUES {
            b.values.push(hash);
        }
    }
    if learning {
        b.learned += 1;
    }
    fired
}

fn scope_growth(
    state: &mut RuleState,
    learn: &Learn,
    hashes: &[i64],
    texts: &[String],
    t: i64,
    origin: Origin,
) -> Option<Firing> {
    // The first scope outside the baseline names the finding.
    let new_text = match &state.logic {
        LogicState::Baseline(b) => hashes
            .iter()
            .zip(texts)
            .find(|(h, _)| !b.values.contains(h))
            .map(|(_, text)| text.clone()),
        _ => texts.first().cloned(),
    }
    .unwrap_or_default();
    let mut firing = check_baseline(state, learn, hashes, t, origin, &new_text, "scope_growth")?;
    firing.reason = format!("the session gained {new_text}, which it did not start with");
    Some(firing)
}

/// The parts of a sequence rule that `advance_sequence` reads for one event.
struct SequenceStep<'r> {
    steps: &'r [crate::rule::Step],
    /// Which step conditions the event satisfies.
    holds: &'r [bool],
    /// The `until` condition holds: the open sequence is abandoned.
    closes: bool,
    maxspan: i64,
    max_evidence: usize,
}

fn advance_sequence(
    seq: &mut SequenceState,
    step: &SequenceStep<'_>,
    t: i64,
    origin: Origin,
    event: &Event<'_>,
    cx: &mut EvalCx,
) -> Option<Firing> {
    if step.closes {
        *seq = SequenceState::default();
        return None;
    }
    if seq.stage > 0 && t - seq.started > step.maxspan {
        *seq = SequenceState::default();
    }
    if !step.holds[seq.stage] {
        return None;
    }
    let complete = match &step.steps[seq.stage].aggregate {
        None => true,
        Some(aggregate) => {
            let (kind, span, threshold, value) = match aggregate {
                StepAggregate::EventCount {
                    timespan_ms,
                    threshold,
                } => (Aggregate::Count, *timespan_ms, threshold, 0),
                StepAggregate::ValueCount {
                    field,
                    timespan_ms,
                    threshold,
                } => {
                    let v = field.get(event, &cx.scratch);
                    if v.is_missing() {
                        return None;
                    }
                    let hash = value_hash(&v, Tolerance::Exact, &mut cx.text);
                    (Aggregate::Distinct, *timespan_ms, threshold, hash)
                }
                StepAggregate::ValueSum {
                    field,
                    timespan_ms,
                    threshold,
                } => {
                    let amount = numeric(&field.get(event, &cx.scratch))?;
                    (Aggregate::Sum, *timespan_ms, threshold, milli(amount))
                }
            };
            let window = seq
                .step_window
                .get_or_insert_with(|| SlidingWindow::new(kind, span));
            window.push(
                Entry {
                    time: t,
                    origin,
                    value,
                },
                threshold,
            )
        }
    };
    if seq.stage == 0 && seq.evidence.is_empty() {
        seq.started = t;
    }
    if seq.evidence.len() < step.max_evidence.saturating_sub(1) {
        seq.evidence.push((t, origin));
    }
    if !complete {
        return None;
    }
    seq.stage += 1;
    seq.step_window = None;
    if seq.stage < step.steps.len() {
        return None;
    }
    let mut evidence = std::mem::take(&mut seq.evidence);
    evidence.pop(); // the triggering event is reported on its own
    let started = seq.started;
    *seq = SequenceState::default();
    Some(Firing {
        aggregate: "sequence",
        reason: format!(
            "{} steps in order within {} (maxspan {})",
            step.steps.len(),
            human_ms(t - started),
            human_ms(step.maxspan)
        ),
        value: Some(step.steps.len() as f64),
        threshold: None,
        window_start: started,
        earlier: evidence,
        omitted: 0,
        trigger_value: None,
        principal: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_decision(
    config: &EngineConfig,
    names: &OriginNames,
    rule: RuleRef,
    severity: Severity,
    action: ActionKind,
    mode: Mode,
    session: &Session,
    t: i64,
    ordinal: u64,
    trigger: Option<(&Event<'_>, Origin)>,
    firing: Firing,
) -> Decision {
    let time = Timestamp::from_millis(t);
    let decision_id = decision::decision_id(&rule.id, &rule.version, &session.key, time, ordinal);
    let principal = match trigger {
        Some((event, _)) => principal_of(event),
        None => firing.principal.clone().unwrap_or_default(),
    };
    let mut events: Vec<EvidenceEvent> = firing
        .earlier
        .iter()
        .map(|(time, origin)| EvidenceEvent {
            time: Timestamp::from_millis(*time),
            origin: EvidenceOrigin::resolve(*origin, names),
            action: None,
            value: None,
        })
        .collect();
    if let Some((event, origin)) = trigger {
        events.push(EvidenceEvent {
            time: event.time,
            origin: EvidenceOrigin::resolve(origin, names),
            action: Some(event.action.to_string()),
            value: firing.trigger_value.clone(),
        });
    }
    let caep = action.is_kill().then(|| {
        caep_claims(
            &config.caep_issuer,
            &decision_id,
            time,
            &session.key,
            &principal,
            &format!("{}: {}", rule.title, firing.reason),
        )
    });
    Decision {
        decision_id,
        time,
        mode,
        action,
        severity,
        rule,
        session: SessionRef {
            key: session.key.to_string(),
            kind: session.kind.as_str(),
            derived: session.derived,
            started: Timestamp::from_millis(session.started),
            parent: session
                .links
                .as_ref()
                .and_then(|l| l.parent.as_ref())
                .map(|p| p.to_string()),
        },
        principal,
        evidence: Evidence {
            reason: firing.reason,
            aggregate: firing.aggregate,
            value: firing.value,
            threshold: firing.threshold,
            window: Window {
                start: Timestamp::from_millis(firing.window_start.min(t)),
                end: time,
            },
            events,
            events_omitted: firing.omitted,
        },
        caep,
    }
}

fn principal_of(event: &Event<'_>) -> PrincipalRef {
    PrincipalRef {
        kind: event.principal.kind.as_ref().map(|t| t.to_string()),
        id: event.principal.id.as_ref().map(|t| t.to_string()),
        name: event.principal.name.as_ref().map(|t| t.to_string()),
    }
}

/// A fixed-key hash of a value's text, with IP prefixes masked under `IpPrefix`. Fixed keys
/// keep runs reproducible; the text is left in `buf` for evidence.
fn value_hash(value: &Value<'_>, tolerance: Tolerance, buf: &mut String) -> i64 {
    value.write_text(buf);
    if let Tolerance::IpPrefix { v4, v6 } = tolerance {
        let ip = match value {
            Value::Ip(ip) => Some(*ip),
            _ => buf.parse::<IpAddr>().ok(),
        };
        if let Some(ip) = ip {
            let masked = mask(ip, v4, v6);
            buf.clear();
            let bits = if ip.is_ipv4() { v4 } else { v6 };
            let _ = write!(buf, "{masked}/{bits}");
        }
    }
    text_hash(buf)
}

fn text_hash(text: &str) -> i64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    hasher.write(text.as_bytes());
    hasher.finish() as i64
}

fn mask(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let keep = u32::from(v4.min(32));
            let m = if keep == 0 {
                0
            } else {
                u32::MAX << (32 - keep)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let keep = u32::from(v6.min(128));
            let m = if keep == 0 {
                0
            } else {
                u128::MAX << (128 - keep)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

fn numeric(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Int(n) => Some(*n as f64),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Raw(raw) => raw.get().trim_matches('"').parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

fn threshold_text(threshold: &Threshold) -> String {
    use crate::rule::CmpOp::*;
    let op = match threshold.op {
        Gt => ">",
        Gte => ">=",
        Lt => "<",
        Lte => "<=",
        Eq => "==",
    };
    format!("{op} {}", trim_float(threshold.value))
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// `90s` → `1m30s`; milliseconds only when below a second.
pub fn human_ms(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut rest = ms / 1000;
    let mut s = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            let _ = write!(s, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    s
}
