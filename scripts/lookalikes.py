#!/usr/bin/env python3
"""Writes fixtures/lookalikes/: hand-made audit records for the attack-coverage rules (issue 19).

`attack-*.jsonl` hold one attack each that no vendored recording covers (the combinations, the
identity-provider moves); every other file holds legitimate work that looks like an attack and
must produce no decision. The expected outcome of each file is written here, beside the records
(fixtures/lookalikes/README.md), independently of the engine. Deterministic: re-running it
rewrites the same bytes.

Usage: scripts/lookalikes.py
"""
import json
import os
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "lookalikes")
ACCOUNT = "111122223333"
NS = uuid.UUID("6f1c2b7e-9a61-4a5e-9d0c-5b0c1e7c4d20")


def uid(*parts):
    return str(uuid.uuid5(NS, "/".join(str(p) for p in parts)))


def ct(t, source, name, params=None, *, user="alice", key=None, kind="IAMUser",
       error=None, response=None, role=None, mfa=None, ua="aws-cli/2.17.0 Python/3.12.6"):
    """One CloudTrail record at `t` ("HH:MM:SS") of 2026-11-20; each user has its own key."""
    key = key or ("AKIA" + "".join(c for c in user.upper() if c.isalnum()) + "0" * 16)[:20]
    identity = {"type": kind, "principalId": "AIDA" + user.upper()[:8], "accountId": ACCOUNT,
                "accessKeyId": key}
    if kind == "IAMUser":
        identity["arn"] = f"arn:aws:iam::{ACCOUNT}:user/{user}"
        identity["userName"] = user
        if mfa is not None:
            identity["sessionContext"] = {"attributes": {"mfaAuthenticated": "true" if mfa else "false",
                                                         "creationDate": "2026-11-20T08:00:00Z"}}
    else:
        identity["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{user}"
        identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "principalId": "AROA" + role.upper()[:8],
                              "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT,
                              "userName": role},
            "attributes": {"mfaAuthenticated": "false", "creationDate": "2026-11-20T08:00:00Z"}}
    record = {
        "eventVersion": "1.09", "userIdentity": identity,
        "eventTime": f"2026-11-20T{t}Z", "eventSource": f"{source}.amazonaws.com",
        "eventName": name, "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.7",
        "userAgent": ua, "requestParameters": params, "responseElements": response,
        "requestID": uid("req", t, name, user), "eventID": uid("ev", t, name, user),
        "readOnly": name.startswith(("Get", "List", "Describe", "BatchGet")),
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = f"User is not authorized to perform {source}:{name}"
    return record


def trust(*principals):
    statements = [{"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"} for p in principals]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def k8s(t, verb, resource, *, name=None, namespace=None, subresource=None, obj=None,
        user="system:serviceaccount:ci:deployer", jti="0c4f7a52-1d7e-4b7a-9a57-7b1d0d6b9e11",
        groups=("system:serviceaccounts", "system:authenticated"), code=201):
    ref = {"resource": resource, "apiVersion": "v1"}
    if resource in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
        ref["apiVersion"] = "v1"
    for k, v in (("name", name), ("namespace", namespace), ("subresource", subresource)):
        if v:
            ref[k] = v
    user_info = {"username": user, "groups": list(groups)}
    if jti:
        user_info["extra"] = {"authentication.kubernetes.io/credential-id": [f"JTI={jti}"]}
    record = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": uid("k8s", t, verb, resource, name, user), "stage": "ResponseComplete",
        "requestURI": f"/apis/rbac.authorization.k8s.io/v1/{resource}", "verb": verb,
        "user": user_info, "sourceIPs": ["10.42.7.31"], "userAgent": "kubectl/v1.31.2",
        "objectRef": ref, "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": f"2026-11-20T{t}.000000Z",
        "stageTimestamp": f"2026-11-20T{t}.004000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    if obj is not None:
        record["requestObject"] = obj
    return record


def cluster_role(name, rules):
    return {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name}, "rules": rules}


def binding(name, role, subject):
    return {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name}, "roleRef": {"kind": "ClusterRole", "name": role},
            "subjects": [subject]}


