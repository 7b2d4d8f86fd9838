//! Microsoft Entra ID (Azure AD) sign-in logs and directory audit logs.
//!
//! # Formats
//!
//! One adapter reads three shapes of the same two record kinds (sign-ins and directory audits):
//!
//! * **Microsoft Graph** (`/auditLogs/signIns`, `/auditLogs/directoryAudits`): camelCase members
//!   (`createdDateTime`, `userPrincipalName`, `status{errorCode,…}`, `initiatedBy{user,app}` …).
//!   Detected by `createdDateTime` + (`userPrincipalName` | `appId` | `servicePrincipalId`), or
//!   `activityDateTime` + `activityDisplayName`.
//! * **Log Analytics / Microsoft Sentinel** tables `SigninLogs`,
//!   `AADNonInteractiveUserSignInLogs`, `AADServicePrincipalSignInLogs`,
//!   `AADManagedIdentitySignInLogs` and `AuditLogs`: the same members in PascalCase, nested objects
//!   (`Status`, `DeviceDetail`, `LocationDetails`, `InitiatedBy`, `TargetResources` …) often
//!   re-encoded as JSON strings. Detected by `TimeGenerated` and a `Type` naming one of those
//!   tables; without `Type`, by a sign-in `Category`, `OperationName: "Sign-in activity"` or an
//!   `ActivityDisplayName`.
//! * **Azure Monitor diagnostic-settings export** (Event Hub, storage account; Panther's
//!   `Azure.Audit`): `{time, tenantId, category, operationName, resultType, callerIpAddress,
//!   properties: {…the Graph shape…}}`. Detected by `properties` and a `category` of
//!   `SignInLogs`, `NonInteractiveUserSignInLogs`, `ServicePrincipalSignInLogs`,
//!   `ManagedIdentitySignInLogs` or `AuditLogs`. The category alone decides: Azure Activity
//!   (control-plane) categories never take these names (its `category` is `Administrative`,
//!   `Policy` … or a `{value, localized_value}` object), and Entra-logged Azure RBAC entries
//!   (elevate access) carry a `Microsoft.Authorization` rather than a `Microsoft.aadiam`
//!   `resourceId`, so `resourceId` is not required to name `Microsoft.aadiam`.
//!
//! Member names are matched without regard to ASCII case, so one reader serves the camelCase and
//! PascalCase shapes (and the all-lowercase envelopes some pipelines write: `tenantid`,
//! `calleripaddress`). Log Analytics `TenantId` (capital T) is the *workspace* id, not the Entra
//! tenant, and is never used as the tenant.
//!
//! # Session key, in order of preference
//!
//! The tenant scope is `homeTenantId`, else `resourceTenantId`, else `AADTenantId`, else the
//! export's `tenantId` (audits: the initiator's `homeTenantId` first, set for guests, so that a
//! guest's audits and sign-ins share the home tenant). It is left out when none is present:
//! Graph `directoryAudit` records and `AADServicePrincipalSignInLogs` rows carry no tenant, so
//! their keys (`entra:user:<id>`, `entra:uti:<uti>`) do not join with the tenant-scoped keys of
//! the same principal read from another shape.
//!
//! Sign-ins:
//! 1. `sessionId` → `entra:<tenant>:sid:<sessionId>`, kind `sign_in`. Interactive and
//!    non-interactive sign-ins of one browser/app session share it.
//! 2. `uniqueTokenIdentifier` → `entra:<tenant>:uti:<uti>`, kind `token` (one issued token).
//! 3. Service-principal and managed-identity sign-ins with neither →
//!    `entra:<tenant>:sp:<servicePrincipalId>`, kind `principal`, derived.
//! 4. User sign-ins with neither → `entra:<tenant>:user:<userId>`, kind `principal`, derived.
//!
//! Directory audits carry no session or token id, so the key is always derived from the
//! initiator: `entra:<tenant>:user:<initiatedBy.user.id>`, else
//! `entra:<tenant>:sp:<initiatedBy.app.servicePrincipalId>` (kind `principal`, derived). These are
//! the same keys as rules 3 and 4, so the engine can join an administrator's audit trail with
//! that principal's derived sign-in key. An audit without either id (system-initiated changes) is
//! rejected as `no_session_identity`.
//!
//! `session.mfa` is only what the source says: `authenticationRequirement:
//! multiFactorAuthentication` on a successful sign-in → `true`; `singleFactorAuthentication` →
//! `false`; anything else (a failed MFA-required sign-in, audits) → unknown. `session.issuer` is
//! `tokenIssuerName`, else `tokenIssuerType`, where present.
//!
//! # Mapping
//!
//! * `action.service` is `entra`. Sign-ins: operation `signin`, vendor `operationName`
//!   (`Sign-in activity`), else the category, else `Sign-in activity`. Audits: operation and
//!   vendor are `activityDisplayName` (e.g. `Add member to role`).
//! * `operation`: sign-ins → auth. Audits whose category names role management or policy, or
//!   whose activity mentions a role, consent, credentials, certificates and secrets, policy,
//!   permission grants, owners, federation or elevation → admin; other audits → write.
//! * `outcome`: sign-ins by `status.errorCode` (else `ResultType`, else the export's
//!   `resultType`): `0` → success, any other code → failure with `failureReason` /
//!   `ResultDescription` as reason (the code itself when no text is given). Audits by `result`
//!   (`success`; `failure` and `timeout` → failure with `resultReason`).
//! * `principal`: sign-ins: `userId` / `userPrincipalName`, type `User`, or for service
//!   principals `servicePrincipalId` / `servicePrincipalName`, type `ServicePrincipal`. Audits:
//!   the initiator, same types.
//! * `network`: `ipAddress` (audits: `initiatedBy.user.ipAddress`), else the export's
//!   `callerIpAddress` (audits: else the `ipaddr` entry of `additionalDetails`, where PIM puts it);
//!   `autonomousSystemNumber`; country and city from `location` /
//!   `LocationDetails` (the plain `Location` string is a country only for sign-ins: on audit rows
//!   it names a datacenter).
//! * `client`: `userAgent` (audits: the `User-Agent` entry of `additionalDetails`); device =
//!   `deviceDetail.deviceId`, else its `displayName`, else `unregistered` when the sign-in
//!   has a `deviceDetail` naming neither: a device Entra does not know is a device too, and the
//!   one a stolen session token is replayed from is usually that (`sg.entra.new_device`).
//! * `resource`: sign-ins: the resource signed in to (`resourceDisplayName`, `resourceId` /
//!   `ResourceIdentity`; the Log Analytics `/tenants/…/Microsoft.aadiam` path is ignored), else
//!   the client application. Audits: the first target resource, with its vendor type.
//! * `scopes`: best effort, for activities that add a member to a role (`Add member to role`,
//!   `Add eligible member to role`, the PIM variants): the role name from the targets'
//!   `Role.DisplayName` modified property, else the display name of a target of type `Role`.

use bumpalo::Bump;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::{raw_i64, raw_object, raw_text, raw_u64, Fields};
use super::model::{
    Action, Client, Event, Network, Operation, Outcome, Principal, Resource, Session, SessionKey,
    SessionKind, Source, Status,
};
use super::normalize::{non_empty, parse_ip, Adapter, Record};
use super::reject::{Reject, RejectReason};
use super::text::Text;
use super::time::Timestamp;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Entra,
    detect,
    normalize,
};

/// Diagnostic-settings categories (and Log Analytics `Category` values) of sign-in records.
const SIGN_IN_CATEGORIES: [&str; 4] = [
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs",
];

/// The diagnostic-settings category, and Log Analytics table, of directory audits.
const AUDIT_LOGS: &str = "AuditLogs";

/// Log Analytics / Sentinel tables this adapter reads (`Type`).
const TABLES: [&str; 5] = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
    AUDIT_LOGS,
];

const SIGN_IN_OPERATION: &str = "Sign-in activity";

/// Top-level keys that may hold the event time, vendor time first.
const TIME_KEYS: [&str; 6] = [
    "createdDateTime",
    "CreatedDateTime",
    "activityDateTime",
    "ActivityDateTime",
    "TimeGenerated",
    "time",
];

/// Audit categories that are identity or access administration.
const ADMIN_CATEGORIES: [&str; 2] = ["rolemanagement", "policy"];

/// Words (lowercase) in an audit activity name that make it identity or access administration.
const ADMIN_ACTIVITY_WORDS: [&str; 9] = [
    "role",
    "consent",
    "credential",
    "certificates and secrets",
    "policy",
    "permission grant",
    "owner",
    "federat",
    "elevat",
];

