//! `sessionguard gen`: realistic multi-source audit traffic at any volume, in the vendors' own
//! record formats, with attacks injected at known places and their ground truth.
//!
//! A crate of its own, sharing no code with the `sessionguard` engine: its ground truth is the
//! oracle the engine is tested against, so it renders records and finds the deciding ones with
//! code of its own (its own [`Source`], its own timestamps). The `sessionguard` CLI maps its
//! flags onto [`Config`] and [`Output`] and calls [`write()`]; tests and benches call [`generate`].
//!
//! # What it writes
//!
//! NDJSON: one record per line — AWS CloudTrail (`eventVersion` 1.09/1.10 records, as pipelines
//! stream them; optionally grouped in S3 delivery envelopes `{"Records":[…]}`), Okta System Log
//! `LogEvent`s, Kubernetes `audit.k8s.io/v1` events and GitHub audit-log events, mixed by the
//! `--sources` weights. Beside it, `<out>.truth.jsonl`: one line per injected attack with the
//! session key as sessionguard renders it, the rule of the shipped pack that must decide on it,
//! and the 1-based line of the deciding record (see [`Truth`]).
//!
//! # Time
//!
//! One global clock: record `i` is at `start + i / rate` (`--events-per-second-of-event-time`).
//! CloudTrail writes whole seconds, the other sources milliseconds or finer, so within each
//! second the CloudTrail records come first: rendered event time never goes backwards, and the
//! engine sees no late record.
//!
//! # Delivery order
//!
//! That is `--delivery sorted`, the default. With `--delivery realistic` the records are
//! written in the order a SIEM topic receives them: each joins its vendor's delivery batch
//! (a CloudTrail log file per account, region and 5 minutes, an Okta poll per minute, a
//! Kubernetes webhook batch per second, a GitHub stream batch per 5 s), and batches are
//! written by their delivery time, CloudTrail's shuffled inside. The records themselves are the
//! same as in sorted order (see [`delivery`]).
//!
//! # Sessions
//!
//! Each source keeps a pool of concurrent sessions (`--sessions`, split by the source weights).
//! A session's share of the records follows its own pace (a virtual-time schedule: busy
//! workloads, bursty people, quiet bots); it ends when its long-tailed length is spent or its
//! credential expires (an STS key after an hour), and a new one takes its place — so a run sees
//! many more distinct sessions than are concurrent. Role chains add sessions: the agent
//! platform's broker assumes agent roles, the security scanner assumes
//! `OrganizationAccountAccessRole` in member accounts.
//!
//! The benign habits that trip naive rules are there: NAT rotation inside the office /24, Athena
//! reading S3 for a person's session (`sourceIPAddress: athena.amazonaws.com`), one mistyped code
//! or one denied push before a successful factor, CI cloning one repository again and again,
//! services re-reading their two or three secrets, administrators (fresh SSO sessions, the
//! Terraform pipeline) changing *other* principals' policies and keys, the broker assuming agent
//! roles, a scanner chaining into an admin-named role to read. Direct S3 reads of a benign
//! session stay under 30 objects per 5 minutes and 290 MB per 10 minutes (bulk reading is done by
//! Athena for the session, which the pack leaves out by design).
//!
//! # Determinism and speed
//!
//! `--seed` fixes everything: same seed and flags, byte-identical output. Records are written
//! with `write`-free byte pushes into one reused buffer from precomputed pools (people,
//! services, networks, user agents); identifiers are hashed from the seed and a session's
//! serial number. What a session does is data: each persona is a table of weighted call
//! templates, each attack a script of step lines; the tables' order and weights are part of
//! the output (`scripts/gen-identity.sh` checks a change keeps it).
//!
//! # Layout
//!
//! - this file: [`Config`], the run ([`generate`]: session pools, the global clock, attacks
//!   due), [`Truth`] and [`Summary`].
//! - `cloudtrail/`: the CloudTrail record writer; call templates (`template.rs`); benign AWS
//!   sessions (`benign.rs`) and what each persona does (`personas.rs`, the service calls
//!   several share in `calls.rs`).
//! - `okta`, `kubernetes`, `github`: each source's record writer and benign sessions (the
//!   Kubernetes ones as request templates per persona).
//! - [`attack`]: the cases, the oracle, and one module of scripts per source.
//! - [`delivery`]: realistic delivery order. `output`: files, gzip, stdout, the summary.
//! - `pools` (the cast: people, services, networks), `session` (a session's state), `rng`,
//!   `out` (JSON text and identifier shapes).

#![forbid(unsafe_code)]

pub mod attack;
mod cloudtrail;
pub mod delivery;
mod github;
mod kubernetes;
mod okta;
mod out;
mod output;
mod pools;
mod rng;
mod session;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use attack::{Attack, Plan};
pub use delivery::Delivery;
use delivery::{Buffer, Load};
pub use output::{write, Output};
use pools::Pools;
use rng::{hash2, Rng};
use session::{Env, Profile, Scratch, Sess};

