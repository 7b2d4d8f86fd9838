//! GitHub audit log events: the enterprise/organization audit-log REST API, audit-log streaming
//! (Splunk, S3, Event Hubs, Datadog …) and exports, one event per record.
//!
//! # Detection
//!
//! A top-level `action` that is a dotted lower-case name (`git.clone`, `org.add_member`:
//! `[a-z0-9_]` segments joined by dots), together with at least one of `actor`, `@timestamp`,
//! `created_at`, `_document_id`, `hashed_token`, `org` or `business`. The other adapters run
//! first; none of their formats has such an `action`.
//!
//! # Session key, in order of preference
//!
//! 1. `hashed_token` (SHA-256 of the personal access, OAuth or app token, or of the SSH or deploy
//!    key, used) → `github:token:<hashed_token>`, kind `token`.
//! 2. `token_id` → `github:token-id:<id>`, kind `token`.
//! 3. Web-session events — an `actor` and no sign of programmatic access — are keyed by the
//!    actor: `github:actor:<actor>`, kind `principal`, `derived: true`. GitHub does not log a
//!    web-session id, so all of a user's browser activity shares this key.
//!
//! A record with `programmatic_access_type` set, or a `git.*` action, but no token identity was
//! made with a credential the log does not name; keying it by the actor would merge it into the
//! user's web session, so it is rejected (`no_session_identity`), as is a record with no actor.
//! Keys carry no org or enterprise: tokens and logins are global to GitHub.
//!
//! # Mapping
//!
//! `action` = `github:<action>`. `operation` (first match wins):
//! - auth: `operation_type: authentication`, `user.login`/`user.logout`/`user.failed_login`,
//!   `oauth_access.create` (token issuance);
//! - admin — access and policy administration: `repo.access` (visibility), categories `team`,
//!   `business*`, `protected_branch` (except `rejected_ref_update`, a refused push),
//!   `oauth_*`, `personal_access_token`, `public_key` (SSH keys), `ip_allow_list*`,
//!   `organization_moderators`, `org_credential_authorization`, `integration_installation`,
//!   `role`; and any operation on members, admins, collaborators, invitations, roles,
//!   permissions, OAuth app access or two-factor requirements (`org.add_member`, `business.add_admin`,
//!   `org.disable_two_factor_requirement` …);
//! - read: `git.clone`, `git.fetch`, `repo.download_zip`, any other `*.access`, and
//!   `operation_type: access`;
//! - write: everything else.
//!
//! `outcome` is success unless the action names a failure (`user.failed_login`,
//! `protected_branch.rejected_ref_update`). The principal is `actor` / `actor_id` (type `Bot` for
//! `actor_is_bot` or a `[bot]` login, `User` when `actor_is_bot` is false). Network from
//! `actor_ip` and `actor_location`; client from `user_agent`. The resource is the repository
//! (`repo`, else `repository`, in the org); failing that the `user`, `team`, org or enterprise
//! acted on. Scopes: `token_scopes`, comma-separated. Time: `@timestamp`, else `created_at`
//! (epoch milliseconds or ISO text), else Panther's renamed `at_sign_timestamp`.

use super::fields::Fields;
use super::model::{
    Action, Client, Event, Network, Operation, Outcome, Principal, Resource, Session, SessionKey,
    SessionKind, Source, Status,
};
use super::normalize::{non_empty, parse_ip, Adapter, Record};
use super::reject::Reject;
use super::text::Text;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Github,
    detect,
    normalize,
};

fn detect(fields: &Fields<'_>) -> bool {
    let Some(action) = fields.value("action") else {
        return false;
    };
    is_action_name(action.get())
        && [
            "actor",
            "@timestamp",
            "created_at",
            "_document_id",
            "hashed_token",
            "org",
            "business",
        ]
        .iter()
        .any(|k| fields.contains(k))
}

/// `"category.operation"` as raw JSON: a quoted, dotted name of `[a-z0-9_]` segments.
fn is_action_name(json: &str) -> bool {
    let Some(name) = json
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    name.contains('.')
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        })
}

