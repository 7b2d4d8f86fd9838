"""Which rule of the shipped pack must make each expected decision.

The ground truth names, for every expected decision, the intent (what the case is about), the
rule that must decide it, and the action (what the pack answers with). This table maps each
intent the case scripts use to its rule id, read off the rule files in `rules/` by what each
rule is written to catch — never from the engine's output. An entry ending in `*` names a rule
family (any rule whose id starts with the text before the `*`).

`tests/scenarios.rs` compares the rule and the action of every decision with this ground truth;
a `fire*()` call may also pass `rule=` to name its rule directly.
"""

KILL_NOT_ENFORCED = "sessionguard.kill_not_enforced"

RULE_OF_INTENT = {
    # rules/agents/invoice-reconciler.yml
    "agent acts outside its task": "sg.agent.invoice_reconciler.outside_task",
    "agent keeps acting after its task completed": "sg.agent.invoice_reconciler.after_completion",
    # rules/agents/task-grants.yml: the generic rules over task grants (fixtures/agents/)
    "agent acts outside its task grant": "sg.agent.outside_grant",
    "agent acts after its task ended": "sg.agent.after_grant",
    "agent exceeds its task grant's budget": "sg.agent.over_budget",
    "agent chains into a role its grant does not name": "sg.agent.unnamed_role",
    # rules/aws-s3-bulk-bytes.yml, aws-s3-bulk-read.yml, aws-secrets-burst.yml
    "bulk S3 export (bytes)": "sg.aws.s3_bulk_bytes",
    "bulk S3 export (object count)": "sg.aws.s3_bulk_read",
    "bulk secret read (distinct secrets)": "sg.aws.secrets_burst",
    # rules/github-clone-burst.yml
    "mass clone of private repositories": "sg.github.clone_burst",
    # rules/k8s-cluster-admin-binding.yml
    "impersonates system:admin / system:masters": "sg.k8s.cluster_admin_escalation",
    "token binds itself to cluster-admin": "sg.k8s.cluster_admin_escalation",
    # rules/session-new-network.yml: an address outside the session's learnt /24 (/48)
    "key used from a new network (token reuse)": "sg.session.new_network",
    "token used from a new network (token reuse)": "sg.session.new_network",
    # rules/session-new-asn.yml: the Okta session's new address is in another AS
    "session used from a new network (token reuse)": "sg.session.new_asn",
    # rules/workload-new-runtime.yml: a workload's credential used by a runtime it did not learn
    "workload credentials used by another runtime": "sg.workload.new_runtime",
    "workload token used by another runtime": "sg.workload.new_runtime",
    # rules/workload-credential-moved.yml: a workload's credential used from an address it did
    # not learn (compared exactly: inside the /24 the network rule tolerates)
    "workload credentials used from another address": "sg.workload.credential_moved",
    "workload token used from another address": "sg.workload.credential_moved",
    # rules/entra-new-device.yml: an Entra session's device outside the one it learnt
    "session continued from another device": "sg.entra.new_device",
    # rules/workload-new-region.yml: an instance's credentials in a region it did not learn
    "workload credentials used in another region": "sg.workload.new_region",
    # rules/privileged-session-timer.yml
    "privileged session older than 8 h (timer)": "sg.session.privileged_open_8h",
    # rules/mfa-repeated-failures.yml
    "repeated MFA failures in one session": "sg.session.mfa_failures",
    # rules/aws-role-chain-admin.yml
    "role chain into an admin role, then admin action": "sg.aws.role_chain_admin",
    # rules/aws-iam-self-grant.yml
    "self-grant: AttachRolePolicy on its own role": "sg.aws.iam_self_grant",
    "self-grant: AttachUserPolicy on its own user": "sg.aws.iam_self_grant",
    "self-grant: CreateAccessKey for its own user": "sg.aws.iam_self_grant",
    "self-grant: PutRolePolicy on its own role": "sg.aws.iam_self_grant",
    # rules/okta-self-privilege-grant.yml
    "self-grant: adds itself to an admin group": "sg.okta.self_privilege_grant",
    "self-grant: admin role assigned to itself": "sg.okta.self_privilege_grant",
    # rules/aws-stale-privileged-session.yml
    "stale privileged session makes a change": "sg.aws.stale_privileged_change",
    # the engine's own decision for activity after an enforced kill
    KILL_NOT_ENFORCED: KILL_NOT_ENFORCED,
}

ACTIONS = ("revoke session", "revoke credential", "step up", "alert")


def rule_of(rel, intent, rule=None):
    """The rule for an expected decision: `rule` when given, else the table's entry."""
    rule = rule or RULE_OF_INTENT.get(intent)
    if not rule:
        raise SystemExit(f"{rel}: no rule named for intent {intent!r}: add it to pack.py or pass rule=")
    return rule
