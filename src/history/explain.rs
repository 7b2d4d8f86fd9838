//! `sessionguard explain`: one session's story from an archive — its lineage (the session
//! that issued it, the sessions it issued, the role chain up to its root, as AWS `AssumeRole*`
//! chains record them), its events and the decisions taken on it, as one time-ordered
//! terminal timeline.
//!
//! The archive is scanned with only the columns the timeline shows; a row is kept when it
//! belongs to the session, or names it as the child it issued (the parent's issuing event).

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::archive::Manifest;
use crate::event::Timestamp;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub time: i64,
    /// Order among entries of the same time: events by `seq`, decisions after them.
    pub order: (u8, u64),
    pub text: String,
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
    pub events: u64,
    pub decisions: u64,
    pub timeline: Vec<Entry>,
}

fn time_text(ms: i64) -> String {
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
            story.events += 1;
            if let Some(child) = child.filter(|c| c != key) {
                let role = text(batch, "lineage_child_role", row).unwrap_or_default();
                story.children.push((child, time, action.clone(), role));
            }
            let mut line = format!(
                "{:<9} {action} {}",
                "event",
                text(batch, "outcome", row).unwrap_or_default()
            );
            if let Some(ip) = text(batch, "src_ip", row) {
                let _ = write!(line, " from {ip}");
            }
            if let Some(bytes) = number(batch, "bytes", row) {
                let _ = write!(line, " ({bytes} bytes)");
            }
            let _ = write!(
                line,
                "  [{}:{}]",
                text(batch, "origin_file", row).unwrap_or_default(),
                number(batch, "origin_line", row).unwrap_or(0)
            );
            story.timeline.push(Entry {
                time,
                order: (0, number(batch, "seq", row).unwrap_or(0)),
                text: line,
            });
        }
    })?;
    let columns = [
        "seq",
        "time",
        "session_key",
        "rule_id",
        "action",
        "reason",
        "session_chain",
        "session_root",
    ];
    scan(dir, &manifest, "decisions", &columns, &mut |batch| {
        for row in 0..batch.num_rows() {
            if text(batch, "session_key", row).as_deref() != Some(key) {
                continue;
            }
            story.decisions += 1;
            if story.chain.is_empty() {
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
            story.timeline.push(Entry {
                time: millis(batch, "time", row),
                order: (1, number(batch, "seq", row).unwrap_or(0)),
                text: format!(
                    "{:<9} {} {}: {}",
                    "DECISION",
                    text(batch, "rule_id", row).unwrap_or_default(),
                    text(batch, "action", row).unwrap_or_default(),
                    text(batch, "reason", row).unwrap_or_default()
                ),
            });
        }
    })?;
    if story.events == 0 && story.decisions == 0 && story.parent.is_none() {
        bail!(
            "no session {key} in the archive at {} (session keys look like \
             aws:123456789012:sts:ASIA…, okta:…; `sessionguard query \"SELECT DISTINCT \
             session_key FROM events\"` lists them)",
            dir.display()
        );
    }
    story.timeline.sort_by_key(|e| (e.time, e.order));
    story.children.sort();
    Ok(story)
}

impl Story {
    /// The terminal timeline.
    pub fn render(&self) -> String {
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
            self.events, self.decisions
        );
        for entry in &self.timeline {
            let _ = writeln!(s, "{}  {}", time_text(entry.time), entry.text);
        }
        s
    }
}
