//! GitHub enterprise audit-log events (the audit-log API and audit-log streaming), and the benign
//! GitHub sessions of the generated traffic.
//!
//! Programmatic access carries `hashed_token` (base64 SHA-256 of the token) and
//! `programmatic_access_type`; web activity carries neither and is keyed by the actor. CI
//! installation tokens clone one repository over and over (a monorepo, its submodule);
//! Actions' tokens clone their workflow's repository; developers' tokens clone, fetch and push
//! a handful of repositories; people in the browser open and merge pull requests and manage
//! teams.

use super::out::{self, q, s, Body};
use super::pools::{runner_ip, Person, Repo, GIT_AGENTS, ORG, PLACES};
use super::session::{place_of, Env, Profile, Sess};

/// A token as the audit log shows it.
pub struct Token<'a> {
    pub hashed: &'a [u8],
    pub kind: &'a str,
    pub id: Option<u64>,
    pub scopes: Option<&'a str>,
}

pub struct Event<'a> {
    pub t: i64,
    pub action: &'a str,
    pub actor: &'a str,
    pub actor_id: u64,
    pub bot: bool,
    pub addr: u32,
    pub country: &'a str,
    pub ua: &'a str,
    pub repo: Option<&'a Repo>,
    pub token: Option<Token<'a>>,
    pub seed: u64,
}

/// ISO country code of a place's country.
pub fn country_code(country: &str) -> &'static str {
    match country {
        "United States" => "US",
        "United Kingdom" => "GB",
        "Germany" => "DE",
        "France" => "FR",
        "Canada" => "CA",
        "Romania" => "RO",
        _ => "US",
    }
}

/// Renders one audit-log event; `extra` adds top-level members.
pub fn write(b: &mut Vec<u8>, e: &Event<'_>, extra: Body<'_>) {
    s(b, "{\"@timestamp\":");
    out::i(b, e.t);
    s(b, ",\"_document_id\":\"");
    out::base64(b, e.seed, 16, true);
    s(b, "\",\"action\":\"");
    s(b, e.action);
    s(b, "\",\"actor\":");
    q(b, e.actor);
    s(b, ",\"actor_id\":");
    out::u(b, e.actor_id);
    s(b, ",\"actor_ip\":\"");
    out::ip(b, e.addr);
    s(
        b,
        if e.bot {
            "\",\"actor_is_bot\":true"
        } else {
            "\",\"actor_is_bot\":false"
        },
    );
    s(b, ",\"actor_location\":{\"country_code\":\"");
    s(b, e.country);
    s(
        b,
        "\"},\"business\":\"northwind\",\"business_id\":9123,\"org\":\"",
    );
    s(b, ORG);
    s(b, "\",\"org_id\":81234567,\"user_agent\":");
    q(b, e.ua);
    s(b, ",\"created_at\":");
    out::i(b, e.t);
    if let Some(repo) = e.repo {
        s(b, ",\"repo\":\"");
        s(b, ORG);
        b.push(b'/');
        s(b, &repo.name);
        s(b, "\",\"repo_id\":");
        out::u(b, repo.id);
        s(b, ",\"repository\":\"");
        s(b, ORG);
        b.push(b'/');
        s(b, &repo.name);
        s(b, "\",\"repository_id\":");
        out::u(b, repo.id);
        s(b, ",\"repository_public\":false,\"visibility\":\"private\"");
    }
    if let Some(token) = &e.token {
        s(b, ",\"hashed_token\":\"");
        b.extend_from_slice(token.hashed);
        s(b, "\",\"programmatic_access_type\":\"");
        s(b, token.kind);
        b.push(b'"');
        if let Some(id) = token.id {
            s(b, ",\"token_id\":");
            out::u(b, id);
        }
        if let Some(scopes) = token.scopes {
            s(b, ",\"token_scopes\":\"");
            s(b, scopes);
            b.push(b'"');
        }
    }
    if e.action.starts_with("git.") {
        s(b, ",\"transport_protocol\":1,\"transport_protocol_name\":\"http\",\"operation_type\":\"access\"");
    }
    if let Some(f) = extra {
        f(b);
    }
    b.push(b'}');
}

/// A hashed token (44 characters of base64).
pub fn hashed_token(b: &mut Vec<u8>, seed: u64) {
    out::base64(b, seed, 32, false);
}

const APPS: &[(&str, u64, &str)] = &[
    ("northwind-ci[bot]", 149_812_733, "git/2.39.5 JGit/6.10.0"),
    ("northwind-deployer[bot]", 151_220_418, "git/2.45.2"),
];

pub fn new_session(env: &mut Env<'_>) -> Sess {
    let id = env.new_id();
    let pools = env.pools;
    let pick = env.rng.weighted(&[30, 25, 30, 15]);
    let repos = pools.repos.len() as u64;
    match pick {
        0 => {
            // A CI app's installation token: one repository, cloned again and again.
            let app = env.rng.below(APPS.len() as u64) as u32;
            let repo = if env.rng.chance(0.5) {
                0
            } else {
                env.rng.below(repos) as u32
            };
            let mut s = Sess::new(
                id,
                Profile::GhApp,
                app,
                repo,
                0xc000_0296 + app,
                env.length(3.0, 1.2, 200),
            );
            s.pace = 400;
            s
        }
        1 => {
            let repo = env.rng.below(repos) as u32;
            let mut s = Sess::new(
                id,
                Profile::GhActions,
                0,
                repo,
                runner_ip(id),
                env.length(2.0, 1.6, 12),
            );
            s.pace = 300;
            s
        }
        2 => {
            let person = env.rng.below(pools.people.len() as u64) as u32;
            let office = pools.people[person as usize].in_office;
            let (addr, flags) = env.person_addr(person, office);
            let mut s = Sess::new(
                id,
                Profile::GhPat,
                person,
                0,
                addr,
                env.length(2.0, 1.3, 300),
            );
            s.flags = flags;
            s.pace = 1_500;
            s
        }
        _ => {
            let person = env.rng.below(pools.people.len() as u64) as u32;
            let p = &pools.people[person as usize];
            // Web activity is keyed by the person, so its network is the person's, fixed.
            let (addr, flags) = if p.in_office {
                (
                    0xc633_6400 | (10 + (p.github_id % 24)) as u32,
                    super::session::F_OFFICE,
                )
            } else {
                (p.home_net | (2 + (p.github_id % 250)) as u32, 0)
            };
            let mut s = Sess::new(
                id,
                Profile::GhWeb,
                person,
                0,
                addr,
                env.length(1.0, 1.2, 60),
            );
            s.flags = flags;
            s.pace = 2_500;
            s
        }
    }
}

