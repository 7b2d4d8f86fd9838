"""Agents bound to their task by task grants (docs/agents.md), one case per generic rule.

Every run of an agent is a role session issued by the agent platform's broker with
`SourceIdentity` `agent=<agent id>,task=<task id>` (AWS allows `[\\w+=,.@-]` there), so every
record of the run and of any role it chains into names the agent and the task. The
orchestrator's grants and completions are task records written beside each file
(`<file>.tasks.ndjson`), each placed on the file's day.

The ground truth is written here from what each grant allows, independently of the engine:
which record first steps outside its grant, which first acts after the completion or expiry,
which call first exceeds a budget (counted here), which AssumeRole names a role the grant does
not list.
"""

import datetime as dt

from common import NODE_SDK_UA, BOTO3_UA, PROD, SHARED, MEMBER, cli_mac_ua
from vendors import RoleSession, ct_assume_role, ct_event, s3_list_event, s3_object_event

AGENT_UA = "[" + BOTO3_UA.replace("cfg/retry-mode#legacy", "cfg/retry-mode#standard") + " langgraph/0.2.39]"
AGENT_IP = "10.20.3.71"
BROKER_IP = "10.20.1.15"


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Tasks:
    """The orchestrator's task records for one file."""

    def __init__(self):
        self.records = []

    def grant(self, t, agent, task, *, objective, actions, resources, roles, ttl=None, budget=None):
        rec = {
            "type": "sessionguard.task.grant",
            "time": iso(t),
            "agent": agent,
            "task": task,
            "objective": objective,
            "allow": {"actions": actions, "resources": resources, "roles": roles},
        }
        if ttl:
            rec["ttl"] = ttl
        if budget:
            rec["budget"] = budget
        self.records.append(rec)

    def complete(self, t, agent, task):
        self.records.append({"type": "sessionguard.task.complete", "time": iso(t), "agent": agent, "task": task})


def broker(fx):
    b = RoleSession(SHARED, "agent-platform-broker", "ecs-task-7a41c09e2d55", fx.at("07:30:00"), seed="broker")
    fx.who(b.session_key, "role `agent-platform-broker` (the agent platform; issues one role session per run)")
    return b


def role_arn(role, account=PROD):
    return f"arn:aws:iam::{account}:role/{role}"


def run(fx, brk, clock, agent, task, run_id):
    """The broker issues the run's role session with the agent and task in SourceIdentity."""
    ident = f"agent={agent},task={task}"
    child = RoleSession(PROD, f"agent-{agent}", f"{agent}-run-{run_id}", fx.at(clock),
                        source_identity=ident, duration=3600)
    fx.add(ct_assume_role(brk, fx.at(clock), child, ip=BROKER_IP, ua=NODE_SDK_UA, source_identity=ident),
           brk.session_key)
    fx.who(child.session_key, f"run {run_id} of agent `{agent}` for task `{task}` (`sourceIdentity` {ident})")
    return child


def get(fx, s, t, bucket, key, size=120_000):
    return fx.add(s3_object_event(s, t, "GetObject", bucket, key, ip=AGENT_IP, ua=AGENT_UA, size=size),
                  s.session_key)


def put(fx, s, t, bucket, key, size=40_000):
    return fx.add(s3_object_event(s, t, "PutObject", bucket, key, ip=AGENT_IP, ua=AGENT_UA, size=size),
                  s.session_key)


def delete(fx, s, t, bucket, key):
    return fx.add(s3_object_event(s, t, "DeleteObject", bucket, key, ip=AGENT_IP, ua=AGENT_UA), s.session_key)


def lst(fx, s, t, bucket, prefix):
    return fx.add(s3_list_event(s, t, bucket, prefix, ip=AGENT_IP, ua=AGENT_UA), s.session_key)


