"""Case 13: a workload's credential used from an address that is not its workload's.

An EC2 instance's role credentials are the instance's: its calls come from its own private
address (through the VPC's endpoints) or its public one. A Kubernetes service-account token
bound to a pod (the `pod-name` claim) is that pod's, and a pod has one address for its life.
The `ec2-steal-instance-credentials` pattern reads the credentials from the instance metadata
service (an SSRF, a shell) and uses them elsewhere; a token is read from a pod's filesystem and
used from its neighbour. From inside the same subnet, the network rule (which tolerates a /24)
sees nothing; when the thief's tools are the workload's own (Pacu is Boto3, like the service),
neither does the runtime rule. Only the address does.
"""

from case_scope import sa
from case_workload import API_REASON, API_UA, pod_reads
from common import BOTO3_UA, PROD
from vendors import RoleSession, ct_event, k8s_event

S3 = "s3.amazonaws.com"
SQS = "sqs.amazonaws.com"
STS = "sts.amazonaws.com"
VPCE_S3 = "vpce-0a1b2c3d4e5f60718"
VPCE_SQS = "vpce-0f1e2d3c4b5a69788"
NAT = "52.4.199.23"


def instance(fx, role, instance_id, clock):
    return RoleSession(PROD, role, instance_id, fx.at(clock), ec2_role_delivery="2.0", duration=21600)


def via_endpoint(rec, endpoint):
    """A call that reached AWS through an interface or gateway endpoint of the VPC."""
    rec["vpcEndpointId"] = endpoint
    rec["vpcEndpointAccountId"] = PROD
    return rec


def exports_traffic(fx, who, ip, clocks, seed=""):
    """The exports service (Python, Boto3): polls its queue, writes to its bucket."""
    for i, clock in enumerate(clocks):
        if i % 2 == 0:
            rec = ct_event(who, fx.at(clock), SQS, "ReceiveMessage", ip=ip, ua=BOTO3_UA, seed=f"{seed}{i}",
                           req={"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{PROD}/exports"})
            fx.add(via_endpoint(rec, VPCE_SQS), who.session_key)
        else:
            rec = ct_event(who, fx.at(clock), S3, "PutObject", ip=ip, ua=BOTO3_UA, seed=f"{seed}{i}", data=True,
                           req={"bucketName": "northwind-exports", "key": f"daily/{i}.csv",
                                "Host": "northwind-exports.s3.us-east-1.amazonaws.com"})
            fx.add(via_endpoint(rec, VPCE_S3), who.session_key)


def attack(fx):
    fx.summary = (
        "Two workloads lose their credentials inside their own network. The exports instance's "
        "role credentials, read from its metadata service through an SSRF, are used with Pacu "
        "(Boto3, the service's own SDK) from another instance of the same subnet, through the "
        "same VPC endpoints: 10.20.3.97 beside the instance's 10.20.3.41. And the `payments/api` "
        "token, read from its pod, is used from a debugging pod of the same node's subnet "
        "(10.42.5.77 beside 10.42.5.23) with kubectl. The /24 is the workloads' own."
    )
    one = instance(fx, "exports-instance", "i-0b8e2d4f6a1c3e579", "07:58:30")
    fx.who(one.session_key, "instance i-0b8e2d4f6a1c3e579 (exports service); its credentials used from 10.20.3.97")
    own, thief = "10.20.3.41", "10.20.3.97"
    exports_traffic(fx, one, own, ["08:00:04", "08:02:10", "08:05:31", "08:09:12", "08:14:40", "08:20:05"])
    ev = fx.add(via_endpoint(ct_event(one, fx.at("08:23:17"), STS, "GetCallerIdentity", ip=thief, ua=BOTO3_UA,
                                      host="sts.amazonaws.com"), "vpce-07d6c5b4a3928170f"), one.session_key)
    # Learnt from 08:00:04, 08:02:10 and 08:05:31; a record dated before 08:05:31 could still
    # join until event time passes it plus the 20-minute grace.
    fx.fire(ev, "workload credentials used from another address", "revoke session",
            "the instance's key, learnt at 10.20.3.41 only, now calls from 10.20.3.97 with the same SDK",
            decided_after="08:25:31")
    fx.add(via_endpoint(ct_event(one, fx.at("08:23:40"), S3, "ListBuckets", ip=thief, ua=BOTO3_UA,
                                 req={"Host": "s3.us-east-1.amazonaws.com"}), VPCE_S3), one.session_key)
    exports_traffic(fx, one, own, ["08:24:30"], seed="after")
    fx.add(ct_event(one, fx.at("08:26:02"), "iam.amazonaws.com", "ListRoles", ip=thief, ua=BOTO3_UA),
           one.session_key)
    fx.add(ct_event(one, fx.at("08:26:40"), "secretsmanager.amazonaws.com", "ListSecrets", ip=thief,
                    ua=BOTO3_UA), one.session_key)

    api = sa("payments", "api", "1c8e5a3f-6d27-4b90-a4e1-7f2c9b5d3e68", "api-7d9f8b6c5-h5n2p",
             "ip-10-42-5-101.ec2.internal")
    fx.who(api.session_key, "service-account token of `payments/api` (pod 10.42.5.23); used from 10.42.5.77")
    pod_reads(fx, api, [(clock, API_UA) for clock in ["09:00:03.114", "09:05:03.120", "09:10:03.117"]])
    ev = fx.add(k8s_event(fx.at("09:12:48.305"), api, "list", "secrets", ip="10.42.5.77", ua=API_UA,
                          namespace="payments", reason=API_REASON), api.session_key)
    # The token's client is the service's own binary, copied into the debugging pod: only the
    # address is new. Learnt from the first two reads (the third comes just after the first ten
    # minutes): records could join until 09:10:03.113, so until event time passes that plus the
    # 20-minute grace.
    fx.fire(ev, "workload token used from another address", "revoke session",
            "the pod's token, learnt at 10.42.5.23 only, now used from 10.42.5.77",
            decided_after="09:30:03.113")
    fx.add(k8s_event(fx.at("09:13:05.771"), api, "get", "secrets", ip="10.42.5.77", ua=API_UA,
                     namespace="payments", name="db-creds", reason=API_REASON), api.session_key)
    # The pod goes on reading its config every five minutes. Its records move the clock of its
    # own source (under `run`, of its own partition: nothing else may): the read at 09:30:03.130
    # takes event time past 09:30:03.113, the decision is taken before it is applied, and it
    # shows the kill not enforced yet.
    pod_reads(fx, api, [(f"09:{m:02d}:03.1{m:02d}", API_UA) for m in range(15, 40, 5)])


