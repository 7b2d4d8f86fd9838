//! Puts records in event-time order within the allowed lateness, before the engine.
//!
//! With no lateness allowed, records pass straight through and one older than the newest seen
//! is late. With lateness `L`, records wait in a buffer ordered by (event time, a hash of their
//! bytes) and are released once the newest event time seen is more than `L` past theirs; a
//! record older than that release point is late. Ordering ties by content, not by arrival,
//! makes the released order — and so every decision — the same for any arrival order within
//! `L`. Buffered records are kept as bytes (events borrow from their record) and normalized
//! again on release.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use crate::source::Origin;

/// A record held until the watermark passes it.
pub struct Held {
    pub bytes: Vec<u8>,
    pub origin: Origin,
}

/// What the sequencer says about an incoming record.
pub enum Admit {
    /// Process it now, in arrival order.
    Now,
    /// Buffered; released later by `release`.
    Held,
    /// Older than the watermark: count it, do not apply it.
    Late,
}

pub struct Sequencer {
    lateness_ms: i64,
    newest: i64,
    buffer: BTreeMap<(i64, u64, u64), Held>,
    arrivals: u64,
}

impl Sequencer {
    pub fn new(lateness_ms: i64) -> Self {
        Sequencer {
            lateness_ms: lateness_ms.max(0),
            newest: i64::MIN,
            buffer: BTreeMap::new(),
            arrivals: 0,
        }
    }

    /// The time below which records are late.
    pub fn watermark(&self) -> i64 {
        self.newest.saturating_sub(self.lateness_ms)
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Origins of the records held now (not yet released), in release order.
    pub fn held_origins(&self) -> impl Iterator<Item = crate::source::Origin> + '_ {
        self.buffer.values().map(|h| h.origin)
    }

    /// Resumes as if records up to event time `newest` had been admitted before: used when
    /// rebuilding state from a position in the middle of an input.
    pub fn resume_after(&mut self, newest: i64) {
        self.newest = self.newest.max(newest);
    }

    /// Admits a record whose event time is `time`. Call `release` after a `Held`.
    pub fn admit(&mut self, time: i64, bytes: &[u8], origin: Origin) -> Admit {
        if self.lateness_ms == 0 {
            if time < self.newest {
                return Admit::Late;
            }
            self.newest = time;
            return Admit::Now;
        }
        if time < self.watermark() {
            return Admit::Late;
        }
        self.newest = self.newest.max(time);
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new();
        bytes.hash(&mut hasher);
        // Identical records keep their arrival order; there is nothing to tell them apart.
        self.arrivals += 1;
        self.buffer.insert(
            (time, hasher.finish(), self.arrivals),
            Held {
                bytes: bytes.to_vec(),
                origin,
            },
        );
        Admit::Held
    }

    /// Records now older than the watermark, in release order.
    pub fn release(&mut self) -> Vec<Held> {
        let watermark = self.watermark();
        let mut out = Vec::new();
        while let Some(entry) = self.buffer.first_entry() {
            if entry.key().0 >= watermark {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// Everything still held, in order: the end of the input.
    pub fn drain(&mut self) -> Vec<Held> {
        std::mem::take(&mut self.buffer).into_values().collect()
    }
}
