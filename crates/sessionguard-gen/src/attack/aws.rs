//! The AWS attacks: scripts of CloudTrail calls by identities the attack owns (an IAM user's
//! leaked key, stolen role credentials, a role chained from them), each call a [`Call`] line
//! of the script with its delay and how it counts towards the rule.

use std::cell::Cell;
use std::rc::Rc;

use super::{Attack, Builder, Kind, Mark, Oracle, Plan, Render, Secs, TaskPlan, CT};
use crate::cloudtrail::{self as ct, From, Issue, Object, Who};
use crate::out::{self, s};
use crate::pools::{
    aws_unique_id, ACCOUNT_PROD, CLI_AGENTS, DOMAIN, MEMBER_ACCOUNTS, SSO_ADMIN_ROLE,
};
use crate::rng::{hash2, hash_str};

const ATTACK_UA: &str =
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-amd64 exe/x86_64.debian.12 prompt/off";
const RCLONE_UA: &str = "rclone/v1.68.1";

/// An identity an attack owns.
enum Ident {
    Role {
        account: &'static str,
        path: &'static str,
        role: String,
        role_id: String,
        session_name: Vec<u8>,
        key: Vec<u8>,
        /// When its key was issued: known before the attack for stolen credentials, set when
        /// the `AssumeRole` is written for a chained role.
        created: Cell<i64>,
        mfa: bool,
        /// `SourceIdentity` of the session (an agent run: `agent=<id>,task=<task>`).
        source_identity: Option<String>,
    },
    User {
        account: &'static str,
        name: String,
        user_id: String,
        key: Vec<u8>,
    },
}

impl Ident {
    fn who(&self) -> Who<'_> {
        match self {
            Ident::Role {
                account,
                path,
                role,
                role_id,
                session_name,
                key,
                created,
                mfa,
                source_identity,
            } => Who::Role {
                account,
                path,
                role,
                role_id,
                session_name,
                key,
                created: created.get(),
                mfa: *mfa,
                source_identity: source_identity.as_deref(),
            },
            Ident::User {
                account,
                name,
                user_id,
                key,
            } => Who::User {
                account,
                name,
                user_id,
                key,
            },
        }
    }

    fn session_key(&self) -> String {
        let (account, kind, key) = match self {
            Ident::Role { account, key, .. } => (account, ":sts:", key),
            Ident::User { account, key, .. } => (account, ":iam-key:", key),
        };
        let mut b = Vec::new();
        s(&mut b, "aws:");
        s(&mut b, account);
        s(&mut b, kind);
        b.extend_from_slice(key);
        String::from_utf8(b).unwrap_or_default()
    }
}

fn role(
    account: &'static str,
    path: &'static str,
    name: &str,
    session_name: &str,
    seed: u64,
    created: i64,
    mfa: bool,
) -> Ident {
    let mut key = Vec::new();
    ct::key_id(&mut key, "ASIA", seed);
    Ident::Role {
        account,
        path,
        role: name.to_owned(),
        role_id: aws_unique_id("AROA", name),
        session_name: session_name.as_bytes().to_vec(),
        key,
        created: Cell::new(created),
        mfa,
        source_identity: None,
    }
}

fn user(account: &'static str, name: &str, seed: u64) -> Ident {
    let mut key = Vec::new();
    ct::key_id(&mut key, "AKIA", seed);
    Ident::User {
        account,
        name: name.to_owned(),
        user_id: aws_unique_id("AIDA", name),
        key,
    }
}

/// One API call of a script: `req`/`resp` are prebuilt JSON (empty for `null`).
struct Call {
    service: &'static str,
    name: &'static str,
    req: String,
    resp: String,
}

/// A line of a script: the delay range before the call, how it counts, the call.
type Line = (Secs, Mark, Call);

fn call(
    secs: Secs,
    mark: Mark,
    service: &'static str,
    name: &'static str,
    req: impl Into<String>,
) -> Line {
    let call = Call {
        service,
        name,
        req: req.into(),
        resp: String::new(),
    };
    (secs, mark, call)
}

