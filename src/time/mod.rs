//! Event time as audit pipelines deliver it: one clock per source, the grace within which a
//! session's records count whatever their arrival order, and the guard against records dated
//! far ahead of their source.
//!
//! A SIEM topic carries CloudTrail files 5–15 minutes late and unsorted beside Okta and
//! Kubernetes records seconds old, so time is never one clock for everything:
//!
//! - **Order is kept per session** (in the engine): a record up to the grace older than its
//!   session's newest is applied by event time; an older one is *late*. One source's lag never
//!   makes another's records late, and sessions never wait for each other.
//! - **Timers run on their source's clock** ([`Clocks::watermark`]): the newest event time of the
//!   source, less its grace — so a timer fires only once no record of its session can still
//!   arrive within the grace and change the outcome. A source that goes quiet follows the newest
//!   other source, [`TimeConfig::quiet_source_ms`] behind it, so its timers still fire.
//! - **No single record moves a clock far ahead** ([`Clocks::admit`]): a record more than
//!   [`TimeConfig::max_skew_ms`] past every clock is held until a later record of its source
//!   vouches for its time (one at most `max_skew` before it, or after it: the source really
//!   got there) and it is applied, or rejected as `future` once records of its source keep
//!   arriving at the old time (or the input ends).
//!
//! Everything here is on event time and the order records arrive in: no wall clock.

use crate::event::Source;
use crate::source::Origin;

/// How many sources there are; clocks and graces are arrays indexed by [`source_index`].
pub const SOURCES: usize = Source::ALL.len();

/// Position of `source` in the per-source arrays.
pub const fn source_index(source: Source) -> usize {
    source as usize
}

/// Records of the source that must arrive at the old time before a held record is judged to be
/// dated in the future.
const REFUTE_AFTER: u32 = 4;
/// Records of other sources that must arrive, besides their clocks moving on, before a source
/// with none counts as quiet: a burst of another source's records (a day of files read one after
/// the other) does not make a source that is still delivering look quiet.
pub const QUIET_AFTER_ARRIVALS: u64 = 10_000;
/// Held records per source at most; past it the oldest is judged `future`.
const MAX_HELD_PER_SOURCE: usize = 16;

/// The time model's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeConfig {
    /// Per source: how much older than its session's newest record a record may be and still be
    /// applied in event-time order; also how far a source's timers trail its newest record.
    pub grace_ms: [i64; SOURCES],
    /// A record this far past the newest record of its source (and of every other source) is
    /// held as a possible `future` outlier.
    pub max_skew_ms: i64,
    /// A quiet source's clock follows the newest other source this far behind it.
    pub quiet_source_ms: i64,
}

/// The default grace: CloudTrail files arrive 5–15 minutes after their events, unsorted.
pub const DEFAULT_GRACE_MS: i64 = 20 * 60_000;

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            grace_ms: [DEFAULT_GRACE_MS; SOURCES],
            max_skew_ms: 30 * 60_000,
            quiet_source_ms: 3_600_000,
        }
    }
}

impl TimeConfig {
    pub fn grace(&self, source: Source) -> i64 {
        self.grace_ms[source_index(source)]
    }

    /// Applies `--grace` values: `20m` for every source, `okta=2m` for one.
    pub fn set_grace(&mut self, text: &str) -> Result<(), String> {
        let parse = |d: &str| {
            crate::units::parse_duration_ms(d)
                .ok_or_else(|| format!("'{d}' is not a duration (e.g. 30s, 5m, 1h)"))
        };
        match text.split_once('=') {
            None => self.grace_ms = [parse(text.trim())?; SOURCES],
            Some((name, d)) => {
                let source = Source::from_name(name.trim()).ok_or_else(|| {
                    format!(
                        "'{name}' is not a source ({})",
                        Source::ALL.map(Source::as_str).join(", ")
                    )
                })?;
                self.grace_ms[source_index(source)] = parse(d.trim())?;
            }
        }
        Ok(())
    }
}

/// A record held by the future guard: its bytes (events borrow from their record, so it is
/// normalized again when released).
#[derive(Clone, Debug)]
pub struct Held {
    pub source: Source,
    pub time: i64,
    pub bytes: Vec<u8>,
    pub origin: Origin,
    /// Records of the source that arrived at the old time since this one was held.
    strikes: u32,
}

/// A held record the guard has judged.
#[derive(Debug)]
pub enum Released {
    /// A later record vouched for its time: apply it now, before the record in hand.
    Apply(Held),
    /// Nothing confirmed it: reject it as `future`, this far ahead of its source's clock.
    Future { held: Held, ahead_ms: i64 },
}

