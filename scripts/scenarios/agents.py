#!/usr/bin/env python3
"""Writes the task-grant fixtures under fixtures/agents/ and their ground truth.

    python3 scripts/scenarios/agents.py

Like generate.py (same Fixture framework, same record builders, one UTC day per file), for the
generic agent rules (rules/agents/task-grants.yml, docs/agents.md). Each `<case>/<name>.jsonl`
has its orchestrator's grants and completions beside it in `<name>.tasks.ndjson`, loaded with
`--tasks`; `fixtures/agents.expected.json` holds the ground truth, written from the grants in
the case script (case_agent_grants.py), never from the engine's output. `tests/agents.rs`
replays every file with its tasks, in time order and in shuffled delivery order.
Deterministic; Python 3 standard library only.
"""

import datetime as dt
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import case_agent_grants as c  # noqa: E402
from framework import Fixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures", "agents")
FIRST_DAY = dt.date(2024, 12, 2)

FILES = {
    "budget/attack.jsonl": c.budget_attack,
    "budget/benign.jsonl": c.budget_benign,
    "ended/attack.jsonl": c.ended_attack,
    "ended/benign.jsonl": c.ended_benign,
    "outside/attack.jsonl": c.outside_attack,
    "outside/benign.jsonl": c.outside_benign,
    "role/attack.jsonl": c.role_attack,
    "role/benign.jsonl": c.role_benign,
}


def build():
    out = []
    for i, rel in enumerate(sorted(FILES)):
        fx = Fixture(rel, FIRST_DAY + dt.timedelta(days=i))
        tasks = c.Tasks()
        FILES[rel](fx, tasks)
        fx.finalize()
        for ev in (fx.events[0], fx.events[-1]):
            if ev.time.date() != fx.day:
                raise SystemExit(f"{rel}: events leave the file's day {fx.day}")
        tasks.records.sort(key=lambda r: r["time"])
        out.append((fx, tasks))
    return out


def main():
    truth = {}
    for fx, tasks in build():
        path = os.path.join(OUT, fx.rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(fx.ndjson())
        with open(path[: -len(".jsonl")] + ".tasks.ndjson", "w", encoding="utf-8", newline="\n") as f:
            for rec in tasks.records:
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        t = fx.ground_truth()
        t["summary"] = fx.summary
        t["sessions"] = fx.sessions
        truth[fx.rel] = t
    with open(os.path.join(ROOT, "fixtures", "agents.expected.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(truth, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(truth)} files under {OUT} and fixtures/agents.expected.json")


if __name__ == "__main__":
    main()