def person(fx, clock, bucket, key):
    hr = RoleSession(PROD, "AWSReservedSSO_FinanceAnalyst_5c1e9a7b3d20f846", "m.lindqvist@northwind.example",
                     fx.at("07:45:00"), duration=28800, path="aws-reserved/sso.amazonaws.com/")
    fx.who(hr.session_key, "SSO FinanceAnalyst of m.lindqvist (a person, no agent)")
    fx.add(s3_object_event(hr, fx.at(clock), "GetObject", bucket, key, ip="198.51.100.57",
                           ua="[" + cli_mac_ua("s3.cp") + "]", size=2_480_112), hr.session_key)
    fx.quiet(hr.session_key, "reads the same buckets as the agents, but is a person: no grant binds it")


LEDGER = dict(
    objective="Export November's ledger entries and write the reconciliation extract",
    actions=["s3:ListObjects", "s3:GetObject", "s3:PutObject"],
    resources=["ledger-exports", "ledger-exports/2024/11/*", "ledger-exports/out/*"],
    roles=[role_arn("agent-ledger-sync")],
)


def ledger_reads(fx, s, t, n):
    lst(fx, s, t, "ledger-exports", "2024/11/")
    for i in range(n):
        t += dt.timedelta(seconds=2 + i % 3)
        get(fx, s, t, "ledger-exports", f"2024/11/ledger-{i:03d}.parquet")
    return t


# -- outside the grant -------------------------------------------------------------------------

def outside_attack(fx, tasks):
    fx.summary = (
        "Run 1207 of `ledger-sync` reads its ledger files, then reads `hr-payroll` (a bucket its "
        "grant does not name: outside by resource). Run 311 of `doc-indexer` deletes an object "
        "in the bucket it may read (outside by action). A finance analyst reads hr-payroll too."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "ledger-sync", "ls-1207", **LEDGER)
    r = run(fx, brk, "09:00:00", "ledger-sync", "ls-1207", 1207)
    t = ledger_reads(fx, r, fx.at("09:00:03"), 6)
    ev = get(fx, r, t + dt.timedelta(seconds=20), "hr-payroll", "2024/11/salaries-eu.csv", 2_480_112)
    fx.fire(ev, "agent acts outside its task grant", "revoke session",
            "GetObject on hr-payroll/2024/11/salaries-eu.csv: the grant of task ls-1207 allows "
            "ledger-exports only")
    get(fx, r, t + dt.timedelta(seconds=23), "hr-payroll", "2024/11/salaries-us.csv", 3_117_408)

    tasks.grant(fx.at("09:09:00"), "doc-indexer", "di-311",
                objective="Index the product manuals for search",
                actions=["s3:ListObjects", "s3:GetObject"],
                resources=["product-docs", "product-docs/manuals/*"],
                roles=[role_arn("agent-doc-indexer")])
    d = run(fx, brk, "09:10:00", "doc-indexer", "di-311", 311)
    lst(fx, d, fx.at("09:10:02"), "product-docs", "manuals/")
    get(fx, d, fx.at("09:10:05"), "product-docs", "manuals/router-x200.pdf")
    ev = delete(fx, d, fx.at("09:10:09"), "product-docs", "manuals/router-x200.pdf")
    fx.fire(ev, "agent acts outside its task grant", "revoke session",
            "DeleteObject: the grant of task di-311 allows ListObjects and GetObject only")
    person(fx, "09:05:30", "hr-payroll", "2024/11/salaries-eu.csv")
    fx.quiet(brk.session_key, "issues the runs into the roles their grants name")


