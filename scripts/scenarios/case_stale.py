"""Case 7: stale privileged sessions that change policy, export data or deploy; case 10: a
privileged session that outlives the duration limit while other sessions move event time."""

import datetime as dt

from case_scope import APP_AWS, APP_GITHUB, APP_SFDC, APP_SLACK, APP_WORKDAY, OKTA_ADMIN_APP, admin_app, sign_in, sso
from common import (
    CHROME_MAC, CONSOLE_UA, DURATION_S, EDGE_WIN, HOME_DENVER, JAVA_SDK_UA, OFFICE, PROD, SHARED,
    SSO_PATH, STALE_ADMIN_S, cli_mac_ua, cli_ua,
)
from framework import human
from vendors import (
    IamUser, OktaUser, RoleSession, ct_assume_role, ct_event, okta_event, okta_id, okta_session,
    okta_target,
)

IAM = "iam.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"
ECS = "ecs.amazonaws.com"
DDB = "dynamodb.amazonaws.com"


def age(session, t):
    return human((t - session.created).total_seconds())


def stale_fire(fx, ev, session, what):
    a = (ev.time - session.created).total_seconds()
    assert a > STALE_ADMIN_S, (fx.rel, what)
    fx.fire(ev, "stale privileged session makes a change", "step up",
            f"{what} by an admin role session created {age(session, ev.time)} earlier "
            f"(`session.created_at` {session.created.strftime('%H:%M:%S')}, limit 1 h)")


