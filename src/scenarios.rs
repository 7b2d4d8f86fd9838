//! The ground truth of the scenario fixtures (`fixtures/scenarios.expected.json`, explained in
//! `fixtures/scenarios/README.md`) and the comparison of decisions against it, for people:
//! which scenario is an attack and which a harmless lookalike, what each expects, what was
//! decided, and a one-line verdict. `sessionguard demo` prints it beside its decisions.
//!
//! A scenario is one fixture file. It is an **attack** when its ground truth expects
//! decisions, a **lookalike** when it expects none (activity built to sit near the rules'
//! thresholds without crossing them). An attack is *decided* when every decision it expects
//! was made — on the right session, on the right line (a timer: at its due time), by the
//! right rule with the right action; a lookalike is *flagged* by any decision at all.
//!
//! Besides the decisions it lists, the ground truth implies the engine's own
//! `sessionguard.kill_not_enforced` on the first later event of every revoked session that
//! keeps acting (`later_lines`), unless it lists that decision itself; those are expected too.
//! `tests/scenarios.rs` holds the pack to the same truth file by file, with code of its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::decision::KILL_NOT_ENFORCED;

/// One file's ground truth, as written.
#[derive(Clone, Debug, Deserialize)]
struct FileTruth {
    decisions: Vec<ExpectedDecision>,
}

/// One expected decision, as written.
#[derive(Clone, Debug, Deserialize)]
struct ExpectedDecision {
    line: u64,
    session: String,
    intent: String,
    /// An id, or a family `prefix*`.
    rule: String,
    /// As the ground truth spells it: `revoke session`.
    action: String,
    #[serde(default)]
    timer_due: Option<String>,
    #[serde(default)]
    later_lines: Vec<u64>,
}

/// The ground truth of every scenario file, by its path under `fixtures/scenarios/`.
#[derive(Clone, Debug)]
pub struct GroundTruth {
    files: BTreeMap<String, FileTruth>,
}

/// A decision the ground truth expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub session: String,
    /// The line of the event that triggers it.
    pub line: u64,
    /// A timer's due time (`2024-10-21T15:30:00`), matched instead of the line.
    pub due: Option<String>,
    pub intent: String,
    pub rule: String,
    /// In a decision's spelling: `revoke_session`.
    pub action: String,
}

/// A decision as the ground truth identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// The scenario file, relative to `fixtures/scenarios/`.
    pub file: String,
    /// The line of its newest evidence event.
    pub line: u64,
    /// Event time of the decision (RFC 3339).
    pub time: String,
    pub session: String,
    /// The session it was issued from (AWS role chaining).
    pub parent: Option<String>,
    pub rule: String,
    pub action: String,
    pub reason: String,
}

impl Decided {
    /// Reads a decision's JSON; `locate` turns an evidence event's `origin` into its scenario
    /// file and line. `None` when a field is missing or no evidence event can be located.
    pub fn from_json(
        d: &serde_json::Value,
        locate: impl Fn(&serde_json::Value) -> Option<(String, u64)>,
    ) -> Option<Decided> {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let (file, line) = d["evidence"]["events"]
            .as_array()?
            .iter()
            .filter_map(|e| locate(&e["origin"]))
            .max_by_key(|(_, line)| *line)?;
        Some(Decided {
            file,
            line,
            time: text(&d["time"])?,
            session: text(&d["session"]["key"])?,
            parent: text(&d["session"]["parent"]),
            rule: text(&d["rule"]["id"])?,
            action: text(&d["action"])?,
            reason: text(&d["evidence"]["reason"]).unwrap_or_default(),
        })
    }
}

/// Attack or lookalike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Attack,
    Lookalike,
}

/// What the ground truth says of one decision made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Expected, with the intent the ground truth gives.
    Expected(String),
    /// Expected on this session and line, but from another rule or with another action.
    Wrong(Want),
    /// Not expected at all.
    Unexpected,
}

