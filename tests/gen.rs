//! `sessionguard gen` checked against sessionguard itself, at small volumes:
//!
//! - every generated record normalizes, to the source and session key the generator meant and
//!   at the time it meant, and event time never goes backwards (one record per line, and in
//!   CloudTrail S3 envelopes);
//! - the same seed gives byte-identical output, another seed another output;
//! - replaying a generated file through the shipped rule pack decides on every injected attack
//!   — the right session, the right rule, on the truth's line — and on nothing else but
//!   `sessionguard.kill_not_enforced` on attacked sessions that keep acting after their kill,
//!   on the truth's `after_line`;
//! - `--sources` restricts the mix, attacks included.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use bumpalo::Bump;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::{Normalizer, Source};
use sessionguard::gen::{generate, Config, Record, Truth};
use sessionguard::replay::{replay, ReplayOptions};
use sessionguard::rule::RuleSet;
use sessionguard::source::file::{self, Item};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A small run that still covers every attack case and variant (21 of them with all four
/// sources): ~28 minutes of event time.
fn small(seed: u64) -> Config {
    Config {
        events: 5_000,
        sessions: 300,
        attacks: Some(21),
        rate: 3.0,
        seed,
        ..Config::default()
    }
}

/// What the generator said it wrote: (line, source, session key, time).
type Meant = Vec<(u64, Source, String, i64)>;

fn run(cfg: &Config) -> (Vec<u8>, Vec<Truth>, Meant) {
    let mut out = Vec::new();
    let mut meant = Vec::new();
    let mut observe =
        |r: &Record<'_>| meant.push((r.line, r.source, r.session.to_owned(), r.time_ms));
    let (summary, truth) =
        generate(cfg, &mut out, Some(&mut observe)).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(summary.records, cfg.events);
    assert_eq!(meant.len() as u64, cfg.events);
    (out, truth, meant)
}

/// Normalizes every record of `bytes` and compares it with what the generator meant.
fn check_normalizes(bytes: &[u8], meant: &Meant) {
    let normalizer = Normalizer::default();
    let mut scratch = Bump::new();
    let mut n = 0usize;
    let mut last_time = i64::MIN;
    let mut failures = Vec::new();
    file::for_each_record(Cursor::new(bytes), &mut |item| {
        let (record, line) = match item {
            Item::Record { bytes, line } => (bytes, line),
            Item::Broken { line, reject } => {
                failures.push(format!("line {line}: broken: {reject}"));
                return;
            }
        };
        scratch.reset();
        let Some((want_line, source, key, time)) = meant.get(n) else {
            failures.push(format!("line {line}: more records than generated"));
            return;
        };
        n += 1;
        match normalizer.normalize(record, &scratch) {
            Err(reject) => failures.push(format!(
                "line {line}: rejected ({reject}): {}",
                String::from_utf8_lossy(&record[..record.len().min(300)])
            )),
            Ok(event) => {
                let got = event.session.key.to_string();
                if line != *want_line || event.source != *source || got != *key {
                    failures.push(format!(
                        "line {line}: {} {got}, meant line {want_line} {source} {key}",
                        event.source
                    ));
                }
                let t = event.time.millis();
                if t != *time {
                    failures.push(format!("line {line}: time {t}, meant {time}"));
                }
                if t < last_time {
                    failures.push(format!(
                        "line {line}: time goes backwards ({t} < {last_time})"
                    ));
                }
                last_time = last_time.max(t);
            }
        }
    })
    .unwrap();
    assert_eq!(n, meant.len(), "records read");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn every_record_normalizes_to_its_source_session_and_time() {
    let (bytes, truth, meant) = run(&small(11));
    assert_eq!(truth.len(), 21);
    check_normalizes(&bytes, &meant);
    let lines = bytes.iter().filter(|b| **b == b'\n').count();
    assert_eq!(lines, 5_000, "one record per line");
    let mut per_source: BTreeMap<Source, usize> = BTreeMap::new();
    for (_, source, _, _) in &meant {
        *per_source.entry(*source).or_default() += 1;
    }
    assert_eq!(per_source.len(), 4, "all four sources: {per_source:?}");
    let sessions: std::collections::BTreeSet<&str> = meant.iter().map(|m| m.2.as_str()).collect();
    assert!(
        sessions.len() > 300,
        "sessions end and new ones start: {}",
        sessions.len()
    );
}

#[test]
fn cloudtrail_envelopes_normalize_too() {
    let cfg = Config {
        envelope: 50,
        ..small(12)
    };
    let (bytes, truth, meant) = run(&cfg);
    check_normalizes(&bytes, &meant);
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    assert!(
        lines < cfg.events,
        "CloudTrail records share envelope lines"
    );
    assert!(truth.iter().all(|t| t.line <= lines));
    assert!(bytes.starts_with(b"{\"Records\":[{\"eventVersion\""));
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = Config {
        events: 3_000,
        attacks: Some(5),
        rate: 2.0,
        ..small(7)
    };
    let once = run(&cfg);
    let again = run(&cfg);
    assert!(once.0 == again.0, "same seed, same bytes");
    assert_eq!(
        once.1.iter().map(Truth::to_json).collect::<Vec<_>>(),
        again.1.iter().map(Truth::to_json).collect::<Vec<_>>()
    );
    let other = run(&Config {
        seed: 8,
        ..cfg.clone()
    });
    assert!(once.0 != other.0, "another seed, other bytes");
    // The default seed is fixed.
    let a = generate(
        &Config {
            events: 500,
            ..Config::default()
        },
        &mut Vec::new(),
        None,
    )
    .unwrap();
    let mut x = Vec::new();
    let mut y = Vec::new();
    generate(
        &Config {
            events: 500,
            ..Config::default()
        },
        &mut x,
        None,
    )
    .unwrap();
    generate(
        &Config {
            events: 500,
            ..Config::default()
        },
        &mut y,
        None,
    )
    .unwrap();
    assert!(x == y && a.1.is_empty());
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Decisions of the shipped pack over `bytes`: (session, rule, triggering line).
fn decisions(bytes: &[u8], name: &str) -> Vec<(String, String, u64)> {
    let path =
        TempFile(std::env::temp_dir().join(format!("sg-gen-{name}-{}.jsonl", std::process::id())));
    std::fs::write(&path.0, bytes).unwrap();
    let rules = RuleSet::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut got = Vec::new();
    let summary = replay(
        std::slice::from_ref(&path.0),
        &mut engine,
        &ReplayOptions::default(),
        &mut |d| {
            let line = d
                .evidence
                .events
                .iter()
                .filter_map(|e| match &e.origin {
                    sessionguard::decision::EvidenceOrigin::File { line, .. } => Some(*line),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            got.push((d.session.key.clone(), d.rule.id.clone(), line));
            Ok(())
        },
        &mut |file, line, reject, _| {
            panic!("{file}:{line}: generated records must all normalize: {reject}")
        },
    )
    .unwrap();
    assert_eq!(summary.late, 0, "no late events");
    got
}

fn check_against_truth(cfg: &Config, name: &str) -> Vec<Truth> {
    let (bytes, truth, _) = run(cfg);
    assert_eq!(truth.len() as u64, cfg.attacks.unwrap());
    let got = decisions(&bytes, name);
    let mut failures = Vec::new();
    for t in &truth {
        match got.iter().find(|(s, r, _)| *s == t.session && r == t.rule) {
            None => failures.push(format!(
                "missing {} ({}) for {} at line {}",
                t.rule, t.attack, t.session, t.line
            )),
            Some((_, _, line)) if *line != t.line => failures.push(format!(
                "{} ({}) for {} decided on line {line}, truth says {}",
                t.rule, t.attack, t.session, t.line
            )),
            Some(_) => {}
        }
    }
    for (session, rule, line) in &got {
        let attacked = truth.iter().find(|t| t.session == *session);
        let expected = match attacked {
            Some(t) if t.rule == rule => true,
            Some(t) if rule == sessionguard::decision::KILL_NOT_ENFORCED => {
                t.kills && t.after == Some(*line)
            }
            _ => false,
        };
        if !expected {
            failures.push(format!("unexpected {rule} for {session} at line {line}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    truth
}

#[test]
fn the_shipped_pack_decides_on_every_attack_and_nothing_else() {
    let truth = check_against_truth(&small(1), "pack");
    let cases: std::collections::BTreeSet<(&str, &str)> =
        truth.iter().map(|t| (t.attack, t.what)).collect();
    assert_eq!(cases.len(), 21, "every case and variant: {cases:#?}");
    let rules: std::collections::BTreeSet<&str> = truth.iter().map(|t| t.rule).collect();
    assert_eq!(rules.len(), 13, "{rules:?}");
}

#[test]
fn the_shipped_pack_on_another_seed_and_busier_sessions() {
    let cfg = Config {
        events: 8_000,
        sessions: 1_500,
        rate: 5.0,
        ..small(2)
    };
    check_against_truth(&cfg, "pack2");
}

#[test]
fn sources_restrict_the_mix_and_the_attacks() {
    let cfg = Config {
        weights: [1, 0, 0, 1],
        attacks: Some(8),
        ..small(3)
    };
    let (bytes, truth, meant) = run(&cfg);
    assert!(meant
        .iter()
        .all(|m| matches!(m.1, Source::Cloudtrail | Source::Github)));
    assert!(truth
        .iter()
        .all(|t| matches!(t.source, Source::Cloudtrail | Source::Github)));
    check_normalizes(&bytes, &meant);
    let only_okta = Config {
        weights: [0, 1, 0, 0],
        ..small(4)
    };
    let (_, truth, meant) = run(&only_okta);
    assert!(meant.iter().all(|m| m.1 == Source::Okta));
    assert!(truth.iter().all(|t| t.source == Source::Okta));
}

#[test]
fn too_short_a_run_for_attacks_is_an_error() {
    let cfg = Config {
        events: 1_000,
        rate: 100.0,
        attacks: Some(3),
        ..Config::default()
    };
    let err = generate(&cfg, &mut Vec::new(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--attacks 0"), "{err}");
    // Without an explicit count, a short run simply has none.
    let (_, truth) = generate(
        &Config {
            events: 1_000,
            ..Config::default()
        },
        &mut Vec::new(),
        None,
    )
    .unwrap();
    assert!(truth.is_empty());
}
