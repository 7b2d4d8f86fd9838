"""Renders fixtures/scenarios/README.md from the built fixtures and the case texts below."""

from framework import hms

CASES = [
    (
        "scope-escalation-aws",
        "1. Scope escalation in AWS",
        "A session grants itself more power: an IAM user key attaches a policy to its own user or "
        "creates an access key for its own user; a role session attaches or puts a policy on its own "
        "role (`resource.name` = `principal.name`, same kind: `user`/IAMUser or `role`/AssumedRole). "
        "Or a session chains (`sts:AssumeRole`, recorded as `lineage.child`) into an admin role — "
        "role ARN containing `admin` or `OrganizationAccountAccessRole` — and the child key then "
        "makes an admin-class call (`operation: admin`). Fire on the self-grant, or on the child's "
        "first admin-class call.",
    ),
    (
        "scope-escalation-okta",
        "2. Scope escalation in Okta",
        "An Okta session grants admin rights to its own user: `user.account.privilege.grant` or "
        "`group.user_membership.add` (to a group whose name marks it as admin) whose first target "
        "(`resource.id`) is the actor (`principal.id`). Grants to other users are administration, "
        "not escalation.",
    ),
    (
        "scope-escalation-k8s",
        "3. Scope escalation in Kubernetes",
        "A credential binds itself to `cluster-admin` (create `clusterrolebindings`/`rolebindings` "
        "whose `requestObject.roleRef.name` is cluster-admin), or a caller impersonates "
        "`system:admin` / group `system:masters` (`impersonatedUser`; scopes "
        "`impersonate:system:admin`, `group:system:masters`).",
    ),
    (
        "bulk-export",
        "4. Bulk export",
        "One session reads too much, too fast: ≥ 60 `s3:GetObject` in 5 min, or ≥ 600 MB of "
        "`bytes` (S3 `additionalEventData.bytesTransferredOut`) in 10 min; `GetSecretValue` on ≥ 12 "
        "distinct secrets (`resource.id`) in 5 min; `git.clone` of ≥ 25 distinct private "
        "repositories (`resource.name`) in 10 min with one token.",
    ),
    (
        "mfa-failures",
        "5. Repeated MFA failures in one session",
        "≥ 4 failed MFA verifications within 10 min in one session: Okta "
        "`user.mfa.okta_verify.deny_push` or `user.authentication.auth_via_mfa` with outcome "
        "failure; Entra sign-ins of one `sessionId` with `status.errorCode` 500121.",
    ),
    (
        "token-reuse",
        "6. Token reuse from another network",
        "A session's credential is used from a network outside its baseline (learnt from its first "
        "events): a new country or ASN (Okta), a new /24 with a new user agent (AWS), a new "
        "address outside the /24 (Kubernetes). Addresses inside the baseline /24 (NAT pools) and "
        "records an AWS service made on the session's behalf (`network.via_service`, no "
        "`network.ip`) are not reuse.",
    ),
    (
        "stale-privileged-session",
        "7. Stale privileged session",
        "A privileged AWS role session (role name contains `admin`, case-insensitive: "
        "`AWSReservedSSO_AdministratorAccess_…`, `platform-admin`) more than 1 h after "
        "`session.created_at` changes policy (`iam:PutRolePolicy`, `iam:AttachRolePolicy`), "
        "exports data (`dynamodb:ExportTableToPointInTime`) or deploys "
        "(`lambda:UpdateFunctionCode20150331v2`, `ecs:UpdateService`).",
    ),
    (
        "agent-drift",
        "8. Agent drift",
        "Sessions whose `sourceIdentity` names an agent (`agent=invoice-reconciler` → `agent.id` "
        "`invoice-reconciler`) act outside the agent's task manifest, or act after the task's "
        "completion marker. Manifest assumed here: `s3:GetObject` and `s3:ListObjects` "
        "(IAM `s3:ListBucket`) in bucket `invoices-2024`, `s3:PutObject` of "
        "`invoices-2024/reports/*`; done when it writes `invoices-2024/reports/done.json`.",
    ),
    (
        "kill-not-enforced",
        "9. Kill not enforced",
        "After a session is killed (here by the self-grant rule of cases 1 and 2), any further "
        "activity on it is a finding: the engine emits one `sessionguard.kill_not_enforced` per "
        "session, on its first event after the kill. A session chained from a killed session "
        "(issued by `AssumeRole` before the kill) inherits the kill when it first appears.",
    ),
    (
        "stale-duration-timer",
        "10. Privileged session past 8 hours (timer)",
        "A privileged session (an Okta session that opened the Admin Console or made admin "
        "changes; an AWS admin role session) still open 8 h after it started fires from a timer "
        "at start + 8 h, without an event of its own. Open means no logout and a sign of life "
        "in the 2 h before the due time: a session that went quiet ended without a record "
        "(idle timeout, lapsed credentials) and gets no decision. A timer fires when the clock of "
        "its session's source (its newest record, less the 20-minute grace) passes the due time, "
        "so the decision is emitted while processing the first record of that source more than "
        "20 minutes past it.",
    ),
    (
        "window-edges",
        "11. On the edges: window boundaries, thresholds, duration limits, case",
        "Events placed exactly where a reading of the rules could go either way, which the other "
        "cases avoid: a count whose first and last events are exactly one window apart (a window "
        "of 5 min holds the events less than 5 min older than the newest, so the first is out), "
        "a count exactly at its `gte` threshold (reached), a change exactly at a duration limit "
        "(not older than it) and one second past it, and a name written in another case than "
        "the one it must equal (text comparisons ignore ASCII case unless `cased`). The "
        "generator checks that the boundary cases really sit on the boundary: a closed window "
        "would answer otherwise.",
    ),
    (
        "workstation-drift",
        "12. A session continued from another device",
        "An Entra session (`sessionId`) learnt its device from its first sign-ins (`client.device`: "
        "`deviceDetail.deviceId`, else its display name, else `unregistered`), then signs in from "
        "another — a refresh token replayed from a machine Entra does not know, behind the owner's "
        "own egress, where the network checks see nothing. A browser update, a new address in the "
        "/24, a session on an unregistered machine from its start, and one user's two devices "
        "(two sessions) are not drift.",
    ),
]


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(fixtures):
    by_case = {}
    for fx in fixtures:
        by_case.setdefault(fx.rel.split("/")[0], []).append(fx)
    out = [HEADER]
    out.append("| file | day (UTC) | events | sessions | decisions |\n| --- | --- | --- | --- | --- |\n")
    for fx in fixtures:
        out.append(
            f"| [{fx.rel}]({fx.rel}) | {fx.day.isoformat()} | {len(fx.events)} | "
            f"{len({e.key for e in fx.events})} | {len(fx.expect)} |\n"
        )
    out.append(CONVENTIONS)
    for case, title, intent in CASES:
        out.append(f"\n## {title} — `{case}/`\n\n{intent}\n")
        for fx in by_case.get(case, []):
            name = fx.rel.split("/", 1)[1]
            out.append(f"\n### `{name}` — {fx.day.isoformat()}, {len(fx.events)} events\n\n{fx.summary}\n\n")
            out.append("| line | time (UTC) | session | expected decision | why |\n| --- | --- | --- | --- | --- |\n")
            for e in fx.expect:
                ev = e["ev"]
                who = fx.sessions.get(e["key"], "")
                why = e["why"]
                if e["kind"] == "timer":
                    why += f" (trigger: line {ev.line}, {hms(ev.time)}, session `{ev.key}`)"
                    when = f"due {hms(e['due'])}"
                else:
                    when = hms(ev.time)
                    held = e.get("decided_after")
                    later = fx.later_lines(e["key"], ev.line, held)
                    if held:
                        why += (f". Decided once event time passes {hms(held)} (the learning period "
                                f"could change until then)")
                    if later and case != "kill-not-enforced" and e["action"].startswith("revoke "):
                        why += (f". Later events of this session: {span(later)} — in enforce mode the "
                                f"engine adds `sessionguard.kill_not_enforced` at line {later[0]}")
                out.append(
                    f"| {ev.line} | {when} | `{e['key']}`<br>{cell(who)} | **{cell(e['intent'])}** → "
                    f"{e['action']}<br>`{e['rule']}` | {cell(why)} |\n"
                )
            for n in fx.nones:
                who = fx.sessions.get(n["key"], "")
                out.append(f"| — | — | `{n['key']}`<br>{cell(who)} | none | {cell(n['why'])} |\n")
    out.append(NOTES)
    return "".join(out)


