//! `sessionguard run --tasks-topic` against a real Kafka-compatible broker over TCP (tansu,
//! started by `scripts/kafka.sh`; the address from `SESSIONGUARD_TEST_BROKERS`), driving the
//! real binary: a task grant an orchestrator publishes on the tasks topic while `run` is running
//! takes effect for the next record of the agent's session (docs/agents.md).
//!
//! `#[ignore]`d like tests/kafka_broker.rs: `scripts/test.sh` starts the broker and runs it
//! with `--ignored`; asked for without a broker, it fails.
#![cfg(feature = "kafka")]
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use serde_json::Value;

#[path = "support/kafka.rs"]
mod support;
use support::*;

/// The `ledger-sync` run of fixtures/agents/outside/attack.jsonl (the broker's AssumeRole that
/// issues it, then the run's own records), in file order, and its grant.
fn ledger_run() -> (Vec<String>, String) {
    let text =
        std::fs::read_to_string(root().join("fixtures/agents/outside/attack.jsonl")).unwrap();
    let records: Vec<String> = text
        .lines()
        .filter(|l| l.contains("agent=ledger-sync,task=ls-1207"))
        .map(str::to_owned)
        .collect();
    let tasks = std::fs::read_to_string(root().join("fixtures/agents/outside/attack.tasks.ndjson"))
        .unwrap();
    let grant = tasks
        .lines()
        .find(|l| l.contains("\"ledger-sync\"") && l.contains("sessionguard.task.grant"))
        .expect("the ledger-sync grant")
        .to_owned();
    (records, grant)
}

fn out(value: &str) -> Out {
    Out {
        partition: Some(0),
        key: None,
        value: value.as_bytes().to_vec(),
    }
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one, or set SESSIONGUARD_TEST_BROKERS and pass --ignored"]
fn a_grant_published_while_run_is_running_takes_effect_for_the_next_record() {
    let brokers = brokers();
    let _serial = serial();
    let (records, grant) = ledger_run();
    // The run reads hr-payroll twice at the end: the first read arrives before the grant, the
    // second after it.
    let payroll: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.contains("\"bucketName\":\"hr-payroll\""))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(payroll.len(), 2, "two hr-payroll reads in the fixture");
    assert_eq!(
        payroll[1],
        records.len() - 1,
        "the second is the run's last record"
    );

    let topics = Topics::create(&brokers, "tasks", 1, 1);
    let tasks_topic = unique("tasks-grants");
    create_topics(&brokers, &[(&tasks_topic, 1)]);
    let group = unique("tasks");
    let args: Vec<String> = [
        "run",
        "--brokers",
        &brokers,
        "--group",
        &group,
        "--topics",
        &topics.inputs[0],
        "--actions-topic",
        &topics.actions,
        "--dead-letter-topic",
        &topics.dead_letters,
        "--progress-topic",
        &topics.progress,
        "--tasks-topic",
        &tasks_topic,
        "--rules",
        "rules",
        "-X",
        "session.timeout.ms=6000",
        "-X",
        "heartbeat.interval.ms=500",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut engine = Proc::spawn("run-tasks", &args);
    wait_until(
        Duration::from_secs(60),
        "the input partition assigned",
        || !engine.logged("partition_assigned").is_empty(),
    );

    // Everything up to and including the first hr-payroll read, before any grant: the agent is
    // not governed yet, so nothing is decided, and every record is processed (committed).
    let before: Vec<Out> = records[..records.len() - 1]
        .iter()
        .map(|r| out(r))
        .collect();
    produce(
        &brokers,
        &topics.inputs[0],
        &before,
        Duration::ZERO,
        &AtomicUsize::new(0),
    );
    let end = before.len() as i64;
    wait_until(
        Duration::from_secs(60),
        "the records before the grant committed",
        || {
            try_committed(&brokers, &group, &topics.inputs[0])
                .ok()
                .is_some_and(|c| c.get(&0).copied().unwrap_or(0) >= end)
        },
    );
    assert!(
        decisions_on(&brokers, &topics.actions).is_empty(),
        "decided before any grant\n{}",
        engine.log_tail()
    );

    // The orchestrator grants the task while run is running.
    produce(
        &brokers,
        &tasks_topic,
        &[out(&grant)],
        Duration::ZERO,
        &AtomicUsize::new(0),
    );
    wait_until(Duration::from_secs(30), "the grant applied", || {
        engine
            .logged("task_record_applied")
            .iter()
            .any(|e| e["agent"] == "ledger-sync" && e["task"] == "ls-1207")
    });

    // The run's next record: its second hr-payroll read, outside the grant.
    produce(
        &brokers,
        &topics.inputs[0],
        &[out(records.last().unwrap())],
        Duration::ZERO,
        &AtomicUsize::new(0),
    );
    let mut decisions: Vec<Value> = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "a decision on the actions topic",
        || {
            decisions = decisions_on(&brokers, &topics.actions);
            !decisions.is_empty()
        },
    );
    engine.terminate();
    let decisions = decisions_on(&brokers, &topics.actions);
    assert_eq!(decisions.len(), 1, "{decisions:#?}\n{}", engine.log_tail());
    let d = &decisions[0];
    assert_eq!(d["rule"]["id"], "sg.agent.outside_grant", "{d:#}");
    let run_key = records
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).unwrap())
        .find(|r| r["eventName"] == "GetObject")
        .map(|r| {
            format!(
                "aws:{}:sts:{}",
                r["userIdentity"]["accountId"].as_str().unwrap(),
                r["userIdentity"]["accessKeyId"].as_str().unwrap()
            )
        })
        .unwrap();
    assert_eq!(d["session"]["key"], run_key.as_str());
    let evidence = d["evidence"]["events"].as_array().unwrap();
    let offsets: Vec<i64> = evidence
        .iter()
        .map(|e| e["origin"]["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        [end],
        "decided on the record after the grant, not on the read before it"
    );
    assert!(
        d["evidence"]["reason"]
            .as_str()
            .unwrap()
            .contains("hr-payroll/2024/11/salaries-us.csv is not in the grant"),
        "{d:#}"
    );
    assert!(read_topic(&brokers, &topics.dead_letters).is_empty());
    note("a grant published on the tasks topic applied to the agent's next record");
}
