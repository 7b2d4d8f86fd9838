#!/usr/bin/env python3
"""Builds OCSF test data the way Amazon Security Lake stores it, with a writer that is not ours.

    scripts/ocsf-lake.py map CLOUDTRAIL_FILE...  > events.ocsf.jsonl
    scripts/ocsf-lake.py parquet EVENTS.ocsf.jsonl OUT.parquet
    scripts/ocsf-lake.py lake EVENTS.ocsf.jsonl --to DIR [--rows-per-file N] [--row-group N]
                              [--compression zstd|gzip|snappy|none|mixed]

`map` writes each CloudTrail record (NDJSON, or `{"Records": [...]}` envelopes) as an OCSF 1.1
API Activity (6003) record, the way Security Lake maps CloudTrail management events: the
operation and service from `eventName` / `eventSource`, the access key as the actor's
`credential_uid`, the session's creation time, MFA and issuer from `sessionContext`, the
source address and user agent, `errorCode` as a failure, resources from `resources[]`,
the request parameters and response elements as JSON strings in `api.request.data` and
`api.response.data`, and `metadata.product.name`
`CloudTrail`. Records with no `eventName` are left out (counted on stderr).

`parquet` writes NDJSON records as one Parquet file (one row group, zstd), the schema inferred.

`lake` writes OCSF NDJSON as Parquet with pyarrow (Apache Arrow's C++ writer, not the Rust one
sessionguard reads with) into Security Lake's layout,
`region=<cloud.region>/accountId=<cloud.account.uid>/eventDay=<YYYYMMDD>/<name>.parquet`, the
files named by a hash of their content (as the lake names objects at random, so name order is
not time order), each holding up to --rows-per-file rows in input order, split into row
groups of --row-group rows, compressed with --compression (`mixed`: zstd, gzip and snappy in
turn, file by file, so one lake exercises each codec). One schema is inferred over all records, so every file has the
same columns, as a lake table does. Needs pyarrow (`pip install pyarrow`).
"""

import argparse
import hashlib
import json
import os
import sys
from datetime import datetime, timezone


def records(path):
    """CloudTrail records of a file: NDJSON lines, each a record or a Records envelope."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        while i < len(text) and text[i] in " \t\r\n,[]":
            i += 1
        if i >= len(text):
            break
        value, i = decoder.raw_decode(text, i)
        if isinstance(value, dict) and isinstance(value.get("Records"), list):
            yield from value["Records"]
        elif isinstance(value, dict):
            yield value


def epoch_ms(rfc3339):
    t = datetime.strptime(rfc3339.replace("Z", "+00:00")[:19], "%Y-%m-%dT%H:%M:%S")
    return int(t.replace(tzinfo=timezone.utc).timestamp() * 1000)


READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Lookup", "Search", "Select")


def activity(event_name):
    """OCSF API Activity's activity_id: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other."""
    if event_name.startswith(READ_PREFIXES):
        return 2, "Read"
    if event_name.startswith(("Create", "Put", "Run", "Start", "Add", "Attach")):
        return 1, "Create"
    if event_name.startswith(("Delete", "Remove", "Detach", "Terminate", "Stop")):
        return 4, "Delete"
    if event_name.startswith(("Update", "Modify", "Set", "Change", "Enable", "Disable")):
        return 3, "Update"
    return 99, "Other"


