//! What each kind of benign AWS session does: one table of weighted calls per persona
//! ([`super::template`]), with functions for the calls that draw, loop or spawn a session.
//!
//! The tables' order and weights are part of the output: a row's index is what the random
//! stream picks, so reordering rows changes every run (`scripts/gen-identity.sh` shows it).

use super::benign::{deployer_role, AGENTS, AGENT_IDENTITIES, AGENT_ROLES, DEFAULT_ROLE_ID};
use super::calls::{
    dynamodb, get_secret, kms_decrypt, run_instances_response, sqs, table_resource,
    task_definition, QUEUE_OPS, TABLE_OPS,
};
use super::template::{call, play, run, w, Ctx, Draw, Row, Tpl, MANAGED_POLICIES, P, P::*};
use super::{
    assume_role, key_id, object_key, object_size, s3_list, s3_object, write, Call, From, Issue,
    Object, Who,
};
use crate::out::{self, s};
use crate::pools::{
    private_ip, ACCOUNT_PROD, ACCOUNT_SHARED, CLI_AGENTS, MEMBER_ACCOUNTS, ORG, REGIONS,
};
use crate::rng::{hash2, hash_str};
use crate::session::{Env, Profile, Sess};

// ------------------------------------------------------------------------------------------
// Calls several personas make
// ------------------------------------------------------------------------------------------

const GET_CALLER_IDENTITY: Tpl = call("sts", "GetCallerIdentity", &[]);
const LIST_BUCKETS: Tpl =
    call("s3", "ListBuckets", &[L("{\"Host\":\"s3.amazonaws.com\"}")]).host("s3.amazonaws.com");
const SECURITY_GROUPS: &[P] = &[L(
    "{\"securityGroupSet\":{},\"securityGroupIdSet\":{},\"filterSet\":{}}",
)];
const LIST_ROLES: Tpl = call("iam", "ListRoles", &[L("{\"maxItems\":100}")]);
/// `{"roleName":<the service's role>}`.
const ROLE: &[P] = &[L("{\"roleName\":\""), Role, L("\"}")];
const DESCRIBE_SERVICES: Tpl = call(
    "ecs",
    "DescribeServices",
    &[L("{\"cluster\":\"prod\",\"services\":[\""), Name, L("\"]}")],
);
const ATTACH_ROLE_POLICY: Tpl = call(
    "iam",
    "AttachRolePolicy",
    &[
        L("{\"roleName\":\""),
        Role,
        L("\",\"policyArn\":\""),
        Policy,
        L("\"}"),
    ],
)
.draw(Draw::Policy);
/// A key for the service's user, not for the caller.
const CREATE_ACCESS_KEY: Tpl = call(
    "iam",
    "CreateAccessKey",
    &[L("{\"userName\":\"svc-"), Name, L("\"}")],
)
.resp(&[
    L("{\"accessKey\":{\"accessKeyId\":\""),
    AccessKey(0xacce55),
    L("\",\"status\":\"Active\",\"userName\":\"svc-"),
    Name,
    L("\",\"createDate\":\""),
    AwsDate,
    L("\"}}"),
]);

/// An S3 object-level data event (`c.name`: `GetObject`, `HeadObject`, `PutObject`).
fn s3(b: &mut Vec<u8>, c: &mut Call<'_>, bucket: &str, key: &[u8], bytes: u64) {
    s3_object(b, c, &Object { bucket, key, bytes });
}

// ------------------------------------------------------------------------------------------
// Services
// ------------------------------------------------------------------------------------------

/// An ECS task, Lambda or instance of a service: its table, queue, secrets and bucket.
pub fn workload(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let svc = &env.pools.services[sess.who as usize];
    let x = Ctx {
        ua: svc.ua,
        svc: Some(svc),
        ..*x
    };
    play(env, sess, &x, WORKLOAD, b);
}

