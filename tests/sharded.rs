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

/// The shipped pack's decisions over `paths`, one JSON line each, with `threads` engines.
fn decisions(paths: &[PathBuf], threads: usize) -> String {
    let rules = RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let mut on_decision = |d: &sessionguard::decision::Decision| {
        out.push_str(&serde_json::to_string(d).unwrap());
        out.push('\n');
        Ok(())
    };
    let mut on_reject = |_: &str, _: u64, _: &sessionguard::event::Reject, _: &[u8]| Ok(());
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
    out
}

#[test]
fn shards_give_the_scenario_decisions_of_one_engine() {
    let paths = [root().join("fixtures/scenarios")];
    let one = decisions(&paths, 1);
    assert!(one.lines().count() >= 60, "{one}");
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
fn shards_refuse_allowed_lateness() {
    let rules = RuleSet::load(&[root().join("rules")]).unwrap();
    let err = replay_sharded(
        &[root().join("fixtures/scenarios")],
        Arc::new(rules),
        EngineConfig::default(),
        2,
        &ReplayOptions {
            allowed_lateness_ms: 1000,
            ..ReplayOptions::default()
        },
        &mut |_| Ok(()),
        &mut |_, _, _, _| Ok(()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("--allowed-lateness"), "{err}");
}
