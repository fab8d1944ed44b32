"""The local environment of the runbook: the local AWS started in this process, a seeded legacy pool, and a
wave of sign-ins against the new pool so the report has progress to show."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from ..aws import paginate
from ..pool import password_client
from .legacy import LegacyPool, ReplayResult, replay_wave, seed_legacy_pool
from .server import LocalAWS


@dataclass
class LocalEnvironment:
    """Starts the local AWS, seeds the legacy pool and points this process's boto3 (and the notebook kernels
    it starts, which inherit the environment) at it. Restores the environment on close."""

    users: int = 2000
    seed: int = 7
    region: str = "us-east-1"
    port: int = 0
    aws: LocalAWS = field(init=False)
    legacy: LegacyPool = field(init=False)
    seconds_to_start: float = field(default=0.0, init=False)  # the local AWS started and the legacy pool seeded
    _saved_env: dict[str, str | None] = field(default_factory=dict, init=False)

    def start(self) -> LocalEnvironment:
        clock = time.perf_counter()
        self.aws = LocalAWS(port=self.port).start()
        self.legacy = seed_legacy_pool(users=self.users, seed=self.seed, region=self.region)
        # The seeded pool lives as long as this environment: keep the garbage collector from walking its
        # objects at every collection (at 100,000 users that made each call of the local AWS ~10 ms slower).
        gc.freeze()
        self.seconds_to_start = round(time.perf_counter() - clock, 2)
        variables = {
            **self.aws.credentials,
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
        }
        for key, value in variables.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        os.environ.pop("AWS_PROFILE", None)
        return self

    def close(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self.aws.stop()
        gc.unfreeze()

    def __enter__(self) -> LocalEnvironment:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def replay(self, new_pool_name: str, share: float) -> ReplayResult:
        """Signs a share of the legacy users in to the new pool (found by name) through its password client."""
        return replay_into(self.legacy, self.aws.endpoint_url, new_pool_name, share, self.aws.credentials)


def replay_into(
    legacy: LegacyPool,
    endpoint_url: str,
    new_pool_name: str,
    share: float,
    credentials: Mapping[str, str] | None = None,
) -> ReplayResult:
    """The wave against the local AWS at ``endpoint_url``, signed with its ``credentials`` (default: the
    environment's, e.g. what `serve` printed): another local AWS in the same process has other credentials."""
    cognito = boto3.client(
        "cognito-idp",
        region_name=legacy.region,
        endpoint_url=endpoint_url,
        # None: the environment's, as boto3 finds them
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"] if credentials else None,
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"] if credentials else None,
        aws_session_token=credentials.get("AWS_SESSION_TOKEN") if credentials else None,
    )
    pools = [p for p in paginate(cognito, "list_user_pools", "UserPools", MaxResults=60) if p["Name"] == new_pool_name]
    if not pools:
        raise RuntimeError(f"no pool named {new_pool_name} on {endpoint_url}: run steps 1-3 first")
    client = password_client(cognito, pools[0]["Id"])
    return replay_wave(legacy, client["ClientId"], share=share, endpoint_url=endpoint_url, progress=True)