/// `s3:ListBuckets`, what attackers look at first.
fn list_buckets(secs: Secs) -> Line {
    call(
        secs,
        Mark::None,
        "s3",
        "ListBuckets",
        "{\"Host\":\"s3.amazonaws.com\"}",
    )
}

impl<'p> Builder<'p> {
    /// Adds the calls of `lines` by `id` from `from`, on the attack's session `key`.
    fn aws(
        &mut self,
        id: &Rc<Ident>,
        from: u32,
        ua: &'static str,
        key: usize,
        lines: impl IntoIterator<Item = Line>,
    ) {
        self.script(CT, key, lines, |step| render(id, from, ua, step));
    }
}

fn render<'p>(id: &Rc<Ident>, from: u32, ua: &'static str, step: Call) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = ct::Call::new(&who, t, step.service, step.name, From::Ip(from));
        c.ua = ua;
        c.seed = seed;
        ct::write(
            b,
            &c,
            (!step.req.is_empty()).then_some(&|b: &mut Vec<u8>| s(b, &step.req)),
            (!step.resp.is_empty()).then_some(&|b: &mut Vec<u8>| s(b, &step.resp)),
            None,
            None,
        );
    })
}

/// An S3 object read (`GetObject`) by `id`.
fn s3_get<'p>(
    id: &Rc<Ident>,
    from: u32,
    ua: &'static str,
    bucket: &'static str,
    key: String,
    bytes: u64,
) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = ct::Call::new(&who, t, "s3", "GetObject", From::Ip(from));
        c.ua = ua;
        c.seed = seed;
        let object = Object {
            bucket,
            key: key.as_bytes(),
            bytes,
        };
        ct::s3_object(b, &mut c, &object);
    })
}

/// An S3 listing (`ListObjects`) by `id`.
fn s3_list<'p>(
    id: &Rc<Ident>,
    from: u32,
    ua: &'static str,
    bucket: &'static str,
    prefix: &'static str,
) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = ct::Call::new(&who, t, "s3", "ListObjects", From::Ip(from));
        c.ua = ua;
        c.seed = seed;
        ct::s3_list(b, &mut c, bucket, prefix);
    })
}

fn json_escape(text: &str) -> String {
    let mut b = Vec::new();
    out::esc(&mut b, text);
    String::from_utf8(b).unwrap_or_default()
}

impl Plan<'_> {
    /// The service the attack is about.
    fn service(&self) -> &crate::pools::Service {
        &self.pools.services[(self.seed % self.pools.services.len() as u64) as usize]
    }
}

/// A key or policy granted to the caller itself: an IAM user's key attaching
/// AdministratorAccess to its own user or minting a second key for it, or stolen Lambda
/// credentials putting `*:*` on their own role.
pub fn self_grant_aws<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let svc = plan.service();
    let variant = plan.variant % 3;
    let id = Rc::new(if variant == 2 {
        role(
            svc.account,
            "service-role/",
            &format!("lambda-{}", svc.name),
            svc.name,
            hash2(plan.seed, 1),
            plan.start - 60_000 * (20 + (plan.seed % 20) as i64),
            false,
        )
    } else {
        user(
            svc.account,
            &format!("svc-{}", svc.name),
            hash2(plan.seed, 1),
        )
    });
    let (name, kind_param, list) = match &*id {
        Ident::User { name, .. } => (name.clone(), "userName", "ListAttachedUserPolicies"),
        Ident::Role { role, .. } => (role.clone(), "roleName", "ListRolePolicies"),
    };
    let grant = match variant {
        0 => call(
            (30, 90),
            Mark::Trigger,
            "iam",
            "AttachUserPolicy",
            format!("{{\"userName\":\"{name}\",\"policyArn\":\"arn:aws:iam::aws:policy/AdministratorAccess\"}}"),
        ),
        1 => {
            let mut key = Vec::new();
            ct::key_id(&mut key, "AKIA", hash2(plan.seed, 2));
            let key = String::from_utf8(key).unwrap_or_default();
            let (secs, mark, mut create) = call(
                (30, 90),
                Mark::Trigger,
                "iam",
                "CreateAccessKey",
                format!("{{\"userName\":\"{name}\"}}"),
            );
            create.resp = format!("{{\"accessKey\":{{\"accessKeyId\":\"{key}\",\"status\":\"Active\",\"userName\":\"{name}\",\"createDate\":\"Nov 4, 2024, 10:00:00 AM\"}}}}");
            (secs, mark, create)
        }
        _ => call(
            (30, 90),
            Mark::Trigger,
            "iam",
            "PutRolePolicy",
            format!(
                "{{\"roleName\":\"{name}\",\"policyName\":\"sync-extra\",\"policyDocument\":\"{}\"}}",
                json_escape("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}")
            ),
        ),
    };
    let mut bld = Builder::new(plan.seed);
    bld.aws(
        &id,
        plan.attacker,
        ATTACK_UA,
        0,
        [
            call((0, 0), Mark::None, "sts", "GetCallerIdentity", ""),
            call(
                (15, 40),
                Mark::None,
                "iam",
                list,
                format!("{{\"{kind_param}\":\"{name}\"}}"),
            ),
            grant,
            call(
                (20, 60),
                Mark::None,
                "iam",
                "CreateUser",
                "{\"userName\":\"support-sync\"}",
            ),
            list_buckets((20, 60)),
        ],
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, Kind::SelfGrantAws, keys, Oracle::First)
}

