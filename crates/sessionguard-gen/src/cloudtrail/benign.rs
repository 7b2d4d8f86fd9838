//! The benign AWS sessions of the generated traffic: their kinds and how each starts, the
//! identity and session key each has, and the dispatch of each record to its persona
//! ([`super::personas`]).

use super::personas;
use super::template::Ctx;
use super::{key_id, From, Who};
use crate::out::{self, s};
use crate::pools::{
    Pools, Runtime, ACCOUNT_PROD, ACCOUNT_SHARED, BROWSERS, CLI_AGENTS, MEMBER_ACCOUNTS,
    SSO_ADMIN_ROLE, SSO_ROLES,
};
use crate::session::{Env, Profile, Scratch, Sess};

const TERRAFORM_USERS: &[&str] = &["terraform-ci", "terraform-network", "terraform-data"];
/// The agents the platform's broker runs (benign); `--agent-tasks` grants each a task.
pub(crate) const AGENTS: &[&str] = &[
    "ticket-triager",
    "cost-reporter",
    "release-notes-writer",
    "log-summarizer",
];
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
                crate::pools::private_ip(vpc, id),
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
                crate::pools::runner_ip(id),
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
            crate::pools::private_ip(26, id),
            0,
            env.length(4.0, 1.2, 2_000),
            600,
        ),
        _ => (
            0,
            crate::pools::private_ip(27, id),
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

pub(super) const AGENT_ROLES: &[&str] = &[
    "agent-ticket-triager",
    "agent-cost-reporter",
    "agent-release-notes-writer",
    "agent-log-summarizer",
];

pub(super) fn deployer_role(service: &str) -> &'static str {
    // A small fixed set keeps role names static strings; the service goes in the session name.
    const ROLES: &[&str] = &["gha-deploy-ecs", "gha-deploy-lambda", "gha-deploy-infra"];
    ROLES[(crate::rng::hash_str(service) % 3) as usize]
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
                crate::rng::hash_str(TERRAFORM_USERS[sess.who as usize]),
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
    let seed = sess.key_seed(env.seed, 0x1000 + u64::from(sess.step));
    let (_, _, _, account) = role_of(pools, sess);
    let who = identity(env, sess, &mut sc.key, &mut sc.name);
    let person = sess.who as usize;
    let person_ua = move |browser: bool| -> &'static str {
        let p = &pools.people[person.min(pools.people.len() - 1)];
        if browser {
            BROWSERS[p.browser].raw
        } else {
            CLI_AGENTS[p.cli]
        }
    };
    let x = Ctx {
        who: &who,
        from: From::Ip(sess.addr),
        t,
        seed,
        account,
        ua: "",
        console: false,
        region: "us-east-1",
        svc: None,
        policy: "",
        statements: 0,
    };
    match sess.profile {
        Profile::Workload => personas::workload(env, sess, &x, b),
        Profile::Human => personas::human(
            env,
            sess,
            &Ctx {
                ua: person_ua(false),
                ..x
            },
            b,
        ),
        Profile::Console if sess.step == 0 => personas::console_login(
            &Ctx {
                ua: person_ua(true),
                ..x
            },
            b,
        ),
        Profile::Console => {
            let x = Ctx {
                ua: person_ua(true),
                console: true,
                ..x
            };
            personas::human(env, sess, &x, b);
        }
        Profile::Admin => personas::admin(
            env,
            sess,
            &Ctx {
                ua: person_ua(false),
                ..x
            },
            b,
        ),
        Profile::Deployer => personas::deployer(env, sess, &x, &mut sc.extra, b),
        Profile::Terraform => personas::terraform(env, sess, &x, b),
        Profile::Broker => personas::broker(env, sess, &x, b),
        Profile::Agent => personas::agent(env, sess, &x, b),
        Profile::Scanner => personas::scanner(env, sess, &x, b),
        _ => personas::scan_child(env, sess, &x, b),
    }
}

/// The session's `userIdentity`: the Terraform user's long-term key, or a role session whose
/// key and session name are written into `key` and `name`.
fn identity<'a>(
    env: &Env<'a>,
    sess: &Sess,
    key: &'a mut Vec<u8>,
    name: &'a mut Vec<u8>,
) -> Who<'a> {
    let pools = env.pools;
    key.clear();
    name.clear();
    if sess.profile == Profile::Terraform {
        let user = TERRAFORM_USERS[sess.who as usize];
        key_id(key, "AKIA", crate::rng::hash_str(user));
        return Who::User {
            account: ACCOUNT_SHARED,
            name: user,
            user_id: TERRAFORM_USER_IDS[sess.who as usize],
            key,
        };
    }
    let (path, role, role_id, account) = role_of(pools, sess);
    key_id(key, "ASIA", sess.key_seed(env.seed, 1));
    match sess.profile {
        Profile::Human | Profile::Console | Profile::Admin => pools.email(sess.who, name),
        Profile::Workload => match pools.services[sess.who as usize].runtime {
            Runtime::Ecs => out::hex(name, sess.key_seed(env.seed, 2), 32),
            Runtime::Lambda => s(name, pools.services[sess.who as usize].name),
            Runtime::Ec2 => {
                s(name, "i-0");
                out::hex(name, sess.key_seed(env.seed, 2), 16);
            }
        },
        Profile::Deployer => s(name, "GitHubActions"),
        Profile::Broker => {
            s(name, "ecs-task-");
            out::hex(name, sess.key_seed(env.seed, 2), 12);
        }
        Profile::Agent => {
            s(name, "run-");
            out::u(name, u64::from(sess.aux));
        }
        _ => s(name, "posture-scan"),
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
        session_name: name,
        key: if console_login { &[] } else { key },
        created: sess.created,
        mfa: matches!(
            sess.profile,
            Profile::Human | Profile::Console | Profile::Admin
        ),
        source_identity: (sess.profile == Profile::Agent)
            .then(|| AGENT_IDENTITIES[sess.who as usize]),
    }
}

pub(super) const DEFAULT_ROLE_ID: &str = "AROAQX4Z7KDEPLOYR2M5T";
const TERRAFORM_USER_IDS: &[&str] = &[
    "AIDAT3RRAF0RMC1Q7XK2M",
    "AIDAT3RRAF0RMN3TW0RK5",
    "AIDAT3RRAF0RMD4TA7PLQ",
];
pub(super) const AGENT_IDENTITIES: &[&str] = &[
    "agent=ticket-triager",
    "agent=cost-reporter",
    "agent=release-notes-writer",
    "agent=log-summarizer",
];