/// A source `gen` writes records of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Cloudtrail,
    Okta,
    Kubernetes,
    Github,
}

impl Source {
    /// Its name in `--sources` and in the ground truth.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Cloudtrail => "cloudtrail",
            Source::Okta => "okta",
            Source::Kubernetes => "kubernetes",
            Source::Github => "github",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sources `gen` writes, in weight order.
pub const SOURCES: [Source; 4] = [
    Source::Cloudtrail,
    Source::Okta,
    Source::Kubernetes,
    Source::Github,
];
const CT: usize = 0;

/// Default source weights (percent of records).
pub const DEFAULT_WEIGHTS: [u32; 4] = [50, 20, 15, 15];

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Records to write (attack records included).
    pub events: u64,
    /// Concurrent sessions, split between the sources by weight.
    pub sessions: u64,
    /// Attacks to inject; `None` for the default (one per 50 000 records when the run covers
    /// enough event time).
    pub attacks: Option<u64>,
    /// Weights of cloudtrail, okta, kubernetes, github.
    pub weights: [u32; 4],
    /// Records per second of event time.
    pub rate: f64,
    /// Event time of the first record (epoch ms).
    pub start_ms: i64,
    pub seed: u64,
    /// CloudTrail records per `{"Records":[…]}` envelope line; 0 writes one record per line.
    /// With realistic delivery an envelope holds records of one CloudTrail log file only.
    pub envelope: usize,
    /// The order records are written in.
    pub delivery: Delivery,
    /// Agents bound to task grants: a grant for every agent the platform runs, and attacks
    /// where a task agent leaves its grant or outlives its task; the grants and completions
    /// go to [`Summary::tasks`] (`<out>.tasks.ndjson`).
    pub agent_tasks: bool,
}

/// 2024-11-04T08:00:00Z.
pub const DEFAULT_START_MS: i64 = 1_730_707_200_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            events: 1_000_000,
            sessions: 10_000,
            attacks: None,
            weights: DEFAULT_WEIGHTS,
            rate: 1_000.0,
            start_ms: DEFAULT_START_MS,
            seed: 1,
            envelope: 0,
            delivery: Delivery::Sorted,
            agent_tasks: false,
        }
    }
}

/// One injected attack's ground truth. `S` is the type naming its source: the generator's
/// [`Source`], or a caller's own after [`Truth::map_source`].
#[derive(Clone, Debug)]
pub struct Truth<S = Source> {
    /// The case (`s3_bulk_read`, `token_reuse_new_asn` …).
    pub attack: &'static str,
    /// What the attacker does.
    pub what: &'static str,
    /// The rule of the shipped pack that must decide.
    pub rule: &'static str,
    /// The session key, as sessionguard renders it.
    pub session: String,
    pub source: S,
    /// 1-based line of the record that must trigger the decision: the record that reaches the
    /// rule's threshold in event-time order, at the line it is written on (with realistic
    /// delivery, where it was delivered; with envelopes, the envelope's line).
    pub line: u64,
    pub time_ms: i64,
    /// Whether the rule's action revokes (so later activity is `kill_not_enforced`).
    pub kills: bool,
    /// The line of the session's next record after the deciding one in event-time order, if
    /// it kept acting. In sorted order that is the session's first line after `line`; with
    /// realistic delivery it is where that record was delivered, which can be before `line`
    /// (a CloudTrail file is shuffled, a later file can arrive first).
    pub after: Option<u64>,
}

impl<S> Truth<S> {
    /// The same truth with its source named by another type.
    pub fn map_source<T>(self, f: impl FnOnce(S) -> T) -> Truth<T> {
        Truth {
            attack: self.attack,
            what: self.what,
            rule: self.rule,
            session: self.session,
            source: f(self.source),
            line: self.line,
            time_ms: self.time_ms,
            kills: self.kills,
            after: self.after,
        }
    }
}

impl<S: fmt::Display> Truth<S> {
    /// One JSON line (without the newline).
    pub fn to_json(&self) -> String {
        let mut b = Vec::with_capacity(256);
        out::s(&mut b, "{\"line\":");
        out::u(&mut b, self.line);
        out::s(&mut b, ",\"time\":\"");
        out::time_ms(&mut b, self.time_ms);
        out::s(&mut b, "\",\"source\":\"");
        out::s(&mut b, &self.source.to_string());
        out::s(&mut b, "\",\"session\":");
        out::q(&mut b, &self.session);
        out::s(&mut b, ",\"rule\":\"");
        out::s(&mut b, self.rule);
        out::s(&mut b, "\",\"attack\":\"");
        out::s(&mut b, self.attack);
        out::s(&mut b, "\",\"what\":\"");
        out::esc(&mut b, self.what);
        out::s(
            &mut b,
            if self.kills {
                "\",\"kills\":true"
            } else {
                "\",\"kills\":false"
            },
        );
        if let Some(after) = self.after {
            out::s(&mut b, ",\"after_line\":");
            out::u(&mut b, after);
        }
        b.push(b'}');
        String::from_utf8(b).unwrap_or_default()
    }
}

