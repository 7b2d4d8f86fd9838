//! The Okta attacks: scripts of System Log events on one sign-in session the attack owns,
//! each event one of a few kinds ([`Ev`]) with its outcome, factor and targets.

use std::rc::Rc;

use super::{Attack, Builder, Kind, Mark, Oracle, Plan, Render, Secs};
use crate::okta;
use crate::out::s;
use crate::pools::{net24, Place, Pools, ATTACK_PLACES, BROWSERS, PLACES, WARP};
use crate::rng::hash2;
use crate::Source;

/// An Okta session's owner and `rootSessionId`.
struct Side<'p> {
    pools: &'p Pools,
    person: usize,
    session: Vec<u8>,
}

impl<'p> Side<'p> {
    fn new(plan: &Plan<'p>, person: usize) -> Rc<Side<'p>> {
        let mut session = Vec::new();
        okta::session_id(&mut session, hash2(plan.seed, 1));
        Rc::new(Side {
            pools: plan.pools,
            person,
            session,
        })
    }

    fn key(&self) -> String {
        format!("okta:{}", std::str::from_utf8(&self.session).unwrap_or(""))
    }
}

/// What an event is about (its `target` array).
#[derive(Clone, Copy)]
enum Target {
    /// The password authenticator (a sign-in).
    Password,
    /// The actor itself.
    Actor,
    /// The actor and the super admins group.
    ActorToSuperAdmins,
    /// Another user.
    Other,
    AwsApp,
    AdminConsole,
    OktaVerify,
}

/// One kind of event an attack writes.
#[derive(Clone, Copy)]
struct Ev {
    event_type: &'static str,
    ok: bool,
    credential: Option<&'static str>,
    target: Target,
    /// Members added to `debugContext.debugData`.
    debug: Option<&'static str>,
}

const fn ev(event_type: &'static str, target: Target) -> Ev {
    Ev {
        event_type,
        ok: true,
        credential: None,
        target,
        debug: None,
    }
}

const SIGN_IN: Ev = ev("user.session.start", Target::Password);
const PUSH_SENT: Ev = ev("system.push.send_factor_verify_push", Target::OktaVerify);
const PUSH_DENIED: Ev = Ev {
    ok: false,
    credential: Some("PUSH"),
    ..ev("user.mfa.okta_verify.deny_push", Target::OktaVerify)
};
const PUSH_APPROVED: Ev = Ev {
    credential: Some("PUSH"),
    ..ev("user.authentication.auth_via_mfa", Target::OktaVerify)
};
const SSO: Ev = ev("user.authentication.sso", Target::AwsApp);
const ADMIN_APP: Ev = ev("user.session.access_admin_app", Target::AdminConsole);
const RESET_PASSWORD: Ev = ev("user.account.reset_password", Target::Other);
const GRANT_SUPER_ADMIN: Ev = Ev {
    debug: Some(",\"privilegeGranted\":\"Super administrator\""),
    ..ev("user.account.privilege.grant", Target::Actor)
};
const JOIN_SUPER_ADMINS: Ev = ev("group.user_membership.add", Target::ActorToSuperAdmins);

/// A line of a script: the delay range before the event, how it counts, the event.
type Line = (Secs, Mark, Ev);

/// A sign-in with an approved push.
const SIGN_IN_WITH_PUSH: [Line; 3] = [
    ((0, 0), Mark::None, SIGN_IN),
    ((4, 9), Mark::None, PUSH_SENT),
    ((5, 12), Mark::None, PUSH_APPROVED),
];

impl<'p> Builder<'p> {
    /// Adds the events of `lines` on `side`'s session, from `addr` at `place`.
    fn okta(
        &mut self,
        side: &Rc<Side<'p>>,
        place: &'p Place,
        addr: u32,
        lines: impl IntoIterator<Item = Line>,
    ) {
        self.script(Source::Okta, 0, lines, |ev| render(side, place, addr, ev));
    }
}

fn render<'p>(side: &Rc<Side<'p>>, place: &'p Place, addr: u32, ev: Ev) -> Render<'p> {
    let side = Rc::clone(side);
    Box::new(move |b, t, seed| {
        let pools = side.pools;
        let person = &pools.people[side.person];
        let e = okta::Event {
            t,
            event_type: ev.event_type,
            actor: person,
            session: &side.session,
            place,
            addr,
            browser: &BROWSERS[person.browser],
            result: if ev.ok { "SUCCESS" } else { "FAILURE" },
            reason: (!ev.ok).then_some(if ev.credential == Some("PUSH") {
                "User rejected Okta push verify"
            } else {
                "INVALID_CREDENTIALS"
            }),
            provider: match (ev.event_type, ev.credential) {
                ("user.session.start", _) => Some("OKTA_AUTHENTICATION_PROVIDER"),
                (_, Some(_)) => Some("FACTOR_PROVIDER"),
                _ => None,
            },
            credential: if ev.event_type == "user.session.start" {
                Some("PASSWORD")
            } else {
                ev.credential
            },
            seed,
        };
        let other = &pools.people[(side.person + 1) % pools.people.len()];
        let targets = |b: &mut Vec<u8>| match ev.target {
            Target::Actor => okta::user_object(b, person),
            Target::ActorToSuperAdmins => {
                okta::user_object(b, person);
                b.push(b',');
                let group = &pools.okta_group_ids[6];
                okta::target(b, group, "UserGroup", "unknown", "Okta-Super-Admins");
            }
            Target::Other => okta::user_object(b, other),
            Target::AwsApp => okta::target(
                b,
                &pools.okta_app_ids[3],
                "AppInstance",
                "AWS IAM Identity Center",
                "AWS IAM Identity Center",
            ),
            Target::AdminConsole => okta::target(
                b,
                "0oa1okta1admin1cons0e",
                "AppInstance",
                "Okta Admin Console",
                "Okta Admin Console",
            ),
            Target::OktaVerify => okta::target(
                b,
                "opfACNkiAptzVfRLHVkU",
                "AuthenticatorEnrollment",
                "unknown",
                "Okta Verify",
            ),
            Target::Password => okta::target(
                b,
                "pfd9hgo0Obru0j0SGAGw",
                "AuthenticatorEnrollment",
                "unknown",
                "Password",
            ),
        };
        match ev.debug {
            Some(extra) => okta::write(b, &e, &targets, Some(&|b: &mut Vec<u8>| s(b, extra))),
            None => okta::write(b, &e, &targets, None),
        }
    })
}

/// Push bombing: with a stolen password, the attacker sends push after push until the user
/// approves one. ≥ 4 denials in 10 minutes.
pub fn mfa_push_bombing<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let person = (plan.seed % plan.pools.people.len() as u64) as usize;
    let side = Side::new(plan, person);
    let pushes = (0..6).flat_map(|_| {
        [
            ((6, 20), Mark::None, PUSH_SENT),
            ((8, 15), Mark::Count, PUSH_DENIED),
        ]
    });
    let lines = std::iter::once(((0, 0), Mark::None, SIGN_IN))
        .chain(pushes)
        .chain([
            ((10, 30), Mark::None, PUSH_SENT),
            ((5, 12), Mark::None, PUSH_APPROVED),
            ((10, 30), Mark::None, SSO),
        ]);
    let mut bld = Builder::new(plan.seed);
    bld.okta(&side, &ATTACK_PLACES[0], plan.attacker, lines);
    let keys = vec![(Source::Okta, side.key())];
    let oracle = Oracle::Count {
        span: 600_000,
        threshold: 4,
        seen: Vec::new(),
    };
    bld.finish(plan, Kind::MfaPushBombing, keys, oracle)
}

