//! Okta System Log events (`LogEvent` as `/api/v1/logs` returns them and log streaming
//! forwards them), and the benign Okta sessions of the generated traffic.
//!
//! Every event of a session carries its `authenticationContext.rootSessionId`
//! (`idx…`); `client` has the address with its geography and `securityContext` its AS, so the
//! session's network, AS and country agree event by event. A sign-in is
//! `user.session.start`, then a factor: an Okta Verify push (`system.push.send_factor_verify_push`
//! then `user.authentication.auth_via_mfa`), or a code — sometimes mistyped once, sometimes a
//! push denied once before the one that is approved. Then single sign-on to apps; admins open
//! the Admin Console and administer *other* users.

use super::out::{self, q, s, Body, BASE62};
use super::pools::{Browser, Person, Place, BROWSERS, OKTA_APPS, OKTA_GROUPS, OKTA_ROLES, PLACES};
use super::session::{place_of, Env, Profile, Sess, F_MFA_TYPO, F_PUSH_DENIED};

/// One Okta event's context.
pub struct Event<'a> {
    pub t: i64,
    pub event_type: &'a str,
    pub actor: &'a Person,
    pub session: &'a [u8],
    pub place: &'a Place,
    pub addr: u32,
    pub browser: &'a Browser,
    pub result: &'a str,
    pub reason: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub seed: u64,
}

/// A target writer (`[{…}, …]` contents).
pub type Targets<'x> = &'x dyn Fn(&mut Vec<u8>);

fn legacy(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "user.session.start" => "core.user_auth.login_success",
        "user.authentication.auth_via_mfa" => "core.user.factor.attempt_success",
        "user.authentication.sso" => "app.auth.sso",
        "user.session.end" => "core.user_auth.logout_success",
        "user.account.privilege.grant" => "core.user.admin_privilege.granted",
        "group.user_membership.add" => "core.user_group_member.user_add",
        "user.mfa.okta_verify.deny_push" => "core.user.factor.attempt_fail",
        "user.lifecycle.suspend" => "core.user.config.user_suspended",
        "user.lifecycle.unsuspend" => "core.user.config.user_unsuspended",
        "application.user_membership.add" => "app.generic.provision.assign_user_to_app",
        "user.mfa.factor.reset_all" => "core.user.factor.reset_all",
        "user.account.reset_password" => "core.user.config.password_reset",
        _ => return None,
    })
}

fn message(event_type: &str) -> &'static str {
    match event_type {
        "user.session.start" => "User login to Okta",
        "user.authentication.auth_via_mfa" => "Authentication of user via MFA",
        "user.authentication.sso" => "User single sign on to app",
        "user.session.end" => "User logout from Okta",
        "user.account.privilege.grant" => "Grant user privilege",
        "group.user_membership.add" => "Add user to group membership",
        "user.mfa.okta_verify.deny_push" => "User rejected Okta push verify",
        "system.push.send_factor_verify_push" => {
            "A push notification was sent to the user's Okta Verify app"
        }
        "user.session.access_admin_app" => "User accessing Okta admin app",
        "policy.evaluate_sign_on" => "Evaluation of sign-on policy",
        "user.lifecycle.suspend" => "Suspend Okta user",
        "user.lifecycle.unsuspend" => "Unsuspend Okta user",
        "application.user_membership.add" => "Add user to application membership",
        "user.mfa.factor.reset_all" => "Reset all factors for user",
        "user.account.reset_password" => "Fire password reset for user",
        "user.account.update_profile" => "Update user profile for Okta",
        _ => "Okta event",
    }
}

fn uri(event_type: &str) -> &'static str {
    match event_type {
        "user.session.start" | "policy.evaluate_sign_on" => "/idp/idx/identify",
        "user.authentication.auth_via_mfa" => "/idp/idx/challenge/answer",
        "user.mfa.okta_verify.deny_push" => "/idp/idx/authenticators/poll",
        "system.push.send_factor_verify_push" => "/idp/idx/challenge",
        "user.session.end" => "/login/signout",
        "user.session.access_admin_app" => "/admin/sso/callback",
        _ => "/api/v1/users",
    }
}

