"""Where moto's Cognito differs from AWS on something the runbook relies on, make it behave as AWS does.

Applied once, to the moto classes in this process, by ``LocalAWS.start``:
- ``UsernameConfiguration.CaseSensitive = False`` is honoured: look-ups of a username (or of a username
  attribute such as email) ignore case, so a second user differing only by case is refused as it is in AWS.
- A password sign-in of an UNCONFIRMED user with the right password answers UserNotConfirmedException
  (moto's admin flow lets it in).
- A password sign-in of a RESET_REQUIRED user answers PasswordResetRequiredException.
- A wrong password answers "Incorrect username or password." (moto's message was the username).
- UpdateUserPool keeps the settings fixed at creation (AWS does not accept them there); moto's update
  replaced them, so a pool made case-insensitive turned case-sensitive when a trigger was attached.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.cognitoidp import models
from moto.cognitoidp.exceptions import NotAuthorizedError, UserNotConfirmedException
from moto.core.exceptions import JsonRESTError

FIXED_AT_CREATION = ("AliasAttributes", "UsernameAttributes", "UsernameConfiguration")
_applied = False
_lock = threading.Lock()


class PasswordResetRequiredException(JsonRESTError):
    def __init__(self) -> None:
        super().__init__("PasswordResetRequiredException", "Password reset required for the user")


def is_case_insensitive(pool: models.CognitoIdpUserPool) -> bool:
    return (pool.extended_config.get("UsernameConfiguration") or {}).get("CaseSensitive") is False


def apply() -> None:
    """Patches moto's Cognito models in this process; safe to call more than once."""
    global _applied
    with _lock:
        if _applied:
            return
        _patch_get_user()
        _patch_update_user_pool()
        _patch_password_sign_in("admin_initiate_auth", ("ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"))
        _patch_password_sign_in("initiate_auth", ("USER_PASSWORD_AUTH",))
        _applied = True


def _patch_get_user() -> None:
    exact_get_user = models.CognitoIdpUserPool._get_user

    def get_user(self: models.CognitoIdpUserPool, username: str) -> Any:
        user = exact_get_user(self, username)
        if user is not None or not is_case_insensitive(self) or not username:
            return user
        folded = username.casefold()
        attribute_names = self.extended_config.get("UsernameAttributes") or []
        for candidate in self.users.values():
            if candidate.username.casefold() == folded:
                return candidate
            for name in attribute_names:
                value = candidate.attribute_lookup.get(name)
                if value and value.casefold() == folded:
                    return candidate
        return None

    models.CognitoIdpUserPool._get_user = get_user  # type: ignore[method-assign]


def _patch_update_user_pool() -> None:
    original = models.CognitoIdpBackend.update_user_pool

    def update_user_pool(self: models.CognitoIdpBackend, user_pool_id: str, extended_config: dict[str, Any]) -> None:
        pool = self.describe_user_pool(user_pool_id)
        fixed = {key: pool.extended_config[key] for key in FIXED_AT_CREATION if key in pool.extended_config}
        original(self, user_pool_id, {k: v for k, v in extended_config.items() if k != "UserPoolId"})
        pool.extended_config.update(fixed)

    models.CognitoIdpBackend.update_user_pool = update_user_pool  # type: ignore[method-assign]


def _patch_password_sign_in(method_name: str, flows: tuple[str, ...]) -> None:
    original = getattr(models.CognitoIdpBackend, method_name)

    # admin_initiate_auth(user_pool_id, client_id, auth_flow, auth_parameters) and
    # initiate_auth(client_id, auth_flow, auth_parameters), as moto's responses call them.
    def sign_in(self: models.CognitoIdpBackend, *args: Any) -> Any:
        *head, auth_flow, params = args
        if auth_flow in flows:
            pool = _pool_of_request(self, head)
            user = pool._get_user((params or {}).get("USERNAME", "")) if pool else None
            if user is not None and user.enabled:
                if user.status == models.UserStatus.RESET_REQUIRED:
                    raise PasswordResetRequiredException()
                if user.status == models.UserStatus.UNCONFIRMED:
                    if user.password != (params or {}).get("PASSWORD"):
                        raise NotAuthorizedError("Incorrect username or password.")
                    raise UserNotConfirmedException("User is not confirmed.")
        try:
            return original(self, *args)
        except NotAuthorizedError as exc:
            # moto puts the username in the message of a wrong-password error; AWS does not.
            if auth_flow in flows and exc.message == (params or {}).get("USERNAME"):
                raise NotAuthorizedError("Incorrect username or password.") from None
            raise

    setattr(models.CognitoIdpBackend, method_name, sign_in)


def _pool_of_request(backend: models.CognitoIdpBackend, head: list[Any]) -> models.CognitoIdpUserPool | None:
    if len(head) == 2:  # admin_initiate_auth: the pool id comes first
        return backend.user_pools.get(head[0])
    client_id = head[0]
    return next((p for p in backend.user_pools.values() if client_id in p.clients), None)
