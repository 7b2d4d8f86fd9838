//! Benign sessions: their shapes (profiles), their compact state, and what the source writers
//! share while rendering them.
//!
//! A session is one credential or sign-in as sessionguard keys it (an `ASIA…` key, an Okta
//! `rootSessionId`, a service-account token, a hashed GitHub token). Its identifiers are derived
//! from the run's seed and the session's serial number, so they never collide and never depend
//! on what else was drawn. The state is a few words per session, so a million concurrent
//! sessions fit in memory.

use super::pools::{Pools, PLACES};
use super::rng::{hash2, Rng};

/// What kind of actor a session is, which decides what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    // CloudTrail
    /// An ECS task, Lambda or EC2 role session of a service (temporary `ASIA…` key, VPC address).
    Workload,
    /// A person's AWS SSO team-role session from the CLI.
    Human,
    /// A person's AWS console session (keyed by principal and sign-in time).
    Console,
    /// A GitHub Actions deployment role (web identity), deploying for one service.
    Deployer,
    /// A person's SSO `AdministratorAccess` session: administers *other* principals, fresh.
    Admin,
    /// A Terraform pipeline's IAM user (long-term `AKIA…` key) changing other roles.
    Terraform,
    /// The agent platform's broker, assuming agent roles with `SourceIdentity agent=…`.
    Broker,
    /// One agent run, chained from the broker on another subnet.
    Agent,
    /// The security scanner, chaining into `OrganizationAccountAccessRole` of member accounts.
    Scanner,
    /// The scanner's session in a member account: reads only.
    ScanChild,
    // Okta
    OktaUser,
    OktaAdmin,
    // Kubernetes
    PodToken,
    Controller,
    Node,
    KubeUser,
    KubeCi,
    // GitHub
    GhApp,
    GhActions,
    GhPat,
    GhWeb,
}

/// Session flags.
pub const F_MFA_TYPO: u16 = 1;
pub const F_PUSH_DENIED: u16 = 2;
pub const F_OFFICE: u16 = 4;
pub const F_ENDED: u16 = 8;

/// One benign session's state.
#[derive(Clone, Debug)]
pub struct Sess {
    /// Serial number: the source of its identifiers.
    pub id: u64,
    pub profile: Profile,
    /// A person, service, node … depending on the profile.
    pub who: u32,
    /// Profile-specific: agent, member account, repository, run number …
    pub aux: u32,
    /// The IPv4 address it currently uses.
    pub addr: u32,
    /// Events left.
    pub budget: u32,
    /// Events written so far.
    pub step: u32,
    /// When its credential or sign-in was created (ms); `i64::MIN` before its first event.
    pub created: i64,
    /// When its credential expires (ms).
    pub expires: i64,
    /// Events of a burst still to come (Athena reading for the session).
    pub pending: u16,
    pub flags: u16,
    /// Mean virtual time between its events: its activity level.
    pub pace: u32,
    /// Direct S3 reads in the current 5-minute window, and KiB read in the current 10 minutes.
    s3_window: u32,
    s3_reads: u16,
    kib_window: u32,
    kib: u32,
}

/// Direct `GetObject` calls of one benign session per fixed 5-minute window: any sliding
/// 5 minutes then holds at most twice this, under the pack's 60.
pub const S3_READS_PER_5M: u16 = 29;
/// KiB one benign session reads directly per fixed 10 minutes (twice this stays under 600 MB).
pub const S3_KIB_PER_10M: u32 = 283_000;

impl Sess {
    pub fn new(id: u64, profile: Profile, who: u32, aux: u32, addr: u32, budget: u32) -> Sess {
        Sess {
            id,
            profile,
            who,
            aux,
            addr,
            budget: budget.max(1),
            step: 0,
            created: i64::MIN,
            expires: i64::MAX,
            pending: 0,
            flags: 0,
            pace: 1_000,
            s3_window: u32::MAX,
            s3_reads: 0,
            kib_window: u32::MAX,
            kib: 0,
        }
    }