/// Replayed instance credentials assume an admin-named role (`break-glass-admin`, or
/// `OrganizationAccountAccessRole` in a member account); the issued session creates a user
/// and grants it admin. The decision lands on the child, which inherits the sequence.
pub fn role_chain_admin<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let svc = plan.service();
    let a = plan.attacker;
    let mut instance = Vec::new();
    s(&mut instance, "i-0");
    out::hex(&mut instance, plan.seed, 16);
    let parent = Rc::new(role(
        ACCOUNT_PROD,
        "",
        &format!("{}-instance", svc.name),
        std::str::from_utf8(&instance).unwrap_or("i-0"),
        hash2(plan.seed, 1),
        plan.start - 60_000 * (10 + (plan.seed % 40) as i64),
        false,
    ));
    let (account, target_role) = if plan.variant.is_multiple_of(2) {
        (ACCOUNT_PROD, "break-glass-admin")
    } else {
        (
            MEMBER_ACCOUNTS[(plan.seed % 3) as usize],
            "OrganizationAccountAccessRole",
        )
    };
    let mut child_key = Vec::new();
    ct::key_id(&mut child_key, "ASIA", hash2(plan.seed, 2));
    // Created when the AssumeRole is written; the attacker's first child call follows
    // within seconds.
    let child = Rc::new(Ident::Role {
        account,
        path: "",
        role: target_role.to_owned(),
        role_id: "AROAQ7BREAKGLASS2ZK4M".to_owned(),
        session_name: b"ops".to_vec(),
        key: child_key,
        created: Cell::new(plan.start),
        mfa: false,
        source_identity: None,
    });
    let mut bld = Builder::new(plan.seed);
    bld.aws(
        &parent,
        a,
        ATTACK_UA,
        1,
        [call(
            (0, 0),
            Mark::None,
            "iam",
            "ListRoles",
            "{\"maxItems\":1000}",
        )],
    );
    bld.add((20, 60), CT, 1, Mark::None, assume(&parent, &child, a));
    let new_user = format!("support-sync-{}", plan.seed % 1000);
    bld.aws(
        &child,
        a,
        ATTACK_UA,
        0,
        [
            call((10, 30), Mark::None, "sts", "GetCallerIdentity", ""),
            call(
                (10, 30),
                Mark::None,
                "iam",
                "ListUsers",
                "{\"maxItems\":1000}",
            ),
            call(
                (20, 40),
                Mark::Trigger,
                "iam",
                "CreateUser",
                format!("{{\"userName\":\"{new_user}\"}}"),
            ),
            call(
                (15, 40),
                Mark::None,
                "iam",
                "AttachUserPolicy",
                format!("{{\"userName\":\"{new_user}\",\"policyArn\":\"arn:aws:iam::aws:policy/AdministratorAccess\"}}"),
            ),
            call(
                (15, 40),
                Mark::None,
                "iam",
                "CreateAccessKey",
                format!("{{\"userName\":\"{new_user}\"}}"),
            ),
        ],
    );
    let keys = vec![(CT, child.session_key()), (CT, parent.session_key())];
    bld.finish(plan, Kind::RoleChainAdmin, keys, Oracle::First)
}

