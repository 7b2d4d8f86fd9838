//! Task records: the text form of a grant or a completion (one JSON object, or one YAML
//! document), read into [`TaskRecord`] with every problem named.
//!
//! The same shape arrives in `tasks/` files (`--tasks DIR`), on a topic (`run --tasks-topic`)
//! and inline among audit records; docs/agents.md describes it. A record is recognised by its
//! `type` member (`sessionguard.task.grant` / `sessionguard.task.complete`), never guessed.

use std::fmt;

use serde::Deserialize;

use crate::event::Timestamp;
use crate::rule::field::Field;
use crate::units::{parse_duration_ms, parse_size};

use super::pattern::Pattern;

/// `type` of a grant record.
pub const GRANT_TYPE: &str = "sessionguard.task.grant";
/// `type` of a completion record.
pub const COMPLETE_TYPE: &str = "sessionguard.task.complete";

/// A grant or a completion, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    /// Event time of the record (ms since the epoch): a grant takes effect for events at or
    /// after it, a completion ends the task for events at or after it.
    pub time: i64,
    pub agent: Box<str>,
    pub task: Box<str>,
    pub kind: TaskRecordKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TaskRecordKind {
    Grant(Box<Terms>),
    Complete,
}

/// What a grant allows, until when, within which budgets, and how sessions are bound to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Terms {
    pub objective: Option<Box<str>>,
    /// When the grant expires (ms since the epoch); `None`: when the task completes.
    pub expires: Option<i64>,
    /// Actions and tools (`s3:GetObject`, `s3:List*`, `tool:search_invoices`), case-insensitive.
    pub actions: Vec<Pattern>,
    /// Resources (`invoices-2024/*`, an ARN); empty: any resource. Case-sensitive.
    pub resources: Vec<Pattern>,
    /// Roles the agent may chain into (`arn:aws:iam::*:role/agent-*`), case-insensitive.
    pub roles: Vec<Pattern>,
    pub budget: Budget,
    /// Further ways a session is bound to the grant: a field of the event (`raw.azp`,
    /// `raw.act.sub`, `lineage.source_identity`) equal to a value.
    pub bind: Vec<(Field, Box<str>)>,
}

/// Limits on what one session bound to the grant may do while it is in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    pub calls: Option<u64>,
    pub bytes: Option<u64>,
    pub resources: Option<u64>,
}

impl Budget {
    pub fn is_empty(&self) -> bool {
        self.calls.is_none() && self.bytes.is_none() && self.resources.is_none()
    }
}

/// Why a task record was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecordError(pub String);

impl fmt::Display for TaskRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TaskRecordError {}

