//! Rules: the YAML files users write, compiled into the form the engine evaluates.
//!
//! A rule file is read into a plain serde form (`spec`), then compiled (`compile`) into the types
//! below: field names resolved, regexes built, lists and macros expanded, every error reported
//! with file, line and column. The engine sees only these compiled types.
//!
//! - [`spec`]: the text form, read from YAML with the position of every item.
//! - [`compile`]: loading a pack of files into a `RuleSet`, collecting every error; its
//!   `filter` applies Sigma filters to the rules they name.
//! - [`field`]: field names → resolved `Field`s, read from events without allocating.
//! - [`detection`]: Sigma-style selections, modifiers, conditions and exceptions.
//! - `modifier`, `condition`: entries and their modifiers; the condition language.
//! - `lookup`: large value lists matched by hash (`in`) or Aho–Corasick (`contains` …).
//! - `text`: rule and list files read as UTF-8 without blocking, or a located error.
//! - `transform`: Sigma's value modifiers (`windash`, `base64offset`, `utf16le` …), applied at load.
//! - `sigma`, `falco`: Sigma rules (by `logsource`) and Falco rule files loaded as written.
//! - [`correlation`]: Sigma correlation rules — read, their references resolved, compiled
//!   into [`Correlation`]s over the matches of other rules.

pub mod compile;
pub mod correlation;
pub mod field;
pub mod index;
pub mod spec;

mod condition;
mod falco;
mod lookup;
mod modifier;
mod sigma;
#[cfg(test)]
mod testing;
mod text;
mod transform;

use std::path::PathBuf;

use field::Field;

pub use compile::{LoadError, LoadErrors};
pub use correlation::{
    Bound, Bounds, Compare, Correlation, CorrelationInput, CorrelationKind, MatchField,
};
pub use detection::{Condition, Detection, EvalCx};

pub mod detection;

/// Every loaded rule, in a stable order (by file path, then position in the file).
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// A set of this one rule (inline tests run each rule alone), deciding on its own even
    /// where correlations only fed on it. Cheap: long lists are shared, not copied.
    pub fn only(rule: &Rule) -> RuleSet {
        RuleSet {
            rules: vec![Rule {
                feeds: Vec::new(),
                generate: true,
                ..rule.clone()
            }],
        }
    }

    /// The rule at `index` with what it needs to run: alone ([`RuleSet::only`]), or for a
    /// correlation, with the rules it refers to, directly or through other correlations.
    pub fn subset(&self, index: usize) -> RuleSet {
        correlation::subset(self, index)
    }

    /// Whether any rule is a correlation (its state spans sessions).
    pub fn has_correlations(&self) -> bool {
        self.rules.iter().any(|r| r.correlation.is_some())
    }
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    /// Part of every decision id: changing a rule changes the ids of what it decides.
    pub version: String,
    pub title: String,
    pub level: Severity,
    pub tags: Vec<String>,
    /// Which events the rule looks at (condition and exceptions).
    pub detection: Detection,
    /// Per-session logic over the matching events; `None` fires on every matching event.
    pub session: Option<SessionLogic>,
    pub action: ActionKind,
    pub mode: Mode,
    /// After a decision, the same rule stays quiet on the same session this long (event time).
    pub suppress_ms: Option<i64>,
    /// The reason a decision of a rule without session logic gives, with the event's fields
    /// filled in (a Falco rule's `output`); `None`: what matched.
    pub output: Option<Output>,
    /// A Sigma correlation: decides over the matches of the rules it refers to, grouped by
    /// field values, instead of over events (its `detection` matches nothing).
    pub correlation: Option<Box<Correlation>>,
    /// The correlations this rule's matches feed: (the correlation's rule index, the index of
    /// this rule among its inputs).
    pub feeds: Vec<(u32, u32)>,
    /// Whether the rule decides on its own: false for a rule that correlations refer to
    /// without `generate: true` — its matches only feed them.
    pub generate: bool,
    /// Where the rule was read from.
    pub file: PathBuf,
    pub line: usize,
    pub tests: Vec<RuleTest>,
}

/// Text with event fields in it, filled in when a rule decides.
#[derive(Clone, Debug)]
pub struct Output {
    pub(crate) parts: Box<[OutputPiece]>,
}

#[derive(Clone, Debug)]
pub(crate) enum OutputPiece {
    Text(Box<str>),
    Field(Field),
}

