//! AWS CloudTrail records: management and data events, as delivered to S3 (`{"Records": …}`,
//! opened by the file source), streamed one per line by pipelines, or wrapped by the
//! `LookupEvents` API (`{"EventName": …, "CloudTrailEvent": "<the record as a JSON string>"}`).
//!
//! # Session key, in order of preference
//!
//! 1. `userIdentity.sessionContext.signInSessionArn` (or `userIdentity.signInSessionArn`):
//!    `aws:<account>:signin:<arn>`, kind `sign_in`.
//! 2. Console sessions (`sessionCredentialFromConsole: "true"`) are keyed by principal and
//!    session creation time, `aws:<account>:console:<principalId>:<creationDate>` (derived): the
//!    console refreshes its temporary keys, while the creation time names the sign-in. The
//!    `ConsoleLogin` event itself has no key or session context; it gets the same key with its
//!    event time as the creation time, so the login and the console activity join.
//! 3. Temporary keys (`ASIA…`): `aws:<account>:sts:<key>`, kind `temporary_credential`, with
//!    `created_at` and `mfa` from `sessionContext.attributes`.
//! 4. Long-term keys (`AKIA…` and any other key id): `aws:<account>:iam-key:<key>`, kind
//!    `long_term_credential` — a credential, not a session.
//! 5. `principalId` + `sessionContext.attributes.creationDate`:
//!    `aws:<account>:principal:<principalId>:<creationDate>`, derived.
//! 6. The root user (`type: Root`) by its `principalId` alone (its calls can carry no access
//!    key): `aws:<account>:principal:<principalId>`, derived.
//! 7. Records made by AWS services themselves (`userIdentity.type: AWSService`):
//!    `aws:<account>:service:<invokedBy>`, derived.
//!
//! `AssumeRoleWithSAML` / `AssumeRoleWithWebIdentity` callers hold no AWS credential yet; those
//! events belong to the session they create (the issued `ASIA…` key). A record with none of
//! these has no identity and is rejected (`no_session_identity`).
//! Creation dates are rewritten in one form (RFC 3339, milliseconds), so both CloudTrail
//! `creationDate` forms give one key.
//!
//! # Lineage
//!
//! An `AssumeRole*`, `GetSessionToken` or `GetFederationToken` response names the key it issued:
//! `lineage.child` is that key's session key in the role's account, `lineage.child_role` the
//! role. `CreateAccessKey` names the long-term key it created the same way. `sourceIdentity`
//! (request parameter or session context) survives role chaining and is kept on every event.
//! Agent platforms set it to `agent=<agent id>` (or `agent:<agent id>`); such events carry
//! `agent.id`, so an agent's whole role chain is bound to it.
//!
//! # Mapping
//!
//! `action` = `<eventSource up to the first dot>:<eventName>` (`iam:AttachUserPolicy`).
//! `operation`: STS and sign-in issuance → auth; IAM, Organizations, SSO, identity store and
//! `*Policy*`/`*Permission*` changes → admin; `readOnly` (or a Get/List/Describe/Head name) →
//! read; the rest → write. `sourceIPAddress` that is a service name (`athena.amazonaws.com`,
//! `AWS Internal`) goes to `network.via_service`, never to `network.ip`. IAM targets
//! (user/role/group name) become the resource and attached policy ARNs the scopes, so rules can
//! tell a principal granting itself a policy from an administrator granting someone else.
//! Calls that hand access outside the account (sharing, trust and resource policies, Lambda
//! permissions, security-group ingress from everywhere) add `grant:…`/`ingress:world:…` scopes,
//! and batch calls that list their items set `records` (`aws_grants`).

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::aws_grants;
use super::fields::{raw_object, Fields};
use super::model::{
    Action, Agent, Client, Event, Lineage, Network, Operation, Outcome, Principal, Resource,
    Session, SessionKey, SessionKind, Source, Status,
};
use super::normalize::{
    captured, non_empty, parse_ip, pipeline_time_of, Adapter, Captures, Record,
};
use super::reject::{Reject, RejectReason};
use super::text::Text;
use super::time::Timestamp;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Cloudtrail,
    detect,
    normalize,
};

fn detect(fields: &Fields<'_>) -> bool {
    (fields.contains("eventVersion") && fields.contains("eventSource"))
        || (fields.contains("CloudTrailEvent") && fields.contains("EventName"))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    principal_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    account_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    access_key_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    user_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    invoked_by: Option<Text<'a>>,
    #[serde(borrow, default)]
    sign_in_session_arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    session_context: Option<SessionContext<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SessionContext<'a> {
    #[serde(borrow, default)]
    attributes: Option<SessionAttributes<'a>>,
    #[serde(borrow, default)]
    session_issuer: Option<SessionIssuer<'a>>,
    #[serde(borrow, default)]
    source_identity: Option<Text<'a>>,
    #[serde(borrow, default)]
    sign_in_session_arn: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SessionAttributes<'a> {
    #[serde(borrow, default)]
    creation_date: Option<Text<'a>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    mfa_authenticated: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SessionIssuer<'a> {
    #[serde(borrow, default)]
    arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    user_name: Option<Text<'a>>,
}

/// The request parameters the model uses; everything else in them stays in `raw`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RequestParameters<'a> {
    #[serde(borrow, default)]
    bucket_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    key: Option<Text<'a>>,
    #[serde(borrow, default)]
    user_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    role_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    group_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    policy_arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    policy_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    role_arn: Option<Text<'a>>,
    #[serde(borrow, default)]
    source_identity: Option<Text<'a>>,
    #[serde(borrow, default)]
    secret_id: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResponseElements<'a> {
    #[serde(borrow, default)]
    credentials: Option<IssuedCredentials<'a>>,
    #[serde(borrow, default)]
    access_key: Option<IssuedCredentials<'a>>,
    #[serde(borrow, default)]
    assumed_role_user: Option<AssumedRoleUser<'a>>,
    #[serde(rename = "ConsoleLogin", borrow, default)]
    console_login: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IssuedCredentials<'a> {
    #[serde(borrow, default)]
    access_key_id: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AssumedRoleUser<'a> {
    #[serde(borrow, default)]
    arn: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AdditionalEventData<'a> {
    /// Kept as written: an out-of-range count must be a reject, not a number changed.
    #[serde(rename = "bytesTransferredOut", borrow, default)]
    bytes_out: Option<&'a RawValue>,
    #[serde(rename = "MFAUsed", borrow, default)]
    mfa_used: Option<Text<'a>>,
}

/// The largest byte count read exactly (2^53: every whole number up to it is an exact `f64`,
/// as CloudTrail writes `1048576.0`).
const MAX_BYTE_COUNT: u64 = 1 << 53;

