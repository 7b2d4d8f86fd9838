//! The shipped pack scored on Panther's labelled rule tests
//! (`fixtures/third_party/labelled-rule-tests-panther/rule_test_events.jsonl`) for the sources
//! sessionguard reads: Okta, Entra (Azure AD), GitHub and CloudTrail.
//!
//! Each labelled event is evaluated alone, read as the source its log type names (as a user
//! replaying one vendor's stream would). A positive (`expected_result: true`: Panther's rule
//! fires) counts as caught when the pack decides on it; a negative counts against the pack when
//! it decides. Panther's labels are for Panther's rules: a negative for one rule can be another
//! rule's attack, and many positives are single events of multi-event patterns, so the figures
//! are reported, not held to a target. The table is compared with the reviewed
//! `fixtures/coverage/panther.score` under the golden policy of `tests/support/golden.rs`
//! (`UPDATE_GOLDEN=1` rewrites it, never under CI), so a change in what the pack catches shows
//! up in review; the README quotes it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;
use sessionguard::decision::Decision;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::evaluator::{Evaluator, Sink};
use sessionguard::event::{Normalizer, Reject, Source};
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

#[path = "support/golden.rs"]
mod golden;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Deserialize)]
struct Labelled<'a> {
    rule_id: String,
    #[serde(borrow)]
    log_types: Option<Vec<&'a str>>,
    expected_result: bool,
    #[serde(borrow)]
    event: &'a RawValue,
}

fn source_of(log_type: &str) -> Option<Source> {
    match log_type {
        "AWS.CloudTrail" => Some(Source::Cloudtrail),
        "Okta.SystemLog" => Some(Source::Okta),
        "GitHub.Audit" => Some(Source::Github),
        "Azure.Audit" => Some(Source::Entra),
        _ => None,
    }
}

#[derive(Default)]
struct Collect {
    decisions: Vec<Decision>,
    rejected: bool,
}

impl Sink for Collect {
    fn decision(&mut self, decision: &Decision) -> std::io::Result<()> {
        self.decisions.push(decision.clone());
        Ok(())
    }
    fn reject(&mut self, _: Origin, _: &Reject, _: &[u8]) -> std::io::Result<()> {
        self.rejected = true;
        Ok(())
    }
}

#[derive(Default)]
struct Score {
    positives: u32,
    caught: u32,
    negatives: u32,
    decided_on_negatives: u32,
    rejected: u32,
    caught_by: BTreeMap<String, Vec<String>>,
}

#[test]
fn the_pack_on_panthers_labelled_tests() {
    let text = std::fs::read_to_string(
        root().join("fixtures/third_party/labelled-rule-tests-panther/rule_test_events.jsonl"),
    )
    .unwrap();
    let mut scores: BTreeMap<Source, Score> = BTreeMap::new();
    for line in text.lines() {
        let labelled: Labelled<'_> = serde_json::from_str(line).unwrap();
        let Some(source) = labelled
            .log_types
            .as_ref()
            .and_then(|t| t.first())
            .and_then(|t| source_of(t))
        else {
            continue;
        };
        let rules = RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"));
        let normalizer = Normalizer {
            forced: Some(source),
            ..Normalizer::default()
        };
        let mut evaluator = Evaluator::new(Engine::new(rules, EngineConfig::default()), normalizer);
        let mut sink = Collect::default();
        let origin = Origin::File { file: 0, line: 1 };
        evaluator
            .push(labelled.event.get().as_bytes(), origin, &mut sink)
            .unwrap();
        evaluator.finish(&mut sink).unwrap();
        let score = scores.entry(source).or_default();
        score.rejected += u32::from(sink.rejected);
        let decided = !sink.decisions.is_empty();
        let label = if labelled.expected_result {
            score.positives += 1;
            score.caught += u32::from(decided);
            labelled.rule_id.clone()
        } else {
            score.negatives += 1;
            score.decided_on_negatives += u32::from(decided);
            format!("{} (negative)", labelled.rule_id)
        };
        if decided {
            let ours = sink.decisions.iter().map(|d| d.rule.id.clone());
            score.caught_by.entry(label).or_default().extend(ours);
        }
    }
    let mut table =
        String::from("source      positives caught  negatives decided  rejected (normalize)\n");
    for (source, s) in &scores {
        writeln!(
            table,
            "{:<11} {:>9} {:>6}  {:>9} {:>7}  {:>8}",
            source.as_str(),
            s.positives,
            s.caught,
            s.negatives,
            s.decided_on_negatives,
            s.rejected
        )
        .unwrap();
    }
    for (source, s) in &scores {
        for (panther_rule, ours) in &s.caught_by {
            writeln!(table, "{source}: {panther_rule} <- {}", ours.join(", ")).unwrap();
        }
    }
    assert_eq!(scores.len(), 4, "all four sources are scored");
    let golden = root().join("fixtures/coverage/panther.score");
    if let Err(e) = golden::check(golden::mode(), &golden, &table) {
        panic!("the Panther score changed; review it:\n{e}");
    }
}
