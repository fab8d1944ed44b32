"""Shared fixtures: the local AWS over real HTTP, and boto3 clients pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cognito_migration import params
from cognito_migration.local.access import new_credentials
from cognito_migration.local.server import LocalAWS
from trigger_support import lambda_context  # noqa: F401  (a fixture the trigger tests share)

REGION = "us-east-1"


@pytest.fixture(scope="session", autouse=True)
def hand_run_outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Parameters without a run_dir (a hand run's) keep their records and the environment's masking key in a
    folder of the session's, never in the project's outputs/."""
    folder = tmp_path_factory.mktemp("outputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(params, "OUTPUTS", folder)
        yield folder


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAWS]:
    """One local AWS for the session; AWS_ENDPOINT_URL and fake credentials point boto3 at it."""
    saved = {k: os.environ.get(k) for k in (*new_credentials(), "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    with LocalAWS() as aws:
        os.environ.update({**aws.credentials, "AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_DEFAULT_REGION": REGION})
        yield aws
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def cognito(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return boto3.client("cognito-idp", region_name=REGION, endpoint_url=local_aws.endpoint_url)


@pytest.fixture
def iam(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return boto3.client("iam", region_name=REGION, endpoint_url=local_aws.endpoint_url)


@pytest.fixture
def lam(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return boto3.client("lambda", region_name=REGION, endpoint_url=local_aws.endpoint_url)


@pytest.fixture
def logs(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return boto3.client("logs", region_name=REGION, endpoint_url=local_aws.endpoint_url)


@pytest.fixture
def dynamodb(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=local_aws.endpoint_url)
