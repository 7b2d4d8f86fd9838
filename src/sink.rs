//! Where results go: decisions as NDJSON, rejected records as NDJSON dead letters.

use std::io::{self, Write};

use serde::Serialize;

use crate::decision::Decision;
use crate::event::Reject;

/// A bounded copy of a rejected record is kept, so one huge record cannot flood the dead-letter
/// place.
pub const DEAD_LETTER_COPY_BYTES: usize = 64 * 1024;

#[derive(Serialize)]
struct DeadLetter<'a> {
    origin: DeadLetterOrigin<'a>,
    reason: crate::event::RejectReason,
    detail: &'a str,
    truncated: bool,
    record: std::borrow::Cow<'a, str>,
}

#[derive(Serialize)]
struct DeadLetterOrigin<'a> {
    file: &'a str,
    line: u64,
}

/// Writes one rejected record (from a file) as a JSON line.
pub fn write_dead_letter(
    w: &mut impl Write,
    file: &str,
    line: u64,
    reject: &Reject,
    bytes: &[u8],
) -> io::Result<()> {
    let copy = &bytes[..bytes.len().min(DEAD_LETTER_COPY_BYTES)];
    let letter = DeadLetter {
        origin: DeadLetterOrigin { file, line },
        reason: reject.reason,
        detail: &reject.detail,
        truncated: copy.len() < bytes.len(),
        record: String::from_utf8_lossy(copy),
    };
    serde_json::to_writer(&mut *w, &letter)?;
    w.write_all(b"\n")
}

/// Writes one decision as a JSON line.
pub fn write_decision(w: &mut impl Write, decision: &Decision) -> io::Result<()> {
    serde_json::to_writer(&mut *w, decision)?;
    w.write_all(b"\n")
}
