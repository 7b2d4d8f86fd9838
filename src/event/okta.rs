//! Okta System Log events (`/api/v1/logs`, event hooks' `data.events[]` entries, log streaming),
//! one `LogEvent` per record.
//!
//! # Detection
//!
//! A top-level `eventType` whose value is dotted (`user.session.start`; CloudTrail's own
//! `eventType` is `AwsApiCall`, undotted), no CloudTrail `eventSource`/`eventVersion`, and at
//! least one other `LogEvent` member: `published`, `uuid`, `actor`, `authenticationContext`,
//! `legacyEventType` or `displayMessage`. Data lakes that lower-case column names (Panther,
//! Snowflake) write the multi-word top-level members as `eventtype`, `authenticationcontext`,
//! `securitycontext`, `debugcontext` …; both spellings are read. Nested keys keep their case.
//!
//! # Session key, in order of preference
//!
//! 1. `authenticationContext.rootSessionId` → `okta:<id>`, kind `sign_in`.
//! 2. `authenticationContext.externalSessionId` → `okta:<id>`, kind `sign_in`.
//!
//! 3. Without either: `transaction.detail.requestApiTokenId` (the API token the call was made
//!    with) → `okta:token:<id>`, kind `token`, `derived: true`. API-token calls are exactly the
//!    non-human sessions this engine watches: one token's calls are one session.
//! 4. Else the actor, when it is an identity (a known id, not an IP address) →
//!    `okta:actor:<id>`, kind `principal`, `derived: true` (Okta's own jobs, admin actions
//!    logged without a session).
//!
//! Okta writes `"unknown"` when an event has no session; that counts as absent. A record with
//! none of these has no identity and is rejected (`no_session_identity`). Both session ids name the same Okta session cookie (`rootSessionId` survives session refresh), so
//! they share one key form and the key carries no org: Okta session ids are globally unique.
//! `session.created_at` is set on a successful `user.session.start`, `session.issuer` from
//! `authenticationContext.issuer.id`, and `session.mfa` is `true` only on a successful factor
//! verification (`user.authentication.auth_via_mfa`, or a `user.authentication.*` success whose
//! `authenticationProvider` is `FACTOR_PROVIDER`); otherwise the source says nothing and it
//! stays unset.
//!
//! # Mapping
//!
//! `action` = `okta:<eventType>`. `outcome.result`: `SUCCESS`/`ALLOW` → success,
//! `FAILURE`/`DENY` → failure, anything else (`CHALLENGE`, `SKIPPED`, `UNKNOWN` …) → unknown;
//! `outcome.reason` is kept. `operation` (first match wins):
//! - read: `application.user_membership.show_password` — revealing an app password is a
//!   credential read, not a membership change;
//! - admin: `user.session.impersonation.*` (support access grants), `user.account.privilege.*`,
//!   `group.privilege.*`, `group.user_membership.*`, `application.user_membership.*`,
//!   `system.api_token.*`, `system.mfa.*` (org-wide factor settings), `*.lifecycle.*`, `role.*`,
//!   `iam.*`, `policy.*` except `policy.evaluate_sign_on`, `user.account.reset_password`;
//! - auth: `user.session.*`, `user.authentication.*`, `user.mfa.*`, `policy.evaluate_sign_on`,
//!   `app.oauth2.*` events about tokens or authorization, `user.account.lock` (lockout after
//!   failed sign-ins);
//! - unknown: `security.*` — Okta's own threat detections, not an operation by the actor;
//! - write: everything else.
//!
//! Principal from `actor` (name = `alternateId`, else `displayName`). Network from
//! `client.ipAddress`, `securityContext.asNumber` and `client.geographicalContext`; client from
//! `client.userAgent.rawUserAgent` and `client.device`. The resource is the first `target`.
//! Scopes: what an event grants — `debugContext.debugData.privilegeGranted` (comma-separated),
//! and the role- and group-typed targets of granting events (`*.grant`, `*.add`, `*assign*`:
//! the group of `group.user_membership.add`, the role of a role assignment) — and the OAuth
//! scopes a token carries (`debugData.grantedScopes`).

use std::marker::PhantomData;

use bumpalo::Bump;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::{raw_text, raw_u64, Fields};
use super::model::{
    Action, Client, Event, Network, Operation, Outcome, Principal, Resource, Session, SessionKey,
    SessionKind, Source, Status,
};
use super::normalize::{non_empty, parse_ip, Adapter, Record};
use super::reject::Reject;
use super::text::Text;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Okta,
    detect,
    normalize,
};

/// The value of a top-level member under its `LogEvent` name or its lower-cased column name.
fn member<'a>(f: &Fields<'a>, name: &str, lower: &str) -> Option<&'a RawValue> {
    f.value(name).or_else(|| f.value(lower))
}

/// The position of the member `member` reads.
fn member_position(f: &Fields<'_>, name: &str, lower: &str) -> Option<usize> {
    f.value_position(name).or_else(|| f.value_position(lower))
}

fn detect(fields: &Fields<'_>) -> bool {
    let Some(event_type) = member(fields, "eventType", "eventtype") else {
        return false;
    };
    let dotted = event_type.get().starts_with('"') && event_type.get().contains('.');
    dotted
        && !fields.contains("eventSource")
        && !fields.contains("eventVersion")
        && (fields.contains("published")
            || fields.contains("uuid")
            || fields.contains("actor")
            || member_position(fields, "authenticationContext", "authenticationcontext").is_some()
            || member_position(fields, "legacyEventType", "legacyeventtype").is_some()
            || member_position(fields, "displayMessage", "displaymessage").is_some())
}

