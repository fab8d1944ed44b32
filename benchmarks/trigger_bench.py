"""Benchmark of the migration trigger against the local AWS: cold import time, and per case (plain user, MFA
user, forgot-password user) the handler's own time and old-pool calls, read from its log lines in CloudWatch
Logs, beside the wall time of the sign-in that ran it. Prints a markdown table.

    .venv/bin/python benchmarks/trigger_bench.py [--users 600] [--per-case 25] [--imports 7]
                                                 [--budget-per-case 4] [--budget-only]

The budget table injects latency into the old pool's AdminInitiateAuth and AdminGetUser (the local AWS's
faults) and reports, per latency, the share of sign-ins that migrated and the old-pool requests per
migration summed over Cognito's attempts (retries included), on a warm container.

The local AWS runs the deployed zip in a warm worker process, as Lambda keeps a container, on this machine's
Python and boto3: the figures show the trigger's own cost and its calls, not Lambda's network or cold start.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from cognito_migration import deploy, params, signup_index
from cognito_migration.local.legacy import GROUP_NAMES, LegacyPool, LegacyUser, seed_legacy_pool
from cognito_migration.local.server import LocalAWS
from cognito_migration.trigger import migration_trigger

REGION = "us-east-1"
LIMIT_MS = 5000  # Cognito's fixed limit for any trigger
PASSWORD_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


@dataclass
class Case:
    """One row of the table: which log lines belong to it, and the wall times of the calls that made them."""

    name: str
    trigger: str
    reasons: tuple[str, ...]
    wall_ms: list[float]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 samples is their maximum)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def import_times_ms(zip_bytes: bytes, runs: int) -> list[float]:
    """Seconds to `import migration_trigger` (boto3 included) in fresh interpreters, as a cold start does."""
    with tempfile.TemporaryDirectory() as code_dir:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            archive.extractall(code_dir)
        probe = "import time; t = time.perf_counter(); import migration_trigger; print(time.perf_counter() - t)"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"PYTHONDONTWRITEBYTECODE": "1"}
        return [
            1000
            * float(
                subprocess.run(
                    [sys.executable, "-c", probe], cwd=code_dir, env=env, capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(runs)
        ]


def new_pool_with_trigger(cognito: Any, lam: Any, iam: Any, legacy: LegacyPool) -> tuple[str, str, str]:
    """A new pool as step 2 makes it, the trigger deployed and attached as step 3 does: (pool, client, function)."""
    schema = [
        {"Name": name, "AttributeDataType": "String", "Mutable": True, "Required": name in ("email", "name")}
        for name in ("email", "name", "tier", "groups_pending")
    ] + [{"Name": "signup_year", "AttributeDataType": "Number", "Mutable": True}]
    pool = cognito.create_user_pool(
        PoolName="bench-users-v2", Schema=schema, UsernameConfiguration={"CaseSensitive": False}
    )["UserPool"]
    client = cognito.create_user_pool_client(UserPoolId=pool["Id"], ClientName="app", ExplicitAuthFlows=PASSWORD_FLOWS)
    for group in GROUP_NAMES:
        cognito.create_group(UserPoolId=pool["Id"], GroupName=group)
    settings = params.validate(
        {
            "region": REGION,
            "old_user_pool_id": legacy.pool_id,
            "old_client_id": legacy.migration_client_id,
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": "Unknown"},
        }
    )
    described = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    old = cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]
    role = iam.create_role(RoleName="bench-trigger-role", AssumeRolePolicyDocument=json.dumps(deploy.TRUST_POLICY))
    function = lam.create_function(
        FunctionName="bench-migration",
        Runtime=deploy.RUNTIME,
        Role=role["Role"]["Arn"],
        Handler=deploy.HANDLER,
        Timeout=deploy.TIMEOUT_S,
        MemorySize=256,
        Code={"ZipFile": deploy.build_package().zip_bytes},
        # A key as step 3 gives it: the trigger's log lines then carry a user reference this benchmark can match.
        Environment={"Variables": deploy.function_environment(settings, described, old, signup_index.new_key())},
    )
    # A new function is Pending for a while, and Cognito cannot run it until it is Active.
    lam.get_waiter("function_active_v2").wait(FunctionName="bench-migration", WaiterConfig={"Delay": 0.1})
    deploy.ensure_permission(lam, "bench-migration", pool["Arn"])
    deploy.attach_triggers(cognito, pool["Id"], {t: function["FunctionArn"] for t in deploy.TRIGGERS})
    return pool["Id"], client["UserPoolClient"]["ClientId"], "bench-migration"


def pick(legacy: LegacyPool, count: int, condition: Callable[[LegacyUser], bool]) -> list[LegacyUser]:
    verified = [
        u
        for u in legacy.users
        if u.enabled
        and u.attributes.get("email_verified") == "true"
        and condition(u)
        and not {"case_duplicate_username", "case_duplicate_email"} & u.quirks
    ]
    return verified[:count]


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    try:
        call()
    except ClientError as exc:  # an MFA user's sign-in ends in PasswordResetRequiredException, by design
        if exc.response["Error"]["Code"] != "PasswordResetRequiredException":
            raise
    return (time.perf_counter() - started) * 1000


def run_cases(cognito: Any, client_id: str, legacy: LegacyPool, per_case: int) -> tuple[list[Case], str]:
    """The measured cases, and the user whose sign-in warmed the container up (left out of the table)."""

    def sign_in(user: LegacyUser) -> Callable[[], Any]:
        return lambda: cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user.username, "PASSWORD": legacy.password(user.username)},
        )

    warm_up, *plain = pick(legacy, per_case + 1, lambda u: u.status == "CONFIRMED" and u.mfa is None and u.groups)
    mfa = pick(legacy, per_case, lambda u: u.status == "CONFIRMED" and u.mfa is not None)
    forgot = pick(legacy, per_case, lambda u: u.status == "CONFIRMED" and u.mfa is None and not u.groups)
    first = Case("plain user: sign-in migrates", "UserMigration_Authentication", ("password_kept",), [])
    groups = Case("plain user: group copy after it", "PostAuthentication_Authentication", ("groups_copied",), [])
    later = Case("plain user: a later sign-in", "PostAuthentication_Authentication", ("no_groups_pending",), [])
    mfa_case = Case("MFA user: sign-in migrates", "UserMigration_Authentication", ("mfa_reset_required",), [])
    forgot_case = Case("forgot-password user", "UserMigration_ForgotPassword", ("forgot_password",), [])
    timed(sign_in(warm_up))  # the container's cold start is reported apart; the cases measure a warm one
    for user in plain:
        first.wall_ms.append(timed(sign_in(user)))  # migration and group copy in one sign-in
    for user in plain:
        later.wall_ms.append(timed(sign_in(user)))
    for user in mfa:
        mfa_case.wall_ms.append(timed(sign_in(user)))
    for user in forgot:
        forgot_case.wall_ms.append(
            timed(lambda u=user: cognito.forgot_password(ClientId=client_id, Username=u.username))  # type: ignore[misc]
        )
    return [first, groups, later, mfa_case, forgot_case], warm_up.username


# Old-pool latency per call (AdminInitiateAuth, AdminGetUser): the work of one migration is their sum.
BUDGET_CASES = [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (1.5, 1.5), (1.8, 2.2), (2.0, 2.0), (2.5, 2.5)]


@dataclass
class BudgetCase:
    auth_s: float
    get_s: float
    users: list[str]
    migrated: int = 0
    wall_ms: list[float] | None = None


def run_budget_cases(aws: Any, cognito: Any, client_id: str, legacy: LegacyPool, per_case: int) -> list[BudgetCase]:
    """Sign-ins of fresh users under each injected latency; a sign-in migrates or fails as Cognito answers it."""
    users = pick(legacy, len(legacy.users), lambda u: u.status == "CONFIRMED" and u.mfa is None)
    users = users[-per_case * len(BUDGET_CASES) :]  # from the end: run_cases signs the first ones in
    cases = []
    for n, (auth_s, get_s) in enumerate(BUDGET_CASES):
        case = BudgetCase(auth_s, get_s, [u.username for u in users[n * per_case : (n + 1) * per_case]], 0, [])
        aws.faults.add("AdminInitiateAuth", latency_s=auth_s)
        aws.faults.add("AdminGetUser", latency_s=get_s)
        for username in case.users:
            started = time.perf_counter()
            try:
                cognito.initiate_auth(
                    ClientId=client_id,
                    AuthFlow="USER_PASSWORD_AUTH",
                    AuthParameters={"USERNAME": username, "PASSWORD": legacy.password(username)},
                )
                case.migrated += 1
            except ClientError:
                pass
            case.wall_ms.append((time.perf_counter() - started) * 1000)  # type: ignore[union-attr]
        aws.faults.clear()
        cases.append(case)
    return cases


def budget_table(cases: list[BudgetCase], lines: list[dict[str, Any]], log_key: str | None) -> str:
    rows = [
        "| old-pool latency per call (AdminInitiateAuth + AdminGetUser) | work | sign-ins | migrated "
        "| Cognito attempts per sign-in | old-pool requests per sign-in (all attempts) | sign-in wall p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        refs = {migration_trigger.user_ref(u, log_key) for u in case.users}
        mine = [x for x in lines if x["user"] in refs and x["trigger"] == "UserMigration_Authentication"]
        rows.append(
            f"| {case.auth_s:.1f} s + {case.get_s:.1f} s | {case.auth_s + case.get_s:.1f} s | {len(case.users)} "
            f"| {case.migrated / len(case.users):.0%} | {len(mine) / len(case.users):.2f} "
            f"| {sum(x['old_pool_calls'] for x in mine) / len(case.users):.2f} "
            f"| {percentile(case.wall_ms or [0.0], 0.5):.0f} |"
        )
    return "\n".join(rows)


def trigger_lines(logs: Any, function_name: str, expected: int) -> list[dict[str, Any]]:
    """The trigger's JSON log lines from CloudWatch Logs (the emulator forwards them asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        events, token = [], None
        while True:
            page = logs.filter_log_events(
                logGroupName=f"/aws/lambda/{function_name}", **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        lines = [json.loads(e["message"][e["message"].index("{") :]) for e in events if "{" in e["message"]]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines


def table(imports_ms: list[float], cases: list[Case], lines: list[dict[str, Any]]) -> str:
    lines = [x for x in lines if not x.get("cold_start")]
    rows = [
        "| case | n | handler p50 ms | handler p99 ms | sign-in wall p50 ms | sign-in wall p99 ms "
        "| old-pool calls per invocation | share of the 5 s limit (p99) |",
        "|---|---|---|---|---|---|---|---|",
        f"| cold import of `migration_trigger` (boto3 included), fresh interpreter | {len(imports_ms)} "
        f"| {statistics.median(imports_ms):.0f} | {max(imports_ms):.0f} | | | | "
        f"{max(imports_ms) / LIMIT_MS:.1%} |",
    ]
    for case in cases:
        mine = [x for x in lines if x["trigger"] == case.trigger and x["reason"] in case.reasons]
        warm = [x["ms"] for x in mine]
        calls = sorted({x["old_pool_calls"] for x in mine})
        wall = case.wall_ms
        wall_cells = f"{percentile(wall, 0.5):.0f} | {percentile(wall, 0.99):.0f}" if wall else "(same sign-in) | "
        rows.append(
            f"| {case.name} | {len(mine)} | {percentile(warm, 0.5):.0f} | {percentile(warm, 0.99):.0f} | {wall_cells} "
            f"| {' or '.join(map(str, calls))} | {percentile(warm, 0.99) / LIMIT_MS:.1%} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=600, help="legacy pool size (MFA users are 6%% of it)")
    parser.add_argument("--per-case", type=int, default=25, help="sign-ins measured per case")
    parser.add_argument("--imports", type=int, default=7, help="fresh interpreters timed for the cold import")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget-per-case", type=int, default=4, help="sign-ins per injected latency")
    parser.add_argument("--budget-only", action="store_true", help="only the budget table")
    args = parser.parse_args()

    imports_ms = import_times_ms(deploy.build_package().zip_bytes, args.imports)
    with LocalAWS() as aws:
        os.environ.update({**aws.credentials, "AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_DEFAULT_REGION": REGION})

        def client(service: str) -> Any:
            return boto3.client(service, region_name=REGION, endpoint_url=aws.endpoint_url)

        cognito, logs = client("cognito-idp"), client("logs")
        legacy = seed_legacy_pool(users=args.users, seed=args.seed, region=REGION)
        _, client_id, function_name = new_pool_with_trigger(cognito, client("lambda"), client("iam"), legacy)
        per_case = 0 if args.budget_only else args.per_case
        cases, warm_up = run_cases(cognito, client_id, legacy, per_case)
        # Each case's sign-ins, one group copy per migration, and the warm-up's migration and group copy.
        expected = sum(len(c.wall_ms) for c in cases) + len(cases[0].wall_ms) + 2
        budget = run_budget_cases(aws, cognito, client_id, legacy, args.budget_per_case)
        expected += sum(c.migrated * 2 for c in budget)  # at least a migration and a group copy each
        lines = trigger_lines(logs, function_name, expected)
        cold = [x["ms"] for x in lines if x.get("cold_start")]
        # The trigger logs a reference keyed with the function's SIGNUP_INDEX_KEY, never the username.
        variables = client("lambda").get_function_configuration(FunctionName=function_name)["Environment"]
        log_key = variables["Variables"].get("SIGNUP_INDEX_KEY")
        lines = [x for x in lines if x["user"] != migration_trigger.user_ref(warm_up, log_key)]
    print(f"legacy pool: {args.users} users; warm invocations (the container's first, cold: {cold} ms)\n")
    if not args.budget_only:
        print(table(imports_ms, cases, lines))
    print("\n" + budget_table(budget, lines, log_key))


if __name__ == "__main__":
    main()
