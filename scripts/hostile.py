#!/usr/bin/env python3
"""Writes fixtures/hostile/: broken input that must cost only itself (issue 11).

Each file holds 20 valid CloudTrail records and one broken stretch; tests/hostile.rs replays
every file and asserts the 20 records are kept and the stretch is one reject carrying its bytes
(`not_json`; `invalid_field` for the `odd-number-*` files, whose byte counts are out of range).
The cases that need the file system (a truncated gzip, a FIFO, a dangling symlink, an unreadable
file) are made by the test itself. Deterministic.

Usage: scripts/hostile.py
"""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hostile")


def record(i):
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAHOSTILE", "accountId": "111122223333",
                         "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice",
                         "accessKeyId": "AKIAHOSTILEEXAMPLE01"},
        "eventTime": f"2026-11-20T10:{i // 60:02d}:{i % 60:02d}Z", "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.17.0", "requestParameters": None, "responseElements": None,
        "eventID": f"00000000-0000-4000-8000-{i:012d}", "readOnly": True, "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }


def get_object(i, bytes_out):
    """An S3 read whose byte count is written as `bytes_out` (JSON text, not checked here)."""
    r = record(i)
    r.update(eventName="GetObject", requestParameters={"bucketName": "finance", "key": "q3.csv"},
             additionalEventData={"bytesTransferredOut": "@BYTES@"})
    return json.dumps(r).replace('"@BYTES@"', bytes_out)


def lines(records):
    return "".join(json.dumps(r) + "\n" for r in records)


def pretty(records):
    return "".join(json.dumps(r, indent=2) + "\n" for r in records)


def main():
    os.makedirs(ROOT, exist_ok=True)
    rs = [record(i) for i in range(20)]
    cases = {
        # NDJSON whose first line is garbage, NUL bytes, or cut short.
        "ndjson-garbage-first-line.jsonl": "this is not json at all\n" + lines(rs),
        "ndjson-nul-first-line.jsonl": "\0" * 4096 + "\n" + lines(rs),
        "ndjson-truncated-first-line.jsonl": lines(rs[:1])[:-40] + "\n" + lines(rs),
        # Garbage appended to a valid record's line: the record is kept, the garbage rejected.
        "ndjson-garbage-after-record.jsonl": lines(rs[:10]).rstrip("\n") + "GARBAGE\n" + lines(rs[10:]),
        # A syntax error in the 5th of concatenated pretty-printed records (21 written).
        "pretty-syntax-error.json": pretty(rs[:4]) + '{\n  "eventVersion": "1.09",\n  "oops": ,\n  "x": 1\n}\n' + pretty(rs[4:]),
        # One broken element in an array and in CloudTrail envelopes, one line and pretty.
        "array-broken-element.json": "[" + ",".join(json.dumps(r) for r in rs[:10]) + ',{"broken": ,}, ' + ",".join(json.dumps(r) for r in rs[10:]) + "]\n",
        "envelope-broken-element.json": '{"Records":[' + ",".join(json.dumps(r) for r in rs[:7]) + ',{"broken": ,},' + ",".join(json.dumps(r) for r in rs[7:]) + "]}\n",
        # A record and garbage that ends in a brace, on one line.
        "ndjson-garbage-ending-in-brace.jsonl": lines(rs[:10]).rstrip("\n") + " x}\n" + lines(rs[10:]),
        # Byte counts the engine cannot sum exactly: the record is an invalid_field reject.
        "odd-number-huge.jsonl": lines(rs[:10]) + get_object(99, "1e999999") + "\n" + lines(rs[10:]),
        "odd-number-negative.jsonl": lines(rs[:10]) + get_object(99, "-5") + "\n" + lines(rs[10:]),
        "odd-number-past-2-53.jsonl": lines(rs[:10]) + get_object(99, "1.8e22") + "\n" + lines(rs[10:]),
        "envelope-pretty-broken-element.json": '{\n  "Records": [\n' + ",\n".join(json.dumps(r, indent=2) for r in rs[:15]) + ',\n{"broken": ,},\n' + ",\n".join(json.dumps(r, indent=2) for r in rs[15:]) + "\n  ]\n}\n",
    }
    for name, text in cases.items():
        with open(os.path.join(ROOT, name), "w", newline="") as f:
            f.write(text)


if __name__ == "__main__":
    main()