/// A member read in the first pass: an object, parsed as `T`, or anything else (consumed and
/// left to the adapter's lenient readers, on its raw JSON).
enum Nested<T> {
    Object(T),
    Other,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nested<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NestedVisitor(PhantomData))
    }
}

struct NestedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NestedVisitor<T> {
    type Value = Nested<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Nested::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Nested::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Nested::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Nested::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Nested::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Nested::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Nested::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Nested::Other)
    }
}

/// The `target` member read in the first pass: an array, read as `Targets`, or anything else.
enum TargetsCapture<'a> {
    Array(Targets<'a>),
    Other,
}

impl<'de> Deserialize<'de> for TargetsCapture<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TargetsCaptureVisitor)
    }
}

struct TargetsCaptureVisitor;

impl<'de> Visitor<'de> for TargetsCaptureVisitor {
    type Value = TargetsCapture<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        TargetsVisitor.visit_seq(seq).map(TargetsCapture::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(TargetsCapture::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(TargetsCapture::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(TargetsCapture::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(TargetsCapture::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(TargetsCapture::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(TargetsCapture::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(TargetsCapture::Other)
    }
}

/// The members the first pass reads straight into typed values, each with its position.
#[derive(Default)]
pub struct Captured<'a> {
    context: Option<(usize, Nested<AuthenticationContext<'a>>)>,
    outcome: Option<(usize, Nested<OktaOutcome<'a>>)>,
    actor: Option<(usize, Nested<Actor<'a>>)>,
    client: Option<(usize, Nested<OktaClient<'a>>)>,
    security: Option<(usize, Nested<SecurityContext>)>,
    debug: Option<(usize, Nested<DebugContext<'a>>)>,
    targets: Option<(usize, TargetsCapture<'a>)>,
    /// A member of another source's records was seen.
    elsewhere: bool,
}

impl<'de> Captured<'de> {
    #[inline]
    pub fn capture<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        seen: &Fields<'_>,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            "authenticationContext"
            | "authenticationcontext"
            | "outcome"
            | "actor"
            | "client"
            | "securityContext"
            | "securitycontext"
            | "debugContext"
            | "debugcontext"
            | "target"
                if !self.elsewhere => {}
            // Other sources use some of these names (OCSF and GitHub `actor`): after one of
            // their own members, leave the record alone.
            "class_uid" | "metadata" | "eventVersion" | "apiVersion" | "action" => {
                self.elsewhere = true;
                return Ok(false);
            }
            _ => return Ok(false),
        }
        let position = seen.len();
        match key {
            "authenticationContext" | "authenticationcontext" => {
                self.context = Some((position, map.next_value()?));
            }
            "outcome" => self.outcome = Some((position, map.next_value()?)),
            "actor" => self.actor = Some((position, map.next_value()?)),
            "client" => self.client = Some((position, map.next_value()?)),
            "securityContext" | "securitycontext" => {
                self.security = Some((position, map.next_value()?));
            }
            "debugContext" | "debugcontext" => self.debug = Some((position, map.next_value()?)),
            _ => self.targets = Some((position, map.next_value()?)),
        }
        Ok(true)
    }
}

/// A captured object, when it was read from the member `member(f, name, lower)` reads.
fn captured_object<T>(
    slot: Option<(usize, Nested<T>)>,
    f: &Fields<'_>,
    name: &str,
    lower: &str,
) -> Option<T> {
    match slot? {
        (position, Nested::Object(value)) => {
            (member_position(f, name, lower) == Some(position)).then_some(value)
        }
        (_, Nested::Other) => None,
    }
}

/// The captured `target` array, when it was read from the member `f.value("target")` reads.
fn captured_targets<'a>(
    slot: Option<(usize, TargetsCapture<'a>)>,
    f: &Fields<'_>,
) -> Option<Targets<'a>> {
    match slot? {
        (position, TargetsCapture::Array(targets)) => {
            (f.value_position("target") == Some(position)).then_some(targets)
        }
        (_, TargetsCapture::Other) => None,
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Actor<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    id: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default, deserialize_with = "lenient_text")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    alternate_id: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    display_name: Option<Text<'a>>,
}

/// `transaction`: only what keys an event without a session.
#[derive(Deserialize, Default)]
struct Transaction<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    detail: Option<TransactionDetail<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TransactionDetail<'a> {
    /// The API token an API call was made with (Okta logs it since 2022).
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    request_api_token_id: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthenticationContext<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    root_session_id: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    external_session_id: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    authentication_provider: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    issuer: Option<Issuer<'a>>,
}

#[derive(Deserialize, Default)]
struct Issuer<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    id: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OktaClient<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    ip_address: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    device: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    user_agent: Option<UserAgent<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    geographical_context: Option<Geo<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UserAgent<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    raw_user_agent: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Geo<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    city: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    country: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    #[serde(default, deserialize_with = "lenient_u64")]
    as_number: Option<u64>,
}

#[derive(Deserialize, Default)]
struct OktaOutcome<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    result: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    reason: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DebugContext<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    debug_data: Option<DebugData<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DebugData<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    privilege_granted: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    granted_scopes: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Target<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    id: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default, deserialize_with = "lenient_text")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    alternate_id: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    display_name: Option<Text<'a>>,
}

/// The `target` array read in one pass: its first entry (the resource) and the names of the
/// roles and groups among the rest, without collecting anything else.
#[derive(Default)]
struct Targets<'a> {
    first: Option<Target<'a>>,
    roles_and_groups: Vec<Text<'a>>,
}

impl<'de> Deserialize<'de> for Targets<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(TargetsVisitor)
    }
}

struct TargetsVisitor;

impl<'de> Visitor<'de> for TargetsVisitor {
    type Value = Targets<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of targets")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut targets = Targets::default();
        while let Some(target) = seq.next_element::<Option<Target<'de>>>()? {
            let Some(target) = target else { continue };
            let grantable = target.kind.as_deref().is_some_and(|k| {
                // Bytes, not `str` slicing: a multi-byte type name must not panic.
                k == "UserGroup"
                    || k.len() >= 4 && k.as_bytes()[k.len() - 4..].eq_ignore_ascii_case(b"role")
            });
            if grantable {
                let name = target
                    .display_name
                    .clone()
                    .or_else(|| target.alternate_id.clone())
                    .or_else(|| target.id.clone());
                targets.roles_and_groups.extend(name);
            }
            if targets.first.is_none() {
                targets.first = Some(target);
            }
        }
        Ok(targets)
    }
}

