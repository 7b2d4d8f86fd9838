//! Writing an archive: every normalized event and every decision of a replay, as Parquet
//! (arrow-rs), hive-partitioned by date and source, zstd-compressed, rolled by size.
//!
//! ```text
//! DIR/_sessionguard_archive.json                       the manifest, written last
//! DIR/events/date=2024-11-04/source=cloudtrail/part-00000.parquet
//! DIR/decisions/date=2024-11-04/part-00000.parquet
//! ```
//!
//! The replay's thread only copies each record that normalized into its partition's
//! shipment (and each decision into a list); every 2,048 records a shipment goes over a bounded
//! channel to a column thread. That thread normalizes the records again — the replay's event
//! borrows an input buffer that does not outlive the call — builds the batch's columns (the
//! shipment's bytes become its `raw` column as they are) and sends the batch over a second
//! bounded channel to a writer thread, which encodes, compresses and writes it. Both threads
//! run at a lower priority than the engine's. So neither the columns nor the Parquet work is in
//! the engine's way (docs/history.md, "Measured", has what that bought). A file is written as
//! `part-N.parquet.partial` and renamed when closed, so a reader never sees half a file, and
//! the manifest, written once everything is closed, marks a complete archive: it names the
//! input files in the order the replay met them, so an archived event's origin means what it
//! meant (see [`super::read`]).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use super::schema::{
    raw_buffer_of, DecisionColumns, EventColumns, RawColumn, BATCH_RECORD_BYTES, DECISIONS, EVENTS,
    FORMAT_VERSION,
};
use bumpalo::Bump;

use crate::decision::Decision;
use crate::event::{Event, Normalizer, Source, Timestamp};

/// The manifest's file name, at the archive's root.
pub const MANIFEST: &str = "_sessionguard_archive.json";

/// Records of a partition shipped together, and rows of a batch: a shipment is one batch of
/// `events`. About 2.5 MiB of records on bench.sh's mix, still in cache when the column and
/// writer threads read them. 8,192 made `archive` 9 % slower when the engine's thread built the
/// columns; with the column thread, 1,024 and 4,096 were no faster (medians of 5 interleaved
/// runs: 3.55 s and 3.51 s against 3.49 s). The files are the same whatever it is: row groups
/// and pages are the Parquet writer's own.
const BATCH_ROWS: usize = 2048;

/// Rows per Parquet row group at most (the unit a reader skips by its statistics).
const ROW_GROUP_ROWS: usize = 65_536;

/// Files held open at once; past it the one unused longest is closed (its partition's next
/// batch starts a new file).
const MAX_OPEN_FILES: usize = 64;

/// Batches in flight to the writer thread: bounds the memory when writing falls behind.
const CHANNEL_BATCHES: usize = 4;

/// Shipments in flight to the column thread.
const CHANNEL_SHIPMENTS: usize = 4;

/// How much the column and writer threads lower their scheduling priority (nice value) below
/// the thread that starts the archive. On 2 cores the three threads compete for 2; at the same
/// priority the engine's thread was off its core a tenth of the time, and `archive` took 3.47 s
/// against 3.35 s niced (bench.sh's mix, medians of 4 interleaved runs; nice 19 was no better).
/// When the archive falls behind, its bounded channels make the engine wait, so nothing is lost
/// and no memory grows: the engine's thread just goes first.
const BACKGROUND_NICE: i32 = 10;

/// The default size a file is rolled at.
pub const DEFAULT_ROLL_BYTES: u64 = 128 << 20;

/// Lowers the calling thread's priority by [`BACKGROUND_NICE`] (Linux: each thread has a nice
/// value of its own; elsewhere nothing is done). A failure only leaves the priority as it was.
fn run_in_background() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = Some(rustix::thread::gettid());
        if let Ok(nice) = getpriority_process(thread) {
            let _ = setpriority_process(thread, (nice + BACKGROUND_NICE).min(19));
        }
    }
}

