"""Case 5: repeated MFA failures in one session (Okta push denials and factor failures, Entra
error 500121)."""

import datetime as dt

from case_scope import APP_AWS, APP_SLACK, sign_in, sso
from common import (
    ATTACKER_NL, ATTACKER_RO, CHROME_MAC, CHROME_WIN, EDGE_WIN, FIREFOX_LINUX, HOME_DENVER,
    HOME_SEATTLE, MFA_FAILURES, MFA_WINDOW, OFFICE, SAFARI_MAC,
)
from vendors import OktaUser, entra_signin, okta_event, okta_id, okta_session, okta_target, uuid

OKTA_MFA_FAIL = ("user.mfa.okta_verify.deny_push", "user.authentication.auth_via_mfa")


def okta_mfa_failure(e):
    return e.rec.get("eventType") in OKTA_MFA_FAIL and e.rec["outcome"]["result"] == "FAILURE"


def verify_target(user):
    return okta_target("AuthenticatorEnrollment", okta_id("opf", user.login), "unknown", "Okta Verify")


def session_start(fx, t, user, sid, place, browser):
    return fx.add(okta_event(t, "user.session.start", user, sid, place, browser,
                             provider="OKTA_AUTHENTICATION_PROVIDER", credential_type="PASSWORD",
                             targets=[okta_target("AuthenticatorEnrollment", okta_id("pfd", user.login),
                                                  "unknown", "Password")]), "okta:" + sid)


def push(fx, t, user, sid, place, browser, deny, seed):
    """One Okta Verify push: sent, then denied by the user (or approved)."""
    fx.add(okta_event(t, "system.push.send_factor_verify_push", user, sid, place, browser,
                      targets=[verify_target(user)], debug={"factor": "OKTA_VERIFY_PUSH"}, seed=seed),
           "okta:" + sid)
    t2 = t + dt.timedelta(seconds=9, milliseconds=318)
    if deny:
        return fx.add(okta_event(t2, "user.mfa.okta_verify.deny_push", user, sid, place, browser,
                                 result="FAILURE", reason="User rejected Okta push verify",
                                 provider="FACTOR_PROVIDER", credential_type="PUSH",
                                 targets=[verify_target(user)], severity="WARN",
                                 debug={"factor": "OKTA_VERIFY_PUSH", "factorIntent": "AUTHENTICATION"},
                                 seed=seed), "okta:" + sid)
    return fx.add(okta_event(t2, "user.authentication.auth_via_mfa", user, sid, place, browser,
                             provider="FACTOR_PROVIDER", credential_type="PUSH",
                             targets=[verify_target(user)],
                             debug={"factor": "OKTA_VERIFY_PUSH", "factorIntent": "AUTHENTICATION"},
                             seed=seed), "okta:" + sid)


def otp(fx, t, user, sid, place, browser, ok, seed, factor="OKTA_VERIFY_TOTP"):
    return fx.add(okta_event(t, "user.authentication.auth_via_mfa", user, sid, place, browser,
                             result="SUCCESS" if ok else "FAILURE",
                             reason=None if ok else "INVALID_CREDENTIALS",
                             provider="FACTOR_PROVIDER", credential_type="OTP",
                             targets=[verify_target(user)], severity="INFO" if ok else "WARN",
                             debug={"factor": factor, "factorIntent": "AUTHENTICATION"}, seed=seed),
                  "okta:" + sid)


