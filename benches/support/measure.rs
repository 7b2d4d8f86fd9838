//! What the benches share besides the baseline: reading fixture records, and interleaved
//! repetitions reported as medians (per-repetition ratios hold on a noisy machine, absolute
//! rates do not). Each bench includes it with `#[path]` and uses a part of it.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods, reason = "benchmarks time things")]

use std::path::Path;
use std::time::Instant;

use sessionguard::source::file::{self, Item};

/// Every record of the files under `dir` (relative to the crate, or absolute) that `keep`
/// selects, in `replay`'s path order.
pub fn records_under(dir: &str, keep: impl Fn(&Path) -> bool) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    for path in file::expand_paths(&[root]).unwrap() {
        if !keep(&path) {
            continue;
        }
        file::for_each_record(file::open(&path).unwrap(), &mut |item| {
            if let Item::Record { bytes, .. } = item {
                out.push(bytes.to_vec());
            }
        })
        .unwrap();
    }
    out
}

/// The scenario fixtures (`fixtures/scenarios/*.jsonl`).
pub fn scenario_records() -> Vec<Vec<u8>> {
    records_under("fixtures/scenarios", |p| {
        p.extension().is_some_and(|e| e == "jsonl")
    })
}

/// Events per second of `f` (one pass over `events` records), repeated for at least
/// `min_ms` so that small inputs are timed over many passes.
pub fn rate(events: usize, min_ms: u128, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut passes = 0u64;
    while passes == 0 || start.elapsed().as_millis() < min_ms {
        f();
        passes += 1;
    }
    (events as u64 * passes) as f64 / start.elapsed().as_secs_f64()
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Medians over interleaved repetitions of a baseline and a subject.
pub struct Interleaved {
    pub base: f64,
    pub subject: f64,
    pub ratio: f64,
}

/// `reps` repetitions of base then subject, each timed for at least `min_ms`.
pub fn interleaved(
    reps: usize,
    events: usize,
    min_ms: u128,
    mut base: impl FnMut(),
    mut subject: impl FnMut(),
) -> Interleaved {
    let (mut ratios, mut bs, mut ss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let b = rate(events, min_ms, &mut base);
        let s = rate(events, min_ms, &mut subject);
        ratios.push(s / b);
        bs.push(b);
        ss.push(s);
    }
    Interleaved {
        base: median(bs),
        subject: median(ss),
        ratio: median(ratios),
    }
}
