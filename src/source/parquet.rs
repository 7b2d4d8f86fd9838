//! Reading records from Parquet files: OCSF as Amazon Security Lake stores it, or any Parquet
//! whose rows are audit records. Each row becomes the JSON object a pipeline would have
//! delivered (a struct column an object, a list an array, a map an object; nulls left out),
//! so the same adapters read it and a Parquet file and its JSON give the same events.
//!
//! A file is read one row group at a time, decoded to Arrow batches of [`BATCH_ROWS`] rows
//! (arrow-rs), never whole. A row's place is its row number in the file, 1-based, where a JSON
//! file has its line. A row that cannot be written as JSON is one reject; a row group whose
//! pages cannot be decoded keeps the rows handed on before the fault and is one reject for the
//! rest of its rows (`unreadable`, with the row range), and the next group is read; a file
//! whose footer cannot be read is one reject, as a file that cannot be opened is.
//!
//! Security Lake partitions its objects by region, account and day (`region=…/accountId=…/
//! eventDay=…/`) and names them at random, so name order says nothing of time; a directory
//! walk orders Parquet files by the earliest event time their footers record
//! ([`earliest_event_time`]), so a session's records arrive about in the order they happened
//! whatever region or account their files sit under.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_json::writer::LineDelimited;
use arrow_json::WriterBuilder;
use arrow_schema::ArrowError;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;

use super::file::Item;
use crate::event::{Reject, RejectReason};

/// Rows decoded at a time: a batch's JSON is held while its rows are handed on.
const BATCH_ROWS: usize = 1024;

/// The columns whose statistics give a file's earliest event time, in order of preference:
/// OCSF's `time` (epoch milliseconds), then `time_dt` (a timestamp).
const TIME_COLUMNS: [&str; 2] = ["time", "time_dt"];

/// An open Parquet file, its footer read.
pub struct Rows {
    file: File,
    metadata: ArrowReaderMetadata,
}

/// Opens a Parquet file and reads its footer (schema and row groups).
pub fn open(path: &Path) -> io::Result<Rows> {
    let file = File::open(path)?;
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(Rows { file, metadata })
}

impl Rows {
    /// Calls `sink` with every row as a JSON record (or a reject), in file order; stops early
    /// when `sink` breaks. Row groups are read one at a time: a group that cannot be decoded
    /// (a damaged page) keeps the rows handed on before the fault, is one reject for the rest
    /// of its rows, and the next group is read.
    pub fn read(
        self,
        max_record_bytes: usize,
        sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
    ) -> io::Result<()> {
        let mut group_start = 0u64;
        for (group, meta) in self.metadata.metadata().row_groups().iter().enumerate() {
            let group_end = group_start + meta.num_rows().max(0) as u64;
            let mut row = group_start;
            let flow = match self.read_group(group, &mut row, max_record_bytes, sink) {
                Ok(flow) => flow,
                Err(e) => sink(Item::Broken {
                    line: row + 1,
                    reject: Reject::new(
                        RejectReason::Unreadable,
                        format!(
                            "rows {}-{group_end} (row group {}) cannot be decoded: {e}; the \
                             rows before them were kept",
                            row + 1,
                            group + 1
                        ),
                    ),
                    bytes: &[],
                }),
            };
            if flow.is_break() {
                break;
            }
            group_start = group_end;
        }
        Ok(())
    }

