//! AWS CloudTrail records, as CloudTrail writes them (`eventVersion` 1.09 management events,
//! 1.10 data events), and the benign AWS sessions of the generated traffic.
//!
//! [`write`] renders one record from a [`Call`] and closures for its bodies; the attacks use it
//! too. Record shape: `eventTime` in whole seconds; `userIdentity` of an assumed role
//! (`ASIA…` key, `sessionContext` with issuer, creation date and `sourceIdentity`), an IAM user
//! (`AKIA…`) or a web-identity caller; `sourceIPAddress` an address, or the service acting for
//! the session (`athena.amazonaws.com`, with `invokedBy` and no `tlsDetails`); request and
//! response bodies as the services log them (S3 data events with `additionalEventData`
//! byte counts, `AssumeRole` responses naming the issued key, large bodies for task
//! definitions, launches, policies and Athena queries).

use super::out::{self, q, s, AWS_ALPHABET};
use super::pools::{
    Pools, Runtime, ACCOUNT_PROD, ACCOUNT_SHARED, BROWSERS, CLI_AGENTS, MEMBER_ACCOUNTS, ORG,
    REGIONS, SSO_ADMIN_ROLE, SSO_ROLES,
};
use super::session::{Env, Profile, Scratch, Sess};

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

/// [`write`] with the TLS host given separately (S3 virtual-hosted buckets).
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

// ------------------------------------------------------------------------------------------
// Benign sessions
// ------------------------------------------------------------------------------------------

const TERRAFORM_USERS: &[&str] = &["terraform-ci", "terraform-network", "terraform-data"];
const AGENTS: &[&str] = &[
    "ticket-triager",
    "cost-reporter",
    "release-notes-writer",
    "log-summarizer",
];
const MANAGED_POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
    "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
    "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/SecretsManagerReadWrite",
];
const ATHENA: &str = "athena.amazonaws.com";

/// A new benign CloudTrail session of a randomly drawn profile.
pub fn new_session(env: &mut Env<'_>) -> Sess {
    let profile = match env.rng.weighted(&[52, 18, 6, 5, 3, 3, 3, 1]) {
        0 => Profile::Workload,
        1 => Profile::Human,
        2 => Profile::Console,
        3 => Profile::Deployer,
        4 => Profile::Admin,
        5 => Profile::Terraform,
        6 => Profile::Broker,
        _ => Profile::Scanner,
    };
    let id = env.new_id();
    let pools = env.pools;
    let (who, addr, flags, budget, pace) = match profile {
        Profile::Workload => {
            let svc = env.rng.below(pools.services.len() as u64) as u32;
            let vpc = pools.services[svc as usize].vpc;
            let pace = (200.0 * (env.rng.unit() * 4.0).exp()) as u32;
            (
                svc,
                super::pools::private_ip(vpc, id),
                0,
                env.length(3.0, 1.1, 20_000),
                pace,
            )
        }
        Profile::Human | Profile::Console | Profile::Admin => {
            let person = if profile == Profile::Admin {
                *env.rng.pick(&pools.admins)
            } else {
                env.rng.below(pools.people.len() as u64) as u32
            };
            let office = pools.people[person as usize].in_office;
            let (addr, flags) = env.person_addr(person, office);
            (person, addr, flags, env.length(2.0, 1.3, 3_000), 1_500)
        }
        Profile::Deployer => {
            let svc = env.rng.below(pools.services.len() as u64) as u32;
            (
                svc,
                super::pools::runner_ip(id),
                0,
                env.length(4.0, 1.5, 60),
                800,
            )
        }
        Profile::Terraform => {
            let user = env.rng.below(TERRAFORM_USERS.len() as u64) as u32;
            let addr = 0xc000_0200 | (140 + user);
            (user, addr, 0, env.length(3.0, 1.4, 80), 800)
        }
        Profile::Broker => (
            0,
            super::pools::private_ip(26, id),
            0,
            env.length(4.0, 1.2, 2_000),
            600,
        ),
        _ => (
            0,
            super::pools::private_ip(27, id),
            0,
            env.length(6.0, 1.2, 400),
            700,
        ),
    };
    let mut sess = Sess::new(id, profile, who, 0, addr, budget);
    sess.flags = flags;
    sess.pace = pace.max(10);
    sess.aux = env.rng.below(1 << 20) as u32;
    sess
}

/// Role path, role name, role id and account of a role session.
fn role_of<'p>(pools: &'p Pools, sess: &Sess) -> (&'static str, &'p str, &'p str, &'static str) {
    match sess.profile {
        Profile::Workload => {
            let svc = &pools.services[sess.who as usize];
            let path = if svc.runtime == Runtime::Lambda {
                "service-role/"
            } else {
                ""
            };
            (path, &svc.role, &svc.role_id, svc.account)
        }
        Profile::Human | Profile::Console => {
            let k = (sess.aux % SSO_ROLES.len() as u32) as usize;
            (
                "aws-reserved/sso.amazonaws.com/",
                SSO_ROLES[k],
                &pools.sso_role_ids[k],
                ACCOUNT_PROD,
            )
        }
        Profile::Admin => (
            "aws-reserved/sso.amazonaws.com/",
            SSO_ADMIN_ROLE,
            &pools.sso_admin_role_id,
            ACCOUNT_PROD,
        ),
        Profile::Deployer => {
            let svc = &pools.services[sess.who as usize];
            ("", deployer_role(svc.name), "", ACCOUNT_PROD)
        }
        Profile::Broker => (
            "",
            "agent-platform-broker",
            "AROAFQ3T7X2MBROKER4TZ",
            ACCOUNT_SHARED,
        ),
        Profile::Agent => ("", AGENT_ROLES[sess.who as usize], "", ACCOUNT_PROD),
        Profile::Scanner => (
            "",
            "security-scanner",
            "AROAJ5SCANNER7Q2WXKD3",
            ACCOUNT_SHARED,
        ),
        _ => (
            "",
            "OrganizationAccountAccessRole",
            "AROAORGACCESS4M7T2QZK",
            MEMBER_ACCOUNTS[(sess.who as usize) % MEMBER_ACCOUNTS.len()],
        ),
    }
}

const AGENT_ROLES: &[&str] = &[
    "agent-ticket-triager",
    "agent-cost-reporter",
    "agent-release-notes-writer",
    "agent-log-summarizer",
];

fn deployer_role(service: &str) -> &'static str {
    // A small fixed set keeps role names static strings; the service goes in the session name.
    const ROLES: &[&str] = &["gha-deploy-ecs", "gha-deploy-lambda", "gha-deploy-infra"];
    ROLES[(super::rng::hash_str(service) % 3) as usize]
}

/// The session key sessionguard gives `sess`.
pub fn session_key(env: &Env<'_>, sess: &Sess, key: &mut String) {
    let mut b = Vec::with_capacity(64);
    let pools = env.pools;
    match sess.profile {
        Profile::Terraform => {
            s(&mut b, "aws:");
            s(&mut b, ACCOUNT_SHARED);
            s(&mut b, ":iam-key:");
            key_id(
                &mut b,
                "AKIA",
                super::rng::hash_str(TERRAFORM_USERS[sess.who as usize]),
            );
        }
        Profile::Console => {
            let (_, _, role_id, account) = role_of(pools, sess);
            s(&mut b, "aws:");
            s(&mut b, account);
            s(&mut b, ":console:");
            s(&mut b, role_id);
            b.push(b':');
            pools.email(sess.who, &mut b);
            b.push(b':');
            out::time_ms(&mut b, sess.created);
        }
        _ => {
            let (_, _, _, account) = role_of(pools, sess);
            s(&mut b, "aws:");
            s(&mut b, account);
            s(&mut b, ":sts:");
            key_id(&mut b, "ASIA", sess.key_seed(env.seed, 1));
        }
    }
    key.clear();
    key.push_str(std::str::from_utf8(&b).unwrap_or(""));
}

