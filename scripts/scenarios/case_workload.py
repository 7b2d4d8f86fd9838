"""Case 10: a workload's credential used by another runtime, or in another region, than the
workload's own.

An EC2 instance's role credentials or a pod's service-account token are used by their workload's
SDK or client; then, from the same network (a shell on the instance, another pod in the same
subnet), by a person's tools: the network checks see nothing new, the runtime does. Or the
instance's credentials, with its own SDK, reach into regions its service never calls: the
enumeration that follows a theft.
"""

from case_scope import sa
from common import BOTO3_UA, JAVA_SDK_UA, KUBECTL_LINUX, PROD, SSO_PATH, TERRAFORM_UA, cli_ua
from vendors import RoleSession, ct_event, k8s_event, s3_object_event

DDB = "dynamodb.amazonaws.com"
SQS = "sqs.amazonaws.com"
STS = "sts.amazonaws.com"

GO_SDK_AGENT_UA = (
    "aws-sdk-go/1.55.5 (go1.22.7; linux; amd64) amazon-cloudwatch-agent/1.300049.1 "
    "(go1.22.7; linux; amd64) inputs:(cpu disk mem)"
)
JAVA_SDK_UPGRADED_UA = JAVA_SDK_UA.replace("aws-sdk-java/2.28.16", "aws-sdk-java/2.29.1")
CURL_UA = "curl/8.5.0"
API_UA = "payments-api/v2.14.0 (linux/amd64) kubernetes/v0.31.1"
API_UA_NEXT = "payments-api/v2.15.0 (linux/amd64) kubernetes/v0.31.1"
API_REASON = 'RBAC: allowed by RoleBinding "api/payments" of Role "api" to ServiceAccount "api/payments"'
K9S_UA = "k9s/v0.32.5 (linux/amd64) kubernetes/$Format"


def instance(fx, instance_id, clock):
    return RoleSession(PROD, "orders-api-instance", instance_id, fx.at(clock), ec2_role_delivery="2.0",
                       duration=21600)


def app_traffic(fx, who, ip, clocks, ua=JAVA_SDK_UA, seed=""):
    """The orders service: DynamoDB reads and writes, SQS polls."""
    for i, clock in enumerate(clocks):
        name, source, req = [
            ("GetItem", DDB, {"tableName": "orders", "key": {"id": {"S": f"o-{i}"}}}),
            ("PutItem", DDB, {"tableName": "orders", "item": {"id": {"S": f"o-{i}"}}}),
            ("ReceiveMessage", SQS, {"queueUrl": "https://sqs.us-east-1.amazonaws.com/482915736014/orders"}),
        ][i % 3]
        fx.add(ct_event(who, fx.at(clock), source, name, ip=ip, ua=ua, req=req, seed=f"{seed}{i}"),
               who.session_key)


def ec2_attack(fx):
    fx.summary = (
        "A shell on the orders instance: its role credentials (delivered by IMDSv2) are used by the "
        "Java SDK of the orders service for 25 minutes; then, from the same address, the AWS CLI "
        "asks who it is and lists buckets and secrets. The network is the instance's own, so only "
        "the runtime is new. A second instance of the service works alongside."
    )
    one = instance(fx, "i-0c7f3a9e21b4d5608", "07:58:12")
    fx.who(one.session_key, "instance i-0c7f3a9e21b4d5608 (orders service); its credentials used by the AWS CLI")
    ip = "10.20.3.41"
    app_traffic(fx, one, ip, ["08:00:03", "08:04:11", "08:09:40", "08:15:02", "08:21:17", "08:25:30"])
    ev = fx.add(ct_event(one, fx.at("08:26:44"), STS, "GetCallerIdentity", ip=ip,
                         ua=cli_ua("sts.get-caller-identity"), host="sts.amazonaws.com"), one.session_key)
    # Learnt from 08:00:03, 08:04:11 and 08:09:40: a record dated up to the 20-minute grace
    # before the newest could still join that period until event time passes 08:29:40.
    fx.fire(ev, "workload credentials used by another runtime", "revoke session",
            "the instance's key, learnt with aws-sdk-java only, now used by aws-cli from the same address",
            decided_after="08:29:40")
    fx.add(ct_event(one, fx.at("08:27:02"), "s3.amazonaws.com", "ListBuckets", ip=ip, ua=cli_ua("s3.ls"),
                    req={"Host": "s3.us-east-1.amazonaws.com"}), one.session_key)
    app_traffic(fx, one, ip, ["08:27:30"], seed="after")
    fx.add(ct_event(one, fx.at("08:31:12"), "secretsmanager.amazonaws.com", "ListSecrets", ip=ip,
                    ua=cli_ua("secretsmanager.list-secrets")), one.session_key)

    two = instance(fx, "i-05d2b8c4e6f1a7390", "07:59:40")
    fx.who(two.session_key, "instance i-05d2b8c4e6f1a7390 (orders service, background)")
    app_traffic(fx, two, "10.20.4.18", ["08:01:20", "08:07:45", "08:14:09", "08:20:33", "08:26:58"], seed="b")
    fx.quiet(two.session_key, "the service's SDK throughout")