def okta_attack(fx):
    fx.summary = (
        "MFA fatigue and factor guessing: with a stolen password, one session sends Okta Verify "
        "pushes until the user, after six denials, approves the seventh; another session "
        "guesses TOTP codes five times. A regular sign-in happens alongside. Counted: "
        "`user.mfa.okta_verify.deny_push` and `user.authentication.auth_via_mfa` with outcome "
        "FAILURE (the `system.push.send_factor_verify_push` records that announce each push are "
        "successes and do not count)."
    )
    kow = OktaUser("a.kowalski@northwind.example", "Anna Kowalski")
    sid = okta_session("a.kowalski", fx.day)
    fx.who("okta:" + sid, "a.kowalski: stolen password used from 203.0.113.144, push bombing")
    session_start(fx, fx.at("02:14:03.512"), kow, sid, ATTACKER_RO, CHROME_WIN)
    t = fx.at("02:14:11.020")
    for i in range(6):
        push(fx, t, kow, sid, ATTACKER_RO, CHROME_WIN, deny=True, seed=i)
        t += dt.timedelta(seconds=41 + i * 4)
    push(fx, t, kow, sid, ATTACKER_RO, CHROME_WIN, deny=False, seed=6)
    sso(fx, t + dt.timedelta(seconds=31), kow, sid, ATTACKER_RO, CHROME_WIN, APP_AWS)
    fx.fire_window("okta:" + sid, okta_mfa_failure, agg="count", window_s=MFA_WINDOW,
                   threshold=MFA_FAILURES, intent="repeated MFA failures in one session",
                   action="revoke session",
                   why="4th push denial (`user.mfa.okta_verify.deny_push`, FAILURE) within 10 min "
                       "in this session; the user approves the 7th push later")

    nc = OktaUser("b.ncube@northwind.example", "Bongani Ncube")
    sid2 = okta_session("b.ncube", fx.day)
    fx.who("okta:" + sid2, "b.ncube: stolen password used from 203.0.113.77, TOTP guessing")
    session_start(fx, fx.at("02:31:00.204"), nc, sid2, ATTACKER_NL, FIREFOX_LINUX)
    t = fx.at("02:31:12.880")
    for i in range(5):
        otp(fx, t, nc, sid2, ATTACKER_NL, FIREFOX_LINUX, ok=False, seed=i)
        t += dt.timedelta(seconds=22 + i * 3)
    fx.fire_window("okta:" + sid2, okta_mfa_failure, agg="count", window_s=MFA_WINDOW,
                   threshold=MFA_FAILURES, intent="repeated MFA failures in one session",
                   action="revoke session",
                   why="4th `user.authentication.auth_via_mfa` FAILURE (TOTP) within 10 min")

    reg = OktaUser("c.obi@northwind.example", "Chidi Obi")
    sid3 = okta_session("c.obi", fx.day)
    fx.who("okta:" + sid3, "c.obi, regular sign-in (background)")
    sign_in(fx, "02:20:45.331", reg, sid3, HOME_SEATTLE, SAFARI_MAC)
    sso(fx, fx.at("02:21:10.006"), reg, sid3, HOME_SEATTLE, SAFARI_MAC, APP_SLACK)
    fx.quiet("okta:" + sid3, "no MFA failure")


def okta_benign(fx):
    fx.summary = (
        "Ordinary MFA trouble: one TOTP typo then success; three push denials (the phone was in "
        "a meeting) then an approval; a long session whose per-app step-up MFA fails four times "
        "in 21 minutes, but never four times within ten."
    )
    ram = OktaUser("c.ramirez@northwind.example", "Carla Ramirez")
    sid = okta_session("c.ramirez", fx.day)
    fx.who("okta:" + sid, "c.ramirez: one TOTP typo")
    session_start(fx, fx.at("09:00:02.118"), ram, sid, OFFICE, EDGE_WIN)
    otp(fx, fx.at("09:00:14.590"), ram, sid, OFFICE, EDGE_WIN, ok=False, seed=0)
    otp(fx, fx.at("09:00:29.077"), ram, sid, OFFICE, EDGE_WIN, ok=True, seed=1)
    sso(fx, fx.at("09:01:02.440"), ram, sid, OFFICE, EDGE_WIN, APP_SLACK)
    fx.quiet("okta:" + sid, "{peak} failure",
             window=dict(match=okta_mfa_failure, agg="count", window_s=MFA_WINDOW, threshold=MFA_FAILURES))

    had = OktaUser("e.haddad@northwind.example", "Elias Haddad")
    sid2 = okta_session("e.haddad", fx.day)
    fx.who("okta:" + sid2, "e.haddad: three push denials, then approves")
    session_start(fx, fx.at("09:02:40.006"), had, sid2, HOME_DENVER, CHROME_MAC)
    t = fx.at("09:02:48.300")
    for i in range(3):
        push(fx, t, had, sid2, HOME_DENVER, CHROME_MAC, deny=True, seed=i)
        t += dt.timedelta(seconds=35)
    push(fx, t, had, sid2, HOME_DENVER, CHROME_MAC, deny=False, seed=3)
    sso(fx, t + dt.timedelta(seconds=25), had, sid2, HOME_DENVER, CHROME_MAC, APP_AWS)
    fx.quiet("okta:" + sid2, "{peak} failures in 10 min (threshold 4)",
             window=dict(match=okta_mfa_failure, agg="count", window_s=MFA_WINDOW, threshold=MFA_FAILURES))

    ito = OktaUser("f.ito@northwind.example", "Fumiko Ito")
    sid3 = okta_session("f.ito", fx.day)
    fx.who("okta:" + sid3, "f.ito: step-up MFA failures spread over 21 min")
    sign_in(fx, "08:58:00.500", ito, sid3, OFFICE, CHROME_MAC)
    for i, (clock, ok) in enumerate([("09:03:00.000", False), ("09:06:00.000", False),
                                     ("09:11:00.000", False), ("09:11:40.000", True),
                                     ("09:24:00.000", False), ("09:24:30.000", True)]):
        otp(fx, fx.at(clock), ito, sid3, OFFICE, CHROME_MAC, ok=ok, seed=f"s{i}")
    fx.quiet("okta:" + sid3, "4 failures in the session but at most {peak} within any 10 min",
             window=dict(match=okta_mfa_failure, agg="count", window_s=MFA_WINDOW, threshold=MFA_FAILURES))


