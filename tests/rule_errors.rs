//! Broken rule files: each fixture under `fixtures/rules-broken/` is loaded on its own and must
//! fail with exactly the errors in the `.expected` file beside it — position, rule and a fragment
//! of the message — so a user editing the file is sent to the right place. The valid example under `fixtures/rules-valid/`
//! must compile to the structure it describes.

use std::path::{Path, PathBuf};

use sessionguard::rule::{
    ActionKind, CmpOp, ExpectedDecision, Fire, Learn, LoadErrors, Mode, RuleSet, SessionLogic,
    Severity, Since, StepAggregate, TestExpect, Tolerance,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn load_errors(path: &Path) -> LoadErrors {
    match RuleSet::load(&[path.to_path_buf()]) {
        Ok(set) => panic!(
            "{} loaded ({} rules) but should fail",
            path.display(),
            set.rules.len()
        ),
        Err(e) => e,
    }
}

/// One expected error: where, which rule (if any), and a fragment of the message.
#[derive(Debug)]
struct Expected {
    line: usize,
    col: usize,
    rule: Option<String>,
    fragment: String,
}

/// The errors a broken fixture must give, from the `.expected` file beside it: one line each,
/// in order, `LINE:COL: [rule `ID`: ]FRAGMENT` — the error as `check` prints it, without the
/// file, the message cut to the part that matters.
fn expected_errors(path: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let bad = format!("{}: not `LINE:COL: …`: {l:?}", path.display());
            let mut parts = l.splitn(3, ':');
            let line = parts
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .expect(&bad);
            let col = parts
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .expect(&bad);
            let rest = parts.next().expect(&bad).trim_start();
            let (rule, fragment) = match rest
                .strip_prefix("rule `")
                .and_then(|r| r.split_once("`: "))
            {
                Some((id, fragment)) => (Some(id.to_owned()), fragment),
                None => (None, rest),
            };
            Expected {
                line,
                col,
                rule,
                fragment: fragment.to_owned(),
            }
        })
        .collect()
}

/// The broken fixtures (files and directories) with the `.expected` file beside each.
fn broken_fixtures() -> Vec<(PathBuf, PathBuf)> {
    let dir = fixtures().join("rules-broken");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".expected"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let expected = dir.join(format!("{}.expected", n.trim_end_matches(".yml")));
            (dir.join(n), expected)
        })
        .collect()
}

#[test]
fn every_broken_fixture_fails_with_its_located_errors() {
    let mut failures = Vec::new();
    let fixtures = broken_fixtures();
    assert!(fixtures.len() >= 30, "the broken fixtures: {fixtures:?}");
    for (fixture, expected_file) in fixtures {
        let expected = expected_errors(&expected_file);
        assert!(
            !expected.is_empty(),
            "{}: no error expected",
            expected_file.display()
        );
        let errors = load_errors(&fixture);
        let got: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
        let ok = errors.errors.len() == expected.len()
            && errors.errors.iter().zip(&expected).all(|(e, x)| {
                e.line == x.line
                    && e.col == x.col
                    && e.rule_id.as_deref() == x.rule.as_deref()
                    && e.message.contains(&x.fragment)
            });
        if !ok {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got:\n    {}",
                fixture.display(),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `.expected` file belongs to a fixture (a fixture without one fails above).
#[test]
fn every_expected_file_has_its_fixture() {
    let dir = fixtures().join("rules-broken");
    let expected: Vec<PathBuf> = broken_fixtures().into_iter().map(|(_, e)| e).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(expected.contains(&path), "an orphan: {}", path.display());
        }
    }
}

#[test]
fn errors_display_as_file_line_col_with_the_rule() {
    let path = fixtures().join("rules-broken").join("unknown-field.yml");
    let errors = load_errors(&path);
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:5:5: rule `broken.unknown_field`: unknown field `netwrk.ip` (did you mean `network.ip`?)",
            path.display()
        )
    );
    // A duplicate id names both places.
    let dir = fixtures()
        .join("rules-broken")
        .join("duplicate-id-across-files");
    let message = &load_errors(&dir).errors[0];
    assert_eq!(message.file, dir.join("b.yml"));
    assert!(message
        .message
        .ends_with(&format!("{}:2:5)", dir.join("a.yml").display())));
}

