#!/usr/bin/env python3
"""Checks the scenario fixtures against the normalizer.

    python3 scripts/scenarios/check.py [--bin PATH] [-v] [--replay [RULES]]

For every file: the file on disk is what generate.py writes now; `sessionguard normalize`
rejects nothing and prints one event per line; every line's session key is the one the ground
truth names; event time never goes backwards. `-v` prints the normalized event at every line
that carries an expected decision. The binary defaults to target/release/sessionguard (build it
first with `cargo build --release`). Python 3 standard library only.

`--replay [RULES]` also replays every file on its own with the rule pack (default `rules`) and
compares the decisions with the ground truth, by session and triggering line (timers: by
session and due time), then by rule and action. Where an attacked session keeps acting after a
kill, the engine's `sessionguard.kill_not_enforced` on its next event is expected too.
Differences are reported, not failed: the rule pack is tuned against them.
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
    rules = None
    if "--replay" in args:
        i = args.index("--replay")
        rules = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") else "rules"
    failures = 0
    differences = 0
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
        diff = compare(binary, rules, path, fx) if rules else []
        status = "FAIL" if problems else ("diff" if diff else "ok")
        print(f"{status:4} {fx.rel}: {len(fx.events)} events, {len({e.key for e in fx.events})} sessions, "
              f"{len(fx.expect)} decisions expected")
        for p in problems[:10]:
            print("     " + p)
        failures += bool(problems)
        differences += bool(diff)
        for d in diff:
            print("     " + d)
        if verbose:
            for e in fx.expect:
                out = events[e["ev"].line - 1] if e["ev"].line <= len(events) else {}
                shown = {k: out.get(k) for k in ("time", "action", "outcome", "operation", "principal",
                                                 "resource", "bytes", "network", "scopes", "agent",
                                                 "lineage") if out.get(k) is not None}
                print(f"     line {e['ev'].line} [{e['intent']}] {e['key']}")
                print("       " + json.dumps(shown, ensure_ascii=False))
    if rules:
        print(f"replay: {differences} file(s) whose decisions differ from the ground truth")
    sys.exit(1 if failures else 0)


def compare(binary, rules, path, fx):
    run = subprocess.run([binary, "replay", path, "--rules", rules, "--no-progress"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        return [f"replay exited {run.returncode}: {run.stderr.strip()[:300]}"]
    got = []
    for line in run.stdout.splitlines():
        d = json.loads(line)
        lines = [e["origin"]["line"] for e in d["evidence"]["events"] if "origin" in e]
        got.append({"key": d["session"]["key"], "time": d["time"], "rule": d["rule"]["id"],
                    "action": d["action"], "line": max(lines) if lines else None,
                    "reason": d["evidence"].get("reason", "")})
    want = []
    for e in fx.expect:
        if e["kind"] == "timer":
            want.append({"key": e["key"], "time": e["due"], "line": None, "intent": e["intent"],
                         "rule": e["rule"], "action": e["action"]})
            continue
        want.append({"key": e["key"], "time": None, "line": e["ev"].line, "intent": e["intent"],
                     "rule": e["rule"], "action": e["action"]})
    explicit = {(e["key"]) for e in fx.expect if e["intent"] == "sessionguard.kill_not_enforced"}
    for e in fx.expect:
        later = (fx.later_lines(e["key"], e["ev"].line, e.get("decided_after"))
                 if e["kind"] == "event" else [])
        kills = e["action"].startswith("revoke ")
        if (later and kills and e["key"] not in explicit
                and e["intent"] != "sessionguard.kill_not_enforced"):
            want.append({"key": e["key"], "time": None, "line": later[0],
                         "intent": "sessionguard.kill_not_enforced (activity after the kill)",
                         "rule": "sessionguard.kill_not_enforced", "action": "revoke credential"})
            explicit.add(e["key"])
    out = []
    used = set()
    for w in want:
        hit = None
        for i, g in enumerate(got):
            if i in used or g["key"] != w["key"]:
                continue
            if w["line"] is not None and g["line"] == w["line"]:
                hit = i
                break
            if w["time"] is not None and g["time"].startswith(w["time"].strftime("%Y-%m-%dT%H:%M:%S")):
                hit = i
                break
        if hit is None:
            where = f"line {w['line']}" if w["line"] else f"due {w['time'].strftime('%H:%M:%S')}"
            out.append(f"missing: {w['intent']} for {w['key']} at {where}")
        else:
            used.add(hit)
            g = got[hit]
            rule_ok = (g["rule"].startswith(w["rule"][:-1]) if w["rule"].endswith("*")
                       else g["rule"] == w["rule"])
            if not rule_ok or g["action"] != w["action"].replace(" ", "_"):
                out.append(f"wrong: {w['intent']} for {w['key']}: expected {w['rule']} → "
                           f"{w['action']}, got {g['rule']} → {g['action']}")
    for i, g in enumerate(got):
        if i not in used:
            out.append(f"unexpected: {g['rule']} for {g['key']} at line {g['line']} ({g['reason']})")
    return out


if __name__ == "__main__":
    main()
