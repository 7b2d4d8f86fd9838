//! Telemetry of the Kafka runtime: metric names, counters, the decision-latency histogram, the
//! Prometheus text rendering, `/metrics` `/healthz` `/readyz` over HTTP, and JSON log lines.
//!
//! # Why no framework
//!
//! - **Metrics** are a handful of counters and gauges behind one mutex, rendered as Prometheus
//!   text on request. Labels are low-cardinality by construction: reject reason, rule id,
//!   topic and partition — never a session, user or address.
//! - **HTTP** is hyper on a one-thread tokio runtime of its own ([`http`]): connections are
//!   served concurrently, with a deadline for the whole request head and limits on head size,
//!   open connections and connection life, so a slow client cannot keep a probe waiting.
//!   Three fixed paths need no router.
//! - **Logs** are one JSON object per line on stderr, written by [`log`]: `tracing` plus
//!   `tracing-subscriber` with its `json` feature would add a subscriber stack and about ten
//!   crates for the few dozen events the runtime logs, the pipeline's are
//!   defined in `crate::kafka::events`, one type per event whose `emit` writes the line and
//!   bumps the counter it has ("one named event per thing that happens").
//!   librdkafka's own log lines are routed here by the clients' contexts. A warning or error
//!   identical to one written less than [`REPEAT_WINDOW`] ago (same level, event, message and
//!   fields) is counted instead of written; the next one written after the window carries the
//!   count as
//!   `"repeated": N`, and [`flush_repeats`] writes what is still counted when a run ends — a
//!   broker that keeps refusing connections costs a line per window, not one per retry.
//!
//! Readiness (`/readyz`) is a state with its reason ([`NotReady`]), set by the pipeline as its
//! partitions and its broker connection change; the text is made only when a probe asks.
//!
//! Latency is event-to-decision: from the Kafka timestamp of the record that caused a decision
//! (append time, or the producer's create time, whichever the topic keeps) to the producer's
//! delivery acknowledgement of the decision, recorded in an `hdrhistogram` (1 ms to 1 h, 3
//! significant digits) and exposed as quantiles — on `/metrics`, and in the `pipeline_stopped`
//! log line with the run's busy-span throughput ([`Telemetry::latency`]). Under the hidden
//! benchmark mode `run --null-engine` every output record counts as a decision does.
#![allow(
    clippy::disallowed_methods,
    reason = "log timestamps, repeat windows and latency are wall-clock by nature"
)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

pub mod http;
pub use http::serve;

use crate::event::{RejectReason, Timestamp};

/// Metric names, in one place.
pub mod names {
    pub const RECORDS: &str = "sessionguard_records_total";
    pub const EVENTS: &str = "sessionguard_events_total";
    pub const REJECTS: &str = "sessionguard_rejects_total";
    pub const LATE: &str = "sessionguard_late_events_total";
    pub const DECISIONS: &str = "sessionguard_decisions_total";
    pub const REPLAYED: &str = "sessionguard_rebuild_records_total";
    pub const OFFSET_GAPS: &str = "sessionguard_offset_gaps_total";
    pub const DEAD_LETTERS: &str = "sessionguard_dead_letters_total";
    pub const REKEYED: &str = "sessionguard_rekeyed_total";
    pub const DELIVERY_ERRORS: &str = "sessionguard_delivery_errors_total";
    pub const SESSIONS: &str = "sessionguard_sessions_held";
    pub const PARTITIONS: &str = "sessionguard_assigned_partitions";
    pub const LAG: &str = "sessionguard_consumer_lag";
    pub const PAUSED: &str = "sessionguard_paused";
    pub const BROKER_CONNECTED: &str = "sessionguard_broker_connected";
    pub const LATENCY: &str = "sessionguard_decision_latency_seconds";
}

/// Counters and gauges of one process, shared by the pipeline thread and the HTTP thread.
#[derive(Default)]
pub struct Telemetry {
    inner: Mutex<Metrics>,
    ready: AtomicBool,
}

