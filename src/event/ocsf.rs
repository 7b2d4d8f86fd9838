//! OCSF 1.x events of the classes that carry identities: 3001 Account Change, 3002
//! Authentication, 3003 Authorize Session, 3004 Entity Management, 3005 User Access
//! Management, 3006 Group Management and 6003 API Activity, as written by any producer
//! (Amazon Security Lake, SIEM pipelines, applications logging OCSF natively).
//!
//! # Detection
//!
//! A top-level `class_uid` (a number, or a numeric string) of one of those classes. Other OCSF
//! classes are not read (they fall through to `unknown_source`).
//!
//! # Session key
//!
//! The session objects are, in order: for 3002 and 3003 the top-level `session` (the session
//! being authenticated or authorized, which belongs to the subject `user`, the event's
//! principal), then `actor.session`; for the other classes the other way round. The key, in
//! order of preference:
//!
//! 1. The session `uid` → `ocsf:<uid>`; for a record Okta produced (`metadata.product`),
//!    `okta:<uid>`, as the Okta adapter keys Okta's session id.
//! 2. The credential (`credential_uid` of the session, else of `actor.user`) →
//!    `ocsf:credential:<uid>`, kind `token`. For a record CloudTrail produced, an AWS access
//!    key comes first, before a session uid, and is keyed as the CloudTrail adapter keys it:
//!    `aws:<account>:sts:<ASIA…>` or `aws:<account>:iam-key:<AKIA…>` (the account from
//!    `actor.user.account.uid`, or OCSF 1.0's `account_uid`).
//! 3. The user (the principal below) → `ocsf:user:<uid>`, kind `principal`, `derived: true`;
//!    Okta's `okta:actor:<uid>` and GitHub's `github:actor:<login>` (the user's `name`), as
//!    those adapters derive theirs.
//!
//! So a session whose records arrive some raw and some mapped to OCSF is one session. A
//! record with none of these has no identity and is rejected (`no_session_identity`).
//!
//! A CloudTrail-produced `AssumeRole*`, `GetSessionToken` or `GetFederationToken` call names
//! the key it issued where Security Lake maps `responseElements` (`api.response.data`, JSON or
//! JSON in a string; the role from `requestParameters` in `api.request.data`), and is read as
//! the CloudTrail adapter reads the raw call: a federated call
//! (`AssumeRoleWithSAML`/`…WithWebIdentity`), whose caller has no AWS credential, is keyed by
//! the issued key (`aws:<role account>:sts:<ASIA…>`, created at the call); any other names it
//! as `lineage.child`, so role chains link across raw and mapped records.
//!
//! `kind` of a session uid: `temporary_credential` when the credential is an AWS STS key
//! (`ASIA…`), else `sign_in` — for every class, so the `AssumeRole` logon that opens an STS
//! session and the API calls made with it agree.
//! `issuer`, `created_time` (else `created_time_dt`) and `is_mfa` (for 3002 also the top-level
//! `is_mfa`) come from the same session object.
//!
//! # Mapping
//!
//! - `principal`: the subject `user` for 3002 and 3003 (else `actor.user`), `actor.user` for
//!   3001 and 6003 (`uid`, `name`, `type`, else the caption of `type_id`).
//! - `action`: for 6003 `<api.service.name>:<api.operation>`, the service lowercased with a
//!   trailing `.amazonaws.com` removed (`s3.amazonaws.com` → `s3`, as the CloudTrail adapter
//!   names it); with no service, the producer's (`okta`, `github`, as their adapters name
//!   actions), else `ocsf`. Other classes: `ocsf:<activity>`, the activity
//!   being the lowercase caption of `activity_id` in that class (`logon`, `attach policy`),
//!   else the lowercased `activity_name`; the vendor name is `activity_name` as written.
//! - `operation`: 3002 and 3003 → auth; 3001, 3004, 3005, 3006 → admin; 6003 by `activity_id`: 2 (Read) → read,
//!   1, 3, 4 (Create, Update, Delete) → write, anything else → unknown.
//! - `outcome`: `status_id` 1 → success, 2 → failure; without one, `status` `Success` or
//!   `Failure`; else unknown. A failure's reason is `status_detail`, else `api.response.error`,
//!   else `status`.
//! - `resource`: 6003 the first of `resources[]` (`type`, `uid`, `name`); 3001 the target `user`
//!   (type `user`).
//! - `scopes`: 3003 `privileges` as written and `groups` (or the older `group`) as
//!   `group:<name>`; 3001 Attach Policy (activity 7) the attached `policy` (`uid`, else `name`).
//! - `network`: `src_endpoint.ip`, `location.country` and `.city`,
//!   `autonomous_system.number`. `client`: `http_request.user_agent`; device `device.name`,
//!   else `device.hostname`, else `src_endpoint.hostname`.
//! - `id`: `metadata.uid`. Time: `time` (epoch milliseconds), else `time_dt`.
//!
//! Identity and action objects (`actor`, `user`, `session`, `api`) of the wrong shape reject
//! the record (`invalid_field`); a malformed context object (`src_endpoint`, `http_request`,
//! `device`, `metadata`) loses its detail, never the event.
//!
//! `actor.app_name` and `actor.invoked_by` name the client application, not an autonomous agent
//! with a task, so `agent` is left empty.

use serde::de::Deserializer;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::first_of;
use super::fields::{raw_bool, raw_i64, raw_text, raw_u64, Fields};
use super::model::{
    Action, Client, Event, Lineage, Network, Operation, Outcome, Principal, Resource, Session,
    SessionKey, SessionKind, Source, Status,
};
use super::normalize::{non_empty, parse_ip, Adapter, Record};
use super::reject::Reject;
use super::text::Text;
use super::time::Timestamp;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Ocsf,
    detect,
    normalize,
};

const ACCOUNT_CHANGE: u64 = 3001;
const AUTHENTICATION: u64 = 3002;
const AUTHORIZE_SESSION: u64 = 3003;
const ENTITY_MANAGEMENT: u64 = 3004;
const USER_ACCESS: u64 = 3005;
const GROUP_MANAGEMENT: u64 = 3006;
const API_ACTIVITY: u64 = 6003;

fn detect(fields: &Fields<'_>) -> bool {
    matches!(
        fields.u64("class_uid"),
        Ok(Some(
            ACCOUNT_CHANGE
                | AUTHENTICATION
                | AUTHORIZE_SESSION
                | ENTITY_MANAGEMENT
                | USER_ACCESS
                | GROUP_MANAGEMENT
                | API_ACTIVITY
        ))
    )
}

