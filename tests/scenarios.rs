//! The shipped rule pack (`rules/`) over the scenario fixtures (`fixtures/scenarios/`):
//!
//! - every file's decisions are exactly the ground truth written with the fixtures
//!   (`fixtures/scenarios.expected.json`, explained in its README): the right session, decided
//!   on the right line (timers: at the right due time), by the rule (or rule family) the ground
//!   truth names, with the action it names; `kill_not_enforced` where a killed session keeps
//!   acting; and nothing else — so every benign lookalike stays quiet;
//! - the comparison itself fails when any one expected rule, action or line is corrupted (the
//!   test of the test), so a ground truth rewritten to anything else cannot stay green;
//! - every file's decisions, byte for byte, match the reviewed `<file>.decisions.golden`
//!   (`support/golden.rs`: a missing or orphan golden fails);
//! - two replays of a file are byte-identical.
//!
//! The ground truth is written by `scripts/scenarios/generate.py`, which names each decision's
//! rule from what the rule files are written to catch (`scripts/scenarios/pack.py`), not from
//! the engine's output. `UPDATE_GOLDEN=1 cargo test --test scenarios` rewrites the golden files
//! (benign files get empty ones; refused under CI); review `git diff fixtures/scenarios` before
//! committing.

use std::path::{Path, PathBuf};

use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::replay::{replay, ReplayOptions};
use sessionguard::rule::RuleSet;
use sessionguard::source::file;

#[path = "support/golden.rs"]
mod golden;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Decisions of the shipped pack over one file, one JSON line each.
fn decisions_of(relative: &Path) -> String {
    let rules = RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut out = String::new();
    let mut by_rule: std::collections::BTreeMap<String, u64> = Default::default();
    // Relative paths keep evidence origins the same on every machine.
    std::env::set_current_dir(root()).unwrap();
    let summary = replay(
        &[relative.to_path_buf()],
        &mut engine,
        &ReplayOptions::default(),
        &mut |d| {
            *by_rule.entry(d.rule.id.clone()).or_default() += 1;
            out.push_str(&serde_json::to_string(d).unwrap());
            out.push('\n');
            Ok(())
        },
        &mut |file, line, reject, _| {
            panic!("{file}:{line}: scenario records must all normalize: {reject}")
        },
    )
    .unwrap();
    // The summary's per-rule table (replay's stderr) counts the decisions written.
    let counted: std::collections::BTreeMap<String, u64> = summary
        .decisions_by_rule
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        counted,
        by_rule,
        "{}: decisions by rule",
        relative.display()
    );
    out
}

fn scenario_files() -> Vec<PathBuf> {
    let files = file::expand_paths(&[root().join("fixtures/scenarios")]).unwrap();
    assert!(!files.is_empty(), "no scenario fixtures");
    files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .map(|f| f.strip_prefix(root()).unwrap().to_path_buf())
        .collect()
}

/// One expected decision, from scenarios.expected.json.
#[derive(serde::Deserialize, Clone)]
struct Expected {
    line: u64,
    session: String,
    intent: String,
    /// The rule that must decide: an id, or a family `prefix*`.
    rule: String,
    /// As the ground truth writes it: `revoke session`, `step up`…
    action: String,
    #[serde(default)]
    timer_due: Option<String>,
    #[serde(default)]
    later_lines: Vec<u64>,
}

#[derive(serde::Deserialize, Clone)]
struct ExpectedFile {
    decisions: Vec<Expected>,
}

/// What identifies a decision for the ground truth: session, and the line of the event that
/// triggered it, or for a timer the second it was due.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
enum Trigger {
    Line(u64),
    Due(String),
}

/// A decision the ground truth expects.
struct Want {
    session: String,
    trigger: Trigger,
    intent: String,
    rule: String,
    /// In the decision's spelling (`revoke_session`).
    action: String,
}

/// A decision the engine made.
struct Got {
    session: String,
    trigger: Trigger,
    rule: String,
    action: String,
}

fn ground_truth() -> std::collections::BTreeMap<String, ExpectedFile> {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/scenarios.expected.json")).unwrap(),
    )
    .unwrap()
}