/// When a role session's credentials were issued, relative to its first call.
pub fn creation_lead_ms(env: &mut Env<'_>, profile: Profile) -> i64 {
    match profile {
        Profile::Console | Profile::Deployer => 0,
        Profile::Workload => 1_000 * env.rng.range(5, 600) as i64,
        _ => 1_000 * env.rng.range(2, 40) as i64,
    }
}

/// Credential lifetime: STS's default hour (SSO admin sessions a bit less, so they never act
/// past it); long-term keys never expire.
pub fn lifetime_ms(profile: Profile) -> i64 {
    match profile {
        Profile::Terraform => i64::MAX / 4,
        Profile::Admin => 55 * 60_000,
        Profile::Console => 8 * 3_600_000,
        _ => 3_600_000,
    }
}

/// Writes the next event of a benign CloudTrail session.
pub fn emit(env: &mut Env<'_>, sc: &mut Scratch, sess: &mut Sess, t: i64, b: &mut Vec<u8>) {
    let pools = env.pools;
    sess.rotate(&mut env.rng);
    let (path, role, role_id, account) = role_of(pools, sess);
    let seed = sess.key_seed(env.seed, 0x1000 + u64::from(sess.step));
    sc.key.clear();
    sc.name.clear();
    let who = match sess.profile {
        Profile::Terraform => {
            let name = TERRAFORM_USERS[sess.who as usize];
            key_id(&mut sc.key, "AKIA", super::rng::hash_str(name));
            Who::User {
                account: ACCOUNT_SHARED,
                name,
                user_id: TERRAFORM_USER_IDS[sess.who as usize],
                key: &sc.key,
            }
        }
        _ => {
            key_id(&mut sc.key, "ASIA", sess.key_seed(env.seed, 1));
            match sess.profile {
                Profile::Human | Profile::Console | Profile::Admin => {
                    pools.email(sess.who, &mut sc.name)
                }
                Profile::Workload => match pools.services[sess.who as usize].runtime {
                    Runtime::Ecs => out::hex(&mut sc.name, sess.key_seed(env.seed, 2), 32),
                    Runtime::Lambda => s(&mut sc.name, pools.services[sess.who as usize].name),
                    Runtime::Ec2 => {
                        s(&mut sc.name, "i-0");
                        out::hex(&mut sc.name, sess.key_seed(env.seed, 2), 16);
                    }
                },
                Profile::Deployer => s(&mut sc.name, "GitHubActions"),
                Profile::Broker => {
                    s(&mut sc.name, "ecs-task-");
                    out::hex(&mut sc.name, sess.key_seed(env.seed, 2), 12);
                }
                Profile::Agent => {
                    s(&mut sc.name, "run-");
                    out::u(&mut sc.name, u64::from(sess.aux));
                }
                _ => s(&mut sc.name, "posture-scan"),
            }
            let console_login = sess.profile == Profile::Console && sess.step == 0;
            Who::Role {
                account,
                path,
                role,
                role_id: if role_id.is_empty() {
                    DEFAULT_ROLE_ID
                } else {
                    role_id
                },
                session_name: &sc.name,
                key: if console_login { &[] } else { &sc.key },
                created: sess.created,
                mfa: matches!(
                    sess.profile,
                    Profile::Human | Profile::Console | Profile::Admin
                ),
                source_identity: (sess.profile == Profile::Agent)
                    .then(|| AGENT_IDENTITIES[sess.who as usize]),
            }
        }
    };
    let from = From::Ip(sess.addr);
    let person = sess.who as usize;
    let person_ua = move |browser: bool| -> &'static str {
        let p = &pools.people[person.min(pools.people.len() - 1)];
        if browser {
            BROWSERS[p.browser].raw
        } else {
            CLI_AGENTS[p.cli]
        }
    };
    let ctx = Ctx {
        who: &who,
        from,
        t,
        seed,
        account,
    };
    match sess.profile {
        Profile::Workload => workload(env, sess, &ctx, b),
        Profile::Human => human(env, sess, &ctx, person_ua(false), false, b),
        Profile::Console => {
            if sess.step == 0 {
                console_login(&ctx, person_ua(true), b);
            } else {
                human(env, sess, &ctx, person_ua(true), true, b);
            }
        }
        Profile::Admin => admin(env, sess, &ctx, person_ua(false), b),
        Profile::Deployer => deployer(env, sess, &ctx, &mut sc.extra, b),
        Profile::Terraform => terraform(env, sess, &ctx, b),
        Profile::Broker => broker(env, sess, &ctx, b),
        Profile::Agent => agent(env, sess, &ctx, b),
        Profile::Scanner => scanner(env, sess, &ctx, b),
        _ => scan_child(env, sess, &ctx, b),
    }
}

const DEFAULT_ROLE_ID: &str = "AROAQX4Z7KDEPLOYR2M5T";
const TERRAFORM_USER_IDS: &[&str] = &[
    "AIDAT3RRAF0RMC1Q7XK2M",
    "AIDAT3RRAF0RMN3TW0RK5",
    "AIDAT3RRAF0RMD4TA7PLQ",
];
const AGENT_IDENTITIES: &[&str] = &[
    "agent=ticket-triager",
    "agent=cost-reporter",
    "agent=release-notes-writer",
    "agent=log-summarizer",
];

struct Ctx<'a> {
    who: &'a Who<'a>,
    from: From<'a>,
    t: i64,
    seed: u64,
    account: &'a str,
}

impl<'a> Ctx<'a> {
    fn call(&self, service: &'a str, name: &'a str, ua: &'a str) -> Call<'a> {
        let mut c = Call::new(self.who, self.t, service, name, self.from);
        c.ua = ua;
        c.seed = self.seed;
        c
    }
}

fn simple(b: &mut Vec<u8>, call: &Call<'_>, req: &str) {
    write(
        b,
        call,
        (!req.is_empty()).then_some(&|b: &mut Vec<u8>| s(b, req)),
        None,
        None,
        None,
    );
}

fn table_resource(b: &mut Vec<u8>, account: &str, table: &str) {
    s(b, "[{\"accountId\":\"");
    s(b, account);
    s(
        b,
        "\",\"type\":\"AWS::DynamoDB::Table\",\"ARN\":\"arn:aws:dynamodb:us-east-1:",
    );
    s(b, account);
    s(b, ":table/");
    s(b, table);
    s(b, "\"}]");
}

fn dynamodb(b: &mut Vec<u8>, c: &mut Call<'_>, account: &str, table: &str, op: u64) {
    c.data = true;
    c.read_only = op < 2;
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"tableName\":\"");
            s(b, table);
            match op {
                0 => s(b, "\",\"key\":{\"pk\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"},\"consistentRead\":false}"),
                1 => s(b, "\",\"indexName\":\"by-customer\",\"keyConditionExpression\":\"#c = :c\",\"expressionAttributeNames\":{\"#c\":\"customer_id\"},\"expressionAttributeValues\":{\":c\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"},\"limit\":50}"),
                _ => s(b, "\",\"item\":{\"pk\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"},\"returnConsumedCapacity\":\"TOTAL\"}"),
            }
        }),
        (op >= 2).then_some(&|b: &mut Vec<u8>| {
            s(b, "{\"consumedCapacity\":{\"tableName\":\"");
            s(b, table);
            s(b, "\",\"capacityUnits\":1.0,\"writeCapacityUnits\":1.0}}");
        }),
        None,
        Some(&|b: &mut Vec<u8>| table_resource(b, account, table)),
    );
}

fn queue_url(b: &mut Vec<u8>, account: &str, queue: &str) {
    s(b, "\"queueUrl\":\"https://sqs.us-east-1.amazonaws.com/");
    s(b, account);
    b.push(b'/');
    s(b, queue);
    b.push(b'"');
}

