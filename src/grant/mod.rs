//! Task grants: what an autonomous agent was approved to do for one task, as data.
//!
//! A grant names an agent and a task, the actions/tools and resources allowed, the roles the
//! agent may chain into, when it expires, budgets, and how sessions are bound to it. Grants and
//! completions arrive as task records ([`record`]) from `tasks/` files, a topic, or inline among
//! audit records; the [`GrantTable`] keeps them keyed by `(agent, task)` and answers, for one
//! event at its event time, which grant binds it and whether the event is within it
//! ([`GrantTable::check`]). The engine's `agent_grant` rules turn the answers into decisions
//! (docs/agents.md).
//!
//! The table's state after a set of records does not depend on their order: a grant's start is
//! the earliest grant record's time, its terms are the latest grant record's (ties: the last
//! applied with equal time and content is the same), its completion the earliest completion's.
//! An event is checked against the records applied before it arrives.

pub mod pattern;
pub mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bumpalo::Bump;
use smallvec::SmallVec;

use crate::event::Event;
use crate::rule::field::{Field, Value};
pub use pattern::Pattern;
pub use record::{
    is_task_record, Budget, TaskRecord, TaskRecordError, TaskRecordKind, Terms, COMPLETE_TYPE,
    GRANT_TYPE,
};

/// One task's grant as the table holds it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub agent: Box<str>,
    pub task: Box<str>,
    /// When the grant took effect ([`NOT_GRANTED`] while only a completion is known).
    pub granted: i64,
    /// The terms of the latest grant record, with its time.
    pub terms: Option<(i64, Box<Terms>)>,
    /// When the task completed ([`OPEN`] when it has not).
    pub completed: i64,
}

/// `Grant::granted` of a task known only from its completion.
pub const NOT_GRANTED: i64 = i64::MAX;
/// `Grant::completed` of an open task.
pub const OPEN: i64 = i64::MAX;

impl Grant {
    /// Where the grant stops being in force: its completion or its expiry, the earlier.
    pub fn end(&self) -> i64 {
        let expires = self
            .terms
            .as_ref()
            .and_then(|(_, t)| t.expires)
            .unwrap_or(OPEN);
        self.completed.min(expires)
    }

    fn in_force_at(&self, t: i64) -> bool {
        self.terms.is_some() && self.granted <= t && t < self.end()
    }

    pub fn terms(&self) -> Option<&Terms> {
        self.terms.as_ref().map(|(_, t)| &**t)
    }
}

/// What the table says about one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// No grant binds the event: the agent (if any) is not governed by grants.
    Unbound,
    /// The event's agent has grants, but none in force at the event's time (none started yet, or
    /// the task the event names has none).
    NoGrantInForce { agent: Box<str> },
    /// Every grant binding the event had ended by its time.
    Ended { grant: u32, completed: bool },
    /// A grant is in force and allows the event.
    Within { grant: u32 },
    /// A grant is in force, but no grant in force allows the action (or the resource).
    Outside { grant: u32, what: Box<str> },
    /// The event issues a session into a role no grant in force names.
    UnnamedRole { grant: u32, role: Box<str> },
}

/// Grants (table indexes) by the value a field must have to bind an event to them.
type GrantsByValue = HashMap<Box<str>, SmallVec<[u32; 2]>>;

/// Every grant known, keyed for the lookups an event needs.
#[derive(Clone, Debug, Default)]
pub struct GrantTable {
    grants: Vec<Grant>,
    by_task: HashMap<(Box<str>, Box<str>), u32>,
    by_agent: HashMap<Box<str>, SmallVec<[u32; 2]>>,
    /// Fields grants bind by (beyond `agent.id`), each with value → grants.
    bind_fields: Vec<(Field, GrantsByValue)>,
    records: u64,
}

impl GrantTable {
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Task records applied so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn grant(&self, index: u32) -> &Grant {
        &self.grants[index as usize]
    }