/// What a run wrote.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub records: u64,
    pub lines: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
    pub by_source: [u64; 4],
    /// Sessions started (distinct session keys, but for the few keyed by a person, node or
    /// long-term key that several sessions share).
    pub sessions: u64,
    pub attacks: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub elapsed: Duration,
    pub delivery: Delivery,
    /// Realistic delivery: records written with an event time older than the newest one
    /// written before them, at all and by more than a minute.
    pub behind: u64,
    pub behind_1m: u64,
    /// Realistic delivery: the most records (and their bytes) held back at once.
    pub held_peak: Load,
    /// `--agent-tasks`: the orchestrator's task records (grants, completions), NDJSON lines
    /// in time order, for `sessionguard replay --tasks` (docs/agents.md).
    pub tasks: Vec<String>,
}

impl Summary {
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(s, "{:<32} {:>14}", "records", self.records);
        for (k, source) in SOURCES.iter().enumerate() {
            let _ = writeln!(s, "  {:<30} {:>14}", source.as_str(), self.by_source[k]);
        }
        let _ = writeln!(s, "{:<32} {:>14}", "lines", self.lines);
        let _ = writeln!(
            s,
            "{:<32} {:>14}   ({:.1} MiB, {:.0} B/record)",
            "bytes (uncompressed)",
            self.bytes,
            self.bytes as f64 / (1 << 20) as f64,
            self.bytes as f64 / self.records.max(1) as f64
        );
        if self.delivery == Delivery::Realistic {
            let pct = |n: u64| 100.0 * n as f64 / self.records.max(1) as f64;
            let _ = writeln!(
                s,
                "{:<32} {:>14}   ({:.1} %; by more than 1 min: {}, {:.1} %)",
                "delivered behind newest",
                self.behind,
                pct(self.behind),
                self.behind_1m,
                pct(self.behind_1m)
            );
            let _ = writeln!(
                s,
                "{:<32} {:>14}   ({:.1} MiB)",
                "delivery buffer peak",
                self.held_peak.records,
                self.held_peak.bytes as f64 / (1 << 20) as f64
            );
        }
        let _ = writeln!(s, "{:<32} {:>14}", "sessions started", self.sessions);
        let _ = writeln!(s, "{:<32} {:>14}", "attacks", self.attacks);
        let time = |ms: i64| {
            let mut b = Vec::with_capacity(24);
            out::time_ms(&mut b, ms);
            String::from_utf8(b).unwrap_or_default()
        };
        let _ = writeln!(
            s,
            "{:<32} {} … {} ({:.0} s)",
            "event time",
            time(self.first_ms),
            time(self.last_ms),
            (self.last_ms - self.first_ms) as f64 / 1000.0
        );
        let _ = writeln!(
            s,
            "{:<32} {:>14.0}   ({:.2} s, {:.0} MB/s)",
            "records/s",
            self.records as f64 / secs,
            secs,
            self.bytes as f64 / 1e6 / secs
        );
        s
    }
}

/// A record as it was written, for callers that check the output. `S` names its source, as in
/// [`Truth`].
pub struct Record<'a, S = Source> {
    pub line: u64,
    pub source: S,
    /// The session key the generator meant it for.
    pub session: &'a str,
    /// Its event time as rendered (whole seconds for CloudTrail).
    pub time_ms: i64,
    /// When it was delivered: its event time in sorted order, its batch's delivery time with
    /// realistic delivery.
    pub delivered_ms: i64,
}

impl<'a, S> Record<'a, S> {
    /// The same record with its source named by another type.
    pub fn with_source<T>(&self, source: T) -> Record<'a, T> {
        Record {
            line: self.line,
            source,
            session: self.session,
            time_ms: self.time_ms,
            delivered_ms: self.delivered_ms,
        }
    }
}

/// A source's concurrent sessions and their schedule.
struct Pool {
    sessions: Vec<Sess>,
    /// (virtual due time, slot).
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    target: usize,
    live: usize,
    free: Vec<u32>,
    clock: u64,
}

impl Pool {
    fn new(target: usize) -> Pool {
        Pool {
            sessions: Vec::with_capacity(target),
            heap: BinaryHeap::with_capacity(target),
            target,
            live: 0,
            free: Vec::new(),
            clock: 0,
        }
    }