def to_ocsf(r):
    """One CloudTrail record as OCSF 1.1 API Activity."""
    identity = r.get("userIdentity") or {}
    context = identity.get("sessionContext") or {}
    attributes = context.get("attributes") or {}
    issuer = context.get("sessionIssuer") or {}
    account = identity.get("accountId") or r.get("recipientAccountId")
    act_id, act_name = activity(r["eventName"])
    failed = bool(r.get("errorCode"))
    user = {
        "type": identity.get("type"),
        "uid": identity.get("arn"),
        "uid_alt": identity.get("principalId"),
        "name": identity.get("userName") or issuer.get("userName"),
        "credential_uid": identity.get("accessKeyId"),
        "account": {"uid": account} if account else None,
    }
    session = None
    if attributes or issuer:
        session = {
            "created_time": epoch_ms(attributes["creationDate"]) if attributes.get("creationDate") else None,
            "is_mfa": attributes.get("mfaAuthenticated") == "true" if "mfaAuthenticated" in attributes else None,
            "issuer": issuer.get("arn"),
        }
    out = {
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": act_id,
        "activity_name": act_name,
        "type_uid": 600300 + act_id,
        "severity_id": 1,
        "time": epoch_ms(r["eventTime"]),
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "status_detail": r.get("errorMessage") or r.get("errorCode"),
        "metadata": {
            "version": "1.1.0",
            "uid": r.get("eventID"),
            "product": {"name": "CloudTrail", "vendor_name": "AWS", "version": r.get("eventVersion")},
        },
        "cloud": {"provider": "AWS", "region": r.get("awsRegion"), "account": {"uid": account}},
        "api": {
            "operation": r["eventName"],
            "service": {"name": r.get("eventSource")},
            "request": {
                "uid": r.get("requestID"),
                "data": json.dumps(r["requestParameters"]) if r.get("requestParameters") else None,
            },
            "response": {
                "error": r.get("errorCode") if failed else None,
                "data": json.dumps(r["responseElements"]) if r.get("responseElements") else None,
            },
        },
        "actor": {"user": user, "session": session, "invoked_by": identity.get("invokedBy")},
        "src_endpoint": {"ip": r.get("sourceIPAddress")},
        "http_request": {"user_agent": r.get("userAgent")},
        "resources": [
            {"uid": x.get("ARN"), "type": x.get("type"), "account_uid": x.get("accountId")}
            for x in r.get("resources") or []
        ]
        or None,
    }
    return prune(out)


def prune(value):
    """Leaves out nulls and objects that end up empty, as a writer with no value leaves them."""
    if isinstance(value, dict):
        kept = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def map_cloudtrail(paths):
    mapped = skipped = 0
    out = sys.stdout
    for path in paths:
        for r in records(path):
            if not isinstance(r.get("eventName"), str) or "eventTime" not in r:
                skipped += 1
                continue
            out.write(json.dumps(to_ocsf(r), separators=(",", ":")) + "\n")
            mapped += 1
    print(f"mapped {mapped} CloudTrail records to OCSF, left out {skipped}", file=sys.stderr)


CODECS = ["zstd", "gzip", "snappy"]


def lake(source, to, rows_per_file, row_group, compression):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(source, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        sys.exit(f"{source}: no records")
    schema = pa.Table.from_pylist(rows).schema
    partitions = {}
    for row in rows:
        cloud = row.get("cloud") or {}
        day = datetime.fromtimestamp(row["time"] / 1000, tz=timezone.utc).strftime("%Y%m%d")
        key = (cloud.get("region", "unknown"), (cloud.get("account") or {}).get("uid", "unknown"), day)
        partitions.setdefault(key, []).append(row)
    files = 0
    for (region, account, day), part in sorted(partitions.items()):
        directory = os.path.join(to, f"region={region}", f"accountId={account}", f"eventDay={day}")
        os.makedirs(directory, exist_ok=True)
        for start in range(0, len(part), rows_per_file):
            chunk = part[start : start + rows_per_file]
            table = pa.Table.from_pylist(chunk, schema=schema)
            name = hashlib.sha256(json.dumps(chunk).encode()).hexdigest()[:32]
            codec = CODECS[files % len(CODECS)] if compression == "mixed" else compression
            pq.write_table(
                table,
                os.path.join(directory, f"{name}.parquet"),
                row_group_size=row_group,
                compression=codec,
            )
            files += 1
    print(f"wrote {len(rows)} rows in {files} Parquet files under {to}", file=sys.stderr)


def single(source, out):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(source, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    pq.write_table(pa.Table.from_pylist(rows), out, compression="zstd")
    print(f"wrote {len(rows)} rows to {out}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("map", help="CloudTrail records to OCSF API Activity NDJSON")
    m.add_argument("paths", nargs="+")
    p = commands.add_parser("parquet", help="NDJSON records to one Parquet file")
    p.add_argument("source")
    p.add_argument("out")
    k = commands.add_parser("lake", help="OCSF NDJSON to a Security Lake-shaped Parquet directory")
    k.add_argument("source")
    k.add_argument("--to", required=True)
    k.add_argument("--rows-per-file", type=int, default=5000)
    k.add_argument("--row-group", type=int, default=1000)
    k.add_argument("--compression", default="zstd", choices=["zstd", "gzip", "snappy", "none", "mixed"])
    args = parser.parse_args()
    if args.command == "map":
        map_cloudtrail(args.paths)
    elif args.command == "parquet":
        single(args.source, args.out)
    else:
        lake(args.source, args.to, args.rows_per_file, args.row_group, args.compression)


if __name__ == "__main__":
    main()
