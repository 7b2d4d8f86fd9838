//! AWS CloudTrail records, as CloudTrail writes them (`eventVersion` 1.09 management events,
//! 1.10 data events), and the benign AWS sessions of the generated traffic.
//!
//! [`write()`] renders one record from a [`Call`] and closures for its bodies; the attacks use it
//! too. Record shape: `eventTime` in whole seconds; `userIdentity` of an assumed role
//! (`ASIA…` key, `sessionContext` with issuer, creation date and `sourceIdentity`), an IAM user
//! (`AKIA…`) or a web-identity caller; `sourceIPAddress` an address, or the service acting for
//! the session (`athena.amazonaws.com`, with `invokedBy` and no `tlsDetails`); request and
//! response bodies as the services log them (S3 data events with `additionalEventData`
//! byte counts, `AssumeRole` responses naming the issued key, large bodies for task
//! definitions, launches, policies and Athena queries).

mod benign;
pub(crate) use benign::AGENTS;
mod calls;
mod personas;
mod template;

pub use benign::{creation_lead_ms, emit, lifetime_ms, new_session, session_key};

use super::out::{self, q, s, AWS_ALPHABET};
use super::session::Env;

/// Who made the call, as `userIdentity` shows it.
pub enum Who<'a> {
    /// An assumed role with a temporary key.
    Role {
        account: &'a str,
        /// Role path, e.g. `aws-reserved/sso.amazonaws.com/` (empty for `/`).
        path: &'a str,
        role: &'a str,
        role_id: &'a str,
        session_name: &'a [u8],
        /// `ASIA…`; empty for a console sign-in record.
        key: &'a [u8],
        created: i64,
        mfa: bool,
        source_identity: Option<&'a str>,
    },
    /// An IAM user with a long-term key.
    User {
        account: &'a str,
        name: &'a str,
        user_id: &'a str,
        key: &'a [u8],
    },
    /// A web-identity (OIDC) caller: GitHub Actions exchanging its token.
    Web { account: &'a str, subject: &'a [u8] },
}

impl Who<'_> {
    pub fn account(&self) -> &str {
        match self {
            Who::Role { account, .. } | Who::User { account, .. } | Who::Web { account, .. } => {
                account
            }
        }
    }
}

/// Where the call came from.
#[derive(Clone, Copy)]
pub enum From<'a> {
    Ip(u32),
    /// A service acting for the session (`athena.amazonaws.com`).
    Service(&'a str),
}

/// One API call.
pub struct Call<'a> {
    pub who: &'a Who<'a>,
    pub t: i64,
    /// Service prefix of `eventSource` (`s3` → `s3.amazonaws.com`).
    pub service: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub from: From<'a>,
    pub ua: &'a str,
    pub read_only: bool,
    /// A data event (S3 objects, DynamoDB items, Lambda invocations …).
    pub data: bool,
    pub error: Option<(&'a str, &'a str)>,
    /// `sessionCredentialFromConsole: "true"`.
    pub console: bool,
    /// TLS host when it is not the service endpoint (S3 virtual-hosted buckets).
    pub host: Option<&'a str>,
    /// `eventType`: `AwsApiCall` unless a console sign-in.
    pub sign_in: bool,
    /// Seeds the event and request ids.
    pub seed: u64,
}

impl<'a> Call<'a> {
    pub fn new(who: &'a Who<'a>, t: i64, service: &'a str, name: &'a str, from: From<'a>) -> Self {
        Call {
            who,
            t,
            service,
            name,
            region: "us-east-1",
            from,
            ua: "",
            read_only: name.starts_with("Get")
                || name.starts_with("List")
                || name.starts_with("Describe")
                || name.starts_with("Head"),
            data: false,
            error: None,
            console: false,
            host: None,
            sign_in: false,
            seed: 0,
        }
    }
}

pub use super::out::Body;

fn global(service: &str) -> bool {
    matches!(
        service,
        "iam" | "sts" | "organizations" | "signin" | "cloudfront"
    )
}

/// Renders one CloudTrail record.
pub fn write(
    b: &mut Vec<u8>,
    call: &Call<'_>,
    req: Body<'_>,
    resp: Body<'_>,
    extra: Body<'_>,
    resources: Body<'_>,
) {
    write_with_host(b, call, call.host, req, resp, extra, resources);
}