/// What [`Clocks::admit`] says about a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Apply it now (after any [`Released::Apply`] records handed out with it).
    Now,
    /// Held as a possible future outlier; it comes back as [`Released`].
    Held,
}

/// Where the clocks stand: what a checkpoint keeps to resume them exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockState {
    /// Newest applied event time per source; `i64::MIN` before the first.
    pub newest: [i64; SOURCES],
    /// Per source: the newest event time of all sources when a record of it last arrived.
    pub heard: [i64; SOURCES],
    /// Records admitted so far, and per source the count when one of it last arrived.
    pub arrivals: u64,
    pub heard_at: [u64; SOURCES],
}

impl Default for ClockState {
    fn default() -> Self {
        ClockState {
            newest: [i64::MIN; SOURCES],
            heard: [i64::MIN; SOURCES],
            arrivals: 0,
            heard_at: [0; SOURCES],
        }
    }
}

/// The clocks of every source.
#[derive(Clone, Debug)]
pub struct Clocks {
    config: TimeConfig,
    state: ClockState,
    held: Vec<Held>,
}

impl Clocks {
    pub fn new(config: TimeConfig) -> Clocks {
        Clocks {
            config,
            state: ClockState::default(),
            held: Vec::new(),
        }
    }

    pub fn config(&self) -> &TimeConfig {
        &self.config
    }

    /// Where the clocks stand, for checkpoints.
    pub fn state(&self) -> ClockState {
        self.state
    }

    /// Resumes from a checkpoint's clocks (nothing held).
    pub fn resume(&mut self, state: ClockState) {
        self.state = state;
    }

    /// Records held now, oldest first.
    pub fn held(&self) -> &[Held] {
        &self.held
    }

    fn global_newest(&self) -> i64 {
        self.state.newest.iter().copied().max().unwrap_or(i64::MIN)
    }

    /// The source's clock before its grace: its newest record — or, once it is quiet (the
    /// others moved `quiet_source_ms` past where they were when it was last heard from), the
    /// newest other source's (`global`) less `quiet_source_ms`, whichever is later.
    fn effective_newest(&self, source: Source, global: i64) -> i64 {
        let index = source_index(source);
        let own = self.state.newest[index];
        let quiet = self.config.quiet_source_ms;
        let heard = self.state.heard[index];
        let recently = heard != i64::MIN
            && (global <= heard.saturating_add(quiet)
                || self.state.arrivals - self.state.heard_at[index] < QUIET_AFTER_ARRIVALS);
        if global == i64::MIN || recently {
            return own;
        }
        own.max(global.saturating_sub(quiet))
    }

    /// Where every source's timers and idle expiry stand, by [`source_index`]: its clock less
    /// its grace — every record of its sessions that can still be applied is at or after it.
    /// At the `end` of the input nothing more can arrive, so there is no grace.
    pub fn watermarks(&self, end: bool) -> [i64; SOURCES] {
        let global = self.global_newest();
        Source::ALL.map(|source| match self.effective_newest(source, global) {
            i64::MIN => i64::MIN,
            t if end => t,
            t => t.saturating_sub(self.config.grace(source)),
        })
    }

    /// One source's watermark (see [`Self::watermarks`]).
    pub fn watermark(&self, source: Source) -> i64 {
        self.watermarks(false)[source_index(source)]
    }

    /// Admits a record of `source` at event time `time`. Held records judged by this arrival
    /// are appended to `released`, in arrival order. The clocks do not move yet: call
    /// [`Self::applied`] for each released record and then for this one (on [`Admit::Now`]),
    /// just before applying it, so that each is applied with the clocks as they stood when it
    /// would have arrived in order.
    pub fn admit(
        &mut self,
        source: Source,
        time: i64,
        bytes: &[u8],
        origin: Origin,
        released: &mut Vec<Released>,
    ) -> Admit {
        let index = source_index(source);
        let skew = self.config.max_skew_ms;
        self.state.arrivals += 1;
        self.state.heard[index] = self.global_newest();
        self.state.heard_at[index] = self.state.arrivals;
        // Held records the clocks have caught up with are no longer ahead.
        if !self.held.is_empty() {
            let global = self.global_newest();
            let mut i = 0;
            while i < self.held.len() {
                let h = &self.held[i];
                let reference = self.state.newest[source_index(h.source)].max(global);
                if h.time <= reference.saturating_add(skew) {
                    released.push(Released::Apply(self.held.remove(i)));
                } else {
                    i += 1;
                }
            }
        }
        // This record's time vouches for held records of its source up to `skew` past it: the
        // source really reached their time.
        let mut vouched = i64::MIN;
        if !self.held.is_empty() {
            let mut i = 0;
            while i < self.held.len() {
                let h = &self.held[i];
                if h.source == source && h.time <= time.saturating_add(skew) {
                    let held = self.held.remove(i);
                    vouched = vouched.max(held.time);
                    released.push(Released::Apply(held));
                } else {
                    i += 1;
                }
            }
        }
        let reference = self.state.newest[index]
            .max(vouched)
            .max(self.global_newest());
        let ahead = reference != i64::MIN && time > reference.saturating_add(skew);
        if !ahead {
            if !self.held.is_empty() {
                self.strike(source, released);
            }
            return Admit::Now;
        }
        self.held.push(Held {
            source,
            time,
            bytes: bytes.to_vec(),
            origin,
            strikes: 0,
        });
        if self.held.iter().filter(|h| h.source == source).count() > MAX_HELD_PER_SOURCE {
            let oldest = self
                .held
                .iter()
                .position(|h| h.source == source)
                .expect("counted above");
            let held = self.held.remove(oldest);
            self.judge_future(held, released);
        }
        Admit::Held
    }

