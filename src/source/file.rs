//! Reading audit records from files: plain or gzip (detected by magic bytes), in every framing
//! the vendors and pipelines use.
//!
//! - one JSON object per line (NDJSON), streamed line by line; a bad line is one reject;
//! - CloudTrail's `{"Records": [...]}` envelope, on one line (as S3 delivers it) or pretty-printed;
//! - a JSON array of records;
//! - single records, pretty-printed or concatenated.
//!
//! The framing is chosen from the first line: a JSON value cut short at the line's end starts a
//! document spanning lines, and the file is read whole as a sequence of JSON documents; anything
//! else (a complete value, or a broken line) means one record a line. Nothing broken costs more
//! than itself: in NDJSON a bad line is one reject, and text after a record on its line another;
//! in a multi-line document a syntax error is rejected up to the next line that starts with `{`
//! or `[` (the next record of pretty-printed or line-per-record text), where reading resumes;
//! a broken array or `{"Records": [...]}` envelope is split at its top-level commas and every
//! element that parses is kept. Each rejected stretch carries its bytes (the first MiB) and its
//! line. Every record carries the line it starts on.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{Reject, RejectReason};

/// One item read from a file: a record's bytes, or a stretch that could not be framed.
pub enum Item<'b> {
    Record {
        bytes: &'b [u8],
        line: u64,
    },
    /// A stretch that could not be framed as a record, with its bytes (cut at 1 MiB) so it can
    /// be fixed and fed again.
    Broken {
        line: u64,
        reject: Reject,
        bytes: &'b [u8],
    },
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

/// Paths expanded into the files to read, and what a directory walk had to leave out.
#[derive(Debug, Default)]
pub struct Expanded {
    pub files: Vec<PathBuf>,
    /// Entries of a directory that cannot be read as a file (a FIFO, a socket, a device, a
    /// broken symlink) or directories that cannot be listed, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Expands directories (recursively, in name order) into the record files under them. A path
/// named explicitly is kept whatever it is (a FIFO is read as a stream); inside a directory,
/// only regular files (after symlinks) are, and the rest is reported in `skipped`, never
/// opened, so nothing in a log directory can block the walk.
pub fn expand(paths: &[PathBuf]) -> Expanded {
    let mut out = Expanded::default();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out);
        } else {
            out.files.push(path.clone());
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Expanded) {
    let listed = std::fs::read_dir(dir).and_then(|entries| {
        entries
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<Vec<PathBuf>>>()
    });
    let mut entries = match listed {
        Ok(entries) => entries,
        Err(e) => {
            out.skipped
                .push((dir.to_path_buf(), format!("listing the directory: {e}")));
            return;
        }
    };
    entries.sort();
    for entry in entries {
        match std::fs::metadata(&entry) {
            Ok(m) if m.is_dir() => walk(&entry, out),
            Ok(m) if m.is_file() => {
                if is_record_file(&entry) {
                    out.files.push(entry);
                }
            }
            Ok(_) if is_record_file(&entry) => out.skipped.push((
                entry,
                "not a regular file (a FIFO, socket or device)".to_owned(),
            )),
            Ok(_) => {}
            Err(e) if is_record_file(&entry) => out.skipped.push((entry, e.to_string())),
            Err(_) => {}
        }
    }
}

