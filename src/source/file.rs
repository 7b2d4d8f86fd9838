//! Reading audit records from files: plain or gzip (detected by magic bytes), in every framing
//! the vendors and pipelines use.
//!
//! - one JSON object per line (NDJSON), streamed line by line; a bad line is one reject;
//! - CloudTrail's `{"Records": [...]}` envelope, on one line (as S3 delivers it) or pretty-printed;
//! - a JSON array of records;
//! - single records, pretty-printed or concatenated (on lines of their own or one line).
//!
//! One streaming framer reads every shape, holding one record and one read buffer at a time
//! (never the file): it finds where each JSON value ends by its nesting and strings, and leaves
//! validating it to the parser. A line of NDJSON that is one object is handed on as it is. An
//! array or a records envelope is framed element by element, so a million-record CloudTrail
//! file costs no more memory than its largest record. Nothing broken costs more than itself:
//! a line that starts with `{` or `[` starts a new record wherever the one before broke off; a
//! stray stretch that is not an object is rejected up to its line end (or its element's end
//! inside an array); a record over the size limit is rejected with its first bytes and read
//! through, never held; an array that never closes is named by a notice at the end, after
//! every element it held was handed on. Each rejected stretch carries its bytes (the first
//! MiB) and its line. Every record carries the line it starts on.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
pub use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::event::{Reject, RejectReason, DEFAULT_MAX_RECORD_BYTES};

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

/// An open record file: JSON text (plain or gzip) or, with the `parquet` feature, Parquet.
pub enum Records {
    Text(Box<dyn BufRead>),
    #[cfg(feature = "parquet")]
    Parquet(super::parquet::Rows),
}

/// Whether `head` (a file's first bytes) starts as a Parquet file does.
fn is_parquet(head: &[u8]) -> bool {
    head.starts_with(b"PAR1")
}

/// Opens a record file, telling Parquet (by its magic bytes) from JSON text, which may be
/// gzipped. Without the `parquet` feature a Parquet file is an error that says so.
pub fn open_records(path: &Path) -> io::Result<Records> {
    let mut head = [0u8; 4];
    let read = {
        let mut file = File::open(path)?;
        io::Read::read(&mut file, &mut head).unwrap_or(0)
    };
    if is_parquet(&head[..read]) {
        #[cfg(feature = "parquet")]
        return super::parquet::open(path).map(Records::Parquet);
        #[cfg(not(feature = "parquet"))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a Parquet file: this sessionguard was built without the `parquet` feature",
        ));
    }
    open(path).map(Records::Text)
}

/// Standard input as a record stream. Parquet there is an error that says what to do: a
/// Parquet file is read from its footer, which needs a file to seek in.
pub fn stdin_records() -> io::Result<Records> {
    let mut input = io::stdin().lock();
    if is_parquet(input.fill_buf()?) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Parquet on standard input: a Parquet file is read from its end, so pass its path",
        ));
    }
    Ok(Records::Text(Box::new(input)))
}

impl Records {
    /// Every record (or rejected stretch) of the file, in order, as [`frame_records`] gives a
    /// text file's; a Parquet row's `line` is its row number.
    pub fn frame(
        self,
        max_record_bytes: usize,
        sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
    ) -> io::Result<()> {
        match self {
            Records::Text(reader) => frame_records(reader, max_record_bytes, sink),
            #[cfg(feature = "parquet")]
            Records::Parquet(rows) => rows.read(max_record_bytes, sink),
        }
    }

