//! Actuation records: one NDJSON line for what happened to each decision at each receiver —
//! `delivered`, `refused`, `failed`, `held_back` (by the guard), `not_taken` (no receiver takes
//! it), `rejected` (the line is not a decision) — and `alert` lines for the guard's trips,
//! with receiver, attempts and latency. Written as each is settled, in that order, to a file
//! and/or an audit topic (the `kafka:` section's `records_topic`, keyed by decision id).
#![allow(
    clippy::disallowed_methods,
    reason = "a record says when (wall clock) an action was taken"
)]

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::event::Timestamp;

#[derive(Debug, Default, Serialize)]
pub struct Record<'a> {
    /// When the record was written (wall clock).
    pub time: String,
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// From the first attempt to the answer that settled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// From the decision's time to the answer (end to end, across both processes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_to_ack_ms: Option<i64>,
    /// Line number in the decisions input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// Wall-clock now, milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Where records go: a file (appended to), an audit topic, both, or nowhere.
pub struct Records {
    out: Option<Mutex<BufWriter<File>>>,
    topic: Option<(super::topic::AuditProducer, String)>,
}

impl Records {
    pub fn open(
        path: Option<&Path>,
        topic: Option<(super::topic::AuditProducer, String)>,
    ) -> Result<Records> {
        let out = match path {
            None => None,
            Some(path) => Some(Mutex::new(BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening the records file {}", path.display()))?,
            ))),
        };
        Ok(Records { out, topic })
    }

    /// Waits (a bounded time) until the audit topic has every record sent.
    pub fn flush(&self) {
        if let Some((producer, _)) = &self.topic {
            producer.flush();
        }
    }

    /// Writes one record, stamped now; an I/O error is returned for the caller to report.
    pub fn write(&self, mut record: Record<'_>) -> std::io::Result<()> {
        if self.out.is_none() && self.topic.is_none() {
            return Ok(());
        }
        record.time = Timestamp::from_millis(now_ms()).to_string();
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        if let Some((producer, topic)) = &self.topic {
            let key = record.decision_id.or(record.rule).unwrap_or("");
            producer.send(topic, key.as_bytes(), &line);
        }
        let Some(out) = &self.out else { return Ok(()) };
        line.push(b'\n');
        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(&line)?;
        out.flush()
    }
}