    /// A record of `source` at `time` is being applied: its source's clock moves to it.
    pub fn applied(&mut self, source: Source, time: i64) {
        let newest = &mut self.state.newest[source_index(source)];
        *newest = (*newest).max(time);
    }

    /// A record of `source` arrived at the old time: held records of the source lose credit.
    fn strike(&mut self, source: Source, released: &mut Vec<Released>) {
        let mut i = 0;
        while i < self.held.len() {
            let h = &mut self.held[i];
            if h.source == source {
                h.strikes += 1;
                if h.strikes >= REFUTE_AFTER {
                    let held = self.held.remove(i);
                    self.judge_future(held, released);
                    continue;
                }
            }
            i += 1;
        }
    }

    fn judge_future(&self, held: Held, released: &mut Vec<Released>) {
        let clock = self.state.newest[source_index(held.source)].max(self.global_newest());
        let ahead_ms = held.time.saturating_sub(clock);
        released.push(Released::Future { held, ahead_ms });
    }

    /// The end of the input: every record still held was never confirmed.
    pub fn finish(&mut self, released: &mut Vec<Released>) {
        for held in std::mem::take(&mut self.held) {
            self.judge_future(held, released);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn origin(line: u64) -> Origin {
        Origin::File { file: 0, line }
    }

    /// Admits a record as the evaluator does: released records applied first, then this one.
    fn admit(clocks: &mut Clocks, source: Source, t: i64, line: u64) -> (Admit, Vec<Released>) {
        let mut released = Vec::new();
        let admit = clocks.admit(source, t, b"{}", origin(line), &mut released);
        for r in &released {
            if let Released::Apply(h) = r {
                clocks.applied(h.source, h.time);
            }
        }
        if admit == Admit::Now {
            clocks.applied(source, t);
        }
        (admit, released)
    }

    #[test]
    fn a_lagging_source_keeps_its_own_clock() {
        let mut clocks = Clocks::new(TimeConfig::default());
        admit(&mut clocks, Source::Okta, 100 * MIN, 1);
        admit(&mut clocks, Source::Cloudtrail, 85 * MIN, 2);
        assert_eq!(clocks.watermark(Source::Okta), 80 * MIN);
        assert_eq!(clocks.watermark(Source::Cloudtrail), 65 * MIN);
        // A source never seen follows the newest one, an hour behind.
        assert_eq!(clocks.watermark(Source::Github), 20 * MIN);
        assert_eq!(
            clocks.watermarks(true)[source_index(Source::Cloudtrail)],
            85 * MIN
        );
        // Okta moves on by two hours while CloudTrail keeps delivering, 2 hours behind: it
        // keeps its own clock. Once it is quiet for more than an hour, it follows Okta.
        for t in (100..=220).step_by(10) {
            admit(&mut clocks, Source::Okta, t * MIN, 3);
            admit(&mut clocks, Source::Cloudtrail, (t - 120) * MIN, 4);
        }
        assert_eq!(clocks.watermark(Source::Cloudtrail), 80 * MIN);
        for t in (230..=300).step_by(10) {
            admit(&mut clocks, Source::Okta, t * MIN, 5);
        }
        assert_eq!(
            clocks.watermark(Source::Cloudtrail),
            80 * MIN,
            "too few records since"
        );
        for line in 0..QUIET_AFTER_ARRIVALS {
            admit(&mut clocks, Source::Okta, 300 * MIN, line + 100);
        }
        assert_eq!(clocks.watermark(Source::Cloudtrail), 220 * MIN);
    }

    #[test]
    fn one_record_far_ahead_is_held_then_judged_future() {
        let mut clocks = Clocks::new(TimeConfig::default());
        admit(&mut clocks, Source::Cloudtrail, 100 * MIN, 1);
        let (a, _) = admit(&mut clocks, Source::Cloudtrail, 160 * MIN, 2);
        assert_eq!(a, Admit::Held);
        assert_eq!(
            clocks.watermark(Source::Cloudtrail),
            80 * MIN,
            "clock unmoved"
        );
        let mut judged = Vec::new();
        for line in 3..7 {
            let (a, released) = admit(&mut clocks, Source::Cloudtrail, 101 * MIN, line);
            assert_eq!(a, Admit::Now);
            judged.extend(released);
        }
        match judged.as_slice() {
            [Released::Future { held, ahead_ms }] => {
                assert_eq!(held.origin, origin(2));
                assert_eq!(*ahead_ms, 59 * MIN);
            }
            other => panic!("expected one future record, got {other:?}"),
        }
    }

    #[test]
    fn a_second_record_confirms_a_jump() {
        let mut clocks = Clocks::new(TimeConfig::default());
        admit(&mut clocks, Source::Okta, 100 * MIN, 1);
        assert_eq!(
            admit(&mut clocks, Source::Okta, 300 * MIN, 2).0,
            Admit::Held
        );
        let (a, released) = admit(&mut clocks, Source::Okta, 301 * MIN, 3);
        assert_eq!(a, Admit::Now);
        assert!(matches!(released.as_slice(), [Released::Apply(h)] if h.origin == origin(2)));
        assert_eq!(clocks.watermark(Source::Okta), 281 * MIN);
    }

    #[test]
    fn a_quiet_source_is_not_ahead_of_a_busy_one() {
        let mut clocks = Clocks::new(TimeConfig::default());
        admit(&mut clocks, Source::Okta, 100 * MIN, 1);
        for line in 0..QUIET_AFTER_ARRIVALS {
            admit(&mut clocks, Source::Cloudtrail, 100 * MIN, line + 100);
        }
        for (line, t) in (100..=200).step_by(20).enumerate() {
            assert_eq!(
                admit(&mut clocks, Source::Cloudtrail, t * MIN, line as u64 + 2).0,
                Admit::Now
            );
        }
        // Okta was quiet for 95 minutes while CloudTrail moved: its next record is not ahead.
        assert_eq!(admit(&mut clocks, Source::Okta, 195 * MIN, 9).0, Admit::Now);
    }

    #[test]
    fn a_later_record_vouches_for_a_sparse_jump() {
        let mut clocks = Clocks::new(TimeConfig::default());
        admit(&mut clocks, Source::Cloudtrail, 0, 1);
        // A quiet day, then a session starts and acts 75 minutes later.
        assert_eq!(
            admit(&mut clocks, Source::Cloudtrail, 1440 * MIN, 2).0,
            Admit::Held
        );
        let (a, released) = admit(&mut clocks, Source::Cloudtrail, 1515 * MIN, 3);
        assert_eq!(
            a,
            Admit::Held,
            "75 minutes past the vouched record: held in turn"
        );
        assert!(matches!(released.as_slice(), [Released::Apply(h)] if h.origin == origin(2)));
        let (a, released) = admit(&mut clocks, Source::Cloudtrail, 1516 * MIN, 4);
        assert_eq!(a, Admit::Now);
        assert!(matches!(released.as_slice(), [Released::Apply(h)] if h.origin == origin(3)));
    }

    #[test]
    fn unconfirmed_records_are_future_at_the_end() {
        let mut clocks = Clocks::new(TimeConfig::default());
        admit(&mut clocks, Source::Github, 0, 1);
        admit(&mut clocks, Source::Github, i64::MAX / 2, 2);
        let mut released = Vec::new();
        clocks.finish(&mut released);
        assert!(matches!(released.as_slice(), [Released::Future { .. }]));
        assert!(clocks.held().is_empty());
    }

    #[test]
    fn grace_flags() {
        let mut config = TimeConfig::default();
        config.set_grace("5m").unwrap();
        config.set_grace("okta=30s").unwrap();
        assert_eq!(config.grace(Source::Cloudtrail), 5 * MIN);
        assert_eq!(config.grace(Source::Okta), 30_000);
        assert!(config
            .set_grace("gcp=1m")
            .unwrap_err()
            .contains("not a source"));
        assert!(config.set_grace("soon").is_err());
    }
}