    /// Whether a direct S3 read of `bytes` at `t` keeps this workload within its habits; if
    /// so, it is counted. Bulk reading is what the attacks do, or services for the session
    /// (Athena), which are not direct reads.
    pub fn s3_read_allowed(&mut self, t: i64, bytes: u64) -> bool {
        let w5 = (t / 300_000) as u32;
        if self.s3_window != w5 {
            self.s3_window = w5;
            self.s3_reads = 0;
        }
        let w10 = (t / 600_000) as u32;
        if self.kib_window != w10 {
            self.kib_window = w10;
            self.kib = 0;
        }
        let kib = bytes.div_ceil(1024) as u32;
        if self.s3_reads >= S3_READS_PER_5M || self.kib + kib > S3_KIB_PER_10M {
            return false;
        }
        self.s3_reads += 1;
        self.kib += kib;
        true
    }

    /// NAT rotation: an office egress moves between the addresses of its pool (one /24);
    /// homes and machines keep theirs.
    pub fn rotate(&mut self, rng: &mut Rng) {
        if self.flags & F_OFFICE != 0 && rng.chance(0.3) {
            self.addr = (self.addr & 0xffff_ff00) | (10 + rng.below(24)) as u32;
        }
    }

    /// The serial-derived seed for identifier `salt` of this session.
    pub fn key_seed(&self, seed: u64, salt: u64) -> u64 {
        hash2(hash2(seed, self.id), salt)
    }
}

/// Shared state while rendering: the cast, the random stream, and child sessions spawned by
/// the event being written (role chains).
pub struct Env<'p> {
    pub pools: &'p Pools,
    pub rng: Rng,
    pub seed: u64,
    pub next_id: u64,
    pub spawned: Vec<Sess>,
}

impl Env<'_> {
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A person's address for a new session: the office NAT pool or their home.
    pub fn person_addr(&mut self, person: u32, office: bool) -> (u32, u16) {
        let p = &self.pools.people[person as usize];
        if office {
            ((0xc633_6400) | (10 + self.rng.below(24)) as u32, F_OFFICE)
        } else {
            (p.home_net | (2 + (p.github_id % 250)) as u32, 0)
        }
    }

    /// Long-tailed session length.
    pub fn length(&mut self, min: f64, alpha: f64, cap: u32) -> u32 {
        (self.rng.pareto(min, alpha) as u64).min(u64::from(cap)) as u32
    }
}

/// Reused buffers for identifiers that are written more than once per record.
#[derive(Default)]
pub struct Scratch {
    pub key: Vec<u8>,
    pub name: Vec<u8>,
    pub extra: Vec<u8>,
}

/// The place (AS, geography) of an address a person uses.
pub fn place_of(addr: u32, person_home: usize) -> usize {
    if addr >> 8 == 0x00c6_3364 {
        super::pools::OFFICE
    } else if addr >> 8 == 0x00c0_0002 {
        super::pools::CI_NAT
    } else {
        person_home.min(PLACES.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benign_s3_reads_stay_under_the_pack_in_any_sliding_window() {
        let mut s = Sess::new(1, Profile::Workload, 0, 0, 0, 10);
        let mut times = Vec::new();
        let mut t = 0;
        while t < 3_600_000 {
            if s.s3_read_allowed(t, 9_000_000) {
                times.push((t, 9_000_000u64));
            }
            t += 700;
        }
        for (i, &(end, _)) in times.iter().enumerate() {
            let count = times[..=i]
                .iter()
                .filter(|(x, _)| *x > end - 300_000)
                .count();
            assert!(count < 60);
            let bytes: u64 = times[..=i]
                .iter()
                .filter(|(x, _)| *x > end - 600_000)
                .map(|(_, b)| b)
                .sum();
            assert!(bytes < 600_000_000);
        }
    }
}
