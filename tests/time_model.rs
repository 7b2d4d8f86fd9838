//! The time model as a user meets it on delivery order (docs/decisions.md, "Event time"):
//!
//! - interleavings of sessions and sources that keep each session's own order (and a chained
//!   session after the record that issued it) give the same decisions, byte for byte;
//! - a session's own records shuffled within the grace give the same verdicts (which rules
//!   decide on which sessions) as sorted input;
//! - timers run on their own source's clock: a source 15 minutes behind another neither waits
//!   for it nor holds it back;
//! - a record dated far ahead is held and rejected as `future` instead of blinding detection,
//!   and sessions before 1970 still fire;
//! - `replay -` decides on the record that completes a decision, before the next one arrives;
//! - a chained session linked late (its records before the one that issued it) still inherits
//!   its parent's kill.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bumpalo::Bump;
use sessionguard::decision::Decision;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::evaluator::{Evaluator, Sink};
use sessionguard::event::{Normalizer, Reject, RejectReason};
use sessionguard::gen::{generate, Config};
use sessionguard::rule::{Mode, RuleSet};
use sessionguard::source::Origin;

#[path = "support/rules.rs"]
mod rules;
use rules::DELETE_BUCKET;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Default)]
struct Collect {
    decisions: Vec<Decision>,
    rejects: Vec<(Origin, RejectReason)>,
}

impl Sink for Collect {
    fn decision(&mut self, decision: &Decision) -> std::io::Result<()> {
        self.decisions.push(decision.clone());
        Ok(())
    }
    fn reject(&mut self, origin: Origin, reject: &Reject, _: &[u8]) -> std::io::Result<()> {
        self.rejects.push((origin, reject.reason));
        Ok(())
    }
}

fn pack() -> RuleSet {
    RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"))
}

/// Evaluates `records` (index into `all`, so a record keeps its origin whatever its position).
fn evaluate(rules: impl Into<Arc<RuleSet>>, all: &[Vec<u8>], order: &[usize]) -> Collect {
    let mut evaluator = Evaluator::new(
        Engine::with_shared_rules(rules.into(), EngineConfig::default()),
        Normalizer::default(),
    );
    let mut sink = Collect::default();
    for &i in order {
        let origin = Origin::File {
            file: 0,
            line: i as u64 + 1,
        };
        evaluator.push(&all[i], origin, &mut sink).unwrap();
    }
    evaluator.finish(&mut sink).unwrap();
    sink
}

/// A deterministic pseudo-random sequence (a 64-bit LCG's high bits).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Generated traffic of every source with injected attacks, one record per entry, and for each
/// record its event time and its unit: the role chain (a session and the sessions it issued)
/// it belongs to, whose records keep their order in every interleaving.
fn traffic() -> (Vec<Vec<u8>>, Vec<i64>, Vec<usize>) {
    let cfg = Config {
        events: 20_000,
        sessions: 600,
        attacks: Some(14),
        rate: 20.0,
        seed: 11,
        ..Config::default()
    };
    let mut bytes = Vec::new();
    generate(&cfg, &mut bytes, None).unwrap();
    let records: Vec<Vec<u8>> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let normalizer = Normalizer::default();
    let mut unit_of_key: HashMap<String, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut times = Vec::new();
    let mut units = Vec::new();
    for r in &records {
        let scratch = Bump::new();
        let event = normalizer
            .normalize(r, &scratch)
            .expect("gen writes valid records");
        times.push(event.time.millis());
        let mut unit = |key: String, parent: &mut Vec<usize>| {
            *unit_of_key.entry(key).or_insert_with(|| {
                parent.push(parent.len());
                parent.len() - 1
            })
        };
        let me = unit(event.session.key.to_string(), &mut parent);
        if let Some(child) = event.lineage.as_ref().and_then(|l| l.child.as_ref()) {
            let child = unit(child.to_string(), &mut parent);
            let (a, b) = (find(&mut parent, me), find(&mut parent, child));
            parent[b] = a;
        }
        units.push(me);
    }
    let units = units.into_iter().map(|u| find(&mut parent, u)).collect();
    (records, times, units)
}