fn geo(b: &mut Vec<u8>, p: &Place) {
    s(b, "{\"city\":");
    q(b, p.city);
    s(b, ",\"state\":");
    q(b, p.state);
    s(b, ",\"country\":");
    q(b, p.country);
    s(b, ",\"postalCode\":");
    q(b, p.postal);
    s(b, ",\"geolocation\":{\"lat\":");
    out::decimal(b, p.lat, 4);
    s(b, ",\"lon\":");
    out::decimal(b, p.lon, 4);
    s(b, "}}");
}

fn opt(b: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => q(b, v),
        None => s(b, "null"),
    }
}

/// A user as an actor or target.
pub fn user_object(b: &mut Vec<u8>, person: &Person) {
    s(b, "{\"id\":\"");
    s(b, &person.okta_id);
    s(b, "\",\"type\":\"User\",\"alternateId\":\"");
    s(b, &person.login);
    b.push(b'@');
    s(b, super::pools::DOMAIN);
    s(b, "\",\"displayName\":\"");
    s(b, &person.display);
    s(b, "\",\"detailEntry\":null}");
}

/// Any other target.
pub fn target(b: &mut Vec<u8>, id: &str, kind: &str, alternate: &str, display: &str) {
    s(b, "{\"id\":\"");
    s(b, id);
    s(b, "\",\"type\":\"");
    s(b, kind);
    s(b, "\",\"alternateId\":\"");
    s(b, alternate);
    s(b, "\",\"displayName\":\"");
    s(b, display);
    s(b, "\",\"detailEntry\":null}");
}

/// Renders one System Log event. `debug` adds members to `debugContext.debugData`.
pub fn write(b: &mut Vec<u8>, e: &Event<'_>, targets: Targets<'_>, debug: Body<'_>) {
    s(b, "{\"actor\":");
    user_object(b, e.actor);
    s(b, ",\"client\":{\"userAgent\":{\"rawUserAgent\":\"");
    s(b, e.browser.raw);
    s(b, "\",\"os\":\"");
    s(b, e.browser.os);
    s(b, "\",\"browser\":\"");
    s(b, e.browser.name);
    s(
        b,
        "\"},\"zone\":\"null\",\"device\":\"Computer\",\"id\":null,\"ipAddress\":\"",
    );
    out::ip(b, e.addr);
    s(b, "\",\"geographicalContext\":");
    geo(b, e.place);
    s(
        b,
        "},\"device\":null,\"authenticationContext\":{\"authenticationProvider\":",
    );
    opt(b, e.provider);
    s(b, ",\"credentialProvider\":null,\"credentialType\":");
    opt(b, e.credential);
    s(
        b,
        ",\"issuer\":null,\"interface\":null,\"authenticationStep\":0,\"rootSessionId\":\"",
    );
    b.extend_from_slice(e.session);
    s(b, "\",\"externalSessionId\":\"");
    b.extend_from_slice(e.session);
    s(b, "\"},\"displayMessage\":\"");
    s(b, message(e.event_type));
    s(b, "\",\"eventType\":\"");
    s(b, e.event_type);
    s(b, "\",\"outcome\":{\"result\":\"");
    s(b, e.result);
    s(b, "\",\"reason\":");
    opt(b, e.reason);
    s(b, "},\"published\":\"");
    out::time_ms(b, e.t);
    s(b, "\",\"securityContext\":{\"asNumber\":");
    out::u(b, u64::from(e.place.asn));
    s(b, ",\"asOrg\":");
    q(b, e.place.as_org);
    s(b, ",\"isp\":");
    q(b, e.place.isp);
    s(b, ",\"domain\":");
    q(b, e.place.domain);
    s(
        b,
        if e.place.proxy {
            ",\"isProxy\":true}"
        } else {
            ",\"isProxy\":false}"
        },
    );
    s(
        b,
        if e.result == "SUCCESS" {
            ",\"severity\":\"INFO\""
        } else {
            ",\"severity\":\"WARN\""
        },
    );
    s(b, ",\"debugContext\":{\"debugData\":{\"requestId\":\"");
    let request_id_at = b.len();
    out::chars(b, BASE62, e.seed ^ 0x7e9, 24);
    let request_id_end = b.len();
    s(b, "\",\"requestUri\":\"");
    s(b, uri(e.event_type));
    s(b, "\",\"url\":\"");
    s(b, uri(e.event_type));
    s(b, "?\"");
    if matches!(
        e.event_type,
        "user.session.start"
            | "user.authentication.auth_via_mfa"
            | "user.mfa.okta_verify.deny_push"
    ) {
        s(b, ",\"dtHash\":\"");
        out::hex(b, super::rng::hash2(e.seed, 0xd7), 64);
        b.push(b'"');
    }
    if let Some(f) = debug {
        f(b);
    }
    s(b, "}},\"legacyEventType\":");
    opt(b, legacy(e.event_type));
    s(b, ",\"transaction\":{\"type\":\"WEB\",\"id\":\"");
    b.extend_from_within(request_id_at..request_id_end);
    s(b, "\",\"detail\":{}},\"uuid\":\"");
    out::uuid(b, e.seed);
    s(
        b,
        "\",\"version\":\"0\",\"request\":{\"ipChain\":[{\"ip\":\"",
    );
    out::ip(b, e.addr);
    s(b, "\",\"geographicalContext\":");
    geo(b, e.place);
    s(b, ",\"version\":\"V4\",\"source\":null}]},\"target\":[");
    targets(b);
    s(b, "]}");
}