def okta(t, event_type, *, target=None, actor="it-admin@northwind.example", session="idxAdm1nSess10nXyZ"):
    return {
        "actor": {"id": "00uadmin0000000001", "type": "User", "alternateId": actor,
                  "displayName": "IT Admin"},
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Firefox/132.0",
                                 "os": "Mac OS X", "browser": "FIREFOX"},
                   "zone": "null", "device": "Computer", "ipAddress": "198.51.100.23",
                   "geographicalContext": {"city": "Austin", "country": "United States"}},
        "authenticationContext": {"authenticationStep": 0, "rootSessionId": session,
                                  "externalSessionId": session},
        "displayMessage": event_type, "eventType": event_type,
        "outcome": {"result": "SUCCESS", "reason": None},
        "published": f"2026-11-20T{t}.000Z",
        "securityContext": {"asNumber": 7018, "asOrg": "at&t services, inc.", "isProxy": False},
        "severity": "INFO", "uuid": uid("okta", t, event_type),
        "target": target or [], "version": "0",
        "transaction": {"type": "WEB", "id": uid("tx", t)[:20], "detail": {}},
    }


def github(t, action, **extra):
    ms = 1795161600000 + sum(int(x) * m for x, m in zip(t.split(":"), (3600000, 60000, 1000)))
    record = {
        "@timestamp": ms, "_document_id": uid("gh", t, action)[:22], "action": action,
        "actor": "org-owner-jo", "actor_id": 4412087, "actor_ip": "198.51.100.41",
        "actor_location": {"country_code": "US"}, "org": "northwind-labs", "org_id": 81234567,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0", "created_at": ms,
        "hashed_token": "oWn3rSe55ionT0kenHa5h0000000000000000000000=",
        "programmatic_access_type": "Personal access token (classic)", "token_id": 99120021,
        "operation_type": "modify",
    }
    record.update(extra)
    return record


def entra(t, operation, *, upn="gadmin@northwind.example"):
    return {
        "time": f"2026-11-20T{t}.0000000Z", "resourceId": "/tenants/7d2c/providers/Microsoft.aadiam",
        "operationName": operation, "operationVersion": "1.0", "category": "AuditLogs",
        "tenantId": "7d2c0e4b-1f5a-4c1e-9a7e-2b6f0d3c8e11", "resultSignature": "None",
        "durationMs": 0, "callerIpAddress": "198.51.100.61", "correlationId": uid("entra", t),
        "Level": 4,
        "properties": {
            "id": uid("entra-id", t), "category": "AzureRBACRoleManagementElevateAccess",
            "activityDateTime": f"2026-11-20T{t}.0000000Z", "loggedByService": "Azure RBAC (Elevated Access)",
            "operationType": "Assign", "result": "success", "activityDisplayName": operation,
            "initiatedBy": {"user": {"id": "5f0c9e2a-7b3d-4e61-8a4f-1c2d3e4f5a6b", "userPrincipalName": upn,
                                     "ipAddress": "198.51.100.61"}},
            "targetResources": [{"type": "Other", "displayName": "User Access Administrator"}],
        },
    }


def write(name, records):
    with open(os.path.join(ROOT, name), "w") as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")