/// One scenario file: what it expects and what was decided in it.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub file: String,
    pub kind: Kind,
    /// Decisions expected from the rule pack's rules.
    pub expected: usize,
    /// `sessionguard.kill_not_enforced` decisions expected.
    pub expected_after_kill: usize,
    /// The decisions made, in order, each with what the ground truth says of it.
    pub rows: Vec<(Decided, Status)>,
    /// Expected decisions that were not made.
    pub missing: Vec<Want>,
}

impl Scenario {
    /// Every expected decision made, as expected.
    pub fn as_expected(&self) -> bool {
        self.missing.is_empty()
            && self
                .rows
                .iter()
                .all(|(_, s)| matches!(s, Status::Expected(_)))
    }
}

/// Every scenario with its decisions, and the decisions that fell in no scenario.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub scenarios: Vec<Scenario>,
    pub unplaced: Vec<Decided>,
}

/// `rule` is the id `expected` names, or in the family `prefix*` it names.
fn rule_matches(expected: &str, rule: &str) -> bool {
    match expected.strip_suffix('*') {
        Some(prefix) => rule.starts_with(prefix),
        None => rule == expected,
    }
}

impl GroundTruth {
    /// Reads `fixtures/scenarios.expected.json` (or another file of its form).
    pub fn load(path: &Path) -> anyhow::Result<GroundTruth> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the ground truth {}", path.display()))?;
        GroundTruth::parse(&text).with_context(|| format!("reading {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<GroundTruth> {
        Ok(GroundTruth {
            files: serde_json::from_str(text)?,
        })
    }

    /// The scenario files, in path order (the order the demo feeds them).
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The decisions `file` expects: those listed, then the engine's `kill_not_enforced` on
    /// the next event of each revoked session that keeps acting, unless listed.
    pub fn wanted(&self, file: &str) -> Vec<Want> {
        let Some(truth) = self.files.get(file) else {
            return Vec::new();
        };
        let mut want: Vec<Want> = truth
            .decisions
            .iter()
            .map(|e| Want {
                session: e.session.clone(),
                line: e.line,
                due: e
                    .timer_due
                    .as_ref()
                    .map(|d| d.trim_end_matches('Z').to_owned()),
                intent: if e.rule == KILL_NOT_ENFORCED {
                    "activity after its kill".to_owned()
                } else {
                    e.intent.clone()
                },
                rule: e.rule.clone(),
                action: e.action.replace(' ', "_"),
            })
            .collect();
        let mut listed: Vec<&str> = truth
            .decisions
            .iter()
            .filter(|e| e.rule == KILL_NOT_ENFORCED)
            .map(|e| e.session.as_str())
            .collect();
        for e in &truth.decisions {
            // Only a revocation kills; a step-up or an alert leaves the session alive.
            if !e.action.starts_with("revoke ")
                || e.rule == KILL_NOT_ENFORCED
                || listed.contains(&e.session.as_str())
            {
                continue;
            }
            if let Some(&next) = e.later_lines.first() {
                want.push(Want {
                    session: e.session.clone(),
                    line: next,
                    due: None,
                    intent: "activity after its kill".to_owned(),
                    rule: KILL_NOT_ENFORCED.to_owned(),
                    action: "revoke_credential".to_owned(),
                });
                listed.push(&e.session);
            }
        }
        want
    }

    /// Sets `decided` beside the ground truth, scenario by scenario.
    pub fn compare(&self, decided: &[Decided]) -> Comparison {
        let mut scenarios = Vec::new();
        for file in self.files() {
            let want = self.wanted(file);
            let mut used = vec![false; want.len()];
            let mut rows = Vec::new();
            for d in decided.iter().filter(|d| d.file == file) {
                let found = want.iter().enumerate().position(|(i, w)| {
                    !used[i]
                        && w.session == d.session
                        && match &w.due {
                            Some(due) => d.time.get(..19) == Some(due.get(..19).unwrap_or(due)),
                            None => w.line == d.line,
                        }
                });
                let status = match found {
                    Some(i) => {
                        used[i] = true;
                        let w = &want[i];
                        if rule_matches(&w.rule, &d.rule) && w.action == d.action {
                            Status::Expected(w.intent.clone())
                        } else {
                            Status::Wrong(w.clone())
                        }
                    }
                    None => Status::Unexpected,
                };
                rows.push((d.clone(), status));
            }
            let after_kill = want.iter().filter(|w| w.rule == KILL_NOT_ENFORCED).count();
            scenarios.push(Scenario {
                file: file.to_owned(),
                kind: if want.is_empty() {
                    Kind::Lookalike
                } else {
                    Kind::Attack
                },
                expected: want.len() - after_kill,
                expected_after_kill: after_kill,
                rows,
                missing: want
                    .into_iter()
                    .zip(used)
                    .filter(|(_, used)| !used)
                    .map(|(w, _)| w)
                    .collect(),
            });
        }
        let unplaced = decided
            .iter()
            .filter(|d| !self.files.contains_key(&d.file))
            .cloned()
            .collect();
        Comparison {
            scenarios,
            unplaced,
        }
    }
}

impl Comparison {
    /// (attacks decided as expected, attacks).
    pub fn attacks(&self) -> (usize, usize) {
        let attacks = self.scenarios.iter().filter(|s| s.kind == Kind::Attack);
        let decided = attacks.clone().filter(|s| s.as_expected()).count();
        (decided, attacks.count())
    }