/// `parent` assumes `child`'s role, issuing its key (and fixing its creation time).
fn assume<'p>(parent: &Rc<Ident>, child: &Rc<Ident>, from: u32) -> Render<'p> {
    let parent = Rc::clone(parent);
    let child = Rc::clone(child);
    Box::new(move |b, t, seed| {
        let Ident::Role {
            account,
            role,
            role_id,
            session_name,
            key,
            created,
            ..
        } = &*child
        else {
            return;
        };
        created.set(t);
        let issue = Issue {
            account,
            role,
            role_id,
            session_name,
            child_key: key,
            duration_s: 3600,
            source_identity: None,
            t,
        };
        ct::assume_role(b, &parent.who(), From::Ip(from), ATTACK_UA, &issue, seed);
    })
}

/// Stolen notebook credentials pull many small objects with rclone: ≥ 60 in 5 minutes.
pub fn s3_bulk_read<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let a = plan.attacker;
    let id = Rc::new(role(
        ACCOUNT_PROD,
        "service-role/",
        "analytics-notebook",
        "SageMaker",
        hash2(plan.seed, 1),
        plan.start - 1_800_000,
        false,
    ));
    let bucket = "northwind-finance-statements";
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        s3_list(&id, a, RCLONE_UA, bucket, "statements/"),
    );
    for n in 0..80u64 {
        let key = format!(
            "statements/2024/{:02}/stmt-{:06}.pdf",
            1 + n % 10,
            100_000 + hash2(plan.seed, n) % 900_000
        );
        let bytes = 20_000 + hash2(plan.seed, n ^ 0xb) % 380_000;
        let get = s3_get(&id, a, RCLONE_UA, bucket, key, bytes);
        bld.add((1, 3), CT, 0, Mark::Count, get);
    }
    let keys = vec![(CT, id.session_key())];
    let oracle = Oracle::Count {
        span: 300_000,
        threshold: 60,
        seen: Vec::new(),
    };
    bld.finish(plan, Kind::S3BulkRead, keys, oracle)
}

/// A leaked IAM user key downloads database dumps of 70–98 MB: ≥ 600 MB in 10 minutes.
pub fn s3_bulk_bytes<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let a = plan.attacker;
    let id = Rc::new(user(ACCOUNT_PROD, "backup-verifier", hash2(plan.seed, 1)));
    let bucket = "northwind-db-backups";
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        s3_list(&id, a, ATTACK_UA, bucket, "postgres/"),
    );
    for n in 0..11u64 {
        let key = format!("postgres/orders/2024-10-{:02}/dump.sql.gz", 1 + n);
        let bytes = 70_000_000 + hash2(plan.seed, n) % 28_000_000;
        let get = s3_get(&id, a, ATTACK_UA, bucket, key, bytes);
        bld.add((25, 45), CT, 0, Mark::Amount(bytes), get);
    }
    let keys = vec![(CT, id.session_key())];
    let oracle = Oracle::Sum {
        span: 600_000,
        threshold: 600_000_000,
        seen: Vec::new(),
    };
    bld.finish(plan, Kind::S3BulkBytes, keys, oracle)
}

/// Stolen task credentials list the secrets and read sixteen of them by ARN: ≥ 12 distinct in
/// 5 minutes.
pub fn secrets_burst<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let pools = plan.pools;
    let svc = plan.service();
    let id = Rc::new(role(
        svc.account,
        "",
        &svc.role,
        "ecs-task",
        hash2(plan.seed, 1),
        plan.start - 1_200_000,
        false,
    ));
    let list = call(
        (0, 0),
        Mark::None,
        "secretsmanager",
        "ListSecrets",
        "{\"maxResults\":100}",
    );
    let reads = (0..16usize).map(|n| {
        let other = &pools.services[(n * 7 + plan.seed as usize) % pools.services.len()];
        let mut suffix = Vec::new();
        out::chars(&mut suffix, out::BASE62, hash2(plan.seed, n as u64), 6);
        let arn = format!(
            "arn:aws:secretsmanager:us-east-1:{}:secret:prod/{}/db-credentials-{}",
            svc.account,
            other.name,
            String::from_utf8(suffix).unwrap_or_default()
        );
        call(
            (4, 11),
            Mark::Value(hash_str(&arn)),
            "secretsmanager",
            "GetSecretValue",
            format!("{{\"secretId\":\"{arn}\"}}"),
        )
    });
    let mut bld = Builder::new(plan.seed);
    bld.aws(
        &id,
        plan.attacker,
        ATTACK_UA,
        0,
        std::iter::once(list).chain(reads),
    );
    let keys = vec![(CT, id.session_key())];
    let oracle = Oracle::Distinct {
        span: 300_000,
        threshold: 12,
        seen: Vec::new(),
    };
    bld.finish(plan, Kind::SecretsBurst, keys, oracle)
}

