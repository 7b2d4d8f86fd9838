//! Injected attacks: scripted sessions matching the cases of the shipped rule pack, each with
//! the rule that should decide on it, and an oracle that finds the line of the deciding event
//! from the times the steps were actually written.
//!
//! An attack is a list of steps (one record each) with the delay before each; the generator
//! writes a step when its time has come, so a busy second can push a step (and everything after
//! it) slightly later. The oracle therefore does not assume the planned times: it replays the
//! rule's aggregate on the written ones — a sliding window `(t - span, t]` of counts, distinct
//! values or sums, as the engine keeps it — and records the first step where the threshold is
//! reached. Single-event rules (self-grants, bindings, a stale session's change, a new network)
//! mark their deciding step directly.
//!
//! Every attack session is the attack's own: its key is derived from the attack's seed and
//! no benign session shares it. Attackers keep acting after the deciding event, as real ones do;
//! sessionguard adds `sessionguard.kill_not_enforced` on the first such event of a killed
//! session, whose line the ground truth gives as `after`.

use std::rc::Rc;

use super::cloudtrail::{self as ct, Call, From, Issue, Object, Who};
use super::kubernetes::{self as k8s, Caller, Cred, Request};
use super::okta;
use super::out::{self, s, Body};
use super::pools::{
    Place, Pools, ACCOUNT_PROD, ATTACK_PLACES, BROWSERS, MEMBER_ACCOUNTS, PLACES, SSO_ADMIN_ROLE,
    WARP,
};
use super::rng::{hash2, Rng};
use crate::Source;

/// The attack cases, in the order `--attacks` cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SelfGrantAws,
    RoleChainAdmin,
    S3BulkRead,
    S3BulkBytes,
    SecretsBurst,
    CloneBurst,
    MfaPushBombing,
    TokenReuseNetwork,
    TokenReuseAsn,
    TokenReuseCountry,
    StalePrivilegedChange,
    K8sClusterAdmin,
    OktaSelfGrant,
    BlindTrail,
    ExternalShare,
}

pub const KINDS: [Kind; 15] = [
    Kind::SelfGrantAws,
    Kind::RoleChainAdmin,
    Kind::S3BulkRead,
    Kind::S3BulkBytes,
    Kind::SecretsBurst,
    Kind::CloneBurst,
    Kind::MfaPushBombing,
    Kind::TokenReuseNetwork,
    Kind::TokenReuseAsn,
    Kind::TokenReuseCountry,
    Kind::StalePrivilegedChange,
    Kind::K8sClusterAdmin,
    Kind::OktaSelfGrant,
    Kind::BlindTrail,
    Kind::ExternalShare,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SelfGrantAws => "aws_self_grant",
            Kind::RoleChainAdmin => "aws_role_chain_admin",
            Kind::S3BulkRead => "s3_bulk_read",
            Kind::S3BulkBytes => "s3_bulk_bytes",
            Kind::SecretsBurst => "secrets_burst",
            Kind::CloneBurst => "github_clone_burst",
            Kind::MfaPushBombing => "mfa_push_bombing",
            Kind::TokenReuseNetwork => "token_reuse_new_network",
            Kind::TokenReuseAsn => "token_reuse_new_asn",
            Kind::TokenReuseCountry => "token_reuse_new_country",
            Kind::StalePrivilegedChange => "stale_privileged_change",
            Kind::K8sClusterAdmin => "k8s_cluster_admin",
            Kind::OktaSelfGrant => "okta_self_grant",
            Kind::BlindTrail => "aws_defense_evasion",
            Kind::ExternalShare => "aws_external_share",
        }
    }

    /// The rule of the shipped pack that decides on it.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::SelfGrantAws => "sg.aws.iam_self_grant",
            Kind::RoleChainAdmin => "sg.aws.role_chain_admin",
            Kind::S3BulkRead => "sg.aws.s3_bulk_read",
            Kind::S3BulkBytes => "sg.aws.s3_bulk_bytes",
            Kind::SecretsBurst => "sg.aws.secrets_burst",
            Kind::CloneBurst => "sg.github.clone_burst",
            Kind::MfaPushBombing => "sg.session.mfa_failures",
            Kind::TokenReuseNetwork => "sg.session.new_network",
            Kind::TokenReuseAsn => "sg.session.new_asn",
            Kind::TokenReuseCountry => "sg.session.new_country",
            Kind::StalePrivilegedChange => "sg.aws.stale_privileged_change",
            Kind::K8sClusterAdmin => "sg.k8s.cluster_admin_escalation",
            Kind::OktaSelfGrant => "sg.okta.self_privilege_grant",
            Kind::BlindTrail => "sg.aws.defense_evasion",
            Kind::ExternalShare => "sg.aws.external_grant",
        }
    }

    /// Sources it needs; an attack is only planned when they are all enabled.
    pub fn sources(self) -> &'static [Source] {
        match self {
            Kind::SelfGrantAws
            | Kind::RoleChainAdmin
            | Kind::S3BulkRead
            | Kind::S3BulkBytes
            | Kind::SecretsBurst
            | Kind::StalePrivilegedChange
            | Kind::BlindTrail
            | Kind::ExternalShare => &[Source::Cloudtrail],
            Kind::CloneBurst => &[Source::Github],
            Kind::MfaPushBombing
            | Kind::TokenReuseAsn
            | Kind::TokenReuseCountry
            | Kind::OktaSelfGrant => &[Source::Okta],
            Kind::K8sClusterAdmin => &[Source::Kubernetes],
            Kind::TokenReuseNetwork => &[],
        }
    }

    /// Whether the rule revokes (a kill, after which activity is `kill_not_enforced`).
    pub fn kills(self) -> bool {
        self != Kind::StalePrivilegedChange
    }
}

/// How a step counts towards the rule.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    None,
    /// One matching event (event_count).
    Count,
    /// A value (value_count), by hash.
    Value(u64),
    /// An amount (value_sum).
    Amount(u64),
    /// The deciding event of a single-event rule.
    Trigger,
}

/// The rule's aggregate, replayed on the written steps.
pub enum Oracle {
    First,
    Count {
        span: i64,
        threshold: u64,
        seen: Vec<i64>,
    },
    Distinct {
        span: i64,
        threshold: u64,
        seen: Vec<(i64, u64)>,
    },
    Sum {
        span: i64,
        threshold: u64,
        seen: Vec<(i64, u64)>,
    },
}

impl Oracle {
    /// Adds a marked step at `t`; true when the threshold is reached with it.
    fn observe(&mut self, t: i64, mark: Mark) -> bool {
        match (self, mark) {
            (Oracle::First, Mark::Trigger) => true,
            (
                Oracle::Count {
                    span,
                    threshold,
                    seen,
                },
                Mark::Count,
            ) => {
                seen.push(t);
                seen.iter().filter(|x| **x > t - *span).count() as u64 >= *threshold
            }
            (
                Oracle::Distinct {
                    span,
                    threshold,
                    seen,
                },
                Mark::Value(v),
            ) => {
                seen.push((t, v));
                let mut values: Vec<u64> = seen
                    .iter()
                    .filter(|(x, _)| *x > t - *span)
                    .map(|(_, v)| *v)
                    .collect();
                values.sort_unstable();
                values.dedup();
                values.len() as u64 >= *threshold
            }
            (
                Oracle::Sum {
                    span,
                    threshold,
                    seen,
                },
                Mark::Amount(a),
            ) => {
                seen.push((t, a));
                seen.iter()
                    .filter(|(x, _)| *x > t - *span)
                    .map(|(_, a)| *a)
                    .sum::<u64>()
                    >= *threshold
            }
            _ => false,
        }
    }
}

