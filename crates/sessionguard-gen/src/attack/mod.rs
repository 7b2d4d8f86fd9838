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

mod aws;
pub use aws::TASK_AGENTS;
mod github;
mod kubernetes;
mod okta;

use super::pools::Pools;
use super::rng::Rng;
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
    /// Task-grant cases, planned only with `--agent-tasks` (their grants are written beside).
    AgentOutsideGrant,
    AgentAfterTask,
}

pub const KINDS: [Kind; 17] = [
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
    Kind::AgentOutsideGrant,
    Kind::AgentAfterTask,
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
            Kind::AgentOutsideGrant => "agent_outside_grant",
            Kind::AgentAfterTask => "agent_after_task",
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
            Kind::AgentOutsideGrant => "sg.agent.outside_grant",
            Kind::AgentAfterTask => "sg.agent.after_grant",
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
            | Kind::ExternalShare
            | Kind::AgentOutsideGrant
            | Kind::AgentAfterTask => &[Source::Cloudtrail],
            Kind::CloneBurst => &[Source::Github],
            Kind::MfaPushBombing
            | Kind::TokenReuseAsn
            | Kind::TokenReuseCountry
            | Kind::OktaSelfGrant => &[Source::Okta],
            Kind::K8sClusterAdmin => &[Source::Kubernetes],
            Kind::TokenReuseNetwork => &[],
        }
    }

    /// A case about task grants (`--agent-tasks`).
    pub fn is_agent_task(self) -> bool {
        matches!(self, Kind::AgentOutsideGrant | Kind::AgentAfterTask)
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
    /// The task grant a task-agent attack runs under (`--agent-tasks`).
    pub task: Option<TaskPlan>,
    /// Event time each step was written at, in step order.
    pub written_at: Vec<i64>,
}

/// A task-agent attack's grant: written to the tasks file with the attack's own times.
#[derive(Clone, Debug)]
pub struct TaskPlan {
    pub agent: &'static str,
    pub bucket: &'static str,
    pub task: String,
    /// When the grant is given (ms): before the run's first step.
    pub granted: i64,
    /// The step after whose writing the orchestrator completes the task.
    pub complete_after: Option<usize>,
}

impl<'p> Attack<'p> {
    /// Records that the current step was written at `line`, time `t`; moves to the next.
    pub fn written(&mut self, line: u64, t: i64) {
        let step = &self.steps[self.next];
        let on_target = step.key == 0;
        self.written_at.push(t);
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
pub fn cases(enabled: &dyn Fn(Source) -> bool, agent_tasks: bool) -> Vec<Case> {
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
            } else if kind.is_agent_task() && !agent_tasks {
                continue;
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
            (Kind::AgentOutsideGrant, _, _) => "a task agent reads another agent's API token, outside its task grant",
            (Kind::AgentAfterTask, _, _) => "a task agent keeps reading its inbox after its task was completed",
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

/// A delay range between two steps: `lo..=hi` seconds (and a random fraction of one).
type Secs = (u64, u64);

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
    fn add(&mut self, secs: Secs, source: Source, key: usize, mark: Mark, render: Render<'p>) {
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

    /// Adds the steps of a script on session `key`, each rendered by `render`.
    fn script<S>(
        &mut self,
        source: Source,
        key: usize,
        lines: impl IntoIterator<Item = (Secs, Mark, S)>,
        render: impl Fn(S) -> Render<'p>,
    ) {
        for (secs, mark, step) in lines {
            self.add(secs, source, key, mark, render(step));
        }
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
            task: None,
            written_at: Vec::new(),
        }
    }
}

const CT: Source = Source::Cloudtrail;

/// The attack of `kind`, played as `plan` says.
pub fn build<'p>(kind: Kind, plan: &Plan<'p>) -> Attack<'p> {
    match kind {
        Kind::SelfGrantAws => aws::self_grant_aws(plan),
        Kind::RoleChainAdmin => aws::role_chain_admin(plan),
        Kind::S3BulkRead => aws::s3_bulk_read(plan),
        Kind::S3BulkBytes => aws::s3_bulk_bytes(plan),
        Kind::SecretsBurst => aws::secrets_burst(plan),
        Kind::CloneBurst => github::clone_burst(plan),
        Kind::MfaPushBombing => okta::mfa_push_bombing(plan),
        Kind::TokenReuseNetwork => match plan.source {
            Source::Okta => okta::okta_reuse(plan, Kind::TokenReuseNetwork),
            Source::Kubernetes => kubernetes::k8s_reuse(plan),
            Source::Github => github::github_reuse(plan),
            _ => aws::aws_reuse(plan),
        },
        Kind::TokenReuseAsn | Kind::TokenReuseCountry => okta::okta_reuse(plan, kind),
        Kind::StalePrivilegedChange => aws::stale_privileged(plan),
        Kind::K8sClusterAdmin => kubernetes::k8s_cluster_admin(plan),
        Kind::OktaSelfGrant => okta::okta_self_grant(plan),
        Kind::BlindTrail | Kind::ExternalShare => aws::leaked_key_move(plan, kind),
        Kind::AgentOutsideGrant => aws::agent_outside_grant(plan),
        Kind::AgentAfterTask => aws::agent_after_task(plan),
    }
}

/// The longest an attack takes in event time when its steps are written on time (ms), to
/// leave room for it before the run ends.
pub const MAX_SPAN_MS: i64 = 12 * 60_000;
