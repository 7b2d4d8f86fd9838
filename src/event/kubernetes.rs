//! Kubernetes API server audit events, `audit.k8s.io/v1` (and `v1beta1`), one `Event` object per
//! record as the log and webhook backends write them (EKS, GKE and AKS forward the same object).
//!
//! # Detection
//!
//! `kind: "Event"` with an `apiVersion` under `audit.k8s.io/`. Records that carry no
//! `apiVersion` at all (Falco's recorded traces strip it, as do some forwarders) are accepted when
//! they have the audit event's own members, `auditID` and `stage`. A `kind: "Event"` with any other
//! `apiVersion` is a core `v1` Event (a cluster event, not an audit record) and is not read.
//!
//! # Session key, in order of preference
//!
//! 1. `user.extra["authentication.kubernetes.io/credential-id"]` (Kubernetes 1.29+; first value):
//!    - `JTI=<id>` (a service-account or other JWT): `k8s:jti:<id>`, kind `token`;
//!    - `X509SHA256=<fingerprint>` (a client certificate): `k8s:x509:<fingerprint>`, kind
//!      `certificate`;
//!    - any other credential id: `k8s:cred:<value>` (the whole value), kind `token`;
//!    - an empty one (`JTI=`) counts as none.
//! 2. `user.username`: `k8s:user:<username>`, derived, kind `principal`. Anonymous requests
//!    derive `k8s:user:system:anonymous`.
//! 3. No username either: rejected as `no_session_identity`.
//!
//! The key always comes from `user`, the authenticated caller, because that is the credential
//! a kill revokes — also under impersonation (below).
//!
//! # Principal
//!
//! `user.username` (id `user.uid`), typed `serviceaccount` (`system:serviceaccount:…`), `node`
//! (`system:node:…`), `anonymous` (`system:anonymous`) or `user`.
//!
//! Impersonation: `impersonatedUser` is the effective principal (the request was authorized as
//! it), so `principal` is the impersonated user, typed `impersonated`, while the session stays
//! the real caller's credential (or `k8s:user:<real username>`). The real user stays readable as
//! `raw.user.username`; the event carries the scope `impersonate:<impersonated username>` so a
//! rule sees the impersonation privilege being used.
//!
//! # Scopes
//!
//! The effective groups as `group:<name>` (`group:system:masters` is cluster-admin), then
//! `impersonate:<username>` when impersonating. A Role or ClusterRole written (create, update,
//! patch) adds what it grants, `rbac:<verb>:<resource>` per pair (`rbac:*:*`,
//! `rbac:create:pods/exec`), so rules can see wildcards and dangerous grants; a pod or workload
//! written adds what breaks out of its containers (`pod:privileged`, `pod:host-network`,
//! `pod:host-pid`, `pod:host-ipc`, `pod:host-path:<sensitive path>`).
//!
//! # Mapping
//!
//! `action` = `k8s:<verb>`, vendor name the verb. `resource` is `objectRef`: type the resource
//! (`pods/exec` with its subresource), name, namespace as container, uid as id. `operation`:
//! - `get`, `list`, `watch` → read, except on the interactive subresources `exec`, `attach`,
//!   `portforward` and `proxy`, which act on the workload (older clients open exec with `get`);
//! - `impersonate`, and writes to RBAC (`roles`, `clusterroles`, `rolebindings`,
//!   `clusterrolebindings` in `rbac.authorization.k8s.io`, or with no `apiGroup` as old records
//!   have), `serviceaccounts` (including `serviceaccounts/token`: minting a token for another
//!   identity is identity administration, as `iam:CreateAccessKey` is) and
//!   `certificatesigningrequests` → admin;
//! - `tokenreviews`, `selfsubjectreviews` and the `*subjectaccessreviews` /
//!   `selfsubjectrulesreviews` checks → auth;
//! - other writes (`create`, `update`, `patch`, `delete`, `deletecollection`) → write;
//!   any other verb → unknown.
//!
//! `outcome`: an `authorization.k8s.io/decision` of `forbid` is a failure, whatever the stage;
//! otherwise `responseStatus.code` below 400 is success and 400 or more a failure; without a
//! `responseStatus` (stage `RequestReceived`) it is unknown. The reason of a failure is the
//! authorizer's (`authorization.k8s.io/reason`, when it forbade), else `responseStatus.reason`,
//! else its `message`, else the code.
//!
//! Time: `stageTimestamp`, else `requestReceivedTimestamp`. IP: the first of `sourceIPs`.
//! Event id: `auditID`. `user`, `impersonatedUser`, `objectRef` or `responseStatus` of the
//! wrong shape reject the record (`invalid_field`); an unreadable `sourceIPs` only loses the
//! address.

use serde::de::MapAccess;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::{first_of, raw_i64, raw_text, Fields, First};
use super::model::{
    Action, Client, Event, Network, Operation, Outcome, Principal, Resource, Session, SessionKey,
    SessionKind, Source, Status,
};
use super::normalize::{captured, non_empty, parse_ip, Adapter, Record};
use super::reject::Reject;
use super::text::Text;

pub const ADAPTER: Adapter = Adapter {
    source: Source::Kubernetes,
    detect,
    normalize,
};

fn detect(fields: &Fields<'_>) -> bool {
    if !matches!(fields.text("kind"), Ok(Some(k)) if k == "Event") {
        return false;
    }
    match fields.value("apiVersion") {
        Some(raw) => {
            matches!(raw_text(raw, "apiVersion"), Ok(Some(v)) if v.starts_with("audit.k8s.io/"))
        }
        None => fields.contains("auditID") && fields.contains("stage"),
    }
}

