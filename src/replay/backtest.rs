//! `sessionguard backtest`: the same history through two rule sets, and what changes.
//!
//! Both replays run at once, one thread each, over the same inputs (logs or an archive) with
//! the same engine settings. Decisions are matched by what they are about — rule, session, and
//! their rank among that rule's decisions on that session (the first, the second …) — not by
//! id, since a changed threshold changes the time a decision is taken and so its id. A match
//! at the same time and action is unchanged; at another time or action it has *moved*; a
//! decision of the new rules alone is *added*, of the baseline alone *removed*.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{replay, ReplayOptions, ReplaySummary};
use crate::decision::Decision;
use crate::engine::{Engine, EngineConfig};
use crate::rule::RuleSet;

/// One decision, as the diff shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decided {
    pub rule: String,
    pub session: String,
    pub time: String,
    pub action: String,
    pub decision_id: String,
    #[serde(skip)]
    pub kill: bool,
}

impl Decided {
    fn of(d: &Decision) -> Decided {
        Decided {
            rule: d.rule.id.clone(),
            session: d.session.key.clone(),
            time: d.time.to_string(),
            action: serde_json::to_value(d.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            decision_id: d.decision_id.clone(),
            kill: d.action.is_kill(),
        }
    }

    /// `YYYY-MM-DD` of its time.
    pub fn day(&self) -> &str {
        self.time.get(..10).unwrap_or(&self.time)
    }
}

/// A decision both rule sets took, at different times or with different actions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Moved {
    pub rule: String,
    pub session: String,
    pub from: String,
    pub to: String,
    pub from_action: String,
    pub to_action: String,
}

/// Added, removed and moved decisions of one rule on one day (the new time's day for moves).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RuleDay {
    pub rule: String,
    pub day: String,
    pub added: u64,
    pub removed: u64,
    pub moved: u64,
}

/// What changes between the baseline's decisions and the new rules'.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    pub baseline_decisions: u64,
    pub new_decisions: u64,
    pub unchanged: u64,
    pub added: Vec<Decided>,
    pub removed: Vec<Decided>,
    pub moved: Vec<Moved>,
    pub by_rule_day: Vec<RuleDay>,
}

impl Diff {
    /// Kills (session or credential revocations) the new rules take that the baseline did not.
    pub fn new_kills(&self) -> u64 {
        self.added.iter().filter(|d| d.kill).count() as u64
    }

    /// Compares two runs' decisions, each in the order made.
    pub fn between(baseline: &[Decided], new: &[Decided]) -> Diff {
        let ranked = |decisions: &[Decided]| {
            let mut rank: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            let mut out = BTreeMap::new();
            for d in decisions {
                let n = rank.entry((&d.rule, &d.session)).or_default();
                out.insert((d.rule.clone(), d.session.clone(), *n), d.clone());
                *n += 1;
            }
            out
        };
        let (before, mut after) = (ranked(baseline), ranked(new));
        let mut diff = Diff {
            baseline_decisions: baseline.len() as u64,
            new_decisions: new.len() as u64,
            ..Diff::default()
        };
        for (key, old) in before {
            match after.remove(&key) {
                None => diff.removed.push(old),
                Some(now) if now.time == old.time && now.action == old.action => {
                    diff.unchanged += 1
                }
                Some(now) => diff.moved.push(Moved {
                    rule: old.rule,
                    session: old.session,
                    from: old.time,
                    to: now.time,
                    from_action: old.action,
                    to_action: now.action,
                }),
            }
        }
        diff.added = after.into_values().collect();
        let by_time = |a: &Decided, b: &Decided| {
            (&a.time, &a.rule, &a.session).cmp(&(&b.time, &b.rule, &b.session))
        };
        diff.added.sort_by(by_time);
        diff.removed.sort_by(by_time);
        diff.moved
            .sort_by(|a, b| (&a.to, &a.rule, &a.session).cmp(&(&b.to, &b.rule, &b.session)));
        let mut days: BTreeMap<(String, String), RuleDay> = BTreeMap::new();
        let mut count = |rule: &str, day: &str, which: fn(&mut RuleDay)| {
            let entry = days
                .entry((rule.to_owned(), day.to_owned()))
                .or_insert_with(|| RuleDay {
                    rule: rule.to_owned(),
                    day: day.to_owned(),
                    ..RuleDay::default()
                });
            which(entry);
        };
        for d in &diff.added {
            count(&d.rule, d.day(), |e| e.added += 1);
        }
        for d in &diff.removed {
            count(&d.rule, d.day(), |e| e.removed += 1);
        }
        for m in &diff.moved {
            count(&m.rule, m.to.get(..10).unwrap_or(&m.to), |e| e.moved += 1);
        }
        diff.by_rule_day = days.into_values().collect();
        diff
    }