    /// Applies a grant or completion.
    pub fn apply(&mut self, record: &TaskRecord) {
        self.records += 1;
        let key = (record.agent.clone(), record.task.clone());
        let index = match self.by_task.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.grants.len() as u32;
                self.grants.push(Grant {
                    agent: record.agent.clone(),
                    task: record.task.clone(),
                    granted: NOT_GRANTED,
                    terms: None,
                    completed: OPEN,
                });
                self.by_task.insert(key, i);
                self.by_agent
                    .entry(record.agent.clone())
                    .or_default()
                    .push(i);
                i
            }
        };
        let grant = &mut self.grants[index as usize];
        match &record.kind {
            TaskRecordKind::Complete => grant.completed = grant.completed.min(record.time),
            TaskRecordKind::Grant(terms) => {
                grant.granted = grant.granted.min(record.time);
                let newer = grant
                    .terms
                    .as_ref()
                    .is_none_or(|(at, _)| record.time >= *at);
                if newer {
                    grant.terms = Some((record.time, terms.clone()));
                    for (field, value) in &terms.bind {
                        self.bind(index, field, value);
                    }
                }
            }
        }
    }

    fn bind(&mut self, index: u32, field: &Field, value: &str) {
        let slot = match self.bind_fields.iter().position(|(f, _)| f == field) {
            Some(slot) => slot,
            None => {
                self.bind_fields.push((field.clone(), HashMap::new()));
                self.bind_fields.len() - 1
            }
        };
        let grants = self.bind_fields[slot].1.entry(value.into()).or_default();
        if !grants.contains(&index) {
            grants.push(index);
        }
    }

    /// The grants that bind `event`: by its `agent.id` (and `agent.task` when it names one),
    /// and by any field a grant binds by. In table order, without repeats.
    fn bound(&self, event: &Event<'_>, scratch: &Bump, out: &mut SmallVec<[u32; 4]>) {
        out.clear();
        if let Some(agent) = event.agent.as_ref().and_then(|a| a.id.as_deref()) {
            match event.agent.as_ref().and_then(|a| a.task.as_deref()) {
                Some(task) => {
                    let key = (Box::<str>::from(agent), Box::<str>::from(task));
                    if let Some(&i) = self.by_task.get(&key) {
                        out.push(i);
                    }
                }
                None => out.extend(self.by_agent.get(agent).into_iter().flatten().copied()),
            }
        }
        for (field, values) in &self.bind_fields {
            if let Some(value) = value_text(&field.get(event, scratch)) {
                for &i in values.get(value.as_ref()).into_iter().flatten() {
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
        }
    }

    /// Which grant binds `event`, and whether the event is within it, at its event time.
    pub fn check(&self, event: &Event<'_>, scratch: &Bump) -> Check {
        if self.grants.is_empty() {
            return Check::Unbound;
        }
        let mut bound = SmallVec::new();
        self.bound(event, scratch, &mut bound);
        let t = event.time.millis();
        let governed_agent = event
            .agent
            .as_ref()
            .and_then(|a| a.id.as_deref())
            .filter(|a| self.by_agent.contains_key(*a));
        let started: SmallVec<[u32; 4]> = bound
            .iter()
            .copied()
            .filter(|&i| {
                let g = &self.grants[i as usize];
                g.terms.is_some() && g.granted <= t
            })
            .collect();
        if started.is_empty() {
            return match governed_agent {
                Some(agent) => Check::NoGrantInForce {
                    agent: agent.into(),
                },
                None => Check::Unbound,
            };
        }
        let mut in_force: SmallVec<[u32; 4]> = started
            .iter()
            .copied()
            .filter(|&i| self.grants[i as usize].in_force_at(t))
            .collect();
        // The grant a finding names: the earliest granted, then by agent and task, so that the
        // answer does not depend on the order records arrived in.
        let key = |i: &u32| {
            let g = &self.grants[*i as usize];
            (g.granted, g.agent.clone(), g.task.clone())
        };
        in_force.sort_by_key(key);
        let Some(&first) = in_force.first() else {
            let last = started
                .iter()
                .copied()
                .max_by_key(|&i| (self.grants[i as usize].end(), key(&i)))
                .expect("started is not empty");
            let g = &self.grants[last as usize];
            return Check::Ended {
                grant: last,
                completed: g.completed <= t,
            };
        };
        let terms = in_force
            .iter()
            .filter_map(|&i| self.grants[i as usize].terms());
        if let Some(role) = event.lineage.as_ref().and_then(|l| l.child_role.as_deref()) {
            let named = terms
                .clone()
                .any(|g| g.roles.iter().any(|p| p.matches(role)));
            return if named {
                Check::Within { grant: first }
            } else {
                Check::UnnamedRole {
                    grant: first,
                    role: role.into(),
                }
            };
        }
        let action = event.action.to_string();
        let resources = resource_names(event);
        let mut action_allowed = false;
        for g in terms {
            if !g.actions.iter().any(|p| p.matches(&action)) {
                continue;
            }
            action_allowed = true;
            let resource_ok = g.resources.is_empty()
                || resources.is_empty()
                || g.resources
                    .iter()
                    .any(|p| resources.iter().any(|r| p.matches(r)));
            if resource_ok {
                return Check::Within { grant: first };
            }
        }
        let what = if action_allowed {
            format!(
                "resource {} is not in the grant",
                resources.first().map_or("", String::as_str)
            )
        } else {
            format!("action {action} is not in the grant")
        };
        Check::Outside {
            grant: first,
            what: what.into(),
        }
    }
}

/// A field's value as the text a `bind` value is compared with: strings as they are (a vendor
/// string unescaped), numbers, flags and addresses in their usual form; lists and objects never.
fn value_text<'v>(value: &Value<'v>) -> Option<std::borrow::Cow<'v, str>> {
    use std::borrow::Cow;
    match value {
        Value::Str(s) => Some(Cow::Borrowed(*s)),
        Value::Pair(a, b) => Some(Cow::Owned(format!("{a}:{b}"))),
        Value::Key(k) => Some(Cow::Owned(k.to_string())),
        Value::Int(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        Value::Ip(ip) => Some(Cow::Owned(ip.to_string())),
        Value::Raw(raw) => {
            let json = raw.get();
            if json.starts_with('"') {
                serde_json::from_str::<String>(json).ok().map(Cow::Owned)
            } else if json.starts_with(['{', '[']) || json == "null" {
                None
            } else {
                Some(Cow::Borrowed(json))
            }
        }
        Value::Missing | Value::List(_) | Value::Record(_) => None,
    }
}

