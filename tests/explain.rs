//! `sessionguard explain` over an archive of the AWS role-chaining scenario
//! (`fixtures/scenarios/scope-escalation-aws/attack.jsonl`): the chained session's timeline
//! names its parent (the session whose `AssumeRole` issued it), its chain and root, its events
//! and its decisions (reviewed golden: `fixtures/explain/chained-session.golden`;
//! `UPDATE_GOLDEN=1` rewrites it); the parent's names the child it issued; an unknown key is
//! a clear error.

#![cfg(feature = "parquet")]

#[path = "support/golden.rs"]
mod golden;

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

const PARENT: &str = "aws:482915736014:sts:ASIAANR6M2Z2UDUL737I";
const CHILD: &str = "aws:615482093771:sts:ASIA7J6XCSKOYKL5FCC2";

#[path = "support/cli.rs"]
mod cli;
use cli::{root, sessionguard};

fn archive() -> &'static str {
    static ARCHIVE: OnceLock<String> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explain-archive");
        let _ = std::fs::remove_dir_all(&dir);
        let dir = dir.display().to_string();
        let out = sessionguard(&[
            "archive",
            "fixtures/scenarios/scope-escalation-aws/attack.jsonl",
            "--rules",
            "rules",
            "--to",
            &dir,
            "--no-progress",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn explain(key: &str) -> Output {
    sessionguard(&["explain", key, "--archive", archive()])
}

fn timeline(key: &str) -> String {
    let out = explain(key);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_chained_session_shows_its_parent_chain_events_and_decisions() {
    let text = timeline(CHILD);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("parent")
            && l.contains(PARENT)
            && l.contains("sts:AssumeRole")),
        "names the parent and the AssumeRole that issued it:\n{text}"
    );
    assert!(text.contains(&format!("root      {PARENT}")), "{text}");
    assert!(
        text.lines().any(|l| l.contains("DECISION")),
        "the decisions on it:\n{text}"
    );
    // Time order, top to bottom.
    let times: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| &l[..24])
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
    let gold = root().join("fixtures/explain/chained-session.golden");
    let shown = text.replace(archive(), "ARCHIVE");
    golden::check(golden::mode(), &gold, &shown).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_parent_shows_the_child_it_issued() {
    let text = timeline(PARENT);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("child") && l.contains(CHILD)),
        "names the child session:\n{text}"
    );
}

#[test]
fn an_unknown_session_is_a_clear_error() {
    let out = explain("aws:000000000000:sts:ASIANOSUCHSESSION");
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no session aws:000000000000:sts:ASIANOSUCHSESSION"),
        "{said}"
    );
}