/// The product that logged what the record maps (`metadata.product`): records of a product
/// sessionguard also reads natively are keyed as the native adapter keys them, so one session
/// is one session whether its records arrive raw or as OCSF.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Producer {
    Aws,
    Okta,
    Github,
    Other,
}

impl Producer {
    /// The action service of an API call that names none: the native adapter's, so
    /// `okta:system.api_token.create` is the same action raw or mapped.
    fn service(self) -> &'static str {
        match self {
            Producer::Okta => "okta",
            Producer::Github => "github",
            Producer::Aws | Producer::Other => "ocsf",
        }
    }

    fn of(metadata: &Metadata<'_>) -> Producer {
        let Some(product) = &metadata.product else {
            return Producer::Other;
        };
        let names = [product.name.as_deref(), product.vendor_name.as_deref()];
        let says = |word: &str| {
            names
                .iter()
                .flatten()
                .any(|n| n.to_ascii_lowercase().contains(word))
        };
        if says("cloudtrail") {
            Producer::Aws
        } else if says("okta") {
            Producer::Okta
        } else if says("github") {
            Producer::Github
        } else {
            Producer::Other
        }
    }
}

/// A string that some producers write as a number (`uid: 12345`).
fn lenient_text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'a>>, D::Error> {
    let raw: &'de RawValue = Deserialize::deserialize(d)?;
    raw_text(raw, "uid").map_err(serde::de::Error::custom)
}

#[derive(Deserialize, Default)]
struct Actor<'a> {
    #[serde(borrow, default)]
    user: Option<User<'a>>,
    #[serde(borrow, default)]
    session: Option<OcsfSession<'a>>,
}

#[derive(Deserialize, Default)]
struct User<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    uid: Option<Text<'a>>,
    /// OCSF 1.1+: `account.uid`; OCSF 1.0 wrote `account_uid`.
    #[serde(borrow, default)]
    account: Option<Named<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    account_uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    type_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    credential_uid: Option<Text<'a>>,
}

impl<'a> User<'a> {
    /// `account.uid` (OCSF 1.1+), else `account_uid` (1.0).
    fn account(&self) -> Option<Text<'a>> {
        self.account
            .as_ref()
            .and_then(|a| non_empty(a.uid.clone()))
            .or_else(|| non_empty(self.account_uid.clone()))
    }
}

#[derive(Deserialize, Default)]
struct Cloud<'a> {
    #[serde(borrow, default)]
    account: Option<Named<'a>>,
}

#[derive(Deserialize, Default)]
struct OcsfSession<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    issuer: Option<Text<'a>>,
    #[serde(borrow, default)]
    created_time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    created_time_dt: Option<Text<'a>>,
    #[serde(borrow, default)]
    is_mfa: Option<&'a RawValue>,
    #[serde(borrow, default)]
    credential_uid: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Endpoint<'a> {
    #[serde(borrow, default)]
    ip: Option<Text<'a>>,
    #[serde(borrow, default)]
    hostname: Option<Text<'a>>,
    #[serde(borrow, default)]
    location: Option<Location<'a>>,
    #[serde(borrow, default)]
    autonomous_system: Option<AutonomousSystem<'a>>,
}

#[derive(Deserialize, Default)]
struct Location<'a> {
    #[serde(borrow, default)]
    country: Option<Text<'a>>,
    #[serde(borrow, default)]
    city: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct AutonomousSystem<'a> {
    #[serde(borrow, default)]
    number: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Api<'a> {
    #[serde(borrow, default)]
    operation: Option<Text<'a>>,
    #[serde(borrow, default)]
    service: Option<Named<'a>>,
    #[serde(borrow, default)]
    request: Option<ApiRequest<'a>>,
    #[serde(borrow, default)]
    response: Option<ApiResponse<'a>>,
}

#[derive(Deserialize, Default)]
struct ApiRequest<'a> {
    /// The request's parameters (CloudTrail's `requestParameters`): JSON, or JSON in a string.
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct ApiResponse<'a> {
    #[serde(borrow, default)]
    error: Option<Text<'a>>,
    /// The response (CloudTrail's `responseElements`): JSON, or JSON in a string.
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// What an AWS credential-issuing call's request and response hold of the key it issued.
#[derive(Deserialize, Default)]
struct IssuingData {
    #[serde(default, rename = "roleArn")]
    role_arn: Option<String>,
    #[serde(default)]
    credentials: Option<IssuedCredentials>,
}

#[derive(Deserialize, Default)]
struct IssuedCredentials {
    #[serde(default, rename = "accessKeyId")]
    access_key_id: Option<String>,
}

/// The key an AWS `AssumeRole*`, `GetSessionToken` or `GetFederationToken` call issued, as
/// the CloudTrail adapter keys it (`aws:<account>:sts:<ASIA…>`, the role's account, else the
/// caller's), read from `api.response.data` and `api.request.data` as Security Lake maps
/// `responseElements` and `requestParameters`; with the role it is for.
fn issued_key<'a>(
    api: &Api<'_>,
    account: Option<&Text<'a>>,
) -> Option<(SessionKey<'a>, Option<Text<'a>>)> {
    let operation = api.operation.as_deref()?;
    if !(operation.starts_with("AssumeRole")
        || operation == "GetSessionToken"
        || operation == "GetFederationToken")
    {
        return None;
    }
    let data = |raw: Option<&RawValue>| -> IssuingData {
        let Some(raw) = raw else {
            return IssuingData::default();
        };
        let text: Option<String> = if raw.get().starts_with('"') {
            serde_json::from_str(raw.get()).ok()
        } else {
            Some(raw.get().to_owned())
        };
        text.and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    let response = data(api.response.as_ref().and_then(|r| r.data));
    let key = response
        .credentials?
        .access_key_id
        .filter(|k| !k.is_empty())?;
    let role_arn = data(api.request.as_ref().and_then(|r| r.data)).role_arn;
    let role_account = role_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .map(|a| Text::owned(a.to_owned()));
    let account = role_account.or_else(|| account.cloned());
    Some((
        SessionKey::new("aws", account, "sts", Text::owned(key)),
        role_arn.map(Text::owned),
    ))
}

/// Any OCSF object read only for its `name` and `uid` (service, group, policy, resource).
#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    uid: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct HttpRequest<'a> {
    #[serde(borrow, default)]
    user_agent: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Device<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    hostname: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Metadata<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_text")]
    uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    product: Option<Product<'a>>,
}

#[derive(Deserialize, Default)]
struct Product<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    vendor_name: Option<Text<'a>>,
}

