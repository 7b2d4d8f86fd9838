//! OpenTelemetry GenAI spans and log records as OTLP JSON (the OTLP/HTTP JSON encoding, as the
//! collector's `file` and `kafka` exporters write it): what an agent framework reports of an
//! agent's model calls and tool executions, so the tools an agent calls are checked against its
//! task grant (docs/agents.md).
//!
//! An OTLP export holds many spans (`resourceSpans[].scopeSpans[].spans[]`) or log records
//! (`resourceLogs[].scopeLogs[].logRecords[]`); [`split_export`] turns one with several into one
//! export per span or log record (each keeping its resource), which the evaluator reads one by
//! one with the export's origin. The adapter reads a single-span (or single log record) export.
//!
//! # Detection
//!
//! A top-level `resourceSpans` or `resourceLogs`.
//!
//! # Attributes read (GenAI semantic conventions, development status)
//!
//! - `gen_ai.operation.name`: `execute_tool` is the action `tool:<gen_ai.tool.name>`; any other
//!   operation (`chat`, `invoke_agent`, `embeddings` …) is `gen_ai:<operation>`;
//! - `gen_ai.agent.id` (else `gen_ai.agent.name`) is `agent.id` and the principal; the task,
//!   from `sessionguard.task.id` (a span or resource attribute the agent platform sets), is
//!   `agent.task`;
//! - `gen_ai.conversation.id` keys the session: `otel:<service.name>:conversation:<id>`, kind
//!   `token`; else `session.id` (`otel:<service.name>:session:<id>`); else the agent itself,
//!   `derived: true` (kind `principal`). A record with none of them is rejected
//!   (`no_session_identity`): a trace id is one request, not a session.
//! - `gen_ai.tool.call.id` or the span id is the event id; `gen_ai.provider.name` (else
//!   `gen_ai.system`) and `gen_ai.request.model` make the user agent (`openai/gpt-4o`);
//!   `client.address` the address; `error.type` or a span status of error makes the outcome a
//!   failure.
//!
//! Time: the span's `startTimeUnixNano`, a log record's `timeUnixNano` (else
//! `observedTimeUnixNano`). Attributes are OTLP's `[{"key", "value": {"stringValue": …}}]`
//! lists, which `raw.` paths cannot select by key; rules use the normalized fields.

use serde::Deserialize;

use super::fields::Fields;
use super::model::{
    Action, Agent, Client, Event, Network, Operation, Outcome, Principal, Session, SessionKey,
    SessionKind, Source, Status,
};
use super::normalize::{parse_ip, Adapter, Record};
use super::reject::{Reject, RejectReason};
use super::text::Text;
use super::time::Timestamp;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Otel,
    detect,
    normalize,
};

fn detect(fields: &Fields<'_>) -> bool {
    fields.contains("resourceSpans") || fields.contains("resourceLogs")
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ResourceSpans {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(rename = "scopeSpans", default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Span {
    #[serde(rename = "spanId", default)]
    span_id: Option<String>,
    #[serde(rename = "startTimeUnixNano", default)]
    start: Option<Number>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    status: Option<SpanStatus>,
}

#[derive(Deserialize)]
struct SpanStatus {
    #[serde(default)]
    code: Option<Number>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ResourceLogs {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(rename = "scopeLogs", default)]
    scope_logs: Vec<ScopeLogs>,
}

#[derive(Deserialize)]
struct ScopeLogs {
    #[serde(rename = "logRecords", default)]
    log_records: Vec<LogRecord>,
}

#[derive(Deserialize)]
struct LogRecord {
    #[serde(rename = "timeUnixNano", default)]
    time: Option<Number>,
    #[serde(rename = "observedTimeUnixNano", default)]
    observed: Option<Number>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Option<AnyValue>,
}

#[derive(Deserialize)]
struct AnyValue {
    #[serde(rename = "stringValue", default)]
    string: Option<String>,
    #[serde(rename = "intValue", default)]
    int: Option<Number>,
    #[serde(rename = "boolValue", default)]
    boolean: Option<bool>,
}

/// OTLP JSON writes 64-bit integers as strings (and enums as names or numbers).
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Text(String),
}

impl Number {
    fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(n) => Some(*n),
            Number::Text(t) => t.parse().ok(),
        }
    }
    fn text(&self) -> String {
        match self {
            Number::Int(n) => n.to_string(),
            Number::Text(t) => t.clone(),
        }
    }
}