def main():
    os.makedirs(ROOT, exist_ok=True)
    # --- benign: the audit trail administered by the people whose job it is
    write("aws-trail-administration.jsonl", [
        ct("09:00:00", "cloudtrail", "CreateTrail", {"name": "org-trail", "s3BucketName": "northwind-trail",
                                                       "isMultiRegionTrail": True}, user="platform-admin", mfa=True),
        ct("09:00:05", "cloudtrail", "StartLogging", {"name": "org-trail"}, user="platform-admin", mfa=True),
        ct("09:01:00", "cloudtrail", "PutEventSelectors",
           {"trailName": "org-trail", "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True,
                                                          "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}]}]},
           user="platform-admin", mfa=True),
        ct("09:30:00", "cloudtrail", "StopLogging", {"name": "legacy-trail"}, user="log-archive-admin",
           key="AKIAEXAMPLELOGARCH01"),
        ct("09:30:10", "cloudtrail", "DeleteTrail", {"name": "legacy-trail"}, user="log-archive-admin",
           key="AKIAEXAMPLELOGARCH01"),
    ])
    # --- benign: sharing withdrawn, own-account trust, a trusted account, Terraform
    write("aws-sharing.jsonl", [
        ct("10:00:00", "ec2", "ModifyImageAttribute",
           {"imageId": "ami-0a1b2c3d4e5f60718", "attributeType": "launchPermission",
            "launchPermission": {"remove": {"items": [{"userId": "846424999548"}]}}}),
        ct("10:01:00", "iam", "UpdateAssumeRolePolicy",
           {"roleName": "batch-runner", "policyDocument": trust({"Service": "ecs-tasks.amazonaws.com"},
                                                                 {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci"})}),
        ct("10:02:00", "ec2", "ModifySnapshotAttribute",
           {"snapshotId": "snap-0f1e2d3c4b5a69788", "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": "000000000000"}]}}}),
        ct("10:03:00", "ec2", "ModifyImageAttribute",
           {"imageId": "ami-0a1b2c3d4e5f60718", "attributeType": "launchPermission",
            "launchPermission": {"add": {"items": [{"userId": "222233334444"}]}}},
           user="terraform-ci", key="AKIAEXAMPLETERRAFORM"),
    ])
    write("aws-security-groups.jsonl", [
        ct("11:00:00", "ec2", "AuthorizeSecurityGroupIngress",
           {"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [
               {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        ct("11:01:00", "ec2", "AuthorizeSecurityGroupIngress",
           {"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [
               {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                "ipRanges": {"items": [{"cidrIp": "203.0.113.0/24"}]}}]}}),
    ])
    # --- benign: IAM administration with a fresh MFA session, and Terraform doing IAM
    write("aws-iam-administration.jsonl", [
        ct("12:00:00", "iam", "AttachUserPolicy",
           {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, mfa=True),
        ct("12:01:00", "iam", "CreateAccessKey", {"userName": "svc-reporting"}, mfa=True,
           response={"accessKey": {"accessKeyId": "AKIAEXAMPLEREPORT001", "userName": "svc-reporting",
                                   "status": "Active"}}),
        ct("12:02:00", "iam", "CreateLoginProfile", {"userName": "bob", "passwordResetRequired": True}, mfa=True),
        ct("12:10:00", "iam", "CreateUser", {"userName": "svc-etl"}, user="terraform-ci", key="AKIAEXAMPLETERRAFORM"),
        ct("12:10:02", "iam", "CreateAccessKey", {"userName": "svc-etl"}, user="terraform-ci",
           key="AKIAEXAMPLETERRAFORM",
           response={"accessKey": {"accessKeyId": "AKIAEXAMPLESVCETL001", "userName": "svc-etl", "status": "Active"}}),
        ct("12:10:04", "iam", "AttachRolePolicy",
           {"roleName": "breakglass-admin", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
           user="terraform-ci", key="AKIAEXAMPLETERRAFORM"),
    ])
    write("aws-deploys.jsonl", [
        ct("13:00:00", "lambda", "UpdateFunctionCode20150331v2",
           {"functionName": "invoice-api", "publish": True, "s3Bucket": "northwind-build-artifacts",
            "s3Key": "invoice-api/3f2a9c1.zip"},
           user="GitHubActions", key="ASIAEXAMPLEDEPLOY001", kind="AssumedRole", role="gha-deploy-lambda"),
        ct("13:00:20", "lambda", "UpdateFunctionConfiguration20150331v2",
           {"functionName": "invoice-api", "layers": [f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:otel:12"]},
           user="GitHubActions", key="ASIAEXAMPLEDEPLOY001", kind="AssumedRole", role="gha-deploy-lambda"),
        ct("13:20:00", "lambda", "UpdateFunctionCode20150331v2",
           {"functionName": "invoice-api", "publish": True, "zipFile": "<redacted>"},
           user="jo@northwind.example", key="ASIAEXAMPLESSOJO0001", kind="AssumedRole",
           role="AWSReservedSSO_PowerUser_5c1d2e3f"),
    ])
    app = dict(user="i-0abc1234", key="ASIAEXAMPLEAPPSVC001", kind="AssumedRole", role="invoice-api-task",
               ua="aws-sdk-go-v2/1.32.2 os/linux lang/go#1.23.2")
    write("aws-secrets-batches.jsonl", [
        *[ct(f"14:0{i}:00", "secretsmanager", "BatchGetSecretValue",
             {"secretIdList": [f"invoice-api/{n}" for n in ("db", "stripe", "smtp", "jwt", "s3")]}, **app)
          for i in range(3)],
        ct("14:04:00", "secretsmanager", "BatchGetSecretValue",
           {"filters": [{"key": "tag-key", "values": ["invoice-api"]}]}, **app),
    ])
    # --- attacks no vendored recording covers
    thief = dict(user="ci-legacy", key="AKIAEXAMPLESTOLEN001", ua="python-requests/2.32.3")
    write("attack-probe-then-grant.jsonl", [
        *[ct(f"15:00:{i * 3:02d}", "secretsmanager", "GetSecretValue", {"secretId": f"prod/{i}"},
             error="AccessDenied", **thief) for i in range(12)],
        ct("15:05:00", "iam", "CreateAccessKey", {"userName": "ci-legacy-2"}, **thief,
           response={"accessKey": {"accessKeyId": "AKIAEXAMPLENEWKEY001", "userName": "ci-legacy-2",
                                   "status": "Active"}}),
    ])
    write("attack-secrets-by-id.jsonl", [
        ct(f"16:00:{i * 10:02d}", "secretsmanager", "BatchGetSecretValue",
           {"secretIdList": [f"prod/app-{i}-{n}" for n in range(size)]}, **thief)
        for i, size in enumerate((20, 20, 25))
    ])
    token = "5e1b8a3c-77d2-4c1e-b5b8-9f0d7c2e4a61"
    sa = dict(user="system:serviceaccount:tools:runner", jti=token)
    write("attack-k8s-role-then-binding.jsonl", [
        k8s("17:00:00", "create", "clusterroles", name="tools-runner-all",
            obj=cluster_role("tools-runner-all", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]), **sa),
        k8s("17:00:04", "create", "clusterrolebindings", name="tools-runner-all",
            obj=binding("tools-runner-all", "tools-runner-all",
                        {"kind": "ServiceAccount", "name": "runner", "namespace": "tools"}), **sa),
        k8s("17:01:00", "create", "pods", name="payments-api-7d9f8b6c5-m8r2t", namespace="payments",
            subresource="exec", code=101, **sa),
    ])
    daemonset = {
        "kind": "DaemonSet", "apiVersion": "apps/v1",
        "metadata": {"name": "node-debug", "namespace": "tools"},
        "spec": {"selector": {"matchLabels": {"app": "node-debug"}}, "template": {
            "metadata": {"labels": {"app": "node-debug"}},
            "spec": {"hostPID": True, "containers": [
                {"name": "debug", "image": "alpine:3.20", "securityContext": {"privileged": True},
                 "volumeMounts": [{"name": "sock", "mountPath": "/run/containerd/containerd.sock"}]}],
                "volumes": [{"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock"}}]}}},
    }
    write("attack-k8s-breakout-workload.jsonl", [
        k8s("17:30:00", "create", "daemonsets", name="node-debug", namespace="tools", obj=daemonset, **sa),
    ])
    write("k8s-rbac-administration.jsonl", [
        k8s("18:00:00", "create", "clusterroles", name="pod-reader",
            obj=cluster_role("pod-reader", [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                                             "verbs": ["get", "list", "watch"]}])),
        k8s("18:00:02", "create", "clusterrolebindings", name="pod-reader-oncall",
            obj=binding("pod-reader-oncall", "pod-reader", {"kind": "Group", "name": "oncall"})),
        k8s("18:30:00", "create", "clusterrolebindings", name="sre-admin-jo",
            obj=binding("sre-admin-jo", "sre-admin", {"kind": "User", "name": "jo@northwind.example"}),
            user="alice@northwind.example", jti=None, groups=("sre", "system:authenticated")),
    ])
    write("attack-okta-policy-weakened.jsonl", [
        okta("19:00:00", "system.mfa.factor.deactivate",
             target=[{"id": "opf1okta0verify00001", "type": "Factor", "displayName": "Okta Verify"}]),
        okta("19:00:30", "system.api_token.create",
             target=[{"id": "00T1token0000000001", "type": "Token", "displayName": "sync"}]),
    ])
    reuse = okta("19:10:00", "app.oauth2.token.detect_reuse", actor="s.lee@northwind.example",
                 session="idxSLee0Sess10n00001")
    reuse["outcome"] = {"result": "FAILURE", "reason": "refresh_token_reuse_detected"}
    write("attack-okta-token-reuse.jsonl", [
        okta("19:09:00", "app.oauth2.token.grant.refresh_token", actor="s.lee@northwind.example",
             session="idxSLee0Sess10n00001"),
        reuse,
    ])
    write("attack-entra-elevate.jsonl", [
        entra("21:00:00", "User has elevated their access to User Access Administrator for their Azure Resources"),
    ])
    write("attack-github-org-opened.jsonl", [
        github("20:00:00", "ip_allow_list.disable"),
        github("20:00:20", "ip_allow_list_entry.create"),
    ])


if __name__ == "__main__":
    main()