/// A byte count as CloudTrail writes it (`1048576` or `1048576.0`). Anything else (negative,
/// fractional, past 2^53, `1e999999`, a string) rejects the record: a count the engine sums
/// is never silently dropped or changed.
fn byte_count(raw: &RawValue, key: &str) -> Result<u64, Reject> {
    let text = raw.get();
    let whole = match text.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => text
            .parse::<f64>()
            .ok()
            .filter(|x| {
                x.is_finite() && *x >= 0.0 && x.fract() == 0.0 && *x <= MAX_BYTE_COUNT as f64
            })
            .map(|x| x as u64),
    };
    whole.filter(|n| *n <= MAX_BYTE_COUNT).ok_or_else(|| {
        let shown: String = text.chars().take(40).collect();
        Reject::new(
            RejectReason::InvalidField,
            format!("{key}: {shown} is not a byte count (a whole number from 0 to 2^53)"),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceEntry<'a> {
    #[serde(rename = "ARN", alias = "arn", borrow, default)]
    arn: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
}

/// The first element of `resources`, the rest read (so that an element of the wrong shape
/// fails the read as a `Vec<ResourceEntry>` would) but not kept.
struct FirstResource<'a>(Option<ResourceEntry<'a>>);

impl<'de> Deserialize<'de> for FirstResource<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(FirstResourceVisitor)
    }
}

struct FirstResourceVisitor;

impl<'de> Visitor<'de> for FirstResourceVisitor {
    type Value = FirstResource<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<ResourceEntry<'de>>()?;
        while seq.next_element::<ResourceEntry<'de>>()?.is_some() {}
        Ok(FirstResource(first))
    }
}

