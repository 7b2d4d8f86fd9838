//! The GitHub attacks: a developer's personal access token, stolen and used to clone.

use std::rc::Rc;

use super::{Attack, Builder, Kind, Mark, Oracle, Plan, Render, Secs};
use crate::github::{self, country_code, hashed_token, Token};
use crate::pools::{Pools, PLACES};
use crate::rng::{hash2, hash_str};
use crate::Source;

/// A developer's token, and the country GitHub reports its events from.
struct Side<'p> {
    pools: &'p Pools,
    person: usize,
    hashed: Vec<u8>,
    country: &'static str,
}

impl<'p> Side<'p> {
    fn new(plan: &Plan<'p>, country: &'static str) -> Rc<Side<'p>> {
        let mut hashed = Vec::new();
        hashed_token(&mut hashed, hash2(plan.seed, 1));
        Rc::new(Side {
            pools: plan.pools,
            person: (plan.seed % plan.pools.people.len() as u64) as usize,
            hashed,
            country,
        })
    }

    fn key(&self) -> String {
        format!(
            "github:token:{}",
            std::str::from_utf8(&self.hashed).unwrap_or("")
        )
    }
}

/// A line of a script: the delay range, how it counts, the action and the repository.
type Line = (Secs, Mark, &'static str, usize);

impl<'p> Builder<'p> {
    /// Adds the actions of `lines` with `side`'s token from `addr`.
    fn github(
        &mut self,
        side: &Rc<Side<'p>>,
        addr: u32,
        ua: &'static str,
        lines: impl IntoIterator<Item = Line>,
    ) {
        let lines = lines
            .into_iter()
            .map(|(secs, mark, action, repo)| (secs, mark, (action, repo)));
        self.script(Source::Github, 0, lines, |(action, repo)| {
            render(side, addr, ua, action, repo)
        });
    }
}

fn render<'p>(
    side: &Rc<Side<'p>>,
    addr: u32,
    ua: &'static str,
    action: &'static str,
    repo: usize,
) -> Render<'p> {
    let side = Rc::clone(side);
    Box::new(move |b, t, seed| {
        let pools = side.pools;
        let p = &pools.people[side.person];
        let e = github::Event {
            t,
            action,
            actor: &p.github,
            actor_id: p.github_id,
            bot: false,
            addr,
            country: side.country,
            ua,
            repo: Some(&pools.repos[repo]),
            token: Some(Token {
                hashed: &side.hashed,
                kind: "Personal access token (classic)",
                id: Some(100_000_000 + seed % 90_000_000),
                scopes: Some("repo,read:org"),
            }),
            seed,
        };
        github::write(b, &e, None);
    })
}

/// A developer's token, replayed from elsewhere, mirrors the organisation: ≥ 25 distinct
/// repositories cloned in 10 minutes.
pub fn clone_burst<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let pools = plan.pools;
    let side = Side::new(plan, "RO");
    let repos = pools.repos.len();
    let first = (plan.seed % repos as u64) as usize;
    let clones = (0..34usize).map(|n| {
        let repo = (first + n * 11) % repos;
        let value = hash_str(&pools.repos[repo].name);
        ((5, 11), Mark::Value(value), "git.clone", repo)
    });
    let mut bld = Builder::new(plan.seed);
    bld.github(&side, plan.attacker, "git/2.43.0", clones);
    let keys = vec![(Source::Github, side.key())];
    let oracle = Oracle::Distinct {
        span: 600_000,
        threshold: 25,
        seen: Vec::new(),
    };
    bld.finish(plan, Kind::CloneBurst, keys, oracle)
}

/// A developer's token used from home, then replayed from another network of the same country
/// (GitHub reports the country, and a proxy in the victim's country is how such a replay
/// avoids a geography check): a new network, and only that.
pub fn github_reuse<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let pools = plan.pools;
    let p = &pools.people[(plan.seed % pools.people.len() as u64) as usize];
    let side = Side::new(plan, country_code(PLACES[p.home].country));
    let repo = (plan.seed % pools.repos.len() as u64) as usize;
    let mut bld = Builder::new(plan.seed);
    bld.github(
        &side,
        p.home_net | 77,
        "git/2.46.0",
        ["git.fetch", "git.fetch", "git.push", "git.fetch"]
            .map(|action| ((20, 120), Mark::None, action, repo)),
    );
    bld.github(
        &side,
        plan.attacker,
        "git/2.43.0",
        [
            ((60, 240), Mark::Trigger, "git.clone", repo),
            (
                (10, 30),
                Mark::None,
                "git.clone",
                (repo + 1) % pools.repos.len(),
            ),
        ],
    );
    let keys = vec![(Source::Github, side.key())];
    bld.finish(plan, Kind::TokenReuseNetwork, keys, Oracle::First)
}