fn normalize(record: Record<'_>) -> Result<Event<'_>, Reject> {
    let f = &record.fields;
    let class = f
        .u64("class_uid")?
        .ok_or_else(|| Reject::invalid_field("class_uid", "missing"))?;
    let time = record.time(&["time", "time_dt"])?;
    let activity = f.u64("activity_id").unwrap_or(None);
    let actor: Actor<'_> = f.typed("actor")?.unwrap_or_default();
    let subject: Option<User<'_>> = f.typed("user")?;
    let signs_in = matches!(class, AUTHENTICATION | AUTHORIZE_SESSION);

    let top_session: Option<OcsfSession<'_>> = f.typed("session")?;
    let (first, second) = if signs_in {
        (top_session, actor.session)
    } else {
        (actor.session, top_session)
    };
    // The AWS account of an access key: the principal's, the actor's, the cloud's.
    let account = if signs_in { subject.as_ref() } else { None }
        .and_then(User::account)
        .or_else(|| actor.user.as_ref().and_then(User::account))
        .or_else(|| {
            let cloud: Cloud<'_> = f.typed("cloud").ok().flatten().unwrap_or_default();
            cloud.account.and_then(|a| non_empty(a.uid))
        });
    let (principal_user, target) = if signs_in {
        (subject.or(actor.user), None)
    } else {
        (actor.user, subject)
    };
    // The metadata is context, but it also says whose keys the record takes.
    let metadata: Metadata<'_> = f.typed("metadata").unwrap_or_default().unwrap_or_default();
    let keying_producer = Producer::of(&metadata);
    let api: Api<'_> = if class == API_ACTIVITY {
        f.typed("api")?.unwrap_or_default()
    } else {
        Api::default()
    };
    let issued = match keying_producer {
        Producer::Aws => issued_key(&api, account.as_ref()),
        _ => None,
    };
    let keying = Keying {
        producer: keying_producer,
        sessions: [first, second],
        user: principal_user.as_ref(),
        account,
        class,
        issued: issued.as_ref().map(|(key, _)| key.clone()),
    };
    let mut session = keying.session(f)?;
    // A federated call opens the session it issued, at its own time; any other issuing call
    // names the session it issued as its child.
    let lineage = match issued {
        Some((key, _)) if key == session.key => {
            session.created_at = session.created_at.or(Some(time));
            None
        }
        Some((child, child_role)) => Some(Lineage {
            child: Some(child),
            child_role,
            source_identity: None,
        }),
        None => None,
    };
    let principal = principal_user.map_or_else(Principal::default, |u| Principal {
        kind: non_empty(u.kind).or_else(|| user_type(u.type_id)),
        id: non_empty(u.uid),
        name: non_empty(u.name),
    });

    let action = action_of(f, class, activity, &api, keying_producer)?;
    let operation = match (class, activity) {
        (AUTHENTICATION | AUTHORIZE_SESSION, _) => Operation::Auth,
        (ACCOUNT_CHANGE | ENTITY_MANAGEMENT | USER_ACCESS | GROUP_MANAGEMENT, _) => {
            Operation::Admin
        }
        (_, Some(2)) => Operation::Read,
        (_, Some(1 | 3 | 4)) => Operation::Write,
        _ => Operation::Unknown,
    };
    let outcome = outcome_of(f, api.response)?;

    let resource = match class {
        API_ACTIVITY => match f.value("resources") {
            Some(raw) => first_of::<Named<'_>>(raw, "resources")?,
            None => None,
        }
        .map(|r| Resource {
            kind: non_empty(r.kind),
            id: non_empty(r.uid),
            name: non_empty(r.name),
            container: None,
        }),
        ACCOUNT_CHANGE => target.map(|u| Resource {
            kind: Some(Text::borrowed("user")),
            id: non_empty(u.uid),
            name: non_empty(u.name),
            container: None,
        }),
        _ => None,
    };
    let scopes = scopes_of(f, class, activity)?;

    let (network, client) = context_of(f);

    Ok(Event {
        time,
        source: Source::Ocsf,
        id: non_empty(metadata.uid),
        session,
        principal,
        action,
        outcome,
        operation,
        resource,
        bytes: None,
        records: None,
        network,
        client,
        scopes,
        agent: None,
        lineage,
        raw: record.fields,
    })
}

/// The network and client context: a malformed context object loses its detail, never the
/// event.
fn context_of<'a>(f: &Fields<'a>) -> (Network<'a>, Client<'a>) {
    let source: Endpoint<'_> = f
        .typed("src_endpoint")
        .unwrap_or_default()
        .unwrap_or_default();
    let location = source.location.unwrap_or_default();
    let network = Network {
        ip: source.ip.as_deref().and_then(parse_ip),
        via_service: None,
        asn: match source.autonomous_system.and_then(|a| a.number) {
            Some(raw) => raw_i64(raw, "src_endpoint.autonomous_system.number")
                .ok()
                .flatten()
                .and_then(|n| u32::try_from(n).ok()),
            None => None,
        },
        country: non_empty(location.country),
        city: non_empty(location.city),
    };
    let http: HttpRequest<'_> = f
        .typed("http_request")
        .unwrap_or_default()
        .unwrap_or_default();
    let device: Device<'_> = f.typed("device").unwrap_or_default().unwrap_or_default();
    let client = Client {
        user_agent: non_empty(http.user_agent),
        device: non_empty(device.name)
            .or(non_empty(device.hostname))
            .or(non_empty(source.hostname)),
    };
    (network, client)
}