/// The members the first pass reads straight into typed values, each with its position.
/// Which ones depends on what was read before them, as `normalize` decides it.
#[derive(Default)]
pub struct Captured<'a> {
    identity: Option<(usize, Option<UserIdentity<'a>>)>,
    params: Option<(usize, Option<RequestParameters<'a>>)>,
    response: Option<(usize, Option<ResponseElements<'a>>)>,
    extra: Option<(usize, Option<AdditionalEventData<'a>>)>,
    resource: Option<(usize, Option<FirstResource<'a>>)>,
}

impl<'de> Captured<'de> {
    #[inline]
    pub fn capture<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        seen: &Fields<'_>,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        let position = seen.len();
        let service = |want: fn(&str) -> bool| {
            let source = seen.text("eventSource").ok().flatten();
            source.is_some_and(|s| want(s.split('.').next().unwrap_or("")))
        };
        let name = |want: fn(&str) -> bool| {
            let name = seen.text("eventName").ok().flatten();
            name.is_some_and(|n| want(&n))
        };
        match key {
            "userIdentity" => self.identity = Some((position, map.next_value()?)),
            "requestParameters" if service(wants_params) => {
                self.params = Some((position, map.next_value()?));
            }
            "responseElements" if name(wants_response) => {
                self.response = Some((position, map.next_value()?));
            }
            "additionalEventData" if name(|n| n == "ConsoleLogin") || service(|s| s == "s3") => {
                self.extra = Some((position, map.next_value()?));
            }
            "resources" if seen.contains("eventSource") => {
                self.resource = Some((position, map.next_value()?));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn wants_params(service: &str) -> bool {
    PARAMETER_SERVICES.contains(&service)
}

fn wants_response(event_name: &str) -> bool {
    RESPONSE_EVENTS.contains(&event_name) || event_name.starts_with("AssumeRole")
}

/// Services whose request parameters name the resource, policy or role the model reports.
const PARAMETER_SERVICES: &[&str] = &["iam", "s3", "sts", "secretsmanager"];

/// Events whose response names an issued credential or a sign-in result.
const RESPONSE_EVENTS: &[&str] = &[
    "GetSessionToken",
    "GetFederationToken",
    "CreateAccessKey",
    "ConsoleLogin",
];

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let raw: &serde_json::value::RawValue = Deserialize::deserialize(d)?;
    super::fields::raw_bool(raw, "mfaAuthenticated").map_err(serde::de::Error::custom)
}

fn normalize(mut record: Record<'_>) -> Result<Event<'_>, Reject> {
    if let Some(inner) = lookup_events_record(&record)? {
        return normalize(inner);
    }
    let cap = std::mem::take(&mut record.captured.cloudtrail);
    let f = &record.fields;
    let time = record.time(&["eventTime"])?;
    let event_source = f.required_text("eventSource")?;
    let event_name = f.required_text("eventName")?;
    let identity: UserIdentity<'_> = match captured(cap.identity, f, "userIdentity") {
        Some(identity) => identity,
        None => f.typed("userIdentity")?,
    }
    .unwrap_or_default();
    // Request and response bodies can be large; read them only for the calls whose fields the
    // model uses. A body of an unexpected shape is left to `raw`, never a reject.
    let service_name = event_source.split('.').next().unwrap_or("");
    let params: RequestParameters<'_> = if wants_params(service_name) {
        captured(cap.params, f, "requestParameters")
            .unwrap_or_else(|| f.typed("requestParameters").ok().flatten())
            .unwrap_or_default()
    } else {
        RequestParameters::default()
    };
    let response: ResponseElements<'_> = if wants_response(&event_name) {
        captured(cap.response, f, "responseElements")
            .unwrap_or_else(|| f.typed("responseElements").ok().flatten())
            .unwrap_or_default()
    } else {
        ResponseElements::default()
    };
    let mut extra = captured(cap.extra, f, "additionalEventData");
    let mut additional = || {
        extra
            .take()
            .unwrap_or_else(|| f.typed("additionalEventData").ok().flatten())
    };
    let account = non_empty(identity.account_id.clone())
        .or_else(|| non_empty(f.text("recipientAccountId").ok().flatten()));

    let service = match event_source.split_once_prefix('.') {
        Some((service, _)) => service,
        None => event_source.clone(),
    };
    let action = Action {
        service,
        operation: event_name.clone(),
        vendor: event_name.clone(),
    };

    let context = identity.session_context.as_ref();
    let attributes = context.and_then(|c| c.attributes.as_ref());
    let creation = attributes
        .and_then(|a| a.creation_date.as_deref())
        .and_then(Timestamp::parse);
    let source_identity = non_empty(context.and_then(|c| c.source_identity.clone()))
        .or_else(|| non_empty(params.source_identity.clone()));

    let from_console = f.bool("sessionCredentialFromConsole").ok().flatten() == Some(true);
    let is_console_login = event_name == "ConsoleLogin";
    let child_key = issued_key(&event_name, &params, &response, account.clone());
    let mut session = session_of(
        record.scratch,
        &identity,
        account.clone(),
        creation,
        from_console,
        is_console_login.then_some(time),
    );
    if session.is_none() && event_name.starts_with("AssumeRoleWith") {
        // SAML / web-identity callers have no AWS credential: the event opens the child session.
        session = child_key.clone().map(|key| Session {
            key,
            kind: SessionKind::TemporaryCredential,
            derived: false,
            issuer: non_empty(params.role_arn.clone()),
            created_at: Some(time),
            mfa: None,
        });
    }
    let mut session = session.ok_or_else(|| {
        Reject::no_session(format!(
            "userIdentity of type {} has no access key, principal or session",
            identity.kind.as_deref().unwrap_or("(none)")
        ))
    })?;
    if session.mfa.is_none() && is_console_login {
        let extra: AdditionalEventData<'_> = additional().unwrap_or_default();
        session.mfa = extra.mfa_used.map(|m| m == "Yes");
    }
    if session.issuer.is_none() {
        session.issuer = context
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| non_empty(i.arn.clone()));
    }

    let lineage = (child_key.is_some() || source_identity.is_some()).then(|| Lineage {
        child: child_key,
        child_role: non_empty(params.role_arn.clone()).or_else(|| {
            response
                .assumed_role_user
                .as_ref()
                .and_then(|u| non_empty(u.arn.clone()))
        }),
        source_identity,
    });

    let outcome = outcome_of(f, &response)?;
    let operation = operation_of(&action, f.bool("readOnly").ok().flatten());
    let first_resource = captured(cap.resource, f, "resources");
    let (resource, mut scopes) = resource_of(f, &action, &params, first_resource);
    let records = grants_and_batch(f, &event_name, account, &mut scopes);
    let bytes = if action.service == "s3" {
        additional()
            .and_then(|d| d.bytes_out)
            .map(|raw| byte_count(raw, "additionalEventData.bytesTransferredOut"))
            .transpose()?
    } else {
        None
    };

    let network = network_of(f, &identity)?;

    Ok(Event {
        time,
        source: Source::Cloudtrail,
        id: non_empty(f.text("eventID")?),
        session,
        principal: principal_of(identity),
        action,
        outcome,
        operation,
        resource,
        bytes,
        records,
        network,
        client: Client {
            user_agent: non_empty(f.text("userAgent")?),
            device: None,
        },
        scopes,
        agent: agent_of(lineage.as_ref()),
        lineage,
        raw: record.fields,
    })
}

/// Who called: the identity's type, ARN (else principal id) and user name (else the name of
/// the role its session was issued by).
fn principal_of(identity: UserIdentity<'_>) -> Principal<'_> {
    let issuer_name = identity
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|i| non_empty(i.user_name.clone()));
    Principal {
        kind: non_empty(identity.kind),
        id: non_empty(identity.arn).or(non_empty(identity.principal_id)),
        name: non_empty(identity.user_name).or(issuer_name),
    }
}

/// The record inside a LookupEvents result, which wraps it as a JSON string in
/// `CloudTrailEvent`, keeping the outer record's time as the pipeline's; `None` for a record
/// that is itself a CloudTrail event.
fn lookup_events_record<'a>(record: &Record<'a>) -> Result<Option<Record<'a>>, Reject> {
    if record.fields.contains("eventVersion") {
        return Ok(None);
    }
    let Some(raw) = record.fields.value("CloudTrailEvent") else {
        return Ok(None);
    };
    let inner = raw_object(raw, "CloudTrailEvent", record.scratch)?
        .ok_or_else(|| Reject::invalid_field("CloudTrailEvent", "empty"))?;
    let pipeline_time = record
        .pipeline_time
        .or_else(|| pipeline_time_of(&record.fields))
        .or_else(|| {
            let t = record.fields.text("EventTime").ok()??;
            Timestamp::parse(&t)
        });
    Ok(Some(Record {
        fields: inner,
        pipeline_time,
        scratch: record.scratch,
        captured: Captures::default(),
    }))
}

/// For the rare calls that grant access or act on a batch, their parameters read whole, once:
/// the grants go to `scopes`, and the number of items a batch touched is returned.
fn grants_and_batch<'a>(
    f: &Fields<'a>,
    event_name: &str,
    account: Option<Text<'a>>,
    scopes: &mut Vec<Text<'a>>,
) -> Option<u64> {
    let batch = matches!(
        event_name,
        "BatchGetSecretValue" | "GetParameters" | "DeleteObjects"
    );
    if !batch && !aws_grants::is_grant_call(event_name) {
        return None;
    }
    let all = f
        .typed::<serde_json::Value>("requestParameters")
        .ok()
        .flatten()?;
    let own = f.text("recipientAccountId").ok().flatten().or(account);
    let grants = aws_grants::grants(event_name, &all, own.as_deref());
    scopes.extend(grants.into_iter().map(Text::owned));
    aws_grants::batch_items(event_name, &all)
}

/// Where the call came from: `sourceIPAddress` is an address, or an AWS service's name (then
/// also `userIdentity.invokedBy`).
fn network_of<'a>(f: &Fields<'a>, identity: &UserIdentity<'a>) -> Result<Network<'a>, Reject> {
    let mut network = Network::default();
    if let Some(ip_text) = non_empty(f.text("sourceIPAddress")?) {
        match parse_ip(&ip_text) {
            Some(ip) => network.ip = Some(ip),
            None if is_service_name(&ip_text) => network.via_service = Some(ip_text),
            None => {}
        }
    }
    if network.via_service.is_none() {
        network.via_service = non_empty(identity.invoked_by.clone());
    }
    Ok(network)
}

/// Agent platforms name the agent in `sourceIdentity` (`agent=<id>`; AWS allows `=` but not
/// `:` there, `agent:<id>` is read too), which every session in a role chain carries. A task id
/// may follow after a comma (`agent=<id>,task=<task id>`), binding the chain to one task grant.
fn agent_of<'a>(lineage: Option<&Lineage<'a>>) -> Option<Agent<'a>> {
    let identity = lineage?.source_identity.as_ref()?;
    let start = ["agent=", "agent:"]
        .iter()
        .find_map(|prefix| identity.strip_prefix(prefix).map(|_| prefix.len()))?;
    let (id_end, task) = match identity[start..].find(",task=") {
        Some(at) => {
            let task_start = start + at + ",task=".len();
            let task =
                (task_start < identity.len()).then(|| identity.slice(task_start..identity.len()));
            (start + at, task)
        }
        None => (identity.len(), None),
    };
    (id_end > start).then(|| Agent {
        id: Some(identity.slice(start..id_end)),
        task,
    })
}