# ---------------------------------------------------------------------------------------------
# Entra
# ---------------------------------------------------------------------------------------------

TENANT = "9f4d2a61-7c3e-4b8a-b5d0-2e6f1a9c4b73"


class EntraUser:
    def __init__(self, upn, display):
        self.upn = upn
        self.display = display
        self.id = uuid("entra-user", upn)


def entra_mfa_failure(e):
    return e.rec.get("status", {}).get("errorCode") == 500121


def entra(fx, t, user, session_id, code, place, ua, os_name, browser, seed, correlation=None):
    reasons = {
        0: ("Other.", "MFA requirement satisfied by strong authentication", ["Password", "Microsoft Authenticator (push notification)"]),
        50074: ("Strong Authentication is required.", "The user must complete multi-factor authentication.", ["Password"]),
        500121: ("Authentication failed during strong authentication request.",
                 "MFA denied; user declined the authentication", ["Password"]),
        500122: ("Authentication failed during strong authentication request.",
                 "MFA denied; user did not respond to mobile app notification", ["Password"]),
    }
    failure, details, methods = reasons[code]
    if code == 500122:
        code_out = 500121
    else:
        code_out = code
    rec = entra_signin(
        t, tenant=TENANT, user_id=user.id, upn=user.upn, display=user.display, session_id=session_id,
        ip=place.ip, asn=place.asn, city=place.city, state=place.state,
        country={"United States": "US", "Romania": "RO", "Netherlands": "NL"}[place.country],
        ua=ua, device_os=os_name, browser=browser, error_code=code_out, failure_reason=failure,
        details=details, methods=methods, correlation=correlation, seed=seed,
    )
    return fx.add(rec, f"entra:{TENANT}:sid:{session_id}")


EDGE_UA = EDGE_WIN.raw
CHROME_MAC_UA = CHROME_MAC.raw


