//! Engine behaviour end to end: rules written as YAML, events as CloudTrail records, replayed
//! through the same path as `sessionguard replay`.

use std::path::{Path, PathBuf};

use sessionguard::decision::Decision;
use sessionguard::engine::{Applied, Engine, EngineConfig};
use sessionguard::event::Normalizer;
use sessionguard::replay::{replay, ReplayOptions, ReplaySummary};
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

#[path = "support/rules.rs"]
mod rules;
use rules::DELETE_BUCKET;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sg-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        Scratch(dir)
    }

    fn rule(&self, name: &str, yaml: &str) -> &Self {
        std::fs::write(self.0.join("rules").join(name), yaml).unwrap();
        self
    }

    fn events(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// Replays with every source's grace set to `grace_ms`.
    fn replay(&self, events: &Path, grace_ms: i64) -> (Vec<Decision>, ReplaySummary) {
        let mut config = EngineConfig::default();
        config.time.grace_ms = [grace_ms; sessionguard::time::SOURCES];
        self.replay_with(events, config).0
    }

    /// Replays `events` with the scratch rules and `config`; also returns the engine.
    fn replay_with(
        &self,
        events: &Path,
        config: EngineConfig,
    ) -> ((Vec<Decision>, ReplaySummary), Engine) {
        let rules = RuleSet::load(&[self.0.join("rules")]).unwrap_or_else(|e| panic!("{e}"));
        let mut engine = Engine::new(rules, config);
        let mut decisions = Vec::new();
        let options = ReplayOptions::default();
        let summary = replay(
            &[events.to_path_buf()],
            &mut engine,
            &options,
            &mut |d| {
                decisions.push(d.clone());
                Ok(())
            },
            &mut |_, _, _, _| Ok(()),
        )
        .unwrap();
        ((decisions, summary), engine)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CloudTrail record by temporary key `key` at `second`s past 10:00:00.
fn ct(second: u32, key: &str, event: &str, ip: &str) -> String {
    let (h, m, s) = (10 + second / 3600, second / 60 % 60, second % 60);
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"2024-09-03T{h:02}:{m:02}:{s:02}Z","eventSource":"s3.amazonaws.com","eventName":"{event}","readOnly":true,"sourceIPAddress":"{ip}","requestParameters":{{"bucketName":"b","key":"k{second}"}},"userIdentity":{{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"{key}","principalId":"AROAX:{key}"}}}}"#
    )
}

/// A session key's last part: the access key of `aws:ACCOUNT:sts:KEY`.
fn key_id(session_key: &str) -> &str {
    &session_key[session_key.rfind(':').map_or(0, |i| i + 1)..]
}

/// The input lines of a decision's evidence records, its trigger last.
fn evidence_lines(d: &Decision) -> Vec<u64> {
    d.evidence
        .events
        .iter()
        .map(|e| match &e.origin {
            sessionguard::decision::EvidenceOrigin::File { line, .. } => *line,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// A rule on sessions open too long, reads its detection and `s3:DeleteSession` its logout,
/// with `duration` its session logic's settings.
fn open_too_long(duration: &str) -> String {
    format!(
        "title: Session open too long\nid: test.open_too_long\n\
         detection:\n  reads: {{action: 's3:GetObject'}}\n  logout: {{action: 's3:DeleteSession'}}\n  \
         condition: reads\nsession:\n  duration: {{{duration}}}\naction: step_up\n"
    )
}

const BULK_READ: &str = r#"
title: Bulk S3 reads in one session
id: test.bulk_read
level: high
detection:
  reads:
    action: s3:GetObject
  condition: reads
session:
  event_count:
    timespan: 5m
    gte: 3
action:
  kind: revoke_session
  mode: enforce
"#;

#[test]
fn threshold_fires_on_the_crossing_event_with_its_evidence() {
    let dir = Scratch::new("threshold");
    dir.rule("bulk.yml", BULK_READ);
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIAONE", "GetObject", "198.51.100.1"),
            ct(1, "ASIATWO", "GetObject", "198.51.100.2"),
            ct(2, "ASIAONE", "GetObject", "198.51.100.1"),
            ct(3, "ASIAONE", "ListObjects", "198.51.100.1"),
            ct(4, "ASIAONE", "GetObject", "198.51.100.1"),
        ],
    );
    let (decisions, summary) = dir.replay(&events, 0);
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    let d = &decisions[0];
    assert_eq!(d.session.key, "aws:111122223333:sts:ASIAONE");
    assert_eq!(d.rule.id, "test.bulk_read");
    assert_eq!(
        d.time.to_string(),
        "2024-09-03T10:00:04.000Z",
        "the third read decides"
    );
    assert_eq!(d.evidence.value, Some(3.0));
    assert_eq!(evidence_lines(d), vec![1, 3, 5]);
    assert!(d.caep.is_some(), "kills carry CAEP claims");
    assert_eq!(summary.sessions, 2);
}

#[test]
fn activity_after_a_kill_is_reported_once() {
    let dir = Scratch::new("after-kill");
    dir.rule("bulk.yml", BULK_READ);
    let mut lines: Vec<String> = (0..3)
        .map(|s| ct(s, "ASIAONE", "GetObject", "198.51.100.1"))
        .collect();
    lines.push(ct(60, "ASIAONE", "ListObjects", "198.51.100.1"));
    lines.push(ct(61, "ASIAONE", "GetObject", "198.51.100.1"));
    let events = dir.events("e.jsonl", &lines);
    let (decisions, _) = dir.replay(&events, 0);
    let rules: Vec<&str> = decisions.iter().map(|d| d.rule.id.as_str()).collect();
    assert_eq!(
        rules,
        vec!["test.bulk_read", "sessionguard.kill_not_enforced"]
    );
    assert_eq!(decisions[1].time.to_string(), "2024-09-03T10:01:00.000Z");
}

#[test]
fn duration_timer_fires_when_only_other_sessions_move_time() {
    let dir = Scratch::new("timer");
    dir.rule(
        "stale.yml",
        r#"
title: Privileged session open too long
id: test.stale
level: medium
detection:
  any:
    action.service: s3
  condition: any
session:
  duration:
    since: session_start
    limit: 1h
    fire: on_timer
action: step_up
"#,
    );
    // ASIAOLD acts once at 10:00; only ASIANEW's events move time past 11:00.
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIAOLD", "GetObject", "198.51.100.1"),
            ct(1800, "ASIANEW", "GetObject", "198.51.100.2"),
            ct(3599, "ASIANEW", "GetObject", "198.51.100.2"),
            ct(3601, "ASIANEW", "GetObject", "198.51.100.2"),
        ],
    );
    let (decisions, _) = dir.replay(&events, 0);
    let fired: Vec<(&str, String)> = decisions
        .iter()
        .map(|d| (d.session.key.as_str(), d.time.to_string()))
        .collect();
    // ASIAOLD's hour ends at 11:00:00 and the 11:00:01 event of another session passes it;
    // ASIANEW's hour (until 11:30) has not ended when the input does.
    assert_eq!(
        fired,
        vec![(
            "aws:111122223333:sts:ASIAOLD",
            "2024-09-03T11:00:00.000Z".to_owned()
        )]
    );
}