fn sqs(b: &mut Vec<u8>, c: &mut Call<'_>, account: &str, queue: &str, seed: u64) {
    c.data = true;
    let name = c.name;
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            b.push(b'{');
            queue_url(b, account, queue);
            match name {
                "ReceiveMessage" => s(b, ",\"maxNumberOfMessages\":10,\"waitTimeSeconds\":20,\"attributeNames\":[\"All\"]}"),
                "SendMessage" => s(b, ",\"messageBody\":\"HIDDEN_DUE_TO_SECURITY_REASONS\",\"messageAttributes\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}"),
                _ => s(b, ",\"receiptHandle\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}"),
            }
        }),
        (name == "SendMessage").then_some(&|b: &mut Vec<u8>| {
            s(b, "{\"mD5OfMessageBody\":\"");
            out::hex(b, seed ^ 0x3d5, 32);
            s(b, "\",\"mD5OfMessageAttributes\":\"");
            out::hex(b, seed ^ 0x3d6, 32);
            s(b, "\",\"messageId\":\"");
            out::uuid(b, seed ^ 0x3d7);
            s(b, "\"}");
        }),
        None,
        Some(&|b: &mut Vec<u8>| {
            s(b, "[{\"accountId\":\"");
            s(b, account);
            s(
                b,
                "\",\"type\":\"AWS::SQS::Queue\",\"ARN\":\"arn:aws:sqs:us-east-1:",
            );
            s(b, account);
            b.push(b':');
            s(b, queue);
            s(b, "\"}]");
        }),
    );
}

fn kms_decrypt(b: &mut Vec<u8>, c: &mut Call<'_>, account: &str, context: &str, seed: u64) {
    c.read_only = true;
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"encryptionAlgorithm\":\"SYMMETRIC_DEFAULT\",\"encryptionContext\":{\"aws:secretsmanager:arn\":\"arn:aws:secretsmanager:us-east-1:");
            s(b, account);
            s(b, ":secret:");
            s(b, context);
            b.push(b'-');
            out::chars(b, out::BASE62, super::rng::hash_str(context), 6);
            s(b, "\",\"SecretVersionId\":\"");
            out::uuid(b, super::rng::hash_str(context));
            s(b, "\"}}");
        }),
        None,
        None,
        Some(&|b: &mut Vec<u8>| {
            s(b, "[{\"accountId\":\"");
            s(b, account);
            s(
                b,
                "\",\"type\":\"AWS::KMS::Key\",\"ARN\":\"arn:aws:kms:us-east-1:",
            );
            s(b, account);
            s(b, ":key/");
            out::uuid(b, seed % 7);
            s(b, "\"}]");
        }),
    );
}

/// `secretsmanager:GetSecretValue` of a secret by name.
pub fn get_secret(b: &mut Vec<u8>, c: &Call<'_>, secret_id: &str) {
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"secretId\":\"");
            s(b, secret_id);
            s(b, "\"}");
        }),
        None,
        None,
        None,
    );
}

fn workload(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let svc = &pools.services[sess.who as usize];
    let ua = svc.ua;
    let mut k = Vec::with_capacity(96);
    let pick = env
        .rng
        .weighted(&[14, 12, 8, 8, 6, 5, 10, 7, 9, 6, 5, 2, 3, 3]);
    match pick {
        0..=2 => {
            let name = ["GetItem", "Query", "PutItem"][pick];
            let mut c = x.call("dynamodb", name, ua);
            dynamodb(b, &mut c, svc.account, &svc.table, pick as u64);
        }
        3..=5 => {
            let name = ["ReceiveMessage", "SendMessage", "DeleteMessage"][pick - 3];
            let mut c = x.call("sqs", name, ua);
            sqs(b, &mut c, svc.account, &svc.queue, x.seed);
        }
        6 => {
            let secret = env.rng.pick(&svc.secrets);
            let mut c = x.call("kms", "Decrypt", ua);
            kms_decrypt(b, &mut c, svc.account, secret, x.seed);
        }
        7 => {
            let secret = env.rng.pick(&svc.secrets);
            get_secret(b, &x.call("secretsmanager", "GetSecretValue", ua), secret);
        }
        8 | 9 => {
            let size = object_size(env);
            if pick == 8 && sess.s3_read_allowed(x.t, size) {
                let shard = env.rng.below(16);
                k.clear();
                s(&mut k, "config/");
                out::u(&mut k, shard);
                s(&mut k, ".json");
                let mut c = x.call("s3", "GetObject", ua);
                s3_object(
                    b,
                    &mut c,
                    &Object {
                        bucket: &svc.bucket,
                        key: &k,
                        bytes: size.min(200_000),
                    },
                );
            } else {
                object_key(&mut k, "events/", x.t, x.seed, ".json.gz");
                let mut c = x.call("s3", "PutObject", ua);
                s3_object(
                    b,
                    &mut c,
                    &Object {
                        bucket: &svc.bucket,
                        key: &k,
                        bytes: size,
                    },
                );
            }
        }
        10 => {
            let mut c = x.call("ssm", "GetParameters", ua);
            c.read_only = true;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"names\":[\"/prod/");
                    s(b, svc.name);
                    s(b, "/config\",\"/prod/");
                    s(b, svc.name);
                    s(b, "/feature-flags\"],\"withDecryption\":true}");
                }),
                None,
                None,
                None,
            );
        }
        11 => simple(b, &x.call("sts", "GetCallerIdentity", ua), ""),
        12 => {
            let c = x.call("events", "PutEvents", ua);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"entries\":[{\"source\":\"northwind.");
                    s(b, svc.name);
                    s(b, "\",\"detailType\":\"StateChanged\",\"detail\":\"HIDDEN_DUE_TO_SECURITY_REASONS\",\"eventBusName\":\"default\"}]}");
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"failedEntryCount\":0,\"entries\":[{\"eventId\":\"");
                    out::uuid(b, x.seed ^ 0xeb);
                    s(b, "\"}]}");
                }),
                None,
                None,
            );
        }
        _ => {
            let c = x.call("sns", "Publish", ua);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"topicArn\":\"arn:aws:sns:us-east-1:");
                    s(b, svc.account);
                    b.push(b':');
                    s(b, svc.name);
                    s(
                        b,
                        "-notifications\",\"message\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}",
                    );
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"messageId\":\"");
                    out::uuid(b, x.seed ^ 0x5e);
                    s(b, "\"}");
                }),
                None,
                None,
            );
        }
    }
}

fn console_login(x: &Ctx<'_>, ua: &str, b: &mut Vec<u8>) {
    let mut c = x.call("signin", "ConsoleLogin", ua);
    c.read_only = false;
    c.sign_in = true;
    write(
        b,
        &c,
        None,
        Some(&|b: &mut Vec<u8>| s(b, "{\"ConsoleLogin\":\"Success\"}")),
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"LoginTo\":\"https://console.aws.amazon.com/console/home?region=us-east-1&state=hashArgs%23&isauthcode=true\",\"MobileVersion\":\"No\",\"MFAUsed\":\"No\"}");
        }),
        None,
    );
}

