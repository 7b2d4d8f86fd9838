//! `sessionguard actuate`: the process that makes kill decisions land. It reads decisions
//! (NDJSON from a file or standard input), lets the blast-radius guard hold back what it must,
//! turns each remaining decision into a CAEP Security Event Token signed with the transmitter's
//! key, pushes it to every Shared Signals receiver that takes it, and records what happened.
//!
//! # Layout
//!
//! - [`config`]: the config file, text form and checked form.
//! - [`secret`]: credentials from files or the environment, never printed.
//! - [`set`]: decisions as read, subject identifiers, SET claims, signing, the JWKS.
//! - [`push`]: RFC 8935 push delivery: retries, backoff with jitter, the circuit breaker.
//! - [`guard`]: the blast-radius guard (never-kill list, limits, trips to dry_run).
//! - [`state`]: the durable position in the input, and the guard's memory.
//! - [`record`]: actuation records (NDJSON).
//! - [`topic`]: reading the actions topic; offsets stored once settled.
//! - [`vendor`]: direct actuators: Okta (clear a user's sessions), Microsoft Graph (revoke
//!   sign-in sessions), each one HTTP call on the push path; [`aws`], [`github`] (SSO
//!   authorization, membership, suspension) and [`kubernetes`] (the service account) beside.
//! - [`stream`]: SSF 1.0 streams receivers set up themselves (configuration, status,
//!   subjects, verification) and the SETs held for them until pushed or polled.
//! - [`oauth`]: client-credentials tokens for vendor APIs (Microsoft Graph), cached.
//! - [`metrics`], [`server`]: `/metrics`, `/.well-known/ssf-configuration`, `/jwks.json`, and
//!   the stream management endpoints (bearer-authenticated).
//! - [`receiver`], [`demo`]: a bundled push receiver that verifies SETs, and the demo's
//!   actuation through it.
//!
//! # Delivery guarantee
//!
//! Decisions are read in order and delivered concurrently (up to `max_in_flight`); the
//! position saved in the state file only moves past a decision once it is settled at every
//! receiver that takes it — delivered, refused by the receiver, failed after `give_up_after`,
//! or held back by the guard — and past every decision before it. A stop (SIGTERM, SIGINT, a
//! crash) therefore loses nothing: after the restart the unsettled decisions are sent again
//! with the same `jti`, which receivers deduplicate.
#![allow(
    clippy::disallowed_methods,
    reason = "state saving intervals and delivery latency are wall-clock by nature"
)]

pub mod aws;
pub mod config;
pub mod demo;
pub mod github;
pub mod guard;
pub mod kubernetes;
pub mod metrics;
pub mod oauth;
pub mod push;
pub mod receiver;
pub mod record;
pub mod secret;
pub mod server;
pub mod set;
pub mod state;
pub mod stream;
pub mod topic;
pub mod vendor;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::config::Settings;
use self::guard::{Guard, Verdict};
use self::metrics::Metrics;
use self::push::{Outcome, Pusher};
use self::record::{now_ms, Record, Records};
use self::set::{DecisionIn, SetSigner};
use self::state::State;
use crate::decision::decision_mac_matches;
use crate::telemetry::{self, Level, V};

/// The longest decision line read; a longer one is rejected, not buffered.
const MAX_LINE_BYTES: usize = 1 << 20;

/// How often the state file is written while decisions settle.
const SAVE_INTERVAL: Duration = Duration::from_millis(200);

/// Where decisions are read from.
#[derive(Clone, Debug)]
pub enum Input {
    File(PathBuf),
    Stdin,
    /// The actions topic named in the config's `kafka:` section.
    Topic,
    /// The actions topic when the config names one, else standard input.
    Default,
}

