//! Replay: files → framing → the evaluator (normalize → time → engine) → decisions.
//!
//! The path `sessionguard replay` and `sessionguard check` use; the Kafka runtime pushes its
//! records into the same [`Evaluator`]. Records are read in file order — the order they were
//! delivered in, not event-time order — and decisions are handed to the caller as they are
//! taken. `-` reads standard input as it arrives, so `tail -F log | sessionguard replay -`
//! acts live.
#![allow(
    clippy::disallowed_methods,
    reason = "the progress line and the elapsed time in the summary; decisions come from the evaluator, on event time"
)]

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::decision::Decision;
use crate::engine::Engine;
use crate::evaluator::{Evaluator, Sink, Tally};
use crate::event::{Event, Normalizer, Reject, RejectReason, Source};
use crate::source::file::{self, Item};
use crate::source::Origin;

pub mod backtest;
#[cfg(feature = "parquet")]
mod from_archive;
mod sharded;
pub use sharded::replay_sharded;

/// How a replay runs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub normalizer: Normalizer,
    /// Show a progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// At the end of the input, move every source's clock to its newest record (nothing more
    /// can arrive), firing the timers due in the last grace. Off to compare with `run`, whose
    /// input has no end.
    pub end_of_input: bool,
    /// Set (by a signal handler) to stop reading: the record in hand is finished, the
    /// decisions made are written, and the replay returns with `stopped_at` in its summary.
    pub stop: Arc<AtomicBool>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            normalizer: Normalizer::default(),
            progress: false,
            end_of_input: true,
            stop: Arc::default(),
        }
    }
}

/// What a replay did, for the summary table.
#[derive(Clone, Debug, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub bytes: u64,
    pub records: u64,
    pub events_by_source: BTreeMap<Source, u64>,
    /// Every record not applied, by reason (`late` and `future` included).
    pub rejects_by_reason: BTreeMap<RejectReason, u64>,
    pub late: u64,
    pub late_by_source: BTreeMap<Source, u64>,
    pub future_by_source: BTreeMap<Source, u64>,
    pub sessions: u64,
    pub evicted: u64,
    /// Baseline findings held until their learning period settled, and those refuted then.
    pub findings_held: u64,
    pub findings_refuted: u64,
    pub decisions_by_rule: Vec<(String, u64)>,
    pub elapsed: Duration,
    /// The process's peak resident memory, where the system tells it (Linux), for the summary.
    pub peak_memory_kib: Option<u64>,
    /// Where reading stopped when the replay was asked to stop: the file and the line of the
    /// last record read (every record up to it was applied; none after it was read).
    pub stopped_at: Option<(String, u64)>,
}

impl ReplaySummary {
    pub fn events(&self) -> u64 {
        self.events_by_source.values().sum()
    }

    pub fn decisions(&self) -> u64 {
        self.decisions_by_rule.iter().map(|(_, n)| n).sum()
    }

    /// Adds an evaluator's counts.
    pub fn add_tally(&mut self, tally: &Tally) {
        self.records += tally.records;
        for (source, n) in &tally.events_by_source {
            *self.events_by_source.entry(*source).or_default() += n;
        }
        for (reason, n) in &tally.rejects_by_reason {
            *self.rejects_by_reason.entry(*reason).or_default() += n;
        }
        for (source, n) in &tally.late_by_source {
            *self.late_by_source.entry(*source).or_default() += n;
        }
        for (source, n) in &tally.future_by_source {
            *self.future_by_source.entry(*source).or_default() += n;
        }
        self.late = self.late_by_source.values().sum();
    }