def span(lines):
    if len(lines) == 1:
        return f"line {lines[0]}"
    if lines == list(range(lines[0], lines[-1] + 1)):
        return f"lines {lines[0]}–{lines[-1]}"
    if len(lines) <= 6:
        return "lines " + ", ".join(map(str, lines))
    return f"{len(lines)} events, lines {lines[0]}–{lines[-1]}"


HEADER = """# Scenario fixtures

Multi-session audit logs, in the vendors' own record formats, on which the shipped rule pack is
tested, with the ground truth: which session must get which decision at which line, and which
sessions must get none. Each case has an `attack*.jsonl` (the abuse) and a `benign*.jsonl` (a
lookalike that must not fire), or one `scenario.jsonl`; every file interleaves several
concurrent sessions in event-time order.

The files are written by `scripts/scenarios/generate.py` (Python standard library,
deterministic: running it again rewrites the same bytes) and checked by
`scripts/scenarios/check.py`, which runs `sessionguard normalize` on every file and verifies that
nothing is rejected, that there is one event per line, that each line's session key is the one
named here, and that event time never goes backwards; with `--replay` it also replays each file
with the rule pack and lists every decision that differs from the ground truth below.
`../scenarios.expected.json` holds the same ground truth in machine-readable form. This README is generated too: edit the case scripts, not this file.

## Files

"""

