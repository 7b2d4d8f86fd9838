//! Sigma correlation rules end to end: the sigma-specification's examples, adapted to logs
//! sessionguard reads (Okta sign-ins, AWS console sign-ins, S3 reads), under
//! `fixtures/sigma-correlation/`.
//! Each case replays one small handwritten event file with one rule file loaded, and its
//! decisions must be exactly those in the `.expected` file beside the events — one line each:
//! time, rule, session, the line of the record that completed it, the group, the aggregate and
//! its value, the action and the level. The expected files were written from the events by
//! hand (the comments in `CASES` say why each decision is there); `UPDATE_GOLDEN=1` rewrites
//! them, to be reviewed before committing.

#[path = "support/golden.rs"]
mod golden;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sessionguard::decision::{Decision, EvidenceOrigin};
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::replay::{replay, ReplayOptions};
use sessionguard::rule::RuleSet;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sigma-correlation")
}

/// (rule file, event file): each event file has its expected decisions beside it.
const CASES: &[(&str, &str)] = &[
    // event_count by user, three failed sign-ins within 10m. Maria's third failure (line 5)
    // completes it; her fourth (line 7) finds it still holding: no second decision. Dan's
    // failures at 15:00:30, 15:05:00 and 15:10:30 are not three within 10m — the first is
    // exactly 10m before the third, one event outside the span — his fourth, at 15:10:31,
    // is. Lee fails twice: one short of the threshold. Maria's success is no failure.
    ("event_count.yml", "failed-logins.jsonl"),
    // The same records, each user's out of order within the grace. Maria's 15:04 failure
    // arrives first, then 15:00, then 15:05:30 — which completes the span ending at 15:05:30,
    // the first that held when it arrived (the time model: a decision's time can be later
    // than a sorted replay's, never its rule, group or session). Dan's is at 15:10:31 again.
    ("event_count.yml", "failed-logins-shuffled.jsonl"),
    // The specification's "failed logins followed by successful login": a chain of an
    // event_count correlation (3 failures in 10m) and a success, in order, by user. Maria's
    // success at 15:03 (her own Okta session) follows her failures; Dan's success comes before
    // his failures; Lee's comes exactly 10m after the failures' correlation held (15:00:30 to
    // 15:10:30), outside the span. Only the outermost correlation decides.
    ("failed_then_success.yml", "brute-force.jsonl"),
    // The same records, Maria's failures out of order before her success: the same decision.
    ("failed_then_success.yml", "brute-force-shuffled.jsonl"),
    // Maria's success arrives before her failures: the same rule, time and group, decided on
    // the session of the record that completed it — her last failure's.
    ("failed_then_success.yml", "brute-force-success-first.jsonl"),
    // value_count of source addresses by user, three within 1h. Maria's third address is at
    // 15:40 (line 9), her fourth finds it holding. Dan signs in five times from one address.
    // Lee's three addresses are at 16:00, 16:40 and 17:00: the first is exactly 1h before the
    // last, outside the span.
    ("distinct_ips.yml", "source-ips.jsonl"),
    // temporal with aliases: an Okta sign-in and an AWS console sign-in from one address
    // (Okta's `client.ipAddress`, CloudTrail's `sourceIPAddress`) within 5m, in any order.
    // 203.0.113.50: Okta at 15:00, AWS at 15:02. 198.51.100.60: AWS at 15:03, Okta at 15:10,
    // 7m apart. 192.0.2.70: AWS at 15:20 arrives before Okta at 15:19; the span ends at 15:20.
    ("aliases.yml", "okta-then-console.jsonl"),
    // value_sum of bytes read out of S3, by address and caller, more than 1,000,000 within 1h.
    // Alice's reads of 400,000, 300,000 and 350,000 bytes from one address pass it at 15:40
    // (line 6); her read with no byte count (line 4) adds nothing, her next (line 7) finds it
    // holding. Bob's two reads of 600,000 come from two addresses: two groups.
    ("bytes_out.yml", "s3-reads.jsonl"),
    // value_avg of read sizes by address and caller, over 500,000 within 1h; each span is
    // decided once the clock has passed its end, with all its reads in hand. Carol's reads of
    // 100,000 and 1,200,000 average 650,000 at 15:10 (line 3); her 15:20 read is in that span's
    // hour; her 2,000,000 at 16:30 (line 9) is alone in its hour and more than one hour after
    // 15:10: a second decision. Her 16:31 read has no size: not counted. Dave's average
    // 200,000, then 450,000, then 433,333. Erin's 950,000 at 16:10 arrives before her 10,000
    // at 16:05: the hour ending at 16:10 averages 480,000, so nothing — a decision on the
    // 950,000 alone, as it arrived, would have been wrong.
    ("avg_bytes.yml", "s3-downloads.jsonl"),
    // value_percentile with `percentile: 95`, by caller, at least 900,000 within 1h
    // (interpolated between ranks), on the same reads with neighbours swapped within the
    // grace. Carol: [100,000, 1,200,000] gives 1,145,000 at 15:10 (line 1 here), and 2,000,000
    // at 16:30 (line 10). Erin: [10,000, 950,000] gives 903,000 at 16:10 (line 8), where her
    // average did not reach 500,000. Dave: 675,000, then 670,000.
    ("p95_bytes.yml", "s3-downloads-shuffled.jsonl"),
    // value_percentile without a percentile, the specification's reading: a call that is at
    // most 10 % of its caller's S3 calls within 24h. Carol's ten reads are 100 % reads; her
    // PutBucketPolicy at 15:10 (line 13) is 1 of 11 calls, 9.091 %; her next read is 11 of 12.
    // Dave's ListBuckets is 1 of 1, then 1 of 2: never rare.
    ("rare_call.yml", "s3-calls.jsonl"),
];

