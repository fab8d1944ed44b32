"""Where moto's Cognito differs from AWS on something the runbook relies on, make it behave as AWS does.

Applied once, to the moto classes in this process, by ``LocalAWS.start``:
- ``UsernameConfiguration.CaseSensitive = False`` is honoured: look-ups of a username (or of a username
  attribute such as email) ignore case, so a second user differing only by case is refused as it is in AWS.
- A password sign-in of an UNCONFIRMED user with the right password answers UserNotConfirmedException
  (moto's admin flow lets it in).
- A password sign-in of a RESET_REQUIRED user answers PasswordResetRequiredException, or, through an app client
  with ``PreventUserExistenceErrors: ENABLED``, NotAuthorizedException "Incorrect username or password." (the
  developer guide, "Requiring imported users to reset their passwords" and "Managing user existence error
  responses"); under ENABLED a password sign-in of a user the pool lacks answers the same (moto:
  UserNotFoundException whatever the client says).
- ForgotPassword of a user the pool lacks answers UserNotFoundException through a LEGACY client (moto sent a code
  to nobody); through an ENABLED client it answers a simulated CodeDeliveryDetails, as moto does.
- A wrong password answers "Incorrect username or password." (moto's message was the username).
- ConfirmForgotPassword ends a required reset: a RESET_REQUIRED user becomes CONFIRMED with the new password
  (moto left them RESET_REQUIRED, so an imported user could never finish the first sign-in).
- UpdateUserPool keeps the settings fixed at creation (AWS does not accept them there); moto's update
  replaced them, so a pool made case-insensitive turned case-sensitive when a trigger was attached.
- CreateUserPool and UpdateUserPool requests AWS refuses are refused (``pool_rules``).

And where moto's cost grows with the pool on every call, index it, so a 100,000-user pool answers as fast as a
2,000-user one (the answers themselves are unchanged):
- a case-insensitive look-up that misses is one dict look-up in an index of case-folded usernames (it was a
  scan of every user: each sign-in to, or import into, the new pool paid for its whole size);
- ListUsers and ListUsersInGroup pages: moto rebuilt and filtered the whole list, then searched it for the
  page's token, on every page (a whole-pool read was quadratic). The listing is kept per pool and filter while
  the pool's users (and the group's members) are unchanged, and the token is found by position.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections import OrderedDict
from typing import Any

from moto.cognitoidp import models
from moto.cognitoidp.exceptions import NotAuthorizedError, UserNotConfirmedException, UserNotFoundError
from moto.core.exceptions import JsonRESTError
from moto.utilities import paginator

from . import pool_rules

FIXED_AT_CREATION = ("AliasAttributes", "UsernameAttributes", "UsernameConfiguration")
GENERIC_SIGN_IN_REFUSAL = "Incorrect username or password."
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
        _patch_indexed_users()
        _patch_listings()
        _patch_update_user_pool()
        _patch_password_sign_in("admin_initiate_auth", ("ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"))
        _patch_password_sign_in("initiate_auth", ("USER_PASSWORD_AUTH",))
        _patch_confirm_forgot_password()
        _patch_forgot_password()
        pool_rules.apply()  # and refuse the pool requests AWS refuses
        _applied = True


class IndexedUsers(OrderedDict):
    """A pool's users by username, as moto keeps them, with a version bumped on every change and an index of
    case-folded usernames (a list each: a case-sensitive pool may hold "Bob" and "bob")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.version = 0
        self.folded: dict[str, list[str]] = {}
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            self.folded.setdefault(key.casefold(), []).append(key)
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        keys = self.folded[key.casefold()]
        keys.remove(key)
        if not keys:
            del self.folded[key.casefold()]
        self.version += 1

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        value = self[key]
        del self[key]
        return value

    def popitem(self, last: bool = True) -> tuple[str, Any]:
        key = next(reversed(self)) if last else next(iter(self))
        return key, self.pop(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        super().clear()
        self.folded.clear()
        self.version += 1

    def by_folded_name(self, folded: str) -> Any:
        keys = self.folded.get(folded)
        return self[keys[0]] if keys else None


class VersionedSet(set):
    """A group's members, with a version bumped on every change (moto changes them with add and discard/remove)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.version = 0

    def add(self, item: Any) -> None:
        super().add(item)
        self.version += 1

    def discard(self, item: Any) -> None:
        super().discard(item)
        self.version += 1

    def remove(self, item: Any) -> None:
        super().remove(item)
        self.version += 1

    def clear(self) -> None:
        super().clear()
        self.version += 1


def _patch_indexed_users() -> None:
    """Pools keep their users in IndexedUsers and groups their members in VersionedSet (the listings below rely
    on both); a case-insensitive look-up that misses uses the index of case-folded names."""
    exact_get_user = models.CognitoIdpUserPool._get_user
    pool_init = models.CognitoIdpUserPool.__init__
    group_init = models.CognitoIdpGroup.__init__

    def init_pool(self: models.CognitoIdpUserPool, *args: Any, **kwargs: Any) -> None:
        pool_init(self, *args, **kwargs)
        self.users = IndexedUsers(self.users)

    def init_group(self: models.CognitoIdpGroup, *args: Any, **kwargs: Any) -> None:
        group_init(self, *args, **kwargs)
        self.users = VersionedSet(self.users)

    def get_user(self: models.CognitoIdpUserPool, username: str) -> Any:
        user = exact_get_user(self, username)
        if user is not None or not is_case_insensitive(self) or not username:
            return user
        folded = username.casefold()
        attribute_names = self.extended_config.get("UsernameAttributes") or []
        if not attribute_names and isinstance(self.users, IndexedUsers):
            return self.users.by_folded_name(folded)
        for candidate in self.users.values():
            if candidate.username.casefold() == folded:
                return candidate
            for name in attribute_names:
                value = candidate.attribute_lookup.get(name)
                if value and value.casefold() == folded:
                    return candidate
        return None

    models.CognitoIdpUserPool.__init__ = init_pool
    models.CognitoIdpGroup.__init__ = init_group
    models.CognitoIdpUserPool._get_user = get_user


class Listing(list):
    """One listing's users in moto's order, with each user's position: a page token is found in one step."""

    def __init__(self, users: list[Any], stamp: tuple[Any, ...]) -> None:
        super().__init__(users)
        self.stamp = stamp
        self.position = {str(user.id): index for index, user in enumerate(users)}


# Filters on attributes a user cannot change: while the pool's users are the same, so is the listing.
_STABLE_FILTER = re.compile(r'^\s*(sub|username)\s*(=|\^=)\s*"[^"]*"\s*$')
_LISTINGS_KEPT = 64


def _patch_listings() -> None:
    # moto's own methods, without its paginate decorator
    list_users = inspect.unwrap(models.CognitoIdpBackend.list_users)
    list_users_in_group = inspect.unwrap(models.CognitoIdpBackend.list_users_in_group)
    listings: OrderedDict[tuple[Any, ...], Listing] = OrderedDict()
    lock = threading.Lock()

    def kept(key: tuple[Any, ...], stamp: tuple[Any, ...], build: Any) -> Listing:
        with lock:
            listing = listings.get(key)
            if listing is not None and listing.stamp == stamp:
                listings.move_to_end(key)
                return listing
        listing = Listing(build(), stamp)
        with lock:
            listings[key] = listing
            while len(listings) > _LISTINGS_KEPT:
                listings.popitem(last=False)
        return listing

    def users_listing(self: models.CognitoIdpBackend, user_pool_id: str, filt: str) -> list[Any]:
        pool = self.describe_user_pool(user_pool_id)
        if not isinstance(pool.users, IndexedUsers) or (filt and not _STABLE_FILTER.match(filt)):
            return Listing(list_users(self, user_pool_id, filt), ())
        stamp = (id(pool.users), pool.users.version)
        return kept(("users", id(pool), filt), stamp, lambda: list_users(self, user_pool_id, filt))

    def group_listing(self: models.CognitoIdpBackend, user_pool_id: str, group_name: str) -> list[Any]:
        pool = self.describe_user_pool(user_pool_id)
        group = self.get_group(user_pool_id, group_name)
        if not isinstance(pool.users, IndexedUsers) or not isinstance(group.users, VersionedSet):
            return Listing(list_users_in_group(self, user_pool_id, group_name), ())
        stamp = (id(pool.users), pool.users.version, id(group.users), group.users.version)
        return kept(("group", id(pool), group_name), stamp, lambda: list_users_in_group(self, user_pool_id, group_name))

    paginate_page = paginator.Paginator.paginate

    def paginate(self: paginator.Paginator, results: list[Any]) -> tuple[list[Any], str | None]:
        parsed = self._parsed_token
        if not isinstance(results, Listing) or not self._starting_token or parsed is None:
            return paginate_page(self, results)
        start = results.position.get(parsed["uniqueAttributes"])
        if start is None:  # moto's own answer to a token it cannot place
            return paginate_page(self, results)
        end = min(start + self._max_results, len(results))
        next_token = self._build_next_token(results[end]) if end < len(results) else None
        return results[start:end], next_token

    # moto's paginate decorator finds its configuration by the method's name.
    users_listing.__name__, group_listing.__name__ = "list_users", "list_users_in_group"
    models.CognitoIdpBackend.list_users = models.paginate(models.PAGINATION_MODEL)(users_listing)
    models.CognitoIdpBackend.list_users_in_group = models.paginate(models.PAGINATION_MODEL)(group_listing)
    paginator.Paginator.paginate = paginate


def _patch_update_user_pool() -> None:
    original = models.CognitoIdpBackend.update_user_pool

    def update_user_pool(self: models.CognitoIdpBackend, user_pool_id: str, extended_config: dict[str, Any]) -> None:
        pool = self.describe_user_pool(user_pool_id)
        fixed = {key: pool.extended_config[key] for key in FIXED_AT_CREATION if key in pool.extended_config}
        original(self, user_pool_id, {k: v for k, v in extended_config.items() if k != "UserPoolId"})
        pool.extended_config.update(fixed)

    models.CognitoIdpBackend.update_user_pool = update_user_pool


def prevents_user_existence_errors(pool: models.CognitoIdpUserPool | None, client_id: str) -> bool:
    """True when the app client's PreventUserExistenceErrors is ENABLED (LEGACY when not given, as in AWS)."""
    client = pool.clients.get(client_id) if pool is not None else None
    return client is not None and client.extended_config.get("PreventUserExistenceErrors") == "ENABLED"


def _patch_password_sign_in(method_name: str, flows: tuple[str, ...]) -> None:
    original = getattr(models.CognitoIdpBackend, method_name)

    # admin_initiate_auth(user_pool_id, client_id, auth_flow, auth_parameters) and
    # initiate_auth(client_id, auth_flow, auth_parameters), as moto's responses call them.
    def sign_in(self: models.CognitoIdpBackend, *args: Any) -> Any:
        *head, auth_flow, params = args
        if auth_flow not in flows:
            return original(self, *args)
        pool = _pool_of_request(self, head)
        hidden = prevents_user_existence_errors(pool, head[-1])
        _refuse_as_aws_does(pool, (params or {}).get("USERNAME", ""), (params or {}).get("PASSWORD"), hidden)
        try:
            return original(self, *args)
        except UserNotFoundError:
            if hidden:  # "authentication returns an error indicating either the username or password was incorrect"
                raise NotAuthorizedError(GENERIC_SIGN_IN_REFUSAL) from None
            raise
        except NotAuthorizedError as exc:
            # moto puts the username in the message of a wrong-password error; AWS does not.
            if exc.message == (params or {}).get("USERNAME"):
                raise NotAuthorizedError(GENERIC_SIGN_IN_REFUSAL) from None
            raise

    setattr(models.CognitoIdpBackend, method_name, sign_in)


def _refuse_as_aws_does(
    pool: models.CognitoIdpUserPool | None, username: str, password: str | None, hidden: bool
) -> None:
    """The answers moto gets wrong for an enabled user of the pool: RESET_REQUIRED (whatever the password) and
    UNCONFIRMED. ``hidden``: the client prevents user existence errors, so a required reset looks like a wrong
    password ("Requiring imported users to reset their passwords")."""
    user = pool._get_user(username) if pool is not None else None
    if user is None or not user.enabled:
        return
    if user.status == models.UserStatus.RESET_REQUIRED:
        if hidden:
            raise NotAuthorizedError(GENERIC_SIGN_IN_REFUSAL)
        raise PasswordResetRequiredException()
    if user.status == models.UserStatus.UNCONFIRMED:
        if user.password != password:
            raise NotAuthorizedError(GENERIC_SIGN_IN_REFUSAL)
        raise UserNotConfirmedException("User is not confirmed.")


def _patch_forgot_password() -> None:
    original = models.CognitoIdpBackend.forgot_password

    def forgot_password(self: models.CognitoIdpBackend, client_id: str, username: str) -> Any:
        pool = _pool_of_request(self, [client_id])
        if (
            pool is not None
            and pool._get_user(username) is None
            and not prevents_user_existence_errors(pool, client_id)
        ):
            # LEGACY tells the caller the user does not exist; ENABLED answers a simulated delivery (moto's answer).
            raise UserNotFoundError("Username/client id combination not found.")
        return original(self, client_id, username)

    models.CognitoIdpBackend.forgot_password = forgot_password


def _patch_confirm_forgot_password() -> None:
    original = models.CognitoIdpBackend.confirm_forgot_password

    def confirm_forgot_password(
        self: models.CognitoIdpBackend, client_id: str, username: str, password: str, confirmation_code: str
    ) -> None:
        original(self, client_id, username, password, confirmation_code)  # checks the code, sets the password
        pool = _pool_of_request(self, [client_id])
        user = pool._get_user(username) if pool else None
        # AWS: the password chosen with the code is the user's own; a required reset is over.
        if user is not None and user.status == models.UserStatus.RESET_REQUIRED:
            user.status = models.UserStatus.CONFIRMED

    models.CognitoIdpBackend.confirm_forgot_password = confirm_forgot_password


def _pool_of_request(backend: models.CognitoIdpBackend, head: list[Any]) -> models.CognitoIdpUserPool | None:
    if len(head) == 2:  # admin_initiate_auth: the pool id comes first
        return backend.user_pools.get(head[0])
    client_id = head[0]
    return next((p for p in backend.user_pools.values() if client_id in p.clients), None)
