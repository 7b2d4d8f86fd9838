//! Replay on several threads, sharded by session key (`replay --threads N`).
//!
//! Records are read on their own thread into batches (recycled, so their buffers are allocated
//! once). Each batch is normalized in parallel on a rayon pool of N threads (contiguous chunks,
//! one per thread, written in place), then routed on the calling thread: an event goes to
//! the shard its session key hashes to — or, for a chained session, to its parent's shard, so
//! that a child still inherits its parent's state — and every shard's engine then walks the
//! whole batch in parallel: it evaluates its own events and only moves its clock on the
//! others'. Every engine therefore sees the same watermark at the same record as a single
//! engine would, so timers, idle expiry and late records behave as in a one-thread replay, and
//! decisions are emitted in record order (at one record: by decision time, then shard).
//!
//! Differences from one thread, by design: `--max-sessions` is split evenly between the shards
//! (each evicts its own idlest session), and `--allowed-lateness` above zero is refused (the
//! event-time sequencer is not sharded).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bumpalo::Bump;
use rayon::prelude::*;

use super::{Progress, RejectSink, ReplayOptions, ReplaySummary};
use crate::decision::Decision;
use crate::engine::{Engine, EngineConfig};
use crate::event::{Event, Reject};
use crate::rule::RuleSet;
use crate::source::file::{self, Item};
use crate::source::Origin;

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

/// Where a chained session's events go: its parent's shard, while it is in use.
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

