//! `replay --threads N`: engine shards by session key give the decisions of one engine, byte
//! for byte and in the same order — over the scenario fixtures (chained AWS sessions, timers
//! that fire while other sessions move time, kill_not_enforced) and over generated traffic with
//! injected attacks and thousands of concurrent sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::gen::{generate, Config};
use sessionguard::replay::{replay, replay_sharded, ReplayOptions};
use sessionguard::rule::RuleSet;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Keys of the sessions in role chains: those that issued a session, and those issued.
fn chain_members(records: &[String]) -> std::collections::HashSet<String> {
    let normalizer = sessionguard::event::Normalizer::default();
    let mut keys = std::collections::HashSet::new();
    for r in records {
        let scratch = bumpalo::Bump::new();
        let Ok(event) = normalizer.normalize(r.as_bytes(), &scratch) else {
            continue;
        };
        if let Some(child) = event.lineage.as_ref().and_then(|l| l.child.as_ref()) {
            keys.insert(child.to_string());
            keys.insert(event.session.key.to_string());
        }
    }
    keys
}

/// The shipped pack's decisions over `paths`, one JSON line each, with `threads` engines.
fn decisions(paths: &[PathBuf], threads: usize) -> String {
    decisions_and_rejects(paths, threads).0
}

/// Decisions, one JSON line each, and rejects, one `file:line reason` line each.
fn decisions_and_rejects(paths: &[PathBuf], threads: usize) -> (String, String) {
    let rules = RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let mut rejects = String::new();
    let mut on_decision = |d: &sessionguard::decision::Decision| {
        out.push_str(&serde_json::to_string(d).unwrap());
        out.push('\n');
        Ok(())
    };
    let mut on_reject = |file: &str, line: u64, r: &sessionguard::event::Reject, _: &[u8]| {
        rejects.push_str(&format!("{file}:{line} {}\n", r.reason));
        Ok(())
    };
    let options = ReplayOptions::default();
    let summary = if threads == 1 {
        let mut engine = Engine::new(rules, EngineConfig::default());
        replay(
            paths,
            &mut engine,
            &options,
            &mut on_decision,
            &mut on_reject,
        )
    } else {
        replay_sharded(
            paths,
            Arc::new(rules),
            EngineConfig::default(),
            threads,
            &options,
            &mut on_decision,
            &mut on_reject,
        )
    }
    .unwrap();
    assert_eq!(summary.decisions() as usize, out.lines().count());
    (out, rejects)
}

#[test]
fn shards_give_the_scenario_decisions_of_one_engine() {
    let paths = [root().join("fixtures/scenarios")];
    let one = decisions(&paths, 1);
    assert!(one.lines().count() >= 45, "{one}");
    for threads in [2, 3, 4] {
        assert!(
            decisions(&paths, threads) == one,
            "{threads} threads differ from one over fixtures/scenarios"
        );
    }
}

#[test]
fn shards_give_the_decisions_of_one_engine_on_generated_attacks() {
    let cfg = Config {
        events: 30_000,
        sessions: 3_000,
        attacks: Some(21),
        rate: 10.0,
        seed: 7,
        ..Config::default()
    };
    let mut bytes = Vec::new();
    let (_, truth) = generate(&cfg, &mut bytes, None).unwrap();
    let path = std::env::temp_dir().join(format!("sg-sharded-{}.jsonl", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let one = decisions(std::slice::from_ref(&path), 1);
    let two = decisions(std::slice::from_ref(&path), 2);
    let four = decisions(std::slice::from_ref(&path), 4);
    let _ = std::fs::remove_file(&path);
    assert!(
        one.lines().count() >= truth.len(),
        "{} decisions for {} attacks",
        one.lines().count(),
        truth.len()
    );
    assert!(two == one, "2 threads differ from one");
    assert!(four == one, "4 threads differ from one");
}

#[test]
fn shards_give_the_decisions_and_rejects_of_one_engine_on_delivery_order() {
    // The scenarios shuffled within 64-record blocks (records up to minutes apart trade
    // places), with a record dated a year ahead and one older than its session's grace.
    let mut records: Vec<String> = Vec::new();
    for path in
        sessionguard::source::file::expand_paths(&[root().join("fixtures/scenarios")]).unwrap()
    {
        let text = std::fs::read_to_string(&path).unwrap();
        records.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for block in records.chunks_mut(64) {
        for i in (1..block.len()).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            block.swap(i, (state >> 33) as usize % (i + 1));
        }
    }
    let future = records[10].replacen("\"20", "\"30", 1);
    records.insert(11, future);
    let path =
        std::env::temp_dir().join(format!("sg-sharded-delivery-{}.jsonl", std::process::id()));
    std::fs::write(&path, records.join("\n")).unwrap();
    let one = decisions_and_rejects(std::slice::from_ref(&path), 1);
    let three = decisions_and_rejects(std::slice::from_ref(&path), 3);
    let _ = std::fs::remove_file(&path);
    assert!(one.0.lines().count() >= 30, "{}", one.0);
    assert!(
        one.1.contains("future"),
        "the record dated ahead is rejected: {}",
        one.1
    );
    assert_eq!(three.1, one.1, "3 threads reject otherwise than one");
    // Role chains are the known exception (docs/decisions.md, "Threads"): a chained session
    // whose records arrive before the record that issued it is linked late by one engine, but
    // not when it lives on another shard than its parent. Every other decision is the same.
    let chained = chain_members(&records);
    let outside = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| {
                let d: serde_json::Value = serde_json::from_str(l).unwrap();
                !chained.contains(d["session"]["key"].as_str().unwrap())
            })
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (outside(&one.0), outside(&three.0));
    assert!(a.len() >= 20, "{} decisions outside role chains", a.len());
    assert!(
        a == b,
        "3 threads decide otherwise than one on delivery order"
    );
}