/// What an archive holds, written at its root when it is complete.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// The input files of the replay that wrote it, in the order it met them: an event's
    /// `origin_file` is one of these, and replaying the archive names them in this order.
    pub origin_files: Vec<String>,
    pub events: u64,
    pub decisions: u64,
    /// Every Parquet file, relative to the archive's root, in name order.
    pub files: Vec<String>,
}

impl Manifest {
    /// Reads the manifest of the archive at `dir`.
    pub fn read(dir: &Path) -> io::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = fs::read(&path)?;
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not an archive manifest: {e}", path.display()),
            )
        })?;
        if manifest.format != FORMAT_VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: archive format {} (this sessionguard reads format {FORMAT_VERSION})",
                    path.display(),
                    manifest.format
                ),
            ));
        }
        Ok(manifest)
    }
}

/// Whether `path` is the root of an archive (a directory holding a manifest).
pub fn is_archive(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
}

const DAY_MILLIS: i64 = 86_400_000;

/// Days since the epoch of an event time (UTC): the archive's date partitions.
fn day_of(time: Timestamp) -> i64 {
    time.millis().div_euclid(DAY_MILLIS)
}

/// `date=YYYY-MM-DD` of an event time (UTC).
fn date_partition(time: Timestamp) -> String {
    let text = time.to_string();
    format!("date={}", &text[..text.find('T').unwrap_or(text.len())])
}

/// What the writer thread is asked to do.
enum Job {
    /// Write a batch to its partition directory's open file.
    Batch {
        partition: PathBuf,
        batch: RecordBatch,
    },
    /// Close every open file (a roll by time): the next batch of a partition starts a new one.
    CloseAll,
}

/// The origin name an archive gives a record read from a Kafka partition (its `origin_file`;
/// the offset is its `origin_line`). Topic names cannot hold `/`, so it parses back.
pub fn kafka_origin(topic: &str, partition: i32) -> String {
    format!("{KAFKA_ORIGIN_PREFIX}{topic}/{partition}")
}

/// The topic and partition of an origin name [`kafka_origin`] made; `None` for a file name.
pub fn parse_kafka_origin(name: &str) -> Option<(&str, i32)> {
    let rest = name.strip_prefix(KAFKA_ORIGIN_PREFIX)?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?))
}

const KAFKA_ORIGIN_PREFIX: &str = "kafka://";

/// Writes an archive; see the module docs. Lives on the replay's thread, which only copies
/// each record into its partition's next [`Shipment`].
pub struct ArchiveWriter {
    dir: PathBuf,
    /// Each partition's records not shipped yet.
    events: HashMap<(i64, Source), Shipment>,
    /// Decisions not shipped yet, each with its `seq`.
    decisions: Vec<(u64, Decision)>,
    next_event: u64,
    next_decision: u64,
    /// `(next_event, next_decision)` at the last [`ArchiveWriter::roll`].
    rolled_at: (u64, u64),
    orders: Option<SyncSender<Order>>,
    /// `raw` buffers of batches the writer thread has written, for the next shipments to reuse.
    spare_buffers: Receiver<Vec<u8>>,
    /// The column thread; it waits for the writer thread and gives back the files written.
    columns: Option<JoinHandle<io::Result<Vec<String>>>>,
}