impl Output {
    /// The text for `event`; a field the event does not have reads `<NA>`, as in Falco.
    pub fn render(&self, event: &crate::event::Event<'_>, scratch: &bumpalo::Bump) -> String {
        let mut out = String::new();
        let mut value = String::new();
        for piece in &self.parts {
            match piece {
                OutputPiece::Text(t) => out.push_str(t),
                OutputPiece::Field(f) => {
                    let v = f.get(event, scratch);
                    if v.is_missing() {
                        out.push_str("<NA>");
                    } else {
                        v.write_text(&mut value);
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

/// What a decision asks the identity provider or responder to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    RevokeSession,
    RevokeCredential,
    StepUp,
    Alert,
}

impl ActionKind {
    /// Revocations end the session: one per session, and activity after it is a finding.
    pub fn is_kill(self) -> bool {
        matches!(
            self,
            ActionKind::RevokeSession | ActionKind::RevokeCredential
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Enforce,
    DryRun,
}

/// Per-session logic, all on event time.
#[derive(Clone, Debug)]
pub enum SessionLogic {
    /// Matching events in a sliding window.
    EventCount {
        timespan_ms: i64,
        threshold: Threshold,
    },
    /// Distinct values of a field among matching events in a sliding window.
    ValueCount {
        field: Field,
        timespan_ms: i64,
        threshold: Threshold,
    },
    /// Sum of a numeric field over matching events in a sliding window.
    ValueSum {
        field: Field,
        timespan_ms: i64,
        threshold: Threshold,
    },
    /// A value outside the session's baseline, learnt from its first matching events.
    NewValue {
        field: Field,
        learn: Learn,
        tolerance: Tolerance,
    },
    /// Steps in order within `maxspan`; `until` closes an open sequence.
    Sequence {
        maxspan_ms: i64,
        steps: Vec<Step>,
        until: Option<Condition>,
    },
    /// Session (or privilege) age beyond `limit`. An event matching `until` (a logout) ends
    /// the session for this rule: its clock and timer are dropped.
    Duration {
        since: Since,
        limit_ms: i64,
        fire: Fire,
        until: Option<Condition>,
        /// A timer fires only on a session with an event at most this long before the due
        /// time (or after it): the evidence that it is still open, for sessions that end
        /// without a logout record (console and SSO sessions, expiring keys).
        active_within_ms: Option<i64>,
    },
    /// A value of `field` (default `scopes`) the session did not have while learning.
    ScopeGrowth { field: Field, learn: Learn },
    /// An agent's event checked against the task grant that binds it (crate::grant).
    AgentGrant { check: GrantCheck },
}

/// Which part of a task grant an `agent_grant` rule checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantCheck {
    /// An action/tool or resource the grants in force do not allow; or no grant in force.
    Outside,
    /// Acting after the task completed or its grant expired.
    Ended,
    /// More calls, bytes or distinct resources in one session than the grant's budget.
    Budget,
    /// Chaining into a role the grant does not name.
    Role,
}

/// How a baseline is learnt: from the session's first `events` matching events, or those in
/// its first `timespan_ms`, whichever ends first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learn {
    pub events: u32,
    pub timespan_ms: i64,
}

/// How new values are compared with the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tolerance {
    Exact,
    /// IP addresses in the same prefix count as the same value (NAT pools in one /24).
    IpPrefix {
        v4: u8,
        v6: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub op: CmpOp,
    pub value: f64,
}

impl Threshold {
    /// Whether the threshold is "at least" (`gt`, `gte`): adding to the aggregate can only
    /// make it hold, removing can only make it fail.
    pub fn is_upward(&self) -> bool {
        matches!(self.op, CmpOp::Gt | CmpOp::Gte)
    }

    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            CmpOp::Gt => x > self.value,
            CmpOp::Gte => x >= self.value,
            CmpOp::Lt => x < self.value,
            CmpOp::Lte => x <= self.value,
            CmpOp::Eq => x == self.value,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// One step of a sequence: a condition over the rule's selections, optionally an aggregate
/// that must hold (over that step's matching events) for the step to complete.
#[derive(Clone, Debug)]
pub struct Step {
    pub condition: Condition,
    pub aggregate: Option<StepAggregate>,
}

#[derive(Clone, Debug)]
pub enum StepAggregate {
    EventCount {
        timespan_ms: i64,
        threshold: Threshold,
    },
    ValueCount {
        field: Field,
        timespan_ms: i64,
        threshold: Threshold,
    },
    ValueSum {
        field: Field,
        timespan_ms: i64,
        threshold: Threshold,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// The session's creation time when the source says it, else its first event.
    SessionStart,
    /// The first event of the session that matched the rule's detection.
    FirstMatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fire {
    /// On a matching event once the age is past the limit.
    OnEvent,
    /// From a timer when event time (the watermark) passes the limit, with no event needed.
    OnTimer,
}

/// An inline test: replaying `events` with the rule's file loaded gives `expect`.
#[derive(Clone, Debug)]
pub struct RuleTest {
    pub name: String,
    /// Resolved against the rule file's directory.
    pub events: PathBuf,
    pub expect: TestExpect,
    /// How many records of `events` may be rejected; any other count fails the test, so a
    /// case whose records were all refused cannot pass as "no decision".
    pub rejects: u64,
    pub line: usize,
}

/// What an inline test expects of its replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestExpect {
    /// This many decisions of the rule (`decisions: 2`).
    Count(usize),
    /// Exactly these decisions, in order, of any rule (the engine's `kill_not_enforced`
    /// included).
    Decisions(Vec<ExpectedDecision>),
}

/// One listed decision of an inline test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedDecision {
    /// The line of the decision's last evidence record (the one that triggered it).
    pub line: u64,
    pub session: String,
    /// `None`: the rule under test.
    pub rule: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_threshold_holds_below_at_or_above_its_value() {
        use CmpOp::*;
        // Holds (below, at, above) the value 10.
        for (op, expected) in [
            (Gt, [false, false, true]),
            (Gte, [false, true, true]),
            (Lt, [true, false, false]),
            (Lte, [true, true, false]),
            (Eq, [false, true, false]),
        ] {
            let threshold = Threshold { op, value: 10.0 };
            assert_eq!(
                [9.0, 10.0, 11.0].map(|x| threshold.holds(x)),
                expected,
                "{op:?}"
            );
            assert_eq!(threshold.is_upward(), matches!(op, Gt | Gte), "{op:?}");
        }
    }
}
