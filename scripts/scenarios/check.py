#!/usr/bin/env python3
"""Checks the scenario fixtures against the normalizer.

    python3 scripts/scenarios/check.py [--bin PATH] [-v]

For every file: the file on disk is what generate.py writes now; `sessionguard normalize`
rejects nothing and prints one event per line; every line's session key is the one the ground
truth names; event time never goes backwards. `-v` prints the normalized event at every line
that carries an expected decision. The binary defaults to target/release/sessionguard (build it
first with `cargo build --release`). Python 3 standard library only.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import generate  # noqa: E402


def main():
    args = sys.argv[1:]
    verbose = "-v" in args
    binary = os.path.join(generate.ROOT, "target", "release", "sessionguard")
    if "--bin" in args:
        binary = args[args.index("--bin") + 1]
    failures = 0
    for fx in generate.build():
        path = os.path.join(generate.OUT, fx.rel)
        problems = []
        with open(path, encoding="utf-8") as f:
            if f.read() != fx.ndjson():
                problems.append("file differs from generate.py output (run generate.py)")
        run = subprocess.run([binary, "normalize", path], capture_output=True, text=True)
        if run.returncode != 0:
            problems.append(f"normalize exited {run.returncode}: {run.stderr.strip()}")
        if "rejected 0" not in run.stderr:
            problems.append("rejects: " + run.stderr.strip().replace("\n", " | "))
        events = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        if len(events) != len(fx.events):
            problems.append(f"{len(events)} events normalized, {len(fx.events)} written")
        previous = ""
        for ev, out in zip(fx.events, events):
            if out["session"]["key"] != ev.key:
                problems.append(f"line {ev.line}: session {out['session']['key']} != {ev.key}")
            if out["time"] < previous:
                problems.append(f"line {ev.line}: time {out['time']} before {previous}")
            previous = out["time"]
        status = "ok" if not problems else "FAIL"
        print(f"{status:4} {fx.rel}: {len(fx.events)} events, {len({e.key for e in fx.events})} sessions, "
              f"{len(fx.expect)} decisions expected")
        for p in problems[:10]:
            print("     " + p)
        failures += bool(problems)
        if verbose:
            for e in fx.expect:
                out = events[e["ev"].line - 1] if e["ev"].line <= len(events) else {}
                shown = {k: out.get(k) for k in ("time", "action", "outcome", "operation", "principal",
                                                 "resource", "bytes", "network", "scopes", "agent",
                                                 "lineage") if out.get(k) is not None}
                print(f"     line {e['ev'].line} [{e['intent']}] {e['key']}")
                print("       " + json.dumps(shown, ensure_ascii=False))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