/// What keys an OCSF record: its producer, its session objects in order of preference, and
/// the user whose record it is.
struct Keying<'k, 'a> {
    producer: Producer,
    sessions: [Option<OcsfSession<'a>>; 2],
    user: Option<&'k User<'a>>,
    /// The AWS account an access key belongs to.
    account: Option<Text<'a>>,
    class: u64,
    /// The key an AWS credential-issuing call issued: the session of a federated call
    /// (`AssumeRoleWithSAML`, `…WithWebIdentity`), whose caller holds no AWS credential yet.
    issued: Option<SessionKey<'a>>,
}

impl<'a> Keying<'_, 'a> {
    /// The session, in order of preference: the session `uid`; the credential
    /// (`session.credential_uid`, else `user.credential_uid`); the user (`derived`). An AWS
    /// access key comes before a session uid, as the CloudTrail adapter keys by it.
    fn session(mut self, f: &Fields<'a>) -> Result<Session<'a>, Reject> {
        let [first, second] = std::mem::take(&mut self.sessions);
        let (first, second) = (first.unwrap_or_default(), second.unwrap_or_default());
        let uid = non_empty(first.uid.clone()).or_else(|| non_empty(second.uid.clone()));
        let credential = non_empty(first.credential_uid.clone())
            .or_else(|| non_empty(second.credential_uid.clone()))
            .or_else(|| self.user.and_then(|u| non_empty(u.credential_uid.clone())));
        // Details come from the session object that has any.
        let details = if first.uid.is_some() || first.credential_uid.is_some() {
            first
        } else {
            second
        };
        let aws_key = match (self.producer, &credential) {
            (Producer::Aws, Some(key)) => self.aws_key(key.clone()),
            _ => None,
        };
        let (key, kind, derived) = match (aws_key, uid, credential) {
            (Some((key, kind)), _, _) => (key, kind, false),
            (None, Some(uid), credential) => {
                let kind = if credential.is_some_and(|c| c.starts_with("ASIA")) {
                    SessionKind::TemporaryCredential
                } else {
                    SessionKind::SignIn
                };
                let namespace = if self.producer == Producer::Okta {
                    "okta"
                } else {
                    "ocsf"
                };
                (SessionKey::new(namespace, None, "", uid), kind, false)
            }
            (None, None, Some(credential)) => (
                SessionKey::new("ocsf", None, "credential", credential),
                SessionKind::Token,
                false,
            ),
            (None, None, None) => match self.issued.take() {
                Some(issued) => (issued, SessionKind::TemporaryCredential, false),
                None => (self.user_key()?, SessionKind::Principal, true),
            },
        };
        let mut session = details_of(f, details, self.class)?;
        session.key = key;
        session.kind = kind;
        session.derived = derived;
        Ok(session)
    }

    /// An AWS access key as the CloudTrail adapter keys it: `aws:<account>:sts:<ASIA…>` or
    /// `aws:<account>:iam-key:<AKIA…>`.
    fn aws_key(&self, key: Text<'a>) -> Option<(SessionKey<'a>, SessionKind)> {
        let account = self.account.clone();
        let (kind, session_kind) = if key.starts_with("ASIA") {
            ("sts", SessionKind::TemporaryCredential)
        } else if key.starts_with("AKIA") {
            ("iam-key", SessionKind::LongTermCredential)
        } else {
            return None;
        };
        Some((SessionKey::new("aws", account, kind, key), session_kind))
    }

    /// The user's key, as the native adapter of its producer derives one: Okta's
    /// `okta:actor:<uid>`, GitHub's `github:actor:<login>`, else `ocsf:user:<uid>`.
    fn user_key(&self) -> Result<SessionKey<'a>, Reject> {
        let user = self.user.ok_or_else(|| {
            Reject::no_session("no session, credential or user: actor.session, actor.user")
        })?;
        let (namespace, id) = match self.producer {
            Producer::Okta => ("okta", non_empty(user.uid.clone())),
            Producer::Github => ("github", non_empty(user.name.clone())),
            Producer::Aws | Producer::Other => ("ocsf", non_empty(user.uid.clone())),
        };
        let kind = if namespace == "ocsf" { "user" } else { "actor" };
        let id = id
            .or_else(|| non_empty(user.uid.clone()))
            .ok_or_else(|| Reject::no_session("no session uid, credential_uid or user uid"))?;
        Ok(SessionKey::new(namespace, None, kind, id))
    }
}

/// The session's details (issuer, creation time, MFA); the key is set by [`Keying`].
fn details_of<'a>(f: &Fields<'a>, s: OcsfSession<'a>, class: u64) -> Result<Session<'a>, Reject> {
    let created_at = match s.created_time {
        Some(raw) if raw.get().starts_with('"') => {
            raw_text(raw, "session.created_time")?.and_then(|t| Timestamp::parse(&t))
        }
        Some(raw) => raw_i64(raw, "session.created_time")?.and_then(Timestamp::from_epoch),
        None => None,
    }
    .or_else(|| s.created_time_dt.as_deref().and_then(Timestamp::parse));
    let mfa = match s.is_mfa {
        Some(raw) => raw_bool(raw, "session.is_mfa")?,
        None if class == AUTHENTICATION => f.bool("is_mfa")?,
        None => None,
    };
    Ok(Session {
        key: SessionKey::new("ocsf", None, "", Text::borrowed("")),
        kind: SessionKind::SignIn,
        derived: false,
        issuer: non_empty(s.issuer),
        created_at,
        mfa,
    })
}

/// The caption of `user.type_id` when `user.type` is absent.
fn user_type<'a>(type_id: Option<&RawValue>) -> Option<Text<'a>> {
    let name = match raw_u64(type_id?, "user.type_id").ok()?? {
        1 => "User",
        2 => "Admin",
        3 => "System",
        4 => "Service",
        99 => "Other",
        _ => return None,
    };
    Some(Text::borrowed(name))
}

/// The lowercase caption of an activity id in its class (OCSF 1.x enums).
fn activity_caption(class: u64, activity: u64) -> Option<&'static str> {
    Some(match (class, activity) {
        (ACCOUNT_CHANGE, 1) => "create",
        (ACCOUNT_CHANGE, 2) => "enable",
        (ACCOUNT_CHANGE, 3) => "password change",
        (ACCOUNT_CHANGE, 4) => "password reset",
        (ACCOUNT_CHANGE, 5) => "disable",
        (ACCOUNT_CHANGE, 6) => "delete",
        (ACCOUNT_CHANGE, 7) => "attach policy",
        (ACCOUNT_CHANGE, 8) => "detach policy",
        (ACCOUNT_CHANGE, 9) => "lock",
        (ACCOUNT_CHANGE, 10) => "mfa factor enable",
        (ACCOUNT_CHANGE, 11) => "mfa factor disable",
        (AUTHENTICATION, 1) => "logon",
        (AUTHENTICATION, 2) => "logoff",
        (AUTHENTICATION, 3) => "authentication ticket",
        (AUTHENTICATION, 4) => "service ticket request",
        (AUTHENTICATION, 5) => "service ticket renew",
        (AUTHENTICATION, 6) => "preauth",
        (AUTHORIZE_SESSION, 1) => "assign privileges",
        (AUTHORIZE_SESSION, 2) => "assign groups",
        (AUTHORIZE_SESSION, 3) => "assign roles",
        (API_ACTIVITY, 1) => "create",
        (API_ACTIVITY, 2) => "read",
        (API_ACTIVITY, 3) => "update",
        (API_ACTIVITY, 4) => "delete",
        _ => return None,
    })
}