def outside_benign(fx, tasks):
    fx.summary = (
        "Run 1210 of `ledger-sync` does exactly its task (list, read, write its extract). Agent "
        "`legacy-bot`, which has no grant at all, reads hr-payroll: agents without grants are "
        "not governed by the grant rules (docs/agents.md). A finance analyst reads hr-payroll."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "ledger-sync", "ls-1210", **LEDGER)
    r = run(fx, brk, "09:00:00", "ledger-sync", "ls-1210", 1210)
    t = ledger_reads(fx, r, fx.at("09:00:03"), 8)
    put(fx, r, t + dt.timedelta(seconds=15), "ledger-exports", "out/reconciliation-2024-11.csv")
    fx.quiet(r.session_key, "only granted actions on granted resources")
    legacy = run(fx, brk, "09:20:00", "legacy-bot", "nightly", 77)
    get(fx, legacy, fx.at("09:20:04"), "hr-payroll", "2024/11/headcount.csv")
    fx.quiet(legacy.session_key, "an agent with no grant at all: not governed by grants")
    person(fx, "09:05:30", "hr-payroll", "2024/11/salaries-eu.csv")
    fx.quiet(brk.session_key, "issues the runs")


# -- after completion or expiry ----------------------------------------------------------------

CLAIMS = dict(
    objective="Triage the new claims of queue EU-7",
    actions=["s3:ListObjects", "s3:GetObject", "s3:PutObject"],
    resources=["claims-inbox", "claims-inbox/eu-7/*", "claims-triage/eu-7/*"],
    roles=[role_arn("agent-claims-triage")],
)


def ended_attack(fx, tasks):
    fx.summary = (
        "Run 88 of `claims-triage` triages its queue; the orchestrator completes task ct-88; "
        "40 s later the run reads another claim (acting after completion). Run 5 of "
        "`ticket-summarizer` has a 30-minute grant and is still reading tickets 45 minutes in "
        "(acting after expiry)."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "claims-triage", "ct-88", **CLAIMS)
    r = run(fx, brk, "09:00:00", "claims-triage", "ct-88", 88)
    lst(fx, r, fx.at("09:00:02"), "claims-inbox", "eu-7/")
    for i in range(4):
        get(fx, r, fx.at(f"09:00:{5 + 3 * i:02d}"), "claims-inbox", f"eu-7/claim-{5100 + i}.json", 8_000)
    put(fx, r, fx.at("09:00:20"), "claims-triage", "eu-7/triage-5100-5103.json", 2_000)
    tasks.complete(fx.at("09:00:25"), "claims-triage", "ct-88")
    ev = get(fx, r, fx.at("09:01:05"), "claims-inbox", "eu-7/claim-5104.json", 8_000)
    fx.fire(ev, "agent acts after its task ended", "revoke session",
            "GetObject 40 s after task ct-88 was completed (09:00:25)")
    get(fx, r, fx.at("09:01:09"), "claims-inbox", "eu-7/claim-5105.json", 8_000)

    tasks.grant(fx.at("09:09:30"), "ticket-summarizer", "ts-5", ttl="30m",
                objective="Summarize this week's escalated tickets",
                actions=["s3:ListObjects", "s3:GetObject"],
                resources=["support-tickets", "support-tickets/escalated/*"],
                roles=[role_arn("agent-ticket-summarizer")])
    s = run(fx, brk, "09:10:00", "ticket-summarizer", "ts-5", 5)
    lst(fx, s, fx.at("09:10:03"), "support-tickets", "escalated/")
    get(fx, s, fx.at("09:25:00"), "support-tickets", "escalated/T-88120.json", 15_000)
    ev = get(fx, s, fx.at("09:55:00"), "support-tickets", "escalated/T-88121.json", 15_000)
    fx.fire(ev, "agent acts after its task ended", "revoke session",
            "GetObject at 09:55, after the grant of task ts-5 expired (09:09:30 + 30 min)")
    fx.quiet(brk.session_key, "issues the runs while their grants are in force")