/// An Okta session signed in from home, replayed from another network: another /24 of the
/// same provider (new network only), another AS in the same country (new AS), or the same
/// multi-country AS from another country (new country).
pub fn okta_reuse<'p>(plan: &Plan<'p>, kind: Kind) -> Attack<'p> {
    let person = (plan.seed % plan.pools.people.len() as u64) as usize;
    let side = Side::new(plan, person);
    let (home, home_addr, away, away_addr): (&'p Place, u32, &'p Place, u32) = match kind {
        Kind::TokenReuseAsn => {
            let home = &PLACES[5];
            let addr = net24(home, plan.seed) | 23;
            (home, addr, &ATTACK_PLACES[1], plan.attacker)
        }
        Kind::TokenReuseCountry => {
            let (us, ro) = (&WARP[0], &WARP[1]);
            let (a, b) = two_networks(us, ro, plan.seed, (41, 77));
            (us, a, ro, b)
        }
        _ => {
            let home = &PLACES[2];
            let (a, b) = two_networks(home, home, plan.seed, (18, 201));
            (home, a, home, b)
        }
    };
    let mut bld = Builder::new(plan.seed);
    bld.okta(
        &side,
        home,
        home_addr,
        SIGN_IN_WITH_PUSH
            .into_iter()
            .chain([((20, 90), Mark::None, SSO)]),
    );
    bld.okta(
        &side,
        away,
        away_addr,
        [
            ((60, 240), Mark::Trigger, SSO),
            ((20, 60), Mark::None, ADMIN_APP),
        ],
    );
    let keys = vec![(Source::Okta, side.key())];
    bld.finish(plan, kind, keys, Oracle::First)
}

/// Addresses `hosts` in two different /24s of `home` and `away`.
fn two_networks(home: &Place, away: &Place, seed: u64, hosts: (u32, u32)) -> (u32, u32) {
    let a = net24(home, seed) | hosts.0;
    let mut b = net24(away, seed ^ 0x5eed) | hosts.1;
    if b >> 8 == a >> 8 {
        b ^= 0x100;
    }
    (a, b)
}

/// An Okta admin session grants the actor itself Super administrator, or adds it to the
/// super admins group.
pub fn okta_self_grant<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let pools = plan.pools;
    let admin = pools.admins[(plan.seed % pools.admins.len() as u64) as usize] as usize;
    let side = Side::new(plan, admin);
    let p = &pools.people[admin];
    let grant = if plan.variant.is_multiple_of(2) {
        GRANT_SUPER_ADMIN
    } else {
        JOIN_SUPER_ADMINS
    };
    let mut bld = Builder::new(plan.seed);
    bld.okta(
        &side,
        &PLACES[p.home],
        p.home_net | 44,
        SIGN_IN_WITH_PUSH.into_iter().chain([
            ((15, 40), Mark::None, ADMIN_APP),
            ((20, 60), Mark::None, RESET_PASSWORD),
            ((30, 90), Mark::Trigger, grant),
            ((30, 120), Mark::None, SSO),
        ]),
    );
    let keys = vec![(Source::Okta, side.key())];
    bld.finish(plan, Kind::OktaSelfGrant, keys, Oracle::First)
}
