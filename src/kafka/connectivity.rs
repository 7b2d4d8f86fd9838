//! Whether the Kafka brokers can be reached, said once in words.
//!
//! librdkafka retries a refused or dropped connection without end and reports every attempt:
//! a `FAIL` log line per client per retry, and an error callback ("all broker connections are
//! down") per client, again and again. Forwarded as they come, an unreachable broker buries
//! the one fact an operator needs under hundreds of lines. Both clients of a run (consumer and
//! producer) report to one [`BrokerWatch`] instead, which says it once:
//!
//! - the first time every broker is down: one error line naming the brokers and the cause,
//!   `broker_unreachable` ("cannot reach the Kafka brokers at 127.0.0.1:9092: Connection
//!   refused");
//! - while they stay down: a reminder every [`REMINDER_INTERVAL`], with how long and how many
//!   attempts failed, `broker_still_unreachable`;
//! - when a broker answers again (statistics show one up, an assignment or a record arrives):
//!   one info line, `broker_reachable`.
//!
//! Only failed connection attempts count: an established connection the broker closes (idle,
//! `in state UP`) is an ordinary log line, and a client left with no connection by it is not
//! an unreachable broker. A failed attempt while some broker still answers (one broker of a
//! cluster down) is a warning, `broker_connection_failed`, whose repeats the log counts instead of writing
//! ([`crate::telemetry::log`]). The watch keeps the `sessionguard_broker_connected` gauge and
//! the reason `/readyz` gives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::event::Timestamp;
use crate::telemetry::{self, Level, Telemetry, V};

/// How often a broker that stays unreachable is mentioned again.
pub const REMINDER_INTERVAL: Duration = Duration::from_secs(30);

