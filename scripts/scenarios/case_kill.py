"""Case 9: a kill that does not take effect — the killed session (or a chained session it issued
before the kill) keeps making calls."""

import datetime as dt

from case_scope import (
    APP_AWS, APP_GITHUB, APP_SLACK, admin_app, grant_privilege, sign_in, sso, web_identity_assume,
)
from common import ADMIN_POLICY, BOTO3_UA, CHROME_MAC, EDGE_WIN, HOME_DENVER, OFFICE, PROD, cli_ua
from vendors import (
    IamUser, OktaUser, RoleSession, ct_assume_role, ct_event, ct_expiration, okta_session, s3_object_event,
)

IAM = "iam.amazonaws.com"

KNE = "sessionguard.kill_not_enforced"


def attack(fx):
    fx.summary = (
        "Three sessions are killed for granting themselves admin and keep going. An IAM user key "
        "attaches AdministratorAccess to itself, then creates a user and a key and lists "
        "buckets for four more minutes. A build-agent role session assumes a publisher role "
        "(the child key is issued but not yet used), puts `*:*` on its own role, then both the "
        "killed session and the child issued before the kill act. An Okta session grants "
        "itself Super administrator and carries on signing in to apps. Expected: the "
        "self-grant kill, then one `" + KNE + "` decision per session on its first event after "
        "the kill (the engine reports it once per session); a session chained from a killed "
        "session inherits the kill when it first appears, so the child's first event is itself "
        "post-kill activity."
    )
    ip = "203.0.113.52"
    svc = IamUser(PROD, "svc-build")
    k = svc.session_key
    fx.who(k, "IAM user `svc-build`, long-term key used from 203.0.113.52")
    fx.add(ct_event(svc, fx.at("10:00:05"), "sts.amazonaws.com", "GetCallerIdentity", ip=ip, ua=BOTO3_UA,
                    host="sts.amazonaws.com"), k)
    kill = fx.add(ct_event(svc, fx.at("10:00:40"), IAM, "AttachUserPolicy", ip=ip, ua=BOTO3_UA,
                           req={"userName": "svc-build", "policyArn": ADMIN_POLICY}), k)
    fx.fire(kill, "self-grant: AttachUserPolicy on its own user", "revoke session",
            "the kill: AdministratorAccess attached to the caller's own user")
    ev = fx.add(ct_event(svc, fx.at("10:01:15"), IAM, "CreateUser", ip=ip, ua=BOTO3_UA,
                         req={"userName": "svc-build-2"}), k)
    fx.fire(ev, KNE, "revoke credential",
            "first call after the kill at line {kill}, 35 s later, with the same key",
            refs={"kill": kill})
    fx.add(ct_event(svc, fx.at("10:01:40"), IAM, "CreateAccessKey", ip=ip, ua=BOTO3_UA,
                    req={"userName": "svc-build-2"},
                    resp={"accessKey": {"userName": "svc-build-2", "accessKeyId": "AKIAZT4Q7W2E9R6Y3U5I",
                                        "status": "Active", "createDate": ct_expiration(fx.at("10:01:40"))}}), k)
    fx.add(ct_event(svc, fx.at("10:02:30"), "s3.amazonaws.com", "ListBuckets", ip=ip, ua=BOTO3_UA,
                    req={"Host": "s3.us-east-1.amazonaws.com"}), k)
    fx.add(ct_event(svc, fx.at("10:04:10"), IAM, "ListUsers", ip=ip, ua=BOTO3_UA), k)

    agent = RoleSession(PROD, "build-agent", "i-03c9e1a7f5b2d4680", fx.at("09:44:12"), seed="bk")
    pub = RoleSession(PROD, "artifact-publisher", "build-agent", fx.at("10:10:02"), seed="pub")
    fx.who(agent.session_key, "EC2 role `build-agent` (instance credentials replayed from 203.0.113.90)")
    fx.who(pub.session_key, "child: `artifact-publisher`, issued by build-agent 90 s before the kill")
    aip = "203.0.113.90"
    ua = cli_ua("iam.put-role-policy")
    fx.add(ct_event(agent, fx.at("10:09:31"), "sts.amazonaws.com", "GetCallerIdentity", ip=aip,
                    ua=cli_ua("sts.get-caller-identity"), host="sts.amazonaws.com"), agent.session_key)
    issue = fx.add(ct_assume_role(agent, fx.at("10:10:02"), pub, ip=aip, ua=cli_ua("sts.assume-role")),
                   agent.session_key)
    kill2 = fx.add(ct_event(agent, fx.at("10:11:30"), IAM, "PutRolePolicy", ip=aip, ua=ua,
                            req={"roleName": "build-agent", "policyName": "build-extra",
                                 "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                                   '"Action":"*","Resource":"*"}]}'}), agent.session_key)
    fx.fire(kill2, "self-grant: PutRolePolicy on its own role", "revoke session",
            "the kill: inline `*:*` policy put on the session's own role")
    ev = fx.add(s3_object_event(pub, fx.at("10:12:05"), "PutObject", "northwind-artifacts",
                                "releases/orders-api/1.43.0/orders-api.jar", ip=aip,
                                ua="[" + cli_ua("s3.cp") + "]", size=48_331_920), pub.session_key)
    fx.fire(ev, KNE, "revoke credential",
            "the child key issued at line {issue} (before the kill) first appears after its parent "
            "was killed at line {kill}: it inherits the kill, so this first event is post-kill activity",
            refs={"issue": issue, "kill": kill2})
    ev = fx.add(ct_event(agent, fx.at("10:12:40"), IAM, "ListRoles", ip=aip, ua=cli_ua("iam.list-roles")),
                agent.session_key)
    fx.fire(ev, KNE, "revoke credential", "the killed session itself calls again, 70 s after the kill "
            "at line {kill}", refs={"kill": kill2})
    fx.add(s3_object_event(pub, fx.at("10:13:02"), "PutObject", "northwind-artifacts",
                           "releases/orders-api/1.43.0/orders-api.jar.sha256", ip=aip,
                           ua="[" + cli_ua("s3.cp") + "]", size=64), pub.session_key)

    walsh = OktaUser("t.walsh@northwind.example", "Tara Walsh")
    sid = okta_session("t.walsh", fx.day)
    ok = "okta:" + sid
    fx.who(ok, "t.walsh, Okta admin session")
    sign_in(fx, "10:20:00.117", walsh, sid, HOME_DENVER, CHROME_MAC)
    admin_app(fx, fx.at("10:20:41.650"), walsh, sid, HOME_DENVER, CHROME_MAC)
    kill3 = grant_privilege(fx, fx.at("10:21:30.902"), walsh, walsh, sid, HOME_DENVER, CHROME_MAC,
                            "Super administrator")
    fx.fire(kill3, "self-grant: admin role assigned to itself", "revoke session",
            "the kill: Super administrator granted to the actor itself")
    ev = sso(fx, fx.at("10:23:44.018"), walsh, sid, HOME_DENVER, CHROME_MAC, APP_AWS)
    fx.fire(ev, KNE, "revoke credential", "the same `rootSessionId` signs in to AWS 2 min 13 s after the "
            "kill at line {kill}", refs={"kill": kill3})
    sso(fx, fx.at("10:25:02.331"), walsh, sid, HOME_DENVER, CHROME_MAC, APP_GITHUB)

    bg = RoleSession(PROD, "orders-api-task", "5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e", fx.at("09:50:00"), seed="kne")
    fx.who(bg.session_key, "ECS task role `orders-api-task` (background)")
    for i, clock in enumerate(["10:00:00", "10:06:00", "10:12:00", "10:18:00", "10:24:00"]):
        fx.add(ct_event(bg, fx.at(clock), "sqs.amazonaws.com", "ReceiveMessage", ip="10.20.4.17",
                        ua="aws-sdk-java/2.28.16 Linux/5.10.226-214.880.amzn2.x86_64",
                        req={"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{PROD}/orders-events",
                             "maxNumberOfMessages": 10, "waitTimeSeconds": 20}, seed=i), bg.session_key)
    fx.quiet(bg.session_key, "never killed")


def benign(fx):
    fx.summary = (
        "Kills that hold. A CI role session (GitHub Actions OIDC) attaches AdministratorAccess "
        "to its own role and is killed; it makes no further call, and the next workflow run "
        "gets a new session from a new `AssumeRoleWithWebIdentity` (not issued by the killed "
        "session) and deploys. An Okta session grants itself Super administrator, is killed and "
        "goes silent; the user signs in again later, which is a new `rootSessionId`. Only the "
        "two self-grant kills are expected; no `" + KNE + "`."
    )
    ci_ip = "192.0.2.140"
    ci_ua = "aws-sdk-nodejs/2.1691.0 linux/v20.17.0 configure-aws-credentials-for-github-actions promise"
    run1 = RoleSession(PROD, "release-bot", "GitHubActions", fx.at("14:00:10"), seed="run-9001")
    fx.who(run1.session_key, "role `release-bot`, workflow run 9001 (killed)")
    web_identity_assume(fx, fx.at("14:00:10"), run1, "repo:northwind-labs/orders-api:ref:refs/heads/main",
                        ci_ip, ci_ua)
    kill = fx.add(ct_event(run1, fx.at("14:01:02"), IAM, "AttachRolePolicy", ip=ci_ip,
                           ua=cli_ua("iam.attach-role-policy"),
                           req={"roleName": "release-bot", "policyArn": ADMIN_POLICY}), run1.session_key)
    fx.fire(kill, "self-grant: AttachRolePolicy on its own role", "revoke session",
            "the kill; the session makes no further call")

    run2 = RoleSession(PROD, "release-bot", "GitHubActions", fx.at("14:12:40"), seed="run-9002")
    fx.who(run2.session_key, "role `release-bot`, workflow run 9002 (a new session)")
    web_identity_assume(fx, fx.at("14:12:40"), run2, "repo:northwind-labs/orders-api:ref:refs/heads/main",
                        ci_ip, ci_ua)
    fx.add(ct_event(run2, fx.at("14:13:31"), "ecs.amazonaws.com", "RegisterTaskDefinition", ip=ci_ip,
                    ua=cli_ua("ecs.register-task-definition"), req={"family": "orders-api"}), run2.session_key)
    fx.add(ct_event(run2, fx.at("14:13:52"), "ecs.amazonaws.com", "UpdateService", ip=ci_ip,
                    ua=cli_ua("ecs.update-service"),
                    req={"cluster": "prod", "service": "orders-api", "taskDefinition": "orders-api:216"}),
           run2.session_key)
    fx.quiet(run2.session_key, "a new credential from a new web-identity exchange, not a child of the "
             "killed session")

    walsh = OktaUser("u.mensah@northwind.example", "Kwame Mensah")
    sid = okta_session("u.mensah", fx.day)
    fx.who("okta:" + sid, "u.mensah, first session (killed)")
    sign_in(fx, "14:20:00.220", walsh, sid, OFFICE, EDGE_WIN)
    admin_app(fx, fx.at("14:20:35.004"), walsh, sid, OFFICE, EDGE_WIN)
    kill2 = grant_privilege(fx, fx.at("14:21:10.660"), walsh, walsh, sid, OFFICE, EDGE_WIN,
                            "Super administrator")
    fx.fire(kill2, "self-grant: admin role assigned to itself", "revoke session",
            "the kill; this `rootSessionId` never appears again")
    sid2 = okta_session("u.mensah", fx.day, "again")
    fx.who("okta:" + sid2, "u.mensah, signs in again after the kill (a new session)")
    sign_in(fx, "14:35:12.871", walsh, sid2, OFFICE, EDGE_WIN, seed="again")
    sso(fx, fx.at("14:35:40.093"), walsh, sid2, OFFICE, EDGE_WIN, APP_SLACK)
    fx.quiet("okta:" + sid2, "a new session id: the user re-authenticated")