    fn add(&mut self, sess: Sess, due: u64) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.sessions[slot as usize] = sess;
                slot
            }
            None => {
                self.sessions.push(sess);
                (self.sessions.len() - 1) as u32
            }
        };
        self.live += 1;
        self.heap.push(Reverse((due, slot)));
    }
}

fn new_session(src: usize, env: &mut Env<'_>, nodes: u32) -> Sess {
    match src {
        0 => cloudtrail::new_session(env),
        1 => okta::new_session(env),
        2 => kubernetes::new_session(env, nodes),
        _ => github::new_session(env),
    }
}

/// Virtual time until a session's next event.
fn gap(rng: &mut Rng, sess: &Sess) -> u64 {
    let mut mean = f64::from(sess.pace);
    if sess.pending > 0 {
        mean /= 16.0;
    } else if matches!(
        sess.profile,
        Profile::Human | Profile::Console | Profile::OktaUser | Profile::GhPat
    ) && rng.chance(0.2)
    {
        // People pause.
        mean *= 6.0;
    }
    (rng.exp(mean) as u64).max(1)
}

fn lifetime(sess: &Sess) -> i64 {
    match sess.profile {
        Profile::OktaUser | Profile::OktaAdmin => 12 * 3_600_000,
        Profile::PodToken
        | Profile::Controller
        | Profile::Node
        | Profile::KubeUser
        | Profile::KubeCi => kubernetes::lifetime_ms(sess.profile),
        Profile::GhApp | Profile::GhActions | Profile::GhPat | Profile::GhWeb => {
            github::lifetime_ms(sess.profile)
        }
        p => cloudtrail::lifetime_ms(p),
    }
}

struct Generator<'p, 'o, 'b> {
    cfg: Config,
    env: Env<'p>,
    sc: Scratch,
    pools: Vec<Pool>,
    nodes: u32,
    attacks: Vec<Attack<'p>>,
    /// (due, attack) of attacks whose next step is CloudTrail, and of the others.
    ct_due: BinaryHeap<Reverse<(i64, u32)>>,
    other_due: BinaryHeap<Reverse<(i64, u32)>>,
    out: &'o mut dyn Write,
    chunk: Vec<u8>,
    rec: Vec<u8>,
    envelope: Vec<u8>,
    envelope_count: usize,
    envelope_line: u64,
    summary: Summary,
    observe: Option<&'b mut dyn FnMut(&Record<'_>)>,
    key: String,
    /// Realistic delivery: the records waiting for their batch's delivery time.
    buffer: Option<Buffer>,
    /// Scratch: a delivered batch's order.
    order: Vec<u32>,
    /// Realistic delivery: the delivered line of each attack step, by its serial.
    line_of: std::collections::HashMap<u64, u64>,
    /// Realistic delivery: the newest event time written so far.
    newest_ms: i64,
}

/// Writes `cfg.events` records to `out`; returns the summary and the ground truth of the
/// injected attacks (ordered by line). `observe` sees every record with the session key it was
/// meant for (computing keys costs time; pass `None` for speed).
pub fn generate(
    cfg: &Config,
    out: &mut dyn Write,
    observe: Option<&mut dyn FnMut(&Record<'_>)>,
) -> Result<(Summary, Vec<Truth>)> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the summary's elapsed time; records carry event time from the config"
    )]
    let started = Instant::now();
    if !(cfg.rate.is_finite() && cfg.rate > 0.0) {
        bail!("the event-time rate must be a positive number of records per second");
    }
    let total: u32 = cfg.weights.iter().sum();
    if total == 0 {
        bail!("every source has weight 0");
    }
    let people = (cfg.sessions / 2).clamp(400, 20_000) as usize;
    let pools = Pools::new(cfg.seed, people);
    let mut g = Generator {
        cfg: cfg.clone(),
        env: Env {
            pools: &pools,
            rng: Rng::new(cfg.seed),
            seed: hash2(cfg.seed, 0x5e55),
            next_id: 0,
            spawned: Vec::new(),
        },
        sc: Scratch::default(),
        pools: Vec::new(),
        nodes: (40 + cfg.sessions / 100).min(2_000) as u32,
        attacks: Vec::new(),
        ct_due: BinaryHeap::new(),
        other_due: BinaryHeap::new(),
        out,
        chunk: Vec::with_capacity(1 << 21),
        rec: Vec::with_capacity(1 << 14),
        envelope: Vec::new(),
        envelope_count: 0,
        envelope_line: 0,
        summary: Summary {
            first_ms: cfg.start_ms,
            last_ms: cfg.start_ms,
            ..Summary::default()
        },
        observe,
        key: String::new(),
        buffer: match cfg.delivery {
            Delivery::Sorted => None,
            Delivery::Realistic => Some(Buffer::new(cfg.seed)),
        },
        order: Vec::new(),
        line_of: std::collections::HashMap::new(),
        newest_ms: i64::MIN,
    };
    g.start_pools(total);
    g.plan_attacks()?;
    g.run()?;
    // What is still held is delivered after the last event.
    g.deliver(i64::MAX)?;
    g.flush_envelope();
    g.out.write_all(&g.chunk).context("writing records")?;
    g.chunk.clear();
    g.out.flush().context("writing records")?;
    let truth = g.truth()?;
    g.summary.sessions = g.env.next_id;
    g.summary.attacks = truth.len() as u64;
    g.summary.delivery = cfg.delivery;
    if let Some(buffer) = &g.buffer {
        g.summary.held_peak = buffer.peak;
    }
    g.summary.tasks = g.task_records();
    g.summary.elapsed = started.elapsed();
    Ok((g.summary, truth))
}