fn detect(fields: &Fields<'_>) -> bool {
    if fields.contains("createdDateTime")
        && (fields.contains("userPrincipalName")
            || fields.contains("appId")
            || fields.contains("servicePrincipalId"))
    {
        return true;
    }
    if fields.contains("activityDateTime") && fields.contains("activityDisplayName") {
        return true;
    }
    if fields.contains("TimeGenerated") {
        return match top_text(fields, "Type") {
            Some(table) => TABLES.iter().any(|t| table.eq_ignore_ascii_case(t)),
            None => {
                top_text(fields, "Category").is_some_and(|c| is_sign_in_category(&c))
                    || top_text(fields, "OperationName").is_some_and(|o| o == SIGN_IN_OPERATION)
                    || fields.contains("ActivityDisplayName")
            }
        };
    }
    fields.contains("properties") && diagnostic_category(fields).is_some()
}

fn top_text<'a>(fields: &Fields<'a>, key: &str) -> Option<Text<'a>> {
    fields.text(key).ok().flatten()
}

fn is_sign_in_category(category: &str) -> bool {
    SIGN_IN_CATEGORIES
        .iter()
        .any(|c| category.eq_ignore_ascii_case(c))
}

/// The export's `category` when it names an Entra log.
fn diagnostic_category<'a>(fields: &Fields<'a>) -> Option<Text<'a>> {
    top_text(fields, "category")
        .or_else(|| top_text(fields, "Category"))
        .filter(|c| is_sign_in_category(c) || c.eq_ignore_ascii_case(AUDIT_LOGS))
}

/// The members this adapter reads from one object, found in one pass with ASCII case ignored.
/// `null` values are skipped.
#[derive(Clone, Copy, Default)]
struct Slots<'a> {
    created: Option<&'a RawValue>,
    activity_time: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    table: Option<&'a RawValue>,
    category: Option<&'a RawValue>,
    operation_name: Option<&'a RawValue>,
    properties: Option<&'a RawValue>,
    // Sign-ins.
    user_id: Option<&'a RawValue>,
    upn: Option<&'a RawValue>,
    user_display_name: Option<&'a RawValue>,
    app_id: Option<&'a RawValue>,
    app_display_name: Option<&'a RawValue>,
    sp_id: Option<&'a RawValue>,
    sp_name: Option<&'a RawValue>,
    session_id: Option<&'a RawValue>,
    uti: Option<&'a RawValue>,
    ip: Option<&'a RawValue>,
    caller_ip: Option<&'a RawValue>,
    asn: Option<&'a RawValue>,
    location: Option<&'a RawValue>,
    location_details: Option<&'a RawValue>,
    device: Option<&'a RawValue>,
    user_agent: Option<&'a RawValue>,
    status: Option<&'a RawValue>,
    result_type: Option<&'a RawValue>,
    result_description: Option<&'a RawValue>,
    result_signature: Option<&'a RawValue>,
    auth_requirement: Option<&'a RawValue>,
    resource_name: Option<&'a RawValue>,
    resource_id: Option<&'a RawValue>,
    resource_identity: Option<&'a RawValue>,
    token_issuer_name: Option<&'a RawValue>,
    token_issuer_type: Option<&'a RawValue>,
    home_tenant: Option<&'a RawValue>,
    resource_tenant: Option<&'a RawValue>,
    aad_tenant: Option<&'a RawValue>,
    tenant: Option<&'a RawValue>,
    // Audits.
    activity: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    result_reason: Option<&'a RawValue>,
    initiated_by: Option<&'a RawValue>,
    target_resources: Option<&'a RawValue>,
    additional_details: Option<&'a RawValue>,
}

impl<'a> Slots<'a> {
    fn read(fields: &Fields<'a>) -> Self {
        let mut s = Slots::default();
        let mut buf = [0u8; 32];
        for (key, value) in fields.iter() {
            let key = key.as_bytes();
            if key.len() > buf.len() || value.get() == "null" {
                continue;
            }
            let lower = &mut buf[..key.len()];
            lower.copy_from_slice(key);
            lower.make_ascii_lowercase();
            let slot = match &*lower {
                b"createddatetime" => &mut s.created,
                b"activitydatetime" => &mut s.activity_time,
                b"id" => &mut s.id,
                b"type" => &mut s.table,
                b"category" => &mut s.category,
                b"operationname" => &mut s.operation_name,
                b"properties" => &mut s.properties,
                b"userid" => &mut s.user_id,
                b"userprincipalname" => &mut s.upn,
                b"userdisplayname" => &mut s.user_display_name,
                b"appid" => &mut s.app_id,
                b"appdisplayname" => &mut s.app_display_name,
                b"serviceprincipalid" => &mut s.sp_id,
                b"serviceprincipalname" => &mut s.sp_name,
                b"sessionid" => &mut s.session_id,
                b"uniquetokenidentifier" => &mut s.uti,
                b"ipaddress" => &mut s.ip,
                b"calleripaddress" => &mut s.caller_ip,
                b"autonomoussystemnumber" => &mut s.asn,
                b"location" => &mut s.location,
                b"locationdetails" => &mut s.location_details,
                b"devicedetail" => &mut s.device,
                b"useragent" => &mut s.user_agent,
                b"status" => &mut s.status,
                b"resulttype" => &mut s.result_type,
                b"resultdescription" => &mut s.result_description,
                b"resultsignature" => &mut s.result_signature,
                b"authenticationrequirement" => &mut s.auth_requirement,
                b"resourcedisplayname" => &mut s.resource_name,
                b"resourceid" => &mut s.resource_id,
                b"resourceidentity" => &mut s.resource_identity,
                b"tokenissuername" => &mut s.token_issuer_name,
                b"tokenissuertype" => &mut s.token_issuer_type,
                b"hometenantid" => &mut s.home_tenant,
                b"resourcetenantid" => &mut s.resource_tenant,
                b"aadtenantid" => &mut s.aad_tenant,
                // Log Analytics `TenantId` is the workspace id.
                b"tenantid" if key[0] == b'T' => continue,
                b"tenantid" => &mut s.tenant,
                b"activitydisplayname" => &mut s.activity,
                b"result" => &mut s.result,
                b"resultreason" => &mut s.result_reason,
                b"initiatedby" => &mut s.initiated_by,
                b"targetresources" => &mut s.target_resources,
                b"additionaldetails" => &mut s.additional_details,
                _ => continue,
            };
            *slot = Some(value);
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInStatus<'a> {
    #[serde(borrow, default)]
    error_code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    failure_reason: Option<Text<'a>>,
}

/// `client.device` of a sign-in whose `deviceDetail` names no device.
pub const UNREGISTERED_DEVICE: &str = "unregistered";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceDetail<'a> {
    #[serde(borrow, default)]
    device_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    display_name: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInLocation<'a> {
    #[serde(borrow, default)]
    city: Option<Text<'a>>,
    #[serde(borrow, default)]
    country_or_region: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct InitiatedBy<'a> {
    #[serde(borrow, default)]
    user: Option<InitiatingUser<'a>>,
    #[serde(borrow, default)]
    app: Option<InitiatingApp<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitiatingUser<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    user_principal_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    display_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    ip_address: Option<Text<'a>>,
    #[serde(borrow, default)]
    home_tenant_id: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitiatingApp<'a> {
    #[serde(borrow, default)]
    service_principal_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    service_principal_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    display_name: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetResource<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    display_name: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    user_principal_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    modified_properties: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModifiedProperty<'a> {
    #[serde(borrow, default)]
    display_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    new_value: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow, default)]
    key: Option<Text<'a>>,
    #[serde(borrow, default)]
    value: Option<Text<'a>>,
}

/// The record as read: where the vendor members are (`body`), and the export envelope around
/// them (`envelope`; empty for the flat Graph and Log Analytics shapes).
struct View<'a> {
    body: Slots<'a>,
    envelope: Slots<'a>,
    /// The diagnostic category, or the Log Analytics table / category: which log this is.
    family: Option<Text<'a>>,
    tenant: Option<Text<'a>>,
    scratch: &'a Bump,
}

