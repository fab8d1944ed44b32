"""Virtual pools in the local AWS: a legacy pool of N users (10 million, 100 million) generated on the fly.

    pool_id = aws.add_virtual_pool(10_000_000, seed=7)       # LocalAWS; or add_virtual_pool(...) below
    truth(10_000_000, seed=7).shards["a3"]                   # what `sub ^= "a3"` must list, by arithmetic

A virtual pool is a moto user pool with the legacy pool's configuration and groups (so DescribeUserPool,
ListGroups and the pool's other reads are moto's own answers, EstimatedNumberOfUsers being N), whose users are
never stored: ``virtual_users`` makes user i from (seed, i), ``virtual_listing`` answers the user reads from the
pool's layout. A WSGI layer, inside the faults layer (so the UserList quota and the added latency apply), answers
ListUsers, ListUsersInGroup and AdminGetUser of a virtual pool with Cognito's shapes and limits, lets the pool's
own reads through to moto, and refuses everything else: the pool is read-only.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool, cognitoidp_backends

from .cognito_triggers import TARGET_PREFIX, CognitoError, _region_of
from .legacy import DEFAULT_ACCOUNT_ID, LegacyUser, install_as_legacy, install_groups, pool_config
from .virtual_listing import BadToken, FilterError, PageTokens, members, page, select
from .virtual_truth import Truth, truth
from .virtual_users import VirtualUsers

__all__ = [
    "Truth",
    "VirtualPoolLayer",
    "add_virtual_pool",
    "remove_virtual_pool",
    "token_scope",
    "truth",
    "user",
    "users_of",
]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
VIRTUAL_POOL_NAME = "legacy-users-virtual"
MAX_LIMIT = 60  # ListUsers and ListUsersInGroup: Limit 0..60
# The pool's own reads, answered by moto from the pool object (which holds no user).
READ_THROUGH = frozenset(
    {
        "DescribeUserPool",
        "GetUserPoolMfaConfig",
        "ListGroups",
        "GetGroup",
        "ListUserPoolClients",
        "DescribeUserPoolClient",
        "ListIdentityProviders",
        "DescribeIdentityProvider",
        "ListResourceServers",
        "DescribeResourceServer",
        "GetCSVHeader",
        "ListUserImportJobs",
        "DescribeUserImportJob",
        "ListTagsForResource",
    }
)
_LEGACY_SMS_MFA = [{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}]


class VirtualUserPool(CognitoIdpUserPool):
    """moto's pool object for a virtual pool: its configuration and groups; its users are ``virtual``."""

    def __init__(self, account_id: str, region: str, extended_config: dict[str, Any], virtual: VirtualUsers) -> None:
        super().__init__(account_id, region, VIRTUAL_POOL_NAME, extended_config)
        self.virtual = virtual
        # Tokens are signed for the pool's size and seed (and, in their scope, its id): the same pool made again
        # takes back the tokens of the first, another refuses them.
        self.tokens = PageTokens(f"virtual-pool-tokens:{virtual.users}:{virtual.seed}".encode())

    def _base_json(self) -> dict[str, Any]:
        described = super()._base_json()
        described["EstimatedNumberOfUsers"] = self.virtual.users
        return described