const WORKLOAD: &[Row] = &[
    run(14, workload_table::<0>),
    run(12, workload_table::<1>),
    run(8, workload_table::<2>),
    run(8, workload_queue::<0>),
    run(6, workload_queue::<1>),
    run(5, workload_queue::<2>),
    run(10, workload_decrypt),
    run(7, workload_secret),
    run(9, workload_s3::<true>),
    run(6, workload_s3::<false>),
    w(
        5,
        call(
            "ssm",
            "GetParameters",
            &[
                L("{\"names\":[\"/prod/"),
                Name,
                L("/config\",\"/prod/"),
                Name,
                L("/feature-flags\"],\"withDecryption\":true}"),
            ],
        )
        .read_only(true),
    ),
    w(2, GET_CALLER_IDENTITY),
    w(
        3,
        call(
            "events",
            "PutEvents",
            &[
                L("{\"entries\":[{\"source\":\"northwind."),
                Name,
                L("\",\"detailType\":\"StateChanged\",\"detail\":\"HIDDEN_DUE_TO_SECURITY_REASONS\",\"eventBusName\":\"default\"}]}"),
            ],
        )
        .resp(&[
            L("{\"failedEntryCount\":0,\"entries\":[{\"eventId\":\""),
            Uuid(0xeb),
            L("\"}]}"),
        ]),
    ),
    w(
        3,
        call(
            "sns",
            "Publish",
            &[
                L("{\"topicArn\":\"arn:aws:sns:us-east-1:"),
                SvcAccount,
                L(":"),
                Name,
                L("-notifications\",\"message\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}"),
            ],
        )
        .resp(&[L("{\"messageId\":\""), Uuid(0x5e), L("\"}")]),
    ),
];

fn workload_table<const OP: usize>(
    env: &mut Env<'_>,
    sess: &mut Sess,
    x: &Ctx<'_>,
    b: &mut Vec<u8>,
) {
    let svc = &env.pools.services[sess.who as usize];
    dynamodb(
        b,
        &mut x.call("dynamodb", TABLE_OPS[OP]),
        svc.account,
        &svc.table,
        OP,
    );
}

fn workload_queue<const OP: usize>(
    env: &mut Env<'_>,
    sess: &mut Sess,
    x: &Ctx<'_>,
    b: &mut Vec<u8>,
) {
    let svc = &env.pools.services[sess.who as usize];
    sqs(
        b,
        &mut x.call("sqs", QUEUE_OPS[OP]),
        svc.account,
        &svc.queue,
        x.seed,
    );
}

fn workload_decrypt(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let svc = &env.pools.services[sess.who as usize];
    let secret = env.rng.pick(&svc.secrets);
    kms_decrypt(
        b,
        &mut x.call("kms", "Decrypt"),
        svc.account,
        secret,
        x.seed,
    );
}

fn workload_secret(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let svc = &env.pools.services[sess.who as usize];
    let secret = env.rng.pick(&svc.secrets);
    get_secret(b, &x.call("secretsmanager", "GetSecretValue"), secret);
}

/// A config read (`READ`, while the session stays within its S3 habits) or an event upload.
fn workload_s3<const READ: bool>(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let svc = &env.pools.services[sess.who as usize];
    let size = object_size(env);
    let mut k = Vec::with_capacity(96);
    if READ && sess.s3_read_allowed(x.t, size) {
        s(&mut k, "config/");
        out::u(&mut k, env.rng.below(16));
        s(&mut k, ".json");
        let mut c = x.call("s3", "GetObject");
        s3(b, &mut c, &svc.bucket, &k, size.min(200_000));
    } else {
        object_key(&mut k, "events/", x.t, x.seed, ".json.gz");
        let mut c = x.call("s3", "PutObject");
        s3(b, &mut c, &svc.bucket, &k, size);
    }
}

// ------------------------------------------------------------------------------------------
// People
// ------------------------------------------------------------------------------------------

const ATHENA: &str = "athena.amazonaws.com";