fn normalize(record: Record<'_>) -> Result<Event<'_>, Reject> {
    let f = &record.fields;
    let action = f.required_text("action")?;
    let time = record.time(&["@timestamp", "created_at", "at_sign_timestamp"])?;
    let actor = non_empty(text(f, "actor"));
    let session = session_of(f, &action, actor.clone())?;

    let location = f
        .object("actor_location", record.scratch)
        .ok()
        .flatten()
        .unwrap_or_default();
    let network = Network {
        ip: text(f, "actor_ip").as_deref().and_then(parse_ip),
        via_service: None,
        asn: None,
        country: non_empty(text(&location, "country_code"))
            .or_else(|| non_empty(text(&location, "country_name"))),
        city: non_empty(text(&location, "city")),
    };

    let principal_kind = match f.bool("actor_is_bot").ok().flatten() {
        Some(true) => Some("Bot"),
        Some(false) => Some("User"),
        None => actor
            .as_deref()
            .is_some_and(|a| a.ends_with("[bot]"))
            .then_some("Bot"),
    };

    let mut scopes = Vec::new();
    if let Some(list) = non_empty(text(f, "token_scopes")) {
        list.split_list(&mut scopes);
    }

    let operation_type = non_empty(text(f, "operation_type"));
    Ok(Event {
        time,
        source: Source::Github,
        id: non_empty(text(f, "_document_id")),
        session,
        principal: Principal {
            kind: principal_kind.map(Text::borrowed),
            id: non_empty(text(f, "actor_id")),
            name: actor,
        },
        outcome: outcome_of(&action),
        operation: operation_of(&action, operation_type.as_deref()),
        action: Action {
            service: Text::borrowed("github"),
            operation: action.clone(),
            vendor: action,
        },
        resource: resource_of(f),
        bytes: None,
        records: None,
        network,
        client: Client {
            user_agent: non_empty(text(f, "user_agent")),
            device: None,
        },
        scopes,
        agent: None,
        lineage: None,
        raw: record.fields,
    })
}

/// A member as text; a structure where a scalar belongs counts as absent.
fn text<'a>(f: &Fields<'a>, key: &str) -> Option<Text<'a>> {
    f.text(key).ok().flatten()
}

fn session_of<'a>(
    f: &Fields<'a>,
    action: &str,
    actor: Option<Text<'a>>,
) -> Result<Session<'a>, Reject> {
    let session = |key, kind, derived| Session {
        key,
        kind,
        derived,
        issuer: None,
        created_at: None,
        mfa: None,
    };
    if let Some(hash) = non_empty(text(f, "hashed_token")) {
        let key = SessionKey::new("github", None, "token", hash);
        return Ok(session(key, SessionKind::Token, false));
    }
    if let Some(id) = non_empty(text(f, "token_id")) {
        let key = SessionKey::new("github", None, "token-id", id);
        return Ok(session(key, SessionKind::Token, false));
    }
    if let Some(access) = non_empty(text(f, "programmatic_access_type")) {
        return Err(Reject::no_session(format!(
            "{action} used programmatic access ({access}) but names no hashed_token or token_id"
        )));
    }
    if action.starts_with("git.") {
        return Err(Reject::no_session(format!(
            "{action} is a Git operation without hashed_token or token_id"
        )));
    }
    match actor {
        Some(actor) => {
            let key = SessionKey::new("github", None, "actor", actor);
            Ok(session(key, SessionKind::Principal, true))
        }
        None => Err(Reject::no_session(format!(
            "{action} has no hashed_token, token_id or actor"
        ))),
    }
}

fn outcome_of(action: &str) -> Outcome<'static> {
    let operation = action.rsplit('.').next().unwrap_or(action);
    let failed = operation.contains("failed") || operation.starts_with("rejected");
    Outcome {
        result: if failed {
            Status::Failure
        } else {
            Status::Success
        },
        reason: None,
    }
}

/// Categories whose every action administers access or policy.
const ADMIN_CATEGORIES: &[&str] = &[
    "team",
    "protected_branch",
    "personal_access_token",
    "public_key",
    "ip_allow_list",
    "ip_allow_list_entry",
    "organization_moderators",
    "org_credential_authorization",
    "integration_installation",
    "role",
];

/// Words in an operation that make it an access change wherever it appears.
const ADMIN_WORDS: &[&str] = &[
    "member",
    "admin",
    "collaborator",
    "invite",
    "role",
    "permission",
    "two_factor",
    "oauth",
];

fn operation_of(action: &str, operation_type: Option<&str>) -> Operation {
    let (category, operation) = action.split_once('.').unwrap_or((action, ""));
    if operation_type == Some("authentication")
        || matches!(
            action,
            "user.login" | "user.logout" | "user.failed_login" | "oauth_access.create"
        )
    {
        return Operation::Auth;
    }
    if action == "protected_branch.rejected_ref_update" {
        return Operation::Write;
    }
    if action == "repo.access"
        || ADMIN_CATEGORIES.contains(&category)
        || category.starts_with("business")
        || category.starts_with("oauth_")
        || ADMIN_WORDS.iter().any(|w| operation.contains(w))
    {
        return Operation::Admin;
    }
    if matches!(action, "git.clone" | "git.fetch" | "repo.download_zip")
        || operation == "access"
        || operation.ends_with(".access")
        || operation_type == Some("access")
    {
        return Operation::Read;
    }
    Operation::Write
}

