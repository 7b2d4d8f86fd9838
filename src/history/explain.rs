//! `sessionguard explain`: one session's story from an archive — its lineage (the session
//! that issued it, the sessions it issued, the role chain up to its root, as AWS `AssumeRole*`
//! chains record them), its events, each rule's state on it as it moved, and the decisions
//! taken on it, as one time-ordered terminal timeline (the HTML page is [`super::page`]).
//!
//! The archive is scanned with only the columns the timeline shows; a row is kept when it
//! belongs to the session, or names it as the child it issued (the parent's issuing event).
//! Rule states are not archived: they are rebuilt by replaying the archived records of the
//! session and of the sessions it descends from (so an inherited sequence step shows) through
//! the rules given, one record at a time, noting each rule's state on the session after each.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::archive::Manifest;
use crate::engine::{Engine, EngineConfig};
use crate::evaluator::{Evaluator, Sink};
use crate::event::{Normalizer, Reject, Timestamp};
use crate::rule::RuleSet;
use crate::source::Origin;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub time: i64,
    /// Order among entries of the same time: events by `seq` (each followed by the rule
    /// states it moved), decisions after them.
    pub order: (u8, u64, u8),
    pub text: String,
}

/// One archived event of the session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventRow {
    pub seq: u64,
    pub time: i64,
    pub action: String,
    pub outcome: String,
    pub src_ip: Option<String>,
    pub user_agent: Option<String>,
    pub bytes: Option<u64>,
    /// `file:line` (or `kafka://topic/partition:offset`) it was read from.
    pub origin: String,
}

/// One decision on the session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionRow {
    pub seq: u64,
    pub time: i64,
    pub rule_id: String,
    pub action: String,
    pub severity: String,
    pub reason: String,
}

/// A rule's state on the session after the record `seq` moved it.
#[derive(Clone, Debug, PartialEq)]
pub struct StateRow {
    pub seq: u64,
    pub time: i64,
    pub rule_id: String,
    pub logic: &'static str,
    pub state: String,
}

/// What the archive says about one session.
#[derive(Debug, Default)]
pub struct Story {
    pub key: String,
    /// The session that issued this one, and the event that did (time, action).
    pub parent: Option<(String, i64, String)>,
    /// Sessions this one issued: (child key, time, action, role).
    pub children: Vec<(String, i64, String, String)>,
    /// The role chain up to the root, parent first, as decisions on it recorded it.
    pub chain: Vec<String>,
    pub root: Option<String>,
    /// Its events and decisions, in time order.
    pub events: Vec<EventRow>,
    pub decisions: Vec<DecisionRow>,
    /// Each rule's state as it moved ([`Story::replay_states`]); empty until then.
    pub states: Vec<StateRow>,
}

pub(super) fn time_text(ms: i64) -> String {
    Timestamp(ms).to_string()
}

/// Calls `each` with every batch of `table`'s files (only `columns` decoded).
fn scan(
    dir: &Path,
    manifest: &Manifest,
    table: &str,
    columns: &[&str],
    each: &mut dyn FnMut(&RecordBatch),
) -> Result<()> {
    for file in manifest
        .files
        .iter()
        .filter(|f| f.starts_with(&format!("{table}/")))
    {
        let path = dir.join(file);
        let open = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(open)
            .with_context(|| format!("reading {}", path.display()))?;
        let roots: Vec<usize> = builder
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| columns.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        for batch in builder.with_projection(mask).build()? {
            each(&batch.with_context(|| format!("decoding {}", path.display()))?);
        }
    }
    Ok(())
}

/// A string column's value, `None` when null or absent.
fn text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch.column_by_name(column)?.as_string_opt::<i32>()?;
    (!array.is_null(row)).then(|| array.value(row).to_owned())
}

fn millis(batch: &RecordBatch, column: &str, row: usize) -> i64 {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .map_or(0, |a| a.value(row))
}

fn number(batch: &RecordBatch, column: &str, row: usize) -> Option<u64> {
    let array = batch
        .column_by_name(column)?
        .as_primitive_opt::<UInt64Type>()?;
    (!array.is_null(row)).then(|| array.value(row))
}

