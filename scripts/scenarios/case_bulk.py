"""Case 4: bulk export — S3 object bursts (count and bytes), Secrets Manager sweeps, mass git
clones."""

import datetime as dt

from common import (
    BOTO3_UA, CLONES_DISTINCT, CLONES_WINDOW, JAVA_SDK_UA, PROD, RCLONE_UA, S3_BYTES, S3_BYTES_MIB,
    S3_BYTES_WINDOW, S3_COUNT, S3_COUNT_WINDOW, SECRETS_DISTINCT, SECRETS_WINDOW, SHARED,
    cli_ua, s3_cli_ua,
)
from vendors import (
    IamUser, RoleSession, ct_event, digest, github_event, github_hashed_token, s3_list_event,
    s3_object_event,
)

SM = "secretsmanager.amazonaws.com"


def sizes(seed, n, lo, hi):
    """`n` deterministic object sizes in [lo, hi)."""
    out = []
    for i in range(n):
        d = digest("size", seed, i)
        out.append(lo + int.from_bytes(d[:4], "big") % (hi - lo))
    return out


def is_get(e):
    return e.rec.get("eventName") == "GetObject"


def bytes_out(e):
    return e.rec["additionalEventData"]["bytesTransferredOut"]


# ---------------------------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------------------------


def s3_attack(fx):
    fx.summary = (
        "Two sessions empty buckets in different ways while an application reads its config: "
        "a notebook role's stolen credentials pull 75 small statements with rclone in under four "
        "minutes (count rule), and a leaked IAM user key downloads nine database dumps of 70–98 MB "
        "each in eight minutes (bytes rule: `additionalEventData.bytesTransferredOut`)."
    )
    nb = RoleSession(PROD, "analytics-notebook", "SageMaker", fx.at("15:02:10"), seed="nb")
    fx.who(nb.session_key, "role `analytics-notebook` (SageMaker notebook credentials, replayed from 203.0.113.61 with rclone)")
    ip = "203.0.113.61"
    fx.add(s3_list_event(nb, fx.at("16:19:41"), "northwind-finance-reports", "", ip=ip, ua=RCLONE_UA),
           nb.session_key)
    fx.add(s3_list_event(nb, fx.at("16:19:44"), "northwind-finance-reports", "statements/2024/09/",
                         ip=ip, ua=RCLONE_UA), nb.session_key)
    t = fx.at("16:19:50")
    for i, size in enumerate(sizes("stmt", 75, 118_000, 420_000)):
        t += dt.timedelta(seconds=2 + (i % 3))
        key = f"statements/2024/09/stmt-{40117 + i * 7:06d}.pdf"
        fx.add(s3_object_event(nb, t, "GetObject", "northwind-finance-reports", key, ip=ip,
                               ua=RCLONE_UA, size=size), nb.session_key)
    fx.fire_window(nb.session_key, is_get, agg="count", window_s=S3_COUNT_WINDOW, threshold=S3_COUNT,
                   intent="bulk S3 export (object count)", action="revoke session",
                   why=f"the {S3_COUNT}th `s3:GetObject` within 5 min (75 in 3 min 45 s; total "
                       "about 20 MB, far below the bytes rule)")

    dump = IamUser(PROD, "backup-verifier")
    fx.who(dump.session_key, "IAM user `backup-verifier`, long-term key used from 203.0.113.62")
    dip = "203.0.113.62"
    fx.add(ct_event(dump, fx.at("16:21:03"), "s3.amazonaws.com", "ListBuckets", ip=dip,
                    ua=cli_ua("s3.ls"), req={"Host": "s3.us-east-1.amazonaws.com"}), dump.session_key)
    fx.add(s3_list_event(dump, fx.at("16:21:20"), "northwind-db-snapshots", "orders/", ip=dip,
                         ua=s3_cli_ua("s3.ls")), dump.session_key)
    t = fx.at("16:21:38")
    dumps = [93_310_876, 95_877_312, 88_517_904, 97_663_021, 91_204_113, 94_402_558, 96_021_739,
             72_930_447, 84_115_690]
    assert sum(dumps[:6]) < S3_BYTES and sum(dumps[:7]) >= S3_BYTES_MIB
    for i, size in enumerate(dumps):
        key = f"orders/2024-10-{i + 1:02d}/orders-full.sql.gz"
        fx.add(s3_object_event(dump, t, "GetObject", "northwind-db-snapshots", key, ip=dip,
                               ua=s3_cli_ua("s3.cp"), size=size), dump.session_key)
        t += dt.timedelta(seconds=53 + (i % 4) * 3)
    fx.fire_window(dump.session_key, is_get, agg="sum", window_s=S3_BYTES_WINDOW, threshold=S3_BYTES,
                   alt=S3_BYTES_MIB, value=bytes_out,
                   intent="bulk S3 export (bytes)", action="revoke session",
                   why="`bytesTransferredOut` of GetObject within 10 min passes 600 MB on this "
                       "object (561 MB before it, 657 MB with it), reading MB as 10^6 or as 2^20 bytes alike (9 objects, {:.0f} MB in all)".format(sum(dumps) / 1e6))

    app = RoleSession(PROD, "orders-api-task", "0e7b5c3a9d1f4e2b8c6a4d2f0e8b6c4a", fx.at("15:40:00"), seed="bg")
    fx.who(app.session_key, "ECS task role `orders-api-task` (background)")
    for i in range(8):
        t = fx.at("16:19:30") + dt.timedelta(minutes=i * 1.5)
        fx.add(s3_object_event(app, t, "GetObject", "northwind-static-config", "orders-api/feature-flags.json",
                               ip="10.20.4.17", ua="[" + JAVA_SDK_UA + "]", size=6_214), app.session_key)
    fx.quiet(app.session_key, "one small object every 90 s")