/// A person at work in AWS: reads, listings, queries; Athena queries that make Athena read
/// S3 for the session.
fn human(
    env: &mut Env<'_>,
    sess: &mut Sess,
    x: &Ctx<'_>,
    ua: &str,
    console: bool,
    b: &mut Vec<u8>,
) {
    let pools = env.pools;
    let svc = &pools.services[(sess.aux as usize / 7) % pools.services.len()];
    let region = REGIONS[(sess.aux % REGIONS.len() as u32) as usize];
    if sess.pending > 0 {
        // Athena reads the query's data on the session's behalf: no client address, the
        // service as user agent. Count and bytes rules leave these out.
        sess.pending -= 1;
        let athena = From::Service(ATHENA);
        let mut k = Vec::with_capacity(96);
        if sess.pending % 40 == 39 {
            let mut c = Call::new(x.who, x.t, "glue", "GetTable", athena);
            c.seed = x.seed;
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"catalogId\":\"");
                    s(b, x.account);
                    s(b, "\",\"databaseName\":\"analytics\",\"name\":\"");
                    s(b, &svc.table);
                    s(b, "_events\"}");
                }),
                None,
                None,
                None,
            );
            return;
        }
        let mut c = Call::new(x.who, x.t, "s3", "GetObject", athena);
        c.seed = x.seed;
        c.console = console;
        s(&mut k, "warehouse/");
        s(&mut k, &svc.table);
        s(&mut k, "/dt=");
        let (y, m, d) = out::civil(x.t.div_euclid(86_400_000) - env.rng.below(30) as i64);
        out::u(&mut k, y as u64);
        k.push(b'-');
        out::pad(&mut k, u64::from(m), 2);
        k.push(b'-');
        out::pad(&mut k, u64::from(d), 2);
        s(&mut k, "/part-");
        out::pad(&mut k, env.rng.below(512), 5);
        s(&mut k, ".snappy.parquet");
        let bytes = (env.rng.pareto(4_000_000.0, 1.3) as u64).min(256_000_000);
        s3_object(
            b,
            &mut c,
            &Object {
                bucket: "northwind-data-lake",
                key: &k,
                bytes,
            },
        );
        return;
    }
    let pick = env
        .rng
        .weighted(&[8, 3, 3, 8, 6, 6, 6, 2, 3, 2, 1, 4, 4, 4, 3, 2, 4, 3]);
    let mut k = Vec::with_capacity(96);
    let mut c;
    match pick {
        0 => {
            c = x.call("ec2", "DescribeInstances", ua);
            c.region = region;
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"instancesSet\":{},\"filterSet\":{\"items\":[{\"name\":\"tag:Service\",\"valueSet\":{\"items\":[{\"value\":\"");
                    s(b, svc.name);
                    s(b, "\"}]}},{\"name\":\"instance-state-name\",\"valueSet\":{\"items\":[{\"value\":\"running\"}]}}]}}");
                }),
                None,
                None,
                None,
            );
        }
        1 => {
            c = x.call("ec2", "DescribeSecurityGroups", ua);
            c.region = region;
            c.console = console;
            simple(
                b,
                &c,
                "{\"securityGroupSet\":{},\"securityGroupIdSet\":{},\"filterSet\":{}}",
            );
        }
        2 => {
            c = x.call("s3", "ListBuckets", ua);
            c.console = console;
            c.host = Some("s3.amazonaws.com");
            simple(b, &c, "{\"Host\":\"s3.amazonaws.com\"}");
        }
        3 => {
            c = x.call("s3", "ListObjects", ua);
            c.console = console;
            s3_list(b, &mut c, &svc.bucket, "events/");
        }
        4 => {
            let size = object_size(env);
            if sess.s3_read_allowed(x.t, size) {
                c = x.call("s3", "GetObject", ua);
                c.console = console;
                object_key(&mut k, "events/", x.t - 86_400_000, x.seed, ".json.gz");
                s3_object(
                    b,
                    &mut c,
                    &Object {
                        bucket: &svc.bucket,
                        key: &k,
                        bytes: size,
                    },
                );
            } else {
                c = x.call("s3", "HeadObject", ua);
                c.console = console;
                object_key(&mut k, "events/", x.t - 86_400_000, x.seed, ".json.gz");
                s3_object(
                    b,
                    &mut c,
                    &Object {
                        bucket: &svc.bucket,
                        key: &k,
                        bytes: 0,
                    },
                );
            }
        }
        5 => {
            c = x.call("monitoring", "GetMetricData", ua);
            c.region = region;
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"metricDataQueries\":[{\"id\":\"m1\",\"metricStat\":{\"metric\":{\"namespace\":\"AWS/ECS\",\"metricName\":\"CPUUtilization\",\"dimensions\":[{\"name\":\"ServiceName\",\"value\":\"");
                    s(b, svc.name);
                    s(b, "\"},{\"name\":\"ClusterName\",\"value\":\"prod\"}]},\"period\":60,\"stat\":\"Average\"},\"returnData\":true}],\"startTime\":\"");
                    out::time_s(b, x.t - 3_600_000);
                    s(b, "\",\"endTime\":\"");
                    out::time_s(b, x.t);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        6 => {
            c = x.call("logs", "FilterLogEvents", ua);
            c.region = region;
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"logGroupName\":\"/ecs/");
                    s(b, svc.name);
                    s(b, "\",\"startTime\":");
                    out::i(b, x.t - 900_000);
                    s(b, ",\"filterPattern\":\"ERROR\",\"interleaved\":true}");
                }),
                None,
                None,
                None,
            );
        }
        7 => {
            c = x.call("lambda", "ListFunctions20150331", ua);
            c.region = region;
            c.console = console;
            simple(b, &c, "");
        }
        8 => {
            c = x.call("lambda", "GetFunction20150331v2", ua);
            c.region = region;
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"functionName\":\"");
                    s(b, svc.name);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        9 => {
            c = x.call("iam", "GetRole", ua);
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &svc.role);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        10 => {
            c = x.call("iam", "ListRoles", ua);
            c.console = console;
            simple(b, &c, "{\"maxItems\":100}");
        }
        11 => {
            c = x.call("cloudformation", "DescribeStacks", ua);
            c.region = region;
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"stackName\":\"");
                    s(b, svc.name);
                    s(b, "-prod\"}");
                }),
                None,
                None,
                None,
            );
        }
        12 => {
            // A query: its text is logged whole, from a few lines to several KB.
            c = x.call("athena", "StartQueryExecution", ua);
            c.console = console;
            c.read_only = false;
            let columns = (env.rng.pareto(3.0, 1.1) as u64).min(160);
            sess.pending = env.rng.range(8, 160) as u16;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"queryString\":\"SELECT ");
                    for n in 0..columns {
                        if n > 0 {
                            s(b, ", ");
                        }
                        s(b, "coalesce(e.attr_");
                        out::u(b, n);
                        s(b, ", d.attr_");
                        out::u(b, n);
                        s(b, ") AS attr_");
                        out::u(b, n);
                    }
                    s(b, " FROM analytics.");
                    s(b, &svc.table);
                    s(b, "_events e LEFT JOIN analytics.dim_customer d ON e.customer_id = d.customer_id WHERE e.dt BETWEEN '2024-10-01' AND '2024-10-31' AND e.region = 'us-east-1'\",\"clientRequestToken\":\"");
                    out::uuid(b, x.seed ^ 0xa7);
                    s(b, "\",\"queryExecutionContext\":{\"database\":\"analytics\",\"catalog\":\"AwsDataCatalog\"},\"resultConfiguration\":{\"outputLocation\":\"s3://northwind-athena-results/");
                    s(b, svc.name);
                    s(b, "/\"},\"workGroup\":\"analysts\"}");
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"queryExecutionId\":\"");
                    out::uuid(b, x.seed ^ 0xa8);
                    s(b, "\"}");
                }),
                None,
                None,
            );
        }
        13 | 14 => {
            c = x.call(
                "athena",
                if pick == 13 {
                    "GetQueryExecution"
                } else {
                    "GetQueryResults"
                },
                ua,
            );
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"queryExecutionId\":\"");
                    out::uuid(b, x.seed ^ 0xa9);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        15 => {
            c = x.call("dynamodb", "DescribeTable", ua);
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"tableName\":\"");
                    s(b, &svc.table);
                    s(b, "\"}");
                }),
                None,
                None,
                Some(&|b: &mut Vec<u8>| table_resource(b, svc.account, &svc.table)),
            );
        }
        16 => {
            c = x.call("ecs", "DescribeServices", ua);
            c.console = console;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"cluster\":\"prod\",\"services\":[\"");
                    s(b, svc.name);
                    s(b, "\"]}");
                }),
                None,
                None,
                None,
            );
        }
        _ => {
            c = x.call("sts", "GetCallerIdentity", ua);
            c.console = console;
            simple(b, &c, "");
        }
    }
}

