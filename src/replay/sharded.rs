//! Replay on several threads, sharded by session key (`replay --threads N`).
//!
//! Records are read on their own thread into batches (recycled, so their buffers are allocated
//! once). Each batch is normalized in parallel on a rayon pool of N threads (contiguous chunks,
//! one per thread, written in place), then routed on the calling thread, in record order:
//! the time stage (the future guard and the per-source clocks, [`crate::time::Clocks`]) admits
//! each event and notes where every source's clock stands, and the event goes to the shard its
//! session key hashes to — or, for a chained session, to its parent's shard, so that a child
//! still inherits its parent's state. Every shard's engine then walks the whole routed batch in
//! parallel: it moves its clocks as noted at each record and evaluates its own events. Every
//! engine therefore sees the same clocks at the same record as a single engine would, so
//! timers, idle expiry, lateness and the future guard behave as in a one-thread replay, and
//! decisions are emitted in record order (at one record: by decision time, then shard).
//!
//! One difference from one thread, by design: `--max-sessions` is split evenly between the
//! shards (each evicts its own idlest session). Rules with Sigma correlations run on one shard:
//! a correlation's groups span sessions (`replay` says so and uses one engine).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::ScopedJoinHandle;
use std::time::Instant;

use anyhow::Context as _;
use bumpalo::Bump;
use rayon::prelude::*;

use super::{Progress, RejectSink, ReplayOptions, ReplaySummary};
use crate::decision::Decision;
use crate::engine::{Applied, Engine, EngineConfig};
use crate::evaluator::{future_reject, late_reject, Tally};
use crate::event::{Event, Reject, RejectReason};
use crate::rule::RuleSet;
use crate::source::file::{self, Item};
use crate::source::Origin;
use crate::time::{Admit, Clocks, Held, Released, SOURCES};

/// Records per batch: small enough that a batch's records, events and arenas stay in cache
/// between the normalize and the evaluate phase (4096 made evaluation twice as slow per
/// event), large enough that the two hand-offs to the thread pool cost little.
const BATCH_RECORDS: usize = 512;

/// One framed input record of a batch.
enum Entry {
    Record {
        file: u32,
        line: u64,
        start: usize,
        end: usize,
    },
    Broken {
        file: u32,
        line: u64,
        reject: Reject,
        /// The stretch's bytes in `Batch::bytes`.
        start: usize,
        end: usize,
    },
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

/// A record after normalization: its event with the hashes that route it, or why not.
// Nearly every record is an event: boxing it would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Parsed<'b> {
    Event {
        event: Event<'b>,
        session: u64,
        child: Option<u64>,
    },
    Rejected(Reject),
    Broken,
}

/// Where a session's events go, while it is in use.
struct Route {
    shard: usize,
    last_seen: i64,
}