fn normalize(record: Record<'_>) -> Result<Event<'_>, Reject> {
    let scratch = record.scratch;
    let top = Slots::read(&record.fields);
    let export = diagnostic_category(&record.fields).zip(top.properties);
    let is_export = export.is_some();
    let (body, envelope, family) = match export {
        Some((category, properties)) => {
            let inner = raw_object(properties, "properties", scratch)?
                .ok_or_else(|| Reject::invalid_field("properties", "empty"))?;
            (Slots::read(&inner), top, Some(category))
        }
        None => {
            let family = lenient(top.table, "Type")
                .or_else(|| lenient(top.category, "Category").filter(|c| is_sign_in_category(c)));
            (top, Slots::default(), family)
        }
    };
    let tenant = [
        body.home_tenant,
        body.resource_tenant,
        body.aad_tenant,
        envelope.tenant,
        body.tenant,
    ]
    .into_iter()
    .find_map(|v| lenient(v, "tenantId"));
    let view = View {
        body,
        envelope,
        family,
        tenant,
        scratch,
    };

    let audit = view
        .family
        .as_ref()
        .is_some_and(|f| f.eq_ignore_ascii_case(AUDIT_LOGS))
        || body.activity.is_some()
        || body.activity_time.is_some()
        || body.initiated_by.is_some();
    let (vendor_time, vendor_time_key) = if audit {
        (body.activity_time, "activityDateTime")
    } else {
        (body.created, "createdDateTime")
    };
    let time = match vendor_time.and_then(parse_time) {
        Some(t) => t,
        None => record.time(&TIME_KEYS).map_err(|e| match vendor_time {
            Some(raw) if is_export => Reject::new(
                RejectReason::BadTimestamp,
                format!(
                    "properties.{vendor_time_key} is not a time: {}",
                    raw.get().chars().take(48).collect::<String>()
                ),
            ),
            _ => e,
        })?,
    };

    let parts = if audit {
        audit_parts(&view)?
    } else {
        sign_in_parts(&view)?
    };
    Ok(Event {
        time,
        source: Source::Entra,
        id: lenient(body.id, "id"),
        session: parts.session,
        principal: parts.principal,
        action: parts.action,
        outcome: parts.outcome,
        operation: parts.operation,
        resource: parts.resource,
        bytes: None,
        records: None,
        network: parts.network,
        client: parts.client,
        scopes: parts.scopes,
        agent: None,
        lineage: None,
        raw: record.fields,
    })
}

/// What differs between sign-ins and audits.
struct Parts<'a> {
    session: Session<'a>,
    principal: Principal<'a>,
    action: Action<'a>,
    outcome: Outcome<'a>,
    operation: Operation,
    resource: Option<Resource<'a>>,
    network: Network<'a>,
    client: Client<'a>,
    scopes: Vec<Text<'a>>,
}

fn sign_in_parts<'a>(view: &View<'a>) -> Result<Parts<'a>, Reject> {
    let (b, env) = (&view.body, &view.envelope);
    let user_id = text(b.user_id, "userId")?;
    let upn = text(b.upn, "userPrincipalName")?;
    let sp_id = text(b.sp_id, "servicePrincipalId")?;
    let service_principal = view.family.as_ref().is_some_and(|f| {
        contains_ignore_case(f, "serviceprincipal") || contains_ignore_case(f, "managedidentity")
    }) || (sp_id.is_some() && user_id.is_none() && upn.is_none());

    let principal = if service_principal {
        Principal {
            kind: Some(Text::borrowed("ServicePrincipal")),
            id: sp_id.clone(),
            name: lenient(b.sp_name, "servicePrincipalName")
                .or_else(|| lenient(b.app_display_name, "appDisplayName")),
        }
    } else {
        Principal {
            kind: Some(Text::borrowed("User")),
            id: user_id.clone(),
            name: upn.or_else(|| lenient(b.user_display_name, "userDisplayName")),
        }
    };

    let outcome = sign_in_outcome(view);
    let mfa = match lenient(b.auth_requirement, "authenticationRequirement") {
        Some(r) if r.eq_ignore_ascii_case("multiFactorAuthentication") => {
            (outcome.result == Status::Success).then_some(true)
        }
        Some(r) if r.eq_ignore_ascii_case("singleFactorAuthentication") => Some(false),
        _ => None,
    };
    let session = sign_in_session(view, service_principal, user_id.clone(), sp_id.clone(), mfa)?;

    let vendor = lenient(b.operation_name, "operationName")
        .or_else(|| lenient(env.operation_name, "operationName"))
        .or_else(|| view.family.clone())
        .unwrap_or(Text::borrowed(SIGN_IN_OPERATION));
    let action = Action {
        service: Text::borrowed("entra"),
        operation: Text::borrowed("signin"),
        vendor,
    };

    let resource = sign_in_resource(b);

    let network = sign_in_network(view);

    let device = object::<DeviceDetail<'a>>(b.device, "deviceDetail", view.scratch)
        .ok()
        .flatten()
        .map(|d| {
            non_empty(d.device_id)
                .or_else(|| non_empty(d.display_name))
                .unwrap_or(Text::borrowed(UNREGISTERED_DEVICE))
        });

    Ok(Parts {
        session,
        principal,
        action,
        outcome,
        operation: Operation::Auth,
        resource,
        network,
        client: Client {
            user_agent: lenient(b.user_agent, "userAgent"),
            device,
        },
        scopes: Vec::new(),
    })
}

/// A sign-in's session: its `sessionId`, else the token's `uniqueTokenIdentifier`, else the
/// service principal or user it is for (derived).
fn sign_in_session<'a>(
    view: &View<'a>,
    service_principal: bool,
    user_id: Option<Text<'a>>,
    sp_id: Option<Text<'a>>,
    mfa: Option<bool>,
) -> Result<Session<'a>, Reject> {
    let b = &view.body;
    let tenant = view.tenant.clone();
    let (key, kind, derived) = if let Some(sid) = text(b.session_id, "sessionId")? {
        (
            SessionKey::new("entra", tenant, "sid", sid),
            SessionKind::SignIn,
            false,
        )
    } else if let Some(uti) = text(b.uti, "uniqueTokenIdentifier")? {
        (
            SessionKey::new("entra", tenant, "uti", uti),
            SessionKind::Token,
            false,
        )
    } else if service_principal {
        let id = sp_id.ok_or_else(|| {
            Reject::no_session(
                "service principal sign-in has no uniqueTokenIdentifier or servicePrincipalId",
            )
        })?;
        (
            SessionKey::new("entra", tenant, "sp", id),
            SessionKind::Principal,
            true,
        )
    } else {
        let id = user_id.ok_or_else(|| {
            Reject::no_session("sign-in has no sessionId, uniqueTokenIdentifier or userId")
        })?;
        (
            SessionKey::new("entra", tenant, "user", id),
            SessionKind::Principal,
            true,
        )
    };
    Ok(Session {
        key,
        kind,
        derived,
        issuer: lenient(b.token_issuer_name, "tokenIssuerName")
            .or_else(|| lenient(b.token_issuer_type, "tokenIssuerType")),
        created_at: None,
        mfa,
    })
}

/// What was signed in to: the resource, else the application.
fn sign_in_resource<'a>(b: &Slots<'a>) -> Option<Resource<'a>> {
    let resource_id = lenient(b.resource_identity, "resourceIdentity").or_else(|| {
        // Log Analytics writes the ARM path of the log itself here.
        lenient(b.resource_id, "resourceId").filter(|r| !r.starts_with('/'))
    });
    let resource_name = lenient(b.resource_name, "resourceDisplayName");
    if resource_id.is_some() || resource_name.is_some() {
        Some(Resource {
            kind: Some(Text::borrowed("resource")),
            id: resource_id,
            name: resource_name,
            container: None,
        })
    } else {
        let (id, name) = (
            lenient(b.app_id, "appId"),
            lenient(b.app_display_name, "appDisplayName"),
        );
        (id.is_some() || name.is_some()).then(|| Resource {
            kind: Some(Text::borrowed("application")),
            id,
            name,
            container: None,
        })
    }
}

/// Where a sign-in came from: address, ASN, country and city, in every shape Entra writes them.
fn sign_in_network<'a>(view: &View<'a>) -> Network<'a> {
    let (b, env) = (&view.body, &view.envelope);
    let mut network = Network {
        ip: [b.ip, env.caller_ip]
            .into_iter()
            .find_map(|v| lenient(v, "ipAddress").and_then(|t| parse_ip(&t))),
        asn: b
            .asn
            .and_then(|v| raw_u64(v, "autonomousSystemNumber").ok().flatten())
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n != 0),
        ..Network::default()
    };
    let location_object = [b.location, b.location_details]
        .into_iter()
        .flatten()
        .find(|v| looks_like_object(v))
        .and_then(|v| object::<SignInLocation<'a>>(Some(v), "location", view.scratch).ok())
        .flatten();
    if let Some(loc) = location_object {
        network.country = non_empty(loc.country_or_region);
        network.city = non_empty(loc.city);
    }
    if network.country.is_none() {
        // Log Analytics `Location` and the export's `location` hold the country code.
        network.country = [b.location, env.location]
            .into_iter()
            .flatten()
            .filter(|v| !looks_like_object(v))
            .find_map(|v| lenient(Some(v), "location"));
    }
    network
}

fn sign_in_outcome<'a>(view: &View<'a>) -> Outcome<'a> {
    let (b, env) = (&view.body, &view.envelope);
    let status = object::<SignInStatus<'a>>(b.status, "status", view.scratch)
        .ok()
        .flatten();
    let (code, failure_reason) = match status {
        Some(s) => (
            s.error_code
                .and_then(|c| lenient(Some(c), "status.errorCode")),
            non_empty(s.failure_reason),
        ),
        None => (None, None),
    };
    let code = code
        .or_else(|| lenient(b.result_type, "resultType"))
        .or_else(|| lenient(env.result_type, "resultType"));
    let reason = || {
        failure_reason
            .clone()
            .or_else(|| lenient(b.result_description, "resultDescription"))
            .or_else(|| lenient(env.result_description, "resultDescription"))
    };
    match code {
        Some(c) if c == "0" || c.eq_ignore_ascii_case("success") => Outcome {
            result: Status::Success,
            reason: None,
        },
        Some(c) if c.bytes().all(|d| d.is_ascii_digit()) => Outcome {
            result: Status::Failure,
            reason: reason().or(Some(c)),
        },
        Some(c) if c.eq_ignore_ascii_case("failure") => Outcome {
            result: Status::Failure,
            reason: reason(),
        },
        _ => match lenient(env.result_signature, "resultSignature") {
            Some(s) if s.eq_ignore_ascii_case("success") => Outcome {
                result: Status::Success,
                reason: None,
            },
            _ => Outcome::UNKNOWN,
        },
    }
}