/// Expands directories into the record files under them; fails if anything had to be left
/// out (for callers with no place to report it).
pub fn expand_paths(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let Expanded { files, skipped } = expand(paths);
    if let Some((path, why)) = skipped.first() {
        return Err(io::Error::other(format!("{}: {why}", path.display())));
    }
    Ok(files)
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
    // A first line that is a JSON value cut short at the line's end is the start of a document
    // spanning lines; anything else (a complete value, a broken line) means one record a line.
    let spans_lines = matches!(
        serde_json::from_slice::<serde::de::IgnoredAny>(trim(&line)),
        Err(e) if e.is_eof()
    );
    if !spans_lines {
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
    let mut document = std::mem::take(&mut line);
    // A read that fails part-way (a truncated gzip) keeps what came before it.
    let read = reader.read_to_end(&mut document);
    emit_documents(&document, line_no, sink);
    read.map(drop)
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

/// Rejected bytes kept for `--rejects` at most (the detail says when they were cut).
const MAX_BROKEN_BYTES: usize = 1 << 20;

/// A stretch that could not be framed, with its bytes (cut at [`MAX_BROKEN_BYTES`]).
fn broken<'b>(bytes: &'b [u8], line: u64, mut reject: Reject, sink: &mut dyn FnMut(Item<'b>)) {
    let bytes = trim(bytes);
    let kept = &bytes[..bytes.len().min(MAX_BROKEN_BYTES)];
    if kept.len() < bytes.len() {
        reject.detail = format!(
            "{} (the first {} of {} bytes kept)",
            reject.detail,
            kept.len(),
            bytes.len()
        );
    }
    sink(Item::Broken {
        line,
        reject,
        bytes: kept,
    });
}

fn emit_line<'b>(line: &'b [u8], line_no: u64, sink: &mut dyn FnMut(Item<'b>)) {
    let record = trim(line);
    if record.first() == Some(&b'[') {
        // An array of records on one line.
        match serde_json::from_slice::<Vec<&RawValue>>(record) {
            Ok(elements) => {
                for element in elements {
                    emit_element(element.get().as_bytes(), line_no, sink);
                }
            }
            Err(_) => {
                salvage_elements(record, &mut |_| line_no, sink);
            }
        }
        return;
    }
    match records_envelope(record) {
        Some(Ok(records)) => {
            for r in records {
                sink(Item::Record {
                    bytes: r.get().as_bytes(),
                    line: line_no,
                });
            }
        }
        // A broken envelope: every element that parses is kept.
        Some(Err(_)) => {
            salvage_elements(record, &mut |_| line_no, sink);
        }
        // The usual line: handed on whole, unparsed here (the normalizer reads it once).
        None if record.last() == Some(&b'}') => sink(Item::Record {
            bytes: record,
            line: line_no,
        }),
        None => {
            // Perhaps a complete value followed by garbage: keep the value, reject the rest.
            let mut stream = serde_json::Deserializer::from_slice(record).into_iter::<&RawValue>();
            match stream.next() {
                Some(Ok(value)) if stream.byte_offset() < record.len() => {
                    let rest = &record[stream.byte_offset()..];
                    sink(Item::Record {
                        bytes: value.get().as_bytes(),
                        line: line_no,
                    });
                    let reject =
                        Reject::new(RejectReason::NotJson, "text after the record on its line");
                    broken(rest, line_no, reject, sink);
                }
                // Whole (the normalizer reads it) or broken (the normalizer rejects it, bytes
                // and all).
                _ => sink(Item::Record {
                    bytes: record,
                    line: line_no,
                }),
            }
        }
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

/// One element of an array or envelope that parsed: a record when it is an object.
fn emit_element<'b>(part: &'b [u8], line: u64, sink: &mut dyn FnMut(Item<'b>)) {
    if part.first() == Some(&b'{') {
        sink(Item::Record { bytes: part, line });
    } else {
        let reject = Reject::new(
            RejectReason::NotJson,
            format!(
                "expected a JSON object, found {}",
                String::from_utf8_lossy(&part[..part.len().min(24)])
            ),
        );
        broken(part, line, reject, sink);
    }
}

/// Where a value of a multi-line document that failed to parse ends, for resuming: the next
/// line that starts (column 0) with `{` or `[` — the start of the next top-level record in
/// pretty-printed or line-per-record text — or the end.
fn resume_after(document: &[u8], value_start: usize) -> usize {
    let mut at = value_start + 1;
    while let Some(i) = memchr::memchr(b'\n', &document[at.min(document.len())..]) {
        let next = at + i + 1;
        if matches!(document.get(next), Some(b'{' | b'[')) {
            return next;
        }
        at = next;
    }
    document.len()
}

/// Whether `value` (starting at a top-level position) is an array or an envelope of records.
fn is_collection(value: &[u8]) -> bool {
    value.first() == Some(&b'[')
        || (value.first() == Some(&b'{')
            && value[..value.len().min(64)]
                .windows(9)
                .any(|w| w == b"\"Records\""))
}

/// The elements of a broken array or `{"Records": [...]}` envelope, each parsed alone: the
/// ones that parse are records, the others broken stretches with their bytes. Elements are
/// split at the array's top-level commas (strings respected; a raw newline ends a string, as
/// JSON does not allow one inside). Returns the offset just past the array (or the end).
fn salvage_elements<'b>(
    value: &'b [u8],
    line_of: &mut dyn FnMut(usize) -> u64,
    sink: &mut dyn FnMut(Item<'b>),
) -> usize {
    let Some(open) = memchr::memchr(b'[', value) else {
        broken(
            value,
            line_of(0),
            Reject::new(RejectReason::NotJson, "no records array"),
            sink,
        );
        return value.len();
    };
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut element_start = open + 1;
    let mut emit = |from: usize, to: usize, sink: &mut dyn FnMut(Item<'b>)| {
        let part = trim(&value[from..to]);
        if part.is_empty() {
            return;
        }
        let offset = from + (part.as_ptr() as usize - value[from..].as_ptr() as usize);
        let line = line_of(offset);
        match serde_json::from_slice::<&RawValue>(part) {
            Ok(_) => emit_element(part, line, sink),
            Err(e) => broken(part, line, Reject::from_json(&e), sink),
        }
    };
    let mut i = open + 1;
    while i < value.len() {
        let b = value[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' | b'\n' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b']' => {
                    emit(element_start, i, sink);
                    let mut end = i + 1;
                    if value.first() == Some(&b'{') {
                        // The envelope's own closing brace.
                        let rest = &value[end..];
                        if let Some(p) = rest.iter().position(|b| !b.is_ascii_whitespace()) {
                            if rest[p] == b'}' {
                                end += p + 1;
                            }
                        }
                    }
                    return end;
                }
                b',' if depth == 0 => {
                    emit(element_start, i, sink);
                    element_start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    emit(element_start, value.len(), sink);
    value.len()
}

fn emit_documents(document: &[u8], first_line: u64, sink: &mut dyn FnMut(Item<'_>)) {
    let mut lines = LineCounter {
        document,
        offset: 0,
        line: first_line,
    };
    let mut start = 0;
    'documents: while start < document.len() {
        let mut stream =
            serde_json::Deserializer::from_slice(&document[start..]).into_iter::<&RawValue>();
        loop {
            // The end of the last value read whole: a failed value starts after it.
            let read_whole = stream.byte_offset();
            let value = match stream.next() {
                None => break 'documents,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    // Resynchronise: salvage a broken array or envelope element by element;
                    // otherwise reject up to the next line that starts a record.
                    let rest = &document[start + read_whole..];
                    let Some(first) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
                        break 'documents;
                    };
                    let value_start = start + read_whole + first;
                    let tail = &document[value_start..];
                    if is_collection(tail) {
                        let used = salvage_elements(
                            tail,
                            &mut |offset| lines.line_at(value_start + offset),
                            sink,
                        );
                        start = value_start + used;
                    } else {
                        let resume = resume_after(document, value_start);
                        let line = lines.line_at(value_start);
                        broken(
                            &document[value_start..resume],
                            line,
                            Reject::from_json(&e),
                            sink,
                        );
                        start = resume;
                    }
                    continue 'documents;
                }
            };
            let json = value.get();
            let elements: Vec<&RawValue> = if json.starts_with('[') {
                match serde_json::from_str(json) {
                    Ok(items) => items,
                    Err(_) => {
                        let at = offset_in(document, json);
                        salvage_elements(json.as_bytes(), &mut |o| lines.line_at(at + o), sink);
                        continue;
                    }
                }
            } else {
                match records_envelope(json.as_bytes()) {
                    Some(Ok(records)) => records,
                    Some(Err(_)) => {
                        let at = offset_in(document, json);
                        salvage_elements(json.as_bytes(), &mut |o| lines.line_at(at + o), sink);
                        continue;
                    }
                    None => vec![value],
                }
            };
            for element in elements {
                let part = element.get();
                let line = lines.line_at(offset_in(document, part));
                emit_element(part.as_bytes(), line, sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Framed = Vec<(u64, Result<String, (RejectReason, String)>)>;

    fn frame(input: &str) -> Framed {
        let mut out = Vec::new();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for_each_record(input.as_bytes(), &mut |item| match item {
            Item::Record { bytes, line } => out.push((line, Ok(text(bytes)))),
            Item::Broken {
                line,
                reject,
                bytes,
            } => out.push((line, Err((reject.reason, text(bytes))))),
        })
        .unwrap();
        out
    }

    /// The records kept, in order.
    fn kept(framed: &Framed) -> Vec<&str> {
        framed
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(String::as_str))
            .collect()
    }

    /// The rejected stretches' bytes, in order.
    fn rejected(framed: &Framed) -> Vec<&str> {
        framed
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().map(|(_, b)| b.as_str()))
            .collect()
    }

    #[test]
    fn a_bad_first_line_costs_only_itself() {
        for first in ["garbage here", "\0\0\0\0\0\0", "{\"a\": 1, \"trunc"] {
            let input = format!("{first}\n{{\"b\":2}}\n{{\"c\":3}}\n");
            let got = frame(&input);
            let kept = kept(&got);
            assert!(
                kept.ends_with(&["{\"b\":2}", "{\"c\":3}"]),
                "{first:?}: {got:?}"
            );
            // Either a reject with the line's bytes, or handed on whole for the normalizer
            // to reject with them.
            let first_kept = got[0]
                .1
                .as_ref()
                .map_or_else(|(_, b)| b.clone(), |r| r.clone());
            assert_eq!(first_kept, first, "{first:?}");
            assert_eq!(got[1].0, 2, "{got:?}");
        }
    }

    #[test]
    fn text_after_a_record_on_its_line_is_rejected_alone() {
        let got = frame("{\"a\":1}garbage\n{\"b\":2}\n");
        assert_eq!(kept(&got), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(rejected(&got), ["garbage"]);
    }

    #[test]
    fn a_syntax_error_in_concatenated_pretty_records_costs_one_record() {
        let input =
            "{\n  \"a\": 1\n}\n{\n  \"b\": ,\n  \"x\": 0\n}\n{\n  \"c\": 3\n}\n{\"d\": 4}\n";
        let got = frame(input);
        assert_eq!(
            kept(&got),
            ["{\n  \"a\": 1\n}", "{\n  \"c\": 3\n}", "{\"d\": 4}"]
        );
        assert_eq!(rejected(&got), ["{\n  \"b\": ,\n  \"x\": 0\n}"]);
        assert_eq!(got[1].0, 4, "the broken record's first line");
    }

    #[test]
    fn a_broken_element_of_an_array_or_envelope_costs_only_itself() {
        for input in [
            "[{\"a\":1}, {\"b\": ,}, {\"c\":3}]\n",
            "{\"Records\":[{\"a\":1},{\"b\": ,},{\"c\":3}]}\n",
            "{\n\"Records\": [\n{\"a\":1},\n{\"b\": ,},\n{\"c\":3}\n]\n}\n",
            "[\n  {\"a\":1},\n  {\"b\": ,},\n  {\"c\":3}\n]\n",
        ] {
            let got = frame(input);
            assert_eq!(kept(&got), ["{\"a\":1}", "{\"c\":3}"], "{input:?}");
            assert_eq!(rejected(&got), ["{\"b\": ,}"], "{input:?}");
        }
    }

    #[test]
    fn an_unterminated_string_does_not_swallow_the_next_records() {
        let got = frame("[\n{\"a\": \"open\n},\n{\"b\":2}\n]\n");
        assert_eq!(kept(&got), ["{\"b\":2}"], "{got:?}");
        assert_eq!(rejected(&got).len(), 1, "{got:?}");
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
        assert_eq!(
            got[2].1,
            Err((RejectReason::NotJson, "{\n\"c\":".to_owned()))
        );
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