/// Where a decision ends in its input: what is settled once it is.
#[derive(Clone, Debug)]
pub enum Position {
    /// Bytes of the file or stream up to the end of its line.
    Bytes(u64),
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

/// What one run did, for the closing log line and the tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub lines: u64,
    pub delivered: u64,
    pub refused: u64,
    pub failed: u64,
    pub held_back: u64,
    pub rejected: u64,
    /// Some decisions read were not settled (a stop while they were in delivery).
    pub interrupted: bool,
    /// Stopped by SIGTERM or SIGINT rather than by the end of the input.
    pub stopped: bool,
}

/// Everything a decision's delivery task needs, shared.
struct Shared {
    issuer: String,
    /// With `trust:`, only decisions carrying a matching MAC are acted on.
    decision_mac_key: Option<secret::Secret>,
    signer: Arc<SetSigner>,
    pushers: Vec<Pusher>,
    /// SSF streams set up by receivers (`streams:` in the config).
    streams: Option<Arc<stream::Streams>>,
    records: Records,
    metrics: Arc<Metrics>,
}

/// What a settled delivery task reports.
#[derive(Default)]
struct Settled {
    delivered: u64,
    refused: u64,
    failed: u64,
    /// Not settled: the process is stopping.
    interrupted: bool,
}

/// `sessionguard actuate`: loads the config, serves the SSF endpoints, and actuates until the
/// input ends or SIGTERM/SIGINT.
pub fn command(config: &Path, input: Input) -> Result<Summary> {
    if let Some(level) = std::env::var("SESSIONGUARD_LOG")
        .ok()
        .and_then(|l| Level::from_name(&l))
    {
        telemetry::set_log_level(level);
    }
    let settings = Settings::load(config)?;
    let input = match input {
        Input::Default if settings.kafka.is_some() => Input::Topic,
        Input::Default => Input::Stdin,
        other => other,
    };
    let stop_flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop_flag.clone())?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            while !stop_flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = stop_tx.send(true);
        });
        run(settings, input, stop_rx).await
    })?;
    telemetry::flush_repeats();
    Ok(summary)
}