impl<'p> Generator<'p, '_, '_> {
    fn start_pools(&mut self, total: u32) {
        for (src, &w) in self.cfg.weights.iter().enumerate() {
            let target = if w == 0 {
                0
            } else {
                ((self.cfg.sessions * u64::from(w)) / u64::from(total)).max(1) as usize
            };
            let mut pool = Pool::new(target);
            for _ in 0..target {
                let sess = new_session(src, &mut self.env, self.nodes);
                let due = self.env.rng.below(u64::from(sess.pace) * 2);
                pool.add(sess, due);
            }
            self.pools.push(pool);
        }
    }

    /// Event time of record `i`.
    fn time_of(&self, i: u64) -> i64 {
        self.cfg.start_ms + ((i as f64) * 1000.0 / self.cfg.rate) as i64
    }

    fn plan_attacks(&mut self) -> Result<()> {
        let enabled = |s: Source| {
            SOURCES
                .iter()
                .position(|x| *x == s)
                .is_some_and(|k| self.cfg.weights[k] > 0)
        };
        let cases = attack::cases(&enabled, self.cfg.agent_tasks);
        let span = self.time_of(self.cfg.events) - self.cfg.start_ms;
        let lo = self.cfg.start_ms + 60_000;
        let hi = self.cfg.start_ms + span - attack::MAX_SPAN_MS - 60_000;
        let count = match self.cfg.attacks {
            Some(n) => {
                if n > 0 && hi <= lo {
                    bail!(
                        "the run covers {} s of event time; injected attacks need at least {} s: raise --events, lower --events-per-second-of-event-time, or pass --attacks 0",
                        span / 1000,
                        (attack::MAX_SPAN_MS + 180_000) / 1000
                    );
                }
                n
            }
            None if hi > lo => self.cfg.events / 50_000,
            None => 0,
        };
        if count > 0 && cases.is_empty() {
            bail!("no attack case fits the enabled sources");
        }
        for k in 0..count {
            let case = cases[(k % cases.len() as u64) as usize];
            let start = lo + ((hi - lo) as f64 * (k as f64 + 0.5) / count as f64) as i64;
            let plan = Plan {
                pools: self.env.pools,
                seed: hash2(self.cfg.seed, 0xa77a_c000 + k),
                start,
                attacker: 0xcb00_7100 | (10 + (k * 37) % 240) as u32,
                variant: case.variant,
                source: case.source,
            };
            let mut a = attack::build(case.kind, &plan);
            a.what = case.describe();
            let id = self.attacks.len() as u32;
            self.schedule(id, &a);
            self.attacks.push(a);
        }
        Ok(())
    }

    fn schedule(&mut self, id: u32, a: &Attack<'_>) {
        if let Some(step) = a.current() {
            if step.source == Source::Cloudtrail {
                self.ct_due.push(Reverse((a.due, id)));
            } else {
                self.other_due.push(Reverse((a.due, id)));
            }
        }
    }

    fn run(&mut self) -> Result<()> {
        let events = self.cfg.events;
        let w = self.cfg.weights;
        let others: u32 = w[1..].iter().sum();
        let total = f64::from(w.iter().sum::<u32>());
        let mut i = 0u64;
        while i < events {
            let second = self.time_of(i).div_euclid(1000);
            let end = (second + 1) * 1000;
            let mut j = i + 1;
            while j < events && self.time_of(j) < end {
                j += 1;
            }
            let n = j - i;
            let mut ct_quota = if w[CT] == 0 {
                0
            } else if others == 0 {
                n
            } else {
                (n as f64 * f64::from(w[CT]) / total + self.env.rng.unit()) as u64
            };
            let ct_time = second * 1000;
            // CloudTrail first (its records carry whole seconds) …
            while i < j {
                if let Some(&Reverse((due, a))) = self.ct_due.peek() {
                    // Due this second: somewhere among the second's CloudTrail records.
                    if due < end && (ct_quota == 0 || self.env.rng.chance(0.5)) {
                        self.ct_due.pop();
                        self.attack_step(a, ct_time)?;
                        i += 1;
                        continue;
                    }
                }
                if ct_quota == 0 {
                    break;
                }
                ct_quota -= 1;
                self.benign(CT, ct_time)?;
                i += 1;
            }
            // … then the sources with finer times.
            while i < j {
                let t = self.time_of(i);
                if let Some(&Reverse((due, a))) = self.other_due.peek() {
                    if due <= t {
                        self.other_due.pop();
                        self.attack_step(a, t)?;
                        i += 1;
                        continue;
                    }
                }
                if others == 0 {
                    self.benign(CT, ct_time)?;
                } else {
                    let pick = 1 + self.env.rng.weighted(&w[1..]);
                    self.benign(pick, t)?;
                }
                i += 1;
            }
        }
        Ok(())
    }

