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