pub fn lifetime_ms(profile: Profile) -> i64 {
    match profile {
        // Installation tokens and Actions' GITHUB_TOKEN expire after an hour.
        Profile::GhApp | Profile::GhActions => 3_600_000,
        _ => i64::MAX / 4,
    }
}

pub fn session_key(env: &Env<'_>, sess: &Sess, key: &mut String) {
    let mut b = Vec::with_capacity(64);
    if sess.profile == Profile::GhWeb {
        s(&mut b, "github:actor:");
        s(&mut b, &env.pools.people[sess.who as usize].github);
    } else {
        s(&mut b, "github:token:");
        hashed_token(&mut b, sess.key_seed(env.seed, 1));
    }
    key.clear();
    key.push_str(std::str::from_utf8(&b).unwrap_or(""));
}

/// A developer's few repositories (at most six), from their name.
fn dev_repo<'p>(env: &mut Env<'p>, person: &Person) -> &'p Repo {
    let repos = &env.pools.repos;
    let k = env.rng.below(6);
    let h = super::rng::hash2(person.github_id, k);
    &repos[(h % repos.len() as u64) as usize]
}

pub fn emit(env: &mut Env<'_>, sess: &mut Sess, t: i64, b: &mut Vec<u8>) {
    let pools = env.pools;
    sess.rotate(&mut env.rng);
    let seed = sess.key_seed(env.seed, 0x4000 + u64::from(sess.step));
    let mut hashed = Vec::with_capacity(44);
    hashed_token(&mut hashed, sess.key_seed(env.seed, 1));
    match sess.profile {
        Profile::GhApp | Profile::GhActions => {
            let (actor, actor_id, ua) = if sess.profile == Profile::GhApp {
                APPS[sess.who as usize]
            } else {
                ("github-actions[bot]", 41_898_282, "git/2.47.0")
            };
            // The main repository; now and then its shared submodule.
            let repo = if env.rng.chance(0.1) {
                &pools.repos[1]
            } else {
                &pools.repos[sess.aux as usize]
            };
            let action = if sess.step == 0 || env.rng.chance(0.65) {
                "git.clone"
            } else {
                "git.fetch"
            };
            let e = Event {
                t,
                action,
                actor,
                actor_id,
                bot: true,
                addr: sess.addr,
                country: "US",
                ua,
                repo: Some(repo),
                token: Some(Token {
                    hashed: &hashed,
                    kind: "GitHub App server-to-server token",
                    id: None,
                    scopes: None,
                }),
                seed,
            };
            write(b, &e, None);
        }
        Profile::GhPat => {
            let person = &pools.people[sess.who as usize];
            let place = &PLACES[place_of(sess.addr, person.home)];
            let repo = dev_repo(env, person);
            let pick = env.rng.weighted(&[8, 10, 5, 1, 2]);
            let action = [
                "git.clone",
                "git.fetch",
                "git.push",
                "repo.download_zip",
                "pull_request.create",
            ][pick];
            let e = Event {
                t,
                action,
                actor: &person.github,
                actor_id: person.github_id,
                bot: false,
                addr: sess.addr,
                country: country_code(place.country),
                ua: GIT_AGENTS[(person.github_id % GIT_AGENTS.len() as u64) as usize],
                repo: Some(repo),
                token: Some(Token {
                    hashed: &hashed,
                    kind: "Personal access token (classic)",
                    id: Some(100_000_000 + sess.id % 90_000_000),
                    scopes: Some("repo,workflow,read:org"),
                }),
                seed,
            };
            write(b, &e, None);
        }
        _ => {
            let person = &pools.people[sess.who as usize];
            let place = &PLACES[place_of(sess.addr, person.home)];
            let repo = dev_repo(env, person);
            let pick = if sess.step == 0 {
                0
            } else {
                1 + env.rng.weighted(&[6, 5, 6, 2, 1, 1])
            };
            let action = [
                "user.login",
                "pull_request.create",
                "pull_request.merge",
                "pull_request_review.submit",
                "protected_branch.update",
                "team.add_member",
                "repo.update_member",
            ][pick];
            let e = Event {
                t,
                action,
                actor: &person.github,
                actor_id: person.github_id,
                bot: false,
                addr: sess.addr,
                country: country_code(place.country),
                ua: super::pools::BROWSERS[person.browser].raw,
                repo: (pick != 0).then_some(repo),
                token: None,
                seed,
            };
            let team = |b: &mut Vec<u8>| {
                s(b, ",\"team\":\"");
                s(b, ORG);
                s(b, "/platform\",\"user\":\"");
                let other =
                    &pools.people[((person.github_id / 7) % pools.people.len() as u64) as usize];
                s(b, &other.github);
                b.push(b'"');
            };
            let extra: Body<'_> = if pick >= 5 { Some(&team) } else { None };
            write(b, &e, extra);
        }
    }
}
