//! sessionguard: a streaming detection engine for session security.
//!
//! It watches what already-authenticated sessions do — people, service accounts, API keys,
//! autonomous agents — and decides to end a session when it turns unsafe.
//!
//! # Data flow
//!
//! ```text
//! audit records (Kafka topics, NDJSON / JSON / gzip files)
//!   → source    framing: one record at a time, with its origin (file:line)
//!   → event     normalize: detect the vendor, parse once borrowing the input, key by session
//!   → engine    per-session state on event time, rules        (next milestone)
//!   → decision  kill / step-up / alert with evidence           (next milestone)
//! ```
//!
//! # Layout
//!
//! - [`event`]: the event model, source adapters, session keys, reject reasons.
//! - [`source`]: reading records from files (plain or gzip; NDJSON, arrays, CloudTrail envelopes).
//! - [`cli`]: the `sessionguard` command line.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod decision;
pub mod engine;
pub mod evaluator;
pub mod event;
pub mod gen;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod replay;
pub mod rule;
pub mod sink;
pub mod source;
#[cfg(feature = "kafka")]
pub mod telemetry;
pub mod time;
pub mod units;