/// Reads the story of session `key` from the archive at `dir`.
pub fn story(dir: &Path, key: &str) -> Result<Story> {
    if !super::is_archive(dir) {
        bail!(
            "{}: not an archive (no {}); write one with `sessionguard archive LOGS --to DIR`",
            dir.display(),
            super::MANIFEST
        );
    }
    let manifest = Manifest::read(dir)?;
    let mut story = Story {
        key: key.to_owned(),
        ..Story::default()
    };
    let columns = [
        "seq",
        "time",
        "session_key",
        "action",
        "outcome",
        "src_ip",
        "user_agent",
        "bytes",
        "lineage_child",
        "lineage_child_role",
        "origin_file",
        "origin_line",
    ];
    scan(dir, &manifest, "events", &columns, &mut |batch| {
        for row in 0..batch.num_rows() {
            let session = text(batch, "session_key", row).unwrap_or_default();
            let child = text(batch, "lineage_child", row);
            let action = text(batch, "action", row).unwrap_or_default();
            let time = millis(batch, "time", row);
            if child.as_deref() == Some(key) && session != key {
                story.parent = Some((session.clone(), time, action.clone()));
            }
            if session != key {
                continue;
            }
            if let Some(child) = child.filter(|c| c != key) {
                let role = text(batch, "lineage_child_role", row).unwrap_or_default();
                story.children.push((child, time, action.clone(), role));
            }
            story.events.push(EventRow {
                seq: number(batch, "seq", row).unwrap_or(0),
                time,
                action,
                outcome: text(batch, "outcome", row).unwrap_or_default(),
                src_ip: text(batch, "src_ip", row),
                user_agent: text(batch, "user_agent", row),
                bytes: number(batch, "bytes", row),
                origin: format!(
                    "{}:{}",
                    text(batch, "origin_file", row).unwrap_or_default(),
                    number(batch, "origin_line", row).unwrap_or(0)
                ),
            });
        }
    })?;
    let columns = [
        "seq",
        "time",
        "session_key",
        "rule_id",
        "action",
        "severity",
        "reason",
        "session_chain",
        "session_root",
    ];
    scan(dir, &manifest, "decisions", &columns, &mut |batch| {
        for row in 0..batch.num_rows() {
            if text(batch, "session_key", row).as_deref() != Some(key) {
                continue;
            }
            if story.decisions.is_empty() {
                if let Some(list) = batch
                    .column_by_name("session_chain")
                    .and_then(|c| c.as_list_opt::<i32>())
                {
                    let links = list.value(row);
                    if let Some(links) = links.as_string_opt::<i32>() {
                        story.chain = links.iter().flatten().map(str::to_owned).collect();
                    }
                }
                story.root = text(batch, "session_root", row);
            }
            story.decisions.push(DecisionRow {
                seq: number(batch, "seq", row).unwrap_or(0),
                time: millis(batch, "time", row),
                rule_id: text(batch, "rule_id", row).unwrap_or_default(),
                action: text(batch, "action", row).unwrap_or_default(),
                severity: text(batch, "severity", row).unwrap_or_default(),
                reason: text(batch, "reason", row).unwrap_or_default(),
            });
        }
    })?;
    if story.events.is_empty() && story.decisions.is_empty() && story.parent.is_none() {
        bail!(
            "no session {key} in the archive at {} (session keys look like \
             aws:123456789012:sts:ASIA…, okta:…; `sessionguard query \"SELECT DISTINCT \
             session_key FROM events\"` lists them)",
            dir.display()
        );
    }
    story.events.sort_by_key(|e| (e.time, e.seq));
    story.decisions.sort_by_key(|d| (d.time, d.seq));
    story.children.sort();
    Ok(story)
}

/// A sink that keeps nothing: replaying for rule states needs only the engine's state.
struct Discard;

impl Sink for Discard {
    fn decision(&mut self, _: &crate::decision::Decision) -> std::io::Result<()> {
        Ok(())
    }