/// A scalar read as text whatever its JSON type; structures and "unknown"/empty values are
/// absent. Okta pipelines re-type fields freely, and one odd member must not lose the object.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'de>>, D::Error> {
    let raw: &'de RawValue = Deserialize::deserialize(d)?;
    Ok(known(raw_text(raw, "").ok().flatten()))
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let raw: &'de RawValue = Deserialize::deserialize(d)?;
    Ok(raw_u64(raw, "").ok().flatten())
}

/// A nested object, or absent when the member is anything else (Okta writes `"debugData": ""`).
fn lenient_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let raw: &'de RawValue = Deserialize::deserialize(d)?;
    let json = raw.get();
    Ok(if json.starts_with('{') {
        serde_json::from_str(json).ok()
    } else {
        None
    })
}

/// A non-empty value other than Okta's placeholder `"unknown"`.
fn known(text: Option<Text<'_>>) -> Option<Text<'_>> {
    non_empty(text).filter(|t| !t.eq_ignore_ascii_case("unknown"))
}

/// A top-level object member parsed into `T`: an object, or a JSON string holding one (the
/// Log Analytics shape, unescaped into the scratch arena). `null` and `""` are absent.
fn nested<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    field: &str,
    scratch: &'a Bump,
) -> Result<Option<T>, Reject> {
    let Some(raw) = raw else { return Ok(None) };
    let json = raw.get();
    let object: &'a str = match json.as_bytes().first() {
        Some(b'{') => json,
        Some(b'"') => {
            let inner: Text<'a> =
                serde_json::from_str(json).map_err(|e| Reject::invalid_field(field, e))?;
            let inner = inner.trim();
            if inner.is_empty() {
                return Ok(None);
            }
            if !inner.starts_with('{') {
                return Err(Reject::invalid_field(field, "expected an object"));
            }
            scratch.alloc_str(inner)
        }
        Some(b'n') => return Ok(None),
        _ => return Err(Reject::invalid_field(field, "expected an object")),
    };
    serde_json::from_str(object)
        .map(Some)
        .map_err(|e| Reject::invalid_field(field, e))
}