#[test]
fn replays_are_byte_identical_and_delivery_order_changes_nothing() {
    let dir = Scratch::new("determinism");
    dir.rule("bulk.yml", BULK_READ);
    let mut lines: Vec<String> = Vec::new();
    for s in 0..40u32 {
        let key = ["ASIAA", "ASIAB", "ASIAC"][(s % 3) as usize];
        lines.push(ct(s * 7, key, "GetObject", "198.51.100.1"));
    }
    let ordered = dir.events("ordered.jsonl", &lines);
    // Swap neighbours: records of different sessions trade places, each session keeps its order.
    let mut interleaved = lines.clone();
    for pair in interleaved.chunks_mut(2) {
        pair.reverse();
    }
    let interleaved = dir.events("interleaved.jsonl", &interleaved);
    // Swap each session's own neighbours: its records arrive out of event-time order.
    let mut shuffled = lines.clone();
    for s in (0..shuffled.len().saturating_sub(3)).step_by(6) {
        shuffled.swap(s, s + 3);
    }
    let shuffled = dir.events("shuffled.jsonl", &shuffled);
    let render = |ds: &[Decision]| {
        ds.iter()
            .map(|d| {
                let mut d = d.clone();
                d.evidence.events.iter_mut().for_each(|e| {
                    e.origin = sessionguard::decision::EvidenceOrigin::File {
                        file: String::new(),
                        line: 0,
                    }
                });
                serde_json::to_string(&d).unwrap()
            })
            .collect::<Vec<_>>()
    };
    let what = |ds: &[Decision]| {
        let mut v: Vec<(String, String)> = ds
            .iter()
            .map(|d| (d.rule.id.clone(), d.session.key.clone()))
            .collect();
        v.sort();
        v
    };
    let grace = 20 * 60_000;
    let (first, _) = dir.replay(&ordered, grace);
    let (second, _) = dir.replay(&ordered, grace);
    assert_eq!(
        first
            .iter()
            .map(|d| serde_json::to_string(d).unwrap())
            .collect::<Vec<_>>(),
        second
            .iter()
            .map(|d| serde_json::to_string(d).unwrap())
            .collect::<Vec<_>>()
    );
    assert!(first.len() >= 3, "{first:#?}");
    // Sessions interleaved otherwise: the same decisions, even with no grace at all; only the
    // evidence's line numbers differ, as the files differ.
    let (reordered, summary) = dir.replay(&interleaved, 0);
    assert_eq!(summary.late, 0);
    let mut a = render(&first);
    let mut b = render(&reordered);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // A session's own records out of order, within the grace: the same rules on the same
    // sessions, nothing late.
    let (own, summary) = dir.replay(&shuffled, grace);
    assert_eq!(summary.late, 0);
    assert_eq!(what(&first), what(&own));
    // With no grace, those records are late: not applied, and counted.
    let (_, strict) = dir.replay(&shuffled, 0);
    assert!(strict.late > 0);
}

#[test]
fn scope_growth_fires_on_a_scope_the_session_did_not_start_with() {
    let dir = Scratch::new("scope-growth");
    dir.rule(
        "growth.yml",
        r#"
title: Session gains a policy it did not start with
id: test.scope_growth
detection:
  iam:
    action.service: iam
  condition: iam
session:
  scope_growth:
    field: scopes
    learn: {events: 2}
action: alert
"#,
    );
    let attach = |second: u32, policy: &str| {
        format!(
            r#"{{"eventVersion":"1.09","eventTime":"2024-09-03T10:00:{second:02}Z","eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","requestParameters":{{"roleName":"app","policyArn":"{policy}"}},"userIdentity":{{"type":"AssumedRole","accountId":"1","accessKeyId":"ASIAGROW","principalId":"AROAX:s"}}}}"#
        )
    };
    let events = dir.events(
        "e.jsonl",
        &[
            attach(0, "arn:aws:iam::aws:policy/ReadOnlyAccess"),
            attach(1, "arn:aws:iam::1:policy/app-queue"),
            attach(2, "arn:aws:iam::aws:policy/ReadOnlyAccess"),
            attach(3, "arn:aws:iam::aws:policy/AdministratorAccess"),
        ],
    );
    // With no grace the finding is decided on its record; with a grace it is held until no
    // record can still join the learning period, then released: the same decision.
    for grace_ms in [0, 20 * 60_000] {
        let (decisions, summary) = dir.replay(&events, grace_ms);
        assert_eq!(decisions.len(), 1, "{decisions:#?}");
        assert_eq!(
            summary.findings_held,
            u64::from(grace_ms > 0),
            "grace {grace_ms}"
        );
        let d = &decisions[0];
        assert_eq!(d.time.to_string(), "2024-09-03T10:00:03.000Z");
        assert_eq!(d.evidence.aggregate, "scope_growth", "grace {grace_ms}");
        assert!(
            d.evidence.reason.contains("AdministratorAccess"),
            "{}",
            d.evidence.reason
        );
    }
}