def ec2_benign(fx):
    fx.summary = (
        "Runtime changes that are not theft: an instance whose role serves two programs from the "
        "start (the CloudWatch agent on the Go SDK and the service on the Java SDK), whose service "
        "is redeployed on a newer Java SDK, and on whose behalf S3 reads a KMS key; and a "
        "developer's SSO session that moves from the AWS CLI to Boto3 to Terraform, which is a "
        "person's session, not a workload's."
    )
    one = instance(fx, "i-0e4a6c8b2d1f3a597", "09:58:00")
    fx.who(one.session_key, "instance with the CloudWatch agent and the orders service; SDK upgrade mid-way")
    ip = "10.20.3.77"
    fx.add(ct_event(one, fx.at("10:00:05"), "monitoring.amazonaws.com", "PutMetricData", ip=ip,
                    ua=GO_SDK_AGENT_UA, req={"namespace": "CWAgent"}), one.session_key)
    app_traffic(fx, one, ip, ["10:00:40", "10:03:12"])
    fx.add(ct_event(one, fx.at("10:06:05"), "monitoring.amazonaws.com", "PutMetricData", ip=ip,
                    ua=GO_SDK_AGENT_UA, req={"namespace": "CWAgent"}, seed="2"), one.session_key)
    app_traffic(fx, one, ip, ["10:14:20", "10:18:51", "10:22:10"], ua=JAVA_SDK_UPGRADED_UA, seed="new")
    fx.add(s3_object_event(one, fx.at("10:23:30"), "GetObject", "northwind-orders-exports", "2024/10/export.csv",
                           ip=ip, ua=JAVA_SDK_UPGRADED_UA, size=18211), one.session_key)
    fx.add(ct_event(one, fx.at("10:23:31"), "kms.amazonaws.com", "Decrypt", ip="s3.amazonaws.com",
                    ua="s3.amazonaws.com", invoked_by="s3.amazonaws.com",
                    req={"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}), one.session_key)
    fx.quiet(one.session_key, "two SDKs learnt from the start, an upgrade inside one family, and S3 acting "
             "on its behalf")

    dev = RoleSession(PROD, "AWSReservedSSO_Developer_5e1f0c9a2b7d4e36", "l.moreau@northwind.example",
                      fx.at("10:30:00"), path=SSO_PATH, duration=28800)
    fx.who(dev.session_key, "SSO Developer of l.moreau: CLI, then a Boto3 script, then Terraform")
    ip2 = "198.51.100.52"
    for i, (clock, ua, name, source) in enumerate([
        ("10:30:20", cli_ua("sts.get-caller-identity"), "GetCallerIdentity", STS),
        ("10:31:02", cli_ua("ec2.describe-instances"), "DescribeInstances", "ec2.amazonaws.com"),
        ("10:33:40", cli_ua("logs.filter-log-events"), "FilterLogEvents", "logs.amazonaws.com"),
        ("10:45:12", BOTO3_UA, "DescribeTable", DDB),
        ("10:58:30", TERRAFORM_UA, "GetRole", "iam.amazonaws.com"),
    ]):
        fx.add(ct_event(dev, fx.at(clock), source, name, ip=ip2, ua=ua, seed=i), dev.session_key)
    fx.quiet(dev.session_key, "a person's session: not bound to a workload")


def pod_reads(fx, api, reads, pod="10.42.5.23"):
    """The `payments/api` service reading its config from its pod, at each (clock, user agent)."""
    for i, (clock, ua) in enumerate(reads):
        fx.add(k8s_event(fx.at(clock), api, "get", "configmaps", ip=pod, ua=ua, namespace="payments",
                         name="api-config", reason=API_REASON, seed=i), api.session_key)


def k8s_attack(fx):
    fx.summary = (
        "A shell in the `payments/api` pod (`kubectl exec`) uses the pod's service-account token "
        "with kubectl: the address is the pod's own (10.42.5.23), so the network and address "
        "checks are quiet; the runtime is new."
    )
    api = sa("payments", "api", "6b2f0e4c-8a31-4d97-b5c2-3e8f1a0d7c64", "api-7d9f8b6c5-m8t2w",
             "ip-10-42-5-101.ec2.internal")
    fx.who(api.session_key, "service-account token of `payments/api`; used with kubectl from a shell in the pod")
    pod_reads(fx, api, [(clock, API_UA) for clock in ["11:00:03.114", "11:05:03.120", "11:10:03.117",
                                                       "11:15:03.119"]])
    ev = fx.add(k8s_event(fx.at("11:17:21.402"), api, "list", "secrets", ip="10.42.5.23", ua=KUBECTL_LINUX,
                          namespace="payments", reason=API_REASON), api.session_key)
    # Learnt from 11:00:03.114 and 11:05:03.120 (the ten minutes end before the read at 11:10:03.117):
    # records not yet arrived could join until 11:10:03.113, so until event time passes that plus
    # the 20-minute grace; the file ends before, so the decision is taken at its end.
    fx.fire(ev, "workload token used by another runtime", "revoke session",
            "the pod's token, learnt with payments-api only, now used by kubectl from the pod itself",
            decided_after="11:30:03.113")
    fx.add(k8s_event(fx.at("11:17:40.016"), api, "get", "secrets", ip="10.42.5.23", ua=KUBECTL_LINUX,
                     namespace="payments", name="db-creds", reason=API_REASON), api.session_key)


def k8s_benign(fx):
    fx.summary = (
        "A rollout moves `payments/api` to a new build of the same client (payments-api v2.14.0 → "
        "v2.15.0) under the same token; an operator, a person with a certificate, switches between "
        "kubectl and k9s."
    )
    api = sa("payments", "api", "9c4d1e7a-2b58-4f03-a6e9-5d7c3b1f8e20", "api-7d9f8b6c5-q4r7v",
             "ip-10-42-5-101.ec2.internal")
    fx.who(api.session_key, "service-account token of `payments/api` across a client upgrade")
    pod_reads(fx, api, [("12:00:03.114", API_UA), ("12:05:03.120", API_UA), ("12:10:03.117", API_UA),
                        ("12:15:03.119", API_UA_NEXT), ("12:20:03.121", API_UA_NEXT)])
    fx.quiet(api.session_key, "one client family across the upgrade")

    from vendors import K8sCaller
    ops = K8sCaller("j.ortiz", "5d0b8f1c-7e34-4a29-9c61-2f8e4b7a1d03", ["platform-ops", "system:authenticated"],
                    x509="3f1c9a7e5b2d8046c1e9f3a7b5d2c8e04f6a1b9c3e7d5f2a8b0c4e6d1f3a5b7c9")
    fx.who(ops.session_key, "j.ortiz (a person), kubectl and k9s")
    for i, (clock, ua) in enumerate([("12:01:10.000", KUBECTL_LINUX), ("12:03:22.500", KUBECTL_LINUX),
                                     ("12:06:45.250", KUBECTL_LINUX), ("12:12:05.750", K9S_UA)]):
        fx.add(k8s_event(fx.at(clock), ops, "list", "pods", ip="198.51.100.60", ua=ua, namespace="payments",
                         seed=i), ops.session_key)
    fx.quiet(ops.session_key, "a person's client certificate: not a workload")


def region_attack(fx):
    fx.summary = (
        "The orders instance's credentials, used by its Java SDK in us-east-1 for 20 minutes, then "
        "list instances and secrets in us-west-2 and eu-west-1 from the same address and with the "
        "same SDK (a script run through the service): the runtime and the network are the "
        "workload's, the regions are not."
    )
    one = instance(fx, "i-0a93d5c7e1f2b4680", "13:58:30")
    fx.who(one.session_key, "instance i-0a93d5c7e1f2b4680 (orders service); reaches into us-west-2 and eu-west-1")
    ip = "10.20.3.52"
    app_traffic(fx, one, ip, ["14:00:02", "14:04:40", "14:09:15", "14:14:51", "14:19:33"])
    ev = fx.add(ct_event(one, fx.at("14:21:07"), "ec2.amazonaws.com", "DescribeInstances", ip=ip,
                         ua=JAVA_SDK_UA, region="us-west-2"), one.session_key)
    fx.fire(ev, "workload credentials used in another region", "alert",
            "the instance's key, learnt in us-east-1 only, now calls EC2 in us-west-2")
    fx.add(ct_event(one, fx.at("14:21:19"), "secretsmanager.amazonaws.com", "ListSecrets", ip=ip,
                    ua=JAVA_SDK_UA, region="eu-west-1", req={"maxResults": 100}), one.session_key)
    app_traffic(fx, one, ip, ["14:22:02"], seed="after")


def region_benign(fx):
    fx.summary = (
        "Regions that are the workload's own: an instance that reads its replica table in "
        "eu-west-1 beside us-east-1 from its start, and calls IAM and STS, whose events CloudTrail "
        "logs in us-east-1 whatever the caller's region; and an instance in eu-west-1 that calls "
        "IAM (logged in us-east-1)."
    )
    one = instance(fx, "i-0d6b8f1a3c5e7092b", "15:58:00")
    fx.who(one.session_key, "instance reading us-east-1 and its eu-west-1 replica from the start")
    ip = "10.20.3.61"
    for i, (clock, region) in enumerate([("16:00:04", "us-east-1"), ("16:01:10", "eu-west-1"),
                                         ("16:03:45", "us-east-1"), ("16:12:30", "eu-west-1"),
                                         ("16:20:02", "us-east-1")]):
        fx.add(ct_event(one, fx.at(clock), DDB, "GetItem", ip=ip, ua=JAVA_SDK_UA, region=region,
                        req={"tableName": "orders", "key": {"id": {"S": f"r-{i}"}}}, seed=i),
               one.session_key)
    fx.add(ct_event(one, fx.at("16:22:40"), STS, "GetCallerIdentity", ip=ip, ua=JAVA_SDK_UA,
                    host="sts.amazonaws.com"), one.session_key)
    fx.quiet(one.session_key, "both regions learnt from the start; STS is global")

    two = RoleSession(PROD, "reports-instance", "i-07c2e4a6b8d0f1359", fx.at("15:59:10"),
                      ec2_role_delivery="2.0", duration=21600)
    fx.who(two.session_key, "instance in eu-west-1 that also reads an IAM role (logged in us-east-1)")
    ip2 = "10.30.1.14"
    for i, clock in enumerate(["16:00:20", "16:05:20", "16:10:20", "16:15:20"]):
        fx.add(ct_event(two, fx.at(clock), SQS, "ReceiveMessage", ip=ip2, ua=JAVA_SDK_UA, region="eu-west-1",
                        req={"queueUrl": "https://sqs.eu-west-1.amazonaws.com/482915736014/reports"}, seed=i),
               two.session_key)
    fx.add(ct_event(two, fx.at("16:18:05"), "iam.amazonaws.com", "GetRole", ip=ip2, ua=JAVA_SDK_UA,
                    req={"roleName": "reports-instance"}), two.session_key)
    fx.quiet(two.session_key, "IAM is a global service: its events are logged in us-east-1")