/// Actuates the decisions of `input` until it ends or `stop` turns true.
pub async fn run(settings: Settings, input: Input, stop: watch::Receiver<bool>) -> Result<Summary> {
    let metrics = Arc::new(Metrics::default());
    let signer = Arc::new(settings.signer);
    let streams = match settings.streams {
        Some(spec) => Some(Arc::new(stream::Streams::open(
            spec,
            &settings.issuer,
            signer.clone(),
        )?)),
        None => None,
    };
    if let Some(addr) = settings.listen {
        let endpoints = server::Endpoints::new(
            &settings.issuer,
            &signer.jwks(),
            metrics.clone(),
            streams.clone(),
        );
        let bound = server::serve(addr, Arc::new(endpoints)).await?;
        telemetry::log(
            Level::Info,
            "ssf_endpoints_listening",
            "serving /.well-known/ssf-configuration, /jwks.json, /metrics and the stream endpoints",
            &[("addr", V::S(&bound.to_string()))],
        );
    }
    let state_path = settings.state.clone();
    let mut state = match &state_path {
        Some(path) => State::load(path)?,
        None => State::default(),
    };
    let (lines_tx, lines_rx) = mpsc::channel(settings.max_in_flight.max(16));
    if settings.decision_mac_key.is_some() && !matches!(input, Input::Topic) {
        anyhow::bail!(
            "`trust:` checks the MACs `run` puts on the actions topic; a file or standard input carries none (leave `trust:` out to act on it, trusting whoever can write it)"
        );
    }
    let topic = match (&input, &settings.kafka) {
        (Input::Topic, Some(spec)) => Some(Arc::new(topic::TopicReader::subscribe(spec)?)),
        (Input::Topic, None) => {
            anyhow::bail!("no `kafka:` section in the config to read the actions topic from")
        }
        _ => None,
    };
    let reader = match &topic {
        Some(reader) => reader.spawn(lines_tx),
        None => {
            let start = start_position(&input, &mut state)?;
            spawn_reader(input.clone(), start, lines_tx)?
        }
    };
    let mut guard = Guard::new(settings.guard.clone(), std::mem::take(&mut state.guard));
    let max_in_flight = settings.max_in_flight;
    let records_topic = match settings.kafka.as_ref() {
        Some(spec) => match &spec.records_topic {
            Some(topic) => Some((topic::AuditProducer::new(spec)?, topic.clone())),
            None => None,
        },
        None => None,
    };
    let records = Records::open(settings.records.as_deref(), records_topic)?;
    let pushers = settings
        .receivers
        .into_iter()
        .map(Pusher::new)
        .collect::<Result<Vec<_>>>()?;
    let ctx = Arc::new(Shared {
        decision_mac_key: settings.decision_mac_key,
        issuer: settings.issuer,
        signer,
        pushers,
        streams: streams.clone(),
        records,
        metrics,
    });
    if let Some(streams) = streams {
        let _ = streams.reporter.set(Arc::downgrade(&ctx));
        tokio::spawn(stream::write_streams(streams.clone()));
        tokio::spawn(stream::push_streams(ctx.clone(), streams, stop.clone()));
    }
    let mut pump = Pump {
        ctx: ctx.clone(),
        stop,
        inflight: VecDeque::new(),
        topic: topic.clone(),
        state,
        state_path,
        summary: Summary::default(),
        blocked: false,
        last_save: Instant::now(),
    };
    pump.run(lines_rx, &mut guard, max_in_flight).await?;
    let s = pump.summary;
    drop(pump);
    if let Some(streams) = &ctx.streams {
        // What the streams delivered since the last write.
        if let Err(e) = streams.persist() {
            telemetry::log(
                Level::Error,
                "streams_save_failed",
                "cannot write the streams file",
                &[("error", V::S(&format!("{e:#}")))],
            );
        }
    }
    ctx.records.flush();
    if let Some(topic) = topic {
        topic.commit();
        // The reader ends at its next poll (the channel is closed); then the consumer is the
        // last one's to drop, which leaves the group at once, so a restart is not kept
        // waiting for the session timeout.
        let _ = reader.join();
        drop(topic);
    }
    telemetry::log(
        Level::Info,
        "actuate_stopped",
        match (s.interrupted, s.stopped) {
            (true, _) => "stopped; the decisions not settled are sent again on restart",
            (false, true) => "stopped; every decision read was settled",
            (false, false) => "input ended; every decision settled",
        },
        &[
            ("lines", V::U(s.lines)),
            ("delivered", V::U(s.delivered)),
            ("refused", V::U(s.refused)),
            ("failed", V::U(s.failed)),
            ("held_back", V::U(s.held_back)),
            ("rejected", V::U(s.rejected)),
        ],
    );
    Ok(s)
}

/// Where reading starts: the saved position when the state is about the same file and the
/// file still reaches it; else the beginning (a new or rotated file), said in the log.
fn start_position(input: &Input, state: &mut State) -> Result<u64> {
    let Input::File(path) = input else {
        return Ok(0);
    };
    let len = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read the decisions file", path.display()))?
        .len();
    if state.input.as_deref() == Some(path.as_path()) && state.position <= len {
        if state.position > 0 {
            telemetry::log(
                Level::Info,
                "actuate_resumed",
                "going on from the saved position",
                &[
                    ("position", V::U(state.position)),
                    ("lines", V::U(state.lines)),
                ],
            );
        }
        return Ok(state.position);
    }
    if state.input.is_some() {
        telemetry::log(
            Level::Warn,
            "actuate_state_reset",
            "the state file is about another file, or the file is shorter than the saved position: starting from its beginning",
            &[("input", V::S(&path.display().to_string()))],
        );
    }
    state.input = Some(path.clone());
    state.position = 0;
    state.lines = 0;
    Ok(0)
}

/// One line read: its bytes (without the newline), or what was wrong, and the byte position
/// just past it.
pub struct Line {
    bytes: Result<Vec<u8>, String>,
    end: Position,
    /// The record's [`crate::decision::MAC_HEADER`] (the actions topic only).
    mac: Option<Vec<u8>>,
}