#[test]
fn a_session_idle_past_the_timeout_is_forgotten() {
    let dir = Scratch::new("idle");
    dir.rule("bulk.yml", BULK_READ);
    // Three reads of ONE within five minutes, but ONE is idle from 10 s to 110 s while TWO
    // moves event time past its idle deadline (10 s + 60 s).
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIAONE", "GetObject", "198.51.100.1"),
            ct(10, "ASIAONE", "GetObject", "198.51.100.1"),
            ct(100, "ASIATWO", "GetObject", "198.51.100.2"),
            ct(110, "ASIAONE", "GetObject", "198.51.100.1"),
        ],
    );
    let config = |idle_timeout_ms| {
        let mut config = EngineConfig {
            idle_timeout_ms,
            ..EngineConfig::default()
        };
        config.time.grace_ms = [0; sessionguard::time::SOURCES];
        config
    };
    let ((decisions, _), engine) = dir.replay_with(&events, config(60_000));
    assert!(
        decisions.is_empty(),
        "an expired session's reads must not count: {decisions:#?}"
    );
    assert_eq!(engine.stats().sessions_expired, 1);
    // With the default timeout (12 h) the same reads decide.
    let ((decisions, _), engine) = dir.replay_with(&events, config(12 * 3_600_000));
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(engine.stats().sessions_expired, 0);
    // Idle exactly the timeout (from 10 s to its next record at 110 s): still alive.
    let ((decisions, _), engine) = dir.replay_with(&events, config(100_000));
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(engine.stats().sessions_expired, 0);
}

#[test]
fn the_session_bound_evicts_the_idlest_session_deterministically() {
    let dir = Scratch::new("bound");
    dir.rule("bulk.yml", BULK_READ);
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIAFIRST", "GetObject", "198.51.100.1"),
            ct(1, "ASIAFIRST", "GetObject", "198.51.100.1"),
            ct(2, "ASIASECOND", "GetObject", "198.51.100.2"),
            // A third session: FIRST (idle since t=1) is the idlest and is evicted.
            ct(3, "ASIATHIRD", "GetObject", "198.51.100.3"),
            // FIRST comes back as a new session (evicting SECOND): its two earlier reads are
            // forgotten, so this third read does not reach the threshold of three.
            ct(4, "ASIAFIRST", "GetObject", "198.51.100.1"),
        ],
    );
    let config = EngineConfig {
        max_sessions: 2,
        ..EngineConfig::default()
    };
    let ((decisions, summary), engine) = dir.replay_with(&events, config);
    assert!(
        decisions.is_empty(),
        "evicted history must not count: {decisions:#?}"
    );
    assert_eq!(
        summary.evicted, 2,
        "FIRST for THIRD, then SECOND for FIRST again"
    );
    assert_eq!(engine.session_count(), 2);
}

#[test]
fn a_logout_stops_a_duration_timer() {
    let dir = Scratch::new("until");
    dir.rule(
        "open.yml",
        &open_too_long("since: session_start, limit: 1h, fire: on_timer, until: logout"),
    );
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIASTAYS", "GetObject", "198.51.100.1"),
            ct(1, "ASIALEAVES", "GetObject", "198.51.100.2"),
            ct(60, "ASIALEAVES", "DeleteSession", "198.51.100.2"),
            // An hour later: two records, so the future guard sees the source really moved.
            ct(3700, "ASIAOTHER", "GetObject", "198.51.100.3"),
            ct(3701, "ASIAOTHER", "GetObject", "198.51.100.3"),
        ],
    );
    let (decisions, _) = dir.replay(&events, 0);
    let keys: Vec<&str> = decisions.iter().map(|d| d.session.key.as_str()).collect();
    assert_eq!(keys, vec!["aws:111122223333:sts:ASIASTAYS"]);
}

#[test]
fn a_timer_does_not_fire_for_a_session_that_went_idle_before_it_was_due() {
    let dir = Scratch::new("idle-timer");
    dir.rule(
        "open.yml",
        r#"
title: Session open too long
id: test.open_too_long
detection:
  reads:
    action: s3:GetObject
  condition: reads
session:
  duration: {since: session_start, limit: 2m, fire: on_timer}
action: step_up
"#,
    );
    // ONE reads once at 0 s; its timer is due at 120 s, but with a 60 s idle timeout the
    // session ended at 60 s. TWO moves event time past both at once.
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIAONE", "GetObject", "198.51.100.1"),
            ct(200, "ASIATWO", "GetObject", "198.51.100.2"),
            ct(201, "ASIATWO", "GetObject", "198.51.100.2"),
        ],
    );
    let config = |idle_timeout_ms| {
        let mut config = EngineConfig {
            idle_timeout_ms,
            ..EngineConfig::default()
        };
        config.time.grace_ms = [0; sessionguard::time::SOURCES];
        config
    };
    let keys = |decisions: &[Decision]| -> Vec<String> {
        decisions.iter().map(|d| d.session.key.clone()).collect()
    };
    let ((decisions, _), _) = dir.replay_with(&events, config(60_000));
    assert!(keys(&decisions).is_empty(), "{decisions:#?}");
    // Still open (default timeout): ONE's timer fires (TWO's is not due before 320 s).
    let ((decisions, _), _) = dir.replay_with(&events, config(12 * 3_600_000));
    assert_eq!(keys(&decisions), ["aws:111122223333:sts:ASIAONE"]);
    // Idle exactly its timeout when the timer is due, a session is still alive (as expiry
    // has it): the timer fires.
    let ((decisions, _), _) = dir.replay_with(&events, config(120_000));
    assert_eq!(keys(&decisions), ["aws:111122223333:sts:ASIAONE"]);
}

