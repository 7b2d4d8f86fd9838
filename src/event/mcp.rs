//! An MCP gateway's JSON audit log: one record per Model Context Protocol request an agent sent
//! through the gateway (tool calls, resource reads, prompt fetches), so the tools an agent calls
//! are checked against its task grant like the cloud API calls its credentials make
//! (docs/agents.md).
//!
//! MCP itself defines no audit format; gateways log the same few facts under their own names.
//! The shape read here (docs/agents.md, "MCP gateway audit records"):
//!
//! ```json
//! {"timestamp": "2024-12-10T09:00:05.120Z", "mcp_session_id": "7c1e…",
//!  "mcp_method": "tools/call", "mcp_server": "github", "tool": "create_issue",
//!  "arguments_summary": "repo=acme/web title=…", "request_id": 17,
//!  "client": {"name": "ledger-sync", "version": "0.4.2", "address": "10.20.3.71"},
//!  "agent": {"id": "ledger-sync", "task": "ls-1207"},
//!  "auth": {"sub": "…", "azp": "ledger-sync-client", "act": {"sub": "…"}},
//!  "outcome": "allowed", "error": null}
//! ```
//!
//! # Detection
//!
//! A top-level `mcp_session_id` together with `mcp_method`.
//!
//! # Session key
//!
//! `mcp_session_id` (the `Mcp-Session-Id` the server issued to the client, one per client
//! connection) → `mcp:<server>:session:<id>`, kind `token`.
//!
//! # Mapping
//!
//! `tools/call` is the action `mcp:<server>/<tool>`; any other method `mcp:<server>/<method>`
//! (`mcp:github/resources/read`), with the `uri` read (`resources/read`) as the resource.
//! `operation`: read for `resources/*`, `prompts/*` and `*/list`, auth for `initialize`,
//! unknown for tool calls (the tool decides what it does). `outcome`: `allowed`, `success`,
//! `ok` → success; `denied`, `blocked`, `error`, `failure` → failure (with `error` as the
//! reason). The principal is `auth.sub` (else the client name), the client `name/version`
//! its user agent and `client.address` its address. `agent` comes from the record's `agent`
//! object (the gateway's authentication, or a task-id header it forwards); `auth.azp` and
//! `auth.act.sub` are reachable as `raw.auth.azp` / `raw.auth.act.sub` for grants that bind by
//! OAuth claims. Time: `timestamp`, else `time`.

use super::fields::Fields;
use super::model::{
    Action, Client, Event, Network, Operation, Outcome, Principal, Resource, Session, SessionKey,
    SessionKind, Source, Status,
};
use super::normalize::{non_empty, parse_ip, Adapter, Record};
use super::reject::Reject;
use super::text::Text;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Mcp,
    detect,
    normalize,
};

fn detect(fields: &Fields<'_>) -> bool {
    fields.contains("mcp_session_id") && fields.contains("mcp_method")
}

fn text<'a>(f: &Fields<'a>, key: &str) -> Option<Text<'a>> {
    non_empty(f.text(key).ok().flatten())
}