/// Reads lines on a thread of its own (files and pipes block), handing them over in order.
fn spawn_reader(
    input: Input,
    start: u64,
    tx: mpsc::Sender<Line>,
) -> Result<std::thread::JoinHandle<()>> {
    let reader: Box<dyn Read + Send> = match &input {
        Input::File(path) => {
            let mut file = std::fs::File::open(path)
                .with_context(|| format!("{}: cannot open the decisions file", path.display()))?;
            file.seek(SeekFrom::Start(start))?;
            Box::new(file)
        }
        Input::Stdin | Input::Topic | Input::Default => Box::new(std::io::stdin()),
    };
    Ok(std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let mut position = start;
        loop {
            let mut buf = Vec::new();
            let read = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf);
            let bytes = match read {
                Ok(0) => return,
                Ok(n) => {
                    position += n as u64;
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                        Ok(buf)
                    } else if n > MAX_LINE_BYTES {
                        // Skip the rest of the overlong line.
                        let mut rest = Vec::new();
                        while let Ok(m) = (&mut reader)
                            .take(MAX_LINE_BYTES as u64)
                            .read_until(b'\n', &mut rest)
                        {
                            position += m as u64;
                            if m == 0 || rest.last() == Some(&b'\n') {
                                break;
                            }
                            rest.clear();
                        }
                        Err(format!("a line longer than {MAX_LINE_BYTES} bytes"))
                    } else {
                        Ok(buf)
                    }
                }
                Err(e) => Err(format!("reading the input: {e}")),
            };
            let failed = bytes.is_err() && position == start;
            if tx
                .blocking_send(Line {
                    mac: None,
                    bytes,
                    end: Position::Bytes(position),
                })
                .is_err()
                || failed
            {
                return;
            }
        }
    }))
}

/// Decisions in flight, in input order, each with the position just past it.
struct Pump {
    ctx: Arc<Shared>,
    stop: watch::Receiver<bool>,
    inflight: VecDeque<(Position, JoinHandle<Settled>)>,
    /// Reading the actions topic: where settled offsets are stored.
    topic: Option<Arc<topic::TopicReader>>,
    state: State,
    state_path: Option<PathBuf>,
    summary: Summary,
    /// A decision before the front was not settled: the position moves no more this run.
    blocked: bool,
    last_save: Instant,
}

impl Pump {
    async fn run(
        &mut self,
        mut lines: mpsc::Receiver<Line>,
        guard: &mut Guard,
        max_in_flight: usize,
    ) -> Result<()> {
        let mut input_open = true;
        let mut stopping = false;
        let mut stop_wait = self.stop.clone();
        while input_open && !stopping || !self.inflight.is_empty() {
            let can_read = input_open && !stopping && self.inflight.len() < max_in_flight;
            let has_front = !self.inflight.is_empty();
            tokio::select! {
                biased;
                settled = async { (&mut self.inflight.front_mut().expect("has_front").1).await }, if has_front => {
                    let (end, _) = self.inflight.pop_front().expect("has_front");
                    self.settle(end, settled.unwrap_or(Settled { interrupted: true, ..Settled::default() }), guard)?;
                }
                _ = stop_wait.wait_for(|s| *s), if !stopping => stopping = true,
                line = lines.recv(), if can_read => match line {
                    None => input_open = false,
                    Some(line) => self.admit(line, guard),
                },
            }
        }
        self.save(guard)?;
        self.summary.interrupted |= self.blocked;
        self.summary.stopped = stopping;
        Ok(())
    }

