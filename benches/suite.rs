//! The in-process figures of `scripts/bench.sh`, on one input file, in one run:
//!
//! - (a) `B_parse` — the bare serde_json typed borrowed parse of every record
//!   (`support/baseline.rs`) — against replay with the full shipped pack (normalize → engine,
//!   from an empty engine, records in memory); ratio replay/B_parse;
//! - (b) the replay of the file on 2 engine threads sharded by session key
//!   (`replay_sharded`) against 1 (`replay`); ratio 2-thread/1-thread;
//! - (e) in-process latency: per record, from the start of its normalize to the end of its
//!   evaluation (decisions taken), exact quantiles over every record of one pass.
//!
//! Ratios are medians of per-repetition ratios over interleaved repetitions (baseline,
//! subject, baseline, subject…), so load that comes and goes hits both sides alike.
//!
//! `cargo bench --bench suite -- --input FILE_OR_DIR [--reps N]` (default 15). Without `--bench` in
//! its arguments (`cargo test --all-targets` runs it) it returns at once.
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bumpalo::Bump;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::{Normalizer, Source};
use sessionguard::replay::{replay, replay_sharded, ReplayOptions};
use sessionguard::rule::RuleSet;
use sessionguard::source::file::{self, Item};
use sessionguard::source::Origin;

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/measure.rs"]
mod measure;

/// The `q` quantile of a non-empty sorted list of nanoseconds, in microseconds.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn latency_line(label: &str, mut ns: Vec<u64>) -> String {
    if ns.is_empty() {
        return format!("{label}: none (0 records)");
    }
    ns.sort_unstable();
    format!(
        "{label}: p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs ({} records)",
        quantile(&ns, 0.5),
        quantile(&ns, 0.99),
        quantile(&ns, 0.999),
        quantile(&ns, 1.0),
        ns.len()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let reps: usize = flag("--reps").and_then(|r| r.parse().ok()).unwrap_or(15);
    let Some(input) = flag("--input").map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench suite -- --input FILE_OR_DIR [--reps N]");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = Arc::new(RuleSet::load(&[root.join("rules")]).unwrap());
    let normalizer = Normalizer::default();

    // The records in memory, each with its source (the baseline parses with that source's
    // struct); records that do not normalize or that the baseline cannot read are left out of
    // (a) and (e), so both sides do the same work.
    let mut records: Vec<(Source, Vec<u8>)> = Vec::new();
    let mut skipped = 0usize;
    for path in file::expand_paths(std::slice::from_ref(&input)).unwrap() {
        file::for_each_record(file::open(&path).unwrap(), &mut |item| {
            if let Item::Record { bytes, .. } = item {
                let scratch = Bump::new();
                let source = normalizer.normalize(bytes, &scratch).ok().map(|e| e.source);
                match source {
                    Some(source) if baseline::baseline(source, bytes) => {
                        records.push((source, bytes.to_vec()))
                    }
                    _ => skipped += 1,
                }
            }
        })
        .unwrap();
    }
    let bytes: usize = records.iter().map(|(_, r)| r.len()).sum();
    println!(
        "input {}: {} records ({} skipped), mean {} bytes",
        input.display(),
        records.len(),
        skipped,
        bytes / records.len().max(1)
    );

    // (a)
    let mut engine = Engine::with_shared_rules(rules.clone(), EngineConfig::default());
    let mut decisions = Vec::new();
    let mut scratch = Bump::new();
    let m = measure::interleaved(
        reps,
        records.len(),
        200,
        || {
            for (source, r) in &records {
                black_box(baseline::baseline(*source, r));
            }
        },
        || {
            engine.reset();
            decisions.clear();
            for (line, (_, r)) in records.iter().enumerate() {
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
    println!(
        "(a) parse floor vs replay (full pack, in memory): B_parse {:.0}/s  replay {:.0}/s  \
         ratio {:.2} (median of {reps}; {} decisions)",
        m.base,
        m.subject,
        m.ratio,
        decisions.len()
    );

    // (b)
    let options = ReplayOptions::default();
    let paths = [input.clone()];
    let config = EngineConfig::default();
    let (mut one_decisions, mut two_decisions) = (0u64, 0u64);
    let m2 = measure::interleaved(
        reps,
        records.len() + skipped,
        200,
        || {
            let mut engine = Engine::with_shared_rules(rules.clone(), config.clone());
            let s = replay(
                &paths,
                &mut engine,
                &options,
                &mut |_| Ok(()),
                &mut |_, _, _, _| Ok(()),
            )
            .unwrap();
            one_decisions = s.decisions();
        },
        || {
            let s = replay_sharded(
                &paths,
                rules.clone(),
                config.clone(),
                2,
                &options,
                &mut |_| Ok(()),
                &mut |_, _, _, _| Ok(()),
            )
            .unwrap();
            two_decisions = s.decisions();
        },
    );
    assert_eq!(
        one_decisions, two_decisions,
        "sharded replay decided otherwise"
    );
    println!(
        "(b) replay of the file, 2 threads vs 1: 1-thread {:.0}/s  2-thread {:.0}/s  ratio \
         {:.2} (median of {reps}; {} cores)",
        m2.base,
        m2.subject,
        m2.ratio,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // (e)
    engine.reset();
    decisions.clear();
    let mut all = Vec::with_capacity(records.len());
    let mut deciding = Vec::new();
    for (line, (_, r)) in records.iter().enumerate() {
        let start = Instant::now();
        scratch.reset();
        let before = decisions.len();
        if let Ok(event) = normalizer.normalize(r, &scratch) {
            let origin = Origin::File {
                file: 0,
                line: line as u64,
            };
            engine.process(&event, origin, &mut decisions);
        }
        let ns = start.elapsed().as_nanos() as u64;
        all.push(ns);
        if decisions.len() > before {
            deciding.push(ns);
        }
    }
    println!("{}", latency_line("    in-process, every record", all));
    println!(
        "(e) in-process replay latency, {}",
        latency_line("records that decided", deciding)
    );
}