def benign(fx):
    fx.summary = (
        "Addresses that are the workloads' own: an instance that calls through the VPC's "
        "endpoints and, for STS, through its NAT gateway from its start; the same instance's next "
        "credentials after the metadata service rotates them (a new session, learnt afresh); S3 "
        "decrypting with KMS on its behalf (no address); and a rollout that replaces the "
        "`payments/api` pod: the new pod has a new address and its own token."
    )
    one = instance(fx, "exports-instance", "i-0c2a4e6b8d0f13579", "10:58:00")
    fx.who(one.session_key, "instance calling through its endpoints and its NAT gateway from the start")
    own = "10.20.3.58"
    exports_traffic(fx, one, own, ["11:00:02"])
    fx.add(ct_event(one, fx.at("11:00:40"), STS, "GetCallerIdentity", ip=NAT, ua=BOTO3_UA,
                    host="sts.amazonaws.com"), one.session_key)
    exports_traffic(fx, one, own, ["11:03:11", "11:09:45", "11:16:20"], seed="b")
    fx.add(ct_event(one, fx.at("11:18:02"), STS, "GetCallerIdentity", ip=NAT, ua=BOTO3_UA,
                    host="sts.amazonaws.com", seed="again"), one.session_key)
    fx.add(ct_event(one, fx.at("11:18:30"), "kms.amazonaws.com", "Decrypt", ip="s3.amazonaws.com",
                    ua="s3.amazonaws.com", invoked_by="s3.amazonaws.com",
                    req={"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}), one.session_key)
    fx.quiet(one.session_key, "its endpoint and NAT addresses learnt together; S3 acting on its behalf")

    rotated = instance(fx, "exports-instance", "i-0c2a4e6b8d0f13579", "11:20:00")
    fx.who(rotated.session_key, "the same instance's next credentials, from the same address")
    exports_traffic(fx, rotated, own, ["11:22:15", "11:27:40", "11:33:05"], seed="r")
    fx.quiet(rotated.session_key, "a new key learns its addresses afresh")

    old = sa("payments", "api", "2d9f6b4a-7e38-4ca1-b5f2-8a3d0c6e4f79", "api-7d9f8b6c5-k3t8x",
             "ip-10-42-5-101.ec2.internal")
    fx.who(old.session_key, "`payments/api` token of the pod replaced by a rollout")
    pod_reads(fx, old, [(clock, API_UA) for clock in ["12:00:03.114", "12:05:03.120", "12:10:03.117"]],
              pod="10.42.5.23")
    fx.quiet(old.session_key, "one address for the pod's life")
    new = sa("payments", "api", "3e0a7c5b-8f49-4db2-86a3-9b4e1d7f5a80", "api-7d9f8b6c5-w9q4m",
             "ip-10-42-6-118.ec2.internal")
    fx.who(new.session_key, "`payments/api` token of the new pod, on another node")
    pod_reads(fx, new, [(clock, API_UA) for clock in ["12:12:04.201", "12:17:04.208", "12:22:04.215"]],
              pod="10.42.6.61")
    fx.quiet(new.session_key, "a new pod: a new token and a new address")
