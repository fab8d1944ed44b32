"""Whole-pool reads that respect Cognito's quotas: ListUsers pages for users, ListGroups + ListUsersInGroup for
memberships. Never a per-user call over the whole pool (AdminGetUser is billed per user; AdminListGroupsForUser
over a million users takes hours)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from .aws import RateLimiter, paginate
from .widgets import progress_bar  # widget bars in JupyterLab, text bars in the step's log under papermill

USER_COLUMNS = (
    "username",
    "status",
    "enabled",
    "created",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "name",
    "sub",
)


def user_row(user: dict[str, Any]) -> dict[str, Any]:
    """One ListUsers item as a flat row: the standard columns plus every attribute the user has."""
    attributes = {a["Name"]: a.get("Value", "") for a in user.get("Attributes", [])}
    row: dict[str, Any] = {column: None for column in USER_COLUMNS}
    row.update(attributes)
    row.update(
        username=user["Username"],
        status=user.get("UserStatus", ""),
        enabled=bool(user.get("Enabled", True)),
        created=user.get("UserCreateDate"),
        legacy_sms_mfa=bool(user.get("MFAOptions")),
    )
    return row


SHARDED_FROM = 5000  # users (EstimatedNumberOfUsers) from which 16 concurrent shards beat one paginator


def scan_users(
    cognito: Any, pool_id: str, limiter: RateLimiter | None = None, expected: int | None = None, label: str = ""
) -> pd.DataFrame:
    """Every user of the pool, one row each, with a progress bar (users/s and ETA against ``expected``, and
    the ceiling the rate budget allows). Pools estimated at SHARDED_FROM users or more are read in shards
    (``scan_users_sharded``); smaller ones with one paginator, which spends fewer requests on them."""
    if expected is not None and expected >= SHARDED_FROM:
        return scan_users_sharded(cognito, pool_id, limiter, expected, label)
    with _progress(expected, label or f"ListUsers {pool_id}", limiter) as bar:
        rows = _read_users(cognito, pool_id, limiter, bar)
    return _users_frame(rows)


def scan_pool(cognito: Any, pool_id: str, limiter: RateLimiter | None = None, label: str = "") -> pd.DataFrame:
    """``scan_users`` with the pool's EstimatedNumberOfUsers as it is now (one DescribeUserPool), so a large
    pool is read in shards and its progress bar has an ETA."""
    expected = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("EstimatedNumberOfUsers")
    return scan_users(cognito, pool_id, limiter, expected, label)


def _progress(expected: int | None, label: str, limiter: RateLimiter | None) -> Any:
    # EstimatedNumberOfUsers is approximate: the ETA is too, and the bar may end a little short or over.
    ceiling = f"budget {limiter.rate:g} pages/s = {limiter.rate * 60:,.0f} users/s max" if limiter else None
    return progress_bar(total=expected, desc=label, unit="user", mininterval=2.0, postfix=ceiling)


def _read_users(
    cognito: Any, pool_id: str, limiter: RateLimiter | None, bar: Any, **filters: str
) -> list[dict[str, Any]]:
    rows = []
    for user in paginate(
        cognito, "list_users", "Users", limiter, UserPoolId=pool_id, PaginationConfig={"PageSize": 60}, **filters
    ):
        rows.append(user_row(user))
        bar.update(1)
    return rows


def _users_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=None if rows else list(USER_COLUMNS))
    if not frame.empty:
        frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame


def list_groups(cognito: Any, pool_id: str, limiter: RateLimiter | None = None) -> list[dict[str, Any]]:
    """Every group (all pages: peers stop at the first 10)."""
    return list(paginate(cognito, "list_groups", "Groups", limiter, UserPoolId=pool_id))


def scan_memberships(
    cognito: Any, pool_id: str, group_names: list[str], limiter: RateLimiter | None = None, workers: int = 8
) -> pd.DataFrame:
    """(group, username) for every member of every group, via ListUsersInGroup: each group is one paged
    stream, read concurrently under the shared budget (a pool's groups partition nothing, so each is read
    whole). The progress bar counts memberships as they arrive (no API gives their total: no ETA) and the
    groups finished."""
    groups_done = [0]
    lock = threading.Lock()

    def read_group(group: str) -> list[dict[str, str]]:
        rows = []
        for user in paginate(cognito, "list_users_in_group", "Users", limiter, UserPoolId=pool_id, GroupName=group):
            rows.append({"group": group, "username": user["Username"]})
            bar.update(1)
        with lock:
            groups_done[0] += 1
            bar.set_postfix_str(f"{groups_done[0]}/{len(group_names)} groups; {ceiling}", refresh=False)
        return rows

    ceiling = f"budget {limiter.rate:g} pages/s = {limiter.rate * 60:,.0f} users/s max" if limiter else ""
    with (
        progress_bar(desc="group memberships", unit="member", mininterval=2.0) as bar,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="group") as executor,
    ):
        bar.set_postfix_str(f"0/{len(group_names)} groups; {ceiling}", refresh=False)
        futures = [executor.submit(read_group, group) for group in group_names]
        rows = [row for future in futures for row in future.result()]
    return pd.DataFrame(rows, columns=["group", "username"])


def list_identity_providers(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """Every identity provider of the pool, as the list call gives them (no details, no secrets)."""
    return list(paginate(cognito, "list_identity_providers", "Providers", UserPoolId=pool_id))


def list_resource_servers(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """Every resource server (OAuth scopes) of the pool."""
    pages = {"PageSize": 50}  # the call's maximum
    return list(
        paginate(cognito, "list_resource_servers", "ResourceServers", UserPoolId=pool_id, PaginationConfig=pages)
    )


def list_clients(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """Every app client with its full description (DescribeUserPoolClient: the list omits the settings)."""
    return [
        cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=c["ClientId"])["UserPoolClient"]
        for c in paginate(cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id)
    ]


SHARD_PREFIXES = tuple("0123456789abcdef")  # every sub is a UUID: these prefixes partition any pool exactly


def scan_users_sharded(
    cognito: Any,
    pool_id: str,
    limiter: RateLimiter | None = None,
    expected: int | None = None,
    label: str = "",
    workers: int = 8,
) -> pd.DataFrame:
    """Every user of the pool, read as 16 shards (``sub ^= "0"`` ... ``"f"``) concurrently under the one
    shared budget, merged. ``frame.attrs["completeness"]`` says whether every shard was drained and how the
    total compares with ``expected`` (EstimatedNumberOfUsers is approximate)."""
    with (
        _progress(expected, label or f"ListUsers {pool_id} (16 shards)", limiter) as bar,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard") as executor,
    ):
        futures = [
            executor.submit(_read_users, cognito, pool_id, limiter, bar, Filter=f'sub ^= "{prefix}"')
            for prefix in SHARD_PREFIXES
        ]
        shards = [future.result() for future in futures]  # an error in any shard surfaces here, whole
    frame = _users_frame([row for shard in shards for row in shard])
    if not frame.empty:
        frame = frame.drop_duplicates("username", keep="last").reset_index(drop=True)
    frame.attrs["completeness"] = completeness(len(frame), [len(s) for s in shards], expected)
    return frame


def completeness(total: int, per_shard: list[int], expected: int | None) -> dict[str, Any]:
    """Every shard drained, the total, and the difference from the pool's estimate, explained."""
    difference = None if expected is None else total - expected
    return {
        "shards_drained": len(per_shard),
        "shards": len(SHARD_PREFIXES),
        "users": total,
        "per_shard": per_shard,
        "estimated": expected,
        "difference": difference,
        "explanation": "matches the estimate"
        if not difference
        else "EstimatedNumberOfUsers is approximate and users may be created or deleted during the scan",
    }
