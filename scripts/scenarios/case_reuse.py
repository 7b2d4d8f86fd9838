"""Case 6: token reuse — one session's credential used from a second network."""

import datetime as dt

from case_scope import APP_AWS, APP_GITHUB, APP_SFDC, APP_SLACK, APP_WORKDAY, sa, sign_in, sso
from common import (
    ATTACKER_RO, BOTO3_UA, CHROME_MAC, CHROME_WIN, EDGE_WIN, HOME_DENVER, KUBECTL_LINUX,
    KUBECTL_MAC, OFFICE, PROD, SSO_PATH, cli_mac_ua, s3_cli_ua,
)
from vendors import OktaUser, RoleSession, ct_event, k8s_event, okta_session, s3_object_event

# ---------------------------------------------------------------------------------------------
# Okta
# ---------------------------------------------------------------------------------------------


def okta_attack(fx):
    fx.summary = (
        "A session cookie is stolen: g.santos signs in at the Austin office (AT&T, AS7018, United "
        "States) and works for 45 minutes; then the same `rootSessionId` appears from Bucharest "
        "(M247, AS9009, Romania, a proxy) with another browser and opens AWS and GitHub. A "
        "colleague works from home alongside."
    )
    san = OktaUser("g.santos@northwind.example", "Gabriel Santos")
    sid = okta_session("g.santos", fx.day)
    key = "okta:" + sid
    fx.who(key, "g.santos, office sign-in; the cookie is replayed from 203.0.113.144")
    sign_in(fx, "08:30:04.117", san, sid, OFFICE, CHROME_MAC)
    sso(fx, fx.at("08:31:12.602"), san, sid, OFFICE, CHROME_MAC, APP_SLACK)
    sso(fx, fx.at("08:45:33.018"), san, sid, OFFICE.at("198.51.100.24"), CHROME_MAC, APP_SFDC)
    sso(fx, fx.at("09:02:10.440"), san, sid, OFFICE, CHROME_MAC, APP_WORKDAY)
    sso(fx, fx.at("09:15:51.932"), san, sid, OFFICE, CHROME_MAC, APP_SLACK)
    ev = sso(fx, fx.at("09:17:44.205"), san, sid, ATTACKER_RO, CHROME_WIN, APP_AWS)
    fx.fire(ev, "session used from a new network (token reuse)", "revoke session",
            "same `rootSessionId`, new country (Romania vs United States), new ASN (9009 vs 7018), "
            "new /24 and a different user agent, 84 s after the last office event")
    sso(fx, fx.at("09:16:20.118"), san, sid, OFFICE, CHROME_MAC, APP_SFDC)
    sso(fx, fx.at("09:18:10.771"), san, sid, ATTACKER_RO, CHROME_WIN, APP_GITHUB)
    sso(fx, fx.at("09:19:02.356"), san, sid, OFFICE, CHROME_MAC, APP_WORKDAY, seed="back")

    kim = OktaUser("h.kim@northwind.example", "Hana Kim")
    sid2 = okta_session("h.kim", fx.day)
    fx.who("okta:" + sid2, "h.kim, working from home in Denver (background)")
    sign_in(fx, "08:40:00.250", kim, sid2, HOME_DENVER, EDGE_WIN)
    for i, (clock, app) in enumerate([("08:40:30.009", APP_SLACK), ("08:58:02.774", APP_GITHUB),
                                      ("09:12:40.301", APP_SFDC), ("09:20:05.118", APP_SLACK)]):
        sso(fx, fx.at(clock), kim, sid2, HOME_DENVER, EDGE_WIN, app, seed=i)
    fx.quiet("okta:" + sid2, "one network throughout")


