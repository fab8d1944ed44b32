"""Bad input gets a clear error that names the key and the fix, before anything is written.

| case | where it is caught | what the operator reads |
|---|---|---|
| malformed YAML | loading params | the file, "not valid YAML", the line |
| unknown key | validation | "unknown parameter(s) <key>" |
| wrong type | validation | "<key>: expected ..." |
| a password in the parameters | validation | "<key>: passwords never go in parameters" |
| pool id in another Region | validation | "old_user_pool_id: ... not in region ..." |
| defaults contradicting the target schema | validation | "attribute_defaults: ... not in target_required_attributes" |
| a required custom attribute | validation | "target_required_attributes: ... Required custom attributes are not ..." |
| an unknown AWS profile | AWS set-up | "aws_profile: ... cannot be used" |
| missing credentials | AWS set-up | "no AWS credentials" |
| a pool id that does not exist | step 1 | "old_user_pool_id: no user pool ..." |
| the old pool named as the new one | step 2's plan | "new_pool_name: a pool named ... was not made from ..." |
| `rollback --delete` where not `protected: false` | rollback, before AWS | "protected: env ... is protected" |
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli_support import run_runbook
from cognito_migration import __main__ as cli
from cognito_migration import params, pool
from cognito_migration.local.legacy import LEGACY_POOL_NAME, seed_legacy_pool

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to

LOCAL = yaml.safe_load((ROOT / "params" / "local.yaml").read_text())
NO_AWS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def run_cli(tmp_path: Path, text: str, env_name: str = "local", extra_env: dict[str, str] | None = None):
    params_file = tmp_path / f"{env_name}.yaml"
    params_file.write_text(text)
    return run_runbook(
        "--env",
        env_name,
        "--params",
        str(params_file),
        "--outputs",
        str(tmp_path / "outputs"),
        "--users",
        "50",
        "--steps",
        "01_audit_old_pool",
        extra_env=extra_env,
        timeout=300,
    )


def with_changes(**changes: object) -> str:
    return yaml.safe_dump({**LOCAL, **changes})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env: local\nregion: [us-east-1\n", "not valid YAML"),
        (with_changes(colour="blue"), "unknown parameter(s) colour"),
        (with_changes(dry_run="no"), "dry_run: expected true or false"),
        (with_changes(list_rate_limit="fast"), "list_rate_limit: expected a number"),
        (with_changes(target_required_attributes="email"), "target_required_attributes: expected a list"),
        (with_changes(canary_password="hunter2hunter2"), "passwords never go in parameters"),
        (with_changes(region="eu-west-1"), "old_user_pool_id: us-east-1_Legacy001 is not in region eu-west-1"),
        (with_changes(attribute_defaults={"locale": "en"}), "attribute_defaults: locale not in target_required"),
        (
            with_changes(target_required_attributes=["email", "custom:plan"]),
            "target_required_attributes: custom:plan is a custom attribute: Required custom attributes are not",
        ),
        (with_changes(protected="no"), "protected: expected true, false or null"),
    ],
    ids=[
        "malformed-yaml",
        "unknown-key",
        "bool-type",
        "number-type",
        "list-type",
        "password",
        "region",
        "defaults",
        "required-custom",
        "protected-type",
    ],  # fmt: skip
)
def test_parameter_errors_name_the_key_before_anything_runs(tmp_path: Path, text: str, message: str) -> None:
    done = run_cli(tmp_path, text)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists(), "nothing is written for bad parameters"


@pytest.mark.parametrize(
    ("changes", "extra_env", "message"),
    [
        ({"aws_profile": "no-such-profile"}, NO_AWS, "aws_profile: 'no-such-profile' cannot be used"),
        ({}, NO_AWS, "no AWS credentials"),
    ],
    ids=["unknown-profile", "no-credentials"],
)
def test_aws_set_up_errors_say_what_to_set(tmp_path: Path, changes: dict, extra_env: dict, message: str) -> None:
    done = run_cli(tmp_path, yaml.safe_dump({**LOCAL, **changes, "env": "staging"}), "staging", extra_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


def test_a_pool_that_does_not_exist_fails_the_audit_with_the_key(tmp_path: Path) -> None:
    done = run_cli(tmp_path, with_changes(old_user_pool_id="us-east-1_Missing99"))
    assert done.returncode == 1
    assert "old_user_pool_id: no user pool us-east-1_Missing99" in done.stderr
    (run,) = (p for p in (tmp_path / "outputs" / "local").iterdir() if p.is_dir())  # not the masking key
    assert "old_user_pool_id: no user pool" in (run / "01_audit_old_pool.ipynb").read_text()


def test_the_old_pool_named_as_the_new_one_is_refused_before_any_write(local_aws, cognito) -> None:
    legacy = seed_legacy_pool(users=20, seed=5)
    cfg = params.validate({**LOCAL, "new_pool_name": LEGACY_POOL_NAME})
    before = cognito.list_user_pools(MaxResults=60)["UserPools"]
    old_pool = cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]
    with pytest.raises(pool.PoolError, match="new_pool_name: a pool named legacy-users exists but was not made"):
        pool.plan(cognito, cfg, old_pool)
    assert cognito.list_user_pools(MaxResults=60)["UserPools"] == before


@pytest.mark.parametrize(("env_name", "protected"), [("prod2", None), ("live", None), ("dev", True)])
def test_rollback_delete_refuses_a_protected_environment_before_any_aws_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env_name: str, protected
) -> None:
    params_file = tmp_path / f"{env_name}.yaml"
    values = {k: v for k, v in {**LOCAL, "env": env_name, "protected": protected}.items() if v is not None}
    params_file.write_text(yaml.safe_dump(values))
    for key, value in NO_AWS.items():  # any AWS call would fail with a set-up error instead
        monkeypatch.setenv(key, value)

    code = cli.main(["rollback", "--env", env_name, "--params", str(params_file), "--delete", "--apply"])

    message = capsys.readouterr().err
    assert code == 1, message
    assert f"protected: env {env_name} is protected" in message
    assert f"set protected: false in params/{env_name}.yaml" in message