    /// A decision line read: rejected, held back, or handed to a delivery task.
    fn admit(&mut self, line: Line, guard: &mut Guard) {
        self.summary.lines += 1;
        let number = self.state.lines + self.summary.lines;
        let ctx = self.ctx.clone();
        let trust = ctx.decision_mac_key.as_ref();
        let mac = line.mac;
        let decision = match line
            .bytes
            .and_then(|b| match (trust, &mac) {
                (None, _) => Ok(b),
                (Some(key), Some(mac)) if decision_mac_matches(key.expose(), &b, mac) => Ok(b),
                (Some(_), Some(_)) => Err("untrusted: the decision's MAC does not match".into()),
                (Some(_), None) => Err("untrusted: the decision carries no MAC".into()),
            })
            .and_then(|b| DecisionIn::parse(&b).map_err(|e| format!("{e:#}")))
        {
            Ok(decision) => decision,
            Err(reason) => {
                self.summary.rejected += 1;
                ctx.metrics.rejected();
                telemetry::log(
                    Level::Warn,
                    "decision_rejected",
                    "a line of the input is not a decision",
                    &[("line", V::U(number)), ("reason", V::S(&reason))],
                );
                write_record(
                    &ctx,
                    Record {
                        outcome: "rejected",
                        reason: Some(&reason),
                        line: Some(number),
                        ..Record::default()
                    },
                );
                self.inflight
                    .push_back((line.end, tokio::spawn(async { Settled::default() })));
                return;
            }
        };
        let targets: Vec<usize> = ctx
            .pushers
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.settings.take.takes(
                    &decision.rule.id,
                    &decision.action,
                    &decision.mode,
                    &decision.session.key,
                ) && (p.settings.kind != vendor::Kind::Ssf
                    || set::event_for(&decision, |e| p.settings.events.contains(&e)).is_some())
            })
            .map(|(i, _)| i)
            .collect();
        let base = Record {
            decision_id: Some(&decision.decision_id),
            rule: Some(&decision.rule.id),
            session: Some(&decision.session.key),
            line: Some(number),
            ..Record::default()
        };
        let streams_take = ctx.streams.as_ref().is_some_and(|s| s.takes(&decision));
        if targets.is_empty() && !streams_take {
            write_record(
                &ctx,
                Record {
                    outcome: "not_taken",
                    reason: Some("no receiver takes this rule, action and mode"),
                    ..base
                },
            );
            self.inflight
                .push_back((line.end, tokio::spawn(async { Settled::default() })));
            return;
        }
        let (verdict, trip) = guard.judge(&decision);
        if let Some(trip) = trip {
            ctx.metrics.trip(&trip.rule);
            let reason = format!(
                "rule {} made {} kills within a minute (limit {}): switched to dry_run until {}",
                trip.rule,
                trip.kills_in_minute,
                trip.limit,
                crate::event::Timestamp::from_millis(trip.until_ms)
            );
            telemetry::log(
                Level::Warn,
                "guard_tripped",
                &reason,
                &[("rule", V::S(&trip.rule))],
            );
            write_record(
                &ctx,
                Record {
                    outcome: "alert",
                    rule: Some(&trip.rule),
                    reason: Some(&reason),
                    ..Record::default()
                },
            );
        }
        if let Verdict::HeldBack(reason) = verdict {
            self.summary.held_back += 1;
            ctx.metrics.held_back();
            write_record(
                &ctx,
                Record {
                    outcome: "held_back",
                    reason: Some(&reason),
                    ..base
                },
            );
            self.inflight
                .push_back((line.end, tokio::spawn(async { Settled::default() })));
            return;
        }
        let (held, full) = if streams_take {
            offer_to_streams(&ctx, &decision, number)
        } else {
            (None, 0)
        };
        let stop = self.stop.clone();
        let task = tokio::spawn(async move {
            let mut settled = if targets.is_empty() {
                Settled::default()
            } else {
                deliver_everywhere(ctx.clone(), decision, number, targets, stop).await
            };
            settled.failed += full;
            // Settled only once the streams file holds its SETs; else it is read again after
            // a restart.
            if let (Some(change), Some(streams)) = (held, &ctx.streams) {
                if !streams.written(change).await {
                    settled.interrupted = true;
                }
            }
            settled
        });
        self.inflight.push_back((line.end, task));
    }

    fn settle(&mut self, end: Position, settled: Settled, guard: &Guard) -> Result<()> {
        self.summary.delivered += settled.delivered;
        self.summary.refused += settled.refused;
        self.summary.failed += settled.failed;
        if settled.interrupted {
            self.blocked = true;
        }
        if !self.blocked {
            match end {
                Position::Bytes(end) => self.state.position = end,
                Position::Kafka {
                    topic,
                    partition,
                    offset,
                } => {
                    if let Some(reader) = &self.topic {
                        reader.store(&topic, partition, offset);
                    }
                }
            }
            self.state.lines += 1;
            if self.last_save.elapsed() >= SAVE_INTERVAL {
                self.save(guard)?;
            }
        }
        Ok(())
    }

    fn save(&mut self, guard: &Guard) -> Result<()> {
        self.last_save = Instant::now();
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        self.state.guard = guard.state().clone();
        self.state.save(path)
    }
}

