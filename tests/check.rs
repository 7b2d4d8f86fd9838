//! `sessionguard check`: a rule's inline tests pass only when the replay gives what they
//! expect. A count (`decisions: N`) counts the rule's decisions; a list names every decision of
//! the replay in order — the line of its last evidence record, its session, its rule (default
//! the rule under test; the engine's `sessionguard.kill_not_enforced` too) — so a wrong line,
//! session or rule fails. A rejected record fails a test unless it says `rejects: N`, so a case
//! whose records were all refused cannot pass as "no decision".
//!
//! The events are `fixtures/rules-valid/escalation.jsonl`: one AWS session, a policy grant on
//! line 1, then S3 reads every two seconds on lines 2–61.

use std::path::{Path, PathBuf};
use std::process::Command;

const SESSION: &str = "aws:111122223333:sts:ASIAEXAMPLESESSION1";

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules-valid/escalation.jsonl")
}

/// A rule firing on every S3 read, quiet for an hour after it decided (one decision, on line
/// 2), with `action` and one inline test whose `expect` is given.
fn rule(action: &str, events: &Path, expect: &str) -> String {
    format!(
        "id: test.reads\ndetection:\n  sel: {{action: s3:GetObject}}\n  condition: sel\n\
         action: {action}\nsuppress: 1h\ntests:\n  - name: t\n    events: {}\n    expect: {expect}\n",
        events.display()
    )
}