/// Where the watch's lines go: [`telemetry::log`], or a test's collector.
pub type LogFn = Box<dyn Fn(Level, &str, &str, &[(&str, V<'_>)]) + Send + Sync>;

/// The connection state of one run's clients.
pub struct BrokerWatch {
    brokers: String,
    telemetry: Arc<Telemetry>,
    log: LogFn,
    /// A broker answered and none failed since: the fast path of [`BrokerWatch::connected`].
    up: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every broker was found down at this instant, and none answered since.
    down_since: Option<Instant>,
    /// Failed connection attempts since the brokers went down (or since the start).
    failed_attempts: u64,
    /// The newest cause librdkafka gave, short (`Connection refused`) and whole.
    cause: Option<Cause>,
    last_reminder: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// The broker as librdkafka names it (`127.0.0.1:9092/bootstrap`).
    pub broker: String,
    /// The reason alone: `Connection refused`.
    pub short: String,
    /// librdkafka's sentence without its timing: `Connect to ipv4#127.0.0.1:9092 failed:
    /// Connection refused`.
    pub detail: String,
}

/// Reads librdkafka's `FAIL` line, `[thrd:B]: B: Connect to … failed: REASON (after 0ms in
/// state CONNECT, 1 identical error(s) suppressed)`, into its broker and cause.
pub fn parse_failure(message: &str) -> Cause {
    let mut text = message.trim();
    if text.starts_with("[thrd:") {
        if let Some(end) = text.find("]: ") {
            text = &text[end + 3..];
        }
    }
    let (broker, rest) = match text.split_once(": ") {
        // A broker name has a port or a `/` part; a sentence does not start like one.
        Some((broker, rest)) if !broker.contains(' ') => (broker, rest),
        _ => ("", text),
    };
    let detail = match rest.rfind(" (after ") {
        Some(at) => &rest[..at],
        None => rest,
    };
    let short = match detail.rfind("failed: ") {
        Some(at) => &detail[at + "failed: ".len()..],
        None => detail,
    };
    Cause {
        broker: broker.to_owned(),
        short: short.to_owned(),
        detail: detail.to_owned(),
    }
}

impl BrokerWatch {
    pub fn new(brokers: &str, telemetry: Arc<Telemetry>) -> Arc<BrokerWatch> {
        BrokerWatch::with_log(brokers, telemetry, Box::new(telemetry::log))
    }

    /// As [`BrokerWatch::new`], its lines written by `log`.
    pub fn with_log(brokers: &str, telemetry: Arc<Telemetry>, log: LogFn) -> Arc<BrokerWatch> {
        Arc::new(BrokerWatch {
            brokers: brokers.to_owned(),
            telemetry,
            log,
            up: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection attempt failed (librdkafka's `FAIL` log line, from either client).
    pub fn failed_attempt(&self, message: &str) {
        let cause = parse_failure(message);
        let all_down = {
            let mut state = self.state();
            state.failed_attempts += 1;
            state.cause = Some(cause.clone());
            state.down_since.is_some()
        };
        // While every broker is down, the reminders say it; otherwise one broker failing is
        // worth a warning (the log counts its repeats).
        if !all_down {
            (self.log)(
                Level::Warn,
                "broker_connection_failed",
                "a connection to a Kafka broker failed; librdkafka retries",
                &[
                    ("broker", V::S(&cause.broker)),
                    ("cause", V::S(&cause.detail)),
                ],
            );
        }
    }

    /// Every broker is down (librdkafka's `AllBrokersDown`, from either client). Reported
    /// only once a connection attempt failed since the last answer: a client whose one idle
    /// connection the broker closed is "all down" too, and simply connects again when it
    /// needs to.
    pub fn all_down(&self) {
        let (cause, attempts) = {
            let mut state = self.state();
            if state.down_since.is_some() || state.failed_attempts == 0 {
                return;
            }
            self.up.store(false, Ordering::Relaxed);
            let now = Instant::now();
            state.down_since = Some(now);
            state.last_reminder = Some(now);
            (state.cause.clone(), state.failed_attempts)
        };
        let short = cause
            .as_ref()
            .map_or("every connection is down", |c| c.short.as_str());
        let detail = cause.as_ref().map_or("", |c| c.detail.as_str());
        let msg = format!(
            "cannot reach the Kafka brokers at {}: {short}; retrying until one answers \
             (nothing is read, decided or committed meanwhile)",
            self.brokers
        );
        let problem = format!(
            "cannot reach the Kafka brokers at {}: {short} (since {})",
            self.brokers,
            Timestamp::from_millis(crate::kafka::delivery::now_millis())
        );
        {
            let mut m = self.telemetry.metrics();
            m.broker_connected = false;
            m.broker_problem = Some(problem);
        }
        (self.log)(
            Level::Error,
            "broker_unreachable",
            &msg,
            &[
                ("brokers", V::S(&self.brokers)),
                ("cause", V::S(short)),
                ("librdkafka", V::S(detail)),
                ("failed_attempts", V::U(attempts)),
            ],
        );
    }

    /// A broker answered: statistics show one up ([`BrokerWatch::statistics_show_one_up`]),
    /// or an assignment or a record arrived.
    pub fn connected(&self) {
        // Called for every record: one atomic load while nothing changes.
        if self.up.load(Ordering::Relaxed) {
            return;
        }
        let was_down = {
            let mut state = self.state();
            let was = state.down_since.take();
            let attempts = std::mem::take(&mut state.failed_attempts);
            state.last_reminder = None;
            was.map(|since| (since.elapsed(), attempts))
        };
        {
            let mut m = self.telemetry.metrics();
            if m.broker_connected && was_down.is_none() {
                return;
            }
            m.broker_connected = true;
            m.broker_problem = None;
        }
        self.up.store(true, Ordering::Relaxed);
        if let Some((down_for, attempts)) = was_down {
            let msg = format!(
                "the Kafka brokers at {} answer again, after {} unreachable",
                self.brokers,
                words(down_for)
            );
            (self.log)(
                Level::Info,
                "broker_reachable",
                &msg,
                &[
                    ("brokers", V::S(&self.brokers)),
                    ("failed_attempts", V::U(attempts)),
                ],
            );
        }
    }

    /// librdkafka's statistics (every 5 s) show a broker up: an answer, and the failed
    /// attempts counted so far (one broker of several refusing) are forgotten.
    pub fn statistics_show_one_up(&self) {
        {
            let mut state = self.state();
            if state.down_since.is_none() {
                state.failed_attempts = 0;
            }
        }
        self.connected();
    }

    /// Called from the consumer loop: a reminder while the brokers stay unreachable.
    pub fn tick(&self) {
        if self.up.load(Ordering::Relaxed) {
            return;
        }
        let (down_for, attempts, cause) = {
            let mut state = self.state();
            let (Some(since), Some(last)) = (state.down_since, state.last_reminder) else {
                return;
            };
            if last.elapsed() < REMINDER_INTERVAL {
                return;
            }
            state.last_reminder = Some(Instant::now());
            (since.elapsed(), state.failed_attempts, state.cause.clone())
        };
        let short = cause
            .as_ref()
            .map_or("every connection is down", |c| c.short.as_str());
        let msg = format!(
            "still cannot reach the Kafka brokers at {} after {} ({attempts} failed connection \
             attempts): {short}",
            self.brokers,
            words(down_for)
        );
        (self.log)(
            Level::Error,
            "broker_still_unreachable",
            &msg,
            &[
                ("brokers", V::S(&self.brokers)),
                ("cause", V::S(short)),
                ("down_s", V::U(down_for.as_secs())),
                ("failed_attempts", V::U(attempts)),
            ],
        );
    }

    /// True while every broker is known to be down.
    pub fn down(&self) -> bool {
        self.state().down_since.is_some()
    }
}

/// `45s`, `3m10s`, `2h5m`.
fn words(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_names_its_broker_and_cause() {
        let c = parse_failure(
            "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 \
             failed: Connection refused (after 0ms in state CONNECT, 1 identical error(s) \
             suppressed)",
        );
        assert_eq!(c.broker, "127.0.0.1:1/bootstrap");
        assert_eq!(c.short, "Connection refused");
        assert_eq!(
            c.detail,
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused"
        );
    }

    #[test]
    fn a_failure_without_a_connect_sentence_is_kept_whole() {
        let c = parse_failure(
            "kafka.example:9092/bootstrap: Failed to resolve 'kafka.example:9092': Name or \
             service not known (after 2ms in state CONNECT)",
        );
        assert_eq!(c.broker, "kafka.example:9092/bootstrap");
        assert_eq!(
            c.short,
            "Failed to resolve 'kafka.example:9092': Name or service not known"
        );
    }

    #[test]
    fn said_once_then_again_when_back_and_the_gauge_and_readiness_follow() {
        let said: Arc<Mutex<Vec<(Level, String, String)>>> = Arc::default();
        let telemetry = Telemetry::new();
        let watch = {
            let said = said.clone();
            BrokerWatch::with_log(
                "127.0.0.1:1",
                telemetry.clone(),
                Box::new(move |level, event, msg, _| {
                    said.lock()
                        .unwrap()
                        .push((level, event.to_owned(), msg.to_owned()))
                }),
            )
        };
        let refused = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection \
                       refused (after 0ms in state CONNECT)";
        watch.failed_attempt(refused);
        assert!(!watch.down(), "one failed attempt is not every broker down");
        for _ in 0..50 {
            watch.all_down();
            watch.failed_attempt(refused);
            watch.tick();
        }
        assert!(watch.down());
        let errors: Vec<String> = said
            .lock()
            .unwrap()
            .iter()
            .filter(|(level, _, _)| *level == Level::Error)
            .map(|(_, event, msg)| format!("{event}: {msg}"))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with(
                "broker_unreachable: cannot reach the Kafka brokers at 127.0.0.1:1: Connection \
                 refused"
            ),
            "{errors:#?}"
        );
        assert!(!telemetry.metrics().broker_connected);
        let why = telemetry.readiness().unwrap_err();
        assert!(
            why.starts_with("cannot reach the Kafka brokers at 127.0.0.1:1: Connection refused"),
            "{why}"
        );
        assert!(telemetry
            .render()
            .contains("\nsessionguard_broker_connected 0\n"));
        watch.connected();
        watch.connected();
        assert!(!watch.down());
        assert!(telemetry.metrics().broker_connected);
        assert!(telemetry
            .render()
            .contains("\nsessionguard_broker_connected 1\n"));
        let why = telemetry.readiness().unwrap_err();
        assert!(why.starts_with("no input partition assigned yet"), "{why}");
        let back: Vec<String> = said
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, event, _)| event == "broker_reachable")
            .map(|(_, _, msg)| msg.clone())
            .collect();
        assert_eq!(back.len(), 1, "{back:#?}");
        assert!(
            back[0].starts_with("the Kafka brokers at 127.0.0.1:1 answer again"),
            "{back:#?}"
        );
    }

    #[test]
    fn every_connection_closed_without_a_failed_attempt_is_not_unreachable() {
        let said: Arc<Mutex<Vec<String>>> = Arc::default();
        let telemetry = Telemetry::new();
        let watch = {
            let said = said.clone();
            BrokerWatch::with_log(
                "127.0.0.1:9092",
                telemetry.clone(),
                Box::new(move |_, event, _, _| said.lock().unwrap().push(event.to_owned())),
            )
        };
        watch.connected();
        // The broker closed the producer's idle connection: librdkafka says all are down.
        watch.all_down();
        assert!(!watch.down());
        assert!(telemetry
            .readiness()
            .is_err_and(|why| why.starts_with("no input partition")));
        assert!(said.lock().unwrap().is_empty());
        // One broker of several refused, then statistics show the others up: forgotten.
        watch.failed_attempt("b2:9092/2: Connect to ipv4#10.0.0.2:9092 failed: Connection refused (after 1ms in state CONNECT)");
        watch.statistics_show_one_up();
        watch.all_down();
        assert!(!watch.down());
        // A reconnection that fails is an outage.
        watch.failed_attempt("b1:9092/1: Connect to ipv4#10.0.0.1:9092 failed: Connection refused (after 1ms in state CONNECT)");
        watch.all_down();
        assert!(watch.down());
        assert_eq!(
            *said.lock().unwrap(),
            [
                "broker_connection_failed",
                "broker_connection_failed",
                "broker_unreachable"
            ]
        );
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(words(Duration::from_secs(45)), "45s");
        assert_eq!(words(Duration::from_secs(190)), "3m10s");
        assert_eq!(words(Duration::from_secs(7500)), "2h5m");
    }
}