/// The decisions a file's ground truth expects, with the engine's `kill_not_enforced` on the
/// next event of a revoked session that keeps acting, unless the ground truth lists it.
fn wanted(expected: &ExpectedFile) -> Vec<Want> {
    let mut want: Vec<Want> = expected
        .decisions
        .iter()
        .map(|e| Want {
            session: e.session.clone(),
            trigger: match &e.timer_due {
                Some(due) => Trigger::Due(due.trim_end_matches('Z').to_owned()),
                None => Trigger::Line(e.line),
            },
            intent: e.intent.clone(),
            rule: e.rule.clone(),
            action: e.action.replace(' ', "_"),
        })
        .collect();
    let mut explicit: std::collections::BTreeSet<&str> = expected
        .decisions
        .iter()
        .filter(|e| rule_matches(&e.rule, KILL_NOT_ENFORCED))
        .map(|e| e.session.as_str())
        .collect();
    for e in &expected.decisions {
        // Only a revocation kills; a step-up or an alert leaves the session alive.
        let kills = e.action.starts_with("revoke ");
        if kills
            && !rule_matches(&e.rule, KILL_NOT_ENFORCED)
            && !explicit.contains(e.session.as_str())
        {
            if let Some(next) = e.later_lines.first() {
                want.push(Want {
                    session: e.session.clone(),
                    trigger: Trigger::Line(*next),
                    intent: "activity after the kill".into(),
                    rule: KILL_NOT_ENFORCED.into(),
                    action: "revoke_credential".into(),
                });
                explicit.insert(&e.session);
            }
        }
    }
    want
}

/// The engine's decisions (JSON lines) as the ground truth identifies them.
fn got_of(decisions: &str, want: &[Want]) -> Vec<Got> {
    let mut got = Vec::new();
    for line in decisions.lines() {
        let d: serde_json::Value = serde_json::from_str(line).unwrap();
        let session = d["session"]["key"].as_str().unwrap().to_owned();
        let timer = want
            .iter()
            .any(|w| w.session == session && matches!(w.trigger, Trigger::Due(_)))
            && d["evidence"]["aggregate"] == "duration";
        let trigger = if timer {
            Trigger::Due(d["time"].as_str().unwrap()[..19].to_owned())
        } else {
            let lines = d["evidence"]["events"].as_array().unwrap();
            Trigger::Line(
                lines
                    .iter()
                    .filter_map(|e| e["origin"]["line"].as_u64())
                    .max()
                    .unwrap(),
            )
        };
        got.push(Got {
            session,
            trigger,
            rule: d["rule"]["id"].as_str().unwrap().to_owned(),
            action: d["action"].as_str().unwrap().to_owned(),
        });
    }
    got
}

/// `rule` is the id `expected` names, or in the family `prefix*` it names.
fn rule_matches(expected: &str, rule: &str) -> bool {
    match expected.strip_suffix('*') {
        Some(prefix) => rule.starts_with(prefix),
        None => rule == expected,
    }
}

/// Every difference between what a file's ground truth wants and what the engine decided:
/// a decision missing (no decision on that session and trigger), made by another rule or with
/// another action, or not expected at all.
fn differences(name: &str, want: &[Want], mut got: Vec<Got>) -> Vec<String> {
    let mut out = Vec::new();
    for w in want {
        let Some(i) = got
            .iter()
            .position(|g| g.session == w.session && g.trigger == w.trigger)
        else {
            out.push(format!(
                "{name}: missing {} ({} → {}) for {} at {:?}",
                w.intent, w.rule, w.action, w.session, w.trigger
            ));
            continue;
        };
        let g = got.remove(i);
        if !rule_matches(&w.rule, &g.rule) || g.action != w.action {
            out.push(format!(
                "{name}: {} for {} at {:?}: expected {} → {}, got {} → {}",
                w.intent, w.session, w.trigger, w.rule, w.action, g.rule, g.action
            ));
        }
    }
    for g in got {
        out.push(format!(
            "{name}: unexpected {} → {} for {} at {:?}",
            g.rule, g.action, g.session, g.trigger
        ));
    }
    out
}