    /// Writes the next event of one benign session of source `src`.
    fn benign(&mut self, src: usize, t: i64) -> Result<()> {
        let Generator {
            pools,
            env,
            sc,
            rec,
            nodes,
            ..
        } = self;
        let pool = &mut pools[src];
        let (vdue, slot) = loop {
            let Reverse((vdue, slot)) = pool.heap.pop().expect("an enabled source has sessions");
            pool.clock = vdue;
            let sess = &mut pool.sessions[slot as usize];
            if sess.created == i64::MIN {
                let lead = if src == CT {
                    cloudtrail::creation_lead_ms(env, sess.profile)
                } else {
                    0
                };
                sess.created = (t - lead).div_euclid(1000) * 1000;
                sess.expires = sess.created.saturating_add(lifetime(sess));
            }
            if t < sess.expires && sess.flags & session::F_ENDED == 0 {
                break (vdue, slot);
            }
            // Expired: a new session takes the slot.
            let fresh = new_session(src, env, *nodes);
            let due = vdue + env.rng.below(u64::from(fresh.pace));
            pool.sessions[slot as usize] = fresh;
            pool.heap.push(Reverse((due, slot)));
        };
        let sess = &mut pool.sessions[slot as usize];
        rec.clear();
        match src {
            0 => cloudtrail::emit(env, sc, sess, t, rec),
            1 => okta::emit(env, sess, t, rec),
            2 => kubernetes::emit(env, sess, t, rec),
            _ => github::emit(env, sess, t, rec),
        }
        sess.step += 1;
        sess.budget -= 1;
        if self.observe.is_some() {
            let env = &self.env;
            let sess = &self.pools[src].sessions[slot as usize];
            match src {
                0 => cloudtrail::session_key(env, sess, &mut self.key),
                1 => okta::session_key(env, sess, &mut self.key),
                2 => kubernetes::session_key(env, sess, &mut self.key),
                _ => github::session_key(env, sess, &mut self.key),
            }
        }
        self.write_record(src, t, false)?;
        // Role chains: the issued sessions join the CloudTrail pool.
        let Generator {
            pools, env, nodes, ..
        } = self;
        for child in env.spawned.drain(..) {
            let due = pools[CT].clock + env.rng.below(u64::from(child.pace));
            pools[CT].add(child, due);
        }
        let pool = &mut pools[src];
        let sess = &pool.sessions[slot as usize];
        if sess.budget == 0 {
            if pool.live > pool.target {
                pool.live -= 1;
                pool.free.push(slot);
            } else {
                let fresh = new_session(src, env, *nodes);
                let due = vdue + env.rng.below(u64::from(fresh.pace));
                pool.sessions[slot as usize] = fresh;
                pool.heap.push(Reverse((due, slot)));
            }
        } else {
            let due = vdue + gap(&mut env.rng, sess);
            pool.heap.push(Reverse((due, slot)));
        }
        Ok(())
    }

    fn attack_step(&mut self, id: u32, t: i64) -> Result<()> {
        let a = &self.attacks[id as usize];
        let step = a.current().expect("scheduled attacks have a step");
        let source = step.source;
        let src = SOURCES.iter().position(|s| *s == source).unwrap_or(CT);
        self.rec.clear();
        (step.render)(&mut self.rec, t, hash2(a.seed, a.next as u64));
        if self.observe.is_some() {
            self.key.clear();
            self.key.push_str(&a.keys[step.key].1);
        }
        // With realistic delivery this is the step's serial, mapped to its line in `truth`.
        let line = self.write_record(src, t, true)?;
        let a = &mut self.attacks[id as usize];
        a.written(line, t);
        let a = &self.attacks[id as usize];
        if let Some(step) = a.current() {
            let entry = Reverse((a.due, id));
            if step.source == Source::Cloudtrail {
                self.ct_due.push(entry);
            } else {
                self.other_due.push(entry);
            }
        }
        Ok(())
    }