fn json(decisions: &[Decision]) -> Vec<String> {
    let mut v: Vec<String> = decisions
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn interleavings_that_keep_each_session_in_order_give_the_same_decisions() {
    let (records, _, units) = traffic();
    let sorted: Vec<usize> = (0..records.len()).collect();
    let want = evaluate(pack(), &records, &sorted);
    assert!(
        want.decisions.len() >= 14,
        "the attacks decide: {}",
        want.decisions.len()
    );
    assert!(
        want.rejects.is_empty(),
        "{:?}",
        &want.rejects[..3.min(want.rejects.len())]
    );
    let mut queues: BTreeMap<usize, std::collections::VecDeque<usize>> = BTreeMap::new();
    for (i, u) in units.iter().enumerate() {
        queues.entry(*u).or_default().push_back(i);
    }
    for seed in 1..=4u64 {
        // A random merge of the units' queues: each pick weighted by what a unit has left.
        let mut rng = Lcg(seed);
        let mut left: Vec<(usize, std::collections::VecDeque<usize>)> =
            queues.iter().map(|(u, q)| (*u, q.clone())).collect();
        let mut remaining = records.len();
        let mut order = Vec::with_capacity(records.len());
        while remaining > 0 {
            let mut pick = rng.below(remaining);
            let slot = left
                .iter()
                .position(|(_, q)| {
                    if pick < q.len() {
                        true
                    } else {
                        pick -= q.len();
                        false
                    }
                })
                .unwrap();
            order.push(left[slot].1.pop_front().unwrap());
            remaining -= 1;
            if left[slot].1.is_empty() {
                left.swap_remove(slot);
            }
        }
        assert_ne!(order, sorted, "the merge reorders");
        let got = evaluate(pack(), &records, &order);
        assert!(
            got.rejects.is_empty(),
            "seed {seed}: {:?}",
            got.rejects.first()
        );
        assert!(
            json(&got.decisions) == json(&want.decisions),
            "seed {seed}: {} decisions, sorted input gives {}",
            got.decisions.len(),
            want.decisions.len()
        );
    }
}

#[test]
fn a_sessions_own_records_shuffled_within_the_grace_give_the_same_verdicts() {
    let (records, times, _) = traffic();
    let sorted: Vec<usize> = (0..records.len()).collect();
    let want = evaluate(pack(), &records, &sorted);
    let grace = 20 * 60_000;
    for seed in 1..=3u64 {
        // Delivery with a random lag below the grace: a record can arrive after records up
        // to the grace newer than it, of its own session and of others.
        let mut rng = Lcg(seed);
        let mut order: Vec<(i64, usize)> = times
            .iter()
            .enumerate()
            .map(|(i, t)| (t + rng.below(grace as usize) as i64, i))
            .collect();
        order.sort();
        let order: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
        let behind = order
            .windows(2)
            .filter(|w| times[w[1]] < times[w[0]])
            .count();
        assert!(behind > records.len() / 4, "{behind} records arrive behind");
        let got = evaluate(pack(), &records, &order);
        assert!(
            got.rejects.is_empty(),
            "seed {seed}: {:?}",
            got.rejects.first()
        );
        let differ = verdicts_differ(&want.decisions, &got.decisions);
        assert!(differ.is_empty(), "seed {seed}:\n{}", differ.join("\n"));
    }
}

/// The verdicts of input out of order against those of sorted input: the same sessions killed,
/// every rule that decided on a session decides on it again, and the only others are enforced
/// kills dated after the session's sorted kill — a kill later in event time whose records
/// arrived before the sorted kill's last one is made first and not taken back (docs/decisions.md,
/// "Kills out of order"). kill_not_enforced is left out: it reports activity that arrived after
/// the kill was decided, an arrival-time fact. The failures, one a line.
fn verdicts_differ(sorted: &[Decision], got: &[Decision]) -> Vec<String> {
    let verdicts = |ds: &[Decision]| -> BTreeSet<(String, String)> {
        ds.iter()
            .filter(|d| d.rule.id != sessionguard::decision::KILL_NOT_ENFORCED)
            .map(|d| (d.session.key.clone(), d.rule.id.clone()))
            .collect()
    };
    let enforced_kill = |d: &Decision| d.action.is_kill() && d.mode == Mode::Enforce;
    let killed = |ds: &[Decision]| -> BTreeMap<String, i64> {
        let mut first = BTreeMap::new();
        for d in ds.iter().filter(|d| enforced_kill(d)) {
            let t = first.entry(d.session.key.clone()).or_insert(i64::MAX);
            *t = (*t).min(d.time.millis());
        }
        first
    };
    let (want, have) = (verdicts(sorted), verdicts(got));
    let sorted_kills = killed(sorted);
    let mut failures: Vec<String> = want
        .difference(&have)
        .map(|(session, rule)| format!("{rule} does not decide on {session}"))
        .collect();
    if killed(got).keys().ne(sorted_kills.keys()) {
        failures.push(format!(
            "killed {:?}, sorted input kills {:?}",
            killed(got).keys().collect::<Vec<_>>(),
            sorted_kills.keys().collect::<Vec<_>>()
        ));
    }
    for d in got {
        if want.contains(&(d.session.key.clone(), d.rule.id.clone()))
            || d.rule.id == sessionguard::decision::KILL_NOT_ENFORCED
        {
            continue;
        }
        let after_sorted_kill = sorted_kills
            .get(&d.session.key)
            .is_some_and(|&k| d.time.millis() > k);
        if !(enforced_kill(d) && after_sorted_kill) {
            failures.push(format!(
                "{} decides on {} at {}, sorted input does not",
                d.rule.id, d.session.key, d.time
            ));
        }
    }
    failures
}

/// The scenario fixtures (fixtures/scenarios/: every attack of the pack beside its benign
/// lookalikes) delivered as CloudTrail delivers its files: each run of six records unsorted. A
/// baseline rule must not take a workload's second program, whose first records arrive after
/// later ones of the first, for a thief (it waits until no record can still join the learning
/// period), nor miss a thief whose record arrives before the owner's.
#[test]
fn scenario_files_unsorted_in_runs_of_six_give_the_verdicts_of_sorted_order() {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root().join("fixtures/scenarios")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 30, "{} scenario files", files.len());
    let pack = Arc::new(pack());
    let mut reordered = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let records: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        let sorted: Vec<usize> = (0..records.len()).collect();
        let want = evaluate(pack.clone(), &records, &sorted).decisions;
        for seed in 1..=6u64 {
            let mut rng = Lcg(seed);
            let mut order = sorted.clone();
            for run in order.chunks_mut(6) {
                for i in (1..run.len()).rev() {
                    run.swap(i, rng.below(i + 1));
                }
            }
            reordered += usize::from(order != sorted);
            let got = evaluate(pack.clone(), &records, &order);
            let differ = verdicts_differ(&want, &got.decisions);
            assert!(
                differ.is_empty(),
                "{} in order {order:?}:\n{}",
                file.display(),
                differ.join("\n")
            );
        }
    }
    assert!(
        reordered > files.len() * 5,
        "{reordered} orders differ from the file's"
    );
}

