//! Agents bound to their task (docs/agents.md): the generic rules of
//! `rules/agents/task-grants.yml` over the task-grant fixtures (`fixtures/agents/`), each file
//! with its orchestrator's grants and completions beside it (`<file>.tasks.ndjson`).
//!
//! - every file's decisions are exactly its ground truth (`fixtures/agents.expected.json`,
//!   written by `scripts/scenarios/agents.py` from the grants, not from the engine): the right
//!   session, on the right line, by the named rule, with `kill_not_enforced` where a killed
//!   session keeps acting, and no decision on any session the truth says is quiet;
//! - the same verdicts when each run of six records arrives shuffled (CloudTrail's delivery);
//! - the same decisions, byte for byte, when the task records arrive inline among the audit
//!   records instead of from `--tasks`, and on a second replay;
//! - `--tasks` with a broken record fails with every problem named and decides nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sessionguard::decision::{Decision, KILL_NOT_ENFORCED};
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::evaluator::{Evaluator, Sink};
use sessionguard::event::{Normalizer, Reject};
use sessionguard::grant;
use sessionguard::rule::{Mode, RuleSet};
use sessionguard::source::Origin;

#[path = "support/cli.rs"]
mod cli;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Default)]
struct Collect {
    decisions: Vec<Decision>,
    rejects: Vec<String>,
}

impl Sink for Collect {
    fn decision(&mut self, decision: &Decision) -> std::io::Result<()> {
        self.decisions.push(decision.clone());
        Ok(())
    }
    fn reject(&mut self, origin: Origin, reject: &Reject, _: &[u8]) -> std::io::Result<()> {
        self.rejects.push(format!("{origin:?}: {reject}"));
        Ok(())
    }
}

fn pack() -> Arc<RuleSet> {
    Arc::new(RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}")))
}

