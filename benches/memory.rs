//! Bytes per active session: resident memory growth divided by sessions held, at 10 k, 100 k
//! and 1 M sessions, for idle sessions (no rule has state on them) and for sessions under the
//! full shipped pack (each session's events feed windows and baselines).
//!
//! `cargo bench --bench memory`. Resident size comes from /proc/self/statm (Linux), so the
//! figure includes allocator overhead and fragmentation — what an operator pays.

use std::hint::black_box;
use std::path::Path;

use bumpalo::Bump;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::Normalizer;
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A CloudTrail S3 read by session `i` at second `t`, from its own address.
fn record(i: usize, t: usize, event: &str) -> String {
    let (h, m, s) = (t / 3600 % 24, t / 60 % 60, t % 60);
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"2024-09-03T{h:02}:{m:02}:{s:02}Z","eventSource":"s3.amazonaws.com","eventName":"{event}","readOnly":true,"sourceIPAddress":"198.{}.{}.{}","userAgent":"aws-cli/2.17.43","requestParameters":{{"bucketName":"b","key":"k{t}"}},"additionalEventData":{{"bytesTransferredOut":1024.0}},"userIdentity":{{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"ASIA{i:016}","principalId":"AROAEXAMPLE:s{i}","arn":"arn:aws:sts::111122223333:assumed-role/app/s{i}","sessionContext":{{"sessionIssuer":{{"arn":"arn:aws:iam::111122223333:role/app","userName":"app"}}}}}}}}"#,
        i >> 16 & 255,
        i >> 8 & 255,
        i & 255
    )
}

fn measure(label: &str, rules: RuleSet, sessions: usize, events_per_session: usize) {
    let normalizer = Normalizer::default();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut decisions = Vec::new();
    let mut scratch = Bump::new();
    let before = rss_bytes();
    // All sessions within one hour of event time: none expires.
    for round in 0..events_per_session {
        for i in 0..sessions {
            let t = round * 600 + i * 600 / sessions;
            let json = record(i, t, "GetObject");
            scratch.reset();
            let event = normalizer.normalize(json.as_bytes(), &scratch).unwrap();
            engine.process(&event, Origin::File { file: 0, line: 0 }, &mut decisions);
            decisions.clear();
        }
    }
    let after = rss_bytes();
    assert_eq!(engine.session_count(), sessions);
    println!(
        "{label:<34} {sessions:>9} sessions  {:>6} bytes/session (RSS +{} MiB)",
        (after.saturating_sub(before)) / sessions as u64,
        (after.saturating_sub(before)) >> 20
    );
    black_box(engine);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a measurement has nothing to check there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sessions in [10_000, 100_000, 1_000_000] {
        measure("idle (no rules)", RuleSet::default(), sessions, 1);
        let pack = RuleSet::load(&[root.join("rules")]).unwrap();
        measure("full pack, 3 events each", pack, sessions, 3);
    }
}
