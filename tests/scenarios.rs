//! The shipped rule pack (`rules/`) over the scenario fixtures (`fixtures/scenarios/`):
//!
//! - every file's decisions are exactly the ground truth written with the fixtures
//!   (`fixtures/scenarios.expected.json`, explained in its README): the right session, decided
//!   on the right line (timers: at the right due time), `kill_not_enforced` where a killed
//!   session keeps acting, and nothing else — so every benign lookalike stays quiet;
//! - every file's decisions, byte for byte, match the reviewed `<file>.decisions.golden`;
//! - two replays of a file are byte-identical.
//!
//! `UPDATE_GOLDEN=1 cargo test --test scenarios` rewrites the golden files (benign files get
//! empty ones); review `git diff fixtures/scenarios` before committing.

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
    // Relative paths keep evidence origins the same on every machine.
    std::env::set_current_dir(root()).unwrap();
    replay(
        &[relative.to_path_buf()],
        &mut engine,
        &ReplayOptions::default(),
        &mut |d| {
            out.push_str(&serde_json::to_string(d).unwrap());
            out.push('\n');
            Ok(())
        },
        &mut |file, line, reject, _| {
            panic!("{file}:{line}: scenario records must all normalize: {reject}")
        },
    )
    .unwrap();
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
#[derive(serde::Deserialize)]
struct Expected {
    line: u64,
    session: String,
    intent: String,
    #[serde(default)]
    timer_due: Option<String>,
    #[serde(default)]
    later_lines: Vec<u64>,
}

#[derive(serde::Deserialize)]
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

#[test]
fn decisions_are_exactly_the_ground_truth() {
    let truth: std::collections::BTreeMap<String, ExpectedFile> = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/scenarios.expected.json")).unwrap(),
    )
    .unwrap();
    let mut failures = Vec::new();
    let files = scenario_files();
    assert_eq!(
        files.len(),
        truth.len(),
        "every scenario file has its ground truth"
    );
    for path in files {
        let name = path
            .strip_prefix("fixtures/scenarios")
            .unwrap()
            .display()
            .to_string();
        let expected = truth
            .get(&name)
            .unwrap_or_else(|| panic!("{name} has no ground truth"));
        let mut want: Vec<(String, Trigger, String)> = Vec::new();
        for e in &expected.decisions {
            let trigger = match &e.timer_due {
                Some(due) => Trigger::Due(due.trim_end_matches('Z').to_owned()),
                None => Trigger::Line(e.line),
            };
            want.push((e.session.clone(), trigger, e.intent.clone()));
        }
        // A killed session that keeps acting gets kill_not_enforced on its next event,
        // unless the ground truth lists it explicitly.
        let mut explicit: std::collections::BTreeSet<String> = expected
            .decisions
            .iter()
            .filter(|e| e.intent == KILL_NOT_ENFORCED)
            .map(|e| e.session.clone())
            .collect();
        for e in &expected.decisions {
            if e.intent != KILL_NOT_ENFORCED && !explicit.contains(&e.session) {
                if let Some(next) = e.later_lines.first() {
                    want.push((
                        e.session.clone(),
                        Trigger::Line(*next),
                        KILL_NOT_ENFORCED.into(),
                    ));
                    explicit.insert(e.session.clone());
                }
            }
        }
        let mut got: Vec<(String, Trigger, String)> = Vec::new();
        for line in decisions_of(&path).lines() {
            let d: serde_json::Value = serde_json::from_str(line).unwrap();
            let session = d["session"]["key"].as_str().unwrap().to_owned();
            let rule = d["rule"]["id"].as_str().unwrap().to_owned();
            let timer = want
                .iter()
                .any(|(s, t, _)| *s == session && matches!(t, Trigger::Due(_)))
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
            got.push((session, trigger, rule));
        }
        for (session, trigger, intent) in &want {
            match got
                .iter()
                .position(|(s, t, _)| s == session && t == trigger)
            {
                Some(i) => {
                    got.remove(i);
                }
                None => failures.push(format!(
                    "{name}: missing {intent} for {session} at {trigger:?}"
                )),
            }
        }
        for (session, trigger, rule) in got {
            failures.push(format!(
                "{name}: unexpected {rule} for {session} at {trigger:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