def okta_benign(fx):
    fx.summary = (
        "Address changes that are not reuse: the office NAT pool hands p.nguyen's session "
        "198.51.100.10 and later 198.51.100.77 (same /24, same ASN, same city, same browser); "
        "r.adams works steadily from home."
    )
    ng = OktaUser("p.nguyen@northwind.example", "Phuong Nguyen")
    sid = okta_session("p.nguyen", fx.day)
    fx.who("okta:" + sid, "p.nguyen, office NAT rotation inside 198.51.100.0/24")
    a = OFFICE.at("198.51.100.10")
    b = OFFICE.at("198.51.100.77")
    sign_in(fx, "10:00:03.331", ng, sid, a, CHROME_MAC)
    for i, (clock, place, app) in enumerate([("10:01:15.908", a, APP_SLACK), ("10:14:02.550", a, APP_SFDC),
                                             ("10:29:47.016", b, APP_AWS), ("10:41:33.872", b, APP_GITHUB),
                                             ("10:58:09.204", a, APP_SLACK)]):
        sso(fx, fx.at(clock), ng, sid, place, CHROME_MAC, app, seed=i)
    fx.quiet("okta:" + sid, "new address, but inside the same /24, ASN, country and city")

    ad = OktaUser("r.adams@northwind.example", "Rita Adams")
    sid2 = okta_session("r.adams", fx.day)
    fx.who("okta:" + sid2, "r.adams, steady from home")
    sign_in(fx, "10:05:00.004", ad, sid2, HOME_DENVER, EDGE_WIN)
    for i, (clock, app) in enumerate([("10:05:41.119", APP_SLACK), ("10:33:20.620", APP_WORKDAY),
                                      ("10:52:12.008", APP_GITHUB)]):
        sso(fx, fx.at(clock), ad, sid2, HOME_DENVER, EDGE_WIN, app, seed=i)
    fx.quiet("okta:" + sid2, "one network throughout")


# ---------------------------------------------------------------------------------------------
# AWS
# ---------------------------------------------------------------------------------------------


def aws_attack(fx):
    fx.summary = (
        "A developer's SSO role credentials (an `ASIA…` key) are used from the office "
        "(198.51.100.41, AWS CLI on macOS) for 20 minutes, then the same key shows up from "
        "203.0.113.23 with Boto3 on Linux and starts enumerating. Another developer works "
        "alongside."
    )
    dev = RoleSession(PROD, "AWSReservedSSO_Developer_5e1f0c9a2b7d4e36", "m.okafor@northwind.example",
                      fx.at("13:00:00"), path=SSO_PATH, duration=28800)
    fx.who(dev.session_key, "SSO Developer of m.okafor; key replayed from 203.0.113.23")
    ip = "198.51.100.41"
    for i, (clock, src, name, cmd, req) in enumerate([
        ("13:00:20", "sts.amazonaws.com", "GetCallerIdentity", "sts.get-caller-identity", None),
        ("13:02:11", "s3.amazonaws.com", "ListBuckets", "s3.ls", {"Host": "s3.us-east-1.amazonaws.com"}),
        ("13:05:42", "ec2.amazonaws.com", "DescribeInstances", "ec2.describe-instances",
         {"instancesSet": {}, "filterSet": {"items": [{"name": "tag:team", "valueSet": {"items": [{"value": "orders"}]}}]}}),
        ("13:09:03", "logs.amazonaws.com", "FilterLogEvents", "logs.filter-log-events",
         {"logGroupName": "/ecs/orders-api", "filterPattern": "ERROR", "startTime": 1728997200000}),
        ("13:14:30", "lambda.amazonaws.com", "ListFunctions20150331", "lambda.list-functions", None),
        ("13:20:02", "ecs.amazonaws.com", "DescribeServices", "ecs.describe-services",
         {"cluster": "prod", "services": ["orders-api"]}),
    ]):
        fx.add(ct_event(dev, fx.at(clock), src, name, ip=ip, ua=cli_mac_ua(cmd), req=req,
                        host="sts.amazonaws.com" if src.startswith("sts") else None, seed=i),
               dev.session_key)
    bad = "203.0.113.23"
    ev = fx.add(ct_event(dev, fx.at("13:41:07"), "sts.amazonaws.com", "GetCallerIdentity", ip=bad,
                         ua=BOTO3_UA, host="sts.amazonaws.com"), dev.session_key)
    fx.fire(ev, "key used from a new network (token reuse)", "revoke session",
            "same `ASIA…` key from 203.0.113.23, a /24 the session never used (baseline "
            "198.51.100.41), with a new user agent (Boto3 on Linux instead of the AWS CLI on macOS)")
    fx.add(ct_event(dev, fx.at("13:41:30"), "s3.amazonaws.com", "ListBuckets", ip=bad, ua=BOTO3_UA,
                    req={"Host": "s3.us-east-1.amazonaws.com"}), dev.session_key)
    fx.add(ct_event(dev, fx.at("13:41:52"), "secretsmanager.amazonaws.com", "ListSecrets", ip=bad,
                    ua=BOTO3_UA, req={"maxResults": 100}), dev.session_key)
    fx.add(ct_event(dev, fx.at("13:42:15"), "iam.amazonaws.com", "ListRoles", ip=bad, ua=BOTO3_UA),
           dev.session_key)

    other = RoleSession(PROD, "AWSReservedSSO_Developer_5e1f0c9a2b7d4e36", "l.fischer@northwind.example",
                        fx.at("12:50:00"), path=SSO_PATH, duration=28800)
    fx.who(other.session_key, "SSO Developer of l.fischer, steady (background)")
    for i, clock in enumerate(["13:01:00", "13:12:30", "13:25:45", "13:38:10"]):
        fx.add(ct_event(other, fx.at(clock), "cloudformation.amazonaws.com", "DescribeStacks",
                        ip="192.0.2.88", ua=cli_mac_ua("cloudformation.describe-stacks"),
                        req={"stackName": "orders-api-prod"}, seed=i), other.session_key)
    fx.quiet(other.session_key, "one address and client throughout")


