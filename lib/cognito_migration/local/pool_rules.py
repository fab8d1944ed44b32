"""Rules AWS enforces on CreateUserPool and UpdateUserPool requests that moto skips: checked before moto sees
the request, refused with AWS's error code and message.

The local AWS is never more lenient than AWS: a runbook that sends back what DescribeUserPool returned must
meet here the refusal it would meet there. Each rule names its source; the fidelity ledger (docs/fidelity.md) lists
them, and what could not be sourced.

- UnusedAccountValidityDays beside TemporaryPasswordValidityDays: InvalidParameterException "Please use
  TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"
  (hashicorp/terraform-provider-aws#8845, aws/aws-sdk-js#3817, pulumi/pulumi-aws-native#1256). DescribeUserPool
  of older pools returns both, so a read-modify-write echoes them and fails.
- Threat protection (UserPoolAddOns AdvancedSecurityMode AUDIT or ENFORCED) on the Essentials feature plan
  (UserPoolTier ESSENTIALS, the default of a new pool): FeatureUnavailableInTierException "The following
  features need to be disabled for the ESSENTIALS pricing tier configured: Threat Protection"
  (hashicorp/terraform-provider-aws#40734, aws/aws-cdk#33565). It needs PLUS (or an older pool's LITE).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from moto.cognitoidp.exceptions import InvalidParameterException
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.exceptions import JsonRESTError

# a request's parameters (and whether it creates the pool) -> AWS's (error code, message), or None
Rule = Callable[[Mapping[str, Any], bool], "tuple[str, str] | None"]

UNUSED_ACCOUNT_VALIDITY_MESSAGE = (
    "Please use TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"
)
_applied = False
_lock = threading.Lock()


def unused_account_validity_days(parameters: Mapping[str, Any], creating: bool) -> tuple[str, str] | None:
    """The deprecated field may not travel with its successor (sources in the module's docstring)."""
    deprecated = (parameters.get("AdminCreateUserConfig") or {}).get("UnusedAccountValidityDays")
    successor = ((parameters.get("Policies") or {}).get("PasswordPolicy") or {}).get("TemporaryPasswordValidityDays")
    if deprecated is not None and successor is not None:
        return "InvalidParameterException", UNUSED_ACCOUNT_VALIDITY_MESSAGE
    return None


THREAT_PROTECTION_MESSAGE = (
    "The following features need to be disabled for the ESSENTIALS pricing tier configured: Threat Protection"
)


def threat_protection_needs_its_plan(parameters: Mapping[str, Any], creating: bool) -> tuple[str, str] | None:
    """Threat protection is not part of the Essentials plan, a new pool's default (sources in the docstring).
    An update that names no tier keeps the pool's: only a create is judged by the default."""
    mode = (parameters.get("UserPoolAddOns") or {}).get("AdvancedSecurityMode", "OFF")
    tier = parameters.get("UserPoolTier") or ("ESSENTIALS" if creating else None)
    if mode != "OFF" and tier == "ESSENTIALS":
        return "FeatureUnavailableInTierException", THREAT_PROTECTION_MESSAGE
    return None


POOL_RULES: tuple[Rule, ...] = (unused_account_validity_days, threat_protection_needs_its_plan)


def refusal(parameters: Mapping[str, Any], creating: bool = True) -> tuple[str, str] | None:
    """The (error code, message) of the first rule the request breaks, or None when AWS would accept it."""
    return next((found for rule in POOL_RULES if (found := rule(parameters, creating)) is not None), None)


def apply() -> None:
    """Checks CreateUserPool and UpdateUserPool requests in moto's responses; safe to call more than once.
    Only requests are checked: the legacy-pool generator writes moto's backend directly, as an old pool that
    AWS still describes with both fields was made before the rule existed."""
    global _applied
    with _lock:
        if _applied:
            return
        for operation in ("create_user_pool", "update_user_pool"):
            _check_before(operation)
        _applied = True


def _check_before(operation: str) -> None:
    original = getattr(CognitoIdpResponse, operation)

    def checked(self: CognitoIdpResponse) -> Any:
        found = refusal(self.parameters, creating=operation == "create_user_pool")
        if found is not None:
            code, message = found
            if code == "InvalidParameterException":
                raise InvalidParameterException(message)
            raise JsonRESTError(code, message)
        return original(self)

    setattr(CognitoIdpResponse, operation, checked)