fn audit_parts<'a>(view: &View<'a>) -> Result<Parts<'a>, Reject> {
    let (b, env) = (&view.body, &view.envelope);
    let activity = lenient(b.activity, "activityDisplayName")
        .or_else(|| lenient(env.operation_name, "operationName"))
        .or_else(|| lenient(b.operation_name, "operationName"))
        .ok_or_else(|| Reject::invalid_field("activityDisplayName", "missing"))?;

    let initiator = object::<InitiatedBy<'a>>(b.initiated_by, "initiatedBy", view.scratch)?;
    let (user, app) = match initiator {
        Some(i) => (i.user, i.app),
        None => (None, None),
    };
    // A guest initiator's home tenant, as its sign-ins are keyed by `homeTenantId`.
    let tenant = user
        .as_ref()
        .and_then(|u| non_empty(u.home_tenant_id.clone()))
        .or_else(|| view.tenant.clone());
    let user_id = user.as_ref().and_then(|u| non_empty(u.id.clone()));
    let app_id = app
        .as_ref()
        .and_then(|a| non_empty(a.service_principal_id.clone()));
    let (key, principal) = if let Some(id) = user_id {
        let user = user.as_ref();
        let name = user.and_then(|u| {
            non_empty(u.user_principal_name.clone()).or_else(|| non_empty(u.display_name.clone()))
        });
        (
            SessionKey::new("entra", tenant, "user", id.clone()),
            Principal {
                kind: Some(Text::borrowed("User")),
                id: Some(id),
                name,
            },
        )
    } else if let Some(id) = app_id {
        let name = app.as_ref().and_then(|a| {
            non_empty(a.display_name.clone())
                .or_else(|| non_empty(a.service_principal_name.clone()))
        });
        (
            SessionKey::new("entra", tenant, "sp", id.clone()),
            Principal {
                kind: Some(Text::borrowed("ServicePrincipal")),
                id: Some(id),
                name,
            },
        )
    } else {
        return Err(Reject::no_session(
            "directory audit has no initiatedBy.user.id or initiatedBy.app.servicePrincipalId",
        ));
    };
    let session = Session {
        key,
        kind: SessionKind::Principal,
        derived: true,
        issuer: None,
        created_at: None,
        mfa: None,
    };

    let outcome = audit_outcome(view);

    let category = lenient(b.category, "category");
    let admin = category
        .as_ref()
        .is_some_and(|c| ADMIN_CATEGORIES.iter().any(|a| contains_ignore_case(c, a)))
        || ADMIN_ACTIVITY_WORDS
            .iter()
            .any(|w| contains_ignore_case(&activity, w));
    let operation = if admin {
        Operation::Admin
    } else {
        Operation::Write
    };

    let targets: Vec<TargetResource<'a>> =
        array(b.target_resources, "targetResources", view.scratch)
            .ok()
            .flatten()
            .unwrap_or_default();
    let resource = targets.first().map(|t| Resource {
        kind: non_empty(t.kind.clone()),
        id: non_empty(t.id.clone()),
        name: non_empty(t.display_name.clone())
            .or_else(|| non_empty(t.user_principal_name.clone())),
        container: None,
    });
    let scopes = if contains_ignore_case(&activity, "member to role") {
        granted_roles(&targets, view.scratch)
    } else {
        Vec::new()
    };

    let details: Vec<KeyValue<'a>> = array(b.additional_details, "additionalDetails", view.scratch)
        .ok()
        .flatten()
        .unwrap_or_default();
    let detail = |name: &str| {
        details.iter().find_map(|d| {
            d.key
                .as_ref()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
                .then(|| non_empty(d.value.clone()))
                .flatten()
        })
    };
    // PIM writes the caller's address only as the `ipaddr` detail.
    let ip = user
        .as_ref()
        .and_then(|u| non_empty(u.ip_address.clone()))
        .and_then(|t| parse_ip(&t))
        .or_else(|| {
            [env.caller_ip, b.caller_ip]
                .into_iter()
                .find_map(|v| lenient(v, "callerIpAddress").and_then(|t| parse_ip(&t)))
        })
        .or_else(|| detail("ipaddr").and_then(|t| parse_ip(&t)));
    let user_agent = detail("User-Agent");

    Ok(Parts {
        session,
        principal,
        action: Action {
            service: Text::borrowed("entra"),
            operation: activity.clone(),
            vendor: activity,
        },
        outcome,
        operation,
        resource,
        network: Network {
            ip,
            ..Network::default()
        },
        client: Client {
            user_agent,
            device: None,
        },
        scopes,
    })
}

/// A directory audit's result: success, or failure (a timeout is one) with its reason.
fn audit_outcome<'a>(view: &View<'a>) -> Outcome<'a> {
    let (b, env) = (&view.body, &view.envelope);
    let result = lenient(b.result, "result")
        .or_else(|| lenient(env.result, "result"))
        .or_else(|| lenient(b.result_type, "resultType"))
        .or_else(|| lenient(env.result_type, "resultType"));
    match result {
        Some(r) if r.eq_ignore_ascii_case("success") => Outcome {
            result: Status::Success,
            reason: None,
        },
        Some(r) if r.eq_ignore_ascii_case("failure") || r.eq_ignore_ascii_case("timeout") => {
            Outcome {
                result: Status::Failure,
                reason: lenient(b.result_reason, "resultReason")
                    .or_else(|| lenient(b.result_description, "resultDescription"))
                    .or_else(|| lenient(env.result_description, "resultDescription"))
                    .or(Some(r)),
            }
        }
        _ => Outcome::UNKNOWN,
    }
}

/// Role names granted by an "add member to role" audit: `Role.DisplayName` modified properties
/// (their values are JSON-encoded strings, `"\"Global Administrator\""`), else targets of type
/// `Role` (the PIM shape).
fn granted_roles<'a>(targets: &[TargetResource<'a>], scratch: &'a Bump) -> Vec<Text<'a>> {
    let mut roles = Vec::new();
    for target in targets {
        let props: Vec<ModifiedProperty<'a>> =
            array(target.modified_properties, "modifiedProperties", scratch)
                .ok()
                .flatten()
                .unwrap_or_default();
        for prop in props {
            let is_role_name = prop
                .display_name
                .as_ref()
                .is_some_and(|n| n.eq_ignore_ascii_case("Role.DisplayName"));
            if let Some(value) = prop.new_value.filter(|_| is_role_name) {
                if let Some(role) = non_empty(Some(unquote(value))) {
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
            }
        }
    }
    if roles.is_empty() {
        roles.extend(targets.iter().filter_map(|t| {
            let is_role = t
                .kind
                .as_ref()
                .is_some_and(|k| k.eq_ignore_ascii_case("Role"));
            non_empty(t.display_name.clone()).filter(|_| is_role)
        }));
    }
    roles
}

/// `"x"` → `x`: audit `newValue`s are JSON-encoded inside a string.
fn unquote(value: Text<'_>) -> Text<'_> {
    let len = value.len();
    if len >= 2 && value.starts_with('"') && value.ends_with('"') {
        value.slice(1..len - 1)
    } else {
        value
    }
}

/// A scalar member as text: strict (a structure where text belongs is an invalid field).
fn text<'a>(value: Option<&'a RawValue>, field: &str) -> Result<Option<Text<'a>>, Reject> {
    match value {
        Some(v) => raw_text(v, field).map(non_empty),
        None => Ok(None),
    }
}

/// A scalar member as text, for members that only enrich the event: unreadable means absent.
fn lenient<'a>(value: Option<&'a RawValue>, field: &str) -> Option<Text<'a>> {
    text(value, field).ok().flatten()
}

fn looks_like_object(value: &RawValue) -> bool {
    let json = value.get();
    json.starts_with('{') || json.starts_with("\"{")
}

/// A nested object parsed into a borrowing struct; a JSON string holding one (the Log Analytics
/// shape) is unescaped into the scratch arena first. `null` and `""` are absent.
fn object<'a, T: Deserialize<'a>>(
    value: Option<&'a RawValue>,
    field: &str,
    scratch: &'a Bump,
) -> Result<Option<T>, Reject> {
    nested(value, field, scratch, b'{')
}

/// A nested array, read like `object`.
fn array<'a, T: Deserialize<'a>>(
    value: Option<&'a RawValue>,
    field: &str,
    scratch: &'a Bump,
) -> Result<Option<Vec<T>>, Reject> {
    nested(value, field, scratch, b'[')
}

