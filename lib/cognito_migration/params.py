"""The runbook's parameters: one schema, loaded from YAML or a notebook's namespace, checked before any write.

Every error names the key and the fix. Passwords are never parameters: a key that looks like one is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

MFA_POLICIES = ("reset_required", "sms", "refuse")
POOL_ID = re.compile(r"^[\w-]+_[0-9a-zA-Z]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SECRET_LOOKING = re.compile(r"(password|secret|passwd|pwd)", re.IGNORECASE)


class ParameterError(ValueError):
    """A parameter is missing, unknown or invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class Params:
    """Every parameter of the runbook. The README documents each; notebooks declare the ones they use."""

    env: str = "local"
    region: str = "us-east-1"
    aws_profile: str | None = None
    old_user_pool_id: str = ""
    old_client_id: str = ""
    new_pool_name: str = "users-v2"
    target_case_sensitive: bool = False
    target_required_attributes: tuple[str, ...] = ("email",)
    attribute_defaults: dict[str, str] = field(default_factory=dict)
    migration_function_name: str = "cognito-user-migration"
    mfa_policy: str = "reset_required"
    dry_run: bool = True
    mask_pii: bool = True
    list_rate_limit: float = 15.0
    run_dir: str = ""

    @property
    def records_dir(self) -> Path:
        """Where this run's records go: the runner's run directory, or outputs/<env>/manual."""
        return Path(self.run_dir) if self.run_dir else Path("outputs") / self.env / "manual"

    def digest(self) -> str:
        """A stable fingerprint of the parameters that shape the migration (run_dir excluded)."""
        data = {k: v for k, v in asdict(self).items() if k != "run_dir"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()


FIELDS = {f.name: f for f in fields(Params)}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a params file; errors say which file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{path}: no such parameters file; copy params/example-production.yaml and edit it")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML ({exc}); fix the syntax at the line shown") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: must be a mapping of parameter names to values, got {type(data).__name__}")
    return data


def validate(values: Mapping[str, Any], *, allow_unknown: bool = False) -> Params:
    """Builds Params from a mapping, refusing unknown keys (unless allowed), wrong types and bad values."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown and not allow_unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}: remove them or check the spelling against the README"
        )
    secret_keys = [k for k in values if SECRET_LOOKING.search(k)]
    if secret_keys:
        raise ParameterError(f"{secret_keys[0]}: passwords never go in parameters; remove this key")
    kwargs = {name: _coerce(name, values[name]) for name in FIELDS if name in values}
    params = Params(**kwargs)
    _check(params)
    return params


def from_namespace(namespace: Mapping[str, Any]) -> Params:
    """Builds Params from a notebook's globals: the parameters cell plus what papermill injected."""
    return validate({k: v for k, v in namespace.items() if k in FIELDS})


def _coerce(name: str, value: Any) -> Any:
    expected = FIELDS[name].type
    if expected == "bool":
        if not isinstance(value, bool):
            raise ParameterError(f"{name}: expected true or false, got {value!r}")
        return value
    if expected == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if expected == "tuple[str, ...]":
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ParameterError(f"{name}: expected a list of attribute names, e.g. [email, name]; got {value!r}")
        return tuple(value)
    if expected == "dict[str, str]":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ParameterError(f"{name}: expected a mapping such as {{name: Unknown}}; got {value!r}")
        return {k: str(v) for k, v in value.items()}
    if expected == "str | None":
        if value is not None and not isinstance(value, str):
            raise ParameterError(f"{name}: expected a profile name or null, got {value!r}")
        return value or None
    if not isinstance(value, str):
        raise ParameterError(f"{name}: expected a string, got {value!r}")
    return value


def _check(p: Params) -> None:
    if not NAME.match(p.env):
        raise ParameterError(f"env: {p.env!r} must be a short name such as local, staging or production")
    if not REGION.match(p.region):
        raise ParameterError(f"region: {p.region!r} is not an AWS Region name such as eu-west-1")
    if not POOL_ID.match(p.old_user_pool_id):
        raise ParameterError(
            f"old_user_pool_id: {p.old_user_pool_id!r} is not a user pool id (<region>_<id>, e.g. eu-west-1_AbC123xyz)"
        )
    if not p.old_user_pool_id.startswith(p.region + "_"):
        raise ParameterError(
            f"old_user_pool_id: {p.old_user_pool_id} is not in region {p.region}; set region to the pool's Region"
        )
    if not p.old_client_id:
        raise ParameterError(
            "old_client_id: required: an old-pool app client that allows ALLOW_ADMIN_USER_PASSWORD_AUTH"
        )
    if not NAME.match(p.new_pool_name) or not NAME.match(p.migration_function_name):
        raise ParameterError("new_pool_name / migration_function_name: use letters, digits, '.', '_' or '-' (max 64)")
    if p.mfa_policy not in MFA_POLICIES:
        raise ParameterError(f"mfa_policy: {p.mfa_policy!r} must be one of {', '.join(MFA_POLICIES)}")
    if p.list_rate_limit <= 0 or p.list_rate_limit > 30:
        raise ParameterError(
            f"list_rate_limit: {p.list_rate_limit} must be above 0 and at most 30 (Cognito's UserList quota, "
            "shared with production: half of it is a safe choice)"
        )
    if "email" not in p.target_required_attributes and "email" in p.attribute_defaults:
        raise ParameterError("attribute_defaults: email cannot be defaulted: it identifies the user")
    missing_defaults = [a for a in p.attribute_defaults if a not in p.target_required_attributes]
    if missing_defaults:
        raise ParameterError(
            f"attribute_defaults: {', '.join(missing_defaults)} not in target_required_attributes; "
            "defaults fill only attributes the new pool requires"
        )