/// A task's credentials used from its VPC address, then replayed from outside.
pub fn aws_reuse<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let svc = plan.service();
    let id = Rc::new(role(
        svc.account,
        "",
        &svc.role,
        "ecs-task",
        hash2(plan.seed, 1),
        plan.start - 900_000,
        false,
    ));
    let home = crate::pools::private_ip(svc.vpc, plan.seed);
    let get_item = |secs| {
        call(
            secs,
            Mark::None,
            "dynamodb",
            "GetItem",
            format!(
                "{{\"tableName\":\"{}\",\"key\":{{\"pk\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}}}}",
                svc.table
            ),
        )
    };
    let mut bld = Builder::new(plan.seed);
    bld.aws(&id, home, svc.ua, 0, (0..4).map(|_| get_item((10, 60))));
    bld.aws(
        &id,
        plan.attacker,
        ATTACK_UA,
        0,
        [
            call((30, 120), Mark::Trigger, "sts", "GetCallerIdentity", ""),
            list_buckets((10, 40)),
        ],
    );
    bld.aws(&id, home, svc.ua, 0, [get_item((10, 40))]);
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, Kind::TokenReuseNetwork, keys, Oracle::First)
}

/// An administrator's SSO session, issued more than an hour ago, attaches a policy to another
/// role: a stale privileged session changing permissions (step-up, not a kill).
pub fn stale_privileged<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let pools = plan.pools;
    let admin = pools.admins[(plan.seed % pools.admins.len() as u64) as usize] as usize;
    let p = &pools.people[admin];
    let created = (plan.start - 60_000 * (75 + (plan.seed % 90) as i64)) / 1000 * 1000;
    let id = Rc::new(role(
        ACCOUNT_PROD,
        "aws-reserved/sso.amazonaws.com/",
        SSO_ADMIN_ROLE,
        &format!("{}@{}", p.login, DOMAIN),
        hash2(plan.seed, 1),
        created,
        true,
    ));
    let from = if p.in_office {
        0xc633_6400 | 31
    } else {
        p.home_net | 9
    };
    let target = plan.service();
    let target_role = format!("{{\"roleName\":\"{}\"}}", target.role);
    let mut bld = Builder::new(plan.seed);
    bld.aws(
        &id,
        from,
        CLI_AGENTS[p.cli],
        0,
        [
            call((0, 0), Mark::None, "iam", "ListRoles", "{\"maxItems\":100}"),
            call((20, 60), Mark::None, "iam", "GetRole", target_role.clone()),
            call(
                (30, 90),
                Mark::Trigger,
                "iam",
                "AttachRolePolicy",
                format!("{{\"roleName\":\"{}\",\"policyArn\":\"arn:aws:iam::aws:policy/AmazonS3FullAccess\"}}", target.role),
            ),
            call(
                (15, 40),
                Mark::None,
                "iam",
                "ListAttachedRolePolicies",
                target_role,
            ),
        ],
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, Kind::StalePrivilegedChange, keys, Oracle::First)
}

