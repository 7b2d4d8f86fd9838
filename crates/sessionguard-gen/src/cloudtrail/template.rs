//! Call templates: what a benign AWS session does, as data. A persona is a table of weighted
//! [`Row`]s; a row is either a [`Tpl`] — the service, the API call and its request, response
//! and resources as [`P`] pieces — or a function for the few calls that draw sizes, loop, or
//! spawn a session. [`play`] draws one row and writes its record.
//!
//! Every draw from the random stream happens in a fixed order (the row, then the row's own
//! [`Draw`], then whatever its function draws), so one seed gives one output.

use super::{write, Call, From, Who};
use crate::out::{self, s};
use crate::pools::Service;
use crate::session::{Env, Sess};

/// What a call is rendered from: the caller, the moment, and what the persona works on.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub who: &'a Who<'a>,
    pub from: From<'a>,
    pub t: i64,
    /// The record's seed: event and request ids, and the ids [`P`] derives.
    pub seed: u64,
    /// The caller's account.
    pub account: &'a str,
    pub ua: &'a str,
    /// `sessionCredentialFromConsole` on every call: a console session after its sign-in.
    pub console: bool,
    /// Where the persona's regional calls go.
    pub region: &'a str,
    /// The service the session runs as, works on or administers; `None` for personas that
    /// name none ([`P::Name`] and its kin then write nothing).
    pub svc: Option<&'a Service>,
    /// Drawn for the call ([`Draw`]): a managed policy, a policy document's statements.
    pub policy: &'static str,
    pub statements: u64,
}

impl<'a> Ctx<'a> {
    /// A call by this session, now, with its user agent and seed.
    pub fn call(&self, service: &'a str, name: &'a str) -> Call<'a> {
        let mut c = Call::new(self.who, self.t, service, name, self.from);
        c.ua = self.ua;
        c.seed = self.seed;
        c.console = self.console;
        c
    }
}

