//! sessionguard: a streaming detection engine for session security.
//!
//! It watches what already-authenticated sessions do — people, service accounts, API keys,
//! autonomous agents — and decides to end a session when it turns unsafe.
//!
//! # Data flow
//!
//! ```text
//! audit records (Kafka topics, NDJSON / JSON / gzip files, standard input)
//!   → source     framing: one record at a time, with its origin (file:line, topic/partition/offset)
//!   → evaluator  the one per-record path every driver shares:
//!       → event    normalize: detect the vendor, parse once borrowing the input, key by session
//!       → time     per-source clocks; the future guard; lateness is per session, within a grace
//!       → engine   per-session state on event time, order-robust; rules; timers per source
//!   → decision   kill / step-up / alert with evidence and CAEP claims, made on the record that
//!                completes it
//! ```
//!
//! # Layout
//!
//! - [`event`]: the event model, source adapters (six audit sources; an MCP gateway's audit log
//!   and OpenTelemetry GenAI spans for agents' tool calls), session keys, reject reasons.
//! - [`source`]: reading records from files (plain or gzip; NDJSON, arrays, CloudTrail envelopes;
//!   Parquet rows as JSON records).
//! - [`time`]: the time model: per-source clocks, graces, quiet sources, the future guard.
//! - [`engine`]: the session table, order-robust windows, baselines and sequences, timers, kills.
//! - [`evaluator`]: normalize → time → engine → decisions, behind a [`evaluator::Sink`].
//! - [`grant`]: task grants of autonomous agents as data — task records (grant, completion)
//!   from `--tasks` files, inline records or a topic, and the table `agent_grant` rules check
//!   events against, in event time (docs/agents.md).
//! - [`rule`]: the rule language: YAML with positions, compiler, matching, field references.
//! - [`decision`]: decision records, deterministic ids, CAEP claims.
//! - [`replay`]: files, archives or standard input through the evaluator; sharded on N threads;
//!   `backtest`: two rule sets over the same history, and the decision diff between them.
//! - `history` (with the `parquet` feature): the archive — events and decisions as Parquet,
//!   partitioned by date and source — reading it back in its original order, `explain`
//!   (a session's timeline) and, with the `history` feature, `query` (SQL, DataFusion).
//! - `kafka`: `run`, `rekey`, `demo`: consumer loop, delivery, offsets, progress topic, the
//!   pipeline's named events.
//! - `actuate`: `sessionguard actuate`: decisions to Shared Signals receivers as signed CAEP
//!   Security Event Tokens (push delivery with retries and a circuit breaker), SSF 1.0 streams
//!   receivers manage themselves (push or poll), direct actuators (Okta, Graph, AWS, GitHub,
//!   Kubernetes), the blast-radius guard, actuation records, the SSF metadata and JWKS
//!   endpoints (docs/actuation.md).
//! - [`gen`]: the traffic generator (its own crate, `crates/sessionguard-gen`: synthetic
//!   multi-source traffic with injected attacks, sorted or in delivery order) in the engine's
//!   types, for tests and benches.
//! - [`scenarios`]: the scenario fixtures' ground truth, and decisions set beside it (the demo).
//! - [`config`], [`cli`], `telemetry`, [`sink`], [`units`]: settings (with librdkafka properties
//!   and their secrets), the command line, metrics and health, output writers, durations, sizes
//!   and counts in words.
//!
//! Dependencies point one way (`cli` → `kafka`/`replay` → `evaluator` → `engine` → `rule` →
//! `event`); `scripts/structure.py` checks there is no cycle. How to add a source, a rule logic
//! or a sink: CONTRIBUTING.md.

#![forbid(unsafe_code)]

#[cfg(feature = "actuate")]
pub mod actuate;
pub mod cli;
pub mod config;
pub mod decision;
pub mod engine;
pub mod evaluator;
pub mod event;
pub mod gen;
pub mod grant;
#[cfg(feature = "parquet")]
pub mod history;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod replay;
pub mod rule;
pub mod scenarios;
pub mod sink;
pub mod source;
#[cfg(feature = "kafka")]
pub mod telemetry;
pub mod time;
pub mod units;