/// Runs `check` on a folder holding only `rule`; exit code and its report (standard output:
/// each failing test, then the summary line). The rule loads, so standard error stays empty.
fn check(label: &str, rule: &str) -> (i32, String) {
    let dir =
        std::env::temp_dir().join(format!("sessionguard-check-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rule.yml"), rule).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{label}: nothing on stderr:\n{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn passes(label: &str, rule: &str) {
    let (code, report) = check(label, rule);
    assert_eq!(code, 0, "{label} must pass:\n{report}");
    assert_eq!(
        report.lines().last(),
        Some("1 rule loaded; 1 passed, 0 failed"),
        "{label}:\n{report}"
    );
}

fn fails(label: &str, rule: &str, says: &str) {
    let (code, report) = check(label, rule);
    assert_eq!(code, 1, "{label} must fail:\n{report}");
    assert_eq!(
        report.lines().last(),
        Some("1 rule loaded; 0 passed, 1 failed"),
        "{label}:\n{report}"
    );
    assert!(
        report.contains(says),
        "{label}: expected {says:?} in:\n{report}"
    );
}

#[test]
fn a_count_counts_the_rules_decisions() {
    passes("count", &rule("alert", &events(), "{decisions: 1}"));
    fails(
        "count-wrong",
        &rule("alert", &events(), "{decisions: 2}"),
        "expected 2 decision(s), got 1",
    );
}

#[test]
fn a_list_checks_line_session_and_rule_of_every_decision() {
    let listed = |decisions: &str| format!("{{decisions: [{decisions}]}}");
    passes(
        "list",
        &rule(
            "alert",
            &events(),
            &listed(&format!("{{line: 2, session: \"{SESSION}\"}}")),
        ),
    );
    fails(
        "list-line",
        &rule(
            "alert",
            &events(),
            &listed(&format!("{{line: 3, session: \"{SESSION}\"}}")),
        ),
        &format!("line 2, {SESSION}, test.reads"),
    );
    fails(
        "list-session",
        &rule(
            "alert",
            &events(),
            &listed("{line: 2, session: \"aws:111122223333:sts:ASIAOTHER\"}"),
        ),
        "line 2, aws:111122223333:sts:ASIAOTHER, test.reads",
    );
    fails(
        "list-rule",
        &rule(
            "alert",
            &events(),
            &listed(&format!(
                "{{line: 2, session: \"{SESSION}\", rule: test.other}}"
            )),
        ),
        &format!("line 2, {SESSION}, test.other"),
    );

    // An enforced kill: the session's next record (line 3) gets the engine's decision, which a
    // list must name too.
    let kill = "{kind: revoke_session, mode: enforce}";
    passes(
        "list-kill",
        &rule(
            kill,
            &events(),
            &listed(&format!(
                "{{line: 2, session: \"{SESSION}\"}}, \
                 {{line: 3, session: \"{SESSION}\", rule: sessionguard.kill_not_enforced}}"
            )),
        ),
    );
    fails(
        "list-kill-missing",
        &rule(
            kill,
            &events(),
            &listed(&format!("{{line: 2, session: \"{SESSION}\"}}")),
        ),
        &format!("line 3, {SESSION}, sessionguard.kill_not_enforced"),
    );
}

#[test]
fn a_dry_run_revocation_decides_once_and_kills_nothing() {
    // Without `suppress`, the rule matches every read; in dry run the first revocation is the
    // session's only one, and the reads after it are no kill_not_enforced.
    let dry_run = rule(
        "{kind: revoke_session, mode: dry_run}",
        &events(),
        &format!("{{decisions: [{{line: 2, session: \"{SESSION}\"}}]}}"),
    )
    .replace("suppress: 1h\n", "");
    passes("dry-run", &dry_run);
}

#[test]
fn rejected_records_fail_a_test_unless_it_expects_them() {
    let dir = std::env::temp_dir().join(format!("sessionguard-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let with_reject = dir.join("with-reject.jsonl");
    let mut text = std::fs::read_to_string(events()).unwrap();
    text.push_str("{\"not\": \"an audit record\"}\n");
    std::fs::write(&with_reject, text).unwrap();

    fails(
        "reject",
        &rule("alert", &with_reject, "{decisions: 1}"),
        "expected 0 rejected record(s), got 1",
    );
    passes(
        "reject-expected",
        &rule("alert", &with_reject, "{decisions: 1, rejects: 1}"),
    );
    fails(
        "reject-count",
        &rule("alert", &events(), "{decisions: 1, rejects: 1}"),
        "expected 1 rejected record(s), got 0",
    );

    // A file of nothing but rejects: "0 decisions" alone must not pass.
    let only_rejects = dir.join("only-rejects.jsonl");
    std::fs::write(&only_rejects, "{\"a\": 1}\n{\"b\": 2}\n").unwrap();
    fails(
        "all-rejected",
        &rule("alert", &only_rejects, "{decisions: 0}"),
        "expected 0 rejected record(s), got 2",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the binary; fails the test if it has not finished within `limit` (a hang: the child
/// is killed), else its output.
fn finishes_within(args: &[&std::ffi::OsStr], limit: std::time::Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("sessionguard {args:?} had not finished after {limit:?}: it blocks");
        }
    }
}

#[test]
fn a_fifo_a_socket_or_a_broken_symlink_in_a_rules_directory_is_an_error_not_a_hang() {
    let dir =
        std::env::temp_dir().join(format!("sessionguard-check-{}-special", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rule.yml"),
        rule("alert", &events(), "{decisions: 1}"),
    )
    .unwrap();
    // A FIFO with no writer: opening it for reading would wait forever.
    let mkfifo = Command::new("mkfifo")
        .arg(dir.join("pipe.yml"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket.yml")).unwrap();
    std::os::unix::fs::symlink(dir.join("gone.yml"), dir.join("dangling.yml")).unwrap();
    // Not a rule file by name: left alone like any other such file.
    let mkfifo = Command::new("mkfifo")
        .arg(dir.join("notes"))
        .status()
        .unwrap();
    assert!(mkfifo.success());

    let limit = std::time::Duration::from_secs(60);
    let check = finishes_within(&["check".as_ref(), dir.as_os_str()], limit);
    let replay = finishes_within(
        &[
            "replay".as_ref(),
            "--rules".as_ref(),
            dir.as_os_str(),
            events().as_os_str(),
        ],
        limit,
    );
    for (output, code) in [(&check, 1), (&replay, 2)] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        for expected in [
            format!(
                "{}: a FIFO, not a regular file",
                dir.join("pipe.yml").display()
            ),
            format!(
                "{}: a socket, not a regular file",
                dir.join("socket.yml").display()
            ),
            format!(
                "{}: broken symbolic link to {}: its target does not exist",
                dir.join("dangling.yml").display(),
                dir.join("gone.yml").display()
            ),
        ] {
            assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
        }
        assert!(!stderr.contains("notes"), "{stderr}");
    }
    assert!(String::from_utf8_lossy(&check.stderr).contains("3 errors; no rule was loaded"));
    std::fs::remove_dir_all(&dir).unwrap();
}
