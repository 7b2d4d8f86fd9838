"""Cases 1–3: scope escalation in AWS, Okta and Kubernetes sessions."""

import datetime as dt

from common import (
    ADMIN_POLICY, ATTACKER_NL, ATTACKER_RO, BOTO3_UA, CHROME_MAC, CHROME_WIN, CONSOLE_UA, SAFARI_MAC,
    EDGE_WIN, FIREFOX_LINUX, HOME_DENVER, HOME_SEATTLE, JAVA_SDK_UA, KUBECTL_LINUX, KUBECTL_MAC,
    MEMBER, OFFICE, PROD, SHARED, SSO_PATH, TERRAFORM_UA, cli_mac_ua, cli_ua,
)
from vendors import (
    RBAC, IamUser, K8sCaller, OktaUser, RoleSession, ct_assume_role, ct_event, ct_expiration, okta_event,
    okta_id, okta_session, okta_target, uuid,
)

IAM = "iam.amazonaws.com"
STS = "sts.amazonaws.com"

POLICY_ALL = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
)


def web_identity_assume(fx, t, child, subject, ip, ua):
    """`AssumeRoleWithWebIdentity` from GitHub Actions OIDC; the record opens `child`."""
    provider = f"arn:aws:iam::{child.account}:oidc-provider/token.actions.githubusercontent.com"
    rec = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "WebIdentityUser",
            "principalId": f"{provider}:sts.amazonaws.com:{subject}",
            "userName": subject,
            "identityProvider": provider,
        },
        "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": STS,
        "eventName": "AssumeRoleWithWebIdentity",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": {
            "roleArn": child.role_arn,
            "roleSessionName": child.session_name,
            "durationSeconds": child.duration,
        },
        "responseElements": {
            "credentials": {
                "accessKeyId": child.key,
                "sessionToken": "IQoJb3JpZ2luX2VjEOj//////////wEaCXVzLWVhc3QtMSJHMEUCIQ" + child.key[4:],
                "expiration": ct_expiration(t + dt.timedelta(seconds=child.duration)),
            },
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": {
                "assumedRoleId": f"{child.role_id}:{child.session_name}",
                "arn": child.arn,
            },
            "provider": provider,
            "audience": "sts.amazonaws.com",
        },
        "additionalEventData": {"identityProviderConnectionVerificationMethod": "IdPThumbprint"},
        "requestID": uuid("req", child.key),
        "eventID": uuid("evt", child.key),
        "readOnly": True,
        "resources": [
            {"accountId": child.account, "type": "AWS::IAM::Role", "ARN": child.role_arn}
        ],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": child.account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "sts.amazonaws.com",
        },
    }
    return fx.add(rec, child.session_key)


# ---------------------------------------------------------------------------------------------
# 1. scope-escalation-aws
# ---------------------------------------------------------------------------------------------