pub type Render<'p> = Box<dyn Fn(&mut Vec<u8>, i64, u64) + 'p>;

pub struct Step<'p> {
    /// Milliseconds after the previous step was written.
    pub delay: i64,
    pub source: Source,
    /// Index into [`Attack::keys`]: the session this record belongs to.
    pub key: usize,
    pub mark: Mark,
    pub render: Render<'p>,
}

pub struct Attack<'p> {
    pub kind: Kind,
    /// [`Case::describe`] of the case played.
    pub what: &'static str,
    pub seed: u64,
    /// Session keys the attack writes; the first is the one the rule decides on.
    pub keys: Vec<(Source, String)>,
    pub steps: Vec<Step<'p>>,
    pub next: usize,
    /// When its next step is due (ms).
    pub due: i64,
    pub oracle: Oracle,
    /// (line, time) of the deciding event.
    pub trigger: Option<(u64, i64)>,
    /// Line of the decided session's first event after the deciding one.
    pub after: Option<u64>,
}

impl<'p> Attack<'p> {
    /// Records that the current step was written at `line`, time `t`; moves to the next.
    pub fn written(&mut self, line: u64, t: i64) {
        let step = &self.steps[self.next];
        let on_target = step.key == 0;
        if self.trigger.is_none() {
            if self.oracle.observe(t, step.mark) {
                self.trigger = Some((line, t));
            }
        } else if on_target && self.after.is_none() && self.trigger.is_some_and(|(l, _)| l < line) {
            self.after = Some(line);
        }
        self.next += 1;
        if let Some(next) = self.steps.get(self.next) {
            self.due = t + next.delay;
        }
    }

    pub fn current(&self) -> Option<&Step<'p>> {
        self.steps.get(self.next)
    }
}

// ------------------------------------------------------------------------------------------
// Identities owned by an attack
// ------------------------------------------------------------------------------------------

enum Ident {
    Role {
        account: &'static str,
        path: &'static str,
        role: String,
        role_id: String,
        session_name: Vec<u8>,
        key: Vec<u8>,
        created: i64,
        mfa: bool,
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
            } => Who::Role {
                account,
                path,
                role,
                role_id,
                session_name,
                key,
                created: *created,
                mfa: *mfa,
                source_identity: None,
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
        let mut b = Vec::new();
        match self {
            Ident::Role { account, key, .. } => {
                s(&mut b, "aws:");
                s(&mut b, account);
                s(&mut b, ":sts:");
                b.extend_from_slice(key);
            }
            Ident::User { account, key, .. } => {
                s(&mut b, "aws:");
                s(&mut b, account);
                s(&mut b, ":iam-key:");
                b.extend_from_slice(key);
            }
        }
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
        role_id: super::pools::aws_unique_id("AROA", name),
        session_name: session_name.as_bytes().to_vec(),
        key,
        created,
        mfa,
    }
}

fn user(account: &'static str, name: &str, seed: u64) -> Ident {
    let mut key = Vec::new();
    ct::key_id(&mut key, "AKIA", seed);
    Ident::User {
        account,
        name: name.to_owned(),
        user_id: super::pools::aws_unique_id("AIDA", name),
        key,
    }
}

/// A CloudTrail step: `req`/`resp` are prebuilt JSON (empty for `null`).
fn ct_step<'p>(
    id: &Rc<Ident>,
    from: u32,
    ua: &'static str,
    service: &'static str,
    name: &'static str,
    req: String,
    resp: String,
) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = Call::new(&who, t, service, name, From::Ip(from));
        c.ua = ua;
        c.seed = seed;
        ct::write(
            b,
            &c,
            (!req.is_empty()).then_some(&|b: &mut Vec<u8>| s(b, &req)),
            (!resp.is_empty()).then_some(&|b: &mut Vec<u8>| s(b, &resp)),
            None,
            None,
        );
    })
}

fn s3_get<'p>(
    id: &Rc<Ident>,
    from: u32,
    ua: &'static str,
    bucket: String,
    key: String,
    bytes: u64,
) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = Call::new(&who, t, "s3", "GetObject", From::Ip(from));
        c.ua = ua;
        c.seed = seed;
        ct::s3_object(
            b,
            &mut c,
            &Object {
                bucket: &bucket,
                key: key.as_bytes(),
                bytes,
            },
        );
    })
}

fn s3_list_step<'p>(
    id: &Rc<Ident>,
    from: u32,
    ua: &'static str,
    bucket: String,
    prefix: &'static str,
) -> Render<'p> {
    let id = Rc::clone(id);
    Box::new(move |b, t, seed| {
        let who = id.who();
        let mut c = Call::new(&who, t, "s3", "ListObjects", From::Ip(from));
        c.ua = ua;
        c.seed = seed;
        ct::s3_list(b, &mut c, &bucket, prefix);
    })
}

// ------------------------------------------------------------------------------------------
// Planning
// ------------------------------------------------------------------------------------------

/// One attack case: a kind, its variant, and (for network reuse) the source it is played on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    pub kind: Kind,
    pub variant: u64,
    pub source: Source,
}

impl Kind {
    /// How many variants the case has.
    fn variants(self) -> u64 {
        match self {
            Kind::SelfGrantAws => 3,
            Kind::RoleChainAdmin
            | Kind::K8sClusterAdmin
            | Kind::OktaSelfGrant
            | Kind::BlindTrail
            | Kind::ExternalShare => 2,
            _ => 1,
        }
    }
}

/// Every case and variant playable on the enabled sources, ordered so that the first ones
/// cover every kind once, the next ones the second variants, and so on: `--attacks N` cycles
/// through this list.
pub fn cases(enabled: &dyn Fn(Source) -> bool) -> Vec<Case> {
    let reuse: Vec<Source> = [
        Source::Cloudtrail,
        Source::Kubernetes,
        Source::Github,
        Source::Okta,
    ]
    .into_iter()
    .filter(|s| enabled(*s))
    .collect();
    let mut out = Vec::new();
    for round in 0..4u64 {
        for kind in KINDS {
            if kind == Kind::TokenReuseNetwork {
                if let Some(source) = reuse.get(round as usize) {
                    out.push(Case {
                        kind,
                        variant: round,
                        source: *source,
                    });
                }
            } else if round < kind.variants() && kind.sources().iter().all(|s| enabled(*s)) {
                out.push(Case {
                    kind,
                    variant: round,
                    source: kind.sources()[0],
                });
            }
        }
    }
    out
}