fn write_record(ctx: &Shared, record: Record<'_>) {
    if let Err(e) = ctx.records.write(record) {
        telemetry::log(
            Level::Error,
            "record_write_failed",
            "cannot write an actuation record",
            &[("error", V::S(&e.to_string()))],
        );
    }
}

/// Holds a SET about `decision` on every SSF stream that takes it, with a `held` record each;
/// the change to wait for before the decision is settled, and how many streams could not
/// hold it (full: `failed`).
fn offer_to_streams(ctx: &Shared, decision: &DecisionIn, line: u64) -> (Option<u64>, u64) {
    let Some(streams) = ctx.streams.as_ref() else {
        return (None, 0);
    };
    let (offered, change) = streams.offer(decision);
    let full = offered
        .iter()
        .filter(|(_, r)| matches!(r, Ok(stream::Offered::Full)))
        .count() as u64;
    for (receiver, result) in offered {
        let (outcome, reason) = match result {
            Ok(stream::Offered::Held) => ("held", None),
            Ok(stream::Offered::Full) => (
                "failed",
                Some("the stream holds as many SETs as it may (max_held)".to_owned()),
            ),
            Err(e) => ("refused", Some(format!("{e:#}"))),
        };
        write_record(
            ctx,
            Record {
                outcome,
                reason: reason.as_deref(),
                decision_id: Some(&decision.decision_id),
                rule: Some(&decision.rule.id),
                session: Some(&decision.session.key),
                receiver: Some(&receiver),
                line: Some(line),
                ..Record::default()
            },
        );
    }
    (change, full)
}

/// Signs and pushes one decision to every receiver that takes it, concurrently.
async fn deliver_everywhere(
    ctx: Arc<Shared>,
    decision: DecisionIn,
    line: u64,
    targets: Vec<usize>,
    stop: watch::Receiver<bool>,
) -> Settled {
    let decision = Arc::new(decision);
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|index| {
            let (ctx, decision, stop) = (ctx.clone(), decision.clone(), stop.clone());
            tokio::spawn(async move { deliver_one(&ctx, index, &decision, line, &stop).await })
        })
        .collect();
    let mut settled = Settled::default();
    for task in tasks {
        match task.await.unwrap_or(Outcome::Interrupted) {
            Outcome::Delivered => settled.delivered += 1,
            Outcome::Refused(_) => settled.refused += 1,
            Outcome::Failed(_) => settled.failed += 1,
            Outcome::Interrupted => settled.interrupted = true,
        }
    }
    settled
}