/// An Okta session id: `idx` and 22 base62 characters.
pub fn session_id(b: &mut Vec<u8>, seed: u64) {
    s(b, "idx");
    out::chars(b, BASE62, seed, 22);
}

pub fn session_key(env: &Env<'_>, sess: &Sess, key: &mut String) {
    let mut b = Vec::with_capacity(32);
    s(&mut b, "okta:");
    session_id(&mut b, sess.key_seed(env.seed, 1));
    key.clear();
    key.push_str(std::str::from_utf8(&b).unwrap_or(""));
}

/// How a sign-in's factor step goes.
const FACTOR_PUSH: u32 = 0;
const FACTOR_CODE: u32 = 1;

pub fn new_session(env: &mut Env<'_>) -> Sess {
    let id = env.new_id();
    let admin = env.rng.chance(0.06);
    let person = if admin {
        *env.rng.pick(&env.pools.admins)
    } else {
        env.rng.below(env.pools.people.len() as u64) as u32
    };
    let office = env.pools.people[person as usize].in_office;
    let (addr, mut flags) = env.person_addr(person, office);
    let factor = if env.rng.chance(0.7) {
        FACTOR_PUSH
    } else {
        FACTOR_CODE
    };
    // One mistyped code, or one push denied by a distracted user, before success.
    if factor == FACTOR_CODE && env.rng.chance(0.08) {
        flags |= F_MFA_TYPO;
    }
    if factor == FACTOR_PUSH && env.rng.chance(0.03) {
        flags |= F_PUSH_DENIED;
    }
    let budget = 6 + env.length(2.0, 1.3, 400);
    let mut sess = Sess::new(
        id,
        if admin {
            Profile::OktaAdmin
        } else {
            Profile::OktaUser
        },
        person,
        factor,
        addr,
        budget,
    );
    sess.flags = flags;
    sess.pace = 2_000;
    sess
}

