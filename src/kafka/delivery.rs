//! Producing with delivery tracking: every message carries a [`Ticket`] naming the input
//! partition (tracker) and the sequence number it was issued under, and its acknowledgement
//! comes back to the pipeline thread as an [`Ack`], so an input offset is stored only once
//! every message it caused is acknowledged (see [`super::tracker`]).
//!
//! The producer is librdkafka's idempotent producer on a `ThreadedProducer`, whose own thread
//! serves delivery reports as soon as they arrive (the latency histogram is fed there). A
//! message that cannot be enqueued (local queue full) or whose delivery failed is kept and sent
//! again from the pipeline thread: nothing a decision or dead letter depends on is dropped, and
//! its ticket stays outstanding meanwhile, so its offset is not stored. The pipeline pauses its
//! input while anything waits here or too much is in flight.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedHeaders, DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};

use super::connectivity::BrokerWatch;
use super::events;
use crate::telemetry::{self, Level, Telemetry, V};

/// Pause the input above this many messages in flight; resume below half of it.
pub const MAX_IN_FLIGHT: usize = 20_000;

/// What a produced message is, for metrics and tracking.
#[derive(Debug)]
pub enum Kind {
    Decision {
        rule_id: Box<str>,
    },
    DeadLetter,
    Rekeyed,
    /// The null engine's one output per input record (`run --null-engine`).
    Null,
    /// Not tracked: a progress record gates no offset.
    Progress,
}

/// Travels with a message through librdkafka and back.
#[derive(Debug)]
pub struct Ticket {
    /// The input partition's tracker; 0 for untracked messages.
    pub tracker: u64,
    pub seq: u64,
    /// Kafka timestamp (ms) of the input record that caused the message.
    pub source_ts: Option<i64>,
    pub kind: Kind,
}

/// An owned message, kept for a retry.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

/// A delivery acknowledgement, or a failure to be retried.
pub struct Ack {
    pub ticket: Ticket,
    pub result: Result<(), (KafkaError, Outbound)>,
}

/// Producer context: collects acks for the pipeline thread, routes librdkafka's log lines
/// and connection failures (to the run's [`BrokerWatch`]).
pub struct DeliveryContext {
    acks: Mutex<Vec<Ack>>,
    telemetry: Arc<Telemetry>,
    watch: Arc<BrokerWatch>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        client_log(&self.watch, "producer", level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(
            &self.watch,
            "producer_error",
            "producer error (librdkafka retries)",
            &error,
            reason,
        );
    }
}

/// A client's log line: a failed connection goes to the watch, the rest to the log.
pub fn client_log(
    watch: &BrokerWatch,
    client: &str,
    level: RDKafkaLogLevel,
    fac: &str,
    message: &str,
) {
    let severe = matches!(
        level,
        RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
    );
    // A failed connection attempt is `FAIL` at error level, in a connecting state; an
    // established connection closed by the broker (`in state UP`) stays an ordinary line.
    if fac == "FAIL" && severe && !message.contains("in state UP") {
        watch.failed_attempt(message);
    } else {
        librdkafka_log(client, level, fac, message);
    }
}

/// A client's error callback: every broker down goes to the watch, a transport failure is
/// already told by its `FAIL` line, the rest is logged (repeats counted, not written).
pub fn client_error(watch: &BrokerWatch, event: &str, msg: &str, error: &KafkaError, reason: &str) {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::AllBrokersDown) => watch.all_down(),
        Some(RDKafkaErrorCode::BrokerTransportFailure) => {}
        _ => {
            let text = error.to_string();
            telemetry::log(
                Level::Warn,
                event,
                msg,
                &[("error", V::S(&text)), ("reason", V::S(reason))],
            );
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Ticket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Box<Ticket>) {
        let ticket = *ticket;
        let result = match result {
            Ok(_) => {
                // Event-to-output latency: per decision, and per null-engine record.
                if let (Kind::Decision { .. } | Kind::Null, Some(ts)) =
                    (&ticket.kind, ticket.source_ts)
                {
                    let now = now_millis();
                    self.telemetry.record_latency(now - ts);
                }
                Ok(())
            }
            Err((error, message)) => {
                let headers = owned_headers(message.headers());
                Err((
                    error.clone(),
                    Outbound {
                        topic: message.topic().into(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or(&[]).to_vec(),
                        headers,
                        timestamp: message.timestamp().to_millis(),
                    },
                ))
            }
        };
        self.acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Ack { ticket, result });
    }
}

/// Writes a librdkafka log line as a JSON log line.
pub fn librdkafka_log(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    let level = match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => Level::Error,
        RDKafkaLogLevel::Warning => Level::Warn,
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => Level::Info,
        RDKafkaLogLevel::Debug => Level::Debug,
    };
    telemetry::log(
        level,
        "librdkafka",
        message,
        &[("client", V::S(client)), ("facility", V::S(fac))],
    );
}