async fn deliver_one(
    ctx: &Shared,
    index: usize,
    decision: &DecisionIn,
    line: u64,
    stop: &watch::Receiver<bool>,
) -> Outcome {
    let pusher = &ctx.pushers[index];
    let receiver = pusher.settings.name.as_str();
    let base = Record {
        decision_id: Some(&decision.decision_id),
        rule: Some(&decision.rule.id),
        session: Some(&decision.session.key),
        receiver: Some(receiver),
        line: Some(line),
        ..Record::default()
    };
    let request = match outgoing(ctx, pusher, decision) {
        Ok(request) => request,
        Err(e) => {
            let reason = format!("{e:#}");
            ctx.metrics.delivery(receiver, "refused", 0, None);
            write_record(
                ctx,
                Record {
                    outcome: "refused",
                    reason: Some(&reason),
                    attempts: Some(0),
                    ..base
                },
            );
            return Outcome::Refused(reason);
        }
    };
    if pusher.settings.dry_run {
        let call = format!("{} {}", request.method, request.uri);
        telemetry::log(
            Level::Info,
            "dry_run_call",
            "dry_run: the call is built, not sent",
            &[("receiver", V::S(receiver)), ("call", V::S(&call))],
        );
        ctx.metrics.delivery(receiver, "dry_run", 0, None);
        write_record(
            ctx,
            Record {
                outcome: "dry_run",
                reason: Some(&call),
                attempts: Some(0),
                ..base
            },
        );
        return Outcome::Delivered;
    }
    let on_retry = |reason: &str| {
        ctx.metrics.retry(receiver);
        telemetry::log(
            Level::Warn,
            "delivery_retried",
            "a delivery attempt failed; retrying",
            &[("receiver", V::S(receiver)), ("reason", V::S(reason))],
        );
    };
    let delivery = pusher.deliver(&request, stop, &on_retry).await;
    let (outcome, reason) = match &delivery.outcome {
        Outcome::Delivered => ("delivered", None),
        Outcome::Refused(r) => ("refused", Some(r.as_str())),
        Outcome::Failed(r) => ("failed", Some(r.as_str())),
        Outcome::Interrupted => return Outcome::Interrupted,
    };
    let end_to_end = now_ms() - decision.time_ms();
    ctx.metrics.delivery(
        receiver,
        outcome,
        delivery.latency.as_micros() as u64,
        Some(end_to_end),
    );
    if outcome != "delivered" {
        telemetry::log(
            Level::Warn,
            "delivery_not_done",
            "a SET was not delivered",
            &[
                ("receiver", V::S(receiver)),
                ("outcome", V::S(outcome)),
                ("reason", V::S(reason.unwrap_or(""))),
            ],
        );
    }
    write_record(
        ctx,
        Record {
            outcome,
            reason,
            attempts: Some(delivery.attempts),
            status: delivery.status,
            latency_ms: Some(delivery.latency.as_secs_f64() * 1000.0),
            decision_to_ack_ms: Some(end_to_end),
            ..base
        },
    );
    delivery.outcome
}

/// The request for `decision` at this receiver: a signed SET, or the vendor's call. An error
/// is a refusal (the decision lacks what the receiver needs).
fn outgoing(ctx: &Shared, pusher: &Pusher, decision: &DecisionIn) -> Result<push::Outgoing> {
    let settings = &pusher.settings;
    if settings.kind == vendor::Kind::Ssf {
        let subject = settings.subject.subject(decision)?;
        let event = set::event_for(decision, |e| settings.events.contains(&e))
            .context("the receiver takes no CAEP event for this decision")?;
        let claims = set::claims(
            &ctx.issuer,
            settings.audience.as_deref(),
            subject,
            decision,
            event,
            now_ms() / 1000,
        );
        return Ok(push::Outgoing::set(
            &settings.endpoint,
            ctx.signer.sign(&claims)?,
        ));
    }
    let call = match (&settings.github, settings.kind) {
        (Some(target), vendor::Kind::Github) => github::call(target, decision)?,
        _ => vendor::call(settings.kind, decision)?,
    };
    let base = settings.endpoint.to_string();
    let uri = format!("{}{}", base.trim_end_matches('/'), call.path)
        .parse()
        .context("the vendor call's URL")?;
    Ok(push::Outgoing {
        method: call.method,
        uri,
        content_type: call.content_type,
        body: call.body,
        headers: call.headers,
        absent_is_done: call.absent_is_done,
    })
}