def s3_benign(fx):
    fx.summary = (
        "Heavy but normal reads: the nightly ETL reads 48 partition files in under four minutes, "
        "pauses, then reads 20 more (never 60 in 5 min); a disaster-recovery "
        "drill restores seven dumps of about 540 MB in total within ten minutes."
    )
    etl = RoleSession(PROD, "nightly-etl", "glue-job-orders-daily", fx.at("02:00:00"), seed="etl")
    fx.who(etl.session_key, "role `nightly-etl` (Glue job)")
    ip = "10.20.9.33"
    ua = "[" + JAVA_SDK_UA + " exec-env/AWS_Glue]"
    fx.add(s3_list_event(etl, fx.at("02:01:10"), "northwind-datalake-raw", "orders/dt=2024-10-09/",
                         ip=ip, ua=ua), etl.session_key)
    t = fx.at("02:01:12")
    for i, size in enumerate(sizes("etl1", 48, 2_000_000, 6_000_000)):
        t += dt.timedelta(seconds=4 + (i % 2))
        fx.add(s3_object_event(etl, t, "GetObject", "northwind-datalake-raw",
                               f"orders/dt=2024-10-09/part-{i:05d}.snappy.parquet", ip=ip, ua=ua, size=size),
               etl.session_key)
    t += dt.timedelta(minutes=5, seconds=30)
    fx.add(s3_list_event(etl, t, "northwind-datalake-raw", "customers/dt=2024-10-09/", ip=ip, ua=ua),
           etl.session_key)
    for i, size in enumerate(sizes("etl2", 20, 1_000_000, 3_000_000)):
        t += dt.timedelta(seconds=5)
        fx.add(s3_object_event(etl, t, "GetObject", "northwind-datalake-raw",
                               f"customers/dt=2024-10-09/part-{i:05d}.snappy.parquet", ip=ip, ua=ua, size=size),
               etl.session_key)
    fx.quiet(etl.session_key, "at most {peak} GetObject in any 5 min (threshold 60), about 230 MB",
             window=[dict(match=is_get, agg="count", window_s=S3_COUNT_WINDOW, threshold=S3_COUNT),
                     dict(match=is_get, agg="sum", window_s=S3_BYTES_WINDOW, threshold=S3_BYTES,
                          value=bytes_out)])

    dr = RoleSession(PROD, "dr-restore-test", "dr-drill-2024q4", fx.at("02:05:00"), seed="dr")
    fx.who(dr.session_key, "role `dr-restore-test` (quarterly restore drill)")
    dip = "10.20.12.8"
    t = fx.at("02:05:40")
    for i, size in enumerate([82_311_904, 77_020_513, 79_845_226, 74_603_118, 80_992_437,
                              71_458_760, 73_190_285]):
        fx.add(s3_object_event(dr, t, "GetObject", "northwind-db-snapshots",
                               f"orders/2024-09-{20 + i}/orders-full.sql.gz", ip=dip,
                               ua=s3_cli_ua("s3.cp"), size=size), dr.session_key)
        t += dt.timedelta(seconds=71)
    fx.quiet(dr.session_key, "7 objects, at most {peak} bytes in any 10 min (threshold 600 MB)",
             window=dict(match=is_get, agg="sum", window_s=S3_BYTES_WINDOW, threshold=S3_BYTES,
                         value=bytes_out))


