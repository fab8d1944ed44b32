"""A step that fails midway, after some writes, and is run again finishes the job with nothing twice; the
outputs keep both runs."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml

from cognito_migration import chain, runbook
from cognito_migration.local.legacy import GROUP_NAMES, legacy_pool_id
from cognito_migration.local.server import FAULTS_VARIABLE

REGION = "us-east-1"
POOL_NAME = "crash-rerun-pool"
STEPS = ("02_create_new_pool", "03_deploy_trigger")


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    values = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "local.yaml").read_text())
    values.update(new_pool_name=POOL_NAME, migration_function_name="crash-rerun-trigger")
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_failed_step_run_again_creates_nothing_twice(
    tmp_path: Path, params_file: Path, monkeypatch: pytest.MonkeyPatch, local_aws
) -> None:
    outputs = tmp_path / "outputs"
    # The third group fails to be created: the pool, its clients and two groups exist when the step dies.
    monkeypatch.setenv(
        FAULTS_VARIABLE,
        json.dumps(
            [
                {
                    "operation": "CreateGroup",
                    "fail_first": 1,
                    "code": "ConcurrentModificationException",
                    "message": "simulated crash after some writes",
                }
            ]
        ),
    )
    with pytest.raises(runbook.RunFailed) as failed:
        runbook.run("local", params_file, outputs, runbook.LocalOptions(users=120), STEPS, progress=False)
    assert "02_create_new_pool" in str(failed.value)

    monkeypatch.delenv(FAULTS_VARIABLE)
    runbook.run("local", params_file, outputs, runbook.LocalOptions(users=120), STEPS, progress=False)
    runbook.run("local", params_file, outputs, runbook.LocalOptions(users=120), STEPS, progress=False)

    cognito = boto3.client("cognito-idp", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    iam = boto3.client("iam", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    pools = [p for p in cognito.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == POOL_NAME]
    assert len(pools) == 1
    pool_id = pools[0]["Id"]
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    assert sorted(c["ClientName"] for c in clients) == sorted(
        c["ClientName"]
        for c in cognito.list_user_pool_clients(UserPoolId=legacy_pool_id(REGION), MaxResults=60)["UserPoolClients"]
    )
    groups = cognito.list_groups(UserPoolId=pool_id, Limit=60)["Groups"]
    assert sorted(g["GroupName"] for g in groups) == sorted(GROUP_NAMES)
    functions = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "crash-rerun-trigger"]
    assert len(functions) == 1
    assert len([r for r in iam.list_roles()["Roles"] if r["RoleName"] == "crash-rerun-trigger-role"]) == 1
    statements = json.loads(lam.get_policy(FunctionName="crash-rerun-trigger")["Policy"])["Statement"]
    assert len(statements) == 1

    runs = sorted(p for p in (outputs / "local").iterdir() if chain.is_run(p))
    outcomes = [json.loads((run / "run.json").read_text())["outcome"] for run in runs]
    assert outcomes == ["failed", "passed", "passed"]
    checked = chain.verify(outputs / "local")
    assert checked.passed and len(checked.runs) == 3, [str(p) for p in checked.problems]  # the failed run too
    failed_notebook = (runs[0] / "02_create_new_pool.ipynb").read_text()
    assert "simulated crash after some writes" in failed_notebook