/// Event-to-output latency quantiles in milliseconds, from [`Telemetry::latency`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyQuantiles {
    /// Latencies recorded: decisions delivered (or null-engine records, `run --null-engine`).
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The values behind [`Telemetry`].
pub struct Metrics {
    pub records: u64,
    pub events: u64,
    pub rejects: BTreeMap<RejectReason, u64>,
    pub late: u64,
    pub decisions: BTreeMap<String, u64>,
    pub replayed: u64,
    /// Times the next record of a partition came past the offset expected.
    pub offset_gaps: u64,
    pub dead_letters: u64,
    pub rekeyed: u64,
    pub delivery_errors: u64,
    pub sessions: u64,
    pub partitions: u64,
    pub paused: bool,
    /// A broker answered, and no connection failure since (`crate::kafka::connectivity`).
    pub broker_connected: bool,
    /// Why the brokers cannot be reached (brokers and cause), while they cannot.
    pub broker_problem: Option<String>,
    /// Why `/readyz` says not ready, while it does.
    pub not_ready: NotReady,
    /// Consumer lag per (topic, partition), from librdkafka statistics.
    pub lag: BTreeMap<(String, i32), i64>,
    pub latency_ms: Histogram<u64>,
}

/// Why an instance is not ready, in the order a starting instance meets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NotReady {
    /// Nothing assigned yet: the group is forming, or has no partition for this instance.
    #[default]
    NoPartition,
    /// `behind` of the `assigned` partitions are rebuilding their state or have not yet read
    /// up to where their topic ended when they were assigned.
    CatchingUp { behind: usize, assigned: usize },
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            records: 0,
            events: 0,
            rejects: BTreeMap::new(),
            late: 0,
            decisions: BTreeMap::new(),
            replayed: 0,
            offset_gaps: 0,
            dead_letters: 0,
            rekeyed: 0,
            delivery_errors: 0,
            sessions: 0,
            partitions: 0,
            paused: false,
            broker_connected: false,
            broker_problem: None,
            not_ready: NotReady::default(),
            lag: BTreeMap::new(),
            latency_ms: Histogram::new_with_bounds(1, 3_600_000, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl Telemetry {
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }

    /// The metrics, for an update. Held only for a few additions.
    pub fn metrics(&self) -> MutexGuard<'_, Metrics> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Ready, or why not, in words for `/readyz`. An unreachable broker comes first: nothing
    /// is read meanwhile, whatever the assignment says.
    pub fn readiness(&self) -> Result<(), String> {
        let m = self.metrics();
        if let Some(problem) = &m.broker_problem {
            return Err(problem.clone());
        }
        if self.is_ready() {
            return Ok(());
        }
        Err(match m.not_ready {
            NotReady::NoPartition => "no input partition assigned yet (the consumer group is \
                                      forming, or has no partition for this instance)"
                .to_owned(),
            NotReady::CatchingUp { behind, assigned } => format!(
                "catching up: {behind} of {assigned} assigned partitions are rebuilding their \
                 state or still behind where their topic ended at assignment"
            ),
        })
    }

    /// Records one event-to-decision latency (or, under `run --null-engine`, the latency of one
    /// null-engine output record).
    pub fn record_latency(&self, millis: i64) {
        let value = millis.clamp(1, 3_600_000) as u64;
        let _ = self.metrics().latency_ms.record(value);
    }

    /// Quantiles of the latencies recorded so far (milliseconds; zeros when none).
    pub fn latency(&self) -> LatencyQuantiles {
        let m = self.metrics();
        let h = &m.latency_ms;
        if h.is_empty() {
            return LatencyQuantiles::default();
        }
        LatencyQuantiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let m = self.metrics();
        let mut s = String::new();
        render_counters(&m, &mut s);
        render_gauges(&m, &mut s);
        render_latency(&m.latency_ms, &mut s);
        s
    }
}