    /// Writes the rendered record (`self.rec`) and returns its line; with realistic delivery,
    /// holds it for its batch and returns its serial (`watch`: remember its delivered line).
    fn write_record(&mut self, src: usize, t: i64, watch: bool) -> Result<u64> {
        if self.buffer.is_some() {
            return self.hold(src, t, watch);
        }
        let s = &mut self.summary;
        s.records += 1;
        s.by_source[src] += 1;
        s.last_ms = t;
        let rec = std::mem::take(&mut self.rec);
        let line = self.frame(src, &rec);
        self.rec = rec;
        if let Some(observe) = self.observe.as_mut() {
            observe(&Record {
                line,
                source: SOURCES[src],
                session: &self.key,
                time_ms: t,
                delivered_ms: t,
            });
        }
        self.spill()?;
        Ok(line)
    }

    /// Frames one record (in an envelope for CloudTrail with `--envelope`) and returns its line.
    fn frame(&mut self, src: usize, rec: &[u8]) -> u64 {
        if src == CT && self.cfg.envelope > 0 {
            if self.envelope_count == 0 {
                self.envelope_line = self.summary.lines + 1;
                self.envelope.clear();
                self.envelope.extend_from_slice(b"{\"Records\":[");
            } else {
                self.envelope.push(b',');
            }
            self.envelope.extend_from_slice(rec);
            self.envelope_count += 1;
            let line = self.envelope_line;
            if self.envelope_count == self.cfg.envelope {
                self.flush_envelope();
            }
            line
        } else {
            self.flush_envelope();
            let s = &mut self.summary;
            s.lines += 1;
            s.bytes += rec.len() as u64 + 1;
            self.chunk.extend_from_slice(rec);
            self.chunk.push(b'\n');
            s.lines
        }
    }

    /// Hands a full chunk to the output.
    fn spill(&mut self) -> Result<()> {
        if self.chunk.len() >= 1 << 20 {
            self.out.write_all(&self.chunk).context("writing records")?;
            self.chunk.clear();
        }
        Ok(())
    }

    /// Realistic delivery: delivers what is due by `t`, then holds the rendered record.
    fn hold(&mut self, src: usize, t: i64, watch: bool) -> Result<u64> {
        if self.buffer.as_ref().is_some_and(|b| b.any_due(t)) {
            self.deliver(t)?;
        }
        let s = &mut self.summary;
        s.records += 1;
        s.by_source[src] += 1;
        s.last_ms = t;
        let serial = s.records;
        let stream = if src == CT {
            delivery::cloudtrail_stream(&self.rec)
        } else {
            0
        };
        let key = if self.observe.is_some() {
            self.key.as_str()
        } else {
            ""
        };
        if let Some(buffer) = self.buffer.as_mut() {
            buffer.push(
                src,
                stream,
                t,
                &self.rec,
                key,
                if watch { serial } else { 0 },
            );
        }
        Ok(serial)
    }

    /// Realistic delivery: writes every batch due by `now`, in delivery order.
    fn deliver(&mut self, now: i64) -> Result<()> {
        let mut order = std::mem::take(&mut self.order);
        while let Some(batch) = self.buffer.as_mut().and_then(|b| b.pop_due(now)) {
            batch.order(&mut order);
            for &k in &order {
                let entry = batch.get(k as usize);
                let line = self.frame(batch.src, entry.record);
                if entry.serial != 0 {
                    self.line_of.insert(entry.serial, line);
                }
                let s = &mut self.summary;
                if entry.time_ms < self.newest_ms {
                    s.behind += 1;
                    if self.newest_ms - entry.time_ms > 60_000 {
                        s.behind_1m += 1;
                    }
                }
                self.newest_ms = self.newest_ms.max(entry.time_ms);
                if let Some(observe) = self.observe.as_mut() {
                    observe(&Record {
                        line,
                        source: SOURCES[batch.src],
                        session: entry.key,
                        time_ms: entry.time_ms,
                        delivered_ms: batch.deliver_at,
                    });
                }
                self.spill()?;
            }
            // A CloudTrail file's envelopes end with the file.
            self.flush_envelope();
            if let Some(buffer) = self.buffer.as_mut() {
                buffer.recycle(batch);
            }
        }
        self.order = order;
        Ok(())
    }

    fn flush_envelope(&mut self) {
        if self.envelope_count == 0 {
            return;
        }
        self.envelope.extend_from_slice(b"]}\n");
        self.summary.lines += 1;
        self.summary.bytes += self.envelope.len() as u64;
        self.chunk.extend_from_slice(&self.envelope);
        self.envelope_count = 0;
    }