impl ArchiveWriter {
    /// Starts an archive in `dir` (created if absent; it must not hold an archive already),
    /// rolling files at about `roll_bytes`. `normalizer` must be the one the replay reads
    /// with: the column thread normalizes each record again with it.
    pub fn create(
        dir: &Path,
        roll_bytes: u64,
        normalizer: Normalizer,
    ) -> io::Result<ArchiveWriter> {
        if is_archive(dir) || dir.join("events").exists() || dir.join("decisions").exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already holds an archive: archive into a new directory",
                    dir.display()
                ),
            ));
        }
        // Both tables' roots exist even when empty, so a query finds them.
        fs::create_dir_all(dir.join("events"))?;
        fs::create_dir_all(dir.join("decisions"))?;
        let (jobs, receive_jobs) = sync_channel(CHANNEL_BATCHES);
        // Room for every batch and shipment in flight: a buffer that finds the channel full
        // is dropped.
        let (spares, spare_buffers) = sync_channel(CHANNEL_BATCHES + CHANNEL_SHIPMENTS + 1);
        let root = dir.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                run_in_background();
                write_files(&root, roll_bytes.max(1), receive_jobs, spares)
            })?;
        let (orders, receive_orders) = sync_channel(CHANNEL_SHIPMENTS);
        let columns = std::thread::Builder::new()
            .name("archive-columns".into())
            .spawn(move || {
                run_in_background();
                build_columns(&normalizer, receive_orders, jobs, writer)
            })?;
        Ok(ArchiveWriter {
            dir: dir.to_path_buf(),
            events: HashMap::new(),
            decisions: Vec::new(),
            next_event: 0,
            next_decision: 0,
            rolled_at: (0, 0),
            orders: Some(orders),
            spare_buffers,
            columns: Some(columns),
        })
    }

    /// Adds one normalized event: where it was read from (file name, line) and the record.
    /// Only the record is kept, in the shipment of the event's partition; the column thread
    /// reads the rest from it again.
    pub fn event(&mut self, event: &Event<'_>, origin: (&str, u64), raw: &[u8]) -> io::Result<()> {
        let partition = (day_of(event.time), event.source);
        let spare_buffers = &self.spare_buffers;
        let shipment = self
            .events
            .entry(partition)
            .or_insert_with(|| Shipment::new(spare_buffers.try_recv().unwrap_or_default()));
        shipment.push(self.next_event, origin, raw);
        self.next_event += 1;
        if shipment.raw.rows() >= BATCH_ROWS || shipment.raw.bytes() >= BATCH_RECORD_BYTES {
            let next = Shipment::new(self.spare_buffers.try_recv().unwrap_or_default());
            let shipment = std::mem::replace(shipment, next);
            self.send(Order::Events(partition, shipment))?;
        }
        Ok(())
    }

    /// Adds one decision.
    pub fn decision(&mut self, decision: &Decision) -> io::Result<()> {
        self.decisions.push((self.next_decision, decision.clone()));
        self.next_decision += 1;
        if self.decisions.len() >= BATCH_ROWS {
            let decisions = std::mem::take(&mut self.decisions);
            self.send(Order::Decisions(decisions))?;
        }
        Ok(())
    }

    /// Ships every partition's records and the decisions, whatever their number.
    fn ship_all(&mut self) -> io::Result<()> {
        let mut events: Vec<_> = std::mem::take(&mut self.events).into_iter().collect();
        events.sort_by_key(|(partition, _)| *partition);
        for (partition, shipment) in events {
            if shipment.raw.rows() > 0 {
                self.send(Order::Events(partition, shipment))?;
            }
        }
        if !self.decisions.is_empty() {
            let decisions = std::mem::take(&mut self.decisions);
            self.send(Order::Decisions(decisions))?;
        }
        Ok(())
    }

    fn send(&mut self, order: Order) -> io::Result<()> {
        let sent = self
            .orders
            .as_ref()
            .is_some_and(|orders| orders.send(order).is_ok());
        if sent {
            return Ok(());
        }
        // The column thread stopped: its error says why.
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("the archive's column thread stopped")))
    }

    /// Waits for the column thread (which waits for the writer thread); the files written.
    fn join(&mut self) -> io::Result<Vec<String>> {
        self.orders = None;
        match self.columns.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| io::Error::other("the archive's column thread panicked"))?,
            None => Err(io::Error::other("the archive was already closed")),
        }
    }

    /// Rolls by time: the rows added so far are written and every open file is closed
    /// (renamed from `.partial`, readable by any Parquet reader); the next row of a partition
    /// starts its next file. Nothing is done when nothing was added since the last roll.
    pub fn roll(&mut self) -> io::Result<()> {
        if self.next_event == self.rolled_at.0 && self.next_decision == self.rolled_at.1 {
            return Ok(());
        }
        self.rolled_at = (self.next_event, self.next_decision);
        self.ship_all()?;
        self.send(Order::CloseAll)
    }

    /// Events and decisions added so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.next_event, self.next_decision)
    }

    /// Writes what is left, closes every file and writes the manifest. `origin_files`: the
    /// replay's input files in the order it met them (the ids of its origins).
    pub fn finish(mut self, origin_files: Vec<String>) -> io::Result<Manifest> {
        self.ship_all()?;
        let mut files = self.join()?;
        files.sort();
        let manifest = Manifest {
            format: FORMAT_VERSION,
            origin_files,
            events: self.next_event,
            decisions: self.next_decision,
            files,
        };
        let partial = self.dir.join(format!("{MANIFEST}.partial"));
        fs::write(&partial, serde_json::to_vec_pretty(&manifest)?)?;
        fs::rename(&partial, self.dir.join(MANIFEST))?;
        Ok(manifest)
    }
}

