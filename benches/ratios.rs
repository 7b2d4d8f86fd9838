//! Ratios that hold on a noisy machine: each pair (a baseline and what is measured against it)
//! runs in interleaved repetitions — baseline, subject, baseline, subject … — and the report is
//! the median of the per-repetition ratios, next to the median rates for context. Load that
//! comes and goes on the machine hits both sides of a repetition alike.
//!
//! `cargo bench --bench ratios` (options: `-- --reps N`, default 21; `-- --only GROUP` runs
//! one group of pairs: `normalize`, `replay` or `lists`).
//!
//! Pairs: normalize per source against the bare typed parse (`support/baseline.rs`), and the
//! full replay of every scenario with the shipped rule pack against the same baseline.
//!
//! `lists/…`: matching every scenario event against a list file of a million entries, against
//! the same rule over the list's first thousand entries (baseline), for `in` and `contains`
//! (and `startswith`, `endswith`), on `principal.name` and `client.user_agent`. Both sides go
//! through what a rule does at load: a list that long is indexed (hash tables, Aho–Corasick),
//! so the ratio should be near 1, not 1/1000. The entries are random host names and a few
//! values the events hold (first in both lists), so that some events match.
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::hint::black_box;
use std::path::Path;

use bumpalo::Bump;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::{Normalizer, Source};
use sessionguard::rule::{EvalCx, Rule, RuleSet};
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
    // `--only lists`: the pairs of one group (`normalize`, `replay`, `lists`).
    let only = args
        .windows(2)
        .find(|w| w[0] == "--only")
        .map(|w| w[1].clone());
    let wanted = |group: &str| only.as_deref().is_none_or(|o| o == group);
    if wanted("normalize") || wanted("replay") {
        pack_pairs(reps, &wanted);
    }
    if wanted("lists") {
        lists(reps);
    }
}

/// Normalize per source, and the replay of every scenario with the shipped pack.
fn pack_pairs(reps: usize, wanted: &dyn Fn(&str) -> bool) {
    let normalizer = Normalizer::default();
    let source_of = |r: &[u8]| {
        let scratch = Bump::new();
        normalizer.normalize(r, &scratch).ok().map(|e| e.source)
    };

    let fixtures = measure::records_under("fixtures/events", |_| true);
    for source in Source::ALL.into_iter().filter(|_| wanted("normalize")) {
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

    if !wanted("replay") {
        return;
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

/// A million-entry list file against its first thousand entries, per modifier.
fn lists(reps: usize) {
    use std::fmt::Write as _;
    use std::time::Instant;

    let normalizer = Normalizer::default();
    let records = measure::scenario_records();
    let scratch = Bump::new();
    let events: Vec<_> = records
        .iter()
        .filter_map(|r| normalizer.normalize(r, &scratch).ok())
        .collect();

    let dir = std::env::temp_dir().join(format!("sg-bench-lists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Values some events hold, so that events match (in both lists): every 50th event's
    // principal name whole, its user agent's first and last eight bytes, and a word inside.
    let mut real: Vec<String> = Vec::new();
    for e in events.iter().step_by(50) {
        real.extend(e.principal.name.as_ref().map(|n| n.as_str().to_owned()));
        if let Some(ua) = e.client.user_agent.as_ref().map(|u| u.as_str().to_owned()) {
            let cut = |i: usize| ua.is_char_boundary(i).then_some(i);
            real.extend(cut(8.min(ua.len())).map(|i| ua[..i].to_owned()));
            real.extend(cut(ua.len().saturating_sub(8)).map(|i| ua[i..].to_owned()));
        }
    }
    real.push("aws-cli".to_owned());
    real.sort();
    real.dedup();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut host = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = 6 + (state % 14) as usize;
        let word: String = (0..len)
            .map(|i| (b'a' + ((state >> (i * 3)) % 26) as u8) as char)
            .collect();
        format!("{word}.{}.example", state % 97)
    };
    let mut entries = real.clone();
    entries.extend((0..1_000_000 - real.len()).map(|_| host()));
    for (name, n) in [("small", 1_000), ("large", 1_000_000)] {
        let mut text = String::new();
        for e in &entries[..n] {
            let _ = writeln!(text, "{e}");
        }
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
    }
    let modifiers = ["in", "contains", "startswith", "endswith"];
    let mut yaml = String::from("lists:\n  small: {file: small.txt}\n  large: {file: large.txt}\n");
    for m in modifiers {
        for list in ["small", "large"] {
            let _ = write!(
                yaml,
                "---\nid: {m}_{list}\ndetection:\n  sel:\n    - {{principal.name|{m}: ${list}}}\n    \
                 - {{client.user_agent|{m}: ${list}}}\n  condition: sel\n"
            );
        }
    }
    std::fs::write(dir.join("rules.yml"), yaml).unwrap();
    let started = Instant::now();
    let rules = RuleSet::load(&[dir.join("rules.yml")]).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "lists: {} rules over 1k and 1M entries loaded in {:.1} s",
        rules.rules.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    for (i, m) in modifiers.iter().enumerate() {
        let (small, large) = (&rules.rules[2 * i], &rules.rules[2 * i + 1]);
        let hits = |rule: &Rule| {
            let mut cx = EvalCx::default();
            events
                .iter()
                .filter(|e| {
                    cx.reset();
                    rule.detection.matches(e, &mut cx)
                })
                .count()
        };
        let (small_hits, large_hits) = (hits(small), hits(large));
        let pass = |rule: &Rule| {
            let mut cx = EvalCx::default();
            let events = &events;
            let rule = rule.detection.clone();
            move || {
                let mut n = 0usize;
                for e in events {
                    cx.reset();
                    n += usize::from(rule.matches(e, &mut cx));
                }
                black_box(n);
            }
        };
        compare(
            &format!("lists/{m} 1M vs 1k"),
            reps,
            events.len(),
            pass(small),
            pass(large),
        );
        println!(
            "  matching events: {small_hits} of {} (1k list), {large_hits} (1M list)",
            events.len()
        );
    }
}