impl Case {
    /// What the attacker does, in a few words.
    pub fn describe(&self) -> &'static str {
        match (self.kind, self.variant, self.source) {
            (Kind::SelfGrantAws, 0, _) => "an IAM user's key attaches AdministratorAccess to its own user",
            (Kind::SelfGrantAws, 1, _) => "an IAM user's key creates a second access key for its own user",
            (Kind::SelfGrantAws, _, _) => "stolen Lambda credentials put an inline *:* policy on their own role",
            (Kind::RoleChainAdmin, 0, _) => "replayed instance credentials assume break-glass-admin, which creates an admin user",
            (Kind::RoleChainAdmin, _, _) => {
                "replayed instance credentials assume OrganizationAccountAccessRole in a member account, which creates an admin user"
            }
            (Kind::S3BulkRead, _, _) => "stolen notebook credentials read 80 small objects with rclone",
            (Kind::S3BulkBytes, _, _) => "a leaked IAM user key downloads 70-98 MB database dumps",
            (Kind::SecretsBurst, _, _) => "stolen task credentials read 16 different secrets by ARN",
            (Kind::CloneBurst, _, _) => "a developer's token clones 34 repositories",
            (Kind::MfaPushBombing, _, _) => "six denied Okta Verify pushes, then an approved one",
            (Kind::TokenReuseNetwork, _, Source::Kubernetes) => "a service-account token used from outside the cluster",
            (Kind::TokenReuseNetwork, _, Source::Github) => "a personal access token replayed from another network of the same country",
            (Kind::TokenReuseNetwork, _, Source::Okta) => "an Okta session replayed from another /24 of the same provider",
            (Kind::TokenReuseNetwork, _, _) => "ECS task credentials replayed from outside their VPC",
            (Kind::TokenReuseAsn, _, _) => "an Okta session replayed from another AS of the same country",
            (Kind::TokenReuseCountry, _, _) => "an Okta session replayed through the same AS from another country",
            (Kind::StalePrivilegedChange, _, _) => "an SSO AdministratorAccess session over an hour old attaches a policy to another role",
            (Kind::K8sClusterAdmin, 0, _) => "a web pod's token binds itself to cluster-admin",
            (Kind::K8sClusterAdmin, _, _) => "a developer's certificate impersonates system:admin in system:masters",
            (Kind::OktaSelfGrant, 0, _) => "an Okta admin session grants itself Super administrator",
            (Kind::OktaSelfGrant, _, _) => "an Okta admin session adds itself to Okta-Super-Admins",
            (Kind::BlindTrail, 0, _) => "a leaked IAM user key looks up the trails and stops logging",
            (Kind::BlindTrail, _, _) => "a leaked IAM user key deletes the VPC flow logs",
            (Kind::ExternalShare, 0, _) => "a leaked IAM user key shares an AMI with an outside account",
            (Kind::ExternalShare, _, _) => "a leaked IAM user key opens a role's trust to an outside account",
        }
    }
}

/// What every attack builder gets.
pub struct Plan<'p> {
    pub pools: &'p Pools,
    pub seed: u64,
    pub start: i64,
    /// The attacker's address (203.0.113.0/24).
    pub attacker: u32,
    /// Which variant of the case (cycles through them across attacks of one kind).
    pub variant: u64,
    /// For the network-reuse case: the source it is played on.
    pub source: Source,
}

struct Builder<'p> {
    steps: Vec<Step<'p>>,
    rng: Rng,
}

impl<'p> Builder<'p> {
    fn new(seed: u64) -> Self {
        Builder {
            steps: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// Adds a step `lo..=hi` seconds after the previous one.
    fn add(
        &mut self,
        secs: (u64, u64),
        source: Source,
        key: usize,
        mark: Mark,
        render: Render<'p>,
    ) {
        let delay = if self.steps.is_empty() {
            0
        } else {
            1_000 * self.rng.range(secs.0, secs.1) as i64 + self.rng.below(1_000) as i64
        };
        self.steps.push(Step {
            delay,
            source,
            key,
            mark,
            render,
        });
    }

    fn finish(
        self,
        plan: &Plan<'_>,
        kind: Kind,
        keys: Vec<(Source, String)>,
        oracle: Oracle,
    ) -> Attack<'p> {
        Attack {
            kind,
            what: "",
            seed: plan.seed,
            keys,
            steps: self.steps,
            next: 0,
            due: plan.start,
            oracle,
            trigger: None,
            after: None,
        }
    }
}

const ATTACK_UA: &str =
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-amd64 exe/x86_64.debian.12 prompt/off";
const RCLONE_UA: &str = "rclone/v1.68.1";
const CT: Source = Source::Cloudtrail;

fn json_escape(text: &str) -> String {
    let mut b = Vec::new();
    out::esc(&mut b, text);
    String::from_utf8(b).unwrap_or_default()
}

pub fn build<'p>(kind: Kind, plan: &Plan<'p>) -> Attack<'p> {
    match kind {
        Kind::SelfGrantAws => self_grant_aws(plan),
        Kind::RoleChainAdmin => role_chain_admin(plan),
        Kind::S3BulkRead => s3_bulk_read(plan),
        Kind::S3BulkBytes => s3_bulk_bytes(plan),
        Kind::SecretsBurst => secrets_burst(plan),
        Kind::CloneBurst => clone_burst(plan),
        Kind::MfaPushBombing => mfa_push_bombing(plan),
        Kind::TokenReuseNetwork => match plan.source {
            Source::Okta => okta_reuse(plan, Kind::TokenReuseNetwork),
            Source::Kubernetes => k8s_reuse(plan),
            Source::Github => github_reuse(plan),
            _ => aws_reuse(plan),
        },
        Kind::TokenReuseAsn | Kind::TokenReuseCountry => okta_reuse(plan, kind),
        Kind::StalePrivilegedChange => stale_privileged(plan),
        Kind::K8sClusterAdmin => k8s_cluster_admin(plan),
        Kind::OktaSelfGrant => okta_self_grant(plan),
        Kind::BlindTrail | Kind::ExternalShare => leaked_key_move(plan, kind),
    }
}

/// A key or policy granted to the caller itself: an IAM user's key attaching
/// AdministratorAccess to its own user or minting a second key for it, or stolen Lambda
/// credentials putting `*:*` on their own role.
fn self_grant_aws<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let svc = &plan.pools.services[(plan.seed % plan.pools.services.len() as u64) as usize];
    let variant = plan.variant % 3;
    let id = if variant == 2 {
        let name = format!("lambda-{}", svc.name);
        Rc::new(role(
            svc.account,
            "service-role/",
            &name,
            svc.name,
            hash2(plan.seed, 1),
            plan.start - 60_000 * (20 + (plan.seed % 20) as i64),
            false,
        ))
    } else {
        Rc::new(user(
            svc.account,
            &format!("svc-{}", svc.name),
            hash2(plan.seed, 1),
        ))
    };
    let (name, kind_param) = match &*id {
        Ident::User { name, .. } => (name.clone(), "userName"),
        Ident::Role { role, .. } => (role.clone(), "roleName"),
    };
    let a = plan.attacker;
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "sts",
            "GetCallerIdentity",
            String::new(),
            String::new(),
        ),
    );
    let list = if variant == 2 {
        "ListRolePolicies"
    } else {
        "ListAttachedUserPolicies"
    };
    bld.add(
        (15, 40),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "iam",
            list,
            format!("{{\"{kind_param}\":\"{name}\"}}"),
            String::new(),
        ),
    );
    match variant {
        0 => bld.add(
            (30, 90),
            CT,
            0,
            Mark::Trigger,
            ct_step(&id, a, ATTACK_UA, "iam", "AttachUserPolicy", format!("{{\"userName\":\"{name}\",\"policyArn\":\"arn:aws:iam::aws:policy/AdministratorAccess\"}}"), String::new()),
        ),
        1 => {
            let mut key = Vec::new();
            ct::key_id(&mut key, "AKIA", hash2(plan.seed, 2));
            let key = String::from_utf8(key).unwrap_or_default();
            bld.add(
                (30, 90),
                CT,
                0,
                Mark::Trigger,
                ct_step(
                    &id,
                    a,
                    ATTACK_UA,
                    "iam",
                    "CreateAccessKey",
                    format!("{{\"userName\":\"{name}\"}}"),
                    format!("{{\"accessKey\":{{\"accessKeyId\":\"{key}\",\"status\":\"Active\",\"userName\":\"{name}\",\"createDate\":\"Nov 4, 2024, 10:00:00 AM\"}}}}"),
                ),
            );
        }
        _ => bld.add(
            (30, 90),
            CT,
            0,
            Mark::Trigger,
            ct_step(
                &id,
                a,
                ATTACK_UA,
                "iam",
                "PutRolePolicy",
                format!(
                    "{{\"roleName\":\"{name}\",\"policyName\":\"sync-extra\",\"policyDocument\":\"{}\"}}",
                    json_escape("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}")
                ),
                String::new(),
            ),
        ),
    }
    bld.add(
        (20, 60),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "iam",
            "CreateUser",
            "{\"userName\":\"support-sync\"}".to_owned(),
            String::new(),
        ),
    );
    bld.add(
        (20, 60),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "s3",
            "ListBuckets",
            "{\"Host\":\"s3.amazonaws.com\"}".to_owned(),
            String::new(),
        ),
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, Kind::SelfGrantAws, keys, Oracle::First)
}