fn files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root().join("fixtures/agents")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn tasks_of(file: &Path) -> Vec<grant::TaskRecord> {
    let tasks = file.with_extension("tasks.ndjson");
    grant::load(&[tasks]).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Evaluates `records` in `order` (indexes into `records`, so a record keeps its line), the
/// engine starting with `tasks`.
fn evaluate(
    rules: &Arc<RuleSet>,
    tasks: Vec<grant::TaskRecord>,
    records: &[&str],
    order: &[usize],
) -> Collect {
    let config = EngineConfig {
        tasks: tasks.into(),
        ..EngineConfig::default()
    };
    let mut evaluator = Evaluator::new(
        Engine::with_shared_rules(rules.clone(), config),
        Normalizer::default(),
    );
    let mut sink = Collect::default();
    for &i in order {
        let origin = Origin::File {
            file: 0,
            line: i as u64 + 1,
        };
        evaluator
            .push(records[i].as_bytes(), origin, &mut sink)
            .unwrap();
    }
    evaluator.finish(&mut sink).unwrap();
    sink
}

fn last_line(d: &Decision) -> u64 {
    d.evidence
        .events
        .iter()
        .filter_map(|e| match &e.origin {
            sessionguard::decision::EvidenceOrigin::File { line, .. } => Some(*line),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// (session, line of the record that decided, rule), sorted.
fn decided(ds: &[Decision]) -> Vec<(String, u64, String)> {
    let mut v: Vec<_> = ds
        .iter()
        .map(|d| (d.session.key.clone(), last_line(d), d.rule.id.clone()))
        .collect();
    v.sort();
    v
}

/// What the ground truth expects: each decision, and `kill_not_enforced` on the next line of a
/// killed session that keeps acting (unless the truth lists it itself).
fn expected(truth: &serde_json::Value) -> Vec<(String, u64, String)> {
    let decisions = truth["decisions"].as_array().unwrap();
    let mut v = Vec::new();
    for d in decisions {
        let session = d["session"].as_str().unwrap().to_owned();
        let rule = d["rule"].as_str().unwrap().to_owned();
        v.push((session.clone(), d["line"].as_u64().unwrap(), rule.clone()));
        let kills = d["action"].as_str().unwrap().starts_with("revoke ");
        let listed = decisions
            .iter()
            .any(|o| o["session"] == d["session"] && o["rule"] == KILL_NOT_ENFORCED);
        if let Some(next) = d["later_lines"].get(0).and_then(|l| l.as_u64()) {
            if kills && !listed && rule != KILL_NOT_ENFORCED {
                v.push((session, next, KILL_NOT_ENFORCED.to_owned()));
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

fn truth() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("fixtures/agents.expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn relative(file: &Path) -> String {
    file.strip_prefix(root().join("fixtures/agents"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_agent_violation_is_caught_and_no_benign_session_is_flagged() {
    let rules = pack();
    let truth = truth();
    let files = files();
    assert_eq!(files.len(), 8, "{files:?}");
    let mut violations = 0;
    for file in &files {
        let rel = relative(file);
        let want = &truth[&rel];
        assert!(want.is_object(), "{rel}: no ground truth");
        let text = std::fs::read_to_string(file).unwrap();
        let records: Vec<&str> = text.lines().collect();
        assert_eq!(
            records.len() as u64,
            want["events"].as_u64().unwrap(),
            "{rel}"
        );
        let order: Vec<usize> = (0..records.len()).collect();
        let got = evaluate(&rules, tasks_of(file), &records, &order);
        assert!(got.rejects.is_empty(), "{rel}: {:?}", got.rejects);
        assert_eq!(decided(&got.decisions), expected(want), "{rel}");
        for quiet in want["no_decision"].as_array().unwrap() {
            assert!(
                got.decisions.iter().all(|d| d.session.key != *quiet),
                "{rel}: quiet session {quiet} was decided"
            );
        }
        violations += want["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["rule"].as_str().unwrap().starts_with("sg.agent."))
            .count();
        if rel.starts_with("budget") || rel.contains("attack") {
            continue;
        }
        assert!(got.decisions.is_empty(), "{rel}: {:?}", got.decisions);
    }
    // Two of each: outside (resource, action), ended (completed, expired), budget (calls,
    // distinct resources); one role.
    assert_eq!(violations, 7);
}

#[test]
fn the_ground_truth_comparison_fails_on_a_wrong_line_or_rule() {
    let truth = truth();
    let want = expected(&truth["outside/attack.jsonl"]);
    let mut moved = want.clone();
    moved[0].1 += 1;
    assert_ne!(moved, want);
    let mut renamed = want.clone();
    renamed[0].2 = "sg.agent.after_grant".to_owned();
    assert_ne!(renamed, want);
    assert!(want.iter().any(|(_, _, r)| r == "sg.agent.outside_grant"));
}

/// Which sessions were killed, and by which rules the others were decided. A session whose
/// only decision is `kill_not_enforced` was killed too — through its role chain: a chained
/// session whose first record arrives before the record that issued it is judged on its own
/// (and killed for acting outside the grant) before it can inherit its parent's kill.
fn verdicts(ds: &[Decision]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ds
        .iter()
        .map(|d| {
            let verdict = if d.rule.id == KILL_NOT_ENFORCED
                || (d.action.is_kill() && d.mode == Mode::Enforce)
            {
                "killed".to_owned()
            } else {
                d.rule.id.clone()
            };
            (d.session.key.clone(), verdict)
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

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

#[test]
fn runs_of_six_delivered_unsorted_give_the_verdicts_of_time_order() {
    let rules = pack();
    let mut reordered = 0;
    for file in files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let records: Vec<&str> = text.lines().collect();
        let sorted: Vec<usize> = (0..records.len()).collect();
        let want = verdicts(&evaluate(&rules, tasks_of(&file), &records, &sorted).decisions);
        for seed in 1..=8u64 {
            let mut rng = Lcg(seed);
            let mut order = sorted.clone();
            for run in order.chunks_mut(6) {
                for i in (1..run.len()).rev() {
                    run.swap(i, rng.below(i + 1));
                }
            }
            reordered += usize::from(order != sorted);
            let got = evaluate(&rules, tasks_of(&file), &records, &order);
            assert_eq!(
                verdicts(&got.decisions),
                want,
                "{} in order {order:?}",
                file.display()
            );
        }
    }
    assert!(reordered > 40, "{reordered} orders differ");
}

#[test]
fn task_records_inline_among_audit_records_decide_as_preloaded_ones_do() {
    let rules = pack();
    for file in files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let records: Vec<&str> = text.lines().collect();
        let order: Vec<usize> = (0..records.len()).collect();
        let preloaded = evaluate(&rules, tasks_of(&file), &records, &order);
        let again = evaluate(&rules, tasks_of(&file), &records, &order);
        let json = |c: &Collect| -> Vec<String> {
            c.decisions
                .iter()
                .map(|d| serde_json::to_string(d).unwrap())
                .collect()
        };
        assert_eq!(json(&preloaded), json(&again), "{}", file.display());

        // The orchestrator's records first (each is dated before the runs it grants or, for a
        // completion, before the records after it), then the audit records: line numbers of the
        // audit records are kept by giving task records lines past the file's end.
        let tasks_text = std::fs::read_to_string(file.with_extension("tasks.ndjson")).unwrap();
        let task_lines: Vec<&str> = tasks_text.lines().collect();
        let mut all: Vec<&str> = records.clone();
        all.extend(&task_lines);
        let time = |r: &str| -> String {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            v.get("eventTime")
                .or_else(|| v.get("time"))
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        };
        let mut inline: Vec<usize> = (0..all.len()).collect();
        // Stable: a task record goes before audit records of the same second.
        inline.sort_by_key(|&i| (time(all[i]), usize::from(i < records.len())));
        let got = evaluate(&rules, Vec::new(), &all, &inline);
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        assert_eq!(json(&got), json(&preloaded), "{}", file.display());
    }
}

#[test]
fn a_broken_tasks_file_is_refused_with_every_problem_named() {
    let dir = std::env::temp_dir().join(format!("sg-agents-tasks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tasks = dir.join("broken.ndjson");
    std::fs::write(
        &tasks,
        concat!(
            r#"{"type":"sessionguard.task.grant","time":"2024-12-02T08:59:00Z","agent":"a","task":"t","allow":{"actions":["s3:GetObject"]},"ttl":"soon"}"#,
            "\n",
            r#"{"type":"sessionguard.task.complete","time":"never","agent":"a","task":"t"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = cli::sessionguard(&[
        "replay",
        "fixtures/agents/outside/attack.jsonl",
        "--rules",
        "rules",
        "--tasks",
        &tasks.display().to_string(),
        "--no-progress",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("broken.ndjson:1: `ttl` \"soon\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.ndjson:2: `time` \"never\""),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_with_tasks_decides_the_ground_truth_on_the_command_line() {
    let out = cli::sessionguard(&[
        "replay",
        "fixtures/agents/ended/attack.jsonl",
        "--rules",
        "rules",
        "--tasks",
        "fixtures/agents/ended/attack.tasks.ndjson",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let rules: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            d["rule"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        rules,
        [
            "sg.agent.after_grant",
            KILL_NOT_ENFORCED,
            "sg.agent.after_grant"
        ]
    );
    // Without the grants, the same agents are not governed: nothing is decided.
    let out = cli::sessionguard(&[
        "replay",
        "fixtures/agents/ended/attack.jsonl",
        "--rules",
        "rules",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

/// Tool calls reach the same checks as cloud API calls: OpenTelemetry GenAI spans (an OTLP
/// export of two spans, split span by span) and an MCP gateway's audit records
/// (`fixtures/events/otel/`, `fixtures/events/mcp/`), against the grants in
/// `fixtures/agents/tools/tasks.ndjson`: `claims-triage` may call `fetch_claim` and
/// `classify_claim`, `ledger-sync` the GitHub MCP server's `search_issues` and reads of its
/// ledger repository. Each calls one tool its grant does not name; a person's MCP session and
/// an agent without a grant are not decided.
#[test]
fn tool_calls_from_genai_spans_and_an_mcp_gateway_are_checked_against_the_grant() {
    let rules = pack();
    let tasks = grant::load(&[root().join("fixtures/agents/tools/tasks.ndjson")]).unwrap();
    let mut decided_rules = Vec::new();
    // (file, session, line of the violation, line of the session's next record)
    for (file, session, line, next) in [
        (
            "fixtures/events/otel/genai-spans.jsonl",
            "otel:claims-agents:conversation:conv_6f1d2a9c",
            2,
            Some(6),
        ),
        (
            "fixtures/events/mcp/gateway-audit.jsonl",
            "mcp:github:session:9f2c41e0b7d64a1f8e3b5c2d7a901e46",
            5,
            None,
        ),
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let records: Vec<&str> = text.lines().collect();
        let order: Vec<usize> = (0..records.len()).collect();
        let got = evaluate(&rules, tasks.clone(), &records, &order);
        let mut want = vec![(
            session.to_owned(),
            line,
            "sg.agent.outside_grant".to_owned(),
        )];
        // The killed conversation goes on (a model call): the kill did not take effect.
        want.extend(next.map(|n| (session.to_owned(), n, KILL_NOT_ENFORCED.to_owned())));
        assert_eq!(decided(&got.decisions), want, "{file}");
        decided_rules.push(got.decisions[0].evidence.reason.clone());
        // Without grants, the same records decide nothing.
        let ungoverned = evaluate(&rules, Vec::new(), &records, &order);
        assert!(ungoverned.decisions.is_empty(), "{file}");
    }
    assert!(
        decided_rules[0].contains("action tool:send_payment is not in the grant"),
        "{decided_rules:?}"
    );
    assert!(
        decided_rules[1].contains("action mcp:github/delete_repository is not in the grant"),
        "{decided_rules:?}"
    );
}

/// The ways of binding and the budget the fixtures above do not reach: a grant bound by an
/// OAuth claim (`bind: {raw.auth.azp: …}`) covers MCP calls that carry no agent object; a call
/// naming a task that has no grant, by an agent that has grants, is outside; a bytes budget
/// ends the session on the record whose bytes first exceed it (summed here from the records).
#[test]
fn oauth_claim_binding_unknown_tasks_and_a_bytes_budget() {
    let rules = pack();
    let mcp = |t: &str, session: &str, tool: &str, extra: &str| {
        format!(
            r#"{{"timestamp":"2024-12-10T09:{t}Z","mcp_session_id":"{session}","mcp_method":"tools/call","mcp_server":"github","tool":"{tool}","client":{{"name":"ledger-sync","version":"0.4.2"}},{extra}"outcome":"allowed"}}"#
        )
    };
    let grant = r#"{"type":"sessionguard.task.grant","time":"2024-12-10T08:59:00Z","agent":"ledger-sync","task":"ls-1207","allow":{"actions":["mcp:github/search_issues"]},"bind":{"raw.auth.azp":"ledger-sync-client"}}"#;
    let azp = r#""auth":{"sub":"svc","azp":"ledger-sync-client"},"#;
    let other = r#""auth":{"sub":"svc","azp":"someone-else"},"#;
    let unknown_task = r#""agent":{"id":"ledger-sync","task":"ls-9999"},"#;
    let records = [
        grant.to_owned(),
        mcp("00:01.000", "s-bound", "search_issues", azp),
        mcp("00:02.000", "s-bound", "merge_pull_request", azp),
        mcp("00:03.000", "s-other", "merge_pull_request", other),
        mcp("00:04.000", "s-task", "search_issues", unknown_task),
    ];
    let lines: Vec<&str> = records.iter().map(String::as_str).collect();
    let order: Vec<usize> = (0..lines.len()).collect();
    let got = evaluate(&rules, Vec::new(), &lines, &order);
    assert!(got.rejects.is_empty(), "{:?}", got.rejects);
    assert_eq!(
        decided(&got.decisions),
        [
            (
                "mcp:github:session:s-bound".to_owned(),
                3,
                "sg.agent.outside_grant".to_owned()
            ),
            (
                "mcp:github:session:s-task".to_owned(),
                5,
                "sg.agent.outside_grant".to_owned()
            ),
        ]
    );
    assert!(got.decisions[1]
        .evidence
        .reason
        .contains("with no task grant in force"));

    // Bytes: report-builder's run of fixtures/agents/budget/attack.jsonl under a grant whose
    // only budget is 120 000 bytes.
    let file = root().join("fixtures/agents/budget/attack.jsonl");
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let budget = 120_000u64;
    let grant = grant::TaskRecord::from_json(
        format!(
            r#"{{"type":"sessionguard.task.grant","time":"2024-12-02T08:59:00Z","agent":"report-builder","task":"rb-3","allow":{{"actions":["s3:*"],"roles":["*"]}},"budget":{{"bytes":{budget}}}}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    let mut sum = 0u64;
    let mut over = None;
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["userIdentity"]["sessionContext"]["sourceIdentity"] != "agent=report-builder,task=rb-3"
        {
            continue;
        }
        sum += v["additionalEventData"]["bytesTransferredOut"]
            .as_u64()
            .unwrap_or(0);
        if sum > budget {
            over = Some((i + 1) as u64);
            break;
        }
    }
    let over = over.expect("the run moves more than the budget");
    let order: Vec<usize> = (0..lines.len()).collect();
    let got = evaluate(&rules, vec![grant], &lines, &order);
    let budget_decisions: Vec<_> = decided(&got.decisions)
        .into_iter()
        .filter(|(_, _, r)| r == "sg.agent.over_budget")
        .collect();
    assert_eq!(budget_decisions.len(), 1, "{:?}", got.decisions);
    assert_eq!(budget_decisions[0].1, over);
    let d = got
        .decisions
        .iter()
        .find(|d| d.rule.id == "sg.agent.over_budget")
        .unwrap();
    assert!(
        d.evidence
            .reason
            .contains("bytes in this session, over the grant's budget of 120000"),
        "{}",
        d.evidence.reason
    );
    // The bytes moved when the budget was passed, against the budget.
    assert_eq!(d.evidence.value, Some(sum as f64));
    assert_eq!(d.evidence.threshold.as_deref(), Some("> 120000"));
}

/// `--tasks` reaches every shard of `replay --threads`: the same decisions, byte for byte.
#[test]
fn sharded_replay_with_tasks_decides_as_one_thread_does() {
    for case in ["budget/attack", "role/attack"] {
        let input = format!("fixtures/agents/{case}.jsonl");
        let tasks = format!("fixtures/agents/{case}.tasks.ndjson");
        let run = |threads: &str| {
            let out = cli::sessionguard(&[
                "replay",
                &input,
                "--rules",
                "rules",
                "--tasks",
                &tasks,
                "--threads",
                threads,
                "--no-progress",
            ]);
            assert_eq!(out.status.code(), Some(0));
            String::from_utf8(out.stdout).unwrap()
        };
        let one = run("1");
        assert!(one.contains("sg.agent."), "{case}: {one}");
        assert_eq!(run("3"), one, "{case}");
    }
}
