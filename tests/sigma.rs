//! Sigma rules as written: the rules under `fixtures/sigma/` are in Sigma's format — `logsource`,
//! the vendors' own field names, Sigma's metadata keys — with no sessionguard key in them. They
//! must load unchanged and fire on the records of their log, and only there. (They are
//! sessionguard's own rules written in Sigma's format; the SigmaHQ corpus itself is not vendored
//! here.)

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Each data file with the Sigma rule that must fire on it, and how many times.
const CASES: &[(&str, &str, usize)] = &[
    (
        "fixtures/events/cloudtrail/aws.credential-access.secretsmanager-batch-retrieve-secrets.json",
        "6f1d2c84-3a57-4c1e-9b0e-2d7a5f9c1e30",
        5,
    ),
    // `eventtype`, as Sigma's Okta rules write it, finds Okta's `eventType`; the token was
    // created outside a session, keyed by its actor.
    (
        "fixtures/events/okta/session-handwritten.jsonl",
        "0c9e7a41-5b2d-4f8e-a1c3-7d6b4e2f9a18",
        1,
    ),
    // `action` is GitHub's field, not the engine's `github:…` action.
    (
        "fixtures/events/github/panther-github.jsonl",
        "8b3f6d12-9e4a-4c7b-b5d0-1a2e3f4c5d6e",
        1,
    ),
    (
        "fixtures/third_party/k8s-audit-falco/exec_pod.json",
        "3d5a7c9e-1b2f-4e6a-8c0d-9f8e7d6c5b4a",
        1,
    ),
    // A path through the pod's volume array reaches every volume.
    (
        "fixtures/third_party/k8s-audit-falco/create_nginx_pod_sensitive_mount.json",
        "2e4f6a8c-0b1d-4e3f-a5c7-9d1e3f5a7c9e",
        1,
    ),
    // `ResultType`, as Sigma's Azure rules write it, finds the Graph record's `resultType`.
    (
        "fixtures/events/entra/entra-handwritten.jsonl",
        "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
        1,
    ),
];

#[test]
fn sigma_rules_load_unchanged_and_fire_on_their_logs_only() {
    let files: Vec<&str> = CASES.iter().map(|(file, _, _)| *file).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["replay", "--no-progress", "--rules", "fixtures/sigma"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut fired: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let decision: Value = serde_json::from_str(line).unwrap();
        let rule = decision["rule"]["id"].as_str().unwrap().to_owned();
        let file = decision["evidence"]["events"][0]["origin"]["file"]
            .as_str()
            .unwrap_or_else(|| panic!("no origin file: {decision}"))
            .to_owned();
        *fired.entry((file, rule)).or_default() += 1;
    }
    let want: BTreeMap<(String, String), usize> = CASES
        .iter()
        .map(|(file, rule, n)| (((*file).to_owned(), (*rule).to_owned()), *n))
        .collect();
    assert_eq!(fired, want, "decisions by (file, rule)");
}

/// A Sigma field no record of the log can carry would make a rule that never fires: it is an
/// error at the field, not a silent rule. Values under a logsource are literal (`$` included)
/// and `fieldref` names a vendor field.
#[test]
fn a_field_no_record_of_the_log_has_is_an_error_and_values_are_literal() {
    let text = "\
title: Privileged pod
id: 11111111-2222-4333-8444-555555555555
logsource:
    product: kubernetes
    service: audit
detection:
    selection:
        verb: create
        podSecurityPolicy: '*'
    condition: selection
";
    let errors = sessionguard::rule::RuleSet::from_yaml("pod.yml", text).unwrap_err();
    let shown = errors.to_string();
    assert!(
        shown.contains("pod.yml:9:9")
            && shown.contains("`podSecurityPolicy` is not a member of kubernetes records"),
        "{shown}"
    );
    let text = "\
title: Credentials URI in a task definition
id: 11111111-2222-4333-8444-666666666666
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        requestParameters.command|contains: '$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'
    self_update:
        userIdentity.arn|fieldref: requestParameters.userName
    condition: selection and not self_update
";
    let set =
        sessionguard::rule::RuleSet::from_yaml("task.yml", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.rules.len(), 1);
}

/// The decisions of a replay as (file, line of the last evidence record, rule id).
fn decisions(rules: &[&str], events: &str) -> Vec<(String, u64, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionguard"));
    command
        .current_dir(root())
        .args(["replay", "--no-progress"]);
    for r in rules {
        command.args(["--rules", r]);
    }
    let output = command.arg(events).output().unwrap();
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut out: Vec<(String, u64, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let d: Value = serde_json::from_str(line).unwrap();
            let origin = &d["evidence"]["events"]
                .as_array()
                .and_then(|e| e.last())
                .unwrap_or_else(|| panic!("no evidence: {d}"))["origin"];
            let file = origin["file"].as_str().unwrap();
            let file = file.rsplit('/').next().unwrap().to_owned();
            let id = d["rule"]["id"].as_str().unwrap().to_owned();
            (file, origin["line"].as_u64().unwrap(), id)
        })
        .collect();
    out.sort();
    out
}