/// A piece of a request, response or resources body.
#[derive(Clone, Copy)]
pub enum P {
    /// JSON text as it is.
    L(&'static str),
    /// The service's name, DynamoDB table, IAM role and account ([`Ctx::svc`]).
    Name,
    Table,
    Role,
    SvcAccount,
    /// The caller's account.
    Account,
    /// The drawn managed policy ARN.
    Policy,
    /// A policy document of the drawn number of statements, escaped for a string.
    PolicyDoc,
    /// The call's time moved by an offset (ms): as `eventTime` (whole seconds), or as epoch
    /// milliseconds.
    TimeS(i64),
    Millis(i64),
    /// The call's time as AWS responses write dates (`Nov 4, 2024, 10:00:00 AM`).
    AwsDate,
    /// Derived from the record's seed xor a salt: a UUID, `n` hex digits, base64 of `n` bytes,
    /// a long-term access key id.
    Uuid(u64),
    Hex(u64, usize),
    Base64(u64, usize),
    AccessKey(u64),
    /// `lo + seed % modulo`: revisions, versions, sizes.
    Num(u64, u64),
    /// Written by a function (the few bodies that are documents of their own).
    F(fn(&mut Vec<u8>, &Ctx<'_>)),
}

/// What a template draws before it is written.
#[derive(Clone, Copy)]
pub enum Draw {
    None,
    /// One of the AWS managed policies administrators attach.
    Policy,
    /// A policy document's statement count: Pareto from `min` (shape 1.2), at most `max`.
    Statements {
        min: f64,
        max: u64,
    },
}

/// One API call as data.
#[derive(Clone, Copy)]
pub struct Tpl {
    pub service: &'static str,
    pub name: &'static str,
    /// Sent to the persona's region ([`Ctx::region`]) rather than us-east-1.
    pub regional: bool,
    /// `readOnly` when the call's name does not say it.
    pub read_only: Option<bool>,
    /// The TLS host when it is not the service endpoint.
    pub host: Option<&'static str>,
    /// Bodies; an empty one is `null` (request, response) or left out.
    pub req: &'static [P],
    pub resp: &'static [P],
    pub extra: &'static [P],
    pub resources: &'static [P],
    pub draw: Draw,
}

/// A template of `service`'s `name` with request `req` and nothing else.
pub const fn call(service: &'static str, name: &'static str, req: &'static [P]) -> Tpl {
    Tpl {
        service,
        name,
        regional: false,
        read_only: None,
        host: None,
        req,
        resp: &[],
        extra: &[],
        resources: &[],
        draw: Draw::None,
    }
}

impl Tpl {
    pub const fn regional(mut self) -> Tpl {
        self.regional = true;
        self
    }

    pub const fn read_only(mut self, read_only: bool) -> Tpl {
        self.read_only = Some(read_only);
        self
    }

    pub const fn host(mut self, host: &'static str) -> Tpl {
        self.host = Some(host);
        self
    }

    pub const fn resp(mut self, resp: &'static [P]) -> Tpl {
        self.resp = resp;
        self
    }

    pub const fn extra(mut self, extra: &'static [P]) -> Tpl {
        self.extra = extra;
        self
    }

    pub const fn resources(mut self, resources: &'static [P]) -> Tpl {
        self.resources = resources;
        self
    }

    pub const fn draw(mut self, draw: Draw) -> Tpl {
        self.draw = draw;
        self
    }

    /// Draws what the template needs, then writes its record.
    pub fn play(&self, env: &mut Env<'_>, x: &Ctx<'_>, b: &mut Vec<u8>) {
        let x = match self.draw {
            Draw::None => *x,
            Draw::Policy => {
                let policy = env.rng.pick(MANAGED_POLICIES);
                Ctx { policy, ..*x }
            }
            Draw::Statements { min, max } => Ctx {
                statements: (env.rng.pareto(min, 1.2) as u64).clamp(1, max),
                ..*x
            },
        };
        self.write(&x, b);
    }

    /// Writes the record (the template draws nothing).
    pub fn write(&self, x: &Ctx<'_>, b: &mut Vec<u8>) {
        let mut c = x.call(self.service, self.name);
        if self.regional {
            c.region = x.region;
        }
        if let Some(read_only) = self.read_only {
            c.read_only = read_only;
        }
        if self.host.is_some() {
            c.host = self.host;
        }
        let req = |b: &mut Vec<u8>| render(b, self.req, x);
        let resp = |b: &mut Vec<u8>| render(b, self.resp, x);
        let extra = |b: &mut Vec<u8>| render(b, self.extra, x);
        let resources = |b: &mut Vec<u8>| render(b, self.resources, x);
        write(
            b,
            &c,
            (!self.req.is_empty()).then_some(&req),
            (!self.resp.is_empty()).then_some(&resp),
            (!self.extra.is_empty()).then_some(&extra),
            (!self.resources.is_empty()).then_some(&resources),
        );
    }
}

/// A call that is more than a template: it draws, loops, or spawns a session.
pub type Run = fn(&mut Env<'_>, &mut Sess, &Ctx<'_>, &mut Vec<u8>);

#[derive(Clone, Copy)]
pub enum Act {
    Call(Tpl),
    Run(Run),
}

/// One line of a persona's table: how often, and what.
#[derive(Clone, Copy)]
pub struct Row {
    pub weight: u32,
    pub act: Act,
}

/// A template row.
pub const fn w(weight: u32, tpl: Tpl) -> Row {
    Row {
        weight,
        act: Act::Call(tpl),
    }
}

/// A function row.
pub const fn run(weight: u32, f: Run) -> Row {
    Row {
        weight,
        act: Act::Run(f),
    }
}

/// Draws one row of `table` by weight and writes its record.
pub fn play(env: &mut Env<'_>, sess: &mut Sess, x: &Ctx<'_>, table: &[Row], b: &mut Vec<u8>) {
    let row = &table[env.rng.weighted_by(table, |r| r.weight)];
    match row.act {
        Act::Call(tpl) => tpl.play(env, x, b),
        Act::Run(f) => f(env, sess, x, b),
    }
}

/// The AWS managed policies administrators attach to other principals ([`Draw::Policy`]).
pub const MANAGED_POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
    "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
    "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/SecretsManagerReadWrite",
];

fn render(b: &mut Vec<u8>, parts: &[P], x: &Ctx<'_>) {
    for part in parts {
        match *part {
            P::L(text) => s(b, text),
            P::Name => {
                if let Some(svc) = x.svc {
                    s(b, svc.name);
                }
            }
            P::Table => {
                if let Some(svc) = x.svc {
                    s(b, &svc.table);
                }
            }
            P::Role => {
                if let Some(svc) = x.svc {
                    s(b, &svc.role);
                }
            }
            P::SvcAccount => {
                if let Some(svc) = x.svc {
                    s(b, svc.account);
                }
            }
            P::Account => s(b, x.account),
            P::Policy => s(b, x.policy),
            P::PolicyDoc => super::policy_document(b, "arn:aws:s3:::northwind-", x.statements),
            P::TimeS(offset) => out::time_s(b, x.t + offset),
            P::Millis(offset) => out::i(b, x.t + offset),
            P::AwsDate => out::aws_expiration(b, x.t),
            P::Uuid(salt) => out::uuid(b, x.seed ^ salt),
            P::Hex(salt, n) => out::hex(b, x.seed ^ salt, n),
            P::Base64(salt, n) => out::base64(b, x.seed ^ salt, n, false),
            P::AccessKey(salt) => super::key_id(b, "AKIA", x.seed ^ salt),
            P::Num(lo, modulo) => out::u(b, lo + x.seed % modulo),
            P::F(f) => f(b, x),
        }
    }
}