/// Replayed instance credentials assume an admin-named role (`break-glass-admin`, or
/// `OrganizationAccountAccessRole` in a member account); the issued session creates a user
/// and grants it admin. The decision lands on the child, which inherits the sequence.
fn role_chain_admin<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let svc = &plan.pools.services[(plan.seed % plan.pools.services.len() as u64) as usize];
    let a = plan.attacker;
    let parent_role = format!("{}-instance", svc.name);
    let mut instance = Vec::new();
    s(&mut instance, "i-0");
    out::hex(&mut instance, plan.seed, 16);
    let parent = Rc::new(role(
        ACCOUNT_PROD,
        "",
        &parent_role,
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
    // The child's creation time is the AssumeRole's, known only when it is written; the
    // attacker's first child call follows within seconds, so the identity is rebuilt per step.
    let child_key = {
        let mut k = Vec::new();
        ct::key_id(&mut k, "ASIA", hash2(plan.seed, 2));
        k
    };
    let issued_at = Rc::new(std::cell::Cell::new(plan.start));
    bld.add(
        (0, 0),
        CT,
        1,
        Mark::None,
        ct_step(
            &parent,
            a,
            ATTACK_UA,
            "iam",
            "ListRoles",
            "{\"maxItems\":1000}".to_owned(),
            String::new(),
        ),
    );
    {
        let parent = Rc::clone(&parent);
        let child_key = child_key.clone();
        let issued_at = Rc::clone(&issued_at);
        bld.add(
            (20, 60),
            CT,
            1,
            Mark::None,
            Box::new(move |b, t, seed| {
                issued_at.set(t);
                let issue = Issue {
                    account,
                    role: target_role,
                    role_id: "AROAQ7BREAKGLASS2ZK4M",
                    session_name: b"ops",
                    child_key: &child_key,
                    duration_s: 3600,
                    source_identity: None,
                    t,
                };
                ct::assume_role(b, &parent.who(), From::Ip(a), ATTACK_UA, &issue, seed);
            }),
        );
    }
    let child_step = |name: &'static str, req: String| -> Render<'p> {
        let child_key = child_key.clone();
        let issued_at = Rc::clone(&issued_at);
        Box::new(move |b, t, seed| {
            let who = Who::Role {
                account,
                path: "",
                role: target_role,
                role_id: "AROAQ7BREAKGLASS2ZK4M",
                session_name: b"ops",
                key: &child_key,
                created: issued_at.get(),
                mfa: false,
                source_identity: None,
            };
            let mut c = Call::new(
                &who,
                t,
                if name == "GetCallerIdentity" {
                    "sts"
                } else {
                    "iam"
                },
                name,
                From::Ip(a),
            );
            c.ua = ATTACK_UA;
            c.seed = seed;
            ct::write(
                b,
                &c,
                (!req.is_empty()).then_some(&|b: &mut Vec<u8>| s(b, &req)),
                None,
                None,
                None,
            );
        })
    };
    let new_user = format!("support-sync-{}", plan.seed % 1000);
    bld.add(
        (10, 30),
        CT,
        0,
        Mark::None,
        child_step("GetCallerIdentity", String::new()),
    );
    bld.add(
        (10, 30),
        CT,
        0,
        Mark::None,
        child_step("ListUsers", "{\"maxItems\":1000}".to_owned()),
    );
    bld.add(
        (20, 40),
        CT,
        0,
        Mark::Trigger,
        child_step("CreateUser", format!("{{\"userName\":\"{new_user}\"}}")),
    );
    bld.add(
        (15, 40),
        CT,
        0,
        Mark::None,
        child_step("AttachUserPolicy", format!("{{\"userName\":\"{new_user}\",\"policyArn\":\"arn:aws:iam::aws:policy/AdministratorAccess\"}}")),
    );
    bld.add(
        (15, 40),
        CT,
        0,
        Mark::None,
        child_step(
            "CreateAccessKey",
            format!("{{\"userName\":\"{new_user}\"}}"),
        ),
    );
    let mut child_session = format!("aws:{account}:sts:");
    child_session.push_str(std::str::from_utf8(&child_key).unwrap_or(""));
    let keys = vec![(CT, child_session), (CT, parent.session_key())];
    bld.finish(plan, Kind::RoleChainAdmin, keys, Oracle::First)
}

/// Stolen notebook credentials pull many small objects with rclone: ≥ 60 in 5 minutes.
fn s3_bulk_read<'p>(plan: &Plan<'p>) -> Attack<'p> {
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
    let bucket = "northwind-finance-statements".to_owned();
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        s3_list_step(&id, a, RCLONE_UA, bucket.clone(), "statements/"),
    );
    for n in 0..80u64 {
        let key = format!(
            "statements/2024/{:02}/stmt-{:06}.pdf",
            1 + n % 10,
            100_000 + hash2(plan.seed, n) % 900_000
        );
        let bytes = 20_000 + hash2(plan.seed, n ^ 0xb) % 380_000;
        bld.add(
            (1, 3),
            CT,
            0,
            Mark::Count,
            s3_get(&id, a, RCLONE_UA, bucket.clone(), key, bytes),
        );
    }
    let keys = vec![(CT, id.session_key())];
    bld.finish(
        plan,
        Kind::S3BulkRead,
        keys,
        Oracle::Count {
            span: 300_000,
            threshold: 60,
            seen: Vec::new(),
        },
    )
}

/// A leaked IAM user key downloads database dumps of 70–98 MB: ≥ 600 MB in 10 minutes.
fn s3_bulk_bytes<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let a = plan.attacker;
    let id = Rc::new(user(ACCOUNT_PROD, "backup-verifier", hash2(plan.seed, 1)));
    let bucket = "northwind-db-backups".to_owned();
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        s3_list_step(&id, a, ATTACK_UA, bucket.clone(), "postgres/"),
    );
    for n in 0..11u64 {
        let key = format!("postgres/orders/2024-10-{:02}/dump.sql.gz", 1 + n);
        let bytes = 70_000_000 + hash2(plan.seed, n) % 28_000_000;
        bld.add(
            (25, 45),
            CT,
            0,
            Mark::Amount(bytes),
            s3_get(&id, a, ATTACK_UA, bucket.clone(), key, bytes),
        );
    }
    let keys = vec![(CT, id.session_key())];
    bld.finish(
        plan,
        Kind::S3BulkBytes,
        keys,
        Oracle::Sum {
            span: 600_000,
            threshold: 600_000_000,
            seen: Vec::new(),
        },
    )
}