/// One unlabelled metric of `kind` (`counter`, `gauge`) with its help line.
fn metric(s: &mut String, kind: &str, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        s,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The counters, labelled ones with every label value.
fn render_counters(m: &Metrics, s: &mut String) {
    let counter = |s: &mut String, name: &str, help: &str, value: u64| {
        metric(s, "counter", name, help, value)
    };
    counter(
        s,
        names::RECORDS,
        "Records read from the input topics.",
        m.records,
    );
    counter(
        s,
        names::EVENTS,
        "Records normalized into events.",
        m.events,
    );
    let _ = writeln!(
        s,
        "# HELP {0} Records rejected, by reason.\n# TYPE {0} counter",
        names::REJECTS
    );
    for reason in RejectReason::ALL {
        let n = m.rejects.get(&reason).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "{}{{reason=\"{}\"}} {n}",
            names::REJECTS,
            reason.as_str()
        );
    }
    counter(
        s,
        names::LATE,
        "Events older than the watermark, not applied.",
        m.late,
    );
    let _ = writeln!(
        s,
        "# HELP {0} Decisions delivered, by rule id.\n# TYPE {0} counter",
        names::DECISIONS
    );
    for (rule, n) in &m.decisions {
        let _ = writeln!(
            s,
            "{}{{rule_id=\"{}\"}} {n}",
            names::DECISIONS,
            escape_label(rule)
        );
    }
    counter(
        s,
        names::REPLAYED,
        "Records re-read to rebuild partition state (decisions suppressed).",
        m.replayed,
    );
    counter(
        s,
        names::OFFSET_GAPS,
        "Times a partition's next record came past the expected offset (compaction, \
             transaction markers, or a broker skipping records).",
        m.offset_gaps,
    );
    counter(
        s,
        names::DEAD_LETTERS,
        "Rejected records produced to the dead-letter topic.",
        m.dead_letters,
    );
    counter(
        s,
        names::REKEYED,
        "Records re-produced keyed by session.",
        m.rekeyed,
    );
    counter(
        s,
        names::DELIVERY_ERRORS,
        "Produce attempts that failed and were retried.",
        m.delivery_errors,
    );
}

/// The gauges, consumer lag per partition last.
fn render_gauges(m: &Metrics, s: &mut String) {
    let gauge =
        |s: &mut String, name: &str, help: &str, value: u64| metric(s, "gauge", name, help, value);
    gauge(s, names::SESSIONS, "Sessions held in memory.", m.sessions);
    gauge(
        s,
        names::PARTITIONS,
        "Input partitions assigned to this instance.",
        m.partitions,
    );
    gauge(
        s,
        names::PAUSED,
        "1 while input partitions are paused for backpressure.",
        u64::from(m.paused),
    );
    gauge(
        s,
        names::BROKER_CONNECTED,
        "1 while the Kafka brokers answer; 0 before the first answer and after a failed \
             connection until one answers again.",
        u64::from(m.broker_connected),
    );
    let _ = writeln!(
        s,
        "# HELP {0} Messages behind the high watermark, per input partition.\n# TYPE {0} gauge",
        names::LAG
    );
    for ((topic, partition), lag) in &m.lag {
        let _ = writeln!(
            s,
            "{}{{topic=\"{}\",partition=\"{partition}\"}} {lag}",
            names::LAG,
            escape_label(topic)
        );
    }
}

/// The output latency as a summary: quantiles in seconds, sum and count.
fn render_latency(h: &Histogram<u64>, s: &mut String) {
    let _ = writeln!(
        s,
        "# HELP {0} From the causing record's Kafka timestamp to the decision's delivery \
             (null engine: each output record's).\n# TYPE {0} summary",
        names::LATENCY
    );
    for q in [0.5, 0.9, 0.99, 0.999] {
        let v = if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1000.0
        };
        let _ = writeln!(s, "{}{{quantile=\"{q}\"}} {v}", names::LATENCY);
    }
    let sum: f64 = h
        .iter_recorded()
        .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
        .sum::<f64>()
        / 1000.0;
    let _ = writeln!(s, "{}_sum {sum}", names::LATENCY);
    let _ = writeln!(s, "{}_count {}", names::LATENCY, h.len());
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Log levels, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// `error`, `warn`, `info`, `debug`.
    pub fn from_name(name: &str) -> Option<Level> {
        match name.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }
}