    /// `--agent-tasks`: the grants of the platform's agents (one task each, for the whole run)
    /// and of each task-agent attack (granted before its first step, completed right after
    /// the step its script names), in time order.
    fn task_records(&self) -> Vec<String> {
        if !self.cfg.agent_tasks {
            return Vec::new();
        }
        let mut records: Vec<(i64, String)> = Vec::new();
        let start = self.cfg.start_ms - 60_000;
        let end = self.summary.last_ms.max(self.cfg.start_ms) + 3_600_000;
        for agent in cloudtrail::AGENTS {
            let bucket = format!("northwind-agent-{agent}");
            records.push((
                start,
                grant(agent, &format!("{agent}-daily"), &bucket, start, end),
            ));
        }
        for a in &self.attacks {
            let Some(task) = &a.task else { continue };
            let expires = task.granted + 7_200_000;
            records.push((
                task.granted,
                grant(task.agent, &task.task, task.bucket, task.granted, expires),
            ));
            if let Some(&done) = task.complete_after.and_then(|i| a.written_at.get(i)) {
                // CloudTrail writes whole seconds: the next step is at least a second later.
                let at = done + 1;
                records.push((at, complete(task.agent, &task.task, at)));
            }
        }
        records.sort();
        records.into_iter().map(|(_, r)| r).collect()
    }

    fn truth(&self) -> Result<Vec<Truth>> {
        let mut truth = Vec::with_capacity(self.attacks.len());
        let mut missing = Vec::new();
        // With realistic delivery the attack saw its steps' serials (event-time order); the
        // truth gives the lines they were delivered on.
        let line_of = |serial: u64| match self.buffer {
            None => serial,
            Some(_) => *self
                .line_of
                .get(&serial)
                .expect("every attack step is delivered before the truth is written"),
        };
        for a in &self.attacks {
            let (source, session) = &a.keys[0];
            match a.trigger {
                Some((written, time_ms)) => truth.push(Truth {
                    attack: a.kind.name(),
                    what: a.what,
                    rule: a.kind.rule(),
                    session: session.clone(),
                    source: *source,
                    line: line_of(written),
                    time_ms,
                    kills: a.kind.kills(),
                    after: a.after.map(line_of),
                }),
                None => missing.push(format!("{} ({session})", a.kind.name())),
            }
        }
        if !missing.is_empty() {
            bail!(
                "{} attack(s) did not reach their deciding event before the run ended or within the rule's window: {}; raise --events or --events-per-second-of-event-time, or lower --attacks",
                missing.len(),
                missing.join(", ")
            );
        }
        truth.sort_by_key(|t| t.line);
        Ok(truth)
    }
}

/// Parses `--sources`: names (default weights) or `name=weight` pairs, comma-separated.
pub fn parse_sources(text: &str) -> Result<[u32; 4]> {
    let mut weights = [0u32; 4];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = match part.split_once(['=', ':']) {
            Some((n, w)) => (
                n.trim(),
                Some(
                    w.trim()
                        .parse::<u32>()
                        .with_context(|| format!("weight of {n} in --sources"))?,
                ),
            ),
            None => (part, None),
        };
        let Some(k) = SOURCES.iter().position(|s| s.as_str() == name) else {
            bail!("unknown source '{name}' in --sources; expected cloudtrail, okta, kubernetes, github");
        };
        weights[k] = weight.unwrap_or(DEFAULT_WEIGHTS[k]);
    }
    if weights.iter().all(|w| *w == 0) {
        bail!("--sources names no source with a weight above 0");
    }
    Ok(weights)
}

/// RFC 3339 with milliseconds, UTC, for task records.
fn rfc3339_ms(ms: i64) -> String {
    let mut b = Vec::with_capacity(24);
    out::time_ms(&mut b, ms);
    String::from_utf8(b).unwrap_or_default()
}

/// A grant of `task` to `agent`: its bucket's inbox and outbox, its model, its own API token,
/// its own role.
fn grant(agent: &str, task: &str, bucket: &str, from: i64, until: i64) -> String {
    format!(
        concat!(
            r#"{{"type":"sessionguard.task.grant","time":"{from}","agent":"{agent}","task":"{task}","#,
            r#""objective":"the {agent} agent's task {task}","expires":"{until}","#,
            r#""allow":{{"actions":["s3:ListObjects","s3:GetObject","s3:PutObject","bedrock:InvokeModel","secretsmanager:GetSecretValue"],"#,
            r#""resources":["{bucket}","{bucket}/inbox/*","{bucket}/outbox/*","*prod/agents/{agent}/*","arn:aws:bedrock:*"],"#,
            r#""roles":["arn:aws:iam::{account}:role/agent-{agent}"]}}}}"#
        ),
        from = rfc3339_ms(from),
        until = rfc3339_ms(until),
        agent = agent,
        task = task,
        bucket = bucket,
        account = pools::ACCOUNT_PROD,
    )
}

fn complete(agent: &str, task: &str, at: i64) -> String {
    format!(
        r#"{{"type":"sessionguard.task.complete","time":"{}","agent":"{agent}","task":"{task}"}}"#,
        rfc3339_ms(at)
    )
}