/// Like `nested`, for members that only enrich the event: a malformed one is left out.
fn optional<'a, T: Deserialize<'a> + Default>(
    f: &Fields<'a>,
    name: &str,
    lower: &str,
    scratch: &'a Bump,
) -> T {
    nested(member(f, name, lower), name, scratch)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn normalize(mut record: Record<'_>) -> Result<Event<'_>, Reject> {
    let cap = std::mem::take(&mut record.captured.okta);
    let f = &record.fields;
    let scratch = record.scratch;
    let event_type = match member(f, "eventType", "eventtype") {
        Some(raw) => non_empty(raw_text(raw, "eventType")?),
        None => None,
    }
    .ok_or_else(|| Reject::invalid_field("eventType", "missing"))?;
    let time = record.time(&["published"])?;

    // The session is what the event is keyed by: a malformed context is an error, not absence.
    let (name, lower) = ("authenticationContext", "authenticationcontext");
    let context: AuthenticationContext<'_> = match captured_object(cap.context, f, name, lower) {
        Some(context) => context,
        None => nested(member(f, name, lower), name, scratch)?.unwrap_or_default(),
    };
    let actor: Actor<'_> = captured_object(cap.actor, f, "actor", "actor")
        .unwrap_or_else(|| optional(f, "actor", "actor", scratch));

    let outcome: OktaOutcome<'_> = captured_object(cap.outcome, f, "outcome", "outcome")
        .unwrap_or_else(|| optional(f, "outcome", "outcome", scratch));
    let result = match outcome.result.as_deref() {
        Some("SUCCESS" | "ALLOW") => Status::Success,
        Some("FAILURE" | "DENY") => Status::Failure,
        _ => Status::Unknown,
    };
    let succeeded = result == Status::Success;

    let verified_factor = event_type == "user.authentication.auth_via_mfa"
        || (event_type.starts_with("user.authentication.")
            && context.authentication_provider.as_deref() == Some("FACTOR_PROVIDER"));
    let session = match context.root_session_id.or(context.external_session_id) {
        Some(id) => Session {
            key: SessionKey::new("okta", None, "", id),
            kind: SessionKind::SignIn,
            derived: false,
            issuer: context.issuer.and_then(|i| i.id),
            created_at: (succeeded && event_type == "user.session.start").then_some(time),
            mfa: (succeeded && verified_factor).then_some(true),
        },
        None => sessionless(f, &actor, &event_type, scratch)?,
    };
    let client: OktaClient<'_> = captured_object(cap.client, f, "client", "client")
        .unwrap_or_else(|| optional(f, "client", "client", scratch));
    let (name, lower) = ("securityContext", "securitycontext");
    let security: SecurityContext = captured_object(cap.security, f, name, lower)
        .unwrap_or_else(|| optional(f, name, lower, scratch));
    let (name, lower) = ("debugContext", "debugcontext");
    let debug: DebugContext<'_> = captured_object(cap.debug, f, name, lower)
        .unwrap_or_else(|| optional(f, name, lower, scratch));
    let targets: Targets<'_> = captured_targets(cap.targets, f).unwrap_or_else(|| {
        f.value("target")
            .filter(|raw| raw.get().starts_with('['))
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default()
    });

    let operation = operation_of(&event_type);
    let scopes = scopes_of(&event_type, debug.debug_data, targets.roles_and_groups);
    let geo = client.geographical_context.unwrap_or_default();

    Ok(Event {
        time,
        source: Source::Okta,
        id: known(f.text("uuid").ok().flatten()),
        session,
        principal: Principal {
            kind: actor.kind,
            id: actor.id,
            name: actor.alternate_id.or(actor.display_name),
        },
        action: Action {
            service: Text::borrowed("okta"),
            operation: event_type.clone(),
            vendor: event_type,
        },
        outcome: Outcome {
            result,
            reason: outcome.reason,
        },
        operation,
        resource: targets.first.map(|t| Resource {
            kind: t.kind,
            id: t.id,
            name: t.alternate_id.or(t.display_name),
            container: None,
        }),
        bytes: None,
        records: None,
        network: Network {
            ip: client.ip_address.as_deref().and_then(parse_ip),
            via_service: None,
            asn: security.as_number.and_then(|n| u32::try_from(n).ok()),
            country: geo.country,
            city: geo.city,
        },
        client: Client {
            user_agent: client.user_agent.and_then(|u| u.raw_user_agent),
            device: client.device,
        },
        scopes,
        agent: None,
        lineage: None,
        raw: record.fields,
    })
}

/// The session of an event with no Okta session: keyed by the API token it was made with, or
/// else by its actor (both `derived`); rejected when it has neither (an IP address as the actor
/// of a threat detection is not an identity).
fn sessionless<'a>(
    f: &Fields<'a>,
    actor: &Actor<'a>,
    event_type: &str,
    scratch: &'a Bump,
) -> Result<Session<'a>, Reject> {
    let transaction: Transaction<'_> = optional(f, "transaction", "transaction", scratch);
    let token = transaction.detail.and_then(|d| d.request_api_token_id);
    let (kind, session_kind, id) = match (token, &actor.id) {
        (Some(token), _) => ("token", SessionKind::Token, token),
        (None, Some(id)) if is_identity(actor) => ("actor", SessionKind::Principal, id.clone()),
        _ => {
            return Err(Reject::no_session(format!(
                "{event_type} has no session: authenticationContext.rootSessionId and \
                 externalSessionId are absent or \"unknown\", and it names no API token \
                 (transaction.detail.requestApiTokenId) and no actor identity"
            )))
        }
    };
    Ok(Session {
        key: SessionKey::new("okta", None, kind, id),
        kind: session_kind,
        derived: true,
        issuer: None,
        created_at: None,
        mfa: None,
    })
}

/// Whether an actor names an identity: a known id (`"unknown"` reads as none), and a type
/// other than an IP address.
fn is_identity(actor: &Actor<'_>) -> bool {
    actor.id.is_some()
        && !actor
            .kind
            .as_deref()
            .is_some_and(|kind| kind.eq_ignore_ascii_case("IP address"))
}

const ADMIN_PREFIXES: &[&str] = &[
    "user.session.impersonation.",
    "user.account.privilege.",
    "group.privilege.",
    "group.user_membership.",
    "application.user_membership.",
    "system.api_token.",
    "system.mfa.",
    "role.",
    "iam.",
    "policy.",
];

const AUTH_PREFIXES: &[&str] = &[
    "user.session.",
    "user.authentication.",
    "user.mfa.",
    "policy.evaluate_sign_on",
];

fn operation_of(event_type: &str) -> Operation {
    if event_type == "application.user_membership.show_password" {
        return Operation::Read;
    }
    if event_type == "policy.evaluate_sign_on" {
        return Operation::Auth;
    }
    if ADMIN_PREFIXES.iter().any(|p| event_type.starts_with(p))
        || event_type.contains(".lifecycle.")
        || event_type == "user.account.reset_password"
    {
        return Operation::Admin;
    }
    if AUTH_PREFIXES.iter().any(|p| event_type.starts_with(p))
        || event_type == "user.account.lock"
        || (event_type.starts_with("app.oauth2.")
            && (event_type.contains("token") || event_type.contains("authorize")))
    {
        return Operation::Auth;
    }
    if event_type.starts_with("security.") {
        return Operation::Unknown;
    }
    Operation::Write
}

