//! OCSF as a first-class input: a CloudTrail record and its OCSF mapping are one session and
//! give the same decisions, so a pipeline that delivers some sources raw and some mapped to
//! OCSF (Security Lake beside a SIEM) does not split a session in two.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const RAW: &str =
    "fixtures/events/cloudtrail/aws.credential-access.secretsmanager-batch-retrieve-secrets.json";
const MAPPED: &str = "fixtures/events/ocsf/stratus-secretsmanager-as-ocsf.jsonl";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What must agree between the raw and the mapped record: everything but the source and the
/// vendor record.
fn model(event: &Value) -> Value {
    let mut e = event.clone();
    let o = e.as_object_mut().unwrap();
    o.remove("source");
    o.remove("raw");
    e
}

#[test]
fn a_cloudtrail_record_and_its_ocsf_mapping_are_one_session() {
    let raw = run(&["normalize", RAW]);
    let mapped = run(&["normalize", MAPPED]);
    assert_eq!(raw.len(), 5);
    assert_eq!(mapped.len(), raw.len());
    for (r, m) in raw.iter().zip(&mapped) {
        assert_eq!(r["source"], "cloudtrail");
        assert_eq!(m["source"], "ocsf");
        assert_eq!(
            m["session"]["key"],
            "aws:165109126369:iam-key:AKIALK3Q0HKBKZJ2XBYP"
        );
        // Key, kind, principal, action, outcome, operation, network, client: the same event.
        assert_eq!(model(m), model(r));
    }
}

/// A rule on the model's fields decides the same on either form, and on both together (one
/// session: the windows count the raw and the mapped records alike).
#[test]
fn a_cloudtrail_record_and_its_ocsf_mapping_give_the_same_decisions() {
    let dir = std::env::temp_dir().join(format!("sg-ocsf-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("batch.yml"),
        "\
id: test.secrets_batches
detection:
  batch: {action: 'secretsmanager:BatchGetSecretValue', outcome: success}
  condition: batch
session:
  event_count: {timespan: 5m, gte: 3}
action: revoke_session
",
    )
    .unwrap();
    let rules = dir.to_str().unwrap();
    let decided = |files: &[&str]| -> Vec<(String, String, String)> {
        let mut args = vec!["replay", "--no-progress", "--rules", rules];
        args.extend(files);
        run(&args)
            .iter()
            .map(|d| {
                (
                    d["rule"]["id"].as_str().unwrap().to_owned(),
                    d["session"]["key"].as_str().unwrap().to_owned(),
                    d["time"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let raw = decided(&[RAW]);
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(decided(&[MAPPED]), raw);
    // Both forms of the same five records: one session, decided once on the third record;
    // the mapped records that follow are that killed session still acting, reported once as
    // `kill_not_enforced` under the same key (two sessions would each have been decided).
    let both = decided(&[RAW, MAPPED]);
    assert_eq!(both[0], raw[0]);
    let rest: Vec<(&str, &str)> = both[1..]
        .iter()
        .map(|(rule, key, _)| (rule.as_str(), key.as_str()))
        .collect();
    assert_eq!(
        rest,
        [("sessionguard.kill_not_enforced", raw[0].1.as_str())],
        "{both:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