/// A leaked IAM user key looks around, then makes one move that outlives its revocation:
/// stopping the trail or deleting flow logs (`BlindTrail`), or sharing an image or opening a
/// role's trust to an account outside the organization (`ExternalShare`).
pub fn leaked_key_move<'p>(plan: &Plan<'p>, kind: Kind) -> Attack<'p> {
    let svc = plan.service();
    let id = Rc::new(user(
        svc.account,
        &format!("svc-{}", svc.name),
        hash2(plan.seed, 3),
    ));
    // An account no pool uses: outside the organization.
    let outsider = format!(
        "{:012}",
        100_000_000_000 + hash2(plan.seed, 4) % 800_000_000_000
    );
    let look = |service, name, req: &str| call((15, 60), Mark::None, service, name, req);
    let act = |service, name, req: String| call((30, 120), Mark::Trigger, service, name, req);
    let (look, act) = match (kind, plan.variant % 2) {
        (Kind::BlindTrail, 0) => (
            look("cloudtrail", "DescribeTrails", "{}"),
            act("cloudtrail", "StopLogging", "{\"name\":\"org-trail\"}".to_owned()),
        ),
        (Kind::BlindTrail, _) => (
            look("ec2", "DescribeFlowLogs", "{}"),
            act(
                "ec2",
                "DeleteFlowLogs",
                "{\"DeleteFlowLogsRequest\":{\"FlowLogId\":{\"content\":\"fl-0a1b2c3d4e5f60718\",\"tag\":1}}}".to_owned(),
            ),
        ),
        (_, 0) => (
            look("ec2", "DescribeImages", "{\"ownersSet\":{\"items\":[{\"owner\":\"self\"}]}}"),
            act(
                "ec2",
                "ModifyImageAttribute",
                format!("{{\"imageId\":\"ami-0{:016x}\",\"attributeType\":\"launchPermission\",\"launchPermission\":{{\"add\":{{\"items\":[{{\"userId\":\"{outsider}\"}}]}}}}}}", hash2(plan.seed, 5)),
            ),
        ),
        (_, _) => (
            look("iam", "ListRoles", "{}"),
            act(
                "iam",
                "UpdateAssumeRolePolicy",
                format!(
                    "{{\"roleName\":\"{}-ops\",\"policyDocument\":\"{}\"}}",
                    svc.name,
                    json_escape(&format!("{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"arn:aws:iam::{outsider}:root\"}},\"Action\":\"sts:AssumeRole\"}}]}}"))
                ),
            ),
        ),
    };
    let mut bld = Builder::new(plan.seed);
    bld.aws(
        &id,
        plan.attacker,
        ATTACK_UA,
        0,
        [
            call((0, 0), Mark::None, "sts", "GetCallerIdentity", ""),
            look,
            act,
            list_buckets((20, 60)),
        ],
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, kind, keys, Oracle::First)
}

// ------------------------------------------------------------------------------------------
// Agents bound to a task grant (`--agent-tasks`)
// ------------------------------------------------------------------------------------------

/// Agents of the attacks on task grants: (agent id, its bucket). Their grants allow listing and
/// reading their bucket's `inbox/`, writing its `outbox/`, calling their model and reading their
/// own API token (`prod/agents/<id>/api-token`).
pub const TASK_AGENTS: &[(&str, &str)] = &[
    ("invoice-matcher", "northwind-agent-invoice-matcher"),
    ("vendor-onboarder", "northwind-agent-vendor-onboarder"),
    ("contract-reviewer", "northwind-agent-contract-reviewer"),
];

const AGENT_ATTACK_UA: &str = "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/linux#6.1.109-118.189.amzn2023.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#adaptive Botocore/1.35.30 agent-runtime/0.9.2";

/// An S3 object call (`GetObject`, `PutObject`) by `id`.
fn s3_object_call<'p>(
    id: &Rc<Ident>,
    from: u32,
    name: &'static str,
    bucket: &'static str,
    key: String,
    bytes: u64,
) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = ct::Call::new(&who, t, "s3", name, From::Ip(from));
        c.ua = AGENT_ATTACK_UA;
        c.seed = seed;
        let object = Object {
            bucket,
            key: key.as_bytes(),
            bytes,
        };
        ct::s3_object(b, &mut c, &object);
    })
}