/// The names a grant's resource patterns are matched against: `container/name` (an S3 bucket
/// and key, a namespace and name), else the container or the name alone; and the id (an ARN).
pub fn resource_names(event: &Event<'_>) -> SmallVec<[String; 2]> {
    let mut out = SmallVec::new();
    let Some(r) = event.resource.as_ref() else {
        return out;
    };
    match (r.container.as_deref(), r.name.as_deref()) {
        (Some(c), Some(n)) => out.push(format!("{c}/{n}")),
        (Some(one), None) | (None, Some(one)) => out.push(one.to_owned()),
        (None, None) => {}
    }
    if let Some(id) = r.id.as_deref() {
        out.push(id.to_owned());
    }
    out
}

/// A problem reading a tasks file, with where it is.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    /// The record's line (NDJSON) or document number (YAML), from 1; 0 for the whole file.
    pub at: usize,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.at > 0 {
            write!(f, ":{}", self.at)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads every task record of `paths` (files, or directories read for `*.yml`, `*.yaml`,
/// `*.json`, `*.jsonl`, `*.ndjson`, in name order). Every problem of every file is reported
/// before failing; nothing is returned then.
pub fn load(paths: &[PathBuf]) -> Result<Vec<TaskRecord>, Vec<LoadError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && task_file_kind(p).is_some())
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(LoadError {
                    path: path.clone(),
                    at: 0,
                    message: e.to_string(),
                }),
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut records = Vec::new();
    for file in &files {
        read_file(file, &mut records, &mut errors);
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TaskFileKind {
    Yaml,
    Json,
}

fn task_file_kind(path: &Path) -> Option<TaskFileKind> {
    match path.extension()?.to_str()? {
        "yml" | "yaml" => Some(TaskFileKind::Yaml),
        "json" | "jsonl" | "ndjson" => Some(TaskFileKind::Json),
        _ => None,
    }
}

fn read_file(path: &Path, records: &mut Vec<TaskRecord>, errors: &mut Vec<LoadError>) {
    let error = |at: usize, message: String| LoadError {
        path: path.to_path_buf(),
        at,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return errors.push(error(0, e.to_string())),
    };
    match task_file_kind(path) {
        Some(TaskFileKind::Yaml) => {
            let docs: Result<Vec<record::RecordSpec>, _> = serde_saphyr::from_multiple(&text);
            match docs {
                Ok(docs) => {
                    for (n, doc) in docs.into_iter().enumerate() {
                        match doc.build() {
                            Ok(r) => records.push(r),
                            Err(e) => errors.push(error(n + 1, e.0)),
                        }
                    }
                }
                Err(e) => errors.push(error(0, e.to_string())),
            }
        }
        Some(TaskFileKind::Json) => {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match TaskRecord::from_json(line.as_bytes()) {
                    Ok(r) => records.push(r),
                    Err(e) => errors.push(error(n + 1, e.0)),
                }
            }
        }
        None => errors.push(error(
            0,
            "not a tasks file: expected .yml, .yaml, .json, .jsonl or .ndjson".to_owned(),
        )),
    }
}
