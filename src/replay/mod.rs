//! Replay: files → framing → normalize → sequencer → engine → decisions.
//!
//! The same path `sessionguard replay` and `sessionguard check` use, and the Kafka runtime
//! mirrors: records are read in file order, normalized, put in event-time order within the
//! allowed lateness, and evaluated. Decisions are handed to the caller as they are taken.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bumpalo::Bump;

use crate::decision::Decision;
use crate::engine::sequencer::{Admit, Sequencer};
use crate::engine::Engine;
use crate::event::{Normalizer, Reject, RejectReason, Source};
use crate::source::file::{self, Item};
use crate::source::Origin;

mod sharded;
pub use sharded::replay_sharded;

/// How a replay runs.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    pub normalizer: Normalizer,
    /// Records up to this much older than the newest one seen are put back in order.
    pub allowed_lateness_ms: i64,
    /// Show a progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
}

/// What a replay did, for the summary table.
#[derive(Clone, Debug, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub bytes: u64,
    pub records: u64,
    pub events_by_source: BTreeMap<Source, u64>,
    pub rejects_by_reason: BTreeMap<RejectReason, u64>,
    pub late: u64,
    pub sessions: u64,
    pub evicted: u64,
    pub decisions_by_rule: Vec<(String, u64)>,
    pub elapsed: Duration,
}

impl ReplaySummary {
    pub fn events(&self) -> u64 {
        self.events_by_source.values().sum()
    }

    pub fn decisions(&self) -> u64 {
        self.decisions_by_rule.iter().map(|(_, n)| n).sum()
    }

    /// A plain-text table for stderr.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(s, "{:<48} {:>12}", "files", self.files);
        let _ = writeln!(s, "{:<48} {:>12}", "records", self.records);
        let _ = writeln!(s, "{:<48} {:>12}", "events", self.events());
        for (source, n) in &self.events_by_source {
            let _ = writeln!(s, "  {:<46} {n:>12}", source.as_str());
        }
        let _ = writeln!(s, "{:<48} {:>12}", "sessions", self.sessions);
        if self.evicted > 0 {
            let _ = writeln!(
                s,
                "  {:<46} {:>12}",
                "evicted (--max-sessions)", self.evicted
            );
        }
        let rejected: u64 = self.rejects_by_reason.values().sum();
        let _ = writeln!(s, "{:<48} {:>12}", "rejected", rejected);
        for (reason, n) in &self.rejects_by_reason {
            let _ = writeln!(s, "  {:<46} {n:>12}", reason.as_str());
        }
        let _ = writeln!(s, "{:<48} {:>12}", "late (not applied)", self.late);
        let _ = writeln!(s, "{:<48} {:>12}", "decisions", self.decisions());
        for (rule, n) in self.decisions_by_rule.iter().filter(|(_, n)| *n > 0) {
            let _ = writeln!(s, "  {rule:<46} {n:>12}");
        }
        let _ = writeln!(
            s,
            "{:<48} {:>12.0}   ({:.2}s)",
            "events/s",
            self.records as f64 / secs,
            secs
        );
        s
    }
}

/// Receives rejected records: file name, line, reason, the record's bytes.
pub type RejectSink<'s> = dyn FnMut(&str, u64, &Reject, &[u8]) -> io::Result<()> + 's;