/// `active_within`: the timer fires only on a session with a record at most that long before
/// its due time — exactly that long counts.
#[test]
fn a_timer_asks_for_a_sign_of_life_within_active_within_of_its_due_time() {
    let dir = Scratch::new("active-within");
    dir.rule(
        "open.yml",
        r#"
title: Session open too long
id: test.open_too_long
detection:
  reads:
    action: s3:GetObject
  condition: reads
session:
  duration: {since: session_start, limit: 2m, fire: on_timer, active_within: 1m}
action: step_up
"#,
    );
    // The timer is due at 120 s; the session's last read is at 60 s or at 59 s.
    let fired = |last_read: u32| {
        let events = dir.events(
            &format!("e{last_read}.jsonl"),
            &[
                ct(0, "ASIAONE", "GetObject", "198.51.100.1"),
                ct(last_read, "ASIAONE", "GetObject", "198.51.100.1"),
                // Moves the clock past the due time (TWO's own timer is not due by then).
                ct(200, "ASIATWO", "GetObject", "198.51.100.2"),
            ],
        );
        dir.replay(&events, 0).0.len()
    };
    assert_eq!(fired(60), 1, "a read exactly a minute before the due time");
    assert_eq!(fired(59), 0, "no read within the minute before it");
}

/// Activity after a kill is one `kill_not_enforced` decision, counted in replay's summary
/// under its own name beside the rule that killed.
#[test]
fn activity_after_a_kill_is_reported_once_and_counted() {
    let dir = Scratch::new("not-enforced");
    dir.rule("gone.yml", DELETE_BUCKET);
    let events = dir.events(
        "e.jsonl",
        &[
            ct(0, "ASIAONE", "DeleteBucket", "198.51.100.1"),
            ct(10, "ASIAONE", "GetObject", "198.51.100.1"),
            ct(20, "ASIAONE", "GetObject", "198.51.100.1"),
        ],
    );
    let (decisions, summary) = dir.replay(&events, 0);
    let rules: Vec<&str> = decisions.iter().map(|d| d.rule.id.as_str()).collect();
    assert_eq!(
        rules,
        [
            "test.delete_bucket",
            sessionguard::decision::KILL_NOT_ENFORCED
        ]
    );
    let counted: Vec<(&str, u64)> = summary
        .decisions_by_rule
        .iter()
        .map(|(rule, n)| (rule.as_str(), *n))
        .collect();
    assert_eq!(
        counted,
        [
            ("test.delete_bucket", 1),
            (sessionguard::decision::KILL_NOT_ENFORCED, 1)
        ]
    );
}

/// A duration timer due before its session's kill fires, even when the kill was decided
/// first (the grace holds the clock back until the input ends); one due after the kill does
/// not — the session was gone by then.
#[test]
fn a_timer_due_before_the_sessions_kill_fires_and_one_due_after_it_does_not() {
    let dir = Scratch::new("timer-and-kill");
    dir.rule(
        "rules.yml",
        r#"
title: Session open too long
id: test.open_too_long
detection:
  reads:
    action: s3:GetObject
  condition: reads
session:
  duration: {since: session_start, limit: 2m, fire: on_timer}
action: step_up
"#,
    )
    .rule("gone.yml", DELETE_BUCKET);
    let decided = |deleted_at: u32| -> Vec<(String, i64)> {
        let events = dir.events(
            &format!("e{deleted_at}.jsonl"),
            &[
                ct(0, "ASIAONE", "GetObject", "198.51.100.1"),
                ct(deleted_at, "ASIAONE", "DeleteBucket", "198.51.100.1"),
            ],
        );
        let ((decisions, _), _) = dir.replay_with(&events, EngineConfig::default());
        let start = decisions.iter().map(|d| d.time.millis()).min().unwrap_or(0);
        let mut got: Vec<(String, i64)> = decisions
            .iter()
            .map(|d| (d.rule.id.clone(), (d.time.millis() - start) / 1000))
            .collect();
        got.sort_by_key(|(_, t)| *t);
        got
    };
    // The timer is due 120 s after the session's start at 0 s.
    assert_eq!(
        decided(300),
        [
            ("test.open_too_long".to_owned(), 0),
            ("test.delete_bucket".to_owned(), 180)
        ],
        "killed at 300 s, after the timer"
    );
    assert_eq!(
        decided(60),
        [("test.delete_bucket".to_owned(), 0)],
        "killed at 60 s, before the timer"
    );
}

/// Normalizes CloudTrail `line` and hands it to `engine` from `origin`.
fn process_at(engine: &mut Engine, line: &str, origin: Origin) -> (Applied, Vec<Decision>) {
    let scratch = bumpalo::Bump::new();
    let event = Normalizer::default()
        .normalize(line.as_bytes(), &scratch)
        .unwrap_or_else(|r| panic!("{r}"));
    let mut out = Vec::new();
    let applied = engine.process(&event, origin, &mut out);
    (applied, out)
}

fn line_origin(line: u64) -> Origin {
    Origin::File { file: 0, line }
}

/// The oldest input a rebuild must replay from is the first record of the session whose
/// first record is oldest in the input — not of the session created first.
#[test]
fn the_oldest_live_origin_is_the_earliest_first_record_in_the_input() {
    let mut engine = Engine::new(RuleSet::default(), EngineConfig::default());
    assert_eq!(engine.oldest_live_origin(), None, "no session held");
    // Created first, but from later in the input (as a Kafka partition read ahead would).
    process_at(
        &mut engine,
        &ct(0, "ASIAAAA", "GetObject", "198.51.100.1"),
        line_origin(50),
    );
    process_at(
        &mut engine,
        &ct(1, "ASIABBB", "GetObject", "198.51.100.2"),
        line_origin(10),
    );
    process_at(
        &mut engine,
        &ct(2, "ASIACCC", "GetObject", "198.51.100.3"),
        line_origin(30),
    );
    process_at(
        &mut engine,
        &ct(3, "ASIABBB", "GetObject", "198.51.100.2"),
        line_origin(60),
    );
    assert_eq!(engine.oldest_live_origin(), Some(line_origin(10)));
}