def aws_benign(fx):
    fx.summary = (
        "An analyst's SSO key moves between two addresses of the office NAT pool "
        "(198.51.100.10 → 198.51.100.77, same /24, same CLI) and runs Athena queries: Athena "
        "reads the data and writes the results in S3 on the session's behalf, so those S3 "
        "records carry the session's key with `sourceIPAddress`, `userAgent` and `invokedBy` "
        "= athena.amazonaws.com (`network.via_service`, no `network.ip`). Neither is reuse."
    )
    an = RoleSession(PROD, "AWSReservedSSO_DataAnalyst_7c2a9e4f1b3d5a60", "s.wright@northwind.example",
                     fx.at("09:00:00"), path=SSO_PATH, duration=28800)
    fx.who(an.session_key, "SSO DataAnalyst of s.wright")
    a, b = "198.51.100.10", "198.51.100.77"
    ath = "athena.amazonaws.com"
    fx.add(ct_event(an, fx.at("09:00:31"), "sts.amazonaws.com", "GetCallerIdentity", ip=a,
                    ua=cli_mac_ua("sts.get-caller-identity"), host="sts.amazonaws.com"), an.session_key)
    qid = "7d1f9c3e-2b4a-4e6d-8f0a-1c3e5a7b9d2f"
    fx.add(ct_event(an, fx.at("09:01:10"), ath, "StartQueryExecution", ip=a,
                    ua=cli_mac_ua("athena.start-query-execution"),
                    req={"queryString": "SELECT customer_id, sum(total) FROM orders_2024 GROUP BY 1",
                         "workGroup": "analysts",
                         "resultConfiguration": {"outputLocation": "s3://northwind-athena-results/analysts/"}},
                    resp={"queryExecutionId": qid}, read_only=False), an.session_key)
    for i in range(4):
        fx.add(s3_object_event(an, fx.at("09:01:12") + dt.timedelta(seconds=i * 2), "GetObject",
                               "northwind-datalake-curated", f"orders_2024/month=0{i + 6}/part-00000.parquet",
                               ip=ath, ua=ath, size=41_000_000 + i * 1_250_000, invoked_by=ath),
               an.session_key)
    fx.add(s3_object_event(an, fx.at("09:01:24"), "PutObject", "northwind-athena-results",
                           f"analysts/{qid}.csv", ip=ath, ua=ath, size=2_315_004, invoked_by=ath),
           an.session_key)
    fx.add(ct_event(an, fx.at("09:01:30"), ath, "GetQueryExecution", ip=a,
                    ua=cli_mac_ua("athena.get-query-execution"), req={"queryExecutionId": qid}),
           an.session_key)
    fx.add(ct_event(an, fx.at("09:18:02"), ath, "GetQueryResults", ip=b,
                    ua=cli_mac_ua("athena.get-query-results"), req={"queryExecutionId": qid, "maxResults": 1000}),
           an.session_key)
    fx.add(s3_object_event(an, fx.at("09:18:40"), "GetObject", "northwind-athena-results",
                           f"analysts/{qid}.csv", ip=b, ua=s3_cli_ua("s3.cp").replace(
                               "os/linux#6.8.0-1015-aws", "os/macos#23.6.0"), size=2_315_004),
           an.session_key)
    fx.add(ct_event(an, fx.at("09:32:15"), "glue.amazonaws.com", "GetTable", ip=b,
                    ua=cli_mac_ua("glue.get-table"), req={"databaseName": "sales", "name": "orders_2024"}),
           an.session_key)
    fx.quiet(an.session_key, "the new address is in the same /24; the Athena-made S3 records have "
             "no client address (`via_service`) and must be left out of the network and user-agent "
             "baseline")

    svc = RoleSession(PROD, "orders-api-task", "9e1c3a5b7d9f1e3a5c7b9d1f3e5a7c9b", fx.at("08:55:00"), seed="reuse")
    fx.who(svc.session_key, "ECS task role `orders-api-task`, steady (background)")
    for i, clock in enumerate(["09:00:00", "09:10:00", "09:20:00", "09:30:00"]):
        fx.add(ct_event(svc, fx.at(clock), "sqs.amazonaws.com", "GetQueueAttributes", ip="10.20.4.17",
                        ua="aws-sdk-java/2.28.16 Linux/5.10.226-214.880.amzn2.x86_64",
                        req={"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{PROD}/orders-events",
                             "attributeNames": ["ApproximateNumberOfMessages"]}, seed=i), svc.session_key)
    fx.quiet(svc.session_key, "one address throughout")


# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------

API_REASON = 'RBAC: allowed by RoleBinding "api/payments" of Role "api" to ServiceAccount "api/payments"'
API_UA = "payments-api/v2.14.0 (linux/amd64) kubernetes/v0.31.1"


def k8s_attack(fx):
    fx.summary = (
        "A workload token is exfiltrated: the `payments/api` service-account token is used by its "
        "pod (10.42.5.23) for 25 minutes, then from 203.0.113.50 with kubectl on macOS through "
        "the public API endpoint. Prometheus works alongside."
    )
    api = sa("payments", "api", "0f8a3c52-9e61-4d2b-b7a4-6c1e5d2f9a83", "api-7d9f8b6c5-x2k4q",
             "ip-10-42-5-101.ec2.internal")
    fx.who(api.session_key, "service-account token of `payments/api` (pod api-7d9f8b6c5-x2k4q); replayed from 203.0.113.50")
    pod = "10.42.5.23"
    for i, clock in enumerate(["09:00:03.114", "09:05:03.120", "09:10:03.117", "09:15:03.119",
                               "09:20:03.121", "09:25:03.116"]):
        fx.add(k8s_event(fx.at(clock), api, "get", "configmaps", ip=pod, ua=API_UA, namespace="payments",
                         name="api-config", reason=API_REASON, seed=i), api.session_key)
        fx.add(k8s_event(fx.at(clock) + dt.timedelta(milliseconds=212), api, "get", "secrets", ip=pod,
                         ua=API_UA, namespace="payments", name="db-creds", reason=API_REASON, seed=i),
               api.session_key)
    bad = "203.0.113.50"
    ev = fx.add(k8s_event(fx.at("09:27:41.508"), api, "list", "secrets", ip=bad, ua=KUBECTL_MAC,
                          namespace="payments", reason=API_REASON), api.session_key)
    fx.fire(ev, "token used from a new network (token reuse)", "revoke session",
            "same JTI from 203.0.113.50 (baseline: the pod address 10.42.5.23 only), with kubectl on "
            "macOS instead of the service's client")
    fx.add(k8s_event(fx.at("09:27:58.003"), api, "list", "namespaces", ip=bad, ua=KUBECTL_MAC, code=403,
                     uri="/api/v1/namespaces?limit=500"), api.session_key)

    prom = sa("monitoring", "prometheus", "d1f5b3a7-4e0c-4a9d-8b27-8a3c5e1f4d69", "prometheus-k8s-0",
              "ip-10-42-7-204.ec2.internal")
    fx.who(prom.session_key, "service-account token of `monitoring/prometheus` (background)")
    for i, clock in enumerate(["09:00:30.050", "09:08:30.052", "09:16:30.049", "09:24:30.051",
                               "09:28:30.050"]):
        fx.add(k8s_event(fx.at(clock), prom, "list", "pods", ip="10.42.7.12", ua="prometheus/2.54.1",
                         uri="/api/v1/pods?limit=500&resourceVersion=0",
                         reason='RBAC: allowed by ClusterRoleBinding "prometheus-k8s" of ClusterRole "prometheus-k8s" to ServiceAccount "prometheus/monitoring"',
                         seed=i), prom.session_key)
    fx.quiet(prom.session_key, "one address throughout")


