"""The new pool's settings: the old pool's, with only the changes the parameters declare; and the plan rows
(``Item``) step 2 shows about them.

Pure functions over DescribeUserPool and GetUserPoolMfaConfig answers; ``pool`` does the reading and writing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .params import PASSWORD_POLICY_FLAGS, Params

SIGN_IN_KEYS = ("UsernameAttributes", "AliasAttributes")
# Settings Cognito fixes at creation: a difference means a new pool, never an update.
FIXED_KEYS = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")
# A trigger and the settings it cannot work without travel together.
TRIGGER_COMPANIONS = {
    "PreTokenGeneration": ("PreTokenGenerationConfig",),
    "PreTokenGenerationConfig": ("PreTokenGeneration",),
    "CustomSMSSender": ("KMSKeyID",),
    "CustomEmailSender": ("KMSKeyID",),
}
MFA_FACTORS = ("SmsMfaConfiguration", "SoftwareTokenMfaConfiguration", "EmailMfaConfiguration")
# A plan row's action: what step 2 does about one resource.
CREATE, EXISTS, DRIFT, MANUAL = "create", "exists", "drift", "manual"
CARRY, DROP, WARN, CHANGE = "carry", "drop", "warn", "change"  # CHANGE: a setting the parameters declare
REPAIR = "repair"  # what step 2 itself set, found otherwise (a step that failed half-way): set again
TRIGGER, POLICY, DEPRECATED = "old pool trigger", "password policy", "deprecated setting"
AUTO_VERIFIED = "auto-verified attributes"
# What a pool that auto-verifies neither email nor phone_number cannot do (developer guide: "Creating the user
# import .csv file"; forgot-password and RESET_REQUIRED users need a verified contact to receive a code).
WITHOUT_AUTO_VERIFIED = (
    "the new pool auto-verifies neither email nor phone_number: forgot-password codes cannot be sent, "
    "RESET_REQUIRED migrations cannot finish, and Cognito starts no user import job (step 6 imports nobody)"
)
UNUSED_ACCOUNT_VALIDITY = "AdminCreateUserConfig.UnusedAccountValidityDays"


class PoolError(RuntimeError):
    """The new pool cannot be created or found as declared; the message names the fix."""


@dataclass(frozen=True)
class Item:
    """One row of a plan. ``wanted`` is the create input (without UserPoolId); ``secrets`` maps a provider
    detail to the environment variable it is read from at apply time (never stored in the plan)."""

    resource: str
    name: str
    action: str
    detail: str = ""
    wanted: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    secrets: tuple[tuple[str, str], ...] = ()


def input_members(cognito: Any, operation: str) -> set[str]:
    """The parameters an operation accepts, from botocore's service model (the API's own contract)."""
    return set(cognito.meta.service_model.operation_model(operation).input_shape.members)


def deprecated_fields(settings: Mapping[str, Any]) -> list[str]:
    """What a pool's settings carry that AWS refuses to be sent back in CreateUserPool or UpdateUserPool:
    ``AdminCreateUserConfig.UnusedAccountValidityDays`` beside ``Policies.PasswordPolicy.
    TemporaryPasswordValidityDays`` (InvalidParameterException "Please use TemporaryPasswordValidityDays in
    PasswordPolicy instead of UnusedAccountValidityDays"; DescribeUserPool of older pools returns both)."""
    deprecated = (settings.get("AdminCreateUserConfig") or {}).get("UnusedAccountValidityDays")
    successor = ((settings.get("Policies") or {}).get("PasswordPolicy") or {}).get("TemporaryPasswordValidityDays")
    return [UNUSED_ACCOUNT_VALIDITY] if deprecated is not None and successor is not None else []


def without_deprecated(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as AWS accepts them back: what ``deprecated_fields`` names removed, nothing else changed
    (the successor already holds the value that counts). Every CreateUserPool and UpdateUserPool input the
    runbook builds from a DescribeUserPool answer passes through here."""
    result = dict(settings)
    if UNUSED_ACCOUNT_VALIDITY in deprecated_fields(settings):
        config = {k: v for k, v in result["AdminCreateUserConfig"].items() if k != "UnusedAccountValidityDays"}
        if config:
            result["AdminCreateUserConfig"] = config
        else:
            del result["AdminCreateUserConfig"]
    return result


def deprecated_items(old_pool: Mapping[str, Any]) -> list[Item]:
    """Step 2's plan says what it leaves out of the old pool's settings, and why."""
    if UNUSED_ACCOUNT_VALIDITY not in deprecated_fields(old_pool):
        return []
    days = old_pool["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"]
    detail = (
        'deprecated: AWS refuses it beside Policies.PasswordPolicy.TemporaryPasswordValidityDays ("Please use '
        f'TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"); not copied, '
        f"the new pool's temporary passwords stay valid {days} days as the old pool's"
    )
    return [Item(DEPRECATED, UNUSED_ACCOUNT_VALIDITY, DROP, detail)]


def auto_verified(old_pool: Mapping[str, Any], params: Params) -> list[str]:
    """The new pool's AutoVerifiedAttributes: the declared ones, else the old pool's."""
    declared = params.target_auto_verified_attributes
    return list(declared) if declared is not None else list(old_pool.get("AutoVerifiedAttributes") or [])


def auto_verified_items(old_pool: Mapping[str, Any], pool_input: Mapping[str, Any]) -> list[Item]:
    """A declared change of AutoVerifiedAttributes, and a new pool without one, are shown in the plan."""
    old = sorted(old_pool.get("AutoVerifiedAttributes") or [])
    new = sorted(pool_input.get("AutoVerifiedAttributes") or [])
    contact = [a for a in new if a in ("email", "phone_number")]
    if old == new and contact:
        return []
    detail = f"old pool: {', '.join(old) or 'none'}; new pool: {', '.join(new) or 'none'}"
    if not contact:
        return [Item(AUTO_VERIFIED, "AutoVerifiedAttributes", WARN, f"{detail}: {WITHOUT_AUTO_VERIFIED}")]
    declared = f"{detail} (declared: target_auto_verified_attributes)"
    return [Item(AUTO_VERIFIED, "AutoVerifiedAttributes", CHANGE, declared)]


def sign_in_attributes(old_pool: Mapping[str, Any], params: Params) -> dict[str, list[str]]:
    """Username/alias attributes: the old pool's, unless either is declared (then both come from the
    parameters, because Cognito accepts only one of the two)."""
    if params.target_username_attributes is None and params.target_alias_attributes is None:
        return {key: list(old_pool.get(key) or []) for key in SIGN_IN_KEYS}
    return {
        "UsernameAttributes": list(params.target_username_attributes or []),
        "AliasAttributes": list(params.target_alias_attributes or []),
    }


def merged(old: Mapping[str, Any] | None, declared: Mapping[str, Any]) -> dict[str, Any]:
    """``declared`` over ``old``, mapping values merged one level down (Policies.PasswordPolicy...)."""
    result = dict(old or {})
    for key, value in declared.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = {**result[key], **value}
        else:
            result[key] = value
    return result


def stronger_password_policy(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """How the new password policy is stricter than the old one (empty when it is not)."""
    before, after = dict((old or {}).get("PasswordPolicy") or {}), dict((new or {}).get("PasswordPolicy") or {})
    stricter = [
        f"{key} {before.get(key, 0)} -> {after[key]}"
        for key in ("MinimumLength", "PasswordHistorySize")
        if after.get(key, 0) > before.get(key, 0)
    ]
    stricter += [flag for flag in PASSWORD_POLICY_FLAGS if after.get(flag) and not before.get(flag)]
    return stricter


def carried_triggers(old_config: Mapping[str, Any], carry: Iterable[str]) -> dict[str, Any]:
    """The old pool's triggers named in ``carry`` (with their companions); the others stay behind."""
    keys = set(carry)
    for key in list(keys):
        keys.update(TRIGGER_COMPANIONS.get(key, ()))
    return {key: value for key, value in old_config.items() if key in keys}


def trigger_function(value: Any) -> str:
    """The function a LambdaConfig entry names (some entries are {LambdaArn, LambdaVersion} mappings)."""
    return str(value.get("LambdaArn", "")) if isinstance(value, Mapping) else str(value)


def mfa_input(
    accepted: set[str], old_mfa: Mapping[str, Any], params: Params, sms_configuration: Mapping[str, Any] | None
) -> dict[str, Any]:
    """SetUserPoolMfaConfig's input (without UserPoolId): the old pool's factors and level, the declared level,
    the new SMS configuration; TOTP switched on when MFA is declared on and the old pool had no factor."""
    wanted = {k: v for k, v in old_mfa.items() if k in accepted - {"UserPoolId"} and v not in (None, {}, [])}
    wanted["MfaConfiguration"] = params.target_mfa_configuration or old_mfa.get("MfaConfiguration") or "OFF"
    if "SmsMfaConfiguration" in wanted and sms_configuration:
        wanted["SmsMfaConfiguration"] = {**wanted["SmsMfaConfiguration"], "SmsConfiguration": dict(sms_configuration)}
    if wanted["MfaConfiguration"] != "OFF" and not any(_factor_on(wanted, f) for f in MFA_FACTORS):
        wanted["SoftwareTokenMfaConfiguration"] = {"Enabled": True}
    return wanted


def _factor_on(mfa: Mapping[str, Any], factor: str) -> bool:
    config = mfa.get(factor)
    if not config:
        return False
    return bool(config.get("Enabled", True)) if factor == "SoftwareTokenMfaConfiguration" else True


def normalized(value: Any) -> Any:
    """A comparable form: lists of scalars sorted, empty values as None, mappings recursively."""
    if isinstance(value, Mapping):
        entries = {k: normalized(v) for k, v in value.items()}
        return {k: v for k, v in entries.items() if v is not None} or None
    if isinstance(value, (list, tuple)):
        items = [normalized(v) for v in value]
        if not items:
            return None
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return None if value == "" else value


def differences(wanted: Mapping[str, Any], actual: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """The keys among ``keys`` whose values differ once normalized (absent, empty and None are alike)."""
    return sorted(k for k in keys if normalized(wanted.get(k)) != normalized(actual.get(k)))


def pool_drift(pool_input: Mapping[str, Any], new_pool: Mapping[str, Any]) -> list[str]:
    """What differs between the pool step 2 would create and the one that exists: settings by name,
    carried triggers one by one (step 3 adds its own), custom and required attributes."""
    keys = (set(pool_input) | set(FIXED_KEYS)) - {"PoolName", "Schema", "LambdaConfig"}
    drift = differences(pool_input, new_pool, keys)
    current_triggers = new_pool.get("LambdaConfig") or {}
    drift += [
        f"LambdaConfig.{key}"
        for key, value in (pool_input.get("LambdaConfig") or {}).items()
        if current_triggers.get(key) != value
    ]
    schema = {a["Name"]: a for a in new_pool.get("SchemaAttributes") or []}
    for attribute in pool_input.get("Schema") or []:
        name = attribute["Name"]
        found = schema.get(name) or schema.get(f"custom:{name}")
        if found is None:
            drift.append(f"Schema.{name} missing")
        elif attribute.get("Required") and not found.get("Required"):
            drift.append(f"Schema.{name} not required")
    return drift


def trigger_items(old_pool: dict[str, Any], pool_input: dict[str, Any], params: Params) -> list[Item]:
    """Each old trigger is carried or dropped by the operator's explicit choice (carry_triggers)."""
    old_config = old_pool.get("LambdaConfig") or {}
    carried = pool_input.get("LambdaConfig") or {}
    items = [] if old_config else [Item(TRIGGER, "-", "none", "the old pool has no triggers")]
    for key, value in sorted(old_config.items()):
        function = trigger_function(value)
        if key in carried:
            detail = (
                f"{function}: allow cognito-idp.amazonaws.com to invoke it for the new pool's ARN (manual: "
                "its permission names the old pool)"
            )
            items.append(Item(TRIGGER, key, CARRY, detail))
        else:
            items.append(Item(TRIGGER, key, DROP, f"{function}: not carried (carry_triggers lists what to carry)"))
    for key in sorted(set(params.carry_triggers) - set(old_config)):
        items.append(Item(TRIGGER, key, WARN, "carry_triggers names it, but the old pool has no such trigger"))
    return items


def policy_items(old_pool: dict[str, Any], pool_input: dict[str, Any]) -> list[Item]:
    stricter = stronger_password_policy(old_pool.get("Policies"), pool_input.get("Policies"))
    if not stricter:
        return []
    detail = (
        f"stronger than the old pool's ({', '.join(stricter)}): migrated users keep passwords that may not meet "
        "it (the trigger does not check them against it); new passwords and resets must"
    )
    return [Item(POLICY, "PasswordPolicy", WARN, detail)]