/// An administrator's fresh SSO session: reads IAM and changes *other* principals.
fn admin(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, ua: &str, b: &mut Vec<u8>) {
    let pools = env.pools;
    let target = &pools.services[env.rng.below(pools.services.len() as u64) as usize];
    let pick = env.rng.weighted(&[6, 5, 4, 3, 3, 3, 2, 2, 2, 1, 1]);
    let c;
    match pick {
        0 => {
            c = x.call("iam", "ListRoles", ua);
            simple(b, &c, "{\"maxItems\":100}");
        }
        1 | 2 => {
            c = x.call(
                "iam",
                if pick == 1 {
                    "GetRole"
                } else {
                    "ListAttachedRolePolicies"
                },
                ua,
            );
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &target.role);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        3 | 4 => {
            c = x.call(
                "iam",
                if pick == 3 {
                    "AttachRolePolicy"
                } else {
                    "DetachRolePolicy"
                },
                ua,
            );
            let policy = env.rng.pick(MANAGED_POLICIES);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &target.role);
                    s(b, "\",\"policyArn\":\"");
                    s(b, policy);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        5 | 6 => {
            c = x.call(
                "iam",
                if pick == 5 {
                    "PutRolePolicy"
                } else {
                    "UpdateAssumeRolePolicy"
                },
                ua,
            );
            let statements = (env.rng.pareto(1.0, 1.2) as u64).clamp(1, 24);
            let put = pick == 5;
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &target.role);
                    if put {
                        s(b, "\",\"policyName\":\"");
                        s(b, target.name);
                        s(b, "-inline\",\"policyDocument\":\"");
                        policy_document(b, "arn:aws:s3:::northwind-", statements);
                    } else {
                        s(b, "\",\"policyDocument\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":\\\"Allow\\\",\\\"Principal\\\":{\\\"Service\\\":\\\"ecs-tasks.amazonaws.com\\\"},\\\"Action\\\":\\\"sts:AssumeRole\\\"}]}");
                    }
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        7 => {
            // A key for a service user, not for the caller.
            c = x.call("iam", "CreateAccessKey", ua);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"userName\":\"svc-");
                    s(b, target.name);
                    s(b, "\"}");
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"accessKey\":{\"accessKeyId\":\"");
                    key_id(b, "AKIA", x.seed ^ 0xacce55);
                    s(b, "\",\"status\":\"Active\",\"userName\":\"svc-");
                    s(b, target.name);
                    s(b, "\",\"createDate\":\"");
                    out::aws_expiration(b, x.t);
                    s(b, "\"}}");
                }),
                None,
                None,
            );
        }
        8 => {
            c = x.call("iam", "AttachUserPolicy", ua);
            let policy = env.rng.pick(MANAGED_POLICIES);
            let other = env.rng.below(pools.people.len() as u64) as usize;
            let other = if other as u32 == sess.who {
                (other + 1) % pools.people.len()
            } else {
                other
            };
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"userName\":\"");
                    s(b, &pools.people[other].login);
                    s(b, "\",\"policyArn\":\"");
                    s(b, policy);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        9 => {
            c = x.call("iam", "ListUsers", ua);
            simple(b, &c, "{\"maxItems\":100}");
        }
        _ => {
            c = x.call("organizations", "DescribeAccount", ua);
            simple(b, &c, "{\"accountId\":\"615482093771\"}");
        }
    }
}