def entra_attack(fx):
    fx.summary = (
        "With a stolen password, one Entra browser session (one `sessionId`) is pushed to MFA "
        "five times: each attempt logs error 50074 (MFA required, an interrupt) and then 500121 "
        "(the user declined). Counted: error 500121 only. A regular user signs in alongside."
    )
    pet = EntraUser("nadia.petrov@northwind.example", "Nadia Petrov")
    sid = uuid("entra-session", "nadia", fx.day)
    fx.who(f"entra:{TENANT}:sid:{sid}", "nadia.petrov: stolen password used from 203.0.113.144")
    t = fx.at("03:40:05")
    for i in range(5):
        corr = uuid("corr", sid, i)
        entra(fx, t, pet, sid, 50074, ATTACKER_RO, CHROME_WIN.raw, "Windows10", "Chrome 128.0.0", f"a{i}", corr)
        entra(fx, t + dt.timedelta(seconds=38), pet, sid, 500121, ATTACKER_RO, CHROME_WIN.raw, "Windows10",
              "Chrome 128.0.0", f"b{i}", corr)
        t += dt.timedelta(seconds=70 + i * 5)
    fx.fire_window(f"entra:{TENANT}:sid:{sid}", entra_mfa_failure, agg="count", window_s=MFA_WINDOW,
                   threshold=MFA_FAILURES, intent="repeated MFA failures in one session",
                   action="revoke session",
                   why="4th sign-in with `status.errorCode` 500121 in this `sessionId` within 10 min "
                       "(the 50074 interrupts between them do not count)")

    ok = EntraUser("joao.almeida@northwind.example", "João Almeida")
    sid2 = uuid("entra-session", "joao", fx.day)
    fx.who(f"entra:{TENANT}:sid:{sid2}", "joao.almeida, regular MFA sign-in (background)")
    corr = uuid("corr", sid2)
    entra(fx, fx.at("03:41:10"), ok, sid2, 50074, OFFICE, EDGE_UA, "Windows10", "Edge 129.0.0", "a", corr)
    entra(fx, fx.at("03:41:31"), ok, sid2, 0, OFFICE, EDGE_UA, "Windows10", "Edge 129.0.0", "b", corr)
    fx.quiet(f"entra:{TENANT}:sid:{sid2}", "no 500121")


def entra_benign(fx):
    fx.summary = (
        "Ordinary MFA trouble in Entra: a user misses one push (500121, no response) and "
        "approves the next; another declines three times before approving (near, but under, "
        "four). Both also log 50074 interrupts, so a rule that counted every failed sign-in "
        "instead of error 500121 would fire here."
    )
    om = EntraUser("omar.haddad@northwind.example", "Omar Haddad")
    sid = uuid("entra-session", "omar", fx.day)
    fx.who(f"entra:{TENANT}:sid:{sid}", "omar.haddad: one missed push")
    c1, c2 = uuid("corr", sid, 1), uuid("corr", sid, 2)
    entra(fx, fx.at("08:10:02"), om, sid, 50074, OFFICE, EDGE_UA, "Windows10", "Edge 129.0.0", "a", c1)
    entra(fx, fx.at("08:11:05"), om, sid, 500122, OFFICE, EDGE_UA, "Windows10", "Edge 129.0.0", "b", c1)
    entra(fx, fx.at("08:11:40"), om, sid, 50074, OFFICE, EDGE_UA, "Windows10", "Edge 129.0.0", "c", c2)
    entra(fx, fx.at("08:11:58"), om, sid, 0, OFFICE, EDGE_UA, "Windows10", "Edge 129.0.0", "d", c2)
    fx.quiet(f"entra:{TENANT}:sid:{sid}", "{peak} MFA failure",
             window=dict(match=entra_mfa_failure, agg="count", window_s=MFA_WINDOW, threshold=MFA_FAILURES))

    ines = EntraUser("ines.moreau@northwind.example", "Inès Moreau")
    sid2 = uuid("entra-session", "ines", fx.day)
    fx.who(f"entra:{TENANT}:sid:{sid2}", "ines.moreau: declines three pushes, then approves")
    t = fx.at("08:12:30")
    for i in range(3):
        corr = uuid("corr", sid2, i)
        entra(fx, t, ines, sid2, 50074, HOME_DENVER, CHROME_MAC_UA, "MacOs", "Chrome 129.0.0", f"a{i}", corr)
        entra(fx, t + dt.timedelta(seconds=27), ines, sid2, 500121, HOME_DENVER, CHROME_MAC_UA, "MacOs",
              "Chrome 129.0.0", f"b{i}", corr)
        t += dt.timedelta(seconds=65)
    corr = uuid("corr", sid2, 3)
    entra(fx, t, ines, sid2, 50074, HOME_DENVER, CHROME_MAC_UA, "MacOs", "Chrome 129.0.0", "a3", corr)
    entra(fx, t + dt.timedelta(seconds=19), ines, sid2, 0, HOME_DENVER, CHROME_MAC_UA, "MacOs",
          "Chrome 129.0.0", "b3", corr)
    fx.quiet(f"entra:{TENANT}:sid:{sid2}", "{peak} errors 500121 in 10 min (threshold 4); 7 failed "
             "sign-ins in all, counting the 50074 interrupts",
             window=dict(match=entra_mfa_failure, agg="count", window_s=MFA_WINDOW, threshold=MFA_FAILURES))
