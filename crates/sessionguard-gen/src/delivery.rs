//! Delivery order: the records in the order a SIEM topic receives them, not in event time.
//!
//! The generator makes records in event-time order (one global clock). With
//! `--delivery realistic` each record joins a *batch* the way its vendor ships it, every batch
//! gets a delivery time, and the records are written by delivery time:
//!
//! | source | batch | lag after the batch's window closes | a record's delay |
//! | --- | --- | --- | --- |
//! | CloudTrail | one log file per account, region and 5 minutes of event time; records shuffled inside | 5–15 min | 5–20 min |
//! | Okta | one System Log poll per minute of event time | 60–90 s | 60–150 s |
//! | Kubernetes | one audit-webhook batch per second | 1–2 s | 1–3 s |
//! | GitHub | one audit-log stream batch per 5 s | 10–60 s | 10–65 s |
//!
//! A batch's window is `[phase + k·w, phase + (k+1)·w)` with a per-stream phase (files and
//! polls do not all close on the same boundary); its delivery time is the window's end plus a
//! lag drawn uniformly from the source's range, per batch. Batches are written whole, ordered by
//! (delivery time, a seeded tie-break); CloudTrail's records are shuffled within their file,
//! the other sources keep their event-time order within a batch. Every draw is a hash of the
//! seed and the batch's identity, so the generator's own random stream — hence the records —
//! is the same as in sorted order: realistic output is a permutation of the sorted output.
//!
//! # Bounded memory
//!
//! A batch is held until the generator's event-time clock reaches its delivery time. Since
//! every record made later has an event time at or after the clock and every delivery time is
//! later than its records' event times, no batch made later can be due earlier: the output is
//! exactly sorted by delivery time, and what is held is at most the records of the last
//! [`MAX_DELAY_MS`] of event time (20 minutes: CloudTrail's window plus its longest lag).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::collections::HashMap;

use super::rng::{hash2, mix, Rng};

/// The order `gen` writes its records in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// By event time: one global clock, rendered time never goes backwards.
    #[default]
    Sorted,
    /// As a SIEM topic receives them: vendor batches, each after its lag (CloudTrail files
    /// 5–20 min late and shuffled inside, Okta polled each minute, Kubernetes webhook
    /// batches each second, GitHub streaming within a minute).
    Realistic,
}

/// How one source's records are batched and delivered.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Event time one batch covers (ms).
    pub window_ms: i64,
    /// The lag after the window closes, drawn uniformly per batch (ms, inclusive).
    pub lag_ms: (i64, i64),
    /// Records shuffled within a batch (CloudTrail log files are not sorted).
    pub shuffled: bool,
}

/// Per source, in [`super::SOURCES`] order: CloudTrail, Okta, Kubernetes, GitHub.
pub const SCHEDULES: [Schedule; 4] = [
    // CloudTrail: a log file per account and region about every 5 minutes, delivered
    // 5–15 minutes after its events; the events inside a file are in no particular order.
    Schedule {
        window_ms: 300_000,
        lag_ms: (300_000, 900_000),
        shuffled: true,
    },
    // Okta System Log polled about once a minute, with 60–90 s of lag.
    Schedule {
        window_ms: 60_000,
        lag_ms: (60_000, 90_000),
        shuffled: false,
    },
    // Kubernetes audit webhook: batches about once a second, 1–2 s later.
    Schedule {
        window_ms: 1_000,
        lag_ms: (1_000, 2_000),
        shuffled: false,
    },
    // GitHub audit-log streaming: batches of a few seconds, within about a minute.
    Schedule {
        window_ms: 5_000,
        lag_ms: (10_000, 60_000),
        shuffled: false,
    },
];

/// The longest a record can wait: a window plus the longest lag, over the sources.
pub const MAX_DELAY_MS: i64 = {
    let mut max = 0;
    let mut k = 0;
    while k < SCHEDULES.len() {
        let d = SCHEDULES[k].window_ms + SCHEDULES[k].lag_ms.1;
        if d > max {
            max = d;
        }
        k += 1;
    }
    max
};

/// The stream a CloudTrail record's log file belongs to: its `recipientAccountId` and
/// `awsRegion`, as CloudTrail names its files (`<account>_CloudTrail_<region>_<time>_….json.gz`).
pub fn cloudtrail_stream(record: &[u8]) -> u64 {
    fn value<'a>(record: &'a [u8], at: Option<usize>, name: &[u8]) -> &'a [u8] {
        let Some(at) = at else { return b"" };
        let rest = &record[at + name.len()..];
        let end = memchr::memchr(b'"', rest).unwrap_or(rest.len());
        &rest[..end]
    }
    const REGION: &[u8] = b"\"awsRegion\":\"";
    const ACCOUNT: &[u8] = b"\"recipientAccountId\":\"";
    // The region comes early (after the identity); the account late (after the bodies).
    let region = value(record, memchr::memmem::find(record, REGION), REGION);
    let account = value(record, memchr::memmem::rfind(record, ACCOUNT), ACCOUNT);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account.iter().chain(b"/").chain(region) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// Records are held in blocks of this size, pooled: what is held costs about its bytes, not
