//! Every record of the third-party audit logs in `fixtures/third_party/` (copied unchanged from
//! the project's shared data, with their licences) either normalizes or is rejected with a
//! reason, and the per-source counts match the reviewed `fixtures/third_party.summary`.
//!
//! The labelled Panther file wraps each event (`{"rule_id", "log_types", "event"}`); the test
//! reads the `event`. Where an event's log type names one source, the test checks the detected
//! source agrees, and that formats sessionguard does not read are refused as `unknown_source`
//! instead of being mistaken for one it does. A record labelled with one source sessionguard
//! reads but rejected all the same is counted, by source and reason, in the summary: a change in
//! those counts fails like any other.
//!
//! The summary is a golden file (`support/golden.rs`: missing fails, `UPDATE_GOLDEN=1` rewrites,
//! refused under CI). The copy is compared with `../shared/data` when that folder is present;
//! under CI its absence is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bumpalo::Bump;
use serde::Deserialize;
use serde_json::value::RawValue;
use sessionguard::event::{Normalizer, RejectReason, Source};
use sessionguard::source::file::{self, Item};

#[path = "support/golden.rs"]
mod golden;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/third_party")
}

/// The source a Panther log type belongs to, for the types sessionguard reads.
fn source_of_log_type(log_type: &str) -> Option<Source> {
    match log_type {
        "AWS.CloudTrail" => Some(Source::Cloudtrail),
        "Okta.SystemLog" => Some(Source::Okta),
        "GitHub.Audit" => Some(Source::Github),
        "Azure.Audit" => Some(Source::Entra),
        "Amazon.EKS.Audit" => Some(Source::Kubernetes),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Labelled<'a> {
    #[serde(borrow)]
    log_types: Option<Vec<&'a str>>,
    #[serde(borrow)]
    event: &'a RawValue,
}

#[derive(Default)]
struct Tally {
    records: u64,
    outcomes: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, outcome: Result<Source, RejectReason>) {
        self.records += 1;
        let label = match outcome {
            Ok(source) => format!("event {source}"),
            Err(reason) => format!("reject {reason}"),
        };
        *self.outcomes.entry(label).or_default() += 1;
    }
}

fn normalize(normalizer: &Normalizer, bytes: &[u8]) -> Result<Source, RejectReason> {
    let scratch = Bump::new();
    normalizer
        .normalize(bytes, &scratch)
        .map(|e| e.source)
        .map_err(|r| r.reason)
}

#[test]
fn every_third_party_record_normalizes_or_is_rejected_with_a_reason() {
    let normalizer = Normalizer::default();
    let files = file::expand_paths(&[root()]).unwrap();
    assert!(
        files.len() >= 79,
        "expected the shared data set, found {} files",
        files.len()
    );
    let mut by_folder: BTreeMap<String, Tally> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut labelled_rejects: BTreeMap<String, u64> = BTreeMap::new();
    for path in &files {
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        let folder = rel.split('/').next().unwrap().to_owned();
        let labelled = rel.ends_with("rule_test_events.jsonl");
        let mut outcomes = Vec::new();
        file::for_each_record(file::open(path).unwrap(), &mut |item| match item {
            Item::Record { bytes, line } => {
                if labelled {
                    let l: Labelled<'_> = serde_json::from_slice(bytes).unwrap();
                    let outcome = normalize(&normalizer, l.event.get().as_bytes());
                    let types = l.log_types.unwrap_or_default();
                    let expected = match types.as_slice() {
                        [one] => Some(source_of_log_type(one)),
                        _ => None,
                    };
                    match (expected, outcome) {
                        (Some(Some(want)), Ok(got)) if want != got => {
                            mismatches.push(format!("{rel}:{line}: {types:?} read as {got}"))
                        }
                        (Some(None), Ok(got)) => mismatches
                            .push(format!("{rel}:{line}: unsupported {types:?} read as {got}")),
                        (Some(None), Err(reason)) if reason != RejectReason::UnknownSource => {
                            mismatches.push(format!("{rel}:{line}: {types:?} rejected as {reason}"))
                        }
                        // Counted in the reviewed summary, by source and reason: a record of a
                        // source sessionguard reads, refused, is a finding, never a pass.
                        (Some(Some(want)), Err(reason)) => {
                            *labelled_rejects
                                .entry(format!("{want} rejected as {reason}"))
                                .or_default() += 1
                        }
                        (None, _) | (Some(Some(_)), Ok(_)) | (Some(None), Err(_)) => {}
                    }
                    outcomes.push(outcome);
                } else {
                    outcomes.push(normalize(&normalizer, bytes));
                }
            }
            Item::Broken { reject, .. } => outcomes.push(Err(reject.reason)),
        })
        .unwrap();
        assert!(!outcomes.is_empty(), "{rel}: no records read");
        if rel.ends_with("fal_01_003.json") {
            assert!(
                outcomes.iter().all(Result::is_err),
                "{rel} must be rejected"
            );
        }
        let tally = by_folder.entry(folder).or_default();
        for o in outcomes {
            tally.add(o);
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    let mut summary = String::new();
    for (folder, tally) in &by_folder {
        summary.push_str(&format!("{folder}: {} records\n", tally.records));
        for (label, n) in &tally.outcomes {
            summary.push_str(&format!("  {label:<32} {n:>5}\n"));
        }
    }
    summary.push_str("labelled with one supported source, yet rejected:\n");
    for (label, n) in &labelled_rejects {
        summary.push_str(&format!("  {label:<44} {n:>5}\n"));
    }
    let summary_golden = root().with_extension("summary");
    if let Err(e) = golden::check(golden::mode(), &summary_golden, &summary) {
        panic!("per-source counts changed: {e}");
    }
}

/// The copy in fixtures/ is the shared data set, unchanged (checked when the shared folder is
/// beside the checkout, as on the team's machines and in CI).
#[test]
fn third_party_copy_matches_the_shared_data() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !shared.is_dir() {
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"));
        assert!(
            !ci,
            "{} is missing under CI: the copy cannot be checked",
            shared.display()
        );
        eprintln!("{} not present; nothing to compare", shared.display());
        return;
    }
    for original in file::expand_paths(std::slice::from_ref(&shared)).unwrap() {
        let rel = original.strip_prefix(&shared).unwrap();
        let copy = root().join(rel);
        assert_eq!(
            std::fs::read(&original).unwrap(),
            std::fs::read(&copy).unwrap_or_default(),
            "{} differs from {}",
            copy.display(),
            original.display()
        );
    }
}
