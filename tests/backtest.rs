//! `sessionguard backtest`: a copy of the shipped pack with two thresholds changed — MFA
//! failures counted from 3 instead of 4 (it decides on the harmless Entra lookalike too, and
//! earlier on the attacks), S3 bulk reads from 100 objects instead of 60 (the 75-object attack
//! is no longer killed) — against the pack as shipped, over the scenario fixtures and over
//! their archive. The diff is compared with a reviewed golden
//! (`fixtures/backtest/threshold-change.diff.golden`; `UPDATE_GOLDEN=1` rewrites it), and the
//! decisions a user would look for are checked by name in the JSON; `--max-new-kills` gates.

#![cfg(feature = "parquet")] // one test backtests an archive

#[path = "support/golden.rs"]
mod golden;

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "support/cli.rs"]
mod cli;
use cli::{root, sessionguard};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Replaces `from` (which must occur once) with `to` in a rule file.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from} in {}",
        file.display()
    );
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// The shipped pack, copied, with the two thresholds changed.
fn changed_rules(label: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("backtest-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    let rules = dir.join("rules-new");
    copy_dir(&root().join("rules"), &rules);
    edit(
        &rules.join("mfa-repeated-failures.yml"),
        "event_count: {timespan: 10m, gte: 4}",
        "event_count: {timespan: 10m, gte: 3}",
    );
    edit(
        &rules.join("aws-s3-bulk-read.yml"),
        "event_count: {timespan: 5m, gte: 60}",
        "event_count: {timespan: 5m, gte: 100}",
    );
    rules
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_threshold_change_adds_removes_and_moves_known_decisions() {
    let rules = changed_rules("golden");
    let rules_s = rules.display().to_string();
    let out = sessionguard(&[
        "backtest",
        "fixtures/scenarios",
        "--rules",
        &rules_s,
        "--baseline",
        "rules",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gold = root().join("fixtures/backtest/threshold-change.diff.golden");
    golden::check(golden::mode(), &gold, &text(&out)).unwrap_or_else(|e| panic!("{e}"));

    let json = sessionguard(&[
        "backtest",
        "fixtures/scenarios",
        "--rules",
        &rules_s,
        "--baseline",
        "rules",
        "--json",
    ]);
    let diff: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let has = |list: &str, rule: &str| {
        diff[list]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["rule"] == rule)
    };
    assert!(
        has("added", "sg.session.mfa_failures"),
        "three failures now decide: {diff:#}"
    );
    assert!(
        has("moved", "sg.session.mfa_failures"),
        "the attacks are decided a failure earlier: {diff:#}"
    );
    assert!(
        has("removed", "sg.aws.s3_bulk_read"),
        "75 objects no longer reach 100: {diff:#}"
    );
    assert!(
        !has("added", "sg.aws.s3_bulk_read") && !has("removed", "sg.session.mfa_failures"),
        "lowering a threshold removes nothing of its rule; raising it adds nothing"
    );
    let untouched = diff["by_rule_day"].as_array().unwrap().iter().all(|r| {
        [
            "sg.session.mfa_failures",
            "sg.aws.s3_bulk_read",
            "sessionguard.kill_not_enforced",
        ]
        .contains(&r["rule"].as_str().unwrap())
    });
    assert!(untouched, "no other rule changes: {diff:#}");
}

#[test]
fn an_archive_backtests_as_its_logs() {
    let rules = changed_rules("archive");
    let archive = rules.parent().unwrap().join("archive");
    let archive_s = archive.display().to_string();
    let archived = sessionguard(&[
        "archive",
        "fixtures/scenarios",
        "--rules",
        "rules",
        "--to",
        &archive_s,
        "--no-progress",
    ]);
    assert_eq!(archived.status.code(), Some(0));
    let run = |input: &str| {
        let out = sessionguard(&[
            "backtest",
            input,
            "--rules",
            &rules.display().to_string(),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0));
        text(&out)
    };
    assert_eq!(run(&archive_s), run("fixtures/scenarios"));
}

#[test]
fn max_new_kills_fails_a_change_that_kills_more() {
    let rules = changed_rules("gate");
    let rules_s = rules.display().to_string();
    let json = sessionguard(&[
        "backtest",
        "fixtures/scenarios",
        "--rules",
        &rules_s,
        "--json",
    ]);
    let diff: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let kills = diff["added"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == "revoke_session" || d["action"] == "revoke_credential")
        .count();
    assert!(kills > 0, "the lower MFA threshold kills new sessions");
    let gate = |limit: usize| {
        sessionguard(&[
            "backtest",
            "fixtures/scenarios",
            "--rules",
            &rules_s,
            "--max-new-kills",
            &limit.to_string(),
        ])
    };
    let over = gate(kills - 1);
    assert_eq!(over.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&over.stderr).contains(&format!("kill {kills} sessions")),
        "says how many: {}",
        String::from_utf8_lossy(&over.stderr)
    );
    assert_eq!(gate(kills).status.code(), Some(0), "at the limit passes");
}