def ended_benign(fx, tasks):
    fx.summary = (
        "Run 90 of `claims-triage` triages its queue and stops before task ct-90 is completed. "
        "The agent's next task, ct-91, is granted afterwards and run 91 works under it: a new "
        "grant of the same agent is not confused with the completed one. `ticket-summarizer` "
        "finishes within its 30-minute grant."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "claims-triage", "ct-90", **CLAIMS)
    r = run(fx, brk, "09:00:00", "claims-triage", "ct-90", 90)
    lst(fx, r, fx.at("09:00:02"), "claims-inbox", "eu-7/")
    for i in range(4):
        get(fx, r, fx.at(f"09:00:{5 + 3 * i:02d}"), "claims-inbox", f"eu-7/claim-{5200 + i}.json", 8_000)
    put(fx, r, fx.at("09:00:20"), "claims-triage", "eu-7/triage-5200-5203.json", 2_000)
    tasks.complete(fx.at("09:00:25"), "claims-triage", "ct-90")
    fx.quiet(r.session_key, "stops before its task is completed")

    tasks.grant(fx.at("09:04:00"), "claims-triage", "ct-91", **CLAIMS)
    r2 = run(fx, brk, "09:05:00", "claims-triage", "ct-91", 91)
    lst(fx, r2, fx.at("09:05:02"), "claims-inbox", "eu-7/")
    get(fx, r2, fx.at("09:05:06"), "claims-inbox", "eu-7/claim-5204.json", 8_000)
    fx.quiet(r2.session_key, "works under its own, new grant")

    tasks.grant(fx.at("09:09:30"), "ticket-summarizer", "ts-6", ttl="30m",
                objective="Summarize this week's escalated tickets",
                actions=["s3:ListObjects", "s3:GetObject"],
                resources=["support-tickets", "support-tickets/escalated/*"],
                roles=[role_arn("agent-ticket-summarizer")])
    s = run(fx, brk, "09:10:00", "ticket-summarizer", "ts-6", 6)
    lst(fx, s, fx.at("09:10:03"), "support-tickets", "escalated/")
    get(fx, s, fx.at("09:38:00"), "support-tickets", "escalated/T-88130.json", 15_000)
    fx.quiet(s.session_key, "finishes within its 30-minute grant")
    fx.quiet(brk.session_key, "issues the runs while their grants are in force")


# -- budgets -----------------------------------------------------------------------------------

REPORT_CALLS = 25
TAGGER_RESOURCES = 10


def budget_attack(fx, tasks):
    fx.summary = (
        f"Run 3 of `report-builder` has a budget of {REPORT_CALLS} calls and makes 32: the call "
        f"that exceeds it (the {REPORT_CALLS + 1}st of the run's session, counted here) ends the "
        f"session. Run 41 of `image-tagger` may touch {TAGGER_RESOURCES} distinct objects and "
        "reads a 12th different one."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "report-builder", "rb-3",
                objective="Build the weekly sales report", budget={"calls": REPORT_CALLS},
                actions=["s3:ListObjects", "s3:GetObject", "s3:PutObject"],
                resources=["sales-data", "sales-data/weekly/*", "reports/weekly/*"],
                roles=[role_arn("agent-report-builder")])
    r = run(fx, brk, "09:00:00", "report-builder", "rb-3", 3)
    calls = [lst(fx, r, fx.at("09:00:02"), "sales-data", "weekly/")]
    t = fx.at("09:00:04")
    for i in range(31):
        t += dt.timedelta(seconds=2)
        calls.append(get(fx, r, t, "sales-data", f"weekly/part-{i % 8:02d}.csv", 50_000))
    ev = calls[REPORT_CALLS]  # the (budget + 1)st call, in time order
    fx.fire(ev, "agent exceeds its task grant's budget", "revoke session",
            f"call {REPORT_CALLS + 1} of the run; the grant of task rb-3 allows {REPORT_CALLS}")

    tasks.grant(fx.at("09:19:00"), "image-tagger", "it-41",
                objective="Tag the new catalogue images", budget={"resources": TAGGER_RESOURCES, "calls": 100},
                actions=["s3:GetObject"], resources=["catalogue-images/new/*"],
                roles=[role_arn("agent-image-tagger")])
    g = run(fx, brk, "09:20:00", "image-tagger", "it-41", 41)
    seen = []
    t = fx.at("09:20:02")
    for i in range(12):
        # every object read twice before the next (re-reads do not count again)
        for _ in range(2):
            t += dt.timedelta(seconds=1)
            ev = get(fx, g, t, "catalogue-images", f"new/IMG-{7000 + i}.jpg", 900_000)
            if f"IMG-{7000 + i}" not in seen:
                seen.append(f"IMG-{7000 + i}")
                if len(seen) == TAGGER_RESOURCES + 1:
                    fx.fire(ev, "agent exceeds its task grant's budget", "revoke session",
                            f"the {TAGGER_RESOURCES + 1}th distinct object; the grant allows {TAGGER_RESOURCES}")
    fx.quiet(brk.session_key, "issues the runs")