def add_virtual_pool(users: int, seed: int = 7, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    """Creates a read-only pool of ``users`` generated users (the legacy pool's configuration, groups and quirks)
    in this process's local AWS and returns its id, ``<region>_Virtual<nnn>``. Costs the same whatever ``users``."""
    virtual = VirtualUsers(users, seed)
    backend: CognitoIdpBackend = cognitoidp_backends[account_id][region]
    number = 1
    while f"{region}_Virtual{number:03d}" in backend.user_pools:
        number += 1
    pool_id = f"{region}_Virtual{number:03d}"
    pool = VirtualUserPool(account_id, region, pool_config(region, account_id), virtual)
    install_as_legacy(backend, pool, pool_id)
    install_groups(backend, pool_id)
    return pool_id


def remove_virtual_pool(pool_id: str, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    """Drops a virtual pool (it has deletion protection, as the legacy pool does, so DeleteUserPool refuses)."""
    backend = cognitoidp_backends[account_id][region]
    if not isinstance(backend.user_pools.get(pool_id), VirtualUserPool):
        raise KeyError(f"{pool_id} is not a virtual pool of account {account_id} in {region}")
    del backend.user_pools[pool_id]


def users_of(pool_id: str, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID) -> VirtualUsers:
    """The generator behind a virtual pool (its ``work`` counts the users it looked at)."""
    pool = cognitoidp_backends[account_id][region].user_pools.get(pool_id)
    if not isinstance(pool, VirtualUserPool):
        raise KeyError(f"{pool_id} is not a virtual pool of account {account_id} in {region}")
    return pool.virtual


def user(index: int, users: int, seed: int = 7) -> LegacyUser:
    """User ``index`` of a virtual pool of ``users`` users made with ``seed`` (the pool's size matters only to
    the case pairs: the last, incomplete block of 200 users has none)."""
    return VirtualUsers(users, seed).user(index)


class VirtualPoolLayer:
    """The WSGI layer answering for virtual pools; a request naming no virtual pool goes on to ``app``, once the
    page limit Cognito keeps for every pool's listings is checked (moto has none)."""

    def __init__(self, app: WsgiApp, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self.app = app
        self.account_id = account_id

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(TARGET_PREFIX):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        found = self._virtual_pool(environ, body) if b"_Virtual" in body else None
        operation = target[len(TARGET_PREFIX) :]
        if found is None and operation in ("ListUsers", "ListUsersInGroup"):
            # moto pages any Limit; Cognito refuses one above 60, for every pool: checked here for all of them.
            try:
                _limit(json.loads(body) or {})
            except CognitoError as exc:
                return _respond(start_response, "400 Bad Request", {"__type": exc.code, "message": exc.message})
            except (ValueError, AttributeError):
                pass  # moto answers a body it cannot read
        if found is None or operation in READ_THROUGH:
            return self.app(environ, start_response)
        pool, request = found
        try:
            if operation == "ListUsers":
                answer = list_users(pool, request)
            elif operation == "ListUsersInGroup":
                answer = list_users_in_group(pool, request)
            elif operation == "AdminGetUser":
                answer = admin_get_user(pool, request)
            else:
                raise CognitoError("NotAuthorizedException", _read_only(pool.id, operation))
        except CognitoError as exc:
            return _respond(start_response, "400 Bad Request", {"__type": exc.code, "message": exc.message})
        return _respond(start_response, "200 OK", answer)

    def _virtual_pool(self, environ: dict[str, Any], body: bytes) -> tuple[VirtualUserPool, dict[str, Any]] | None:
        """The virtual pool the request names (its UserPoolId, or the ResourceArn of a tag call), and the request."""
        try:
            request = json.loads(body)
        except ValueError:
            return None  # moto answers a body it cannot read
        if not isinstance(request, dict):
            return None
        pool_id = str(request.get("UserPoolId") or str(request.get("ResourceArn", "")).rpartition("userpool/")[2])
        try:
            pool = cognitoidp_backends[self.account_id][_region_of(environ)].user_pools.get(pool_id)
        except KeyError:  # a Region moto does not know: moto answers
            return None
        return (pool, request) if isinstance(pool, VirtualUserPool) else None


def list_users(pool: VirtualUserPool, request: dict[str, Any]) -> dict[str, Any]:
    limit = _limit(request)
    expression = request.get("Filter")
    scope = token_scope("ListUsers", pool.id, expression or "")
    try:
        selection = select(pool.virtual, expression)
    except FilterError as exc:
        raise CognitoError("InvalidParameterException", str(exc)) from None
    indices, resume = page(selection, _start(pool, scope, request.get("PaginationToken")), limit)
    wanted = request.get("AttributesToGet")
    answer: dict[str, Any] = {"Users": [user_json(pool.virtual.user(i), wanted) for i in indices]}
    if resume is not None:
        answer["PaginationToken"] = pool.tokens.encode(scope, resume)
    return answer


def list_users_in_group(pool: VirtualUserPool, request: dict[str, Any]) -> dict[str, Any]:
    limit = _limit(request)
    group = str(request.get("GroupName", ""))
    if group not in pool.groups:
        raise CognitoError("ResourceNotFoundException", group)  # moto's answer for the legacy pool, word for word
    scope = token_scope("ListUsersInGroup", pool.id, group)
    indices, resume = page(members(pool.virtual, group), _start(pool, scope, request.get("NextToken")), limit)
    answer: dict[str, Any] = {"Users": [user_json(pool.virtual.user(i)) for i in indices]}
    if resume is not None:
        answer["NextToken"] = pool.tokens.encode(scope, resume)
    return answer


def admin_get_user(pool: VirtualUserPool, request: dict[str, Any]) -> dict[str, Any]:
    index = pool.virtual.index_of_username(str(request.get("Username", "")))
    if index is None:
        raise CognitoError("UserNotFoundException", "User does not exist.")
    record = pool.virtual.user(index)
    answer = user_json(record, attributes_key="UserAttributes")
    if record.mfa is not None:  # AdminGetUser shows every factor; ListUsers only the legacy SMS option
        answer.update(PreferredMfaSetting=record.mfa, UserMFASettingList=[record.mfa])
    return answer


def user_json(
    record: LegacyUser, attributes_to_get: list[str] | None = None, attributes_key: str = "Attributes"
) -> dict[str, Any]:
    """A user as ListUsers (UserType) or AdminGetUser names it; the SMS MFA users carry the legacy MFAOptions."""
    attributes = [{"Name": k, "Value": v} for k, v in {**record.attributes, "sub": record.sub}.items()]
    if attributes_to_get:  # as the local AWS filters them for every pool (an empty list: all of them)
        attributes = [a for a in attributes if a["Name"] in attributes_to_get]
    created = record.created_at.timestamp()
    answer: dict[str, Any] = {
        "Username": record.username,
        attributes_key: attributes,
        "UserCreateDate": created,
        "UserLastModifiedDate": created,
        "Enabled": record.enabled,
        "UserStatus": record.status,
    }
    if record.mfa == "SMS_MFA":
        answer["MFAOptions"] = _LEGACY_SMS_MFA
    return answer


def token_scope(operation: str, pool_id: str, selector: str) -> str:
    """What a page token is signed for: the operation, the pool, and the Filter (ListUsers) or the group."""
    return f"{operation}\n{pool_id}\n{selector}"


def _limit(request: dict[str, Any]) -> int:
    limit = request.get("Limit")
    if isinstance(limit, int) and limit > MAX_LIMIT:
        raise CognitoError(
            "InvalidParameterException",
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_LIMIT}",
        )
    return limit or MAX_LIMIT  # 0 or none: a full page, as the local AWS answers for every pool


def _start(pool: VirtualUserPool, scope: str, token: object) -> int:
    if token is None:
        return 0
    try:
        return pool.tokens.decode(scope, str(token))
    except BadToken:
        # Cognito's words for a pagination token it did not issue for this request.
        raise CognitoError(
            "InvalidParameterException", f"Paging marker {token} is invalid for request {uuid.uuid4()}"
        ) from None


def _read_only(pool_id: str, operation: str) -> str:
    return (
        f"{operation} refused: {pool_id} is a virtual pool of the local AWS, read-only (its users are generated, "
        "not stored). It answers ListUsers, ListUsersInGroup and AdminGetUser, and the reads of the pool itself "
        "(DescribeUserPool, ListGroups, ...)."
    )


def _respond(start_response: Callable[..., Any], status: str, answer: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(answer, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if "__type" in answer:
        headers.append(("x-amzn-ErrorType", str(answer["__type"])))
    start_response(status, headers)
    return [payload]