/// A person's console sign-in: the first record of a console session.
pub fn console_login(x: &Ctx<'_>, b: &mut Vec<u8>) {
    let mut c = x.call("signin", "ConsoleLogin");
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

/// A person at work in AWS (from the CLI, or the console after its sign-in): reads,
/// listings, queries; Athena queries that make Athena read S3 for the session.
pub fn human(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let x = Ctx {
        svc: Some(&pools.services[(sess.aux as usize / 7) % pools.services.len()]),
        region: REGIONS[(sess.aux % REGIONS.len() as u32) as usize],
        ..*x
    };
    if sess.pending > 0 {
        athena_reads(env, sess, &x, b);
    } else {
        play(env, sess, &x, HUMAN, b);
    }
}

const HUMAN: &[Row] = &[
    w(
        8,
        call(
            "ec2",
            "DescribeInstances",
            &[
                L("{\"instancesSet\":{},\"filterSet\":{\"items\":[{\"name\":\"tag:Service\",\"valueSet\":{\"items\":[{\"value\":\""),
                Name,
                L("\"}]}},{\"name\":\"instance-state-name\",\"valueSet\":{\"items\":[{\"value\":\"running\"}]}}]}}"),
            ],
        )
        .regional(),
    ),
    w(3, call("ec2", "DescribeSecurityGroups", SECURITY_GROUPS).regional()),
    w(3, LIST_BUCKETS),
    run(8, human_list),
    run(6, human_read),
    w(
        6,
        call(
            "monitoring",
            "GetMetricData",
            &[
                L("{\"metricDataQueries\":[{\"id\":\"m1\",\"metricStat\":{\"metric\":{\"namespace\":\"AWS/ECS\",\"metricName\":\"CPUUtilization\",\"dimensions\":[{\"name\":\"ServiceName\",\"value\":\""),
                Name,
                L("\"},{\"name\":\"ClusterName\",\"value\":\"prod\"}]},\"period\":60,\"stat\":\"Average\"},\"returnData\":true}],\"startTime\":\""),
                TimeS(-3_600_000),
                L("\",\"endTime\":\""),
                TimeS(0),
                L("\"}"),
            ],
        )
        .regional(),
    ),
    w(
        6,
        call(
            "logs",
            "FilterLogEvents",
            &[
                L("{\"logGroupName\":\"/ecs/"),
                Name,
                L("\",\"startTime\":"),
                Millis(-900_000),
                L(",\"filterPattern\":\"ERROR\",\"interleaved\":true}"),
            ],
        )
        .regional(),
    ),
    w(2, call("lambda", "ListFunctions20150331", &[]).regional()),
    w(
        3,
        call(
            "lambda",
            "GetFunction20150331v2",
            &[L("{\"functionName\":\""), Name, L("\"}")],
        )
        .regional(),
    ),
    w(2, call("iam", "GetRole", ROLE)),
    w(1, LIST_ROLES),
    w(
        4,
        call(
            "cloudformation",
            "DescribeStacks",
            &[L("{\"stackName\":\""), Name, L("-prod\"}")],
        )
        .regional(),
    ),
    run(4, athena_query),
    w(4, call("athena", "GetQueryExecution", QUERY_EXECUTION)),
    w(3, call("athena", "GetQueryResults", QUERY_EXECUTION)),
    w(
        2,
        call(
            "dynamodb",
            "DescribeTable",
            &[L("{\"tableName\":\""), Table, L("\"}")],
        )
        .resources(&[F(|b, x| {
            if let Some(svc) = x.svc {
                table_resource(b, svc.account, &svc.table);
            }
        })]),
    ),
    w(4, DESCRIBE_SERVICES),
    w(3, GET_CALLER_IDENTITY),
];

const QUERY_EXECUTION: &[P] = &[L("{\"queryExecutionId\":\""), Uuid(0xa9), L("\"}")];

fn human_list(_: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    if let Some(svc) = x.svc {
        s3_list(b, &mut x.call("s3", "ListObjects"), &svc.bucket, "events/");
    }
}

/// Yesterday's events: read while the session stays within its S3 habits, else only headed.
fn human_read(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    let size = object_size(env);
    let (name, bytes) = if sess.s3_read_allowed(x.t, size) {
        ("GetObject", size)
    } else {
        ("HeadObject", 0)
    };
    let mut k = Vec::with_capacity(96);
    object_key(&mut k, "events/", x.t - 86_400_000, x.seed, ".json.gz");
    s3(b, &mut x.call("s3", name), &svc.bucket, &k, bytes);
}

/// A query: its text is logged whole, from a few lines to several KB; Athena then reads S3
/// for the session ([`athena_reads`]).
fn athena_query(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    let mut c = x.call("athena", "StartQueryExecution");
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

/// Athena reads the query's data on the session's behalf: no client address, the service as
/// user agent. Count and bytes rules leave these out.
fn athena_reads(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    sess.pending -= 1;
    let x = Ctx {
        from: From::Service(ATHENA),
        ..*x
    };
    if sess.pending % 40 == 39 {
        let get_table = call(
            "glue",
            "GetTable",
            &[
                L("{\"catalogId\":\""),
                Account,
                L("\",\"databaseName\":\"analytics\",\"name\":\""),
                Table,
                L("_events\"}"),
            ],
        );
        get_table.write(&x, b);
        return;
    }
    let mut k = Vec::with_capacity(96);
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
    s3(
        b,
        &mut x.call("s3", "GetObject"),
        "northwind-data-lake",
        &k,
        bytes,
    );
}

/// An administrator's fresh SSO session: reads IAM and changes *other* principals (a service
/// drawn per call).
pub fn admin(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let target = &pools.services[env.rng.below(pools.services.len() as u64) as usize];
    let x = Ctx {
        svc: Some(target),
        ..*x
    };
    play(env, sess, &x, ADMIN, b);
}

const ADMIN: &[Row] = &[
    w(6, LIST_ROLES),
    w(5, call("iam", "GetRole", ROLE)),
    w(4, call("iam", "ListAttachedRolePolicies", ROLE)),
    w(3, ATTACH_ROLE_POLICY),
    w(
        3,
        Tpl {
            name: "DetachRolePolicy",
            ..ATTACH_ROLE_POLICY
        },
    ),
    w(
        3,
        call(
            "iam",
            "PutRolePolicy",
            &[
                L("{\"roleName\":\""),
                Role,
                L("\",\"policyName\":\""),
                Name,
                L("-inline\",\"policyDocument\":\""),
                PolicyDoc,
                L("\"}"),
            ],
        )
        .draw(ADMIN_STATEMENTS),
    ),
    // Draws a document it does not write, as the inline policy does.
    w(
        2,
        call(
            "iam",
            "UpdateAssumeRolePolicy",
            &[
                L("{\"roleName\":\""),
                Role,
                L("\",\"policyDocument\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":\\\"Allow\\\",\\\"Principal\\\":{\\\"Service\\\":\\\"ecs-tasks.amazonaws.com\\\"},\\\"Action\\\":\\\"sts:AssumeRole\\\"}]}\"}"),
            ],
        )
        .draw(ADMIN_STATEMENTS),
    ),
    w(2, CREATE_ACCESS_KEY),
    run(2, attach_user_policy),
    w(1, call("iam", "ListUsers", &[L("{\"maxItems\":100}")])),
    w(
        1,
        call(
            "organizations",
            "DescribeAccount",
            &[L("{\"accountId\":\"615482093771\"}")],
        ),
    ),
];

const ADMIN_STATEMENTS: Draw = Draw::Statements { min: 1.0, max: 24 };

/// A managed policy attached to another person's IAM user.
fn attach_user_policy(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let policy = env.rng.pick(MANAGED_POLICIES);
    let other = env.rng.below(pools.people.len() as u64) as usize;
    let other = if other as u32 == sess.who {
        (other + 1) % pools.people.len()
    } else {
        other
    };
    write(
        b,
        &x.call("iam", "AttachUserPolicy"),
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

// ------------------------------------------------------------------------------------------
// Pipelines
// ------------------------------------------------------------------------------------------

const DEPLOY_UA: &str =
    "aws-sdk-nodejs/2.1691.0 linux/v20.17.0 configure-aws-credentials-for-github-actions promise";
const DEPLOY_UA_CLI: &str = "aws-cli/2.18.2 md/awscrt#0.22.0 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#ecs.update-service";

/// GitHub Actions deploying one service: the web-identity exchange first, then registry,
/// task definitions (several KB), service updates, launches and stack changes.
pub fn deployer(
    env: &mut Env<'_>,
    sess: &mut Sess,
    x: &Ctx<'_>,
    sub: &mut Vec<u8>,
    b: &mut Vec<u8>,
) {
    let svc = &env.pools.services[sess.who as usize];
    let x = Ctx {
        ua: DEPLOY_UA_CLI,
        svc: Some(svc),
        ..*x
    };
    match sess.step {
        0 => web_identity(&x, svc.name, sub, b),
        1 => call(
            "ecr",
            "GetAuthorizationToken",
            &[L("{\"registryIds\":[\"482915736014\"]}")],
        )
        .write(&x, b),
        _ => play(env, sess, &x, DEPLOYER, b),
    }
}

const DEPLOYER: &[Row] = &[
    run(3, put_image),
    w(
        2,
        call(
            "ecs",
            "DescribeTaskDefinition",
            &[L("{\"taskDefinition\":\"orders-api\"}")],
        ),
    ),
    run(4, register_task_definition),
    w(
        3,
        call(
            "ecs",
            "UpdateService",
            &[
                L("{\"cluster\":\"prod\",\"service\":\""),
                Name,
                L("\",\"taskDefinition\":\""),
                Name,
                L(":"),
                Num(100, 400),
                L("\",\"forceNewDeployment\":false}"),
            ],
        ),
    ),
    w(2, DESCRIBE_SERVICES),
    w(
        2,
        call(
            "lambda",
            "UpdateFunctionCode20150331v2",
            &[
                L("{\"functionName\":\""),
                Name,
                L("\",\"publish\":true,\"s3Bucket\":\"northwind-build-artifacts\",\"s3Key\":\""),
                Name,
                L("/"),
                Hex(0x7a9, 12),
                L(".zip\"}"),
            ],
        )
        .resp(&[
            L("{\"functionName\":\""),
            Name,
            L("\",\"functionArn\":\"arn:aws:lambda:us-east-1:482915736014:function:"),
            Name,
            L("\",\"runtime\":\"nodejs20.x\",\"role\":\"arn:aws:iam::482915736014:role/service-role/lambda-"),
            Name,
            L("\",\"handler\":\"index.handler\",\"codeSize\":"),
            Num(40_000, 9_000_000),
            L(",\"timeout\":30,\"memorySize\":512,\"codeSha256\":\""),
            Base64(0xc5, 32),
            L("\",\"version\":\""),
            Num(1, 300),
            L("\",\"tracingConfig\":{\"mode\":\"PassThrough\"},\"state\":\"Active\",\"lastUpdateStatus\":\"InProgress\",\"packageType\":\"Zip\",\"architectures\":[\"arm64\"]}"),
        ]),
    ),
    run(2, create_change_set),
    // An instance launch: the response describes the instance at length.
    w(
        1,
        call(
            "ec2",
            "RunInstances",
            &[
                L("{\"instancesSet\":{\"items\":[{\"imageId\":\"ami-0"),
                Hex(0xa1, 16),
                L("\",\"minCount\":1,\"maxCount\":1}]},\"instanceType\":\"m7g.large\",\"blockDeviceMapping\":{},\"monitoring\":{\"enabled\":false},\"disableApiTermination\":false,\"disableApiStop\":false,\"clientToken\":\""),
                Uuid(0xa2),
                L("\",\"iamInstanceProfile\":{\"name\":\""),
                Name,
                L("-instance\"},\"tagSpecificationSet\":{\"items\":[{\"resourceType\":\"instance\",\"tags\":[{\"key\":\"Service\",\"value\":\""),
                Name,
                L("\"},{\"key\":\"DeployedBy\",\"value\":\"github-actions\"}]}]}}"),
            ],
        )
        .resp(&[F(|b, x| {
            if let Some(svc) = x.svc {
                run_instances_response(b, svc.name, x.seed);
            }
        })]),
    ),
    run(2, put_artifact),
];

/// The deployment's first call: its GitHub OIDC token exchanged for the role's credentials
/// (the session's own key, issued by this call).
fn web_identity(x: &Ctx<'_>, service: &str, sub: &mut Vec<u8>, b: &mut Vec<u8>) {
    sub.clear();
    s(sub, "repo:");
    s(sub, ORG);
    sub.push(b'/');
    s(sub, service);
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
    c.ua = DEPLOY_UA;
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
}

/// An image pushed with its manifest (3–14 layers).
fn put_image(env: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    let layers = env.rng.range(3, 14);
    write(
        b,
        &x.call("ecr", "PutImage"),
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
                out::u(b, 1_000 + hash2(x.seed, n) % 50_000_000);
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

/// Task definitions are the long tail of CloudTrail request sizes.
fn register_task_definition(env: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    let containers = env.rng.range(1, 4);
    let env_vars = (env.rng.pareto(6.0, 1.3) as u64).min(80);
    write(
        b,
        &x.call("ecs", "RegisterTaskDefinition"),
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

/// A stack change set with a long-tailed parameter list.
fn create_change_set(env: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    let params = (env.rng.pareto(3.0, 1.2) as u64).min(60);
    write(
        b,
        &x.call("cloudformation", "CreateChangeSet"),
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"stackName\":\"");
            s(b, svc.name);
            s(
                b,
                "-prod\",\"templateURL\":\"https://northwind-build-artifacts.s3.amazonaws.com/",
            );
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
            out::uuid(b, hash_str(svc.name));
            s(b, "\"}");
        }),
        None,
        None,
    );
}

/// The build's artifact uploaded.
fn put_artifact(env: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let Some(svc) = x.svc else { return };
    let mut k = Vec::with_capacity(64);
    s(&mut k, svc.name);
    k.push(b'/');
    out::hex(&mut k, x.seed ^ 0x7a9, 12);
    s(&mut k, ".zip");
    let bytes = object_size(env) * 40;
    s3(
        b,
        &mut x.call("s3", "PutObject"),
        "northwind-build-artifacts",
        &k,
        bytes,
    );
}

/// The Terraform pipeline's IAM user: plans and applies IAM changes to *other* roles and
/// users (a service drawn per call), under a DynamoDB state lock.
pub fn terraform(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let target = &pools.services[env.rng.below(pools.services.len() as u64) as usize];
    let x = Ctx {
        ua: CLI_AGENTS[3],
        svc: Some(target),
        ..*x
    };
    if sess.step == 0 {
        GET_CALLER_IDENTITY.write(&x, b);
    } else {
        play(env, sess, &x, TERRAFORM, b);
    }
}

const TERRAFORM: &[Row] = &[
    w(4, call("iam", "GetRole", ROLE)),
    w(3, call("iam", "ListRolePolicies", ROLE)),
    w(3, call("iam", "ListAttachedRolePolicies", ROLE)),
    w(2, ATTACH_ROLE_POLICY),
    w(
        2,
        call(
            "iam",
            "PutRolePolicy",
            &[
                L("{\"roleName\":\""),
                Role,
                L("\",\"policyName\":\"terraform-managed\",\"policyDocument\":\""),
                PolicyDoc,
                L("\"}"),
            ],
        )
        .draw(Draw::Statements { min: 2.0, max: 30 }),
    ),
    w(1, CREATE_ACCESS_KEY),
    run(2, terraform_lock),
];

fn terraform_lock(env: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let op = env.rng.below(3) as usize;
    let mut c = x.call("dynamodb", TABLE_OPS[op]);
    dynamodb(b, &mut c, ACCOUNT_SHARED, "terraform-locks", op);
}

// ------------------------------------------------------------------------------------------
// Role chains
// ------------------------------------------------------------------------------------------

const BROKER_UA: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.35.24";
const AGENT_UA: &str = "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/linux#6.1.109-118.189.amzn2023.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#adaptive Botocore/1.35.30 agent-runtime/0.9.2";
const SCANNER_UA: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.35.24 prowler/4.4.1";

/// The agent platform's broker: takes work off a queue, records runs, and assumes the agent's
/// role for each run with `SourceIdentity agent=<id>` — the run is a new session elsewhere.
pub fn broker(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    play(
        env,
        sess,
        &Ctx {
            ua: BROKER_UA,
            ..*x
        },
        BROKER,
        b,
    );
}

const BROKER: &[Row] = &[
    run(3, |_, _, x, b| {
        let mut c = x.call("sqs", "ReceiveMessage");
        sqs(b, &mut c, ACCOUNT_SHARED, "agent-tasks", x.seed);
    }),
    run(2, broker_runs::<0>),
    run(2, broker_runs::<2>),
    run(2, start_agent),
];

fn broker_runs<const OP: usize>(_: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let mut c = x.call("dynamodb", TABLE_OPS[OP]);
    dynamodb(b, &mut c, ACCOUNT_SHARED, "agent-runs", OP);
}

/// Assumes an agent's role for a new run; the run joins the sessions.
fn start_agent(env: &mut Env<'_>, _: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let agent = env.rng.below(AGENTS.len() as u64) as u32;
    let run = 10_000 + (env.rng.next_u64() % 90_000) as u32;
    let id = env.new_id();
    let child = Sess::new(
        id,
        Profile::Agent,
        agent,
        run,
        private_ip(30, id),
        env.length(5.0, 1.3, 120),
    );
    let mut name = Vec::with_capacity(16);
    s(&mut name, "run-");
    out::u(&mut name, u64::from(run));
    chain(
        env,
        x,
        child,
        500,
        Issue {
            account: ACCOUNT_PROD,
            role: AGENT_ROLES[agent as usize],
            role_id: DEFAULT_ROLE_ID,
            session_name: &name,
            child_key: &[],
            duration_s: 3600,
            source_identity: Some(AGENT_IDENTITIES[agent as usize]),
            t: x.t,
        },
        b,
    );
}

/// Writes the `AssumeRole` that issues `child`'s key (an hour from now, at `pace`), and adds
/// the child to the sessions.
fn chain(
    env: &mut Env<'_>,
    x: &Ctx<'_>,
    mut child: Sess,
    pace: u32,
    issue: Issue<'_>,
    b: &mut Vec<u8>,
) {
    child.created = x.t;
    child.expires = x.t + 3_600_000;
    child.pace = pace;
    let mut child_key = Vec::with_capacity(20);
    key_id(&mut child_key, "ASIA", child.key_seed(env.seed, 1));
    let issue = Issue {
        child_key: &child_key,
        ..issue
    };
    assume_role(b, x.who, x.from, x.ua, &issue, x.seed);
    env.spawned.push(child);
}

/// One agent run: reads its inputs, calls its model, writes its output (in its own bucket).
pub fn agent(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    play(env, sess, &Ctx { ua: AGENT_UA, ..*x }, AGENT, b);
}

const AGENT: &[Row] = &[
    run(2, |_, sess, x, b| {
        let bucket = agent_bucket(sess);
        s3_list(
            b,
            &mut x.call("s3", "ListObjects"),
            bucket_name(&bucket),
            "inbox/",
        );
    }),
    run(4, agent_read),
    w(
        4,
        call(
            "bedrock",
            "InvokeModel",
            &[L(
                "{\"modelId\":\"anthropic.claude-3-5-sonnet-20240620-v1:0\"}",
            )],
        )
        .extra(&[L("{\"inputTokenCount\":1843,\"outputTokenCount\":412}")]),
    ),
    run(2, |_, sess, x, b| {
        let mut secret = Vec::with_capacity(48);
        s(&mut secret, "prod/agents/");
        s(&mut secret, AGENTS[sess.who as usize]);
        s(&mut secret, "/api-token");
        let c = x.call("secretsmanager", "GetSecretValue");
        get_secret(b, &c, std::str::from_utf8(&secret).unwrap_or(""));
    }),
    run(1, agent_write),
];

fn agent_bucket(sess: &Sess) -> Vec<u8> {
    let mut bucket = Vec::with_capacity(48);
    s(&mut bucket, "northwind-agent-");
    s(&mut bucket, AGENTS[sess.who as usize]);
    bucket
}

fn bucket_name(bucket: &[u8]) -> &str {
    std::str::from_utf8(bucket).unwrap_or("northwind-agents")
}

/// An input read while the run stays within its S3 habits; else it writes its output.
fn agent_read(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    if !sess.s3_read_allowed(x.t, 40_000) {
        return agent_write(env, sess, x, b);
    }
    let bucket = agent_bucket(sess);
    let mut k = Vec::with_capacity(96);
    object_key(&mut k, "inbox/", x.t, x.seed, ".json");
    let bytes = 1_000 + x.seed % 39_000;
    s3(
        b,
        &mut x.call("s3", "GetObject"),
        bucket_name(&bucket),
        &k,
        bytes,
    );
}

fn agent_write(_: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let bucket = agent_bucket(sess);
    let mut k = Vec::with_capacity(96);
    object_key(&mut k, "outbox/", x.t, x.seed, ".md");
    let bytes = 2_000 + x.seed % 30_000;
    s3(
        b,
        &mut x.call("s3", "PutObject"),
        bucket_name(&bucket),
        &k,
        bytes,
    );
}

/// The security scanner: lists the organisation and chains into each member account's
/// `OrganizationAccountAccessRole` (an admin-named role) — only to read.
pub fn scanner(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    play(
        env,
        sess,
        &Ctx {
            ua: SCANNER_UA,
            ..*x
        },
        SCANNER,
        b,
    );
}

const SCANNER: &[Row] = &[
    w(2, call("organizations", "ListAccounts", &[])),
    w(
        2,
        call(
            "ec2",
            "DescribeRegions",
            &[L("{\"regionSet\":{},\"allRegions\":false}")],
        )
        .read_only(true),
    ),
    run(3, scan_member),
];

/// Assumes `OrganizationAccountAccessRole` in a member account; the scan joins the sessions.
fn scan_member(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    let member = env.rng.below(MEMBER_ACCOUNTS.len() as u64) as u32;
    let id = env.new_id();
    let child = Sess::new(
        id,
        Profile::ScanChild,
        member,
        0,
        sess.addr,
        env.length(5.0, 1.2, 80),
    );
    chain(
        env,
        x,
        child,
        300,
        Issue {
            account: MEMBER_ACCOUNTS[member as usize],
            role: "OrganizationAccountAccessRole",
            role_id: "AROAORGACCESS4M7T2QZK",
            session_name: b"posture-scan",
            child_key: &[],
            duration_s: 3600,
            source_identity: None,
            t: x.t,
        },
        b,
    );
}

/// The scanner's session in a member account: one read of an inventory, each as likely.
pub fn scan_child(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, b: &mut Vec<u8>) {
    play(
        env,
        sess,
        &Ctx {
            ua: SCANNER_UA,
            ..*x
        },
        SCAN_CHILD,
        b,
    );
}

const SCAN_CHILD: &[Row] = &[
    w(1, call("iam", "ListRoles", &[L("{\"maxItems\":1000}")])),
    w(1, call("iam", "ListUsers", &[L("{\"maxItems\":1000}")])),
    w(1, call("iam", "GetAccountPasswordPolicy", &[])),
    w(
        1,
        call(
            "iam",
            "ListPolicies",
            &[L("{\"scope\":\"Local\",\"onlyAttached\":false}")],
        ),
    ),
    w(1, call("ec2", "DescribeSecurityGroups", SECURITY_GROUPS)),
    w(1, LIST_BUCKETS),
    w(
        1,
        call(
            "cloudtrail",
            "DescribeTrails",
            &[L("{\"includeShadowTrails\":true}")],
        ),
    ),
    w(1, call("config", "DescribeConfigurationRecorders", &[])),
    w(1, call("guardduty", "ListDetectors", &[])),
    w(1, call("kms", "ListKeys", &[])),
];