/// Replays `events` with the rules of `rules` and `config`.
fn decisions(rules: &Path, events: &Path, config: EngineConfig) -> (Vec<Decision>, Engine) {
    let set = RuleSet::load(&[rules.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(set, config);
    let mut out = Vec::new();
    let mut rejects = Vec::new();
    replay(
        &[events.to_path_buf()],
        &mut engine,
        &ReplayOptions::default(),
        &mut |d| {
            out.push(d.clone());
            Ok(())
        },
        &mut |file, line, reject, _| {
            rejects.push(format!("{file}:{line}: {}", reject.reason));
            Ok(())
        },
    )
    .unwrap();
    assert!(rejects.is_empty(), "rejected records: {rejects:?}");
    (out, engine)
}

/// The line of the record that completed a decision (its last evidence event).
fn trigger_line(d: &Decision) -> u64 {
    match d.evidence.events.last().map(|e| &e.origin) {
        Some(EvidenceOrigin::File { line, .. }) => *line,
        _ => 0,
    }
}

/// `group=value, …` of a correlation's decision.
fn group(d: &Decision) -> String {
    d.evidence.group.as_ref().map_or_else(
        || "no-group".to_owned(),
        |g| {
            g.fields
                .iter()
                .map(|f| format!("{}={}", f.name, f.value))
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

fn line_of(d: &Decision) -> String {
    format!(
        "{} {} {} line {} {} {}={} {} {}\n",
        serde_json::to_value(d.time).unwrap().as_str().unwrap(),
        d.rule.id,
        d.session.key,
        trigger_line(d),
        group(d),
        d.evidence.aggregate,
        d.evidence.value.unwrap_or(f64::NAN),
        serde_json::to_value(d.action).unwrap().as_str().unwrap(),
        serde_json::to_value(d.severity).unwrap().as_str().unwrap(),
    )
}

#[test]
fn correlations_decide_exactly_as_expected() {
    let mode = golden::mode();
    let mut failures = Vec::new();
    for (rules, events) in CASES {
        let events = dir().join(events);
        let (decided, _) = decisions(&dir().join(rules), &events, EngineConfig::default());
        let actual: String = decided.iter().map(line_of).collect();
        let expected = PathBuf::from(format!("{}.expected", events.display()));
        if let Err(e) = golden::check(mode, &expected, &actual) {
            failures.push(e);
        }
    }
    let inputs: Vec<PathBuf> = CASES.iter().map(|(_, e)| dir().join(e)).collect();
    failures.extend(golden::orphans(&dir(), ".expected", &inputs));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Which (rule, session, group) a file's decisions are about.
fn about(rules: &str, events: &str) -> Vec<(String, String, String)> {
    let (decided, _) = decisions(
        &dir().join(rules),
        &dir().join(events),
        EngineConfig::default(),
    );
    let mut about: Vec<_> = decided
        .iter()
        .map(|d| (d.rule.id.clone(), d.session.key.clone(), group(d)))
        .collect();
    about.sort();
    about
}

#[test]
fn out_of_order_within_the_grace_decides_on_the_same_groups_and_sessions() {
    assert_eq!(
        about("event_count.yml", "failed-logins.jsonl"),
        about("event_count.yml", "failed-logins-shuffled.jsonl")
    );
    assert_eq!(
        about("failed_then_success.yml", "brute-force.jsonl"),
        about("failed_then_success.yml", "brute-force-shuffled.jsonl")
    );
}

/// A decision as JSON without where its records were read: what arrival order must not change.
fn without_origins(d: &Decision) -> serde_json::Value {
    let mut v = serde_json::to_value(d).unwrap();
    for e in v["evidence"]["events"].as_array_mut().into_iter().flatten() {
        e.as_object_mut().unwrap().remove("origin");
    }
    v
}

#[test]
fn averages_and_percentiles_decide_identically_whatever_the_order_within_the_grace() {
    for rules in ["avg_bytes.yml", "p95_bytes.yml"] {
        let rules = dir().join(rules);
        let config = EngineConfig::default;
        let (sorted, _) = decisions(&rules, &dir().join("s3-downloads.jsonl"), config());
        let (shuffled, _) = decisions(&rules, &dir().join("s3-downloads-shuffled.jsonl"), config());
        assert!(!sorted.is_empty(), "{}: no decision", rules.display());
        let sorted: Vec<_> = sorted.iter().map(without_origins).collect();
        let shuffled: Vec<_> = shuffled.iter().map(without_origins).collect();
        assert_eq!(sorted, shuffled, "{}", rules.display());
    }
}

/// An Okta sign-in failure of `user` from `ip` at `time` (15:MM:SS on 2024-05-14).
fn failure(user: &str, ip: &str, time: &str) -> String {
    json!({
        "uuid": format!("{user}-{time}"),
        "published": format!("2024-05-14T{time}.000Z"),
        "eventType": "user.session.start",
        "actor": {"id": format!("00u{user}"), "type": "User", "alternateId": format!("{user}@example.com")},
        "client": {"ipAddress": ip},
        "outcome": {"result": "FAILURE"},
        "authenticationContext": {"externalSessionId": "unknown"},
    })
    .to_string()
}

const BY_ADDRESS: &str = "\
title: Failed sign-ins from one address
id: failed-by-address
correlation:
    type: event_count
    rules: [failed_login]
    group-by: [client.ipAddress]
    timespan: 10m
    condition: {gte: 3}
---
title: Failed Okta sign-in
id: failed-login
name: failed_login
logsource: {product: okta, service: okta}
detection:
    selection: {eventtype: user.session.start, outcome.result: FAILURE}
    condition: selection
";

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sg-corr-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn lateness_applies_per_group_as_per_session() {
    // Three users fail from one address, each in a session of their own; Maria's failure
    // arrives last and 5 minutes older than the group's newest. Not late for her session (its
    // first record), but late for the group under a 1-minute grace: not counted, no decision.
    // Under the default 20 minutes it counts, and the three make the decision.
    let scratch = Scratch::new("late");
    let rules = scratch.file("rules.yml", BY_ADDRESS);
    let events = scratch.file(
        "events.jsonl",
        &[
            failure("dan", "203.0.113.9", "15:10:00"),
            failure("lee", "203.0.113.9", "15:09:30"),
            failure("maria", "203.0.113.9", "15:05:00"),
        ]
        .join("\n"),
    );
    let mut config = EngineConfig::default();
    config.time.grace_ms = [60_000; sessionguard::time::SOURCES];
    let (decided, engine) = decisions(&rules, &events, config);
    assert!(
        decided.is_empty(),
        "{:?}",
        decided.iter().map(line_of).collect::<Vec<_>>()
    );
    assert_eq!(engine.group_stats().late, 1);
    assert_eq!(
        engine.stats().late_events,
        0,
        "no record is late for its session"
    );

    let (decided, engine) = decisions(&rules, &events, EngineConfig::default());
    let lines: Vec<String> = decided.iter().map(line_of).collect();
    assert_eq!(
        lines,
        [
            "2024-05-14T15:10:00.000Z failed-by-address okta:actor:00umaria line 3 \
          client.ipAddress=203.0.113.9 event_count=3 alert medium\n"
        ]
    );
    assert_eq!(engine.group_stats().late, 0);
}

#[test]
fn a_settled_decision_shows_its_measure_threshold_principal_and_the_match_ending_it() {
    // Decided after the record, with no record in hand: what it shows comes from the match
    // that ended the span, kept for that. Four events of evidence: the seven oldest omitted.
    let config = EngineConfig {
        max_evidence_events: 4,
        ..EngineConfig::default()
    };
    let rules = dir().join("rare_call.yml");
    let (decided, _) = decisions(&rules, &dir().join("s3-calls.jsonl"), config);
    assert_eq!(decided.len(), 1);
    let d = serde_json::to_value(&decided[0]).unwrap();
    let carol = "arn:aws:sts::111122223333:assumed-role/analyst/carol";
    assert_eq!(
        d["evidence"]["reason"],
        format!(
            "PutBucketPolicy is 9.091% of the span's 11 matches (<= 10) within 1d for \
             userIdentity.arn={carol}"
        )
    );
    assert_eq!(d["evidence"]["threshold"], "<= 10");
    assert_eq!(d["evidence"]["events_omitted"], 7);
    assert_eq!(d["principal"]["id"], carol);
    let events = d["evidence"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    let last = events.last().unwrap();
    assert_eq!(last["action"], "s3:PutBucketPolicy");
    assert_eq!(last["value"], "PutBucketPolicy");
    assert_eq!(last["origin"]["line"], 13);
}

#[test]
fn a_span_whose_session_was_forgotten_before_it_settled_is_counted_not_decided() {
    // Carol reads 100,000 bytes with one key, then 1,200,000 with her next key (two sessions,
    // one group: the 95th percentile rule groups by caller). The span ending at 15:10 holds,
    // but settles only once the clock passes 15:10 (Dave's 15:45 listing, less the 20-minute
    // grace). With room for one session, Dave's 15:20 listing evicts the session of Carol's
    // 15:10 read before then: there is no session to decide on. With room for all, it decides.
    let downloads = std::fs::read_to_string(dir().join("s3-downloads.jsonl")).unwrap();
    let lines: Vec<&str> = downloads.lines().collect();
    let carol_next_key = lines[2].replace("ASIACAROLEXAMPLE0003", "ASIACAROLEXAMPLE0009");
    let dave_lists = |time: &str| {
        lines[1]
            .replace("2024-05-14T15:00:00Z", time)
            .replace("GetObject", "ListBuckets")
    };
    let scratch = Scratch::new("orphaned");
    let events = scratch.file(
        "events.jsonl",
        &[
            lines[0].to_owned(),
            carol_next_key,
            dave_lists("2024-05-14T15:20:00Z"),
            dave_lists("2024-05-14T15:45:00Z"),
        ]
        .join("\n"),
    );
    let rules = dir().join("p95_bytes.yml");
    let one_session = EngineConfig {
        max_sessions: 1,
        ..EngineConfig::default()
    };
    let (decided, engine) = decisions(&rules, &events, one_session);
    let shown: Vec<String> = decided.iter().map(line_of).collect();
    assert!(decided.is_empty(), "{shown:?}");
    assert_eq!(engine.stats().sessions_evicted, 2);
    assert_eq!(engine.group_stats().orphaned, 1);

    let (decided, engine) = decisions(&rules, &events, EngineConfig::default());
    let shown: Vec<String> = decided.iter().map(line_of).collect();
    assert_eq!(
        shown,
        [
            "2024-05-14T15:10:00.000Z 8b0c2d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e \
          aws:111122223333:sts:ASIACAROLEXAMPLE0009 line 2 \
          userIdentity.arn=arn:aws:sts::111122223333:assumed-role/analyst/carol \
          value_percentile=1145000 alert medium\n"
        ]
    );
    assert_eq!(engine.group_stats().orphaned, 0);
}

#[test]
fn a_match_without_a_group_by_field_does_not_count() {
    // Two failures carry no address: they belong to no group, so two counted are not three.
    let scratch = Scratch::new("absent");
    let rules = scratch.file("rules.yml", BY_ADDRESS);
    let mut no_ip: serde_json::Value =
        serde_json::from_str(&failure("lee", "x", "15:01:00")).unwrap();
    no_ip["client"] = json!({});
    let events = scratch.file(
        "events.jsonl",
        &[
            failure("dan", "203.0.113.9", "15:00:00"),
            no_ip.to_string(),
            failure("maria", "203.0.113.9", "15:02:00"),
        ]
        .join("\n"),
    );
    let (decided, engine) = decisions(&rules, &events, EngineConfig::default());
    assert!(decided.is_empty());
    assert_eq!(engine.group_count(), 1);
}

#[test]
fn without_group_by_every_match_is_in_one_group() {
    // Three users, three addresses: by address no group reaches three; with no group-by, the
    // three failures are one group's, decided on the session of the last.
    let scratch = Scratch::new("ungrouped");
    let rules = scratch.file(
        "rules.yml",
        &BY_ADDRESS.replace("    group-by: [client.ipAddress]\n", ""),
    );
    let events = scratch.file(
        "events.jsonl",
        &[
            failure("dan", "203.0.113.1", "15:00:00"),
            failure("lee", "203.0.113.2", "15:01:00"),
            failure("maria", "203.0.113.3", "15:02:00"),
        ]
        .join("\n"),
    );
    let (decided, engine) = decisions(&rules, &events, EngineConfig::default());
    let lines: Vec<String> = decided.iter().map(line_of).collect();
    assert_eq!(
        lines,
        [
            "2024-05-14T15:02:00.000Z failed-by-address okta:actor:00umaria line 3  \
          event_count=3 alert medium\n"
        ]
    );
    assert_eq!(decided[0].evidence.group.as_ref().unwrap().key, "[]");
    assert_eq!(engine.group_count(), 1);
}

#[test]
fn generate_true_lets_the_rules_decide_on_their_own_too() {
    let scratch = Scratch::new("generate");
    let text = std::fs::read_to_string(dir().join("event_count.yml")).unwrap();
    let text = text.replace("level: high\n", "level: high\ngenerate: true\n");
    assert!(text.contains("generate: true"));
    let rules = scratch.file("rules.yml", &text);
    let (decided, _) = decisions(
        &rules,
        &dir().join("failed-logins.jsonl"),
        EngineConfig::default(),
    );
    let by_rule = |id: &str| decided.iter().filter(|d| d.rule.id == id).count();
    // Ten failed sign-ins, each a decision of the single-event rule; two of the correlation.
    assert_eq!(by_rule("5638f7c0-ac70-491d-8465-2a65075e0d86"), 10);
    assert_eq!(by_rule("0e95725d-7320-415d-80f7-004da920fc11"), 2);
}

#[test]
fn a_correlation_can_end_the_session_it_decides_on() {
    // `action:` as on any rule: the brute force ends Maria's new session, and her next record
    // on it is activity after a kill.
    let scratch = Scratch::new("kill");
    let text = std::fs::read_to_string(dir().join("failed_then_success.yml")).unwrap();
    let text = text.replacen(
        "level: high\n",
        "level: high\naction: {kind: revoke_session, mode: enforce}\n",
        1,
    );
    let rules = scratch.file("rules.yml", &text);
    let mut events = std::fs::read_to_string(dir().join("brute-force.jsonl")).unwrap();
    let success = events.lines().nth(3).unwrap().to_owned();
    events.push_str(&success.replace("15:03:00.000Z", "15:04:00.000Z"));
    let events = scratch.file("events.jsonl", &events);
    let (decided, _) = decisions(&rules, &events, EngineConfig::default());
    let got: Vec<(&str, &str, &str)> = decided
        .iter()
        .map(|d| {
            let action = match d.action {
                sessionguard::rule::ActionKind::RevokeSession => "revoke_session",
                sessionguard::rule::ActionKind::RevokeCredential => "revoke_credential",
                _ => "other",
            };
            (d.rule.id.as_str(), d.session.key.as_str(), action)
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "b180ead8-d58f-40b2-ae54-c8940995b9b6",
                "okta:idxMARIA00000000000000001",
                "revoke_session"
            ),
            (
                "sessionguard.kill_not_enforced",
                "okta:idxMARIA00000000000000001",
                "revoke_credential"
            ),
        ]
    );
    assert!(decided[0].caep.is_some(), "a kill carries its CAEP claims");
}

#[test]
fn replay_with_threads_runs_correlations_on_one_engine() {
    let run = |threads: &str| {
        Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["replay", "--no-progress", "--threads", threads, "--rules"])
            .arg(dir().join("aliases.yml"))
            .arg(dir().join("okta-then-console.jsonl"))
            .output()
            .unwrap()
    };
    let (one, two) = (run("1"), run("2"));
    assert!(one.status.success() && two.status.success());
    assert_eq!(String::from_utf8_lossy(&one.stdout).lines().count(), 2);
    assert_eq!(one.stdout, two.stdout, "byte-identical decisions");
    let note = String::from_utf8_lossy(&two.stderr);
    assert!(note.contains("--threads 2 ignored"), "{note}");
}

#[test]
fn check_runs_a_correlations_tests_with_the_rules_it_refers_to() {
    let scratch = Scratch::new("check");
    let text = std::fs::read_to_string(dir().join("failed_then_success.yml")).unwrap();
    let events = dir().join("brute-force.jsonl");
    let tests = format!(
        "tests:\n    - name: Maria's brute force\n      events: {}\n      expect:\n        \
         decisions:\n          - {{line: 4, session: \"okta:idxMARIA00000000000000001\"}}\n---\n",
        events.display()
    );
    // The correlation is the file's first document: its tests go before the first `---`.
    let text = text.replacen("---\n", &tests, 1);
    scratch.file("rules.yml", &text);
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["check"])
        .arg(&scratch.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("4 rules loaded; 1 passed, 0 failed"),
        "{stdout}"
    );
}

/// A settled correlation (`value_avg`) chained into another: each span that holds feeds the
/// outer correlation, which decides once two have, on the session of the match ending the
/// second. The average alone decides nothing (only the outermost correlation does).
#[test]
fn a_settled_correlation_feeds_the_correlation_that_chains_it() {
    let scratch = Scratch::new("settled-chain");
    let rules = scratch.file(
        "chain.yml",
        r#"
title: Large average reads twice in a day
id: 0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f
correlation:
    type: event_count
    rules:
        - large_average_reads
    group-by:
        - userIdentity.arn
    timespan: 1d
    condition:
        gte: 2
level: high
---
title: Suspicious average read size from S3
id: 7a9b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
name: large_average_reads
correlation:
    type: value_avg
    rules:
        - s3_object_read
    group-by:
        - sourceIPAddress
        - userIdentity.arn
    timespan: 1h
    condition:
        field: additionalEventData.bytesTransferredOut
        gt: 500000
---
title: S3 object read
id: 6f8a0b2c-3d4e-4f6a-9b0c-1d2e3f4a5b6c
name: s3_object_read
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: s3.amazonaws.com
        eventName: GetObject
    condition: selection
"#,
    );
    // The average holds at 15:10 and at 16:30 (s3-downloads.jsonl.expected): the second
    // completes the chain.
    let (decided, _) = decisions(
        &rules,
        &dir().join("s3-downloads.jsonl"),
        EngineConfig::default(),
    );
    let got: Vec<(String, String)> = decided
        .iter()
        .map(|d| (d.rule.id.clone(), d.time.to_string()))
        .collect();
    assert_eq!(
        got,
        [(
            "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f".to_owned(),
            "2024-05-14T16:30:00.000Z".to_owned()
        )]
    );
}