CONVENTIONS = """
## Conventions

- **Line** is the 1-based line of the file (one record per line; `normalize` prints one event per
  line, in order). **Session** is the key exactly as `normalize` prints it (`session.key`).
- **Thresholds** are the planned ones of the rule pack: S3 ≥ 60 GetObject / 5 min or ≥ 600 MB /
  10 min; ≥ 12 distinct secrets / 5 min; ≥ 25 distinct repositories cloned / 10 min; ≥ 4 MFA
  failures / 10 min; stale admin session > 1 h; privileged session duration > 8 h. "≥" is
  inclusive; windows are sliding on event time. Attacks cross the thresholds clearly, lookalikes
  stay under but near; no counted event sits on a window edge (the generator checks that a
  half-open and a closed window give the same answer), and the S3 bytes attack crosses 600 MB on
  the same object whether MB means 10^6 or 2^20 bytes.
- **Expected decision** names the intent, the action the pack answers with (revoke session,
  revoke credential, step up) and the id of the rule that must decide (an id ending in `*`
  names a family: any rule whose id starts with the rest). The rule for each intent is chosen
  in `scripts/scenarios/pack.py` from what each rule file is written to catch, not from the
  engine's output; `tests/scenarios.rs` checks session, line, rule and action of every decision.
  `sessionguard.kill_not_enforced` is the engine's own decision for activity on a session
  after an enforced kill (a revocation; a step-up does not kill): in the kill-not-enforced case
  it is listed as a row; elsewhere, when a revoked session keeps producing events after its
  decision, the "why" cell says at which line the engine would add it in enforce mode.
- **none** rows are sessions that must get no decision from any rule of the pack.
- **Days.** Each file has its own UTC day, increasing in path order (2024-10-01 for the first
  file). Ground truth is per file: replay each file on its own. Replaying the whole directory as
  one stream never moves event time backwards, but then the 8-hour duration rule also fires for
  privileged sessions left open in earlier files, once the next day's events pass their due time.
- Addresses: 198.51.100.0/24 is the company's office egress, 192.0.2.0/24 remote staff and CI
  runners, 203.0.113.0/24 attacker infrastructure, 10.0.0.0/8 inside VPCs and clusters. Account
  482915736014 is production, 215836470925 shared services, 615482093771 a member account.
"""