# ---------------------------------------------------------------------------------------------
# Secrets Manager
# ---------------------------------------------------------------------------------------------

PAYMENT_SECRETS = [
    "prod/payments/stripe-api-key", "prod/payments/adyen-hmac", "prod/orders/db-primary",
    "prod/orders/db-replica", "prod/identity/okta-api-token", "prod/identity/scim-bearer",
    "prod/github/deploy-app-private-key", "prod/datadog/api-key", "prod/sendgrid/api-key",
    "prod/twilio/auth-token", "prod/snowflake/etl-user", "prod/billing/netsuite-oauth",
    "prod/warehouse/redshift-admin", "prod/ci/npm-publish-token", "prod/support/zendesk-api",
    "prod/crm/salesforce-integration",
]


def secret_arn(name):
    tail = "".join("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"[b % 57]
                   for b in digest("sfx", name)[:6])
    return f"arn:aws:secretsmanager:us-east-1:{PROD}:secret:{name}-{tail}"


def is_secret_read(e):
    return e.rec.get("eventName") == "GetSecretValue" and "errorCode" not in e.rec


def secret_id(e):
    return e.rec["requestParameters"]["secretId"]


def orders_api_reads(fx, session, start, rounds, every_s, ip):
    t = start
    for r in range(rounds):
        for j, name in enumerate(["prod/orders/db-primary", "prod/orders/db-replica", "prod/payments/stripe-api-key"]):
            fx.add(ct_event(session, t + dt.timedelta(milliseconds=0), SM, "GetSecretValue", ip=ip,
                            ua=JAVA_SDK_UA, req={"secretId": name}, read_only=True, seed=f"{r}-{j}"),
                   session.session_key)
            t += dt.timedelta(seconds=1)
        t += dt.timedelta(seconds=every_s - 3)