    fn reject(&mut self, _: Origin, _: &Reject, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

impl Story {
    /// Rebuilds each rule's state on the session as it moved: the archived records of the
    /// session and of the sessions it descends from (its parent, its chain), in the order they
    /// were first read, through `rules` on an engine of default settings; after each record,
    /// every rule whose state on the session changed gets a row.
    pub fn replay_states(&mut self, dir: &Path, rules: Arc<RuleSet>) -> Result<()> {
        let manifest = Manifest::read(dir)?;
        let mut keys: Vec<&str> = vec![self.key.as_str()];
        keys.extend(self.chain.iter().map(String::as_str));
        if let Some((parent, ..)) = &self.parent {
            keys.push(parent);
        }
        let mut records: Vec<(u64, i64, String)> = Vec::new();
        let columns = ["seq", "time", "session_key", "raw"];
        scan(dir, &manifest, "events", &columns, &mut |batch| {
            for row in 0..batch.num_rows() {
                let session = text(batch, "session_key", row).unwrap_or_default();
                if keys.contains(&session.as_str()) {
                    let seq = number(batch, "seq", row).unwrap_or(0);
                    let raw = text(batch, "raw", row).unwrap_or_default();
                    records.push((seq, millis(batch, "time", row), raw));
                }
            }
        })?;
        records.sort_by_key(|r| r.0);
        let engine = Engine::with_shared_rules(rules, EngineConfig::default());
        let mut evaluator = Evaluator::new(engine, Normalizer::default());
        let mut last: HashMap<String, String> = HashMap::new();
        let mut states = Vec::new();
        for (seq, time, raw) in records {
            let origin = Origin::File { file: 0, line: seq };
            evaluator.push(raw.as_bytes(), origin, &mut Discard)?;
            for mut view in evaluator.engine().rule_states(&self.key) {
                if view.decisions > 0 {
                    let decided = crate::units::plural(view.decisions as usize, "decision");
                    view.state = format!("{}; {decided} so far", view.state);
                }
                if last.get(&view.rule_id) == Some(&view.state) {
                    continue;
                }
                last.insert(view.rule_id.clone(), view.state.clone());
                states.push(StateRow {
                    seq,
                    time,
                    rule_id: view.rule_id,
                    logic: view.logic,
                    state: view.state,
                });
            }
        }
        self.states = states;
        Ok(())
    }

    /// The timeline: events, the rule states each moved, decisions, in time order.
    pub fn timeline(&self) -> Vec<Entry> {
        let mut timeline = Vec::new();
        for e in &self.events {
            let mut line = format!("{:<9} {} {}", "event", e.action, e.outcome);
            if let Some(ip) = &e.src_ip {
                let _ = write!(line, " from {ip}");
            }
            if let Some(bytes) = e.bytes {
                let _ = write!(line, " ({bytes} bytes)");
            }
            let _ = write!(line, "  [{}]", e.origin);
            timeline.push(Entry {
                time: e.time,
                order: (0, e.seq, 0),
                text: line,
            });
        }
        for s in &self.states {
            timeline.push(Entry {
                time: s.time,
                order: (0, s.seq, 1),
                text: format!("{:<9} {} {}: {}", "state", s.rule_id, s.logic, s.state),
            });
        }
        for d in &self.decisions {
            timeline.push(Entry {
                time: d.time,
                order: (1, d.seq, 0),
                text: format!("{:<9} {} {}: {}", "DECISION", d.rule_id, d.action, d.reason),
            });
        }
        timeline.sort_by_key(|e| (e.time, e.order));
        timeline
    }
}

impl Story {
    /// The terminal timeline.
    /// The terminal timeline. Control characters from records (an escape sequence in a user
    /// agent could rewrite the analyst's terminal) are shown escaped.
    pub fn render(&self) -> String {
        self.render_raw()
            .split_inclusive('\n')
            .map(|line| {
                let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
                let mut shown: String = body
                    .chars()
                    .map(|c| {
                        if c.is_control() {
                            c.escape_default().to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                shown.push_str(end);
                shown
            })
            .collect()
    }

    fn render_raw(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "session {}", self.key);
        match &self.parent {
            Some((parent, time, action)) => {
                let _ = writeln!(
                    s,
                    "  parent    {parent}  (issued it with {action} at {})",
                    time_text(*time)
                );
            }
            None => {
                let _ = writeln!(s, "  parent    none in the archive");
            }
        }
        if !self.chain.is_empty() {
            let mut links: Vec<&str> = self.chain.iter().rev().map(String::as_str).collect();
            links.push("this session");
            let _ = writeln!(s, "  chain     {}", links.join(" → "));
        }
        if let Some(root) = &self.root {
            let _ = writeln!(s, "  root      {root}");
        }
        for (child, time, action, role) in &self.children {
            let role = if role.is_empty() {
                String::new()
            } else {
                format!(" as {role}")
            };
            let _ = writeln!(
                s,
                "  child     {child}  ({action}{role} at {})",
                time_text(*time)
            );
        }
        let _ = writeln!(
            s,
            "  {} events, {} decisions\n",
            self.events.len(),
            self.decisions.len()
        );
        for entry in self.timeline() {
            // A record's own line breaks stay inside its line.
            let text = entry.text.replace('\n', "\\n");
            let _ = writeln!(s, "{}  {text}", time_text(entry.time));
        }
        s
    }
}
