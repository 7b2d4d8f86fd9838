#!/usr/bin/env python3
"""Writes the multi-session scenario fixtures under fixtures/scenarios/ and their ground truth.

    python3 scripts/scenarios/generate.py          # (re)write every file
    python3 scripts/scenarios/check.py             # normalize them and compare with the truth

Deterministic: the same script writes byte-identical files. Each file gets its own UTC day, in
path order, so that replaying the whole directory as one stream never moves event time backwards
(see the README). Python 3 standard library only.
"""

import datetime as dt
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import case_agent  # noqa: E402
import case_binding  # noqa: E402
import case_bulk  # noqa: E402
import case_device  # noqa: E402
import case_edges  # noqa: E402
import case_kill  # noqa: E402
import case_mfa  # noqa: E402
import case_reuse  # noqa: E402
import case_scope  # noqa: E402
import case_stale  # noqa: E402
import case_workload  # noqa: E402
import readme  # noqa: E402
from framework import Fixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures", "scenarios")

FIRST_DAY = dt.date(2024, 10, 1)

FILES = {
    "agent-drift/attack.jsonl": case_agent.attack,
    "agent-drift/benign.jsonl": case_agent.benign,
    "bulk-export/attack-github.jsonl": case_bulk.github_attack,
    "bulk-export/attack-s3.jsonl": case_bulk.s3_attack,
    "bulk-export/attack-secrets.jsonl": case_bulk.secrets_attack,
    "bulk-export/benign-github.jsonl": case_bulk.github_benign,
    "bulk-export/benign-s3.jsonl": case_bulk.s3_benign,
    "bulk-export/benign-secrets.jsonl": case_bulk.secrets_benign,
    "kill-not-enforced/attack.jsonl": case_kill.attack,
    "kill-not-enforced/benign.jsonl": case_kill.benign,
    "mfa-failures/attack-entra.jsonl": case_mfa.entra_attack,
    "mfa-failures/attack-okta.jsonl": case_mfa.okta_attack,
    "mfa-failures/benign-entra.jsonl": case_mfa.entra_benign,
    "mfa-failures/benign-okta.jsonl": case_mfa.okta_benign,
    "scope-escalation-aws/attack.jsonl": case_scope.aws_attack,
    "scope-escalation-aws/benign.jsonl": case_scope.aws_benign,
    "scope-escalation-k8s/attack.jsonl": case_scope.k8s_attack,
    "scope-escalation-k8s/benign.jsonl": case_scope.k8s_benign,
    "scope-escalation-okta/attack.jsonl": case_scope.okta_attack,
    "scope-escalation-okta/benign.jsonl": case_scope.okta_benign,
    "stale-duration-timer/scenario.jsonl": case_stale.duration_scenario,
    "stale-privileged-session/attack.jsonl": case_stale.privileged_attack,
    "stale-privileged-session/benign.jsonl": case_stale.privileged_benign,
    "token-reuse/attack-aws.jsonl": case_reuse.aws_attack,
    "token-reuse/attack-k8s.jsonl": case_reuse.k8s_attack,
    "token-reuse/attack-okta.jsonl": case_reuse.okta_attack,
    "token-reuse/benign-aws.jsonl": case_reuse.aws_benign,
    "token-reuse/benign-k8s.jsonl": case_reuse.k8s_benign,
    "token-reuse/benign-okta.jsonl": case_reuse.okta_benign,
    "window-edges/aws.jsonl": case_edges.aws,
    "window-edges/okta.jsonl": case_edges.okta,
    "workload-region/attack.jsonl": case_workload.region_attack,
    "workload-region/benign.jsonl": case_workload.region_benign,
    "workload-runtime/attack-ec2.jsonl": case_workload.ec2_attack,
    "workload-runtime/attack-k8s.jsonl": case_workload.k8s_attack,
    "workload-runtime/benign-ec2.jsonl": case_workload.ec2_benign,
    "workload-runtime/benign-k8s.jsonl": case_workload.k8s_benign,
    "workstation-drift/attack.jsonl": case_device.attack,
    "workstation-drift/benign.jsonl": case_device.benign,
    "zz-workload-binding/attack.jsonl": case_binding.attack,
    "zz-workload-binding/benign.jsonl": case_binding.benign,
}


def build():
    fixtures = []
    only = os.environ.get("ONLY")
    for i, rel in enumerate(sorted(FILES)):
        if only and not rel.startswith(only):
            continue
        fx = Fixture(rel, FIRST_DAY + dt.timedelta(days=i))
        FILES[rel](fx)
        fx.finalize()
        first, last = fx.events[0].time, fx.events[-1].time
        if first.date() != fx.day or last.date() != fx.day:
            raise SystemExit(f"{rel}: events leave the file's day {fx.day}")
        fixtures.append(fx)
    return fixtures


def main():
    fixtures = build()
    for fx in fixtures:
        path = os.path.join(OUT, fx.rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(fx.ndjson())
    if os.environ.get("ONLY"):
        print("ONLY set: wrote the selected files, not README.md or scenarios.expected.json")
        return
    truth = {fx.rel: fx.ground_truth() for fx in fixtures}
    with open(os.path.join(ROOT, "fixtures", "scenarios.expected.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(truth, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(OUT, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(readme.render(fixtures))
    total = sum(len(fx.events) for fx in fixtures)
    print(f"wrote {len(fixtures)} files, {total} events, README.md and fixtures/scenarios.expected.json under {OUT}")


if __name__ == "__main__":
    main()
