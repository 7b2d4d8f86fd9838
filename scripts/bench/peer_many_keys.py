#!/usr/bin/env python3
"""Writes case 2 of scripts/bench/peer.sh: CloudTrail JSON lines where every session reads many
distinct S3 object keys within the correlation windows (no key is read twice by a session).

Usage: peer_many_keys.py OUT [--events N] [--sessions N] [--rate EVENTS_PER_SECOND] [--seed N]

Defaults: 150 000 records, 100 concurrent sessions, 500 records per second of event time
(300 s of event time): each session reads about 5 objects a second, so a 2-minute window holds
about 600 distinct keys of one session and a 5-minute window all of its 1 500 reads. One record
in 20 is a ListObjects call that no peer rule matches. The records have the shape of
`sessionguard gen`'s CloudTrail S3 data events (eventVersion 1.10, assumed-role ASIA… keys).
Deterministic for a given seed.
"""
import argparse
import datetime as dt
import json
import random
import string

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--events", type=int, default=150_000)
ap.add_argument("--sessions", type=int, default=100)
ap.add_argument("--rate", type=float, default=500.0)
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()

rng = random.Random(args.seed)
start = dt.datetime(2024, 11, 4, 8, 0, 0, tzinfo=dt.timezone.utc)
accounts = ["482915736014", "215836470925", "730264519883"]


def rand(chars, n):
    return "".join(rng.choice(chars) for _ in range(n))


sessions = []
for i in range(args.sessions):
    account = rng.choice(accounts)
    role = f"export-worker-{i % 17}"
    name = rand("0123456789abcdef", 32)
    role_id = "AROA" + rand(string.ascii_uppercase + "234567", 17)
    created = start - dt.timedelta(seconds=rng.randint(30, 3000))
    sessions.append({
        "account": account,
        "bucket": f"northwind-{role}-data",
        "prefix": f"exports/{rand('abcdefghijklmnopqrstuvwxyz', 8)}/dt=2024-11-0{i % 4 + 1}",
        "ip": f"10.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "next": 0,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{name}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
            "accountId": account,
            "accessKeyId": "ASIA" + rand(string.ascii_uppercase + "234567", 16),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{account}:role/{role}",
                    "accountId": account,
                    "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "mfaAuthenticated": "false",
                },
            },
        },
    })

user_agent = ("aws-sdk-java/2.28.16 Linux/5.10.226-214.880.amzn2.x86_64 "
              "OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS Java/21.0.4 vendor/Amazon.com_Inc. "
              "io/sync http/Apache cfg/retry-mode/legacy")

with open(args.out, "w") as out:
    for i in range(args.events):
        s = sessions[rng.randrange(len(sessions))]
        t = start + dt.timedelta(seconds=int(i / args.rate))
        host = f"{s['bucket']}.s3.us-east-1.amazonaws.com"
        listing = i % 20 == 19
        if listing:
            name = "ListObjects"
            params = {"bucketName": s["bucket"], "Host": host, "prefix": s["prefix"] + "/"}
            resources = [{"accountId": s["account"], "type": "AWS::S3::Bucket",
                          "ARN": f"arn:aws:s3:::{s['bucket']}"}]
            extra = {"bytesTransferredOut": rng.randint(400, 40_000)}
        else:
            name = "GetObject"
            key = f"{s['prefix']}/part-{s['next']:05d}.snappy.parquet"
            s["next"] += 1
            params = {"bucketName": s["bucket"], "Host": host, "key": key}
            resources = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{s['bucket']}/{key}"},
                         {"accountId": s["account"], "type": "AWS::S3::Bucket",
                          "ARN": f"arn:aws:s3:::{s['bucket']}"}]
            extra = {"bytesTransferredOut": rng.randint(50_000, 8_000_000)}
        record = {
            "eventVersion": "1.10",
            "userIdentity": s["userIdentity"],
            "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "s3.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": s["ip"],
            "userAgent": user_agent,
            "requestParameters": params,
            "responseElements": None,
            "additionalEventData": {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                **extra,
            },
            "requestID": rand(string.ascii_uppercase + string.digits, 16),
            "eventID": "%08x-%04x-4%03x-%04x-%012x" % (
                rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                rng.getrandbits(16) & 0x3FFF | 0x8000, rng.getrandbits(48)),
            "readOnly": True,
            "resources": resources,
            "eventType": "AwsApiCall",
            "managementEvent": False,
            "recipientAccountId": s["account"],
            "eventCategory": "Data",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": host},
        }
        out.write(json.dumps(record, separators=(",", ":")))
        out.write("\n")