/// Stolen task credentials list the secrets and read sixteen of them by ARN: ≥ 12 distinct in
/// 5 minutes.
fn secrets_burst<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let a = plan.attacker;
    let pools = plan.pools;
    let svc = &pools.services[(plan.seed % pools.services.len() as u64) as usize];
    let id = Rc::new(role(
        svc.account,
        "",
        &svc.role,
        "ecs-task",
        hash2(plan.seed, 1),
        plan.start - 1_200_000,
        false,
    ));
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "secretsmanager",
            "ListSecrets",
            "{\"maxResults\":100}".to_owned(),
            String::new(),
        ),
    );
    for n in 0..16usize {
        let other = &pools.services[(n * 7 + plan.seed as usize) % pools.services.len()];
        let mut suffix = Vec::new();
        out::chars(&mut suffix, out::BASE62, hash2(plan.seed, n as u64), 6);
        let arn = format!(
            "arn:aws:secretsmanager:us-east-1:{}:secret:prod/{}/db-credentials-{}",
            svc.account,
            other.name,
            String::from_utf8(suffix).unwrap_or_default()
        );
        let value = super::rng::hash_str(&arn);
        bld.add(
            (4, 11),
            CT,
            0,
            Mark::Value(value),
            ct_step(
                &id,
                a,
                ATTACK_UA,
                "secretsmanager",
                "GetSecretValue",
                format!("{{\"secretId\":\"{arn}\"}}"),
                String::new(),
            ),
        );
    }
    let keys = vec![(CT, id.session_key())];
    bld.finish(
        plan,
        Kind::SecretsBurst,
        keys,
        Oracle::Distinct {
            span: 300_000,
            threshold: 12,
            seen: Vec::new(),
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn gh_step<'p>(
    pools: &'p Pools,
    person: usize,
    hashed: &Rc<Vec<u8>>,
    addr: u32,
    country: &'static str,
    ua: &'static str,
    action: &'static str,
    repo: usize,
) -> Render<'p> {
    let hashed = Rc::clone(hashed);
    Box::new(move |b, t, seed| {
        let p = &pools.people[person];
        let e = super::github::Event {
            t,
            action,
            actor: &p.github,
            actor_id: p.github_id,
            bot: false,
            addr,
            country,
            ua,
            repo: Some(&pools.repos[repo]),
            token: Some(super::github::Token {
                hashed: &hashed,
                kind: "Personal access token (classic)",
                id: Some(100_000_000 + seed % 90_000_000),
                scopes: Some("repo,read:org"),
            }),
            seed,
        };
        super::github::write(b, &e, None);
    })
}

fn github_key(hashed: &[u8]) -> String {
    format!("github:token:{}", std::str::from_utf8(hashed).unwrap_or(""))
}

/// A developer's token, replayed from elsewhere, mirrors the organisation: ≥ 25 distinct
/// repositories cloned in 10 minutes.
fn clone_burst<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let pools = plan.pools;
    let person = (plan.seed % pools.people.len() as u64) as usize;
    let mut hashed = Vec::new();
    super::github::hashed_token(&mut hashed, hash2(plan.seed, 1));
    let hashed = Rc::new(hashed);
    let repos = pools.repos.len();
    let first = (plan.seed % repos as u64) as usize;
    for n in 0..34usize {
        let repo = (first + n * 11) % repos;
        let value = super::rng::hash_str(&pools.repos[repo].name);
        bld.add(
            (5, 11),
            Source::Github,
            0,
            Mark::Value(value),
            gh_step(
                pools,
                person,
                &hashed,
                plan.attacker,
                "RO",
                "git/2.43.0",
                "git.clone",
                repo,
            ),
        );
    }
    let keys = vec![(Source::Github, github_key(&hashed))];
    bld.finish(
        plan,
        Kind::CloneBurst,
        keys,
        Oracle::Distinct {
            span: 600_000,
            threshold: 25,
            seen: Vec::new(),
        },
    )
}

/// An Okta session's events from a fixed place and address.
struct OktaSide<'p> {
    pools: &'p Pools,
    person: usize,
    session: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn okta_step<'p>(
    side: &Rc<OktaSide<'p>>,
    place: &'p Place,
    addr: u32,
    event_type: &'static str,
    ok: bool,
    credential: Option<&'static str>,
    target: u8,
    debug: Option<String>,
) -> Render<'p> {
    let side = Rc::clone(side);
    Box::new(move |b, t, seed| {
        let pools = side.pools;
        let person = &pools.people[side.person];
        let e = okta::Event {
            t,
            event_type,
            actor: person,
            session: &side.session,
            place,
            addr,
            browser: &BROWSERS[person.browser],
            result: if ok { "SUCCESS" } else { "FAILURE" },
            reason: (!ok).then_some(if credential == Some("PUSH") {
                "User rejected Okta push verify"
            } else {
                "INVALID_CREDENTIALS"
            }),
            provider: match (event_type, credential) {
                ("user.session.start", _) => Some("OKTA_AUTHENTICATION_PROVIDER"),
                (_, Some(_)) => Some("FACTOR_PROVIDER"),
                _ => None,
            },
            credential: if event_type == "user.session.start" {
                Some("PASSWORD")
            } else {
                credential
            },
            seed,
        };
        let other = &pools.people[(side.person + 1) % pools.people.len()];
        let debug_extra = debug.clone();
        let targets = |b: &mut Vec<u8>| match target {
            // The actor itself.
            1 => okta::user_object(b, person),
            // The actor and the super admins group.
            2 => {
                okta::user_object(b, person);
                b.push(b',');
                okta::target(
                    b,
                    &pools.okta_group_ids[6],
                    "UserGroup",
                    "unknown",
                    "Okta-Super-Admins",
                );
            }
            3 => okta::user_object(b, other),
            4 => okta::target(
                b,
                &pools.okta_app_ids[3],
                "AppInstance",
                "AWS IAM Identity Center",
                "AWS IAM Identity Center",
            ),
            5 => okta::target(
                b,
                "0oa1okta1admin1cons0e",
                "AppInstance",
                "Okta Admin Console",
                "Okta Admin Console",
            ),
            6 => okta::target(
                b,
                "opfACNkiAptzVfRLHVkU",
                "AuthenticatorEnrollment",
                "unknown",
                "Okta Verify",
            ),
            _ => okta::target(
                b,
                "pfd9hgo0Obru0j0SGAGw",
                "AuthenticatorEnrollment",
                "unknown",
                "Password",
            ),
        };
        match debug_extra {
            Some(extra) => okta::write(b, &e, &targets, Some(&|b: &mut Vec<u8>| s(b, &extra))),
            None => okta::write(b, &e, &targets, None),
        }
    })
}

fn okta_session<'p>(plan: &Plan<'p>, person: usize) -> Rc<OktaSide<'p>> {
    let mut session = Vec::new();
    okta::session_id(&mut session, hash2(plan.seed, 1));
    Rc::new(OktaSide {
        pools: plan.pools,
        person,
        session,
    })
}

fn okta_key(side: &OktaSide<'_>) -> String {
    format!("okta:{}", std::str::from_utf8(&side.session).unwrap_or(""))
}