/// A record exactly its grace older than its session's newest is applied; one a second more
/// is late: counted, not applied. Every event is counted.
#[test]
fn a_record_exactly_a_grace_behind_is_applied_and_one_more_is_late() {
    let mut config = EngineConfig::default();
    config.time.grace_ms = [60_000; sessionguard::time::SOURCES];
    let mut engine = Engine::new(RuleSet::default(), config);
    let key = "ASIALATE";
    let at = |engine: &mut Engine, second: u32, line: u64| {
        process_at(
            engine,
            &ct(second, key, "GetObject", "198.51.100.9"),
            line_origin(line),
        )
        .0
    };
    assert_eq!(at(&mut engine, 100, 1), Applied::Yes);
    assert_eq!(
        at(&mut engine, 40, 2),
        Applied::Yes,
        "exactly the grace behind"
    );
    assert_eq!(at(&mut engine, 39, 3), Applied::Late { behind_ms: 61_000 });
    let stats = engine.stats();
    assert_eq!((stats.events, stats.late_events), (3, 1));
}

/// `reset` forgets everything but the rules: the same input then gives the same decisions and
/// the same counts as on a new engine (the benches reuse engines this way).
#[test]
fn a_reset_engine_decides_as_a_new_one() {
    let dir = Scratch::new("reset");
    dir.rule("bulk.yml", BULK_READ);
    let lines: Vec<String> = (0..40)
        .map(|i| ct(i * 5, "ASIARESET", "GetObject", "198.51.100.4"))
        .collect();
    let events = dir.events("e.jsonl", &lines);
    let ((first, _), mut engine) = dir.replay_with(&events, EngineConfig::default());
    assert!(!first.is_empty(), "the input decides something");
    let stats = |e: &Engine| {
        let s = e.stats();
        (
            s.events,
            s.sessions_created,
            s.decisions(),
            s.decisions_by_rule.clone(),
        )
    };
    let after_first = stats(&engine);
    assert_eq!(after_first.0, 40);
    assert_eq!(after_first.2, first.len() as u64, "decisions counted");
    engine.reset();
    assert_eq!(engine.session_count(), 0);
    assert_eq!(stats(&engine).0, 0);
    let mut second = Vec::new();
    replay(
        &[events],
        &mut engine,
        &ReplayOptions::default(),
        &mut |d| {
            second.push(d.clone());
            Ok(())
        },
        &mut |_, _, _, _| Ok(()),
    )
    .unwrap();
    assert_eq!(second, first);
    assert_eq!(stats(&engine), after_first);
}

/// `since: session_start` counts a session's first life from the session's start, whatever
/// the order its records arrive in, and a life after a logout from that life's first match:
/// a read 50 s into the session decides whether the logout at 60 s arrived before it or after;
/// reads 10 s into a new life after the logout decide nothing.
#[test]
fn session_start_counts_the_first_life_from_the_start_in_any_order_and_a_new_life_from_its_first_read(
) {
    let dir = Scratch::new("session-start-lives");
    dir.rule(
        "open.yml",
        &open_too_long("since: session_start, limit: 30s, fire: on_event, until: logout"),
    );
    // The session starts with a write the rule does not match.
    let start = ct(0, "ASIALIVES", "PutObject", "198.51.100.1");
    let read = ct(50, "ASIALIVES", "GetObject", "198.51.100.1");
    let logout = ct(60, "ASIALIVES", "DeleteSession", "198.51.100.1");
    let decided_at = |lines: &[String]| -> Vec<String> {
        let events = dir.events("e.jsonl", lines);
        let (decisions, _) = dir.replay(&events, 60_000);
        decisions.iter().map(|d| d.time.to_string()).collect()
    };
    let sorted = decided_at(&[start.clone(), read.clone(), logout.clone()]);
    assert_eq!(
        sorted,
        ["2024-09-03T10:00:50.000Z"],
        "50 s into a 30 s limit"
    );
    let logout_first = decided_at(&[start.clone(), logout.clone(), read]);
    assert_eq!(logout_first, sorted, "the logout delivered before the read");
    let new_life = decided_at(&[
        start,
        logout,
        ct(100, "ASIALIVES", "GetObject", "198.51.100.1"),
        ct(110, "ASIALIVES", "GetObject", "198.51.100.1"),
    ]);
    assert!(new_life.is_empty(), "a new life 10 s old: {new_life:?}");
}

/// A read in the same second as the logout belongs to the life that logged out (sources stamp
/// whole seconds, so their order within one is unknown); a read a second later starts a new
/// life, whose clock (since its first match) starts again.
#[test]
fn a_read_in_the_logouts_second_belongs_to_the_life_that_logged_out() {
    let dir = Scratch::new("same-second");
    dir.rule(
        "open.yml",
        &open_too_long("since: first_match, limit: 30s, fire: on_event, until: logout"),
    );
    let decided = |after_logout: u32| {
        let events = dir.events(
            "e.jsonl",
            &[
                ct(0, "ASIALIVES", "GetObject", "198.51.100.1"),
                ct(20, "ASIALIVES", "GetObject", "198.51.100.1"),
                ct(60, "ASIALIVES", "DeleteSession", "198.51.100.1"),
                ct(60 + after_logout, "ASIALIVES", "GetObject", "198.51.100.1"),
            ],
        );
        dir.replay(&events, 0).0.len()
    };
    assert_eq!(decided(0), 1, "60 s into a life with a 30 s limit");
    assert_eq!(decided(1), 0, "a new life, 0 s old");
}