def aws_attack(fx):
    fx.summary = (
        "Five sessions escalate their own privileges while an ordinary workload keeps running: an "
        "IAM user key attaches AdministratorAccess to its own user, another creates a second "
        "access key for its own user, a CI role session attaches AdministratorAccess to its own "
        "role, stolen Lambda credentials put an inline `*:*` policy on their own role, and two "
        "role chains climb into admin roles (`OrganizationAccountAccessRole` in a member "
        "account, `break-glass-admin`) whose child sessions then administer IAM."
    )
    evil_ip = "203.0.113.52"

    # S1: leaked IAM user key attaches AdministratorAccess to its own user.
    rep = IamUser(PROD, "svc-reporting")
    fx.who(rep.session_key, "IAM user `svc-reporting`, long-term key used from 203.0.113.52")
    fx.add(ct_event(rep, fx.at("09:58:12"), STS, "GetCallerIdentity", ip=evil_ip, ua=BOTO3_UA,
                    host="sts.amazonaws.com"), rep.session_key)
    fx.add(ct_event(rep, fx.at("09:58:40"), IAM, "GetUser", ip=evil_ip, ua=BOTO3_UA,
                    req={"userName": "svc-reporting"}), rep.session_key)
    fx.add(ct_event(rep, fx.at("09:59:05"), IAM, "ListAttachedUserPolicies", ip=evil_ip, ua=BOTO3_UA,
                    req={"userName": "svc-reporting"}), rep.session_key)
    ev = fx.add(ct_event(rep, fx.at("10:00:31"), IAM, "AttachUserPolicy", ip=evil_ip, ua=BOTO3_UA,
                         req={"userName": "svc-reporting", "policyArn": ADMIN_POLICY}),
                rep.session_key)
    fx.fire(ev, "self-grant: AttachUserPolicy on its own user", "revoke session",
            "`iam:AttachUserPolicy` with `userName` = the caller's own user (`resource.name` = "
            "`principal.name` = svc-reporting), policy AdministratorAccess")

    # S2: another leaked key mints itself a second access key.
    bot = IamUser(PROD, "deploy-bot")
    fx.who(bot.session_key, "IAM user `deploy-bot`, long-term key used from 203.0.113.52")
    fx.add(ct_event(bot, fx.at("10:02:48"), STS, "GetCallerIdentity", ip=evil_ip, ua=BOTO3_UA,
                    host="sts.amazonaws.com"), bot.session_key)
    fx.add(ct_event(bot, fx.at("10:03:10"), IAM, "ListAccessKeys", ip=evil_ip, ua=BOTO3_UA,
                    req={"userName": "deploy-bot"}), bot.session_key)
    new_key = "AKIA" + bot.key[4:12] + "Q7XN2W4E"
    ev = fx.add(ct_event(bot, fx.at("10:03:44"), IAM, "CreateAccessKey", ip=evil_ip, ua=BOTO3_UA,
                         req={"userName": "deploy-bot"},
                         resp={"accessKey": {"userName": "deploy-bot", "accessKeyId": new_key,
                                             "status": "Active",
                                             "createDate": ct_expiration(fx.at("10:03:44"))}}),
                bot.session_key)
    fx.fire(ev, "self-grant: CreateAccessKey for its own user", "revoke session",
            "`iam:CreateAccessKey` with `userName` = the caller's own user (deploy-bot): a "
            f"second, independent credential (`lineage.child` = aws:{PROD}:iam-key:{new_key})")

    # S3: a CI role session (GitHub Actions OIDC) attaches AdministratorAccess to its own role.
    ci = RoleSession(PROD, "ci-runner", "GitHubActions", fx.at("10:05:20"), duration=3600, seed="run-8812")
    fx.who(ci.session_key, "role `ci-runner` via GitHub Actions OIDC (a malicious workflow run), 192.0.2.140")
    ci_ip = "192.0.2.140"
    ci_ua = (
        "aws-sdk-nodejs/2.1691.0 linux/v20.17.0 configure-aws-credentials-for-github-actions "
        "promise"
    )
    web_identity_assume(fx, fx.at("10:05:20"), ci,
                        "repo:northwind-labs/infra-live:pull_request", ci_ip, ci_ua)
    fx.add(ct_event(ci, fx.at("10:06:02"), IAM, "GetRole", ip=ci_ip, ua=cli_ua("iam.get-role"),
                    req={"roleName": "ci-runner"}), ci.session_key)
    ev = fx.add(ct_event(ci, fx.at("10:06:30"), IAM, "AttachRolePolicy", ip=ci_ip,
                         ua=cli_ua("iam.attach-role-policy"),
                         req={"roleName": "ci-runner", "policyArn": ADMIN_POLICY}), ci.session_key)
    fx.fire(ev, "self-grant: AttachRolePolicy on its own role", "revoke session",
            "`iam:AttachRolePolicy` with `roleName` = the session's own role (`principal.name` = "
            "ci-runner, the session issuer), policy AdministratorAccess")

    # S4: Lambda credentials lifted from the function's environment put `*:*` on their own role.
    lam = RoleSession(PROD, "lambda-data-sync", "data-sync", fx.at("09:41:07"), seed="lambda")
    fx.who(lam.session_key, "role `lambda-data-sync` (a Lambda's credentials, replayed from 203.0.113.90)")
    lam_ip = "203.0.113.90"
    fx.add(ct_event(lam, fx.at("10:09:15"), STS, "GetCallerIdentity", ip=lam_ip,
                    ua=cli_ua("sts.get-caller-identity"), host="sts.amazonaws.com"), lam.session_key)
    fx.add(ct_event(lam, fx.at("10:09:50"), IAM, "ListRolePolicies", ip=lam_ip,
                    ua=cli_ua("iam.list-role-policies"), req={"roleName": "lambda-data-sync"}),
           lam.session_key)
    ev = fx.add(ct_event(lam, fx.at("10:10:22"), IAM, "PutRolePolicy", ip=lam_ip,
                         ua=cli_ua("iam.put-role-policy"),
                         req={"roleName": "lambda-data-sync", "policyName": "sync-extra",
                              "policyDocument": POLICY_ALL}), lam.session_key)
    fx.fire(ev, "self-grant: PutRolePolicy on its own role", "revoke session",
            "`iam:PutRolePolicy` with `roleName` = the session's own role (lambda-data-sync), "
            "inline policy `Action: *, Resource: *` (scope `sync-extra`)")

    # S5: role chain into OrganizationAccountAccessRole of a member account, then IAM admin.
    eng = RoleSession(PROD, "AWSReservedSSO_DataEngineer_9b2c41d7e03f5a68", "p.ramos@northwind.example",
                      fx.at("09:50:03"), path=SSO_PATH, duration=28800)
    org = RoleSession(MEMBER, "OrganizationAccountAccessRole", "p.ramos", fx.at("10:12:40"))
    fx.who(eng.session_key, "SSO role `AWSReservedSSO_DataEngineer_…` of p.ramos (chain origin)")
    fx.who(org.session_key, "child: `OrganizationAccountAccessRole` in member account 615482093771")
    eng_ip = "198.51.100.41"
    fx.add(ct_event(eng, fx.at("09:51:10"), "athena.amazonaws.com", "StartQueryExecution", ip=eng_ip,
                    ua=cli_mac_ua("athena.start-query-execution"),
                    req={"queryString": "SELECT count(*) FROM orders_2024 WHERE month = 9",
                         "workGroup": "analysts"}), eng.session_key)
    fx.add(ct_event(eng, fx.at("10:12:02"), "organizations.amazonaws.com", "ListAccounts", ip=eng_ip,
                    ua=cli_mac_ua("organizations.list-accounts")), eng.session_key)
    hop = fx.add(ct_assume_role(eng, fx.at("10:12:40"), org, ip=eng_ip,
                                ua=cli_mac_ua("sts.assume-role")), eng.session_key)
    fx.add(ct_event(org, fx.at("10:13:05"), STS, "GetCallerIdentity", ip=eng_ip,
                    ua=cli_mac_ua("sts.get-caller-identity"), host="sts.amazonaws.com"), org.session_key)
    ev = fx.add(ct_event(org, fx.at("10:13:31"), IAM, "CreateUser", ip=eng_ip,
                         ua=cli_mac_ua("iam.create-user"), req={"userName": "support-sync"},
                         resp={"user": {"path": "/", "userName": "support-sync",
                                        "userId": "AIDAY4KX2M7Q3RZC5VT6B",
                                        "arn": f"arn:aws:iam::{MEMBER}:user/support-sync",
                                        "createDate": ct_expiration(fx.at("10:13:31"))}}), org.session_key)
    fx.fire(ev, "role chain into an admin role, then admin action", "revoke session",
            "sequence: parent AssumeRole into `OrganizationAccountAccessRole` (line "
            "{assume}) → the issued child key's first admin-class call (`iam:CreateUser`)",
            refs={"assume": hop})
    fx.add(ct_event(org, fx.at("10:13:58"), IAM, "AttachUserPolicy", ip=eng_ip,
                    ua=cli_mac_ua("iam.attach-user-policy"),
                    req={"userName": "support-sync", "policyArn": ADMIN_POLICY}), org.session_key)
    fx.quiet(eng.session_key, "chain origin: its own calls are a read, a listing and the "
             "AssumeRole; the decision lands on the child that acted (the parent is evidence)")

    # S6: stolen instance-role credentials chain into break-glass-admin.
    etl = RoleSession(PROD, "etl-worker", "i-0a7c3e91f25b84d16", fx.at("09:12:44"), seed="ec2")
    bg = RoleSession(PROD, "break-glass-admin", "etl", fx.at("10:18:09"), seed="bg")
    fx.who(etl.session_key, "EC2 instance role `etl-worker`, credentials replayed from 203.0.113.52 (chain origin)")
    fx.who(bg.session_key, "child: `break-glass-admin`")
    fx.add(ct_event(etl, fx.at("10:17:31"), IAM, "ListRoles", ip=evil_ip, ua=BOTO3_UA), etl.session_key)
    hop = fx.add(ct_assume_role(etl, fx.at("10:18:09"), bg, ip=evil_ip, ua=BOTO3_UA), etl.session_key)
    fx.add(ct_event(bg, fx.at("10:18:30"), IAM, "ListUsers", ip=evil_ip, ua=BOTO3_UA), bg.session_key)
    ev = fx.add(ct_event(bg, fx.at("10:19:02"), IAM, "CreateAccessKey", ip=evil_ip, ua=BOTO3_UA,
                         req={"userName": "ops-automation"},
                         resp={"accessKey": {"userName": "ops-automation",
                                             "accessKeyId": "AKIAXBJ3T5WQ7N2M4K6P",
                                             "status": "Active",
                                             "createDate": ct_expiration(fx.at("10:19:02"))}}),
                bg.session_key)
    fx.fire(ev, "role chain into an admin role, then admin action", "revoke session",
            "sequence: parent AssumeRole into `break-glass-admin` (line {assume}) → the child's "
            "first admin-class call (`iam:CreateAccessKey` for another user)",
            refs={"assume": hop})
    fx.quiet(etl.session_key, "chain origin (ListRoles, AssumeRole); the decision lands on the child")

    # Background: an ordinary workload.
    app = RoleSession(PROD, "orders-api-task", "6c2f0d8e4b1a4e7f9a3c5d7e9f1b2c4d", fx.at("09:30:00"),
                      seed="ecs")
    fx.who(app.session_key, "ECS task role `orders-api-task` (background)")
    for i, clock in enumerate(["09:58:00", "10:01:00", "10:04:00", "10:07:00", "10:10:00", "10:13:00",
                               "10:16:00", "10:19:00"]):
        fx.add(ct_event(app, fx.at(clock), "dynamodb.amazonaws.com", "Query", ip="10.20.4.17",
                        ua=JAVA_SDK_UA, req={"tableName": "orders", "indexName": "by-customer"},
                        read_only=True, seed=i), app.session_key)
    fx.quiet(app.session_key, "reads only")