/// A CloudTrail record of session `key` at `minute` past 10:00 on 2024-11-04.
fn ct(minute: i64, key: &str, event: &str) -> String {
    let t = 1_730_714_400 + minute * 60;
    let time = rfc3339(t);
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"{event}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userIdentity":{{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"{key}","principalId":"AROAX:{key}","arn":"arn:aws:sts::111122223333:assumed-role/app/{key}"}},"recipientAccountId":"111122223333"}}"#
    )
}

/// An Okta record of session `sid` at `minute` past 10:00 on 2024-11-04.
fn okta(minute: i64, sid: &str, event: &str) -> String {
    let time = rfc3339(1_730_714_400 + minute * 60);
    format!(
        r#"{{"uuid":"{sid}-{minute}","published":"{time}","eventType":"{event}","actor":{{"id":"00u1","type":"User","alternateId":"a@example.com"}},"authenticationContext":{{"rootSessionId":"{sid}"}},"outcome":{{"result":"SUCCESS"}},"client":{{"ipAddress":"198.51.100.9"}}}}"#
    )
}

/// Epoch seconds as RFC 3339 (UTC), as the engine renders times.
fn rfc3339(epoch: i64) -> String {
    sessionguard::event::Timestamp::from_millis(epoch * 1000).to_string()
}