/// `user` and `impersonatedUser` (`authentication.k8s.io/v1` `UserInfo`).
#[derive(Deserialize, Default)]
struct UserInfo<'a> {
    #[serde(borrow, default)]
    username: Option<Text<'a>>,
    #[serde(borrow, default)]
    uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    groups: Option<Vec<Text<'a>>>,
    #[serde(borrow, default)]
    extra: Option<Extra<'a>>,
}

/// The one member of `user.extra` the adapter reads; the rest stays in `raw`.
#[derive(Deserialize, Default)]
struct Extra<'a> {
    #[serde(rename = "authentication.kubernetes.io/credential-id", borrow, default)]
    credential_id: Option<First<Text<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    #[serde(borrow, default)]
    resource: Option<Text<'a>>,
    #[serde(borrow, default)]
    subresource: Option<Text<'a>>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    namespace: Option<Text<'a>>,
    #[serde(borrow, default)]
    uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    api_group: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct ResponseStatus<'a> {
    #[serde(borrow, default)]
    code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<Text<'a>>,
    #[serde(borrow, default)]
    reason: Option<Text<'a>>,
    #[serde(borrow, default)]
    message: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Annotations<'a> {
    #[serde(rename = "authorization.k8s.io/decision", borrow, default)]
    decision: Option<Text<'a>>,
    #[serde(rename = "authorization.k8s.io/reason", borrow, default)]
    reason: Option<Text<'a>>,
}