def aws_benign(fx):
    fx.summary = (
        "Administrators change other principals' permissions early in fresh sessions, a CI user "
        "creates a key for a service user, a developer chains into a deploy role that is not an "
        "admin role, a security scanner chains into `OrganizationAccountAccessRole` but only "
        "reads, and a user reads its own IAM details. Nothing here grants the acting session "
        "more power."
    )
    alice = RoleSession(PROD, "AWSReservedSSO_AdministratorAccess_3f1c2a9b7e6d5c4b",
                        "alice.nguyen@northwind.example", fx.at("14:00:00"), path=SSO_PATH,
                        duration=28800)
    fx.who(alice.session_key, "SSO AdministratorAccess of alice.nguyen, fresh session")
    ip = "198.51.100.41"
    fx.add(ct_event(alice, fx.at("14:01:12"), IAM, "ListRoles", ip=ip, ua=CONSOLE_UA),
           alice.session_key)
    fx.add(ct_event(alice, fx.at("14:03:10"), IAM, "GetRole", ip=ip, ua=CONSOLE_UA,
                    req={"roleName": "orders-api-task"}), alice.session_key)
    fx.add(ct_event(alice, fx.at("14:04:02"), IAM, "AttachRolePolicy", ip=ip, ua=CONSOLE_UA,
                    req={"roleName": "orders-api-task",
                         "policyArn": f"arn:aws:iam::{PROD}:policy/orders-api-sqs-publish"}),
           alice.session_key)
    fx.add(ct_event(alice, fx.at("14:06:45"), IAM, "PutRolePolicy", ip=ip, ua=CONSOLE_UA,
                    req={"roleName": "reporting-lambda", "policyName": "athena-results-write",
                         "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                           '"Action":["s3:PutObject"],"Resource":'
                                           '"arn:aws:s3:::northwind-athena-results/*"}]}'}),
           alice.session_key)
    fx.quiet(alice.session_key, "grants go to other roles (orders-api-task, reporting-lambda), 4 and "
             "7 min into a fresh session: not a self-grant, not stale")

    tf = IamUser(SHARED, "terraform-ci")
    fx.who(tf.session_key, "IAM user `terraform-ci` (long-term key of the Terraform pipeline)")
    tf_ip = "192.0.2.140"
    fx.add(ct_event(tf, fx.at("14:02:30"), STS, "GetCallerIdentity", ip=tf_ip, ua=TERRAFORM_UA,
                    host="sts.amazonaws.com"), tf.session_key)
    fx.add(ct_event(tf, fx.at("14:02:41"), IAM, "AttachRolePolicy", ip=tf_ip, ua=TERRAFORM_UA,
                    req={"roleName": "analytics-glue",
                         "policyArn": "arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole"}),
           tf.session_key)
    fx.add(ct_event(tf, fx.at("14:02:55"), IAM, "CreateAccessKey", ip=tf_ip, ua=TERRAFORM_UA,
                    req={"userName": "svc-metrics"},
                    resp={"accessKey": {"userName": "svc-metrics", "accessKeyId": "AKIAWE5N7Q2R4T6Y8U3I",
                                        "status": "Active", "createDate": ct_expiration(fx.at("14:02:55"))}}),
           tf.session_key)
    fx.quiet(tf.session_key, "attaches a policy to another role and creates a key for another user "
             "(svc-metrics)")

    dev = RoleSession(PROD, "AWSReservedSSO_Developer_5e1f0c9a2b7d4e36", "m.okafor@northwind.example",
                      fx.at("13:40:00"), path=SSO_PATH, duration=28800)
    dep = RoleSession(PROD, "deployer", "m.okafor", fx.at("14:08:20"))
    fx.who(dev.session_key, "SSO Developer of m.okafor")
    fx.who(dep.session_key, "child: role `deployer` (not an admin role)")
    dip = "198.51.100.57"
    fx.add(ct_event(dev, fx.at("14:05:00"), "lambda.amazonaws.com", "ListFunctions20150331", ip=dip,
                    ua=cli_mac_ua("lambda.list-functions")), dev.session_key)
    fx.add(ct_assume_role(dev, fx.at("14:08:20"), dep, ip=dip, ua=cli_mac_ua("sts.assume-role")),
           dev.session_key)
    fx.add(ct_event(dep, fx.at("14:09:02"), "lambda.amazonaws.com", "UpdateFunctionCode20150331v2",
                    ip=dip, ua=cli_mac_ua("lambda.update-function-code"),
                    req={"functionName": "orders-webhook", "publish": True,
                         "s3Bucket": "northwind-artifacts", "s3Key": "orders-webhook/1.42.0.zip"}),
           dep.session_key)
    fx.add(ct_event(dep, fx.at("14:09:40"), "lambda.amazonaws.com", "UpdateAlias20150331", ip=dip,
                    ua=cli_mac_ua("lambda.update-alias"),
                    req={"functionName": "orders-webhook", "name": "live", "functionVersion": "57"}),
           dep.session_key)
    fx.quiet(dev.session_key, "chains into `deployer`, which is not an admin role")
    fx.quiet(dep.session_key, "deploys code (write), no admin-class action")

    scan = RoleSession(SHARED, "security-scanner", "prowler-20241002", fx.at("14:10:00"), seed="scan")
    sub = RoleSession(MEMBER, "OrganizationAccountAccessRole", "prowler-20241002", fx.at("14:10:05"),
                      seed="scan")
    fx.who(scan.session_key, "role `security-scanner` (nightly posture scan)")
    fx.who(sub.session_key, "child: `OrganizationAccountAccessRole` in the member account, reads only")
    sip = "10.30.8.41"
    scan_ua = BOTO3_UA.replace("Boto3/1.35.36", "Boto3/1.35.36 prowler/4.4.1")
    fx.add(ct_assume_role(scan, fx.at("14:10:05"), sub, ip=sip, ua=scan_ua), scan.session_key)
    for i, (clock, src, name, req) in enumerate([
        ("14:10:11", IAM, "GetAccountPasswordPolicy", None),
        ("14:10:14", IAM, "ListUsers", None),
        ("14:10:19", IAM, "ListRoles", None),
        ("14:10:26", IAM, "GetAccountAuthorizationDetails", None),
        ("14:10:41", "cloudtrail.amazonaws.com", "DescribeTrails", None),
        ("14:10:52", "s3.amazonaws.com", "ListBuckets", {"Host": "s3.us-east-1.amazonaws.com"}),
    ]):
        fx.add(ct_event(sub, fx.at(clock), src, name, ip=sip, ua=scan_ua, req=req, read_only=True),
               sub.session_key)
    fx.quiet(scan.session_key, "issues the chain; no admin action anywhere in it")
    fx.quiet(sub.session_key, "in an admin role, but every call is a read (Get/List/Describe)")

    maria = IamUser(PROD, "maria.silva")
    fx.who(maria.session_key, "IAM user `maria.silva`, reading her own IAM details")
    mip = "192.0.2.61"
    fx.add(ct_event(maria, fx.at("14:12:03"), IAM, "GetUser", ip=mip, ua=cli_mac_ua("iam.get-user"),
                    req={"userName": "maria.silva"}), maria.session_key)
    fx.add(ct_event(maria, fx.at("14:12:20"), IAM, "ListAccessKeys", ip=mip,
                    ua=cli_mac_ua("iam.list-access-keys"), req={"userName": "maria.silva"}),
           maria.session_key)
    fx.add(ct_event(maria, fx.at("14:12:41"), IAM, "ListAttachedUserPolicies", ip=mip,
                    ua=cli_mac_ua("iam.list-attached-user-policies"), req={"userName": "maria.silva"}),
           maria.session_key)
    fx.quiet(maria.session_key, "self-targeted, but reads only")