def budget_benign(fx, tasks):
    fx.summary = (
        f"Run 4 of `report-builder` makes {REPORT_CALLS} calls, exactly its budget; run 42 of "
        f"`image-tagger` reads {TAGGER_RESOURCES} distinct objects, some of them again."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "report-builder", "rb-4",
                objective="Build the weekly sales report", budget={"calls": REPORT_CALLS},
                actions=["s3:ListObjects", "s3:GetObject", "s3:PutObject"],
                resources=["sales-data", "sales-data/weekly/*", "reports/weekly/*"],
                roles=[role_arn("agent-report-builder")])
    r = run(fx, brk, "09:00:00", "report-builder", "rb-4", 4)
    lst(fx, r, fx.at("09:00:02"), "sales-data", "weekly/")
    t = fx.at("09:00:04")
    for i in range(REPORT_CALLS - 1):
        t += dt.timedelta(seconds=2)
        get(fx, r, t, "sales-data", f"weekly/part-{i % 8:02d}.csv", 50_000)
    fx.quiet(r.session_key, f"{REPORT_CALLS} calls: at its budget, not over it")

    tasks.grant(fx.at("09:19:00"), "image-tagger", "it-42",
                objective="Tag the new catalogue images", budget={"resources": TAGGER_RESOURCES, "calls": 100},
                actions=["s3:GetObject"], resources=["catalogue-images/new/*"],
                roles=[role_arn("agent-image-tagger")])
    g = run(fx, brk, "09:20:00", "image-tagger", "it-42", 42)
    t = fx.at("09:20:02")
    for i in range(TAGGER_RESOURCES):
        for _ in range(3):
            t += dt.timedelta(seconds=1)
            get(fx, g, t, "catalogue-images", f"new/IMG-{7100 + i}.jpg", 900_000)
    fx.quiet(g.session_key, f"{TAGGER_RESOURCES} distinct objects, 30 calls")
    fx.quiet(brk.session_key, "issues the runs")


# -- role chaining -----------------------------------------------------------------------------

PLANNER = dict(
    objective="Plan the EC2 rightsizing for the production account",
    actions=["s3:ListObjects", "s3:GetObject", "ec2:DescribeInstances"],
    resources=["inventory-exports", "inventory-exports/*"],
)


def assume(fx, parent, clock, child):
    return fx.add(ct_assume_role(parent, fx.at(clock), child, ip=AGENT_IP, ua=AGENT_UA,
                                 source_identity=parent.source_identity), parent.session_key)