/// The members the first pass reads straight into typed values, each with its position, once
/// the record has shown an `auditID` (other sources' `user` is a string).
#[derive(Default)]
pub struct Captured<'a> {
    user: Option<(usize, Option<UserInfo<'a>>)>,
    impersonated: Option<(usize, Option<UserInfo<'a>>)>,
    object: Option<(usize, Option<ObjectRef<'a>>)>,
    status: Option<(usize, Option<ResponseStatus<'a>>)>,
    annotations: Option<(usize, Option<Annotations<'a>>)>,
    audit: bool,
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
        match key {
            "auditID" => self.audit = true,
            "user" if self.audit => self.user = Some((position, map.next_value()?)),
            "impersonatedUser" if self.audit => {
                self.impersonated = Some((position, map.next_value()?));
            }
            "objectRef" if self.audit => self.object = Some((position, map.next_value()?)),
            "responseStatus" if self.audit => self.status = Some((position, map.next_value()?)),
            "annotations" if self.audit => {
                self.annotations = Some((position, map.next_value()?));
            }
            _ => return Ok(false),
        }
        Ok(key != "auditID")
    }
}

/// At most this many `rbac:` scopes per role written (a role of hundreds of rules keeps the
/// first ones; wildcards come first in real roles that have them).
const MAX_ROLE_GRANTS: usize = 64;

/// `rbac:<verb>:<resource>` for each verb and resource a written Role or ClusterRole grants
/// (`<resource>/<subresource>` as RBAC writes it, `*` kept as written).
fn role_grants(role: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(rules) = role["rules"].as_array() else {
        return out;
    };
    for rule in rules {
        let strings = |key: &str| -> Vec<&str> {
            rule[key]
                .as_array()
                .map(|items| items.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default()
        };
        for verb in strings("verbs") {
            for resource in strings("resources") {
                let scope = format!("rbac:{verb}:{resource}");
                if out.len() < MAX_ROLE_GRANTS && !out.contains(&scope) {
                    out.push(scope);
                }
            }
        }
    }
    out
}

/// Resources whose body holds a pod template (or is a pod).
const WORKLOADS: &[&str] = &[
    "pods",
    "deployments",
    "daemonsets",
    "statefulsets",
    "replicasets",
    "jobs",
    "cronjobs",
];

/// Host paths whose mount gives a container the node (Falco's sensitive mounts, in short).
const SENSITIVE_HOST_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/root",
    "/proc",
    "/var/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/var/lib/kubelet",
    "/etc/kubernetes",
];

/// What a pod (or a workload's pod template) runs with that breaks out of the container:
/// `pod:privileged`, `pod:host-network`, `pod:host-pid`, `pod:host-ipc`,
/// `pod:host-path:<path>` for a sensitive host path.
fn pod_risks(body: &serde_json::Value) -> Vec<String> {
    // A pod, a workload's template, or a CronJob's job template.
    let spec = [
        &body["spec"],
        &body["spec"]["template"]["spec"],
        &body["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ]
    .into_iter()
    .find(|s| s["containers"].is_array());
    let Some(spec) = spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut add = |scope: String| {
        if !out.contains(&scope) {
            out.push(scope);
        }
    };
    for (flag, scope) in [
        ("hostNetwork", "pod:host-network"),
        ("hostPID", "pod:host-pid"),
        ("hostIPC", "pod:host-ipc"),
    ] {
        if spec[flag].as_bool() == Some(true) {
            add(scope.to_owned());
        }
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten();
    for container in containers {
        if container["securityContext"]["privileged"].as_bool() == Some(true) {
            add("pod:privileged".to_owned());
        }
    }
    for volume in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(path) = volume["hostPath"]["path"].as_str() {
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() { "/" } else { path };
            if SENSITIVE_HOST_PATHS.contains(&path) {
                add(format!("pod:host-path:{path}"));
            }
        }
    }
    out
}

fn normalize(mut record: Record<'_>) -> Result<Event<'_>, Reject> {
    let cap = std::mem::take(&mut record.captured.kubernetes);
    let f = &record.fields;
    let time = record.time(&["stageTimestamp", "requestReceivedTimestamp"])?;
    let user: UserInfo<'_> = match captured(cap.user, f, "user") {
        Some(user) => user,
        None => f.typed("user")?,
    }
    .unwrap_or_default();
    let impersonated: Option<UserInfo<'_>> = match captured(cap.impersonated, f, "impersonatedUser")
    {
        Some(user) => user,
        None => f.typed("impersonatedUser")?,
    };
    let session = session_of(&user)?;
    let verb = f.required_text("verb")?;
    let object: Option<ObjectRef<'_>> = match captured(cap.object, f, "objectRef") {
        Some(object) => object,
        None => f.typed("objectRef")?,
    };

    let (principal, groups, impersonating) = match impersonated {
        Some(as_user) if non_empty(as_user.username.clone()).is_some() => {
            let name = non_empty(as_user.username.clone());
            let principal = Principal {
                kind: Some(Text::borrowed("impersonated")),
                id: non_empty(as_user.uid),
                name: name.clone(),
            };
            (principal, as_user.groups, name)
        }
        _ => {
            let name = non_empty(user.username.clone());
            let principal = Principal {
                kind: name.as_deref().map(|n| Text::borrowed(principal_type(n))),
                id: non_empty(user.uid.clone()),
                name,
            };
            (principal, user.groups, None)
        }
    };
    let groups = groups.unwrap_or_default();
    let mut scopes = Vec::with_capacity(groups.len() + usize::from(impersonating.is_some()));
    scopes.extend(
        groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| Text::concat_in(record.scratch, &["group:", g])),
    );
    if let Some(name) = &impersonating {
        scopes.push(Text::concat_in(record.scratch, &["impersonate:", name]));
    }

    // Roles and workloads written: what they grant or run with, read from the request body
    // (present at the Request and RequestResponse audit levels).
    let resource_written = object
        .as_ref()
        .filter(|o| o.subresource.is_none() && matches!(&*verb, "create" | "update" | "patch"))
        .and_then(|o| o.resource.as_deref());
    let read_body: Option<fn(&serde_json::Value) -> Vec<String>> = match resource_written {
        Some("roles" | "clusterroles") => Some(role_grants),
        Some(r) if WORKLOADS.contains(&r) => Some(pod_risks),
        _ => None,
    };
    if let Some(read_body) = read_body {
        if let Some(body) = f.typed::<serde_json::Value>("requestObject").ok().flatten() {
            scopes.extend(read_body(&body).into_iter().map(Text::owned));
        }
    }

    let operation = operation_of(&verb, object.as_ref());
    let resource = object
        .filter(|o| o.resource.is_some() || o.name.is_some())
        .map(|o| {
            let kind = match (non_empty(o.resource), non_empty(o.subresource)) {
                (Some(r), Some(s)) => Some(Text::concat_in(record.scratch, &[&r, "/", &s])),
                (r, _) => r,
            };
            Resource {
                kind,
                id: non_empty(o.uid),
                name: non_empty(o.name),
                container: non_empty(o.namespace),
            }
        });

    let ip = match f.value("sourceIPs") {
        // An unreadable address list loses the address, never the event.
        Some(raw) => first_of::<Text<'_>>(raw, "sourceIPs").unwrap_or(None),
        None => None,
    }
    .and_then(|t| parse_ip(&t));

    Ok(Event {
        time,
        source: Source::Kubernetes,
        id: non_empty(f.text("auditID")?),
        session,
        principal,
        action: Action {
            service: Text::borrowed("k8s"),
            operation: verb.clone(),
            vendor: verb,
        },
        outcome: outcome_of(f, cap.status, cap.annotations)?,
        operation,
        resource,
        bytes: None,
        records: None,
        network: Network {
            ip,
            ..Network::default()
        },
        client: Client {
            user_agent: non_empty(f.text("userAgent")?),
            device: None,
        },
        scopes,
        agent: None,
        lineage: None,
        raw: record.fields,
    })
}

fn session_of<'a>(user: &UserInfo<'a>) -> Result<Session<'a>, Reject> {
    let credential = user
        .extra
        .as_ref()
        .and_then(|e| e.credential_id.as_ref())
        .and_then(|c| credential_key(c.0.clone()?));
    let (key, kind, derived) = match credential {
        Some((key, kind)) => (key, kind, false),
        None => match non_empty(user.username.clone()) {
            Some(username) => {
                let key = SessionKey::new("k8s", None, "user", username);
                (key, SessionKind::Principal, true)
            }
            None => {
                return Err(Reject::no_session(
                    "user has neither a credential-id nor a username",
                ))
            }
        },
    };
    Ok(Session {
        key,
        kind,
        derived,
        issuer: None,
        created_at: None,
        mfa: None,
    })
}

/// The session key of a credential id; `None` when it names nothing (`""`, `"JTI="`).
fn credential_key(credential: Text<'_>) -> Option<(SessionKey<'_>, SessionKind)> {
    for (prefix, tag, kind) in [
        ("JTI=", "jti", SessionKind::Token),
        ("X509SHA256=", "x509", SessionKind::Certificate),
    ] {
        if credential.starts_with(prefix) {
            let id = credential.slice(prefix.len()..credential.len());
            return (!id.is_empty()).then(|| (SessionKey::new("k8s", None, tag, id), kind));
        }
    }
    let credential = non_empty(Some(credential))?;
    Some((
        SessionKey::new("k8s", None, "cred", credential),
        SessionKind::Token,
    ))
}

fn principal_type(username: &str) -> &'static str {
    if username.starts_with("system:serviceaccount:") {
        "serviceaccount"
    } else if username.starts_with("system:node:") {
        "node"
    } else if username == "system:anonymous" {
        "anonymous"
    } else {
        "user"
    }
}