# ---------------------------------------------------------------------------------------------
# 2. scope-escalation-okta
# ---------------------------------------------------------------------------------------------

OKTA_ADMIN_APP = okta_target("AppInstance", "0oa1e5s8dkQ4nYr7A697", "Okta Admin Console", "Okta Admin Console")
APP_SLACK = okta_target("AppInstance", "0oa2k4p9tqL7mXc3B697", "Slack", "Slack")
APP_SFDC = okta_target("AppInstance", "0oa3h7w2zrN5vBd8C697", "Salesforce.com", "Salesforce.com")
APP_AWS = okta_target("AppInstance", "0oa4j2x6ysP9wFe1D697", "Amazon Web Services", "AWS IAM Identity Center")
APP_GITHUB = okta_target("AppInstance", "0oa5m8c3vuR2tGh4E697", "GitHub Enterprise Cloud", "GitHub Enterprise Cloud")
APP_WORKDAY = okta_target("AppInstance", "0oa6n1b7wsT4yHj6F697", "Workday", "Workday")


def sign_in(fx, clock, user, sid, place, browser, factor="OKTA_VERIFY_PUSH", seed=""):
    """`user.session.start` then a successful MFA verification (3–9 s apart)."""
    t0 = fx.at(clock)
    a = fx.add(okta_event(t0, "user.session.start", user, sid, place, browser,
                          provider="OKTA_AUTHENTICATION_PROVIDER", credential_type="PASSWORD",
                          targets=[okta_target("AuthenticatorEnrollment", okta_id("pfd", user.login),
                                               "unknown", "Password")], seed=seed),
               "okta:" + sid)
    b = fx.add(okta_event(t0 + dt.timedelta(seconds=7, milliseconds=412),
                          "user.authentication.auth_via_mfa", user, sid, place, browser,
                          provider="FACTOR_PROVIDER", credential_type="OTP" if "OTP" in factor else "PUSH",
                          debug={"factor": factor, "factorIntent": "AUTHENTICATION"},
                          targets=[okta_target("AuthenticatorEnrollment", okta_id("opf", user.login),
                                               "unknown", "Okta Verify")], seed=seed),
               "okta:" + sid)
    return a, b