/// A message's headers as owned (name, value) pairs, a missing value as empty.
pub fn owned_headers(headers: Option<&BorrowedHeaders>) -> Vec<(String, Vec<u8>)> {
    headers.map_or_else(Vec::new, |h| {
        h.iter()
            .map(|h| (h.key.to_owned(), h.value.unwrap_or(&[]).to_vec()))
            .collect()
    })
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The producer and what waits to be sent again.
pub struct Outbox {
    producer: ThreadedProducer<DeliveryContext>,
    retry: VecDeque<(Ticket, Outbound)>,
    in_flight: usize,
    telemetry: Arc<Telemetry>,
}

impl Outbox {
    /// An idempotent producer on `config` (bootstrap servers and pass-through properties).
    pub fn new(
        mut config: ClientConfig,
        telemetry: Arc<Telemetry>,
        watch: Arc<BrokerWatch>,
    ) -> anyhow::Result<Outbox> {
        // Idempotence: no duplicates or reordering from librdkafka's own retries.
        config.set("enable.idempotence", "true");
        let context = DeliveryContext {
            acks: Mutex::new(Vec::new()),
            telemetry: telemetry.clone(),
            watch,
        };
        let producer: ThreadedProducer<DeliveryContext> = config
            .create_with_context(context)
            .map_err(|e| anyhow::anyhow!("creating the producer: {e}"))?;
        Ok(Outbox {
            producer,
            retry: VecDeque::new(),
            in_flight: 0,
            telemetry,
        })
    }

    /// Sends `out`; when librdkafka's queue is full it is kept and sent by a later `pump`.
    pub fn send(&mut self, ticket: Ticket, out: Outbound) {
        if !self.retry.is_empty() {
            // Keep order: nothing overtakes what waits.
            self.retry.push_back((ticket, out));
            return;
        }
        if let Some((ticket, out)) = self.try_send(ticket, out) {
            self.retry.push_back((ticket, out));
        }
    }

    /// Sends `out`; gives it back when it could not be enqueued.
    fn try_send(&mut self, ticket: Ticket, out: Outbound) -> Option<(Ticket, Outbound)> {
        let mut headers = OwnedHeaders::new_with_capacity(out.headers.len());
        for (key, value) in &out.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_slice()),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8], Box<Ticket>> =
            BaseRecord::with_opaque_to(&out.topic, Box::new(ticket))
                .payload(out.payload.as_slice())
                .headers(headers);
        if let Some(key) = &out.key {
            record = record.key(key.as_slice());
        }
        if let Some(ts) = out.timestamp {
            record = record.timestamp(ts);
        }
        match self.producer.send(record) {
            Ok(()) => {
                self.in_flight += 1;
                None
            }
            Err((error, record)) => {
                let ticket = *record.delivery_opaque;
                if !matches!(
                    error,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ) {
                    events::ProduceFailed {
                        topic: &out.topic,
                        error: &error.to_string(),
                    }
                    .emit(&self.telemetry);
                }
                Some((ticket, out))
            }
        }
    }

    /// Sends what waits, and returns the acknowledgements that arrived; failed deliveries are
    /// queued again, not returned.
    pub fn pump(&mut self) -> Vec<Ack> {
        while let Some((ticket, out)) = self.retry.pop_front() {
            if let Some(back) = self.try_send(ticket, out) {
                self.retry.push_front(back);
                break;
            }
        }
        let acks = std::mem::take(
            &mut *self
                .producer
                .context()
                .acks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let mut done = Vec::with_capacity(acks.len());
        for ack in acks {
            self.in_flight = self.in_flight.saturating_sub(1);
            match ack.result {
                Ok(()) => done.push(ack),
                Err((error, out)) => {
                    events::DeliveryFailed {
                        topic: &out.topic,
                        error: &error.to_string(),
                    }
                    .emit(&self.telemetry);
                    self.retry.push_back((ack.ticket, out));
                }
            }
        }
        done
    }

    /// Messages waiting for a retry or for their acknowledgement.
    pub fn pending(&self) -> usize {
        self.retry.len() + self.in_flight
    }

    /// True while the input should be paused.
    pub fn congested(&self, paused: bool) -> bool {
        let limit = if paused {
            MAX_IN_FLIGHT / 2
        } else {
            MAX_IN_FLIGHT
        };
        !self.retry.is_empty() || self.in_flight > limit
    }

    /// Waits until everything sent so far is acknowledged (retrying failures), or `timeout`.
    /// Returns the acknowledgements; `complete` tells whether nothing is left pending.
    pub fn drain(&mut self, timeout: Duration) -> (Vec<Ack>, bool) {
        let deadline = Instant::now() + timeout;
        let mut acks = Vec::new();
        loop {
            acks.extend(self.pump());
            if self.pending() == 0 {
                return (acks, true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (acks, false);
            }
            let _ = self.producer.flush(left.min(Duration::from_millis(200)));
        }
    }

    /// Drops everything queued or in flight, as a crash would.
    pub fn abandon(&mut self) {
        self.retry.clear();
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        self.in_flight = 0;
    }
}