/// What the event grants or carries: roles and groups named by the targets of a granting event
/// (`*.grant`, `*.add`, `*assign*`), the privileges Okta lists in `privilegeGranted`, and the
/// OAuth scopes of an issued token.
fn scopes_of<'a>(
    event_type: &str,
    debug: Option<DebugData<'a>>,
    roles_and_groups: Vec<Text<'a>>,
) -> Vec<Text<'a>> {
    let granting = event_type.ends_with(".grant")
        || event_type.ends_with(".add")
        || (event_type.contains("assign") && !event_type.contains("unassign"));
    let mut scopes = if granting {
        roles_and_groups
    } else {
        Vec::new()
    };
    if let Some(debug) = debug {
        for list in [debug.privilege_granted, debug.granted_scopes]
            .into_iter()
            .flatten()
        {
            list.split_list(&mut scopes);
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::normalize::Captures;
    use crate::event::{Normalizer, RejectReason};

    fn normalize_line(line: &str) -> Result<Event<'static>, Reject> {
        let scratch: &'static Bump = Box::leak(Box::new(Bump::new()));
        let line: &'static str = Box::leak(line.to_owned().into_boxed_str());
        Normalizer::default().normalize(line.as_bytes(), scratch)
    }

    const SIGN_IN: &str = r#"{"actor":{"id":"00u1a2b3c4d5e6f7g8h9","type":"User","alternateId":"dana.lee@example.com","displayName":"Dana Lee"},"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36","os":"Mac OS X","browser":"CHROME"},"zone":"null","device":"Computer","id":null,"ipAddress":"203.0.113.24","geographicalContext":{"city":"Lisbon","state":"Lisbon","country":"Portugal","postalCode":"1000-001","geolocation":{"lat":38.7223,"lon":-9.1393}}},"device":null,"authenticationContext":{"authenticationProvider":"OKTA_AUTHENTICATION_PROVIDER","credentialProvider":null,"credentialType":"PASSWORD","issuer":null,"interface":null,"authenticationStep":0,"rootSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg","externalSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg"},"displayMessage":"User login to Okta","eventType":"user.session.start","outcome":{"result":"SUCCESS","reason":null},"published":"2024-05-14T09:12:31.482Z","securityContext":{"asNumber":3243,"asOrg":"meo","isp":"meo","domain":"telepac.pt","isProxy":false},"severity":"INFO","debugContext":{"debugData":{"requestId":"ZkMrL3Xq8Q0AAB3mXvQAAAD0","requestUri":"/idp/idx/identify","url":"/idp/idx/identify?"}},"legacyEventType":"core.user_auth.login_success","transaction":{"type":"WEB","id":"ZkMrL3Xq8Q0AAB3mXvQAAAD0","detail":{}},"uuid":"4b2f7c1e-11d9-11ef-9a3c-5b1c2e0f7d21","version":"0","request":{"ipChain":[{"ip":"203.0.113.24","version":"V4"}]},"target":[{"id":"pfd1a2b3c4d5e6f7g8h9","type":"AuthenticatorEnrollment","alternateId":"unknown","displayName":"Password","detailEntry":null}]}"#;

    #[test]
    fn sign_in_is_keyed_by_root_session_id() {
        let e = normalize_line(SIGN_IN).unwrap();
        assert_eq!(e.source, Source::Okta);
        assert_eq!(e.session.key.to_string(), "okta:102HjhNbUf9RTaQPQ0vz2w1Zg");
        assert_eq!(e.session.kind, SessionKind::SignIn);
        assert!(!e.session.derived);
        assert_eq!(e.session.created_at, Some(e.time));
        assert_eq!(e.session.mfa, None);
        assert_eq!(e.time.to_string(), "2024-05-14T09:12:31.482Z");
        assert_eq!(e.action.to_string(), "okta:user.session.start");
        assert_eq!(e.action.vendor, "user.session.start");
        assert_eq!(e.outcome.result, Status::Success);
        assert_eq!(e.operation, Operation::Auth);
        assert_eq!(e.principal.id.as_deref(), Some("00u1a2b3c4d5e6f7g8h9"));
        assert_eq!(e.principal.kind.as_deref(), Some("User"));
        assert_eq!(e.principal.name.as_deref(), Some("dana.lee@example.com"));
        assert_eq!(e.network.ip.unwrap().to_string(), "203.0.113.24");
        assert_eq!(e.network.asn, Some(3243));
        assert_eq!(e.network.country.as_deref(), Some("Portugal"));
        assert_eq!(e.network.city.as_deref(), Some("Lisbon"));
        assert_eq!(e.client.device.as_deref(), Some("Computer"));
        assert!(e.client.user_agent.unwrap().starts_with("Mozilla/5.0"));
        let resource = e.resource.unwrap();
        assert_eq!(resource.kind.as_deref(), Some("AuthenticatorEnrollment"));
        // Okta's "unknown" alternateId is no name; the display name stands in.
        assert_eq!(resource.name.as_deref(), Some("Password"));
        assert_eq!(
            e.id.as_deref(),
            Some("4b2f7c1e-11d9-11ef-9a3c-5b1c2e0f7d21")
        );
    }

    #[test]
    fn external_session_id_when_root_is_absent() {
        let line = SIGN_IN.replace(r#""rootSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg","#, "");
        let e = normalize_line(&line).unwrap();
        assert_eq!(e.session.key.to_string(), "okta:102HjhNbUf9RTaQPQ0vz2w1Zg");
        let line = SIGN_IN.replace(
            r#""rootSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg","externalSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg""#,
            r#""rootSessionId":"unknown","externalSessionId":"trsxcsf59kYRG-GwAbWjw-PZA""#,
        );
        let e = normalize_line(&line).unwrap();
        assert_eq!(e.session.key.to_string(), "okta:trsxcsf59kYRG-GwAbWjw-PZA");
        assert_eq!(e.session.kind, SessionKind::SignIn);
        assert!(!e.session.derived);
    }

    #[test]
    fn without_a_session_the_api_token_then_the_actor_keys_the_event() {
        let no_session = SIGN_IN.replace(
            r#""rootSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg","externalSessionId":"102HjhNbUf9RTaQPQ0vz2w1Zg""#,
            r#""externalSessionId":"unknown""#,
        );
        // Made with an API token: that token is the session.
        let line = no_session.replace(
            r#""detail":{}"#,
            r#""detail":{"requestApiTokenId":"00T1a2b3c4d5e6f7g8h9"}"#,
        );
        let e = normalize_line(&line).unwrap();
        assert_eq!(e.session.key.to_string(), "okta:token:00T1a2b3c4d5e6f7g8h9");
        assert_eq!(e.session.kind, SessionKind::Token);
        assert!(e.session.derived);
        assert_eq!(e.session.created_at, None);
        // No token named: the actor.
        let e = normalize_line(&no_session).unwrap();
        assert_eq!(e.session.key.to_string(), "okta:actor:00u1a2b3c4d5e6f7g8h9");
        assert_eq!(e.session.kind, SessionKind::Principal);
        assert!(e.session.derived);
        // An IP address as the actor (threat detections) is no identity; nor is no actor.
        let ip_actor = no_session.replace(
            r#""id":"00u1a2b3c4d5e6f7g8h9","type":"User""#,
            r#""id":"198.51.100.7","type":"IP address""#,
        );
        let r = normalize_line(&ip_actor).unwrap_err();
        assert_eq!(r.reason, RejectReason::NoSessionIdentity);
        assert!(r.detail.contains("no API token"), "{}", r.detail);
        let no_actor = no_session.replace(r#""actor":"#, r#""ignoredActor":"#);
        let r = normalize_line(&no_actor).unwrap_err();
        assert_eq!(r.reason, RejectReason::NoSessionIdentity);
    }

    #[test]
    fn malformed_session_context_is_an_invalid_field() {
        let line = SIGN_IN.replace(
            r#""authenticationContext":{"#,
            r#""authenticationContext":7,"ignored":{"#,
        );
        let r = normalize_line(&line).unwrap_err();
        assert_eq!(r.reason, RejectReason::InvalidField);
        assert!(
            r.detail.starts_with("authenticationContext"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn privilege_grant_is_admin_and_carries_the_granted_roles() {
        let line = r#"{"uuid":"2a992f80-d1ad-4f62-900e-8c68bb72a21b","published":"2020-11-25 21:27:03.496000000","eventType":"user.account.privilege.grant","legacyEventType":"core.user.admin_privilege.granted","actor":{"id":"00uu1uuuuIlllaaaa356","type":"User","alternateId":"jack@acme.io","displayName":"Jack"},"client":{"ipAddress":"136.24.229.58"},"outcome":{"result":"SUCCESS"},"target":[{"id":"00u6eup97mAJZWYmP357","type":"User","alternateId":"alice@acme.io","displayName":"Alice Green"}],"debugContext":{"debugData":{"privilegeGranted":"Organization administrator, Application administrator (all)"}},"authenticationContext":{"externalSessionId":"idxFdpa1wMgT0Ga1nZ2WmPsmQ"}}"#;
        let e = normalize_line(line).unwrap();
        assert_eq!(e.session.key.to_string(), "okta:idxFdpa1wMgT0Ga1nZ2WmPsmQ");
        assert_eq!(e.operation, Operation::Admin);
        assert_eq!(e.time.to_string(), "2020-11-25T21:27:03.496Z");
        let scopes: Vec<&str> = e.scopes.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            scopes,
            [
                "Organization administrator",
                "Application administrator (all)"
            ]
        );
        assert_eq!(e.resource.unwrap().name.as_deref(), Some("alice@acme.io"));
    }

    #[test]
    fn membership_grants_name_the_group_and_revocations_grant_nothing() {
        let line = r#"{"uuid":"a1f07d21","published":"2024-05-14T15:24:02.557Z","eventType":"group.user_membership.add","authenticationContext":{"rootSessionId":"idxQm3rT9uVbW2xYz4AcDeFgH"},"outcome":{"result":"SUCCESS"},"target":[{"id":"00ub0oNGTSWTBKOLGLNS","type":"User","alternateId":"svc-backup@example.com"},{"id":"00gb0oPQRSWTBKOLGLNT","type":"UserGroup","alternateId":"unknown","displayName":"AWS-Prod-Admins"}]}"#;
        let e = normalize_line(line).unwrap();
        assert_eq!(e.operation, Operation::Admin);
        assert_eq!(
            e.resource.unwrap().name.as_deref(),
            Some("svc-backup@example.com")
        );
        let scopes: Vec<&str> = e.scopes.iter().map(|s| s.as_str()).collect();
        assert_eq!(scopes, ["AWS-Prod-Admins"]);
        let odd = line.replace(r#""type":"User","#, r#""type":"Uéxyz","#);
        assert_eq!(normalize_line(&odd).unwrap().scopes.len(), 1);
        let removal = line.replace("user_membership.add", "user_membership.remove");
        assert!(normalize_line(&removal).unwrap().scopes.is_empty());
        // A role grant: any type ending in `role` (`ROLE`, `CUSTOM_ROLE`), whatever its case;
        // a type too short to end in it is read without fault.
        let role = line
            .replace("group.user_membership.add", "user.account.privilege.grant")
            .replace(r#""type":"UserGroup""#, r#""type":"CUSTOM_ROLE""#)
            .replace(r#""type":"User","#, r#""type":"App","#);
        let scopes: Vec<String> = normalize_line(&role)
            .unwrap()
            .scopes
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(scopes, ["AWS-Prod-Admins"]);
    }

    #[test]
    fn a_null_context_a_factor_event_and_a_repeated_target() {
        // A null context is no context: the event is keyed without one.
        let line = SIGN_IN.replace(
            &SIGN_IN[SIGN_IN.find(r#""authenticationContext""#).unwrap()
                ..SIGN_IN.find(r#""displayMessage""#).unwrap()],
            r#""authenticationContext":null,"#,
        );
        let e = normalize_line(&line).unwrap();
        assert!(e.session.derived, "{}", e.session.key);
        // An MFA verification event verifies a factor whatever the provider.
        let mfa = SIGN_IN.replace(
            r#""eventType":"user.session.start""#,
            r#""eventType":"user.authentication.auth_via_mfa""#,
        );
        assert_eq!(normalize_line(&mfa).unwrap().session.mfa, Some(true));
        // A repeated `target` (the second spelled with an escape, so the first pass takes only
        // the first) is read as its last occurrence, as every member is.
        let repeated = SIGN_IN.replace(
            r#""target":[{"id":"pfd1a2b3c4d5e6f7g8h9""#,
            r#""target":[{"id":"stale"}],"version":"0","t\u0061rget":[{"id":"pfd1a2b3c4d5e6f7g8h9""#,
        );
        let e = normalize_line(&repeated).unwrap();
        assert_eq!(
            e.resource.unwrap().id.as_deref(),
            Some("pfd1a2b3c4d5e6f7g8h9")
        );
    }

    #[test]
    fn assigning_grants_and_unassigning_does_not() {
        let roles = || vec![Text::borrowed("Super Administrator")];
        assert_eq!(
            scopes_of("user.account.role.assign", None, roles()),
            roles()
        );
        assert!(scopes_of("user.account.role.unassign", None, roles()).is_empty());
        assert!(scopes_of("user.session.start", None, roles()).is_empty());
    }

    #[test]
    fn targets_read_outside_the_first_pass_are_read_alike() {
        // The first pass hands `target` over already read; a target read later (the member
        // repeated, or after another source's member) goes through `Targets`' own reader.
        let targets: Targets<'_> = serde_json::from_str(
            r#"[null,{"id":"00u1","type":"User","alternateId":"bob@example.com"},
            {"id":"00g1","type":"UserGroup","displayName":"Admins"},
            {"id":"r1","type":"ROLE","alternateId":"Super Admin"}]"#,
        )
        .unwrap();
        assert_eq!(targets.first.unwrap().id.as_deref(), Some("00u1"));
        assert_eq!(targets.roles_and_groups, ["Admins", "Super Admin"]);
        assert!(serde_json::from_str::<Targets<'_>>(r#"{"id":"x"}"#).is_err());
    }

    #[test]
    fn lower_cased_columns_and_odd_member_types_are_read() {
        let line = r#"{"eventtype":"user.authentication.auth_via_mfa","published":"2022-06-22 18:18:29.015","authenticationcontext":"{\"externalSessionId\":\"100-abc-9999\",\"authenticationProvider\":\"FACTOR_PROVIDER\"}","outcome":{"result":"SUCCESS"},"securitycontext":{"asNumber":"701"},"debugcontext":{"debugData":""},"client":{"ipAddress":"not an ip","device":7}}"#;
        let e = normalize_line(line).unwrap();
        assert_eq!(e.session.key.to_string(), "okta:100-abc-9999");
        assert_eq!(e.session.mfa, Some(true));
        assert_eq!(e.operation, Operation::Auth);
        assert_eq!(e.network.asn, Some(701));
        assert_eq!(e.network.ip, None);
        assert_eq!(e.client.device.as_deref(), Some("7"));
    }

    #[test]
    fn outcome_and_operation_mapping() {
        for (result, status) in [
            ("SUCCESS", Status::Success),
            ("ALLOW", Status::Success),
            ("FAILURE", Status::Failure),
            ("DENY", Status::Failure),
            ("CHALLENGE", Status::Unknown),
            ("SKIPPED", Status::Unknown),
        ] {
            let line = SIGN_IN.replace(r#""result":"SUCCESS""#, &format!(r#""result":"{result}""#));
            assert_eq!(normalize_line(&line).unwrap().outcome.result, status);
        }
        for (event_type, operation) in [
            ("user.session.start", Operation::Auth),
            ("user.session.impersonation.grant", Operation::Admin),
            ("user.mfa.factor.deactivate", Operation::Auth),
            ("policy.evaluate_sign_on", Operation::Auth),
            ("policy.lifecycle.update", Operation::Admin),
            ("policy.rule.update", Operation::Admin),
            ("app.oauth2.as.token.grant.access_token", Operation::Auth),
            ("app.oauth2.authorize.code", Operation::Auth),
            ("group.user_membership.add", Operation::Admin),
            ("user.lifecycle.create", Operation::Admin),
            ("system.api_token.create", Operation::Admin),
            ("application.user_membership.show_password", Operation::Read),
            ("security.threat.detected", Operation::Unknown),
            ("user.account.update_profile", Operation::Write),
        ] {
            assert_eq!(operation_of(event_type), operation, "{event_type}");
        }
    }

    #[test]
    fn detection_keeps_to_okta() {
        let scratch = bumpalo::Bump::new();
        let fields = |json: &'static str| Fields::parse(json, &scratch).unwrap();
        assert!(detect(&fields(
            r#"{"eventType":"user.session.start","published":"2024-01-01T00:00:00Z"}"#
        )));
        assert!(!detect(&fields(
            r#"{"eventType":"AwsApiCall","eventVersion":"1.08","eventSource":"s3.amazonaws.com"}"#
        )));
        assert!(!detect(&fields(
            r#"{"eventType":"AwsConsoleSignIn","uuid":"x"}"#
        )));
        assert!(!detect(&fields(r#"{"eventType":"user.session.start"}"#)));
        assert!(!detect(&fields(r#"{"eventType":{"a.b":1},"uuid":"x"}"#)));
    }

    #[test]
    fn list_splitting_borrows() {
        let list = Text::borrowed(" openid, profile ,,email");
        let mut out = Vec::new();
        list.split_list(&mut out);
        let parts: Vec<&str> = out.iter().map(|s| s.as_str()).collect();
        assert_eq!(parts, ["openid", "profile", "email"]);
        assert!(out
            .iter()
            .all(|t| matches!(t.0, std::borrow::Cow::Borrowed(_))));
    }

    #[test]
    fn each_detection_mark_alone_is_enough() {
        let scratch = Bump::new();
        let detected = |json: &str| detect(&Fields::parse(json, &scratch).unwrap());
        for mark in [
            r#""published":"2024-05-14T09:12:31Z""#,
            r#""uuid":"4b2f7c1e""#,
            r#""actor":{"id":"00u1"}"#,
            r#""authenticationContext":{}"#,
            r#""legacyeventtype":"core.user_auth.login_success""#,
            r#""displayMessage":"User login to Okta""#,
        ] {
            let json = format!(r#"{{"eventType":"user.session.start",{mark}}}"#);
            assert!(detected(&json), "{json}");
        }
        assert!(!detected(
            r#"{"eventType":"user.session.start","severity":"INFO"}"#
        ));
    }

    #[test]
    fn the_first_pass_captures_each_object_the_adapter_reads() {
        // As CloudTrail's: a cache no event shows. An object member is captured unless a member
        // naming another source's records (`class_uid`, `action` …) came before it.
        let elsewhere = [
            "class_uid",
            "metadata",
            "eventVersion",
            "apiVersion",
            "action",
        ];
        let members = [
            ("authenticationContext", "authenticationcontext"),
            ("outcome", "outcome"),
            ("actor", "actor"),
            ("client", "client"),
            ("securityContext", "securitycontext"),
            ("debugContext", "debugcontext"),
        ];
        let (mut counts, mut left) = ([0usize; 7], 0);
        let each = |record: &str, f: &Fields<'_>, captures: Captures<'_>| {
            let first_elsewhere = elsewhere.iter().filter_map(|k| f.position(k)).min();
            let wanted = |position: Option<usize>, open: &str| {
                position.is_some_and(|p| {
                    first_elsewhere.is_none_or(|e| e > p)
                        && f.iter()
                            .nth(p)
                            .is_some_and(|(_, v)| v.get().starts_with(open))
                })
            };
            let cap = captures.okta;
            let mut expected: Vec<bool> = members
                .iter()
                .map(|(name, lower)| wanted(member_position(f, name, lower), "{"))
                .collect();
            expected.push(wanted(f.value_position("target"), "["));
            let taken = [
                captured_object(cap.context, f, members[0].0, members[0].1).is_some(),
                captured_object(cap.outcome, f, "outcome", "outcome").is_some(),
                captured_object(cap.actor, f, "actor", "actor").is_some(),
                captured_object(cap.client, f, "client", "client").is_some(),
                captured_object(cap.security, f, members[4].0, members[4].1).is_some(),
                captured_object(cap.debug, f, members[5].0, members[5].1).is_some(),
                captured_targets(cap.targets, f).is_some(),
            ];
            assert_eq!(taken.as_slice(), expected, "{record}");
            for (count, taken) in counts.iter_mut().zip(taken) {
                *count += usize::from(taken);
            }
            left += usize::from(
                first_elsewhere.is_some() && members.iter().any(|(n, _)| f.position(n).is_some()),
            );
        };
        let records = super::super::testing::fixture_records();
        let okta = super::super::testing::first_pass_each(&records, detect, each);
        assert!(okta > 50, "{okta} Okta records");
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        // Records of other sources with members of these names (OCSF's and GitHub's `actor`).
        assert!(left > 0);
    }
}