/// Push bombing: with a stolen password, the attacker sends push after push until the user
/// approves one. ≥ 4 denials in 10 minutes.
fn mfa_push_bombing<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let person = (plan.seed % plan.pools.people.len() as u64) as usize;
    let side = okta_session(plan, person);
    let place = &ATTACK_PLACES[0];
    let a = plan.attacker;
    let o = Source::Okta;
    bld.add(
        (0, 0),
        o,
        0,
        Mark::None,
        okta_step(&side, place, a, "user.session.start", true, None, 0, None),
    );
    for _ in 0..6 {
        bld.add(
            (6, 20),
            o,
            0,
            Mark::None,
            okta_step(
                &side,
                place,
                a,
                "system.push.send_factor_verify_push",
                true,
                None,
                6,
                None,
            ),
        );
        bld.add(
            (8, 15),
            o,
            0,
            Mark::Count,
            okta_step(
                &side,
                place,
                a,
                "user.mfa.okta_verify.deny_push",
                false,
                Some("PUSH"),
                6,
                None,
            ),
        );
    }
    bld.add(
        (10, 30),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            a,
            "system.push.send_factor_verify_push",
            true,
            None,
            6,
            None,
        ),
    );
    bld.add(
        (5, 12),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            a,
            "user.authentication.auth_via_mfa",
            true,
            Some("PUSH"),
            6,
            None,
        ),
    );
    bld.add(
        (10, 30),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            a,
            "user.authentication.sso",
            true,
            None,
            4,
            None,
        ),
    );
    let keys = vec![(o, okta_key(&side))];
    bld.finish(
        plan,
        Kind::MfaPushBombing,
        keys,
        Oracle::Count {
            span: 600_000,
            threshold: 4,
            seen: Vec::new(),
        },
    )
}

/// An Okta session signed in from home, replayed from another network: another /24 of the
/// same provider (new network only), another AS in the same country (new AS), or the same
/// multi-country AS from another country (new country).
fn okta_reuse<'p>(plan: &Plan<'p>, kind: Kind) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let person = (plan.seed % plan.pools.people.len() as u64) as usize;
    let side = okta_session(plan, person);
    let o = Source::Okta;
    let (home, home_addr, away, away_addr): (&'p Place, u32, &'p Place, u32) = match kind {
        Kind::TokenReuseAsn => {
            let home = &PLACES[5];
            (
                home,
                super::pools::net24(home, plan.seed) | 23,
                &ATTACK_PLACES[1],
                plan.attacker,
            )
        }
        Kind::TokenReuseCountry => {
            let (us, ro) = (&WARP[0], &WARP[1]);
            let a = super::pools::net24(us, plan.seed) | 41;
            let mut b = super::pools::net24(ro, plan.seed ^ 0x5eed) | 77;
            if b >> 8 == a >> 8 {
                b ^= 0x100;
            }
            (us, a, ro, b)
        }
        _ => {
            let home = &PLACES[2];
            let a = super::pools::net24(home, plan.seed) | 18;
            let mut b = super::pools::net24(home, plan.seed ^ 0x5eed) | 201;
            if b >> 8 == a >> 8 {
                b ^= 0x100;
            }
            (home, a, home, b)
        }
    };
    bld.add(
        (0, 0),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            home,
            home_addr,
            "user.session.start",
            true,
            None,
            0,
            None,
        ),
    );
    bld.add(
        (4, 9),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            home,
            home_addr,
            "system.push.send_factor_verify_push",
            true,
            None,
            6,
            None,
        ),
    );
    bld.add(
        (5, 12),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            home,
            home_addr,
            "user.authentication.auth_via_mfa",
            true,
            Some("PUSH"),
            6,
            None,
        ),
    );
    bld.add(
        (20, 90),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            home,
            home_addr,
            "user.authentication.sso",
            true,
            None,
            4,
            None,
        ),
    );
    bld.add(
        (60, 240),
        o,
        0,
        Mark::Trigger,
        okta_step(
            &side,
            away,
            away_addr,
            "user.authentication.sso",
            true,
            None,
            4,
            None,
        ),
    );
    bld.add(
        (20, 60),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            away,
            away_addr,
            "user.session.access_admin_app",
            true,
            None,
            5,
            None,
        ),
    );
    let keys = vec![(o, okta_key(&side))];
    bld.finish(plan, kind, keys, Oracle::First)
}

/// A task's credentials used from its VPC address, then replayed from outside.
fn aws_reuse<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let pools = plan.pools;
    let svc = &pools.services[(plan.seed % pools.services.len() as u64) as usize];
    let id = Rc::new(role(
        svc.account,
        "",
        &svc.role,
        "ecs-task",
        hash2(plan.seed, 1),
        plan.start - 900_000,
        false,
    ));
    let home = super::pools::private_ip(svc.vpc, plan.seed);
    let table = format!(
        "{{\"tableName\":\"{}\",\"key\":{{\"pk\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}}}}",
        svc.table
    );
    for _ in 0..4 {
        bld.add(
            (10, 60),
            CT,
            0,
            Mark::None,
            ct_step(
                &id,
                home,
                svc.ua,
                "dynamodb",
                "GetItem",
                table.clone(),
                String::new(),
            ),
        );
    }
    let a = plan.attacker;
    bld.add(
        (30, 120),
        CT,
        0,
        Mark::Trigger,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "sts",
            "GetCallerIdentity",
            String::new(),
            String::new(),
        ),
    );
    bld.add(
        (10, 40),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            a,
            ATTACK_UA,
            "s3",
            "ListBuckets",
            "{\"Host\":\"s3.amazonaws.com\"}".to_owned(),
            String::new(),
        ),
    );
    bld.add(
        (10, 40),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            home,
            svc.ua,
            "dynamodb",
            "GetItem",
            table,
            String::new(),
        ),
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, Kind::TokenReuseNetwork, keys, Oracle::First)
}

struct K8sSide {
    username: Vec<u8>,
    uid: Vec<u8>,
    groups: Vec<u8>,
    jti: Option<u64>,
    fingerprint: u64,
    pod: Option<(&'static str, u64, u32)>,
}

impl K8sSide {
    fn caller(&self) -> Caller<'_> {
        Caller {
            username: &self.username,
            uid: &self.uid,
            groups: &self.groups,
            cred: match self.jti {
                Some(jti) => Cred::Token { jti, pod: self.pod },
                None => Cred::Cert {
                    fingerprint: self.fingerprint,
                },
            },
        }
    }

    fn key(&self) -> String {
        let mut b = Vec::new();
        match self.jti {
            Some(j) => {
                s(&mut b, "k8s:jti:");
                k8s::jti(&mut b, j);
            }
            None => {
                s(&mut b, "k8s:x509:");
                k8s::fingerprint(&mut b, self.fingerprint);
            }
        }
        String::from_utf8(b).unwrap_or_default()
    }
}

fn frontend_token(plan: &Plan<'_>) -> K8sSide {
    let mut uid = Vec::new();
    out::uuid(&mut uid, hash2(plan.seed, 7));
    K8sSide {
        username: b"system:serviceaccount:web:frontend".to_vec(),
        uid,
        groups:
            b"\"system:serviceaccounts\",\"system:serviceaccounts:web\",\"system:authenticated\""
                .to_vec(),
        jti: Some(hash2(plan.seed, 1)),
        fingerprint: 0,
        pod: Some(("frontend", hash2(plan.seed, 3), (plan.seed % 97) as u32)),
    }
}

#[derive(Clone, Copy)]
struct K8sReq {
    verb: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
    name: Option<&'static str>,
    group: &'static str,
    code: u64,
    impersonate: bool,
    binding: bool,
}

const fn kreq(
    verb: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
) -> K8sReq {
    K8sReq {
        verb,
        resource,
        namespace,
        name: None,
        group: "",
        code: 200,
        impersonate: false,
        binding: false,
    }
}