/// The ground truth and the engine's decisions of every scenario file, by file name.
fn truth_and_decisions() -> Vec<(String, ExpectedFile, String)> {
    let mut truth = ground_truth();
    let files = scenario_files();
    assert_eq!(
        files.len(),
        truth.len(),
        "every scenario file has its ground truth"
    );
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix("fixtures/scenarios")
                .unwrap()
                .display()
                .to_string();
            let expected = truth
                .remove(&name)
                .unwrap_or_else(|| panic!("{name} has no ground truth"));
            let decisions = decisions_of(&path);
            (name, expected, decisions)
        })
        .collect()
}

#[test]
fn decisions_are_exactly_the_ground_truth() {
    let mut failures = Vec::new();
    for (name, expected, decisions) in truth_and_decisions() {
        let want = wanted(&expected);
        let got = got_of(&decisions, &want);
        failures.extend(differences(&name, &want, got));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The test of the test: a ground truth with any one expected rule, action or line changed no
/// longer matches the engine's decisions, and a family that holds the rule still does.
#[test]
fn corrupting_any_expected_rule_action_or_line_fails_the_comparison() {
    let (mut checked, mut should) = (0, 0);
    for (name, expected, decisions) in truth_and_decisions() {
        should += expected
            .decisions
            .iter()
            .map(|e| if e.timer_due.is_some() { 3 } else { 4 })
            .sum::<usize>();
        let differs = |truth: &ExpectedFile| {
            let want = wanted(truth);
            !differences(&name, &want, got_of(&decisions, &want)).is_empty()
        };
        assert!(
            !differs(&expected),
            "{name}: the true ground truth must match"
        );
        for i in 0..expected.decisions.len() {
            let corrupt = |change: &dyn Fn(&mut Expected)| {
                let mut truth = expected.clone();
                change(&mut truth.decisions[i]);
                truth
            };
            let e = &expected.decisions[i];
            let other_action = if e.action == "revoke session" {
                "revoke credential"
            } else {
                "revoke session"
            };
            let family = format!("{}*", &e.rule[..e.rule.rfind('.').unwrap() + 1]);
            for (what, truth) in [
                ("rule", corrupt(&|e| e.rule = "sg.some_other_rule".into())),
                (
                    "rule family",
                    corrupt(&|e| e.rule = "sg.other_family.*".into()),
                ),
                ("action", corrupt(&|e| e.action = other_action.into())),
                ("line", corrupt(&|e| e.line += 1)),
            ] {
                if what == "line" && e.timer_due.is_some() {
                    continue; // a timer is identified by its due time, not a line
                }
                assert!(
                    differs(&truth),
                    "{name}: decision {i} ({} for {}) with a wrong {what} still passes",
                    e.intent,
                    e.session
                );
                checked += 1;
            }
            assert!(
                !differs(&corrupt(&|e| e.rule = family.clone())),
                "{name}: the family {family} holds {}",
                e.rule
            );
        }
    }
    assert!(
        should > 100,
        "the ground truth lost its decisions ({should} corruptions)"
    );
    assert_eq!(checked, should);
}

const KILL_NOT_ENFORCED: &str = sessionguard::decision::KILL_NOT_ENFORCED;

#[test]
fn decisions_match_their_reviewed_golden_files() {
    let mode = golden::mode();
    let files = scenario_files();
    let inputs: Vec<PathBuf> = files.iter().map(|f| root().join(f)).collect();
    let mut failures = golden::orphans(
        &root().join("fixtures/scenarios"),
        ".decisions.golden",
        &inputs,
    );
    for input in &inputs {
        let golden_path = PathBuf::from(format!("{}.decisions.golden", input.display()));
        let relative = input.strip_prefix(root()).unwrap();
        if let Err(e) = golden::check(mode, &golden_path, &decisions_of(relative)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replaying_twice_is_byte_identical() {
    for path in scenario_files() {
        assert_eq!(
            decisions_of(&path),
            decisions_of(&path),
            "{}",
            path.display()
        );
    }
}