def privileged_attack(fx):
    fx.summary = (
        "Five admin role sessions act long after they were issued: an SSO AdministratorAccess "
        "session puts an inline policy on a workload role 2 h 17 min in; another attaches "
        "AmazonS3FullAccess to the CI role 1 h 15 min in; a `platform-admin` session (issued for "
        "4 h) deploys Lambda code after 1 h 38 min; an `ops-admin` session updates an ECS service "
        "after 1 h 42 min; a `data-admin` session exports a DynamoDB table to S3 after 1 h 46 min. "
        "The IAM users that issued two of them and a developer work alongside."
    )
    ip = "198.51.100.41"
    alice = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b",
                        "alice.nguyen@northwind.example", fx.at("07:58:12"), path=SSO_PATH, duration=43200)
    fx.who(alice.session_key, "SSO AdministratorAccess of alice.nguyen, created 07:58:12")
    fx.add(ct_event(alice, fx.at("08:00:40"), IAM, "ListRoles", ip=ip, ua=CONSOLE_UA), alice.session_key)
    fx.add(ct_event(alice, fx.at("08:06:02"), "cloudtrail.amazonaws.com", "LookupEvents", ip=ip, ua=CONSOLE_UA,
                    req={"maxResults": 50}, read_only=True), alice.session_key)
    ev = fx.add(ct_event(alice, fx.at("10:15:40"), IAM, "PutRolePolicy", ip=ip, ua=cli_mac_ua("iam.put-role-policy"),
                         req={"roleName": "orders-api-task", "policyName": "debug-full-access",
                              "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                                '"Action":"*","Resource":"*"}]}'}), alice.session_key)
    stale_fire(fx, ev, alice, "`iam:PutRolePolicy` (on orders-api-task)")

    bob = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b", "bob.marsh@northwind.example",
                      fx.at("06:50:31"), path=SSO_PATH, duration=43200)
    fx.who(bob.session_key, "SSO AdministratorAccess of bob.marsh, created 06:50:31")
    fx.add(ct_event(bob, fx.at("06:51:15"), IAM, "GetRole", ip="192.0.2.61", ua=CONSOLE_UA,
                    req={"roleName": "ci-runner"}), bob.session_key)
    ev = fx.add(ct_event(bob, fx.at("08:05:44"), IAM, "AttachRolePolicy", ip="192.0.2.61", ua=CONSOLE_UA,
                         req={"roleName": "ci-runner", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}),
                bob.session_key)
    stale_fire(fx, ev, bob, "`iam:AttachRolePolicy` (AmazonS3FullAccess on ci-runner)")

    ops = IamUser(SHARED, "jump-host-ops")
    fx.who(ops.session_key, "IAM user `jump-host-ops` (long-term key on the bastion) — issues two admin sessions")
    jip = "192.0.2.10"
    pa = RoleSession(PROD, "platform-admin", "deploy-hotfix", fx.at("08:02:00"), duration=14400)
    oa = RoleSession(PROD, "ops-admin", "ecs-maint", fx.at("08:20:00"), duration=21600)
    fx.add(ct_assume_role(ops, fx.at("08:02:00"), pa, ip=jip, ua=cli_ua("sts.assume-role")), ops.session_key)
    fx.add(ct_assume_role(ops, fx.at("08:20:00"), oa, ip=jip, ua=cli_ua("sts.assume-role")), ops.session_key)
    fx.quiet(ops.session_key, "issues the sessions; AssumeRole only")
    fx.who(pa.session_key, "role `platform-admin` (4 h session), created 08:02:00")
    fx.add(ct_event(pa, fx.at("08:03:10"), LAMBDA, "GetFunction20150331v2", ip=jip,
                    ua=cli_ua("lambda.get-function"), req={"functionName": "billing-export"}), pa.session_key)
    ev = fx.add(ct_event(pa, fx.at("09:40:25"), LAMBDA, "UpdateFunctionCode20150331v2", ip=jip,
                         ua=cli_ua("lambda.update-function-code"),
                         req={"functionName": "billing-export", "publish": True, "zipFile": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                pa.session_key)
    stale_fire(fx, ev, pa, "`lambda:UpdateFunctionCode20150331v2` (billing-export)")

    fx.who(oa.session_key, "role `ops-admin` (6 h session), created 08:20:00")
    fx.add(ct_event(oa, fx.at("08:21:30"), ECS, "DescribeServices", ip=jip, ua=cli_ua("ecs.describe-services"),
                    req={"cluster": "prod", "services": ["payments-api"]}), oa.session_key)
    ev = fx.add(ct_event(oa, fx.at("10:02:10"), ECS, "UpdateService", ip=jip, ua=cli_ua("ecs.update-service"),
                         req={"cluster": "prod", "service": "payments-api", "taskDefinition": "payments-api:88",
                              "forceNewDeployment": True}), oa.session_key)
    stale_fire(fx, ev, oa, "`ecs:UpdateService` (payments-api)")

    da = RoleSession(PROD, "data-admin", "d.kaur@northwind.example", fx.at("07:45:00"), duration=28800,
                     seed="saml")
    fx.who(da.session_key, "role `data-admin` (SAML federation, 8 h), created 07:45:00")
    fx.add(ct_event(da, fx.at("07:47:19"), DDB, "DescribeTable", ip="198.51.100.57",
                    ua=cli_mac_ua("dynamodb.describe-table"), req={"tableName": "customers"}), da.session_key)
    ev = fx.add(ct_event(da, fx.at("09:31:00"), DDB, "ExportTableToPointInTime", ip="198.51.100.57",
                         ua=cli_mac_ua("dynamodb.export-table-to-point-in-time"),
                         req={"tableArn": f"arn:aws:dynamodb:us-east-1:{PROD}:table/customers",
                              "s3Bucket": "northwind-tmp-exports", "s3Prefix": "customers/", "exportFormat": "DYNAMODB_JSON"},
                         resp={"exportDescription": {"exportArn": f"arn:aws:dynamodb:us-east-1:{PROD}:table/customers/export/01728563460000-5c1a9e3b",
                                                     "exportStatus": "IN_PROGRESS"}}),
                da.session_key)
    stale_fire(fx, ev, da, "`dynamodb:ExportTableToPointInTime` (customers to S3)")

    dev = RoleSession(PROD, "AWSReservedSSO_Developer_5e1f0c9a2b7d4e36", "m.okafor@northwind.example",
                      fx.at("07:30:00"), path=SSO_PATH, duration=28800)
    fx.who(dev.session_key, "SSO Developer of m.okafor (background; not an admin role)")
    fx.add(ct_event(dev, fx.at("09:55:03"), ECS, "UpdateService", ip="198.51.100.57",
                    ua=cli_mac_ua("ecs.update-service"),
                    req={"cluster": "staging", "service": "orders-api", "forceNewDeployment": True}), dev.session_key)
    fx.quiet(dev.session_key, "2 h 25 min old and deploys, but the role is not privileged (no \"admin\" in its name)")


def privileged_benign(fx):
    fx.summary = (
        "The same kinds of changes from admin sessions that are fresh (10–11 minutes old, and one "
        "55 minutes old, just under the hour), an old admin session that only reads, and an old "
        "non-admin deploy role that deploys."
    )
    carol = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b", "carol.diaz@northwind.example",
                        fx.at("14:00:00"), path=SSO_PATH, duration=43200)
    fx.who(carol.session_key, "SSO AdministratorAccess of carol.diaz, created 14:00:00")
    ip = "198.51.100.41"
    fx.add(ct_event(carol, fx.at("14:02:11"), IAM, "GetRole", ip=ip, ua=CONSOLE_UA,
                    req={"roleName": "orders-api-task"}), carol.session_key)
    fx.add(ct_event(carol, fx.at("14:10:30"), IAM, "PutRolePolicy", ip=ip, ua=CONSOLE_UA,
                    req={"roleName": "orders-api-task", "policyName": "sqs-dlq-read",
                         "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":'
                                           '["sqs:ReceiveMessage"],"Resource":"arn:aws:sqs:us-east-1:'
                                           + PROD + ':orders-dlq"}]}'}), carol.session_key)
    fx.quiet(carol.session_key, "PutRolePolicy 10 min 30 s after the session was created")

    ops = IamUser(SHARED, "jump-host-ops")
    fx.who(ops.session_key, "IAM user `jump-host-ops` — issues the fresh platform-admin session")
    pa = RoleSession(PROD, "platform-admin", "deploy-release-57", fx.at("14:20:00"), duration=14400)
    fx.add(ct_assume_role(ops, fx.at("14:20:00"), pa, ip="192.0.2.10", ua=cli_ua("sts.assume-role")), ops.session_key)
    fx.quiet(ops.session_key, "AssumeRole only")
    fx.who(pa.session_key, "role `platform-admin`, created 14:20:00")
    fx.add(ct_event(pa, fx.at("14:31:05"), LAMBDA, "UpdateFunctionCode20150331v2", ip="192.0.2.10",
                    ua=cli_ua("lambda.update-function-code"),
                    req={"functionName": "billing-export", "publish": True, "zipFile": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
           pa.session_key)
    fx.quiet(pa.session_key, "deploys 11 min 5 s after the session was created")

    ed = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b", "ed.kim@northwind.example",
                     fx.at("13:40:00"), path=SSO_PATH, duration=43200)
    fx.who(ed.session_key, "SSO AdministratorAccess of ed.kim, created 13:40:00")
    fx.add(ct_event(ed, fx.at("14:35:00"), IAM, "AttachRolePolicy", ip="192.0.2.61", ua=CONSOLE_UA,
                    req={"roleName": "reporting-lambda",
                         "policyArn": "arn:aws:iam::aws:policy/AmazonAthenaFullAccess"}), ed.session_key)
    fx.quiet(ed.session_key, "AttachRolePolicy 55 min after the session was created (just under 1 h)")

    old = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b", "frank.li@northwind.example",
                      fx.at("11:30:00"), path=SSO_PATH, duration=43200)
    fx.who(old.session_key, "SSO AdministratorAccess of frank.li, created 11:30:00")
    for i, (clock, src, name, req) in enumerate([
        ("14:05:12", IAM, "GetAccountAuthorizationDetails", None),
        ("14:06:40", ECS, "DescribeServices", {"cluster": "prod", "services": ["payments-api"]}),
        ("14:07:02", DDB, "DescribeExport", {"exportArn": f"arn:aws:dynamodb:us-east-1:{PROD}:table/customers/export/01728563460000-5c1a9e3b"}),
    ]):
        fx.add(ct_event(old, fx.at(clock), src, name, ip="198.51.100.57", ua=CONSOLE_UA, req=req, read_only=True,
                        seed=i), old.session_key)
    fx.quiet(old.session_key, "2 h 35 min old, but only reads")

    dep = RoleSession(PROD, "deployer", "release-bot", fx.at("12:00:00"), duration=14400, seed="old-dep")
    fx.who(dep.session_key, "role `deployer` (not privileged), created 12:00:00")
    fx.add(ct_event(dep, fx.at("14:40:00"), ECS, "UpdateService", ip="192.0.2.140", ua=JAVA_SDK_UA,
                    req={"cluster": "prod", "service": "orders-api", "taskDefinition": "orders-api:215",
                         "forceNewDeployment": False}), dep.session_key)
    fx.quiet(dep.session_key, "2 h 40 min old and deploys, but not an admin role")


# ---------------------------------------------------------------------------------------------
# 10. stale-duration-timer
# ---------------------------------------------------------------------------------------------


def duration_scenario(fx):
    fx.summary = (
        "One working day. An Okta super admin signs in at 07:30, opens the Admin Console, makes "
        "two admin changes and keeps using the Admin Console through the day (last at 14:52), "
        "never logging out: the session is still open when it turns 8 h old at 15:30, and the "
        "duration rule fires from its timer. An AWS SSO AdministratorAccess session is issued at "
        "08:15, used for 25 minutes and goes quiet — it ended without saying so (its credentials "
        "lapsed), and gets no decision. A regular employee's Okta session (from 07:05) and the "
        "hourly task-role sessions of a service keep producing events until 17:20, so event "
        "time passes the due times. A second admin session, started at 09:40, is still under "
        "8 h when the file ends."
    )
    # P1: Okta super admin.
    alv = OktaUser("j.alvarez@northwind.example", "Jorge Alvarez")
    sid = okta_session("j.alvarez", fx.day)
    key = "okta:" + sid
    fx.who(key, "j.alvarez, Okta super admin; session starts 07:30:00.000")
    sign_in(fx, "07:30:00.000", alv, sid, OFFICE, CHROME_MAC)
    admin_app(fx, fx.at("07:31:02.418"), alv, sid, OFFICE, CHROME_MAC)
    fx.add(okta_event(fx.at("07:36:19.904"), "policy.rule.update", alv, sid, OFFICE, CHROME_MAC,
                      targets=[okta_target("PolicyRule", "0pr7w1c3xkA5nLp2G697", "unknown", "Require MFA off-network"),
                               okta_target("PolicyEntity", "00p2d8f4hjB6mQr3H697", "unknown", "Default Okta Sign-On Policy")],
                      debug={"requestUri": "/api/v1/policies/00p2d8f4hjB6mQr3H697/rules/0pr7w1c3xkA5nLp2G697"}),
           key)
    fx.add(okta_event(fx.at("07:44:51.377"), "user.lifecycle.deactivate", alv, sid, OFFICE, CHROME_MAC,
                      targets=[okta_target("User", okta_id("00u", "leaver2"), "v.olsen@northwind.example", "Viktor Olsen")]),
           key)
    for clock in ["10:12:33.801", "12:47:05.114", "14:52:40.926"]:
        admin_app(fx, fx.at(clock), alv, sid, OFFICE, CHROME_MAC)
    due1 = fx.at("07:30:00") + dt.timedelta(seconds=DURATION_S)
    fx.fire_timer(key, due1, "privileged session older than 8 h (timer)", "step up",
                  "timer due 15:30:00.000 (session start 07:30:00.000, `user.session.start` "
                  "success, + 8 h); still in use (Admin Console at 14:52:40, within 2 h of the "
                  "due time), no logout — the decision is emitted when Okta's clock passes the "
                  "due time by the 20-minute grace (line {trigger}, another session)")

    # P2: AWS SSO admin.
    kb = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b", "k.brandt@northwind.example",
                     fx.at("08:15:00"), path=SSO_PATH, duration=43200)
    fx.who(kb.session_key, "SSO AdministratorAccess of k.brandt; `creationDate` 08:15:00")
    for i, (clock, src, name, req) in enumerate([
        ("08:15:31", "sts.amazonaws.com", "GetCallerIdentity", None),
        ("08:19:02", IAM, "ListRoles", None),
        ("08:27:45", IAM, "GetRole", {"roleName": "orders-api-task"}),
        ("08:40:10", "cloudtrail.amazonaws.com", "LookupEvents", {"maxResults": 50}),
    ]):
        fx.add(ct_event(kb, fx.at(clock), src, name, ip="198.51.100.41", ua=cli_mac_ua(src.split(".")[0]),
                        req=req, read_only=True,
                        host="sts.amazonaws.com" if src.startswith("sts") else None, seed=i), kb.session_key)
    fx.quiet(kb.session_key, "admin, 8 h old at 16:15, but no event after 08:40:10: it ended "
             "without a record (no sign of life in the 2 h before the due time)")

    # N1: regular employee, all day, not privileged.
    emp = OktaUser("n.jensen@northwind.example", "Nora Jensen")
    sid2 = okta_session("n.jensen", fx.day)
    fx.who("okta:" + sid2, "n.jensen, regular employee; session from 07:05 to 17:20 (more than 10 h)")
    sign_in(fx, "07:05:11.602", emp, sid2, HOME_DENVER, EDGE_WIN)
    apps = [APP_SLACK, APP_SFDC, APP_WORKDAY, APP_GITHUB, APP_AWS]
    clocks = ["07:06:02.130", "08:12:40.551", "09:31:07.009", "10:48:55.730", "11:57:20.402",
              "12:44:03.118", "13:52:38.870", "14:41:12.256", "15:31:12.604", "15:58:40.091",
              "16:17:40.332", "16:49:05.777", "17:20:18.940"]
    for i, clock in enumerate(clocks):
        sso(fx, fx.at(clock), emp, sid2, HOME_DENVER, EDGE_WIN, apps[i % len(apps)], seed=i)
    fx.quiet("okta:" + sid2, "older than 8 h but never privileged (no Admin Console, no admin change)")

    # N2: a second admin who started later.
    ro = OktaUser("r.chen@northwind.example", "Rachel Chen")
    sid3 = okta_session("r.chen-late", fx.day)
    fx.who("okta:" + sid3, "r.chen, Okta super admin; session starts 09:40:00.500 (due 17:40:00.500)")
    sign_in(fx, "09:40:00.500", ro, sid3, OFFICE.at("198.51.100.24"), CHROME_MAC)
    admin_app(fx, fx.at("09:41:13.207"), ro, sid3, OFFICE.at("198.51.100.24"), CHROME_MAC)
    fx.quiet("okta:" + sid3, "privileged, but the file ends at 17:20:18.940, before 17:40:00.500")

    # N3: a service's hourly task-role sessions.
    for hour in range(7, 18):
        s = RoleSession(PROD, "orders-api-task", f"{hour:02d}a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e", fx.at(f"{hour:02d}:02:00"),
                        seed=f"hourly-{hour}")
        fx.who(s.session_key, f"ECS task role `orders-api-task`, credentials of {hour:02d}:02")
        for i, minute in enumerate([5, 29, 53]):
            clock = f"{hour:02d}:{minute:02d}:{(hour * 7 + i * 13) % 60:02d}"
            if hour == 17 and minute > 20:
                continue
            fx.add(ct_event(s, fx.at(clock), "sqs.amazonaws.com", "GetQueueAttributes", ip="10.20.4.17",
                            ua=JAVA_SDK_UA,
                            req={"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{PROD}/orders-events",
                                 "attributeNames": ["ApproximateNumberOfMessages"]}, seed=i), s.session_key)
        fx.quiet(s.session_key, "workload role, not privileged, one hour long")