fn k8s_step<'p>(side: &Rc<K8sSide>, addr: u32, ua: &'static str, r: K8sReq) -> Render<'p> {
    let side = Rc::clone(side);
    Box::new(move |b, t, seed| {
        let mut req = Request::new(r.verb, r.resource, r.namespace);
        req.name = r.name.map(str::as_bytes);
        req.api_group = r.group;
        req.code = r.code;
        if r.impersonate {
            req.impersonate = Some((
                "system:admin",
                "\"system:masters\",\"system:authenticated\"",
            ));
        }
        req.reason = if r.code == 403 {
            ""
        } else {
            "RBAC: allowed by ClusterRoleBinding \\\"frontend-legacy-ops\\\" of ClusterRole \\\"ops-manager\\\""
        };
        let binding = |b: &mut Vec<u8>| {
            s(b, "{\"kind\":\"ClusterRoleBinding\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"metadata\":{\"name\":\"frontend-cluster-admin\",\"creationTimestamp\":null},\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"frontend\",\"namespace\":\"web\"}],\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"cluster-admin\"}}");
        };
        let object: Body<'_> = if r.binding { Some(&binding) } else { None };
        k8s::write(b, t, &side.caller(), &req, addr, ua, object, seed);
    })
}

/// A service-account token used from its pod, then replayed from outside the cluster.
fn k8s_reuse<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let side = Rc::new(frontend_token(plan));
    let pod = super::pools::private_ip(42, plan.seed);
    const APP_UA: &str = "frontend/v2.14.0 (linux/amd64) kubernetes/v0.31.1";
    let k = Source::Kubernetes;
    let lease = K8sReq {
        name: Some("frontend-leader"),
        group: "coordination.k8s.io",
        ..kreq("update", "leases", Some("web"))
    };
    bld.add(
        (0, 0),
        k,
        0,
        Mark::None,
        k8s_step(
            &side,
            pod,
            APP_UA,
            K8sReq {
                name: Some("frontend-config"),
                ..kreq("get", "configmaps", Some("web"))
            },
        ),
    );
    for _ in 0..3 {
        bld.add(
            (5, 15),
            k,
            0,
            Mark::None,
            k8s_step(&side, pod, APP_UA, lease),
        );
    }
    let a = plan.attacker;
    let ua = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819";
    bld.add(
        (30, 120),
        k,
        0,
        Mark::Trigger,
        k8s_step(&side, a, ua, kreq("list", "secrets", Some("web"))),
    );
    bld.add(
        (10, 30),
        k,
        0,
        Mark::None,
        k8s_step(
            &side,
            a,
            ua,
            K8sReq {
                name: Some("frontend-credentials"),
                ..kreq("get", "secrets", Some("web"))
            },
        ),
    );
    let keys = vec![(k, side.key())];
    bld.finish(plan, Kind::TokenReuseNetwork, keys, Oracle::First)
}

/// A developer's token used from home, then replayed from another network of the same country
/// (GitHub reports the country, and a proxy in the victim's country is how such a replay
/// avoids a geography check): a new network, and only that.
fn github_reuse<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let pools = plan.pools;
    let person = (plan.seed % pools.people.len() as u64) as usize;
    let p = &pools.people[person];
    let home = p.home_net | 77;
    let country = super::github::country_code(PLACES[p.home].country);
    let mut hashed = Vec::new();
    super::github::hashed_token(&mut hashed, hash2(plan.seed, 1));
    let hashed = Rc::new(hashed);
    let repo = (plan.seed % pools.repos.len() as u64) as usize;
    let g = Source::Github;
    for action in ["git.fetch", "git.fetch", "git.push", "git.fetch"] {
        bld.add(
            (20, 120),
            g,
            0,
            Mark::None,
            gh_step(
                pools,
                person,
                &hashed,
                home,
                country,
                "git/2.46.0",
                action,
                repo,
            ),
        );
    }
    let a = plan.attacker;
    bld.add(
        (60, 240),
        g,
        0,
        Mark::Trigger,
        gh_step(
            pools,
            person,
            &hashed,
            a,
            country,
            "git/2.43.0",
            "git.clone",
            repo,
        ),
    );
    bld.add(
        (10, 30),
        g,
        0,
        Mark::None,
        gh_step(
            pools,
            person,
            &hashed,
            a,
            country,
            "git/2.43.0",
            "git.clone",
            (repo + 1) % pools.repos.len(),
        ),
    );
    let keys = vec![(g, github_key(&hashed))];
    bld.finish(plan, Kind::TokenReuseNetwork, keys, Oracle::First)
}

/// An administrator's SSO session, issued more than an hour ago, attaches a policy to another
/// role: a stale privileged session changing permissions (step-up, not a kill).
fn stale_privileged<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let pools = plan.pools;
    let admin = pools.admins[(plan.seed % pools.admins.len() as u64) as usize] as usize;
    let p = &pools.people[admin];
    let email = format!("{}@{}", p.login, super::pools::DOMAIN);
    let created = (plan.start - 60_000 * (75 + (plan.seed % 90) as i64)) / 1000 * 1000;
    let id = Rc::new(role(
        ACCOUNT_PROD,
        "aws-reserved/sso.amazonaws.com/",
        SSO_ADMIN_ROLE,
        &email,
        hash2(plan.seed, 1),
        created,
        true,
    ));
    let from = if p.in_office {
        0xc633_6400 | 31
    } else {
        p.home_net | 9
    };
    let ua = super::pools::CLI_AGENTS[p.cli];
    let target = &pools.services[(plan.seed % pools.services.len() as u64) as usize];
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            from,
            ua,
            "iam",
            "ListRoles",
            "{\"maxItems\":100}".to_owned(),
            String::new(),
        ),
    );
    bld.add(
        (20, 60),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            from,
            ua,
            "iam",
            "GetRole",
            format!("{{\"roleName\":\"{}\"}}", target.role),
            String::new(),
        ),
    );
    bld.add(
        (30, 90),
        CT,
        0,
        Mark::Trigger,
        ct_step(
            &id,
            from,
            ua,
            "iam",
            "AttachRolePolicy",
            format!("{{\"roleName\":\"{}\",\"policyArn\":\"arn:aws:iam::aws:policy/AmazonS3FullAccess\"}}", target.role),
            String::new(),
        ),
    );
    bld.add(
        (15, 40),
        CT,
        0,
        Mark::None,
        ct_step(
            &id,
            from,
            ua,
            "iam",
            "ListAttachedRolePolicies",
            format!("{{\"roleName\":\"{}\"}}", target.role),
            String::new(),
        ),
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, Kind::StalePrivilegedChange, keys, Oracle::First)
}