def role_attack(fx, tasks):
    fx.summary = (
        "Run 12 of `infra-planner` chains into `readonly-inventory` (its grant names it), then "
        "into `OrganizationAccountAccessRole` of a member account, which the grant does not "
        "name. The chained admin session inherits the kill; its first call is reported as "
        "activity after the kill."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "infra-planner", "ip-12",
                roles=[role_arn("agent-infra-planner"), role_arn("readonly-inventory")], **PLANNER)
    r = run(fx, brk, "09:00:00", "infra-planner", "ip-12", 12)
    ro = RoleSession(PROD, "readonly-inventory", "infra-planner-12-ro", fx.at("09:00:10"),
                     source_identity=r.source_identity, seed="ro")
    assume(fx, r, "09:00:10", ro)
    fx.who(ro.session_key, "`readonly-inventory` chained from run 12 (named in its grant)")
    get(fx, ro, fx.at("09:00:14"), "inventory-exports", "ec2/2024-11-30.json", 300_000)
    fx.quiet(ro.session_key, "a role the grant names, used within the grant")
    admin = RoleSession(MEMBER, "OrganizationAccountAccessRole", "infra-planner-12-x", fx.at("09:00:40"),
                        source_identity=r.source_identity, seed="admin")
    ev = assume(fx, r, "09:00:40", admin)
    fx.fire(ev, "agent chains into a role its grant does not name", "revoke session",
            "AssumeRole into OrganizationAccountAccessRole of the member account; the grant of "
            "task ip-12 names agent-infra-planner and readonly-inventory")
    fx.who(admin.session_key, "`OrganizationAccountAccessRole` chained from run 12 (not in its grant)")
    kill = fx.add(ct_event(admin, fx.at("09:00:44"), "iam.amazonaws.com", "ListUsers", ip=AGENT_IP, ua=AGENT_UA,
                           req={}, read_only=True), admin.session_key)
    fx.fire(kill, "sessionguard.kill_not_enforced", "revoke credential",
            "the chained session inherits the kill of run 12 (decided on line {issued})",
            refs={"issued": ev})
    fx.quiet(brk.session_key, "issues the run into the role its grant names")


def role_benign(fx, tasks):
    fx.summary = (
        "Run 13 of `infra-planner` chains only into `readonly-inventory`, which its grant names, "
        "and reads the inventory. A platform engineer assumes OrganizationAccountAccessRole "
        "(a person: no grant binds it)."
    )
    brk = broker(fx)
    tasks.grant(fx.at("08:59:00"), "infra-planner", "ip-13",
                roles=[role_arn("agent-infra-planner"), role_arn("readonly-inventory")], **PLANNER)
    r = run(fx, brk, "09:00:00", "infra-planner", "ip-13", 13)
    ro = RoleSession(PROD, "readonly-inventory", "infra-planner-13-ro", fx.at("09:00:10"),
                     source_identity=r.source_identity, seed="ro")
    assume(fx, r, "09:00:10", ro)
    fx.who(ro.session_key, "`readonly-inventory` chained from run 13 (named in its grant)")
    get(fx, ro, fx.at("09:00:14"), "inventory-exports", "ec2/2024-11-30.json", 300_000)
    fx.quiet(r.session_key, "chains only into the role its grant names")
    fx.quiet(ro.session_key, "a role the grant names, used within the grant")
    eng = RoleSession(PROD, "AWSReservedSSO_PlatformAdmin_0b9d2e4f6a8c1357", "r.achebe@northwind.example",
                      fx.at("08:30:00"), duration=28800, path="aws-reserved/sso.amazonaws.com/")
    fx.who(eng.session_key, "SSO PlatformAdmin of r.achebe (a person)")
    admin = RoleSession(MEMBER, "OrganizationAccountAccessRole", "r.achebe", fx.at("09:02:00"), seed="eng")
    fx.add(ct_assume_role(eng, fx.at("09:02:00"), admin, ip="198.51.100.57", ua="[" + cli_mac_ua("sts.assume-role") + "]"),
           eng.session_key)
    fx.who(admin.session_key, "OrganizationAccountAccessRole of r.achebe")
    fx.add(ct_event(admin, fx.at("09:02:30"), "iam.amazonaws.com", "ListUsers", ip="198.51.100.57",
                    ua="[" + cli_mac_ua("iam.list-users") + "]", req={}, read_only=True), admin.session_key)
    fx.quiet(eng.session_key, "a person chaining into an admin role: not an agent")
    fx.quiet(admin.session_key, "a person's admin session")
    fx.quiet(brk.session_key, "issues the run")