/// `open` is the bracket the value must start with: serde would otherwise read a struct from an
/// array, or an array from nothing like one.
fn nested<'a, T: Deserialize<'a>>(
    value: Option<&'a RawValue>,
    field: &str,
    scratch: &'a Bump,
    open: u8,
) -> Result<Option<T>, Reject> {
    let Some(value) = value else {
        return Ok(None);
    };
    let json = value.get();
    let json: &'a str = match json.as_bytes().first() {
        Some(b'"') => {
            let inner: Text<'_> =
                serde_json::from_str(json).map_err(|e| Reject::invalid_field(field, e))?;
            let inner = inner.trim();
            if inner.is_empty() {
                return Ok(None);
            }
            scratch.alloc_str(inner)
        }
        Some(b'n') => return Ok(None),
        _ => json,
    };
    if json.as_bytes().first() != Some(&open) {
        let expected = if open == b'{' {
            "expected an object"
        } else {
            "expected an array"
        };
        return Err(Reject::invalid_field(field, expected));
    }
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| Reject::invalid_field(field, e))
}

/// A nested time member: text in any form `Timestamp` reads, or an epoch number.
fn parse_time(value: &RawValue) -> Option<Timestamp> {
    if value.get().starts_with('"') {
        raw_text(value, "time")
            .ok()
            .flatten()
            .and_then(|t| Timestamp::parse(&t))
    } else {
        raw_i64(value, "time")
            .ok()
            .flatten()
            .and_then(Timestamp::from_epoch)
    }
}