def secrets_attack(fx):
    fx.summary = (
        "Stolen ECS task credentials list the account's secrets and read sixteen of them in two "
        "and a half minutes; the real task keeps reading its usual three secrets every five "
        "minutes."
    )
    task = RoleSession(PROD, "payments-worker-task", "3b9d1f7a5c2e4b6d8f0a2c4e6b8d0f2a", fx.at("11:58:00"),
                       seed="stolen")
    fx.who(task.session_key, "ECS task role `payments-worker-task`, credentials replayed from 203.0.113.70")
    ip = "203.0.113.70"
    fx.add(ct_event(task, fx.at("12:39:31"), "sts.amazonaws.com", "GetCallerIdentity", ip=ip, ua=BOTO3_UA,
                    host="sts.amazonaws.com"), task.session_key)
    fx.add(ct_event(task, fx.at("12:40:00"), SM, "ListSecrets", ip=ip, ua=BOTO3_UA,
                    req={"maxResults": 100}, read_only=True), task.session_key)
    t = fx.at("12:40:10")
    for i, name in enumerate(PAYMENT_SECRETS):
        fx.add(ct_event(task, t, SM, "GetSecretValue", ip=ip, ua=BOTO3_UA,
                        req={"secretId": secret_arn(name)}, read_only=True, seed=i), task.session_key)
        t += dt.timedelta(seconds=8 + (i % 3) * 2)
    fx.fire_window(task.session_key, is_secret_read, agg="distinct", window_s=SECRETS_WINDOW,
                   threshold=SECRETS_DISTINCT, value=secret_id,
                   intent="bulk secret read (distinct secrets)", action="revoke session",
                   why=f"the {SECRETS_DISTINCT}th distinct `secretId` read by `GetSecretValue` within 5 min "
                       "(16 in 2 min 30 s, after a ListSecrets)")

    legit = RoleSession(PROD, "orders-api-task", "a4c6e8f0b2d4e6a8c0b2d4f6a8c0e2b4", fx.at("12:20:00"),
                        seed="legit")
    fx.who(legit.session_key, "ECS task role `orders-api-task`, its usual refresh (background)")
    orders_api_reads(fx, legit, fx.at("12:25:02"), 5, 300, "10.20.4.17")
    fx.quiet(legit.session_key, "{peak} distinct secrets at most in any 5 min: the same three on a timer",
             window=dict(match=is_secret_read, agg="distinct", window_s=SECRETS_WINDOW,
                         threshold=SECRETS_DISTINCT, value=secret_id))


def secrets_benign(fx):
    fx.summary = (
        "A service reads its three secrets every five minutes for 45 minutes, and a release "
        "pipeline reads the nine secrets of one deployment in two minutes (near, but under, "
        "twelve distinct)."
    )
    legit = RoleSession(PROD, "orders-api-task", "c8e0a2b4d6f8a0c2e4b6d8f0a2c4e6b8", fx.at("08:58:00"),
                        seed="legit2")
    fx.who(legit.session_key, "ECS task role `orders-api-task`")
    orders_api_reads(fx, legit, fx.at("09:00:05"), 10, 300, "10.20.4.17")
    fx.quiet(legit.session_key, "{peak} distinct secrets in any 5 min (30 reads in all)",
             window=dict(match=is_secret_read, agg="distinct", window_s=SECRETS_WINDOW,
                         threshold=SECRETS_DISTINCT, value=secret_id))

    rel = RoleSession(SHARED, "release-pipeline", "codebuild-orders-release-4471", fx.at("09:20:00"),
                      seed="rel")
    fx.who(rel.session_key, "role `release-pipeline` (CodeBuild deploy job)")
    ua = BOTO3_UA.replace("os/linux#6.1.0-25-amd64", "os/linux#5.10.226-214.880.amzn2.x86_64") + " exec-env/AWS_ECS_EC2"
    t = fx.at("09:21:14")
    for i, name in enumerate(["prod/orders/db-primary", "prod/orders/db-replica", "prod/payments/stripe-api-key",
                              "prod/datadog/api-key", "prod/sendgrid/api-key", "prod/orders/feature-flags-sdk-key",
                              "prod/orders/jwt-signing-key", "prod/orders/redis-auth", "prod/orders/sqs-encryption"]):
        fx.add(ct_event(rel, t, SM, "GetSecretValue", ip="10.30.2.19", ua=ua, req={"secretId": name},
                        read_only=True, seed=i), rel.session_key)
        t += dt.timedelta(seconds=9 + i % 4)
    fx.add(ct_event(rel, t + dt.timedelta(seconds=20), "ecs.amazonaws.com", "UpdateService", ip="10.30.2.19", ua=ua,
                    req={"cluster": "prod", "service": "orders-api", "taskDefinition": "orders-api:214",
                         "forceNewDeployment": False}), rel.session_key)
    fx.quiet(rel.session_key, "{peak} distinct secrets in 2 min (threshold 12)",
             window=dict(match=is_secret_read, agg="distinct", window_s=SECRETS_WINDOW,
                         threshold=SECRETS_DISTINCT, value=secret_id))


