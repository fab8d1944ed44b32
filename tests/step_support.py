"""Helpers shared by the step-module tests: unique names and parameters for a step run."""

from __future__ import annotations

import uuid
from typing import Any

from cognito_migration.params import Params, validate

REGION = "us-east-1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def step_params(old_pool_id: str = f"{REGION}_OldPool01", **overrides: Any) -> Params:
    return validate(
        {
            "region": REGION,
            "old_user_pool_id": old_pool_id,
            "old_client_id": "oldclient0001",
            "new_pool_name": unique("users-v2"),
            "migration_function_name": unique("migration"),
            "dry_run": False,
            **overrides,
        }
    )