fn scratch_rules(name: &str, yaml: &str) -> (PathBuf, RuleSet) {
    let dir = std::env::temp_dir().join(format!("sg-time-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rule.yml"), yaml).unwrap();
    let rules = RuleSet::load(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{e}"));
    (dir, rules)
}

#[test]
fn timers_run_on_their_own_sources_clock() {
    let (dir, rules) = scratch_rules(
        "timers",
        r#"
title: Session open an hour
id: test.open_1h
detection:
  opened:
    action|in: [s3:ListBuckets, okta:user.session.access_admin_app]
  condition: opened
session:
  duration: {since: first_match, limit: 1h, fire: on_timer}
action: step_up
"#,
    );
    // Okta delivers at once; CloudTrail the same minutes, 15 minutes later. Both sessions open
    // at 0 and keep working; other sessions of each source keep the clocks moving.
    let mut stream: Vec<(i64, String)> = Vec::new();
    for minute in 0..=150 {
        stream.push((
            minute,
            okta(minute, "okta-admin", "user.session.access_admin_app"),
        ));
        stream.push((
            minute,
            okta(
                minute,
                &format!("okta-other-{minute}"),
                "user.session.start",
            ),
        ));
        if minute >= 15 {
            let m = minute - 15;
            stream.push((minute, ct(m, "ASIAADMIN", "ListBuckets")));
            stream.push((minute, ct(m, &format!("ASIAOTHER{m}"), "GetObject")));
        }
    }
    let records: Vec<Vec<u8>> = stream.iter().map(|(_, r)| r.clone().into_bytes()).collect();
    let mut evaluator = Evaluator::new(
        Engine::new(rules, EngineConfig::default()),
        Normalizer::default(),
    );
    // (decision's session, its time, the delivery minute it was emitted at)
    let mut emitted: Vec<(String, String, i64)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut sink = Collect::default();
        let origin = Origin::File {
            file: 0,
            line: i as u64 + 1,
        };
        evaluator.push(r, origin, &mut sink).unwrap();
        for d in sink.decisions {
            emitted.push((d.session.key, d.time.to_string(), stream[i].0));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let at = |key: &str| emitted.iter().find(|(k, ..)| k.contains(key)).cloned();
    let (_, time, minute) = at("okta-admin").expect("the Okta timer fired");
    assert_eq!(time, "2024-11-04T11:00:00.000Z", "at its due event time");
    // Due at 60, fired once Okta's own clock passed it by the grace (20 minutes): at 81,
    // while CloudTrail was still at minute 66.
    assert_eq!(minute, 81, "Okta's timer waits for Okta's grace only");
    let (_, time, minute) = at("ASIAADMIN").expect("the CloudTrail timer fired");
    assert_eq!(time, "2024-11-04T11:00:00.000Z");
    assert_eq!(
        minute, 96,
        "CloudTrail's timer on CloudTrail's clock, 15 minutes later"
    );
}

#[test]
fn a_record_dated_far_ahead_is_rejected_as_future_and_detection_goes_on() {
    let (dir, rules) = scratch_rules(
        "future",
        r#"
title: Three reads
id: test.three_reads
detection:
  reads:
    action: s3:GetObject
  condition: reads
session:
  event_count: {timespan: 10m, gte: 3}
action: revoke_session
"#,
    );
    let mut records: Vec<Vec<u8>> = vec![ct(0, "ASIAONE", "GetObject").into_bytes()];
    // One record in year 9999, one an hour ahead: neither moves the clock.
    records.push(
        ct(0, "ASIAONE", "GetObject")
            .replace("2024-11-04", "9999-11-04")
            .into_bytes(),
    );
    records.push(ct(61, "ASIAONE", "GetObject").into_bytes());
    for m in 1..=6 {
        records.push(ct(m, "ASIAONE", "GetObject").into_bytes());
    }
    let order: Vec<usize> = (0..records.len()).collect();
    let got = evaluate(rules, &records, &order);
    let _ = std::fs::remove_dir_all(dir);
    let futures: Vec<u64> = got
        .rejects
        .iter()
        .filter(|(_, r)| *r == RejectReason::Future)
        .map(|(o, _)| match o {
            Origin::File { line, .. } => *line,
            Origin::Kafka { offset, .. } => *offset as u64,
        })
        .collect();
    assert_eq!(futures, vec![2, 3], "both outliers rejected as future");
    assert_eq!(
        got.rejects.len(),
        2,
        "nothing else rejected: {:?}",
        got.rejects
    );
    let times: Vec<String> = got
        .decisions
        .iter()
        .filter(|d| d.rule.id == "test.three_reads")
        .map(|d| d.time.to_string())
        .collect();
    assert_eq!(
        times,
        vec!["2024-11-04T10:02:00.000Z"],
        "the third read decides"
    );
}

#[test]
fn sessions_before_1970_still_fire() {
    let (dir, rules) = scratch_rules(
        "epoch",
        r#"
title: Any read
id: test.any_read
detection:
  reads:
    action: s3:GetObject
  condition: reads
session:
  event_count: {timespan: 10m, gte: 1}
action: alert
suppress: 1h
"#,
    );
    let records: Vec<Vec<u8>> = (0..3)
        .map(|m| {
            ct(m, "ASIAOLD", "GetObject")
                .replace("2024-11-04", "1969-07-20")
                .into_bytes()
        })
        .collect();
    let got = evaluate(rules, &records, &[0, 1, 2]);
    let _ = std::fs::remove_dir_all(dir);
    assert!(got.rejects.is_empty(), "{:?}", got.rejects);
    let times: Vec<String> = got.decisions.iter().map(|d| d.time.to_string()).collect();
    assert_eq!(times, vec!["1969-07-20T10:00:00.000Z"]);
}

#[test]
fn replay_from_a_pipe_decides_before_the_next_record_is_sent() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["replay", "-", "--rules", "rules", "--no-progress"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // An Okta session granting itself an admin role (sg.okta.self_privilege_grant: a plain
    // match), then ordinary activity that must not be needed to see the decision.
    let grant = r#"{"uuid":"g1","published":"2024-11-04T10:00:00Z","eventType":"user.account.privilege.grant","actor":{"id":"00uSELF","type":"User","alternateId":"mallory@example.com"},"target":[{"id":"00uSELF","type":"User","alternateId":"mallory@example.com"}],"authenticationContext":{"rootSessionId":"pipe-session"},"outcome":{"result":"SUCCESS"},"client":{"ipAddress":"198.51.100.9"},"debugContext":{"debugData":{"privilegeGranted":"Super administrator"}}}"#;
    for (i, line) in [
        okta(0, "pipe-session", "user.session.start"),
        grant.to_owned(),
    ]
    .iter()
    .enumerate()
    {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        if i == 1 {
            let decision = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("the decision is written while the pipe stays open");
            assert!(
                decision.contains("sg.okta.self_privilege_grant"),
                "{decision}"
            );
        } else {
            assert!(
                rx.recv_timeout(Duration::from_millis(300)).is_err(),
                "no decision on an ordinary record"
            );
        }
    }
    writeln!(stdin, "{}", okta(1, "pipe-session", "user.session.start")).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn a_chained_session_linked_late_inherits_its_parents_kill() {
    let (dir, _) = scratch_rules("late-kill", DELETE_BUCKET);
    // PARENT is killed at 10:00, then issues CHILD's key (AssumeRole) at 10:01; CHILD reads
    // at 10:02 and 10:03. Delivered with CHILD's first read before the AssumeRole (within
    // the grace), the link is made late; CHILD must still be the killed session it is.
    let assume = format!(
        r#"{{"eventVersion":"1.09","eventTime":"{}","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userIdentity":{{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"ASIAPARENT","principalId":"AROAX:ASIAPARENT","arn":"arn:aws:sts::111122223333:assumed-role/app/ASIAPARENT"}},"requestParameters":{{"roleArn":"arn:aws:iam::111122223333:role/next","roleSessionName":"child"}},"responseElements":{{"credentials":{{"accessKeyId":"ASIACHILD"}}}},"recipientAccountId":"111122223333"}}"#,
        rfc3339(1_730_714_400 + 60)
    );
    let all: Vec<Vec<u8>> = [
        ct(0, "ASIAPARENT", "DeleteBucket"),
        assume,
        ct(2, "ASIACHILD", "GetObject"),
        ct(3, "ASIACHILD", "GetObject"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let child_kills = |order: &[usize]| {
        let rules = RuleSet::load(std::slice::from_ref(&dir)).unwrap();
        evaluate(rules, &all, order)
            .decisions
            .iter()
            .filter(|d| {
                d.session.key == "aws:111122223333:sts:ASIACHILD"
                    && d.rule.id == sessionguard::decision::KILL_NOT_ENFORCED
            })
            .count()
    };
    assert_eq!(child_kills(&[0, 1, 2, 3]), 1, "linked at its start");
    assert_eq!(child_kills(&[0, 2, 1, 3]), 1, "linked late");
    let _ = std::fs::remove_dir_all(dir);
}

/// The role chain of an attacker with replayed instance credentials (PARENT) who assumes
/// break-glass-admin (CHILD's key) at 10:01, creates a user with it at 10:02 and makes the
/// user an administrator at 10:03. Sorted, the chain decides on the CreateUser. Delivered as
/// CloudTrail often does, the AssumeRole comes in a later file than the child's calls: the
/// admin grant kills the child on its own first, and when the AssumeRole arrives the chain's
/// kill, dated earlier, is still made — with the chain as its evidence.
#[test]
fn a_role_chain_whose_issuing_record_arrives_last_still_decides_as_sorted_order() {
    let call = |minute: i64, key: &str, role: &str, event: &str, request: &str, response: &str| {
        format!(
            r#"{{"eventVersion":"1.09","eventTime":"{}","eventSource":"{}.amazonaws.com","eventName":"{event}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.47","userIdentity":{{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"{key}","principalId":"AROAX:{key}","arn":"arn:aws:sts::111122223333:assumed-role/{role}/{key}"}},"requestParameters":{request},"responseElements":{response},"recipientAccountId":"111122223333"}}"#,
            rfc3339(1_730_714_400 + minute * 60),
            if event == "AssumeRole" { "sts" } else { "iam" },
        )
    };
    let all: Vec<Vec<u8>> = [
        call(
            1,
            "ASIAPARENT",
            "billing-export-instance",
            "AssumeRole",
            r#"{"roleArn":"arn:aws:iam::111122223333:role/break-glass-admin","roleSessionName":"ops"}"#,
            r#"{"credentials":{"accessKeyId":"ASIACHILD"}}"#,
        ),
        call(
            2,
            "ASIACHILD",
            "break-glass-admin",
            "CreateUser",
            r#"{"userName":"support-sync"}"#,
            "null",
        ),
        call(
            3,
            "ASIACHILD",
            "break-glass-admin",
            "AttachUserPolicy",
            r#"{"userName":"support-sync","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}"#,
            "null",
        ),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let pack = Arc::new(pack());
    let child = "aws:111122223333:sts:ASIACHILD";
    // (session, rule, the minutes past 10:00 of its evidence events)
    let decided = |order: &[usize]| -> Vec<(String, String, String)> {
        evaluate(pack.clone(), &all, order)
            .decisions
            .iter()
            .map(|d| {
                // The evidence as the minutes past 10:00 of its events.
                let minutes: Vec<String> = d
                    .evidence
                    .events
                    .iter()
                    .map(|e| ((e.time.0 / 1000 - 1_730_714_400) / 60).to_string())
                    .collect();
                (d.session.key.clone(), d.rule.id.clone(), minutes.join(" "))
            })
            .collect()
    };
    let chain = (
        child.to_owned(),
        "sg.aws.role_chain_admin".to_owned(),
        "1 2".to_owned(),
    );
    let sorted = decided(&[0, 1, 2]);
    assert_eq!(
        sorted,
        [
            chain.clone(),
            (
                child.to_owned(),
                sessionguard::decision::KILL_NOT_ENFORCED.to_owned(),
                "3".to_owned()
            )
        ],
        "sorted"
    );
    let delivered = decided(&[1, 2, 0]);
    assert_eq!(
        delivered,
        [
            (
                child.to_owned(),
                "sg.aws.admin_policy_attached".to_owned(),
                "3".to_owned()
            ),
            chain
        ],
        "the issuing record last"
    );
}

/// A dry-run kill is the dry run's own: it spends the dry-run kill rules, and the rules that
/// enforce, or only alert, still decide after it.
#[test]
fn a_dry_run_kill_leaves_the_session_to_the_other_rules() {
    let (dir, rules) = scratch_rules(
        "dry-run-then-enforce",
        &(r#"
title: Reads, in dry run
id: test.read_dry_run
detection:
  read:
    action: s3:GetObject
  condition: read
action: {kind: revoke_session, mode: dry_run}
---
title: Bucket listed, in dry run
id: test.list_dry_run
detection:
  list:
    action: s3:ListBucket
  condition: list
action: {kind: alert, mode: dry_run}
---"#
            .to_owned()
            + DELETE_BUCKET),
    );
    let all: Vec<Vec<u8>> = [
        ct(0, "ASIAREADER", "GetObject"),
        ct(1, "ASIAREADER", "GetObject"),
        ct(2, "ASIAREADER", "ListBucket"),
        ct(3, "ASIAREADER", "DeleteBucket"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let decided: Vec<(String, i64)> = evaluate(rules, &all, &[0, 1, 2, 3])
        .decisions
        .iter()
        .map(|d| {
            (
                d.rule.id.clone(),
                (d.time.millis() / 1000 - 1_730_714_400) / 60,
            )
        })
        .collect();
    let want = [
        ("test.read_dry_run", 0),
        ("test.list_dry_run", 2),
        ("test.delete_bucket", 3),
    ]
    .map(|(rule, minute)| (rule.to_owned(), minute));
    assert_eq!(decided, want);
    let _ = std::fs::remove_dir_all(dir);
}