NOTES = """
## Notes for rule authors (what normalization gives, and what it does not)

- **Self-grants (AWS).** `iam:AttachUserPolicy`/`CreateAccessKey`: `resource {type: user, name:
  <userName>}` and `principal.name` = the IAM user name. `iam:AttachRolePolicy`/`PutRolePolicy`:
  `resource {type: role, name: <roleName>}` and, for role sessions, `principal.name` = the role
  name (the session issuer's `userName`). The policy ARN (or inline policy name) is in `scopes`;
  the inline policy document only in `raw.requestParameters.policyDocument`.
  `CreateAccessKey` records the new key as `lineage.child` (`aws:<account>:iam-key:AKIA…`), so
  a key minted by a session that is later killed inherits the kill when it is used.
- **Role chains.** `AssumeRole` responses give `lineage.child` keyed in the role's account
  (`aws:615482093771:sts:…` for a cross-account hop) and `lineage.child_role`. The child's own
  events carry no pointer to the parent: the join is the engine's. `AssumeRoleWithWebIdentity`
  records are keyed to the session they open (the issued `ASIA…` key).
- **Privileged role names.** There is no normalized "privileged" flag: match `principal.name` or
  `session.issuer` case-insensitively (`AWSReservedSSO_AdministratorAccess_…` has a capital A).
- **Resources outside IAM, S3, STS and Secrets Manager** are not normalized (Lambda, ECS,
  DynamoDB, Athena have no `resource`); match on `action.name`. Lambda's event names carry API
  versions (`lambda:UpdateFunctionCode20150331v2`).
- **S3.** `resource {type: object, name: <key>, container: <bucket>}`; `ListObjects` (the IAM
  action is `s3:ListBucket`; V2 listings also appear as `ListObjects`, with `list-type: 2`) is
  `type: bucket` with the prefix only in `raw.requestParameters.prefix`. `bytes` is
  `bytesTransferredOut` for every S3 event, so it is 0 for `PutObject`: upload volume
  (`bytesTransferredIn`) is not normalized.
- **Secrets.** `resource.id` is `secretId` as the caller wrote it — a name, a full ARN (with its
  random 6-character suffix) or a partial ARN — so one secret read both ways counts as two
  distinct values. The attack reads by ARN, the services by name.
- **Kubernetes RBAC.** The role a binding grants (`requestObject.roleRef.name`) and its subjects
  are not normalized; they exist only in `raw.requestObject`, and only when the audit policy logs
  RBAC writes at `Request`/`RequestResponse` level (these fixtures do; at `Metadata` level a
  binding to cluster-admin cannot be told from one to view). Cluster-scoped objects have no
  `resource.container`. Only `ResponseComplete` stages are in the files (audit policies usually
  omit `RequestReceived`; with it, each request would appear twice, the first time with outcome
  unknown).
- **Okta.** Self-grant is `resource.id` (the first target) = `principal.id`; the group or
  privilege granted is in `scopes`. `session.created_at` is set only by a successful
  `user.session.start` in the stream. Push denials are `user.mfa.okta_verify.deny_push` with
  outcome failure; each push is announced by a successful `system.push.send_factor_verify_push`.
- **Entra.** The sign-in error code is not a normalized field: `outcome` is failure with the
  `failureReason` text as reason (50074 and 500121 differ only there). A rule must read
  `raw.status.errorCode` in the Graph shape used here; Log Analytics rows carry it as
  `ResultType` (and `Status` as a JSON string), diagnostic exports as `properties.status`.
- **Athena and other services acting for a session** keep the session's key, with
  `network.via_service` = `athena.amazonaws.com`, no `network.ip`, and `client.user_agent` =
  `athena.amazonaws.com`: network and user-agent baselines must skip them.
- **Agents.** AWS allows only `[\\w+=,.@-]` in `SourceIdentity`, so agent platforms write
  `agent=<id>`; `agent:<id>` cannot appear in a real record. `lineage.source_identity` keeps the
  full value (`agent=invoice-reconciler`), `agent.id` the id (`invoice-reconciler`); `agent.task`
  is never set by the CloudTrail adapter, so the task comes from the rule's manifest. The
  broker's own `AssumeRole` record carries `agent.id` too (read from
  `requestParameters.sourceIdentity`), although it belongs to the broker's session: a drift rule
  must not count it as the agent acting.
"""