def k8s_benign(fx):
    fx.summary = (
        "An external CI runner fleet uses a minted `ci/deployer` token (JTI) behind a NAT pool "
        "that hands out 198.51.100.10 and later 198.51.100.77 (same /24, same kubectl); an "
        "in-cluster token works from its pod address."
    )
    ci = sa("ci", "deployer", "5b9d3f7a-6c2e-4d8b-9a41-3e7f1b5d9c26", None, None)
    fx.who(ci.session_key, "token of `ci/deployer` minted for the external runners (NAT pool 198.51.100.0/24)")
    reason = 'RBAC: allowed by RoleBinding "deployer/team-a" of ClusterRole "edit" to ServiceAccount "deployer/ci"'
    for i, (clock, ip, verb, res, name) in enumerate([
        ("11:00:05.410", "198.51.100.10", "get", "deployments", "orders-web"),
        ("11:00:06.022", "198.51.100.10", "patch", "deployments", "orders-web"),
        ("11:12:40.317", "198.51.100.10", "get", "deployments", "orders-api"),
        ("11:31:09.880", "198.51.100.77", "get", "deployments", "orders-api"),
        ("11:31:10.504", "198.51.100.77", "patch", "deployments", "orders-api"),
        ("11:44:52.116", "198.51.100.77", "get", "deployments", "orders-worker"),
    ]):
        fx.add(k8s_event(fx.at(clock), ci, verb, res, ip=ip, ua=KUBECTL_LINUX, api_group="apps",
                         namespace="team-a", name=name, reason=reason,
                         uri=f"/apis/apps/v1/namespaces/team-a/deployments/{name}"
                             + ("?fieldManager=kubectl-client-side-apply&fieldValidation=Strict" if verb == "patch" else ""),
                         seed=i), ci.session_key)
    fx.quiet(ci.session_key, "new address, but inside the same /24 and with the same client")

    api = sa("payments", "api", "2c6e0a4f-8b3d-4f7a-9e15-4b8d2f6a0c37", "api-7d9f8b6c5-m8r2t",
             "ip-10-42-5-101.ec2.internal")
    fx.who(api.session_key, "service-account token of `payments/api`, in its pod")
    for i, clock in enumerate(["11:00:03.114", "11:10:03.120", "11:20:03.117", "11:30:03.119",
                               "11:40:03.121"]):
        fx.add(k8s_event(fx.at(clock), api, "get", "configmaps", ip="10.42.5.61", ua=API_UA,
                         namespace="payments", name="api-config", reason=API_REASON, seed=i),
               api.session_key)
    fx.quiet(api.session_key, "one address throughout")