/// the doubling of growing buffers, and memory freed by a delivered batch is reused.
const BLOCK: usize = 64 << 10;

/// One record held in a batch.
#[derive(Clone, Copy, Debug)]
struct Entry {
    block: u32,
    start: u32,
    len: u32,
    /// End of its session key in [`Batch::keys`] (only kept for observers).
    key_end: u32,
    time_ms: i64,
    /// The generator's serial of a watched record (attack steps), else 0.
    serial: u64,
}

/// A held record, as [`Batch::get`] gives it.
pub struct Held<'a> {
    pub record: &'a [u8],
    pub key: &'a str,
    pub time_ms: i64,
    pub serial: u64,
}

/// One delivery: a CloudTrail log file, an Okta poll, a webhook or stream batch.
#[derive(Debug, Default)]
pub struct Batch {
    pub src: usize,
    pub deliver_at: i64,
    stream: u64,
    window: i64,
    blocks: Vec<Vec<u8>>,
    keys: String,
    entries: Vec<Entry>,
    /// Seeds the shuffle of a CloudTrail file.
    order_seed: u64,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `k`-th record as made.
    pub fn get(&self, k: usize) -> Held<'_> {
        let e = self.entries[k];
        let key_start = match k {
            0 => 0,
            _ => self.entries[k - 1].key_end as usize,
        };
        let start = e.start as usize;
        Held {
            record: &self.blocks[e.block as usize][start..start + e.len as usize],
            key: &self.keys[key_start..e.key_end as usize],
            time_ms: e.time_ms,
            serial: e.serial,
        }
    }

    /// The delivered order of its records, into `order` (indices for [`Batch::get`]).
    pub fn order(&self, order: &mut Vec<u32>) {
        order.clear();
        order.extend(0..self.entries.len() as u32);
        if SCHEDULES[self.src].shuffled {
            let mut rng = Rng::new(self.order_seed);
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
    }
}

/// How much is held.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    pub records: u64,
    pub bytes: u64,
}

/// Records waiting for their batch's delivery time.
pub struct Buffer {
    seed: u64,
    batches: Vec<Batch>,
    free: Vec<u32>,
    /// Empty blocks, for the next records.
    pool: Vec<Vec<u8>>,
    /// Open batches by (source, stream, window).
    open: HashMap<(usize, u64, i64), u32>,
    /// (delivery time, tie-break, batch) of every batch not yet delivered.
    due: BinaryHeap<Reverse<(i64, u64, u32)>>,
    held: Load,
    /// The most held at once.
    pub peak: Load,
}

impl Buffer {
    pub fn new(seed: u64) -> Buffer {
        Buffer {
            seed: hash2(seed, 0xde11_7e7e),
            batches: Vec::new(),
            free: Vec::new(),
            pool: Vec::new(),
            open: HashMap::new(),
            due: BinaryHeap::new(),
            held: Load::default(),
            peak: Load::default(),
        }
    }