fn normalize(record: Record<'_>) -> Result<Event<'_>, Reject> {
    let f = &record.fields;
    let time = record.time(&["timestamp", "time"])?;
    let session_id =
        text(f, "mcp_session_id").ok_or_else(|| Reject::no_session("`mcp_session_id` is empty"))?;
    let method = f.required_text("mcp_method")?;
    let server = text(f, "mcp_server").unwrap_or(Text::borrowed("unknown"));
    let client = f.object("client", record.scratch)?.unwrap_or_default();
    let auth = f.object("auth", record.scratch)?.unwrap_or_default();

    let (operation, vendor, resource) = if &*method == "tools/call" {
        let tool = text(f, "tool").ok_or_else(|| {
            Reject::invalid_field("tool", "a `tools/call` record needs the tool's name")
        })?;
        (Text::owned(format!("{server}/{tool}")), tool, None)
    } else {
        let resource = text(f, "uri").map(|uri| Resource {
            kind: Some(Text::borrowed("mcp_resource")),
            // The URI alone: grants name resources by it (`repo://northwind/ledger/*`).
            name: Some(uri),
            ..Resource::default()
        });
        (
            Text::owned(format!("{server}/{method}")),
            method.clone(),
            resource,
        )
    };
    let class = if &*method == "tools/call" {
        Operation::Unknown
    } else if &*method == "initialize" {
        Operation::Auth
    } else if method.starts_with("resources/")
        || method.starts_with("prompts/")
        || method.ends_with("/list")
    {
        Operation::Read
    } else {
        Operation::Unknown
    };
    let outcome = match text(f, "outcome").as_deref() {
        Some("allowed" | "success" | "ok") => Outcome {
            result: Status::Success,
            reason: None,
        },
        Some("denied" | "blocked" | "error" | "failure") => Outcome {
            result: Status::Failure,
            reason: text(f, "error"),
        },
        _ => Outcome::UNKNOWN,
    };
    let client_name = text(&client, "name");
    let user_agent = match (&client_name, text(&client, "version")) {
        (Some(name), Some(version)) => Some(Text::owned(format!("{name}/{version}"))),
        (Some(name), None) => Some(name.clone()),
        _ => None,
    };
    Ok(Event {
        time,
        source: Source::Mcp,
        id: text(f, "request_id").or_else(|| {
            f.i64("request_id")
                .ok()
                .flatten()
                .map(|n| Text::owned(n.to_string()))
        }),
        session: Session {
            key: SessionKey::new("mcp", Some(server.clone()), "session", session_id),
            kind: SessionKind::Token,
            derived: false,
            issuer: Some(server.clone()),
            created_at: None,
            mfa: None,
        },
        principal: Principal {
            kind: Some(Text::borrowed("mcp_client")),
            id: text(&auth, "sub"),
            name: text(&auth, "sub").or(client_name),
        },
        action: Action {
            service: Text::borrowed("mcp"),
            operation,
            vendor,
        },
        outcome,
        operation: class,
        resource,
        bytes: None,
        records: None,
        network: Network {
            ip: text(&client, "address").as_deref().and_then(parse_ip),
            ..Network::default()
        },
        client: Client {
            user_agent,
            device: None,
        },
        scopes: Vec::new(),
        // The pipeline's `agent` object (normalize::pipeline_agent) binds the call.
        agent: None,
        lineage: None,
        raw: record.fields,
    })
}

#[cfg(test)]
mod tests {
    use bumpalo::Bump;

    use super::super::normalize::Normalizer;
    use super::super::reject::RejectReason;

    const TIME: &str = r#""timestamp":"2024-12-10T09:00:01Z""#;

    #[test]
    fn a_record_is_mcp_only_with_a_session_and_a_method() {
        let scratch = Bump::new();
        for members in [r#""mcp_session_id":"s-1""#, r#""mcp_method":"tools/list""#] {
            let record = format!("{{{TIME},{members}}}");
            let reject = Normalizer::default()
                .normalize(record.as_bytes(), &scratch)
                .unwrap_err();
            assert_eq!(reject.reason, RejectReason::UnknownSource, "{record}");
        }
    }

    #[test]
    fn a_client_without_a_version_is_named_alone() {
        let scratch = Bump::new();
        let agent = |client: &str| {
            let record = format!(
                r#"{{{TIME},"mcp_session_id":"s-1","mcp_method":"tools/list","client":{client}}}"#
            );
            let event = Normalizer::default()
                .normalize(record.as_bytes(), &scratch)
                .unwrap();
            event.client.user_agent.map(|t| t.to_string())
        };
        assert_eq!(agent(r#"{"name":"sync"}"#).as_deref(), Some("sync"));
        assert_eq!(
            agent(r#"{"name":"sync","version":"0.4"}"#).as_deref(),
            Some("sync/0.4")
        );
        assert_eq!(agent(r#"{"version":"0.4"}"#), None);
    }
}