fn action_of<'a>(
    f: &Fields<'a>,
    class: u64,
    activity: Option<u64>,
    api: &Api<'a>,
    producer: Producer,
) -> Result<Action<'a>, Reject> {
    let caption = activity.and_then(|a| activity_caption(class, a));
    let activity_name = non_empty(f.text("activity_name")?);
    let generic = || {
        caption
            .map(Text::borrowed)
            .or_else(|| activity_name.clone().map(lowercase))
            .unwrap_or(Text::borrowed("other"))
    };
    if class == API_ACTIVITY {
        if let Some(operation) = non_empty(api.operation.clone()) {
            let service = api
                .service
                .as_ref()
                .and_then(|s| non_empty(s.name.clone()))
                .map_or(Text::borrowed(producer.service()), |name| {
                    let short = match name.strip_suffix(".amazonaws.com") {
                        Some(short) if !short.is_empty() => name.slice(0..short.len()),
                        _ => name,
                    };
                    lowercase(short)
                });
            return Ok(Action {
                service,
                operation: operation.clone(),
                vendor: operation,
            });
        }
    }
    let operation = generic();
    Ok(Action {
        service: Text::borrowed("ocsf"),
        vendor: activity_name.unwrap_or_else(|| operation.clone()),
        operation,
    })
}

/// `text` in lowercase, still borrowed when it already was.
fn lowercase(text: Text<'_>) -> Text<'_> {
    if text.chars().any(char::is_uppercase) {
        Text::owned(text.to_lowercase())
    } else {
        text
    }
}

fn outcome_of<'a>(
    f: &Fields<'a>,
    response: Option<ApiResponse<'a>>,
) -> Result<Outcome<'a>, Reject> {
    let status = non_empty(f.text("status")?);
    let result = match f.u64("status_id").unwrap_or(None) {
        Some(1) => Status::Success,
        Some(2) => Status::Failure,
        _ => match status.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("success") => Status::Success,
            Some(s) if s.eq_ignore_ascii_case("failure") => Status::Failure,
            _ => Status::Unknown,
        },
    };
    let reason = if result == Status::Failure {
        non_empty(f.text("status_detail")?)
            .or_else(|| response.and_then(|r| non_empty(r.error)))
            .or(status)
    } else {
        None
    };
    Ok(Outcome { result, reason })
}