/// A partition's records on their way from the replay's thread to the column thread: at most
/// a batch of them, whose bytes become the batch's `raw` column as they are.
struct Shipment {
    raw: RawColumn,
    /// Each record's `seq`, origin (an index in `origins`) and line.
    rows: Vec<(u64, usize, u64)>,
    origins: Vec<String>,
}

impl Shipment {
    /// An empty shipment whose records go into `buffer`.
    fn new(buffer: Vec<u8>) -> Shipment {
        Shipment {
            raw: RawColumn::with_buffer(buffer),
            rows: Vec::with_capacity(BATCH_ROWS),
            origins: Vec::new(),
        }
    }

    fn push(&mut self, seq: u64, (name, line): (&str, u64), raw: &[u8]) {
        // Records come file by file, or from a few Kafka partitions: the last origin is
        // nearly always the one.
        let origin = match self.origins.iter().rposition(|known| known == name) {
            Some(index) => index,
            None => {
                self.origins.push(name.to_owned());
                self.origins.len() - 1
            }
        };
        self.raw.push(raw);
        self.rows.push((seq, origin, line));
    }
}

/// What the column thread is asked to do.
enum Order {
    /// Make a partition's shipped records a batch.
    Events((i64, Source), Shipment),
    /// Add these decisions to their partitions' batches.
    Decisions(Vec<(u64, Decision)>),
    /// Send every partition's decisions on, then close every open file (a roll by time).
    CloseAll,
}

/// The `events` partition directory of a day (days since the epoch) and source.
fn events_partition((day, source): (i64, Source)) -> PathBuf {
    Path::new("events")
        .join(date_partition(Timestamp(day * DAY_MILLIS)))
        .join(format!("source={}", source.as_str()))
}

/// The `decisions` partition directory of a day.
fn decisions_partition(day: i64) -> PathBuf {
    Path::new("decisions").join(date_partition(Timestamp(day * DAY_MILLIS)))
}