/// GitHub Actions deploying one service: the web-identity exchange first, then registry,
/// task definitions (several KB), service updates, launches and stack changes.
fn deployer(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, sub: &mut Vec<u8>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let svc = &pools.services[sess.who as usize];
    const UA: &str = "aws-sdk-nodejs/2.1691.0 linux/v20.17.0 configure-aws-credentials-for-github-actions promise";
    const UA_CLI: &str = "aws-cli/2.18.2 md/awscrt#0.22.0 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#ecs.update-service";
    if sess.step == 0 {
        sub.clear();
        s(sub, "repo:");
        s(sub, ORG);
        sub.push(b'/');
        s(sub, svc.name);
        s(sub, ":environment:production");
        let web = Who::Web {
            account: ACCOUNT_PROD,
            subject: sub,
        };
        let Who::Role {
            role,
            role_id,
            session_name,
            key,
            ..
        } = *x.who
        else {
            return;
        };
        let issue = Issue {
            account: ACCOUNT_PROD,
            role,
            role_id,
            session_name,
            child_key: key,
            duration_s: 3600,
            source_identity: None,
            t: x.t,
        };
        let mut c = Call::new(&web, x.t, "sts", "AssumeRoleWithWebIdentity", x.from);
        c.ua = UA;
        c.read_only = true;
        c.seed = x.seed;
        let subject: &[u8] = sub;
        write(
            b,
            &c,
            Some(&|b: &mut Vec<u8>| {
                s(b, "{\"roleArn\":\"arn:aws:iam::");
                s(b, ACCOUNT_PROD);
                s(b, ":role/");
                s(b, role);
                s(
                    b,
                    "\",\"roleSessionName\":\"GitHubActions\",\"durationSeconds\":3600}",
                );
            }),
            Some(&|b: &mut Vec<u8>| {
                let mut inner = Vec::with_capacity(512);
                issue.response(&mut inner);
                inner.pop();
                b.extend_from_slice(&inner);
                s(b, ",\"subjectFromWebIdentityToken\":\"");
                b.extend_from_slice(subject);
                s(b, "\",\"provider\":\"arn:aws:iam::");
                s(b, ACCOUNT_PROD);
                s(b, ":oidc-provider/token.actions.githubusercontent.com\",\"audience\":\"sts.amazonaws.com\"}");
            }),
            Some(&|b: &mut Vec<u8>| {
                s(
                    b,
                    "{\"identityProviderConnectionVerificationMethod\":\"IdPThumbprint\"}",
                )
            }),
            Some(&|b: &mut Vec<u8>| issue.resources(b)),
        );
        return;
    }
    if sess.step == 1 {
        simple(
            b,
            &x.call("ecr", "GetAuthorizationToken", UA_CLI),
            "{\"registryIds\":[\"482915736014\"]}",
        );
        return;
    }
    let pick = env.rng.weighted(&[3, 2, 4, 3, 2, 2, 2, 1, 2]);
    match pick {
        0 => {
            let c = x.call("ecr", "PutImage", UA_CLI);
            let layers = env.rng.range(3, 14);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"repositoryName\":\"");
                    s(b, svc.name);
                    s(b, "\",\"imageTag\":\"");
                    out::hex(b, x.seed ^ 0x7a9, 12);
                    s(b, "\",\"imageManifest\":\"{\\n   \\\"schemaVersion\\\": 2,\\n   \\\"mediaType\\\": \\\"application/vnd.docker.distribution.manifest.v2+json\\\",\\n   \\\"config\\\": {\\n      \\\"mediaType\\\": \\\"application/vnd.docker.container.image.v1+json\\\",\\n      \\\"size\\\": 7023,\\n      \\\"digest\\\": \\\"sha256:");
                    out::hex(b, x.seed ^ 0xd1, 64);
                    s(b, "\\\"\\n   },\\n   \\\"layers\\\": [");
                    for n in 0..layers {
                        if n > 0 {
                            b.push(b',');
                        }
                        s(b, "\\n      {\\n         \\\"mediaType\\\": \\\"application/vnd.docker.image.rootfs.diff.tar.gzip\\\",\\n         \\\"size\\\": ");
                        out::u(b, 1_000 + super::rng::hash2(x.seed, n) % 50_000_000);
                        s(b, ",\\n         \\\"digest\\\": \\\"sha256:");
                        out::hex(b, x.seed ^ (0xd2 + n), 64);
                        s(b, "\\\"\\n      }");
                    }
                    s(b, "\\n   ]\\n}\",\"imageManifestMediaType\":\"application/vnd.docker.distribution.manifest.v2+json\"}");
                }),
                None,
                None,
                None,
            );
        }
        1 => simple(
            b,
            &x.call("ecs", "DescribeTaskDefinition", UA_CLI),
            "{\"taskDefinition\":\"orders-api\"}",
        ),
        2 => {
            // Task definitions are the long tail of CloudTrail request sizes.
            let c = x.call("ecs", "RegisterTaskDefinition", UA_CLI);
            let containers = env.rng.range(1, 4);
            let env_vars = (env.rng.pareto(6.0, 1.3) as u64).min(80);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| task_definition(b, svc.name, containers, env_vars, x.seed)),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"taskDefinition\":{\"taskDefinitionArn\":\"arn:aws:ecs:us-east-1:482915736014:task-definition/");
                    s(b, svc.name);
                    b.push(b':');
                    out::u(b, 100 + x.seed % 400);
                    s(b, "\",\"family\":\"");
                    s(b, svc.name);
                    s(b, "\",\"revision\":");
                    out::u(b, 100 + x.seed % 400);
                    s(b, ",\"status\":\"ACTIVE\",\"compatibilities\":[\"EC2\",\"FARGATE\"],\"requiresCompatibilities\":[\"FARGATE\"],\"cpu\":\"1024\",\"memory\":\"2048\",\"registeredAt\":\"");
                    out::aws_expiration(b, x.t);
                    s(
                        b,
                        "\",\"registeredBy\":\"arn:aws:sts::482915736014:assumed-role/",
                    );
                    s(b, deployer_role(svc.name));
                    s(b, "/GitHubActions\"}}");
                }),
                None,
                None,
            );
        }
        3 => {
            let c = x.call("ecs", "UpdateService", UA_CLI);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"cluster\":\"prod\",\"service\":\"");
                    s(b, svc.name);
                    s(b, "\",\"taskDefinition\":\"");
                    s(b, svc.name);
                    b.push(b':');
                    out::u(b, 100 + x.seed % 400);
                    s(b, "\",\"forceNewDeployment\":false}");
                }),
                None,
                None,
                None,
            );
        }
        4 => {
            let c = x.call("ecs", "DescribeServices", UA_CLI);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"cluster\":\"prod\",\"services\":[\"");
                    s(b, svc.name);
                    s(b, "\"]}");
                }),
                None,
                None,
                None,
            );
        }
        5 => {
            let c = x.call("lambda", "UpdateFunctionCode20150331v2", UA_CLI);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"functionName\":\"");
                    s(b, svc.name);
                    s(b, "\",\"publish\":true,\"s3Bucket\":\"northwind-build-artifacts\",\"s3Key\":\"");
                    s(b, svc.name);
                    b.push(b'/');
                    out::hex(b, x.seed ^ 0x7a9, 12);
                    s(b, ".zip\"}");
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"functionName\":\"");
                    s(b, svc.name);
                    s(
                        b,
                        "\",\"functionArn\":\"arn:aws:lambda:us-east-1:482915736014:function:",
                    );
                    s(b, svc.name);
                    s(b, "\",\"runtime\":\"nodejs20.x\",\"role\":\"arn:aws:iam::482915736014:role/service-role/lambda-");
                    s(b, svc.name);
                    s(b, "\",\"handler\":\"index.handler\",\"codeSize\":");
                    out::u(b, 40_000 + x.seed % 9_000_000);
                    s(b, ",\"timeout\":30,\"memorySize\":512,\"codeSha256\":\"");
                    out::base64(b, x.seed ^ 0xc5, 32, false);
                    s(b, "\",\"version\":\"");
                    out::u(b, 1 + x.seed % 300);
                    s(b, "\",\"tracingConfig\":{\"mode\":\"PassThrough\"},\"state\":\"Active\",\"lastUpdateStatus\":\"InProgress\",\"packageType\":\"Zip\",\"architectures\":[\"arm64\"]}");
                }),
                None,
                None,
            );
        }
        6 => {
            let c = x.call("cloudformation", "CreateChangeSet", UA_CLI);
            let params = (env.rng.pareto(3.0, 1.2) as u64).min(60);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"stackName\":\"");
                    s(b, svc.name);
                    s(b, "-prod\",\"templateURL\":\"https://northwind-build-artifacts.s3.amazonaws.com/");
                    s(b, svc.name);
                    s(b, "/template.yaml\",\"parameters\":[");
                    for n in 0..params {
                        if n > 0 {
                            b.push(b',');
                        }
                        s(b, "{\"parameterKey\":\"Param");
                        out::u(b, n);
                        s(b, "\",\"parameterValue\":\"");
                        out::hex(b, x.seed ^ n, 24);
                        s(b, "\"}");
                    }
                    s(b, "],\"capabilities\":[\"CAPABILITY_IAM\",\"CAPABILITY_NAMED_IAM\"],\"changeSetName\":\"deploy-");
                    out::hex(b, x.seed ^ 0x7a9, 12);
                    s(b, "\",\"changeSetType\":\"UPDATE\"}");
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(
                        b,
                        "{\"id\":\"arn:aws:cloudformation:us-east-1:482915736014:changeSet/deploy/",
                    );
                    out::uuid(b, x.seed ^ 0xcf);
                    s(
                        b,
                        "\",\"stackId\":\"arn:aws:cloudformation:us-east-1:482915736014:stack/",
                    );
                    s(b, svc.name);
                    s(b, "-prod/");
                    out::uuid(b, super::rng::hash_str(svc.name));
                    s(b, "\"}");
                }),
                None,
                None,
            );
        }
        7 => {
            // An instance launch: the response describes the instance at length.
            let c = x.call("ec2", "RunInstances", UA_CLI);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"instancesSet\":{\"items\":[{\"imageId\":\"ami-0");
                    out::hex(b, x.seed ^ 0xa1, 16);
                    s(b, "\",\"minCount\":1,\"maxCount\":1}]},\"instanceType\":\"m7g.large\",\"blockDeviceMapping\":{},\"monitoring\":{\"enabled\":false},\"disableApiTermination\":false,\"disableApiStop\":false,\"clientToken\":\"");
                    out::uuid(b, x.seed ^ 0xa2);
                    s(b, "\",\"iamInstanceProfile\":{\"name\":\"");
                    s(b, svc.name);
                    s(b, "-instance\"},\"tagSpecificationSet\":{\"items\":[{\"resourceType\":\"instance\",\"tags\":[{\"key\":\"Service\",\"value\":\"");
                    s(b, svc.name);
                    s(
                        b,
                        "\"},{\"key\":\"DeployedBy\",\"value\":\"github-actions\"}]}]}}",
                    );
                }),
                Some(&|b: &mut Vec<u8>| run_instances_response(b, svc.name, x.seed)),
                None,
                None,
            );
        }
        _ => {
            let mut k = Vec::with_capacity(64);
            s(&mut k, svc.name);
            k.push(b'/');
            out::hex(&mut k, x.seed ^ 0x7a9, 12);
            s(&mut k, ".zip");
            let mut c = x.call("s3", "PutObject", UA_CLI);
            s3_object(
                b,
                &mut c,
                &Object {
                    bucket: "northwind-build-artifacts",
                    key: &k,
                    bytes: object_size(env) * 40,
                },
            );
        }
    }
}