fn scopes_of<'a>(
    f: &Fields<'a>,
    class: u64,
    activity: Option<u64>,
) -> Result<Vec<Text<'a>>, Reject> {
    let mut scopes = Vec::new();
    match class {
        AUTHORIZE_SESSION => {
            if let Some(privileges) = f.typed::<Vec<Option<Text<'a>>>>("privileges")? {
                scopes.extend(privileges.into_iter().filter_map(non_empty));
            }
            let groups = match f.typed::<Vec<Named<'a>>>("groups")? {
                Some(groups) => groups,
                None => f.typed::<Named<'a>>("group")?.into_iter().collect(),
            };
            scopes.extend(
                groups
                    .into_iter()
                    .filter_map(|g| non_empty(g.name))
                    .map(|name| Text::owned(format!("group:{name}"))),
            );
        }
        ACCOUNT_CHANGE if activity == Some(7) => {
            if let Some(policy) = f.typed::<Named<'a>>("policy")? {
                scopes.extend(non_empty(policy.uid).or(non_empty(policy.name)));
            }
        }
        _ => {}
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::super::RejectReason;
    use super::*;

    fn with_event<R>(json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
        super::super::testing::with_event(Source::Ocsf, json, check)
    }

    fn reject(json: &str) -> RejectReason {
        super::super::testing::rejected(json).reason
    }

    /// API Activity from CloudTrail, as an OCSF 1.1 mapping writes it.
    const API_CALL: &str = r#"{"metadata":{"version":"1.1.0","uid":"3c8a1f2e-7b4d-4e6a-9f0c-1d2e3f4a5b6c",
        "product":{"name":"CloudTrail","vendor_name":"AWS","version":"1.09"},"event_code":"AwsApiCall"},
        "time":1715677985000,"class_uid":6003,"class_name":"API Activity","category_uid":6,
        "category_name":"Application Activity","activity_id":2,"activity_name":"Read",
        "type_uid":600302,"type_name":"API Activity: Read","severity_id":1,"severity":"Informational",
        "status_id":1,"status":"Success",
        "actor":{"user":{"type":"AssumedRole","name":"alice",
            "uid":"arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b2c3d4e5f6a7b/alice",
            "credential_uid":"ASIAQ3EXAMPLE7SESS01","account":{"uid":"111122223333","type_id":10}},
          "session":{"uid":"alice-1715677900","credential_uid":"ASIAQ3EXAMPLE7SESS01",
            "issuer":"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0a1b2c3d4e5f6a7b",
            "created_time":1715677900000,"is_mfa":true}},
        "api":{"operation":"GetObject","service":{"name":"s3.amazonaws.com"},
          "request":{"uid":"7N5QF4Z8C2D1B0A9"},"response":{}},
        "resources":[{"uid":"arn:aws:s3:::finance-reports/q2.csv","type":"AWS::S3::Object","name":"q2.csv"},
          {"uid":"arn:aws:s3:::finance-reports","type":"AWS::S3::Bucket"}],
        "src_endpoint":{"ip":"198.51.100.23","location":{"country":"US","city":"Seattle"},
          "autonomous_system":{"number":7922,"name":"COMCAST-7922"}},
        "http_request":{"user_agent":"aws-cli/2.15.40 Python/3.11.8 Darwin/23.4.0"},
        "cloud":{"provider":"AWS","region":"us-west-2","account":{"uid":"111122223333"}}}"#;

    #[test]
    fn api_activity_keyed_by_actor_session() {
        // Mapped from CloudTrail: keyed by the access key, as the CloudTrail adapter keys the
        // same call, with the session's details from `actor.session`.
        with_event(API_CALL, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:111122223333:sts:ASIAQ3EXAMPLE7SESS01"
            );
            assert_eq!(e.session.kind, SessionKind::TemporaryCredential);
            assert!(!e.session.derived);
            assert_eq!(e.session.mfa, Some(true));
            assert_eq!(
                e.session.created_at.unwrap().to_string(),
                "2024-05-14T09:11:40.000Z"
            );
            assert!(e
                .session
                .issuer
                .as_deref()
                .unwrap()
                .ends_with("AWSReservedSSO_Admin_0a1b2c3d4e5f6a7b"));
            assert_eq!(e.time.to_string(), "2024-05-14T09:13:05.000Z");
            assert_eq!(e.action.to_string(), "s3:GetObject");
            assert_eq!(e.action.vendor, "GetObject");
            assert_eq!(e.operation, Operation::Read);
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(e.principal.kind.as_deref(), Some("AssumedRole"));
            assert_eq!(e.principal.name.as_deref(), Some("alice"));
            assert_eq!(e.network.ip.unwrap().to_string(), "198.51.100.23");
            assert_eq!(e.network.asn, Some(7922));
            assert_eq!(e.network.country.as_deref(), Some("US"));
            assert_eq!(e.network.city.as_deref(), Some("Seattle"));
            assert_eq!(
                e.client.user_agent.as_deref(),
                Some("aws-cli/2.15.40 Python/3.11.8 Darwin/23.4.0")
            );
            let r = e.resource.as_ref().unwrap();
            assert_eq!(r.kind.as_deref(), Some("AWS::S3::Object"));
            assert_eq!(r.id.as_deref(), Some("arn:aws:s3:::finance-reports/q2.csv"));
            assert_eq!(
                e.id.as_deref(),
                Some("3c8a1f2e-7b4d-4e6a-9f0c-1d2e3f4a5b6c")
            );
        });
        // From a producer sessionguard does not read natively: the session uid.
        let other = API_CALL.replace(r#""name":"CloudTrail""#, r#""name":"Lake Exporter""#);
        with_event(&other, |e| {
            assert_eq!(e.session.key.to_string(), "ocsf:alice-1715677900");
            assert_eq!(e.session.kind, SessionKind::TemporaryCredential);
        });
    }

    const LOGON: &str = r#"{"metadata":{"version":"1.1.0","uid":"evt-8f1c2d3e","product":{"name":"Okta","vendor_name":"Okta"}},
        "time":1715677921000,"class_uid":3002,"class_name":"Authentication","category_uid":3,
        "activity_id":1,"activity_name":"Logon","type_uid":300201,"severity_id":1,
        "status_id":1,"status":"Success","is_mfa":true,"auth_protocol_id":5,"auth_protocol":"SAML",
        "user":{"uid":"00u8f2k1xQ9rT0aB55d7","name":"alice@example.com","type_id":1},
        "session":{"uid":"102Pq7sX9aTQ2ySFeL0cBnAQ","created_time":1715677921000,
          "issuer":"https://example.okta.com","is_remote":true},
        "service":{"name":"Okta Dashboard"},
        "src_endpoint":{"ip":"198.51.100.23","hostname":"alice-mbp.example.com"},
        "device":{"type_id":3,"type":"Laptop","hostname":"alice-mbp.example.com","name":"alice-mbp"}}"#;

    #[test]
    fn authentication_keyed_by_top_level_session() {
        // Okta's session id, keyed as the Okta adapter keys it.
        with_event(LOGON, |e| {
            assert_eq!(e.session.key.to_string(), "okta:102Pq7sX9aTQ2ySFeL0cBnAQ");
            assert_eq!(e.session.kind, SessionKind::SignIn);
            assert!(!e.session.derived);
            // No `session.is_mfa`: the event's own `is_mfa` answers for a logon.
            assert_eq!(e.session.mfa, Some(true));
            assert_eq!(
                e.session.issuer.as_deref(),
                Some("https://example.okta.com")
            );
            assert_eq!(e.action.to_string(), "ocsf:logon");
            assert_eq!(e.action.vendor, "Logon");
            assert_eq!(e.operation, Operation::Auth);
            assert_eq!(e.principal.name.as_deref(), Some("alice@example.com"));
            assert_eq!(e.principal.kind.as_deref(), Some("User"));
            assert_eq!(e.client.device.as_deref(), Some("alice-mbp"));
        });
        // The subject's session wins over the actor's for an authentication.
        let with_actor = LOGON.replace(
            r#""severity_id":1,"#,
            r#""severity_id":1,"actor":{"session":{"uid":"idp-admin-session"}},"#,
        );
        with_event(&with_actor, |e| {
            assert_eq!(e.session.key.to_string(), "okta:102Pq7sX9aTQ2ySFeL0cBnAQ");
        });
    }

    #[test]
    fn failures_and_activity_names() {
        let failed = LOGON
            .replace(
                r#""status_id":1,"status":"Success""#,
                r#""status_id":2,"status":"Failure","status_detail":"INVALID_CREDENTIALS""#,
            )
            .replace(
                r#""activity_id":1,"activity_name":"Logon""#,
                r#""activity_id":99,"activity_name":"Step-Up""#,
            );
        with_event(&failed, |e| {
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("INVALID_CREDENTIALS"));
            assert_eq!(e.action.to_string(), "ocsf:step-up");
            assert_eq!(e.action.vendor, "Step-Up");
        });
        // Only the status text; no activity name.
        let text_only = LOGON
            .replace(
                r#""status_id":1,"status":"Success""#,
                r#""status":"failure""#,
            )
            .replace(r#""activity_name":"Logon","#, "");
        with_event(&text_only, |e| {
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("failure"));
            assert_eq!(e.action.vendor, "logon");
        });
    }

    #[test]
    fn authorize_session_and_account_change_scopes() {
        let authorize = r#"{"time":1715677922000,"class_uid":"3003","activity_id":1,
            "activity_name":"Assign Privileges","status_id":1,
            "user":{"uid":"00u8f2k1xQ9rT0aB55d7","name":"alice@example.com"},
            "session":{"uid":"102Pq7sX9aTQ2ySFeL0cBnAQ"},
            "privileges":["SUPER_ADMIN","ORG_ADMIN"],"groups":[{"name":"aws-admins","uid":"00g5x"}]}"#;
        with_event(authorize, |e| {
            assert_eq!(e.session.key.to_string(), "ocsf:102Pq7sX9aTQ2ySFeL0cBnAQ");
            assert_eq!(e.operation, Operation::Auth);
            assert_eq!(e.action.to_string(), "ocsf:assign privileges");
            assert_eq!(
                e.scopes,
                vec![
                    Text::borrowed("SUPER_ADMIN"),
                    Text::borrowed("ORG_ADMIN"),
                    Text::borrowed("group:aws-admins"),
                ]
            );
        });
        let attach = r#"{"time_dt":"2024-05-14T09:15:00Z","class_uid":3001,"activity_id":7,
            "activity_name":"Attach Policy","status_id":1,
            "actor":{"user":{"uid":"00u8f2k1xQ9rT0aB55d7","name":"alice@example.com","type":"User"},
              "session":{"uid":"102Pq7sX9aTQ2ySFeL0cBnAQ"}},
            "user":{"uid":"00u1bobbobbobbob0d7","name":"bob@example.com"},
            "policy":{"name":"Super Administrator","uid":"SUPER_ADMIN"}}"#;
        with_event(attach, |e| {
            assert_eq!(e.session.key.to_string(), "ocsf:102Pq7sX9aTQ2ySFeL0cBnAQ");
            assert_eq!(e.time.to_string(), "2024-05-14T09:15:00.000Z");
            assert_eq!(e.operation, Operation::Admin);
            assert_eq!(e.action.to_string(), "ocsf:attach policy");
            assert_eq!(e.principal.name.as_deref(), Some("alice@example.com"));
            let target = e.resource.as_ref().unwrap();
            assert_eq!(
                (target.kind.as_deref(), target.name.as_deref()),
                (Some("user"), Some("bob@example.com"))
            );
            assert_eq!(e.scopes, vec![Text::borrowed("SUPER_ADMIN")]);
        });
    }

    #[test]
    fn malformed_context_loses_detail_not_the_event() {
        let json = API_CALL
            .replace(
                r#"{"user_agent":"aws-cli/2.15.40 Python/3.11.8 Darwin/23.4.0"}"#,
                r#""aws-cli/2.15.40""#,
            )
            .replace(r#""number":7922"#, r#""number":"AS7922""#);
        with_event(&json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:111122223333:sts:ASIAQ3EXAMPLE7SESS01"
            );
            assert!(e.client.user_agent.is_none());
            assert!(e.network.asn.is_none());
            assert_eq!(e.network.ip.unwrap().to_string(), "198.51.100.23");
        });
    }

    #[test]
    fn without_a_session_the_credential_then_the_user_keys_the_event() {
        // CloudTrail mapped to OCSF often carries only the credential, not a session uid.
        let no_uid = API_CALL.replace(r#""uid":"alice-1715677900","#, "");
        with_event(&no_uid, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:111122223333:sts:ASIAQ3EXAMPLE7SESS01"
            );
            assert!(!e.session.derived);
        });
        let other = no_uid.replace(r#""name":"CloudTrail""#, r#""name":"Lake Exporter""#);
        with_event(&other, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "ocsf:credential:ASIAQ3EXAMPLE7SESS01"
            );
            assert_eq!(e.session.kind, SessionKind::Token);
        });
        // Neither: the user, derived.
        let user_only = other.replace(r#""credential_uid":"ASIAQ3EXAMPLE7SESS01","#, "");
        with_event(&user_only, |e| {
            assert!(e
                .session
                .key
                .to_string()
                .starts_with("ocsf:user:arn:aws:sts::"));
            assert_eq!(e.session.kind, SessionKind::Principal);
            assert!(e.session.derived);
        });
        // Okta's user, as the Okta adapter derives it; GitHub's by login.
        let okta_user = LOGON.replace(
            r#""session":{"uid":"102Pq7sX9aTQ2ySFeL0cBnAQ","#,
            r#""session":{"#,
        );
        with_event(&okta_user, |e| {
            assert_eq!(e.session.key.to_string(), "okta:actor:00u8f2k1xQ9rT0aB55d7");
        });
    }

    #[test]
    fn rejects() {
        // No session, no credential, no user: no identity.
        let nobody = r#"{"class_uid":6003,"time":1715677985000,"activity_id":2,
            "api":{"operation":"GetObject"},"actor":{"session":{"issuer":"x"}}}"#;
        assert_eq!(reject(nobody), RejectReason::NoSessionIdentity);
        // Network Activity (4001) is not a class sessionguard reads.
        let network = r#"{"class_uid":4001,"time":1715677985000,"activity_id":6,
            "src_endpoint":{"ip":"10.0.0.5"},"dst_endpoint":{"ip":"10.0.0.9","port":443}}"#;
        assert_eq!(reject(network), RejectReason::UnknownSource);
        let bad_actor = r#"{"class_uid":6003,"time":1715677985000,"actor":"alice"}"#;
        assert_eq!(reject(bad_actor), RejectReason::InvalidField);
        let no_time = r#"{"class_uid":3002,"session":{"uid":"s"}}"#;
        assert_eq!(reject(no_time), RejectReason::BadTimestamp);
    }

    /// Security Lake's mapping of an `AssumeRoleWithWebIdentity`: no credential yet, the
    /// issued key in `api.response.data` (JSON in a string, as the lake stores it). The record
    /// opens the session it issued, keyed as the CloudTrail adapter keys the raw record.
    #[test]
    fn a_federated_call_opens_the_session_it_issued_and_an_assume_role_names_its_child() {
        let federated = r#"{"class_uid":6003,"activity_id":2,"time":1730707201000,
            "metadata":{"product":{"name":"CloudTrail","vendor_name":"AWS"}},
            "cloud":{"provider":"AWS","account":{"uid":"482915736014"}},
            "api":{"operation":"AssumeRoleWithWebIdentity","service":{"name":"sts.amazonaws.com"},
              "request":{"data":"{\"roleArn\": \"arn:aws:iam::615482093771:role/gha-deploy\"}"},
              "response":{"data":"{\"credentials\": {\"accessKeyId\": \"ASIAB3KN7LZKENPTPXM2\"}}"}},
            "actor":{"user":{"type":"WebIdentityUser","name":"repo:northwind-labs/checkout"}}}"#;
        with_event(federated, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:615482093771:sts:ASIAB3KN7LZKENPTPXM2"
            );
            assert_eq!(e.session.kind, SessionKind::TemporaryCredential);
            assert!(!e.session.derived);
            assert_eq!(e.session.created_at, Some(e.time));
            assert!(e.lineage.is_none());
        });
        // A role session assuming another role: its own key, and the issued one as its child
        // (`data` as an object this time, as OCSF's json_t allows).
        let chained = r#"{"class_uid":6003,"activity_id":2,"time":1730707201000,
            "metadata":{"product":{"name":"CloudTrail","vendor_name":"AWS"}},
            "api":{"operation":"AssumeRole","service":{"name":"sts.amazonaws.com"},
              "request":{"data":{"roleArn":"arn:aws:iam::615482093771:role/admin"}},
              "response":{"data":{"credentials":{"accessKeyId":"ASIACHILD00000000001"}}}},
            "actor":{"user":{"type":"AssumedRole","uid":"arn:aws:sts::482915736014:assumed-role/ci/run",
              "credential_uid":"ASIAPARENT0000000001","account":{"uid":"482915736014"}}}}"#;
        with_event(chained, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "aws:482915736014:sts:ASIAPARENT0000000001"
            );
            let lineage = e.lineage.as_ref().expect("lineage");
            assert_eq!(
                lineage.child.as_ref().map(ToString::to_string).as_deref(),
                Some("aws:615482093771:sts:ASIACHILD00000000001")
            );
            assert_eq!(
                lineage.child_role.as_deref(),
                Some("arn:aws:iam::615482093771:role/admin")
            );
        });
    }

    #[test]
    fn every_caption_of_the_ocsf_enums() {
        // OCSF 1.x: `user.type_id` and the activity ids of the four classes read.
        let types = [
            (1, "User"),
            (2, "Admin"),
            (3, "System"),
            (4, "Service"),
            (99, "Other"),
        ];
        for (id, caption) in types {
            let text = id.to_string();
            let raw: &RawValue = serde_json::from_str(&text).unwrap();
            assert_eq!(user_type(Some(raw)).as_deref(), Some(caption), "{id}");
        }
        let raw: &RawValue = serde_json::from_str("0").unwrap();
        assert_eq!(user_type(Some(raw)), None);
        let account_change = [
            "create",
            "enable",
            "password change",
            "password reset",
            "disable",
            "delete",
            "attach policy",
            "detach policy",
            "lock",
            "mfa factor enable",
            "mfa factor disable",
        ];
        let authentication = [
            "logon",
            "logoff",
            "authentication ticket",
            "service ticket request",
            "service ticket renew",
            "preauth",
        ];
        let authorize = ["assign privileges", "assign groups", "assign roles"];
        let api = ["create", "read", "update", "delete"];
        for (class, captions) in [
            (ACCOUNT_CHANGE, &account_change[..]),
            (AUTHENTICATION, &authentication[..]),
            (AUTHORIZE_SESSION, &authorize[..]),
            (API_ACTIVITY, &api[..]),
        ] {
            for (id, caption) in (1..).zip(captions) {
                assert_eq!(activity_caption(class, id), Some(*caption), "{class} {id}");
            }
            let past = captions.len() as u64 + 1;
            assert_eq!(activity_caption(class, past), None, "{class} {past}");
            assert_eq!(activity_caption(class, 0), None, "{class} 0");
        }
    }

    #[test]
    fn session_times_in_either_form_and_mfa_only_where_the_class_has_it() {
        let call = |session: &str, extra: &str| {
            format!(
                r#"{{"class_uid":6003,"activity_id":2,"time":1715677985000,{extra}
                "api":{{"operation":"GetObject","service":{{"name":"s3.amazonaws.com"}}}},
                "actor":{{"session":{{"uid":"s-1"{session}}}}}}}"#
            )
        };
        for created in [r#""2024-05-14T09:11:40Z""#, "1715677900000"] {
            let json = call(&format!(r#","created_time":{created}"#), "");
            with_event(&json, |e| {
                assert_eq!(
                    e.session.created_at.map(|t| t.to_string()).as_deref(),
                    Some("2024-05-14T09:11:40.000Z"),
                    "{created}"
                );
            });
        }
        // A top-level `is_mfa` belongs to Authentication; on an API call it says nothing.
        with_event(&call("", r#""is_mfa":true,"#), |e| {
            assert_eq!(e.session.mfa, None)
        });
    }

    #[test]
    fn an_api_call_naming_no_service_takes_the_producers() {
        for (product, service) in [("Okta", "okta"), ("GitHub", "github"), ("Foo", "ocsf")] {
            let json = format!(
                r#"{{"class_uid":6003,"activity_id":1,"time":1715677985000,
                "metadata":{{"product":{{"name":"{product}","vendor_name":"{product}"}}}},
                "api":{{"operation":"system.api_token.create"}},
                "actor":{{"session":{{"uid":"s-1"}}}}}}"#
            );
            with_event(&json, |e| {
                assert_eq!(
                    e.action.to_string(),
                    format!("{service}:system.api_token.create")
                );
            });
        }
    }

    #[test]
    fn every_credential_issuing_call_names_its_child() {
        for operation in ["GetSessionToken", "GetFederationToken"] {
            let json = format!(
                r#"{{"class_uid":6003,"activity_id":2,"time":1730707201000,
                "metadata":{{"product":{{"name":"CloudTrail","vendor_name":"AWS"}}}},
                "api":{{"operation":"{operation}","service":{{"name":"sts.amazonaws.com"}},
                  "response":{{"data":{{"credentials":{{"accessKeyId":"ASIACHILD"}}}}}}}},
                "actor":{{"user":{{"type":"IAMUser","credential_uid":"AKIAPARENT",
                  "account":{{"uid":"482915736014"}}}}}}}}"#
            );
            with_event(&json, |e| {
                let child = e.lineage.as_ref().and_then(|l| l.child.as_ref());
                assert_eq!(
                    child.map(ToString::to_string).as_deref(),
                    Some("aws:482915736014:sts:ASIACHILD"),
                    "{operation}"
                );
            });
        }
    }

    #[test]
    fn status_by_id_else_by_text() {
        let call = |status: &str| {
            format!(
                r#"{{"class_uid":6003,"activity_id":2,"time":1715677985000,{status}
                "api":{{"operation":"GetObject","service":{{"name":".amazonaws.com"}}}},
                "actor":{{"session":{{"uid":"s-1"}}}}}}"#
            )
        };
        for (status, result) in [
            (r#""status_id":1,"#, Status::Success),
            (r#""status_id":2,"#, Status::Failure),
            (r#""status_id":2,"status":"Success","#, Status::Failure),
            (r#""status":"success","#, Status::Success),
            (r#""status":"FAILURE","#, Status::Failure),
            (r#""status":"Other","#, Status::Unknown),
        ] {
            with_event(&call(status), |e| {
                assert_eq!(e.outcome.result, result, "{status}")
            });
        }
        // A service named by the suffix alone keeps it: no empty service.
        with_event(&call(""), |e| {
            assert_eq!(e.action.to_string(), ".amazonaws.com:GetObject");
        });
    }

    #[test]
    fn only_an_attached_policy_is_a_scope() {
        let change = |activity: u64| {
            format!(
                r#"{{"class_uid":3001,"activity_id":{activity},"time":1715677985000,
                "policy":{{"name":"AdministratorAccess"}},"user":{{"uid":"u-1"}},
                "actor":{{"session":{{"uid":"s-1"}}}}}}"#
            )
        };
        with_event(&change(7), |e| {
            assert_eq!(e.scopes, vec![Text::borrowed("AdministratorAccess")]);
        });
        with_event(&change(8), |e| assert!(e.scopes.is_empty()));
    }
}