/// [`write()`] with the TLS host given separately (S3 virtual-hosted buckets).
pub fn write_with_host(
    b: &mut Vec<u8>,
    call: &Call<'_>,
    host: Option<&str>,
    req: Body<'_>,
    resp: Body<'_>,
    extra: Body<'_>,
    resources: Body<'_>,
) {
    let region = if global(call.service) && call.service != "sts" {
        "us-east-1"
    } else {
        call.region
    };
    s(
        b,
        if call.data {
            "{\"eventVersion\":\"1.10\",\"userIdentity\":{"
        } else {
            "{\"eventVersion\":\"1.09\",\"userIdentity\":{"
        },
    );
    write_identity(b, call.who, call.from);
    s(b, "},\"eventTime\":\"");
    out::time_s(b, call.t);
    s(b, "\",\"eventSource\":\"");
    s(b, call.service);
    s(b, ".amazonaws.com\",\"eventName\":\"");
    s(b, call.name);
    s(b, "\",\"awsRegion\":\"");
    s(b, region);
    s(b, "\",\"sourceIPAddress\":\"");
    match call.from {
        From::Ip(addr) => out::ip(b, addr),
        From::Service(name) => s(b, name),
    }
    s(b, "\",\"userAgent\":");
    match call.from {
        From::Service(name) => q(b, name),
        From::Ip(_) => q(b, call.ua),
    }
    if let Some((code, message)) = call.error {
        s(b, ",\"errorCode\":");
        q(b, code);
        s(b, ",\"errorMessage\":");
        q(b, message);
    }
    s(b, ",\"requestParameters\":");
    match req {
        Some(f) => f(b),
        None => s(b, "null"),
    }
    s(b, ",\"responseElements\":");
    match resp {
        Some(f) if call.error.is_none() => f(b),
        _ => s(b, "null"),
    }
    if let Some(f) = extra {
        s(b, ",\"additionalEventData\":");
        f(b);
    }
    s(b, ",\"requestID\":\"");
    if call.service == "s3" {
        out::hex_upper(b, call.seed ^ 0x5133, 16);
    } else {
        out::uuid(b, call.seed ^ 0x0072_6571);
    }
    s(b, "\",\"eventID\":\"");
    out::uuid(b, call.seed);
    s(b, "\",\"readOnly\":");
    s(b, if call.read_only { "true" } else { "false" });
    if let Some(f) = resources {
        s(b, ",\"resources\":");
        f(b);
    }
    s(
        b,
        if call.sign_in {
            ",\"eventType\":\"AwsConsoleSignIn\""
        } else {
            ",\"eventType\":\"AwsApiCall\""
        },
    );
    s(
        b,
        if call.data {
            ",\"managementEvent\":false"
        } else {
            ",\"managementEvent\":true"
        },
    );
    s(b, ",\"recipientAccountId\":\"");
    s(b, call.who.account());
    s(
        b,
        if call.data {
            "\",\"eventCategory\":\"Data\""
        } else {
            "\",\"eventCategory\":\"Management\""
        },
    );
    if call.console {
        s(b, ",\"sessionCredentialFromConsole\":\"true\"");
    }
    if let From::Ip(_) = call.from {
        s(b, ",\"tlsDetails\":{\"tlsVersion\":\"TLSv1.3\",\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"clientProvidedHostHeader\":\"");
        match host {
            Some(host) => s(b, host),
            None => {
                s(b, call.service);
                if !global(call.service) {
                    b.push(b'.');
                    s(b, region);
                }
                s(b, ".amazonaws.com");
            }
        }
        s(b, "\"}");
    }
    b.push(b'}');
}