    /// Adds an engine's counts.
    pub fn add_engine(&mut self, engine: &Engine) {
        let stats = engine.stats();
        self.sessions += stats.sessions_created;
        self.evicted += stats.sessions_evicted;
        self.findings_held += stats.findings_held;
        self.findings_refuted += stats.findings_refuted;
        let ids = engine
            .rules()
            .rules
            .iter()
            .map(|r| r.id.clone())
            .chain([crate::decision::KILL_NOT_ENFORCED.to_owned()]);
        if self.decisions_by_rule.is_empty() {
            self.decisions_by_rule = ids.map(|id| (id, 0)).collect();
        }
        for (slot, n) in self
            .decisions_by_rule
            .iter_mut()
            .zip(&stats.decisions_by_rule)
        {
            slot.1 += n;
        }
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
        if self.findings_held > 0 {
            let _ = writeln!(
                s,
                "{:<48} {:>12}",
                "baseline findings held (learning still open)", self.findings_held
            );
            let _ = writeln!(
                s,
                "  {:<46} {:>12}",
                "refuted by earlier records", self.findings_refuted
            );
        }
        let rejected: u64 = self.rejects_by_reason.values().sum();
        let _ = writeln!(s, "{:<48} {:>12}", "not applied (rejected)", rejected);
        for (reason, n) in &self.rejects_by_reason {
            let by_source = match reason {
                RejectReason::Late => per_source(&self.late_by_source),
                RejectReason::Future => per_source(&self.future_by_source),
                _ => String::new(),
            };
            let label = format!("{}{by_source}", reason.as_str());
            let _ = writeln!(s, "  {label:<46} {n:>12}");
        }
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
        if let Some(kib) = self.peak_memory_kib {
            let _ = writeln!(s, "{:<48} {kib:>12}", "peak memory (KiB)");
        }
        if let Some((file, line)) = &self.stopped_at {
            let _ = writeln!(
                s,
                "stopped by a signal after {file} line {line}: every record up to it was applied, none after it was read"
            );
        }
        s
    }
}

/// ` (cloudtrail 3, okta 1)`.
fn per_source(counts: &BTreeMap<Source, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(source, n)| format!("{} {n}", source.as_str()))
        .collect();
    format!(" ({})", parts.join(", "))
}

/// Receives rejected records: file name, line, reason, the record's bytes.
pub type RejectSink<'s> = dyn FnMut(&str, u64, &Reject, &[u8]) -> io::Result<()> + 's;

/// Keeps what a replay saw and decided (an archive, `crate::history`): every record that
/// normalized, in the order read, with its file and line; every decision, as made.
pub trait Recorder {
    fn event(&mut self, event: &Event<'_>, origin: (&str, u64), bytes: &[u8]) -> io::Result<()>;
    fn decision(&mut self, decision: &Decision) -> io::Result<()>;
}

/// Adapts the two callbacks of [`replay`] (and a [`Recorder`]) to an evaluator's [`Sink`].
struct Callbacks<'a, 'b> {
    names: &'a [String],
    on_decision: &'a mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &'a mut RejectSink<'b>,
    recorder: Option<&'a mut (dyn Recorder + 'b)>,
}

impl Sink for Callbacks<'_, '_> {
    fn decision(&mut self, decision: &Decision) -> io::Result<()> {
        if let Some(recorder) = self.recorder.as_deref_mut() {
            recorder.decision(decision)?;
        }
        (self.on_decision)(decision)
    }

    fn event(&mut self, event: &Event<'_>, origin: Origin, bytes: &[u8]) -> io::Result<()> {
        let Some(recorder) = self.recorder.as_deref_mut() else {
            return Ok(());
        };
        match origin {
            Origin::File { file, line } => {
                let name = self.names.get(file as usize).map_or("?", String::as_str);
                recorder.event(event, (name, line), bytes)
            }
            // An archive `run` wrote, archived again: its records keep their partition.
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => {
                let topic = self.names.get(topic as usize).map_or("?", String::as_str);
                let name = kafka_origin_name(topic, partition);
                recorder.event(event, (&name, offset as u64), bytes)
            }
        }
    }

    fn reject(&mut self, origin: Origin, reject: &Reject, bytes: &[u8]) -> io::Result<()> {
        let (name, line) = match origin {
            Origin::File { file, line } => (
                self.names.get(file as usize).map_or("?", String::as_str),
                line,
            ),
            Origin::Kafka { offset, .. } => ("kafka", offset as u64),
        };
        (self.on_reject)(name, line, reject, bytes)
    }
}