# ---------------------------------------------------------------------------------------------
# GitHub
# ---------------------------------------------------------------------------------------------

REPOS = [
    "payments-api", "ledger-core", "orders-web", "orders-api", "identity-broker", "infra-live",
    "terraform-modules", "billing-export", "data-pipelines", "mobile-ios", "mobile-android",
    "support-portal", "warehouse-dbt", "fraud-models", "search-indexer", "notifications",
    "partner-gateway", "admin-console", "secrets-rotation", "k8s-manifests", "helm-charts",
    "auth-sdk-go", "auth-sdk-js", "pricing-engine", "tax-service", "shipping-rates",
    "crm-sync", "hr-integrations", "security-tools", "incident-runbooks", "design-system",
    "release-tools",
]


def repo_id(name):
    return 700_000_000 + int.from_bytes(digest("repo", name)[:3], "big")


def is_clone(e):
    return e.rec.get("action") == "git.clone"


def repo_of(e):
    return e.rec["repo"]


def github_attack(fx):
    fx.summary = (
        "A contractor's personal access token, replayed from 203.0.113.99, clones 32 private "
        "repositories in seven and a half minutes; a developer and a CI app work alongside."
    )
    tok = github_hashed_token("ext-contractor-ops", "classic")
    key = f"github:token:{tok}"
    fx.who(key, "classic PAT of `ext-contractor-ops`, used from 203.0.113.99 (RO)")
    t = fx.at("15:00:04")
    for i, repo in enumerate(REPOS):
        fx.add(github_event(t, "git.clone", actor="ext-contractor-ops", actor_id=90817263,
                            ip="203.0.113.99", country="RO", ua="git/2.45.2", repo=repo,
                            repo_id=repo_id(repo), token=tok, token_id=151877342,
                            token_scopes="repo,read:org", access_type="Personal access token (classic)"),
               key)
        t += dt.timedelta(seconds=12 + (i % 4) * 2)
    fx.fire_window(key, is_clone, agg="distinct", window_s=CLONES_WINDOW, threshold=CLONES_DISTINCT,
                   value=repo_of, intent="mass clone of private repositories", action="revoke credential",
                   why=f"the {CLONES_DISTINCT}th distinct private repository cloned with one "
                       "`hashed_token` within 10 min (32 in 7 min 30 s)")

    dev_tok = github_hashed_token("lena-fischer", "fine-grained")
    dev_key = f"github:token:{dev_tok}"
    fx.who(dev_key, "fine-grained PAT of developer `lena-fischer` (background)")
    for i, (clock, action, repo) in enumerate([("15:01:10", "git.clone", "orders-web"),
                                               ("15:03:40", "git.fetch", "orders-web"),
                                               ("15:06:02", "git.push", "orders-web"),
                                               ("15:07:55", "git.clone", "design-system")]):
        fx.add(github_event(fx.at(clock), action, actor="lena-fischer", actor_id=61234987, ip="198.51.100.57",
                            country="US", ua="git/2.46.0", repo=repo, repo_id=repo_id(repo), token=dev_tok,
                            token_id=162003417, access_type="Fine-grained personal access token",
                            seed=i), dev_key)
    fx.quiet(dev_key, "two repositories")

    ci_tok = github_hashed_token("northwind-ci", "installation", "attack-day")
    ci_key = f"github:token:{ci_tok}"
    fx.who(ci_key, "installation token of GitHub App `northwind-ci` (Jenkins) (background)")
    for i in range(6):
        fx.add(github_event(fx.at("15:00:30") + dt.timedelta(minutes=i * 1.4), "git.clone",
                            actor="northwind-ci[bot]", actor_id=149812733, ip="192.0.2.150", country="US",
                            ua="git/2.39.5 JGit/6.10.0", repo="monorepo", repo_id=repo_id("monorepo"),
                            token=ci_tok, access_type="GitHub App server-to-server token", bot=True,
                            seed=i), ci_key)
    fx.quiet(ci_key, "one repository, cloned repeatedly")


