//! Reading audit records from files: plain or gzip (detected by magic bytes), in every framing
//! the vendors and pipelines use.
//!
//! - one JSON object per line (NDJSON), streamed line by line; a bad line is one reject;
//! - CloudTrail's `{"Records": [...]}` envelope, on one line (as S3 delivers it) or pretty-printed;
//! - a JSON array of records;
//! - single records, pretty-printed or concatenated.
//!
//! The framing is chosen from the first record: if the first line holds a complete JSON value
//! the file is read as NDJSON, otherwise it is read whole as a sequence of JSON documents. In
//! whole-document mode a syntax error cannot be resynchronised, so the rest of that file is one
//! reject with the line of the error. Every record carries the line it starts on.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{Reject, RejectReason};

/// One item read from a file: a record's bytes, or a stretch that could not be framed.
pub enum Item<'b> {
    Record { bytes: &'b [u8], line: u64 },
    Broken { line: u64, reject: Reject },
}

/// Opens a file, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Expands directories (recursively, in name order) into the files under them.
pub fn expand_paths(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<_>>()?;
            entries.sort();
            let nested: Vec<PathBuf> = entries
                .into_iter()
                .filter(|p| p.is_dir() || is_record_file(p))
                .collect();
            out.extend(expand_paths(&nested)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Files a directory walk reads: JSON in its usual extensions, optionally gzipped.
fn is_record_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Calls `sink` for every record (or broken stretch) in `reader`, in order.
pub fn for_each_record(mut reader: impl BufRead, sink: &mut dyn FnMut(Item<'_>)) -> io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    let mut line_no: u64 = 0;
    // Skip blank lines; find the first line with content.
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if !trim(&line).is_empty() {
            break;
        }
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(trim(&line)).is_ok() {
        emit_line(&line, line_no, sink);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            line_no += 1;
            if !trim(&line).is_empty() {
                emit_line(&line, line_no, sink);
            }
        }
    }
    // Whole-document mode: the first record spans lines.
    let mut document = std::mem::take(&mut line);
    reader.read_to_end(&mut document)?;
    emit_documents(&document, line_no, sink);
    Ok(())
}

fn trim(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// The `{"Records": [...]}` envelope of CloudTrail deliveries.
#[derive(Deserialize)]
struct RecordsEnvelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// Opens the envelope when `bytes` is one; cheap check first, full parse only on a hit.
fn records_envelope(bytes: &[u8]) -> Option<Result<Vec<&RawValue>, serde_json::Error>> {
    let head = &bytes[..bytes.len().min(64)];
    if !head.windows(9).any(|w| w == b"\"Records\"") {
        return None;
    }
    Some(serde_json::from_slice::<RecordsEnvelope<'_>>(bytes).map(|e| e.records))
}

fn emit_line(line: &[u8], line_no: u64, sink: &mut dyn FnMut(Item<'_>)) {
    let record = trim(line);
    match records_envelope(record) {
        Some(Ok(records)) => {
            for r in records {
                sink(Item::Record {
                    bytes: r.get().as_bytes(),
                    line: line_no,
                });
            }
        }
        Some(Err(e)) => sink(Item::Broken {
            line: line_no,
            reject: Reject::from_json(&e),
        }),
        None => sink(Item::Record {
            bytes: record,
            line: line_no,
        }),
    }
}

/// Counts lines up to byte offsets that only move forward.
struct LineCounter<'d> {
    document: &'d [u8],
    offset: usize,
    line: u64,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.document.len());
        if offset > self.offset {
            let newlines = self.document[self.offset..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += newlines as u64;
            self.offset = offset;
        }
        self.line
    }
}

fn offset_in(document: &[u8], part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(document.as_ptr() as usize)
}

fn emit_documents(document: &[u8], first_line: u64, sink: &mut dyn FnMut(Item<'_>)) {
    let mut lines = LineCounter {
        document,
        offset: 0,
        line: first_line,
    };
    let stream = serde_json::Deserializer::from_slice(document).into_iter::<&RawValue>();
    for value in stream {
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                let line = first_line - 1 + e.line() as u64;
                let mut reject = Reject::from_json(&e);
                reject.detail = format!("{}; the rest of this file is skipped", reject.detail);
                sink(Item::Broken { line, reject });
                return;
            }
        };
        let json = value.get();
        let elements: Vec<&RawValue> = if json.starts_with('[') {
            match serde_json::from_str(json) {
                Ok(items) => items,
                Err(e) => {
                    let line = lines.line_at(offset_in(document, json));
                    sink(Item::Broken {
                        line,
                        reject: Reject::from_json(&e),
                    });
                    continue;
                }
            }
        } else {
            match records_envelope(json.as_bytes()) {
                Some(Ok(records)) => records,
                Some(Err(e)) => {
                    let line = lines.line_at(offset_in(document, json));
                    sink(Item::Broken {
                        line,
                        reject: Reject::from_json(&e),
                    });
                    continue;
                }
                None => vec![value],
            }
        };
        for element in elements {
            let part = element.get();
            let line = lines.line_at(offset_in(document, part));
            if part.starts_with('{') {
                sink(Item::Record {
                    bytes: part.as_bytes(),
                    line,
                });
            } else {
                sink(Item::Broken {
                    line,
                    reject: Reject::new(
                        RejectReason::NotJson,
                        format!(
                            "expected a JSON object, found {}",
                            part.chars().take(24).collect::<String>()
                        ),
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(input: &str) -> Vec<(u64, Result<String, RejectReason>)> {
        let mut out = Vec::new();
        for_each_record(input.as_bytes(), &mut |item| match item {
            Item::Record { bytes, line } => {
                out.push((line, Ok(String::from_utf8(bytes.to_vec()).unwrap())))
            }
            Item::Broken { line, reject } => out.push((line, Err(reject.reason))),
        })
        .unwrap();
        out
    }

    #[test]
    fn ndjson_bad_line_costs_only_that_line() {
        let got = frame("{\"a\":1}\n\n{oops\n{\"b\":2}\n");
        assert_eq!(
            got,
            vec![
                (1, Ok("{\"a\":1}".into())),
                (3, Ok("{oops".into())),
                (4, Ok("{\"b\":2}".into())),
            ]
        );
    }

    #[test]
    fn pretty_array_records_carry_their_start_line() {
        let got = frame("[\n  {\n    \"a\": 1\n  },\n  {\"b\": 2}\n]\n");
        assert_eq!(got[0].0, 2);
        assert_eq!(got[1], (5, Ok("{\"b\": 2}".into())));
    }

    #[test]
    fn records_envelope_on_one_line_and_pretty() {
        let one = frame("{\"Records\":[{\"a\":1},{\"b\":2}]}\n");
        assert_eq!(one.len(), 2);
        let pretty = frame("{\n\"Records\": [\n{\"a\":1},\n{\"b\":2}\n]\n}\n");
        assert_eq!(pretty.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn concatenated_pretty_objects_and_a_broken_tail() {
        let got = frame("{\n\"a\": 1\n}\n{\n\"b\": 2\n}\n{\n\"c\": \n");
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, 4);
        assert_eq!(got[2].1, Err(RejectReason::NotJson));
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("sg-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.json.gz");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let mut n = 0;
        for_each_record(open(&path).unwrap(), &mut |_| n += 1).unwrap();
        assert_eq!(n, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
