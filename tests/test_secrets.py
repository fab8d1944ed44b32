"""Canary passwords are generated at run time and never reach logs, exceptions, results or the trigger's
CloudWatch logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import boto3
import pytest
import yaml

from cognito_migration import audit, deploy, params, pool, smoke
from cognito_migration.local.legacy import seed_legacy_pool

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to

LOCAL = yaml.safe_load((ROOT / "params" / "local.yaml").read_text())


def test_canary_passwords_never_leave_the_smoke_step(local_aws, cognito, iam, lam, logs, caplog, capsys, monkeypatch):
    legacy = seed_legacy_pool(users=30, seed=9)
    cfg = params.validate({**LOCAL, "new_pool_name": "secrets-pool", "migration_function_name": "secrets-trigger"})
    old_pool = audit.describe_pool(cognito, legacy.pool_id)
    new_pool = pool.apply(cognito, pool.plan(cognito, cfg, old_pool), dry_run=False)
    new_pool = cognito.describe_user_pool(UserPoolId=new_pool["Id"])["UserPool"]
    dynamodb = boto3.client("dynamodb", region_name=cfg.region, endpoint_url=local_aws.endpoint_url)
    the_plan = deploy.plan(iam, lam, cfg, old_pool, new_pool, dynamodb=dynamodb)
    deploy.apply(cognito, iam, lam, the_plan, cfg, dry_run=False, dynamodb=dynamodb)

    generated: list[str] = []
    original = smoke.generate_password

    def recording_generator(*args: int) -> str:
        generated.append(original(*args))
        return generated[-1]

    monkeypatch.setattr(smoke, "generate_password", recording_generator)
    groups = [g["GroupName"] for g in cognito.list_groups(UserPoolId=new_pool["Id"])["Groups"]]
    client = pool.password_client(cognito, new_pool["Id"])
    with caplog.at_level(logging.INFO):
        checks = smoke.run_smoke_test(
            cognito, legacy.pool_id, new_pool["Id"], client, cfg.target_required_attributes, groups, "secrets"
        )

    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert len(generated) >= 3, "the canaries' passwords (right, wrong, temporary) came from the generator"
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/secrets-trigger")["logStreams"]
    trigger_log = "\n".join(
        e["message"]
        for s in streams
        for e in logs.get_log_events(logGroupName="/aws/lambda/secrets-trigger", logStreamName=s["logStreamName"])[
            "events"
        ]
    )
    assert '"outcome": "migrated"' in trigger_log
    captured = capsys.readouterr()
    haystack = "\n".join(
        [caplog.text, captured.out, captured.err, json.dumps([c.__dict__ for c in checks]), trigger_log]
    )
    assert [p for p in generated if p in haystack] == []


@pytest.mark.parametrize("length", [12, 24, 40])
def test_generated_passwords_meet_any_policy(length: int) -> None:
    password = smoke.generate_password(length)
    assert len(password) == length
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)