/// Reads every file into batches on its own thread; an I/O error ends the stream. Batches
/// sent back on the returned sender are reused, so their buffers are allocated (and their
/// pages faulted in) once, not per batch.
fn read_batches<'scope>(
    files: Vec<PathBuf>,
    scope: &'scope std::thread::Scope<'scope, '_>,
) -> (Receiver<anyhow::Result<Batch>>, Sender<Batch>) {
    let (tx, rx) = sync_channel::<anyhow::Result<Batch>>(2);
    let (give_back, returned) = channel::<Batch>();
    scope.spawn(move || {
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
        for (index, path) in files.iter().enumerate() {
            let name = path.display().to_string();
            let result = file::open(path)
                .with_context(|| format!("opening {name}"))
                .and_then(|reader| {
                    file::for_each_record(reader, &mut |item| {
                        let entry = match item {
                            Item::Record { bytes, line } => {
                                let start = batch.bytes.len();
                                batch.bytes.extend_from_slice(bytes);
                                Entry::Record {
                                    file: index as u32,
                                    line,
                                    start,
                                    end: batch.bytes.len(),
                                }
                            }
                            Item::Broken { line, reject } => Entry::Broken {
                                file: index as u32,
                                line,
                                reject,
                            },
                        };
                        batch.entries.push(entry);
                        if batch.entries.len() >= BATCH_RECORDS {
                            let full = std::mem::replace(&mut batch, fresh());
                            let _ = tx.send(Ok(full));
                        }
                    })
                    .with_context(|| format!("reading {name}"))
                });
            if let Err(e) = result {
                let _ = tx.send(Err(e));
                return;
            }
        }
        if !batch.entries.is_empty() {
            let _ = tx.send(Ok(batch));
        }
    });
    (rx, give_back)
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
                        child: event
                            .lineage
                            .as_ref()
                            .and_then(|l| l.child.as_ref())
                            .map(text_hash),
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

/// Replays `paths` on `threads` engine shards; decisions reach `on_decision` in record order.
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
    anyhow::ensure!(
        options.allowed_lateness_ms == 0,
        "--threads above 1 needs --allowed-lateness 0s (the event-time sequencer is not sharded)"
    );
    let started = Instant::now();
    let files = file::expand_paths(paths).context("listing input paths")?;
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
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
    let mut summary = ReplaySummary {
        files: files.len(),
        bytes: files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
        ..ReplaySummary::default()
    };
    // One arena per normalize thread, holding a whole chunk's records until the batch is done;
    // sized up front, so that a reset keeps one chunk large enough for every later batch.
    let mut scratch: Vec<Bump> = (0..threads)
        .map(|_| Bump::with_capacity(BATCH_RECORDS.div_ceil(threads) * 4096))
        .collect();
    let mut routes: HashMap<u64, Route> = HashMap::new();
    let mut purge_at = 1 << 16;
    let mut watermark = i64::MIN;
    let idle = config.idle_timeout_ms;
    let mut progress = Progress::new(
        options.progress && io::IsTerminal::is_terminal(&io::stderr()),
        summary.bytes,
    );

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sessionguard-shard-{i}"))
        .build()
        .context("starting the engine threads")?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (batches, give_back) = read_batches(files.clone(), scope);
        let mut parsed_buffer: Vec<Parsed<'static>> = Vec::new();
        let mut shard_of: Vec<usize> = Vec::new();
        for batch in batches {
            let batch = batch?;
            for bump in &mut scratch {
                bump.reset();
            }
            // 1. Normalize in parallel, one contiguous chunk per thread, in place.
            let mut parsed: Vec<Parsed<'_>> = recycle(std::mem::take(&mut parsed_buffer));
            parsed.resize_with(batch.entries.len(), || Parsed::Broken);
            let chunk_len = batch.entries.len().div_ceil(threads);
            pool.scope(|s| {
                for ((entries, out), bump) in batch
                    .entries
                    .chunks(chunk_len)
                    .zip(parsed.chunks_mut(chunk_len))
                    .zip(scratch.iter_mut())
                {
                    let batch = &batch;
                    // Moved in as `&mut` (a `Bump` is not `Sync`), read as shared.
                    s.spawn(move |_| normalize_chunk(options, batch, entries, bump, out));
                }
            });
            // 2. Route in record order; count and hand over rejects.
            shard_of.clear();
            shard_of.resize(parsed.len(), usize::MAX);
            for (i, (entry, outcome)) in batch.entries.iter().zip(&parsed).enumerate() {
                summary.records += 1;
                match (entry, outcome) {
                    (Entry::Broken { file, line, reject }, _) => {
                        *summary.rejects_by_reason.entry(reject.reason).or_default() += 1;
                        on_reject(&names[*file as usize], *line, reject, &[])
                            .context("writing output")?;
                    }
                    (
                        Entry::Record {
                            file,
                            line,
                            start,
                            end,
                        },
                        Parsed::Rejected(reject),
                    ) => {
                        *summary.rejects_by_reason.entry(reject.reason).or_default() += 1;
                        on_reject(
                            &names[*file as usize],
                            *line,
                            reject,
                            &batch.bytes[*start..*end],
                        )
                        .context("writing output")?;
                    }
                    (
                        _,
                        Parsed::Event {
                            event,
                            session,
                            child,
                        },
                    ) => {
                        *summary.events_by_source.entry(event.source).or_default() += 1;
                        let t = event.time.millis();
                        watermark = watermark.max(t);
                        let shard = match routes.get_mut(session) {
                            Some(route) => {
                                route.last_seen = route.last_seen.max(t);
                                route.shard
                            }
                            None => (*session % threads as u64) as usize,
                        };
                        if let Some(child) = child {
                            routes.insert(
                                *child,
                                Route {
                                    shard,
                                    last_seen: t,
                                },
                            );
                        }
                        shard_of[i] = shard;
                    }
                    (Entry::Record { .. }, Parsed::Broken) => {}
                }
            }
            if let Some(Entry::Record { file, line, .. } | Entry::Broken { file, line, .. }) =
                batch.entries.last()
            {
                progress.tick(*file as usize, files.len(), summary.records, *line);
            }
            if routes.len() > purge_at {
                routes.retain(|_, r| r.last_seen.saturating_add(idle) >= watermark);
                purge_at = (routes.len() * 2).max(1 << 16);
            }
            // 3. Evaluate in parallel: each shard its own events, every shard the clock.
            let taken: Vec<Vec<(usize, Decision)>> = pool.install(|| {
                engines
                    .par_iter_mut()
                    .enumerate()
                    .map(|(me, engine)| {
                        let mut out = Vec::new();
                        let mut taken = Vec::new();
                        for (i, outcome) in parsed.iter().enumerate() {
                            let Parsed::Event { event, .. } = outcome else {
                                continue;
                            };
                            if shard_of[i] == me {
                                let Entry::Record { file, line, .. } = batch.entries[i] else {
                                    continue;
                                };
                                let origin = Origin::File {
                                    file: file_ids[file as usize],
                                    line,
                                };
                                engine.process(event, origin, &mut out);
                            } else {
                                engine.advance(event.time.millis(), &mut out);
                            }
                            taken.extend(out.drain(..).map(|d| (i, d)));
                        }
                        taken
                    })
                    .collect()
            });
            // 4. Emit in record order. At one record, timers that came due fire first, in due
            //    order (their time is when they were due, before the record's), then the
            //    record's own decisions: the order of one engine, up to ties between shards.
            let mut merged: Vec<(usize, i64, usize, Decision)> = taken
                .into_iter()
                .enumerate()
                .flat_map(|(shard, ds)| {
                    ds.into_iter()
                        .map(move |(i, d)| (i, d.time.millis(), shard, d))
                })
                .collect();
            merged.sort_by_key(|(i, time, shard, _)| (*i, *time, *shard));
            for (_, _, _, decision) in &merged {
                on_decision(decision).context("writing output")?;
            }
            parsed_buffer = recycle(parsed);
            let _ = give_back.send(batch);
        }
        Ok(())
    })?;

    progress.finish();
    for engine in &engines {
        let stats = engine.stats();
        summary.late += stats.late_events;
        summary.sessions += stats.sessions_created;
        summary.evicted += stats.sessions_evicted;
    }
    summary.decisions_by_rule = rules
        .rules
        .iter()
        .map(|r| r.id.clone())
        .chain([crate::decision::KILL_NOT_ENFORCED.to_owned()])
        .enumerate()
        .map(|(i, id)| {
            let n = engines.iter().map(|e| e.stats().decisions_by_rule[i]).sum();
            (id, n)
        })
        .collect();
    summary.elapsed = started.elapsed();
    Ok(summary)
}