/// ASCII case-insensitive substring test; `needle` is lowercase.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use bumpalo::Bump;

    use super::super::{Normalizer, RejectReason};
    use super::*;

    const TENANT: &str = "6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b";
    const USER: &str = "1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b";

    fn with_event<R>(json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
        super::super::testing::with_event(Source::Entra, json, check)
    }

    fn reject(json: &str) -> Reject {
        super::super::testing::rejected(json)
    }

    /// A Graph `/beta/auditLogs/signIns` record: interactive, MFA satisfied.
    const GRAPH_SIGN_IN: &str = r#"{"id":"5e4c9d2a-7b31-4f6e-8a0d-1c2b3e4f5a60",
        "createdDateTime":"2024-05-14T09:12:03Z","userDisplayName":"Megan Bowen",
        "userPrincipalName":"meganb@contoso.com","userId":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b",
        "appId":"4765445b-32c6-49b0-83e6-1d93765276ca","appDisplayName":"OfficeHome",
        "ipAddress":"198.51.100.23","autonomousSystemNumber":7922,"clientAppUsed":"Browser",
        "userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/124.0.0.0",
        "correlationId":"c8a1f0e2-6d4b-4a7e-b3c9-5e2f1d0a9b84","isInteractive":true,
        "authenticationRequirement":"multiFactorAuthentication",
        "resourceDisplayName":"Office 365 Exchange Online",
        "resourceId":"00000002-0000-0ff1-ce00-000000000000",
        "homeTenantId":"6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b",
        "resourceTenantId":"6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b",
        "sessionId":"00a8b2f4-6c1e-4d3a-9f7b-5e2c0d8a1b36",
        "uniqueTokenIdentifier":"x8TfTz1dM0yC4mV7bN2aAA","tokenIssuerName":"","tokenIssuerType":"AzureAD",
        "status":{"errorCode":0,"failureReason":"Other.",
          "additionalDetails":"MFA requirement satisfied by strong authentication"},
        "deviceDetail":{"deviceId":"3f9b2c71-6a4e-4d8b-a0c5-7e1d2f3a4b59","displayName":"MEGANB-LT01",
          "operatingSystem":"Windows10","browser":"Edge 124.0.0","isCompliant":true,"isManaged":true,
          "trustType":"Azure AD joined"},
        "location":{"city":"Redmond","state":"Washington","countryOrRegion":"US",
          "geoCoordinates":{"altitude":null,"latitude":47.6801,"longitude":-122.1206}}}"#;

    #[test]
    fn graph_sign_in_is_keyed_by_its_session_id() {
        with_event(GRAPH_SIGN_IN, |e| {
            assert_eq!(
                e.session.key.to_string(),
                format!("entra:{TENANT}:sid:00a8b2f4-6c1e-4d3a-9f7b-5e2c0d8a1b36")
            );
            assert_eq!(e.session.kind, SessionKind::SignIn);
            assert!(!e.session.derived);
            assert_eq!(e.session.mfa, Some(true));
            assert_eq!(e.session.issuer.as_deref(), Some("AzureAD"));
            assert_eq!(e.time.to_string(), "2024-05-14T09:12:03.000Z");
            assert_eq!(e.action.to_string(), "entra:signin");
            assert_eq!(e.action.vendor, "Sign-in activity");
            assert_eq!(e.operation, Operation::Auth);
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(e.outcome.reason, None);
            assert_eq!(e.principal.kind.as_deref(), Some("User"));
            assert_eq!(e.principal.id.as_deref(), Some(USER));
            assert_eq!(e.principal.name.as_deref(), Some("meganb@contoso.com"));
            assert_eq!(e.network.ip.unwrap().to_string(), "198.51.100.23");
            assert_eq!(e.network.asn, Some(7922));
            assert_eq!(e.network.country.as_deref(), Some("US"));
            assert_eq!(e.network.city.as_deref(), Some("Redmond"));
            assert_eq!(
                e.client.device.as_deref(),
                Some("3f9b2c71-6a4e-4d8b-a0c5-7e1d2f3a4b59")
            );
            let r = e.resource.as_ref().unwrap();
            assert_eq!(r.name.as_deref(), Some("Office 365 Exchange Online"));
            assert_eq!(
                e.id.as_deref(),
                Some("5e4c9d2a-7b31-4f6e-8a0d-1c2b3e4f5a60")
            );
        });
    }

    #[test]
    fn unique_token_identifier_keys_a_sign_in_without_a_session() {
        // A Graph non-interactive sign-in with no sessionId, failing MFA: mfa stays unknown.
        let json = r#"{"id":"a0b1","createdDateTime":"2024-05-14T10:00:00Z",
            "userPrincipalName":"meganb@contoso.com","userId":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b",
            "appId":"d3590ed6-52b3-4102-aeff-aad2292ab01c","ipAddress":"203.0.113.77",
            "homeTenantId":"6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b","sessionId":"",
            "uniqueTokenIdentifier":"QmFkUmVmcmVzaC0wMDAy",
            "authenticationRequirement":"multiFactorAuthentication",
            "status":{"errorCode":50074,"failureReason":"Strong Authentication is required."}}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                format!("entra:{TENANT}:uti:QmFkUmVmcmVzaC0wMDAy")
            );
            assert_eq!(e.session.kind, SessionKind::Token);
            assert!(!e.session.derived);
            assert_eq!(e.session.mfa, None);
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(
                e.outcome.reason.as_deref(),
                Some("Strong Authentication is required.")
            );
        });
        // Panther's service-principal sign-in: an all-lowercase envelope, the error code alone.
        let sp = r#"{"calleripaddress": "12.12.12.12", "category": "ServicePrincipalSignInLogs", "correlationid": "e1f237ef-6548-4172-be79-03818c04c06e", "durationms": 0, "Level": "4", "location": "IE", "operationname": "Sign-in activity", "operationversion": 1, "properties": {"appId": "cfceb902-8fab-4f8c-88ba-374d3c975c3a", "createdDateTime": "2023-07-26 22:58:30.983201900", "id": "36658c78-02d9-4d8f-84ee-5ca4a3fdefef", "ipAddress": "12.12.12.12", "isInteractive": false, "resourceDisplayName": "Azure Storage", "resourceId": "037694de-8c7d-498d-917d-edb650090fa5", "servicePrincipalId": "b1c34143-e405-4058-8e29-84596ad737b8", "servicePrincipalName": "some-service-principal", "status": {"errorCode": 7000215}, "uniqueTokenIdentifier": "NDDDDDDDDDDDDDDDDDD_DD"}, "resourceid": "/tenants/c0dd2fa0-71be-4df8-b2a6-24cee7de069a/providers/Microsoft.aadiam", "resultsignature": "None", "resulttype": 7000215, "tenantid": "a2aa49aa-2c0c-49d2-af87-f402c421df0b", "time": "2023-07-26 23:00:20.889"}"#;
        with_event(sp, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "entra:a2aa49aa-2c0c-49d2-af87-f402c421df0b:uti:NDDDDDDDDDDDDDDDDDD_DD"
            );
            assert_eq!(e.session.kind, SessionKind::Token);
            assert_eq!(e.principal.kind.as_deref(), Some("ServicePrincipal"));
            assert_eq!(
                e.principal.id.as_deref(),
                Some("b1c34143-e405-4058-8e29-84596ad737b8")
            );
            assert_eq!(e.principal.name.as_deref(), Some("some-service-principal"));
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("7000215"));
            assert_eq!(e.time.to_string(), "2023-07-26T22:58:30.983Z");
        });
    }

    #[test]
    fn service_principal_sign_in_without_token_id_is_derived() {
        let json = r#"{"TimeGenerated":"2024-05-14T10:03:27Z","Type":"AADServicePrincipalSignInLogs",
            "TenantId":"b2f8e0c4-1d3a-4f6b-8e9c-7a5d3c1b0e2f","OperationName":"Sign-in activity",
            "Category":"ServicePrincipalSignInLogs","ResultType":"0","IPAddress":"203.0.113.77",
            "AppId":"c3e1a5f7-9b2d-4f6e-8a4c-0e2b6d8f1a39",
            "ServicePrincipalId":"4d7b9e1f-3a5c-4e2d-8b6f-1c9a0e3d5f72",
            "ServicePrincipalName":"Contoso Billing Sync","ResourceDisplayName":"Microsoft Graph"}"#;
        with_event(json, |e| {
            // TenantId is the Log Analytics workspace, not a tenant: the key has no scope.
            assert_eq!(
                e.session.key.to_string(),
                "entra:sp:4d7b9e1f-3a5c-4e2d-8b6f-1c9a0e3d5f72"
            );
            assert_eq!(e.session.kind, SessionKind::Principal);
            assert!(e.session.derived);
            assert_eq!(e.principal.kind.as_deref(), Some("ServicePrincipal"));
            assert_eq!(e.outcome.result, Status::Success);
        });
    }

    #[test]
    fn sentinel_row_reads_nested_objects_held_as_json_strings() {
        let json = r#"{"TenantId":"b2f8e0c4-1d3a-4f6b-8e9c-7a5d3c1b0e2f","SourceSystem":"Azure AD",
            "TimeGenerated":"2024-05-14T09:47:39.0000000Z",
            "ResourceId":"/tenants/6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b/providers/Microsoft.aadiam",
            "OperationName":"Sign-in activity","Category":"NonInteractiveUserSignInLogs",
            "ResultType":"50126","ResultSignature":"None",
            "ResultDescription":"Error validating credentials due to invalid username or password.",
            "Location":"NL","AppDisplayName":"Microsoft Office","AppId":"d3590ed6-52b3-4102-aeff-aad2292ab01c",
            "AuthenticationRequirement":"singleFactorAuthentication","AutonomousSystemNumber":"9009",
            "CreatedDateTime":"2024-05-14T09:45:12.3380000Z",
            "DeviceDetail":"{\"deviceId\":\"\",\"displayName\":\"KALI-01\",\"operatingSystem\":\"Linux\"}",
            "HomeTenantId":"6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b",
            "Id":"8b1d3f5a-7c9e-4b2d-a6f8-0e1c3a5b7d92","IPAddress":"203.0.113.77","IsInteractive":false,
            "LocationDetails":"{\"city\":\"Amsterdam\",\"state\":\"Noord-Holland\",\"countryOrRegion\":\"NL\"}",
            "ResourceDisplayName":"Microsoft Graph","ResourceIdentity":"00000003-0000-0000-c000-000000000000",
            "SessionId":"00a8b2f4-6c1e-4d3a-9f7b-5e2c0d8a1b36",
            "Status":"{\"errorCode\":50126,\"additionalDetails\":\"The user didn't enter the right credentials.\"}",
            "TokenIssuerType":"AzureAD","UniqueTokenIdentifier":"Rk9PQkFSYmF6cXV4LTAwMDE",
            "UserAgent":"python-requests/2.31.0","UserDisplayName":"Megan Bowen",
            "UserId":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b","UserPrincipalName":"meganb@contoso.com",
            "Type":"AADNonInteractiveUserSignInLogs"}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                format!("entra:{TENANT}:sid:00a8b2f4-6c1e-4d3a-9f7b-5e2c0d8a1b36")
            );
            assert_eq!(e.session.kind, SessionKind::SignIn);
            assert_eq!(e.session.mfa, Some(false));
            assert_eq!(e.time.to_string(), "2024-05-14T09:45:12.338Z");
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(
                e.outcome.reason.as_deref(),
                Some("Error validating credentials due to invalid username or password.")
            );
            assert_eq!(e.principal.id.as_deref(), Some(USER));
            assert_eq!(e.network.ip.unwrap().to_string(), "203.0.113.77");
            assert_eq!(e.network.asn, Some(9009));
            assert_eq!(e.network.city.as_deref(), Some("Amsterdam"));
            assert_eq!(e.network.country.as_deref(), Some("NL"));
            assert_eq!(e.client.device.as_deref(), Some("KALI-01"));
            let r = e.resource.as_ref().unwrap();
            assert_eq!(
                r.id.as_deref(),
                Some("00000003-0000-0000-c000-000000000000")
            );
        });
    }

    #[test]
    fn diagnostic_export_sign_in_uses_the_vendor_time_and_session() {
        // Panther's Azure.Audit GraphSessionMultipleIPs test event, unchanged.
        let json = r#"{"time": "2025-01-15 09:35:20.456", "resourceId": "/tenants/tenant-123/providers/Microsoft.aadiam", "operationName": "Sign-in activity", "operationVersion": "1.0", "category": "SignInLogs", "tenantId": "tenant-123", "resultType": "Success", "resultSignature": "SUCCESS", "durationMs": 0, "callerIpAddress": "5.5.5.5", "correlationId": "graph-session-002", "Level": "4", "properties": {"createdDateTime": "2025-01-15T09:35:20.4567890Z", "userPrincipalName": "gandalf@lotr.com", "userId": "user-123", "ipAddress": "5.5.5.5", "sessionId": "session-abc-123", "resourceDisplayName": "Microsoft Graph", "resourceId": "00000003-0000-0000-c000-111111111111", "appDisplayName": "Custom Graph App", "appId": "app-custom-789", "userAgent": "python-requests/2.28.1", "isInteractive": true, "authenticationProtocol": "oAuth2", "conditionalAccessStatus": "success"}, "p_event_time": "2025-01-15 09:35:20.456", "p_log_type": "Azure.Audit", "p_parse_time": "2025-01-15 09:35:21.000", "p_row_id": "row-456"}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "entra:tenant-123:sid:session-abc-123"
            );
            assert_eq!(e.session.kind, SessionKind::SignIn);
            assert!(!e.session.derived);
            assert_eq!(e.time.to_string(), "2025-01-15T09:35:20.456Z");
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(e.principal.name.as_deref(), Some("gandalf@lotr.com"));
            assert_eq!(e.network.ip.unwrap().to_string(), "5.5.5.5");
            assert_eq!(
                e.client.user_agent.as_deref(),
                Some("python-requests/2.28.1")
            );
        });
    }

    /// A diagnostic-settings export of an "Add member to role" directory audit.
    const ADD_MEMBER_TO_ROLE: &str = r#"{"time":"2024-05-14T09:52:31.2043301Z",
        "resourceId":"/tenants/6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b/providers/Microsoft.aadiam",
        "operationName":"Add member to role","operationVersion":"1.0","category":"AuditLogs",
        "tenantId":"6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b","resultSignature":"None","durationMs":0,
        "callerIpAddress":"203.0.113.77","correlationId":"3c5e7a9b-1d2f-4b6e-8a0c-2e4f6a8b0c1d","Level":4,
        "properties":{"id":"Directory_3c5e7a9b-1d2f-4b6e-8a0c-2e4f6a8b0c1d_QWERT_123456789",
          "category":"RoleManagement","result":"success","resultReason":"",
          "activityDisplayName":"Add member to role","activityDateTime":"2024-05-14T09:52:30.9912345Z",
          "loggedByService":"Core Directory","operationType":"Assign",
          "initiatedBy":{"app":null,"user":{"id":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b",
            "displayName":null,"userPrincipalName":"meganb@contoso.com","ipAddress":"203.0.113.77"}},
          "targetResources":[{"id":"9a3e5c7b-2f1d-4b8e-a6c0-4d2f8e1b7c95","displayName":null,
            "type":"User","userPrincipalName":"adele.vance@contoso.com","modifiedProperties":[
              {"displayName":"Role.ObjectID","oldValue":null,"newValue":"\"a1b2c3d4-0f9e-4d8c-b7a6-5e4d3c2b1a09\""},
              {"displayName":"Role.DisplayName","oldValue":null,"newValue":"\"Global Administrator\""},
              {"displayName":"Role.TemplateId","oldValue":null,"newValue":"\"62e90394-69f5-4237-9190-012177145e10\""}]},
            {"id":"a1b2c3d4-0f9e-4d8c-b7a6-5e4d3c2b1a09","displayName":null,"type":"Role",
              "modifiedProperties":[]}],
          "additionalDetails":[{"key":"User-Agent","value":"python-requests/2.31.0"}]}}"#;

    #[test]
    fn directory_audit_is_keyed_by_its_initiator() {
        let expected = format!("entra:{TENANT}:user:{USER}");
        with_event(ADD_MEMBER_TO_ROLE, |e| {
            assert_eq!(e.session.key.to_string(), expected);
            assert_eq!(e.session.kind, SessionKind::Principal);
            assert!(e.session.derived);
            assert_eq!(e.session.mfa, None);
            assert_eq!(e.time.to_string(), "2024-05-14T09:52:30.991Z");
            assert_eq!(e.action.to_string(), "entra:Add member to role");
            assert_eq!(e.action.vendor, "Add member to role");
            assert_eq!(e.operation, Operation::Admin);
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(e.principal.kind.as_deref(), Some("User"));
            assert_eq!(e.principal.name.as_deref(), Some("meganb@contoso.com"));
            assert_eq!(e.network.ip.unwrap().to_string(), "203.0.113.77");
            assert_eq!(
                e.client.user_agent.as_deref(),
                Some("python-requests/2.31.0")
            );
            assert_eq!(e.scopes, vec![Text::borrowed("Global Administrator")]);
            let target = e.resource.as_ref().unwrap();
            assert_eq!(target.kind.as_deref(), Some("User"));
            assert_eq!(target.name.as_deref(), Some("adele.vance@contoso.com"));
        });
        // The same user's sign-in without a session or token id derives the same key.
        let sign_in = r#"{"createdDateTime":"2024-05-14T09:50:00Z","userPrincipalName":"meganb@contoso.com",
            "userId":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b","appId":"app",
            "homeTenantId":"6e4d1a2b-5c3f-4e8a-9b7d-0f2c1e3d4a5b","status":{"errorCode":0}}"#;
        with_event(sign_in, |e| {
            assert_eq!(e.session.key.to_string(), expected);
            assert!(e.session.derived);
            assert_eq!(e.session.kind, SessionKind::Principal);
        });
    }

    #[test]
    fn audits_by_applications_and_graph_audits_without_a_tenant() {
        let by_app = r#"{"id":"Directory_1","category":"ApplicationManagement","result":"failure",
            "resultReason":"Insufficient privileges","activityDisplayName":"Consent to application",
            "activityDateTime":"2024-05-14T11:00:00Z",
            "initiatedBy":{"user":null,"app":{"appId":"c3e1a5f7","displayName":"Contoso Billing Sync",
              "servicePrincipalId":"4d7b9e1f-3a5c-4e2d-8b6f-1c9a0e3d5f72","servicePrincipalName":null}},
            "targetResources":[]}"#;
        with_event(by_app, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "entra:sp:4d7b9e1f-3a5c-4e2d-8b6f-1c9a0e3d5f72"
            );
            assert!(e.session.derived);
            assert_eq!(e.principal.kind.as_deref(), Some("ServicePrincipal"));
            assert_eq!(e.principal.name.as_deref(), Some("Contoso Billing Sync"));
            assert_eq!(e.operation, Operation::Admin);
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("Insufficient privileges"));
            assert!(e.resource.is_none());
        });
        let update_user = r#"{"id":"Directory_2","category":"UserManagement","result":"success",
            "activityDisplayName":"Update user","activityDateTime":"2024-05-14T11:00:00Z",
            "initiatedBy":{"user":{"id":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b"}}}"#;
        with_event(update_user, |e| {
            assert_eq!(e.session.key.to_string(), format!("entra:user:{USER}"));
            assert_eq!(e.operation, Operation::Write);
        });
    }

    #[test]
    fn records_without_identity_or_time_are_rejected() {
        let system = r#"{"id":"Directory_3","category":"UserManagement","result":"success",
            "activityDisplayName":"Update StsRefreshTokenValidFrom Timestamp",
            "activityDateTime":"2024-05-14T10:12:39Z",
            "initiatedBy":{"app":{"appId":null,"displayName":"Microsoft Substrate Management",
              "servicePrincipalId":null},"user":null}}"#;
        assert_eq!(reject(system).reason, RejectReason::NoSessionIdentity);
        let anonymous = r#"{"createdDateTime":"2024-05-14T10:00:00Z","appId":"app",
            "userPrincipalName":"","status":{"errorCode":50034}}"#;
        assert_eq!(reject(anonymous).reason, RejectReason::NoSessionIdentity);
        let untimed = r#"{"TimeGenerated":"yesterday","Type":"SigninLogs","SessionId":"s"}"#;
        assert_eq!(reject(untimed).reason, RejectReason::BadTimestamp);
        let bad_initiator = r#"{"activityDateTime":"2024-05-14T10:00:00Z",
            "activityDisplayName":"Update user","initiatedBy":42}"#;
        let r = reject(bad_initiator);
        assert_eq!(r.reason, RejectReason::InvalidField);
        assert!(r.detail.contains("expected an object"), "{}", r.detail);
        // An export whose vendor time and envelope time are both unreadable: the vendor time
        // is the one named.
        let export = r#"{"time":"later","category":"SignInLogs","properties":{
            "createdDateTime":"soon","userId":"u","sessionId":"s"}}"#;
        let r = reject(export);
        assert_eq!(r.reason, RejectReason::BadTimestamp);
        assert_eq!(
            r.detail,
            r#"properties.createdDateTime is not a time: "soon""#
        );
    }

    #[test]
    fn odd_shapes_are_read_leniently_or_rejected_without_panicking() {
        let scratch = Bump::new();
        let normalizer = Normalizer {
            forced: Some(Source::Entra),
            ..Normalizer::default()
        };
        for json in [
            r#"{"category":"SignInLogs","properties":"","time":"2024-05-14T10:00:00Z"}"#,
            r#"{"category":"SignInLogs","properties":7,"time":"2024-05-14T10:00:00Z"}"#,
            r#"{"category":"AuditLogs","properties":"{\"activityDisplayName\":\"x\"}"}"#,
            r#"{"createdDateTime":"2024-05-14T10:00:00Z","userId":"u","status":[1],
                "deviceDetail":"not json","location":{"city":3},"LocationDetails":"{",
                "autonomousSystemNumber":"AS9009","ipAddress":"<null>"}"#,
            r#"{"activityDateTime":"2024-05-14T10:00:00Z","activityDisplayName":"Add member to role",
                "initiatedBy":"{\"user\":{\"id\":\"u\"}}","targetResources":{"type":"User"},
                "additionalDetails":"[{\"key\":\"ipaddr\",\"value\":\"10.0.0.1\"}]"}"#,
            r#"{"activityDateTime":"2024-05-14T10:00:00Z","activityDisplayName":"Add member to role",
                "initiatedBy":{"user":{"id":"u"}},"targetResources":[{"modifiedProperties":
                [{"displayName":"Role.DisplayName","newValue":"\""}]}]}"#,
            r#"{}"#,
        ] {
            let _ = normalizer.normalize(json.as_bytes(), &scratch);
        }
        // A user sign-in whose enrichment objects are unreadable keeps its identity.
        let odd = r#"{"createdDateTime":"2024-05-14T10:00:00Z","userId":"u","appId":"a",
            "status":[1],"deviceDetail":"not json","autonomousSystemNumber":"AS9009",
            "ipAddress":"<null>"}"#;
        with_event(odd, |e| {
            assert_eq!(e.session.key.to_string(), "entra:user:u");
            assert_eq!(e.outcome.result, Status::Unknown);
            assert!(e.network.ip.is_none() && e.network.asn.is_none());
        });
        // Log Analytics re-encodes InitiatedBy and AdditionalDetails as JSON strings.
        let audit = r#"{"activityDateTime":"2024-05-14T10:00:00Z","activityDisplayName":"Add member to role",
            "initiatedBy":"{\"user\":{\"id\":\"u\"}}",
            "additionalDetails":"[{\"key\":\"ipaddr\",\"value\":\"10.0.0.1\"}]"}"#;
        with_event(audit, |e| {
            assert_eq!(e.session.key.to_string(), "entra:user:u");
            assert_eq!(e.network.ip.unwrap().to_string(), "10.0.0.1");
            assert!(e.scopes.is_empty());
        });
    }

    #[test]
    fn each_detection_needs_all_its_members() {
        let scratch = Bump::new();
        let detected = |json: &str| detect(&Fields::parse(json, &scratch).unwrap());
        // Graph sign-ins: a time and an identity; audits: a time and an activity.
        assert!(!detected(
            r#"{"createdDateTime":"2024-05-14T10:00:00Z","displayName":"x"}"#
        ));
        assert!(!detected(
            r#"{"userPrincipalName":"meganb@contoso.com","appId":"a"}"#
        ));
        assert!(!detected(
            r#"{"activityDateTime":"2024-05-14T10:00:00Z","id":"x"}"#
        ));
        assert!(!detected(r#"{"activityDisplayName":"Update user"}"#));
        // Log Analytics rows without `Type`: each of the three marks alone is enough.
        for json in [
            r#"{"TimeGenerated":"2024-05-14T10:00:00Z","Category":"SignInLogs"}"#,
            r#"{"TimeGenerated":"2024-05-14T10:00:00Z","OperationName":"Sign-in activity"}"#,
            r#"{"TimeGenerated":"2024-05-14T10:00:00Z","ActivityDisplayName":"Update user"}"#,
        ] {
            assert!(detected(json), "{json}");
        }
        assert!(!detected(
            r#"{"TimeGenerated":"2024-05-14T10:00:00Z","OperationName":"Create VM"}"#
        ));
    }

    #[test]
    fn a_union_export_sign_in_with_null_audit_columns_is_a_sign_in() {
        // `union SigninLogs, AuditLogs` in Sentinel: every row has both tables' columns, the
        // other table's as null; a key longer than the reader's buffer (33 bytes) is skipped.
        let json = r#"{"TimeGenerated":"2024-05-14T09:47:39Z","Type":"SigninLogs",
            "CreatedDateTime":"2024-05-14T09:45:12Z","UserId":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b",
            "UserPrincipalName":"meganb@contoso.com","SessionId":"s-1","ResultType":"0",
            "AuthenticationRequirementPolicies":"[]",
            "ActivityDateTime":null,"ActivityDisplayName":null,"InitiatedBy":null,
            "TargetResources":null,"Result":null}"#;
        with_event(json, |e| {
            assert_eq!(e.session.key.to_string(), "entra:sid:s-1");
            assert_eq!(e.action.operation, "signin");
            assert_eq!(e.operation, Operation::Auth);
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(e.time.to_string(), "2024-05-14T09:45:12.000Z");
        });
    }

    #[test]
    fn sign_in_members_read_in_every_shape() {
        // A Log Analytics row naming its table only: the vendor name falls back to it, and a
        // managed identity is a service principal; a token issuer's name is preferred.
        let json = r#"{"TimeGenerated":"2024-05-14T10:03:27Z","Type":"AADManagedIdentitySignInLogs",
            "ServicePrincipalId":"4d7b9e1f","ServicePrincipalName":"vm-identity","UserId":"u-9",
            "UniqueTokenIdentifier":"tok","ResourceTenantId":"t-resource",
            "TokenIssuerName":"contoso-adfs","TokenIssuerType":"ADFederationServices"}"#;
        with_event(json, |e| {
            assert_eq!(e.action.vendor, "AADManagedIdentitySignInLogs");
            assert_eq!(e.principal.kind.as_deref(), Some("ServicePrincipal"));
            assert_eq!(e.principal.name.as_deref(), Some("vm-identity"));
            assert_eq!(e.session.key.to_string(), "entra:t-resource:uti:tok");
            assert_eq!(e.session.issuer.as_deref(), Some("contoso-adfs"));
        });
        // A user's sign-in names the client's service principal too: still the user's.
        let json = r#"{"createdDateTime":"2024-05-14T10:00:00Z","userId":"u-1","appId":"a",
            "servicePrincipalId":"sp-of-the-client","sessionId":"s"}"#;
        with_event(json, |e| {
            assert_eq!(e.principal.kind.as_deref(), Some("User"));
            assert_eq!(e.principal.id.as_deref(), Some("u-1"));
        });
        // A user named by display name only.
        let json = r#"{"createdDateTime":"2024-05-14T10:00:00Z","userId":"u-1","appId":"a",
            "userDisplayName":"Megan Bowen","sessionId":"s"}"#;
        with_event(json, |e| {
            assert_eq!(e.principal.name.as_deref(), Some("Megan Bowen"));
        });
        // An export whose body has no address and no result: the envelope's are used.
        let json = r#"{"time":"2025-01-15T09:35:20Z","category":"SignInLogs","tenantId":"t",
            "callerIpAddress":"5.5.5.5","resultSignature":"SUCCESS","properties":{
            "createdDateTime":"2025-01-15T09:35:20Z","userId":"u","sessionId":"s"}}"#;
        with_event(json, |e| {
            assert_eq!(e.network.ip.unwrap().to_string(), "5.5.5.5");
            assert_eq!(e.outcome.result, Status::Success);
        });
    }

    #[test]
    fn an_audit_in_an_admin_category_is_admin_whatever_its_name() {
        let json = r#"{"activityDateTime":"2024-05-14T11:00:00Z","activityDisplayName":"Update user",
            "category":"RoleManagement","result":"success",
            "initiatedBy":{"user":{"id":"1f4c8e2a-7b3d-4a9f-b6e1-2d5c8f0a3e7b"}}}"#;
        with_event(json, |e| assert_eq!(e.operation, Operation::Admin));
    }

    #[test]
    fn an_activity_name_alone_makes_an_audit() {
        // A Log Analytics audit row with no initiator is an audit that names none, not a
        // sign-in without a session.
        let json =
            r#"{"TimeGenerated":"2024-05-14T10:00:00Z","ActivityDisplayName":"Update user"}"#;
        let detail = reject(json).detail;
        assert!(
            detail.starts_with("directory audit has no initiatedBy"),
            "{detail}"
        );
        // Read as Entra whatever it looks like (`--source entra`), an activity time alone, or
        // an initiator alone, makes an audit too.
        let forced = Normalizer {
            forced: Some(Source::Entra),
            ..Normalizer::default()
        };
        for json in [
            r#"{"activityDateTime":"2024-05-14T10:00:00Z","operationName":"Update user"}"#,
            r#"{"time":"2024-05-14T10:00:00Z","operationName":"Update user","initiatedBy":{}}"#,
        ] {
            let scratch = Bump::new();
            let detail = forced
                .normalize(json.as_bytes(), &scratch)
                .unwrap_err()
                .detail;
            assert!(
                detail.starts_with("directory audit has no initiatedBy"),
                "{detail}"
            );
        }
        // A flat record's unreadable time is named as it is, not as an export's `properties`.
        let json = r#"{"createdDateTime":"yesterday","userId":"u","appId":"a"}"#;
        let r = reject(json);
        assert_eq!(r.reason, RejectReason::BadTimestamp);
        assert!(!r.detail.contains("properties."), "{}", r.detail);
    }

    #[test]
    fn outcomes_and_mfa_are_only_what_the_record_says() {
        let sign_in = |extra: &str| {
            format!(
                r#"{{"createdDateTime":"2024-05-14T10:00:00Z","userId":"u","sessionId":"s"{extra}}}"#
            )
        };
        // An application named by its id alone is what was signed in to.
        with_event(&sign_in(r#","appId":"d3590ed6""#), |e| {
            let r = e.resource.as_ref().unwrap();
            assert_eq!(r.kind.as_deref(), Some("application"));
            assert_eq!(r.id.as_deref(), Some("d3590ed6"));
            assert_eq!(r.name, None);
        });
        // A requirement other than single or multi factor says nothing about MFA.
        with_event(
            &sign_in(r#","appId":"a","authenticationRequirement":"deviceAuthentication""#),
            |e| assert_eq!(e.session.mfa, None),
        );
        // A result code that is neither a number, success nor failure is no outcome; nor is
        // the export's `resultSignature` of `None` (Log Analytics writes it for every row).
        let export = |result: &str| {
            format!(
                r#"{{"time":"2025-01-15T09:35:20Z","category":"SignInLogs",{result}"properties":{{
                "createdDateTime":"2025-01-15T09:35:20Z","userId":"u","sessionId":"s"}}}}"#
            )
        };
        with_event(&export(r#""resultType":"Failure","#), |e| {
            assert_eq!(e.outcome.result, Status::Failure);
        });
        for result in [
            r#""resultType":"Interrupted","#,
            r#""resultSignature":"None","#,
        ] {
            with_event(&export(result), |e| {
                assert_eq!(e.outcome.result, Status::Unknown, "{result}");
                assert_eq!(e.outcome.reason, None);
            });
        }
        // Graph's `unknownFutureValue` result of an audit is no outcome either.
        let audit = r#"{"activityDateTime":"2024-05-14T11:00:00Z","activityDisplayName":"Update user",
            "result":"unknownFutureValue","initiatedBy":{"user":{"id":"u"}}}"#;
        with_event(audit, |e| assert_eq!(e.outcome.result, Status::Unknown));
    }

    #[test]
    fn azure_activity_and_other_tables_are_not_entra() {
        let activity =
            include_str!("../../fixtures/events/entra/plaso-azure-activity-not-entra.jsonl");
        let scratch = bumpalo::Bump::new();
        let mut lines = 0;
        for line in activity.lines().filter(|l| !l.trim().is_empty()) {
            let fields = Fields::parse(line, &scratch).unwrap();
            assert!(!detect(&fields));
            lines += 1;
        }
        assert_eq!(lines, 4);
        for json in [
            r#"{"TimeGenerated":"2024-05-14T10:00:00Z","Type":"AzureActivity","Category":"Administrative",
                "OperationName":"Microsoft.Compute/disks/delete"}"#,
            r#"{"time":"2024-05-14T10:00:00Z","category":"Administrative","operationName":"x","properties":{}}"#,
            r#"{"message":"createdDateTime userPrincipalName"}"#,
        ] {
            assert!(!detect(&Fields::parse(json, &scratch).unwrap()), "{json}");
        }
        assert!(detect(&Fields::parse(GRAPH_SIGN_IN, &scratch).unwrap()));
        assert!(detect(
            &Fields::parse(ADD_MEMBER_TO_ROLE, &scratch).unwrap()
        ));
    }
}