fn resource_of<'a>(f: &Fields<'a>) -> Option<Resource<'a>> {
    let org = non_empty(text(f, "org"));
    let resource = |kind: &'static str, id, name, container| {
        Some(Resource {
            kind: Some(Text::borrowed(kind)),
            id,
            name: Some(name),
            container,
        })
    };
    if let Some(repo) = non_empty(text(f, "repo")).or_else(|| non_empty(text(f, "repository"))) {
        let id = non_empty(text(f, "repo_id")).or_else(|| non_empty(text(f, "repository_id")));
        return resource("repository", id, repo, org);
    }
    if let Some(user) = non_empty(text(f, "user")) {
        return resource("user", non_empty(text(f, "user_id")), user, org);
    }
    if let Some(team) = non_empty(text(f, "team")) {
        return resource("team", None, team, org);
    }
    if let Some(org) = org {
        return resource("organization", non_empty(text(f, "org_id")), org, None);
    }
    let business = non_empty(text(f, "business"))?;
    resource(
        "enterprise",
        non_empty(text(f, "business_id")),
        business,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Normalizer, RejectReason};
    use bumpalo::Bump;

    fn normalize_line(line: &str) -> Result<Event<'static>, Reject> {
        let scratch: &'static Bump = Box::leak(Box::new(Bump::new()));
        let line: &'static str = Box::leak(line.to_owned().into_boxed_str());
        Normalizer::default().normalize(line.as_bytes(), scratch)
    }

    const CLONE: &str = r#"{"@timestamp":1715677951123,"_document_id":"x1Yk3nQ0aB9cD8eF7gH6iJ","action":"git.clone","actor":"dana-lee","actor_id":48213377,"actor_ip":"203.0.113.24","actor_is_bot":false,"actor_location":{"country_code":"PT"},"business":"example-corp","business_id":9021,"hashed_token":"k3J9mZq0bX7Yw1vT5uR8sP2oN4lM6kJ3hG9fD1sA0=","org":"example-org","org_id":71234567,"programmatic_access_type":"Personal access token (classic)","repo":"example-org/payments-api","repo_id":702345678,"repository":"example-org/payments-api","repository_public":false,"token_id":131415926,"token_scopes":"repo,read:org, workflow","transport_protocol":1,"transport_protocol_name":"http","user":"","user_agent":"git/2.45.1","created_at":1715677951123}"#;

    #[test]
    fn git_clone_with_a_hashed_token() {
        let e = normalize_line(CLONE).unwrap();
        assert_eq!(e.source, Source::Github);
        assert_eq!(
            e.session.key.to_string(),
            "github:token:k3J9mZq0bX7Yw1vT5uR8sP2oN4lM6kJ3hG9fD1sA0="
        );
        assert_eq!(e.session.kind, SessionKind::Token);
        assert!(!e.session.derived);
        assert_eq!(e.time.to_string(), "2024-05-14T09:12:31.123Z");
        assert_eq!(e.action.to_string(), "github:git.clone");
        assert_eq!(e.action.vendor, "git.clone");
        assert_eq!(e.operation, Operation::Read);
        assert_eq!(e.outcome.result, Status::Success);
        assert_eq!(e.principal.name.as_deref(), Some("dana-lee"));
        assert_eq!(e.principal.id.as_deref(), Some("48213377"));
        assert_eq!(e.principal.kind.as_deref(), Some("User"));
        assert_eq!(e.network.ip.unwrap().to_string(), "203.0.113.24");
        assert_eq!(e.network.country.as_deref(), Some("PT"));
        assert_eq!(e.client.user_agent.as_deref(), Some("git/2.45.1"));
        let resource = e.resource.unwrap();
        assert_eq!(resource.kind.as_deref(), Some("repository"));
        assert_eq!(resource.name.as_deref(), Some("example-org/payments-api"));
        assert_eq!(resource.id.as_deref(), Some("702345678"));
        assert_eq!(resource.container.as_deref(), Some("example-org"));
        let scopes: Vec<&str> = e.scopes.iter().map(|s| s.as_str()).collect();
        assert_eq!(scopes, ["repo", "read:org", "workflow"]);
        assert_eq!(e.id.as_deref(), Some("x1Yk3nQ0aB9cD8eF7gH6iJ"));
    }

    #[test]
    fn token_id_when_there_is_no_hash() {
        let line = CLONE.replace(
            r#""hashed_token":"k3J9mZq0bX7Yw1vT5uR8sP2oN4lM6kJ3hG9fD1sA0=","#,
            "",
        );
        let e = normalize_line(&line).unwrap();
        assert_eq!(e.session.key.to_string(), "github:token-id:131415926");
        assert_eq!(e.session.kind, SessionKind::Token);
        assert!(!e.session.derived);
    }

    #[test]
    fn web_events_derive_the_key_from_the_actor() {
        let line = r#"{"actor":"cat","action":"org.update_member","created_at":1621305118553,"p_log_type":"GitHub.Audit","repo":"my-org/my-repo","user":"bob"}"#;
        let e = normalize_line(line).unwrap();
        assert_eq!(e.session.key.to_string(), "github:actor:cat");
        assert_eq!(e.session.kind, SessionKind::Principal);
        assert!(e.session.derived);
        assert_eq!(e.operation, Operation::Admin);
        assert_eq!(e.time.to_string(), "2021-05-18T02:31:58.553Z");
        assert_eq!(e.principal.kind, None);
    }

    #[test]
    fn unnamed_credentials_and_missing_actors_are_rejected() {
        let no_token = CLONE
            .replace(
                r#""hashed_token":"k3J9mZq0bX7Yw1vT5uR8sP2oN4lM6kJ3hG9fD1sA0=","#,
                "",
            )
            .replace(r#""token_id":131415926,"#, "");
        let r = normalize_line(&no_token).unwrap_err();
        assert_eq!(r.reason, RejectReason::NoSessionIdentity);
        let ssh = no_token.replace(
            r#""programmatic_access_type":"Personal access token (classic)","#,
            "",
        );
        let r = normalize_line(&ssh).unwrap_err();
        assert_eq!(r.reason, RejectReason::NoSessionIdentity);
        let r = normalize_line(
            r#"{"action":"repo.create","org":"my-org","created_at":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap_err();
        assert_eq!(r.reason, RejectReason::NoSessionIdentity);
    }

    #[test]
    fn operation_classes() {
        for (action, operation_type, class) in [
            ("git.clone", None, Operation::Read),
            ("git.push", None, Operation::Write),
            ("repo.download_zip", None, Operation::Read),
            ("repo.access", None, Operation::Admin),
            ("org.add_member", None, Operation::Admin),
            ("org.invite_user", None, Operation::Admin),
            ("org.disable_two_factor_requirement", None, Operation::Admin),
            ("team.promote_maintainer", None, Operation::Admin),
            ("business.add_admin", None, Operation::Admin),
            (
                "business.set_actions_retention_limit",
                None,
                Operation::Admin,
            ),
            ("protected_branch.destroy", None, Operation::Admin),
            (
                "protected_branch.rejected_ref_update",
                None,
                Operation::Write,
            ),
            ("oauth_application.create", None, Operation::Admin),
            (
                "personal_access_token.request_created",
                None,
                Operation::Admin,
            ),
            ("public_key.create", None, Operation::Admin),
            ("user.login", None, Operation::Auth),
            ("org.sso_response", Some("authentication"), Operation::Auth),
            (
                "secret_scanning_alert.view",
                Some("access"),
                Operation::Read,
            ),
            // Reading something, in any category and at any depth of the action's name.
            ("codespaces.access", None, Operation::Read),
            ("environment.secret.access", None, Operation::Read),
            ("repo.create", Some("create"), Operation::Write),
            ("pull_request.merge", None, Operation::Write),
        ] {
            assert_eq!(operation_of(action, operation_type), class, "{action}");
        }
        assert_eq!(outcome_of("user.failed_login").result, Status::Failure);
        assert_eq!(
            outcome_of("protected_branch.rejected_ref_update").result,
            Status::Failure
        );
        assert_eq!(outcome_of("repo.create").result, Status::Success);
    }

    #[test]
    fn detection_keeps_to_github() {
        let scratch = bumpalo::Bump::new();
        let fields = |json: &'static str| Fields::parse(json, &scratch).unwrap();
        assert!(detect(&fields(r#"{"action":"git.clone","actor":"a"}"#)));
        assert!(detect(&fields(r#"{"action":"org.add_member","org":"o"}"#)));
        // Zendesk / Box style actions, or an action with nothing else GitHub writes.
        assert!(!detect(&fields(
            r#"{"action":"update","actor_id":1,"created_at":"x"}"#
        )));
        assert!(!detect(&fields(
            r#"{"action":"File.Upload","created_at":"x"}"#
        )));
        assert!(!detect(&fields(r#"{"action":"git.clone"}"#)));
        assert!(!detect(&fields(
            r#"{"action":{"git.clone":1},"actor":"a"}"#
        )));
        assert!(!detect(&fields(r#"{"action":"a..b","actor":"a"}"#)));
    }
}