fn session_of<'a>(
    scratch: &'a bumpalo::Bump,
    identity: &UserIdentity<'a>,
    account: Option<Text<'a>>,
    creation: Option<Timestamp>,
    from_console: bool,
    console_login_time: Option<Timestamp>,
) -> Option<Session<'a>> {
    let context = identity.session_context.as_ref();
    let mfa = context
        .and_then(|c| c.attributes.as_ref())
        .and_then(|a| a.mfa_authenticated);
    let session = |key, kind, derived, created_at| Session {
        key,
        kind,
        derived,
        issuer: None,
        created_at,
        mfa,
    };
    let sign_in_arn = non_empty(context.and_then(|c| c.sign_in_session_arn.clone()))
        .or_else(|| non_empty(identity.sign_in_session_arn.clone()));
    if let Some(arn) = sign_in_arn {
        let key = SessionKey::new("aws", account, "signin", arn);
        return Some(session(key, SessionKind::SignIn, false, creation));
    }
    let principal = non_empty(identity.principal_id.clone());
    let console_start = if from_console {
        creation
    } else {
        console_login_time
    };
    if let (Some(principal), Some(start)) = (&principal, console_start) {
        let id = timed_id(scratch, principal, start);
        let key = SessionKey::new("aws", account, "console", id);
        return Some(session(key, SessionKind::SignIn, true, Some(start)));
    }
    if let Some(key_id) = non_empty(identity.access_key_id.clone()) {
        return Some(if key_id.starts_with("ASIA") {
            let key = SessionKey::new("aws", account, "sts", key_id);
            session(key, SessionKind::TemporaryCredential, false, creation)
        } else {
            let key = SessionKey::new("aws", account, "iam-key", key_id);
            session(key, SessionKind::LongTermCredential, false, None)
        });
    }
    if let (Some(principal), Some(created)) = (&principal, creation) {
        let id = timed_id(scratch, principal, created);
        let key = SessionKey::new("aws", account, "principal", id);
        return Some(session(key, SessionKind::Principal, true, Some(created)));
    }
    // No credential and no session time: the root user itself (its API calls can carry no
    // access key in the record), or the AWS service acting.
    match identity.kind.as_deref() {
        Some("Root") => {
            let key = SessionKey::new("aws", account, "principal", principal?);
            Some(session(key, SessionKind::Principal, true, None))
        }
        Some("AWSService") => {
            let service = non_empty(identity.invoked_by.clone())?;
            let key = SessionKey::new("aws", account, "service", service);
            Some(session(key, SessionKind::Principal, true, None))
        }
        _ => None,
    }
}

/// `<principal>:<time>`, the id of a derived key, built in the scratch arena.
fn timed_id<'a>(scratch: &'a bumpalo::Bump, principal: &str, time: Timestamp) -> Text<'a> {
    match time.rfc3339(&mut [0; 24]) {
        Some(time) => Text::concat_in(scratch, &[principal, ":", time]),
        None => Text::owned(format!("{principal}:{time}")),
    }
}

/// The key a credential-issuing call handed to its caller, as a session key.
fn issued_key<'a>(
    event_name: &str,
    params: &RequestParameters<'a>,
    response: &ResponseElements<'a>,
    caller_account: Option<Text<'a>>,
) -> Option<SessionKey<'a>> {
    let (issued, kind) = match event_name {
        "CreateAccessKey" => (response.access_key.as_ref()?, "iam-key"),
        name if name.starts_with("AssumeRole")
            || name == "GetSessionToken"
            || name == "GetFederationToken" =>
        {
            (response.credentials.as_ref()?, "sts")
        }
        _ => return None,
    };
    let key_id = non_empty(issued.access_key_id.clone())?;
    let account = params
        .role_arn
        .as_ref()
        .and_then(|arn| arn_account(arn))
        .or(caller_account);
    Some(SessionKey::new("aws", account, kind, key_id))
}

/// The account field of an ARN (`arn:aws:iam::123456789012:role/x`), borrowed when possible.
fn arn_account<'a>(arn: &Text<'a>) -> Option<Text<'a>> {
    let mut start = 0;
    for (i, part) in arn.split(':').enumerate() {
        if i == 4 {
            return (!part.is_empty()).then(|| arn.slice(start..start + part.len()));
        }
        start += part.len() + 1;
    }
    None
}

fn is_service_name(text: &str) -> bool {
    text.ends_with(".amazonaws.com") || text == "AWS Internal" || text.ends_with(".aws.internal")
}

fn outcome_of<'a>(f: &Fields<'a>, response: &ResponseElements<'a>) -> Result<Outcome<'a>, Reject> {
    if let Some(code) = non_empty(f.text("errorCode")?) {
        let reason = non_empty(f.text("errorMessage")?).unwrap_or(code);
        return Ok(Outcome {
            result: Status::Failure,
            reason: Some(reason),
        });
    }
    if let Some(login) = &response.console_login {
        if login.as_str() != "Success" {
            return Ok(Outcome {
                result: Status::Failure,
                reason: non_empty(f.text("errorMessage")?).or(Some(login.clone())),
            });
        }
    }
    Ok(Outcome {
        result: Status::Success,
        reason: None,
    })
}

const ADMIN_SERVICES: &[&str] = &[
    "iam",
    "organizations",
    "sso",
    "sso-directory",
    "identitystore",
    "access-analyzer",
    "rolesanywhere",
];

fn operation_of(action: &Action<'_>, read_only: Option<bool>) -> Operation {
    let (service, name) = (action.service.as_str(), action.operation.as_str());
    let read_name = ["Get", "List", "Describe", "Head", "Lookup", "BatchGet"]
        .iter()
        .any(|p| name.starts_with(p));
    if service == "signin" || (service == "sts" && name != "GetCallerIdentity") {
        return Operation::Auth;
    }
    if read_only.unwrap_or(read_name) {
        return Operation::Read;
    }
    if ADMIN_SERVICES.contains(&service) || name.contains("Policy") || name.contains("Permission") {
        return Operation::Admin;
    }
    Operation::Write
}