/// Replays `paths` (files or directories) through `engine`; each decision goes to
/// `on_decision` as soon as it is taken.
pub fn replay(
    paths: &[PathBuf],
    engine: &mut Engine,
    options: &ReplayOptions,
    on_decision: &mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &mut RejectSink<'_>,
) -> anyhow::Result<ReplaySummary> {
    use anyhow::Context as _;
    let started = Instant::now();
    let files = file::expand_paths(paths).context("listing input paths")?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut summary = ReplaySummary {
        files: files.len(),
        ..ReplaySummary::default()
    };
    let mut sequencer = Sequencer::new(options.allowed_lateness_ms);
    let mut progress = Progress::new(options.progress && io::stderr().is_terminal(), total_bytes);
    let mut scratch = Bump::new();
    let mut decisions = Vec::new();
    let mut failure: Option<io::Error> = None;
    for (index, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let file_id = engine.origin_names().intern(&name);
        let reader = file::open(path).with_context(|| format!("opening {name}"))?;
        file::for_each_record(reader, &mut |item| {
            if failure.is_some() {
                return;
            }
            summary.records += 1;
            let (bytes, line) = match item {
                Item::Record { bytes, line } => (bytes, line),
                Item::Broken { line, reject } => {
                    *summary.rejects_by_reason.entry(reject.reason).or_default() += 1;
                    if let Err(e) = on_reject(&name, line, &reject, &[]) {
                        failure = Some(e);
                    }
                    return;
                }
            };
            progress.tick(index, files.len(), summary.records, line);
            let origin = Origin::File {
                file: file_id,
                line,
            };
            scratch.reset();
            let event = match options.normalizer.normalize(bytes, &scratch) {
                Ok(event) => event,
                Err(reject) => {
                    *summary.rejects_by_reason.entry(reject.reason).or_default() += 1;
                    if let Err(e) = on_reject(&name, line, &reject, bytes) {
                        failure = Some(e);
                    }
                    return;
                }
            };
            *summary.events_by_source.entry(event.source).or_default() += 1;
            match sequencer.admit(event.time.millis(), bytes, origin) {
                Admit::Now => engine.process(&event, origin, &mut decisions),
                Admit::Late => summary.late += 1,
                Admit::Held => {
                    drop(event);
                    for held in sequencer.release() {
                        process_held(engine, &options.normalizer, &held, &mut decisions);
                    }
                }
            }
            for decision in decisions.drain(..) {
                if let Err(e) = on_decision(&decision) {
                    failure = Some(e);
                }
            }
        })
        .with_context(|| format!("reading {name}"))?;
        if let Some(e) = failure.take() {
            return Err(e).context("writing output");
        }
        summary.bytes += std::fs::metadata(path).map_or(0, |m| m.len());
    }
    for held in sequencer.drain() {
        process_held(engine, &options.normalizer, &held, &mut decisions);
    }
    for decision in decisions.drain(..) {
        on_decision(&decision).map_err(anyhow::Error::from)?;
    }
    progress.finish();
    let stats = engine.stats();
    summary.late += stats.late_events;
    summary.sessions = stats.sessions_created;
    summary.evicted = stats.sessions_evicted;
    summary.decisions_by_rule = engine
        .rules()
        .rules
        .iter()
        .map(|r| r.id.clone())
        .chain([crate::decision::KILL_NOT_ENFORCED.to_owned()])
        .zip(stats.decisions_by_rule.iter().copied())
        .collect();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Normalizes a released record again (it normalized once on the way in, so it cannot fail
/// differently now) and evaluates it.
fn process_held(
    engine: &mut Engine,
    normalizer: &Normalizer,
    held: &crate::engine::sequencer::Held,
    decisions: &mut Vec<Decision>,
) {
    let scratch = Bump::new();
    let event = normalizer.normalize(&held.bytes, &scratch);
    if let Ok(event) = &event {
        engine.process(event, held.origin, decisions);
    }
}

/// A one-line progress report on stderr, at most four times a second.
struct Progress {
    enabled: bool,
    total_bytes: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(enabled: bool, total_bytes: u64) -> Self {
        let now = Instant::now();
        Progress {
            enabled,
            total_bytes,
            started: now,
            last: now,
        }
    }

    fn tick(&mut self, file: usize, files: usize, records: u64, line: u64) {
        if !self.enabled || !records.is_multiple_of(4096) {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < Duration::from_millis(250) {
            return;
        }
        self.last = now;
        let rate = records as f64 / now.duration_since(self.started).as_secs_f64().max(1e-9);
        let _ = write!(
            io::stderr(),
            "\r\x1b[Kfile {}/{files} (line {line}) · {records} records · {rate:.0} records/s · {:.1} MiB input",
            file + 1,
            self.total_bytes as f64 / (1 << 20) as f64
        );
    }

    fn finish(&mut self) {
        if self.enabled {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}
