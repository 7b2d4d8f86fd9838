//! Broken rule files: each fixture under `fixtures/rules-broken/` is loaded on its own and must
//! fail with exactly the listed errors — position and a fragment of the message — so a user
//! editing the file is sent to the right place. The valid example under `fixtures/rules-valid/`
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

/// (fixture, [(line, col, rule id, message fragment)]) — every error, in order.
type Case = (
    &'static str,
    &'static [(usize, usize, Option<&'static str>, &'static str)],
);

const CASES: &[Case] = &[
    // Files not in UTF-8: the first bad byte, and what the file looks like.
    (
        "encoding-latin1.yml",
        &[(3, 17, None, "invalid UTF-8 (byte 0xE8; Latin-1 'è'?); save the file as UTF-8")],
    ),
    (
        "encoding-windows1252.yml",
        &[(4, 25, None, "invalid UTF-8 (byte 0x93; Windows-1252 '“'?)")],
    ),
    (
        "encoding-invalid-utf8.yml",
        &[(4, 28, None, "invalid UTF-8 (byte 0xC3; Latin-1 'Ã'?)")],
    ),
    (
        "encoding-utf16le-bom.yml",
        &[(1, 1, None, "the file looks like UTF-16 LE (it starts with a UTF-16 byte-order mark); save it as UTF-8")],
    ),
    (
        "encoding-utf16be.yml",
        &[(1, 1, None, "the file looks like UTF-16 BE (it has NUL bytes between its characters)")],
    ),
    // List files: located in the list file, or where the rule names a missing one.
    (
        "list-file-latin1",
        &[(5, 4, None, "list `blocked_names`: invalid UTF-8 (byte 0xE9; Latin-1 'é'?)")],
    ),
    (
        "list-file-missing.yml",
        &[(4, 25, Some("broken.list_file_missing"), "no-such-list.txt: no such file or directory")],
    ),
    (
        "list-file-entries",
        &[
            (3, 1, None, "list `bad_ips`: `198.51.100.0/24` is not an IP address (for a network use `network.ip|cidr`)"),
            (5, 4, None, "list `bad_ips`: `not-an-address` is not an IP address"),
        ],
    ),
    (
        "absurd-thresholds.yml",
        &[
            (12, 54, Some("broken.absurd_thresholds"), "`gte: 0` cannot be right for `event_count`: it needs a whole number from 1 to 10000000"),
            (14, 76, Some("broken.absurd_thresholds"), "`gte: -1` cannot be right for `value_count`"),
            (16, 54, Some("broken.absurd_thresholds"), "cannot be right for `event_count`"),
            (18, 76, Some("broken.absurd_thresholds"), "`gte: 2.5` cannot be right for `value_count`"),
            (20, 66, Some("broken.absurd_thresholds"), "`gte: 0` cannot be right for `value_sum`: it needs a positive amount"),
        ],
    ),
    (
        "bad-learn.yml",
        &[(
            7,
            50,
            Some("broken.bad_learn"),
            "`events` must be a positive whole number, not `0`",
        )],
    ),
    (
        "bad-test-expect.yml",
        &[
            (
                11,
                11,
                Some("broken.bad_test_expect"),
                "expected decision: missing `session`",
            ),
            (
                12,
                18,
                Some("broken.bad_test_expect"),
                "`line` must be a line number, not `0`",
            ),
            (
                12,
                74,
                Some("broken.bad_test_expect"),
                "unknown key `rul` in expected decision (did you mean `rule`?)",
            ),
            (
                13,
                16,
                Some("broken.bad_test_expect"),
                "`rejects` must be a whole number, not `some`",
            ),
        ],
    ),
    (
        "yaml-syntax.yml",
        &[(6, 12, None, "invalid YAML: while parsing a flow mapping")],
    ),
    (
        "unknown-key.yml",
        &[(
            1,
            1,
            Some("broken.unknown_key"),
            "unknown key `titel` in rule (did you mean `title`?)",
        )],
    ),
    (
        "unknown-field.yml",
        &[(
            5,
            5,
            Some("broken.unknown_field"),
            "unknown field `netwrk.ip` (did you mean `network.ip`?)",
        )],
    ),
    (
        "bad-modifier.yml",
        &[(
            5,
            23,
            Some("broken.bad_modifier"),
            "unknown modifier `contians` (did you mean `contains`?)",
        )],
    ),
    (
        "modifier-type.yml",
        &[
            (
                5,
                11,
                Some("broken.modifier_type"),
                "modifier `contains` does not apply to `bytes` (it is a number",
            ),
            (
                7,
                23,
                Some("broken.modifier_type"),
                "modifier `gt` does not apply to `client.user_agent` (it is not a number)",
            ),
        ],
    ),
    (
        "value-type.yml",
        &[
            (
                5,
                18,
                Some("broken.value_type"),
                "`session.mfa` is true or false, not `maybe`",
            ),
            (
                6,
                16,
                Some("broken.value_type"),
                "`operation` is one of: read, write, admin, auth, unknown; `reed` never matches (did you mean `read`?)",
            ),
            (
                7,
                17,
                Some("broken.value_type"),
                "`10.0.0.0/8` is not an IP address (for a network use `network.ip|cidr`)",
            ),
        ],
    ),
    (
        "bad-regex.yml",
        &[(
            5,
            27,
            Some("broken.bad_regex"),
            "invalid regex `^curl/(7|8`: unclosed group",
        )],
    ),
    (
        "bad-cidr.yml",
        &[(7, 9, Some("broken.bad_cidr"), "invalid CIDR `10.0.0.0/33`")],
    ),
    (
        "undefined-selection.yml",
        &[(
            6,
            32,
            Some("broken.undefined_selection"),
            "unknown selection or macro `filtr`",
        )],
    ),
    (
        "condition-syntax.yml",
        &[(
            6,
            21,
            Some("broken.condition_syntax"),
            "condition ends early",
        )],
    ),
    (
        "unknown-list.yml",
        &[(
            7,
            16,
            Some("broken.unknown_list"),
            "unknown list `$admin_action` (did you mean `admin_actions`?)",
        )],
    ),
    (
        "macro-cycle.yml",
        &[(
            5,
            12,
            Some("broken.macro_cycle"),
            "macro cycle: is_admin → is_root → is_admin",
        )],
    ),
    (
        "list-cycle.yml",
        &[(5, 10, Some("broken.list_cycle"), "list cycle: a → b → a")],
    ),
    (
        "duplicate-id.yml",
        &[(
            8,
            5,
            Some("broken.duplicate"),
            "duplicate rule id `broken.duplicate` (first defined at ",
        )],
    ),
    (
        "two-session-kinds.yml",
        &[(
            8,
            3,
            Some("broken.two_session_kinds"),
            "session takes exactly one kind: found both `event_count` and `value_count`",
        )],
    ),
    (
        "bad-duration.yml",
        &[
            (
                8,
                15,
                Some("broken.bad_duration"),
                "invalid duration `5 minutes`",
            ),
            (
                10,
                11,
                Some("broken.bad_duration"),
                "invalid duration `3600`: expected a number with a unit",
            ),
        ],
    ),
    (
        "missing-id.yml",
        &[(1, 1, None, "missing required key `id`")],
    ),
    (
        "missing-condition.yml",
        &[(
            4,
            3,
            Some("broken.missing_condition"),
            "detection needs a `condition`",
        )],
    ),
    (
        "bad-threshold.yml",
        &[(
            11,
            5,
            Some("broken.bad_threshold"),
            "one comparison only (found `gt` and `lt`)",
        )],
    ),
    (
        "value-sum-field.yml",
        &[(
            8,
            12,
            Some("broken.value_sum_field"),
            "`value_sum` needs a numeric field",
        )],
    ),
    (
        "bad-words.yml",
        &[
            (3, 8, Some("broken.bad_words"), "unknown level `severe`"),
            (
                10,
                16,
                Some("broken.bad_words"),
                "an IP prefix tolerance applies to `network.ip`",
            ),
            (
                11,
                16,
                Some("broken.bad_words"),
                "unknown action `revoke_sesion` (expected one of: revoke_session, revoke_credential, step_up, alert) (did you mean `revoke_session`?)",
            ),
            (
                11,
                37,
                Some("broken.bad_words"),
                "unknown mode `dry-run` (expected one of: enforce, dry_run) (did you mean `dry_run`?)",
            ),
        ],
    ),
    (
        "logsource.yml",
        &[(
            3,
            1,
            Some("broken.logsource"),
            "`logsource` is not used: a rule sees every source",
        )],
    ),
    (
        "fieldref.yml",
        &[
            (
                7,
                29,
                Some("broken.fieldref"),
                "unknown field `principal.nme` (did you mean `principal.name`?)",
            ),
            (
                9,
                46,
                Some("broken.fieldref"),
                "unknown field `resource.containr` (did you mean `resource.container`?)",
            ),
            (
                11,
                32,
                Some("broken.fieldref"),
                "modifier `re` cannot be combined with `fieldref`: fieldref compares for equality only",
            ),
        ],
    ),
    (
        "several-errors.yml",
        &[
            (
                7,
                5,
                Some("broken.several"),
                "unknown field `netwrk.ip` (did you mean `network.ip`?)",
            ),
            (9, 27, Some("broken.several"), "invalid regex `([`"),
            (10, 16, Some("broken.several"), "unknown list `$nope`"),
            (
                11,
                23,
                Some("broken.several"),
                "unknown selection or macro `sel_c` (did you mean `sel_a`?)",
            ),
            (14, 14, Some("broken.several"), "invalid duration `soon`"),
            (17, 25, Some("broken.several"), "condition ends early"),
            (18, 9, Some("broken.several"), "unknown action `revoke_everything`"),
            (
                21,
                25,
                Some("broken.several"),
                "`decisions` must be a whole number or a list, not `many`",
            ),
        ],
    ),
    (
        "duplicate-id-across-files",
        &[(
            2,
            5,
            Some("broken.same_id"),
            "duplicate rule id `broken.same_id` (first defined at ",
        )],
    ),
];

#[test]
fn every_broken_fixture_fails_with_its_located_errors() {
    let dir = fixtures().join("rules-broken");
    let mut failures = Vec::new();
    for (name, expected) in CASES {
        let errors = load_errors(&dir.join(name));
        let got: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
        let ok =
            errors.errors.len() == expected.len()
                && errors.errors.iter().zip(expected.iter()).all(
                    |(e, (line, col, id, fragment))| {
                        e.line == *line
                            && e.col == *col
                            && e.rule_id.as_deref() == *id
                            && e.message.contains(fragment)
                    },
                );
        if !ok {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got:\n    {}",
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_broken_fixture_has_a_case() {
    let dir = fixtures().join("rules-broken");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut covered: Vec<String> = CASES.iter().map(|(n, _)| (*n).to_owned()).collect();
    covered.sort();
    assert_eq!(names, covered);
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
    let expected: usize = CASES.iter().map(|(_, e)| e.len()).sum();
    assert_eq!(errors.errors.len(), expected, "{errors}");
    let mut files: Vec<&Path> = errors.errors.iter().map(|e| e.file.as_path()).collect();
    files.dedup();
    // One file per case: in the directory case, the second definition (b.yml) is wrong.
    assert_eq!(files.len(), CASES.len());
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