const RBAC_RESOURCES: &[&str] = &[
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];

const AUTH_RESOURCES: &[&str] = &[
    "tokenreviews",
    "selfsubjectreviews",
    "subjectaccessreviews",
    "selfsubjectaccessreviews",
    "localsubjectaccessreviews",
    "selfsubjectrulesreviews",
];

/// Subresources that run or reach into a workload, whatever the verb.
const INTERACTIVE_SUBRESOURCES: &[&str] = &["exec", "attach", "portforward", "proxy"];

fn operation_of(verb: &str, object: Option<&ObjectRef<'_>>) -> Operation {
    let resource = object.and_then(|o| o.resource.as_deref()).unwrap_or("");
    let subresource = object.and_then(|o| o.subresource.as_deref()).unwrap_or("");
    let group = object.and_then(|o| o.api_group.as_deref()).unwrap_or("");
    let interactive = INTERACTIVE_SUBRESOURCES.contains(&subresource);
    match verb {
        "get" | "list" | "watch" if !interactive => Operation::Read,
        "impersonate" => Operation::Admin,
        "get" | "list" | "watch" | "create" | "update" | "patch" | "delete"
        | "deletecollection" => {
            let rbac = RBAC_RESOURCES.contains(&resource)
                && (group.is_empty() || group == "rbac.authorization.k8s.io");
            if rbac || resource == "serviceaccounts" || resource == "certificatesigningrequests" {
                Operation::Admin
            } else if AUTH_RESOURCES.contains(&resource) {
                Operation::Auth
            } else {
                Operation::Write
            }
        }
        _ => Operation::Unknown,
    }
}

type Slot<T> = Option<(usize, Option<T>)>;

fn outcome_of<'a>(
    f: &Fields<'a>,
    status: Slot<ResponseStatus<'a>>,
    annotations: Slot<Annotations<'a>>,
) -> Result<Outcome<'a>, Reject> {
    let annotations: Annotations<'a> = captured(annotations, f, "annotations")
        .unwrap_or_else(|| f.typed("annotations").unwrap_or_default())
        .unwrap_or_default();
    let forbidden = annotations.decision.as_deref() == Some("forbid");
    let status: Option<ResponseStatus<'a>> = match captured(status, f, "responseStatus") {
        Some(status) => status,
        None => f.typed("responseStatus")?,
    };
    // Only HTTP status codes count; a 0 or a missing code leaves `status` to decide.
    let code = match status.as_ref().and_then(|s| s.code) {
        Some(raw) => raw_i64(raw, "responseStatus.code")?
            .filter(|c| (100..600).contains(c))
            .map(|c| (c, raw)),
        None => None,
    };
    let failed = match (&code, status.as_ref().and_then(|s| s.status.as_deref())) {
        _ if forbidden => true,
        (Some((c, _)), _) => *c >= 400,
        (None, Some("Failure")) => true,
        (None, Some("Success")) => false,
        (None, _) => return Ok(Outcome::UNKNOWN),
    };
    if !failed {
        return Ok(Outcome {
            result: Status::Success,
            reason: None,
        });
    }
    let code_text = match code {
        Some((_, raw)) => raw_text(raw, "responseStatus.code")?,
        None => None,
    };
    let (status_reason, message) = status.map_or((None, None), |s| (s.reason, s.message));
    let authorizer = annotations.reason.filter(|_| forbidden);
    Ok(Outcome {
        result: Status::Failure,
        reason: non_empty(authorizer)
            .or(non_empty(status_reason))
            .or(non_empty(message))
            .or(code_text)
            .or(annotations.decision),
    })
}

#[cfg(test)]
mod tests {
    use super::super::normalize::Captures;
    use super::super::RejectReason;
    use super::*;

    fn with_event<R>(json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
        super::super::testing::with_event(Source::Kubernetes, json, check)
    }

    fn reject(json: &str) -> RejectReason {
        super::super::testing::rejected(json).reason
    }