/// The column thread: makes each shipment a batch of `events` — its records normalized again
/// with `normalizer` (the replay's event borrows an input that does not outlive the call) —
/// and gathers the decisions into batches per day, for the writer thread; at the end sends
/// what is left and waits for `writer`. The files written.
fn build_columns(
    normalizer: &Normalizer,
    orders: Receiver<Order>,
    jobs: SyncSender<Job>,
    writer: JoinHandle<io::Result<Vec<String>>>,
) -> io::Result<Vec<String>> {
    let send = |job| {
        jobs.send(job)
            .map_err(|_| io::Error::other("the archive's writer thread stopped"))
    };
    let mut scratch = Bump::new();
    let mut events = EventColumns::default();
    let mut decisions: HashMap<i64, DecisionColumns> = HashMap::new();
    let send_decisions = |decisions: &mut HashMap<i64, DecisionColumns>| {
        let mut days: Vec<_> = std::mem::take(decisions).into_iter().collect();
        days.sort_by_key(|(day, _)| *day);
        days.into_iter()
            .filter(|(_, columns)| columns.rows() > 0)
            .try_for_each(|(day, mut columns)| {
                let batch = columns.finish().map_err(io::Error::other)?;
                send(Job::Batch {
                    partition: decisions_partition(day),
                    batch,
                })
            })
    };
    let built = (|| -> io::Result<()> {
        for order in orders {
            match order {
                Order::Events(partition, shipment) => {
                    let added =
                        add_shipment(&shipment, partition, normalizer, &scratch, &mut events);
                    scratch.reset();
                    added?;
                    let batch = events.finish(shipment.raw).map_err(io::Error::other)?;
                    send(Job::Batch {
                        partition: events_partition(partition),
                        batch,
                    })?;
                }
                Order::Decisions(list) => {
                    for (seq, decision) in list {
                        let json = serde_json::to_string(&decision)?;
                        let day = day_of(decision.time);
                        let columns = decisions.entry(day).or_default();
                        columns.push(seq, &decision, &json);
                        if columns.rows() >= BATCH_ROWS {
                            let batch = columns.finish().map_err(io::Error::other)?;
                            send(Job::Batch {
                                partition: decisions_partition(day),
                                batch,
                            })?;
                        }
                    }
                }
                Order::CloseAll => {
                    send_decisions(&mut decisions)?;
                    send(Job::CloseAll)?;
                }
            }
        }
        send_decisions(&mut decisions)
    })();
    // Ends the writer thread's jobs: it closes its files and returns.
    drop(jobs);
    let written = writer
        .join()
        .map_err(|_| io::Error::other("the archive's writer thread panicked"))?;
    // When the writer thread failed, a send here failed for that reason: its error says why.
    let files = written?;
    built.map(|()| files)
}

/// Adds a shipment's records, normalized again, to `columns`: every column but `raw`, which
/// is the shipment's own. A record that does not normalize as the replay's did, into this
/// partition, is an error: its row would not be the replay's event.
fn add_shipment(
    shipment: &Shipment,
    partition: (i64, Source),
    normalizer: &Normalizer,
    scratch: &Bump,
    columns: &mut EventColumns,
) -> io::Result<()> {
    let differs = |(name, line): (&str, u64), what: &dyn std::fmt::Display| {
        io::Error::other(format!(
            "{name}:{line}: normalized again for the archive, the record {what}"
        ))
    };
    for (row, &(seq, origin, line)) in shipment.rows.iter().enumerate() {
        let origin = (shipment.origins[origin].as_str(), line);
        let event = normalizer
            .normalize(shipment.raw.get(row), scratch)
            .map_err(|reject| differs(origin, &format_args!("is rejected: {reject}")))?;
        if (day_of(event.time), event.source) != partition {
            return Err(differs(origin, &"falls in another partition"));
        }
        columns.push(seq, &event, origin);
    }
    Ok(())
}

/// zstd level of the record columns (`raw`, `decision`): most of an archive's bytes. Measured on
/// 100,000 `gen` records (docs/history.md, "Measured"): level 3 with 8 MiB pages makes `raw`
/// 12% smaller than the crate's default (level 1, 1 MiB pages) for the same encoding time;
/// level 9 another 18% smaller but about 5× slower, which the writer thread would not keep up
/// with at `replay`'s rate.
const RECORD_ZSTD_LEVEL: i32 = 3;

/// Page size of the record columns: a larger page gives zstd more of the same shapes to match.
const RECORD_PAGE_BYTES: usize = 8 << 20;