/// The serde form: mirrors the text, checked by [`RecordSpec::build`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    #[serde(rename = "type")]
    kind: String,
    time: String,
    agent: String,
    task: String,
    #[serde(default)]
    objective: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    allow: Option<AllowSpec>,
    #[serde(default)]
    budget: Option<BudgetSpec>,
    #[serde(default)]
    bind: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSpec {
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSpec {
    #[serde(default)]
    calls: Option<u64>,
    #[serde(default)]
    bytes: Option<SizeSpec>,
    #[serde(default)]
    resources: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeSpec {
    Number(u64),
    Text(String),
}

/// Whether a JSON record names itself a task record (its top-level `type`). Cheap enough for
/// records no audit adapter recognised, the only ones it is asked about.
pub fn is_task_record(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Kind<'_>>(bytes)
        .ok()
        .and_then(|k| k.kind)
        .is_some_and(|k| k == GRANT_TYPE || k == COMPLETE_TYPE)
}

impl TaskRecord {
    /// One task record from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<TaskRecord, TaskRecordError> {
        let spec: RecordSpec = serde_json::from_slice(bytes)
            .map_err(|e| TaskRecordError(format!("not a task record: {e}")))?;
        spec.build()
    }
}

impl RecordSpec {
    /// Checks everything and returns the built form; every problem is named in the error.
    pub fn build(self) -> Result<TaskRecord, TaskRecordError> {
        let mut problems: Vec<String> = Vec::new();
        let time = match Timestamp::parse(&self.time) {
            Some(t) => t.millis(),
            None => {
                problems.push(format!("`time` {:?} is not an RFC 3339 time", self.time));
                0
            }
        };
        if self.agent.trim().is_empty() {
            problems.push("`agent` is empty".to_owned());
        }
        if self.task.trim().is_empty() {
            problems.push("`task` is empty".to_owned());
        }
        let kind = match self.kind.as_str() {
            GRANT_TYPE => self.terms(time, &mut problems).map(TaskRecordKind::Grant),
            COMPLETE_TYPE => {
                let extra = [
                    ("objective", self.objective.is_some()),
                    ("expires", self.expires.is_some()),
                    ("ttl", self.ttl.is_some()),
                    ("allow", self.allow.is_some()),
                    ("budget", self.budget.is_some()),
                    ("bind", self.bind.is_some()),
                ];
                for (name, present) in extra {
                    if present {
                        problems.push(format!("a completion takes no `{name}`"));
                    }
                }
                Some(TaskRecordKind::Complete)
            }
            other => {
                problems.push(format!(
                    "`type` {other:?} is neither {GRANT_TYPE:?} nor {COMPLETE_TYPE:?}"
                ));
                None
            }
        };
        match kind {
            Some(kind) if problems.is_empty() => Ok(TaskRecord {
                time,
                agent: self.agent.into(),
                task: self.task.into(),
                kind,
            }),
            _ => Err(TaskRecordError(problems.join("; "))),
        }
    }

    fn terms(&self, time: i64, problems: &mut Vec<String>) -> Option<Box<Terms>> {
        let expires = match (&self.expires, &self.ttl) {
            (Some(_), Some(_)) => {
                problems.push("give `expires` or `ttl`, not both".to_owned());
                None
            }
            (Some(at), None) => match Timestamp::parse(at) {
                Some(t) if t.millis() > time => Some(t.millis()),
                Some(_) => {
                    problems.push(format!("`expires` {at:?} is not after `time`"));
                    None
                }
                None => {
                    problems.push(format!("`expires` {at:?} is not an RFC 3339 time"));
                    None
                }
            },
            (None, Some(ttl)) => match parse_duration_ms(ttl) {
                Some(ms) if ms > 0 => Some(time.saturating_add(ms)),
                _ => {
                    problems.push(format!("`ttl` {ttl:?} is not a duration such as 2h"));
                    None
                }
            },
            (None, None) => None,
        };
        let empty = AllowSpec::default();
        let allow = self.allow.as_ref().unwrap_or(&empty);
        let mut patterns = |what: &str, texts: &[String], cased: bool, prefix: &str| {
            texts
                .iter()
                .filter_map(|t| {
                    let text = format!("{prefix}{t}");
                    if t.trim().is_empty() {
                        problems.push(format!("an empty pattern in `allow.{what}`"));
                        None
                    } else {
                        Some(Pattern::new(&text, cased))
                    }
                })
                .collect::<Vec<_>>()
        };
        let mut actions = patterns("actions", &allow.actions, false, "");
        actions.extend(patterns("tools", &allow.tools, false, "tool:"));
        let resources = patterns("resources", &allow.resources, true, "");
        let roles = patterns("roles", &allow.roles, false, "");
        if actions.is_empty() && roles.is_empty() {
            problems.push(
                "a grant allows nothing: give `allow.actions`, `allow.tools` or `allow.roles`"
                    .to_owned(),
            );
        }
        let budget = self.budget.as_ref().map_or(Budget::default(), |b| Budget {
            calls: b.calls,
            bytes: match &b.bytes {
                None => None,
                Some(SizeSpec::Number(n)) => Some(*n),
                Some(SizeSpec::Text(t)) => match parse_size(t) {
                    Some(n) if n >= 0.0 => Some(n as u64),
                    _ => {
                        problems.push(format!("`budget.bytes` {t:?} is not a size such as 50MiB"));
                        None
                    }
                },
            },
            resources: b.resources,
        });
        let mut bind = Vec::new();
        for (name, value) in self.bind.iter().flatten() {
            match Field::parse(name) {
                Some(field) if !value.is_empty() => bind.push((field, value.as_str().into())),
                Some(_) => problems.push(format!("`bind.{name}` is empty")),
                None => problems.push(format!(
                    "`bind.{name}`: not a field (a model field such as agent.id, or raw.<path>)"
                )),
            }
        }
        Some(Box::new(Terms {
            objective: self.objective.as_deref().map(Into::into),
            expires,
            actions,
            resources,
            roles,
            budget,
            bind,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRANT: &str = r#"{"type":"sessionguard.task.grant","time":"2026-11-04T09:00:00Z",
        "agent":"invoice-reconciler","task":"recon-4471","objective":"reconcile October",
        "ttl":"2h","allow":{"actions":["s3:GetObject","s3:List*"],"tools":["search_invoices"],
        "resources":["invoices-2024/*"],"roles":["arn:aws:iam::*:role/agent-invoice-*"]},
        "budget":{"calls":200,"bytes":"50MiB","resources":40},"bind":{"raw.azp":"recon-client"}}"#;

    #[test]
    fn a_grant_reads_with_its_terms() {
        let record = TaskRecord::from_json(GRANT.as_bytes()).unwrap();
        assert_eq!(&*record.agent, "invoice-reconciler");
        assert_eq!(&*record.task, "recon-4471");
        let TaskRecordKind::Grant(terms) = record.kind else {
            panic!("a grant")
        };
        assert_eq!(terms.expires, Some(record.time + 2 * 3_600_000));
        assert_eq!(terms.actions.len(), 3);
        assert!(terms.actions[2].matches("tool:SEARCH_invoices"));
        assert_eq!(terms.budget.bytes, Some(50 * 1024 * 1024));
        assert_eq!(terms.bind.len(), 1);
    }

    #[test]
    fn every_problem_of_a_bad_grant_is_named() {
        let bad = GRANT
            .replace("2026-11-04T09:00:00Z", "yesterday")
            .replace("\"2h\"", "\"soon\"")
            .replace("raw.azp", "azp");
        let err = TaskRecord::from_json(bad.as_bytes()).unwrap_err().0;
        assert!(err.contains("`time` \"yesterday\""), "{err}");
        assert!(err.contains("`ttl` \"soon\""), "{err}");
        assert!(err.contains("`bind.azp`"), "{err}");
    }

    #[test]
    fn a_completion_takes_only_its_keys() {
        let done = r#"{"type":"sessionguard.task.complete","time":"2026-11-04T09:30:00Z",
            "agent":"a","task":"t"}"#;
        let record = TaskRecord::from_json(done.as_bytes()).unwrap();
        assert_eq!(record.kind, TaskRecordKind::Complete);
        let with_terms = done.replace("\"task\":\"t\"", "\"task\":\"t\",\"ttl\":\"1h\"");
        let err = TaskRecord::from_json(with_terms.as_bytes()).unwrap_err().0;
        assert!(err.contains("takes no `ttl`"), "{err}");
    }

    #[test]
    fn task_records_are_told_from_audit_records_by_their_type() {
        assert!(is_task_record(GRANT.as_bytes()));
        assert!(!is_task_record(br#"{"type":"AssumedRole"}"#));
        assert!(!is_task_record(b"not json"));
    }
}