def sso(fx, t, user, sid, place, browser, app, seed=""):
    return fx.add(okta_event(t, "user.authentication.sso", user, sid, place, browser,
                             targets=[app], debug={"initiationType": "IDP_INITIATED",
                                                   "requestUri": f"/app/{app['alternateId'].lower().replace(' ', '')}/{app['id']}/sso/saml"},
                             seed=seed), "okta:" + sid)


def admin_app(fx, t, user, sid, place, browser):
    return fx.add(okta_event(t, "user.session.access_admin_app", user, sid, place, browser,
                             targets=[OKTA_ADMIN_APP]), "okta:" + sid)


def grant_privilege(fx, t, actor, target, sid, place, browser, privilege):
    return fx.add(okta_event(t, "user.account.privilege.grant", actor, sid, place, browser,
                             targets=[target.target()],
                             debug={"privilegeGranted": privilege,
                                    "requestUri": f"/api/internal/administrators/{target.id}"}),
                  "okta:" + sid)


def add_to_group(fx, t, actor, target, sid, place, browser, group_id, group_name):
    return fx.add(okta_event(t, "group.user_membership.add", actor, sid, place, browser,
                             targets=[target.target(),
                                      okta_target("UserGroup", group_id, "unknown", group_name)],
                             debug={"requestUri": f"/api/v1/groups/{group_id}/users/{target.id}"}),
                  "okta:" + sid)


