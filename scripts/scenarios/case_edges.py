"""Case 11: events exactly on the edges users hit — a window's boundary, a threshold's value, a
duration's limit — and names written in another case.

The other cases keep every counted event off a window boundary (the generator refuses one).
Here the events sit on it on purpose (`edge=True`): the generator checks that a half-open and a
closed window really disagree on them, and the ground truth takes the rule pack's meaning —
a window holds the events less than its span older than the newest (one exactly 5 min older is
out), a threshold `gte` is reached at its value, a duration `limit` is passed only when the age
is more than the limit, and text comparisons ignore ASCII case unless `cased`.
"""

import datetime as dt

from case_mfa import otp, session_start
from common import (
    ADMIN_POLICY, BOTO3_UA, FIREFOX_LINUX, HOME_DENVER, MFA_FAILURES, MFA_WINDOW, OFFICE, PROD,
    RCLONE_UA, S3_COUNT, S3_COUNT_WINDOW, STALE_ADMIN_S, cli_ua,
)
from vendors import IamUser, OktaUser, RoleSession, ct_event, okta_session, s3_object_event

IAM = "iam.amazonaws.com"


def is_get(e):
    return e.rec.get("eventName") == "GetObject"


def reads(fx, who, start, gaps, bucket, ip):
    """GetObject records by `who` at `start` and after each gap (seconds)."""
    t = start
    times = [t]
    for g in gaps:
        t += dt.timedelta(seconds=g)
        times.append(t)
    for i, t in enumerate(times):
        fx.add(s3_object_event(who, t, "GetObject", bucket, f"exports/part-{i:04d}.parquet", ip=ip,
                               ua=RCLONE_UA, size=48_000 + i), who.session_key)
    return times


def aws(fx):
    fx.summary = (
        "Three S3 readers around the count rule's edges (60 objects in 5 min): 60 reads whose "
        "first and last are exactly 5 min apart (the first is out of the last one's window: 59), "
        "60 reads 4 min 59 s apart (exactly 60: the threshold is reached), and 59 reads in two "
        "minutes. Two admin role sessions around the 1-hour limit of the stale-session rule: one "
        "changes a policy exactly 1 h after it was created (not older than the limit), one 1 h "
        "and 1 s after. And an IAM user key attaching a policy to its own user with the name "
        "written in capitals (IAM user names are case-insensitive: it is the same user)."
    )
    ip = "198.51.100.23"
    window = S3_COUNT_WINDOW

    # On the boundary: the 60th read is exactly one window after the first.
    on = RoleSession(PROD, "etl-export", "nightly-on-edge", fx.at("01:58:00"), seed="edge-on")
    fx.who(on.session_key, "role `etl-export`: 60 reads, first and last exactly 5 min apart")
    gaps = [5] * (S3_COUNT - 2) + [window - 5 * (S3_COUNT - 2)]
    times = reads(fx, on, fx.at("02:00:00"), gaps, "northwind-exports", ip)
    assert times[-1] - times[0] == dt.timedelta(seconds=window)
    fx.quiet(on.session_key,
             "60 reads, the last exactly 5 min after the first: the first is not in the last one's "
             "window, which holds {peak}",
             window=dict(match=is_get, agg="count", window_s=window, threshold=S3_COUNT, edge=True))

    # One second inside: exactly the threshold within the window.
    inside = RoleSession(PROD, "etl-export", "nightly-inside", fx.at("02:08:00"), seed="edge-in")
    fx.who(inside.session_key, "role `etl-export`: 60 reads, first and last 4 min 59 s apart")
    gaps = [5] * (S3_COUNT - 2) + [window - 1 - 5 * (S3_COUNT - 2)]
    times = reads(fx, inside, fx.at("02:10:00"), gaps, "northwind-exports", ip)
    assert times[-1] - times[0] == dt.timedelta(seconds=window - 1)
    fx.fire_window(inside.session_key, is_get, agg="count", window_s=window, threshold=S3_COUNT,
                   intent="bulk S3 export (object count)", action="revoke session",
                   why="the 60th read, 4 min 59 s after the first: exactly 60 in the window "
                       "(`gte: 60` is reached at 60)")

    # One under the threshold, well inside the window.
    under = RoleSession(PROD, "etl-export", "nightly-under", fx.at("02:18:00"), seed="edge-under")
    fx.who(under.session_key, "role `etl-export`: 59 reads in under two minutes")
    reads(fx, under, fx.at("02:20:00"), [2] * (S3_COUNT - 2), "northwind-exports", ip)
    fx.quiet(under.session_key, "59 reads in 1 min 56 s: one under the threshold ({peak})",
             window=dict(match=is_get, agg="count", window_s=window, threshold=S3_COUNT))

    # The stale-session limit: more than 1 h is stale; exactly 1 h is not.
    limit = dt.timedelta(seconds=STALE_ADMIN_S)
    exact = RoleSession(PROD, "platform-admin", "r.iyer", fx.at("03:00:00"), duration=14400,
                        seed="edge-exact")
    fx.who(exact.session_key, "role `platform-admin` of r.iyer, created 03:00:00")
    fx.add(ct_event(exact, fx.at("03:00:30"), IAM, "ListRoles", ip=ip, ua=cli_ua("iam.list-roles")),
           exact.session_key)
    ev = fx.add(ct_event(exact, exact.created + limit, IAM, "AttachRolePolicy", ip=ip,
                         ua=cli_ua("iam.attach-role-policy"),
                         req={"roleName": "orders-api-task",
                              "policyArn": "arn:aws:iam::aws:policy/AmazonSQSFullAccess"}),
                exact.session_key)
    assert ev.time - exact.created == limit
    # A read after it: a record an hour past the session's last is confirmed by the next one of
    # its source (the future guard), whatever other records share its partition.
    fx.add(ct_event(exact, ev.time + dt.timedelta(seconds=25), IAM, "GetRole", ip=ip,
                    ua=cli_ua("iam.get-role"), req={"roleName": "orders-api-task"}),
           exact.session_key)
    fx.quiet(exact.session_key,
             "`iam:AttachRolePolicy` exactly 1 h after the session was created: not older than "
             "the limit")

    late = RoleSession(PROD, "platform-admin", "s.moreau", fx.at("03:10:00"), duration=14400,
                       seed="edge-late")
    fx.who(late.session_key, "role `platform-admin` of s.moreau, created 03:10:00")
    fx.add(ct_event(late, fx.at("03:10:40"), IAM, "ListRoles", ip=ip, ua=cli_ua("iam.list-roles")),
           late.session_key)
    ev = fx.add(ct_event(late, late.created + limit + dt.timedelta(seconds=1), IAM,
                         "AttachRolePolicy", ip=ip, ua=cli_ua("iam.attach-role-policy"),
                         req={"roleName": "orders-api-task",
                              "policyArn": "arn:aws:iam::aws:policy/AmazonSQSFullAccess"}),
                late.session_key)
    fx.fire(ev, "stale privileged session makes a change", "step up",
            "`iam:AttachRolePolicy` 1 h 0 min 1 s after the session was created (limit 1 h)")
    fx.add(ct_event(late, ev.time + dt.timedelta(seconds=25), IAM, "GetRole", ip=ip,
                    ua=cli_ua("iam.get-role"), req={"roleName": "orders-api-task"}),
           late.session_key)

    # A case variant: the key's own user, named in capitals.
    rep = IamUser(PROD, "svc-ledger")
    fx.who(rep.session_key, "IAM user `svc-ledger`, long-term key")
    fx.add(ct_event(rep, fx.at("04:00:05"), "sts.amazonaws.com", "GetCallerIdentity", ip=ip,
                    ua=BOTO3_UA, host="sts.amazonaws.com"), rep.session_key)
    ev = fx.add(ct_event(rep, fx.at("04:00:41"), IAM, "AttachUserPolicy", ip=ip, ua=BOTO3_UA,
                         req={"userName": "SVC-Ledger", "policyArn": ADMIN_POLICY}),
                rep.session_key)
    fx.fire(ev, "self-grant: AttachUserPolicy on its own user", "revoke session",
            "`iam:AttachUserPolicy` with `userName` SVC-Ledger: the caller svc-ledger in other "
            "case (`fieldref` compares ignoring ASCII case)")