/// The Parquet settings of every archive file.
fn writer_properties() -> WriterProperties {
    let record_zstd = ZstdLevel::try_new(RECORD_ZSTD_LEVEL).unwrap_or_default();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for record in ["raw", "decision"] {
        // The record itself is unique per row: a dictionary would only be given up.
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(record), false)
            .set_column_compression(ColumnPath::from(record), Compression::ZSTD(record_zstd))
            .set_column_data_page_size_limit(ColumnPath::from(record), RECORD_PAGE_BYTES);
    }
    // `seq` and `origin_line` climb by small steps: deltas pack them in a few bits a row.
    for climbing in ["seq", "origin_line"] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(climbing), false)
            .set_column_encoding(ColumnPath::from(climbing), Encoding::DELTA_BINARY_PACKED);
    }
    builder
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "sessionguard.archive.format".to_owned(),
            FORMAT_VERSION.to_string(),
        )]))
        .set_created_by(format!("sessionguard {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A partition's file being written.
struct OpenFile {
    writer: ArrowWriter<File>,
    partial: PathBuf,
    path: PathBuf,
    last_used: u64,
}

impl OpenFile {
    fn close(self) -> io::Result<()> {
        self.writer.close().map_err(io::Error::other)?;
        fs::rename(&self.partial, &self.path)
    }
}

/// The writer thread: writes each batch to its partition's open file, rolling at
/// `roll_bytes` (and closing every file when asked to, a roll by time); at the end closes
/// every file. Each written batch's `raw` buffer goes back through `spares`. The files written,
/// relative to `root`.
fn write_files(
    root: &Path,
    roll_bytes: u64,
    jobs: Receiver<Job>,
    spares: SyncSender<Vec<u8>>,
) -> io::Result<Vec<String>> {
    let mut open: HashMap<PathBuf, OpenFile> = HashMap::new();
    let mut next_index: HashMap<PathBuf, u32> = HashMap::new();
    let mut written = Vec::new();
    let mut clock = 0u64;
    let properties = writer_properties();
    let result = (|| -> io::Result<()> {
        for job in jobs {
            let (partition, batch) = match job {
                Job::Batch { partition, batch } => (partition, batch),
                Job::CloseAll => {
                    for (_, file) in open.drain() {
                        file.close()?;
                    }
                    continue;
                }
            };
            clock += 1;
            if !open.contains_key(&partition) {
                if open.len() >= MAX_OPEN_FILES {
                    let oldest = open
                        .iter()
                        .min_by_key(|(_, f)| f.last_used)
                        .map(|(p, _)| p.clone());
                    if let Some(file) = oldest.and_then(|p| open.remove(&p)) {
                        file.close()?;
                    }
                }
                let index = next_index.entry(partition.clone()).or_default();
                let relative = partition.join(format!("part-{index:05}.parquet"));
                *index += 1;
                let dir = root.join(&partition);
                fs::create_dir_all(&dir)?;
                let path = root.join(&relative);
                let partial = path.with_extension("parquet.partial");
                let schema = if partition.starts_with("events") {
                    EVENTS.clone()
                } else {
                    DECISIONS.clone()
                };
                let writer =
                    ArrowWriter::try_new(File::create(&partial)?, schema, Some(properties.clone()))
                        .map_err(io::Error::other)?;
                written.push(relative.to_string_lossy().into_owned());
                open.insert(
                    partition.clone(),
                    OpenFile {
                        writer,
                        partial,
                        path,
                        last_used: clock,
                    },
                );
            }
            let file = open.get_mut(&partition).expect("opened above");
            file.last_used = clock;
            file.writer.write(&batch).map_err(io::Error::other)?;
            if let Some(buffer) = raw_buffer_of(batch) {
                let _ = spares.try_send(buffer);
            }
            let size = file.writer.bytes_written() + file.writer.in_progress_size();
            if size as u64 >= roll_bytes {
                if let Some(file) = open.remove(&partition) {
                    file.close()?;
                }
            }
        }
        Ok(())
    })();
    // Close what is open either way, so the files written so far are readable.
    let mut closed = Ok(());
    for (_, file) in open.drain() {
        if let Err(e) = file.close() {
            closed = Err(e);
        }
    }
    result.and(closed)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use bumpalo::Bump;

    use super::*;

    /// No `eventVersion`: only a normalizer forced to CloudTrail reads it.
    const UNDETECTED: &str = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2024-08-01T10:00:00Z","userIdentity":{"accountId":"1","accessKeyId":"ASIAX"}}"#;
    const CLOUDTRAIL_NEXT_DAY: &str = r#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2024-08-02T10:00:00Z","userIdentity":{"accountId":"1","accessKeyId":"ASIAX"}}"#;

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sg-archive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn cloudtrail() -> Normalizer {
        Normalizer {
            forced: Some(Source::Cloudtrail),
            ..Normalizer::default()
        }
    }

    /// `UNDETECTED` read as CloudTrail.
    fn undetected_event() -> Event<'static> {
        let scratch = Box::leak(Box::new(Bump::new()));
        cloudtrail()
            .normalize(UNDETECTED.as_bytes(), scratch)
            .unwrap()
    }

    #[test]
    fn the_column_thread_reads_each_record_with_the_replays_normalizer() {
        let dir = fresh_dir("forced");
        let event = undetected_event();
        let mut writer = ArchiveWriter::create(&dir, DEFAULT_ROLL_BYTES, cloudtrail()).unwrap();
        writer
            .event(&event, ("forced.jsonl", 7), UNDETECTED.as_bytes())
            .unwrap();
        let manifest = writer.finish(vec!["forced.jsonl".into()]).unwrap();
        assert_eq!(manifest.events, 1);
        assert_eq!(
            manifest.files,
            ["events/date=2024-08-01/source=cloudtrail/part-00000.parquet"]
        );

        // Read with another normalizer than the replay's, the record is not the replay's event:
        // the archive fails and says which record, rather than write another row.
        let dir = fresh_dir("default");
        let mut writer =
            ArchiveWriter::create(&dir, DEFAULT_ROLL_BYTES, Normalizer::default()).unwrap();
        writer
            .event(&event, ("forced.jsonl", 7), UNDETECTED.as_bytes())
            .unwrap();
        let error = writer.finish(vec!["forced.jsonl".into()]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("forced.jsonl:7: normalized again for the archive, the record is rejected: unknown_source"),
            "{error}"
        );
        assert!(
            !is_archive(&dir),
            "no manifest marks a failed archive complete"
        );
    }

    #[test]
    fn a_record_that_is_not_the_events_fails_the_archive() {
        let dir = fresh_dir("partition");
        let event = undetected_event();
        let mut writer = ArchiveWriter::create(&dir, DEFAULT_ROLL_BYTES, cloudtrail()).unwrap();
        writer
            .event(&event, ("a.jsonl", 3), CLOUDTRAIL_NEXT_DAY.as_bytes())
            .unwrap();
        let error = writer.finish(Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a.jsonl:3: normalized again for the archive, the record falls in another partition"
        );
    }

    #[test]
    fn the_writer_threads_own_error_reaches_the_replay() {
        let dir = fresh_dir("blocked");
        let event = undetected_event();
        let mut writer = ArchiveWriter::create(&dir, DEFAULT_ROLL_BYTES, cloudtrail()).unwrap();
        // A file where the event's partition directory would go.
        fs::write(dir.join("events/date=2024-08-01"), b"").unwrap();
        let mut failed = None;
        for line in 0..(BATCH_ROWS * (CHANNEL_SHIPMENTS + CHANNEL_BATCHES + 4)) as u64 {
            if let Err(e) = writer.event(&event, ("a.jsonl", line), UNDETECTED.as_bytes()) {
                failed = Some(e);
                break;
            }
        }
        let error = failed.expect("a replay's next record learns that writing failed");
        assert_eq!(error.kind(), io::ErrorKind::NotADirectory, "{error}");
    }

    /// The nice value of each thread of this process whose name starts with `prefix`.
    #[cfg(target_os = "linux")]
    fn nice_of_threads(prefix: &str) -> Vec<(String, i32)> {
        let mut found = Vec::new();
        for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
            let (Ok(name), Ok(stat)) = (
                fs::read_to_string(task.path().join("comm")),
                fs::read_to_string(task.path().join("stat")),
            ) else {
                continue; // the thread ended
            };
            let name = name.trim().to_owned();
            // Field 19 is the nice value; the fields after the name (in parentheses) start at 3.
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            let nice: i32 = after_name.split(' ').nth(16).unwrap().parse().unwrap();
            if name.starts_with(prefix) {
                found.push((name, nice));
            }
        }
        found
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "a deadline for threads to start, not engine time"
    )]
    fn the_archives_threads_give_way_to_the_engines() {
        let engine = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let dir = fresh_dir("nice");
        let writer =
            ArchiveWriter::create(&dir, DEFAULT_ROLL_BYTES, Normalizer::default()).unwrap();
        let expected = (engine + BACKGROUND_NICE).min(19);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let threads = loop {
            let threads = nice_of_threads("archive-");
            let named = |n: &str| threads.iter().any(|(name, _)| name == n);
            let niced = threads.iter().all(|&(_, nice)| nice == expected);
            if (named("archive-columns") && named("archive-writer") && niced)
                || std::time::Instant::now() > deadline
            {
                break threads;
            }
            std::thread::yield_now();
        };
        assert!(
            threads.iter().all(|&(_, nice)| nice == expected) && threads.len() >= 2,
            "the column and writer threads run at nice {expected}, the engine's at {engine}: \
             {threads:?}"
        );
        writer.finish(Vec::new()).unwrap();
    }

    fn alert_at(time: Timestamp) -> Decision {
        use crate::decision::{Evidence, PrincipalRef, RuleRef, SessionRef, Window};
        use crate::rule::{ActionKind, Mode, Severity};
        Decision {
            decision_id: "d".into(),
            time,
            mode: Mode::DryRun,
            action: ActionKind::Alert,
            severity: Severity::Low,
            rule: RuleRef {
                id: "r".into(),
                version: "1".into(),
                title: "r".into(),
            },
            session: SessionRef {
                key: "s".into(),
                kind: "aws_sts",
                derived: false,
                started: time,
                parent: None,
                chain: Vec::new(),
                root: None,
            },
            principal: PrincipalRef::default(),
            evidence: Evidence {
                reason: "match".into(),
                aggregate: "match",
                value: None,
                threshold: None,
                group: None,
                window: Window {
                    start: time,
                    end: time,
                },
                events: Vec::new(),
                events_omitted: 0,
            },
            caep: None,
        }
    }

    #[test]
    fn full_batches_leave_no_empty_batch_behind() {
        let dir = fresh_dir("full");
        let event = undetected_event();
        // Every batch fills its file: an empty batch written at the end would start a file.
        let mut writer = ArchiveWriter::create(&dir, 1, cloudtrail()).unwrap();
        for line in 0..BATCH_ROWS as u64 {
            writer
                .event(&event, ("a.jsonl", line), UNDETECTED.as_bytes())
                .unwrap();
            writer.decision(&alert_at(Timestamp(0))).unwrap();
        }
        let manifest = writer.finish(Vec::new()).unwrap();
        assert_eq!(manifest.events, BATCH_ROWS as u64);
        assert_eq!(manifest.decisions, BATCH_ROWS as u64);
        assert_eq!(
            manifest.files,
            [
                "decisions/date=1970-01-01/part-00000.parquet",
                "events/date=2024-08-01/source=cloudtrail/part-00000.parquet"
            ]
        );
    }
}