static LOG_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most verbose level written (process-wide; `SESSIONGUARD_LOG` in the CLI).
pub fn set_log_level(level: Level) {
    LOG_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn log_enabled(level: Level) -> bool {
    level as u8 <= LOG_LEVEL.load(Ordering::Relaxed)
}

/// A log field value.
pub enum V<'a> {
    S(&'a str),
    I(i64),
    U(u64),
}

/// How long an identical log line is counted instead of written.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(30);

/// Distinct lines remembered for [`REPEAT_WINDOW`]; beyond it the oldest are forgotten.
const REPEAT_MEMORY: usize = 256;

/// A line written recently: when, and how many identical ones were not written since.
struct Recent {
    written_at: Instant,
    suppressed: u64,
}

/// The memory behind the counting of repeated lines: which lines were written when, and how
/// many identical ones were held back since. Bodies are lines without their time stamp.
#[derive(Default)]
struct Repeats {
    recent: HashMap<String, Recent>,
}

impl Repeats {
    /// Whether `body` is written at `now`, and the count of identical lines held back since the
    /// last one written, which it carries (`None`: held back and counted). Lines pushed out of
    /// a full memory, with what they counted, go to `evicted` to be written.
    fn admit(&mut self, body: &str, now: Instant, evicted: &mut Vec<(String, u64)>) -> Option<u64> {
        if let Some(r) = self.recent.get_mut(body) {
            if now.duration_since(r.written_at) < REPEAT_WINDOW {
                r.suppressed += 1;
                return None;
            }
            r.written_at = now;
            return Some(std::mem::take(&mut r.suppressed));
        }
        if self.recent.len() >= REPEAT_MEMORY {
            let oldest = self
                .recent
                .iter()
                .min_by_key(|(_, r)| r.written_at)
                .map(|(body, _)| body.clone());
            if let Some(r) = oldest.and_then(|b| self.recent.remove_entry(&b)) {
                if r.1.suppressed > 0 {
                    evicted.push((r.0, r.1.suppressed));
                }
            }
        }
        self.recent.insert(
            body.to_owned(),
            Recent {
                written_at: now,
                suppressed: 0,
            },
        );
        Some(0)
    }

    /// Every line still counted, with its count; the counts start again from zero.
    fn drain_counted(&mut self) -> Vec<(String, u64)> {
        self.recent
            .iter_mut()
            .filter(|(_, r)| r.suppressed > 0)
            .map(|(body, r)| (body.clone(), std::mem::take(&mut r.suppressed)))
            .collect()
    }
}

static REPEATS: Mutex<Option<Repeats>> = Mutex::new(None);

/// Writes one JSON log line to stderr: `{"ts", "level", "event", "msg", fields…}`; a warning
/// or error identical to one written less than [`REPEAT_WINDOW`] ago is counted instead. Info
/// and debug lines record changes of state (a partition assigned, revoked, assigned again) and
/// are always written.
pub fn log(level: Level, event: &str, msg: &str, fields: &[(&str, V<'_>)]) {
    if !log_enabled(level) {
        return;
    }
    let mut body = String::with_capacity(160);
    let _ = write!(
        body,
        "\"level\":\"{}\",\"event\":{},\"msg\":{}",
        level.as_str(),
        json_string(event),
        json_string(msg)
    );
    for (key, value) in fields {
        let _ = write!(body, ",{}:", json_string(key));
        match value {
            V::S(s) => body.push_str(&json_string(s)),
            V::I(n) => {
                let _ = write!(body, "{n}");
            }
            V::U(n) => {
                let _ = write!(body, "{n}");
            }
        }
    }
    if level > Level::Warn {
        write_line(&body, 0);
        return;
    }
    let mut evicted = Vec::new();
    let admitted = REPEATS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Repeats::default)
        .admit(&body, Instant::now(), &mut evicted);
    for (body, n) in evicted {
        write_line(&body, n);
    }
    if let Some(repeated) = admitted {
        write_line(&body, repeated);
    }
}

/// Writes every line still counted, with its count: at the end of a run, so no repetition
/// goes unreported.
pub fn flush_repeats() {
    let counted = match REPEATS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        Some(repeats) => repeats.drain_counted(),
        None => return,
    };
    for (body, n) in counted {
        write_line(&body, n);
    }
}

/// Where log lines go instead of stderr, once [`log_to`] set it.
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Sends every later log line to `file` instead of stderr: for tests that run the pipeline in
/// their own process, so a passing run stays quiet and a failing one shows its lines.
pub fn log_to(file: std::fs::File) {
    *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
}

fn write_line(body: &str, repeated: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut line = String::with_capacity(body.len() + 64);
    let _ = write!(line, "{{\"ts\":\"{}\",{body}", Timestamp::from_millis(now));
    if repeated > 0 {
        let _ = write!(line, ",\"repeated\":{repeated}");
    }
    line.push_str("}\n");
    match LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        Some(file) => {
            let _ = file.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_low_cardinality_labels() {
        let t = Telemetry::new();
        {
            let mut m = t.metrics();
            m.events = 3;
            *m.rejects.entry(RejectReason::NotJson).or_default() += 1;
            *m.decisions.entry("aws-iam-self-grant".into()).or_default() += 2;
            m.lag.insert(("audit".into(), 0), 5);
        }
        t.record_latency(20);
        t.record_latency(40);
        let text = t.render();
        assert!(text.contains("sessionguard_events_total 3"));
        assert!(text.contains("sessionguard_rejects_total{reason=\"not_json\"} 1"));
        assert!(text.contains("sessionguard_rejects_total{reason=\"too_deep\"} 0"));
        assert!(text.contains("sessionguard_decisions_total{rule_id=\"aws-iam-self-grant\"} 2"));
        assert!(text.contains("sessionguard_consumer_lag{topic=\"audit\",partition=\"0\"} 5"));
        assert!(text.contains("sessionguard_decision_latency_seconds_count 2"));
        assert!(text.contains("sessionguard_decision_latency_seconds{quantile=\"0.99\"} 0.04"));
        let q = t.latency();
        assert_eq!((q.count, q.p50, q.p99, q.max), (2, 20, 40, 40));
    }

    #[test]
    fn an_identical_warning_is_counted_within_the_window_and_its_count_written_after() {
        let start = Instant::now();
        let mut repeats = Repeats::default();
        let mut evicted = Vec::new();
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(repeats.admit("a", at(0), &mut evicted), Some(0));
        for s in 1..30 {
            assert_eq!(repeats.admit("a", at(s), &mut evicted), None, "{s}");
        }
        // Another line is its own.
        assert_eq!(repeats.admit("b", at(5), &mut evicted), Some(0));
        // Past the window: written, carrying the 29 held back.
        assert_eq!(repeats.admit("a", at(30), &mut evicted), Some(29));
        assert_eq!(repeats.admit("a", at(31), &mut evicted), None);
        assert_eq!(repeats.drain_counted(), vec![("a".to_owned(), 1)]);
        assert!(repeats.drain_counted().is_empty());
        assert!(evicted.is_empty());
    }

    #[test]
    fn a_full_memory_writes_what_it_forgets() {
        let start = Instant::now();
        let mut repeats = Repeats::default();
        let mut evicted = Vec::new();
        repeats.admit("oldest", start, &mut evicted);
        repeats.admit("oldest", start, &mut evicted);
        for i in 1..REPEAT_MEMORY {
            let later = start + Duration::from_millis(i as u64);
            assert_eq!(
                repeats.admit(&format!("line {i}"), later, &mut evicted),
                Some(0)
            );
        }
        assert!(evicted.is_empty());
        let later = start + Duration::from_secs(1);
        assert_eq!(repeats.admit("one more", later, &mut evicted), Some(0));
        assert_eq!(evicted, vec![("oldest".to_owned(), 1)]);
        assert_eq!(repeats.recent.len(), REPEAT_MEMORY);
    }

    #[test]
    fn serves_health_and_metrics() {
        use std::io::Read;
        use std::net::TcpStream;
        let t = Telemetry::new();
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), t.clone(), stop.clone()).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        assert!(get("/healthz").starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").starts_with("HTTP/1.1 503"));
        t.set_ready(true);
        assert!(get("/readyz").starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").contains("sessionguard_records_total 0"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        stop.store(true, Ordering::Relaxed);
    }
}