/// The attributes of one span or log record, and of its resource, by key.
struct Attributes<'r> {
    own: &'r [KeyValue],
    resource: &'r [KeyValue],
}

impl Attributes<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.own
            .iter()
            .chain(self.resource)
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| {
                v.string
                    .clone()
                    .or_else(|| v.int.as_ref().map(Number::text))
                    .or_else(|| v.boolean.map(|b| b.to_string()))
            })
            .filter(|s| !s.is_empty())
    }
}

fn bad(key: &str, detail: impl Into<String>) -> Reject {
    Reject::new(
        RejectReason::InvalidField,
        format!("`{key}`: {}", detail.into()),
    )
}

fn normalize(record: Record<'_>) -> Result<Event<'_>, Reject> {
    let f = &record.fields;
    if let Some(raw) = f.value("resourceSpans") {
        let exports: Vec<ResourceSpans> =
            serde_json::from_str(raw.get()).map_err(|e| bad("resourceSpans", e.to_string()))?;
        let mut found = exports.iter().flat_map(|r| {
            r.scope_spans
                .iter()
                .flat_map(move |s| s.spans.iter().map(move |span| (r, span)))
        });
        let (resource, span) = found
            .next()
            .ok_or_else(|| bad("resourceSpans", "no span"))?;
        if found.next().is_some() {
            return Err(bad(
                "resourceSpans",
                "several spans in one record: split it first",
            ));
        }
        let attributes = Attributes {
            own: &span.attributes,
            resource: resource.resource.as_ref().map_or(&[], |r| &r.attributes),
        };
        let nanos = span.start.as_ref().and_then(Number::as_i64);
        let failed = span.status.as_ref().is_some_and(|s| {
            s.code.as_ref().is_some_and(|c| match c {
                Number::Int(n) => *n == 2,
                Number::Text(t) => t == "STATUS_CODE_ERROR" || t == "2",
            })
        });
        let reason = span.status.as_ref().and_then(|s| s.message.clone());
        return event_of(
            record,
            &attributes,
            nanos,
            span.span_id.clone(),
            (failed, reason),
        );
    }
    let raw = f
        .value("resourceLogs")
        .ok_or_else(|| bad("resourceLogs", "missing"))?;
    let exports: Vec<ResourceLogs> =
        serde_json::from_str(raw.get()).map_err(|e| bad("resourceLogs", e.to_string()))?;
    let mut found = exports.iter().flat_map(|r| {
        r.scope_logs
            .iter()
            .flat_map(move |s| s.log_records.iter().map(move |l| (r, l)))
    });
    let (resource, log) = found
        .next()
        .ok_or_else(|| bad("resourceLogs", "no log record"))?;
    if found.next().is_some() {
        return Err(bad(
            "resourceLogs",
            "several log records in one record: split it first",
        ));
    }
    let attributes = Attributes {
        own: &log.attributes,
        resource: resource.resource.as_ref().map_or(&[], |r| &r.attributes),
    };
    let nanos = log
        .time
        .as_ref()
        .and_then(Number::as_i64)
        .filter(|n| *n > 0)
        .or_else(|| log.observed.as_ref().and_then(Number::as_i64));
    event_of(record, &attributes, nanos, None, (false, None))
}

fn event_of<'a>(
    record: Record<'a>,
    a: &Attributes<'_>,
    nanos: Option<i64>,
    span_id: Option<String>,
    (failed, reason): (bool, Option<String>),
) -> Result<Event<'a>, Reject> {
    let time = nanos
        .filter(|n| *n > 0)
        .map(|n| Timestamp::from_millis(n / 1_000_000))
        .ok_or_else(|| {
            Reject::new(
                RejectReason::BadTimestamp,
                "no startTimeUnixNano / timeUnixNano",
            )
        })?;
    let operation = a.get("gen_ai.operation.name").ok_or_else(|| {
        bad(
            "gen_ai.operation.name",
            "missing: not a GenAI span or event",
        )
    })?;
    let service = a
        .get("service.name")
        .unwrap_or_else(|| "unknown".to_owned());
    let agent = a
        .get("gen_ai.agent.id")
        .or_else(|| a.get("gen_ai.agent.name"));
    let (kind, id, session_kind, derived) = if let Some(c) = a.get("gen_ai.conversation.id") {
        ("conversation", c, SessionKind::Token, false)
    } else if let Some(s) = a.get("session.id") {
        ("session", s, SessionKind::Token, false)
    } else if let Some(agent) = &agent {
        ("agent", agent.clone(), SessionKind::Principal, true)
    } else {
        return Err(Reject::no_session(
            "no gen_ai.conversation.id, session.id or gen_ai.agent.id",
        ));
    };
    let (service_name, action_op, class) = if operation == "execute_tool" {
        let tool = a
            .get("gen_ai.tool.name")
            .ok_or_else(|| bad("gen_ai.tool.name", "missing on an execute_tool record"))?;
        ("tool", tool, Operation::Unknown)
    } else {
        ("gen_ai", operation.clone(), Operation::Unknown)
    };
    let failed = failed || a.get("error.type").is_some();
    let provider = a
        .get("gen_ai.provider.name")
        .or_else(|| a.get("gen_ai.system"));
    let user_agent = match (provider, a.get("gen_ai.request.model")) {
        (Some(p), Some(m)) => Some(format!("{p}/{m}")),
        (Some(p), None) => Some(p),
        _ => None,
    };
    Ok(Event {
        time,
        source: Source::Otel,
        id: a
            .get("gen_ai.tool.call.id")
            .or(span_id)
            .filter(|s| !s.is_empty())
            .map(Text::owned),
        session: Session {
            key: SessionKey::new(
                "otel",
                Some(Text::owned(service.clone())),
                kind,
                Text::owned(id),
            ),
            kind: session_kind,
            derived,
            issuer: Some(Text::owned(service)),
            created_at: None,
            mfa: None,
        },
        principal: Principal {
            kind: Some(Text::borrowed("agent")),
            id: agent.clone().map(Text::owned),
            name: a
                .get("gen_ai.agent.name")
                .or_else(|| agent.clone())
                .map(Text::owned),
        },
        action: Action {
            service: Text::borrowed(service_name),
            operation: Text::owned(action_op),
            vendor: Text::owned(operation),
        },
        outcome: Outcome {
            result: if failed {
                Status::Failure
            } else {
                Status::Success
            },
            reason: a
                .get("error.type")
                .or(reason)
                .filter(|_| failed)
                .map(Text::owned),
        },
        operation: class,
        resource: None,
        bytes: None,
        records: None,
        network: Network {
            ip: a.get("client.address").as_deref().and_then(parse_ip),
            ..Network::default()
        },
        client: Client {
            user_agent: user_agent.map(Text::owned),
            device: None,
        },
        scopes: Vec::new(),
        agent: agent.map(|id| Agent {
            id: Some(Text::owned(id)),
            task: a.get("sessionguard.task.id").map(Text::owned),
        }),
        lineage: None,
        raw: record.fields,
    })
}