#[test]
fn a_pack_with_one_broken_file_loads_nothing_and_reports_every_file() {
    let dir = fixtures().join("rules-broken");
    let errors = load_errors(&dir);
    // Every fixture contributes its errors (the YAML one only its syntax error).
    let broken = broken_fixtures();
    let expected: usize = broken.iter().map(|(_, e)| expected_errors(e).len()).sum();
    assert_eq!(errors.errors.len(), expected, "{errors}");
    let mut files: Vec<&Path> = errors.errors.iter().map(|e| e.file.as_path()).collect();
    files.dedup();
    // One file per case: in the directory case, the second definition (b.yml) is wrong.
    assert_eq!(files.len(), broken.len());
    let valid = fixtures().join("rules-valid");
    assert!(RuleSet::load(&[valid, dir]).is_err());
}

#[test]
fn missing_paths_are_errors() {
    let path = fixtures().join("no-such-rules");
    let errors = load_errors(&path);
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].line, 0);
    assert_eq!(
        errors.to_string(),
        format!("{}: no such file or directory", path.display())
    );
}

#[test]
fn the_valid_example_compiles_to_its_structure() {
    let dir = fixtures().join("rules-valid");
    let set = RuleSet::load(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "example.escalate_then_bulk_read",
            "example.new_network",
            "example.long_session",
        ]
    );

    let r = &set.rules[0];
    assert_eq!(
        r.title,
        "Bulk read after privilege escalation in one session"
    );
    assert_eq!(r.version, "3");
    assert_eq!(r.level, Severity::Critical);
    assert_eq!(r.tags, ["attack.privilege_escalation", "attack.collection"]);
    assert_eq!(
        (r.action, r.mode),
        (ActionKind::RevokeSession, Mode::DryRun)
    );
    assert_eq!(r.suppress_ms, Some(3_600_000));
    assert_eq!(r.file, dir.join("escalation.yml"));
    assert_eq!(r.line, 2);
    assert_eq!(r.tests.len(), 2);
    assert_eq!(r.tests[0].name, "escalation then 60 reads");
    assert_eq!(r.tests[0].events, dir.join("escalation.jsonl"));
    assert_eq!(r.tests[0].expect, TestExpect::Count(1));
    assert_eq!(r.tests[0].rejects, 0);
    assert_eq!(
        r.tests[1].expect,
        TestExpect::Decisions(vec![ExpectedDecision {
            line: 51,
            session: "aws:111122223333:sts:ASIAEXAMPLESESSION1".into(),
            rule: None,
        }])
    );
    let Some(SessionLogic::Sequence {
        maxspan_ms,
        steps,
        until,
    }) = &r.session
    else {
        panic!("a sequence: {:?}", r.session);
    };
    assert_eq!(*maxspan_ms, 15 * 60_000);
    assert_eq!(steps.len(), 2);
    assert!(steps[0].aggregate.is_none());
    match &steps[1].aggregate {
        Some(StepAggregate::EventCount {
            timespan_ms,
            threshold,
        }) => {
            assert_eq!(*timespan_ms, 5 * 60_000);
            assert_eq!((threshold.op, threshold.value), (CmpOp::Gte, 50.0));
        }
        other => panic!("an event count: {other:?}"),
    }
    assert!(until.is_some());
    // The rule's own selections, its exceptions, then the macros it uses.
    let names: Vec<&str> = r.detection.selection_names().collect();
    assert_eq!(
        names,
        [
            "escalation",
            "bulk_read",
            "logout",
            "exception break_glass",
            "exception analytics_service",
            "macro successful",
        ]
    );

    let r = &set.rules[1];
    assert_eq!((r.action, r.mode), (ActionKind::StepUp, Mode::Enforce));
    assert_eq!(r.level, Severity::High);
    assert_eq!(r.version, "1");
    match &r.session {
        Some(SessionLogic::NewValue {
            field,
            learn,
            tolerance,
        }) => {
            assert_eq!(field.to_string(), "network.ip");
            assert_eq!(
                *learn,
                Learn {
                    events: 3,
                    timespan_ms: 10 * 60_000
                }
            );
            assert_eq!(*tolerance, Tolerance::IpPrefix { v4: 24, v6: 64 });
        }
        other => panic!("a new value: {other:?}"),
    }

    let r = &set.rules[2];
    assert_eq!((r.action, r.mode), (ActionKind::Alert, Mode::Enforce));
    assert_eq!(
        r.title, "example.long_session",
        "the title defaults to the id"
    );
    match &r.session {
        Some(SessionLogic::Duration {
            since,
            limit_ms,
            fire,
            until,
            active_within_ms,
        }) => {
            assert_eq!(
                (*since, *limit_ms, *fire),
                (Since::SessionStart, 12 * 3_600_000, Fire::OnTimer)
            );
            assert!(until.is_none());
            assert_eq!(*active_within_ms, None, "no activity needed unless asked");
        }
        other => panic!("a duration: {other:?}"),
    }
}
