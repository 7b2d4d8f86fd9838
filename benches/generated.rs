//! Criterion benches on generated traffic (`sessionguard::gen`: CloudTrail, Okta, Kubernetes
//! and GitHub in their vendor formats, many concurrent sessions, injected attacks), beside the
//! fixture-based `normalize` and `engine` benches. Each group has the bare typed-parse baseline
//! of the same records (`support/baseline.rs`), so `scripts/bench-ratio.sh` prints ratios:
//!
//! - `generated/normalize/<source>`: parse per source;
//! - `generated/engine`: session state update alone (no rules), rule evaluation with the full
//!   pack on events normalized beforehand, and end-to-end replay (normalize → engine);
//! - `scenarios/engine`: the same three on the real-format scenario fixtures
//!   (`fixtures/scenarios/`, six sources, attacks and benign lookalikes).
//!
//! `cargo bench --bench generated`, then `scripts/bench-ratio.sh generated`.

use std::hint::black_box;
use std::path::Path;

use bumpalo::Bump;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::{Event, Normalizer, Source};
use sessionguard::gen::{generate, Config};
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/measure.rs"]
mod measure;

/// 20 000 generated records with their sources, attacks included.
fn generated() -> Vec<(Source, Vec<u8>)> {
    let cfg = Config {
        events: 20_000,
        sessions: 2_000,
        attacks: Some(10),
        rate: 10.0,
        ..Config::default()
    };
    let mut bytes = Vec::new();
    let mut sources = Vec::new();
    let mut observe = |r: &sessionguard::gen::Record<'_>| sources.push(r.source);
    generate(&cfg, &mut bytes, Some(&mut observe)).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .zip(sources)
        .map(|(line, source)| (source, line.to_vec()))
        .collect()
}

fn origin(line: usize) -> Origin {
    Origin::File {
        file: 0,
        line: line as u64,
    }
}

fn bench_normalize(c: &mut Criterion) {
    let records = generated();
    let normalizer = Normalizer::default();
    for source in Source::ALL {
        let mine: Vec<&[u8]> = records
            .iter()
            .filter(|(s, _)| *s == source)
            .map(|(_, r)| r.as_slice())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut group = c.benchmark_group(format!("generated/normalize/{source}"));
        group.throughput(Throughput::Elements(mine.len() as u64));
        group.bench_function("baseline_serde_typed", |b| {
            b.iter(|| {
                for r in &mine {
                    black_box(baseline::baseline(source, r));
                }
            })
        });
        group.bench_function("sessionguard", |b| {
            let mut scratch = Bump::new();
            b.iter(|| {
                for r in &mine {
                    scratch.reset();
                    let _ = black_box(normalizer.normalize(r, &scratch));
                }
            })
        });
        group.finish();
    }
}

/// The scenario fixtures in path order, with their sources.
fn scenarios() -> Vec<(Source, Vec<u8>)> {
    let normalizer = Normalizer::default();
    measure::scenario_records()
        .into_iter()
        .map(|r| {
            let scratch = Bump::new();
            let source = normalizer.normalize(&r, &scratch).unwrap().source;
            (source, r)
        })
        .collect()
}

fn bench_engine(c: &mut Criterion) {
    engine_group(c, "generated/engine", generated());
    engine_group(c, "scenarios/engine", scenarios());
}

/// State update alone, rule evaluation alone and end-to-end replay of `records`, beside the
/// baseline parse of the same records.
fn engine_group(c: &mut Criterion, name: &str, records: Vec<(Source, Vec<u8>)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let normalizer = Normalizer::default();
    let arena = Bump::new();
    let events: Vec<Event<'_>> = records
        .iter()
        .map(|(_, r)| normalizer.normalize(r, &arena).unwrap())
        .collect();
    let pack = RuleSet::load(&[root.join("rules")]).unwrap();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("baseline_serde_typed", |b| {
        b.iter(|| {
            for (source, r) in &records {
                black_box(baseline::baseline(*source, r));
            }
        })
    });
    let mut decisions = Vec::new();
    let mut bare = Engine::new(RuleSet::default(), EngineConfig::default());
    group.bench_function("state_update_no_rules", |b| {
        b.iter(|| {
            bare.reset();
            for (line, event) in events.iter().enumerate() {
                bare.process(event, origin(line), &mut decisions);
            }
            black_box(bare.session_count());
        })
    });
    let mut engine = Engine::new(pack, EngineConfig::default());
    group.bench_function("rules_full_pack_normalized", |b| {
        b.iter(|| {
            engine.reset();
            decisions.clear();
            for (line, event) in events.iter().enumerate() {
                engine.process(event, origin(line), &mut decisions);
            }
            black_box(decisions.len());
        })
    });
    group.bench_function("replay_full_pack", |b| {
        let mut scratch = Bump::new();
        b.iter(|| {
            engine.reset();
            decisions.clear();
            for (line, (_, r)) in records.iter().enumerate() {
                scratch.reset();
                if let Ok(event) = normalizer.normalize(r, &scratch) {
                    engine.process(&event, origin(line), &mut decisions);
                }
            }
            black_box(decisions.len());
        })
    });
    group.finish();
}

criterion_group!(benches, bench_normalize, bench_engine);
criterion_main!(benches);