/// The sign-in steps before single sign-on, per factor flow.
fn sign_in_step(sess: &Sess) -> Option<(&'static str, &'static str, bool)> {
    // (event type, credential type, success)
    const PUSH: &[(&str, &str, bool)] = &[
        ("system.push.send_factor_verify_push", "", true),
        ("user.authentication.auth_via_mfa", "PUSH", true),
    ];
    const PUSH_DENIED: &[(&str, &str, bool)] = &[
        ("system.push.send_factor_verify_push", "", true),
        ("user.mfa.okta_verify.deny_push", "PUSH", false),
        ("system.push.send_factor_verify_push", "", true),
        ("user.authentication.auth_via_mfa", "PUSH", true),
    ];
    const CODE: &[(&str, &str, bool)] = &[("user.authentication.auth_via_mfa", "OTP", true)];
    const CODE_TYPO: &[(&str, &str, bool)] = &[
        ("user.authentication.auth_via_mfa", "OTP", false),
        ("user.authentication.auth_via_mfa", "OTP", true),
    ];
    let flow = match (sess.aux, sess.flags) {
        (FACTOR_PUSH, f) if f & F_PUSH_DENIED != 0 => PUSH_DENIED,
        (FACTOR_PUSH, _) => PUSH,
        (_, f) if f & F_MFA_TYPO != 0 => CODE_TYPO,
        _ => CODE,
    };
    let k = sess.step.checked_sub(1)? as usize;
    flow.get(k).copied()
}

pub fn emit(env: &mut Env<'_>, sess: &mut Sess, t: i64, b: &mut Vec<u8>) {
    let pools = env.pools;
    sess.rotate(&mut env.rng);
    let person = &pools.people[sess.who as usize];
    let place = &PLACES[place_of(sess.addr, person.home)];
    let mut id = Vec::with_capacity(25);
    session_id(&mut id, sess.key_seed(env.seed, 1));
    let seed = sess.key_seed(env.seed, 0x2000 + u64::from(sess.step));
    let mut e = Event {
        t,
        event_type: "user.authentication.sso",
        actor: person,
        session: &id,
        place,
        addr: sess.addr,
        browser: &BROWSERS[person.browser],
        result: "SUCCESS",
        reason: None,
        provider: None,
        credential: None,
        seed,
    };
    if sess.step == 0 {
        e.event_type = "user.session.start";
        e.provider = Some("OKTA_AUTHENTICATION_PROVIDER");
        e.credential = Some("PASSWORD");
        write(
            b,
            &e,
            &|b| {
                target(
                    b,
                    "pfd9hgo0Obru0j0SGAGw",
                    "AuthenticatorEnrollment",
                    "unknown",
                    "Password",
                )
            },
            None,
        );
        return;
    }
    if let Some((event_type, credential, ok)) = sign_in_step(sess) {
        e.event_type = event_type;
        if !credential.is_empty() {
            e.provider = Some("FACTOR_PROVIDER");
            e.credential = Some(credential);
        }
        if !ok {
            e.result = "FAILURE";
            e.reason = Some(if credential == "PUSH" {
                "User rejected Okta push verify"
            } else {
                "INVALID_CREDENTIALS"
            });
        }
        let factor = credential == "OTP";
        write(
            b,
            &e,
            &|b| {
                target(
                    b,
                    "opfACNkiAptzVfRLHVkU",
                    "AuthenticatorEnrollment",
                    "unknown",
                    "Okta Verify",
                )
            },
            Some(&|b: &mut Vec<u8>| {
                s(
                    b,
                    if factor {
                        ",\"factor\":\"OKTA_VERIFY_OTP\",\"factorIntent\":\"AUTHENTICATION\""
                    } else {
                        ",\"factor\":\"OKTA_VERIFY_PUSH\",\"factorIntent\":\"AUTHENTICATION\""
                    },
                );
            }),
        );
        return;
    }
    if sess.budget == 1 && env.rng.chance(0.5) {
        e.event_type = "user.session.end";
        write(b, &e, &|_| {}, None);
        return;
    }
    let admin = sess.profile == Profile::OktaAdmin;
    let after_sign_in = sess.step as usize - sign_in_len(sess);
    if admin && after_sign_in == 0 {
        e.event_type = "user.session.access_admin_app";
        write(
            b,
            &e,
            &|b| {
                target(
                    b,
                    "0oa1okta1admin1cons0e",
                    "AppInstance",
                    "Okta Admin Console",
                    "Okta Admin Console",
                )
            },
            None,
        );
        return;
    }
    if admin && after_sign_in > 0 && env.rng.chance(0.6) {
        administer(env, sess, &mut e, b);
        return;
    }
    if env.rng.chance(0.08) {
        e.event_type = "policy.evaluate_sign_on";
        write(
            b,
            &e,
            &|b| target(b, "rul7j2gka8l1Xq2t90h8", "Rule", "unknown", "Default Rule"),
            None,
        );
        return;
    }
    let app = env.rng.below(OKTA_APPS.len() as u64) as usize;
    let app_id = &pools.okta_app_ids[app];
    write(
        b,
        &e,
        &|b| target(b, app_id, "AppInstance", OKTA_APPS[app], OKTA_APPS[app]),
        Some(&|b: &mut Vec<u8>| s(b, ",\"initiationType\":\"IDP_INITIATED\"")),
    );
}