    /// [`Records::frame`] with the default record limit, to the end of the input.
    pub fn for_each(self, sink: &mut dyn FnMut(Item<'_>)) -> io::Result<()> {
        self.frame(DEFAULT_MAX_RECORD_BYTES, &mut |item| {
            sink(item);
            ControlFlow::Continue(())
        })
    }
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
/// opened, so nothing in a log directory can block the walk. The Parquet files of one
/// directory are read in the order of their earliest event time (see [`order_parquet`]).
pub fn expand(paths: &[PathBuf]) -> Expanded {
    let mut out = Expanded::default();
    for path in paths {
        if path.is_dir() {
            let first = out.files.len();
            walk(path, &mut out);
            order_parquet(&mut out.files[first..]);
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

/// Files a directory walk reads: JSON in its usual extensions, optionally gzipped, and
/// Parquet.
fn is_record_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    [".json", ".jsonl", ".ndjson", ".parquet"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Reorders the Parquet files among `files` (one directory's walk) by the earliest event time
/// their footers record, leaving every other file where it is: a data lake names its objects
/// at random and partitions them by region and account before day, so name order would
/// deliver one region's day before another's, hours late for a session that spans both.
/// Files with no time statistics keep their name order after the others.
#[cfg(feature = "parquet")]
fn order_parquet(files: &mut [PathBuf]) {
    let slots: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].extension().is_some_and(|e| e == "parquet"))
        .collect();
    let mut keyed: Vec<(i64, usize, PathBuf)> = slots
        .iter()
        .map(|&i| {
            let time = super::parquet::earliest_event_time(&files[i]).unwrap_or(i64::MAX);
            (time, i, std::mem::take(&mut files[i]))
        })
        .collect();
    keyed.sort();
    for (&slot, (_, _, path)) in slots.iter().zip(keyed) {
        files[slot] = path;
    }
}

/// Without the `parquet` feature a Parquet file is not read, so its place does not matter.
#[cfg(not(feature = "parquet"))]
fn order_parquet(_files: &mut [PathBuf]) {}

/// Calls `sink` for every record (or broken stretch) in `reader`, in order, holding at most
/// `max_record_bytes` of the input (plus one read buffer) at any time: a record over the limit
/// is rejected with its first bytes, never held whole, so a decompression bomb or a file with
/// no line breaks costs no more memory than one record. Stops early when `sink` breaks.
///
/// A read that fails part-way (a truncated gzip) keeps what came before it: the records read
/// are handed on, then the error is returned.
pub fn frame_records(
    reader: impl BufRead,
    max_record_bytes: usize,
    sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
) -> io::Result<()> {
    let mut framer = Framer::new(reader, max_record_bytes);
    let _ = framer.run(sink);
    framer.error.map_or(Ok(()), Err)
}

/// [`frame_records`] with the default record limit, to the end of the input.
pub fn for_each_record(reader: impl BufRead, sink: &mut dyn FnMut(Item<'_>)) -> io::Result<()> {
    frame_records(reader, DEFAULT_MAX_RECORD_BYTES, &mut |item| {
        sink(item);
        ControlFlow::Continue(())
    })
}

/// How much is read at a time.
const READ_CHUNK: usize = 1 << 16;

/// Rejected bytes kept for `--rejects` at most (the detail says when they were cut).
pub(crate) const MAX_BROKEN_BYTES: usize = 1 << 20;

/// How a record over the limit ended when a new record started before it closed.
const BREAKS_OFF: &str = "it breaks off where a new record starts";

/// The framing's reading state: a window of the input from the first byte not yet framed.
struct Framer<R> {
    reader: R,
    /// The largest record held whole.
    max: usize,
    /// How much of a rejected stretch is kept.
    keep: usize,
    /// Read into in place (its length is its room, not what was read: no copy on the way in).
    buf: Vec<u8>,
    /// Where the unframed input starts in `buf`.
    head: usize,
    /// Where what was read ends in `buf`.
    end: usize,
    eof: bool,
    /// The read error that ended the input early, if any.
    error: Option<io::Error>,
    /// The line `buf[head]` is on.
    line: u64,
    /// Whether `buf[head]` starts its line.
    line_start: bool,
    /// The line the last record framed ended on.
    record_ended_on: Option<u64>,
}

/// Where a stray stretch (not a JSON object or array) ends.
#[derive(Clone, Copy, PartialEq)]
enum StretchEnd {
    /// At the end of its line (top level).
    Line,
    /// At the next `,`, `]` or line end (an element of an array).
    Element,
}

impl<R: BufRead> Framer<R> {
    fn new(reader: R, max_record_bytes: usize) -> Self {
        Framer {
            reader,
            max: max_record_bytes.max(1),
            keep: max_record_bytes.clamp(1, MAX_BROKEN_BYTES),
            buf: vec![0; 2 * READ_CHUNK],
            head: 0,
            end: 0,
            eof: false,
            error: None,
            line: 1,
            line_start: true,
            record_ended_on: None,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.head..self.end]
    }

    /// Reads more after what is held; false at the end of the input.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.head > 0 {
            self.buf.copy_within(self.head..self.end, 0);
            self.end -= self.head;
            self.head = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            self.buf.resize(self.end + 2 * READ_CHUNK, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// Moves past `n` bytes of one line (at least one byte, no line break among them).
    fn advance_in_line(&mut self, n: usize) {
        self.line_start = false;
        self.head += n;
    }

    /// Moves past `n` bytes, counting their lines.
    fn advance(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let done = &self.buf[self.head..self.head + n];
        debug_assert!(self.head + n <= self.end);
        self.line += memchr::memchr_iter(b'\n', done).count() as u64;
        self.line_start = done[n - 1] == b'\n';
        self.head += n;
    }

    fn run(&mut self, sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>) -> ControlFlow<()> {
        self.fill();
        if self.avail().starts_with(b"\xef\xbb\xbf") {
            self.head += 3;
        }
        // Inside a top-level array (false) or a `{"Records": [...]}` envelope (true).
        let mut collection: Option<bool> = None;
        // Where the open collection started, for the reject when it never closes.
        let mut opened_on = 0;
        while self.skip_blank(collection.is_some()) {
            let first = self.avail()[0];
            // A line that starts with `[` or a records envelope opens a new collection, even
            // inside one that never closed.
            if first == b'[' && (collection.is_none() || self.line_start) {
                opened_on = self.line;
                self.advance(1);
                collection = Some(false);
            } else if first == b'{'
                && (collection.is_none() || self.line_start)
                && self.envelope_start()
            {
                opened_on = self.line;
                collection = Some(true);
            } else if let Some(envelope) = collection {
                match first {
                    b']' => {
                        self.advance(1);
                        collection = None;
                        if envelope && self.skip_blank(false) && self.avail()[0] == b'}' {
                            self.advance(1);
                        }
                    }
                    b'{' | b'[' => self.value(true, sink)?,
                    _ => self.stretch(StretchEnd::Element, sink)?,
                }
            } else if first == b'{' {
                self.value(false, sink)?;
            } else {
                self.stretch(StretchEnd::Line, sink)?;
            }
        }
        if let Some(envelope) = collection.filter(|_| self.error.is_none()) {
            // Every element was handed on; the missing close says the file may be cut short.
            let reject = Reject::new(
                RejectReason::NotJson,
                "this array of records never closes (no `]` before the end): the input may be cut short",
            );
            // No bytes were lost: it names where the collection opened, with none of its own.
            let what = if envelope { "`{\"Records\": [`" } else { "`[`" };
            let reject = Reject {
                detail: format!("{} (the {what} at line {opened_on})", reject.detail),
                ..reject
            };
            sink(Item::Broken {
                line: self.line,
                reject,
                bytes: &[],
            })?;
        }
        ControlFlow::Continue(())
    }

    /// Skips white space (and commas between elements); false at the end of the input.
    fn skip_blank(&mut self, commas: bool) -> bool {
        loop {
            let avail = self.avail();
            let blank = |b: &u8| b.is_ascii_whitespace() || (commas && *b == b',');
            match avail.iter().position(|b| !blank(b)) {
                Some(n) => {
                    self.advance(n);
                    return true;
                }
                None => {
                    self.advance(avail.len());
                    if !self.fill() {
                        return false;
                    }
                }
            }
        }
    }

    /// Whether a `{"Records": [` envelope starts here; if so, moves past its `[`.
    fn envelope_start(&mut self) -> bool {
        while self.avail().len() < 64 && self.fill() {}
        let avail = self.avail();
        let mut at = 1;
        let mut expect = |token: &[u8]| {
            while avail.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let hit = avail[at.min(avail.len())..].starts_with(token);
            at += token.len();
            hit
        };
        if expect(b"\"Records\"") && expect(b":") && expect(b"[") {
            self.advance(at);
            true
        } else {
            false
        }
    }

    /// Frames the object or array starting here: a record (an object), or a broken stretch.
    fn value(
        &mut self,
        element: bool,
        sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let line = self.line;
        // The usual line of NDJSON: one object ending the line, handed on unparsed (the
        // normalizer reads it once).
        if !element {
            if let Some(n) = self.whole_line_object() {
                let bytes = trim(&self.avail()[..n]);
                sink(Item::Record { bytes, line })?;
                self.advance_in_line(n);
                self.record_ended_on = Some(self.line);
                return ControlFlow::Continue(());
            }
        }
        let mut scan = Scanner::default();
        let mut scanned = 0;
        loop {
            let avail = self.avail();
            match scan.run(avail, scanned) {
                Found::End(end) => {
                    let bytes = &avail[..end];
                    let item = if end > self.max {
                        Item::Broken {
                            line,
                            reject: self.too_large(end, ""),
                            bytes: &bytes[..self.keep],
                        }
                    } else if scan.broken_string {
                        let reject = Reject::new(
                            RejectReason::NotJson,
                            "a string runs past the end of its line",
                        );
                        broken_item(bytes, line, reject, self.keep)
                    } else if bytes[0] == b'{' {
                        Item::Record { bytes, line }
                    } else {
                        not_an_object(bytes, line, self.keep)
                    };
                    sink(item)?;
                    self.advance(end);
                    self.record_ended_on = Some(self.line);
                    return ControlFlow::Continue(());
                }
                Found::NewRecord(at) if at > self.max => {
                    let reject = self.too_large(at, BREAKS_OFF);
                    sink(Item::Broken {
                        line,
                        reject,
                        bytes: &avail[..self.keep],
                    })?;
                    self.advance(at);
                    return ControlFlow::Continue(());
                }
                Found::NewRecord(at) => {
                    let reject = Reject::new(
                        RejectReason::NotJson,
                        format!(
                            "the record breaks off: a new one starts at line {}",
                            line + memchr::memchr_iter(b'\n', &avail[..at]).count() as u64
                        ),
                    );
                    sink(broken_item(&avail[..at], line, reject, self.keep))?;
                    self.advance(at);
                    return ControlFlow::Continue(());
                }
                Found::More => {
                    scanned = avail.len();
                    if scanned > self.max {
                        return self.oversized(scan, line, sink);
                    }
                    if !self.fill() {
                        let avail = self.avail();
                        let reject =
                            Reject::new(RejectReason::NotJson, "the input ends inside the record");
                        sink(broken_item(avail, line, reject, self.keep))?;
                        self.advance(avail.len());
                        return ControlFlow::Continue(());
                    }
                }
            }
        }
    }

    /// The length of the line here when it is one object (it ends with `}`) within the limit.
    fn whole_line_object(&mut self) -> Option<usize> {
        // How far the line's end has been looked for: a long line read in small pieces (a
        // pipe) is searched once, not once a read.
        let mut searched = 0;
        loop {
            let avail = self.avail();
            let limit = avail.len().min(self.max.saturating_add(1));
            let line = match memchr::memchr(b'\n', &avail[searched..limit]) {
                Some(n) => searched + n,
                None if avail.len() > self.max => return None,
                None if self.eof => avail.len(),
                None => {
                    searched = limit;
                    self.fill();
                    continue;
                }
            };
            let text = trim(&avail[..line]);
            let one =
                text.last() == Some(&b'}') && braces_balance(text) && !closes_then_opens(text);
            return one.then_some(line);
        }
    }

    /// A value past the limit: rejected with its first bytes, the rest read through (never
    /// held) to its end, or to the next record start.
    fn oversized(
        &mut self,
        mut scan: Scanner,
        line: u64,
        sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let kept = self.avail()[..self.keep].to_vec();
        let mut total = self.avail().len();
        self.advance(total);
        let ended = loop {
            if !self.fill() {
                break "the input ends inside it";
            }
            let avail = self.avail();
            match scan.run(avail, 0) {
                Found::End(end) => {
                    total += end;
                    self.advance(end);
                    break "";
                }
                Found::NewRecord(at) => {
                    total += at;
                    self.advance(at);
                    break BREAKS_OFF;
                }
                Found::More => {
                    total += avail.len();
                    self.advance(avail.len());
                }
            }
        };
        let reject = self.too_large(total, ended);
        sink(Item::Broken {
            line,
            reject,
            bytes: &kept,
        })
    }

    /// A record of `total` bytes over the limit, and how it `ended` (empty when it closed): in
    /// the same words whether it was held whole or read through, so that the reject does not
    /// depend on how the input happened to be read.
    fn too_large(&self, total: usize, ended: &str) -> Reject {
        let mut detail = format!(
            "record is {total} bytes, the limit is {}; the first {} bytes kept",
            self.max, self.keep
        );
        if !ended.is_empty() {
            detail = format!("{detail}; {ended}");
        }
        Reject::new(RejectReason::TooLarge, detail)
    }

    /// A stray stretch (not an object or array): rejected up to its end, with its first bytes.
    fn stretch(
        &mut self,
        end: StretchEnd,
        sink: &mut dyn FnMut(Item<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let line = self.line;
        let after_record = end == StretchEnd::Line && self.record_ended_on == Some(line);
        let mut kept: Vec<u8> = Vec::new();
        let mut total = 0;
        // Brackets opened inside a stray element close inside it (`x[1]` is one stretch).
        let mut depth = 0u32;
        loop {
            let avail = self.avail();
            let found = match end {
                StretchEnd::Line => memchr::memchr(b'\n', avail),
                StretchEnd::Element => avail.iter().position(|&b| match b {
                    b'[' | b'{' => {
                        depth += 1;
                        false
                    }
                    b']' | b'}' if depth > 0 => {
                        depth -= 1;
                        false
                    }
                    b',' | b']' => depth == 0,
                    b'\n' => true,
                    _ => false,
                }),
            };
            let n = found.unwrap_or(avail.len());
            let room = self.keep - kept.len();
            kept.extend_from_slice(&avail[..n.min(room)]);
            total += n;
            self.advance(n);
            if found.is_some() || !self.fill() {
                break;
            }
        }
        let reject = if after_record {
            Reject::new(RejectReason::NotJson, "text after the record on its line")
        } else {
            let shown = trim(&kept);
            Reject::new(
                RejectReason::NotJson,
                format!(
                    "expected a JSON object, found {}",
                    String::from_utf8_lossy(&shown[..shown.len().min(24)])
                ),
            )
        };
        let mut item = broken_item(&kept, line, reject, self.keep);
        if let Item::Broken { reject, .. } = &mut item {
            if kept.len() < total {
                reject.detail = format!(
                    "{} ({total} bytes, the first {} kept)",
                    reject.detail,
                    kept.len()
                );
            }
        }
        sink(item)
    }
}

/// Whether `text` opens as many braces as it closes: a cheap guard (one vectorised pass) that
/// sends a line like `{"a":1} x}` — a record and garbage ending in a brace — to the scanner
/// instead of handing it on whole.
fn braces_balance(text: &[u8]) -> bool {
    // Narrow counters over short chunks, so the loop runs eight bytes a lane at once.
    let mut depth: i64 = 0;
    for chunk in text.chunks(4096) {
        let mut d: i16 = 0;
        for &b in chunk {
            d += i16::from(b == b'{') - i16::from(b == b'}');
        }
        depth += i64::from(d);
    }
    depth == 0
}

/// Whether a `}` is followed, past any white space, by a `{`: never so in one JSON object
/// (but inside its strings), always so between records concatenated on one line (`{…}{…}`, as
/// Amazon Data Firehose writes them to S3). Such a line goes to the scanner, record by record.
fn closes_then_opens(text: &[u8]) -> bool {
    memchr::memchr_iter(b'}', text)
        .any(|at| text[at + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
}

/// What scanning a value found.
enum Found {
    /// The value ends just before this offset.
    End(usize),
    /// A line starting with `{` or `[` begins here while the value is still open: the value
    /// broke off and a new record starts.
    NewRecord(usize),
    /// The value goes on past the bytes held.
    More,
}

/// The structure of a JSON value read so far: nesting, strings and line starts. Validating
/// the value is left to the parser; this only finds where it ends.
#[derive(Default)]
struct Scanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The next byte starts a line.
    line_start: bool,
    /// A string ran into a line break (JSON has none inside strings): the value is broken.
    broken_string: bool,
}

impl Scanner {
    /// Scans `bytes[from..]` (the value starts at `bytes[0]`, or earlier for a value read on
    /// from an earlier call).
    fn run(&mut self, bytes: &[u8], from: usize) -> Found {
        let mut i = from;
        while i < bytes.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    if bytes[i] != b'\n' {
                        i += 1;
                        continue;
                    }
                }
                let Some(k) = memchr::memchr3(b'"', b'\\', b'\n', &bytes[i..]) else {
                    return Found::More;
                };
                i += k;
                match bytes[i] {
                    b'"' => self.in_string = false,
                    b'\\' => self.escaped = true,
                    _ => {
                        self.in_string = false;
                        self.broken_string = true;
                        self.line_start = true;
                        i += 1;
                        continue;
                    }
                }
                self.line_start = false;
                i += 1;
                continue;
            }
            let b = bytes[i];
            match b {
                b'{' | b'[' if self.line_start && self.depth > 0 => return Found::NewRecord(i),
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Found::End(i + 1);
                    }
                }
                b'"' => self.in_string = true,
                _ => {}
            }
            self.line_start = b == b'\n';
            i += 1;
        }
        Found::More
    }
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

/// A stretch that could not be framed, with its bytes (the first `keep` of them).
fn broken_item(bytes: &[u8], line: u64, mut reject: Reject, keep: usize) -> Item<'_> {
    let bytes = trim(bytes);
    let kept = &bytes[..bytes.len().min(keep)];
    if kept.len() < bytes.len() {
        reject.detail = format!(
            "{} (the first {} of {} bytes kept)",
            reject.detail,
            kept.len(),
            bytes.len()
        );
    }
    Item::Broken {
        line,
        reject,
        bytes: kept,
    }
}

/// An array where a record belongs.
fn not_an_object(bytes: &[u8], line: u64, keep: usize) -> Item<'_> {
    let reject = Reject::new(
        RejectReason::NotJson,
        format!(
            "expected a JSON object, found {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(24)])
        ),
    );
    broken_item(bytes, line, reject, keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Framed = Vec<(u64, Result<String, (RejectReason, String)>)>;

    /// In a directory, only names a record file has are read or reported: a dangling symlink
    /// or a device named like a log is skipped with why, one named otherwise is passed over.
    #[test]
    fn a_walk_reports_only_what_is_named_like_a_record_file() {
        let dir = std::env::temp_dir().join(format!("sg-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.jsonl"), "{}\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a log\n").unwrap();
        for name in ["gone.jsonl", "gone.txt"] {
            std::os::unix::fs::symlink(dir.join("nowhere"), dir.join(name)).unwrap();
        }
        for name in ["null.jsonl", "null.txt"] {
            std::os::unix::fs::symlink("/dev/null", dir.join(name)).unwrap();
        }
        let expanded = expand(std::slice::from_ref(&dir));
        let skipped: Vec<PathBuf> = expanded.skipped.iter().map(|(p, _)| p.clone()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(expanded.files, [dir.join("a.jsonl")]);
        assert_eq!(skipped, [dir.join("gone.jsonl"), dir.join("null.jsonl")]);
        assert!(
            expanded.skipped[1].1.contains("not a regular file"),
            "{:?}",
            expanded.skipped
        );
    }

    fn frame(input: &str) -> Framed {
        frame_limited(input.as_bytes(), 1 << 20)
    }

    /// Frames `input` read whole and read 7 bytes at a time (every record crossing reads):
    /// both must give the same items.
    fn frame_limited(input: &[u8], max_record_bytes: usize) -> Framed {
        let whole = frame_reader(BufReader::new(input), max_record_bytes);
        let trickled = frame_reader(
            BufReader::with_capacity(1, Trickle(input)),
            max_record_bytes,
        );
        assert_eq!(whole, trickled, "read whole and in pieces");
        whole
    }

    /// A record longer than the framer's first buffer (two read chunks) grows it, and is read
    /// whole with the record after it.
    #[test]
    fn a_record_longer_than_the_buffer_is_read_whole() {
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(3 * READ_CHUNK));
        let framed = frame(&format!("{long}\n{{\"b\":1}}\n"));
        assert_eq!(framed, [(1, Ok(long)), (2, Ok(r#"{"b":1}"#.to_owned()))]);
    }

    /// A reader that hands out at most 7 bytes a call.
    struct Trickle<'a>(&'a [u8]);

    impl io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(7).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn frame_reader(reader: impl BufRead, max_record_bytes: usize) -> Framed {
        let mut out = Vec::new();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        frame_records(reader, max_record_bytes, &mut |item| {
            match item {
                Item::Record { bytes, line } => out.push((line, Ok(text(bytes)))),
                Item::Broken {
                    line,
                    reject,
                    bytes,
                } => out.push((line, Err((reject.reason, text(bytes))))),
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    /// Whether the normalizer can read `record` (a balanced but broken object is handed on
    /// whole, and the normalizer rejects it with its bytes).
    fn parses(record: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(record).is_ok()
    }

    /// The records kept, in order.
    fn kept(framed: &Framed) -> Vec<&str> {
        framed
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(String::as_str))
            .filter(|r| parses(r))
            .collect()
    }

    /// The rejected stretches' bytes, in order: by the framing, or by the normalizer.
    fn rejected(framed: &Framed) -> Vec<&str> {
        framed
            .iter()
            .filter_map(|(_, r)| match r {
                Ok(record) => (!parses(record)).then_some(record.as_str()),
                Err((_, bytes)) => Some(bytes.as_str()),
            })
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

    /// Records concatenated with nothing between them (Amazon Data Firehose's S3 objects) or
    /// a space are each a record, on the line they share; braces inside strings are text.
    #[test]
    fn records_concatenated_on_one_line_are_each_a_record() {
        let framed = frame("{\"a\":1}{\"b\":2} {\"c\":\"}{\"}\n{\"d\":{\"e\":1}}\n");
        assert_eq!(
            kept(&framed),
            [
                r#"{"a":1}"#,
                r#"{"b":2}"#,
                r#"{"c":"}{"}"#,
                r#"{"d":{"e":1}}"#
            ]
        );
        let lines: Vec<u64> = framed.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [1, 1, 1, 2]);
        // Read 7 bytes at a time, the first 70 bytes held (the look for an envelope wants 64)
        // end in `}` and balance, like a whole record: the line is read to its end before it
        // is judged.
        let record = format!(r#"{{"a":"{}}}","b":1}}"#, "x".repeat(63));
        assert_eq!(kept(&frame(&format!("{record}\n"))), [record]);
    }

    #[test]
    fn text_after_a_record_on_its_line_is_rejected_alone() {
        let input = "{\"a\":1}garbage\n{\"b\":2}\n";
        let got = frame(input);
        assert_eq!(kept(&got), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(rejected(&got), ["garbage"]);
        // Said so; garbage on a line of its own, or among an array's elements, is not after a
        // record.
        assert_eq!(
            details(input, 1 << 20),
            ["text after the record on its line"]
        );
        assert_eq!(
            details("{\"a\":1}\ngarbage\n[{\"b\":2}, x]", 1 << 20),
            [
                "expected a JSON object, found garbage",
                "expected a JSON object, found x"
            ]
        );
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
        // A stray element ends with its line, even with no comma after it.
        let got = frame("[\n{\"a\":1},\nstray\n{\"c\":3}\n]\n");
        assert_eq!(kept(&got), ["{\"a\":1}", "{\"c\":3}"]);
        assert_eq!(rejected(&got), ["stray"]);
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
                (3, Err((RejectReason::NotJson, "{oops".into()))),
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
    fn elements_sharing_a_line_are_each_a_record() {
        // The line `{"a":1}, {"b":2}` ends in `}` and balances, but it is two elements.
        let got = frame("[{\"a\":1}, {\"b\":2}\n]\n{\"c\":3}\n");
        assert_eq!(kept(&got), [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
        assert!(rejected(&got).is_empty());
    }

    #[test]
    fn a_record_read_across_lines_may_be_exactly_the_limit() {
        let record = "{\n\"a\": \"xxxx\"\n}";
        let n = record.len();
        let input = format!("{record}\n{{\"b\":1}}\n");
        assert_eq!(
            kept(&frame_limited(input.as_bytes(), n)),
            [record, "{\"b\":1}"]
        );
        let over = frame_limited(input.as_bytes(), n - 1);
        assert_eq!(kept(&over), ["{\"b\":1}"]);
        assert!(matches!(&over[0].1, Err((RejectReason::TooLarge, _))));
    }

    #[test]
    fn records_envelope_on_one_line_and_pretty() {
        let one = frame("{\"Records\":[{\"a\":1},{\"b\":2}]}\n");
        assert_eq!(one.len(), 2);
        let pretty = frame("{\n\"Records\": [\n{\"a\":1},\n{\"b\":2}\n]\n}\n");
        assert_eq!(pretty.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4]);
        // Envelope files joined with nothing between them (`cat` of files without a final
        // line break): the second envelope starts mid-line and is still opened.
        let joined = frame("{\"Records\":[{\"a\":1}]}{\"Records\":[{\"b\":2}]}\n");
        assert_eq!(kept(&joined), [r#"{"a":1}"#, r#"{"b":2}"#]);
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

    /// A file that opens with UTF-8's byte order mark (as Windows tools write it) starts with
    /// its first record, on line 1.
    #[test]
    fn a_byte_order_mark_is_passed_over() {
        for input in [
            "\u{feff}{\"a\":1}\n{\"b\":2}\n",
            "\u{feff}[{\"a\":1},\n{\"b\":2}]\n",
        ] {
            let got = frame(input);
            assert_eq!(kept(&got), [r#"{"a":1}"#, r#"{"b":2}"#], "{input:?}");
            assert_eq!(got[0].0, 1, "{input:?}");
            assert_eq!(rejected(&got), Vec::<&str>::new(), "{input:?}");
        }
    }

    /// A read interrupted by a signal is tried again: nothing is lost, no error is returned.
    #[test]
    fn an_interrupted_read_is_retried() {
        struct Interrupted<'a> {
            interrupted: bool,
            rest: &'a [u8],
        }
        impl io::Read for Interrupted<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if !std::mem::replace(&mut self.interrupted, true) {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                io::Read::read(&mut self.rest, out)
            }
        }
        let reader = Interrupted {
            interrupted: false,
            rest: b"{\"a\":1}\n",
        };
        let got = frame_reader(BufReader::with_capacity(1, reader), 1 << 20);
        assert_eq!(got, [(1, Ok(r#"{"a":1}"#.to_owned()))]);
    }

    /// The details of the rejects framing `input` gives, the same whether it is read whole or
    /// 7 bytes at a time (when a record over the limit is over it before its end is held).
    fn details(input: &str, max_record_bytes: usize) -> Vec<String> {
        let read = |reader: &mut dyn BufRead| {
            let mut details = Vec::new();
            frame_records(reader, max_record_bytes, &mut |item| {
                if let Item::Broken { reject, .. } = item {
                    details.push(reject.detail);
                }
                ControlFlow::Continue(())
            })
            .unwrap();
            details
        };
        let whole = read(&mut input.as_bytes());
        let trickled = read(&mut BufReader::with_capacity(1, Trickle(input.as_bytes())));
        assert_eq!(whole, trickled, "read whole and in pieces");
        whole
    }

    #[test]
    fn a_record_over_the_limit_is_counted_to_its_end() {
        let big = format!("{{\"a\": [\n{}\n]}}", "1,".repeat(50) + "1");
        assert_eq!(big.len(), 112);
        assert_eq!(
            details(&format!("{big}\n{{\"c\":2}}\n"), 60),
            ["record is 112 bytes, the limit is 60; the first 60 bytes kept"]
        );
        // Cut short: counted to where the next record starts, or to the end of the input.
        let cut = &big[..big.len() - 3];
        assert_eq!(
            details(&format!("{cut}\n{{\"c\":2}}\n"), 60),
            [
                "record is 110 bytes, the limit is 60; the first 60 bytes kept; it breaks off \
              where a new record starts"
            ]
        );
        assert_eq!(
            details(cut, 60),
            [
                "record is 109 bytes, the limit is 60; the first 60 bytes kept; the input ends \
              inside it"
            ]
        );
    }

    #[test]
    fn a_record_over_the_limit_is_rejected_with_its_first_bytes() {
        let big = format!("{{\"a\": \"{}\"}}", "x".repeat(100));
        for input in [
            format!("{{\"b\":1}}\n{big}\n{{\"c\":2}}\n"),
            format!("[{{\"b\":1}},\n{big},\n{{\"c\":2}}]"),
            format!("{{\"Records\":[{{\"b\":1}},{big},{{\"c\":2}}]}}"),
            format!(
                "{{\n\"b\":1}}\n{{\"a\": [\n{}\n]}}\n{{\"c\":2}}\n",
                "1,".repeat(50) + "1"
            ),
        ] {
            let got = frame_limited(input.as_bytes(), 60);
            assert_eq!(kept(&got).len(), 2, "{input:?}: {got:?}");
            let Err((reason, bytes)) = &got[1].1 else {
                panic!("{input:?}: {got:?}")
            };
            assert_eq!(*reason, RejectReason::TooLarge, "{input:?}");
            assert_eq!(bytes.len(), 60, "the first 60 bytes kept: {got:?}");
        }
        // Held whole before it was judged, or read in pieces and over the limit before its end
        // is held, the record is said to be over it in the same words.
        assert_eq!(
            details(&format!("{big}\n"), 60),
            ["record is 109 bytes, the limit is 60; the first 60 bytes kept"]
        );
    }

    #[test]
    fn a_stretch_without_line_breaks_costs_one_reject_and_no_more_than_the_limit() {
        // 10 MB of NUL bytes, made as they are read: never held.
        let zeros = io::Read::take(io::repeat(0), 10 << 20);
        let tail = &b"\n{\"after\":1}\n"[..];
        let reader = BufReader::new(io::Read::chain(zeros, tail));
        let mut got = Vec::new();
        frame_records(reader, 1000, &mut |item| {
            got.push(match item {
                Item::Record { bytes, line } => (line, Ok(bytes.to_vec())),
                Item::Broken {
                    line,
                    reject,
                    bytes,
                } => (line, Err((reject, bytes.len()))),
            });
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let Err((reject, kept)) = &got[0].1 else {
            panic!("{got:?}")
        };
        assert_eq!(*kept, 1000);
        assert!(
            reject.detail.contains(&format!("{} bytes", 10 << 20)),
            "{reject}"
        );
        assert_eq!(got[1], (2, Ok(b"{\"after\":1}".to_vec())));
    }

    #[test]
    fn a_broken_record_larger_than_what_is_kept_says_so() {
        // Under a 4 MB limit, a 2 MB record whose string runs past its line is kept to 1 MB.
        let size = 2 << 20;
        let record = format!("{{\"a\":\"{}\n}}", "x".repeat(size - 8));
        assert_eq!(record.len(), size);
        assert_eq!(
            details(&format!("{record}\n"), 4 << 20),
            [format!(
                "a string runs past the end of its line (the first {MAX_BROKEN_BYTES} of {size} \
                 bytes kept)"
            )]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_never_held_whole() {
        // One 10 MB record on one line, made as it is read.
        let xs = io::Read::take(io::repeat(b'x'), 10 << 20);
        let input = io::Read::chain(
            io::Read::chain(&b"{\"a\":\""[..], xs),
            &b"\"}\n{\"b\":1}\n"[..],
        );
        let mut framer = Framer::new(BufReader::new(input), 1000);
        let mut got = Vec::new();
        let _ = framer.run(&mut |item| {
            got.push(match item {
                Item::Record { bytes, .. } => Ok(bytes.to_vec()),
                Item::Broken { reject, .. } => Err(reject.detail),
            });
            ControlFlow::Continue(())
        });
        let size = (10 << 20) + 8;
        assert_eq!(
            got,
            [
                Err(format!(
                    "record is {size} bytes, the limit is 1000; the first 1000 bytes kept"
                )),
                Ok(b"{\"b\":1}".to_vec())
            ]
        );
        assert!(
            framer.buf.len() < 1 << 20,
            "held {} bytes",
            framer.buf.len()
        );
    }

    #[test]
    fn the_sink_stops_the_reading() {
        let mut seen = 0;
        frame_records(&b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"[..], 100, &mut |_| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, 2);
    }

    #[test]
    fn a_line_starting_a_collection_opens_a_new_one_inside_one_left_open() {
        let got = frame("[{\"a\":1},\n[{\"b\":2}]\n{\"Records\":[{\"c\":3}]}\n");
        assert_eq!(
            kept(&got),
            ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"],
            "{got:?}"
        );
        assert!(rejected(&got).is_empty(), "{got:?}");
    }

    #[test]
    fn garbage_ending_in_a_brace_after_a_record_is_rejected_alone() {
        let got = frame("{\"a\":1} x}\n{\"b\":2}\n");
        assert_eq!(kept(&got), ["{\"a\":1}", "{\"b\":2}"], "{got:?}");
        assert_eq!(rejected(&got), ["x}"]);
    }

    #[test]
    fn an_array_cut_short_keeps_its_records_and_says_so() {
        let got = frame("[\n{\"a\":1},\n{\"b\":2}\n");
        assert_eq!(kept(&got), ["{\"a\":1}", "{\"b\":2}"]);
        let Some((line, Err((RejectReason::NotJson, bytes)))) = got.last() else {
            panic!("{got:?}")
        };
        assert_eq!(
            (*line, bytes.as_str()),
            (4, ""),
            "where the input ended; no bytes lost"
        );
        // The notice names where the collection opened.
        let notice = |input: &str| details(input, 1 << 20);
        assert_eq!(
            notice("\n[\n{\"a\":1}\n"),
            [
                "this array of records never closes (no `]` before the end): the input may be cut \
              short (the `[` at line 2)"
            ]
        );
        assert!(
            notice("{\"Records\": [{\"a\":1},")[0].ends_with("(the `{\"Records\": [` at line 1)")
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
