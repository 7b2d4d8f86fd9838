//! End-to-end replay throughput with the full shipped rule pack, next to the bare typed-parse
//! baseline of the same records, in one run.
//!
//! Input: every scenario fixture (`fixtures/scenarios/**/*.jsonl`, 759 records of six sources,
//! many concurrent sessions, attacks and benign lookalikes), read into memory in path order —
//! event time only moves forward across them. Each iteration replays them all through
//! normalize → engine (the `replay` path without file I/O) from an empty engine.
//!
//! `cargo bench --bench engine`, then `scripts/bench-ratio.sh replay` for the ratio.

use std::hint::black_box;
use std::path::Path;

use bumpalo::Bump;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::Normalizer;
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/measure.rs"]
mod measure;

fn bench_replay(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let records = measure::scenario_records();
    let normalizer = Normalizer::default();
    let sources: Vec<_> = records
        .iter()
        .map(|r| {
            let scratch = Bump::new();
            normalizer.normalize(r, &scratch).map(|e| e.source).unwrap()
        })
        .collect();
    let rules = RuleSet::load(&[root.join("rules")]).unwrap();
    let rule_count = rules.rules.len();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut decisions = Vec::new();
    // One pass to report what the input does.
    replay_all(&mut engine, &normalizer, &records, &mut decisions);
    eprintln!(
        "replay input: {} records, {} sessions, {} decisions, {rule_count} rules",
        records.len(),
        engine.stats().sessions_created,
        engine.stats().decisions()
    );

    let mut group = c.benchmark_group("replay/scenarios");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("baseline_serde_typed", |b| {
        b.iter(|| {
            for (r, source) in records.iter().zip(&sources) {
                black_box(baseline::baseline(*source, r));
            }
        })
    });
    group.bench_function("normalize_only", |b| {
        let mut scratch = Bump::new();
        b.iter(|| {
            for r in &records {
                scratch.reset();
                let _ = black_box(normalizer.normalize(r, &scratch));
            }
        })
    });
    group.bench_function("replay_full_pack", |b| {
        b.iter(|| {
            replay_all(&mut engine, &normalizer, &records, &mut decisions);
            black_box(decisions.len())
        })
    });
    group.finish();
}

fn replay_all(
    engine: &mut Engine,
    normalizer: &Normalizer,
    records: &[Vec<u8>],
    decisions: &mut Vec<sessionguard::decision::Decision>,
) {
    engine.reset();
    decisions.clear();
    let mut scratch = Bump::new();
    for (line, r) in records.iter().enumerate() {
        scratch.reset();
        if let Ok(event) = normalizer.normalize(r, &scratch) {
            let origin = Origin::File {
                file: 0,
                line: line as u64,
            };
            engine.process(&event, origin, decisions);
        }
    }
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
