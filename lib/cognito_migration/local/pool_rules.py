"""Rules AWS enforces on CreateUserPool and UpdateUserPool requests that moto skips: checked before moto sees
the request, refused with AWS's error code and message.

The local AWS is never more lenient than AWS: a runbook that sends back what DescribeUserPool returned must
meet here the refusal it would meet there. Each rule names its source; the README's fidelity ledger lists
them, and what could not be sourced.

- UnusedAccountValidityDays beside TemporaryPasswordValidityDays: InvalidParameterException "Please use
  TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"
  (hashicorp/terraform-provider-aws#8845, aws/aws-sdk-js#3817, pulumi/pulumi-aws-native#1256). DescribeUserPool
  of older pools returns both, so a read-modify-write echoes them and fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from moto.cognitoidp.exceptions import InvalidParameterException
from moto.cognitoidp.responses import CognitoIdpResponse

Rule = Callable[[Mapping[str, Any]], "str | None"]  # a request's parameters -> AWS's message, or None

UNUSED_ACCOUNT_VALIDITY_MESSAGE = (
    "Please use TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"
)
_applied = False
_lock = threading.Lock()


def unused_account_validity_days(parameters: Mapping[str, Any]) -> str | None:
    """The deprecated field may not travel with its successor (sources in the module's docstring)."""
    deprecated = (parameters.get("AdminCreateUserConfig") or {}).get("UnusedAccountValidityDays")
    successor = ((parameters.get("Policies") or {}).get("PasswordPolicy") or {}).get("TemporaryPasswordValidityDays")
    if deprecated is not None and successor is not None:
        return UNUSED_ACCOUNT_VALIDITY_MESSAGE
    return None


POOL_RULES: tuple[Rule, ...] = (unused_account_validity_days,)


def refusal(parameters: Mapping[str, Any]) -> str | None:
    """The message of the first rule the request breaks, or None when AWS would accept it."""
    return next((message for rule in POOL_RULES if (message := rule(parameters)) is not None), None)


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
        message = refusal(self.parameters)
        if message is not None:
            raise InvalidParameterException(message)
        return original(self)

    setattr(CognitoIdpResponse, operation, checked)