/// A run of a task agent: its role session, bound to `task` by its source identity, and the
/// first steps of its task (list the inbox, read three inputs, call the model).
fn agent_run<'p>(plan: &Plan<'p>, bld: &mut Builder<'p>, task: &TaskPlan) -> Rc<Ident> {
    let mut id = role(
        ACCOUNT_PROD,
        "",
        &format!("agent-{}", task.agent),
        &format!("run-{}", 10_000 + plan.seed % 90_000),
        hash2(plan.seed, 1),
        plan.start - 5_000,
        false,
    );
    if let Ident::Role {
        source_identity, ..
    } = &mut id
    {
        *source_identity = Some(format!("agent={},task={}", task.agent, task.task));
    }
    let id = Rc::new(id);
    let from = 0x0a14_0300 | (plan.seed % 200 + 20) as u32;
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        s3_list(&id, from, AGENT_ATTACK_UA, task.bucket, "inbox/"),
    );
    for n in 0..3u64 {
        let key = format!(
            "inbox/{}-{:04}.json",
            task.task,
            hash2(plan.seed, n) % 10_000
        );
        let get = s3_object_call(&id, from, "GetObject", task.bucket, key, 2_000 + n * 977);
        bld.add((2, 5), CT, 0, Mark::None, get);
    }
    let model = call(
        (2, 4),
        Mark::None,
        "bedrock",
        "InvokeModel",
        "{\"modelId\":\"anthropic.claude-3-5-sonnet-20240620-v1:0\"}",
    );
    bld.aws(&id, from, AGENT_ATTACK_UA, 0, [model]);
    id
}

fn task_plan(plan: &Plan<'_>, complete_after: Option<usize>) -> TaskPlan {
    let (agent, bucket) = TASK_AGENTS[(plan.seed % TASK_AGENTS.len() as u64) as usize];
    TaskPlan {
        agent,
        bucket,
        task: format!("{}-{}", &agent[..3], 1_000 + plan.seed % 9_000),
        granted: plan.start - 60_000,
        complete_after,
    }
}

/// A task agent, steered by its input, reads another agent's API token: outside its grant.
pub fn agent_outside_grant<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let task = task_plan(plan, None);
    let id = agent_run(plan, &mut bld, &task);
    let from = 0x0a14_0300 | (plan.seed % 200 + 20) as u32;
    let (other, _) = TASK_AGENTS[((plan.seed + 1) % TASK_AGENTS.len() as u64) as usize];
    let steal = call(
        (3, 8),
        Mark::Trigger,
        "secretsmanager",
        "GetSecretValue",
        format!("{{\"secretId\":\"prod/agents/{other}/api-token\"}}"),
    );
    bld.aws(&id, from, AGENT_ATTACK_UA, 0, [steal]);
    let key = format!("inbox/{}-extra.json", task.task);
    bld.add(
        (3, 6),
        CT,
        0,
        Mark::None,
        s3_object_call(&id, from, "GetObject", task.bucket, key, 3_100),
    );
    let keys = vec![(CT, id.session_key())];
    let mut attack = bld.finish(plan, Kind::AgentOutsideGrant, keys, Oracle::First);
    attack.task = Some(task);
    attack
}

/// A task agent writes its result, its task is completed, and it goes on reading its inbox.
pub fn agent_after_task<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    // Steps 0-4 are the run's start; step 5 writes the result, after which the orchestrator
    // completes the task.
    let task = task_plan(plan, Some(5));
    let id = agent_run(plan, &mut bld, &task);
    let from = 0x0a14_0300 | (plan.seed % 200 + 20) as u32;
    let result = format!("outbox/{}-result.md", task.task);
    bld.add(
        (2, 4),
        CT,
        0,
        Mark::None,
        s3_object_call(&id, from, "PutObject", task.bucket, result, 5_400),
    );
    for n in 0..2u64 {
        let key = format!("inbox/{}-late-{n}.json", task.task);
        let mark = if n == 0 { Mark::Trigger } else { Mark::None };
        let secs = if n == 0 { (20, 40) } else { (3, 6) };
        bld.add(
            secs,
            CT,
            0,
            mark,
            s3_object_call(&id, from, "GetObject", task.bucket, key, 2_500),
        );
    }
    let keys = vec![(CT, id.session_key())];
    let mut attack = bld.finish(plan, Kind::AgentAfterTask, keys, Oracle::First);
    attack.task = Some(task);
    attack
}