    /// Hands on the rows of one row group, counting them in `row`.
    fn read_group(
        &self,
        group: usize,
        row: &mut u64,
        max_record_bytes: usize,
        sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, ParquetError> {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.file.try_clone()?,
            self.metadata.clone(),
        )
        .with_row_groups(vec![group])
        .with_batch_size(BATCH_ROWS)
        .build()?;
        let mut json = Vec::new();
        for batch in reader {
            let batch = batch?;
            json.clear();
            if write_json(&batch, &mut json).is_ok() {
                for record in json.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
                    *row += 1;
                    if hand_on(record, *row, max_record_bytes, sink).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                continue;
            }
            // Some row cannot be written as JSON: each row alone, so only those are lost.
            for i in 0..batch.num_rows() {
                *row += 1;
                json.clear();
                let flow = match write_json(&batch.slice(i, 1), &mut json) {
                    Ok(()) => hand_on(json.trim_ascii_end(), *row, max_record_bytes, sink),
                    Err(e) => sink(Item::Broken {
                        line: *row,
                        reject: Reject::new(
                            RejectReason::InvalidField,
                            format!("row {row} cannot be written as JSON: {e}"),
                        ),
                        bytes: &[],
                    }),
                };
                if flow.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Writes the rows of `batch` as JSON objects, one per line, nulls left out. A timestamp
/// without a time zone is UTC (Security Lake's `time_dt`), and written so.
fn write_json(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(false)
        .with_timestamp_format("%Y-%m-%dT%H:%M:%S%.fZ".to_owned())
        .build::<_, LineDelimited>(out);
    writer.write(batch)?;
    writer.finish()
}

/// Hands one row's JSON to `sink`, or a reject when it is over the record size limit.
fn hand_on(
    record: &[u8],
    row: u64,
    max_record_bytes: usize,
    sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if record.len() > max_record_bytes {
        let reject = Reject::new(
            RejectReason::TooLarge,
            format!(
                "row {row} is {} bytes as JSON, over the {max_record_bytes}-byte limit",
                record.len()
            ),
        );
        let kept = &record[..record.len().min(super::file::MAX_BROKEN_BYTES)];
        return sink(Item::Broken {
            line: row,
            reject,
            bytes: kept,
        });
    }
    sink(Item::Record {
        bytes: record,
        line: row,
    })
}

/// The earliest event time a Parquet file holds, from its footer's column statistics (no data
/// page is read): the least minimum of `time`, else of `time_dt`, over its row groups, in
/// the column's own unit (milliseconds for OCSF). `None` when the file has neither column
/// with 64-bit statistics (a 32-bit column cannot hold epoch milliseconds, so its unit would
/// not compare with other files'), or is not Parquet.
pub fn earliest_event_time(path: &Path) -> Option<i64> {
    let reader = SerializedFileReader::new(File::open(path).ok()?).ok()?;
    let metadata = reader.metadata();
    let schema = metadata.file_metadata().schema_descr();
    TIME_COLUMNS.iter().find_map(|name| {
        let column =
            (0..schema.num_columns()).find(|&i| schema.column(i).path().string() == *name)?;
        metadata
            .row_groups()
            .iter()
            .filter_map(|group| match group.column(column).statistics()? {
                Statistics::Int64(s) => s.min_opt().copied(),
                _ => None,
            })
            .min()
    })
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;
    use std::path::PathBuf;
    use std::sync::Arc;

    use arrow_array::builder::{Int32Builder, MapBuilder, StringBuilder};
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;

    use super::{earliest_event_time, open};
    use crate::event::RejectReason;
    use crate::source::file::Item;

    /// `batch` written as a Parquet file in the temporary directory.
    fn written(name: &str, batch: &RecordBatch) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sg-parquet-{name}-{}", std::process::id()));
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None)
                .unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        path
    }

    /// Every item of the file: a record's line and JSON, or a reject's line and reason.
    fn items(path: &PathBuf, max_record_bytes: usize) -> Vec<(u64, Result<String, RejectReason>)> {
        let mut out = Vec::new();
        open(path)
            .unwrap()
            .read(max_record_bytes, &mut |item| {
                out.push(match item {
                    Item::Record { bytes, line } => {
                        (line, Ok(String::from_utf8_lossy(bytes).into_owned()))
                    }
                    Item::Broken { line, reject, .. } => (line, Err(reject.reason)),
                });
                ControlFlow::Continue(())
            })
            .unwrap();
        std::fs::remove_file(path).unwrap();
        out
    }

    #[test]
    fn a_row_at_the_size_limit_is_read_and_one_byte_over_it_is_rejected() {
        let names: ArrayRef = Arc::new(StringArray::from(vec!["ab", "abc", "ab"]));
        let batch = RecordBatch::try_from_iter([("name", names)]).unwrap();
        let at_limit = r#"{"name":"ab"}"#;
        let path = written("limit", &batch);
        assert_eq!(
            items(&path, at_limit.len()),
            [
                (1, Ok(at_limit.to_owned())),
                (2, Err(RejectReason::TooLarge)),
                (3, Ok(at_limit.to_owned())),
            ]
        );
    }

    /// A map keyed by numbers has no JSON form: the batch cannot be written, so each row is
    /// tried alone and each is one reject, numbered as the rows are.
    #[test]
    fn rows_that_cannot_be_written_as_json_are_each_one_numbered_reject() {
        let mut map = MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
        for (key, value) in [(1, "a"), (2, "b"), (3, "c")] {
            map.keys().append_value(key);
            map.values().append_value(value);
            map.append(true).unwrap();
        }
        let column: ArrayRef = Arc::new(map.finish());
        let batch = RecordBatch::try_from_iter([("by_number", column)]).unwrap();
        let path = written("no-json", &batch);
        assert_eq!(
            items(&path, 1 << 20),
            [
                (1, Err(RejectReason::InvalidField)),
                (2, Err(RejectReason::InvalidField)),
                (3, Err(RejectReason::InvalidField)),
            ]
        );
    }

    #[test]
    fn the_earliest_event_time_is_the_least_minimum_of_a_64_bit_time_column() {
        let time: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![30, 10, 20]));
        let path = written(
            "time64",
            &RecordBatch::try_from_iter([("time", time)]).unwrap(),
        );
        assert_eq!(earliest_event_time(&path), Some(10));
        std::fs::remove_file(&path).unwrap();
        let seconds: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![30, 10, 20]));
        let path = written(
            "time32",
            &RecordBatch::try_from_iter([("time", seconds)]).unwrap(),
        );
        assert_eq!(
            earliest_event_time(&path),
            None,
            "a 32-bit time has no unit to compare"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
