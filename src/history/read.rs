//! Reading an archive's events back in the order they were first read, for `replay DIR`.
//!
//! Partitioning scatters a replay's records over `date=…/source=…/` directories; each file
//! holds its rows in `seq` order (the order the replay met them) and a partition's files follow
//! each other in name order, so a k-way merge on `seq` over the partitions gives the original
//! order back. Only `seq`, `origin_file`, `origin_line` and `raw` are decoded; `raw` goes
//! through the normalizer again, so an archive replays to the same decisions as its logs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{RecordBatch, StringArray, UInt64Array};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::archive::Manifest;

/// Rows decoded at a time per partition: each open partition holds one batch.
const BATCH_ROWS: usize = 512;

/// One item of an archive, in the order the records were first read.
pub enum ArchivedItem<'a> {
    /// A record: the input file it was read from (by name), its line there, its bytes.
    Record {
        origin_file: &'a str,
        line: u64,
        raw: &'a [u8],
    },
    /// An archive file (or the rest of one) that could not be read.
    Broken { path: String, detail: String },
}

/// The columns replay needs, of one decoded batch.
struct Rows {
    seq: UInt64Array,
    origin_file: StringArray,
    origin_line: UInt64Array,
    raw: StringArray,
}

impl Rows {
    fn of(batch: &RecordBatch) -> Option<Rows> {
        let u64s = |name| {
            Some(
                batch
                    .column_by_name(name)?
                    .as_primitive_opt::<UInt64Type>()?
                    .clone(),
            )
        };
        let texts = |name| Some(batch.column_by_name(name)?.as_string_opt::<i32>()?.clone());
        Some(Rows {
            seq: u64s("seq")?,
            origin_file: texts("origin_file")?,
            origin_line: u64s("origin_line")?,
            raw: texts("raw")?,
        })
    }
}

/// A partition's files, read one batch at a time.
struct Cursor {
    files: VecDeque<PathBuf>,
    reader: Option<(PathBuf, ParquetRecordBatchReader)>,
    rows: Option<Rows>,
    at: usize,
}

impl Cursor {
    /// Moves to the next row (loading batches and files as needed); `Ok(false)` at the end.
    /// A file that fails is reported with its path and left for the next one.
    fn fill(&mut self, broken: &mut Vec<(String, String)>) -> bool {
        loop {
            if let Some(rows) = &self.rows {
                if self.at < rows.seq.len() {
                    return true;
                }
                self.rows = None;
            }
            if let Some((path, reader)) = &mut self.reader {
                match reader.next() {
                    Some(Ok(batch)) => match Rows::of(&batch) {
                        Some(rows) => {
                            self.rows = Some(rows);
                            self.at = 0;
                        }
                        None => {
                            broken.push((
                                path.display().to_string(),
                                "not an archive events file: a column is missing or of \
                                 another type"
                                    .to_owned(),
                            ));
                            self.reader = None;
                        }
                    },
                    Some(Err(e)) => {
                        broken.push((
                            path.display().to_string(),
                            format!("the rest of the file cannot be decoded: {e}"),
                        ));
                        self.reader = None;
                    }
                    None => self.reader = None,
                }
                continue;
            }
            let Some(path) = self.files.pop_front() else {
                return false;
            };
            match open_events(&path) {
                Ok(reader) => self.reader = Some((path, reader)),
                Err(e) => broken.push((path.display().to_string(), e.to_string())),
            }
        }
    }

    fn seq(&self) -> u64 {
        self.rows
            .as_ref()
            .map_or(u64::MAX, |r| r.seq.value(self.at))
    }
}

/// Opens an events file for the four columns replay reads.
fn open_events(path: &Path) -> io::Result<ParquetRecordBatchReader> {
    let invalid = |e: parquet::errors::ParquetError| io::Error::new(io::ErrorKind::InvalidData, e);
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?).map_err(invalid)?;
    let wanted = ["seq", "origin_file", "origin_line", "raw"];
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(invalid)
}

/// Hands every archived event of `dir` to `sink` in the order it was first read; stops early
/// when `sink` breaks.
pub fn read_events(
    dir: &Path,
    manifest: &Manifest,
    sink: &mut dyn FnMut(ArchivedItem<'_>) -> ControlFlow<()>,
) {
    // A partition's files in name order (the writer numbers them as it rolls).
    let mut partitions: BTreeMap<&Path, Vec<PathBuf>> = BTreeMap::new();
    for file in manifest.files.iter().filter(|f| f.starts_with("events/")) {
        let relative = Path::new(file);
        let partition = relative.parent().unwrap_or(Path::new(""));
        partitions
            .entry(partition)
            .or_default()
            .push(dir.join(relative));
    }
    let mut cursors: Vec<Cursor> = partitions
        .into_values()
        .map(|mut files| {
            files.sort();
            Cursor {
                files: files.into(),
                reader: None,
                rows: None,
                at: 0,
            }
        })
        .collect();
    let mut broken = Vec::new();
    let mut heap = BinaryHeap::new();
    for (i, cursor) in cursors.iter_mut().enumerate() {
        if cursor.fill(&mut broken) {
            heap.push(Reverse((cursor.seq(), i)));
        }
    }
    let report = |broken: &mut Vec<(String, String)>,
                  sink: &mut dyn FnMut(ArchivedItem<'_>) -> ControlFlow<()>| {
        for (path, detail) in broken.drain(..) {
            if sink(ArchivedItem::Broken { path, detail }).is_break() {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    };
    if report(&mut broken, sink).is_break() {
        return;
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let cursor = &mut cursors[i];
        let rows = cursor.rows.as_ref().expect("a filled cursor has rows");
        let flow = sink(ArchivedItem::Record {
            origin_file: rows.origin_file.value(cursor.at),
            line: rows.origin_line.value(cursor.at),
            raw: rows.raw.value(cursor.at).as_bytes(),
        });
        if flow.is_break() {
            return;
        }
        cursor.at += 1;
        if cursor.fill(&mut broken) {
            heap.push(Reverse((cursor.seq(), i)));
        }
        if report(&mut broken, sink).is_break() {
            return;
        }
    }
}

/// The total size of an archive's Parquet files, in bytes.
pub fn archive_bytes(dir: &Path, manifest: &Manifest) -> u64 {
    manifest
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}