/// A web pod's token binds itself to cluster-admin; or a developer's certificate impersonates
/// `system:admin` in `system:masters`.
fn k8s_cluster_admin<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let k = Source::Kubernetes;
    if plan.variant.is_multiple_of(2) {
        let side = Rc::new(frontend_token(plan));
        let pod = super::pools::private_ip(42, plan.seed);
        let ua = "kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7";
        bld.add(
            (0, 0),
            k,
            0,
            Mark::None,
            k8s_step(
                &side,
                pod,
                ua,
                K8sReq {
                    group: "authorization.k8s.io",
                    code: 201,
                    ..kreq("create", "selfsubjectrulesreviews", None)
                },
            ),
        );
        bld.add(
            (10, 40),
            k,
            0,
            Mark::None,
            k8s_step(
                &side,
                pod,
                ua,
                K8sReq {
                    code: 403,
                    ..kreq("list", "secrets", None)
                },
            ),
        );
        bld.add(
            (20, 60),
            k,
            0,
            Mark::Trigger,
            k8s_step(
                &side,
                pod,
                ua,
                K8sReq {
                    name: Some("frontend-cluster-admin"),
                    group: "rbac.authorization.k8s.io",
                    code: 201,
                    binding: true,
                    ..kreq("create", "clusterrolebindings", None)
                },
            ),
        );
        bld.add(
            (10, 40),
            k,
            0,
            Mark::None,
            k8s_step(&side, pod, ua, kreq("list", "secrets", Some("kube-system"))),
        );
        let keys = vec![(k, side.key())];
        return bld.finish(plan, Kind::K8sClusterAdmin, keys, Oracle::First);
    }
    let pools = plan.pools;
    let person = &pools.people[(plan.seed % pools.people.len() as u64) as usize];
    let side = Rc::new(K8sSide {
        username: person.login.as_bytes().to_vec(),
        uid: Vec::new(),
        groups: b"\"platform-devs\",\"system:authenticated\"".to_vec(),
        jti: None,
        fingerprint: hash2(plan.seed, 1),
        pod: None,
    });
    let from = person.home_net | 61;
    let ua = "kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5";
    bld.add(
        (0, 0),
        k,
        0,
        Mark::None,
        k8s_step(&side, from, ua, kreq("list", "pods", Some("payments"))),
    );
    bld.add(
        (10, 40),
        k,
        0,
        Mark::None,
        k8s_step(&side, from, ua, kreq("list", "namespaces", None)),
    );
    bld.add(
        (20, 60),
        k,
        0,
        Mark::Trigger,
        k8s_step(
            &side,
            from,
            ua,
            K8sReq {
                impersonate: true,
                ..kreq("list", "secrets", Some("kube-system"))
            },
        ),
    );
    bld.add(
        (10, 40),
        k,
        0,
        Mark::None,
        k8s_step(
            &side,
            from,
            ua,
            K8sReq {
                impersonate: true,
                name: Some("aws-load-balancer-tls"),
                ..kreq("get", "secrets", Some("kube-system"))
            },
        ),
    );
    let keys = vec![(k, side.key())];
    bld.finish(plan, Kind::K8sClusterAdmin, keys, Oracle::First)
}

/// An Okta admin session grants the actor itself Super administrator, or adds it to the
/// super admins group.
fn okta_self_grant<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let pools = plan.pools;
    let admin = pools.admins[(plan.seed % pools.admins.len() as u64) as usize] as usize;
    let side = okta_session(plan, admin);
    let p = &pools.people[admin];
    let place = &PLACES[p.home];
    let addr = p.home_net | 44;
    let o = Source::Okta;
    bld.add(
        (0, 0),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            addr,
            "user.session.start",
            true,
            None,
            0,
            None,
        ),
    );
    bld.add(
        (4, 9),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            addr,
            "system.push.send_factor_verify_push",
            true,
            None,
            6,
            None,
        ),
    );
    bld.add(
        (5, 12),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            addr,
            "user.authentication.auth_via_mfa",
            true,
            Some("PUSH"),
            6,
            None,
        ),
    );
    bld.add(
        (15, 40),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            addr,
            "user.session.access_admin_app",
            true,
            None,
            5,
            None,
        ),
    );
    bld.add(
        (20, 60),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            addr,
            "user.account.reset_password",
            true,
            None,
            3,
            None,
        ),
    );
    if plan.variant.is_multiple_of(2) {
        bld.add(
            (30, 90),
            o,
            0,
            Mark::Trigger,
            okta_step(
                &side,
                place,
                addr,
                "user.account.privilege.grant",
                true,
                None,
                1,
                Some(",\"privilegeGranted\":\"Super administrator\"".to_owned()),
            ),
        );
    } else {
        bld.add(
            (30, 90),
            o,
            0,
            Mark::Trigger,
            okta_step(
                &side,
                place,
                addr,
                "group.user_membership.add",
                true,
                None,
                2,
                None,
            ),
        );
    }
    bld.add(
        (30, 120),
        o,
        0,
        Mark::None,
        okta_step(
            &side,
            place,
            addr,
            "user.authentication.sso",
            true,
            None,
            4,
            None,
        ),
    );
    let keys = vec![(o, okta_key(&side))];
    bld.finish(plan, Kind::OktaSelfGrant, keys, Oracle::First)
}

/// The longest an attack takes in event time when its steps are written on time (ms), to
/// leave room for it before the run ends.
pub const MAX_SPAN_MS: i64 = 12 * 60_000;

/// A leaked IAM user key looks around, then makes one move that outlives its revocation:
/// stopping the trail or deleting flow logs (`BlindTrail`), or sharing an image or opening a
/// role's trust to an account outside the organization (`ExternalShare`).
fn leaked_key_move<'p>(plan: &Plan<'p>, kind: Kind) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let svc = &plan.pools.services[(plan.seed % plan.pools.services.len() as u64) as usize];
    let id = Rc::new(user(
        svc.account,
        &format!("svc-{}", svc.name),
        hash2(plan.seed, 3),
    ));
    let a = plan.attacker;
    let step = |service: &'static str, name: &'static str, params: String| {
        ct_step(&id, a, ATTACK_UA, service, name, params, String::new())
    };
    bld.add(
        (0, 0),
        CT,
        0,
        Mark::None,
        step("sts", "GetCallerIdentity", String::new()),
    );
    // An account no pool uses: outside the organization.
    let outsider = format!(
        "{:012}",
        100_000_000_000 + hash2(plan.seed, 4) % 800_000_000_000
    );
    let (look, moves) = match (kind, plan.variant % 2) {
        (Kind::BlindTrail, 0) => (
            step("cloudtrail", "DescribeTrails", "{}".to_owned()),
            step(
                "cloudtrail",
                "StopLogging",
                "{\"name\":\"org-trail\"}".to_owned(),
            ),
        ),
        (Kind::BlindTrail, _) => (
            step("ec2", "DescribeFlowLogs", "{}".to_owned()),
            step(
                "ec2",
                "DeleteFlowLogs",
                "{\"DeleteFlowLogsRequest\":{\"FlowLogId\":{\"content\":\"fl-0a1b2c3d4e5f60718\",\"tag\":1}}}".to_owned(),
            ),
        ),
        (_, 0) => (
            step("ec2", "DescribeImages", "{\"ownersSet\":{\"items\":[{\"owner\":\"self\"}]}}".to_owned()),
            step(
                "ec2",
                "ModifyImageAttribute",
                format!("{{\"imageId\":\"ami-0{:016x}\",\"attributeType\":\"launchPermission\",\"launchPermission\":{{\"add\":{{\"items\":[{{\"userId\":\"{outsider}\"}}]}}}}}}", hash2(plan.seed, 5)),
            ),
        ),
        (_, _) => (
            step("iam", "ListRoles", "{}".to_owned()),
            step(
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
    bld.add((15, 60), CT, 0, Mark::None, look);
    bld.add((30, 120), CT, 0, Mark::Trigger, moves);
    bld.add(
        (20, 60),
        CT,
        0,
        Mark::None,
        step(
            "s3",
            "ListBuckets",
            "{\"Host\":\"s3.amazonaws.com\"}".to_owned(),
        ),
    );
    let keys = vec![(CT, id.session_key())];
    bld.finish(plan, kind, keys, Oracle::First)
}