fn write_identity(b: &mut Vec<u8>, who: &Who<'_>, from: From<'_>) {
    match who {
        Who::Role {
            account,
            path,
            role,
            role_id,
            session_name,
            key,
            created,
            mfa,
            source_identity,
        } => {
            s(b, "\"type\":\"AssumedRole\",\"principalId\":\"");
            s(b, role_id);
            b.push(b':');
            b.extend_from_slice(session_name);
            s(b, "\",\"arn\":\"arn:aws:sts::");
            s(b, account);
            s(b, ":assumed-role/");
            s(b, role);
            b.push(b'/');
            b.extend_from_slice(session_name);
            s(b, "\",\"accountId\":\"");
            s(b, account);
            b.push(b'"');
            if key.is_empty() {
                return;
            }
            s(b, ",\"accessKeyId\":\"");
            b.extend_from_slice(key);
            s(
                b,
                "\",\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"principalId\":\"",
            );
            s(b, role_id);
            s(b, "\",\"arn\":\"arn:aws:iam::");
            s(b, account);
            s(b, ":role/");
            s(b, path);
            s(b, role);
            s(b, "\",\"accountId\":\"");
            s(b, account);
            s(b, "\",\"userName\":\"");
            s(b, role);
            s(
                b,
                "\"},\"webIdFederationData\":{},\"attributes\":{\"creationDate\":\"",
            );
            out::time_s(b, *created);
            s(
                b,
                if *mfa {
                    "\",\"mfaAuthenticated\":\"true\"}"
                } else {
                    "\",\"mfaAuthenticated\":\"false\"}"
                },
            );
            if let Some(identity) = source_identity {
                s(b, ",\"sourceIdentity\":\"");
                s(b, identity);
                b.push(b'"');
            }
            b.push(b'}');
            if let From::Service(service) = from {
                s(b, ",\"invokedBy\":\"");
                s(b, service);
                b.push(b'"');
            }
        }
        Who::User {
            account,
            name,
            user_id,
            key,
        } => {
            s(b, "\"type\":\"IAMUser\",\"principalId\":\"");
            s(b, user_id);
            s(b, "\",\"arn\":\"arn:aws:iam::");
            s(b, account);
            s(b, ":user/");
            s(b, name);
            s(b, "\",\"accountId\":\"");
            s(b, account);
            s(b, "\",\"accessKeyId\":\"");
            b.extend_from_slice(key);
            s(b, "\",\"userName\":\"");
            s(b, name);
            b.push(b'"');
        }
        Who::Web { account, subject } => {
            s(
                b,
                "\"type\":\"WebIdentityUser\",\"principalId\":\"arn:aws:iam::",
            );
            s(b, account);
            s(
                b,
                ":oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:",
            );
            b.extend_from_slice(subject);
            s(b, "\",\"userName\":\"");
            b.extend_from_slice(subject);
            s(b, "\",\"identityProvider\":\"arn:aws:iam::");
            s(b, account);
            s(b, ":oidc-provider/token.actions.githubusercontent.com\"");
        }
    }
}

/// A temporary (`ASIA…`) or long-term (`AKIA…`) key id derived from `seed`.
pub fn key_id(b: &mut Vec<u8>, prefix: &str, seed: u64) {
    s(b, prefix);
    out::chars(b, AWS_ALPHABET, seed, 16);
}

/// The `AssumeRole*` request and response for issuing `child_key` on `role_arn`.
pub struct Issue<'a> {
    pub account: &'a str,
    pub role: &'a str,
    pub role_id: &'a str,
    pub session_name: &'a [u8],
    pub child_key: &'a [u8],
    pub duration_s: u64,
    pub source_identity: Option<&'a str>,
    pub t: i64,
}