/// A decision on a chained session names every session up the role chain and its root: the
/// person, workload or agent to kill at the source (issue 14, traceability). In the handwritten
/// chain, alice's long-term key assumes `deployer`, whose session assumes `org-admin`; the
/// org-admin session attaches a policy.
#[test]
fn a_decision_on_a_chained_session_names_the_chain_up_to_its_root() {
    let scratch = Scratch::new("chain");
    scratch.rule(
        "attach.yml",
        "id: test.attach\ndetection:\n  attach: {action: 'iam:AttachRolePolicy'}\n  condition: attach\naction: alert\n",
    );
    let events = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events/cloudtrail/role-chain-handwritten.jsonl");
    let (decisions, _) = scratch.replay(&events, 20 * 60_000);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let session = &decisions[0].session;
    assert!(
        session.key.ends_with(":sts:ASIAQORGADMIN0000002"),
        "{}",
        session.key
    );
    let chain: Vec<&str> = session.chain.iter().map(|k| key_id(k)).collect();
    assert_eq!(chain, ["ASIAQDEPLOYER0000001", "AKIAQALICE0000000001"]);
    assert_eq!(session.parent.as_ref(), Some(&session.chain[0]));
    assert_eq!(session.root.as_ref(), Some(&session.chain[1]));
}

/// A role chain that loops — session B issued A's key after A issued B's, a garbled or hostile
/// pair of records — is named once round the loop and with no root, never walked forever: a
/// decision on B names A; one on C, issued from A, names A and B.
#[test]
fn a_looping_role_chain_is_named_once_round_with_no_root() {
    let scratch = Scratch::new("chain-loop");
    scratch.rule("delete.yml", DELETE_BUCKET);
    let events = scratch.events(
        "loop.jsonl",
        &[
            assume(1, "ASIALOOPA", "ASIALOOPB"),
            assume(2, "ASIALOOPB", "ASIALOOPA"),
            assume(3, "ASIALOOPA", "ASIALOOPC"),
            ct(4, "ASIALOOPC", "DeleteBucket", "198.51.100.1"),
            ct(5, "ASIALOOPB", "DeleteBucket", "198.51.100.1"),
        ],
    );
    let (decisions, _) = scratch.replay(&events, 0);
    let named: Vec<(&str, Vec<&str>, Option<&String>)> = decisions
        .iter()
        .map(|d| {
            let chain = d.session.chain.iter().map(|k| key_id(k)).collect();
            (key_id(&d.session.key), chain, d.session.root.as_ref())
        })
        .collect();
    assert_eq!(
        named,
        [
            ("ASIALOOPC", vec!["ASIALOOPA", "ASIALOOPB"], None),
            ("ASIALOOPB", vec!["ASIALOOPA"], None),
        ]
    );
}

/// A session evicted by the bound gives its slot to a session of another source; the evicted
/// one's idle entry goes with it, so its source's clock never expires the newcomer (the
/// invariant that makes `Engine::idlest_in`'s check of the entry's sequence number defensive:
/// docs/testing.md, mutation testing).
#[test]
fn a_reused_slot_is_not_expired_by_the_clock_of_its_previous_sessions_source() {
    let config = EngineConfig {
        max_sessions: 1,
        ..EngineConfig::default()
    };
    let idle = config.idle_timeout_ms;
    let mut engine = Engine::new(
        RuleSet::from_yaml("none.yml", "lists: {}\n").unwrap(),
        config,
    );
    let okta = r#"{"eventType":"user.session.start","published":"2024-11-04T10:00:00.000Z","uuid":"6f1c2e3a-11d9-11ef-9a3c-5b1c2e0f7d21","actor":{"id":"00u1a2b3c4d5e6f7g8h9","type":"User","alternateId":"dana@example.com"},"authenticationContext":{"rootSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg"},"outcome":{"result":"SUCCESS"},"client":{"ipAddress":"198.51.100.9"}}"#;
    let (applied, _) = process_at(&mut engine, okta, line_origin(1));
    assert!(matches!(applied, Applied::Yes));
    // A CloudTrail session evicts the Okta one (bound 1) and takes its slot.
    let (applied, _) = process_at(
        &mut engine,
        &ct(0, "ASIASECOND", "GetObject", "198.51.100.2"),
        line_origin(2),
    );
    assert!(matches!(applied, Applied::Yes));
    assert_eq!(engine.session_count(), 1);
    // Okta's clock moves a day on; CloudTrail's stays. The CloudTrail session is not idle on
    // its own clock, so it stays.
    let mut out = Vec::new();
    let far = sessionguard::event::Timestamp::parse("2024-11-05T12:00:00Z")
        .unwrap()
        .millis()
        + idle;
    engine.advance(sessionguard::event::Source::Okta, far, &mut out);
    assert_eq!(
        engine.session_count(),
        1,
        "expired by another source's clock"
    );
}

/// `ASIAPARENT` assuming a role that issues `ASIACHILD`, at `second`s past 10:00:00.
fn assume_child(second: u32) -> String {
    assume(second, "ASIAPARENT", "ASIACHILD")
}

/// An STS AssumeRole record at `second`s past 10:00:00: the session of key `parent` is issued
/// the temporary key `child`.
fn assume(second: u32, parent: &str, child: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"2024-09-03T10:00:{second:02}Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","sourceIPAddress":"198.51.100.1","requestParameters":{{"roleArn":"arn:aws:iam::111122223333:role/deployer","roleSessionName":"d"}},"responseElements":{{"credentials":{{"accessKeyId":"{child}"}}}},"userIdentity":{{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"{parent}","principalId":"AROAX:{parent}"}}}}"#
    )
}