    /// (lookalikes with any decision, lookalikes).
    pub fn lookalikes(&self) -> (usize, usize) {
        let lookalikes = self.scenarios.iter().filter(|s| s.kind == Kind::Lookalike);
        let flagged = lookalikes.clone().filter(|s| !s.rows.is_empty()).count();
        (flagged, lookalikes.count())
    }

    /// Decisions the ground truth does not expect, in attack scenarios or in no scenario.
    pub fn unexpected(&self) -> usize {
        self.unplaced.len()
            + self
                .scenarios
                .iter()
                .filter(|s| s.kind == Kind::Attack)
                .flat_map(|s| &s.rows)
                .filter(|(_, status)| *status == Status::Unexpected)
                .count()
    }

    /// One line: `all 18 attacks decided, 0 of 13 lookalikes flagged`, and what else went
    /// wrong, if anything.
    pub fn verdict(&self) -> String {
        let (decided, attacks) = self.attacks();
        let (flagged, lookalikes) = self.lookalikes();
        let mut s = if decided == attacks {
            format!("all {attacks} attacks decided")
        } else {
            format!("{decided} of {attacks} attacks decided")
        };
        let _ = write!(s, ", {flagged} of {lookalikes} lookalikes flagged");
        match self.unexpected() {
            0 => {}
            1 => s.push_str(", 1 decision the ground truth does not expect"),
            n => {
                let _ = write!(s, ", {n} decisions the ground truth does not expect");
            }
        }
        s
    }