    /// The diff as a plain-text report: per rule and day, then every decision that changed.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "baseline: {} decisions; new rules: {} decisions; {} unchanged, {} added, {} \
             removed, {} moved",
            self.baseline_decisions,
            self.new_decisions,
            self.unchanged,
            self.added.len(),
            self.removed.len(),
            self.moved.len()
        );
        if self.by_rule_day.is_empty() {
            let _ = writeln!(s, "no decision changes");
            return s;
        }
        let width = self
            .by_rule_day
            .iter()
            .map(|r| r.rule.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "\n{:<width$}  {:<10}  {:>5}  {:>7}  {:>5}",
            "rule", "day", "added", "removed", "moved"
        );
        for r in &self.by_rule_day {
            let _ = writeln!(
                s,
                "{:<width$}  {:<10}  {:>5}  {:>7}  {:>5}",
                r.rule, r.day, r.added, r.removed, r.moved
            );
        }
        let list = |s: &mut String, title: &str, items: &[Decided]| {
            if !items.is_empty() {
                let _ = writeln!(s, "\n{title}:");
                for d in items {
                    let _ = writeln!(s, "  {}  {}  {}  {}", d.time, d.rule, d.action, d.session);
                }
            }
        };
        list(&mut s, "added", &self.added);
        list(&mut s, "removed", &self.removed);
        if !self.moved.is_empty() {
            let _ = writeln!(s, "\nmoved:");
            for m in &self.moved {
                let action = if m.from_action == m.to_action {
                    m.to_action.clone()
                } else {
                    format!("{} → {}", m.from_action, m.to_action)
                };
                let _ = writeln!(
                    s,
                    "  {} → {}  {}  {}  {}",
                    m.from, m.to, m.rule, action, m.session
                );
            }
        }
        s
    }
}

/// One rule set's replay: its decisions in the order made, and its summary.
pub type Run = (Vec<Decided>, ReplaySummary);

/// Replays `paths` through `baseline` and `new` at once (a thread each); each run's decisions
/// in the order made, and its summary.
pub fn run(
    paths: &[PathBuf],
    baseline: RuleSet,
    new: RuleSet,
    config: &EngineConfig,
    options: &ReplayOptions,
) -> anyhow::Result<(Run, Run)> {
    let one = |rules: RuleSet| -> anyhow::Result<Run> {
        let mut engine = Engine::new(rules, config.clone());
        let mut decided = Vec::new();
        let summary = replay(
            paths,
            &mut engine,
            options,
            &mut |d| {
                decided.push(Decided::of(d));
                Ok(())
            },
            &mut |_, _, _, _| Ok(()),
        )?;
        Ok((decided, summary))
    };
    std::thread::scope(|scope| {
        let baseline_run = scope.spawn(|| one(baseline));
        let new_run = one(new)?;
        let baseline_run = baseline_run
            .join()
            .map_err(|_| anyhow::anyhow!("the baseline replay panicked"))??;
        Ok((baseline_run, new_run))
    })
}