/// A stable 64-bit hash of a value's text (SipHash with fixed keys: the same in every run).
fn text_hash(value: impl std::fmt::Display) -> u64 {
    struct HashWriter(std::hash::DefaultHasher);
    impl std::fmt::Write for HashWriter {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut w = HashWriter(std::hash::DefaultHasher::new());
    let _ = write!(w, "{value}");
    w.0.finish()
}

/// Reads every file into batches on its own thread. A file that cannot be opened, or fails
/// part-way, is an `unreadable` entry (after the records read before the fault), and the next
/// file is read; one with a skip reason is that entry alone, never opened. Batches sent back
/// on the returned sender are reused, so their buffers are allocated (and their pages faulted
/// in) once, not per batch.
/// Where reading stopped early: a file's index and the line of its last record read.
type StoppedAt = Option<(usize, u64)>;

/// When `stop` is set, reading stops after the record in hand; the thread returns where (the
/// file's index and the line of its last record read).
fn read_batches<'scope>(
    files: Vec<(PathBuf, Option<String>)>,
    options: &'scope ReplayOptions,
    scope: &'scope std::thread::Scope<'scope, '_>,
) -> (
    Receiver<Batch>,
    Sender<Batch>,
    ScopedJoinHandle<'scope, StoppedAt>,
) {
    let (tx, rx) = sync_channel::<Batch>(2);
    let (give_back, returned) = channel::<Batch>();
    let reader = scope.spawn(move || {
        // Batches in flight: two queued, one being processed, one being filled. Past that,
        // wait for one to come back rather than allocate.
        let mut allocated = 0;
        let mut fresh = || {
            let mut batch = if allocated < 4 {
                allocated += 1;
                Batch::default()
            } else {
                returned.recv().unwrap_or_default()
            };
            batch.bytes.clear();
            batch.entries.clear();
            batch
        };
        let mut batch = fresh();
        let mut stopped_at = None;
        for (index, (path, skipped)) in files.iter().enumerate() {
            let unreadable = |batch: &mut Batch, line: u64, detail: String| {
                let at = batch.bytes.len();
                batch.entries.push(Entry::Broken {
                    file: index as u32,
                    line,
                    reject: Reject::new(RejectReason::Unreadable, detail),
                    start: at,
                    end: at,
                });
            };
            if let Some(why) = skipped {
                unreadable(&mut batch, 0, why.clone());
                continue;
            }
            let reader = match file::open_records(path) {
                Ok(reader) => reader,
                Err(e) => {
                    unreadable(&mut batch, 0, format!("opening the file: {e}"));
                    continue;
                }
            };
            let mut last_line = 0;
            let mut stopped = false;
            let max_record_bytes = options.normalizer.max_record_bytes;
            let read = reader.frame(max_record_bytes, &mut |item| {
                let start = batch.bytes.len();
                let file = index as u32;
                let entry = match item {
                    Item::Record { bytes, line } => {
                        last_line = line;
                        batch.bytes.extend_from_slice(bytes);
                        let end = batch.bytes.len();
                        Entry::Record {
                            file,
                            line,
                            start,
                            end,
                        }
                    }
                    Item::Broken {
                        line,
                        reject,
                        bytes,
                    } => {
                        last_line = line;
                        batch.bytes.extend_from_slice(bytes);
                        let end = batch.bytes.len();
                        Entry::Broken {
                            file,
                            line,
                            reject,
                            start,
                            end,
                        }
                    }
                };
                batch.entries.push(entry);
                if batch.entries.len() >= BATCH_RECORDS {
                    let full = std::mem::replace(&mut batch, fresh());
                    let _ = tx.send(full);
                }
                stopped = options.stop.load(Ordering::Relaxed);
                if stopped {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            if let Err(e) = read {
                let detail = format!(
                    "reading stopped after line {last_line}: {e}; the records before it were kept"
                );
                unreadable(&mut batch, last_line, detail);
            }
            if stopped {
                stopped_at = Some((index, last_line));
                break;
            }
        }
        if !batch.entries.is_empty() {
            let _ = tx.send(batch);
        }
        stopped_at
    });
    (rx, give_back, reader)
}

/// Normalizes `entries` of `batch` into `out` (as long), with `scratch` as their arena.
fn normalize_chunk<'b>(
    options: &ReplayOptions,
    batch: &'b Batch,
    entries: &'b [Entry],
    scratch: &'b mut Bump,
    out: &mut [Parsed<'b>],
) {
    let scratch: &'b Bump = scratch;
    for (entry, slot) in entries.iter().zip(out) {
        *slot = match entry {
            Entry::Broken { .. } => Parsed::Broken,
            Entry::Record { start, end, .. } => {
                match options
                    .normalizer
                    .normalize(&batch.bytes[*start..*end], scratch)
                {
                    Ok(event) => Parsed::Event {
                        session: text_hash(&event.session.key),
                        child: child_hash(&event),
                        event,
                    },
                    Err(reject) => Parsed::Rejected(reject),
                }
            }
        };
    }
}

/// An empty vector of another lifetime on the same allocation: the normalized records of one
/// batch borrow it, and the next batch reuses the buffer (in-place collect keeps it).
fn recycle<'x, 'y>(mut parsed: Vec<Parsed<'x>>) -> Vec<Parsed<'y>> {
    parsed.clear();
    parsed
        .into_iter()
        .map(|_| unreachable!("the vector was just cleared"))
        .collect()
}

/// One unit of a routed batch, in record order.
struct Work {
    /// Which event: a record of the batch, or a record the future guard held and released now.
    item: WorkItem,
    shard: usize,
    /// Every source's clock (watermark) before this event is applied.
    marks: [i64; SOURCES],
}

#[derive(Clone, Copy)]
enum WorkItem {
    Record(usize),
    Released(usize),
}

/// A rejected record of a batch, reported in record order after the batch is evaluated.
struct Rejected {
    position: (usize, usize),
    origin: Origin,
    reject: Reject,
    bytes: Vec<u8>,
}

/// Shards of one routed batch: decisions, and records found late, by work position.
type ShardOutput = (Vec<(usize, Decision)>, Vec<(usize, i64)>);

/// Replays `paths` on `threads` engine shards; decisions reach `on_decision` in record order.
/// Rules with Sigma correlations run on one shard: a correlation's groups span sessions, which
/// shards keep apart.
pub fn replay_sharded(
    paths: &[PathBuf],
    rules: Arc<RuleSet>,
    config: EngineConfig,
    threads: usize,
    options: &ReplayOptions,
    on_decision: &mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &mut RejectSink<'_>,
) -> anyhow::Result<ReplaySummary> {
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let threads = if rules.has_correlations() { 1 } else { threads };
    let started = Instant::now();
    // What a directory walk left out goes first, as inputs that are rejected unopened.
    let expanded = file::expand(paths);
    let files: Vec<(PathBuf, Option<String>)> = expanded
        .skipped
        .into_iter()
        .map(|(path, why)| (path, Some(format!("skipped: {why}"))))
        .chain(expanded.files.into_iter().map(|path| (path, None)))
        .collect();
    anyhow::ensure!(
        !paths.iter().any(|p| p.as_os_str() == "-"),
        "--threads reads files, not standard input"
    );
    let mut summary = ReplaySummary {
        files: files.len(),
        bytes: files
            .iter()
            .filter_map(|(f, _)| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
        ..ReplaySummary::default()
    };
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let mut shards = Shards::new(rules, &config, threads, names, options);
    // One arena per normalize thread, holding a whole chunk's records until the batch is done;
    // sized up front, so that a reset keeps one chunk large enough for every later batch.
    let mut scratch: Vec<Bump> = (0..threads)
        .map(|_| Bump::with_capacity(BATCH_RECORDS.div_ceil(threads) * 4096))
        .collect();
    let mut progress = Progress::new(
        options.progress && io::IsTerminal::is_terminal(&io::stderr()),
        summary.bytes,
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sessionguard-shard-{i}"))
        .build()
        .context("starting the engine threads")?;
    let mut out = Output {
        on_decision,
        on_reject,
    };
    let file_ids = shards.file_ids.clone();
    let stopped_at = std::thread::scope(|scope| -> anyhow::Result<StoppedAt> {
        let (batches, give_back, reader) = read_batches(files.clone(), options, scope);
        let mut parsed_buffer: Vec<Parsed<'static>> = Vec::new();
        let mut work: Vec<Work> = Vec::new();
        for batch in batches {
            for bump in &mut scratch {
                bump.reset();
            }
            // 1. Normalize in parallel, one contiguous chunk per thread, in place.
            let mut parsed: Vec<Parsed<'_>> = recycle(std::mem::take(&mut parsed_buffer));
            parsed.resize_with(batch.entries.len(), || Parsed::Broken);
            normalize_batch(&pool, options, &batch, &mut scratch, &mut parsed);
            // 2. Route in record order through the time stage; collect rejects.
            let mut routed = shards.route_batch(&batch, &parsed, &mut work);
            if let Some(Entry::Record { file, line, .. } | Entry::Broken { file, line, .. }) =
                batch.entries.last()
            {
                progress.tick(*file as usize, files.len(), shards.tally.records, *line);
            }
            // Records the guard released, normalized for the shards (rare; empty otherwise).
            let held_bump = Bump::new();
            let held_events: Vec<Option<Event<'_>>> = routed
                .held
                .iter()
                .map(|h| options.normalizer.normalize(&h.bytes, &held_bump).ok())
                .collect();
            let units = Units {
                batch: &batch,
                parsed: &parsed,
                held: &routed.held,
                held_events: &held_events,
                file_ids: &file_ids,
            };
            // 3. Evaluate in parallel: each shard its own events, every shard the clocks.
            let taken = evaluate_batch(&pool, &mut shards.engines, &work, &units);
            // 4. Emit in record order.
            let decisions = shards.merge(
                taken,
                &work,
                &units,
                (&routed.released_at, &mut routed.rejected),
            );
            shards.emit(&decisions, &mut routed.rejected, &mut out)?;
            drop(held_events);
            parsed_buffer = recycle(parsed);
            let _ = give_back.send(batch);
        }
        Ok(reader.join().ok().flatten())
    })?;
    summary.stopped_at = stopped_at.map(|(file, line)| (shards.names[file].clone(), line));
    shards.finish(
        options.end_of_input && summary.stopped_at.is_none(),
        &mut out,
    )?;

    progress.finish();
    summary.add_tally(&shards.tally);
    for engine in &shards.engines {
        summary.add_engine(engine);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Where a sharded replay's output goes.
struct Output<'o, 'r> {
    on_decision: &'o mut dyn FnMut(&Decision) -> io::Result<()>,
    on_reject: &'o mut RejectSink<'r>,
}

/// Normalizes a batch in parallel, one contiguous chunk per thread, into `parsed`.
fn normalize_batch<'b>(
    pool: &rayon::ThreadPool,
    options: &ReplayOptions,
    batch: &'b Batch,
    scratch: &'b mut [Bump],
    parsed: &mut [Parsed<'b>],
) {
    let chunk_len = batch.entries.len().div_ceil(scratch.len()).max(1);
    pool.scope(|s| {
        for ((entries, out), bump) in batch
            .entries
            .chunks(chunk_len)
            .zip(parsed.chunks_mut(chunk_len))
            .zip(scratch.iter_mut())
        {
            // Moved in as `&mut` (a `Bump` is not `Sync`), read as shared.
            s.spawn(move |_| normalize_chunk(options, batch, entries, bump, out));
        }
    });
}

/// Every session's shard, while it is in use: a chained session goes to its parent's shard,
/// unless it was already seen elsewhere (its records arrived before the parent's).
struct Router {
    routes: HashMap<u64, Route>,
    purge_at: usize,
    newest: i64,
    idle: i64,
    threads: usize,
}

impl Router {
    fn shard(&mut self, session: u64, child: Option<u64>, t: i64) -> usize {
        self.newest = self.newest.max(t);
        let route = self.routes.entry(session).or_insert(Route {
            shard: (session % self.threads as u64) as usize,
            last_seen: t,
        });
        route.last_seen = route.last_seen.max(t);
        let shard = route.shard;
        if let Some(child) = child {
            self.routes.entry(child).or_insert(Route {
                shard,
                last_seen: t,
            });
        }
        if self.routes.len() > self.purge_at {
            let (idle, newest) = (self.idle, self.newest);
            self.routes
                .retain(|_, r| r.last_seen.saturating_add(idle) >= newest);
            self.purge_at = (self.routes.len() * 2).max(1 << 16);
        }
        shard
    }
}

/// What routing a batch found besides its work: the records the future guard released (and
/// the record whose arrival released each, where a late one is reported, as one engine
/// reports it), and the rejects.
#[derive(Default)]
struct Routed {
    held: Vec<Held>,
    released_at: Vec<usize>,
    rejected: Vec<Rejected>,
}

/// What the shards read a batch's work units from.
struct Units<'u, 'b> {
    batch: &'u Batch,
    parsed: &'u [Parsed<'b>],
    held: &'u [Held],
    held_events: &'u [Option<Event<'u>>],
    file_ids: &'u [u32],
}

impl<'u> Units<'u, '_> {
    /// The event of a work unit, with its origin; `None` for one that did not normalize.
    fn event(&self, item: WorkItem) -> Option<(&Event<'_>, Origin)> {
        match item {
            WorkItem::Record(i) => {
                let (Parsed::Event { event, .. }, Entry::Record { file, line, .. }) =
                    (&self.parsed[i], &self.batch.entries[i])
                else {
                    return None;
                };
                Some((event, file_origin(self.file_ids, *file, *line)))
            }
            WorkItem::Released(k) => {
                let event = self.held_events[k].as_ref()?;
                Some((event, self.held[k].origin))
            }
        }
    }
}

/// Evaluates a routed batch: every shard applies every unit's clocks, and its own units'
/// events; its decisions and late records, by work position.
fn evaluate_batch(
    pool: &rayon::ThreadPool,
    engines: &mut [Engine],
    work: &[Work],
    units: &Units<'_, '_>,
) -> Vec<ShardOutput> {
    pool.install(|| {
        engines
            .par_iter_mut()
            .enumerate()
            .map(|(me, engine)| {
                let mut out = Vec::new();
                let mut taken = Vec::new();
                let mut late = Vec::new();
                for (w, unit) in work.iter().enumerate() {
                    engine.advance_all(&unit.marks, &mut out);
                    if unit.shard == me {
                        if let Some((event, origin)) = units.event(unit.item) {
                            if let Applied::Late { behind_ms } =
                                engine.process(event, origin, &mut out)
                            {
                                late.push((w, behind_ms));
                            }
                        }
                    }
                    taken.extend(out.drain(..).map(|d| (w, d)));
                }
                (taken, late)
            })
            .collect()
    })
}

/// The sequential part of a sharded replay: routing through the time model, the shards'
/// engines, what was seen, and the file names origins point to.
struct Shards<'o> {
    engines: Vec<Engine>,
    router: Router,
    clocks: Clocks,
    released: Vec<Released>,
    tally: Tally,
    names: Vec<String>,
    file_ids: Vec<u32>,
    time: crate::time::TimeConfig,
    options: &'o ReplayOptions,
}

impl<'o> Shards<'o> {
    fn new(
        rules: Arc<RuleSet>,
        config: &EngineConfig,
        threads: usize,
        names: Vec<String>,
        options: &'o ReplayOptions,
    ) -> Shards<'o> {
        let shard_config = EngineConfig {
            max_sessions: config.max_sessions.div_ceil(threads),
            ..config.clone()
        };
        let mut engines: Vec<Engine> = (0..threads)
            .map(|_| {
                let mut engine = Engine::with_shared_rules(rules.clone(), shard_config.clone());
                // Same ids in every engine: origins name files alike whichever shard decides.
                for name in &names {
                    engine.origin_names().intern(name);
                }
                engine
            })
            .collect();
        let file_ids: Vec<u32> = names
            .iter()
            .map(|n| engines[0].origin_names().intern(n))
            .collect();
        Shards {
            engines,
            router: Router {
                routes: HashMap::new(),
                purge_at: 1 << 16,
                newest: i64::MIN,
                idle: config.idle_timeout_ms,
                threads,
            },
            clocks: Clocks::new(config.time.clone()),
            released: Vec::new(),
            tally: Tally::default(),
            names,
            file_ids,
            time: config.time.clone(),
            options,
        }
    }

    /// The file name and line of an origin, as rejects report them.
    fn name_of(&self, origin: Origin) -> (&str, u64) {
        match origin {
            Origin::File { file, line } => (
                self.file_ids
                    .iter()
                    .position(|id| *id == file)
                    .map_or("?", |i| self.names[i].as_str()),
                line,
            ),
            Origin::Kafka { offset, .. } => ("kafka", offset as u64),
        }
    }

    /// Routes a batch in record order through the time stage into `work`, collecting rejects.
    fn route_batch(
        &mut self,
        batch: &Batch,
        parsed: &[Parsed<'_>],
        work: &mut Vec<Work>,
    ) -> Routed {
        work.clear();
        let mut routed = Routed::default();
        for (i, (entry, outcome)) in batch.entries.iter().zip(parsed).enumerate() {
            self.tally.records += 1;
            let (file, line, start, end) = match entry {
                Entry::Record {
                    file,
                    line,
                    start,
                    end,
                }
                | Entry::Broken {
                    file,
                    line,
                    start,
                    end,
                    ..
                } => (*file, *line, *start, *end),
            };
            let origin = file_origin(&self.file_ids, file, line);
            let bytes = &batch.bytes[start..end];
            let reject = match (entry, outcome) {
                (Entry::Broken { reject, .. }, _)
                | (Entry::Record { .. }, Parsed::Rejected(reject)) => reject,
                (
                    Entry::Record { .. },
                    Parsed::Event {
                        event,
                        session,
                        child,
                    },
                ) => {
                    self.admit(
                        i,
                        (event, *session, *child),
                        (bytes, origin),
                        work,
                        &mut routed,
                    );
                    continue;
                }
                (Entry::Record { .. }, Parsed::Broken) => continue,
            };
            routed.rejected.push(Rejected {
                position: (i, 0),
                origin,
                reject: reject.clone(),
                bytes: bytes.to_vec(),
            });
        }
        routed
    }

    /// One event of record `i` through the clocks: what it releases is routed first, then the
    /// event itself unless the future guard holds it.
    fn admit(
        &mut self,
        i: usize,
        (event, session, child): (&Event<'_>, u64, Option<u64>),
        (bytes, origin): (&[u8], Origin),
        work: &mut Vec<Work>,
        routed: &mut Routed,
    ) {
        *self.tally.events_by_source.entry(event.source).or_default() += 1;
        let t = event.time.millis();
        let admit = self
            .clocks
            .admit(event.source, t, bytes, origin, &mut self.released);
        for outcome in std::mem::take(&mut self.released) {
            match outcome {
                Released::Apply(held) => {
                    self.clocks.applied(held.source, held.time);
                    // Normalized again only to route it (rare).
                    let bump = Bump::new();
                    if let Ok(e) = self.options.normalizer.normalize(&held.bytes, &bump) {
                        let shard = self.router.shard(
                            text_hash(&e.session.key),
                            child_hash(&e),
                            e.time.millis(),
                        );
                        work.push(Work {
                            item: WorkItem::Released(routed.held.len()),
                            shard,
                            marks: self.clocks.watermarks(false),
                        });
                    }
                    routed.held.push(held);
                    routed.released_at.push(i);
                }
                Released::Future { held, ahead_ms } => {
                    routed.rejected.push(Rejected {
                        position: (i, 0),
                        origin: held.origin,
                        reject: future_reject(held.source, ahead_ms),
                        bytes: held.bytes,
                    });
                    *self.tally.future_by_source.entry(held.source).or_default() += 1;
                }
            }
        }
        if admit == Admit::Now {
            self.clocks.applied(event.source, t);
            work.push(Work {
                item: WorkItem::Record(i),
                shard: self.router.shard(session, child, t),
                marks: self.clocks.watermarks(false),
            });
        }
    }

    /// The shards' decisions in record order, their late records added to the rejects. At
    /// one record, timers that came due fire first, in due order (their time is when they
    /// were due, before the record's), then the record's own decisions: the order of one
    /// engine, up to ties between shards.
    fn merge(
        &mut self,
        taken: Vec<ShardOutput>,
        work: &[Work],
        units: &Units<'_, '_>,
        (released_at, rejected): (&[usize], &mut Vec<Rejected>),
    ) -> Vec<Decision> {
        let mut merged: Vec<(usize, i64, usize, Decision)> = Vec::new();
        for (shard, (decisions, late)) in taken.into_iter().enumerate() {
            merged.extend(
                decisions
                    .into_iter()
                    .map(|(w, d)| (w, d.time.millis(), shard, d)),
            );
            for (w, behind_ms) in late {
                let (position, source, origin, bytes) = match work[w].item {
                    WorkItem::Record(i) => {
                        let (
                            Parsed::Event { event, .. },
                            Entry::Record {
                                file,
                                line,
                                start,
                                end,
                            },
                        ) = (&units.parsed[i], &units.batch.entries[i])
                        else {
                            continue;
                        };
                        let origin = file_origin(&self.file_ids, *file, *line);
                        let bytes = units.batch.bytes[*start..*end].to_vec();
                        ((i, 1), event.source, origin, bytes)
                    }
                    WorkItem::Released(k) => {
                        let h = &units.held[k];
                        ((released_at[k], 0), h.source, h.origin, h.bytes.clone())
                    }
                };
                *self.tally.late_by_source.entry(source).or_default() += 1;
                rejected.push(Rejected {
                    position,
                    origin,
                    reject: late_reject(&self.time, source, behind_ms),
                    bytes,
                });
            }
        }
        merged.sort_by(|a, b| (a.0, a.1, &a.3.decision_id).cmp(&(b.0, b.1, &b.3.decision_id)));
        merged.into_iter().map(|(_, _, _, d)| d).collect()
    }

    /// A batch's decisions, then its rejects, in record order.
    fn emit(
        &mut self,
        decisions: &[Decision],
        rejected: &mut [Rejected],
        out: &mut Output<'_, '_>,
    ) -> anyhow::Result<()> {
        for decision in decisions {
            (out.on_decision)(decision).context("writing output")?;
        }
        rejected.sort_by_key(|r| r.position);
        for r in rejected.iter() {
            *self
                .tally
                .rejects_by_reason
                .entry(r.reject.reason)
                .or_default() += 1;
            let (name, line) = self.name_of(r.origin);
            (out.on_reject)(name, line, &r.reject, &r.bytes).context("writing output")?;
        }
        Ok(())
    }

    /// The end of the input, or a stop: held records are future; at the end (`end_of_input`)
    /// every clock moves to its newest record and the timers of the last grace fire. A stop is
    /// not the end of the input: those timers stay pending.
    fn finish(&mut self, end_of_input: bool, out: &mut Output<'_, '_>) -> anyhow::Result<()> {
        self.clocks.finish(&mut self.released);
        for outcome in std::mem::take(&mut self.released) {
            if let Released::Future { held, ahead_ms } = outcome {
                *self.tally.future_by_source.entry(held.source).or_default() += 1;
                let reject = future_reject(held.source, ahead_ms);
                *self
                    .tally
                    .rejects_by_reason
                    .entry(reject.reason)
                    .or_default() += 1;
                let (name, line) = self.name_of(held.origin);
                (out.on_reject)(name, line, &reject, &held.bytes).context("writing output")?;
            }
        }
        let mut last: Vec<Decision> = Vec::new();
        if end_of_input {
            for engine in self.engines.iter_mut() {
                engine.finish(&self.clocks.watermarks(true), &mut last);
            }
        }
        crate::evaluator::canonical_order(&mut last);
        for decision in &last {
            (out.on_decision)(decision).context("writing output")?;
        }
        Ok(())
    }
}

/// The origin of a batch entry: its file's interned id and its line.
fn file_origin(file_ids: &[u32], file: u32, line: u64) -> Origin {
    Origin::File {
        file: file_ids[file as usize],
        line,
    }
}

fn child_hash(event: &Event<'_>) -> Option<u64> {
    event
        .lineage
        .as_ref()
        .and_then(|l| l.child.as_ref())
        .map(text_hash)
}