fn sign_in_len(sess: &Sess) -> usize {
    match (sess.aux, sess.flags) {
        (FACTOR_PUSH, f) if f & F_PUSH_DENIED != 0 => 5,
        (FACTOR_PUSH, _) => 3,
        (_, f) if f & F_MFA_TYPO != 0 => 3,
        _ => 2,
    }
}

/// An administrator acting on *another* user.
fn administer(env: &mut Env<'_>, sess: &Sess, e: &mut Event<'_>, b: &mut Vec<u8>) {
    let pools = env.pools;
    let mut other = env.rng.below(pools.people.len() as u64) as usize;
    if other as u32 == sess.who {
        other = (other + 1) % pools.people.len();
    }
    let other = &pools.people[other];
    let pick = env.rng.weighted(&[4, 2, 2, 3, 2, 2, 1]);
    match pick {
        0 => {
            e.event_type = "user.account.reset_password";
            write(b, e, &|b| user_object(b, other), None);
        }
        1 | 2 => {
            e.event_type = if pick == 1 {
                "user.lifecycle.suspend"
            } else {
                "user.lifecycle.unsuspend"
            };
            write(b, e, &|b| user_object(b, other), None);
        }
        3 => {
            let g = env.rng.below(OKTA_GROUPS.len() as u64) as usize;
            let gid = &pools.okta_group_ids[g];
            e.event_type = "group.user_membership.add";
            write(
                b,
                e,
                &|b| {
                    user_object(b, other);
                    b.push(b',');
                    target(b, gid, "UserGroup", "unknown", OKTA_GROUPS[g]);
                },
                None,
            );
        }
        4 => {
            let role = *env.rng.pick(OKTA_ROLES);
            e.event_type = "user.account.privilege.grant";
            write(
                b,
                e,
                &|b| user_object(b, other),
                Some(&|b: &mut Vec<u8>| {
                    s(b, ",\"privilegeGranted\":\"");
                    s(b, role);
                    b.push(b'"');
                }),
            );
        }
        5 => {
            let app = env.rng.below(OKTA_APPS.len() as u64) as usize;
            let app_id = &pools.okta_app_ids[app];
            e.event_type = "application.user_membership.add";
            write(
                b,
                e,
                &|b| {
                    user_object(b, other);
                    b.push(b',');
                    target(b, app_id, "AppInstance", OKTA_APPS[app], OKTA_APPS[app]);
                },
                None,
            );
        }
        _ => {
            e.event_type = "user.mfa.factor.reset_all";
            write(b, e, &|b| user_object(b, other), None);
        }
    }
}