fn task_definition(b: &mut Vec<u8>, name: &str, containers: u64, env_vars: u64, seed: u64) {
    s(b, "{\"family\":\"");
    s(b, name);
    s(b, "\",\"taskRoleArn\":\"arn:aws:iam::482915736014:role/");
    s(b, name);
    s(b, "-task\",\"executionRoleArn\":\"arn:aws:iam::482915736014:role/ecsTaskExecutionRole\",\"networkMode\":\"awsvpc\",\"containerDefinitions\":[");
    for n in 0..containers {
        if n > 0 {
            b.push(b',');
        }
        s(b, "{\"name\":\"");
        s(b, name);
        if n > 0 {
            s(b, "-sidecar-");
            out::u(b, n);
        }
        s(
            b,
            "\",\"image\":\"482915736014.dkr.ecr.us-east-1.amazonaws.com/",
        );
        s(b, name);
        b.push(b':');
        out::hex(b, seed ^ 0x7a9, 12);
        s(b, "\",\"cpu\":0,\"portMappings\":[{\"containerPort\":8080,\"hostPort\":8080,\"protocol\":\"tcp\",\"name\":\"http\",\"appProtocol\":\"http\"}],\"essential\":true,\"environment\":[");
        for v in 0..env_vars {
            if v > 0 {
                b.push(b',');
            }
            s(b, "{\"name\":\"SETTING_");
            out::u(b, v);
            s(b, "\",\"value\":\"");
            out::hex(b, seed ^ (n << 8) ^ v, 20);
            s(b, "\"}");
        }
        s(b, "],\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:482915736014:secret:prod/");
        s(b, name);
        s(b, "/db-credentials\"}],\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-group\":\"/ecs/");
        s(b, name);
        s(b, "\",\"awslogs-region\":\"us-east-1\",\"awslogs-stream-prefix\":\"ecs\"}},\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"curl -f http://localhost:8080/health || exit 1\"],\"interval\":30,\"timeout\":5,\"retries\":3}}");
    }
    s(b, "],\"requiresCompatibilities\":[\"FARGATE\"],\"cpu\":\"1024\",\"memory\":\"2048\",\"runtimePlatform\":{\"cpuArchitecture\":\"ARM64\",\"operatingSystemFamily\":\"LINUX\"}}");
}

fn run_instances_response(b: &mut Vec<u8>, name: &str, seed: u64) {
    s(b, "{\"requestId\":\"");
    out::uuid(b, seed ^ 0xb1);
    s(b, "\",\"reservationId\":\"r-0");
    out::hex(b, seed ^ 0xb2, 16);
    s(b, "\",\"ownerId\":\"482915736014\",\"groupSet\":{},\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0");
    out::hex(b, seed ^ 0xb3, 16);
    s(b, "\",\"imageId\":\"ami-0");
    out::hex(b, seed ^ 0xa1, 16);
    s(b, "\",\"currentInstanceBootMode\":\"uefi\",\"instanceState\":{\"code\":0,\"name\":\"pending\"},\"privateDnsName\":\"ip-10-20-");
    out::u(b, seed % 64);
    b.push(b'-');
    out::u(b, 2 + seed % 250);
    s(b, ".ec2.internal\",\"amiLaunchIndex\":0,\"productCodes\":{},\"instanceType\":\"m7g.large\",\"launchTime\":");
    out::u(b, 1_730_000_000_000 + seed % 10_000_000);
    s(b, ",\"placement\":{\"availabilityZone\":\"us-east-1b\",\"tenancy\":\"default\"},\"monitoring\":{\"state\":\"disabled\"},\"subnetId\":\"subnet-0");
    out::hex(b, seed ^ 0xb4, 16);
    s(b, "\",\"vpcId\":\"vpc-0");
    out::hex(b, seed ^ 0xb5, 16);
    s(b, "\",\"privateIpAddress\":\"10.20.");
    out::u(b, seed % 64);
    b.push(b'.');
    out::u(b, 2 + seed % 250);
    s(b, "\",\"stateReason\":{\"code\":\"pending\",\"message\":\"pending\"},\"architecture\":\"arm64\",\"rootDeviceType\":\"ebs\",\"rootDeviceName\":\"/dev/xvda\",\"blockDeviceMapping\":{},\"virtualizationType\":\"hvm\",\"clientToken\":\"");
    out::uuid(b, seed ^ 0xa2);
    s(
        b,
        "\",\"tagSet\":{\"items\":[{\"key\":\"Service\",\"value\":\"",
    );
    s(b, name);
    s(b, "\"},{\"key\":\"DeployedBy\",\"value\":\"github-actions\"}]},\"groupSet\":{\"items\":[{\"groupId\":\"sg-0");
    out::hex(b, seed ^ 0xb6, 16);
    s(b, "\",\"groupName\":\"");
    s(b, name);
    s(b, "-instances\"}]},\"sourceDestCheck\":true,\"hypervisor\":\"xen\",\"networkInterfaceSet\":{\"items\":[{\"networkInterfaceId\":\"eni-0");
    out::hex(b, seed ^ 0xb7, 16);
    s(b, "\",\"subnetId\":\"subnet-0");
    out::hex(b, seed ^ 0xb4, 16);
    s(b, "\",\"vpcId\":\"vpc-0");
    out::hex(b, seed ^ 0xb5, 16);
    s(
        b,
        "\",\"ownerId\":\"482915736014\",\"status\":\"in-use\",\"macAddress\":\"0e:",
    );
    out::hex(b, seed ^ 0xb8, 2);
    s(b, ":5c:21:9a:7f\",\"privateIpAddress\":\"10.20.");
    out::u(b, seed % 64);
    b.push(b'.');
    out::u(b, 2 + seed % 250);
    s(b, "\",\"sourceDestCheck\":true,\"interfaceType\":\"interface\",\"groupSet\":{\"items\":[{\"groupId\":\"sg-0");
    out::hex(b, seed ^ 0xb6, 16);
    s(b, "\",\"groupName\":\"");
    s(b, name);
    s(
        b,
        "-instances\"}]},\"attachment\":{\"attachmentId\":\"eni-attach-0",
    );
    out::hex(b, seed ^ 0xb9, 16);
    s(
        b,
        "\",\"deviceIndex\":0,\"networkCardIndex\":0,\"status\":\"attaching\",\"attachTime\":",
    );
    out::u(b, 1_730_000_000_000 + seed % 10_000_000);
    s(b, ",\"deleteOnTermination\":true},\"privateIpAddressesSet\":{\"item\":[{\"privateIpAddress\":\"10.20.");
    out::u(b, seed % 64);
    b.push(b'.');
    out::u(b, 2 + seed % 250);
    s(b, "\",\"primary\":true}]},\"ipv6AddressesSet\":{},\"tagSet\":{}}]},\"ebsOptimized\":false,\"enaSupport\":true,\"metadataOptions\":{\"state\":\"pending\",\"httpTokens\":\"required\",\"httpPutResponseHopLimit\":2,\"httpEndpoint\":\"enabled\",\"httpProtocolIpv4\":\"enabled\",\"httpProtocolIpv6\":\"disabled\",\"instanceMetadataTags\":\"disabled\"},\"maintenanceOptions\":{\"autoRecovery\":\"default\"},\"privateDnsNameOptions\":{\"hostnameType\":\"ip-name\",\"enableResourceNameDnsARecord\":false,\"enableResourceNameDnsAAAARecord\":false}}]}}");
}

/// The Terraform pipeline's IAM user: plans and applies IAM changes to *other* roles and
/// users, under a DynamoDB state lock.
fn terraform(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let ua = CLI_AGENTS[3];
    let target = &pools.services[env.rng.below(pools.services.len() as u64) as usize];
    if sess.step == 0 {
        simple(b, &x.call("sts", "GetCallerIdentity", ua), "");
        return;
    }
    let pick = env.rng.weighted(&[4, 3, 3, 2, 2, 1, 2]);
    match pick {
        0..=2 => {
            let name = ["GetRole", "ListRolePolicies", "ListAttachedRolePolicies"][pick];
            let c = x.call("iam", name, ua);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &target.role);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        3 => {
            let c = x.call("iam", "AttachRolePolicy", ua);
            let policy = env.rng.pick(MANAGED_POLICIES);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &target.role);
                    s(b, "\",\"policyArn\":\"");
                    s(b, policy);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        4 => {
            let c = x.call("iam", "PutRolePolicy", ua);
            let statements = (env.rng.pareto(2.0, 1.2) as u64).clamp(1, 30);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"roleName\":\"");
                    s(b, &target.role);
                    s(
                        b,
                        "\",\"policyName\":\"terraform-managed\",\"policyDocument\":\"",
                    );
                    policy_document(b, "arn:aws:s3:::northwind-", statements);
                    s(b, "\"}");
                }),
                None,
                None,
                None,
            );
        }
        5 => {
            let c = x.call("iam", "CreateAccessKey", ua);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"userName\":\"svc-");
                    s(b, target.name);
                    s(b, "\"}");
                }),
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"accessKey\":{\"accessKeyId\":\"");
                    key_id(b, "AKIA", x.seed ^ 0xacce55);
                    s(b, "\",\"status\":\"Active\",\"userName\":\"svc-");
                    s(b, target.name);
                    s(b, "\",\"createDate\":\"");
                    out::aws_expiration(b, x.t);
                    s(b, "\"}}");
                }),
                None,
                None,
            );
        }
        _ => {
            let op = env.rng.below(3);
            let mut c = x.call("dynamodb", ["GetItem", "Query", "PutItem"][op as usize], ua);
            dynamodb(b, &mut c, ACCOUNT_SHARED, "terraform-locks", op);
        }
    }
}