def okta_attack(fx):
    fx.summary = (
        "Two Okta sessions grant admin rights to their own user minutes after sign-in: one "
        "through an admin role assignment (`user.account.privilege.grant` whose target is the "
        "actor, Super administrator), one by adding itself to the `Okta-Super-Admins` group "
        "(`group.user_membership.add`, first target = the actor). A regular user works alongside."
    )
    novak = OktaUser("k.novak@northwind.example", "Kamil Novak")
    sid1 = okta_session("k.novak", fx.day)
    fx.who("okta:" + sid1, "k.novak (help-desk admin) from Denver")
    sign_in(fx, "11:02:10.114", novak, sid1, HOME_DENVER, CHROME_MAC)
    admin_app(fx, fx.at("11:02:41.902"), novak, sid1, HOME_DENVER, CHROME_MAC)
    fx.add(okta_event(fx.at("11:03:12.330"), "user.account.reset_password", novak, sid1, HOME_DENVER,
                      CHROME_MAC, targets=[okta_target("User", okta_id("00u", "ops-temp"),
                                                       "ops-temp@northwind.example", "Ops Temp")]),
           "okta:" + sid1)
    ev = grant_privilege(fx, fx.at("11:04:03.518"), novak, novak, sid1, HOME_DENVER, CHROME_MAC,
                         "Super administrator")
    fx.fire(ev, "self-grant: admin role assigned to itself", "revoke session",
            "`user.account.privilege.grant` with target id = actor id (00u… of k.novak), "
            "privilegeGranted Super administrator, 1 min 53 s after sign-in")

    okafor = OktaUser("d.okafor@northwind.example", "Daniel Okafor")
    sid2 = okta_session("d.okafor", fx.day)
    fx.who("okta:" + sid2, "d.okafor (app admin) from 203.0.113.144, Bucharest")
    sign_in(fx, "11:05:30.207", okafor, sid2, ATTACKER_RO, FIREFOX_LINUX)
    admin_app(fx, fx.at("11:06:02.611"), okafor, sid2, ATTACKER_RO, FIREFOX_LINUX)
    ev = add_to_group(fx, fx.at("11:07:15.049"), okafor, okafor, sid2, ATTACKER_RO, FIREFOX_LINUX,
                      "00g1x8r3qwZ5kLm2P697", "Okta-Super-Admins")
    fx.fire(ev, "self-grant: adds itself to an admin group", "revoke session",
            "`group.user_membership.add`: first target (the user added) = the actor, group "
            "`Okta-Super-Admins` (scope), 1 min 45 s after sign-in")

    lee = OktaUser("s.lee@northwind.example", "Sun-min Lee")
    sid3 = okta_session("s.lee", fx.day)
    fx.who("okta:" + sid3, "s.lee, regular employee (background)")
    sign_in(fx, "11:01:02.775", lee, sid3, OFFICE, EDGE_WIN)
    sso(fx, fx.at("11:01:20.318"), lee, sid3, OFFICE, EDGE_WIN, APP_SLACK)
    sso(fx, fx.at("11:03:47.006"), lee, sid3, OFFICE, EDGE_WIN, APP_SFDC)
    sso(fx, fx.at("11:08:31.442"), lee, sid3, OFFICE, EDGE_WIN, APP_WORKDAY)
    fx.quiet("okta:" + sid3, "sign-in and app SSO only")


def okta_benign(fx):
    fx.summary = (
        "A super admin, in a normal admin session, assigns the Help Desk administrator role to "
        "another user and adds that user to an admin group; a second admin adds a new hire to a "
        "non-admin group 4 minutes after signing in; a regular user works alongside. What must "
        "not fire, and why: none of these grants targets the acting user, and the admin grants "
        "happen 34–36 minutes into a session that signed in from the office (outside a "
        "\"grant within N minutes of a new-context sign-in\" branch for N ≤ 30 min)."
    )
    chen = OktaUser("r.chen@northwind.example", "Rachel Chen")
    silva = OktaUser("m.silva@northwind.example", "Marco Silva")
    sid1 = okta_session("r.chen", fx.day)
    fx.who("okta:" + sid1, "r.chen, super admin, office")
    sign_in(fx, "13:00:05.221", chen, sid1, OFFICE, CHROME_MAC)
    admin_app(fx, fx.at("13:01:10.870"), chen, sid1, OFFICE, CHROME_MAC)
    fx.add(okta_event(fx.at("13:12:44.105"), "user.lifecycle.suspend", chen, sid1, OFFICE, CHROME_MAC,
                      targets=[okta_target("User", okta_id("00u", "leaver"), "t.leaver@northwind.example",
                                           "Tom Leaver")]), "okta:" + sid1)
    grant_privilege(fx, fx.at("13:34:20.640"), chen, silva, sid1, OFFICE, CHROME_MAC,
                    "Help Desk administrator")
    add_to_group(fx, fx.at("13:36:02.913"), chen, silva, sid1, OFFICE, CHROME_MAC,
                 "00g2y9s4rxA6lMn3Q697", "Okta-Helpdesk-Admins")
    fx.quiet("okta:" + sid1, "grants go to another user (m.silva), 34 and 36 min after sign-in")

    wu = OktaUser("l.wu@northwind.example", "Li Wu")
    newhire = OktaUser("a.berg@northwind.example", "Anna Berg")
    sid2 = okta_session("l.wu", fx.day)
    fx.who("okta:" + sid2, "l.wu, group admin, Seattle")
    sign_in(fx, "13:05:40.412", wu, sid2, HOME_SEATTLE, SAFARI_MAC)
    admin_app(fx, fx.at("13:06:15.009"), wu, sid2, HOME_SEATTLE, SAFARI_MAC)
    add_to_group(fx, fx.at("13:09:51.377"), wu, newhire, sid2, HOME_SEATTLE, SAFARI_MAC,
                 "00g3z1t5syB7mNp4R697", "Engineering")
    fx.quiet("okta:" + sid2, "adds another user to a non-admin group (Engineering)")

    lee = OktaUser("j.patel@northwind.example", "Jaya Patel")
    sid3 = okta_session("j.patel", fx.day)
    fx.who("okta:" + sid3, "j.patel, regular employee")
    sign_in(fx, "13:02:12.550", lee, sid3, OFFICE, EDGE_WIN)
    sso(fx, fx.at("13:02:40.118"), lee, sid3, OFFICE, EDGE_WIN, APP_SLACK)
    sso(fx, fx.at("13:20:03.764"), lee, sid3, OFFICE, EDGE_WIN, APP_GITHUB)
    fx.quiet("okta:" + sid3, "sign-in and app SSO only")