    /// Holds a record of source `src` made at event time `t` (`stream`: see
    /// [`cloudtrail_stream`]; 0 for the sources with one stream); `key` only for observers,
    /// `serial` non-zero for records whose delivered line must be known.
    pub fn push(&mut self, src: usize, stream: u64, t: i64, record: &[u8], key: &str, serial: u64) {
        let schedule = SCHEDULES[src];
        let id_seed = hash2(hash2(self.seed, src as u64), stream);
        let phase = (id_seed % schedule.window_ms as u64) as i64;
        let window = (t - phase).div_euclid(schedule.window_ms);
        let id = match self.open.get(&(src, stream, window)) {
            Some(&id) => id,
            None => {
                let batch_seed = hash2(id_seed, window as u64);
                let (lo, hi) = schedule.lag_ms;
                let lag = lo + (batch_seed % (hi - lo + 1) as u64) as i64;
                let deliver_at = phase + (window + 1) * schedule.window_ms + lag;
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => {
                        self.batches.push(Batch::default());
                        (self.batches.len() - 1) as u32
                    }
                };
                let b = &mut self.batches[id as usize];
                b.src = src;
                b.deliver_at = deliver_at;
                b.stream = stream;
                b.window = window;
                b.order_seed = mix(batch_seed ^ 0x5_4aff_1e00);
                self.open.insert((src, stream, window), id);
                self.due
                    .push(Reverse((deliver_at, mix(batch_seed ^ 0x7_1eb4_ea00), id)));
                id
            }
        };
        let b = &mut self.batches[id as usize];
        let fits = b
            .blocks
            .last()
            .is_some_and(|block| block.capacity() - block.len() >= record.len());
        if !fits {
            let block = match self.pool.pop() {
                Some(block) if record.len() <= BLOCK => block,
                other => {
                    self.pool.extend(other);
                    Vec::with_capacity(record.len().max(BLOCK))
                }
            };
            b.blocks.push(block);
        }
        let block = b.blocks.len() - 1;
        let bytes = &mut b.blocks[block];
        let start = bytes.len();
        bytes.extend_from_slice(record);
        b.keys.push_str(key);
        b.entries.push(Entry {
            block: block as u32,
            start: start as u32,
            len: record.len() as u32,
            key_end: u32::try_from(b.keys.len()).expect("session keys of a batch under 4 GiB"),
            time_ms: t,
            serial,
        });
        self.held.records += 1;
        self.held.bytes += record.len() as u64;
        if self.held.bytes > self.peak.bytes {
            self.peak = self.held;
        }
    }

    /// The next batch due at or before `now` (every batch with `now = i64::MAX`), taken out
    /// of the buffer; give it back with [`Buffer::recycle`] once written.
    pub fn pop_due(&mut self, now: i64) -> Option<Batch> {
        let &Reverse((at, _, id)) = self.due.peek()?;
        if at > now {
            return None;
        }
        self.due.pop();
        let batch = std::mem::take(&mut self.batches[id as usize]);
        self.open.remove(&(batch.src, batch.stream, batch.window));
        self.free.push(id);
        self.held.records -= batch.entries.len() as u64;
        self.held.bytes -= batch.entries.iter().map(|e| u64::from(e.len)).sum::<u64>();
        Some(batch)
    }

    /// Whether a batch is due at or before `now`.
    #[inline]
    pub fn any_due(&self, now: i64) -> bool {
        self.due
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
    }

    /// Takes a delivered batch's memory back for the next records.
    pub fn recycle(&mut self, mut batch: Batch) {
        for mut block in batch.blocks.drain(..) {
            if block.capacity() == BLOCK {
                block.clear();
                self.pool.push(block);
            }
        }
        // A big file's index is not kept for a small batch.
        if batch.entries.capacity() <= 4_096 {
            batch.entries.clear();
            batch.keys.clear();
            if let Some(&id) = self.free.last() {
                let slot = &mut self.batches[id as usize];
                if slot.entries.capacity() == 0 {
                    slot.entries = batch.entries;
                    slot.keys = batch.keys;
                    slot.blocks = batch.blocks;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_delay_is_cloudtrails() {
        assert_eq!(MAX_DELAY_MS, 20 * 60_000);
    }

    #[test]
    fn cloudtrail_files_are_per_account_and_region() {
        let a = br#"{"eventVersion":"1.09","awsRegion":"us-east-1","x":1,"recipientAccountId":"482915736014","eventCategory":"Management"}"#;
        let b = br#"{"eventVersion":"1.09","awsRegion":"us-east-1","x":2,"recipientAccountId":"482915736014"}"#;
        let c = br#"{"eventVersion":"1.09","awsRegion":"eu-west-1","x":1,"recipientAccountId":"482915736014"}"#;
        let d = br#"{"eventVersion":"1.09","awsRegion":"us-east-1","x":1,"recipientAccountId":"215836470925"}"#;
        assert_eq!(cloudtrail_stream(a), cloudtrail_stream(b));
        assert_ne!(cloudtrail_stream(a), cloudtrail_stream(c));
        assert_ne!(cloudtrail_stream(a), cloudtrail_stream(d));
    }

    #[test]
    fn batches_come_out_by_delivery_time_and_only_when_due() {
        let mut buf = Buffer::new(1);
        let mut released = Vec::new();
        let mut t = 0;
        while t < 3_600_000 {
            while let Some(batch) = buf.pop_due(t) {
                assert!(batch.deliver_at <= t);
                for k in 0..batch.len() {
                    let delay = batch.deliver_at - batch.get(k).time_ms;
                    let s = SCHEDULES[batch.src];
                    assert!(
                        (s.lag_ms.0..=s.window_ms + s.lag_ms.1).contains(&delay),
                        "{delay}"
                    );
                }
                released.push(batch.deliver_at);
                buf.recycle(batch);
            }
            for src in 0..4 {
                buf.push(src, (t / 7_000) as u64 % 3, t, b"{}", "", 0);
            }
            t += 250;
        }
        assert!(released.windows(2).all(|w| w[0] <= w[1]));
        assert!(buf.peak.records <= 4 * (MAX_DELAY_MS / 250 + 1) as u64);
        while let Some(batch) = buf.pop_due(i64::MAX) {
            buf.recycle(batch);
        }
        assert!(buf.open.is_empty());
    }
}