const LANGUAGE: &str = "fixtures/sigma-language";
const CONSOLE_LOGIN_WITHOUT_MFA: &str = "5b6a1c2e-3f47-4d8a-9b1c-7e2f4a6d8c01";

/// `fixtures/sigma-language/`: Sigma rules as written, each using one of the value modifiers,
/// keywords or a placeholder, over handwritten records (see its README). Each record line
/// decides exactly as the rule means it to — the lines not listed (a plain-text download
/// cradle, an MFA sign-in, a sign-in record without `MFAUsed`, a read-only policy, grants to
/// trusted domains) decide nothing.
#[test]
fn each_modifier_keywords_and_a_placeholder_decide_on_their_records() {
    let got = decisions(&["fixtures/sigma-language/rules"], LANGUAGE);
    let want: Vec<(String, u64, String)> = [
        // neq: MFAUsed present and not `Yes` (alice, breakglass-admin).
        (
            "cloudtrail-console-logins.jsonl",
            1,
            CONSOLE_LOGIN_WITHOUT_MFA,
        ),
        (
            "cloudtrail-console-logins.jsonl",
            3,
            CONSOLE_LOGIN_WITHOUT_MFA,
        ),
        // windash: `/enc`; wide|base64offset: the cradle in -EncodedCommand's form.
        (
            "cloudtrail-ecs-task-definitions.jsonl",
            1,
            "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e04",
        ),
        (
            "cloudtrail-ecs-task-definitions.jsonl",
            1,
            "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e05",
        ),
        // base64offset: `curl -s http` inside `echo <base64> | base64 -d | sh`.
        (
            "cloudtrail-ecs-task-definitions.jsonl",
            2,
            "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e06",
        ),
        // windash: an en dash before EncodedCommand.
        (
            "cloudtrail-ecs-task-definitions.jsonl",
            4,
            "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e04",
        ),
        // base64: a script that starts with `#!/bin/sh`.
        (
            "cloudtrail-ecs-task-definitions.jsonl",
            6,
            "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e07",
        ),
        // keywords: `policy/AdministratorAccess` somewhere in the record.
        (
            "cloudtrail-policy-attachments.jsonl",
            1,
            "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a603",
        ),
        // expand: a grant outside `%trusted_domains%`.
        (
            "okta-admin-grants.jsonl",
            2,
            "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b02",
        ),
    ]
    .iter()
    .map(|(f, l, r)| ((*f).to_owned(), *l, (*r).to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// A Sigma filter beside the rules (`fixtures/sigma-language/filters/`) takes out the
/// decision the unfiltered rule makes on the break-glass sign-in, and only that one.
#[test]
fn a_filter_removes_the_decision_its_rule_makes() {
    let unfiltered = decisions(&["fixtures/sigma-language/rules"], LANGUAGE);
    let filtered = decisions(
        &[
            "fixtures/sigma-language/rules",
            "fixtures/sigma-language/filters",
        ],
        LANGUAGE,
    );
    let breakglass = (
        "cloudtrail-console-logins.jsonl".to_owned(),
        3,
        CONSOLE_LOGIN_WITHOUT_MFA.to_owned(),
    );
    assert!(unfiltered.contains(&breakglass), "{unfiltered:?}");
    let mut want = unfiltered.clone();
    want.retain(|d| *d != breakglass);
    assert_eq!(filtered, want);
    // The same filter written with `1 of them` and a helper selection: `them` leaves out the
    // selections named with a leading `_`, so it is the break-glass selection alone.
    let dir = std::env::temp_dir().join(format!("sg-sigma-them-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("filter.yml"),
        format!(
            "title: Break-glass sign-ins\nlogsource: {{product: aws, service: cloudtrail}}\n\
             filter:\n  rules: [{CONSOLE_LOGIN_WITHOUT_MFA}]\n  \
             breakglass: {{userIdentity.userName|startswith: 'breakglass-'}}\n  \
             _console: {{eventName: ConsoleLogin}}\n  condition: not 1 of them\n"
        ),
    )
    .unwrap();
    let with_them = decisions(
        &["fixtures/sigma-language/rules", dir.to_str().unwrap()],
        LANGUAGE,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(with_them, want);
}

/// `sessionguard check` names each modifier or filter it cannot use at its file, line and
/// column, and loads nothing.
#[test]
fn check_reports_what_it_does_not_read_where_it_is_written() {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["check", "fixtures/rules-broken/sigma-modifiers.yml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for want in [
        "fixtures/rules-broken/sigma-modifiers.yml:8:19: rule `broken.sigma-modifiers`: unknown \
         modifier `hour`",
        "fixtures/rules-broken/sigma-modifiers.yml:28:11: filter `A filter of a rule that is not \
         loaded`: no loaded rule has the id or name",
    ] {
        assert!(stderr.contains(want), "{want}\nnot in:\n{stderr}");
    }
    // The rules and filter of `fixtures/sigma-language` load as written.
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args([
            "check",
            "fixtures/sigma-language/rules",
            "fixtures/sigma-language/filters",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
