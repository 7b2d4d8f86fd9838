//! (f) of `scripts/bench.sh`: bytes per active session, and the hard session bound.
//!
//! - At 10 k, 100 k and 1 M sessions, for idle sessions (no rule has state on them) and for
//!   sessions under the full shipped pack (three events each, feeding windows and baselines):
//!   resident memory growth ÷ sessions held (RSS from /proc/self/statm, so allocator overhead
//!   and fragmentation count — what an operator pays) and allocator-requested bytes ÷ sessions
//!   (live bytes counted by a wrapping global allocator).
//! - 10 M sessions through an engine bounded to 1 M (`--max-sessions`): memory stays at the
//!   1 M level, and the 9 M evictions — the session idle longest, by event time — are counted.
//!
//! `cargo bench --bench memory`. Quick mode — without `--bench` (so in `cargo test
//! --all-targets`, which CI runs), or `cargo bench --bench memory -- --quick` — runs the same
//! code and assertions at 5 k sessions and a bound of 5 k with 50 k fed, and also holds the
//! allocated bytes per session under ceilings: the bound must evict exactly the excess and keep
//! allocated memory at the bound's level, and a session must not grow past its ceiling.

// The counting allocator below is the one use of `unsafe` in the project: it only forwards to
// the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bumpalo::Bump;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::Normalizer;
use sessionguard::rule::RuleSet;
use sessionguard::source::Origin;

/// The system allocator, counting bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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

/// Feeds `sessions` sessions `events_per_session` events each, all within one hour of event
/// time (none expires); returns the engine and the (RSS, allocated) growth.
fn feed(engine: &mut Engine, sessions: usize, events_per_session: usize) -> (u64, u64) {
    let normalizer = Normalizer::default();
    let mut decisions = Vec::new();
    let mut scratch = Bump::new();
    let (rss_before, live_before) = (rss_bytes(), LIVE.load(Ordering::Relaxed));
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
    (
        rss_bytes().saturating_sub(rss_before),
        (LIVE.load(Ordering::Relaxed) as u64).saturating_sub(live_before as u64),
    )
}

/// Allocated bytes per session above which quick mode fails: about twice what a session costs
/// today (README, bench (f): 947 B with the full pack at 1 M sessions; a few hundred idle), so
/// that a per-session regression fails CI instead of only moving a figure.
const CEILING_IDLE: u64 = 1_024;
const CEILING_FULL_PACK: u64 = 2_048;

/// Allocated bytes per session.
fn measure(label: &str, rules: RuleSet, sessions: usize, events_per_session: usize) -> u64 {
    let mut engine = Engine::new(rules, EngineConfig::default());
    let (rss, live) = feed(&mut engine, sessions, events_per_session);
    assert_eq!(engine.session_count(), sessions);
    println!(
        "(f) {label:<26} {sessions:>9} sessions: {:>5} bytes/session RSS, {:>5} allocated \
         (RSS +{} MiB)",
        rss / sessions as u64,
        live / sessions as u64,
        rss >> 20
    );
    black_box(engine);
    live / sessions as u64
}

/// The scale of one run.
struct Scale {
    sessions: &'static [usize],
    bound: usize,
    /// Sessions fed through the bounded engine, in multiples of the bound.
    fed: usize,
    /// Per-session allocation ceilings checked (quick mode).
    ceilings: bool,
}

const FULL: Scale = Scale {
    sessions: &[10_000, 100_000, 1_000_000],
    bound: 1_000_000,
    fed: 10,
    ceilings: false,
};

const QUICK: Scale = Scale {
    sessions: &[5_000],
    bound: 5_000,
    fed: 10,
    ceilings: true,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--quick");
    run(if quick { &QUICK } else { &FULL });
}

fn run(scale: &Scale) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pack = || RuleSet::load(&[root.join("rules")]).unwrap();
    for &sessions in scale.sessions {
        let idle = measure("idle (no rules)", RuleSet::default(), sessions, 1);
        let full = measure("full pack, 3 events each", pack(), sessions, 3);
        if scale.ceilings {
            assert!(
                idle <= CEILING_IDLE,
                "an idle session allocates {idle} B (ceiling {CEILING_IDLE})"
            );
            assert!(
                full <= CEILING_FULL_PACK,
                "a session under the full pack allocates {full} B (ceiling {CEILING_FULL_PACK})"
            );
        }
    }

    // The bound: `fed` × bound sessions, one event each, through an engine capped at the bound.
    let bound = scale.bound;
    let fed = scale.fed * bound;
    let mut engine = Engine::new(
        pack(),
        EngineConfig {
            max_sessions: bound,
            ..EngineConfig::default()
        },
    );
    let (rss_at_bound, _) = feed(&mut engine, bound, 1);
    let rss_base = rss_bytes();
    let live_base = LIVE.load(Ordering::Relaxed) as u64;
    let normalizer = Normalizer::default();
    let mut decisions = Vec::new();
    let mut scratch = Bump::new();
    let mut peak = rss_base;
    for i in bound..fed {
        // Later sessions, later event times (still within the idle timeout of the first).
        let json = record(i, 600 + i * 2_500 / fed, "GetObject");
        scratch.reset();
        let event = normalizer.normalize(json.as_bytes(), &scratch).unwrap();
        engine.process(&event, Origin::File { file: 0, line: 0 }, &mut decisions);
        decisions.clear();
        if i % 500_000 == 0 {
            peak = peak.max(rss_bytes());
        }
    }
    peak = peak.max(rss_bytes());
    let stats = engine.stats();
    assert_eq!(engine.session_count(), bound);
    assert_eq!(stats.sessions_evicted as usize, fed - bound);
    let live_end = LIVE.load(Ordering::Relaxed) as u64;
    // Held sessions are replaced, not added: what is allocated stays at the bound's level.
    assert!(
        live_end <= live_base + live_base / 4,
        "allocated {live_end} B after {fed} sessions, {live_base} B at the bound of {bound}"
    );
    println!(
        "(f) bound --max-sessions {bound}: {fed} sessions fed, {} held, {} evicted \
         (idlest first, counted); allocated {} MiB at {bound} sessions, {} MiB after {fed}; \
         process RSS {} MiB at the bound, peak {} MiB over the next {} (+{} MiB)",
        engine.session_count(),
        stats.sessions_evicted,
        live_base >> 20,
        live_end >> 20,
        rss_base >> 20,
        peak >> 20,
        fed - bound,
        peak.saturating_sub(rss_base) >> 20
    );
    black_box(rss_at_bound);
}