/// The origin name of a Kafka partition in an archive (`crate::history`).
fn kafka_origin_name(topic: &str, partition: i32) -> String {
    #[cfg(feature = "parquet")]
    return crate::history::archive::kafka_origin(topic, partition);
    #[cfg(not(feature = "parquet"))]
    format!("{topic}/{partition}")
}

/// Whether `path` is an archive's root (`crate::history`), read as one input.
fn is_archive(path: &Path) -> bool {
    #[cfg(feature = "parquet")]
    return crate::history::is_archive(path);
    #[cfg(not(feature = "parquet"))]
    {
        let _ = path;
        false
    }
}

/// `-` names standard input.
fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Replays `paths` (files or directories; `-` for standard input) through `engine`; each
/// decision goes to `on_decision` as soon as it is taken.
pub fn replay(
    paths: &[PathBuf],
    engine: &mut Engine,
    options: &ReplayOptions,
    on_decision: &mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &mut RejectSink<'_>,
) -> anyhow::Result<ReplaySummary> {
    replay_recording(paths, engine, options, on_decision, on_reject, None)
        .map(|(summary, _)| summary)
}

/// [`replay`], with every normalized record and every decision also handed to `recorder`;
/// returns, besides the summary, the input files' names in the order the replay met them (the
/// ids of its origins).
pub fn replay_recording<'b>(
    paths: &[PathBuf],
    engine: &mut Engine,
    options: &ReplayOptions,
    on_decision: &mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &mut RejectSink<'b>,
    recorder: Option<&mut (dyn Recorder + 'b)>,
) -> anyhow::Result<(ReplaySummary, Vec<String>)> {
    let started = Instant::now();
    let (files, skipped) = expand_inputs(paths);
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut summary = ReplaySummary {
        files: files.len(),
        ..ReplaySummary::default()
    };
    let placeholder = Engine::with_shared_rules(Arc::default(), engine.config().clone());
    let mut reading = Reading {
        evaluator: Evaluator::new(
            std::mem::replace(engine, placeholder),
            options.normalizer.clone(),
        ),
        names: Vec::new(),
        on_decision,
        on_reject,
        recorder,
        progress: Progress::new(options.progress && io::stderr().is_terminal(), total_bytes),
    };
    let outcome = (|| -> anyhow::Result<()> {
        // What a directory walk left out is reported first, as rejects of its own.
        for (path, why) in &skipped {
            let file_id = reading.file_id(path.display().to_string());
            let reject = Reject::new(RejectReason::Unreadable, format!("skipped: {why}"));
            reading.broken(file_id, 0, &reject)?;
        }
        for (index, path) in files.iter().enumerate() {
            let stopped = reading.file((index, files.len()), path, options, &mut summary)?;
            if stopped.is_some() {
                summary.stopped_at = stopped;
                break;
            }
        }
        let (evaluator, mut sink) = reading.parts();
        // A stop is not the end of the input: the timers of the last grace stay pending.
        if options.end_of_input && summary.stopped_at.is_none() {
            evaluator.finish(&mut sink)
        } else {
            evaluator.pause(&mut sink)
        }
        .context("writing output")
    })();
    reading.progress.finish();
    summary.records = 0;
    summary.add_tally(reading.evaluator.tally());
    summary.add_engine(reading.evaluator.engine());
    *engine = reading.evaluator.into_engine();
    outcome?;
    summary.elapsed = started.elapsed();
    Ok((summary, reading.names))
}

/// The files `paths` name (directories walked; `-` kept for standard input), and what a walk
/// left out, with why.
fn expand_inputs(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        if is_stdin(path) || is_archive(path) {
            files.push(path.clone());
        } else {
            let expanded = file::expand(std::slice::from_ref(path));
            files.extend(expanded.files);
            skipped.extend(expanded.skipped);
        }
    }
    (files, skipped)
}

/// One replay's reading state: the evaluator, the file names its origins point to, the
/// callbacks, and the progress line.
struct Reading<'r, 'b> {
    evaluator: Evaluator,
    names: Vec<String>,
    on_decision: &'r mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &'r mut RejectSink<'b>,
    recorder: Option<&'r mut (dyn Recorder + 'b)>,
    progress: Progress,
}