impl Issue<'_> {
    pub fn request(&self, b: &mut Vec<u8>) {
        s(b, "{\"roleArn\":\"arn:aws:iam::");
        s(b, self.account);
        s(b, ":role/");
        s(b, self.role);
        s(b, "\",\"roleSessionName\":\"");
        b.extend_from_slice(self.session_name);
        b.push(b'"');
        if self.duration_s != 3600 {
            s(b, ",\"durationSeconds\":");
            out::u(b, self.duration_s);
        }
        if let Some(identity) = self.source_identity {
            s(b, ",\"sourceIdentity\":\"");
            s(b, identity);
            b.push(b'"');
        }
        b.push(b'}');
    }

    pub fn response(&self, b: &mut Vec<u8>) {
        s(b, "{\"credentials\":{\"accessKeyId\":\"");
        b.extend_from_slice(self.child_key);
        s(b, "\",\"sessionToken\":\"IQoJb3JpZ2luX2VjE");
        out::chars(
            b,
            out::BASE62,
            super::rng::hash_str(std::str::from_utf8(self.child_key).unwrap_or("")),
            60,
        );
        s(b, "\",\"expiration\":\"");
        out::aws_expiration(b, self.t + self.duration_s as i64 * 1000);
        s(b, "\"},\"assumedRoleUser\":{\"assumedRoleId\":\"");
        s(b, self.role_id);
        b.push(b':');
        b.extend_from_slice(self.session_name);
        s(b, "\",\"arn\":\"arn:aws:sts::");
        s(b, self.account);
        s(b, ":assumed-role/");
        s(b, self.role);
        b.push(b'/');
        b.extend_from_slice(self.session_name);
        s(b, "\"}");
        if let Some(identity) = self.source_identity {
            s(b, ",\"sourceIdentity\":\"");
            s(b, identity);
            b.push(b'"');
        }
        b.push(b'}');
    }

    pub fn resources(&self, b: &mut Vec<u8>) {
        s(b, "[{\"accountId\":\"");
        s(b, self.account);
        s(b, "\",\"type\":\"AWS::IAM::Role\",\"ARN\":\"arn:aws:iam::");
        s(b, self.account);
        s(b, ":role/");
        s(b, self.role);
        s(b, "\"}]");
    }
}

/// Writes an `sts:AssumeRole` record by `who`, issuing `issue`.
pub fn assume_role(
    b: &mut Vec<u8>,
    who: &Who<'_>,
    from: From<'_>,
    ua: &str,
    issue: &Issue<'_>,
    seed: u64,
) {
    let mut call = Call::new(who, issue.t, "sts", "AssumeRole", from);
    call.ua = ua;
    call.read_only = true;
    call.seed = seed;
    let host = "sts.us-east-1.amazonaws.com";
    call.host = Some(host);
    write(
        b,
        &call,
        Some(&|b: &mut Vec<u8>| issue.request(b)),
        Some(&|b: &mut Vec<u8>| issue.response(b)),
        None,
        Some(&|b: &mut Vec<u8>| issue.resources(b)),
    );
}

/// An S3 object-level data event (`GetObject`, `PutObject`, `HeadObject`).
pub struct Object<'a> {
    pub bucket: &'a str,
    pub key: &'a [u8],
    pub bytes: u64,
}

pub fn s3_object(b: &mut Vec<u8>, call: &mut Call<'_>, object: &Object<'_>) {
    call.data = true;
    call.read_only = call.name != "PutObject";
    let mut host = Vec::with_capacity(64);
    s(&mut host, object.bucket);
    s(&mut host, ".s3.");
    s(&mut host, call.region);
    s(&mut host, ".amazonaws.com");
    let host = std::str::from_utf8(&host).unwrap_or("s3.amazonaws.com");
    let name = call.name;
    let seed = call.seed;
    let account = call.who.account();
    let get = name == "GetObject" && call.error.is_none();
    write_with_host(
        b,
        call,
        Some(host),
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"bucketName\":\"");
            s(b, object.bucket);
            s(b, "\",\"Host\":\"");
            s(b, host);
            s(b, "\",\"key\":\"");
            b.extend_from_slice(object.key);
            b.push(b'"');
            if name == "PutObject" {
                s(b, ",\"x-amz-server-side-encryption\":\"AES256\"");
            }
            b.push(b'}');
        }),
        (name == "PutObject").then_some(&|b: &mut Vec<u8>| {
            s(b, "{\"x-amz-server-side-encryption\":\"AES256\"}");
        }),
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"SignatureVersion\":\"SigV4\",\"CipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"bytesTransferredIn\":");
            out::u(b, if name == "PutObject" { object.bytes } else { 0 });
            s(
                b,
                ",\"AuthenticationMethod\":\"AuthHeader\",\"x-amz-id-2\":\"",
            );
            out::base64(b, seed ^ 0x1d2, 48, false);
            s(b, "\",\"bytesTransferredOut\":");
            out::u(b, if get { object.bytes } else { 0 });
            b.push(b'}');
        }),
        Some(&|b: &mut Vec<u8>| {
            s(b, "[{\"type\":\"AWS::S3::Object\",\"ARN\":\"arn:aws:s3:::");
            s(b, object.bucket);
            b.push(b'/');
            b.extend_from_slice(object.key);
            s(b, "\"},{\"accountId\":\"");
            s(b, account);
            s(b, "\",\"type\":\"AWS::S3::Bucket\",\"ARN\":\"arn:aws:s3:::");
            s(b, object.bucket);
            s(b, "\"}]");
        }),
    );
}