def okta(fx):
    fx.summary = (
        "Two Okta sessions around the MFA rule's edges (4 failures in 10 min), with Okta's "
        "millisecond times: four failed codes whose first and fourth are exactly 10 min apart "
        "(the first is out of the fourth's window: 3), and four whose fourth comes 1 ms earlier "
        "(exactly 4: the threshold is reached)."
    )
    for name, label, last_gap_ms, fires in [
        ("d.lindqvist", "first and fourth exactly 10 min apart", 0, False),
        ("e.haddad", "first and fourth 9 min 59.999 s apart", -1, True),
    ]:
        user = OktaUser(f"{name}@northwind.example", name)
        sid = okta_session(name, fx.day)
        key = "okta:" + sid
        fx.who(key, f"{name}: four failed TOTP codes, {label}")
        start = fx.at("09:00:00.250") if fires else fx.at("08:00:00.250")
        session_start(fx, start - dt.timedelta(seconds=20), user, sid, HOME_DENVER, FIREFOX_LINUX)
        first = start
        fails = [first, first + dt.timedelta(minutes=3), first + dt.timedelta(minutes=7),
                 first + dt.timedelta(seconds=MFA_WINDOW, milliseconds=last_gap_ms)]
        for i, t in enumerate(fails):
            otp(fx, t, user, sid, HOME_DENVER, FIREFOX_LINUX, ok=False, seed=f"edge{i}")
        window = dict(match=lambda e: e.rec.get("eventType") == "user.authentication.auth_via_mfa"
                      and e.rec["outcome"]["result"] == "FAILURE",
                      agg="count", window_s=MFA_WINDOW, threshold=MFA_FAILURES, edge=True)
        if fires:
            fx.fire_window(key, window["match"], agg="count", window_s=MFA_WINDOW,
                           threshold=MFA_FAILURES,
                           intent="repeated MFA failures in one session", action="revoke session",
                           why="4th failed code 9 min 59.999 s after the first: exactly 4 in the "
                               "window (`gte: 4` is reached at 4)")
        else:
            fx.quiet(key, "4th failed code exactly 10 min after the first: the first is not in its "
                          "window, which holds {peak}", window=window)
    # An ordinary sign-in from the office alongside.
    reg = OktaUser("f.osei@northwind.example", "f.osei")
    sid = okta_session("f.osei", fx.day)
    fx.who("okta:" + sid, "f.osei: sign-in and one correct code (background)")
    session_start(fx, fx.at("08:30:00.100"), reg, sid, OFFICE, FIREFOX_LINUX)
    otp(fx, fx.at("08:30:12.400"), reg, sid, OFFICE, FIREFOX_LINUX, ok=True, seed="ok")
    fx.quiet("okta:" + sid, "one successful code")