/// Feeds `records` (line 1, 2 …) to an engine that forgets a session after a minute idle, moves
/// CloudTrail's clock to 10:01:30 — past the parent's idle minute, not the child's (last seen
/// at 10:01:20) — and returns the oldest input origin still live.
fn oldest_origin_once_the_parent_is_forgotten(records: &[String]) -> Option<Origin> {
    let config = EngineConfig {
        idle_timeout_ms: 60_000,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(RuleSet::default(), config);
    for (i, record) in records.iter().enumerate() {
        process_at(&mut engine, record, line_origin(i as u64 + 1));
    }
    let mut out = Vec::new();
    let at = sessionguard::event::Timestamp::parse("2024-09-03T10:01:30Z")
        .unwrap()
        .millis();
    engine.advance(sessionguard::event::Source::Cloudtrail, at, &mut out);
    assert_eq!(
        engine.session_count(),
        1,
        "the parent is forgotten, the child is not"
    );
    engine.oldest_live_origin()
}

/// A chained session's state starts where its parent's does: after the parent is forgotten,
/// the oldest input a Kafka rebuild must replay from is still the parent's first record, since
/// the child inherited what the parent knew (a surviving mutant of `create_session` compared
/// the two origins with `==`).
#[test]
fn a_chained_session_keeps_its_parents_first_origin_after_the_parent_is_forgotten() {
    // The child's records come later in the input; the parent goes quiet.
    let records = [
        assume_child(0),
        ct(30, "ASIACHILD", "GetObject", "198.51.100.1"),
        ct(80, "ASIACHILD", "GetObject", "198.51.100.1"),
    ];
    assert_eq!(
        oldest_origin_once_the_parent_is_forgotten(&records),
        Some(line_origin(1))
    );
}

/// The same when the child's records arrive before the record that issued it (linked late):
/// the child's state starts at the parent's first record, earlier in the input than its own.
#[test]
fn a_session_linked_late_takes_its_parents_earlier_first_origin() {
    let records = [
        ct(0, "ASIAPARENT", "GetObject", "198.51.100.1"),
        ct(30, "ASIACHILD", "GetObject", "198.51.100.1"),
        assume_child(10),
        ct(80, "ASIACHILD", "GetObject", "198.51.100.1"),
    ];
    assert_eq!(
        oldest_origin_once_the_parent_is_forgotten(&records),
        Some(line_origin(1))
    );
}

/// An event matching a sequence's `until` abandons the open sequence: a read, the close, then
/// a write decides nothing; without the close the same read and write decide. (A surviving
/// mutant of `evaluate` returned before recording a close that came with no step match.)
#[test]
fn until_abandons_an_open_sequence() {
    let dir = Scratch::new("until");
    dir.rule(
        "seq.yml",
        "id: test.read_then_put\n\
         detection:\n  read: {action: 's3:GetObject'}\n  put: {action: 's3:PutObject'}\n  \
         close: {action: 's3:DeleteObject'}\n  condition: read or put or close\n\
         session:\n  sequence:\n    maxspan: 10m\n    steps:\n      - match: read\n      \
         - match: put\n    until: close\naction: alert\n",
    );
    let closed = dir.events(
        "closed.jsonl",
        &[
            ct(0, "ASIASEQ", "GetObject", "198.51.100.1"),
            ct(10, "ASIASEQ", "DeleteObject", "198.51.100.1"),
            ct(20, "ASIASEQ", "PutObject", "198.51.100.1"),
        ],
    );
    let (decisions, _) = dir.replay(&closed, 20 * 60_000);
    assert!(decisions.is_empty(), "{decisions:#?}");
    let open = dir.events(
        "open.jsonl",
        &[
            ct(0, "ASIASEQ", "GetObject", "198.51.100.1"),
            ct(20, "ASIASEQ", "PutObject", "198.51.100.1"),
        ],
    );
    let (decisions, _) = dir.replay(&open, 20 * 60_000);
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
}

/// A sequence rule: S3 reads holding `aggregate` (a step's aggregate), then a bucket deleted.
fn reads_then_delete(aggregate: &str) -> String {
    format!(
        "id: test.reads_then_delete\n\
         detection:\n  read: {{action: 's3:GetObject'}}\n  gone: {{action: 's3:DeleteBucket'}}\n  \
         condition: read or gone\n\
         session:\n  sequence:\n    maxspan: 10m\n    steps:\n      - match: read\n        \
         aggregate: {aggregate}\n      - match: gone\naction: alert\n"
    )
}

/// Each decision's session (its access key) and evidence lines.
fn decided_sessions(decisions: &[Decision]) -> Vec<(&str, Vec<u64>)> {
    decisions
        .iter()
        .map(|d| (key_id(&d.session.key), evidence_lines(d)))
        .collect()
}

/// A sequence step with a `value_count` aggregate holds on distinct values of its field, not
/// on records: three reads from one address then a delete decide nothing; three reads from
/// three addresses then a delete decide, on the delete.
#[test]
fn a_sequence_steps_value_count_counts_distinct_values() {
    let dir = Scratch::new("step-value-count");
    dir.rule(
        "seq.yml",
        &reads_then_delete("{value_count: {field: network.ip, timespan: 5m, gte: 3}}"),
    );
    let session = |key: &str, ips: [&str; 3]| {
        let mut lines: Vec<String> = (0..3u32)
            .map(|i| ct(i, key, "GetObject", ips[i as usize]))
            .collect();
        lines.push(ct(10, key, "DeleteBucket", ips[0]));
        lines
    };
    let mut lines = session("ASIAONEIP", ["198.51.100.7"; 3]);
    lines.extend(session(
        "ASIATHREEIPS",
        ["198.51.100.1", "198.51.100.2", "198.51.100.3"],
    ));
    let events = dir.events("e.jsonl", &lines);
    let (decisions, _) = dir.replay(&events, 60_000);
    let decided = decided_sessions(&decisions);
    assert_eq!(
        decided,
        [("ASIATHREEIPS", vec![5, 6, 7, 8])],
        "{decisions:#?}"
    );
}

/// A sequence step with a `value_sum` aggregate holds on the sum of its field: three reads of
/// 300 bytes then a delete decide nothing; three of 400 (1,200 ≥ 1,000) then a delete decide, on
/// the delete. (The step's `value_sum` arm had no test: docs/testing.md, mutation testing.)
#[test]
fn a_sequence_steps_value_sum_adds_its_field() {
    let dir = Scratch::new("step-value-sum");
    dir.rule(
        "seq.yml",
        &reads_then_delete("{value_sum: {field: bytes, timespan: 5m, gte: 1000}}"),
    );
    let read = |second: u32, key: &str, bytes: u32| {
        ct(second, key, "GetObject", "198.51.100.1").replacen(
            r#""readOnly""#,
            &format!(r#""additionalEventData":{{"bytesTransferredOut":{bytes}}},"readOnly""#),
            1,
        )
    };
    let session = |key: &str, bytes: u32| {
        let mut lines: Vec<String> = (0..3u32).map(|i| read(i, key, bytes)).collect();
        lines.push(ct(10, key, "DeleteBucket", "198.51.100.1"));
        lines
    };
    let mut lines = session("ASIASMALL", 300);
    lines.extend(session("ASIALARGE", 400));
    let events = dir.events("e.jsonl", &lines);
    let (decisions, _) = dir.replay(&events, 60_000);
    let decided = decided_sessions(&decisions);
    assert_eq!(decided, [("ASIALARGE", vec![5, 6, 7, 8])], "{decisions:#?}");
}

/// A sequence completed across a role chain whose child's record arrived before the `AssumeRole`
/// that issued it: linking the two late decides on the child, as in time order — with both
/// steps in the evidence, the step count, and who started the chain. (`link_late`'s sequence
/// arm and its decision's fields had no test: docs/testing.md, mutation testing.)
#[test]
fn a_sequence_completed_across_a_role_chain_linked_late_decides_on_the_child() {
    let dir = Scratch::new("late-chain");
    dir.rule(
        "chain.yml",
        "id: test.assume_then_put\n\
         detection:\n  assume: {action: 'sts:AssumeRole'}\n  put: {action: 's3:PutObject'}\n  \
         condition: assume or put\n\
         session:\n  sequence:\n    maxspan: 10m\n    steps:\n      - match: assume\n      \
         - match: put\naction: alert\n",
    );
    let parent_read = ct(0, "ASIAPARENT", "GetObject", "198.51.100.1");
    let child_put = ct(30, "ASIACHILD", "PutObject", "198.51.100.1");
    let summary = |records: &[String]| {
        let (decisions, _) = dir.replay(&dir.events("chain.jsonl", records), 20 * 60_000);
        decisions
            .iter()
            .map(|d| {
                let v = serde_json::to_value(d).unwrap();
                let lines: Vec<u64> = v["evidence"]["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["origin"]["line"].as_u64().unwrap())
                    .collect();
                (
                    v["session"]["key"].as_str().unwrap().to_owned(),
                    v["time"].as_str().unwrap().to_owned(),
                    v["evidence"]["value"].as_f64(),
                    lines,
                    v["principal"]["id"].as_str().map(str::to_owned),
                )
            })
            .collect::<Vec<_>>()
    };
    let late = summary(&[parent_read.clone(), child_put.clone(), assume_child(10)]);
    assert_eq!(late.len(), 1, "{late:?}");
    let (session, time, value, lines, principal) = &late[0];
    assert!(session.ends_with(":sts:ASIACHILD"), "{session}");
    assert_eq!(time, "2024-09-03T10:00:30.000Z");
    assert_eq!(*value, Some(2.0), "the steps completed");
    assert_eq!(
        lines,
        &[3, 2],
        "the AssumeRole (line 3), then the child's write (line 2)"
    );
    // The record in hand is the AssumeRole: its actor started the chain.
    assert_eq!(principal.as_deref(), Some("AROAX:ASIAPARENT"));

    // In time order the same sequence decides on the child's write, at the same time.
    let sorted = summary(&[parent_read, assume_child(10), child_put]);
    assert_eq!(sorted.len(), 1, "{sorted:?}");
    assert_eq!((&sorted[0].0, &sorted[0].1), (session, time));
}

/// A workload's two programs, the second's first call delivered after later calls of the first
/// (CloudTrail files are unsorted inside): the runtime found outside the baseline on arrival is
/// held while its learning period could still change, then refuted when the earlier call
/// arrives — no kill, and the summary says what happened. Delivered in time order, nothing is
/// held.
#[test]
fn a_baseline_finding_refuted_by_an_earlier_record_decides_nothing_and_is_counted() {
    let dir = Scratch::new("held");
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    dir.rule(
        "workload-new-runtime.yml",
        &std::fs::read_to_string(pack.join("workload-new-runtime.yml")).unwrap(),
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios/workload-runtime/benign-ec2.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(fixture)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // The Go agent at 10:00:05 and the Java service at 10:00:40 arrive after the service's call
    // at 10:14:20 and the agent's at 10:06:05.
    let order = [4, 3, 5, 0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13];
    let delivered: Vec<String> = order.iter().map(|&i| lines[i].clone()).collect();
    let (decisions, summary) = dir.replay(&dir.events("delivered.jsonl", &delivered), 20 * 60_000);
    assert!(decisions.is_empty(), "{decisions:#?}");
    assert_eq!((summary.findings_held, summary.findings_refuted), (1, 1));
    let (decisions, summary) = dir.replay(&dir.events("sorted.jsonl", &lines), 20 * 60_000);
    assert!(decisions.is_empty(), "{decisions:#?}");
    assert_eq!(summary.findings_held, 0);
}