/// The agent platform's broker: takes work off a queue, records runs, and assumes the agent's
/// role for each run with `SourceIdentity agent=<id>` — the run is a new session elsewhere.
fn broker(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    const UA: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.35.24";
    let pick = env.rng.weighted(&[3, 2, 2, 2]);
    match pick {
        0 => {
            let mut c = x.call("sqs", "ReceiveMessage", UA);
            sqs(b, &mut c, ACCOUNT_SHARED, "agent-tasks", x.seed);
        }
        1 | 2 => {
            let op = if pick == 1 { 0 } else { 2 };
            let mut c = x.call("dynamodb", ["GetItem", "Query", "PutItem"][op as usize], UA);
            dynamodb(b, &mut c, ACCOUNT_SHARED, "agent-runs", op);
        }
        _ => {
            let agent = env.rng.below(AGENTS.len() as u64) as u32;
            let run = 10_000 + (env.rng.next_u64() % 90_000) as u32;
            let id = env.new_id();
            let mut child = Sess::new(
                id,
                Profile::Agent,
                agent,
                run,
                super::pools::private_ip(30, id),
                env.length(5.0, 1.3, 120),
            );
            child.created = x.t;
            child.expires = x.t + 3_600_000;
            child.pace = 500;
            let mut child_key = Vec::with_capacity(20);
            key_id(&mut child_key, "ASIA", child.key_seed(env.seed, 1));
            let mut name = Vec::with_capacity(16);
            s(&mut name, "run-");
            out::u(&mut name, u64::from(run));
            let issue = Issue {
                account: ACCOUNT_PROD,
                role: AGENT_ROLES[agent as usize],
                role_id: DEFAULT_ROLE_ID,
                session_name: &name,
                child_key: &child_key,
                duration_s: 3600,
                source_identity: Some(AGENT_IDENTITIES[agent as usize]),
                t: x.t,
            };
            assume_role(b, x.who, x.from, UA, &issue, x.seed);
            env.spawned.push(child);
            let _ = sess;
        }
    }
}

/// One agent run: reads its inputs, calls its model, writes its output.
fn agent(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    const UA: &str = "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/linux#6.1.109-118.189.amzn2023.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#adaptive Botocore/1.35.30 agent-runtime/0.9.2";
    let agent_name = AGENTS[sess.who as usize];
    let mut bucket = Vec::with_capacity(48);
    s(&mut bucket, "northwind-agent-");
    s(&mut bucket, agent_name);
    let bucket = std::str::from_utf8(&bucket).unwrap_or("northwind-agents");
    let mut k = Vec::with_capacity(96);
    let pick = env.rng.weighted(&[2, 4, 4, 2, 1]);
    match pick {
        0 => {
            let mut c = x.call("s3", "ListObjects", UA);
            s3_list(b, &mut c, bucket, "inbox/");
        }
        1 if sess.s3_read_allowed(x.t, 40_000) => {
            let mut c = x.call("s3", "GetObject", UA);
            object_key(&mut k, "inbox/", x.t, x.seed, ".json");
            s3_object(
                b,
                &mut c,
                &Object {
                    bucket,
                    key: &k,
                    bytes: 1_000 + x.seed % 39_000,
                },
            );
        }
        2 => {
            let c = x.call("bedrock", "InvokeModel", UA);
            write(
                b,
                &c,
                Some(&|b: &mut Vec<u8>| {
                    s(
                        b,
                        "{\"modelId\":\"anthropic.claude-3-5-sonnet-20240620-v1:0\"}",
                    )
                }),
                None,
                Some(&|b: &mut Vec<u8>| {
                    s(b, "{\"inputTokenCount\":1843,\"outputTokenCount\":412}")
                }),
                None,
            );
        }
        3 => {
            let mut secret = Vec::with_capacity(48);
            s(&mut secret, "prod/agents/");
            s(&mut secret, agent_name);
            s(&mut secret, "/api-token");
            get_secret(
                b,
                &x.call("secretsmanager", "GetSecretValue", UA),
                std::str::from_utf8(&secret).unwrap_or(""),
            );
        }
        _ => {
            let mut c = x.call("s3", "PutObject", UA);
            object_key(&mut k, "outbox/", x.t, x.seed, ".md");
            s3_object(
                b,
                &mut c,
                &Object {
                    bucket,
                    key: &k,
                    bytes: 2_000 + x.seed % 30_000,
                },
            );
        }
    }
}

/// The security scanner: lists the organisation and chains into each member account's
/// `OrganizationAccountAccessRole` (an admin-named role) — only to read.
fn scanner(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    const UA: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.35.24 prowler/4.4.1";
    let pick = env.rng.weighted(&[2, 2, 3]);
    match pick {
        0 => simple(b, &x.call("organizations", "ListAccounts", UA), ""),
        1 => {
            let mut c = x.call("ec2", "DescribeRegions", UA);
            c.read_only = true;
            simple(b, &c, "{\"regionSet\":{},\"allRegions\":false}");
        }
        _ => {
            let member = env.rng.below(MEMBER_ACCOUNTS.len() as u64) as u32;
            let id = env.new_id();
            let mut child = Sess::new(
                id,
                Profile::ScanChild,
                member,
                0,
                sess.addr,
                env.length(5.0, 1.2, 80),
            );
            child.created = x.t;
            child.expires = x.t + 3_600_000;
            child.pace = 300;
            let mut child_key = Vec::with_capacity(20);
            key_id(&mut child_key, "ASIA", child.key_seed(env.seed, 1));
            let issue = Issue {
                account: MEMBER_ACCOUNTS[member as usize],
                role: "OrganizationAccountAccessRole",
                role_id: "AROAORGACCESS4M7T2QZK",
                session_name: b"posture-scan",
                child_key: &child_key,
                duration_s: 3600,
                source_identity: None,
                t: x.t,
            };
            assume_role(b, x.who, x.from, UA, &issue, x.seed);
            env.spawned.push(child);
        }
    }
}

fn scan_child(env: &mut Env<'_>, _sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    const UA: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.35.24 prowler/4.4.1";
    const READS: &[(&str, &str, &str)] = &[
        ("iam", "ListRoles", "{\"maxItems\":1000}"),
        ("iam", "ListUsers", "{\"maxItems\":1000}"),
        ("iam", "GetAccountPasswordPolicy", ""),
        (
            "iam",
            "ListPolicies",
            "{\"scope\":\"Local\",\"onlyAttached\":false}",
        ),
        (
            "ec2",
            "DescribeSecurityGroups",
            "{\"securityGroupSet\":{},\"securityGroupIdSet\":{},\"filterSet\":{}}",
        ),
        ("s3", "ListBuckets", "{\"Host\":\"s3.amazonaws.com\"}"),
        (
            "cloudtrail",
            "DescribeTrails",
            "{\"includeShadowTrails\":true}",
        ),
        ("config", "DescribeConfigurationRecorders", ""),
        ("guardduty", "ListDetectors", ""),
        ("kms", "ListKeys", ""),
    ];
    let (service, name, req) = *env.rng.pick(READS);
    let mut c = x.call(service, name, UA);
    c.read_only = true;
    if service == "s3" {
        c.host = Some("s3.amazonaws.com");
    }
    simple(b, &c, req);
}