    /// Every scenario: a heading (kind, expected, decided), then its decisions beside what the
    /// ground truth says of each, and what it expected but did not get. Columns are sized to
    /// what they hold; a decision takes one line when everything fits in `width`, else its
    /// session goes on lines of its own. Identifiers are never cut: a line holding one longer
    /// than `width` overflows.
    pub fn render(&self, width: usize) -> String {
        let rows = self.scenarios.iter().flat_map(|s| &s.rows);
        let action_w = rows.clone().map(|(d, _)| d.action.len()).max().unwrap_or(0);
        let rule_w = rows.clone().map(|(d, _)| d.rule.len()).max().unwrap_or(0);
        // `  HH:MM:SS  action  rule  ` then the session.
        let lead = 2 + 8 + 2 + action_w + 2 + rule_w + 2;
        let one_line = rows
            .clone()
            .all(|(d, _)| lead + session_text(d).chars().count() <= width);
        let rule_fits = lead - 2 <= width;
        let indent = " ".repeat(12);
        let mut s = String::new();
        for scenario in &self.scenarios {
            push_wrapped(&mut s, "", "    ", &heading(scenario), width);
            for (d, status) in &scenario.rows {
                let time = d.time.get(11..19).unwrap_or(&d.time);
                if one_line {
                    let _ = writeln!(
                        s,
                        "  {time}  {:<action_w$}  {:<rule_w$}  {}",
                        d.action,
                        d.rule,
                        session_text(d)
                    );
                } else if rule_fits {
                    let _ = writeln!(s, "  {time}  {:<action_w$}  {}", d.action, d.rule);
                } else {
                    let _ = writeln!(s, "  {time}  {}", d.action);
                    let _ = writeln!(s, "{indent}{}", d.rule);
                }
                if !one_line {
                    match &d.parent {
                        Some(parent) if indent.len() + session_text(d).chars().count() <= width => {
                            let _ = writeln!(s, "{indent}{parent} → {}", d.session);
                        }
                        Some(parent) => {
                            let _ = writeln!(s, "{indent}{parent} →");
                            let _ = writeln!(s, "{indent}  {}", d.session);
                        }
                        None => {
                            let _ = writeln!(s, "{indent}{}", d.session);
                        }
                    }
                }
                let said = match status {
                    Status::Expected(intent) => format!("expected: {intent}; {}", d.reason),
                    Status::Wrong(w) => format!(
                        "WRONG: expected {} → {} ({}); {}",
                        w.rule, w.action, w.intent, d.reason
                    ),
                    Status::Unexpected => format!("NOT EXPECTED; {}", d.reason),
                };
                push_wrapped(&mut s, &indent, &indent, &said, width);
            }
            for w in &scenario.missing {
                let at = match &w.due {
                    Some(due) => format!("due {due}"),
                    None => format!("line {}", w.line),
                };
                let head = format!("MISSING {} → {} at {at}", w.rule, w.action);
                push_wrapped(&mut s, "  ", &indent, &head, width);
                let _ = writeln!(s, "{indent}{}", w.session);
                push_wrapped(
                    &mut s,
                    &indent,
                    &indent,
                    &format!("expected: {}", w.intent),
                    width,
                );
            }
        }
        if !self.unplaced.is_empty() {
            let _ = writeln!(
                s,
                "{} outside every scenario file:",
                crate::units::plural(self.unplaced.len(), "decision")
            );
            for d in &self.unplaced {
                let text = format!("{} {} {}", d.rule, d.action, d.session);
                push_wrapped(&mut s, "  ", "    ", &text, width);
            }
        }
        s
    }
}

/// `text` as lines of at most `width` characters, broken at spaces (a longer word, an
/// identifier, stands alone on its line, whole).
pub fn paragraph(text: &str, width: usize) -> String {
    let mut s = String::new();
    push_wrapped(&mut s, "", "", text, width);
    s
}

/// Appends `text` wrapped at spaces to `width`: its first line after `first`, the others
/// after `rest`.
fn push_wrapped(s: &mut String, first: &str, rest: &str, text: &str, width: usize) {
    let room = |indent: &str| width.saturating_sub(indent.len()).max(20);
    for (i, line) in wrap(text, room(first), room(rest)).into_iter().enumerate() {
        let _ = writeln!(s, "{}{line}", if i == 0 { first } else { rest });
    }
}

/// The session of a decision, with the one it was issued from: `parent → child`.
fn session_text(d: &Decided) -> String {
    match &d.parent {
        Some(parent) => format!("{parent} → {}", d.session),
        None => d.session.clone(),
    }
}

/// `agent-drift/attack.jsonl — attack: 2 expected (+2 kill_not_enforced), 4 decided, as
/// expected`.
fn heading(s: &Scenario) -> String {
    let decided = s.rows.len();
    let day = s
        .rows
        .first()
        .and_then(|(d, _)| d.time.get(..10))
        .map(|day| format!(" ({day})"))
        .unwrap_or_default();
    match s.kind {
        Kind::Lookalike if decided == 0 => {
            format!("{} — lookalike: nothing expected, nothing decided", s.file)
        }
        Kind::Lookalike => format!(
            "{}{day} — lookalike: nothing expected, {decided} decided: FLAGGED",
            s.file
        ),
        Kind::Attack => {
            let after_kill = match s.expected_after_kill {
                0 => String::new(),
                n => format!(" (+{n} kill_not_enforced)"),
            };
            let outcome = if s.as_expected() {
                "as expected".to_owned()
            } else {
                let wrong = s
                    .rows
                    .iter()
                    .filter(|(_, st)| !matches!(st, Status::Expected(_)))
                    .count();
                format!(
                    "NOT as expected: {} missing, {wrong} wrong or unexpected",
                    s.missing.len()
                )
            };
            format!(
                "{}{day} — attack: {} expected{after_kill}, {decided} decided, {outcome}",
                s.file, s.expected
            )
        }
    }
}

/// `text` in lines of at most `first` characters (the first line) or `rest` (the others),
/// broken at spaces; a word longer than that (an identifier) stands alone on its line, whole.
fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let width = if lines.is_empty() { first } else { rest };
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::replay::{replay, ReplayOptions};
    use crate::rule::RuleSet;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn truth() -> GroundTruth {
        GroundTruth::load(&root().join("fixtures/scenarios.expected.json")).unwrap()
    }