/// An S3 `ListObjects` (V2) data event.
pub fn s3_list(b: &mut Vec<u8>, call: &mut Call<'_>, bucket: &str, prefix: &str) {
    call.data = true;
    call.read_only = true;
    let mut host = Vec::with_capacity(64);
    s(&mut host, bucket);
    s(&mut host, ".s3.");
    s(&mut host, call.region);
    s(&mut host, ".amazonaws.com");
    let host = std::str::from_utf8(&host).unwrap_or("s3.amazonaws.com");
    let seed = call.seed;
    let account = call.who.account();
    write_with_host(
        b,
        call,
        Some(host),
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"list-type\":\"2\",\"bucketName\":\"");
            s(b, bucket);
            s(b, "\",\"encoding-type\":\"url\",\"prefix\":\"");
            s(b, prefix);
            s(b, "\",\"delimiter\":\"/\",\"Host\":\"");
            s(b, host);
            s(b, "\"}");
        }),
        None,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"SignatureVersion\":\"SigV4\",\"CipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"bytesTransferredIn\":0,\"AuthenticationMethod\":\"AuthHeader\",\"x-amz-id-2\":\"");
            out::base64(b, seed ^ 0x1d3, 48, false);
            s(b, "\",\"bytesTransferredOut\":");
            out::u(b, 900 + seed % 9000);
            b.push(b'}');
        }),
        Some(&|b: &mut Vec<u8>| {
            s(b, "[{\"accountId\":\"");
            s(b, account);
            s(b, "\",\"type\":\"AWS::S3::Bucket\",\"ARN\":\"arn:aws:s3:::");
            s(b, bucket);
            s(b, "\"}]");
        }),
    );
}

/// An object key under `prefix` with a date path and an id.
pub fn object_key(k: &mut Vec<u8>, prefix: &str, t: i64, seed: u64, ext: &str) {
    k.clear();
    s(k, prefix);
    let (y, m, d) = out::civil(t.div_euclid(86_400_000));
    out::u(k, y as u64);
    k.push(b'/');
    out::pad(k, u64::from(m), 2);
    k.push(b'/');
    out::pad(k, u64::from(d), 2);
    k.push(b'/');
    out::hex(k, seed, 24);
    s(k, ext);
}

/// A size of an ordinary object: mostly KBs, a long tail of MBs.
pub fn object_size(env: &mut Env<'_>) -> u64 {
    (env.rng.pareto(2_500.0, 1.05) as u64).min(48_000_000)
}

/// A policy document, JSON-escaped for a request parameter (CloudTrail logs the document as a
/// string). Its statements grow with `n`: the long tail of IAM request sizes.
pub fn policy_document(b: &mut Vec<u8>, resource_prefix: &str, n: u64) {
    const ACTIONS: &[&str] = &[
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "kms:Decrypt",
        "secretsmanager:GetSecretValue",
        "logs:PutLogEvents",
        "ssm:GetParameters",
    ];
    s(b, "{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[");
    for k in 0..n {
        if k > 0 {
            b.push(b',');
        }
        s(b, "{\\\"Sid\\\":\\\"Stmt");
        out::u(b, 1000 + k);
        s(b, "\\\",\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":[");
        for a in 0..3 {
            if a > 0 {
                b.push(b',');
            }
            s(b, "\\\"");
            s(b, ACTIONS[((k * 3 + a) % ACTIONS.len() as u64) as usize]);
            s(b, "\\\"");
        }
        s(b, "],\\\"Resource\\\":[\\\"");
        s(b, resource_prefix);
        out::u(b, k);
        s(b, "/*\\\"]}");
    }
    s(b, "]}");
}