fn resource_of<'a>(
    f: &Fields<'a>,
    action: &Action<'a>,
    params: &RequestParameters<'a>,
    first_resource: Option<Option<FirstResource<'a>>>,
) -> (Option<Resource<'a>>, Vec<Text<'a>>) {
    let mut scopes = Vec::new();
    if let Some(policy) =
        non_empty(params.policy_arn.clone()).or(non_empty(params.policy_name.clone()))
    {
        scopes.push(policy);
    }
    let iam_target = [
        ("user", &params.user_name),
        ("role", &params.role_name),
        ("group", &params.group_name),
    ]
    .into_iter()
    .find_map(|(kind, name)| non_empty(name.clone()).map(|n| (kind, n)));
    let resource = if action.service == "iam" && iam_target.is_some() {
        iam_target.map(|(kind, name)| Resource {
            kind: Some(Text::borrowed(kind)),
            name: Some(name),
            ..Resource::default()
        })
    } else if let Some(bucket) = non_empty(params.bucket_name.clone()) {
        Some(Resource {
            kind: Some(Text::borrowed(if params.key.is_some() {
                "object"
            } else {
                "bucket"
            })),
            name: non_empty(params.key.clone()),
            container: Some(bucket),
            ..Resource::default()
        })
    } else if let Some(secret) = non_empty(params.secret_id.clone()) {
        Some(Resource {
            kind: Some(Text::borrowed("secret")),
            id: Some(secret),
            ..Resource::default()
        })
    } else {
        first_resource
            .unwrap_or_else(|| f.typed::<FirstResource<'a>>("resources").ok().flatten())
            .and_then(|r| r.0)
            .map(|r| Resource {
                kind: non_empty(r.kind),
                id: non_empty(r.arn),
                ..Resource::default()
            })
    };
    (resource, scopes)
}

#[cfg(test)]
mod tests {
    use bumpalo::Bump;

    use super::super::normalize::Captures;
    use super::super::{Normalizer, RejectReason};
    use super::*;

    fn with_event<R>(json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
        super::super::testing::with_event(Source::Cloudtrail, json, check)
    }

    fn key(json: &str) -> String {
        with_event(json, |e| e.session.key.to_string())
    }

    const ASSUMED_ROLE: &str = r#"{"eventVersion":"1.09","eventTime":"2024-08-01T11:30:25Z",
        "eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1",
        "sourceIPAddress":"203.0.113.9","userAgent":"aws-sdk-go-v2/1.30.3",
        "errorCode":"Client.UnauthorizedOperation","errorMessage":"You are not authorized",
        "readOnly":false,"eventID":"e-1","recipientAccountId":"900138736586",
        "userIdentity":{"type":"AssumedRole","principalId":"AROA13YEHY3VAS32TD341:sess",
          "arn":"arn:aws:sts::900138736586:assumed-role/ops/sess","accountId":"900138736586",
          "accessKeyId":"ASIA9F6MXE9HSYOXYQOS","sessionContext":{"sessionIssuer":{"type":"Role",
          "principalId":"AROA13YEHY3VAS32TD341","arn":"arn:aws:iam::900138736586:role/ops",
          "accountId":"900138736586","userName":"ops"},"sourceIdentity":"alice@example.com",
          "attributes":{"creationDate":"2024-08-01T11:30:22Z","mfaAuthenticated":"true"}}}}"#;

    #[test]
    fn temporary_key_session() {
        with_event(ASSUMED_ROLE, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:900138736586:sts:ASIA9F6MXE9HSYOXYQOS"
            );
            assert_eq!(e.session.kind, SessionKind::TemporaryCredential);
            assert!(!e.session.derived);
            assert_eq!(e.session.mfa, Some(true));
            assert_eq!(
                e.session.created_at.unwrap().to_string(),
                "2024-08-01T11:30:22.000Z"
            );
            assert_eq!(
                e.session.issuer.as_deref(),
                Some("arn:aws:iam::900138736586:role/ops")
            );
            assert_eq!(e.time.to_string(), "2024-08-01T11:30:25.000Z");
            assert_eq!(e.action.to_string(), "ec2:RunInstances");
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("You are not authorized"));
            assert_eq!(e.operation, Operation::Write);
            assert_eq!(e.network.ip.unwrap().to_string(), "203.0.113.9");
            assert_eq!(e.principal.name.as_deref(), Some("ops"));
            let lineage = e.lineage.as_ref().unwrap();
            assert_eq!(
                lineage.source_identity.as_deref(),
                Some("alice@example.com")
            );
            assert!(lineage.child.is_none());
        });
    }

    #[test]
    fn long_term_key_is_a_credential_not_a_session() {
        let json = r#"{"eventVersion":"1.09","eventTime":"2024-08-01T13:33:28Z",
            "eventSource":"iam.amazonaws.com","eventName":"AttachUserPolicy","readOnly":false,
            "requestParameters":{"policyArn":"arn:aws:iam::aws:policy/AdministratorAccess",
              "userName":"christophe"},
            "sourceIPAddress":"075.050.255.67",
            "userIdentity":{"type":"IAMUser","principalId":"AIDAZ49AHUAJ9OEK73O5",
              "arn":"arn:aws:iam::229654561268:user/christophe","accountId":"229654561268",
              "accessKeyId":"AKIAOZUDECYXYM4ONAN4","userName":"christophe"}}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:229654561268:iam-key:AKIAOZUDECYXYM4ONAN4"
            );
            assert_eq!(e.session.kind, SessionKind::LongTermCredential);
            assert_eq!(e.operation, Operation::Admin);
            assert_eq!(
                e.scopes,
                vec![Text::borrowed(
                    "arn:aws:iam::aws:policy/AdministratorAccess"
                )]
            );
            let target = e.resource.as_ref().unwrap();
            assert_eq!(target.kind.as_deref(), Some("user"));
            assert_eq!(target.name.as_deref(), Some("christophe"));
            assert_eq!(e.principal.name.as_deref(), Some("christophe"));
            // Stratus disguises addresses with leading zeros: not an IP, not a service.
            assert!(e.network.ip.is_none() && e.network.via_service.is_none());
        });
    }

    #[test]
    fn console_login_and_console_activity_share_one_session() {
        let login = r#"{"eventVersion":"1.08","eventTime":"2024-08-02T08:53:24Z",
            "eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin",
            "eventType":"AwsConsoleSignIn","recipientAccountId":"562283505220",
            "additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home",
              "MFAUsed":"No","MobileVersion":"No"},
            "responseElements":{"ConsoleLogin":"Success"},"sourceIPAddress":"198.51.100.7",
            "userIdentity":{"type":"IAMUser","principalId":"AIDA1ERT0661IN5R239V",
              "arn":"arn:aws:iam::562283505220:user/bob","accountId":"562283505220",
              "userName":"bob"}}"#;
        let activity = r#"{"eventVersion":"1.08","eventTime":"2024-08-02T09:10:00Z",
            "eventSource":"s3.amazonaws.com","eventName":"ListBuckets","readOnly":true,
            "sessionCredentialFromConsole":"true","sourceIPAddress":"198.51.100.7",
            "userIdentity":{"type":"IAMUser","principalId":"AIDA1ERT0661IN5R239V",
              "arn":"arn:aws:iam::562283505220:user/bob","accountId":"562283505220",
              "accessKeyId":"ASIAXQ2EXAMPLE000001","userName":"bob",
              "sessionContext":{"attributes":{"creationDate":"Fri Aug 02 08:53:24 UTC 2024",
                "mfaAuthenticated":"false"}}}}"#;
        let expected = "aws:562283505220:console:AIDA1ERT0661IN5R239V:2024-08-02T08:53:24.000Z";
        with_event(login, |e| {
            assert_eq!(e.session.key.to_string(), expected);
            assert_eq!(e.session.kind, SessionKind::SignIn);
            assert!(e.session.derived);
            assert_eq!(e.session.mfa, Some(false));
            assert_eq!(e.operation, Operation::Auth);
            assert_eq!(e.outcome.result, Status::Success);
        });
        assert_eq!(key(activity), expected);
    }

    #[test]
    fn assume_role_chain_records_lineage() {
        // alice (long-term key) assumes `deployer`; the deployer session assumes `admin`.
        let first = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T11:30:22Z",
            "eventSource":"sts.amazonaws.com","eventName":"AssumeRole",
            "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/deployer",
              "roleSessionName":"alice","sourceIdentity":"alice"},
            "responseElements":{"credentials":{"accessKeyId":"ASIAFIRSTHOP00000001",
              "expiration":"Aug 1, 2024, 12:30:22 PM"},
              "assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/deployer/alice"}},
            "userIdentity":{"type":"IAMUser","principalId":"AIDAALICE","accountId":"444455556666",
              "arn":"arn:aws:iam::444455556666:user/alice","accessKeyId":"AKIAALICE00000000001"}}"#;
        let second = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T11:31:00Z",
            "eventSource":"sts.amazonaws.com","eventName":"AssumeRole",
            "requestParameters":{"roleArn":"arn:aws:iam::777788889999:role/admin",
              "roleSessionName":"alice"},
            "responseElements":{"credentials":{"accessKeyId":"ASIASECONDHOP0000002"}},
            "userIdentity":{"type":"AssumedRole","principalId":"AROADEPLOYER:alice",
              "accountId":"111122223333","accessKeyId":"ASIAFIRSTHOP00000001",
              "sessionContext":{"sourceIdentity":"alice",
                "attributes":{"creationDate":"2024-08-01T11:30:22Z","mfaAuthenticated":"false"}}}}"#;
        with_event(first, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:444455556666:iam-key:AKIAALICE00000000001"
            );
            let l = e.lineage.as_ref().unwrap();
            assert_eq!(
                l.child.as_ref().unwrap().to_string(),
                "aws:111122223333:sts:ASIAFIRSTHOP00000001"
            );
            assert_eq!(
                l.child_role.as_deref(),
                Some("arn:aws:iam::111122223333:role/deployer")
            );
            assert_eq!(l.source_identity.as_deref(), Some("alice"));
            assert_eq!(e.operation, Operation::Auth);
        });
        with_event(second, |e| {
            // The second hop is made by the session the first hop issued.
            assert_eq!(
                e.session.key.to_string(),
                "aws:111122223333:sts:ASIAFIRSTHOP00000001"
            );
            let l = e.lineage.as_ref().unwrap();
            assert_eq!(
                l.child.as_ref().unwrap().to_string(),
                "aws:777788889999:sts:ASIASECONDHOP0000002"
            );
            assert_eq!(l.source_identity.as_deref(), Some("alice"));
        });
    }

    #[test]
    fn agent_identity_comes_from_source_identity() {
        let json = ASSUMED_ROLE.replace("alice@example.com", "agent=invoice-reconciler");
        with_event(&json, |e| {
            let agent = e.agent.as_ref().expect("agent");
            assert_eq!(agent.id.as_deref(), Some("invoice-reconciler"));
        });
        with_event(ASSUMED_ROLE, |e| assert!(e.agent.is_none()));
        let json = ASSUMED_ROLE.replace("alice@example.com", "agent=ledger-sync,task=ls-1207");
        with_event(&json, |e| {
            let agent = e.agent.as_ref().expect("agent");
            assert_eq!(agent.id.as_deref(), Some("ledger-sync"));
            assert_eq!(agent.task.as_deref(), Some("ls-1207"));
        });
        // An empty id names no agent; an empty task names no task.
        for identity in ["agent=", "agent=,task=ls-1"] {
            let json = ASSUMED_ROLE.replace("alice@example.com", identity);
            with_event(&json, |e| assert!(e.agent.is_none(), "{identity}"));
        }
        let json = ASSUMED_ROLE.replace("alice@example.com", "agent=ledger-sync,task=");
        with_event(&json, |e| {
            let agent = e.agent.as_ref().expect("agent");
            assert_eq!(agent.id.as_deref(), Some("ledger-sync"));
            assert_eq!(agent.task, None);
        });
    }

    #[test]
    fn every_credential_issuing_call_names_its_child() {
        for (name, params) in [
            ("GetSessionToken", r#"{"durationSeconds":3600}"#),
            ("GetFederationToken", r#"{"name":"bob"}"#),
        ] {
            let json = format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
                "eventSource":"sts.amazonaws.com","eventName":"{name}",
                "userIdentity":{{"type":"IAMUser","accountId":"111122223333","accessKeyId":"AKIA1"}},
                "requestParameters":{params},
                "responseElements":{{"credentials":{{"accessKeyId":"ASIACHILD"}}}}}}"#
            );
            with_event(&json, |e| {
                let child = e.lineage.as_ref().and_then(|l| l.child.as_ref());
                assert_eq!(
                    child.map(|k| k.to_string()).as_deref(),
                    Some("aws:111122223333:sts:ASIACHILD"),
                    "{name}"
                );
            });
        }
    }

    #[test]
    fn calls_made_by_aws_services_name_the_service() {
        for (address, service) in [
            ("lambda.amazonaws.com", Some("lambda.amazonaws.com")),
            ("AWS Internal", Some("AWS Internal")),
            (
                "ec2.eu-west-1.aws.internal",
                Some("ec2.eu-west-1.aws.internal"),
            ),
            ("internal-proxy.example", None),
        ] {
            let json = format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
                "eventSource":"s3.amazonaws.com","eventName":"GetObject","sourceIPAddress":"{address}",
                "userIdentity":{{"type":"IAMUser","accountId":"111122223333","accessKeyId":"AKIA1"}}}}"#
            );
            with_event(&json, |e| {
                assert_eq!(e.network.via_service.as_deref(), service, "{address}");
                assert!(e.network.ip.is_none());
            });
        }
    }

    #[test]
    fn resources_and_operations_of_calls_without_a_named_target() {
        const CALLER: &str = r#""eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "userIdentity":{"type":"IAMUser","accountId":"111122223333","accessKeyId":"AKIA1"}"#;
        // An IAM call naming no user, role or group: its first listed resource; a secret read:
        // the secret.
        for (call, kind, id) in [
            (
                r#""eventSource":"iam.amazonaws.com","eventName":"CreatePolicy",
                "requestParameters":{"policyName":"p"},
                "resources":[{"ARN":"arn:aws:iam::111122223333:policy/p","type":"AWS::IAM::Policy"}]"#,
                "AWS::IAM::Policy",
                "arn:aws:iam::111122223333:policy/p",
            ),
            (
                r#""eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue",
                "requestParameters":{"secretId":"prod/db"}"#,
                "secret",
                "prod/db",
            ),
        ] {
            with_event(&format!("{{{CALLER},{call}}}"), |e| {
                let r = e.resource.as_ref().expect("resource");
                assert_eq!(r.kind.as_deref(), Some(kind));
                assert_eq!(r.id.as_deref(), Some(id));
            });
        }
        // A permission granted outside the administrative services is administration.
        let json = format!(
            r#"{{{CALLER},"eventSource":"lambda.amazonaws.com","eventName":"AddPermission20150331v2",
            "readOnly":false}}"#
        );
        with_event(&json, |e| assert_eq!(e.operation, Operation::Admin));
    }

    #[test]
    fn saml_federation_opens_the_child_session() {
        let json = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithSAML",
            "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/sso-admin",
              "principalArn":"arn:aws:iam::111122223333:saml-provider/okta"},
            "responseElements":{"credentials":{"accessKeyId":"ASIAFEDERATED0000001"}},
            "userIdentity":{"type":"SAMLUser","principalId":"x:alice","userName":"alice"}}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:111122223333:sts:ASIAFEDERATED0000001"
            );
            assert_eq!(e.session.created_at, Some(e.time));
        });
    }

    #[test]
    fn both_creation_date_forms_give_one_derived_key() {
        let with = |date: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
                "eventSource":"s3.amazonaws.com","eventName":"GetObject",
                "userIdentity":{{"type":"AssumedRole","principalId":"AROAX:s","accountId":"1",
                  "sessionContext":{{"attributes":{{"creationDate":"{date}"}}}}}}}}"#
            )
        };
        let a = key(&with("2024-08-01T09:00:00Z"));
        assert_eq!(a, "aws:1:principal:AROAX:s:2024-08-01T09:00:00.000Z");
        assert_eq!(key(&with("Thu Aug 01 09:00:00 UTC 2024")), a);
    }

    #[test]
    fn a_byte_count_is_read_exactly_or_rejects_the_record() {
        let get_object = |bytes: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
                "eventSource":"s3.amazonaws.com","eventName":"GetObject","readOnly":true,
                "sourceIPAddress":"203.0.113.9",
                "additionalEventData":{{"bytesTransferredOut":{bytes}}},
                "requestParameters":{{"bucketName":"finance","key":"q3.csv"}},
                "userIdentity":{{"type":"AssumedRole","accountId":"1","accessKeyId":"ASIAX"}}}}"#
            )
        };
        for (written, read) in [
            ("0", 0),
            ("1048576", 1_048_576),
            ("1048576.0", 1_048_576),
            ("9007199254740992", 1 << 53),
        ] {
            let bytes = with_event(&get_object(written), |e| e.bytes);
            assert_eq!(bytes, Some(read), "{written}");
        }
        assert_eq!(with_event(&get_object("null"), |e| e.bytes), None);
        for written in [
            "1e999999",
            "-5",
            "1.8e22",
            "12.5",
            "9007199254740993",
            "\"5\"",
        ] {
            let reject = super::super::testing::rejected(&get_object(written));
            assert_eq!(
                reject.reason,
                RejectReason::InvalidField,
                "{written}: {reject}"
            );
            assert!(
                reject.detail.contains("bytesTransferredOut") && reject.detail.contains(written),
                "{written}: {reject}"
            );
        }
    }

    #[test]
    fn service_calls_on_a_sessions_behalf_keep_the_session() {
        let json = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "eventSource":"s3.amazonaws.com","eventName":"GetObject","readOnly":true,
            "sourceIPAddress":"athena.amazonaws.com",
            "additionalEventData":{"bytesTransferredOut":1048576.0},
            "requestParameters":{"bucketName":"finance","key":"q3.csv"},
            "userIdentity":{"type":"AssumedRole","accountId":"1","accessKeyId":"ASIAANALYST",
              "invokedBy":"athena.amazonaws.com"}}"#;
        with_event(json, |e| {
            assert!(e.network.ip.is_none());
            assert_eq!(
                e.network.via_service.as_deref(),
                Some("athena.amazonaws.com")
            );
            assert_eq!(e.bytes, Some(1_048_576));
            assert_eq!(e.operation, Operation::Read);
            let r = e.resource.as_ref().unwrap();
            assert_eq!(
                (r.kind.as_deref(), r.container.as_deref(), r.name.as_deref()),
                (Some("object"), Some("finance"), Some("q3.csv"))
            );
        });
    }

    #[test]
    fn lookup_events_wrapper_is_opened() {
        let json = r#"{"EventId":"1","EventName":"DescribeInstances","EventTime":"2022-02-08 09:23:37+11:00",
            "CloudTrailEvent":"{\"eventVersion\":\"1.08\",\"eventTime\":\"2022-02-07T22:23:37Z\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"DescribeInstances\",\"userIdentity\":{\"type\":\"IAMUser\",\"accountId\":\"012345678901\",\"accessKeyId\":\"AKIAWRAPPED\"}}"}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:012345678901:iam-key:AKIAWRAPPED"
            );
            assert_eq!(e.operation, Operation::Read);
        });
    }

    #[test]
    fn root_and_aws_service_records_are_keyed_by_principal_and_service() {
        let scratch = Bump::new();
        let key = |json: &str| {
            Normalizer::default()
                .normalize(json.as_bytes(), &scratch)
                .map(|e| (e.session.key.to_string(), e.session.derived))
        };
        let service = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "eventSource":"kms.amazonaws.com","eventName":"Decrypt","recipientAccountId":"493859302102",
            "userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}"#;
        assert_eq!(
            key(service).unwrap(),
            ("aws:493859302102:service:s3.amazonaws.com".to_owned(), true)
        );
        let root = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "eventSource":"iam.amazonaws.com","eventName":"CreateUser",
            "userIdentity":{"type":"Root","principalId":"493859302102","accountId":"493859302102",
              "arn":"arn:aws:iam::493859302102:root"}}"#;
        assert_eq!(
            key(root).unwrap(),
            ("aws:493859302102:principal:493859302102".to_owned(), true)
        );
        // An assumed role with neither key nor session names no identity to key by.
        let role = root.replace(
            r#""type":"Root","principalId":"493859302102","#,
            r#""type":"AssumedRole","#,
        );
        assert_eq!(
            key(&role).unwrap_err().reason,
            RejectReason::NoSessionIdentity
        );
        let no_time = r#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"X",
            "userIdentity":{"accessKeyId":"AKIA1"}}"#;
        let err = Normalizer::default()
            .normalize(no_time.as_bytes(), &scratch)
            .unwrap_err();
        assert_eq!(err.reason, RejectReason::BadTimestamp);
    }

    #[test]
    fn each_detection_needs_both_its_members() {
        let scratch = Bump::new();
        let detected = |json: &str| detect(&Fields::parse(json, &scratch).unwrap());
        assert!(detected(
            r#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com"}"#
        ));
        assert!(detected(
            r#"{"CloudTrailEvent":"{}","EventName":"GetObject"}"#
        ));
        for json in [
            r#"{"eventVersion":"1.08","source":"x"}"#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#,
            r#"{"EventName":"GetObject","EventTime":"2024-08-01T10:00:00Z"}"#,
            r#"{"CloudTrailEvent":"{}","EventId":"1"}"#,
        ] {
            assert!(!detected(json), "{json}");
        }
    }

    #[test]
    fn grants_and_batches_are_read_through_the_adapter() {
        const CALLER: &str = r#""eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "recipientAccountId":"111122223333",
            "userIdentity":{"type":"IAMUser","accountId":"111122223333","accessKeyId":"AKIA1"}"#;
        // A snapshot shared with another account: a grant, and no batch.
        let share = format!(
            r#"{{{CALLER},"eventSource":"ec2.amazonaws.com","eventName":"ModifySnapshotAttribute",
            "requestParameters":{{"snapshotId":"snap-1","createVolumePermission":{{"add":{{"items":
            [{{"userId":"444455556666"}}]}}}}}}}}"#
        );
        with_event(&share, |e| {
            assert_eq!(e.scopes, vec![Text::borrowed("grant:account:444455556666")]);
            assert_eq!(e.records, None);
        });
        // A batch delete: its items counted, no grant.
        let delete = format!(
            r#"{{{CALLER},"eventSource":"s3.amazonaws.com","eventName":"DeleteObjects",
            "requestParameters":{{"bucketName":"b","delete":{{"Object":[{{"Key":"a"}},{{"Key":"b"}},
            {{"Key":"c"}}]}}}}}}"#
        );
        with_event(&delete, |e| {
            assert_eq!(e.records, Some(3));
            assert!(e.scopes.is_empty());
        });
    }

    #[test]
    fn a_web_identity_call_made_with_a_credential_stays_the_callers() {
        // Unsigned as a rule, so the event opens the child session; signed by a session, it is
        // that session's act, and the child is its lineage.
        let json = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithWebIdentity",
            "userIdentity":{"type":"AssumedRole","accountId":"111122223333","accessKeyId":"ASIACALLER"},
            "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/ci"},
            "responseElements":{"credentials":{"accessKeyId":"ASIACHILD"}}}"#;
        with_event(json, |e| {
            assert_eq!(e.session.key.to_string(), "aws:111122223333:sts:ASIACALLER");
            let lineage = e.lineage.as_ref().unwrap();
            assert_eq!(
                lineage.child.as_ref().unwrap().to_string(),
                "aws:111122223333:sts:ASIACHILD"
            );
        });
    }

    #[test]
    fn the_first_pass_captures_each_member_the_adapter_reads() {
        // The captures are a cache: one missed costs a second parse of the member, one taken
        // that the adapter does not read costs a typed parse of a body nobody uses. Neither
        // changes an event, so only this test sees them. A body is wanted when the member that
        // decides it (`eventSource`, `eventName`) came first: so in the records CloudTrail
        // writes; files with sorted keys (Stratus Red Team's) put `additionalEventData` first,
        // uncaptured. Records of other sources (OCSF's `resources`) are never captured.
        let records = super::super::testing::fixture_records();
        let (mut counts, mut responses) = ([0usize; 5], 0);
        let each = |record: &str, fields: &Fields<'_>, captures: Captures<'_>| {
            let cap = captures.cloudtrail;
            // Present, and after the member that decides whether it is wanted.
            let after = |key: &str, decider: &str| {
                fields.position(decider).is_some()
                    && fields.position(key) > fields.position(decider)
            };
            let text = |key: &str| fields.text(key).ok().flatten().map(|t| t.to_string());
            let source = text("eventSource").unwrap_or_default();
            let service = source.split('.').next().unwrap_or("");
            let name = text("eventName").unwrap_or_default();
            let extra = "additionalEventData";
            let expected = [
                fields.position("userIdentity").is_some(),
                after("requestParameters", "eventSource") && wants_params(service),
                after("responseElements", "eventName") && wants_response(&name),
                (after(extra, "eventName") && name == "ConsoleLogin")
                    || (after(extra, "eventSource") && service == "s3"),
                after("resources", "eventSource"),
            ];
            let taken = [
                captured(cap.identity, fields, "userIdentity").is_some(),
                captured(cap.params, fields, "requestParameters").is_some(),
                captured(cap.response, fields, "responseElements").is_some(),
                captured(cap.extra, fields, "additionalEventData").is_some(),
                captured(cap.resource, fields, "resources").is_some(),
            ];
            assert_eq!(taken, expected, "{name} {record}");
            for (count, taken) in counts.iter_mut().zip(taken) {
                *count += usize::from(taken);
            }
            responses += usize::from(after("responseElements", "eventName"));
        };
        let cloudtrail = super::super::testing::first_pass_each(&records, detect, each);
        assert!(cloudtrail > 100, "{cloudtrail} CloudTrail records");
        // Each kind of capture, and each kind of body left alone, occurs in the fixtures.
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        let bodies = records
            .iter()
            .filter(|r| r.contains("\"requestParameters\""))
            .count();
        assert!(counts[1] < bodies, "{} of {bodies}", counts[1]);
        assert!(counts[2] < responses, "{} of {responses}", counts[2]);
    }
}
