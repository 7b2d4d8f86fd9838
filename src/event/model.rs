//! The normalized event every rule evaluates, whatever its source.
//!
//! Events borrow from the record they were read from (`'a`): strings stay slices of the input
//! unless JSON escaping forced a copy. `raw` keeps the record's top-level members so a rule can
//! reach any vendor field by path.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::fields::Fields;
use super::text::Text;
use super::time::Timestamp;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Cloudtrail,
    Okta,
    Kubernetes,
    Github,
    Entra,
    Ocsf,
    /// An MCP gateway's audit log: an agent's Model Context Protocol requests.
    Mcp,
    /// OpenTelemetry GenAI spans and log records (OTLP JSON): an agent's tool and model calls.
    Otel,
}

impl Source {
    pub const ALL: [Source; 8] = [
        Source::Cloudtrail,
        Source::Okta,
        Source::Kubernetes,
        Source::Github,
        Source::Entra,
        Source::Ocsf,
        Source::Mcp,
        Source::Otel,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Cloudtrail => "cloudtrail",
            Source::Okta => "okta",
            Source::Kubernetes => "kubernetes",
            Source::Github => "github",
            Source::Entra => "entra",
            Source::Ocsf => "ocsf",
            Source::Mcp => "mcp",
            Source::Otel => "otel",
        }
    }

    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalized audit event.
#[derive(Clone, Debug, Serialize)]
pub struct Event<'a> {
    /// Event time (the vendor's, else the pipeline's), UTC.
    pub time: Timestamp,
    pub source: Source,
    /// The vendor's id for this event, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Text<'a>>,
    pub session: Session<'a>,
    pub principal: Principal<'a>,
    pub action: Action<'a>,
    pub outcome: Outcome<'a>,
    pub operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource<'a>>,
    /// Bytes moved by the operation, where the source reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Records or items returned, where the source reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    pub network: Network<'a>,
    pub client: Client<'a>,
    /// Privileges or scopes the event grants, uses or carries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage<'a>>,
    /// The record's top-level members, for `raw.<path>` access.
    #[serde(skip)]
    pub raw: Fields<'a>,
}

/// How a session key was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A sign-in session at an identity provider (Okta, Entra, AWS console sign-in).
    SignIn,
    /// Temporary credentials (AWS STS `ASIA…` keys).
    TemporaryCredential,
    /// A long-term credential: an access key or personal token. A credential, not a session.
    LongTermCredential,
    /// A bearer token (Kubernetes service-account JTI, OAuth token id).
    Token,
    /// A client certificate (Kubernetes X509 fingerprint).
    Certificate,
    /// No identifier exists at the source: derived from the principal.
    Principal,
}

impl SessionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionKind::SignIn => "sign_in",
            SessionKind::TemporaryCredential => "temporary_credential",
            SessionKind::LongTermCredential => "long_term_credential",
            SessionKind::Token => "token",
            SessionKind::Certificate => "certificate",
            SessionKind::Principal => "principal",
        }
    }
}

/// The session an event belongs to.
#[derive(Clone, Debug, Serialize)]
pub struct Session<'a> {
    /// Namespaced key, unique across sources: `aws:<account>:sts:<ASIA…>`, `okta:<sid>` …
    pub key: SessionKey<'a>,
    pub kind: SessionKind,
    /// True when no real session identifier exists and the key was derived.
    pub derived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
}

/// A namespaced session key in parts, so that building it borrows instead of allocating.
/// Rendered as `namespace:scope:kind:id`, with empty parts left out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey<'a> {
    pub namespace: &'static str,
    pub scope: Option<Text<'a>>,
    pub kind: &'static str,
    pub id: Text<'a>,
}

impl<'a> SessionKey<'a> {
    pub fn new(
        namespace: &'static str,
        scope: Option<Text<'a>>,
        kind: &'static str,
        id: Text<'a>,
    ) -> Self {
        SessionKey {
            namespace,
            scope: scope.filter(|s| !s.is_empty()),
            kind,
            id,
        }
    }

    pub fn into_owned(self) -> SessionKey<'static> {
        SessionKey {
            namespace: self.namespace,
            scope: self.scope.map(Text::into_owned),
            kind: self.kind,
            id: self.id.into_owned(),
        }
    }
}

impl fmt::Display for SessionKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The parts written one by one rather than through `write!` with arguments, which
        // goes through the formatting machinery for each: the archive renders a key per event.
        f.write_str(self.namespace)?;
        if let Some(scope) = &self.scope {
            f.write_str(":")?;
            f.write_str(scope.as_str())?;
        }
        if !self.kind.is_empty() {
            f.write_str(":")?;
            f.write_str(self.kind)?;
        }
        f.write_str(":")?;
        f.write_str(self.id.as_str())
    }
}

impl Serialize for SessionKey<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Who acted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Principal<'a> {
    /// The vendor's principal type (`IAMUser`, `AssumedRole`, `User`, `ServicePrincipal` …).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text<'a>>,
}

/// What was done: a normalized `service:operation` plus the vendor's own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action<'a> {
    pub service: Text<'a>,
    pub operation: Text<'a>,
    /// The vendor's name for the action (`eventName`, `eventType`, `verb` …).
    pub vendor: Text<'a>,
}

impl fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.service.as_str())?;
        f.write_str(":")?;
        f.write_str(self.operation.as_str())
    }
}

impl Serialize for Action<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Action", 2)?;
        s.serialize_field("name", &format_args!("{self}").to_string())?;
        s.serialize_field("vendor", &self.vendor)?;
        s.end()
    }
}

/// Whether the action succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Failure,
    Unknown,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome<'a> {
    pub result: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text<'a>>,
}

impl Outcome<'_> {
    pub const UNKNOWN: Outcome<'static> = Outcome {
        result: Status::Unknown,
        reason: None,
    };
}

/// The class of an operation, for rules that care about reads versus privilege changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Read,
    Write,
    /// Identity, access and policy administration: IAM, RBAC, role grants.
    Admin,
    /// Authentication and session issuance: sign-in, MFA, token exchange.
    Auth,
    Unknown,
}

impl Operation {
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Admin => "admin",
            Operation::Auth => "auth",
            Operation::Unknown => "unknown",
        }
    }
}

/// The object acted on.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resource<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text<'a>>,
    /// Namespace, repository, bucket or account that contains the resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Text<'a>>,
}

/// Where the request came from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Network<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// A cloud service that made the call on the session's behalf (`athena.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_service: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<Text<'a>>,
}

/// The software and device that made the request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Client<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Text<'a>>,
}

/// An autonomous agent acting in the session, and the task it was approved for.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Agent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Text<'a>>,
}

/// How this session relates to others (AWS role chaining).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Lineage<'a> {
    /// The session key this event issued to its caller (an `AssumeRole*` response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child: Option<SessionKey<'a>>,
    /// The role or identity the child session acts as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_role: Option<Text<'a>>,
    /// `sourceIdentity`, which survives role chaining and names the original actor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<Text<'a>>,
}