impl<'b> Reading<'_, 'b> {
    /// The evaluator, and the sink its output goes to.
    fn parts(&mut self) -> (&mut Evaluator, Callbacks<'_, 'b>) {
        let sink = Callbacks {
            names: &self.names,
            on_decision: &mut *self.on_decision,
            on_reject: &mut *self.on_reject,
            recorder: self.recorder.as_deref_mut(),
        };
        (&mut self.evaluator, sink)
    }

    /// The id origins carry for the file `name`.
    fn file_id(&mut self, name: String) -> u32 {
        let file_id = self.evaluator.engine_mut().origin_names().intern(&name);
        if self.names.len() <= file_id as usize {
            self.names.resize(file_id as usize + 1, String::new());
        }
        self.names[file_id as usize] = name;
        file_id
    }

    /// A reject with no record bytes (a file that cannot be opened or read on).
    fn broken(&mut self, file: u32, line: u64, reject: &Reject) -> anyhow::Result<()> {
        let (evaluator, mut sink) = self.parts();
        evaluator
            .push_broken(Origin::File { file, line }, reject, &[], &mut sink)
            .context("writing output")
    }

    /// Reads one file (`position`: its index and the number of files) through the evaluator,
    /// counting its records and bytes in `summary`; the file and line it stopped at when a stop
    /// was asked for.
    fn file(
        &mut self,
        position: (usize, usize),
        path: &Path,
        options: &ReplayOptions,
        summary: &mut ReplaySummary,
    ) -> anyhow::Result<Option<(String, u64)>> {
        #[cfg(feature = "parquet")]
        if is_archive(path) {
            return self.archive(path, options, summary);
        }
        let name = if is_stdin(path) {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let file_id = self.file_id(name.clone());
        let unreadable = |detail: String| Reject::new(RejectReason::Unreadable, detail);
        let opened = if is_stdin(path) {
            file::stdin_records()
        } else {
            file::open_records(path)
        };
        let reader = match opened {
            Ok(reader) => reader,
            Err(e) => {
                self.broken(file_id, 0, &unreadable(format!("opening the file: {e}")))?;
                return Ok(None);
            }
        };
        let mut last_line = 0;
        let mut stopped_at = None;
        let mut failure: Option<io::Error> = None;
        let mut records = summary.records;
        let Reading {
            evaluator,
            names,
            on_decision,
            on_reject,
            recorder,
            progress,
        } = self;
        let mut sink = Callbacks {
            names,
            on_decision: &mut **on_decision,
            on_reject: &mut **on_reject,
            recorder: recorder.as_deref_mut(),
        };
        let max_record_bytes = options.normalizer.max_record_bytes;
        let read = reader.frame(max_record_bytes, &mut |item| {
            records += 1;
            let result = match item {
                Item::Record { bytes, line } => {
                    last_line = line;
                    progress.tick(position.0, position.1, records, line);
                    let origin = Origin::File {
                        file: file_id,
                        line,
                    };
                    evaluator.push(bytes, origin, &mut sink)
                }
                Item::Broken {
                    line,
                    reject,
                    bytes,
                } => {
                    last_line = line;
                    let origin = Origin::File {
                        file: file_id,
                        line,
                    };
                    evaluator.push_broken(origin, &reject, bytes, &mut sink)
                }
            };
            if let Err(e) = result {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            if options.stop.load(Ordering::Relaxed) {
                stopped_at = Some(last_line);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        summary.records = records;
        if let Some(e) = failure.take() {
            return Err(e).context("writing output");
        }
        if let Err(e) = read {
            // The records before the fault were read and kept; the rest of the file is one
            // reject, and the next file is read.
            let reject = unreadable(format!(
                "reading stopped after line {last_line}: {e}; the records before it were kept"
            ));
            self.broken(file_id, last_line, &reject)?;
        }
        summary.bytes += std::fs::metadata(path).map_or(0, |m| m.len());
        Ok(stopped_at.map(|line| (name, line)))
    }
}

/// This process's peak resident memory in KiB (`VmHWM`), where the system reports it.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
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