def github_benign(fx):
    fx.summary = (
        "A developer clones four repositories over twenty minutes; a CI app's installation "
        "token clones the monorepo 36 times in ten minutes (many clones, one repository); a new "
        "hire's bootstrap script clones 14 repositories in eight minutes (near, but under, 25)."
    )
    tok = github_hashed_token("tom-becker", "classic")
    key = f"github:token:{tok}"
    fx.who(key, "classic PAT of developer `tom-becker`")
    for i, (clock, action, repo) in enumerate([
        ("10:00:12", "git.clone", "payments-api"), ("10:04:40", "git.clone", "ledger-core"),
        ("10:09:03", "git.fetch", "payments-api"), ("10:12:31", "git.clone", "auth-sdk-go"),
        ("10:15:20", "git.push", "payments-api"), ("10:19:58", "git.clone", "helm-charts"),
    ]):
        fx.add(github_event(fx.at(clock), action, actor="tom-becker", actor_id=55120984, ip="198.51.100.61",
                            country="US", ua="git/2.46.0", repo=repo, repo_id=repo_id(repo), token=tok,
                            token_id=140987321, token_scopes="repo,workflow",
                            access_type="Personal access token (classic)", seed=i), key)
    fx.quiet(key, "{peak} distinct repositories in any 10 min",
             window=dict(match=is_clone, agg="distinct", window_s=CLONES_WINDOW, threshold=CLONES_DISTINCT,
                         value=repo_of))

    ci_tok = github_hashed_token("northwind-ci", "installation", "benign-day")
    ci_key = f"github:token:{ci_tok}"
    fx.who(ci_key, "installation token of GitHub App `northwind-ci` (Jenkins builds)")
    t = fx.at("10:00:05")
    for i in range(36):
        fx.add(github_event(t, "git.clone", actor="northwind-ci[bot]", actor_id=149812733, ip="192.0.2.150",
                            country="US", ua="git/2.39.5 JGit/6.10.0", repo="monorepo",
                            repo_id=repo_id("monorepo"), token=ci_tok,
                            access_type="GitHub App server-to-server token", bot=True, seed=i), ci_key)
        t += dt.timedelta(seconds=15 + (i % 3))
    fx.quiet(ci_key, "36 clones, {peak} distinct repository",
             window=dict(match=is_clone, agg="distinct", window_s=CLONES_WINDOW, threshold=CLONES_DISTINCT,
                         value=repo_of))

    nh_tok = github_hashed_token("priya-nair", "fine-grained")
    nh_key = f"github:token:{nh_tok}"
    fx.who(nh_key, "fine-grained PAT of new hire `priya-nair` (bootstrap script)")
    t = fx.at("10:02:00")
    for i, repo in enumerate(["orders-web", "orders-api", "payments-api", "ledger-core", "auth-sdk-js",
                              "auth-sdk-go", "design-system", "helm-charts", "k8s-manifests",
                              "terraform-modules", "notifications", "search-indexer", "release-tools",
                              "incident-runbooks"]):
        fx.add(github_event(t, "git.clone", actor="priya-nair", actor_id=73012455, ip="192.0.2.88",
                            country="US", ua="git/2.46.0", repo=repo, repo_id=repo_id(repo), token=nh_tok,
                            token_id=171230045, access_type="Fine-grained personal access token"), nh_key)
        t += dt.timedelta(seconds=30 + (i % 3) * 5)
    fx.quiet(nh_key, "{peak} distinct repositories in 8 min (threshold 25)",
             window=dict(match=is_clone, agg="distinct", window_s=CLONES_WINDOW, threshold=CLONES_DISTINCT,
                         value=repo_of))