/// An OTLP export with more than one span (or log record) as one export per span, each with
/// its resource and scope; `None` for anything else (a single-span export, any other record),
/// which is read as it is.
pub fn split_export(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let head = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let head = head.strip_prefix('{')?.trim_start();
    let (outer, middle, inner) = if head.starts_with("\"resourceSpans\"") {
        ("resourceSpans", "scopeSpans", "spans")
    } else if head.starts_with("\"resourceLogs\"") {
        ("resourceLogs", "scopeLogs", "logRecords")
    } else {
        return None;
    };
    #[derive(Deserialize)]
    struct Export {
        #[serde(rename = "resourceSpans", alias = "resourceLogs")]
        resources: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let export: Export = serde_json::from_str(text).ok()?;
    let mut parts = Vec::new();
    for resource in &export.resources {
        let scopes = resource.get(middle)?.as_array()?;
        for scope in scopes {
            let items = scope.get(inner)?.as_array()?;
            for item in items {
                let mut one_scope = scope.as_object()?.clone();
                one_scope.insert(
                    inner.to_owned(),
                    serde_json::Value::Array(vec![item.clone()]),
                );
                let mut one_resource = resource.clone();
                one_resource.insert(
                    middle.to_owned(),
                    serde_json::Value::Array(vec![serde_json::Value::Object(one_scope)]),
                );
                let mut export = serde_json::Map::new();
                export.insert(
                    outer.to_owned(),
                    serde_json::Value::Array(vec![serde_json::Value::Object(one_resource)]),
                );
                parts.push(serde_json::to_vec(&serde_json::Value::Object(export)).ok()?);
            }
        }
    }
    (parts.len() > 1).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_event<R>(json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
        super::super::testing::with_event(Source::Otel, json, check)
    }

    /// A one-span export: `attributes` are the span's (`"key": value` JSON pairs as OTLP
    /// writes them), `rest` more span members.
    fn span(attributes: &[(&str, &str)], rest: &str) -> String {
        let attributes: Vec<String> = attributes
            .iter()
            .map(|(k, v)| format!(r#"{{"key":"{k}","value":{v}}}"#))
            .collect();
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name",
            "value":{{"stringValue":"support-bot"}}}}]}},"scopeSpans":[{{"spans":[{{
            "spanId":"a1b2","startTimeUnixNano":"1730707201000000000",{rest}
            "attributes":[{}]}}]}}]}}]}}"#,
            attributes.join(",")
        )
    }

    const TOOL: (&str, &str) = ("gen_ai.operation.name", r#"{"stringValue":"execute_tool"}"#);
    const NAME: (&str, &str) = ("gen_ai.tool.name", r#"{"stringValue":"search"}"#);

    #[test]
    fn an_integer_attribute_reads_as_its_digits_in_either_encoding() {
        // OTLP JSON writes int64 as a string; some exporters write a number.
        for id in [r#"{"intValue":"42"}"#, r#"{"intValue":42}"#] {
            let json = span(&[TOOL, NAME, ("session.id", id)], "");
            with_event(&json, |e| {
                assert_eq!(e.session.key.to_string(), "otel:support-bot:session:42");
                assert_eq!(e.action.to_string(), "tool:search");
            });
        }
    }

    #[test]
    fn a_span_fails_by_its_status_or_an_error_type() {
        let session = ("session.id", r#"{"stringValue":"s-1"}"#);
        for status in [
            r#"{"code":2}"#,
            r#"{"code":"2"}"#,
            r#"{"code":"STATUS_CODE_ERROR"}"#,
        ] {
            let json = span(&[TOOL, NAME, session], &format!(r#""status":{status},"#));
            with_event(&json, |e| {
                assert_eq!(e.outcome.result, Status::Failure, "{status}")
            });
        }
        let ok = span(
            &[TOOL, NAME, session],
            r#""status":{"code":"STATUS_CODE_OK"},"#,
        );
        with_event(&ok, |e| assert_eq!(e.outcome.result, Status::Success));
        let error = ("error.type", r#"{"stringValue":"timeout"}"#);
        with_event(&span(&[TOOL, NAME, session, error], ""), |e| {
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("timeout"));
        });
    }

    #[test]
    fn a_provider_without_a_model_is_the_user_agent_and_time_zero_is_no_time() {
        let session = ("session.id", r#"{"stringValue":"s-1"}"#);
        let provider = ("gen_ai.provider.name", r#"{"stringValue":"openai"}"#);
        with_event(&span(&[TOOL, NAME, session, provider], ""), |e| {
            assert_eq!(e.client.user_agent.as_deref(), Some("openai"));
        });
        let zero = span(&[TOOL, NAME, session], "").replace("1730707201000000000", "0");
        let reject = super::super::testing::rejected(&zero);
        assert_eq!(reject.reason, RejectReason::BadTimestamp);
    }

    #[test]
    fn only_an_export_of_several_is_split() {
        let session = ("session.id", r#"{"stringValue":"s-1"}"#);
        let one = span(&[TOOL, NAME, session], "");
        assert!(split_export(one.as_bytes()).is_none());
        let two = one.replace(r#""spans":[{"#, r#""spans":[{"spanId":"c3d4"},{"#);
        let parts = split_export(two.as_bytes()).expect("split");
        assert_eq!(parts.len(), 2);
        assert!(split_export(br#"{"eventVersion":"1.08"}"#).is_none());
    }
}