    /// The shipped pack over every scenario file as one stream, in path order (what the demo
    /// feeds its topic), as the ground truth identifies decisions.
    fn decided() -> Vec<Decided> {
        let rules = RuleSet::load(&[root().join("rules")]).unwrap();
        let mut engine = Engine::new(rules, EngineConfig::default());
        let dir = root().join("fixtures/scenarios");
        let prefix = format!("{}/", dir.display());
        let mut out = Vec::new();
        replay(
            std::slice::from_ref(&dir),
            &mut engine,
            &ReplayOptions::default(),
            &mut |d| {
                let json = serde_json::to_value(d).unwrap();
                let located = Decided::from_json(&json, |origin| {
                    let file = origin["file"].as_str()?.strip_prefix(&prefix)?;
                    Some((file.to_owned(), origin["line"].as_u64()?))
                });
                out.push(located.expect("every decision has a located evidence event"));
                Ok(())
            },
            &mut |file, line, reject, _| panic!("{file}:{line}: {reject}"),
        )
        .unwrap();
        out
    }

    /// (files whose ground truth lists decisions, files that list none), counted from the
    /// JSON itself.
    fn counted_from_the_file() -> (usize, usize) {
        let text =
            std::fs::read_to_string(root().join("fixtures/scenarios.expected.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let files = v.as_object().unwrap();
        let attacks = files
            .values()
            .filter(|f| !f["decisions"].as_array().unwrap().is_empty())
            .count();
        (attacks, files.len() - attacks)
    }

    #[test]
    fn the_verdict_over_the_shipped_pack_matches_the_ground_truth() {
        let (attacks, lookalikes) = counted_from_the_file();
        assert!(attacks > 10 && lookalikes > 10, "{attacks} {lookalikes}");
        let comparison = truth().compare(&decided());
        assert_eq!(
            comparison.verdict(),
            format!("all {attacks} attacks decided, 0 of {lookalikes} lookalikes flagged")
        );
    }

    /// The test of the test: a decision lost, one made on a lookalike, one with another rule.
    #[test]
    fn the_verdict_says_what_went_wrong() {
        let (attacks, lookalikes) = counted_from_the_file();
        let truth = truth();
        let all = decided();
        let kill = all
            .iter()
            .position(|d| d.file == "scope-escalation-aws/attack.jsonl")
            .unwrap();
        let mut lost = all.clone();
        lost.remove(kill);
        let comparison = truth.compare(&lost);
        assert_eq!(
            comparison.verdict(),
            format!(
                "{} of {attacks} attacks decided, 0 of {lookalikes} lookalikes flagged",
                attacks - 1
            )
        );
        let text = comparison.render(400);
        assert!(
            text.contains(
                "scope-escalation-aws/attack.jsonl (2024-10-15) — attack: 6 expected (+1 \
                 kill_not_enforced), 6 decided, NOT as expected: 1 missing"
            ),
            "{text}"
        );
        assert!(
            text.contains("  MISSING sg.aws.iam_self_grant → revoke_session at line 6\n"),
            "{text}"
        );

        let mut flagged = all.clone();
        flagged.push(Decided {
            file: "token-reuse/benign-okta.jsonl".into(),
            ..all[kill].clone()
        });
        assert_eq!(
            truth.compare(&flagged).verdict(),
            format!("all {attacks} attacks decided, 1 of {lookalikes} lookalikes flagged")
        );

        let mut wrong = all.clone();
        wrong[kill].rule = "sg.some_other_rule".into();
        assert_eq!(
            truth.compare(&wrong).verdict(),
            format!(
                "{} of {attacks} attacks decided, 0 of {lookalikes} lookalikes flagged",
                attacks - 1
            )
        );

        let mut extra = all.clone();
        extra.push(Decided {
            session: "aws:482915736014:sts:ASIAIYX6MB4CW3TBWN76".into(),
            ..all[kill].clone()
        });
        assert_eq!(
            truth.compare(&extra).verdict(),
            format!(
                "{} of {attacks} attacks decided, 0 of {lookalikes} lookalikes flagged, 1 \
                 decision the ground truth does not expect",
                attacks - 1
            )
        );
    }

    #[test]
    fn rendering_keeps_every_identifier_whole_and_shows_parents() {
        let decided = decided();
        let comparison = truth().compare(&decided);
        for width in [60, 80, 120, 400] {
            let text = comparison.render(width);
            let words: std::collections::HashSet<&str> = text.split_whitespace().collect();
            for d in &decided {
                for id in [&d.session, &d.rule, &d.action] {
                    assert!(words.contains(id.as_str()), "{width}: {id} cut or missing");
                }
                if let Some(parent) = &d.parent {
                    assert!(
                        words.contains(parent.as_str()),
                        "{width}: parent {parent} missing"
                    );
                }
            }
            for line in text.lines() {
                let fits = line.chars().count() <= width;
                // A longer line holds one identifier alone (a parent before its `→`).
                let alone = line.split_whitespace().filter(|w| *w != "→").count() == 1;
                assert!(fits || alone, "{width}: {line:?} is too wide");
            }
        }
        // The child of a killed session shows where it came from.
        let child = "aws:482915736014:sts:ASIA72EGJYM4IJLWOLUY";
        let parent = "aws:482915736014:sts:ASIA7G77UD4TUS2ZRVCU";
        assert!(comparison
            .render(400)
            .contains(&format!("{parent} → {child}")));
        let narrow = comparison.render(80);
        assert!(
            narrow.contains(&format!("{parent} → {child}"))
                || narrow.contains(&format!("{parent} →\n              {child}\n")),
            "{narrow}"
        );
    }

    #[test]
    fn words_wrap_at_spaces_and_long_words_stay_whole() {
        assert_eq!(wrap("a bb ccc", 4, 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("a bb ccc dd", 2, 6), vec!["a", "bb ccc", "dd"]);
        assert_eq!(
            wrap("a verylongword b", 5, 5),
            vec!["a", "verylongword", "b"]
        );
    }
}
