//! The bare-parse floor any engine pays: a serde_json parse of a record into a borrowed struct
//! of the fields a detector needs, one struct per source. Shared by the benches, so every
//! ratio is taken against the same baseline.

use std::hint::black_box;

use serde::Deserialize;
use sessionguard::event::Source;

// The baseline structs: borrowed, about fifteen fields each, the rest skipped.

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct CloudtrailBase<'a> {
    eventTime: Option<&'a str>,
    eventSource: Option<&'a str>,
    eventName: Option<&'a str>,
    eventID: Option<&'a str>,
    sourceIPAddress: Option<&'a str>,
    userAgent: Option<&'a str>,
    errorCode: Option<&'a str>,
    readOnly: Option<bool>,
    recipientAccountId: Option<&'a str>,
    #[serde(borrow)]
    userIdentity: Option<CloudtrailIdentity<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct CloudtrailIdentity<'a> {
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    principalId: Option<&'a str>,
    arn: Option<&'a str>,
    accountId: Option<&'a str>,
    accessKeyId: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OktaBase<'a> {
    uuid: Option<&'a str>,
    published: Option<&'a str>,
    eventType: Option<&'a str>,
    #[serde(borrow)]
    actor: Option<IdName<'a>>,
    #[serde(borrow)]
    outcome: Option<OktaOutcome<'a>>,
    #[serde(borrow)]
    authenticationContext: Option<OktaAuth<'a>>,
    #[serde(borrow)]
    client: Option<OktaClient<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct IdName<'a> {
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    alternateId: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OktaOutcome<'a> {
    result: Option<&'a str>,
    reason: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OktaAuth<'a> {
    rootSessionId: Option<&'a str>,
    externalSessionId: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OktaClient<'a> {
    ipAddress: Option<&'a str>,
    device: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct KubernetesBase<'a> {
    apiVersion: Option<&'a str>,
    kind: Option<&'a str>,
    auditID: Option<&'a str>,
    stage: Option<&'a str>,
    verb: Option<&'a str>,
    stageTimestamp: Option<&'a str>,
    userAgent: Option<&'a str>,
    sourceIPs: Option<Vec<&'a str>>,
    #[serde(borrow)]
    user: Option<KubernetesUser<'a>>,
    #[serde(borrow)]
    objectRef: Option<KubernetesObject<'a>>,
    responseStatus: Option<KubernetesStatus>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct KubernetesUser<'a> {
    username: Option<&'a str>,
    uid: Option<&'a str>,
    groups: Option<Vec<&'a str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct KubernetesObject<'a> {
    resource: Option<&'a str>,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct KubernetesStatus {
    code: Option<u32>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct GithubBase<'a> {
    action: Option<&'a str>,
    actor: Option<&'a str>,
    actor_ip: Option<&'a str>,
    org: Option<&'a str>,
    repo: Option<&'a str>,
    user: Option<&'a str>,
    hashed_token: Option<&'a str>,
    token_id: Option<u64>,
    created_at: Option<serde::de::IgnoredAny>,
    #[serde(rename = "@timestamp")]
    timestamp: Option<serde::de::IgnoredAny>,
    user_agent: Option<&'a str>,
    operation_type: Option<&'a str>,
}

/// Entra shapes differ in casing; the baseline reads the union of their top-level names.
#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct EntraBase<'a> {
    createdDateTime: Option<&'a str>,
    activityDateTime: Option<&'a str>,
    TimeGenerated: Option<&'a str>,
    time: Option<&'a str>,
    userPrincipalName: Option<&'a str>,
    UserPrincipalName: Option<&'a str>,
    ipAddress: Option<&'a str>,
    IPAddress: Option<&'a str>,
    sessionId: Option<&'a str>,
    SessionId: Option<&'a str>,
    category: Option<&'a str>,
    operationName: Option<&'a str>,
    properties: Option<serde::de::IgnoredAny>,
    status: Option<serde::de::IgnoredAny>,
    initiatedBy: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OcsfBase<'a> {
    class_uid: Option<u32>,
    activity_id: Option<u32>,
    time: Option<i64>,
    status_id: Option<u32>,
    #[serde(borrow)]
    actor: Option<OcsfActor<'a>>,
    #[serde(borrow)]
    session: Option<OcsfSession<'a>>,
    #[serde(borrow)]
    api: Option<OcsfApi<'a>>,
    #[serde(borrow)]
    src_endpoint: Option<OcsfEndpoint<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OcsfActor<'a> {
    #[serde(borrow)]
    session: Option<OcsfSession<'a>>,
    user: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OcsfSession<'a> {
    uid: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OcsfApi<'a> {
    operation: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OcsfEndpoint<'a> {
    ip: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct McpBase<'a> {
    mcp_session_id: Option<&'a str>,
    mcp_method: Option<&'a str>,
    tool: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OtelBase {
    resourceSpans: Option<serde_json::Value>,
    resourceLogs: Option<serde_json::Value>,
}

/// Parses with the source's baseline struct; `false` when the bytes are not that source's
/// record as the baseline reads it (its defining field absent), so that both sides of the
/// comparison do the same work.
pub fn baseline(source: Source, bytes: &[u8]) -> bool {
    fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], found: impl Fn(&T) -> bool) -> bool {
        let text = std::str::from_utf8(bytes).unwrap();
        black_box(serde_json::from_str::<T>(text)).is_ok_and(|t| found(&t))
    }
    match source {
        Source::Cloudtrail => parse(bytes, |t: &CloudtrailBase<'_>| t.eventName.is_some()),
        Source::Okta => parse(bytes, |t: &OktaBase<'_>| t.eventType.is_some()),
        Source::Kubernetes => parse(bytes, |t: &KubernetesBase<'_>| t.verb.is_some()),
        Source::Github => parse(bytes, |t: &GithubBase<'_>| t.action.is_some()),
        Source::Entra => parse(bytes, |t: &EntraBase<'_>| {
            t.createdDateTime.is_some()
                || t.activityDateTime.is_some()
                || t.TimeGenerated.is_some()
                || t.time.is_some()
        }),
        Source::Ocsf => parse(bytes, |t: &OcsfBase<'_>| t.class_uid.is_some()),
        Source::Mcp => parse(bytes, |t: &McpBase<'_>| t.mcp_method.is_some()),
        Source::Otel => parse(bytes, |t: &OtelBase| {
            t.resourceSpans.is_some() || t.resourceLogs.is_some()
        }),
    }
}
