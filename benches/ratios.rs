//! Ratios that hold on a noisy machine: each pair (a baseline and what is measured against it)
//! runs in interleaved repetitions — baseline, subject, baseline, subject … — and the report is
//! the median of the per-repetition ratios, next to the median rates for context. Load that
//! comes and goes on the machine hits both sides of a repetition alike.
//!
//! `cargo bench --bench ratios` (options: `-- --reps N`, default 21).
//!
//! Pairs: normalize per source against the bare typed parse (`support/baseline.rs`), and the
//! full replay of every scenario with the shipped rule pack against the same baseline.

use std::hint::black_box;
use std::path::Path;

use bumpalo::Bump;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::{Normalizer, Source};
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/measure.rs"]
mod measure;

fn compare(name: &str, reps: usize, events: usize, base: impl FnMut(), subject: impl FnMut()) {
    let m = measure::interleaved(reps, events, 150, base, subject);
    println!(
        "{name:<28} baseline {:>10.0}/s  subject {:>10.0}/s  ratio {:.2} (median of {reps})",
        m.base, m.subject, m.ratio
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a measurement has nothing to check there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let reps = args
        .windows(2)
        .find(|w| w[0] == "--reps")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(21);
    let normalizer = Normalizer::default();
    let source_of = |r: &[u8]| {
        let scratch = Bump::new();
        normalizer.normalize(r, &scratch).ok().map(|e| e.source)
    };

    let fixtures = measure::records_under("fixtures/events", |_| true);
    for source in Source::ALL {
        let records: Vec<&Vec<u8>> = fixtures
            .iter()
            .filter(|r| source_of(r) == Some(source) && baseline::baseline(source, r))
            .collect();
        if records.is_empty() {
            continue;
        }
        let mut scratch = Bump::new();
        compare(
            &format!("normalize/{source}"),
            reps,
            records.len(),
            || {
                for r in &records {
                    black_box(baseline::baseline(source, r));
                }
            },
            || {
                for r in &records {
                    scratch.reset();
                    let _ = black_box(normalizer.normalize(r, &scratch));
                }
            },
        );
    }

    let scenarios = measure::scenario_records();
    let sources: Vec<Source> = scenarios.iter().filter_map(|r| source_of(r)).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = RuleSet::load(&[root.join("rules")]).unwrap();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut decisions = Vec::new();
    let mut scratch = Bump::new();
    compare(
        "replay/scenarios+full pack",
        reps,
        scenarios.len(),
        || {
            for (r, source) in scenarios.iter().zip(&sources) {
                black_box(baseline::baseline(*source, r));
            }
        },
        || {
            engine.reset();
            decisions.clear();
            for (line, r) in scenarios.iter().enumerate() {
                scratch.reset();
                if let Ok(event) = normalizer.normalize(r, &scratch) {
                    let origin = Origin::File {
                        file: 0,
                        line: line as u64,
                    };
                    engine.process(&event, origin, &mut decisions);
                }
            }
            black_box(decisions.len());
        },
    );
}