# ---------------------------------------------------------------------------------------------
# 3. scope-escalation-k8s
# ---------------------------------------------------------------------------------------------

NODE_A = "ip-10-42-3-17.ec2.internal"
NODE_B = "ip-10-42-7-204.ec2.internal"


def sa(ns, name, jti, pod, node):
    return K8sCaller(
        f"system:serviceaccount:{ns}:{name}",
        uuid("sa", ns, name),
        ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        jti=jti,
        pod=pod,
        node=node,
    )


def k8s_attack(fx):
    from vendors import k8s_event

    fx.summary = (
        "A compromised web pod's service-account token checks its permissions, fails to read "
        "secrets cluster-wide, then binds itself to `cluster-admin` with a ClusterRoleBinding; a "
        "developer's client certificate impersonates `system:admin` in group `system:masters` "
        "to read kube-system secrets. Prometheus and a kubelet work alongside."
    )
    front = sa("web", "frontend", "4f9e2c71-8a3d-4b6e-9c15-2d7a0e8b3f64", "frontend-6c9d7b8f5-q2m4x", NODE_A)
    fx.who(front.session_key, "service-account token of `web/frontend` (pod frontend-6c9d7b8f5-q2m4x)")
    ip = "10.42.3.88"
    fx.add(k8s_event(fx.at("08:14:02.117"), front, "create", "selfsubjectrulesreviews", ip=ip,
                     ua=KUBECTL_LINUX, api_group="authorization.k8s.io", code=201,
                     uri="/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"), front.session_key)
    fx.add(k8s_event(fx.at("08:14:20.530"), front, "list", "secrets", ip=ip, ua=KUBECTL_LINUX,
                     namespace="web",
                     reason='RBAC: allowed by RoleBinding "frontend-config/web" of Role "config-reader" to ServiceAccount "frontend/web"'),
           front.session_key)
    fx.add(k8s_event(fx.at("08:14:41.008"), front, "list", "secrets", ip=ip, ua=KUBECTL_LINUX, code=403,
                     uri="/api/v1/secrets?limit=500"), front.session_key)
    crb = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "frontend-cluster-admin", "creationTimestamp": None},
        "subjects": [{"kind": "ServiceAccount", "name": "frontend", "namespace": "web"}],
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
    }
    ev = fx.add(k8s_event(fx.at("08:15:10.442"), front, "create", "clusterrolebindings", ip=ip,
                          ua=KUBECTL_LINUX, api_group=RBAC, name="frontend-cluster-admin", code=201,
                          request_object=crb,
                          reason='RBAC: allowed by ClusterRoleBinding "frontend-legacy-ops" of ClusterRole "ops-manager" to ServiceAccount "frontend/web"'),
                front.session_key)
    fx.fire(ev, "token binds itself to cluster-admin", "revoke credential",
            "`create clusterrolebindings` (201) with `requestObject.roleRef.name` = cluster-admin and "
            "a subject that is the caller's own service account (web/frontend)")

    jane = K8sCaller("jane.doe", "", ["platform-devs", "system:authenticated"],
                     x509="9c1e4b7a2f5d8e0c3b6a9f2e5d8c1b4a7e0d3c6b9f2a5e8d1c4b7a0e3d6c9f2b")
    fx.who(jane.session_key, "client certificate of jane.doe (group platform-devs)")
    jip = "192.0.2.77"
    fx.add(k8s_event(fx.at("08:20:05.210"), jane, "list", "pods", ip=jip, ua=KUBECTL_MAC,
                     namespace="payments",
                     reason='RBAC: allowed by RoleBinding "platform-devs-edit/payments" of ClusterRole "edit" to Group "platform-devs"'),
           jane.session_key)
    ev = fx.add(k8s_event(fx.at("08:21:40.733"), jane, "list", "secrets", ip=jip, ua=KUBECTL_MAC,
                          namespace="kube-system",
                          impersonate={"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
                          reason='RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"'),
                jane.session_key)
    fx.fire(ev, "impersonates system:admin / system:masters", "revoke credential",
            "`impersonatedUser.username` = system:admin with group system:masters (scopes "
            "`impersonate:system:admin`, `group:system:masters`)")

    prom = sa("monitoring", "prometheus", "b8d3f1a6-2c9e-4d7b-8a05-6e1f3c9d2b47",
              "prometheus-k8s-0", NODE_B)
    fx.who(prom.session_key, "service-account token of `monitoring/prometheus` (background)")
    for i, clock in enumerate(["08:14:00.051", "08:15:00.049", "08:16:00.052", "08:17:00.050",
                               "08:18:00.048", "08:19:00.051", "08:20:00.053", "08:21:00.047",
                               "08:22:00.050"]):
        fx.add(k8s_event(fx.at(clock), prom, "list", "endpoints", ip="10.42.7.12",
                         ua="prometheus/2.54.1", uri="/api/v1/endpoints?limit=500&resourceVersion=0",
                         reason='RBAC: allowed by ClusterRoleBinding "prometheus-k8s" of ClusterRole "prometheus-k8s" to ServiceAccount "prometheus/monitoring"',
                         seed=i), prom.session_key)
    fx.quiet(prom.session_key, "reads only")

    kubelet = K8sCaller(f"system:node:{NODE_A}", "", ["system:nodes", "system:authenticated"],
                        x509="3a7d0c4f1e8b5a2d9c6f3e0b7a4d1c8f5e2b9a6d3c0f7e4b1a8d5c2f9e6b3a07")
    fx.who(kubelet.session_key, f"kubelet client certificate of {NODE_A} (background)")
    for i, clock in enumerate(["08:14:30.300", "08:17:30.301", "08:20:30.299"]):
        fx.add(k8s_event(fx.at(clock), kubelet, "get", "configmaps", ip="10.42.3.17",
                         ua="kubelet/v1.30.4 (linux/amd64) kubernetes/a51b3b7", namespace="web",
                         name="frontend-config", reason="", seed=i), kubelet.session_key)
    fx.quiet(kubelet.session_key, "reads only")


def k8s_benign(fx):
    from vendors import k8s_event

    fx.summary = (
        "A CI service account creates a namespaced RoleBinding to the `view` ClusterRole and a "
        "ClusterRoleBinding to a metrics-reader role (not cluster-admin), then rolls a deployment; "
        "a platform engineer impersonates an ordinary service account to check its access; "
        "Prometheus works alongside."
    )
    ci = sa("ci", "deployer", "7a2c5e8f-1b4d-4e9a-8c36-0f5b2d7e9a13", "runner-ci-7f8d9c6b4-h5k2n", NODE_B)
    fx.who(ci.session_key, "service-account token of `ci/deployer` (in-cluster CI runner)")
    ip = "10.42.7.31"
    rb = {
        "kind": "RoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "team-a-viewers", "namespace": "team-a", "creationTimestamp": None},
        "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": "team-a-devs"}],
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
    }
    reason_ci = 'RBAC: allowed by ClusterRoleBinding "ci-deployer-rbac-manager" of ClusterRole "rbac-manager" to ServiceAccount "deployer/ci"'
    fx.add(k8s_event(fx.at("15:30:12.404"), ci, "create", "rolebindings", ip=ip, ua=KUBECTL_LINUX,
                     api_group=RBAC, namespace="team-a", name="team-a-viewers", code=201,
                     request_object=rb, reason=reason_ci), ci.session_key)
    crb = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "kube-state-metrics", "creationTimestamp": None},
        "subjects": [{"kind": "ServiceAccount", "name": "kube-state-metrics", "namespace": "monitoring"}],
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "kube-state-metrics"},
    }
    fx.add(k8s_event(fx.at("15:30:13.118"), ci, "create", "clusterrolebindings", ip=ip,
                     ua=KUBECTL_LINUX, api_group=RBAC, name="kube-state-metrics", code=201,
                     request_object=crb, reason=reason_ci), ci.session_key)
    fx.add(k8s_event(fx.at("15:30:20.861"), ci, "patch", "deployments", ip=ip, ua=KUBECTL_LINUX,
                     api_group="apps", namespace="team-a", name="orders-web", code=200,
                     uri="/apis/apps/v1/namespaces/team-a/deployments/orders-web?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
                     reason=reason_ci), ci.session_key)
    fx.quiet(ci.session_key, "RoleBinding to `view` and a ClusterRoleBinding to `kube-state-metrics`: "
             "no cluster-admin, and the subjects are not the caller")

    sam = K8sCaller("sam.lee", "", ["platform-admins", "system:authenticated"],
                    x509="e4b7a0d3c6f9e2b5a8d1c4f7e0b3a6d9c2f5e8b1a4d7c0f3e6b9a2d5c8f1e4b7")
    fx.who(sam.session_key, "client certificate of sam.lee (platform-admins)")
    sip = "198.51.100.57"
    fx.add(k8s_event(fx.at("15:32:02.330"), sam, "list", "pods", ip=sip, ua=KUBECTL_MAC,
                     namespace="team-a",
                     impersonate={"username": "system:serviceaccount:team-a:orders-web",
                                  "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a",
                                             "system:authenticated"]},
                     reason='RBAC: allowed by RoleBinding "orders-web/team-a" of Role "pod-reader" to ServiceAccount "orders-web/team-a"'),
           sam.session_key)
    fx.add(k8s_event(fx.at("15:32:09.114"), sam, "get", "secrets", ip=sip, ua=KUBECTL_MAC,
                     namespace="team-a", name="orders-db", code=403,
                     impersonate={"username": "system:serviceaccount:team-a:orders-web",
                                  "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a",
                                             "system:authenticated"]}),
           sam.session_key)
    fx.quiet(sam.session_key, "impersonates an ordinary service account, not system:admin or system:masters")

    prom = sa("monitoring", "prometheus", "c9e4a2b7-3d0f-4e8c-9b16-7f2a4d0e3c58", "prometheus-k8s-1", NODE_A)
    fx.who(prom.session_key, "service-account token of `monitoring/prometheus`")
    for i, clock in enumerate(["15:30:00.050", "15:31:00.052", "15:32:00.049", "15:33:00.051"]):
        fx.add(k8s_event(fx.at(clock), prom, "list", "endpoints", ip="10.42.3.12",
                         ua="prometheus/2.54.1", uri="/api/v1/endpoints?limit=500&resourceVersion=0",
                         reason='RBAC: allowed by ClusterRoleBinding "prometheus-k8s" of ClusterRole "prometheus-k8s" to ServiceAccount "prometheus/monitoring"',
                         seed=i), prom.session_key)
    fx.quiet(prom.session_key, "reads only")