    /// A service-account token (bound JWT) reading a secret, as Kubernetes 1.30 logs it.
    const JTI: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",
        "auditID":"5c1f8e04-54d7-4b0b-9a4c-32f2a1b0c9d1","stage":"ResponseComplete",
        "requestURI":"/api/v1/namespaces/payments/secrets/db-creds","verb":"get",
        "user":{"username":"system:serviceaccount:payments:api",
          "uid":"7a0e2f9c-1d3b-4c55-8f0a-2b7c9d1e4f60",
          "groups":["system:serviceaccounts","system:serviceaccounts:payments","system:authenticated"],
          "extra":{"authentication.kubernetes.io/credential-id":["JTI=0f8a3c52-9e61-4d2b-b7a4-6c1e5d2f9a83"],
            "authentication.kubernetes.io/node-name":["ip-10-0-3-17.ec2.internal"],
            "authentication.kubernetes.io/pod-name":["api-7d9f8b6c5-x2k4q"]}},
        "sourceIPs":["10.0.3.45"],"userAgent":"python-requests/2.31.0",
        "objectRef":{"resource":"secrets","namespace":"payments","name":"db-creds","apiVersion":"v1"},
        "responseStatus":{"metadata":{},"code":200},
        "requestReceivedTimestamp":"2024-05-14T09:12:03.118204Z",
        "stageTimestamp":"2024-05-14T09:12:03.121877Z",
        "annotations":{"authorization.k8s.io/decision":"allow",
          "authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"api-secrets/payments\""}}"#;

    #[test]
    fn jti_token_session() {
        with_event(JTI, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "k8s:jti:0f8a3c52-9e61-4d2b-b7a4-6c1e5d2f9a83"
            );
            assert_eq!(e.session.kind, SessionKind::Token);
            assert!(!e.session.derived);
            assert_eq!(e.time.to_string(), "2024-05-14T09:12:03.121Z");
            assert_eq!(
                e.id.as_deref(),
                Some("5c1f8e04-54d7-4b0b-9a4c-32f2a1b0c9d1")
            );
            assert_eq!(e.action.to_string(), "k8s:get");
            assert_eq!(e.action.vendor, "get");
            assert_eq!(e.operation, Operation::Read);
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(e.principal.kind.as_deref(), Some("serviceaccount"));
            assert_eq!(
                e.principal.name.as_deref(),
                Some("system:serviceaccount:payments:api")
            );
            assert_eq!(
                e.principal.id.as_deref(),
                Some("7a0e2f9c-1d3b-4c55-8f0a-2b7c9d1e4f60")
            );
            assert_eq!(e.network.ip.unwrap().to_string(), "10.0.3.45");
            assert_eq!(
                e.client.user_agent.as_deref(),
                Some("python-requests/2.31.0")
            );
            let r = e.resource.as_ref().unwrap();
            assert_eq!(
                (r.kind.as_deref(), r.name.as_deref(), r.container.as_deref()),
                (Some("secrets"), Some("db-creds"), Some("payments"))
            );
            assert_eq!(
                e.scopes,
                vec![
                    Text::borrowed("group:system:serviceaccounts"),
                    Text::borrowed("group:system:serviceaccounts:payments"),
                    Text::borrowed("group:system:authenticated"),
                ]
            );
        });
    }

    #[test]
    fn x509_certificate_session() {
        let json = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",
            "auditID":"8ee17730-f830-446e-bd22-ce212d2536a9","stage":"ResponseComplete",
            "requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create",
            "user":{"username":"kubernetes-admin","groups":["kubeadm:cluster-admins","system:authenticated"],
              "extra":{"authentication.kubernetes.io/credential-id":
                ["X509SHA256=d6b667f1036a0ca8d4d4d9f455c2de882e2570fca5dde306bb92c5a2b8b39cda"]}},
            "sourceIPs":["172.19.0.1"],"userAgent":"kubectl/v1.30.1 (linux/amd64) kubernetes/6911225",
            "objectRef":{"resource":"clusterrolebindings","name":"backdoor",
              "apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"},
            "responseStatus":{"metadata":{},"code":201},
            "requestReceivedTimestamp":"2024-05-14T09:20:11.751492Z",
            "stageTimestamp":"2024-05-14T09:20:11.760113Z"}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "k8s:x509:d6b667f1036a0ca8d4d4d9f455c2de882e2570fca5dde306bb92c5a2b8b39cda"
            );
            assert_eq!(e.session.kind, SessionKind::Certificate);
            assert!(!e.session.derived);
            assert_eq!(e.operation, Operation::Admin);
            assert_eq!(e.principal.kind.as_deref(), Some("user"));
        });
    }

    #[test]
    fn an_empty_credential_id_falls_back_to_the_username() {
        let json = JTI.replace("JTI=0f8a3c52-9e61-4d2b-b7a4-6c1e5d2f9a83", "JTI=");
        with_event(&json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "k8s:user:system:serviceaccount:payments:api"
            );
            assert!(e.session.derived);
        });
    }

    #[test]
    fn other_credential_ids_are_kept_whole() {
        let json = JTI.replace("JTI=0f8a3c52-9e61-4d2b-b7a4-6c1e5d2f9a83", "OIDC=abc");
        with_event(&json, |e| {
            assert_eq!(e.session.key.to_string(), "k8s:cred:OIDC=abc");
            assert_eq!(e.session.kind, SessionKind::Token);
            assert!(!e.session.derived);
        });
    }

    /// Falco's recorded minikube trace (`exec_pod.json`): no `apiVersion`, no credential id.
    #[test]
    fn username_derived_session_and_exec() {
        let json = r#"{"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""},"auditID":"ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6","kind":"Event","level":"Request","metadata":{"creationTimestamp":"2018-10-26T13:38:34Z"},"objectRef":{"apiVersion":"v1","name":"nginx-deployment-7998647bdf-phvq7","namespace":"default","resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2018-10-26T13:38:34.867116Z","requestURI":"/api/v1/namespaces/default/pods/nginx-deployment-7998647bdf-phvq7/exec?command=bash&container=nginx1&container=nginx1&stdin=true&stdout=true&tty=true","responseStatus":{"code":101,"metadata":{}},"sourceIPs":["192.168.99.1"],"stage":"ResponseStarted","stageTimestamp":"2018-10-26T13:38:34.902914Z","timestamp":"2018-10-26T13:38:34Z","user":{"groups":["system:masters","system:authenticated"],"username":"minikube-user"},"verb":"create"}"#;
        with_event(json, |e| {
            assert_eq!(e.session.key.to_string(), "k8s:user:minikube-user");
            assert_eq!(e.session.kind, SessionKind::Principal);
            assert!(e.session.derived);
            assert_eq!(e.action.to_string(), "k8s:create");
            assert_eq!(e.operation, Operation::Write);
            assert_eq!(e.outcome.result, Status::Success);
            assert_eq!(
                e.resource.as_ref().unwrap().kind.as_deref(),
                Some("pods/exec")
            );
            assert_eq!(e.time.to_string(), "2018-10-26T13:38:34.902Z");
            assert!(e.scopes.contains(&Text::borrowed("group:system:masters")));
        });
        // Exec opened with `get` (older clients) is still not a read.
        with_event(
            &json.replace("\"verb\":\"create\"", "\"verb\":\"get\""),
            |e| {
                assert_eq!(e.operation, Operation::Write);
            },
        );
    }

    #[test]
    fn impersonation_keeps_the_callers_session() {
        let json = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",
            "auditID":"2b7e0a61-3f4c-4d8e-9a1b-5c6d7e8f9a0b","stage":"ResponseComplete",
            "requestURI":"/api/v1/namespaces/kube-system/secrets","verb":"list",
            "user":{"username":"dev@example.com","groups":["developers","system:authenticated"],
              "extra":{"authentication.kubernetes.io/credential-id":
                ["X509SHA256=4155bb96eb0e8f09b34395262b69d02793074130628061c4ce10eba82513af6d"]}},
            "impersonatedUser":{"username":"system:admin","groups":["system:masters"]},
            "sourceIPs":["198.51.100.23"],"userAgent":"kubectl/v1.30.1 (darwin/arm64) kubernetes/6911225",
            "objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},
            "responseStatus":{"metadata":{},"code":200},
            "requestReceivedTimestamp":"2024-05-14T10:01:00.100000Z",
            "stageTimestamp":"2024-05-14T10:01:00.130000Z"}"#;
        with_event(json, |e| {
            assert_eq!(
                e.session.key.to_string(),
                "k8s:x509:4155bb96eb0e8f09b34395262b69d02793074130628061c4ce10eba82513af6d"
            );
            assert_eq!(e.session.kind, SessionKind::Certificate);
            assert_eq!(e.principal.kind.as_deref(), Some("impersonated"));
            assert_eq!(e.principal.name.as_deref(), Some("system:admin"));
            assert_eq!(
                e.scopes,
                vec![
                    Text::borrowed("group:system:masters"),
                    Text::borrowed("impersonate:system:admin"),
                ]
            );
            assert_eq!(e.operation, Operation::Read);
        });
        // Without a credential id, the session is derived from the real caller, not the target.
        let derived = json.replace(
            r#""extra":{"authentication.kubernetes.io/credential-id":
                ["X509SHA256=4155bb96eb0e8f09b34395262b69d02793074130628061c4ce10eba82513af6d"]}"#,
            r#""extra":{}"#,
        );
        with_event(&derived, |e| {
            assert_eq!(e.session.key.to_string(), "k8s:user:dev@example.com");
            assert!(e.session.derived);
            assert_eq!(e.principal.name.as_deref(), Some("system:admin"));
        });
    }

    /// Falco's `anonymous_creates_namespace_foo.json` (v1beta1).
    #[test]
    fn anonymous_request() {
        let json = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2018-10-25T13:58:49Z"},"level":"Request","timestamp":"2018-10-25T13:58:49Z","auditID":"841d3e6d-90d2-43df-8da4-684738bee3d5","stage":"ResponseComplete","requestURI":"/api/v1/namespaces","verb":"create","user":{"username":"system:anonymous","groups":["system:masters","system:authenticated"]},"sourceIPs":["192.168.99.1"],"objectRef":{"resource":"namespaces","name":"foo","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"foo","creationTimestamp":null},"spec":{},"status":{"phase":"Active"}},"requestReceivedTimestamp":"2018-10-25T13:58:49.730588Z","stageTimestamp":"2018-10-25T13:58:49.736141Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#;
        with_event(json, |e| {
            assert_eq!(e.session.key.to_string(), "k8s:user:system:anonymous");
            assert_eq!(e.session.kind, SessionKind::Principal);
            assert!(e.session.derived);
            assert_eq!(e.principal.kind.as_deref(), Some("anonymous"));
            assert_eq!(e.network.ip.unwrap().to_string(), "192.168.99.1");
            assert_eq!(e.operation, Operation::Write);
            let r = e.resource.as_ref().unwrap();
            assert_eq!(
                (r.kind.as_deref(), r.name.as_deref()),
                (Some("namespaces"), Some("foo"))
            );
            assert!(r.container.is_none());
        });
    }

    #[test]
    fn outcomes() {
        let forbidden = JTI.replace(
            r#""code":200"#,
            r#""status":"Failure","reason":"Forbidden","code":403"#,
        );
        with_event(&forbidden, |e| {
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(e.outcome.reason.as_deref(), Some("Forbidden"));
        });
        let code_only = JTI.replace(r#""code":200"#, r#""code":404"#);
        with_event(&code_only, |e| {
            assert_eq!(e.outcome.reason.as_deref(), Some("404"));
        });
        // Pipelines that store numbers as floats.
        let float = JTI.replace(r#""code":200"#, r#""code":403.0"#);
        with_event(&float, |e| assert_eq!(e.outcome.result, Status::Failure));
        // A webhook authorizer's denial, logged before any response.
        let forbid = JTI
            .replace(
                r#""authorization.k8s.io/decision":"allow""#,
                r#""authorization.k8s.io/decision":"forbid""#,
            )
            .replace(
                r#"RBAC: allowed by RoleBinding \"api-secrets/payments\""#,
                "denied by the secrets policy",
            )
            .replace(r#""responseStatus":{"metadata":{},"code":200},"#, "");
        with_event(&forbid, |e| {
            assert_eq!(e.outcome.result, Status::Failure);
            assert_eq!(
                e.outcome.reason.as_deref(),
                Some("denied by the secrets policy")
            );
        });
        let received = JTI.replace(r#""responseStatus":{"metadata":{},"code":200},"#, "");
        with_event(&received, |e| assert_eq!(e.outcome.result, Status::Unknown));
    }

    #[test]
    fn unreadable_addresses_lose_the_address_not_the_event() {
        let json = JTI.replace(r#"["10.0.3.45"]"#, r#"[{"ip":"10.0.3.45"}]"#);
        with_event(&json, |e| assert!(e.network.ip.is_none()));
        let not_ip = JTI.replace(r#"["10.0.3.45"]"#, r#"["unknown"]"#);
        with_event(&not_ip, |e| assert!(e.network.ip.is_none()));
    }

    #[test]
    fn operation_classes() {
        let class = |verb: &str, object: &str| {
            let o: ObjectRef<'_> = serde_json::from_str(object).unwrap();
            operation_of(verb, Some(&o))
        };
        assert_eq!(
            class(
                "create",
                r#"{"resource":"serviceaccounts","subresource":"token"}"#
            ),
            Operation::Admin
        );
        assert_eq!(
            class(
                "patch",
                r#"{"resource":"clusterroles","apiGroup":"rbac.authorization.k8s.io"}"#
            ),
            Operation::Admin
        );
        assert_eq!(
            class(
                "update",
                r#"{"resource":"certificatesigningrequests","subresource":"approval"}"#
            ),
            Operation::Admin
        );
        assert_eq!(
            class("create", r#"{"resource":"tokenreviews"}"#),
            Operation::Auth
        );
        assert_eq!(
            class("create", r#"{"resource":"subjectaccessreviews"}"#),
            Operation::Auth
        );
        assert_eq!(
            class("impersonate", r#"{"resource":"users"}"#),
            Operation::Admin
        );
        assert_eq!(
            class("list", r#"{"resource":"clusterroles"}"#),
            Operation::Read
        );
        assert_eq!(
            class("delete", r#"{"resource":"configmaps"}"#),
            Operation::Write
        );
        // A CRD that happens to be called `roles` is not RBAC.
        assert_eq!(
            class(
                "create",
                r#"{"resource":"roles","apiGroup":"iam.example.com"}"#
            ),
            Operation::Write
        );
        assert_eq!(operation_of("get", None), Operation::Read);
        assert_eq!(operation_of("bind", None), Operation::Unknown);
    }

    #[test]
    fn rejects() {
        // Falco's deliberately malformed trace is not an audit event.
        assert_eq!(reject(r#"{"kind": 0}"#), RejectReason::UnknownSource);
        // A core v1 Event (cluster event) is not an audit record.
        assert_eq!(
            reject(r#"{"kind":"Event","apiVersion":"v1","reason":"Pulled","involvedObject":{}}"#),
            RejectReason::UnknownSource
        );
        let no_user = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete",
            "verb":"get","user":{"groups":["system:authenticated"]},"stageTimestamp":"2024-05-14T09:12:03Z"}"#;
        assert_eq!(reject(no_user), RejectReason::NoSessionIdentity);
        let bad_user = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get","user":[1],
            "stageTimestamp":"2024-05-14T09:12:03Z"}"#;
        assert_eq!(reject(bad_user), RejectReason::InvalidField);
        let no_time = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get","user":{"username":"a"}}"#;
        assert_eq!(reject(no_time), RejectReason::BadTimestamp);
    }

    #[test]
    fn first_of_reads_arrays_and_lone_values() {
        let raw: &RawValue = serde_json::from_str(r#"[null, "10.0.0.1", {"x": 1}]"#).unwrap();
        let first: Option<Text<'_>> = first_of(raw, "x").unwrap();
        assert_eq!(first.as_deref(), Some("10.0.0.1"));
        let raw: &RawValue = serde_json::from_str(r#""10.0.0.2""#).unwrap();
        assert_eq!(
            first_of::<Text<'_>>(raw, "x").unwrap().as_deref(),
            Some("10.0.0.2")
        );
        let raw: &RawValue = serde_json::from_str("[]").unwrap();
        assert_eq!(first_of::<Text<'_>>(raw, "x").unwrap(), None);
        let raw: &RawValue = serde_json::from_str("[1]").unwrap();
        assert!(first_of::<Text<'_>>(raw, "x").is_err());
    }

    #[test]
    fn a_role_of_many_rules_keeps_its_first_grants() {
        let resources: Vec<String> = (0..70).map(|i| format!("r{i}")).collect();
        let role = serde_json::json!({"rules": [{"verbs": ["get"], "resources": resources}]});
        let grants = role_grants(&role);
        assert_eq!(grants.len(), MAX_ROLE_GRANTS);
        assert_eq!(grants[0], "rbac:get:r0");
        assert_eq!(grants[MAX_ROLE_GRANTS - 1], "rbac:get:r63");
        // A grant repeated across rules is said once.
        let role = serde_json::json!({"rules": [
            {"verbs": ["get", "list"], "resources": ["secrets"]},
            {"verbs": ["get"], "resources": ["secrets", "pods"]}]});
        assert_eq!(
            role_grants(&role),
            ["rbac:get:secrets", "rbac:list:secrets", "rbac:get:pods"]
        );
    }

    #[test]
    fn without_a_code_the_status_text_decides() {
        let audit = |status: &str| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a-1",
                "stage":"ResponseComplete","verb":"get","user":{{"username":"dev@example.com"}},
                "objectRef":{{"resource":"secrets"}},"responseStatus":{status},
                "requestReceivedTimestamp":"2024-05-14T10:01:00.100000Z"}}"#
            )
        };
        for (status, result) in [
            (
                r#"{"status":"Failure","reason":"NotFound"}"#,
                Status::Failure,
            ),
            (r#"{"status":"Success"}"#, Status::Success),
            (
                r#"{"code":0,"status":"Failure","message":"gone"}"#,
                Status::Failure,
            ),
            (r#"{"metadata":{}}"#, Status::Unknown),
        ] {
            with_event(&audit(status), |e| {
                assert_eq!(e.outcome.result, result, "{status}")
            });
        }
    }

    #[test]
    fn an_empty_impersonation_and_a_status_write_add_nothing() {
        let audit = |verb: &str, rest: &str| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse",
                "auditID":"a-1","stage":"ResponseComplete","verb":"{verb}",
                "user":{{"username":"dev@example.com","groups":["developers"]}},{rest}
                "requestReceivedTimestamp":"2024-05-14T10:01:00.100000Z"}}"#
            )
        };
        // An impersonation header naming nobody is no impersonation.
        let json = audit(
            "list",
            r#""impersonatedUser":{"username":""},"objectRef":{"resource":"secrets"},"#,
        );
        with_event(&json, |e| {
            assert_eq!(e.principal.name.as_deref(), Some("dev@example.com"));
            assert_eq!(e.scopes, vec![Text::borrowed("group:developers")]);
        });
        // The controller writing a privileged Deployment's status writes no workload: the
        // body is the whole object, template included, but nothing in it is new.
        let deployment = r#""requestObject":{"kind":"Deployment","spec":{"template":{"spec":
            {"containers":[{"name":"c","securityContext":{"privileged":true}}]}}}},"#;
        let status = audit(
            "update",
            &format!(
                r#""objectRef":{{"resource":"deployments","subresource":"status"}},{deployment}"#
            ),
        );
        with_event(&status, |e| {
            assert_eq!(e.scopes, vec![Text::borrowed("group:developers")]);
        });
        let write = audit(
            "update",
            &format!(r#""objectRef":{{"resource":"deployments"}},{deployment}"#),
        );
        with_event(&write, |e| {
            assert!(
                e.scopes.contains(&Text::borrowed("pod:privileged")),
                "{:?}",
                e.scopes
            );
        });
        // Only the listed workloads' bodies are read for what they run: another resource's
        // body is never taken for a pod, whatever it holds.
        let other = audit(
            "create",
            &format!(r#""objectRef":{{"resource":"services"}},{deployment}"#),
        );
        with_event(&other, |e| {
            assert_eq!(e.scopes, vec![Text::borrowed("group:developers")]);
        });
    }

    #[test]
    fn the_first_pass_captures_each_member_after_the_audit_id() {
        // As CloudTrail's: a cache no event shows. A member is captured once the record has
        // shown its `auditID` (another source's `user` may be a string, and is left alone).
        let members = [
            "user",
            "impersonatedUser",
            "objectRef",
            "responseStatus",
            "annotations",
        ];
        // Each audit record also with its keys sorted, as some data lakes write records:
        // `annotations` then comes before `auditID`.
        let mut records = super::super::testing::fixture_records();
        let sorted: Vec<String> = records
            .iter()
            .filter(|r| r.contains("\"auditID\""))
            .filter_map(|r| {
                serde_json::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(r)
                    .ok()
            })
            .map(|keys| serde_json::to_string(&keys).unwrap())
            .collect();
        records.extend(sorted);
        let (mut counts, mut left) = ([0usize; 5], 0);
        let each = |record: &str, f: &Fields<'_>, captures: Captures<'_>| {
            let audit_id = f.position("auditID");
            let expected = members.map(|m| audit_id.is_some() && f.position(m) > audit_id);
            let cap = captures.kubernetes;
            let taken = [
                captured(cap.user, f, "user").is_some(),
                captured(cap.impersonated, f, "impersonatedUser").is_some(),
                captured(cap.object, f, "objectRef").is_some(),
                captured(cap.status, f, "responseStatus").is_some(),
                captured(cap.annotations, f, "annotations").is_some(),
            ];
            assert_eq!(taken, expected, "{record}");
            for (count, taken) in counts.iter_mut().zip(taken) {
                *count += usize::from(taken);
            }
            left += usize::from(audit_id.is_none() && f.position("user").is_some());
        };
        let audits = super::super::testing::first_pass_each(&records, detect, each);
        assert!(audits > 20, "{audits} audit records");
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        // Records of other sources with a `user` member, never captured.
        assert!(left > 0);
    }
}
